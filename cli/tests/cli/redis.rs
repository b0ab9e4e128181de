//! `--store redis://…` against a real redis-server started by the test: the session lives in
//! Redis only, and a second machine (another home) joins it by copying the config file.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokengate::{RedisStore, TokenStore};
use tokengate_testserver::TestServer;
use tokengate_testserver::services::RedisServer;

use crate::support::*;

const KEY: &str = "tokengate:default:token";

/// The access and refresh tokens Redis holds, read with redis-cli.
fn in_redis(redis: &RedisServer) -> (String, String) {
    let doc: serde_json::Value = serde_json::from_str(&redis.cli(&["GET", KEY])).unwrap();
    (
        doc["access_token"].as_str().unwrap().to_owned(),
        doc["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn a_redis_session_lives_in_redis_only_and_a_second_machine_joins_by_copying_the_config() {
    let server = TestServer::start();
    let redis = RedisServer::with_args(&["--requirepass", "hunter2"]);
    let url = redis.url_as(":hunter2");
    let cli = |args: &[&str]| {
        let mut all = vec!["-a", "hunter2", "--no-auth-warning"];
        all.extend_from_slice(args);
        redis.cli(&all)
    };
    let read = || -> (String, String) {
        let doc: serde_json::Value = serde_json::from_str(&cli(&["GET", KEY])).unwrap();
        (
            doc["access_token"].as_str().unwrap().to_owned(),
            doc["refresh_token"].as_str().unwrap().to_owned(),
        )
    };
    // The operator's login, saved with the library's store under the profile's key prefix.
    RedisStore::builder(&url)
        .key_prefix("tokengate:default:")
        .build()
        .unwrap()
        .save(&expired_login(&server))
        .unwrap();

    // Machine A names the store on the command line.
    let a = Home::new("redis-a");
    a.write_config(&profile("default", &server));
    let run = a.run(&["token", "--store", &url]).expect(0);
    let (access, refresh) = read();
    assert_eq!(run.stdout, format!("{access}\n"));
    assert_eq!(server.counters().refreshes, 1);
    assert!(!a.data_dir().join("tokengate").exists(), "no token file");
    assert_no_file_holds(a.path(), &access);
    assert_no_file_holds(a.path(), &refresh);

    // Machine B gets a config file whose profile names the store (as `login --store` records it).
    let b = Home::new("redis-b");
    b.write_config(&format!(
        "{}store = \"{url}\"\n",
        profile("default", &server)
    ));
    let run = b.run(&["token"]).expect(0);
    assert_eq!(
        run.stdout,
        format!("{access}\n"),
        "the same session, no login"
    );
    assert_eq!(server.counters().refreshes, 1, "and no refresh");
    let status = b.run(&["status"]).expect(0);
    assert!(
        status.stdout.contains(&format!(
            "Redis redis://:***@127.0.0.1:{}/0, key {KEY}",
            redis.port()
        )),
        "{status:?}"
    );
    for run in [&status, &run] {
        assert!(!run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"));
    }
    assert_no_file_holds(b.path(), &refresh);

    // A third machine copies B's file as it is.
    let c = Home::new("redis-c");
    std::fs::create_dir_all(c.config_path().parent().unwrap()).unwrap();
    std::fs::copy(b.config_path(), c.config_path()).unwrap();
    assert_eq!(c.run(&["token"]).expect(0).stdout, format!("{access}\n"));

    // The three machines over several expiries of 1-second rotating tokens: one refresh per
    // expiry for all of them, never an invalid_grant.
    server.set_token_lifetime(Duration::from_secs(1));
    RedisStore::builder(&url)
        .key_prefix("tokengate:default:")
        .build()
        .unwrap()
        .save(&expired_login(&server))
        .unwrap();
    server.reset_counters();
    let homes = Arc::new([b, c]);
    let started = Instant::now();
    let until = started + Duration::from_secs(3);
    let h = Arc::clone(&homes);
    let runs: Vec<Vec<Run>> = on_threads(8, move |i| {
        let mut runs = Vec::new();
        while Instant::now() < until {
            runs.push(h[i % 2].run(&["token"]));
        }
        runs
    });
    let elapsed = started.elapsed();
    let c = server.counters();
    let runs: Vec<&Run> = runs.iter().flatten().collect();
    assert!(
        runs.iter().all(|r| r.code == 0 && r.stderr.is_empty()),
        "{runs:?}"
    );
    assert_eq!((c.invalid_grant, c.reuse_detected), (0, 0), "{c:?}");
    assert_eq!(c.max_concurrent_refreshes, 1, "{c:?}");
    let expiries = (elapsed.as_secs_f64() / 0.8).ceil() as u64 + 1;
    assert!(
        c.refreshes >= 2 && c.refreshes <= expiries + 1,
        "{c:?} in {elapsed:?}"
    );
    let printed: BTreeSet<&str> = runs.iter().map(|r| r.stdout.trim_end()).collect();
    assert!(printed.len() as u64 <= c.refreshes + 1);
    assert!(
        printed.contains(read().0.as_str()),
        "Redis holds the newest token"
    );
    for home in homes.iter() {
        assert!(!home.data_dir().join("tokengate").exists());
    }
}

#[test]
fn redis_down_is_transient_and_a_wrong_password_says_so_without_showing_it() {
    let server = TestServer::start();
    let mut redis = RedisServer::start();
    let home = Home::new("redis-down");
    home.write_config(&format!(
        "{}store = \"{}\"\n",
        profile("default", &server),
        redis.url()
    ));
    let seeded = login(&server);
    RedisStore::builder(redis.url())
        .key_prefix("tokengate:default:")
        .build()
        .unwrap()
        .save(&seeded)
        .unwrap();
    assert_eq!(in_redis(&redis).0, seeded.access_token().secret());
    assert_eq!(
        home.run(&["token"]).expect(0).stdout.trim_end(),
        seeded.access_token().secret()
    );

    redis.stop(false);
    let run = home.run(&["token", "--timeout", "2"]).expect(4);
    assert!(run.stderr.contains("Redis"), "{run:?}");
    home.run(&["status"]).expect(4);

    let locked = RedisServer::with_args(&["--requirepass", "right"]);
    let run = home
        .run(&["token", "--store", &locked.url_as(":wrong-password")])
        .expect(2);
    assert!(!run.stderr.contains("wrong-password"), "{run:?}");
}
