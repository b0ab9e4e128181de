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
//! and save before the section ends. See `stored::refresh_locked`.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ureq::http::HeaderValue;

use crate::error::{Class, Error, RefreshError, RefreshErrorKind};
use crate::events::{Event, Subscribers};
use crate::refresh::Refresh;
use crate::store::TokenStore;
use crate::sync::{Clock, Condvar, Mutex, Now, Threads};
use crate::token::Token;

mod builder;
mod policy;
mod stored;

use stored::RefreshOutcome;

use builder::Config;
pub use builder::GateBuilder;

type LoginCallback = dyn Fn(&Error) + Send + Sync;
type RefreshCallback = dyn Fn(&Token) + Send + Sync;

/// How a token came in from outside the refresher: which event announces it.
#[derive(Clone, Copy)]
enum Installed {
    Set,
    Login,
}

/// Whether two tokens hold the same grant secret: the refresh token, or the access token when
/// neither has one (a logout revokes each grant once).
fn same_secret(a: &Token, b: &Token) -> bool {
    match (a.refresh_token(), b.refresh_token()) {
        (Some(x), Some(y)) => x == y,
        (None, None) => a.access_token() == b.access_token(),
        _ => false,
    }
}

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
///     .token(Token::new("ACCESS").with_expires_in(Duration::from_secs(3600)).with_refresh_token("REFRESH"))
///     .refresher(OAuth2::refresh_token("https://auth.example.com/oauth/token").client_id("app"))
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
    /// The refresher threads, joined when the last client goes (see [`Gate::join_threads`]).
    threads: Threads,
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
    /// The store held this token when it was installed (it was loaded, saved or adopted there):
    /// a store found empty later was cleared by a logout elsewhere.
    stored: bool,
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
                    let claim = self.claim(&mut st, now);
                    drop(st);
                    self.refresh_in_background(claim);
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
                let claim = self.claim(&mut st, now);
                drop(st);
                self.spawn_refresh(claim);
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
    fn claim(&self, st: &mut State, now: Now) -> Claim {
        st.refreshing = true;
        st.refresh_started = now.mono;
        Claim {
            gate: self.clone(),
            armed: true,
            started_generation: st.generation,
            reactive: st.current.as_ref().is_some_and(|c| c.dead),
            current: st.current.as_ref().map(|c| Arc::clone(&c.token)),
            stored: st.current.as_ref().is_some_and(|c| c.stored),
        }
    }

    /// Runs a claimed refresh on a short-lived thread (advisory window). If no thread can be spawned,
    /// the claim is dropped, which releases it; the mandatory window will refresh in line.
    fn refresh_in_background(&self, claim: Claim) {
        let gate = self.clone();
        let _ = self.shared.threads.spawn("tokengate-ahead", move || {
            gate.run_refresh(claim);
        });
    }

    /// Runs a claimed refresh that requests wait for on a refresher thread of its own; when no
    /// thread can be started, on the calling thread.
    #[cfg(not(loom))]
    fn spawn_refresh(&self, claim: Claim) {
        let slot = Arc::new(std::sync::Mutex::new(Some(claim)));
        let (gate, theirs) = (self.clone(), Arc::clone(&slot));
        let spawned = self.shared.threads.spawn("tokengate-refresh", move || {
            let claim = theirs.lock().map(|mut t| t.take()).unwrap_or(None);
            if let Some(claim) = claim {
                gate.run_refresh(claim);
            }
        });
        if spawned.is_err() {
            // The closure, and its handle on the slot, are gone: the claim is ours again.
            let claim = slot.lock().map(|mut t| t.take()).unwrap_or(None);
            if let Some(claim) = claim {
                self.run_refresh(claim);
            }
        }
    }

    /// Under loom, in line: loom runs at most five threads per model, and the refresher's own
    /// would leave too few for the requesters and the timers the models need.
    #[cfg(loom)]
    fn spawn_refresh(&self, claim: Claim) {
        self.run_refresh(claim);
    }

    /// Runs a claimed refresh with no lock held and installs the outcome: the new token, a
    /// login-required state, or a backoff; or nothing, when [`set_token`](Gate::set_token)
    /// installed a token meanwhile. Wakes every waiter and emits the event. A store's lock is
    /// waited for at most a budget.
    fn run_refresh(&self, mut claim: Claim) {
        let Some(refresher) = self.shared.refresher.as_deref() else {
            // Not reached: a refresh is only claimed when there is a refresher. Release the claim.
            claim.armed = false;
            self.shared.state.lock().refreshing = false;
            self.shared.cond.notify_all();
            return;
        };
        let started = Instant::now();
        let lock_timeout = self.shared.config.refresh_timeout;
        let current = claim.current.take();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.fetch(current.as_deref(), claim.stored, refresher, lock_timeout)
        }))
        .unwrap_or(Err(Error::RefresherPanicked));
        claim.armed = false;
        let now = self.shared.clock.now();
        let mut st = self.shared.state.lock();
        st.refreshing = false;
        if st.generation != claim.started_generation {
            // set_token installed a token while we were refreshing: it wins, our outcome is stale.
            self.shared.cond.notify_all();
            return;
        }
        let stats = &self.shared.stats;
        // A token that came back but could not be saved: used anyway, and reported.
        let mut save_failed = None;
        let mut stored = self.shared.store.is_some();
        let outcome = outcome.map(|mut fetched| {
            if let Some(e) = fetched.save_error.take() {
                stored = false;
                stats.store_errors.fetch_add(1, Relaxed);
                save_failed = Some(Event::StoreFailed {
                    error: Error::Store(e),
                });
            }
            fetched
        });
        let (result, event) = match outcome {
            Ok(RefreshOutcome {
                token,
                unusable: Some(err),
                ..
            }) => {
                // A failed attempt that still rotated the refresh token: install the token it
                // replaces with the new refresh token (still dead if it was rejected), then back
                // off like after any transient failure.
                stats.refresh_failures.fetch_add(1, Relaxed);
                self.install(&mut st, token, claim.reactive, stored, now);
                if let Some(c) = st.current.as_mut() {
                    c.dead = claim.reactive;
                }
                let (err, event) = self.fail(&mut st, err, now);
                (Err(err), event)
            }
            Ok(fetched) => {
                let counter = if fetched.adopted {
                    &stats.adopted
                } else {
                    &stats.refreshes
                };
                counter.fetch_add(1, Relaxed);
                st.last_error = None;
                st.backoff_until = None;
                st.consecutive_failures = 0;
                // An adopted token was not issued to us just now: a rejection of it is a
                // revocation to refresh past, not a sign the server rejects fresh tokens.
                let reactive = claim.reactive && !fetched.adopted;
                let lease = self.install(&mut st, fetched.token, reactive, stored, now);
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
                        reactive: claim.reactive,
                        took: started.elapsed(),
                    }
                };
                (Ok(lease), event)
            }
            Err(err) => {
                stats.refresh_failures.fetch_add(1, Relaxed);
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

    /// The delay before the next attempt after the `failures`-th failure in a row: the backoff
    /// policy with this gate's settings, [within the budget](Gate::within_budget).
    fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let cfg = &self.shared.config;
        self.within_budget(policy::backoff(
            cfg.backoff_initial,
            cfg.backoff_max,
            failures,
            retry_after,
            policy::random(),
        ))
    }

    /// `delay`, but never past a whole budget: a request that starts waiting just after a
    /// failure then always sees the next attempt, so a long outage costs each caller about one
    /// error per budget, never a flood of instant ones.
    fn within_budget(&self, delay: Duration) -> Duration {
        delay.min(self.shared.config.refresh_timeout.max(policy::MIN_BACKOFF))
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
        let delay = match class {
            Class::Transient => {
                st.consecutive_failures = st.consecutive_failures.saturating_add(1);
                let retry_after = err.refresh_error().and_then(RefreshError::retry_after);
                self.backoff(st.consecutive_failures, retry_after)
            }
            _ => self.within_budget(cfg.backoff_max.max(policy::MIN_BACKOFF)),
        };
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
    /// `stored::refresh_locked`: inside the store's exclusive section (entered within
    /// `lock_timeout`, else [`Error::RefreshTimeout`]), a token another process saved meanwhile is
    /// adopted without calling the refresher; otherwise the refresher runs and its token is saved
    /// before the section ends. Either way this returns before any waiter is woken. Only this thread
    /// of the process contends for the store's lock; the others wait on the condition variable.
    fn fetch(
        &self,
        current: Option<&Token>,
        current_stored: bool,
        refresher: &dyn Refresh,
        lock_timeout: Duration,
    ) -> Result<RefreshOutcome, Error> {
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
                    match (base, token.refresh_token()) {
                        (Some(base), Some(rotated)) if base.refresh_token() != Some(rotated) => {
                            unusable.set(Some(err));
                            base.clone().replace_refresh(Some(rotated.clone()))
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
            None => refresh(current).map(RefreshOutcome::refreshed),
            Some(store) => stored::refresh_locked(
                &**store,
                current,
                current_stored,
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
        fetched.map(|f| RefreshOutcome {
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

    fn install(
        &self,
        st: &mut State,
        token: Token,
        reactive: bool,
        stored: bool,
        now: Now,
    ) -> Lease {
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
            stored,
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
        let delay = self.backoff(st.rejected_unconfirmed, None);
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
    /// store's exclusive section (waiting at most `refresh_timeout` for it). Emits
    /// [`Event::TokenSet`]; [`login`](Gate::login) does the same for a login's token.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidToken`] when the token cannot be sent in an HTTP header;
    /// [`Error::Store`] when it could not be saved, or [`Error::RefreshTimeout`] when the store stayed
    /// locked. The gate is unchanged on error.
    pub fn set_token(&self, token: Token) -> Result<(), Error> {
        self.put(token, Installed::Set)
    }

    /// Installs the token a login brought
    /// ([`DeviceLogin`](crate::login::DeviceLogin), [`BrowserLogin`](crate::login::BrowserLogin),
    /// or your own), exactly as [`set_token`](Gate::set_token) does: saved to the store and
    /// installed inside its exclusive section (so no other process refreshes the session it
    /// replaces), the login-required state left, waiting threads woken. Emits
    /// [`Event::LoggedIn`].
    ///
    /// # Errors
    ///
    /// As [`set_token`](Gate::set_token); the gate and the store are unchanged on error.
    pub fn login(&self, token: Token) -> Result<(), Error> {
        self.put(token, Installed::Login)
    }

    /// Saves (with a store) and installs `token`, announcing it `how`.
    fn put(&self, token: Token, how: Installed) -> Result<(), Error> {
        if token.authorization().is_none() {
            return Err(Error::InvalidToken);
        }
        if let Some(store) = &self.shared.store {
            let timeout = self.shared.config.refresh_timeout;
            let _section = store
                .lock(timeout)
                .map_err(|e| stored::lock_failed(e, timeout))?;
            store.save(&token)?;
            // Installed before the section ends, so no process can refresh the replaced token.
            return self.install_token(token, how, true);
        }
        self.install_token(token, how, false)
    }

    /// [`set_token`](Gate::set_token) without saving to the store; `stored` says whether the store
    /// holds the token.
    fn install_token(&self, token: Token, how: Installed, stored: bool) -> Result<(), Error> {
        if token.authorization().is_none() {
            return Err(Error::InvalidToken);
        }
        let now = self.shared.clock.now();
        let mut st = self.shared.state.lock();
        let lease = self.install(&mut st, token, false, stored, now);
        st.login_required = None;
        st.last_error = None;
        st.backoff_until = None;
        st.consecutive_failures = 0;
        self.shared.cond.notify_all();
        drop(st);
        let (generation, expires_in) = (
            lease.generation,
            lease.token.lifetime().or_else(|| lease.token.remaining()),
        );
        self.emit(match how {
            Installed::Set => Event::TokenSet {
                generation,
                expires_in,
            },
            Installed::Login => Event::LoggedIn {
                generation,
                expires_in,
            },
        });
        Ok(())
    }

    /// Ends the session: the user logs out.
    ///
    /// 1. A refresh in flight is waited for (at most `refresh_timeout`), so the refresh token it
    ///    brings is the one revoked.
    /// 2. With a [`store`](GateBuilder::store), its exclusive section is entered (at most
    ///    `refresh_timeout`): no process refreshes while the session ends.
    /// 3. The refresher revokes the newest token ([`Refresh::revoke`]; for [`OAuth2`](crate::OAuth2)
    ///    the refresh token, at its [`revocation_url`](crate::OAuth2::revocation_url), RFC 7009):
    ///    the store's (another process may have refreshed) and this gate's, when they differ.
    /// 4. The store is cleared ([`TokenStore::clear`]); other gates and processes on it then need
    ///    a new login too: their next refresh finds it empty and fails with
    ///    [`Error::LoginRequired`] (see [`RefreshErrorKind::LoggedOut`]) instead of bringing the
    ///    session back.
    /// 5. The gate forgets its token and enters the login-required state: requests fail at once
    ///    until [`login`](Gate::login) or [`set_token`](Gate::set_token). A refresh still in
    ///    flight is discarded when it ends. [`Event::LoggedOut`] is emitted.
    ///
    /// **A failed revocation still logs out here.** The user asked to leave: the token is
    /// forgotten and the store cleared whatever the server said, and the failure is returned as
    /// [`Error::Revocation`] so the program can tell the user the server may honour the refresh
    /// token until it expires. (A failed *login*, by contrast, never touches a stored session.)
    ///
    /// # Errors
    ///
    /// [`Error::RefreshTimeout`] (or [`Error::Store`]) when the store's section could not be
    /// entered: nothing was changed. [`Error::Store`] when the store could not be cleared (the
    /// token is forgotten here, and was revoked if the server allowed it, but the store still
    /// holds it); else [`Error::Revocation`] when the revocation failed (the session is gone here).
    pub fn logout(&self) -> Result<(), Error> {
        let budget = self.shared.config.refresh_timeout;
        self.settle(budget);
        let store = self.shared.store.as_deref();
        let _section = match store {
            Some(store) => Some(
                store
                    .lock(budget)
                    .map_err(|e| stored::lock_failed(e, budget))?,
            ),
            None => None,
        };
        // The tokens to revoke: the store's (the newest, when another process refreshed) and ours.
        let mut tokens: Vec<Arc<Token>> = Vec::with_capacity(2);
        if let Some(Ok(Some(stored))) = store.map(|s| s.load()) {
            tokens.push(Arc::new(stored));
        }
        if let Some(ours) = self.token()
            && !tokens.iter().any(|t| same_secret(t, &ours))
        {
            tokens.push(ours);
        }
        let mut revocation = None;
        if let Some(refresher) = &self.shared.refresher {
            for token in &tokens {
                let revoked = catch_unwind(AssertUnwindSafe(|| refresher.revoke(token)))
                    .unwrap_or_else(|_| Err(RefreshError::transient("the refresher panicked")));
                if let Err(e) = revoked {
                    revocation.get_or_insert(e.of_revocation());
                }
            }
        }
        let cleared = store.map_or(Ok(()), TokenStore::clear);
        let mut st = self.shared.state.lock();
        st.current = None;
        st.generation += 1;
        st.login_required = Some(Error::LoginRequired(None));
        st.last_error = None;
        st.backoff_until = None;
        st.consecutive_failures = 0;
        st.rejected_unconfirmed = 0;
        let generation = st.generation;
        self.shared.cond.notify_all();
        drop(st);
        self.emit(Event::LoggedOut { generation });
        cleared.map_err(Error::Store)?;
        match revocation {
            Some(e) => Err(Error::Revocation(e)),
            None => Ok(()),
        }
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

    /// Joins the refresher threads this gate started. The last clone of a
    /// [`Client`](crate::Client) calls it once [`settle`](Gate::settle) has seen no refresh in
    /// flight, so the threads have nothing left but to return.
    pub(crate) fn join_threads(&self) {
        self.shared.threads.join();
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
    pub fn events(&self) -> crate::Events {
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
        let claim = self.claim(&mut st, now);
        drop(st);
        self.run_refresh(claim);
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

/// A claimed refresh: `refreshing` is set and this value owns it. [`Gate::run_refresh`] consumes it.
/// If the claim is dropped unconsumed (the refreshing thread unwound, or no thread could be spawned
/// to run it), its `Drop` clears `refreshing` and wakes every waiter: parking_lot does not poison, so
/// without this a panic would wedge them all.
struct Claim {
    gate: Gate,
    armed: bool,
    started_generation: u64,
    reactive: bool,
    current: Option<Arc<Token>>,
    /// Whether the store held `current` (see `Current::stored`).
    stored: bool,
}

impl Drop for Claim {
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

#[cfg(test)]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
