//! Logging in from Python: `tokengate.DeviceLogin` (RFC 8628) and its `DevicePrompt`,
//! `tokengate.BrowserLogin` (PKCE on a loopback redirect), `Cancel`, and `Metadata` (RFC 8414 /
//! OpenID Connect discovery), on the core's `tokengate::login`.
//!
//! A login waits for minutes, so it runs on a thread of its own while the calling thread waits
//! with the GIL released, checking for signals every [`SIGNAL_CHECK`]: Ctrl-C cancels the login
//! (the poll in flight ends, nothing more is sent) and raises `KeyboardInterrupt`. The prompt (or
//! the URL opener) runs on the calling thread, with the GIL; one that raises cancels the login
//! and its exception propagates.

use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokengate::login::{BrowserLogin, Cancel, DeviceLogin, DevicePrompt, Metadata};
use tokengate::{Error, LoginError, Network, Token};

use crate::callbacks::string_pairs;
use crate::errors;
use crate::net::NetArgs;
use crate::token::{PyToken, opt_seconds};

/// How often a waiting login looks for Ctrl-C (and other signals).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// A flag that stops a login from another thread: ``cancel()`` ends the login's wait at once and
/// it raises ``LoginFailed`` with ``kind == "cancelled"``.
#[pyclass(frozen, module = "tokengate", name = "Cancel")]
pub(crate) struct PyCancel {
    inner: Cancel,
}

#[pymethods]
impl PyCancel {
    #[new]
    fn new() -> Self {
        PyCancel {
            inner: Cancel::new(),
        }
    }

    /// Cancels every login that uses this flag, now and later.
    fn cancel(&self) {
        self.inner.cancel();
    }

    /// Whether ``cancel()`` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    fn __repr__(&self) -> String {
        format!("Cancel(cancelled={})", self.inner.is_cancelled())
    }
}

/// What the user must see to approve a device login: open ``verification_uri`` and enter
/// ``user_code`` (or open ``verification_uri_complete``, which carries the code).
#[pyclass(frozen, module = "tokengate", name = "DevicePrompt")]
pub(crate) struct PyDevicePrompt {
    inner: DevicePrompt,
}

#[pymethods]
impl PyDevicePrompt {
    /// The code the user enters (not a secret: it is shown on screen).
    #[getter]
    fn user_code(&self) -> &str {
        self.inner.user_code()
    }

    /// Where the user goes to enter the code.
    #[getter]
    fn verification_uri(&self) -> &str {
        self.inner.verification_uri()
    }

    /// The verification URI with the code in it (for a QR code), if the server sent one.
    #[getter]
    fn verification_uri_complete(&self) -> Option<&str> {
        self.inner.verification_uri_complete()
    }

    /// Seconds the user has to approve.
    #[getter]
    fn expires_in(&self) -> f64 {
        self.inner.expires_in().as_secs_f64()
    }

    /// Seconds between two polls of the token endpoint, as the server asked.
    #[getter]
    fn interval(&self) -> f64 {
        self.inner.interval().as_secs_f64()
    }

    fn __repr__(&self) -> String {
        format!(
            "DevicePrompt(user_code={:?}, verification_uri={:?})",
            self.inner.user_code(),
            self.inner.verification_uri()
        )
    }
}

/// An authorization server's endpoints, read from its metadata (RFC 8414, then OpenID Connect
/// discovery); the ``issuer`` in the document must be the one asked for.
#[pyclass(frozen, module = "tokengate", name = "Metadata")]
pub(crate) struct PyMetadata {
    inner: Metadata,
}

#[pymethods]
impl PyMetadata {
    /// Reads the metadata of ``issuer`` (e.g. ``"https://auth.example.com"``).
    ///
    /// Args:
    ///     issuer: the authorization server's issuer identifier.
    ///     ca_certs, roots, client_cert, proxy, no_proxy, proxy_from_env: network settings, as on
    ///         ``Client``. The logins made ``from_metadata`` use them too.
    ///
    /// Raises:
    ///     LoginFailed: ``kind == "discovery"`` (no metadata, another issuer, a document that is
    ///         not metadata) or a transport, TLS or proxy failure.
    ///     ConfigError: a network argument of the wrong type.
    #[staticmethod]
    #[pyo3(signature = (issuer, *, ca_certs=None, roots=None, client_cert=None, proxy=None, no_proxy=None, proxy_from_env=true))]
    #[allow(clippy::too_many_arguments)]
    fn discover(
        py: Python<'_>,
        issuer: &str,
        ca_certs: Option<&Bound<'_, PyAny>>,
        roots: Option<&str>,
        client_cert: Option<&Bound<'_, PyAny>>,
        proxy: Option<&str>,
        no_proxy: Option<&str>,
        proxy_from_env: bool,
    ) -> PyResult<Self> {
        let network = NetArgs {
            ca_certs,
            roots,
            client_cert,
            proxy,
            no_proxy,
            proxy_from_env,
        }
        .network(py)?
        .unwrap_or_default();
        py.detach(|| Metadata::discover(issuer, &network))
            .map(|inner| PyMetadata { inner })
            .map_err(|e| login_error(py, e))
    }

    /// The issuer the metadata belongs to.
    #[getter]
    fn issuer(&self) -> &str {
        self.inner.issuer()
    }

    /// The token endpoint (for ``OAuth2.refresh_token``).
    #[getter]
    fn token_endpoint(&self) -> &str {
        self.inner.token_endpoint()
    }

    /// The device authorization endpoint (RFC 8628), if the server has one.
    #[getter]
    fn device_authorization_endpoint(&self) -> Option<&str> {
        self.inner.device_authorization_endpoint()
    }

    /// The authorization endpoint, if the server has one.
    #[getter]
    fn authorization_endpoint(&self) -> Option<&str> {
        self.inner.authorization_endpoint()
    }

    /// The revocation endpoint (RFC 7009, for ``OAuth2.refresh_token(revocation_url=...)``), if
    /// the server has one.
    #[getter]
    fn revocation_endpoint(&self) -> Option<&str> {
        self.inner.revocation_endpoint()
    }

    fn __repr__(&self) -> String {
        format!("Metadata(issuer={:?})", self.inner.issuer())
    }
}

/// A device login (RFC 8628): the user approves on another device, by entering a code at a URL,
/// while this program polls the token endpoint. ``run()`` returns the token; give it to
/// ``Client.login()``.
///
///     login = tokengate.DeviceLogin(device_url, token_url, client_id="my-cli")
///     token = login.run(lambda p: print(f"Open {p.verification_uri} and enter {p.user_code}"))
///     client.login(token)
///
/// Args:
///     device_authorization_url: the device authorization endpoint.
///     token_url: the token endpoint.
///     client_id: the client's id (required by the flow).
///     client_secret: the client's secret, for a confidential client. Defaults to none.
///     scope: the scope to ask for, space-separated. Defaults to none.
///     allow_insecure_http: allow plain ``http`` endpoints off loopback. Defaults to False.
///     ca_certs, roots, client_cert, proxy, no_proxy, proxy_from_env: network settings, as on
///         ``Client``.
#[pyclass(frozen, module = "tokengate", name = "DeviceLogin")]
pub(crate) struct PyDeviceLogin {
    inner: DeviceLogin,
}

#[pymethods]
impl PyDeviceLogin {
    #[new]
    #[pyo3(signature = (device_authorization_url, token_url, *, client_id, client_secret=None, scope=None, allow_insecure_http=false, ca_certs=None, roots=None, client_cert=None, proxy=None, no_proxy=None, proxy_from_env=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        device_authorization_url: String,
        token_url: String,
        client_id: String,
        client_secret: Option<String>,
        scope: Option<String>,
        allow_insecure_http: bool,
        ca_certs: Option<&Bound<'_, PyAny>>,
        roots: Option<&str>,
        client_cert: Option<&Bound<'_, PyAny>>,
        proxy: Option<&str>,
        no_proxy: Option<&str>,
        proxy_from_env: bool,
    ) -> PyResult<Self> {
        let network = NetArgs {
            ca_certs,
            roots,
            client_cert,
            proxy,
            no_proxy,
            proxy_from_env,
        }
        .network(py)?;
        let login = DeviceLogin::new(device_authorization_url, token_url);
        Ok(PyDeviceLogin {
            inner: configure(
                login,
                client_id,
                client_secret,
                scope,
                allow_insecure_http,
                network,
            ),
        })
    }

    /// A device login on the endpoints of ``metadata`` (and its network settings).
    ///
    /// Raises:
    ///     LoginFailed: ``kind == "discovery"`` when the server has no device authorization
    ///         endpoint.
    #[staticmethod]
    #[pyo3(signature = (metadata, *, client_id, client_secret=None, scope=None, allow_insecure_http=false))]
    fn from_metadata(
        py: Python<'_>,
        metadata: &PyMetadata,
        client_id: String,
        client_secret: Option<String>,
        scope: Option<String>,
        allow_insecure_http: bool,
    ) -> PyResult<Self> {
        let login = DeviceLogin::from_metadata(&metadata.inner).map_err(|e| login_error(py, e))?;
        Ok(PyDeviceLogin {
            inner: configure(
                login,
                client_id,
                client_secret,
                scope,
                allow_insecure_http,
                None,
            ),
        })
    }

    /// Runs the login: asks for a device code, calls ``prompt(DevicePrompt)`` once (on this
    /// thread) with what the user must see, and polls the token endpoint until the user approves,
    /// at the server's interval (``slow_down`` adds 5 seconds), until the code expires. The GIL is
    /// released while it waits; Ctrl-C cancels the login and raises ``KeyboardInterrupt``.
    ///
    /// Args:
    ///     prompt: called with a ``DevicePrompt``. If it raises, the login is cancelled and its
    ///         exception propagates.
    ///     cancel: a ``Cancel`` that stops the login from another thread (Ctrl-C, or an
    ///         exception from the callback, sets it too).
    ///
    /// Raises:
    ///     LoginFailed: ``kind`` is ``"access_denied"`` (the user refused), ``"expired_token"``
    ///         (the code expired first), ``"cancelled"``, ``"configuration"`` (an insecure URL),
    ///         ``"server"`` (e.g. ``invalid_client``), or a transport, TLS or proxy failure.
    #[pyo3(signature = (prompt, *, cancel=None))]
    fn run(
        &self,
        py: Python<'_>,
        prompt: Bound<'_, PyAny>,
        cancel: Option<&PyCancel>,
    ) -> PyResult<PyToken> {
        let cancel = cancel.map_or_else(Cancel::new, |c| c.inner.clone());
        let login = self.inner.clone().cancel(&cancel);
        run_login(
            py,
            &cancel,
            move |show| login.run(|p| show(p.clone())),
            |p| prompt.call1((PyDevicePrompt { inner: p },)).map(drop),
        )
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// A login in the user's browser: the authorization code grant with PKCE (RFC 7636) on a
/// loopback redirect (RFC 8252): ``run()`` listens on ``127.0.0.1``, has the authorization URL
/// opened, waits for the browser to come back, checks the redirect (``state``, and ``iss`` when
/// expected), and exchanges the code for a token; give it to ``Client.login()``.
///
///     login = tokengate.BrowserLogin(authorize_url, token_url, client_id="my-app")
///     client.login(login.run())   # opens the URL with the webbrowser module
///
/// Args:
///     authorization_url: the authorization endpoint.
///     token_url: the token endpoint.
///     client_id: the client's id.
///     client_secret: the client's secret, for a confidential client. Defaults to none.
///     scope: the scope to ask for, space-separated. Defaults to none.
///     authorization_params: more parameters for the authorization URL (e.g. ``{"prompt":
///         "consent"}``). Defaults to none.
///     timeout: seconds (or a ``timedelta``) the browser has to come back. Defaults to 300.
///     expect_issuer: the issuer the redirect's ``iss`` must name (RFC 9207). Defaults to none.
///     allow_insecure_http: allow plain ``http`` endpoints off loopback. Defaults to False.
///     ca_certs, roots, client_cert, proxy, no_proxy, proxy_from_env: network settings of the
///         code exchange, as on ``Client``.
#[pyclass(frozen, module = "tokengate", name = "BrowserLogin")]
pub(crate) struct PyBrowserLogin {
    inner: BrowserLogin,
}

#[pymethods]
impl PyBrowserLogin {
    #[new]
    #[pyo3(signature = (authorization_url, token_url, *, client_id, client_secret=None, scope=None, authorization_params=None, timeout=None, expect_issuer=None, allow_insecure_http=false, ca_certs=None, roots=None, client_cert=None, proxy=None, no_proxy=None, proxy_from_env=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        authorization_url: String,
        token_url: String,
        client_id: String,
        client_secret: Option<String>,
        scope: Option<String>,
        authorization_params: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        expect_issuer: Option<String>,
        allow_insecure_http: bool,
        ca_certs: Option<&Bound<'_, PyAny>>,
        roots: Option<&str>,
        client_cert: Option<&Bound<'_, PyAny>>,
        proxy: Option<&str>,
        no_proxy: Option<&str>,
        proxy_from_env: bool,
    ) -> PyResult<Self> {
        let network = NetArgs {
            ca_certs,
            roots,
            client_cert,
            proxy,
            no_proxy,
            proxy_from_env,
        }
        .network(py)?;
        let mut login = BrowserLogin::new(authorization_url, token_url).client_id(client_id);
        if let Some(network) = network {
            login = login.network(network);
        }
        if let Some(issuer) = expect_issuer {
            login = login.expect_issuer(issuer);
        }
        let login = browser_options(login, client_secret, scope, authorization_params, timeout)?;
        Ok(PyBrowserLogin {
            inner: login.allow_insecure_http(allow_insecure_http),
        })
    }

    /// A browser login on the endpoints of ``metadata`` (and its network settings); the issuer
    /// is expected in the redirect when the server says it sends it.
    ///
    /// Raises:
    ///     LoginFailed: ``kind == "discovery"`` when the server has no authorization endpoint or
    ///         no ``S256`` PKCE.
    #[staticmethod]
    #[pyo3(signature = (metadata, *, client_id, client_secret=None, scope=None, authorization_params=None, timeout=None, allow_insecure_http=false))]
    #[allow(clippy::too_many_arguments)]
    fn from_metadata(
        py: Python<'_>,
        metadata: &PyMetadata,
        client_id: String,
        client_secret: Option<String>,
        scope: Option<String>,
        authorization_params: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        allow_insecure_http: bool,
    ) -> PyResult<Self> {
        let login = BrowserLogin::from_metadata(&metadata.inner)
            .map_err(|e| login_error(py, e))?
            .client_id(client_id);
        let login = browser_options(login, client_secret, scope, authorization_params, timeout)?;
        Ok(PyBrowserLogin {
            inner: login.allow_insecure_http(allow_insecure_http),
        })
    }

    /// Runs the login: calls ``open(url)`` once (on this thread) with the authorization URL,
    /// waits for the browser's redirect (the GIL released; Ctrl-C cancels), and exchanges the
    /// code for the token it returns.
    ///
    /// Args:
    ///     open: called with the URL to open. Defaults to ``webbrowser.open``, printing the URL
    ///         to stderr when no browser can be started. If it raises, the login is cancelled and
    ///         its exception propagates.
    ///     cancel: a ``Cancel`` that stops the login from another thread (Ctrl-C, or an
    ///         exception from the callback, sets it too).
    ///
    /// Raises:
    ///     LoginFailed: ``kind`` is ``"timed_out"`` (the browser did not come back in time),
    ///         ``"cancelled"``, ``"access_denied"``, ``"state_mismatch"``, ``"issuer_mismatch"``,
    ///         ``"server"`` (an error redirect, a refused exchange), ``"configuration"``, or a
    ///         transport, TLS or proxy failure.
    #[pyo3(signature = (open=None, *, cancel=None))]
    fn run(
        &self,
        py: Python<'_>,
        open: Option<Bound<'_, PyAny>>,
        cancel: Option<&PyCancel>,
    ) -> PyResult<PyToken> {
        let cancel = cancel.map_or_else(Cancel::new, |c| c.inner.clone());
        let login = self.inner.clone().cancel(&cancel);
        run_login(
            py,
            &cancel,
            move |show| login.run(|url| show(url.to_owned())),
            |url: String| match &open {
                Some(open) => open.call1((url,)).map(drop),
                None => open_in_browser(py, &url),
            },
        )
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// The settings `BrowserLogin(...)` and `BrowserLogin.from_metadata(...)` share.
fn browser_options(
    mut login: BrowserLogin,
    client_secret: Option<String>,
    scope: Option<String>,
    authorization_params: Option<&Bound<'_, PyAny>>,
    timeout: Option<&Bound<'_, PyAny>>,
) -> PyResult<BrowserLogin> {
    if let Some(secret) = client_secret {
        login = login.client_secret(secret);
    }
    if let Some(scope) = scope {
        login = login.scope(scope);
    }
    if let Some(params) = authorization_params {
        for (name, value) in string_pairs(params, "authorization_params")? {
            login = login.authorization_param(name, value);
        }
    }
    if let Some(t) = opt_seconds(timeout, "timeout")? {
        login = login.timeout(t);
    }
    Ok(login)
}

/// `webbrowser.open(url)`; when no browser can be started, the URL goes to stderr instead.
fn open_in_browser(py: Python<'_>, url: &str) -> PyResult<()> {
    let opened: bool = py
        .import("webbrowser")?
        .call_method1("open", (url,))?
        .is_truthy()?;
    if !opened {
        let stderr = py.import("sys")?.getattr("stderr")?;
        stderr.call_method1("write", (format!("Open this URL to log in:\n{url}\n"),))?;
    }
    Ok(())
}

/// What a login thread tells the waiting one: something to show the user, then the outcome.
enum Message<P> {
    Show(P),
    Done(Result<Token, LoginError>),
}

/// Runs `login` on a thread of its own while this one waits with the GIL released, checking for
/// signals every [`SIGNAL_CHECK`]. `login` gets a function that hands what the user must see (a
/// device prompt, a URL to open) to `show`, which runs here, with the GIL. The first exception
/// here (from `show`, or a signal such as Ctrl-C) cancels the login, and is raised once the login
/// thread has finished.
fn run_login<P: Send + 'static>(
    py: Python<'_>,
    cancel: &Cancel,
    login: impl FnOnce(&dyn Fn(P)) -> Result<Token, LoginError> + Send + 'static,
    mut show: impl FnMut(P) -> PyResult<()>,
) -> PyResult<PyToken> {
    let (tx, rx) = crossbeam_channel::bounded::<Message<P>>(2);
    std::thread::Builder::new()
        .name("tokengate-login".into())
        .spawn(move || {
            let result = login(&|p| {
                let _ = tx.send(Message::Show(p));
            });
            let _ = tx.send(Message::Done(result));
        })
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the login thread: {e}")))?;
    let mut raised: Option<PyErr> = None;
    loop {
        match py.detach(|| rx.recv_timeout(SIGNAL_CHECK)) {
            Ok(Message::Show(p)) => {
                if raised.is_none()
                    && let Err(e) = show(p)
                {
                    cancel.cancel();
                    raised = Some(e);
                }
            }
            Ok(Message::Done(result)) => {
                return match (raised, result) {
                    (Some(e), _) => Err(e),
                    (None, Ok(token)) => Ok(PyToken::from(token)),
                    (None, Err(e)) => Err(login_error(py, e)),
                };
            }
            Err(RecvTimeoutError::Timeout) => {
                if raised.is_none()
                    && let Err(e) = py.check_signals()
                {
                    cancel.cancel();
                    raised = Some(e);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                // The login thread always answers before it ends; never wait forever if not.
                return Err(raised.unwrap_or_else(|| {
                    PyRuntimeError::new_err("the login thread ended without an answer")
                }));
            }
        }
    }
}

fn configure(
    mut login: DeviceLogin,
    client_id: String,
    client_secret: Option<String>,
    scope: Option<String>,
    allow_insecure_http: bool,
    network: Option<Network>,
) -> DeviceLogin {
    login = login.client_id(client_id);
    if let Some(secret) = client_secret {
        login = login.client_secret(secret);
    }
    if let Some(scope) = scope {
        login = login.scope(scope);
    }
    if let Some(network) = network {
        login = login.network(network);
    }
    login.allow_insecure_http(allow_insecure_http)
}

/// The `LoginFailed` exception for a login error.
fn login_error(py: Python<'_>, e: LoginError) -> PyErr {
    errors::to_py(py, &Error::Login(e))
}
