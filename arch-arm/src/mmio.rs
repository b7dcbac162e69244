//! 32-bit device-register access for the BSP drivers, behind a trait so that a driver
//! can be tested on the host against a fake register block (the Tock approach: the
//! driver logic is generic over its registers). Linux's equivalent is
//! `readl_relaxed`/`writel_relaxed` on an `__iomem` cookie from `ioremap`.
//!
//! [`Mmio`] is the real thing (volatile accesses at a physical address, MMU off);
//! with the `fake-mmio` feature, [`fake::FakeRegisters`](crate::mmio) (module `fake`) records every write and
//! replays scripted reads.

/// Reads and writes 32-bit device registers at byte offsets from a block's base.
pub trait RegisterIo: Sync {
    /// Read the register at `offset`.
    fn read32(&self, offset: usize) -> u32;
    /// Write `value` to the register at `offset`.
    fn write32(&self, offset: usize, value: u32);
    /// Move the block to virtual address `base` (when `paging_init` maps it in the
    /// device window); a no-op for blocks that cannot move.
    ///
    /// # Safety
    ///
    /// `base` must be where this block's registers are mapped from now on (the MMU
    /// is on and maps them there as device memory): every later access goes there.
    unsafe fn remap(&self, _base: usize) {}
}

impl<T: RegisterIo + ?Sized> RegisterIo for &T {
    fn read32(&self, offset: usize) -> u32 {
        (**self).read32(offset)
    }
    fn write32(&self, offset: usize, value: u32) {
        (**self).write32(offset, value)
    }
    unsafe fn remap(&self, base: usize) {
        // SAFETY: the caller upholds `remap`'s contract for the block behind the
        // reference.
        unsafe { (**self).remap(base) }
    }
}

/// Bytes of a register block an [`Mmio`] reaches: one page, as the device window
/// maps each device.
pub const MMIO_BLOCK_BYTES: usize = 0x1000;

/// A memory-mapped register block: at its physical address through identity
/// addressing while the MMU is off, then at the device-window address `paging_init`
/// gives it ([`RegisterIo::remap`]). Accesses are volatile and exist only on the
/// bare-metal target. They reach only the aligned 32-bit words of the block's
/// [`MMIO_BLOCK_BYTES`]: any other offset is a driver bug, and the access does
/// nothing (a read returns all ones, as a bus with no device does), so that no
/// safe call can touch other memory.
#[derive(Debug)]
pub struct Mmio {
    base: core::sync::atomic::AtomicUsize,
}

impl Mmio {
    /// The register block at physical address `base`.
    ///
    /// # Safety
    ///
    /// `base` must be the register block of a device of the running board (a
    /// [`crate::board::BoardDesc`] constant), reachable at that address (identity
    /// addressing with the MMU off), its [`MMIO_BLOCK_BYTES`] device registers (or
    /// reserved, harmless to access), and no other code may drive the same registers
    /// in a way that conflicts with the driver using this block: every
    /// [`RegisterIo`] access then writes or reads that device.
    pub const unsafe fn new(base: usize) -> Self {
        Self {
            base: core::sync::atomic::AtomicUsize::new(base),
        }
    }

    /// The block's current address (physical until remapped).
    pub fn base(&self) -> usize {
        self.base.load(core::sync::atomic::Ordering::Relaxed)
    }

    /// The address of the aligned 32-bit register at `offset`, if the block has one
    /// there.
    pub fn register(&self, offset: usize) -> Option<usize> {
        (offset.is_multiple_of(4) && offset < MMIO_BLOCK_BYTES).then(|| self.base() + offset)
    }
}

#[cfg(all(target_arch = "arm", target_os = "none"))]
impl RegisterIo for Mmio {
    fn read32(&self, offset: usize) -> u32 {
        let Some(reg) = self.register(offset) else {
            return u32::MAX;
        };
        // SAFETY: `reg` is an aligned word of the board's device register block
        // (`Mmio::new`'s contract), identity-mapped with the MMU off, or of its
        // device-window mapping after `remap` (whose contract says the block is
        // mapped there).
        unsafe { core::ptr::read_volatile(reg as *const u32) }
    }
    fn write32(&self, offset: usize, value: u32) {
        let Some(reg) = self.register(offset) else {
            return;
        };
        // SAFETY: as in `read32`.
        unsafe { core::ptr::write_volatile(reg as *mut u32, value) }
    }
    unsafe fn remap(&self, base: usize) {
        self.base.store(base, core::sync::atomic::Ordering::Relaxed);
    }
}

/// A fake register block for host tests of drivers (this crate's own tests too).
#[cfg(any(test, feature = "fake-mmio"))]
pub mod fake {
    extern crate std;
    use super::RegisterIo;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::vec::Vec;

    /// Registers that hold what was last written (or preset), log every write, and
    /// can report a value for a number of reads before settling (a FIFO that stays
    /// full for a while).
    #[derive(Debug, Default)]
    pub struct FakeRegisters {
        state: Mutex<State>,
    }

    #[derive(Debug, Default)]
    struct State {
        values: BTreeMap<usize, u32>,
        scripted: BTreeMap<usize, (u32, usize)>,
        writes: Vec<(usize, u32)>,
        reads: usize,
    }

    impl FakeRegisters {
        /// A block whose registers all read 0.
        pub fn new() -> Self {
            Self::default()
        }

        /// Preset the register at `offset`.
        pub fn set(&self, offset: usize, value: u32) {
            self.state.lock().unwrap().values.insert(offset, value);
        }

        /// The next `times` reads of `offset` return `value`, then its normal value.
        pub fn read_as(&self, offset: usize, value: u32, times: usize) {
            self.state
                .lock()
                .unwrap()
                .scripted
                .insert(offset, (value, times));
        }

        /// Every write so far, in order, as (offset, value).
        pub fn writes(&self) -> Vec<(usize, u32)> {
            self.state.lock().unwrap().writes.clone()
        }

        /// The values written to `offset`, in order.
        pub fn written_to(&self, offset: usize) -> Vec<u32> {
            self.writes()
                .into_iter()
                .filter(|&(o, _)| o == offset)
                .map(|(_, v)| v)
                .collect()
        }

        /// How many reads the driver made.
        pub fn reads(&self) -> usize {
            self.state.lock().unwrap().reads
        }
    }

    impl RegisterIo for FakeRegisters {
        fn read32(&self, offset: usize) -> u32 {
            let mut s = self.state.lock().unwrap();
            s.reads += 1;
            if let Some((value, left)) = s.scripted.get_mut(&offset) {
                if *left > 0 {
                    *left -= 1;
                    return *value;
                }
            }
            s.values.get(&offset).copied().unwrap_or(0)
        }

        fn write32(&self, offset: usize, value: u32) {
            let mut s = self.state.lock().unwrap();
            s.writes.push((offset, value));
            s.values.insert(offset, value);
        }
    }
}
