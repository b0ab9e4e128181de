//! [`Origin`]: scheme, host and port, the unit every URL comparison works on.

use ureq::http::Uri;

/// Scheme, host and port of a URL: the unit the token is scoped to (RFC 6454). The host is lowercased
/// and the port made explicit, so `https://API.example.com` and `https://api.example.com:443` match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses `url` and takes its origin. The error names the URL by `what` (e.g. "base URL"), never
    /// by its text.
    pub(crate) fn parse(url: &str, what: &str) -> Result<(Uri, Origin), String> {
        let uri: Uri = url
            .parse()
            .map_err(|_| format!("the {what} does not parse"))?;
        let origin = Origin::of(&uri)
            .ok_or_else(|| format!("the {what} needs an http(s) scheme and a host"))?;
        Ok((uri, origin))
    }

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
