//! A forward HTTP proxy on loopback: `CONNECT` tunnels and plain absolute-form requests, optional
//! `Proxy-Authorization: Basic`, counters, and a copy of what clients sent through it (to show that
//! a token sent over `https` never crossed it in clear text). It only connects to loopback targets.

use crate::relay::{Capture, Listener, is_loopback, read_head, relay};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::fmt;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
struct Stats {
    tunnels: AtomicU64,
    plain: AtomicU64,
    auth_refused: AtomicU64,
    refused_targets: AtomicU64,
}

/// A running HTTP proxy. Dropping it stops it and closes its connections.
pub struct HttpProxy {
    listener: Listener,
    stats: Arc<Stats>,
    capture: Arc<Capture>,
    credentials: Option<(String, String)>,
}

impl fmt::Debug for HttpProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProxy")
            .field("addr", &self.listener.addr())
            .finish_non_exhaustive()
    }
}

impl HttpProxy {
    /// A proxy that lets everyone through.
    ///
    /// # Panics
    ///
    /// If the port cannot be bound.
    pub fn start() -> HttpProxy {
        Self::launch(None)
    }

    /// A proxy that answers `407` unless the request carries
    /// `Proxy-Authorization: Basic base64(user:password)`.
    ///
    /// # Panics
    ///
    /// If the port cannot be bound.
    pub fn with_credentials(user: &str, password: &str) -> HttpProxy {
        Self::launch(Some((user.to_owned(), password.to_owned())))
    }

    fn launch(credentials: Option<(String, String)>) -> HttpProxy {
        let stats = Arc::new(Stats::default());
        let capture = Arc::new(Capture::default());
        let expected = credentials
            .as_ref()
            .map(|(u, p)| format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))));
        let listener = {
            let (stats, capture) = (Arc::clone(&stats), Arc::clone(&capture));
            Listener::start("proxy", move |client| {
                serve(client, expected.as_deref(), &stats, &capture);
            })
            .unwrap_or_else(|e| panic!("tokengate-testserver: cannot start the proxy: {e}"))
        };
        HttpProxy {
            listener,
            stats,
            capture,
            credentials,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.listener.addr())
    }

    /// `http://user:password@127.0.0.1:PORT` with the credentials it requires (the plain URL when
    /// it requires none).
    pub fn url_with_credentials(&self) -> String {
        match &self.credentials {
            Some((u, p)) => format!("http://{u}:{p}@{}", self.listener.addr()),
            None => self.url(),
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// `CONNECT` tunnels opened.
    pub fn tunnels(&self) -> u64 {
        self.stats.tunnels.load(Relaxed)
    }

    /// Plain (absolute-form) requests forwarded.
    pub fn plain_requests(&self) -> u64 {
        self.stats.plain.load(Relaxed)
    }

    /// Requests answered `407` (missing or wrong credentials).
    pub fn auth_refused(&self) -> u64 {
        self.stats.auth_refused.load(Relaxed)
    }

    /// Whether `needle` appears in what clients sent through the proxy (request heads and tunnel
    /// traffic, the first 8 MiB).
    pub fn saw(&self, needle: &str) -> bool {
        self.capture.contains(needle.as_bytes())
    }

    /// How many bytes of client traffic were kept for [`saw`](HttpProxy::saw).
    pub fn bytes_seen(&self) -> usize {
        self.capture.len()
    }
}

fn answer(client: &mut TcpStream, status: &str, extra: &str) {
    let _ = write!(
        client,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

fn serve(mut client: TcpStream, expected: Option<&str>, stats: &Stats, capture: &Arc<Capture>) {
    let Ok((head, rest)) = read_head(&mut client) else {
        return;
    };
    capture.keep(&head);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let (Ok(httparse::Status::Complete(_)), Some(method), Some(target)) =
        (req.parse(&head), req.method, req.path)
    else {
        answer(&mut client, "400 Bad Request", "");
        return;
    };
    if let Some(expected) = expected {
        let given = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
            .map(|h| h.value);
        if given != Some(expected.as_bytes()) {
            stats.auth_refused.fetch_add(1, Relaxed);
            answer(
                &mut client,
                "407 Proxy Authentication Required",
                "Proxy-Authenticate: Basic realm=\"tokengate-test\"\r\n",
            );
            return;
        }
    }
    if method.eq_ignore_ascii_case("CONNECT") {
        let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
        if !is_loopback(host) {
            stats.refused_targets.fetch_add(1, Relaxed);
            answer(&mut client, "403 Forbidden", "");
            return;
        }
        let Ok(upstream) = TcpStream::connect(target) else {
            answer(&mut client, "502 Bad Gateway", "");
            return;
        };
        stats.tunnels.fetch_add(1, Relaxed);
        if client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .is_err()
        {
            return;
        }
        let mut upstream_w = upstream.try_clone().ok();
        if !rest.is_empty() {
            capture.keep(&rest);
            if let Some(w) = upstream_w.as_mut() {
                let _ = w.write_all(&rest);
            }
        }
        relay(client, upstream, Some(Arc::clone(capture)));
        return;
    }
    // Absolute form: `GET http://host:port/path HTTP/1.1`.
    let Some(after) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("HTTP://"))
    else {
        answer(&mut client, "400 Bad Request", "");
        return;
    };
    let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    if !is_loopback(host) {
        stats.refused_targets.fetch_add(1, Relaxed);
        answer(&mut client, "403 Forbidden", "");
        return;
    }
    let addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let Ok(mut upstream) = TcpStream::connect(addr) else {
        answer(&mut client, "502 Bad Gateway", "");
        return;
    };
    stats.plain.fetch_add(1, Relaxed);
    let path = if path.is_empty() { "/" } else { path };
    let line_end = head.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
    let mut forwarded = format!("{method} {path} HTTP/1.1").into_bytes();
    forwarded.extend_from_slice(&head[line_end..]);
    forwarded.extend_from_slice(&rest);
    if upstream.write_all(&forwarded).is_err() {
        return;
    }
    relay(client, upstream, Some(Arc::clone(capture)));
}
