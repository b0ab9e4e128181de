//! Helpers shared by the integration tests: clients wired to a test server. The helpers every test
//! binary of the workspace shares (threads, polling, patience, temp dirs) come from
//! `tokengate_testserver::support`.

use std::time::Duration;

use tokengate::{Client, ClientBuilder, OAuth2, Token};
use tokengate_testserver::TestServer;

pub use tokengate_testserver::support::{PATIENCE, entries, eventually, on_threads, temp_dir};

/// A token freshly issued by the server (as after a login), valid for the server's lifetime.
pub fn login(server: &TestServer) -> Token {
    let issued = server.issue_token();
    Token::new(issued.access_token)
        .with_expires_in(Duration::from_secs(issued.expires_in))
        .with_refresh_token(issued.refresh_token)
}

/// A token whose refresh token is valid on the server but whose access token we hold as expired.
pub fn expired_login(server: &TestServer) -> Token {
    let issued = server.issue_token();
    Token::new(issued.access_token)
        .with_expires_at_wall(std::time::SystemTime::now() - Duration::from_secs(1))
        .with_refresh_token(issued.refresh_token)
}

/// The OAuth2 refresh_token grant against `server`, authenticated as the default confidential client.
pub fn oauth(server: &TestServer) -> OAuth2 {
    OAuth2::refresh_token(server.token_url())
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

/// Status code of a GET, panicking on transport errors (for tests where the request must go through).
pub fn get_status(client: &Client, path: &str) -> u16 {
    client
        .get(path)
        .call()
        .unwrap_or_else(|e| panic!("GET {path} failed: {e}"))
        .status()
        .as_u16()
}
