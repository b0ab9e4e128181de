//! Logging in and out against the test server's real endpoints: discovery, the device flow, the
//! browser flow (driven by a plain HTTP client following the redirect, which is all a browser does
//! here), revocation, and a JWT's expiry. Every assertion counts what the server saw.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tokengate::login::{BrowserLogin, Cancel, DeviceLogin, Metadata};
use tokengate::{
    Client, Event, FileStore, LoginErrorKind, Network, OAuth2, RefreshErrorKind, Token, TokenStore,
};
use tokengate_testserver::{DEMO_PUBLIC_CLIENT_ID, RedirectFault, TestServer};

use crate::support::*;

/// A device interval short enough for fast tests (a loopback server's fractions are honoured).
const INTERVAL: Duration = Duration::from_millis(50);

fn metadata(server: &TestServer) -> Metadata {
    Metadata::discover(&server.issuer(), &Network::new()).expect("the test server's metadata")
}

/// A device login of the public client against `server`, found by discovery.
fn device(server: &TestServer) -> DeviceLogin {
    DeviceLogin::from_metadata(&metadata(server))
        .unwrap()
        .client_id(DEMO_PUBLIC_CLIENT_ID)
}

/// A browser login of the public client against `server`, found by discovery.
fn browser(server: &TestServer) -> BrowserLogin {
    BrowserLogin::from_metadata(&metadata(server))
        .unwrap()
        .client_id(DEMO_PUBLIC_CLIENT_ID)
        .timeout(PATIENCE)
}

/// What the "browser" saw: the status and body of the page at the end of the redirects.
type Page = Result<(u16, String), String>;

/// Plays the browser: GETs the authorization URL on another thread and follows the redirect to
/// the loopback listener, as a browser would. The final page comes back on the receiver.
fn open_in_browser(url: &str) -> mpsc::Receiver<Page> {
    let (tx, rx) = mpsc::channel();
    let url = url.to_owned();
    thread::spawn(move || {
        let agent: tokengate::ureq::Agent = tokengate::ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(PATIENCE))
            .build()
            .into();
        let page = agent
            .get(&url)
            .call()
            .map_err(|e| e.to_string())
            .and_then(|mut r| {
                let status = r.status().as_u16();
                let body = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
                Ok((status, body))
            });
        let _ = tx.send(page);
    });
    rx
}

/// Runs `login` with the "browser" and returns its outcome and the page the browser ended on.
fn run_browser(login: &BrowserLogin) -> (Result<Token, tokengate::LoginError>, Page) {
    let mut page = None;
    let outcome = login.run(|url| page = Some(open_in_browser(url)));
    let page = page
        .expect("the URL was handed over")
        .recv_timeout(PATIENCE)
        .expect("the browser's request hung");
    (outcome, page)
}

/// A client of `server`'s API on `store`, refreshing and revoking at its endpoints.
fn client_on(server: &TestServer, store: FileStore) -> Client {
    Client::builder(format!("{}/api", server.url()))
        .store(store)
        .refresher(
            OAuth2::refresh_token(server.token_url())
                .client_id(DEMO_PUBLIC_CLIENT_ID)
                .revocation_url(server.revocation_url()),
        )
        .refresh_timeout(PATIENCE)
        .build()
        .unwrap()
}

/// The differences between consecutive poll times.
fn gaps(polls: &[Duration]) -> Vec<Duration> {
    polls.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn discovery_reads_rfc8414_first_then_openid_connect() {
    let server = TestServer::start();
    let meta = metadata(&server);
    assert_eq!(meta.issuer(), server.issuer());
    assert_eq!(meta.token_endpoint(), server.token_url());
    assert_eq!(
        meta.authorization_endpoint(),
        Some(server.authorization_url().as_str())
    );
    assert_eq!(
        meta.device_authorization_endpoint(),
        Some(server.device_authorization_url().as_str())
    );
    assert_eq!(
        meta.revocation_endpoint(),
        Some(server.revocation_url().as_str())
    );
    assert!(meta.authorization_response_iss_parameter_supported());
    assert_eq!(
        server.counters().metadata_requests,
        1,
        "RFC 8414's document was enough"
    );

    server.set_metadata_documents(false, true);
    assert_eq!(metadata(&server).token_endpoint(), server.token_url());
    assert_eq!(
        server.counters().metadata_requests,
        3,
        "404, then OpenID Connect's"
    );

    server.set_metadata_documents(false, false);
    let e = Metadata::discover(&server.issuer(), &Network::new()).unwrap_err();
    assert_eq!(e.kind(), LoginErrorKind::Discovery);
    assert_eq!(e.status(), Some(404));

    server.set_metadata_documents(true, true);
    server.set_metadata_issuer(Some("https://someone-else.example"));
    let e = Metadata::discover(&server.issuer(), &Network::new()).unwrap_err();
    assert_eq!(e.kind(), LoginErrorKind::Discovery);
    assert!(e.to_string().contains("someone-else"), "{e}");
    assert!(e.is_configuration());
}

#[test]
fn device_login_polls_at_the_interval_then_logs_the_client_in() {
    let server = TestServer::start();
    server.set_device_interval(INTERVAL);
    server.inject_device_pending(2);
    let dir = temp_dir("device");
    let client = client_on(&server, FileStore::new(dir.path().join("token.json")));
    let events = client.events();
    let mut user_code = String::new();
    let token = device(&server)
        .scope("read")
        .run(|prompt| {
            assert_eq!(prompt.interval(), INTERVAL);
            assert!(prompt.verification_uri().starts_with(&server.url()));
            assert!(
                prompt
                    .verification_uri_complete()
                    .is_some_and(|u| u.contains(prompt.user_code()))
            );
            user_code = prompt.user_code().to_owned();
            assert!(server.approve_device(prompt.user_code()));
        })
        .unwrap();
    assert_eq!(token.scope(), Some("read"));
    let c = server.counters();
    assert_eq!(c.device_authorizations, 1);
    assert_eq!(
        c.device_polls, 3,
        "two pending answers, then the token: {c:?}"
    );
    assert_eq!(c.device_grants, 1);
    assert_eq!(c.device_polls_too_fast, 0);
    let polls = server.device_polls(&user_code);
    assert!(
        polls[0] >= INTERVAL,
        "the first poll waited an interval: {polls:?}"
    );
    assert!(gaps(&polls).iter().all(|g| *g >= INTERVAL), "{polls:?}");

    client.login(token).unwrap();
    assert_eq!(get_status(&client, "/me"), 200);
    assert_eq!(server.counters().api_ok, 1);
    assert!(matches!(
        events.try_iter().next(),
        Some(Event::LoggedIn {
            expires_in: Some(_),
            ..
        })
    ));
    assert!(
        FileStore::new(dir.path().join("token.json"))
            .load()
            .unwrap()
            .is_some(),
        "saved for the next run"
    );

    // A confidential client authenticates its device requests with Basic.
    server.set_device_auto_approve(true);
    let token = DeviceLogin::new(server.device_authorization_url(), server.token_url())
        .client_id("demo-client")
        .client_secret("demo-secret")
        .run(|_| {})
        .unwrap();
    assert!(server.is_access_token_valid(token.access_token().secret()));
    let last = server.last_token_request().unwrap();
    assert_eq!(
        last.basic_auth,
        Some(("demo-client".into(), "demo-secret".into()))
    );
}

#[test]
fn slow_down_widens_the_polling_interval_for_good() {
    const STEP: Duration = Duration::from_millis(200);
    let server = TestServer::start();
    server.set_device_interval(INTERVAL);
    server.set_slow_down_step(STEP);
    server.inject_device_slow_down(1);
    server.inject_device_pending(1);
    server.set_device_auto_approve(true);
    let mut user_code = String::new();
    device(&server)
        .slow_down_step(STEP)
        .run(|p| user_code = p.user_code().to_owned())
        .unwrap();
    let c = server.counters();
    assert_eq!(c.device_polls, 3, "slow_down, pending, token: {c:?}");
    assert_eq!(c.device_polls_too_fast, 0, "{c:?}");
    let polls = server.device_polls(&user_code);
    for gap in gaps(&polls) {
        assert!(gap >= INTERVAL + STEP, "{polls:?}");
    }
}

#[test]
fn cancel_ends_device_polling_at_once() {
    let server = TestServer::start();
    // A long interval: a login that returns before it, returns because of the cancel.
    server.set_device_interval(Duration::from_secs(30));
    let cancel = Cancel::new();
    let (prompted, shown) = mpsc::channel();
    let (done, outcome) = mpsc::channel();
    let login = device(&server).cancel(&cancel);
    thread::spawn(move || {
        let result = login.run(|p| prompted.send(p.user_code().to_owned()).unwrap());
        done.send(result.map(|_| ())).unwrap();
    });
    let user_code = shown.recv_timeout(PATIENCE).expect("the prompt");
    let started = Instant::now();
    cancel.cancel();
    let e = outcome
        .recv_timeout(PATIENCE)
        .expect("the login ended")
        .unwrap_err();
    assert_eq!(e.kind(), LoginErrorKind::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "before the interval was over"
    );
    assert_eq!(server.counters().device_polls, 0);
    assert!(server.device_polls(&user_code).is_empty());
}

#[test]
fn denied_and_expired_device_logins_are_typed_and_change_nothing() {
    let server = TestServer::start();
    server.set_device_interval(INTERVAL);
    let dir = temp_dir("device-denied");
    let path = dir.path().join("token.json");
    let client = client_on(&server, FileStore::new(&path));
    client.login(login(&server)).unwrap();
    let before = std::fs::read(&path).unwrap();

    let e = device(&server)
        .run(|p| assert!(server.deny_device(p.user_code())))
        .unwrap_err();
    assert_eq!(e.kind(), LoginErrorKind::AccessDenied);
    assert_eq!(e.oauth_error().unwrap().error(), "access_denied");
    assert!(!e.is_transient() && !e.is_configuration());

    server.set_device_expires_in(Duration::from_millis(300));
    let e = device(&server).run(|_| {}).unwrap_err();
    assert_eq!(e.kind(), LoginErrorKind::ExpiredToken);
    let c = server.counters();
    assert!(c.device_polls >= 2 && c.device_grants == 0, "{c:?}");

    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the stored session is untouched"
    );
    assert_eq!(get_status(&client, "/me"), 200, "and still in use");
}

#[test]
fn browser_login_with_pkce_logs_the_client_in() {
    let server = TestServer::start();
    let dir = temp_dir("browser");
    let client = client_on(&server, FileStore::new(dir.path().join("token.json")));
    let (token, page) = run_browser(&browser(&server).scope("read write"));
    let token = token.unwrap();
    let (status, body) = page.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("close this tab"), "{body}");
    assert!(!body.contains(token.access_token().secret()));
    assert_eq!(token.scope(), Some("read write"));
    let c = server.counters();
    assert_eq!(
        (c.authorizations, c.code_exchanges, c.pkce_failures),
        (1, 1, 0),
        "{c:?}"
    );
    let exchange = server.last_token_request().unwrap();
    assert_eq!(exchange.grant_type, "authorization_code");
    assert!(
        exchange
            .param("redirect_uri")
            .is_some_and(|u| u.starts_with("http://127.0.0.1:") && u.ends_with("/callback"))
    );
    assert_eq!(exchange.param("code_verifier").map(str::len), Some(43));

    client.login(token).unwrap();
    assert_eq!(get_status(&client, "/me"), 200);
}

#[test]
fn a_wrong_pkce_verifier_is_refused() {
    let server = TestServer::start();
    let login = browser(&server);
    let mut page = None;
    // The "browser" is handed a URL whose challenge is not the one of this login's verifier.
    let e = login
        .run(|url| {
            let (head, tail) = url.split_once("code_challenge=").unwrap();
            let rest = tail.split_once('&').map_or("", |(_, r)| r);
            let forged =
                format!("{head}code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&{rest}");
            page = Some(open_in_browser(&forged));
        })
        .unwrap_err();
    assert_eq!(e.kind(), LoginErrorKind::Server);
    assert_eq!(e.oauth_error().unwrap().error(), "invalid_grant");
    let (status, body) = page.unwrap().recv_timeout(PATIENCE).unwrap().unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("invalid_grant"), "{body}");
    let c = server.counters();
    assert_eq!((c.pkce_failures, c.code_exchanges), (1, 0), "{c:?}");
}

#[test]
fn a_state_mismatch_is_refused_and_the_stored_session_is_untouched() {
    let server = TestServer::start();
    let dir = temp_dir("state");
    let path = dir.path().join("token.json");
    let client = client_on(&server, FileStore::new(&path));
    client.login(login(&server)).unwrap();
    let before = std::fs::read(&path).unwrap();
    let token_requests = server.counters().token_requests;

    server.set_redirect_fault(RedirectFault::WrongState);
    let (outcome, page) = run_browser(&browser(&server));
    assert_eq!(outcome.unwrap_err().kind(), LoginErrorKind::StateMismatch);
    let (status, body) = page.unwrap();
    assert_eq!(status, 400, "the browser is told it failed");
    assert!(
        body.contains("the answer does not belong to this login"),
        "in words: {body}"
    );
    assert_eq!(
        server.counters().token_requests,
        token_requests,
        "the code was never exchanged"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "nothing installed, nothing saved"
    );
    assert_eq!(get_status(&client, "/me"), 200, "the old session goes on");
}

#[test]
fn the_issuer_is_checked_when_the_server_advertises_it() {
    let server = TestServer::start();
    for fault in [RedirectFault::WrongIss, RedirectFault::NoIss] {
        server.set_redirect_fault(fault.clone());
        let (outcome, _) = run_browser(&browser(&server));
        assert_eq!(
            outcome.unwrap_err().kind(),
            LoginErrorKind::IssuerMismatch,
            "{fault:?}"
        );
    }
    assert_eq!(server.counters().code_exchanges, 0);
    // A server that does not advertise `iss` is not held to it.
    server.set_iss_parameter_supported(false);
    server.set_redirect_fault(RedirectFault::NoIss);
    let (outcome, _) = run_browser(&browser(&server));
    assert!(outcome.is_ok(), "{outcome:?}");
}

#[test]
fn error_redirects_are_typed() {
    let server = TestServer::start();
    server.set_redirect_fault(RedirectFault::Error("access_denied".into()));
    let (outcome, page) = run_browser(&browser(&server));
    assert_eq!(outcome.unwrap_err().kind(), LoginErrorKind::AccessDenied);
    assert!(page.unwrap().1.contains("access_denied"));
    server.set_redirect_fault(RedirectFault::Error("temporarily_unavailable".into()));
    let e = run_browser(&browser(&server)).0.unwrap_err();
    assert_eq!(e.kind(), LoginErrorKind::Server);
    assert_eq!(e.oauth_error().unwrap().error(), "temporarily_unavailable");
    assert_eq!(server.counters().code_exchanges, 0);
}

#[test]
fn logout_revokes_at_the_server_and_clears_the_store_for_every_client() {
    let server = TestServer::start();
    let dir = temp_dir("logout");
    let path = dir.path().join("token.json");
    let first = client_on(&server, FileStore::new(&path));
    let issued = server.issue_token();
    first
        .login(
            Token::new(issued.access_token.clone())
                .with_expires_in(Duration::from_secs(3600))
                .with_refresh_token(issued.refresh_token.clone()),
        )
        .unwrap();
    // Another process: the same file, its own store and client; it starts from the stored token.
    let second = client_on(&server, FileStore::new(&path));
    assert_eq!(get_status(&second, "/me"), 200);
    let events = first.events();

    first.logout().unwrap();
    let c = server.counters();
    assert_eq!((c.revocation_requests, c.revocations), (1, 1), "{c:?}");
    assert!(!server.is_refresh_token_valid(&issued.refresh_token));
    assert!(
        !server.is_access_token_valid(&issued.access_token),
        "the grant went with it"
    );
    assert!(!path.exists(), "the token file is gone");
    assert!(matches!(
        events.try_iter().next(),
        Some(Event::LoggedOut { .. })
    ));
    assert!(first.get("/me").call().unwrap_err().is_login_required());

    // The second client's token is rejected now; it finds the store emptied and stops there,
    // without presenting the revoked refresh token.
    let attempts = server.counters().refresh_attempts;
    let e = second.get("/me").call().unwrap_err();
    assert!(e.is_login_required(), "{e:?}");
    assert_eq!(
        e.refresh_error().unwrap().kind(),
        RefreshErrorKind::LoggedOut
    );
    assert_eq!(server.counters().refresh_attempts, attempts);

    // The revoked refresh token is refused by the token endpoint itself.
    let stale = Client::builder(format!("{}/api", server.url()))
        .token(expired_login_from(&issued.refresh_token))
        .refresher(OAuth2::refresh_token(server.token_url()).client_id(DEMO_PUBLIC_CLIENT_ID))
        .build()
        .unwrap();
    assert!(stale.get("/me").call().unwrap_err().is_login_required());
    assert_eq!(server.counters().invalid_grant, 1);
}

/// A token whose access token is expired, with `refresh_token`.
fn expired_login_from(refresh_token: &str) -> Token {
    Token::new("expired")
        .with_expires_at_wall(std::time::SystemTime::now() - Duration::from_secs(1))
        .with_refresh_token(refresh_token)
}

#[test]
fn a_failed_revocation_still_logs_out_here_and_says_so() {
    let server = TestServer::start();
    let dir = temp_dir("logout-down");
    let path = dir.path().join("token.json");
    let client = client_on(&server, FileStore::new(&path));
    let issued = server.issue_token();
    client
        .login(Token::new(issued.access_token).with_refresh_token(issued.refresh_token.clone()))
        .unwrap();
    server.set_revocation_unavailable(true);
    let e = client.logout().unwrap_err();
    assert!(matches!(e, tokengate::Error::Revocation(_)), "{e:?}");
    assert!(e.is_transient());
    assert!(!path.exists(), "cleared anyway: the user asked to leave");
    assert!(client.token().is_none());
    assert_eq!(server.counters().revocations, 0);
    assert!(
        server.is_refresh_token_valid(&issued.refresh_token),
        "the server kept it"
    );
}

#[test]
fn a_jwt_access_token_without_expires_in_expires_at_its_exp() {
    let server = TestServer::builder()
        .token_lifetime(Duration::from_secs(7200))
        .start();
    server.set_jwt_access_tokens(true);
    server.set_omit_expires_in(true);
    server.set_device_interval(INTERVAL);
    server.set_device_auto_approve(true);
    let token = device(&server).run(|_| {}).unwrap();
    assert_eq!(token.access_token().secret().split('.').count(), 3, "a JWT");
    let left = token.remaining().expect("an expiry from exp");
    assert!(
        left > Duration::from_secs(7100) && left <= Duration::from_secs(7200),
        "{left:?}"
    );

    // A refreshed token too.
    let dir = temp_dir("jwt");
    let client = client_on(&server, FileStore::new(dir.path().join("token.json")));
    client.login(token).unwrap();
    server.revoke_all();
    assert_eq!(get_status(&client, "/me"), 200);
    assert_eq!(server.counters().refreshes, 1);
    let left = client.token().unwrap().remaining().unwrap();
    assert!(left > Duration::from_secs(7100), "{left:?}");
}
