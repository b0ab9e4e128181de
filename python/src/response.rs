//! `tokengate.Response` and `tokengate.Headers`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use tokengate::http::{self, Extensions, HeaderMap, StatusCode};
use tokengate::ureq::{Body, ResponseExt};

/// An HTTP response, read whole.
///
/// ``status_code``, ``headers`` (every value of every header), ``content`` (bytes), ``text``,
/// ``json()``, ``url`` (the URL that answered, after redirects), ``ok`` and ``reason``.
#[pyclass(frozen, module = "tokengate", name = "Response")]
pub(crate) struct PyResponse {
    status: u16,
    headers: Py<PyHeaders>,
    content: Py<PyBytes>,
    url: String,
    charset: Option<String>,
}

/// A response as read on a detached thread, before it becomes a `PyResponse`.
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) url: String,
    pub(crate) charset: Option<String>,
}

impl RawResponse {
    /// Everything but the body, which the caller reads (bounded) next.
    pub(crate) fn head(resp: &http::Response<Body>) -> RawResponse {
        RawResponse {
            status: resp.status().as_u16(),
            headers: header_pairs(resp.headers()),
            body: Vec::new(),
            url: final_url(resp),
            charset: resp.body().charset().map(str::to_owned),
        }
    }

    pub(crate) fn into_py(self, py: Python<'_>) -> PyResult<PyResponse> {
        Ok(PyResponse {
            status: self.status,
            headers: Py::new(py, PyHeaders::new(self.headers))?,
            content: PyBytes::new(py, &self.body).unbind(),
            url: self.url,
            charset: self.charset,
        })
    }
}

impl PyResponse {
    /// The response a `reject_when` predicate sees: the head and the buffered body.
    pub(crate) fn from_parts(
        py: Python<'_>,
        parts: &http::response::Parts,
        body: &[u8],
    ) -> PyResult<Self> {
        Ok(PyResponse {
            status: parts.status.as_u16(),
            headers: Py::new(py, PyHeaders::new(header_pairs(&parts.headers)))?,
            content: PyBytes::new(py, body).unbind(),
            url: url_of(&parts.extensions),
            charset: charset_of(&parts.headers),
        })
    }
}

#[pymethods]
impl PyResponse {
    /// The HTTP status code, e.g. 200.
    #[getter]
    fn status_code(&self) -> u16 {
        self.status
    }

    /// Whether the status is below 400.
    #[getter]
    fn ok(&self) -> bool {
        self.status < 400
    }

    /// The status's reason phrase, e.g. ``"OK"`` (empty for unknown codes).
    #[getter]
    fn reason(&self) -> &'static str {
        StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
    }

    /// The response headers (case-insensitive, every value kept; see ``Headers``).
    #[getter]
    fn headers(&self, py: Python<'_>) -> Py<PyHeaders> {
        self.headers.clone_ref(py)
    }

    /// The body as bytes.
    #[getter]
    fn content(&self, py: Python<'_>) -> Py<PyBytes> {
        self.content.clone_ref(py)
    }

    /// The body decoded with the ``charset`` of ``Content-Type`` (UTF-8 when there is none or
    /// Python does not know it); undecodable bytes become U+FFFD.
    #[getter]
    fn text(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let content = self.content.bind(py);
        if let Some(charset) = &self.charset
            && let Ok(text) = content.call_method1("decode", (charset.as_str(), "replace"))
        {
            return Ok(text.unbind());
        }
        Ok(content
            .call_method1("decode", ("utf-8", "replace"))?
            .unbind())
    }

    /// The URL that answered (after redirects).
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// The body parsed as JSON (``json.loads``).
    ///
    /// Raises:
    ///     json.JSONDecodeError (a ValueError): the body is not JSON.
    fn json(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(py
            .import("json")?
            .call_method1("loads", (self.content.bind(py),))?
            .unbind())
    }

    fn __repr__(&self) -> String {
        format!("<Response [{}]>", self.status)
    }
}

/// Response headers: a read-only, case-insensitive mapping that keeps every value.
///
/// ``headers["content-type"]`` and ``headers.get(name)`` give a header's values joined with
/// ``", "`` (as ``requests`` does); ``get_list(name)`` gives them one by one (e.g. each
/// ``Set-Cookie``), ``multi_items()`` every ``(name, value)`` pair in order. Names are lower-case.
#[pyclass(frozen, module = "tokengate", name = "Headers", mapping)]
pub(crate) struct PyHeaders {
    pairs: Vec<(String, String)>,
}

impl PyHeaders {
    fn new(pairs: Vec<(String, String)>) -> Self {
        PyHeaders { pairs }
    }

    fn values_of(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn joined(&self, name: &str) -> Option<String> {
        let values = self.values_of(name);
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// Distinct names in the order they first appear.
    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for (n, _) in &self.pairs {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
        names
    }
}

#[pymethods]
impl PyHeaders {
    fn __getitem__(&self, name: &str) -> PyResult<String> {
        self.joined(name)
            .ok_or_else(|| PyKeyError::new_err(name.to_owned()))
    }

    fn __contains__(&self, name: &Bound<'_, PyAny>) -> bool {
        name.extract::<&str>()
            .is_ok_and(|n| self.pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case(n)))
    }

    fn __len__(&self) -> usize {
        self.names().len()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyList::new(py, self.names())?.try_iter()?.into_any())
    }

    /// A header's values joined with ``", "``, or ``default`` when it is absent.
    #[pyo3(signature = (name, default=None))]
    fn get(&self, py: Python<'_>, name: &str, default: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
        match self.joined(name) {
            Some(v) => Ok(v.into_pyobject(py)?.into_any().unbind()),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    /// Every value of a header, in order (empty when it is absent).
    fn get_list(&self, name: &str) -> Vec<String> {
        self.values_of(name)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Every ``(name, value)`` pair, in order, repeated names included.
    fn multi_items(&self) -> Vec<(String, String)> {
        self.pairs.clone()
    }

    /// Distinct header names.
    fn keys(&self) -> Vec<String> {
        self.names().into_iter().map(str::to_owned).collect()
    }

    /// Each distinct header's values joined with ``", "``.
    fn values(&self) -> Vec<String> {
        self.names()
            .into_iter()
            .filter_map(|n| self.joined(n))
            .collect()
    }

    /// ``(name, joined values)`` for each distinct header.
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        self.names()
            .into_iter()
            .map(|n| PyTuple::new(py, [n.to_owned(), self.joined(n).unwrap_or_default()]))
            .collect()
    }

    fn __repr__(&self) -> String {
        let shown: Vec<String> = self
            .pairs
            .iter()
            .map(|(n, v)| format!("({n:?}, {v:?})"))
            .collect();
        format!("Headers([{}])", shown.join(", "))
    }
}

/// Every header as `(lower-case name, value)`; a value that is not UTF-8 is read as Latin-1, as
/// `http.client` does.
fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = match value.to_str() {
                Ok(v) => v.to_owned(),
                Err(_) => value.as_bytes().iter().map(|&b| char::from(b)).collect(),
            };
            (name.as_str().to_owned(), value)
        })
        .collect()
}

/// The `charset` parameter of `Content-Type`, if any.
fn charset_of(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    ct.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The URL that answered: ureq records it on every response it returns.
fn final_url(resp: &http::Response<Body>) -> String {
    // `get_uri` expects ureq's record, which every response from ureq's agent carries; guard
    // anyway so a future ureq cannot turn a missing record into a panic across the boundary.
    catch_unwind(AssertUnwindSafe(|| resp.get_uri().to_string())).unwrap_or_default()
}

/// The URL recorded in a response head's extensions (see [`final_url`]).
fn url_of(extensions: &Extensions) -> String {
    let mut probe = http::Response::new(Body::builder().data(Vec::new()));
    *probe.extensions_mut() = extensions.clone();
    final_url(&probe)
}
