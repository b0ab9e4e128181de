//! The login endpoints of the test server (metadata, device authorization, the authorization
//! endpoint with PKCE, revocation), with ureq as the client, and the program's stdin commands for
//! them. tokengate's own login flows are tested against them in tokengate's integration tests.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::Value;
use tokengate_testserver::{RedirectFault, TestServer};

/// The S256 challenge of `verifier` (RFC 7636 §4.2), computed here with ring as the server does
/// (its RFC 7636 Appendix B vector is checked below).
fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring_sha256(verifier.as_bytes()))
}

fn ring_sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// A form POST to the token endpoint with no client authentication but the form's `client_id`
/// (a public client).
fn public_token(server: &TestServer, form: &str) -> Resp {
    send(server, "POST", "/oauth/token", &[FORM], form.as_bytes())
}

/// The query parameters of a `Location`.
fn query_of(location: &str) -> Vec<(String, String)> {
    let query = location.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Authorizes the public client with `verifier`'s challenge; returns the redirect's parameters.
fn authorize(server: &TestServer, verifier: &str) -> Vec<(String, String)> {
    let target = format!(
        "/oauth/authorize?response_type=code&client_id=demo-public&state=st-1\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&code_challenge={}\
         &code_challenge_method=S256&scope=read",
        challenge(verifier)
    );
    let r = send(server, "GET", &target, &[], b"");
    assert_eq!(r.status, 302, "{}", r.text());
    let location = r.header("location").unwrap();
    assert!(
        location.starts_with("http://127.0.0.1:9/callback?"),
        "{location}"
    );
    query_of(location)
}

#[test]
fn pkce_s256_matches_rfc7636() {
    assert_eq!(
        challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[test]
fn metadata_documents_name_every_endpoint() {
    let s = TestServer::start();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let doc = send(&s, "GET", path, &[], b"").json();
        assert_eq!(doc["issuer"], s.url());
        assert_eq!(doc["token_endpoint"], s.token_url());
        assert_eq!(doc["authorization_endpoint"], s.authorization_url());
        assert_eq!(
            doc["device_authorization_endpoint"],
            s.device_authorization_url()
        );
        assert_eq!(doc["revocation_endpoint"], s.revocation_url());
        assert_eq!(doc["code_challenge_methods_supported"][0], "S256");
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    }
    s.set_metadata_documents(false, true);
    assert_eq!(
        send(
            &s,
            "GET",
            "/.well-known/oauth-authorization-server",
            &[],
            b""
        )
        .status,
        404
    );
    assert_eq!(s.counters().metadata_requests, 3);
}

#[test]
fn authorization_code_with_pkce_is_exchanged_once_and_a_wrong_verifier_refused() {
    let s = TestServer::start();
    let verifier = "a-verifier-of-at-least-forty-three-characters-xyz";
    let redirect = authorize(&s, verifier);
    assert_eq!(param(&redirect, "state"), Some("st-1"));
    assert_eq!(param(&redirect, "iss"), Some(s.url().as_str()));
    let code = param(&redirect, "code").unwrap().to_owned();
    let exchange = |code: &str, verifier: &str| {
        public_token(
            &s,
            &format!(
                "grant_type=authorization_code&client_id=demo-public&code={code}\
                 &redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&code_verifier={verifier}"
            ),
        )
    };
    let r = exchange(&code, verifier);
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["scope"], "read");
    assert_eq!(
        api(&s, "/api/me", body["access_token"].as_str().unwrap()).status,
        200
    );
    assert_eq!(
        exchange(&code, verifier).json()["error"],
        "invalid_grant",
        "used once"
    );

    let code = param(&authorize(&s, verifier), "code").unwrap().to_owned();
    let r = exchange(&code, "another-verifier-of-forty-three-characters-xyz");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_grant");
    let c = s.counters();
    assert_eq!(
        (c.authorizations, c.code_exchanges, c.pkce_failures),
        (2, 1, 1),
        "{c:?}"
    );

    // Faults, and requests the endpoint refuses to redirect at all.
    s.set_redirect_fault(RedirectFault::WrongState);
    assert_eq!(
        param(&authorize(&s, verifier), "state"),
        Some("st-1-not-yours")
    );
    s.set_redirect_fault(RedirectFault::NoIss);
    assert_eq!(param(&authorize(&s, verifier), "iss"), None);
    s.set_redirect_fault(RedirectFault::Error("access_denied".into()));
    let redirect = authorize(&s, verifier);
    assert_eq!(param(&redirect, "error"), Some("access_denied"));
    assert_eq!(param(&redirect, "code"), None);
    for target in [
        "/oauth/authorize?response_type=code&client_id=nobody&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb",
        "/oauth/authorize?response_type=code&client_id=demo-public&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
    ] {
        assert_eq!(send(&s, "GET", target, &[], b"").status, 400, "{target}");
    }
}

#[test]
fn device_codes_are_polled_approved_and_used_once() {
    let s = TestServer::start();
    let r = send(
        &s,
        "POST",
        "/oauth/device_authorization",
        &[FORM],
        b"client_id=demo-public&scope=read",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let auth = r.json();
    assert_eq!(auth["interval"], 1);
    let (device, user) = (
        auth["device_code"].as_str().unwrap(),
        auth["user_code"].as_str().unwrap(),
    );
    let poll = || {
        public_token(
            &s,
            &format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code\
                 &client_id=demo-public&device_code={device}"
            ),
        )
    };
    assert_eq!(poll().json()["error"], "authorization_pending");
    assert!(s.approve_device(user));
    assert!(!s.approve_device(user), "no longer pending");
    let r = poll();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["scope"], "read");
    assert_eq!(
        poll().json()["error"],
        "invalid_grant",
        "a device code works once"
    );
    let c = s.counters();
    assert_eq!((c.device_polls, c.device_grants), (3, 1));
    assert_eq!(c.device_polls_too_fast, 2, "these polls did not wait");
    assert_eq!(s.device_polls(user).len(), 3);
}

#[test]
fn revocation_takes_the_grant_and_needs_the_client() {
    let s = TestServer::start();
    let (access, refresh) = login(&s);
    let revoke = |form: &str, auth: &[(&str, &str)]| {
        let mut headers = vec![FORM];
        headers.extend_from_slice(auth);
        send(&s, "POST", "/oauth/revoke", &headers, form.as_bytes())
    };
    let basic = basic("demo-client", "demo-secret");
    let auth = [("Authorization", basic.as_str())];
    assert_eq!(revoke(&format!("token={refresh}"), &[]).status, 401);
    s.set_revocation_unavailable(true);
    assert_eq!(revoke(&format!("token={refresh}"), &auth).status, 503);
    s.set_revocation_unavailable(false);
    let r = revoke(
        &format!("token={refresh}&token_type_hint=refresh_token"),
        &auth,
    );
    assert_eq!(r.status, 200);
    assert!(!s.is_refresh_token_valid(&refresh));
    assert!(!s.is_access_token_valid(&access));
    assert_eq!(refresh_form_status(&s, &refresh), 400);
    assert_eq!(revoke("token=unknown", &auth).status, 200, "RFC 7009 §2.2");
    assert_eq!(s.counters().revocations, 1);
}

fn refresh_form_status(s: &TestServer, rt: &str) -> u16 {
    refresh(s, rt).status
}

#[test]
fn the_program_approves_device_logins_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokengate-testserver"))
        .args(["--device-interval", "50ms"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the test server program");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = || {
        let mut l = String::new();
        stdout.read_line(&mut l).unwrap();
        serde_json::from_str::<Value>(&l).unwrap_or_else(|e| panic!("{e}: {l:?}"))
    };
    let hello = line();
    let url = hello["url"].as_str().unwrap().to_owned();
    assert_eq!(hello["issuer"], url);
    assert_eq!(
        hello["device_authorization_url"],
        format!("{url}/oauth/device_authorization")
    );
    let agent = agent();
    let mut resp = agent
        .post(hello["device_authorization_url"].as_str().unwrap())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send("client_id=demo-public")
        .unwrap();
    let auth: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(auth["interval"], 0.05);
    let user = auth["user_code"].as_str().unwrap();
    let mut say = |command: &str| {
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        line()
    };
    assert_eq!(say("approve NOPE-NOPE")["ok"], false);
    assert_eq!(say(&format!("approve {user}"))["ok"], true);
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=demo-public\
         &device_code={}",
        auth["device_code"].as_str().unwrap()
    );
    let mut resp = agent
        .post(hello["token_url"].as_str().unwrap())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(form)
        .unwrap();
    assert_eq!(resp.status(), 200);
    let token: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert!(token["refresh_token"].is_string());
    let counters = say("counters");
    assert_eq!(counters["counters"]["device_grants"], 1);
    assert_eq!(
        say(&format!("device-polls {user}"))["polls_ms"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(say("redirect-fault wrong-iss")["ok"], true);
    assert_eq!(say("redirect-fault sideways")["ok"], false);
    let refresh = token["refresh_token"].as_str().unwrap();
    assert_eq!(say(&format!("refresh-valid {refresh}"))["valid"], true);
    assert_eq!(say("quit")["ok"], true);
    let until = std::time::Instant::now() + tokengate_testserver::support::PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "the program did not quit"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
