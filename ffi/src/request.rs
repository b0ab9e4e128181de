//! `tokengate_request`: a request built up front (method, path, query, headers, body, deadline),
//! sent with `tokengate_client_send()`; and `tokengate_header`, the headers of the one-call
//! `tokengate_client_request()`.

use std::ffi::c_char;
use std::time::Duration;

use tokengate::Client;
use tokengate::http::{HeaderName, HeaderValue, Method};

use crate::boundary::{self, Failure, ffi_boundary};
use crate::error::tokengate_error;
use crate::response::tokengate_response;
use crate::result::{self, tokengate_result};

/// One request header for `tokengate_client_request()`: NUL-terminated name and value, borrowed
/// for the call. This struct never changes (a header is a name and a value).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct tokengate_header {
    /// The header name, e.g. `Accept`.
    pub name: *const c_char,
    /// The header value.
    pub value: *const c_char,
}

/// A request: method, path, query parameters, headers, body and deadline, checked as they are
/// set. Build it with `tokengate_request_new()` and the `tokengate_request_*()` functions, send it
/// with `tokengate_client_send()` (as often as you like), free it with `tokengate_request_free()`.
/// Changing it is not thread-safe; sending it from several threads at once is.
#[allow(non_camel_case_types)]
pub struct tokengate_request {
    prepared: Prepared,
}

impl tokengate_request {
    pub(crate) fn prepared(&self) -> &Prepared {
        &self.prepared
    }
}

/// A request's parts, checked.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
}

/// An HTTP method as RFC 9110 §9 spells them: token characters, upper case. A lower-case `get`
/// would be sent as a different, unknown method: it is refused here rather than failing later.
fn method(text: &str) -> Result<Method, Failure> {
    let tchar =
        |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    if text.is_empty() || !text.bytes().all(tchar) {
        return Err(Failure::invalid(format!(
            "method {text:?} is not an HTTP method in upper case (GET, POST, ...)"
        )));
    }
    Method::from_bytes(text.as_bytes())
        .map_err(|_| Failure::invalid(format!("method {text:?} is not an HTTP method")))
}

/// Checks a header, naming it (never its value, which may be a credential) when it is invalid.
fn header(name: &str, value: &str) -> Result<(String, String), Failure> {
    if HeaderName::from_bytes(name.as_bytes()).is_err() || HeaderValue::from_str(value).is_err() {
        return Err(Failure::new(
            result::TOKENGATE_RESULT_INVALID_HEADER,
            format!("invalid header: {name:?} (its name or value is not valid HTTP)"),
        ));
    }
    Ok((name.to_owned(), value.to_owned()))
}

impl Prepared {
    fn new(method_text: &str, path: &str) -> Result<Prepared, Failure> {
        Ok(Prepared {
            method: method(method_text)?,
            path: path.to_owned(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            timeout: None,
        })
    }

    /// The parts of a `tokengate_client_request()` call.
    ///
    /// # Safety
    ///
    /// As `tokengate_client_request()` requires of these arguments.
    pub(crate) unsafe fn from_parts(
        method_text: *const c_char,
        path: *const c_char,
        headers: *const tokengate_header,
        headers_len: usize,
        body: *const u8,
        body_len: usize,
    ) -> Result<Prepared, Failure> {
        // SAFETY: forwarded from the caller.
        let (method_text, path) = unsafe {
            (
                boundary::text(method_text, "method")?,
                boundary::text(path, "path")?,
            )
        };
        let mut prepared = Prepared::new(method_text, path)?;
        let headers: &[tokengate_header] = match (headers.is_null(), headers_len) {
            (true, 0) => &[],
            (true, _) => return Err(Failure::null("headers (with a non-zero headers_len)")),
            // SAFETY: non-NULL, pointing to headers_len headers per the caller's guarantee.
            (false, n) => unsafe { std::slice::from_raw_parts(headers, n) },
        };
        for h in headers {
            // SAFETY: forwarded from the caller.
            let (name, value) = unsafe {
                (
                    boundary::text(h.name, "header name")?,
                    boundary::text(h.value, "header value")?,
                )
            };
            prepared.headers.push(header(name, value)?);
        }
        if !body.is_null() || body_len != 0 {
            // SAFETY: forwarded from the caller.
            prepared.body = Some(unsafe { boundary::bytes(body, body_len, "body") }?.to_vec());
        }
        Ok(prepared)
    }

    /// Sends the request and returns the response with its body unread.
    pub(crate) fn send(&self, client: &Client) -> Result<tokengate_response, Failure> {
        let mut rb = client.request(self.method.clone(), &self.path);
        for (name, value) in &self.query {
            rb = rb.query(name, value);
        }
        for (name, value) in &self.headers {
            rb = rb.header(name, value);
        }
        if let Some(t) = self.timeout {
            rb = rb.timeout(t);
        }
        let response = match &self.body {
            Some(body) => rb.send(body.clone()),
            None => rb.call(),
        }?;
        Ok(tokengate_response::new(response, self.timeout.is_some()))
    }
}

/// Runs `f` on the request behind `request` (NULL: `TOKENGATE_RESULT_NULL_ARGUMENT`).
///
/// # Safety
///
/// `request` is NULL or a live request not in use by another thread.
unsafe fn with_request(
    request: *mut tokengate_request,
    f: impl FnOnce(&mut Prepared) -> Result<(), Failure>,
) -> Result<(), Failure> {
    // SAFETY: forwarded from the caller.
    f(&mut unsafe { boundary::arg_mut(request, "request") }?.prepared)
}

/// Creates a request. `method` is an HTTP method in upper case (`GET`, `POST`, ...; `"get"` is
/// refused); `path` is joined to the client's base URL, or is an absolute URL (the token goes only
/// to the base URL's origin). On success `*request_out` receives a request the caller owns (free
/// it with `tokengate_request_free()`).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`method`, `path` or `request_out` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`method` is not upper-case token characters, or a string
/// is not UTF-8).
///
/// # Safety
///
/// - `method` and `path` are NULL or NUL-terminated.
/// - `request_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_request_new(
    method: *const c_char,
    path: *const c_char,
    request_out: *mut *mut tokengate_request,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (method, path) = unsafe {
            (
                boundary::text(method, "method")?,
                boundary::text(path, "path")?,
            )
        };
        let out = boundary::out(request_out, "request_out")?;
        let request = Box::new(tokengate_request {
            prepared: Prepared::new(method, path)?,
        });
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(request)) };
        Ok(())
    })
}

/// Adds a header (copied). An `Authorization` header is replaced by the token's on requests to
/// the API origin.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`request`, `name` or `value` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`name` or `value` is not UTF-8),
/// `TOKENGATE_RESULT_INVALID_HEADER` (the name or value is not valid HTTP; the message names the
/// header, never its value).
///
/// # Safety
///
/// - `request` is NULL or a live request not in use by another thread.
/// - `name` and `value` are NULL or NUL-terminated; `error_out` is NULL or valid for writing one
///   pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_request_add_header(
    request: *mut tokengate_request,
    name: *const c_char,
    value: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_request(request, |r| {
                let (name, value) = (
                    boundary::text(name, "name")?,
                    boundary::text(value, "value")?,
                );
                r.headers.push(header(name, value)?);
                Ok(())
            })
        }
    })
}

/// Appends a query parameter to the URL, form-encoded (copied).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`request`, `name` or `value` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`name` or `value` is not UTF-8).
///
/// # Safety
///
/// - `request` is NULL or a live request not in use by another thread.
/// - `name` and `value` are NULL or NUL-terminated; `error_out` is NULL or valid for writing one
///   pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_request_add_query(
    request: *mut tokengate_request,
    name: *const c_char,
    value: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_request(request, |r| {
                let (name, value) = (
                    boundary::text(name, "name")?,
                    boundary::text(value, "value")?,
                );
                r.query.push((name.to_owned(), value.to_owned()));
                Ok(())
            })
        }
    })
}

/// Sets the body: `len` bytes at `data` (copied; NULL with 0 is an empty body). It is kept, so the
/// request can be replayed after a rejection and sent again. Defaults to no body.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`request` is NULL, or `data` is NULL with a non-zero
/// `len`).
///
/// # Safety
///
/// - `request` is NULL or a live request not in use by another thread.
/// - `data` is NULL or points to `len` readable bytes; `error_out` is NULL or valid for writing one
///   pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_request_set_body(
    request: *mut tokengate_request,
    data: *const u8,
    len: usize,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_request(request, |r| {
                r.body = Some(boundary::bytes(data, len, "data")?.to_vec());
                Ok(())
            })
        }
    })
}

/// Sets a deadline for each sending of this request, counted from the start of
/// `tokengate_client_send()`: it covers the wait for a token (also another thread's refresh), every
/// redirect and replay, and reading the response body. Past it the send fails with
/// `TOKENGATE_RESULT_DEADLINE`, and so does a body read. 0 removes it. Defaults to none: the
/// client's timeouts and its refresh timeout bound the call.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`request` is NULL).
///
/// # Safety
///
/// - `request` is NULL or a live request not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_request_set_timeout_ms(
    request: *mut tokengate_request,
    timeout_ms: u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            with_request(request, |r| {
                r.timeout = (timeout_ms > 0).then(|| boundary::millis(timeout_ms));
                Ok(())
            })
        }
    })
}

/// Frees a request. NULL is a no-op. Responses to it are not affected.
///
/// # Safety
///
/// - `request` is NULL or a request from `tokengate_request_new()`, not freed yet, not being sent,
///   and not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_request_free(request: *mut tokengate_request) {
    boundary::guard((), || {
        if !request.is_null() {
            // SAFETY: the caller hands back ownership of the Box from tokengate_request_new.
            drop(unsafe { Box::from_raw(request) });
        }
    });
}
