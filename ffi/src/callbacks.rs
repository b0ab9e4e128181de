//! The C callbacks a client calls: a custom refresh for APIs that do not speak OAuth2, the
//! login-required and on-refresh hooks, and the events. Each lives in a slot that can be filled,
//! replaced or emptied while the client is in use.

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::sync::Arc;

use parking_lot::RwLock;
use tokengate::{Event, OAuth2, Refresh, RefreshError, Token};

use crate::boundary::{self, Failure, ffi_boundary};
use crate::error::tokengate_error;
use crate::events::{EventView, tokengate_event};
use crate::result::{self, tokengate_result};
use crate::token::tokengate_token;

/// What a refresh callback returns: one of the `TOKENGATE_REFRESH_*` values.
#[allow(non_camel_case_types)]
pub type tokengate_refresh_status = u32;

/// The refresh callback got a new token and stored it with `tokengate_refresh_out_set_token()`.
/// (Without a stored token this counts as `TOKENGATE_REFRESH_TRANSIENT`.)
pub const TOKENGATE_REFRESH_OK: tokengate_refresh_status = 1;
/// The refresh failed but may work later (network down, server busy): the client backs off, keeps
/// using a still-valid old token, and calls the callback again later.
pub const TOKENGATE_REFRESH_TRANSIENT: tokengate_refresh_status = 2;
/// The refresh was refused for good (the refresh token is dead): the client enters the
/// login-required state until `tokengate_client_set_token()`. Only this value logs the user out.
pub const TOKENGATE_REFRESH_PERMANENT: tokengate_refresh_status = 3;

/// Gets a new token for APIs that do not speak OAuth2. Return `TOKENGATE_REFRESH_OK` after storing
/// the new token with `tokengate_refresh_out_set_token(out, ...)`, or `TOKENGATE_REFRESH_TRANSIENT`
/// / `TOKENGATE_REFRESH_PERMANENT` (optionally after `tokengate_refresh_out_set_message()`).
///
/// 0 is not a success: a callback that returns 0 or any value other than the three (say, a Python
/// ctypes callback that raised, which ctypes turns into 0), or `TOKENGATE_REFRESH_OK` without a
/// token, fails *transiently*: the client backs off and tries again. Only
/// `TOKENGATE_REFRESH_PERMANENT` logs the user out.
///
/// It runs on a tokengate thread: a short-lived refresher thread started by the request that needed
/// the new token (that request waits for it like the others, so a callback that hangs holds no
/// request past its refresh timeout), or a thread refreshing ahead of expiry; one call at a time per
/// client (with a `token_file`: one at a time across every client and process sharing it), with the
/// client's token lock released. `current` (the token being replaced, NULL when there is none) and
/// `out` are borrowed: valid only until the callback returns. It must not make requests through the
/// same client (they would wait for this very refresh) nor register or unregister callbacks (that
/// fails with `TOKENGATE_RESULT_IN_CALLBACK`).
#[allow(non_camel_case_types)]
pub type tokengate_refresh_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        current: *const tokengate_token,
        out: *mut tokengate_refresh_out,
    ) -> tokengate_refresh_status,
>;

/// Called once each time the client enters the login-required state (a refresh was refused
/// permanently, e.g. `invalid_grant`), on the tokengate thread whose refresh failed, after every
/// waiting thread has been woken and with no lock held. `error` is borrowed: valid only until the
/// callback returns. The callback may call `tokengate_client_set_token()`; it must not register or
/// unregister callbacks.
#[allow(non_camel_case_types)]
pub type tokengate_login_required_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, error: *const tokengate_error)>;

/// Called with every token a refresh produces, to keep it somewhere of your own (a keychain, a
/// database): read it with the `tokengate_token_*()` getters, including
/// `tokengate_token_expiry()` for the wall-clock expiry to save. It runs on the refreshing thread
/// before any waiting thread is woken (with a `token_file`: before the file is written), with no
/// lock held. Not called for tokens given to `tokengate_client_set_token()` or adopted from the
/// token file. `token` is borrowed until the callback returns. It must not make requests through
/// the same client nor register or unregister callbacks.
#[allow(non_camel_case_types)]
pub type tokengate_on_refresh_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, token: *const tokengate_token)>;

/// Called with each event of the client (see `tokengate_event`), in order, on the client's event
/// thread (one per client, started when the first event callback is registered). `event` is
/// borrowed until the callback returns. A slow callback delays only later events; when 64 are
/// waiting, new ones are dropped and counted in `tokengate_stats.events_dropped`. It may make
/// requests through the client; it must not register or unregister callbacks.
#[allow(non_camel_case_types)]
pub type tokengate_event_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const tokengate_event)>;

/// Where a refresh callback puts its answer. Borrowed by the callback for the duration of the call.
#[allow(non_camel_case_types)]
#[derive(Debug, Default)]
pub struct tokengate_refresh_out {
    token: Option<Token>,
    message: Option<String>,
}

/// Stores the new token from a refresh callback. The token is copied before this returns; the
/// callback may free it right after.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`out` or `token` is NULL).
///
/// # Safety
///
/// - `out` is NULL or the `out` argument of the running refresh callback.
/// - `token` is NULL or a live token; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_refresh_out_set_token(
    out: *mut tokengate_refresh_out,
    token: *const tokengate_token,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (out, token) = unsafe {
            (
                boundary::arg_mut(out, "out")?,
                boundary::arg(token, "token")?,
            )
        };
        out.token = Some(token.token().clone());
        Ok(())
    })
}

/// Sets the message reported when the refresh callback returns a failure (it appears in the
/// `tokengate_error` of the failed requests). Copied. Keep secrets out of it.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`out` or `message` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`message` is not UTF-8).
///
/// # Safety
///
/// - `out` is NULL or the `out` argument of the running refresh callback.
/// - `message` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_refresh_out_set_message(
    out: *mut tokengate_refresh_out,
    message: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (out, message) = unsafe {
            (
                boundary::arg_mut(out, "out")?,
                boundary::text(message, "message")?,
            )
        };
        out.message = Some(message.to_owned());
        Ok(())
    })
}

/// A C function pointer with its user data.
#[derive(Clone, Copy)]
struct Registered<F> {
    function: F,
    user_data: *mut c_void,
}

// SAFETY: the header requires callbacks and their user data to be callable from any thread (the
// client calls them on whichever thread refreshes, or on its event thread).
unsafe impl<F: Send> Send for Registered<F> {}
// SAFETY: as above; the pair is only read (copied) by the threads sharing it.
unsafe impl<F: Sync> Sync for Registered<F> {}

type RefreshFn = unsafe extern "C" fn(
    *mut c_void,
    *const tokengate_token,
    *mut tokengate_refresh_out,
) -> tokengate_refresh_status;
type LoginFn = unsafe extern "C" fn(*mut c_void, *const tokengate_error);
type OnRefreshFn = unsafe extern "C" fn(*mut c_void, *const tokengate_token);
type EventFn = unsafe extern "C" fn(*mut c_void, *const tokengate_event);

/// One callback slot. A callback runs under the slot's read lock, so replacing it waits for
/// running calls to end: once `tokengate_client_set_*_callback()` returns, the old callback is not
/// running and never runs again, and its user data may be freed.
struct Slot<F>(RwLock<Option<Registered<F>>>);

impl<F: Copy> Slot<F> {
    const fn new() -> Slot<F> {
        Slot(RwLock::new(None))
    }

    /// Replaces the callback once no call of the old one is running.
    fn fill(&self, function: Option<F>, user_data: *mut c_void) -> Result<(), Failure> {
        check_not_in_callback()?;
        *self.0.write() = function.map(|function| Registered {
            function,
            user_data,
        });
        Ok(())
    }

    /// Calls `call` with the registered callback, if any, counting this thread as inside a
    /// callback. The read lock is recursive: a callback may run while another thread waits to
    /// replace it, and a refresh callback's thread may go on to call the login hook.
    fn with<R>(&self, call: impl FnOnce(F, *mut c_void) -> R) -> Option<R> {
        let slot = self.0.read_recursive();
        let cb = (*slot)?;
        let _scope = CallbackScope::enter();
        Some(call(cb.function, cb.user_data))
    }

    fn clear(&self) {
        *self.0.write() = None;
    }
}

thread_local! {
    /// How many callbacks this thread is running right now (they may nest: refresh, then login).
    static IN_CALLBACK: Cell<u32> = const { Cell::new(0) };
}

/// Counts this thread as inside a callback while alive.
struct CallbackScope;

impl CallbackScope {
    fn enter() -> CallbackScope {
        IN_CALLBACK.with(|n| n.set(n.get() + 1));
        CallbackScope
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        IN_CALLBACK.with(|n| n.set(n.get() - 1));
    }
}

fn check_not_in_callback() -> Result<(), Failure> {
    if IN_CALLBACK.with(Cell::get) > 0 {
        return Err(Failure::new(
            result::TOKENGATE_RESULT_IN_CALLBACK,
            "callbacks cannot be registered from inside a callback",
        ));
    }
    Ok(())
}

/// The callback slots of one client, shared with its refresher, its hooks and its event thread.
pub(crate) struct Callbacks {
    refresh: Slot<RefreshFn>,
    login: Slot<LoginFn>,
    on_refresh: Slot<OnRefreshFn>,
    event: Slot<EventFn>,
}

impl Default for Callbacks {
    fn default() -> Callbacks {
        Callbacks {
            refresh: Slot::new(),
            login: Slot::new(),
            on_refresh: Slot::new(),
            event: Slot::new(),
        }
    }
}

impl Callbacks {
    pub(crate) fn set_refresh(
        &self,
        f: tokengate_refresh_callback,
        user_data: *mut c_void,
    ) -> Result<(), Failure> {
        self.refresh.fill(f, user_data)
    }

    pub(crate) fn set_login(
        &self,
        f: tokengate_login_required_callback,
        user_data: *mut c_void,
    ) -> Result<(), Failure> {
        self.login.fill(f, user_data)
    }

    pub(crate) fn set_on_refresh(
        &self,
        f: tokengate_on_refresh_callback,
        user_data: *mut c_void,
    ) -> Result<(), Failure> {
        self.on_refresh.fill(f, user_data)
    }

    pub(crate) fn set_event(
        &self,
        f: tokengate_event_callback,
        user_data: *mut c_void,
    ) -> Result<(), Failure> {
        self.event.fill(f, user_data)
    }

    /// Fails with `TOKENGATE_RESULT_IN_CALLBACK` inside a callback.
    pub(crate) fn check_not_in_callback() -> Result<(), Failure> {
        check_not_in_callback()
    }

    /// Empties every slot once no callback is running: from then on none is ever called. Must not
    /// run inside a callback (it would wait for itself).
    pub(crate) fn clear(&self) {
        self.refresh.clear();
        self.login.clear();
        self.on_refresh.clear();
        self.event.clear();
    }

    /// Calls the login-required callback, if one is registered.
    pub(crate) fn login_required(&self, error: &tokengate::Error) {
        let error = tokengate_error::from(Failure::from(error.clone()));
        self.login.with(|f, user_data| {
            // SAFETY: the registrant promised a callable function and thread-safe user data;
            // `error` outlives the call.
            unsafe { f(user_data, &error) }
        });
    }

    /// Calls the on-refresh callback, if one is registered.
    pub(crate) fn refreshed(&self, token: &Token) {
        self.on_refresh.with(|f, user_data| {
            let view = tokengate_token::new(token.clone());
            // SAFETY: as above; `view` outlives the call.
            unsafe { f(user_data, &view) }
        });
    }

    /// Calls the event callback, if one is registered.
    pub(crate) fn event(&self, event: &Event) {
        self.event.with(|f, user_data| {
            let view = EventView::new(event);
            // SAFETY: as above; `view` (and the error it points to) outlives the call.
            unsafe { f(user_data, view.as_ptr()) }
        });
    }

    /// Calls the refresh callback; `None` when none is registered.
    fn refresh(&self, current: Option<&Token>) -> Option<Result<Token, RefreshError>> {
        let view = current.map(|t| tokengate_token::new(t.clone()));
        let mut out = tokengate_refresh_out::default();
        let status = self.refresh.with(|f, user_data| {
            // SAFETY: the registrant promised a callable function and thread-safe user data;
            // `view` and `out` outlive the call.
            unsafe {
                f(
                    user_data,
                    view.as_ref().map_or(std::ptr::null(), std::ptr::from_ref),
                    &mut out,
                )
            }
        })?;
        let message = |default: &str| out.message.clone().unwrap_or_else(|| default.to_owned());
        Some(match status {
            TOKENGATE_REFRESH_OK => out.token.take().ok_or_else(|| {
                RefreshError::transient(
                    "the refresh callback returned TOKENGATE_REFRESH_OK without setting a token",
                )
            }),
            TOKENGATE_REFRESH_TRANSIENT => Err(RefreshError::transient(message(
                "the refresh callback failed (transient)",
            ))),
            TOKENGATE_REFRESH_PERMANENT => Err(RefreshError::permanent(message(
                "the refresh callback refused the refresh",
            ))),
            other => Err(RefreshError::transient(format!(
                "the refresh callback returned {other}, which is not a tokengate_refresh_status \
                 (0 is what a Python ctypes callback that raised returns); counted as transient"
            ))),
        })
    }
}

/// The client's refresher: the C refresh callback when one is registered, else the OAuth2 grant
/// when a token endpoint was configured, else a permanent failure (log in again).
pub(crate) struct Refresher {
    pub(crate) callbacks: Arc<Callbacks>,
    pub(crate) oauth: Option<OAuth2>,
}

impl Refresh for Refresher {
    fn refresh(&self, current: Option<&Token>) -> Result<Token, RefreshError> {
        if let Some(outcome) = self.callbacks.refresh(current) {
            return outcome;
        }
        match &self.oauth {
            Some(oauth) => oauth.refresh(current),
            None => Err(RefreshError::permanent(
                "no token endpoint is configured and no refresh callback is registered",
            )),
        }
    }

    fn check(&self) -> Result<(), RefreshError> {
        self.oauth.as_ref().map_or(Ok(()), Refresh::check)
    }

    fn revoke(&self, token: &Token) -> Result<(), RefreshError> {
        self.oauth
            .as_ref()
            .map_or(Ok(()), |oauth| oauth.revoke(token))
    }
}
