//! The store side of a refresh: the gate's protocol for refreshing through a
//! [`TokenStore`] (lock, re-read, adopt or refresh, save before unlocking), and what it brings
//! back ([`RefreshOutcome`]). The stores only provide `lock`, `load`, `save` and `clear`; the decisions
//! live here, on the gate's side.

use std::time::{Duration, UNIX_EPOCH};

use crate::error::{Class, Error, RefreshError, RefreshErrorKind, StoreError, StoreErrorKind};
use crate::store::TokenStore;
use crate::token::Token;

/// The outcome of a refresh through a store.
pub(crate) struct RefreshOutcome {
    pub(crate) token: Token,
    /// Taken from the store (another process or gate refreshed), not from the refresher.
    pub(crate) adopted: bool,
    /// The refresh worked but saving its token failed (other processes will not see it).
    pub(crate) save_error: Option<StoreError>,
    /// The refresher's new access token cannot be sent: the attempt failed, and `token` is the
    /// token it replaces carrying the rotated refresh token, kept (and saved) so it is not lost.
    pub(crate) unusable: Option<Error>,
}

impl RefreshOutcome {
    pub(crate) fn refreshed(token: Token) -> Self {
        RefreshOutcome {
            token,
            adopted: false,
            save_error: None,
            unusable: None,
        }
    }
}

/// Whether two tokens are the same grant: the same access token, refresh token and expiry (to the
/// millisecond a store keeps). A server may rotate the refresh token and re-issue the same access
/// token, so comparing access tokens alone would miss another process's refresh.
pub(crate) fn same_grant(a: &Token, b: &Token) -> bool {
    let ms = |t: &Token| {
        t.expires_at_wall()
            .and_then(|w| w.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis())
    };
    a.access_token() == b.access_token() && a.refresh_token() == b.refresh_token() && ms(a) == ms(b)
}

/// The gate's error for a failed [`TokenStore::lock`].
pub(crate) fn lock_failed(e: StoreError, timeout: Duration) -> Error {
    if e.kind() == StoreErrorKind::LockTimeout {
        Error::RefreshTimeout(timeout)
    } else {
        Error::Store(e)
    }
}

/// The store side of a refresh, run by the refreshing thread of a gate with no gate lock held:
///
/// 1. enter the store's exclusive section (at most `timeout`);
/// 2. re-read the store; if it holds a token other than `current` (another access token, refresh
///    token or expiry: see [`same_grant`]), another process refreshed: adopt it when `usable`,
///    else refresh from it (its refresh token is the newest);
/// 3. otherwise refresh from `current` and save the new token, still inside the section, so the
///    rotated refresh token is on disk before any other process can look.
///
/// An unusable stored file (empty, malformed, another version) is treated as empty; the save keeps
/// it aside. An unreadable one stops the refresh with [`Error::Store`]: refreshing without being able
/// to see what other processes did could spend a refresh token they already spent. An *empty*
/// store when `current_stored` (the store held `current`: it was loaded, saved or adopted there)
/// means another process logged out: [`Error::LoginRequired`] of kind
/// [`RefreshErrorKind::LoggedOut`], without refreshing, so the session is not brought back.
pub(crate) fn refresh_locked(
    store: &dyn TokenStore,
    current: Option<&Token>,
    current_stored: bool,
    timeout: Duration,
    usable: impl Fn(&Token) -> bool,
    refresh: impl FnOnce(Option<&Token>) -> Result<Token, Error>,
) -> Result<RefreshOutcome, Error> {
    let _section = store.lock(timeout).map_err(|e| lock_failed(e, timeout))?;
    let stored = match store.load() {
        Ok(None) if current_stored && current.is_some() => {
            return Err(Error::LoginRequired(Some(RefreshError::new(
                RefreshErrorKind::LoggedOut,
                Class::Login,
                "the token store no longer holds the session: it was logged out elsewhere",
            ))));
        }
        Ok(stored) => stored,
        Err(e) if e.is_corrupt() => None,
        Err(e) => return Err(Error::Store(e)),
    };
    let newer = stored.filter(|s| current.is_none_or(|c| !same_grant(c, s)));
    let base = match newer {
        Some(s) if usable(&s) => {
            return Ok(RefreshOutcome {
                token: s,
                adopted: true,
                save_error: None,
                unusable: None,
            });
        }
        Some(s) => Some(s),
        None => current.cloned(),
    };
    let token = refresh(base.as_ref())?;
    let save_error = store.save(&token).err();
    Ok(RefreshOutcome {
        token,
        adopted: false,
        save_error,
        unusable: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokengate_testserver::support::PATIENCE;

    use crate::store::MemoryStore;

    fn fresh(name: &str) -> Token {
        Token::new(name)
            .with_refresh_token(format!("{name}-r"))
            .with_expires_in(Duration::from_secs(3600))
    }

    #[test]
    fn refresh_locked_adopts_a_newer_usable_token_without_refreshing() {
        let store = MemoryStore::new();
        store.save(&fresh("theirs")).unwrap();
        let mine = fresh("mine");
        let got = refresh_locked(
            &store,
            Some(&mine),
            true,
            PATIENCE,
            |_| true,
            |_| panic!("must not refresh"),
        )
        .unwrap();
        assert!(got.adopted);
        assert_eq!(got.token.access_token().secret(), "theirs");
    }

    #[test]
    fn refresh_locked_refreshes_from_the_stored_token_when_it_is_not_usable() {
        let store = MemoryStore::new();
        store.save(&fresh("theirs")).unwrap();
        let got = refresh_locked(
            &store,
            Some(&fresh("mine")),
            true,
            PATIENCE,
            |_| false,
            |base| {
                // The stored refresh token is the newest in the rotation chain.
                assert_eq!(base.unwrap().refresh_token().unwrap().secret(), "theirs-r");
                Ok(fresh("next"))
            },
        )
        .unwrap();
        assert!(!got.adopted);
        assert_eq!(
            store.load().unwrap().unwrap().access_token().secret(),
            "next",
            "saved inside the section"
        );
    }

    #[test]
    fn refresh_locked_refreshes_and_saves_when_the_store_holds_our_token() {
        let store = MemoryStore::new();
        let mine = fresh("mine");
        store.save(&mine).unwrap();
        let got = refresh_locked(
            &store,
            Some(&mine),
            true,
            PATIENCE,
            |_| true,
            |base| {
                assert_eq!(base.unwrap().access_token().secret(), "mine");
                Ok(fresh("next"))
            },
        )
        .unwrap();
        assert!(!got.adopted && got.save_error.is_none());
        assert_eq!(
            store.load().unwrap().unwrap().access_token().secret(),
            "next"
        );
    }

    #[test]
    fn refresh_locked_maps_a_lock_timeout_and_saves_nothing_on_failure() {
        let store = MemoryStore::new();
        let held = store.lock(PATIENCE).unwrap();
        let e = refresh_locked(
            &store,
            None,
            false,
            Duration::from_millis(10),
            |_| true,
            |_| panic!("must not refresh without the lock"),
        )
        .err()
        .unwrap();
        assert!(matches!(e, Error::RefreshTimeout(_)), "{e:?}");
        drop(held);
        let e = refresh_locked(
            &store,
            Some(&fresh("mine")),
            false,
            PATIENCE,
            |_| true,
            |_| Err(Error::Refresh(RefreshError::transient("down"))),
        )
        .err()
        .unwrap();
        assert!(matches!(e, Error::Refresh(_)));
        assert!(store.load().unwrap().is_none());
        // The section was left: the lock can be taken again at once.
        drop(store.lock(Duration::ZERO).unwrap());
    }

    #[test]
    fn refresh_locked_takes_an_emptied_store_for_a_logout_elsewhere() {
        let store = MemoryStore::new();
        let mine = fresh("mine");
        // The store held our token (we loaded or saved it), and someone cleared it: no refresh.
        let e = refresh_locked(
            &store,
            Some(&mine),
            true,
            PATIENCE,
            |_| true,
            |_| panic!("a logged-out session must not be refreshed"),
        )
        .err()
        .unwrap();
        let cause = e.refresh_error().expect("a refresh error");
        assert!(e.is_login_required(), "{e:?}");
        assert_eq!(cause.kind(), RefreshErrorKind::LoggedOut);
        // A token the store never held (given to the builder, or its save failed) refreshes and is
        // saved as before.
        let got = refresh_locked(
            &store,
            Some(&mine),
            false,
            PATIENCE,
            |_| true,
            |_| Ok(fresh("next")),
        )
        .unwrap();
        assert!(!got.adopted);
        assert!(store.load().unwrap().is_some());
    }
}
