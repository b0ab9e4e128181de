//! [`Cancel`]: stops a login from another thread, at once.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::sync::Clock;

/// Cancels a running login ([`DeviceLogin::run`](crate::login::DeviceLogin::run),
/// [`BrowserLogin::run`](crate::login::BrowserLogin::run)) from another thread: a "Cancel" button,
/// a Ctrl-C handler, a program shutting down.
///
/// Clones share one flag. Cancelling wakes a login that waits between two polls of the token
/// endpoint, or for the browser to come back, at once; the login then returns a
/// [`LoginError`](crate::LoginError) of kind [`Cancelled`](crate::LoginErrorKind::Cancelled) and
/// installs nothing. A request already on the wire is not cut short: it ends within its own
/// timeout. Once cancelled, a `Cancel` stays cancelled: use a new one for the next login.
///
/// ```
/// use tokengate::login::Cancel;
///
/// let cancel = Cancel::new();
/// let button = cancel.clone(); // e.g. moved into a UI callback
/// assert!(!cancel.is_cancelled());
/// button.cancel();
/// assert!(cancel.is_cancelled());
/// ```
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: Mutex<bool>,
    woken: Condvar,
}

impl Cancel {
    /// A flag that is not cancelled yet.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Cancels every login this flag (or a clone of it) was given to, and wakes them.
    pub fn cancel(&self) {
        *self.inner.cancelled.lock() = true;
        self.inner.woken.notify_all();
    }

    /// Whether [`cancel`](Cancel::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        *self.inner.cancelled.lock()
    }

    /// Waits until `at` (on `clock`'s monotonic time) or until cancelled, whichever is first, and
    /// returns whether it was cancelled. A manual clock is moved on to `at` instead of waiting.
    pub(crate) fn wait_until(&self, clock: &Clock, at: Instant) -> bool {
        let mut cancelled = self.inner.cancelled.lock();
        if *cancelled || clock.skip_to(at) {
            return *cancelled;
        }
        // Until the deadline has passed by the clock itself: a wake-up a hair early (or a spurious
        // one) waits again, so a poll never goes out before its interval is over.
        while !*cancelled && Instant::now() < at {
            self.inner.woken.wait_until(&mut cancelled, at);
        }
        *cancelled
    }
}

impl fmt::Debug for Cancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn cancel_wakes_a_waiter_at_once() {
        let cancel = Cancel::new();
        let waiter = cancel.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let far = Instant::now() + Duration::from_secs(3600);
            tx.send(waiter.wait_until(&Clock::default(), far)).unwrap();
        });
        // Not woken by anything but the cancel: no answer yet.
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        cancel.cancel();
        assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
        // Stays cancelled: the next wait returns at once.
        assert!(cancel.wait_until(
            &Clock::default(),
            Instant::now() + Duration::from_secs(3600)
        ));
    }

    #[test]
    fn a_wait_ends_at_its_deadline_and_a_manual_clock_moves_instead() {
        let cancel = Cancel::new();
        let start = Instant::now();
        assert!(!cancel.wait_until(&Clock::default(), start + Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));

        let (clock, _manual) = Clock::manual();
        let before = clock.now().mono;
        let real = Instant::now();
        assert!(!cancel.wait_until(&clock, before + Duration::from_secs(3600)));
        assert_eq!(clock.now().mono - before, Duration::from_secs(3600));
        assert!(real.elapsed() < Duration::from_secs(60), "did not sleep");
    }
}
