//! Logging in from C: `tokengate_device_login` (the OAuth2 device authorization grant, RFC 8628)
//! with a prompt callback, `tokengate_browser_login` (the authorization code grant with PKCE on a
//! loopback redirect, RFC 7636 and RFC 8252) with an open-the-URL callback, `tokengate_metadata`
//! (the endpoints found from the issuer, RFC 8414 / OpenID Connect), and `tokengate_cancel`,
//! which stops a login from another thread.

use std::ffi::{CString, c_char, c_void};
use std::ptr;

use tokengate::Network;
use tokengate::login::{BrowserLogin, Cancel, DeviceLogin, DevicePrompt, Metadata};

use crate::boundary::{self, Failure, c_string, ffi_boundary};
use crate::error::tokengate_error;
use crate::result::tokengate_result;
use crate::token::tokengate_token;

/// A flag that stops logins from another thread: `tokengate_cancel_cancel()` ends a
/// `tokengate_device_login_run()` that uses it at once, with `TOKENGATE_RESULT_CANCELLED`.
/// Thread-safe: any thread may cancel while another runs the login.
#[allow(non_camel_case_types)]
pub struct tokengate_cancel {
    inner: Cancel,
}

/// Creates a cancel flag, not set. On success `*cancel_out` receives a flag the caller owns (free
/// it with `tokengate_cancel_free()` once no login uses it).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`cancel_out` is NULL).
///
/// # Safety
///
/// - `cancel_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_cancel_new(
    cancel_out: *mut *mut tokengate_cancel,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        let out = boundary::out(cancel_out, "cancel_out")?;
        let cancel = Box::new(tokengate_cancel {
            inner: Cancel::new(),
        });
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(cancel)) };
        Ok(())
    })
}

/// Sets the flag: every login that uses it stops (now, or at once when it starts). NULL is a
/// no-op.
///
/// # Safety
///
/// - `cancel` is NULL or a live cancel flag.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_cancel_cancel(cancel: *const tokengate_cancel) {
    boundary::guard((), || {
        // SAFETY: forwarded from the caller.
        if let Ok(cancel) = unsafe { boundary::arg(cancel, "cancel") } {
            cancel.inner.cancel();
        }
    });
}

/// Frees a cancel flag. NULL is a no-op.
///
/// # Safety
///
/// - `cancel` is NULL or a flag from `tokengate_cancel_new()`, not freed yet, not used by a login
///   that is still running, and not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_cancel_free(cancel: *mut tokengate_cancel) {
    boundary::guard((), || {
        if !cancel.is_null() {
            // SAFETY: the caller hands back ownership of the Box from tokengate_cancel_new.
            drop(unsafe { Box::from_raw(cancel) });
        }
    });
}

/// Called once by `tokengate_device_login_run()`, on the thread that runs the login, with what the
/// user must see: open `verification_uri` on any device and enter `user_code` (or open
/// `verification_uri_complete`, which carries the code; NULL when the server sent none). The user
/// has `expires_in_ms` milliseconds to approve. The strings are borrowed for the call; none is a
/// secret.
#[allow(non_camel_case_types)]
pub type tokengate_device_prompt_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        user_code: *const c_char,
        verification_uri: *const c_char,
        verification_uri_complete: *const c_char,
        expires_in_ms: i64,
    ),
>;

/// A device login (RFC 8628): the user approves on another device while the program polls the
/// token endpoint. Create it with `tokengate_device_login_new()`, adjust it with the
/// `tokengate_device_login_set_*()` functions, run it with `tokengate_device_login_run()` (as
/// often as you like), and free it with `tokengate_device_login_free()`. Not thread-safe while
/// being set up; `tokengate_device_login_run()` may run on several threads at once.
#[allow(non_camel_case_types)]
pub struct tokengate_device_login {
    login: DeviceLogin,
    network: Network,
}

/// Creates a device login for the client `client_id`, asking `device_authorization_url` for a
/// device code and polling `token_url`. The URLs are checked when the login runs (https, or http on
/// a loopback address). On success `*login_out` receives a login the caller owns (free it with
/// `tokengate_device_login_free()`).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (a string or `login_out` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (a string is not UTF-8).
///
/// # Safety
///
/// - The strings are NULL or NUL-terminated.
/// - `login_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_device_login_new(
    device_authorization_url: *const c_char,
    token_url: *const c_char,
    client_id: *const c_char,
    login_out: *mut *mut tokengate_device_login,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (device_url, token_url, client_id) = unsafe {
            (
                boundary::text(device_authorization_url, "device_authorization_url")?,
                boundary::text(token_url, "token_url")?,
                boundary::text(client_id, "client_id")?,
            )
        };
        let out = boundary::out(login_out, "login_out")?;
        let login = Box::new(tokengate_device_login {
            login: DeviceLogin::new(device_url, token_url).client_id(client_id),
            network: Network::new(),
        });
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(login)) };
        Ok(())
    })
}

/// Runs `f` on the login behind `login` (a device or a browser login), with the string `value`.
///
/// # Safety
///
/// `login` is NULL or a live login not in use by another thread; `value` is NULL or
/// NUL-terminated.
unsafe fn set_text<L>(
    login: *mut L,
    value: *const c_char,
    what: &str,
    f: impl FnOnce(&mut L, &str),
) -> Result<(), Failure> {
    // SAFETY: forwarded from the caller.
    let (login, value) = unsafe {
        (
            boundary::arg_mut(login, "login")?,
            boundary::text(value, what)?,
        )
    };
    f(login, value);
    Ok(())
}

/// Sets the client's secret, for a confidential client. Defaults to none (a public client).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`login` or `client_secret` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`client_secret` is not UTF-8).
///
/// # Safety
///
/// - `login` is NULL or a live login not in use by another thread.
/// - `client_secret` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one
///   pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_device_login_set_client_secret(
    login: *mut tokengate_device_login,
    client_secret: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_text(login, client_secret, "client_secret", |l, v| {
                l.login = l.login.clone().client_secret(v);
            })
        }
    })
}

/// Sets the scope to ask for, space-separated. Defaults to none (the server's default scope).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`login` or `scope` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`scope` is not UTF-8).
///
/// # Safety
///
/// - `login` is NULL or a live login not in use by another thread.
/// - `scope` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_device_login_set_scope(
    login: *mut tokengate_device_login,
    scope: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_text(login, scope, "scope", |l, v| {
                l.login = l.login.clone().scope(v);
            })
        }
    })
}

/// Trusts the CA certificates of a PEM file as well as the operating system's, for the
/// authorization server (a private CA). The file is read when the login runs. Defaults to none.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`login` or `path` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`path` is not UTF-8).
///
/// # Safety
///
/// - `login` is NULL or a live login not in use by another thread.
/// - `path` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_device_login_add_root_certificates_file(
    login: *mut tokengate_device_login,
    path: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_text(login, path, "path", |l, v| {
                l.network = l.network.clone().add_root_certificates_pem_file(v);
            })
        }
    })
}

/// Runs the login: asks for a device code, calls `prompt` once (on this thread) with what the user
/// must see, then polls the token endpoint at the server's interval (`slow_down` adds 5 seconds)
/// until the user approves, refuses, or the code expires. It blocks this thread until then; set
/// `cancel` (NULL: none) from another thread to stop it at once. On success `*token_out` receives
/// the token (free it with `tokengate_token_free()`): hand it to `tokengate_client_login()`.
///
/// A TLS or proxy failure gives the code it gives for requests.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`login`, `prompt` or `token_out` is NULL),
/// `TOKENGATE_RESULT_LOGIN_DENIED` (the user refused), `TOKENGATE_RESULT_LOGIN_EXPIRED` (the code
/// expired before the user approved), `TOKENGATE_RESULT_CANCELLED` (`cancel` was set),
/// `TOKENGATE_RESULT_LOGIN_FAILED` (the server refused the login, e.g. an unknown client, or
/// answered something unusable), `TOKENGATE_RESULT_CONFIG` (a plain-http URL off loopback, an
/// unreadable CA file), `TOKENGATE_RESULT_TRANSPORT` (the server could not be reached).
///
/// # Safety
///
/// - `login` is NULL or a live login; `cancel` is NULL or a live cancel flag.
/// - `prompt` is NULL or a function matching the signature; `user_data` is passed to it as is.
/// - `token_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_device_login_run(
    login: *const tokengate_device_login,
    prompt: tokengate_device_prompt_callback,
    user_data: *mut c_void,
    cancel: *const tokengate_cancel,
    token_out: *mut *mut tokengate_token,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let login = unsafe { boundary::arg(login, "login")? };
        let prompt = prompt.ok_or_else(|| Failure::null("prompt"))?;
        let out = boundary::out(token_out, "token_out")?;
        let mut device = login.login.clone().network(login.network.clone());
        // SAFETY: forwarded from the caller (NULL: no cancel flag).
        if let Some(cancel) = unsafe { cancel.as_ref() } {
            device = device.cancel(&cancel.inner);
        }
        let token = device
            .run(|p: &DevicePrompt| {
                let (code, uri) = (c_string(p.user_code()), c_string(p.verification_uri()));
                let complete = p.verification_uri_complete().map(c_string);
                let expires_in_ms = i64::try_from(p.expires_in().as_millis()).unwrap_or(i64::MAX);
                // SAFETY: the caller promised a function of this signature; the strings live
                // for the call.
                unsafe {
                    prompt(
                        user_data,
                        code.as_ptr(),
                        uri.as_ptr(),
                        complete.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                        expires_in_ms,
                    );
                }
            })
            .map_err(tokengate::Error::Login)?;
        let token = Box::new(tokengate_token::new(token));
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(token)) };
        Ok(())
    })
}

/// Frees a device login. NULL is a no-op.
///
/// # Safety
///
/// - `login` is NULL or a login from `tokengate_device_login_new()`, not freed yet, not running,
///   and not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_device_login_free(login: *mut tokengate_device_login) {
    boundary::guard((), || {
        if !login.is_null() {
            // SAFETY: the caller hands back ownership of the Box from tokengate_device_login_new.
            drop(unsafe { Box::from_raw(login) });
        }
    });
}

/// Called once by `tokengate_browser_login_run()`, on the thread that runs the login, with the
/// authorization URL to open in the user's browser (borrowed for the call). Return at once: the
/// login waits for the browser's redirect only after this returns, so open the URL without waiting
/// for the page (a browser is another process; a test that plays the browser uses another thread).
#[allow(non_camel_case_types)]
pub type tokengate_browser_open_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, url: *const c_char)>;

/// A login in the user's browser: the authorization code grant with PKCE (RFC 7636) on a loopback
/// redirect (RFC 8252). Create it with `tokengate_browser_login_new()`, adjust it with the
/// `tokengate_browser_login_*()` setters, run it with `tokengate_browser_login_run()` (as often as
/// you like), and free it with `tokengate_browser_login_free()`. Not thread-safe while being set
/// up; `tokengate_browser_login_run()` may run on several threads at once.
#[allow(non_camel_case_types)]
pub struct tokengate_browser_login {
    login: BrowserLogin,
    network: Network,
}

/// Creates a browser login for the client `client_id`, sending the browser to
/// `authorization_url` and exchanging the code at `token_url`. The URLs are checked when the login
/// runs (https, or http on a loopback address). On success `*login_out` receives a login the
/// caller owns (free it with `tokengate_browser_login_free()`).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (a string or `login_out` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (a string is not UTF-8).
///
/// # Safety
///
/// - The strings are NULL or NUL-terminated.
/// - `login_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_browser_login_new(
    authorization_url: *const c_char,
    token_url: *const c_char,
    client_id: *const c_char,
    login_out: *mut *mut tokengate_browser_login,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (authorization_url, token_url, client_id) = unsafe {
            (
                boundary::text(authorization_url, "authorization_url")?,
                boundary::text(token_url, "token_url")?,
                boundary::text(client_id, "client_id")?,
            )
        };
        let out = boundary::out(login_out, "login_out")?;
        let login = Box::new(tokengate_browser_login {
            login: BrowserLogin::new(authorization_url, token_url).client_id(client_id),
            network: Network::new(),
        });
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(login)) };
        Ok(())
    })
}

/// Sets the client's secret, for a confidential client (it authenticates the code exchange).
/// Defaults to none (a public client, the usual case for an app on the user's machine).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`login` or `client_secret` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`client_secret` is not UTF-8).
///
/// # Safety
///
/// - `login` is NULL or a live login not in use by another thread.
/// - `client_secret` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one
///   pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_browser_login_set_client_secret(
    login: *mut tokengate_browser_login,
    client_secret: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_text(login, client_secret, "client_secret", |l, v| {
                l.login = l.login.clone().client_secret(v);
            })
        }
    })
}

/// Sets the scope to ask for, space-separated. Defaults to none (the server's default scope).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`login` or `scope` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`scope` is not UTF-8).
///
/// # Safety
///
/// - `login` is NULL or a live login not in use by another thread.
/// - `scope` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_browser_login_set_scope(
    login: *mut tokengate_browser_login,
    scope: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_text(login, scope, "scope", |l, v| {
                l.login = l.login.clone().scope(v);
            })
        }
    })
}

/// Requires the redirect's `iss` parameter to be `issuer` (RFC 9207), against mix-up attacks
/// when an application talks to several authorization servers. Defaults to none (not checked).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`login` or `issuer` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`issuer` is not UTF-8).
///
/// # Safety
///
/// - `login` is NULL or a live login not in use by another thread.
/// - `issuer` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_browser_login_expect_issuer(
    login: *mut tokengate_browser_login,
    issuer: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_text(login, issuer, "issuer", |l, v| {
                l.login = l.login.clone().expect_issuer(v);
            })
        }
    })
}

/// Trusts the CA certificates of a PEM file as well as the operating system's, for the code
/// exchange at the token endpoint (a private CA). The file is read when the login runs. Defaults
/// to none.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`login` or `path` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`path` is not UTF-8).
///
/// # Safety
///
/// - `login` is NULL or a live login not in use by another thread.
/// - `path` is NULL or NUL-terminated; `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_browser_login_add_root_certificates_file(
    login: *mut tokengate_browser_login,
    path: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_text(login, path, "path", |l, v| {
                l.network = l.network.clone().add_root_certificates_pem_file(v);
            })
        }
    })
}

/// Adds a parameter to the authorization URL (e.g. `prompt` = `consent`, or `access_type` =
/// `offline`, which some servers want before they issue a refresh token). Defaults to none.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`login`, `name` or `value` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`name` or `value` is not UTF-8).
///
/// # Safety
///
/// - `login` is NULL or a live login not in use by another thread.
/// - `name` and `value` are NULL or NUL-terminated; `error_out` is NULL or valid for writing one
///   pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_browser_login_add_authorization_param(
    login: *mut tokengate_browser_login,
    name: *const c_char,
    value: *const c_char,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let name = unsafe { boundary::text(name, "name")? };
        // SAFETY: forwarded from the caller.
        unsafe {
            set_text(login, value, "value", |l, v| {
                l.login = l.login.clone().authorization_param(name, v);
            })
        }
    })
}

/// Sets how long the browser has to come back with the authorization, in milliseconds, from the
/// moment the URL is handed to the open callback. Defaults to 5 minutes.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`login` is NULL), `TOKENGATE_RESULT_INVALID_ARGUMENT`
/// (`ms` is 0).
///
/// # Safety
///
/// - `login` is NULL or a live login not in use by another thread.
/// - `error_out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_browser_login_set_timeout_ms(
    login: *mut tokengate_browser_login,
    ms: u64,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let login = unsafe { boundary::arg_mut(login, "login")? };
        if ms == 0 {
            return Err(Failure::invalid("the timeout must be at least 1 ms"));
        }
        login.login = login.login.clone().timeout(boundary::millis(ms));
        Ok(())
    })
}

/// Runs the login: listens on `127.0.0.1` (a port the system picks), calls `open` once (on this
/// thread) with the authorization URL, waits for the browser's redirect (at most the timeout; set
/// `cancel`, NULL for none, from another thread to stop it at once), checks it (`state`, and `iss`
/// when expected), tells the browser the tab can be closed, and exchanges the code (with the PKCE
/// verifier) for a token. On success `*token_out` receives the token (free it with
/// `tokengate_token_free()`): hand it to `tokengate_client_login()`.
///
/// A TLS or proxy failure at the token endpoint gives the code it gives for requests.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`login`, `open` or `token_out` is NULL),
/// `TOKENGATE_RESULT_LOGIN_DENIED` (the user refused), `TOKENGATE_RESULT_LOGIN_TIMEOUT` (the
/// browser did not come back in time), `TOKENGATE_RESULT_CANCELLED` (`cancel` was set),
/// `TOKENGATE_RESULT_LOGIN_FAILED` (the redirect failed a check, carried an error, or the code was
/// refused), `TOKENGATE_RESULT_CONFIG` (a plain-http URL off loopback),
/// `TOKENGATE_RESULT_TRANSPORT` (the token endpoint could not be reached).
///
/// # Safety
///
/// - `login` is NULL or a live login; `cancel` is NULL or a live cancel flag.
/// - `open` is NULL or a function matching the signature; `user_data` is passed to it as is.
/// - `token_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_browser_login_run(
    login: *const tokengate_browser_login,
    open: tokengate_browser_open_callback,
    user_data: *mut c_void,
    cancel: *const tokengate_cancel,
    token_out: *mut *mut tokengate_token,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let login = unsafe { boundary::arg(login, "login")? };
        let open = open.ok_or_else(|| Failure::null("open"))?;
        let out = boundary::out(token_out, "token_out")?;
        let mut browser = login.login.clone().network(login.network.clone());
        // SAFETY: forwarded from the caller (NULL: no cancel flag).
        if let Some(cancel) = unsafe { cancel.as_ref() } {
            browser = browser.cancel(&cancel.inner);
        }
        let token = browser
            .run(|url| {
                let url = c_string(url);
                // SAFETY: the caller promised a function of this signature; the URL lives for
                // the call.
                unsafe { open(user_data, url.as_ptr()) };
            })
            .map_err(tokengate::Error::Login)?;
        let token = Box::new(tokengate_token::new(token));
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(token)) };
        Ok(())
    })
}

/// Frees a browser login. NULL is a no-op.
///
/// # Safety
///
/// - `login` is NULL or a login from `tokengate_browser_login_new()`, not freed yet, not running,
///   and not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_browser_login_free(login: *mut tokengate_browser_login) {
    boundary::guard((), || {
        if !login.is_null() {
            // SAFETY: the caller hands back ownership of the Box from tokengate_browser_login_new.
            drop(unsafe { Box::from_raw(login) });
        }
    });
}

/// An authorization server's endpoints, read from its metadata by `tokengate_metadata_discover()`.
/// Immutable: any thread may read it. Free it with `tokengate_metadata_free()`.
#[allow(non_camel_case_types)]
pub struct tokengate_metadata {
    metadata: Metadata,
    issuer: CString,
    token_endpoint: CString,
    authorization_endpoint: Option<CString>,
    device_authorization_endpoint: Option<CString>,
    revocation_endpoint: Option<CString>,
}

/// Reads the metadata of `issuer` (e.g. `https://auth.example.com`): RFC 8414's
/// `/.well-known/oauth-authorization-server`, then OpenID Connect's
/// `/.well-known/openid-configuration`; the document's `issuer` must be `issuer`. It trusts the
/// operating system's certificates and the environment's proxies. On success `*metadata_out`
/// receives the metadata (free it with `tokengate_metadata_free()`).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`issuer` or `metadata_out` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`issuer` is not UTF-8), `TOKENGATE_RESULT_LOGIN_FAILED`
/// (no metadata there, or metadata of another issuer), `TOKENGATE_RESULT_TRANSPORT` (the server
/// could not be reached).
///
/// # Safety
///
/// - `issuer` is NULL or NUL-terminated.
/// - `metadata_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_metadata_discover(
    issuer: *const c_char,
    metadata_out: *mut *mut tokengate_metadata,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let issuer = unsafe { boundary::text(issuer, "issuer")? };
        let out = boundary::out(metadata_out, "metadata_out")?;
        let metadata =
            Metadata::discover(issuer, &Network::new()).map_err(tokengate::Error::Login)?;
        let found = Box::new(tokengate_metadata {
            issuer: c_string(metadata.issuer()),
            token_endpoint: c_string(metadata.token_endpoint()),
            authorization_endpoint: metadata.authorization_endpoint().map(c_string),
            device_authorization_endpoint: metadata.device_authorization_endpoint().map(c_string),
            revocation_endpoint: metadata.revocation_endpoint().map(c_string),
            metadata,
        });
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(found)) };
        Ok(())
    })
}

/// One string of the metadata, borrowed: NULL when `metadata` is NULL or has no such endpoint.
fn endpoint(
    metadata: *const tokengate_metadata,
    pick: impl FnOnce(&tokengate_metadata) -> Option<&CString>,
) -> *const c_char {
    boundary::guard(ptr::null(), || {
        // SAFETY: the caller of the getter promised NULL or a live metadata.
        match unsafe { metadata.as_ref() } {
            Some(m) => pick(m).map_or(ptr::null(), |s| s.as_ptr()),
            None => ptr::null(),
        }
    })
}

/// The issuer, borrowed from `metadata` (valid until it is freed); NULL when `metadata` is NULL.
///
/// # Safety
///
/// - `metadata` is NULL or live metadata.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_metadata_issuer(
    metadata: *const tokengate_metadata,
) -> *const c_char {
    endpoint(metadata, |m| Some(&m.issuer))
}

/// The token endpoint (for `tokengate_client_builder_set_oauth2()`), borrowed from `metadata`;
/// NULL when `metadata` is NULL.
///
/// # Safety
///
/// - `metadata` is NULL or live metadata.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_metadata_token_endpoint(
    metadata: *const tokengate_metadata,
) -> *const c_char {
    endpoint(metadata, |m| Some(&m.token_endpoint))
}

/// The authorization endpoint (for the browser login), borrowed from `metadata`; NULL when the
/// server has none or `metadata` is NULL.
///
/// # Safety
///
/// - `metadata` is NULL or live metadata.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_metadata_authorization_endpoint(
    metadata: *const tokengate_metadata,
) -> *const c_char {
    endpoint(metadata, |m| m.authorization_endpoint.as_ref())
}

/// The device authorization endpoint (for the device login), borrowed from `metadata`; NULL when
/// the server has none or `metadata` is NULL.
///
/// # Safety
///
/// - `metadata` is NULL or live metadata.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_metadata_device_authorization_endpoint(
    metadata: *const tokengate_metadata,
) -> *const c_char {
    endpoint(metadata, |m| m.device_authorization_endpoint.as_ref())
}

/// The revocation endpoint (for `tokengate_client_builder_set_revocation_url()`), borrowed from
/// `metadata`; NULL when the server has none or `metadata` is NULL.
///
/// # Safety
///
/// - `metadata` is NULL or live metadata.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_metadata_revocation_endpoint(
    metadata: *const tokengate_metadata,
) -> *const c_char {
    endpoint(metadata, |m| m.revocation_endpoint.as_ref())
}

/// Creates a device login on the endpoints of `metadata` for the client `client_id` (as
/// `tokengate_device_login_new()`).
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`metadata`, `client_id` or `login_out` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`client_id` is not UTF-8),
/// `TOKENGATE_RESULT_LOGIN_FAILED` (the server has no device authorization endpoint).
///
/// # Safety
///
/// - `metadata` is NULL or live metadata; `client_id` is NULL or NUL-terminated.
/// - `login_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_device_login_from_metadata(
    metadata: *const tokengate_metadata,
    client_id: *const c_char,
    login_out: *mut *mut tokengate_device_login,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (metadata, client_id) = unsafe {
            (
                boundary::arg(metadata, "metadata")?,
                boundary::text(client_id, "client_id")?,
            )
        };
        let out = boundary::out(login_out, "login_out")?;
        let login = DeviceLogin::from_metadata(&metadata.metadata)
            .map_err(tokengate::Error::Login)?
            .client_id(client_id);
        let login = Box::new(tokengate_device_login {
            login,
            network: metadata.metadata.network().clone(),
        });
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(login)) };
        Ok(())
    })
}

/// Creates a browser login on the endpoints of `metadata` for the client `client_id` (as
/// `tokengate_browser_login_new()`); when the server says it sends `iss` in its redirects
/// (RFC 9207), its issuer is expected there.
///
/// Codes: `TOKENGATE_RESULT_NULL_ARGUMENT` (`metadata`, `client_id` or `login_out` is NULL),
/// `TOKENGATE_RESULT_INVALID_ARGUMENT` (`client_id` is not UTF-8),
/// `TOKENGATE_RESULT_LOGIN_FAILED` (the server has no authorization endpoint, or no `S256` PKCE).
///
/// # Safety
///
/// - `metadata` is NULL or live metadata; `client_id` is NULL or NUL-terminated.
/// - `login_out` and `error_out` are NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_browser_login_from_metadata(
    metadata: *const tokengate_metadata,
    client_id: *const c_char,
    login_out: *mut *mut tokengate_browser_login,
    error_out: *mut *mut tokengate_error,
) -> tokengate_result {
    ffi_boundary!(error_out, {
        // SAFETY: forwarded from the caller.
        let (metadata, client_id) = unsafe {
            (
                boundary::arg(metadata, "metadata")?,
                boundary::text(client_id, "client_id")?,
            )
        };
        let out = boundary::out(login_out, "login_out")?;
        let login = BrowserLogin::from_metadata(&metadata.metadata)
            .map_err(tokengate::Error::Login)?
            .client_id(client_id);
        let login = Box::new(tokengate_browser_login {
            login,
            network: metadata.metadata.network().clone(),
        });
        // SAFETY: `out` is non-NULL and valid for writes per the caller's guarantee.
        unsafe { out.write(Box::into_raw(login)) };
        Ok(())
    })
}

/// Frees metadata. NULL is a no-op. Logins made from it are not affected.
///
/// # Safety
///
/// - `metadata` is NULL or metadata from `tokengate_metadata_discover()`, not freed yet, and not
///   used afterwards (nor the strings borrowed from it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tokengate_metadata_free(metadata: *mut tokengate_metadata) {
    boundary::guard((), || {
        if !metadata.is_null() {
            // SAFETY: the caller hands back ownership of the Box from tokengate_metadata_discover.
            drop(unsafe { Box::from_raw(metadata) });
        }
    });
}
