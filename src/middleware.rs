//! [`TokenMiddleware`]: the gate's token handling for a plain `ureq::Agent`, as one config line.

use std::fmt;

use ureq::http::{self, Request, Response};
use ureq::middleware::{Middleware, MiddlewareNext};
use ureq::{Body, SendBody};

use crate::challenge;
use crate::error::Error;
use crate::gate::Gate;
use crate::origin::Origin;

/// A `ureq` middleware that attaches a [`Gate`]'s token to requests for one origin.
///
/// ```no_run
/// use std::time::Duration;
/// use tokengate::{Gate, OAuth2, Token, TokenMiddleware};
///
/// let gate = Gate::builder()
///     .token(Token::new("ACCESS").with_expires_in(Duration::from_secs(3600)).with_refresh_token("REFRESH"))
///     .refresher(OAuth2::refresh_token("https://auth.example.com/oauth/token"))
///     .build()?;
/// let agent: tokengate::ureq::Agent = tokengate::ureq::Agent::config_builder()
///     .middleware(TokenMiddleware::new(gate, "https://api.example.com")?)
///     .build()
///     .into();
/// let resp = agent.get("https://api.example.com/users/me").call()?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
///
/// What it does, per request:
///
/// - A request to another origin (scheme, host, port) passes through untouched.
/// - Otherwise it takes a token from the gate (refreshing first inside the refresh window, waiting for
///   another thread's refresh like any [`Client`](crate::Client) request) and sets `Authorization`.
/// - When the response is a rejection (a 401 whose `WWW-Authenticate` challenge asks for a new token)
///   it tells the gate, which marks the token dead, so **the next request** carries a fresh one, and
///   **returns the rejection** to the caller, with the parsed [`Challenge`](crate::Challenge) in the response's
///   extensions.
///
/// # Why it does not replay
///
/// ureq 3 hands a middleware a [`MiddlewareNext`] that its `handle` consumes: the rest of the chain
/// and the agent can run once per middleware call. `RequestExt::middleware_config` (ureq 3.4) gives a
/// request-level *configuration* inside a middleware, but not the agent itself, so a second exchange
/// would have to go through a different agent: another connection pool, without the middlewares after
/// this one and without the caller's proxy and TLS settings. The request body is also a one-shot
/// stream ([`SendBody`]) that would have to be buffered whole. Rather than replay behind the caller's
/// back with a different agent, the middleware returns the rejection; use [`Client`](crate::Client)
/// for transparent replay.
///
/// Redirects are followed by ureq itself after this middleware, so whether the header follows them is
/// ureq's `redirect_auth_headers` setting (default: never).
///
/// # Errors
///
/// When the gate cannot give a token (login required, refresh failure, timeout) the request is not
/// sent and the middleware returns `ureq::Error::Other` wrapping the [`Error`]; get it back with
/// [`TokenMiddleware::error_of`].
#[derive(Clone)]
pub struct TokenMiddleware {
    gate: Gate,
    origin: Origin,
}

impl TokenMiddleware {
    /// A middleware that sends `gate`'s token to the origin of `api_url` only.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when `api_url` is not an absolute http(s) URL.
    pub fn new(gate: Gate, api_url: &str) -> Result<TokenMiddleware, Error> {
        let (_, origin) = Origin::parse(api_url, "API URL").map_err(Error::url)?;
        Ok(TokenMiddleware { gate, origin })
    }

    /// The gate whose token this middleware attaches.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The tokengate [`Error`] inside a `ureq::Error` returned through this middleware, if any.
    pub fn error_of(error: &ureq::Error) -> Option<&Error> {
        match error {
            ureq::Error::Other(inner) => inner.downcast_ref::<Error>(),
            _ => None,
        }
    }
}

impl fmt::Debug for TokenMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenMiddleware")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Middleware for TokenMiddleware {
    fn handle(
        &self,
        mut request: Request<SendBody>,
        next: MiddlewareNext,
    ) -> Result<Response<Body>, ureq::Error> {
        if !self.origin.matches(request.uri()) {
            return next.handle(request);
        }
        let lease = self
            .gate
            .lease()
            .map_err(|e| ureq::Error::Other(Box::new(e)))?;
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, lease.authorization().clone());
        let mut resp = next.handle(request)?;
        let challenge = challenge::of_response(resp.status(), resp.headers());
        let rejected = challenge::rejects_token(resp.status(), challenge.as_ref());
        if rejected {
            self.gate.reject(&lease);
        } else {
            self.gate.confirm(&lease);
        }
        if let Some(ch) = challenge {
            resp.extensions_mut().insert(ch);
        }
        Ok(resp)
    }
}
