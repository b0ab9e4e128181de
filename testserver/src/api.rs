//! The bearer-protected API under `/api`, and the `/redirect` helper.

use crate::counters::bump;
use crate::form::parse_form;
use crate::http::{Request, Reset, Response};
use crate::state::Shared;
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;

/// Largest body `/api/big?bytes=N` will produce.
const MAX_BIG: usize = 64 * 1024 * 1024;

/// `WWW-Authenticate` for a rejected (invalid, revoked or expired) token.
const INVALID_TOKEN_CHALLENGE: &str =
    r#"Bearer realm="api", error="invalid_token", error_description="The access token expired""#;
/// `WWW-Authenticate` when no credentials were sent (RFC 6750 §3.1).
const NO_TOKEN_CHALLENGE: &str = r#"Bearer realm="api""#;
/// `WWW-Authenticate` for the insufficient-scope paths.
const INSUFFICIENT_SCOPE_CHALLENGE: &str = r#"Bearer error="insufficient_scope", scope="admin""#;

/// The token of an `Authorization: Bearer <token>` value (scheme
/// case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

/// The answer to an unauthorized API call.
fn reject(shared: &Shared, had_auth: bool) -> Response {
    bump(&shared.counters.api_rejected);
    if shared.config.body_mode {
        return Response::json(200, r#"{"ret":401,"msg":"token expired"}"#);
    }
    if had_auth {
        Response::json(
            401,
            r#"{"error":"invalid_token","error_description":"The access token expired"}"#,
        )
        .header("WWW-Authenticate", INVALID_TOKEN_CHALLENGE)
    } else {
        Response::json(401, r#"{"error":"unauthorized"}"#)
            .header("WWW-Authenticate", NO_TOKEN_CHALLENGE)
    }
}

/// `ANY /api` and `ANY /api/*`.
pub(crate) fn handle(shared: &Shared, req: &Request) -> Response {
    let c = &shared.counters;
    bump(&c.api_calls);
    if shared.api_reset.load(Relaxed) {
        return Response::empty(200).reset(Reset::Immediately);
    }
    let auth = req.header("authorization");
    if auth.is_none() {
        bump(&c.api_without_auth);
    }
    let path = req.path();
    if path == "/api/echo-auth" {
        bump(&c.api_ok);
        return Response::json_value(200, &json!({ "authorization": auth.unwrap_or("") }));
    }

    let valid = req.header_count("authorization") == 1
        && !shared.reject_all.load(Relaxed)
        && auth
            .and_then(bearer_token)
            .is_some_and(|t| shared.tokens.is_valid(t));
    if !valid {
        return reject(shared, auth.is_some());
    }

    match path {
        "/api/insufficient-scope" => Response::json(403, r#"{"error":"insufficient_scope"}"#)
            .header("WWW-Authenticate", INSUFFICIENT_SCOPE_CHALLENGE),
        "/api/insufficient-scope-401" => {
            bump(&c.api_rejected);
            Response::json(401, r#"{"error":"insufficient_scope"}"#)
                .header("WWW-Authenticate", INSUFFICIENT_SCOPE_CHALLENGE)
        }
        "/api/big" => {
            let bytes = parse_form(req.query().unwrap_or("").as_bytes())
                .ok()
                .and_then(|q| q.into_iter().find(|(k, _)| k == "bytes"))
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .filter(|&n| n <= MAX_BIG);
            match bytes {
                Some(n) => {
                    bump(&c.api_ok);
                    Response::empty(200)
                        .header("Content-Type", "text/plain")
                        .body(vec![b'x'; n])
                }
                None => Response::json(
                    400,
                    format!(r#"{{"error":"bytes must be an integer in 0..={MAX_BIG}"}}"#),
                ),
            }
        }
        _ => {
            bump(&c.api_ok);
            // Written by hand to keep the key order clients (the C example) look for.
            let body = format!(
                r#"{{"ok":true,"method":{},"path":{},"body_len":{}}}"#,
                json!(req.method),
                json!(req.target),
                req.body.len()
            );
            Response::json(200, body)
        }
    }
}

/// `ANY /redirect?to=<url>&status=<3xx>` (no auth).
pub(crate) fn redirect(shared: &Shared, req: &Request) -> Response {
    bump(&shared.counters.redirects);
    let bad = |msg: &str| {
        Response::json_value(
            400,
            &json!({ "error": "invalid_request", "error_description": msg }),
        )
    };
    let Ok(query) = parse_form(req.query().unwrap_or("").as_bytes()) else {
        return bad("malformed query string");
    };
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(to) = get("to").filter(|t| !t.is_empty()) else {
        return bad("`to` is required");
    };
    if to.bytes().any(|b| b < b' ' || b == 0x7f) {
        return bad("`to` contains control characters");
    }
    let status = match get("status").map(str::parse::<u16>) {
        None => 302,
        Some(Ok(s @ (301 | 302 | 303 | 307 | 308))) => s,
        Some(_) => return bad("`status` must be one of 301, 302, 303, 307, 308"),
    };
    Response::empty(status).header("Location", to)
}
