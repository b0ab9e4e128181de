//! What Python hands the gate to call: `tokengate.OAuth2` refreshers, refresher callables, the
//! `on_refresh` / `on_login_required` hooks and the `reject_when` predicate.
//!
//! Every call into Python happens on a thread that holds no tokengate lock except, for refreshers
//! and `on_refresh` with a store, the store's exclusive section; every Python thread waiting on that
//! section or on the gate has released the GIL (see `client.rs`), so taking the GIL here cannot
//! deadlock. `Python::try_attach` is used so a callback that fires while the interpreter shuts down
//! fails quietly instead of panicking.

use std::cell::RefCell;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping};
use tokengate::http::response::Parts;
use tokengate::{ClientAuth, Error, Refresh, RefreshError, RefreshToken, Token, TokenResponse};

use crate::errors;
use crate::net::NetArgs;
use crate::response::PyResponse;
use crate::token::{PyToken, opt_seconds};

/// The built-in OAuth2 refresher: the refresh_token grant (RFC 6749 §6) or the client_credentials
/// grant (§4.4) against a token endpoint.
///
/// Build one with ``OAuth2.refresh_token(...)`` or ``OAuth2.client_credentials(...)`` and
/// pass it as ``refresher=``. The token endpoint must be ``https`` unless it is on loopback or
/// ``allow_insecure_http=True``. ``repr()`` never shows the client secret.
///
/// The token request goes through the network settings (CA certificates, client certificate,
/// proxy) of the ``Client`` it is given to, unless it is given network keyword arguments of its
/// own: then it uses only those.
#[pyclass(frozen, module = "tokengate", name = "OAuth2")]
pub(crate) struct PyOAuth2 {
    inner: tokengate::OAuth2,
    /// Whether network keyword arguments were given (else the client's settings are inherited).
    own_network: bool,
}

#[pymethods]
impl PyOAuth2 {
    /// The refresh_token grant (RFC 6749 §6): trades the current refresh token for a new access
    /// token. A rotated refresh token in the answer replaces the old one.
    ///
    /// Args:
    ///     token_url: the token endpoint.
    ///     client_id: the client identifier (RFC 6749 §2.2). Defaults to none.
    ///     client_secret: the client secret (§2.3.1). Defaults to none (a public client).
    ///     client_auth: ``"basic"`` (HTTP Basic) or ``"request_body"`` (form fields). Defaults to
    ///         ``"basic"`` when there is a secret.
    ///     scope: the scope to request, space-separated. Defaults to none.
    ///     revocation_url: the revocation endpoint (RFC 7009), where ``Client.logout()`` revokes
    ///         the refresh token; checked like ``token_url``. Defaults to none: a logout then only
    ///         forgets the token here and in the store.
    ///     extra_params: more form fields for every token request, e.g. ``{"audience": ...}``.
    ///         Defaults to none.
    ///     timeout: seconds for the whole token request. Defaults to 10.
    ///     connect_timeout: seconds to connect to the token endpoint. Defaults to 5.
    ///     allow_insecure_http: allow a plain ``http`` endpoint off loopback. Defaults to False.
    ///     ca_certs, roots, client_cert, proxy, no_proxy, proxy_from_env: network settings of the
    ///         token request alone, as on ``Client`` (where they are described); giving any of
    ///         them replaces all of the client's. Defaults to the client's settings (to the
    ///         defaults under a ``Gate`` given directly).
    ///
    /// Raises:
    ///     ConfigError: an unknown ``client_auth`` or ``roots``, a network argument of the wrong
    ///         type. Unreadable certificate files are reported when the client is built.
    #[staticmethod]
    #[pyo3(signature = (token_url, *, client_id=None, client_secret=None, client_auth=None, scope=None, revocation_url=None, extra_params=None, timeout=None, connect_timeout=None, allow_insecure_http=false, ca_certs=None, roots=None, client_cert=None, proxy=None, no_proxy=None, proxy_from_env=true))]
    #[allow(clippy::too_many_arguments)]
    fn refresh_token(
        py: Python<'_>,
        token_url: String,
        client_id: Option<String>,
        client_secret: Option<String>,
        client_auth: Option<&str>,
        scope: Option<String>,
        revocation_url: Option<String>,
        extra_params: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        allow_insecure_http: bool,
        ca_certs: Option<&Bound<'_, PyAny>>,
        roots: Option<&str>,
        client_cert: Option<&Bound<'_, PyAny>>,
        proxy: Option<&str>,
        no_proxy: Option<&str>,
        proxy_from_env: bool,
    ) -> PyResult<Self> {
        let options = Options {
            client_id,
            client_secret,
            client_auth,
            scope,
            revocation_url,
            extra_params,
            timeout,
            connect_timeout,
            allow_insecure_http,
            net: NetArgs {
                ca_certs,
                roots,
                client_cert,
                proxy,
                no_proxy,
                proxy_from_env,
            },
        };
        options.apply(py, tokengate::OAuth2::refresh_token(token_url))
    }

    /// The client_credentials grant (RFC 6749 §4.4): the client gets tokens with its own
    /// credentials; no refresh token and no starting token are needed. Takes the same keyword
    /// arguments as ``refresh_token``.
    #[staticmethod]
    #[pyo3(signature = (token_url, *, client_id=None, client_secret=None, client_auth=None, scope=None, revocation_url=None, extra_params=None, timeout=None, connect_timeout=None, allow_insecure_http=false, ca_certs=None, roots=None, client_cert=None, proxy=None, no_proxy=None, proxy_from_env=true))]
    #[allow(clippy::too_many_arguments)]
    fn client_credentials(
        py: Python<'_>,
        token_url: String,
        client_id: Option<String>,
        client_secret: Option<String>,
        client_auth: Option<&str>,
        scope: Option<String>,
        revocation_url: Option<String>,
        extra_params: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        allow_insecure_http: bool,
        ca_certs: Option<&Bound<'_, PyAny>>,
        roots: Option<&str>,
        client_cert: Option<&Bound<'_, PyAny>>,
        proxy: Option<&str>,
        no_proxy: Option<&str>,
        proxy_from_env: bool,
    ) -> PyResult<Self> {
        let options = Options {
            client_id,
            client_secret,
            client_auth,
            scope,
            revocation_url,
            extra_params,
            timeout,
            connect_timeout,
            allow_insecure_http,
            net: NetArgs {
                ca_certs,
                roots,
                client_cert,
                proxy,
                no_proxy,
                proxy_from_env,
            },
        };
        options.apply(py, tokengate::OAuth2::client_credentials(token_url))
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// The keyword arguments both `OAuth2` constructors take.
struct Options<'a, 'py> {
    client_id: Option<String>,
    client_secret: Option<String>,
    client_auth: Option<&'a str>,
    scope: Option<String>,
    revocation_url: Option<String>,
    extra_params: Option<&'a Bound<'py, PyAny>>,
    timeout: Option<&'a Bound<'py, PyAny>>,
    connect_timeout: Option<&'a Bound<'py, PyAny>>,
    allow_insecure_http: bool,
    net: NetArgs<'a, 'py>,
}

impl Options<'_, '_> {
    fn apply(self, py: Python<'_>, mut oauth: tokengate::OAuth2) -> PyResult<PyOAuth2> {
        if let Some(id) = self.client_id {
            oauth = oauth.client_id(id);
        }
        if let Some(secret) = self.client_secret {
            oauth = oauth.client_secret(secret);
        }
        match self.client_auth {
            None => {}
            Some("basic") => oauth = oauth.client_auth(ClientAuth::Basic),
            Some("request_body") => oauth = oauth.client_auth(ClientAuth::RequestBody),
            Some(other) => {
                return Err(errors::config_error(
                    py,
                    format!("client_auth is \"basic\" or \"request_body\", not {other:?}"),
                ));
            }
        }
        if let Some(scope) = self.scope {
            oauth = oauth.scope(scope);
        }
        if let Some(url) = self.revocation_url {
            oauth = oauth.revocation_url(url);
        }
        if let Some(extra) = self.extra_params {
            for (name, value) in string_pairs(extra, "extra_params")? {
                oauth = oauth.extra_param(name, value);
            }
        }
        if let Some(t) = opt_seconds(self.timeout, "timeout")? {
            oauth = oauth.timeout(t);
        }
        if let Some(t) = opt_seconds(self.connect_timeout, "connect_timeout")? {
            oauth = oauth.connect_timeout(t);
        }
        let network = self.net.network(py)?;
        let own_network = network.is_some();
        if let Some(network) = network {
            oauth = oauth.network(network);
        }
        Ok(PyOAuth2 {
            inner: oauth.allow_insecure_http(self.allow_insecure_http),
            own_network,
        })
    }
}

/// `(name, value)` string pairs from a mapping or an iterable of pairs; values go through `str()`.
pub(crate) fn string_pairs(
    value: &Bound<'_, PyAny>,
    what: &str,
) -> PyResult<Vec<(String, String)>> {
    let items = match value.cast::<PyMapping>() {
        Ok(mapping) => mapping.items()?.into_any(),
        Err(_) => value.clone(),
    };
    let mut pairs = Vec::new();
    for item in items.try_iter().map_err(|_| {
        PyTypeError::new_err(format!("{what} wants a mapping or (name, value) pairs"))
    })? {
        let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
            item?.extract().map_err(|_| {
                PyTypeError::new_err(format!("{what} wants a mapping or (name, value) pairs"))
            })?;
        pairs.push((name.str()?.to_string(), value.str()?.to_string()));
    }
    Ok(pairs)
}

/// A `refresher=` argument: an `OAuth2` object or any Python callable.
pub(crate) enum Refresher {
    OAuth2(tokengate::OAuth2),
    Python(PyRefresher),
}

impl Refresh for Refresher {
    fn refresh(&self, current: Option<&Token>) -> Result<Token, RefreshError> {
        match self {
            Refresher::OAuth2(oauth) => oauth.refresh(current),
            Refresher::Python(callable) => callable.refresh(current),
        }
    }

    fn check(&self) -> Result<(), tokengate::RefreshError> {
        match self {
            Refresher::OAuth2(oauth) => oauth.check(),
            Refresher::Python(callable) => callable.check(),
        }
    }

    /// An `OAuth2` refresher revokes at its `revocation_url`; a Python callable knows no
    /// revocation endpoint, so a logout only forgets the token.
    fn revoke(&self, token: &Token) -> Result<(), RefreshError> {
        match self {
            Refresher::OAuth2(oauth) => oauth.revoke(token),
            Refresher::Python(_) => Ok(()),
        }
    }
}

/// The refresher for a `refresher=` argument. An `OAuth2` refresher without network settings of
/// its own takes `inherit` (the client's), as the Rust `ClientBuilder::refresher` does.
pub(crate) fn refresher(
    value: &Bound<'_, PyAny>,
    inherit: Option<&tokengate::Network>,
) -> PyResult<Refresher> {
    if let Ok(oauth) = value.cast::<PyOAuth2>() {
        let oauth = oauth.get();
        let mut inner = oauth.inner.clone();
        if let (false, Some(network)) = (oauth.own_network, inherit) {
            inner = inner.network(network.clone());
        }
        return Ok(Refresher::OAuth2(inner));
    }
    if value.is_callable() {
        return Ok(Refresher::Python(PyRefresher {
            func: value.clone().unbind(),
        }));
    }
    Err(PyTypeError::new_err(
        "refresher wants a tokengate.OAuth2 or a callable taking the current Token (or None)",
    ))
}

/// A Python callable as a [`Refresh`]: called with the current `Token` (or `None` when there is
/// none yet); returns a `Token` or a token response dict (RFC 6749 §5.1).
pub(crate) struct PyRefresher {
    func: Py<PyAny>,
}

impl Refresh for PyRefresher {
    fn refresh(&self, current: Option<&Token>) -> Result<Token, RefreshError> {
        let previous = current.and_then(Token::refresh_token);
        Python::try_attach(|py| {
            let arg = current.map(|t| PyToken::from(t.clone()));
            match self.func.bind(py).call1((arg,)) {
                Ok(returned) => token_from(py, &returned, previous),
                Err(err) => Err(errors::refresh_error(py, &err)),
            }
        })
        .unwrap_or_else(|| {
            Err(RefreshError::transient(
                "the Python interpreter is not available (shutting down)",
            ))
        })
    }
}

/// The token a Python refresher returned: a `Token`, or a token response as a mapping
/// (`{"access_token": ..., "expires_in": ..., "refresh_token": ...}`), parsed like an OAuth2 answer
/// (a mapping without `refresh_token` keeps the previous one).
fn token_from(
    py: Python<'_>,
    returned: &Bound<'_, PyAny>,
    previous: Option<&RefreshToken>,
) -> Result<Token, RefreshError> {
    if let Ok(token) = returned.cast::<PyToken>() {
        return Ok((*token.get().inner).clone());
    }
    if returned.cast::<PyMapping>().is_ok() || returned.cast::<PyDict>().is_ok() {
        let json = py
            .import("json")
            .and_then(|json| json.call_method1("dumps", (returned,)))
            .and_then(|text| text.extract::<String>())
            .map_err(|e| {
                RefreshError::transient(format!(
                    "the refresher returned a mapping that is not JSON: {}",
                    errors::traceback(py, &e)
                ))
            })?;
        return TokenResponse::parse(json.as_bytes()).map(|r| r.into_token(previous));
    }
    let type_name = returned
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    Err(RefreshError::transient(format!(
        "the refresher returned a {type_name}, not a tokengate.Token or a token response dict"
    )))
}

/// `on_refresh`: called with every token the refresher produces. An exception is reported through
/// `sys.unraisablehook` and does not fail the refresh: failing it would throw away a rotated
/// refresh token the server has already spent, and log the user out.
pub(crate) fn on_refresh(func: Py<PyAny>) -> impl Fn(&Token) + Send + Sync + 'static {
    move |token: &Token| {
        Python::try_attach(|py| {
            let func = func.bind(py);
            if let Err(e) = func.call1((PyToken::from(token.clone()),)) {
                e.write_unraisable(py, Some(func));
            }
        });
    }
}

/// `on_login_required`: called with the `LoginRequired` exception once each time the gate enters
/// the login-required state. An exception is reported through `sys.unraisablehook`.
pub(crate) fn on_login_required(func: Py<PyAny>) -> impl Fn(&Error) + Send + Sync + 'static {
    move |error: &Error| {
        Python::try_attach(|py| {
            let func = func.bind(py);
            let outcome =
                errors::instance(py, error).and_then(|exception| func.call1((exception,)));
            if let Err(e) = outcome {
                e.write_unraisable(py, Some(func));
            }
        });
    }
}

/// The `reject_when` predicate as the client wants it.
pub(crate) type RejectFn = dyn Fn(&Parts, &[u8]) -> bool + Send + Sync;

thread_local! {
    /// The exception a `reject_when` predicate raised during the request running on this thread
    /// (the client asks the predicate on the thread that sent the request).
    static PREDICATE_ERROR: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// A Python `reject_when(response) -> bool` predicate. If it raises, the response counts as not
/// rejected and the exception is kept for [`take_predicate_error`], which the request raises.
pub(crate) fn reject_when(func: Py<PyAny>) -> Arc<RejectFn> {
    Arc::new(move |parts: &Parts, body: &[u8]| {
        Python::try_attach(|py| {
            let judged = PyResponse::from_parts(py, parts, body)
                .and_then(|response| Py::new(py, response))
                .and_then(|response| func.bind(py).call1((response,)))
                .and_then(|verdict| verdict.is_truthy());
            judged.unwrap_or_else(|e| {
                PREDICATE_ERROR.with(|slot| {
                    slot.borrow_mut().get_or_insert(e);
                });
                false
            })
        })
        .unwrap_or(false)
    })
}

/// The exception the `reject_when` predicate raised on this thread since the last call, if any.
pub(crate) fn take_predicate_error() -> Option<PyErr> {
    PREDICATE_ERROR.with(|slot| slot.borrow_mut().take())
}
