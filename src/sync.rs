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
//! Time goes through the same seam: [`Clock`] is where the gate (and the background refresher, and a
//! login's polling) read the monotonic and the wall clock. Unit tests give a gate a manual clock and
//! move each clock on its own, to play a laptop's suspend (the monotonic clock stops, the wall clock
//! runs on) or a wall clock set back or forth, without sleeping; a login's waits move a manual clock
//! on instead of sleeping ([`Clock::skip_to`]).
//!
//! [loom]: https://docs.rs/loom

use std::time::{Duration, Instant, SystemTime};

#[cfg(not(loom))]
pub(crate) use parking_lot::{Condvar, Mutex};

/// The short-lived threads a gate starts (refreshes that requests wait for, refreshes ahead of
/// expiry), kept so that the last client of the gate can join them: a program that frees its
/// client and exits then leaves no thread of tokengate's behind (a thread still running at exit is
/// what valgrind reports as a "possibly lost" block).
#[cfg(not(loom))]
#[derive(Default)]
pub(crate) struct Threads(Mutex<Vec<std::thread::JoinHandle<()>>>);

#[cfg(not(loom))]
impl Threads {
    /// Starts a thread named `name`; handles of threads that have finished are let go.
    pub(crate) fn spawn(
        &self,
        name: &str,
        f: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<()> {
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                OWN_THREAD.set(Some(std::thread::current().id()));
                f();
            })?;
        let mut handles = self.0.lock();
        handles.retain(|h| !h.is_finished());
        handles.push(handle);
        Ok(())
    }

    /// Joins every thread started so far (a thread that is the caller itself is let go: it is
    /// about to return anyway). Call it only when they have no more work: a thread busy with a
    /// refresh holds the caller until that refresh ends.
    pub(crate) fn join(&self) {
        let handles = std::mem::take(&mut *self.0.lock());
        // Not `std::thread::current()`: on a thread Rust did not start (a C program's main
        // thread) that allocates a handle kept until exit, which valgrind reports.
        let me = OWN_THREAD.get();
        for handle in handles {
            if Some(handle.thread().id()) != me {
                let _ = handle.join();
            }
        }
    }
}

#[cfg(not(loom))]
thread_local! {
    /// On a thread started by [`Threads::spawn`], its id.
    static OWN_THREAD: std::cell::Cell<Option<std::thread::ThreadId>> =
        const { std::cell::Cell::new(None) };
}

#[cfg(all(loom, test))]
pub(crate) use model::allow_timeouts;
#[cfg(loom)]
pub(crate) use model::{Condvar, Mutex, Threads};

#[cfg(loom)]
mod model {
    use std::cell::{Cell, RefCell};
    use std::ops::{Deref, DerefMut};
    use std::sync::Arc;
    use std::time::Instant;

    use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};

    /// Starts loom threads (loom threads have no names); joining is left to the model.
    #[derive(Default)]
    pub(crate) struct Threads;

    impl Threads {
        pub(crate) fn spawn(
            &self,
            _name: &str,
            f: impl FnOnce() + Send + 'static,
        ) -> std::io::Result<()> {
            drop(loom::thread::spawn(f));
            Ok(())
        }

        pub(crate) fn join(&self) {}
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

/// A reading of both clocks, taken together.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Now {
    /// The monotonic clock: never goes back, but on Linux stops while the machine sleeps.
    pub(crate) mono: Instant,
    /// The wall clock: runs on through a sleep, but can be set back or forth.
    pub(crate) wall: SystemTime,
}

/// Where the gate reads the time. The real clocks, or, in unit tests, a [`ManualClock`].
#[derive(Clone, Default)]
pub(crate) struct Clock {
    #[cfg(test)]
    manual: Option<std::sync::Arc<ManualClock>>,
}

/// The longest the background refresher sleeps before it looks at the clocks again. The monotonic
/// clock its sleep is measured on stops while the machine is suspended, so after a resume it wakes
/// within this long and notices (on the wall clock) a token that expired meanwhile.
pub(crate) const MAX_NAP: Duration = Duration::from_secs(15);

impl Clock {
    /// Both clocks, now.
    pub(crate) fn now(&self) -> Now {
        #[cfg(test)]
        if let Some(m) = &self.manual {
            return m.now();
        }
        Now {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// The longest nap of the background refresher (see [`MAX_NAP`]); a manual clock's is short, so
    /// tests see it notice a moved clock at once.
    pub(crate) fn max_nap(&self) -> Duration {
        #[cfg(test)]
        if self.manual.is_some() {
            return Duration::from_millis(5);
        }
        MAX_NAP
    }

    /// Lets the time pass until `at` without waiting, when this is a manual clock: it is moved on
    /// to `at` (if it is not there yet), and `true` says the caller need not wait. The real clocks
    /// cannot be moved: `false`, and the caller waits (e.g. a login's polling, on its cancellable
    /// condition). So code that waits for time reads as it runs, and its unit tests do not sleep.
    pub(crate) fn skip_to(&self, at: Instant) -> bool {
        #[cfg(test)]
        if let Some(m) = &self.manual {
            let now = m.now().mono;
            if at > now {
                m.advance(at - now);
            }
            return true;
        }
        let _ = at;
        false
    }

    /// A clock that only moves when the test moves it.
    #[cfg(test)]
    pub(crate) fn manual() -> (Clock, std::sync::Arc<ManualClock>) {
        let m = std::sync::Arc::new(ManualClock {
            start: Now {
                mono: Instant::now(),
                wall: SystemTime::now(),
            },
            offsets: std::sync::Mutex::new((Duration::ZERO, 0)),
        });
        (
            Clock {
                manual: Some(std::sync::Arc::clone(&m)),
            },
            m,
        )
    }
}

/// A test clock: the reading taken when it was made, plus offsets the test sets.
#[cfg(test)]
pub(crate) struct ManualClock {
    start: Now,
    /// How far the monotonic clock has moved, and how far (in signed milliseconds) the wall clock.
    offsets: std::sync::Mutex<(Duration, i64)>,
}

#[cfg(test)]
impl ManualClock {
    fn now(&self) -> Now {
        let (mono, wall_ms) = *self.offsets.lock().unwrap();
        let wall = if wall_ms >= 0 {
            self.start.wall + Duration::from_millis(wall_ms.unsigned_abs())
        } else {
            self.start.wall - Duration::from_millis(wall_ms.unsigned_abs())
        };
        Now {
            mono: self.start.mono + mono,
            wall,
        }
    }

    /// Time passes normally: both clocks move on by `d`.
    pub(crate) fn advance(&self, d: Duration) {
        let mut o = self.offsets.lock().unwrap();
        o.0 += d;
        o.1 += i64::try_from(d.as_millis()).unwrap();
    }

    /// The machine sleeps for `d`: the wall clock moves on, the monotonic one does not.
    pub(crate) fn suspend(&self, d: Duration) {
        self.offsets.lock().unwrap().1 += i64::try_from(d.as_millis()).unwrap();
    }

    /// The wall clock is set back (negative) or forth by `ms` milliseconds.
    pub(crate) fn set_wall_by(&self, ms: i64) {
        self.offsets.lock().unwrap().1 += ms;
    }
}
