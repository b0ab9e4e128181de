//! The one way into Rust from C: [`ffi_boundary!`] runs an entry point's body with panics caught,
//! turns its failure into a `tokengate_result`, hands the details to the caller's optional
//! `tokengate_error **error_out` and records them as the calling thread's last error. The argument
//! helpers here turn NULL and non-UTF-8 pointers into failures instead of crashes.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

use crate::error::tokengate_error;
use crate::result::{self, tokengate_result};

/// Why an entry point failed: its code and a message free of secrets.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: tokengate_result,
    pub(crate) message: String,
    pub(crate) transient: bool,
}

impl Failure {
    pub(crate) fn new(code: tokengate_result, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            transient: false,
        }
    }

    pub(crate) fn null(what: &str) -> Failure {
        Failure::new(
            result::TOKENGATE_RESULT_NULL_ARGUMENT,
            format!("{what} must not be NULL"),
        )
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(result::TOKENGATE_RESULT_INVALID_ARGUMENT, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(result::TOKENGATE_RESULT_NOT_FOUND, message)
    }

    fn panic(payload: &(dyn std::any::Any + Send)) -> Failure {
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        Failure::new(
            result::TOKENGATE_RESULT_PANIC,
            format!("tokengate panicked (a bug; please report it): {what}"),
        )
    }
}

impl From<tokengate::Error> for Failure {
    fn from(e: tokengate::Error) -> Failure {
        Failure {
            code: result::of(&e),
            message: with_causes(&e),
            transient: e.is_transient(),
        }
    }
}

/// An error's text followed by its causes (each `source()`, as error reporters print them), for
/// a binding that has only one string to show. None of them holds a secret.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

thread_local! {
    /// The failure of the last call on this thread, if it failed.
    static LAST_ERROR: RefCell<Option<Box<tokengate_error>>> = const { RefCell::new(None) };
}

/// Takes this thread's last error, leaving none.
pub(crate) fn take_last_error() -> Option<Box<tokengate_error>> {
    LAST_ERROR
        .try_with(|slot| slot.borrow_mut().take())
        .ok()
        .flatten()
}

fn set_last_error(error: Option<Box<tokengate_error>>) {
    // `try_with`: during thread teardown the slot may be gone; then there is nobody to tell.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = error);
}

/// Runs `body` with panics caught: clears this thread's last error, then records the failure, if
/// any, hands a copy to `error_out` when it is not NULL, and returns its code. Use it through
/// [`ffi_boundary!`].
pub(crate) fn run(
    error_out: *mut *mut tokengate_error,
    body: impl FnOnce() -> Result<(), Failure>,
) -> tokengate_result {
    set_last_error(None);
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|p| Err(Failure::panic(&*p)));
    match outcome {
        Ok(()) => result::TOKENGATE_RESULT_OK,
        Err(failure) => {
            let code = failure.code;
            let error = tokengate_error::from(failure);
            if let Some(out) = NonNull::new(error_out) {
                // SAFETY: the header requires `error_out` to be NULL or valid for writing one
                // pointer; the caller owns the new error.
                unsafe { out.write(Box::into_raw(Box::new(error.clone()))) };
            }
            set_last_error(Some(Box::new(error)));
            code
        }
    }
}

/// Runs `body` with panics caught for entry points that return a plain value, not a
/// `tokengate_result`: a panic yields `fallback`.
pub(crate) fn guard<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// Wraps the body of an entry point that returns `tokengate_result`:
/// `ffi_boundary!(error_out, { ... })` where the block evaluates to `Result<(), Failure>` (`?` works
/// inside). Panics are caught; a failure goes to `*error_out` (when not NULL) and to
/// `tokengate_last_error()`.
macro_rules! ffi_boundary {
    ($error_out:expr, $body:block) => {
        $crate::boundary::run(
            $error_out,
            move || -> Result<(), $crate::boundary::Failure> { $body },
        )
    };
}
pub(crate) use ffi_boundary;

/// A required `&T` from a pointer.
///
/// # Safety
///
/// `ptr` is NULL or points to a live `T` for `'a`.
pub(crate) unsafe fn arg<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller guarantees a non-NULL `ptr` points to a live T.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// A required `&mut T` from a pointer.
///
/// # Safety
///
/// `ptr` is NULL or points to a live `T` for `'a` that nothing else uses meanwhile.
pub(crate) unsafe fn arg_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller guarantees a non-NULL `ptr` points to a live T used by nobody else.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::null(what))
}

/// A required out-parameter, checked for NULL before any work is done. Write it with
/// `NonNull::write` only once the call has succeeded (out-params are written only on success).
pub(crate) fn out<T>(ptr: *mut T, what: &str) -> Result<NonNull<T>, Failure> {
    NonNull::new(ptr).ok_or_else(|| Failure::null(what))
}

/// A required NUL-terminated UTF-8 string.
///
/// # Safety
///
/// `ptr` is NULL or points to a NUL-terminated string that lives for `'a`.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    // SAFETY: forwarded from the caller.
    unsafe { opt_text(ptr, what) }?.ok_or_else(|| Failure::null(what))
}

/// A C string of `s` to hand out (a NUL inside, which no token, URL or code a server may send
/// can carry, is dropped).
pub(crate) fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// An optional NUL-terminated UTF-8 string: NULL is `None`.
///
/// # Safety
///
/// `ptr` is NULL or points to a NUL-terminated string that lives for `'a`.
pub(crate) unsafe fn opt_text<'a>(
    ptr: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's guarantee.
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str()
        .map(Some)
        .map_err(|_| Failure::invalid(format!("{what} is not valid UTF-8")))
}

/// A byte buffer given as pointer + length; NULL is allowed only with length 0 (otherwise it is
/// `TOKENGATE_RESULT_NULL_ARGUMENT`).
///
/// # Safety
///
/// `ptr` is NULL or points to `len` readable bytes that live for `'a`.
pub(crate) unsafe fn bytes<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Failure::null(&format!("{what} (with a non-zero length)")))
        };
    }
    // SAFETY: non-NULL, `len` readable bytes per the caller's guarantee.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A duration in milliseconds from C.
pub(crate) fn millis(ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

    #[test]
    fn a_panic_becomes_a_code_and_a_message() {
        let code = ffi_boundary!(ptr::null_mut(), {
            if true {
                panic!("boom in the body");
            }
            Ok(())
        });
        assert_eq!(code, result::TOKENGATE_RESULT_PANIC);
        let error = take_last_error().expect("the panic was recorded");
        assert_eq!(error.code, result::TOKENGATE_RESULT_PANIC);
        assert!(
            error.message().contains("boom in the body"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn a_failure_goes_to_the_out_param_and_to_the_thread() {
        let mut out: *mut tokengate_error = ptr::null_mut();
        let code = ffi_boundary!(&mut out, { Err(Failure::invalid("first")) });
        assert_eq!(code, result::TOKENGATE_RESULT_INVALID_ARGUMENT);
        assert!(!out.is_null());
        // SAFETY: written by the boundary, owned here.
        let owned = unsafe { Box::from_raw(out) };
        assert_eq!(owned.message(), "first");
        assert_eq!(take_last_error().expect("recorded").message(), "first");
    }

    #[test]
    fn success_clears_the_last_error_and_leaves_the_out_param_alone() {
        let code = ffi_boundary!(ptr::null_mut(), { Err(Failure::invalid("first")) });
        assert_eq!(code, result::TOKENGATE_RESULT_INVALID_ARGUMENT);
        let sentinel = 0x10 as *mut tokengate_error;
        let mut out = sentinel;
        assert_eq!(
            ffi_boundary!(&mut out, { Ok(()) }),
            result::TOKENGATE_RESULT_OK
        );
        assert_eq!(out, sentinel);
        assert!(take_last_error().is_none());
    }

    #[test]
    fn guard_returns_the_fallback_on_panic() {
        assert_eq!(guard(7u16, || panic!("x")), 7);
        assert_eq!(guard(7u16, || 200), 200);
    }
}
