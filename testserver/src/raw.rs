//! A small programmable HTTP/1.1 server on loopback (parsing with httparse): a closure answers each
//! request after its body was read, counted and checksummed without being kept in memory, and an
//! answer's body can trickle out a byte at a time. For what the main test server does not do on
//! purpose: slow bodies, and uploads larger than its 1 MiB body limit.

use crate::relay::{Listener, read_head};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

/// A request as the handler sees it. The body itself is not kept: only its length and checksum.
#[derive(Clone, Debug)]
pub struct RawRequest {
    /// The method.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes received.
    pub body_len: u64,
    /// [`fnv1a`] of the body.
    pub body_fnv: u64,
    /// Whether the body came chunked.
    pub chunked: bool,
}

impl RawRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An answer.
#[derive(Clone, Debug)]
pub struct RawReply {
    /// The status code.
    pub status: u16,
    /// Extra headers (`Content-Length` is added).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// When set, the body is sent one byte at a time, this long apart.
    pub trickle: Option<Duration>,
}

impl RawReply {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> RawReply {
        RawReply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            trickle: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> RawReply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends the body one byte per `every`.
    pub fn trickle(mut self, every: Duration) -> RawReply {
        self.trickle = Some(every);
        self
    }
}

/// FNV-1a (64 bit) of `data`, continuing from `hash` (start with [`FNV_START`]).
pub fn fnv1a(mut hash: u64, data: &[u8]) -> u64 {
    for &b in data {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The FNV-1a offset basis.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

type Handler = dyn Fn(&RawRequest) -> RawReply + Send + Sync;

/// A running raw server. Dropping it stops it (a trickling answer stops within 50 ms).
pub struct RawServer {
    listener: Listener,
    requests: Arc<AtomicU64>,
}

impl fmt::Debug for RawServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawServer")
            .field("addr", &self.listener.addr())
            .finish_non_exhaustive()
    }
}

impl RawServer {
    /// Starts a server whose every request is answered by `handler`.
    ///
    /// # Panics
    ///
    /// If the port cannot be bound.
    pub fn start(handler: impl Fn(&RawRequest) -> RawReply + Send + Sync + 'static) -> RawServer {
        let handler: Arc<Handler> = Arc::new(handler);
        let requests = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::OnceLock::<Arc<AtomicBool>>::new());
        let listener = {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            Listener::start("raw", move |stream| {
                let stop = stop.get().cloned().unwrap_or_default();
                let _ = serve(stream, &*handler, &requests, &stop);
            })
            .unwrap_or_else(|e| panic!("tokengate-testserver: cannot start the raw server: {e}"))
        };
        let _ = stop.set(listener.stop_flag());
        RawServer { listener, requests }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.listener.addr())
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// Requests whose head was read so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }
}

fn serve(
    mut stream: TcpStream,
    handler: &Handler,
    requests: &AtomicU64,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut leftover = Vec::new();
    loop {
        let (head, rest) = if leftover.is_empty() {
            read_head(&mut stream)?
        } else {
            // A pipelined request: finish its head from what was read already.
            let mut joined = std::mem::take(&mut leftover);
            let mut chunk = [0u8; 4096];
            loop {
                if let Some(end) = joined.windows(4).position(|w| w == b"\r\n\r\n") {
                    let rest = joined.split_off(end + 4);
                    break (joined, rest);
                }
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                joined.extend_from_slice(&chunk[..n]);
            }
        };
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        if !matches!(parsed.parse(&head), Ok(httparse::Status::Complete(_))) {
            return Ok(());
        }
        requests.fetch_add(1, Relaxed);
        let mut req = RawRequest {
            method: parsed.method.unwrap_or("").to_owned(),
            target: parsed.path.unwrap_or("").to_owned(),
            headers: parsed
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            body_len: 0,
            body_fnv: FNV_START,
            chunked: false,
        };
        let mut body = Body {
            stream: &mut stream,
            buffered: rest,
        };
        if req
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            req.chunked = true;
            body.chunked(&mut req)?;
        } else {
            let len = req
                .header("content-length")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            body.exact(len, &mut req)?;
        }
        leftover = body.buffered;
        let reply = handler(&req);
        write_reply(&mut stream, &reply, stop)?;
    }
}

/// The body of one request: what was read past the head, then the socket.
struct Body<'a> {
    stream: &'a mut TcpStream,
    buffered: Vec<u8>,
}

impl Body<'_> {
    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buffered.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Consumes `len` body bytes into the request's count and checksum.
    fn exact(&mut self, mut len: u64, req: &mut RawRequest) -> io::Result<()> {
        while len > 0 {
            if self.buffered.is_empty() {
                self.fill()?;
            }
            let take = self
                .buffered
                .len()
                .min(usize::try_from(len).unwrap_or(usize::MAX));
            req.body_fnv = fnv1a(req.body_fnv, &self.buffered[..take]);
            req.body_len += take as u64;
            self.buffered.drain(..take);
            len -= take as u64;
        }
        Ok(())
    }

    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buffered.windows(2).position(|w| w == b"\r\n") {
                let line = self.buffered[..i].to_vec();
                self.buffered.drain(..i + 2);
                return Ok(line);
            }
            if self.buffered.len() > 64 * 1024 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk line too long",
                ));
            }
            self.fill()?;
        }
    }

    fn chunked(&mut self, req: &mut RawRequest) -> io::Result<()> {
        loop {
            let mut line = self.line()?;
            line.extend_from_slice(b"\r\n");
            let size = match httparse::parse_chunk_size(&line) {
                Ok(httparse::Status::Complete((_, size))) => size,
                _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")),
            };
            if size == 0 {
                // Trailers, up to the blank line.
                while !self.line()?.is_empty() {}
                return Ok(());
            }
            self.exact(size, req)?;
            if !self.line()?.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk not terminated",
                ));
            }
        }
    }
}

fn write_reply(stream: &mut TcpStream, reply: &RawReply, stop: &AtomicBool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
    stream.write_all(head.as_bytes())?;
    let Some(every) = reply.trickle else {
        return stream.write_all(&reply.body);
    };
    for b in &reply.body {
        let until = Instant::now() + every;
        while Instant::now() < until {
            if stop.load(Relaxed) {
                return Ok(());
            }
            thread::sleep(
                Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())),
            );
        }
        stream.write_all(&[*b])?;
    }
    Ok(())
}
