//! Everything the request handlers share: immutable configuration, runtime
//! knobs, counters, token state and the shutdown signal.

use crate::counters::AtomicCounters;
use crate::failure::Failure;
use crate::login::LoginState;
use crate::token_endpoint::TokenRequest;
use crate::token_store::TokenStore;
use parking_lot::{Condvar, Mutex};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Settings fixed when the server starts.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Refresh returns a new refresh token and the old one becomes single-use.
    pub rotate_refresh_tokens: bool,
    /// Unauthorized API calls get `200 {"ret":401,...}` instead of a 401.
    pub body_mode: bool,
    /// Registered confidential clients: (client_id, client_secret).
    pub clients: Vec<(String, String)>,
    /// Registered public clients (client_id only, no secret).
    pub public_clients: Vec<String>,
}

/// Token-endpoint settings that tests change while the server runs.
#[derive(Debug, Clone)]
pub(crate) struct Knobs {
    pub failure: Failure,
    pub token_latency: Duration,
    /// Up to this much extra latency, uniformly random per answer.
    pub token_latency_jitter: Duration,
    pub token_lifetime: Duration,
    /// Probability (0.0..=1.0) that a token-endpoint answer is a `503`.
    pub transient_failure_rate: f64,
    /// `Retry-After` seconds sent with the injected `503`s, if any.
    pub transient_failure_retry_after: Option<u64>,
    /// When the failure mode heals by itself (see `TestServer::set_failure_for`).
    pub failure_until: Option<Instant>,
}

/// State shared by the accept loop, connection threads and the
/// [`TestServer`](crate::TestServer) handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub knobs: Mutex<Knobs>,
    pub reject_all: AtomicBool,
    /// The API resets every connection instead of answering.
    pub api_reset: AtomicBool,
    pub omit_expires_in: AtomicBool,
    pub date_skew_secs: AtomicI64,
    pub counters: AtomicCounters,
    pub tokens: TokenStore,
    pub last_token_request: Mutex<Option<TokenRequest>>,
    /// Device codes, authorization codes and the login knobs.
    pub login: LoginState,
    /// The URL the server announces as its own (issuer, metadata endpoints, `iss`): set to
    /// `http://127.0.0.1:PORT` once it listens, or to a front's URL.
    pub base_url: Mutex<String>,
    /// Token-endpoint requests currently being handled.
    pub token_in_flight: AtomicU64,
    pub shutdown: ShutdownSignal,
    /// State of the random numbers behind latency jitter.
    rng: AtomicU64,
    /// Injected failures owed, in millionths: each answer adds the failure rate, and an answer
    /// is a failure whenever a whole one is owed (so the rate holds exactly, spread evenly).
    owed_failures: Mutex<u64>,
}

impl Shared {
    pub fn new(config: Config, knobs: Knobs) -> Self {
        Shared {
            config,
            knobs: Mutex::new(knobs),
            reject_all: AtomicBool::new(false),
            api_reset: AtomicBool::new(false),
            omit_expires_in: AtomicBool::new(false),
            date_skew_secs: AtomicI64::new(0),
            counters: AtomicCounters::default(),
            tokens: TokenStore::new(),
            last_token_request: Mutex::new(None),
            login: LoginState::default(),
            base_url: Mutex::new(String::new()),
            token_in_flight: AtomicU64::new(0),
            shutdown: ShutdownSignal::default(),
            rng: AtomicU64::new(RandomState::new().build_hasher().finish()),
            owed_failures: Mutex::new(0),
        }
    }

    /// The URL the server announces as its own and its issuer.
    pub fn base_url(&self) -> String {
        self.base_url.lock().clone()
    }

    /// Whether this answer is an injected failure at `rate`: exactly one answer in `1 / rate`,
    /// spread evenly, starting at a random phase.
    pub fn inject_failure(&self, rate: f64) -> bool {
        const WHOLE: u64 = 1_000_000;
        if rate <= 0.0 {
            return false;
        }
        let mut owed = self.owed_failures.lock();
        if *owed == 0 {
            // First use: a random phase, so servers started together do not fail in step.
            *owed = 1 + (self.random() * WHOLE as f64) as u64;
        }
        *owed += (rate * WHOLE as f64) as u64;
        if *owed > WHOLE {
            *owed -= WHOLE;
            true
        } else {
            false
        }
    }

    /// A uniformly random number in `0.0..1.0` (splitmix64; lock-free, good
    /// enough for test jitter, not for anything secret).
    pub fn random(&self) -> f64 {
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A flag plus a condition variable, so sleeping handlers wake up at once
/// when the server shuts down.
#[derive(Debug, Default)]
pub(crate) struct ShutdownSignal {
    flag: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl ShutdownSignal {
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    pub fn trigger(&self) {
        let _guard = self.lock.lock();
        self.flag.store(true, Ordering::Release);
        self.cv.notify_all();
    }

    /// Sleeps for `d`, or less if the server shuts down meanwhile.
    pub fn sleep(&self, d: Duration) {
        if d.is_zero() {
            return;
        }
        let Some(deadline) = Instant::now().checked_add(d) else {
            // "Forever": wait for shutdown.
            let mut guard = self.lock.lock();
            while !self.is_set() {
                self.cv.wait(&mut guard);
            }
            return;
        };
        let mut guard = self.lock.lock();
        while !self.is_set() {
            if self.cv.wait_until(&mut guard, deadline).timed_out() {
                return;
            }
        }
    }
}
