//! The token file (`token_file`) and background refresh (`background_refresh`) of
//! `tokengate_config`, called the way C calls them, against the real loopback server: clients
//! sharing one file refresh once between them, a client starts from the saved token, a corrupt file
//! is an error code (and is kept aside, not overwritten), and the background thread refreshes
//! without requests and stops when the client is freed.

use std::ffi::CString;
use std::path::Path;
use std::ptr;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokengate_ffi::*;
use tokengate_testserver::support::{entries, temp_dir};
use tokengate_testserver::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Issued, TestServer};

mod support;
use support::*;

/// The strings a `tokengate_config` points to, kept alive as long as the config is used.
struct Strings {
    base_url: CString,
    token_url: CString,
    client_id: CString,
    client_secret: CString,
    token_file: CString,
}

impl Strings {
    fn new(server: &TestServer, token_file: &Path) -> Strings {
        Strings {
            base_url: c(&format!("{}/api", server.url())),
            token_url: c(&server.token_url()),
            client_id: c(DEMO_CLIENT_ID),
            client_secret: c(DEMO_CLIENT_SECRET),
            token_file: c(token_file.to_str().expect("temp paths are UTF-8")),
        }
    }

    /// A config for `server`'s API and token endpoint, keeping its token in the token file; no
    /// access token (the client starts from the file).
    fn config(&self) -> tokengate_config {
        // SAFETY: all-zero is the documented "everything default" value of tokengate_config.
        let mut config: tokengate_config = unsafe { std::mem::zeroed() };
        config.base_url = self.base_url.as_ptr();
        config.token_url = self.token_url.as_ptr();
        config.client_id = self.client_id.as_ptr();
        config.client_secret = self.client_secret.as_ptr();
        config.token_file = self.token_file.as_ptr();
        config.refresh_timeout_ms = 20_000;
        config
    }
}

/// `tokengate_client_new`; panics with the last error when it fails.
fn new_client(config: &tokengate_config) -> *mut tokengate_client {
    let mut client = ptr::null_mut();
    // SAFETY: a config whose strings are alive, and a valid out-pointer.
    let code = unsafe { tokengate_client_new(config, &mut client) };
    assert_eq!(code, tokengate_result::Ok, "{:?}", last_error());
    client
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

/// The token file's contents as JSON.
fn saved(file: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

/// The body of `GET path` as JSON.
fn get_json(client: *const tokengate_client, path: &str) -> Value {
    let method = c("GET");
    let path = c(path);
    let mut response = ptr::null_mut();
    // SAFETY: live client, no headers, no body; the response is freed once.
    unsafe {
        let code = tokengate_client_request(
            client,
            method.as_ptr(),
            path.as_ptr(),
            ptr::null(),
            0,
            ptr::null(),
            0,
            &mut response,
        );
        assert_eq!(code, tokengate_result::Ok, "{:?}", last_error());
        let (mut data, mut len) = (ptr::null(), 0);
        assert_eq!(
            tokengate_response_body(response, &mut data, &mut len),
            tokengate_result::Ok
        );
        let body = serde_json::from_slice(std::slice::from_raw_parts(data, len)).unwrap();
        tokengate_response_free(response);
        body
    }
}

/// Frees `client` on another thread: it must return within PATIENCE. Returns how long it took.
fn free_bounded(client: *mut tokengate_client) -> Duration {
    let shared = Shared(client);
    let (tx, rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        let shared = shared;
        let started = Instant::now();
        // SAFETY: no other call on this client is running; freed once.
        unsafe { tokengate_client_free(shared.0) };
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
    let strings = Strings::new(&server, &file);
    let clients = [new_client(&strings.config()), new_client(&strings.config())];

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
    let mut stats = [tokengate_stats::default(); 2];
    for (client, stats) in clients.iter().zip(&mut stats) {
        // SAFETY: live client and out-pointer.
        let code = unsafe { tokengate_client_stats(*client, stats) };
        assert_eq!(code, tokengate_result::Ok);
    }
    assert_eq!(
        stats.iter().map(|s| s.refreshes).sum::<u64>(),
        1,
        "one client refreshed, the other adopted its token: {stats:?}"
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
    let strings = Strings::new(&server, &file);
    let first = new_client(&strings.config());
    assert_eq!(get(first, "/x"), Ok(200));
    free_bounded(first);
    assert_eq!(server.counters().refreshes, 1);
    let access = saved(&file)["access_token"].as_str().unwrap().to_owned();

    // The JSON twin, with nothing but the API and the file (and a token URL it does not need).
    let second = client_from_json(
        &json!({
            "base_url": format!("{}/api", server.url()),
            "token_url": server.token_url(),
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "token_file": file,
        })
        .to_string(),
    );
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
    let strings = Strings::new(&server, &fresh);
    let client = new_client(&strings.config());
    assert_eq!(get(client, "/x"), Err(tokengate_result::LoginRequired));
    let login = server.issue_token();
    let code = set_token(client, &login.access_token, Some(&login.refresh_token));
    assert_eq!(code, tokengate_result::Ok);
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
        let strings = Strings::new(&server, &file);
        let sentinel = 0x10 as *mut tokengate_client;
        let mut out = sentinel;
        // SAFETY: a config whose strings are alive, and a valid out-pointer.
        let code = unsafe { tokengate_client_new(&strings.config(), &mut out) };
        assert_eq!(code, tokengate_result::Store, "{expect}");
        assert_eq!(out, sentinel, "out-param untouched on failure");
        let e = tokengate_last_error();
        // SAFETY: a live error we own, freed once.
        let transient = unsafe {
            let transient = tokengate_error_is_transient(e);
            tokengate_error_free(e);
            transient
        };
        assert!(!transient, "a garbled file stays garbled: {expect}");
        // Same again for the message (taking the error cleared it).
        // SAFETY: as above.
        unsafe { tokengate_client_new(&strings.config(), &mut out) };
        let (_, message) = last_error().unwrap();
        assert!(message.contains(expect), "{message:?} lacks {expect:?}");
        assert!(message.contains("token.json"), "names the file: {message}");
        assert!(!message.contains("SECRET"), "contents leaked: {message}");
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "left untouched");

        // A client created with a token (a new login) can use the file: its first save keeps the
        // unusable one aside.
        let login = server.issue_token();
        let access = c(&login.access_token);
        let mut config = strings.config();
        config.access_token = access.as_ptr();
        config.expires_in_secs = 3600;
        let client = new_client(&config);
        let code = set_token(client, &login.access_token, None);
        assert_eq!(code, tokengate_result::Ok, "{:?}", last_error());
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
    let strings = Strings::new(&server, dir.path());
    let mut out = ptr::null_mut();
    // SAFETY: a config whose strings are alive, and a valid out-pointer.
    let code = unsafe { tokengate_client_new(&strings.config(), &mut out) };
    assert_eq!(code, tokengate_result::Store);
    let e = tokengate_last_error();
    // SAFETY: a live error we own, freed once.
    unsafe {
        assert!(!tokengate_error_is_transient(e));
        tokengate_error_free(e);
    }

    // An empty path is a bad argument, not "no file".
    let empty = c("");
    let mut config = strings.config();
    config.token_file = empty.as_ptr();
    // SAFETY: as above.
    let code = unsafe { tokengate_client_new(&config, &mut out) };
    assert_eq!(code, tokengate_result::InvalidArgument);
    assert_eq!(last_error().unwrap().1, "token_file is empty");
    assert!(out.is_null());
}

#[test]
fn background_refresh_refreshes_without_requests_and_stops_when_the_client_is_freed() {
    let lifetime = Duration::from_secs(1);
    let server = TestServer::builder().token_lifetime(lifetime).start();
    let dir = temp_dir("background");
    let strings = Strings::new(&server, &dir.path().join("token.json"));
    let login = server.issue_token();
    let (access, refresh) = (c(&login.access_token), c(&login.refresh_token));
    let mut config = strings.config();
    config.token_file = ptr::null(); // memory only: the thread works without a store too
    config.access_token = access.as_ptr();
    config.expires_in_secs = login.expires_in;
    config.refresh_token = refresh.as_ptr();
    config.background_refresh = 1;
    let client = new_client(&config);

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
        // SAFETY: live client and out-pointer.
        unsafe { tokengate_client_stats(client, &mut stats) };
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

#[test]
fn json_takes_the_new_fields_and_zero_means_default() {
    let server = TestServer::start();
    let dir = temp_dir("json");
    let login = server.issue_token();
    let client = client_from_json(
        &json!({
            "base_url": format!("{}/api", server.url()),
            "access_token": login.access_token,
            "expires_in_secs": 3600,
            "token_file": dir.path().join("token.json"),
            "refresh_ahead_ms": 0,
            "background_refresh": false,
        })
        .to_string(),
    );
    assert_eq!(get(client, "/x"), Ok(200));
    free_bounded(client);
    for bad in [r#""background_refresh":1"#, r#""refresh_ahead_ms":-1"#] {
        let json = c(&format!(r#"{{"base_url":"https://a.example",{bad}}}"#));
        let mut out = ptr::null_mut();
        // SAFETY: valid string and out-pointer.
        let code = unsafe { tokengate_client_new_from_json(json.as_ptr(), &mut out) };
        assert_eq!(code, tokengate_result::InvalidArgument, "{bad}");
        assert!(out.is_null());
    }
}
