//! [`BrowserLogin`]: the Authorization Code grant with PKCE (RFC 7636) on a loopback redirect
//! (RFC 8252 §7.3), and `open_browser`.

use std::fmt;
use std::time::Duration;

use super::loopback::{Listener, Redirect};
use super::pkce::{self, Pkce};
use super::{Cancel, ClientSettings, Metadata};
use crate::error::{LoginError, LoginErrorKind, OAuthError};
use crate::form::form_pairs;
use crate::net::Network;
use crate::sync::Clock;
use crate::token::{ClientSecret, Token};

/// How long the browser has to come back, by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// A login in the user's browser: the Authorization Code grant with PKCE (RFC 7636, `S256`) and a
/// loopback redirect (RFC 8252 §7.3), for desktop apps and CLIs on the user's own machine.
///
/// [`run`](BrowserLogin::run) listens on `127.0.0.1` (a port the system picks; the redirect URI is
/// `http://127.0.0.1:PORT/callback`, which servers must accept with any port, RFC 8252 §7.3),
/// hands the authorization URL to your `open` function, waits for the browser's redirect, checks
/// it, answers the browser with a page saying the tab can be closed, and exchanges the code (with
/// the PKCE verifier) for a token.
///
/// ```no_run
/// use tokengate::{Client, Network, OAuth2};
/// use tokengate::login::{BrowserLogin, Metadata};
///
/// let meta = Metadata::discover("https://auth.example.com", &Network::new())?;
/// let client = Client::builder("https://api.example.com")
///     .refresher(OAuth2::client_credentials(meta.token_endpoint()).client_id("my-app"))
///     .build()?;
/// let token = BrowserLogin::from_metadata(&meta)?
///     .client_id("my-app")
///     .scope("openid profile")
///     .run(|url| eprintln!("Open this URL to log in:\n{url}"))?;
/// client.login(token)?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
///
/// # What is checked
///
/// In this order, before anything is exchanged (RFC 9207 §2.4 puts the issuer first):
///
/// 1. `iss`, when an issuer is [expected](BrowserLogin::expect_issuer): it must be present and
///    equal ([`LoginErrorKind::IssuerMismatch`]);
/// 2. `state`: exactly the random value this login sent ([`LoginErrorKind::StateMismatch`]);
/// 3. `error`: `access_denied` is [`LoginErrorKind::AccessDenied`], any other code
///    [`LoginErrorKind::Server`] with [`oauth_error`](LoginError::oauth_error);
/// 4. `code`: present, once.
///
/// Requests to other paths (a favicon) get a `404` and are ignored. A redirect that fails a
/// check ends the login: nothing is installed, and the browser is told why (never with a secret).
#[derive(Clone)]
pub struct BrowserLogin {
    authorization_url: String,
    token_url: String,
    settings: ClientSettings,
    timeout: Duration,
    expected_issuer: Option<String>,
    params: Vec<(String, String)>,
    clock: Clock,
}

impl BrowserLogin {
    /// A browser login against the authorization endpoint (RFC 6749 §3.1) and the token endpoint
    /// of one authorization server.
    pub fn new(authorization_url: impl Into<String>, token_url: impl Into<String>) -> Self {
        BrowserLogin {
            authorization_url: authorization_url.into(),
            token_url: token_url.into(),
            settings: ClientSettings::default(),
            timeout: DEFAULT_TIMEOUT,
            expected_issuer: None,
            params: Vec::new(),
            clock: Clock::default(),
        }
    }

    /// A browser login against the endpoints of `metadata`, on the network settings it was read
    /// with; when the server advertises `authorization_response_iss_parameter_supported`, its
    /// issuer is [expected](BrowserLogin::expect_issuer) in the redirect.
    ///
    /// # Errors
    ///
    /// A [`LoginError`] of kind [`Discovery`](LoginErrorKind::Discovery) when the server has no
    /// authorization endpoint, or advertises PKCE methods without `S256`.
    pub fn from_metadata(metadata: &Metadata) -> Result<Self, LoginError> {
        let authorize = metadata.authorization_endpoint().ok_or_else(|| {
            LoginError::new(
                LoginErrorKind::Discovery,
                "the authorization server has no authorization endpoint",
            )
        })?;
        if let Some(methods) = metadata.code_challenge_methods_supported()
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(LoginError::new(
                LoginErrorKind::Discovery,
                "the authorization server does not support PKCE with S256",
            ));
        }
        let mut login = BrowserLogin::new(authorize, metadata.token_endpoint())
            .network(metadata.network().clone());
        if metadata.authorization_response_iss_parameter_supported() {
            login = login.expect_issuer(metadata.issuer());
        }
        Ok(login)
    }

    /// Sets the client identifier (RFC 6749 §2.2). Required. Defaults to none.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.settings.client_id = Some(id.into());
        self
    }

    /// Sets the client secret, for a confidential client; it authenticates the code exchange
    /// with HTTP Basic, as the [`OAuth2`](crate::OAuth2) refresher does. Defaults to none (a
    /// public client, the usual case for an app on the user's machine: RFC 8252 §8.5).
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.settings.client_secret = Some(ClientSecret::new(secret));
        self
    }

    /// Sets the scope to request (RFC 6749 §3.3), space-separated. Defaults to none (the server's
    /// default scope).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.settings.scope = Some(scope.into());
        self
    }

    /// Adds a parameter to the authorization URL, e.g. `prompt=consent`, `audience`, or
    /// `access_type=offline` (which some servers require before they issue a refresh token).
    /// Defaults to none.
    pub fn authorization_param(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Sets how the login reaches the authorization server's token endpoint (trusted
    /// certificates, proxies); see [`Network`]. (The browser reaches the authorization endpoint
    /// on its own settings.) Defaults to [`Network::new`], or to the metadata's network with
    /// [`from_metadata`](BrowserLogin::from_metadata).
    pub fn network(mut self, network: Network) -> Self {
        self.settings.network = Some(network);
        self
    }

    /// Allows plain `http` endpoints that are not on loopback. Defaults to `false`.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.settings.allow_http = allow;
        self
    }

    /// Sets how long the browser has to come back with the authorization, from the moment the
    /// URL is handed to `open`; then the login fails with
    /// [`TimedOut`](LoginErrorKind::TimedOut). Defaults to 5 minutes.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the flag that cancels the login from another thread (see [`Cancel`]). Defaults to a
    /// flag nobody else holds.
    pub fn cancel(mut self, cancel: &Cancel) -> Self {
        self.settings.cancel = cancel.clone();
        self
    }

    /// Requires the redirect's `iss` parameter to be `issuer` (RFC 9207), which defends against
    /// mix-up attacks when an app talks to several authorization servers. Defaults to none (no
    /// check), or to the metadata's issuer with [`from_metadata`](BrowserLogin::from_metadata)
    /// when the server advertises the parameter.
    pub fn expect_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.expected_issuer = Some(issuer.into());
        self
    }

    /// Runs the login: listens on loopback, calls `open` with the authorization URL (open it in
    /// the browser, e.g. with `open_browser` (feature `browser`), or print it), waits for the redirect (at most the
    /// [`timeout`](BrowserLogin::timeout)), checks it, answers the browser, and exchanges the
    /// code for a token.
    ///
    /// The token is returned, not installed: give it to [`Client::login`](crate::Client::login).
    ///
    /// # Errors
    ///
    /// A [`LoginError`]: [`TimedOut`](LoginErrorKind::TimedOut),
    /// [`Cancelled`](LoginErrorKind::Cancelled), [`StateMismatch`](LoginErrorKind::StateMismatch),
    /// [`IssuerMismatch`](LoginErrorKind::IssuerMismatch),
    /// [`AccessDenied`](LoginErrorKind::AccessDenied), [`Server`](LoginErrorKind::Server) (an
    /// `error` redirect, or a refused exchange such as `invalid_grant`),
    /// [`Configuration`](LoginErrorKind::Configuration) (no client id, an insecure URL, no
    /// loopback port), or a failure to reach the token endpoint.
    pub fn run(&self, open: impl FnOnce(&str)) -> Result<Token, LoginError> {
        let settings = &self.settings;
        let oauth = settings.oauth(&self.token_url)?;
        oauth
            .check_url(&self.authorization_url, "authorization URL")
            .map_err(LoginError::configuration)?;
        settings.check_cancelled()?;
        let listener = Listener::bind()?;
        let redirect_uri = listener.redirect_uri();
        let pkce = Pkce::new()?;
        let state = pkce::random(16)?;
        let url = self.authorization_request(&redirect_uri, &state, &pkce.challenge);
        let deadline = self.clock.now().mono + self.timeout;
        open(&url);
        let redirect = listener.wait(&self.clock, deadline, &settings.cancel)?;
        let code = match self.check(&redirect, &state) {
            Ok(code) => code.to_owned(),
            Err(e) => {
                redirect.respond(false, &reason(&e));
                return Err(e);
            }
        };
        let params = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", pkce.verifier.as_str()),
        ];
        let exchanged = match oauth.grant(&params, &[&code, &pkce.verifier, &state]) {
            Ok(token) if token.authorization().is_none() => Err(LoginError::new(
                LoginErrorKind::InvalidResponse,
                "the token response: the access token cannot be sent in an HTTP header",
            )),
            Ok(token) => Ok(token),
            Err(e) => Err(LoginError::from_refresh(e, "the code exchange")),
        };
        match &exchanged {
            Ok(_) => redirect.respond(true, ""),
            Err(e) => redirect.respond(false, &reason(e)),
        }
        exchanged
    }

    /// The authorization request URL (RFC 6749 §4.1.1, RFC 7636 §4.3).
    fn authorization_request(&self, redirect_uri: &str, state: &str, challenge: &str) -> String {
        let mut pairs = vec![
            ("response_type", "code"),
            (
                "client_id",
                self.settings.client_id.as_deref().unwrap_or(""),
            ),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(scope) = &self.settings.scope {
            pairs.push(("scope", scope));
        }
        pairs.extend([
            ("state", state),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ]);
        pairs.extend(self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let base = self
            .authorization_url
            .split_once('#')
            .map_or(self.authorization_url.as_str(), |(before, _)| before);
        let separator = match base.split_once('?') {
            None => "?",
            Some((_, "")) => "",
            Some((_, q)) if q.ends_with('&') => "",
            Some(_) => "&",
        };
        format!("{base}{separator}{}", form_pairs(pairs))
    }

    /// Checks the redirect (see [What is checked](BrowserLogin#what-is-checked)) and returns its
    /// code.
    fn check<'r>(&self, redirect: &'r Redirect, state: &str) -> Result<&'r str, LoginError> {
        if let Some(expected) = &self.expected_issuer
            && redirect.param("iss") != Some(expected.as_str())
        {
            let what = if redirect.has("iss") {
                "the redirect names another authorization server than the one expected"
            } else {
                "the redirect does not name its authorization server (iss)"
            };
            return Err(LoginError::new(LoginErrorKind::IssuerMismatch, what));
        }
        if redirect.param("state") != Some(state) {
            return Err(LoginError::new(
                LoginErrorKind::StateMismatch,
                "the redirect's state is not this login's",
            ));
        }
        if let Some(code) = redirect.param("error") {
            let oauth = OAuthError {
                error: code.chars().take(100).collect(),
                error_description: redirect
                    .param("error_description")
                    .map(|d| d.chars().take(500).collect()),
                error_uri: redirect.param("error_uri").map(str::to_owned),
            };
            let kind = if code == "access_denied" {
                LoginErrorKind::AccessDenied
            } else {
                LoginErrorKind::Server
            };
            return Err(LoginError::new(kind, "the authorization server refused").with_oauth(oauth));
        }
        redirect
            .param("code")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                LoginError::new(
                    LoginErrorKind::InvalidResponse,
                    "the redirect carries no authorization code",
                )
            })
    }

    /// Reads the time from `clock` (a manual clock in unit tests).
    #[cfg(test)]
    fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}

/// What the browser is told of a failure, in words, with the OAuth2 error code when there is one.
/// Never a secret.
fn reason(e: &LoginError) -> String {
    let what = match e.kind() {
        LoginErrorKind::AccessDenied => "the authorization was denied",
        LoginErrorKind::StateMismatch => "the answer does not belong to this login",
        LoginErrorKind::IssuerMismatch => "the answer came from another authorization server",
        LoginErrorKind::Cancelled => "the login was cancelled",
        LoginErrorKind::TimedOut => "the login took too long",
        LoginErrorKind::Transport | LoginErrorKind::Tls | LoginErrorKind::Proxy => {
            "the application could not reach the authorization server"
        }
        _ => "the authorization server refused the login",
    };
    match e.oauth_error() {
        Some(o) => format!("{what} ({})", o.error),
        None => what.to_owned(),
    }
}

impl fmt::Debug for BrowserLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserLogin")
            .field("authorization_url", &self.authorization_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.settings.client_id)
            .field("client_secret", &self.settings.client_secret)
            .field("scope", &self.settings.scope)
            .field("timeout", &self.timeout)
            .field("expected_issuer", &self.expected_issuer)
            .finish_non_exhaustive()
    }
}

/// Opens `url` in the user's web browser (the `webbrowser` crate: `$BROWSER` when it is set, else
/// the platform's way, e.g. `xdg-open`). Feature `browser`.
///
/// When it fails (no browser, a headless session), print the URL for the user instead; see
/// [the module's example](crate::login#opening-the-browser).
///
/// # Errors
///
/// The I/O error of the attempt: no browser could be found or started.
#[cfg(feature = "browser")]
pub fn open_browser(url: &str) -> std::io::Result<()> {
    webbrowser::open(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(url: &str) -> BrowserLogin {
        BrowserLogin::new(url, "https://a.example/token").client_id("my app")
    }

    #[test]
    fn authorization_requests_carry_pkce_and_state() {
        let url = login("https://a.example/authorize")
            .scope("read write")
            .authorization_param("prompt", "consent")
            .authorization_request("http://127.0.0.1:5/callback", "st", "ch");
        assert_eq!(
            url,
            "https://a.example/authorize?response_type=code&client_id=my+app\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2Fcallback&scope=read+write&state=st\
             &code_challenge=ch&code_challenge_method=S256&prompt=consent"
        );
        // An endpoint with a query of its own keeps it.
        let url =
            login("https://a.example/authorize?tenant=1").authorization_request("r", "s", "c");
        assert!(
            url.starts_with("https://a.example/authorize?tenant=1&response_type=code"),
            "{url}"
        );
        let url = login("https://a.example/authorize?").authorization_request("r", "s", "c");
        assert!(
            url.starts_with("https://a.example/authorize?response_type=code"),
            "{url}"
        );
    }

    #[test]
    fn configuration_is_checked_before_listening() {
        let e = BrowserLogin::new("https://a.example/authorize", "https://a.example/token")
            .run(|_| panic!("not opened"))
            .unwrap_err();
        assert_eq!(e.kind(), LoginErrorKind::Configuration);
        let e = login("http://a.example/authorize")
            .run(|_| panic!("not opened"))
            .unwrap_err();
        assert_eq!(e.kind(), LoginErrorKind::Configuration);
        assert!(e.to_string().contains("authorization URL"), "{e}");
    }

    #[test]
    fn the_browser_has_the_timeout_to_come_back() {
        // A manual clock: the login's own timeout passes without waiting for it.
        let (clock, _manual) = Clock::manual();
        let mut opened = None;
        let e = login("https://a.example/authorize")
            .timeout(Duration::from_secs(300))
            .clock(clock)
            .run(|url| opened = Some(url.to_owned()))
            .unwrap_err();
        assert_eq!(e.kind(), LoginErrorKind::TimedOut);
        let url = opened.expect("the URL was handed over before the wait");
        assert!(url.contains("code_challenge_method=S256"), "{url}");
    }
}
