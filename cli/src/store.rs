//! Where a profile's token lives: `--store` / the profile's `store` setting, and the store built
//! from it. All three are the library's stores, so every invocation on every machine that shares
//! one coordinates its refreshes with the others (a file lock, the keyring's lock file, a Redis
//! lease).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokengate::{FileStore, StoreError, StoreLock, Token, TokenStore};

use crate::exit::Failure;

/// The keyring service name; the account is the profile name.
pub const KEYRING_SERVICE: &str = "tokengate";

/// A store setting, parsed.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// A token file (`$XDG_DATA_HOME/tokengate/<profile>.json` by default).
    File(PathBuf),
    /// The OS credential store, service `tokengate`, account `<profile>`.
    Keyring,
    /// Redis at this URL, keys `tokengate:<profile>:token` and `…:lease`.
    Redis(String),
}

impl StoreSpec {
    /// Reads a setting: `keyring`, a `redis://`, `rediss://` or `redis+unix://` URL, or a file path
    /// (relative paths are taken from the current directory).
    pub fn parse(setting: &str) -> Result<StoreSpec, Failure> {
        if setting == "keyring" {
            return Ok(StoreSpec::Keyring);
        }
        if ["redis://", "rediss://", "redis+unix://"]
            .iter()
            .any(|s| setting.starts_with(s))
        {
            return Ok(StoreSpec::Redis(setting.to_owned()));
        }
        if setting.contains("://") {
            return Err(Failure::config(format!(
                "store {}: not a store (a file path, `keyring`, or a redis:// URL)",
                redact_url(setting)
            )));
        }
        if setting.is_empty() {
            return Err(Failure::config(
                "store: empty (give a file path, `keyring`, or a redis:// URL)",
            ));
        }
        let path = Path::new(setting);
        let path = if path.is_absolute() {
            path.to_owned()
        } else {
            std::env::current_dir()
                .map_err(|e| {
                    Failure::config(format!("store {setting}: no current directory: {e}"))
                })?
                .join(path)
        };
        Ok(StoreSpec::File(path))
    }

    /// The default: `<profile>.json` in `tokengate/` under the platform's data directory (on Linux
    /// `$XDG_DATA_HOME`, else `~/.local/share`).
    pub fn default_file(profile: &str) -> Result<StoreSpec, Failure> {
        dirs::data_dir()
            .map(|d| StoreSpec::File(d.join("tokengate").join(format!("{profile}.json"))))
            .ok_or_else(|| Failure::config("no data directory: set $XDG_DATA_HOME or $HOME"))
    }

    /// The setting as the profile records it.
    pub fn setting(&self) -> String {
        match self {
            StoreSpec::File(path) => path.display().to_string(),
            StoreSpec::Keyring => "keyring".into(),
            StoreSpec::Redis(url) => url.clone(),
        }
    }

    /// For people: without a Redis password.
    pub fn describe(&self, profile: &str) -> String {
        match self {
            StoreSpec::File(path) => format!("file {}", path.display()),
            StoreSpec::Keyring => {
                format!("OS credential store, service {KEYRING_SERVICE}, account {profile}")
            }
            StoreSpec::Redis(url) => format!(
                "Redis {}, key {}token",
                redact_url(url),
                redis_prefix(profile)
            ),
        }
    }

    /// Opens the store (a keyring is checked at once; a file or Redis is first used by the
    /// client).
    #[cfg_attr(
        not(any(feature = "keyring", feature = "redis")),
        allow(
            unused_variables,
            reason = "the profile names keyring and Redis entries only"
        )
    )]
    pub fn open(&self, profile: &str) -> Result<CliStore, Failure> {
        match self {
            StoreSpec::File(path) => Ok(CliStore::File(FileStore::new(path))),
            #[cfg(feature = "keyring")]
            StoreSpec::Keyring => tokengate::KeyringStore::new(KEYRING_SERVICE, profile)
                .map(CliStore::Keyring)
                .map_err(|e| {
                    // No credential store here (a headless machine) is not fixed by trying
                    // again: a configuration error, whatever the library's class.
                    Failure::config(crate::exit::chain(&e))
                        .context("the OS credential store (--store keyring)")
                }),
            #[cfg(feature = "redis")]
            StoreSpec::Redis(url) => tokengate::RedisStore::builder(url.as_str())
                .key_prefix(redis_prefix(profile))
                .timeout(Duration::from_secs(5))
                .build()
                .map(CliStore::Redis)
                .map_err(Failure::from),
            #[allow(
                unreachable_patterns,
                reason = "reached in builds without a store feature"
            )]
            other => Err(Failure::config(format!(
                "this build of tokengate has no {} store (built without its cargo feature)",
                match other {
                    StoreSpec::Keyring => "keyring",
                    _ => "Redis",
                }
            ))),
        }
    }
}

/// The Redis key prefix of a profile's session: the same on every machine with the same profile.
pub fn redis_prefix(profile: &str) -> String {
    format!("tokengate:{profile}:")
}

/// A store URL or proxy URL without the password of its userinfo.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// One of the library's stores, chosen at run time.
#[derive(Clone)]
pub enum CliStore {
    File(FileStore),
    #[cfg(feature = "keyring")]
    Keyring(tokengate::KeyringStore),
    #[cfg(feature = "redis")]
    Redis(tokengate::RedisStore),
}

impl TokenStore for CliStore {
    fn load(&self) -> Result<Option<Token>, StoreError> {
        match self {
            CliStore::File(s) => s.load(),
            #[cfg(feature = "keyring")]
            CliStore::Keyring(s) => s.load(),
            #[cfg(feature = "redis")]
            CliStore::Redis(s) => s.load(),
        }
    }

    fn save(&self, token: &Token) -> Result<(), StoreError> {
        match self {
            CliStore::File(s) => s.save(token),
            #[cfg(feature = "keyring")]
            CliStore::Keyring(s) => s.save(token),
            #[cfg(feature = "redis")]
            CliStore::Redis(s) => s.save(token),
        }
    }

    fn lock(&self, timeout: Duration) -> Result<StoreLock<'_>, StoreError> {
        match self {
            CliStore::File(s) => s.lock(timeout),
            #[cfg(feature = "keyring")]
            CliStore::Keyring(s) => s.lock(timeout),
            #[cfg(feature = "redis")]
            CliStore::Redis(s) => s.lock(timeout),
        }
    }

    fn clear(&self) -> Result<(), StoreError> {
        match self {
            CliStore::File(s) => s.clear(),
            #[cfg(feature = "keyring")]
            CliStore::Keyring(s) => s.clear(),
            #[cfg(feature = "redis")]
            CliStore::Redis(s) => s.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        assert!(StoreSpec::parse("keyring").unwrap() == StoreSpec::Keyring);
        assert!(
            StoreSpec::parse("redis://u:p@h:6379/2").unwrap()
                == StoreSpec::Redis("redis://u:p@h:6379/2".into())
        );
        assert!(StoreSpec::parse("/t/x.json").unwrap() == StoreSpec::File("/t/x.json".into()));
        let relative = StoreSpec::parse("x.json").unwrap();
        assert!(relative == StoreSpec::File(std::env::current_dir().unwrap().join("x.json")));
        let e = StoreSpec::parse("https://user:hunter2@h/").err().unwrap();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
        assert!(StoreSpec::parse("").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        for (url, shown) in [
            ("redis://u:pw@h:1/0", "redis://u:***@h:1/0"),
            ("redis://:pw@h:1", "redis://:***@h:1"),
            ("rediss://h:1/0", "rediss://h:1/0"),
            ("redis://user@h", "redis://user@h"),
            ("http://a:b@proxy:3128", "http://a:***@proxy:3128"),
            ("redis://u:p@ss@h/0", "redis://u:***@h/0"),
            ("keyring", "keyring"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
        let spec = StoreSpec::parse("redis://u:pw@h:1/0").unwrap();
        assert_eq!(
            spec.describe("work"),
            "Redis redis://u:***@h:1/0, key tokengate:work:token"
        );
    }
}
