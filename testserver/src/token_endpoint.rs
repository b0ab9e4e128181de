//! `POST /oauth/token` (RFC 6749: `password`, `refresh_token`,
//! `client_credentials` grants, client authentication by HTTP Basic, body
//! parameters or public client id) and the non-standard JSON refresh
//! endpoint `POST /custom/refresh`.

use crate::counters::bump;
use crate::failure::Failure;
use crate::form::{decode_component, parse_form};
use crate::http::{Request, Response};
use crate::state::Shared;
use crate::token_store::{RefreshOutcome, ceil_secs};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value, json};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// What the client sent in its latest `POST /oauth/token`, as seen by
/// [`TestServer::last_token_request`](crate::TestServer::last_token_request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The `grant_type` parameter (empty if absent).
    pub grant_type: String,
    /// Every form parameter, decoded, in the order sent (empty if the body
    /// was not a valid form).
    pub form: Vec<(String, String)>,
    /// The decoded `(client_id, client_secret)` from an
    /// `Authorization: Basic` header, if one was sent and was well-formed.
    pub basic_auth: Option<(String, String)>,
    /// The raw `Content-Type` header.
    pub content_type: Option<String>,
}

impl TokenRequest {
    /// Reads a form-encoded request: what it carried, and the error answer when it is not a
    /// valid form (wrong content type, a broken encoding, a repeated parameter).
    pub(crate) fn parse(req: &Request) -> (TokenRequest, Option<Response>) {
        let content_type = req.header("content-type").map(str::to_owned);
        let is_form = content_type.as_deref().is_some_and(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
        let form = if is_form {
            parse_form(&req.body)
        } else {
            Ok(Vec::new())
        };
        let tr = TokenRequest {
            grant_type: form
                .as_ref()
                .ok()
                .and_then(|f| f.iter().find(|(k, _)| k == "grant_type"))
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            form: form.as_ref().cloned().unwrap_or_default(),
            basic_auth: req.header("authorization").and_then(parse_basic),
            content_type,
        };
        if !is_form {
            let e = oauth_error(
                400,
                "invalid_request",
                "Content-Type must be application/x-www-form-urlencoded",
            );
            return (tr, Some(e));
        }
        let Ok(pairs) = &form else {
            return (
                tr,
                Some(oauth_error(400, "invalid_request", "malformed form body")),
            );
        };
        for (i, (k, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(prev, _)| prev == k) {
                return (
                    tr,
                    Some(oauth_error(400, "invalid_request", "repeated parameter")),
                );
            }
        }
        (tr, None)
    }

    /// [`parse`](TokenRequest::parse), as a result.
    pub(crate) fn read(req: &Request) -> Result<TokenRequest, Response> {
        match TokenRequest::parse(req) {
            (tr, None) => Ok(tr),
            (_, Some(resp)) => Err(resp),
        }
    }

    /// The id of the client that sent it: from its Basic credentials, else the body.
    fn client_id(&self) -> &str {
        self.basic_auth
            .as_ref()
            .map(|(id, _)| id.as_str())
            .or_else(|| self.param("client_id"))
            .unwrap_or("")
    }

    /// The first value of form parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Counts a token-endpoint request as in flight for as long as it lives.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.token_in_flight.fetch_add(1, Relaxed) + 1;
        shared
            .counters
            .max_concurrent_refreshes
            .fetch_max(now, Relaxed);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.token_in_flight.fetch_sub(1, Relaxed);
    }
}

/// An OAuth2 error response (RFC 6749 §5.2).
pub(crate) fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    Response::json_value(
        status,
        &json!({ "error": error, "error_description": description }),
    )
    .header("Cache-Control", "no-store")
}

fn invalid_client(description: &str) -> Response {
    oauth_error(401, "invalid_client", description)
        .header("WWW-Authenticate", r#"Basic realm="token""#)
}

fn method_not_allowed() -> Response {
    oauth_error(405, "invalid_request", "use POST").header("Allow", "POST")
}

/// A canned failure answer.
struct Failed {
    response: Response,
    /// The answer means "invalid grant" (counted for refresh attempts).
    invalid_grant: bool,
}

/// Sleeps the configured latency (plus jitter), then applies an injected
/// transient failure or the failure mode (if they apply to this request).
/// Returns the canned failure answer, if any.
fn delay_and_fail(shared: &Shared, failure_applies: bool, custom: bool) -> Option<Failed> {
    let (latency, jitter) = {
        let k = shared.knobs.lock();
        (k.token_latency, k.token_latency_jitter)
    };
    shared
        .shutdown
        .sleep(latency.saturating_add(jitter.mul_f64(shared.random())));
    if !failure_applies {
        return None;
    }
    // Read after the delay: the answer reflects the failure mode in force
    // when it is computed.
    let (failure, rate, retry_after) = {
        let mut k = shared.knobs.lock();
        if k.failure_until.is_some_and(|until| Instant::now() >= until) {
            k.failure = Failure::None;
            k.failure_until = None;
        }
        (
            k.failure.clone(),
            k.transient_failure_rate,
            k.transient_failure_retry_after,
        )
    };
    if shared.inject_failure(rate) {
        bump(&shared.counters.injected_failures);
        let mut response = Response::json(503, r#"{"error":"temporarily_unavailable"}"#);
        if let Some(secs) = retry_after {
            response = response.header("Retry-After", secs.to_string());
        }
        return Some(Failed {
            response,
            invalid_grant: false,
        });
    }
    if let Failure::Hang(d) = failure {
        shared.shutdown.sleep(d);
    }
    let response = failure.response(custom)?;
    bump(&shared.counters.failure_answers);
    Some(Failed {
        response,
        invalid_grant: failure == Failure::InvalidGrant,
    })
}

/// Standard base64 (RFC 4648 §4) that accepts the credentials with or without `=` padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = String::from_utf8(BASE64.decode(rest.trim()).ok()?).ok()?;
    let (id, secret) = raw.split_once(':')?;
    Some((decode_component(id).ok()?, decode_component(secret).ok()?))
}

/// Who is calling the token endpoint.
pub(crate) enum Client {
    Confidential,
    Public,
}

/// Authenticates the client of a token, device authorization or revocation request.
pub(crate) fn authenticate(
    shared: &Shared,
    req: &Request,
    tr: &TokenRequest,
) -> Result<Client, Response> {
    let clients = &shared.config.clients;
    let check = |id: &str, secret: &str| {
        if clients.iter().any(|(i, s)| i == id && s == secret) {
            Ok(Client::Confidential)
        } else {
            Err(invalid_client("unknown client or wrong secret"))
        }
    };
    if req.header_count("authorization") > 1 {
        return Err(oauth_error(
            400,
            "invalid_request",
            "more than one Authorization header",
        ));
    }
    if req.header("authorization").is_some() {
        let Some((id, secret)) = &tr.basic_auth else {
            return Err(invalid_client(
                "malformed or non-Basic Authorization header",
            ));
        };
        if tr.param("client_secret").is_some() {
            return Err(oauth_error(
                400,
                "invalid_request",
                "more than one client authentication method",
            ));
        }
        if tr.param("client_id").is_some_and(|body_id| body_id != id) {
            return Err(invalid_client(
                "client_id does not match the Basic credentials",
            ));
        }
        return check(id, secret);
    }
    match (tr.param("client_id"), tr.param("client_secret")) {
        (Some(id), Some(secret)) => check(id, secret),
        (Some(id), None) if shared.config.public_clients.iter().any(|p| p == id) => {
            Ok(Client::Public)
        }
        (Some(_), None) => Err(invalid_client("client secret required")),
        (None, _) => Err(invalid_client("client authentication required")),
    }
}

/// Builds the RFC 6749 §5.1 success body. `field` replaces one of its fields
/// ([`Failure::ExpiresIn`], [`Failure::Field`]).
pub(crate) fn token_success(
    shared: &Shared,
    field: Option<(&'static str, Value)>,
    access: String,
    refresh: Option<String>,
    scope: Option<String>,
    lifetime: Duration,
) -> Response {
    let mut body = Map::new();
    body.insert("access_token".into(), access.into());
    body.insert("token_type".into(), "Bearer".into());
    if !shared.omit_expires_in.load(Relaxed) {
        body.insert("expires_in".into(), ceil_secs(lifetime).into());
    }
    if let Some(refresh) = refresh {
        body.insert("refresh_token".into(), refresh.into());
    }
    if let Some(scope) = scope {
        body.insert("scope".into(), scope.into());
    }
    if let Some((name, v)) = field {
        body.insert(name.into(), v);
    }
    Response::json_value(200, &Value::Object(body))
        .header("Cache-Control", "no-store")
        .header("Pragma", "no-cache")
}

/// `POST /oauth/token`.
pub(crate) fn handle_token(shared: &Shared, req: &Request) -> Response {
    let c = &shared.counters;
    bump(&c.token_requests);
    let _in_flight = InFlight::enter(shared);
    if req.method != "POST" {
        return method_not_allowed();
    }

    let (tr, invalid) = TokenRequest::parse(req);
    *shared.last_token_request.lock() = Some(tr.clone());
    if let Some(resp) = invalid {
        return resp;
    }

    let grant = tr.grant_type.as_str();
    let is_refresh = grant == "refresh_token";
    if is_refresh {
        bump(&c.refresh_attempts);
    }
    if let Some(failed) = delay_and_fail(shared, is_refresh || grant == "client_credentials", false)
    {
        if is_refresh && failed.invalid_grant {
            bump(&c.invalid_grant);
        }
        return failed.response;
    }

    let client = match authenticate(shared, req, &tr) {
        Ok(client) => client,
        Err(resp) => return resp,
    };
    let (lifetime, expires_in) = {
        let k = shared.knobs.lock();
        (
            k.token_lifetime,
            k.failure.field_override().map(|(n, v)| (n, v.clone())),
        )
    };
    let scope = tr
        .param("scope")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);

    match grant {
        "password" => match (tr.param("username"), tr.param("password")) {
            (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => {
                let (access, refresh) = shared.tokens.issue_pair(lifetime, scope.clone());
                token_success(shared, None, access, Some(refresh), scope, lifetime)
            }
            (Some(_), Some(_)) => oauth_error(400, "invalid_grant", "invalid username or password"),
            _ => oauth_error(400, "invalid_request", "username and password are required"),
        },
        "refresh_token" => {
            let Some(presented) = tr.param("refresh_token") else {
                return oauth_error(400, "invalid_request", "refresh_token is required");
            };
            let rotate = shared.config.rotate_refresh_tokens;
            match shared.tokens.refresh(presented, rotate, lifetime, scope) {
                RefreshOutcome::Granted {
                    access,
                    refresh,
                    scope,
                } => {
                    bump(&c.refreshes);
                    token_success(shared, expires_in, access, refresh, scope, lifetime)
                }
                RefreshOutcome::Invalid => {
                    bump(&c.invalid_grant);
                    oauth_error(
                        400,
                        "invalid_grant",
                        "refresh token is invalid, expired or revoked",
                    )
                }
                RefreshOutcome::ReuseDetected => {
                    bump(&c.invalid_grant);
                    bump(&c.reuse_detected);
                    oauth_error(
                        400,
                        "invalid_grant",
                        "refresh token was already used; token family revoked",
                    )
                }
            }
        }
        "client_credentials" => match client {
            Client::Public => oauth_error(
                400,
                "unauthorized_client",
                "public clients cannot use client_credentials",
            ),
            Client::Confidential => {
                let access = shared.tokens.issue_access_only(lifetime);
                bump(&c.client_credentials);
                token_success(shared, expires_in, access, None, scope, lifetime)
            }
        },
        "authorization_code" => crate::login::authorization_code_grant(shared, &tr, tr.client_id()),
        crate::login::DEVICE_CODE_GRANT => {
            crate::login::device_code_grant(shared, &tr, tr.client_id())
        }
        "" => oauth_error(400, "invalid_request", "grant_type is required"),
        _ => oauth_error(400, "unsupported_grant_type", "unsupported grant_type"),
    }
}

/// `POST /custom/refresh` with `{"refresh":"<token>"}`.
pub(crate) fn handle_custom_refresh(shared: &Shared, req: &Request) -> Response {
    let c = &shared.counters;
    bump(&c.token_requests);
    let _in_flight = InFlight::enter(shared);
    if req.method != "POST" {
        return Response::json(405, r#"{"ret":405,"msg":"use POST"}"#).header("Allow", "POST");
    }
    let presented = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .and_then(|v| v.get("refresh")?.as_str().map(str::to_owned));
    let Some(presented) = presented else {
        return Response::json(400, r#"{"ret":400,"msg":"bad request"}"#);
    };
    bump(&c.refresh_attempts);
    if let Some(failed) = delay_and_fail(shared, true, true) {
        if failed.invalid_grant {
            bump(&c.invalid_grant);
        }
        return failed.response;
    }
    let lifetime = shared.knobs.lock().token_lifetime;
    let rotate = shared.config.rotate_refresh_tokens;
    match shared.tokens.refresh(&presented, rotate, lifetime, None) {
        RefreshOutcome::Granted {
            access, refresh, ..
        } => {
            bump(&c.refreshes);
            let mut data = Map::new();
            data.insert("token".into(), access.into());
            if !shared.omit_expires_in.load(Relaxed) {
                data.insert("expire".into(), ceil_secs(lifetime).into());
            }
            data.insert("refresh".into(), refresh.unwrap_or(presented).into());
            Response::json_value(200, &json!({ "ret": 0, "data": data }))
                .header("Cache-Control", "no-store")
        }
        outcome => {
            bump(&c.invalid_grant);
            if outcome == RefreshOutcome::ReuseDetected {
                bump(&c.reuse_detected);
            }
            Response::json(200, r#"{"ret":1001,"msg":"refresh token invalid"}"#)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_basic;

    #[test]
    fn basic_credentials() {
        let pair = |id: &str, secret: &str| Some((id.to_owned(), secret.to_owned()));
        // demo-client:demo-secret, padded and not.
        assert_eq!(
            parse_basic("Basic ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ="),
            pair("demo-client", "demo-secret")
        );
        assert_eq!(
            parse_basic("basic ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ"),
            pair("demo-client", "demo-secret")
        );
        // a+b:p%2Bq%3Ar: id and secret are form-decoded after base64.
        assert_eq!(
            parse_basic("Basic YStiOnAlMkJxJTNBcg=="),
            pair("a b", "p+q:r")
        );
        assert_eq!(parse_basic("Bearer ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ="), None);
        assert_eq!(parse_basic("Basic Y!=="), None);
        // "nocolon", and "a:%zz" (a broken escape).
        assert_eq!(parse_basic("Basic bm9jb2xvbg=="), None);
        assert_eq!(parse_basic("Basic YTolenq="), None);
    }
}
