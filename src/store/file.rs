//! [`FileStore`]: the token in a JSON file, with the file lock that makes processes take turns
//! (also used by `KeyringStore`), atomic private writes, and the checks on what is at the path.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::{StoreLock, TokenStore};
use crate::error::{StoreError, StoreErrorKind};
use crate::token::Token;

/// The version of the [`FileStore`] format this build writes and reads.
const FORMAT_VERSION: u64 = 1;
/// Largest token file read. Real ones are well under 4 KiB.
pub(super) const MAX_FILE: u64 = 64 * 1024;
/// Longest pause between two attempts to take a file lock held by another process.
const LOCK_POLL_MAX: Duration = Duration::from_millis(10);
/// How old a temporary file of ours must be (by its modification time) before a save may remove
/// it as the leftover of a crash. A save writes, flushes and renames its temporary in well under a
/// second.
const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// A store in a JSON file, shared safely by every process (and every client) that uses the same
/// path. The file necessarily holds the secrets; `Debug` shows only its path.
///
/// - **Atomic**: a save writes a temporary file in the same directory, flushes it to disk, renames it
///   over the token file and flushes the directory. A reader (or a crash) sees the old file or the
///   new one, never half of one.
/// - **Private**: on Unix the token file, its temporary files and the lock file are created with
///   mode `0600` (and a missing parent directory with `0700`), so there is no moment at which
///   another user could read them.
/// - **Cross-process single flight**: [`lock`](TokenStore::lock) takes an exclusive lock
///   ([`File::lock`]) on a sidecar file, `<path>.lock`, which is never deleted. The gate refreshes
///   inside it; see [`TokenStore`].
/// - **Nothing silently lost**: a save that finds an unusable file (empty, malformed, another
///   format version) first renames it to `<path>.corrupt-<unix seconds>`.
/// - **Only regular files**: the token file and `<path>.lock` are checked with [`fs::metadata`]
///   before they are opened, so a FIFO, directory, socket or device there is never opened (opening
///   a FIFO to read blocks until something writes to it) and gives
///   [`StoreErrorKind::NotRegularFile`] naming the path. A symlink is followed: one to a regular
///   file is used (a save replaces the link itself with a regular file), one to anything else is
///   refused the same way. The file is checked again once open; only something that can replace
///   files in the directory between the check and the open could still make a read wait.
/// - **Private on load** (Unix): a token file found readable or writable by group or others is
///   tightened to owner-only (`0600` for a `0644` file) when it is loaded, through the open file.
///   When its mode cannot be changed (another user owns it), the load fails with
///   [`StoreErrorKind::Permissions`] and the token is not used; so does a token file this user
///   may not read at all.
/// - **Crash leftovers cleaned**: a save removes the temporary files of earlier saves of the same
///   token file (`.<name>.tmp.<pid>.<n>`, which hold tokens) that a crash left behind. A save holds
///   an exclusive [`File::lock`] on its temporary from creating it until the rename, so a
///   temporary is removed only when it is a regular file, was last modified more than a minute
///   ago, *and* its lock can be taken (no process is writing it). Even a writer stalled for over
///   a minute between creating its temporary and locking it loses nothing: its rename then fails
///   and its save reports the error.
/// - **Read-only directory**: when the directory cannot be written (a read-only file system, or
///   no permission to create files in it), [`lock`](TokenStore::lock) and
///   [`save`](TokenStore::save) fail with [`StoreErrorKind::ReadOnly`], naming the directory:
///   tokens can be loaded but not saved or shared between processes. It is a configuration
///   failure ([`StoreError::is_configuration`]), not a transient one: the gate does not retry it
///   in a loop, requests fail at once until its longest backoff has passed.
/// - **Lock file of another user**: a `<path>.lock` that is there but that this user may not open
///   for writing (another user's file, or a mode without write permission) makes
///   [`lock`](TokenStore::lock) fail with [`StoreErrorKind::Permissions`], naming the lock file:
///   a configuration failure as well, never retried as a transient one.
///
/// # Format (version 1)
///
/// ```json
/// {
///   "version": 1,
///   "access_token": "…",
///   "token_type": "Bearer",
///   "expires_at_unix_ms": 1767225600000,
///   "lifetime_ms": 3600000,
///   "refresh_token": "…",
///   "scope": "read write"
/// }
/// ```
///
/// `version` and `access_token` are required; the others may be missing or `null`.
/// `expires_at_unix_ms` is the wall-clock expiry in milliseconds since the Unix epoch: on load it
/// becomes a monotonic deadline, so a token that expired while no process ran is expired.
/// `lifetime_ms` is the lifetime the token was issued with (it sizes the refresh window). Unknown
/// fields are ignored; a different `version` is refused with
/// [`StoreErrorKind::UnsupportedVersion`].
///
/// ```
/// use std::time::Duration;
/// use tokengate::{FileStore, Token, TokenStore};
///
/// let path = std::env::temp_dir().join(format!("tokengate-doc-{}.json", std::process::id()));
/// let store = FileStore::new(&path);
/// store.save(&Token::new("ACCESS").with_expires_in(Duration::from_secs(3600)).with_refresh_token("R"))?;
/// let token = store.load()?.expect("just saved");
/// assert_eq!(token.access_token().secret(), "ACCESS");
/// assert!(!format!("{store:?}").contains("ACCESS"));
/// # std::fs::remove_file(&path).ok();
/// # std::fs::remove_file(store.lock_path()).ok();
/// # Ok::<_, tokengate::StoreError>(())
/// ```
#[derive(Clone)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Makes temporary file names unique within the process (the process id makes them unique across).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FileStore {
    /// A store in the file at `path`. Nothing is touched until the first load, save or lock; a
    /// missing parent directory is created on the first save or lock.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        FileStore {
            path,
            lock_path: PathBuf::from(lock_path),
        }
    }

    /// The token file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sidecar file locked around refreshes (`<path>.lock`).
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The token in this store's file format (see [`FileStore`]), for stores that keep the same
    /// JSON elsewhere.
    ///
    /// # Security
    ///
    /// The text holds the access and refresh tokens.
    pub fn encode(token: &Token) -> String {
        let mut doc = Map::new();
        doc.insert("version".into(), FORMAT_VERSION.into());
        doc.insert("access_token".into(), token.access_token().secret().into());
        doc.insert("token_type".into(), token.token_type().into());
        if let Some(at) = token.expires_at_wall() {
            let ms = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
            doc.insert(
                "expires_at_unix_ms".into(),
                u64::try_from(ms).unwrap_or(u64::MAX).into(),
            );
        }
        if let Some(lifetime) = token.lifetime() {
            let ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
            doc.insert("lifetime_ms".into(), ms.into());
        }
        if let Some(r) = token.refresh_token() {
            doc.insert("refresh_token".into(), r.secret().into());
        }
        if let Some(scope) = token.scope() {
            doc.insert("scope".into(), scope.into());
        }
        let mut text = serde_json::to_string_pretty(&Value::Object(doc))
            .expect("a JSON object of strings and numbers always serialises");
        text.push('\n');
        text
    }

    /// Reads a token in this store's file format (see [`FileStore`]).
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::Empty`] for empty or blank input, [`StoreErrorKind::Malformed`] for input
    /// that is not JSON, cut short, larger than 64 KiB, not an object, or has a missing or mistyped
    /// field (or an access token that cannot go into an HTTP header),
    /// [`StoreErrorKind::UnsupportedVersion`] for another `version`. The messages name the field
    /// and position, never the contents.
    pub fn decode(bytes: &[u8]) -> Result<Token, StoreError> {
        let malformed = |msg: String| StoreError::new(StoreErrorKind::Malformed, msg);
        if bytes.len() as u64 > MAX_FILE {
            return Err(malformed(format!(
                "larger than {} KiB: not a token file",
                MAX_FILE / 1024
            )));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(StoreError::new(StoreErrorKind::Empty, "the file is empty"));
        }
        // serde_json's messages can quote the input; only its position and class are reported.
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Eof => "cut short (the JSON ends early)",
                _ => "not valid JSON",
            };
            malformed(format!(
                "{what} at line {}, column {}",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(doc) = doc else {
            return Err(malformed("not a JSON object".into()));
        };
        let field = |name: &str| doc.get(name).filter(|v| !v.is_null());
        let string = |name: &str| -> Result<Option<&str>, StoreError> {
            match field(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(malformed(format!("field `{name}` is not a string"))),
            }
        };
        let number = |name: &str| -> Result<Option<u64>, StoreError> {
            match field(name) {
                None => Ok(None),
                Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                    malformed(format!("field `{name}` is not a non-negative integer"))
                }),
            }
        };
        match number("version")? {
            Some(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(StoreError::new(
                    StoreErrorKind::UnsupportedVersion,
                    format!("format version {v}; this build reads version {FORMAT_VERSION}"),
                ));
            }
            None => return Err(malformed("field `version` is missing".into())),
        }
        let access = string("access_token")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| malformed("field `access_token` is missing or empty".into()))?;
        let mut token = Token::new(access);
        if let Some(t) = string("token_type")? {
            token = token.with_token_type(t);
        }
        if let Some(ms) = number("expires_at_unix_ms")? {
            let at = UNIX_EPOCH
                .checked_add(Duration::from_millis(ms))
                .ok_or_else(|| malformed("field `expires_at_unix_ms` is out of range".into()))?;
            token = token
                .with_expires_at_wall(at)
                .with_lifetime(number("lifetime_ms")?.map(Duration::from_millis));
        }
        if let Some(r) = string("refresh_token")? {
            token = token.with_refresh_token(r);
        }
        if let Some(s) = string("scope")? {
            token = token.with_scope(s);
        }
        if token.authorization().is_none() {
            return Err(malformed(
                "the access token or type cannot be sent in an HTTP header".into(),
            ));
        }
        Ok(token)
    }

    /// Reads the file: `Ok(None)` when it does not exist. With [`Tighten::Yes`], a file that other
    /// users may read or write is first made owner-only (see [`FileStore`]).
    fn read(&self, tighten: Tighten) -> Result<Option<Vec<u8>>, StoreError> {
        if !regular_file_or_missing(&self.path, "token file")? {
            return Ok(None);
        }
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(StoreError::new(
                    StoreErrorKind::Permissions,
                    "the token file cannot be read by this user (its owner or mode forbids it); \
                     fix its owner or mode",
                )
                .with_path(&self.path)
                .with_source(e));
            }
            Err(e) => return Err(StoreError::io("cannot open", &self.path, e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| StoreError::io("cannot inspect", &self.path, e))?;
        check_regular(&self.path, "token file", &meta)?;
        if tighten == Tighten::Yes {
            make_private(&self.path, &file, &meta)?;
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::io("cannot read", &self.path, e))?;
        Ok(Some(bytes))
    }

    /// The directory the token file is in.
    fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        }
    }

    /// The prefix of this store's temporary files: `.<file name>.tmp.`.
    fn temp_prefix(&self) -> Result<String, StoreError> {
        let name = self
            .path
            .file_name()
            .ok_or_else(|| {
                StoreError::new(StoreErrorKind::Io, "the path names no file").with_path(&self.path)
            })?
            .to_string_lossy();
        Ok(format!(".{name}.tmp."))
    }

    /// Removes the temporaries of earlier saves that a crash left behind: regular files named
    /// `.<name>.tmp.<pid>.<n>` last modified more than [`STALE_TEMP_AGE`] ago whose lock can be
    /// taken (a save holds its temporary's lock until the rename). Best effort: a temporary that
    /// cannot be inspected or removed is left, and the save goes on.
    fn remove_stale_temps(&self, prefix: &str) {
        let Ok(entries) = fs::read_dir(self.dir()) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
                continue;
            };
            let ours = rest.split_once('.').is_some_and(|(pid, n)| {
                !pid.is_empty()
                    && !n.is_empty()
                    && pid.bytes().all(|b| b.is_ascii_digit())
                    && n.bytes().all(|b| b.is_ascii_digit())
            });
            // Not followed: a symlink, FIFO or directory of this name is not one of ours.
            let old = entry.metadata().is_ok_and(|m| {
                m.file_type().is_file()
                    && m.modified()
                        .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > STALE_TEMP_AGE))
            });
            if !ours || !old {
                continue;
            }
            let path = entry.path();
            let Ok(file) = File::open(&path) else {
                continue;
            };
            // Re-checked on the open file: the name may have been replaced meanwhile.
            if !file.metadata().is_ok_and(|m| m.file_type().is_file()) {
                continue;
            }
            if file.try_lock().is_ok() {
                let _ = fs::remove_file(&path);
            }
        }
    }

    fn create_parent(&self) -> Result<(), StoreError> {
        create_parent_dir(&self.path)
    }

    /// Renames an unusable token file to `<path>.corrupt-<unix seconds>` so a save does not
    /// overwrite it. Returns the new name.
    fn set_aside(&self) -> Result<PathBuf, StoreError> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for n in 0..100u32 {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".corrupt-{secs}"));
            if n > 0 {
                name.push(format!("-{n}"));
            }
            let aside = PathBuf::from(name);
            if aside.exists() {
                continue;
            }
            return match fs::rename(&self.path, &aside) {
                Ok(()) => Ok(aside),
                // Someone else set it aside first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(aside),
                Err(e) => Err(StoreError::io(
                    "cannot keep the unusable file aside (not overwriting it)",
                    &self.path,
                    e,
                )),
            };
        }
        Err(StoreError::new(
            StoreErrorKind::Io,
            "too many unusable token files kept aside; not overwriting this one",
        )
        .with_path(&self.path))
    }

    /// Writes `text` to a new temporary file next to the token file and renames it over the token
    /// file, flushing both the file and the directory. The temporary stays locked until it is
    /// renamed, so [`remove_stale_temps`](FileStore::remove_stale_temps) never takes it for a
    /// leftover.
    fn write_atomically(&self, text: &str) -> Result<(), StoreError> {
        let dir = self.dir();
        let prefix = self.temp_prefix()?;
        let temp = dir.join(format!(
            "{prefix}{}.{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Relaxed)
        ));
        let mut file = match private_options().write(true).create_new(true).open(&temp) {
            Ok(file) => file,
            Err(e) => {
                return Err(create_failed(
                    "cannot create a temporary file",
                    dir,
                    &temp,
                    e,
                ));
            }
        };
        let written = (|| {
            file.lock()?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&temp, &self.path)
        })();
        drop(file);
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(StoreError::io("cannot write", &self.path, e));
        }
        self.remove_stale_temps(&prefix);
        // The rename is durable once the directory is. Windows cannot open a directory this way and
        // makes renames durable by itself.
        #[cfg(unix)]
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io("cannot flush the directory of", &self.path, e))?;
        Ok(())
    }
}

/// Whether a load tightens a token file's loose permissions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tighten {
    Yes,
    /// A save is about to replace the file with a private one anyway.
    No,
}

/// Checks, without opening it, that `path` is a regular file (following symlinks). `Ok(false)`
/// when nothing is there.
fn regular_file_or_missing(path: &Path, what: &str) -> Result<bool, StoreError> {
    match fs::metadata(path) {
        Ok(meta) => check_regular(path, what, &meta).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io("cannot inspect", path, e)),
    }
}

/// [`StoreErrorKind::NotRegularFile`] unless `meta` is a regular file's.
fn check_regular(path: &Path, what: &str, meta: &fs::Metadata) -> Result<(), StoreError> {
    let file_type = meta.file_type();
    if file_type.is_file() {
        return Ok(());
    }
    let is = if file_type.is_dir() {
        "a directory"
    } else {
        special_file_kind(&file_type)
    };
    Err(StoreError::new(
        StoreErrorKind::NotRegularFile,
        format!("the {what} is {is}, not a regular file; it was not opened (remove or move it)"),
    )
    .with_path(path))
}

#[cfg(unix)]
fn special_file_kind(file_type: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn special_file_kind(_: &fs::FileType) -> &'static str {
    "not a file"
}

/// Makes a token file that group or others may read or write owner-only, through the open file
/// (the mode of the file that was opened, not of whatever the name points to later).
#[cfg(unix)]
fn make_private(path: &Path, file: &File, meta: &fs::Metadata) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    file.set_permissions(fs::Permissions::from_mode(mode & 0o700))
        .map_err(|e| {
            StoreError::new(
                StoreErrorKind::Permissions,
                format!(
                    "the token file can be read by other users (mode {mode:04o}) and cannot be \
                     made private (0600), so it is not used; fix its owner or mode"
                ),
            )
            .with_path(path)
            .with_source(e)
        })
}

#[cfg(not(unix))]
fn make_private(_: &Path, _: &File, _: &fs::Metadata) -> Result<(), StoreError> {
    Ok(())
}

/// The error for a file that could not be created in `dir`: [`StoreErrorKind::ReadOnly`] when the
/// directory cannot be written, else [`StoreErrorKind::Io`].
fn create_failed(what: &str, dir: &Path, file: &Path, e: io::Error) -> StoreError {
    match e.kind() {
        io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied => {
            let why = if e.kind() == io::ErrorKind::ReadOnlyFilesystem {
                "is on a read-only file system"
            } else {
                "cannot be written by this user"
            };
            StoreError::new(
                StoreErrorKind::ReadOnly,
                format!(
                    "{what}: the directory {why}, so tokens can be read but not saved or shared \
                     between processes"
                ),
            )
            .with_path(dir)
            .with_source(e)
        }
        _ => StoreError::io(what, file, e),
    }
}

/// Open options that create files readable by their owner only (Unix mode `0600`).
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

impl TokenStore for FileStore {
    /// Reads the token file. `Ok(None)` when it does not exist.
    ///
    /// The file must be a regular file ([`StoreErrorKind::NotRegularFile`] otherwise, without
    /// opening it); one that other users may read is made owner-only first, or refused with
    /// [`StoreErrorKind::Permissions`] when it cannot be (see [`FileStore`]).
    fn load(&self) -> Result<Option<Token>, StoreError> {
        match self.read(Tighten::Yes)? {
            None => Ok(None),
            Some(bytes) => FileStore::decode(&bytes)
                .map(Some)
                .map_err(|e| e.with_path(&self.path)),
        }
    }

    /// Writes the token file atomically. An existing file that is not a usable token file is first
    /// renamed to `<path>.corrupt-<unix seconds>`; one that cannot be read, or is not a regular
    /// file, is left alone and the save fails. Afterwards, temporary files a crashed save left
    /// behind are removed (see [`FileStore`]). In a directory that cannot be written the save fails
    /// with [`StoreErrorKind::ReadOnly`].
    ///
    /// Not locked by itself: the gate calls it inside [`lock`](TokenStore::lock). Do the same when
    /// other processes may be refreshing.
    fn save(&self, token: &Token) -> Result<(), StoreError> {
        self.create_parent()?;
        if let Some(bytes) = self.read(Tighten::No)?
            && FileStore::decode(&bytes).is_err_and(|e| e.is_corrupt())
        {
            self.set_aside()?;
        }
        self.write_atomically(&FileStore::encode(token))
    }

    /// Takes an exclusive [`File::lock`] on `<path>.lock`, polling (at most every 10 ms) until
    /// `timeout`. The lock is released when the [`StoreLock`] is dropped, or by the OS when the
    /// process dies. Fails with [`StoreErrorKind::NotRegularFile`] when `<path>.lock` is not a
    /// regular file, and with [`StoreErrorKind::ReadOnly`] when it is missing and the directory
    /// cannot be written.
    fn lock(&self, timeout: Duration) -> Result<StoreLock<'_>, StoreError> {
        self.create_parent()?;
        lock_file(&self.lock_path, timeout).map(StoreLock::new)
    }

    /// Deletes the token file (the lock file stays, as every process shares it), and makes the
    /// deletion durable. Files kept aside as `<path>.corrupt-*` are left alone. Not locked by
    /// itself: the gate calls it inside [`lock`](TokenStore::lock).
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::NotRegularFile`] when the path is not a regular file (it is not
    /// touched), [`StoreErrorKind::ReadOnly`] or [`StoreErrorKind::Io`] when it cannot be removed.
    fn clear(&self) -> Result<(), StoreError> {
        if !regular_file_or_missing(&self.path, "token file")? {
            return Ok(());
        }
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(StoreError::new(
                    StoreErrorKind::ReadOnly,
                    "cannot remove the token file: its directory cannot be written",
                )
                .with_path(&self.path)
                .with_source(e));
            }
            Err(e) => return Err(StoreError::io("cannot remove", &self.path, e)),
        }
        // The removal is durable once the directory is (not on Windows, where a directory cannot
        // be opened this way).
        #[cfg(unix)]
        File::open(self.dir())
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io("cannot flush the directory of", &self.path, e))?;
        Ok(())
    }
}

/// Creates the missing parent directories of `path`, with mode `0700` on Unix.
pub(crate) fn create_parent_dir(path: &Path) -> Result<(), StoreError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| {
        let parent = dir.parent().filter(|d| !d.as_os_str().is_empty());
        create_failed(
            "cannot create the directory",
            parent.unwrap_or(Path::new(".")),
            dir,
            e,
        )
    })
}

/// Takes an exclusive [`File::lock`] on `path` (created with mode `0600` when missing, never
/// deleted), polling at most every 10 ms until `timeout`. The lock lasts as long as the returned
/// file is open, and the OS releases it when the process dies. Every store with a lock file
/// ([`FileStore`], the keyring store) locks through here. Something other than a regular file at
/// `path` is refused without opening it ([`StoreErrorKind::NotRegularFile`]); a lock file that
/// cannot be created because its directory cannot be written is [`StoreErrorKind::ReadOnly`], and
/// one that is there but that this user may not open for writing is
/// [`StoreErrorKind::Permissions`]: configuration failures, which retrying does not fix.
pub(crate) fn lock_file(path: &Path, timeout: Duration) -> Result<File, StoreError> {
    let existed = regular_file_or_missing(path, "lock file")?;
    let file = private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            let dir = dir.unwrap_or(Path::new("."));
            match e.kind() {
                io::ErrorKind::PermissionDenied if existed => StoreError::new(
                    StoreErrorKind::Permissions,
                    "the lock file cannot be opened for writing by this user (its owner or mode \
                     forbids it), so refreshes cannot be coordinated with other processes; fix \
                     its owner or mode",
                )
                .with_path(path)
                .with_source(e),
                _ if existed && e.kind() != io::ErrorKind::ReadOnlyFilesystem => {
                    StoreError::io("cannot open the lock file", path, e)
                }
                _ => create_failed("cannot create the lock file", dir, path, e),
            }
        })?;
    let meta = file
        .metadata()
        .map_err(|e| StoreError::io("cannot inspect", path, e))?;
    check_regular(path, "lock file", &meta)?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => {
                return Err(StoreError::io("cannot lock", path, e));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(StoreError::new(
                StoreErrorKind::LockTimeout,
                format!("another process held the lock for more than {timeout:?}"),
            )
            .with_path(path));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(LOCK_POLL_MAX);
    }
}
