//! Token persistence and cross-process single flight (issue 3): `FileStore` against the real server
//! with rotating, reuse-detecting refresh tokens, in this process and in child processes.
//!
//! Child processes are this test binary run again (see `children.rs`), filtered to
//! [`child_process_entry_point`], which also runs the children of the Redis and keyring tests.

use std::io::Write;
use std::path::Path;
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokengate::{Client, Error, FileStore, OAuth2, Refresh, StoreErrorKind, Token, TokenStore};
use tokengate_testserver::TestServer;

use crate::children::*;
use crate::support::*;

/// Processes and threads per process of the multi-process tests.
pub const PROCESSES: usize = 4;
pub const THREADS_PER_PROCESS: usize = 8;
const RUN_FOR: Duration = Duration::from_secs(3);
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(1);

fn client_on(server: &TestServer, store: FileStore) -> Result<Client, Error> {
    Client::builder(format!("{}/api", server.url()))
        .store(store)
        .refresher(oauth(server))
        .refresh_timeout(PATIENCE)
        .build()
}

fn file_spec(file: &Path) -> String {
    format!("file:{}", file.display())
}

/// Not a test: the body of the child processes the tests start (run with `--ignored`).
#[test]
#[ignore = "child process of the store tests"]
fn child_process_entry_point() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        panic!("{CHILD_MODE} not set: this runs only as a child of the store tests");
    };
    let spec = child_env(CHILD_STORE);
    let (kind, rest) = spec.split_once(':').expect("a store spec");
    match kind {
        "file" => run_child(&mode, FileStore::new(rest)),
        #[cfg(feature = "redis")]
        "redis" => run_child(&mode, crate::redis_store::store_from_spec(rest)),
        #[cfg(feature = "keyring")]
        "keyring" => crate::keyring_store::child(&mode, rest),
        other => panic!("unknown store kind {other}"),
    }
}

pub fn child_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

/// The refresh_token grant against the server at `url` (in a child: `CHILD_URL`).
fn oauth_at(url: &str) -> OAuth2 {
    OAuth2::refresh_token(format!("{url}/oauth/token"))
        .client_id("demo-client")
        .client_secret("demo-secret")
}

/// The modes every store's children share.
pub fn run_child<S: TokenStore + Clone>(mode: &str, store: S) {
    match mode {
        "worker" => worker(store),
        "saver" => saver(store),
        "hold-before-redeem" | "hold-after-redeem" => hold(store, mode == "hold-after-redeem"),
        "cli-return" | "cli-exit" => cli(store, mode == "cli-exit"),
        other => panic!("unknown {CHILD_MODE}={other}"),
    }
}

/// A command-line program's run: one client, one thread, a few requests (the saved token is in its
/// advisory window, so the first starts a refresh on a short-lived thread), then the end of the
/// program: a return from `main`, or `std::process::exit` after `Client::close`.
fn cli<S: TokenStore>(store: S, exit: bool) {
    let url = child_env(CHILD_URL);
    let client = Client::builder(format!("{url}/api"))
        .store(store)
        .refresher(oauth_at(&url))
        .build()
        .expect("child: cannot build the client");
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..3 {
        match client.get("/me").call() {
            Ok(r) if r.status() == 200 => ok += 1,
            Ok(r) => {
                eprintln!("child {}: HTTP {}", std::process::id(), r.status());
                failed += 1;
            }
            Err(e) => {
                eprintln!("child {}: {e}", std::process::id());
                failed += 1;
            }
        }
    }
    println!("RESULT ok={ok} failed={failed}");
    if exit {
        client.close();
        std::process::exit(0);
    }
    // Returning drops the client, which waits for the refresh in flight.
}

/// Calls the API from N threads until `until` (at least once each), sharing the store with the
/// other processes, and reports what it saw.
fn worker<S: TokenStore>(store: S) {
    let url = child_env(CHILD_URL);
    let threads: usize = child_env(CHILD_THREADS).parse().unwrap();
    let until = UNIX_EPOCH + Duration::from_millis(child_env(CHILD_UNTIL_MS).parse().unwrap());
    let client = Client::builder(format!("{url}/api"))
        .store(store)
        .refresher(oauth_at(&url))
        .refresh_timeout(PATIENCE)
        .build()
        .expect("child: cannot build the client");
    let c = client.clone();
    let counts = on_threads(threads, move |i| {
        // ok, failed; of the failures: 401 returned, store errors, login required
        let mut n = [0u64; 5];
        loop {
            let what = match c.get(&format!("/p{}/t{i}", std::process::id())).call() {
                Ok(r) if r.status() == 200 => None,
                Ok(r) => {
                    if r.status() == 401 {
                        n[2] += 1;
                    }
                    Some(format!("HTTP {}", r.status()))
                }
                Err(e) => {
                    if e.store_error().is_some() {
                        n[3] += 1;
                    }
                    if e.is_login_required() {
                        n[4] += 1;
                    }
                    Some(e.to_string())
                }
            };
            match what {
                None => n[0] += 1,
                Some(what) => {
                    if n[1] == 0 {
                        eprintln!("child {} thread {i}: {what}", std::process::id());
                    }
                    n[1] += 1;
                }
            }
            if SystemTime::now() >= until {
                return n;
            }
            if n[4] > 0 {
                // Logged out: nothing more to learn from this thread.
                return n;
            }
        }
    });
    let sum = |k: usize| counts.iter().map(|n| n[k]).sum::<u64>();
    let s = client.stats();
    println!(
        "RESULT ok={} failed={} rejected={} store_failed={} login_required={} refreshes={} adopted={} store_errors={}",
        sum(0),
        sum(1),
        sum(2),
        sum(3),
        sum(4),
        s.refreshes,
        s.adopted,
        s.store_errors
    );
}

/// Saves two alternating tokens as fast as it can until killed (or `until`).
fn saver<S: TokenStore>(store: S) {
    let until = UNIX_EPOCH + Duration::from_millis(child_env(CHILD_UNTIL_MS).parse().unwrap());
    let tokens = [
        Token::new("A".repeat(2000)).with_refresh_token("ra"),
        Token::new("B".repeat(3000)).with_refresh_token("rb"),
    ];
    for i in 0..1_000_000usize {
        store.save(&tokens[i % 2]).expect("child: save failed");
        if SystemTime::now() >= until {
            break;
        }
    }
    println!("RESULT saved=1");
}

/// Refreshes the stored (expired) token inside the store's exclusive section, and stops there
/// until killed: before calling the token endpoint, or after it answered (the rotated refresh
/// token then exists only in this process). Prints `HOLDING` when it is there.
fn hold<S: TokenStore>(store: S, redeem_first: bool) {
    let url = child_env(CHILD_URL);
    let oauth = oauth_at(&url);
    let refresher = move |current: &Token| {
        let redeemed = if redeem_first {
            Some(oauth.refresh(Some(current))?)
        } else {
            None
        };
        println!("HOLDING");
        std::io::stdout().flush().unwrap();
        thread::sleep(PATIENCE);
        panic!("child: not killed while holding ({})", redeemed.is_some());
    };
    let client = Client::builder(format!("{url}/api"))
        .store(store)
        .refresher(refresher)
        .refresh_timeout(PATIENCE)
        .build()
        .expect("child: cannot build the client");
    let _ = client.get("/me").call();
}

/// Starts this test binary as a worker child sharing `file`.
fn spawn_child(mode: &str, url: &str, file: &Path, threads: usize, until: SystemTime) -> Child {
    ChildSpec::new(mode, &file_spec(file))
        .url(url)
        .workers(threads, until)
        .spawn()
}

#[test]
fn four_processes_share_one_token_file_with_one_refresh_per_expiry() {
    let server = TestServer::builder().token_lifetime(TOKEN_LIFETIME).start();
    let dir = temp_dir("multiprocess");
    let file = dir.path().join("token.json");
    FileStore::new(&file).save(&login(&server)).unwrap();
    let started = Instant::now();
    let until = SystemTime::now() + RUN_FOR;
    let children: Vec<Child> = (0..PROCESSES)
        .map(|_| spawn_child("worker", &server.url(), &file, THREADS_PER_PROCESS, until))
        .collect();
    let deadline = Instant::now() + RUN_FOR + PATIENCE;
    let results: Vec<ChildResult> = children.into_iter().map(|c| finish(c, deadline)).collect();
    let elapsed = started.elapsed();
    let c = server.counters();

    assert!(
        results.iter().all(|r| r.n("failed") == 0 && r.n("ok") > 0),
        "every request must succeed: {results:?}"
    );
    assert_eq!(c.invalid_grant, 0, "{c:?}");
    assert_eq!(c.reuse_detected, 0, "{c:?}");
    assert!(
        results.iter().all(|r| r.n("store_errors") == 0),
        "{results:?}"
    );
    assert_eq!(
        results.iter().map(|r| r.n("refreshes")).sum::<u64>(),
        c.refreshes,
        "every server refresh was done by exactly one process"
    );
    // A 1 s token is refreshed 100 ms before it expires: one refresh per 0.9 s of the run, plus one
    // for boundary timing. Four processes refreshing on their own would do about four times that.
    let expiries = (elapsed.as_secs_f64() / (TOKEN_LIFETIME.as_secs_f64() * 0.9)).ceil() as u64;
    assert!(
        c.refreshes >= 2 && c.refreshes <= expiries + 1,
        "{} refreshes in {elapsed:?} ({expiries} expiries): {results:?}",
        c.refreshes
    );
    assert!(
        results.iter().map(|r| r.n("adopted")).sum::<u64>() >= 1,
        "the processes took each other's tokens: {results:?}"
    );
    assert_eq!(c.max_concurrent_refreshes, 1, "{c:?}");
}

#[test]
fn a_restarted_process_uses_the_saved_token_without_refreshing() {
    let server = TestServer::start();
    let dir = temp_dir("restart");
    let file = dir.path().join("token.json");
    let store = FileStore::new(&file);
    // The first "run": a login (expired access token) is saved, then refreshed and saved again.
    store.save(&expired_login(&server)).unwrap();
    let first = client_on(&server, store.clone()).unwrap();
    assert_eq!(get_status(&first, "/me"), 200);
    let saved = store.load().unwrap().unwrap();
    assert_eq!(saved.access_token(), first.token().unwrap().access_token());
    assert_eq!(server.counters().refreshes, 1);
    drop(first);

    // A new process loads the file and calls without refreshing.
    let child = spawn_child("worker", &server.url(), &file, 2, SystemTime::now());
    let r = finish(child, Instant::now() + PATIENCE);
    assert_eq!(
        (r.n("ok"), r.n("failed"), r.n("refreshes"), r.n("adopted")),
        (2, 0, 0, 0),
        "{r:?}"
    );
    let c = server.counters();
    assert_eq!((c.refreshes, c.refresh_attempts), (1, 1));
    assert_eq!(c.api_ok, 3);

    // So does a new client in this process.
    let again = client_on(&server, store).unwrap();
    assert_eq!(again.token().unwrap().access_token(), saved.access_token());
    assert_eq!(get_status(&again, "/me"), 200);
    assert_eq!(server.counters().refresh_attempts, 1);
}

#[test]
fn a_token_that_expired_while_no_process_ran_is_refreshed_on_load() {
    let server = TestServer::start();
    let dir = temp_dir("expired-on-disk");
    let store = FileStore::new(dir.path().join("token.json"));
    // Written with a wall-clock expiry a second in the past.
    store.save(&expired_login(&server)).unwrap();
    let client = client_on(&server, store.clone()).unwrap();
    assert!(client.token().unwrap().is_expired());
    assert_eq!(get_status(&client, "/me"), 200);
    let c = server.counters();
    assert_eq!(
        (c.refreshes, c.api_rejected),
        (1, 0),
        "refreshed before sending"
    );
    assert!(!store.load().unwrap().unwrap().is_expired());
}

#[test]
fn threads_and_clients_of_one_process_refresh_once_through_the_file() {
    let server = TestServer::builder()
        .token_latency(Duration::from_millis(100))
        .start();
    let dir = temp_dir("in-process");
    let store = FileStore::new(dir.path().join("token.json"));
    store.save(&expired_login(&server)).unwrap();
    // Two clients with gates of their own, as two libraries in one program might have.
    let (a, b) = (
        client_on(&server, store.clone()).unwrap(),
        client_on(&server, store.clone()).unwrap(),
    );
    let statuses = on_threads(32, move |i| {
        get_status(if i % 2 == 0 { &a } else { &b }, "/x")
    });
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let c = server.counters();
    assert_eq!((c.refresh_attempts, c.invalid_grant), (1, 0), "{c:?}");
}

#[test]
fn a_held_file_lock_gives_refresh_timeout_without_calling_the_server() {
    let server = TestServer::start();
    let dir = temp_dir("lock-timeout");
    let file = dir.path().join("token.json");
    FileStore::new(&file).save(&expired_login(&server)).unwrap();
    let client = Client::builder(format!("{}/api", server.url()))
        .store(FileStore::new(&file))
        .refresher(oauth(&server))
        .refresh_timeout(Duration::from_millis(200))
        .refresh_backoff(Duration::from_millis(10), Duration::from_millis(10))
        .build()
        .unwrap();
    // "Another process" (another handle, another open file description) holds the lock.
    let other = FileStore::new(&file);
    let section = other.lock(Duration::ZERO).unwrap();
    let started = Instant::now();
    let e = client.get("/me").call().unwrap_err();
    assert!(matches!(e, Error::RefreshTimeout(_)), "{e:?}");
    assert!(started.elapsed() < PATIENCE);
    assert_eq!(server.counters().token_requests, 0);
    drop(section);
    // The attempt waiting for the lock (or the next one) gets it and refreshes.
    eventually("a refresh once the lock is free", || {
        client.get("/me").call().is_ok_and(|r| r.status() == 200)
    });
    assert_eq!(server.counters().token_requests, 1);
}

#[test]
fn a_reader_never_sees_a_half_written_file() {
    /// Saves by the writer; each one replaces the whole file.
    const SAVES: usize = 100;
    let dir = temp_dir("atomic");
    let store = FileStore::new(dir.path().join("token.json"));
    let tokens = [
        Token::new("A".repeat(2000)).with_refresh_token("ra"),
        Token::new("B".repeat(3000)).with_refresh_token("rb"),
    ];
    store.save(&tokens[0]).unwrap();
    let (writer, t) = (store.clone(), tokens.clone());
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    // The writer starts once the reader has read: at least one more read overlaps the saves.
    let (read_tx, read_rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        read_rx
            .recv_timeout(PATIENCE)
            .expect("the reader read the file");
        for i in 0..SAVES {
            writer.save(&t[i % 2]).unwrap();
        }
        let _ = done_tx.send(());
    });
    let deadline = Instant::now() + PATIENCE;
    let mut reads = 0;
    loop {
        let token = store.load().unwrap().expect("the file vanished");
        let secret = token.access_token().secret();
        assert!(
            secret == tokens[0].access_token().secret()
                || secret == tokens[1].access_token().secret()
        );
        reads += 1;
        if reads == 1 {
            read_tx.send(()).unwrap();
        }
        if done_rx.try_recv().is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the writer hung");
    }
    assert!(reads > 1);
    assert_eq!(
        entries(dir.path()),
        ["token.json"],
        "no temporary file left behind"
    );
}

#[test]
fn a_writer_killed_mid_save_leaves_a_whole_file() {
    let dir = temp_dir("killed");
    let file = dir.path().join("token.json");
    let store = FileStore::new(&file);
    let child = spawn_child("saver", "", &file, 0, SystemTime::now() + PATIENCE);
    let mut child = KillOnDrop(child);
    eventually("the child saved once", || file.exists());
    // Read while it writes, then kill it (SIGKILL on Unix: no chance to clean up) and read again.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        let t = store.load().unwrap().expect("the file vanished");
        assert!(t.access_token().secret().len() >= 2000);
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let t = store.load().unwrap().expect("the file vanished");
    assert!(t.access_token().secret().len() >= 2000);
    // A temporary file the kill cut short may be left; the next save still works.
    store.save(&Token::new("after")).unwrap();
    assert_eq!(
        store.load().unwrap().unwrap().access_token().secret(),
        "after"
    );
}

/// A file that cannot be used and what loading it must say.
const BAD_FILES: &[(&str, &[u8], StoreErrorKind)] = &[
    ("empty", b"", StoreErrorKind::Empty),
    (
        "truncated",
        br#"{"version":1,"access_token":"sekrit-access","refresh_tok"#,
        StoreErrorKind::Malformed,
    ),
    (
        "garbage",
        b"\x00\xffsekrit-access garbage",
        StoreErrorKind::Malformed,
    ),
    (
        "wrong version",
        br#"{"version":99,"access_token":"sekrit-access"}"#,
        StoreErrorKind::UnsupportedVersion,
    ),
];

#[test]
fn bad_files_give_typed_errors_and_are_kept_aside_not_overwritten() {
    let server = TestServer::start();
    for (what, bytes, kind) in BAD_FILES {
        let dir = temp_dir("bad");
        let file = dir.path().join("token.json");
        std::fs::write(&file, bytes).unwrap();
        let store = FileStore::new(&file);

        let e = client_on(&server, store.clone()).unwrap_err();
        let se = e.store_error().unwrap_or_else(|| panic!("{what}: {e:?}"));
        assert_eq!(se.kind(), *kind, "{what}: {e}");
        assert!(se.is_corrupt() && !e.is_login_required() && !e.is_transient());
        assert_eq!(se.path(), Some(file.as_path()));
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("sekrit"), "{what}: {shown}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            *bytes,
            "{what}: build changed the file"
        );

        // The way out: log in again and save. The bad file is kept, byte for byte.
        store.save(&login(&server)).unwrap();
        let entries = entries(dir.path());
        assert_eq!(entries.len(), 2, "{what}: {entries:?}");
        let aside = entries
            .iter()
            .find(|n| n.starts_with("token.json.corrupt-"))
            .unwrap_or_else(|| panic!("{what}: {entries:?}"));
        assert_eq!(
            std::fs::read(dir.path().join(aside)).unwrap(),
            *bytes,
            "{what}"
        );
        let client = client_on(&server, store).unwrap();
        assert_eq!(get_status(&client, "/me"), 200, "{what}");
    }
    assert_eq!(server.counters().token_requests, 0);
}

#[test]
fn a_file_corrupted_while_running_is_kept_aside_by_the_next_refresh() {
    let server = TestServer::start();
    let dir = temp_dir("corrupted-live");
    let file = dir.path().join("token.json");
    let store = FileStore::new(&file);
    store.save(&login(&server)).unwrap();
    let client = client_on(&server, store.clone()).unwrap();
    assert_eq!(get_status(&client, "/me"), 200);
    std::fs::write(&file, b"{ oops").unwrap();
    server.revoke_all(); // the next call is rejected, so the client refreshes
    assert_eq!(get_status(&client, "/me"), 200);
    let c = server.counters();
    assert_eq!((c.refreshes, c.invalid_grant), (1, 0));
    assert_eq!(
        store.load().unwrap().unwrap().access_token(),
        client.token().unwrap().access_token()
    );
    let entries = entries(dir.path());
    assert!(
        entries.iter().any(|n| n.starts_with("token.json.corrupt-")),
        "{entries:?}"
    );
}

#[test]
fn a_directory_at_the_token_path_is_a_typed_error_and_is_left_alone() {
    let server = TestServer::start();
    let dir = temp_dir("unreadable");
    // A directory where the file should be: not a regular file, whoever runs the test (root too).
    let file = dir.path().join("token.json");
    std::fs::create_dir(&file).unwrap();
    std::fs::write(file.join("keep"), b"x").unwrap();
    let store = FileStore::new(&file);
    let e = client_on(&server, store.clone()).unwrap_err();
    assert_eq!(
        e.store_error().unwrap().kind(),
        StoreErrorKind::NotRegularFile,
        "{e}"
    );
    assert!(e.to_string().contains("token.json"), "{e}");
    let e = store.save(&login(&server)).unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::NotRegularFile, "{e}");
    assert!(file.join("keep").exists());
    assert_eq!(entries(dir.path()), ["token.json"]);
}

#[test]
fn no_file_means_login_required_then_set_token_saves_privately() {
    let server = TestServer::start();
    let dir = temp_dir("missing");
    // A parent directory that does not exist yet is created on the first save.
    let file = dir.path().join("app").join("token.json");
    let store = FileStore::new(&file);
    let client = client_on(&server, store.clone()).unwrap();
    assert!(client.token().is_none());
    let e = client.get("/me").call().unwrap_err();
    assert!(e.is_login_required(), "{e:?}");
    assert_eq!(server.counters().token_requests, 0);
    assert!(!file.exists(), "nothing written without a token");

    client.set_token(login(&server)).unwrap();
    assert_eq!(get_status(&client, "/me"), 200);
    assert_eq!(
        store.load().unwrap().unwrap().access_token(),
        client.token().unwrap().access_token()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(store.lock_path()), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
    }
}

#[test]
fn on_refresh_gets_each_new_token_for_persisting_elsewhere() {
    let server = TestServer::start();
    let (tx, rx) = crossbeam_channel::unbounded();
    let client = builder(&server, expired_login(&server))
        .on_refresh(move |t| {
            let _ = tx.send(t.access_token().secret().to_owned());
        })
        .build()
        .unwrap();
    assert_eq!(get_status(&client, "/me"), 200);
    let seen: Vec<String> = rx.try_iter().collect();
    assert_eq!(seen.len(), 1);
    assert!(server.is_access_token_valid(&seen[0]));
    assert_eq!(seen[0], client.token().unwrap().access_token().secret());
}

#[test]
fn issue_12_short_lived_processes_never_lose_a_rotated_refresh_token() {
    /// Runs of the CLI-shaped child, three at a time.
    const RUNS: usize = 30;
    const AT_A_TIME: usize = 3;
    let server = TestServer::builder()
        .token_latency(Duration::from_millis(100))
        .start();
    let dir = temp_dir("short-lived");
    let file = dir.path().join("token.json");
    let store = FileStore::new(&file);
    store.save(&login(&server)).unwrap();
    for batch in 0..RUNS / AT_A_TIME {
        // Put the saved token in its advisory window (200 s left of an hour: inside the 5-minute
        // window, outside the 60 s mandatory one), so each run starts a refresh ahead of expiry.
        let saved = store.load().unwrap().unwrap();
        let mut text = FileStore::encode(&saved);
        let left = SystemTime::now() + Duration::from_secs(200);
        let at = left.duration_since(UNIX_EPOCH).unwrap().as_millis();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut doc = doc.as_object().unwrap().clone();
        doc.insert("expires_at_unix_ms".into(), (at as u64).into());
        doc.insert("lifetime_ms".into(), 3_600_000u64.into());
        text = serde_json::to_string(&doc).unwrap();
        store
            .save(&FileStore::decode(text.as_bytes()).unwrap())
            .unwrap();
        let mode = if batch % 2 == 0 {
            "cli-return"
        } else {
            "cli-exit"
        };
        let children: Vec<Child> = (0..AT_A_TIME)
            .map(|_| {
                ChildSpec::new(mode, &file_spec(&file))
                    .url(&server.url())
                    .spawn()
            })
            .collect();
        let deadline = Instant::now() + PATIENCE;
        for child in children {
            let r = finish(child, deadline);
            assert_eq!((r.n("ok"), r.n("failed")), (3, 0), "batch {batch}: {r:?}");
        }
    }
    let c = server.counters();
    assert_eq!(
        c.invalid_grant, 0,
        "a run presented a spent refresh token: {c:?}"
    );
    assert_eq!(c.reuse_detected, 0, "{c:?}");
    assert_eq!(c.max_concurrent_refreshes, 1, "{c:?}");
    assert!(
        c.refreshes >= (RUNS / AT_A_TIME) as u64,
        "each batch refreshed: {c:?}"
    );
}
