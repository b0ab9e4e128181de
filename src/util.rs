//! Small encoders the crate needs and does not take a dependency for: form/percent encoding
//! (`application/x-www-form-urlencoded`), base64 for HTTP Basic, and URL origins.

use std::fmt::Write as _;

use ureq::http::Uri;

/// Percent-encodes `s` for a form body or query string (WHATWG `application/x-www-form-urlencoded`:
/// space becomes `+`, unreserved bytes pass, everything else is `%XX`).
pub(crate) fn form_encode(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// Encodes pairs as `k=v&k2=v2` with [`form_encode`].
pub(crate) fn form_pairs<'a, 'b>(pairs: impl IntoIterator<Item = (&'a str, &'b str)>) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        form_encode(k, &mut out);
        out.push('=');
        form_encode(v, &mut out);
    }
    out
}

/// Standard base64 with padding (RFC 4648 §4).
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Scheme, host and port of a URL: the unit the token is scoped to (RFC 6454). The host is lowercased
/// and the port made explicit, so `https://API.example.com` and `https://api.example.com:443` match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    pub(crate) fn of(uri: &Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host()?.to_ascii_lowercase();
        let port = match uri.port_u16() {
            Some(p) => p,
            None => match scheme.as_str() {
                "http" => 80,
                "https" => 443,
                _ => return None,
            },
        };
        Some(Origin { scheme, host, port })
    }

    /// Whether `uri` has this origin: `Origin::of(uri) == Some(self)` without allocating (it runs
    /// on every request, and again on every redirect hop).
    pub(crate) fn matches(&self, uri: &Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        let port = match uri.port_u16() {
            Some(p) => p,
            None if scheme.eq_ignore_ascii_case("http") => 80,
            None if scheme.eq_ignore_ascii_case("https") => 443,
            None => return false,
        };
        port == self.port
            && scheme.eq_ignore_ascii_case(&self.scheme)
            && host.eq_ignore_ascii_case(&self.host)
    }

    pub(crate) fn is_https(&self) -> bool {
        self.scheme == "https"
    }

    /// Whether the host is a loopback address or `localhost`.
    pub(crate) fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_pairs([("a b", "c&d=e"), ("ü", "~")]),
            "a+b=c%26d%3De&%C3%BC=%7E"
        );
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let o = |s: &str| Origin::of(&s.parse::<Uri>().unwrap()).unwrap();
        assert_eq!(
            o("https://API.example.com/x"),
            o("https://api.example.com:443/y")
        );
        assert_ne!(o("https://a.com"), o("http://a.com"));
        assert_ne!(o("http://127.0.0.1:8080"), o("http://127.0.0.1:8081"));
        assert!(o("http://127.0.0.1:9").is_loopback());
        assert!(o("http://[::1]:9").is_loopback());
        assert!(o("http://localhost").is_loopback());
        assert!(!o("http://example.com").is_loopback());
    }

    #[test]
    fn matches_agrees_with_comparing_origins() {
        let urls = [
            "https://API.example.com/x",
            "https://api.example.com:443/y",
            "HTTPS://api.example.com",
            "http://api.example.com",
            "http://api.example.com:443",
            "https://api.example.com:8443",
            "https://api.example.org",
            "http://127.0.0.1:8080/a",
            "http://127.0.0.1:8081/a",
            "http://[::1]:8080/",
            "http://[::1]/",
            "ftp://api.example.com",
            "/relative/only",
        ];
        for a in urls {
            let a: Uri = a.parse().unwrap();
            let Some(origin) = Origin::of(&a) else {
                continue;
            };
            for b in urls {
                let b: Uri = b.parse().unwrap();
                assert_eq!(
                    origin.matches(&b),
                    Origin::of(&b).as_ref() == Some(&origin),
                    "{a} vs {b}"
                );
            }
        }
    }
}
