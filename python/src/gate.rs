//! `tokengate.Gate`: the shared token state and single-flight refresh, and the token settings that
//! `Gate(...)` and `Client(...)` both take.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use tokengate::Rejection;

use crate::callbacks;
use crate::errors::{self, py_err};
use crate::events::{PyEvents, PyStats};
use crate::store;
use crate::token::{PyLease, PyToken, opt_seconds, seconds};

/// The token settings of `Gate(...)` and `Client(...)`, as given.
#[derive(Default)]
pub(crate) struct GateSettings<'py> {
    pub(crate) token: Option<Bound<'py, PyAny>>,
    pub(crate) refresher: Option<Bound<'py, PyAny>>,
    pub(crate) store: Option<Bound<'py, PyAny>>,
    pub(crate) refresh_before_expiry: Option<Bound<'py, PyAny>>,
    pub(crate) refresh_ahead: Option<Bound<'py, PyAny>>,
    pub(crate) refresh_timeout: Option<Bound<'py, PyAny>>,
    pub(crate) assumed_lifetime: Option<Bound<'py, PyAny>>,
    pub(crate) refresh_backoff: Option<Bound<'py, PyAny>>,
    pub(crate) on_refresh: Option<Bound<'py, PyAny>>,
    pub(crate) on_login_required: Option<Bound<'py, PyAny>>,
}

impl GateSettings<'_> {
    /// Whether any setting was given.
    pub(crate) fn any(&self) -> bool {
        [
            &self.token,
            &self.refresher,
            &self.store,
            &self.refresh_before_expiry,
            &self.refresh_ahead,
            &self.refresh_timeout,
            &self.assumed_lifetime,
            &self.refresh_backoff,
            &self.on_refresh,
            &self.on_login_required,
        ]
        .iter()
        .any(|s| s.is_some())
    }

    /// Builds the gate (reading the store, when there is one and no token, with the GIL released).
    /// An `OAuth2` refresher without network settings of its own gets `network` (a client's).
    pub(crate) fn build(
        self,
        py: Python<'_>,
        network: Option<&tokengate::Network>,
    ) -> PyResult<tokengate::Gate> {
        let mut b = tokengate::Gate::builder();
        if let Some(token) = &self.token {
            let token = token
                .cast::<PyToken>()
                .map_err(|_| PyTypeError::new_err("token wants a tokengate.Token"))?;
            b = b.token((*token.get().inner).clone());
        }
        if let Some(r) = &self.refresher {
            b = b.refresher(callbacks::refresher(r, network)?);
        }
        if let Some(s) = &self.store {
            b = b.store(store::store(s)?);
        }
        if let Some(w) = opt_seconds(self.refresh_before_expiry.as_ref(), "refresh_before_expiry")?
        {
            b = b.refresh_before_expiry(w);
        }
        if let Some(w) = opt_seconds(self.refresh_ahead.as_ref(), "refresh_ahead")? {
            b = b.refresh_ahead(w);
        }
        if let Some(t) = opt_seconds(self.refresh_timeout.as_ref(), "refresh_timeout")? {
            b = b.refresh_timeout(t);
        }
        if let Some(l) = opt_seconds(self.assumed_lifetime.as_ref(), "assumed_lifetime")? {
            b = b.assumed_lifetime(l);
        }
        if let Some(backoff) = &self.refresh_backoff {
            let (initial, max): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
                backoff.extract().map_err(|_| {
                    PyTypeError::new_err("refresh_backoff wants (initial, max) in seconds")
                })?;
            b = b.refresh_backoff(
                seconds(&initial, "refresh_backoff")?,
                seconds(&max, "refresh_backoff")?,
            );
        }
        if let Some(f) = &self.on_refresh {
            b = b.on_refresh(callbacks::on_refresh(callable(f, "on_refresh")?));
        }
        if let Some(f) = &self.on_login_required {
            b = b.on_login_required(callbacks::on_login_required(callable(
                f,
                "on_login_required",
            )?));
        }
        py.detach(|| b.build()).map_err(py_err(py))
    }
}

fn callable(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Py<PyAny>> {
    if value.is_callable() {
        Ok(value.clone().unbind())
    } else {
        Err(PyTypeError::new_err(format!("{what} wants a callable")))
    }
}

/// The shared token state with its refresher: one per token, shared by every client (and every
/// thread) that uses that token. Exactly one thread refreshes at a time; the others wait for that
/// refresh (with the GIL released) and go on with its result.
///
/// Most programs never build one: ``Client(...)`` makes its own. Build one to share a token between
/// clients of several API hosts (``Client(url, gate=gate)``), or to drive the ``requests`` and
/// ``httpx`` adapters (``tokengate.requests.TokenAuth(gate, ...)``).
///
/// Takes the same token settings as ``Client``: ``token``, ``refresher``, ``store``,
/// ``refresh_before_expiry``, ``refresh_ahead``, ``refresh_timeout``, ``assumed_lifetime``,
/// ``refresh_backoff``, ``on_refresh``, ``on_login_required``.
#[pyclass(frozen, module = "tokengate", name = "Gate")]
pub(crate) struct PyGate {
    pub(crate) inner: tokengate::Gate,
}

#[pymethods]
impl PyGate {
    #[new]
    #[pyo3(signature = (*, token=None, refresher=None, store=None, refresh_before_expiry=None, refresh_ahead=None, refresh_timeout=None, assumed_lifetime=None, refresh_backoff=None, on_refresh=None, on_login_required=None))]
    #[allow(clippy::too_many_arguments)]
    fn new<'py>(
        py: Python<'py>,
        token: Option<Bound<'py, PyAny>>,
        refresher: Option<Bound<'py, PyAny>>,
        store: Option<Bound<'py, PyAny>>,
        refresh_before_expiry: Option<Bound<'py, PyAny>>,
        refresh_ahead: Option<Bound<'py, PyAny>>,
        refresh_timeout: Option<Bound<'py, PyAny>>,
        assumed_lifetime: Option<Bound<'py, PyAny>>,
        refresh_backoff: Option<Bound<'py, PyAny>>,
        on_refresh: Option<Bound<'py, PyAny>>,
        on_login_required: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Self> {
        let settings = GateSettings {
            token,
            refresher,
            store,
            refresh_before_expiry,
            refresh_ahead,
            refresh_timeout,
            assumed_lifetime,
            refresh_backoff,
            on_refresh,
            on_login_required,
        };
        Ok(PyGate {
            inner: settings.build(py, None)?,
        })
    }

    /// A token that is fine to send now, refreshing first when it is inside its refresh window or
    /// was rejected. Waits (with the GIL released) while another thread refreshes, and through a
    /// backoff that ends within ``refresh_timeout``.
    ///
    /// Raises:
    ///     LoginRequired: a refresh failed permanently; only ``set_token()`` helps.
    ///     RefreshFailed: a refresh failed, the old token is no longer valid, and the next attempt
    ///         would come after ``refresh_timeout`` (or the client's configuration was refused).
    ///     RefreshTimeout: a refresh took longer than ``refresh_timeout``.
    fn lease(&self, py: Python<'_>) -> PyResult<PyLease> {
        let gate = &self.inner;
        let lease = py.detach(|| gate.lease()).map_err(py_err(py))?;
        Ok(PyLease { inner: lease })
    }

    /// Reports that the server rejected ``lease``'s token. Returns what the gate did:
    /// ``"invalidated"`` (the next ``lease()`` refreshes: replay the request), ``"replaced"``
    /// (another thread already has a newer token: replay) or ``"final"`` (a fresh token was
    /// rejected too: do not replay, hand the rejection to the caller).
    fn reject(&self, lease: &Bound<'_, PyLease>) -> &'static str {
        match self.inner.reject(&lease.get().inner) {
            Rejection::Replaced => "replaced",
            Rejection::Invalidated => "invalidated",
            _ => "final",
        }
    }

    /// Reports that the server accepted ``lease``'s token.
    fn confirm(&self, lease: &Bound<'_, PyLease>) {
        self.inner.confirm(&lease.get().inner);
    }

    /// Installs a new token (after the user logged in again): leaves the login-required state,
    /// wakes waiting threads, and saves it to the store if there is one.
    ///
    /// Raises:
    ///     InvalidToken: the token cannot be sent in an HTTP header.
    ///     StoreError: the store could not save it.
    fn set_token(&self, py: Python<'_>, token: &Bound<'_, PyToken>) -> PyResult<()> {
        set_token(py, &self.inner, token)
    }

    /// Installs the token a login brought, as ``set_token`` does, and emits a ``logged_in`` event.
    ///
    /// Raises:
    ///     InvalidToken: the token cannot be sent in an HTTP header.
    ///     StoreError: the store could not save it.
    fn login(&self, py: Python<'_>, token: &Bound<'_, PyToken>) -> PyResult<()> {
        login(py, &self.inner, token)
    }

    /// Logs out: see ``Client.logout``.
    ///
    /// Raises:
    ///     RevocationFailed: logged out here (and in the store), but the server did not confirm
    ///         the revocation.
    ///     StoreError: the store could not be cleared.
    ///     RefreshTimeout: the store stayed locked; nothing was changed.
    fn logout(&self, py: Python<'_>) -> PyResult<()> {
        logout(py, &self.inner)
    }

    /// A snapshot of the current token, without refreshing; ``None`` before the first token.
    fn token(&self, py: Python<'_>) -> Option<PyToken> {
        let gate = &self.inner;
        py.detach(|| gate.token()).map(PyToken::from)
    }

    /// Counters: refreshes, failures, waits, replays... (see ``Stats``).
    fn stats(&self) -> PyStats {
        self.inner.stats().into()
    }

    /// Subscribes to token events (an iterator of ``Event``; see ``Events``).
    fn events(&self) -> PyEvents {
        PyEvents::new(self.inner.events())
    }

    /// Whether the gate is in the login-required state.
    #[getter]
    fn login_required(&self) -> bool {
        self.inner.is_login_required()
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// `set_token` of a gate, with the GIL released (a store's lock may be held by another process).
pub(crate) fn set_token(
    py: Python<'_>,
    gate: &tokengate::Gate,
    token: &Bound<'_, PyToken>,
) -> PyResult<()> {
    let token = (*token.get().inner).clone();
    py.detach(|| gate.set_token(token))
        .map_err(|e| errors::to_py(py, &e))
}

/// `login` of a gate, with the GIL released (a store's lock may be held by another process).
pub(crate) fn login(
    py: Python<'_>,
    gate: &tokengate::Gate,
    token: &Bound<'_, PyToken>,
) -> PyResult<()> {
    let token = (*token.get().inner).clone();
    py.detach(|| gate.login(token))
        .map_err(|e| errors::to_py(py, &e))
}

/// `logout` of a gate, with the GIL released (it waits for the store's lock and the revocation).
pub(crate) fn logout(py: Python<'_>, gate: &tokengate::Gate) -> PyResult<()> {
    py.detach(|| gate.logout())
        .map_err(|e| errors::to_py(py, &e))
}
