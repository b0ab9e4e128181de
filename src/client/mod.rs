//! The [`Client`], its builder and its requests: base URL joining, origin scoping, request bodies
//! and deadlines, on top of a `ureq::Agent` and a [`Gate`]; the exchange itself (redirects,
//! rejections, replays) is in [`exchange`].

use std::fmt;
use std::io::{Read, Seek};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::Body;
use ureq::http::uri::Authority;
use ureq::http::{self, HeaderName, HeaderValue, Method, Response, Uri};

mod builder;
mod exchange;

pub use builder::ClientBuilder;
use exchange::{Deadline, RequestHead};

use crate::background::BackgroundRefresher;
use crate::body::Payload;
use crate::error::Error;
use crate::form::{form_encode, form_pairs};
use crate::gate::{Gate, Stats};
use crate::net::NetAgent;
use crate::origin::Origin;
use crate::rejection;
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

impl Client {
    /// A builder for a client whose API lives at `base_url` (e.g. `https://api.example.com/v1`).
    /// Relative paths given to requests are joined to it; the token is sent only to its origin.
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(base_url.into())
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
        self.client.exchange(&req, &mut body, deadline)
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
