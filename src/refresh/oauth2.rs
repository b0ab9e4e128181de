//! [`OAuth2`]: the refresh_token (RFC 6749 §6) and client_credentials (§4.4) grants, client
//! authentication, and the requests to the token and revocation endpoints on its own agent.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::answer::*;
use super::token_response::TokenResponse;
use super::{Refresh, retry_after};
use crate::error::{Class, OAuthError, RefreshError, RefreshErrorKind};
use crate::form::{base64, form_encode, form_pairs};
use crate::net::{NetAgent, Network, Resolved};
use crate::origin::Origin;
use crate::token::{ClientSecret, Token};

/// Largest token endpoint answer we read. Real ones are well under 8 KiB.
const MAX_TOKEN_RESPONSE: u64 = 64 * 1024;

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

    pub(super) fn form(&self, current: Option<&Token>) -> Result<String, RefreshError> {
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
    pub(super) fn secrets(&self, current: Option<&Token>, body: Option<&[u8]>) -> Secrets {
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
    pub(super) fn basic_auth(&self) -> Option<String> {
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
