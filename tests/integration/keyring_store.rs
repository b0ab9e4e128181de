//! `KeyringStore` (feature `keyring`, issue 16) against real credential stores:
//!
//! - the Secret Service: `gnome-keyring-daemon` on a private session bus started by the test (see
//!   `services.rs`). The store talks to the session bus named by `DBUS_SESSION_BUS_ADDRESS`, which a
//!   test cannot change in its own process, so everything that touches it runs in child processes;
//!   the parent checks what the daemon holds with `secret-tool`, an independent client;
//! - the Linux kernel keyring (keyutils), in this process: it needs no daemon.

use std::time::{Duration, Instant, SystemTime};

use tokengate::{Client, KeyringBackend, KeyringStore, StoreErrorKind, Token, TokenStore};
use tokengate_testserver::TestServer;

use crate::children::*;
use crate::store::{PROCESSES, THREADS_PER_PROCESS, TOKEN_LIFETIME, child_env, run_child};
use crate::support::*;
use tokengate_testserver::services::SecretService;

/// An access token long enough to be split into three parts.
fn large_token(tag: &str) -> Token {
    Token::new(format!(
        "{tag}-{}",
        "x".repeat(2 * KeyringStore::CHUNK_BYTES + 100)
    ))
    .with_refresh_token(format!("{tag}-refresh"))
    .with_expires_in(Duration::from_secs(3600))
}

/// `keyring:<backend> <service> <account> <lock path>`.
fn spec(backend: &str, service: &str, account: &str, lock: &std::path::Path) -> String {
    format!("keyring:{backend} {service} {account} {}", lock.display())
}

fn build(spec: &str) -> Result<KeyringStore, tokengate::Error> {
    let mut parts = spec.splitn(4, ' ');
    let backend = match parts.next().unwrap() {
        "secret-service" => KeyringBackend::SecretService,
        "kernel" => KeyringBackend::KernelKeyring,
        "native" => KeyringBackend::Native,
        other => panic!("unknown backend {other}"),
    };
    let (service, account, lock) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let mut builder = KeyringStore::builder(service, account).backend(backend);
    if !lock.is_empty() && lock != "-" {
        builder = builder.lock_path(lock);
    }
    builder.build()
}

/// The keyring children: `build` reports whether the store can be built, `save-large`,
/// `save-small` and `load` do one thing each; the shared modes (`worker`) run as for any store.
pub fn child(mode: &str, spec: &str) {
    if mode == "build" {
        match build(spec) {
            Ok(_) => println!("RESULT built=yes"),
            Err(e) => {
                let kind = e
                    .store_error()
                    .map_or("none".to_owned(), |s| format!("{:?}", s.kind()));
                println!(
                    "RESULT built=no kind={kind} transient={} message={}",
                    e.is_transient(),
                    e.to_string().replace(' ', "_")
                );
            }
        }
        return;
    }
    let store = build(spec).expect("child: cannot build the keyring store");
    match mode {
        "save-large" => {
            store
                .save(&large_token(&child_env("TOKENGATE_TEST_TAG")))
                .unwrap();
            println!("RESULT saved=yes");
        }
        "seed" => {
            let secs: u64 = child_env("TOKENGATE_TEST_SEED_SECS").parse().unwrap();
            store
                .save(
                    &Token::new(child_env("TOKENGATE_TEST_SEED_ACCESS"))
                        .with_expires_in(Duration::from_secs(secs))
                        .with_refresh_token(child_env("TOKENGATE_TEST_SEED_REFRESH")),
                )
                .unwrap();
            println!("RESULT saved=yes");
        }
        "save-small" => {
            store
                .save(&Token::new("small").with_refresh_token("r"))
                .unwrap();
            println!("RESULT saved=yes");
        }
        "load" => {
            let token = store.load().unwrap();
            let (access, refresh) = token.map_or((String::new(), String::new()), |t| {
                (
                    t.access_token().secret().to_owned(),
                    t.refresh_token().unwrap().secret().to_owned(),
                )
            });
            println!(
                "RESULT access_len={} access_head={} refresh={refresh}",
                access.len(),
                &access[..access.len().min(8)]
            );
        }
        _ => run_child(mode, store),
    }
}

/// Runs one keyring child on `service`'s bus and returns what it reported.
fn run(service: &SecretService, mode: &str, spec: &str, extra: &[(&str, &str)]) -> ChildResult {
    let mut child = ChildSpec::new(mode, spec).env("DBUS_SESSION_BUS_ADDRESS", service.address());
    for (k, v) in extra {
        child = child.env(k, v);
    }
    finish(child.spawn(), Instant::now() + PATIENCE)
}

/// The accounts the Secret Service holds for `service_name`, by `secret-tool`.
fn accounts(service: &SecretService, service_name: &str) -> Vec<String> {
    let out = service.secret_tool(&["search", "--all", "service", service_name]);
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("attribute.username = "))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

#[test]
fn secret_service_keeps_small_and_chunked_tokens_and_cleans_up_parts() {
    let service = SecretService::start();
    let lock = service.runtime_dir().join("app.lock");
    let spec = spec("secret-service", "com.example.tg-test", "alice", &lock);

    // Nothing stored yet.
    let r = run(&service, "load", &spec, &[]);
    assert_eq!(r.n("access_len"), 0, "{r:?}");

    // A large token: the head plus three parts in the daemon, and it loads back whole.
    run(
        &service,
        "save-large",
        &spec,
        &[("TOKENGATE_TEST_TAG", "one")],
    );
    let expected_len = large_token("one").access_token().secret().len() as u64;
    assert_eq!(
        accounts(&service, "com.example.tg-test"),
        [
            "alice",
            "alice.chunk-a0",
            "alice.chunk-a1",
            "alice.chunk-a2"
        ]
    );
    let head = service.secret_tool(&[
        "lookup",
        "service",
        "com.example.tg-test",
        "username",
        "alice",
    ]);
    assert!(
        head.contains("\"tokengate_chunks\":1"),
        "the head is an index: {head}"
    );
    assert!(!head.contains("xxxx"), "{head}");
    let r = run(&service, "load", &spec, &[]);
    assert_eq!(
        (r.n("access_len"), r.get("access_head"), r.get("refresh")),
        (expected_len, Some("one-xxxx"), Some("one-refresh")),
        "{r:?}"
    );

    // The next large save writes the other set of parts and deletes the first.
    run(
        &service,
        "save-large",
        &spec,
        &[("TOKENGATE_TEST_TAG", "two")],
    );
    assert_eq!(
        accounts(&service, "com.example.tg-test"),
        [
            "alice",
            "alice.chunk-b0",
            "alice.chunk-b1",
            "alice.chunk-b2"
        ]
    );
    let r = run(&service, "load", &spec, &[]);
    assert_eq!(r.get("refresh"), Some("two-refresh"), "{r:?}");

    // A small one fits in one credential; no part is left behind.
    run(&service, "save-small", &spec, &[]);
    assert_eq!(accounts(&service, "com.example.tg-test"), ["alice"]);
    let r = run(&service, "load", &spec, &[]);
    assert_eq!(
        (r.get("access_head"), r.get("refresh")),
        (Some("small"), Some("r"))
    );
}

#[test]
fn four_processes_share_one_secret_service_entry_with_one_refresh_per_expiry() {
    const RUN_FOR: Duration = Duration::from_secs(3);
    let server = TestServer::builder().token_lifetime(TOKEN_LIFETIME).start();
    let service = SecretService::start();
    // The default lock file: in the runtime directory the children are given.
    let spec = spec(
        "secret-service",
        "com.example.tg-fleet",
        "bob",
        std::path::Path::new("-"),
    );
    // Seeded by a child (the store is reachable only there), as a login would be.
    let issued = server.issue_token();
    let r = run(
        &service,
        "seed",
        &spec,
        &[
            ("TOKENGATE_TEST_SEED_ACCESS", &issued.access_token),
            ("TOKENGATE_TEST_SEED_REFRESH", &issued.refresh_token),
            ("TOKENGATE_TEST_SEED_SECS", &issued.expires_in.to_string()),
        ],
    );
    assert_eq!(r.get("saved"), Some("yes"));
    let started = Instant::now();
    let until = SystemTime::now() + RUN_FOR;
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            ChildSpec::new("worker", &spec)
                .env("DBUS_SESSION_BUS_ADDRESS", service.address())
                .env("XDG_RUNTIME_DIR", service.runtime_dir())
                .url(&server.url())
                .workers(THREADS_PER_PROCESS, until)
                .spawn()
        })
        .collect();
    let deadline = Instant::now() + RUN_FOR + PATIENCE;
    let results: Vec<ChildResult> = children.into_iter().map(|c| finish(c, deadline)).collect();
    let elapsed = started.elapsed();
    let c = server.counters();
    assert!(
        results.iter().all(|r| r.n("failed") == 0 && r.n("ok") > 0),
        "every request must succeed: {results:?}"
    );
    assert_eq!((c.invalid_grant, c.reuse_detected), (0, 0), "{c:?}");
    assert_eq!(c.max_concurrent_refreshes, 1, "{c:?}");
    assert!(
        results.iter().all(|r| r.n("store_errors") == 0),
        "{results:?}"
    );
    assert_eq!(
        results.iter().map(|r| r.n("refreshes")).sum::<u64>(),
        c.refreshes
    );
    let expiries = (elapsed.as_secs_f64() / (TOKEN_LIFETIME.as_secs_f64() * 0.8)).ceil() as u64;
    assert!(
        c.refreshes >= 2 && c.refreshes <= expiries + 1,
        "{} refreshes in {elapsed:?}: {results:?}",
        c.refreshes
    );
    assert!(results.iter().map(|r| r.n("adopted")).sum::<u64>() >= 1);
    let lock_dir = service.runtime_dir().join("tokengate");
    let locks: Vec<_> = std::fs::read_dir(&lock_dir).unwrap().collect();
    assert_eq!(
        locks.len(),
        1,
        "one default lock file for the service and account"
    );
}

#[test]
fn no_secret_service_is_a_typed_error_never_a_fallback() {
    let dir = temp_dir("no-secret-service");
    let lock = dir.path().join("app.lock");
    for (what, bus) in [
        (
            "a bus address that leads nowhere",
            format!("unix:path={}", dir.path().join("no-bus").display()),
        ),
        ("no bus at all", String::new()),
    ] {
        let mut child = ChildSpec::new(
            "build",
            &spec("secret-service", "com.example.tg", "carol", &lock),
        )
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("HOME", dir.path());
        child = if bus.is_empty() {
            child.env_remove("DBUS_SESSION_BUS_ADDRESS")
        } else {
            child.env("DBUS_SESSION_BUS_ADDRESS", &bus)
        };
        let r = finish(child.spawn(), Instant::now() + PATIENCE);
        assert_eq!(
            (r.get("built"), r.get("kind"), r.get("transient")),
            (Some("no"), Some("Unavailable"), Some("true")),
            "{what}: {r:?}"
        );
    }
    assert_eq!(
        entries(dir.path()),
        Vec::<String>::new(),
        "nothing written anywhere: no fallback"
    );
}

/// The kernel keyring needs no daemon: this process's session keyring, shared with its children.
#[test]
fn kernel_keyring_keeps_small_and_chunked_tokens() {
    let dir = temp_dir("kernel-keyring");
    let service = format!("com.example.tg-kernel-{}", std::process::id());
    let store = KeyringStore::builder(&service, "dave")
        .backend(KeyringBackend::KernelKeyring)
        .lock_path(dir.path().join("lock"))
        .build()
        .unwrap_or_else(|e| panic!("the kernel keyring is not usable here: {e}"));
    assert!(store.load().unwrap().is_none());
    let large = large_token("kernel");
    store.save(&large).unwrap();
    let back = store.load().unwrap().unwrap();
    assert_eq!(back.access_token(), large.access_token());
    assert_eq!(back.refresh_token(), large.refresh_token());
    // A second store (another process, as far as the keyring can tell) sees the same token.
    let other = KeyringStore::builder(&service, "dave")
        .backend(KeyringBackend::KernelKeyring)
        .lock_path(dir.path().join("lock"))
        .build()
        .unwrap();
    assert_eq!(
        other.load().unwrap().unwrap().access_token(),
        large.access_token()
    );
    // Locking excludes the other store until dropped.
    let section = store.lock(PATIENCE).unwrap();
    let e = other.lock(Duration::from_millis(50)).unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::LockTimeout);
    drop(section);
    // Released on drop: the other store gets in, within the patience rather than at once. A
    // child process another test is starting holds a copy of the lock's descriptor from its fork
    // until its exec (the descriptor is close-on-exec), and a file lock lasts until its last
    // descriptor closes: under load that window can outlast one attempt.
    drop(other.lock(PATIENCE).unwrap());
    store
        .save(&Token::new("small").with_refresh_token("r"))
        .unwrap();
    assert_eq!(
        store.load().unwrap().unwrap().access_token().secret(),
        "small"
    );
    assert!(!format!("{store:?}").contains("small"));

    // Through a client: a refresh saves to the kernel keyring.
    let server = TestServer::start();
    store.save(&expired_login(&server)).unwrap();
    let client = Client::builder(format!("{}/api", server.url()))
        .store(store.clone())
        .refresher(oauth(&server))
        .build()
        .unwrap();
    assert_eq!(get_status(&client, "/me"), 200);
    assert_eq!(
        store.load().unwrap().unwrap().access_token(),
        client.token().unwrap().access_token()
    );
    assert_eq!(server.counters().refreshes, 1);
    // A logout clears it through `TokenStore::clear`, a token split into parts included.
    store.save(&large_token("logout")).unwrap();
    client.logout().unwrap();
    assert!(store.load().unwrap().is_none());
    assert!(other.load().unwrap().is_none());
    assert!(client.get("/me").call().unwrap_err().is_login_required());
    store.clear().unwrap();
}
