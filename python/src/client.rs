//! `tokengate.Client`: a thread-safe HTTP client for one API whose requests carry a fresh token.
//!
//! Every request is prepared from its Python arguments with the GIL held, then sent and read whole
//! with the GIL released (`py.detach`): the network, the wait for another thread's refresh, the
//! store's lock. Python threads therefore really run in parallel while they wait.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMapping, PyString};
use tokengate::Error;
use tokengate::http::Method;

use crate::callbacks::{self, string_pairs};
use crate::errors::{self, py_err};
use crate::events::{PyEvents, PyStats};
use crate::gate::{self, GateSettings, PyGate};
use crate::net::NetArgs;
use crate::response::{PyResponse, RawResponse};
use crate::token::{PyToken, opt_seconds, quoted, seconds};

/// Largest response body read, unless `max_response_body` says otherwise.
const DEFAULT_MAX_RESPONSE_BODY: u64 = 10 * 1024 * 1024;

/// A thread-safe HTTP client for one API that keeps its OAuth2 bearer token fresh.
///
/// Like a ``requests.Session`` for one base URL, safe to share between threads: exactly one
/// thread refreshes an expiring token while the others wait for it (with the GIL released) and go
/// on with the new one. No refresh storm, no reuse of a rotated refresh token, no hang.
///
/// Args:
///     base_url: the API's base URL; request paths are joined to it, and the token is sent only to
///         its origin (scheme, host, port), also across redirects.
///     gate: a ``Gate`` to share its token state; give either a gate or the token settings below.
///     token: the starting ``Token``. Defaults to the one the store holds, if any.
///     refresher: what gets new tokens: an ``OAuth2`` grant or a callable
///         ``refresher(current: Token | None) -> Token | dict``. An exception it raises is a
///         transient refresh failure (retried after a backoff) carrying its traceback; raise
///         ``RefreshFailed(..., transient=False)`` or ``LoginRequired(...)`` when only a new login
///         helps. Defaults to none.
///     store: a ``FileStore`` (or a path) where the token lives between runs, shared by processes.
///     refresh_before_expiry: seconds before expiry when requests wait for a refresh. Defaults to
///         60, or a tenth of the token's lifetime when that is shorter.
///     refresh_ahead: seconds before expiry when a refresh starts in the background while the
///         still-valid token is used. Defaults to 300, or a fifth of the lifetime; 0 turns it off.
///     refresh_timeout: how long a request may wait for a token: for another thread's refresh
///         and through the backoff after a failure. Defaults to 10.
///     assumed_lifetime: lifetime of tokens without ``expires_in``. Defaults to none (used until
///         rejected).
///     refresh_backoff: ``(initial, max)`` seconds after failed refreshes, growing and jittered,
///         never longer than ``refresh_timeout``; a server's ``Retry-After`` is honoured up to
///         ``max``. Defaults to (0.25, 5).
///     on_refresh: called with each new ``Token`` from the refresher (to persist it elsewhere).
///     on_login_required: called with the ``LoginRequired`` exception when a refresh fails
///         permanently.
///     background_refresh: a thread renews the token before any request needs it. Defaults to
///         False.
///     reject_when: ``reject_when(response) -> bool``: also treat a response as a token rejection
///         (e.g. ``200 {"ret": 401}``); the request is then refreshed and replayed once. An
///         exception it raises is raised by the request. Defaults to none (401 challenges only).
///     max_replays: replays per request after rejections. Defaults to 1.
///     max_buffered_body: largest body buffered for ``reject_when``. Defaults to 1 MiB.
///     max_redirects: redirects followed. Defaults to 10.
///     timeout: seconds for each whole request (connect to last byte of the response), each
///         redirect and replay on its own. Defaults to none.
///     connect_timeout: seconds to connect. Defaults to 10.
///     response_timeout: seconds to wait for the response head. Defaults to 60.
///     user_agent: the ``User-Agent`` header. Defaults to ureq's.
///     max_idle_connections_per_host: keep-alive connections kept for reuse. Defaults to 3.
///     max_response_body: largest response body read, in bytes. Defaults to 10 MiB.
///     ca_certs: CA certificates trusted in addition to ``roots`` (e.g. a company's private
///         root): a PEM file path, PEM ``bytes``, or a list of them. Defaults to none.
///     roots: the built-in trust anchors: ``"platform"`` (the operating system's trust store,
///         honouring ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` on Linux), ``"webpki"`` (the Mozilla
///         roots compiled in) or ``"added_only"`` (only ``ca_certs``, like ``curl --cacert``).
///         Defaults to ``"platform"``.
///     client_cert: a client certificate for mutual TLS (also at the token endpoint): a PEM file
///         holding the certificate and its key, or a ``(certificate file, key file)`` pair. The
///         key must fit the certificate. Defaults to none.
///     proxy: send every request through this proxy (``http://host:port``,
///         ``socks5://user:password@host:port``, ...), except to the hosts of ``no_proxy``; the
///         environment is then not read. ``https`` requests go through a ``CONNECT`` tunnel: the
///         proxy never sees the token. Defaults to the environment's proxy.
///     no_proxy: hosts reached directly, replacing ``NO_PROXY``: comma-separated host names
///         (with their subdomains), IP addresses, CIDR ranges, or ``*``. Defaults to the
///         environment's list when the proxy comes from the environment, none otherwise.
///     proxy_from_env: read the proxy from ``https_proxy``, ``HTTPS_PROXY``, ``http_proxy``,
///         ``HTTP_PROXY``, ``all_proxy``, ``ALL_PROXY`` and ``no_proxy``/``NO_PROXY`` (as curl
///         does; lower case first) when the client is built; ``False`` connects directly. Ignored
///         when ``proxy`` is given. Defaults to True.
///
/// The network settings also apply to an ``OAuth2`` refresher given here, unless it has network
/// settings of its own. (A refresher inside a ``gate=`` keeps the ones it was built with.)
///
/// Raises:
///     ConfigError: a bad URL, both a gate and token settings, an unusable refresher; an
///         unreadable, invalid or mismatched certificate or key file, an unusable proxy URL.
///     InvalidToken: the starting token cannot be sent in a header.
///     StoreError: the store cannot be read or holds no token file.
#[pyclass(frozen, module = "tokengate", name = "Client")]
pub(crate) struct PyClient {
    main: MainClient,
    base_url: String,
    max_response_body: u64,
}

/// The client built from the constructor's arguments. With a background refresher, dropping the
/// last clone joins that thread, which may be waiting for the GIL to call a Python refresher: the
/// drop then happens with the GIL released.
struct MainClient {
    client: Option<tokengate::Client>,
    background: bool,
}

impl Drop for MainClient {
    fn drop(&mut self) {
        if let (true, Some(client)) = (self.background, self.client.take()) {
            Python::try_attach(|py| py.detach(move || drop(client)));
        }
    }
}

/// A request's body as it will be sent.
enum Payload {
    None,
    Bytes {
        data: Vec<u8>,
        content_type: Option<&'static str>,
    },
    Form(Vec<(String, String)>),
}

/// A request, prepared with the GIL held and sent without it.
struct Prepared {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    payload: Payload,
}

#[pymethods]
impl PyClient {
    #[new]
    #[pyo3(signature = (base_url, *, gate=None, token=None, refresher=None, store=None, refresh_before_expiry=None, refresh_ahead=None, refresh_timeout=None, assumed_lifetime=None, refresh_backoff=None, on_refresh=None, on_login_required=None, background_refresh=false, reject_when=None, max_replays=None, max_buffered_body=None, max_redirects=None, timeout=None, connect_timeout=None, response_timeout=None, user_agent=None, max_idle_connections_per_host=None, max_response_body=None, ca_certs=None, roots=None, client_cert=None, proxy=None, no_proxy=None, proxy_from_env=true))]
    #[allow(clippy::too_many_arguments)]
    fn new<'py>(
        py: Python<'py>,
        base_url: String,
        gate: Option<Bound<'py, PyGate>>,
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
        background_refresh: bool,
        reject_when: Option<Bound<'py, PyAny>>,
        max_replays: Option<u32>,
        max_buffered_body: Option<u64>,
        max_redirects: Option<u32>,
        timeout: Option<Bound<'py, PyAny>>,
        connect_timeout: Option<Bound<'py, PyAny>>,
        response_timeout: Option<Bound<'py, PyAny>>,
        user_agent: Option<String>,
        max_idle_connections_per_host: Option<usize>,
        max_response_body: Option<u64>,
        ca_certs: Option<Bound<'py, PyAny>>,
        roots: Option<&str>,
        client_cert: Option<Bound<'py, PyAny>>,
        proxy: Option<&str>,
        no_proxy: Option<&str>,
        proxy_from_env: bool,
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
        let reject_when = match reject_when {
            Some(f) if f.is_callable() => Some(callbacks::reject_when(f.unbind())),
            Some(_) => return Err(PyTypeError::new_err("reject_when wants a callable")),
            None => None,
        };
        let network = NetArgs {
            ca_certs: ca_certs.as_ref(),
            roots,
            client_cert: client_cert.as_ref(),
            proxy,
            no_proxy,
            proxy_from_env,
        }
        .network(py)?;
        let mut b = tokengate::Client::builder(base_url.as_str())
            .timeout(opt_seconds(timeout.as_ref(), "timeout")?)
            .background_refresh(background_refresh);
        if let Some(predicate) = reject_when {
            b = b.reject_when(move |parts, body| predicate(parts, body));
        }
        if let Some(n) = max_replays {
            b = b.max_replays(n);
        }
        if let Some(n) = max_buffered_body {
            b = b.max_buffered_body(n);
        }
        if let Some(n) = max_redirects {
            b = b.max_redirects(n);
        }
        if let Some(t) = opt_seconds(connect_timeout.as_ref(), "connect_timeout")? {
            b = b.connect_timeout(t);
        }
        if let Some(t) = opt_seconds(response_timeout.as_ref(), "response_timeout")? {
            b = b.response_timeout(t);
        }
        if let Some(ua) = user_agent {
            b = b.user_agent(ua);
        }
        if let Some(n) = max_idle_connections_per_host {
            b = b.max_idle_connections_per_host(n);
        }
        if let Some(network) = &network {
            b = b.network(network.clone());
        }
        let gate = match (gate, settings.any()) {
            (Some(_), true) => {
                return Err(errors::config_error(
                    py,
                    "give the client either a gate or token settings, not both",
                ));
            }
            (Some(gate), false) => gate.get().inner.clone(),
            (None, _) => settings.build(py, network.as_ref())?,
        };
        let client = b.gate(gate).build().map_err(py_err(py))?;
        Ok(PyClient {
            main: MainClient {
                client: Some(client),
                background: background_refresh,
            },
            base_url,
            max_response_body: max_response_body.unwrap_or(DEFAULT_MAX_RESPONSE_BODY),
        })
    }

    /// Sends a request and reads the whole response.
    ///
    /// Args:
    ///     method: ``"GET"``, ``"POST"``, ... (any case).
    ///     path: joined to the base URL, or an absolute URL (another origin gets no token).
    ///     params: query parameters: a mapping or ``(name, value)`` pairs; a list value repeats the
    ///         name, ``None`` leaves it out.
    ///     headers: request headers (a mapping or pairs). ``Authorization`` is replaced by the
    ///         token's on requests to the API origin.
    ///     json: a value sent as JSON (``json.dumps``) with ``Content-Type: application/json``.
    ///     data: the body: ``bytes`` or ``str`` as they are, or a mapping / pairs sent as an
    ///         ``application/x-www-form-urlencoded`` form.
    ///     timeout: a deadline in seconds for this request: the wait for a token (also another
    ///         thread's refresh), every redirect and replay, and reading the whole response.
    ///         Defaults to none: the client's timeouts and ``refresh_timeout`` bound it.
    ///
    /// Returns:
    ///     The ``Response``. A rejected request (401) is refreshed and replayed once; a rejection
    ///     after that is returned as the response, not raised.
    ///
    /// Raises:
    ///     LoginRequired, RefreshFailed, RefreshTimeout: no token could be had within
    ///         ``refresh_timeout``.
    ///     Timeout: the request's ``timeout`` passed (a ``TransportError``).
    ///     TlsError: the server's certificate is not trusted or not valid for its host, or the
    ///         client certificate was refused (a ``TransportError``; not transient).
    ///     ProxyError: the request could not get through the proxy (a ``TransportError``).
    ///     TransportError: the request itself failed (connection, timeout, body too large).
    ///     ConfigError: a bad method, URL or header.
    #[pyo3(signature = (method, path, *, params=None, headers=None, json=None, data=None, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        py: Python<'_>,
        method: &str,
        path: &str,
        params: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        json: Option<&Bound<'_, PyAny>>,
        data: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyResponse> {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| errors::config_error(py, format!("not an HTTP method: {method:?}")))?;
        let prepared = Prepared {
            method,
            path: path.to_owned(),
            query: match params {
                Some(p) => query_pairs(p)?,
                None => Vec::new(),
            },
            headers: match headers {
                Some(h) => string_pairs(h, "headers")?,
                None => Vec::new(),
            },
            payload: payload(py, json, data)?,
        };
        let deadline = timeout.map(|t| seconds(t, "timeout")).transpose()?;
        let client = self.core(py)?.clone();
        let limit = self.max_response_body;
        // A predicate error left by an earlier request on this thread is not this request's.
        drop(callbacks::take_predicate_error());
        let outcome = py.detach(move || send(&client, prepared, deadline, limit));
        if let Some(err) = callbacks::take_predicate_error() {
            return Err(err);
        }
        outcome.map_err(py_err(py))?.into_py(py)
    }

    /// A ``GET`` request; see ``request``.
    #[pyo3(signature = (path, *, params=None, headers=None, timeout=None))]
    fn get(
        &self,
        py: Python<'_>,
        path: &str,
        params: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyResponse> {
        self.request(py, "GET", path, params, headers, None, None, timeout)
    }

    /// A ``HEAD`` request; see ``request``.
    #[pyo3(signature = (path, *, params=None, headers=None, timeout=None))]
    fn head(
        &self,
        py: Python<'_>,
        path: &str,
        params: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyResponse> {
        self.request(py, "HEAD", path, params, headers, None, None, timeout)
    }

    /// A ``DELETE`` request; see ``request``.
    #[pyo3(signature = (path, *, params=None, headers=None, json=None, data=None, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn delete(
        &self,
        py: Python<'_>,
        path: &str,
        params: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        json: Option<&Bound<'_, PyAny>>,
        data: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyResponse> {
        self.request(py, "DELETE", path, params, headers, json, data, timeout)
    }

    /// A ``POST`` request; see ``request``.
    #[pyo3(signature = (path, *, params=None, headers=None, json=None, data=None, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn post(
        &self,
        py: Python<'_>,
        path: &str,
        params: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        json: Option<&Bound<'_, PyAny>>,
        data: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyResponse> {
        self.request(py, "POST", path, params, headers, json, data, timeout)
    }

    /// A ``PUT`` request; see ``request``.
    #[pyo3(signature = (path, *, params=None, headers=None, json=None, data=None, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn put(
        &self,
        py: Python<'_>,
        path: &str,
        params: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        json: Option<&Bound<'_, PyAny>>,
        data: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyResponse> {
        self.request(py, "PUT", path, params, headers, json, data, timeout)
    }

    /// A ``PATCH`` request; see ``request``.
    #[pyo3(signature = (path, *, params=None, headers=None, json=None, data=None, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn patch(
        &self,
        py: Python<'_>,
        path: &str,
        params: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        json: Option<&Bound<'_, PyAny>>,
        data: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyResponse> {
        self.request(py, "PATCH", path, params, headers, json, data, timeout)
    }

    /// Installs a new token (after the user logged in again): leaves the login-required state,
    /// wakes waiting threads, and saves it to the store if there is one.
    ///
    /// Raises:
    ///     InvalidToken: the token cannot be sent in an HTTP header.
    ///     StoreError: the store could not save it.
    fn set_token(&self, py: Python<'_>, token: &Bound<'_, PyToken>) -> PyResult<()> {
        gate::set_token(py, self.core(py)?.gate(), token)
    }

    /// Installs the token a login brought, as ``set_token`` does (in the client and the store,
    /// waking waiting threads), and emits a ``logged_in`` event.
    ///
    /// Raises:
    ///     InvalidToken: the token cannot be sent in an HTTP header.
    ///     StoreError: the store could not save it.
    fn login(&self, py: Python<'_>, token: &Bound<'_, PyToken>) -> PyResult<()> {
        gate::login(py, self.core(py)?.gate(), token)
    }

    /// Logs out: revokes the refresh token at the refresher's ``revocation_url`` (RFC 7009),
    /// clears the store (so every process sharing it is logged out, and none brings the session
    /// back), forgets the token, and emits a ``logged_out`` event. Requests then raise
    /// ``LoginRequired`` until the next ``login()``. A failed revocation still logs out here.
    ///
    /// Raises:
    ///     RevocationFailed: logged out here (and in the store), but the server did not confirm
    ///         the revocation; ``transient`` says whether trying again could have helped.
    ///     StoreError: the store could not be cleared (the token is forgotten here).
    ///     RefreshTimeout: the store stayed locked by another process; nothing was changed.
    fn logout(&self, py: Python<'_>) -> PyResult<()> {
        gate::logout(py, self.core(py)?.gate())
    }

    /// A snapshot of the current token, without refreshing; ``None`` before the first token.
    /// Its ``repr()`` hides the secrets.
    fn token(&self, py: Python<'_>) -> PyResult<Option<PyToken>> {
        let client = self.core(py)?;
        Ok(py.detach(|| client.token()).map(PyToken::from))
    }

    /// Counters (refreshes, failures, waits, replays...), shared by every client on the gate.
    fn stats(&self, py: Python<'_>) -> PyResult<PyStats> {
        Ok(self.core(py)?.stats().into())
    }

    /// Subscribes to token events: an iterator of ``Event`` (see ``Events``).
    fn events(&self, py: Python<'_>) -> PyResult<PyEvents> {
        Ok(PyEvents::new(self.core(py)?.events()))
    }

    /// The ``Gate`` holding this client's token, to share it with another client or adapter.
    #[getter]
    fn gate(&self, py: Python<'_>) -> PyResult<PyGate> {
        Ok(PyGate {
            inner: self.core(py)?.gate().clone(),
        })
    }

    /// The base URL the client was built with.
    #[getter]
    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn __repr__(&self) -> String {
        format!("Client({})", quoted(&self.base_url))
    }
}

impl PyClient {
    /// The main client. It is only ever taken by `Drop`.
    fn core(&self, py: Python<'_>) -> PyResult<&tokengate::Client> {
        self.main
            .client
            .as_ref()
            .ok_or_else(|| errors::config_error(py, "the client is closed"))
    }
}

/// Sends `p` and reads the whole answer (at most `limit` bytes). Runs with the GIL released.
fn send(
    client: &tokengate::Client,
    p: Prepared,
    deadline: Option<std::time::Duration>,
    limit: u64,
) -> Result<RawResponse, Error> {
    let mut rb = client.request(p.method, &p.path);
    if let Some(t) = deadline {
        rb = rb.timeout(t);
    }
    for (name, value) in &p.query {
        rb = rb.query(name, value);
    }
    let has_content_type = p
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    for (name, value) in &p.headers {
        rb = rb.header(name, value);
    }
    let mut resp = match p.payload {
        Payload::None => rb.call(),
        Payload::Bytes { data, content_type } => {
            if let (Some(ct), false) = (content_type, has_content_type) {
                rb = rb.header("Content-Type", ct);
            }
            rb.send(data)
        }
        Payload::Form(fields) => rb.send_form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    }?;
    let mut raw = RawResponse::head(&resp);
    raw.body = resp.body_mut().with_config().limit(limit).read_to_vec()?;
    Ok(raw)
}

/// The request body from `json=` or `data=`.
fn payload(
    py: Python<'_>,
    json: Option<&Bound<'_, PyAny>>,
    data: Option<&Bound<'_, PyAny>>,
) -> PyResult<Payload> {
    match (json, data) {
        (Some(_), Some(_)) => Err(PyValueError::new_err("give json or data, not both")),
        (Some(value), None) => {
            let text: String = py
                .import("json")?
                .call_method1("dumps", (value,))?
                .extract()?;
            Ok(Payload::Bytes {
                data: text.into_bytes(),
                content_type: Some("application/json"),
            })
        }
        (None, Some(data)) => {
            if let Ok(bytes) = data.cast::<PyBytes>() {
                return Ok(Payload::Bytes {
                    data: bytes.as_bytes().to_vec(),
                    content_type: None,
                });
            }
            if let Ok(bytes) = data.cast::<PyByteArray>() {
                return Ok(Payload::Bytes {
                    data: bytes.to_vec(),
                    content_type: None,
                });
            }
            if let Ok(text) = data.cast::<PyString>() {
                return Ok(Payload::Bytes {
                    data: text.to_str()?.as_bytes().to_vec(),
                    content_type: None,
                });
            }
            Ok(Payload::Form(string_pairs(data, "data")?))
        }
        (None, None) => Ok(Payload::None),
    }
}

/// Query parameters: a mapping or pairs; a list or tuple value repeats the name, `None` is left
/// out, anything else goes through `str()`.
fn query_pairs(params: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let items = match params.cast::<PyMapping>() {
        Ok(mapping) => mapping.items()?.into_any(),
        Err(_) => params.clone(),
    };
    let bad = || PyTypeError::new_err("params wants a mapping or (name, value) pairs");
    let mut pairs = Vec::new();
    for item in items.try_iter().map_err(|_| bad())? {
        let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
            item?.extract().map_err(|_| bad())?;
        let name = name.str()?.to_string();
        let is_sequence = value.is_instance_of::<pyo3::types::PyList>()
            || value.is_instance_of::<pyo3::types::PyTuple>();
        if is_sequence {
            for v in value.try_iter()? {
                let v = v?;
                if !v.is_none() {
                    pairs.push((name.clone(), v.str()?.to_string()));
                }
            }
        } else if !value.is_none() {
            pairs.push((name, value.str()?.to_string()));
        }
    }
    Ok(pairs)
}
