//! Every capability of the Rust client, reached through the C ABI and checked against what the
//! loopback servers saw: both grants and both client authentications, scope and token parameters,
//! a start from a refresh token alone, the events and the on-refresh hook, the token getter, the
//! stats, per-request and overall deadlines, TLS (a private CA, a client certificate, the choice of
//! roots), proxies, response headers by iteration, the final URL, and the streamed body.

use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokengate::TokenStore;
use tokengate_ffi::*;
use tokengate_testserver::support::{eventually, temp_dir};
use tokengate_testserver::{
    ClientCerts, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Failure, HttpProxy, RawReply, RawServer,
    TestPki, TestServer, TlsFront,
};

mod support;
use support::*;

fn now_unix_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A builder for `api` with the demo client's credentials at `token_url`.
fn oauth_builder(
    api: &str,
    grant: tokengate_grant,
    token_url: &str,
) -> *mut tokengate_client_builder {
    let b = builder(api);
    oauth2(b, grant, token_url);
    set(b, tokengate_client_builder_set_client_id, DEMO_CLIENT_ID);
    set(
        b,
        tokengate_client_builder_set_client_secret,
        DEMO_CLIENT_SECRET,
    );
    set_u64(b, tokengate_client_builder_set_refresh_timeout_ms, 20_000);
    b
}

fn client_auth(b: *mut tokengate_client_builder, auth: tokengate_client_auth) {
    // SAFETY: a live builder.
    ok(call(|e| unsafe {
        tokengate_client_builder_set_client_auth(b, auth, e)
    }));
}

/// An expired token with `refresh`, as one saved by an earlier run.
fn expired(access: &str, refresh: &str) -> *mut tokengate_token {
    let t = token(access, 0, Some(refresh));
    // SAFETY: a live token.
    ok(call(|e| unsafe {
        tokengate_token_set_expires_at_unix_ms(t, now_unix_ms() - 1000, e)
    }));
    t
}

#[test]
fn client_credentials_with_body_authentication_scope_and_token_parameters() {
    let server = TestServer::start();
    let b = oauth_builder(
        &format!("{}/api", server.url()),
        TOKENGATE_GRANT_CLIENT_CREDENTIALS,
        &server.token_url(),
    );
    client_auth(b, TOKENGATE_CLIENT_AUTH_BODY);
    set(b, tokengate_client_builder_set_scope, "read write");
    let (name, value) = (c("audience"), c("https://api.example"));
    // SAFETY: a live builder and strings.
    ok(call(|e| unsafe {
        tokengate_client_builder_add_token_param(b, name.as_ptr(), value.as_ptr(), e)
    }));
    let client = build(b);
    // No token at all: the first request gets one with the client's own credentials.
    assert_eq!(get(client, "/x"), Ok(200));
    let seen = server.counters();
    assert_eq!((seen.client_credentials, seen.api_ok), (1, 1), "{seen:?}");
    assert_eq!(seen.api_rejected, 0, "nothing was sent before the token");
    let req = server.last_token_request().unwrap();
    assert_eq!(req.grant_type, "client_credentials");
    assert_eq!(
        req.basic_auth, None,
        "body authentication sends no Basic header"
    );
    assert_eq!(req.param("client_id"), Some(DEMO_CLIENT_ID));
    assert_eq!(req.param("client_secret"), Some(DEMO_CLIENT_SECRET));
    assert_eq!(req.param("scope"), Some("read write"));
    assert_eq!(req.param("audience"), Some("https://api.example"));
    free(client);
}

#[test]
fn refresh_token_grant_with_basic_authentication_from_a_refresh_token_alone() {
    let server = TestServer::start();
    let login = server.issue_token();
    let b = oauth_builder(
        &format!("{}/api", server.url()),
        TOKENGATE_GRANT_REFRESH_TOKEN,
        &server.token_url(),
    );
    client_auth(b, TOKENGATE_CLIENT_AUTH_BASIC);
    set(
        b,
        tokengate_client_builder_set_refresh_token,
        &login.refresh_token,
    );
    let client = build(b);
    let shared = Shared(client);
    let results = on_threads(move |_| {
        let shared = shared;
        get(shared.0, "/x")
    });
    assert!(results.iter().all(|r| *r == Ok(200)), "{results:?}");
    let seen = server.counters();
    assert_eq!(
        seen.refreshes, 1,
        "one refresh for {THREADS} threads: {seen:?}"
    );
    assert_eq!(
        (seen.api_ok, seen.api_rejected, seen.api_without_auth),
        (THREADS as u64, 0, 0),
        "no request went out before the first token: {seen:?}"
    );
    let req = server.last_token_request().unwrap();
    assert_eq!(req.grant_type, "refresh_token");
    assert_eq!(
        req.param("refresh_token"),
        Some(login.refresh_token.as_str())
    );
    assert_eq!(
        req.basic_auth,
        Some((DEMO_CLIENT_ID.to_owned(), DEMO_CLIENT_SECRET.to_owned()))
    );
    assert_eq!(req.param("client_secret"), None);
    free(client);
}

#[test]
fn the_token_getter_copies_out_a_fresh_token_with_its_expiry() {
    let server = TestServer::start();
    let login = server.issue_token();
    let b = oauth_builder(
        &format!("{}/api", server.url()),
        TOKENGATE_GRANT_REFRESH_TOKEN,
        &server.token_url(),
    );
    set(
        b,
        tokengate_client_builder_set_refresh_token,
        &login.refresh_token,
    );
    let client = build(b);
    let mut t = ptr::null_mut();
    let before = now_unix_ms();
    // SAFETY: a live client and out-pointer; the token is freed once.
    unsafe {
        ok(call(|e| tokengate_client_token(client, &mut t, e)));
        let access = text(tokengate_token_access_token(t)).unwrap();
        assert!(
            server.is_access_token_valid(&access),
            "a token the API accepts"
        );
        assert_eq!(text(tokengate_token_type(t)).unwrap(), "Bearer");
        assert!(text(tokengate_token_refresh_token(t)).is_some());
        let (mut at, mut left) = (0, 0);
        ok(call(|e| tokengate_token_expiry(t, &mut at, &mut left, e)));
        let lifetime = login.expires_in * 1000;
        assert!(left <= lifetime && left > lifetime - 60_000, "{left}");
        assert!(
            at >= before + lifetime - 60_000 && at <= now_unix_ms() + lifetime,
            "{at}"
        );
        tokengate_token_free(t);
    }
    let seen = server.counters();
    assert_eq!((seen.refreshes, seen.api_calls), (1, 0), "{seen:?}");
    free(client);
}

/// An event as the test records it: (kind, generation, retry_in_ms, expires_in_ms, error code and
/// message).
type Recorded = (u32, u64, i64, i64, Option<(u32, String)>);

/// A send's result and, when it succeeded, the body read's.
type Sent = (Result<(), Failed>, Option<Result<Vec<u8>, Failed>>);

/// What the event and on-refresh callbacks saw.
#[derive(Default)]
struct Seen {
    events: Mutex<Vec<Recorded>>,
    /// (access, refresh, expires_at_unix_ms) of each refreshed token.
    refreshed: Mutex<Vec<(String, Option<String>, u64)>>,
    /// When set, the event callback blocks on it (to fill the queue).
    hold: Mutex<Option<crossbeam_channel::Receiver<()>>>,
}

unsafe extern "C" fn on_event(user_data: *mut c_void, event: *const tokengate_event) {
    // SAFETY: user_data is the test's Seen, alive until the client is freed.
    let seen = unsafe { &*user_data.cast::<Seen>() };
    let hold = seen.hold.lock().unwrap().clone();
    if let Some(rx) = hold {
        let _ = rx.recv_timeout(PATIENCE);
    }
    // SAFETY: `event` and its error are valid for the call.
    let e = unsafe { &*event };
    let error = (!e.error.is_null()).then(|| {
        // SAFETY: as above.
        unsafe {
            (
                tokengate_error_code(e.error),
                text(tokengate_error_message(e.error, ptr::null_mut())).unwrap(),
            )
        }
    });
    seen.events
        .lock()
        .unwrap()
        .push((e.kind, e.generation, e.retry_in_ms, e.expires_in_ms, error));
}

unsafe extern "C" fn on_refresh(user_data: *mut c_void, token: *const tokengate_token) {
    // SAFETY: user_data is the test's Seen; `token` is valid for the call.
    unsafe {
        let seen = &*user_data.cast::<Seen>();
        let mut at = 0;
        ok(call(|e| {
            tokengate_token_expiry(token, &mut at, ptr::null_mut(), e)
        }));
        seen.refreshed.lock().unwrap().push((
            text(tokengate_token_access_token(token)).unwrap(),
            text(tokengate_token_refresh_token(token)),
            at,
        ));
    }
}

/// The events recorded once there are at least `n` (they are delivered on the client's event
/// thread, after the call that caused them may have returned).
fn events_of(seen: &Seen, n: usize) -> Vec<Recorded> {
    events_until(seen, |events| events.len() >= n)
}

/// The events recorded once `done` holds for them.
fn events_until(seen: &Seen, done: impl Fn(&[Recorded]) -> bool) -> Vec<Recorded> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let events = seen.events.lock().unwrap().clone();
        if done(&events) {
            return events;
        }
        assert!(Instant::now() < deadline, "only {events:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn events_and_the_on_refresh_hook_report_refreshes_failures_and_logins_without_secrets() {
    let server = TestServer::start();
    let login = server.issue_token();
    let b = oauth_builder(
        &format!("{}/api", server.url()),
        TOKENGATE_GRANT_REFRESH_TOKEN,
        &server.token_url(),
    );
    start_with(b, expired(&login.access_token, &login.refresh_token));
    set_u64(b, tokengate_client_builder_set_refresh_timeout_ms, 300);
    // A backoff longer than the budget is cut to it: one attempt per request, and the retry time
    // the failure reports is the budget (the default backoff would be 125 to 250 ms).
    // SAFETY: a live builder.
    ok(call(|e| unsafe {
        tokengate_client_builder_set_refresh_backoff_ms(b, 1000, 1000, e)
    }));
    let client = build(b);
    let seen = Box::new(Seen::default());
    let user_data = ptr::from_ref(&*seen).cast_mut().cast::<c_void>();
    // SAFETY: a live client; `seen` outlives it.
    unsafe {
        ok(call(|e| {
            tokengate_client_set_event_callback(client, Some(on_event), user_data, e)
        }));
        ok(call(|e| {
            tokengate_client_set_on_refresh_callback(client, Some(on_refresh), user_data, e)
        }));
    }

    // 1. A refresh: generation 2 (the starting token was 1).
    assert_eq!(get(client, "/x"), Ok(200));
    let events = events_of(&seen, 1);
    let lifetime_ms = i64::try_from(login.expires_in * 1000).unwrap();
    assert_eq!(events[0].0, TOKENGATE_EVENT_REFRESHED);
    assert_eq!(events[0].1, 2);
    assert_eq!(
        (events[0].2, events[0].3, &events[0].4),
        (-1, lifetime_ms, &None)
    );
    let refreshed = seen.refreshed.lock().unwrap().clone();
    assert_eq!(refreshed.len(), 1);
    assert!(server.is_access_token_valid(&refreshed[0].0));
    let rotated = refreshed[0].1.clone().expect("the rotated refresh token");
    assert_ne!(rotated, login.refresh_token);
    assert!(
        refreshed[0].2 > now_unix_ms() + 3_500_000,
        "the wall-clock expiry"
    );

    // 2. A new login: TOKEN_SET, generation 3, an expired token so the next request refreshes.
    let t = expired("set-by-hand", &rotated);
    // SAFETY: a live client and token, freed once.
    unsafe {
        ok(call(|e| tokengate_client_set_token(client, t, e)));
        tokengate_token_free(t);
    }
    // 3. The token endpoint is down: a transient failure with a retry time.
    server.set_failure(Failure::Status500);
    let failed = get_body(client, "/x").unwrap_err();
    assert_eq!(failed.code, TOKENGATE_RESULT_REFRESH_FAILED);
    // 4. The refresh token is refused for good: login required.
    server.set_failure(Failure::InvalidGrant);
    eventually("logged out", || {
        get(client, "/x") == Err(TOKENGATE_RESULT_LOGIN_REQUIRED)
    });
    let events = seen.events.lock().unwrap().clone();
    let kinds: Vec<u32> = events.iter().map(|e| e.0).collect();
    assert_eq!(kinds[1], TOKENGATE_EVENT_TOKEN_SET, "{events:?}");
    assert_eq!(events[1].1, 3);
    let failure = events
        .iter()
        .find(|e| e.0 == TOKENGATE_EVENT_REFRESH_FAILED)
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(
        failure.2, 300,
        "the retry time, the backoff cut to the budget"
    );
    assert_eq!(
        failure.4.as_ref().unwrap().0,
        TOKENGATE_RESULT_REFRESH_FAILED
    );
    // The login-required event is delivered on the event thread, maybe after the call above
    // returned: wait for it rather than for a count of events.
    let events = events_until(&seen, |events| {
        events.iter().any(|e| e.0 == TOKENGATE_EVENT_LOGIN_REQUIRED)
    });
    let logout = events
        .iter()
        .find(|e| e.0 == TOKENGATE_EVENT_LOGIN_REQUIRED)
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(
        logout.4.as_ref().unwrap().0,
        TOKENGATE_RESULT_LOGIN_REQUIRED
    );
    for e in &events {
        let text = format!("{e:?}");
        for secret in [
            login.access_token.as_str(),
            &login.refresh_token,
            &rotated,
            DEMO_CLIENT_SECRET,
        ] {
            assert!(!text.contains(secret), "a secret in {text}");
        }
    }
    free(client);
    let after = seen.events.lock().unwrap().len();
    drop(seen);
    assert!(after >= 4);
}

#[test]
fn stats_count_replays_waits_and_dropped_events_and_respect_the_callers_size() {
    let server = TestServer::start();
    // A token the server never issued: rejected, refreshed, replayed.
    let login = server.issue_token();
    let b = oauth_builder(
        &format!("{}/api", server.url()),
        TOKENGATE_GRANT_REFRESH_TOKEN,
        &server.token_url(),
    );
    start_with(
        b,
        token("not-issued", 3_600_000, Some(&login.refresh_token)),
    );
    let client = build(b);
    assert_eq!(get(client, "/x"), Ok(200));
    let s = stats(client);
    assert_eq!(
        (s.refreshes, s.replays, s.refresh_failures),
        (1, 1, 0),
        "{s:?}"
    );
    assert_eq!((s.adopted, s.store_errors), (0, 0), "{s:?}");
    let seen = server.counters();
    assert_eq!((seen.api_rejected, seen.api_ok), (1, 1));

    // An event callback that holds the event thread: past 64 waiting events, new ones are dropped.
    let (release, hold) = crossbeam_channel::bounded::<()>(0);
    let events = Box::new(Seen::default());
    *events.hold.lock().unwrap() = Some(hold);
    let user_data = ptr::from_ref(&*events).cast_mut().cast::<c_void>();
    // SAFETY: a live client; `events` outlives it.
    ok(call(|e| unsafe {
        tokengate_client_set_event_callback(client, Some(on_event), user_data, e)
    }));
    for i in 0..80 {
        ok(set_token(client, &format!("login-{i}")));
    }
    let s = stats(client);
    assert!(s.events_dropped >= 80 - 64 - 1, "{s:?}");
    drop(release); // lets the event thread go

    // The caller's size: smaller than the first version is refused; larger is zero-filled.
    let mut bigger = [0xAAu8; size_of::<tokengate_stats>() + 16];
    // SAFETY: a live client; `bigger` has the size given.
    unsafe {
        ok(call(|e| {
            tokengate_client_stats(client, bigger.as_mut_ptr().cast(), bigger.len(), e)
        }));
        let failed = call(|e| {
            tokengate_client_stats(
                client,
                bigger.as_mut_ptr().cast(),
                TOKENGATE_STATS_MIN_SIZE - 8,
                e,
            )
        })
        .unwrap_err();
        assert_eq!(failed.code, TOKENGATE_RESULT_INVALID_ARGUMENT);
    }
    assert_eq!(&bigger[size_of::<tokengate_stats>()..], &[0u8; 16]);
    assert_eq!(
        u64::from_ne_bytes(bigger[..8].try_into().unwrap()),
        1,
        "refreshes"
    );
    free(client);
    drop(events);
}

/// A request with a deadline: the send result and, when it succeeded, the body read's.
fn send_with_deadline(client: *const tokengate_client, path: &str, timeout_ms: u64) -> Sent {
    let (method, path) = (c("GET"), c(path));
    let mut request = ptr::null_mut();
    let mut response = ptr::null_mut();
    // SAFETY: valid strings and out-pointers; request and response freed once.
    unsafe {
        ok(call(|e| {
            tokengate_request_new(method.as_ptr(), path.as_ptr(), &mut request, e)
        }));
        ok(call(|e| {
            tokengate_request_set_timeout_ms(request, timeout_ms, e)
        }));
        let sent = call(|e| tokengate_client_send(client, request, &mut response, e));
        tokengate_request_free(request);
        let body = sent.is_ok().then(|| body(response, 1 << 20));
        tokengate_response_free(response);
        (sent, body)
    }
}

#[test]
fn deadlines_bound_the_wait_for_a_token_and_the_body_and_the_overall_timeout_the_body() {
    // The wait for a token: a token endpoint that takes 2 s.
    let server = TestServer::builder()
        .token_latency(Duration::from_secs(2))
        .start();
    let login = server.issue_token();
    let b = oauth_builder(
        &format!("{}/api", server.url()),
        TOKENGATE_GRANT_REFRESH_TOKEN,
        &server.token_url(),
    );
    set(
        b,
        tokengate_client_builder_set_refresh_token,
        &login.refresh_token,
    );
    let client = build(b);
    let started = Instant::now();
    let (sent, _) = send_with_deadline(client, "/x", 300);
    let failed = sent.unwrap_err();
    assert_eq!(failed.code, TOKENGATE_RESULT_DEADLINE, "{failed:?}");
    assert!(failed.transient);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.counters().api_calls, 0);
    free(client);

    // The body: a server that sends its head at once and trickles 40 bytes over 2 s.
    let raw = RawServer::start(|_| {
        RawReply::json(200, &"x".repeat(40)).trickle(Duration::from_millis(50))
    });
    let api = builder(&raw.url());
    start_with(api, token("t", 3_600_000, None));
    let client = build(api);
    let (sent, body) = send_with_deadline(client, "/slow", 300);
    ok(sent);
    let failed = body.unwrap().unwrap_err();
    assert_eq!(failed.code, TOKENGATE_RESULT_DEADLINE, "{failed:?}");
    free(client);

    // The client's overall timeout bounds the body too (a transport failure: no deadline was set).
    let api = builder(&raw.url());
    start_with(api, token("t", 3_600_000, None));
    set_u64(api, tokengate_client_builder_set_timeout_ms, 300);
    let client = build(api);
    let started = Instant::now();
    let failed = get_body(client, "/slow").unwrap_err();
    assert_eq!(failed.code, TOKENGATE_RESULT_TRANSPORT, "{failed:?}");
    assert!(started.elapsed() < Duration::from_millis(1500));
    free(client);
    assert_eq!(raw.requests(), 2);
}

/// The test server behind an HTTPS front of a private CA, and the CA's certificate in a file.
struct Https {
    pki: TestPki,
    server: TestServer,
    front: TlsFront,
    dir: tokengate_testserver::TempDir,
}

fn https(client_certs: ClientCerts) -> Https {
    let pki = TestPki::new("tokengate C test CA");
    let server = TestServer::start();
    let front = TlsFront::start(&pki, server.addr(), client_certs);
    let dir = temp_dir("tls");
    std::fs::write(dir.path().join("ca.pem"), pki.ca_pem()).unwrap();
    Https {
        pki,
        server,
        front,
        dir,
    }
}

impl Https {
    /// A builder for the API and token endpoint over https, starting from an expired token.
    fn builder(&self) -> *mut tokengate_client_builder {
        let login = self.server.issue_token();
        let b = oauth_builder(
            &format!("{}/api", self.front.url()),
            TOKENGATE_GRANT_REFRESH_TOKEN,
            &format!("{}/oauth/token", self.front.url()),
        );
        start_with(b, expired(&login.access_token, &login.refresh_token));
        b
    }

    fn ca_file(&self) -> String {
        self.dir.path().join("ca.pem").to_str().unwrap().to_owned()
    }
}

fn roots(b: *mut tokengate_client_builder, roots: tokengate_roots) {
    // SAFETY: a live builder.
    ok(call(|e| unsafe {
        tokengate_client_builder_set_roots(b, roots, e)
    }));
}

#[test]
fn tls_trusts_an_added_ca_file_for_the_api_and_the_token_endpoint_and_roots_are_chosen() {
    let h = https(ClientCerts::Ignored);
    for choice in [
        TOKENGATE_ROOTS_PLATFORM,
        TOKENGATE_ROOTS_BUNDLED,
        TOKENGATE_ROOTS_ADDED_ONLY,
    ] {
        let b = h.builder();
        roots(b, choice);
        set(
            b,
            tokengate_client_builder_add_root_certificates_file,
            &h.ca_file(),
        );
        let client = build(b);
        assert_eq!(get(client, "/x"), Ok(200), "roots {choice}");
        free(client);
    }
    let seen = h.server.counters();
    assert_eq!(
        (seen.refreshes, seen.api_ok),
        (3, 3),
        "over https: {seen:?}"
    );

    // Without the CA, the built-in roots do not trust the server: a TLS failure, not transient,
    // and the refresh (the first thing the client does) is where it shows.
    for choice in [TOKENGATE_ROOTS_PLATFORM, TOKENGATE_ROOTS_BUNDLED] {
        let b = h.builder();
        roots(b, choice);
        let client = build(b);
        let failed = get_body(client, "/x").unwrap_err();
        assert_eq!(
            failed.code, TOKENGATE_RESULT_TLS,
            "roots {choice}: {failed:?}"
        );
        assert!(!failed.transient);
        free(client);
    }
    // Added-only roots with nothing added cannot work: said when the client is built.
    let b = h.builder();
    roots(b, TOKENGATE_ROOTS_ADDED_ONLY);
    assert_eq!(try_build(b).unwrap_err().code, TOKENGATE_RESULT_CONFIG);
    assert_eq!(h.server.counters().refreshes, 3);
}

#[test]
fn mutual_tls_presents_the_client_certificate_from_files() {
    let h = https(ClientCerts::Required);
    let me = h.pki.client("c-client");
    let (cert, key) = (h.dir.path().join("me.crt"), h.dir.path().join("me.key"));
    std::fs::write(&cert, &me.cert_pem).unwrap();
    std::fs::write(&key, &me.key_pem).unwrap();
    let with_cert = |b: *mut tokengate_client_builder| {
        let (cert, key) = (c(cert.to_str().unwrap()), c(key.to_str().unwrap()));
        // SAFETY: a live builder and strings.
        ok(call(|e| unsafe {
            tokengate_client_builder_set_client_certificate_files(b, cert.as_ptr(), key.as_ptr(), e)
        }));
    };
    let b = h.builder();
    set(
        b,
        tokengate_client_builder_add_root_certificates_file,
        &h.ca_file(),
    );
    with_cert(b);
    let client = build(b);
    assert_eq!(get(client, "/x"), Ok(200));
    free(client);
    assert_eq!(h.server.counters().refreshes, 1);

    let b = h.builder();
    set(
        b,
        tokengate_client_builder_add_root_certificates_file,
        &h.ca_file(),
    );
    let client = build(b);
    let failed = get_body(client, "/x").unwrap_err();
    assert_eq!(failed.code, TOKENGATE_RESULT_TLS, "{failed:?}");
    free(client);

    // A key file that is not a key: said when the client is built.
    let b = h.builder();
    let (c1, c2) = (c(cert.to_str().unwrap()), c(h.ca_file().as_str()));
    // SAFETY: a live builder and strings.
    ok(call(|e| unsafe {
        tokengate_client_builder_set_client_certificate_files(b, c1.as_ptr(), c2.as_ptr(), e)
    }));
    assert_eq!(try_build(b).unwrap_err().code, TOKENGATE_RESULT_CONFIG);
}

#[test]
fn proxies_carry_the_api_and_the_refresh_unless_no_proxy_or_disabled() {
    let server = TestServer::start();
    let proxy = HttpProxy::start();
    let login = server.issue_token();
    let client_via = |setup: &dyn Fn(*mut tokengate_client_builder)| {
        let b = oauth_builder(
            &format!("{}/api", server.url()),
            TOKENGATE_GRANT_REFRESH_TOKEN,
            &server.token_url(),
        );
        start_with(b, expired(&login.access_token, &login.refresh_token));
        setup(b);
        build(b)
    };
    // Through the proxy: the refresh and the request (plain http: forwarded requests).
    let client = client_via(&|b| set(b, tokengate_client_builder_set_proxy, &proxy.url()));
    assert_eq!(get(client, "/x"), Ok(200));
    free(client);
    // ureq tunnels plain http through the proxy with CONNECT too: one tunnel per agent.
    let carried = || proxy.tunnels() + proxy.plain_requests();
    assert_eq!(carried(), 2, "the token request and the API request");
    assert!(proxy.saw(&format!("CONNECT {}", server.addr())));

    // no_proxy lists the server: direct. Disabled: direct whatever the environment says.
    let client = client_via(&|b| {
        set(b, tokengate_client_builder_set_proxy, &proxy.url());
        set(b, tokengate_client_builder_set_no_proxy, "127.0.0.1");
    });
    let login2 = server.issue_token();
    ok(set_token(client, &login2.access_token));
    assert_eq!(get(client, "/x"), Ok(200));
    free(client);
    let client = client_via(&|b| {
        set(b, tokengate_client_builder_set_proxy, &proxy.url());
        // SAFETY: a live builder.
        ok(call(|e| unsafe {
            tokengate_client_builder_disable_proxies(b, e)
        }));
    });
    ok(set_token(client, &server.issue_token().access_token));
    assert_eq!(get(client, "/x"), Ok(200));
    free(client);
    assert_eq!(carried(), 2, "nothing more went through the proxy");

    // A proxy that refuses: a proxy failure. An unusable proxy URL: said when built.
    let client = client_via(&|b| {
        set(
            b,
            tokengate_client_builder_set_proxy,
            &tokengate_testserver::closed_port_url(),
        );
    });
    ok(set_token(client, &server.issue_token().access_token));
    let failed = get_body(client, "/x").unwrap_err();
    assert_eq!(failed.code, TOKENGATE_RESULT_PROXY, "{failed:?}");
    assert!(failed.transient);
    free(client);
    let b = builder(&format!("{}/api", server.url()));
    set(b, tokengate_client_builder_set_proxy, "ftp://proxy.example");
    assert_eq!(try_build(b).unwrap_err().code, TOKENGATE_RESULT_CONFIG);
}

#[test]
fn every_value_of_a_repeated_header_the_final_url_and_an_empty_body() {
    let raw = RawServer::start(|req| {
        if req.target == "/moved" {
            return RawReply::json(302, "").header("Location", "/cookies");
        }
        RawReply {
            status: 200,
            headers: vec![
                ("Set-Cookie".into(), "a=1".into()),
                ("X-Other".into(), "x".into()),
                ("Set-Cookie".into(), "b=2".into()),
            ],
            body: Vec::new(),
            trickle: None,
        }
    });
    let b = builder(&raw.url());
    start_with(b, token("t", 3_600_000, None));
    let client = build(b);
    const NONE: (*const tokengate_header, usize) = (ptr::null(), 0);
    // SAFETY: live client and response, freed once.
    unsafe {
        let (r, response) = request(client, "GET", "/moved", NONE, (ptr::null(), 0));
        ok(r);
        assert_eq!(tokengate_response_status(response), 200);
        assert_eq!(
            text(tokengate_response_url(response)).unwrap(),
            format!("{}/cookies", raw.url())
        );
        let mut cookies = Vec::new();
        for i in 0..tokengate_response_header_count(response) {
            let (mut n, mut v) = (ptr::null(), ptr::null());
            ok(call(|e| {
                tokengate_response_header_at(response, i, &mut n, &mut v, e)
            }));
            if text(n).unwrap() == "set-cookie" {
                cookies.push(text(v).unwrap());
            }
        }
        assert_eq!(cookies, ["a=1", "b=2"]);
        let (mut value, name) = (ptr::null(), c("SET-COOKIE"));
        ok(call(|e| {
            tokengate_response_header(response, name.as_ptr(), &mut value, e)
        }));
        assert_eq!(text(value).unwrap(), "a=1");
        assert_eq!(body(response, 10).unwrap(), b"", "empty: NULL and 0");
        tokengate_response_free(response);
    }
    assert_eq!(raw.requests(), 2, "the redirect was followed");
    free(client);
}

#[test]
fn the_body_streams_into_the_callers_buffer_or_is_read_whole_within_a_cap() {
    let server = TestServer::start();
    let login = server.issue_token();
    let b = builder(&format!("{}/api", server.url()));
    start_with(b, token(&login.access_token, 3_600_000, None));
    let client = build(b);
    const N: usize = 100_000;
    let path = format!("/big?bytes={N}");
    const NONE: (*const tokengate_header, usize) = (ptr::null(), 0);
    // SAFETY: live client and responses, each freed once; buffers with their sizes.
    unsafe {
        let (r, response) = request(client, "GET", &path, NONE, (ptr::null(), 0));
        ok(r);
        let mut buf = [0u8; 4096];
        let (mut total, mut reads) = (0, 0);
        loop {
            let mut n = 0;
            ok(call(|e| {
                tokengate_response_read(response, buf.as_mut_ptr(), buf.len(), &mut n, e)
            }));
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|&b| b == b'x'));
            total += n;
            reads += 1;
        }
        assert_eq!(total, N);
        assert!(reads >= N / buf.len(), "{reads} reads");
        // Streamed: the whole-body read is refused.
        let failed = body(response, N).unwrap_err();
        assert_eq!(failed.code, TOKENGATE_RESULT_INVALID_ARGUMENT);
        tokengate_response_free(response);

        // Read whole within the caller's cap, then streamed from the buffer.
        let (r, response) = request(client, "GET", &path, NONE, (ptr::null(), 0));
        ok(r);
        assert_eq!(body(response, N).unwrap().len(), N);
        let mut n = 0;
        ok(call(|e| {
            tokengate_response_read(response, buf.as_mut_ptr(), 10, &mut n, e)
        }));
        assert_eq!(n, 10);
        tokengate_response_free(response);

        // Over the cap: refused, and so is every later read.
        let (r, response) = request(client, "GET", &path, NONE, (ptr::null(), 0));
        ok(r);
        let failed = body(response, N - 1).unwrap_err();
        assert_eq!(failed.code, TOKENGATE_RESULT_BODY_TOO_LARGE);
        assert!(!failed.transient);
        let failed = call(|e| tokengate_response_read(response, buf.as_mut_ptr(), 10, &mut n, e))
            .unwrap_err();
        assert_eq!(failed.code, TOKENGATE_RESULT_BODY_TOO_LARGE);
        tokengate_response_free(response);
    }
    assert_eq!(server.counters().api_ok, 3);
    free(client);
}

#[test]
fn a_request_with_query_headers_and_body_is_sent_twice() {
    let server = TestServer::start();
    let login = server.issue_token();
    let b = builder(&format!("{}/api", server.url()));
    start_with(b, token(&login.access_token, 3_600_000, None));
    let client = build(b);
    let (method, path) = (c("PUT"), c("/items/1"));
    let (qn, qv, hn, hv) = (c("a b"), c("&"), c("X-Trace"), c("t-1"));
    let payload = b"0123456789";
    let mut request = ptr::null_mut();
    // SAFETY: valid strings, buffers and out-pointers; request freed once.
    unsafe {
        ok(call(|e| {
            tokengate_request_new(method.as_ptr(), path.as_ptr(), &mut request, e)
        }));
        ok(call(|e| {
            tokengate_request_add_query(request, qn.as_ptr(), qv.as_ptr(), e)
        }));
        ok(call(|e| {
            tokengate_request_add_header(request, hn.as_ptr(), hv.as_ptr(), e)
        }));
        ok(call(|e| {
            tokengate_request_set_body(request, payload.as_ptr(), payload.len(), e)
        }));
        for _ in 0..2 {
            let mut response = ptr::null_mut();
            ok(call(|e| {
                tokengate_client_send(client, request, &mut response, e)
            }));
            let json: serde_json::Value =
                serde_json::from_slice(&body(response, 4096).unwrap()).unwrap();
            assert_eq!(json["method"], "PUT");
            assert_eq!(json["path"], "/api/items/1?a+b=%26");
            assert_eq!(json["body_len"], 10);
            tokengate_response_free(response);
        }
        tokengate_request_free(request);
    }
    assert_eq!(server.counters().api_ok, 2);
    free(client);
}

/// A client on `server` that keeps its token in `file` and knows the revocation endpoint, logged
/// in with a fresh token; with an event recorder.
fn session_client(
    server: &TestServer,
    file: &std::path::Path,
    seen: &Seen,
) -> *mut tokengate_client {
    let b = oauth_builder(
        &format!("{}/api", server.url()),
        TOKENGATE_GRANT_REFRESH_TOKEN,
        &server.token_url(),
    );
    set(
        b,
        tokengate_client_builder_set_revocation_url,
        &server.revocation_url(),
    );
    set(
        b,
        tokengate_client_builder_set_token_file,
        file.to_str().unwrap(),
    );
    let client = build(b);
    let user_data = ptr::from_ref(seen).cast_mut().cast::<c_void>();
    // SAFETY: a live client; `seen` outlives it.
    ok(call(|e| unsafe {
        tokengate_client_set_event_callback(client, Some(on_event), user_data, e)
    }));
    login(client, &server.issue_token());
    client
}

/// Installs `issued` with `tokengate_client_login()`.
fn login(client: *const tokengate_client, issued: &tokengate_testserver::Issued) {
    let t = token(&issued.access_token, 3_600_000, Some(&issued.refresh_token));
    // SAFETY: a live client and token, freed once.
    unsafe {
        ok(call(|e| tokengate_client_login(client, t, e)));
        tokengate_token_free(t);
    }
}

fn logout(client: *const tokengate_client) -> Result<(), Failed> {
    // SAFETY: a live client.
    call(|e| unsafe { tokengate_client_logout(client, e) })
}

#[test]
fn logout_revokes_clears_the_token_file_and_a_login_brings_the_session_back() {
    let server = TestServer::start();
    let dir = temp_dir("ffi-logout");
    let file = dir.path().join("token.json");
    let seen = Box::new(Seen::default());
    let client = session_client(&server, &file, &seen);
    assert_eq!(get(client, "/x"), Ok(200));
    let saved = tokengate::FileStore::new(&file).load().unwrap().unwrap();
    let refresh = saved.refresh_token().unwrap().secret().to_owned();
    assert!(server.is_refresh_token_valid(&refresh));

    logout(client).unwrap();
    assert!(
        !server.is_refresh_token_valid(&refresh),
        "revoked at the server"
    );
    assert_eq!(server.counters().revocations, 1);
    assert!(!file.exists(), "the token file is gone, for every process");
    let calls = server.counters().api_calls;
    assert_eq!(get(client, "/x"), Err(TOKENGATE_RESULT_LOGIN_REQUIRED));
    assert_eq!(server.counters().api_calls, calls, "nothing was sent");

    let again = server.issue_token();
    login(client, &again);
    assert_eq!(get(client, "/x"), Ok(200));
    let saved = tokengate::FileStore::new(&file).load().unwrap().unwrap();
    assert_eq!(saved.access_token().secret(), again.access_token, "saved");
    let kinds: Vec<(u32, u64)> = events_of(&seen, 3).iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        kinds,
        [
            (TOKENGATE_EVENT_LOGGED_IN, 1),
            (TOKENGATE_EVENT_LOGGED_OUT, 2),
            (TOKENGATE_EVENT_LOGGED_IN, 3)
        ]
    );
    free(client);
}

#[test]
fn a_revocation_the_server_does_not_confirm_is_its_own_code_and_the_session_still_ends() {
    let server = TestServer::start();
    let dir = temp_dir("ffi-logout-503");
    let file = dir.path().join("token.json");
    let seen = Box::new(Seen::default());
    let client = session_client(&server, &file, &seen);
    server.set_revocation_unavailable(true);
    let failed = logout(client).unwrap_err();
    assert_eq!(failed.code, TOKENGATE_RESULT_REVOCATION, "{failed:?}");
    assert!(failed.transient, "{failed:?}");
    let c = server.counters();
    assert_eq!((c.revocation_requests, c.revocations), (1, 0));
    assert!(!file.exists(), "logged out here anyway");
    assert_eq!(get(client, "/x"), Err(TOKENGATE_RESULT_LOGIN_REQUIRED));
    assert_eq!(events_of(&seen, 2)[1].0, TOKENGATE_EVENT_LOGGED_OUT);
    free(client);

    // A revocation endpoint needs the token endpoint it belongs to.
    let b = builder(&server.url());
    set(
        b,
        tokengate_client_builder_set_revocation_url,
        &server.revocation_url(),
    );
    let failed = try_build(b).unwrap_err();
    assert_eq!(failed.code, TOKENGATE_RESULT_CONFIG, "{failed:?}");
    assert!(failed.message.contains("revocation URL"), "{failed:?}");
}

/// A new cancel flag, and a thread that sets it once `told` brings a message (what the login
/// showed), and returns that message. The flag must stay alive until the thread is joined.
fn cancel_when_told(
    told: crossbeam_channel::Receiver<String>,
) -> (*mut tokengate_cancel, std::thread::JoinHandle<String>) {
    /// The flag, handed to the cancelling thread (the header says any thread may cancel).
    struct CancelFlag(*const tokengate_cancel);
    // SAFETY: tokengate_cancel_cancel() is documented safe from any thread.
    unsafe impl Send for CancelFlag {}
    let mut cancel = ptr::null_mut();
    // SAFETY: a valid out-pointer.
    ok(call(|e| unsafe { tokengate_cancel_new(&mut cancel, e) }));
    let flag = CancelFlag(cancel);
    let canceller = std::thread::spawn(move || {
        let shown = told
            .recv_timeout(PATIENCE)
            .expect("the login showed something");
        let flag = flag;
        // SAFETY: the flag stays alive until this thread is joined.
        unsafe { tokengate_cancel_cancel(flag.0) };
        shown
    });
    (cancel, canceller)
}

/// One prompt: user code, verification URI, complete URI, expires_in_ms.
type Prompt = (String, String, Option<String>, i64);

/// What the device-login prompt saw, and what it does for the user.
struct DeviceUser<'a> {
    server: &'a TestServer,
    approve: bool,
    prompts: Mutex<Vec<Prompt>>,
    prompted: crossbeam_channel::Sender<String>,
}

unsafe extern "C" fn on_device_prompt(
    user_data: *mut c_void,
    user_code: *const c_char,
    uri: *const c_char,
    complete: *const c_char,
    expires_in_ms: i64,
) {
    // SAFETY: user_data is the test's DeviceUser, alive for the call; the strings are valid for
    // the call (`complete` may be NULL).
    let (user, code, uri, complete) = unsafe {
        (
            &*user_data.cast::<DeviceUser<'_>>(),
            text(user_code).unwrap(),
            text(uri).unwrap(),
            text(complete),
        )
    };
    user.prompts
        .lock()
        .unwrap()
        .push((code.clone(), uri, complete, expires_in_ms));
    if user.approve {
        assert!(user.server.approve_device(&code));
    }
    let _ = user.prompted.send(code);
}

fn device_login(server: &TestServer) -> *mut tokengate_device_login {
    let (d, t, id) = (
        c(&server.device_authorization_url()),
        c(&server.token_url()),
        c(tokengate_testserver::DEMO_PUBLIC_CLIENT_ID),
    );
    let mut login = ptr::null_mut();
    // SAFETY: live strings and a valid out-pointer.
    ok(call(|e| unsafe {
        tokengate_device_login_new(d.as_ptr(), t.as_ptr(), id.as_ptr(), &mut login, e)
    }));
    login
}

#[test]
fn a_device_login_from_c_shows_the_prompt_and_its_token_logs_the_client_in() {
    let server = TestServer::start();
    server.set_device_interval(Duration::from_millis(20));
    server.set_device_expires_in(Duration::from_secs(30));
    let login = device_login(&server);
    let (tx, _rx) = crossbeam_channel::unbounded();
    let user = DeviceUser {
        server: &server,
        approve: true,
        prompts: Mutex::default(),
        prompted: tx,
    };
    let mut token = ptr::null_mut();
    // SAFETY: a live login; `user` outlives the call.
    ok(call(|e| unsafe {
        tokengate_device_login_run(
            login,
            Some(on_device_prompt),
            ptr::from_ref(&user).cast_mut().cast(),
            ptr::null(),
            &mut token,
            e,
        )
    }));
    let prompts = user.prompts.lock().unwrap().clone();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    let (code, uri, complete, expires_in_ms) = &prompts[0];
    assert!(uri.starts_with(&server.url()), "{uri}");
    assert!(
        complete.as_ref().is_some_and(|c| c.contains(code.as_str())),
        "{complete:?}"
    );
    assert_eq!(*expires_in_ms, 30_000);
    assert_eq!(server.counters().device_grants, 1);

    let client = build(oauth_builder(
        &format!("{}/api", server.url()),
        TOKENGATE_GRANT_REFRESH_TOKEN,
        &server.token_url(),
    ));
    // SAFETY: a live client and token, each freed once.
    unsafe {
        ok(call(|e| tokengate_client_login(client, token, e)));
        tokengate_token_free(token);
        tokengate_device_login_free(login);
    }
    assert_eq!(get(client, "/x"), Ok(200));
    free(client);
}

#[test]
fn a_cancel_from_another_thread_stops_the_device_login_at_once() {
    let server = TestServer::start();
    server.set_device_interval(Duration::from_millis(20));
    server.set_device_expires_in(Duration::from_secs(30));
    let login = device_login(&server);
    let (tx, rx) = crossbeam_channel::unbounded();
    let user = DeviceUser {
        server: &server,
        approve: false,
        prompts: Mutex::default(),
        prompted: tx,
    };
    let (cancel, canceller) = cancel_when_told(rx);
    let started = Instant::now();
    let mut token = ptr::null_mut();
    // SAFETY: a live login and flag; `user` outlives the call.
    let failed = call(|e| unsafe {
        tokengate_device_login_run(
            login,
            Some(on_device_prompt),
            ptr::from_ref(&user).cast_mut().cast(),
            cancel,
            &mut token,
            e,
        )
    })
    .unwrap_err();
    let code = canceller.join().unwrap();
    assert_eq!(failed.code, TOKENGATE_RESULT_CANCELLED, "{failed:?}");
    assert!(
        started.elapsed() < PATIENCE,
        "stopped at once, not at the code's expiry"
    );
    assert!(token.is_null());
    let polls = server.device_polls(&code).len();
    std::thread::sleep(Duration::from_millis(100)); // five poll intervals
    assert_eq!(
        server.device_polls(&code).len(),
        polls,
        "no poll after the cancel"
    );
    // SAFETY: freed once, after the login returned.
    unsafe {
        tokengate_cancel_free(cancel);
        tokengate_device_login_free(login);
    }
}

fn browser_login(server: &TestServer) -> *mut tokengate_browser_login {
    let (a, t, id) = (
        c(&server.authorization_url()),
        c(&server.token_url()),
        c(tokengate_testserver::DEMO_PUBLIC_CLIENT_ID),
    );
    let mut login = ptr::null_mut();
    // SAFETY: live strings and a valid out-pointer.
    ok(call(|e| unsafe {
        tokengate_browser_login_new(a.as_ptr(), t.as_ptr(), id.as_ptr(), &mut login, e)
    }));
    login
}

#[test]
fn a_browser_login_from_c_exchanges_the_code_and_its_token_logs_the_client_in() {
    let server = TestServer::start();
    let login = browser_login(&server);
    let scope = c("read");
    let issuer = c(&server.issuer());
    // SAFETY: a live login and strings.
    unsafe {
        ok(call(|e| {
            tokengate_browser_login_set_scope(login, scope.as_ptr(), e)
        }));
        ok(call(|e| {
            tokengate_browser_login_expect_issuer(login, issuer.as_ptr(), e)
        }));
    }
    let (tx, rx) = crossbeam_channel::unbounded::<Page>();
    let mut token = ptr::null_mut();
    // SAFETY: a live login; `tx` outlives the call.
    ok(call(|e| unsafe {
        tokengate_browser_login_run(
            login,
            Some(browse),
            ptr::from_ref(&tx).cast_mut().cast(),
            ptr::null(),
            &mut token,
            e,
        )
    }));
    let (status, page) = rx.recv_timeout(PATIENCE).expect("the browser's page");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("close this tab"), "{page}");
    let c = server.counters();
    assert_eq!(
        (c.authorizations, c.code_exchanges, c.pkce_failures),
        (1, 1, 0)
    );

    let client = build(oauth_builder(
        &format!("{}/api", server.url()),
        TOKENGATE_GRANT_REFRESH_TOKEN,
        &server.token_url(),
    ));
    // SAFETY: a live client and token, each freed once.
    unsafe {
        ok(call(|e| tokengate_client_login(client, token, e)));
        tokengate_token_free(token);
        tokengate_browser_login_free(login);
    }
    assert_eq!(get(client, "/x"), Ok(200));
    free(client);
}

unsafe extern "C" fn url_to_channel(user_data: *mut c_void, url: *const c_char) {
    // SAFETY: user_data is the test's Sender<String>; `url` is a string for the call.
    unsafe {
        let tx = &*user_data.cast::<crossbeam_channel::Sender<String>>();
        let _ = tx.send(text(url).unwrap());
    }
}

#[test]
fn a_cancel_from_another_thread_stops_a_browser_login_waiting_for_the_browser() {
    let server = TestServer::start();
    let login = browser_login(&server);
    let (tx, rx) = crossbeam_channel::unbounded::<String>();
    let (cancel, canceller) = cancel_when_told(rx);
    let started = Instant::now();
    let mut token = ptr::null_mut();
    // SAFETY: a live login and flag; `tx` outlives the call.
    let failed = call(|e| unsafe {
        tokengate_browser_login_run(
            login,
            Some(url_to_channel),
            ptr::from_ref(&tx).cast_mut().cast(),
            cancel,
            &mut token,
            e,
        )
    })
    .unwrap_err();
    let url = canceller.join().unwrap();
    assert_eq!(failed.code, TOKENGATE_RESULT_CANCELLED, "{failed:?}");
    assert!(
        started.elapsed() < PATIENCE,
        "at once, not after the 5-minute timeout"
    );
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert_eq!(server.counters().code_exchanges, 0);
    // SAFETY: freed once, after the login returned.
    unsafe {
        tokengate_cancel_free(cancel);
        tokengate_browser_login_free(login);
    }
}

#[test]
fn discovery_from_c_finds_the_endpoints_and_makes_logins_that_work() {
    let server = TestServer::start();
    server.set_device_interval(Duration::from_millis(20));
    let issuer = c(&server.issuer());
    let mut metadata = ptr::null_mut();
    // SAFETY: a live string and a valid out-pointer.
    ok(call(|e| unsafe {
        tokengate_metadata_discover(issuer.as_ptr(), &mut metadata, e)
    }));
    // SAFETY: live metadata; the strings are read before it is freed.
    unsafe {
        assert_eq!(
            text(tokengate_metadata_issuer(metadata)),
            Some(server.issuer())
        );
        assert_eq!(
            text(tokengate_metadata_token_endpoint(metadata)),
            Some(server.token_url())
        );
        assert_eq!(
            text(tokengate_metadata_device_authorization_endpoint(metadata)),
            Some(server.device_authorization_url())
        );
        assert_eq!(
            text(tokengate_metadata_authorization_endpoint(metadata)),
            Some(server.authorization_url())
        );
        assert_eq!(
            text(tokengate_metadata_revocation_endpoint(metadata)),
            Some(server.revocation_url())
        );
        assert!(tokengate_metadata_issuer(ptr::null()).is_null());
    }
    let id = c(tokengate_testserver::DEMO_PUBLIC_CLIENT_ID);
    let (mut device, mut browser) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: live metadata and string, valid out-pointers.
    unsafe {
        ok(call(|e| {
            tokengate_device_login_from_metadata(metadata, id.as_ptr(), &mut device, e)
        }));
        ok(call(|e| {
            tokengate_browser_login_from_metadata(metadata, id.as_ptr(), &mut browser, e)
        }));
        tokengate_metadata_free(metadata);
    }
    let (tx, _rx) = crossbeam_channel::unbounded();
    let user = DeviceUser {
        server: &server,
        approve: true,
        prompts: Mutex::default(),
        prompted: tx,
    };
    let (pages, _) = crossbeam_channel::unbounded::<Page>();
    let (mut a, mut b) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: live logins (made before the metadata was freed); the user data outlive the calls.
    unsafe {
        ok(call(|e| {
            tokengate_device_login_run(
                device,
                Some(on_device_prompt),
                ptr::from_ref(&user).cast_mut().cast(),
                ptr::null(),
                &mut a,
                e,
            )
        }));
        ok(call(|e| {
            tokengate_browser_login_run(
                browser,
                Some(browse),
                ptr::from_ref(&pages).cast_mut().cast(),
                ptr::null(),
                &mut b,
                e,
            )
        }));
        for t in [a, b] {
            assert!(server.is_access_token_valid(&text(tokengate_token_access_token(t)).unwrap()));
            tokengate_token_free(t);
        }
        tokengate_device_login_free(device);
        tokengate_browser_login_free(browser);
    }
    let c = server.counters();
    assert_eq!((c.device_grants, c.code_exchanges), (1, 1));
}
