//! Getting a new token: the [`Refresh`] trait (with an impl for closures), the OAuth2 grants
//! ([`OAuth2`]: refresh_token, RFC 6749 §6, and client_credentials, §4.4), and token response parsing
//! ([`TokenResponse`]: §5.1 success, §5.2 error).
//!
//! The OAuth2 refresher owns its own `ureq::Agent`: the refresh call never passes through the client's
//! token-attaching path, so there is no recursion and no URL to special-case.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Class, OAuthError, RefreshError, RefreshErrorKind};
use crate::form::{base64, form_encode, form_pairs};
use crate::net::{self, Failure, NetAgent, Network, Resolved};
use crate::origin::Origin;
use crate::token::{ClientSecret, RefreshToken, Token};

mod retry_after;

pub(crate) use retry_after::retry_after;

/// Largest token endpoint answer we read. Real ones are well under 8 KiB.
const MAX_TOKEN_RESPONSE: u64 = 64 * 1024;
/// How much of a non-JSON answer is kept for diagnostics.
const EXCERPT_CHARS: usize = 200;

/// Something that can produce a new [`Token`].
///
/// The gate calls it from one thread at a time, without holding any lock, and hands the result to
/// every thread that waited. Implement it for non-standard token APIs, or pass a closure
/// `Fn(&Token) -> Result<Token, RefreshError>`.
///
/// ```
/// use std::time::Duration;
/// use tokengate::{Gate, RefreshError, Token};
///
/// let gate = Gate::builder()
///     .token(Token::new("old").with_refresh_token("r1"))
///     .refresher(|current: &Token| -> Result<Token, RefreshError> {
///         // Call your token API here with current.refresh_token().
///         Ok(Token::new("new").with_expires_in(Duration::from_secs(60)))
///     })
///     .build()?;
/// # Ok::<_, tokengate::Error>(())
/// ```
pub trait Refresh: Send + Sync + 'static {
    /// Gets a new token. `current` is the token being replaced, `None` when there is none yet (e.g. a
    /// client-credentials client that has not fetched its first token).
    ///
    /// # Errors
    ///
    /// A [`RefreshError`]: [`permanent`](RefreshError::permanent) when only a new login can help (the
    /// client then fails fast with [`Error::LoginRequired`](crate::Error::LoginRequired)),
    /// [`transient`](RefreshError::transient) otherwise (the gate backs off and tries again later).
    fn refresh(&self, current: Option<&Token>) -> Result<Token, RefreshError>;

    /// Checks the configuration once, when the gate is built. Defaults to accepting it.
    ///
    /// # Errors
    ///
    /// What is wrong, as a [`RefreshError::configuration`]; building the gate then fails with
    /// [`Error::Config`](crate::Error::Config) carrying its message.
    fn check(&self) -> Result<(), RefreshError> {
        Ok(())
    }

    /// Revokes `token` at the authorization server, when the user logs out
    /// ([`Gate::logout`](crate::Gate::logout)). [`OAuth2`] revokes the refresh token at its
    /// [`revocation_url`](OAuth2::revocation_url) (RFC 7009).
    ///
    /// Defaults to doing nothing: a refresher that knows no revocation endpoint has nothing to
    /// revoke, and the logout then only forgets the token here.
    ///
    /// # Errors
    ///
    /// A [`RefreshError`] when the server could not be reached or refused the revocation; the
    /// logout clears the session here anyway and reports it as
    /// [`Error::Revocation`](crate::Error::Revocation).
    fn revoke(&self, token: &Token) -> Result<(), RefreshError> {
        let _ = token;
        Ok(())
    }
}

impl<F> Refresh for F
where
    F: Fn(&Token) -> Result<Token, RefreshError> + Send + Sync + 'static,
{
    fn refresh(&self, current: Option<&Token>) -> Result<Token, RefreshError> {
        match current {
            Some(token) => self(token),
            None => Err(RefreshError::new(
                RefreshErrorKind::NoRefreshToken,
                Class::Login,
                "there is no token to refresh",
            )),
        }
    }
}

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded client id and secret. The RFC's MUST-support method.
    Basic,
    /// `client_id` and `client_secret` as form parameters in the request body.
    RequestBody,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grant {
    RefreshToken,
    ClientCredentials,
}

/// The built-in OAuth2 refresher: the refresh_token grant (RFC 6749 §6) or the client_credentials
/// grant (§4.4), against a token endpoint, with its own HTTP agent.
///
/// The agent follows no redirects and has explicit timeouts (connect 5 s, whole call 8 s by
/// default). A token endpoint that is not `https` is refused unless it is on loopback or
/// [`allow_insecure_http`](OAuth2::allow_insecure_http) says so.
///
/// ```
/// use std::time::Duration;
/// use tokengate::OAuth2;
///
/// let refresher = OAuth2::refresh_token("https://auth.example.com/oauth/token")
///     .client_id("my-app")
///     .client_secret("s3cret")
///     .scope("read write")
///     .timeout(Duration::from_secs(10));
/// ```
#[derive(Clone)]
pub struct OAuth2 {
    grant: Grant,
    token_url: String,
    revocation_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    auth: Option<ClientAuth>,
    scope: Option<String>,
    extra: Vec<(String, String)>,
    connect_timeout: Duration,
    timeout: Duration,
    allow_http: bool,
    /// Its own network settings; without them, the client's (see `inherit`) or the defaults.
    /// Boxed: `OAuth2` is moved around by value (e.g. in enums of bindings), and most have none.
    network: Option<Box<Network>>,
    inherited: Option<Arc<Resolved>>,
    agent: Arc<std::sync::OnceLock<Result<NetAgent, String>>>,
}

impl OAuth2 {
    fn new(grant: Grant, token_url: impl Into<String>) -> Self {
        OAuth2 {
            grant,
            token_url: token_url.into(),
            revocation_url: None,
            client_id: None,
            client_secret: None,
            auth: None,
            scope: None,
            extra: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(8),
            allow_http: false,
            network: None,
            inherited: None,
            agent: Arc::default(),
        }
    }

    /// A client of `token_url` for the login flows, which make their own requests (`grant`,
    /// `post_to`) with its authentication and network settings.
    pub(crate) fn for_login(token_url: impl Into<String>) -> Self {
        Self::new(Grant::RefreshToken, token_url)
    }

    /// The refresh_token grant (RFC 6749 §6): trades the current refresh token for a new access token.
    /// When the answer carries no refresh token the old one is kept; when it carries one (rotation),
    /// the new one replaces it.
    pub fn refresh_token(token_url: impl Into<String>) -> Self {
        Self::new(Grant::RefreshToken, token_url)
    }

    /// The client_credentials grant (RFC 6749 §4.4): the client gets tokens with its own credentials;
    /// no refresh token and no prior token are needed.
    pub fn client_credentials(token_url: impl Into<String>) -> Self {
        Self::new(Grant::ClientCredentials, token_url)
    }

    /// Sets the authorization server's revocation endpoint (RFC 7009), where
    /// [`Gate::logout`](crate::Gate::logout) (and [`Client::logout`](crate::Client::logout))
    /// revokes the refresh token, with the same client authentication as the token requests; from
    /// discovery, [`Metadata::revocation_endpoint`](crate::login::Metadata::revocation_endpoint).
    /// The same rule as for the token URL applies: `https`, or plain `http` on loopback or with
    /// [`allow_insecure_http`](OAuth2::allow_insecure_http). Defaults to none: a logout then only
    /// forgets the token here.
    pub fn revocation_url(mut self, url: impl Into<String>) -> Self {
        self.revocation_url = Some(url.into());
        self
    }

    /// Sets the client identifier (RFC 6749 §2.2). Defaults to none.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// Sets the client secret (RFC 6749 §2.3.1). Defaults to none (a public client).
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(ClientSecret::new(secret));
        self
    }

    /// Sets how the client authenticates. Defaults to [`ClientAuth::Basic`] when there is a secret;
    /// a public client always sends `client_id` in the body.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Sets the scope to request (RFC 6749 §3.3), space-separated. Defaults to none (the server keeps
    /// the scope of the original grant).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Adds a form parameter to every token request (e.g. `audience` or `resource`). Defaults to none.
    pub fn extra_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// Sets the timeout for the whole token request, connect to last byte. It bounds how long the
    /// refreshing thread is held by a token endpoint that accepts and never answers. Keep it below
    /// the gate's [`refresh_timeout`](crate::GateBuilder::refresh_timeout) budget (10 s by
    /// default), which bounds the threads waiting for it: an attempt that outlives a whole budget
    /// counts as stuck, and new requests then fail at once until it ends. Defaults to 8 seconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the connect timeout of the token request. Defaults to 5 seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Allows a plain `http` token endpoint that is not on loopback. Defaults to `false`: secrets would
    /// cross the network in the clear.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Sets how the token request reaches the token endpoint: trusted certificates, client
    /// certificate (RFC 8705 mutual-TLS client authentication), proxies; see [`Network`].
    /// Defaults to the network of the [`Client`](crate::Client) this refresher is given to, or to
    /// [`Network::new`] when it is given to a [`Gate`](crate::Gate) directly.
    pub fn network(mut self, network: Network) -> Self {
        self.network = Some(Box::new(network));
        self.agent = Arc::default();
        self
    }

    /// Uses the client's network settings, unless this refresher has its own.
    pub(crate) fn inherit(&mut self, network: &Arc<Resolved>) {
        if self.network.is_none() {
            self.inherited = Some(Arc::clone(network));
            self.agent = Arc::default();
        }
    }

    /// The agent of the token endpoint, built once: the network settings are read (files,
    /// environment) the first time.
    fn agent(&self) -> Result<&NetAgent, RefreshError> {
        let built = self
            .agent
            .get_or_init(|| self.build_agent(&self.token_url, "token URL"));
        built.as_ref().map_err(|msg| {
            RefreshError::new(
                RefreshErrorKind::Transport,
                Class::Configuration,
                msg.clone(),
            )
        })
    }

    /// An agent whose own origin is `url`'s, on this refresher's network settings.
    fn build_agent(&self, url: &str, what: &str) -> Result<NetAgent, String> {
        let resolved = match (&self.network, &self.inherited) {
            (Some(own), _) => own.resolve(),
            (None, Some(client)) => Ok(Arc::clone(client)),
            (None, None) => Network::default().resolve(),
        }
        .map_err(|e| e.to_string())?;
        let home: ureq::http::Uri = url
            .parse()
            .map_err(|_| format!("the {what} does not parse"))?;
        let base = ureq::Agent::config_builder()
            .timeout_connect(Some(self.connect_timeout))
            .timeout_global(Some(self.timeout));
        Ok(resolved.agent(&home, base))
    }

    /// Whether `url` may be used for secrets: `https`, or `http` on loopback or when allowed.
    pub(crate) fn check_url(&self, url: &str, what: &str) -> Result<(), String> {
        let (_, origin) = Origin::parse(url, what)?;
        if !origin.is_https() && !origin.is_loopback() && !self.allow_http {
            return Err(format!(
                "the {what} is plain http and not loopback; use https or allow_insecure_http(true)"
            ));
        }
        Ok(())
    }

    /// The client authentication parameters for the body (RFC 6749 §2.3.1): `client_id` (and
    /// `client_secret` with [`ClientAuth::RequestBody`]) unless Basic authentication applies.
    fn auth_params<'a>(&'a self, pairs: &mut Vec<(&'a str, &'a str)>) {
        if self.basic_auth().is_none() {
            if let Some(id) = &self.client_id {
                pairs.push(("client_id", id));
            }
            if let Some(secret) = &self.client_secret {
                pairs.push(("client_secret", secret.secret()));
            }
        }
    }

    fn form(&self, current: Option<&Token>) -> Result<String, RefreshError> {
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(6);
        match self.grant {
            Grant::RefreshToken => {
                let refresh = current.and_then(Token::refresh_token).ok_or_else(|| {
                    RefreshError::new(
                        RefreshErrorKind::NoRefreshToken,
                        Class::Login,
                        "the token has no refresh token",
                    )
                })?;
                pairs.push(("grant_type", "refresh_token"));
                pairs.push(("refresh_token", refresh.secret()));
            }
            Grant::ClientCredentials => pairs.push(("grant_type", "client_credentials")),
        }
        if let Some(scope) = &self.scope {
            pairs.push(("scope", scope));
        }
        self.auth_params(&mut pairs);
        for (k, v) in &self.extra {
            pairs.push((k, v));
        }
        Ok(form_pairs(pairs))
    }

    /// The secrets this refresh knows, to be kept out of any server text it keeps: the tokens of
    /// `current`, the client secret, the Basic credentials in every form they may be echoed in
    /// (raw `id:secret`, form-encoded, base64 of both), and any token `body` carries; each also
    /// form-encoded.
    fn secrets(&self, current: Option<&Token>, body: Option<&[u8]>) -> Secrets {
        let mut secrets = Secrets::default();
        if let Some(token) = current {
            secrets.add(token.access_token().secret());
            if let Some(r) = token.refresh_token() {
                secrets.add(r.secret());
            }
        }
        if let Some(secret) = &self.client_secret {
            let secret = secret.secret();
            secrets.add(secret);
            let id = self.client_id.as_deref().unwrap_or("");
            let raw = format!("{id}:{secret}");
            let mut encoded = String::new();
            form_encode(id, &mut encoded);
            encoded.push(':');
            form_encode(secret, &mut encoded);
            secrets.add(&base64(raw.as_bytes()));
            secrets.add(&base64(encoded.as_bytes()));
            secrets.add(&raw);
            secrets.add(&encoded);
        }
        if let Some(body) = body {
            secrets.add_tokens_of(body);
        }
        secrets
    }

    /// The `Authorization: Basic ..` value, when Basic authentication applies.
    fn basic_auth(&self) -> Option<String> {
        let secret = self.client_secret.as_ref()?;
        if self.auth == Some(ClientAuth::RequestBody) {
            return None;
        }
        let mut creds = String::new();
        form_encode(self.client_id.as_deref().unwrap_or(""), &mut creds);
        creds.push(':');
        form_encode(secret.secret(), &mut creds);
        Some(format!("Basic {}", base64(creds.as_bytes())))
    }
}

impl fmt::Debug for OAuth2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2")
            .field("grant", &self.grant)
            .field("token_url", &self.token_url)
            .field("revocation_url", &self.revocation_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl Refresh for OAuth2 {
    fn refresh(&self, current: Option<&Token>) -> Result<Token, RefreshError> {
        let mut body = Vec::new();
        self.exchange(current, &mut body).map_err(|e| {
            let secrets = self.secrets(current, Some(&body));
            e.scrubbed(|text| secrets.scrub(text))
        })
    }

    /// Revokes the refresh token (RFC 7009) at the [`revocation_url`](OAuth2::revocation_url), or
    /// the access token when there is no refresh token; nothing without a revocation URL. The
    /// server's `200` means done (also for a token it no longer knew); a `503` or a network
    /// failure is transient, and the other answers are classified like a token endpoint's.
    fn revoke(&self, token: &Token) -> Result<(), RefreshError> {
        match &self.revocation_url {
            Some(url) => self.revoke_at(url, token),
            None => Ok(()),
        }
    }

    fn check(&self) -> Result<(), RefreshError> {
        self.check_url(&self.token_url, "token URL")
            .map_err(RefreshError::configuration)?;
        if let Some(url) = &self.revocation_url {
            self.check_url(url, "revocation URL")
                .map_err(RefreshError::configuration)?;
        }
        // Its own network settings are read now, so a problem is reported when the gate is built
        // (a client's were read by the client builder). The agent itself is built at the first
        // refresh.
        if let Some(own) = &self.network {
            own.resolve()
                .map_err(|e| RefreshError::configuration(e.to_string()))?;
        }
        Ok(())
    }
}

impl OAuth2 {
    /// One token request. The answer's body is left in `body` so the caller can scrub any token it
    /// carries from the error.
    fn exchange(&self, current: Option<&Token>, body: &mut Vec<u8>) -> Result<Token, RefreshError> {
        let form = self.form(current)?;
        let answer = self.post(self.agent()?, &self.token_url, form, body)?;
        let previous = current.and_then(Token::refresh_token);
        if (200..300).contains(&answer.status) && OAuthError::parse(body).is_none() {
            return TokenResponse::parse(body)
                .map(|r| r.into_token(previous))
                .map_err(|e| e.with_status(answer.status));
        }
        // An error response, or a 2xx carrying an RFC 6749 §5.2 error object instead of a token.
        let secrets = self.secrets(current, Some(body));
        Err(error_response(
            answer.status,
            body,
            answer.retry_after,
            &secrets,
        ))
    }

    /// POSTs `form` to `url` through `net`, with this client's Basic credentials when they apply,
    /// and reads the answer (at most 64 KiB) into `body`.
    fn post(
        &self,
        net: &NetAgent,
        url: &str,
        form: String,
        body: &mut Vec<u8>,
    ) -> Result<Answer, RefreshError> {
        let mut req = net
            .agent
            .post(url)
            .header("Accept", "application/json")
            .header("Content-Type", "application/x-www-form-urlencoded");
        if let Some(basic) = self.basic_auth() {
            req = req.header("Authorization", basic);
        }
        let mut resp = req
            .send(form)
            .map_err(|e| network_error(e, net.home_proxy()))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, std::time::SystemTime::now()));
        *body = resp
            .body_mut()
            .with_config()
            .limit(MAX_TOKEN_RESPONSE)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => RefreshError::new(
                    RefreshErrorKind::InvalidResponse,
                    Class::Transient,
                    format!("answer larger than {MAX_TOKEN_RESPONSE} bytes"),
                )
                .with_status(status),
                other => transport_error(other).with_status(status),
            })?;
        Ok(Answer {
            status,
            retry_after,
        })
    }

    /// POSTs `params` and this client's authentication to `url`, an endpoint of the same
    /// authorization server other than the token endpoint (device authorization, RFC 8628 §3.1),
    /// and returns the body of a success. Any other answer, and a `2xx` carrying an OAuth2 error
    /// object, is classified like a token endpoint's (see [`RefreshError`]); a transport failure
    /// too. `secrets` and every secret the refresher knows are scrubbed from the error's text.
    pub(crate) fn post_to(
        &self,
        url: &str,
        params: &[(&str, &str)],
        secrets: &[&str],
    ) -> Result<Vec<u8>, RefreshError> {
        let mut pairs = params.to_vec();
        self.auth_params(&mut pairs);
        let net = self.build_agent(url, "endpoint URL").map_err(|msg| {
            RefreshError::new(RefreshErrorKind::Transport, Class::Configuration, msg)
        })?;
        let mut body = Vec::new();
        let answer = self
            .post(&net, url, form_pairs(pairs), &mut body)
            .map_err(|e| self.scrub(e, secrets, &body))?;
        if (200..300).contains(&answer.status) && OAuthError::parse(&body).is_none() {
            return Ok(body);
        }
        let e = error_response(
            answer.status,
            &body,
            answer.retry_after,
            &Secrets::default(),
        );
        Err(self.scrub(e, secrets, &body))
    }

    /// A token request of another grant than this refresher's own (`authorization_code`,
    /// `urn:ietf:params:oauth:grant-type:device_code`): `params` and this client's authentication,
    /// to the token endpoint. The answer as a [`Token`] (without a refresh token to keep), or the
    /// classified error, with `secrets` (the code, the verifier, the device code) and every secret
    /// the refresher knows scrubbed from its text.
    pub(crate) fn grant(
        &self,
        params: &[(&str, &str)],
        secrets: &[&str],
    ) -> Result<Token, RefreshError> {
        let mut pairs = params.to_vec();
        self.auth_params(&mut pairs);
        let mut body = Vec::new();
        let answer = self
            .agent()
            .and_then(|net| self.post(net, &self.token_url, form_pairs(pairs), &mut body))
            .map_err(|e| self.scrub(e, secrets, &body))?;
        if (200..300).contains(&answer.status) && OAuthError::parse(&body).is_none() {
            return TokenResponse::parse(&body)
                .map(|r| r.into_token(None))
                .map_err(|e| e.with_status(answer.status));
        }
        let mut known = self.secrets(None, Some(&body));
        for s in secrets {
            known.add(s);
        }
        Err(error_response(
            answer.status,
            &body,
            answer.retry_after,
            &known,
        ))
    }

    /// `e` with `secrets`, every secret the refresher knows and any token `body` carries replaced
    /// by `[redacted]`.
    fn scrub(&self, e: RefreshError, secrets: &[&str], body: &[u8]) -> RefreshError {
        let mut known = self.secrets(None, Some(body));
        for s in secrets {
            known.add(s);
        }
        e.scrubbed(|text| known.scrub(text))
    }

    /// Revokes `token`'s refresh token (its access token when it has none) at the revocation
    /// endpoint: RFC 7009 §2.1, with `token_type_hint` and the client's authentication.
    fn revoke_at(&self, url: &str, token: &Token) -> Result<(), RefreshError> {
        let (value, hint) = match token.refresh_token() {
            Some(r) => (r.secret(), "refresh_token"),
            None => (token.access_token().secret(), "access_token"),
        };
        let mut pairs = vec![("token", value), ("token_type_hint", hint)];
        self.auth_params(&mut pairs);
        let net = self.build_agent(url, "revocation URL").map_err(|msg| {
            RefreshError::new(RefreshErrorKind::Transport, Class::Configuration, msg)
        })?;
        let mut body = Vec::new();
        let secrets = self.secrets(Some(token), None);
        let answer = self
            .post(&net, url, form_pairs(pairs), &mut body)
            .map_err(|e| e.scrubbed(|text| secrets.scrub(text)))?;
        // RFC 7009 §2.2: 200 whether or not the token was valid; §2.2.1: 503 means try later.
        if answer.status == 200 {
            return Ok(());
        }
        Err(error_response(
            answer.status,
            &body,
            answer.retry_after,
            &secrets,
        ))
    }
}

/// The status of an answer and the delay its `Retry-After` asks for.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
}

/// What replaces a secret in text the client keeps.
const REDACTED: &str = "[redacted]";

/// Secrets to be replaced with `[redacted]` in text from the server (see [`OAuth2::secrets`]).
#[derive(Default)]
struct Secrets(Vec<String>);

impl Secrets {
    /// Adds `secret` and its form-encoded form (as a request body carries it, and as a server may
    /// echo that body).
    fn add(&mut self, secret: &str) {
        let mut encoded = String::new();
        form_encode(secret, &mut encoded);
        for s in [secret.to_owned(), encoded] {
            if !s.is_empty() && !self.0.contains(&s) {
                self.0.push(s);
            }
        }
    }

    /// Adds the tokens a body carries: the string `access_token`, `refresh_token` and `id_token`
    /// fields of a JSON object, or the same keys' values in a form-encoded body, as they appear.
    fn add_tokens_of(&mut self, body: &[u8]) {
        const KEYS: [&str; 3] = ["access_token", "refresh_token", "id_token"];
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            for key in KEYS {
                if let Some(Value::String(s)) = map.get(key) {
                    self.add(s);
                }
            }
        }
        let text = String::from_utf8_lossy(body);
        for pair in text.split(['&', '\n']) {
            if let Some((key, value)) = pair.split_once('=')
                && KEYS.contains(&key.trim())
            {
                self.add(value.trim());
            }
        }
    }

    /// `text` with every occurrence of every secret replaced by `[redacted]`, longest secret first
    /// (so `id:secret` goes whole, not as `id:[redacted]`).
    fn scrub(&self, text: &str) -> String {
        let mut by_length: Vec<&String> = self.0.iter().collect();
        by_length.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = text.to_owned();
        for secret in by_length {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

/// A failed token request: TLS and proxy failures get their own kinds, the rest is
/// [`transport_error`].
fn network_error(e: ureq::Error, proxy: Option<&ureq::Proxy>) -> RefreshError {
    match net::failure_of(&e, proxy) {
        Failure::Proxy => {
            let err = crate::error::ProxyError::new(proxy.map(net::describe), e);
            let class = if err.is_auth_refused() {
                Class::Configuration
            } else {
                Class::Transient
            };
            RefreshError::new(
                RefreshErrorKind::Proxy,
                class,
                "could not reach the token endpoint through the proxy",
            )
            .with_source(err)
        }
        _ => transport_error(e),
    }
}

fn transport_error(e: ureq::Error) -> RefreshError {
    // Typed TLS failures (any rustls error, native-tls) get their own kind; the class is the one
    // `is_tls_trust_failure` gives, widened to those: retrying cannot fix a handshake either.
    let tls = net::is_tls(&e);
    let class = if tls || is_tls_trust_failure(&e) {
        Class::Configuration
    } else {
        Class::Transient
    };
    let (kind, message) = if tls {
        (RefreshErrorKind::Tls, "TLS with the token endpoint failed")
    } else {
        (
            RefreshErrorKind::Transport,
            "could not reach the token endpoint",
        )
    };
    RefreshError::new(kind, class, message).with_source(e)
}

/// Whether a transport failure is one that trying again cannot fix: the server's certificate or
/// name is not trusted, or the TLS set-up itself is unusable.
fn is_tls_trust_failure(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Tls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::TlsRequired
        | ureq::Error::RequireHttpsOnly(_) => true,
        // rustls reports a failed handshake through the stream, as an I/O error that wraps its own.
        ureq::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::InvalidData
                && io.get_ref().is_some_and(|inner| {
                    let text = inner.to_string();
                    text.starts_with("invalid peer certificate")
                        || text.starts_with("received fatal alert: BadCertificate")
                        || text.starts_with("received fatal alert: UnknownCA")
                        || text.starts_with("received fatal alert: CertificateRequired")
                })
        }
        _ => false,
    }
}

/// What an RFC 6749 §5.2 error code says about the failure, when the code is one we know.
fn class_of_code(code: &str) -> Option<Class> {
    match code {
        "invalid_grant" => Some(Class::Login),
        "invalid_client"
        | "unauthorized_client"
        | "unsupported_grant_type"
        | "invalid_scope"
        | "invalid_request" => Some(Class::Configuration),
        "temporarily_unavailable" | "slow_down" | "server_error" => Some(Class::Transient),
        _ => None,
    }
}

/// What a status without a known error code says: 5xx, 408, 425 and 429 may pass; anything else
/// (a 3xx, 400, 401, 403, 404, even a 2xx) means an endpoint that retrying will not fix. Never
/// login required: only `invalid_grant` says the grant is dead.
fn class_of_status(status: u16) -> Class {
    if matches!(status, 408 | 425 | 429) || status >= 500 {
        Class::Transient
    } else {
        Class::Configuration
    }
}

/// Classifies a token endpoint answer that is not a token: an error status, or a 2xx carrying an
/// error object. See the table on [`RefreshError`]. The server's text is kept with `secrets`
/// scrubbed out; the body of a 2xx is never kept.
fn error_response(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    secrets: &Secrets,
) -> RefreshError {
    let oauth = OAuthError::parse(body);
    let mut err = match oauth {
        Some(oauth) => {
            let class = class_of_code(&oauth.error).unwrap_or_else(|| class_of_status(status));
            RefreshError::new(RefreshErrorKind::OAuth, class, "the server refused")
                .with_oauth(oauth)
        }
        None => {
            let mut e = RefreshError::new(
                RefreshErrorKind::Status,
                class_of_status(status),
                "unexpected answer from the token endpoint",
            );
            if !(200..300).contains(&status) && serde_json::from_slice::<Value>(body).is_err() {
                e = e.with_body_excerpt(excerpt(body, secrets));
            }
            e
        }
    }
    .with_status(status)
    .scrubbed(|text| secrets.scrub(text));
    if let Some(after) = retry_after {
        err = err.with_retry_after(after);
    }
    err
}

/// The start of `body`, scrubbed whole before it is cut (a secret straddling the cut would
/// otherwise leave its first half).
fn excerpt(body: &[u8], secrets: &Secrets) -> String {
    secrets
        .scrub(&String::from_utf8_lossy(body))
        .chars()
        .take(EXCERPT_CHARS)
        .collect()
}

/// A successful token response (RFC 6749 §5.1), parsed and checked.
///
/// Unknown fields are kept in [`extra`](TokenResponse::extra). `Debug` redacts the tokens.
///
/// ```
/// use tokengate::TokenResponse;
///
/// let r = TokenResponse::parse(br#"{"access_token":"a","token_type":"bearer","expires_in":"3600","id_token":"x"}"#)?;
/// assert_eq!(r.expires_in, Some(std::time::Duration::from_secs(3600)));
/// assert!(r.extra.contains_key("id_token"));
/// # Ok::<_, tokengate::RefreshError>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct TokenResponse {
    /// `access_token` (RFC 6749 §5.1): required, non-empty.
    pub access_token: String,
    /// `token_type` (RFC 6749 §5.1, §7.1). Required by the RFC; `Bearer` is assumed when a server
    /// leaves it out or sends something that is not a non-empty string (that value is kept in
    /// [`extra`](TokenResponse::extra)): refusing the response would throw away a rotated refresh
    /// token.
    pub token_type: String,
    /// `expires_in` (RFC 6749 §5.1), accepted as a JSON number or a numeric string. Only RECOMMENDED:
    /// `None` when absent, and also when unusable (zero, negative, not a number): such a value is kept
    /// in [`extra`](TokenResponse::extra) and the token is treated as one without a stated lifetime
    /// (see [`GateBuilder::assumed_lifetime`](crate::GateBuilder::assumed_lifetime)), because
    /// rejecting the whole response would throw away a rotated refresh token the server has already
    /// swapped for the old one. [`into_token`](TokenResponse::into_token) clamps lifetimes beyond
    /// ten years, and without `expires_in` reads a JWT access token's `exp` claim.
    pub expires_in: Option<Duration>,
    /// `refresh_token` (RFC 6749 §5.1, §6): present when the server issues or rotates one.
    pub refresh_token: Option<String>,
    /// `scope` (RFC 6749 §5.1, §3.3).
    pub scope: Option<String>,
    /// Every other field of the response (e.g. `id_token`), as sent.
    pub extra: Map<String, Value>,
}

impl TokenResponse {
    /// Parses a token endpoint's success body.
    ///
    /// # Errors
    ///
    /// A transient [`RefreshError`] of kind [`InvalidResponse`](RefreshErrorKind::InvalidResponse)
    /// when the body is not a JSON object, `access_token` is missing, empty or not a string, or
    /// `token_type` or `refresh_token` has the wrong type. An unusable `expires_in` is not an error
    /// (see [`expires_in`](TokenResponse::expires_in)). The message names the field, never its
    /// value, and no part of the body is kept: a success body that is not JSON (form-encoded, cut
    /// short) may hold the new tokens.
    pub fn parse(body: &[u8]) -> Result<TokenResponse, RefreshError> {
        let invalid = |msg: &str| {
            RefreshError::new(
                RefreshErrorKind::InvalidResponse,
                Class::Transient,
                format!("invalid token response: {msg}"),
            )
        };
        let value: Value = serde_json::from_slice(body).map_err(|_| invalid("not JSON"))?;
        let Value::Object(mut map) = value else {
            return Err(invalid("not a JSON object"));
        };
        let access_token = match map.remove("access_token") {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::String(_)) => return Err(invalid("access_token is empty")),
            Some(_) => return Err(invalid("access_token is not a string")),
            None => return Err(invalid("access_token is missing")),
        };
        // An odd token_type or refresh_token must not cost the rotated refresh token (or the
        // new access token) the rest of the response carries: assume the usual, keep the odd
        // value in `extra`.
        let token_type = match map.remove("token_type") {
            Some(Value::String(s)) if !s.is_empty() => s,
            None | Some(Value::Null) => "Bearer".to_owned(),
            Some(odd) => {
                map.insert("token_type".to_owned(), odd);
                "Bearer".to_owned()
            }
        };
        let expires_in = match map.remove("expires_in") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let lifetime = parse_expires_in(&v);
                if lifetime.is_none() {
                    // Unusable: keep it for the caller to see, use the token without a stated
                    // lifetime. Failing here would throw away a rotated refresh token.
                    map.insert("expires_in".to_owned(), v);
                }
                lifetime
            }
        };
        let refresh_token = match map.remove("refresh_token") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            // No usable new refresh token: the old one is kept (see `into_token`).
            Some(odd) => {
                map.insert("refresh_token".to_owned(), odd);
                None
            }
        };
        let scope = match map.remove("scope") {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in,
            refresh_token,
            scope,
            extra: map,
        })
    }

    /// Turns the response into a [`Token`]. When the response has no refresh token, `previous` is kept
    /// (RFC 6749 §6: the server MAY issue a new one; when it does not, the old one stays valid).
    ///
    /// Without a usable `expires_in`, an access token that is a JWT (RFC 7519) gets its lifetime
    /// from its `exp` claim, counted from now (the moment the response is turned into a token):
    /// only the payload is decoded, and its signature is not checked. That is enough for the
    /// client's own timing (when to refresh); the API that receives the token checks the
    /// signature. An `exp` already passed, or more than ten years ahead (e.g. in milliseconds), is
    /// not used. An opaque token keeps no stated lifetime (the gate's
    /// [`assumed_lifetime`](crate::GateBuilder::assumed_lifetime) applies).
    pub fn into_token(self, previous: Option<&RefreshToken>) -> Token {
        let lifetime = self
            .expires_in
            .or_else(|| crate::jwt::lifetime(&self.access_token, std::time::SystemTime::now()));
        let mut token = Token::new(self.access_token).with_token_type(self.token_type);
        if let Some(lifetime) = lifetime {
            token = token.with_expires_in(lifetime);
        }
        if let Some(scope) = self.scope {
            token = token.with_scope(scope);
        }
        match self.refresh_token {
            Some(r) => token.with_refresh_token(r),
            None => token.replace_refresh(previous.cloned()),
        }
    }
}

/// `expires_in` as a number (integer or fraction) or numeric string; must be positive.
fn parse_expires_in(v: &Value) -> Option<Duration> {
    let secs = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    // Clamped far below u64 range; Token::with_expires_in clamps further to its own maximum.
    Some(Duration::from_secs_f64(secs.min(1e15)))
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc6749_example() {
        let r = TokenResponse::parse(
            br#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600,
               "refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","example_parameter":"example_value"}"#,
        )
        .unwrap();
        assert_eq!(r.expires_in, Some(Duration::from_secs(3600)));
        assert_eq!(r.refresh_token.as_deref(), Some("tGzv3JOkF0XG5Qx2TlKWIA"));
        assert_eq!(r.extra["example_parameter"], "example_value");
        let dbg = format!("{r:?}");
        assert!(
            !dbg.contains("2YotnFZFEjr1zCsicMWpAA") && !dbg.contains("tGzv3"),
            "{dbg}"
        );
    }

    #[test]
    fn expires_in_forms() {
        let p = |s: &str| TokenResponse::parse(s.as_bytes()).map(|r| r.expires_in);
        assert_eq!(
            p(r#"{"access_token":"a","expires_in":"60"}"#).unwrap(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            p(r#"{"access_token":"a","expires_in":1.5}"#).unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(p(r#"{"access_token":"a"}"#).unwrap(), None);
        assert!(
            p(r#"{"access_token":"a","expires_in":1e300}"#)
                .unwrap()
                .is_some()
        );
        // Unusable values do not discard the response (it may carry a rotated refresh token):
        // no stated lifetime, the raw value kept in `extra`.
        for bad in ["0", "-5", "\"soon\"", "true", "\"NaN\"", "[]", "\"inf\""] {
            let body = format!(r#"{{"access_token":"a","refresh_token":"r2","expires_in":{bad}}}"#);
            let r = TokenResponse::parse(body.as_bytes()).unwrap();
            assert_eq!(r.expires_in, None, "{bad}");
            assert_eq!(r.extra["expires_in"].to_string(), bad, "{bad}");
            assert_eq!(r.refresh_token.as_deref(), Some("r2"));
        }
    }

    #[test]
    fn invalid_bodies_are_typed_and_never_echo_tokens() {
        for body in [
            &b"<html>login</html>"[..],
            b"{\"access_token\": \"abc\", ",
            b"[]",
            b"{}",
            b"{\"access_token\":\"\"}",
            b"{\"access_token\":42}",
            b"",
        ] {
            let e = TokenResponse::parse(body).unwrap_err();
            assert_eq!(e.kind(), RefreshErrorKind::InvalidResponse);
            assert!(e.is_transient());
            assert!(!e.to_string().contains("abc"));
        }
        // A success body is never kept: one that is not JSON may hold the new tokens.
        for body in [
            &b"<html>login</html>"[..],
            b"access_token=abc&refresh_token=def",
        ] {
            assert_eq!(TokenResponse::parse(body).unwrap_err().body_excerpt(), None);
        }
    }

    #[test]
    fn a_jwt_access_token_without_expires_in_expires_at_its_exp() {
        let exp = std::time::SystemTime::now() + Duration::from_secs(1800);
        let secs = exp.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let jwt = format!(
            "{}.{}.sig",
            crate::form::base64url(br#"{"alg":"RS256"}"#),
            crate::form::base64url(format!(r#"{{"sub":"me","exp":{secs}}}"#).as_bytes())
        );
        let body = format!(r#"{{"access_token":"{jwt}"}}"#);
        let token = TokenResponse::parse(body.as_bytes())
            .unwrap()
            .into_token(None);
        let left = token.remaining().unwrap();
        assert!(
            left > Duration::from_secs(1790) && left <= Duration::from_secs(1800),
            "{left:?}"
        );
        // `expires_in` wins when the server states it; an opaque token has no lifetime.
        let body = format!(r#"{{"access_token":"{jwt}","expires_in":60}}"#);
        let token = TokenResponse::parse(body.as_bytes())
            .unwrap()
            .into_token(None);
        assert_eq!(token.lifetime(), Some(Duration::from_secs(60)));
        let opaque = TokenResponse::parse(br#"{"access_token":"opaque"}"#).unwrap();
        assert_eq!(opaque.into_token(None).remaining(), None);
    }

    #[test]
    fn keeps_previous_refresh_token_unless_rotated() {
        let old = RefreshToken::new("old");
        let kept = TokenResponse::parse(br#"{"access_token":"a"}"#)
            .unwrap()
            .into_token(Some(&old));
        assert_eq!(kept.refresh_token().unwrap().secret(), "old");
        let rotated = TokenResponse::parse(br#"{"access_token":"a","refresh_token":"new"}"#)
            .unwrap()
            .into_token(Some(&old));
        assert_eq!(rotated.refresh_token().unwrap().secret(), "new");
    }

    /// The class the table on `RefreshError` gives an answer.
    fn class(status: u16, body: &str) -> Class {
        let e = error_response(status, body.as_bytes(), None, &Secrets::default());
        match (e.is_transient(), e.is_permanent(), e.is_configuration()) {
            (true, false, false) => Class::Transient,
            (false, true, false) => Class::Login,
            (false, false, true) => Class::Configuration,
            other => panic!("not exactly one class: {other:?}"),
        }
    }

    #[test]
    fn invalid_grant_is_login_required_whatever_the_status() {
        for status in [400, 401, 200, 403, 500] {
            assert_eq!(
                class(status, r#"{"error":"invalid_grant"}"#),
                Class::Login,
                "{status}"
            );
        }
        let e = error_response(
            400,
            br#"{"error":"invalid_grant"}"#,
            None,
            &Secrets::default(),
        );
        assert_eq!(e.oauth_error().unwrap().error, "invalid_grant");
    }

    #[test]
    fn client_errors_are_configuration_not_login() {
        for code in [
            "invalid_client",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "invalid_request",
        ] {
            for status in [400, 401, 200] {
                let body = format!(r#"{{"error":"{code}"}}"#);
                assert_eq!(
                    class(status, &body),
                    Class::Configuration,
                    "{code} {status}"
                );
            }
        }
    }

    #[test]
    fn unavailable_and_slow_down_are_transient_even_in_a_400() {
        for code in ["temporarily_unavailable", "slow_down", "server_error"] {
            for status in [400, 401, 200, 503] {
                let body = format!(r#"{{"error":"{code}"}}"#);
                assert_eq!(class(status, &body), Class::Transient, "{code} {status}");
            }
        }
    }

    #[test]
    fn unknown_codes_and_bare_statuses_are_judged_by_status() {
        for status in [500, 502, 503, 504, 408, 425, 429] {
            assert_eq!(class(status, ""), Class::Transient, "{status}");
            assert_eq!(
                class(status, r#"{"error":"weird"}"#),
                Class::Transient,
                "{status}"
            );
        }
        for status in [301, 302, 400, 401, 403, 404, 405, 200] {
            assert_eq!(class(status, ""), Class::Configuration, "{status}");
            assert_eq!(
                class(status, r#"{"error":"weird"}"#),
                Class::Configuration,
                "{status}"
            );
        }
        let e = error_response(
            503,
            b"<html>down</html>",
            Some(Duration::from_secs(7)),
            &Secrets::default(),
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.body_excerpt(), Some("<html>down</html>"));
    }

    #[test]
    fn form_and_basic_auth() {
        let t = Token::new("a").with_refresh_token("r/1");
        let o = OAuth2::refresh_token("https://x/t")
            .client_id("app")
            .scope("a b");
        assert_eq!(
            o.form(Some(&t)).unwrap(),
            "grant_type=refresh_token&refresh_token=r%2F1&scope=a+b&client_id=app"
        );
        assert!(o.basic_auth().is_none());
        let o = o.client_secret("p:w");
        assert_eq!(
            o.basic_auth().unwrap(),
            format!("Basic {}", base64(b"app:p%3Aw"))
        );
        assert!(!o.form(Some(&t)).unwrap().contains("client_"));
        let o = o.client_auth(ClientAuth::RequestBody);
        assert!(
            o.form(Some(&t))
                .unwrap()
                .ends_with("client_id=app&client_secret=p%3Aw")
        );
        assert!(!format!("{o:?}").contains("p:w"));
        let e = OAuth2::refresh_token("https://x/t")
            .form(Some(&Token::new("a")))
            .unwrap_err();
        assert_eq!(e.kind(), RefreshErrorKind::NoRefreshToken);
        assert!(e.is_permanent());
    }

    #[test]
    fn issue_12_server_text_never_keeps_a_known_secret() {
        let o = OAuth2::refresh_token("https://x/t")
            .client_id("app")
            .client_secret("p:w/s3cret");
        let current = Token::new("acc-old").with_refresh_token("ref/old");
        let basic = o.basic_auth().unwrap();
        let basic = basic.strip_prefix("Basic ").unwrap();
        let raw_basic = base64(b"app:p:w/s3cret");
        let echo = format!(
            "ref/old ref%2Fold acc-old p:w/s3cret p%3Aw%2Fs3cret app:p:w/s3cret {basic} \
             {raw_basic} acc-new ref-new"
        );
        let body = serde_json::json!({
            "error": format!("bad_{basic}"),
            "error_description": echo,
            "error_uri": "https://x/e?rt=ref/old",
            "access_token": "acc-new",
            "refresh_token": "ref-new",
        })
        .to_string();
        let secrets = o.secrets(Some(&current), Some(body.as_bytes()));
        let e = error_response(400, body.as_bytes(), None, &secrets);
        let oauth = e.oauth_error().unwrap();
        let kept = format!(
            "{e} {e:?} {} {} {:?}",
            oauth.error,
            oauth.error_uri.as_deref().unwrap(),
            oauth.error_description
        );
        for secret in [
            "ref/old",
            "ref%2Fold",
            "acc-old",
            "s3cret",
            "acc-new",
            "ref-new",
            basic,
            &raw_basic,
        ] {
            assert!(!kept.contains(secret), "{secret} in {kept}");
        }
        assert_eq!(oauth.error, "bad_[redacted]");
        assert!(kept.contains("[redacted]"));

        // A non-JSON error page: scrubbed before it is cut, so a secret straddling the cut goes too.
        let page = format!("{}ref/old tail", "x".repeat(EXCERPT_CHARS - 3));
        let e = error_response(502, page.as_bytes(), None, &secrets);
        let excerpt = e.body_excerpt().unwrap();
        assert!(!excerpt.contains("ref"), "{excerpt}");
        assert!(excerpt.ends_with("xxx[re"), "{excerpt}");

        // A form-encoded answer's tokens are recognised too.
        let form = b"error=x&access_token=acc-form&refresh_token=ref-form";
        let secrets = o.secrets(Some(&current), Some(form));
        let e = error_response(500, form, None, &secrets);
        assert!(!e.body_excerpt().unwrap().contains("-form"));

        // Never an excerpt of a 2xx, even one carrying an error code.
        let e = error_response(200, b"error=x&access_token=acc", None, &secrets);
        assert_eq!(e.body_excerpt(), None);
    }

    #[test]
    fn insecure_token_urls_are_refused() {
        assert!(
            OAuth2::refresh_token("http://auth.example.com/t")
                .check()
                .is_err()
        );
        assert!(
            OAuth2::refresh_token("http://auth.example.com/t")
                .allow_insecure_http(true)
                .check()
                .is_ok()
        );
        assert!(
            OAuth2::refresh_token("http://127.0.0.1:9/t")
                .check()
                .is_ok()
        );
        assert!(
            OAuth2::refresh_token("https://auth.example.com/t")
                .check()
                .is_ok()
        );
        assert!(OAuth2::refresh_token("not a url").check().is_err());
    }
}
