//! End-to-end tests of the test server: ureq as the client, raw sockets where no client will do
//! (see `common`).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokengate_testserver::support::{eventually, on_threads};
use tokengate_testserver::{Counters, Failure, TestServer, closed_port_url};

const EXPIRED_CHALLENGE: &str =
    r#"Bearer realm="api", error="invalid_token", error_description="The access token expired""#;

/// A form-encoded POST to the token endpoint with no client authentication header.
fn form_post(s: &TestServer, body: &[u8]) -> Resp {
    send(s, "POST", "/oauth/token", &[FORM], body)
}

#[test]
fn urls() {
    let s = TestServer::start();
    assert_eq!(s.url(), format!("http://127.0.0.1:{}", s.port()));
    assert_eq!(s.token_url(), format!("{}/oauth/token", s.url()));
    assert!(!s.url().ends_with('/'));
}

#[test]
fn password_grant_then_api_ok() {
    let s = TestServer::start();
    let r = token(
        &s,
        "grant_type=password&username=alice&password=pw&scope=read+write",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let j = r.json();
    let at = j["access_token"].as_str().unwrap();
    assert!(at.starts_with("at-") && at.len() >= 35, "{at}");
    assert!(j["refresh_token"].as_str().unwrap().starts_with("rt-"));
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["expires_in"], 3600);
    assert_eq!(j["scope"], "read write");

    let r = send(
        &s,
        "POST",
        "/api/things?q=1&x=%20",
        &[("Authorization", &format!("bearer {at}"))],
        b"hello",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Clients match on the text (the C example does), so the key order is part of the answer.
    assert_eq!(
        r.text(),
        r#"{"ok":true,"method":"POST","path":"/api/things?q=1&x=%20","body_len":5}"#
    );
    let r = api(&s, "/api", at);
    assert_eq!(r.status, 200);

    let c = s.counters();
    assert_eq!(
        c,
        Counters {
            token_requests: 1,
            api_calls: 2,
            api_ok: 2,
            max_concurrent_refreshes: 1,
            // The helpers open one connection per request.
            connections: 3,
            ..Counters::default()
        }
    );
    let tr = s.last_token_request().unwrap();
    assert_eq!(tr.grant_type, "password");
    assert_eq!(tr.param("scope"), Some("read write"));
    assert_eq!(tr.param("client_secret"), Some("demo-secret"));
    assert_eq!(tr.basic_auth, None);
    assert_eq!(
        tr.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
}

#[test]
fn client_authentication() {
    let s = TestServer::builder().client("a b", "p+q:r").start();
    // Basic, with RFC 6749 §2.3.1 form-encoding of id and secret.
    let auth = basic("a+b", "p%2Bq%3Ar");
    let body = b"grant_type=client_credentials&scope=svc";
    let r = send(
        &s,
        "POST",
        "/oauth/token",
        &[FORM, ("Authorization", &auth)],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert!(j.get("refresh_token").is_none(), "{j}");
    assert_eq!(j["scope"], "svc");
    let tr = s.last_token_request().unwrap();
    assert_eq!(
        tr.basic_auth,
        Some(("a b".to_string(), "p+q:r".to_string()))
    );
    assert_eq!(tr.grant_type, "client_credentials");

    // Wrong secret, via Basic and via body.
    let bad = basic("demo-client", "nope");
    let r = send(
        &s,
        "POST",
        "/oauth/token",
        &[FORM, ("Authorization", &bad)],
        body,
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_client");
    assert_eq!(r.header("www-authenticate"), Some(r#"Basic realm="token""#));
    let r = form_post(
        &s,
        b"grant_type=password&username=u&password=p&client_id=demo-client&client_secret=x",
    );
    assert_eq!(r.status, 401);
    // No client at all.
    let r = form_post(&s, b"grant_type=password&username=u&password=p");
    assert_eq!(r.status, 401);
    // Public client: password ok, client_credentials not.
    let r = form_post(
        &s,
        b"grant_type=password&username=u&password=p&client_id=demo-public",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = form_post(&s, b"grant_type=client_credentials&client_id=demo-public");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "unauthorized_client");
    // Default client still registered; Basic + body secret is two methods.
    let ok = basic("demo-client", "demo-secret");
    let r = send(
        &s,
        "POST",
        "/oauth/token",
        &[FORM, ("Authorization", &ok)],
        b"grant_type=client_credentials&client_secret=demo-secret",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_request");
    assert_eq!(s.counters().client_credentials, 1);
}

#[test]
fn bad_token_requests() {
    let s = TestServer::start();
    let r = token(&s, "grant_type=device_code");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let r = token(&s, "scope=x");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let r = send(
        &s,
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(r.status, 400);
    // A broken escape is a malformed form, not a grant type nobody supports.
    let r = form_post(&s, b"grant_type=%zz");
    assert_eq!(
        (r.status, r.json()["error_description"].as_str()),
        (400, Some("malformed form body"))
    );
    let r = token(
        &s,
        "grant_type=password&grant_type=password&username=u&password=p",
    );
    assert_eq!(r.status, 400);
    let r = send(&s, "GET", "/oauth/token", &[], b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let r = token(&s, "grant_type=refresh_token");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let c = s.counters();
    assert_eq!(
        (c.token_requests, c.refresh_attempts, c.invalid_grant),
        (7, 1, 0)
    );
}

#[test]
fn refresh_rotation_and_reuse_detection() {
    let s = TestServer::start();
    let (at1, rt1) = login(&s);
    let r = token(
        &s,
        &format!("grant_type=refresh_token&refresh_token={rt1}&scope=a"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let at2 = j["access_token"].as_str().unwrap().to_string();
    let rt2 = j["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    assert_eq!(j["scope"], "a");
    assert_eq!(api(&s, "/api/x", &at1).status, 200);
    assert_eq!(api(&s, "/api/x", &at2).status, 200);

    // Replaying the consumed rt1: reuse -> the whole family is revoked.
    let r = refresh(&s, &rt1);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_grant");
    let c = s.counters();
    assert_eq!(
        (
            c.refresh_attempts,
            c.refreshes,
            c.invalid_grant,
            c.reuse_detected
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(api(&s, "/api/x", &at1).status, 401);
    assert_eq!(api(&s, "/api/x", &at2).status, 401);
    let r = refresh(&s, &rt2);
    assert_eq!(r.json()["error"], "invalid_grant");
    let r = refresh(&s, "rt-unknown");
    assert_eq!(r.status, 400);
    let c = s.counters();
    assert_eq!(
        (
            c.refresh_attempts,
            c.refreshes,
            c.invalid_grant,
            c.reuse_detected
        ),
        (4, 1, 3, 1)
    );

    // Other families are untouched.
    let other = s.issue_token();
    assert_eq!(api(&s, "/api/x", &other.access_token).status, 200);
    assert_eq!(refresh(&s, &other.refresh_token).status, 200);
}

#[test]
fn refresh_without_rotation() {
    let s = TestServer::builder().rotate_refresh_tokens(false).start();
    let issued = s.issue_token();
    assert_eq!(issued.expires_in, 3600);
    for _ in 0..3 {
        let r = refresh(&s, &issued.refresh_token);
        assert_eq!(r.status, 200);
        assert!(r.json().get("refresh_token").is_none());
    }
    assert_eq!(s.counters().refreshes, 3);
    s.revoke_refresh_tokens();
    let r = refresh(&s, &issued.refresh_token);
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(s.counters().invalid_grant, 1);
    // Access tokens survive refresh-token revocation.
    assert_eq!(api(&s, "/api/x", &issued.access_token).status, 200);
}

#[test]
fn revoke_all_rejects_access_tokens_only() {
    let s = TestServer::start();
    let issued = s.issue_token();
    assert_eq!(
        s.counters(),
        Counters::default(),
        "issue_token is not counted"
    );
    s.revoke_all();
    let r = api(&s, "/api/x", &issued.access_token);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(EXPIRED_CHALLENGE));
    let r = refresh(&s, &issued.refresh_token);
    assert_eq!(r.status, 200);
    let at = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(api(&s, "/api/x", &at).status, 200);

    let r = send(&s, "GET", "/api/x", &[], b"");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(r#"Bearer realm="api""#));
    let r = send(
        &s,
        "GET",
        "/api/x",
        &[("Authorization", "Basic Zm9vOmJhcg==")],
        b"",
    );
    assert_eq!(r.header("www-authenticate"), Some(EXPIRED_CHALLENGE));
    let c = s.counters();
    assert_eq!(
        (c.api_calls, c.api_ok, c.api_rejected, c.api_without_auth),
        (4, 1, 3, 1)
    );
    s.reset_counters();
    assert_eq!(s.counters(), Counters::default());
}

#[test]
fn reject_all_and_expiry() {
    let s = TestServer::builder()
        .token_lifetime(Duration::from_millis(900))
        .start();
    let r = token(&s, "grant_type=password&username=u&password=p");
    let j = r.json();
    assert_eq!(j["expires_in"], 1, "sub-second lifetimes round up");
    let at = j["access_token"].as_str().unwrap().to_string();
    assert_eq!(api(&s, "/api/x", &at).status, 200);
    s.set_reject_all(true);
    assert_eq!(api(&s, "/api/x", &at).status, 401);
    s.set_reject_all(false);
    assert!(s.is_access_token_valid(&at));
    thread::sleep(Duration::from_millis(1000));
    assert!(!s.is_access_token_valid(&at));
    let r = api(&s, "/api/x", &at);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(EXPIRED_CHALLENGE));

    s.set_token_lifetime(Duration::from_secs(5));
    s.set_omit_expires_in(true);
    let j = token(&s, "grant_type=password&username=u&password=p").json();
    assert!(j.get("expires_in").is_none(), "{j}");
    assert_eq!(s.issue_token().expires_in, 5);
}

#[test]
fn body_mode() {
    let s = TestServer::builder().body_mode(true).start();
    let r = api(&s, "/api/x", "at-bogus");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"ret": 401, "msg": "token expired"})
    );
    let r = send(&s, "GET", "/api/x", &[], b"");
    assert_eq!(r.json()["ret"], 401);
    let at = s.issue_token().access_token;
    assert_eq!(api(&s, "/api/x", &at).json()["ok"], true);
    let c = s.counters();
    assert_eq!(
        (c.api_calls, c.api_ok, c.api_rejected, c.api_without_auth),
        (3, 1, 2, 1)
    );
}

#[test]
fn failure_modes() {
    let s = TestServer::start();
    let rt = s.issue_token().refresh_token;

    s.set_failure(Failure::Unavailable {
        retry_after_secs: 7,
    });
    let r = refresh(&s, &rt);
    assert_eq!((r.status, r.header("retry-after")), (503, Some("7")));
    // Password grant is never affected.
    login(&s);
    let r = token(&s, "grant_type=client_credentials");
    assert_eq!(r.status, 503);

    s.set_failure(Failure::TooManyRequests {
        retry_after_secs: 2,
    });
    let r = refresh(&s, &rt);
    assert_eq!((r.status, r.header("retry-after")), (429, Some("2")));

    s.set_failure(Failure::Status500);
    let r = refresh(&s, &rt);
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (500, Some("server_error"))
    );

    s.set_failure(Failure::Html);
    let r = refresh(&s, &rt);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(r.text(), "<html><body>Sign in</body></html>");

    s.set_failure(Failure::GarbageJson);
    let r = refresh(&s, &rt);
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("application/json"))
    );
    assert_eq!(r.text(), r#"{"access_token": "abc", "#);

    s.set_failure(Failure::InvalidGrant);
    let r = refresh(&s, &rt);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error_description"], "refresh token revoked");

    s.set_failure(Failure::InvalidClient);
    let r = refresh(&s, &rt);
    assert_eq!(
        (r.status, r.header("www-authenticate")),
        (401, Some(r#"Basic realm="token""#))
    );

    s.set_failure(Failure::Hang(Duration::from_millis(300)));
    let t = Instant::now();
    let r = refresh(&s, &rt);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.status, 200, "hang then answer normally");

    s.set_failure(Failure::None);
    let c = s.counters();
    assert_eq!(
        (
            c.refresh_attempts,
            c.refreshes,
            c.invalid_grant,
            c.client_credentials
        ),
        (8, 1, 1, 0)
    );
    assert_eq!(c.token_requests, 10);
}

/// Writes `request` on a raw connection and reads until the server closes it: what arrived, and
/// the error that ended the read (`None` for an orderly close). A raw socket, because HTTP clients
/// report a reset and an early close alike.
fn send_until_closed(s: &TestServer, request: &str) -> (Vec<u8>, Option<std::io::ErrorKind>) {
    let mut c = connect(s);
    c.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return (got, None),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Some(e.kind())),
        }
    }
}

#[test]
fn injected_faults() {
    let s = TestServer::start();
    let rt = s.issue_token().refresh_token;

    s.set_failure(Failure::BigBody(100_000));
    let r = refresh(&s, &rt);
    assert_eq!((r.status, r.body.len()), (200, 100_000));
    assert_eq!(r.json()["access_token"], "big");

    s.set_failure(Failure::EmptyAccessToken);
    let r = refresh(&s, &rt);
    assert_eq!(
        (r.status, r.json()["access_token"].as_str()),
        (200, Some(""))
    );

    // A real refresh (the refresh token rotates) with a doctored expires_in.
    s.set_failure(Failure::ExpiresIn(serde_json::json!("soon")));
    let r = refresh(&s, &rt);
    assert_eq!(
        (r.status, r.json()["expires_in"].as_str()),
        (200, Some("soon"))
    );
    let rt = r.json()["refresh_token"].as_str().unwrap().to_string();
    s.set_failure(Failure::ExpiresIn(serde_json::json!(-5)));
    let r = refresh(&s, &rt);
    assert_eq!(r.json()["expires_in"], -5);
    let rt = r.json()["refresh_token"].as_str().unwrap().to_string();
    // The password grant is never affected.
    let r = token(&s, "grant_type=password&username=u&password=p");
    assert_eq!(r.json()["expires_in"], 3600);

    // Head plus half the body, then a reset: never a complete response.
    s.set_failure(Failure::ResetMidResponse);
    let form = refresh_form(&rt);
    let request = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let (got, err) = send_until_closed(&s, &request);
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(&got) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("no complete head ({other:?}): {got:?}"),
    };
    assert_eq!(head.code, Some(200));
    let announced: usize = head
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
        .expect("a Content-Length");
    let body = &got[head_len..];
    assert!(
        body.len() < announced && !body.is_empty(),
        "{} of {announced} bytes",
        body.len()
    );
    assert_eq!(err, Some(std::io::ErrorKind::ConnectionReset));

    s.set_failure(Failure::None);
    let c = s.counters();
    assert_eq!((c.refreshes, c.connections_reset), (2, 1));

    // The API side: every connection reset, nothing answered.
    let (access, _) = login(&s);
    s.set_api_reset(true);
    let (got, err) = send_until_closed(
        &s,
        &format!("GET /api/x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {access}\r\n\r\n"),
    );
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(err, Some(std::io::ErrorKind::ConnectionReset));
    s.set_api_reset(false);
    assert_eq!(api(&s, "/api/x", &access).status, 200);
    let c = s.counters();
    assert_eq!((c.api_calls, c.api_ok, c.connections_reset), (2, 1, 2));
}

#[test]
fn transient_failure_rate_and_latency_jitter() {
    let s = TestServer::builder()
        .transient_failure_rate(1.0)
        .token_latency_jitter(Duration::from_millis(50))
        .start();
    let rt = s.issue_token().refresh_token;
    let r = refresh(&s, &rt);
    assert_eq!(
        (
            r.status,
            r.json()["error"].as_str(),
            r.header("retry-after")
        ),
        (503, Some("temporarily_unavailable"), None)
    );
    // The password grant is never affected.
    login(&s);
    s.set_transient_failure_rate(0.5);
    let mut failed = 0;
    let mut rt = rt;
    for _ in 0..40 {
        let r = refresh(&s, &rt);
        match r.status {
            200 => rt = r.json()["refresh_token"].as_str().unwrap().to_string(),
            503 => failed += 1,
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    // P(outside 5..=35 of 40 at p = 0.5) is below 1e-6.
    assert!((5..=35).contains(&failed), "{failed} of 40");
    let c = s.counters();
    assert_eq!(c.injected_failures, 1 + failed);
    assert_eq!(c.refreshes, 40 - failed);
    s.set_transient_failure_rate(f64::NAN);
    assert_eq!(refresh(&s, &rt).status, 200);
}

#[test]
fn latency_and_max_concurrency() {
    let s = Arc::new(
        TestServer::builder()
            .token_latency(Duration::from_millis(300))
            .start(),
    );
    let rts: Vec<String> = (0..6).map(|_| s.issue_token().refresh_token).collect();
    let t = Instant::now();
    let statuses = on_threads(rts.len(), {
        let s = Arc::clone(&s);
        move |i| refresh(&s, &rts[i]).status
    });
    assert_eq!(statuses, [200; 6]);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "requests were serialized: {:?}",
        t.elapsed()
    );
    let c = s.counters();
    assert_eq!(c.max_concurrent_refreshes, 6);
    assert_eq!(c.refreshes, 6);
    assert_eq!(s.token_requests_in_flight(), 0);
}

#[test]
fn special_paths() {
    let s = TestServer::start();
    let at = s.issue_token().access_token;
    let r = api(&s, "/api/insufficient-scope", &at);
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer error="insufficient_scope", scope="admin""#)
    );
    let r = api(&s, "/api/insufficient-scope-401", &at);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer error="insufficient_scope", scope="admin""#)
    );
    let r = api(&s, "/api/echo-auth", "whatever \"quoted\"");
    assert_eq!(
        r.json(),
        serde_json::json!({"authorization": "Bearer whatever \"quoted\""})
    );
    let r = send(&s, "GET", "/api/echo-auth", &[], b"");
    assert_eq!(r.json()["authorization"], "");
    let r = api(&s, "/api/big?bytes=100000", &at);
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("text/plain"))
    );
    assert_eq!(r.body, vec![b'x'; 100_000]);
    assert_eq!(api(&s, "/api/big?bytes=lots", &at).status, 400);
    assert_eq!(api(&s, "/api/big", "nope").status, 401);

    let r = send(
        &s,
        "GET",
        "/redirect?to=http%3A%2F%2F127.0.0.1%3A1%2Fapi%2Fx%3Fa%3D1&status=307",
        &[],
        b"",
    );
    assert_eq!(
        (r.status, r.header("location")),
        (307, Some("http://127.0.0.1:1/api/x?a=1"))
    );
    let r = send(&s, "GET", "/redirect?to=%2Fapi%2Fx", &[], b"");
    assert_eq!((r.status, r.header("location")), (302, Some("/api/x")));
    assert_eq!(
        send(&s, "GET", "/redirect?to=x&status=200", &[], b"").status,
        400
    );
    assert_eq!(
        send(&s, "GET", "/redirect?to=a%0D%0Ab", &[], b"").status,
        400
    );
    assert_eq!(send(&s, "GET", "/nothing", &[], b"").status, 404);
    assert_eq!(send(&s, "GET", "/apix", &[], b"").status, 404);

    let c = s.counters();
    assert_eq!(
        (c.api_calls, c.api_ok, c.api_rejected, c.api_without_auth),
        (7, 3, 2, 1)
    );
    assert_eq!(c.redirects, 4);
}

#[test]
fn custom_refresh_endpoint() {
    let s = TestServer::start();
    let rt = s.issue_token().refresh_token;
    let body = format!(r#"{{"refresh":"{rt}"}}"#);
    let r = send(
        &s,
        "POST",
        "/custom/refresh",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["ret"], 0);
    assert_eq!(j["data"]["expire"], 3600);
    let at = j["data"]["token"].as_str().unwrap();
    let rt2 = j["data"]["refresh"].as_str().unwrap();
    assert_ne!(rt2, rt);
    assert_eq!(api(&s, "/api/x", at).status, 200);
    // Replay -> reuse detected, family revoked.
    let r = send(&s, "POST", "/custom/refresh", &[], body.as_bytes());
    assert_eq!(
        r.json(),
        serde_json::json!({"ret": 1001, "msg": "refresh token invalid"})
    );
    assert_eq!(api(&s, "/api/x", at).status, 401);
    assert_eq!(
        send(&s, "POST", "/custom/refresh", &[], b"{nope").status,
        400
    );
    s.set_failure(Failure::Unavailable {
        retry_after_secs: 1,
    });
    assert_eq!(
        send(&s, "POST", "/custom/refresh", &[], body.as_bytes()).status,
        503
    );
    let c = s.counters();
    assert_eq!(
        (
            c.token_requests,
            c.refresh_attempts,
            c.refreshes,
            c.invalid_grant,
            c.reuse_detected
        ),
        (4, 3, 1, 1, 1)
    );
}

#[test]
fn date_header_and_skew() {
    let s = TestServer::start();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let date = send(&s, "GET", "/x", &[], b"")
        .header("date")
        .unwrap()
        .to_string();
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
    s.set_date_skew(-86_400 * 365 * 30);
    let skewed = send(&s, "GET", "/x", &[], b"")
        .header("date")
        .unwrap()
        .to_string();
    // 30 years back: year changes by 30 (give or take the leap days).
    let year = |d: &str| d[12..16].parse::<i64>().unwrap();
    let expected_year = 1970 + now / 31_556_952;
    assert!((year(&date) - expected_year).abs() <= 1, "{date}");
    assert!(
        (year(&date) - year(&skewed) - 30).abs() <= 1,
        "{date} vs {skewed}"
    );
}

#[test]
fn keep_alive_and_framing() {
    let s = TestServer::start();
    let at = s.issue_token().access_token;
    let auth = format!("Bearer {at}");
    // Fifty requests on one keep-alive connection, bodies framed by Content-Length.
    let a = agent();
    for i in 0..50 {
        let body = vec![b'b'; i];
        let r = send_on(&a, &s, "PUT", "/api/k", &[("Authorization", &auth)], &body);
        assert_eq!(r.json()["body_len"], i);
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
    assert_eq!(s.counters().connections, 1, "one connection for all fifty");
    // A chunked request body (ureq sends one when it cannot know the length).
    let mut reader = &b"hello world"[..];
    let mut r = a
        .post(format!("{}/api/c", s.url()))
        .header("Authorization", &auth)
        .send(ureq::SendBody::from_reader(&mut reader))
        .unwrap();
    let j: serde_json::Value =
        serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap();
    assert_eq!(j["body_len"], 11);
    // HEAD: the length of the body a GET would get, and no body.
    let head = send_on(
        &a,
        &s,
        "HEAD",
        "/api/big?bytes=1000",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("1000"));
    assert!(head.body.is_empty());
    // Connection: close is answered in kind, and ureq needs a new connection afterwards.
    let r = send_on(
        &a,
        &s,
        "GET",
        "/api/x",
        &[("Authorization", &auth), ("Connection", "close")],
        b"",
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(s.counters().connections, 1);
    assert_eq!(
        send_on(&a, &s, "GET", "/api/x", &[("Authorization", &auth)], b"").status,
        200
    );
    assert_eq!(s.counters().connections, 2);
}

/// What only a raw socket shows: the interim `100 Continue` before the body is sent, pipelined
/// requests answered in order, and the connection closed after `Connection: close` or an HTTP/1.0
/// request.
#[test]
fn interim_response_pipelining_and_closing() {
    let s = TestServer::start();
    let auth = format!("Bearer {}", s.issue_token().access_token);

    // Expect: 100-continue gets its interim response before the client sends the (chunked) body.
    let mut c = connect(&s);
    let head = format!(
        "POST /api/c HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    c.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    c.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    // Then, on the same connection, a GET pipelined behind the body, the last asking to close.
    let rest = format!(
        "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nGET /api/2 HTTP/1.1\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
    );
    c.write_all(rest.as_bytes()).unwrap();
    let got = parse_responses(&read_until_closed(&mut c), &[]);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].json()["body_len"], 11);
    assert_eq!(got[0].header("connection"), Some("keep-alive"));
    assert_eq!(got[1].json()["path"], "/api/2");
    assert_eq!(got[1].header("connection"), Some("close"));

    // Two requests in one write, answered in order (the second HEAD: no body).
    let two = format!(
        "GET /api/1 HTTP/1.1\r\nAuthorization: {auth}\r\n\r\nHEAD /api/2 HTTP/1.1\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
    );
    let got = parse_responses(&exchange(&s, two.as_bytes()), &[false, true]);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].json()["path"], "/api/1");
    assert_eq!((got[1].status, got[1].body.len()), (200, 0));

    // HTTP/1.0 closes by default.
    let got = exchange(
        &s,
        format!("GET /api/x HTTP/1.0\r\nAuthorization: {auth}\r\n\r\n").as_bytes(),
    );
    let got = parse_responses(&got, &[]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].status, 200);
    assert_eq!(got[0].header("connection"), Some("close"));
    assert_eq!(s.counters().api_ok, 5);
}

#[test]
fn malformed_requests_get_400_and_server_survives() {
    let s = TestServer::start();
    let cases: &[&[u8]] = &[
        b"GARBAGE\r\n\r\n",
        b"GET /x HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\n bad fold\r\n\r\n",
        b"POST /api HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST /api HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET \xff\xfe HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ];
    // Each is answered and then closed (`exchange` reads until the server closes).
    for raw in cases {
        let got = parse_responses(&exchange(&s, raw), &[]);
        let what = String::from_utf8_lossy(raw);
        assert_eq!(got.len(), 1, "{what:?}");
        assert_eq!(got[0].status, 400, "{what:?}");
        assert_eq!(got[0].header("connection"), Some("close"), "{what:?}");
        assert_eq!(got[0].json()["error"], "invalid_request", "{what:?}");
    }
    // Too-large body -> 413.
    let got = exchange(&s, b"POST /api HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n");
    assert_eq!(parse_responses(&got, &[])[0].status, 413);
    // Half a request, then hang up.
    let mut t = connect(&s);
    t.write_all(b"POST /api HTTP/1.1\r\nContent-Length: 10\r\n\r\nab")
        .unwrap();
    drop(t);
    // Still healthy.
    let at = s.issue_token().access_token;
    assert_eq!(api(&s, "/api/x", &at).status, 200);
    assert_eq!(
        s.counters().api_calls,
        1,
        "no malformed request reached the API"
    );
}

#[test]
fn many_threads_keep_alive() {
    const THREADS: usize = 64;
    const PER_THREAD: usize = 100;
    let s = Arc::new(TestServer::builder().workers(4).start());
    let auth = format!("Bearer {}", s.issue_token().access_token);
    let ok = on_threads(THREADS, {
        let s = Arc::clone(&s);
        move |_| {
            let a = agent();
            (0..PER_THREAD)
                .filter(|_| {
                    send_on(&a, &s, "GET", "/api/load", &[("Authorization", &auth)], b"").status
                        == 200
                })
                .count()
        }
    });
    assert_eq!(ok, [PER_THREAD; THREADS]);
    let c = s.counters();
    assert_eq!(c.api_ok, (THREADS * PER_THREAD) as u64);
    assert_eq!(c.api_calls, (THREADS * PER_THREAD) as u64);
    assert_eq!(
        c.connections, THREADS as u64,
        "one keep-alive connection per thread"
    );
}

#[test]
fn drop_is_bounded_and_closes_keep_alive_connections() {
    let s = TestServer::builder()
        .token_latency(Duration::from_secs(60))
        .start();
    let rt = s.issue_token().refresh_token;
    let at = s.issue_token().access_token;
    // A keep-alive connection, idle in ureq's pool after one request...
    let pooled = agent();
    let auth = format!("Bearer {at}");
    assert_eq!(
        send_on(
            &pooled,
            &s,
            "GET",
            "/api/x",
            &[("Authorization", &auth)],
            b""
        )
        .status,
        200
    );
    // ...a connection that has not sent anything yet...
    let mut silent = connect(&s);
    // ...and a request stuck in a 60 s token request.
    let (done_tx, done) = std::sync::mpsc::channel();
    let token_url = s.token_url();
    thread::spawn(move || {
        let outcome = agent()
            .post(token_url)
            .header(FORM.0, FORM.1)
            .send(refresh_form(&rt))
            .map(|r| r.status().as_u16());
        let _ = done_tx.send(outcome);
    });
    eventually("three connections, one token request in flight", || {
        s.counters().connections == 3 && s.token_requests_in_flight() == 1
    });
    let addr = s.addr();
    let t = Instant::now();
    drop(s);
    // Every connection thread ended (the drop waits up to 3 s for them): the pooled connection was
    // closed under the thread waiting on it.
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        t.elapsed()
    );
    assert!(
        read_until_closed(&mut silent).is_empty(),
        "closed without an answer"
    );
    // The stuck request ends (an error or an answer) instead of hanging for 60 s.
    let _answered_or_not = done
        .recv_timeout(Duration::from_secs(5))
        .expect("the stuck token request still hangs");
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after drop"
    );
}

#[test]
fn closed_port_refuses() {
    let url = closed_port_url();
    let addr = url.strip_prefix("http://").unwrap();
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn many_servers_start_and_stop_quickly() {
    let t = Instant::now();
    for _ in 0..20 {
        let s = TestServer::start();
        let at = s.issue_token().access_token;
        assert_eq!(api(&s, "/api/x", &at).status, 200);
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}
