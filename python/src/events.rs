//! `tokengate.Events`, `tokengate.Event` and `tokengate.Stats`.
//!
//! `PyEvents` wraps the core crate's `tokengate::Events` subscription.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokengate::{Event, Events};

use crate::errors;
use crate::token::{quoted, seconds};

/// How often a blocked iterator wakes to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// A subscription to token events, from ``client.events()`` or ``gate.events()``.
///
/// Iterate it (``for event in client.events(): ...``, typically on a thread of its own); each step
/// blocks, with the GIL released, until the next event, and the iteration ends when the gate is
/// gone. ``get(timeout)`` waits at most ``timeout`` seconds. Events are buffered (64 per
/// subscription); when a subscriber falls that far behind, newer events are dropped for it and
/// counted in ``stats().events_dropped``: a slow subscriber never slows a request.
#[pyclass(frozen, module = "tokengate", name = "Events")]
pub(crate) struct PyEvents {
    rx: Events,
}

impl PyEvents {
    pub(crate) fn new(rx: Events) -> Self {
        PyEvents { rx }
    }

    /// Waits up to `timeout` (forever for `None`), checking for signals meanwhile. `Ok(None)` when
    /// the time ran out or the gate is gone.
    fn wait(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Option<PyEvent>> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            let slice = match deadline {
                Some(d) => d
                    .saturating_duration_since(std::time::Instant::now())
                    .min(SIGNAL_CHECK),
                None => SIGNAL_CHECK,
            };
            let rx = &self.rx;
            match py.detach(|| rx.recv_timeout(slice)) {
                Some(event) => return PyEvent::new(py, &event).map(Some),
                None if rx.is_closed() => return Ok(None),
                None => {
                    py.check_signals()?;
                    if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

#[pymethods]
impl PyEvents {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyEvent>> {
        self.wait(py, None)
    }

    /// The next event, waiting at most ``timeout`` seconds (``None``: as long as it takes).
    /// Returns ``None`` when no event came in time or the gate is gone.
    #[pyo3(signature = (timeout=None))]
    fn get(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Option<PyEvent>> {
        let timeout = timeout.map(|t| seconds(t, "timeout")).transpose()?;
        self.wait(py, timeout)
    }

    /// Events waiting to be read.
    fn __len__(&self) -> usize {
        self.rx.len()
    }

    fn __repr__(&self) -> String {
        format!("<Events pending={}>", self.rx.len())
    }
}

/// Something that happened to the token. Carries no secret.
///
/// ``kind`` is one of ``"refreshed"``, ``"refresh_failed"``, ``"login_required"``,
/// ``"token_set"``, ``"adopted"`` (the store held a token another process had just refreshed),
/// ``"store_failed"``, ``"logged_in"``, ``"logged_out"``; the other attributes are ``None`` where they do not apply.
#[pyclass(frozen, module = "tokengate", name = "Event")]
pub(crate) struct PyEvent {
    /// What happened (see the class docs).
    #[pyo3(get)]
    kind: &'static str,
    /// The generation of the token installed, for refreshed / token_set / adopted.
    #[pyo3(get)]
    generation: Option<u64>,
    /// The new token's lifetime in seconds, when known.
    #[pyo3(get)]
    expires_in: Option<f64>,
    /// Whether a rejection (not the approaching expiry) triggered the refresh.
    #[pyo3(get)]
    reactive: Option<bool>,
    /// How long the refresh took, in seconds.
    #[pyo3(get)]
    took: Option<f64>,
    /// When the gate retries at the earliest, in seconds, after a transient failure.
    #[pyo3(get)]
    retry_in: Option<f64>,
    /// The exception (``RefreshFailed``, ``LoginRequired``, ``StoreError``) for failures.
    #[pyo3(get)]
    error: Option<Py<PyAny>>,
}

impl PyEvent {
    fn new(py: Python<'_>, event: &Event) -> PyResult<Self> {
        let secs = |d: &Option<Duration>| d.map(|d| d.as_secs_f64());
        let mut e = PyEvent {
            kind: "unknown",
            generation: None,
            expires_in: None,
            reactive: None,
            took: None,
            retry_in: None,
            error: None,
        };
        match event {
            Event::Refreshed {
                generation,
                expires_in,
                reactive,
                took,
            } => {
                e.kind = "refreshed";
                e.generation = Some(*generation);
                e.expires_in = secs(expires_in);
                e.reactive = Some(*reactive);
                e.took = Some(took.as_secs_f64());
            }
            Event::RefreshFailed { error, retry_in } => {
                e.kind = "refresh_failed";
                e.retry_in = secs(retry_in);
                e.error = Some(errors::instance(py, error)?.unbind());
            }
            Event::LoginRequired { error } => {
                e.kind = "login_required";
                e.error = Some(errors::instance(py, error)?.unbind());
            }
            Event::TokenSet {
                generation,
                expires_in,
            } => {
                e.kind = "token_set";
                e.generation = Some(*generation);
                e.expires_in = secs(expires_in);
            }
            Event::Adopted {
                generation,
                expires_in,
            } => {
                e.kind = "adopted";
                e.generation = Some(*generation);
                e.expires_in = secs(expires_in);
            }
            Event::StoreFailed { error } => {
                e.kind = "store_failed";
                e.error = Some(errors::instance(py, error)?.unbind());
            }
            Event::LoggedIn {
                generation,
                expires_in,
            } => {
                e.kind = "logged_in";
                e.generation = Some(*generation);
                e.expires_in = secs(expires_in);
            }
            Event::LoggedOut { generation } => {
                e.kind = "logged_out";
                e.generation = Some(*generation);
            }
            _ => {}
        }
        Ok(e)
    }
}

#[pymethods]
impl PyEvent {
    fn __repr__(&self, py: Python<'_>) -> String {
        let mut parts = vec![format!("kind={}", quoted(self.kind))];
        if let Some(g) = self.generation {
            parts.push(format!("generation={g}"));
        }
        if let Some(x) = self.expires_in {
            parts.push(format!("expires_in={x:.1}"));
        }
        if let Some(r) = self.reactive {
            parts.push(format!("reactive={}", if r { "True" } else { "False" }));
        }
        if let Some(t) = self.took {
            parts.push(format!("took={t:.3}"));
        }
        if let Some(r) = self.retry_in {
            parts.push(format!("retry_in={r:.3}"));
        }
        if let Some(err) = &self.error {
            let text = err
                .bind(py)
                .repr()
                .map_or_else(|_| "?".to_owned(), |r| r.to_string());
            parts.push(format!("error={text}"));
        }
        format!("Event({})", parts.join(", "))
    }
}

/// Counters of what a gate (and every client on it) did: a snapshot.
#[pyclass(frozen, module = "tokengate", name = "Stats")]
pub(crate) struct PyStats {
    /// Refreshes that produced a new token.
    #[pyo3(get)]
    refreshes: u64,
    /// Refresh attempts that failed (any kind).
    #[pyo3(get)]
    refresh_failures: u64,
    /// Times a thread waited for another thread's refresh.
    #[pyo3(get)]
    waits: u64,
    /// Requests replayed with a new token after a rejection.
    #[pyo3(get)]
    replays: u64,
    /// Events a full subscription could not take.
    #[pyo3(get)]
    events_dropped: u64,
    /// Refreshes skipped because the store already held a newer token, which was adopted.
    #[pyo3(get)]
    adopted: u64,
    /// Refreshed tokens that could not be saved to the store.
    #[pyo3(get)]
    store_errors: u64,
}

impl From<tokengate::Stats> for PyStats {
    fn from(s: tokengate::Stats) -> Self {
        PyStats {
            refreshes: s.refreshes,
            refresh_failures: s.refresh_failures,
            waits: s.waits,
            replays: s.replays,
            events_dropped: s.events_dropped,
            adopted: s.adopted,
            store_errors: s.store_errors,
        }
    }
}

impl PyStats {
    fn fields(&self) -> [(&'static str, u64); 7] {
        [
            ("refreshes", self.refreshes),
            ("refresh_failures", self.refresh_failures),
            ("waits", self.waits),
            ("replays", self.replays),
            ("events_dropped", self.events_dropped),
            ("adopted", self.adopted),
            ("store_errors", self.store_errors),
        ]
    }
}

#[pymethods]
impl PyStats {
    /// The counters as a ``dict``.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.fields() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let fields: Vec<String> = self
            .fields()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("Stats({})", fields.join(", "))
    }
}
