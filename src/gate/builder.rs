//! [`GateBuilder`] and the gate's [`Config`]: what a gate is built from.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use super::{Counters, Gate, Installed, LoginCallback, RefreshCallback, Shared, State, policy};
use crate::error::{Class, Error};
use crate::events::Subscribers;
use crate::refresh::Refresh;
use crate::store::TokenStore;
use crate::sync::{Clock, Condvar, Mutex, Threads};
use crate::token::Token;

/// The gate's settings, fixed at build time; each setter of [`GateBuilder`] documents its default.
#[derive(Clone, Debug)]
pub(super) struct Config {
    pub(super) refresh_before_expiry: Duration,
    pub(super) refresh_ahead: Duration,
    pub(super) refresh_timeout: Duration,
    pub(super) assumed_lifetime: Option<Duration>,
    pub(super) backoff_initial: Duration,
    pub(super) backoff_max: Duration,
}

/// Builds a [`Gate`]. See [`Gate::builder`].
#[must_use]
pub struct GateBuilder {
    token: Option<Token>,
    refresher: Option<Box<dyn Refresh>>,
    config: Config,
    on_login_required: Option<Box<LoginCallback>>,
    on_refresh: Option<Box<RefreshCallback>>,
    store: Option<Arc<dyn TokenStore>>,
    clock: Clock,
}

impl fmt::Debug for GateBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateBuilder")
            .field("token", &self.token)
            .field("refresher", &self.refresher.is_some())
            .field("config", &self.config)
            .field("store", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for GateBuilder {
    fn default() -> Self {
        GateBuilder {
            token: None,
            refresher: None,
            config: Config {
                refresh_before_expiry: policy::REFRESH_BEFORE_EXPIRY,
                refresh_ahead: policy::REFRESH_AHEAD,
                refresh_timeout: policy::REFRESH_TIMEOUT,
                assumed_lifetime: None,
                backoff_initial: policy::BACKOFF_INITIAL,
                backoff_max: policy::BACKOFF_MAX,
            },
            on_login_required: None,
            on_refresh: None,
            store: None,
            clock: Clock::default(),
        }
    }
}

impl GateBuilder {
    /// Sets the starting token. Defaults to none: the token the [`store`](GateBuilder::store) holds,
    /// if any; otherwise the first request refreshes (a client-credentials refresher can start from
    /// nothing), or fails with [`Error::LoginRequired`] when the refresher needs a token.
    pub fn token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }

    /// Sets what gets a new token: an [`OAuth2`](crate::OAuth2) grant, a closure
    /// `Fn(&Token) -> Result<Token, RefreshError>`, or any [`Refresh`]. Defaults to none: the token is
    /// used until it expires or is rejected, and then the client reports [`Error::LoginRequired`].
    pub fn refresher(mut self, refresher: impl Refresh) -> Self {
        self.refresher = Some(Box::new(refresher));
        self
    }

    /// Sets how long before expiry a token is refreshed before it is used (the mandatory window).
    /// The window is shortened to a tenth of the token's lifetime when that is shorter, so a 1-second
    /// token is refreshed 100 ms before it expires, not on every request. Defaults to 60 seconds.
    pub fn refresh_before_expiry(mut self, window: Duration) -> Self {
        self.config.refresh_before_expiry = window;
        self
    }

    /// Sets how long before expiry the advisory window opens: the first request inside it starts a
    /// refresh on a background thread, and it and every other request keep using the still-valid
    /// token meanwhile. Only inside the mandatory window
    /// ([`refresh_before_expiry`](GateBuilder::refresh_before_expiry)) do threads wait. The window is
    /// shortened to a fifth of the token's lifetime when that is shorter, and never ends before the
    /// mandatory window starts; `Duration::ZERO` turns it off. Defaults to 5 minutes.
    pub fn refresh_ahead(mut self, window: Duration) -> Self {
        self.config.refresh_ahead = window;
        self
    }

    /// Sets the budget a request may spend getting a token when the one it has will not do
    /// (expired, inside the mandatory window, or rejected): waiting for another thread's refresh,
    /// and waiting through the backoff after a transient failure for the next attempt, all counted
    /// from when the request first found it needed a new token.
    ///
    /// - During an outage shorter than the budget, requests see latency, not errors.
    /// - When the next attempt would start after the budget runs out, the request fails at once
    ///   with the last refresh error, which says when the next attempt is due
    ///   ([`RefreshError::next_attempt_in`](crate::RefreshError::next_attempt_in)); one that
    ///   waited for an attempt still running when the budget ran out gets
    ///   [`Error::RefreshTimeout`].
    /// - An attempt still running after a whole budget is stuck: new requests fail at once with
    ///   [`Error::RefreshTimeout`] instead of waiting a budget each, and no second refresh starts
    ///   beside it (it would spend the same refresh token).
    /// - A still-valid old token is used instead of any error.
    ///
    /// With a [`store`](GateBuilder::store), the refreshing thread's wait for the store's lock
    /// counts against its budget too. The default fits the [`OAuth2`](crate::OAuth2) refresher's
    /// default request timeout (8 seconds): every attempt ends within its budget, so a token
    /// endpoint that accepts and never answers holds no caller longer than 10 seconds, and each
    /// calling thread sees about one error per 10 seconds while it lasts. It also caps the
    /// [`refresh_backoff`](GateBuilder::refresh_backoff). Defaults to 10 seconds.
    pub fn refresh_timeout(mut self, timeout: Duration) -> Self {
        self.config.refresh_timeout = timeout;
        self
    }

    /// Sets the lifetime assumed for tokens that arrive without an expiry (RFC 6749 §5.1 only
    /// RECOMMENDS `expires_in`). Defaults to none: such a token is used until the server rejects it.
    pub fn assumed_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.assumed_lifetime = Some(lifetime);
        self
    }

    /// Sets the backoff after a failed refresh: `initial` after the first transient failure,
    /// growing by half per consecutive failure up to `max`, each delay jittered down by up to half
    /// so that clients that failed together do not retry together. No delay is longer than the
    /// [`refresh_timeout`](GateBuilder::refresh_timeout) budget, so a request that starts waiting
    /// right after a failure always sees the next attempt. A server's `Retry-After` is honoured
    /// when it is longer, up to `max`: one header must not lock the client out for an hour. A
    /// configuration failure (e.g. `invalid_client`) waits `max`. Delays are never shorter than
    /// 10 ms. Requests wait through a backoff that ends within their
    /// [`refresh_timeout`](GateBuilder::refresh_timeout). Defaults to 250 milliseconds and
    /// 5 seconds: a one-second hiccup of the token endpoint is over for the callers within about
    /// half a second after it ends, and no more than a handful of token requests a second go out
    /// however many threads wait.
    pub fn refresh_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.config.backoff_initial = initial;
        self.config.backoff_max = max.max(initial);
        self
    }

    /// Sets a function called once each time the gate enters the login-required state (a permanent
    /// refresh failure). It runs on the thread whose refresh failed, after every waiting thread has been
    /// woken and with no lock held; a panic in it is caught. Defaults to none.
    pub fn on_login_required(mut self, callback: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_login_required = Some(Box::new(callback));
        self
    }

    /// Sets where the token is kept between runs and shared with other processes, e.g. a
    /// [`FileStore`](crate::FileStore). Without a starting [`token`](GateBuilder::token), the gate
    /// starts from the token the store holds. Every refresh then runs inside the store's exclusive
    /// section: the stored token is re-read, adopted if another process already refreshed, and
    /// otherwise the new token is saved before any waiting thread is woken.
    /// [`set_token`](Gate::set_token) saves too. Defaults to none: the token lives only in this
    /// gate's memory (as with a [`MemoryStore`](crate::MemoryStore) of its own).
    pub fn store(mut self, store: impl TokenStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Sets a function called with every token the refresher produces, e.g. to persist it in a
    /// keyring or database of your own. It runs on the refreshing thread before any waiting thread is
    /// woken (with a store: inside its exclusive section, before the save), with no gate lock held; a
    /// panic in it is caught. Not called for tokens adopted from the store or given to
    /// [`set_token`](Gate::set_token). Defaults to none.
    pub fn on_refresh(mut self, callback: impl Fn(&Token) + Send + Sync + 'static) -> Self {
        self.on_refresh = Some(Box::new(callback));
        self
    }

    /// Reads the time from `clock` (a manual clock in unit tests).
    #[cfg(test)]
    pub(crate) fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the gate. With a [`store`](GateBuilder::store) and no starting token, reads the store.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the refresher's configuration is unusable (e.g. a plain-http token
    /// endpoint off loopback), [`Error::InvalidToken`] when the starting token cannot be sent in a
    /// header, [`Error::Store`] when the store cannot be read or holds something that is not a token
    /// (a [`FileStore`](crate::FileStore) keeps such a file aside on the next save, e.g. by
    /// [`TokenStore::save`] of a new login).
    pub fn build(self) -> Result<Gate, Error> {
        if let Some(r) = &self.refresher {
            r.check().map_err(|e| Error::config(e.message()))?;
        }
        let shared = Shared {
            state: Mutex::new(State {
                current: None,
                generation: 0,
                refreshing: false,
                refresh_started: Instant::now(),
                last_error: None,
                last_class: Class::Transient,
                login_required: None,
                backoff_until: None,
                consecutive_failures: 0,
                rejected_unconfirmed: 0,
            }),
            cond: Condvar::new(),
            refresher: self.refresher,
            config: self.config,
            on_login_required: self.on_login_required,
            on_refresh: self.on_refresh,
            store: self.store,
            accepted: AtomicU64::new(0),
            stats: Counters::default(),
            subscribers: Subscribers::default(),
            clock: self.clock,
            threads: Threads::default(),
        };
        let gate = Gate {
            shared: Arc::new(shared),
        };
        let (start, stored) = match (self.token, &gate.shared.store) {
            (Some(token), _) => (Some(token), false),
            (None, Some(store)) => (store.load()?, true),
            (None, None) => (None, false),
        };
        if let Some(token) = start {
            gate.install_token(token, Installed::Set, stored)?;
        }
        Ok(gate)
    }
}
