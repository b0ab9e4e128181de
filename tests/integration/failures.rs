//! Refresh failures: everyone wakes, permanent failures require login, transient ones back off, waits
//! and token calls are bounded, a panicking refresher does not wedge anything (behaviours 5-7).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use tokengate::{Error, OAuth2, RefreshError, RefreshErrorKind, Token};
use tokengate_testserver::{Failure, TestServer, closed_port_url};

use crate::support::*;

/// Threads in the wake-up tests.
const THREADS: usize = 32;

#[test]
fn permanent_failure_wakes_everyone_and_then_fails_fast_until_set_token() {
    let server = TestServer::builder()
        .token_latency(Duration::from_millis(100))
        .start();
    server.set_failure(Failure::InvalidGrant);
    let logins = Arc::new(AtomicUsize::new(0));
    let l = Arc::clone(&logins);
    let client = builder(&server, expired_login(&server))
        .on_login_required(move |_| {
            l.fetch_add(1, SeqCst);
        })
        .build()
        .unwrap();
    let c2 = client.clone();
    let results = on_threads(THREADS, move |_| c2.get("/x").call().map(|r| r.status()));
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert!(e.is_login_required(), "{e}");
        let oauth = e.refresh_error().unwrap().oauth_error().unwrap();
        assert_eq!(oauth.error(), "invalid_grant");
    }
    let c = server.counters();
    assert_eq!(c.refresh_attempts, 1);
    assert_eq!(c.api_calls, 0);
    // The callback runs on the refresher thread once the waiters are woken.
    eventually("the login callback", || logins.load(SeqCst) == 1);
    assert_eq!(logins.load(SeqCst), 1, "login callback called once");

    // Fails fast, without network.
    assert!(client.get("/x").call().unwrap_err().is_login_required());
    assert_eq!(server.counters().token_requests, 1);
    assert_eq!(server.counters().api_calls, 0);

    // The app logs in again.
    server.set_failure(Failure::None);
    client.set_token(login(&server)).unwrap();
    assert_eq!(get_status(&client, "/x"), 200);
}

#[test]
fn a_failure_is_shared_by_every_waiter_and_retries_are_capped_at_the_budget() {
    // The attempt takes 300 ms: every thread has joined the wait before it fails.
    let server = TestServer::builder()
        .token_latency(Duration::from_millis(300))
        .start();
    server.set_failure(Failure::Status500);
    // A minute's backoff is capped at the one-second budget; the next attempt still comes after
    // every waiter's budget, so they all fail with the one error, together.
    let client = builder(&server, expired_login(&server))
        .refresh_backoff(Duration::from_secs(60), Duration::from_secs(60))
        .refresh_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let c2 = client.clone();
    let results = on_threads(THREADS, move |_| c2.get("/x").call().map(|r| r.status()));
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert!(matches!(e, Error::Refresh(_)) && e.is_transient(), "{e}");
        let re = e.refresh_error().unwrap();
        assert_eq!(re.status(), Some(500));
        assert!(re.next_attempt_in().unwrap() <= Duration::from_secs(1));
    }
    assert_eq!(server.counters().refresh_attempts, 1);
    // A later call waits for the next attempt (a second after the first), which fails too (or
    // is still running when its budget runs out).
    assert!(client.get("/x").call().is_err());
    eventually("the next attempt", || {
        server.counters().refresh_attempts == 2
    });
    assert_eq!(server.counters().api_calls, 0);
}

#[test]
fn retry_after_is_honoured() {
    let server = TestServer::start();
    let client = builder(&server, expired_login(&server))
        .refresh_backoff(Duration::from_millis(10), Duration::from_secs(5))
        .build()
        .unwrap();
    // Over when the Retry-After is (2 s), not before the first attempt however slow it is.
    server.set_failure_for(
        Failure::TooManyRequests {
            retry_after_secs: 2,
        },
        Duration::from_secs(1),
    );
    let started = Instant::now();
    assert_eq!(get_status(&client, "/x"), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "the second attempt came before Retry-After: {:?}",
        started.elapsed()
    );
    let c = server.counters();
    assert_eq!((c.refresh_attempts, c.failure_answers), (2, 1));
}

#[test]
fn old_token_is_used_while_still_valid_when_refresh_fails_transiently() {
    let server = TestServer::start();
    let issued = server.issue_token();
    // Valid for 20 s, but inside the 60 s window (no lifetime known, so the full window applies).
    let token = Token::new(issued.access_token)
        .with_expires_at_wall(std::time::SystemTime::now() + Duration::from_secs(20))
        .with_refresh_token(issued.refresh_token);
    server.set_failure(Failure::Unavailable {
        retry_after_secs: 5,
    });
    let client = builder(&server, token).build().unwrap();
    for _ in 0..3 {
        assert_eq!(get_status(&client, "/x"), 200);
    }
    let c = server.counters();
    assert_eq!(c.refresh_attempts, 1, "one attempt, then backoff");
    assert_eq!(c.api_ok, 3);
}

/// A backoff whose shortest delay (jittered down by half) is longer than a 300 ms budget: cut to the
/// budget, it puts the next attempt past the
/// request's deadline, so the request sees the one attempt's failure (not a second attempt still
/// running when its budget ends, which is a `RefreshTimeout`).
const ONE_ATTEMPT: Duration = Duration::from_secs(1);

#[test]
fn html_and_garbage_answers_are_typed_errors() {
    for (failure, kind) in [
        (Failure::Html, RefreshErrorKind::InvalidResponse),
        (Failure::GarbageJson, RefreshErrorKind::InvalidResponse),
        (Failure::Status500, RefreshErrorKind::OAuth),
    ] {
        let server = TestServer::start();
        server.set_failure(failure.clone());
        let client = builder(&server, expired_login(&server))
            .refresh_timeout(Duration::from_millis(300))
            .refresh_backoff(ONE_ATTEMPT, ONE_ATTEMPT)
            .build()
            .unwrap();
        let e = client.get("/x").call().unwrap_err();
        let re = e
            .refresh_error()
            .unwrap_or_else(|| panic!("{failure:?}: {e}"));
        assert_eq!(re.kind(), kind, "{failure:?}: {e}");
        assert!(re.is_transient(), "{failure:?}");
        assert_eq!(server.counters().api_calls, 0);
    }
}

#[test]
fn token_endpoint_down_is_a_transient_transport_error() {
    let server = TestServer::start();
    let client = tokengate::Client::builder(format!("{}/api", server.url()))
        .token(expired_login(&server))
        .refresher(OAuth2::refresh_token(format!(
            "{}/oauth/token",
            closed_port_url()
        )))
        .refresh_timeout(Duration::from_millis(300))
        .refresh_backoff(ONE_ATTEMPT, ONE_ATTEMPT)
        .build()
        .unwrap();
    let e = client.get("/x").call().unwrap_err();
    let re = e.refresh_error().unwrap();
    assert_eq!(re.kind(), RefreshErrorKind::Transport, "{e}");
    assert!(e.is_transient());
}

#[test]
fn a_hanging_token_endpoint_is_cut_by_the_refresh_timeout() {
    let server = TestServer::start();
    server.set_failure(Failure::Hang(Duration::from_secs(5)));
    let client = tokengate::Client::builder(format!("{}/api", server.url()))
        .token(expired_login(&server))
        .refresher(oauth(&server).timeout(Duration::from_millis(300)))
        .refresh_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let t = Instant::now();
    let e = client.get("/x").call().unwrap_err();
    // Held no longer than its one-second budget; it gets the timed-out attempt's error, or a
    // timeout when the next attempt was still running as the budget ran out.
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    match e.refresh_error() {
        Some(re) => assert_eq!(re.kind(), RefreshErrorKind::Transport, "{e}"),
        None => assert!(matches!(e, Error::RefreshTimeout(_)), "{e}"),
    }
}

#[test]
fn waiters_give_up_after_refresh_timeout() {
    let server = TestServer::start();
    server.set_failure(Failure::Hang(Duration::from_millis(1500)));
    let client = tokengate::Client::builder(format!("{}/api", server.url()))
        .token(expired_login(&server))
        .refresher(oauth(&server))
        .refresh_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let c2 = client.clone();
    let results = on_threads(8, move |_| c2.get("/x").call().map(|r| r.status().as_u16()));
    let timeouts = results
        .iter()
        .filter(|r| matches!(r, Err(Error::RefreshTimeout(_))))
        .count();
    // Every caller, the one that claimed the refresh included, gives up at its 200 ms budget: the
    // attempt runs on a refresher thread of its own and lands later.
    assert_eq!(timeouts, 8, "{results:?}");
    assert_eq!(server.counters().refresh_attempts, 1);
    eventually("the slow refresh lands", || client.stats().refreshes == 1);
    assert_eq!(get_status(&client, "/x"), 200);
    assert_eq!(server.counters().refresh_attempts, 1, "no second attempt");
}

#[test]
fn a_panicking_refresher_wakes_everyone_and_the_next_attempt_serves_them() {
    let server = TestServer::builder()
        .token_latency(Duration::from_millis(50))
        .start();
    let calls = Arc::new(AtomicUsize::new(0));
    let real = oauth(&server);
    let c = Arc::clone(&calls);
    let client = tokengate::Client::builder(format!("{}/api", server.url()))
        .token(expired_login(&server))
        .refresher(move |t: &Token| -> Result<Token, RefreshError> {
            if c.fetch_add(1, SeqCst) == 0 {
                std::thread::sleep(Duration::from_millis(100));
                panic!("bug in a custom refresher");
            }
            tokengate::Refresh::refresh(&real, Some(t))
        })
        .build()
        .unwrap();
    let c2 = client.clone();
    // The panic is a transient failure: everyone waits through the short backoff for the next
    // attempt, which succeeds.
    let results = on_threads(THREADS, move |_| c2.get("/x").call().map(|r| r.status()));
    assert!(
        results.iter().all(|r| matches!(r, Ok(s) if *s == 200)),
        "{results:?}"
    );
    assert_eq!(calls.load(SeqCst), 2);
    assert_eq!(client.stats().refresh_failures, 1);
    assert_eq!(server.counters().refresh_attempts, 1);
}
