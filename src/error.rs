//! Errors: [`Error`] for everything the client returns, [`RefreshError`] for why a refresh failed.
//!
//! Both are cheap to clone (an `Arc` inside): one refresh failure is handed to every thread that waited
//! for it. Neither ever contains a token.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What went wrong with a request made through the [`Client`](crate::Client) or a
/// [`Gate`](crate::Gate).
///
/// Classify with the predicates rather than by matching every variant: the enum is
/// `#[non_exhaustive]` and grows.
///
/// A response the server *rejected* (e.g. a 401 after a refresh and replay) is not an error: it is
/// returned as the response, so the caller can read its status and body.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No usable token can be had without the user logging in again: the authorization server refused
    /// the refresh permanently (e.g. `invalid_grant`), or there is no token and nothing to refresh with.
    ///
    /// The client fails fast with this error, without network, until
    /// [`Client::set_token`](crate::Client::set_token) installs a new token.
    #[error("login required{}", match .0 { Some(e) => format!(" ({e})"), None => String::new() })]
    LoginRequired(Option<RefreshError>),
    /// A refresh failed for a reason that may pass (network, timeout, 5xx, 429). The gate backs off before
    /// it tries again; see [`RefreshError::retry_after`].
    #[error(transparent)]
    Refresh(RefreshError),
    /// This thread waited longer than the configured `refresh_timeout` for another thread's refresh.
    #[error("gave up waiting for the token refresh after {0:?}")]
    RefreshTimeout(Duration),
    /// The refresher panicked. The gate is ready to try again on the next call.
    #[error("the token refresher panicked")]
    RefresherPanicked,
    /// The API request itself failed (connection, timeout, protocol error, body too large).
    #[error("request failed: {0}")]
    Transport(Arc<ureq::Error>),
    /// TLS failed: the server's certificate is not trusted (e.g. `UnknownIssuer`: add its CA with
    /// [`Network::add_root_certificates_pem`](crate::Network::add_root_certificates_pem)), is not
    /// valid for the host name, or has expired; the server refused the client certificate; or the
    /// handshake failed. Not transient: trying again does not change a certificate.
    #[error("TLS failed: {0}")]
    Tls(Arc<ureq::Error>),
    /// The request could not get through the proxy; see [`ProxyError`].
    #[error(transparent)]
    Proxy(ProxyError),
    /// The request's own deadline ([`RequestBuilder::timeout`](crate::RequestBuilder::timeout))
    /// passed: while it waited for a token, or before the response arrived. The duration is the
    /// timeout that was set.
    #[error("the request did not complete within its timeout of {0:?}")]
    Deadline(Duration),
    /// A URL given to the client or builder is not usable; the text says why.
    #[error("invalid URL: {0}")]
    InvalidUrl(Arc<str>),
    /// A header name or value given to a request is not valid HTTP; the text names the header.
    #[error("invalid header: {0}")]
    InvalidHeader(Arc<str>),
    /// The access token contains characters that cannot be sent in an HTTP header.
    #[error("the access token cannot be sent in an HTTP header")]
    InvalidToken,
    /// The body given to `send_json` could not be serialised.
    #[error("could not serialise the JSON body: {0}")]
    Json(Arc<serde_json::Error>),
    /// The client or gate was configured in a way that cannot work; the text says how.
    #[error("configuration: {0}")]
    Config(Arc<str>),
    /// The [`TokenStore`](crate::TokenStore) could not be read or written: an unreadable, empty,
    /// truncated, garbled or newer-version token file, or an I/O failure. See [`StoreError::kind`].
    #[error(transparent)]
    Store(StoreError),
    /// A login failed ([`DeviceLogin`](crate::login::DeviceLogin),
    /// [`BrowserLogin`](crate::login::BrowserLogin), discovery); see [`LoginError::kind`]. Nothing
    /// was installed and a stored session is unchanged.
    #[error(transparent)]
    Login(LoginError),
    /// [`Client::logout`](crate::Client::logout) cleared the session here (the gate and the
    /// store), but the authorization server did not confirm the revocation of its refresh token
    /// (RFC 7009): the server may still honour it until it expires. See
    /// [`RefreshError::is_transient`] for whether trying again could have helped.
    #[error(transparent)]
    Revocation(RefreshError),
}

impl Error {
    /// Whether the user must log in again (see [`Error::LoginRequired`]).
    ///
    /// ```
    /// use tokengate::{Error, RefreshError};
    ///
    /// let e = Error::LoginRequired(Some(RefreshError::permanent("invalid_grant")));
    /// assert!(e.is_login_required() && !e.is_transient() && !e.is_configuration());
    /// assert_eq!(e.to_string(), "login required (token refresh failed: invalid_grant)");
    /// ```
    pub fn is_login_required(&self) -> bool {
        matches!(self, Error::LoginRequired(_))
    }

    /// Whether trying again later may succeed: a transient refresh failure, a refresh wait that timed
    /// out, a panicked refresher, a transport failure of the request, a missed deadline, a proxy
    /// failure other than refused credentials, a store that could not be read or reached
    /// ([`StoreErrorKind::Io`], [`StoreErrorKind::Unavailable`]), or a login or revocation that
    /// failed for such a reason ([`LoginError::is_transient`]). TLS failures are not transient
    /// (see [`is_tls`](Error::is_tls)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokengate::{Error, RefreshError};
    ///
    /// assert!(Error::Refresh(RefreshError::transient("503 Service Unavailable")).is_transient());
    /// assert!(Error::RefreshTimeout(Duration::from_secs(10)).is_transient());
    /// assert!(!Error::Refresh(RefreshError::configuration("invalid_client")).is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Refresh(e) => e.is_transient(),
            Error::RefreshTimeout(_)
            | Error::RefresherPanicked
            | Error::Transport(_)
            | Error::Deadline(_) => true,
            Error::Proxy(e) => e.is_transient(),
            Error::Store(e) => matches!(e.kind(), StoreErrorKind::Io | StoreErrorKind::Unavailable),
            Error::Login(e) => e.is_transient(),
            Error::Revocation(e) => e.is_transient(),
            _ => false,
        }
    }

    /// Whether the client's configuration is at fault: [`Error::Config`], a TLS failure
    /// ([`Error::Tls`]: an untrusted certificate is not fixed by trying again), a proxy that
    /// refused the credentials, a refresh the authorization server refused because of the client
    /// (see [`RefreshError::is_configuration`]), a store whose location cannot be used as it is
    /// (see [`StoreError::is_configuration`]), or a login refused for the same reasons
    /// ([`LoginError::is_configuration`]). An operator must fix it; logging in again would not
    /// help.
    ///
    /// ```
    /// use tokengate::{Error, RefreshError, StoreError, StoreErrorKind};
    ///
    /// assert!(Error::Refresh(RefreshError::configuration("invalid_client")).is_configuration());
    /// let read_only = StoreError::new(StoreErrorKind::ReadOnly, "token.json is read-only");
    /// assert!(Error::Store(read_only).is_configuration());
    /// assert!(!Error::Refresh(RefreshError::transient("timeout")).is_configuration());
    /// ```
    pub fn is_configuration(&self) -> bool {
        match self {
            Error::Config(_) | Error::Tls(_) => true,
            Error::Proxy(e) => e.is_auth_refused(),
            Error::Refresh(e) | Error::Revocation(e) => e.is_configuration(),
            Error::Store(e) => e.is_configuration(),
            Error::Login(e) => e.is_configuration(),
            _ => false,
        }
    }

    /// Whether TLS failed, for the API request ([`Error::Tls`]), for the token refresh
    /// ([`RefreshErrorKind::Tls`]) or with the token store ([`StoreErrorKind::Tls`]): a
    /// certificate or host name problem that only a change of configuration (or of the server's
    /// certificate) fixes.
    ///
    /// ```
    /// use tokengate::{Error, StoreError, StoreErrorKind};
    ///
    /// let untrusted = StoreError::new(StoreErrorKind::Tls, "the Redis server's certificate is not trusted");
    /// assert!(Error::Store(untrusted).is_tls());
    /// assert!(!Error::InvalidToken.is_tls());
    /// ```
    pub fn is_tls(&self) -> bool {
        match self {
            Error::Tls(_) => true,
            Error::Store(e) => e.kind() == StoreErrorKind::Tls,
            _ => self
                .refresh_error()
                .is_some_and(|e| e.kind() == RefreshErrorKind::Tls),
        }
    }

    /// The store failure behind this error, if there is one.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            Error::Store(e) => Some(e),
            _ => None,
        }
    }

    /// The refresh failure behind this error, if there is one.
    pub fn refresh_error(&self) -> Option<&RefreshError> {
        match self {
            Error::LoginRequired(Some(e)) | Error::Refresh(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn config(msg: impl Into<String>) -> Self {
        Error::Config(Arc::from(msg.into()))
    }

    pub(crate) fn url(msg: impl Into<String>) -> Self {
        Error::InvalidUrl(Arc::from(msg.into()))
    }
}

impl From<LoginError> for Error {
    fn from(e: LoginError) -> Self {
        Error::Login(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<ureq::Error> for Error {
    fn from(e: ureq::Error) -> Self {
        Error::Transport(Arc::new(e))
    }
}

/// A request that could not get through its proxy: the proxy could not be reached, refused the
/// tunnel or the credentials (HTTP `407`, a SOCKS authentication failure), or could not reach the
/// server. Names the proxy (never its credentials), which tells a proxy that came from the
/// environment apart from a server that is down.
#[derive(Clone)]
pub struct ProxyError {
    inner: Arc<ProxyInner>,
}

struct ProxyInner {
    proxy: Option<String>,
    error: ureq::Error,
}

impl ProxyError {
    pub(crate) fn new(proxy: Option<String>, error: ureq::Error) -> Self {
        ProxyError {
            inner: Arc::new(ProxyInner { proxy, error }),
        }
    }

    /// The proxy as `scheme://host:port`, when known.
    pub fn proxy(&self) -> Option<&str> {
        self.inner.proxy.as_deref()
    }

    /// ureq's error.
    pub fn transport_error(&self) -> &ureq::Error {
        &self.inner.error
    }

    /// Whether the proxy refused the credentials (or asked for some that were not given).
    pub fn is_auth_refused(&self) -> bool {
        match &self.inner.error {
            ureq::Error::ConnectProxyFailed(reason) => reason.contains("407"),
            ureq::Error::Io(e) => {
                e.kind() == std::io::ErrorKind::PermissionDenied
                    || e.to_string().contains("no acceptable auth methods")
            }
            _ => false,
        }
    }

    /// Whether trying again may succeed: every proxy failure except refused credentials.
    pub fn is_transient(&self) -> bool {
        !self.is_auth_refused()
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.proxy {
            Some(p) => write!(f, "through proxy {p}: {}", self.inner.error),
            None => write!(f, "proxy: {}", self.inner.error),
        }
    }
}

impl fmt::Debug for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyError")
            .field("proxy", &self.inner.proxy)
            .field("error", &self.inner.error)
            .finish()
    }
}

impl std::error::Error for ProxyError {}

/// The broad class of a [`RefreshError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshErrorKind {
    /// The authorization server answered with an OAuth2 error response (RFC 6749 §5.2).
    OAuth,
    /// The token endpoint answered with an HTTP status that is neither success nor an OAuth2 error.
    Status,
    /// The token endpoint could not be reached or its answer not read (connection, timeout).
    Transport,
    /// TLS with the token endpoint failed: its certificate is not trusted, not valid for its host
    /// name or expired, or it refused the client certificate. A configuration failure
    /// ([`RefreshError::is_configuration`]): retrying cannot make a certificate trusted.
    Tls,
    /// The proxy to the token endpoint could not be reached, refused the connection or its
    /// credentials, or could not reach the token endpoint.
    Proxy,
    /// The answer was not a valid token response (not JSON, a required field missing or malformed).
    InvalidResponse,
    /// There is no refresh token (or no token at all) to refresh with.
    NoRefreshToken,
    /// A custom refresher reported the failure.
    Custom,
    /// The API rejected the token a refresh had just produced, before it ever accepted it; the
    /// next refresh waits a growing backoff (see [`Gate::reject`](crate::Gate::reject)).
    Rejected,
    /// The [`TokenStore`](crate::TokenStore) no longer holds the session this gate had saved or
    /// loaded there: another process (or another gate on the store) logged out
    /// ([`Gate::logout`](crate::Gate::logout)). Permanent: a new login is required, and no
    /// refresh was attempted.
    LoggedOut,
}

/// An OAuth2 error response from the token endpoint (RFC 6749 §5.2). Read its fields; build one
/// with [`OAuthError::parse`] (the struct may gain fields, so it cannot be built literally).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthError {
    pub(crate) error: String,
    pub(crate) error_description: Option<String>,
    pub(crate) error_uri: Option<String>,
}

impl OAuthError {
    /// `error`: the error code, e.g. `invalid_grant` (RFC 6749 §5.2).
    pub fn error(&self) -> &str {
        &self.error
    }

    /// `error_description`: human-readable text from the server, if any (RFC 6749 §5.2), with
    /// any secret the request carried replaced by `[redacted]`.
    pub fn error_description(&self) -> Option<&str> {
        self.error_description.as_deref()
    }

    /// `error_uri`: a page about the error, if any (RFC 6749 §5.2).
    pub fn error_uri(&self) -> Option<&str> {
        self.error_uri.as_deref()
    }

    /// Parses an RFC 6749 §5.2 error body: a JSON object with a string `error` and optional string
    /// `error_description` and `error_uri`. Other fields are ignored; a field of the wrong type counts
    /// as absent.
    ///
    /// Returns `None` when the body is not such an object (not JSON, not an object, or no string
    /// `error`). Never panics, whatever the bytes.
    ///
    /// ```
    /// use tokengate::OAuthError;
    ///
    /// let e = OAuthError::parse(br#"{"error":"invalid_grant","error_description":"revoked"}"#).unwrap();
    /// assert_eq!(e.error(), "invalid_grant");
    /// assert!(e.is_permanent());
    /// assert_eq!(OAuthError::parse(b"<html>502 Bad Gateway</html>"), None);
    /// ```
    pub fn parse(body: &[u8]) -> Option<OAuthError> {
        let serde_json::Value::Object(map) = serde_json::from_slice(body).ok()? else {
            return None;
        };
        let text = |k: &str| {
            map.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Some(OAuthError {
            error: text("error")?,
            error_description: text("error_description"),
            error_uri: text("error_uri"),
        })
    }

    /// Whether this code means the grant itself is dead (`invalid_grant`), so only a new login
    /// helps. `invalid_client` and `unauthorized_client` are not: they say the client's own
    /// credentials or registration are refused, which a login cannot fix (see the table on
    /// [`RefreshError`]).
    pub fn is_permanent(&self) -> bool {
        self.error == "invalid_grant"
    }
}

/// Why a token refresh failed, and what it means for the session: transient (the gate backs off
/// and tries again; requests wait), permanent (only a new login helps) or configuration (an
/// operator must fix the client; the session is kept).
///
/// Cheap to clone; every thread that waited on the failed refresh gets a clone of the same error.
/// Custom refreshers build one with [`RefreshError::transient`], [`RefreshError::permanent`] or
/// [`RefreshError::configuration`].
///
/// # How the OAuth2 refresher classifies the token endpoint's answers
///
/// RFC 6749 §5.2 puts every grant error in a `400` (`401` for client authentication) with an
/// `error` code. The code decides whenever there is one, whatever the status it came with (a `200`
/// included); the status decides only when there is no code.
///
/// | the token endpoint answered | class | the gate then |
/// |---|---|---|
/// | `invalid_grant` (revoked, expired or already used refresh token) | permanent | login required; fails fast until `set_token` |
/// | `invalid_client`, `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`, `invalid_request` | configuration | keeps the session; retries after its longest backoff; requests fail at once meanwhile |
/// | `temporarily_unavailable`, `slow_down`, `server_error` (any status) | transient | backs off; requests wait for the next attempt |
/// | any other code | by its status, as below | |
/// | no code: `5xx`, `408`, `425`, `429` | transient | backs off, honouring `Retry-After` up to its cap |
/// | no code: `3xx`, `400`, `401`, `403`, `404` or any other status | configuration | as configuration above: a wrong or moved endpoint is not the user's to fix |
/// | `2xx` that is not a usable token response (truncated, not JSON, no `access_token`) | transient | backs off; a rotated refresh token it carried is kept |
/// | connection refused, reset, timeout, DNS failure | transient | backs off |
/// | TLS certificate or host name not trusted | configuration | retrying cannot make a certificate trusted |
///
/// ```
/// use std::time::Duration;
/// use tokengate::RefreshError;
///
/// let e = RefreshError::transient("token service overloaded").with_retry_after(Duration::from_secs(5));
/// assert!(e.is_transient());
/// assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
/// ```
#[derive(Clone)]
pub struct RefreshError {
    inner: Arc<Inner>,
}

/// What a refresh failure means for the session: see [`RefreshError`]'s table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// May pass by itself: back off and try again.
    Transient,
    /// The grant is dead: only a new login helps.
    Login,
    /// The client's own configuration is refused (credentials, trust, endpoint): an operator must
    /// fix it. The session is kept.
    Configuration,
}

#[derive(Clone)]
struct Inner {
    kind: RefreshErrorKind,
    class: Class,
    /// What failed, the start of `Display`: a refresh, or a revocation.
    what: &'static str,
    message: String,
    /// When the gate will try again, set by the gate when it backs off after this failure.
    next_attempt: Option<std::time::Instant>,
    status: Option<u16>,
    retry_after: Option<Duration>,
    oauth: Option<OAuthError>,
    body_excerpt: Option<String>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl RefreshError {
    fn build(kind: RefreshErrorKind, class: Class, message: impl Into<String>) -> Inner {
        Inner {
            kind,
            class,
            what: "token refresh failed",
            message: message.into(),
            next_attempt: None,
            status: None,
            retry_after: None,
            oauth: None,
            body_excerpt: None,
            source: None,
        }
    }

    /// A failure only a new login can fix (the grant is dead: revoked, expired, already used); the
    /// client enters the login-required state.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::from(Self::build(RefreshErrorKind::Custom, Class::Login, message))
    }

    /// A failure that may pass (network, overload, an odd answer); the gate backs off and tries
    /// again, and requests wait for that attempt when it comes within their budget.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::from(Self::build(
            RefreshErrorKind::Custom,
            Class::Transient,
            message,
        ))
    }

    /// A failure of the client's own configuration that only an operator can fix (wrong client
    /// credentials, an untrusted certificate, a wrong endpoint). The session is kept; the gate
    /// tries again only after its longest backoff, and requests fail at once meanwhile.
    ///
    /// ```
    /// let e = tokengate::RefreshError::configuration("client certificate rejected");
    /// assert!(e.is_configuration() && !e.is_transient() && !e.is_permanent());
    /// ```
    pub fn configuration(message: impl Into<String>) -> Self {
        Self::from(Self::build(
            RefreshErrorKind::Custom,
            Class::Configuration,
            message,
        ))
    }

    /// Sets how long the server asked us to wait before trying again (e.g. from `Retry-After`).
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        Arc::make_mut(&mut self.inner).retry_after = Some(after);
        self
    }

    pub(crate) fn new(kind: RefreshErrorKind, class: Class, message: impl Into<String>) -> Self {
        Self::from(Self::build(kind, class, message))
    }

    /// Notes when the gate will try again. Set once, by the gate, before the error is shared.
    pub(crate) fn with_next_attempt(mut self, at: std::time::Instant) -> Self {
        Arc::make_mut(&mut self.inner).next_attempt = Some(at);
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        Arc::make_mut(&mut self.inner).status = Some(status);
        self
    }

    pub(crate) fn with_oauth(mut self, oauth: OAuthError) -> Self {
        Arc::make_mut(&mut self.inner).oauth = Some(oauth);
        self
    }

    pub(crate) fn with_body_excerpt(mut self, excerpt: String) -> Self {
        Arc::make_mut(&mut self.inner).body_excerpt = Some(excerpt);
        self
    }

    /// Passes every text that may quote the server (the message, the OAuth2 `error`,
    /// `error_description` and `error_uri`, the body excerpt) through `scrub`, which replaces the
    /// secrets the refresher knows with `[redacted]`.
    pub(crate) fn scrubbed(mut self, scrub: impl Fn(&str) -> String) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        inner.message = scrub(&inner.message);
        if let Some(oauth) = &mut inner.oauth {
            oauth.error = scrub(&oauth.error);
            oauth.error_description = oauth.error_description.as_deref().map(&scrub);
            oauth.error_uri = oauth.error_uri.as_deref().map(&scrub);
        }
        inner.body_excerpt = inner.body_excerpt.as_deref().map(&scrub);
        self
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Arc::make_mut(&mut self.inner).source = Some(Arc::new(source));
        self
    }

    /// The same failure, of a revocation (RFC 7009) rather than a refresh: its text says so.
    pub(crate) fn of_revocation(mut self) -> Self {
        Arc::make_mut(&mut self.inner).what = "token revocation failed";
        self
    }

    /// Whether two errors are clones of one failure (tests check that waiters share one error).
    #[cfg(test)]
    pub(crate) fn shares_with(&self, other: &RefreshError) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The message alone, without the prefix and details `Display` adds.
    pub(crate) fn message(&self) -> &str {
        &self.inner.message
    }

    /// The broad class of the failure.
    pub fn kind(&self) -> RefreshErrorKind {
        self.inner.kind
    }

    /// Whether only a new login can fix this (see [`Error::LoginRequired`]).
    ///
    /// ```
    /// let e = tokengate::RefreshError::permanent("refresh token revoked");
    /// assert!(e.is_permanent() && !e.is_transient() && !e.is_configuration());
    /// ```
    pub fn is_permanent(&self) -> bool {
        self.inner.class == Class::Login
    }

    /// Whether a later attempt may succeed by itself.
    pub fn is_transient(&self) -> bool {
        self.inner.class == Class::Transient
    }

    /// Whether the client's configuration was refused (e.g. `invalid_client`, an untrusted
    /// certificate): an operator must fix it; logging in again would not help.
    pub fn is_configuration(&self) -> bool {
        self.inner.class == Class::Configuration
    }

    /// How long until the gate tries again, when it is backing off after this failure; zero once
    /// that time has come. `None` when no further attempt is scheduled (e.g. login required).
    pub fn next_attempt_in(&self) -> Option<Duration> {
        self.inner
            .next_attempt
            .map(|at| at.saturating_duration_since(std::time::Instant::now()))
    }

    /// How long the server asked us to wait (`Retry-After`), if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The token endpoint's HTTP status, if it answered.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// The OAuth2 error response (RFC 6749 §5.2), if the server sent one.
    pub fn oauth_error(&self) -> Option<&OAuthError> {
        self.inner.oauth.as_ref()
    }

    /// The start (200 characters) of an error answer's body that is not JSON (e.g. an HTML page
    /// from a proxy), for diagnostics. Never part of `Display` or `Debug`.
    ///
    /// Never kept for a `2xx` answer: a success body that is not a usable token response
    /// (form-encoded, cut short) may hold the new tokens. In what is kept, and in the OAuth2 error
    /// fields, the built-in [`OAuth2`](crate::OAuth2) refresher replaces every secret it knows with
    /// `[redacted]`: the refresh and access tokens it presented, any token the answer carries, the
    /// client secret and the Basic credentials (raw, form-encoded and base64). A secret the server
    /// made up and the client never saw cannot be recognised.
    pub fn body_excerpt(&self) -> Option<&str> {
        self.inner.body_excerpt.as_deref()
    }
}

impl From<Inner> for RefreshError {
    fn from(inner: Inner) -> Self {
        RefreshError {
            inner: Arc::new(inner),
        }
    }
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.inner.what)?;
        f.write_str(&self.inner.message)?;
        if let Some(oauth) = &self.inner.oauth {
            write!(f, ": {}", oauth.error)?;
            if let Some(d) = &oauth.error_description {
                write!(f, " ({d})")?;
            }
        }
        if let Some(status) = self.inner.status {
            write!(f, " [HTTP {status}]")?;
        }
        if let Some(wait) = self.next_attempt_in() {
            write!(f, "; next attempt in {} ms", wait.as_millis())?;
        }
        Ok(())
    }
}

impl fmt::Debug for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshError")
            .field("kind", &self.inner.kind)
            .field("class", &self.inner.class)
            .field("message", &self.inner.message)
            .field("status", &self.inner.status)
            .field("retry_after", &self.inner.retry_after)
            .field("oauth", &self.inner.oauth)
            .finish_non_exhaustive()
    }
}

impl std::error::Error for RefreshError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The broad class of a [`LoginError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginErrorKind {
    /// The user (or the authorization server on the user's behalf) refused the authorization:
    /// `access_denied` (RFC 8628 §3.5, RFC 6749 §4.1.2.1).
    AccessDenied,
    /// The device code expired before the user approved it: `expired_token` (RFC 8628 §3.5), or
    /// its `expires_in` passed while polling.
    ExpiredToken,
    /// The login was cancelled through its [`Cancel`](crate::login::Cancel).
    Cancelled,
    /// The browser did not come back to the loopback redirect within the login's
    /// [`timeout`](crate::login::BrowserLogin::timeout).
    TimedOut,
    /// The redirect's `state` is not the one this login sent (RFC 6749 §10.12): the answer
    /// belongs to another login, or was forged. Nothing was exchanged.
    StateMismatch,
    /// The redirect's `iss` names another authorization server than the one expected (RFC 9207,
    /// a mix-up), or is missing where the server advertises it. Nothing was exchanged.
    IssuerMismatch,
    /// The issuer's metadata (RFC 8414, OpenID Connect Discovery) could not be used: not found,
    /// not JSON, a required endpoint missing, an `issuer` that is not the one asked for, or an
    /// endpoint that is plain `http` off loopback.
    Discovery,
    /// The authorization server answered with an error: an OAuth2 error code other than the ones
    /// with kinds of their own (see [`LoginError::oauth_error`], e.g. `invalid_grant` for a wrong
    /// PKCE verifier, `invalid_client`), or an HTTP status that is not a success (see
    /// [`LoginError::status`]).
    Server,
    /// The authorization server could not be reached or its answer not read (connection,
    /// timeout).
    Transport,
    /// TLS with the authorization server failed (an untrusted or expired certificate, a host name
    /// that does not match, a refused client certificate).
    Tls,
    /// The proxy to the authorization server could not be reached, refused the connection or its
    /// credentials, or could not reach the server.
    Proxy,
    /// An answer was not what the protocol says it must be (not JSON, a required field missing or
    /// of the wrong type).
    InvalidResponse,
    /// The login is configured in a way that cannot work (no client id, a URL that does not
    /// parse, plain `http` off loopback, no loopback port to listen on); the message says what.
    Configuration,
}

/// Why a login ([`DeviceLogin`](crate::login::DeviceLogin),
/// [`BrowserLogin`](crate::login::BrowserLogin), [`Metadata::discover`](crate::login::Metadata::discover))
/// failed. A failed login changes nothing: no token is installed, and a session already stored
/// stays as it was.
///
/// Cheap to clone. Classify with [`kind`](LoginError::kind) and the predicates. Never holds a
/// secret: the authorization code, the PKCE verifier, the device code, the tokens and the client
/// secret are kept out of its text, and replaced with `[redacted]` where the server's own text
/// (`error_description`, `error_uri`) repeats one of them. A transport failure's cause is returned
/// by [`source`](std::error::Error::source), not repeated in `Display`.
///
/// ```no_run
/// use tokengate::LoginErrorKind;
/// use tokengate::login::DeviceLogin;
///
/// let login = DeviceLogin::new("https://auth.example.com/device", "https://auth.example.com/token")
///     .client_id("my-cli");
/// match login.run(|p| eprintln!("Open {} and enter {}", p.verification_uri(), p.user_code())) {
///     Ok(token) => { /* client.login(token)? */ }
///     Err(e) if e.kind() == LoginErrorKind::AccessDenied => eprintln!("You said no."),
///     Err(e) if e.is_transient() => eprintln!("Try again later: {e}"),
///     Err(e) => eprintln!("{e}"),
/// }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct LoginError {
    inner: Arc<LoginInner>,
}

struct LoginInner {
    kind: LoginErrorKind,
    class: Class,
    message: String,
    status: Option<u16>,
    oauth: Option<OAuthError>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl LoginError {
    /// An error of `kind` saying `message`, classed as the user's doing (neither transient nor
    /// configuration) unless the kind says otherwise.
    pub(crate) fn new(kind: LoginErrorKind, message: impl Into<String>) -> Self {
        let class = match kind {
            LoginErrorKind::Transport => Class::Transient,
            LoginErrorKind::Configuration | LoginErrorKind::Discovery | LoginErrorKind::Tls => {
                Class::Configuration
            }
            _ => Class::Login,
        };
        LoginError {
            inner: Arc::new(LoginInner {
                kind,
                class,
                message: message.into(),
                status: None,
                oauth: None,
                source: None,
            }),
        }
    }

    pub(crate) fn configuration(message: impl Into<String>) -> Self {
        LoginError::new(LoginErrorKind::Configuration, message)
    }

    fn inner_mut(&mut self) -> &mut LoginInner {
        Arc::get_mut(&mut self.inner).expect("a login error is changed only before it is shared")
    }

    pub(crate) fn with_class(mut self, class: Class) -> Self {
        self.inner_mut().class = class;
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.inner_mut().status = Some(status);
        self
    }

    pub(crate) fn with_oauth(mut self, oauth: OAuthError) -> Self {
        self.inner_mut().oauth = Some(oauth);
        self
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.inner_mut().source = Some(Arc::new(source));
        self
    }

    /// The login error for a failed request to the authorization server made through the
    /// OAuth2 refresher's machinery, `doing` what (e.g. "the token request"): the error code
    /// decides the kind (`access_denied`, `expired_token` have their own), then what failed
    /// (transport, TLS, proxy, an unreadable answer, a status).
    pub(crate) fn from_refresh(e: RefreshError, doing: &str) -> Self {
        use LoginErrorKind as K;
        let r = &*e.inner;
        let (kind, message) = match (r.kind, r.oauth.as_ref().map(|o| o.error.as_str())) {
            (_, Some("access_denied")) => (K::AccessDenied, "the authorization was denied"),
            (_, Some("expired_token")) => (K::ExpiredToken, "the device code expired"),
            (RefreshErrorKind::Tls, _) => (K::Tls, "TLS with the authorization server failed"),
            (RefreshErrorKind::Proxy, _) => (
                K::Proxy,
                "could not reach the authorization server through the proxy",
            ),
            // No cause: the network settings could not be used (the message says why).
            (RefreshErrorKind::Transport, _) if r.source.is_none() => {
                (K::Configuration, r.message.as_str())
            }
            (RefreshErrorKind::Transport, _) => {
                (K::Transport, "could not reach the authorization server")
            }
            (RefreshErrorKind::InvalidResponse, _) => (K::InvalidResponse, r.message.as_str()),
            _ => (K::Server, "the authorization server refused"),
        };
        let class = match kind {
            K::AccessDenied | K::ExpiredToken => Class::Login,
            // Whatever the refresher's table says of the code or status (a refused client is
            // configuration, a 5xx transient); `invalid_grant` here is a refused code or
            // verifier, not a dead session: neither transient nor configuration.
            _ => r.class,
        };
        LoginError {
            inner: Arc::new(LoginInner {
                kind,
                class,
                message: format!("{doing}: {message}"),
                status: r.status,
                oauth: r.oauth.clone(),
                source: r.source.clone(),
            }),
        }
    }

    /// The broad class of the failure.
    pub fn kind(&self) -> LoginErrorKind {
        self.inner.kind
    }

    /// Whether trying the same login again later may succeed with nothing changed: the server or
    /// the network failed (unreachable, a timeout, a `5xx`, `429`, `temporarily_unavailable`),
    /// not the user or the configuration.
    pub fn is_transient(&self) -> bool {
        self.inner.class == Class::Transient
    }

    /// Whether the login's configuration is at fault and an operator must fix it: a refused
    /// client (`invalid_client`, `unauthorized_client`...), an untrusted certificate, unusable
    /// metadata, a wrong endpoint, plain `http` off loopback.
    pub fn is_configuration(&self) -> bool {
        self.inner.class == Class::Configuration
    }

    /// The authorization server's HTTP status, when it answered with one that is not a success.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// The OAuth2 error the authorization server sent (RFC 6749 §4.1.2.1, §5.2; RFC 8628 §3.5), if
    /// it sent one.
    pub fn oauth_error(&self) -> Option<&OAuthError> {
        self.inner.oauth.as_ref()
    }
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "login failed: {}", self.inner.message)?;
        if let Some(oauth) = &self.inner.oauth {
            write!(f, ": {}", oauth.error)?;
            if let Some(d) = &oauth.error_description {
                write!(f, " ({d})")?;
            }
        }
        if let Some(status) = self.inner.status {
            write!(f, " [HTTP {status}]")?;
        }
        Ok(())
    }
}

impl fmt::Debug for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginError")
            .field("kind", &self.inner.kind)
            .field("class", &self.inner.class)
            .field("message", &self.inner.message)
            .field("status", &self.inner.status)
            .field("oauth", &self.inner.oauth)
            .finish_non_exhaustive()
    }
}

impl std::error::Error for LoginError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The broad class of a [`StoreError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The stored data is empty (a zero-length or whitespace-only file).
    Empty,
    /// The stored data is not a token: not JSON, cut short, too large, or a field is missing or has
    /// the wrong type.
    Malformed,
    /// The stored data is in a format version this build does not know (e.g. written by a newer
    /// version of the program).
    UnsupportedVersion,
    /// Reading or writing failed (permissions, a directory where the file should be, a full disk).
    Io,
    /// The store's exclusive lock could not be taken in time (another process holds it).
    LockTimeout,
    /// The store cannot be reached: no credential store on this system (e.g. no Secret Service on
    /// the session bus of a headless Linux), or a Redis server that refuses or drops connections
    /// or does not answer in time. Transient: it may be back later. The token is never kept
    /// anywhere else instead.
    Unavailable,
    /// The store refused access: wrong Redis credentials or an ACL that forbids a command, a locked
    /// keychain or a credential prompt the user declined.
    Denied,
    /// The store's path, or a file beside it (a [`FileStore`](crate::FileStore)'s `<path>.lock`),
    /// is there but is not a regular file: a FIFO, a directory, a socket or a device. It is never
    /// opened (a FIFO would block the reader forever); the message names the path and what it is.
    /// An operator must remove or move it.
    NotRegularFile,
    /// The store's directory cannot be written (a read-only file system, or a directory this user
    /// may not create files in): tokens can be read but neither saved nor shared between processes,
    /// since the lock file cannot be created either. An operator must fix it; retrying will not.
    ReadOnly,
    /// A file of the store is there but its owner or mode forbids its use: the token file can be
    /// read by other users (group or world permissions) and its mode cannot be tightened to
    /// `0600` because this user does not own it (it is not used), the token file cannot be read
    /// by this user, or the lock file cannot be opened for writing by this user (refreshes
    /// cannot be coordinated). An operator must fix its
    /// owner or mode; retrying will not.
    Permissions,
    /// A save was refused because this process no longer held the store's exclusive section and
    /// another process has saved since (a `RedisStore` lease that expired
    /// during a slow refresh). The newer stored token was kept.
    LeaseLost,
    /// TLS with the store's server failed (a `RedisStore` at a `rediss://` URL): its certificate
    /// is not trusted or not valid for its host name, the server refused (or wanted) a client
    /// certificate, or the handshake failed. A configuration failure
    /// ([`StoreError::is_configuration`]): trying again does not change a certificate.
    Tls,
    /// The store cannot do what was asked: a custom store that does not implement
    /// [`TokenStore::clear`](crate::TokenStore::clear). A configuration failure: the program must
    /// implement it.
    Unsupported,
    /// A custom store reported the failure.
    Custom,
}

/// Why a [`TokenStore`](crate::TokenStore) could not load, save or lock.
///
/// Cheap to clone. The message names the file (for a [`FileStore`](crate::FileStore)) and what is
/// wrong with it, never its contents: a token file holds secrets. Custom stores build one with
/// [`StoreError::new`].
///
/// ```
/// use tokengate::{StoreError, StoreErrorKind};
///
/// let e = StoreError::new(StoreErrorKind::Custom, "keyring locked");
/// assert_eq!(e.kind(), StoreErrorKind::Custom);
/// assert!(e.to_string().contains("keyring locked"));
/// ```
#[derive(Clone)]
pub struct StoreError {
    inner: Arc<StoreInner>,
}

#[derive(Clone)]
struct StoreInner {
    kind: StoreErrorKind,
    message: String,
    path: Option<std::path::PathBuf>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error of `kind` with a message saying what went wrong. Keep secrets out of it.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            inner: Arc::new(StoreInner {
                kind,
                message: message.into(),
                path: None,
                source: None,
            }),
        }
    }

    /// Attaches the underlying cause (e.g. an [`std::io::Error`]). It is returned by
    /// [`source`](std::error::Error::source) and not repeated in this error's `Display` text, so an
    /// error reporter that prints the chain shows it once.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.inner).source = Some(Arc::new(source));
        self
    }

    pub(crate) fn with_path(mut self, path: &std::path::Path) -> Self {
        Arc::make_mut(&mut self.inner).path = Some(path.to_owned());
        self
    }

    pub(crate) fn io(what: &str, path: &std::path::Path, e: std::io::Error) -> Self {
        StoreError::new(StoreErrorKind::Io, what)
            .with_path(path)
            .with_source(e)
    }

    /// The message without the cause, for stores that wrap another store's error.
    #[cfg_attr(not(any(feature = "keyring", feature = "redis")), allow(dead_code))]
    pub(crate) fn message(&self) -> &str {
        &self.inner.message
    }

    /// The broad class of the failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.inner.kind
    }

    /// Whether the stored data itself is unusable (empty, malformed or an unknown version), as
    /// opposed to an I/O or locking failure. A [`FileStore`](crate::FileStore) keeps such a file
    /// aside when it saves a new token.
    ///
    /// ```
    /// use tokengate::{StoreError, StoreErrorKind};
    ///
    /// assert!(StoreError::new(StoreErrorKind::Malformed, "not JSON").is_corrupt());
    /// assert!(!StoreError::new(StoreErrorKind::Io, "disk full").is_corrupt());
    /// ```
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self.inner.kind,
            StoreErrorKind::Empty | StoreErrorKind::Malformed | StoreErrorKind::UnsupportedVersion
        )
    }

    /// Whether the store cannot be used as it is set up and an operator must fix it
    /// ([`NotRegularFile`](StoreErrorKind::NotRegularFile), [`ReadOnly`](StoreErrorKind::ReadOnly),
    /// [`Permissions`](StoreErrorKind::Permissions), [`Tls`](StoreErrorKind::Tls)), or the store
    /// cannot do what was asked ([`Unsupported`](StoreErrorKind::Unsupported)). The gate treats
    /// such a failure like a refused client configuration: requests fail at once and it tries
    /// again only after its longest backoff, never in a tight loop.
    ///
    /// ```
    /// use tokengate::{StoreError, StoreErrorKind};
    ///
    /// assert!(StoreError::new(StoreErrorKind::Permissions, "access denied").is_configuration());
    /// assert!(!StoreError::new(StoreErrorKind::LockTimeout, "busy").is_configuration());
    /// ```
    pub fn is_configuration(&self) -> bool {
        matches!(
            self.inner.kind,
            StoreErrorKind::NotRegularFile
                | StoreErrorKind::ReadOnly
                | StoreErrorKind::Permissions
                | StoreErrorKind::Tls
                | StoreErrorKind::Unsupported
        )
    }

    /// The file concerned, when the store is a file.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.inner.path.as_deref()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("token store")?;
        if let Some(path) = &self.inner.path {
            write!(f, " {}", path.display())?;
        }
        write!(f, ": {}", self.inner.message)
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message)
            .field("path", &self.inner.path)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod store_error_tests {
    use super::*;

    #[test]
    fn with_source_on_a_shared_store_error_keeps_the_source_and_leaves_the_clone_alone() {
        let first = StoreError::new(StoreErrorKind::Custom, "keyring locked");
        let shared = first.clone();
        let with = first.with_source(std::io::Error::other("dbus gone"));
        assert!(
            std::error::Error::source(&with).is_some_and(|s| s.to_string() == "dbus gone"),
            "the source is attached even though the error was shared"
        );
        assert!(std::error::Error::source(&shared).is_none());
        assert_eq!(with.kind(), StoreErrorKind::Custom);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_stay_small() {
        assert!(
            std::mem::size_of::<Error>() <= 24,
            "{}",
            std::mem::size_of::<Error>()
        );
        assert_eq!(
            std::mem::size_of::<RefreshError>(),
            std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::size_of::<StoreError>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn classification() {
        let p = RefreshError::permanent("gone");
        assert!(Error::LoginRequired(Some(p.clone())).is_login_required());
        assert!(!Error::Refresh(p).is_transient());
        assert!(Error::Refresh(RefreshError::transient("x")).is_transient());
        assert!(Error::RefreshTimeout(Duration::from_secs(1)).is_transient());
        let oauth = OAuthError {
            error: "invalid_grant".into(),
            error_description: Some("revoked".into()),
            error_uri: None,
        };
        assert!(oauth.is_permanent());
        let e = RefreshError::new(RefreshErrorKind::OAuth, Class::Login, "server refused")
            .with_oauth(oauth);
        assert_eq!(
            e.to_string(),
            "token refresh failed: server refused: invalid_grant (revoked)"
        );
        assert_eq!(
            Error::LoginRequired(Some(e)).to_string(),
            "login required (token refresh failed: server refused: invalid_grant (revoked))"
        );
    }

    #[test]
    fn store_failures_are_classified_by_kind() {
        use StoreErrorKind::*;
        for (kind, transient, configuration, tls) in [
            (Io, true, false, false),
            (Unavailable, true, false, false),
            (Denied, false, false, false),
            (NotRegularFile, false, true, false),
            (ReadOnly, false, true, false),
            (Permissions, false, true, false),
            (Tls, false, true, true),
            (LeaseLost, false, false, false),
        ] {
            let e = Error::Store(StoreError::new(kind, "x"));
            assert_eq!(
                (e.is_transient(), e.is_configuration(), e.is_tls()),
                (transient, configuration, tls),
                "{kind:?}"
            );
        }
    }

    /// Each link of `e`'s `source()` chain, as its `Display` text.
    fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
        std::iter::successors(Some(e), |e| e.source())
            .map(ToString::to_string)
            .collect()
    }

    /// An error reporter prints every link of the chain: a cause that is both in an error's
    /// `Display` and returned by its `source()` would be printed twice.
    fn assert_each_cause_printed_once(e: &(dyn std::error::Error + 'static)) {
        let links = chain(e);
        assert!(links.len() >= 2, "a chain with a cause: {links:?}");
        for (i, earlier) in links.iter().enumerate() {
            for later in &links[i + 1..] {
                assert!(
                    !earlier.contains(later.as_str()),
                    "{later:?} is printed by {earlier:?} and again as its source: {links:?}"
                );
            }
        }
    }

    #[test]
    fn causes_are_in_source_and_not_repeated_in_display() {
        use std::error::Error as _;

        use crate::{FileStore, OAuth2, Refresh, Token, TokenStore};

        // An I/O error inside a StoreError: a token file whose directory is a regular file.
        let not_a_dir = std::env::current_exe().expect("the test binary's path");
        let store = FileStore::new(not_a_dir.join("token.json"));
        let store_err = store
            .save(&Token::new("ACCESS"))
            .expect_err("a file cannot be a directory");
        assert!(
            store_err.source().is_some_and(|s| s.is::<std::io::Error>()),
            "{store_err:?}"
        );
        assert_each_cause_printed_once(&store_err);
        assert_each_cause_printed_once(&Error::Store(store_err));

        // A transport error inside a RefreshError inside Error::Refresh: a token endpoint on a
        // loopback port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let oauth =
            OAuth2::refresh_token(format!("http://127.0.0.1:{port}/token")).client_id("app");
        let refresh_err = oauth
            .refresh(Some(&Token::new("ACCESS").with_refresh_token("REFRESH")))
            .expect_err("nobody listens on the port");
        assert_eq!(
            refresh_err.kind(),
            RefreshErrorKind::Transport,
            "{refresh_err:?}"
        );
        assert!(
            refresh_err.source().is_some_and(|s| s.is::<ureq::Error>()),
            "{refresh_err:?}"
        );
        assert_each_cause_printed_once(&refresh_err);
        assert_each_cause_printed_once(&Error::Refresh(refresh_err));

        // The same inside a LoginError: discovery on its own requests, the device flow on the
        // refresher's machinery.
        let base = format!("http://127.0.0.1:{port}");
        let discovery = crate::login::Metadata::discover(&base, &crate::Network::new())
            .expect_err("nobody listens on the port");
        let device = crate::login::DeviceLogin::new(format!("{base}/device"), format!("{base}/t"))
            .client_id("app")
            .run(|_| panic!("no prompt"))
            .expect_err("nobody listens on the port");
        for login_err in [discovery, device] {
            assert_eq!(login_err.kind(), LoginErrorKind::Transport, "{login_err:?}");
            assert!(login_err.is_transient());
            assert!(
                login_err.source().is_some_and(|s| s.is::<ureq::Error>()),
                "{login_err:?}"
            );
            assert_each_cause_printed_once(&login_err);
            assert_each_cause_printed_once(&Error::Login(login_err));
        }

        // And inside a revocation's error.
        let revocation = OAuth2::client_credentials(format!("{base}/t"))
            .revocation_url(format!("{base}/revoke"))
            .revoke(&Token::new("ACCESS"))
            .expect_err("nobody listens on the port")
            .of_revocation();
        assert!(
            revocation
                .to_string()
                .starts_with("token revocation failed")
        );
        assert_each_cause_printed_once(&Error::Revocation(revocation));
    }
}
