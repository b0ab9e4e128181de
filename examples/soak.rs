//! Soak: many threads on one client for a while against a loopback OAuth2 server that misbehaves the
//! way real ones do. Checks that nothing is lost (every request ends in a response or a typed error),
//! that the server never sees two refreshes at once, and that dropping the client leaves no thread,
//! no file descriptor behind. Exits non-zero when an invariant is violated.
//!
//! ```text
//! cargo run --release --example soak                 # 64 threads, 5 s (CI runs this in debug)
//! cargo run --release --example soak -- --seconds 30 # the long run in TESTING.md
//! ```
//!
//! Server: tokens live 200 ms (reported exactly, as `expires_in: 0.2`), the token endpoint takes
//! 0-100 ms (uniformly jittered), 10% of refreshes fail with a transient 503, and a revoker thread
//! revokes every access token at random moments (every 100-900 ms). The client runs with the
//! default gate settings: the 503s must cost callers a wait, never an error.
//!
//! Linux only for the thread / file-descriptor / memory figures (`/proc/self`); elsewhere they are
//! reported as unknown and not checked.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use tokengate::{Client, Error, OAuth2, Token};
use tokengate_testserver::{Failure, TestServer};

const DEFAULT_SECONDS: u64 = 5;
const DEFAULT_THREADS: usize = 64;
const TOKEN_LIFETIME: Duration = Duration::from_millis(200);
const LATENCY_JITTER: Duration = Duration::from_millis(100);
const TRANSIENT_FAILURE_RATE: f64 = 0.1;
/// Revocations come every REVOKE_MIN + (0..REVOKE_SPREAD) ms.
const REVOKE_MIN_MS: u64 = 100;
const REVOKE_SPREAD_MS: u64 = 800;
/// How long after the run every worker must have reported; past it a worker counts as hung.
const GRACE: Duration = Duration::from_secs(60);
/// How long threads and descriptors get to go away after the drop.
const SETTLE: Duration = Duration::from_secs(10);

/// What one worker thread saw.
#[derive(Default)]
struct Tally {
    started: u64,
    ok: u64,
    /// Responses that were not 2xx (e.g. a 401 after the one replay), by status.
    statuses: BTreeMap<u16, u64>,
    /// Typed errors, by variant.
    errors: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn ended(&self) -> u64 {
        self.ok + self.statuses.values().sum::<u64>() + self.errors.values().sum::<u64>()
    }

    fn add(&mut self, other: Tally) {
        self.started += other.started;
        self.ok += other.ok;
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::LoginRequired(_) => "LoginRequired",
        Error::Refresh(e) if e.is_transient() => "Refresh (transient)",
        Error::Refresh(_) => "Refresh (other)",
        Error::RefreshTimeout(_) => "RefreshTimeout",
        Error::RefresherPanicked => "RefresherPanicked",
        Error::Transport(_) => "Transport",
        Error::Store(_) => "Store",
        _ => "other",
    }
}

/// Entries of a `/proc/self` directory (threads, descriptors), if there is one.
fn count_dir(path: &str) -> Option<usize> {
    std::fs::read_dir(path).ok().map(Iterator::count)
}

/// A `/proc/self/status` field in kB (e.g. `VmHWM`, the peak resident set).
fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Counts `/proc/self/task` (or `/proc/self/fd`) until it is back to `baseline` or SETTLE passes.
fn settle(path: &str, baseline: Option<usize>) -> Option<usize> {
    let until = Instant::now() + SETTLE;
    loop {
        let now = count_dir(path);
        if now <= baseline || Instant::now() >= until {
            return now;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn show(n: Option<usize>) -> String {
    n.map_or_else(|| "unknown".to_owned(), |n| n.to_string())
}

fn args() -> Result<(Duration, usize), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut threads = DEFAULT_THREADS;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--seconds" => seconds = n,
            "--threads" => threads = n.max(1) as usize,
            _ => {
                return Err(format!(
                    "unknown flag {flag} (known: --seconds N, --threads N)"
                ));
            }
        }
    }
    Ok((Duration::from_secs(seconds), threads))
}

fn main() -> ExitCode {
    let (run_for, threads) = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    let tasks_before = count_dir("/proc/self/task");
    let fds_before = count_dir("/proc/self/fd");

    let server = TestServer::builder()
        .token_lifetime(TOKEN_LIFETIME)
        .token_latency_jitter(LATENCY_JITTER)
        .transient_failure_rate(TRANSIENT_FAILURE_RATE)
        .workers(threads + 8)
        .start();
    // Report the real sub-second lifetime (by default the server rounds it up to whole seconds).
    server.set_failure(Failure::ExpiresIn(serde_json::json!(
        TOKEN_LIFETIME.as_secs_f64()
    )));
    let issued = server.issue_token();
    let client = Client::builder(format!("{}/api", server.url()))
        .token(
            Token::new(issued.access_token)
                .with_expires_in(TOKEN_LIFETIME)
                .with_refresh_token(issued.refresh_token),
        )
        .refresher(
            OAuth2::refresh_token(server.token_url())
                .client_id("demo-client")
                .client_secret("demo-secret"),
        )
        .build()
        .expect("a valid configuration");
    println!(
        "soak: {threads} threads for {run_for:?}; tokens live {TOKEN_LIFETIME:?}, token endpoint \
         0-{LATENCY_JITTER:?}, {}% transient failures, revocations every {REVOKE_MIN_MS}-{} ms",
        TRANSIENT_FAILURE_RATE * 100.0,
        REVOKE_MIN_MS + REVOKE_SPREAD_MS
    );

    let started = Instant::now();
    let deadline = started + run_for;
    let (tx, rx) = crossbeam_channel::unbounded();
    for i in 0..threads {
        let (client, tx) = (client.clone(), tx.clone());
        thread::Builder::new()
            .name(format!("soak-{i}"))
            .spawn(move || {
                let mut t = Tally::default();
                while Instant::now() < deadline {
                    t.started += 1;
                    match client.get(&format!("/soak/{i}")).call() {
                        Ok(mut r) => {
                            // Read the body so the connection goes back to the pool.
                            let _ = r.body_mut().read_to_vec();
                            if r.status().is_success() {
                                t.ok += 1;
                            } else {
                                *t.statuses.entry(r.status().as_u16()).or_default() += 1;
                            }
                        }
                        Err(e) => *t.errors.entry(kind(&e)).or_default() += 1,
                    }
                }
                let _ = tx.send(t);
            })
            .expect("spawn a worker");
    }
    drop(tx);

    let revocations = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let (total, reported) = {
        let (revocations, stop, server) = (&revocations, &stop, &server);
        thread::scope(|s| {
            let revoker = s.spawn(move || {
                let mut seed = 0x2545_F491_4F6C_DD1D_u64;
                while !stop.load(Relaxed) && Instant::now() < deadline {
                    // xorshift64: reproducible, good enough to spread the revocations.
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    thread::sleep(Duration::from_millis(
                        REVOKE_MIN_MS + seed % REVOKE_SPREAD_MS,
                    ));
                    if Instant::now() < deadline {
                        server.revoke_all();
                        revocations.fetch_add(1, Relaxed);
                    }
                }
            });
            let mut total = Tally::default();
            let mut reported = 0;
            let wait_until = deadline + GRACE;
            while reported < threads {
                let left = wait_until.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(t) => {
                        total.add(t);
                        reported += 1;
                    }
                    Err(_) => break,
                }
            }
            stop.store(true, Relaxed);
            let _ = revoker.join();
            (total, reported)
        })
    };
    let elapsed = started.elapsed();
    let revocations = revocations.load(Relaxed);
    let server_counters = server.counters();
    let stats = client.stats();

    drop(client);
    drop(server);
    let tasks_after = settle("/proc/self/task", tasks_before);
    let fds_after = settle("/proc/self/fd", fds_before);
    let peak_rss_kb = status_kb("VmHWM:");

    let expiries = (elapsed.as_secs_f64() / TOKEN_LIFETIME.as_secs_f64()).floor() as u64;
    let ended = total.ended();
    println!();
    println!("requests started          {}", total.started);
    println!("  succeeded (2xx)         {}", total.ok);
    for (status, n) in &total.statuses {
        println!("  HTTP {status} returned         {n}");
    }
    for (kind, n) in &total.errors {
        println!("  error {kind:<19} {n}");
    }
    println!(
        "  ended (sum)             {ended}   lost: {}",
        total.started as i64 - ended as i64
    );
    println!("workers reported          {reported} of {threads}");
    println!(
        "requests per second       {:.0}",
        total.started as f64 / elapsed.as_secs_f64()
    );
    println!(
        "refreshes (server)        {} of {} attempts; {} injected 503s",
        server_counters.refreshes,
        server_counters.refresh_attempts,
        server_counters.injected_failures
    );
    println!(
        "expiries + revocations    {expiries} + {revocations} = {}",
        expiries + revocations
    );
    println!(
        "client: waits {}, replays {}, refresh failures {}",
        stats.waits, stats.replays, stats.refresh_failures
    );
    println!(
        "max concurrent refreshes  {}",
        server_counters.max_concurrent_refreshes
    );
    println!(
        "threads before / after    {} / {}",
        show(tasks_before),
        show(tasks_after)
    );
    println!(
        "fds before / after        {} / {}",
        show(fds_before),
        show(fds_after)
    );
    println!(
        "peak RSS (VmHWM)          {}",
        peak_rss_kb.map_or_else(
            || "unknown".to_owned(),
            |kb| format!("{:.1} MiB", kb as f64 / 1024.0)
        )
    );

    let mut violations = Vec::new();
    if reported < threads {
        violations.push(format!("{} worker threads hung", threads - reported));
    }
    if ended != total.started {
        violations.push(format!(
            "{} requests lost",
            total.started as i64 - ended as i64
        ));
    }
    if server_counters.max_concurrent_refreshes > 1 {
        violations.push(format!(
            "{} refreshes in flight at once",
            server_counters.max_concurrent_refreshes
        ));
    }
    // A token lives until its advisory window (4/5 of its lifetime) or a revocation; a revocation
    // during a refresh can cost one more. More than that is a refresh storm.
    let storm_bound = expiries * 5 / 4 + 2 * revocations + 2;
    if server_counters.refreshes > storm_bound {
        violations.push(format!(
            "{} refreshes for {expiries} expiries and {revocations} revocations (bound {storm_bound})",
            server_counters.refreshes
        ));
    }
    if server_counters.reuse_detected > 0 || server_counters.invalid_grant > 0 {
        violations.push("a refresh token was lost (the server saw a reused or invalid one)".into());
    }
    if tasks_after > tasks_before {
        violations.push(format!(
            "{} threads still alive after the drop",
            tasks_after.unwrap_or(0) - tasks_before.unwrap_or(0)
        ));
    }
    if fds_after > fds_before {
        violations.push(format!(
            "{} file descriptors leaked",
            fds_after.unwrap_or(0) - fds_before.unwrap_or(0)
        ));
    }
    if total.ok == 0 {
        violations.push("no request succeeded".into());
    }
    // The injected 503s are short: requests wait through them (within their budget) rather than
    // fail. Any refresh error or refresh timeout a caller saw is a flaw.
    let refresh_errors: u64 = total
        .errors
        .iter()
        .filter(|(k, _)| k.starts_with("Refresh"))
        .map(|(_, n)| n)
        .sum();
    if refresh_errors > 0 {
        violations.push(format!(
            "{refresh_errors} refresh errors reached callers ({} injected 503s should cost a \
             wait, not an error)",
            server_counters.injected_failures
        ));
    }
    if violations.is_empty() {
        println!("\nsoak: all invariants held");
        ExitCode::SUCCESS
    } else {
        for v in &violations {
            eprintln!("soak: VIOLATED: {v}");
        }
        ExitCode::FAILURE
    }
}
