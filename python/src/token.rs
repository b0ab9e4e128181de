//! `tokengate.Token` and `tokengate.Lease`, and the seconds-or-timedelta arguments every
//! constructor takes.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// An OAuth2 bearer token: the access token, its type and expiry, and the refresh token.
///
/// ``repr()`` never shows the secrets; read them explicitly with ``access_token`` and
/// ``refresh_token`` (anything that reads them can impersonate the user).
///
/// Args:
///     access_token: the access token (RFC 6749 §1.4).
///     expires_in: lifetime from now, in seconds or as a ``datetime.timedelta``
///         (RFC 6749 §5.1). Defaults to none: used until rejected.
///     expires_at: expiry as a Unix timestamp, e.g. read back from storage; give this or
///         ``expires_in``, not both.
///     refresh_token: the refresh token (RFC 6749 §1.5). Defaults to none.
///     token_type: the ``Authorization`` scheme (RFC 6749 §7.1). Defaults to ``"Bearer"``.
///     scope: the scope granted with the token (RFC 6749 §3.3). Defaults to none.
#[pyclass(frozen, module = "tokengate", name = "Token")]
pub(crate) struct PyToken {
    pub(crate) inner: Arc<tokengate::Token>,
}

impl From<tokengate::Token> for PyToken {
    fn from(token: tokengate::Token) -> Self {
        PyToken {
            inner: Arc::new(token),
        }
    }
}

impl From<Arc<tokengate::Token>> for PyToken {
    fn from(inner: Arc<tokengate::Token>) -> Self {
        PyToken { inner }
    }
}

#[pymethods]
impl PyToken {
    #[new]
    #[pyo3(signature = (access_token, *, expires_in=None, expires_at=None, refresh_token=None, token_type=None, scope=None))]
    fn new(
        access_token: String,
        expires_in: Option<&Bound<'_, PyAny>>,
        expires_at: Option<f64>,
        refresh_token: Option<String>,
        token_type: Option<String>,
        scope: Option<String>,
    ) -> PyResult<Self> {
        let mut token = tokengate::Token::new(access_token);
        match (expires_in, expires_at) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "give expires_in or expires_at, not both",
                ));
            }
            (Some(lifetime), None) => {
                token = token.with_expires_in(seconds(lifetime, "expires_in")?)
            }
            (None, Some(at)) => token = token.with_expires_at_wall(unix_time(at)?),
            (None, None) => {}
        }
        if let Some(refresh) = refresh_token {
            token = token.with_refresh_token(refresh);
        }
        if let Some(kind) = token_type {
            token = token.with_token_type(kind);
        }
        if let Some(scope) = scope {
            token = token.with_scope(scope);
        }
        Ok(token.into())
    }

    /// The access token itself (a secret: do not log it).
    #[getter]
    fn access_token(&self) -> &str {
        self.inner.access_token().secret()
    }

    /// The refresh token (a secret: do not log it), or ``None``.
    #[getter]
    fn refresh_token(&self) -> Option<&str> {
        self.inner.refresh_token().map(|r| r.secret())
    }

    /// The token type, e.g. ``"Bearer"``.
    #[getter]
    fn token_type(&self) -> &str {
        self.inner.token_type()
    }

    /// The scope granted with the token, or ``None``.
    #[getter]
    fn scope(&self) -> Option<&str> {
        self.inner.scope()
    }

    /// Seconds left before expiry (0.0 once expired), or ``None`` when the expiry is unknown.
    #[getter]
    fn expires_in(&self) -> Option<f64> {
        self.inner.remaining().map(|d| d.as_secs_f64())
    }

    /// The expiry as a Unix timestamp, or ``None`` when it is unknown.
    #[getter]
    fn expires_at(&self) -> Option<f64> {
        let at = self.inner.expires_at_wall()?;
        Some(match at.duration_since(UNIX_EPOCH) {
            Ok(after) => after.as_secs_f64(),
            Err(before) => -before.duration().as_secs_f64(),
        })
    }

    /// The lifetime the token was issued with, in seconds, when it was given as ``expires_in``.
    #[getter]
    fn lifetime(&self) -> Option<f64> {
        self.inner.lifetime().map(|d| d.as_secs_f64())
    }

    /// Whether the token is known to have expired.
    #[getter]
    fn is_expired(&self) -> bool {
        self.inner.is_expired()
    }

    fn __repr__(&self) -> String {
        token_repr(&self.inner)
    }
}

/// `Token(access_token=[redacted], ...)`: everything but the secrets.
pub(crate) fn token_repr(token: &tokengate::Token) -> String {
    let mut out = format!(
        "Token(access_token=[redacted], token_type={}",
        quoted(token.token_type())
    );
    match token.remaining() {
        Some(left) => out.push_str(&format!(", expires_in={:.1}", left.as_secs_f64())),
        None => out.push_str(", expires_in=None"),
    }
    out.push_str(match token.refresh_token() {
        Some(_) => ", refresh_token=[redacted]",
        None => ", refresh_token=None",
    });
    if let Some(scope) = token.scope() {
        out.push_str(&format!(", scope={}", quoted(scope)));
    }
    out.push(')');
    out
}

/// `text` as a Python string literal in single quotes, as `repr()` writes it.
pub(crate) fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' | '\'' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&c.escape_default().to_string()),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A token handed out by ``Gate.lease()``, with the generation it belongs to.
///
/// Give it back to ``Gate.reject()`` when the server rejected the token, or to ``Gate.confirm()``
/// when it accepted it. ``repr()`` never shows the secret.
#[pyclass(frozen, module = "tokengate", name = "Lease")]
pub(crate) struct PyLease {
    pub(crate) inner: tokengate::Lease,
}

#[pymethods]
impl PyLease {
    /// The ready-made ``Authorization`` header value, e.g. ``"Bearer abc"`` (a secret).
    #[getter]
    fn authorization(&self) -> String {
        String::from_utf8_lossy(self.inner.authorization().as_bytes()).into_owned()
    }

    /// How many tokens the gate had installed when this one was current.
    #[getter]
    fn generation(&self) -> u64 {
        self.inner.generation()
    }

    /// The token.
    #[getter]
    fn token(&self) -> PyToken {
        Arc::clone(self.inner.token()).into()
    }

    fn __repr__(&self) -> String {
        format!(
            "Lease(generation={}, token={})",
            self.inner.generation(),
            token_repr(self.inner.token())
        )
    }
}

/// A duration argument: seconds (int or float) or a `datetime.timedelta`.
pub(crate) fn seconds(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Duration> {
    let secs: f64 = if value.hasattr("total_seconds")? {
        value.call_method0("total_seconds")?.extract()?
    } else {
        value.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} wants seconds (int or float) or a datetime.timedelta"
            ))
        })?
    };
    Duration::try_from_secs_f64(secs).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a finite, non-negative number of seconds, not {secs}"
        ))
    })
}

/// An optional duration argument.
pub(crate) fn opt_seconds(
    value: Option<&Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<Option<Duration>> {
    value.map(|v| seconds(v, what)).transpose()
}

/// A Unix timestamp as a `SystemTime`.
fn unix_time(at: f64) -> PyResult<SystemTime> {
    let bad = || PyValueError::new_err(format!("expires_at is not a usable Unix time: {at}"));
    let offset = Duration::try_from_secs_f64(at.abs()).map_err(|_| bad())?;
    if at >= 0.0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    }
    .ok_or_else(bad)
}
