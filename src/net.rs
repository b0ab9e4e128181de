//! [`Network`]: how tokengate reaches servers (TLS trust, client certificate, proxies, and any other
//! ureq agent option), shared by the API client and the OAuth2 refresher; and the classification of
//! transport failures into TLS, proxy and other errors.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ureq::config::ConfigBuilder;
use ureq::http::Uri;
use ureq::typestate::AgentScope;
use ureq::{Proxy, ProxyProtocol};

use crate::error::{Error, ProxyError};
use crate::tls::{Pem, Roots, TlsBackend, TlsSettings};

type AgentHook = dyn Fn(ConfigBuilder<AgentScope>) -> ConfigBuilder<AgentScope> + Send + Sync;

/// How tokengate reaches servers: which certificates it trusts, the client certificate it
/// presents, the proxies it goes through, and any other ureq agent option.
///
/// Give it to [`ClientBuilder::network`](crate::ClientBuilder::network); the client's OAuth2
/// refresher then uses the same settings, unless it was given its own with
/// [`OAuth2::network`](crate::OAuth2::network). Files are read, certificates parsed and the key
/// checked against its certificate when the client is built: a problem is an
/// [`Error::Config`] then, never a surprise at the first request.
///
/// A user behind a corporate proxy, with a private CA and a client certificate:
///
/// ```no_run
/// use tokengate::{Client, Network, OAuth2};
///
/// let client = Client::builder("https://api.corp.example")
///     .network(Network::new()
///         .proxy("http://proxy.corp.example:3128")
///         .add_root_certificates_pem_file("/etc/corp/root-ca.pem")
///         .client_certificate_pem_files("/home/me/.corp/me.crt", "/home/me/.corp/me.key"))
///     .refresher(OAuth2::client_credentials("https://login.corp.example/oauth2/token").client_id("cli"))
///     .build()?;
/// # Ok::<_, tokengate::Error>(())
/// ```
///
/// # Proxies from the environment
///
/// Unless [`proxy`](Network::proxy) or [`no_proxies`](Network::no_proxies) says otherwise, the
/// proxy of each request is read from the environment as curl reads it, once, when the client is
/// built:
///
/// | request to | first set (and not empty) of |
/// |---|---|
/// | `https://...` | `https_proxy`, `HTTPS_PROXY`, `all_proxy`, `ALL_PROXY` |
/// | `http://...` | `http_proxy`, `HTTP_PROXY`, `all_proxy`, `ALL_PROXY` |
///
/// Lower case wins over upper case. `HTTP_PROXY` in upper case is ignored when `REQUEST_METHOD` is
/// set (a CGI program, where a client's `Proxy:` header arrives as `HTTP_PROXY`). `no_proxy`
/// (else `NO_PROXY`) lists hosts reached directly: see [`no_proxy`](Network::no_proxy). A proxy
/// URL is `http://`, `https://`, `socks5://` (the client resolves the host name) or `socks5h://`
/// (the proxy does), with optional `user:password@` (percent-encoded); without a scheme it is
/// `http://`. An unusable value is an [`Error::Config`] naming the variable (never its value,
/// which may hold a password).
///
/// Requests to an `https` URL go through an HTTP proxy inside a `CONNECT` tunnel: the proxy sees
/// the host name and port, never the request, its headers or the token.
#[derive(Clone, Default)]
pub struct Network {
    tls: TlsSettings,
    proxy: ProxySetting,
    no_proxy: Option<String>,
    hook: Option<Arc<AgentHook>>,
}

#[derive(Clone, Default)]
enum ProxySetting {
    #[default]
    ProcessEnv,
    Vars(Vec<(String, String)>),
    Fixed(String),
    Direct,
}

impl Network {
    /// The defaults: the operating system's trust store (see [`Roots`]), no client certificate,
    /// proxies from the environment, rustls.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the built-in trust anchors. Defaults to [`Roots::Platform`] (with the default
    /// `platform-verifier` feature; [`Roots::WebPki`] without it).
    pub fn roots(mut self, roots: Roots) -> Self {
        self.tls.roots = roots;
        self
    }

    /// Trusts the CA certificates of a PEM document as well (one or more `BEGIN CERTIFICATE`
    /// blocks), e.g. a company's private root. They are added to the [`roots`](Network::roots).
    /// Defaults to none.
    pub fn add_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.added.push(Pem::Bytes(pem.into().into()));
        self
    }

    /// Trusts the CA certificates of a PEM file as well, read when the client is built. See
    /// [`add_root_certificates_pem`](Network::add_root_certificates_pem). Defaults to none.
    pub fn add_root_certificates_pem_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.added.push(Pem::File(path.into()));
        self
    }

    /// Presents a client certificate (mutual TLS; RFC 8705 client authentication at a token
    /// endpoint): `chain` holds the certificate and any intermediates, `key` its private key
    /// (PKCS#8, PKCS#1 or SEC1; it may be the same PEM as the chain). The key is checked against
    /// the certificate when the client is built. Defaults to none.
    pub fn client_certificate_pem(
        mut self,
        chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.identity = Some((
            Pem::Bytes(chain.into().into()),
            Pem::Bytes(key.into().into()),
        ));
        self
    }

    /// Presents the client certificate of two PEM files (the same path twice is fine when one
    /// file holds both), read when the client is built. See
    /// [`client_certificate_pem`](Network::client_certificate_pem). Defaults to none.
    pub fn client_certificate_pem_files(
        mut self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls.identity = Some((Pem::File(chain.into()), Pem::File(key.into())));
        self
    }

    /// Sets the TLS implementation. Defaults to [`TlsBackend::Rustls`].
    pub fn tls_backend(mut self, backend: TlsBackend) -> Self {
        self.tls.backend = backend;
        self
    }

    /// Sends every request through this proxy (`http://host:port`, `socks5://user:pass@host:port`,
    /// ...; see the [proxy URLs](Network#proxies-from-the-environment)), except to the hosts of
    /// [`no_proxy`](Network::no_proxy). The environment is then not read. Defaults to the
    /// environment's proxies.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = ProxySetting::Fixed(url.into());
        self
    }

    /// Reads proxies from these variables instead of the process environment, e.g.
    /// `std::env::vars()` filtered by your program, or a fixed set in a test. The same rules as
    /// for the [environment](Network#proxies-from-the-environment) apply. Defaults to the process
    /// environment, read when the client is built.
    pub fn proxy_from_env_vars<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.proxy = ProxySetting::Vars(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Connects directly, whatever the environment says. Defaults to the environment's proxies.
    pub fn no_proxies(mut self) -> Self {
        self.proxy = ProxySetting::Direct;
        self
    }

    /// Sets the hosts reached without proxy, replacing `no_proxy`/`NO_PROXY`: a comma-separated
    /// list of host names (each also matches its subdomains; a leading `.` or `*.` is ignored),
    /// IP addresses, CIDR ranges (`10.0.0.0/8`), optionally with `:port`, or `*` for all.
    /// Defaults to the environment's list when proxies come from the environment, none otherwise.
    pub fn no_proxy(mut self, list: impl Into<String>) -> Self {
        self.no_proxy = Some(list.into());
        self
    }

    /// Sets any ureq agent option tokengate does not expose (buffer sizes, IP family,
    /// `timeout_per_read`, a custom rustls crypto provider, middleware, ...).
    ///
    /// `configure` gets ureq's config builder after tokengate set its own options (timeouts, user
    /// agent, TLS and the proxy of the client's own origin), so it may change them: a TLS config or
    /// proxy set here replaces tokengate's for that agent. Two settings tokengate depends on are put
    /// back after it, whatever it did: redirects are off in ureq (tokengate follows them itself, to
    /// keep the token on its origin) and 4xx/5xx statuses are responses, not errors (a 401 must
    /// reach the rejection logic). Applies to the client's agent and to the OAuth2 refresher's.
    /// Defaults to nothing.
    ///
    /// ```
    /// use tokengate::{Client, Network};
    ///
    /// let client = Client::builder("https://api.example.com")
    ///     .network(Network::new().configure_agent(|config| {
    ///         config.timeout_per_read(Some(std::time::Duration::from_secs(20)))
    ///     }))
    ///     .build()?;
    /// # Ok::<_, tokengate::Error>(())
    /// ```
    pub fn configure_agent(
        mut self,
        configure: impl Fn(ConfigBuilder<AgentScope>) -> ConfigBuilder<AgentScope>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.hook = Some(Arc::new(configure));
        self
    }

    /// The TLS settings alone, for connections that are not HTTP (a `rediss://` store).
    #[cfg(feature = "redis")]
    pub(crate) fn tls(&self) -> &TlsSettings {
        &self.tls
    }

    /// Reads and checks every setting.
    pub(crate) fn resolve(&self) -> Result<Arc<Resolved>, Error> {
        let tls = self.tls.resolve()?;
        let proxies = match &self.proxy {
            ProxySetting::Direct => Proxies::default(),
            ProxySetting::Fixed(url) => {
                let proxy = parse_proxy(url, "the proxy URL")?;
                Proxies {
                    http: Some(proxy.clone()),
                    https: Some(proxy),
                    no_proxy: NoProxy::parse(self.no_proxy.as_deref().unwrap_or("")),
                }
            }
            ProxySetting::ProcessEnv => {
                Proxies::from_env(|name| std::env::var(name).ok(), self.no_proxy.as_deref())?
            }
            ProxySetting::Vars(vars) => Proxies::from_env(
                |name| {
                    vars.iter()
                        .rev()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                },
                self.no_proxy.as_deref(),
            )?,
        };
        Ok(Arc::new(Resolved {
            tls,
            proxies,
            hook: self.hook.clone(),
        }))
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proxy = match &self.proxy {
            ProxySetting::ProcessEnv => "from the environment".to_owned(),
            ProxySetting::Vars(v) => format!("from {} variables", v.len()),
            ProxySetting::Fixed(url) => redact(url),
            ProxySetting::Direct => "none".to_owned(),
        };
        f.debug_struct("Network")
            .field("roots", &self.tls.roots)
            .field("added_roots", &self.tls.added.len())
            .field("client_certificate", &self.tls.identity.is_some())
            .field("tls_backend", &self.tls.backend)
            .field("proxy", &proxy)
            .field("no_proxy", &self.no_proxy)
            .field("configure_agent", &self.hook.is_some())
            .finish()
    }
}

/// A proxy URL without its `user:password@`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}[redacted]@{}", &url[..s + 3], &url[at + 1..]),
        (None, Some(at)) => format!("[redacted]@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

fn parse_proxy(url: &str, what: &str) -> Result<Proxy, Error> {
    let url = url.trim();
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let known = matches!(
        scheme.as_deref(),
        None | Some("http" | "https" | "socks" | "socks4" | "socks4a" | "socks5" | "socks5h")
    );
    if !known {
        return Err(Error::config(format!(
            "{what} has a scheme that is not a proxy protocol (http, https, socks5, socks5h)"
        )));
    }
    Proxy::new(url).map_err(|_| Error::config(format!("{what} is not a usable proxy URL")))
}

/// The network settings, read and checked.
pub(crate) struct Resolved {
    tls: ureq::tls::TlsConfig,
    proxies: Proxies,
    hook: Option<Arc<AgentHook>>,
}

impl Resolved {
    /// An agent whose own origin is `home`: `base` holds the caller's options (timeouts...), then
    /// TLS and `home`'s proxy are set, then the user's hook runs, then the two settings tokengate
    /// depends on are put back.
    pub(crate) fn agent(self: &Arc<Self>, home: &Uri, base: ConfigBuilder<AgentScope>) -> NetAgent {
        let home_proxy = self.proxies.for_uri(home).cloned();
        let mut config = base.tls_config(self.tls.clone()).proxy(home_proxy.clone());
        if let Some(hook) = &self.hook {
            config = hook(config);
        }
        let config = config.http_status_as_error(false).max_redirects(0).build();
        // A proxy set by the hook applies to every request of the agent.
        let hook_proxy = config.proxy() != home_proxy.as_ref();
        NetAgent {
            agent: config.new_agent(),
            resolved: Arc::clone(self),
            home_proxy: if hook_proxy {
                config.proxy().cloned()
            } else {
                home_proxy
            },
            per_request: !hook_proxy,
        }
    }
}

/// A ureq agent with the proxy table it was built from.
pub(crate) struct NetAgent {
    pub(crate) agent: ureq::Agent,
    resolved: Arc<Resolved>,
    home_proxy: Option<Proxy>,
    per_request: bool,
}

/// The proxy of one request: the one it goes through, and whether it differs from the agent's.
pub(crate) struct Route<'a> {
    pub(crate) proxy: Option<&'a Proxy>,
    pub(crate) differs: bool,
}

impl NetAgent {
    /// The proxy for a request to `uri`; `home` says the caller knows `uri` is on the agent's own
    /// origin (the common case: nothing to look up).
    pub(crate) fn route(&self, uri: &Uri, home: bool) -> Route<'_> {
        if home || !self.per_request {
            return Route {
                proxy: self.home_proxy.as_ref(),
                differs: false,
            };
        }
        let proxy = self.resolved.proxies.for_uri(uri);
        Route {
            proxy,
            differs: proxy != self.home_proxy.as_ref(),
        }
    }

    /// Turns a ureq failure of a request that went through `proxy` into the error that says what
    /// failed: TLS, the proxy, or the transport.
    pub(crate) fn error(e: ureq::Error, proxy: Option<&Proxy>) -> Error {
        match failure_of(&e, proxy) {
            Failure::Tls => Error::Tls(Arc::new(e)),
            Failure::Proxy => Error::Proxy(ProxyError::new(proxy.map(describe), e)),
            Failure::Other => Error::Transport(Arc::new(e)),
        }
    }

    /// The proxy of the agent's own origin, if any.
    pub(crate) fn home_proxy(&self) -> Option<&Proxy> {
        self.home_proxy.as_ref()
    }
}

/// What kind of failure a ureq error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Certificate, host name or handshake failure (including a refused client certificate).
    Tls,
    /// The proxy could not be reached, refused, or could not reach the target.
    Proxy,
    Other,
}

pub(crate) fn failure_of(e: &ureq::Error, proxy: Option<&Proxy>) -> Failure {
    use std::io::ErrorKind;
    if is_tls(e) {
        return Failure::Tls;
    }
    let socks = proxy.is_some_and(|p| {
        matches!(
            p.protocol(),
            ProxyProtocol::Socks4
                | ProxyProtocol::Socks4A
                | ProxyProtocol::Socks5
                | ProxyProtocol::Socks5h
        )
    });
    let local_resolve = proxy.is_some_and(Proxy::resolve_target);
    let through_proxy = match e {
        ureq::Error::ConnectProxyFailed(_) | ureq::Error::InvalidProxyUrl => true,
        _ if proxy.is_none() => false,
        ureq::Error::ConnectionFailed => true,
        ureq::Error::HostNotFound => !local_resolve,
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused | ErrorKind::PermissionDenied => true,
            // SOCKS replies and handshake failures.
            ErrorKind::Other | ErrorKind::InvalidData | ErrorKind::InvalidInput => socks,
            _ => false,
        },
        _ => false,
    };
    if through_proxy {
        Failure::Proxy
    } else {
        Failure::Other
    }
}

/// Whether a ureq error is a TLS failure: a certificate not trusted or not for this host, a
/// refused client certificate, a failed handshake.
pub(crate) fn is_tls(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Tls(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::TlsRequired => true,
        #[cfg(feature = "native-tls")]
        ureq::Error::NativeTls(_) | ureq::Error::Der(_) => true,
        ureq::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>()),
        _ => false,
    }
}

/// `scheme://host:port` of a proxy, without credentials.
pub(crate) fn describe(p: &Proxy) -> String {
    let scheme = match p.protocol() {
        ProxyProtocol::Http => "http",
        ProxyProtocol::Https => "https",
        ProxyProtocol::Socks4 => "socks4",
        ProxyProtocol::Socks4A => "socks4a",
        ProxyProtocol::Socks5 => "socks5",
        ProxyProtocol::Socks5h => "socks5h",
        _ => "proxy",
    };
    format!("{scheme}://{}:{}", p.host(), p.port())
}

/// Which proxy each request scheme goes through, and the hosts reached directly.
#[derive(Default)]
struct Proxies {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: NoProxy,
}

impl Proxies {
    /// curl's reading of the environment (see [`Network`]); `get` looks a variable up.
    fn from_env(
        get: impl Fn(&str) -> Option<String>,
        no_proxy: Option<&str>,
    ) -> Result<Self, Error> {
        let var = |name: &str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (name.to_owned(), v))
        };
        let cgi = get("REQUEST_METHOD").is_some();
        let all = var("all_proxy").or_else(|| var("ALL_PROXY"));
        let https = var("https_proxy")
            .or_else(|| var("HTTPS_PROXY"))
            .or_else(|| all.clone());
        let http = var("http_proxy")
            .or_else(|| if cgi { None } else { var("HTTP_PROXY") })
            .or(all);
        let parse = |v: Option<(String, String)>| {
            v.map(|(name, value)| parse_proxy(&value, &name))
                .transpose()
        };
        let no_proxy = match no_proxy {
            Some(list) => list.to_owned(),
            None => get("no_proxy")
                .or_else(|| get("NO_PROXY"))
                .unwrap_or_default(),
        };
        Ok(Proxies {
            http: parse(http)?,
            https: parse(https)?,
            no_proxy: NoProxy::parse(&no_proxy),
        })
    }

    fn for_uri(&self, uri: &Uri) -> Option<&Proxy> {
        let proxy = if uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"))
        {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        }?;
        let host = uri.host()?;
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => 443,
            _ => 80,
        });
        (!self.no_proxy.matches(host, port)).then_some(proxy)
    }
}

/// A `NO_PROXY` list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NoProxy {
    all: bool,
    entries: Vec<NoProxyEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum NoProxyEntry {
    Domain(String, Option<u16>),
    Net(IpAddr, u8, Option<u16>),
}

impl NoProxy {
    pub(crate) fn parse(list: &str) -> NoProxy {
        let mut out = NoProxy::default();
        for raw in list.split([',', ' ', '\t']) {
            let entry = raw.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                out.all = true;
                continue;
            }
            let (addr, port) = split_port(&entry);
            let (ip, bits) = match addr.split_once('/') {
                Some((ip, bits)) => (ip, bits.parse::<u8>().ok()),
                None => (addr, None),
            };
            if let Ok(ip) = ip
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let bits = bits.unwrap_or(max).min(max);
                out.entries.push(NoProxyEntry::Net(ip, bits, port));
                continue;
            }
            let domain = addr.trim_start_matches("*.").trim_start_matches('.');
            if !domain.is_empty() {
                out.entries
                    .push(NoProxyEntry::Domain(domain.to_owned(), port));
            }
        }
        out
    }

    pub(crate) fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|e| match e {
            NoProxyEntry::Domain(d, p) => {
                p.is_none_or(|p| p == port)
                    && (host == *d
                        || host.len() > d.len()
                            && host.ends_with(d.as_str())
                            && host.as_bytes()[host.len() - d.len() - 1] == b'.')
            }
            NoProxyEntry::Net(net, bits, p) => {
                p.is_none_or(|p| p == port) && ip.is_some_and(|ip| in_net(ip, *net, *bits))
            }
        })
    }
}

/// `host:port` into the host and the port, when there is a port (`[v6]:port` included; a bare
/// IPv6 address has none).
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[')
        && let Some((addr, tail)) = rest.split_once(']')
    {
        return (addr, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Proxies {
        Proxies::from_env(
            |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            },
            None,
        )
        .unwrap()
    }

    fn via(p: &Proxies, url: &str) -> Option<String> {
        p.for_uri(&url.parse().unwrap()).map(describe)
    }

    #[test]
    fn environment_precedence_follows_curl() {
        let p = env(&[
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:2"),
            ("ALL_PROXY", "socks5://all:3"),
        ]);
        assert_eq!(via(&p, "https://x/").as_deref(), Some("http://lower:1"));
        assert_eq!(via(&p, "http://x/").as_deref(), Some("socks5://all:3"));
        let p = env(&[("HTTP_PROXY", "up:8080"), ("all_proxy", "http://all:3")]);
        assert_eq!(via(&p, "http://x/").as_deref(), Some("http://up:8080"));
        assert_eq!(via(&p, "https://x/").as_deref(), Some("http://all:3"));
        // CGI: HTTP_PROXY may come from a client's `Proxy:` header.
        let p = env(&[("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(via(&p, "http://x/"), None);
        let p = env(&[("https_proxy", ""), ("HTTPS_PROXY", "http://u:2")]);
        assert_eq!(via(&p, "https://x/").as_deref(), Some("http://u:2"));
        assert_eq!(via(&env(&[]), "https://x/"), None);
    }

    #[test]
    fn bad_environment_values_name_the_variable_not_the_value() {
        let e = Proxies::from_env(
            |n| (n == "HTTPS_PROXY").then(|| "ftp://user:hunter2@x".to_owned()),
            None,
        )
        .err()
        .unwrap();
        let text = e.to_string();
        assert!(text.contains("HTTPS_PROXY"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn no_proxy_lists() {
        let n = NoProxy::parse(
            " .corp.example, 10.0.0.0/8,localhost:8080, [::1], *.b.test ,2001:db8::/32",
        );
        assert!(n.matches("corp.example", 443));
        assert!(n.matches("API.corp.example", 443));
        assert!(!n.matches("xcorp.example", 443));
        assert!(n.matches("10.1.2.3", 80));
        assert!(!n.matches("11.1.2.3", 80));
        assert!(n.matches("localhost", 8080));
        assert!(!n.matches("localhost", 8081));
        assert!(n.matches("[::1]", 1));
        assert!(n.matches("a.b.test", 1));
        assert!(n.matches("b.test", 1));
        assert!(n.matches("2001:db8::5", 1));
        assert!(!n.matches("2001:db9::5", 1));
        assert!(NoProxy::parse("*").matches("anything", 1));
        assert!(!NoProxy::parse("").matches("anything", 1));
    }

    #[test]
    fn proxy_urls_are_redacted() {
        assert_eq!(redact("http://u:p@h:1"), "http://[redacted]@h:1");
        assert_eq!(redact("u:p@h:1"), "[redacted]@h:1");
        assert_eq!(redact("http://h:1"), "http://h:1");
        let net = Network::new().proxy("socks5://me:hunter2@127.0.0.1:1080");
        assert!(!format!("{net:?}").contains("hunter2"));
    }
}
