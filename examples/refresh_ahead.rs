//! Measures request latency across consecutive token expiries: does any request wait for a refresh?
//!
//! ```text
//! cargo run --release --example refresh_ahead
//! ```
//!
//! 16 threads call the loopback API without pause while 3-second tokens expire 10 times and every
//! refresh takes 200 ms at the token endpoint. Four set-ups are compared: a token that never expires
//! (the baseline), the mandatory window only (threads block on the gate's condition variable at each
//! expiry), the advisory window (default: the first request inside it refreshes on a short-lived
//! thread), and the background refresher. `TOKENGATE_BENCH_EXPIRIES` changes the number of expiries.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tokengate::{Client, OAuth2, Token};
use tokengate_testserver::TestServer;

const THREADS: usize = 16;
const LIFETIME: Duration = Duration::from_secs(3);
const TOKEN_LATENCY: Duration = Duration::from_millis(200);

struct Row {
    name: &'static str,
    requests: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    refreshes: u64,
    waits: u64,
    failed: usize,
}

fn main() {
    let expiries: u32 = std::env::var("TOKENGATE_BENCH_EXPIRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let run_for = LIFETIME * expiries;
    println!(
        "{THREADS} threads, {LIFETIME:?} tokens, {expiries} expiries ({run_for:?} per run), token endpoint {TOKEN_LATENCY:?}\n"
    );
    let rows = [
        run(
            "never-expiring token",
            run_for,
            |b| b,
            Duration::from_secs(3600),
        ),
        run(
            "mandatory window only",
            run_for,
            |b| b.refresh_ahead(Duration::ZERO),
            LIFETIME,
        ),
        run("advisory window (default)", run_for, |b| b, LIFETIME),
        run(
            "background refresher",
            run_for,
            |b| b.background_refresh(true),
            LIFETIME,
        ),
    ];
    println!(
        "{:<27} {:>9} {:>9} {:>9} {:>9} {:>10} {:>6} {:>7} {:>9}",
        "set-up", "requests", "p50", "p99", "max", "refreshes", "waits", "failed", "p99/base"
    );
    let base = rows[0].p99.as_secs_f64();
    for r in &rows {
        println!(
            "{:<27} {:>9} {:>9.2?} {:>9.2?} {:>9.2?} {:>10} {:>6} {:>7} {:>8.2}x",
            r.name,
            r.requests,
            r.p50,
            r.p99,
            r.max,
            r.refreshes,
            r.waits,
            r.failed,
            r.p99.as_secs_f64() / base
        );
    }
}

fn run(
    name: &'static str,
    run_for: Duration,
    configure: impl FnOnce(tokengate::ClientBuilder) -> tokengate::ClientBuilder,
    lifetime: Duration,
) -> Row {
    let server = TestServer::builder()
        .token_lifetime(lifetime)
        .token_latency(TOKEN_LATENCY)
        .start();
    let issued = server.issue_token();
    let token = Token::new(issued.access_token)
        .with_expires_in(Duration::from_secs(issued.expires_in))
        .with_refresh_token(issued.refresh_token);
    let builder = Client::builder(format!("{}/api", server.url()))
        .token(token)
        .refresher(
            OAuth2::refresh_token(server.token_url())
                .client_id("demo-client")
                .client_secret("demo-secret"),
        );
    let client = configure(builder).build().expect("client");
    let client = Arc::new(client);
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let client = Arc::clone(&client);
            thread::spawn(move || {
                let mut lat = Vec::with_capacity(100_000);
                let mut failed = 0;
                while started.elapsed() < run_for {
                    let t = Instant::now();
                    match client.get("/x").call() {
                        Ok(mut r) if r.status() == 200 => {
                            let _ = r.body_mut().read_to_vec();
                        }
                        _ => failed += 1,
                    }
                    lat.push(t.elapsed());
                }
                (lat, failed)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failed = 0;
    for w in workers {
        let (lat, f) = w.join().expect("worker");
        all.extend(lat);
        failed += f;
    }
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    let stats = client.stats();
    Row {
        name,
        requests: all.len(),
        p50: pct(0.50),
        p99: pct(0.99),
        max: *all.last().unwrap(),
        refreshes: stats.refreshes,
        waits: stats.waits,
        failed,
    }
}
