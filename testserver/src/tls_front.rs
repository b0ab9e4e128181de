//! An HTTPS front for a plain [`TestServer`](crate::TestServer) (or any loopback HTTP server): it
//! terminates TLS (rustls) on its own port with a [`TestPki`] server certificate, optionally
//! requires a client certificate from that CA, and relays the decrypted bytes to the backend. The
//! same token endpoint and API then answer over `https`.

use crate::pki::TestPki;
use crate::relay::Listener;
use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::Duration;

/// Whether the front asks for a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCerts {
    /// No client certificate is asked for.
    Ignored,
    /// A client certificate issued by the front's CA is required; a handshake without one, or with
    /// another CA's, fails.
    Required,
}

#[derive(Debug, Default)]
struct Stats {
    handshakes: AtomicU64,
    failed: AtomicU64,
}

/// A running TLS front. Dropping it stops it and closes its connections.
pub struct TlsFront {
    listener: Listener,
    stats: Arc<Stats>,
}

impl fmt::Debug for TlsFront {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFront")
            .field("addr", &self.listener.addr())
            .finish_non_exhaustive()
    }
}

impl TlsFront {
    /// Starts a front on an ephemeral port of `127.0.0.1` that relays to `backend`.
    ///
    /// # Panics
    ///
    /// If the certificates do not load or the port cannot be bound.
    pub fn start(pki: &TestPki, backend: SocketAddr, client_certs: ClientCerts) -> TlsFront {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pki.server().cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("the test server certificate parses");
        let key = PrivateKeyDer::from_pem_slice(pki.server().key_pem.as_bytes())
            .expect("the test server key parses");
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("default TLS versions");
        let builder = match client_certs {
            ClientCerts::Ignored => builder.with_no_client_auth(),
            ClientCerts::Required => {
                let mut roots = RootCertStore::empty();
                for ca in CertificateDer::pem_slice_iter(pki.ca_pem().as_bytes()) {
                    roots
                        .add(ca.expect("the CA parses"))
                        .expect("the CA is a root");
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .build()
                .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = Arc::new(
            builder
                .with_single_cert(chain, key)
                .expect("the server certificate fits its key"),
        );
        let stats = Arc::new(Stats::default());
        let listener = {
            let stats = Arc::clone(&stats);
            Listener::start("tls", move |tcp| {
                serve(&config, tcp, backend, &stats);
            })
            .unwrap_or_else(|e| panic!("tokengate-testserver: cannot start the TLS front: {e}"))
        };
        TlsFront { listener, stats }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.listener.addr())
    }

    /// `https://localhost:PORT` (the certificate names both).
    pub fn localhost_url(&self) -> String {
        format!("https://localhost:{}", self.listener.addr().port())
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// Handshakes completed.
    pub fn handshakes(&self) -> u64 {
        self.stats.handshakes.load(Relaxed)
    }

    /// Handshakes that failed (an untrusted server certificate on the client side, a missing or
    /// refused client certificate on ours).
    pub fn failed_handshakes(&self) -> u64 {
        self.stats.failed.load(Relaxed)
    }
}

fn serve(config: &Arc<ServerConfig>, mut tcp: TcpStream, backend: SocketAddr, stats: &Stats) {
    let Ok(mut conn) = ServerConnection::new(Arc::clone(config)) else {
        return;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(20)));
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            // Send the alert rustls queued, so the client learns why.
            let _ = conn.write_tls(&mut tcp);
            if e.kind() != io::ErrorKind::UnexpectedEof || conn.is_handshaking() {
                stats.failed.fetch_add(1, Relaxed);
            }
            return;
        }
    }
    // Session tickets and the like.
    while conn.wants_write() {
        if conn.write_tls(&mut tcp).is_err() {
            return;
        }
    }
    stats.handshakes.fetch_add(1, Relaxed);
    let _ = tcp.set_read_timeout(None);
    let Ok(upstream) = TcpStream::connect(backend) else {
        return;
    };
    let (Ok(tcp_w), Ok(up_r)) = (tcp.try_clone(), upstream.try_clone()) else {
        return;
    };
    let conn = Arc::new(Mutex::new(conn));
    let down = {
        let conn = Arc::clone(&conn);
        thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || backend_to_client(up_r, tcp_w, &conn))
    };
    client_to_backend(tcp, upstream, &conn);
    if let Ok(down) = down {
        let _ = down.join();
    }
}

/// Reads TLS records from the client (no lock held while blocked), decrypts them under the lock and
/// writes the plaintext to the backend.
fn client_to_backend(mut tcp: TcpStream, mut upstream: TcpStream, conn: &Mutex<ServerConnection>) {
    let mut raw = vec![0u8; 32 * 1024];
    let mut plain = Vec::new();
    let mut tcp_w = tcp.try_clone().ok();
    // The handshake may have read application data that came right behind the client's Finished.
    {
        let mut c = conn.lock();
        if let Ok(state) = c.process_new_packets() {
            let available = state.plaintext_bytes_to_read();
            plain.resize(available, 0);
            let _ = c.reader().read_exact(&mut plain);
        }
    }
    if !plain.is_empty() {
        if upstream.write_all(&plain).is_err() {
            return;
        }
        plain.clear();
    }
    loop {
        let n = match tcp.read(&mut raw) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut closed = false;
        {
            let mut c = conn.lock();
            let mut input = &raw[..n];
            while !input.is_empty() {
                if c.read_tls(&mut input).is_err() {
                    closed = true;
                    break;
                }
                let state = match c.process_new_packets() {
                    Ok(state) => state,
                    Err(_) => {
                        if let Some(w) = tcp_w.as_mut() {
                            let _ = c.write_tls(w);
                        }
                        closed = true;
                        break;
                    }
                };
                let available = state.plaintext_bytes_to_read();
                if available > 0 {
                    let start = plain.len();
                    plain.resize(start + available, 0);
                    let _ = c.reader().read_exact(&mut plain[start..]);
                }
                if state.peer_has_closed() {
                    closed = true;
                }
            }
            if let Some(w) = tcp_w.as_mut() {
                while c.wants_write() {
                    if c.write_tls(w).is_err() {
                        break;
                    }
                }
            }
        }
        if !plain.is_empty() {
            if upstream.write_all(&plain).is_err() {
                break;
            }
            plain.clear();
        }
        if closed {
            break;
        }
    }
    let _ = upstream.shutdown(Shutdown::Write);
}

/// Reads plaintext from the backend and writes it to the client encrypted.
fn backend_to_client(mut upstream: TcpStream, mut tcp: TcpStream, conn: &Mutex<ServerConnection>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match upstream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut c = conn.lock();
        if c.writer().write_all(&buf[..n]).is_err() {
            break;
        }
        while c.wants_write() {
            if c.write_tls(&mut tcp).is_err() {
                return;
            }
        }
    }
    let mut c = conn.lock();
    c.send_close_notify();
    while c.wants_write() {
        if c.write_tls(&mut tcp).is_err() {
            break;
        }
    }
    let _ = tcp.shutdown(Shutdown::Both);
}
