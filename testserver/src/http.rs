//! HTTP/1.1 on one connection: request heads, chunk sizes and trailers are parsed by `httparse`;
//! this module adds only what a server must decide on top of a parser (RFC 9112): where a body
//! ends, whether the connection stays open, when to send `100 Continue`, and how big is too big.
//! Anything malformed becomes a [`ParseError`] so the connection loop can answer and close instead
//! of panicking. Responses are written with the reason phrases of the `http` crate.

use std::io::{self, Read, Write};

/// Most bytes accepted for the request line plus the header section.
const MAX_HEAD: usize = 256 * 1024;
/// Most header fields (or trailer fields) accepted in one request.
const MAX_HEADERS: usize = 128;
/// Largest request body accepted (after de-chunking).
const MAX_BODY: usize = 1024 * 1024;
/// How much [`Reader`] asks the socket for at a time.
const READ_SIZE: usize = 8 * 1024;

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
    /// (400, 413, 431, 501, 505) and close.
    Bad(u16, &'static str),
    /// The socket failed or closed mid-request: just close.
    Io,
}

impl From<io::Error> for ParseError {
    fn from(_: io::Error) -> Self {
        ParseError::Io
    }
}

/// Reads requests from one connection. Bytes that arrive ahead of need (a pipelined request, the
/// rest of a body) wait in its buffer for the next call.
#[derive(Debug)]
pub(crate) struct Reader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Where the unread bytes in `buf` start.
    start: usize,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            buf: Vec::with_capacity(READ_SIZE),
            start: 0,
        }
    }

    /// The bytes received and not yet used.
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Reads more bytes from the socket; `Ok(0)` at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_SIZE, 0);
        let n = loop {
            match self.inner.read(&mut self.buf[len..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        self.buf.truncate(len + *n.as_ref().unwrap_or(&0));
        n
    }

    /// Like [`Reader::fill`], but EOF is an error: the peer left mid-request.
    fn fill_or_fail(&mut self) -> Result<(), ParseError> {
        match self.fill()? {
            0 => Err(ParseError::Io),
            _ => Ok(()),
        }
    }

    /// Reads the next request. `Ok(None)` means the peer closed the connection cleanly between
    /// requests. `interim` receives `100 Continue` when the client asked for it.
    pub fn read_request<W: Write>(
        &mut self,
        interim: &mut W,
    ) -> Result<Option<Request>, ParseError> {
        let (mut req, http10) = loop {
            if let Some(head) = self.parse_head()? {
                break head;
            }
            if self.pending().len() > MAX_HEAD {
                return Err(ParseError::Bad(431, "request header section too large"));
            }
            if self.fill()? == 0 {
                // EOF: clean between requests, an error in the middle of one.
                return match self.pending().iter().all(|&b| b == b'\r' || b == b'\n') {
                    true => Ok(None),
                    false => Err(ParseError::Io),
                };
            }
        };

        // Body framing (RFC 9112 §6).
        let chunked = if req.header_count("transfer-encoding") > 0 {
            if req.header_count("content-length") > 0 {
                return Err(ParseError::Bad(
                    400,
                    "both Transfer-Encoding and Content-Length",
                ));
            }
            let mut codings = req
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
                .flat_map(|(_, v)| v.split(','))
                .map(str::trim)
                .filter(|c| !c.is_empty());
            let only_chunked = codings
                .next()
                .is_some_and(|c| c.eq_ignore_ascii_case("chunked"))
                && codings.next().is_none();
            if http10 || !only_chunked {
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
            req.body = self.read_chunked()?;
        } else if let Some(n) = content_length {
            req.body = self.take(n as usize)?;
        }
        Ok(Some(req))
    }

    /// Parses the request head from the pending bytes: `Ok(None)` when more bytes are needed.
    /// Returns the request (without its body) and whether it is HTTP/1.0.
    fn parse_head(&mut self) -> Result<Option<(Request, bool)>, ParseError> {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut fields);
        let used = match parsed.parse(self.pending()) {
            Ok(httparse::Status::Complete(used)) => used,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ParseError::Bad(431, "too many header fields"));
            }
            Err(httparse::Error::Version) if self.pending().windows(6).any(|w| w == b" HTTP/") => {
                return Err(ParseError::Bad(505, "unsupported HTTP version"));
            }
            Err(e) => return Err(ParseError::Bad(400, bad_head(e))),
        };
        if used > MAX_HEAD {
            return Err(ParseError::Bad(431, "request header section too large"));
        }
        // `parse` fills these in when it returns `Complete`.
        let (Some(method), Some(target), Some(version)) =
            (parsed.method, parsed.path, parsed.version)
        else {
            return Err(ParseError::Bad(400, "malformed request line"));
        };
        let http10 = version == 0;
        let target = origin_form(target).ok_or(ParseError::Bad(400, "malformed target"))?;
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                // Values may be Latin-1-ish: keep them readable rather than reject them.
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let mut req = Request {
            method: method.to_owned(),
            target,
            headers,
            body: Vec::new(),
            keep_alive: true,
        };
        req.keep_alive = wants_keep_alive(&req, http10);
        self.consume(used);
        Ok(Some((req, http10)))
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, ParseError> {
        while self.pending().len() < n {
            self.fill_or_fail()?;
        }
        let bytes = self.pending()[..n].to_vec();
        self.consume(n);
        Ok(bytes)
    }

    /// A chunked body (RFC 9112 §7.1), de-chunked; the trailer section is read and dropped.
    fn read_chunked(&mut self) -> Result<Vec<u8>, ParseError> {
        let mut body = Vec::new();
        loop {
            let size = loop {
                match httparse::parse_chunk_size(self.pending()) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.consume(used);
                        break size;
                    }
                    Ok(httparse::Status::Partial) => self.fill_or_fail()?,
                    Err(httparse::InvalidChunkSize) => {
                        return Err(ParseError::Bad(400, "malformed chunk size"));
                    }
                }
            };
            if size == 0 {
                break;
            }
            if body.len() as u64 + size > MAX_BODY as u64 {
                return Err(ParseError::Bad(413, "request body too large"));
            }
            body.extend_from_slice(&self.take(size as usize)?);
            if self.take(2)? != b"\r\n" {
                return Err(ParseError::Bad(400, "chunk not followed by CRLF"));
            }
        }
        loop {
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match httparse::parse_headers(self.pending(), &mut fields) {
                Ok(httparse::Status::Complete((used, _))) => {
                    self.consume(used);
                    return Ok(body);
                }
                Ok(httparse::Status::Partial) if self.pending().len() > MAX_HEAD => {
                    return Err(ParseError::Bad(431, "trailer section too large"));
                }
                Ok(httparse::Status::Partial) => self.fill_or_fail()?,
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(ParseError::Bad(431, "too many trailer fields"));
                }
                Err(_) => return Err(ParseError::Bad(400, "malformed trailer section")),
            }
        }
    }
}

/// What was wrong with a request head, for the `400` answer.
fn bad_head(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "malformed header name",
        httparse::Error::HeaderValue => "control character in header value",
        httparse::Error::NewLine => "malformed line ending",
        httparse::Error::Version => "malformed HTTP version",
        _ => "malformed request line",
    }
}

/// The target in origin form: as sent when it starts with `/` (or is `*`); the path and query of an
/// absolute-form `http(s)://` target. Anything else is `None`.
fn origin_form(target: &str) -> Option<String> {
    if target.starts_with('/') || target == "*" {
        return Some(target.to_owned());
    }
    let uri: http::Uri = target.parse().ok()?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return None;
    }
    Some(
        uri.path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned(),
    )
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

/// All `Content-Length` values must agree and be plain digits (RFC 9110 §8.6).
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

/// Serializes `resp` into one buffer (one `write` syscall for small
/// responses). `head_only` drops the body but keeps its `Content-Length`.
pub(crate) fn serialize(resp: &Response, date: &str, keep_alive: bool, head_only: bool) -> Vec<u8> {
    let body_len = if head_only { 0 } else { resp.body.len() };
    let reason = http::StatusCode::from_u16(resp.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Status");
    let mut out = Vec::with_capacity(160 + resp.headers.len() * 48 + body_len);
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {reason}\r\nDate: {date}\r\nServer: tokengate-testserver\r\nContent-Length: {}\r\n",
        resp.status,
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

    /// Feeds `raw` one byte per read, so every partial state is met.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buf[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }

    fn parse(raw: &str) -> Result<Option<Request>, ParseError> {
        let mut sink = Vec::new();
        Reader::new(Cursor::new(raw.as_bytes().to_vec())).read_request(&mut sink)
    }

    fn bad_status(raw: &str) -> u16 {
        match parse(raw) {
            Err(ParseError::Bad(s, _)) => s,
            other => {
                let shown: String = raw.chars().take(80).collect();
                panic!(
                    "expected a Bad error for {shown:?}..., got {:?}",
                    other.map(|_| ())
                )
            }
        }
    }

    #[test]
    fn parses_simple_get() {
        let r = parse("\r\nGET /api/x?q=1 HTTP/1.1\r\nHost: a\r\nX-A:  b \r\n\r\n")
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

    /// Every request `reader` yields until a clean EOF, as (target, body).
    fn drain<R: Read>(mut reader: Reader<R>) -> Vec<(String, Vec<u8>)> {
        let mut sink = Vec::new();
        let mut got = Vec::new();
        while let Some(r) = reader.read_request(&mut sink).unwrap() {
            got.push((r.target, r.body));
        }
        assert!(sink.is_empty(), "nobody asked for 100 Continue");
        got
    }

    #[test]
    fn pipelined_requests_whole_or_one_byte_at_a_time() {
        let raw = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nPUT /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nxyGET /c HTTP/1.1\r\n\r\n";
        let expected: Vec<(String, Vec<u8>)> = vec![
            ("/a".into(), b"abc".to_vec()),
            ("/b".into(), b"xy".to_vec()),
            ("/c".into(), Vec::new()),
        ];
        assert_eq!(drain(Reader::new(Cursor::new(raw.to_vec()))), expected);
        assert_eq!(drain(Reader::new(Trickle(raw))), expected);
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(parse(""), Ok(None)));
        assert!(matches!(parse("\r\n"), Ok(None)));
        assert_eq!(bad_status("\x16\x03\x01 nonsense\r\n\r\n"), 400);
        assert_eq!(bad_status("GET /\r\n\r\n"), 400);
        assert_eq!(bad_status("GET x HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(bad_status("GET ftp://h/x HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(bad_status("GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(bad_status("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), 400);
        assert_eq!(bad_status("GET / HTTP/1.1\r\n folded\r\n\r\n"), 400);
        assert_eq!(bad_status("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"), 400);
        assert_eq!(bad_status("GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n"), 400);
        assert_eq!(
            bad_status("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(
            bad_status("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            bad_status(
                "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
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
            bad_status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            501
        );
        assert_eq!(
            bad_status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
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
        assert_eq!(
            bad_status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n"),
            413
        );
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD + 1));
        assert_eq!(bad_status(&long), 431);
        let ok_long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(40_000));
        assert!(parse(&ok_long).unwrap().is_some());
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X-A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(bad_status(&many), 431);
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
        let r = Reader::new(Cursor::new(raw))
            .read_request(&mut sink)
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
        let out = serialize(&Response::empty(431), "D", false, false);
        assert!(out.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    }
}
