//! Helpers shared by the C ABI test binaries: strings, the last error, clients, requests and
//! threads, on `tokengate_testserver::support` (which also has the temporary directories). Each
//! binary uses a subset, hence `dead_code` is allowed.
#![allow(dead_code)]

use std::ffi::{CStr, CString};
use std::ptr;

use tokengate_ffi::*;
use tokengate_testserver::support;
pub use tokengate_testserver::support::PATIENCE;

/// Threads released together in the concurrency tests.
pub const THREADS: usize = 16;

pub fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL in test strings")
}

/// Takes this thread's last error as (code, message).
pub fn last_error() -> Option<(tokengate_result, String)> {
    let e = tokengate_last_error();
    if e.is_null() {
        return None;
    }
    // SAFETY: `e` is a live error we own until the free below.
    let out = unsafe {
        let mut len = 0;
        let msg = tokengate_error_message(e, &mut len);
        let text = CStr::from_ptr(msg).to_str().expect("UTF-8").to_owned();
        assert_eq!(text.len(), len);
        (tokengate_error_code(e), text)
    };
    // SAFETY: freed once.
    unsafe { tokengate_error_free(e) };
    Some(out)
}

/// A client built from JSON; panics with the last error when that fails.
pub fn client_from_json(json: &str) -> *mut tokengate_client {
    let json = c(json);
    let mut client = ptr::null_mut();
    // SAFETY: valid string and out-pointer.
    let code = unsafe { tokengate_client_new_from_json(json.as_ptr(), &mut client) };
    assert_eq!(code, tokengate_result::Ok, "{:?}", last_error());
    client
}
/// `tokengate_client_request` with raw header and body pointers: the code and the response
/// (NULL on failure; checked: out-params are written only on success).
///
/// # Safety
///
/// `client` is live; `headers` / `body` are NULL or point to `headers_len` headers / `body_len`
/// bytes.
pub unsafe fn request(
    client: *const tokengate_client,
    method: &str,
    path: &str,
    headers: (*const tokengate_header, usize),
    body: (*const u8, usize),
) -> (tokengate_result, *mut tokengate_response) {
    let (method, path) = (c(method), c(path));
    let mut response = ptr::null_mut();
    // SAFETY: forwarded from the caller; the strings live for the call.
    let code = unsafe {
        tokengate_client_request(
            client,
            method.as_ptr(),
            path.as_ptr(),
            headers.0,
            headers.1,
            body.0,
            body.1,
            &mut response,
        )
    };
    assert_eq!(
        code == tokengate_result::Ok,
        !response.is_null(),
        "the response is written exactly on success"
    );
    (code, response)
}

/// `GET path`: the status, or the error code.
pub fn get(client: *const tokengate_client, path: &str) -> Result<u16, tokengate_result> {
    const NONE: (*const tokengate_header, usize) = (ptr::null(), 0);
    // SAFETY: live client, no headers, no body.
    let (code, response) = unsafe { request(client, "GET", path, NONE, (ptr::null(), 0)) };
    if code != tokengate_result::Ok {
        return Err(code);
    }
    // SAFETY: a live response, freed once.
    unsafe {
        let status = tokengate_response_status(response);
        tokengate_response_free(response);
        Ok(status)
    }
}

/// Runs `f(i)` on THREADS threads released together; a thread that hangs fails the test.
pub fn on_threads<T: Send + 'static>(f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    support::on_threads(THREADS, f)
}

/// A client pointer that may cross threads (the header promises the client is thread-safe).
#[derive(Clone, Copy)]
pub struct Shared(pub *mut tokengate_client);
// SAFETY: tokengate_client is documented safe to use from many threads at once.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

/// `tokengate_client_set_token` with a one-hour token, as after a new login: the result code.
pub fn set_token(
    client: *const tokengate_client,
    access: &str,
    refresh: Option<&str>,
) -> tokengate_result {
    let access = c(access);
    let refresh = refresh.map(c);
    let token = tokengate_token {
        access_token: access.as_ptr(),
        expires_in_secs: 3600,
        refresh_token: refresh.as_ref().map_or(ptr::null(), |r| r.as_ptr()),
        token_type: ptr::null(),
    };
    // SAFETY: a live client (the caller's promise) and a token whose strings live for the call.
    unsafe { tokengate_client_set_token(client, &token) }
}
