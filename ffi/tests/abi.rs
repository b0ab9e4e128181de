//! The C ABI called the way C calls it (raw pointers, `extern "C"` callbacks), against the real
//! loopback server: requests and responses, the refresh and login callbacks and their threads, and
//! the refresh callback's result values (0 is never success, and only PERMANENT logs out).

use std::ffi::{CStr, c_void};
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
/// rejected), with no OAuth2 grant: only a refresh callback can get a new token.
fn client_with_stale_token(server: &TestServer, budget_ms: u64) -> *mut tokengate_client {
    let b = builder(&format!("{}/api", server.url()));
    start_with(b, token("stale", 0, Some("rt-old")));
    set_u64(
        b,
        tokengate_client_builder_set_refresh_timeout_ms,
        budget_ms,
    );
    build(b)
}

#[test]
fn requests_send_headers_and_body_and_responses_expose_status_url_headers_and_body() {
    let server = TestServer::start();
    let login = server.issue_token();
    let b = builder(&format!("{}/api", server.url()));
    start_with(b, token(&login.access_token, 3_600_000, None));
    let client = build(b);
    let (name, value) = (c("X-Test"), c("yes"));
    let headers = [tokengate_header {
        name: name.as_ptr(),
        value: value.as_ptr(),
    }];
    let payload = b"twelve bytes";
    // SAFETY: live client and response, valid pointers with their lengths.
    unsafe {
        let (r, response) = request(
            client,
            "POST",
            "/things",
            (headers.as_ptr(), headers.len()),
            (payload.as_ptr(), payload.len()),
        );
        ok(r);
        assert_eq!(tokengate_response_status(response), 200);
        assert_eq!(
            text(tokengate_response_url(response)).unwrap(),
            format!("{}/api/things", server.url())
        );
        let json: serde_json::Value =
            serde_json::from_slice(&body(response, 4096).unwrap()).unwrap();
        assert_eq!(json["method"], "POST");
        assert_eq!(json["path"], "/api/things");
        assert_eq!(json["body_len"], 12);
        assert_eq!(
            body(response, 4096).unwrap().len(),
            json.to_string().len(),
            "same bytes again"
        );

        let mut value_out = ptr::null();
        let ct = c("Content-Type");
        ok(call(|e| {
            tokengate_response_header(response, ct.as_ptr(), &mut value_out, e)
        }));
        assert_eq!(text(value_out).unwrap(), "application/json");
        let n = tokengate_response_header_count(response);
        let mut names = Vec::new();
        for i in 0..n {
            let (mut hn, mut hv) = (ptr::null(), ptr::null());
            ok(call(|e| {
                tokengate_response_header_at(response, i, &mut hn, &mut hv, e)
            }));
            names.push((text(hn).unwrap(), text(hv).unwrap()));
        }
        assert!(names.contains(&("content-type".to_owned(), "application/json".to_owned())));
        tokengate_response_free(response);
    }
    assert_eq!(server.counters().api_ok, 1);
    free(client);
}

/// What the refresh and login callbacks of one test record. Passed to C as `user_data`.
#[derive(Default)]
struct Recorder {
    server: Mutex<Option<Arc<TestServer>>>,
    /// What the refresh callback answers.
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
) -> tokengate_refresh_status {
    // SAFETY: user_data is the test's Recorder, alive for the whole test.
    let r = unsafe { &*user_data.cast::<Recorder>() };
    r.refresh_calls.fetch_add(1, SeqCst);
    r.refresh_threads
        .lock()
        .unwrap()
        .push(thread::current().id());
    // SAFETY: `current` is valid for the call.
    unsafe {
        let access = text(tokengate_token_access_token(current)).unwrap();
        let refresh = text(tokengate_token_refresh_token(current));
        r.seen_current.lock().unwrap().push((access, refresh));
    }
    let answer = r.answer.load(SeqCst) as u32;
    if answer == TOKENGATE_REFRESH_OK {
        // Mint a real token on the server, as a non-OAuth2 login API would.
        let issued = r.server.lock().unwrap().as_ref().unwrap().issue_token();
        let t = token(
            &issued.access_token,
            issued.expires_in * 1000,
            Some(&issued.refresh_token),
        );
        // SAFETY: `out` is valid for the call; the token is copied, then freed.
        unsafe {
            ok(call(|e| tokengate_refresh_out_set_token(out, t, e)));
            tokengate_token_free(t);
        }
    } else {
        let msg = c("custom API said no");
        // SAFETY: as above.
        ok(call(|e| unsafe {
            tokengate_refresh_out_set_message(out, msg.as_ptr(), e)
        }));
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
        let mut e = ptr::null_mut();
        // SAFETY: the client outlives its callbacks.
        let code = unsafe {
            tokengate_client_set_login_required_callback(client.0, None, ptr::null_mut(), &mut e)
        };
        // SAFETY: the error we own, if any.
        unsafe { tokengate_error_free(e) };
        r.reentry.lock().unwrap().push(code);
    }
}

/// Registers both callbacks of `client` with `recorder` as user data.
fn register(client: *mut tokengate_client, recorder: &Arc<Recorder>) {
    let user_data = Arc::as_ptr(recorder).cast_mut().cast::<c_void>();
    *recorder.client.lock().unwrap() = Some(Shared(client));
    // SAFETY: live client; the recorder outlives the client in every test.
    unsafe {
        ok(call(|e| {
            tokengate_client_set_refresh_callback(client, Some(refresh_cb), user_data, e)
        }));
        ok(call(|e| {
            tokengate_client_set_login_required_callback(client, Some(login_cb), user_data, e)
        }));
    }
}

#[test]
fn refresh_callback_runs_once_for_many_threads_on_a_refresher_thread() {
    let server = Arc::new(TestServer::start());
    let client = client_with_stale_token(&server, 20_000);
    let recorder = Arc::new(Recorder::default());
    recorder.answer.store(TOKENGATE_REFRESH_OK.into(), SeqCst);
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
    let s = stats(client);
    free(client);
    assert_eq!((s.refreshes, s.refresh_failures), (1, 0));
    assert_eq!(server.counters().api_ok, THREADS as u64);
    assert_eq!(recorder.login_calls.load(SeqCst), 0);
}

#[test]
fn permanent_refusal_calls_login_required_once_then_set_token_recovers() {
    let server = Arc::new(TestServer::start());
    let client = client_with_stale_token(&server, 20_000);
    let recorder = Arc::new(Recorder::default());
    recorder
        .answer
        .store(TOKENGATE_REFRESH_PERMANENT.into(), SeqCst);
    register(client, &recorder);

    let shared = Shared(client);
    let results = on_threads(move |_| {
        let shared = shared;
        (thread::current().id(), get_body(shared.0, "/x"))
    });
    for (_, result) in &results {
        let failed = result.as_ref().unwrap_err();
        assert_eq!(failed.code, TOKENGATE_RESULT_LOGIN_REQUIRED);
        assert!(!failed.transient);
        assert!(failed.message.contains("custom API said no"), "{failed:?}");
    }
    assert_eq!(recorder.refresh_calls.load(SeqCst), 1);
    // The callback runs on the refresher thread once the waiting requests are woken.
    tokengate_testserver::support::eventually("the login callback", || {
        recorder.login_calls.load(SeqCst) == 1
    });
    let login_thread = recorder.login_threads.lock().unwrap()[0];
    assert_eq!(
        login_thread,
        recorder.refresh_threads.lock().unwrap()[0],
        "on the refreshing thread"
    );
    assert!(results.iter().all(|(id, _)| *id != login_thread));
    assert!(recorder.login_messages.lock().unwrap()[0].starts_with("login required"));
    assert_eq!(
        *recorder.reentry.lock().unwrap(),
        [TOKENGATE_RESULT_IN_CALLBACK],
        "registering from inside a callback is refused, not a deadlock"
    );

    // Fails fast without calling the callback again, until the user logs in again.
    assert_eq!(get(client, "/x"), Err(TOKENGATE_RESULT_LOGIN_REQUIRED));
    assert_eq!(recorder.refresh_calls.load(SeqCst), 1);
    let issued = server.issue_token();
    ok(set_token(client, &issued.access_token));
    assert_eq!(get(client, "/x"), Ok(200));
    free(client);
    assert_eq!(recorder.login_calls.load(SeqCst), 1, "login callback once");
}

/// A refresh callback that answers with the value in `user_data` (an integer, not a pointer) and
/// stores no token.
unsafe extern "C" fn answers(
    user_data: *mut c_void,
    _: *const tokengate_token,
    _: *mut tokengate_refresh_out,
) -> tokengate_refresh_status {
    user_data as usize as tokengate_refresh_status
}

#[test]
fn zero_unknown_values_and_ok_without_a_token_are_transient_never_a_logout() {
    let server = TestServer::start();
    for answer in [
        0,
        TOKENGATE_REFRESH_OK,
        TOKENGATE_REFRESH_TRANSIENT,
        7,
        u32::MAX,
    ] {
        // A budget of 300 ms: the failure is retried within it, then reported.
        let client = client_with_stale_token(&server, 300);
        let user_data = answer as usize as *mut c_void;
        // SAFETY: a live client; the callback ignores its pointers.
        ok(call(|e| unsafe {
            tokengate_client_set_refresh_callback(client, Some(answers), user_data, e)
        }));
        let failed = get_body(client, "/x").unwrap_err();
        assert_eq!(
            failed.code, TOKENGATE_RESULT_REFRESH_FAILED,
            "answer {answer}: {failed:?}"
        );
        assert!(failed.transient, "answer {answer}");
        let why = match answer {
            TOKENGATE_REFRESH_OK => "without setting a token",
            TOKENGATE_REFRESH_TRANSIENT => "failed (transient)",
            _ => "not a tokengate_refresh_status",
        };
        assert!(failed.message.contains(why), "{failed:?}");
        // Not logged out: the next request waits for the next attempt (and fails transiently).
        let again = get_body(client, "/x").unwrap_err();
        assert!(
            again.transient && again.code != TOKENGATE_RESULT_LOGIN_REQUIRED,
            "answer {answer}: {again:?}"
        );
        let s = stats(client);
        assert!(s.refresh_failures >= 2, "{s:?}");
        free(client);
    }

    // No grant and no refresh callback: the stale token's rejection means log in again.
    let client = client_with_stale_token(&server, 20_000);
    let failed = get_body(client, "/x").unwrap_err();
    assert_eq!(failed.code, TOKENGATE_RESULT_LOGIN_REQUIRED);
    assert!(failed.message.contains("no refresh callback is registered"));
    free(client);
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
) -> tokengate_refresh_status {
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
    let b = builder(&format!("{}/api", server.url()));
    start_with(b, token(&login.access_token, 1000, None));
    set_u64(b, tokengate_client_builder_set_refresh_before_expiry_ms, 1);
    set_u64(b, tokengate_client_builder_set_refresh_timeout_ms, 100);
    let client = build(b);
    let (entered_tx, entered) = crossbeam_channel::bounded(1);
    let (release, release_rx) = crossbeam_channel::bounded(1);
    let gatekeeper = Box::new(Gatekeeper {
        entered: entered_tx,
        release: release_rx,
        calls: AtomicU64::new(0),
    });
    let user_data = ptr::from_ref(&*gatekeeper).cast_mut().cast::<c_void>();
    // SAFETY: live client; the gatekeeper outlives every call of the callback (checked below).
    ok(call(|e| unsafe {
        tokengate_client_set_refresh_callback(client, Some(blocking_refresh_cb), user_data, e)
    }));

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
        free(shared.0);
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
    // The refresh-ahead thread never calls into C again.
    assert_eq!(gatekeeper.calls.load(SeqCst), 1);
    drop(gatekeeper);
}
