//! What a `FileStore` finds on disk besides a token file (issue 12, items 8 and 10): a FIFO or
//! other special file at the token or lock path, temporaries left by a crashed save, a token file
//! other users can read, a token file this user may not read, a directory that cannot be
//! written, a lock file this user may not open for writing. Real files, real FIFOs, the real
//! server; the cases that need a user without root's file privileges run in a child process (this
//! test binary run again under `setpriv` with those capabilities dropped when the tests run as
//! root).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use tokengate::{Client, Error, Event, FileStore, StoreErrorKind, Token, TokenStore};
use tokengate_testserver::TestServer;
use tokengate_testserver::support::TempDir;

use crate::children::{CHILD_URL, finish};
use crate::support::*;

/// Selects what the privilege-dropped child does: `read-only`, `permissions`, `unreadable` or
/// `lock-file`.
const FILES_CHILD: &str = "TOKENGATE_FILES_CHILD";
/// The token file the child uses.
const FILES_PATH: &str = "TOKENGATE_FILES_PATH";

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo (coreutils) is needed");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Runs `f` on a thread of its own; a hang (a blocked open of a FIFO) fails the test. On a hang,
/// `fifo` is opened for writing to release the stuck reader.
fn within_patience<T: Send + 'static>(fifo: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(v) => v,
        Err(_) => {
            let _ = fs::OpenOptions::new().write(true).open(fifo);
            panic!("blocked on the FIFO at {}", fifo.display());
        }
    }
}

fn store_kind(e: &Error) -> StoreErrorKind {
    e.store_error()
        .unwrap_or_else(|| panic!("not a store error: {e:?}"))
        .kind()
}

fn client_with_store(server: &TestServer, store: FileStore) -> Result<Client, Error> {
    Client::builder(format!("{}/api", server.url()))
        .store(store)
        .refresher(oauth(server))
        .refresh_timeout(PATIENCE)
        .build()
}

#[test]
fn issue_12_a_fifo_at_the_token_path_never_blocks_load_build_save_or_refresh() {
    let server = TestServer::start();
    let dir = temp_dir("fifo-token");
    let path = dir.path().join("token.json");
    mkfifo(&path);

    let store = FileStore::new(&path);
    let (s, url) = (store.clone(), server.url());
    let (load, build, save) = within_patience(&path, move || {
        let server_url = url;
        let load = s.load().map(|_| ());
        let build = Client::builder(format!("{server_url}/api"))
            .store(s.clone())
            .build()
            .map(|_| ());
        let save = s.save(&Token::new("NEW-ACCESS"));
        (load, build, save)
    });
    let load = load.expect_err("a FIFO is not a token file");
    assert_eq!(load.kind(), StoreErrorKind::NotRegularFile);
    assert_eq!(load.path(), Some(path.as_path()));
    let text = load.to_string();
    assert!(
        text.contains("FIFO") && text.contains("not a regular file"),
        "{text}"
    );
    assert_eq!(
        store_kind(&build.expect_err("build")),
        StoreErrorKind::NotRegularFile
    );
    assert_eq!(save.unwrap_err().kind(), StoreErrorKind::NotRegularFile);

    // A client given a token refreshes through the store: the refresh stops at the FIFO, before
    // the token endpoint, and is not retried in a loop.
    let token = expired_login(&server);
    let client = builder(&server, token).store(store).build().unwrap();
    let c = client.clone();
    let (first, second) = within_patience(&path, move || {
        (
            c.get("/data").call().map(|_| ()),
            c.get("/data").call().map(|_| ()),
        )
    });
    for e in [first.unwrap_err(), second.unwrap_err()] {
        assert_eq!(store_kind(&e), StoreErrorKind::NotRegularFile, "{e}");
        assert!(!e.is_transient() && e.is_configuration(), "{e}");
    }
    assert_eq!(server.counters().token_requests, 0);
    // Nothing was renamed or replaced: the FIFO is still there.
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()));
    assert_eq!(entries(dir.path()), ["token.json", "token.json.lock"]);
}

#[test]
fn issue_12_a_fifo_or_directory_at_the_lock_path_is_refused_without_opening_it() {
    let server = TestServer::start();
    let dir = temp_dir("fifo-lock");
    let path = dir.path().join("token.json");
    let store = FileStore::new(&path);
    store.save(&expired_login(&server)).unwrap();
    mkfifo(store.lock_path());

    let s = store.clone();
    let locked = within_patience(store.lock_path(), move || s.lock(PATIENCE).map(|_| ()));
    let e = locked.unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::NotRegularFile);
    assert_eq!(e.path(), Some(store.lock_path()));
    assert!(e.to_string().contains("lock file is a FIFO"), "{e}");

    let client = client_with_store(&server, store.clone()).unwrap();
    let events = client.events();
    let c = client.clone();
    let got = within_patience(store.lock_path(), move || c.get("/data").call().map(|_| ()));
    let e = got.unwrap_err();
    assert_eq!(store_kind(&e), StoreErrorKind::NotRegularFile, "{e}");
    assert_eq!(server.counters().token_requests, 0);
    let event = events.recv_timeout(PATIENCE).unwrap();
    assert!(
        matches!(&event, Event::RefreshFailed { error, .. }
            if store_kind(error) == StoreErrorKind::NotRegularFile),
        "{event:?}"
    );

    // A directory at the token path, and a symlink to a FIFO, are refused the same way; a
    // symlink to a regular token file is followed.
    let other = temp_dir("dir-token");
    fs::create_dir(other.path().join("token.json")).unwrap();
    let e = FileStore::new(other.path().join("token.json"))
        .load()
        .unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::NotRegularFile);
    assert!(e.to_string().contains("is a directory"), "{e}");
    std::os::unix::fs::symlink(store.lock_path(), other.path().join("to-fifo.json")).unwrap();
    let linked = other.path().join("to-fifo.json");
    let l = linked.clone();
    let e = within_patience(&linked, move || FileStore::new(l).load().map(|_| ())).unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::NotRegularFile);
    std::os::unix::fs::symlink(&path, other.path().join("to-file.json")).unwrap();
    assert!(
        FileStore::new(other.path().join("to-file.json"))
            .load()
            .unwrap()
            .is_some()
    );
}

/// Creates a temporary file named like a `FileStore`'s, holding a token, last modified `age` ago.
fn leftover(dir: &TempDir, name: &str, age: Duration) -> PathBuf {
    let path = dir.path().join(name);
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    use std::io::Write;
    (&file)
        .write_all(FileStore::encode(&Token::new("LEFTOVER-SECRET")).as_bytes())
        .unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
    path
}

#[test]
fn issue_12_temporaries_left_by_a_crashed_save_are_removed_by_the_next_save() {
    let server = TestServer::start();
    let dir = temp_dir("leftovers");
    let path = dir.path().join("token.json");
    let store = FileStore::new(&path);
    store.save(&expired_login(&server)).unwrap();
    let old = Duration::from_secs(120);

    let stale = leftover(&dir, ".token.json.tmp.4000000.0", old);
    let fresh = leftover(&dir, ".token.json.tmp.4000001.1", Duration::ZERO);
    // A save stalled for minutes still holds its temporary's lock: never removed under it.
    let writing = leftover(&dir, ".token.json.tmp.4000002.2", old);
    let held = fs::File::open(&writing).unwrap();
    held.lock().unwrap();
    // Not ours: another store's temporary, another naming, a directory of our naming.
    let other_store = leftover(&dir, ".other.json.tmp.4000003.3", old);
    let other_name = leftover(&dir, ".token.json.tmp.x.y", old);
    fs::create_dir(dir.path().join(".token.json.tmp.4000004.4")).unwrap();

    // The next save is the one a refresh makes.
    let client = client_with_store(&server, store.clone()).unwrap();
    assert_eq!(get_status(&client, "/data"), 200);
    let seen = server.counters();
    assert_eq!((seen.token_requests, seen.refreshes), (1, 1));

    assert!(!stale.exists(), "the stale temporary was not removed");
    for kept in [&fresh, &writing, &other_store, &other_name] {
        assert!(kept.exists(), "{} was removed", kept.display());
    }
    assert!(dir.path().join(".token.json.tmp.4000004.4").is_dir());
    drop(held);
    // The saved token is the refreshed one, whole.
    let saved = store.load().unwrap().unwrap();
    assert!(server.is_access_token_valid(saved.access_token().secret()));
    // Once its writer is gone (its lock released), the stalled one goes on the next save.
    store.save(&saved).unwrap();
    assert!(!writing.exists());
    assert!(fresh.exists());
}

#[test]
fn issue_12_a_world_readable_token_file_is_made_private_on_load() {
    let server = TestServer::start();
    let dir = temp_dir("loose-mode");
    let path = dir.path().join("token.json");
    fs::write(&path, FileStore::encode(&login(&server))).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

    let store = FileStore::new(&path);
    let client = client_with_store(&server, store.clone()).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(get_status(&client, "/data"), 200);

    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    assert!(store.load().unwrap().is_some());
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(server.counters().token_requests, 0);

    // A loose file this user cannot change (another user's) is refused, not used.
    if privileged(&dir) {
        let theirs = dir.path().join("theirs.json");
        fs::write(&theirs, FileStore::encode(&login(&server))).unwrap();
        fs::set_permissions(&theirs, fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        run_unprivileged("permissions", &theirs, &server);
        assert_eq!(
            fs::metadata(&theirs).unwrap().permissions().mode() & 0o777,
            0o644
        );
    } else {
        eprintln!("not root: the refusal of another user's loose token file is not tested");
    }
}

#[test]
fn issue_12_a_read_only_token_directory_gives_one_clear_error_and_spends_nothing() {
    let server = TestServer::start();
    let dir = temp_dir("read-only");
    let path = dir.path().join("token.json");
    FileStore::new(&path).save(&expired_login(&server)).unwrap();
    fs::remove_file(FileStore::new(&path).lock_path()).ok();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o500)).unwrap();

    if privileged(&dir) {
        run_unprivileged("read-only", &path, &server);
    } else {
        read_only_checks(&path, &server.url());
    }
    assert_eq!(server.counters().token_requests, 0, "nothing was refreshed");

    // Writable again: the token saved before is refreshed with its (unspent) refresh token.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let client = client_with_store(&server, FileStore::new(&path)).unwrap();
    assert_eq!(get_status(&client, "/data"), 200);
    let seen = server.counters();
    assert_eq!((seen.refreshes, seen.invalid_grant), (1, 0));
}

/// A lock file that is there but that this user may not open for writing is a configuration
/// failure (`Permissions`, naming the lock file), not a transient I/O error the gate would retry
/// with its short backoff.
#[test]
fn a_lock_file_this_user_may_not_write_is_a_permissions_error_not_a_transient_one() {
    let server = TestServer::start();
    let dir = temp_dir("lock-perm");
    let path = dir.path().join("token.json");
    let store = FileStore::new(&path);
    store.save(&expired_login(&server)).unwrap();
    fs::remove_file(store.lock_path()).ok();
    fs::write(store.lock_path(), b"").unwrap();
    fs::set_permissions(store.lock_path(), fs::Permissions::from_mode(0o400)).unwrap();

    if privileged(&dir) {
        run_unprivileged("lock-file", &path, &server);
    } else {
        lock_file_checks(&path, &server.url());
    }
    assert_eq!(server.counters().token_requests, 0, "nothing was refreshed");

    // Writable again: the saved token is refreshed with its (unspent) refresh token.
    fs::set_permissions(store.lock_path(), fs::Permissions::from_mode(0o600)).unwrap();
    let client = client_with_store(&server, FileStore::new(&path)).unwrap();
    assert_eq!(get_status(&client, "/data"), 200);
    let seen = server.counters();
    assert_eq!((seen.refreshes, seen.invalid_grant), (1, 0));
}

/// A token file this user may not read is a configuration failure (`Permissions`, naming the
/// file), at build and at every refresh, not a transient I/O error the gate would retry with its
/// short backoff; nothing is sent to the token endpoint, and the file is left as it was.
#[test]
fn a_token_file_this_user_may_not_read_is_a_permissions_error_not_a_transient_one() {
    let server = TestServer::start();
    let dir = temp_dir("read-perm");
    let path = dir.path().join("token.json");
    FileStore::new(&path).save(&expired_login(&server)).unwrap();
    let before = fs::read(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();

    if privileged(&dir) {
        run_unprivileged("unreadable", &path, &server);
    } else {
        unreadable_checks(&path, &server.url());
    }
    assert_eq!(server.counters().token_requests, 0, "nothing was refreshed");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(fs::read(&path).unwrap(), before, "the file is untouched");
}

/// A token file that cannot be read: `load` and `build` fail with `Permissions` naming it; a
/// client that started from another token and shares the file fails its refreshes at once with
/// that error (one attempt, no token request).
fn unreadable_checks(path: &Path, url: &str) {
    assert!(fs::read(path).is_err(), "the token file can still be read");
    let e = FileStore::new(path).load().unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Permissions, "{e}");
    assert_eq!(e.path(), Some(path));
    assert!(e.is_configuration(), "{e}");
    assert!(e.to_string().contains("cannot be read by this user"), "{e}");
    let built = Client::builder(format!("{url}/api"))
        .store(FileStore::new(path))
        .build();
    assert_eq!(store_kind(&built.unwrap_err()), StoreErrorKind::Permissions);

    let expired = Token::new("stale")
        .with_refresh_token("unused")
        .with_expires_in(Duration::ZERO);
    let client = refreshing_client(url, FileStore::new(path), Some(expired));
    fails_fast_with(&client, StoreErrorKind::Permissions);
}

/// A store whose lock file cannot be opened for writing: the token loads, `lock` fails with
/// `Permissions` naming the lock file, and requests fail at once with that error (not transient,
/// one refresh attempt, no token request).
fn lock_file_checks(path: &Path, url: &str) {
    let store = FileStore::new(path);
    let lock_path = store.lock_path().to_owned();
    assert!(
        fs::OpenOptions::new().write(true).open(&lock_path).is_err(),
        "the lock file can still be written"
    );
    store.load().unwrap().expect("the saved token is readable");
    let e = store.lock(PATIENCE).map(|_| ()).unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Permissions, "{e}");
    assert_eq!(e.path(), Some(lock_path.as_path()));
    assert!(e.is_configuration(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("lock file") && text.contains("owner or mode"),
        "{text}"
    );

    let client = refreshing_client(url, store, None);
    fails_fast_with(&client, StoreErrorKind::Permissions);
}

/// A client of the test server at `url` on `store` (starting from `token` when given, else from
/// the store) whose longest backoff outlasts the test.
fn refreshing_client(url: &str, store: FileStore, token: Option<Token>) -> Client {
    let mut builder = Client::builder(format!("{url}/api"));
    if let Some(token) = token {
        builder = builder.token(token);
    }
    builder
        .store(store)
        .refresher(
            tokengate::OAuth2::refresh_token(format!("{url}/oauth/token"))
                .client_id("demo-client")
                .client_secret("demo-secret"),
        )
        .refresh_timeout(PATIENCE)
        .refresh_backoff(Duration::from_millis(250), PATIENCE)
        .build()
        .unwrap()
}

/// Three calls fail at once with a store error of `kind`, a configuration failure (not
/// transient), and the gate tried once: it does not retry in a loop (its longest backoff outlasts
/// the calls).
fn fails_fast_with(client: &Client, kind: StoreErrorKind) {
    for _ in 0..3 {
        let e = client.get("/data").call().map(|_| ()).unwrap_err();
        assert_eq!(store_kind(&e), kind, "{e}");
        assert!(!e.is_transient() && e.is_configuration(), "{e}");
    }
    assert_eq!(client.stats().refresh_failures, 1, "retried in a loop");
}

/// Whether this process writes where permissions say it may not (root's `CAP_DAC_OVERRIDE`):
/// probed on `dir`, made read-only for the probe.
fn privileged(dir: &TempDir) -> bool {
    let mode = fs::metadata(dir.path()).unwrap().permissions().mode();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o500)).unwrap();
    let probe = dir.path().join(".probe");
    let wrote = fs::write(&probe, b"").is_ok();
    let _ = fs::remove_file(&probe);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
    wrote
}

/// Runs this binary again, filtered to [`unprivileged_child`], under `setpriv` without the
/// capabilities that let root ignore file permissions, and requires it to pass.
fn run_unprivileged(mode: &str, path: &Path, server: &TestServer) {
    let child = Command::new("setpriv")
        .arg("--bounding-set=-dac_override,-dac_read_search,-fowner")
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args([
            "file_store::unprivileged_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FILES_CHILD, mode)
        .env(FILES_PATH, path)
        .env(CHILD_URL, server.url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("setpriv (util-linux) is needed to test file permissions as root");
    let result = finish(child, Instant::now() + PATIENCE);
    assert_eq!(result.get("ok"), Some(mode));
}

/// Not a test: the child of the permission tests (run with `--ignored`).
#[test]
#[ignore = "child process of the file store tests"]
fn unprivileged_child() {
    let Ok(mode) = std::env::var(FILES_CHILD) else {
        return;
    };
    let path = PathBuf::from(std::env::var(FILES_PATH).unwrap());
    let url = std::env::var(CHILD_URL).unwrap();
    // The capabilities really are gone: a file cannot be created where permissions forbid it.
    let dir = path.parent().unwrap();
    match mode.as_str() {
        "read-only" => {
            assert!(
                fs::write(dir.join(".probe"), b"").is_err(),
                "still privileged"
            );
            read_only_checks(&path, &url);
        }
        "permissions" => {
            let e = FileStore::new(&path).load().unwrap_err();
            assert_eq!(e.kind(), StoreErrorKind::Permissions, "{e}");
            assert!(e.is_configuration());
            let text = e.to_string();
            assert!(
                text.contains("mode 0644") && text.contains("other users"),
                "{text}"
            );
            let built = Client::builder(format!("{url}/api"))
                .store(FileStore::new(&path))
                .build();
            assert_eq!(store_kind(&built.unwrap_err()), StoreErrorKind::Permissions);
        }
        "lock-file" => lock_file_checks(&path, &url),
        "unreadable" => unreadable_checks(&path, &url),
        other => panic!("unknown child mode {other}"),
    }
    println!("RESULT ok={mode}");
}

/// A store in a directory that cannot be written: the token loads, `lock` and `save` fail with
/// `ReadOnly` naming the directory, and requests fail at once with that error (not transient, no
/// token request) instead of every refresh failing on the lock file.
fn read_only_checks(path: &Path, url: &str) {
    let dir = path.parent().unwrap();
    let store = FileStore::new(path);
    let token = store.load().unwrap().expect("the saved token is readable");
    let e = store.lock(PATIENCE).map(|_| ()).unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::ReadOnly, "{e}");
    assert_eq!(e.path(), Some(dir));
    assert!(e.is_configuration());
    let text = e.to_string();
    assert!(
        text.contains("cannot be written") && text.contains("not saved or shared"),
        "{text}"
    );
    let e = store.save(&token).unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::ReadOnly, "{e}");

    let client = refreshing_client(url, store, None);
    fails_fast_with(&client, StoreErrorKind::ReadOnly);
}
