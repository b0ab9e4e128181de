//! Request counters: a lock-free live set and the plain snapshot tests see, both made from one
//! list of names.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Declares [`Counters`] (the snapshot) and `AtomicCounters` (the live set), with `snapshot` and
/// `reset`, from one list of documented names.
macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        /// A snapshot of the server's counters, taken by
        /// [`TestServer::counters`](crate::TestServer::counters).
        ///
        /// `/custom/refresh` requests count like `refresh_token` grants
        /// (`token_requests`, `refresh_attempts`, `refreshes`, `invalid_grant`,
        /// `reuse_detected`, `max_concurrent_refreshes`).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
        pub struct Counters {
            $( $(#[$doc])* pub $name: u64, )*
        }

        /// The live counters, bumped with relaxed atomics from any thread.
        #[derive(Debug, Default)]
        pub(crate) struct AtomicCounters {
            $( pub $name: AtomicU64, )*
        }

        impl AtomicCounters {
            /// Copies every counter (each read is atomic; the set is not).
            pub fn snapshot(&self) -> Counters {
                Counters {
                    $( $name: self.$name.load(Relaxed), )*
                }
            }

            /// Zeroes every counter.
            pub fn reset(&self) {
                $( self.$name.store(0, Relaxed); )*
            }
        }
    };
}

counters! {
    /// Every request to `/oauth/token` or `/custom/refresh` (any grant, any
    /// outcome, any method).
    token_requests,
    /// Successful `refresh_token` grants.
    refreshes,
    /// `refresh_token` grant requests, whatever the outcome.
    refresh_attempts,
    /// Successful `client_credentials` grants.
    client_credentials,
    /// Refresh attempts answered `invalid_grant` (unknown, revoked, reused or
    /// rotated-away token, or [`Failure::InvalidGrant`](crate::Failure::InvalidGrant)).
    invalid_grant,
    /// A rotated-away (already used) refresh token was presented, so its whole
    /// family was revoked (RFC 9700 §4.14.2).
    reuse_detected,
    /// The most token-endpoint requests ever in flight at once.
    max_concurrent_refreshes,
    /// Every request to `/api` or `/api/*`.
    api_calls,
    /// `/api` requests answered as authorized (a 2xx; `/api/echo-auth`
    /// always counts here). The `403` of `/api/insufficient-scope` and a
    /// `400` for a bad `/api/big?bytes=` count in neither `api_ok` nor
    /// `api_rejected`.
    api_ok,
    /// `/api` requests answered as unauthorized: `401`, or `200 {"ret":401}`
    /// in body mode.
    api_rejected,
    /// `/api` requests that carried no `Authorization` header at all.
    api_without_auth,
    /// Requests to `/redirect`.
    redirects,
    /// TCP connections accepted (each keep-alive connection counts once,
    /// however many requests it carries).
    connections,
    /// Connections reset on purpose ([`Failure::ResetMidResponse`](crate::Failure::ResetMidResponse),
    /// [`TestServer::set_api_reset`](crate::TestServer::set_api_reset)).
    connections_reset,
    /// Token-endpoint answers turned into a `503` by
    /// [`TestServer::set_transient_failure_rate`](crate::TestServer::set_transient_failure_rate).
    injected_failures,
    /// Token-endpoint answers given by the failure mode
    /// ([`TestServer::set_failure`](crate::TestServer::set_failure)) instead of a token.
    failure_answers,
    /// Requests to the device authorization endpoint (`POST /oauth/device_authorization`), whatever the outcome.
    device_authorizations,
    /// `device_code` grant requests to the token endpoint (polls), whatever the answer.
    device_polls,
    /// Polls of a device code that came sooner after the previous one than its interval (grown by each `slow_down`) allows.
    device_polls_too_fast,
    /// Device codes exchanged for a token.
    device_grants,
    /// Requests to the authorization endpoint (`GET /oauth/authorize`).
    authorizations,
    /// Successful `authorization_code` grants (PKCE verified).
    code_exchanges,
    /// `authorization_code` grants refused because the `code_verifier` did not match the challenge (or was missing).
    pkce_failures,
    /// Requests to the revocation endpoint (`POST /oauth/revoke`), whatever the outcome.
    revocation_requests,
    /// Tokens the revocation endpoint revoked (a known refresh or access token; an unknown one is answered `200` but not counted).
    revocations,
    /// Requests for either metadata document (`/.well-known/...`), served or not.
    metadata_requests,
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}
