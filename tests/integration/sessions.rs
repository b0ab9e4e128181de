//! Never lose a rotated refresh token, never strand a session: one regression test per way a
//! session was lost, each named after what it reproduces. Counts come from the server, which
//! rotates refresh tokens and revokes the whole family when a spent one is presented.

use std::time::Duration;

use serde_json::json;
use tokengate::{Client, Error, FileStore, Gate, Rejection, Token, TokenStore};
use tokengate_testserver::{Failure, TestServer};

use crate::support::*;

/// Runs one refresh through an odd (but rotating) answer, then a healthy one, and checks the
/// session survived: the second refresh presented the rotated refresh token, not a spent one.
fn survives(server: &TestServer, odd: Failure) {
    let client = builder(server, expired_login(server))
        .refresh_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    server.set_failure(odd.clone());
    let first = client.get("/x").call();
    server.set_failure(Failure::None);
    server.revoke_all();
    eventually("a healthy refresh", || {
        client.get("/x").call().is_ok_and(|r| r.status() == 200)
    });
    let c = server.counters();
    assert_eq!(
        c.reuse_detected, 0,
        "{odd:?}: a spent refresh token was presented ({first:?})"
    );
    assert_eq!(c.invalid_grant, 0, "{odd:?}: {c:?}");
    assert!(!client.gate().is_login_required());
}

#[test]
fn issue_12_2_an_empty_or_numeric_token_type_does_not_discard_a_rotated_refresh_token() {
    for value in [json!(""), json!(42), json!(null)] {
        let server = TestServer::start();
        survives(
            &server,
            Failure::Field {
                name: "token_type",
                value,
            },
        );
    }
}

#[test]
fn issue_12_2_an_empty_refresh_token_keeps_the_old_one() {
    // A server that does not rotate answers `"refresh_token": ""`: the old one stays good.
    let server = TestServer::builder().rotate_refresh_tokens(false).start();
    survives(
        &server,
        Failure::Field {
            name: "refresh_token",
            value: json!(""),
        },
    );
}

#[test]
fn issue_12_6_an_access_token_no_header_can_carry_keeps_the_rotated_refresh_token() {
    for bad in ["tök", "a\r\nb"] {
        let server = TestServer::start();
        survives(
            &server,
            Failure::Field {
                name: "access_token",
                value: json!(bad),
            },
        );
    }
}

#[test]
fn issue_12_6_an_unsendable_access_token_is_a_transient_failure_and_the_file_keeps_the_rotation() {
    let server = TestServer::start();
    let dir = temp_dir("unsendable");
    let file = dir.path().join("token.json");
    let store = FileStore::new(&file);
    store.save(&expired_login(&server)).unwrap();
    let before = store.load().unwrap().unwrap();
    let client = Client::builder(format!("{}/api", server.url()))
        .store(store.clone())
        .refresher(oauth(&server))
        .refresh_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    server.set_failure(Failure::Field {
        name: "token_type",
        value: json!("tök"),
    });
    let e = client.get("/x").call().unwrap_err();
    assert!(e.is_transient() && !e.is_login_required(), "{e}");
    let saved = store.load().unwrap().unwrap();
    assert_ne!(
        saved.refresh_token(),
        before.refresh_token(),
        "the rotated refresh token was saved"
    );
    assert_eq!(saved.access_token(), before.access_token());
    server.set_failure(Failure::None);
    eventually("recovered", || {
        client.get("/x").call().is_ok_and(|r| r.status() == 200)
    });
    assert_eq!(server.counters().reuse_detected, 0);
}

#[test]
fn issue_12_4_a_rejected_adopted_token_refreshes_instead_of_being_final() {
    let server = TestServer::start();
    let dir = temp_dir("adopted");
    let file = dir.path().join("token.json");
    FileStore::new(&file).save(&login(&server)).unwrap();
    // Two gates on one file: two processes.
    let gate = || {
        Gate::builder()
            .store(FileStore::new(&file))
            .refresher(oauth(&server))
            .build()
            .unwrap()
    };
    let (a, b) = (gate(), gate());
    let first = b.lease().unwrap();
    // "Process" A is told its token was rejected and refreshes; the new token lands in the file.
    let la = a.lease().unwrap();
    assert_eq!(a.reject(&la), Rejection::Invalidated);
    a.lease().unwrap();
    // The token A saved is revoked before B ever uses it.
    server.revoke_all();
    // B's token is rejected: under the lock it finds A's token and adopts it (no refresh).
    assert_eq!(b.reject(&first), Rejection::Invalidated);
    let adopted = b.lease().unwrap();
    assert_eq!(b.stats().adopted, 1);
    // The adopted token was never issued to B: its rejection refreshes, it is not final.
    assert_eq!(b.reject(&adopted), Rejection::Invalidated);
    let fresh = b.lease().unwrap();
    assert_ne!(fresh.token().access_token(), adopted.token().access_token());
    assert!(server.is_access_token_valid(fresh.token().access_token().secret()));
    assert_eq!(server.counters().reuse_detected, 0);
}

#[test]
fn issue_12_5_max_replays_zero_still_tells_the_gate_of_a_rejection() {
    let server = TestServer::start();
    let client = builder(&server, login(&server))
        .max_replays(0)
        .build()
        .unwrap();
    assert_eq!(get_status(&client, "/x"), 200);
    server.revoke_all();
    assert_eq!(get_status(&client, "/x"), 401, "not replayed");
    // The next request does not send the revoked token again: it refreshes first.
    assert_eq!(get_status(&client, "/x"), 200);
    let c = server.counters();
    assert_eq!((c.refreshes, c.api_rejected), (1, 1), "{c:?}");
}

#[test]
fn issue_12_6_a_token_no_header_can_carry_is_refused_where_it_enters() {
    let server = TestServer::start();
    for bad in [
        Token::new("tök"),
        Token::new("a\nb"),
        Token::new("ok").with_token_type("tök"),
    ] {
        let built = Client::builder(format!("{}/api", server.url()))
            .token(bad.clone())
            .build();
        assert!(matches!(built, Err(Error::InvalidToken)), "{built:?}");
        let client = builder(&server, login(&server)).build().unwrap();
        assert!(matches!(client.set_token(bad), Err(Error::InvalidToken)));
        assert_eq!(get_status(&client, "/x"), 200, "the good token stayed");
    }
    // A token file holding one is refused as malformed, naming no secret.
    let dir = temp_dir("unsendable-file");
    let file = dir.path().join("token.json");
    std::fs::write(&file, r#"{"version":1,"access_token":"t\u00f6k"}"#).unwrap();
    let e = FileStore::new(&file).load().unwrap_err();
    assert!(e.is_corrupt(), "{e}");
    assert!(!e.to_string().contains("tök"));
}
