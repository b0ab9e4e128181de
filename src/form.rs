//! What the crate encodes itself rather than take a dependency for: form/percent encoding
//! (`application/x-www-form-urlencoded`) for token requests and query strings, its decoding for
//! the query of a login's redirect, base64 for HTTP Basic credentials, and base64url (RFC 4648 §5,
//! unpadded) for PKCE values and JWT payloads.

use std::fmt::Write as _;

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

/// Decodes a form body or query string (`a=1&b=two+words`) into pairs, in order. Empty segments
/// are skipped; a segment without `=` has an empty value. `None` when an escape is broken (`%` not
/// followed by two hex digits) or a name or value is not UTF-8: a redirect carrying such a value
/// was not made by an authorization server.
pub(crate) fn form_decode(raw: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for segment in raw.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = segment.split_once('=').unwrap_or((segment, ""));
        pairs.push((form_decode_component(k)?, form_decode_component(v)?));
    }
    Some(pairs)
}

/// One component of a form: `+` is a space, `%XX` the byte `XX`.
fn form_decode_component(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 §5; RFC 7636 Appendix A).
pub(crate) fn base64url(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(BASE64URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Decodes base64url without padding (RFC 7515 §2, as JWTs carry it). `None` for any byte outside
/// the alphabet (padding included), a length no encoding produces (one character left over), or
/// leftover bits that are not zero (so each byte string has exactly one accepted encoding).
pub(crate) fn base64url_decode(input: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        }))
    }
    let bytes = input.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for &c in chunk {
            n = (n << 6) | value(c)?;
        }
        // A short final chunk: 2 characters carry 1 byte (4 spare bits), 3 carry 2 (2 spare bits).
        let (len, spare) = match chunk.len() {
            4 => (3, 0),
            3 => (2, 2),
            _ => (1, 4),
        };
        if n & ((1 << spare) - 1) != 0 {
            return None;
        }
        n >>= spare;
        for i in (0..len).rev() {
            out.push((n >> (8 * i)) as u8);
        }
    }
    Some(out)
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
    fn form_decoding() {
        assert_eq!(
            form_decode("code=a%2Fb&&state=x+y&flag&e=%C3%BC").unwrap(),
            vec![
                ("code".to_owned(), "a/b".to_owned()),
                ("state".to_owned(), "x y".to_owned()),
                ("flag".to_owned(), String::new()),
                ("e".to_owned(), "ü".to_owned()),
            ]
        );
        assert_eq!(form_decode("").unwrap(), vec![]);
        for bad in ["a=%", "a=%4", "a=%zz", "a=%ff", "%C3=1"] {
            assert_eq!(form_decode(bad), None, "{bad}");
        }
        // What form_pairs writes, form_decode reads.
        let pairs = [("a b", "c&d=e"), ("ü", "~+%")];
        let back = form_decode(&form_pairs(pairs)).unwrap();
        assert_eq!(back[0], ("a b".to_owned(), "c&d=e".to_owned()));
        assert_eq!(back[1], ("ü".to_owned(), "~+%".to_owned()));
    }

    #[test]
    fn base64url_matches_rfc4648_vectors_without_padding() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), want);
            assert_eq!(base64url_decode(want).unwrap(), input.as_bytes());
        }
        // The URL-safe characters, where standard base64 has `+` and `/`.
        assert_eq!(base64url(&[0xfb, 0xff, 0xbf]), "-_-_");
        assert_eq!(base64url_decode("-_-_").unwrap(), [0xfb, 0xff, 0xbf]);
        // RFC 7636 Appendix B: the verifier's octets encode to the verifier.
        let octets = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        assert_eq!(
            base64url(&octets),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    #[test]
    fn base64url_decoding_is_strict() {
        for bad in ["Zg==", "Z", "Zm9vY", "Zm+v", "Zm/v", "Zm9v\n", "Zh", "Zm9"] {
            assert_eq!(base64url_decode(bad), None, "{bad}");
        }
        // Every byte string round-trips.
        let all: Vec<u8> = (0..=255).collect();
        for len in 0..all.len() {
            assert_eq!(
                base64url_decode(&base64url(&all[..len])).unwrap(),
                &all[..len]
            );
        }
    }
}
