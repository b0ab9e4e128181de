//! Errors across the boundary: tokengate's [`Error`] becomes an instance of one of the exception
//! classes of `tokengate/_errors.py`, and an exception raised by a Python refresher becomes a
//! [`RefreshError`].
//!
//! The classes are plain Python (so users can raise `RefreshFailed(..., transient=False)` from a
//! refresher of their own and read keyword attributes); this module looks them up by name.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use tokengate::{
    Error, LoginError, LoginErrorKind, RefreshError, RefreshErrorKind, StoreError, StoreErrorKind,
};

/// The module that defines the exception classes.
const ERRORS_MODULE: &str = "tokengate._errors";

/// The Python exception for `error`.
pub(crate) fn to_py(py: Python<'_>, error: &Error) -> PyErr {
    match instance(py, error) {
        Ok(value) => PyErr::from_value(value),
        Err(e) => e,
    }
}

/// A converter for `map_err` where the GIL is held again after a detached call.
pub(crate) fn py_err(py: Python<'_>) -> impl Fn(Error) -> PyErr + '_ {
    move |e| to_py(py, &e)
}

/// An instance of the exception class for `error`, with its keyword attributes set. Messages are
/// tokengate's `Display` text, which never holds a secret.
pub(crate) fn instance<'py>(py: Python<'py>, error: &Error) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("transient", error.is_transient())?;
    let class = match error {
        Error::LoginRequired(refresh) => {
            refresh_details(&kwargs, refresh.as_ref())?;
            "LoginRequired"
        }
        Error::Refresh(refresh) => {
            kwargs.set_item("configuration", refresh.is_configuration())?;
            let secs = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64());
            kwargs.set_item("retry_in", secs(refresh.next_attempt_in()))?;
            kwargs.set_item("retry_after", secs(refresh.retry_after()))?;
            refresh_details(&kwargs, Some(refresh))?;
            "RefreshFailed"
        }
        Error::RefresherPanicked => "RefreshFailed",
        Error::RefreshTimeout(waited) => {
            kwargs.set_item("timeout", waited.as_secs_f64())?;
            "RefreshTimeout"
        }
        Error::Transport(_) => "TransportError",
        Error::Tls(_) => "TlsError",
        Error::Proxy(proxy) => {
            kwargs.set_item("proxy", proxy.proxy())?;
            kwargs.set_item("auth_refused", proxy.is_auth_refused())?;
            "ProxyError"
        }
        Error::Deadline(timeout) => {
            kwargs.set_item("timeout", timeout.as_secs_f64())?;
            "Timeout"
        }
        Error::InvalidToken => "InvalidToken",
        Error::Store(store) => {
            store_details(&kwargs, store)?;
            "StoreError"
        }
        Error::Login(login) => {
            login_details(&kwargs, login)?;
            "LoginFailed"
        }
        Error::Revocation(refresh) => {
            refresh_details(&kwargs, Some(refresh))?;
            "RevocationFailed"
        }
        Error::InvalidUrl(_) | Error::InvalidHeader(_) | Error::Config(_) | Error::Json(_) => {
            "ConfigError"
        }
        _ => "TokengateError",
    };
    py.import(ERRORS_MODULE)?
        .getattr(class)?
        .call((with_causes(error),), Some(&kwargs))
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

/// A `ConfigError` with `message` (bad arguments that tokengate itself would call configuration).
pub(crate) fn config_error(py: Python<'_>, message: impl Into<String>) -> PyErr {
    let message = message.into();
    let made = py
        .import(ERRORS_MODULE)
        .and_then(|m| m.getattr("ConfigError"))
        .and_then(|class| class.call1((message,)));
    match made {
        Ok(value) => PyErr::from_value(value),
        Err(e) => e,
    }
}

fn refresh_details(kwargs: &Bound<'_, PyDict>, refresh: Option<&RefreshError>) -> PyResult<()> {
    let Some(refresh) = refresh else {
        return Ok(());
    };
    kwargs.set_item("status", refresh.status())?;
    let kind = match refresh.kind() {
        RefreshErrorKind::OAuth => "oauth",
        RefreshErrorKind::Status => "status",
        RefreshErrorKind::Transport => "transport",
        RefreshErrorKind::Tls => "tls",
        RefreshErrorKind::Proxy => "proxy",
        RefreshErrorKind::InvalidResponse => "invalid_response",
        RefreshErrorKind::NoRefreshToken => "no_refresh_token",
        RefreshErrorKind::Custom => "custom",
        RefreshErrorKind::Rejected => "rejected",
        _ => "other",
    };
    kwargs.set_item("kind", kind)?;
    if let Some(oauth) = refresh.oauth_error() {
        kwargs.set_item("oauth_error", oauth.error())?;
        kwargs.set_item("error_description", oauth.error_description())?;
    }
    Ok(())
}

fn login_details(kwargs: &Bound<'_, PyDict>, login: &LoginError) -> PyResult<()> {
    let kind = match login.kind() {
        LoginErrorKind::AccessDenied => "access_denied",
        LoginErrorKind::ExpiredToken => "expired_token",
        LoginErrorKind::Cancelled => "cancelled",
        LoginErrorKind::TimedOut => "timed_out",
        LoginErrorKind::StateMismatch => "state_mismatch",
        LoginErrorKind::IssuerMismatch => "issuer_mismatch",
        LoginErrorKind::Discovery => "discovery",
        LoginErrorKind::Server => "server",
        LoginErrorKind::Transport => "transport",
        LoginErrorKind::Tls => "tls",
        LoginErrorKind::Proxy => "proxy",
        LoginErrorKind::InvalidResponse => "invalid_response",
        LoginErrorKind::Configuration => "configuration",
        // A kind added to tokengate after this binding was built.
        _ => "other",
    };
    kwargs.set_item("kind", kind)?;
    kwargs.set_item("configuration", login.is_configuration())?;
    kwargs.set_item("status", login.status())?;
    if let Some(oauth) = login.oauth_error() {
        kwargs.set_item("oauth_error", oauth.error())?;
        kwargs.set_item("error_description", oauth.error_description())?;
    }
    Ok(())
}

fn store_details(kwargs: &Bound<'_, PyDict>, store: &StoreError) -> PyResult<()> {
    let kind = match store.kind() {
        StoreErrorKind::Empty => "empty",
        StoreErrorKind::Malformed => "malformed",
        StoreErrorKind::UnsupportedVersion => "unsupported_version",
        StoreErrorKind::Io => "io",
        StoreErrorKind::LockTimeout => "lock_timeout",
        StoreErrorKind::Unavailable => "unavailable",
        StoreErrorKind::Denied => "denied",
        StoreErrorKind::NotRegularFile => "not_regular_file",
        StoreErrorKind::ReadOnly => "read_only",
        StoreErrorKind::Permissions => "permissions",
        StoreErrorKind::LeaseLost => "lease_lost",
        StoreErrorKind::Tls => "tls",
        StoreErrorKind::Custom => "custom",
        // A kind added to tokengate after this binding was built.
        _ => "other",
    };
    kwargs.set_item("kind", kind)?;
    kwargs.set_item("configuration", store.is_configuration())?;
    kwargs.set_item(
        "path",
        store.path().map(|p| p.to_string_lossy().into_owned()),
    )?;
    Ok(())
}

/// What an exception raised by a Python refresher means for the gate.
///
/// `tokengate.LoginRequired`, or `tokengate.RefreshFailed` with `transient=False`, is the refresher
/// saying that only a new login helps: a permanent failure. `RefreshFailed` with
/// `configuration=True` says the client's own setup is refused (an operator must fix it; the
/// session is kept). Anything else (a bug, a network error of its own HTTP library,
/// `RefreshFailed` with `transient=True`) is transient: the gate backs off and tries again, and
/// nobody is logged out. The message of an unexpected exception is its whole traceback, so the
/// caller that gets the `RefreshFailed` can see where it came from.
pub(crate) fn refresh_error(py: Python<'_>, err: &PyErr) -> RefreshError {
    let value = err.value(py);
    let is = |class: &str| {
        py.import(ERRORS_MODULE)
            .and_then(|m| m.getattr(class))
            .is_ok_and(|c| value.is_instance(&c).unwrap_or(false))
    };
    let text = || {
        value
            .str()
            .map_or_else(|_| "(unprintable exception)".to_owned(), |s| s.to_string())
    };
    if is("LoginRequired") {
        return RefreshError::permanent(text());
    }
    if is("RefreshFailed") {
        let flag = |name: &str, default: bool| {
            value
                .getattr(name)
                .and_then(|t| t.is_truthy())
                .unwrap_or(default)
        };
        if flag("configuration", false) {
            return RefreshError::configuration(text());
        }
        if !flag("transient", true) {
            return RefreshError::permanent(text());
        }
        let mut e = RefreshError::transient(text());
        if let Some(after) = value
            .getattr("retry_in")
            .ok()
            .and_then(|r| r.extract::<f64>().ok())
            .and_then(|secs| std::time::Duration::try_from_secs_f64(secs).ok())
        {
            e = e.with_retry_after(after);
        }
        return e;
    }
    RefreshError::transient(format!("the refresher raised:\n{}", traceback(py, err)))
}

/// The traceback text of `err`, as Python prints it.
pub(crate) fn traceback(py: Python<'_>, err: &PyErr) -> String {
    let value = err.value(py);
    // The traceback as the error holds it (on Python < 3.12 `value.__traceback__` may be unset).
    let frames = err.traceback(py);
    let formatted = py
        .import("traceback")
        .and_then(|tb| tb.call_method1("format_exception", (value.get_type(), value, frames)));
    let joined = formatted.and_then(|lines| PyString::new(py, "").call_method1("join", (lines,)));
    match joined.and_then(|s| s.extract::<String>()) {
        Ok(text) => text.trim_end().to_owned(),
        Err(_) => err.to_string(),
    }
}
