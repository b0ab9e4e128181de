//! `tokengate_response`: a finished response (status, headers, the whole body) owned by C until
//! `tokengate_response_free()`.

use std::ffi::c_char;

use tokengate::http::{HeaderMap, Response};
use tokengate::ureq::Body;

use crate::boundary::{self, Failure, ffi_boundary};
use crate::result::tokengate_result;

/// A response: status, headers and the whole body, read before `tokengate_client_request()`
/// returned. Owned by the caller; free it with `tokengate_response_free()`. The pointers it hands
/// out stay valid until then. Not to be used by two threads at once without your own locking
/// (reading it from several threads at once is fine).
#[allow(non_camel_case_types)]
pub struct tokengate_response {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl tokengate_response {
    /// Reads the whole body (ureq's default limit: 10 MiB).
    pub(crate) fn read(mut response: Response<Body>) -> Result<tokengate_response, Failure> {
        let body = response
            .body_mut()
            .read_to_vec()
            .map_err(|e| Failure::from(tokengate::Error::from(e)))?;
        let (parts, _) = response.into_parts();
        Ok(tokengate_response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

/// The HTTP status code, or 0 when `response` is NULL.
///
/// # Safety
///
/// - `response` is NULL or a live response.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_response_status(response: *const tokengate_response) -> u16 {
    boundary::guard(0, || {
        // SAFETY: forwarded from the caller.
        unsafe { response.as_ref() }.map_or(0, |r| r.status)
    })
}

/// The body: `*data_out` receives a pointer to `*len_out` bytes owned by the response (valid until
/// it is freed; not NUL-terminated; when the body is empty, `*len_out` is 0 and the pointer must not
/// be read). Nothing is written on failure.
///
/// # Safety
///
/// - `response` is NULL or a live response.
/// - `data_out` and `len_out` are NULL or valid for writing one pointer / one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_response_body(
    response: *const tokengate_response,
    data_out: *mut *const u8,
    len_out: *mut usize,
) -> tokengate_result {
    ffi_boundary! {
        // SAFETY: forwarded from the caller.
        let response = unsafe { boundary::arg(response, "response") }?;
        let (data, len) = (boundary::out(data_out, "data_out")?, boundary::out(len_out, "len_out")?);
        // SAFETY: both non-NULL and valid for writes per the caller's guarantee.
        unsafe {
            data.write(response.body.as_ptr());
            len.write(response.body.len());
        }
        Ok(())
    }
}

/// The first value of the header `name` (case-insensitive): `*value_out` receives a pointer to
/// `*len_out` bytes owned by the response (valid until it is freed; not NUL-terminated).
/// Returns `TOKENGATE_RESULT_NOT_FOUND` (writing nothing) when there is no such header.
///
/// # Safety
///
/// - `response` is NULL or a live response.
/// - `name` is NULL or NUL-terminated.
/// - `value_out` and `len_out` are NULL or valid for writing one pointer / one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_response_header(
    response: *const tokengate_response,
    name: *const c_char,
    value_out: *mut *const u8,
    len_out: *mut usize,
) -> tokengate_result {
    ffi_boundary! {
        // SAFETY: forwarded from the caller.
        let (response, name) =
            unsafe { (boundary::arg(response, "response")?, boundary::text(name, "name")?) };
        let (data, len) = (boundary::out(value_out, "value_out")?, boundary::out(len_out, "len_out")?);
        let value = response.headers.get(name).ok_or_else(|| {
            Failure::new(tokengate_result::NotFound, format!("no header named {name:?}"))
        })?;
        // SAFETY: both non-NULL and valid for writes per the caller's guarantee.
        unsafe {
            data.write(value.as_bytes().as_ptr());
            len.write(value.len());
        }
        Ok(())
    }
}

/// Frees a response. NULL is a no-op.
///
/// # Safety
///
/// - `response` is NULL or a response from `tokengate_client_request()` not freed yet, and not
///   used afterwards (nor any pointer it handed out).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_response_free(response: *mut tokengate_response) {
    boundary::guard((), || {
        if !response.is_null() {
            // SAFETY: the caller hands back ownership of the Box from tokengate_client_request.
            drop(unsafe { Box::from_raw(response) });
        }
    });
}
