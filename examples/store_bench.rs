//! What a store adds to a refresh: the same gate refreshes again and again with no store, a
//! `FileStore`, a `KeyringStore` (kernel keyring; Secret Service when one is on the session bus)
//! and a `RedisStore` (a `redis-server` this program starts on loopback), and a table shows the
//! time per refresh.
//!
//! ```text
//! cargo run --release --features keyring,redis --example store_bench
//! # with the Secret Service row: a private session bus with gnome-keyring unlocked
//! dbus-run-session -- sh -c 'echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null;
//!     cargo run --release --features keyring,redis --example store_bench'
//! ```
//!
//! The refresher is a closure that returns a new, already expired token at once, so every
//! `Gate::lease()` is one whole refresh: with a store, lock, re-read, refresh, save, unlock. No
//! HTTP is involved: the figures are the store's own cost, which a real refresh adds to the token
//! endpoint's round trip.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use tokengate::{
    FileStore, Gate, GateBuilder, KeyringBackend, KeyringStore, RedisStore, RefreshError, Token,
};

/// Refreshes measured per row, after `WARMUP` unmeasured ones.
const REFRESHES: usize = 300;
const WARMUP: usize = 20;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new token, expired already, with an access token of about `size` bytes.
fn next_token(size: usize) -> Token {
    let n = COUNTER.fetch_add(1, Relaxed);
    let access = format!("access-{n:08}-{}", "a".repeat(size.saturating_sub(16)));
    Token::new(access)
        .with_refresh_token(format!("refresh-{n:08}-{}", "r".repeat(64)))
        .with_expires_at_wall(SystemTime::now())
}

fn gate(size: usize) -> GateBuilder {
    Gate::builder()
        .token(next_token(size))
        .refresher(move |_: &Token| -> Result<Token, RefreshError> { Ok(next_token(size)) })
        .refresh_timeout(Duration::from_secs(30))
}

/// Median, 90th percentile and mean of `REFRESHES` refreshes, in microseconds.
fn measure(gate: &Gate) -> (f64, f64, f64) {
    for _ in 0..WARMUP {
        gate.lease().expect("refresh");
    }
    let before = gate.stats().refreshes;
    let mut times: Vec<f64> = (0..REFRESHES)
        .map(|_| {
            let t = Instant::now();
            gate.lease().expect("refresh");
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    assert_eq!(
        gate.stats().refreshes - before,
        REFRESHES as u64,
        "every lease was a refresh"
    );
    assert_eq!(gate.stats().store_errors, 0, "every save went through");
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    (times[times.len() / 2], times[times.len() * 9 / 10], mean)
}

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis(dir: &std::path::Path) -> (Redis, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("cannot start redis-server (Debian package redis-server)");
    let redis = Redis(child);
    let until = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    (redis, port)
}

fn main() {
    let dir = std::env::temp_dir().join(format!("tokengate-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_redis, port) = start_redis(&dir);
    let service = format!("tokengate-bench-{}", std::process::id());

    println!(
        "{REFRESHES} refreshes per row (after {WARMUP}), one thread; closure refresher (no HTTP)\n"
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>12}",
        "store", "median µs", "p90 µs", "mean µs", "+median µs"
    );
    let mut baseline = None;
    let mut row = |name: &str, gate: Result<Gate, String>| match gate {
        Ok(gate) => {
            let (median, p90, mean) = measure(&gate);
            let base = *baseline.get_or_insert(median);
            println!(
                "{name:<44} {median:>10.1} {p90:>10.1} {mean:>10.1} {:>12.1}",
                median - base
            );
        }
        Err(why) => println!("{name:<44} skipped: {why}"),
    };

    row("none", gate(1000).build().map_err(|e| e.to_string()));
    row(
        "FileStore (tmp dir)",
        gate(1000)
            .store(FileStore::new(dir.join("token.json")))
            .build()
            .map_err(|e| e.to_string()),
    );
    let keyring = |backend, account: &str| {
        KeyringStore::builder(&service, account)
            .backend(backend)
            .lock_path(dir.join(format!("{account}.lock")))
            .build()
    };
    for (name, backend, account, size) in [
        (
            "KeyringStore, kernel keyring",
            KeyringBackend::KernelKeyring,
            "k1",
            1000,
        ),
        (
            "KeyringStore, kernel keyring, 5 KB (3 parts)",
            KeyringBackend::KernelKeyring,
            "k5",
            5000,
        ),
        (
            "KeyringStore, Secret Service",
            KeyringBackend::SecretService,
            "s1",
            1000,
        ),
        (
            "KeyringStore, Secret Service, 5 KB (3 parts)",
            KeyringBackend::SecretService,
            "s5",
            5000,
        ),
    ] {
        let store = keyring(backend, account);
        let built = store
            .clone()
            .and_then(|store| gate(size).store(store).build())
            .map_err(|e| e.to_string());
        row(name, built);
        if let Ok(store) = store {
            store.clear().expect("cannot remove the bench's token");
        }
    }
    row(
        "RedisStore (loopback redis-server)",
        RedisStore::builder(format!("redis://127.0.0.1:{port}/0"))
            .key_prefix("bench:")
            .build()
            .and_then(|store| gate(1000).store(store).build())
            .map_err(|e| e.to_string()),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
