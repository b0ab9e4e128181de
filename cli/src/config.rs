//! The profile file: `config.toml` in the platform's config directory, one `[profiles.NAME]` table
//! per profile. Read into typed [`Profile`]s; edited in place (comments and layout kept) when
//! `login` records its options; written atomically with mode 0600, since it may hold a client
//! secret or a Redis password.
//!
//! Values are read by hand rather than through serde: a mistyped value is then reported by its key
//! and expected type, never by quoting it (it may be a secret).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, Value};

use crate::exit::Failure;

/// The profile used without `--profile`.
pub const DEFAULT_PROFILE: &str = "default";
/// Largest config file read.
const MAX_FILE: u64 = 1024 * 1024;

/// How `login` gets the first token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// The device authorization grant (RFC 8628): a code to enter on another device.
    Device,
    /// The authorization code grant with PKCE on a loopback redirect (RFC 8252).
    Browser,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Device => "device",
            Flow::Browser => "browser",
        }
    }
}

/// One profile: where the authorization server is, who the client is, where the token lives and
/// how to reach the network. Every field is optional in the file.
#[derive(Clone, Default, PartialEq)]
pub struct Profile {
    pub issuer: Option<String>,
    pub token_endpoint: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub device_authorization_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    pub flow: Option<Flow>,
    pub store: Option<String>,
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub proxy: Option<String>,
}

/// The keys a profile may have, in the order `login` writes them.
pub const KEYS: [&str; 14] = [
    "issuer",
    "token_endpoint",
    "authorization_endpoint",
    "device_authorization_endpoint",
    "revocation_endpoint",
    "client_id",
    "client_secret",
    "scopes",
    "flow",
    "store",
    "cacert",
    "cert",
    "key",
    "proxy",
];

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret, the store (a Redis URL may carry a password) and the proxy (it may carry
        // credentials) are left out.
        f.debug_struct("Profile")
            .field("issuer", &self.issuer)
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scopes", &self.scopes)
            .field("flow", &self.flow)
            .finish_non_exhaustive()
    }
}

/// The config file, as read, with its profiles.
pub struct Config {
    path: PathBuf,
    doc: DocumentMut,
    profiles: BTreeMap<String, Profile>,
}

impl Config {
    /// `config.toml` in `tokengate/` under the platform's config directory: on Linux
    /// `$XDG_CONFIG_HOME`, else `~/.config`.
    pub fn default_path() -> Result<PathBuf, Failure> {
        dirs::config_dir()
            .map(|d| d.join("tokengate").join("config.toml"))
            .ok_or_else(|| Failure::config("no config directory: set $XDG_CONFIG_HOME or $HOME"))
    }

    /// Reads the file at `path`; a missing file is an empty config. On Unix a file that group or
    /// others may read is tightened to 0600 (it may hold secrets), with a note on stderr.
    pub fn load(path: &Path) -> Result<Config, Failure> {
        let text = match read_private(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(Failure::config(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        Config::parse(path, &text)
    }

    /// Parses `text` as the config file at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, Failure> {
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            // Only the message and the position: the TOML error's own rendering quotes the line,
            // which may hold a secret.
            let at = e
                .span()
                .map(|s| line_col(text, s.start))
                .map_or(String::new(), |(l, c)| format!(" at line {l}, column {c}"));
            Failure::config(format!(
                "{}{at}: not valid TOML: {}",
                path.display(),
                e.message()
            ))
        })?;
        let in_file = |msg: String| Failure::config(format!("{}: {msg}", path.display()));
        let mut profiles = BTreeMap::new();
        for (key, item) in doc.iter() {
            if key != "profiles" {
                return Err(in_file(format!(
                    "unknown top-level key `{key}` (profiles go in [profiles.NAME] tables)"
                )));
            }
            let table = item
                .as_table_like()
                .ok_or_else(|| in_file("`profiles` must be a table".into()))?;
            for (name, item) in table.iter() {
                check_profile_name(name).map_err(|f| f.context(path.display()))?;
                let profile = read_profile(name, item).map_err(in_file)?;
                profiles.insert(name.to_owned(), profile);
            }
        }
        Ok(Config {
            path: path.to_owned(),
            doc,
            profiles,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// Writes `profile` as the profile `name`: keys it sets are written (in place when they exist,
    /// so comments stay), keys it leaves unset are removed.
    pub fn set_profile(&mut self, name: &str, profile: &Profile) {
        let profiles = self.doc["profiles"].or_insert(implicit_table());
        let table = profiles
            .as_table_mut()
            .expect("checked by parse: `profiles` is a table")
            .entry(name)
            .or_insert(Item::Table(Table::new()))
            .as_table_mut()
            .expect("checked by parse: a profile is a table");
        for key in KEYS {
            match value_of(profile, key) {
                Some(value) => {
                    let unchanged = table
                        .get(key)
                        .and_then(Item::as_value)
                        .is_some_and(|v| same_value(v, &value));
                    if !unchanged {
                        // Keep the comments around a value that changes.
                        let decor = table
                            .get(key)
                            .and_then(Item::as_value)
                            .map(|v| v.decor().clone());
                        let mut value = value;
                        if let Some(decor) = decor {
                            *value.decor_mut() = decor;
                        }
                        table.insert(key, Item::Value(value));
                    }
                }
                None => {
                    table.remove(key);
                }
            }
        }
        self.profiles.insert(name.to_owned(), profile.clone());
    }

    /// Writes the file atomically (a temporary file in the same directory, renamed over it), mode
    /// 0600, creating the directory (0700) when missing.
    pub fn save(&self) -> Result<(), Failure> {
        let text = self.doc.to_string();
        write_private(&self.path, text.as_bytes())
            .map_err(|e| Failure::config(format!("cannot write {}: {e}", self.path.display())))
    }
}

/// A table that is not written as a header of its own (`[profiles]`): its sub-tables are.
fn implicit_table() -> Item {
    let mut table = Table::new();
    table.set_implicit(true);
    Item::Table(table)
}

/// A profile name is a file name too (`<profile>.json`) and a Redis key part: letters, digits,
/// `-`, `_` and `.`, not starting with a dot.
pub fn check_profile_name(name: &str) -> Result<(), Failure> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Failure::config(format!(
            "profile name {name:?}: use 1 to 64 letters, digits, `-`, `_` or `.` (not starting with a dot)"
        )))
    }
}

fn read_profile(name: &str, item: &Item) -> Result<Profile, String> {
    let table = item
        .as_table_like()
        .ok_or_else(|| format!("profile `{name}` must be a table ([profiles.{name}])"))?;
    let mut p = Profile::default();
    for (key, item) in table.iter() {
        let value = item
            .as_value()
            .ok_or_else(|| format!("profile `{name}`: `{key}` must be a value, not a table"))?;
        let string = || {
            value
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("profile `{name}`: `{key}` must be a string"))
        };
        match key {
            "issuer" => p.issuer = Some(string()?),
            "token_endpoint" => p.token_endpoint = Some(string()?),
            "authorization_endpoint" => p.authorization_endpoint = Some(string()?),
            "device_authorization_endpoint" => p.device_authorization_endpoint = Some(string()?),
            "revocation_endpoint" => p.revocation_endpoint = Some(string()?),
            "client_id" => p.client_id = Some(string()?),
            "client_secret" => p.client_secret = Some(string()?),
            "scopes" => {
                let list = value.as_array().ok_or_else(|| {
                    format!("profile `{name}`: `scopes` must be a list of strings")
                })?;
                p.scopes = list
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        format!("profile `{name}`: `scopes` must be a list of strings")
                    })?;
            }
            "flow" => {
                p.flow = Some(match value.as_str() {
                    Some("device") => Flow::Device,
                    Some("browser") => Flow::Browser,
                    _ => {
                        return Err(format!(
                            "profile `{name}`: `flow` must be \"device\" or \"browser\""
                        ));
                    }
                });
            }
            "store" => p.store = Some(string()?),
            "cacert" => p.cacert = Some(string()?.into()),
            "cert" => p.cert = Some(string()?.into()),
            "key" => p.key = Some(string()?.into()),
            "proxy" => p.proxy = Some(string()?),
            other => {
                return Err(format!(
                    "profile `{name}`: unknown key `{other}` (known: {})",
                    KEYS.join(", ")
                ));
            }
        }
    }
    Ok(p)
}

/// The value `profile` has for `key`, as TOML.
fn value_of(p: &Profile, key: &str) -> Option<Value> {
    let s = |v: &Option<String>| v.as_deref().map(Value::from);
    let path = |v: &Option<PathBuf>| v.as_ref().map(|p| Value::from(p.display().to_string()));
    match key {
        "issuer" => s(&p.issuer),
        "token_endpoint" => s(&p.token_endpoint),
        "authorization_endpoint" => s(&p.authorization_endpoint),
        "device_authorization_endpoint" => s(&p.device_authorization_endpoint),
        "revocation_endpoint" => s(&p.revocation_endpoint),
        "client_id" => s(&p.client_id),
        "client_secret" => s(&p.client_secret),
        "scopes" => (!p.scopes.is_empty())
            .then(|| Value::Array(p.scopes.iter().map(String::as_str).collect())),
        "flow" => p.flow.map(|f| Value::from(f.as_str())),
        "store" => s(&p.store),
        "cacert" => path(&p.cacert),
        "cert" => path(&p.cert),
        "key" => path(&p.key),
        "proxy" => s(&p.proxy),
        _ => None,
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a.value() == b.value(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(a, b)| same_value(a, b))
        }
        _ => false,
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

/// Reads a file that may hold secrets; on Unix a file group or others can read is tightened to
/// 0600 first.
fn read_private(path: &Path) -> io::Result<String> {
    let file = fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(io::Error::other("larger than 1 MiB: not a config file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            match file.set_permissions(fs::Permissions::from_mode(0o600)) {
                Ok(()) => eprintln!(
                    "tokengate: note: {} was readable by others; its mode is now 0600 (it may hold secrets)",
                    path.display()
                ),
                Err(e) => eprintln!(
                    "tokengate: warning: {} is readable by others (mode {:o}) and cannot be made private: {e}",
                    path.display(),
                    mode & 0o777
                ),
            }
        }
    }
    let mut text = String::new();
    io::Read::read_to_string(&mut io::Read::take(file, MAX_FILE), &mut text)?;
    Ok(text)
}

/// Writes `bytes` to `path` atomically, mode 0600 (the directory 0700 when created).
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?;
    let temp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&temp)?;
        #[cfg(unix)]
        {
            // An existing temporary of a crashed run may have another mode.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
# my profiles
[profiles.default]
issuer = "https://auth.example.com"
token_endpoint = "https://auth.example.com/oauth/token"
client_id = "my-cli"   # registered as a public client
scopes = ["read", "write"]
flow = "device"
store = "keyring"

[profiles.fleet]
token_endpoint = "https://auth.example.com/oauth/token"
client_id = "sync"
client_secret = "s3cret"
store = "redis://sync:pw@redis.internal:6379/0"
cacert = "/etc/corp/ca.pem"
proxy = "http://proxy:3128"
"#;

    fn parse(text: &str) -> Result<Config, Failure> {
        Config::parse(Path::new("/c/config.toml"), text)
    }

    #[test]
    fn profiles_are_read() {
        let config = parse(FULL).unwrap();
        let p = config.profile("default").unwrap();
        assert_eq!(p.client_id.as_deref(), Some("my-cli"));
        assert_eq!(p.scopes, ["read", "write"]);
        assert_eq!(p.flow, Some(Flow::Device));
        let fleet = config.profile("fleet").unwrap();
        assert_eq!(fleet.cacert.as_deref(), Some(Path::new("/etc/corp/ca.pem")));
        assert!(!format!("{fleet:?}").contains("s3cret"));
        assert!(!format!("{fleet:?}").contains("pw@"));
        assert!(config.profile("other").is_none());
        assert!(parse("").unwrap().profile("default").is_none());
    }

    #[test]
    fn mistakes_are_named_without_quoting_values() {
        for (text, expected) in [
            (
                "[profiles.a]\nclient_secret = 12345\n",
                "`client_secret` must be a string",
            ),
            (
                "[profiles.a]\nclient_id = \"x\"\nsecret = \"hush\"\n",
                "unknown key `secret`",
            ),
            (
                "[profiles.a]\nscopes = \"read\"\n",
                "`scopes` must be a list",
            ),
            ("[profiles.a]\nflow = \"fax\"\n", "`flow` must be"),
            ("[profile.a]\n", "unknown top-level key `profile`"),
            ("[profiles.\"../x\"]\n", "profile name"),
            ("[profiles.a]\nclient_secret = \"hush\n", "line 2"),
        ] {
            let e = parse(text).err().unwrap_or_else(|| panic!("{text} parsed"));
            assert_eq!(e.exit, crate::exit::Exit::Config);
            assert!(e.message.contains(expected), "{text}: {}", e.message);
            assert!(
                !e.message.contains("hush") && !e.message.contains("12345"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn set_profile_keeps_comments_and_other_profiles() {
        let mut config = parse(FULL).unwrap();
        let mut p = config.profile("default").unwrap().clone();
        p.client_id = Some("other-cli".into());
        p.store = None;
        p.scopes = vec!["read".into()];
        config.set_profile("default", &p);
        let mut new = Profile {
            token_endpoint: Some("http://127.0.0.1:1/t".into()),
            ..Profile::default()
        };
        new.flow = Some(Flow::Browser);
        config.set_profile("new", &new);
        let text = config.doc.to_string();
        assert!(
            text.starts_with("\n# my profiles\n[profiles.default]"),
            "{text}"
        );
        assert!(
            text.contains("client_id = \"other-cli\"   # registered as a public client"),
            "{text}"
        );
        assert!(!text.contains("keyring"), "{text}");
        assert!(text.contains("[profiles.new]"), "{text}");
        assert!(!text.contains("[profiles]\n"), "{text}");
        let again = parse(&text).unwrap();
        assert_eq!(again.profile("default"), Some(&p));
        assert_eq!(again.profile("new"), Some(&new));
        assert_eq!(again.profile("fleet"), config.profile("fleet"));
    }

    #[test]
    fn profile_names() {
        for ok in ["default", "work-2", "a.b_c"] {
            assert!(check_profile_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(check_profile_name(bad).is_err(), "{bad}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn written_private_and_tightened_on_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tokengate_testserver::support::temp_dir("cli-config");
        let path = dir.path().join("sub").join("config.toml");
        let mut config = Config::load(&path).unwrap();
        config.set_profile(
            "default",
            &Profile {
                client_secret: Some("s".into()),
                ..Profile::default()
            },
        );
        config.save().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let again = Config::load(&path).unwrap();
        assert_eq!(
            again.profile("default").unwrap().client_secret.as_deref(),
            Some("s")
        );
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            tokengate_testserver::support::entries(path.parent().unwrap()),
            ["config.toml"]
        );
    }
}
