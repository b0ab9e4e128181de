//! `tokengate_client_builder`: everything needed to build a client, one setter at a time.
//!
//! An opaque builder instead of a struct of settings: a setter added in a later version is a new
//! function, so a program built against an older header keeps working with a newer library (a
//! by-value struct would be read past its end).

use std::ffi::{c_char, c_int};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokengate::{Client, ClientAuth, FileStore, Network, OAuth2, Roots, Token};

use crate::boundary::{self, Failure, ffi_boundary};
use crate::callbacks::{Callbacks, Refresher};
use crate::client::tokengate_client;
use crate::error::tokengate_error;
use crate::result::tokengate_result;
use crate::token::tokengate_token;

/// An OAuth2 grant: one of the `TOKENGATE_GRANT_*` values.
#[allow(non_camel_case_types)]
pub type tokengate_grant = u32;
/// The refresh_token grant (RFC 6749 §6): trades the refresh token for a new access token.
pub const TOKENGATE_GRANT_REFRESH_TOKEN: tokengate_grant = 1;
/// The client_credentials grant (RFC 6749 §4.4): the client gets tokens with its own
/// credentials; no refresh token and no starting token are needed.
pub const TOKENGATE_GRANT_CLIENT_CREDENTIALS: tokengate_grant = 2;

/// How the client authenticates to the token endpoint: one of the `TOKENGATE_CLIENT_AUTH_*`
/// values.
#[allow(non_camel_case_types)]
pub type tokengate_client_auth = u32;
/// HTTP Basic with the client id and secret (RFC 6749 §2.3.1).
pub const TOKENGATE_CLIENT_AUTH_BASIC: tokengate_client_auth = 1;
/// `client_id` and `client_secret` as form parameters in the request body.
pub const TOKENGATE_CLIENT_AUTH_BODY: tokengate_client_auth = 2;

/// The certificates a server's certificate must chain to: one of the `TOKENGATE_ROOTS_*` values.
/// CA certificates added with `tokengate_client_builder_add_root_certificates_file()` are trusted
/// in addition.
#[allow(non_camel_case_types)]
pub type tokengate_roots = u32;
/// The operating system's trust store (on Linux the distribution's bundle, honouring
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`): the same trust as the user's browser and `curl`.
pub const TOKENGATE_ROOTS_PLATFORM: tokengate_roots = 1;
/// The Mozilla root program's certificates compiled into the library: the same everywhere, blind
/// to certificates the administrator installed.
pub const TOKENGATE_ROOTS_BUNDLED: tokengate_roots = 2;
/// No built-in roots: only the added CA certificates are trusted (what `curl --cacert` does).
pub const TOKENGATE_ROOTS_ADDED_ONLY: tokengate_roots = 3;

/// Where the proxies come from.
#[derive(Clone, Debug)]
enum Proxy {
    Environment,
    Url(String),
    Direct,
}

/// How the client gets its first token.
#[derive(Clone)]
enum Start {
    /// From the token file, when there is one; else none.
    Nothing,
    Token(Token),
    RefreshToken(String),
}

/// Builds a client: create it with `tokengate_client_builder_new()`, call the setters you need,
/// then `tokengate_client_builder_build()` (as often as you like), and free it with
/// `tokengate_client_builder_free()`.
///
/// Every setter copies what it is given and states its default. A builder is not thread-safe: use
/// it from one thread at a time.
#[allow(non_camel_case_types)]
pub struct tokengate_client_builder {
    base_url: String,
    start: Start,
    oauth: Option<(tokengate_grant, String)>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_auth: Option<ClientAuth>,
    scope: Option<String>,
    revocation_url: Option<String>,
    token_params: Vec<(String, String)>,
    token_timeout: Option<Duration>,
    refresh_before_expiry: Option<Duration>,
    refresh_ahead: Option<Duration>,
    refresh_timeout: Option<Duration>,
    refresh_backoff: Option<(Duration, Duration)>,
    background_refresh: bool,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    response_timeout: Option<Duration>,
    token_file: Option<String>,
    roots: Option<Roots>,
    ca_files: Vec<String>,
    client_certificate: Option<(String, String)>,
    proxy: Proxy,
    no_proxy: Option<String>,
    /// A setting only the ABI-growth test's build has (see `abi_probe.rs`): written, never read,
    /// as a new setting an old program does not know about.
    #[cfg(feature = "abi-probe")]
    #[allow(dead_code)]
    pub(crate) abi_probe: u64,
}

impl tokengate_client_builder {
    fn new(base_url: &str) -> tokengate_client_builder {
        tokengate_client_builder {
            base_url: base_url.to_owned(),
            start: Start::Nothing,
            oauth: None,
            client_id: None,
            client_secret: None,
            client_auth: None,
            scope: None,
            revocation_url: None,
            token_params: Vec::new(),
            token_timeout: None,
            refresh_before_expiry: None,
            refresh_ahead: None,
            refresh_timeout: None,
            refresh_backoff: None,
            background_refresh: false,
            timeout: None,
            connect_timeout: None,
            response_timeout: None,
            token_file: None,
            roots: None,
            ca_files: Vec::new(),
            client_certificate: None,
            proxy: Proxy::Environment,
            no_proxy: None,
            #[cfg(feature = "abi-probe")]
            abi_probe: 0,
        }
    }

    /// The network settings, for the client and its OAuth2 refresher alike.
    fn network(&self) -> Network {
        let mut network = Network::new();
        if let Some(roots) = self.roots {
            network = network.roots(roots);
        }
        for file in &self.ca_files {
            network = network.add_root_certificates_pem_file(file);
        }
        if let Some((chain, key)) = &self.client_certificate {
            network = network.client_certificate_pem_files(chain, key);
        }
        network = match &self.proxy {
            Proxy::Environment => network,
            Proxy::Url(url) => network.proxy(url),
            Proxy::Direct => network.no_proxies(),
        };
        if let Some(list) = &self.no_proxy {
            network = network.no_proxy(list);
        }
        network
    }

    /// The OAuth2 refresher, when a token endpoint was set.
    fn oauth(&self, network: &Network) -> Result<Option<OAuth2>, Failure> {
        let Some((grant, url)) = &self.oauth else {
            let grant_settings = self.client_id.is_some()
                || self.client_secret.is_some()
                || self.client_auth.is_some()
                || self.scope.is_some()
                || self.revocation_url.is_some()
                || !self.token_params.is_empty()
                || self.token_timeout.is_some();
            if grant_settings {
                return Err(Failure::from(tokengate::Error::Config(Arc::from(
                    "client id, secret, client authentication, scope, revocation URL, token \
                     parameters and token timeout need a token endpoint: call \
                     tokengate_client_builder_set_oauth2()",
                ))));
            }
            return Ok(None);
        };
        let mut o = match *grant {
            TOKENGATE_GRANT_CLIENT_CREDENTIALS => OAuth2::client_credentials(url),
            _ => OAuth2::refresh_token(url),
        };
        o = o.network(network.clone());
        if let Some(id) = &self.client_id {
            o = o.client_id(id);
        }
        if let Some(secret) = &self.client_secret {
            o = o.client_secret(secret);
        }
        if let Some(auth) = self.client_auth {
            o = o.client_auth(auth);
        }
        if let Some(scope) = &self.scope {
            o = o.scope(scope);
        }
        if let Some(url) = &self.revocation_url {
            o = o.revocation_url(url);
        }
        for (name, value) in &self.token_params {
            o = o.extra_param(name, value);
        }
        if let Some(t) = self.token_timeout {
            o = o.timeout(t);
        }
        Ok(Some(o))
    }

    /// Builds the client, wiring the refresher and the hooks to `callbacks`.
    pub(crate) fn build(&self, callbacks: &Arc<Callbacks>) -> Result<Client, Failure> {
        let network = self.network();
        let oauth = self.oauth(&network)?;
        let (on_login, on_refresh) = (Arc::clone(callbacks), Arc::clone(callbacks));
        let mut builder = Client::builder(&self.base_url)
            .network(network)
            .refresher(Refresher {
                callbacks: Arc::clone(callbacks),
                oauth,
            })
            .on_login_required(move |e| on_login.login_required(e))
            .on_refresh(move |t| on_refresh.refreshed(t))
            .background_refresh(self.background_refresh)
            .timeout(self.timeout);
        match &self.start {
            Start::Nothing => {}
            Start::Token(token) => builder = builder.token(token.clone()),
            Start::RefreshToken(refresh) => {
                // A token that expired long ago: the first request refreshes it before anything
                // is sent, and the placeholder access token is never used.
                builder = builder.token(
                    Token::new("")
                        .with_expires_at_wall(SystemTime::UNIX_EPOCH)
                        .with_refresh_token(refresh),
                );
            }
        }
        if let Some(w) = self.refresh_before_expiry {
            builder = builder.refresh_before_expiry(w);
        }
        if let Some(w) = self.refresh_ahead {
            builder = builder.refresh_ahead(w);
        }
        if let Some(t) = self.refresh_timeout {
            builder = builder.refresh_timeout(t);
        }
        if let Some((initial, max)) = self.refresh_backoff {
            builder = builder.refresh_backoff(initial, max);
        }
        if let Some(t) = self.connect_timeout {
            builder = builder.connect_timeout(t);
        }
        if let Some(t) = self.response_timeout {
            builder = builder.response_timeout(t);
        }
        if let Some(path) = &self.token_file {
            builder = builder.store(FileStore::new(path));
        }
        Ok(builder.build()?)
    }
}

/// Runs `f` on the builder behind `builder` (NULL: `TOKENGATE_RESULT_NULL_ARGUMENT`).
///
/// # Safety
///
/// `builder` is NULL or a live builder not in use by another thread.
unsafe fn with_builder(
    builder: *mut tokengate_client_builder,
    f: impl FnOnce(&mut tokengate_client_builder) -> Result<(), Failure>,
) -> Result<(), Failure> {
    // SAFETY: forwarded from the caller.
    f(unsafe { boundary::arg_mut(builder, "builder") }?)
}

/// A string setting: required, UTF-8, copied.
///
/// # Safety
///
/// `builder` as for [`with_builder`]; `value` is NULL or NUL-terminated.
unsafe fn set_text(
    builder: *mut tokengate_client_builder,
    value: *const c_char,
    what: &str,
    f: impl FnOnce(&mut tokengate_client_builder, String),
) -> Result<(), Failure> {
    // SAFETY: forwarded from the caller.
    unsafe {
        with_builder(builder, |b| {
            let value = boundary::text(value, what)?.to_owned();
            f(b, value);
            Ok(())
        })
    }
}

/// A duration setting in milliseconds that must not be 0.
///
/// # Safety
///
/// `builder` as for [`with_builder`].
unsafe fn set_positive_ms(
    builder: *mut tokengate_client_builder,
    ms: u64,
    what: &str,
    f: impl FnOnce(&mut tokengate_client_builder, Duration),
) -> Result<(), Failure> {
    // SAFETY: forwarded from the caller.
    unsafe {
        with_builder(builder, |b| {
            if ms == 0 {
                return Err(Failure::invalid(format!("{what} must be at least 1 ms")));
            }
            f(b, boundary::millis(ms));
            Ok(())
        })
    }
}

/// Creates a builder for a client of the API at `base_url` (e.g. `https://api.example.com/v1`).
/// Request paths are joined to it, and the token is sent only to its origin (scheme, host and
/// port); see ffi/README.md for the joining rules. The URL is checked by
/// `tokengate_client_builder_build()`. On success `*builder_out` receives a builder the caller owns
/// (free it with `tokengate_client_builder_free()`).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`base_url` or `builder_out` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`base_url` is not UTF-8).
///
/// # Safety
///
/// - `base_url` is NULL or NUL-terminated.
/// - `builder_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_new(
    base_url: *const c_char,
    builder_out: *mut *mut tokengate_client_builder,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let base_url = unsafe { boundary::text(base_url, "base_url") }?;
        let out = boundary::out(builder_out, "builder_out")?;
        let builder = Box::new(tokengate_client_builder::new(base_url));
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(builder)) };
        Ok(())
    })
}

/// Builds a client from the builder's settings. On success `*client_out` receives a new client
/// the caller owns (free it with `tokengate_client_free()`). The builder is left as it was: free it
/// when you are done, or build more clients from it.
///
/// Files (CA certificates, client certificate and key, the token file) are read and checked now,
/// so a problem is reported here rather than at the first request.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` or `client_out` is NULL),
/// `TOKENGATE_RESULT_INVALID_URL` (the base URL or the token endpoint URL is not an absolute http(s)
/// URL), `TOKENGATE_RESULT_CONFIG` (a plain-http token endpoint off loopback; grant settings
/// without a token endpoint; a CA or client certificate file that cannot be read or used;
/// `TOKENGATE_ROOTS_ADDED_ONLY` without added CA certificates; an unusable proxy URL),
/// `TOKENGATE_RESULT_INVALID_TOKEN` (the starting token cannot be sent in an HTTP header),
/// `TOKENGATE_RESULT_STORE` (the token file is empty, garbled or of another format version; it is
/// left untouched).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `client_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_build(
    builder: *const tokengate_client_builder,
    client_out: *mut *mut tokengate_client,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let builder = unsafe { boundary::arg(builder, "builder") }?;
        let out = boundary::out(client_out, "client_out")?;
        let client = tokengate_client::build(builder)?;
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(Box::new(client))) };
        Ok(())
    })
}

/// Frees a builder. NULL is a no-op. Clients built from it are not affected.
///
/// # Safety
///
/// - `builder` is NULL or a builder from `tokengate_client_builder_new()`, not freed yet, and not
///   used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_free(builder: *mut tokengate_client_builder) {
    boundary::guard((), || {
        if !builder.is_null() {
            // SAFETY: the caller hands back ownership of the Box from tokengate_client_builder_new.
            drop(unsafe { Box::from_raw(builder) });
        }
    });
}

/// Sets the starting token, as after a login (copied). Replaces a refresh token given to
/// `tokengate_client_builder_set_refresh_token()`. With a token file, this token is used instead of
/// the saved one. Defaults to none: the token file's token, or no token (the first request then
/// refreshes with the client_credentials grant, or fails with `TOKENGATE_RESULT_LOGIN_REQUIRED`).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` or `token` is NULL).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread; `token` is NULL or a live
///   token.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_token(
    builder: *mut tokengate_client_builder,
    token: *const tokengate_token,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                let token = boundary::arg(token, "token")?;
                b.start = Start::Token(token.token().clone());
                Ok(())
            })
        }
    })
}

/// Starts from a refresh token alone (one saved from an earlier run, or from a login flow): the
/// first request gets an access token with the refresh_token grant (or the refresh callback)
/// before anything is sent to the API. Replaces a token given to
/// `tokengate_client_builder_set_token()`. Defaults to none.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` or `refresh_token` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`refresh_token` is empty or not UTF-8).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `refresh_token` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one
///   pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_refresh_token(
    builder: *mut tokengate_client_builder,
    refresh_token: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                let refresh = boundary::text(refresh_token, "refresh_token")?;
                if refresh.is_empty() {
                    return Err(Failure::invalid("refresh_token is empty"));
                }
                b.start = Start::RefreshToken(refresh.to_owned());
                Ok(())
            })
        }
    })
}

/// Refreshes with an OAuth2 grant (`TOKENGATE_GRANT_REFRESH_TOKEN` or
/// `TOKENGATE_GRANT_CLIENT_CREDENTIALS`) at the token endpoint `token_url`, which must be https
/// unless it is on loopback. A registered refresh callback (`tokengate_client_set_refresh_callback()`)
/// takes precedence while it is registered. Defaults to none: only a refresh callback can get new
/// tokens.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` or `token_url` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (an unknown `grant`, or `token_url` is not UTF-8).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `token_url` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_oauth2(
    builder: *mut tokengate_client_builder,
    grant: tokengate_grant,
    token_url: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                let url = boundary::text(token_url, "token_url")?;
                if !matches!(
                    grant,
                    TOKENGATE_GRANT_REFRESH_TOKEN | TOKENGATE_GRANT_CLIENT_CREDENTIALS
                ) {
                    return Err(Failure::invalid(format!(
                        "grant {grant} is not a TOKENGATE_GRANT_* value"
                    )));
                }
                b.oauth = Some((grant, url.to_owned()));
                Ok(())
            })
        }
    })
}

/// Sets the OAuth2 client identifier (RFC 6749 §2.2). Defaults to none.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` or `client_id` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`client_id` is not UTF-8).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `client_id` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_client_id(
    builder: *mut tokengate_client_builder,
    client_id: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_text(builder, client_id, "client_id", |b, v| {
                b.client_id = Some(v)
            })
        }
    })
}

/// Sets the OAuth2 client secret (RFC 6749 §2.3.1). It never appears in an error message or
/// event. Defaults to none (a public client, which sends its `client_id` in the body).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` or `client_secret` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`client_secret` is not UTF-8).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `client_secret` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one
///   pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_client_secret(
    builder: *mut tokengate_client_builder,
    client_secret: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_text(builder, client_secret, "client_secret", |b, v| {
                b.client_secret = Some(v);
            })
        }
    })
}

/// Sets how the client authenticates to the token endpoint: `TOKENGATE_CLIENT_AUTH_BASIC` or
/// `TOKENGATE_CLIENT_AUTH_BODY`. Defaults to `TOKENGATE_CLIENT_AUTH_BASIC` when there is a secret.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (an unknown `client_auth`).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_client_auth(
    builder: *mut tokengate_client_builder,
    client_auth: tokengate_client_auth,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                b.client_auth = Some(match client_auth {
                    TOKENGATE_CLIENT_AUTH_BASIC => ClientAuth::Basic,
                    TOKENGATE_CLIENT_AUTH_BODY => ClientAuth::RequestBody,
                    other => {
                        return Err(Failure::invalid(format!(
                            "client_auth {other} is not a TOKENGATE_CLIENT_AUTH_* value"
                        )));
                    }
                });
                Ok(())
            })
        }
    })
}

/// Sets the scope to request from the token endpoint (RFC 6749 §3.3), space-separated. Defaults to
/// none (the server keeps the scope of the original grant).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` or `scope` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`scope` is not UTF-8).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `scope` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_scope(
    builder: *mut tokengate_client_builder,
    scope: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe { set_text(builder, scope, "scope", |b, v| b.scope = Some(v)) }
    })
}

/// Sets the authorization server's revocation endpoint (RFC 7009), where
/// `tokengate_client_logout()` revokes the refresh token. It is checked like the token URL when the
/// client is built (https, or http on a loopback address). Defaults to none: a logout then only
/// forgets the token here and in the token file.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` or `url` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`url` is not UTF-8).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `url` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_revocation_url(
    builder: *mut tokengate_client_builder,
    url: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe { set_text(builder, url, "url", |b, v| b.revocation_url = Some(v)) }
    })
}

/// Adds a form parameter to every token request (e.g. `audience` or `resource`). Defaults to none.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder`, `name` or `value` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`name` or `value` is not UTF-8).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `name` and `value` are NULL or NUL-terminated; `error_out` is NULL or valid for writing one
///   pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_add_token_param(
    builder: *mut tokengate_client_builder,
    name: *const c_char,
    value: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                let (name, value) = (
                    boundary::text(name, "name")?,
                    boundary::text(value, "value")?,
                );
                b.token_params.push((name.to_owned(), value.to_owned()));
                Ok(())
            })
        }
    })
}

/// Sets the timeout of one token request, connect to last byte, in milliseconds. Keep it below
/// the refresh timeout. Defaults to 8 seconds.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` is NULL), `TOKENGATE_RESULT_INVALID_ARGUMENT`
/// (`timeout_ms` is 0).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_token_timeout_ms(
    builder: *mut tokengate_client_builder,
    timeout_ms: u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_positive_ms(builder, timeout_ms, "timeout_ms", |b, d| {
                b.token_timeout = Some(d);
            })
        }
    })
}

/// Sets the mandatory refresh window: a token this close to its expiry is refreshed before it is
/// used, and requests wait for that refresh. Defaults to 60 seconds, or a tenth of the token's
/// lifetime when that is shorter.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` is NULL).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_refresh_before_expiry_ms(
    builder: *mut tokengate_client_builder,
    window_ms: u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                b.refresh_before_expiry = Some(boundary::millis(window_ms));
                Ok(())
            })
        }
    })
}

/// Sets the advisory window: this close to expiry, a refresh starts on a tokengate thread while
/// requests go on with the still-valid token. A value below the mandatory window (e.g. 0) turns
/// the head start off. Defaults to 5 minutes, or a fifth of the token's lifetime when that is
/// shorter.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` is NULL).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_refresh_ahead_ms(
    builder: *mut tokengate_client_builder,
    window_ms: u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                b.refresh_ahead = Some(boundary::millis(window_ms));
                Ok(())
            })
        }
    })
}

/// Sets the budget of a request for getting a token: waiting for another thread's refresh and
/// through the backoff after a transient failure. Past it the request fails with
/// `TOKENGATE_RESULT_REFRESH_TIMEOUT` (or the refresh failure). Defaults to 10 seconds.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` is NULL), `TOKENGATE_RESULT_INVALID_ARGUMENT`
/// (`timeout_ms` is 0).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_refresh_timeout_ms(
    builder: *mut tokengate_client_builder,
    timeout_ms: u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_positive_ms(builder, timeout_ms, "timeout_ms", |b, d| {
                b.refresh_timeout = Some(d);
            })
        }
    })
}

/// Sets the backoff after a failed refresh, in milliseconds: `initial_ms` after the first transient
/// failure, growing by half per failure in a row up to `max_ms` (raised to `initial_ms` when
/// lower), each delay jittered down by up to half and none longer than the refresh timeout. A
/// server's `Retry-After` is honoured up to `max_ms`; a configuration failure waits `max_ms`.
/// Delays are never shorter than 10 ms. Defaults to 250 milliseconds and 5 seconds.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` is NULL).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_refresh_backoff_ms(
    builder: *mut tokengate_client_builder,
    initial_ms: u64,
    max_ms: u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                b.refresh_backoff = Some((boundary::millis(initial_ms), boundary::millis(max_ms)));
                Ok(())
            })
        }
    })
}

/// Non-zero `enabled` starts a background thread that refreshes the token when the advisory window
/// opens, before any request needs it; `tokengate_client_free()` stops and joins it. Defaults to
/// 0: the first request in the advisory window starts the refresh on a short-lived thread.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` is NULL).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_background_refresh(
    builder: *mut tokengate_client_builder,
    enabled: c_int,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                b.background_refresh = enabled != 0;
                Ok(())
            })
        }
    })
}

/// Sets an overall timeout for each API request, from connecting to the end of the response body.
/// 0 removes it. A deadline of one request that also bounds its wait for a token is
/// `tokengate_request_set_timeout_ms()`. Defaults to none: the connect and response timeouts bound
/// a request, and a large download takes as long as it needs.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` is NULL).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_timeout_ms(
    builder: *mut tokengate_client_builder,
    timeout_ms: u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                b.timeout = (timeout_ms > 0).then(|| boundary::millis(timeout_ms));
                Ok(())
            })
        }
    })
}

/// Sets the connect timeout of API requests. Defaults to 10 seconds.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` is NULL), `TOKENGATE_RESULT_INVALID_ARGUMENT`
/// (`timeout_ms` is 0).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_connect_timeout_ms(
    builder: *mut tokengate_client_builder,
    timeout_ms: u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_positive_ms(builder, timeout_ms, "timeout_ms", |b, d| {
                b.connect_timeout = Some(d);
            })
        }
    })
}

/// Sets how long to wait for an API response's head once the request is sent. Defaults to 60
/// seconds.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` is NULL), `TOKENGATE_RESULT_INVALID_ARGUMENT`
/// (`timeout_ms` is 0).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_response_timeout_ms(
    builder: *mut tokengate_client_builder,
    timeout_ms: u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_positive_ms(builder, timeout_ms, "timeout_ms", |b, d| {
                b.response_timeout = Some(d);
            })
        }
    })
}

/// Keeps the token in a file (NUL-terminated UTF-8 path) between runs and shares it with every
/// other client and process using the same path: each refresh runs under an exclusive lock on
/// `<path>.lock`, re-reads the file, adopts a token another process already refreshed, and writes
/// the new token atomically (mode 0600 on Unix) before the lock is released. Without a starting
/// token the client starts from the file (a missing file: no token yet). ffi/README.md has the
/// rules. Defaults to none (the token lives in memory).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` or `path` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`path` is empty or not UTF-8).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `path` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_token_file(
    builder: *mut tokengate_client_builder,
    path: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                let path = boundary::text(path, "path")?;
                if path.is_empty() {
                    return Err(Failure::invalid("path is empty"));
                }
                b.token_file = Some(path.to_owned());
                Ok(())
            })
        }
    })
}

/// Sets the built-in trust anchors: `TOKENGATE_ROOTS_PLATFORM` (the operating system's trust
/// store), `TOKENGATE_ROOTS_BUNDLED` (the Mozilla roots compiled in) or
/// `TOKENGATE_ROOTS_ADDED_ONLY`. Applies to the API and the token endpoint. Defaults to
/// `TOKENGATE_ROOTS_PLATFORM`.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (an unknown `roots`).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_roots(
    builder: *mut tokengate_client_builder,
    roots: tokengate_roots,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                b.roots = Some(match roots {
                    TOKENGATE_ROOTS_PLATFORM => Roots::Platform,
                    TOKENGATE_ROOTS_BUNDLED => Roots::WebPki,
                    TOKENGATE_ROOTS_ADDED_ONLY => Roots::AddedOnly,
                    other => {
                        return Err(Failure::invalid(format!(
                            "roots {other} is not a TOKENGATE_ROOTS_* value"
                        )));
                    }
                });
                Ok(())
            })
        }
    })
}

/// Trusts the CA certificates of a PEM file as well (one or more `BEGIN CERTIFICATE` blocks), e.g.
/// a company's private root, for the API and the token endpoint. Read when the client is built.
/// May be called more than once. Defaults to none.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` or `path` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`path` is not UTF-8).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `path` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_add_root_certificates_file(
    builder: *mut tokengate_client_builder,
    path: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe { set_text(builder, path, "path", |b, v| b.ca_files.push(v)) }
    })
}

/// Presents a client certificate (mutual TLS; RFC 8705 client authentication at a token
/// endpoint): `chain_path` is a PEM file with the certificate and any intermediates, `key_path` a
/// PEM file with its private key (PKCS#8, PKCS#1 or SEC1; the same file as the chain is fine). Read
/// and checked against each other when the client is built. Defaults to none.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder`, `chain_path` or `key_path` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (a path is not UTF-8).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `chain_path` and `key_path` are NULL or NUL-terminated; `error_out` is NULL or valid for
///   writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_client_certificate_files(
    builder: *mut tokengate_client_builder,
    chain_path: *const c_char,
    key_path: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                let chain = boundary::text(chain_path, "chain_path")?;
                let key = boundary::text(key_path, "key_path")?;
                b.client_certificate = Some((chain.to_owned(), key.to_owned()));
                Ok(())
            })
        }
    })
}

/// Sends every request (API and token endpoint) through this proxy: `http://host:port`,
/// `https://...`, `socks5://...` or `socks5h://...`, optionally with percent-encoded
/// `user:password@`; the environment is then not read. Checked when the client is built. Defaults
/// to the environment's proxies, read as curl reads them (`https_proxy`, `http_proxy`,
/// `all_proxy`, `no_proxy`, upper or lower case).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` or `url` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`url` is not UTF-8).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `url` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_proxy(
    builder: *mut tokengate_client_builder,
    url: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe { set_text(builder, url, "url", |b, v| b.proxy = Proxy::Url(v)) }
    })
}

/// Connects directly, whatever the environment says (and forgets a proxy set with
/// `tokengate_client_builder_set_proxy()`). Defaults to the environment's proxies.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` is NULL).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_disable_proxies(
    builder: *mut tokengate_client_builder,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_builder(builder, |b| {
                b.proxy = Proxy::Direct;
                Ok(())
            })
        }
    })
}

/// Sets the hosts reached without a proxy, replacing `no_proxy`/`NO_PROXY`: a comma-separated list
/// of host names (each also matching its subdomains), IP addresses, CIDR ranges (`10.0.0.0/8`),
/// optionally with `:port`, or `*` for all. Defaults to the environment's list when proxies come
/// from the environment, none otherwise.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`builder` or `list` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`list` is not UTF-8).
///
/// # Safety
///
/// - `builder` is NULL or a live builder not in use by another thread.
/// - `list` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_builder_set_no_proxy(
    builder: *mut tokengate_client_builder,
    list: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe { set_text(builder, list, "list", |b, v| b.no_proxy = Some(v)) }
    })
}
