//! The locks of [`SmpPageAllocator`](super::SmpPageAllocator), as a family the
//! caller picks: [`SpinLocking`] (`spin::Mutex`, what a kernel uses) by default; a
//! model checker's mutex in tests (the `loom` test in `tests/tests/smp_loom.rs`
//! plugs in `loom::sync::Mutex`), so that the same allocator code is explored.

use core::ops::DerefMut;

/// A mutex over `T`.
pub trait Lock<T> {
    /// Held lock.
    type Guard<'a>: DerefMut<Target = T>
    where
        Self: 'a;
    /// A new, unlocked mutex.
    fn new(value: T) -> Self;
    /// Take the lock, spinning (or blocking) until it is free.
    fn lock(&self) -> Self::Guard<'_>;
    /// Take the lock if it is free now.
    fn try_lock(&self) -> Option<Self::Guard<'_>>;
    /// The value, through exclusive access (no locking needed).
    fn get_mut(&mut self) -> &mut T;
}

/// A family of mutexes: `Mutex<T>` for every `T`.
pub trait Locking {
    /// The mutex type.
    type Mutex<T>: Lock<T>;
}

/// `spin::Mutex`: the default, for a kernel (no OS to block on).
#[derive(Debug)]
pub struct SpinLocking;

impl Locking for SpinLocking {
    type Mutex<T> = spin::Mutex<T>;
}

impl<T> Lock<T> for spin::Mutex<T> {
    type Guard<'a>
        = spin::MutexGuard<'a, T>
    where
        T: 'a;

    fn new(value: T) -> Self {
        spin::Mutex::new(value)
    }

    #[inline]
    fn lock(&self) -> Self::Guard<'_> {
        spin::Mutex::lock(self)
    }

    #[inline]
    fn try_lock(&self) -> Option<Self::Guard<'_>> {
        spin::Mutex::try_lock(self)
    }

    fn get_mut(&mut self) -> &mut T {
        spin::Mutex::get_mut(self)
    }
}
