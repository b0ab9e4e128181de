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
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ureq::http::HeaderValue;

use crate::error::{Class, Error, RefreshError, RefreshErrorKind};
use crate::events::{Event, Subscribers};
use crate::refresh::Refresh;
use crate::store::{self, Fetched, TokenStore};
use crate::sync::{Clock, Condvar, Mutex, Now};
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
/// must be refreshed, the first thread to notice claims the refresh and starts it on a short-lived
/// refresher thread, which runs the refresher with the mutex *released*; that thread and every
/// other one that needs a token block on the condition variable until a token is installed
/// (through backoffs, as [`refresh_timeout`](GateBuilder::refresh_timeout) describes) or their
/// budget runs out, whichever is first: a token endpoint that hangs holds no caller past its
/// budget. Nothing spins; nothing sleeps but the timed waits on the condition variable.
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
    clock: Clock,
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
    /// When the refresh in flight started (on the monotonic clock); meaningful while `refreshing`.
    refresh_started: Instant,
    /// Outcome of the most recent attempt, when it failed.
    last_error: Option<Error>,
    /// What the most recent failure means: a transient one is worth waiting for the next attempt.
    last_class: Class,
    /// Set by a permanent failure; every lease fails fast with it until `set_token`.
    login_required: Option<Error>,
    backoff_until: Option<Instant>,
    consecutive_failures: u32,
    /// Tokens in a row the server rejected before it ever accepted them (see [`Gate::reject`]);
    /// it grows the backoff before the next such refresh. Reset when a token had been accepted.
    rejected_unconfirmed: u32,
}

/// A moment a token reaches, on both clocks: it has come when *either* clock says so. The
/// monotonic clock cannot be set back, but on Linux it stops while the machine sleeps; the wall
/// clock runs on through a sleep. A token that expired during an 8-hour suspend is thus expired on
/// resume, and one whose wall clock was set back still expires on time.
#[derive(Clone, Copy, Debug)]
struct Deadline {
    mono: Instant,
    wall: Option<SystemTime>,
}

impl Deadline {
    fn passed(&self, now: Now) -> bool {
        now.mono >= self.mono || self.wall.is_some_and(|w| now.wall >= w)
    }

    fn earlier_by(self, d: Duration) -> Deadline {
        Deadline {
            mono: self.mono.checked_sub(d).unwrap_or(self.mono),
            wall: self.wall.map(|w| w.checked_sub(d).unwrap_or(UNIX_EPOCH)),
        }
    }

    /// When the deadline comes on the monotonic clock, as far as `now` tells: the earlier of the
    /// monotonic deadline and the time left on the wall clock.
    fn mono_at(&self, now: Now) -> Instant {
        match self.wall {
            Some(w) => {
                let left = w.duration_since(now.wall).unwrap_or(Duration::ZERO);
                self.mono.min(now.mono + left)
            }
            None => self.mono,
        }
    }
}

/// When a token's refresh windows open; see [`Gate::windows`].
struct Windows {
    expires: Option<Deadline>,
    refresh_at: Option<Deadline>,
    ahead_at: Option<Deadline>,
}

struct Current {
    token: Arc<Token>,
    /// Effective expiry: the token's, or when it was installed + the assumed lifetime.
    expires: Option<Deadline>,
    /// Start of the mandatory refresh window: from here on, threads wait for the refresh.
    refresh_at: Option<Deadline>,
    /// Start of the advisory window: from here on, a refresh runs in the background while the
    /// still-valid token keeps being used.
    ahead_at: Option<Deadline>,
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
    /// The token came from a refresh that a rejection triggered and the server has never accepted
    /// it: either it rejects even fresh tokens (replaying at once could loop) or it revoked this one
    /// right away. Do not replay; hand the rejection to the caller. The token is marked dead: the
    /// next [`Gate::lease`] refreshes after a backoff that grows while such rejections go on.
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
    /// Requests that blocked on the condition variable for a refresh (or the end of a backoff).
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
    ///   ([`RefreshError::next_attempt_in`]); one that waited for an attempt still running when the
    ///   budget ran out gets [`Error::RefreshTimeout`].
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
            r.check().map_err(Error::config)?;
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
    /// When the token will not do, this waits, blocked on the condition variable, through other
    /// threads' refreshes *and* through the backoff after a transient failure, until a token is
    /// installed or the [`refresh_timeout`](GateBuilder::refresh_timeout) budget runs out; one
    /// thread runs each attempt, the others wait for its outcome. A request is never given a token
    /// that is known to have expired (on either the monotonic or the wall clock).
    ///
    /// # Errors
    ///
    /// - [`Error::LoginRequired`]: a refresh failed permanently (or earlier did, and no
    ///   [`set_token`](Gate::set_token) came since), or there is no token and no refresher. At once,
    ///   without network.
    /// - [`Error::Refresh`]: the refresh failed and the old token is no longer valid. A transient
    ///   failure is returned only when the next attempt would start after the budget; a
    ///   configuration failure ([`RefreshError::is_configuration`]) at once. The error says when the
    ///   next attempt is due ([`RefreshError::next_attempt_in`]).
    /// - [`Error::RefreshTimeout`]: the budget ran out while an attempt was still running, or an
    ///   attempt has been running for longer than a whole budget (then at once).
    /// - [`Error::RefresherPanicked`], [`Error::Store`]: the last attempt failed that way and the
    ///   next one would start after the budget.
    pub fn lease(&self) -> Result<Lease, Error> {
        self.lease_until(None)
    }

    /// [`lease`](Gate::lease), waiting no later than `request_deadline` either (a request's own
    /// deadline, see [`RequestBuilder::timeout`](crate::RequestBuilder::timeout)).
    #[inline]
    pub(crate) fn lease_until(&self, request_deadline: Option<Instant>) -> Result<Lease, Error> {
        // The clock is read before the lock is taken: it is most of the fast path's work, and other
        // threads need not wait for it.
        let mut now = self.shared.clock.now();
        let mut st = self.shared.state.lock();
        let budget = self.shared.config.refresh_timeout;
        // Set when this call first finds it needs a new token: the budget counts from there.
        let mut deadline = None;
        let mut waited = false;
        loop {
            if let Some(e) = &st.login_required {
                return Err(e.clone());
            }
            if let Some(lease) = st.fresh_lease(now) {
                if st.ahead_due(now) && self.shared.refresher.is_some() {
                    // Advisory window: refresh on another thread, keep using this token.
                    let ticket = self.claim(&mut st, now);
                    drop(st);
                    self.refresh_in_background(ticket);
                }
                return Ok(lease);
            }
            let deadline = *deadline.get_or_insert_with(|| {
                let own = now.mono + budget;
                request_deadline.map_or(own, |d| d.min(own))
            });
            let until = if st.refreshing {
                // Wait for the attempt in flight; not past our budget, nor past the attempt's own:
                // an attempt running for longer than a budget is stuck, and waiting for it again and
                // again would hold every new caller a whole budget.
                let until = deadline.min(st.refresh_started + budget);
                if now.mono >= until {
                    return st.valid_lease(now).ok_or(Error::RefreshTimeout(budget));
                }
                until
            } else if let Some(next) = st.backoff_until.filter(|&next| now.mono < next) {
                if let Some(lease) = st.valid_lease(now) {
                    return Ok(lease);
                }
                if st.last_class != Class::Transient || next > deadline {
                    return Err(st.failure());
                }
                // The next attempt comes within our budget: wait for it.
                next
            } else if self.shared.refresher.is_none() {
                return st.valid_lease(now).ok_or(Error::LoginRequired(None));
            } else {
                // This thread claims the attempt and waits for it like any other: the attempt
                // runs on a refresher thread, so a slow token endpoint holds no caller (this one
                // included) past its budget.
                let ticket = self.claim(&mut st, now);
                drop(st);
                self.spawn_refresh(ticket);
                now = self.shared.clock.now();
                st = self.shared.state.lock();
                continue;
            };
            if !waited {
                waited = true;
                self.shared.stats.waits.fetch_add(1, Relaxed);
            }
            let timed_out = self.shared.cond.wait_until(&mut st, until).timed_out();
            now = self.shared.clock.now();
            if timed_out {
                // The wait ran to its end, so that moment has come (whatever a test clock says).
                now.mono = now.mono.max(until);
            }
        }
    }

    /// Marks a refresh as in flight and captures what it needs. The caller holds the lock and has
    /// checked that nobody else is refreshing and that there is a refresher.
    fn claim(&self, st: &mut State, now: Now) -> Ticket {
        st.refreshing = true;
        st.refresh_started = now.mono;
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
            gate.run_refresh(ticket);
        });
    }

    /// Runs a claimed refresh that requests wait for on a refresher thread of its own; when no
    /// thread can be started, on the calling thread.
    #[cfg(not(loom))]
    fn spawn_refresh(&self, ticket: Ticket) {
        let slot = Arc::new(std::sync::Mutex::new(Some(ticket)));
        let (gate, theirs) = (self.clone(), Arc::clone(&slot));
        let spawned = crate::sync::spawn("tokengate-refresh", move || {
            let ticket = theirs.lock().map(|mut t| t.take()).unwrap_or(None);
            if let Some(ticket) = ticket {
                gate.run_refresh(ticket);
            }
        });
        if spawned.is_err() {
            // The closure, and its handle on the slot, are gone: the ticket is ours again.
            let ticket = slot.lock().map(|mut t| t.take()).unwrap_or(None);
            if let Some(ticket) = ticket {
                self.run_refresh(ticket);
            }
        }
    }

    /// Under loom, in line: loom runs at most five threads per model, and the refresher's own
    /// would leave too few for the requesters and the timers the models need.
    #[cfg(loom)]
    fn spawn_refresh(&self, ticket: Ticket) {
        self.run_refresh(ticket);
    }

    /// Runs a claimed refresh with no lock held and installs the outcome: the new token, a
    /// login-required state, or a backoff; or nothing, when [`set_token`](Gate::set_token)
    /// installed a token meanwhile. Wakes every waiter and emits the event. A store's lock is
    /// waited for at most a budget.
    fn run_refresh(&self, mut ticket: Ticket) {
        let Some(refresher) = self.shared.refresher.as_deref() else {
            // Not reached: tickets are only claimed when there is a refresher. Release the claim.
            ticket.armed = false;
            self.shared.state.lock().refreshing = false;
            self.shared.cond.notify_all();
            return;
        };
        let started = Instant::now();
        let lock_timeout = self.shared.config.refresh_timeout;
        let current = ticket.current.take();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.fetch(current.as_deref(), refresher, lock_timeout)
        }))
        .unwrap_or(Err(Error::RefresherPanicked));
        ticket.armed = false;
        let now = self.shared.clock.now();
        let mut st = self.shared.state.lock();
        st.refreshing = false;
        if st.generation != ticket.started_generation {
            // set_token installed a token while we were refreshing: it wins, our outcome is stale.
            self.shared.cond.notify_all();
            return;
        }
        let mut save_failed = None;
        let (result, event) = match outcome {
            Ok(fetched) if fetched.unusable.is_some() => {
                // A failed attempt that still rotated the refresh token: install the token it
                // replaces with the new refresh token (still dead if it was rejected), then back
                // off like after any transient failure.
                let stats = &self.shared.stats;
                stats.refresh_failures.fetch_add(1, Relaxed);
                if let Some(e) = fetched.save_error {
                    stats.store_errors.fetch_add(1, Relaxed);
                    save_failed = Some(Event::StoreFailed {
                        error: Error::Store(e),
                    });
                }
                let err = fetched.unusable.unwrap_or(Error::RefresherPanicked);
                self.install(&mut st, fetched.token, ticket.reactive, now);
                if let Some(c) = st.current.as_mut() {
                    c.dead = ticket.reactive;
                }
                let (err, event) = self.fail(&mut st, err, now);
                (Err(err), event)
            }
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
                // An adopted token was not issued to us just now: a rejection of it is a
                // revocation to refresh past, not a sign the server rejects fresh tokens.
                let reactive = ticket.reactive && !fetched.adopted;
                let lease = self.install(&mut st, fetched.token, reactive, now);
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
                let (err, event) = self.fail(&mut st, err, now);
                (Err(err), event)
            }
        };
        // Events go out before any waiter wakes (sending never blocks: full channels drop), so a
        // request that returns with the outcome finds its event already delivered.
        self.emit(event);
        if let Some(event) = save_failed {
            self.emit(event);
        }
        self.shared.cond.notify_all();
        drop(st);
        if let (Err(err @ Error::LoginRequired(_)), Some(cb)) =
            (&result, &self.shared.on_login_required)
        {
            let _ = catch_unwind(AssertUnwindSafe(|| cb(err)));
        }
    }

    /// Records a failed attempt: a login-required state for a permanent failure, otherwise a
    /// backoff (exponential for a transient failure, the longest one for anything else). Returns
    /// the error as waiters will see it (saying when the next attempt is due) and its event.
    fn fail(&self, st: &mut State, err: Error, now: Now) -> (Error, Event) {
        if err.is_login_required() {
            st.login_required = Some(err.clone());
            st.last_error = Some(err.clone());
            return (err.clone(), Event::LoginRequired { error: err });
        }
        let cfg = &self.shared.config;
        let class = if err.is_transient() {
            Class::Transient
        } else {
            Class::Configuration
        };
        // Never past a whole budget: a request that starts waiting just after a failure then
        // always sees the next attempt, so a long outage costs each caller one error per budget,
        // never a flood of instant ones.
        let delay = match class {
            Class::Transient => {
                st.consecutive_failures = st.consecutive_failures.saturating_add(1);
                let retry_after = err.refresh_error().and_then(RefreshError::retry_after);
                policy::backoff(
                    cfg.backoff_initial,
                    cfg.backoff_max,
                    st.consecutive_failures,
                    retry_after,
                    policy::random(),
                )
            }
            _ => cfg.backoff_max.max(policy::MIN_BACKOFF),
        }
        .min(cfg.refresh_timeout.max(policy::MIN_BACKOFF));
        let next = now.mono + delay;
        let err = match err {
            Error::Refresh(e) => Error::Refresh(e.with_next_attempt(next)),
            other => other,
        };
        st.backoff_until = Some(next);
        st.last_class = class;
        st.last_error = Some(err.clone());
        let event = Event::RefreshFailed {
            error: err.clone(),
            retry_in: Some(delay),
        };
        (err, event)
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
    /// `lock_timeout`, else [`Error::RefreshTimeout`]), a token another process saved meanwhile is
    /// adopted without calling the refresher; otherwise the refresher runs and its token is saved
    /// before the section ends. Either way this returns before any waiter is woken. Only this thread
    /// of the process contends for the store's lock; the others wait on the condition variable.
    fn fetch(
        &self,
        current: Option<&Token>,
        refresher: &dyn Refresh,
        lock_timeout: Duration,
    ) -> Result<Fetched, Error> {
        let unusable = std::cell::Cell::new(None);
        let refresh = |base: Option<&Token>| -> Result<Token, Error> {
            let token = match refresher.refresh(base) {
                Ok(token) if token.authorization().is_none() => {
                    let err = Error::Refresh(RefreshError::new(
                        RefreshErrorKind::InvalidResponse,
                        Class::Transient,
                        "the new access token cannot be sent in an HTTP header",
                    ));
                    // The access token is useless, but a rotated refresh token is now the only
                    // one the server accepts: keep it, on the token it replaces (and save it).
                    match (base, token.get_refresh_token()) {
                        (Some(base), Some(rotated))
                            if base.get_refresh_token() != Some(rotated) =>
                        {
                            unusable.set(Some(err));
                            base.clone().with_refresh(Some(rotated.clone()))
                        }
                        _ => return Err(err),
                    }
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
        let fetched = match &self.shared.store {
            None => refresh(current).map(Fetched::refreshed),
            Some(store) => store::refresh_locked(
                &**store,
                current,
                lock_timeout,
                |stored| {
                    // Adopt a stored token that is not yet in its advisory window: adopting one that
                    // is would only start another refresh at once.
                    let now = self.shared.clock.now();
                    self.windows(stored, now)
                        .ahead_at
                        .is_none_or(|at| !at.passed(now))
                },
                refresh,
            ),
        };
        fetched.map(|f| Fetched {
            unusable: unusable.take(),
            ..f
        })
    }

    /// The effective expiry of `token` (its own, or `now` + the assumed lifetime) and the starts of
    /// its mandatory and advisory refresh windows, on both clocks.
    fn windows(&self, token: &Token, now: Now) -> Windows {
        let cfg = &self.shared.config;
        let (expires, lifetime) = match (token.expires_at(), cfg.assumed_lifetime) {
            // The time the token has left, measured on the clock it was made with, is carried over
            // to this gate's clocks, both of them: a token is judged on the clocks that judge it.
            (Some(at), _) => {
                let made_with = Instant::now();
                let (mono, wall) = match at.checked_duration_since(made_with) {
                    Some(left) => (now.mono + left, now.wall.checked_add(left)),
                    None => {
                        let ago = made_with - at;
                        (
                            now.mono.checked_sub(ago).unwrap_or(now.mono),
                            now.wall.checked_sub(ago),
                        )
                    }
                };
                (Some(Deadline { mono, wall }), token.lifetime())
            }
            (None, Some(assumed)) => (
                Some(Deadline {
                    mono: now.mono + assumed,
                    wall: now.wall.checked_add(assumed),
                }),
                Some(assumed),
            ),
            (None, None) => (None, None),
        };
        let (window, ahead) =
            policy::windows(cfg.refresh_before_expiry, cfg.refresh_ahead, lifetime);
        Windows {
            expires,
            refresh_at: expires.map(|at| at.earlier_by(window)),
            ahead_at: expires.map(|at| at.earlier_by(ahead)),
        }
    }

    fn install(&self, st: &mut State, token: Token, reactive: bool, now: Now) -> Lease {
        let Windows {
            expires,
            refresh_at,
            ahead_at,
        } = self.windows(&token, now);
        let token = Arc::new(token);
        st.generation += 1;
        st.current = Some(Current {
            token: Arc::clone(&token),
            expires,
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

    /// Tells the gate the server rejected the leased token. See [`Rejection`] for what to do next.
    ///
    /// The current token is marked dead either way, so the next [`lease`](Gate::lease) gets a new
    /// one. When the server rejects a token that a rejection had just produced and never accepted
    /// ([`Rejection::Final`]), the request is not replayed (it could loop against a server that
    /// rejects every token), and the next refresh waits a backoff that grows while this goes on;
    /// a token revoked right after it was issued is thus replaced after a short wait, never used
    /// until it expires.
    pub fn reject(&self, lease: &Lease) -> Rejection {
        let now = self.shared.clock.now();
        let mut st = self.shared.state.lock();
        let generation = st.generation;
        let Some(current) = st.current.as_mut() else {
            return Rejection::Invalidated;
        };
        if generation != lease.generation {
            return Rejection::Replaced;
        }
        current.dead = true;
        if !(current.reactive && self.shared.accepted.load(Relaxed) < lease.generation) {
            st.rejected_unconfirmed = 0;
            return Rejection::Invalidated;
        }
        st.rejected_unconfirmed = st.rejected_unconfirmed.saturating_add(1);
        let cfg = &self.shared.config;
        let delay = policy::backoff(
            cfg.backoff_initial,
            cfg.backoff_max,
            st.rejected_unconfirmed,
            None,
            policy::random(),
        )
        .min(cfg.refresh_timeout.max(policy::MIN_BACKOFF));
        let next = now.mono + delay;
        if st.backoff_until.is_none_or(|until| until < next) {
            st.backoff_until = Some(next);
            st.last_class = Class::Transient;
            st.last_error = Some(Error::Refresh(
                RefreshError::new(
                    RefreshErrorKind::Rejected,
                    Class::Transient,
                    "the server rejected the token a refresh had just produced",
                )
                .with_next_attempt(next),
            ));
        }
        Rejection::Final
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
        let now = self.shared.clock.now();
        let mut st = self.shared.state.lock();
        let lease = self.install(&mut st, token, false, now);
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

    /// Waits, at most `timeout`, until no refresh is in flight, so that what it brings (a rotated
    /// refresh token the server has already issued) is installed and saved before the program
    /// goes on, or ends. Returns whether no refresh is in flight.
    ///
    /// [`Client`](crate::Client) does this when its last clone is dropped, and in
    /// [`Client::close`](crate::Client::close). Call it yourself before a program that uses a
    /// gate without a client ends.
    pub fn settle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.state.lock();
        while st.refreshing {
            if self.shared.cond.wait_until(&mut st, deadline).timed_out() {
                return !st.refreshing;
            }
        }
        true
    }

    /// The budget of a request for getting a token (see [`GateBuilder::refresh_timeout`]).
    pub(crate) fn budget(&self) -> Duration {
        self.shared.config.refresh_timeout
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

    /// How long the background refresher may sleep before it looks at the token again: until the
    /// advisory window opens or the backoff ends, whichever is later, but never longer than the
    /// clock's longest nap (the monotonic clock its sleep runs on stops while the machine is
    /// suspended; waking now and then notices, on the wall clock, a token that expired meanwhile).
    pub(crate) fn background_nap(&self) -> Duration {
        let clock = &self.shared.clock;
        let now = clock.now();
        let st = self.shared.state.lock();
        if self.shared.refresher.is_none() || st.refreshing || st.login_required.is_some() {
            return clock.max_nap();
        }
        let Some(c) = st.current.as_ref() else {
            return clock.max_nap();
        };
        let at = match (c.dead, c.ahead_at) {
            (true, _) => now.mono,
            (false, Some(ahead)) => ahead.mono_at(now),
            (false, None) => return clock.max_nap(),
        };
        let at = st.backoff_until.map_or(at, |until| at.max(until));
        at.saturating_duration_since(now.mono).min(clock.max_nap())
    }

    /// Refreshes on the calling thread if the token is in its advisory window (or was rejected), no
    /// refresh is in flight and the gate is not backing off. Used by the background refresher.
    pub(crate) fn refresh_ahead(&self) {
        let now = self.shared.clock.now();
        let mut st = self.shared.state.lock();
        if !st.ahead_due(now) || self.shared.refresher.is_none() {
            return;
        }
        let ticket = self.claim(&mut st, now);
        drop(st);
        self.run_refresh(ticket);
    }

    pub(crate) fn count_replay(&self) {
        self.shared.stats.replays.fetch_add(1, Relaxed);
    }
}

impl State {
    /// A lease when the token is outside the refresh window and not rejected.
    fn fresh_lease(&self, now: Now) -> Option<Lease> {
        let c = self.current.as_ref()?;
        (!c.dead && c.refresh_at.is_none_or(|at| !at.passed(now))).then(|| self.lease_of(c))
    }

    /// A lease when the token may still be sent (inside the window but not expired, not rejected).
    fn valid_lease(&self, now: Now) -> Option<Lease> {
        let c = self.current.as_ref()?;
        (!c.dead && c.expires.is_none_or(|at| !at.passed(now))).then(|| self.lease_of(c))
    }

    /// Whether a refresh may start now without anybody waiting for it: the token has entered its
    /// advisory window (or was rejected), and no refresh is in flight, no backoff runs and the gate
    /// is not in the login-required state.
    fn ahead_due(&self, now: Now) -> bool {
        !self.refreshing
            && self.login_required.is_none()
            && self.backoff_until.is_none_or(|until| now.mono >= until)
            && self
                .current
                .as_ref()
                .is_some_and(|c| c.dead || c.ahead_at.is_some_and(|at| at.passed(now)))
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
            st.last_error = Some(Error::RefresherPanicked);
            shared.stats.refresh_failures.fetch_add(1, Relaxed);
            shared.cond.notify_all();
        }
    }
}

/// The gate's timing policy as plain functions of their inputs: refresh windows and backoff.
mod policy {
    use std::hash::{BuildHasher, Hasher};
    use std::time::Duration;

    /// Default mandatory window: a token this close to its expiry is refreshed before it is used.
    pub(super) const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(60);
    /// Default advisory window: from here on a refresh runs in the background.
    pub(super) const REFRESH_AHEAD: Duration = Duration::from_secs(300);
    /// Default budget of a request for getting a token (see `GateBuilder::refresh_timeout`).
    pub(super) const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default first backoff after a transient failure.
    pub(super) const BACKOFF_INITIAL: Duration = Duration::from_millis(250);
    /// Default longest backoff, and the cap on a server's `Retry-After`.
    pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(5);
    /// No backoff is shorter: a zero one would retry in a tight loop.
    pub(super) const MIN_BACKOFF: Duration = Duration::from_millis(10);

    /// The mandatory and advisory windows for a token of `lifetime` (when known): the configured
    /// ones, shortened to a tenth and a fifth of the lifetime, the advisory never shorter than the
    /// mandatory one.
    pub(super) fn windows(
        before_expiry: Duration,
        ahead: Duration,
        lifetime: Option<Duration>,
    ) -> (Duration, Duration) {
        let (window, ahead) = match lifetime {
            Some(l) => (before_expiry.min(l / 10), ahead.min(l / 5)),
            None => (before_expiry, ahead),
        };
        (window, ahead.max(window))
    }

    /// How much each consecutive failure lengthens the backoff. Gentler than doubling, so a short
    /// outage is noticed soon after it ends: with the default 250 ms start, an endpoint that was
    /// down for a second is tried again at most 0.85 s after it is back (doubling: up to 2 s).
    pub(super) const BACKOFF_GROWTH: f64 = 1.5;

    /// The backoff after the `failures`-th transient failure in a row: `initial` grown by
    /// [`BACKOFF_GROWTH`] per failure up to `max`, jittered down by up to half (`random` picks
    /// where), then at least the server's `retry_after` capped at `max`, and never under
    /// [`MIN_BACKOFF`].
    pub(super) fn backoff(
        initial: Duration,
        max: Duration,
        failures: u32,
        retry_after: Option<Duration>,
        random: u64,
    ) -> Duration {
        let growth = BACKOFF_GROWTH.powi(failures.saturating_sub(1).min(64) as i32);
        let exp = Duration::try_from_secs_f64(initial.as_secs_f64() * growth)
            .unwrap_or(max)
            .min(max);
        let jittered = exp.mul_f64(0.5 + (random % 1000) as f64 / 2000.0);
        let delay = match retry_after {
            Some(after) => jittered.max(after.min(max)),
            None => jittered,
        };
        delay.max(MIN_BACKOFF)
    }

    /// A random number for the jitter (std's hasher keys are random per process and per call).
    pub(super) fn random() -> u64 {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const MS: fn(u64) -> Duration = Duration::from_millis;

        #[test]
        fn windows_shrink_with_short_lifetimes() {
            let (w, a) = windows(REFRESH_BEFORE_EXPIRY, REFRESH_AHEAD, None);
            assert_eq!((w, a), (REFRESH_BEFORE_EXPIRY, REFRESH_AHEAD));
            let hour = Some(Duration::from_secs(3600));
            assert_eq!(
                windows(REFRESH_BEFORE_EXPIRY, REFRESH_AHEAD, hour),
                (REFRESH_BEFORE_EXPIRY, REFRESH_AHEAD)
            );
            let second = Some(Duration::from_secs(1));
            assert_eq!(
                windows(REFRESH_BEFORE_EXPIRY, REFRESH_AHEAD, second),
                (MS(100), MS(200))
            );
            // The advisory window turned off never ends before the mandatory one starts.
            assert_eq!(
                windows(MS(60_000), Duration::ZERO, None),
                (MS(60_000), MS(60_000))
            );
        }

        #[test]
        fn backoff_grows_jitters_down_and_caps() {
            let b = |n, ra, r| backoff(MS(250), MS(5000), n, ra, r);
            assert_eq!(b(1, None, 999), MS(250) - Duration::from_micros(125));
            assert_eq!(b(1, None, 0), MS(125));
            assert_eq!(b(2, None, 0), Duration::from_micros(187_500));
            assert_eq!(b(3, None, 0), Duration::from_micros(281_250));
            assert_eq!(b(10, None, 0), MS(2500), "capped at 5 s before the jitter");
            assert_eq!(b(u32::MAX, None, 0), MS(2500));
            for r in [0, 1, 500, 999, u64::MAX] {
                let d = b(30, None, r);
                assert!(d >= MS(2500) && d <= MS(5000), "{d:?}");
            }
        }

        #[test]
        fn a_one_second_outage_is_retried_within_a_second_of_its_end() {
            // Every jitter from the lowest to the highest: the first attempt after a one-second
            // outage (attempts from t = 0) comes at most 0.85 s after it ended.
            for r in (0..1000).step_by(7) {
                for low in [0, r] {
                    let (mut t, mut n) = (Duration::ZERO, 1);
                    while t < Duration::from_secs(1) {
                        // Alternate the jitter to mix early and late attempts.
                        let pick = if n % 2 == 0 { low } else { r };
                        t += backoff(BACKOFF_INITIAL, BACKOFF_MAX, n, None, pick);
                        n += 1;
                    }
                    assert!(t - Duration::from_secs(1) < MS(850), "{t:?} (r {r})");
                }
            }
        }

        #[test]
        fn retry_after_is_honoured_up_to_the_cap() {
            let b = |ra| backoff(MS(250), MS(5000), 1, Some(ra), 0);
            assert_eq!(b(Duration::from_secs(1)), Duration::from_secs(1));
            assert_eq!(
                b(Duration::ZERO),
                MS(125),
                "a shorter Retry-After does not hurry us"
            );
            assert_eq!(b(Duration::from_secs(3600)), MS(5000), "an hour is capped");
            assert_eq!(b(Duration::MAX), MS(5000));
        }

        #[test]
        fn no_backoff_is_a_tight_loop() {
            assert_eq!(
                backoff(Duration::ZERO, Duration::ZERO, 1, None, 0),
                MIN_BACKOFF
            );
            assert_eq!(
                backoff(
                    Duration::ZERO,
                    Duration::ZERO,
                    1,
                    Some(Duration::from_secs(9)),
                    0
                ),
                MIN_BACKOFF
            );
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
