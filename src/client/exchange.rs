//! The exchange engine under [`Client`]: one request's way from a token lease to the response the
//! caller gets, through redirects followed by hand (the token only to hops on the API origin), the
//! rejection test ([`rejection`](crate::rejection)) and bounded replays; and the dropping of the
//! responses the caller never sees.

use std::borrow::Cow;
use std::io::Read;
use std::time::{Duration, Instant};

use ureq::http::{self, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use ureq::{AsSendBody, Body, SendBody};

use super::Client;
use crate::body::{Next, Payload};
use crate::error::Error;
use crate::gate::{Lease, Rejection};
use crate::net::NetAgent;
use crate::origin::Origin;
use crate::redirect;

/// A request's own deadline ([`RequestBuilder::timeout`]).
#[derive(Clone, Copy)]
pub(super) struct Deadline {
    pub(super) at: Instant,
    pub(super) timeout: Duration,
}

impl Deadline {
    /// What is left, or the error when nothing is.
    fn remaining(self) -> Result<Duration, Error> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Deadline(self.timeout));
        }
        Ok(left)
    }
}

/// One HTTP exchange's worth of request (without its body): kept so it can be re-sent after a
/// redirect or a rejection.
#[derive(Clone)]
pub(super) struct RequestHead {
    pub(super) method: Method,
    pub(super) uri: Uri,
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
}

/// Per-request ureq settings of one hop, when it needs any.
#[derive(Default)]
struct HopConfig<'a> {
    global: Option<Duration>,
    recv_body: Option<Duration>,
    /// `Some` when the hop's proxy differs from the agent's.
    proxy: Option<Option<&'a ureq::Proxy>>,
}

impl Client {
    /// Sends `req` and follows it through: a token from the gate when it goes to the API origin,
    /// redirects, the rejection test, and at most `max_replays` replays after rejections (each with
    /// the token the gate has by then). The gate hears of every acceptance and rejection.
    pub(super) fn exchange(
        &self,
        req: &RequestHead,
        body: &mut Payload<'_>,
        deadline: Option<Deadline>,
    ) -> Result<Response<Body>, Error> {
        let inner = &*self.inner;
        let mut lease = if self.same_origin(&req.uri) {
            Some(self.lease(deadline)?)
        } else {
            None
        };
        let mut replays = 0;
        loop {
            let (resp, authed) =
                self.send_following_redirects(req, lease.as_ref(), body, deadline)?;
            let (resp, rejected) = inner.rejection.judge(resp, authed);
            let lease_now = match (&lease, rejected) {
                (Some(l), true) => l,
                (Some(l), false) => {
                    if authed {
                        inner.gate.confirm(l);
                    }
                    return Ok(resp);
                }
                (None, _) => return Ok(resp),
            };
            // The gate hears of every rejection, replayed or not: the next request must not send
            // a token the server has refused.
            if inner.gate.reject(lease_now) == Rejection::Final || replays >= inner.max_replays {
                return Ok(resp);
            }
            if !body.rewind() {
                // A one-shot stream: the gate knows, the caller gets the rejection.
                return Ok(resp);
            }
            discard(resp);
            lease = Some(self.lease(deadline)?);
            replays += 1;
            inner.gate.count_replay();
        }
    }

    /// A token from the gate, within the request's deadline when it has one.
    fn lease(&self, deadline: Option<Deadline>) -> Result<Lease, Error> {
        match deadline {
            None => self.inner.gate.lease(),
            Some(d) => match self.inner.gate.lease_until(Some(d.at)) {
                Err(Error::RefreshTimeout(_)) if Instant::now() >= d.at => {
                    Err(Error::Deadline(d.timeout))
                }
                other => other,
            },
        }
    }

    /// Runs one exchange on the agent, with the hop's own settings when it has any.
    fn exec<S: AsSendBody>(
        &self,
        request: Request<S>,
        config: &HopConfig<'_>,
    ) -> Result<Response<Body>, ureq::Error> {
        let agent = &self.inner.net.agent;
        if config.global.is_none() && config.recv_body.is_none() && config.proxy.is_none() {
            return agent.run(request);
        }
        let mut builder = agent.configure_request(request);
        if let Some(global) = config.global {
            builder = builder.timeout_global(Some(global));
        }
        if let Some(recv_body) = config.recv_body {
            builder = builder.timeout_recv_body(Some(recv_body));
        }
        if let Some(proxy) = config.proxy {
            builder = builder.proxy(proxy.cloned());
        }
        agent.run(builder.build())
    }

    /// Sends `req`, following redirects by hand so the token goes only to the API origin. Returns the
    /// final response and whether its request carried the token. The caller passes a `lease` only
    /// when `req` goes to the API origin.
    fn send_following_redirects(
        &self,
        req: &RequestHead,
        lease: Option<&Lease>,
        body: &mut Payload<'_>,
        deadline: Option<Deadline>,
    ) -> Result<(Response<Body>, bool), Error> {
        // Borrowed until a redirect has to change it: the common case copies nothing.
        let mut req = Cow::Borrowed(req);
        let mut redirects = 0;
        // The first hop's origin was checked by the caller; each redirect checks the next one.
        let mut authed = lease.is_some();
        let mut home = authed;
        let mut with_body = true;
        loop {
            // Built in place rather than with `Request::builder()`: every part is already parsed and
            // typed, so there is nothing for the builder to check.
            let mut request = Request::new(());
            *request.method_mut() = req.method.clone();
            *request.uri_mut() = req.uri.clone();
            let headers = request.headers_mut();
            for (n, v) in &req.headers {
                if authed && n == http::header::AUTHORIZATION {
                    continue;
                }
                headers.append(n.clone(), v.clone());
            }
            if let (true, Some(lease)) = (authed, lease) {
                headers.insert(http::header::AUTHORIZATION, lease.authorization().clone());
            }
            let route = self
                .inner
                .net
                .route(&req.uri, home || self.same_origin(&req.uri));
            let config = HopConfig {
                global: deadline.map(Deadline::remaining).transpose()?,
                recv_body: (authed && self.inner.rejection.buffers())
                    .then_some(self.inner.buffer_timeout),
                proxy: route.differs.then_some(route.proxy),
            };
            let sent = match if with_body { body.next() } else { Next::None } {
                Next::None => self.exec(request, &config),
                Next::Bytes(b) => self.exec(request.map(|()| b), &config),
                Next::Reader(r) => self.exec(request.map(|()| SendBody::from_reader(r)), &config),
            };
            let resp = sent.map_err(|e| match (deadline, &e) {
                (Some(d), ureq::Error::Timeout(ureq::Timeout::Global)) => {
                    Error::Deadline(d.timeout)
                }
                _ => NetAgent::error(e, route.proxy),
            })?;
            let status = resp.status();
            if !status.is_redirection() || self.inner.max_redirects == 0 {
                return Ok((resp, authed));
            }
            let Some(next) = resp
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| redirect::resolve_location(&req.uri, l))
            else {
                return Ok((resp, authed));
            };
            if redirects >= self.inner.max_redirects {
                return Err(ureq::Error::TooManyRedirects.into());
            }
            // RFC 9110 §15.4: 303 always, and 301/302 after POST (as every browser does), become GET.
            let to_get = status == StatusCode::SEE_OTHER && req.method != Method::HEAD
                || matches!(status.as_u16(), 301 | 302) && req.method == Method::POST;
            if with_body && !to_get && !body.rewind() {
                // A one-shot body cannot go to the next hop: the caller gets the redirect.
                return Ok((resp, authed));
            }
            redirects += 1;
            discard(resp);
            let next_home = self.same_origin(&next);
            let origin_changes = Origin::of(&req.uri) != Origin::of(&next);
            let req = req.to_mut();
            if to_get {
                req.method = Method::GET;
                with_body = false;
                req.headers.retain(|(n, _)| {
                    n != http::header::CONTENT_TYPE && n != http::header::CONTENT_LENGTH
                });
            }
            if origin_changes {
                // Credentials set by the caller were meant for the origin they were sent to.
                redirect::strip_sensitive(&mut req.headers, &self.inner.sensitive);
            }
            req.uri = next;
            home = next_home;
            authed = lease.is_some() && next_home;
        }
    }
}

/// How much of a response the client drops is read first, so its connection can be reused.
const DRAIN_LIMIT: u64 = 64 * 1024;
/// How long the client reads a response it drops before it gives up and closes the connection.
const DRAIN_TIME: Duration = Duration::from_millis(250);

/// Drops a response the caller will not see (a rejection about to be replayed, a redirect about
/// to be followed). Its body is read first, so the connection can go back to the pool, but only
/// when it declares a length of at most 64 KiB, and for at most 250 ms (checked between reads): a
/// body that trickles is abandoned and its connection closed. A body that sends nothing at all
/// blocks its read until the request's deadline ([`RequestBuilder::timeout`]) or ureq's
/// `timeout_per_read` (set with [`Network::configure_agent`]), when set.
fn discard(resp: Response<Body>) {
    let mut body = resp.into_body();
    if body.content_length().is_none_or(|n| n > DRAIN_LIMIT) {
        return;
    }
    let started = Instant::now();
    let mut reader = body.as_reader();
    let mut buf = [0u8; 4096];
    while started.elapsed() < DRAIN_TIME {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
