//! Redirects on the wire: `Location` resolved per RFC 3986 (relative references, dot segments, an
//! upper-case scheme), and credential-like headers dropped on every hop that changes origin.

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tokengate::{Client, Token};
use tokengate_testserver::{RawReply, RawRequest, RawServer};

/// A server that logs every request and answers from a table of `target -> reply`.
fn logging_server(
    routes: impl Fn(&RawRequest, &str) -> RawReply + Send + Sync + 'static,
) -> (RawServer, Arc<Mutex<Vec<RawRequest>>>) {
    let log: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
    let url: Arc<OnceLock<String>> = Arc::default();
    let (l, u) = (Arc::clone(&log), Arc::clone(&url));
    let server = RawServer::start(move |req| {
        l.lock().push(req.clone());
        routes(req, u.get().map_or("", String::as_str))
    });
    let _ = url.set(server.url());
    (server, log)
}

fn redirect(status: u16, to: &str) -> RawReply {
    RawReply::json(status, "{}").header("Location", to)
}

#[test]
fn relative_locations_are_resolved_per_rfc3986() {
    let (api, log) = logging_server(|req, own| match req.target.as_str() {
        "/b/c/d;p?q" => redirect(302, "?y"),
        "/b/c/d;p?y" => redirect(302, "../g"),
        "/b/g" => redirect(301, "./h/../i;x?z#frag"),
        "/b/i;x?z" => redirect(302, &format!("HTTP://{}/done", &own[7..])),
        _ => RawReply::json(200, "{}"),
    });
    let client = Client::builder(api.url())
        .token(Token::new("t"))
        .build()
        .unwrap();
    let resp = client.get("/b/c/d;p?q").call().unwrap();
    assert_eq!(resp.status(), 200);
    let targets: Vec<String> = log.lock().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        targets,
        ["/b/c/d;p?q", "/b/c/d;p?y", "/b/g", "/b/i;x?z", "/done"]
    );
    // Every hop stayed on the API origin, so every hop carried the token.
    assert!(
        log.lock()
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer t"))
    );
}

const CREDENTIALS: [&str; 4] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "x-api-key",
];

#[test]
fn credential_headers_are_dropped_when_a_redirect_changes_origin_and_stay_dropped() {
    let (other, other_log) = logging_server(|_, _| RawReply::json(200, "{}"));
    let other_url = other.url();
    let (api, api_log) = logging_server(move |req, _| match req.target.as_str() {
        "/same" => redirect(307, "/start"),
        "/start" => redirect(302, &format!("{other_url}/land")),
        _ => RawReply::json(200, "{}"),
    });
    let client = Client::builder(api.url())
        .token(Token::new("tok"))
        .sensitive_header("X-Api-Key")
        .build()
        .unwrap();
    let resp = client
        .get("/same")
        .header("Cookie", "session=1")
        .header("X-Api-Key", "k")
        .header("Proxy-Authorization", "Basic eDp5")
        .header("Accept", "application/json")
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Same-origin hops keep everything; the token is the client's.
    for r in api_log.lock().iter() {
        assert_eq!(r.header("authorization"), Some("Bearer tok"));
        assert_eq!(r.header("cookie"), Some("session=1"));
        assert_eq!(r.header("x-api-key"), Some("k"));
    }
    let landed = other_log.lock();
    assert_eq!(landed.len(), 1);
    for name in CREDENTIALS {
        assert_eq!(
            landed[0].header(name),
            None,
            "{name} followed to another origin"
        );
    }
    assert_eq!(landed[0].header("accept"), Some("application/json"));
}

#[test]
fn a_user_authorization_meant_for_another_origin_does_not_follow_its_redirect_to_the_api() {
    let (api, api_log) = logging_server(|_, _| RawReply::json(200, "{}"));
    let api_url = api.url();
    let (other, _) = logging_server(move |_, _| redirect(302, &format!("{api_url}/landing")));
    let client = Client::builder(api.url())
        .token(Token::new("tok"))
        .build()
        .unwrap();
    let resp = client
        .get(&format!("{}/start", other.url()))
        .header("Authorization", "Basic dXNlcjpwdw==")
        .header("Cookie", "other=1")
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let log = api_log.lock();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].target, "/landing");
    // Neither the user's header for the other origin nor, since the request did not start on the
    // API origin, the token.
    assert_eq!(log[0].header("authorization"), None);
    assert_eq!(log[0].header("cookie"), None);
}
