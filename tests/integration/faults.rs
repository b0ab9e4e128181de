//! Fault injection against the loopback server: every broken answer of the token endpoint or the API
//! ends in a typed outcome on every thread, no thread hangs, and no rotated refresh token is lost.
//! (The cases of `failures.rs` — endpoint down, hanging, 500, 429, HTML, truncated JSON, invalid
//! grant, panicking refresher — are not repeated here.)

use std::time::Duration;

use serde_json::json;
use tokengate::{Client, Error, RefreshErrorKind};
use tokengate_testserver::{Failure, TestServer};

use crate::support::*;

/// Threads sent through each fault at once.
const THREADS: usize = 8;

/// A client whose token has expired, so the first request refreshes. The token endpoint takes
/// 300 ms, so every thread of a storm is waiting for that one attempt when it fails; the next
/// attempt (a minute's backoff, capped at the 5 s budget) comes after every waiter's budget, so
/// they all get its error at once.
fn expired_client(server: &TestServer) -> Client {
    server.set_token_latency(Duration::from_millis(300));
    builder(server, expired_login(server))
        .refresh_backoff(Duration::from_secs(60), Duration::from_secs(60))
        .refresh_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// `THREADS` requests at once; each thread's outcome, or a test failure if one hangs.
fn storm(client: &Client) -> Vec<Result<u16, Error>> {
    let client = client.clone();
    on_threads(THREADS, move |_| {
        client.get("/x").call().map(|r| r.status().as_u16())
    })
}

/// Every thread got a transient refresh error of `kind`; the endpoint was asked once.
fn assert_refresh_failed(
    server: &TestServer,
    results: &[Result<u16, Error>],
    kind: RefreshErrorKind,
) {
    for r in results {
        let e = r
            .as_ref()
            .expect_err("a broken token endpoint cannot yield a response");
        assert!(matches!(e, Error::Refresh(_)) && e.is_transient(), "{e}");
        assert_eq!(e.refresh_error().unwrap().kind(), kind, "{e}");
    }
    let c = server.counters();
    assert_eq!(c.refresh_attempts, 1, "one refresh for {THREADS} threads");
    assert_eq!(c.api_calls, 0, "no request is sent with an expired token");
}

#[test]
fn unavailable_with_retry_after_is_shared_and_carries_the_delay() {
    let server = TestServer::start();
    server.set_failure(Failure::Unavailable {
        retry_after_secs: 7,
    });
    let client = expired_client(&server);
    let results = storm(&client);
    assert_refresh_failed(&server, &results, RefreshErrorKind::OAuth);
    let e = results[0].as_ref().unwrap_err().refresh_error().unwrap();
    assert_eq!(e.status(), Some(503));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(e.oauth_error().unwrap().error(), "temporarily_unavailable");
}

#[test]
fn a_ten_megabyte_token_response_is_cut_at_the_limit() {
    let server = TestServer::start();
    server.set_failure(Failure::BigBody(10 * 1024 * 1024));
    let client = expired_client(&server);
    let results = storm(&client);
    assert_refresh_failed(&server, &results, RefreshErrorKind::InvalidResponse);
    let e = results[0].as_ref().unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
}

#[test]
fn a_connection_reset_mid_response_is_a_transport_error() {
    let server = TestServer::start();
    server.set_failure(Failure::ResetMidResponse);
    let client = expired_client(&server);
    let results = storm(&client);
    assert_refresh_failed(&server, &results, RefreshErrorKind::Transport);
    assert_eq!(server.counters().connections_reset, 1);
}

#[test]
fn an_empty_access_token_is_an_invalid_response() {
    let server = TestServer::start();
    server.set_failure(Failure::EmptyAccessToken);
    let client = expired_client(&server);
    let results = storm(&client);
    assert_refresh_failed(&server, &results, RefreshErrorKind::InvalidResponse);
    assert!(
        results[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("access_token is empty")
    );
}

/// An `expires_in` that is missing, zero, negative, huge or a string never costs the rotated refresh
/// token: the token is used (without a stated lifetime unless the value is usable), and the next
/// refresh presents the new refresh token (the server would revoke the family on a reused one).
#[test]
fn odd_expires_in_values_keep_the_token_and_its_rotated_refresh_token() {
    let cases = [
        ("missing", None, false),
        ("zero", Some(json!(0)), false),
        ("negative", Some(json!(-5)), false),
        ("a string", Some(json!("soon")), false),
        ("huge", Some(json!(1e300)), true),
        ("a numeric string", Some(json!("600")), true),
    ];
    for (what, value, has_expiry) in cases {
        let server = TestServer::start();
        match value {
            Some(v) => server.set_failure(Failure::ExpiresIn(v)),
            None => server.set_omit_expires_in(true),
        }
        let client = expired_client(&server);
        for r in storm(&client) {
            assert_eq!(r.unwrap_or_else(|e| panic!("{what}: {e}")), 200, "{what}");
        }
        let token = client.token().unwrap();
        assert_eq!(token.expires_at().is_some(), has_expiry, "{what}");
        if has_expiry {
            assert!(
                token.lifetime().unwrap() >= Duration::from_secs(600),
                "{what}"
            );
        }
        // The server revokes every access token: the client refreshes with the rotated refresh
        // token it kept, and the request goes through.
        server.set_failure(Failure::None);
        server.set_omit_expires_in(false);
        server.revoke_all();
        assert_eq!(get_status(&client, "/x"), 200, "{what}");
        let c = server.counters();
        assert_eq!(
            (c.refreshes, c.reuse_detected, c.invalid_grant),
            (2, 0, 0),
            "{what}"
        );
    }
}

#[test]
fn an_api_that_resets_connections_gives_transport_errors_and_no_refresh() {
    let server = TestServer::start();
    let client = builder(&server, login(&server)).build().unwrap();
    server.set_api_reset(true);
    for r in storm(&client) {
        let e = r.expect_err("a reset connection cannot yield a response");
        assert!(matches!(e, Error::Transport(_)) && e.is_transient(), "{e}");
    }
    let c = server.counters();
    assert!(c.api_calls >= THREADS as u64, "{c:?}");
    assert_eq!(c.connections_reset, c.api_calls);
    assert_eq!(
        c.token_requests, 0,
        "a reset is not a rejection: no refresh"
    );
    server.set_api_reset(false);
    assert_eq!(get_status(&client, "/x"), 200);
}
