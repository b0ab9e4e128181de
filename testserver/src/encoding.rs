//! Small, allocation-light codecs the server needs and that we do not pull
//! in crates for: percent / `application/x-www-form-urlencoded` decoding,
//! base64 decoding (for HTTP Basic), JSON string quoting and the IMF-fixdate
//! used by the `Date` header.

use std::time::{SystemTime, UNIX_EPOCH};

/// Why a form body or query string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FormError {
    /// A `%` not followed by two hex digits.
    BadPercent,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` becomes a
/// space and `%XX` becomes the byte `XX`.
pub(crate) fn form_decode(s: &str) -> Result<String, FormError> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&b| hex_val(b));
                let lo = bytes.get(i + 2).and_then(|&b| hex_val(b));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(FormError::BadPercent),
                }
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

/// Parses `a=1&b=two+words` into ordered, decoded pairs. Empty segments
/// (`a=1&&b=2`) are skipped; a segment without `=` has an empty value.
pub(crate) fn parse_form(s: &str) -> Result<Vec<(String, String)>, FormError> {
    s.split('&')
        .filter(|seg| !seg.is_empty())
        .map(|seg| {
            let (k, v) = seg.split_once('=').unwrap_or((seg, ""));
            Ok((form_decode(k)?, form_decode(v)?))
        })
        .collect()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes standard (RFC 4648 §4) base64, with or without `=` padding.
/// Returns `None` on any character outside the alphabet or a bad length.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// Appends `s` to `out` as a quoted JSON string.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    // serde_json's escaping is correct for every input; writing into a
    // String cannot fail.
    out.push_str(&serde_json::Value::from(s).to_string());
}

/// Formats `now + skew_secs` as an RFC 9110 IMF-fixdate,
/// e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(now: SystemTime, skew_secs: i64) -> String {
    let secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
    .saturating_add(skew_secs);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // 1970-01-01 was a Thursday (index 4).
    let wd = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    format!(
        "{wd}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        MONTHS[(m - 1) as usize],
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 -> (y, m, d).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%20c%2B%3d").unwrap(), "a b c+=");
        assert_eq!(form_decode("%E2%82%AC").unwrap(), "€");
        assert_eq!(form_decode("%zz"), Err(FormError::BadPercent));
        assert_eq!(form_decode("%4"), Err(FormError::BadPercent));
        assert_eq!(form_decode("%ff"), Err(FormError::NotUtf8));
        assert_eq!(
            parse_form("grant_type=refresh_token&&scope=a+b&flag").unwrap(),
            vec![
                ("grant_type".into(), "refresh_token".into()),
                ("scope".into(), "a b".into()),
                ("flag".into(), String::new()),
            ]
        );
        assert!(parse_form("").unwrap().is_empty());
    }

    #[test]
    fn base64() {
        assert_eq!(
            base64_decode("ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ=").unwrap(),
            b"demo-client:demo-secret"
        );
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        assert!(base64_decode("Y").is_none());
        assert!(base64_decode("Y!==").is_none());
        assert!(base64_decode("ä").is_none());
    }

    #[test]
    fn json_strings() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\c\n");
        assert_eq!(s, r#""a\"b\\c\n""#);
    }

    #[test]
    fn imf_fixdate() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t, 0), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(UNIX_EPOCH, 0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(UNIX_EPOCH, -1), "Wed, 31 Dec 1969 23:59:59 GMT");
        // 2000-02-29 (leap day) 12:00:00 UTC
        assert_eq!(
            http_date(UNIX_EPOCH, 951_825_600),
            "Tue, 29 Feb 2000 12:00:00 GMT"
        );
        assert_eq!(http_date(t, 3600), "Sun, 06 Nov 1994 09:49:37 GMT");
    }
}
