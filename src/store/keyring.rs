//! [`KeyringStore`]: the token in the OS credential store (feature `keyring`).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keyring_core::api::CredentialStore;
use keyring_core::{Entry, Error as KeyringError};
use serde_json::{Map, Value};

use crate::error::{Error, StoreError, StoreErrorKind};
use crate::store::{FileStore, StoreLock, TokenStore, create_parent_dir, lock_file};
use crate::token::Token;

/// Most chunks a token may be split into: 32 of 2,048 bytes is the 64 KiB a [`FileStore`] reads.
const MAX_CHUNKS: usize = 32;
/// How often a load starts again when a save replaced the chunks it was reading.
const LOAD_ATTEMPTS: usize = 3;
/// The field that marks a head entry as a list of chunks rather than a token.
const CHUNKS_FIELD: &str = "tokengate_chunks";

/// Which credential store a [`KeyringStore`] uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyringBackend {
    /// The platform's own: the login keychain on macOS, the Credential Manager on Windows, the
    /// Secret Service (GNOME Keyring, KWallet, KeePassXC) on Linux and the BSDs.
    #[default]
    Native,
    /// The freedesktop.org Secret Service on the D-Bus session bus (Linux and the BSDs), the
    /// same as `Native` there.
    SecretService,
    /// The Linux kernel's key retention service (keyutils): needs no daemon and works headless,
    /// but keeps the token only until the machine reboots.
    KernelKeyring,
}

/// Builds a [`KeyringStore`]. See [`KeyringStore::builder`].
#[must_use]
#[derive(Debug)]
pub struct KeyringStoreBuilder {
    service: String,
    account: String,
    backend: KeyringBackend,
    lock_path: Option<PathBuf>,
}

impl KeyringStoreBuilder {
    /// Sets the credential store. Defaults to [`KeyringBackend::Native`].
    pub fn backend(mut self, backend: KeyringBackend) -> Self {
        self.backend = backend;
        self
    }

    /// Sets the file locked around refreshes, shared by every process that uses this service and
    /// account. Defaults to `tokengate/keyring-<service>-<hash>.lock` in the user's runtime
    /// directory (`$XDG_RUNTIME_DIR`), or else the user's cache directory (`$XDG_CACHE_HOME` or
    /// `~/.cache`, `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows).
    pub fn lock_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.lock_path = Some(path.into());
        self
    }

    /// Connects to the credential store and checks that the entry can be read.
    ///
    /// # Errors
    ///
    /// - [`Error::Store`] of kind [`StoreErrorKind::Unavailable`] when there is no such credential
    ///   store here: another platform, no session bus, no Secret Service on it (typical of a
    ///   headless Linux), or the kernel keyring refused by a sandbox. The token is never kept
    ///   anywhere else instead; see [`KeyringStore`] for an explicit file fallback.
    /// - [`Error::Store`] of kind [`StoreErrorKind::Denied`] when the store refused access (a
    ///   locked collection, a declined prompt).
    /// - [`Error::Config`] when the service or account is empty, or no lock directory could be
    ///   found (set one with [`lock_path`](KeyringStoreBuilder::lock_path)).
    pub fn build(self) -> Result<KeyringStore, Error> {
        if self.service.is_empty() || self.account.is_empty() {
            return Err(Error::config(
                "the keyring service and account must not be empty",
            ));
        }
        let lock_path = match self.lock_path {
            Some(path) => path,
            None => default_lock_path(&self.service, &self.account).ok_or_else(|| {
                Error::config(
                    "no runtime or cache directory for the keyring lock file: set one with lock_path",
                )
            })?,
        };
        let credentials = open_backend(self.backend)?;
        let store = KeyringStore {
            service: self.service,
            account: self.account,
            backend: self.backend,
            credentials,
            lock_path,
        };
        // A read shows at once whether the store works; `NoEntry` is fine.
        store.get(&store.account)?;
        Ok(store)
    }
}

/// A store in the operating system's credential store, for desktop apps: the token (the whole
/// token, with its refresh token) is kept under a service and account name the app chooses, never
/// in a plain file. `Debug` shows the names and the backend only.
///
/// - **Backends**: see [`KeyringBackend`]. Built on `keyring-core` and the store crates of the
///   keyring ecosystem (the `keyring` crate's own engine since its version 4).
/// - **Format**: the [`FileStore`] JSON. A value longer than [`KeyringStore::CHUNK_BYTES`] (Windows
///   refuses credentials over 2,560 bytes; access tokens that are JWTs often come close) is split:
///   the entry under the app's account then holds a small index, and the parts are kept in
///   `<account>.chunk-a0`, `<account>.chunk-a1`, … (or the `b` set: a save writes the other set,
///   then switches the index, then deletes the old parts, so a reader never sees half of a save).
/// - **Cross-process single flight**: a credential store has no locks, so
///   [`lock`](TokenStore::lock) locks a file in the user's runtime or cache directory, exactly like
///   [`FileStore`] locks `<path>.lock` (see [`KeyringStoreBuilder::lock_path`]). The lock file holds
///   nothing.
/// - **No silent fallback**: when the credential store is missing or refuses access, building the
///   store (and every later call) fails with a [`StoreError`] of kind
///   [`Unavailable`](StoreErrorKind::Unavailable) or [`Denied`](StoreErrorKind::Denied). The token
///   is never written anywhere else on its own.
///
/// # Example: a desktop app
///
/// ```no_run
/// use tokengate::{Client, KeyringStore, OAuth2, Token};
///
/// let store = KeyringStore::new("com.example.photos", "alice@example.com")?;
/// let client = Client::builder("https://api.example.com")
///     .store(store)
///     .refresher(OAuth2::refresh_token("https://auth.example.com/oauth/token").client_id("photos"))
///     .build()?;
/// if client.token().is_none() {
///     // First run: show the login window, then hand over the token; it goes to the keychain.
///     # let login = Token::new("ACCESS").with_refresh_token("REFRESH");
///     client.set_token(login)?;
/// }
/// let albums = client.get("/albums").call()?;
/// # Ok::<_, tokengate::Error>(())
/// ```
///
/// # An explicit fallback to a file
///
/// An app that would rather keep the token in a file than not at all (a headless Linux box without
/// a Secret Service) says so in its own code, and can tell the user:
///
/// ```no_run
/// use tokengate::{Client, ClientBuilder, FileStore, KeyringStore, StoreErrorKind};
///
/// let builder = Client::builder("https://api.example.com");
/// let builder: ClientBuilder = match KeyringStore::new("com.example.sync", "alice") {
///     Ok(keyring) => builder.store(keyring),
///     Err(e) if e.store_error().is_some_and(|s| s.kind() == StoreErrorKind::Unavailable) => {
///         eprintln!("no credential store ({e}); keeping the token in ~/.config/sync/token.json");
///         builder.store(FileStore::new("/home/alice/.config/sync/token.json"))
///     }
///     Err(e) => return Err(e),
/// };
/// # Ok::<_, tokengate::Error>(())
/// ```
#[derive(Clone)]
pub struct KeyringStore {
    service: String,
    account: String,
    backend: KeyringBackend,
    credentials: Arc<CredentialStore>,
    lock_path: PathBuf,
}

impl fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringStore")
            .field("service", &self.service)
            .field("account", &self.account)
            .field("backend", &self.backend)
            .field("lock_path", &self.lock_path)
            .finish()
    }
}

/// What a chunked token's head entry says.
struct Index {
    /// Random per save; every part starts with `<id>:`.
    id: String,
    /// `a` or `b`.
    set: char,
    count: usize,
    bytes: usize,
}

/// Why reading the parts of a chunked token stopped.
enum ChunkRead {
    /// A save replaced them meanwhile: read the head again.
    Replaced,
    Failed(StoreError),
}

impl KeyringStore {
    /// The longest value kept in one credential; longer ones are split into parts of this size.
    /// Windows caps a credential at 2,560 bytes; each part carries a short save id as well.
    pub const CHUNK_BYTES: usize = 2048;

    /// A store for `account` of `service` (e.g. `"com.example.app"`, `"alice@example.com"`) in the
    /// platform's credential store, locking the default lock file.
    ///
    /// # Errors
    ///
    /// As [`KeyringStoreBuilder::build`].
    pub fn new(service: impl Into<String>, account: impl Into<String>) -> Result<Self, Error> {
        KeyringStore::builder(service, account).build()
    }

    /// A builder for a store for `account` of `service`.
    pub fn builder(service: impl Into<String>, account: impl Into<String>) -> KeyringStoreBuilder {
        KeyringStoreBuilder {
            service: service.into(),
            account: account.into(),
            backend: KeyringBackend::Native,
            lock_path: None,
        }
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The account name.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The file locked around refreshes.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// Removes the token (and its parts) from the credential store, e.g. when the user logs out
    /// ([`Gate::logout`](crate::Gate::logout) calls it through [`TokenStore::clear`]). Removing
    /// what is not there is not an error.
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::Unavailable`] or [`StoreErrorKind::Denied`] when the credential store
    /// cannot be used.
    pub fn clear(&self) -> Result<(), StoreError> {
        self.delete(&self.account)?;
        self.sweep('a', 0);
        self.sweep('b', 0);
        Ok(())
    }

    fn entry(&self, user: &str) -> Result<Entry, StoreError> {
        Entry::new_in_store(&self.credentials, &self.service, user)
            .map_err(|e| self.error("cannot name the entry", user, e))
    }

    /// The secret under `user`, `None` when there is none.
    fn get(&self, user: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.entry(user)?.get_secret() {
            Ok(secret) => Ok(Some(secret)),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(e) => Err(self.error("cannot read", user, e)),
        }
    }

    fn set(&self, user: &str, secret: &[u8]) -> Result<(), StoreError> {
        self.entry(user)?
            .set_secret(secret)
            .map_err(|e| self.error("cannot write", user, e))
    }

    /// Deletes `user`; `false` when there was nothing to delete.
    fn delete(&self, user: &str) -> Result<bool, StoreError> {
        match self.entry(user)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(KeyringError::NoEntry) => Ok(false),
            Err(e) => Err(self.error("cannot delete", user, e)),
        }
    }

    fn chunk_name(&self, set: char, i: usize) -> String {
        format!("{}.chunk-{set}{i}", self.account)
    }

    /// Deletes the parts of `set` from number `from` on, up to the first that does not exist.
    /// Leftovers are not worth failing a save for: errors end the sweep.
    fn sweep(&self, set: char, from: usize) {
        for i in from..MAX_CHUNKS {
            if !matches!(self.delete(&self.chunk_name(set, i)), Ok(true)) {
                break;
            }
        }
    }

    /// The parts of a chunked token, joined.
    fn read_chunks(&self, index: &Index) -> Result<Vec<u8>, ChunkRead> {
        let prefix = format!("{}:", index.id);
        let mut bytes = Vec::with_capacity(index.bytes);
        for i in 0..index.count {
            let part = self
                .get(&self.chunk_name(index.set, i))
                .map_err(ChunkRead::Failed)?
                .ok_or(ChunkRead::Replaced)?;
            let data = part
                .strip_prefix(prefix.as_bytes())
                .ok_or(ChunkRead::Replaced)?;
            bytes.extend_from_slice(data);
        }
        if bytes.len() != index.bytes {
            return Err(ChunkRead::Failed(self.malformed(format!(
                "the parts hold {} bytes, the index says {}",
                bytes.len(),
                index.bytes
            ))));
        }
        Ok(bytes)
    }

    fn malformed(&self, what: String) -> StoreError {
        StoreError::new(
            StoreErrorKind::Malformed,
            format!("{}: {what}", self.describe(&self.account)),
        )
    }

    fn describe(&self, user: &str) -> String {
        format!("credential {user:?} of service {:?}", self.service)
    }

    /// Our error for a failed credential store call: never the secret bytes some variants carry.
    fn error(&self, what: &str, user: &str, e: KeyringError) -> StoreError {
        let (kind, why) = match &e {
            KeyringError::NoStorageAccess(cause) => (
                StoreErrorKind::Denied,
                format!("the credential store refused access: {cause}"),
            ),
            KeyringError::PlatformFailure(cause) => (
                StoreErrorKind::Unavailable,
                format!("the credential store failed: {cause}"),
            ),
            KeyringError::NoDefaultStore => (
                StoreErrorKind::Unavailable,
                "no credential store".to_owned(),
            ),
            KeyringError::BadEncoding(_) | KeyringError::BadDataFormat(..) => (
                StoreErrorKind::Malformed,
                "the stored data is not in the expected format".to_owned(),
            ),
            KeyringError::TooLong(field, limit) => (
                StoreErrorKind::Custom,
                format!("the {field} is longer than the store's limit of {limit}"),
            ),
            KeyringError::Invalid(field, reason) => {
                (StoreErrorKind::Custom, format!("invalid {field}: {reason}"))
            }
            KeyringError::Ambiguous(entries) => (
                StoreErrorKind::Custom,
                format!("{} credentials match", entries.len()),
            ),
            KeyringError::NotSupportedByStore(what) => (
                StoreErrorKind::Custom,
                format!("not supported by the credential store: {what}"),
            ),
            _ => (
                StoreErrorKind::Custom,
                "the credential store failed".to_owned(),
            ),
        };
        StoreError::new(kind, format!("{what} {}: {why}", self.describe(user)))
    }
}

impl TokenStore for KeyringStore {
    /// Reads the token (joining its parts when it was split). `Ok(None)` when there is none.
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::Unavailable`] or [`StoreErrorKind::Denied`] when the credential store
    /// cannot be used; the [`FileStore::decode`] kinds for data that is not a token.
    fn load(&self) -> Result<Option<Token>, StoreError> {
        for _ in 0..LOAD_ATTEMPTS {
            let Some(head) = self.get(&self.account)? else {
                return Ok(None);
            };
            let bytes = match parse_index(&head) {
                None => head,
                Some(Err(what)) => return Err(self.malformed(what)),
                Some(Ok(index)) => match self.read_chunks(&index) {
                    Ok(bytes) => bytes,
                    Err(ChunkRead::Replaced) => continue,
                    Err(ChunkRead::Failed(e)) => return Err(e),
                },
            };
            return FileStore::decode(&bytes).map(Some).map_err(|e| {
                StoreError::new(
                    e.kind(),
                    format!("{}: {}", self.describe(&self.account), e.message()),
                )
            });
        }
        Err(self.malformed(format!(
            "its parts changed {LOAD_ATTEMPTS} times while being read"
        )))
    }

    /// Writes the token, split into parts when it is longer than
    /// [`CHUNK_BYTES`](KeyringStore::CHUNK_BYTES). Not locked by itself: the gate calls it inside
    /// [`lock`](TokenStore::lock).
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::Unavailable`] or [`StoreErrorKind::Denied`] when the credential store
    /// cannot be used. A failed save leaves the previous token readable.
    fn save(&self, token: &Token) -> Result<(), StoreError> {
        let text = FileStore::encode(token);
        let previous = match self.get(&self.account)? {
            Some(head) => parse_index(&head).and_then(Result::ok),
            None => None,
        };
        let in_use = if text.len() <= Self::CHUNK_BYTES {
            self.set(&self.account, text.as_bytes())?;
            None
        } else {
            let set = match previous {
                Some(Index { set: 'a', .. }) => 'b',
                _ => 'a',
            };
            let id = random_id();
            let parts: Vec<&[u8]> = text.as_bytes().chunks(Self::CHUNK_BYTES).collect();
            if parts.len() > MAX_CHUNKS {
                return Err(StoreError::new(
                    StoreErrorKind::Custom,
                    format!(
                        "{}: the token is longer than {} KiB",
                        self.describe(&self.account),
                        MAX_CHUNKS * Self::CHUNK_BYTES / 1024
                    ),
                ));
            }
            for (i, part) in parts.iter().enumerate() {
                let mut value = Vec::with_capacity(id.len() + 1 + part.len());
                value.extend_from_slice(id.as_bytes());
                value.push(b':');
                value.extend_from_slice(part);
                self.set(&self.chunk_name(set, i), &value)?;
            }
            self.sweep(set, parts.len());
            let mut index = Map::new();
            index.insert(CHUNKS_FIELD.into(), 1.into());
            index.insert("id".into(), id.into());
            index.insert("set".into(), set.to_string().into());
            index.insert("count".into(), parts.len().into());
            index.insert("bytes".into(), text.len().into());
            self.set(&self.account, Value::Object(index).to_string().as_bytes())?;
            Some(set)
        };
        // The parts no reader can reach any more.
        for set in ['a', 'b'] {
            if in_use != Some(set) {
                self.sweep(set, 0);
            }
        }
        Ok(())
    }

    /// Takes an exclusive lock on the lock file (see [`KeyringStoreBuilder::lock_path`]), polling
    /// until `timeout`, exactly as [`FileStore`] does.
    fn lock(&self, timeout: Duration) -> Result<StoreLock<'_>, StoreError> {
        create_parent_dir(&self.lock_path)?;
        lock_file(&self.lock_path, timeout).map(StoreLock::new)
    }

    /// Removes the token and its parts: [`KeyringStore::clear`].
    fn clear(&self) -> Result<(), StoreError> {
        KeyringStore::clear(self)
    }
}

/// `None` when `head` is not an index of parts (it is then the token itself); `Some(Err)` when it
/// is one that cannot be used.
fn parse_index(head: &[u8]) -> Option<Result<Index, String>> {
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(head) else {
        return None;
    };
    doc.get(CHUNKS_FIELD)?;
    let number = |name: &str| {
        doc.get(name)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
    };
    let index = (|| {
        if doc.get(CHUNKS_FIELD).and_then(Value::as_u64) != Some(1) {
            return Err("its parts are in an unknown format".to_owned());
        }
        let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
        let set = match doc.get("set").and_then(Value::as_str) {
            Some("a") => 'a',
            Some("b") => 'b',
            _ => return Err("its index names no set of parts".to_owned()),
        };
        match (number("count"), number("bytes")) {
            (Some(count @ 1..=MAX_CHUNKS), Some(bytes)) if !id.is_empty() => Ok(Index {
                id: id.to_owned(),
                set,
                count,
                bytes,
            }),
            _ => Err("its index of parts is incomplete".to_owned()),
        }
    })();
    Some(index)
}

/// 64 random bits in hex, to tell one save's parts from another's.
fn random_id() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", h.finish())
}

/// The credential store for `backend`, or why there is none.
fn open_backend(backend: KeyringBackend) -> Result<Arc<CredentialStore>, Error> {
    let unavailable = |what: String| {
        Error::Store(StoreError::new(
            StoreErrorKind::Unavailable,
            format!("no credential store: {what}"),
        ))
    };
    let failed = |name: &str, e: KeyringError| match e {
        KeyringError::NoStorageAccess(cause) => Error::Store(StoreError::new(
            StoreErrorKind::Denied,
            format!("the {name} refused access: {cause}"),
        )),
        KeyringError::PlatformFailure(cause) => unavailable(format!("the {name}: {cause}")),
        _ => unavailable(format!("the {name} cannot be opened")),
    };
    match backend {
        KeyringBackend::Native => native(&unavailable, &failed),
        KeyringBackend::SecretService => secret_service(&unavailable, &failed),
        KeyringBackend::KernelKeyring => kernel_keyring(&unavailable, &failed),
    }
}

type Unavailable<'a> = &'a dyn Fn(String) -> Error;
type Failed<'a> = &'a dyn Fn(&str, KeyringError) -> Error;

#[allow(unused_variables)]
fn native(unavailable: Unavailable<'_>, failed: Failed<'_>) -> Result<Arc<CredentialStore>, Error> {
    #[cfg(target_os = "macos")]
    return apple_native_keyring_store::keychain::Store::new()
        .map(|s| s as Arc<CredentialStore>)
        .map_err(|e| failed("macOS keychain", e));
    #[cfg(windows)]
    return windows_native_keyring_store::Store::new()
        .map(|s| s as Arc<CredentialStore>)
        .map_err(|e| failed("Windows Credential Manager", e));
    #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
    return secret_service(unavailable, failed);
    #[allow(unreachable_code)]
    Err(unavailable(
        "this platform has none that tokengate supports".into(),
    ))
}

#[allow(unused_variables)]
fn secret_service(
    unavailable: Unavailable<'_>,
    failed: Failed<'_>,
) -> Result<Arc<CredentialStore>, Error> {
    #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
    return zbus_secret_service_keyring_store::Store::new()
        .map(|s| s as Arc<CredentialStore>)
        .map_err(|e| {
            failed(
                "Secret Service (is a keyring daemon running on the session bus?)",
                e,
            )
        });
    #[allow(unreachable_code)]
    Err(unavailable(
        "the Secret Service exists only on Linux and the BSDs".into(),
    ))
}

#[allow(unused_variables)]
fn kernel_keyring(
    unavailable: Unavailable<'_>,
    failed: Failed<'_>,
) -> Result<Arc<CredentialStore>, Error> {
    #[cfg(target_os = "linux")]
    return linux_keyutils_keyring_store::Store::new()
        .map(|s| s as Arc<CredentialStore>)
        .map_err(|e| failed("kernel keyring", e));
    #[allow(unreachable_code)]
    Err(unavailable(
        "the kernel keyring exists only on Linux".into(),
    ))
}

/// `<runtime or cache dir>/tokengate/keyring-<service>-<hash of service and account>.lock`.
fn default_lock_path(service: &str, account: &str) -> Option<PathBuf> {
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let home = || env("HOME");
    let dir = if cfg!(windows) {
        env("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        home().map(|h| h.join("Library").join("Caches"))
    } else {
        env("XDG_RUNTIME_DIR")
            .or_else(|| env("XDG_CACHE_HOME"))
            .or_else(|| home().map(|h| h.join(".cache")))
    }?;
    let readable: String = service
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // FNV-1a: stable across processes and builds (the lock file must be the same for all).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in service.bytes().chain([0]).chain(account.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Some(
        dir.join("tokengate")
            .join(format!("keyring-{readable}-{hash:016x}.lock")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_is_told_from_a_token() {
        assert!(parse_index(br#"{"version":1,"access_token":"x"}"#).is_none());
        assert!(parse_index(b"not json").is_none());
        let index =
            parse_index(br#"{"tokengate_chunks":1,"id":"ab","set":"b","count":3,"bytes":5000}"#)
                .unwrap()
                .unwrap();
        assert_eq!((index.set, index.count, index.bytes), ('b', 3, 5000));
        for bad in [
            r#"{"tokengate_chunks":2,"id":"ab","set":"a","count":1,"bytes":1}"#,
            r#"{"tokengate_chunks":1,"id":"ab","set":"c","count":1,"bytes":1}"#,
            r#"{"tokengate_chunks":1,"id":"","set":"a","count":1,"bytes":1}"#,
            r#"{"tokengate_chunks":1,"id":"ab","set":"a","count":0,"bytes":1}"#,
            r#"{"tokengate_chunks":1,"id":"ab","set":"a","count":33,"bytes":1}"#,
        ] {
            assert!(parse_index(bad.as_bytes()).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_lock_file_is_the_same_for_every_process_of_a_service_and_account() {
        let a = default_lock_path("com.example/app", "alice").expect("HOME is set");
        assert_eq!(
            default_lock_path("com.example/app", "alice"),
            Some(a.clone())
        );
        assert_ne!(default_lock_path("com.example/app", "bob"), Some(a.clone()));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("keyring-com.example_app-"), "{name}");
        assert_eq!(a.parent().unwrap().file_name().unwrap(), "tokengate");
    }
}
