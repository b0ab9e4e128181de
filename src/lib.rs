//! A blocking, thread-safe HTTP client (on [ureq] 3) that keeps its bearer token fresh: exactly one
//! refresh per expiry, every other thread waits for it and then goes on with the new token; no
//! duplicate sends, no refresh storm, no hang, no loop.
//!
//! ```no_run
//! use std::time::Duration;
//! use tokengate::{Client, OAuth2, Token};
//!
//! let client = Client::builder("https://api.example.com")
//!     .token(Token::new("ACCESS").with_expires_in(Duration::from_secs(3600)).with_refresh_token("REFRESH"))
//!     .refresher(OAuth2::refresh_token("https://auth.example.com/oauth/token").client_id("my-app"))
//!     .build()?;
//!
//! // from any thread; clones share one token state
//! let mut resp = client.get("/users/me").call()?;
//! let me: serde_json::Value = resp.body_mut().read_json()?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # Overview
//!
//! - [`Client`]: the HTTP client. Joins paths to its base URL, attaches `Authorization` only to that
//!   URL's origin (also across redirects), notices rejections (401, or your
//!   [`reject_when`](ClientBuilder::reject_when) predicate for APIs like `200 {"ret":401}`) and replays
//!   a rejected request once with a new token. Responses are ureq's `http::Response<ureq::Body>`.
//! - [`Gate`]: the shared token state and single-flight refresh. One per token; several clients may
//!   share one.
//! - [`Refresh`]: what gets a new token. [`OAuth2`] implements the refresh_token and
//!   client_credentials grants; any closure `Fn(&Token) -> Result<Token, RefreshError>` works too.
//! - [`Event`]s ([`Client::events`]) report refreshes, failures and the end of the session without
//!   ever blocking a request; [`ClientBuilder::background_refresh`] renews tokens before anyone needs
//!   them; [`TokenMiddleware`] brings the gate to a plain `ureq::Agent`.
//! - [`Token`]: the access token with its expiry (monotonic [`Instant`](std::time::Instant)) and
//!   refresh token. Secrets print as `[redacted]`.
//! - [`TokenStore`]: where the token lives between runs. [`FileStore`] keeps it in a JSON file
//!   (atomic writes, mode `0600`) shared safely by several processes: refreshes take a file lock,
//!   and a process adopts the token another one just refreshed instead of spending the rotated
//!   refresh token again. [`MemoryStore`] keeps it in memory.
//! - [`login`]: the first token, and the next after a logout: [`DeviceLogin`] (RFC 8628) and
//!   [`BrowserLogin`] (PKCE on a loopback redirect), endpoints from [`Metadata::discover`];
//!   [`Client::login`] installs the token, [`Client::logout`] revokes it and clears the store.
//!
//! A token is refreshed *before* it is used when it is within
//! [`refresh_before_expiry`](GateBuilder::refresh_before_expiry) of its expiry, and *after* the
//! server rejects it. Earlier, inside [`refresh_ahead`](GateBuilder::refresh_ahead), a refresh
//! starts in the background while requests keep using the still-valid token.
//!
//! # Thread safety
//!
//! [`Client`], [`Gate`], [`Token`] and [`Error`] are `Send + Sync`; clients and gates are cheap to
//! clone and clones share state. See [`Client`'s thread-safety section](Client#thread-safety) for what
//! blocks, for how long, and what wakes it.
//!
//! # Errors
//!
//! Every fallible call returns [`Error`], cheap to clone and free of secrets. A refresh failure is
//! one of three kinds (see [`RefreshError`] for how token endpoint answers are classified):
//!
//! - permanent (`invalid_grant`): the client enters a login-required state and calls fail fast with
//!   [`Error::LoginRequired`] until [`Client::login`] (or [`Client::set_token`]);
//! - configuration (`invalid_client`, a wrong endpoint, an untrusted certificate): the session is
//!   kept, calls fail at once with [`Error::Refresh`] while the gate retries slowly;
//! - transient (network, 5xx, 429, an odd answer): the gate retries after a short, growing,
//!   jittered backoff that honours `Retry-After`, and requests *wait* for that attempt within their
//!   budget ([`GateBuilder::refresh_timeout`]): an outage shorter than the budget costs latency, not
//!   errors.
//!
//! A still-valid old token keeps being used throughout.
//!
//! # Crate features
//!
//! - `platform-verifier` (on by default): the operating system's trust store
//!   ([`Roots::Platform`]) through ureq's rustls-platform-verifier. Without it the bundled Mozilla
//!   roots are the default.
//! - `native-tls`: the operating system's TLS stack as [`TlsBackend::NativeTls`].
//! - `keyring`: `KeyringStore`, the token in the OS credential store
//!   (macOS Keychain, Windows Credential Manager, the Secret Service or the kernel keyring on
//!   Linux), for desktop apps.
//! - `redis`: `RedisStore`, the token in Redis with a lease around each
//!   refresh, for fleets of workers on many machines.
//! - `browser`: `login::open_browser`, which opens a browser login's URL in the user's browser
//!   (the `webbrowser` crate; it honours `$BROWSER`).
//!
//! The default build has eleven direct dependencies: six, and five already in ureq's build:
//! rustls (the one ureq is built on), ring (its crypto), httparse (under ureq-proto),
//! webpki-root-certs and rustls-native-certs (which the platform verifier pulls in on Linux).
//!
//! `tokengate::ureq` and `tokengate::http` re-export the versions this crate uses, so you need no
//! version-matched dependency of your own.
//!
//! # Networks
//!
//! [`Network`] sets the trusted certificates, the client certificate, the proxies (by default read
//! from the environment like curl) and any other ureq agent option, for the client and its OAuth2
//! refresher at once. [`RequestBuilder::timeout`] bounds a request, the wait for a token included;
//! [`RequestBuilder::send_reader`] and [`RequestBuilder::send_seekable`] stream bodies.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod background;
mod body;
mod challenge;
mod client;
mod error;
mod events;
mod form;
mod gate;
mod jwt;
pub mod login;
mod middleware;
mod net;
mod origin;
mod redirect;
mod refresh;
mod rejection;
mod store;
mod sync;
mod tls;
mod token;

pub use challenge::Challenge;
pub use client::{Client, ClientBuilder, RequestBuilder};
pub use error::{
    Error, LoginError, LoginErrorKind, OAuthError, ProxyError, RefreshError, RefreshErrorKind,
    StoreError, StoreErrorKind,
};
pub use events::{EVENT_BUFFER, Event, Events};
pub use gate::{Gate, GateBuilder, Lease, Rejection, Stats};
pub use login::{BrowserLogin, Cancel, DeviceLogin, DevicePrompt, Metadata};
pub use middleware::TokenMiddleware;
pub use net::Network;
pub use refresh::{ClientAuth, OAuth2, Refresh, TokenResponse};
pub use store::{FileStore, MemoryStore, StoreLock, TokenStore};
#[cfg(feature = "keyring")]
pub use store::{KeyringBackend, KeyringStore, KeyringStoreBuilder};
#[cfg(feature = "redis")]
pub use store::{RedisStore, RedisStoreBuilder};
pub use tls::{Roots, TlsBackend};
pub use token::{AccessToken, ClientSecret, RefreshToken, Token};

/// The ureq version this crate is built on (its `Body`, `Error` and `Agent` appear in this API).
pub use ureq;
/// The `http` crate version of ureq's requests and responses.
pub use ureq::http;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Parsers exposed for the fuzz targets in `fuzz/`; not part of the API (no semver promise).
#[doc(hidden)]
pub mod __fuzz {
    /// `Retry-After` (RFC 9110 §10.2.3) as the token endpoint's answer is read: delay-seconds or
    /// an IMF-fixdate, as a delay from `now`.
    pub fn retry_after(value: &str, now: std::time::SystemTime) -> Option<std::time::Duration> {
        crate::refresh::retry_after(value, now)
    }

    /// The lifetime a JWT access token's `exp` claim gives, counted from `now`, as a token
    /// response without `expires_in` is read (`None`: not a JWT, no usable or an absurd `exp`).
    pub fn jwt_lifetime(token: &str, now: std::time::SystemTime) -> Option<std::time::Duration> {
        crate::jwt::lifetime(token, now)
    }
}

/// Compile-time proof that the shared types can cross threads.
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Client>();
    is::<Gate>();
    is::<Token>();
    is::<Error>();
    is::<RefreshError>();
    is::<Lease>();
    is::<OAuth2>();
    is::<FileStore>();
    is::<MemoryStore>();
    is::<StoreError>();
    #[cfg(feature = "keyring")]
    is::<KeyringStore>();
    #[cfg(feature = "redis")]
    is::<RedisStore>();
    is::<Network>();
    is::<ProxyError>();
    is::<LoginError>();
    is::<DeviceLogin>();
    is::<BrowserLogin>();
    is::<Metadata>();
    is::<Cancel>();
}
