//! `token`, `request` and `status` against the loopback server, with a profile written by hand and
//! a session seeded through the library's `FileStore`; what the server counted.

use std::time::Duration;

use tokengate::{FileStore, TokenStore};
use tokengate_testserver::{ClientCerts, HttpProxy, TestPki, TestServer, TlsFront};

use crate::support::*;

#[test]
fn token_prints_the_access_token_and_nothing_else() {
    let server = TestServer::start();
    let home = Home::new("token");
    home.write_config(&profile("default", &server));
    let fresh = login(&server);
    let store = seed(&home, "default", &fresh);

    let run = home.run(&["token"]).expect(0);
    assert_eq!(run.stdout, format!("{}\n", fresh.access_token().secret()));
    assert_eq!(run.stderr, "");
    assert_eq!(
        server.counters().token_requests,
        0,
        "a valid token is used as it is"
    );

    // An expired access token is refreshed once; the rotated refresh token is saved.
    let (old_access, old_refresh) = stored(&seed(&home, "default", &expired_login(&server)));
    let run = home.run(&["token"]).expect(0);
    let (access, refresh) = stored(&store);
    assert_eq!(run.stdout, format!("{access}\n"));
    assert_ne!(access, old_access);
    assert_ne!(refresh, old_refresh, "the server rotates refresh tokens");
    assert!(server.is_access_token_valid(&access));
    assert_eq!(run.stderr, "");
    let again = home.run(&["token"]).expect(0);
    assert_eq!(again.stdout, run.stdout);
    let c = server.counters();
    assert_eq!((c.refreshes, c.invalid_grant), (1, 0), "{c:?}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.token_path("default"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn request_sends_the_token_and_streams_the_body() {
    let server = TestServer::start();
    let home = Home::new("request");
    home.write_config(&profile("default", &server));
    let token = login(&server);
    seed(&home, "default", &token);
    let api = format!("{}/api/me", server.url());

    let run = home.run(&["request", "GET", &api]).expect(0);
    let body: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(body["path"], "/api/me");
    assert_eq!(run.stderr, "HTTP/1.1 200 OK\n");

    // A body from the command line, a file and stdin; headers; the method in lower case.
    let file = home.path().join("body.json");
    std::fs::write(&file, "{\"from\":\"file\"}").unwrap();
    for (data, len) in [("a=1&b=2", 7), (&*format!("@{}", file.display()), 15)] {
        let run = home
            .run(&["request", "post", &api, "-d", data, "-H", "X-Trace: 1"])
            .expect(0);
        let body: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(
            (&body["method"], &body["body_len"]),
            (&"POST".into(), &len.into())
        );
    }
    let run = home
        .run_with_stdin(&["request", "PUT", &api, "-d", "@-"], b"from stdin")
        .expect(0);
    let body: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(body["body_len"], 10);

    // The header carries the token to the API's origin.
    let run = home
        .run(&["request", "GET", &format!("{}/api/echo-auth", server.url())])
        .expect(0);
    assert!(
        run.stdout
            .contains(&format!("Bearer {}", token.access_token().secret()))
    );

    // A status of 400 or more: exit 1, body still on stdout.
    let run = home
        .run(&["request", "GET", &format!("{}/nope", server.url())])
        .expect(1);
    assert!(run.stderr.starts_with("HTTP/1.1 404"), "{run:?}");

    // A rejected token is refreshed and the request sent once more; still rejected: exit 1.
    server.set_reject_all(true);
    let before = server.counters();
    let run = home.run(&["request", "GET", &api]).expect(1);
    assert_eq!(run.stderr, "HTTP/1.1 401 Unauthorized\n");
    let c = server.counters();
    assert_eq!(c.refreshes - before.refreshes, 1, "{c:?}");
    assert_eq!(c.api_rejected - before.api_rejected, 2, "{c:?}");
    assert_quiet_about(&run, &[token.access_token().secret(), "demo-secret"]);

    // Mistakes are usage errors, before anything is sent.
    let calls = server.counters().api_calls;
    for args in [
        &["request", "GET", &api, "-H", "Authorization: Bearer mine"][..],
        &["request", "GET", &api, "-H", "no colon"],
        &["request", "G E T", &api],
        &["request", "GET", "http://example.com/api"],
        &["request", "GET", "/api/me"],
        &["request", "GET", &api, "-d", "@/nonexistent/file"],
    ] {
        home.run(args).expect(2);
    }
    assert_eq!(server.counters().api_calls, calls);
}

#[test]
fn status_shows_the_session_never_the_token() {
    let server = TestServer::start();
    let home = Home::new("status");
    home.write_config(&profile("default", &server));
    let run = home.run(&["status"]).expect(3);
    assert!(run.stdout.contains("session        none"), "{run:?}");
    assert!(run.stderr.contains("tokengate login"), "{run:?}");

    let token = login(&server);
    seed(&home, "default", &token);
    let run = home.run(&["status"]).expect(0);
    for line in [
        "profile        default (",
        "client         demo-client (confidential",
        "session        active",
        "access token   expires in ",
        "refresh token  yes",
        &format!(
            "store          file {}",
            home.token_path("default").display()
        ),
    ] {
        assert!(run.stdout.contains(line), "{line:?} in {}", run.stdout);
    }
    let secrets = [token.access_token().secret(), "demo-secret"];
    for secret in secrets {
        assert!(!run.stdout.contains(secret));
    }
    assert_quiet_about(&run, &secrets);
    assert_eq!(
        server.counters().token_requests,
        0,
        "status makes no network call"
    );
}

#[test]
fn exit_codes() {
    let server = TestServer::start();
    let home = Home::new("exit");

    // 2: usage, configuration (including invalid_client).
    home.run(&["frobnicate"]).expect(2);
    home.run(&["token", "--timeout", "0"]).expect(2);
    home.write_config("[profiles.default\n");
    home.run(&["token"]).expect(2);
    home.write_config("[profiles.default]\ntoken_endpoint = \"http://auth.example.com/token\"\n");
    let run = home.run(&["token"]).expect(2);
    assert!(
        run.stderr
            .contains("plain http is allowed only on loopback"),
        "{run:?}"
    );
    home.write_config("[profiles.default]\nclient_id = \"x\"\n");
    home.run(&["token"]).expect(2);
    home.write_config(&profile("default", &server).replace("demo-secret", "wrong-secret"));
    seed(&home, "default", &expired_login(&server));
    let run = home.run(&["token"]).expect(2);
    assert!(run.stderr.contains("invalid_client"), "{run:?}");
    assert_quiet_about(&run, &["wrong-secret"]);
    home.write_config(&profile("default", &server));
    home.run(&["token", "--store", "ftp://elsewhere/x"])
        .expect(2);

    // 3: login required: no profile, no session, a refresh token the server no longer honours, a
    // session file that cannot be read back.
    home.run(&["token", "--profile", "never-logged-in"])
        .expect(3);
    std::fs::remove_file(home.token_path("default")).unwrap();
    home.run(&["token"]).expect(3);
    seed(&home, "default", &expired_login(&server));
    server.revoke_refresh_tokens();
    let run = home.run(&["token"]).expect(3);
    assert!(run.stderr.contains("tokengate login"), "{run:?}");
    std::fs::write(home.token_path("default"), "{\"version\":1,").unwrap();
    home.run(&["token"]).expect(3);

    // 4: transient: the token endpoint down or failing, the API unreachable.
    seed(&home, "default", &expired_login(&server));
    server.set_failure(tokengate_testserver::Failure::Unavailable {
        retry_after_secs: 1,
    });
    let run = home.run(&["token", "--timeout", "1"]).expect(4);
    assert!(run.took < Duration::from_secs(8), "{run:?}");
    server.set_failure(tokengate_testserver::Failure::None);
    let closed = tokengate_testserver::closed_port_url();
    home.write_config(&format!(
        "[profiles.default]\ntoken_endpoint = \"{closed}/oauth/token\"\nclient_id = \"demo-client\"\n"
    ));
    let run = home.run(&["token", "--timeout", "1"]).expect(4);
    assert!(run.took < Duration::from_secs(8), "{run:?}");
    home.write_config(&profile("default", &server));
    seed(&home, "default", &login(&server));
    home.run(&["request", "GET", &format!("{closed}/api/me")])
        .expect(4);

    // The codes are documented, in every command's help.
    for args in [
        &["--help"][..],
        &["login", "--help"],
        &["token", "--help"],
        &["request", "--help"],
        &["status", "-h"],
        &["logout", "--help"],
    ] {
        let help = home.run(args).expect(0);
        for code in [
            "0  success",
            "1  `request`",
            "2  usage",
            "3  login required",
            "4  transient",
        ] {
            assert!(help.stdout.contains(code), "{code:?} in {}", help.stdout);
        }
    }
}

#[test]
fn global_options_go_before_or_after_the_command_and_override_the_profile() {
    let server = TestServer::start();
    let home = Home::new("globals");
    home.write_config(&format!(
        "{}\n{}",
        profile("default", &server),
        profile("work", &server)
    ));
    let (a, b, c) = (login(&server), login(&server), login(&server));
    seed(&home, "default", &a);
    seed(&home, "work", &b);
    let other = home.path().join("elsewhere.json");
    FileStore::new(&other).save(&c).unwrap();

    let line = |t: &tokengate::Token| format!("{}\n", t.access_token().secret());
    assert_eq!(home.run(&["token"]).expect(0).stdout, line(&a));
    assert_eq!(
        home.run(&["--profile", "work", "token"]).expect(0).stdout,
        line(&b)
    );
    assert_eq!(
        home.run(&["token", "--profile", "work"]).expect(0).stdout,
        line(&b)
    );
    assert_eq!(
        home.run(&["--store", "elsewhere.json", "token"])
            .expect(0)
            .stdout,
        line(&c)
    );
    assert_eq!(
        home.run(&["token", "--store", "elsewhere.json"])
            .expect(0)
            .stdout,
        line(&c)
    );
    // Overrides are for one invocation: the profile is unchanged.
    assert_eq!(home.run(&["token"]).expect(0).stdout, line(&a));
}

#[test]
fn ca_client_certificate_and_proxy_reach_the_token_endpoint_and_the_api() {
    let server = TestServer::start();
    let pki = TestPki::new("tokengate cli test CA");
    let front = TlsFront::start(&pki, server.addr(), ClientCerts::Required);
    let proxy = HttpProxy::start();
    let home = Home::new("network");
    let write = |name: &str, pem: &str| {
        let path = home.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let ca = write("ca.pem", &pki.ca_pem());
    let me = pki.client("me");
    let (cert, key) = (write("me.crt", &me.cert_pem), write("me.key", &me.key_pem));
    home.write_config(&format!(
        "[profiles.default]\ntoken_endpoint = \"{}/oauth/token\"\nclient_id = \"demo-client\"\nclient_secret = \"demo-secret\"\n",
        front.url()
    ));
    let store = seed(&home, "default", &expired_login(&server));

    // Without the CA the server is not trusted; without the client certificate it refuses us.
    home.run(&["token"]).expect(2);
    home.run(&["token", "--cacert", &ca]).expect(2);
    assert_eq!(server.counters().token_requests, 0);

    let tls = ["--cacert", &ca, "--cert", &cert, "--key", &key];
    let run = home.run(&[&tls[..], &["token"]].concat()).expect(0);
    assert_eq!(run.stdout, format!("{}\n", stored(&store).0));
    assert_eq!(server.counters().refreshes, 1);

    // The API over https through the proxy (a CONNECT tunnel: the token is never in clear text).
    let api = format!("{}/api/me", front.url());
    let proxy_url = proxy.url();
    let args = [&["request", "GET", &api, "--proxy", &proxy_url], &tls[..]].concat();
    let run = home.run(&args).expect(0);
    assert!(run.stdout.contains("\"ok\":true"), "{run:?}");
    assert!(proxy.tunnels() >= 1);
    assert!(!proxy.saw(&stored(&store).0));
}
