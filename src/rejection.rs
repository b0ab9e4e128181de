//! What counts as a rejection of the token, for [`Client`](crate::Client) and
//! [`TokenMiddleware`](crate::TokenMiddleware) alike: a 401 whose `Bearer` challenge (if any) asks
//! for a new token (the challenge's parsing is [`challenge`](crate::challenge)'s), or a response the
//! caller's `reject_when` predicate condemns after seeing its head and its body, buffered up to a
//! limit. The parsed challenge of a 401 or 403 goes into the response's extensions either way.

use std::io::{Cursor, Read};
use std::sync::Arc;

use ureq::Body;
use ureq::http::{Response, response::Parts};

use crate::challenge;

/// A predicate that sees a response's head and (buffered) body and says whether the server rejected
/// the token.
pub(crate) type RejectFn = dyn Fn(&Parts, &[u8]) -> bool + Send + Sync;

/// The largest body buffered for a `reject_when` predicate unless set otherwise: 1 MiB.
const DEFAULT_MAX_BUFFERED_BODY: u64 = 1024 * 1024;

/// The rule a response is judged by.
#[derive(Clone)]
pub(crate) struct Rule {
    predicate: Option<Arc<RejectFn>>,
    max_buffered_body: u64,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            predicate: None,
            max_buffered_body: DEFAULT_MAX_BUFFERED_BODY,
        }
    }
}

impl Rule {
    /// Also asks `predicate` about each response that carried the token.
    pub(crate) fn reject_when(&mut self, predicate: Arc<RejectFn>) {
        self.predicate = Some(predicate);
    }

    /// Sets the largest body buffered for the predicate.
    pub(crate) fn max_buffered_body(&mut self, bytes: u64) {
        self.max_buffered_body = bytes;
    }

    /// Whether bodies of responses that carried the token are read before the caller sees them.
    pub(crate) fn buffers(&self) -> bool {
        self.predicate.is_some()
    }

    /// Judges a response: returns it (its `Bearer` challenge attached, its body whole) and whether
    /// it rejects the token. `authed`: whether its request carried the token (a response to a request
    /// without it rejects nothing, but still gets its challenge attached).
    ///
    /// The predicate is asked only about a response that carried the token, is not already a
    /// rejection by its status and challenge, and whose body fits the limit; it is not asked about a
    /// larger body, which streams to the caller as usual.
    pub(crate) fn judge(&self, resp: Response<Body>, authed: bool) -> (Response<Body>, bool) {
        let asks = authed && self.predicate.is_some();
        if !asks && !challenge::may_challenge(resp.status()) {
            // The common case: nothing to parse, buffer or attach.
            return (resp, false);
        }
        let (mut parts, body) = resp.into_parts();
        let challenge = challenge::of_response(parts.status, &parts.headers);
        let mut rejected = authed && challenge::rejects_token(parts.status, challenge.as_ref());
        if let Some(ch) = challenge {
            parts.extensions.insert(ch);
        }
        let body = match (&self.predicate, authed && !rejected) {
            (Some(predicate), true) => buffer(body, self.max_buffered_body, |bytes| {
                rejected = predicate(&parts, bytes);
            }),
            _ => body,
        };
        (Response::from_parts(parts, body), rejected)
    }
}

/// Reads up to `limit` bytes of `body` and, when the whole body fit, shows it to `judge`. Returns a
/// body that yields everything: the buffered bytes, then (when over the limit) the rest of the stream.
fn buffer(body: Body, limit: u64, judge: impl FnOnce(&[u8])) -> Body {
    let mime = body.mime_type().map(str::to_owned);
    let charset = body.charset().map(str::to_owned);
    let mut reader = body.into_reader();
    let mut buf = Vec::new();
    let read = (&mut reader)
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf);
    let mut builder = Body::builder();
    if let Some(m) = mime {
        builder = builder.mime_type(m);
    }
    if let Some(c) = charset {
        builder = builder.charset(c);
    }
    match read {
        Ok(_) if buf.len() as u64 <= limit => {
            judge(&buf);
            builder.data(buf)
        }
        // Too large, or the read failed part-way: hand the caller what we have and the rest of the
        // stream, which reports the error again if there is one.
        _ => builder.reader(Cursor::new(buf).chain(reader)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, challenge: Option<&str>, body: &str) -> Response<Body> {
        let mut b = Response::builder().status(status);
        if let Some(ch) = challenge {
            b = b.header("www-authenticate", ch);
        }
        b.body(
            Body::builder()
                .mime_type("application/json")
                .data(body.to_owned()),
        )
        .unwrap()
    }

    fn ret_401() -> Rule {
        let mut rule = Rule::default();
        rule.reject_when(Arc::new(|_: &Parts, body: &[u8]| {
            body.starts_with(br#"{"ret":401"#)
        }));
        rule
    }

    fn read(resp: Response<Body>) -> String {
        resp.into_body().read_to_string().unwrap()
    }

    #[test]
    fn a_401_asking_for_a_new_token_is_a_rejection_only_when_the_token_went() {
        let rule = Rule::default();
        for (challenge, authed, rejected) in [
            (None, true, true),
            (Some(r#"Bearer error="invalid_token""#), true, true),
            (Some(r#"Bearer error="insufficient_scope""#), true, false),
            (Some(r#"Bearer error="invalid_token""#), false, false),
        ] {
            let (resp, r) = rule.judge(response(401, challenge, "{}"), authed);
            assert_eq!(r, rejected, "{challenge:?} authed={authed}");
            assert_eq!(
                resp.extensions().get::<crate::Challenge>().is_some(),
                challenge.is_some()
            );
        }
    }

    #[test]
    fn a_403_is_never_a_rejection_but_keeps_its_challenge() {
        let (resp, rejected) = ret_401().judge(
            response(403, Some(r#"Bearer error="insufficient_scope""#), "{}"),
            true,
        );
        assert!(!rejected);
        let ch = resp.extensions().get::<crate::Challenge>().unwrap();
        assert_eq!(ch.error(), Some("insufficient_scope"));
    }

    #[test]
    fn the_predicate_sees_the_body_and_the_caller_still_gets_all_of_it() {
        let body = r#"{"ret":401,"msg":"token expired"}"#;
        let (resp, rejected) = ret_401().judge(response(200, None, body), true);
        assert!(rejected);
        assert_eq!(resp.body().mime_type(), Some("application/json"));
        assert_eq!(read(resp), body);
        let (resp, rejected) = ret_401().judge(response(200, None, r#"{"ret":0}"#), true);
        assert!(!rejected);
        assert_eq!(read(resp), r#"{"ret":0}"#);
    }

    #[test]
    fn the_predicate_is_not_asked_without_the_token_or_over_the_limit() {
        let body = r#"{"ret":401}"#;
        let (resp, rejected) = ret_401().judge(response(200, None, body), false);
        assert!(!rejected);
        assert_eq!(read(resp), body);
        let mut small = ret_401();
        small.max_buffered_body(4);
        let (resp, rejected) = small.judge(response(200, None, body), true);
        assert!(!rejected, "too large to judge");
        assert_eq!(read(resp), body, "the buffered part and the rest, in order");
    }

    #[test]
    fn buffering_keeps_the_whole_body() {
        let data = "x".repeat(10_000);
        for limit in [0, 1, 9_999, 10_000, 20_000] {
            let mut seen = None;
            let body = buffer(Body::builder().data(data.clone()), limit, |b| {
                seen = Some(b.len())
            });
            let mut all = Vec::new();
            body.into_reader().read_to_end(&mut all).unwrap();
            assert_eq!(all.len(), 10_000, "limit {limit}");
            assert_eq!(seen, (limit >= 10_000).then_some(10_000), "limit {limit}");
        }
    }
}
