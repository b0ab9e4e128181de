//! Outages of the token endpoint cost callers a short wait, never a flood of errors: requests wait
//! through backoffs within their budget, retries are polite, hangs are bounded, and each failure
//! is classified by what it means. Counts come from the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use tokengate::{Client, ClientBuilder, Error, Token};
use tokengate_testserver::load::{self, Call, Seen};
use tokengate_testserver::{Failure, TestServer};

use crate::support::*;

/// Threads calling without pause in the outage tests.
const THREADS: usize = 32;

/// A client for `server` with every gate setting at its default (unlike `support::builder`).
fn defaults(server: &TestServer, token: Token) -> ClientBuilder {
    Client::builder(format!("{}/api", server.url()))
        .token(token)
        .refresher(oauth(server))
}

/// Calls `GET /x` from `threads` threads without pause for `run_for`; what each thread saw.
fn hammer(client: &Client, threads: usize, run_for: Duration) -> Vec<Seen> {
    let client = client.clone();
    load::callers(threads, run_for, move || match client.get("/x").call() {
        Ok(r) if r.status() == 200 => Call::Ok,
        Ok(_) => Call::Status,
        Err(_) => Call::Error,
    })
}

fn total(seen: &[Seen]) -> Seen {
    Seen::total(seen)
}

#[test]
fn a_two_second_503_outage_costs_latency_not_errors() {
    let server = TestServer::builder()
        .token_lifetime(Duration::from_secs(1))
        .start();
    let client = defaults(&server, login(&server)).build().unwrap();
    server.set_failure_for(
        Failure::Unavailable {
            retry_after_secs: 1,
        },
        Duration::from_secs(2),
    );
    let seen = total(&hammer(&client, THREADS, Duration::from_millis(3500)));
    let c = server.counters();
    assert_eq!(seen.errors + seen.status, 0, "{seen:?} {c:?}");
    assert!(seen.ok > 0);
    assert!(
        c.failure_answers <= 4,
        "{} token requests during a 2 s outage",
        c.failure_answers
    );
    assert!(c.failure_answers >= 1, "the outage was seen: {c:?}");
    assert_eq!(c.max_concurrent_refreshes, 1);
    assert_eq!(c.invalid_grant, 0);
}

#[test]
fn twenty_percent_503s_with_rotation_and_revocations_cost_almost_no_errors() {
    /// Revocations of every access token while the threads run, one every 500 ms.
    const REVOCATIONS: usize = 5;
    let server = Arc::new(
        TestServer::builder()
            .token_lifetime(Duration::from_millis(300))
            .transient_failure_rate(0.2)
            .transient_failure_retry_after(1)
            .start(),
    );
    let client = defaults(&server, login(&server)).build().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let (s, d) = (Arc::clone(&server), Arc::clone(&done));
    let revoker = std::thread::spawn(move || {
        for _ in 0..REVOCATIONS {
            std::thread::sleep(Duration::from_millis(500));
            if d.load(SeqCst) {
                break;
            }
            s.revoke_all();
        }
    });
    let seen = total(&hammer(&client, THREADS, Duration::from_secs(3)));
    done.store(true, SeqCst);
    revoker.join().unwrap();
    let c = server.counters();
    assert!(
        (seen.errors + seen.status) * 100 <= seen.ok,
        "errors over 1% of successes: {seen:?} {c:?}"
    );
    assert!(c.injected_failures >= 1, "no 503 was injected: {c:?}");
    assert_eq!(c.reuse_detected, 0, "a refresh token was spent twice");
    assert_eq!(c.invalid_grant, 0);
    assert_eq!(c.max_concurrent_refreshes, 1, "two refreshes in flight");
}

#[test]
fn an_outage_longer_than_the_budget_costs_each_thread_one_error_per_budget_and_no_cpu() {
    /// Threads calling; each should see about one error per one-second budget.
    const CALLERS: usize = 8;
    let server = TestServer::start();
    server.set_failure(Failure::Status500);
    let client = defaults(&server, expired_login(&server))
        .refresh_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let run_for = Duration::from_millis(3200);
    let seen = hammer(&client, CALLERS, run_for);
    for s in &seen {
        assert_eq!(s.ok + s.status, 0);
        // 3.2 s of one-second budgets: about one error per budget (a call that already waited
        // part of its budget fails as soon as the next attempt is known to come too late), never
        // a flood.
        assert!((2..=7).contains(&s.errors), "{s:?}");
        assert!(
            s.cpu * 10 < run_for,
            "a waiting thread used {:?} of CPU in {run_for:?}",
            s.cpu
        );
    }
    let c = server.counters();
    // Backoffs grow to the one-second cap: a handful of attempts a second at most.
    assert!(
        c.token_requests <= 20,
        "{} token requests in 3.2 s",
        c.token_requests
    );
    assert_eq!(c.max_concurrent_refreshes, 1);
}

#[test]
fn a_token_endpoint_that_never_answers_holds_no_caller_past_the_documented_bound() {
    /// Callers arriving while the only attempt hangs.
    const CALLERS: usize = 8;
    let server = TestServer::start();
    server.set_failure(Failure::Hang(Duration::from_secs(3600)));
    // Every setting at its default: the documented bound is about 10 s.
    let client = defaults(&server, expired_login(&server)).build().unwrap();
    let c2 = client.clone();
    let results = on_threads(CALLERS, move |_| {
        let started = Instant::now();
        let outcome = c2.get("/x").call().map(|r| r.status());
        (started.elapsed(), outcome)
    });
    for (took, outcome) in &results {
        let e = outcome.as_ref().unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(*took <= Duration::from_secs(11), "held {took:?}: {e}");
    }
    // The first attempt gave up after the 8 s request timeout and a second one started; the
    // server, which never answers, still holds the first (so its in-flight count says 2).
    assert!(
        server.counters().token_requests <= 2,
        "{:?}",
        server.counters()
    );
}

#[test]
fn malformed_answers_for_a_second_are_over_within_a_second_after_they_stop() {
    let server = TestServer::start();
    let client = defaults(&server, expired_login(&server)).build().unwrap();
    let outage = Duration::from_secs(1);
    let started = Instant::now();
    server.set_failure_for(Failure::GarbageJson, outage);
    let first_ok = Arc::new(AtomicU64::new(u64::MAX));
    let (c2, f) = (client.clone(), Arc::clone(&first_ok));
    let results = on_threads(THREADS, move |_| {
        let r = c2.get("/x").call().map(|r| r.status().as_u16());
        let at = u64::try_from(started.elapsed().as_millis()).unwrap();
        f.fetch_min(at, SeqCst);
        r
    });
    assert!(results.iter().all(|r| matches!(r, Ok(200))), "{results:?}");
    let back = Duration::from_millis(first_ok.load(SeqCst));
    assert!(
        back < outage + Duration::from_secs(1),
        "requests came back {:?} after the endpoint did",
        back.saturating_sub(outage)
    );
    let c = server.counters();
    assert!(c.failure_answers >= 2, "{c:?}");
    assert_eq!(c.max_concurrent_refreshes, 1);
}

// ---- the classification table (see RefreshError's docs), one row per test ----

/// Answers every refresh with `failure`, calls once with an expired token, and returns the error
/// and whether the login-required callback ran.
fn refused_with(failure: Failure) -> (Error, bool, TestServer) {
    let server = TestServer::start();
    server.set_failure(failure);
    let logins = Arc::new(AtomicBool::new(false));
    let l = Arc::clone(&logins);
    let client = defaults(&server, expired_login(&server))
        .refresh_timeout(Duration::from_millis(300))
        .on_login_required(move |_| l.store(true, SeqCst))
        .build()
        .unwrap();
    let e = client.get("/x").call().unwrap_err();
    // The callback runs on the refresher thread once the waiters are woken: give it that moment.
    if e.is_login_required() {
        eventually("the login-required callback", || logins.load(SeqCst));
    }
    (e, logins.load(SeqCst), server)
}

fn answer(status: u16, body: &str) -> Failure {
    Failure::Answer {
        status,
        headers: Vec::new(),
        body: body.to_owned(),
    }
}

#[test]
fn row_invalid_grant_is_login_required() {
    let (e, login_callback, _s) = refused_with(Failure::InvalidGrant);
    assert!(e.is_login_required() && login_callback, "{e}");
}

#[test]
fn row_invalid_grant_in_a_200_body_is_login_required() {
    let (e, login_callback, _s) = refused_with(answer(200, r#"{"error":"invalid_grant"}"#));
    assert!(e.is_login_required() && login_callback, "{e}");
}

#[test]
fn row_invalid_client_is_configuration_and_keeps_the_session() {
    let (e, login_callback, server) = refused_with(Failure::InvalidClient);
    assert!(e.is_configuration() && !e.is_transient(), "{e}");
    assert!(!e.is_login_required() && !login_callback);
    assert_eq!(
        server.counters().token_requests,
        1,
        "not retried within the budget"
    );
}

#[test]
fn row_unauthorized_client_is_configuration() {
    let (e, login_callback, _s) = refused_with(answer(400, r#"{"error":"unauthorized_client"}"#));
    assert!(e.is_configuration() && !login_callback, "{e}");
}

#[test]
fn row_temporarily_unavailable_in_a_400_is_transient_and_waited_through() {
    let server = TestServer::start();
    let client = defaults(&server, expired_login(&server)).build().unwrap();
    // Long enough for the first attempt to meet it however slow this machine is; short enough to
    // end well within the default 10 s budget.
    server.set_failure_for(
        answer(400, r#"{"error":"temporarily_unavailable"}"#),
        Duration::from_secs(1),
    );
    assert_eq!(get_status(&client, "/x"), 200, "waited through the outage");
    assert!(server.counters().failure_answers >= 1);
}

#[test]
fn row_slow_down_in_a_400_is_transient() {
    let (e, login_callback, _s) = refused_with(answer(400, r#"{"error":"slow_down"}"#));
    assert!(e.is_transient() && !login_callback, "{e}");
}

#[test]
fn row_a_redirect_is_configuration() {
    let (e, login_callback, _s) = refused_with(Failure::Answer {
        status: 302,
        headers: vec![("Location", "/login".to_owned())],
        body: String::new(),
    });
    assert!(e.is_configuration() && !login_callback, "{e}");
    assert_eq!(e.refresh_error().unwrap().status(), Some(302));
}

#[test]
fn row_not_found_is_configuration() {
    let (e, login_callback, _s) = refused_with(answer(404, "<html>no such page</html>"));
    assert!(e.is_configuration() && !login_callback, "{e}");
}

#[test]
fn row_server_errors_and_429_are_transient() {
    for failure in [
        Failure::Status500,
        Failure::TooManyRequests {
            retry_after_secs: 1,
        },
        Failure::GarbageJson,
    ] {
        let (e, login_callback, _s) = refused_with(failure.clone());
        assert!(e.is_transient() && !login_callback, "{failure:?}: {e}");
    }
}
