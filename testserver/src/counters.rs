//! Request counters: a lock-free live set and the plain snapshot tests see.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of the server's counters, taken by
/// [`TestServer::counters`](crate::TestServer::counters).
///
/// `/custom/refresh` requests count like `refresh_token` grants
/// (`token_requests`, `refresh_attempts`, `refreshes`, `invalid_grant`,
/// `reuse_detected`, `max_concurrent_refreshes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
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
    /// Requests to the device authorization endpoint (`POST /oauth/device_authorization`), whatever the outcome.
    pub device_authorizations: u64,
    /// `device_code` grant requests to the token endpoint (polls), whatever the answer.
    pub device_polls: u64,
    /// Polls of a device code that came sooner after the previous one than its interval (grown by each `slow_down`) allows.
    pub device_polls_too_fast: u64,
    /// Device codes exchanged for a token.
    pub device_grants: u64,
    /// Requests to the authorization endpoint (`GET /oauth/authorize`).
    pub authorizations: u64,
    /// Successful `authorization_code` grants (PKCE verified).
    pub code_exchanges: u64,
    /// `authorization_code` grants refused because the `code_verifier` did not match the challenge (or was missing).
    pub pkce_failures: u64,
    /// Requests to the revocation endpoint (`POST /oauth/revoke`), whatever the outcome.
    pub revocation_requests: u64,
    /// Tokens the revocation endpoint revoked (a known refresh or access token; an unknown one is answered `200` but not counted).
    pub revocations: u64,
    /// Requests for either metadata document (`/.well-known/...`), served or not.
    pub metadata_requests: u64,
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
    pub device_authorizations: AtomicU64,
    pub device_polls: AtomicU64,
    pub device_polls_too_fast: AtomicU64,
    pub device_grants: AtomicU64,
    pub authorizations: AtomicU64,
    pub code_exchanges: AtomicU64,
    pub pkce_failures: AtomicU64,
    pub revocation_requests: AtomicU64,
    pub revocations: AtomicU64,
    pub metadata_requests: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

impl AtomicCounters {
    fn all(&self) -> [&AtomicU64; 26] {
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
            &self.device_authorizations,
            &self.device_polls,
            &self.device_polls_too_fast,
            &self.device_grants,
            &self.authorizations,
            &self.code_exchanges,
            &self.pkce_failures,
            &self.revocation_requests,
            &self.revocations,
            &self.metadata_requests,
        ]
    }

    /// Copies every counter (each read is atomic; the set is not).
    pub fn snapshot(&self) -> Counters {
        let [
            token_requests,
            refreshes,
            refresh_attempts,
            client_credentials,
            invalid_grant,
            reuse_detected,
            max_concurrent_refreshes,
            api_calls,
            api_ok,
            api_rejected,
            api_without_auth,
            redirects,
            connections,
            connections_reset,
            injected_failures,
            failure_answers,
            device_authorizations,
            device_polls,
            device_polls_too_fast,
            device_grants,
            authorizations,
            code_exchanges,
            pkce_failures,
            revocation_requests,
            revocations,
            metadata_requests,
        ] = self.all().map(|x| x.load(Relaxed));
        Counters {
            token_requests,
            refreshes,
            refresh_attempts,
            client_credentials,
            invalid_grant,
            reuse_detected,
            max_concurrent_refreshes,
            api_calls,
            api_ok,
            api_rejected,
            api_without_auth,
            redirects,
            connections,
            connections_reset,
            injected_failures,
            failure_answers,
            device_authorizations,
            device_polls,
            device_polls_too_fast,
            device_grants,
            authorizations,
            code_exchanges,
            pkce_failures,
            revocation_requests,
            revocations,
            metadata_requests,
        }
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        for c in self.all() {
            c.store(0, Relaxed);
        }
    }
}
