//! [`RefreshError`] (why a refresh failed, and what it means for the session), its kind, and the
//! OAuth2 error answer ([`OAuthError`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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
    pub(super) inner: Arc<Inner>,
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
pub(super) struct Inner {
    pub(super) kind: RefreshErrorKind,
    pub(super) class: Class,
    /// What failed, the start of `Display`: a refresh, or a revocation.
    pub(super) what: &'static str,
    pub(super) message: String,
    /// When the gate will try again, set by the gate when it backs off after this failure.
    pub(super) next_attempt: Option<std::time::Instant>,
    pub(super) status: Option<u16>,
    pub(super) retry_after: Option<Duration>,
    pub(super) oauth: Option<OAuthError>,
    pub(super) body_excerpt: Option<String>,
    pub(super) source: Option<Arc<dyn std::error::Error + Send + Sync>>,
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

    /// Whether only a new login can fix this (see [`Error::LoginRequired`](crate::Error::LoginRequired)).
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
        write_server_answer(f, self.inner.oauth.as_ref(), self.inner.status)?;
        if let Some(wait) = self.next_attempt_in() {
            write!(f, "; next attempt in {} ms", wait.as_millis())?;
        }
        Ok(())
    }
}

/// Writes what the server answered, as a refresh's and a login's error messages end it:
/// `: <error> (<description>) [HTTP <status>]`, each part when known.
pub(super) fn write_server_answer(
    f: &mut fmt::Formatter<'_>,
    oauth: Option<&OAuthError>,
    status: Option<u16>,
) -> fmt::Result {
    if let Some(oauth) = oauth {
        write!(f, ": {}", oauth.error)?;
        if let Some(d) = &oauth.error_description {
            write!(f, " ({d})")?;
        }
    }
    if let Some(status) = status {
        write!(f, " [HTTP {status}]")?;
    }
    Ok(())
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
