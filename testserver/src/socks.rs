//! A SOCKS5 proxy on loopback (RFC 1928 `CONNECT`, with optional RFC 1929 username/password
//! authentication) that counts its tunnels. It only connects to loopback targets.

use crate::relay::{Capture, Listener, is_loopback, relay};
use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Default)]
struct Stats {
    tunnels: AtomicU64,
    auth_refused: AtomicU64,
}

/// A running SOCKS5 proxy. Dropping it stops it and closes its connections.
pub struct Socks5Proxy {
    listener: Listener,
    stats: Arc<Stats>,
    capture: Arc<Capture>,
    credentials: Option<(String, String)>,
}

impl fmt::Debug for Socks5Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socks5Proxy")
            .field("addr", &self.listener.addr())
            .finish_non_exhaustive()
    }
}

impl Socks5Proxy {
    /// A proxy without authentication.
    ///
    /// # Panics
    ///
    /// If the port cannot be bound.
    pub fn start() -> Socks5Proxy {
        Self::launch(None)
    }

    /// A proxy that requires username/password authentication (RFC 1929).
    ///
    /// # Panics
    ///
    /// If the port cannot be bound.
    pub fn with_credentials(user: &str, password: &str) -> Socks5Proxy {
        Self::launch(Some((user.to_owned(), password.to_owned())))
    }

    fn launch(credentials: Option<(String, String)>) -> Socks5Proxy {
        let stats = Arc::new(Stats::default());
        let capture = Arc::new(Capture::default());
        let listener = {
            let (stats, capture, creds) = (
                Arc::clone(&stats),
                Arc::clone(&capture),
                credentials.clone(),
            );
            Listener::start("socks", move |client| {
                let _ = serve(client, creds.as_ref(), &stats, &capture);
            })
            .unwrap_or_else(|e| panic!("tokengate-testserver: cannot start the SOCKS5 proxy: {e}"))
        };
        Socks5Proxy {
            listener,
            stats,
            capture,
            credentials,
        }
    }

    /// `socks5://127.0.0.1:PORT` (with `user:password@` when it requires credentials).
    pub fn url(&self) -> String {
        match &self.credentials {
            Some((u, p)) => format!("socks5://{u}:{p}@{}", self.listener.addr()),
            None => format!("socks5://{}", self.listener.addr()),
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// Tunnels opened.
    pub fn tunnels(&self) -> u64 {
        self.stats.tunnels.load(Relaxed)
    }

    /// Authentications refused.
    pub fn auth_refused(&self) -> u64 {
        self.stats.auth_refused.load(Relaxed)
    }

    /// Whether `needle` appears in what clients sent through the tunnels (the first 8 MiB).
    pub fn saw(&self, needle: &str) -> bool {
        self.capture.contains(needle.as_bytes())
    }
}

fn serve(
    mut c: TcpStream,
    creds: Option<&(String, String)>,
    stats: &Stats,
    capture: &Arc<Capture>,
) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut head = [0u8; 2];
    c.read_exact(&mut head)?;
    if head[0] != 5 {
        return Ok(());
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    c.read_exact(&mut methods)?;
    let wanted = if creds.is_some() { 2 } else { 0 };
    if !methods.contains(&wanted) {
        stats.auth_refused.fetch_add(1, Relaxed);
        c.write_all(&[5, 0xff])?;
        return Ok(());
    }
    c.write_all(&[5, wanted])?;
    if let Some((user, pass)) = creds {
        let mut ver_len = [0u8; 2];
        c.read_exact(&mut ver_len)?;
        let mut u = vec![0u8; usize::from(ver_len[1])];
        c.read_exact(&mut u)?;
        let mut plen = [0u8; 1];
        c.read_exact(&mut plen)?;
        let mut p = vec![0u8; usize::from(plen[0])];
        c.read_exact(&mut p)?;
        if u != user.as_bytes() || p != pass.as_bytes() {
            stats.auth_refused.fetch_add(1, Relaxed);
            c.write_all(&[1, 1])?;
            return Ok(());
        }
        c.write_all(&[1, 0])?;
    }
    let mut req = [0u8; 4];
    c.read_exact(&mut req)?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            c.read_exact(&mut a)?;
            IpAddr::V4(Ipv4Addr::from(a)).to_string()
        }
        4 => {
            let mut a = [0u8; 16];
            c.read_exact(&mut a)?;
            IpAddr::V6(Ipv6Addr::from(a)).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            c.read_exact(&mut len)?;
            let mut name = vec![0u8; usize::from(len[0])];
            c.read_exact(&mut name)?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => return Ok(()),
    };
    let mut port = [0u8; 2];
    c.read_exact(&mut port)?;
    let port = u16::from_be_bytes(port);
    // Reply codes (RFC 1928 §6): 0 succeeded, 2 not allowed by ruleset, 5 refused, 7 command
    // not supported.
    let reply = |c: &mut TcpStream, code: u8| c.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
    if req[1] != 1 {
        return reply(&mut c, 7);
    }
    if !is_loopback(&host) {
        return reply(&mut c, 2);
    }
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else if host.eq_ignore_ascii_case("localhost") {
        format!("127.0.0.1:{port}")
    } else {
        format!("{host}:{port}")
    };
    let Ok(upstream) = TcpStream::connect(target) else {
        return reply(&mut c, 5);
    };
    stats.tunnels.fetch_add(1, Relaxed);
    reply(&mut c, 0)?;
    c.set_read_timeout(None)?;
    relay(c, upstream, Some(Arc::clone(capture)));
    Ok(())
}
