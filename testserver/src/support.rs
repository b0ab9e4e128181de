//! Helpers shared by the workspace's tests: tokengate's integration tests, the C ABI tests and this
//! crate's own. One [`PATIENCE`] bounds every wait, threads released together turn a hang into a
//! failure ([`on_threads`]), [`eventually`] polls with a deadline, and [`temp_dir`] makes scratch
//! directories.
//!
//! The core crate's unit tests keep their own small copies: they must not depend on this crate.

use std::path::Path;
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Upper bound on anything a test waits for. Reaching it fails the test; it is never the expected
/// path.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Runs `f(i)` for `i` in `0..n` on `n` threads released together by a barrier, and returns the
/// results in index order.
///
/// # Panics
///
/// When a thread panics or does not finish within [`PATIENCE`]: the test fails instead of hanging.
pub fn on_threads<T: Send + 'static>(
    n: usize,
    f: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(n));
    let (tx, rx) = mpsc::sync_channel(n);
    for i in 0..n {
        let (f, barrier, tx) = (Arc::clone(&f), Arc::clone(&barrier), tx.clone());
        thread::spawn(move || {
            barrier.wait();
            let out = f(i);
            let _ = tx.send((i, out));
        });
    }
    // Only the threads hold senders now: when every one of them is gone, `recv` stops waiting.
    drop(tx);
    let deadline = Instant::now() + PATIENCE;
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for _ in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, v) = rx
            .recv_timeout(left)
            .expect("a thread hung (or panicked) instead of returning");
        out[i] = Some(v);
    }
    out.into_iter().flatten().collect()
}

/// Polls `cond` every millisecond until it holds.
///
/// # Panics
///
/// When `cond` still does not hold after [`PATIENCE`]; the message names `what`.
pub fn eventually(what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// What [`temp_dir`] returns: `tempfile`'s guard, re-exported so tests can name it.
pub use tempfile::TempDir;

/// A new, empty directory under the system temp dir, named `tokengate-<tag>-<random>` and removed
/// with its contents when the returned guard drops.
///
/// # Panics
///
/// When the directory cannot be created (a test cannot go on without it).
pub fn temp_dir(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("tokengate-{tag}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"))
}

/// Names of the entries in `dir`, sorted.
///
/// # Panics
///
/// When the directory or one of its entries cannot be read.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("unreadable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}
