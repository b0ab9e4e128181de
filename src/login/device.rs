//! [`DeviceLogin`]: the OAuth 2.0 Device Authorization Grant (RFC 8628).

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Cancel, ClientSettings, Metadata, cancelled};
use crate::error::{Class, LoginError, LoginErrorKind};
use crate::net::Network;
use crate::origin::Origin;
use crate::refresh::OAuth2;
use crate::sync::Clock;
use crate::token::{ClientSecret, Token};

/// The grant type of the token requests that poll (RFC 8628 §3.4).
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The polling interval when the server states none (RFC 8628 §3.2).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// What `slow_down` adds to the interval (RFC 8628 §3.5).
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The shortest interval honoured from a server that is not on loopback.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest interval honoured from a loopback server (a test server's fractional `interval`).
const MIN_LOOPBACK_INTERVAL: Duration = Duration::from_millis(10);
/// The longest interval the backoff after failed polls reaches.
const MAX_BACKOFF_INTERVAL: Duration = Duration::from_secs(60);
/// The longest a device code is polled for, whatever its `expires_in` says.
const MAX_EXPIRES_IN: Duration = Duration::from_secs(24 * 3600);

/// A login with the Device Authorization Grant (RFC 8628): for a CLI, an SSH session or a device
/// without a browser. The user opens a URL on any device (a phone will do) and enters a short
/// code; meanwhile [`run`](DeviceLogin::run) polls the token endpoint until the user approves.
///
/// ```no_run
/// use tokengate::Client;
/// use tokengate::login::DeviceLogin;
///
/// # let client = Client::builder("https://api.example.com").build()?;
/// let token = DeviceLogin::new("https://auth.example.com/device/code", "https://auth.example.com/token")
///     .client_id("my-cli")
///     .scope("read write")
///     .run(|prompt| {
///         eprintln!("To log in, open {} and enter the code {}", prompt.verification_uri(), prompt.user_code());
///     })?;
/// client.login(token)?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
///
/// # Polling
///
/// The token endpoint is asked no sooner than the server's `interval` (5 s when it states none)
/// after its previous answer; `authorization_pending` goes on polling, `slow_down` adds 5 s to the
/// interval for good (RFC 8628 §3.5), and a failure to reach the server doubles it (up to a
/// minute) before polling on. Polling stops when the device code's `expires_in` has passed
/// ([`LoginErrorKind::ExpiredToken`]), when the user refuses ([`LoginErrorKind::AccessDenied`]),
/// at any other error, and at once when the login's [`Cancel`] is cancelled: the waits between
/// polls are on its condition, not sleeps.
#[derive(Clone)]
pub struct DeviceLogin {
    device_url: String,
    token_url: String,
    settings: ClientSettings,
    slow_down_step: Duration,
    clock: Clock,
}

impl DeviceLogin {
    /// A device login against the device authorization endpoint (RFC 8628 §3.1) and the token
    /// endpoint of one authorization server.
    pub fn new(device_authorization_url: impl Into<String>, token_url: impl Into<String>) -> Self {
        DeviceLogin {
            device_url: device_authorization_url.into(),
            token_url: token_url.into(),
            settings: ClientSettings::default(),
            slow_down_step: SLOW_DOWN_STEP,
            clock: Clock::default(),
        }
    }

    /// A device login against the endpoints of `metadata`, on the network settings it was read
    /// with.
    ///
    /// # Errors
    ///
    /// A [`LoginError`] of kind [`Discovery`](LoginErrorKind::Discovery) when the server has no
    /// device authorization endpoint.
    pub fn from_metadata(metadata: &Metadata) -> Result<Self, LoginError> {
        let device = metadata.device_authorization_endpoint().ok_or_else(|| {
            LoginError::new(
                LoginErrorKind::Discovery,
                "the authorization server has no device authorization endpoint",
            )
        })?;
        Ok(DeviceLogin::new(device, metadata.token_endpoint()).network(metadata.network().clone()))
    }

    /// Sets the client identifier (RFC 6749 §2.2). Required. Defaults to none.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.settings.client_id = Some(id.into());
        self
    }

    /// Sets the client secret, for a confidential client; it authenticates with HTTP Basic, as
    /// the [`OAuth2`] refresher does. Defaults to none (a public client, the usual case for a
    /// device login).
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

    /// Sets how the login reaches the authorization server (trusted certificates, proxies); see
    /// [`Network`]. Defaults to [`Network::new`], or to the metadata's network with
    /// [`from_metadata`](DeviceLogin::from_metadata).
    pub fn network(mut self, network: Network) -> Self {
        self.settings.network = Some(network);
        self
    }

    /// Allows plain `http` endpoints that are not on loopback. Defaults to `false`: the tokens
    /// would cross the network in the clear.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.settings.allow_http = allow;
        self
    }

    /// Sets the flag that cancels the login from another thread (see [`Cancel`]). Defaults to a
    /// flag nobody else holds.
    pub fn cancel(mut self, cancel: &Cancel) -> Self {
        self.settings.cancel = cancel.clone();
        self
    }

    /// Sets what each `slow_down` answer adds to the polling interval, **for tests against a
    /// loopback server only**: against any other server the step stays the 5 seconds RFC 8628
    /// §3.5 requires. (A loopback server's fractional `interval` is honoured too, down to 10 ms;
    /// any other server's is at least a second.) Defaults to 5 seconds.
    pub fn slow_down_step(mut self, step: Duration) -> Self {
        self.slow_down_step = step;
        self
    }

    /// Reads the time from `clock` (a manual clock in unit tests).
    #[cfg(test)]
    fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Runs the login: asks for a device code, calls `prompt` once with what the user must see,
    /// and polls the token endpoint until the user approves (see [Polling](DeviceLogin#polling)).
    /// `prompt` runs on this thread before the first poll; show the user code and the
    /// verification URI (and maybe a QR code of [`verification_uri_complete`](DevicePrompt::verification_uri_complete)).
    ///
    /// The token is returned, not installed: give it to [`Client::login`](crate::Client::login).
    ///
    /// # Errors
    ///
    /// A [`LoginError`]: [`AccessDenied`](LoginErrorKind::AccessDenied),
    /// [`ExpiredToken`](LoginErrorKind::ExpiredToken), [`Cancelled`](LoginErrorKind::Cancelled),
    /// [`Configuration`](LoginErrorKind::Configuration) (no client id, an insecure URL),
    /// [`Server`](LoginErrorKind::Server) (e.g. `invalid_client`), or a transport failure. When
    /// the server stayed unreachable until the code expired, the last transport failure.
    pub fn run(&self, prompt: impl FnOnce(&DevicePrompt)) -> Result<Token, LoginError> {
        let settings = &self.settings;
        let oauth = settings.oauth(&self.token_url)?;
        oauth
            .check_url(&self.device_url, "device authorization URL")
            .map_err(LoginError::configuration)?;
        settings.check_cancelled()?;
        let loopback = Origin::parse(&self.device_url, "device authorization URL")
            .is_ok_and(|(_, o)| o.is_loopback());
        let mut params = Vec::new();
        if let Some(scope) = &settings.scope {
            params.push(("scope", scope.as_str()));
        }
        let body = oauth
            .post_to(&self.device_url, &params, &[])
            .map_err(|e| LoginError::from_refresh(e, "the device authorization request"))?;
        let (device_code, prompt_data) = DevicePrompt::parse(&body, loopback)?;
        prompt(&prompt_data);
        let step = if loopback {
            self.slow_down_step
        } else {
            SLOW_DOWN_STEP
        };
        let timing = Timing {
            interval: prompt_data.interval,
            expires_in: prompt_data.expires_in,
            slow_down_step: step,
        };
        poll(&self.clock, &settings.cancel, timing, || {
            poll_once(&oauth, device_code.secret())
        })
    }
}

impl fmt::Debug for DeviceLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceLogin")
            .field("device_authorization_url", &self.device_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.settings.client_id)
            .field("client_secret", &self.settings.client_secret)
            .field("scope", &self.settings.scope)
            .finish_non_exhaustive()
    }
}

/// What the user must be shown to approve a device login (RFC 8628 §3.2): handed to the
/// `prompt` of [`DeviceLogin::run`].
#[derive(Clone, Debug)]
pub struct DevicePrompt {
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: Duration,
    interval: Duration,
}

impl DevicePrompt {
    /// The code the user enters at the verification URI (RFC 8628 §3.2 `user_code`).
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// Where the user goes to enter the code (RFC 8628 §3.2 `verification_uri`; also read from
    /// the `verification_url` some servers send instead).
    pub fn verification_uri(&self) -> &str {
        &self.verification_uri
    }

    /// The verification URI with the code already in it, for a link or a QR code, when the
    /// server sends one (RFC 8628 §3.3.1). Show the user code too: the user should check it.
    pub fn verification_uri_complete(&self) -> Option<&str> {
        self.verification_uri_complete.as_deref()
    }

    /// How long the code is valid (RFC 8628 §3.2 `expires_in`, at most a day).
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// How long the login waits between two polls of the token endpoint, at first (RFC 8628
    /// §3.2 `interval`; 5 s when the server states none).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Parses a device authorization response (RFC 8628 §3.2): the device code, kept secret, and
    /// the prompt.
    fn parse(body: &[u8], loopback: bool) -> Result<(ClientSecret, DevicePrompt), LoginError> {
        let invalid = |what: &str| {
            LoginError::new(
                LoginErrorKind::InvalidResponse,
                format!("the device authorization response {what}"),
            )
            .with_class(Class::Transient)
        };
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
            return Err(invalid("is not a JSON object"));
        };
        let text = |name: &str| match map.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let seconds = |name: &str| {
            match map.get(name) {
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| Duration::from_secs_f64(s.min(MAX_EXPIRES_IN.as_secs_f64())))
        };
        let device_code = text("device_code").ok_or_else(|| invalid("has no device_code"))?;
        let user_code = text("user_code").ok_or_else(|| invalid("has no user_code"))?;
        let verification_uri = text("verification_uri")
            .or_else(|| text("verification_url"))
            .ok_or_else(|| invalid("has no verification_uri"))?;
        let expires_in =
            seconds("expires_in").ok_or_else(|| invalid("has no usable expires_in"))?;
        let floor = if loopback {
            MIN_LOOPBACK_INTERVAL
        } else {
            MIN_INTERVAL
        };
        let interval = seconds("interval").unwrap_or(DEFAULT_INTERVAL).max(floor);
        Ok((
            ClientSecret::new(device_code),
            DevicePrompt {
                user_code,
                verification_uri,
                verification_uri_complete: text("verification_uri_complete"),
                expires_in,
                interval,
            },
        ))
    }
}

/// The answer to one poll of the token endpoint.
enum Poll {
    Token(Token),
    /// `authorization_pending`: the user has not approved yet.
    Pending,
    /// `slow_down`: poll less often, for good.
    SlowDown,
    /// A failure worth polling on after a longer pause (the server or the network).
    Transient(LoginError),
    /// A failure that ends the login.
    Failed(LoginError),
}

/// One token request of the device_code grant (RFC 8628 §3.4), its answer classified (§3.5).
fn poll_once(oauth: &OAuth2, device_code: &str) -> Poll {
    let params = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("device_code", device_code),
    ];
    match oauth.grant(&params, &[device_code]) {
        Ok(token) if token.authorization().is_none() => Poll::Failed(LoginError::new(
            LoginErrorKind::InvalidResponse,
            "the token response: the access token cannot be sent in an HTTP header",
        )),
        Ok(token) => Poll::Token(token),
        Err(e) => match e.oauth_error().map(|o| o.error()) {
            Some("authorization_pending") => Poll::Pending,
            Some("slow_down") => Poll::SlowDown,
            _ => {
                let e = LoginError::from_refresh(e, "the token request");
                if e.is_transient() {
                    Poll::Transient(e)
                } else {
                    Poll::Failed(e)
                }
            }
        },
    }
}

/// The pace of the polling.
#[derive(Clone, Copy, Debug)]
struct Timing {
    interval: Duration,
    expires_in: Duration,
    slow_down_step: Duration,
}

/// Polls with `poll` until it brings a token or a final failure, the device code expires, or
/// `cancel` is cancelled; see [`DeviceLogin`]'s Polling section. Time is read (and waited for) on
/// `clock`; each wait is on `cancel`'s condition.
fn poll(
    clock: &Clock,
    cancel: &Cancel,
    timing: Timing,
    mut poll: impl FnMut() -> Poll,
) -> Result<Token, LoginError> {
    let start = clock.now().mono;
    let expires = start + timing.expires_in;
    let mut interval = timing.interval;
    let mut last: Instant = start;
    let mut unreachable: Option<LoginError> = None;
    loop {
        let at = last + interval;
        if at >= expires {
            return Err(unreachable.unwrap_or_else(|| {
                LoginError::new(
                    LoginErrorKind::ExpiredToken,
                    "the device code expired before the user approved the login",
                )
            }));
        }
        if cancel.wait_until(clock, at) {
            return Err(cancelled());
        }
        let answer = poll();
        last = clock.now().mono;
        match answer {
            Poll::Token(token) => return Ok(token),
            Poll::Pending => unreachable = None,
            Poll::SlowDown => {
                unreachable = None;
                interval += timing.slow_down_step;
            }
            Poll::Transient(e) => {
                unreachable = Some(e);
                interval = (interval * 2).min(MAX_BACKOFF_INTERVAL.max(interval));
            }
            Poll::Failed(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// Runs the polling on a manual clock with `answers` (then `authorization_pending` forever),
    /// and returns the outcome and when each poll happened, counted from the start.
    fn run(
        timing: Timing,
        answers: Vec<Poll>,
        cancel: &Cancel,
    ) -> (Result<Token, LoginError>, Vec<Duration>) {
        let (clock, _manual) = Clock::manual();
        let start = clock.now().mono;
        let times = RefCell::new(Vec::new());
        let mut answers = answers.into_iter();
        let outcome = poll(&clock, cancel, timing, || {
            times.borrow_mut().push(clock.now().mono - start);
            answers.next().unwrap_or(Poll::Pending)
        });
        (outcome, times.into_inner())
    }

    fn timing(interval: u64, expires_in: u64) -> Timing {
        Timing {
            interval: SECOND * interval as u32,
            expires_in: SECOND * expires_in as u32,
            slow_down_step: SLOW_DOWN_STEP,
        }
    }

    fn secs(list: &[u64]) -> Vec<Duration> {
        list.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    #[test]
    fn polls_at_the_interval_until_the_token_comes() {
        let answers = vec![Poll::Pending, Poll::Pending, Poll::Token(Token::new("A"))];
        let (outcome, times) = run(timing(5, 600), answers, &Cancel::new());
        assert_eq!(outcome.unwrap().access_token().secret(), "A");
        assert_eq!(times, secs(&[5, 10, 15]));
    }

    #[test]
    fn slow_down_adds_five_seconds_for_good() {
        let answers = vec![
            Poll::Pending,
            Poll::SlowDown,
            Poll::Pending,
            Poll::SlowDown,
            Poll::Pending,
            Poll::Token(Token::new("A")),
        ];
        let (outcome, times) = run(timing(2, 600), answers, &Cancel::new());
        assert!(outcome.is_ok());
        // 2 s, 2 s, then 7 s after the first slow_down, then 12 s after the second.
        assert_eq!(times, secs(&[2, 4, 11, 18, 30, 42]));
    }

    #[test]
    fn polling_stops_when_the_code_expires() {
        let (outcome, times) = run(timing(5, 21), vec![], &Cancel::new());
        let e = outcome.unwrap_err();
        assert_eq!(e.kind(), LoginErrorKind::ExpiredToken);
        assert!(!e.is_transient());
        // No poll at or after the expiry.
        assert_eq!(times, secs(&[5, 10, 15, 20]));
    }

    #[test]
    fn final_answers_end_the_polling_at_once() {
        let denied = LoginError::new(LoginErrorKind::AccessDenied, "denied");
        let (outcome, times) = run(
            timing(5, 600),
            vec![Poll::Pending, Poll::Failed(denied)],
            &Cancel::new(),
        );
        assert_eq!(outcome.unwrap_err().kind(), LoginErrorKind::AccessDenied);
        assert_eq!(times.len(), 2);
    }

    #[test]
    fn an_unreachable_server_doubles_the_interval_and_is_reported_at_expiry() {
        let down = || {
            Poll::Transient(LoginError::new(
                LoginErrorKind::Transport,
                "could not reach",
            ))
        };
        let answers = vec![
            down(),
            down(),
            Poll::Pending,
            down(),
            down(),
            down(),
            down(),
        ];
        let (outcome, times) = run(timing(5, 200), answers, &Cancel::new());
        // 5, then 10 after the first failure, 20, 20 (pending keeps the interval), 40, 60 (capped).
        assert_eq!(times, secs(&[5, 15, 35, 55, 95, 155]));
        let e = outcome.unwrap_err();
        assert_eq!(
            e.kind(),
            LoginErrorKind::Transport,
            "the last failure, not ExpiredToken"
        );
        assert!(e.is_transient());
    }

    #[test]
    fn a_cancelled_login_does_not_poll() {
        let cancel = Cancel::new();
        cancel.cancel();
        let (outcome, times) = run(timing(5, 600), vec![], &cancel);
        assert_eq!(outcome.unwrap_err().kind(), LoginErrorKind::Cancelled);
        assert!(times.is_empty());
    }

    #[test]
    fn cancel_from_the_poll_stops_before_the_next_one() {
        let cancel = Cancel::new();
        let (clock, _manual) = Clock::manual();
        let mut polls = 0;
        let outcome = poll(&clock, &cancel, timing(5, 600), || {
            polls += 1;
            if polls == 3 {
                cancel.cancel();
            }
            Poll::Pending
        });
        assert_eq!(outcome.unwrap_err().kind(), LoginErrorKind::Cancelled);
        assert_eq!(polls, 3);
    }

    #[test]
    fn device_authorization_responses() {
        let (code, p) = DevicePrompt::parse(
            br#"{"device_code":"GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS","user_code":"WDJB-MJHT",
                "verification_uri":"https://example.com/device",
                "verification_uri_complete":"https://example.com/device?user_code=WDJB-MJHT",
                "expires_in":1800,"interval":5}"#,
            false,
        )
        .unwrap();
        assert_eq!(code.secret(), "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS");
        assert_eq!(p.user_code(), "WDJB-MJHT");
        assert_eq!(p.verification_uri(), "https://example.com/device");
        assert_eq!(
            p.verification_uri_complete(),
            Some("https://example.com/device?user_code=WDJB-MJHT")
        );
        assert_eq!(p.expires_in(), Duration::from_secs(1800));
        assert_eq!(p.interval(), Duration::from_secs(5));
        assert!(
            !format!("{p:?}").contains("GmRhmhcx"),
            "the device code stays secret"
        );

        // No interval: 5 s. `verification_url`, as some servers send it. A fractional interval
        // is honoured from loopback only (down to 10 ms); elsewhere it is at least a second.
        let body = br#"{"device_code":"d","user_code":"u","verification_url":"https://x/d","expires_in":"600"}"#;
        let (_, p) = DevicePrompt::parse(body, false).unwrap();
        assert_eq!(p.interval(), DEFAULT_INTERVAL);
        assert_eq!(p.verification_uri(), "https://x/d");
        let fast = br#"{"device_code":"d","user_code":"u","verification_uri":"http://127.0.0.1:1/d","expires_in":60,"interval":0.05}"#;
        assert_eq!(
            DevicePrompt::parse(fast, true).unwrap().1.interval(),
            Duration::from_millis(50)
        );
        assert_eq!(
            DevicePrompt::parse(fast, false).unwrap().1.interval(),
            MIN_INTERVAL
        );

        for (body, why) in [
            (&br#"[]"#[..], "not a JSON object"),
            (
                br#"{"user_code":"u","verification_uri":"v","expires_in":1}"#,
                "no device_code",
            ),
            (
                br#"{"device_code":"d","verification_uri":"v","expires_in":1}"#,
                "no user_code",
            ),
            (
                br#"{"device_code":"d","user_code":"u","expires_in":1}"#,
                "no verification_uri",
            ),
            (
                br#"{"device_code":"d","user_code":"u","verification_uri":"v"}"#,
                "expires_in",
            ),
            (
                br#"{"device_code":"d","user_code":"u","verification_uri":"v","expires_in":0}"#,
                "expires_in",
            ),
        ] {
            let e = DevicePrompt::parse(body, false).unwrap_err();
            assert_eq!(e.kind(), LoginErrorKind::InvalidResponse);
            assert!(e.to_string().contains(why), "{e}");
            assert!(!e.to_string().contains("\"d\""), "{e}");
        }
    }

    #[test]
    fn configuration_is_checked_before_any_request() {
        let e = DeviceLogin::new("https://a.example/device", "https://a.example/token")
            .run(|_| panic!("no prompt"))
            .unwrap_err();
        assert_eq!(e.kind(), LoginErrorKind::Configuration);
        assert!(e.to_string().contains("client id"), "{e}");
        let e = DeviceLogin::new("http://a.example/device", "https://a.example/token")
            .client_id("cli")
            .run(|_| panic!("no prompt"))
            .unwrap_err();
        assert_eq!(e.kind(), LoginErrorKind::Configuration);
        assert!(e.to_string().contains("plain http"), "{e}");
        let cancel = Cancel::new();
        cancel.cancel();
        let e = DeviceLogin::new("https://a.example/device", "https://a.example/token")
            .client_id("cli")
            .cancel(&cancel)
            .clock(Clock::default())
            .run(|_| panic!("no prompt"))
            .unwrap_err();
        assert_eq!(e.kind(), LoginErrorKind::Cancelled);
    }
}
