//! The token goes to the API origin only, never across origins (also not by redirect); secrets stay
//! out of Debug and Display; the refresh never recurses through the client (behaviours 8 and 10).

use std::time::Duration;

use tokengate::{Client, Error, OAuth2};
use tokengate_testserver::TestServer;

use crate::support::*;

fn echo_auth(client: &Client, url: &str) -> String {
    let mut resp = client.get(url).call().unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    let v: serde_json::Value = resp.body_mut().read_json().unwrap();
    v["authorization"].as_str().unwrap().to_owned()
}

#[test]
fn token_is_sent_to_the_api_origin_only() {
    let api = TestServer::start();
    let other = TestServer::start(); // same host, other port: another origin
    let token = login(&api);
    let secret = token.access_token().secret().to_owned();
    let client = builder(&api, token).build().unwrap();
    assert_eq!(echo_auth(&client, "/echo-auth"), format!("Bearer {secret}"));
    assert_eq!(
        echo_auth(&client, &format!("{}/api/echo-auth", other.url())),
        ""
    );
    assert_eq!(other.counters().api_without_auth, 1);
}

#[test]
fn redirects_keep_the_token_on_the_origin_and_drop_it_elsewhere() {
    let api = TestServer::start();
    let other = TestServer::start();
    let token = login(&api);
    let secret = token.access_token().secret().to_owned();
    let client = builder(&api, token).build().unwrap();
    let enc = |u: String| u.replace(':', "%3A").replace('/', "%2F");

    let same = format!(
        "{}/redirect?to={}",
        api.url(),
        enc(format!("{}/api/echo-auth", api.url()))
    );
    assert_eq!(echo_auth(&client, &same), format!("Bearer {secret}"));

    for status in [301, 302, 303, 307, 308] {
        let cross = format!(
            "{}/redirect?status={status}&to={}",
            api.url(),
            enc(format!("{}/api/echo-auth", other.url()))
        );
        assert_eq!(echo_auth(&client, &cross), "", "status {status}");
    }
    assert_eq!(other.counters().api_without_auth, 5);
}

#[test]
fn too_many_redirects_is_an_error_not_a_loop() {
    let api = TestServer::start();
    let client = builder(&api, login(&api)).max_redirects(3).build().unwrap();
    // Five nested redirects, each hop's target percent-encoded into the next.
    let mut url = format!("{}/api/echo-auth", api.url());
    for _ in 0..5 {
        let enc: String = url.bytes().map(|b| format!("%{b:02X}")).collect();
        url = format!("{}/redirect?to={enc}", api.url());
    }
    let e = client.get(&url).call().unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e}");
    assert_eq!(
        api.counters().redirects,
        4,
        "stopped after the allowed hops"
    );
    let client = builder(&api, login(&api)).build().unwrap();
    assert!(
        echo_auth(&client, &url).starts_with("Bearer "),
        "same-origin hops keep the token"
    );
}

#[test]
fn the_refresh_never_goes_through_the_token_attaching_path() {
    // The token endpoint lives on the API's own origin: no special-casing of its URL is needed.
    let server = TestServer::start();
    let client = Client::builder(server.url())
        .token(expired_login(&server))
        .refresher(oauth(&server))
        .build()
        .unwrap();
    assert_eq!(get_status(&client, "/api/x"), 200);
    let c = server.counters();
    assert_eq!((c.token_requests, c.refreshes, c.api_calls), (1, 1, 1));
    let req = server.last_token_request().unwrap();
    assert_eq!(req.grant_type, "refresh_token");
    assert_eq!(
        req.basic_auth,
        Some(("demo-client".to_owned(), "demo-secret".to_owned())),
        "client authentication, not the bearer token"
    );
}

#[test]
fn secrets_never_show_in_debug_or_display() {
    let server = TestServer::start();
    let token = login(&server);
    let access = token.access_token().secret().to_owned();
    let refresh = token.refresh_token().unwrap().secret().to_owned();
    let client = builder(&server, token).build().unwrap();
    assert_eq!(get_status(&client, "/x"), 200);
    server.set_failure(tokengate_testserver::Failure::InvalidGrant);
    server.revoke_all();
    let err = client.get("/x").call().unwrap_err();
    let texts = [
        format!("{client:?}"),
        format!("{:?}", client.gate()),
        format!("{:?}", client.token()),
        format!("{err}"),
        format!("{err:?}"),
        format!("{:?}", oauth(&server)),
    ];
    for t in &texts {
        assert!(!t.contains(&access), "access token leaked: {t}");
        assert!(!t.contains(&refresh), "refresh token leaked: {t}");
        assert!(!t.contains("demo-secret"), "client secret leaked: {t}");
    }
}

#[test]
fn plain_http_token_endpoints_are_refused_off_loopback() {
    let r = Client::builder("https://api.example.com")
        .refresher(OAuth2::refresh_token("http://auth.example.com/token"))
        .build();
    assert!(matches!(r, Err(Error::Config(_))));
    let r = Client::builder("https://api.example.com")
        .refresher(OAuth2::refresh_token("http://auth.example.com/token").allow_insecure_http(true))
        .build();
    assert!(r.is_ok());
}

#[test]
fn api_request_timeouts_are_explicit() {
    // A request to a port that accepts nothing fails fast with a transport error, not a hang.
    let client = Client::builder(tokengate_testserver::closed_port_url())
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let e = client.get("/x").call().unwrap_err();
    assert!(e.is_login_required(), "no token and no refresher: {e}");
    let client = Client::builder(tokengate_testserver::closed_port_url())
        .token(tokengate::Token::new("t"))
        .build()
        .unwrap();
    assert!(matches!(client.get("/x").call(), Err(Error::Transport(_))));
}

#[test]
fn the_token_endpoint_call_follows_no_redirects() {
    // A token URL that redirects (here to the real endpoint) is not followed: refresh tokens and client
    // secrets are never re-sent to wherever a Location header points.
    let server = TestServer::start();
    let redirecting = format!(
        "{}/redirect?status=307&to={}",
        server.url(),
        server.token_url().replace(':', "%3A").replace('/', "%2F")
    );
    let client = Client::builder(format!("{}/api", server.url()))
        .token(expired_login(&server))
        .refresher(OAuth2::refresh_token(redirecting).client_id("demo-public"))
        .build()
        .unwrap();
    let e = client.get("/x").call().unwrap_err();
    let re = e.refresh_error().unwrap();
    assert_eq!(re.status(), Some(307), "{e}");
    let c = server.counters();
    assert_eq!((c.redirects, c.token_requests, c.api_calls), (1, 0, 0));
}

/// The secrets a refresh knows, in every form an echoing token endpoint may send them back.
fn echoed_secrets(token: &tokengate::Token) -> Vec<String> {
    let refresh = token.refresh_token().unwrap().secret().to_owned();
    let b64 = |s: &str| {
        use std::process::Command;
        let out = Command::new("base64")
            .arg("-w0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(s.as_bytes())?;
                child.wait_with_output()
            })
            .expect("base64 (coreutils)");
        String::from_utf8(out.stdout).unwrap()
    };
    vec![
        refresh,
        token.access_token().secret().to_owned(),
        "demo-secret".to_owned(),
        "demo-client:demo-secret".to_owned(),
        b64("demo-client:demo-secret"),
    ]
}

fn assert_none_in(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{what} holds {s}: {text}");
    }
}

#[test]
fn issue_12_a_token_endpoint_echoing_secrets_leaves_none_in_errors_or_events() {
    use tokengate::{Event, Refresh};
    use tokengate_testserver::Failure;

    let server = TestServer::start();
    let token = expired_login(&server);
    let secrets = echoed_secrets(&token);
    let echo = secrets.join(" | ");
    server.set_failure(Failure::Answer {
        status: 400,
        headers: vec![],
        body: serde_json::json!({
            "error": "invalid_request",
            "error_description": format!("bad request: {echo}"),
            "error_uri": format!("https://auth.example/e?rt={}", secrets[0]),
        })
        .to_string(),
    });
    let client = builder(&server, token.clone()).build().unwrap();
    let events = client.events();
    let e = client.get("/data").call().map(|_| ()).unwrap_err();
    assert!(e.is_configuration(), "{e}");
    let r = e.refresh_error().unwrap();
    let answer = r.oauth_error().unwrap();
    assert_eq!(answer.error(), "invalid_request");
    let kept = format!(
        "{e} {e:?} {r} {r:?} {:?} {:?} {:?}",
        answer.error_description(),
        answer.error_uri(),
        r.body_excerpt()
    );
    assert_none_in("the error", &kept, &secrets);
    assert!(
        answer
            .error_description()
            .unwrap()
            .starts_with("bad request: [redacted] | "),
        "{kept}"
    );
    let event = events.recv_timeout(PATIENCE).unwrap();
    assert!(matches!(event, Event::RefreshFailed { .. }), "{event:?}");
    assert_none_in("the event", &format!("{event:?}"), &secrets);
    assert_eq!(server.counters().token_requests, 1);

    // A non-JSON error page echoing them keeps an excerpt, scrubbed.
    server.set_failure(Failure::Answer {
        status: 404,
        headers: vec![],
        body: format!("<html>not found: {echo}</html>"),
    });
    let r = oauth(&server).refresh(Some(&token)).unwrap_err();
    let excerpt = r.body_excerpt().expect("an error page is kept");
    assert!(
        excerpt.starts_with("<html>not found: [redacted]"),
        "{excerpt}"
    );
    assert_none_in("the excerpt", &format!("{excerpt} {r} {r:?}"), &secrets);

    // A 2xx that is not a usable token response may hold the new tokens: nothing of it is kept.
    for body in [
        "access_token=NEW-ACCESS-1&token_type=Bearer&refresh_token=NEW-REFRESH-1",
        r#"{"access_token":"NEW-ACCESS-2","token_type":"Bearer","refresh_token":"NEW-REFR"#,
    ] {
        server.set_failure(Failure::Answer {
            status: 200,
            headers: vec![],
            body: body.to_owned(),
        });
        let r = oauth(&server).refresh(Some(&token)).unwrap_err();
        assert!(r.is_transient(), "{r}");
        assert_eq!(r.body_excerpt(), None, "{body}");
        assert!(!format!("{r} {r:?}").contains("NEW-"), "{r:?}");
    }
    assert_eq!(server.counters().token_requests, 4);
}
