//! memblock additions and public-API error paths: `memblock_trim_memory`,
//! `memblock_set_node` on either table, `memblock_alloc_exact_nid_raw`, atomic table
//! doubling, bottom-up searches at the top of the address space and a full reserved
//! table. Allocation tests run top-down and bottom-up on a fresh state, as Linux's
//! `tools/testing/memblock` does.

use zonekit_core::memblock::*;
use zonekit_core::storage::VecPageStorage;
use zonekit_core::PhysAddr;

const SZ_4K: u64 = 0x1000;
const SZ_1M: u64 = 0x10_0000;
const SZ_2M: u64 = 0x20_0000;

fn mb_dir(bottom_up: bool) -> Memblock {
    let mut m = Memblock::new(PHYS_ADDR_MAX_32);
    m.set_bottom_up(bottom_up);
    m
}

/// Run a test body on a fresh state in both directions.
fn both(f: impl Fn(bool)) {
    f(false);
    f(true);
}

fn regs<const N: usize>(t: &RegionTable<N>) -> Vec<(PhysAddr, u64)> {
    t.regions().iter().map(|r| (r.base, r.size)).collect()
}

fn nids<const N: usize>(t: &RegionTable<N>) -> Vec<(PhysAddr, u64, i32)> {
    t.regions()
        .iter()
        .map(|r| (r.base, r.size, r.nid))
        .collect()
}

// ------------------------------------------------------------ memblock_trim_memory

#[test]
fn memblock_trim_memory_rounds_banks_inwards() {
    let mut m = mb_dir(false);
    m.add(0x1000_0800, SZ_1M).unwrap(); // both ends off a page
    m.add(0x2000_0100, 0x800).unwrap(); // inside one page: removed
    m.add(0x3000_0000, SZ_1M).unwrap(); // aligned: kept as is
    m.add(0x4000_0000, SZ_1M + 0x10).unwrap(); // tail only
    m.reserve(0x1000_0800, 0x100).unwrap();
    m.trim_memory(SZ_4K).unwrap();
    assert_eq!(
        regs(&m.memory),
        [
            (0x1000_1000, SZ_1M - SZ_4K),
            (0x3000_0000, SZ_1M),
            (0x4000_0000, SZ_1M)
        ]
    );
    assert_eq!(m.phys_mem_size(), 3 * SZ_1M - SZ_4K);
    // memblock.reserved is not trimmed
    assert_eq!(regs(&m.reserved), [(0x1000_0800, 0x100)]);
    // idempotent
    m.trim_memory(SZ_4K).unwrap();
    assert_eq!(m.memory.cnt(), 3);
    assert_eq!(m.phys_mem_size(), 3 * SZ_1M - SZ_4K);
}

#[test]
fn memblock_trim_memory_large_align_removes_small_banks() {
    let mut m = mb_dir(false);
    m.add(0x1010_0000, SZ_1M).unwrap(); // no whole 2 MiB block
    m.add(0x2010_0000, 5 * SZ_1M).unwrap(); // [0x2020_0000, 0x2060_0000)
    m.add_node(0x3000_0000, 3 * SZ_1M, 1, RegionFlags::HOTPLUG)
        .unwrap();
    m.trim_memory(SZ_2M).unwrap();
    assert_eq!(
        nids(&m.memory),
        [(0x2020_0000, 2 * SZ_2M, 0), (0x3000_0000, SZ_2M, 1)]
    );
    // node and flags survive the trim
    assert_eq!(m.memory.regions()[1].flags, RegionFlags::HOTPLUG);
    assert_eq!(m.phys_mem_size(), 3 * SZ_2M);
}

#[test]
fn memblock_trim_memory_bad_align_is_an_error() {
    let mut m = mb_dir(false);
    m.add(0x1000_0800, SZ_1M).unwrap();
    for align in [0, 3, 0x1800] {
        assert_eq!(m.trim_memory(align), Err(MemblockError::BadAlign { align }));
    }
    assert_eq!(regs(&m.memory), [(0x1000_0800, SZ_1M)]);
}

#[test]
fn memblock_trim_memory_top_of_address_space() {
    // LPAE: the bank is capped one byte short of 2^40, leaving no whole page.
    let mut m: Memblock = Memblock::new(PHYS_ADDR_MAX_LPAE);
    m.add(PHYS_ADDR_MAX_LPAE - 0x1800, 0x1800).unwrap();
    m.add(0x8000_0000, SZ_1M).unwrap();
    m.trim_memory(SZ_4K).unwrap();
    assert_eq!(regs(&m.memory), [(0x8000_0000, SZ_1M)]);
    assert_eq!(m.phys_mem_size(), SZ_1M);
    // A start that cannot be rounded up within 64 bits removes the region.
    let mut m: Memblock = Memblock::new(u64::MAX);
    m.add(u64::MAX - 0x10, 0x10).unwrap();
    assert_eq!(m.memory.cnt(), 1);
    m.trim_memory(SZ_4K).unwrap();
    assert!(m.memory.is_empty());
    assert_eq!(m.phys_mem_size(), 0);
}

#[test]
fn memblock_trim_memory_then_allocations_stay_inside() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x1000_0800, 0x4000).unwrap();
        m.trim_memory(SZ_4K).unwrap();
        assert_eq!(regs(&m.memory), [(0x1000_1000, 0x3000)]);
        // the whole trimmed bank, at its exact bounds in either direction
        let a = m
            .alloc_try_nid_raw(0x3000, 0x10, 0, MEMBLOCK_ALLOC_ACCESSIBLE, NUMA_NO_NODE)
            .unwrap();
        assert_eq!(a, 0x1000_1000);
        assert!(m
            .alloc_try_nid_raw(0x10, 0x10, 0, MEMBLOCK_ALLOC_ACCESSIBLE, NUMA_NO_NODE)
            .is_err());
    });
}

// -------------------------------------------------------------- memblock_set_node

#[test]
fn memblock_set_node_reserved() {
    let mut m = mb_dir(false);
    m.add(0x1000_0000, SZ_1M).unwrap();
    m.reserve(0x1000_0000, 3 * SZ_4K).unwrap();
    m.set_node(0x1000_1000, SZ_4K, TableKind::Reserved, 1)
        .unwrap();
    assert_eq!(
        nids(&m.reserved),
        [
            (0x1000_0000, SZ_4K, 0),
            (0x1000_1000, SZ_4K, 1),
            (0x1000_2000, SZ_4K, 0)
        ]
    );
    assert_eq!(m.reserved_size(), 3 * SZ_4K);
    // memblock.memory keeps its node
    assert_eq!(nids(&m.memory), [(0x1000_0000, SZ_1M, 0)]);
    // back to node 0: the three merge again
    m.set_node(0x1000_1000, SZ_4K, TableKind::Reserved, 0)
        .unwrap();
    assert_eq!(nids(&m.reserved), [(0x1000_0000, 3 * SZ_4K, 0)]);
    // and on memory, reserved is untouched
    m.set_node(0x1000_0000, SZ_1M, TableKind::Memory, 2)
        .unwrap();
    assert_eq!(nids(&m.memory), [(0x1000_0000, SZ_1M, 2)]);
    assert_eq!(nids(&m.reserved), [(0x1000_0000, 3 * SZ_4K, 0)]);
}

#[test]
fn memblock_set_node_reserved_full_table_is_atomic() {
    let mut m: Memblock<4> = Memblock::new(PHYS_ADDR_MAX_32);
    for i in 0..3u64 {
        m.reserve(0x1000_0000 + i * 0x10_000, 3 * SZ_4K).unwrap();
    }
    let before = nids(&m.reserved);
    // splitting needs two more regions than the table holds
    assert_eq!(
        m.set_node(0x1000_1000, SZ_4K, TableKind::Reserved, 1),
        Err(MemblockError::TableFull {
            table: TableKind::Reserved,
            capacity: 4
        })
    );
    assert_eq!(nids(&m.reserved), before);
}

#[test]
fn memblock_set_node_steers_allocations() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x1000_0000, 2 * SZ_1M).unwrap();
        m.set_node(0x1000_0000, SZ_1M, TableKind::Memory, 1)
            .unwrap();
        // node 1 is the low half, node 0 the high half, in either direction
        let a = m
            .alloc_exact_nid_raw(SZ_4K, SZ_4K, 0, MEMBLOCK_ALLOC_ACCESSIBLE, 1)
            .unwrap();
        let b = m
            .alloc_exact_nid_raw(SZ_4K, SZ_4K, 0, MEMBLOCK_ALLOC_ACCESSIBLE, 0)
            .unwrap();
        if bu {
            assert_eq!((a, b), (0x1000_0000, 0x1010_0000));
        } else {
            assert_eq!((a, b), (0x100f_f000, 0x101f_f000));
        }
    });
}

// ---------------------------------------------------- memblock_alloc_exact_nid_raw

/// Node 0 at 256 MiB and node 1 at 512 MiB, 1 MiB each.
fn two_nodes(bu: bool) -> Memblock {
    let mut m = mb_dir(bu);
    m.add_node(0x1000_0000, SZ_1M, 0, RegionFlags::NONE)
        .unwrap();
    m.add_node(0x2000_0000, SZ_1M, 1, RegionFlags::NONE)
        .unwrap();
    m
}

#[test]
fn alloc_exact_nid_raw_stays_on_node() {
    both(|bu| {
        let mut m = two_nodes(bu);
        let a = m
            .alloc_exact_nid_raw(SZ_4K, SZ_4K, 0, MEMBLOCK_ALLOC_ACCESSIBLE, 0)
            .unwrap();
        let b = m
            .alloc_exact_nid_raw(SZ_4K, SZ_4K, 0, MEMBLOCK_ALLOC_ACCESSIBLE, 1)
            .unwrap();
        if bu {
            assert_eq!((a, b), (0x1000_0000, 0x2000_0000));
        } else {
            assert_eq!((a, b), (0x100f_f000, 0x200f_f000));
        }
        assert!(m.is_region_reserved(a, SZ_4K) && m.is_region_reserved(b, SZ_4K));
        // NUMA_NO_NODE: any node, as memblock_alloc_try_nid_raw
        let c = m
            .alloc_exact_nid_raw(SZ_4K, SZ_4K, 0, MEMBLOCK_ALLOC_ACCESSIBLE, NUMA_NO_NODE)
            .unwrap();
        let want = if bu { 0x1000_1000 } else { 0x200f_e000 };
        assert_eq!(c, want);
    });
}

#[test]
fn alloc_exact_nid_raw_never_falls_back() {
    both(|bu| {
        let mut m = two_nodes(bu);
        m.reserve(0x2000_0000, SZ_1M).unwrap();
        let reserved = regs(&m.reserved);
        assert_eq!(
            m.alloc_exact_nid_raw(SZ_4K, SZ_4K, 0, MEMBLOCK_ALLOC_ACCESSIBLE, 1),
            Err(MemblockError::NoSpace {
                size: SZ_4K,
                align: SZ_4K,
                min_addr: 0,
                max_addr: MEMBLOCK_ALLOC_ACCESSIBLE,
                nid: 1
            })
        );
        assert_eq!(regs(&m.reserved), reserved);
        // the try_nid variant falls back to node 0
        let a = m
            .alloc_try_nid_raw(SZ_4K, SZ_4K, 0, MEMBLOCK_ALLOC_ACCESSIBLE, 1)
            .unwrap();
        assert!((0x1000_0000..0x1010_0000).contains(&a), "{a:#x}");
        // a node that does not exist has no memory
        assert!(m
            .alloc_exact_nid_raw(SZ_4K, SZ_4K, 0, MEMBLOCK_ALLOC_ACCESSIBLE, 5)
            .is_err());
    });
}

#[test]
fn alloc_exact_nid_raw_retries_below_min_addr_on_the_same_node() {
    both(|bu| {
        let mut m = two_nodes(bu);
        // nothing of node 0 lies above min_addr: retried from 0, still on node 0
        let a = m
            .alloc_exact_nid_raw(SZ_4K, SZ_4K, 0x1800_0000, MEMBLOCK_ALLOC_ACCESSIBLE, 0)
            .unwrap();
        let want = if bu { 0x1000_0000 } else { 0x100f_f000 };
        assert_eq!(a, want);
        // min_addr inside node 1 is honoured
        let b = m
            .alloc_exact_nid_raw(SZ_4K, SZ_4K, 0x2008_0000, MEMBLOCK_ALLOC_ACCESSIBLE, 1)
            .unwrap();
        let want = if bu { 0x2008_0000 } else { 0x200f_f000 };
        assert_eq!(b, want);
    });
}

#[test]
fn alloc_exact_nid_raw_respects_limits_and_alignment() {
    both(|bu| {
        let mut m = two_nodes(bu);
        m.set_current_limit(0x1800_0000);
        // node 1 lies above the current limit
        assert!(matches!(
            m.alloc_exact_nid_raw(SZ_4K, SZ_4K, 0, MEMBLOCK_ALLOC_ACCESSIBLE, 1),
            Err(MemblockError::NoSpace { nid: 1, .. })
        ));
        assert_eq!(
            m.alloc_exact_nid_raw(SZ_4K, 3, 0, MEMBLOCK_ALLOC_ACCESSIBLE, 0),
            Err(MemblockError::BadAlign { align: 3 })
        );
        let a = m
            .alloc_exact_nid_raw(SZ_4K, 0x4_0000, 0, 0x1008_0000, 0)
            .unwrap();
        let want = if bu { 0x1000_0000 } else { 0x1004_0000 };
        assert_eq!(a, want);
    });
}

// ----------------------------------------------------------- atomic table doubling

#[test]
fn failed_table_doubling_is_atomic() {
    // memblock.memory is full and may double, but memblock.reserved is full at its
    // compile-time size: the new memory array cannot be reserved.
    let mut m: Memblock<256> = Memblock::new(PHYS_ADDR_MAX_32);
    m.allow_resize();
    m.add(0x4000_0000, 0x1000_0000).unwrap();
    let mut i = 0u64;
    while m.reserved.cnt() < 256 {
        m.reserve(0x1000_0000 + i * 0x2000, 0x1000).unwrap();
        i += 1;
    }
    assert_eq!(m.reserved.max(), 256);
    for j in 1..128u64 {
        m.add(0x6000_0000 + j * SZ_2M, SZ_1M).unwrap();
    }
    assert_eq!((m.memory.cnt(), m.memory.max()), (128, 128));
    let memory = regs(&m.memory);
    let reserved = regs(&m.reserved);
    let (mem_size, res_size) = (m.phys_mem_size(), m.reserved_size());

    assert_eq!(
        m.add(0x9000_0000, SZ_1M),
        Err(MemblockError::TableFull {
            table: TableKind::Reserved,
            capacity: 256
        })
    );
    assert_eq!(m.memory.max(), 128);
    assert_eq!(m.memory.array(), None);
    assert_eq!(regs(&m.memory), memory);
    assert_eq!(regs(&m.reserved), reserved);
    assert_eq!((m.phys_mem_size(), m.reserved_size()), (mem_size, res_size));
}

#[test]
fn failed_reserved_table_doubling_is_atomic() {
    // Doubled once (128 -> 256, array A), full again; the next doubling can only
    // reach N = 257, one slot short of freeing A and reserving the new array.
    let mut m: Memblock<257> = Memblock::new(PHYS_ADDR_MAX_32);
    m.allow_resize();
    m.add(0x4000_0000, 0x1000_0000).unwrap();
    let mut i = 0u64;
    while m.reserved.cnt() < 256 {
        m.reserve(0x1000_0000 + i * 0x2000, 0x1000).unwrap();
        i += 1;
    }
    let array = m.reserved.array();
    assert!(array.is_some());
    assert_eq!(m.reserved.max(), 256);
    let reserved = regs(&m.reserved);
    let res_size = m.reserved_size();
    assert_eq!(
        m.reserve(0x1000_0000 + i * 0x2000, 0x1000),
        Err(MemblockError::TableFull {
            table: TableKind::Reserved,
            capacity: 256
        })
    );
    assert_eq!(m.reserved.max(), 256);
    assert_eq!(m.reserved.array(), array);
    assert_eq!(regs(&m.reserved), reserved);
    assert_eq!(m.reserved_size(), res_size);
}

#[test]
fn memory_doubling_grows_a_full_reserved_table_first() {
    // Both tables full at 128, both may double: reserved grows first (its array
    // clear of memory's), then memory, and every array is reserved.
    let mut m: Memblock<256> = Memblock::new(PHYS_ADDR_MAX_32);
    m.allow_resize();
    m.add(0x4000_0000, 0x1000_0000).unwrap();
    for i in 0..128u64 {
        m.reserve(0x1000_0000 + i * 0x2000, 0x1000).unwrap();
    }
    for j in 1..128u64 {
        m.add(0x6000_0000 + j * SZ_2M, SZ_1M).unwrap();
    }
    assert_eq!((m.memory.max(), m.reserved.max()), (128, 128));
    m.add(0x9000_0000, SZ_1M).unwrap();
    assert_eq!((m.memory.max(), m.reserved.max()), (256, 256));
    let (mem_arr, res_arr) = (m.memory.array().unwrap(), m.reserved.array().unwrap());
    assert!(!mem_arr.overlaps(&res_arr));
    assert!(m.is_region_reserved(mem_arr.base, mem_arr.size));
    assert!(m.is_region_reserved(res_arr.base, res_arr.size));
    assert_eq!(m.memory.cnt(), 129);
}

// ------------------------------------------------------- searches and error kinds

#[test]
fn bottom_up_min_addr_near_max_stays_in_ram() {
    both(|bu| {
        let mut m = mb_dir(bu);
        m.add(0x6000_0000, 0x2000_0000).unwrap();
        for min_addr in [u64::MAX - 10, u64::MAX, u64::MAX - SZ_4K] {
            // nothing above min_addr: memblock_alloc_internal retries from 0
            let a = m
                .alloc_try_nid_raw(16, SZ_4K, min_addr, MEMBLOCK_ALLOC_ANYWHERE, NUMA_NO_NODE)
                .unwrap();
            assert!(m.is_memory(a), "{a:#x} is not RAM (bottom_up={bu})");
            // the range-bound variant has no fallback: nothing found
            assert_eq!(
                m.phys_alloc_range(16, SZ_4K, min_addr, MEMBLOCK_ALLOC_ANYWHERE),
                None
            );
            assert_eq!(
                m.find_in_range_node(
                    16,
                    SZ_4K,
                    min_addr,
                    u64::MAX,
                    NUMA_NO_NODE,
                    RegionFlags::NONE
                ),
                None
            );
        }
        // Every reservation lies in RAM.
        for r in m.reserved.regions() {
            assert!(m.is_region_memory(r.base, r.size), "{r:?}");
        }
    });
}

#[test]
fn full_reserved_table_reports_table_full() {
    both(|bu| {
        let mut m: Memblock<16> = Memblock::new(PHYS_ADDR_MAX_32);
        m.set_bottom_up(bu);
        m.add(0x6000_0000, 0x1000_0000).unwrap();
        for i in 0..16u64 {
            m.reserve(0x6000_0000 + i * 0x2_0000, SZ_4K).unwrap();
        }
        let full = Err(MemblockError::TableFull {
            table: TableKind::Reserved,
            capacity: 16,
        });
        assert_eq!(
            m.alloc_try_nid_raw(SZ_4K, SZ_4K, 0, MEMBLOCK_ALLOC_ACCESSIBLE, NUMA_NO_NODE),
            full
        );
        let mut storage = VecPageStorage::default();
        assert_eq!(m.alloc(&mut storage, SZ_4K, SZ_4K), full);
        assert_eq!(
            m.alloc_exact_nid_raw(SZ_4K, SZ_4K, 0x6800_0000, MEMBLOCK_ALLOC_ACCESSIBLE, 0),
            full
        );
        assert_eq!(m.reserved.cnt(), 16);
        // a request nothing can satisfy is still NoSpace
        assert!(matches!(
            m.alloc_try_nid_raw(
                0x2000_0000,
                SZ_4K,
                0,
                MEMBLOCK_ALLOC_ACCESSIBLE,
                NUMA_NO_NODE
            ),
            Err(MemblockError::NoSpace { .. })
        ));
    });
}
