//! How the test-server tests talk to the server.
//!
//! Everything a client can send goes through ureq, a maintained HTTP client, so the server is tested
//! with what real clients send. A raw socket is used only for what no client library sends or lets
//! us see: malformed requests, pipelined requests, the `100 Continue` interim response, and the
//! moment the server closes a connection. What comes back on a raw socket is parsed with httparse.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;

use base64::Engine as _;
use serde_json::Value;
use tokengate_testserver::TestServer;
use tokengate_testserver::support::PATIENCE;
use ureq::Agent;
use ureq::http::{HeaderMap, Method, Request};

/// One response, body read in full.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| {
            v.to_str()
                .unwrap_or_else(|_| panic!("{name} is not visible ASCII: {v:?}"))
        })
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A ureq agent that hands back every status as a response, follows no redirect, and gives up
/// after PATIENCE. Each agent keeps its own keep-alive connections.
pub fn agent() -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(PATIENCE))
        .build()
        .new_agent()
}

/// Sends a request on `agent` (so on one of its keep-alive connections) and reads the whole response.
/// A GET or HEAD with an empty `body` is sent without a body.
pub fn send_on(
    agent: &Agent,
    server: &TestServer,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let method = Method::from_bytes(method.as_bytes()).expect("a valid method");
    let mut builder = Request::builder()
        .method(method.clone())
        .uri(format!("{}{target}", server.url()));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let sent = if body.is_empty() && (method == Method::GET || method == Method::HEAD) {
        agent.run(builder.body(()).expect("a valid request"))
    } else {
        agent.run(builder.body(body.to_vec()).expect("a valid request"))
    };
    let mut resp = sent.unwrap_or_else(|e| panic!("{method} {target}: {e}"));
    let body = resp
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("{method} {target}: reading the body: {e}"));
    Resp {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body,
    }
}

/// One request on a new connection (a new agent).
pub fn send(
    server: &TestServer,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    send_on(&agent(), server, method, target, headers, body)
}

/// `Authorization: Basic` value for id/secret (form-urlencoding is the caller's business).
pub fn basic(id: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    format!("Basic {encoded}")
}

pub const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// POST a form to the token endpoint with demo-client body credentials.
pub fn token(server: &TestServer, form: &str) -> Resp {
    let body = format!("{form}&client_id=demo-client&client_secret=demo-secret");
    send(server, "POST", "/oauth/token", &[FORM], body.as_bytes())
}

/// Password grant -> (access, refresh).
pub fn login(server: &TestServer) -> (String, String) {
    let r = token(server, "grant_type=password&username=u&password=p");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    (
        j["access_token"].as_str().unwrap().to_string(),
        j["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// The form body of a `refresh_token` grant with demo-client body credentials.
pub fn refresh_form(rt: &str) -> String {
    format!(
        "grant_type=refresh_token&refresh_token={rt}&client_id=demo-client&client_secret=demo-secret"
    )
}

pub fn refresh(server: &TestServer, rt: &str) -> Resp {
    send(
        server,
        "POST",
        "/oauth/token",
        &[FORM],
        refresh_form(rt).as_bytes(),
    )
}

/// GET an API path with a bearer token.
pub fn api(server: &TestServer, path: &str, access: &str) -> Resp {
    let auth = format!("Bearer {access}");
    send(server, "GET", path, &[("Authorization", &auth)], b"")
}

/// A raw connection to `server`; reads give up after PATIENCE.
pub fn connect(server: &TestServer) -> TcpStream {
    let stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("set a read timeout");
    stream
}

/// Writes `bytes` on a new raw connection and returns everything the server sends until it closes
/// the connection.
///
/// # Panics
///
/// When the server keeps the connection open for PATIENCE (the read times out) or resets it.
pub fn exchange(server: &TestServer, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect(server);
    stream.write_all(bytes).expect("write");
    read_until_closed(&mut stream)
}

/// Reads until the server closes `stream`.
///
/// # Panics
///
/// As [`exchange`].
pub fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap_or_else(|e| {
        panic!(
            "the server did not close the connection ({e}); got {:?}",
            String::from_utf8_lossy(&got)
        )
    });
    got
}

/// Splits raw bytes into the responses they hold (each framed by its `Content-Length`; an interim
/// `1xx` response has no body). `head_only` marks responses to HEAD requests, by position.
///
/// # Panics
///
/// When the bytes are not a sequence of complete responses.
pub fn parse_responses(mut raw: &[u8], head_only: &[bool]) -> Vec<Resp> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        let head_len = match parsed.parse(raw) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!("not a complete response ({other:?}): {raw:?}"),
        };
        let status = parsed.code.expect("a status code");
        let mut map = HeaderMap::new();
        for h in parsed.headers.iter() {
            map.append(
                ureq::http::HeaderName::from_bytes(h.name.as_bytes()).expect("a header name"),
                ureq::http::HeaderValue::from_bytes(h.value).expect("a header value"),
            );
        }
        let interim = (100..200).contains(&status);
        let body_len = if interim || head_only.get(out.len()).copied().unwrap_or(false) {
            0
        } else {
            map.get("content-length")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .expect("the server always sends Content-Length")
        };
        let body = raw[head_len..head_len + body_len].to_vec();
        raw = &raw[head_len + body_len..];
        if interim {
            continue;
        }
        out.push(Resp {
            status,
            headers: map,
            body,
        });
    }
    out
}
