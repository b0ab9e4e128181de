//! [`ClientBuilder`]: the client's settings, each default stated on its setter, and the build
//! that turns them into a [`Client`] (its gate, its agent, its background refresher).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ureq::http::{self, HeaderName};

use super::{Client, Inner};
use crate::background::BackgroundRefresher;
use crate::error::Error;
use crate::gate::{Gate, GateBuilder};
use crate::net::Network;
use crate::origin::Origin;
use crate::refresh::{OAuth2, Refresh};
use crate::rejection;
use crate::store::TokenStore;
use crate::token::Token;

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

impl ClientBuilder {
    pub(super) fn new(base: String) -> ClientBuilder {
        ClientBuilder {
            base,
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
    /// [`RequestBuilder::timeout`](super::RequestBuilder::timeout).
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
