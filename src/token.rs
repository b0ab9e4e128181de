//! The token: access token, type, expiry, refresh token, scope.
//!
//! Expiry is held as a monotonic [`Instant`]; the wall-clock [`SystemTime`] is kept beside it only so that
//! a store can persist it. Secrets live in redacting newtypes.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ureq::http::HeaderValue;

/// Longest lifetime we represent. Larger `expires_in` values are clamped to this, so that adding them to
/// an [`Instant`] can never overflow (ten years is "forever" for an access token).
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(Arc::from(value.into()))
            }

            /// The secret itself.
            ///
            /// # Security
            ///
            /// Anything that reads this can impersonate the user. Do not log it, print it or put it in
            /// an error message; the `Debug` implementation of this type prints `[redacted]` for that
            /// reason.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type!(
    /// An OAuth2 access token (RFC 6749 §1.4). `Debug` prints `AccessToken([redacted])`.
    AccessToken
);
secret_type!(
    /// An OAuth2 refresh token (RFC 6749 §1.5). `Debug` prints `RefreshToken([redacted])`.
    RefreshToken
);
secret_type!(
    /// An OAuth2 client secret (RFC 6749 §2.3.1). `Debug` prints `ClientSecret([redacted])`.
    ClientSecret
);

/// A bearer token as the client holds it: the access token, its type, when it expires, and what is
/// needed to get the next one.
///
/// Build one with [`Token::new`] and the chained setters, or get one from a refresher. A `Token` is
/// immutable once it is handed to a client; the client shares it between threads as an `Arc<Token>`.
///
/// ```
/// use std::time::Duration;
/// use tokengate::Token;
///
/// let token = Token::new("ACCESS")
///     .with_expires_in(Duration::from_secs(3600))
///     .with_refresh_token("REFRESH");
/// assert!(!token.is_expired());
/// // Secrets stay out of Debug output.
/// assert!(!format!("{token:?}").contains("ACCESS"));
/// ```
#[derive(Clone)]
pub struct Token {
    access: AccessToken,
    token_type: Arc<str>,
    /// `Authorization` header value, built once per token so the request path never formats.
    header: Option<HeaderValue>,
    expires_at: Option<Instant>,
    expires_at_wall: Option<SystemTime>,
    lifetime: Option<Duration>,
    refresh: Option<RefreshToken>,
    scope: Option<Arc<str>>,
}

impl Token {
    /// A bearer token with the given access token, no known expiry and no refresh token.
    ///
    /// A token without an expiry is used until the server rejects it (or, if the gate was given an
    /// assumed lifetime, until that runs out).
    pub fn new(access_token: impl Into<String>) -> Self {
        let mut token = Token {
            access: AccessToken::new(access_token),
            token_type: Arc::from("Bearer"),
            header: None,
            expires_at: None,
            expires_at_wall: None,
            lifetime: None,
            refresh: None,
            scope: None,
        };
        token.rebuild_header();
        token
    }

    /// Sets the lifetime counted from now (RFC 6749 §5.1 `expires_in`).
    ///
    /// Lifetimes longer than ten years are clamped to ten years.
    pub fn with_expires_in(mut self, lifetime: Duration) -> Self {
        let lifetime = lifetime.min(MAX_LIFETIME);
        self.expires_at = Some(Instant::now() + lifetime);
        self.expires_at_wall = SystemTime::now().checked_add(lifetime);
        self.lifetime = Some(lifetime);
        self
    }

    /// Sets the expiry from a wall-clock time, as read back from storage.
    ///
    /// The wall-clock time is converted to a monotonic deadline once, now; a time in the past gives a
    /// token that is already expired. The token's lifetime (used to size the refresh window) is unknown
    /// afterwards, so the gate's configured window applies in full.
    pub fn with_expires_at_wall(mut self, at: SystemTime) -> Self {
        let now_wall = SystemTime::now();
        let now = Instant::now();
        let deadline = match at.duration_since(now_wall) {
            Ok(left) => now + left.min(MAX_LIFETIME),
            Err(past) => now.checked_sub(past.duration()).unwrap_or(now),
        };
        self.expires_at = Some(deadline);
        self.expires_at_wall = Some(at);
        self.lifetime = None;
        self
    }

    /// Sets the refresh token (RFC 6749 §1.5).
    pub fn with_refresh_token(mut self, refresh_token: impl Into<String>) -> Self {
        self.refresh = Some(RefreshToken::new(refresh_token));
        self
    }

    /// Sets the token type (RFC 6749 §7.1), used as the `Authorization` scheme. `bearer` in any case is
    /// written `Bearer`. Defaults to `Bearer`.
    pub fn with_token_type(mut self, token_type: impl Into<String>) -> Self {
        let token_type = token_type.into();
        self.token_type = if token_type.eq_ignore_ascii_case("bearer") {
            Arc::from("Bearer")
        } else {
            Arc::from(token_type)
        };
        self.rebuild_header();
        self
    }

    /// Sets the scope granted with this token (RFC 6749 §3.3).
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(Arc::from(scope.into()));
        self
    }

    /// Restores the lifetime the token was issued with (read back from storage), so the gate sizes
    /// the refresh window as it did for the original.
    pub(crate) fn with_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.lifetime = lifetime.map(|l| l.min(MAX_LIFETIME));
        self
    }

    /// Replaces the refresh token slot, keeping everything else.
    pub(crate) fn replace_refresh(mut self, refresh: Option<RefreshToken>) -> Self {
        self.refresh = refresh;
        self
    }

    fn rebuild_header(&mut self) {
        let value = format!("{} {}", self.token_type, self.access.secret());
        // Visible ASCII and spaces only: the `http` crate accepts other bytes (RFC 9110's
        // obs-text), but ureq refuses to send them, and no RFC 6750 token holds one.
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) || self.token_type.contains(' ') {
            self.header = None;
            return;
        }
        self.header = HeaderValue::from_str(&value).ok().map(|mut v| {
            v.set_sensitive(true);
            v
        });
    }

    /// The access token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access
    }

    /// The token type, e.g. `Bearer` (RFC 6749 §7.1).
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// The refresh token, if there is one.
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh.as_ref()
    }

    /// The scope granted with the token, if the server said.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// When the token expires, on the monotonic clock. `None` when the expiry is unknown.
    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    /// When the token expires, on the wall clock; only for persisting it. `None` when unknown.
    pub fn expires_at_wall(&self) -> Option<SystemTime> {
        self.expires_at_wall
    }

    /// The lifetime the token was issued with, if it was set with [`Token::with_expires_in`].
    pub fn lifetime(&self) -> Option<Duration> {
        self.lifetime
    }

    /// Time left before expiry (zero once expired); `None` when the expiry is unknown.
    pub fn remaining(&self) -> Option<Duration> {
        self.expires_at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether the token is known to have expired.
    pub fn is_expired(&self) -> bool {
        self.expires_at.is_some_and(|at| Instant::now() >= at)
    }

    /// The ready-made `Authorization` header value (`<type> <access token>`), marked sensitive.
    ///
    /// `None` when the access token or type holds anything but visible ASCII and spaces (or the
    /// type a space): such a token cannot be sent, so it is refused wherever it enters.
    ///
    /// # Security
    ///
    /// The value carries the secret; see [`AccessToken::secret`].
    pub fn authorization(&self) -> Option<&HeaderValue> {
        self.header.as_ref()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &self.access)
            .field("token_type", &self.token_type)
            .field("remaining", &self.remaining())
            .field("refresh_token", &self.refresh)
            .field("scope", &self.scope)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let t = Token::new("sekrit-access")
            .with_refresh_token("sekrit-refresh")
            .with_expires_in(Duration::from_secs(5));
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("sekrit"), "{dbg}");
        assert!(dbg.contains("AccessToken([redacted])"));
        assert!(dbg.contains("RefreshToken([redacted])"));
        let header_dbg = format!("{:?}", t.authorization().unwrap());
        assert!(!header_dbg.contains("sekrit"), "{header_dbg}");
    }

    #[test]
    fn header_is_built_once_and_type_normalised() {
        let t = Token::new("abc").with_token_type("bearer");
        assert_eq!(t.authorization().unwrap().to_str().unwrap(), "Bearer abc");
        let t = Token::new("abc").with_token_type("MAC");
        assert_eq!(t.authorization().unwrap().to_str().unwrap(), "MAC abc");
    }

    #[test]
    fn invalid_header_characters_give_no_header() {
        assert!(Token::new("bad\nvalue").authorization().is_none());
        // Bytes the `http` crate would take but ureq will not send.
        assert!(Token::new("tök").authorization().is_none());
        assert!(
            Token::new("ok")
                .with_token_type("tök")
                .authorization()
                .is_none()
        );
        assert!(
            Token::new("ok")
                .with_token_type("two words")
                .authorization()
                .is_none()
        );
        assert!(Token::new("a-b.c_d~e+f/g==").authorization().is_some());
    }

    #[test]
    fn huge_lifetimes_are_clamped_not_overflowing() {
        let t = Token::new("a").with_expires_in(Duration::from_secs(u64::MAX));
        assert_eq!(t.lifetime(), Some(MAX_LIFETIME));
        assert!(!t.is_expired());
    }

    #[test]
    fn wall_clock_expiry_in_the_past_is_expired() {
        let past = SystemTime::now() - Duration::from_secs(3600);
        assert!(Token::new("a").with_expires_at_wall(past).is_expired());
        let future = SystemTime::now() + Duration::from_secs(3600);
        let t = Token::new("a").with_expires_at_wall(future);
        assert!(!t.is_expired());
        assert!(t.remaining().unwrap() > Duration::from_secs(3500));
    }
}
