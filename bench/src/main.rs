//! The performance table of PERFORMANCE.md: what the token layer costs, measured against a bare ureq
//! agent on the embedded loopback server.
//!
//! ```text
//! cargo run --release -p tokengate-bench --bin bench                           # the full run (about 10 minutes)
//! TOKENGATE_BENCH_QUICK=1 cargo run --release -p tokengate-bench --bin bench   # a quick look (about a minute)
//! TOKENGATE_BENCH_ONLY=fast,request cargo run --release -p tokengate-bench --bin bench   # some sections only
//! TOKENGATE_BENCH_ONLY=throughput TOKENGATE_BENCH_THREADS=8 cargo run --release -p tokengate-bench --bin bench
//! ```
//!
//! Sections: `memory`, `fast`, `request`, `throughput`, `storm`, `short`. `TOKENGATE_BENCH_THREADS`
//! picks the throughput thread counts (default 1,2,8,64,256).
//!
//! Every figure is a ratio or a count where that is possible: the machine is small and shared, so
//! absolute times are noisy. Throughput runs alternate tokengate and the bare agent in one process:
//! the same threads switch sides every 50 ms or so (ABBA order), a paired round adds up one second
//! of each side, and the table reports the median of the per-round ratios with its 95% confidence
//! interval. The refresh storm is timed from the moment a barrier releases its 256 threads, against
//! the same burst of requests sent through bare ureq.
//!
//! A counting global allocator (per thread, switched on only around what it measures) proves that
//! the fast path does not allocate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use tokengate::ureq::{self, Agent};
use tokengate::{Client, Gate, OAuth2, Token};
use tokengate_testserver::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, TestServer};

// ---------------------------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------------------------

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Whether this thread's allocations are counted. `const` and `Copy`: reading it never allocates.
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
}

impl Counting {
    fn note(size: usize) {
        if COUNT_HERE.try_with(Cell::get).unwrap_or(false) {
            ALLOCS.fetch_add(1, Relaxed);
            ALLOC_BYTES.fetch_add(size as u64, Relaxed);
        }
    }
}

#[allow(
    unsafe_code,
    reason = "a global allocator cannot be written without `unsafe`; this one only forwards to `System`"
)]
// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counting
// touches only atomics and a const thread-local, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Counting::note(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Counting::note(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Counting::note(new_size);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (count, bytes) made by this thread while `f` runs.
fn count_allocs<R>(f: impl FnOnce() -> R) -> (R, u64, u64) {
    let (a0, b0) = (ALLOCS.load(Relaxed), ALLOC_BYTES.load(Relaxed));
    COUNT_HERE.with(|c| c.set(true));
    let r = f();
    COUNT_HERE.with(|c| c.set(false));
    (r, ALLOCS.load(Relaxed) - a0, ALLOC_BYTES.load(Relaxed) - b0)
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

struct Settings {
    quick: bool,
    /// Measured time per side in one throughput round (made of slices, see [`slicing`]).
    round: Duration,
    /// Paired rounds at the two target thread counts (8 and 256).
    target_rounds: usize,
    /// Paired rounds at the other thread counts (1, 2, 64).
    other_rounds: usize,
    /// Throughput thread counts to run (`TOKENGATE_BENCH_THREADS=8,256`; default all).
    thread_counts: Vec<usize>,
    /// Length of each short-token run.
    short_run: Duration,
    /// Paired rounds of 1-second against 1-hour tokens (each side [`Settings::round`] long).
    short_rounds: usize,
    /// Lease iterations per thread count for the fast path.
    fast_ops: u64,
    /// Refresh storms (each with its bare-ureq and valid-token bursts).
    storms: usize,
}

impl Settings {
    fn from_env() -> Settings {
        let quick = std::env::var_os("TOKENGATE_BENCH_QUICK").is_some_and(|v| v != "0");
        let thread_counts = std::env::var("TOKENGATE_BENCH_THREADS")
            .ok()
            .map(|v| v.split(',').filter_map(|t| t.trim().parse().ok()).collect())
            .unwrap_or_else(|| THREAD_COUNTS.to_vec());
        if quick {
            Settings {
                quick,
                round: Duration::from_millis(500),
                target_rounds: 6,
                other_rounds: 2,
                thread_counts,
                short_run: Duration::from_secs(2),
                short_rounds: 3,
                fast_ops: 2_000_000,
                storms: 3,
            }
        } else {
            Settings {
                quick,
                round: Duration::from_secs(1),
                target_rounds: 60,
                other_rounds: 10,
                thread_counts,
                short_run: Duration::from_secs(5),
                short_rounds: 10,
                fast_ops: 20_000_000,
                storms: 7,
            }
        }
    }
}

const THREAD_COUNTS: [usize; 5] = [1, 2, 8, 64, 256];
const TARGET_THREADS: [usize; 2] = [8, 256];
/// Idle keep-alive connections per host that both throughput clients keep: ureq's overall cap of
/// idle connections (10), so that up to 8 threads every request finds its connection again.
const IDLE_PER_HOST: usize = 10;
const STORM_THREADS: usize = 256;
const STORM_TOKEN_LATENCY: Duration = Duration::from_millis(100);
const SHORT_THREADS: usize = 32;
const SHORT_LIFETIME: Duration = Duration::from_secs(1);
/// Generous bound on any worker thread of this program, so a bug shows up as a failure, not a hang.
const WORKER_BOUND: Duration = Duration::from_secs(120);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(variant) = std::env::var(UPLOAD_CHILD) {
        return upload_child(&variant);
    }
    let s = Settings::from_env();
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "tokengate bench{}",
        if s.quick {
            " (QUICK mode: not for PERFORMANCE.md)"
        } else {
            ""
        }
    );
    println!("machine: {cores} cores, {}", cpu_model());
    println!();

    let only = std::env::var("TOKENGATE_BENCH_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);

    // First, while the process is still small: the memory of a demo-like workload.
    let memory = if wanted("memory") {
        Some(demo_memory()?)
    } else {
        None
    };
    if wanted("fast") {
        fast_path(&s, cores)?;
    }
    let alloc_rows = if wanted("request") || wanted("memory") {
        per_request_costs()?
    } else {
        Vec::new()
    };
    if wanted("throughput") {
        throughput(&s)?;
    }
    if wanted("storm") {
        storm(&s)?;
    }
    if wanted("short") {
        short_tokens(&s)?;
    }
    if wanted("upload") {
        upload_memory()?;
    }
    if let Some(memory) = memory {
        println!("\n## Memory");
        memory.print();
        for row in alloc_rows {
            println!("{row}");
        }
    }
    Ok(())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A 1-hour token pair from `server`, as a logged-in user would hold it.
fn login(server: &TestServer) -> Token {
    let issued = server.issue_token();
    Token::new(issued.access_token)
        .with_expires_in(Duration::from_secs(issued.expires_in))
        .with_refresh_token(issued.refresh_token)
}

fn refresher(server: &TestServer) -> OAuth2 {
    OAuth2::refresh_token(server.token_url())
        .client_id(DEMO_CLIENT_ID)
        .client_secret(DEMO_CLIENT_SECRET)
}

/// The client every measurement uses: the server's API, a token, a refresher.
fn client_for(server: &TestServer, token: Token) -> Result<Client, tokengate::Error> {
    Client::builder(format!("{}/api", server.url()))
        .token(token)
        .refresher(refresher(server))
        .build()
}

/// A bare ureq agent configured the way `ClientBuilder::build` configures tokengate's own: statuses
/// are not errors, no redirects, connect and response-head timeouts at tokengate's defaults, and
/// `idle_per_host` idle connections per host (3 is ureq's default and tokengate's).
fn agent_like_tokengate(idle_per_host: usize) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .max_idle_connections_per_host(idle_per_host)
        .build()
        .new_agent()
}

/// Reads a response body to the end (the connection goes back to the pool only then).
fn consume(body: ureq::Body) -> io::Result<u64> {
    io::copy(&mut body.into_reader(), &mut io::sink())
}

/// One way of sending "GET /api/items with the token" in a loop.
#[derive(Clone)]
enum Sender {
    Tokengate(Client),
    Raw {
        agent: Agent,
        url: String,
        authorization: String,
    },
}

impl Sender {
    fn name(&self) -> &'static str {
        match self {
            Sender::Tokengate(_) => "tokengate",
            Sender::Raw { .. } => "raw ureq",
        }
    }

    /// One request; `Ok(true)` when the server answered 200.
    fn send(&self) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        let resp = match self {
            Sender::Tokengate(c) => c.get("/items").call()?,
            Sender::Raw {
                agent,
                url,
                authorization,
            } => agent
                .get(url.as_str())
                .header("Authorization", authorization.as_str())
                .call()?,
        };
        let ok = resp.status() == 200;
        consume(resp.into_body())?;
        Ok(ok)
    }
}

/// Runs `threads` threads, each calling `work(thread_index, deadline)` once, and gathers what they
/// return; a thread that does not report within [`WORKER_BOUND`] is a failure.
fn run_threads<T: Send + 'static>(
    threads: usize,
    work: impl Fn(usize, &Barrier) -> T + Send + Sync + 'static,
) -> Result<Vec<T>, String> {
    let work = Arc::new(work);
    let barrier = Arc::new(Barrier::new(threads));
    let (tx, rx) = mpsc::channel();
    for i in 0..threads {
        let (work, barrier, tx) = (Arc::clone(&work), Arc::clone(&barrier), tx.clone());
        thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let _ = tx.send(work(i, &barrier));
            })
            .map_err(|e| format!("cannot spawn thread {i}: {e}"))?;
    }
    drop(tx);
    let deadline = Instant::now() + WORKER_BOUND;
    let mut out = Vec::with_capacity(threads);
    for _ in 0..threads {
        let left = deadline.saturating_duration_since(Instant::now());
        out.push(
            rx.recv_timeout(left)
                .map_err(|_| format!("a worker thread did not finish within {WORKER_BOUND:?}"))?,
        );
    }
    Ok(out)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `q` quantile of `sorted` (ascending), interpolating between neighbours.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => {
            let at = q * (n - 1) as f64;
            let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
        }
    }
}

/// A distribution-free 95% confidence interval of the median of `sorted` (ascending): the order
/// statistics n/2 -/+ 0.98 sqrt(n) (the normal approximation of the binomial); the whole range for
/// fewer than 8 values.
fn median_ci95(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let k = ((n as f64 - 1.96 * (n as f64).sqrt()) / 2.0)
        .floor()
        .max(0.0) as usize;
    (sorted[k], sorted[n - 1 - k])
}

/// The middle of a sample: its median, the median's 95% confidence interval and the interquartile
/// range.
struct Spread {
    median: f64,
    ci: (f64, f64),
    iqr: (f64, f64),
}

/// The [`Spread`] of `v` (sorted in place).
fn spread(v: &mut [f64]) -> Spread {
    let median = median(v);
    Spread {
        median,
        ci: median_ci95(v),
        iqr: (quantile(v, 0.25), quantile(v, 0.75)),
    }
}

/// The target column of a ratio: met or missed by the median, and whether the confidence interval
/// settles it.
fn verdict(median: f64, (lo, hi): (f64, f64), target: f64) -> String {
    let settled = if lo >= target || hi < target {
        "settled by the CI"
    } else {
        "the CI includes the target: not settled"
    };
    format!(">= {target}: {} ({settled})", pass(median >= target))
}

/// This thread's CPU time so far (`/proc/thread-self/schedstat`, nanoseconds), if Linux tells us.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn pass(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

// ---------------------------------------------------------------------------------------------
// Fast path
// ---------------------------------------------------------------------------------------------

/// The fast path: a lease and (a reference to) its ready-made `Authorization` header value.
fn lease_and_header(gate: &Gate) -> usize {
    match gate.lease() {
        Ok(lease) => std::hint::black_box(lease.authorization()).len(),
        Err(_) => 0,
    }
}

/// What `Client` does per request: the fast path, plus an owned header value for the request (a
/// reference-count increment, the bytes are not copied) and the confirm after the response.
fn as_client_does(gate: &Gate) -> usize {
    match gate.lease() {
        Ok(lease) => {
            let header = lease.authorization().clone();
            gate.confirm(&lease);
            std::hint::black_box(header).len()
        }
        Err(_) => 0,
    }
}

/// For scale: reading the monotonic clock, which the fast path does once.
fn clock_only(_: &Gate) -> usize {
    std::hint::black_box(Instant::now());
    1
}

struct FastRow {
    cpu_ns_per_op: f64,
    mops: f64,
    allocs_per_op: f64,
}

/// Runs `op` `per_thread` times on each of `threads` threads (after one uncounted pass).
fn measure_fast(
    gate: &Gate,
    threads: usize,
    per_thread: u64,
    op: fn(&Gate) -> usize,
) -> Result<FastRow, String> {
    let gate = gate.clone();
    let results = run_threads(threads, move |_, barrier| {
        let work = || {
            let mut sum = 0usize;
            for _ in 0..per_thread {
                sum += op(&gate);
            }
            std::hint::black_box(sum);
        };
        // One-time costs come before anything is counted: parking once makes parking_lot set up
        // this thread's parking data (a thread-local, and its table of parked threads grows with
        // the number of threads), and a first pass warms everything else.
        let (m, cv) = (parking_lot::Mutex::new(()), parking_lot::Condvar::new());
        cv.wait_for(&mut m.lock(), Duration::from_micros(1));
        barrier.wait();
        work();
        barrier.wait();
        let started = Instant::now();
        let cpu0 = thread_cpu_ns();
        let ((), allocs, _) = count_allocs(work);
        let cpu = cpu0.zip(thread_cpu_ns()).map(|(a, b)| b - a);
        (started.elapsed(), cpu, allocs)
    })?;
    let slowest = results.iter().map(|r| r.0).max().unwrap_or_default();
    let ops = per_thread as f64 * threads as f64;
    // CPU time, not wall time: on a shared machine a descheduled thread does no work, and with more
    // threads than cores each one waits for its turn. Wall time if Linux does not say.
    let cpu_ns: Option<u64> = results.iter().map(|r| r.1).sum();
    let total_ns = match cpu_ns {
        Some(ns) => ns as f64,
        None => results.iter().map(|r| r.0.as_nanos() as f64).sum(),
    };
    Ok(FastRow {
        cpu_ns_per_op: total_ns / ops,
        mops: ops / slowest.as_secs_f64() / 1e6,
        allocs_per_op: results.iter().map(|r| r.2).sum::<u64>() as f64 / ops,
    })
}

fn fast_path(s: &Settings, cores: usize) -> Result<(), Box<dyn std::error::Error>> {
    println!("## Fast path: Gate::lease() + its Authorization header value (valid token)");
    let gate = Gate::builder()
        .token(Token::new("ACCESS").with_expires_in(Duration::from_secs(3600)))
        .build()?;
    let mut counts: Vec<usize> = THREAD_COUNTS.to_vec();
    if !counts.contains(&cores) {
        counts.push(cores);
        counts.sort_unstable();
    }
    println!("threads  CPU ns/op  total Mops/s (wall)  allocs/op");
    for threads in counts {
        // Each thread runs long enough to outlast a scheduler time slice, so that with more threads
        // than cores the threads really overlap (and contend) instead of running one after another.
        let per_thread = (s.fast_ops / threads as u64).max(s.fast_ops / 20);
        let row = measure_fast(&gate, threads, per_thread, lease_and_header)?;
        let note = match threads {
            1 => format!(
                "  target < 50 ns and 0 allocs: {}",
                pass(row.cpu_ns_per_op < 50.0 && row.allocs_per_op == 0.0)
            ),
            t if t == cores => "  (= cores)".to_owned(),
            _ => String::new(),
        };
        println!(
            "{threads:>7}  {:>9.1}  {:>19.1}  {:>9}{note}",
            row.cpu_ns_per_op, row.mops, row.allocs_per_op
        );
    }
    let client = measure_fast(&gate, 1, s.fast_ops, as_client_does)?;
    let clock = measure_fast(&gate, 1, s.fast_ops, clock_only)?;
    println!(
        "1 thread, as Client uses it (+ owned header value + confirm): {:.1} ns/op, {} allocs/op: {}",
        client.cpu_ns_per_op,
        client.allocs_per_op,
        pass(client.allocs_per_op == 0.0)
    );
    println!(
        "for scale: Instant::now() alone (read once per lease): {:.1} ns",
        clock.cpu_ns_per_op
    );
    println!();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Per-request cost on the client thread (deterministic: allocations; steadier than wall time: CPU)
// ---------------------------------------------------------------------------------------------

fn per_request_costs() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    println!("## Per-request cost on the calling thread (1 thread, keep-alive, valid token)");
    let server = TestServer::start();
    let token = login(&server);
    let authorization = format!("Bearer {}", token.access_token().secret());
    let client = client_for(&server, token)?;
    let raw = Sender::Raw {
        agent: agent_like_tokengate(3),
        url: format!("{}/api/items", server.url()),
        authorization: authorization.clone(),
    };
    let tg = Sender::Tokengate(client.clone());
    const N: u64 = 2_000;
    /// Interleaved pairs of CPU-time measurements, and the requests in each.
    const PAIRS: usize = 41;
    const PER_PAIR: u64 = 1_000;
    let mut rows = Vec::new();
    println!(
        "client      allocs/request  bytes/request  CPU µs/request (median of {PAIRS}, interleaved)"
    );
    let send_n = |sender: &Sender, n: u64| -> Result<(), String> {
        for _ in 0..n {
            sender.send().map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    let mut allocs = Vec::new();
    for sender in [&tg, &raw] {
        send_n(sender, 200)?;
        let (r, count, bytes) = count_allocs(|| send_n(sender, N));
        r?;
        allocs.push((count as f64 / N as f64, bytes as f64 / N as f64));
    }
    // CPU time of this thread per request, the two clients taking turns (who goes first
    // alternates), so a change in the machine's speed weighs on both alike.
    let (mut cpu_tg, mut cpu_raw, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let cpu_of = |sender: &Sender| -> Result<Option<f64>, String> {
        let c0 = thread_cpu_ns();
        send_n(sender, PER_PAIR)?;
        Ok(c0
            .zip(thread_cpu_ns())
            .map(|(c0, c1)| (c1 - c0) as f64 / PER_PAIR as f64 / 1000.0))
    };
    for pair in 0..PAIRS {
        // New clients for every pair: how the kernel places a connection's two ends on the cores
        // changes the CPU time a request costs its sender by up to a third, and lasts as long as
        // the connection; with new connections it varies from pair to pair instead of favouring
        // one side throughout.
        let tg = Sender::Tokengate(client_for(&server, login(&server))?);
        let raw = Sender::Raw {
            agent: agent_like_tokengate(3),
            url: format!("{}/api/items", server.url()),
            authorization: authorization.clone(),
        };
        send_n(&tg, 50)?;
        send_n(&raw, 50)?;
        let (t, r) = if pair % 2 == 0 {
            let t = cpu_of(&tg)?;
            (t, cpu_of(&raw)?)
        } else {
            let r = cpu_of(&raw)?;
            (cpu_of(&tg)?, r)
        };
        if let (Some(t), Some(r)) = (t, r) {
            cpu_tg.push(t);
            cpu_raw.push(r);
            ratios.push(t / r);
        }
    }
    let cpu = [median(&mut cpu_tg), median(&mut cpu_raw)];
    for (i, sender) in [&tg, &raw].into_iter().enumerate() {
        println!(
            "{:<10}  {:>14.1}  {:>13.0}  {:>8.1}",
            sender.name(),
            allocs[i].0,
            allocs[i].1,
            cpu[i]
        );
    }
    let Spread {
        median: ratio,
        ci: (lo, hi),
        ..
    } = spread(&mut ratios);
    println!(
        "tokengate overhead: {:+.1} allocations per request; CPU per request x{ratio:.3} of bare ureq's (median of the pairs' ratios, 95% CI {lo:.3}..{hi:.3})",
        allocs[0].0 - allocs[1].0,
    );
    let (_, allocs, bytes) = count_allocs(|| {
        let clones: Vec<Client> = (0..1000).map(|_| client.clone()).collect();
        std::hint::black_box(clones.len())
    });
    // The Vec holding the clones is one allocation of 1000 * size_of::<Client>() bytes.
    let vec_bytes = 1000 * std::mem::size_of::<Client>() as u64;
    rows.push(format!(
        "bytes per Client clone: {} (size_of) + {} heap ({} allocations per clone)",
        std::mem::size_of::<Client>(),
        (bytes - vec_bytes) as f64 / 1000.0,
        (allocs - 1) as f64 / 1000.0
    ));
    println!();
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Throughput
// ---------------------------------------------------------------------------------------------

/// Requests per second of `sender` with `threads` threads for `run`, and the failures.
fn measure(sender: &Sender, threads: usize, run: Duration) -> Result<(f64, u64), String> {
    let sender2 = sender.clone();
    let results = run_threads(threads, move |_, barrier| {
        let sender = sender2.clone();
        barrier.wait();
        let started = Instant::now();
        let (mut ok, mut failed) = (0u64, 0u64);
        while started.elapsed() < run {
            match sender.send() {
                Ok(true) => ok += 1,
                _ => failed += 1,
            }
        }
        (ok, failed, started.elapsed())
    })?;
    let ok: u64 = results.iter().map(|r| r.0).sum();
    let failed: u64 = results.iter().map(|r| r.1).sum();
    let slowest = results.iter().map(|r| r.2).max().unwrap_or(run);
    Ok((ok as f64 / slowest.as_secs_f64(), failed))
}

/// Threads that keep sending requests through one of several senders, all switching to another
/// when told: the sides of a comparison take turns every few tens of milliseconds on the same
/// threads, the same connections and the same server, so a slow drift of the machine (the rate of a
/// 2-core VM wanders by 10-30% over a second or two) weighs on both sides alike.
struct Interleaved {
    /// Index of the sender every thread uses for its next request, or [`Interleaved::STOP`].
    phase: Arc<AtomicUsize>,
    /// Requests answered 200, per sender.
    ok: Arc<Vec<AtomicU64>>,
    failed: Arc<AtomicU64>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl Interleaved {
    const STOP: usize = usize::MAX;

    /// Starts `threads` threads sending through `senders[0]`.
    fn start(senders: &[Sender], threads: usize) -> Result<Interleaved, String> {
        let senders: Arc<[Sender]> = senders.into();
        let phase = Arc::new(AtomicUsize::new(0));
        let ok: Arc<Vec<AtomicU64>> = Arc::new(senders.iter().map(|_| AtomicU64::new(0)).collect());
        let failed = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let (my_senders, my_phase, my_ok, my_failed) = (
                Arc::clone(&senders),
                Arc::clone(&phase),
                Arc::clone(&ok),
                Arc::clone(&failed),
            );
            let spawned = thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    loop {
                        let side = my_phase.load(Relaxed);
                        let Some(sender) = my_senders.get(side) else {
                            return; // STOP
                        };
                        match sender.send() {
                            Ok(true) => my_ok[side].fetch_add(1, Relaxed),
                            _ => my_failed.fetch_add(1, Relaxed),
                        };
                    }
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    phase.store(Self::STOP, Relaxed);
                    return Err(format!("cannot spawn thread {i}: {e}"));
                }
            }
        }
        Ok(Interleaved {
            phase,
            ok,
            failed,
            handles,
        })
    }

    /// Switches every thread to `side`, lets `settle` pass (requests begun on the previous side
    /// finish meanwhile, and the side opens the connections it lacks; uncounted), then counts
    /// `side`'s answered requests and the server's API calls and new connections for `window`.
    fn slice(
        &self,
        side: usize,
        (window, settle): (Duration, Duration),
        server: &TestServer,
    ) -> Slice {
        self.phase.store(side, Relaxed);
        thread::sleep(settle);
        let (ok0, c0, t0) = (
            self.ok[side].load(Relaxed),
            server.counters(),
            Instant::now(),
        );
        thread::sleep(window);
        let (ok1, c1, t1) = (
            self.ok[side].load(Relaxed),
            server.counters(),
            Instant::now(),
        );
        Slice {
            requests: ok1 - ok0,
            secs: (t1 - t0).as_secs_f64(),
            api_calls: c1.api_calls - c0.api_calls,
            connections: c1.connections - c0.connections,
        }
    }

    /// One paired round of the senders `sides`, each counted on its own server: an uncounted
    /// warm-up slice of each (connections, server threads, caches), then `slices` pairs of slices in
    /// ABBA order (who goes first alternates from pair to pair and, by `round`, from round to round).
    fn paired_round(
        &self,
        sides: [usize; 2],
        servers: [&TestServer; 2],
        slicing: (Duration, Duration),
        slices: usize,
        round: usize,
    ) -> [Slice; 2] {
        for i in [0, 1] {
            self.slice(sides[i], slicing, servers[i]);
        }
        let mut got = [Slice::default(); 2];
        for k in 0..slices {
            let order = if (k + round).is_multiple_of(2) {
                [0, 1]
            } else {
                [1, 0]
            };
            for i in order {
                got[i].add(self.slice(sides[i], slicing, servers[i]));
            }
        }
        got
    }

    /// Stops every thread (each finishes its request in flight) and returns the failed requests.
    fn stop(self) -> Result<u64, String> {
        self.phase.store(Self::STOP, Relaxed);
        let deadline = Instant::now() + WORKER_BOUND;
        while self.handles.iter().any(|h| !h.is_finished()) {
            if Instant::now() > deadline {
                return Err(format!(
                    "a sender thread did not stop within {WORKER_BOUND:?}"
                ));
            }
            thread::sleep(Duration::from_millis(1));
        }
        for h in self.handles {
            h.join().map_err(|_| "a sender thread panicked")?;
        }
        Ok(self.failed.load(Relaxed))
    }
}

/// What one side did in one or more measured windows.
#[derive(Clone, Copy, Default)]
struct Slice {
    requests: u64,
    secs: f64,
    api_calls: u64,
    connections: u64,
}

impl Slice {
    fn add(&mut self, other: Slice) {
        self.requests += other.requests;
        self.secs += other.secs;
        self.api_calls += other.api_calls;
        self.connections += other.connections;
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }

    /// New connections the server accepted per 1000 API calls.
    fn conns_per_1k(&self) -> f64 {
        1000.0 * self.connections as f64 / self.api_calls.max(1) as f64
    }
}

/// The measured window of one slice of a throughput round, and the uncounted time before it.
///
/// Each side keeps at most [`IDLE_PER_HOST`] idle connections, so after a switch a side with more
/// threads than that opens the rest anew (about 0.1-0.2 ms each here): the settling time grows with
/// the threads, and the window with it, so the settling stays under a third of the slice.
fn slicing(threads: usize) -> (Duration, Duration) {
    let settle = Duration::from_millis(10) + Duration::from_micros(200) * threads as u32;
    (Duration::from_millis(50).max(settle * 2), settle)
}

/// Indices of the senders of the throughput comparison.
const TG: usize = 0;
const RAW: usize = 1;
const DEFAULT: usize = 2;

fn throughput(s: &Settings) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "## Loopback throughput: GET /api/items, requests/s, paired rounds of {:?} per side",
        s.round
    );
    println!(
        "raw ureq = an Agent configured like tokengate's (no status errors, no redirects, connect +"
    );
    println!(
        "response-head timeouts) sending a fixed Authorization header; both keep {IDLE_PER_HOST} idle connections"
    );
    println!(
        "per host. Each round starts new clients and threads; the threads take turns in slices, one side"
    );
    println!(
        "then the other, in ABBA order, each slice settling uncounted after the switch, then counting"
    );
    println!("(slice column: counted + settling ms).");
    println!(
        "ratio = tokengate / raw requests/s of a round; shown: the median of the rounds' ratios, its 95%"
    );
    println!(
        "confidence interval (order statistics) and their interquartile range. conns = new connections"
    );
    println!("per 1000 requests in the counted windows (tokengate / raw).");
    let server = TestServer::builder().workers(320).start();
    let token = login(&server);
    let authorization = format!("Bearer {}", token.access_token().secret());
    let url = format!("{}/api/items", server.url());
    // New clients (so new connections and pools) and new threads for every round: whatever the
    // placement of a connection's server thread or a client thread does to its speed then varies
    // from round to round, where the confidence interval sees it, instead of favouring one side
    // for a whole run.
    let senders = || -> Result<Vec<Sender>, tokengate::Error> {
        let mut senders = vec![
            Sender::Raw {
                agent: agent_like_tokengate(IDLE_PER_HOST),
                url: url.clone(),
                authorization: authorization.clone(),
            },
            Sender::Raw {
                agent: Agent::new_with_defaults(),
                url: url.clone(),
                authorization: authorization.clone(),
            },
        ];
        senders.insert(
            TG,
            Sender::Tokengate(
                Client::builder(format!("{}/api", server.url()))
                    .token(token.clone())
                    .refresher(refresher(&server))
                    .max_idle_connections_per_host(IDLE_PER_HOST)
                    .build()?,
            ),
        );
        debug_assert_eq!(senders[RAW].name(), "raw ureq");
        Ok(senders)
    };
    println!(
        "threads  rounds  slice   tokengate  raw req/s  ratio  95% CI        IQR           conns/1k  ureq-default  failed  target"
    );
    for &threads in &s.thread_counts {
        let target = TARGET_THREADS.contains(&threads);
        let rounds = if target {
            s.target_rounds
        } else {
            s.other_rounds
        };
        let slicing = slicing(threads);
        let slices = s.round.div_duration_f64(slicing.0).ceil() as usize;
        let (mut tg_rps, mut raw_rps, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut tg_all, mut raw_all, mut default) =
            (Slice::default(), Slice::default(), Slice::default());
        let mut failed = 0;
        for round in 0..rounds {
            let pool = Interleaved::start(&senders()?, threads)?;
            let [tg, raw] =
                pool.paired_round([TG, RAW], [&server, &server], slicing, slices, round);
            ratios.push(tg.rps() / raw.rps());
            tg_rps.push(tg.rps());
            raw_rps.push(raw.rps());
            tg_all.add(tg);
            raw_all.add(raw);
            // For scale, at the target counts: ureq with its defaults, a few slices every round.
            if target {
                pool.slice(DEFAULT, slicing, &server);
                for _ in 0..slices.div_ceil(5) {
                    default.add(pool.slice(DEFAULT, slicing, &server));
                }
            }
            failed += pool.stop()?;
        }
        let default = if target {
            format!("{:.0}", default.rps())
        } else {
            "-".to_owned()
        };
        let Spread {
            median: ratio,
            ci: (ci_lo, ci_hi),
            iqr: (q1, q3),
        } = spread(&mut ratios);
        let verdict = match threads {
            8 => verdict(ratio, (ci_lo, ci_hi), 0.99),
            256 => verdict(ratio, (ci_lo, ci_hi), 0.97),
            _ => String::new(),
        };
        let conns = format!(
            "{:.1} / {:.1}",
            tg_all.conns_per_1k(),
            raw_all.conns_per_1k()
        );
        let slice = format!("{}+{}", slicing.0.as_millis(), slicing.1.as_millis());
        println!(
            "{threads:>7}  {rounds:>6}  {slice:>6}  {:>9.0}  {:>9.0}  {ratio:.3}  {ci_lo:.3}..{ci_hi:.3}  {q1:.3}..{q3:.3}  {conns:>11}  {default:>12}  {failed:>6}  {verdict}",
            median(&mut tg_rps),
            median(&mut raw_rps),
        );
    }
    let c = server.counters();
    println!(
        "(server saw {} API calls on {} connections, {} rejected, {} token requests)",
        c.api_calls, c.connections, c.api_rejected, c.token_requests
    );
    println!();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Refresh storm
// ---------------------------------------------------------------------------------------------

/// One burst: `threads` threads wait at a barrier, then each calls `request` once (`Ok(true)`: answered
/// 200). Every thread's time counts from the moment the barrier opens (when the last thread arrives),
/// so the slowest thread's time is how long the whole burst took. Returns the times, ascending.
fn burst(
    threads: usize,
    request: impl Fn() -> Result<bool, String> + Send + Sync + 'static,
) -> Result<Vec<f64>, String> {
    let results = run_threads(threads, move |_, barrier| {
        let arrived = Instant::now();
        barrier.wait();
        let answered = request();
        (arrived, Instant::now(), answered)
    })?;
    let opened = results
        .iter()
        .map(|r| r.0)
        .max()
        .ok_or("a burst of no threads")?;
    let mut times = Vec::with_capacity(threads);
    for (_, done, answered) in results {
        match answered {
            Ok(true) => times.push(done.saturating_duration_since(opened).as_secs_f64()),
            Ok(false) => return Err("a request was not answered 200".to_owned()),
            Err(e) => return Err(e),
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// A burst of `GET /api/items` through `sender`.
fn sender_burst(sender: Sender, threads: usize) -> Result<Vec<f64>, String> {
    burst(threads, move || sender.send().map_err(|e| e.to_string()))
}

/// A burst through `client`.
fn client_burst(client: &Client, threads: usize) -> Result<Vec<f64>, String> {
    sender_burst(Sender::Tokengate(client.clone()), threads)
}

fn expired_token(server: &TestServer) -> Token {
    let issued = server.issue_token();
    Token::new(issued.access_token)
        .with_expires_in(Duration::ZERO)
        .with_refresh_token(issued.refresh_token)
}

fn slowest(times: &[f64]) -> f64 {
    times.last().copied().unwrap_or(f64::NAN)
}

fn storm(s: &Settings) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "## Refresh storm: {STORM_THREADS} threads meet an expired token, token endpoint latency {STORM_TOKEN_LATENCY:?}, {} storms",
        s.storms
    );
    println!(
        "Each burst: {STORM_THREADS} threads (a new client each time, so new connections) wait at a barrier, then"
    );
    println!(
        "send one request each; every thread's time counts from the moment the barrier opens."
    );
    let server = TestServer::builder()
        .token_latency(STORM_TOKEN_LATENCY)
        .workers(320)
        .start();
    // The refresh's own latency: one thread meeting an expired token (the refresh, then one
    // request) against one thread with a valid token (one request), each on a new client.
    let (mut expired, mut fresh) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let client = client_for(&server, expired_token(&server))?;
        expired.push(slowest(&client_burst(&client, 1)?));
        let client = client_for(&server, login(&server))?;
        fresh.push(slowest(&client_burst(&client, 1)?));
    }
    let (one_expired, one_valid) = (median(&mut expired), median(&mut fresh));
    let refresh = one_expired - one_valid;
    // Bursts and storms take turns, so each sees the machine as the others do.
    let (mut raw, mut valid, mut storms, mut medians) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut refreshes, mut api_calls, mut api_ok) = (Vec::new(), Vec::new(), Vec::new());
    let mut stats = None;
    for _ in 0..s.storms {
        // The same requests without a token layer: bare ureq with a fixed header.
        let bare = Sender::Raw {
            agent: agent_like_tokengate(3),
            url: format!("{}/api/items", server.url()),
            authorization: format!("Bearer {}", login(&server).access_token().secret()),
        };
        raw.push(slowest(&sender_burst(bare, STORM_THREADS)?));
        // Through tokengate with a valid token.
        valid.push(slowest(&client_burst(
            &client_for(&server, login(&server))?,
            STORM_THREADS,
        )?));
        // The storm.
        let client = client_for(&server, expired_token(&server))?;
        server.reset_counters();
        let mut times = client_burst(&client, STORM_THREADS)?;
        let c = server.counters();
        refreshes.push(c.token_requests);
        api_calls.push(c.api_calls);
        api_ok.push(c.api_ok);
        storms.push(slowest(&times));
        medians.push(median(&mut times));
        stats = Some(client.stats());
    }
    let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
    println!(
        "refresh calls per storm (token endpoint): {}  target 1: {}",
        list(&refreshes),
        pass(refreshes.iter().all(|&r| r == 1))
    );
    println!(
        "API calls per storm: {} (answered 200: {})  target {STORM_THREADS}: {}",
        list(&api_calls),
        list(&api_ok),
        pass(
            api_calls
                .iter()
                .chain(&api_ok)
                .all(|&n| n == STORM_THREADS as u64)
        )
    );
    let ms = |v: f64| v * 1e3;
    let (raw_burst, valid_burst) = (median(&mut raw), median(&mut valid));
    let storm = median(&mut storms); // sorts them, for the range below
    println!(
        "one thread (medians of 5): expired token {:.1} ms, valid token {:.1} ms, so the refresh takes {:.1} ms",
        ms(one_expired),
        ms(one_valid),
        ms(refresh)
    );
    println!(
        "a burst of {STORM_THREADS} requests, slowest thread (medians): bare ureq {:.1} ms, tokengate with a valid token {:.1} ms",
        ms(raw_burst),
        ms(valid_burst)
    );
    println!(
        "storm: slowest thread {:.1} ms (median of {}; range {:.1}..{:.1}), median thread {:.1} ms",
        ms(storm),
        storms.len(),
        ms(storms[0]),
        ms(slowest(&storms)),
        ms(median(&mut medians))
    );
    let target = refresh + raw_burst;
    println!(
        "target: slowest <= 1.2 x (the refresh + one round trip of the burst, bare) = 1.2 x {:.1} ms = {:.1} ms: {} ({:.2}x)",
        ms(target),
        ms(target * 1.2),
        pass(storm <= target * 1.2),
        storm / target
    );
    println!(
        "  the storm's slowest thread minus the bare burst's: {:.1} ms, against {:.1} ms for the refresh",
        ms(storm - raw_burst),
        ms(refresh)
    );
    if let Some(stats) = stats {
        println!("gate (last storm): {stats:?}");
    }

    // The gate alone, no HTTP: a closure refresher that sleeps as long as the token endpoint does.
    // What the slowest thread waits beyond that is the cost of waking 255 threads.
    let mut wake = Vec::new();
    for _ in 0..3 {
        let gate = Gate::builder()
            .token(Token::new("OLD").with_expires_in(Duration::ZERO))
            .refresher(|_: &Token| {
                thread::sleep(STORM_TOKEN_LATENCY);
                Ok(Token::new("NEW").with_expires_in(Duration::from_secs(3600)))
            })
            .build()?;
        let times = burst(STORM_THREADS, move || Ok(gate.lease().is_ok()))?;
        wake.push(slowest(&times) - STORM_TOKEN_LATENCY.as_secs_f64());
    }
    println!(
        "gate alone (closure refresher sleeping {STORM_TOKEN_LATENCY:?}): the slowest of {STORM_THREADS} threads gets its token {:.2} ms after the refresh (median of 3)",
        ms(median(&mut wake))
    );
    println!();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Short tokens
// ---------------------------------------------------------------------------------------------

struct ShortRun {
    rps: f64,
    failed: u64,
    /// API calls the server answered as unauthorized.
    rejected: u64,
    refreshes: u64,
    /// Tokens whose refresh point (expiry minus the window) passed during the run.
    due: u64,
}

fn short_run(lifetime: Duration, run: Duration) -> Result<ShortRun, Box<dyn std::error::Error>> {
    let server = TestServer::builder()
        .token_lifetime(lifetime)
        .workers(64)
        .start();
    let client = client_for(&server, login(&server))?;
    // A watcher samples the current token every millisecond and notes each one's expiry.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (client, stop) = (client.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut seen: Vec<(Arc<Token>, Option<Instant>)> = Vec::new();
            while !stop.load(Relaxed) {
                if let Some(t) = client.token()
                    && !seen.iter().any(|(s, _)| Arc::ptr_eq(s, &t))
                {
                    let at = t.expires_at();
                    seen.push((t, at));
                }
                thread::sleep(Duration::from_millis(1));
            }
            seen
        })
    };
    server.reset_counters();
    let (rps, failed) = measure(&Sender::Tokengate(client.clone()), SHORT_THREADS, run)?;
    let end = Instant::now();
    stop.store(true, Relaxed);
    let seen = watcher.join().map_err(|_| "the watcher thread panicked")?;
    // The gate's window for a token of lifetime L is min(60 s, L / 10).
    let window = Duration::from_secs(60).min(lifetime / 10);
    let due = seen
        .iter()
        .filter(|(_, at)| at.is_some_and(|at| at.checked_sub(window).unwrap_or(at) <= end))
        .count() as u64;
    let c = server.counters();
    Ok(ShortRun {
        rps,
        failed,
        rejected: c.api_rejected,
        refreshes: c.refresh_attempts,
        due,
    })
}

fn short_tokens(s: &Settings) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "## Short tokens: {SHORT_THREADS} threads, {SHORT_LIFETIME:?} tokens: one {:?} run alone, then against 1-hour tokens",
        s.short_run
    );
    // Refreshes per expiry: 1-second tokens alone for the whole run.
    let alone = short_run(SHORT_LIFETIME, s.short_run)?;
    println!(
        "1 s tokens alone: {} refreshes for {} tokens that reached their refresh point: {:.2} per expiry  target 1.0: {}",
        alone.refreshes,
        alone.due,
        alone.refreshes as f64 / alone.due.max(1) as f64,
        pass(alone.refreshes == alone.due)
    );
    println!(
        "  {:.0} requests/s; failed requests: {}; rejected by the server: {}",
        alone.rps, alone.failed, alone.rejected
    );
    // Throughput against 1-hour tokens, each on a server of its own, the two clients taking turns
    // on the same threads as in the throughput section (new clients and threads every round).
    let short_server = TestServer::builder()
        .token_lifetime(SHORT_LIFETIME)
        .workers(64)
        .start();
    let long_server = TestServer::builder()
        .token_lifetime(Duration::from_secs(3600))
        .workers(64)
        .start();
    let servers = [&short_server, &long_server];
    let slicing = slicing(SHORT_THREADS);
    let slices = s.round.div_duration_f64(slicing.0).ceil() as usize;
    let (mut ratios, mut short_rps, mut long_rps, mut failed) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    for round in 0..s.short_rounds {
        let senders = [
            Sender::Tokengate(client_for(&short_server, login(&short_server))?),
            Sender::Tokengate(client_for(&long_server, login(&long_server))?),
        ];
        let pool = Interleaved::start(&senders, SHORT_THREADS)?;
        let got = pool.paired_round([0, 1], servers, slicing, slices, round);
        failed += pool.stop()?;
        ratios.push(got[0].rps() / got[1].rps());
        short_rps.push(got[0].rps());
        long_rps.push(got[1].rps());
    }
    let (short_c, long_c) = (short_server.counters(), long_server.counters());
    let Spread {
        median: ratio,
        ci: (lo, hi),
        ..
    } = spread(&mut ratios);
    println!(
        "taking turns, {} rounds of {:?} per side: 1 s tokens {:.0} req/s, 1 h tokens {:.0} req/s (medians)",
        s.short_rounds,
        s.round,
        median(&mut short_rps),
        median(&mut long_rps)
    );
    println!(
        "  ratio {ratio:.3} (median of the rounds; 95% CI {lo:.3}..{hi:.3})  target >= 0.9: {}",
        pass(ratio >= 0.9)
    );
    println!(
        "  failed requests: {failed}; rejected by the server: {} (1 s) / {} (1 h); refreshes: {} (1 s) / {} (1 h)",
        short_c.api_rejected,
        long_c.api_rejected,
        short_c.refresh_attempts,
        long_c.refresh_attempts
    );
    println!();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Memory of a demo-like workload
// ---------------------------------------------------------------------------------------------

struct Memory {
    rss_before_kb: u64,
    rss_kb: u64,
    hwm_kb: u64,
    requests: f64,
}

impl Memory {
    fn print(&self) {
        println!(
            "demo-like workload (16 threads, 1 s tokens, 50 ms token endpoint, 4 s, server in-process, {:.0} requests):",
            self.requests
        );
        println!(
            "  VmRSS {} KiB after (before: {} KiB), VmHWM {} KiB",
            self.rss_kb, self.rss_before_kb, self.hwm_kb
        );
    }
}

fn proc_status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn demo_memory() -> Result<Memory, Box<dyn std::error::Error>> {
    let rss_before_kb = proc_status_kb("VmRSS:");
    let server = TestServer::builder()
        .token_lifetime(Duration::from_secs(1))
        .token_latency(Duration::from_millis(50))
        .start();
    let client = client_for(&server, login(&server))?;
    let (rps, _) = measure(&Sender::Tokengate(client), 16, Duration::from_secs(4))?;
    Ok(Memory {
        rss_before_kb,
        rss_kb: proc_status_kb("VmRSS:"),
        hwm_kb: proc_status_kb("VmHWM:"),
        requests: rps * 4.0,
    })
}

// ---------------------------------------------------------------------------------------------
// Memory of a 50 MiB upload: streamed, from a file, and from memory
// ---------------------------------------------------------------------------------------------

/// Set in a child process of the bench: which upload it makes.
const UPLOAD_CHILD: &str = "TOKENGATE_BENCH_UPLOAD_CHILD";
/// The sink's URL, for the child.
const UPLOAD_URL: &str = "TOKENGATE_BENCH_UPLOAD_URL";
const UPLOAD_BYTES: u64 = 50 * 1024 * 1024;

/// `UPLOAD_BYTES` bytes made as they are read.
struct Pattern(u64);

impl io::Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(usize::try_from(self.0).unwrap_or(usize::MAX));
        buf[..n].fill(b'u');
        self.0 -= n as u64;
        Ok(n)
    }
}

/// Peak resident memory of a child process that makes one upload to a sink in this process (the
/// sink counts the bytes and keeps none), so the figure is the client's alone.
fn upload_memory() -> Result<(), Box<dyn std::error::Error>> {
    let sink = tokengate_testserver::RawServer::start(|req| {
        tokengate_testserver::RawReply::json(200, &format!(r#"{{"body_len":{}}}"#, req.body_len))
    });
    let dir = tokengate_testserver::support::temp_dir("bench-upload");
    let file = dir.path().join("upload.bin");
    io::copy(
        &mut Pattern(UPLOAD_BYTES),
        &mut std::fs::File::create(&file)?,
    )?;
    println!("\n## Upload memory (50 MiB, child process, peak VmHWM)");
    println!("| body | peak RSS | bytes the server got |");
    println!("|---|---|---|");
    for (variant, what) in [
        ("none", "no body (baseline: same client, one small request)"),
        ("reader", "`send_reader` (a generated stream)"),
        ("seekable", "`send_seekable` (a file)"),
        ("bytes", "`send` (a `Vec<u8>` in memory)"),
    ] {
        let out = std::process::Command::new(std::env::current_exe()?)
            .env(UPLOAD_CHILD, variant)
            .env(UPLOAD_URL, sink.url())
            .env("TOKENGATE_BENCH_UPLOAD_FILE", &file)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |k: &str| {
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .unwrap_or("?")
                .to_owned()
        };
        if !out.status.success() {
            return Err(format!(
                "upload child {variant} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        println!(
            "| {what} | {} MiB | {} |",
            field("hwm_mib="),
            field("received=")
        );
    }
    Ok(())
}

fn upload_child(variant: &str) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder(std::env::var(UPLOAD_URL)?)
        .token(Token::new("bench"))
        .build()?;
    let post = client.post("/upload");
    let resp = match variant {
        "none" => post.call()?,
        "reader" => post.send_reader(Pattern(UPLOAD_BYTES))?,
        "seekable" => post.send_seekable(std::fs::File::open(std::env::var(
            "TOKENGATE_BENCH_UPLOAD_FILE",
        )?)?)?,
        "bytes" => {
            let mut body = Vec::new();
            io::Read::read_to_end(&mut Pattern(UPLOAD_BYTES), &mut body)?;
            post.send(body)?
        }
        other => return Err(format!("unknown upload variant {other}").into()),
    };
    let v: serde_json::Value = resp.into_body().read_json()?;
    println!(
        "received={} hwm_mib={:.1}",
        v["body_len"],
        proc_status_kb("VmHWM:") as f64 / 1024.0
    );
    Ok(())
}
