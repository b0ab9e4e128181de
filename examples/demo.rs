//! The demo: 16 threads share one client for a few seconds against the embedded loopback OAuth2 server,
//! whose tokens live one second. Halfway through, the server revokes every token. Watch one refresh
//! per expiry, no failed request and no duplicate refresh.
//!
//! ```text
//! cargo run --example demo
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use tokengate::{Client, OAuth2, Token};
use tokengate_testserver::TestServer;

const THREADS: usize = 16;
const RUN_FOR: Duration = Duration::from_secs(4);
const TOKEN_LIFETIME: Duration = Duration::from_secs(1);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = TestServer::builder()
        .token_lifetime(TOKEN_LIFETIME)
        .token_latency(Duration::from_millis(50))
        .start();
    println!("loopback OAuth2 server on {}", server.url());

    // "Log in": the server hands us a token pair, as a password or device-code flow would.
    let issued = server.issue_token();
    let client = Client::builder(format!("{}/api", server.url()))
        .token(
            Token::new(issued.access_token)
                .with_expires_in(Duration::from_secs(issued.expires_in))
                .with_refresh_token(issued.refresh_token),
        )
        .refresher(
            OAuth2::refresh_token(server.token_url())
                .client_id("demo-client")
                .client_secret("demo-secret"),
        )
        .on_login_required(|e| eprintln!("login required: {e}"))
        .build()?;

    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|i| {
            let (client, ok, failed) = (client.clone(), Arc::clone(&ok), Arc::clone(&failed));
            thread::spawn(move || {
                while started.elapsed() < RUN_FOR {
                    match client.get(&format!("/worker/{i}")).call() {
                        Ok(r) if r.status() == 200 => ok.fetch_add(1, Relaxed),
                        Ok(r) => {
                            eprintln!("thread {i}: HTTP {}", r.status());
                            failed.fetch_add(1, Relaxed)
                        }
                        Err(e) => {
                            eprintln!("thread {i}: {e}");
                            failed.fetch_add(1, Relaxed)
                        }
                    };
                }
            })
        })
        .collect();

    println!("{THREADS} threads, {TOKEN_LIFETIME:?} tokens, {RUN_FOR:?}\n");
    println!(" time  requests  failed  refreshes  rejected  replays  waits");
    let mut revoked = false;
    for second in 1..=RUN_FOR.as_secs() {
        thread::sleep(started + Duration::from_secs(second) - Instant::now());
        if !revoked && second * 2 >= RUN_FOR.as_secs() {
            server.revoke_all();
            revoked = true;
            println!("  -- server revokes every token --");
        }
        print_row(&format!("{second:>4}s"), &server, &client, &ok, &failed);
    }
    for w in workers {
        w.join().expect("worker panicked");
    }

    let c = server.counters();
    let stats = client.stats();
    let requests = ok.load(Relaxed) + failed.load(Relaxed);
    let expiries = (started.elapsed().as_secs_f64() / TOKEN_LIFETIME.as_secs_f64()).floor() as u64;
    println!("\nsummary");
    println!("  requests           {requests}");
    println!("  succeeded          {}", ok.load(Relaxed));
    println!("  failed             {}", failed.load(Relaxed));
    println!("  token expiries     ~{expiries} (+1 revocation)");
    println!(
        "  refreshes          {} (server saw {} refresh calls)",
        stats.refreshes, c.refresh_attempts
    );
    println!(
        "  max concurrent     {} refresh(es) in flight at once",
        c.max_concurrent_refreshes
    );
    println!(
        "  rejected by API    {} (each replayed once: {} replays)",
        c.api_rejected, stats.replays
    );
    println!("  reused refresh tok {}", c.reuse_detected);
    if failed.load(Relaxed) > 0 || c.max_concurrent_refreshes > 1 || c.reuse_detected > 0 {
        return Err("the demo saw failures".into());
    }
    println!("\nOK: every request succeeded, one refresh at a time.");
    Ok(())
}

fn print_row(
    label: &str,
    server: &TestServer,
    client: &Client,
    ok: &AtomicU64,
    failed: &AtomicU64,
) {
    let c = server.counters();
    let s = client.stats();
    println!(
        "{label} {:>9} {:>7} {:>10} {:>9} {:>8} {:>6}",
        ok.load(Relaxed) + failed.load(Relaxed),
        failed.load(Relaxed),
        c.refreshes,
        c.api_rejected,
        s.replays,
        s.waits
    );
}
