//! The built-in OAuth2 grants and custom closure refreshers against the real token endpoint
//! (behaviour 9), and the request-building API.

use std::time::Duration;

use tokengate::{Client, ClientAuth, OAuth2, RefreshError, Token};
use tokengate_testserver::TestServer;

use crate::support::*;

#[test]
fn refresh_token_grant_with_basic_auth_scope_and_rotation() {
    let server = TestServer::start();
    let token = expired_login(&server);
    let first_refresh = token.refresh_token().unwrap().secret().to_owned();
    let client = Client::builder(format!("{}/api", server.url()))
        .token(token)
        .refresher(oauth(&server).scope("read write"))
        .build()
        .unwrap();
    assert_eq!(get_status(&client, "/x"), 200);
    let req = server.last_token_request().unwrap();
    assert_eq!(
        req.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let form = |k: &str| {
        req.form
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(form("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(
        form("refresh_token").as_deref(),
        Some(first_refresh.as_str())
    );
    assert_eq!(form("scope").as_deref(), Some("read write"));
    assert_eq!(
        form("client_secret"),
        None,
        "secret went by Basic, not the body"
    );
    // The server rotated the refresh token: the client holds the new one.
    let rotated = client.token().unwrap();
    assert_ne!(rotated.refresh_token().unwrap().secret(), first_refresh);
    assert_eq!(rotated.scope(), Some("read write"));
    // The rotated token works for the next refresh; the old one would be a reuse.
    server.revoke_all();
    assert_eq!(get_status(&client, "/x"), 200);
    let c = server.counters();
    assert_eq!((c.refreshes, c.invalid_grant, c.reuse_detected), (2, 0, 0));
}

#[test]
fn client_auth_in_the_body_and_public_clients() {
    let server = TestServer::start();
    let client = Client::builder(format!("{}/api", server.url()))
        .token(expired_login(&server))
        .refresher(oauth(&server).client_auth(ClientAuth::RequestBody))
        .build()
        .unwrap();
    assert_eq!(get_status(&client, "/x"), 200);
    let req = server.last_token_request().unwrap();
    assert_eq!(req.basic_auth, None);
    assert!(
        req.form
            .contains(&("client_secret".to_owned(), "demo-secret".to_owned()))
    );

    let public = Client::builder(format!("{}/api", server.url()))
        .token(expired_login(&server))
        .refresher(OAuth2::refresh_token(server.token_url()).client_id("demo-public"))
        .build()
        .unwrap();
    assert_eq!(get_status(&public, "/x"), 200);
    let req = server.last_token_request().unwrap();
    assert!(
        req.form
            .contains(&("client_id".to_owned(), "demo-public".to_owned()))
    );
}

#[test]
fn non_rotating_servers_keep_the_old_refresh_token() {
    let server = TestServer::builder().rotate_refresh_tokens(false).start();
    let token = expired_login(&server);
    let refresh = token.refresh_token().unwrap().secret().to_owned();
    let client = builder(&server, token).build().unwrap();
    assert_eq!(get_status(&client, "/x"), 200);
    assert_eq!(
        client.token().unwrap().refresh_token().unwrap().secret(),
        refresh
    );
}

#[test]
fn client_credentials_starts_from_no_token() {
    let server = TestServer::start();
    let client = Client::builder(format!("{}/api", server.url()))
        .refresher(
            OAuth2::client_credentials(server.token_url())
                .client_id("demo-client")
                .client_secret("demo-secret"),
        )
        .build()
        .unwrap();
    assert!(client.token().is_none());
    let statuses = on_threads(16, {
        let client = client.clone();
        move |_| get_status(&client, "/x")
    });
    assert!(statuses.iter().all(|&s| s == 200));
    let c = server.counters();
    assert_eq!(c.client_credentials, 1);
    assert_eq!(c.token_requests, 1);
}

#[test]
fn a_closure_refresher_for_a_non_standard_api() {
    // The server answers {"ret":0,"data":{"token":..,"expire":..,"refresh":..}}.
    let server = TestServer::start();
    let url = format!("{}/custom/refresh", server.url());
    let agent = tokengate::ureq::Agent::new_with_defaults();
    let refresher = move |current: &Token| -> Result<Token, RefreshError> {
        let refresh = current
            .refresh_token()
            .ok_or_else(|| RefreshError::permanent("no refresh token"))?;
        let mut resp = agent
            .post(&url)
            .send_json(serde_json::json!({ "refresh": refresh.secret() }))
            .map_err(|e| RefreshError::transient(format!("token API unreachable: {e}")))?;
        let v: serde_json::Value = resp
            .body_mut()
            .read_json()
            .map_err(|_| RefreshError::transient("token API answered garbage"))?;
        if v["ret"] != 0 {
            return Err(RefreshError::permanent(
                "token API refused the refresh token",
            ));
        }
        let data = &v["data"];
        let token = data["token"]
            .as_str()
            .ok_or_else(|| RefreshError::transient("no token"))?;
        let expire = data["expire"].as_u64().unwrap_or(3600);
        let mut t = Token::new(token).with_expires_in(Duration::from_secs(expire));
        if let Some(r) = data["refresh"].as_str() {
            t = t.with_refresh_token(r);
        }
        Ok(t)
    };
    let client = Client::builder(format!("{}/api", server.url()))
        .token(expired_login(&server))
        .refresher(refresher)
        .build()
        .unwrap();
    assert_eq!(get_status(&client, "/x"), 200);
    server.revoke_all();
    assert_eq!(get_status(&client, "/x"), 200);
    let c = server.counters();
    assert_eq!((c.refreshes, c.invalid_grant), (2, 0));

    // A refused refresh token puts the client in the login-required state.
    server.revoke_refresh_tokens();
    server.revoke_all();
    assert!(client.get("/x").call().unwrap_err().is_login_required());
}

#[test]
fn request_building_methods_query_headers_and_bodies() {
    let server = TestServer::start();
    let client = builder(&server, login(&server)).build().unwrap();
    let read = |r: tokengate::http::Response<tokengate::ureq::Body>| -> serde_json::Value {
        let mut r = r;
        assert_eq!(r.status(), 200);
        r.body_mut().read_json().unwrap()
    };
    let v = read(
        client
            .get("/q")
            .query("a b", "c&d")
            .query("x", "1")
            .call()
            .unwrap(),
    );
    assert_eq!(v["path"], "/api/q?a+b=c%26d&x=1");
    let v = read(client.post("/p").send("hello").unwrap());
    assert_eq!(
        (v["method"].as_str(), v["body_len"].as_u64()),
        (Some("POST"), Some(5))
    );
    let v = read(
        client
            .put("/p")
            .send_json(&serde_json::json!({"k": 1}))
            .unwrap(),
    );
    assert_eq!(
        (v["method"].as_str(), v["body_len"].as_u64()),
        (Some("PUT"), Some(7))
    );
    let v = read(
        client
            .patch("/p")
            .send_form([("a", "1"), ("b", "2 3")])
            .unwrap(),
    );
    assert_eq!(
        (v["method"].as_str(), v["body_len"].as_u64()),
        (Some("PATCH"), Some(9))
    );
    let v = read(client.delete("/p").header("X-Trace", "abc").call().unwrap());
    assert_eq!(v["method"], "DELETE");
    let v = read(
        client
            .request(tokengate::http::Method::OPTIONS, "/o")
            .call()
            .unwrap(),
    );
    assert_eq!(v["method"], "OPTIONS");
    assert!(matches!(
        client.get("/x").header("bad header", "v").call(),
        Err(tokengate::Error::InvalidHeader(_))
    ));
}

#[test]
fn replayed_requests_carry_their_body_again() {
    let server = TestServer::start();
    let client = builder(&server, login(&server)).build().unwrap();
    server.revoke_all();
    let mut resp = client.post("/upload").send(vec![7u8; 1000]).unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.body_mut().read_json().unwrap();
    assert_eq!(v["body_len"], 1000);
    assert_eq!(client.stats().replays, 1);
}
