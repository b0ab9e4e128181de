//! `login` and `logout` against the loopback server's authorization endpoints: the device flow
//! approved through the server's test hook, the browser flow driven by a plain HTTP client that
//! follows the redirect (all a browser does here), discovery, revocation; what `login` records in
//! the profile.

use std::time::Duration;

use tokengate::{FileStore, TokenStore};
use tokengate_testserver::{DEMO_PUBLIC_CLIENT_ID, RedirectFault, TestServer};

use crate::support::*;

/// A server whose device logins may be polled every 50 ms (a loopback server's fractional
/// `interval` is honoured).
fn server() -> TestServer {
    let server = TestServer::start();
    server.set_device_interval(Duration::from_millis(50));
    server
}

/// Reads the device prompt from a running `login` (URL and user code) and approves the code.
fn approve(server: &TestServer, running: &mut Running) -> String {
    let (uri, code) = running.stderr_line(|line| {
        let rest = line.strip_prefix("To log in, open ")?;
        let (uri, code) = rest.split_once(" and enter the code ")?;
        Some((uri.to_owned(), code.to_owned()))
    });
    assert!(uri.starts_with(&server.url()), "{uri}");
    assert!(
        server.approve_device(&code),
        "no pending device login with {code:?}"
    );
    code
}

/// Reads the authorization URL from a running `login --browser`.
fn authorization_url(server: &TestServer, running: &mut Running) -> String {
    let prefix = server.authorization_url();
    running.stderr_line(|line| line.starts_with(&prefix).then(|| line.to_owned()))
}

#[test]
fn device_login_records_the_profile_and_logout_revokes() {
    let server = server();
    server.set_jwt_access_tokens(true);
    let home = Home::new("login-device");
    let issuer = server.issuer();
    let mut running = home.spawn(&[
        "login",
        "--device",
        "--issuer",
        &issuer,
        "--client-id",
        DEMO_PUBLIC_CLIENT_ID,
        "--scope",
        "read",
        "--scope",
        "write",
    ]);
    let code = approve(&server, &mut running);
    let run = running.finish().expect(0);
    assert_eq!(run.stdout, "", "nothing on stdout");
    assert!(run.stderr.contains(&code));
    let store = FileStore::new(home.token_path("default"));
    let (access, refresh) = stored(&store);
    assert_quiet_about(&run, &[&access, &refresh]);
    let c = server.counters();
    assert_eq!((c.device_grants, c.device_polls_too_fast), (1, 0), "{c:?}");
    assert!(c.metadata_requests >= 1, "{c:?}");

    // Recorded: the issuer, what discovery found, the client, the scopes, the flow.
    let config = home.config();
    for line in [
        format!("issuer = \"{issuer}\""),
        format!("token_endpoint = \"{}\"", server.token_url()),
        format!(
            "device_authorization_endpoint = \"{}\"",
            server.device_authorization_url()
        ),
        format!("revocation_endpoint = \"{}\"", server.revocation_url()),
        "client_id = \"demo-public\"".to_owned(),
        "scopes = [\"read\", \"write\"]".to_owned(),
        "flow = \"device\"".to_owned(),
    ] {
        assert!(config.contains(&line), "{line} in {config}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&home.config_path()), 0o600);
        assert_eq!(mode(&home.token_path("default")), 0o600);
    }

    // The everyday commands use it, with no option and no network.
    let before = server.counters().token_requests;
    assert_eq!(home.run(&["token"]).expect(0).stdout, format!("{access}\n"));
    let status = home.run(&["status"]).expect(0);
    assert!(
        status.stdout.contains("who            subject demo-user"),
        "{status:?}"
    );
    assert!(
        status.stdout.contains("scopes         read write"),
        "{status:?}"
    );
    assert!(
        status.stdout.contains("login flow     device"),
        "{status:?}"
    );
    assert_eq!(server.counters().token_requests, before);

    // Logout revokes at the server and clears the store; the profile stays.
    let run = home.run(&["logout"]).expect(0);
    assert!(run.stderr.contains("revoked"), "{run:?}");
    assert_eq!(server.counters().revocations, 1);
    assert!(!server.is_refresh_token_valid(&refresh));
    assert!(store.load().unwrap().is_none());
    home.run(&["token"]).expect(3);
    home.run(&["status"]).expect(3);
    assert_eq!(home.config(), config);
    home.run(&["logout"]).expect(0);
    assert_eq!(server.counters().revocations, 1, "nothing left to revoke");

    // Logging in again needs no option: the profile has them.
    let mut running = home.spawn(&["login"]);
    approve(&server, &mut running);
    running.finish().expect(0);
    assert_eq!(server.counters().device_grants, 2);
    assert_ne!(stored(&store).1, refresh);
    assert_eq!(home.config(), config);
}

#[test]
fn browser_login_of_a_confidential_client_with_its_own_store() {
    let server = server();
    let home = Home::new("login-browser");
    let issuer = server.issuer();
    let args = [
        "login",
        "--browser",
        "--issuer",
        &issuer,
        "--client-id",
        "demo-client",
        "--client-secret",
        "demo-secret",
        "--profile",
        "work",
        "--store",
        "tokens/work.json",
    ];

    // Refused in the browser: no session, and nothing recorded.
    server.set_redirect_fault(RedirectFault::Error("access_denied".into()));
    let mut running = home.spawn(&args);
    let url = authorization_url(&server, &mut running);
    browse(&url);
    let run = running.finish().expect(3);
    assert!(
        run.stderr.contains("access_denied") || run.stderr.contains("denied"),
        "{run:?}"
    );
    assert!(!home.config_path().exists());

    server.set_redirect_fault(RedirectFault::None);
    let mut running = home.spawn(&args);
    let url = authorization_url(&server, &mut running);
    let (status, page) = browse(&url);
    assert_eq!(status, 200, "{page}");
    let run = running.finish().expect(0);
    assert_eq!(run.stdout, "");
    let store = FileStore::new(home.path().join("tokens/work.json"));
    let (access, refresh) = stored(&store);
    assert_quiet_about(&run, &[&access, &refresh, "demo-secret"]);
    let c = server.counters();
    assert_eq!((c.code_exchanges, c.pkce_failures), (1, 0), "{c:?}");

    let config = home.config();
    for line in [
        "[profiles.work]".to_owned(),
        "client_secret = \"demo-secret\"".to_owned(),
        "flow = \"browser\"".to_owned(),
        format!(
            "store = \"{}\"",
            home.path().join("tokens/work.json").display()
        ),
    ] {
        assert!(config.contains(&line), "{line} in {config}");
    }
    assert!(
        !home.token_path("work").exists(),
        "the token is where --store said"
    );

    let api = format!("{}/api/me", server.url());
    let run = home
        .run(&["request", "GET", &api, "--profile", "work"])
        .expect(0);
    assert!(run.stdout.contains("\"ok\":true"), "{run:?}");
    let status = home.run(&["status", "--profile", "work"]).expect(0);
    assert!(!status.stdout.contains("demo-secret"));
}

#[test]
fn login_mistakes_and_failures_have_their_exit_codes() {
    let server = server();
    let home = Home::new("login-errors");
    let public = ["--client-id", DEMO_PUBLIC_CLIENT_ID];

    // 2: plain http off loopback, nothing to log in to, no client id.
    let run = home
        .run(
            &[
                &["login", "--issuer", "http://auth.example.com"],
                &public[..],
            ]
            .concat(),
        )
        .expect(2);
    assert!(run.stderr.contains("plain http"), "{run:?}");
    home.run(&["login"]).expect(2);
    home.run(&["login", "--issuer", &server.issuer()]).expect(2);
    home.run(&["login", "--device", "--browser"]).expect(2);
    assert!(!home.config_path().exists());
    assert_eq!(server.counters().device_authorizations, 0);

    // 4: the issuer cannot be reached.
    let closed = tokengate_testserver::closed_port_url();
    home.run(&[&["login", "--issuer", &closed], &public[..]].concat())
        .expect(4);

    // 3: the user said no; the session stored before stays.
    let mut running = home.spawn(&[&["login", "--issuer", &server.issuer()], &public[..]].concat());
    approve(&server, &mut running);
    running.finish().expect(0);
    let store = FileStore::new(home.token_path("default"));
    let before = stored(&store);
    let mut running = home.spawn(&["login"]);
    let code = running.stderr_line(|line| {
        line.split_once(" and enter the code ")
            .map(|(_, code)| code.to_owned())
    });
    assert!(server.deny_device(&code));
    running.finish().expect(3);
    assert_eq!(stored(&store), before);
    assert_eq!(
        home.run(&["token"]).expect(0).stdout,
        format!("{}\n", before.0)
    );
}

#[cfg(feature = "redis")]
#[test]
fn login_with_a_redis_store_then_another_machine_joins_by_copying_the_config() {
    use tokengate_testserver::services::RedisServer;

    let server = server();
    let redis = RedisServer::start();
    let a = Home::new("login-redis-a");
    let mut running = a.spawn(&[
        "login",
        "--store",
        &redis.url(),
        "--issuer",
        &server.issuer(),
        "--client-id",
        DEMO_PUBLIC_CLIENT_ID,
    ]);
    approve(&server, &mut running);
    running.finish().expect(0);
    let access = a.run(&["token"]).expect(0).stdout;
    assert!(!a.data_dir().join("tokengate").exists(), "no token file");
    assert_no_file_holds(a.path(), access.trim_end());

    let b = Home::new("login-redis-b");
    std::fs::create_dir_all(b.config_path().parent().unwrap()).unwrap();
    std::fs::copy(a.config_path(), b.config_path()).unwrap();
    let before = server.counters();
    assert_eq!(b.run(&["token"]).expect(0).stdout, access);
    let after = server.counters();
    assert_eq!(
        (after.token_requests, after.device_authorizations),
        (before.token_requests, before.device_authorizations),
        "no login, no refresh"
    );

    // A logout on one machine ends the session for all.
    b.run(&["logout"]).expect(0);
    assert_eq!(server.counters().revocations, 1);
    a.run(&["token"]).expect(3);
}
