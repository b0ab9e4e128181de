//! The gate's timing policy as plain functions of their inputs: refresh windows and backoff.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Default mandatory window: a token this close to its expiry is refreshed before it is used.
pub(super) const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(60);
/// Default advisory window: from here on a refresh runs in the background.
pub(super) const REFRESH_AHEAD: Duration = Duration::from_secs(300);
/// Default budget of a request for getting a token (see `GateBuilder::refresh_timeout`).
pub(super) const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
/// Default first backoff after a transient failure.
pub(super) const BACKOFF_INITIAL: Duration = Duration::from_millis(250);
/// Default longest backoff, and the cap on a server's `Retry-After`.
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// No backoff is shorter: a zero one would retry in a tight loop.
pub(super) const MIN_BACKOFF: Duration = Duration::from_millis(10);

/// The mandatory and advisory windows for a token of `lifetime` (when known): the configured
/// ones, shortened to a tenth and a fifth of the lifetime, the advisory never shorter than the
/// mandatory one.
pub(super) fn windows(
    before_expiry: Duration,
    ahead: Duration,
    lifetime: Option<Duration>,
) -> (Duration, Duration) {
    let (window, ahead) = match lifetime {
        Some(l) => (before_expiry.min(l / 10), ahead.min(l / 5)),
        None => (before_expiry, ahead),
    };
    (window, ahead.max(window))
}

/// How much each consecutive failure lengthens the backoff. Gentler than doubling, so a short
/// outage is noticed soon after it ends: with the default 250 ms start, an endpoint that was
/// down for a second is tried again at most 0.85 s after it is back (doubling: up to 2 s).
pub(super) const BACKOFF_GROWTH: f64 = 1.5;

/// The backoff after the `failures`-th transient failure in a row: `initial` grown by
/// [`BACKOFF_GROWTH`] per failure up to `max`, jittered down by up to half (`random` picks
/// where), then at least the server's `retry_after` capped at `max`, and never under
/// [`MIN_BACKOFF`].
pub(super) fn backoff(
    initial: Duration,
    max: Duration,
    failures: u32,
    retry_after: Option<Duration>,
    random: u64,
) -> Duration {
    let growth = BACKOFF_GROWTH.powi(failures.saturating_sub(1).min(64) as i32);
    let exp = Duration::try_from_secs_f64(initial.as_secs_f64() * growth)
        .unwrap_or(max)
        .min(max);
    let jittered = exp.mul_f64(0.5 + (random % 1000) as f64 / 2000.0);
    let delay = match retry_after {
        Some(after) => jittered.max(after.min(max)),
        None => jittered,
    };
    delay.max(MIN_BACKOFF)
}

/// A random number for the jitter (std's hasher keys are random per process and per call).
pub(super) fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn windows_shrink_with_short_lifetimes() {
        let (w, a) = windows(REFRESH_BEFORE_EXPIRY, REFRESH_AHEAD, None);
        assert_eq!((w, a), (REFRESH_BEFORE_EXPIRY, REFRESH_AHEAD));
        let hour = Some(Duration::from_secs(3600));
        assert_eq!(
            windows(REFRESH_BEFORE_EXPIRY, REFRESH_AHEAD, hour),
            (REFRESH_BEFORE_EXPIRY, REFRESH_AHEAD)
        );
        let second = Some(Duration::from_secs(1));
        assert_eq!(
            windows(REFRESH_BEFORE_EXPIRY, REFRESH_AHEAD, second),
            (MS(100), MS(200))
        );
        // The advisory window turned off never ends before the mandatory one starts.
        assert_eq!(
            windows(MS(60_000), Duration::ZERO, None),
            (MS(60_000), MS(60_000))
        );
    }

    #[test]
    fn backoff_grows_jitters_down_and_caps() {
        let b = |n, ra, r| backoff(MS(250), MS(5000), n, ra, r);
        assert_eq!(b(1, None, 999), MS(250) - Duration::from_micros(125));
        assert_eq!(b(1, None, 0), MS(125));
        assert_eq!(b(2, None, 0), Duration::from_micros(187_500));
        assert_eq!(b(3, None, 0), Duration::from_micros(281_250));
        assert_eq!(b(10, None, 0), MS(2500), "capped at 5 s before the jitter");
        assert_eq!(b(u32::MAX, None, 0), MS(2500));
        for r in [0, 1, 500, 999, u64::MAX] {
            let d = b(30, None, r);
            assert!(d >= MS(2500) && d <= MS(5000), "{d:?}");
        }
    }

    #[test]
    fn a_one_second_outage_is_retried_within_a_second_of_its_end() {
        // Every jitter from the lowest to the highest: the first attempt after a one-second
        // outage (attempts from t = 0) comes at most 0.85 s after it ended.
        for r in (0..1000).step_by(7) {
            for low in [0, r] {
                let (mut t, mut n) = (Duration::ZERO, 1);
                while t < Duration::from_secs(1) {
                    // Alternate the jitter to mix early and late attempts.
                    let pick = if n % 2 == 0 { low } else { r };
                    t += backoff(BACKOFF_INITIAL, BACKOFF_MAX, n, None, pick);
                    n += 1;
                }
                assert!(t - Duration::from_secs(1) < MS(850), "{t:?} (r {r})");
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let b = |ra| backoff(MS(250), MS(5000), 1, Some(ra), 0);
        assert_eq!(b(Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(
            b(Duration::ZERO),
            MS(125),
            "a shorter Retry-After does not hurry us"
        );
        assert_eq!(b(Duration::from_secs(3600)), MS(5000), "an hour is capped");
        assert_eq!(b(Duration::MAX), MS(5000));
    }

    #[test]
    fn no_backoff_is_a_tight_loop() {
        assert_eq!(
            backoff(Duration::ZERO, Duration::ZERO, 1, None, 0),
            MIN_BACKOFF
        );
        assert_eq!(
            backoff(
                Duration::ZERO,
                Duration::ZERO,
                1,
                Some(Duration::from_secs(9)),
                0
            ),
            MIN_BACKOFF
        );
    }
}
