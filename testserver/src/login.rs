//! The login side of the authorization server: metadata documents (RFC 8414, OpenID Connect
//! Discovery), the device authorization endpoint and the `device_code` grant (RFC 8628), the
//! authorization endpoint with PKCE and the `authorization_code` grant (RFC 6749 §4.1, RFC 7636,
//! RFC 9207 `iss`), and the revocation endpoint (RFC 7009). Faults are injectable through
//! [`LoginKnobs`]; everything is counted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::counters::bump;
use crate::form::parse_form;
use crate::http::{Request, Response};
use crate::state::Shared;
use crate::token_endpoint::{Client, TokenRequest, oauth_error, token_success};

/// Paths of the login endpoints.
pub(crate) const DEVICE_PATH: &str = "/oauth/device_authorization";
pub(crate) const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub(crate) const REVOKE_PATH: &str = "/oauth/revoke";
pub(crate) const OAUTH_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
pub(crate) const OPENID_METADATA_PATH: &str = "/.well-known/openid-configuration";
/// The grant type of device polls (RFC 8628 §3.4).
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long an authorization code may be exchanged.
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// What the authorization endpoint does wrong on purpose, see
/// [`TestServer::set_redirect_fault`](crate::TestServer::set_redirect_fault).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedirectFault {
    /// A correct redirect: `code`, the client's `state`, and `iss`.
    #[default]
    None,
    /// The redirect carries another `state` than the client sent.
    WrongState,
    /// The redirect's `iss` names another server.
    WrongIss,
    /// The redirect carries no `iss`.
    NoIss,
    /// The redirect is an error response with this `error` code (e.g. `access_denied`), with the
    /// client's `state` and `iss`, and no code.
    Error(String),
}

/// Login settings tests change while the server runs.
#[derive(Clone, Debug)]
pub(crate) struct LoginKnobs {
    pub device_interval: Duration,
    pub device_expires_in: Duration,
    pub slow_down_step: Duration,
    pub device_auto_approve: bool,
    /// Polls still to be answered `authorization_pending` (resp. `slow_down`) whatever the
    /// device's state.
    pub inject_pending: u32,
    pub inject_slow_down: u32,
    pub redirect_fault: RedirectFault,
    pub serve_oauth_metadata: bool,
    pub serve_openid_metadata: bool,
    pub metadata_issuer: Option<String>,
    /// Fields left out of the metadata documents (e.g. `device_authorization_endpoint`).
    pub metadata_omits: Vec<String>,
    pub iss_supported: bool,
    pub revocation_unavailable: bool,
}

impl Default for LoginKnobs {
    fn default() -> Self {
        LoginKnobs {
            device_interval: Duration::from_secs(1),
            device_expires_in: Duration::from_secs(600),
            slow_down_step: Duration::from_secs(5),
            device_auto_approve: false,
            inject_pending: 0,
            inject_slow_down: 0,
            redirect_fault: RedirectFault::None,
            serve_oauth_metadata: true,
            serve_openid_metadata: true,
            metadata_issuer: None,
            metadata_omits: Vec::new(),
            iss_supported: true,
            revocation_unavailable: false,
        }
    }
}

/// Where a device code stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DeviceState {
    Pending,
    Approved,
    Denied,
    /// Exchanged for a token: a device code works once.
    Used,
}

#[derive(Debug)]
struct Device {
    user_code: String,
    client_id: String,
    scope: Option<String>,
    created: Instant,
    expires: Instant,
    /// The interval this code is polled at, grown by each `slow_down`.
    interval: Duration,
    state: DeviceState,
    polls: Vec<Instant>,
}

#[derive(Debug)]
struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: Option<String>,
    issued: Instant,
}

/// The login state of one server.
#[derive(Debug, Default)]
pub(crate) struct LoginState {
    pub knobs: Mutex<LoginKnobs>,
    /// Device codes by their (secret) device code.
    devices: Mutex<HashMap<String, Device>>,
    /// Authorization codes not yet exchanged.
    codes: Mutex<HashMap<String, Code>>,
}

impl LoginState {
    /// Sets the device with `user_code` approved (`true`) or denied; `false` when there is no
    /// such pending device.
    pub fn decide(&self, user_code: &str, approve: bool) -> bool {
        let mut devices = self.devices.lock();
        let Some(d) = devices
            .values_mut()
            .find(|d| d.user_code.eq_ignore_ascii_case(user_code))
        else {
            return false;
        };
        if d.state != DeviceState::Pending {
            return false;
        }
        d.state = if approve {
            DeviceState::Approved
        } else {
            DeviceState::Denied
        };
        true
    }

    /// When each poll of the device with `user_code` came, counted from its authorization.
    pub fn polls(&self, user_code: &str) -> Vec<Duration> {
        self.devices
            .lock()
            .values()
            .find(|d| d.user_code.eq_ignore_ascii_case(user_code))
            .map(|d| d.polls.iter().map(|p| *p - d.created).collect())
            .unwrap_or_default()
    }
}

/// `expires_in` / `interval` as JSON: whole seconds when whole, else a fraction (only a test
/// server sends one; tokengate honours it from loopback).
fn seconds(d: Duration) -> Value {
    if d.subsec_nanos() == 0 {
        json!(d.as_secs())
    } else {
        json!(d.as_secs_f64())
    }
}

/// A random-looking, unique value with `prefix` (the token store's minting).
fn new_value(shared: &Shared, prefix: &str) -> String {
    shared.tokens.new_value(prefix)
}

/// `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
pub(crate) fn metadata(shared: &Shared, req: &Request, openid: bool) -> Response {
    bump(&shared.counters.metadata_requests);
    let k = shared.login.knobs.lock().clone();
    let served = if openid {
        k.serve_openid_metadata
    } else {
        k.serve_oauth_metadata
    };
    if !served || req.method != "GET" {
        return Response::json(404, r#"{"error":"not_found"}"#);
    }
    let base = shared.base_url();
    let issuer = k.metadata_issuer.unwrap_or_else(|| base.clone());
    let mut document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}{AUTHORIZE_PATH}"),
        "token_endpoint": format!("{base}{}", crate::router::TOKEN_PATH),
        "device_authorization_endpoint": format!("{base}{DEVICE_PATH}"),
        "revocation_endpoint": format!("{base}{REVOKE_PATH}"),
        "response_types_supported": ["code"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials", "password",
            DEVICE_CODE_GRANT,
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "authorization_response_iss_parameter_supported": k.iss_supported,
    });
    if let Some(fields) = document.as_object_mut() {
        for field in &k.metadata_omits {
            fields.remove(field);
        }
    }
    Response::json_value(200, &document)
}

/// `POST /oauth/device_authorization` (RFC 8628 §3.1, §3.2).
pub(crate) fn device_authorization(shared: &Shared, req: &Request) -> Response {
    bump(&shared.counters.device_authorizations);
    if req.method != "POST" {
        return oauth_error(405, "invalid_request", "use POST").header("Allow", "POST");
    }
    let tr = match TokenRequest::read(req) {
        Ok(tr) => tr,
        Err(resp) => return resp,
    };
    let client_id = match crate::token_endpoint::authenticate(shared, req, &tr) {
        Ok(Client::Confidential) => tr
            .basic_auth
            .as_ref()
            .map(|(id, _)| id.clone())
            .or_else(|| tr.param("client_id").map(str::to_owned))
            .unwrap_or_default(),
        Ok(Client::Public) => tr.param("client_id").unwrap_or_default().to_owned(),
        Err(resp) => return resp,
    };
    let k = shared.login.knobs.lock().clone();
    let device_code = new_value(shared, "dc-");
    let user_code = user_code(shared);
    let now = Instant::now();
    let base = shared.base_url();
    let body = json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": format!("{base}/device"),
        "verification_uri_complete": format!("{base}/device?user_code={user_code}"),
        "expires_in": seconds(k.device_expires_in),
        "interval": seconds(k.device_interval),
    });
    shared.login.devices.lock().insert(
        device_code,
        Device {
            user_code,
            client_id,
            scope: tr
                .param("scope")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            created: now,
            expires: now + k.device_expires_in,
            interval: k.device_interval,
            state: if k.device_auto_approve {
                DeviceState::Approved
            } else {
                DeviceState::Pending
            },
            polls: Vec::new(),
        },
    );
    Response::json_value(200, &body).header("Cache-Control", "no-store")
}

/// `XXXX-XXXX` from an alphabet without vowels or look-alikes (RFC 8628 §6.1).
fn user_code(shared: &Shared) -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        let n = (shared.random() * ALPHABET.len() as f64) as usize;
        code.push(ALPHABET[n.min(ALPHABET.len() - 1)] as char);
    }
    code
}

/// The `device_code` grant (RFC 8628 §3.4, §3.5), once the client is authenticated.
pub(crate) fn device_code_grant(shared: &Shared, tr: &TokenRequest, client_id: &str) -> Response {
    let c = &shared.counters;
    bump(&c.device_polls);
    let Some(code) = tr.param("device_code") else {
        return oauth_error(400, "invalid_request", "device_code is required");
    };
    let (step, lifetime) = {
        let k = shared.login.knobs.lock();
        (k.slow_down_step, shared.knobs.lock().token_lifetime)
    };
    let mut devices = shared.login.devices.lock();
    let Some(d) = devices.get_mut(code) else {
        return oauth_error(400, "invalid_grant", "unknown device code");
    };
    if d.client_id != client_id {
        return oauth_error(
            400,
            "invalid_grant",
            "the device code belongs to another client",
        );
    }
    let now = Instant::now();
    if let Some(last) = d.polls.last()
        && now.duration_since(*last) < d.interval
    {
        bump(&c.device_polls_too_fast);
    }
    d.polls.push(now);
    if now >= d.expires {
        return oauth_error(400, "expired_token", "the device code expired");
    }
    {
        let mut k = shared.login.knobs.lock();
        if k.inject_slow_down > 0 {
            k.inject_slow_down -= 1;
            d.interval += step;
            return oauth_error(400, "slow_down", "poll less often");
        }
        if k.inject_pending > 0 {
            k.inject_pending -= 1;
            return oauth_error(400, "authorization_pending", "not yet approved");
        }
    }
    match d.state {
        DeviceState::Pending => oauth_error(400, "authorization_pending", "not yet approved"),
        DeviceState::Denied => oauth_error(400, "access_denied", "the user denied the request"),
        DeviceState::Used => oauth_error(400, "invalid_grant", "the device code was already used"),
        DeviceState::Approved => {
            d.state = DeviceState::Used;
            let scope = d.scope.clone();
            drop(devices);
            bump(&c.device_grants);
            let (access, refresh) = shared.tokens.issue_pair(lifetime, scope.clone());
            token_success(shared, None, access, Some(refresh), scope, lifetime)
        }
    }
}

/// Whether `uri` is a loopback redirect URI a native app may use (RFC 8252 §7.3): plain `http`
/// to `127.0.0.1`, `[::1]` or `localhost`, any port.
fn is_loopback_redirect(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']')
            .next()
            .map(|h| format!("[{h}]"))
            .unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or("").to_owned()
    };
    matches!(host.as_str(), "127.0.0.1" | "[::1]" | "localhost")
}

/// `GET /oauth/authorize` (RFC 6749 §4.1.1, RFC 7636 §4.3): approves at once (the user is always
/// logged in and always consents) and redirects to the loopback `redirect_uri` with `code`,
/// `state` and `iss` (RFC 9207), or with the [`RedirectFault`] in force.
pub(crate) fn authorize(shared: &Shared, req: &Request) -> Response {
    bump(&shared.counters.authorizations);
    let page = |status: u16, text: &str| {
        Response::empty(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(format!("{text}\n"))
    };
    if req.method != "GET" {
        return page(405, "use GET").header("Allow", "GET");
    }
    let Ok(query) = parse_form(req.query().unwrap_or("").as_bytes()) else {
        return page(400, "malformed query string");
    };
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // Errors before the client and redirect URI are known are shown, never redirected (§4.1.2.1).
    let Some(client_id) = get("client_id") else {
        return page(400, "client_id is required");
    };
    let known = shared.config.public_clients.iter().any(|p| p == client_id)
        || shared.config.clients.iter().any(|(id, _)| id == client_id);
    if !known {
        return page(400, "unknown client");
    }
    let Some(redirect_uri) = get("redirect_uri") else {
        return page(400, "redirect_uri is required");
    };
    if !is_loopback_redirect(redirect_uri) {
        return page(400, "redirect_uri must be a loopback http URI");
    }
    let fault = shared.login.knobs.lock().redirect_fault.clone();
    let base = shared.base_url();
    let state = get("state").unwrap_or("");
    let mut params: Vec<(&str, String)> = Vec::new();
    let error = match (
        get("response_type"),
        get("code_challenge"),
        get("code_challenge_method"),
    ) {
        (Some("code"), Some(c), Some("S256")) if !c.is_empty() => None,
        (Some("code"), _, _) => Some("invalid_request"),
        _ => Some("unsupported_response_type"),
    };
    match (&fault, error) {
        (RedirectFault::Error(code), _) => params.push(("error", code.clone())),
        (_, Some(error)) => params.push(("error", error.to_owned())),
        (_, None) => {
            let code = new_value(shared, "ac-");
            shared.login.codes.lock().insert(
                code.clone(),
                Code {
                    client_id: client_id.to_owned(),
                    redirect_uri: redirect_uri.to_owned(),
                    challenge: get("code_challenge").unwrap_or("").to_owned(),
                    scope: get("scope").filter(|s| !s.is_empty()).map(str::to_owned),
                    issued: Instant::now(),
                },
            );
            params.push(("code", code));
        }
    }
    let state = if fault == RedirectFault::WrongState {
        format!("{state}-not-yours")
    } else {
        state.to_owned()
    };
    params.push(("state", state));
    match fault {
        RedirectFault::NoIss => {}
        RedirectFault::WrongIss => params.push(("iss", "https://mix-up.example".to_owned())),
        _ => params.push(("iss", base)),
    }
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    Response::empty(302).header("Location", format!("{redirect_uri}{separator}{query}"))
}

/// The `authorization_code` grant (RFC 6749 §4.1.3) with PKCE verification (RFC 7636 §4.6), once
/// the client is authenticated.
pub(crate) fn authorization_code_grant(
    shared: &Shared,
    tr: &TokenRequest,
    client_id: &str,
) -> Response {
    let c = &shared.counters;
    let (Some(code), Some(redirect_uri)) = (tr.param("code"), tr.param("redirect_uri")) else {
        return oauth_error(400, "invalid_request", "code and redirect_uri are required");
    };
    // A code is spent by its first exchange, whatever its outcome.
    let Some(grant) = shared.login.codes.lock().remove(code) else {
        return oauth_error(
            400,
            "invalid_grant",
            "unknown or already used authorization code",
        );
    };
    if grant.client_id != client_id
        || grant.redirect_uri != redirect_uri
        || grant.issued.elapsed() > CODE_LIFETIME
    {
        return oauth_error(
            400,
            "invalid_grant",
            "the authorization code does not match",
        );
    }
    let verified = tr.param("code_verifier").is_some_and(|v| {
        let digest = ring::digest::digest(&ring::digest::SHA256, v.as_bytes());
        URL_SAFE_NO_PAD.encode(digest.as_ref()) == grant.challenge
    });
    if !verified {
        bump(&c.pkce_failures);
        return oauth_error(400, "invalid_grant", "PKCE verification failed");
    }
    bump(&c.code_exchanges);
    let lifetime = shared.knobs.lock().token_lifetime;
    let (access, refresh) = shared.tokens.issue_pair(lifetime, grant.scope.clone());
    token_success(shared, None, access, Some(refresh), grant.scope, lifetime)
}

/// `POST /oauth/revoke` (RFC 7009 §2.1): a refresh token revokes its whole family (access tokens
/// included), an access token itself; an unknown token is no error (§2.2).
pub(crate) fn revoke(shared: &Shared, req: &Request) -> Response {
    let c = &shared.counters;
    bump(&c.revocation_requests);
    if req.method != "POST" {
        return oauth_error(405, "invalid_request", "use POST").header("Allow", "POST");
    }
    let tr = match TokenRequest::read(req) {
        Ok(tr) => tr,
        Err(resp) => return resp,
    };
    if let Err(resp) = crate::token_endpoint::authenticate(shared, req, &tr) {
        return resp;
    }
    if shared.login.knobs.lock().revocation_unavailable {
        return Response::json(503, r#"{"error":"temporarily_unavailable"}"#)
            .header("Retry-After", "1");
    }
    let Some(token) = tr.param("token").filter(|t| !t.is_empty()) else {
        return oauth_error(400, "invalid_request", "token is required");
    };
    if shared.tokens.revoke(token) {
        bump(&c.revocations);
    }
    Response::empty(200).header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects() {
        for ok in [
            "http://127.0.0.1:5000/callback",
            "http://127.0.0.1/cb?x=1",
            "http://[::1]:80/",
            "http://localhost:1",
        ] {
            assert!(is_loopback_redirect(ok), "{ok}");
        }
        for bad in [
            "https://127.0.0.1/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://evil.example/127.0.0.1",
            "http://localhost.evil.example/",
            "127.0.0.1:5/cb",
        ] {
            assert!(!is_loopback_redirect(bad), "{bad}");
        }
    }

    #[test]
    fn seconds_are_whole_when_whole() {
        assert_eq!(seconds(Duration::from_secs(5)), json!(5));
        assert_eq!(seconds(Duration::from_millis(50)), json!(0.05));
    }
}
