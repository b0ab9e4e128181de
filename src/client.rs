//! The [`Client`]: base URL joining, origin scoping, `Authorization` attach, rejection detection and
//! bounded replay, on top of a `ureq::Agent` and a [`Gate`].

use std::borrow::Cow;
use std::fmt;
use std::io::{Read, Seek};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::http::uri::Authority;
use ureq::http::{self, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use ureq::{AsSendBody, Body, SendBody};

use crate::background::BackgroundRefresher;
use crate::body::{Next, Payload};
use crate::error::Error;
use crate::form::{form_encode, form_pairs};
use crate::gate::{Gate, GateBuilder, Lease, Rejection, Stats};
use crate::net::{NetAgent, Network};
use crate::origin::Origin;
use crate::redirect;
use crate::refresh::{OAuth2, Refresh};
use crate::rejection;
use crate::store::TokenStore;
use crate::token::Token;

/// A blocking HTTP client that attaches a fresh bearer token to every request to its API origin.
///
/// Build one with [`Client::builder`]. Clones are cheap and share the connection pool and the token
/// state, so hand a clone to each thread.
///
/// ```no_run
/// use std::time::Duration;
/// use tokengate::{Client, OAuth2, Token};
///
/// let client = Client::builder("https://api.example.com")
///     .token(Token::new("ACCESS").with_expires_in(Duration::from_secs(3600)).with_refresh_token("REFRESH"))
///     .refresher(OAuth2::refresh_token("https://auth.example.com/oauth/token").client_id("my-app"))
///     .build()?;
/// let mut resp = client.get("/users/me").call()?;
/// let me: serde_json::Value = resp.body_mut().read_json()?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
///
/// # Thread safety
///
/// `Client` is `Send + Sync + Clone`. A request blocks its own thread only:
///
/// - on the network, for the request itself (bounded by the client's timeouts);
/// - on the gate's condition variable, when the token must be refreshed: while a refresh runs, and
///   through the short backoff after a transient failure until the next attempt. It wakes when a
///   token is installed or its [`refresh_timeout`](ClientBuilder::refresh_timeout) budget runs out,
///   whichever comes first; it never spins.
///
/// The gate's mutex is held only to read or install the token, never across network I/O. A refresh in
/// the mandatory window is claimed by the first thread that needed it and runs on a short-lived
/// refresher thread, with no lock held, while that thread waits like the others (so a token endpoint
/// that hangs holds no request past its budget); one in the advisory window runs on a short-lived
/// thread of its own (or on the background refresher, when enabled) while requests go on with the
/// still-valid token. Dropping the last clone of the client waits for a refresh in flight (see
/// [`close`](Client::close)).
///
/// # Rejections and replays
///
/// A response is a *rejection* when it is a 401 whose `WWW-Authenticate` challenge (if any) asks for a
/// new token, or when the [`reject_when`](ClientBuilder::reject_when) predicate says so. The client
/// then tells the gate (which refreshes unless another thread already did) and replays the request
/// once with the new token. A 403, or a 401 with `error="insufficient_scope"`, is never a rejection: a
/// new token would not help. A replay's rejection is returned to the caller as the response.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    net: NetAgent,
    base: Uri,
    /// The base URL as request paths are joined to it: serialised once, without a trailing `/`.
    base_url: String,
    base_origin: Origin,
    gate: Gate,
    rejection: rejection::Rule,
    max_replays: u32,
    max_redirects: u32,
    buffer_timeout: Duration,
    /// Headers dropped (besides the built-in ones) when a redirect changes origin.
    sensitive: Vec<HeaderName>,
    /// Stops and joins the background refresher when the last clone of the client is dropped.
    _background: Option<BackgroundRefresher>,
}

impl Drop for Inner {
    /// The last clone of the client is going: a refresh in flight (say, one started ahead of
    /// expiry on a short-lived thread) finishes and is saved first, within one budget, so a
    /// short-lived program never loses a rotated refresh token. Then the refresher threads are
    /// joined (unless a refresh outlived the budget), so none is left running. The background
    /// refresher, if any, is stopped and joined when the fields drop, after this.
    fn drop(&mut self) {
        if self.gate.settle(self.gate.budget()) {
            self.gate.join_threads();
        }
    }
}

/// Builds a [`Client`]. See [`Client::builder`].
#[must_use]
pub struct ClientBuilder {
    base: String,
    gate: Option<Gate>,
    gate_builder: GateBuilder,
    gate_options: bool,
    /// An OAuth2 refresher, kept aside until `build` so it can share the client's network.
    oauth2: Option<OAuth2>,
    network: Network,
    sensitive: Vec<String>,
    rejection: rejection::Rule,
    max_replays: u32,
    buffer_timeout: Duration,
    max_redirects: u32,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    response_timeout: Duration,
    user_agent: Option<String>,
    max_idle_connections_per_host: Option<usize>,
    background_refresh: bool,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base", &self.base)
            .field("gate", &self.gate)
            .field("gate_builder", &self.gate_builder)
            .field("max_replays", &self.max_replays)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder for a client whose API lives at `base_url` (e.g. `https://api.example.com/v1`).
    /// Relative paths given to requests are joined to it; the token is sent only to its origin.
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base_url.into(),
            gate: None,
            gate_builder: Gate::builder(),
            gate_options: false,
            oauth2: None,
            network: Network::default(),
            sensitive: Vec::new(),
            rejection: rejection::Rule::default(),
            max_replays: 1,
            buffer_timeout: Duration::from_secs(30),
            max_redirects: 10,
            timeout: None,
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            user_agent: None,
            max_idle_connections_per_host: None,
            background_refresh: false,
        }
    }

    /// A `GET` request to `path` (joined to the base URL) or to an absolute URL.
    pub fn get(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::GET, path)
    }

    /// A `POST` request; see [`get`](Client::get).
    pub fn post(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::POST, path)
    }

    /// A `PUT` request; see [`get`](Client::get).
    pub fn put(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::PUT, path)
    }

    /// A `PATCH` request; see [`get`](Client::get).
    pub fn patch(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::PATCH, path)
    }

    /// A `DELETE` request; see [`get`](Client::get).
    pub fn delete(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::DELETE, path)
    }

    /// A `HEAD` request; see [`get`](Client::get).
    pub fn head(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::HEAD, path)
    }

    /// A request with any method to `path` (joined to the base URL) or to an absolute URL.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder<'_> {
        let url = self.join(path);
        RequestBuilder {
            client: self,
            method,
            path_len: url.len(),
            url,
            headers: Vec::new(),
            bad_header: None,
            timeout: None,
        }
    }

    /// Installs a new token (e.g. after the user logged in again): leaves the login-required state and
    /// wakes waiting threads. See [`Gate::set_token`].
    ///
    /// # Errors
    ///
    /// Those of [`Gate::set_token`]; nothing is changed on error.
    pub fn set_token(&self, token: Token) -> Result<(), Error> {
        self.inner.gate.set_token(token)
    }

    /// Installs the token a login brought, exactly as [`set_token`](Client::set_token) does (in
    /// the gate and the [`store`](ClientBuilder::store), atomically, waking waiting threads), and
    /// emits [`Event::LoggedIn`](crate::Event::LoggedIn). See [`Gate::login`] and the
    /// [`login`](crate::login) module.
    ///
    /// ```no_run
    /// use tokengate::login::DeviceLogin;
    /// # let client = tokengate::Client::builder("https://api.example.com").build()?;
    ///
    /// if client.token().is_none() {
    ///     let token = DeviceLogin::new("https://auth.example.com/device", "https://auth.example.com/token")
    ///         .client_id("my-cli")
    ///         .run(|p| eprintln!("Open {} and enter {}", p.verification_uri(), p.user_code()))?;
    ///     client.login(token)?;
    /// }
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`Gate::login`]; nothing is changed on error.
    pub fn login(&self, token: Token) -> Result<(), Error> {
        self.inner.gate.login(token)
    }

    /// Logs out: revokes the refresh token at the refresher's
    /// [`revocation_url`](crate::OAuth2::revocation_url) (RFC 7009), clears the
    /// [`store`](ClientBuilder::store) (so every process sharing it is logged out), forgets the
    /// token and enters the login-required state, and emits
    /// [`Event::LoggedOut`](crate::Event::LoggedOut). A failed revocation still logs out here. See
    /// [`Gate::logout`] for the steps.
    ///
    /// # Errors
    ///
    /// Those of [`Gate::logout`].
    pub fn logout(&self) -> Result<(), Error> {
        self.inner.gate.logout()
    }

    /// Finishes the client's token work before the program ends: waits (at most the
    /// [`refresh_timeout`](ClientBuilder::refresh_timeout) budget) for a refresh in flight, so a
    /// rotated refresh token the server has already issued is saved (to the
    /// [`store`](ClientBuilder::store)) rather than lost with the process.
    ///
    /// Dropping the last clone of a client does the same, so a program that returns from `main`
    /// needs nothing more. Call `close` where the program may end without dropping it: before
    /// `std::process::exit`, or where a panic may unwind out of `main`. With rotating refresh
    /// tokens a lost refresh logs the user out: the next run presents a spent refresh token.
    /// Returns whether no refresh is in flight. The client stays usable.
    ///
    /// ```no_run
    /// # let client = tokengate::Client::builder("https://api.example.com").build()?;
    /// // ... requests ...
    /// client.close();
    /// std::process::exit(0);
    /// # Ok::<_, tokengate::Error>(())
    /// ```
    pub fn close(&self) -> bool {
        self.inner.gate.settle(self.inner.gate.budget())
    }

    /// A snapshot of the current token, without refreshing. `None` before the first token.
    pub fn token(&self) -> Option<Arc<Token>> {
        self.inner.gate.token()
    }

    /// Subscribes to token [`Event`](crate::Event)s (refreshed, refresh failed, login required, logged in or out, ...). See
    /// [`Gate::events`] for the delivery guarantees: sending never blocks a request.
    ///
    /// ```
    /// # let client = tokengate::Client::builder("https://api.example.com").build()?;
    /// let events = client.events();
    /// std::thread::spawn(move || {
    ///     for event in events {
    ///         if let tokengate::Event::LoginRequired { .. } = event {
    ///             eprintln!("please log in again");
    ///         }
    ///     }
    /// });
    /// # Ok::<_, tokengate::Error>(())
    /// ```
    pub fn events(&self) -> crate::Events {
        self.inner.gate.events()
    }

    /// The gate's counters (see [`Stats`] for each), shared by every client on the same gate.
    pub fn stats(&self) -> Stats {
        self.inner.gate.stats()
    }

    /// The gate holding this client's token, e.g. to share it with a client of another host.
    pub fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    /// The URL of a request: `path` joined to the base URL, or `path` itself when it is absolute.
    /// One allocation of exactly the right size (see [`parse_url`]).
    fn join(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_owned();
        }
        let base = &self.inner.base_url;
        let path = path.trim_start_matches('/');
        let mut url = String::with_capacity(base.len() + 1 + path.len());
        url.push_str(base);
        if !path.is_empty() {
            url.push('/');
            url.push_str(path);
        }
        url
    }

    fn same_origin(&self, uri: &Uri) -> bool {
        let base = &self.inner.base;
        // The same scheme and byte-for-byte the same authority is the common case and one short
        // comparison; a URL that spells the origin differently (other letter case, an explicit
        // default port) takes the full check.
        uri.scheme() == base.scheme()
            && uri.authority().map(Authority::as_str) == base.authority().map(Authority::as_str)
            || self.inner.base_origin.matches(uri)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base_url)
            .field("gate", &self.inner.gate)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Uses an existing [`Gate`] (shared token state), e.g. one shared with clients of other hosts.
    /// Defaults to a new gate built from this builder's token settings; give either a gate or those
    /// settings, not both.
    pub fn gate(mut self, gate: Gate) -> Self {
        self.gate = Some(gate);
        self
    }

    fn gate_option(mut self, f: impl FnOnce(GateBuilder) -> GateBuilder) -> Self {
        self.gate_builder = f(self.gate_builder);
        self.gate_options = true;
        self
    }

    /// Sets the starting token. See [`GateBuilder::token`]. Defaults to none.
    pub fn token(self, token: Token) -> Self {
        self.gate_option(|g| g.token(token))
    }

    /// Sets what gets new tokens. See [`GateBuilder::refresher`]. An [`OAuth2`] refresher without
    /// [network settings](OAuth2::network) of its own uses the client's
    /// [`network`](ClientBuilder::network): the same trust, client certificate and proxies.
    /// Defaults to none.
    pub fn refresher<R: Refresh>(mut self, refresher: R) -> Self {
        let mut slot = Some(refresher);
        let any: &mut dyn std::any::Any = &mut slot;
        if let Some(oauth2) = any.downcast_mut::<Option<OAuth2>>().and_then(Option::take) {
            self.oauth2 = Some(oauth2);
            self.gate_options = true;
            return self;
        }
        self.oauth2 = None;
        match slot {
            Some(refresher) => self.gate_option(|g| g.refresher(refresher)),
            None => self,
        }
    }

    /// Sets how the client reaches servers: trusted certificates, client certificate, proxies and
    /// other ureq agent options; see [`Network`]. The OAuth2 refresher given to
    /// [`refresher`](ClientBuilder::refresher) uses the same settings unless it has its own.
    /// Defaults to [`Network::new`]: the operating system's trust store and the environment's
    /// proxies.
    pub fn network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// Sends every request through this proxy. See [`Network::proxy`]. Defaults to the
    /// environment's proxies.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.network = self.network.proxy(url);
        self
    }

    /// Trusts the CA certificates of a PEM file as well. See
    /// [`Network::add_root_certificates_pem_file`]. Defaults to none.
    pub fn add_root_certificates_pem_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.network = self.network.add_root_certificates_pem_file(path);
        self
    }

    /// Presents the client certificate of these PEM files (mutual TLS). See
    /// [`Network::client_certificate_pem_files`]. Defaults to none.
    pub fn client_certificate_pem_files(
        mut self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.network = self.network.client_certificate_pem_files(chain, key);
        self
    }

    /// Adds a header that carries credentials: like `Authorization`, `Cookie` and
    /// `Proxy-Authorization`, it is dropped from a request when a redirect takes it to another
    /// origin (scheme, host or port), and stays dropped for the rest of the redirects. An invalid
    /// name makes [`build`](ClientBuilder::build) fail with [`Error::InvalidHeader`]. Defaults to
    /// those three only.
    pub fn sensitive_header(mut self, name: impl Into<String>) -> Self {
        self.sensitive.push(name.into());
        self
    }

    /// Sets the mandatory refresh window. See [`GateBuilder::refresh_before_expiry`] (and its
    /// default).
    pub fn refresh_before_expiry(self, window: Duration) -> Self {
        self.gate_option(|g| g.refresh_before_expiry(window))
    }

    /// Sets the advisory window, in which a refresh runs in the background while the still-valid token
    /// keeps being used. See [`GateBuilder::refresh_ahead`] (and its default).
    pub fn refresh_ahead(self, window: Duration) -> Self {
        self.gate_option(|g| g.refresh_ahead(window))
    }

    /// Starts a background thread that refreshes the token when its advisory window opens, before any
    /// request needs it, so no request waits for a refresh. It refreshes through the same gate as the
    /// requests (never in parallel with them), backs off the same way after failures, and sleeps on a
    /// channel in between (no polling). It stops and is joined when the last clone of the client is
    /// dropped. Defaults to `false`: the first request inside the advisory window starts the refresh
    /// on a short-lived thread instead.
    pub fn background_refresh(mut self, enabled: bool) -> Self {
        self.background_refresh = enabled;
        self
    }

    /// Sets the budget a request may spend getting a token: waiting for a refresh and through the
    /// backoffs after transient failures. See [`GateBuilder::refresh_timeout`] (and its default).
    pub fn refresh_timeout(self, timeout: Duration) -> Self {
        self.gate_option(|g| g.refresh_timeout(timeout))
    }

    /// Sets the lifetime assumed for tokens without an expiry. See
    /// [`GateBuilder::assumed_lifetime`] (and its default).
    pub fn assumed_lifetime(self, lifetime: Duration) -> Self {
        self.gate_option(|g| g.assumed_lifetime(lifetime))
    }

    /// Sets the backoff after failed refreshes. See [`GateBuilder::refresh_backoff`] (and its
    /// defaults).
    pub fn refresh_backoff(self, initial: Duration, max: Duration) -> Self {
        self.gate_option(|g| g.refresh_backoff(initial, max))
    }

    /// Sets where the token is kept between runs and shared with other processes, e.g. a
    /// [`FileStore`](crate::FileStore); without a [`token`](ClientBuilder::token) the client starts
    /// from the stored one. See [`GateBuilder::store`]. Defaults to none (memory only).
    ///
    /// ```
    /// use tokengate::{Client, FileStore};
    ///
    /// let path = std::env::temp_dir().join(format!("tg-doc-{}.json", std::process::id()));
    /// let client = Client::builder("https://api.example.com").store(FileStore::new(&path)).build()?;
    /// assert!(client.token().is_none()); // nothing stored yet: log in, then `client.set_token(..)`
    /// # Ok::<_, tokengate::Error>(())
    /// ```
    pub fn store(self, store: impl TokenStore) -> Self {
        self.gate_option(|g| g.store(store))
    }

    /// Sets a function called with every token the refresher produces (to persist it elsewhere).
    /// See [`GateBuilder::on_refresh`]. Defaults to none.
    pub fn on_refresh(self, callback: impl Fn(&Token) + Send + Sync + 'static) -> Self {
        self.gate_option(|g| g.on_refresh(callback))
    }

    /// Sets the login-required callback. See [`GateBuilder::on_login_required`]. Defaults to none.
    pub fn on_login_required(self, callback: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.gate_option(|g| g.on_login_required(callback))
    }

    /// Sets a predicate that also treats a response as a token rejection, for APIs that signal an
    /// expired token in the body (e.g. HTTP 200 with `{"ret":401}`).
    ///
    /// When set, response bodies of the API origin are buffered, up to
    /// [`max_buffered_body`](ClientBuilder::max_buffered_body), so the predicate can see them; a
    /// larger body is not buffered and the predicate is not asked (it is streamed to the caller as
    /// usual). Either way the caller gets the whole body. A 401 asking for a new token stays a
    /// rejection too. Defaults to none.
    ///
    /// ```
    /// let client = tokengate::Client::builder("https://api.example.com")
    ///     .reject_when(|_parts, body| {
    ///         serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v["ret"] == 401)
    ///     })
    ///     .build()?;
    /// # Ok::<_, tokengate::Error>(())
    /// ```
    pub fn reject_when(
        mut self,
        predicate: impl Fn(&http::response::Parts, &[u8]) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.rejection.reject_when(Arc::new(predicate));
        self
    }

    /// Sets the largest response body buffered for [`reject_when`](ClientBuilder::reject_when).
    /// Defaults to 1 MiB.
    pub fn max_buffered_body(mut self, bytes: u64) -> Self {
        self.rejection.max_buffered_body(bytes);
        self
    }

    /// Sets how long the body of an API response may take to arrive when the client reads it for
    /// [`reject_when`](ClientBuilder::reject_when), so a server that trickles it cannot hold the
    /// call. It is ureq's receive-body timeout on those requests, so it also bounds reading the
    /// rest of a body larger than [`max_buffered_body`](ClientBuilder::max_buffered_body).
    /// Without `reject_when` it is not used. Defaults to 30 seconds.
    pub fn buffer_timeout(mut self, timeout: Duration) -> Self {
        self.buffer_timeout = timeout;
        self
    }

    /// Sets how many times one request may be replayed after rejections (each replay follows a
    /// refresh or another thread's new token). `0` returns the first rejection as it is. Defaults to 1.
    pub fn max_replays(mut self, replays: u32) -> Self {
        self.max_replays = replays;
        self
    }

    /// Sets how many redirects a request follows. The token goes only to hops on the base URL's origin
    /// (scheme, host and port). Defaults to 10.
    pub fn max_redirects(mut self, redirects: u32) -> Self {
        self.max_redirects = redirects;
        self
    }

    /// Sets an overall timeout for each API request, from connecting to the end of the response body
    /// (ureq's global timeout). Defaults to none: the connect and response timeouts bound a request,
    /// and a large download may take as long as it needs. (ureq's global timeout also costs some
    /// throughput on keep-alive connections; measure before you set it on a hot path.) A
    /// per-request deadline that also bounds the wait for a token is
    /// [`RequestBuilder::timeout`].
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how long to wait for the response head once the request is sent. Defaults to 60 seconds.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Sets the connect timeout of API requests. Defaults to 10 seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the `User-Agent` header. Defaults to ureq's.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Sets how many idle keep-alive connections to the API host the client keeps for reuse (ureq's
    /// `max_idle_connections_per_host`; ureq's overall cap of 10 idle connections still applies). With
    /// more threads than this sending at once, some requests open a new connection. Defaults to ureq's
    /// default, 3.
    pub fn max_idle_connections_per_host(mut self, connections: usize) -> Self {
        self.max_idle_connections_per_host = Some(connections);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when the base URL is not an absolute http(s) URL; [`Error::Config`] when
    /// both a gate and token settings were given, the refresher's configuration is unusable, or the
    /// background refresher thread cannot be started;
    /// [`Error::InvalidToken`] when the starting token cannot be sent in a header; [`Error::Store`]
    /// when the [`store`](ClientBuilder::store) cannot be read or holds no valid token file.
    pub fn build(self) -> Result<Client, Error> {
        let (base, base_origin) = Origin::parse(&self.base, "base URL").map_err(Error::url)?;
        // `Uri`'s Display of a bare origin ends in `/`; joining adds its own.
        let base_url = base.to_string().trim_end_matches('/').to_owned();
        let sensitive = self
            .sensitive
            .iter()
            .map(|n| {
                HeaderName::from_bytes(n.as_bytes())
                    .map_err(|_| Error::InvalidHeader(Arc::from(n.as_str())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let network = self.network.resolve()?;
        let gate = match (self.gate, self.gate_options) {
            (Some(_), true) => {
                return Err(Error::config(
                    "give the client either a gate or token settings, not both",
                ));
            }
            (Some(gate), false) => gate,
            (None, _) => {
                let mut gate_builder = self.gate_builder;
                if let Some(mut oauth2) = self.oauth2 {
                    oauth2.inherit(&network);
                    gate_builder = gate_builder.refresher(oauth2);
                }
                gate_builder.build()?
            }
        };
        let mut config = ureq::Agent::config_builder()
            .timeout_connect(Some(self.connect_timeout))
            .timeout_recv_response(Some(self.response_timeout))
            .timeout_global(self.timeout);
        if let Some(ua) = self.user_agent {
            config = config.user_agent(ua);
        }
        if let Some(n) = self.max_idle_connections_per_host {
            config = config.max_idle_connections_per_host(n);
        }
        let background = if self.background_refresh {
            let bg = BackgroundRefresher::start(gate.clone()).map_err(|e| {
                Error::config(format!("cannot start the background refresher: {e}"))
            })?;
            Some(bg)
        } else {
            None
        };
        Ok(Client {
            inner: Arc::new(Inner {
                net: network.agent(&base, config),
                base,
                base_url,
                base_origin,
                gate,
                rejection: self.rejection,
                max_replays: self.max_replays,
                max_redirects: self.max_redirects,
                buffer_timeout: self.buffer_timeout,
                sensitive,
                _background: background,
            }),
        })
    }
}

/// A request being built. Finish it with [`call`](RequestBuilder::call) or one of the `send` methods.
///
/// # Bodies and replays
///
/// A body given as bytes ([`send`](RequestBuilder::send), [`send_json`](RequestBuilder::send_json),
/// [`send_form`](RequestBuilder::send_form)) is kept in memory and sent again when the request is
/// replayed after a rejection or follows a `307`/`308` redirect. A body streamed from a reader is
/// not held in memory:
///
/// - [`send_seekable`](RequestBuilder::send_seekable) (a file, a `Cursor`): rewound to where it
///   stood and sent again from there, like a body in memory;
/// - [`send_reader`](RequestBuilder::send_reader) (any `Read`): sent once. After a rejection the
///   gate still learns that the token was rejected (the next request refreshes it), but this one
///   is not replayed: the rejection is returned, as it is after the last replay. A `307`/`308`
///   redirect is returned instead of followed.
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder<'a> {
    client: &'a Client,
    method: Method,
    /// The joined URL; query parameters are appended to it as they are added.
    url: String,
    /// Length of `url` before any query parameter was added (what `Debug` shows).
    path_len: usize,
    headers: Vec<(HeaderName, HeaderValue)>,
    bad_header: Option<String>,
    timeout: Option<Duration>,
}

impl fmt::Debug for RequestBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &&self.url[..self.path_len])
            .finish_non_exhaustive()
    }
}

impl RequestBuilder<'_> {
    /// Adds a header. An invalid name or value is reported by the send call as
    /// [`Error::InvalidHeader`]. An `Authorization` header set here is replaced by the token's on
    /// requests to the API origin.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => self.headers.push((n, v)),
            _ => {
                self.bad_header.get_or_insert_with(|| name.to_owned());
            }
        }
        self
    }

    /// Appends a query parameter, form-encoded.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.url
            .push(if self.url.contains('?') { '&' } else { '?' });
        form_encode(name, &mut self.url);
        self.url.push('=');
        form_encode(value, &mut self.url);
        self
    }

    /// Sets a deadline for this request: from now until the response arrives, covering the wait
    /// for a token (also another thread's refresh), every redirect and replay, and reading the
    /// response body (ureq's global timeout, given what is left at each hop). Past it the call
    /// returns [`Error::Deadline`], and a body read fails with a timeout. Defaults to none: the
    /// client's timeouts and `refresh_timeout` bound the call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request without a body.
    ///
    /// # Errors
    ///
    /// See [`Error`]: token errors from the gate (login required, refresh failure, timeout), transport
    /// errors, invalid URL or header. A rejected response is not an error; it is returned.
    pub fn call(self) -> Result<Response<Body>, Error> {
        self.run(Payload::Empty, None)
    }

    /// Sends the request with a body.
    ///
    /// # Errors
    ///
    /// As [`call`](RequestBuilder::call).
    pub fn send(self, body: impl Into<Vec<u8>>) -> Result<Response<Body>, Error> {
        self.run(Payload::Bytes(body.into()), None)
    }

    /// Sends a body read from `reader` as it is sent (chunked, unless you set `Content-Length`),
    /// without holding it in memory. It is sent once: see [bodies and
    /// replays](RequestBuilder#bodies-and-replays) for what happens after a rejection. Use
    /// [`send_seekable`](RequestBuilder::send_seekable) for a body that can be replayed.
    ///
    /// ```no_run
    /// # let client = tokengate::Client::builder("https://api.example.com").build()?;
    /// let stdin = std::io::stdin();
    /// let resp = client.post("/upload").send_reader(stdin.lock())?;
    /// # Ok::<_, tokengate::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`call`](RequestBuilder::call); an error reading `reader` is a transport error.
    pub fn send_reader(self, reader: impl Read) -> Result<Response<Body>, Error> {
        self.run(Payload::stream(reader), None)
    }

    /// Sends a body read from `reader` from its current position (chunked, unless you set
    /// `Content-Length`), without holding it in memory, and rewinds it to that position to send it
    /// again after a rejection or a `307`/`308` redirect.
    ///
    /// ```no_run
    /// # let client = tokengate::Client::builder("https://api.example.com").build()?;
    /// let file = std::fs::File::open("backup.tar")?;
    /// let resp = client.put("/backups/today").send_seekable(file)?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`send_reader`](RequestBuilder::send_reader). When rewinding fails the response that
    /// needed the replay is returned.
    pub fn send_seekable(self, reader: impl Read + Seek) -> Result<Response<Body>, Error> {
        self.run(Payload::seekable(reader), None)
    }

    /// Sends `value` as a JSON body with `Content-Type: application/json`.
    ///
    /// # Errors
    ///
    /// [`Error::Json`] when `value` cannot be serialised; otherwise as [`call`](RequestBuilder::call).
    pub fn send_json<T: serde::Serialize + ?Sized>(
        self,
        value: &T,
    ) -> Result<Response<Body>, Error> {
        let body = serde_json::to_vec(value).map_err(|e| Error::Json(Arc::new(e)))?;
        self.run(Payload::Bytes(body), Some("application/json"))
    }

    /// Sends form fields as `application/x-www-form-urlencoded`.
    ///
    /// # Errors
    ///
    /// As [`call`](RequestBuilder::call).
    pub fn send_form<'k, 'v>(
        self,
        fields: impl IntoIterator<Item = (&'k str, &'v str)>,
    ) -> Result<Response<Body>, Error> {
        let body = form_pairs(fields);
        self.run(
            Payload::Bytes(body.into_bytes()),
            Some("application/x-www-form-urlencoded"),
        )
    }

    fn run(
        self,
        mut body: Payload<'_>,
        content_type: Option<&'static str>,
    ) -> Result<Response<Body>, Error> {
        if let Some(name) = self.bad_header {
            return Err(Error::InvalidHeader(Arc::from(name)));
        }
        let deadline = self.timeout.map(|timeout| Deadline {
            at: Instant::now() + timeout,
            timeout,
        });
        let client = self.client;
        let inner = &*client.inner;
        let uri = parse_url(self.url)?;
        let mut headers = self.headers;
        if let Some(ct) = content_type
            && !headers.iter().any(|(n, _)| n == http::header::CONTENT_TYPE)
        {
            headers.push((http::header::CONTENT_TYPE, HeaderValue::from_static(ct)));
        }
        let req = RequestHead {
            method: self.method,
            uri,
            headers,
        };
        let mut lease = if client.same_origin(&req.uri) {
            Some(client.lease(deadline)?)
        } else {
            None
        };
        let mut replays = 0;
        loop {
            let (resp, authed) =
                client.send_following_redirects(&req, lease.as_ref(), &mut body, deadline)?;
            let (resp, rejected) = client.inner.rejection.judge(resp, authed);
            let lease_now = match (&lease, rejected) {
                (Some(l), true) => l,
                (Some(l), false) => {
                    if authed {
                        inner.gate.confirm(l);
                    }
                    return Ok(resp);
                }
                (None, _) => return Ok(resp),
            };
            // The gate hears of every rejection, replayed or not: the next request must not send
            // a token the server has refused.
            if inner.gate.reject(lease_now) == Rejection::Final || replays >= inner.max_replays {
                return Ok(resp);
            }
            if !body.rewind() {
                // A one-shot stream: the gate knows, the caller gets the rejection.
                return Ok(resp);
            }
            discard(resp);
            lease = Some(client.lease(deadline)?);
            replays += 1;
            inner.gate.count_replay();
        }
    }
}

/// A request's own deadline ([`RequestBuilder::timeout`]).
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    /// What is left, or the error when nothing is.
    fn remaining(self) -> Result<Duration, Error> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Deadline(self.timeout));
        }
        Ok(left)
    }
}

/// One HTTP exchange's worth of request (without its body): kept so it can be re-sent after a
/// redirect or a rejection.
#[derive(Clone)]
struct RequestHead {
    method: Method,
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// Per-request ureq settings of one hop, when it needs any.
#[derive(Default)]
struct HopConfig<'a> {
    global: Option<Duration>,
    recv_body: Option<Duration>,
    /// `Some` when the hop's proxy differs from the agent's.
    proxy: Option<Option<&'a ureq::Proxy>>,
}

impl Client {
    /// A token from the gate, within the request's deadline when it has one.
    fn lease(&self, deadline: Option<Deadline>) -> Result<Lease, Error> {
        match deadline {
            None => self.inner.gate.lease(),
            Some(d) => match self.inner.gate.lease_until(Some(d.at)) {
                Err(Error::RefreshTimeout(_)) if Instant::now() >= d.at => {
                    Err(Error::Deadline(d.timeout))
                }
                other => other,
            },
        }
    }

    /// Runs one exchange on the agent, with the hop's own settings when it has any.
    fn exec<S: AsSendBody>(
        &self,
        request: Request<S>,
        config: &HopConfig<'_>,
    ) -> Result<Response<Body>, ureq::Error> {
        let agent = &self.inner.net.agent;
        if config.global.is_none() && config.recv_body.is_none() && config.proxy.is_none() {
            return agent.run(request);
        }
        let mut builder = agent.configure_request(request);
        if let Some(global) = config.global {
            builder = builder.timeout_global(Some(global));
        }
        if let Some(recv_body) = config.recv_body {
            builder = builder.timeout_recv_body(Some(recv_body));
        }
        if let Some(proxy) = config.proxy {
            builder = builder.proxy(proxy.cloned());
        }
        agent.run(builder.build())
    }

    /// Sends `req`, following redirects by hand so the token goes only to the API origin. Returns the
    /// final response and whether its request carried the token. The caller passes a `lease` only
    /// when `req` goes to the API origin.
    fn send_following_redirects(
        &self,
        req: &RequestHead,
        lease: Option<&Lease>,
        body: &mut Payload<'_>,
        deadline: Option<Deadline>,
    ) -> Result<(Response<Body>, bool), Error> {
        // Borrowed until a redirect has to change it: the common case copies nothing.
        let mut req = Cow::Borrowed(req);
        let mut redirects = 0;
        // The first hop's origin was checked by the caller; each redirect checks the next one.
        let mut authed = lease.is_some();
        let mut home = authed;
        let mut with_body = true;
        loop {
            // Built in place rather than with `Request::builder()`: every part is already parsed and
            // typed, so there is nothing for the builder to check.
            let mut request = Request::new(());
            *request.method_mut() = req.method.clone();
            *request.uri_mut() = req.uri.clone();
            let headers = request.headers_mut();
            for (n, v) in &req.headers {
                if authed && n == http::header::AUTHORIZATION {
                    continue;
                }
                headers.append(n.clone(), v.clone());
            }
            if let (true, Some(lease)) = (authed, lease) {
                headers.insert(http::header::AUTHORIZATION, lease.authorization().clone());
            }
            let route = self
                .inner
                .net
                .route(&req.uri, home || self.same_origin(&req.uri));
            let config = HopConfig {
                global: deadline.map(Deadline::remaining).transpose()?,
                recv_body: (authed && self.inner.rejection.buffers())
                    .then_some(self.inner.buffer_timeout),
                proxy: route.differs.then_some(route.proxy),
            };
            let sent = match if with_body { body.next() } else { Next::None } {
                Next::None => self.exec(request, &config),
                Next::Bytes(b) => self.exec(request.map(|()| b), &config),
                Next::Reader(r) => self.exec(request.map(|()| SendBody::from_reader(r)), &config),
            };
            let resp = sent.map_err(|e| match (deadline, &e) {
                (Some(d), ureq::Error::Timeout(ureq::Timeout::Global)) => {
                    Error::Deadline(d.timeout)
                }
                _ => NetAgent::error(e, route.proxy),
            })?;
            let status = resp.status();
            if !status.is_redirection() || self.inner.max_redirects == 0 {
                return Ok((resp, authed));
            }
            let Some(next) = resp
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| redirect::resolve_location(&req.uri, l))
            else {
                return Ok((resp, authed));
            };
            if redirects >= self.inner.max_redirects {
                return Err(ureq::Error::TooManyRedirects.into());
            }
            // RFC 9110 §15.4: 303 always, and 301/302 after POST (as every browser does), become GET.
            let to_get = status == StatusCode::SEE_OTHER && req.method != Method::HEAD
                || matches!(status.as_u16(), 301 | 302) && req.method == Method::POST;
            if with_body && !to_get && !body.rewind() {
                // A one-shot body cannot go to the next hop: the caller gets the redirect.
                return Ok((resp, authed));
            }
            redirects += 1;
            discard(resp);
            let next_home = self.same_origin(&next);
            let origin_changes = Origin::of(&req.uri) != Origin::of(&next);
            let req = req.to_mut();
            if to_get {
                req.method = Method::GET;
                with_body = false;
                req.headers.retain(|(n, _)| {
                    n != http::header::CONTENT_TYPE && n != http::header::CONTENT_LENGTH
                });
            }
            if origin_changes {
                // Credentials set by the caller were meant for the origin they were sent to.
                redirect::strip_sensitive(&mut req.headers, &self.inner.sensitive);
            }
            req.uri = next;
            home = next_home;
            authed = lease.is_some() && next_home;
        }
    }
}

/// How much of a response the client drops is read first, so its connection can be reused.
const DRAIN_LIMIT: u64 = 64 * 1024;
/// How long the client reads a response it drops before it gives up and closes the connection.
const DRAIN_TIME: Duration = Duration::from_millis(250);

/// Drops a response the caller will not see (a rejection about to be replayed, a redirect about
/// to be followed). Its body is read first, so the connection can go back to the pool, but only
/// when it declares a length of at most 64 KiB, and for at most 250 ms (checked between reads): a
/// body that trickles is abandoned and its connection closed. A body that sends nothing at all
/// blocks its read until the request's deadline ([`RequestBuilder::timeout`]) or ureq's
/// `timeout_per_read` (set with [`Network::configure_agent`]), when set.
fn discard(resp: Response<Body>) {
    let mut body = resp.into_body();
    if body.content_length().is_none_or(|n| n > DRAIN_LIMIT) {
        return;
    }
    let started = Instant::now();
    let mut reader = body.as_reader();
    let mut buf = [0u8; 4096];
    while started.elapsed() < DRAIN_TIME {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Parses a request URL. It takes the `String` so the `Uri` keeps its buffer instead of copying it.
fn parse_url(url: String) -> Result<Uri, Error> {
    Uri::try_from(url).map_err(|_| Error::url("the request URL does not parse"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The URI a request to `path` with `query` parameters goes to.
    fn resolve(c: &Client, path: &str, query: &[(&str, &str)]) -> Uri {
        let rb = query.iter().fold(c.get(path), |rb, (k, v)| rb.query(k, v));
        parse_url(rb.url).unwrap()
    }

    #[test]
    fn base_url_joining() {
        let c = Client::builder("http://127.0.0.1:1/v1/").build().unwrap();
        assert_eq!(
            resolve(&c, "/users/me", &[]),
            "http://127.0.0.1:1/v1/users/me"
        );
        assert_eq!(
            resolve(&c, "users", &[("a", "1")]),
            "http://127.0.0.1:1/v1/users?a=1"
        );
        assert_eq!(
            resolve(&c, "users", &[("a", "1"), ("b c", "&")]),
            "http://127.0.0.1:1/v1/users?a=1&b+c=%26"
        );
        assert_eq!(
            resolve(&c, "x?b=2", &[("a", "1")]),
            "http://127.0.0.1:1/v1/x?b=2&a=1"
        );
        assert_eq!(
            resolve(&c, "https://other.example/z", &[]),
            "https://other.example/z"
        );
        assert_eq!(resolve(&c, "", &[]), "http://127.0.0.1:1/v1");
        let c = Client::builder("http://127.0.0.1:1").build().unwrap();
        assert_eq!(resolve(&c, "/a", &[]), "http://127.0.0.1:1/a");
        assert_eq!(resolve(&c, "/", &[]), "http://127.0.0.1:1/");
    }

    #[test]
    fn same_origin_takes_the_short_and_the_long_way() {
        let c = Client::builder("https://API.example.com/v1")
            .build()
            .unwrap();
        let same = |u: &str| c.same_origin(&u.parse::<Uri>().unwrap());
        assert!(same("https://api.example.com/v1/x"));
        assert!(same("HTTPS://api.EXAMPLE.com/other"));
        assert!(same("https://api.example.com:443/x"));
        assert!(same("https://user@api.example.com/x"));
        assert!(!same("http://api.example.com/v1/x"));
        assert!(!same("https://api.example.com:8443/v1/x"));
        assert!(!same("https://api.example.com.evil.test/v1/x"));
        assert!(!same("https://evil.test/api.example.com"));
    }

    #[test]
    fn bad_base_urls_are_typed_errors() {
        assert!(matches!(
            Client::builder("not a url").build(),
            Err(Error::InvalidUrl(_))
        ));
        assert!(matches!(
            Client::builder("/relative").build(),
            Err(Error::InvalidUrl(_))
        ));
        assert!(matches!(
            Client::builder("ftp://x").build(),
            Err(Error::InvalidUrl(_))
        ));
    }

    #[test]
    fn gate_and_token_settings_conflict() {
        let gate = Gate::builder().build().unwrap();
        let r = Client::builder("http://127.0.0.1:1")
            .gate(gate)
            .token(Token::new("a"))
            .build();
        assert!(matches!(r, Err(Error::Config(_))));
    }
}
