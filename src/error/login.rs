//! [`LoginError`]: why a login failed.

use std::fmt;
use std::sync::Arc;

use super::{Class, OAuthError, RefreshError, RefreshErrorKind};

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
        super::refresh::write_server_answer(f, self.inner.oauth.as_ref(), self.inner.status)
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
