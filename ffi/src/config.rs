//! `tokengate_config` and its JSON twin: everything needed to build a client.

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokengate::{Client, FileStore, OAuth2, Token};

use crate::boundary::{self, Failure};
use crate::callbacks::{Callbacks, Refresher};

/// How to build a client. Zero-initialise it (`tokengate_config config = {0};`) and set what you
/// need: every NULL string and every 0 number means "not set / the default".
///
/// Strings are NUL-terminated UTF-8, borrowed: `tokengate_client_new()` copies what it needs, so
/// they may be freed as soon as it returns.
///
/// The layout may change before 1.0: new fields are added at the end (0 / NULL meaning the
/// default), so recompile against the header of the library you link. `token_file`,
/// `refresh_ahead_ms` and `background_refresh` were added this way after the first C ABI.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct tokengate_config {
    /// The API's base URL, e.g. `https://api.example.com/v1`. Required. Request paths are joined
    /// to it; the token is sent only to its origin.
    pub base_url: *const c_char,
    /// The starting access token (as after a login), or NULL to start without one.
    pub access_token: *const c_char,
    /// Seconds until `access_token` expires; 0 = unknown.
    pub expires_in_secs: u64,
    /// The refresh token, or NULL.
    pub refresh_token: *const c_char,
    /// The OAuth2 token endpoint for the refresh_token grant (RFC 6749 §6), or NULL to refresh only
    /// through a refresh callback. Must be https unless it is on loopback.
    pub token_url: *const c_char,
    /// The OAuth2 client id, or NULL.
    pub client_id: *const c_char,
    /// The OAuth2 client secret (sent with HTTP Basic auth), or NULL for a public client.
    pub client_secret: *const c_char,
    /// Refresh a token this many milliseconds before it expires. 0 = the default: 60 s, or a tenth of
    /// the token's lifetime when that is shorter.
    pub refresh_before_expiry_ms: u64,
    /// Budget of a request for getting a token, in milliseconds: waiting for another thread's
    /// refresh and through the backoff after a transient failure for the next attempt. 0 = the
    /// default, 10 s.
    pub refresh_timeout_ms: u64,
    /// Connect timeout of API requests, in milliseconds. 0 = the default, 10 s.
    pub connect_timeout_ms: u64,
    /// Wait for an API response head, in milliseconds. 0 = the default, 60 s.
    pub response_timeout_ms: u64,
    /// Whole-call timeout of the token endpoint, in milliseconds. 0 = the default, 30 s.
    pub token_timeout_ms: u64,
    /// A file (NUL-terminated UTF-8 path) that keeps the token between runs and shares it with every
    /// other client and process using the same path, or NULL for none (the token lives in memory).
    ///
    /// Every refresh then runs under an exclusive lock on `<token_file>.lock`: the file is re-read,
    /// a token another client or process already refreshed is adopted instead of refreshing again
    /// (so rotating refresh tokens are never spent twice), and the new token is written before the
    /// lock is released, atomically and readable by the owner only (mode 0600 on Unix).
    /// `tokengate_client_set_token()` writes it too. The file holds the tokens: keep it private.
    ///
    /// Without `access_token`, the client starts from the token in the file; a missing file means no
    /// token yet (requests fail with `TOKENGATE_RESULT_LOGIN_REQUIRED` until
    /// `tokengate_client_set_token()`). A file that is empty, garbled or of another format version
    /// makes `tokengate_client_new()` fail with `TOKENGATE_RESULT_STORE` and leaves it untouched; the
    /// next token written (e.g. by `tokengate_client_set_token()` on a client created with an
    /// `access_token`) first renames it to `<token_file>.corrupt-<unix seconds>`.
    pub token_file: *const c_char,
    /// Start refreshing this many milliseconds before the token expires, on a tokengate thread,
    /// while requests keep using the still-valid token; only in the last `refresh_before_expiry_ms`
    /// do requests wait for the refresh. 0 = the default: 5 minutes, or a fifth of the token's
    /// lifetime when that is shorter. A value below `refresh_before_expiry_ms` (e.g. 1) turns the
    /// head start off.
    pub refresh_ahead_ms: u64,
    /// Non-zero: start a background thread that refreshes the token when `refresh_ahead_ms` begins,
    /// before any request needs it. 0 = the default: no thread; the first request in that window
    /// starts the refresh. `tokengate_client_free()` stops this thread and joins it (waiting for a
    /// refresh in progress, including a refresh callback, to finish).
    pub background_refresh: u8,
}

/// The configuration in Rust, from either the struct or JSON (same field names).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    base_url: String,
    access_token: Option<String>,
    #[serde(default)]
    expires_in_secs: u64,
    refresh_token: Option<String>,
    token_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    #[serde(default)]
    refresh_before_expiry_ms: u64,
    #[serde(default)]
    refresh_timeout_ms: u64,
    #[serde(default)]
    connect_timeout_ms: u64,
    #[serde(default)]
    response_timeout_ms: u64,
    #[serde(default)]
    token_timeout_ms: u64,
    token_file: Option<String>,
    #[serde(default)]
    refresh_ahead_ms: u64,
    #[serde(default)]
    background_refresh: bool,
}

impl Settings {
    /// Copies a C config.
    ///
    /// # Safety
    ///
    /// Every non-NULL string pointer in `c` is NUL-terminated and live for the call.
    pub(crate) unsafe fn from_c(c: &tokengate_config) -> Result<Settings, Failure> {
        let opt = |p, what| -> Result<Option<String>, Failure> {
            // SAFETY: forwarded from the caller.
            Ok(unsafe { boundary::opt_text(p, what) }?.map(str::to_owned))
        };
        Ok(Settings {
            // SAFETY: forwarded from the caller.
            base_url: unsafe { boundary::text(c.base_url, "base_url") }?.to_owned(),
            access_token: opt(c.access_token, "access_token")?,
            expires_in_secs: c.expires_in_secs,
            refresh_token: opt(c.refresh_token, "refresh_token")?,
            token_url: opt(c.token_url, "token_url")?,
            client_id: opt(c.client_id, "client_id")?,
            client_secret: opt(c.client_secret, "client_secret")?,
            refresh_before_expiry_ms: c.refresh_before_expiry_ms,
            refresh_timeout_ms: c.refresh_timeout_ms,
            connect_timeout_ms: c.connect_timeout_ms,
            response_timeout_ms: c.response_timeout_ms,
            token_timeout_ms: c.token_timeout_ms,
            token_file: opt(c.token_file, "token_file")?,
            refresh_ahead_ms: c.refresh_ahead_ms,
            background_refresh: c.background_refresh != 0,
        })
    }

    /// Parses the JSON form. The error message names the problem but never echoes a value (it
    /// could be a secret in the wrong field).
    pub(crate) fn from_json(json: &str) -> Result<Settings, Failure> {
        serde_json::from_str(json).map_err(|e| {
            let text = e.to_string();
            let about_a_field =
                text.starts_with("unknown field") || text.starts_with("missing field");
            let detail = if about_a_field {
                text
            } else {
                format!(
                    "{:?} error at line {} column {}",
                    e.classify(),
                    e.line(),
                    e.column()
                )
            };
            Failure::invalid(format!("JSON configuration: {detail}"))
        })
    }

    /// Builds the client, wiring the refresher and login hook to `callbacks`.
    pub(crate) fn build(self, callbacks: &Arc<Callbacks>) -> Result<Client, Failure> {
        let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
        if self.access_token.is_none() && (self.refresh_token.is_some() || self.expires_in_secs > 0)
        {
            return Err(Failure::invalid(
                "refresh_token or expires_in_secs given without access_token",
            ));
        }
        let oauth = self.token_url.map(|url| {
            let mut o = OAuth2::refresh_token(url);
            if let Some(id) = self.client_id {
                o = o.client_id(id);
            }
            if let Some(secret) = self.client_secret {
                o = o.client_secret(secret);
            }
            if let Some(t) = ms(self.token_timeout_ms) {
                o = o.timeout(t);
            }
            o
        });
        let hook = Arc::clone(callbacks);
        let mut builder = Client::builder(self.base_url)
            .refresher(Refresher {
                callbacks: Arc::clone(callbacks),
                oauth,
            })
            .on_login_required(move |e| hook.login_required(e));
        if let Some(access) = self.access_token {
            let mut token = Token::new(access);
            if self.expires_in_secs > 0 {
                token = token.with_expires_in(Duration::from_secs(self.expires_in_secs));
            }
            if let Some(r) = self.refresh_token {
                token = token.with_refresh_token(r);
            }
            builder = builder.token(token);
        }
        if let Some(w) = ms(self.refresh_before_expiry_ms) {
            builder = builder.refresh_before_expiry(w);
        }
        if let Some(t) = ms(self.refresh_timeout_ms) {
            builder = builder.refresh_timeout(t);
        }
        if let Some(t) = ms(self.connect_timeout_ms) {
            builder = builder.connect_timeout(t);
        }
        if let Some(t) = ms(self.response_timeout_ms) {
            builder = builder.response_timeout(t);
        }
        if let Some(w) = ms(self.refresh_ahead_ms) {
            builder = builder.refresh_ahead(w);
        }
        if let Some(path) = self.token_file {
            if path.is_empty() {
                return Err(Failure::invalid("token_file is empty"));
            }
            builder = builder.store(FileStore::new(path));
        }
        Ok(builder
            .background_refresh(self.background_refresh)
            .build()?)
    }
}
