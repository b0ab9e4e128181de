//! Token persistence and cross-process single flight (issue 3): `FileStore` against the real server
//! with rotating, reuse-detecting refresh tokens, in this process and in child processes.
//!
//! Child processes are this test binary run again with `CHILD_MODE` set, filtered to
//! [`child_process_entry_point`]; the parent passes the server URL and file path in the environment
//! and reads one result line from the child's stdout. Every child is killed if it outlives its bound.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokengate::{Client, Error, FileStore, StoreErrorKind, Token, TokenStore};
use tokengate_testserver::TestServer;

use crate::support::*;

/// Selects what a child process does: `worker` or `saver`.
const CHILD_MODE: &str = "TOKENGATE_TEST_CHILD";
const CHILD_URL: &str = "TOKENGATE_TEST_URL";
const CHILD_FILE: &str = "TOKENGATE_TEST_FILE";
const CHILD_THREADS: &str = "TOKENGATE_TEST_THREADS";
/// Wall-clock end of the child's run, in Unix milliseconds.
const CHILD_UNTIL_MS: &str = "TOKENGATE_TEST_UNTIL_MS";

/// Processes and threads per process of the multi-process test.
const PROCESSES: usize = 4;
const THREADS_PER_PROCESS: usize = 8;
const RUN_FOR: Duration = Duration::from_secs(3);
const TOKEN_LIFETIME: Duration = Duration::from_secs(1);

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn client_on(server: &TestServer, store: FileStore) -> Result<Client, Error> {
    Client::builder(format!("{}/api", server.url()))
        .store(store)
        .refresher(oauth(server))
        .refresh_timeout(PATIENCE)
        .build()
}

/// Not a test: the body of the child processes the tests below start (run with `--ignored`).
#[test]
#[ignore = "child process of the store tests"]
fn child_process_entry_point() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        panic!("{CHILD_MODE} not set: this runs only as a child of the store tests");
    };
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"));
    let store = FileStore::new(env(CHILD_FILE));
    let until = UNIX_EPOCH + Duration::from_millis(env(CHILD_UNTIL_MS).parse().unwrap());
    match mode.as_str() {
        "worker" => {
            // Calls the API from N threads until `until` (at least once each), sharing the token
            // file with the other processes.
            let threads: usize = env(CHILD_THREADS).parse().unwrap();
            let client = Client::builder(format!("{}/api", env(CHILD_URL)))
                .store(store)
                .refresher(
                    tokengate::OAuth2::refresh_token_grant(format!(
                        "{}/oauth/token",
                        env(CHILD_URL)
                    ))
                    .client_id("demo-client")
                    .client_secret("demo-secret"),
                )
                .refresh_timeout(PATIENCE)
                .build()
                .expect("child: cannot build the client");
            let c = client.clone();
            let counts = on_threads(threads, move |i| {
                let (mut ok, mut failed) = (0u64, 0u64);
                loop {
                    let what = match c.get(&format!("/p{}/t{i}", std::process::id())).call() {
                        Ok(r) if r.status() == 200 => None,
                        Ok(r) => Some(format!("HTTP {}", r.status())),
                        Err(e) => Some(e.to_string()),
                    };
                    match what {
                        None => ok += 1,
                        Some(what) => {
                            if failed == 0 {
                                eprintln!("child {} thread {i}: {what}", std::process::id());
                            }
                            failed += 1;
                        }
                    }
                    if SystemTime::now() >= until {
                        return (ok, failed);
                    }
                }
            });
            let (ok, failed) = counts.iter().fold((0, 0), |(o, f), (a, b)| (o + a, f + b));
            let s = client.stats();
            println!(
                "RESULT ok={ok} failed={failed} refreshes={} adopted={} store_errors={}",
                s.refreshes, s.adopted, s.store_errors
            );
        }
        "saver" => {
            // Saves two alternating tokens as fast as it can until killed (or `until`).
            let tokens = [
                Token::new("A".repeat(2000)).refresh_token("ra"),
                Token::new("B".repeat(3000)).refresh_token("rb"),
            ];
            for i in 0..1_000_000usize {
                store.save(&tokens[i % 2]).expect("child: save failed");
                if SystemTime::now() >= until {
                    break;
                }
            }
        }
        other => panic!("unknown {CHILD_MODE}={other}"),
    }
}

/// Starts this test binary as a child in `mode`.
fn spawn_child(mode: &str, url: &str, file: &Path, threads: usize, until: SystemTime) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "store::child_process_entry_point",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MODE, mode)
        .env(CHILD_URL, url)
        .env(CHILD_FILE, file)
        .env(CHILD_THREADS, threads.to_string())
        .env(CHILD_UNTIL_MS, unix_ms(until).to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start a child process")
}

/// What a worker child reported.
#[derive(Debug, Default)]
struct WorkerResult {
    ok: u64,
    failed: u64,
    refreshes: u64,
    adopted: u64,
    store_errors: u64,
}

/// Waits for `child` until `deadline` (killing it and failing the test after that) and parses its
/// result line.
fn finish(mut child: Child, deadline: Instant) -> WorkerResult {
    loop {
        match child.try_wait().unwrap() {
            Some(status) => {
                let mut out = String::new();
                child
                    .stdout
                    .take()
                    .unwrap()
                    .read_to_string(&mut out)
                    .unwrap();
                assert!(status.success(), "child failed ({status}):\n{out}");
                let line = out
                    .lines()
                    .find_map(|l| Some(&l[l.find("RESULT ")? + "RESULT ".len()..]))
                    .unwrap_or_else(|| panic!("no result line in:\n{out}"));
                let mut r = WorkerResult::default();
                for field in line.split_whitespace() {
                    let (k, v) = field.split_once('=').unwrap();
                    let v = v.parse().unwrap();
                    match k {
                        "ok" => r.ok = v,
                        "failed" => r.failed = v,
                        "refreshes" => r.refreshes = v,
                        "adopted" => r.adopted = v,
                        "store_errors" => r.store_errors = v,
                        _ => panic!("unknown field {k}"),
                    }
                }
                return r;
            }
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("a child process hung; killed it");
            }
            None => thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[test]
fn four_processes_share_one_token_file_with_one_refresh_per_expiry() {
    let server = TestServer::builder().token_lifetime(TOKEN_LIFETIME).start();
    let dir = TempDir::new("multiprocess");
    let file = dir.join("token.json");
    FileStore::new(&file).save(&login(&server)).unwrap();
    let started = Instant::now();
    let until = SystemTime::now() + RUN_FOR;
    let children: Vec<Child> = (0..PROCESSES)
        .map(|_| spawn_child("worker", &server.url(), &file, THREADS_PER_PROCESS, until))
        .collect();
    let deadline = Instant::now() + RUN_FOR + PATIENCE;
    let results: Vec<WorkerResult> = children.into_iter().map(|c| finish(c, deadline)).collect();
    let elapsed = started.elapsed();
    let c = server.counters();

    assert!(
        results.iter().all(|r| r.failed == 0 && r.ok > 0),
        "every request must succeed: {results:?}"
    );
    assert_eq!(c.invalid_grant, 0, "{c:?}");
    assert_eq!(c.reuse_detected, 0, "{c:?}");
    assert!(results.iter().all(|r| r.store_errors == 0), "{results:?}");
    assert_eq!(
        results.iter().map(|r| r.refreshes).sum::<u64>(),
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
        results.iter().map(|r| r.adopted).sum::<u64>() >= 1,
        "the processes took each other's tokens: {results:?}"
    );
    assert_eq!(c.max_concurrent_refreshes, 1, "{c:?}");
}

#[test]
fn a_restarted_process_uses_the_saved_token_without_refreshing() {
    let server = TestServer::start();
    let dir = TempDir::new("restart");
    let file = dir.join("token.json");
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
        (r.ok, r.failed, r.refreshes, r.adopted),
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
    let dir = TempDir::new("expired-on-disk");
    let store = FileStore::new(dir.join("token.json"));
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
    let dir = TempDir::new("in-process");
    let store = FileStore::new(dir.join("token.json"));
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
    let dir = TempDir::new("lock-timeout");
    let file = dir.join("token.json");
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
    let dir = TempDir::new("atomic");
    let store = FileStore::new(dir.join("token.json"));
    let tokens = [
        Token::new("A".repeat(2000)).refresh_token("ra"),
        Token::new("B".repeat(3000)).refresh_token("rb"),
    ];
    store.save(&tokens[0]).unwrap();
    let (writer, t) = (store.clone(), tokens.clone());
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
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
        if done_rx.try_recv().is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the writer hung");
    }
    assert!(reads > 1);
    assert_eq!(
        dir.entries(),
        ["token.json"],
        "no temporary file left behind"
    );
}

#[test]
fn a_writer_killed_mid_save_leaves_a_whole_file() {
    let dir = TempDir::new("killed");
    let file = dir.join("token.json");
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

/// Kills the child if the test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
        let dir = TempDir::new("bad");
        let file = dir.join("token.json");
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
        let entries = dir.entries();
        assert_eq!(entries.len(), 2, "{what}: {entries:?}");
        let aside = entries
            .iter()
            .find(|n| n.starts_with("token.json.corrupt-"))
            .unwrap_or_else(|| panic!("{what}: {entries:?}"));
        assert_eq!(std::fs::read(dir.join(aside)).unwrap(), *bytes, "{what}");
        let client = client_on(&server, store).unwrap();
        assert_eq!(get_status(&client, "/me"), 200, "{what}");
    }
    assert_eq!(server.counters().token_requests, 0);
}

#[test]
fn a_file_corrupted_while_running_is_kept_aside_by_the_next_refresh() {
    let server = TestServer::start();
    let dir = TempDir::new("corrupted-live");
    let file = dir.join("token.json");
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
    let entries = dir.entries();
    assert!(
        entries.iter().any(|n| n.starts_with("token.json.corrupt-")),
        "{entries:?}"
    );
}

#[test]
fn an_unreadable_file_is_an_io_error_and_is_left_alone() {
    let server = TestServer::start();
    let dir = TempDir::new("unreadable");
    // A directory where the file should be: unreadable as a file, whoever runs the test (root too).
    let file = dir.join("token.json");
    std::fs::create_dir(&file).unwrap();
    std::fs::write(file.join("keep"), b"x").unwrap();
    let store = FileStore::new(&file);
    let e = client_on(&server, store.clone()).unwrap_err();
    assert_eq!(e.store_error().unwrap().kind(), StoreErrorKind::Io, "{e}");
    assert!(e.to_string().contains("token.json"), "{e}");
    let e = store.save(&login(&server)).unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Io, "{e}");
    assert!(file.join("keep").exists());
    assert_eq!(dir.entries(), ["token.json"]);
}

#[test]
fn no_file_means_login_required_then_set_token_saves_privately() {
    let server = TestServer::start();
    let dir = TempDir::new("missing");
    // A parent directory that does not exist yet is created on the first save.
    let file = dir.join("app").join("token.json");
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
