//! memblock public-API error paths: atomic table doubling, bottom-up searches at the
//! top of the address space and a full reserved table. Allocation tests run top-down and bottom-up on a fresh state, as Linux's
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
