//! Deadlines and the client's own reads: a request's `timeout` bounds the wait for a token, the
//! exchange and the body; a trickling 401 is abandoned after a short drain, before the replay; the
//! body buffered for `reject_when` is bounded in time as well as in bytes.

use std::io::Read;
use std::thread;
use std::time::Duration;

use tokengate::{Client, Error, RefreshError, Token};
use tokengate_testserver::{RawReply, RawServer, TestServer};

use crate::support::*;

/// Bytes of the trickling bodies: at one byte a second, reading one takes 100 s.
const SLOW_BODY: usize = 100;

/// Runs `f` on a thread and fails the test if it does not finish within `limit` (a hang or a slow
/// read becomes a failure instead of a test that takes minutes).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("the call was not bounded (or panicked)")
}

/// An API that answers the token `old` with a 401 whose body trickles one byte a second, and any
/// other token with 200.
fn slow_401_api() -> RawServer {
    RawServer::start(|req| match req.header("authorization") {
        Some("Bearer old") => RawReply {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                r#"Bearer error="invalid_token""#.into(),
            )],
            body: vec![b'x'; SLOW_BODY],
            trickle: Some(Duration::from_secs(1)),
        },
        _ => RawReply::json(200, r#"{"ok":true}"#),
    })
}

fn client_of(api: &RawServer) -> tokengate::ClientBuilder {
    Client::builder(api.url())
        .token(Token::new("old"))
        .refresher(|_: &Token| -> Result<Token, RefreshError> { Ok(Token::new("new")) })
}

#[test]
fn a_slow_401_is_not_read_before_the_replay_with_or_without_a_deadline() {
    let api = slow_401_api();
    let client = client_of(&api).build().unwrap();
    let c = client.clone();
    let status = within(Duration::from_secs(10), move || {
        c.get("/x")
            .timeout(Duration::from_secs(5))
            .call()
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    assert_eq!(api.requests(), 2);
    // The same with the defaults (no deadline): the drain gives up after its 250 ms.
    let client = client_of(&api).build().unwrap();
    let status = within(Duration::from_secs(10), move || {
        client.get("/x").call().unwrap().status()
    });
    assert_eq!(status, 200);
    assert_eq!(api.requests(), 4);
}

#[test]
fn the_deadline_bounds_reading_a_slow_body_handed_to_the_caller() {
    let api = slow_401_api();
    let client = client_of(&api).max_replays(0).build().unwrap();
    let read = within(Duration::from_secs(10), move || {
        let resp = client
            .get("/x")
            .timeout(Duration::from_secs(1))
            .call()
            .unwrap();
        assert_eq!(resp.status(), 401);
        let mut body = Vec::new();
        resp.into_body().into_reader().read_to_end(&mut body)
    });
    let e = read.expect_err("100 bytes at a byte a second cannot arrive within 1 s");
    assert!(e.to_string().contains("timeout"), "{e}");
}

/// An API whose 200 bodies trickle, so `reject_when` has to wait for them.
fn slow_200_api() -> RawServer {
    RawServer::start(|_| RawReply {
        trickle: Some(Duration::from_secs(1)),
        ..RawReply::json(
            200,
            &format!(r#"{{"ret":0,"pad":"{}"}}"#, "x".repeat(SLOW_BODY)),
        )
    })
}

#[test]
fn reject_when_buffering_is_bounded_by_buffer_timeout_and_by_the_deadline() {
    let api = slow_200_api();
    let judged =
        |c: tokengate::ClientBuilder| c.reject_when(|_, body| body.starts_with(br#"{"ret":401"#));
    let client = judged(client_of(&api))
        .buffer_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let status = within(Duration::from_secs(10), move || {
        client.get("/x").call().unwrap().status()
    });
    assert_eq!(status, 200);
    // Default buffer timeout (30 s), but a 500 ms deadline on the request.
    let client = judged(client_of(&api)).build().unwrap();
    let status = within(Duration::from_secs(10), move || {
        client
            .get("/x")
            .timeout(Duration::from_millis(500))
            .call()
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    assert_eq!(api.requests(), 2);
}

#[test]
fn the_deadline_bounds_the_wait_for_a_token_and_the_refresh_still_serves_later_calls() {
    let server = TestServer::start();
    // The refresh takes 4 s: both calls below give up while it is still in flight.
    server.set_token_latency(Duration::from_secs(4));
    let client = builder(&server, expired_login(&server)).build().unwrap();
    // This thread would refresh; with a deadline it waits for a refresh on another thread instead.
    let c = client.clone();
    let e = within(Duration::from_secs(10), move || {
        c.get("/items")
            .timeout(Duration::from_millis(300))
            .call()
            .unwrap_err()
    });
    assert!(
        matches!(e, Error::Deadline(d) if d == Duration::from_millis(300)),
        "{e:?}"
    );
    assert!(e.is_transient());
    // A second request with a deadline waits for the same refresh, and also gives up in time.
    let c = client.clone();
    let e = within(Duration::from_secs(10), move || {
        c.get("/items")
            .timeout(Duration::from_millis(200))
            .call()
            .unwrap_err()
    });
    assert!(matches!(e, Error::Deadline(_)), "{e:?}");
    // Without a deadline the next call gets the token of that same refresh.
    assert_eq!(get_status(&client, "/items"), 200);
    let c = server.counters();
    assert_eq!((c.refreshes, c.api_calls), (1, 1));
}

#[test]
fn the_deadline_bounds_a_slow_response() {
    let api = RawServer::start(|_| {
        thread::sleep(Duration::from_secs(3));
        RawReply::json(200, "{}")
    });
    let client = Client::builder(api.url())
        .token(Token::new("t"))
        .build()
        .unwrap();
    let e = within(Duration::from_secs(10), move || {
        client
            .get("/x")
            .timeout(Duration::from_millis(300))
            .call()
            .unwrap_err()
    });
    assert!(matches!(e, Error::Deadline(_)), "{e:?}");
}
