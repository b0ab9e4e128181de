//! `RedisStore` (feature `redis`, issue 16) against a real `redis-server` started by the tests and the
//! loopback OAuth2 server with rotating, reuse-detecting refresh tokens. Child processes stand in
//! for machines. What Redis holds is read back with `redis-cli`, an independent client.

use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use tokengate::{
    Client, ClientBuilder, Error, Event, Network, RedisStore, Roots, StoreError, StoreErrorKind,
    TlsBackend, Token, TokenStore,
};
use tokengate_testserver::{TestPki, TestServer};

use crate::children::*;
use crate::store::{PROCESSES, THREADS_PER_PROCESS, TOKEN_LIFETIME};
use crate::support::*;
use tokengate_testserver::services::{ClientAuth, RedisServer};

/// Leases in these tests: short, so a dead holder costs a second.
const LEASE_TTL: Duration = Duration::from_secs(1);
const RUN_FOR: Duration = Duration::from_secs(4);

/// The store a child builds from `redis:<url> <prefix> <lease ms>`.
pub fn store_from_spec(spec: &str) -> RedisStore {
    let mut parts = spec.split(' ');
    let (url, prefix, lease_ms) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap().parse().unwrap(),
    );
    RedisStore::builder(url)
        .key_prefix(prefix)
        .lease_ttl(Duration::from_millis(lease_ms))
        .build()
        .expect("child: cannot build the Redis store")
}

fn spec(redis: &RedisServer, prefix: &str) -> String {
    format!("redis:{} {prefix} {}", redis.url(), LEASE_TTL.as_millis())
}

fn store(redis: &RedisServer, prefix: &str) -> RedisStore {
    RedisStore::builder(redis.url())
        .key_prefix(prefix)
        .lease_ttl(LEASE_TTL)
        .build()
        .unwrap()
}

fn client_on(server: &TestServer, store: RedisStore) -> Result<Client, Error> {
    Client::builder(format!("{}/api", server.url()))
        .store(store)
        .refresher(oauth(server))
        .refresh_timeout(PATIENCE)
        .build()
}

/// The stored value's JSON, read with redis-cli.
fn stored(redis: &RedisServer, key: &str) -> serde_json::Value {
    let text = redis.cli(&["GET", key]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{key}: {e}: {text:?}"))
}

fn stored_access_token(redis: &RedisServer, key: &str) -> String {
    stored(redis, key)["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn revision(redis: &RedisServer, key: &str) -> u64 {
    stored(redis, key)["revision"].as_u64().unwrap()
}

/// Revokes every access token now and then until `stop`, counting the revocations.
fn revoker(server: Arc<TestServer>, stop: Arc<AtomicBool>, count: Arc<AtomicU64>) {
    let mut n = 0u64;
    while !stop.load(Relaxed) && n < 50 {
        // 300-700 ms apart, varied so the revocations fall on every phase of the 1 s tokens.
        thread::sleep(Duration::from_millis(300 + (n * 137) % 400));
        if stop.load(Relaxed) {
            break;
        }
        server.revoke_all();
        count.fetch_add(1, Relaxed);
        n += 1;
    }
}

/// Four worker processes of eight threads share one session in Redis for `RUN_FOR` while access
/// tokens are revoked now and then; `during` runs in the parent meanwhile (e.g. a Redis restart).
fn fleet_run(prefix: &str, during: impl FnOnce(&mut RedisServer)) -> (Vec<ChildResult>, u64) {
    let server = Arc::new(TestServer::builder().token_lifetime(TOKEN_LIFETIME).start());
    let mut redis = RedisServer::start();
    store(&redis, prefix).save(&login(&server)).unwrap();
    let key = format!("{prefix}token");
    assert_eq!(revision(&redis, &key), 1);

    let (stop, revocations) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let started = Instant::now();
    let until = SystemTime::now() + RUN_FOR;
    let children: Vec<Child> = (0..PROCESSES)
        .map(|_| {
            ChildSpec::new("worker", &spec(&redis, prefix))
                .url(&server.url())
                .workers(THREADS_PER_PROCESS, until)
                .spawn()
        })
        .collect();
    let revoking = {
        let (server, stop, count) = (
            Arc::clone(&server),
            Arc::clone(&stop),
            Arc::clone(&revocations),
        );
        thread::spawn(move || revoker(server, stop, count))
    };
    during(&mut redis);
    let deadline = Instant::now() + RUN_FOR + PATIENCE;
    let results: Vec<ChildResult> = children.into_iter().map(|c| finish(c, deadline)).collect();
    stop.store(true, Relaxed);
    revoking.join().unwrap();
    let elapsed = started.elapsed();
    let c = server.counters();
    let revoked = revocations.load(Relaxed);
    eprintln!("{elapsed:?}, {revoked} revocations, {c:?}\n{results:#?}");

    assert!(
        results.iter().all(|r| r.n("ok") > 0),
        "every process made requests: {results:?}"
    );
    assert!(
        results.iter().all(|r| r.n("login_required") == 0),
        "{results:?}"
    );
    assert_eq!(c.invalid_grant, 0, "{c:?}");
    assert_eq!(c.reuse_detected, 0, "{c:?}");
    assert_eq!(
        c.max_concurrent_refreshes, 1,
        "never two refreshes in flight: {c:?}"
    );
    assert_eq!(
        results.iter().map(|r| r.n("refreshes")).sum::<u64>(),
        c.refreshes,
        "every server refresh was done by exactly one process"
    );
    assert!(
        results.iter().map(|r| r.n("adopted")).sum::<u64>() >= 1,
        "the processes took each other's tokens: {results:?}"
    );
    // One refresh per expiry (a 1 s token is refreshed 200 ms before it expires, in the advisory
    // window) or revocation, plus one for boundary timing. Four processes on their own would do
    // about four times that.
    let expiries = (elapsed.as_secs_f64() / (TOKEN_LIFETIME.as_secs_f64() * 0.8)).ceil() as u64;
    assert!(
        c.refreshes >= 2 && c.refreshes <= expiries + revoked + 1,
        "{} refreshes in {elapsed:?} ({expiries} expiries, {revoked} revocations)",
        c.refreshes
    );
    assert_eq!(
        revision(&redis, &key),
        1 + c.refreshes,
        "every refresh saved exactly once"
    );
    (results, revoked)
}

#[test]
fn four_processes_share_one_redis_session_with_one_refresh_per_expiry_or_revocation() {
    let (results, _) = fleet_run("fleet:", |_| {});
    for r in &results {
        // A rejected request is only returned when a revocation lands between a refresh and its
        // replay; nothing else may fail.
        assert_eq!(r.n("failed"), r.n("rejected"), "{r:?}");
        assert_eq!(r.n("store_errors"), 0, "{r:?}");
    }
}

#[test]
fn four_processes_share_one_redis_session_across_a_redis_restart() {
    let (results, _) = fleet_run("restart:", |redis| {
        thread::sleep(RUN_FOR / 3);
        // A maintenance restart: Redis writes its data on the way down and reads it back. Down
        // for most of a token's lifetime, so refreshes are due while it is away.
        redis.stop(true);
        thread::sleep(TOKEN_LIFETIME * 7 / 10);
        redis.start_again();
    });
    for r in &results {
        // A request that needs a new token while Redis is away waits for it (within its budget):
        // callers see latency, not store errors.
        assert_eq!(r.n("store_failed"), 0, "{r:?}");
        assert_eq!(r.n("failed"), r.n("rejected"), "{r:?}");
    }
}

#[test]
fn redis_down_at_start_is_a_typed_transient_error() {
    let server = TestServer::start();
    let mut redis = RedisServer::start();
    redis.stop(false);
    let store = RedisStore::builder(redis.url_as("worker:hunter2"))
        .build()
        .unwrap();
    let e = client_on(&server, store.clone()).unwrap_err();
    let se = e.store_error().unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!(se.kind(), StoreErrorKind::Unavailable, "{e}");
    assert!(e.is_transient());
    let shown = format!("{e} {e:?} {store:?}");
    assert!(
        shown.contains(&format!("127.0.0.1:{}", redis.port())),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(
        store.save(&Token::new("x")).unwrap_err().kind(),
        StoreErrorKind::Unavailable
    );
    assert_eq!(server.counters().token_requests, 0);
}

/// A token from the server (valid there for an hour) that this client holds as expiring in
/// [`SHORT_LIFETIME`], its lifetime unknown so that [`short_lived_client`]'s windows apply as set.
fn short_lived_login(server: &TestServer) -> Token {
    let issued = server.issue_token();
    Token::new(issued.access_token)
        .with_expires_at_wall(SystemTime::now() + SHORT_LIFETIME)
        .with_refresh_token(issued.refresh_token)
}

const SHORT_LIFETIME: Duration = Duration::from_secs(4);
/// No request is started with less than this left on the token, so none sees it expire in flight.
const IN_FLIGHT: Duration = Duration::from_secs(1);

/// A client on `store` whose advisory window opens half a second into [`SHORT_LIFETIME`] and the
/// mandatory one a second in: both are open for seconds before [`IN_FLIGHT`], however long the
/// test took to stop Redis.
fn short_lived_client(server: &TestServer, store: RedisStore) -> ClientBuilder {
    Client::builder(format!("{}/api", server.url()))
        .store(store)
        .refresher(oauth(server))
        .refresh_ahead(Duration::from_millis(3500))
        .refresh_before_expiry(Duration::from_secs(3))
        .refresh_timeout(Duration::from_secs(2))
}

/// Sends requests, each answered 200, while the client's token has more than [`IN_FLIGHT`] left;
/// then waits until it has expired. Returns how many were sent.
fn requests_until_expiry(client: &Client) -> usize {
    let remaining = || client.token().unwrap().remaining().unwrap();
    let mut sent = 0;
    while remaining() > IN_FLIGHT {
        assert_eq!(get_status(client, "/me"), 200);
        sent += 1;
    }
    thread::sleep(remaining());
    assert!(client.token().unwrap().is_expired());
    sent
}

#[test]
fn redis_down_while_the_token_is_valid_keeps_requests_going_and_never_refreshes_without_the_lease()
{
    let server = TestServer::start();
    let mut redis = RedisServer::start();
    let store = store(&redis, "down:");
    store.save(&short_lived_login(&server)).unwrap();
    // A backoff longer than the budget, cut to it: each request waits through at most one attempt,
    // so the one below sees that attempt's failure, not a retry still running when its budget ends.
    let client = short_lived_client(&server, store)
        .refresh_backoff(Duration::from_secs(5), Duration::from_secs(5))
        .build()
        .unwrap();
    let events = client.events();
    redis.stop(true);

    // Until the token expires, every request goes through with it.
    assert!(requests_until_expiry(&client) > 0);
    let c = server.counters();
    assert_eq!(c.token_requests, 0, "no refresh without the lease");
    let failures: Vec<Error> = events
        .try_iter()
        .filter_map(|e| match e {
            Event::RefreshFailed { error, .. } => Some(error),
            _ => None,
        })
        .collect();
    assert!(!failures.is_empty(), "the refresh reported its failure");
    for e in &failures {
        assert_eq!(
            e.store_error().map(|s| s.kind()),
            Some(StoreErrorKind::Unavailable),
            "{e}"
        );
    }

    // Expired, Redis still down: after waiting its budget, a typed, transient store error.
    let e = client.get("/me").call().unwrap_err();
    assert_eq!(
        e.store_error().map(|s| s.kind()),
        Some(StoreErrorKind::Unavailable),
        "{e}"
    );
    assert!(e.is_transient());
    let backoff = events
        .try_iter()
        .filter_map(|e| match e {
            Event::RefreshFailed { retry_in, .. } => retry_in,
            _ => None,
        })
        .last()
        .expect("the failure says when the next attempt comes");

    // Redis back (with its data) and the backoff over: the next request refreshes once and saves.
    // (Within the backoff, it would wait for its end and leave the attempt only the rest of its
    // budget.)
    redis.start_again();
    thread::sleep(backoff);
    assert_eq!(get_status(&client, "/me"), 200);
    let c = server.counters();
    assert_eq!((c.refreshes, c.invalid_grant), (1, 0), "{c:?}");
    assert_eq!(revision(&redis, "down:token"), 2);
    assert_eq!(
        stored_access_token(&redis, "down:token"),
        client.token().unwrap().access_token().secret()
    );
}

#[test]
fn redis_down_while_the_token_is_valid_is_retried_with_backoff() {
    let server = TestServer::start();
    let mut redis = RedisServer::start();
    let store = store(&redis, "backoff:");
    store.save(&short_lived_login(&server)).unwrap();
    let client = short_lived_client(&server, store)
        .refresh_backoff(Duration::from_secs(1), Duration::from_secs(5))
        .build()
        .unwrap();
    let events = client.events();
    redis.stop(true);
    let sent = requests_until_expiry(&client);
    // The windows were open for 2.5 s of requests without pause: with a backoff of 1 s growing
    // by half (each jittered down by up to half: 0.5, 0.75, 1.125 s at the least), the store is
    // tried at most four times, not once per request.
    let attempts = events
        .try_iter()
        .filter(|e| matches!(e, Event::RefreshFailed { .. }))
        .count();
    assert!(
        (1..=4).contains(&attempts),
        "{attempts} refresh attempts in {sent} requests while Redis was down"
    );
}

/// Starts a child that takes the lease for a refresh and stops inside it; returns it once it is
/// there, with the lease's owner and remaining time as Redis shows them.
fn child_holding_the_lease(
    server: &TestServer,
    redis: &RedisServer,
    prefix: &str,
    mode: &str,
) -> (KillOnDrop, String) {
    let mut child = ChildSpec::new(mode, &spec(redis, prefix))
        .url(&server.url())
        .spawn();
    let stdout = child.stdout.take().unwrap();
    let child = KillOnDrop(child);
    let _stdout = wait_for_line(stdout, "HOLDING", PATIENCE);
    let owner = redis.cli(&["GET", &format!("{prefix}lease")]);
    assert!(
        owner.starts_with(&format!("{}-", child.0.id())),
        "the child holds the lease: {owner:?}"
    );
    (child, owner)
}

#[test]
fn a_lease_holder_killed_before_it_redeemed_is_taken_over_when_its_lease_expires() {
    let server = TestServer::start();
    let redis = RedisServer::start();
    let store = store(&redis, "kill1:");
    store.save(&expired_login(&server)).unwrap();
    let (mut child, _owner) =
        child_holding_the_lease(&server, &redis, "kill1:", "hold-before-redeem");
    // Held for longer than a TTL: the child's extender keeps it.
    thread::sleep(LEASE_TTL + LEASE_TTL / 2);
    assert!(redis.cli(&["PTTL", "kill1:lease"]).parse::<i64>().unwrap() > 0);
    child.0.kill().unwrap(); // SIGKILL: no Drop, no release
    child.0.wait().unwrap();
    assert_ne!(
        redis.cli(&["EXISTS", "kill1:lease"]),
        "0",
        "the dead holder's lease lingers"
    );

    let started = Instant::now();
    let client = client_on(&server, store).unwrap();
    assert_eq!(get_status(&client, "/me"), 200);
    let waited = started.elapsed();
    let c = server.counters();
    assert_eq!(
        (c.refreshes, c.invalid_grant, c.reuse_detected),
        (1, 0, 0),
        "{c:?}"
    );
    assert!(waited < LEASE_TTL + PATIENCE / 4, "{waited:?}");
    assert_eq!(revision(&redis, "kill1:token"), 2);
    assert_eq!(redis.cli(&["EXISTS", "kill1:lease"]), "0", "released");
}

/// The documented, unavoidable window: the holder died after the token endpoint rotated the
/// refresh token and before it saved. The next refresh presents the spent refresh token.
#[test]
fn a_lease_holder_killed_after_the_server_rotated_loses_the_session() {
    let server = TestServer::start();
    let redis = RedisServer::start();
    let store = store(&redis, "kill2:");
    store.save(&expired_login(&server)).unwrap();
    let (mut child, _owner) =
        child_holding_the_lease(&server, &redis, "kill2:", "hold-after-redeem");
    assert_eq!(
        server.counters().refreshes,
        1,
        "the child's refresh went through"
    );
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    let client = client_on(&server, store).unwrap();
    let e = client.get("/me").call().unwrap_err();
    assert!(e.is_login_required(), "{e:?}");
    let c = server.counters();
    assert_eq!((c.refreshes, c.invalid_grant), (1, 1), "{c:?}");
    assert_eq!(
        revision(&redis, "kill2:token"),
        1,
        "nothing newer was ever saved"
    );
}

#[test]
fn a_refresh_slower_than_the_lease_keeps_it_and_nobody_else_refreshes() {
    // The token endpoint takes 2.5 lease TTLs.
    let server = TestServer::builder()
        .token_latency(LEASE_TTL * 5 / 2)
        .start();
    let redis = RedisServer::start();
    store(&redis, "slow:")
        .save(&expired_login(&server))
        .unwrap();
    // Two clients with stores of their own: two processes, as far as the lease can tell.
    let (a, b) = (
        client_on(&server, store(&redis, "slow:")).unwrap(),
        client_on(&server, store(&redis, "slow:")).unwrap(),
    );
    let statuses = on_threads(16, move |i| {
        get_status(if i % 2 == 0 { &a } else { &b }, "/x")
    });
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let c = server.counters();
    assert_eq!(
        (
            c.refresh_attempts,
            c.invalid_grant,
            c.max_concurrent_refreshes
        ),
        (1, 0, 1),
        "{c:?}"
    );
    assert_eq!(revision(&redis, "slow:token"), 2);
}

#[test]
fn a_logout_clears_redis_for_every_worker_and_is_fenced_like_a_save() {
    let redis = RedisServer::start();
    let server = TestServer::start();
    let (a, b) = (store(&redis, "logout:"), store(&redis, "logout:"));
    let issued = server.issue_token();
    a.save(
        &Token::new(issued.access_token)
            .with_expires_in(Duration::from_secs(3600))
            .with_refresh_token(issued.refresh_token.clone()),
    )
    .unwrap();
    let with_revocation = |store: RedisStore| {
        Client::builder(format!("{}/api", server.url()))
            .store(store)
            .refresher(oauth(&server).revocation_url(server.revocation_url()))
            .refresh_timeout(PATIENCE)
            .build()
            .unwrap()
    };
    let (first, second) = (with_revocation(a.clone()), with_revocation(b.clone()));
    assert_eq!(get_status(&second, "/me"), 200);
    first.logout().unwrap();
    assert_eq!(server.counters().revocations, 1);
    assert!(!server.is_refresh_token_valid(&issued.refresh_token));
    assert_eq!(redis.cli(&["EXISTS", "logout:token"]), "0");
    // The other worker's token was revoked with the grant; it finds the session gone.
    let attempts = server.counters().refresh_attempts;
    let e = second.get("/me").call().unwrap_err();
    assert!(e.is_login_required(), "{e:?}");
    assert_eq!(server.counters().refresh_attempts, attempts);

    // A clear waits for another process's lease, like a save.
    a.save(&Token::new("again")).unwrap();
    let section = b.lock(PATIENCE).unwrap();
    let clearer = {
        let a = a.clone();
        thread::spawn(move || a.clear())
    };
    thread::sleep(LEASE_TTL / 4);
    assert_eq!(stored_access_token(&redis, "logout:token"), "again");
    drop(section);
    clearer.join().unwrap().unwrap();
    assert_eq!(redis.cli(&["EXISTS", "logout:token"]), "0");

    // A clear in a lease that expired into another process's is refused, the token kept.
    a.save(&Token::new("kept")).unwrap();
    let mine = a.lock(PATIENCE).unwrap();
    redis.cli(&["DEL", "logout:lease"]);
    let theirs = b.lock(PATIENCE).unwrap();
    let e = a.clear().unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::LeaseLost, "{e}");
    drop((mine, theirs));
    assert_eq!(stored_access_token(&redis, "logout:token"), "kept");
}

#[test]
fn a_late_save_is_refused_when_another_process_saved_after_the_lease_expired() {
    let redis = RedisServer::start();
    let (a, b) = (store(&redis, "fence:"), store(&redis, "fence:"));
    a.save(&Token::new("first")).unwrap();

    // A takes the lease; it expires under A (here: deleted, as an expiry would); B saves.
    let section = a.lock(PATIENCE).unwrap();
    redis.cli(&["DEL", "fence:lease"]);
    b.save(&Token::new("newer-from-b")).unwrap();
    let e = a.save(&Token::new("late-from-a")).unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::LeaseLost, "{e}");
    assert!(!e.to_string().contains("late-from-a"), "{e}");
    drop(section);
    assert_eq!(stored_access_token(&redis, "fence:token"), "newer-from-b");
    assert_eq!(revision(&redis, "fence:token"), 2);

    // A late save with nobody in between keeps the holder's token.
    let section = a.lock(PATIENCE).unwrap();
    redis.cli(&["DEL", "fence:lease"]);
    a.save(&Token::new("late-but-alone")).unwrap();
    drop(section);
    assert_eq!(stored_access_token(&redis, "fence:token"), "late-but-alone");

    // And while another process holds the lease, a save outside it waits its turn.
    let section = b.lock(PATIENCE).unwrap();
    let saver = {
        let a = a.clone();
        thread::spawn(move || a.save(&Token::new("after-b")))
    };
    thread::sleep(LEASE_TTL / 4);
    assert_eq!(stored_access_token(&redis, "fence:token"), "late-but-alone");
    drop(section);
    saver.join().unwrap().unwrap();
    assert_eq!(stored_access_token(&redis, "fence:token"), "after-b");
    assert_eq!(revision(&redis, "fence:token"), 4);
}

#[test]
fn a_connection_dropped_during_the_save_is_retried_on_a_new_one() {
    let server = TestServer::start();
    let redis = Arc::new(RedisServer::start());
    let store = store(&redis, "drop:");
    store.save(&expired_login(&server)).unwrap();
    let killed = Arc::new(AtomicU64::new(0));
    let client = {
        let (redis, killed) = (Arc::clone(&redis), Arc::clone(&killed));
        Client::builder(format!("{}/api", server.url()))
            .store(store.clone())
            .refresher(oauth(&server))
            // Runs inside the lease, between the refresh and the save.
            .on_refresh(move |_| {
                let n: u64 = redis
                    .cli(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
                    .parse()
                    .unwrap();
                killed.fetch_add(n, Relaxed);
            })
            .build()
            .unwrap()
    };
    assert_eq!(get_status(&client, "/me"), 200);
    assert!(killed.load(Relaxed) >= 1, "the store's connection was cut");
    assert_eq!(client.stats().store_errors, 0);
    assert_eq!(revision(&redis, "drop:token"), 2);
    assert_eq!(
        stored_access_token(&redis, "drop:token"),
        client.token().unwrap().access_token().secret()
    );
    let c = server.counters();
    assert_eq!((c.refreshes, c.invalid_grant), (1, 0));
}

#[test]
fn redis_gone_during_the_save_keeps_the_token_and_saves_it_at_the_next_lease() {
    let server = TestServer::start();
    let redis = Arc::new(parking_lot::Mutex::new(RedisServer::start()));
    let url = redis.lock().url();
    let make = || {
        RedisStore::builder(url.clone())
            .key_prefix("gone:")
            .lease_ttl(LEASE_TTL)
            .build()
            .unwrap()
    };
    let store = make();
    store.save(&expired_login(&server)).unwrap();
    let client = {
        let redis = Arc::clone(&redis);
        Client::builder(format!("{}/api", server.url()))
            .store(store.clone())
            .refresher(oauth(&server))
            .on_refresh(move |_| redis.lock().stop(true))
            .build()
            .unwrap()
    };
    let events = client.events();
    assert_eq!(get_status(&client, "/me"), 200, "the new token is used");
    assert_eq!(client.stats().store_errors, 1);
    let failed = events
        .try_iter()
        .find_map(|e| match e {
            Event::StoreFailed { error } => Some(error),
            _ => None,
        })
        .expect("a StoreFailed event");
    assert_eq!(
        failed.store_error().map(|s| s.kind()),
        Some(StoreErrorKind::Unavailable)
    );

    let mut redis = redis.lock();
    redis.start_again();
    assert_eq!(
        revision(&redis, "gone:token"),
        1,
        "Redis still has the old token"
    );
    // The store's next lease writes the kept token first.
    drop(store.lock(PATIENCE).unwrap());
    assert_eq!(revision(&redis, "gone:token"), 2);
    let newest = client.token().unwrap();
    assert_eq!(
        stored_access_token(&redis, "gone:token"),
        newest.access_token().secret()
    );
    // Another process starts from it without refreshing.
    let other = client_on(&server, make()).unwrap();
    assert_eq!(get_status(&other, "/me"), 200);
    let c = server.counters();
    assert_eq!((c.refreshes, c.invalid_grant), (1, 0), "{c:?}");
}

#[test]
fn acl_users_authenticate_through_the_url_and_prefixes_keep_apps_apart() {
    let redis =
        RedisServer::with_args(&["--user", "worker", "on", ">s3cret", "~app:*", "&*", "+@all"]);
    let as_worker = |userinfo: &str, prefix: &str| {
        RedisStore::builder(redis.url_as(userinfo))
            .key_prefix(prefix)
            .build()
            .unwrap()
    };
    let app = as_worker("worker:s3cret", "app:");
    app.save(&Token::new("for-app")).unwrap();
    assert_eq!(
        app.load().unwrap().unwrap().access_token().secret(),
        "for-app"
    );
    assert_eq!(stored_access_token(&redis, "app:token"), "for-app");

    let e = as_worker("worker:wrong", "app:").load().unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Denied, "{e}");
    assert!(!format!("{e} {e:?}").contains("wrong"), "{e}");
    let e = as_worker("worker:s3cret", "other:").load().unwrap_err();
    assert_eq!(
        e.kind(),
        StoreErrorKind::Denied,
        "the ACL allows app:* only: {e}"
    );

    // Two prefixes on one server are two sessions.
    let (a, b) = (store(&redis, "one:"), store(&redis, "two:"));
    a.save(&Token::new("one")).unwrap();
    assert!(b.load().unwrap().is_none());
    b.save(&Token::new("two")).unwrap();
    assert_eq!(a.load().unwrap().unwrap().access_token().secret(), "one");
}

#[test]
fn an_unusable_stored_value_is_a_typed_error_and_kept_aside_by_the_next_save() {
    let redis = RedisServer::start();
    redis.cli(&["SET", "bad:token", "{ sekrit-access"]);
    let store = store(&redis, "bad:");
    let e = store.load().unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Malformed, "{e}");
    assert!(e.is_corrupt() && e.to_string().contains("bad:token"), "{e}");
    assert!(!e.to_string().contains("sekrit"), "{e}");
    store.save(&Token::new("fresh")).unwrap();
    assert_eq!(redis.cli(&["GET", "bad:token.corrupt"]), "{ sekrit-access");
    assert_eq!(stored_access_token(&redis, "bad:token"), "fresh");
}

// ---- rediss:// (TLS through the same settings as the HTTP client: `Network`) ----

/// A TLS store on `redis` (URL with `userinfo@` when given) with these TLS settings.
fn tls_store(
    redis: &RedisServer,
    userinfo: Option<&str>,
    prefix: &str,
    network: Network,
) -> RedisStore {
    let url = userinfo.map_or_else(|| redis.url(), |u| redis.url_as(u));
    RedisStore::builder(url)
        .key_prefix(prefix)
        .lease_ttl(LEASE_TTL)
        .network(network)
        .build()
        .unwrap()
}

fn trusting(pki: &TestPki) -> Network {
    Network::new().add_root_certificates_pem(pki.ca_pem())
}

/// Everything an error shows: `Display` and `Debug` of it and of each cause.
fn shown_chain(e: &dyn std::error::Error) -> String {
    let mut text = format!("{e} {e:?}");
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(" | {c} {c:?}"));
        cause = c.source();
    }
    text
}

/// The typed TLS failure of a store that cannot complete the handshake, its message naming the
/// server (and TLS) without the password.
fn assert_tls_failure(e: &StoreError, redis: &RedisServer, password: &str) {
    assert_eq!(e.kind(), StoreErrorKind::Tls, "{}", shown_chain(e));
    assert!(e.is_configuration(), "{e}");
    let text = e.to_string();
    assert!(text.contains("TLS"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{}", redis.port())),
        "{text}"
    );
    let all = shown_chain(e);
    assert!(!all.contains(password), "{all}");
}

#[test]
fn rediss_with_the_private_ca_refreshes_and_saves_end_to_end() {
    let server = TestServer::start();
    let pki = TestPki::new("tokengate redis CA");
    // TLS only: `--port 0`, the store's port is the TLS port.
    let redis = RedisServer::with_tls(&pki, ClientAuth::Off, &[]);
    let store = tls_store(&redis, None, "tls:", trusting(&pki));
    assert!(redis.url().starts_with("rediss://"));
    store.save(&expired_login(&server)).unwrap();
    assert_eq!(revision(&redis, "tls:token"), 1);

    let client = client_on(&server, store).unwrap();
    assert_eq!(get_status(&client, "/me"), 200);
    let c = server.counters();
    assert_eq!((c.refreshes, c.invalid_grant), (1, 0), "{c:?}");
    assert_eq!(revision(&redis, "tls:token"), 2, "the refresh was saved");
    assert_eq!(
        stored_access_token(&redis, "tls:token"),
        client.token().unwrap().access_token().secret()
    );
    assert_eq!(
        redis.cli(&["EXISTS", "tls:lease"]),
        "0",
        "the lease was released"
    );

    // Another process, trusting the CA from a file and nothing else, adopts the saved token.
    let dir = crate::support::temp_dir("redis-ca");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, pki.ca_pem()).unwrap();
    let other = tls_store(
        &redis,
        None,
        "tls:",
        Network::new()
            .roots(Roots::AddedOnly)
            .add_root_certificates_pem_file(&ca_file),
    );
    let other = client_on(&server, other).unwrap();
    assert_eq!(get_status(&other, "/me"), 200);
    assert_eq!(
        other.token().unwrap().access_token().secret(),
        client.token().unwrap().access_token().secret()
    );
    assert_eq!(server.counters().refreshes, 1, "one refresh for both");
}

#[test]
fn rediss_without_the_ca_is_a_typed_tls_error_that_never_shows_the_password() {
    let server = TestServer::start();
    let pki = TestPki::new("tokengate redis CA");
    let redis = RedisServer::with_tls(&pki, ClientAuth::Off, &[]);
    redis.cli(&[
        "SET",
        "notls:token",
        r#"{"version":1,"access_token":"kept"}"#,
    ]);
    let userinfo = Some("worker:hunter2-secret");
    for (what, network) in [
        ("the OS trust store", Network::new()),
        ("the bundled roots", Network::new().roots(Roots::WebPki)),
        (
            "another CA",
            Network::new()
                .roots(Roots::AddedOnly)
                .add_root_certificates_pem(TestPki::new("another CA").ca_pem()),
        ),
    ] {
        let store = tls_store(&redis, userinfo, "notls:", network);
        let e = store.load().unwrap_err();
        assert_tls_failure(&e, &redis, "hunter2-secret");
        assert!(
            shown_chain(&e).contains("UnknownIssuer"),
            "{what}: the cause says why: {}",
            shown_chain(&e)
        );
        let e = store.save(&Token::new("never-saved")).unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::Tls, "{what}: {e}");
        let e = store.lock(PATIENCE).map(drop).unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::Tls, "{what}: {e}");

        // Through a client: a configuration error at build, not a transient one.
        let e = client_on(&server, store.clone()).unwrap_err();
        assert_eq!(
            e.store_error().map(StoreError::kind),
            Some(StoreErrorKind::Tls),
            "{what}: {e}"
        );
        assert!(
            e.is_tls() && e.is_configuration() && !e.is_transient(),
            "{e}"
        );
        assert!(!shown_chain(&e).contains("hunter2-secret"));
        assert!(!format!("{store:?}").contains("hunter2-secret"));
    }
    assert_eq!(stored_access_token(&redis, "notls:token"), "kept");
    assert_eq!(server.counters().token_requests, 0);
}

#[test]
fn mutual_tls_with_the_client_certificate_works_and_without_it_is_refused() {
    let pki = TestPki::new("tokengate redis CA");
    let redis = RedisServer::with_tls(&pki, ClientAuth::Required, &[]);
    let me = pki.client("tokengate worker");
    let with_cert = tls_store(
        &redis,
        None,
        "mtls:",
        trusting(&pki).client_certificate_pem(me.cert_pem.clone(), me.key_pem.clone()),
    );
    with_cert.save(&Token::new("over-mtls")).unwrap();
    assert_eq!(
        with_cert.load().unwrap().unwrap().access_token().secret(),
        "over-mtls"
    );
    assert_eq!(stored_access_token(&redis, "mtls:token"), "over-mtls");

    // The same certificate from files (one file holding both is fine).
    let dir = crate::support::temp_dir("redis-mtls");
    let both = dir.path().join("worker.pem");
    std::fs::write(&both, format!("{}{}", me.cert_pem, me.key_pem)).unwrap();
    let from_files = tls_store(
        &redis,
        None,
        "mtls:",
        trusting(&pki).client_certificate_pem_files(&both, &both),
    );
    from_files.save(&Token::new("from-files")).unwrap();
    assert_eq!(stored_access_token(&redis, "mtls:token"), "from-files");

    // Without a certificate, or with one from a CA the server does not know: refused.
    let stranger = TestPki::new("a CA the server does not know").client("stranger");
    for (what, network) in [
        ("no client certificate", trusting(&pki)),
        (
            "a stranger's certificate",
            trusting(&pki).client_certificate_pem(stranger.cert_pem, stranger.key_pem),
        ),
    ] {
        let store = tls_store(&redis, None, "mtls:", network);
        let e = store.save(&Token::new("refused")).unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::Tls, "{what}: {}", shown_chain(&e));
        assert!(e.is_configuration(), "{what}: {e}");
        let e = store.load().unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::Tls, "{what}: {}", shown_chain(&e));
    }
    assert_eq!(stored_access_token(&redis, "mtls:token"), "from-files");
    assert_eq!(
        revision(&redis, "mtls:token"),
        2,
        "the refused saves wrote nothing"
    );
}

#[test]
fn acl_users_authenticate_over_tls() {
    let pki = TestPki::new("tokengate redis CA");
    // No plain port: AUTH can only have travelled inside TLS.
    let redis = RedisServer::with_tls(
        &pki,
        ClientAuth::Off,
        &[
            "--user",
            "worker",
            "on",
            ">s3cret-acl",
            "~app:*",
            "&*",
            "+@all",
        ],
    );
    let app = tls_store(&redis, Some("worker:s3cret-acl"), "app:", trusting(&pki));
    app.save(&Token::new("for-app")).unwrap();
    assert_eq!(
        app.load().unwrap().unwrap().access_token().secret(),
        "for-app"
    );
    assert_eq!(stored_access_token(&redis, "app:token"), "for-app");
    let who = redis.cli(&["ACL", "LOG"]);
    assert!(
        !who.contains("worker"),
        "no refused command or login: {who}"
    );

    let e = tls_store(&redis, Some("worker:wrong-pass"), "app:", trusting(&pki))
        .load()
        .unwrap_err();
    assert_eq!(
        e.kind(),
        StoreErrorKind::Denied,
        "TLS worked, AUTH did not: {e}"
    );
    assert!(
        !shown_chain(&e).contains("wrong-pass"),
        "{}",
        shown_chain(&e)
    );
    let e = tls_store(&redis, Some("worker:s3cret-acl"), "other:", trusting(&pki))
        .load()
        .unwrap_err();
    assert_eq!(
        e.kind(),
        StoreErrorKind::Denied,
        "the ACL allows app:* only: {e}"
    );
}

#[test]
fn unusable_tls_settings_are_configuration_errors_at_build() {
    let pki = TestPki::new("tokengate redis CA");
    let other = TestPki::new("another CA").client("other");
    let me = pki.client("me");
    let url = "rediss://worker:hunter2-secret@127.0.0.1:1/0";
    let build = |url: &str, network: Option<Network>| {
        let builder = RedisStore::builder(url);
        match network {
            Some(n) => builder.network(n),
            None => builder,
        }
        .build()
    };
    let cases: Vec<(&str, &str, Option<Network>, &str)> = vec![
        (
            "AddedOnly without certificates",
            url,
            Some(Network::new().roots(Roots::AddedOnly)),
            "none were added",
        ),
        (
            "a CA file that is not there",
            url,
            Some(Network::new().add_root_certificates_pem_file("/nonexistent/ca.pem")),
            "/nonexistent/ca.pem",
        ),
        (
            "a CA that is not PEM",
            url,
            Some(Network::new().add_root_certificates_pem("not a certificate")),
            "no certificate",
        ),
        (
            "a key that does not fit the certificate",
            url,
            Some(trusting(&pki).client_certificate_pem(me.cert_pem.clone(), other.key_pem.clone())),
            "does not fit",
        ),
        (
            "the OS TLS stack",
            url,
            Some(trusting(&pki).tls_backend(TlsBackend::NativeTls)),
            "rustls",
        ),
        (
            "#insecure",
            "rediss://worker:hunter2-secret@127.0.0.1:1/0#insecure",
            None,
            "#insecure",
        ),
        (
            "TLS settings for a plain URL",
            "redis://worker:hunter2-secret@127.0.0.1:1/0",
            Some(trusting(&pki)),
            "rediss://",
        ),
        (
            "TLS settings for a Unix socket",
            "redis+unix:///run/redis.sock",
            Some(Network::new()),
            "rediss://",
        ),
    ];
    for (what, url, network, says) in cases {
        let e = build(url, network).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{what}: {e:?}");
        assert!(e.is_configuration(), "{what}");
        let text = e.to_string();
        assert!(text.contains(says), "{what}: {text}");
        assert!(
            !shown_chain(&e).contains("hunter2-secret"),
            "{what}: {text}"
        );
    }
    // Nothing wrong: building does not connect.
    build(url, Some(trusting(&pki))).unwrap();
    build(url, None).unwrap();
}
