//! One invocation's settings (the profile, with the command line's global options over it) and
//! the tokengate client built from them.

use std::path::PathBuf;
use std::time::Duration;

use tokengate::http::Uri;
use tokengate::{Client, Network, OAuth2, Token};

use crate::args::Global;
use crate::config::{Config, DEFAULT_PROFILE, Profile, check_profile_name};
use crate::exit::Failure;
use crate::store::{CliStore, StoreSpec};

/// How long a command waits for a token without `--timeout`: the library's default budget.
const DEFAULT_TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// The OAuth2 request timeouts (the library's defaults), shortened to fit a shorter `--timeout`.
const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(8);
const TOKEN_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The settings of this invocation.
pub struct Session {
    pub config: Config,
    pub name: String,
    /// The profile with the command line's options applied.
    pub profile: Profile,
    /// Whether the config file has this profile at all.
    pub exists: bool,
    pub store: StoreSpec,
    /// `--timeout`, if given.
    pub timeout: Option<Duration>,
}

impl Session {
    /// Reads the config file and applies `global` to the chosen profile.
    pub fn new(global: &Global) -> Result<Session, Failure> {
        let name = global
            .profile
            .clone()
            .unwrap_or_else(|| DEFAULT_PROFILE.to_owned());
        check_profile_name(&name)?;
        let config = Config::load(&Config::default_path()?)?;
        let exists = config.profile(&name).is_some();
        let mut profile = config.profile(&name).cloned().unwrap_or_default();
        apply(&mut profile, global)?;
        let store = match &profile.store {
            Some(setting) => StoreSpec::parse(setting)
                .map_err(|f| f.context(format_args!("profile `{name}`")))?,
            None => StoreSpec::default_file(&name)?,
        };
        Ok(Session {
            config,
            name,
            profile,
            exists,
            store,
            timeout: global.timeout,
        })
    }

    /// How long to wait for a token.
    pub fn token_timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TOKEN_TIMEOUT)
    }

    /// The network settings of the profile: CA certificates, client certificate, proxy.
    pub fn network(&self) -> Network {
        let p = &self.profile;
        let mut network = Network::new();
        if let Some(ca) = &p.cacert {
            network = network.add_root_certificates_pem_file(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&p.cert, &p.key) {
            network = network.client_certificate_pem_files(cert.clone(), key.clone());
        }
        if let Some(proxy) = &p.proxy {
            network = network.proxy(proxy.clone());
        }
        network
    }

    /// The profile's token endpoint, checked.
    pub fn token_endpoint(&self) -> Result<&str, Failure> {
        let url = self.profile.token_endpoint.as_deref().ok_or_else(|| {
            if self.exists {
                Failure::config(format!(
                    "profile `{}` has no token_endpoint: run `tokengate login` or add it to {}",
                    self.name,
                    self.config.path().display()
                ))
            } else {
                // Nothing to use yet: the remedy is a login, which creates the profile.
                Failure::login_required(format!(
                    "no profile `{}` in {}: run `tokengate login`",
                    self.name,
                    self.config.path().display()
                ))
            }
        })?;
        check_url("token endpoint", url)?;
        Ok(url)
    }

    /// The store of this profile's token.
    pub fn open_store(&self) -> Result<CliStore, Failure> {
        self.store.open(&self.name)
    }

    /// A client for the API at `base` (its origin gets the token), whose token is this profile's
    /// session: loaded from the store, refreshed at the token endpoint under the store's lock.
    pub fn client(&self, base: &str) -> Result<Client, Failure> {
        self.client_with(base, None)
    }

    /// [`client`](Session::client), starting from `token` instead of what the store holds (a new
    /// login: the store may hold something unreadable, which the login's save replaces).
    pub fn client_with(&self, base: &str, token: Option<Token>) -> Result<Client, Failure> {
        let token_endpoint = self.token_endpoint()?;
        let p = &self.profile;
        let budget = self.token_timeout();
        let mut refresher = OAuth2::refresh_token(token_endpoint)
            .timeout(TOKEN_REQUEST_TIMEOUT.min(budget))
            .connect_timeout(TOKEN_CONNECT_TIMEOUT.min(budget));
        if let Some(id) = &p.client_id {
            refresher = refresher.client_id(id.clone());
        }
        if let Some(secret) = &p.client_secret {
            refresher = refresher.client_secret(secret.clone());
        }
        if let Some(url) = &p.revocation_endpoint {
            check_url("revocation endpoint", url)?;
            refresher = refresher.revocation_url(url.clone());
        }
        let mut builder = Client::builder(base)
            .network(self.network())
            .refresher(refresher)
            .store(self.open_store()?)
            .refresh_timeout(budget);
        if let Some(token) = token {
            builder = builder.token(token);
        }
        builder.build().map_err(Failure::from)
    }
}

/// The global options over the profile's settings.
fn apply(profile: &mut Profile, global: &Global) -> Result<(), Failure> {
    let absolute = |path: &PathBuf| -> Result<PathBuf, Failure> {
        std::env::current_dir()
            .map(|d| d.join(path))
            .map_err(|e| Failure::config(format!("no current directory: {e}")))
    };
    if let Some(store) = &global.store {
        // Parsed here so that a relative path is taken from the current directory.
        profile.store = Some(StoreSpec::parse(store)?.setting());
    }
    if let Some(ca) = &global.cacert {
        profile.cacert = Some(absolute(ca)?);
    }
    if let (Some(cert), Some(key)) = (&global.cert, &global.key) {
        profile.cert = Some(absolute(cert)?);
        profile.key = Some(absolute(key)?);
    }
    if let Some(proxy) = &global.proxy {
        profile.proxy = Some(proxy.clone());
    }
    Ok(())
}

/// An endpoint or API URL: absolute `https`, or plain `http` on loopback only (a token or secret
/// would otherwise cross the network in the clear).
pub fn check_url(what: &str, url: &str) -> Result<Uri, Failure> {
    let bad = |why: &str| Failure::config(format!("{what} {url}: {why}"));
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    let host = uri
        .host()
        .ok_or_else(|| bad("not an absolute http(s) URL"))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(bad(
            "plain http is allowed only on loopback (localhost, 127.0.0.1, [::1]); use https",
        )),
        _ => Err(bad("not an absolute http(s) URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        for ok in [
            "https://auth.example.com/token",
            "http://127.0.0.1:8080/token",
            "http://127.3.4.5/t",
            "http://localhost:1/t",
            "http://[::1]:9/t",
        ] {
            assert!(check_url("token endpoint", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://auth.example.com/token",
            "http://10.0.0.1/t",
            "ftp://127.0.0.1/t",
            "/oauth/token",
            "auth.example.com",
            "",
        ] {
            let e = check_url("token endpoint", bad).unwrap_err();
            assert_eq!(e.exit, crate::exit::Exit::Config, "{bad}");
        }
    }
}
