//! The C callbacks a client calls: login required, and a custom refresh for APIs that do not speak
//! OAuth2. Both live in slots that can be filled, replaced or emptied while the client is in use.

use std::cell::Cell;
use std::ffi::{c_char, c_void};

use parking_lot::RwLock;
use tokengate::{OAuth2, Refresh, RefreshError, Token};

use crate::boundary::{self, Failure, ffi_boundary};
use crate::error::tokengate_error;
use crate::result::tokengate_result;
use crate::token::{BorrowedToken, tokengate_token};

/// Called once each time the client enters the login-required state (a refresh was refused
/// permanently, e.g. `invalid_grant`).
///
/// It runs on the tokengate thread whose refresh failed, after every waiting thread has been woken
/// and with no lock held: the short-lived refresher thread a request that needed a new token
/// started, the one that refreshes ahead of expiry (see `refresh_ahead_ms`), or the
/// `background_refresh` thread. `error` is borrowed: valid only until the callback returns. The
/// callback may call `tokengate_client_set_token()`. It must not register or unregister callbacks
/// (of any client: that fails with `TOKENGATE_RESULT_IN_CALLBACK`).
#[allow(non_camel_case_types)]
pub type tokengate_login_required_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, error: *const tokengate_error)>;

/// The refresh callback got a new token and stored it with `tokengate_refresh_out_set_token()`.
pub const TOKENGATE_REFRESH_OK: u32 = 0;
/// The refresh failed but may work later (network down, server busy): the client backs off, keeps
/// using a still-valid old token, and calls the callback again later.
pub const TOKENGATE_REFRESH_TRANSIENT: u32 = 1;
/// The refresh was refused for good (the refresh token is dead): the client enters the
/// login-required state until `tokengate_client_set_token()`. Any other return value counts as this.
pub const TOKENGATE_REFRESH_PERMANENT: u32 = 2;

/// Gets a new token for APIs that do not speak OAuth2. Return `TOKENGATE_REFRESH_OK` after storing
/// the new token with `tokengate_refresh_out_set_token(out, ...)`, or `TOKENGATE_REFRESH_TRANSIENT`
/// / `TOKENGATE_REFRESH_PERMANENT` (optionally after `tokengate_refresh_out_set_message()`).
///
/// It runs on a tokengate thread: a short-lived refresher thread started by the request that needed
/// the new token (that request waits for it like the others, so a callback that hangs holds no
/// request past its refresh timeout), or a thread refreshing ahead of expiry (see
/// `refresh_ahead_ms` and `background_refresh`); one call at a time per client
/// (with a `token_file`: one at a time across every client and process sharing it), with the
/// client's token lock released; the other threads that need a token wait for it (bounded by the
/// refresh timeout). `current` (the token being replaced, NULL when there is none) and `out` are
/// borrowed: valid only until the callback returns. It must not make requests through the same
/// client (they would wait for this very refresh) nor register or unregister callbacks (of any
/// client: that fails with `TOKENGATE_RESULT_IN_CALLBACK`).
#[allow(non_camel_case_types)]
pub type tokengate_refresh_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        current: *const tokengate_token,
        out: *mut tokengate_refresh_out,
    ) -> u32,
>;

/// Where a refresh callback puts its answer. Borrowed by the callback for the duration of the call.
#[allow(non_camel_case_types)]
#[derive(Debug, Default)]
pub struct tokengate_refresh_out {
    token: Option<Token>,
    message: Option<String>,
}

/// Stores the new token from a refresh callback. The strings in `token` are copied before this
/// returns; the callback may free them right after.
///
/// # Safety
///
/// - `out` is NULL or the `out` argument of the running refresh callback.
/// - `token` is NULL or a `tokengate_token` whose non-NULL strings are NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_refresh_out_set_token(
    out: *mut tokengate_refresh_out,
    token: *const tokengate_token,
) -> tokengate_result {
    ffi_boundary! {
        let out = boundary::out(out, "out")?;
        // SAFETY: forwarded from the caller.
        let token = unsafe { boundary::arg(token, "token")?.to_token() }?;
        // SAFETY: `out` is the live, initialised tokengate_refresh_out of the running callback.
        unsafe { (*out.as_ptr()).token = Some(token) };
        Ok(())
    }
}

/// Sets the message reported when the refresh callback returns a failure (it appears in the
/// `tokengate_error` of the failed requests). Copied before this returns. Keep secrets out of it.
///
/// # Safety
///
/// - `out` is NULL or the `out` argument of the running refresh callback.
/// - `message` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_refresh_out_set_message(
    out: *mut tokengate_refresh_out,
    message: *const c_char,
) -> tokengate_result {
    ffi_boundary! {
        let out = boundary::out(out, "out")?;
        // SAFETY: forwarded from the caller.
        let message = unsafe { boundary::text(message, "message") }?.to_owned();
        // SAFETY: `out` is the live, initialised tokengate_refresh_out of the running callback.
        unsafe { (*out.as_ptr()).message = Some(message) };
        Ok(())
    }
}

/// A C function pointer with its user data.
#[derive(Clone, Copy)]
struct Registered<F> {
    function: F,
    user_data: *mut c_void,
}

// SAFETY: the header requires callbacks and their user data to be callable from any thread (the
// client calls them on whichever thread refreshes).
unsafe impl<F: Send> Send for Registered<F> {}
// SAFETY: as above; the pair is only read (copied) by the threads sharing it.
unsafe impl<F: Sync> Sync for Registered<F> {}

type LoginFn = unsafe extern "C" fn(*mut c_void, *const tokengate_error);
type RefreshFn =
    unsafe extern "C" fn(*mut c_void, *const tokengate_token, *mut tokengate_refresh_out) -> u32;

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

/// The callback slots of one client, shared with its refresher and login hook.
///
/// A callback runs under the slot's read lock, so replacing it waits for running calls to end: once
/// `tokengate_client_set_*_callback()` returns, the old callback is not running and never runs again,
/// and its user data may be freed.
#[derive(Default)]
pub(crate) struct Callbacks {
    login: RwLock<Option<Registered<LoginFn>>>,
    refresh: RwLock<Option<Registered<RefreshFn>>>,
}

impl Callbacks {
    fn check_not_in_callback() -> Result<(), Failure> {
        if IN_CALLBACK.with(Cell::get) > 0 {
            return Err(Failure::new(
                tokengate_result::InCallback,
                "callbacks cannot be registered from inside a callback",
            ));
        }
        Ok(())
    }

    pub(crate) fn set_login(
        &self,
        function: tokengate_login_required_callback,
        user_data: *mut c_void,
    ) -> Result<(), Failure> {
        Self::fill(&self.login, function, user_data)
    }

    pub(crate) fn set_refresh(
        &self,
        function: tokengate_refresh_callback,
        user_data: *mut c_void,
    ) -> Result<(), Failure> {
        Self::fill(&self.refresh, function, user_data)
    }

    /// Replaces a slot's callback once no call of the old one is running.
    fn fill<F>(
        slot: &RwLock<Option<Registered<F>>>,
        function: Option<F>,
        user_data: *mut c_void,
    ) -> Result<(), Failure> {
        Self::check_not_in_callback()?;
        *slot.write() = function.map(|function| Registered {
            function,
            user_data,
        });
        Ok(())
    }

    /// Empties both slots once no callback is running: from then on none is ever called. Must not
    /// run inside a callback (it would wait for itself).
    pub(crate) fn clear(&self) {
        *self.refresh.write() = None;
        *self.login.write() = None;
    }

    /// Calls the login-required callback, if one is registered.
    pub(crate) fn login_required(&self, error: &tokengate::Error) {
        let slot = self.login.read_recursive();
        if let Some(cb) = *slot {
            let error = tokengate_error::from(Failure::from(error.clone()));
            let _scope = CallbackScope::enter();
            // SAFETY: the registrant promised a callable function and thread-safe user data;
            // `error` outlives the call.
            unsafe { (cb.function)(cb.user_data, &error) };
        }
    }

    /// Calls the refresh callback; `None` when none is registered.
    fn refresh(&self, current: Option<&Token>) -> Option<Result<Token, RefreshError>> {
        let slot = self.refresh.read_recursive();
        let cb = (*slot)?;
        let view = current.map(BorrowedToken::new);
        let mut out = tokengate_refresh_out::default();
        let status = {
            let _scope = CallbackScope::enter();
            // SAFETY: the registrant promised a callable function and thread-safe user data;
            // `view` and `out` outlive the call.
            unsafe {
                (cb.function)(
                    cb.user_data,
                    view.as_ref()
                        .map_or(std::ptr::null(), BorrowedToken::as_ptr),
                    &mut out,
                )
            }
        };
        let message = |default: &str| out.message.clone().unwrap_or_else(|| default.to_owned());
        Some(match status {
            TOKENGATE_REFRESH_OK => out.token.take().ok_or_else(|| {
                RefreshError::permanent(
                    "the refresh callback returned TOKENGATE_REFRESH_OK without setting a token",
                )
            }),
            TOKENGATE_REFRESH_TRANSIENT => Err(RefreshError::transient(message(
                "the refresh callback failed (transient)",
            ))),
            _ => Err(RefreshError::permanent(message(
                "the refresh callback refused the refresh",
            ))),
        })
    }
}

/// The client's refresher: the C refresh callback when one is registered, else the OAuth2 grant
/// when a token URL was configured, else a permanent failure (log in again).
pub(crate) struct Refresher {
    pub(crate) callbacks: std::sync::Arc<Callbacks>,
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
                "no token URL is configured and no refresh callback is registered",
            )),
        }
    }

    fn check(&self) -> Result<(), tokengate::RefreshError> {
        self.oauth.as_ref().map_or(Ok(()), Refresh::check)
    }
}
