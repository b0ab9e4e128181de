//! Following redirects: RFC 3986 §5.2-5.3 reference resolution of a `Location` against the URL it
//! answered, and the headers that must not follow a redirect to another origin.

use ureq::http::{HeaderName, HeaderValue, Uri, header};

/// Headers that carry credentials: dropped on every redirect hop that changes origin (scheme, host
/// or port), as curl and browsers do. Users add their own (e.g. `X-Api-Key`) with
/// [`ClientBuilder::sensitive_header`](crate::ClientBuilder::sensitive_header).
pub(crate) const SENSITIVE: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

/// Drops the credential-like headers (the built-in ones and `extra`) before a hop to another
/// origin.
pub(crate) fn strip_sensitive(headers: &mut Vec<(HeaderName, HeaderValue)>, extra: &[HeaderName]) {
    headers.retain(|(n, _)| !SENSITIVE.contains(n) && !extra.contains(n));
}

/// Resolves a `Location` header value against the URL it answered. `None` when the target is not
/// an absolute `http`/`https` URL after resolution (e.g. `mailto:` or a malformed value): the
/// redirect is then not followed. The fragment is dropped: it never goes on the wire.
pub(crate) fn resolve_location(base: &Uri, location: &str) -> Option<Uri> {
    let target = resolve(&base.to_string(), location.trim());
    let target = target.split_once('#').map_or(target.as_str(), |(t, _)| t);
    let scheme = target.split_once(':')?.0;
    let has_authority = target[scheme.len() + 1..].starts_with("//");
    if !has_authority
        || !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https")
    {
        return None;
    }
    let uri: Uri = target.parse().ok()?;
    uri.host().filter(|h| !h.is_empty())?;
    Some(uri)
}

/// The five components of a URI reference (RFC 3986 Appendix B's regular expression).
#[derive(Debug, Default, PartialEq, Eq)]
struct Parts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

/// `^(([^:/?#]+):)?(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?`
fn parse(s: &str) -> Parts<'_> {
    let mut p = Parts::default();
    let mut rest = s;
    if let Some(i) = rest.find([':', '/', '?', '#'])
        && i > 0
        && rest.as_bytes()[i] == b':'
    {
        p.scheme = Some(&rest[..i]);
        rest = &rest[i + 1..];
    }
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        p.authority = Some(&after[..end]);
        rest = &after[end..];
    }
    if let Some(i) = rest.find('#') {
        p.fragment = Some(&rest[i + 1..]);
        rest = &rest[..i];
    }
    if let Some(i) = rest.find('?') {
        p.query = Some(&rest[i + 1..]);
        rest = &rest[..i];
    }
    p.path = rest;
    p
}

/// RFC 3986 §5.2.2, the strict form (a reference with a scheme is absolute, even the base's own),
/// recomposed per §5.3. The scheme is compared and written in lower case (§3.1).
pub(crate) fn resolve(base: &str, reference: &str) -> String {
    let b = parse(base);
    let r = parse(reference);
    let (scheme, authority, path, query);
    if r.scheme.is_some() {
        scheme = r.scheme;
        authority = r.authority;
        path = remove_dot_segments(r.path);
        query = r.query;
    } else {
        if r.authority.is_some() {
            authority = r.authority;
            path = remove_dot_segments(r.path);
            query = r.query;
        } else {
            if r.path.is_empty() {
                path = b.path.to_owned();
                query = r.query.or(b.query);
            } else {
                path = if r.path.starts_with('/') {
                    remove_dot_segments(r.path)
                } else {
                    remove_dot_segments(&merge(&b, r.path))
                };
                query = r.query;
            }
            authority = b.authority;
        }
        scheme = b.scheme;
    }
    let mut out = String::with_capacity(base.len() + reference.len());
    if let Some(s) = scheme {
        out.push_str(&s.to_ascii_lowercase());
        out.push(':');
    }
    if let Some(a) = authority {
        out.push_str("//");
        out.push_str(a);
    }
    out.push_str(&path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = r.fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// §5.2.3.
fn merge(base: &Parts<'_>, path: &str) -> String {
    if base.authority.is_some() && base.path.is_empty() {
        return format!("/{path}");
    }
    match base.path.rfind('/') {
        Some(i) => format!("{}{path}", &base.path[..=i]),
        None => path.to_owned(),
    }
}

/// §5.2.4, step by step.
fn remove_dot_segments(input: &str) -> String {
    let mut input = input;
    let mut output = String::with_capacity(input.len());
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest; // A
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest; // A
        } else if input.starts_with("/./") {
            input = &input[2..]; // B: "/./x" -> "/x"
        } else if input == "/." {
            input = "/"; // B
        } else if input.starts_with("/../") || input == "/.." {
            // C: replace with "/" and drop the last output segment.
            input = if input == "/.." { "/" } else { &input[3..] };
            let cut = output.rfind('/').unwrap_or(0);
            output.truncate(cut);
        } else if input == "." || input == ".." {
            input = ""; // D
        } else {
            // E: move the first segment (with its leading "/", if any) to the output.
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://a/b/c/d;p?q";

    /// RFC 3986 §5.4.1 Normal Examples.
    #[test]
    fn rfc3986_normal_examples() {
        for (reference, want) in [
            ("g:h", "g:h"),
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q#s"),
            ("g#s", "http://a/b/c/g#s"),
            ("g?y#s", "http://a/b/c/g?y#s"),
            (";x", "http://a/b/c/;x"),
            ("g;x", "http://a/b/c/g;x"),
            ("g;x?y#s", "http://a/b/c/g;x?y#s"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../", "http://a/"),
            ("../../g", "http://a/g"),
        ] {
            assert_eq!(resolve(BASE, reference), want, "{reference:?}");
        }
    }

    /// RFC 3986 §5.4.2 Abnormal Examples (strict parser: `http:g` keeps its scheme).
    #[test]
    fn rfc3986_abnormal_examples() {
        for (reference, want) in [
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("g?y/./x", "http://a/b/c/g?y/./x"),
            ("g?y/../x", "http://a/b/c/g?y/../x"),
            ("g#s/./x", "http://a/b/c/g#s/./x"),
            ("g#s/../x", "http://a/b/c/g#s/../x"),
            ("http:g", "http:g"),
        ] {
            assert_eq!(resolve(BASE, reference), want, "{reference:?}");
        }
    }

    #[test]
    fn remove_dot_segments_rfc_walkthroughs() {
        // The two step-by-step examples of §5.2.4.
        assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
        assert_eq!(remove_dot_segments("mid/content=5/../6"), "mid/6");
    }

    #[test]
    fn locations_become_request_uris() {
        let base: Uri = "http://h:1/b/c/d;p?q".parse().unwrap();
        let loc = |l: &str| resolve_location(&base, l).map(|u| u.to_string());
        assert_eq!(loc("?y").as_deref(), Some("http://h:1/b/c/d;p?y"));
        assert_eq!(loc("../g").as_deref(), Some("http://h:1/b/g"));
        assert_eq!(loc("HTTP://Other:2/x").as_deref(), Some("http://Other:2/x"));
        assert_eq!(loc("HtTpS://o/x#frag").as_deref(), Some("https://o/x"));
        assert_eq!(loc("//o:3/p").as_deref(), Some("http://o:3/p"));
        assert_eq!(loc(" /x ").as_deref(), Some("http://h:1/x"));
        assert_eq!(loc("mailto:a@b"), None);
        assert_eq!(loc("g:h"), None);
        assert_eq!(loc("http:g"), None);
        assert_eq!(loc("http://"), None);
    }

    #[test]
    fn sensitive_headers_go_and_others_stay() {
        let h = |n: &'static str| (HeaderName::from_static(n), HeaderValue::from_static("v"));
        let mut headers = vec![
            h("authorization"),
            h("cookie"),
            h("proxy-authorization"),
            h("x-api-key"),
            h("accept"),
        ];
        strip_sensitive(&mut headers, &[HeaderName::from_static("x-api-key")]);
        assert_eq!(headers, vec![h("accept")]);
    }
}
