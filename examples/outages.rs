//! The outage table: what callers see when the token endpoint has a bad moment, measured against
//! the loopback test server with the default gate settings.
//!
//! ```text
//! cargo run --release --example outages
//! ```
//!
//! Each row runs 32 threads calling `GET /api/x` without pause for a few seconds while the token
//! endpoint misbehaves, then prints what the callers saw (successes, errors, the longest single
//! call), how many token requests the server answered, and the CPU time the process used. Exits
//! non-zero if a row breaks its promise (errors during an outage shorter than the budget, more
//! than one error per thread per budget, a call held past the bound, or two refreshes at once).

use std::process::ExitCode;
use std::time::Duration;

use tokengate::{Client, OAuth2, Token};
use tokengate_testserver::load::{self, Call, Seen};
use tokengate_testserver::{Failure, TestServer};

/// Calling threads in every row.
const THREADS: usize = 32;

/// One scenario of the table.
struct Row {
    fault: &'static str,
    /// Token lifetime on the server.
    lifetime: Duration,
    /// Start from an expired token (else a fresh one).
    expired: bool,
    /// What the token endpoint does, and for how long (`None`: the whole run).
    failure: Failure,
    outage: Option<Duration>,
    /// Share of refreshes answered `503 Retry-After: 1`.
    rate: f64,
    run_for: Duration,
    /// Most errors allowed per thread.
    max_errors_per_thread: u64,
}

fn rows() -> Vec<Row> {
    let s = Duration::from_secs;
    vec![
        Row {
            fault: "503 + Retry-After: 1 for 2 s (1 s tokens)",
            lifetime: s(1),
            expired: false,
            failure: Failure::Unavailable {
                retry_after_secs: 1,
            },
            outage: Some(s(2)),
            rate: 0.0,
            run_for: Duration::from_millis(3500),
            max_errors_per_thread: 0,
        },
        Row {
            fault: "20% of refreshes 503 + Retry-After: 1 (300 ms tokens)",
            lifetime: Duration::from_millis(300),
            expired: false,
            failure: Failure::None,
            outage: None,
            rate: 0.2,
            run_for: s(5),
            max_errors_per_thread: 0,
        },
        Row {
            fault: "truncated JSON for 1 s",
            lifetime: s(3600),
            expired: true,
            failure: Failure::GarbageJson,
            outage: Some(s(1)),
            rate: 0.0,
            run_for: s(2),
            max_errors_per_thread: 0,
        },
        Row {
            fault: "500 for the whole 25 s run (longer than the 10 s budget)",
            lifetime: s(3600),
            expired: true,
            failure: Failure::Status500,
            outage: None,
            rate: 0.0,
            run_for: s(25),
            // About one error per 10 s budget, never more than two: at most 6 in 25 s.
            max_errors_per_thread: 6,
        },
        Row {
            fault: "accepts and never answers (25 s run)",
            lifetime: s(3600),
            expired: true,
            failure: Failure::Hang(s(3600)),
            outage: None,
            rate: 0.0,
            run_for: s(25),
            max_errors_per_thread: 6,
        },
    ]
}

fn main() -> ExitCode {
    println!(
        "{:<58} {:>8} {:>7} {:>11} {:>9} {:>9}",
        "fault", "ok", "errors", "longest", "token req", "CPU"
    );
    let mut broken = Vec::new();
    for row in rows() {
        let server = TestServer::builder()
            .token_lifetime(row.lifetime)
            .transient_failure_rate(row.rate)
            .transient_failure_retry_after(1)
            .workers(THREADS + 8)
            .start();
        let issued = server.issue_token();
        let mut token = Token::new(issued.access_token).with_refresh_token(issued.refresh_token);
        token = if row.expired {
            token.with_expires_at_wall(std::time::SystemTime::now() - Duration::from_secs(1))
        } else {
            token.with_expires_in(row.lifetime)
        };
        let client = Client::builder(format!("{}/api", server.url()))
            .token(token)
            .refresher(
                OAuth2::refresh_token(server.token_url())
                    .client_id("demo-client")
                    .client_secret("demo-secret"),
            )
            .build()
            .expect("a valid configuration");
        match row.outage {
            Some(d) => server.set_failure_for(row.failure.clone(), d),
            None => server.set_failure(row.failure.clone()),
        }
        let cpu = load::process_cpu();
        let c = client.clone();
        let seen = load::callers(THREADS, row.run_for, move || match c.get("/x").call() {
            Ok(r) if r.status() == 200 => Call::Ok,
            Ok(_) => Call::Status,
            Err(_) => Call::Error,
        });
        let cpu = load::process_cpu().saturating_sub(cpu);
        let total = Seen::total(&seen);
        let counters = server.counters();
        println!(
            "{:<58} {:>8} {:>7} {:>9.2} s {:>9} {:>6.0} ms",
            row.fault,
            total.ok,
            total.errors + total.status,
            total.longest.as_secs_f64(),
            counters.token_requests,
            cpu.as_secs_f64() * 1000.0,
        );
        let worst = seen.iter().map(|s| s.errors + s.status).max().unwrap_or(0);
        if worst > row.max_errors_per_thread {
            broken.push(format!("{}: {worst} errors on one thread", row.fault));
        }
        if total.longest > Duration::from_secs(12) {
            broken.push(format!("{}: a call held {:?}", row.fault, total.longest));
        }
        // A request the client gave up on stays "in flight" on a server that never answers, so the
        // server's count means nothing for that row.
        let hangs = matches!(row.fault, f if f.starts_with("accepts and never answers"));
        if counters.max_concurrent_refreshes > 1 && !hangs {
            broken.push(format!("{}: two refreshes at once", row.fault));
        }
        drop(client);
        drop(server);
    }
    println!(
        "\n{THREADS} threads each; default settings (10 s budget, backoff 250 ms growing to 5 s, \
         token request timeout 8 s); CPU is the whole process's, server included."
    );
    if broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        for b in &broken {
            eprintln!("outages: BROKEN: {b}");
        }
        ExitCode::FAILURE
    }
}
