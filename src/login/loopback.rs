//! The one-shot loopback listener of a browser login (RFC 8252 §7.3): `127.0.0.1`, an ephemeral
//! port, one redirect taken, stray requests answered and ignored. Requests are parsed with
//! httparse (the parser under ureq's own protocol crate).

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::{Cancel, cancelled};
use crate::error::{LoginError, LoginErrorKind};
use crate::form::form_decode;
use crate::sync::Clock;

/// The path of the redirect URI.
pub(crate) const CALLBACK_PATH: &str = "/callback";
/// How often the listener looks for connections and data (a wait on the login's cancellable
/// condition between two looks): a redirect is taken within this long of its arrival.
const TICK: Duration = Duration::from_millis(20);
/// The most connections kept open at once (a browser opens a few speculatively).
const MAX_CONNECTIONS: usize = 16;
/// The largest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// How long a connection may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The listener, bound and waiting.
pub(crate) struct Listener {
    listener: TcpListener,
    addr: SocketAddr,
}

/// The redirect the browser brought: its query parameters, and the connection to answer on.
pub(crate) struct Redirect {
    pub(crate) params: Vec<(String, String)>,
    stream: TcpStream,
}

/// A connection accepted, and what it has sent so far.
struct Connection {
    stream: TcpStream,
    head: Vec<u8>,
    since: Instant,
}

impl Listener {
    /// Binds `127.0.0.1` on a port the operating system picks.
    pub(crate) fn bind() -> Result<Listener, LoginError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| {
                LoginError::configuration("cannot listen on a loopback port for the redirect")
                    .with_source(e)
            })?;
        let addr = listener.local_addr().map_err(|e| {
            LoginError::configuration("cannot read the loopback port of the redirect")
                .with_source(e)
        })?;
        Ok(Listener { listener, addr })
    }

    /// `http://127.0.0.1:PORT/callback`.
    pub(crate) fn redirect_uri(&self) -> String {
        format!("http://{}{CALLBACK_PATH}", self.addr)
    }

    /// Waits for the browser's `GET /callback?...`, until `deadline` (on `clock`) or until
    /// `cancel`. Other requests (a favicon, a probe) are answered `404` and ignored; a connection
    /// that sends nothing usable within 10 s is closed.
    pub(crate) fn wait(
        &self,
        clock: &Clock,
        deadline: Instant,
        cancel: &Cancel,
    ) -> Result<Redirect, LoginError> {
        let mut connections: Vec<Connection> = Vec::new();
        loop {
            if cancel.is_cancelled() {
                return Err(cancelled());
            }
            let now = clock.now().mono;
            if now >= deadline {
                return Err(LoginError::new(
                    LoginErrorKind::TimedOut,
                    "the browser did not come back with the authorization in time",
                ));
            }
            self.accept(&mut connections, now);
            let mut i = 0;
            while i < connections.len() {
                match read_head(&mut connections[i], now) {
                    Step::Wait => i += 1,
                    Step::Drop => drop(connections.swap_remove(i)),
                    Step::Redirect(params) => {
                        let c = connections.swap_remove(i);
                        return Ok(Redirect {
                            params,
                            stream: c.stream,
                        });
                    }
                }
            }
            let _ = cancel.wait_until(clock, deadline.min(now + TICK));
        }
    }

    /// Takes every connection waiting to be accepted.
    fn accept(&self, connections: &mut Vec<Connection>, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if connections.len() == MAX_CONNECTIONS {
                        connections.remove(0);
                    }
                    connections.push(Connection {
                        stream,
                        head: Vec::new(),
                        since: now,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // WouldBlock: none left. Other errors (a connection reset before it was
                // accepted, too many open files) concern one connection: try again next tick.
                Err(_) => return,
            }
        }
    }
}

/// What to do with a connection after reading what it sent.
enum Step {
    Wait,
    Drop,
    Redirect(Vec<(String, String)>),
}

/// Reads what `c` has sent and, once its request head is complete, decides.
fn read_head(c: &mut Connection, now: Instant) -> Step {
    let mut buf = [0u8; 4096];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => return Step::Drop,
            Ok(n) => {
                c.head.extend_from_slice(&buf[..n]);
                if c.head.len() > MAX_HEAD {
                    answer(
                        &mut c.stream,
                        431,
                        "Request Header Fields Too Large",
                        &page("Request too large", ""),
                    );
                    return Step::Drop;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return Step::Drop,
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&c.head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) if now.duration_since(c.since) < HEAD_TIMEOUT => {
            return Step::Wait;
        }
        Ok(httparse::Status::Partial) => return Step::Drop,
        Err(_) => {
            answer(&mut c.stream, 400, "Bad Request", &page("Bad request", ""));
            return Step::Drop;
        }
    }
    let target = req.path.unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != CALLBACK_PATH {
        answer(&mut c.stream, 404, "Not Found", &page("Not found", ""));
        return Step::Drop;
    }
    if req.method != Some("GET") {
        answer(
            &mut c.stream,
            405,
            "Method Not Allowed",
            &page("Method not allowed", ""),
        );
        return Step::Drop;
    }
    // A query that does not decode is kept as no parameters: the login then fails on the
    // missing `state`, and says so to the browser.
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    Step::Redirect(form_decode(query).unwrap_or_default())
}

impl Redirect {
    /// The value of parameter `name`; `None` when it is missing or repeated (RFC 6749 §3.1:
    /// parameters must not be included more than once).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        let mut values = self.params.iter().filter(|(k, _)| k == name);
        let first = values.next()?;
        values.next().is_none().then_some(first.1.as_str())
    }

    /// Whether parameter `name` was sent at all.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.params.iter().any(|(k, _)| k == name)
    }

    /// Answers the browser with a small page, `ok` or not, and closes the connection.
    pub(crate) fn respond(mut self, ok: bool, detail: &str) {
        let _ = self.stream.set_nonblocking(false);
        let _ = self.stream.set_write_timeout(Some(Duration::from_secs(5)));
        if ok {
            let body = page(
                "Logged in",
                "You are logged in. You can close this tab and return to the application.",
            );
            answer(&mut self.stream, 200, "OK", &body);
        } else {
            let body = page(
                "Login failed",
                &format!(
                    "The login failed: {detail}. You can close this tab and return to the application."
                ),
            );
            answer(&mut self.stream, 400, "Bad Request", &body);
        }
    }
}

/// A small HTML page with `title` and `text` (both escaped).
fn page(title: &str, text: &str) -> String {
    let (title, text) = (escape(title), escape(text));
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{text}</p></body></html>\n"
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes a complete `Connection: close` answer (best effort: the browser may be gone).
fn answer(stream: &mut TcpStream, status: u16, reason: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .and_then(|()| stream.flush());
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::sync::mpsc;

    use super::*;

    /// Sends `request` to `addr` and returns the status line of the answer.
    fn send(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(s).read_line(&mut line).unwrap();
        line
    }

    #[test]
    fn stray_requests_are_answered_and_the_redirect_is_taken() {
        let listener = Listener::bind().unwrap();
        let addr = listener.addr;
        assert_eq!(listener.redirect_uri(), format!("http://{addr}/callback"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let far = Instant::now() + Duration::from_secs(30);
            let got = listener.wait(&Clock::default(), far, &Cancel::new());
            tx.send(got.map(|r| {
                let params = r.params.clone();
                r.respond(true, "");
                params
            }))
            .unwrap();
        });
        // A connection that never sends anything does not hold up the others.
        let _idle = TcpStream::connect(addr).unwrap();
        assert!(send(addr, "GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n").contains(" 404 "));
        assert!(
            send(
                addr,
                "POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            )
            .contains(" 405 ")
        );
        assert!(send(addr, "NOT HTTP\r\n\r\n").contains(" 400 "));
        let ok = send(
            addr,
            "GET /callback?code=c%2F1&state=s HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert!(ok.contains(" 200 "), "{ok}");
        let params = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
        assert_eq!(
            params,
            vec![
                ("code".to_owned(), "c/1".to_owned()),
                ("state".to_owned(), "s".to_owned())
            ]
        );
    }

    #[test]
    fn the_wait_ends_at_the_deadline_or_at_once_when_cancelled() {
        let listener = Listener::bind().unwrap();
        let e = listener
            .wait(
                &Clock::default(),
                Instant::now() + Duration::from_millis(50),
                &Cancel::new(),
            )
            .err()
            .unwrap();
        assert_eq!(e.kind(), LoginErrorKind::TimedOut);

        let cancel = Cancel::new();
        let (tx, rx) = mpsc::channel();
        let waiting = cancel.clone();
        std::thread::spawn(move || {
            let far = Instant::now() + Duration::from_secs(3600);
            tx.send(
                listener
                    .wait(&Clock::default(), far, &waiting)
                    .err()
                    .map(|e| e.kind()),
            )
            .unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(50)).is_err(),
            "still waiting"
        );
        cancel.cancel();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            Some(LoginErrorKind::Cancelled)
        );
    }

    #[test]
    fn repeated_parameters_count_as_missing() {
        let r = Redirect {
            params: vec![
                ("state".into(), "a".into()),
                ("state".into(), "b".into()),
                ("code".into(), "c".into()),
            ],
            stream: {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                TcpStream::connect(l.local_addr().unwrap()).unwrap()
            },
        };
        assert_eq!(r.param("state"), None);
        assert!(r.has("state"));
        assert_eq!(r.param("code"), Some("c"));
        assert_eq!(r.param("iss"), None);
    }

    #[test]
    fn pages_escape_their_text() {
        let p = page("<t>", "a & \"b\" <script>");
        assert!(p.contains("&lt;t&gt;") && p.contains("a &amp; &quot;b&quot; &lt;script&gt;"));
        assert!(!p.contains("<script>"));
    }
}
