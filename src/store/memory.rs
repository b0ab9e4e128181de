//! [`MemoryStore`]: the token in memory, shared by the gates that hold a clone.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{StoreLock, TokenStore};
use crate::error::{StoreError, StoreErrorKind};
use crate::token::Token;

/// A store in memory: the token lasts as long as the process. What a client without a store does
/// anyway; share one `MemoryStore` (clones share it) between several gates to make them coordinate
/// their refreshes the way processes sharing a [`FileStore`](crate::FileStore) do.
///
/// ```
/// use tokengate::{MemoryStore, Token, TokenStore};
///
/// let store = MemoryStore::new();
/// store.save(&Token::new("ACCESS"))?;
/// assert!(store.clone().load()?.is_some());
/// # Ok::<_, tokengate::StoreError>(())
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    token: Mutex<Option<Token>>,
    locked: Mutex<bool>,
    unlocked: Condvar,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("token", &*self.inner.token.lock())
            .finish()
    }
}

impl TokenStore for MemoryStore {
    fn load(&self) -> Result<Option<Token>, StoreError> {
        Ok(self.inner.token.lock().clone())
    }

    fn save(&self, token: &Token) -> Result<(), StoreError> {
        *self.inner.token.lock() = Some(token.clone());
        Ok(())
    }

    fn clear(&self) -> Result<(), StoreError> {
        *self.inner.token.lock() = None;
        Ok(())
    }

    fn lock(&self, timeout: Duration) -> Result<StoreLock<'_>, StoreError> {
        let deadline = Instant::now() + timeout;
        let mut locked = self.inner.locked.lock();
        while *locked {
            if self
                .inner
                .unlocked
                .wait_until(&mut locked, deadline)
                .timed_out()
                && *locked
            {
                return Err(StoreError::new(
                    StoreErrorKind::LockTimeout,
                    "the memory store stayed locked",
                ));
            }
        }
        *locked = true;
        Ok(StoreLock::new(MemoryLock(&self.inner)))
    }
}

struct MemoryLock<'a>(&'a MemoryInner);

impl Drop for MemoryLock<'_> {
    fn drop(&mut self) {
        *self.0.locked.lock() = false;
        self.0.unlocked.notify_one();
    }
}
