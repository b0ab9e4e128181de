//! The point of the CLI: any number of concurrent `tokengate token` processes share one session and
//! make one refresh per expiry, never an `invalid_grant`, with rotating, reuse-detecting refresh
//! tokens.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokengate::{OAuth2, Refresh, TokenStore};
use tokengate_testserver::TestServer;

use crate::support::*;

/// Processes running `tokengate token` at once, each again and again.
const PROCESSES: usize = 16;
const TOKEN_LIFETIME: Duration = Duration::from_secs(1);
const RUN_FOR: Duration = Duration::from_secs(4);
/// Each process runs at least this often, however slow the machine: the runs overlap expiries.
const MIN_RUNS: usize = 4;

#[test]
fn sixteen_concurrent_token_commands_make_one_refresh_per_expiry() {
    let server = TestServer::builder().token_lifetime(TOKEN_LIFETIME).start();
    let home = std::sync::Arc::new(Home::new("concurrent"));
    home.write_config(&profile("default", &server));
    let store = seed(&home, "default", &login(&server));

    let started = Instant::now();
    let until = started + RUN_FOR;
    let h = std::sync::Arc::clone(&home);
    let runs: Vec<Vec<Run>> = on_threads(PROCESSES, move |_| {
        let mut runs = Vec::new();
        while Instant::now() < until || runs.len() < MIN_RUNS {
            runs.push(h.run(&["token"]));
        }
        runs
    });
    let elapsed = started.elapsed();
    let c = server.counters();
    let runs: Vec<&Run> = runs.iter().flatten().collect();
    eprintln!(
        "{} `tokengate token` runs in {elapsed:?}: {} refreshes, {} invalid_grant",
        runs.len(),
        c.refreshes,
        c.invalid_grant
    );

    for run in &runs {
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.stderr, "", "{run:?}");
        let token = run.stdout.strip_suffix('\n').expect("one line");
        assert!(
            !token.is_empty() && !token.contains(char::is_whitespace),
            "{run:?}"
        );
    }
    assert_eq!(c.invalid_grant, 0, "{c:?}");
    assert_eq!(c.reuse_detected, 0, "{c:?}");
    assert_eq!(c.max_concurrent_refreshes, 1, "{c:?}");
    // A 1 s token is refreshed once it is within a fifth of its lifetime of expiring (the advisory
    // window, on a thread the process waits for before it exits): one refresh per 0.8 s of the
    // run, plus one for boundary timing. Processes refreshing on their own would make hundreds.
    let expiries = (elapsed.as_secs_f64() / (TOKEN_LIFETIME.as_secs_f64() * 0.8)).ceil() as u64;
    assert!(
        c.refreshes >= 3 && c.refreshes <= expiries + 1,
        "{} refreshes in {elapsed:?} ({expiries} expiries, {} runs)",
        c.refreshes,
        runs.len()
    );
    // Every token printed is one the shared session held: the first, or one of the refreshes.
    let printed: BTreeSet<&str> = runs.iter().map(|r| r.stdout.trim_end()).collect();
    assert!(
        printed.len() as u64 <= c.refreshes + 1,
        "{} distinct tokens for {} refreshes",
        printed.len(),
        c.refreshes
    );
    // Nothing was lost at exit: the stored refresh token is the server's newest (a spent one
    // would be refused, and revoke the session).
    let saved = store.load().unwrap().unwrap();
    let refreshed = OAuth2::refresh_token(server.token_url())
        .client_id("demo-client")
        .client_secret("demo-secret")
        .refresh(Some(&saved));
    assert!(refreshed.is_ok(), "{refreshed:?}");
    assert_eq!(server.counters().invalid_grant, 0);
}
