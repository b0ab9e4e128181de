//! `tokengate_error`: what went wrong (a code and a message), handed to the caller through a call's
//! `error_out`, kept as the calling thread's last error, or shown to a callback.

use std::ffi::{CString, c_char, c_int};
use std::ptr;

use crate::boundary::{self, Failure};
use crate::result::{self, tokengate_result};

/// An error: a `tokengate_result` code, a human-readable message (never containing a token or
/// secret) and whether trying again later may help.
///
/// Owned by the caller when it comes from a call's `error_out` or from `tokengate_last_error()`
/// (free it with `tokengate_error_free()`); borrowed for the duration of the call when a callback
/// receives it.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone)]
pub struct tokengate_error {
    pub(crate) code: tokengate_result,
    message: CString,
    transient: bool,
}

impl tokengate_error {
    /// The message as Rust text.
    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        self.message.to_str().unwrap_or("")
    }
}

impl From<Failure> for tokengate_error {
    fn from(f: Failure) -> tokengate_error {
        // A C string ends at its first NUL; a NUL inside a server's message must not cut it short.
        let message = CString::new(f.message.replace('\0', "\u{FFFD}"))
            .unwrap_or_else(|_| CString::from(c"(unprintable message)"));
        tokengate_error {
            code: f.code,
            message,
            transient: f.transient,
        }
    }
}

/// Takes the error of the last call made on this thread, if that call failed: a convenience for C.
/// The same error also goes to the failed call's `error_out`, which does not depend on the thread
/// (use that from Go, where a goroutine may move between threads, and from anything else that
/// cannot promise the next call runs on the same thread).
///
/// Every entry point that returns a `tokengate_result` first clears this thread's last error, then
/// records a new one if it fails; other threads' calls never touch it. Taking it clears it.
///
/// Returns NULL when the last call succeeded (or the error was already taken). Otherwise the caller
/// owns the returned error and must free it with `tokengate_error_free()`.
#[unsafe(no_mangle)]
pub extern "C" fn tokengate_last_error() -> *mut tokengate_error {
    boundary::guard(ptr::null_mut(), || {
        boundary::take_last_error().map_or(ptr::null_mut(), Box::into_raw)
    })
}

/// The error's code (never `TOKENGATE_RESULT_OK`). `TOKENGATE_RESULT_NULL_ARGUMENT` when `error`
/// is NULL.
///
/// # Safety
///
/// - `error` is NULL or a live `tokengate_error`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_error_code(error: *const tokengate_error) -> tokengate_result {
    boundary::guard(result::TOKENGATE_RESULT_PANIC, || {
        // SAFETY: forwarded from the caller.
        match unsafe { error.as_ref() } {
            Some(e) => e.code,
            None => result::TOKENGATE_RESULT_NULL_ARGUMENT,
        }
    })
}

/// The error's message: NUL-terminated UTF-8, owned by `error` and valid until it is freed (or,
/// in a callback, until the callback returns). When `len_out` is not NULL it receives the length in
/// bytes without the NUL. Returns NULL (and writes nothing) when `error` is NULL.
///
/// # Safety
///
/// - `error` is NULL or a live `tokengate_error`.
/// - `len_out` is NULL or valid for writing one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_error_message(
    error: *const tokengate_error,
    len_out: *mut usize,
) -> *const c_char {
    boundary::guard(ptr::null(), || {
        // SAFETY: forwarded from the caller.
        let Some(e) = (unsafe { error.as_ref() }) else {
            return ptr::null();
        };
        if !len_out.is_null() {
            // SAFETY: non-NULL and valid for writes per the caller's guarantee.
            unsafe { len_out.write(e.message.as_bytes().len()) };
        }
        e.message.as_ptr()
    })
}

/// 1 when trying the same call again later may succeed (a transient refresh failure, a refresh
/// wait that timed out, a transport failure, a missed deadline), else 0 (also when `error` is
/// NULL). ffi/README.md lists which codes are transient.
///
/// # Safety
///
/// - `error` is NULL or a live `tokengate_error`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_error_is_transient(error: *const tokengate_error) -> c_int {
    boundary::guard(0, || {
        // SAFETY: forwarded from the caller.
        c_int::from(unsafe { error.as_ref() }.is_some_and(|e| e.transient))
    })
}

/// Frees an error from a call's `error_out` or from `tokengate_last_error()`. NULL is a no-op.
///
/// # Safety
///
/// - `error` is NULL or an error the caller owns, not freed yet; it is not used afterwards. Never
///   pass the borrowed error a callback receives.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_error_free(error: *mut tokengate_error) {
    boundary::guard((), || {
        if !error.is_null() {
            // SAFETY: the caller hands back ownership of a Box it got from tokengate_last_error.
            drop(unsafe { Box::from_raw(error) });
        }
    });
}
