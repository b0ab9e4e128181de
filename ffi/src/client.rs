//! `tokengate_client`: requests, the token, callbacks, stats, free.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use parking_lot::Mutex;
use tokengate::Client;

use crate::boundary::{self, Failure, ffi_boundary};
use crate::builder::tokengate_client_builder;
use crate::callbacks::{
    Callbacks, tokengate_event_callback, tokengate_login_required_callback,
    tokengate_on_refresh_callback, tokengate_refresh_callback,
};
use crate::error::tokengate_error;
use crate::events::Dispatcher;
use crate::request::{Prepared, tokengate_header};
use crate::response::tokengate_response;
use crate::result::{self, tokengate_result};
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
    /// `None` only while `tokengate_client_free()` takes the client apart.
    client: Option<Client>,
    callbacks: Arc<Callbacks>,
    /// The event thread, started by the first event callback.
    dispatcher: Mutex<Option<Dispatcher>>,
}

impl tokengate_client {
    pub(crate) fn build(builder: &tokengate_client_builder) -> Result<tokengate_client, Failure> {
        let callbacks = Arc::new(Callbacks::default());
        let client = builder.build(&callbacks)?;
        Ok(tokengate_client {
            client: Some(client),
            callbacks,
            dispatcher: Mutex::new(None),
        })
    }

    fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the client is only taken apart by tokengate_client_free")
    }
}

/// Counters of what a client did, from `tokengate_client_stats()`.
///
/// Fields are only ever added at the end; `tokengate_client_stats()` is told the size of the
/// struct the program has, and writes only that much, so a program built against an older header
/// keeps working with a newer library.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct tokengate_stats {
    /// Refreshes that produced a new token.
    pub refreshes: u64,
    /// Refresh attempts that failed (any kind).
    pub refresh_failures: u64,
    /// Requests that waited for a refresh (or the end of a backoff).
    pub waits: u64,
    /// Requests replayed with a new token after the server rejected the old one.
    pub replays: u64,
    /// Events that the event thread's queue could not take (it holds 64).
    pub events_dropped: u64,
    /// Refreshes skipped because the token file already held a newer token (another client or
    /// process had refreshed); that token was adopted.
    pub adopted: u64,
    /// Refreshed tokens that could not be written to the token file.
    pub store_errors: u64,
}

/// The size of `tokengate_stats` in the first version of this ABI: the smallest `stats_size`
/// `tokengate_client_stats()` accepts.
pub const TOKENGATE_STATS_MIN_SIZE: usize = 56;

/// Sends a request and returns the response with its body not read yet (read it with
/// `tokengate_response_body()` or `tokengate_response_read()`). For a deadline, query parameters
/// or a request used more than once, see `tokengate_request_new()` and `tokengate_client_send()`.
///
/// `method` is an HTTP method in upper case (`GET`, `POST`, ...; `"get"` is refused); `path` is
/// joined to the base URL (or is an absolute URL: the token goes only to the base URL's origin).
/// `headers` points to `headers_len` headers (NULL when 0). `body` points to `body_len` bytes, or is
/// NULL for no body. All are borrowed for the call only.
///
/// On success `*response_out` receives a new response the caller owns (free it with
/// `tokengate_response_free()`). Any HTTP status is a success: a 401 that survived the refresh and
/// one replay is returned as a response. May be called from many threads at once on one client.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`client`, `method`, `path` or `response_out` is NULL,
/// or `headers`/`body` is NULL with a non-zero length), `TOKENGATE_RESULT_INVALID_ARGUMENT`
/// (`method` is not upper-case token characters, or a string is not UTF-8),
/// `TOKENGATE_RESULT_INVALID_HEADER` (a header name or value is not valid HTTP),
/// `TOKENGATE_RESULT_INVALID_URL` (the joined URL does not parse), and what the request met:
/// `TOKENGATE_RESULT_LOGIN_REQUIRED`, `TOKENGATE_RESULT_REFRESH_FAILED`,
/// `TOKENGATE_RESULT_REFRESH_TIMEOUT`, `TOKENGATE_RESULT_CONFIG` (the token endpoint refused the
/// client), `TOKENGATE_RESULT_TRANSPORT`, `TOKENGATE_RESULT_TLS`, `TOKENGATE_RESULT_PROXY`.
///
/// # Safety
///
/// - `client` is NULL or a live client.
/// - `method` and `path` are NULL or NUL-terminated.
/// - `headers` is NULL or points to `headers_len` `tokengate_header`s with NUL-terminated strings.
/// - `body` is NULL or points to `body_len` readable bytes.
/// - `response_out` and `error_out` are NULL or valid for writing one pointer.
#[allow(clippy::too_many_arguments)]
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
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: the pointers are forwarded from the caller's guarantees above.
        let (client, prepared) = unsafe {
            (
                boundary::arg(client, "client")?,
                Prepared::from_parts(method, path, headers, headers_len, body, body_len)?,
            )
        };
        let out = boundary::out(response_out, "response_out")?;
        let response = prepared.send(client.client())?;
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(Box::new(response))) };
        Ok(())
    })
}

/// Sends a request built with `tokengate_request_new()` (borrowed: it may be sent again, from any
/// thread). Otherwise as `tokengate_client_request()`.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`client`, `request` or `response_out` is NULL),
/// `TOKENGATE_RESULT_INVALID_URL` (the joined URL does not parse), `TOKENGATE_RESULT_DEADLINE` (the
/// request's own timeout passed), and what the request met: `TOKENGATE_RESULT_LOGIN_REQUIRED`,
/// `TOKENGATE_RESULT_REFRESH_FAILED`, `TOKENGATE_RESULT_REFRESH_TIMEOUT`,
/// `TOKENGATE_RESULT_CONFIG`, `TOKENGATE_RESULT_TRANSPORT`, `TOKENGATE_RESULT_TLS`,
/// `TOKENGATE_RESULT_PROXY`.
///
/// # Safety
///
/// - `client` is NULL or a live client; `request` is NULL or a live request not being changed by
///   another thread.
/// - `response_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_send(
    client: *const tokengate_client,
    request: *const crate::request::tokengate_request,
    response_out: *mut *mut tokengate_response,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (client, request) = unsafe {
            (
                boundary::arg(client, "client")?,
                boundary::arg(request, "request")?,
            )
        };
        let out = boundary::out(response_out, "response_out")?;
        let response = request.prepared().send(client.client())?;
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(Box::new(response))) };
        Ok(())
    })
}

/// Copies out a usable token, e.g. to hand to a websocket or gRPC library: the current one, or a
/// new one when the current one is expired or within the mandatory window (refreshing exactly as a
/// request would, with the same waits and codes). On success `*token_out` receives a token the
/// caller owns (free it with `tokengate_token_free()`); read its expiry with
/// `tokengate_token_expiry()`.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`client` or `token_out` is NULL),
/// `TOKENGATE_RESULT_LOGIN_REQUIRED` (no token and nothing to refresh with, or a refresh refused
/// for good), `TOKENGATE_RESULT_REFRESH_FAILED`, `TOKENGATE_RESULT_REFRESH_TIMEOUT`,
/// `TOKENGATE_RESULT_CONFIG`.
///
/// # Safety
///
/// - `client` is NULL or a live client.
/// - `token_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_token(
    client: *const tokengate_client,
    token_out: *mut *mut tokengate_token,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let client = unsafe { boundary::arg(client, "client") }?;
        let out = boundary::out(token_out, "token_out")?;
        let lease = client.client().gate().lease()?;
        let token = Box::new(tokengate_token::new((**lease.token()).clone()));
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(token)) };
        Ok(())
    })
}

/// Installs a new token (copied), e.g. after the user logged in again: leaves the login-required
/// state and wakes waiting threads.
///
/// With a token file, the token is first written there (under its lock, waiting at most the
/// refresh timeout); when that fails the call returns `TOKENGATE_RESULT_STORE` (or
/// `TOKENGATE_RESULT_REFRESH_TIMEOUT`) and installs nothing.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`client` or `token` is NULL),
/// `TOKENGATE_RESULT_INVALID_TOKEN` (the access token or type cannot be sent in an HTTP header),
/// `TOKENGATE_RESULT_STORE` (the token file cannot be written).
///
/// # Safety
///
/// - `client` is NULL or a live client; `token` is NULL or a live token.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_set_token(
    client: *const tokengate_client,
    token: *const tokengate_token,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (client, token) = unsafe {
            (
                boundary::arg(client, "client")?,
                boundary::arg(token, "token")?,
            )
        };
        Ok(client.client().set_token(token.token().clone())?)
    })
}

/// Installs the token a login brought (copied), exactly as `tokengate_client_set_token()` does
/// (in the client and the token file, waking waiting threads), and emits
/// `TOKENGATE_EVENT_LOGGED_IN` instead of `TOKENGATE_EVENT_TOKEN_SET`.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`client` or `token` is NULL),
/// `TOKENGATE_RESULT_INVALID_TOKEN` (the access token or type cannot be sent in an HTTP header),
/// `TOKENGATE_RESULT_STORE` (the token file cannot be written). Nothing is changed on error.
///
/// # Safety
///
/// - `client` is NULL or a live client; `token` is NULL or a live token.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_login(
    client: *const tokengate_client,
    token: *const tokengate_token,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (client, token) = unsafe {
            (
                boundary::arg(client, "client")?,
                boundary::arg(token, "token")?,
            )
        };
        Ok(client.client().login(token.token().clone())?)
    })
}

/// Logs out: revokes the refresh token at the revocation endpoint
/// (`tokengate_client_builder_set_revocation_url()`, RFC 7009), clears the token file (so every
/// process sharing it is logged out, and none brings the session back), forgets the token, and
/// enters the login-required state: requests fail with `TOKENGATE_RESULT_LOGIN_REQUIRED` until
/// `tokengate_client_login()` or `tokengate_client_set_token()`. Emits
/// `TOKENGATE_EVENT_LOGGED_OUT`. Without a revocation endpoint nothing is sent to the server.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`client` is NULL), `TOKENGATE_RESULT_REVOCATION` (logged out here and
/// in the token file, but the server did not confirm the revocation), `TOKENGATE_RESULT_STORE`
/// (the token file could not be cleared; the token is forgotten here), or
/// `TOKENGATE_RESULT_REFRESH_TIMEOUT` (the token file stayed locked by another process: nothing
/// was changed).
///
/// # Safety
///
/// - `client` is NULL or a live client.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_logout(
    client: *const tokengate_client,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let client = unsafe { boundary::arg(client, "client")? };
        Ok(client.client().logout()?)
    })
}

/// Registers a refresh callback (see `tokengate_refresh_callback`) for APIs that do not speak
/// OAuth2, replacing any previous one; while one is registered it is used instead of the OAuth2
/// grant. A NULL `callback` removes it. `user_data` is passed back to every call; it must be usable
/// from any thread and stay valid until the callback is replaced or the client is freed. When this
/// returns, the previous callback is not running and will not be called again.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`client` is NULL), `TOKENGATE_RESULT_IN_CALLBACK`
/// (called from inside a tokengate callback).
///
/// # Safety
///
/// - `client` is NULL or a live client.
/// - `callback` is NULL or a function matching the signature, callable from any thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_set_refresh_callback(
    client: *const tokengate_client,
    callback: tokengate_refresh_callback,
    user_data: *mut c_void,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let client = unsafe { boundary::arg(client, "client") }?;
        client.callbacks.set_refresh(callback, user_data)
    })
}

/// Registers the login-required callback (see `tokengate_login_required_callback`), replacing any
/// previous one; NULL removes it. `user_data` and the guarantee on return as for
/// `tokengate_client_set_refresh_callback()`.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`client` is NULL), `TOKENGATE_RESULT_IN_CALLBACK`
/// (called from inside a tokengate callback).
///
/// # Safety
///
/// - `client` is NULL or a live client.
/// - `callback` is NULL or a function matching the signature, callable from any thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_set_login_required_callback(
    client: *const tokengate_client,
    callback: tokengate_login_required_callback,
    user_data: *mut c_void,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let client = unsafe { boundary::arg(client, "client") }?;
        client.callbacks.set_login(callback, user_data)
    })
}

/// Registers the on-refresh callback (see `tokengate_on_refresh_callback`), called with every token
/// a refresh produces, e.g. to persist it in a store of your own; replaces any previous one, NULL
/// removes it. `user_data` and the guarantee on return as for
/// `tokengate_client_set_refresh_callback()`.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`client` is NULL), `TOKENGATE_RESULT_IN_CALLBACK`
/// (called from inside a tokengate callback).
///
/// # Safety
///
/// - `client` is NULL or a live client.
/// - `callback` is NULL or a function matching the signature, callable from any thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_set_on_refresh_callback(
    client: *const tokengate_client,
    callback: tokengate_on_refresh_callback,
    user_data: *mut c_void,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let client = unsafe { boundary::arg(client, "client") }?;
        client.callbacks.set_on_refresh(callback, user_data)
    })
}

/// Registers the event callback (see `tokengate_event_callback` and `tokengate_event`), replacing
/// any previous one; NULL removes it. The first registration starts the client's event thread;
/// events from then on are delivered (while no callback is registered they are dropped).
/// `user_data` and the guarantee on return as for `tokengate_client_set_refresh_callback()`.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`client` is NULL), `TOKENGATE_RESULT_IN_CALLBACK`
/// (called from inside a tokengate callback).
///
/// # Safety
///
/// - `client` is NULL or a live client.
/// - `callback` is NULL or a function matching the signature, callable from any thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_set_event_callback(
    client: *const tokengate_client,
    callback: tokengate_event_callback,
    user_data: *mut c_void,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let client = unsafe { boundary::arg(client, "client") }?;
        Callbacks::check_not_in_callback()?;
        let mut dispatcher = client.dispatcher.lock();
        if dispatcher.is_none() && callback.is_some() {
            let events = client.client().events();
            *dispatcher = Some(
                Dispatcher::start(events, Arc::clone(&client.callbacks)).map_err(|e| {
                    Failure::new(
                        result::TOKENGATE_RESULT_OTHER,
                        format!("cannot start the event thread: {e}"),
                    )
                })?,
            );
        }
        client.callbacks.set_event(callback, user_data)
    })
}

/// Writes the client's counters to `*stats_out`. `stats_size` is `sizeof(tokengate_stats)` as the
/// program was compiled: only that many bytes are written, so a program built against an older
/// header (with fewer fields) works with a newer library.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`client` or `stats_out` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`stats_size` is smaller than
/// `TOKENGATE_STATS_MIN_SIZE`).
///
/// # Safety
///
/// - `client` is NULL or a live client.
/// - `stats_out` is NULL or valid for writing `stats_size` bytes; `error_out` is NULL or valid for
///   writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_stats(
    client: *const tokengate_client,
    stats_out: *mut tokengate_stats,
    stats_size: usize,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let client = unsafe { boundary::arg(client, "client") }?;
        let out = boundary::out(stats_out, "stats_out")?;
        if stats_size < TOKENGATE_STATS_MIN_SIZE {
            return Err(Failure::invalid(format!(
                "stats_size {stats_size} is smaller than TOKENGATE_STATS_MIN_SIZE \
                 ({TOKENGATE_STATS_MIN_SIZE})"
            )));
        }
        let s = client.client().stats();
        let stats = tokengate_stats {
            refreshes: s.refreshes,
            refresh_failures: s.refresh_failures,
            waits: s.waits,
            replays: s.replays,
            events_dropped: s.events_dropped,
            adopted: s.adopted,
            store_errors: s.store_errors,
        };
        #[cfg(feature = "abi-probe")]
        let stats = crate::abi_probe::StatsNext::new(stats);
        let ours = std::mem::size_of_val(&stats);
        let (src, dst) = (
            std::ptr::from_ref(&stats).cast::<u8>(),
            out.as_ptr().cast::<u8>(),
        );
        // SAFETY: `dst` is valid for `stats_size` bytes (the caller's guarantee) and `src` for
        // `ours`; we copy the smaller and zero what the caller has beyond our struct.
        unsafe {
            std::ptr::copy_nonoverlapping(src, dst, ours.min(stats_size));
            if stats_size > ours {
                std::ptr::write_bytes(dst.add(ours), 0, stats_size - ours);
            }
        }
        Ok(())
    })
}

/// Frees a client. NULL is a no-op. Call it once, after every other call on this client (on any
/// thread) has returned, and never from inside one of its callbacks.
///
/// It waits for a refresh in flight to finish, callbacks included (at most the refresh timeout),
/// so a rotated refresh token is saved rather than lost; joins the client's threads (the refresher
/// threads, the `background_refresh` thread, and the event thread once it has delivered the
/// events still queued); and waits for any callback still running to return. Once it returns, no
/// callback of this client is called again, so their `user_data` may be freed. Only a refresh that
/// outlived the refresh timeout (a token endpoint that hangs, bounded by the token timeout) may
/// hold it longer.
///
/// # Safety
///
/// - `client` is NULL or a client from `tokengate_client_builder_build()` not freed yet, and not
///   used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_client_free(client: *mut tokengate_client) {
    boundary::guard((), || {
        if !client.is_null() {
            // SAFETY: the caller hands back ownership of the Box from tokengate_client_builder_build.
            let mut handle = unsafe { Box::from_raw(client) };
            // A refresh in flight finishes first, with its callbacks (the on-refresh callback may
            // be where the program keeps a rotated refresh token).
            handle.client().close();
            // Joins the client's threads; once its token state is gone, the events end, and the
            // event thread delivers the ones still queued before it is joined.
            drop(handle.client.take());
            drop(handle.dispatcher.lock().take());
            // From here on no callback is called, also by a refresh that outlived the waits.
            handle.callbacks.clear();
        }
    });
}
