//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1), as bearer-token servers send them on a 401 or 403
//! (RFC 6750 §3): `Bearer realm="api", error="invalid_token", error_description="expired"`.

use std::fmt;

use ureq::http::{HeaderMap, StatusCode, header::WWW_AUTHENTICATE};

/// The `Bearer` challenge of a 401 or 403 response, if it has one.
pub(crate) fn of_response(status: StatusCode, headers: &HeaderMap) -> Option<Challenge> {
    if !may_challenge(status) {
        return None;
    }
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(Challenge::bearer)
}

/// Whether a response with this status can carry a challenge the client looks at: 401 or 403.
pub(crate) fn may_challenge(status: StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 403)
}

/// Whether a response rejects the token it carried: a 401 whose challenge (if any) asks for a new
/// token. A 403, or a 401 with `insufficient_scope`, is not fixed by a new token.
pub(crate) fn rejects_token(status: StatusCode, challenge: Option<&Challenge>) -> bool {
    status == StatusCode::UNAUTHORIZED && challenge.is_none_or(Challenge::wants_new_token)
}

/// One authentication challenge from a `WWW-Authenticate` header.
///
/// The client attaches the `Bearer` challenge of a 401 or 403 it returns to the response's
/// extensions, so callers can see why the server refused:
///
/// ```no_run
/// # let client = tokengate::Client::builder("https://api.example.com").build()?;
/// let resp = client.get("/admin").call()?;
/// if let Some(ch) = resp.extensions().get::<tokengate::Challenge>() {
///     if ch.error() == Some("insufficient_scope") {
///         eprintln!("needs scope {:?}", ch.param("scope"));
///     }
/// }
/// # Ok::<_, tokengate::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses every challenge in a `WWW-Authenticate` header value. Malformed parts are skipped.
    ///
    /// ```
    /// use tokengate::Challenge;
    ///
    /// let all = Challenge::parse_all(r#"Basic realm="x", Bearer error="invalid_token", error_description="a, b""#);
    /// assert_eq!(all.len(), 2);
    /// assert_eq!(all[1].scheme(), "Bearer");
    /// assert_eq!(all[1].error(), Some("invalid_token"));
    /// assert_eq!(all[1].param("error_description"), Some("a, b"));
    /// ```
    pub fn parse_all(header: &str) -> Vec<Challenge> {
        let mut out: Vec<Challenge> = Vec::new();
        let mut p = Parser {
            s: header.as_bytes(),
            i: 0,
        };
        loop {
            p.skip(|b| b == b' ' || b == b'\t' || b == b',');
            let Some(word) = p.token() else {
                if p.i >= p.s.len() {
                    break;
                }
                p.i += 1; // garbage byte: skip it
                continue;
            };
            p.skip(|b| b == b' ' || b == b'\t');
            if p.peek() == Some(b'=') {
                // auth-param of the current challenge (or token68 padding; ignored without a challenge)
                p.i += 1;
                p.skip(|b| b == b' ' || b == b'\t');
                let value = p.value().unwrap_or_default();
                if let Some(ch) = out.last_mut() {
                    ch.params.push((word.to_ascii_lowercase(), value));
                }
            } else {
                out.push(Challenge {
                    scheme: word,
                    params: Vec::new(),
                });
            }
        }
        out
    }

    /// The `Bearer` challenge of a `WWW-Authenticate` header value, if there is one.
    pub fn bearer(header: &str) -> Option<Challenge> {
        Self::parse_all(header)
            .into_iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
    }

    /// The auth scheme, e.g. `Bearer`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// An auth-param by (case-insensitive) name, unquoted.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `error` code (RFC 6750 §3.1): `invalid_request`, `invalid_token` or `insufficient_scope`.
    pub fn error(&self) -> Option<&str> {
        self.param("error")
    }

    /// Whether this challenge asks for a new token: `invalid_token`, or no error code at all (RFC 6750
    /// §3.1: a request without credentials gets a challenge with no error). `insufficient_scope` and
    /// `invalid_request` are not fixed by a refresh.
    pub fn wants_new_token(&self) -> bool {
        matches!(self.error(), None | Some("invalid_token"))
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("scheme", &self.scheme)
            .field("params", &self.params)
            .finish()
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    /// An RFC 9110 `token` (tchar+).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b));
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A token or a quoted-string (with `\` escapes), unquoted.
    fn value(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return self.token();
        }
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6750_examples() {
        let c = Challenge::bearer(r#"Bearer realm="example""#).unwrap();
        assert_eq!(c.param("realm"), Some("example"));
        assert!(c.wants_new_token());
        let c = Challenge::bearer(
            r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#,
        )
        .unwrap();
        assert_eq!(c.error(), Some("invalid_token"));
        assert!(c.wants_new_token());
        let c = Challenge::bearer(r#"bearer error="insufficient_scope", scope="admin""#).unwrap();
        assert!(!c.wants_new_token());
        assert_eq!(c.param("SCOPE"), Some("admin"));
    }

    #[test]
    fn garbage_does_not_panic() {
        for h in [
            "",
            ",,,",
            "=",
            "\"",
            "Bearer error=",
            "Bearer error=\"unterminated",
            "é=ü",
            "Bearer ==x",
        ] {
            let _ = Challenge::parse_all(h);
        }
        assert!(Challenge::bearer("Basic realm=x").is_none());
        assert_eq!(Challenge::bearer("Bearer").unwrap().error(), None);
        assert_eq!(
            Challenge::bearer(r#"Bearer error="a\"b""#).unwrap().error(),
            Some("a\"b")
        );
    }
}
