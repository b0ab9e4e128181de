//! TLS trust, client certificates and proxies, end to end: the test server behind an HTTPS front
//! with its own CA (made at test time), real HTTP CONNECT and SOCKS5 proxies on loopback, and the
//! OAuth2 refresher going through the same settings as the API requests.

use std::process::Command;

use tokengate::{Client, Error, Network, OAuth2, RefreshErrorKind, Roots, Token};
use tokengate_testserver::{
    ClientCerts, HttpProxy, Socks5Proxy, TestPki, TestServer, TlsFront, closed_port_url,
};

use crate::support::*;

/// The test server behind an HTTPS front of a private CA.
struct Https {
    pki: TestPki,
    server: TestServer,
    front: TlsFront,
}

fn https(client_certs: ClientCerts) -> Https {
    let pki = TestPki::new("tokengate test CA");
    let server = TestServer::start();
    let front = TlsFront::start(&pki, server.addr(), client_certs);
    Https { pki, server, front }
}

impl Https {
    /// A client of the API over https with an expired token, so the first call refreshes through
    /// the token endpoint over https too.
    fn client(&self, network: Network) -> Result<Client, Error> {
        Client::builder(format!("{}/api", self.front.url()))
            .token(expired_login(&self.server))
            .refresher(
                OAuth2::refresh_token(format!("{}/oauth/token", self.front.url()))
                    .client_id("demo-client")
                    .client_secret("demo-secret"),
            )
            .refresh_timeout(PATIENCE)
            .network(network)
            .build()
    }

    fn trusted(&self) -> Network {
        Network::new().add_root_certificates_pem(self.pki.ca_pem())
    }
}

#[test]
fn a_private_ca_added_from_pem_is_trusted_by_the_api_and_the_refresher() {
    let h = https(ClientCerts::Ignored);
    let client = h.client(h.trusted()).unwrap();
    assert_eq!(get_status(&client, "/items"), 200);
    let c = h.server.counters();
    assert_eq!((c.refreshes, c.api_ok), (1, 1));
    // One connection for the token endpoint's agent, one for the API's.
    assert_eq!(h.front.handshakes(), 2);
    assert_eq!(h.front.failed_handshakes(), 0);
}

#[test]
fn a_private_ca_file_works_from_the_client_builder_and_with_roots_added_only() {
    let h = https(ClientCerts::Ignored);
    let dir = temp_dir("tg-ca");
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, h.pki.ca_pem()).unwrap();
    let client = Client::builder(format!("{}/api", h.front.localhost_url()))
        .token(login(&h.server))
        .add_root_certificates_pem_file(&path)
        .build()
        .unwrap();
    assert_eq!(get_status(&client, "/items"), 200);
    let pinned = Network::new()
        .roots(Roots::AddedOnly)
        .add_root_certificates_pem_file(&path);
    assert_eq!(get_status(&h.client(pinned).unwrap(), "/items"), 200);
    assert_eq!(h.server.counters().api_ok, 2);
}

#[test]
fn without_the_ca_the_api_is_refused_with_a_tls_error_that_is_not_transient() {
    let h = https(ClientCerts::Ignored);
    let client = Client::builder(format!("{}/api", h.front.url()))
        .token(login(&h.server))
        .build()
        .unwrap();
    let e = client.get("/items").call().unwrap_err();
    assert!(matches!(e, Error::Tls(_)), "{e:?}");
    assert!(
        e.is_tls() && !e.is_transient() && !e.is_login_required(),
        "{e}"
    );
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    // Trusting another CA only (pinning) is refused the same way.
    let other = TestPki::new("another CA");
    let pinned = Network::new()
        .roots(Roots::AddedOnly)
        .add_root_certificates_pem(other.ca_pem());
    let e = h.client(pinned).unwrap().get("/items").call().unwrap_err();
    assert!(e.is_tls() && !e.is_transient(), "{e}");
    eventually("the front saw both handshakes fail", || {
        h.front.failed_handshakes() == 2
    });
    assert_eq!(h.server.counters().api_calls, 0);
}

#[test]
fn the_refresher_without_the_ca_fails_with_a_tls_refresh_error_not_a_login() {
    let h = https(ClientCerts::Ignored);
    // The API is plain http; only the token endpoint is behind the private CA.
    let client = Client::builder(format!("{}/api", h.server.url()))
        .token(expired_login(&h.server))
        .refresher(
            OAuth2::refresh_token(format!("{}/oauth/token", h.front.url()))
                .client_id("demo-client")
                .client_secret("demo-secret"),
        )
        .build()
        .unwrap();
    let e = client.get("/items").call().unwrap_err();
    let refresh = e.refresh_error().expect("a refresh error");
    assert_eq!(refresh.kind(), RefreshErrorKind::Tls, "{e}");
    assert!(!refresh.is_transient() && !refresh.is_permanent(), "{e}");
    assert!(refresh.is_configuration() && e.is_configuration(), "{e}");
    assert!(
        e.is_tls() && !e.is_login_required() && !e.is_transient(),
        "{e}"
    );
    assert_eq!(h.server.counters().token_requests, 0);
    // With its own network settings the refresher trusts the CA; the API agent is unchanged.
    let client = Client::builder(format!("{}/api", h.server.url()))
        .token(expired_login(&h.server))
        .refresher(
            OAuth2::refresh_token(format!("{}/oauth/token", h.front.url()))
                .client_id("demo-client")
                .client_secret("demo-secret")
                .network(h.trusted()),
        )
        .build()
        .unwrap();
    assert_eq!(get_status(&client, "/items"), 200);
    assert_eq!(h.server.counters().refreshes, 1);
}

#[test]
fn mutual_tls_is_accepted_with_the_client_certificate_for_the_api_and_the_token_endpoint() {
    let h = https(ClientCerts::Required);
    let me = h.pki.client("tokengate test client");
    let client = h
        .client(
            h.trusted()
                .client_certificate_pem(me.cert_pem.clone(), me.key_pem.clone()),
        )
        .unwrap();
    assert_eq!(get_status(&client, "/items"), 200);
    let c = h.server.counters();
    assert_eq!((c.refreshes, c.api_ok), (1, 1));
    assert_eq!(h.front.handshakes(), 2);
    // The same from files, one holding both the certificate and the key.
    let dir = temp_dir("tg-mtls");
    let both = dir.path().join("me.pem");
    std::fs::write(&both, format!("{}{}", me.cert_pem, me.key_pem)).unwrap();
    let client = h
        .client(h.trusted().client_certificate_pem_files(&both, &both))
        .unwrap();
    assert_eq!(get_status(&client, "/items"), 200);
}

#[test]
fn mutual_tls_is_refused_without_a_certificate_or_with_another_cas() {
    let h = https(ClientCerts::Required);
    let e = h
        .client(h.trusted())
        .unwrap()
        .get("/items")
        .call()
        .unwrap_err();
    assert!(e.is_tls() && !e.is_transient(), "{e:?}");
    let stranger = TestPki::new("a CA the server does not know").client("stranger");
    let network = h
        .trusted()
        .client_certificate_pem(stranger.cert_pem, stranger.key_pem);
    let e = h.client(network).unwrap().get("/items").call().unwrap_err();
    assert!(e.is_tls() && !e.is_transient(), "{e:?}");
    eventually("the front refused both handshakes", || {
        h.front.failed_handshakes() == 2
    });
    let c = h.server.counters();
    assert_eq!((c.api_calls, c.token_requests), (0, 0));
}

#[test]
fn bad_tls_material_is_a_configuration_error_when_the_client_is_built() {
    let h = https(ClientCerts::Required);
    let a = h.pki.client("a");
    let b = h.pki.client("b");
    let cases = [
        (
            "key of another certificate",
            h.trusted()
                .client_certificate_pem(a.cert_pem.clone(), b.key_pem.clone()),
        ),
        (
            "no key",
            h.trusted()
                .client_certificate_pem(a.cert_pem.clone(), a.cert_pem.clone()),
        ),
        ("not PEM", Network::new().add_root_certificates_pem("hello")),
        (
            "missing file",
            Network::new().add_root_certificates_pem_file("/nonexistent/ca.pem"),
        ),
        (
            "added-only without CA",
            Network::new().roots(Roots::AddedOnly),
        ),
    ];
    for (what, network) in cases {
        let e = h.client(network).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{what}: {e:?}");
    }
    // The key's text never shows in the error.
    let e = h
        .client(
            h.trusted()
                .client_certificate_pem(a.cert_pem, b.key_pem.clone()),
        )
        .unwrap_err();
    assert!(!e.to_string().contains(&b.key_pem[40..80]), "{e}");
}

/// An https API and token endpoint through an HTTP proxy: both agents tunnel with CONNECT and the
/// proxy never sees the token. The same check on plain http shows the token, so it can fail.
#[test]
fn over_https_the_token_never_reaches_the_proxy_in_clear_text() {
    let h = https(ClientCerts::Ignored);
    let proxy = HttpProxy::start();
    let token = expired_login(&h.server);
    let refresh = token.refresh_token().unwrap().secret().to_owned();
    let client = Client::builder(format!("{}/api", h.front.url()))
        .token(token)
        .refresher(
            OAuth2::refresh_token(format!("{}/oauth/token", h.front.url()))
                .client_id("demo-client")
                .client_secret("demo-secret"),
        )
        .network(h.trusted().proxy(proxy.url()))
        .build()
        .unwrap();
    assert_eq!(get_status(&client, "/items"), 200);
    let access = client.token().unwrap().access_token().secret().to_owned();
    assert_eq!(proxy.tunnels(), 2, "one tunnel per agent");
    assert_eq!(proxy.plain_requests(), 0);
    assert!(proxy.bytes_seen() > 1000, "the TLS traffic went through");
    for secret in [&access, &refresh, "demo-secret"] {
        assert!(!proxy.saw(secret), "the proxy saw a secret");
    }
    assert!(proxy.saw(&format!("CONNECT {}", h.front.addr())));

    // Control: a plain-http API through the same kind of proxy shows the token in the tunnel.
    let plain = HttpProxy::start();
    let token = login(&h.server);
    let secret = token.access_token().secret().to_owned();
    let client = Client::builder(format!("{}/api", h.server.url()))
        .token(token)
        .proxy(plain.url())
        .build()
        .unwrap();
    assert_eq!(get_status(&client, "/items"), 200);
    assert!(plain.saw(&secret));
}

#[test]
fn proxies_come_from_an_environment_snapshot_by_scheme_and_no_proxy() {
    let h = https(ClientCerts::Ignored);
    let https_proxy = HttpProxy::start();
    let http_proxy = HttpProxy::start();
    let vars = vec![
        ("HTTPS_PROXY".to_owned(), https_proxy.url()),
        ("http_proxy".to_owned(), http_proxy.url()),
    ];
    let client = h
        .client(h.trusted().proxy_from_env_vars(vars.clone()))
        .unwrap();
    assert_eq!(get_status(&client, "/items"), 200);
    assert_eq!((https_proxy.tunnels(), http_proxy.tunnels()), (2, 0));
    // http URLs take http_proxy.
    let plain = Client::builder(format!("{}/api", h.server.url()))
        .token(login(&h.server))
        .network(Network::new().proxy_from_env_vars(vars.clone()))
        .build()
        .unwrap();
    assert_eq!(get_status(&plain, "/items"), 200);
    assert_eq!((https_proxy.tunnels(), http_proxy.tunnels()), (2, 1));
    // NO_PROXY lists hosts reached directly: here by IP, then by name.
    let mut direct = vars.clone();
    direct.push(("NO_PROXY".into(), "example.com, 127.0.0.1".into()));
    let client = h.client(h.trusted().proxy_from_env_vars(direct)).unwrap();
    assert_eq!(get_status(&client, "/items"), 200);
    let by_name = Client::builder(format!("{}/api", h.front.localhost_url()))
        .token(login(&h.server))
        .network(h.trusted().proxy_from_env_vars(vars).no_proxy(".localhost"))
        .build()
        .unwrap();
    assert_eq!(get_status(&by_name, "/items"), 200);
    assert_eq!((https_proxy.tunnels(), http_proxy.tunnels()), (2, 1));
    assert_eq!(h.server.counters().api_ok, 4);
}

/// Run by [`the_process_environment_is_read_when_the_client_is_built`] in a child process with
/// `HTTPS_PROXY` set, so that no other test sees the variable.
#[test]
#[ignore = "run in a child process by the_process_environment_is_read_when_the_client_is_built"]
fn child_reads_https_proxy_from_the_process_environment() {
    let url = std::env::var("TG_CHILD_API").expect("run by the parent test");
    let ca = std::env::var("TG_CHILD_CA").unwrap();
    let token = std::env::var("TG_CHILD_TOKEN").unwrap();
    let client = Client::builder(url)
        .token(Token::new(token))
        .network(Network::new().add_root_certificates_pem_file(ca))
        .build()
        .unwrap();
    assert_eq!(get_status(&client, "/items"), 200);
}

#[test]
fn the_process_environment_is_read_when_the_client_is_built() {
    let h = https(ClientCerts::Ignored);
    let proxy = HttpProxy::start();
    let dir = temp_dir("tg-env");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, h.pki.ca_pem()).unwrap();
    let token = login(&h.server);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "network::child_reads_https_proxy_from_the_process_environment",
            "--ignored",
            "--quiet",
        ])
        .env("HTTPS_PROXY", proxy.url())
        .env_remove("https_proxy")
        .env_remove("all_proxy")
        .env_remove("no_proxy")
        .env_remove("NO_PROXY")
        .env("TG_CHILD_API", format!("{}/api", h.front.url()))
        .env("TG_CHILD_CA", &ca)
        .env("TG_CHILD_TOKEN", token.access_token().secret())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(h.server.counters().api_ok, 1);
}

#[test]
fn socks5_carries_the_api_and_the_refresh_and_checks_credentials() {
    let h = https(ClientCerts::Ignored);
    let socks = Socks5Proxy::with_credentials("me", "s3cret");
    let token = expired_login(&h.server);
    let refresh = token.refresh_token().unwrap().secret().to_owned();
    let client = h.client(h.trusted().proxy(socks.url())).unwrap();
    assert_eq!(get_status(&client, "/items"), 200);
    assert_eq!(socks.tunnels(), 2);
    assert!(!socks.saw(&refresh));
    assert!(!socks.saw(client.token().unwrap().access_token().secret()));
    let wrong = Socks5Proxy::with_credentials("me", "other");
    let e = Client::builder(format!("{}/api", h.front.url()))
        .token(login(&h.server))
        .network(h.trusted().proxy(socks.url().replace("s3cret", "nope")))
        .build()
        .unwrap()
        .get("/items")
        .call()
        .unwrap_err();
    let Error::Proxy(p) = &e else { panic!("{e:?}") };
    assert!(p.is_auth_refused() && !e.is_transient(), "{e}");
    assert!(!e.to_string().contains("nope"), "{e}");
    assert_eq!(socks.auth_refused(), 1);
    drop(wrong);
}

#[test]
fn proxy_failures_say_so() {
    let h = https(ClientCerts::Ignored);
    // Credentials refused: 407.
    let guarded = HttpProxy::with_credentials("me", "pw");
    let e = h
        .client(h.trusted().proxy(guarded.url()))
        .unwrap()
        .get("/items")
        .call()
        .unwrap_err();
    let refresh = e.refresh_error().expect("the refresh went first");
    assert_eq!(refresh.kind(), RefreshErrorKind::Proxy, "{e}");
    assert!(!e.is_transient(), "{e}");
    let api = Client::builder(format!("{}/api", h.front.url()))
        .token(login(&h.server))
        .network(h.trusted().proxy(guarded.url()))
        .build()
        .unwrap();
    let e = api.get("/items").call().unwrap_err();
    let Error::Proxy(p) = &e else { panic!("{e:?}") };
    assert_eq!(p.proxy(), Some(&*guarded.url()));
    assert!(p.is_auth_refused() && e.to_string().contains("407"), "{e}");
    assert_eq!(guarded.auth_refused(), 2);
    // With the credentials in the URL it works.
    let api = Client::builder(format!("{}/api", h.front.url()))
        .token(login(&h.server))
        .network(h.trusted().proxy(guarded.url_with_credentials()))
        .build()
        .unwrap();
    assert_eq!(get_status(&api, "/items"), 200);
    // Nothing listens where the proxy should be: a transient proxy error.
    let e = Client::builder(format!("{}/api", h.front.url()))
        .token(login(&h.server))
        .network(h.trusted().proxy(closed_port_url()))
        .build()
        .unwrap()
        .get("/items")
        .call()
        .unwrap_err();
    assert!(matches!(e, Error::Proxy(_)) && e.is_transient(), "{e:?}");
    // An unusable proxy URL is a configuration error at build time.
    let e = h.client(Network::new().proxy("ftp://x")).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
}

/// The escape hatch sets any ureq option, but cannot turn on ureq's own redirects or
/// status-as-error, which the client depends on.
#[test]
fn configure_agent_cannot_break_rejections_or_redirect_scoping() {
    let api = TestServer::start();
    let other = TestServer::start();
    let token = login(&api);
    let network = Network::new().configure_agent(|config| {
        config
            .http_status_as_error(true)
            .max_redirects(10)
            .timeout_per_read(Some(PATIENCE))
    });
    let client = builder(&api, token)
        .network(network)
        .max_replays(0)
        .build()
        .unwrap();
    api.revoke_all();
    let resp = client.get("/items").call().unwrap();
    assert_eq!(resp.status(), 401, "a 401 is still a response");
    let enc: String = format!("{}/api/echo-auth", other.url())
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    let resp = client
        .get(&format!("{}/redirect?to={enc}", api.url()))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        other.counters().api_without_auth,
        1,
        "followed by tokengate, without the token"
    );
}

/// The OS TLS stack (OpenSSL here) with the same settings: trust by added CA, refusal without it,
/// mutual TLS.
#[cfg(feature = "native-tls")]
#[test]
fn native_tls_trusts_the_added_ca_and_presents_the_client_certificate() {
    use tokengate::TlsBackend;
    let h = https(ClientCerts::Required);
    let me = h.pki.client("native");
    let network = h
        .trusted()
        .tls_backend(TlsBackend::NativeTls)
        .client_certificate_pem(me.cert_pem, me.key_pem);
    assert_eq!(get_status(&h.client(network).unwrap(), "/items"), 200);
    assert_eq!(h.server.counters().refreshes, 1);
    let e = h
        .client(Network::new().tls_backend(TlsBackend::NativeTls))
        .unwrap()
        .get("/items")
        .call()
        .unwrap_err();
    assert!(e.is_tls() && !e.is_transient(), "{e:?}");
}
