//! Helpers shared by the integration tests: clients wired to a test server, and a way to run many
//! threads at once that turns a hang into a test failure.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use tokengate::{Client, ClientBuilder, OAuth2, Token};
use tokengate_testserver::TestServer;

/// Upper bound on anything a test waits for. Reaching it fails the test; it is never the expected path.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A token freshly issued by the server (as after a login), valid for the server's lifetime.
pub fn login(server: &TestServer) -> Token {
    let issued = server.issue_token();
    Token::new(issued.access_token)
        .expires_in(Duration::from_secs(issued.expires_in))
        .refresh_token(issued.refresh_token)
}

/// A token whose refresh token is valid on the server but whose access token we hold as expired.
pub fn expired_login(server: &TestServer) -> Token {
    let issued = server.issue_token();
    Token::new(issued.access_token)
        .expires_at_system_time(std::time::SystemTime::now() - Duration::from_secs(1))
        .refresh_token(issued.refresh_token)
}

/// The OAuth2 refresh_token grant against `server`, authenticated as the default confidential client.
pub fn oauth(server: &TestServer) -> OAuth2 {
    OAuth2::refresh_token_grant(server.token_url())
        .client_id("demo-client")
        .client_secret("demo-secret")
}

/// A client builder for `server`'s API with `token` and the OAuth2 refresher.
pub fn builder(server: &TestServer, token: Token) -> ClientBuilder {
    Client::builder(format!("{}/api", server.url()))
        .token(token)
        .refresher(oauth(server))
        .refresh_timeout(PATIENCE)
}

/// Runs `f(i)` on `n` threads released together by a barrier and collects the results in index
/// order. A thread that does not finish within PATIENCE fails the test instead of hanging it.
pub fn on_threads<T: Send + 'static>(
    n: usize,
    f: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(n));
    let (tx, rx) = crossbeam_channel::bounded(n);
    for i in 0..n {
        let (f, barrier, tx) = (Arc::clone(&f), Arc::clone(&barrier), tx.clone());
        thread::spawn(move || {
            barrier.wait();
            let out = f(i);
            let _ = tx.send((i, out));
        });
    }
    let deadline = Instant::now() + PATIENCE;
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for _ in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, v) = rx
            .recv_timeout(left)
            .expect("a thread hung (or panicked) instead of returning");
        out[i] = Some(v);
    }
    out.into_iter().map(Option::unwrap).collect()
}

/// Polls `cond` until it holds; fails the test after PATIENCE.
pub fn eventually(what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Status code of a GET, panicking on transport errors (for tests where the request must go through).
pub fn get_status(client: &Client, path: &str) -> u16 {
    client
        .get(path)
        .call()
        .unwrap_or_else(|e| panic!("GET {path} failed: {e}"))
        .status()
        .as_u16()
}

pub use tokengate_testserver::TempDir;
