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

/// Parses a `Retry-After` value (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date (IMF-fixdate,
/// `Sun, 06 Nov 1994 08:49:37 GMT`), turned into the delay from `now`. A date in the past is no delay.
/// `None` for anything else (the obsolete RFC 850 and asctime date forms included).
pub(crate) fn retry_after(value: &str, now: std::time::SystemTime) -> Option<std::time::Duration> {
    use std::time::{Duration, UNIX_EPOCH};
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let rest = value.get(5..)?;
    let (day, rest) = rest.split_once(' ')?;
    let (month, rest) = rest.split_once(' ')?;
    let (year, rest) = rest.split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    if zone != "GMT" || value.as_bytes().get(3) != Some(&b',') {
        return None;
    }
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // An IMF-fixdate has a four-digit year; anything else is not a date (and would overflow).
    if !(0..=9999).contains(&year) || year_digits(value) != Some(4) {
        return None;
    }
    let unix = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec;
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(unix).ok()?))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// How many characters the year field of an IMF-fixdate has (the fourth space-separated field).
fn year_digits(value: &str) -> Option<usize> {
    value.split(' ').nth(3).map(str::len)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    fn retry_after_never_panics_or_wraps() {
        use std::time::{Duration, UNIX_EPOCH};
        let nows = [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)),
        ];
        for value in [
            "18446744073709551615",
            "99999999999999999999999",
            "Fri, 31 Dec 9999 23:59:60 GMT",
            "Mon, 01 Jan 0000 00:00:00 GMT",
            "Sun, 06 Nov 300000000000 08:49:37 GMT",
        ] {
            for now in nows {
                let _ = retry_after(value, now);
            }
        }
        assert_eq!(
            retry_after("18446744073709551615", UNIX_EPOCH),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn retry_after_seconds_and_http_dates() {
        use std::time::{Duration, UNIX_EPOCH};
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after("Sat, 05 Nov 1994 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after("Thu, 01 Jan 1970 00:00:00 GMT", UNIX_EPOCH),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after("Tue, 29 Feb 2000 00:00:01 GMT", UNIX_EPOCH),
            Some(Duration::from_secs(951_782_401))
        );
        for bad in [
            "",
            "soon",
            "-5",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov -1994 08:49:37 GMT",
            "Sün, 06 Nov 1994 08:49:37 GMT",
            // Absurd years: once an overflow (a panic in debug builds).
            "Sun, 06 Nov 300000000000 08:49:37 GMT",
            "Sun, 06 Nov 9223372036854775807 08:49:37 GMT",
            "Sun, 06 Nov 99999 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
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
