//! Failure modes of the token endpoint, and the responses they produce.

use crate::http::{Reset, Response};
use serde_json::{Value, json};
use std::time::Duration;

/// How the token endpoint misbehaves (see
/// [`TestServer::set_failure`](crate::TestServer::set_failure)).
///
/// Failure modes apply to `refresh_token` and `client_credentials` grants and
/// to `/custom/refresh`; never to the `password` grant nor to
/// [`TestServer::issue_token`](crate::TestServer::issue_token).
/// [`ExpiresIn`](Failure::ExpiresIn) applies to `/oauth/token` only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Healthy: answer normally.
    #[default]
    None,
    /// `500` with the JSON body `{"error":"server_error"}`.
    Status500,
    /// `503` with `Retry-After: <retry_after_secs>`.
    Unavailable {
        /// Value of the `Retry-After` header, in seconds.
        retry_after_secs: u64,
    },
    /// `429` with `Retry-After: <retry_after_secs>`.
    TooManyRequests {
        /// Value of the `Retry-After` header, in seconds.
        retry_after_secs: u64,
    },
    /// `200 text/html` `<html><body>Sign in</body></html>` (a login page
    /// served by a misconfigured proxy).
    Html,
    /// `200 application/json` with the truncated body `{"access_token": "abc", `.
    GarbageJson,
    /// `400 {"error":"invalid_grant","error_description":"refresh token revoked"}`
    /// (on `/custom/refresh`: `200 {"ret":1001,"msg":"refresh token invalid"}`).
    InvalidGrant,
    /// `401 {"error":"invalid_client"}` with `WWW-Authenticate: Basic realm="token"`.
    InvalidClient,
    /// Sleep this long, then answer normally (for read-timeout tests). The
    /// sleep ends early when the server shuts down.
    Hang(Duration),
    /// `200 application/json` with a body of this many bytes (at least the
    /// ~60 bytes of a token response; the rest is a `padding` string field).
    BigBody(usize),
    /// Sends the head of a `200 application/json` answer (with the full
    /// `Content-Length`) and half of its body, then resets the connection
    /// (TCP RST). Counted in
    /// [`Counters::connections_reset`](crate::Counters::connections_reset).
    ResetMidResponse,
    /// Answer normally (a real token is issued and the refresh token
    /// rotated), but with `expires_in` set to this JSON value: `0`, `-5`,
    /// `1e300`, `"soon"`, `null`... (For a response without `expires_in`
    /// use [`TestServer::set_omit_expires_in`](crate::TestServer::set_omit_expires_in).)
    ExpiresIn(Value),
    /// `200 {"access_token":"","token_type":"Bearer","expires_in":3600}`.
    EmptyAccessToken,
    /// Answer normally (a real token is issued and the refresh token rotated),
    /// but with the field `name` of the success body set to `value`: an odd
    /// `token_type` (`""`, `42`), an `access_token` no HTTP header can carry
    /// (`"tök"`, `"a\r\nb"`), an empty `refresh_token`...
    Field {
        /// The field of the RFC 6749 §5.1 body.
        name: &'static str,
        /// What it is set to.
        value: Value,
    },
    /// Any answer: this status, `Content-Type: application/json`, these
    /// extra headers and this body, sent as given.
    Answer {
        /// The status code.
        status: u16,
        /// Extra headers, e.g. `("Location", "/login")` or `("Retry-After", "1")`.
        headers: Vec<(&'static str, String)>,
        /// The body, sent as it is.
        body: String,
    },
}

impl Failure {
    /// The canned response for this failure, or `None` when the request
    /// should be answered normally (`None`, `Hang` and `ExpiresIn`). `custom`
    /// selects the `/custom/refresh` flavour of `InvalidGrant`.
    pub(crate) fn response(&self, custom: bool) -> Option<Response> {
        let no_store = |r: Response| r.header("Cache-Control", "no-store");
        Some(match self {
            Failure::None | Failure::Hang(_) | Failure::ExpiresIn(_) | Failure::Field { .. } => {
                return None;
            }
            Failure::Status500 => Response::json(500, r#"{"error":"server_error"}"#),
            Failure::Unavailable { retry_after_secs } => {
                Response::json(503, r#"{"error":"temporarily_unavailable"}"#)
                    .header("Retry-After", retry_after_secs.to_string())
            }
            Failure::TooManyRequests { retry_after_secs } => {
                Response::json(429, r#"{"error":"too_many_requests"}"#)
                    .header("Retry-After", retry_after_secs.to_string())
            }
            Failure::Html => Response::empty(200)
                .header("Content-Type", "text/html; charset=utf-8")
                .body("<html><body>Sign in</body></html>"),
            Failure::GarbageJson => Response::json(200, r#"{"access_token": "abc", "#),
            Failure::InvalidGrant if custom => {
                Response::json(200, r#"{"ret":1001,"msg":"refresh token invalid"}"#)
            }
            Failure::InvalidGrant => no_store(Response::json(
                400,
                r#"{"error":"invalid_grant","error_description":"refresh token revoked"}"#,
            )),
            Failure::InvalidClient => {
                no_store(Response::json(401, r#"{"error":"invalid_client"}"#))
                    .header("WWW-Authenticate", r#"Basic realm="token""#)
            }
            Failure::BigBody(bytes) => Response::json(200, big_token_body(*bytes)),
            Failure::ResetMidResponse => {
                let body =
                    r#"{"access_token":"cut-short","token_type":"Bearer","expires_in":3600}"#;
                Response::json(200, body).reset(Reset::AfterBody(body.len() / 2))
            }
            Failure::Answer {
                status,
                headers,
                body,
            } => headers.iter().fold(
                Response::json(*status, body.clone().into_bytes()),
                |r, (name, value)| r.header(name, value.clone()),
            ),
            Failure::EmptyAccessToken => no_store(Response::json_value(
                200,
                &json!({"access_token": "", "token_type": "Bearer", "expires_in": 3600}),
            )),
        })
    }

    /// The `expires_in` value to send instead of the real one, if this
    /// failure overrides it.
    pub(crate) fn field_override(&self) -> Option<(&'static str, &Value)> {
        match self {
            Failure::ExpiresIn(v) => Some(("expires_in", v)),
            Failure::Field { name, value } => Some((name, value)),
            _ => None,
        }
    }
}

/// A valid token response padded to `bytes` bytes with a `padding` field.
fn big_token_body(bytes: usize) -> Vec<u8> {
    let head = br#"{"access_token":"big","token_type":"Bearer","padding":""#;
    let tail = br#""}"#;
    let pad = bytes.saturating_sub(head.len() + tail.len());
    let mut body = Vec::with_capacity(head.len() + pad + tail.len());
    body.extend_from_slice(head);
    body.resize(head.len() + pad, b'x');
    body.extend_from_slice(tail);
    body
}
