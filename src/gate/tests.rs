//! Gate unit tests: closures as refreshers, no sockets. Waiting is made deterministic by holding the
//! refresher on a channel until the gate's own `waits` counter shows every other thread blocked.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use tokengate_testserver::support::{PATIENCE, eventually};

use super::*;

/// Threads in the concurrency tests.
const THREADS: usize = 32;

fn expired() -> Token {
    Token::new("old")
        .with_refresh_token("r0")
        .with_expires_at_wall(std::time::SystemTime::now() - Duration::from_secs(1))
}

/// A gate holding an expired token, refreshed by `refresher`, with the default settings.
fn expired_gate(refresher: impl Refresh) -> Gate {
    Gate::builder()
        .token(expired())
        .refresher(refresher)
        .build()
        .unwrap()
}

/// A refresher that answers at once with `answer(call number)` and counts its calls.
fn counted(
    answer: impl Fn(usize) -> Result<Token, RefreshError> + Send + Sync + 'static,
) -> (
    Arc<AtomicUsize>,
    impl Fn(&Token) -> Result<Token, RefreshError> + Send + Sync + 'static,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    (calls, move |_: &Token| answer(c.fetch_add(1, SeqCst) + 1))
}

fn secret(lease: &Lease) -> &str {
    lease.token().access_token().secret()
}

/// A refresher that blocks until released, then answers with `answer()`. Counts its calls.
struct Held {
    calls: Arc<AtomicUsize>,
    release: Sender<()>,
}

fn held(
    answer: impl Fn(usize) -> Result<Token, RefreshError> + Send + Sync + 'static,
) -> (
    Held,
    impl Fn(&Token) -> Result<Token, RefreshError> + Send + Sync + 'static,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let (release, gate_open): (Sender<()>, Receiver<()>) = unbounded();
    let c = Arc::clone(&calls);
    let refresher = move |_: &Token| {
        let n = c.fetch_add(1, SeqCst) + 1;
        gate_open
            .recv_timeout(PATIENCE)
            .expect("test never released the refresher");
        answer(n)
    };
    (Held { calls, release }, refresher)
}

/// Runs `THREADS` leases at once; the first refreshes, the test releases it once all others wait.
fn storm(gate: &Gate, held: &Held) -> Vec<Result<Lease, Error>> {
    let (tx, rx) = bounded(THREADS);
    let barrier = Arc::new(Barrier::new(THREADS));
    for _ in 0..THREADS {
        let (gate, tx, barrier) = (gate.clone(), tx.clone(), Arc::clone(&barrier));
        thread::spawn(move || {
            barrier.wait();
            tx.send(gate.lease()).unwrap();
        });
    }
    eventually("refresher called", || held.calls.load(SeqCst) == 1);
    eventually("all threads waiting", || {
        gate.stats().waits == THREADS as u64
    });
    held.release.send(()).unwrap();
    (0..THREADS)
        .map(|_| rx.recv_timeout(PATIENCE).expect("a thread hung"))
        .collect()
}

#[test]
fn one_refresh_for_many_threads() {
    let (h, refresher) =
        held(|n| Ok(Token::new(format!("new{n}")).with_expires_in(Duration::from_secs(3600))));
    let gate = expired_gate(refresher);
    let results = storm(&gate, &h);
    for r in results {
        let lease = r.unwrap();
        assert_eq!(secret(&lease), "new1");
        assert_eq!(lease.generation(), 2);
    }
    assert_eq!(h.calls.load(SeqCst), 1);
    assert_eq!(gate.stats().refreshes, 1);
}

#[test]
fn failed_refresh_wakes_every_waiter_with_the_same_error() {
    let (h, refresher) = held(|_| Err(RefreshError::transient("token service down")));
    // The next attempt (an hour, capped at the 10 s budget) would come after every waiter's budget:
    // they fail at once, together.
    let gate = Gate::builder()
        .token(expired())
        .refresher(refresher)
        .refresh_backoff(Duration::from_secs(3600), Duration::from_secs(3600))
        .build()
        .unwrap();
    let results = storm(&gate, &h);
    let first = results[0]
        .as_ref()
        .unwrap_err()
        .refresh_error()
        .unwrap()
        .clone();
    for r in &results {
        let e = r.as_ref().unwrap_err().refresh_error().unwrap();
        assert!(e.shares_with(&first), "error not shared");
    }
    assert_eq!(h.calls.load(SeqCst), 1);
    // The error says when the next attempt is due.
    let next = first.next_attempt_in().expect("a backoff is scheduled");
    assert!(
        next > Duration::from_secs(5),
        "the 1-hour backoff, capped at the budget: {next:?}"
    );
    assert!(first.to_string().contains("next attempt in"), "{first}");
}

#[test]
fn permanent_failure_requires_login_until_set_token() {
    let (calls, refresher) = counted(|_| Err(RefreshError::permanent("refresh token revoked")));
    let logins = Arc::new(AtomicUsize::new(0));
    let l = Arc::clone(&logins);
    let gate = Gate::builder()
        .token(expired())
        .refresher(refresher)
        .on_login_required(move |e| {
            assert!(e.is_login_required());
            l.fetch_add(1, SeqCst);
        })
        .build()
        .unwrap();
    for _ in 0..5 {
        assert!(gate.lease().unwrap_err().is_login_required());
    }
    assert_eq!(
        calls.load(SeqCst),
        1,
        "fails fast without calling the refresher again"
    );
    // The callback runs on the refresher thread once the waiters are woken.
    eventually("the callback", || logins.load(SeqCst) == 1);
    assert_eq!(logins.load(SeqCst), 1, "callback called once");
    assert!(gate.is_login_required());
    gate.set_token(Token::new("fresh").with_expires_in(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(secret(&gate.lease().unwrap()), "fresh");
}

#[test]
fn panicking_refresher_does_not_wedge_the_gate() {
    let (h, refresher) = held(|n| {
        if n == 1 {
            panic!("refresher bug");
        }
        Ok(Token::new("recovered").with_expires_in(Duration::from_secs(60)))
    });
    let gate = expired_gate(refresher);
    let (tx, rx) = bounded(THREADS);
    for _ in 0..THREADS {
        let (gate, tx) = (gate.clone(), tx.clone());
        thread::spawn(move || tx.send(gate.lease()).unwrap());
    }
    eventually("refresher called", || h.calls.load(SeqCst) == 1);
    eventually("all threads waiting", || {
        gate.stats().waits == THREADS as u64
    });
    // The first call panics; every thread waits through the short backoff, and one of them
    // starts the second call, which succeeds.
    h.release.send(()).unwrap();
    eventually("the second call", || h.calls.load(SeqCst) == 2);
    h.release.send(()).unwrap();
    for _ in 0..THREADS {
        let lease = rx.recv_timeout(PATIENCE).expect("a thread hung").unwrap();
        assert_eq!(secret(&lease), "recovered");
    }
    assert_eq!(h.calls.load(SeqCst), 2);
    assert_eq!(gate.stats().refresh_failures, 1);
}

#[test]
fn transient_failure_keeps_serving_a_still_valid_token() {
    // Valid for 10 s, lifetime unknown: inside the 60 s mandatory window at once.
    let (calls, refresher) = counted(|_| Err(RefreshError::transient("503")));
    let gate = Gate::builder()
        .token(
            Token::new("old")
                .with_refresh_token("r")
                .with_expires_at_wall(std::time::SystemTime::now() + Duration::from_secs(10)),
        )
        .refresher(refresher)
        .build()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(secret(&gate.lease().unwrap()), "old");
    }
    assert_eq!(calls.load(SeqCst), 1, "one attempt, then backoff");
    assert_eq!(gate.stats().refresh_failures, 1);
}

#[test]
fn rejection_generations() {
    let (n, refresher) =
        counted(|i| Ok(Token::new(format!("t{i}")).with_expires_in(Duration::from_secs(3600))));
    let gate = Gate::builder()
        .token(
            Token::new("t0")
                .with_refresh_token("r")
                .with_expires_in(Duration::from_secs(3600)),
        )
        .refresher(refresher)
        .build()
        .unwrap();
    let a = gate.lease().unwrap();
    let b = gate.lease().unwrap();
    gate.confirm(&a);
    assert_eq!(gate.reject(&a), Rejection::Invalidated);
    let fresh = gate.lease().unwrap(); // reactive refresh
    assert_eq!(secret(&fresh), "t1");
    assert_eq!(
        gate.reject(&b),
        Rejection::Replaced,
        "b's token was already replaced"
    );
    // The reactive token is rejected before the server ever accepted it: no replay, and the next
    // refresh only after a backoff (the next lease waits for it).
    assert_eq!(gate.reject(&fresh), Rejection::Final);
    assert_eq!(n.load(SeqCst), 1);
    let after_final = gate.lease().unwrap();
    assert_eq!(secret(&after_final), "t2");
    assert!(gate.stats().waits >= 1, "waited for the backoff");
    // Once accepted, a later rejection (revocation) refreshes again at once.
    gate.confirm(&after_final);
    assert_eq!(gate.reject(&after_final), Rejection::Invalidated);
    assert_eq!(secret(&gate.lease().unwrap()), "t3");
    assert_eq!(n.load(SeqCst), 3);
}

#[test]
fn set_token_during_a_refresh_wins() {
    let (h, refresher) = held(|_| Err(RefreshError::permanent("invalid_grant")));
    let gate = expired_gate(refresher);
    let g = gate.clone();
    let refreshing = thread::spawn(move || g.lease());
    eventually("refresher called", || h.calls.load(SeqCst) == 1);
    gate.set_token(Token::new("relogged").with_expires_in(Duration::from_secs(60)))
        .unwrap();
    h.release.send(()).unwrap();
    let r = refreshing.join().unwrap();
    assert_eq!(secret(&r.unwrap()), "relogged");
    assert!(
        !gate.is_login_required(),
        "a stale refresh failure must not log the user out"
    );
}

#[test]
fn short_tokens_get_a_tenth_of_their_lifetime_as_window() {
    let (calls, refresher) =
        counted(|_| Ok(Token::new("b").with_expires_in(Duration::from_secs(1))));
    let gate = Gate::builder()
        .token(
            Token::new("a")
                .with_refresh_token("r")
                .with_expires_in(Duration::from_secs(1)),
        )
        .refresher(refresher)
        .build()
        .unwrap();
    for _ in 0..100 {
        gate.lease().unwrap();
    }
    assert_eq!(
        calls.load(SeqCst),
        0,
        "a 1 s token is not refreshed on every call"
    );
}

#[test]
fn no_refresher_and_no_token_is_login_required() {
    let gate = Gate::builder().build().unwrap();
    assert!(matches!(gate.lease(), Err(Error::LoginRequired(None))));
    let gate = Gate::builder().token(expired()).build().unwrap();
    assert!(gate.lease().unwrap_err().is_login_required());
}

#[test]
fn invalid_tokens_are_refused() {
    assert!(matches!(
        Gate::builder().token(Token::new("a\nb")).build(),
        Err(Error::InvalidToken)
    ));
    let gate = Gate::builder()
        .token(expired())
        .refresher(|_: &Token| Ok(Token::new("bad\r\nheader")))
        .refresh_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let e = gate.lease().unwrap_err();
    assert_eq!(
        e.refresh_error().unwrap().kind(),
        RefreshErrorKind::InvalidResponse
    );
}

// ---- with a TokenStore (MemoryStore here; FileStore and processes in tests/integration/store.rs) ----

use crate::error::{StoreError, StoreErrorKind};
use crate::store::{MemoryStore, StoreLock, TokenStore};

/// A counted refresher answering `new<n>` (refresh token `r<n>`), valid for an hour.
fn counting() -> (
    Arc<AtomicUsize>,
    impl Fn(&Token) -> Result<Token, RefreshError> + Send + Sync + 'static,
) {
    counted(|n| {
        Ok(Token::new(format!("new{n}"))
            .with_refresh_token(format!("r{n}"))
            .with_expires_in(Duration::from_secs(3600)))
    })
}

#[test]
fn gates_sharing_a_store_refresh_once_and_adopt() {
    let store = MemoryStore::new();
    store.save(&expired()).unwrap();
    let (calls, refresher) = counting();
    let refresher = Arc::new(refresher);
    let gate = || {
        let r = Arc::clone(&refresher);
        Gate::builder()
            .store(store.clone())
            .refresher(move |t: &Token| (*r)(t))
            .build()
            .unwrap()
    };
    let (a, b) = (gate(), gate());
    let events = b.events();
    assert_eq!(
        b.token().unwrap().access_token().secret(),
        "old",
        "starts from the store"
    );
    assert_eq!(a.lease().unwrap().token().access_token().secret(), "new1");
    assert_eq!(
        store.load().unwrap().unwrap().access_token().secret(),
        "new1"
    );
    // b still holds the expired "old": under the store's lock it finds "new1" and adopts it.
    assert_eq!(b.lease().unwrap().token().access_token().secret(), "new1");
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!((a.stats().refreshes, a.stats().adopted), (1, 0));
    assert_eq!((b.stats().refreshes, b.stats().adopted), (0, 1));
    let got: Vec<Event> = events.try_iter().collect();
    assert!(
        matches!(got.as_slice(), [Event::Adopted { generation: 2, .. }]),
        "{got:?}"
    );
}

#[test]
fn one_thread_per_gate_takes_the_store_lock() {
    // The store's lock is held by "another process" while a storm of threads needs a refresh: only
    // one of them may wait for the lock; the rest wait on the gate's condition variable.
    let store = MemoryStore::new();
    store.save(&expired()).unwrap();
    let (calls, refresher) = counting();
    let gate = Gate::builder()
        .store(store.clone())
        .refresher(refresher)
        .refresh_timeout(PATIENCE)
        .build()
        .unwrap();
    let section = store.lock(PATIENCE).unwrap();
    let (tx, rx) = bounded(THREADS);
    for _ in 0..THREADS {
        let (gate, tx) = (gate.clone(), tx.clone());
        thread::spawn(move || tx.send(gate.lease()).unwrap());
    }
    eventually("every thread waits on the gate", || {
        gate.stats().waits == THREADS as u64
    });
    // The other process refreshed meanwhile and saves before leaving its section.
    store
        .save(&Token::new("theirs").with_expires_in(Duration::from_secs(3600)))
        .unwrap();
    drop(section);
    for _ in 0..THREADS {
        let lease = rx.recv_timeout(PATIENCE).expect("a thread hung").unwrap();
        assert_eq!(lease.token().access_token().secret(), "theirs");
    }
    assert_eq!(calls.load(SeqCst), 0, "adopted, not refreshed");
    assert_eq!(gate.stats().adopted, 1);
}

#[test]
fn store_lock_timeout_is_a_refresh_timeout_and_nothing_is_wedged() {
    let store = MemoryStore::new();
    let (calls, refresher) = counting();
    let gate = Gate::builder()
        .token(expired())
        .store(store.clone())
        .refresher(refresher)
        .refresh_timeout(Duration::from_millis(30))
        .refresh_backoff(Duration::from_millis(10), Duration::from_millis(10))
        .build()
        .unwrap();
    let section = store.lock(PATIENCE).unwrap();
    assert!(matches!(gate.lease(), Err(Error::RefreshTimeout(_))));
    assert!(matches!(
        gate.set_token(Token::new("x")),
        Err(Error::RefreshTimeout(_))
    ));
    assert_eq!(calls.load(SeqCst), 0);
    drop(section);
    assert_eq!(
        gate.lease().unwrap().token().access_token().secret(),
        "new1"
    );
}

#[test]
fn panicking_refresher_leaves_the_store_section() {
    let store = MemoryStore::new();
    let gate = Gate::builder()
        .token(expired())
        .store(store.clone())
        .refresher(|_: &Token| -> Result<Token, RefreshError> { panic!("boom") })
        // The next attempt (the 60 s backoff, capped at the 2 s budget) would come after the
        // budget: one attempt, then the error.
        .refresh_timeout(Duration::from_secs(2))
        .refresh_backoff(Duration::from_secs(60), Duration::from_secs(60))
        .build()
        .unwrap();
    assert!(matches!(gate.lease(), Err(Error::RefresherPanicked)));
    drop(store.lock(Duration::ZERO).expect("the section was left"));
    assert!(store.load().unwrap().is_none(), "nothing saved");
}

#[test]
fn on_refresh_sees_each_refreshed_token_once_and_may_panic() {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let (_, refresher) = counting();
    let store = MemoryStore::new();
    let gate = Gate::builder()
        .token(expired())
        .store(store.clone())
        .refresher(refresher)
        .on_refresh(move |t| {
            s.lock().push(t.access_token().secret().to_owned());
            panic!("a broken hook must not break the refresh");
        })
        .build()
        .unwrap();
    assert_eq!(
        gate.lease().unwrap().token().access_token().secret(),
        "new1"
    );
    assert_eq!(
        store.load().unwrap().unwrap().access_token().secret(),
        "new1"
    );
    gate.set_token(expired()).unwrap();
    store
        .save(&Token::new("theirs").with_expires_in(Duration::from_secs(3600)))
        .unwrap();
    assert_eq!(
        gate.lease().unwrap().token().access_token().secret(),
        "theirs"
    );
    assert_eq!(
        *seen.lock(),
        ["new1"],
        "not called for set_token or adoption"
    );
}

/// A store whose every operation fails as told.
struct Broken(StoreErrorKind);

impl TokenStore for Broken {
    fn load(&self) -> Result<Option<Token>, StoreError> {
        match self.0 {
            StoreErrorKind::Io => Err(StoreError::new(self.0, "unreadable")),
            _ => Ok(None),
        }
    }
    fn save(&self, _: &Token) -> Result<(), StoreError> {
        Err(StoreError::new(self.0, "disk full"))
    }
    fn lock(&self, _: Duration) -> Result<StoreLock<'_>, StoreError> {
        Ok(StoreLock::none())
    }
}

#[test]
fn store_failures_are_typed_and_a_refreshed_token_is_used_even_if_unsaved() {
    let e = Gate::builder()
        .store(Broken(StoreErrorKind::Io))
        .build()
        .unwrap_err();
    assert_eq!(e.store_error().unwrap().kind(), StoreErrorKind::Io);
    assert!(e.is_transient());

    let (calls, refresher) = counting();
    let gate = Gate::builder()
        .token(expired())
        .store(Broken(StoreErrorKind::Custom))
        .refresher(refresher)
        .build()
        .unwrap();
    let events = gate.events();
    assert_eq!(
        gate.lease().unwrap().token().access_token().secret(),
        "new1"
    );
    assert_eq!(gate.stats().store_errors, 1);
    let got: Vec<Event> = events.try_iter().collect();
    assert!(
        matches!(
            got.as_slice(),
            [Event::Refreshed { .. }, Event::StoreFailed { error: Error::Store(e) }]
                if e.kind() == StoreErrorKind::Custom
        ),
        "{got:?}"
    );
    assert!(matches!(
        gate.set_token(Token::new("x")),
        Err(Error::Store(_))
    ));
    assert_eq!(
        gate.token().unwrap().access_token().secret(),
        "new1",
        "unchanged when the save failed"
    );

    // An unreadable store stops the refresh: what other processes did cannot be seen. It may pass:
    // the gate backs off like after any transient failure (here past the 100 ms budget).
    let gate = Gate::builder()
        .token(expired())
        .refresh_timeout(Duration::from_millis(100))
        .store(Broken(StoreErrorKind::Io))
        .refresher(move |_: &Token| -> Result<Token, RefreshError> {
            calls.fetch_add(1, SeqCst);
            Ok(Token::new("never"))
        })
        .build()
        .unwrap();
    assert!(matches!(gate.lease(), Err(Error::Store(_))));
}

// ---- outages: requests wait through backoffs within their budget (issue: outages cost a wait) ----

#[test]
fn waiters_sleep_through_a_backoff_and_get_the_next_attempt() {
    // Two failures, then the endpoint is back: every thread ends with the new token, none with an
    // error, and the refresher ran once per attempt, never beside itself.
    let (calls, refresher) = counted(|n| match n {
        1 | 2 => Err(RefreshError::transient("503")),
        _ => Ok(Token::new("back").with_expires_in(Duration::from_secs(3600))),
    });
    let gate = Gate::builder()
        .token(expired())
        .refresher(refresher)
        .refresh_backoff(Duration::from_millis(20), Duration::from_millis(40))
        .refresh_timeout(PATIENCE)
        .build()
        .unwrap();
    let (tx, rx) = bounded(THREADS);
    let barrier = Arc::new(Barrier::new(THREADS));
    for _ in 0..THREADS {
        let (gate, tx, barrier) = (gate.clone(), tx.clone(), Arc::clone(&barrier));
        thread::spawn(move || {
            barrier.wait();
            tx.send(gate.lease()).unwrap();
        });
    }
    for _ in 0..THREADS {
        let lease = rx.recv_timeout(PATIENCE).expect("a thread hung").unwrap();
        assert_eq!(secret(&lease), "back");
    }
    assert_eq!(calls.load(SeqCst), 3);
    assert_eq!(gate.stats().refresh_failures, 2);
    assert_eq!(gate.stats().refreshes, 1);
}

#[test]
fn a_caller_whose_budget_ends_before_the_next_attempt_fails_at_once_and_is_told_when() {
    let (h, refresher) = held(|_| {
        Err(RefreshError::transient("overloaded").with_retry_after(Duration::from_secs(600)))
    });
    let (clock, time) = Clock::manual();
    let gate = Gate::builder()
        .token(expired())
        .refresher(refresher)
        .refresh_timeout(Duration::from_secs(10))
        .clock(clock)
        .build()
        .unwrap();
    let g = gate.clone();
    let refreshing = thread::spawn(move || g.lease());
    eventually("refresher called", || h.calls.load(SeqCst) == 1);
    let g = gate.clone();
    let waiting = thread::spawn(move || g.lease());
    eventually("the second caller waits", || gate.stats().waits == 2);
    // The attempt takes 8 of the 10 s budget, then fails; the server asks for 600 s, capped at
    // the 5 s backoff maximum: the next attempt, at 13 s, is past both callers' budgets.
    time.advance(Duration::from_secs(8));
    h.release.send(()).unwrap();
    for caller in [refreshing, waiting] {
        let e = caller.join().unwrap().unwrap_err();
        let re = e.refresh_error().expect("the refresh error itself");
        assert!(re.is_transient());
        let next = re
            .next_attempt_in()
            .expect("says when the next attempt is due");
        assert!(next > Duration::from_secs(4), "{next:?}");
        assert!(e.to_string().contains("next attempt in"), "{e}");
    }
    assert_eq!(
        h.calls.load(SeqCst),
        1,
        "no attempt before the backoff ends"
    );
}

#[test]
fn a_long_outage_costs_each_caller_about_one_error_per_budget() {
    /// Calls made one after another while every attempt fails.
    const CALLS: u32 = 10;
    // Backoffs are capped at the 100 ms budget, so each call waits for the next attempt, and
    // gives up once the attempt after it would come too late: never a flood of instant errors.
    let (calls, refresher) = counted(|_| Err(RefreshError::transient("down")));
    let gate = Gate::builder()
        .token(expired())
        .refresher(refresher)
        .refresh_timeout(Duration::from_millis(100))
        .refresh_backoff(Duration::from_secs(60), Duration::from_secs(60))
        .build()
        .unwrap();
    let started = Instant::now();
    for _ in 0..CALLS {
        // The last error, or a timeout when the attempt it waited for was still running as the
        // budget ran out.
        let e = gate.lease().unwrap_err();
        assert!(
            matches!(e, Error::Refresh(_) | Error::RefreshTimeout(_)) && e.is_transient(),
            "{e}"
        );
    }
    // At most two errors per budget: ten calls cost at least five budgets.
    assert!(
        started.elapsed() >= Duration::from_millis(100) * CALLS / 2,
        "{CALLS} calls in {:?}",
        started.elapsed()
    );
    let attempts = calls.load(SeqCst);
    assert!(
        attempts as u32 <= CALLS + 1,
        "{attempts} attempts for {CALLS} calls"
    );
}

#[test]
fn a_stuck_attempt_makes_new_callers_fail_fast_and_never_runs_twice() {
    let (h, refresher) = held(|_| Ok(Token::new("late").with_expires_in(Duration::from_secs(60))));
    let (clock, time) = Clock::manual();
    let gate = Gate::builder()
        .token(expired())
        .refresher(refresher)
        .refresh_timeout(Duration::from_secs(10))
        .clock(clock)
        .build()
        .unwrap();
    let g = gate.clone();
    let stuck = thread::spawn(move || g.lease());
    eventually("refresher called", || h.calls.load(SeqCst) == 1);
    eventually("its caller waits", || gate.stats().waits == 1);
    // A whole budget later the attempt is still running: it is stuck.
    time.advance(Duration::from_secs(11));
    for _ in 0..10 {
        match gate.lease() {
            Err(Error::RefreshTimeout(t)) => assert_eq!(t, Duration::from_secs(10)),
            other => panic!("expected a timeout at once, got {other:?}"),
        }
    }
    assert_eq!(
        gate.stats().waits,
        1,
        "new callers did not wait a budget each"
    );
    assert_eq!(
        h.calls.load(SeqCst),
        1,
        "no second refresh beside the stuck one"
    );
    h.release.send(()).unwrap();
    let lease = stuck.join().unwrap().unwrap();
    assert_eq!(secret(&lease), "late");
    assert_eq!(secret(&gate.lease().unwrap()), "late");
}

#[test]
fn a_waiter_gives_up_at_its_budget_with_a_timeout() {
    let (h, refresher) = held(|_| Ok(Token::new("late").with_expires_in(Duration::from_secs(60))));
    let gate = Gate::builder()
        .token(expired())
        .refresher(refresher)
        .refresh_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let g = gate.clone();
    let claimed = thread::spawn(move || g.lease());
    eventually("refresher called", || h.calls.load(SeqCst) == 1);
    assert!(matches!(gate.lease(), Err(Error::RefreshTimeout(_))));
    // The caller that claimed the refresh is not held by it either: the attempt runs on a
    // refresher thread of its own.
    assert!(matches!(
        claimed.join().unwrap(),
        Err(Error::RefreshTimeout(_))
    ));
    h.release.send(()).unwrap();
    eventually("the late token arrives", || {
        gate.token()
            .is_some_and(|t| t.access_token().secret() == "late")
    });
    assert_eq!(secret(&gate.lease().unwrap()), "late");
    assert_eq!(h.calls.load(SeqCst), 1);
}

#[test]
fn a_configuration_failure_keeps_the_session_and_fails_fast() {
    let (calls, refresher) = counted(|_| Err(RefreshError::configuration("invalid_client")));
    let logins = Arc::new(AtomicUsize::new(0));
    let l = Arc::clone(&logins);
    let gate = Gate::builder()
        .token(expired())
        .refresher(refresher)
        .refresh_timeout(PATIENCE)
        .on_login_required(move |_| {
            l.fetch_add(1, SeqCst);
        })
        .build()
        .unwrap();
    let e = gate.lease().unwrap_err();
    assert!(e.is_configuration(), "{e}");
    let waits = gate.stats().waits;
    for _ in 0..20 {
        let e = gate.lease().unwrap_err();
        assert!(
            e.is_configuration() && !e.is_login_required() && !e.is_transient(),
            "{e}"
        );
    }
    assert_eq!(
        calls.load(SeqCst),
        1,
        "retried only after the longest backoff"
    );
    assert_eq!(
        gate.stats().waits,
        waits,
        "no waiting for an attempt that cannot help"
    );
    assert!(!gate.is_login_required());
    assert_eq!(logins.load(SeqCst), 0);
    let kept = gate.token().unwrap();
    assert_eq!(kept.refresh_token().unwrap().secret(), "r0", "session kept");
}

#[test]
fn an_outage_inside_the_budget_costs_the_caller_latency_not_errors() {
    // Five failures asking for a 1 s Retry-After, capped at the 40 ms backoff maximum: one call
    // waits through all of them and gets the token; the refresher counts the attempts.
    let (calls, refresher) = counted(|n| {
        if n <= 5 {
            Err(RefreshError::transient("503").with_retry_after(Duration::from_secs(1)))
        } else {
            Ok(Token::new("back").with_expires_in(Duration::from_secs(3600)))
        }
    });
    let gate = Gate::builder()
        .token(expired())
        .refresher(refresher)
        .refresh_backoff(Duration::from_millis(10), Duration::from_millis(40))
        .build()
        .unwrap();
    assert_eq!(secret(&gate.lease().unwrap()), "back");
    assert_eq!(calls.load(SeqCst), 6);
    assert_eq!(gate.stats().refresh_failures, 5);
}

// ---- time: both clocks, through the seam ----

fn hour_token() -> Token {
    Token::new("hour")
        .with_refresh_token("r0")
        .with_expires_in(Duration::from_secs(3600))
}

fn manual_gate() -> (Gate, Arc<crate::sync::ManualClock>, Arc<AtomicUsize>) {
    let (calls, refresher) =
        counted(|n| Ok(Token::new(format!("new{n}")).with_expires_in(Duration::from_secs(3600))));
    let (clock, time) = Clock::manual();
    let gate = Gate::builder()
        .token(hour_token())
        .refresher(refresher)
        .refresh_ahead(Duration::ZERO)
        .clock(clock)
        .build()
        .unwrap();
    (gate, time, calls)
}

#[test]
fn a_token_that_expired_during_a_suspend_is_refreshed_on_resume() {
    let (gate, time, calls) = manual_gate();
    assert_eq!(secret(&gate.lease().unwrap()), "hour");
    // An 8-hour sleep: the monotonic clock stood still, the wall clock did not.
    time.suspend(Duration::from_secs(8 * 3600));
    assert_eq!(secret(&gate.lease().unwrap()), "new1");
    assert_eq!(calls.load(SeqCst), 1);
}

#[test]
fn a_wall_clock_set_back_does_not_keep_an_expired_token() {
    let (gate, time, calls) = manual_gate();
    time.set_wall_by(-24 * 3600 * 1000);
    time.advance(Duration::from_secs(3600));
    assert_eq!(
        secret(&gate.lease().unwrap()),
        "new1",
        "the monotonic clock says expired"
    );
    assert_eq!(calls.load(SeqCst), 1);
}

#[test]
fn a_wall_clock_set_forth_refreshes_early_and_only_once() {
    let (gate, time, calls) = manual_gate();
    time.set_wall_by(2 * 3600 * 1000);
    assert_eq!(secret(&gate.lease().unwrap()), "new1");
    // The new token was issued on the jumped wall clock: it is fresh on both.
    for _ in 0..10 {
        assert_eq!(secret(&gate.lease().unwrap()), "new1");
    }
    assert_eq!(calls.load(SeqCst), 1);
}

#[test]
fn within_the_window_on_either_clock_means_refresh() {
    let (gate, time, calls) = manual_gate();
    // 59 minutes 30 s of suspend: inside the 60 s mandatory window on the wall clock only.
    time.suspend(Duration::from_secs(3570));
    assert_eq!(secret(&gate.lease().unwrap()), "new1");
    assert_eq!(calls.load(SeqCst), 1);
}

#[test]
fn the_background_refresher_notices_a_resume() {
    let (calls, refresher) =
        counted(|n| Ok(Token::new(format!("new{n}")).with_expires_in(Duration::from_secs(3600))));
    let (clock, time) = Clock::manual();
    let gate = Gate::builder()
        .token(hour_token())
        .refresher(refresher)
        .clock(clock)
        .build()
        .unwrap();
    let client = crate::Client::builder("http://127.0.0.1:9")
        .gate(gate.clone())
        .background_refresh(true)
        .build()
        .unwrap();
    // Asleep for 8 hours: no request comes, the background thread must notice by itself.
    time.suspend(Duration::from_secs(8 * 3600));
    eventually("the background refresher refreshed", || {
        calls.load(SeqCst) == 1
    });
    assert_eq!(secret(&gate.lease().unwrap()), "new1");
    drop(client);
}

// ---- never lose a session (issue 12) ----

/// A token server in a closure: rotating refresh tokens that work once, re-issuing the same
/// access token every time, and counting any spent refresh token presented.
struct SameAccessServer {
    next: AtomicUsize,
    spent: parking_lot::Mutex<Vec<String>>,
    reused: AtomicUsize,
}

impl SameAccessServer {
    fn refresh(&self, current: &Token) -> Result<Token, RefreshError> {
        let presented = current.refresh_token().unwrap().secret().to_owned();
        let mut spent = self.spent.lock();
        if spent.contains(&presented) {
            self.reused.fetch_add(1, SeqCst);
            return Err(RefreshError::permanent(
                "invalid_grant: refresh token reused",
            ));
        }
        spent.push(presented);
        let n = self.next.fetch_add(1, SeqCst) + 1;
        Ok(Token::new("same-access")
            .with_expires_in(Duration::from_secs(3600))
            .with_refresh_token(format!("r{n}")))
    }
}

#[test]
fn issue_12_3_adoption_sees_a_rotated_refresh_token_behind_the_same_access_token() {
    let server = Arc::new(SameAccessServer {
        next: AtomicUsize::new(0),
        spent: parking_lot::Mutex::new(Vec::new()),
        reused: AtomicUsize::new(0),
    });
    let store = MemoryStore::new();
    store
        .save(
            &Token::new("same-access")
                .with_refresh_token("r0")
                .with_expires_at_wall(std::time::SystemTime::now() - Duration::from_secs(1)),
        )
        .unwrap();
    let gate = || {
        let s = Arc::clone(&server);
        Gate::builder()
            .store(store.clone())
            .refresher(move |t: &Token| s.refresh(t))
            .build()
            .unwrap()
    };
    let (a, b) = (gate(), gate());
    // A refreshes: r0 is spent, r1 saved, with the same access token.
    a.lease().unwrap();
    // B holds ("same-access", r0), expired: under the lock the stored token differs only in its
    // refresh token and expiry, which is enough to see another process refreshed.
    let lease = b.lease().unwrap();
    assert_eq!(lease.token().refresh_token().unwrap().secret(), "r1");
    assert_eq!(server.reused.load(SeqCst), 0, "B presented the spent r0");
    assert_eq!(b.stats().adopted, 1);
}

#[test]
fn issue_12_7_a_refresh_overtaken_by_set_token_of_an_expired_token_is_not_login_required() {
    let (h, refresher) =
        held(|n| Ok(Token::new(format!("new{n}")).with_expires_in(Duration::from_secs(3600))));
    let gate = expired_gate(refresher);
    let g = gate.clone();
    let waiting = thread::spawn(move || g.lease());
    eventually("refresher called", || h.calls.load(SeqCst) == 1);
    // The app installs a token that has already expired while the refresh runs.
    gate.set_token(expired()).unwrap();
    h.release.send(()).unwrap();
    h.release.send(()).unwrap();
    let lease = waiting.join().unwrap().expect("not LoginRequired(None)");
    assert_eq!(
        secret(&lease),
        "new2",
        "the expired token was refreshed in turn"
    );
    assert!(!gate.is_login_required());
}

/// A refresher that refreshes by `answer(call)` and records what it was asked to revoke; its
/// revocations fail while `revoke_fails` is set.
struct Revoking {
    refreshes: AtomicUsize,
    revoked: std::sync::Mutex<Vec<String>>,
    revoke_fails: std::sync::atomic::AtomicBool,
}

impl Revoking {
    fn new() -> Arc<Revoking> {
        Arc::new(Revoking {
            refreshes: AtomicUsize::new(0),
            revoked: std::sync::Mutex::new(Vec::new()),
            revoke_fails: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

impl Refresh for Arc<Revoking> {
    fn refresh(&self, _: Option<&Token>) -> Result<Token, RefreshError> {
        let n = self.refreshes.fetch_add(1, SeqCst) + 1;
        Ok(Token::new(format!("new{n}"))
            .with_refresh_token(format!("r{n}"))
            .with_expires_in(Duration::from_secs(3600)))
    }

    fn revoke(&self, token: &Token) -> Result<(), RefreshError> {
        let r = token.refresh_token().map(|r| r.secret().to_owned());
        self.revoked.lock().unwrap().push(r.unwrap_or_default());
        if self.revoke_fails.load(SeqCst) {
            return Err(RefreshError::transient("revocation endpoint down"));
        }
        Ok(())
    }
}

#[test]
fn login_installs_like_set_token_and_says_logged_in() {
    let store = crate::store::MemoryStore::new();
    let gate = Gate::builder().store(store.clone()).build().unwrap();
    let events = gate.events();
    assert!(gate.lease().unwrap_err().is_login_required());
    gate.login(hour_token()).unwrap();
    assert_eq!(secret(&gate.lease().unwrap()), "hour");
    assert_eq!(
        store.load().unwrap().unwrap().access_token().secret(),
        "hour",
        "saved"
    );
    let got: Vec<Event> = events.try_iter().collect();
    assert!(
        matches!(
            got.as_slice(),
            [Event::LoggedIn {
                generation: 1,
                expires_in: Some(_)
            }]
        ),
        "{got:?}"
    );
    assert_eq!(
        gate.login(Token::new("bad\nvalue"))
            .unwrap_err()
            .to_string(),
        Error::InvalidToken.to_string()
    );
}

#[test]
fn logout_revokes_the_newest_token_clears_the_store_and_requires_login() {
    let store = crate::store::MemoryStore::new();
    let refresher = Revoking::new();
    let gate = |r: &Arc<Revoking>| {
        Gate::builder()
            .store(store.clone())
            .refresher(Arc::clone(r))
            .build()
            .unwrap()
    };
    store.save(&hour_token().with_refresh_token("r0")).unwrap();
    let mine = gate(&refresher);
    let other = gate(&refresher);
    // Another gate on the store refreshed: the store holds a newer refresh token than ours.
    store
        .save(
            &Token::new("theirs")
                .with_refresh_token("r-theirs")
                .with_expires_in(Duration::from_secs(3600)),
        )
        .unwrap();
    let events = mine.events();
    mine.logout().unwrap();
    assert_eq!(
        *refresher.revoked.lock().unwrap(),
        ["r-theirs", "r0"],
        "both grants, newest first"
    );
    assert!(store.load().unwrap().is_none(), "the store is cleared");
    assert!(mine.token().is_none());
    assert!(mine.lease().unwrap_err().is_login_required());
    assert!(matches!(
        events.try_iter().collect::<Vec<_>>().as_slice(),
        [Event::LoggedOut { generation: 2 }]
    ),);
    // The other gate still holds the token it loaded: its refresh finds the store emptied and
    // ends the session there too, without refreshing.
    let before = refresher.refreshes.load(SeqCst);
    other.reject(&other.lease().unwrap());
    let e = other.lease().unwrap_err();
    assert!(e.is_login_required(), "{e:?}");
    assert_eq!(
        e.refresh_error().unwrap().kind(),
        RefreshErrorKind::LoggedOut
    );
    assert_eq!(
        refresher.refreshes.load(SeqCst),
        before,
        "no refresh after a logout"
    );
    // A new login brings both back.
    mine.login(hour_token()).unwrap();
    other.login(hour_token()).unwrap();
    assert!(other.lease().is_ok());
}

#[test]
fn a_failed_revocation_still_logs_out_here_and_says_so() {
    let store = crate::store::MemoryStore::new();
    let refresher = Revoking::new();
    refresher.revoke_fails.store(true, SeqCst);
    let gate = Gate::builder()
        .store(store.clone())
        .refresher(Arc::clone(&refresher))
        .token(hour_token().with_refresh_token("r0"))
        .build()
        .unwrap();
    let e = gate.logout().unwrap_err();
    assert!(matches!(e, Error::Revocation(_)), "{e:?}");
    assert!(e.is_transient());
    assert!(e.to_string().starts_with("token revocation failed"), "{e}");
    assert!(gate.lease().unwrap_err().is_login_required());
    assert!(store.load().unwrap().is_none());
}

#[test]
fn a_logout_waits_for_the_refresh_in_flight_and_revokes_what_it_brought() {
    let (held, refresher) = held(|n| {
        Ok(Token::new(format!("new{n}"))
            .with_refresh_token(format!("r{n}"))
            .with_expires_in(Duration::from_secs(3600)))
    });
    let revoking = Revoking::new();
    struct Both<F>(F, Arc<Revoking>);
    impl<F: Fn(&Token) -> Result<Token, RefreshError> + Send + Sync + 'static> Refresh for Both<F> {
        fn refresh(&self, current: Option<&Token>) -> Result<Token, RefreshError> {
            (self.0)(current.expect("a token"))
        }
        fn revoke(&self, token: &Token) -> Result<(), RefreshError> {
            self.1.revoke(token)
        }
    }
    let gate = expired_gate(Both(refresher, Arc::clone(&revoking)));
    let waiter = {
        let gate = gate.clone();
        thread::spawn(move || gate.lease().map(|l| secret(&l).to_owned()))
    };
    eventually("the refresh started", || held.calls.load(SeqCst) == 1);
    let out = {
        let gate = gate.clone();
        thread::spawn(move || gate.logout())
    };
    held.release.send(()).unwrap();
    out.join().unwrap().unwrap();
    assert_eq!(
        *revoking.revoked.lock().unwrap(),
        ["r1"],
        "the refreshed grant"
    );
    // The waiter woke with the refreshed token, or, when the logout took the lock before the
    // waiter could read it, with the logout: both are right; nothing else is.
    match waiter.join().unwrap() {
        Ok(token) => assert_eq!(token, "new1"),
        Err(e) => assert!(e.is_login_required(), "{e:?}"),
    }
    assert!(gate.lease().unwrap_err().is_login_required());
}
