//! `tokengate_response`: status, final URL, headers, and a body read by the caller, whole (up to a
//! limit of its choosing) or streamed into its own buffer.

use std::ffi::{CString, c_char};
use std::io::Read;
use std::ptr;

use tokengate::http::Response;
use tokengate::ureq::{Body, BodyReader, ResponseExt};

use crate::boundary::{self, Failure, ffi_boundary};
use crate::error::tokengate_error;
use crate::result::{self, tokengate_result};

/// Where the body stands.
enum BodyState {
    /// Nothing read yet.
    Unread(BodyReader<'static>),
    /// Being streamed with `tokengate_response_read()`.
    Streaming(BodyReader<'static>),
    /// Read whole by `tokengate_response_body()`; `pos` is where a later
    /// `tokengate_response_read()` goes on.
    Buffered { data: Vec<u8>, pos: usize },
    /// Reading failed; every later read fails the same way.
    Failed {
        code: tokengate_result,
        message: String,
        transient: bool,
    },
}

/// A response: status, final URL and headers, read when the request returned, and the body, read
/// by the caller. Owned by the caller; free it with `tokengate_response_free()`, which closes the
/// connection if the body was not read to its end. The pointers it hands out stay valid until
/// then. Not to be used by two threads at once.
#[allow(non_camel_case_types)]
pub struct tokengate_response {
    status: u16,
    url: CString,
    /// Every header in order, names in lower case, each value on its own (a repeated header
    /// appears once per value).
    headers: Vec<(CString, CString)>,
    body: BodyState,
    /// Whether the request had a deadline (a body read that times out then missed it).
    deadline: bool,
}

/// A C string of header bytes (a value holds no NUL; a name is ASCII).
fn c_bytes(bytes: &[u8]) -> CString {
    CString::new(
        bytes
            .iter()
            .copied()
            .filter(|&b| b != 0)
            .collect::<Vec<u8>>(),
    )
    .unwrap_or_default()
}

impl tokengate_response {
    pub(crate) fn new(response: Response<Body>, deadline: bool) -> tokengate_response {
        // `get_uri` expects ureq's record, which every response from ureq's agent carries; guard
        // anyway, so a response without one has an empty URL instead of a panic.
        let url = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            response.get_uri().to_string()
        }))
        .unwrap_or_default();
        let (parts, body) = response.into_parts();
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| (c_bytes(name.as_str().as_bytes()), c_bytes(value.as_bytes())))
            .collect();
        tokengate_response {
            status: parts.status.as_u16(),
            url: c_bytes(url.as_bytes()),
            headers,
            body: BodyState::Unread(body.into_reader()),
            deadline,
        }
    }

    /// The failure of a body read.
    fn read_failure(&self, e: &std::io::Error) -> Failure {
        let timed_out = e.kind() == std::io::ErrorKind::TimedOut
            || e.get_ref()
                .and_then(|inner| inner.downcast_ref::<tokengate::ureq::Error>())
                .is_some_and(|u| matches!(u, tokengate::ureq::Error::Timeout(_)));
        let (code, what) = if timed_out && self.deadline {
            (
                result::TOKENGATE_RESULT_DEADLINE,
                "the request's deadline passed while its body was read",
            )
        } else {
            (
                result::TOKENGATE_RESULT_TRANSPORT,
                "reading the response body failed",
            )
        };
        Failure {
            code,
            message: format!("{what}: {}", boundary::with_causes(e)),
            transient: true,
        }
    }

    /// Records `failure` as the body's state and returns it.
    fn fail(&mut self, failure: Failure) -> Failure {
        self.body = BodyState::Failed {
            code: failure.code,
            message: failure.message.clone(),
            transient: failure.transient,
        };
        failure
    }
}

fn failed_again(code: tokengate_result, message: &str, transient: bool) -> Failure {
    Failure {
        code,
        message: format!("the body cannot be read after an earlier failure: {message}"),
        transient,
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

/// The URL the response came from, after any redirects (NUL-terminated, owned by the response).
/// NULL when `response` is NULL.
///
/// # Safety
///
/// - `response` is NULL or a live response.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_response_url(
    response: *const tokengate_response,
) -> *const c_char {
    boundary::guard(ptr::null(), || {
        // SAFETY: forwarded from the caller.
        unsafe { response.as_ref() }.map_or(ptr::null(), |r| r.url.as_ptr())
    })
}

/// How many header values the response has (a header that came twice counts twice); 0 when
/// `response` is NULL. Read them with `tokengate_response_header_at()`.
///
/// # Safety
///
/// - `response` is NULL or a live response.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_response_header_count(
    response: *const tokengate_response,
) -> usize {
    boundary::guard(0, || {
        // SAFETY: forwarded from the caller.
        unsafe { response.as_ref() }.map_or(0, |r| r.headers.len())
    })
}

/// The header at `index` (0 to `tokengate_response_header_count()` - 1, in the order received):
/// `*name_out` receives its name in lower case, `*value_out` its value, both NUL-terminated and
/// owned by the response. A header that came twice (`Set-Cookie`, say) is at two indexes.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`response`, `name_out` or `value_out` is NULL),
/// `TOKENGATE_RESULT_NOT_FOUND` (`index` is past the last header; nothing is written).
///
/// # Safety
///
/// - `response` is NULL or a live response.
/// - `name_out`, `value_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_response_header_at(
    response: *const tokengate_response,
    index: usize,
    name_out: *mut *const c_char,
    value_out: *mut *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let response = unsafe { boundary::arg(response, "response") }?;
        let (name, value) = (
            boundary::out(name_out, "name_out")?,
            boundary::out(value_out, "value_out")?,
        );
        let (n, v) = response.headers.get(index).ok_or_else(|| {
            Failure::not_found(format!(
                "header index {index} is past the last ({} headers)",
                response.headers.len()
            ))
        })?;
        // SAFETY: both non-NULL and valid for writes per the caller's guarantee.
        unsafe {
            name.write(n.as_ptr());
            value.write(v.as_ptr());
        }
        Ok(())
    })
}

/// The first value of the header `name` (case-insensitive): `*value_out` receives it,
/// NUL-terminated and owned by the response. For every value of a repeated header, iterate with
/// `tokengate_response_header_at()`.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`response`, `name` or `value_out` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`name` is not UTF-8), `TOKENGATE_RESULT_NOT_FOUND` (no
/// header of that name; nothing is written).
///
/// # Safety
///
/// - `response` is NULL or a live response; `name` is NULL or NUL-terminated.
/// - `value_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_response_header(
    response: *const tokengate_response,
    name: *const c_char,
    value_out: *mut *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (response, name) = unsafe {
            (
                boundary::arg(response, "response")?,
                boundary::text(name, "name")?,
            )
        };
        let value = boundary::out(value_out, "value_out")?;
        let found = response
            .headers
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name.as_bytes()))
            .ok_or_else(|| Failure::not_found(format!("no header named {name:?}")))?;
        // SAFETY: non-NULL and valid for writes per the caller's guarantee.
        unsafe { value.write(found.1.as_ptr()) };
        Ok(())
    })
}

/// Reads the whole body, at most `max_bytes` of it: `*data_out` receives a pointer to `*len_out`
/// bytes owned by the response (valid until it is freed; not NUL-terminated). An empty body gives
/// NULL and 0. Calling it again returns the same bytes.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`response`, `data_out` or `len_out` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (the body is already being streamed with
/// `tokengate_response_read()`), `TOKENGATE_RESULT_BODY_TOO_LARGE` (the body is longer than
/// `max_bytes`; nothing is kept), `TOKENGATE_RESULT_TRANSPORT` (the connection failed while the
/// body was read), `TOKENGATE_RESULT_DEADLINE` (the request's deadline passed meanwhile). After a
/// failure every later read of the body fails with the same code.
///
/// # Safety
///
/// - `response` is NULL or a live response not in use by another thread.
/// - `data_out`, `len_out` and `error_out` are NULL or valid for writing one pointer / `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_response_body(
    response: *mut tokengate_response,
    max_bytes: usize,
    data_out: *mut *const u8,
    len_out: *mut usize,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let response = unsafe { boundary::arg_mut(response, "response") }?;
        let (data, len) = (
            boundary::out(data_out, "data_out")?,
            boundary::out(len_out, "len_out")?,
        );
        let placeholder = BodyState::Buffered {
            data: Vec::new(),
            pos: 0,
        };
        match std::mem::replace(&mut response.body, placeholder) {
            BodyState::Unread(reader) => {
                let mut bytes = Vec::new();
                let limit = u64::try_from(max_bytes)
                    .unwrap_or(u64::MAX)
                    .saturating_add(1);
                if let Err(e) = reader.take(limit).read_to_end(&mut bytes) {
                    let failure = response.read_failure(&e);
                    return Err(response.fail(failure));
                }
                if bytes.len() > max_bytes {
                    return Err(response.fail(Failure::new(
                        result::TOKENGATE_RESULT_BODY_TOO_LARGE,
                        format!("the response body is longer than max_bytes ({max_bytes})"),
                    )));
                }
                response.body = BodyState::Buffered {
                    data: bytes,
                    pos: 0,
                };
            }
            BodyState::Streaming(reader) => {
                response.body = BodyState::Streaming(reader);
                return Err(Failure::invalid(
                    "the body is being streamed with tokengate_response_read()",
                ));
            }
            BodyState::Failed {
                code,
                message,
                transient,
            } => {
                let failure = failed_again(code, &message, transient);
                response.body = BodyState::Failed {
                    code,
                    message,
                    transient,
                };
                return Err(failure);
            }
            buffered @ BodyState::Buffered { .. } => response.body = buffered,
        }
        let BodyState::Buffered { data: bytes, .. } = &response.body else {
            unreachable!("the body was buffered above");
        };
        let pointer = if bytes.is_empty() {
            ptr::null()
        } else {
            bytes.as_ptr()
        };
        // SAFETY: both non-NULL and valid for writes per the caller's guarantee.
        unsafe {
            data.write(pointer);
            len.write(bytes.len());
        }
        Ok(())
    })
}

/// Streams the body: reads up to `capacity` bytes into `buffer` and writes how many to
/// `*read_out`; 0 means the body has ended. The caller chooses the chunk size and the total it is
/// willing to take (stop calling when you have had enough, and free the response). After
/// `tokengate_response_body()` it reads from the buffered bytes.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`response` or `read_out` is NULL, or `buffer` is NULL
/// with a non-zero `capacity`), `TOKENGATE_RESULT_TRANSPORT` (the connection failed),
/// `TOKENGATE_RESULT_DEADLINE` (the request's deadline passed). After a failure every later read
/// fails with the same code.
///
/// # Safety
///
/// - `response` is NULL or a live response not in use by another thread.
/// - `buffer` is NULL or valid for writing `capacity` bytes; `read_out` and `error_out` are NULL or
///   valid for writing one `size_t` / pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_response_read(
    response: *mut tokengate_response,
    buffer: *mut u8,
    capacity: usize,
    read_out: *mut usize,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let response = unsafe { boundary::arg_mut(response, "response") }?;
        let read = boundary::out(read_out, "read_out")?;
        if buffer.is_null() && capacity > 0 {
            return Err(Failure::null("buffer (with a non-zero capacity)"));
        }
        let buf: &mut [u8] = if capacity == 0 {
            &mut []
        } else {
            // SAFETY: non-NULL and valid for `capacity` bytes per the caller's guarantee.
            unsafe { std::slice::from_raw_parts_mut(buffer, capacity) }
        };
        let placeholder = BodyState::Buffered {
            data: Vec::new(),
            pos: 0,
        };
        let outcome = match std::mem::replace(&mut response.body, placeholder) {
            BodyState::Unread(mut reader) | BodyState::Streaming(mut reader) => {
                let n = reader.read(buf);
                response.body = BodyState::Streaming(reader);
                n.map_err(|e| {
                    let failure = response.read_failure(&e);
                    response.fail(failure)
                })
            }
            BodyState::Buffered { data, pos } => {
                let n = buf.len().min(data.len() - pos);
                buf[..n].copy_from_slice(&data[pos..pos + n]);
                response.body = BodyState::Buffered { data, pos: pos + n };
                Ok(n)
            }
            BodyState::Failed {
                code,
                message,
                transient,
            } => {
                let failure = failed_again(code, &message, transient);
                response.body = BodyState::Failed {
                    code,
                    message,
                    transient,
                };
                Err(failure)
            }
        };
        let n = outcome?;
        // SAFETY: non-NULL and valid for writes per the caller's guarantee.
        unsafe { read.write(n) };
        Ok(())
    })
}

/// Frees a response (and closes its connection if the body was not read to the end). NULL is a
/// no-op.
///
/// # Safety
///
/// - `response` is NULL or a response from `tokengate_client_request()` or
///   `tokengate_client_send()` not freed yet, and not used afterwards (nor any pointer it handed
///   out).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_response_free(response: *mut tokengate_response) {
    boundary::guard((), || {
        if !response.is_null() {
            // SAFETY: the caller hands back ownership of the Box from the request functions.
            drop(unsafe { Box::from_raw(response) });
        }
    });
}
