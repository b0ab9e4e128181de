//! Getting a new token: the [`Refresh`] trait (with an impl for closures), here; one room each
//! for the OAuth2 grants ([`OAuth2`]: refresh_token, RFC 6749 §6, and client_credentials, §4.4;
//! `oauth2.rs`), the success answer ([`TokenResponse`], §5.1; `token_response.rs`), what an error
//! answer or a failed exchange means (§5.2, statuses, transport; `answer.rs`) and `Retry-After`
//! (`retry_after.rs`).
//!
//! The OAuth2 refresher owns its own `ureq::Agent`: the refresh call never passes through the client's
//! token-attaching path, so there is no recursion and no URL to special-case.

use crate::error::{Class, RefreshError, RefreshErrorKind};
use crate::token::Token;

mod answer;
mod oauth2;
mod retry_after;
mod token_response;

pub use oauth2::{ClientAuth, OAuth2};
pub(crate) use retry_after::retry_after;
pub use token_response::TokenResponse;

/// Something that can produce a new [`Token`].
///
/// The gate calls it from one thread at a time, without holding any lock, and hands the result to
/// every thread that waited. Implement it for non-standard token APIs, or pass a closure
/// `Fn(&Token) -> Result<Token, RefreshError>`.
///
/// ```
/// use std::time::Duration;
/// use tokengate::{Gate, RefreshError, Token};
///
/// let gate = Gate::builder()
///     .token(Token::new("old").with_refresh_token("r1"))
///     .refresher(|current: &Token| -> Result<Token, RefreshError> {
///         // Call your token API here with current.refresh_token().
///         Ok(Token::new("new").with_expires_in(Duration::from_secs(60)))
///     })
///     .build()?;
/// # Ok::<_, tokengate::Error>(())
/// ```
pub trait Refresh: Send + Sync + 'static {
    /// Gets a new token. `current` is the token being replaced, `None` when there is none yet (e.g. a
    /// client-credentials client that has not fetched its first token).
    ///
    /// # Errors
    ///
    /// A [`RefreshError`]: [`permanent`](RefreshError::permanent) when only a new login can help (the
    /// client then fails fast with [`Error::LoginRequired`](crate::Error::LoginRequired)),
    /// [`transient`](RefreshError::transient) otherwise (the gate backs off and tries again later).
    fn refresh(&self, current: Option<&Token>) -> Result<Token, RefreshError>;

    /// Checks the configuration once, when the gate is built. Defaults to accepting it.
    ///
    /// # Errors
    ///
    /// What is wrong, as a [`RefreshError::configuration`]; building the gate then fails with
    /// [`Error::Config`](crate::Error::Config) carrying its message.
    fn check(&self) -> Result<(), RefreshError> {
        Ok(())
    }

    /// Revokes `token` at the authorization server, when the user logs out
    /// ([`Gate::logout`](crate::Gate::logout)). [`OAuth2`] revokes the refresh token at its
    /// [`revocation_url`](OAuth2::revocation_url) (RFC 7009).
    ///
    /// Defaults to doing nothing: a refresher that knows no revocation endpoint has nothing to
    /// revoke, and the logout then only forgets the token here.
    ///
    /// # Errors
    ///
    /// A [`RefreshError`] when the server could not be reached or refused the revocation; the
    /// logout clears the session here anyway and reports it as
    /// [`Error::Revocation`](crate::Error::Revocation).
    fn revoke(&self, token: &Token) -> Result<(), RefreshError> {
        let _ = token;
        Ok(())
    }
}

impl<F> Refresh for F
where
    F: Fn(&Token) -> Result<Token, RefreshError> + Send + Sync + 'static,
{
    fn refresh(&self, current: Option<&Token>) -> Result<Token, RefreshError> {
        match current {
            Some(token) => self(token),
            None => Err(RefreshError::new(
                RefreshErrorKind::NoRefreshToken,
                Class::Login,
                "there is no token to refresh",
            )),
        }
    }
}

#[cfg(test)]
mod tests;
