//! Model check of the gate: loom runs each small case through every interleaving of its threads
//! (the gate's lock, condition variable and advisory-refresh thread go through `crate::sync`).
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test --release --lib loom
//! ```
//!
//! In every case: no deadlock and no lost wake-up (loom fails a model in which a thread waits for a
//! notification that never comes), never two refreshes in flight (the refresher counts itself in and
//! out around a scheduling point), and every thread ends with a typed outcome.
//!
//! Time does not advance inside a model. The tokens are either long expired, comfortably fresh, or
//! comfortably inside the advisory window, so no decision depends on the clock; timeouts are loom
//! timer threads (see `crate::sync`). The gate treats a timed-out wait as "that moment has come",
//! so a timer that fires ends a backoff or a budget.
//!
//! Most models use a 10 s budget and a longer backoff, which the gate caps at the budget: after a
//! failure the next attempt comes after every caller's budget, so callers fail at once rather
//! than wait for a timer. Timers stand for at most those 10 s, far less than a fresh token's hour.

use std::panic;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, SystemTime};

use loom::sync::Notify;
use loom::sync::atomic::AtomicUsize as LoomUsize;

use super::*;
use crate::sync::allow_timeouts;

/// The panic message of the panicking refresher; silenced in the test output.
const PANIC_MARK: &str = "refresher bug (loom model)";

/// What a refresher saw across one execution.
#[derive(Default)]
struct Probe {
    calls: AtomicUsize,
    in_flight: LoomUsize,
    max_in_flight: AtomicUsize,
}

impl Probe {
    /// Counts a refresh in, lets loom switch threads mid-"network call", counts it out.
    fn refresh(&self) -> usize {
        let call = self.calls.fetch_add(1, SeqCst) + 1;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.max_in_flight.fetch_max(now, SeqCst);
        loom::thread::yield_now();
        self.in_flight.fetch_sub(1, SeqCst);
        call
    }

    fn assert_single_flight(&self) {
        assert_eq!(
            self.max_in_flight.load(SeqCst),
            1,
            "two refreshes in flight"
        );
    }
}

fn expired() -> Token {
    Token::new("old")
        .with_refresh_token("r")
        .with_expires_at_wall(SystemTime::now() - Duration::from_secs(3600))
}

fn fresh() -> Token {
    Token::new("old")
        .with_refresh_token("r")
        .with_expires_in(Duration::from_secs(3600))
}

fn new_token(call: usize) -> Token {
    Token::new(format!("new{call}")).with_expires_in(Duration::from_secs(3600))
}

/// Builds a gate whose refresher reports to a [`Probe`] and answers with `answer(call)`, with a
/// 10 s budget and a 20 s backoff (capped at the budget).
fn gate(
    token: Token,
    answer: impl Fn(usize) -> Result<Token, RefreshError> + Send + Sync + 'static,
) -> (Gate, Arc<Probe>) {
    gate_with(
        token,
        Duration::from_secs(20),
        Duration::from_secs(10),
        answer,
    )
}

/// [`gate`] with the given backoff (initial and maximum) and budget.
fn gate_with(
    token: Token,
    backoff: Duration,
    budget: Duration,
    answer: impl Fn(usize) -> Result<Token, RefreshError> + Send + Sync + 'static,
) -> (Gate, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    let p = Arc::clone(&probe);
    let gate = Gate::builder()
        .token(token)
        .refresher(move |_: &Token| answer(p.refresh()))
        .refresh_backoff(backoff, backoff)
        .refresh_timeout(budget)
        .build()
        .unwrap();
    (gate, probe)
}

/// Runs `f` under loom through every interleaving (no preemption bound unless `LOOM_MAX_PREEMPTIONS`
/// sets one), prints how many there were, and fails a model so small it explores only one.
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    loom::model::Builder::new().check(move || {
        r.fetch_add(1, SeqCst);
        f();
    });
    let runs = runs.load(SeqCst);
    eprintln!("loom: {name}: {runs} interleavings explored");
    assert!(runs > 1, "{name}: the model explored a single interleaving");
}

#[test]
fn two_requesters_and_a_refresh_that_fails() {
    model("two_requesters_and_a_refresh_that_fails", || {
        let (gate, probe) = gate(expired(), |_| Err(RefreshError::transient("down")));
        let g = gate.clone();
        // A requester that arrives after the failure waits for the next attempt (its backoff ends
        // within the budget): its timer stands for the backoff running out.
        let other = loom::thread::spawn(move || {
            allow_timeouts(1);
            g.lease()
        });
        allow_timeouts(1);
        let mine = gate.lease();
        let theirs = other.join().unwrap();
        for outcome in [mine, theirs] {
            let e = outcome.expect_err("the token is expired and every refresh fails");
            // The attempt's error, or a timeout when a timer stood for the budget running out
            // while the other requester's attempt ran.
            assert!(
                matches!(e, Error::Refresh(_) | Error::RefreshTimeout(_)),
                "{e}"
            );
        }
        probe.assert_single_flight();
        // One attempt per requester at most: never a refresh during a backoff.
        let calls = probe.calls.load(SeqCst);
        assert!(
            (1..=2).contains(&calls),
            "{calls} refreshes for two requesters"
        );
        assert!(
            !gate.shared.state.lock().refreshing,
            "refreshing flag left behind"
        );
    });
}

#[test]
fn a_rejection_racing_a_successful_refresh_refreshes_once() {
    model(
        "a_rejection_racing_a_successful_refresh_refreshes_once",
        || {
            let (gate, probe) = gate(fresh(), |call| Ok(new_token(call)));
            let run = |gate: Gate| {
                move || {
                    let lease = gate.lease().unwrap();
                    // The server rejects whatever token this thread sent.
                    let rejection = gate.reject(&lease);
                    // After a final rejection the next lease waits out a backoff: let it end (a
                    // timer may also stand for a budget running out while the other refreshes).
                    allow_timeouts(1);
                    let next = gate.lease().map(|l| l.generation());
                    (lease.generation(), rejection, next)
                }
            };
            let other = loom::thread::spawn(run(gate.clone()));
            let mine = run(gate.clone())();
            let theirs = other.join().unwrap();
            probe.assert_single_flight();
            let finals = [&mine, &theirs]
                .iter()
                .filter(|(_, r, _)| *r == Rejection::Final)
                .count();
            // A stale rejection never refreshes again; a rejection of the refreshed token (the
            // server rejected it before accepting it) refreshes once more, after a backoff.
            let calls = probe.calls.load(SeqCst);
            if finals == 0 {
                assert_eq!(calls, 1, "a stale rejection refreshed again");
            } else {
                assert!((1..=2).contains(&calls), "{calls} refreshes");
            }
            for (sent, rejection, next) in [mine, theirs] {
                match next {
                    Ok(next) => assert!(
                        next == 2 || (finals > 0 && next == 3),
                        "ended on generation {next}"
                    ),
                    // A timer stood for the budget, or the other thread's final rejection put
                    // the next attempt past this one's budget.
                    Err(e) => assert!(
                        matches!(e, Error::RefreshTimeout(_) | Error::Refresh(_)),
                        "{e}"
                    ),
                }
                match sent {
                    1 => assert!(
                        matches!(rejection, Rejection::Invalidated | Rejection::Replaced),
                        "{rejection:?}"
                    ),
                    // The refreshed token was never accepted: its rejection is final, no replay.
                    _ => assert_eq!(rejection, Rejection::Final),
                }
            }
        },
    );
}

#[test]
fn a_waiter_timing_out_while_the_refresh_completes() {
    model("a_waiter_timing_out_while_the_refresh_completes", || {
        let (gate, probe) = gate(expired(), |call| Ok(new_token(call)));
        let g = gate.clone();
        let waiter = loom::thread::spawn(move || {
            allow_timeouts(1);
            g.lease()
        });
        let mine = gate.lease();
        let theirs = waiter.join().unwrap();
        probe.assert_single_flight();
        assert_eq!(
            probe.calls.load(SeqCst),
            1,
            "a timed-out waiter refreshed again"
        );
        assert_eq!(mine.unwrap().generation(), 2);
        match theirs {
            Ok(lease) => assert_eq!(lease.generation(), 2),
            Err(e) => assert!(matches!(e, Error::RefreshTimeout(_)), "{e}"),
        }
        // Whatever the waiter saw, the gate serves the new token without another refresh.
        assert_eq!(gate.lease().unwrap().generation(), 2);
        assert_eq!(probe.calls.load(SeqCst), 1);
    });
}

#[test]
fn a_panicking_refresher_wedges_nobody() {
    let quiet = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains(PANIC_MARK) {
            quiet(info);
        }
    }));
    model("a_panicking_refresher_wedges_nobody", || {
        let (gate, probe) = gate(expired(), |call| {
            if call == 1 {
                panic!("{PANIC_MARK}");
            }
            Ok(new_token(call))
        });
        let g = gate.clone();
        let other = loom::thread::spawn(move || g.lease());
        let mine = gate.lease();
        let theirs = other.join().unwrap();
        probe.assert_single_flight();
        for outcome in [mine, theirs] {
            match outcome {
                Ok(lease) => assert_eq!(lease.generation(), 2),
                Err(e) => assert!(matches!(e, Error::RefresherPanicked), "{e}"),
            }
        }
        // The panic left nothing behind: the next lease refreshes (or has already) and succeeds.
        // It may have to wait for the backoff to end: let its timer fire.
        allow_timeouts(1);
        assert_eq!(gate.lease().unwrap().generation(), 2);
        assert!(!gate.shared.state.lock().refreshing);
    });
}

#[test]
fn the_advisory_refresh_thread_is_single_flight() {
    model("the_advisory_refresh_thread_is_single_flight", || {
        let done = Arc::new(Notify::new());
        let d = Arc::clone(&done);
        // Valid for 100 s: outside the 60 s mandatory window, inside the 5 min advisory one.
        let token = Token::new("old")
            .with_refresh_token("r")
            .with_expires_at_wall(SystemTime::now() + Duration::from_secs(100));
        let (gate, probe) = gate(token, move |call| {
            d.notify();
            Ok(new_token(call))
        });
        let g = gate.clone();
        let other = loom::thread::spawn(move || g.lease().unwrap().generation());
        let mine = gate.lease().unwrap().generation();
        let theirs = other.join().unwrap();
        // Nobody waited: each got the old token or, if the background refresh already landed,
        // the new one.
        assert!(mine <= 2 && theirs <= 2);
        done.wait();
        probe.assert_single_flight();
        assert_eq!(probe.calls.load(SeqCst), 1);
    });
}

#[test]
fn a_waiter_sleeps_through_a_backoff_and_is_woken_by_the_next_attempt() {
    model(
        "a_waiter_sleeps_through_a_backoff_and_is_woken_by_the_next_attempt",
        || {
            // The first attempt fails; the backoff (a second) ends well within the budget (10 s),
            // so both requesters wait for the second attempt, which one of them runs.
            let (gate, probe) = gate_with(
                expired(),
                Duration::from_secs(1),
                Duration::from_secs(10),
                |call| {
                    if call == 1 {
                        Err(RefreshError::transient("503"))
                    } else {
                        Ok(new_token(call))
                    }
                },
            );
            let g = gate.clone();
            let other = loom::thread::spawn(move || {
                allow_timeouts(1);
                g.lease()
            });
            allow_timeouts(1);
            let mine = gate.lease();
            let theirs = other.join().unwrap();
            probe.assert_single_flight();
            assert!(probe.calls.load(SeqCst) <= 2);
            let mut served = 0;
            for outcome in [mine, theirs] {
                match outcome {
                    Ok(lease) => {
                        assert_eq!(lease.generation(), 2, "served the second attempt's token");
                        served += 1;
                    }
                    // A timer standing for the whole hour's budget fired first.
                    Err(e) => assert!(
                        matches!(e, Error::RefreshTimeout(_) | Error::Refresh(_)),
                        "{e}"
                    ),
                }
            }
            if served > 0 {
                assert_eq!(probe.calls.load(SeqCst), 2);
            }
            assert!(!gate.shared.state.lock().refreshing);
        },
    );
}
