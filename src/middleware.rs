//! [`TokenMiddleware`]: the gate's token handling for a plain `ureq::Agent`, as one config line.

use std::fmt;
use std::sync::Arc;

use ureq::http::{self, Request, Response};
use ureq::middleware::{Middleware, MiddlewareNext};
use ureq::{Body, SendBody};

use crate::error::Error;
use crate::gate::Gate;
use crate::origin::Origin;
use crate::rejection;

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
/// - When the response is a rejection (a 401 whose `WWW-Authenticate` challenge asks for a new
///   token, or a response the [`reject_when`](TokenMiddleware::reject_when) predicate condemns;
///   the same rule as [`Client`](crate::Client)'s) it tells the gate, which marks the token dead, so
///   **the next request** carries a fresh one, and **returns the rejection** to the caller. The
///   parsed [`Challenge`](crate::Challenge) of a 401 or 403 is in the response's extensions.
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
    rejection: rejection::Rule,
}

impl TokenMiddleware {
    /// A middleware that sends `gate`'s token to the origin of `api_url` only.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when `api_url` is not an absolute http(s) URL.
    pub fn new(gate: Gate, api_url: &str) -> Result<TokenMiddleware, Error> {
        let (_, origin) = Origin::parse(api_url, "API URL").map_err(Error::url)?;
        Ok(TokenMiddleware {
            gate,
            origin,
            rejection: rejection::Rule::default(),
        })
    }

    /// Also treats a response as a token rejection when `predicate` says so, for APIs that signal
    /// an expired token in the body (e.g. HTTP 200 with `{"ret":401}`). As
    /// [`ClientBuilder::reject_when`](crate::ClientBuilder::reject_when): bodies of responses that
    /// carried the token are buffered, up to
    /// [`max_buffered_body`](TokenMiddleware::max_buffered_body), so the predicate can see them, and
    /// the caller gets the whole body. The time spent reading them is bounded by the agent's own
    /// timeouts (`timeout_recv_body`, `timeout_global`).
    ///
    /// ```
    /// # let gate = tokengate::Gate::builder().build()?;
    /// let middleware = tokengate::TokenMiddleware::new(gate, "https://api.example.com")?
    ///     .reject_when(|_parts, body| {
    ///         serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v["ret"] == 401)
    ///     });
    /// # Ok::<_, tokengate::Error>(())
    /// ```
    #[must_use]
    pub fn reject_when(
        mut self,
        predicate: impl Fn(&http::response::Parts, &[u8]) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.rejection.reject_when(Arc::new(predicate));
        self
    }

    /// Sets the largest response body buffered for [`reject_when`](TokenMiddleware::reject_when).
    /// Defaults to 1 MiB, as [`ClientBuilder::max_buffered_body`](crate::ClientBuilder::max_buffered_body).
    #[must_use]
    pub fn max_buffered_body(mut self, bytes: u64) -> Self {
        self.rejection.max_buffered_body(bytes);
        self
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
        let (resp, rejected) = self.rejection.judge(next.handle(request)?, true);
        if rejected {
            self.gate.reject(&lease);
        } else {
            self.gate.confirm(&lease);
        }
        Ok(resp)
    }
}
