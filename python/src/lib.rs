//! `tokengate._tokengate`: the extension module behind the `tokengate` Python package (PyPI
//! distribution `tokengate-py`), built by maturin.
//!
//! It binds tokengate's public API only: [`Client`](tokengate::Client), [`Gate`](tokengate::Gate),
//! [`OAuth2`](tokengate::OAuth2), [`Token`](tokengate::Token), [`FileStore`](tokengate::FileStore),
//! events and stats. The exception classes, the `requests` and `httpx` adapters and the package's
//! docs are Python, in `python/tokengate/`.
//!
//! # The GIL
//!
//! Every call that can wait releases the GIL (`Python::detach`): a request on the network, a wait
//! for another thread's refresh, the store's cross-process lock, an event subscription. Python is
//! entered again (`Python::try_attach`) only to run a Python refresher, hook or predicate, from a
//! thread that holds no lock a GIL-holding thread could be waiting for.

mod callbacks;
mod client;
mod errors;
mod events;
mod gate;
mod login;
mod net;
mod response;
mod store;
mod token;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _tokengate(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<client::PyClient>()?;
    m.add_class::<response::PyResponse>()?;
    m.add_class::<response::PyHeaders>()?;
    m.add_class::<token::PyToken>()?;
    m.add_class::<token::PyLease>()?;
    m.add_class::<callbacks::PyOAuth2>()?;
    m.add_class::<store::PyFileStore>()?;
    m.add_class::<gate::PyGate>()?;
    m.add_class::<events::PyEvents>()?;
    m.add_class::<events::PyEvent>()?;
    m.add_class::<events::PyStats>()?;
    m.add_class::<login::PyBrowserLogin>()?;
    m.add_class::<login::PyCancel>()?;
    m.add_class::<login::PyDeviceLogin>()?;
    m.add_class::<login::PyDevicePrompt>()?;
    m.add_class::<login::PyMetadata>()?;
    m.add_function(wrap_pyfunction!(rejects_token, m)?)?;
    Ok(())
}

/// Whether a response with this status and these ``WWW-Authenticate`` values rejects the token it
/// carried, by tokengate's rule (RFC 6750 §3): a 401 whose ``Bearer`` challenge, if any, asks for a
/// new token. A 403, or a 401 with ``error="insufficient_scope"``, is not: a new token would not
/// help. The ``requests`` and ``httpx`` adapters use it.
#[pyfunction]
fn rejects_token(status: u16, www_authenticate: Vec<String>) -> bool {
    status == 401
        && www_authenticate
            .iter()
            .find_map(|v| tokengate::Challenge::bearer(v))
            .is_none_or(|c| c.wants_new_token())
}
