//! [`StoreError`]: why a token store could not be read or written.

use std::fmt;
use std::sync::Arc;

/// The broad class of a [`StoreError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The stored data is empty (a zero-length or whitespace-only file).
    Empty,
    /// The stored data is not a token: not JSON, cut short, too large, or a field is missing or has
    /// the wrong type.
    Malformed,
    /// The stored data is in a format version this build does not know (e.g. written by a newer
    /// version of the program).
    UnsupportedVersion,
    /// Reading or writing failed (permissions, a directory where the file should be, a full disk).
    Io,
    /// The store's exclusive lock could not be taken in time (another process holds it).
    LockTimeout,
    /// The store cannot be reached: no credential store on this system (e.g. no Secret Service on
    /// the session bus of a headless Linux), or a Redis server that refuses or drops connections
    /// or does not answer in time. Transient: it may be back later. The token is never kept
    /// anywhere else instead.
    Unavailable,
    /// The store refused access: wrong Redis credentials or an ACL that forbids a command, a locked
    /// keychain or a credential prompt the user declined.
    Denied,
    /// The store's path, or a file beside it (a [`FileStore`](crate::FileStore)'s `<path>.lock`),
    /// is there but is not a regular file: a FIFO, a directory, a socket or a device. It is never
    /// opened (a FIFO would block the reader forever); the message names the path and what it is.
    /// An operator must remove or move it.
    NotRegularFile,
    /// The store's directory cannot be written (a read-only file system, or a directory this user
    /// may not create files in): tokens can be read but neither saved nor shared between processes,
    /// since the lock file cannot be created either. An operator must fix it; retrying will not.
    ReadOnly,
    /// A file of the store is there but its owner or mode forbids its use: the token file can be
    /// read by other users (group or world permissions) and its mode cannot be tightened to
    /// `0600` because this user does not own it (it is not used), the token file cannot be read
    /// by this user, or the lock file cannot be opened for writing by this user (refreshes
    /// cannot be coordinated). An operator must fix its
    /// owner or mode; retrying will not.
    Permissions,
    /// A save was refused because this process no longer held the store's exclusive section and
    /// another process has saved since (a `RedisStore` lease that expired
    /// during a slow refresh). The newer stored token was kept.
    LeaseLost,
    /// TLS with the store's server failed (a `RedisStore` at a `rediss://` URL): its certificate
    /// is not trusted or not valid for its host name, the server refused (or wanted) a client
    /// certificate, or the handshake failed. A configuration failure
    /// ([`StoreError::is_configuration`]): trying again does not change a certificate.
    Tls,
    /// The store cannot do what was asked: a custom store that does not implement
    /// [`TokenStore::clear`](crate::TokenStore::clear). A configuration failure: the program must
    /// implement it.
    Unsupported,
    /// A custom store reported the failure.
    Custom,
}

/// Why a [`TokenStore`](crate::TokenStore) could not load, save or lock.
///
/// Cheap to clone. The message names the file (for a [`FileStore`](crate::FileStore)) and what is
/// wrong with it, never its contents: a token file holds secrets. Custom stores build one with
/// [`StoreError::new`].
///
/// ```
/// use tokengate::{StoreError, StoreErrorKind};
///
/// let e = StoreError::new(StoreErrorKind::Custom, "keyring locked");
/// assert_eq!(e.kind(), StoreErrorKind::Custom);
/// assert!(e.to_string().contains("keyring locked"));
/// ```
#[derive(Clone)]
pub struct StoreError {
    inner: Arc<StoreInner>,
}

#[derive(Clone)]
struct StoreInner {
    kind: StoreErrorKind,
    message: String,
    path: Option<std::path::PathBuf>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error of `kind` with a message saying what went wrong. Keep secrets out of it.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            inner: Arc::new(StoreInner {
                kind,
                message: message.into(),
                path: None,
                source: None,
            }),
        }
    }

    /// Attaches the underlying cause (e.g. an [`std::io::Error`]). It is returned by
    /// [`source`](std::error::Error::source) and not repeated in this error's `Display` text, so an
    /// error reporter that prints the chain shows it once.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.inner).source = Some(Arc::new(source));
        self
    }

    pub(crate) fn with_path(mut self, path: &std::path::Path) -> Self {
        Arc::make_mut(&mut self.inner).path = Some(path.to_owned());
        self
    }

    pub(crate) fn io(what: &str, path: &std::path::Path, e: std::io::Error) -> Self {
        StoreError::new(StoreErrorKind::Io, what)
            .with_path(path)
            .with_source(e)
    }

    /// The message without the cause, for stores that wrap another store's error.
    #[cfg_attr(not(any(feature = "keyring", feature = "redis")), allow(dead_code))]
    pub(crate) fn message(&self) -> &str {
        &self.inner.message
    }

    /// The broad class of the failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.inner.kind
    }

    /// Whether the stored data itself is unusable (empty, malformed or an unknown version), as
    /// opposed to an I/O or locking failure. A [`FileStore`](crate::FileStore) keeps such a file
    /// aside when it saves a new token.
    ///
    /// ```
    /// use tokengate::{StoreError, StoreErrorKind};
    ///
    /// assert!(StoreError::new(StoreErrorKind::Malformed, "not JSON").is_corrupt());
    /// assert!(!StoreError::new(StoreErrorKind::Io, "disk full").is_corrupt());
    /// ```
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self.inner.kind,
            StoreErrorKind::Empty | StoreErrorKind::Malformed | StoreErrorKind::UnsupportedVersion
        )
    }

    /// Whether the store cannot be used as it is set up and an operator must fix it
    /// ([`NotRegularFile`](StoreErrorKind::NotRegularFile), [`ReadOnly`](StoreErrorKind::ReadOnly),
    /// [`Permissions`](StoreErrorKind::Permissions), [`Tls`](StoreErrorKind::Tls)), or the store
    /// cannot do what was asked ([`Unsupported`](StoreErrorKind::Unsupported)). The gate treats
    /// such a failure like a refused client configuration: requests fail at once and it tries
    /// again only after its longest backoff, never in a tight loop.
    ///
    /// ```
    /// use tokengate::{StoreError, StoreErrorKind};
    ///
    /// assert!(StoreError::new(StoreErrorKind::Permissions, "access denied").is_configuration());
    /// assert!(!StoreError::new(StoreErrorKind::LockTimeout, "busy").is_configuration());
    /// ```
    pub fn is_configuration(&self) -> bool {
        matches!(
            self.inner.kind,
            StoreErrorKind::NotRegularFile
                | StoreErrorKind::ReadOnly
                | StoreErrorKind::Permissions
                | StoreErrorKind::Tls
                | StoreErrorKind::Unsupported
        )
    }

    /// The file concerned, when the store is a file.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.inner.path.as_deref()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("token store")?;
        if let Some(path) = &self.inner.path {
            write!(f, " {}", path.display())?;
        }
        write!(f, ": {}", self.inner.message)
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message)
            .field("path", &self.inner.path)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod store_error_tests {
    use super::*;

    #[test]
    fn with_source_on_a_shared_store_error_keeps_the_source_and_leaves_the_clone_alone() {
        let first = StoreError::new(StoreErrorKind::Custom, "keyring locked");
        let shared = first.clone();
        let with = first.with_source(std::io::Error::other("dbus gone"));
        assert!(
            std::error::Error::source(&with).is_some_and(|s| s.to_string() == "dbus gone"),
            "the source is attached even though the error was shared"
        );
        assert!(std::error::Error::source(&shared).is_none());
        assert_eq!(with.kind(), StoreErrorKind::Custom);
    }
}
