//! CPU identities that cannot be forged: the per-CPU token.
//!
//! Linux names "this CPU" implicitly (`this_cpu_ptr` with preemption off); a library
//! cannot, so every per-CPU operation of zonekit takes a [`CpuToken`] instead of a
//! bare `cpu: usize` a caller could get wrong. A token is handed out once per CPU by
//! [`CpuTokens::claim`] (each id at most once until it is given back), is not `Clone`
//! or `Copy`, and is taken by `&mut`: whoever holds the token for CPU 2 is the only
//! code that can use CPU 2's per-CPU page lists through it.
//!
//! On the target the runtime claims one token in each CPU's entry and keeps it for
//! the CPU's life; on the host a test thread owns a token and is that CPU.
//!
//! The guarantee holds among the tokens of one [`CpuTokens`]: a kernel keeps one (the
//! runtime's is a static) for its allocator. A second `CpuTokens` could hand out a
//! second token for the same id, and an allocator does not ask which issued a
//! token; only [`CpuTokens::release`] does, so that a token goes back where it
//! came from.

use core::sync::atomic::{AtomicU32, Ordering};

/// Most CPUs zonekit can name (the width of [`CpuTokens`]' claim mask).
pub const MAX_CPU_IDS: usize = 32;

/// The right to use one CPU's per-CPU state. See the [module documentation](self).
///
/// A token cannot be copied, so one CPU's id cannot be handed to two users:
///
/// ```compile_fail
/// let tokens = zonekit_core::percpu::CpuTokens::<2>::new();
/// let t = tokens.claim(0).unwrap();
/// let again = t.clone(); // no Clone
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct CpuToken {
    id: u8,
    /// The [`CpuTokens`] that issued it.
    issuer: u32,
}

impl CpuToken {
    /// The CPU this token names.
    #[inline]
    pub fn id(&self) -> usize {
        self.id as usize
    }
}

/// Hands out at most one [`CpuToken`] per CPU id below `N` (≤ [`MAX_CPU_IDS`]).
#[derive(Debug)]
pub struct CpuTokens<const N: usize> {
    claimed: AtomicU32,
    /// This instance's number, given on its first claim (0: none yet), so that a
    /// token is only taken back by the `CpuTokens` that issued it.
    issuer: AtomicU32,
}

/// The next [`CpuTokens`] instance number.
static NEXT_ISSUER: AtomicU32 = AtomicU32::new(1);

impl<const N: usize> Default for CpuTokens<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> CpuTokens<N> {
    const N_OK: () = assert!(N >= 1 && N <= MAX_CPU_IDS, "1..=MAX_CPU_IDS CPUs");

    /// No token handed out yet.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::N_OK;
        CpuTokens {
            claimed: AtomicU32::new(0),
            issuer: AtomicU32::new(0),
        }
    }

    /// This instance's number (assigned once, on first use).
    fn issuer(&self) -> u32 {
        let v = self.issuer.load(Ordering::Acquire);
        if v != 0 {
            return v;
        }
        let mut new = NEXT_ISSUER.fetch_add(1, Ordering::Relaxed);
        if new == 0 {
            // Wrapped after 2^32 instances: skip the "none yet" value.
            new = NEXT_ISSUER.fetch_add(1, Ordering::Relaxed);
        }
        match self
            .issuer
            .compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => new,
            Err(v) => v,
        }
    }

    /// The token of CPU `id`, unless `id >= N` or it is already out.
    pub fn claim(&self, id: usize) -> Option<CpuToken> {
        if id >= N {
            return None;
        }
        let bit = 1u32 << id;
        let prev = self.claimed.fetch_or(bit, Ordering::AcqRel);
        (prev & bit == 0).then(|| CpuToken {
            id: id as u8,
            issuer: self.issuer(),
        })
    }

    /// Give a token back (its id can be claimed again). A token from another
    /// `CpuTokens` is ignored.
    pub fn release(&self, token: CpuToken) {
        if token.id() < N && token.issuer == self.issuer() {
            self.claimed
                .fetch_and(!(1u32 << token.id), Ordering::AcqRel);
        }
    }

    /// How many tokens are out.
    pub fn claimed(&self) -> u32 {
        self.claimed.load(Ordering::Acquire).count_ones()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_id_is_claimed_once_until_released() {
        let t: CpuTokens<4> = CpuTokens::new();
        let a = t.claim(0).unwrap();
        assert!(t.claim(0).is_none());
        assert!(t.claim(4).is_none());
        let b = t.claim(3).unwrap();
        assert_eq!((a.id(), b.id(), t.claimed()), (0, 3, 2));
        t.release(a);
        assert_eq!(t.claim(0).unwrap().id(), 0);
    }

    #[test]
    fn a_token_from_another_issuer_is_not_taken_back() {
        let (t1, t2): (CpuTokens<2>, CpuTokens<2>) = (CpuTokens::new(), CpuTokens::new());
        let _a = t1.claim(0).unwrap();
        let b = t2.claim(0).unwrap();
        t1.release(b);
        assert!(t1.claim(0).is_none(), "CPU 0 of t1 is still out");
        assert_eq!(t1.claimed(), 1);
    }
}
