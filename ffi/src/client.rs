//! `tokengate_client`: create, request, set a token, register callbacks, read stats, free.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use tokengate::Client;
use tokengate::http::Method;

use crate::boundary::{self, Failure, ffi_boundary};
use crate::callbacks::{Callbacks, tokengate_login_required_callback, tokengate_refresh_callback};
use crate::config::{Settings, tokengate_config};
use crate::response::tokengate_response;
use crate::result::tokengate_result;
use crate::token::tokengate_token;

/// A client: an HTTP client for one API that keeps its token fresh, with exactly one refresh per
/// expiry however many threads use it.
///
/// Thread safety: every function taking a `const tokengate_client *` may be called from any number
/// of threads at once on the same client. A request blocks only its own thread: on the network, and
/// while another thread refreshes the token (bounded by the refresh timeout). Only
/// `tokengate_client_free()` needs exclusive access: call it once, after every other call on the
/// client has returned.
#[allow(non_camel_case_types)]
pub struct tokengate_client {
    client: Client,
    callbacks: Arc<Callbacks>,
}

/// Counters of what a client did, from `tokengate_client_stats()`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct tokengate_stats {
    /// Refreshes that produced a new token.
    pub refreshes: u64,
    /// Refresh attempts that failed.
    pub refresh_failures: u64,
    /// Times a thread waited for another thread's refresh.
    pub waits: u64,
    /// Requests replayed with a new token after the server rejected the old one.
    pub replays: u64,
}

/// One request header: NUL-terminated UTF-8 name and value, borrowed for the call.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct tokengate_header {
    /// The header name, e.g. `Accept`.
    pub name: *const c_char,
    /// The header value.
    pub value: *const c_char,
}

fn new_client(settings: Settings, client_out: *mut *mut tokengate_client) -> Result<(), Failure> {
    let out = boundary::out(client_out, "client_out")?;
    let callbacks = Arc::new(Callbacks::default());
    let client = settings.build(&callbacks)?;
    let handle = Box::new(tokengate_client { client, callbacks });
    // SAFETY: `out` is non-NULL and the caller promised it is valid for writes.
    unsafe { out.write(Box::into_raw(handle)) };
    Ok(())
}

/// Creates a client from `config`. On success `*client_out` receives a new client, owned by the
/// caller, to be freed with `tokengate_client_free()`; on failure it is left untouched.
///
/// A client without a `token_url` refreshes only through a refresh callback
/// (`tokengate_client_set_refresh_callback()`); with neither, an expired token means
/// `TOKENGATE_RESULT_LOGIN_REQUIRED`.
///
/// # Safety
///
/// - `config` is NULL or a `tokengate_config` whose non-NULL strings are NUL-terminated.
/// - `client_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_new(
    config: *const tokengate_config,
    client_out: *mut *mut tokengate_client,
) -> tokengate_result {
    ffi_boundary! {
        // SAFETY: forwarded from the caller.
        let settings = unsafe { Settings::from_c(boundary::arg(config, "config")?) }?;
        new_client(settings, client_out)
    }
}

/// Creates a client from a JSON object with the fields of `tokengate_config` (same names; omitted
/// = default), e.g. `{"base_url":"https://api.example.com","access_token":"...",
/// "expires_in_secs":3600,"refresh_token":"...","token_url":"https://auth.example.com/token",
/// "client_id":"app"}`. Unknown fields are an error. Ownership as `tokengate_client_new()`.
///
/// # Safety
///
/// - `json` is NULL or NUL-terminated.
/// - `client_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_new_from_json(
    json: *const c_char,
    client_out: *mut *mut tokengate_client,
) -> tokengate_result {
    ffi_boundary! {
        // SAFETY: forwarded from the caller.
        let settings = Settings::from_json(unsafe { boundary::text(json, "json") }?)?;
        new_client(settings, client_out)
    }
}

/// Sends a request and reads the whole response body (at most 10 MiB).
///
/// `method` is an HTTP method (`GET`, `POST`, ...); `path` is joined to the base URL (or is an
/// absolute URL: the token goes only to the base URL's origin). `headers` points to `headers_len`
/// headers (NULL when 0). `body` points to `body_len` bytes, or is NULL for no body. All are
/// borrowed for the call only.
///
/// On success `*response_out` receives a new response, owned by the caller, to be freed with
/// `tokengate_response_free()`. Any HTTP status is a success: a 401 that survived the refresh and
/// one replay is returned as a response. On failure nothing is written.
///
/// May be called from many threads at once on one client.
///
/// # Safety
///
/// - `client` is NULL or a live client.
/// - `method` and `path` are NULL or NUL-terminated.
/// - `headers` is NULL or points to `headers_len` `tokengate_header`s with NUL-terminated strings.
/// - `body` is NULL or points to `body_len` readable bytes.
/// - `response_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_request(
    client: *const tokengate_client,
    method: *const c_char,
    path: *const c_char,
    headers: *const tokengate_header,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
    response_out: *mut *mut tokengate_response,
) -> tokengate_result {
    ffi_boundary! {
        // SAFETY: the pointers are forwarded from the caller's guarantees above.
        let (client, method, path) = unsafe {
            (
                boundary::arg(client, "client")?,
                boundary::text(method, "method")?,
                boundary::text(path, "path")?,
            )
        };
        let headers: &[tokengate_header] = match (headers.is_null(), headers_len) {
            (true, 0) => &[],
            (true, _) => return Err(Failure::null("headers (with a non-zero headers_len)")),
            // SAFETY: non-NULL, pointing to headers_len headers per the caller's guarantee.
            (false, n) => unsafe { std::slice::from_raw_parts(headers, n) },
        };
        let out = boundary::out(response_out, "response_out")?;
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| Failure::invalid("method is not a valid HTTP method"))?;
        let mut request = client.client.request(method, path);
        for h in headers {
            // SAFETY: forwarded from the caller.
            let (name, value) = unsafe {
                (boundary::text(h.name, "header name")?, boundary::text(h.value, "header value")?)
            };
            request = request.header(name, value);
        }
        let response = if body.is_null() {
            if body_len != 0 {
                return Err(Failure::null("body (with a non-zero body_len)"));
            }
            request.call()
        } else {
            // SAFETY: forwarded from the caller.
            request.send(unsafe { boundary::bytes(body, body_len, "body") }?)
        }?;
        let response = tokengate_response::read(response)?;
        // SAFETY: `out` is non-NULL and the caller promised it is valid for writes.
        unsafe { out.write(Box::into_raw(Box::new(response))) };
        Ok(())
    }
}

/// Installs a new token, e.g. after the user logged in again: leaves the login-required state and
/// wakes waiting threads. The strings in `token` are copied before this returns.
///
/// # Safety
///
/// - `client` is NULL or a live client.
/// - `token` is NULL or a `tokengate_token` whose non-NULL strings are NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_set_token(
    client: *const tokengate_client,
    token: *const tokengate_token,
) -> tokengate_result {
    ffi_boundary! {
        // SAFETY: forwarded from the caller.
        let (client, token) = unsafe {
            (boundary::arg(client, "client")?, boundary::arg(token, "token")?.to_token()?)
        };
        Ok(client.client.set_token(token)?)
    }
}

/// Registers the login-required callback (see `tokengate_login_required_callback`), replacing any
/// previous one; a NULL `callback` removes it. `user_data` is passed back to every call; it must be
/// usable from any thread, and stay valid until the callback is replaced or the client is freed.
///
/// When this returns, the previous callback is not running and will not be called again.
///
/// # Safety
///
/// - `client` is NULL or a live client.
/// - `callback` is NULL or a function matching the signature, callable from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_set_login_required_callback(
    client: *const tokengate_client,
    callback: tokengate_login_required_callback,
    user_data: *mut c_void,
) -> tokengate_result {
    ffi_boundary! {
        // SAFETY: forwarded from the caller.
        let client = unsafe { boundary::arg(client, "client") }?;
        client.callbacks.set_login(callback, user_data)
    }
}

/// Registers a refresh callback (see `tokengate_refresh_callback`) for APIs that do not speak
/// OAuth2, replacing any previous one; while one is registered it is used instead of the OAuth2
/// `token_url`. A NULL `callback` removes it. `user_data` as for
/// `tokengate_client_set_login_required_callback()`, and the same guarantee on return.
///
/// # Safety
///
/// - `client` is NULL or a live client.
/// - `callback` is NULL or a function matching the signature, callable from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_set_refresh_callback(
    client: *const tokengate_client,
    callback: tokengate_refresh_callback,
    user_data: *mut c_void,
) -> tokengate_result {
    ffi_boundary! {
        // SAFETY: forwarded from the caller.
        let client = unsafe { boundary::arg(client, "client") }?;
        client.callbacks.set_refresh(callback, user_data)
    }
}

/// Writes the client's counters to `*stats_out`.
///
/// # Safety
///
/// - `client` is NULL or a live client.
/// - `stats_out` is NULL or valid for writing one `tokengate_stats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_stats(
    client: *const tokengate_client,
    stats_out: *mut tokengate_stats,
) -> tokengate_result {
    ffi_boundary! {
        // SAFETY: forwarded from the caller.
        let client = unsafe { boundary::arg(client, "client") }?;
        let out = boundary::out(stats_out, "stats_out")?;
        let s = client.client.stats();
        let stats = tokengate_stats {
            refreshes: s.refreshes,
            refresh_failures: s.refresh_failures,
            waits: s.waits,
            replays: s.replays,
        };
        // SAFETY: `out` is non-NULL and the caller promised it is valid for writes.
        unsafe { out.write(stats) };
        Ok(())
    }
}

/// Frees a client. NULL is a no-op. Call it once, after every other call on this client (on any
/// thread) has returned; in-flight callbacks must have returned too.
///
/// # Safety
///
/// - `client` is NULL or a client from `tokengate_client_new*()` not freed yet, and not used
///   afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_free(client: *mut tokengate_client) {
    boundary::guard((), || {
        if !client.is_null() {
            // SAFETY: the caller hands back ownership of the Box it got from tokengate_client_new*.
            drop(unsafe { Box::from_raw(client) });
        }
    });
}
