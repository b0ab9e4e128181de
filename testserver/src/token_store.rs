//! Issued tokens and their lifecycle: minting, expiry, refresh-token
//! rotation with reuse detection (RFC 9700 §4.14.2), revocation, and pruning
//! so long benchmarks keep memory bounded.
//!
//! Lock order: `refresh` before `access`, never the other way round.

use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A token pair minted by [`TestServer::issue_token`](crate::TestServer::issue_token),
/// as if the user had just logged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The bearer token the API accepts (until it expires or is revoked).
    pub access_token: String,
    /// The refresh token that starts a new token family.
    pub refresh_token: String,
    /// The lifetime in whole seconds, rounded up (what `expires_in` would say).
    pub expires_in: u64,
}

/// `expires_in` for a lifetime: whole seconds, rounded up.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

const ACCESS_PRUNE_FLOOR: usize = 10_000;
const REFRESH_PRUNE_FLOOR: usize = 100_000;

#[derive(Debug)]
struct AccessEntry {
    /// Refresh-token family, `None` for client-credentials tokens.
    family: Option<u64>,
    expires_at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshState {
    /// Can be exchanged.
    Active,
    /// Already exchanged (rotation on): presenting it again is reuse.
    Consumed,
    /// Its family was revoked after reuse.
    Revoked,
}

#[derive(Debug)]
struct RefreshEntry {
    family: u64,
    state: RefreshState,
    /// Scope originally granted, echoed when a refresh omits `scope`.
    scope: Option<String>,
}

#[derive(Debug)]
struct AccessMap {
    map: HashMap<String, AccessEntry>,
    prune_at: usize,
}

#[derive(Debug)]
struct RefreshMap {
    map: HashMap<String, RefreshEntry>,
    next_family: u64,
    prune_at: usize,
}

/// What a refresh attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RefreshOutcome {
    /// Exchanged: a new access token, the new refresh token when rotating,
    /// and the scope to report.
    Granted {
        access: String,
        refresh: Option<String>,
        scope: Option<String>,
    },
    /// Unknown, revoked, or rotated away with its family already revoked.
    Invalid,
    /// An already-consumed token was replayed: its family is now revoked.
    ReuseDetected,
}

/// All token state of one server.
#[derive(Debug)]
pub(crate) struct TokenStore {
    seeds: (RandomState, RandomState),
    serial: AtomicU64,
    access: RwLock<AccessMap>,
    refresh: Mutex<RefreshMap>,
    /// Access tokens are minted as JWTs carrying `exp` (see `TestServer::set_jwt_access_tokens`).
    jwt: AtomicBool,
}

impl TokenStore {
    pub fn new() -> Self {
        TokenStore {
            seeds: (RandomState::new(), RandomState::new()),
            serial: AtomicU64::new(1),
            access: RwLock::new(AccessMap {
                map: HashMap::new(),
                prune_at: ACCESS_PRUNE_FLOOR,
            }),
            refresh: Mutex::new(RefreshMap {
                map: HashMap::new(),
                next_family: 1,
                prune_at: REFRESH_PRUNE_FLOOR,
            }),
            jwt: AtomicBool::new(false),
        }
    }

    /// `prefix` + 32 keyed-hash hex digits + a serial: unpredictable without
    /// the per-server seed, and unique.
    fn new_token(&self, prefix: &str) -> String {
        let n = self.serial.fetch_add(1, Relaxed);
        let a = self.seeds.0.hash_one(n);
        let b = self.seeds.1.hash_one(n);
        format!("{prefix}{a:016x}{b:016x}{n:x}")
    }

    /// A unique, unpredictable value with `prefix` (codes of the login endpoints).
    pub fn new_value(&self, prefix: &str) -> String {
        self.new_token(prefix)
    }

    /// Mints access tokens as JWTs from now on (`true`), or opaque ones.
    pub fn set_jwt(&self, on: bool) {
        self.jwt.store(on, Relaxed);
    }

    fn mint_access(&self, family: Option<u64>, lifetime: Duration) -> String {
        let mut token = self.new_token("at-");
        if self.jwt.load(Relaxed) {
            // A compact JWS whose payload carries `exp`; the signature is not a real one (the
            // API looks the token up, as for opaque ones).
            let exp = SystemTime::now()
                .checked_add(lifetime)
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(u64::MAX, |d| d.as_secs());
            let claims = serde_json::json!({ "sub": "demo-user", "exp": exp, "jti": token });
            token = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(claims.to_string()),
                URL_SAFE_NO_PAD.encode(b"not-a-real-signature"),
            );
        }
        let now = Instant::now();
        let expires_at = now
            .checked_add(lifetime)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        let mut access = self.access.write();
        if access.map.len() >= access.prune_at {
            access.map.retain(|_, e| e.expires_at > now);
            access.prune_at = ACCESS_PRUNE_FLOOR.max(access.map.len() * 2);
        }
        access
            .map
            .insert(token.clone(), AccessEntry { family, expires_at });
        token
    }

    fn insert_refresh(
        &self,
        refresh: &mut RefreshMap,
        family: u64,
        scope: Option<String>,
    ) -> String {
        let token = self.new_token("rt-");
        if refresh.map.len() >= refresh.prune_at {
            // Forget spent tokens (losing reuse detection for very old ones).
            refresh.map.retain(|_, e| e.state == RefreshState::Active);
            refresh.prune_at = REFRESH_PRUNE_FLOOR.max(refresh.map.len() * 2);
        }
        refresh.map.insert(
            token.clone(),
            RefreshEntry {
                family,
                state: RefreshState::Active,
                scope,
            },
        );
        token
    }

    /// Starts a new token family: (access, refresh).
    pub fn issue_pair(&self, lifetime: Duration, scope: Option<String>) -> (String, String) {
        let mut refresh = self.refresh.lock();
        let family = refresh.next_family;
        refresh.next_family += 1;
        let rt = self.insert_refresh(&mut refresh, family, scope);
        let at = self.mint_access(Some(family), lifetime);
        (at, rt)
    }

    /// An access token without a refresh token (client credentials).
    pub fn issue_access_only(&self, lifetime: Duration) -> String {
        self.mint_access(None, lifetime)
    }

    /// Exchanges refresh token `presented`. With `rotate`, it is consumed and
    /// replaced; replaying a consumed token revokes its family.
    pub fn refresh(
        &self,
        presented: &str,
        rotate: bool,
        lifetime: Duration,
        requested_scope: Option<String>,
    ) -> RefreshOutcome {
        let mut refresh = self.refresh.lock();
        let Some(entry) = refresh.map.get_mut(presented) else {
            return RefreshOutcome::Invalid;
        };
        let family = entry.family;
        match entry.state {
            RefreshState::Revoked => RefreshOutcome::Invalid,
            RefreshState::Consumed => {
                for e in refresh.map.values_mut().filter(|e| e.family == family) {
                    e.state = RefreshState::Revoked;
                }
                self.access
                    .write()
                    .map
                    .retain(|_, e| e.family != Some(family));
                RefreshOutcome::ReuseDetected
            }
            RefreshState::Active => {
                let scope = requested_scope.or_else(|| entry.scope.clone());
                let new_refresh = if rotate {
                    entry.state = RefreshState::Consumed;
                    Some(self.insert_refresh(&mut refresh, family, scope.clone()))
                } else {
                    None
                };
                let access = self.mint_access(Some(family), lifetime);
                RefreshOutcome::Granted {
                    access,
                    refresh: new_refresh,
                    scope,
                }
            }
        }
    }

    /// Revokes `token` (RFC 7009 §2.1): a refresh token takes its whole family with it (every
    /// refresh token and access token of the grant, §2.1's SHOULD), an access token only itself.
    /// Returns whether the token was known (and not already revoked).
    pub fn revoke(&self, token: &str) -> bool {
        let mut refresh = self.refresh.lock();
        if let Some(entry) = refresh.map.get(token) {
            let family = entry.family;
            let was_live = entry.state != RefreshState::Revoked;
            for e in refresh.map.values_mut().filter(|e| e.family == family) {
                e.state = RefreshState::Revoked;
            }
            self.access
                .write()
                .map
                .retain(|_, e| e.family != Some(family));
            return was_live;
        }
        drop(refresh);
        self.access.write().map.remove(token).is_some()
    }

    /// Whether `refresh_token` can be exchanged (known, not consumed, not revoked).
    pub fn is_refresh_active(&self, refresh_token: &str) -> bool {
        self.refresh
            .lock()
            .map
            .get(refresh_token)
            .is_some_and(|e| e.state == RefreshState::Active)
    }

    /// Issued, not revoked and not expired.
    pub fn is_valid(&self, access_token: &str) -> bool {
        self.access
            .read()
            .map
            .get(access_token)
            .is_some_and(|e| e.expires_at > Instant::now())
    }

    /// Invalidates every access token issued so far.
    pub fn revoke_all_access(&self) {
        let mut access = self.access.write();
        access.map.clear();
        access.prune_at = ACCESS_PRUNE_FLOOR;
    }

    /// Invalidates every refresh token issued so far.
    pub fn revoke_all_refresh(&self) {
        let mut refresh = self.refresh.lock();
        refresh.map.clear();
        refresh.prune_at = REFRESH_PRUNE_FLOOR;
    }

    #[cfg(test)]
    fn sizes(&self) -> (usize, usize) {
        (self.access.read().map.len(), self.refresh.lock().map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn tokens_are_unique_and_long() {
        let s = TokenStore::new();
        let (a1, r1) = s.issue_pair(HOUR, None);
        let (a2, r2) = s.issue_pair(HOUR, None);
        assert!(a1.starts_with("at-") && r1.starts_with("rt-"));
        assert!(a1.len() >= 35);
        assert_ne!(a1, a2);
        assert_ne!(r1, r2);
        assert!(s.is_valid(&a1) && s.is_valid(&a2));
        assert!(!s.is_valid(&r1));
        assert_ne!(TokenStore::new().new_token("x"), s.new_token("x"));
    }

    #[test]
    fn rotation_and_reuse() {
        let s = TokenStore::new();
        let (a1, r1) = s.issue_pair(HOUR, Some("read".into()));
        let RefreshOutcome::Granted {
            access: a2,
            refresh: Some(r2),
            scope,
        } = s.refresh(&r1, true, HOUR, None)
        else {
            panic!("refresh failed")
        };
        assert_eq!(scope.as_deref(), Some("read"));
        assert!(s.is_valid(&a1) && s.is_valid(&a2));
        assert_eq!(
            s.refresh(&r1, true, HOUR, None),
            RefreshOutcome::ReuseDetected
        );
        assert!(!s.is_valid(&a1) && !s.is_valid(&a2));
        assert_eq!(s.refresh(&r2, true, HOUR, None), RefreshOutcome::Invalid);
        assert_eq!(
            s.refresh("rt-nope", true, HOUR, None),
            RefreshOutcome::Invalid
        );
    }

    #[test]
    fn revocation_takes_the_family() {
        let s = TokenStore::new();
        let (a1, r1) = s.issue_pair(HOUR, None);
        let RefreshOutcome::Granted {
            access: a2,
            refresh: Some(r2),
            ..
        } = s.refresh(&r1, true, HOUR, None)
        else {
            panic!("refresh failed")
        };
        let (other, _) = s.issue_pair(HOUR, None);
        assert!(s.revoke(&r2));
        assert!(!s.is_valid(&a1) && !s.is_valid(&a2));
        assert_eq!(s.refresh(&r2, true, HOUR, None), RefreshOutcome::Invalid);
        assert!(!s.revoke(&r2), "already revoked");
        assert!(s.is_valid(&other), "another grant is untouched");
        assert!(s.revoke(&other) && !s.is_valid(&other));
        assert!(!s.revoke("rt-unknown"));
    }

    #[test]
    fn jwt_access_tokens_carry_exp() {
        let s = TokenStore::new();
        s.set_jwt(true);
        let (a, _) = s.issue_pair(HOUR, None);
        let parts: Vec<&str> = a.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let exp = claims["exp"].as_u64().unwrap();
        assert!((now + 3590..=now + 3601).contains(&exp), "{exp} vs {now}");
        assert!(s.is_valid(&a));
    }

    #[test]
    fn no_rotation_keeps_token() {
        let s = TokenStore::new();
        let (_, r) = s.issue_pair(HOUR, None);
        for _ in 0..3 {
            assert!(matches!(
                s.refresh(&r, false, HOUR, None),
                RefreshOutcome::Granted { refresh: None, .. }
            ));
        }
        s.revoke_all_refresh();
        assert_eq!(s.refresh(&r, false, HOUR, None), RefreshOutcome::Invalid);
    }

    #[test]
    fn expiry_and_pruning() {
        let s = TokenStore::new();
        let short = s.issue_access_only(Duration::ZERO);
        assert!(!s.is_valid(&short));
        for _ in 0..ACCESS_PRUNE_FLOOR + 10 {
            s.issue_access_only(Duration::ZERO);
        }
        let (access, _) = s.sizes();
        assert!(
            access < ACCESS_PRUNE_FLOOR,
            "expired tokens were not pruned: {access}"
        );
        let keep = s.issue_access_only(HOUR);
        assert!(s.is_valid(&keep));
        s.revoke_all_access();
        assert!(!s.is_valid(&keep));
    }

    #[test]
    fn ceil() {
        assert_eq!(ceil_secs(Duration::from_millis(200)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }
}
