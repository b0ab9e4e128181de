//! A real HTTP/1.1 server on `127.0.0.1` for tokengate's integration tests,
//! examples and benchmarks: an OAuth2 token endpoint, a bearer-protected API,
//! knobs for failure modes, and counters to assert on.
//!
//! ```no_run
//! use tokengate_testserver::{Failure, TestServer};
//!
//! let server = TestServer::start();
//! let login = server.issue_token();
//! // ... point a client at server.url() / server.token_url() ...
//! server.set_failure(Failure::Unavailable { retry_after_secs: 1 });
//! assert_eq!(server.counters().refreshes, 0);
//! ```
//!
//! # Endpoints
//!
//! | Path | What |
//! |------|------|
//! | `POST /oauth/token` | RFC 6749 token endpoint: `password`, `refresh_token`, `client_credentials`, `authorization_code` (PKCE `S256` verified), `urn:ietf:params:oauth:grant-type:device_code` |
//! | `POST /oauth/device_authorization` | RFC 8628 device authorization: approve with [`TestServer::approve_device`] (or `approve CODE` on the binary's stdin) |
//! | `GET /oauth/authorize` | approves at once and redirects (`302`) to the loopback `redirect_uri` with `code`, `state` and `iss` (RFC 9207); faults with [`TestServer::set_redirect_fault`] |
//! | `POST /oauth/revoke` | RFC 7009 revocation: a refresh token revokes its whole grant |
//! | `GET /.well-known/oauth-authorization-server`, `GET /.well-known/openid-configuration` | RFC 8414 / OpenID Connect metadata, issuer [`TestServer::url`] |
//! | `POST /custom/refresh` | non-standard JSON refresh: `{"refresh":"rt"}` -> `{"ret":0,"data":{"token","expire","refresh"}}` |
//! | `ANY /api`, `ANY /api/*` | bearer-protected echo: `{"ok":true,"method","path","body_len"}` |
//! | `/api/insufficient-scope` | valid token -> `403` + `WWW-Authenticate: Bearer error="insufficient_scope", scope="admin"` |
//! | `/api/insufficient-scope-401` | valid token -> the same challenge with a `401` (a misbehaving server) |
//! | `/api/echo-auth` | always `200 {"authorization":"<raw header or empty>"}` |
//! | `/api/big?bytes=N` | valid token -> `N` bytes of `x` (`text/plain`) |
//! | `ANY /redirect?to=URL&status=302` | redirect, no auth |
//!
//! Clients: the confidential client `demo-client` / `demo-secret` and the
//! public client `demo-public` always exist; add more with
//! [`ServerBuilder::client`] and [`ServerBuilder::public_client`].
//!
//! # Module map
//!
//! No server framework: the connection loop is ours, so that shutdown can
//! close keep-alive connections, each request is answered on the thread
//! that read it, and faults (resets, hangs) can be injected anywhere. The
//! parsing under it is `httparse`'s.
//!
//! - `http`: request framing on `httparse`, response writing.
//! - `server`: accept loop, connection threads, shutdown.
//! - `router`, `token_endpoint`, `api`: the handlers.
//! - `login`: metadata, device authorization, the authorization endpoint, PKCE, revocation.
//! - `token_store`: tokens, rotation, reuse detection, revocation.
//! - `state`, `counters`, `failure`: shared state and fault injection.
//! - `form`: strict form decoding (on `form_urlencoded`).
//! - [`support`]: helpers for the workspace's tests (threads, polling, patience, temp dirs).
//! - [`services`]: `redis-server` and a Secret Service (`gnome-keyring-daemon` on a private session
//!   bus), started by the store tests of tokengate and of its CLI.
//!
//! Network fixtures, independent of the server's own HTTP codec (they relay bytes, or parse with
//! httparse):
//!
//! - `pki`: a private CA made at test time (rcgen) with server and client certificates.
//! - `tls_front`: an HTTPS front (rustls) for a `TestServer`, optionally requiring a client
//!   certificate: the same token endpoint and API over `https`.
//! - `proxy`, `socks`: an HTTP `CONNECT` proxy and a SOCKS5 proxy that count what they carry.
//! - `raw`: a programmable server for slow answers and large uploads.
//! - `relay`: the listener and byte relay they share.

#![forbid(unsafe_code)]

mod api;
mod counters;
mod failure;
mod form;
mod http;
pub mod load;
mod login;
mod pki;
mod proxy;
mod raw;
mod relay;
mod router;
mod server;
pub mod services;
mod socks;
mod state;
pub mod support;
mod tls_front;
mod token_endpoint;
mod token_store;

pub use counters::Counters;
pub use failure::Failure;
pub use login::RedirectFault;
pub use pki::{Identity, TestPki};
pub use proxy::HttpProxy;
pub use raw::{FNV_START, RawReply, RawRequest, RawServer, fnv1a};
pub use socks::Socks5Proxy;
pub use support::TempDir;
pub use tls_front::{ClientCerts, TlsFront};
pub use token_endpoint::TokenRequest;
pub use token_store::Issued;

use server::Runtime;
use state::{Config, Knobs, Shared};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// The confidential client registered on every server.
pub const DEMO_CLIENT_ID: &str = "demo-client";
/// The secret of [`DEMO_CLIENT_ID`].
pub const DEMO_CLIENT_SECRET: &str = "demo-secret";
/// The public client (no secret) registered on every server.
pub const DEMO_PUBLIC_CLIENT_ID: &str = "demo-public";

/// A running test server. Dropping it stops accepting, closes every open
/// connection (keep-alive ones included), interrupts sleeping handlers and
/// joins its threads; the drop never takes more than a few seconds.
///
/// `TestServer` is `Send + Sync`: share it with `Arc` across test threads.
pub struct TestServer {
    shared: Arc<Shared>,
    runtime: Runtime,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

/// Configures a [`TestServer`] before it starts; see [`TestServer::builder`].
#[derive(Clone, Debug)]
pub struct ServerBuilder {
    token_lifetime: Duration,
    token_latency: Duration,
    token_latency_jitter: Duration,
    transient_failure_rate: f64,
    transient_failure_retry_after: Option<u64>,
    rotate_refresh_tokens: bool,
    body_mode: bool,
    clients: Vec<(String, String)>,
    public_clients: Vec<String>,
    workers: usize,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            token_lifetime: Duration::from_secs(3600),
            token_latency: Duration::ZERO,
            token_latency_jitter: Duration::ZERO,
            transient_failure_rate: 0.0,
            transient_failure_retry_after: None,
            rotate_refresh_tokens: true,
            body_mode: false,
            clients: vec![(DEMO_CLIENT_ID.into(), DEMO_CLIENT_SECRET.into())],
            public_clients: vec![DEMO_PUBLIC_CLIENT_ID.into()],
            workers: 32,
        }
    }
}

impl ServerBuilder {
    /// Lifetime of issued access tokens (default 3600 s). Sub-second
    /// lifetimes are honoured exactly on the server; `expires_in` reports
    /// them rounded up to whole seconds.
    pub fn token_lifetime(mut self, d: Duration) -> Self {
        self.token_lifetime = d;
        self
    }

    /// How long the token endpoint sleeps before answering (default 0).
    pub fn token_latency(mut self, d: Duration) -> Self {
        self.token_latency = d;
        self
    }

    /// Up to this much extra token-endpoint latency, drawn uniformly at
    /// random for each answer (default 0).
    pub fn token_latency_jitter(mut self, d: Duration) -> Self {
        self.token_latency_jitter = d;
        self
    }

    /// Share (clamped to `0.0..=1.0`) of `refresh_token` and
    /// `client_credentials` grants (and `/custom/refresh` calls) answered
    /// `503 {"error":"temporarily_unavailable"}` (no `Retry-After` unless
    /// [`transient_failure_retry_after`](ServerBuilder::transient_failure_retry_after))
    /// instead of normally, decided per request after the latency (default 0).
    /// The share holds exactly and evenly (0.2: one answer in five, from a
    /// random start), so a short test still sees its failures. Counted in
    /// [`Counters::injected_failures`].
    pub fn transient_failure_rate(mut self, p: f64) -> Self {
        self.transient_failure_rate = clamp_rate(p);
        self
    }

    /// Sends `Retry-After: <secs>` with the `503`s of
    /// [`transient_failure_rate`](ServerBuilder::transient_failure_rate)
    /// (default: no `Retry-After`).
    pub fn transient_failure_retry_after(mut self, secs: u64) -> Self {
        self.transient_failure_retry_after = Some(secs);
        self
    }

    /// Refresh-token rotation (default `true`): every refresh returns a new
    /// refresh token and the old one becomes single-use; replaying it
    /// revokes the whole token family. With `false`, refresh responses omit
    /// `refresh_token` and the presented one stays valid.
    pub fn rotate_refresh_tokens(mut self, on: bool) -> Self {
        self.rotate_refresh_tokens = on;
        self
    }

    /// Body mode (default `false`): unauthorized API calls are answered
    /// `200 {"ret":401,"msg":"token expired"}` instead of `401`.
    pub fn body_mode(mut self, on: bool) -> Self {
        self.body_mode = on;
        self
    }

    /// Registers another confidential client. `demo-client` / `demo-secret`
    /// stays registered.
    pub fn client(mut self, id: &str, secret: &str) -> Self {
        self.clients.push((id.into(), secret.into()));
        self
    }

    /// Registers another public client (authenticates with `client_id`
    /// alone). `demo-public` stays registered.
    pub fn public_client(mut self, id: &str) -> Self {
        self.public_clients.push(id.into());
        self
    }

    /// Connection-handling threads kept warm (default 32). Each keep-alive
    /// connection is served by one thread; more threads are spawned on
    /// demand (up to 4096) and those beyond `n` exit after 2 s idle.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Starts the server on an ephemeral port of `127.0.0.1`.
    ///
    /// # Panics
    ///
    /// If the socket cannot be bound or the accept thread cannot be
    /// spawned; use [`ServerBuilder::try_start`] to handle that.
    pub fn start(self) -> TestServer {
        self.try_start()
            .unwrap_or_else(|e| panic!("tokengate-testserver: cannot start: {e}"))
    }

    /// Like [`ServerBuilder::start`], but returns the I/O error.
    pub fn try_start(self) -> io::Result<TestServer> {
        let config = Config {
            rotate_refresh_tokens: self.rotate_refresh_tokens,
            body_mode: self.body_mode,
            clients: self.clients,
            public_clients: self.public_clients,
        };
        let knobs = Knobs {
            failure: Failure::None,
            token_latency: self.token_latency,
            token_latency_jitter: self.token_latency_jitter,
            token_lifetime: self.token_lifetime,
            transient_failure_rate: self.transient_failure_rate,
            transient_failure_retry_after: self.transient_failure_retry_after,
            failure_until: None,
        };
        let shared = Arc::new(Shared::new(config, knobs));
        let runtime = Runtime::start(Arc::clone(&shared), self.workers)?;
        *shared.base_url.lock() = format!("http://{}", runtime.addr());
        Ok(TestServer { shared, runtime })
    }
}

impl TestServer {
    /// Starts a server with the defaults (see [`ServerBuilder`]).
    pub fn start() -> TestServer {
        ServerBuilder::default().start()
    }

    /// A builder to configure the server before starting it.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.runtime.addr())
    }

    /// `url() + "/oauth/token"`.
    pub fn token_url(&self) -> String {
        format!("{}{}", self.url(), router::TOKEN_PATH)
    }

    /// `url() + "/custom/refresh"` (the non-standard JSON refresh endpoint).
    pub fn custom_refresh_url(&self) -> String {
        format!("{}/custom/refresh", self.url())
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.runtime.addr().port()
    }

    /// The listening address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.runtime.addr()
    }

    /// Mints a token pair directly, like a fresh login (a new token family,
    /// current token lifetime). Not counted anywhere and not subject to
    /// failure modes or latency.
    pub fn issue_token(&self) -> Issued {
        let lifetime = self.shared.knobs.lock().token_lifetime;
        let (access_token, refresh_token) = self.shared.tokens.issue_pair(lifetime, None);
        Issued {
            access_token,
            refresh_token,
            expires_in: token_store::ceil_secs(lifetime),
        }
    }

    /// Whether the API would accept `access_token` right now (issued, not
    /// revoked, not expired; ignores [`TestServer::set_reject_all`]).
    pub fn is_access_token_valid(&self, access_token: &str) -> bool {
        self.shared.tokens.is_valid(access_token)
    }

    /// Every access token issued so far is rejected from now on. Refresh
    /// tokens stay valid.
    pub fn revoke_all(&self) {
        self.shared.tokens.revoke_all_access();
    }

    /// Every refresh token issued so far becomes invalid (refreshing with it
    /// gets `invalid_grant`). Access tokens stay valid.
    pub fn revoke_refresh_tokens(&self) {
        self.shared.tokens.revoke_all_refresh();
    }

    /// Sets the token endpoint's failure mode ([`Failure::None`] = healthy).
    pub fn set_failure(&self, f: Failure) {
        let mut k = self.shared.knobs.lock();
        k.failure = f;
        k.failure_until = None;
    }

    /// Sets the token endpoint's failure mode for `d` from now; an answer
    /// computed after that is healthy again (an outage of known length).
    pub fn set_failure_for(&self, f: Failure, d: Duration) {
        let mut k = self.shared.knobs.lock();
        k.failure = f;
        k.failure_until = Some(std::time::Instant::now() + d);
    }

    /// The token endpoint sleeps this long before answering (every grant).
    pub fn set_token_latency(&self, d: Duration) {
        self.shared.knobs.lock().token_latency = d;
    }

    /// Up to this much extra token-endpoint latency, random per answer (see
    /// [`ServerBuilder::token_latency_jitter`]).
    pub fn set_token_latency_jitter(&self, d: Duration) {
        self.shared.knobs.lock().token_latency_jitter = d;
    }

    /// Probability that a refresh is answered with an injected `503` (see
    /// [`ServerBuilder::transient_failure_rate`]).
    pub fn set_transient_failure_rate(&self, p: f64) {
        self.shared.knobs.lock().transient_failure_rate = clamp_rate(p);
    }

    /// When on, the API reads each request and then resets the connection
    /// (TCP RST) without answering. Counted in `api_calls` and
    /// [`Counters::connections_reset`].
    pub fn set_api_reset(&self, on: bool) {
        self.shared.api_reset.store(on, Relaxed);
    }

    /// Lifetime of tokens issued from now on.
    pub fn set_token_lifetime(&self, d: Duration) {
        self.shared.knobs.lock().token_lifetime = d;
    }

    /// When on, the API rejects every bearer token, even freshly issued ones.
    pub fn set_reject_all(&self, on: bool) {
        self.shared.reject_all.store(on, Relaxed);
    }

    /// When on, token responses leave out `expires_in` (and `/custom/refresh`
    /// leaves out `expire`).
    pub fn set_omit_expires_in(&self, on: bool) {
        self.shared.omit_expires_in.store(on, Relaxed);
    }

    /// Makes the `Date` header of every response lie by `secs` seconds
    /// (positive = server clock ahead). The date sent stays within the
    /// years 1970 to 9999 that an HTTP date can express.
    pub fn set_date_skew(&self, secs: i64) {
        self.shared.date_skew_secs.store(secs, Relaxed);
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Zeroes every counter (including `max_concurrent_refreshes`).
    pub fn reset_counters(&self) {
        self.shared.counters.reset();
    }

    /// What the most recent `POST /oauth/token` sent (form, Basic
    /// credentials, content type), or `None` if there was none yet.
    pub fn last_token_request(&self) -> Option<TokenRequest> {
        self.shared.last_token_request.lock().clone()
    }

    /// The issuer of the metadata documents: [`url`](TestServer::url), unless
    /// [`set_public_url`](TestServer::set_public_url) says otherwise.
    pub fn issuer(&self) -> String {
        self.shared.base_url()
    }

    /// Sets the URL the server announces as its own: the issuer and endpoints of its metadata,
    /// and the `iss` of its redirects. For a server behind a front (e.g. a [`TlsFront`]'s
    /// `https` URL). Defaults to [`url`](TestServer::url).
    pub fn set_public_url(&self, url: &str) {
        *self.shared.base_url.lock() = url.trim_end_matches('/').to_owned();
    }

    /// `url() + "/oauth/device_authorization"` (RFC 8628 §3.1).
    pub fn device_authorization_url(&self) -> String {
        format!("{}{}", self.url(), login::DEVICE_PATH)
    }

    /// `url() + "/oauth/authorize"` (RFC 6749 §3.1).
    pub fn authorization_url(&self) -> String {
        format!("{}{}", self.url(), login::AUTHORIZE_PATH)
    }

    /// `url() + "/oauth/revoke"` (RFC 7009).
    pub fn revocation_url(&self) -> String {
        format!("{}{}", self.url(), login::REVOKE_PATH)
    }

    /// Approves the pending device login with `user_code` (the user entered it and said yes).
    /// `false` when no pending device login has that code.
    pub fn approve_device(&self, user_code: &str) -> bool {
        self.shared.login.decide(user_code, true)
    }

    /// Denies the pending device login with `user_code`: its next poll is answered
    /// `access_denied`. `false` when no pending device login has that code.
    pub fn deny_device(&self, user_code: &str) -> bool {
        self.shared.login.decide(user_code, false)
    }

    /// When on, every device login is approved as soon as it starts (default off).
    pub fn set_device_auto_approve(&self, on: bool) {
        self.shared.login.knobs.lock().device_auto_approve = on;
    }

    /// The `interval` of device logins started from now on (default 1 s). Sub-second values are
    /// sent as fractions, which tokengate honours from a loopback server only.
    pub fn set_device_interval(&self, d: Duration) {
        self.shared.login.knobs.lock().device_interval = d;
    }

    /// The `expires_in` of device codes issued from now on (default 600 s).
    pub fn set_device_expires_in(&self, d: Duration) {
        self.shared.login.knobs.lock().device_expires_in = d;
    }

    /// How much each injected `slow_down` grows a device code's interval, for counting polls
    /// that come too fast (default 5 s, as RFC 8628 §3.5 says).
    pub fn set_slow_down_step(&self, d: Duration) {
        self.shared.login.knobs.lock().slow_down_step = d;
    }

    /// The next `n` device polls (of any code) are answered `authorization_pending`, whatever
    /// the code's state.
    pub fn inject_device_pending(&self, n: u32) {
        self.shared.login.knobs.lock().inject_pending = n;
    }

    /// The next `n` device polls (of any code) are answered `slow_down`, and each grows its
    /// code's interval by the slow-down step.
    pub fn inject_device_slow_down(&self, n: u32) {
        self.shared.login.knobs.lock().inject_slow_down = n;
    }

    /// When each poll of the device login with `user_code` arrived, counted from its device
    /// authorization request. Empty for an unknown code.
    pub fn device_polls(&self, user_code: &str) -> Vec<Duration> {
        self.shared.login.polls(user_code)
    }

    /// What the authorization endpoint's redirects do wrong from now on ([`RedirectFault::None`]:
    /// nothing).
    pub fn set_redirect_fault(&self, fault: RedirectFault) {
        self.shared.login.knobs.lock().redirect_fault = fault;
    }

    /// Which metadata documents are served (both by default); the other answers `404`.
    pub fn set_metadata_documents(&self, oauth: bool, openid: bool) {
        let mut k = self.shared.login.knobs.lock();
        k.serve_oauth_metadata = oauth;
        k.serve_openid_metadata = openid;
    }

    /// The `issuer` the metadata documents state (`None`: the server's own URL, the default).
    pub fn set_metadata_issuer(&self, issuer: Option<&str>) {
        self.shared.login.knobs.lock().metadata_issuer = issuer.map(str::to_owned);
    }

    /// Leaves these fields out of the metadata documents from now on (e.g.
    /// `device_authorization_endpoint`, for a server without the device flow); empty: none.
    pub fn set_metadata_omits(&self, fields: &[&str]) {
        self.shared.login.knobs.lock().metadata_omits =
            fields.iter().map(|f| (*f).to_owned()).collect();
    }

    /// Whether the metadata advertise `authorization_response_iss_parameter_supported` (RFC 9207;
    /// default `true`). The redirects carry `iss` either way.
    pub fn set_iss_parameter_supported(&self, on: bool) {
        self.shared.login.knobs.lock().iss_supported = on;
    }

    /// When on, the revocation endpoint answers `503 temporarily_unavailable` with
    /// `Retry-After: 1`, revoking nothing.
    pub fn set_revocation_unavailable(&self, on: bool) {
        self.shared.login.knobs.lock().revocation_unavailable = on;
    }

    /// When on, access tokens issued from now on are JWTs (a compact JWS whose payload carries
    /// `exp`, with a signature that is not a real one); combine with
    /// [`set_omit_expires_in`](TestServer::set_omit_expires_in) to make a client read the
    /// expiry from the token.
    pub fn set_jwt_access_tokens(&self, on: bool) {
        self.shared.tokens.set_jwt(on);
    }

    /// Whether the refresh token would still be accepted by a `refresh_token` grant (issued,
    /// never used under rotation, not revoked). Read-only: nothing is consumed.
    pub fn is_refresh_token_valid(&self, refresh_token: &str) -> bool {
        self.shared.tokens.is_refresh_active(refresh_token)
    }

    /// Token-endpoint requests being handled right now.
    pub fn token_requests_in_flight(&self) -> u64 {
        self.shared.token_in_flight.load(Relaxed)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.runtime.shutdown();
    }
}

/// A probability in `0.0..=1.0` (NaN counts as 0).
fn clamp_rate(p: f64) -> f64 {
    if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) }
}

/// `http://127.0.0.1:PORT` for a port with nothing listening: binds an
/// ephemeral port, notes it, and closes it again. Connecting to it is
/// refused (unless something else grabbed the port meanwhile, which is
/// unlikely).
///
/// # Panics
///
/// If no loopback port can be bound at all.
pub fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("tokengate-testserver: cannot bind a port: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("tokengate-testserver: no local address: {e}"));
    drop(listener);
    format!("http://{addr}")
}
