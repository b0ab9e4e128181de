//! What counts as a rejection: 401 challenges (RFC 6750 §3), 403, and body-signalled expiry through
//! `reject_when` (behaviours 3 and 13).

use tokengate::Challenge;
use tokengate_testserver::TestServer;

use crate::support::*;

#[test]
fn an_invalid_token_challenge_is_reachable_on_the_returned_response() {
    let server = TestServer::start();
    let client = builder(&server, login(&server))
        .max_replays(0)
        .build()
        .unwrap();
    server.revoke_all();
    let resp = client.get("/x").call().unwrap();
    assert_eq!(resp.status(), 401);
    let ch = resp
        .extensions()
        .get::<Challenge>()
        .expect("challenge attached");
    assert_eq!(ch.error(), Some("invalid_token"));
    assert_eq!(ch.param("realm"), Some("api"));
}

#[test]
fn insufficient_scope_never_refreshes() {
    let server = TestServer::start();
    let client = builder(&server, login(&server)).build().unwrap();
    for path in ["/insufficient-scope", "/insufficient-scope-401"] {
        let resp = client.get(path).call().unwrap();
        assert!(matches!(resp.status().as_u16(), 401 | 403), "{path}");
        let ch = resp
            .extensions()
            .get::<Challenge>()
            .expect("challenge attached");
        assert_eq!(ch.error(), Some("insufficient_scope"));
        assert_eq!(ch.param("scope"), Some("admin"));
    }
    let c = server.counters();
    assert_eq!(c.refresh_attempts, 0);
    assert_eq!(c.api_calls, 2, "no replay");
}

fn body_mode_client(server: &TestServer) -> tokengate::Client {
    builder(server, login(server))
        .reject_when(|_parts, body| {
            serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v["ret"] == 401)
        })
        .build()
        .unwrap()
}

#[test]
fn body_signalled_expiry_refreshes_and_the_caller_gets_the_whole_body() {
    let server = TestServer::builder().body_mode(true).start();
    let client = body_mode_client(&server);
    server.revoke_all();
    let statuses = on_threads(32, {
        let client = client.clone();
        move |_| {
            let mut r = client.get("/x").call().unwrap();
            let v: serde_json::Value = r.body_mut().read_json().unwrap();
            (r.status().as_u16(), v["ok"] == true)
        }
    });
    assert!(statuses.iter().all(|&s| s == (200, true)), "{statuses:?}");
    assert_eq!(server.counters().refresh_attempts, 1);
}

#[test]
fn bodies_larger_than_the_buffer_limit_stream_through_untouched() {
    let server = TestServer::builder().body_mode(true).start();
    let client = builder(&server, login(&server))
        .reject_when(|_, _| panic!("must not be asked about a body over the limit"))
        .max_buffered_body(1024)
        .build()
        .unwrap();
    let mut r = client.get("/big").query("bytes", "100000").call().unwrap();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .unwrap();
    assert_eq!(body.len(), 100_000);
    assert!(body.iter().all(|&b| b == b'x'));
}
