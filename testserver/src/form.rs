//! `application/x-www-form-urlencoded` decoding for token-endpoint bodies, query strings and Basic
//! credentials, on `form_urlencoded` and `percent-encoding`.
//!
//! Stricter than those crates alone, which pass a stray `%` through and replace invalid UTF-8: here
//! both are errors, so a client that encodes its form wrongly gets a `400` instead of being
//! understood by luck.

/// Why a form body, query string or component could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FormError {
    /// A `%` not followed by two hex digits.
    BadPercent,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

/// Every `%` starts a `%XX` escape, and the decoded bytes are UTF-8.
fn check(raw: &[u8]) -> Result<(), FormError> {
    let mut rest = raw;
    while let Some(i) = rest.iter().position(|&b| b == b'%') {
        match rest.get(i + 1..i + 3) {
            Some([hi, lo]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                rest = &rest[i + 3..];
            }
            _ => return Err(FormError::BadPercent),
        }
    }
    // `&`, `=` and `+` are ASCII, so checking the whole input at once is checking every component.
    percent_encoding::percent_decode(raw)
        .decode_utf8()
        .map(drop)
        .map_err(|_| FormError::NotUtf8)
}

/// Parses `a=1&b=two+words` into ordered, decoded pairs. Empty segments (`a=1&&b=2`) are skipped; a
/// segment without `=` has an empty value.
pub(crate) fn parse_form(raw: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    check(raw)?;
    Ok(form_urlencoded::parse(raw).into_owned().collect())
}

/// Decodes one component: `+` becomes a space and `%XX` the byte `XX`.
pub(crate) fn decode_component(s: &str) -> Result<String, FormError> {
    check(s.as_bytes())?;
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| FormError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components() {
        assert_eq!(decode_component("a+b%20c%2B%3d").unwrap(), "a b c+=");
        assert_eq!(decode_component("%E2%82%AC").unwrap(), "€");
        assert_eq!(decode_component("%zz"), Err(FormError::BadPercent));
        assert_eq!(decode_component("%4"), Err(FormError::BadPercent));
        assert_eq!(decode_component("%ff"), Err(FormError::NotUtf8));
    }

    #[test]
    fn forms() {
        assert_eq!(
            parse_form(b"grant_type=refresh_token&&scope=a+b&flag&x=%26%3D").unwrap(),
            vec![
                ("grant_type".into(), "refresh_token".into()),
                ("scope".into(), "a b".into()),
                ("flag".into(), String::new()),
                ("x".into(), "&=".into()),
            ]
        );
        assert!(parse_form(b"").unwrap().is_empty());
        assert_eq!(parse_form(b"a=%zz"), Err(FormError::BadPercent));
        assert_eq!(parse_form(b"a=1&b=%"), Err(FormError::BadPercent));
        assert_eq!(parse_form(b"a=%E2%82"), Err(FormError::NotUtf8));
        assert_eq!(parse_form(b"a=\xff"), Err(FormError::NotUtf8));
    }
}
