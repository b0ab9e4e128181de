//! `tokengate.Client`: a thread-safe HTTP client for one API whose requests carry a fresh token.
//!
//! Every request is prepared from its Python arguments with the GIL held, then sent and read whole
//! with the GIL released (`py.detach`): the network, the wait for another thread's refresh, the
//! store's lock. Python threads therefore really run in parallel while they wait.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMapping, PyString};
use tokengate::Error;
use tokengate::http::Method;

use crate::callbacks::{self, RejectFn, string_pairs};
use crate::errors::{self, py_err};
use crate::events::{PyEvents, PyStats};
use crate::gate::{self, GateSettings, PyGate};
use crate::response::{PyResponse, RawResponse};
use crate::token::{PyToken, opt_seconds, quoted, seconds};

/// Largest response body read, unless `max_response_body` says otherwise.
const DEFAULT_MAX_RESPONSE_BODY: u64 = 10 * 1024 * 1024;
/// Distinct per-request timeouts that keep a client of their own (see `PyClient::client_for`).
const TIMEOUT_CLIENTS: usize = 16;

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
///     timeout: seconds for a whole request (connect to last byte). Defaults to none.
///     connect_timeout: seconds to connect. Defaults to 10.
///     response_timeout: seconds to wait for the response head. Defaults to 60.
///     user_agent: the ``User-Agent`` header. Defaults to ureq's.
///     max_idle_connections_per_host: keep-alive connections kept for reuse. Defaults to 3.
///     max_response_body: largest response body read, in bytes. Defaults to 10 MiB.
///
/// Raises:
///     ConfigError: a bad URL, both a gate and token settings, an unusable refresher.
///     InvalidToken: the starting token cannot be sent in a header.
///     StoreError: the store cannot be read or holds no token file.
#[pyclass(frozen, module = "tokengate", name = "Client")]
pub(crate) struct PyClient {
    main: MainClient,
    recipe: Recipe,
    /// Clients for per-request timeouts, sharing `main`'s gate.
    timeouts: Mutex<Vec<(Duration, tokengate::Client)>>,
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

/// Everything but the gate and the timeout that a client is built from, so per-timeout clients
/// can be built like the main one.
struct Recipe {
    base_url: String,
    reject_when: Option<Arc<RejectFn>>,
    max_replays: Option<u32>,
    max_buffered_body: Option<u64>,
    max_redirects: Option<u32>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    response_timeout: Option<Duration>,
    user_agent: Option<String>,
    max_idle_connections_per_host: Option<usize>,
}

impl Recipe {
    fn build(
        &self,
        gate: tokengate::Gate,
        timeout: Option<Duration>,
        background: bool,
    ) -> Result<tokengate::Client, Error> {
        let mut b = tokengate::Client::builder(self.base_url.as_str())
            .gate(gate)
            .timeout(timeout)
            .background_refresh(background);
        if let Some(predicate) = &self.reject_when {
            let predicate = Arc::clone(predicate);
            b = b.reject_when(move |parts, body| predicate(parts, body));
        }
        if let Some(n) = self.max_replays {
            b = b.max_replays(n);
        }
        if let Some(n) = self.max_buffered_body {
            b = b.max_buffered_body(n);
        }
        if let Some(n) = self.max_redirects {
            b = b.max_redirects(n);
        }
        if let Some(t) = self.connect_timeout {
            b = b.connect_timeout(t);
        }
        if let Some(t) = self.response_timeout {
            b = b.response_timeout(t);
        }
        if let Some(ua) = &self.user_agent {
            b = b.user_agent(ua.as_str());
        }
        if let Some(n) = self.max_idle_connections_per_host {
            b = b.max_idle_connections_per_host(n);
        }
        b.build()
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
    #[pyo3(signature = (base_url, *, gate=None, token=None, refresher=None, store=None, refresh_before_expiry=None, refresh_ahead=None, refresh_timeout=None, assumed_lifetime=None, refresh_backoff=None, on_refresh=None, on_login_required=None, background_refresh=false, reject_when=None, max_replays=None, max_buffered_body=None, max_redirects=None, timeout=None, connect_timeout=None, response_timeout=None, user_agent=None, max_idle_connections_per_host=None, max_response_body=None))]
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
        let recipe = Recipe {
            base_url,
            reject_when,
            max_replays,
            max_buffered_body,
            max_redirects,
            timeout: opt_seconds(timeout.as_ref(), "timeout")?,
            connect_timeout: opt_seconds(connect_timeout.as_ref(), "connect_timeout")?,
            response_timeout: opt_seconds(response_timeout.as_ref(), "response_timeout")?,
            user_agent,
            max_idle_connections_per_host,
        };
        let gate = match (gate, settings.any()) {
            (Some(_), true) => {
                return Err(errors::config_error(
                    py,
                    "give the client either a gate or token settings, not both",
                ));
            }
            (Some(gate), false) => gate.get().inner.clone(),
            (None, _) => settings.build(py)?,
        };
        let client = recipe
            .build(gate, recipe.timeout, background_refresh)
            .map_err(py_err(py))?;
        Ok(PyClient {
            main: MainClient {
                client: Some(client),
                background: background_refresh,
            },
            recipe,
            timeouts: Mutex::new(Vec::new()),
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
    ///     timeout: seconds for this whole request (connect to last byte). Defaults to the
    ///         client's ``timeout``.
    ///
    /// Returns:
    ///     The ``Response``. A rejected request (401) is refreshed and replayed once; a rejection
    ///     after that is returned as the response, not raised.
    ///
    /// Raises:
    ///     LoginRequired, RefreshFailed, RefreshTimeout: no token could be had within
    ///         ``refresh_timeout``.
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
        let client = self.client_for(py, timeout)?;
        let limit = self.max_response_body;
        // A predicate error left by an earlier request on this thread is not this request's.
        drop(callbacks::take_predicate_error());
        let outcome = py.detach(move || send(&client, prepared, limit));
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
        &self.recipe.base_url
    }

    fn __repr__(&self) -> String {
        format!("Client({})", quoted(&self.recipe.base_url))
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

    /// The client to send with: the main one, or for a per-request timeout one built like it on
    /// the same gate (token state shared; its own connection pool). The first
    /// `TIMEOUT_CLIENTS` distinct timeouts keep theirs.
    fn client_for(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<tokengate::Client> {
        let main = self.core(py)?;
        let Some(timeout) = timeout else {
            return Ok(main.clone());
        };
        let timeout = seconds(timeout, "timeout")?;
        let mut cache = self.timeouts.lock();
        if let Some((_, c)) = cache.iter().find(|(t, _)| *t == timeout) {
            return Ok(c.clone());
        }
        let client = self
            .recipe
            .build(main.gate().clone(), Some(timeout), false)
            .map_err(py_err(py))?;
        if cache.len() < TIMEOUT_CLIENTS {
            cache.push((timeout, client.clone()));
        }
        Ok(client)
    }
}

/// Sends `p` and reads the whole answer (at most `limit` bytes). Runs with the GIL released.
fn send(client: &tokengate::Client, p: Prepared, limit: u64) -> Result<RawResponse, Error> {
    let mut rb = client.request(p.method, &p.path);
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
