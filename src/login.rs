//! Logging in: the first token, and every token after a logout, without another library.
//!
//! Two interactive flows, both blocking, both returning a [`Token`](crate::Token) to hand to
//! [`Client::login`](crate::Client::login) (which installs it in the gate and the store, exactly as
//! [`set_token`](crate::Client::set_token) does, and emits [`Event::LoggedIn`](crate::Event::LoggedIn)):
//!
//! - [`DeviceLogin`]: the Device Authorization Grant (RFC 8628), for CLIs, SSH sessions and
//!   anything without a browser at hand. The user opens a URL on any device and enters a code;
//!   the login polls the token endpoint at the server's pace meanwhile.
//! - [`BrowserLogin`]: the Authorization Code grant with PKCE (RFC 7636 `S256`) on a loopback
//!   redirect (RFC 8252 §7.3), for desktop apps and CLIs on the user's own machine. A one-shot
//!   listener on `127.0.0.1` (an ephemeral port) takes the browser's redirect; `state` and, when
//!   expected, `iss` (RFC 9207) are checked before the code is exchanged.
//!
//! [`Metadata::discover`] finds the endpoints from the issuer's URL (RFC 8414, OpenID Connect
//! Discovery), so a user names an issuer and a client id, not five URLs. A [`Cancel`] stops a
//! running login from another thread at once.
//!
//! ```no_run
//! use tokengate::{Client, Network, OAuth2};
//! use tokengate::login::{DeviceLogin, Metadata};
//!
//! let meta = Metadata::discover("https://auth.example.com", &Network::new())?;
//! let client = Client::builder("https://api.example.com")
//!     .refresher(OAuth2::client_credentials(meta.token_endpoint()).client_id("my-cli"))
//!     .build()?;
//! let token = DeviceLogin::from_metadata(&meta)?
//!     .client_id("my-cli")
//!     .scope("read")
//!     .run(|p| eprintln!("Open {} and enter the code {}", p.verification_uri(), p.user_code()))?;
//! client.login(token)?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # Opening the browser
//!
//! [`BrowserLogin::run`] hands the authorization URL to a function of yours. With the `browser`
//! feature, `open_browser` opens it in the user's browser (honouring `$BROWSER`); when it
//! fails, or without the feature, print the URL for the user to open (on stderr, so a program
//! whose stdout is read by another one keeps it clean):
//!
//! ```no_run
//! use tokengate::login::BrowserLogin;
//!
//! let token = BrowserLogin::new("https://auth.example.com/authorize", "https://auth.example.com/token")
//!     .client_id("my-app")
//!     .run(|url| {
//!         #[cfg(feature = "browser")]
//!         if tokengate::login::open_browser(url).is_ok() {
//!             eprintln!("Continue in your browser.");
//!             return;
//!         }
//!         eprintln!("Open this URL to log in:\n{url}");
//!     })?;
//! # Ok::<_, tokengate::LoginError>(())
//! ```
//!
//! # What a login never does
//!
//! A failed or cancelled login installs nothing and touches no store: the session stored before it
//! stays as it was. No secret (the authorization code, the PKCE verifier, the device code, the
//! tokens, the client secret) appears in any error, `Debug` output or event.
//!
//! Logging out is [`Client::logout`](crate::Client::logout): the refresh token is revoked at the
//! [`OAuth2::revocation_url`](crate::OAuth2::revocation_url) (RFC 7009), then the store is cleared.

use std::time::Duration;

use crate::net::Network;
use crate::refresh::OAuth2;
use crate::token::ClientSecret;

mod browser;
mod cancel;
mod device;
mod discovery;
mod loopback;
mod pkce;

pub use browser::BrowserLogin;
#[cfg(feature = "browser")]
pub use browser::open_browser;
pub use cancel::Cancel;
pub use device::{DeviceLogin, DevicePrompt};
pub use discovery::Metadata;

pub use crate::error::{LoginError, LoginErrorKind};

/// The client settings both flows share, and the OAuth2 client they make of them.
#[derive(Clone, Default)]
struct ClientSettings {
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    scope: Option<String>,
    network: Option<Network>,
    allow_http: bool,
    cancel: Cancel,
}

impl ClientSettings {
    /// An OAuth2 client of `token_url` with these settings, its URL checked.
    fn oauth(&self, token_url: &str) -> Result<OAuth2, LoginError> {
        if self.client_id.as_deref().is_none_or(str::is_empty) {
            return Err(LoginError::configuration("a client id is required"));
        }
        let mut oauth = OAuth2::for_login(token_url).allow_insecure_http(self.allow_http);
        if let Some(id) = &self.client_id {
            oauth = oauth.client_id(id.clone());
        }
        if let Some(secret) = &self.client_secret {
            oauth = oauth.client_secret(secret.secret());
        }
        if let Some(network) = &self.network {
            oauth = oauth.network(network.clone());
        }
        oauth
            .check_url(token_url, "token URL")
            .map_err(LoginError::configuration)?;
        Ok(oauth)
    }

    /// The cancel flag, checked before a step starts.
    fn check_cancelled(&self) -> Result<(), LoginError> {
        if self.cancel.is_cancelled() {
            return Err(cancelled());
        }
        Ok(())
    }
}

/// The error of a cancelled login.
fn cancelled() -> LoginError {
    LoginError::new(LoginErrorKind::Cancelled, "cancelled")
}

/// How long a login's own HTTP requests may take, connect to last byte (the token and device
/// authorization requests use the OAuth2 refresher's: 8 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// GETs `url` on `network` with `Accept: application/json`, reading at most `limit` bytes.
/// Returns the status and body; a failure to reach the server is classified (TLS, proxy,
/// transport), with the ureq error as its source.
fn get_json(network: &Network, url: &str, limit: u64) -> Result<(u16, Vec<u8>), LoginError> {
    use crate::net::{Failure, failure_of};

    let resolved = network
        .resolve()
        .map_err(|e| LoginError::configuration(format!("the network settings: {e}")))?;
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|_| LoginError::configuration("the metadata URL does not parse"))?;
    let base = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_global(Some(REQUEST_TIMEOUT));
    let net = resolved.agent(&uri, base);
    let failed = |e: ureq::Error| {
        let proxy = net.home_proxy();
        match failure_of(&e, proxy) {
            Failure::Tls => LoginError::new(
                LoginErrorKind::Tls,
                "TLS with the authorization server failed",
            )
            .with_source(e),
            Failure::Proxy => {
                let e = crate::error::ProxyError::new(proxy.map(crate::net::describe), e);
                let class = if e.is_transient() {
                    crate::error::Class::Transient
                } else {
                    crate::error::Class::Configuration
                };
                LoginError::new(
                    LoginErrorKind::Proxy,
                    "could not reach the authorization server through the proxy",
                )
                .with_class(class)
                .with_source(e)
            }
            Failure::Other => LoginError::new(
                LoginErrorKind::Transport,
                "could not reach the authorization server",
            )
            .with_source(e),
        }
    };
    let mut resp = net
        .agent
        .get(url)
        .header("Accept", "application/json")
        .call()
        .map_err(failed)?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => LoginError::new(
                LoginErrorKind::Discovery,
                format!("the answer is larger than {limit} bytes"),
            ),
            other => failed(other),
        })?;
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A loopback server that answers each of `n` requests `400` with an OAuth2 error whose
    /// description echoes the whole request, head and body, as a careless server might. Returns
    /// its URL.
    fn echo_server(n: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(n) {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    request.push_str(&line);
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                request.push_str(&String::from_utf8_lossy(&body));
                let answer = serde_json::json!({
                    "error": "invalid_request",
                    "error_description": request,
                    "error_uri": format!("https://errors.example/?echo={}", String::from_utf8_lossy(&body)),
                })
                .to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        url
    }

    /// Every way `e` can be shown: Display, Debug, the OAuth2 fields, the source chain.
    fn shown(e: &LoginError) -> String {
        let mut text = format!("{e} {e:?} {:?}", e.oauth_error());
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(&format!(" {s} {s:?}"));
            source = s.source();
        }
        text
    }

    #[test]
    fn no_secret_of_a_login_is_shown_even_when_the_server_echoes_it() {
        let url = echo_server(3);
        // The client secret (and its Basic credentials), in a device authorization request.
        let e = device::DeviceLogin::new(format!("{url}/device"), format!("{url}/token"))
            .client_id("app")
            .client_secret("sekrit-client")
            .run(|_| panic!("no prompt"))
            .unwrap_err();
        assert_eq!(e.kind(), LoginErrorKind::Server);
        let text = shown(&e);
        assert!(text.contains("[redacted]"), "{text}");
        assert!(!text.contains("sekrit"), "{text}");
        assert!(
            !text.contains(&crate::form::base64(b"app:sekrit-client")),
            "{text}"
        );

        // The code and the PKCE verifier of a code exchange, the device code of a poll.
        let oauth = OAuth2::for_login(format!("{url}/token")).client_id("app");
        let params = [
            ("grant_type", "authorization_code"),
            ("code", "sekrit-code"),
            ("code_verifier", "sekrit-verifier"),
        ];
        let e = oauth
            .grant(&params, &["sekrit-code", "sekrit-verifier"])
            .map_err(|e| LoginError::from_refresh(e, "the code exchange"))
            .unwrap_err();
        let text = shown(&e);
        assert!(
            text.contains("grant_type=authorization_code"),
            "the echo came: {text}"
        );
        assert!(!text.contains("sekrit"), "{text}");
        let params = [
            ("grant_type", "device_code"),
            ("device_code", "sekrit-device"),
        ];
        let e = oauth
            .grant(&params, &["sekrit-device"])
            .map_err(|e| LoginError::from_refresh(e, "the token request"))
            .unwrap_err();
        assert!(!shown(&e).contains("sekrit"), "{}", shown(&e));
    }
}
