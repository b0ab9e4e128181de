//! `tokengate_token`: a token as C sees it, given to `tokengate_client_set_token()` and
//! `tokengate_refresh_out_set_token()`, and shown to the refresh callback.

use std::ffi::{CString, c_char};
use std::ptr;
use std::time::Duration;

use tokengate::Token;

use crate::boundary::{self, Failure};

/// A token. Every string is NUL-terminated UTF-8, borrowed: tokengate copies what it needs before
/// the call that receives the struct returns, so the caller may free or reuse the strings right
/// after.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct tokengate_token {
    /// The access token. Required.
    pub access_token: *const c_char,
    /// Seconds from now until the access token expires; 0 = unknown (used until the server rejects
    /// it). In the current token shown to a refresh callback: rounded up, 0 when unknown or
    /// already expired.
    pub expires_in_secs: u64,
    /// The refresh token, or NULL for none.
    pub refresh_token: *const c_char,
    /// The token type for the `Authorization` header, or NULL for `Bearer`.
    pub token_type: *const c_char,
}

impl tokengate_token {
    /// Copies the token into Rust.
    ///
    /// # Safety
    ///
    /// Every non-NULL string pointer is NUL-terminated and live for the call.
    pub(crate) unsafe fn to_token(&self) -> Result<Token, Failure> {
        // SAFETY: the string pointers are forwarded from the caller's guarantee.
        let (access, refresh, kind) = unsafe {
            (
                boundary::text(self.access_token, "access_token")?,
                boundary::opt_text(self.refresh_token, "refresh_token")?,
                boundary::opt_text(self.token_type, "token_type")?,
            )
        };
        let mut token = Token::new(access);
        if self.expires_in_secs > 0 {
            token = token.with_expires_in(Duration::from_secs(self.expires_in_secs));
        }
        if let Some(r) = refresh {
            token = token.with_refresh_token(r);
        }
        if let Some(k) = kind {
            token = token.with_token_type(k);
        }
        Ok(token)
    }
}

/// A Rust token laid out as a `tokengate_token` whose strings live as long as this value.
pub(crate) struct BorrowedToken {
    view: tokengate_token,
    _strings: [Option<CString>; 3],
}

impl BorrowedToken {
    pub(crate) fn new(token: &Token) -> BorrowedToken {
        let c = |s: &str| CString::new(s.replace('\0', "")).ok();
        let strings = [
            c(token.access_token().secret()),
            token.refresh_token().and_then(|r| c(r.secret())),
            c(token.token_type()),
        ];
        let ptr = |s: &Option<CString>| s.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        let expires_in_secs = match token.remaining() {
            Some(left) => left.as_secs() + u64::from(left.subsec_nanos() > 0),
            None => 0,
        };
        BorrowedToken {
            view: tokengate_token {
                access_token: ptr(&strings[0]),
                expires_in_secs,
                refresh_token: ptr(&strings[1]),
                token_type: ptr(&strings[2]),
            },
            _strings: strings,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const tokengate_token {
        &self.view
    }
}
