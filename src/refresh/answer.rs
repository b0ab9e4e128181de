//! What the token endpoint's answer means: the classification of error answers (RFC 6749 §5.2,
//! statuses, transport and TLS failures) and the scrubbing of every secret the client knows out of
//! what is kept for diagnostics.

use std::time::Duration;

use serde_json::Value;

use crate::error::{Class, OAuthError, RefreshError, RefreshErrorKind};
use crate::form::form_encode;
use crate::net::{self, Failure};

/// How much of a non-JSON answer is kept for diagnostics.
pub(super) const EXCERPT_CHARS: usize = 200;

/// The status of an answer and the delay its `Retry-After` asks for.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) retry_after: Option<Duration>,
}

/// What replaces a secret in text the client keeps.
const REDACTED: &str = "[redacted]";

/// Secrets to be replaced with `[redacted]` in text from the server (see [`OAuth2::secrets`]).
#[derive(Default)]
pub(super) struct Secrets(pub(super) Vec<String>);

impl Secrets {
    /// Adds `secret` and its form-encoded form (as a request body carries it, and as a server may
    /// echo that body).
    pub(super) fn add(&mut self, secret: &str) {
        let mut encoded = String::new();
        form_encode(secret, &mut encoded);
        for s in [secret.to_owned(), encoded] {
            if !s.is_empty() && !self.0.contains(&s) {
                self.0.push(s);
            }
        }
    }

    /// Adds the tokens a body carries: the string `access_token`, `refresh_token` and `id_token`
    /// fields of a JSON object, or the same keys' values in a form-encoded body, as they appear.
    pub(super) fn add_tokens_of(&mut self, body: &[u8]) {
        const KEYS: [&str; 3] = ["access_token", "refresh_token", "id_token"];
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            for key in KEYS {
                if let Some(Value::String(s)) = map.get(key) {
                    self.add(s);
                }
            }
        }
        let text = String::from_utf8_lossy(body);
        for pair in text.split(['&', '\n']) {
            if let Some((key, value)) = pair.split_once('=')
                && KEYS.contains(&key.trim())
            {
                self.add(value.trim());
            }
        }
    }

    /// `text` with every occurrence of every secret replaced by `[redacted]`, longest secret first
    /// (so `id:secret` goes whole, not as `id:[redacted]`).
    pub(super) fn scrub(&self, text: &str) -> String {
        let mut by_length: Vec<&String> = self.0.iter().collect();
        by_length.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = text.to_owned();
        for secret in by_length {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

/// A failed token request: TLS and proxy failures get their own kinds, the rest is
/// [`transport_error`].
pub(super) fn network_error(e: ureq::Error, proxy: Option<&ureq::Proxy>) -> RefreshError {
    match net::failure_of(&e, proxy) {
        Failure::Proxy => {
            let err = crate::error::ProxyError::new(proxy.map(net::describe), e);
            let class = if err.is_auth_refused() {
                Class::Configuration
            } else {
                Class::Transient
            };
            RefreshError::new(
                RefreshErrorKind::Proxy,
                class,
                "could not reach the token endpoint through the proxy",
            )
            .with_source(err)
        }
        _ => transport_error(e),
    }
}

pub(super) fn transport_error(e: ureq::Error) -> RefreshError {
    // Typed TLS failures (any rustls error, native-tls) get their own kind; the class is the one
    // `is_tls_trust_failure` gives, widened to those: retrying cannot fix a handshake either.
    let tls = net::is_tls(&e);
    let class = if tls || is_tls_trust_failure(&e) {
        Class::Configuration
    } else {
        Class::Transient
    };
    let (kind, message) = if tls {
        (RefreshErrorKind::Tls, "TLS with the token endpoint failed")
    } else {
        (
            RefreshErrorKind::Transport,
            "could not reach the token endpoint",
        )
    };
    RefreshError::new(kind, class, message).with_source(e)
}

/// Whether a transport failure is one that trying again cannot fix: the server's certificate or
/// name is not trusted, or the TLS set-up itself is unusable.
pub(super) fn is_tls_trust_failure(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Tls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::TlsRequired
        | ureq::Error::RequireHttpsOnly(_) => true,
        // rustls reports a failed handshake through the stream, as an I/O error that wraps its own.
        ureq::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::InvalidData
                && io.get_ref().is_some_and(|inner| {
                    let text = inner.to_string();
                    text.starts_with("invalid peer certificate")
                        || text.starts_with("received fatal alert: BadCertificate")
                        || text.starts_with("received fatal alert: UnknownCA")
                        || text.starts_with("received fatal alert: CertificateRequired")
                })
        }
        _ => false,
    }
}

/// What an RFC 6749 §5.2 error code says about the failure, when the code is one we know.
pub(super) fn class_of_code(code: &str) -> Option<Class> {
    match code {
        "invalid_grant" => Some(Class::Login),
        "invalid_client"
        | "unauthorized_client"
        | "unsupported_grant_type"
        | "invalid_scope"
        | "invalid_request" => Some(Class::Configuration),
        "temporarily_unavailable" | "slow_down" | "server_error" => Some(Class::Transient),
        _ => None,
    }
}

/// What a status without a known error code says: 5xx, 408, 425 and 429 may pass; anything else
/// (a 3xx, 400, 401, 403, 404, even a 2xx) means an endpoint that retrying will not fix. Never
/// login required: only `invalid_grant` says the grant is dead.
pub(super) fn class_of_status(status: u16) -> Class {
    if matches!(status, 408 | 425 | 429) || status >= 500 {
        Class::Transient
    } else {
        Class::Configuration
    }
}

/// Classifies a token endpoint answer that is not a token: an error status, or a 2xx carrying an
/// error object. See the table on [`RefreshError`]. The server's text is kept with `secrets`
/// scrubbed out; the body of a 2xx is never kept.
pub(super) fn error_response(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    secrets: &Secrets,
) -> RefreshError {
    let oauth = OAuthError::parse(body);
    let mut err = match oauth {
        Some(oauth) => {
            let class = class_of_code(&oauth.error).unwrap_or_else(|| class_of_status(status));
            RefreshError::new(RefreshErrorKind::OAuth, class, "the server refused")
                .with_oauth(oauth)
        }
        None => {
            let mut e = RefreshError::new(
                RefreshErrorKind::Status,
                class_of_status(status),
                "unexpected answer from the token endpoint",
            );
            if !(200..300).contains(&status) && serde_json::from_slice::<Value>(body).is_err() {
                e = e.with_body_excerpt(excerpt(body, secrets));
            }
            e
        }
    }
    .with_status(status)
    .scrubbed(|text| secrets.scrub(text));
    if let Some(after) = retry_after {
        err = err.with_retry_after(after);
    }
    err
}

/// The start of `body`, scrubbed whole before it is cut (a secret straddling the cut would
/// otherwise leave its first half).
pub(super) fn excerpt(body: &[u8], secrets: &Secrets) -> String {
    secrets
        .scrub(&String::from_utf8_lossy(body))
        .chars()
        .take(EXCERPT_CHARS)
        .collect()
}
