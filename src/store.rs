//! Keeping the token between runs and sharing it between processes: the [`TokenStore`] trait and
//! its exclusive section ([`StoreLock`]), with one room per store: [`MemoryStore`], [`FileStore`],
//! and behind features `KeyringStore` and `RedisStore`. The store side of a refresh (lock,
//! re-read, adopt or refresh, save) is the gate's, in `gate/stored.rs`.
//!
//! With rotating refresh tokens (RFC 9700 §4.14.2) each refresh token works once, so two processes
//! that refresh the same token at once log the user out: the second presents a used refresh token.
//! The gate therefore refreshes inside the store's exclusive section: take the lock, re-read the
//! store, adopt the stored token if another process already refreshed, otherwise refresh and save the
//! new token before the lock is released.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{StoreError, StoreErrorKind};
use crate::token::Token;

mod file;
mod memory;

pub use file::FileStore;
#[cfg(feature = "keyring")]
pub(crate) use file::{create_parent_dir, lock_file};
pub use memory::MemoryStore;

/// Where a client's token lives between runs, shared by every process that uses the same store.
///
/// The gate calls [`load`](TokenStore::load) once when it is built (when no token was given) and
/// again inside [`lock`](TokenStore::lock) before every refresh; it calls [`save`](TokenStore::save)
/// inside the lock after every refresh and on [`Gate::set_token`](crate::Gate::set_token) and
/// [`Gate::login`](crate::Gate::login); it calls [`clear`](TokenStore::clear) inside the lock on
/// [`Gate::logout`](crate::Gate::logout). All of them run on the thread that needs them, with no
/// lock of the gate held.
///
/// Implement it to keep tokens in a keyring or a database; [`FileStore::encode`] and
/// [`FileStore::decode`] give you the file format as a string if you want the same one. A store
/// used by several processes must make [`lock`](TokenStore::lock) exclusive across them (a file
/// lock, a database row lock, a named mutex).
///
/// ```
/// use std::time::Duration;
/// use std::sync::Mutex;
/// use tokengate::{FileStore, StoreError, StoreLock, Token, TokenStore};
///
/// /// Keeps the token as a string, e.g. in a keyring entry (here: in memory).
/// struct Keyring(Mutex<Option<String>>);
///
/// impl TokenStore for Keyring {
///     fn load(&self) -> Result<Option<Token>, StoreError> {
///         let stored = self.0.lock().unwrap();
///         stored.as_deref().map(|s| FileStore::decode(s.as_bytes())).transpose()
///     }
///     fn save(&self, token: &Token) -> Result<(), StoreError> {
///         *self.0.lock().unwrap() = Some(FileStore::encode(token));
///         Ok(())
///     }
///     // One process only: the default `lock` (no cross-process exclusion) is enough.
/// }
///
/// let keyring = Keyring(Mutex::new(None));
/// keyring.save(&Token::new("ACCESS").with_expires_in(Duration::from_secs(60)))?;
/// assert_eq!(keyring.load()?.unwrap().access_token().secret(), "ACCESS");
/// # Ok::<_, StoreError>(())
/// ```
pub trait TokenStore: Send + Sync + 'static {
    /// Reads the stored token. `Ok(None)` when nothing is stored yet.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the stored data cannot be read ([`StoreErrorKind::Io`]) or is not a
    /// token ([`StoreErrorKind::Empty`], [`Malformed`](StoreErrorKind::Malformed),
    /// [`UnsupportedVersion`](StoreErrorKind::UnsupportedVersion)).
    fn load(&self) -> Result<Option<Token>, StoreError>;

    /// Replaces the stored token with `token`.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the token could not be stored; what was stored before must then be
    /// unchanged.
    fn save(&self, token: &Token) -> Result<(), StoreError>;

    /// Enters the store's exclusive section, waiting at most `timeout`; it ends when the returned
    /// [`StoreLock`] is dropped. The gate holds it across a refresh: re-read, refresh, save.
    ///
    /// Defaults to no exclusion at all, which is right for a store only one process (and one gate)
    /// uses; a shared store must override it.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] of kind [`StoreErrorKind::LockTimeout`] when the section could not be entered
    /// within `timeout` (the gate reports [`Error::RefreshTimeout`](crate::Error::RefreshTimeout)), or any other kind when locking
    /// failed.
    fn lock(&self, timeout: Duration) -> Result<StoreLock<'_>, StoreError> {
        let _ = timeout;
        Ok(StoreLock::none())
    }

    /// Removes the stored token, when the user logs out: afterwards [`load`](TokenStore::load)
    /// returns `Ok(None)`. Removing what is not there is not an error. A gate that had loaded or
    /// saved a token here and later finds the store empty takes it as a logout elsewhere: its
    /// next refresh fails with [`Error::LoginRequired`](crate::Error::LoginRequired) instead of
    /// bringing the session back (see [`RefreshErrorKind::LoggedOut`](crate::RefreshErrorKind::LoggedOut)).
    ///
    /// Defaults to failing with [`StoreErrorKind::Unsupported`]: a store written before this
    /// method existed keeps compiling, and a logout through it says the token could not be
    /// removed rather than leave it behind silently.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the token could not be removed; what was stored must then be
    /// unchanged.
    fn clear(&self) -> Result<(), StoreError> {
        Err(StoreError::new(
            StoreErrorKind::Unsupported,
            "this store cannot remove its token (TokenStore::clear is not implemented)",
        ))
    }
}

impl<S: TokenStore> TokenStore for Arc<S> {
    fn load(&self) -> Result<Option<Token>, StoreError> {
        (**self).load()
    }

    fn save(&self, token: &Token) -> Result<(), StoreError> {
        (**self).save(token)
    }

    fn lock(&self, timeout: Duration) -> Result<StoreLock<'_>, StoreError> {
        (**self).lock(timeout)
    }

    fn clear(&self) -> Result<(), StoreError> {
        (**self).clear()
    }
}

/// Anything held for the length of a [`StoreLock`].
trait Held {}
impl<T> Held for T {}

/// A store's exclusive section, entered by [`TokenStore::lock`]; dropping it leaves the section.
///
/// It owns whatever keeps the section entered: a locked file, a guard, a database transaction. Its
/// `Drop` leaves the section.
#[must_use = "the exclusive section ends when the StoreLock is dropped"]
pub struct StoreLock<'a> {
    held: Option<Box<dyn Held + 'a>>,
}

impl<'a> StoreLock<'a> {
    /// A lock that keeps `held` (e.g. a locked [`File`](std::fs::File)) until it is dropped.
    pub fn new<T: 'a>(held: T) -> Self {
        StoreLock {
            held: Some(Box::new(held)),
        }
    }

    /// A lock that excludes nothing, for stores that need no exclusion.
    pub fn none() -> Self {
        StoreLock { held: None }
    }
}

impl fmt::Debug for StoreLock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreLock")
            .field("held", &self.held.is_some())
            .finish()
    }
}

#[cfg(feature = "keyring")]
mod keyring;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "keyring")]
pub use self::keyring::{KeyringBackend, KeyringStore, KeyringStoreBuilder};
#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};

#[cfg(test)]
mod tests;
