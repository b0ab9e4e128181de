//! `tokengate_token`: an opaque token. C builds one to install it (`tokengate_client_set_token()`,
//! `tokengate_client_builder_set_token()`, `tokengate_refresh_out_set_token()`), gets a copy of the
//! client's (`tokengate_client_token()`), and is shown one in the refresh and on-refresh callbacks.

use std::ffi::{CString, c_char};
use std::ptr;
use std::time::{Duration, UNIX_EPOCH};

use tokengate::Token;

use crate::boundary::{self, Failure, c_string, ffi_boundary};
use crate::error::tokengate_error;
use crate::result::tokengate_result;

/// A token: the access token, its type, its expiry, the refresh token and the scope.
///
/// Opaque, so it can grow without breaking programs built against an older header. Build one with
/// `tokengate_token_new()` and the `tokengate_token_set_*()` functions; read one with the getters.
/// The strings a getter returns are owned by the token and stay valid until it is freed or changed
/// with a setter. A token you own (from `tokengate_token_new()` or `tokengate_client_token()`) is
/// freed with `tokengate_token_free()`; one shown to a callback is borrowed for the call.
///
/// The token holds secrets: anything that reads its access or refresh token can act as the user.
#[allow(non_camel_case_types)]
pub struct tokengate_token {
    token: Token,
    access: CString,
    refresh: Option<CString>,
    token_type: CString,
    scope: Option<CString>,
}

impl tokengate_token {
    /// A token C can read, copied from a Rust one.
    pub(crate) fn new(token: Token) -> tokengate_token {
        tokengate_token {
            access: c_string(token.access_token().secret()),
            refresh: token.refresh_token().map(|r| c_string(r.secret())),
            token_type: c_string(token.token_type()),
            scope: token.scope().map(c_string),
            token,
        }
    }

    /// The Rust token.
    pub(crate) fn token(&self) -> &Token {
        &self.token
    }

    /// Replaces the token with `f(token)`, refreshing the strings the getters hand out.
    fn update(&mut self, f: impl FnOnce(Token) -> Token) {
        *self = tokengate_token::new(f(self.token.clone()));
    }
}

/// Creates a token with the given access token (sent as `Authorization: Bearer <access_token>`),
/// no known expiry and no refresh token. On success `*token_out` receives a token the caller owns
/// (free it with `tokengate_token_free()`).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`access_token` or `token_out` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`access_token` is empty or not UTF-8).
///
/// # Safety
///
/// - `access_token` is NULL or NUL-terminated.
/// - `token_out` is NULL or valid for writing one pointer; `error_out` is NULL or valid for
///   writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_token_new(
    access_token: *const c_char,
    token_out: *mut *mut tokengate_token,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let access = unsafe { boundary::text(access_token, "access_token") }?;
        let out = boundary::out(token_out, "token_out")?;
        if access.is_empty() {
            return Err(Failure::invalid("access_token is empty"));
        }
        let token = Box::new(tokengate_token::new(Token::new(access)));
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(token)) };
        Ok(())
    })
}

/// Sets the token's lifetime, counted from now (OAuth2's `expires_in`, in milliseconds). Longer
/// than ten years counts as ten years. Defaults to unknown: the token is used until the server
/// rejects it.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`token` is NULL).
///
/// # Safety
///
/// - `token` is NULL or a live token the caller owns, not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_token_set_expires_in_ms(
    token: *mut tokengate_token,
    expires_in_ms: u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let token = unsafe { boundary::arg_mut(token, "token") }?;
        token.update(|t| t.with_expires_in(Duration::from_millis(expires_in_ms)));
        Ok(())
    })
}

/// Sets when the token expires, as wall-clock milliseconds since the Unix epoch (as a program
/// saves it, e.g. from `tokengate_token_expiry()` in the on-refresh callback). A time in the past
/// gives an expired token: the client refreshes it before its first request. Defaults to unknown.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`token` is NULL).
///
/// # Safety
///
/// - `token` is NULL or a live token the caller owns, not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_token_set_expires_at_unix_ms(
    token: *mut tokengate_token,
    expires_at_unix_ms: u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let token = unsafe { boundary::arg_mut(token, "token") }?;
        let at = UNIX_EPOCH
            .checked_add(Duration::from_millis(expires_at_unix_ms))
            .unwrap_or(UNIX_EPOCH);
        token.update(|t| t.with_expires_at_wall(at));
        Ok(())
    })
}

/// Sets (or, with NULL, removes) the refresh token. Copied. Defaults to none.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`token` is NULL), `TOKENGATE_RESULT_INVALID_ARGUMENT`
/// (`refresh_token` is not UTF-8).
///
/// # Safety
///
/// - `token` is NULL or a live token the caller owns, not in use by another thread.
/// - `refresh_token` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one
///   pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_token_set_refresh_token(
    token: *mut tokengate_token,
    refresh_token: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (token, refresh) = unsafe {
            (
                boundary::arg_mut(token, "token")?,
                boundary::opt_text(refresh_token, "refresh_token")?,
            )
        };
        match refresh {
            Some(r) => token.update(|t| t.with_refresh_token(r)),
            None => {
                // No setter removes it: rebuild the token without one.
                let old = token.token.clone();
                let mut fresh =
                    Token::new(old.access_token().secret()).with_token_type(old.token_type());
                if let Some(at) = old.expires_at_wall() {
                    fresh = fresh.with_expires_at_wall(at);
                }
                if let Some(scope) = old.scope() {
                    fresh = fresh.with_scope(scope);
                }
                *token = tokengate_token::new(fresh);
            }
        }
        Ok(())
    })
}

/// Sets the token type, the `Authorization` scheme (`bearer` in any case is sent as `Bearer`).
/// Copied. Defaults to `Bearer`.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`token` or `token_type` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`token_type` is not UTF-8).
///
/// # Safety
///
/// - `token` is NULL or a live token the caller owns, not in use by another thread.
/// - `token_type` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_token_set_token_type(
    token: *mut tokengate_token,
    token_type: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (token, kind) = unsafe {
            (
                boundary::arg_mut(token, "token")?,
                boundary::text(token_type, "token_type")?,
            )
        };
        token.update(|t| t.with_token_type(kind));
        Ok(())
    })
}

/// Sets the scope granted with the token (space-separated). Copied. Defaults to none.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`token` or `scope` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`scope` is not UTF-8).
///
/// # Safety
///
/// - `token` is NULL or a live token the caller owns, not in use by another thread.
/// - `scope` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_token_set_scope(
    token: *mut tokengate_token,
    scope: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (token, scope) = unsafe {
            (
                boundary::arg_mut(token, "token")?,
                boundary::text(scope, "scope")?,
            )
        };
        token.update(|t| t.with_scope(scope));
        Ok(())
    })
}

/// A string the token owns, or NULL.
fn owned(s: Option<&CString>) -> *const c_char {
    s.map_or(ptr::null(), |s| s.as_ptr())
}

/// The access token: NUL-terminated, owned by `token` (valid until it is freed or changed). NULL
/// when `token` is NULL. A secret: never log it.
///
/// # Safety
///
/// - `token` is NULL or a live token.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_token_access_token(
    token: *const tokengate_token,
) -> *const c_char {
    boundary::guard(ptr::null(), || {
        // SAFETY: forwarded from the caller.
        owned(unsafe { token.as_ref() }.map(|t| &t.access))
    })
}

/// The refresh token, owned by `token` as for `tokengate_token_access_token()`; NULL when there is
/// none or `token` is NULL. A secret: never log it.
///
/// # Safety
///
/// - `token` is NULL or a live token.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_token_refresh_token(
    token: *const tokengate_token,
) -> *const c_char {
    boundary::guard(ptr::null(), || {
        // SAFETY: forwarded from the caller.
        owned(unsafe { token.as_ref() }.and_then(|t| t.refresh.as_ref()))
    })
}

/// The token type, e.g. `Bearer`, owned by `token` as for `tokengate_token_access_token()`; NULL
/// when `token` is NULL.
///
/// # Safety
///
/// - `token` is NULL or a live token.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_token_type(token: *const tokengate_token) -> *const c_char {
    boundary::guard(ptr::null(), || {
        // SAFETY: forwarded from the caller.
        owned(unsafe { token.as_ref() }.map(|t| &t.token_type))
    })
}

/// The scope, owned by `token` as for `tokengate_token_access_token()`; NULL when there is none or
/// `token` is NULL.
///
/// # Safety
///
/// - `token` is NULL or a live token.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_token_scope(token: *const tokengate_token) -> *const c_char {
    boundary::guard(ptr::null(), || {
        // SAFETY: forwarded from the caller.
        owned(unsafe { token.as_ref() }.and_then(|t| t.scope.as_ref()))
    })
}

/// The token's expiry: `*expires_at_unix_ms_out` receives when it expires (wall-clock milliseconds
/// since the Unix epoch, what a program saves), `*expires_in_ms_out` how long it has left (0 once
/// expired). Either out-parameter may be NULL when not wanted.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`token` is NULL), `TOKENGATE_RESULT_NOT_FOUND` (the
/// expiry is unknown; nothing is written).
///
/// # Safety
///
/// - `token` is NULL or a live token.
/// - `expires_at_unix_ms_out` and `expires_in_ms_out` are NULL or valid for writing one
///   `uint64_t`; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_token_expiry(
    token: *const tokengate_token,
    expires_at_unix_ms_out: *mut u64,
    expires_in_ms_out: *mut u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let token = unsafe { boundary::arg(token, "token") }?;
        let (Some(at), Some(left)) = (token.token.expires_at_wall(), token.token.remaining())
        else {
            return Err(Failure::not_found("the token's expiry is unknown"));
        };
        let at = at
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        let ms = |d: u128| u64::try_from(d).unwrap_or(u64::MAX);
        // SAFETY: each is NULL (skipped) or valid for writes per the caller's guarantee.
        unsafe {
            if let Some(out) = expires_at_unix_ms_out.as_mut() {
                *out = ms(at);
            }
            if let Some(out) = expires_in_ms_out.as_mut() {
                *out = ms(left.as_millis());
            }
        }
        Ok(())
    })
}

/// Frees a token the caller owns. NULL is a no-op.
///
/// # Safety
///
/// - `token` is NULL or a token from `tokengate_token_new()` or `tokengate_client_token()`, not
///   freed yet, and not used afterwards (nor any string it handed out). Never pass a token a
///   callback is shown.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_token_free(token: *mut tokengate_token) {
    boundary::guard((), || {
        if !token.is_null() {
            // SAFETY: the caller hands back ownership of a Box it got from this library.
            drop(unsafe { Box::from_raw(token) });
        }
    });
}

/// The current wall-clock time in Unix milliseconds (for tests and the examples' arithmetic).
#[cfg(test)]
fn now_unix_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_the_refresh_token_keeps_everything_else() {
        let at = now_unix_ms() + 60_000;
        let mut t = tokengate_token::new(
            Token::new("a")
                .with_refresh_token("r")
                .with_token_type("DPoP")
                .with_scope("s"),
        );
        let mut err = ptr::null_mut();
        // SAFETY: a live token and valid pointers.
        unsafe {
            assert_eq!(
                tokengate_token_set_expires_at_unix_ms(&mut t, at, &mut err),
                0
            );
            assert_eq!(
                tokengate_token_set_refresh_token(&mut t, ptr::null(), &mut err),
                0
            );
        }
        assert!(t.refresh.is_none());
        assert_eq!(t.token.access_token().secret(), "a");
        assert_eq!(t.token.token_type(), "DPoP");
        assert_eq!(t.token.scope(), Some("s"));
        let wall = t.token.expires_at_wall().unwrap();
        assert_eq!(
            wall.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64,
            at
        );
    }
}
