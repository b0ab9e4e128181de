//! The gate's synchronisation primitives, behind one seam so its state machine can be model-checked.
//!
//! Normally these are parking_lot's `Mutex`, `MutexGuard` and `Condvar`, and [`spawn`] starts a named
//! `std::thread`. Built with `RUSTFLAGS="--cfg loom"`, they are thin wrappers over [loom]'s
//! primitives with parking_lot's API, and `spawn` starts a loom thread, so `loom::model` can run the
//! gate through every interleaving of its threads (see `src/gate/loom_tests.rs`).
//!
//! loom has no clock. A timed wait ([`Condvar::wait_until`]) is modelled as a plain wait, unless the
//! waiting thread called [`allow_timeouts`]: then its wait may also end by a timeout at any point
//! of the interleaving, fired by a timer thread. Either way a thread that waits forever for a
//! wake-up that never comes is reported by loom as a deadlock.
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(loom))]
pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};

/// Starts a detached thread named `name`.
#[cfg(not(loom))]
pub(crate) fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map(drop)
}

#[cfg(all(loom, test))]
pub(crate) use model::allow_timeouts;
#[cfg(loom)]
pub(crate) use model::{Condvar, Mutex, MutexGuard, spawn};

#[cfg(loom)]
mod model {
    use std::cell::{Cell, RefCell};
    use std::ops::{Deref, DerefMut};
    use std::sync::Arc;
    use std::time::Instant;

    use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};

    /// Starts a loom thread (loom threads have no names).
    pub(crate) fn spawn(_name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        drop(loom::thread::spawn(f));
        Ok(())
    }

    loom::thread_local! {
        /// How many more timers this loom thread may start.
        static TIMEOUTS: Cell<usize> = Cell::new(0);
        /// The deadline of this thread's current timed wait and whether its timer has fired.
        static TIMER: RefCell<Option<(Instant, Arc<AtomicBool>)>> = RefCell::new(None);
    }

    /// Lets the calling loom thread's next `timers` timed waits (distinct deadlines) time out.
    #[cfg(test)]
    pub(crate) fn allow_timeouts(timers: usize) {
        TIMEOUTS.with(|t| t.set(timers));
    }

    /// parking_lot's `Mutex` API over `loom::sync::Mutex` (which never poisons here: the gate
    /// holds no lock across user code).
    pub(crate) struct Mutex<T> {
        inner: Arc<loom::sync::Mutex<T>>,
    }

    pub(crate) struct MutexGuard<'a, T> {
        mutex: &'a Mutex<T>,
        guard: Option<loom::sync::MutexGuard<'a, T>>,
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex {
                inner: Arc::new(loom::sync::Mutex::new(value)),
            }
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard {
                mutex: self,
                guard: Some(self.inner.lock().expect("no lock is held across user code")),
            }
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.guard.as_ref().expect("guard present outside a wait")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.guard.as_mut().expect("guard present outside a wait")
        }
    }

    /// parking_lot's `WaitTimeoutResult`.
    pub(crate) struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            self.0
        }
    }

    /// parking_lot's `Condvar` API over `loom::sync::Condvar`.
    pub(crate) struct Condvar {
        inner: Arc<loom::sync::Condvar>,
    }

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar {
                inner: Arc::new(loom::sync::Condvar::new()),
            }
        }

        pub(crate) fn notify_all(&self) {
            self.inner.notify_all();
        }

        /// Waits for a notification. If this thread may time out (see [`allow_timeouts`]), the
        /// first wait for a new `deadline` starts a timer thread that, at any point loom chooses,
        /// takes the lock, marks the deadline passed and wakes every waiter; once it has fired,
        /// waits for that deadline return at once, timed out.
        pub(crate) fn wait_until<T: Send + 'static>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            deadline: Instant,
        ) -> WaitTimeoutResult {
            let fired = TIMER.with(|timer| {
                let mut timer = timer.borrow_mut();
                if let Some((_, fired)) = timer.as_ref().filter(|(at, _)| *at == deadline) {
                    return Some(Arc::clone(fired));
                }
                if TIMEOUTS.with(|t| t.get()) == 0 {
                    return None;
                }
                TIMEOUTS.with(|t| t.set(t.get() - 1));
                let fired = Arc::new(AtomicBool::new(false));
                let (mutex, cv, flag) = (
                    Arc::clone(&guard.mutex.inner),
                    Arc::clone(&self.inner),
                    Arc::clone(&fired),
                );
                drop(loom::thread::spawn(move || {
                    let _held = mutex.lock();
                    flag.store(true, SeqCst);
                    cv.notify_all();
                }));
                *timer = Some((deadline, Arc::clone(&fired)));
                Some(fired)
            });
            let passed = || fired.as_ref().is_some_and(|f| f.load(SeqCst));
            if passed() {
                return WaitTimeoutResult(true);
            }
            let held = guard.guard.take().expect("guard present outside a wait");
            guard.guard = Some(
                self.inner
                    .wait(held)
                    .expect("no lock is held across user code"),
            );
            WaitTimeoutResult(passed())
        }
    }
}
