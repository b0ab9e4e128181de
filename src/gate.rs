//! The heart: a single-flight refresh gate. `parking_lot::Mutex<State>` plus a `Condvar`.
//!
//! The gate knows nothing of HTTP. It holds the current token, decides when it must be refreshed,
//! lets exactly one thread run the [`Refresh`] (without the lock held), and wakes every waiting thread
//! with the outcome.
//!
//! ```text
//!            lease(): token fresh? ──yes──> return (Arc<Token>, generation)       [fast path]
//!                 │ no
//!   login required? ──yes──> Err(LoginRequired)                                   [no network]
//!                 │ no
//!      refreshing? ──yes──> wait on Condvar (≤ refresh_timeout) ──> outcome of that attempt
//!                 │ no
//!   backing off after a transient failure? ──yes──> old token if still valid, else the last error
//!                 │ no
//!   mark refreshing, unlock, call the refresher (panics caught), lock, install the outcome,
//!   clear refreshing (a drop guard does it if anything unwinds), notify_all
//! ```
//!
//! With a [`TokenStore`], "call the refresher" becomes `Gate::fetch`: inside the store's exclusive
//! (cross-process) section, re-read the store and adopt a token another process saved, or refresh
//! and save before the section ends. See `store::refresh_locked`.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use ureq::http::HeaderValue;

use crate::error::{Error, RefreshError, RefreshErrorKind};
use crate::events::{Event, Subscribers};
use crate::refresh::Refresh;
use crate::store::{self, Fetched, TokenStore};
use crate::sync::{Condvar, Mutex, MutexGuard};
use crate::token::Token;

type LoginCallback = dyn Fn(&Error) + Send + Sync;
type RefreshCallback = dyn Fn(&Token) + Send + Sync;

/// The shared token state with its refresher: one per token, shared by every [`Client`](crate::Client)
/// (and every clone of one) that uses that token.
///
/// Cloning a `Gate` is cheap and gives another handle to the same state. Most programs never touch it:
/// [`ClientBuilder`](crate::ClientBuilder) makes one. Build one yourself to share a token between
/// clients of several API hosts, so the process never refreshes the same token twice:
///
/// ```
/// use std::time::Duration;
/// use tokengate::{Client, Gate, OAuth2, Token};
///
/// let gate = Gate::builder()
///     .token(Token::new("ACCESS").expires_in(Duration::from_secs(3600)).refresh_token("REFRESH"))
///     .refresher(OAuth2::refresh_token_grant("https://auth.example.com/oauth/token").client_id("app"))
///     .build()?;
/// let users = Client::builder("https://users.example.com").gate(gate.clone()).build()?;
/// let files = Client::builder("https://files.example.com").gate(gate).build()?;
/// # Ok::<_, tokengate::Error>(())
/// ```
///
/// # Thread safety
///
/// [`lease`](Gate::lease) takes the mutex for a few instructions when the token is fresh. When the token
/// must be refreshed, the first thread to notice runs the refresher with the mutex *released*; every
/// other thread that needs a token blocks on the condition variable until that refresh completes
/// (success, failure or panic all wake them) or until `refresh_timeout` passes, whichever is first.
/// Nothing spins and nothing sleeps.
#[derive(Clone)]
pub struct Gate {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    refresher: Option<Box<dyn Refresh>>,
    config: Config,
    on_login_required: Option<Box<LoginCallback>>,
    on_refresh: Option<Box<RefreshCallback>>,
    /// Where the token is persisted and refreshes are coordinated across processes (see `fetch`).
    store: Option<Arc<dyn TokenStore>>,
    /// Highest generation the server has accepted (see [`Gate::confirm`]).
    accepted: AtomicU64,
    stats: Counters,
    subscribers: Subscribers,
}

#[derive(Clone, Debug)]
struct Config {
    refresh_before_expiry: Duration,
    refresh_ahead: Duration,
    refresh_timeout: Duration,
    assumed_lifetime: Option<Duration>,
    backoff_initial: Duration,
    backoff_max: Duration,
}

#[derive(Default)]
struct Counters {
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    waits: AtomicU64,
    replays: AtomicU64,
    events_dropped: AtomicU64,
    adopted: AtomicU64,
    store_errors: AtomicU64,
}

struct State {
    current: Option<Current>,
    /// Bumped every time a token is installed; a rejection names the generation it saw.
    generation: u64,
    refreshing: bool,
    /// Completed refresh attempts (any outcome); waiters watch it change.
    attempts: u64,
    /// Outcome of the most recent attempt, when it failed.
    last_error: Option<Error>,
    /// Set by a permanent failure; every lease fails fast with it until `set_token`.
    login_required: Option<Error>,
    backoff_until: Option<Instant>,
    consecutive_failures: u32,
}

/// When a token's refresh windows open; see [`Gate::windows`].
struct Windows {
    expires_at: Option<Instant>,
    refresh_at: Option<Instant>,
    ahead_at: Option<Instant>,
}

struct Current {
    token: Arc<Token>,
    /// Effective expiry: the token's, or now + the assumed lifetime.
    expires_at: Option<Instant>,
    /// Start of the mandatory refresh window: from here on, threads wait for the refresh.
    refresh_at: Option<Instant>,
    /// Start of the advisory window: from here on, a refresh runs in the background while the
    /// still-valid token keeps being used.
    ahead_at: Option<Instant>,
    /// Rejected by the server.
    dead: bool,
    /// Installed by a refresh that a rejection triggered.
    reactive: bool,
}

/// A token handed out by [`Gate::lease`], with the generation it belongs to.
///
/// Hand the lease back to [`Gate::reject`] when the server rejects the token, or to
/// [`Gate::confirm`] when it accepts it.
#[derive(Clone, Debug)]
pub struct Lease {
    token: Arc<Token>,
    generation: u64,
}

impl Lease {
    /// The token.
    pub fn token(&self) -> &Arc<Token> {
        &self.token
    }

    /// The generation: how many tokens the gate had installed when this one was current.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The ready-made `Authorization` header value. The gate only installs tokens that have one.
    pub fn authorization(&self) -> &HeaderValue {
        self.token
            .authorization()
            .expect("the gate only installs tokens whose header value is valid")
    }
}

/// What [`Gate::reject`] did with a rejected token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// A newer token was installed after this lease was taken (another thread already refreshed):
    /// lease again and replay.
    Replaced,
    /// The token is marked dead; the next [`Gate::lease`] refreshes it. Replay.
    Invalidated,
    /// The token came from a refresh that a rejection triggered and the server has never accepted it:
    /// the server rejects even fresh tokens, so refreshing again would loop. Do not replay; hand the
    /// rejection to the caller.
    Final,
}

/// Plain counters of what a gate (and the clients using it) did. A snapshot; see [`Gate::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Refreshes that produced a new token.
    pub refreshes: u64,
    /// Refresh attempts that failed (any kind, including a panicking refresher).
    pub refresh_failures: u64,
    /// Times a thread blocked on the condition variable waiting for another thread's refresh.
    pub waits: u64,
    /// Requests replayed with a new token after a rejection.
    pub replays: u64,
    /// Events that a full subscriber channel could not take (see [`EVENT_BUFFER`](crate::EVENT_BUFFER)).
    pub events_dropped: u64,
    /// Refreshes skipped because the [`TokenStore`] already held a newer token (another process, or
    /// another gate on the same store, had refreshed); the stored token was adopted.
    pub adopted: u64,
    /// Refreshed tokens that could not be saved to the [`TokenStore`] (the token is used anyway;
    /// other processes will not see it).
    pub store_errors: u64,
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
                refresh_before_expiry: Duration::from_secs(60),
                refresh_ahead: Duration::from_secs(300),
                refresh_timeout: Duration::from_secs(30),
                assumed_lifetime: None,
                backoff_initial: Duration::from_secs(1),
                backoff_max: Duration::from_secs(60),
            },
            on_login_required: None,
            on_refresh: None,
            store: None,
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

    /// Sets how long a thread waits for another thread's refresh before it gives up with
    /// [`Error::RefreshTimeout`]. Defaults to 30 seconds.
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

    /// Sets the backoff after a transient refresh failure: `initial` after the first failure, doubling
    /// per consecutive failure up to `max`, each delay jittered down by up to half; a server's
    /// `Retry-After` (delay-seconds or HTTP-date) is honoured when it is longer, up to one hour.
    /// Defaults to 1 second and 60 seconds.
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
            r.check().map_err(Error::config)?;
        }
        let shared = Shared {
            state: Mutex::new(State {
                current: None,
                generation: 0,
                refreshing: false,
                attempts: 0,
                last_error: None,
                login_required: None,
                backoff_until: None,
                consecutive_failures: 0,
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
        };
        let gate = Gate {
            shared: Arc::new(shared),
        };
        let start = match (self.token, &gate.shared.store) {
            (Some(token), _) => Some(token),
            (None, Some(store)) => store.load()?,
            (None, None) => None,
        };
        if let Some(token) = start {
            gate.install_token(token)?;
        }
        Ok(gate)
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.state.lock();
        f.debug_struct("Gate")
            .field("token", &st.current.as_ref().map(|c| &c.token))
            .field("generation", &st.generation)
            .field("refreshing", &st.refreshing)
            .field("login_required", &st.login_required.is_some())
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// A builder with the defaults.
    pub fn builder() -> GateBuilder {
        GateBuilder::default()
    }

    /// Gets a token that is fine to send now, refreshing first when it is inside the refresh window
    /// or was rejected.
    ///
    /// Blocks while another thread refreshes (at most `refresh_timeout`). A request is never given a
    /// token that is known to have expired.
    ///
    /// # Errors
    ///
    /// - [`Error::LoginRequired`]: a refresh failed permanently (or earlier did, and no
    ///   [`set_token`](Gate::set_token) came since), or there is no token and no refresher.
    /// - [`Error::Refresh`]: a refresh failed transiently and the old token is no longer valid (during
    ///   the backoff that follows, this error is returned at once, without network).
    /// - [`Error::RefreshTimeout`]: another thread's refresh took longer than `refresh_timeout`.
    /// - [`Error::RefresherPanicked`]: the refresher panicked (the next call tries again).
    pub fn lease(&self) -> Result<Lease, Error> {
        // The clock is read before the lock is taken: it is most of the fast path's work, and other
        // threads need not wait for it.
        let mut now = Instant::now();
        let mut st = self.shared.state.lock();
        let mut deadline = None;
        loop {
            if let Some(e) = &st.login_required {
                return Err(e.clone());
            }
            if let Some(lease) = st.fresh_lease(now) {
                if st.ahead_due(now) && self.shared.refresher.is_some() {
                    // Advisory window: refresh on another thread, keep using this token.
                    let ticket = self.claim(&mut st);
                    drop(st);
                    self.refresh_in_background(ticket);
                }
                return Ok(lease);
            }
            if st.refreshing {
                let deadline =
                    *deadline.get_or_insert_with(|| now + self.shared.config.refresh_timeout);
                if let Some(outcome) = self.wait_for_attempt(&mut st, deadline) {
                    return outcome;
                }
                now = Instant::now();
                continue;
            }
            if st.backoff_until.is_some_and(|until| now < until) {
                return st.valid_lease(now).ok_or_else(|| st.failure());
            }
            if self.shared.refresher.is_none() {
                return st.valid_lease(now).ok_or(Error::LoginRequired(None));
            }
            let ticket = self.claim(&mut st);
            drop(st);
            return self.run_refresh(ticket);
        }
    }

    /// Blocks until the refresh in flight completes or `deadline` passes. `Some` is the answer for
    /// the waiting thread; `None` means look at the state again.
    fn wait_for_attempt(
        &self,
        st: &mut MutexGuard<'_, State>,
        deadline: Instant,
    ) -> Option<Result<Lease, Error>> {
        let (attempt, generation) = (st.attempts, st.generation);
        self.shared.stats.waits.fetch_add(1, Relaxed);
        while st.refreshing && st.attempts == attempt && st.generation == generation {
            if self.shared.cond.wait_until(st, deadline).timed_out()
                && st.refreshing
                && st.attempts == attempt
                && st.generation == generation
            {
                return Some(Err(Error::RefreshTimeout(
                    self.shared.config.refresh_timeout,
                )));
            }
        }
        if st.attempts != attempt && st.generation == generation {
            // The attempt we waited for failed: share its error, unless the old token is still valid
            // and the failure was not permanent.
            if let Some(err) = st.login_required.clone() {
                return Some(Err(err));
            }
            let now = Instant::now();
            if let Some(err) = st.last_error.clone() {
                return Some(st.valid_lease(now).ok_or(err));
            }
        }
        None
    }

    /// Marks a refresh as in flight and captures what it needs. The caller holds the lock and has
    /// checked that nobody else is refreshing and that there is a refresher.
    fn claim(&self, st: &mut State) -> Ticket {
        st.refreshing = true;
        Ticket {
            gate: self.clone(),
            armed: true,
            started_generation: st.generation,
            reactive: st.current.as_ref().is_some_and(|c| c.dead),
            current: st.current.as_ref().map(|c| Arc::clone(&c.token)),
        }
    }

    /// Runs a claimed refresh on a short-lived thread (advisory window). If no thread can be spawned,
    /// the ticket is dropped, which clears the claim; the mandatory window will refresh in line.
    fn refresh_in_background(&self, ticket: Ticket) {
        let gate = self.clone();
        let _ = crate::sync::spawn("tokengate-ahead", move || {
            let _ = gate.run_refresh(ticket);
        });
    }

    /// Runs a claimed refresh with no lock held and installs the outcome: the new token, a
    /// login-required state, or a backoff. Wakes every waiter, emits the event, and returns the answer
    /// for the calling thread.
    fn run_refresh(&self, mut ticket: Ticket) -> Result<Lease, Error> {
        let Some(refresher) = self.shared.refresher.as_deref() else {
            // Not reached: tickets are only claimed when there is a refresher. Release the claim.
            ticket.armed = false;
            self.shared.state.lock().refreshing = false;
            self.shared.cond.notify_all();
            return Err(Error::LoginRequired(None));
        };
        let started = Instant::now();
        let current = ticket.current.take();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.fetch(current.as_deref(), refresher)
        }))
        .unwrap_or(Err(Error::RefresherPanicked));
        ticket.armed = false;
        let mut st = self.shared.state.lock();
        st.refreshing = false;
        st.attempts += 1;
        if st.generation != ticket.started_generation {
            // set_token installed a token while we were refreshing: it wins, our outcome is stale.
            self.shared.cond.notify_all();
            let now = Instant::now();
            return st.valid_lease(now).ok_or_else(|| st.failure());
        }
        let mut save_failed = None;
        let (result, event) = match outcome {
            Ok(fetched) => {
                let stats = &self.shared.stats;
                let counter = if fetched.adopted {
                    &stats.adopted
                } else {
                    &stats.refreshes
                };
                counter.fetch_add(1, Relaxed);
                if let Some(e) = fetched.save_error {
                    stats.store_errors.fetch_add(1, Relaxed);
                    save_failed = Some(Event::StoreFailed {
                        error: Error::Store(e),
                    });
                }
                st.last_error = None;
                st.backoff_until = None;
                st.consecutive_failures = 0;
                let lease = self.install(&mut st, fetched.token, ticket.reactive);
                let expires_in = lease.token.lifetime().or_else(|| lease.token.remaining());
                let event = if fetched.adopted {
                    Event::Adopted {
                        generation: lease.generation,
                        expires_in,
                    }
                } else {
                    Event::Refreshed {
                        generation: lease.generation,
                        expires_in,
                        reactive: ticket.reactive,
                        took: started.elapsed(),
                    }
                };
                (Ok(lease), event)
            }
            Err(err) => {
                self.shared.stats.refresh_failures.fetch_add(1, Relaxed);
                st.last_error = Some(err.clone());
                let mut retry_in = None;
                match &err {
                    Error::LoginRequired(_) => st.login_required = Some(err.clone()),
                    Error::Refresh(e) => {
                        st.consecutive_failures = st.consecutive_failures.saturating_add(1);
                        let delay = self.backoff(st.consecutive_failures, e.retry_after());
                        st.backoff_until = Some(Instant::now() + delay);
                        retry_in = Some(delay);
                    }
                    _ => {}
                }
                let event = if err.is_login_required() {
                    Event::LoginRequired { error: err.clone() }
                } else {
                    Event::RefreshFailed {
                        error: err.clone(),
                        retry_in,
                    }
                };
                (Err(err), event)
            }
        };
        self.shared.cond.notify_all();
        let now = Instant::now();
        let result = match result {
            Err(err) if !err.is_login_required() => st.valid_lease(now).ok_or(err),
            other => other,
        };
        drop(st);
        self.emit(event);
        if let Some(event) = save_failed {
            self.emit(event);
        }
        if let (Err(err @ Error::LoginRequired(_)), Some(cb)) =
            (&result, &self.shared.on_login_required)
        {
            let _ = catch_unwind(AssertUnwindSafe(|| cb(err)));
        }
        result
    }

    fn emit(&self, event: Event) {
        let dropped = self.shared.subscribers.emit(event);
        if dropped > 0 {
            self.shared.stats.events_dropped.fetch_add(dropped, Relaxed);
        }
    }

    /// Gets the next token, on the refreshing thread with no gate lock held.
    ///
    /// Without a store this is the refresher. With one, it is the cross-process single flight of
    /// `store::refresh_locked`: inside the store's exclusive section (entered within
    /// `refresh_timeout`, else [`Error::RefreshTimeout`]), a token another process saved meanwhile is
    /// adopted without calling the refresher; otherwise the refresher runs and its token is saved
    /// before the section ends. Either way this returns before any waiter is woken. Only this thread
    /// of the process contends for the store's lock; the others wait on the condition variable.
    fn fetch(&self, current: Option<&Token>, refresher: &dyn Refresh) -> Result<Fetched, Error> {
        let refresh = |base: Option<&Token>| -> Result<Token, Error> {
            let token = match refresher.refresh(base) {
                Ok(token) if token.authorization().is_none() => {
                    return Err(Error::Refresh(RefreshError::new(
                        RefreshErrorKind::InvalidResponse,
                        false,
                        "the new access token cannot be sent in an HTTP header",
                    )));
                }
                Ok(token) => token,
                Err(e) if e.is_permanent() => return Err(Error::LoginRequired(Some(e))),
                Err(e) => return Err(Error::Refresh(e)),
            };
            if let Some(hook) = &self.shared.on_refresh {
                let _ = catch_unwind(AssertUnwindSafe(|| hook(&token)));
            }
            Ok(token)
        };
        match &self.shared.store {
            None => refresh(current).map(Fetched::refreshed),
            Some(store) => store::refresh_locked(
                &**store,
                current,
                self.shared.config.refresh_timeout,
                |stored| {
                    // Adopt a stored token that is not yet in its advisory window: adopting one that
                    // is would only start another refresh at once.
                    let now = Instant::now();
                    self.windows(stored, now).ahead_at.is_none_or(|at| now < at)
                },
                refresh,
            ),
        }
    }

    /// The effective expiry of `token` (its own, or `now` + the assumed lifetime) and the starts of
    /// its mandatory and advisory refresh windows.
    fn windows(&self, token: &Token, now: Instant) -> Windows {
        let cfg = &self.shared.config;
        let (expires_at, lifetime) = match (token.expires_at(), cfg.assumed_lifetime) {
            (Some(at), _) => (Some(at), token.lifetime()),
            (None, Some(assumed)) => (Some(now + assumed), Some(assumed)),
            (None, None) => (None, None),
        };
        let (window, ahead) = match lifetime {
            Some(l) => (
                cfg.refresh_before_expiry.min(l / 10),
                cfg.refresh_ahead.min(l / 5),
            ),
            None => (cfg.refresh_before_expiry, cfg.refresh_ahead),
        };
        let ahead = ahead.max(window);
        Windows {
            expires_at,
            refresh_at: expires_at.map(|at| at.checked_sub(window).unwrap_or(at)),
            ahead_at: expires_at.map(|at| at.checked_sub(ahead).unwrap_or(at)),
        }
    }

    fn install(&self, st: &mut State, token: Token, reactive: bool) -> Lease {
        let Windows {
            expires_at,
            refresh_at,
            ahead_at,
        } = self.windows(&token, Instant::now());
        let token = Arc::new(token);
        st.generation += 1;
        st.current = Some(Current {
            token: Arc::clone(&token),
            expires_at,
            refresh_at,
            ahead_at,
            dead: false,
            reactive,
        });
        Lease {
            token,
            generation: st.generation,
        }
    }

    fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let cfg = &self.shared.config;
        let exp = cfg
            .backoff_initial
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
            .min(cfg.backoff_max);
        // Jitter down by up to half, so clients that failed together do not retry together.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let jittered = exp.mul_f64(0.5 + (random % 1000) as f64 / 2000.0);
        match retry_after {
            Some(after) => jittered.max(after.min(Duration::from_secs(3600))),
            None => jittered,
        }
    }

    /// Tells the gate the server rejected the leased token. See [`Rejection`] for what to do next.
    pub fn reject(&self, lease: &Lease) -> Rejection {
        let mut st = self.shared.state.lock();
        let generation = st.generation;
        let Some(current) = st.current.as_mut() else {
            return Rejection::Invalidated;
        };
        if generation != lease.generation {
            return Rejection::Replaced;
        }
        if current.reactive && self.shared.accepted.load(Relaxed) < lease.generation {
            return Rejection::Final;
        }
        current.dead = true;
        Rejection::Invalidated
    }

    /// Tells the gate the server accepted the leased token. Cheap (one atomic load on the common
    /// path); it lets [`reject`](Gate::reject) tell a server that rejects every token from one that
    /// revoked a token that used to work.
    pub fn confirm(&self, lease: &Lease) {
        if self.shared.accepted.load(Relaxed) < lease.generation {
            self.shared.accepted.fetch_max(lease.generation, Relaxed);
        }
    }

    /// Installs a new token, e.g. after the user logged in again. Leaves the login-required state and
    /// any backoff, and wakes waiting threads. A refresh in flight when this is called is discarded
    /// when it completes. With a [`store`](GateBuilder::store), the token is first saved inside the
    /// store's exclusive section (waiting at most `refresh_timeout` for it).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidToken`] when the token cannot be sent in an HTTP header;
    /// [`Error::Store`] when it could not be saved, or [`Error::RefreshTimeout`] when the store stayed
    /// locked. The gate is unchanged on error.
    pub fn set_token(&self, token: Token) -> Result<(), Error> {
        if token.authorization().is_none() {
            return Err(Error::InvalidToken);
        }
        if let Some(store) = &self.shared.store {
            let timeout = self.shared.config.refresh_timeout;
            let _section = store
                .lock(timeout)
                .map_err(|e| store::lock_failed(e, timeout))?;
            store.save(&token)?;
            // Installed before the section ends, so no process can refresh the replaced token.
            return self.install_token(token);
        }
        self.install_token(token)
    }

    /// [`set_token`](Gate::set_token) without saving to the store.
    fn install_token(&self, token: Token) -> Result<(), Error> {
        if token.authorization().is_none() {
            return Err(Error::InvalidToken);
        }
        let mut st = self.shared.state.lock();
        let lease = self.install(&mut st, token, false);
        st.login_required = None;
        st.last_error = None;
        st.backoff_until = None;
        st.consecutive_failures = 0;
        self.shared.cond.notify_all();
        drop(st);
        self.emit(Event::TokenSet {
            generation: lease.generation,
            expires_in: lease.token.lifetime().or_else(|| lease.token.remaining()),
        });
        Ok(())
    }

    /// The current token, whatever its state, without refreshing. `None` before the first token.
    pub fn token(&self) -> Option<Arc<Token>> {
        self.shared
            .state
            .lock()
            .current
            .as_ref()
            .map(|c| Arc::clone(&c.token))
    }

    /// Whether the gate is in the login-required state.
    pub fn is_login_required(&self) -> bool {
        self.shared.state.lock().login_required.is_some()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.stats;
        Stats {
            refreshes: c.refreshes.load(Relaxed),
            refresh_failures: c.refresh_failures.load(Relaxed),
            waits: c.waits.load(Relaxed),
            replays: c.replays.load(Relaxed),
            events_dropped: c.events_dropped.load(Relaxed),
            adopted: c.adopted.load(Relaxed),
            store_errors: c.store_errors.load(Relaxed),
        }
    }

    /// Subscribes to the gate's [`Event`]s. Any number of subscribers; each gets every event from now
    /// on, through a channel of [`EVENT_BUFFER`](crate::EVENT_BUFFER) events. Sending never blocks the
    /// gate: when a subscriber's channel is full, the event is dropped for that subscriber (and counted
    /// in [`Stats::events_dropped`]); a dropped receiver is pruned at the next event.
    pub fn events(&self) -> crossbeam_channel::Receiver<Event> {
        self.shared.subscribers.subscribe()
    }

    /// When the background refresher should next look at the token: when the advisory window opens,
    /// or the backoff ends, whichever is later. `None` when there is nothing to schedule (no token, no
    /// expiry, no refresher, a refresh in flight, or login required).
    pub(crate) fn next_background_refresh(&self) -> Option<Instant> {
        let st = self.shared.state.lock();
        if self.shared.refresher.is_none() || st.refreshing || st.login_required.is_some() {
            return None;
        }
        let c = st.current.as_ref()?;
        let at = if c.dead {
            Some(Instant::now())
        } else {
            c.ahead_at
        }?;
        Some(match st.backoff_until {
            Some(until) => at.max(until),
            None => at,
        })
    }

    /// Refreshes on the calling thread if the token is in its advisory window (or was rejected), no
    /// refresh is in flight and the gate is not backing off. Used by the background refresher.
    pub(crate) fn refresh_ahead(&self) {
        let mut st = self.shared.state.lock();
        if !st.ahead_due(Instant::now()) || self.shared.refresher.is_none() {
            return;
        }
        let ticket = self.claim(&mut st);
        drop(st);
        let _ = self.run_refresh(ticket);
    }

    pub(crate) fn count_replay(&self) {
        self.shared.stats.replays.fetch_add(1, Relaxed);
    }
}

impl State {
    /// A lease when the token is outside the refresh window and not rejected.
    fn fresh_lease(&self, now: Instant) -> Option<Lease> {
        let c = self.current.as_ref()?;
        (!c.dead && c.refresh_at.is_none_or(|at| now < at)).then(|| self.lease_of(c))
    }

    /// A lease when the token may still be sent (inside the window but not expired, not rejected).
    fn valid_lease(&self, now: Instant) -> Option<Lease> {
        let c = self.current.as_ref()?;
        (!c.dead && c.expires_at.is_none_or(|at| now < at)).then(|| self.lease_of(c))
    }

    /// Whether a refresh may start now without anybody waiting for it: the token has entered its
    /// advisory window (or was rejected), and no refresh is in flight, no backoff runs and the gate
    /// is not in the login-required state.
    fn ahead_due(&self, now: Instant) -> bool {
        !self.refreshing
            && self.login_required.is_none()
            && self.backoff_until.is_none_or(|until| now >= until)
            && self
                .current
                .as_ref()
                .is_some_and(|c| c.dead || c.ahead_at.is_some_and(|at| now >= at))
    }

    fn lease_of(&self, c: &Current) -> Lease {
        Lease {
            token: Arc::clone(&c.token),
            generation: self.generation,
        }
    }

    fn failure(&self) -> Error {
        self.last_error
            .clone()
            .or_else(|| self.login_required.clone())
            .unwrap_or(Error::LoginRequired(None))
    }
}

/// A claimed refresh: `refreshing` is set and this ticket owns it. [`Gate::run_refresh`] consumes it.
/// If the ticket is dropped unconsumed (the refreshing thread unwound, or no thread could be spawned
/// to run it), its `Drop` clears `refreshing` and wakes every waiter: parking_lot does not poison, so
/// without this a panic would wedge them all.
struct Ticket {
    gate: Gate,
    armed: bool,
    started_generation: u64,
    reactive: bool,
    current: Option<Arc<Token>>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.armed {
            let shared = &self.gate.shared;
            let mut st = shared.state.lock();
            st.refreshing = false;
            st.attempts += 1;
            st.last_error = Some(Error::RefresherPanicked);
            shared.stats.refresh_failures.fetch_add(1, Relaxed);
            shared.cond.notify_all();
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
