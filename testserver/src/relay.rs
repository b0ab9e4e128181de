//! What the TLS front, the proxies and the raw server share: a loopback listener whose connections
//! are each served on a thread, closed when the fixture is dropped, and a two-way byte relay that
//! can keep a copy of what the client sent.

use parking_lot::Mutex;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::{self, JoinHandle};

/// At most this much client traffic is kept for [`Capture`] (the rest is counted, not kept).
const CAPTURE_LIMIT: usize = 8 * 1024 * 1024;

/// Bytes a client sent through a fixture, for tests that look for a secret in them.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    bytes: Mutex<Vec<u8>>,
}

impl Capture {
    pub(crate) fn keep(&self, data: &[u8]) {
        let mut b = self.bytes.lock();
        let room = CAPTURE_LIMIT.saturating_sub(b.len());
        b.extend_from_slice(&data[..data.len().min(room)]);
    }

    pub(crate) fn contains(&self, needle: &[u8]) -> bool {
        !needle.is_empty() && self.bytes.lock().windows(needle.len()).any(|w| w == needle)
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.lock().len()
    }
}

/// A listener on an ephemeral port of `127.0.0.1` that hands each connection to `serve` on a
/// thread of its own. Dropping it stops accepting and shuts every open connection down.
pub(crate) struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Listener {
    pub(crate) fn start(
        name: &str,
        serve: impl Fn(TcpStream) + Send + Sync + 'static,
    ) -> io::Result<Listener> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let serve = Arc::new(serve);
        let acceptor = {
            let (stop, open) = (Arc::clone(&stop), Arc::clone(&open));
            thread::Builder::new()
                .name(format!("tg-{name}-accept"))
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Relaxed) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        if let Ok(clone) = stream.try_clone() {
                            let mut open = open.lock();
                            open.retain(|s| s.peer_addr().is_ok());
                            open.push(clone);
                        }
                        let serve = Arc::clone(&serve);
                        let _ = thread::Builder::new()
                            .stack_size(256 * 1024)
                            .spawn(move || serve(stream));
                    }
                })?
        };
        Ok(Listener {
            addr,
            stop,
            open,
            acceptor: Some(acceptor),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the fixture is being dropped (long-running handlers check it).
    pub(crate) fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        for s in self.open.lock().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Copies bytes both ways between `client` and `server` until either side closes; what the client
/// sends is also given to `capture`. Returns when both directions are done.
pub(crate) fn relay(client: TcpStream, server: TcpStream, capture: Option<Arc<Capture>>) {
    let (Ok(client_r), Ok(server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || copy(client_r, server_w, capture.as_deref()));
    copy(server, client, None);
    if let Ok(up) = up {
        let _ = up.join();
    }
}

fn copy(mut from: TcpStream, mut to: TcpStream, capture: Option<&Capture>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(c) = capture {
            c.keep(&buf[..n]);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// Reads an HTTP head (up to the blank line) from `stream`: the head and whatever followed it.
pub(crate) fn read_head(stream: &mut TcpStream) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether `host` names this machine's loopback: the fixtures never connect anywhere else.
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
