//! The token file (`tokengate_client_builder_set_token_file`) and background refresh
//! (`tokengate_client_builder_set_background_refresh`), called the way C calls them, against the
//! real loopback server: clients sharing one file refresh once between them (the other adopts),
//! a client starts from the saved token, a corrupt file is an error code (and is kept aside, not
//! overwritten), and the background thread refreshes without requests and stops when the client is
//! freed.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokengate_ffi::*;
use tokengate_testserver::support::{entries, temp_dir};
use tokengate_testserver::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Issued, TestServer};

mod support;
use support::*;

/// A builder for `server`'s API and token endpoint, keeping its token in `token_file`; no starting
/// token (the client starts from the file).
fn builder_with_file(server: &TestServer, token_file: &Path) -> *mut tokengate_client_builder {
    let b = builder(&format!("{}/api", server.url()));
    oauth2(b, TOKENGATE_GRANT_REFRESH_TOKEN, &server.token_url());
    set(b, tokengate_client_builder_set_client_id, DEMO_CLIENT_ID);
    set(
        b,
        tokengate_client_builder_set_client_secret,
        DEMO_CLIENT_SECRET,
    );
    set(
        b,
        tokengate_client_builder_set_token_file,
        token_file.to_str().expect("temp paths are UTF-8"),
    );
    set_u64(b, tokengate_client_builder_set_refresh_timeout_ms, 20_000);
    b
}

fn unix_ms(at: SystemTime) -> u64 {
    u64::try_from(at.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// Writes `login` to `file` in the documented token file format (version 1), as having expired a
/// second ago (the server still accepts its access token; the client must not send it).
fn save_expired(file: &Path, login: &Issued) {
    let doc = json!({
        "version": 1,
        "access_token": login.access_token,
        "token_type": "Bearer",
        "expires_at_unix_ms": unix_ms(SystemTime::now() - Duration::from_secs(1)),
        "lifetime_ms": 3_600_000,
        "refresh_token": login.refresh_token,
    });
    std::fs::write(file, doc.to_string()).unwrap();
}

fn saved(file: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

/// The body of `GET path` as JSON.
fn get_json(client: *const tokengate_client, path: &str) -> Value {
    let (status, body) = get_body(client, path).unwrap();
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

/// Frees `client` on another thread: it must return within PATIENCE. Returns how long it took.
fn free_bounded(client: *mut tokengate_client) -> Duration {
    let shared = Shared(client);
    let (tx, rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        let shared = shared;
        let started = Instant::now();
        free(shared.0);
        let _ = tx.send(started.elapsed());
    });
    rx.recv_timeout(PATIENCE)
        .expect("tokengate_client_free did not return")
}

#[test]
fn two_clients_sharing_a_token_file_refresh_an_expired_token_once() {
    // Token latency widens the window in which both clients find the token expired.
    let server = TestServer::builder()
        .token_latency(Duration::from_millis(100))
        .start();
    let dir = temp_dir("shared");
    let file = dir.path().join("token.json");
    let login = server.issue_token();
    save_expired(&file, &login);
    let clients = [
        build(builder_with_file(&server, &file)),
        build(builder_with_file(&server, &file)),
    ];

    let shared = clients.map(Shared);
    let results = on_threads(move |i| {
        let shared = shared;
        get(shared[i % 2].0, "/x")
    });
    assert!(results.iter().all(|r| *r == Ok(200)), "{results:?}");
    let counters = server.counters();
    assert_eq!(
        counters.refreshes, 1,
        "one refresh for two clients: {counters:?}"
    );
    assert_eq!(counters.reuse_detected, 0, "{counters:?}");
    assert_eq!(counters.invalid_grant, 0, "{counters:?}");
    assert_eq!(
        (counters.api_ok, counters.api_rejected),
        (THREADS as u64, 0),
        "the expired token was never sent"
    );
    let stats = clients.map(|c| stats(c));
    assert_eq!(
        stats.iter().map(|s| s.refreshes).sum::<u64>(),
        1,
        "one client refreshed: {stats:?}"
    );
    assert_eq!(
        stats.iter().map(|s| s.adopted).sum::<u64>(),
        1,
        "the other adopted its token: {stats:?}"
    );

    let on_disk = saved(&file);
    let access = on_disk["access_token"].as_str().unwrap();
    assert_ne!(access, login.access_token, "the new token was saved");
    assert!(server.is_access_token_valid(access));
    assert_ne!(on_disk["refresh_token"], login.refresh_token.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "only the owner can read the token file"
        );
    }
    for client in clients {
        free_bounded(client);
    }
}

#[test]
fn a_client_with_only_a_token_file_starts_from_the_saved_token_without_refreshing() {
    let server = TestServer::start();
    let dir = temp_dir("restart");
    let file = dir.path().join("token.json");
    save_expired(&file, &server.issue_token());
    let first = build(builder_with_file(&server, &file));
    assert_eq!(get(first, "/x"), Ok(200));
    free_bounded(first);
    assert_eq!(server.counters().refreshes, 1);
    let access = saved(&file)["access_token"].as_str().unwrap().to_owned();

    // Nothing but the API and the file.
    let b = builder(&format!("{}/api", server.url()));
    set(
        b,
        tokengate_client_builder_set_token_file,
        file.to_str().unwrap(),
    );
    let second = build(b);
    let echoed = get_json(second, "/echo-auth");
    assert_eq!(echoed["authorization"], format!("Bearer {access}"));
    assert_eq!(get(second, "/x"), Ok(200));
    let counters = server.counters();
    assert_eq!(
        (counters.token_requests, counters.refreshes),
        (1, 1),
        "the saved token was used as it was: {counters:?}"
    );
    free_bounded(second);

    // A missing file means no token yet: log in (set a token), which is saved.
    let fresh = dir.path().join("fresh/token.json");
    let client = build(builder_with_file(&server, &fresh));
    assert_eq!(get(client, "/x"), Err(TOKENGATE_RESULT_LOGIN_REQUIRED));
    let login = server.issue_token();
    ok(set_token(client, &login.access_token));
    assert_eq!(get(client, "/x"), Ok(200));
    assert_eq!(saved(&fresh)["access_token"], login.access_token.as_str());
    free_bounded(client);
}

#[test]
fn an_unusable_token_file_is_a_store_error_and_is_kept_aside_not_overwritten() {
    let server = TestServer::start();
    for (bytes, expect) in [
        (&b""[..], "the file is empty"),
        (&b"  \n"[..], "the file is empty"),
        (
            &br#"{"version":1,"access_token":"SECRET-cut"#[..],
            "cut short",
        ),
        (&b"SECRET-garbage"[..], "not valid JSON"),
        (&br#"["SECRET-array"]"#[..], "not a JSON object"),
        (
            &br#"{"version":99,"access_token":"SECRET-v99"}"#[..],
            "format version 99",
        ),
    ] {
        let dir = temp_dir("corrupt");
        let file = dir.path().join("token.json");
        std::fs::write(&file, bytes).unwrap();
        let b = builder_with_file(&server, &file);
        let sentinel = 0x10 as *mut tokengate_client;
        let mut out = sentinel;
        // SAFETY: a live builder and valid out-pointers.
        let failed =
            call(|e| unsafe { tokengate_client_builder_build(b, &mut out, e) }).unwrap_err();
        // SAFETY: freed once.
        unsafe { tokengate_client_builder_free(b) };
        assert_eq!(failed.code, TOKENGATE_RESULT_STORE, "{expect}");
        assert_eq!(out, sentinel, "out-param untouched on failure");
        assert!(!failed.transient, "a garbled file stays garbled: {expect}");
        let message = failed.message;
        assert!(message.contains(expect), "{message:?} lacks {expect:?}");
        assert!(message.contains("token.json"), "names the file: {message}");
        assert!(!message.contains("SECRET"), "contents leaked: {message}");
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "left untouched");

        // A client created with a token (a new login) can use the file: its first save keeps the
        // unusable one aside.
        let login = server.issue_token();
        let b = builder_with_file(&server, &file);
        start_with(b, token(&login.access_token, 3_600_000, None));
        let client = build(b);
        ok(set_token(client, &login.access_token));
        assert_eq!(get(client, "/x"), Ok(200));
        free_bounded(client);
        assert_eq!(saved(&file)["access_token"], login.access_token.as_str());
        let entries = entries(dir.path());
        let aside = entries
            .iter()
            .find(|name| name.starts_with("token.json.corrupt-"))
            .unwrap_or_else(|| panic!("not kept aside: {entries:?}"));
        assert_eq!(std::fs::read(dir.path().join(aside)).unwrap(), bytes);
    }

    // A directory where the token file should be is not a regular file: an operator must move
    // it, so the failure is not transient.
    let dir = temp_dir("unreadable");
    let failed = try_build(builder_with_file(&server, dir.path())).unwrap_err();
    assert_eq!(failed.code, TOKENGATE_RESULT_STORE);
    assert!(!failed.transient);

    // An empty path is a bad argument, not "no file".
    let b = builder(&format!("{}/api", server.url()));
    let empty = c("");
    // SAFETY: a live builder and string.
    let failed = call(|e| unsafe { tokengate_client_builder_set_token_file(b, empty.as_ptr(), e) })
        .unwrap_err();
    // SAFETY: freed once.
    unsafe { tokengate_client_builder_free(b) };
    assert_eq!(failed.code, TOKENGATE_RESULT_INVALID_ARGUMENT);
    assert_eq!(failed.message, "path is empty");
}

#[test]
fn background_refresh_refreshes_without_requests_and_stops_when_the_client_is_freed() {
    let lifetime = Duration::from_secs(1);
    let server = TestServer::builder().token_lifetime(lifetime).start();
    let dir = temp_dir("background");
    let _ = dir;
    let login = server.issue_token();
    // Memory only: the thread works without a token file too.
    let b = builder(&format!("{}/api", server.url()));
    oauth2(b, TOKENGATE_GRANT_REFRESH_TOKEN, &server.token_url());
    set(b, tokengate_client_builder_set_client_id, DEMO_CLIENT_ID);
    set(
        b,
        tokengate_client_builder_set_client_secret,
        DEMO_CLIENT_SECRET,
    );
    start_with(
        b,
        token(
            &login.access_token,
            login.expires_in * 1000,
            Some(&login.refresh_token),
        ),
    );
    // SAFETY: a live builder.
    ok(call(|e| unsafe {
        tokengate_client_builder_set_background_refresh(b, 1, e)
    }));
    let client = build(b);

    // Two expiries pass with no request at all; the thread refreshes ahead of each. (Polled on the
    // client: the server counts a refresh before the client has installed its token.)
    let deadline = Instant::now() + PATIENCE;
    let mut stats = tokengate_stats::default();
    while stats.refreshes < 2 {
        assert!(
            Instant::now() < deadline,
            "no background refresh: {stats:?}"
        );
        thread::sleep(Duration::from_millis(10));
        stats = support::stats(client);
    }
    assert_eq!((stats.waits, stats.refresh_failures), (0, 0), "{stats:?}");

    let took = free_bounded(client);
    let counters = server.counters();
    assert_eq!(counters.api_calls, 0, "{counters:?}");
    assert_eq!(
        (counters.invalid_grant, counters.reuse_detected),
        (0, 0),
        "{counters:?}"
    );
    assert!(took < Duration::from_secs(5), "free took {took:?}");

    // A thread that outlived the client would refresh again within a token lifetime.
    thread::sleep(lifetime + lifetime / 2);
    assert_eq!(
        server.counters().refreshes,
        counters.refreshes,
        "refreshed after the client was freed"
    );
}
