//! `--store keyring` against a real Secret Service (`gnome-keyring-daemon` on a private session bus
//! started by the test). The test process cannot point itself at that bus (the address is an
//! environment variable), so the session is seeded by this test binary run again as a child.

use std::process::{Command, Stdio};

use tokengate::{FileStore, KeyringStore, TokenStore};
use tokengate_testserver::TestServer;
use tokengate_testserver::services::SecretService;

use crate::support::*;

/// The seed child's input: a token in the `FileStore` format.
const SEED: &str = "TOKENGATE_CLI_TEST_SEED";
const PROFILE: &str = "TOKENGATE_CLI_TEST_PROFILE";

/// Not a test: the child that saves a session into the keyring the way `tokengate` reads it
/// (service `tokengate`, account = the profile).
#[test]
#[ignore = "child process of the keyring tests"]
fn seed_child() {
    let (Ok(seed), Ok(profile)) = (std::env::var(SEED), std::env::var(PROFILE)) else {
        panic!("{SEED} not set: this runs only as a child of the keyring tests");
    };
    let token = FileStore::decode(seed.as_bytes()).unwrap();
    KeyringStore::new("tokengate", profile)
        .unwrap()
        .save(&token)
        .unwrap();
}

fn seed_keyring(service: &SecretService, profile: &str, token: &tokengate::Token) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "keyring::seed_child",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env(SEED, FileStore::encode(token))
        .env(PROFILE, profile)
        .env("DBUS_SESSION_BUS_ADDRESS", service.address())
        .env("XDG_RUNTIME_DIR", service.runtime_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "the seed child failed: {out:?}");
}

/// The access token the Secret Service holds for a profile, read with secret-tool.
fn in_keyring(service: &SecretService, profile: &str) -> String {
    let text = service.secret_tool(&["lookup", "service", "tokengate", "username", profile]);
    let doc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    doc["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn a_keyring_session_is_refreshed_in_the_secret_service_and_never_written_to_a_file() {
    let server = TestServer::start();
    let service = SecretService::start();
    let home = Home::new("keyring").env("DBUS_SESSION_BUS_ADDRESS", service.address());
    home.write_config(&format!(
        "{}store = \"keyring\"\n",
        profile("default", &server)
    ));
    let seeded = expired_login(&server);
    seed_keyring(&service, "default", &seeded);
    assert_eq!(
        in_keyring(&service, "default"),
        seeded.access_token().secret()
    );

    let run = home.run(&["token"]).expect(0);
    let access = in_keyring(&service, "default");
    assert_ne!(access, seeded.access_token().secret());
    assert_eq!(run.stdout, format!("{access}\n"));
    assert_eq!(server.counters().refreshes, 1);
    assert!(!home.data_dir().join("tokengate").exists(), "no token file");
    assert_no_file_holds(home.path(), &access);

    // Concurrent processes share it under the keyring's lock file: one refresh.
    seed_keyring(&service, "default", &expired_login(&server));
    server.reset_counters();
    let home = std::sync::Arc::new(home);
    let h = std::sync::Arc::clone(&home);
    let runs = on_threads(4, move |_| h.run(&["token"]));
    let printed: Vec<&str> = runs.iter().map(|r| r.stdout.as_str()).collect();
    assert!(runs.iter().all(|r| r.code == 0), "{runs:?}");
    assert!(printed.iter().all(|p| *p == printed[0]), "{printed:?}");
    let c = server.counters();
    assert_eq!((c.refreshes, c.invalid_grant), (1, 0), "{c:?}");

    let status = home.run(&["status"]).expect(0);
    assert!(
        status
            .stdout
            .contains("OS credential store, service tokengate, account default"),
        "{status:?}"
    );
}

#[test]
fn no_secret_service_is_a_configuration_error_not_a_file_fallback() {
    let server = TestServer::start();
    // No session bus at all.
    let home = Home::new("no-keyring");
    home.write_config(&profile("default", &server));
    let run = home.run(&["token", "--store", "keyring"]).expect(2);
    assert!(run.stderr.contains("credential store"), "{run:?}");
    assert!(files_under(&home.data_dir()).is_empty());
}
