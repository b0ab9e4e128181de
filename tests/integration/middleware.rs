//! `TokenMiddleware` on a plain `ureq::Agent` (issue 4, item 4): header for the gate's origin only,
//! refresh through the shared gate, rejection returned (not replayed) and the next request fresh.

use tokengate::ureq::Agent;
use tokengate::{Challenge, Gate, Token, TokenMiddleware};
use tokengate_testserver::{Failure, TestServer};

use crate::support::*;

fn gate(server: &TestServer, token: Token) -> Gate {
    Gate::builder()
        .token(token)
        .refresher(oauth(server))
        .refresh_timeout(PATIENCE)
        .build()
        .unwrap()
}

fn agent(server: &TestServer, gate: Gate) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .middleware(TokenMiddleware::new(gate, &server.url()).unwrap())
        .build()
        .into()
}

fn echo_auth(agent: &Agent, url: &str) -> String {
    let mut resp = agent.get(url).call().unwrap();
    let v: serde_json::Value = resp.body_mut().read_json().unwrap();
    v["authorization"].as_str().unwrap().to_owned()
}

#[test]
fn header_goes_to_the_gate_origin_only() {
    let server = TestServer::start();
    let other = TestServer::start();
    let token = login(&server);
    let bearer = format!("Bearer {}", token.access_token().secret());
    let agent = agent(&server, gate(&server, token));
    assert_eq!(
        echo_auth(&agent, &format!("{}/api/echo-auth", server.url())),
        bearer
    );
    assert_eq!(
        echo_auth(&agent, &format!("{}/api/echo-auth", other.url())),
        ""
    );
}

#[test]
fn refreshes_ahead_of_expiry_once_for_many_threads() {
    let server = TestServer::builder()
        .token_latency(std::time::Duration::from_millis(100))
        .start();
    let agent = agent(&server, gate(&server, expired_login(&server)));
    let url = format!("{}/api/x", server.url());
    let statuses = on_threads(16, move |_| {
        agent.get(&url).call().unwrap().status().as_u16()
    });
    assert!(statuses.iter().all(|&s| s == 200));
    let c = server.counters();
    assert_eq!(
        (c.refresh_attempts, c.api_calls, c.api_rejected),
        (1, 16, 0)
    );
}

#[test]
fn a_rejection_is_returned_and_the_next_request_is_fresh() {
    let server = TestServer::start();
    let gate = gate(&server, login(&server));
    let agent = agent(&server, gate.clone());
    let url = format!("{}/api/x", server.url());
    assert_eq!(agent.get(&url).call().unwrap().status(), 200);
    server.revoke_all();
    let resp = agent.get(&url).call().unwrap();
    assert_eq!(resp.status(), 401, "not replayed inside the chain");
    assert_eq!(
        resp.extensions().get::<Challenge>().unwrap().error(),
        Some("invalid_token")
    );
    let c = server.counters();
    assert_eq!((c.api_calls, c.refresh_attempts), (2, 0));
    assert_eq!(agent.get(&url).call().unwrap().status(), 200);
    let c = server.counters();
    assert_eq!((c.api_calls, c.refresh_attempts), (3, 1));
    assert_eq!(gate.stats().refreshes, 1);
}

#[test]
fn gate_errors_come_back_inside_the_ureq_error() {
    let server = TestServer::start();
    server.set_failure(Failure::InvalidGrant);
    let agent = agent(&server, gate(&server, expired_login(&server)));
    let err = agent
        .get(format!("{}/api/x", server.url()))
        .call()
        .unwrap_err();
    let inner = TokenMiddleware::error_of(&err).expect("a tokengate error");
    assert!(inner.is_login_required(), "{inner}");
    assert_eq!(server.counters().api_calls, 0, "the request was not sent");
}

#[test]
fn a_body_signalled_rejection_is_judged_by_the_same_rule_as_the_clients() {
    let server = TestServer::builder().body_mode(true).start();
    let gate = gate(&server, login(&server));
    let middleware = TokenMiddleware::new(gate.clone(), &server.url())
        .unwrap()
        .reject_when(|_parts, body| {
            serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v["ret"] == 401)
        });
    let agent: Agent = Agent::config_builder()
        .http_status_as_error(false)
        .middleware(middleware)
        .build()
        .into();
    let url = format!("{}/api/x", server.url());
    server.revoke_all();
    let mut resp = agent.get(&url).call().unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.body_mut().read_json().unwrap();
    assert_eq!(
        body["ret"], 401,
        "the caller gets the whole body it was judged by"
    );
    assert_eq!(server.counters().refresh_attempts, 0, "not replayed");
    let statuses = on_threads(16, {
        let agent = agent.clone();
        let url = url.clone();
        move |_| {
            let mut r = agent.get(&url).call().unwrap();
            let v: serde_json::Value = r.body_mut().read_json().unwrap();
            v["ok"] == true
        }
    });
    assert!(statuses.iter().all(|&ok| ok), "{statuses:?}");
    let c = server.counters();
    assert_eq!((c.refresh_attempts, c.api_calls), (1, 17));
    assert_eq!(gate.stats().refreshes, 1);
}
