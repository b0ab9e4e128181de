//! The network side: an accept thread, an elastic pool of connection
//! threads (HTTP/1.1 keep-alive, one request at a time per connection), and
//! a bounded shutdown that closes every open connection.

use crate::counters::bump;
use crate::http::{self, ParseError, Reset, Response};
use crate::router::route;
use crate::state::Shared;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Upper bound on connection threads; further connections wait in the
/// queue until a thread frees up.
const MAX_THREADS: usize = 4096;
/// Idle threads beyond the warm pool exit after this long.
const IDLE_RETIRE: Duration = Duration::from_secs(2);
/// How long [`Runtime::shutdown`] waits for threads before detaching them.
const JOIN_DEADLINE: Duration = Duration::from_secs(3);
const STACK_SIZE: usize = 512 * 1024;

#[derive(Debug, Default)]
struct PoolState {
    /// Accepted connections nobody serves yet.
    queue: VecDeque<TcpStream>,
    /// Threads waiting for a connection.
    idle: usize,
    /// Live connection threads.
    threads: usize,
    handles: Vec<JoinHandle<()>>,
    closed: bool,
}

/// Open connections, so shutdown can close them under their threads' feet.
#[derive(Debug, Default)]
struct Registry {
    open: HashMap<u64, TcpStream>,
    next_id: u64,
    closed: bool,
}

#[derive(Debug)]
struct Pool {
    shared: Arc<Shared>,
    state: Mutex<PoolState>,
    cv: Condvar,
    registry: Mutex<Registry>,
    /// Threads kept alive while idle.
    warm: usize,
}

/// A running server: accept thread plus connection threads.
#[derive(Debug)]
pub(crate) struct Runtime {
    pool: Arc<Pool>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl Runtime {
    /// Binds `127.0.0.1:0` and starts accepting.
    pub fn start(shared: Arc<Shared>, warm: usize) -> io::Result<Runtime> {
        let listener = listen()?;
        let addr = listener.local_addr()?;
        let pool = Arc::new(Pool {
            shared,
            state: Mutex::new(PoolState::default()),
            cv: Condvar::new(),
            registry: Mutex::new(Registry::default()),
            warm,
        });
        let acceptor = {
            let pool = Arc::clone(&pool);
            thread::Builder::new()
                .name(format!("testserver-{}-accept", addr.port()))
                .stack_size(STACK_SIZE)
                .spawn(move || accept_loop(&pool, &listener))?
        };
        Ok(Runtime {
            pool,
            addr,
            acceptor: Some(acceptor),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every connection, wakes sleeping handlers and
    /// joins all threads, giving up (detaching) after [`JOIN_DEADLINE`].
    pub fn shutdown(&mut self) {
        let pool = &self.pool;
        pool.shared.shutdown.trigger();
        let mut handles = {
            let mut st = pool.state.lock();
            st.closed = true;
            st.queue.clear();
            pool.cv.notify_all();
            std::mem::take(&mut st.handles)
        };
        {
            let mut reg = pool.registry.lock();
            reg.closed = true;
            for stream in reg.open.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        // Wake the accept thread out of accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
        handles.extend(self.acceptor.take());

        let deadline = Instant::now() + JOIN_DEADLINE;
        while handles.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        for h in handles {
            if h.is_finished() {
                let _ = h.join();
            } // else: detached; it holds only Arcs and exits on its own.
        }
    }
}

/// Pending connections the kernel queues for `accept`. std's `TcpListener::bind` asks for 128; a
/// burst of 256 clients connecting at once (the refresh-storm benchmark) overflows that, and a
/// dropped SYN is retried only after a second. The kernel caps it at `net.core.somaxconn`.
const BACKLOG: i32 = 1024;

/// A listening socket on `127.0.0.1:0` with a [`BACKLOG`]-deep accept queue.
fn listen() -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?; // as std's `TcpListener::bind` does on Unix
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

fn accept_loop(pool: &Arc<Pool>, listener: &TcpListener) {
    loop {
        let accepted = listener.accept();
        if pool.shared.shutdown.is_set() {
            return;
        }
        match accepted {
            Ok((stream, _)) => {
                bump(&pool.shared.counters.connections);
                pool.dispatch(stream);
            }
            Err(e) => match e.kind() {
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => {}
                // e.g. out of file descriptors: back off instead of spinning.
                _ => thread::sleep(Duration::from_millis(10)),
            },
        }
    }
}

impl Pool {
    /// Hands a new connection to an idle thread, or spawns one.
    fn dispatch(self: &Arc<Self>, stream: TcpStream) {
        let mut st = self.state.lock();
        if st.closed {
            return;
        }
        st.queue.push_back(stream);
        if st.queue.len() <= st.idle {
            self.cv.notify_one();
            return;
        }
        if st.threads >= MAX_THREADS {
            return; // served when a thread frees up
        }
        let pool = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name("testserver-conn".into())
            .stack_size(STACK_SIZE)
            .spawn(move || pool.worker_loop());
        match spawned {
            Ok(handle) => {
                st.threads += 1;
                if st.handles.len() >= 2 * self.warm + 64 {
                    st.handles.retain(|h| !h.is_finished());
                }
                st.handles.push(handle);
            }
            Err(_) if st.threads == 0 => {
                st.queue.pop_back(); // nobody could ever serve it: close it
            }
            Err(_) => {}
        }
    }

    fn worker_loop(&self) {
        loop {
            let stream = {
                let mut st = self.state.lock();
                loop {
                    if st.closed {
                        st.threads -= 1;
                        return;
                    }
                    if let Some(s) = st.queue.pop_front() {
                        break s;
                    }
                    st.idle += 1;
                    let timed_out = self.cv.wait_for(&mut st, IDLE_RETIRE).timed_out();
                    st.idle -= 1;
                    if timed_out && st.queue.is_empty() && st.threads > self.warm {
                        st.threads -= 1;
                        return;
                    }
                }
            };
            self.serve_registered(stream);
        }
    }

    fn serve_registered(&self, stream: TcpStream) {
        let id = {
            let mut reg = self.registry.lock();
            if reg.closed {
                return;
            }
            let Ok(clone) = stream.try_clone() else {
                return;
            };
            reg.next_id += 1;
            let id = reg.next_id;
            reg.open.insert(id, clone);
            id
        };
        // A handler bug must not take the thread (and the pool's bookkeeping)
        // down with it: the connection is just closed.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| serve_connection(&self.shared, &stream)));
        self.registry.lock().open.remove(&id);
    }
}

/// Serves requests on one connection until it closes, errs, or asks to
/// close.
fn serve_connection(shared: &Shared, stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut reader = http::Reader::new(stream);
    let mut writer = stream;
    loop {
        match reader.read_request(&mut writer) {
            Ok(Some(req)) => {
                let resp = route(shared, &req);
                let keep_alive = req.keep_alive && !shared.shutdown.is_set();
                let bytes = http::serialize(&resp, &date(shared), keep_alive, req.method == "HEAD");
                if let Some(at) = resp.reset {
                    bump(&shared.counters.connections_reset);
                    let body_len = if req.method == "HEAD" {
                        0
                    } else {
                        resp.body.len()
                    };
                    let cut = match at {
                        Reset::Immediately => 0,
                        Reset::AfterBody(n) => bytes.len() - body_len + n.min(body_len),
                    };
                    let _ = writer.write_all(&bytes[..cut]);
                    reset(stream);
                    return;
                }
                if writer.write_all(&bytes).is_err() || !keep_alive {
                    return;
                }
            }
            Ok(None) | Err(ParseError::Io) => return,
            Err(ParseError::Bad(status, msg)) => {
                let resp = Response::json_value(
                    status,
                    &serde_json::json!({ "error": "invalid_request", "error_description": msg }),
                );
                let _ = writer.write_all(&http::serialize(&resp, &date(shared), false, false));
                linger_close(stream);
                return;
            }
        }
    }
}

/// Makes the coming close send a TCP RST instead of a FIN (`SO_LINGER` 0).
/// The socket closes when its last handle (this thread's and the
/// registry's clone) is dropped, right after the connection loop returns.
fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// The `Date` header: now, moved by the configured skew.
fn date(shared: &Shared) -> String {
    http_date(SystemTime::now(), shared.date_skew_secs.load(Relaxed))
}

/// The last second an HTTP date can express: 9999-12-31 23:59:59 UTC.
const LAST_HTTP_DATE: Duration = Duration::from_secs(253_402_300_799);

/// `now + skew_secs` as an IMF-fixdate (RFC 9110 §5.6.7), kept within 1970..=9999.
fn http_date(now: SystemTime, skew_secs: i64) -> String {
    let skew = Duration::from_secs(skew_secs.unsigned_abs());
    let moved = if skew_secs >= 0 {
        now.checked_add(skew)
    } else {
        now.checked_sub(skew)
    };
    let latest = UNIX_EPOCH + LAST_HTTP_DATE;
    let at = match moved {
        Some(t) => t.clamp(UNIX_EPOCH, latest),
        None if skew_secs < 0 => UNIX_EPOCH,
        None => latest,
    };
    httpdate::fmt_http_date(at)
}

/// Half-closes and drains what the peer is still sending (briefly), so the
/// error response is not lost to a TCP reset.
fn linger_close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut buf = [0u8; 8192];
    let mut reader = stream;
    while Instant::now() < deadline {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_skewed_and_clamped() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t, 0), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(t, 3600), "Sun, 06 Nov 1994 09:49:37 GMT");
        assert_eq!(http_date(t, -86_400), "Sat, 05 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(t, i64::MIN), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(t, i64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }
}
