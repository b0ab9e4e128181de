//! Errors: [`Error`] for everything the client returns, with one room per cause it may carry:
//! [`RefreshError`] (why a refresh failed, `refresh.rs`), [`StoreError`] (`store.rs`),
//! [`LoginError`] (`login.rs`), [`ProxyError`] (`proxy.rs`).
//!
//! All are cheap to clone (an `Arc` inside): one refresh failure is handed to every thread that
//! waited for it. None ever contains a token.

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

mod login;
mod proxy;
mod refresh;
mod store;

pub use login::{LoginError, LoginErrorKind};
pub use proxy::ProxyError;
pub(crate) use refresh::Class;
pub use refresh::{OAuthError, RefreshError, RefreshErrorKind};
pub use store::{StoreError, StoreErrorKind};

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
