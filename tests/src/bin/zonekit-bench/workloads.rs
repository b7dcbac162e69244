//! The workloads, the same code for every allocator (monomorphised per allocator).
//! Each `run` performs `n` iterations; [`Workload::ops`] says how many operations
//! (alloc+free pairs, or single mixed operations) one iteration is.

use crate::peers::Frames;
use std::hint::black_box;

/// Pages held at once by the batch workload.
pub const BATCH: usize = 1024;
/// Live blocks the mixed workload keeps at most.
pub const MIXED_LIVE: usize = 4096;
/// Seed of every random sequence (the same for all allocators).
pub const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// xorshift64.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next value.
    #[inline]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// The timed / counted workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Allocate one page, free it.
    Order0,
    /// 1024 order-0 allocations, then 1024 frees (in allocation order).
    Order0Batch,
    /// Allocate an order-3 block, free it.
    Order3,
    /// The same with another order-3 block held throughout.
    Order3Held,
    /// Random orders 0-3, random alloc/free, at most [`MIXED_LIVE`] live blocks.
    Mixed,
}

impl Workload {
    /// All of them, in table order.
    pub const ALL: [Workload; 5] = [
        Workload::Order0,
        Workload::Order0Batch,
        Workload::Order3,
        Workload::Order3Held,
        Workload::Mixed,
    ];

    /// Command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Order0 => "order0",
            Workload::Order0Batch => "order0_batch",
            Workload::Order3 => "order3",
            Workload::Order3Held => "order3_held",
            Workload::Mixed => "mixed",
        }
    }

    /// Parse a command-line name.
    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }

    /// Operations per iteration.
    pub fn ops(self) -> u64 {
        match self {
            Workload::Order0Batch => BATCH as u64,
            _ => 1,
        }
    }
}

/// A workload's state on one allocator: what it holds between iterations.
pub struct State {
    what: Workload,
    held: Vec<(usize, u32)>,
    rng: XorShift,
}

impl State {
    /// Set up `what` on `a` (the order-3 workload with a held block takes it here).
    pub fn new<A: Frames>(what: Workload, a: &mut A) -> State {
        let mut held = Vec::with_capacity(BATCH.max(MIXED_LIVE) + 1);
        if what == Workload::Order3Held {
            held.push((a.alloc(3).expect("held order-3 block"), 3));
        }
        State {
            what,
            held,
            rng: XorShift(SEED),
        }
    }

    /// Give everything held back.
    pub fn finish<A: Frames>(mut self, a: &mut A) {
        for (f, o) in self.held.drain(..) {
            a.free(f, o);
        }
    }
}

/// Run `n` iterations of the state's workload on `a`. Never inlined: callgrind
/// collects inside this function only (`--toggle-collect`).
#[inline(never)]
pub fn measure_region<A: Frames>(a: &mut A, s: &mut State, n: u64) {
    match s.what {
        Workload::Order0 => pairs(a, 0, n),
        Workload::Order3 | Workload::Order3Held => pairs(a, 3, n),
        Workload::Order0Batch => {
            for _ in 0..n {
                for _ in 0..BATCH {
                    let f = a.alloc(0).expect("order-0 page");
                    s.held.push((f, 0));
                }
                for (f, _) in s.held.drain(..) {
                    a.free(f, 0);
                }
            }
        }
        Workload::Mixed => {
            for _ in 0..n {
                let r = s.rng.next();
                if s.held.len() == MIXED_LIVE || (r & 1 == 1 && !s.held.is_empty()) {
                    let i = (r >> 8) as usize % s.held.len();
                    let (f, o) = s.held.swap_remove(i);
                    a.free(f, o);
                } else {
                    let o = ((r >> 1) & 3) as u32;
                    let f = a.alloc(o).expect("mixed block");
                    s.held.push((f, o));
                }
            }
        }
    }
}

#[inline(always)]
fn pairs<A: Frames>(a: &mut A, order: u32, n: u64) {
    for _ in 0..n {
        let f = a.alloc(black_box(order)).expect("block");
        a.free(black_box(f), order);
    }
}

/// What the fragmentation run found.
pub struct Frag {
    /// Frames in use when the random phase stopped.
    pub used: usize,
    /// Frames free then.
    pub free: usize,
    /// Of those, frames the allocator held back from merging then
    /// ([`Frames::parked_frames`]).
    pub parked: usize,
    /// Order-3 blocks that could still be allocated then.
    pub order3: usize,
    /// Order-9 blocks that could still be allocated then (after the order-3 ones
    /// were given back).
    pub order9: usize,
    /// Free frames at the end equal free frames at the start.
    pub restored: bool,
}

/// Random allocations and frees of orders 0-3 (two allocations for each free)
/// until 90% of the frames are used; then count the order-3 and the order-9 blocks
/// the allocator can still hand out, give everything back.
pub fn fragmentation<A: Frames>(a: &mut A) -> Frag {
    let start = a.free_frames();
    let goal = start - start / 10;
    let mut rng = XorShift(SEED);
    let mut live: Vec<(usize, u32)> = Vec::new();
    let mut used = 0usize;
    while used < goal {
        let r = rng.next();
        if r.is_multiple_of(3) && !live.is_empty() {
            let i = (r >> 8) as usize % live.len();
            let (f, o) = live.swap_remove(i);
            a.free(f, o);
            used -= 1 << o;
        } else {
            let o = ((r >> 2) & 3) as u32;
            match a.alloc(o) {
                Some(f) => {
                    live.push((f, o));
                    used += 1 << o;
                }
                None => break,
            }
        }
    }
    let count = |order: u32, a: &mut A| {
        let mut got = Vec::new();
        if order <= A::MAX_ORDER {
            while let Some(f) = a.alloc_all_in(order) {
                got.push(f);
            }
        }
        let n = got.len();
        for f in got {
            a.free(f, order);
        }
        n
    };
    let (free, parked) = (a.free_frames(), a.parked_frames());
    let order3 = count(3, a);
    let order9 = count(9, a);
    for (f, o) in live {
        a.free(f, o);
    }
    Frag {
        used,
        free,
        parked,
        order3,
        order9,
        restored: a.free_frames() == start,
    }
}
