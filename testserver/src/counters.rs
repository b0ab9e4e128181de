//! Request counters: a lock-free live set and the plain snapshot tests see.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of the server's counters, taken by
/// [`TestServer::counters`](crate::TestServer::counters).
///
/// `/custom/refresh` requests count like `refresh_token` grants
/// (`token_requests`, `refresh_attempts`, `refreshes`, `invalid_grant`,
/// `reuse_detected`, `max_concurrent_refreshes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every request to `/oauth/token` or `/custom/refresh` (any grant, any
    /// outcome, any method).
    pub token_requests: u64,
    /// Successful `refresh_token` grants.
    pub refreshes: u64,
    /// `refresh_token` grant requests, whatever the outcome.
    pub refresh_attempts: u64,
    /// Successful `client_credentials` grants.
    pub client_credentials: u64,
    /// Refresh attempts answered `invalid_grant` (unknown, revoked, reused or
    /// rotated-away token, or [`Failure::InvalidGrant`](crate::Failure::InvalidGrant)).
    pub invalid_grant: u64,
    /// A rotated-away (already used) refresh token was presented, so its whole
    /// family was revoked (RFC 9700 §4.14.2).
    pub reuse_detected: u64,
    /// The most token-endpoint requests ever in flight at once.
    pub max_concurrent_refreshes: u64,
    /// Every request to `/api` or `/api/*`.
    pub api_calls: u64,
    /// `/api` requests answered as authorized (a 2xx; `/api/echo-auth`
    /// always counts here). The `403` of `/api/insufficient-scope` and a
    /// `400` for a bad `/api/big?bytes=` count in neither `api_ok` nor
    /// `api_rejected`.
    pub api_ok: u64,
    /// `/api` requests answered as unauthorized: `401`, or `200 {"ret":401}`
    /// in body mode.
    pub api_rejected: u64,
    /// `/api` requests that carried no `Authorization` header at all.
    pub api_without_auth: u64,
    /// Requests to `/redirect`.
    pub redirects: u64,
    /// TCP connections accepted (each keep-alive connection counts once,
    /// however many requests it carries).
    pub connections: u64,
    /// Connections reset on purpose ([`Failure::ResetMidResponse`](crate::Failure::ResetMidResponse),
    /// [`TestServer::set_api_reset`](crate::TestServer::set_api_reset)).
    pub connections_reset: u64,
    /// Token-endpoint answers turned into a `503` by
    /// [`TestServer::set_transient_failure_rate`](crate::TestServer::set_transient_failure_rate).
    pub injected_failures: u64,
    /// Token-endpoint answers given by the failure mode
    /// ([`TestServer::set_failure`](crate::TestServer::set_failure)) instead of a token.
    pub failure_answers: u64,
}

/// The live counters, bumped with relaxed atomics from any thread.
#[derive(Debug, Default)]
pub(crate) struct AtomicCounters {
    pub token_requests: AtomicU64,
    pub refreshes: AtomicU64,
    pub refresh_attempts: AtomicU64,
    pub client_credentials: AtomicU64,
    pub invalid_grant: AtomicU64,
    pub reuse_detected: AtomicU64,
    pub max_concurrent_refreshes: AtomicU64,
    pub api_calls: AtomicU64,
    pub api_ok: AtomicU64,
    pub api_rejected: AtomicU64,
    pub api_without_auth: AtomicU64,
    pub redirects: AtomicU64,
    pub connections: AtomicU64,
    pub connections_reset: AtomicU64,
    pub injected_failures: AtomicU64,
    pub failure_answers: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

impl AtomicCounters {
    fn all(&self) -> [&AtomicU64; 16] {
        [
            &self.token_requests,
            &self.refreshes,
            &self.refresh_attempts,
            &self.client_credentials,
            &self.invalid_grant,
            &self.reuse_detected,
            &self.max_concurrent_refreshes,
            &self.api_calls,
            &self.api_ok,
            &self.api_rejected,
            &self.api_without_auth,
            &self.redirects,
            &self.connections,
            &self.connections_reset,
            &self.injected_failures,
            &self.failure_answers,
        ]
    }

    /// Copies every counter (each read is atomic; the set is not).
    pub fn snapshot(&self) -> Counters {
        let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = self.all().map(|x| x.load(Relaxed));
        Counters {
            token_requests: a,
            refreshes: b,
            refresh_attempts: c,
            client_credentials: d,
            invalid_grant: e,
            reuse_detected: f,
            max_concurrent_refreshes: g,
            api_calls: h,
            api_ok: i,
            api_rejected: j,
            api_without_auth: k,
            redirects: l,
            connections: m,
            connections_reset: n,
            injected_failures: o,
            failure_answers: p,
        }
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        for c in self.all() {
            c.store(0, Relaxed);
        }
    }
}
