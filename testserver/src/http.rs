//! A deliberately small HTTP/1.1 codec: parse one request (request line,
//! headers, `Content-Length` or chunked body) from a buffered stream and
//! serialize one response. Anything malformed is reported as a
//! [`ParseError`] so the connection loop can answer `400` and close instead
//! of panicking.

use std::io::{self, BufRead, Read, Write};

/// Longest request line or header line accepted.
const MAX_LINE: u64 = 64 * 1024;
/// Most bytes accepted for the request line plus all header lines.
const MAX_HEAD: usize = 256 * 1024;
/// Most header lines accepted in one request.
const MAX_HEADERS: usize = 128;
/// Largest request body accepted (after de-chunking).
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// One parsed request, body included.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    /// The origin-form target (`/path?query`), as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// How many times header `name` occurs.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// The path part of the target, without the query string.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The raw (still percent-encoded) query string, if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub(crate) enum ParseError {
    /// The peer sent something that is not HTTP/1.x; answer with this status
    /// (400, 413, 501, ...) and close.
    Bad(u16, &'static str),
    /// The socket failed or closed mid-request: just close.
    Io,
}

impl From<io::Error> for ParseError {
    fn from(_: io::Error) -> Self {
        ParseError::Io
    }
}

/// Reads one line (without the trailing CRLF / LF). `Ok(None)` on EOF before
/// any byte.
fn read_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> Result<Option<()>, ParseError> {
    buf.clear();
    let n = r.by_ref().take(MAX_LINE).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if n as u64 >= MAX_LINE {
            return Err(ParseError::Bad(431, "line too long"));
        }
        return Err(ParseError::Io); // EOF mid-line
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(()))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Reads the next request. `Ok(None)` means the peer closed the connection
/// cleanly between requests. `interim` receives `100 Continue` when the
/// client asked for it.
pub(crate) fn read_request<R: BufRead, W: Write>(
    r: &mut R,
    interim: &mut W,
) -> Result<Option<Request>, ParseError> {
    let mut line = Vec::with_capacity(256);
    // RFC 9112 §2.2: ignore a few empty lines before the request line.
    let mut empty = 0;
    loop {
        if read_line(r, &mut line)?.is_none() {
            return Ok(None);
        }
        if !line.is_empty() {
            break;
        }
        empty += 1;
        if empty > 4 {
            return Err(ParseError::Bad(400, "empty request"));
        }
    }
    let request_line =
        std::str::from_utf8(&line).map_err(|_| ParseError::Bad(400, "request line not UTF-8"))?;
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err(ParseError::Bad(400, "malformed request line")),
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(ParseError::Bad(400, "malformed method"));
    }
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ParseError::Bad(400, "malformed target"));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        v if v.starts_with("HTTP/") => {
            return Err(ParseError::Bad(505, "unsupported HTTP version"));
        }
        _ => return Err(ParseError::Bad(400, "malformed HTTP version")),
    };
    let target = origin_form(target).ok_or(ParseError::Bad(400, "malformed target"))?;
    let method = method.to_owned();

    let mut head_bytes = line.len();
    let mut headers = Vec::with_capacity(16);
    loop {
        if read_line(r, &mut line)?.is_none() {
            return Err(ParseError::Io);
        }
        if line.is_empty() {
            break;
        }
        head_bytes += line.len();
        if headers.len() >= MAX_HEADERS || head_bytes > MAX_HEAD {
            return Err(ParseError::Bad(431, "request header section too large"));
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(ParseError::Bad(400, "obsolete line folding"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::Bad(400, "header without colon"))?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(ParseError::Bad(400, "malformed header name"));
        }
        let value = line[colon + 1..].trim_ascii();
        if value.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(ParseError::Bad(400, "control character in header value"));
        }
        // Names are ASCII (checked); values may be Latin-1-ish: keep them
        // readable rather than rejecting them.
        headers.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }

    let mut req = Request {
        method,
        target,
        headers,
        body: Vec::new(),
        keep_alive: true,
    };
    req.keep_alive = wants_keep_alive(&req, http10);

    // Body framing (RFC 9112 §6).
    let chunked = if req.header_count("transfer-encoding") > 0 {
        if req.header_count("content-length") > 0 {
            return Err(ParseError::Bad(
                400,
                "both Transfer-Encoding and Content-Length",
            ));
        }
        let codings: Vec<String> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
            .flat_map(|(_, v)| v.split(','))
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .collect();
        if http10 || codings.as_slice() != ["chunked"] {
            return Err(ParseError::Bad(501, "unsupported transfer coding"));
        }
        true
    } else {
        false
    };
    let content_length = if chunked { None } else { content_length(&req)? };
    if content_length.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ParseError::Bad(413, "request body too large"));
    }
    let has_body = chunked || content_length.is_some_and(|n| n > 0);
    if has_body
        && !http10
        && req
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        interim.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        interim.flush()?;
    }
    if chunked {
        req.body = read_chunked(r, &mut line)?;
    } else if let Some(n) = content_length {
        let mut body = vec![0; n as usize];
        r.read_exact(&mut body)?;
        req.body = body;
    }
    Ok(Some(req))
}

/// Strips `http://host` from an absolute-form target; rejects anything that
/// is neither origin-form nor absolute-form (except `*`).
fn origin_form(target: &str) -> Option<String> {
    if target.starts_with('/') || target == "*" {
        return Some(target.to_owned());
    }
    let lower = target
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower.starts_with("http://") {
        &target[7..]
    } else if lower.starts_with("https://") {
        &target[8..]
    } else {
        return None;
    };
    Some(match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => rest[i..].to_owned(),
        Some(i) => format!("/{}", &rest[i..]),
        None => "/".to_owned(),
    })
}

fn wants_keep_alive(req: &Request, http10: bool) -> bool {
    let mut close = false;
    let mut keep = false;
    for (_, v) in req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        for token in v.split(',').map(str::trim) {
            close |= token.eq_ignore_ascii_case("close");
            keep |= token.eq_ignore_ascii_case("keep-alive");
        }
    }
    if http10 { keep && !close } else { !close }
}

/// All `Content-Length` values must agree and be plain digits.
fn content_length(req: &Request) -> Result<Option<u64>, ParseError> {
    let mut found: Option<u64> = None;
    for (_, v) in req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        for part in v.split(',').map(str::trim) {
            if part.is_empty() || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::Bad(400, "malformed Content-Length"));
            }
            let n: u64 = part
                .parse()
                .map_err(|_| ParseError::Bad(400, "malformed Content-Length"))?;
            if found.is_some_and(|f| f != n) {
                return Err(ParseError::Bad(400, "conflicting Content-Length"));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

fn read_chunked<R: BufRead>(r: &mut R, line: &mut Vec<u8>) -> Result<Vec<u8>, ParseError> {
    let mut body = Vec::new();
    loop {
        if read_line(r, line)?.is_none() {
            return Err(ParseError::Io);
        }
        let size_part = line
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        if size_part.is_empty()
            || size_part.len() > 8
            || !size_part.iter().all(u8::is_ascii_hexdigit)
        {
            return Err(ParseError::Bad(400, "malformed chunk size"));
        }
        // At most 8 hex digits: fits in u64 without overflow.
        let size = size_part.iter().fold(0u64, |acc, &b| {
            acc * 16 + (b as char).to_digit(16).unwrap_or(0) as u64
        });
        if size == 0 {
            break;
        }
        if body.len() as u64 + size > MAX_BODY as u64 {
            return Err(ParseError::Bad(413, "request body too large"));
        }
        let start = body.len();
        body.resize(start + size as usize, 0);
        r.read_exact(&mut body[start..])?;
        if read_line(r, line)?.is_none() || !line.is_empty() {
            return Err(ParseError::Bad(400, "chunk not followed by CRLF"));
        }
    }
    // Trailer section: skip fields up to the empty line.
    for _ in 0..=MAX_HEADERS {
        if read_line(r, line)?.is_none() {
            return Err(ParseError::Io);
        }
        if line.is_empty() {
            return Ok(body);
        }
    }
    Err(ParseError::Bad(431, "too many trailer fields"))
}

/// A response about to be serialized.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Reset the connection (TCP RST) instead of finishing the response.
    pub reset: Option<Reset>,
}

/// Where a deliberately broken response stops and the connection is reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reset {
    /// Before writing anything.
    Immediately,
    /// After the head (which announces the full `Content-Length`) and this
    /// many bytes of the body.
    AfterBody(usize),
}

impl Response {
    /// A response with an empty body.
    pub fn empty(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            reset: None,
        }
    }

    /// A JSON response (`body` must already be JSON text).
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response::empty(status)
            .header("Content-Type", "application/json")
            .body(body)
    }

    /// A JSON response built from a [`serde_json::Value`].
    pub fn json_value(status: u16, value: &serde_json::Value) -> Self {
        Response::json(status, value.to_string())
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Replaces the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Resets the connection at `at` instead of finishing the response.
    pub fn reset(mut self, at: Reset) -> Self {
        self.reset = Some(at);
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// Serializes `resp` into one buffer (one `write` syscall for small
/// responses). `head_only` drops the body but keeps its `Content-Length`.
pub(crate) fn serialize(resp: &Response, date: &str, keep_alive: bool, head_only: bool) -> Vec<u8> {
    let body_len = if head_only { 0 } else { resp.body.len() };
    let mut out = Vec::with_capacity(160 + resp.headers.len() * 48 + body_len);
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nDate: {date}\r\nServer: tokengate-testserver\r\nContent-Length: {}\r\n",
        resp.status,
        reason(resp.status),
        resp.body.len()
    );
    out.extend_from_slice(if keep_alive {
        b"Connection: keep-alive\r\n"
    } else {
        b"Connection: close\r\n"
    });
    for (name, value) in &resp.headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(raw: &str) -> Result<Option<Request>, ParseError> {
        let mut sink = Vec::new();
        read_request(&mut Cursor::new(raw.as_bytes().to_vec()), &mut sink)
    }

    fn bad_status(raw: &str) -> u16 {
        match parse(raw) {
            Err(ParseError::Bad(s, _)) => s,
            other => panic!("expected a Bad error for {raw:?}, got {other:?}"),
        }
    }

    #[test]
    fn parses_simple_get() {
        let r = parse("GET /api/x?q=1 HTTP/1.1\r\nHost: a\r\nX-A:  b \r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path(), "/api/x");
        assert_eq!(r.query(), Some("q=1"));
        assert_eq!(r.header("x-a"), Some("b"));
        assert!(r.keep_alive);
        assert!(r.body.is_empty());
    }

    #[test]
    fn parses_bodies() {
        let r = parse("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap()
            .unwrap();
        assert_eq!(r.body, b"abc");
        let r = parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.body, b"abcde");
        let r = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!r.keep_alive);
        let r = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(r.keep_alive);
        let r = parse("GET http://h:1/p?q HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.target, "/p?q");
        assert!(!r.keep_alive);
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(parse(""), Ok(None)));
        assert_eq!(bad_status("\x16\x03\x01 nonsense\r\n\r\n"), 400);
        assert_eq!(bad_status("GET /\r\n\r\n"), 400);
        assert_eq!(bad_status("GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(bad_status("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), 400);
        assert_eq!(bad_status("GET / HTTP/1.1\r\n folded\r\n\r\n"), 400);
        assert_eq!(bad_status("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"), 400);
        assert_eq!(
            bad_status("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(
            bad_status("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            bad_status("POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"),
            413
        );
        assert_eq!(
            bad_status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            501
        );
        assert_eq!(
            bad_status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            400
        );
        assert_eq!(
            bad_status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n"),
            400
        );
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(70_000));
        assert_eq!(bad_status(&long), 431);
        let ok_long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(40_000));
        assert!(parse(&ok_long).unwrap().is_some());
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X-Big: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(200));
        assert_eq!(bad_status(&many), 431);
        assert_eq!(bad_status(&long), 431);
        assert!(matches!(
            parse("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"),
            Err(ParseError::Io)
        ));
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nHost: a"),
            Err(ParseError::Io)
        ));
    }

    #[test]
    fn expect_continue_gets_interim_response() {
        let mut sink = Vec::new();
        let raw = b"PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx".to_vec();
        let r = read_request(&mut Cursor::new(raw), &mut sink)
            .unwrap()
            .unwrap();
        assert_eq!(r.body, b"x");
        assert_eq!(sink, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn serializes() {
        let resp = Response::json(200, "{}").header("X", "y");
        let out = String::from_utf8(serialize(&resp, "D", true, false)).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\nDate: D\r\n"));
        assert!(out.contains("Content-Length: 2\r\n"));
        assert!(out.contains("Content-Type: application/json\r\nX: y\r\n\r\n{}"));
        let out = String::from_utf8(serialize(&resp, "D", false, true)).unwrap();
        assert!(out.contains("Connection: close\r\n"));
        assert!(out.ends_with("\r\n\r\n"));
    }
}
