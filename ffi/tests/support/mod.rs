//! Helpers shared by the C ABI test binaries: strings, errors, builders, clients, tokens, requests
//! and threads, on `tokengate_testserver::support` (which also has the temporary directories).
//! Each binary uses a subset, hence `dead_code` is allowed.
#![allow(dead_code)]

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use tokengate_ffi::*;
use tokengate_testserver::support;
#[allow(unused_imports)]
pub use tokengate_testserver::support::PATIENCE;

/// Threads released together in the concurrency tests.
pub const THREADS: usize = 16;

pub fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL in test strings")
}

/// A C string the library handed out, as Rust text (None for NULL).
///
/// # Safety
///
/// `p` is NULL or a live NUL-terminated string.
pub unsafe fn text(p: *const c_char) -> Option<String> {
    // SAFETY: forwarded from the caller.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// (code, message, transient) of an owned error; frees it.
///
/// # Safety
///
/// `e` is a live error the caller owns.
pub unsafe fn take_error(e: *mut tokengate_error) -> (tokengate_result, String, bool) {
    // SAFETY: `e` is live until the free below.
    let out = unsafe {
        let mut len = 0;
        let msg = tokengate_error_message(e, &mut len);
        let text = CStr::from_ptr(msg).to_str().expect("UTF-8").to_owned();
        assert_eq!(text.len(), len);
        (
            tokengate_error_code(e),
            text,
            tokengate_error_is_transient(e) != 0,
        )
    };
    // SAFETY: freed once.
    unsafe { tokengate_error_free(e) };
    out
}

/// Takes this thread's last error as (code, message).
pub fn last_error() -> Option<(tokengate_result, String)> {
    let e = tokengate_last_error();
    if e.is_null() {
        return None;
    }
    // SAFETY: `e` is a live error we own.
    let (code, message, _) = unsafe { take_error(e) };
    Some((code, message))
}

/// Runs a call that takes a last `tokengate_error **`: `Ok(())` on success, else the code and
/// message from the out-param (checked to agree with the thread's last error and with the
/// returned code).
pub fn call(f: impl FnOnce(*mut *mut tokengate_error) -> tokengate_result) -> Result<(), Failed> {
    let mut error = ptr::null_mut();
    let code = f(&mut error);
    if code == TOKENGATE_RESULT_OK {
        assert!(error.is_null(), "error_out is written only on failure");
        assert!(last_error().is_none(), "success clears the thread's error");
        return Ok(());
    }
    assert!(!error.is_null(), "a failure fills error_out");
    // SAFETY: a live error we own.
    let (own_code, message, transient) = unsafe { take_error(error) };
    assert_eq!(own_code, code, "the error's code is the returned code");
    let (thread_code, thread_message) = last_error().expect("the thread's last error is kept");
    assert_eq!((thread_code, &thread_message), (code, &message));
    Err(Failed {
        code,
        message,
        transient,
    })
}

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub code: tokengate_result,
    pub message: String,
    pub transient: bool,
}

/// Unwraps a call, panicking with its message.
pub fn ok(r: Result<(), Failed>) {
    if let Err(f) = r {
        panic!("call failed: code {} {}", f.code, f.message);
    }
}

/// A builder for `base_url`.
pub fn builder(base_url: &str) -> *mut tokengate_client_builder {
    let base = c(base_url);
    let mut b = ptr::null_mut();
    // SAFETY: valid string and out-pointers.
    ok(call(|e| unsafe {
        tokengate_client_builder_new(base.as_ptr(), &mut b, e)
    }));
    b
}

/// Builds a client from `b` and frees the builder; panics with the error when building fails.
pub fn build(b: *mut tokengate_client_builder) -> *mut tokengate_client {
    let mut client = ptr::null_mut();
    // SAFETY: a live builder, freed once.
    let r = call(|e| unsafe { tokengate_client_builder_build(b, &mut client, e) });
    // SAFETY: freed once.
    unsafe { tokengate_client_builder_free(b) };
    ok(r);
    client
}

/// Builds a client from `b` (freeing it), or the failure.
pub fn try_build(b: *mut tokengate_client_builder) -> Result<*mut tokengate_client, Failed> {
    let mut client = ptr::null_mut();
    // SAFETY: a live builder, freed once.
    let r = call(|e| unsafe { tokengate_client_builder_build(b, &mut client, e) });
    // SAFETY: freed once.
    unsafe { tokengate_client_builder_free(b) };
    r.map(|()| client)
}

/// Calls a builder setter that takes one string.
pub fn set(
    b: *mut tokengate_client_builder,
    f: unsafe extern "C" fn(
        *mut tokengate_client_builder,
        *const c_char,
        *mut *mut tokengate_error,
    ) -> tokengate_result,
    value: &str,
) {
    let v = c(value);
    // SAFETY: a live builder and string.
    ok(call(|e| unsafe { f(b, v.as_ptr(), e) }));
}

/// Calls a builder setter that takes one integer.
pub fn set_u64(
    b: *mut tokengate_client_builder,
    f: unsafe extern "C" fn(
        *mut tokengate_client_builder,
        u64,
        *mut *mut tokengate_error,
    ) -> tokengate_result,
    value: u64,
) {
    // SAFETY: a live builder.
    ok(call(|e| unsafe { f(b, value, e) }));
}

/// Sets the OAuth2 grant.
pub fn oauth2(b: *mut tokengate_client_builder, grant: tokengate_grant, token_url: &str) {
    let url = c(token_url);
    // SAFETY: a live builder and string.
    ok(call(|e| unsafe {
        tokengate_client_builder_set_oauth2(b, grant, url.as_ptr(), e)
    }));
}

/// A token the caller owns: `access`, lifetime `expires_in_ms` (0: unknown), optional refresh
/// token.
pub fn token(access: &str, expires_in_ms: u64, refresh: Option<&str>) -> *mut tokengate_token {
    let a = c(access);
    let mut t = ptr::null_mut();
    // SAFETY: valid strings and out-pointers; the token is live below.
    unsafe {
        ok(call(|e| tokengate_token_new(a.as_ptr(), &mut t, e)));
        if expires_in_ms > 0 {
            ok(call(|e| {
                tokengate_token_set_expires_in_ms(t, expires_in_ms, e)
            }));
        }
        if let Some(r) = refresh {
            let r = c(r);
            ok(call(|e| {
                tokengate_token_set_refresh_token(t, r.as_ptr(), e)
            }));
        }
    }
    t
}

/// Sets the builder's starting token (and frees the token).
pub fn start_with(b: *mut tokengate_client_builder, t: *mut tokengate_token) {
    // SAFETY: live builder and token, the token freed once.
    unsafe {
        ok(call(|e| tokengate_client_builder_set_token(b, t, e)));
        tokengate_token_free(t);
    }
}

/// `tokengate_client_set_token` with a one-hour token, as after a new login.
pub fn set_token(client: *const tokengate_client, access: &str) -> Result<(), Failed> {
    let t = token(access, 3_600_000, None);
    // SAFETY: a live client and token; the token freed once.
    let r = call(|e| unsafe { tokengate_client_set_token(client, t, e) });
    // SAFETY: freed once.
    unsafe { tokengate_token_free(t) };
    r
}

/// `tokengate_client_request` with raw header and body pointers: the result and the response
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
) -> (Result<(), Failed>, *mut tokengate_response) {
    let (method, path) = (c(method), c(path));
    let mut response = ptr::null_mut();
    // SAFETY: forwarded from the caller; the strings live for the call.
    let r = call(|e| unsafe {
        tokengate_client_request(
            client,
            method.as_ptr(),
            path.as_ptr(),
            headers.0,
            headers.1,
            body.0,
            body.1,
            &mut response,
            e,
        )
    });
    assert_eq!(
        r.is_ok(),
        !response.is_null(),
        "the response is written exactly on success"
    );
    (r, response)
}

/// Reads the whole body of `response` (at most `max` bytes).
pub fn body(response: *mut tokengate_response, max: usize) -> Result<Vec<u8>, Failed> {
    let (mut data, mut len) = (ptr::null(), 0);
    // SAFETY: a live response and valid out-pointers; the bytes are copied while it lives.
    call(|e| unsafe { tokengate_response_body(response, max, &mut data, &mut len, e) })?;
    if len == 0 {
        assert!(data.is_null(), "an empty body is NULL");
        return Ok(Vec::new());
    }
    // SAFETY: `len` bytes owned by the response.
    Ok(unsafe { std::slice::from_raw_parts(data, len) }.to_vec())
}

/// `GET path`: the status and body, or the failure.
pub fn get_body(client: *const tokengate_client, path: &str) -> Result<(u16, Vec<u8>), Failed> {
    const NONE: (*const tokengate_header, usize) = (ptr::null(), 0);
    // SAFETY: live client, no headers, no body.
    let (r, response) = unsafe { request(client, "GET", path, NONE, (ptr::null(), 0)) };
    r?;
    // SAFETY: a live response, freed once.
    unsafe {
        let status = tokengate_response_status(response);
        let bytes = body(response, 1 << 20);
        tokengate_response_free(response);
        Ok((status, bytes?))
    }
}

/// `GET path`: the status, or the error code.
pub fn get(client: *const tokengate_client, path: &str) -> Result<u16, tokengate_result> {
    get_body(client, path).map(|(s, _)| s).map_err(|f| f.code)
}

/// The client's counters.
pub fn stats(client: *const tokengate_client) -> tokengate_stats {
    let mut s = tokengate_stats::default();
    // SAFETY: a live client and a whole struct.
    ok(call(|e| unsafe {
        tokengate_client_stats(client, &mut s, size_of::<tokengate_stats>(), e)
    }));
    s
}

/// Frees a client.
pub fn free(client: *mut tokengate_client) {
    // SAFETY: the caller's client, freed once.
    unsafe { tokengate_client_free(client) };
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

/// What [`browse`] sends back: the status and text of the page the browser ends on.
pub type Page = (u16, String);

/// Plays the user's browser for `tokengate_browser_login_run()`: follows the URL, and its
/// redirect to the login's loopback listener, on a thread of its own (a browser is another
/// process: the login waits for the redirect only once this returns), and sends the page it ends
/// on to the `crossbeam_channel::Sender<Page>` behind `user_data`.
///
/// # Safety
///
/// `user_data` points to a live `Sender<Page>`; `url` is a NUL-terminated string.
pub unsafe extern "C" fn browse(user_data: *mut std::ffi::c_void, url: *const c_char) {
    // SAFETY: as the caller promised.
    let (tx, url) = unsafe {
        (
            (*user_data.cast::<crossbeam_channel::Sender<Page>>()).clone(),
            text(url).expect("a URL"),
        )
    };
    std::thread::spawn(move || {
        let agent: tokengate::ureq::Agent = tokengate::ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let page = agent.get(&url).call().map_or((0, String::new()), |mut r| {
            let status = r.status().as_u16();
            (status, r.body_mut().read_to_string().unwrap_or_default())
        });
        let _ = tx.send(page);
    });
}
