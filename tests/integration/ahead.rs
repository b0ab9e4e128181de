//! Never block on a refresh: the advisory window, the background refresher (and that it is joined),
//! and events (issue 4, items 1-3).

use std::time::{Duration, SystemTime};

use tokengate::{Client, EVENT_BUFFER, Event, Token};
use tokengate_testserver::{Failure, TestServer};

use crate::support::*;

/// Threads in the advisory-window test.
const THREADS: usize = 16;

/// A server token held as valid for `valid_for` with no known lifetime (so the configured windows
/// apply in full).
fn token_valid_for(server: &TestServer, valid_for: Duration) -> Token {
    let issued = server.issue_token();
    Token::new(issued.access_token)
        .with_expires_at_wall(SystemTime::now() + valid_for)
        .with_refresh_token(issued.refresh_token)
}

#[test]
fn advisory_window_refreshes_in_the_background_while_requests_use_the_valid_token() {
    let server = TestServer::start();
    // The refresh takes 4 s: every request below finishes while it is still in flight.
    server.set_token_latency(Duration::from_secs(4));
    let client = builder(&server, token_valid_for(&server, Duration::from_secs(30)))
        .refresh_before_expiry(Duration::from_secs(1))
        .refresh_ahead(Duration::from_secs(60))
        .build()
        .unwrap();
    let old = client.token().unwrap();
    let c2 = client.clone();
    let statuses = on_threads(THREADS, move |_| {
        (0..5).map(|_| get_status(&c2, "/x")).collect::<Vec<_>>()
    });
    assert!(statuses.iter().flatten().all(|&s| s == 200));
    assert_eq!(
        server.token_requests_in_flight(),
        1,
        "all requests finished while the one refresh was still running"
    );
    assert_eq!(client.stats().waits, 0, "nobody waited for the refresh");
    eventually("the background refresh lands", || {
        client.stats().refreshes == 1
    });
    assert_ne!(client.token().unwrap().access_token(), old.access_token());
    let c = server.counters();
    assert_eq!((c.refresh_attempts, c.max_concurrent_refreshes), (1, 1));
    assert_eq!(c.api_ok, (THREADS * 5) as u64);
}

#[test]
fn background_refresher_renews_before_anyone_asks() {
    let server = TestServer::builder()
        .token_lifetime(Duration::from_secs(1))
        .start();
    let client = builder(&server, login(&server))
        .background_refresh(true)
        .build()
        .unwrap();
    let events = client.events();
    // Count the events themselves: the server counts a refresh before the client has installed it
    // and emitted its event, so polling the server's counter and then reading the channel races.
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut refreshed = 0;
    while refreshed < 3 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(left) {
            Some(Event::Refreshed {
                reactive: false, ..
            }) => refreshed += 1,
            Some(_) => {}
            None => panic!("{refreshed} Refreshed events, then none within the patience"),
        }
    }
    assert_eq!(
        server.counters().api_calls,
        0,
        "three refreshes with no request at all"
    );
    assert!(server.counters().refreshes >= 3);
    assert_eq!(server.counters().reuse_detected, 0);
    assert_eq!(get_status(&client, "/x"), 200);
}

#[test]
fn background_refresher_backs_off_after_failures() {
    let server = TestServer::start();
    server.set_failure(Failure::Status500);
    let client = builder(&server, token_valid_for(&server, Duration::from_secs(30)))
        .refresh_ahead(Duration::from_secs(60))
        .refresh_backoff(Duration::from_millis(200), Duration::from_millis(200))
        .background_refresh(true)
        .build()
        .unwrap();
    let events = client.events();
    eventually("two failed attempts", || {
        server.counters().refresh_attempts >= 2
    });
    let attempts = server.counters().refresh_attempts;
    let started = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let later = server.counters().refresh_attempts;
    // Backing off 100-200 ms between attempts: at most one per 100 ms (and the one that was
    // already under way), far fewer than a busy loop would make.
    let most = (started.elapsed().as_millis() / 100) as u64 + 1;
    assert!(
        later - attempts <= most,
        "{attempts} -> {later} in {:?}: not backing off",
        started.elapsed()
    );
    let failed = events
        .try_iter()
        .find(|e| matches!(e, Event::RefreshFailed { .. }))
        .expect("a RefreshFailed event");
    let Event::RefreshFailed { retry_in, error } = failed else {
        unreachable!()
    };
    assert!(retry_in.is_some() && error.is_transient());
    server.set_failure(Failure::None);
    eventually("recovered", || client.stats().refreshes == 1);
}

/// Run in a child process by `background_thread_is_joined_when_the_last_clone_drops`: counts this
/// process's threads, so no other test may run beside it.
#[test]
#[ignore = "child process of background_thread_is_joined_when_the_last_clone_drops"]
fn background_thread_child() {
    if std::env::var_os("TOKENGATE_BG_CHILD").is_none() {
        return;
    }
    let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
    let before = threads();
    let client = Client::builder("http://127.0.0.1:9")
        .token(Token::new("a").with_expires_in(Duration::from_secs(3600)))
        .refresher(|_: &Token| Ok(Token::new("b")))
        .background_refresh(true)
        .build()
        .unwrap();
    let clones: Vec<Client> = (0..3).map(|_| client.clone()).collect();
    let during = threads();
    drop(client);
    let after_some = threads();
    drop(clones);
    // Joined: the thread has run to its end. The kernel may still list it for a moment after the
    // join returns (the joiner is woken before the exited thread is unlisted), so give it that
    // moment, and no more.
    let unlisted_by = std::time::Instant::now() + Duration::from_secs(1);
    let mut after = threads();
    while after != before && std::time::Instant::now() < unlisted_by {
        std::thread::sleep(Duration::from_millis(1));
        after = threads();
    }
    println!("THREADS before={before} during={during} after_some={after_some} after={after}");
}

#[test]
fn background_thread_is_joined_when_the_last_clone_drops() {
    if !std::path::Path::new("/proc/self/task").exists() {
        eprintln!("skipped: no /proc/self/task to count threads on this platform");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "ahead::background_thread_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TOKENGATE_BG_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("child hung (the background thread was not stopped?)");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.find("THREADS").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no THREADS line in child output:\n{text}"));
    let n = |key: &str| -> usize {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(n("during"), n("before") + 1, "{line}");
    assert_eq!(n("after_some"), n("during"), "clones keep it alive: {line}");
    assert_eq!(
        n("after"),
        n("before"),
        "joined when the last clone dropped: {line}"
    );
}

#[test]
fn a_slow_subscriber_never_stalls_requests() {
    const SETS: usize = EVENT_BUFFER + 36;
    let server = TestServer::start();
    let client = builder(&server, login(&server)).build().unwrap();
    let never_read = client.events();
    let gone = client.events();
    drop(gone);
    let c2 = client.clone();
    let token = login(&server);
    let done = on_threads(1, move |_| {
        for _ in 0..SETS {
            c2.set_token(token.clone()).unwrap();
            assert_eq!(get_status(&c2, "/x"), 200);
        }
    });
    assert_eq!(done.len(), 1);
    assert_eq!(never_read.len(), EVENT_BUFFER);
    assert_eq!(client.stats().events_dropped, (SETS - EVENT_BUFFER) as u64);
}

#[test]
fn events_describe_each_outcome_without_secrets() {
    let server = TestServer::start();
    let token = login(&server);
    let secret = token.access_token().secret().to_owned();
    let client = builder(&server, token)
        .refresh_backoff(Duration::from_millis(1), Duration::from_millis(1))
        .build()
        .unwrap();
    let events = client.events();
    server.revoke_all();
    assert_eq!(get_status(&client, "/x"), 200);
    server.revoke_all();
    // A 404 from the token endpoint: a configuration failure, returned at once.
    server.set_failure(Failure::Answer {
        status: 404,
        headers: Vec::new(),
        body: String::new(),
    });
    assert!(client.get("/x").call().unwrap_err().is_configuration());
    server.set_failure(Failure::InvalidGrant);
    // Calls during the (10 ms) backoff fail at once, with no attempt and no event.
    eventually("the next attempt", || {
        client
            .get("/x")
            .call()
            .is_err_and(|e| e.is_login_required())
    });
    client.set_token(login(&server)).unwrap();
    let got: Vec<Event> = events.try_iter().collect();
    let kinds: Vec<&str> = got
        .iter()
        .map(|e| match e {
            Event::Refreshed { reactive: true, .. } => "refreshed(reactive)",
            Event::Refreshed { .. } => "refreshed",
            Event::RefreshFailed { .. } => "failed",
            Event::LoginRequired { .. } => "login",
            Event::TokenSet { .. } => "set",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["refreshed(reactive)", "failed", "login", "set"],
        "{got:?}"
    );
    for e in &got {
        assert!(!format!("{e:?}").contains(&secret));
    }
}
