//! The C ABI called the way C calls it (raw pointers, `extern "C"` callbacks), against the real
//! loopback server: argument checking, error reporting, responses, the callbacks and their threads.

use std::ffi::{CStr, c_char, c_void};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use tokengate_ffi::*;
use tokengate_testserver::TestServer;

mod support;
use support::*;

/// A client of `server`'s API holding a token the server never issued (so the first request is
/// rejected), with no OAuth2 token URL: only a refresh callback can get a new token.
fn client_with_stale_token(server: &TestServer) -> *mut tokengate_client {
    client_with_stale_token_and_budget(server, 20_000)
}

/// As [`client_with_stale_token`], with a budget of `ms` for getting a token.
fn client_with_stale_token_and_budget(server: &TestServer, ms: u64) -> *mut tokengate_client {
    client_from_json(&format!(
        r#"{{"base_url":"{}/api","access_token":"stale","refresh_token":"rt-old","refresh_timeout_ms":{ms}}}"#,
        server.url()
    ))
}

#[test]
fn null_and_invalid_arguments_are_error_codes_not_crashes() {
    let sentinel = 0x10 as *mut tokengate_client;
    let mut out = sentinel;
    // SAFETY: every call is given NULL or valid pointers; checking NULL is the point.
    unsafe {
        assert_eq!(
            tokengate_client_new(ptr::null(), &mut out),
            tokengate_result::NullArgument
        );
        assert_eq!(out, sentinel, "out-param untouched on failure");
        let (code, msg) = last_error().expect("an error was recorded");
        assert_eq!(
            (code, msg.as_str()),
            (tokengate_result::NullArgument, "config must not be NULL")
        );
        assert!(last_error().is_none(), "taking the error clears it");

        let mut config: tokengate_config = std::mem::zeroed();
        assert_eq!(
            tokengate_client_new(&config, &mut out),
            tokengate_result::NullArgument
        );
        assert_eq!(last_error().unwrap().1, "base_url must not be NULL");

        let not_utf8 = [0xffu8, 0xfe, 0];
        config.base_url = not_utf8.as_ptr().cast::<c_char>();
        assert_eq!(
            tokengate_client_new(&config, &mut out),
            tokengate_result::InvalidArgument
        );
        assert_eq!(last_error().unwrap().1, "base_url is not valid UTF-8");

        let ftp = c("ftp://example.com");
        config.base_url = ftp.as_ptr();
        assert_eq!(
            tokengate_client_new(&config, &mut out),
            tokengate_result::InvalidUrl
        );
        assert_eq!(
            tokengate_client_new(&config, ptr::null_mut()),
            tokengate_result::NullArgument
        );
        assert_eq!(out, sentinel);

        let insecure = c("http://auth.example.com/token");
        let https = c("https://api.example.com");
        config.base_url = https.as_ptr();
        config.token_url = insecure.as_ptr();
        assert_eq!(
            tokengate_client_new(&config, &mut out),
            tokengate_result::Config
        );

        // Responses, errors and frees: NULL is handled everywhere.
        assert_eq!(tokengate_response_status(ptr::null()), 0);
        let (mut data, mut len) = (ptr::null(), 0);
        assert_eq!(
            tokengate_response_body(ptr::null(), &mut data, &mut len),
            tokengate_result::NullArgument
        );
        assert_eq!(
            tokengate_error_code(ptr::null()),
            tokengate_result::NullArgument
        );
        assert!(tokengate_error_message(ptr::null(), &mut len).is_null());
        assert!(!tokengate_error_is_transient(ptr::null()));
        tokengate_client_free(ptr::null_mut());
        tokengate_response_free(ptr::null_mut());
        tokengate_error_free(ptr::null_mut());
        let mut stats = tokengate_stats::default();
        assert_eq!(
            tokengate_client_stats(ptr::null(), &mut stats),
            tokengate_result::NullArgument
        );
        let version = CStr::from_ptr(tokengate_version()).to_str().unwrap();
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
    }
}

#[test]
fn bad_json_config_names_the_problem_but_never_echoes_values() {
    for (json, expect) in [
        (
            r#"{"base_url":"https://a.example","acess_token":"SECRET-1"}"#,
            "unknown field `acess_token`",
        ),
        (r#"{"access_token":"SECRET-1"}"#, "missing field `base_url`"),
        (
            r#"{"base_url":"https://a.example","expires_in_secs":"SECRET-1"}"#,
            "Data error at line 1",
        ),
        (
            r#"{"base_url":"https://a.example","access_token":"SECRET-1""#,
            "Eof error",
        ),
    ] {
        let json = c(json);
        let mut out = ptr::null_mut();
        // SAFETY: valid string and out-pointer.
        let code = unsafe { tokengate_client_new_from_json(json.as_ptr(), &mut out) };
        assert_eq!(code, tokengate_result::InvalidArgument);
        assert!(out.is_null());
        let msg = last_error().unwrap().1;
        assert!(msg.contains(expect), "{msg:?} should contain {expect:?}");
        assert!(!msg.contains("SECRET"), "a value leaked into {msg:?}");
    }
}

#[test]
fn requests_send_headers_and_body_and_responses_expose_status_headers_and_body() {
    let server = TestServer::start();
    let login = server.issue_token();
    let client = client_from_json(&format!(
        r#"{{"base_url":"{}/api","access_token":"{}","expires_in_secs":3600}}"#,
        server.url(),
        login.access_token
    ));
    let (name, value) = (c("X-Test"), c("yes"));
    let headers = [tokengate_header {
        name: name.as_ptr(),
        value: value.as_ptr(),
    }];
    let body = b"twelve bytes";
    // SAFETY: live client and response, valid pointers with their lengths.
    unsafe {
        let (code, response) = request(
            client,
            "POST",
            "/things",
            (headers.as_ptr(), headers.len()),
            (body.as_ptr(), body.len()),
        );
        assert_eq!(code, tokengate_result::Ok, "{:?}", last_error());
        assert_eq!(tokengate_response_status(response), 200);
        let (mut data, mut len) = (ptr::null(), 0);
        assert_eq!(
            tokengate_response_body(response, &mut data, &mut len),
            tokengate_result::Ok
        );
        let json: serde_json::Value =
            serde_json::from_slice(std::slice::from_raw_parts(data, len)).unwrap();
        assert_eq!(json["method"], "POST");
        assert_eq!(json["path"], "/api/things");
        assert_eq!(json["body_len"], 12);

        let ct = c("Content-Type");
        assert_eq!(
            tokengate_response_header(response, ct.as_ptr(), &mut data, &mut len),
            tokengate_result::Ok
        );
        assert_eq!(std::slice::from_raw_parts(data, len), b"application/json");
        let missing = c("X-Not-There");
        let before = (data, len);
        assert_eq!(
            tokengate_response_header(response, missing.as_ptr(), &mut data, &mut len),
            tokengate_result::NotFound
        );
        assert_eq!((data, len), before, "out-params untouched when not found");
        tokengate_response_free(response);

        // A bad method, a bad header, NULL headers or body with a length: codes, nothing sent.
        let bad_name = c("Bad Name");
        let bad_headers = [tokengate_header {
            name: bad_name.as_ptr(),
            value: value.as_ptr(),
        }];
        let no_body = (ptr::null(), 0);
        for (method, headers, body, expected) in [
            (
                "G E T",
                (ptr::null(), 0),
                no_body,
                tokengate_result::InvalidArgument,
            ),
            (
                "POST",
                (bad_headers.as_ptr(), 1),
                no_body,
                tokengate_result::InvalidHeader,
            ),
            (
                "POST",
                (ptr::null(), 0),
                (ptr::null(), 5),
                tokengate_result::NullArgument,
            ),
            (
                "POST",
                (ptr::null(), 2),
                no_body,
                tokengate_result::NullArgument,
            ),
        ] {
            let (code, _) = request(client, method, "/things", headers, body);
            assert_eq!(code, expected, "{method} {headers:?} {body:?}");
        }
        assert_eq!(server.counters().api_calls, 1);
        tokengate_client_free(client);
    }
}

/// What the refresh and login callbacks of one test record. Passed to C as `user_data`.
#[derive(Default)]
struct Recorder {
    server: Mutex<Option<Arc<TestServer>>>,
    /// What the refresh callback answers: a TOKENGATE_REFRESH_* value.
    answer: AtomicU64,
    refresh_calls: AtomicU64,
    refresh_threads: Mutex<Vec<ThreadId>>,
    /// (access token, refresh token) of the `current` token shown to the refresh callback.
    seen_current: Mutex<Vec<(String, Option<String>)>>,
    login_calls: AtomicU64,
    login_threads: Mutex<Vec<ThreadId>>,
    login_messages: Mutex<Vec<String>>,
    /// What registering a callback from inside the login callback returned.
    reentry: Mutex<Vec<tokengate_result>>,
    client: Mutex<Option<Shared>>,
}

unsafe extern "C" fn refresh_cb(
    user_data: *mut c_void,
    current: *const tokengate_token,
    out: *mut tokengate_refresh_out,
) -> u32 {
    // SAFETY: user_data is the test's Recorder, alive for the whole test.
    let r = unsafe { &*user_data.cast::<Recorder>() };
    r.refresh_calls.fetch_add(1, SeqCst);
    r.refresh_threads
        .lock()
        .unwrap()
        .push(thread::current().id());
    // SAFETY: `current` is valid for the call; its strings are NUL-terminated.
    unsafe {
        let cur = &*current;
        let access = CStr::from_ptr(cur.access_token)
            .to_str()
            .unwrap()
            .to_owned();
        let refresh = (!cur.refresh_token.is_null()).then(|| {
            CStr::from_ptr(cur.refresh_token)
                .to_str()
                .unwrap()
                .to_owned()
        });
        r.seen_current.lock().unwrap().push((access, refresh));
    }
    let answer = r.answer.load(SeqCst) as u32;
    if answer == TOKENGATE_REFRESH_OK {
        // Mint a real token on the server, as a non-OAuth2 login API would.
        let issued = r.server.lock().unwrap().as_ref().unwrap().issue_token();
        let (access, refresh) = (c(&issued.access_token), c(&issued.refresh_token));
        let token = tokengate_token {
            access_token: access.as_ptr(),
            expires_in_secs: issued.expires_in,
            refresh_token: refresh.as_ptr(),
            token_type: ptr::null(),
        };
        // SAFETY: `out` is valid for the call; the strings live until after the copy.
        let code = unsafe { tokengate_refresh_out_set_token(out, &token) };
        assert_eq!(code, tokengate_result::Ok);
        drop((access, refresh)); // tokengate copied them: freeing now is fine
    } else {
        let msg = c("custom API said no");
        // SAFETY: as above.
        unsafe { tokengate_refresh_out_set_message(out, msg.as_ptr()) };
    }
    answer
}

unsafe extern "C" fn login_cb(user_data: *mut c_void, error: *const tokengate_error) {
    // SAFETY: user_data is the test's Recorder, alive for the whole test.
    let r = unsafe { &*user_data.cast::<Recorder>() };
    r.login_calls.fetch_add(1, SeqCst);
    r.login_threads.lock().unwrap().push(thread::current().id());
    // SAFETY: `error` is valid for the call.
    let msg = unsafe { CStr::from_ptr(tokengate_error_message(error, ptr::null_mut())) };
    r.login_messages
        .lock()
        .unwrap()
        .push(msg.to_str().unwrap().to_owned());
    if let Some(client) = *r.client.lock().unwrap() {
        // SAFETY: the client outlives its callbacks.
        let code = unsafe {
            tokengate_client_set_login_required_callback(client.0, None, ptr::null_mut())
        };
        r.reentry.lock().unwrap().push(code);
    }
}

/// Registers both callbacks of `client` with `recorder` as user data.
fn register(client: *mut tokengate_client, recorder: &Arc<Recorder>) {
    let user_data = Arc::as_ptr(recorder).cast_mut().cast::<c_void>();
    *recorder.client.lock().unwrap() = Some(Shared(client));
    // SAFETY: live client; the recorder outlives the client in every test.
    unsafe {
        assert_eq!(
            tokengate_client_set_refresh_callback(client, Some(refresh_cb), user_data),
            tokengate_result::Ok
        );
        assert_eq!(
            tokengate_client_set_login_required_callback(client, Some(login_cb), user_data),
            tokengate_result::Ok
        );
    }
}

#[test]
fn refresh_callback_runs_once_for_many_threads_on_a_refresher_thread() {
    let server = Arc::new(TestServer::start());
    let client = client_with_stale_token(&server);
    let recorder = Arc::new(Recorder::default());
    *recorder.server.lock().unwrap() = Some(Arc::clone(&server));
    register(client, &recorder);

    let shared = Shared(client);
    let results = on_threads(move |_| {
        let shared = shared;
        (thread::current().id(), get(shared.0, "/x"))
    });
    assert!(results.iter().all(|(_, r)| *r == Ok(200)), "{results:?}");
    assert_eq!(
        recorder.refresh_calls.load(SeqCst),
        1,
        "one refresh for {THREADS} threads"
    );
    let refresher = recorder.refresh_threads.lock().unwrap()[0];
    assert!(
        results.iter().all(|(id, _)| *id != refresher),
        "the callback ran on a refresher thread, not on a request's"
    );
    assert_eq!(
        recorder.seen_current.lock().unwrap()[0],
        ("stale".to_owned(), Some("rt-old".to_owned())),
        "the callback saw the token it replaces"
    );
    let mut stats = tokengate_stats::default();
    // SAFETY: live client and out-pointer; freed once at the end.
    unsafe {
        assert_eq!(
            tokengate_client_stats(client, &mut stats),
            tokengate_result::Ok
        );
        tokengate_client_free(client);
    }
    assert_eq!(stats.refreshes, 1);
    assert_eq!(stats.refresh_failures, 0);
    assert_eq!(server.counters().api_ok, THREADS as u64);
    assert_eq!(recorder.login_calls.load(SeqCst), 0);
}

#[test]
fn permanent_refusal_calls_login_required_once_then_set_token_recovers() {
    let server = Arc::new(TestServer::start());
    let client = client_with_stale_token(&server);
    let recorder = Arc::new(Recorder::default());
    recorder
        .answer
        .store(TOKENGATE_REFRESH_PERMANENT.into(), SeqCst);
    register(client, &recorder);

    let shared = Shared(client);
    let results = on_threads(move |_| {
        let shared = shared;
        let result = get(shared.0, "/x");
        let message = last_error().map(|(_, m)| m);
        (thread::current().id(), result, message)
    });
    for (_, result, message) in &results {
        assert_eq!(*result, Err(tokengate_result::LoginRequired));
        let message = message.as_deref().unwrap_or_default();
        assert!(message.contains("custom API said no"), "{message}");
    }
    assert_eq!(recorder.refresh_calls.load(SeqCst), 1);
    // The callback runs on the refresher thread once the waiting requests are woken.
    tokengate_testserver::support::eventually("the login callback", || {
        recorder.login_calls.load(SeqCst) == 1
    });
    assert_eq!(recorder.login_calls.load(SeqCst), 1, "login callback once");
    let login_thread = recorder.login_threads.lock().unwrap()[0];
    assert_eq!(
        login_thread,
        recorder.refresh_threads.lock().unwrap()[0],
        "on the refreshing thread"
    );
    assert!(results.iter().all(|(id, ..)| *id != login_thread));
    assert!(recorder.login_messages.lock().unwrap()[0].starts_with("login required"));
    assert_eq!(
        *recorder.reentry.lock().unwrap(),
        [tokengate_result::InCallback],
        "registering from inside a callback is refused, not a deadlock"
    );

    // Fails fast without calling the callback again, until the user logs in again.
    assert_eq!(get(client, "/x"), Err(tokengate_result::LoginRequired));
    assert_eq!(recorder.refresh_calls.load(SeqCst), 1);
    let issued = server.issue_token();
    assert_eq!(
        set_token(client, &issued.access_token, None),
        tokengate_result::Ok
    );
    assert_eq!(get(client, "/x"), Ok(200));
    // SAFETY: freed once.
    unsafe { tokengate_client_free(client) };
}

#[test]
fn transient_failure_and_a_missing_token_are_reported_distinctly() {
    let server = Arc::new(TestServer::start());

    // A transient failure is retried within the budget (300 ms here), then reported.
    let client = client_with_stale_token_and_budget(&server, 300);
    let recorder = Arc::new(Recorder::default());
    recorder
        .answer
        .store(TOKENGATE_REFRESH_TRANSIENT.into(), SeqCst);
    register(client, &recorder);
    assert_eq!(get(client, "/x"), Err(tokengate_result::RefreshFailed));
    let e = tokengate_last_error();
    // SAFETY: `e` is a live error we own; freed once.
    unsafe {
        assert!(tokengate_error_is_transient(e));
        tokengate_error_free(e);
        tokengate_client_free(client);
    }
    assert_eq!(recorder.login_calls.load(SeqCst), 0);

    // OK without a token is a broken callback: permanent, and says so.
    let client = client_with_stale_token(&server);
    let recorder = Arc::new(Recorder::default());
    register(client, &recorder);
    // SAFETY: live client; a refresh callback that answers OK but sets no token.
    unsafe extern "C" fn ok_without_token(
        _: *mut c_void,
        _: *const tokengate_token,
        _: *mut tokengate_refresh_out,
    ) -> u32 {
        TOKENGATE_REFRESH_OK
    }
    // SAFETY: live client.
    unsafe {
        tokengate_client_set_refresh_callback(client, Some(ok_without_token), ptr::null_mut())
    };
    assert_eq!(get(client, "/x"), Err(tokengate_result::LoginRequired));
    assert!(last_error().unwrap().1.contains("without setting a token"));
    // SAFETY: freed once.
    unsafe { tokengate_client_free(client) };

    // No token URL and no refresh callback: the stale token's rejection means log in again.
    let client = client_with_stale_token(&server);
    assert_eq!(get(client, "/x"), Err(tokengate_result::LoginRequired));
    assert!(
        last_error()
            .unwrap()
            .1
            .contains("no refresh callback is registered")
    );
    // SAFETY: freed once.
    unsafe { tokengate_client_free(client) };
}

/// What `blocking_refresh_cb` reports and waits for.
struct Gatekeeper {
    entered: crossbeam_channel::Sender<ThreadId>,
    release: crossbeam_channel::Receiver<()>,
    calls: AtomicU64,
}

/// A refresh callback that says when it starts, then blocks until released, then fails
/// (transient) without a token.
unsafe extern "C" fn blocking_refresh_cb(
    user_data: *mut c_void,
    _: *const tokengate_token,
    _: *mut tokengate_refresh_out,
) -> u32 {
    // SAFETY: user_data is the test's Gatekeeper, alive until the client is freed (and checked
    // to be unused after that).
    let g = unsafe { &*user_data.cast::<Gatekeeper>() };
    g.calls.fetch_add(1, SeqCst);
    let _ = g.entered.send(thread::current().id());
    let _ = g.release.recv_timeout(PATIENCE);
    TOKENGATE_REFRESH_TRANSIENT
}

#[test]
fn free_waits_for_a_callback_running_on_a_refresh_ahead_thread() {
    let server = TestServer::start();
    let login = server.issue_token();
    // A 1 s token: its advisory window is the last 200 ms, the mandatory one (1 ms) is negligible,
    // so a request in the advisory window starts the refresh on a short-lived tokengate thread.
    let client = client_from_json(&format!(
        r#"{{"base_url":"{}/api","access_token":"{}","expires_in_secs":1,"refresh_before_expiry_ms":1,"refresh_timeout_ms":100}}"#,
        server.url(),
        login.access_token
    ));
    let (entered_tx, entered) = crossbeam_channel::bounded(1);
    let (release, release_rx) = crossbeam_channel::bounded(1);
    let gatekeeper = Box::new(Gatekeeper {
        entered: entered_tx,
        release: release_rx,
        calls: AtomicU64::new(0),
    });
    let user_data = ptr::from_ref(&*gatekeeper).cast_mut().cast::<c_void>();
    // SAFETY: live client; the gatekeeper outlives every call of the callback (checked below).
    unsafe { tokengate_client_set_refresh_callback(client, Some(blocking_refresh_cb), user_data) };

    // Request until one of them starts the refresh ahead (the results do not matter).
    let deadline = Instant::now() + PATIENCE;
    let refresher = loop {
        let _ = get(client, "/x");
        if let Ok(id) = entered.recv_timeout(Duration::from_millis(10)) {
            break id;
        }
        assert!(Instant::now() < deadline, "no refresh ahead started");
    };
    assert_ne!(
        refresher,
        thread::current().id(),
        "not on a requesting thread"
    );

    let shared = Shared(client);
    let (freed_tx, freed) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        let shared = shared;
        // SAFETY: no other call on this client is running; freed once.
        unsafe { tokengate_client_free(shared.0) };
        let _ = freed_tx.send(());
    });
    assert!(
        freed.recv_timeout(Duration::from_millis(300)).is_err(),
        "tokengate_client_free returned while the callback was still running"
    );
    release.send(()).unwrap();
    freed
        .recv_timeout(PATIENCE)
        .expect("tokengate_client_free did not return after the callback did");
    // The orphaned refresh-ahead thread never calls into C again.
    assert_eq!(gatekeeper.calls.load(SeqCst), 1);
    drop(gatekeeper);
}
