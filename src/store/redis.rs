//! [`RedisStore`]: the token in Redis, shared by every process on every machine that uses the same
//! key prefix, with the refresh coordinated by a lease (feature `redis`).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use redis::{
    ClientTlsConfig, Connection, ConnectionAddr, IntoConnectionInfo, RedisError, RedisResult,
    Script, TlsCertificates,
};
use serde_json::Value;

use crate::error::{Error, StoreError, StoreErrorKind};
use crate::net::Network;
use crate::store::{FileStore, StoreLock, TokenStore};
use crate::token::Token;

const DEFAULT_PREFIX: &str = "tokengate:";
const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest lease accepted: the holder extends it every third of its length.
const MIN_LEASE_TTL: Duration = Duration::from_millis(100);
/// Longest pause between two attempts to take a lease another process holds.
const LEASE_POLL_MAX: Duration = Duration::from_millis(25);
/// How long a save keeps retrying on new connections when Redis drops or refuses them.
const SAVE_RETRY_FOR: Duration = Duration::from_secs(1);
/// Idle connections kept for reuse (the refreshing thread and the lease extender use one each).
const POOL_MAX: usize = 4;

/// `revision(value)`: the `revision` field of a stored token, 0 for none stored, -1 for a value
/// that is not a token of ours. Prepended to every script that needs it.
const LUA_REVISION: &str = r"
local function revision(value)
  if not value then return 0 end
  local ok, doc = pcall(cjson.decode, value)
  if ok and type(doc) == 'table' and type(doc['revision']) == 'number' then
    return doc['revision']
  end
  return -1
end
";

/// KEYS: lease, token. ARGV: owner, ttl in ms. Takes the lease (`SET lease owner NX PX ttl`), or
/// renews it when this owner already holds it (a retry after a lost reply). Returns the stored
/// token's revision, or -2 when another owner holds the lease.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_REVISION}
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -2 end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return revision(redis.call('GET', KEYS[2]))"
    ))
});

/// KEYS: token, lease, corrupt. ARGV: owner, expected revision, new value. The fenced save:
/// refused (-2) while another owner holds the lease, refused (-3) when the stored revision is not
/// the expected one (another process saved since), except that a value identical to the new one
/// means an earlier attempt of this save landed (0). An unusable stored value is copied to the
/// corrupt key first. Returns 1 when saved.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_REVISION}
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return -2 end
local current = redis.call('GET', KEYS[1])
local rev = revision(current)
if rev ~= tonumber(ARGV[2]) then
  if current == ARGV[3] then return 0 end
  return -3
end
if rev == -1 then redis.call('SET', KEYS[3], current) end
redis.call('SET', KEYS[1], ARGV[3])
return 1"
    ))
});

/// KEYS: token, lease. ARGV: owner. The fenced clear: refused (-2) while another owner holds the
/// lease; otherwise deletes the token (1).
static CLEAR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return -2 end
redis.call('DEL', KEYS[1])
return 1",
    )
});

/// KEYS: lease. ARGV: owner, ttl in ms. Extends the lease if this owner still holds it (1), else 0.
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0",
    )
});

/// KEYS: lease. ARGV: owner. Compare-and-delete: releases the lease only if this owner holds it.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0",
    )
});

/// A store in Redis, for a fleet: every process on every machine that uses the same Redis and key
/// prefix shares one token and refreshes it once per expiry, whichever process gets there first.
/// `Debug` shows the URL without its password.
///
/// # How it works
///
/// - **The token** is one string value, `<prefix>token`: the [`FileStore`] JSON with one more
///   field, `revision`, which every save increments.
/// - **The exclusive section** is a lease, `<prefix>lease`: [`lock`](TokenStore::lock) takes it
///   with `SET <prefix>lease <owner> NX PX <ttl>` under a random owner id, polling (at most every
///   25 ms) while another process holds it. A thread of the holder extends it every third of the
///   TTL for as long as the section lasts, so a slow refresh keeps it; dropping the [`StoreLock`]
///   stops that thread and releases the lease with a compare-and-delete script, so a process only
///   ever deletes its own lease.
/// - **Fencing**: every save inside a lease goes through a script that compares the stored
///   revision with the one the holder read. A holder whose lease expired (it was paused, or lost
///   Redis long enough for the lease to run out) can never overwrite a token that another process
///   saved meanwhile: its save fails with [`StoreErrorKind::LeaseLost`] and the newer token stays.
///   If nobody saved meanwhile, the late save goes through, so a slow holder does not lose the
///   refresh token it has just been given.
/// - **Dropped connections**: every call that finds its pooled connection broken is retried once
///   on a new one (every script is safe to run twice); a save keeps retrying on new connections for
///   up to a second. A save that still fails is kept by the store and written at the start of its
///   next lease, provided no other process has saved in between.
/// - **Connections**: plain `redis://`, `redis+unix://`, or TLS with `rediss://`: rustls, the
///   same TLS stack and crypto as the HTTP client, with the TLS settings of a [`Network`] given
///   to [`network`](RedisStoreBuilder::network) (see [TLS](#tls) below). A user name and password
///   in the URL authenticate with `AUTH` (Redis 6 ACL users included), inside the TLS connection
///   with `rediss://`; a database number selects the database.
///
/// Nothing is sent to Redis until the first load, save or lock. Give each application (each
/// session) its own [`key_prefix`](RedisStoreBuilder::key_prefix).
///
/// # Example: a worker fleet
///
/// Every worker, on every machine, runs the same code. The session is seeded once (e.g. by an
/// operator's login), then the workers share it: one refresh per expiry for the whole fleet, and a
/// rotated refresh token is in Redis before any other worker looks.
///
/// ```no_run
/// use tokengate::{Client, OAuth2, RedisStore, Token, TokenStore};
///
/// let store = RedisStore::builder("redis://worker:s3cret@redis.internal:6379/0")
///     .key_prefix("billing-sync:")
///     .build()?;
/// # let login = Token::new("ACCESS").with_refresh_token("REFRESH");
/// store.save(&login)?; // once, after the operator's login
///
/// // in every worker:
/// let client = Client::builder("https://api.example.com")
///     .store(store.clone())
///     .refresher(OAuth2::refresh_token("https://auth.example.com/oauth/token").client_id("sync"))
///     .build()?;
/// let invoices = client.get("/invoices").call()?;
/// # Ok::<_, tokengate::Error>(())
/// ```
///
/// # TLS
///
/// A `rediss://` store checks the server's certificate against the same trust anchors as the
/// HTTP client, from the TLS settings of a [`Network`] (by default [`Network::new`]'s: the
/// operating system's trust store):
///
/// - [`Roots`](crate::Roots): [`Platform`](crate::Roots::Platform) is the operating system's
///   store read as a list of certificates when the store is built (on Linux and the BSDs the same
///   certificates its verifier reads; on macOS and Windows, the certificates it exports),
///   [`WebPki`](crate::Roots::WebPki) the bundled Mozilla roots,
///   [`AddedOnly`](crate::Roots::AddedOnly) only the added CA certificates;
/// - CA certificates added with [`add_root_certificates_pem`](Network::add_root_certificates_pem)
///   (or `_file`) are trusted as well, e.g. the private CA of a company's Redis;
/// - a client certificate from [`client_certificate_pem`](Network::client_certificate_pem) (or
///   `_files`) is presented to a Redis that wants one (`tls-auth-clients yes`).
///
/// Proxies and [`configure_agent`](Network::configure_agent) are for HTTP and do not apply to
/// Redis. A TLS failure when connecting (a certificate not trusted or not for the host, a
/// client certificate refused or missing) is a [`StoreErrorKind::Tls`] error, a configuration
/// failure ([`StoreError::is_configuration`]) that is not retried as a transient one. Its message
/// names the server without the password of the URL.
///
/// ```no_run
/// use tokengate::{Network, RedisStore};
///
/// let store = RedisStore::builder("rediss://worker:s3cret@redis.internal:6380/0")
///     .key_prefix("billing-sync:")
///     .network(Network::new()
///         .add_root_certificates_pem_file("/etc/redis/tls/ca.crt")
///         .client_certificate_pem_files("/etc/worker/redis.crt", "/etc/worker/redis.key"))
///     .build()?;
/// # Ok::<_, tokengate::Error>(())
/// ```
///
/// # Failure modes
///
/// | what happens | what callers see | what Redis holds afterwards |
/// |---|---|---|
/// | Redis down (or wrong address) when the client is built without a token | `build()` fails with [`Error::Store`], kind [`Unavailable`](StoreErrorKind::Unavailable) (transient): nothing to start from | nothing |
/// | Redis down while the token is still valid | requests go on with the valid token. The refresh fails with [`Error::Store`] (kind `Unavailable`, reported as [`Event::RefreshFailed`](crate::Event::RefreshFailed)) and the gate retries it with a backoff, as after any transient failure; once the token has expired, a request waits (within `refresh_timeout`) for Redis to come back and then fails with that error. No refresh is ever made without the lease | the last saved token |
/// | a lease holder dies mid-refresh | other processes wait until its lease expires (at most the TTL, 10 s by default), then one of them takes the lease and refreshes. If the dead holder's refresh had already reached the token endpoint, the rotated refresh token it was given is lost with it and the next refresh presents a spent one: the server answers `invalid_grant` ([`Error::LoginRequired`]). That window is unavoidable (the server's answer exists only in the dying process); it is kept to the time between the token endpoint's answer and the save, which follows at once | the token from before that refresh |
/// | a refresh that outlives the lease TTL | the holder's thread extends the lease every TTL/3, so nobody else starts a refresh. If it cannot (Redis unreachable, or the process was paused), the lease expires; when another process has saved since, the late save is refused ([`StoreErrorKind::LeaseLost`], counted in [`Stats::store_errors`](crate::Stats::store_errors), [`Event::StoreFailed`](crate::Event::StoreFailed)) and the slow process goes on with its token in memory | the newer token, never overwritten |
/// | the connection drops during a save | nothing: the save is retried on a new connection (for up to a second) | the new token |
/// | Redis unreachable for longer during a save | the refreshed token is used (the request succeeds); [`Event::StoreFailed`](crate::Event::StoreFailed) with kind `Unavailable`. The store saves it at the start of its next lease unless another process saved first; until then other processes see the previous token, and one that must refresh in that time presents a spent refresh token | the previous token until that next lease |
/// | the server's certificate is not trusted, or the client certificate is refused | [`Error::Store`] with kind [`Tls`](StoreErrorKind::Tls) (a configuration failure, not transient): from `build()` when the client starts without a token, else from the refresh ([`Event::RefreshFailed`](crate::Event::RefreshFailed)), which the gate tries again only after its longest backoff. Nothing is sent before the handshake, neither the password nor a command | unchanged |
/// | Redis restarted | as while it is down; pooled connections are replaced on the next call. A Redis that lost its data (no persistence, an eviction, a `FLUSHALL`) looks like a logout ([`Gate::logout`](crate::Gate::logout) clears the key): a process that had loaded or saved the session there fails its next refresh with [`Error::LoginRequired`] ([`RefreshErrorKind::LoggedOut`](crate::RefreshErrorKind::LoggedOut)) rather than save its own copy back, so the session must be seeded again. Run Redis with persistence (`appendonly yes`) and without eviction of these keys | what it persisted |
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    /// The URL with its password replaced, for Debug and messages.
    shown: String,
    token_key: String,
    lease_key: String,
    corrupt_key: String,
    lease_ttl: Duration,
    timeout: Duration,
    pool: Mutex<Vec<Connection>>,
    /// The lease this store holds right now, and the thread that holds it.
    held: Mutex<Option<Held>>,
    /// A save that could not reach Redis, written at the start of the next lease.
    pending: Mutex<Option<Pending>>,
}

#[derive(Clone)]
struct Held {
    owner: Arc<str>,
    thread: ThreadId,
    /// The stored revision this holder read (when it took the lease, or loaded since).
    revision: i64,
}

struct Pending {
    value: String,
    /// The stored revision the token was refreshed from.
    base: i64,
}

/// Builds a [`RedisStore`]. See [`RedisStore::builder`].
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    lease_ttl: Duration,
    timeout: Duration,
    network: Option<Network>,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("lease_ttl", &self.lease_ttl)
            .field("timeout", &self.timeout)
            .field("network", &self.network)
            .finish()
    }
}

impl RedisStoreBuilder {
    /// Sets the prefix of the two keys the store uses, `<prefix>token` and `<prefix>lease` (and
    /// `<prefix>token.corrupt`, where an unusable value is kept when a save replaces it). Use one
    /// prefix per application and session. Defaults to `"tokengate:"`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets how long a lease lasts without being extended: how long the other processes wait
    /// before they take over from a holder that died. The holder extends it every third of this
    /// while its refresh runs. Values under 100 ms are raised to 100 ms. Defaults to 10 seconds.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(MIN_LEASE_TTL);
        self
    }

    /// Sets the connect, read and write timeout of each call to Redis. Defaults to 5 seconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the TLS settings of a `rediss://` connection: the trusted certificate authorities and
    /// the client certificate, as for the HTTP client (see [TLS](RedisStore#tls)); the same
    /// [`Network`] can be given to both. Its proxies and agent options do not apply to Redis.
    /// Only for a `rediss://` URL: with another URL, [`build`](RedisStoreBuilder::build) fails
    /// rather than connect without the TLS that was asked for. Defaults to [`Network::new`] for
    /// a `rediss://` URL: the operating system's trust store, no client certificate.
    pub fn network(mut self, network: Network) -> Self {
        self.network = Some(network);
        self
    }

    /// Builds the store: reads and checks the URL and, for `rediss://`, the TLS settings (files
    /// are read now). Does not connect: Redis is first asked on the first load, save or lock.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the URL is not a usable Redis URL (`redis://`, `rediss://`,
    /// `redis+unix://`); for `rediss://`, when the TLS settings cannot be used (a certificate or
    /// key file that cannot be read or is not PEM, a key that does not fit its certificate,
    /// [`Roots::AddedOnly`](crate::Roots::AddedOnly) without added certificates, an operating
    /// system trust store without certificates, [`TlsBackend::NativeTls`](crate::TlsBackend),
    /// or the URL's `#insecure`, which would turn certificate checks off); and when a
    /// [`network`](RedisStoreBuilder::network) was given for a URL without TLS. The message
    /// shows the URL without its password.
    pub fn build(self) -> Result<RedisStore, Error> {
        let shown = redact_url(&self.url);
        // The redis crate's messages may quote the URL: only their class is shown.
        let unusable = |e: RedisError| {
            Error::config(format!("{shown}: not a usable Redis URL ({:?})", e.kind()))
        };
        let info = self.url.as_str().into_connection_info().map_err(unusable)?;
        let client = match info.addr() {
            ConnectionAddr::TcpTls { insecure: true, .. } => {
                return Err(Error::config(format!(
                    "{shown}: `#insecure` would turn off the checks of the server's certificate; \
                     trust its CA with Network::add_root_certificates_pem instead"
                )));
            }
            ConnectionAddr::TcpTls { .. } => {
                let tls = self
                    .network
                    .unwrap_or_default()
                    .tls()
                    .resolve_pem(&format!("the Redis store {shown}"))?;
                let certificates = TlsCertificates {
                    client_tls: tls
                        .identity
                        .map(|(client_cert, client_key)| ClientTlsConfig {
                            client_cert,
                            client_key,
                        }),
                    root_cert: Some(tls.roots),
                };
                redis::Client::build_with_tls(info, certificates).map_err(unusable)?
            }
            _ if self.network.is_some() => {
                return Err(Error::config(format!(
                    "{shown}: TLS settings (RedisStoreBuilder::network) were given for a \
                     connection without TLS; use a rediss:// URL"
                )));
            }
            _ => redis::Client::open(info).map_err(unusable)?,
        };
        let prefix = self.prefix;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                shown,
                token_key: format!("{prefix}token"),
                lease_key: format!("{prefix}lease"),
                corrupt_key: format!("{prefix}token.corrupt"),
                lease_ttl: self.lease_ttl,
                timeout: self.timeout,
                pool: Mutex::new(Vec::new()),
                held: Mutex::new(None),
                pending: Mutex::new(None),
            }),
        })
    }
}

impl RedisStore {
    /// A builder for a store at `url`: `redis://[user:password@]host[:port][/db]`,
    /// `rediss://…` for TLS, or `redis+unix:///path/to/socket`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.into(),
            lease_ttl: DEFAULT_LEASE_TTL,
            timeout: DEFAULT_TIMEOUT,
            network: None,
        }
    }

    /// A store at `url` with the default settings; see [`RedisStore::builder`].
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::build`].
    pub fn new(url: impl Into<String>) -> Result<RedisStore, Error> {
        RedisStore::builder(url).build()
    }

    /// The key that holds the token.
    pub fn token_key(&self) -> &str {
        &self.inner.token_key
    }

    /// The key that holds the lease.
    pub fn lease_key(&self) -> &str {
        &self.inner.lease_key
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.shown)
            .field("token_key", &self.inner.token_key)
            .field("lease_ttl", &self.inner.lease_ttl)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn connect(&self) -> Result<Connection, StoreError> {
        let con = self
            .client
            .get_connection_with_timeout(self.timeout)
            .map_err(|e| self.error("cannot connect to", e))?;
        con.set_read_timeout(Some(self.timeout))
            .and_then(|()| con.set_write_timeout(Some(self.timeout)))
            .map_err(|e| self.error("cannot set the timeouts of the connection to", e))?;
        Ok(con)
    }

    /// Runs `f` on a pooled connection, or a new one. When a pooled connection turns out to be
    /// broken (Redis restarted, an idle connection dropped), `f` runs once more on a new one; every
    /// script here is safe to run twice.
    fn call<T>(
        &self,
        what: &str,
        f: impl Fn(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        let pooled = self.pool.lock().pop();
        let reused = pooled.is_some();
        let mut con = match pooled {
            Some(con) => con,
            None => self.connect()?,
        };
        let mut result = f(&mut con);
        if reused && result.as_ref().is_err_and(is_connection_error) {
            con = self.connect()?;
            result = f(&mut con);
        }
        match result {
            Ok(v) => {
                self.put_back(con);
                Ok(v)
            }
            Err(e) => {
                if !is_connection_error(&e) {
                    self.put_back(con);
                }
                Err(self.error(what, e))
            }
        }
    }

    fn put_back(&self, con: Connection) {
        let mut pool = self.pool.lock();
        if pool.len() < POOL_MAX {
            pool.push(con);
        }
    }

    /// Our error for a failed Redis call: the kind from the cause, a message naming the server
    /// (never its password), the cause as the source.
    fn error(&self, what: &str, e: RedisError) -> StoreError {
        if is_tls_failure(&e) {
            return StoreError::new(
                StoreErrorKind::Tls,
                format!(
                    "{what} Redis at {}: TLS failed (a server certificate this store does not \
                     trust, or a client certificate the server refused)",
                    self.shown
                ),
            )
            .with_source(e);
        }
        let kind = match (e.kind(), e.code()) {
            (redis::ErrorKind::AuthenticationFailed, _)
            | (redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm), _)
            | (_, Some("WRONGPASS" | "NOAUTH" | "NOPERM")) => StoreErrorKind::Denied,
            (
                redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError)
                | redis::ErrorKind::Extension,
                _,
            ) => StoreErrorKind::Custom,
            _ => StoreErrorKind::Unavailable,
        };
        StoreError::new(kind, format!("{what} Redis at {}", self.shown)).with_source(e)
    }

    /// The lease this thread holds on this store, if any.
    fn held_here(&self) -> Option<Held> {
        self.held
            .lock()
            .clone()
            .filter(|h| h.thread == thread::current().id())
    }

    /// The fenced save (see [`SAVE`]) of `value`, expected to replace revision `expected`.
    fn save_fenced(&self, owner: &str, expected: i64, value: &str) -> Result<i64, StoreError> {
        let retry_until = Instant::now() + SAVE_RETRY_FOR;
        let mut pause = Duration::from_millis(25);
        loop {
            let outcome = self.call("cannot save the token to", |con| {
                SAVE.key(&self.token_key)
                    .key(&self.lease_key)
                    .key(&self.corrupt_key)
                    .arg(owner)
                    .arg(expected)
                    .arg(value)
                    .invoke::<i64>(con)
            });
            return match outcome {
                Ok(0 | 1) => Ok(expected.max(0) + 1),
                Ok(-2) => Err(StoreError::new(
                    StoreErrorKind::LeaseLost,
                    format!(
                        "not saved: the lease on {} expired and another process holds it now",
                        self.lease_key
                    ),
                )),
                Ok(_) => Err(StoreError::new(
                    StoreErrorKind::LeaseLost,
                    format!(
                        "not saved: another process saved a newer token to {} after this one's lease expired",
                        self.token_key
                    ),
                )),
                Err(e) if e.kind() == StoreErrorKind::Unavailable => {
                    let now = Instant::now();
                    if now < retry_until {
                        thread::sleep(pause.min(retry_until - now));
                        pause *= 2;
                        continue;
                    }
                    Err(e)
                }
                Err(e) => Err(e),
            };
        }
    }

    /// Saves inside the lease `held` holds, keeping the save for the next lease if Redis cannot be
    /// reached.
    fn save_in_lease(&self, held: &Held, token: &Token) -> Result<(), StoreError> {
        let value = encode(token, held.revision.max(0) + 1);
        match self.save_fenced(&held.owner, held.revision, &value) {
            Ok(revision) => {
                *self.pending.lock() = None;
                if let Some(h) = self.held.lock().as_mut().filter(|h| h.owner == held.owner) {
                    h.revision = revision;
                }
                Ok(())
            }
            Err(e) => {
                if e.kind() == StoreErrorKind::Unavailable {
                    *self.pending.lock() = Some(Pending {
                        value,
                        base: held.revision,
                    });
                }
                Err(e)
            }
        }
    }

    /// Takes the lease, waiting at most `timeout`. Returns the owner id and the stored revision.
    fn acquire(&self, timeout: Duration) -> Result<(Arc<str>, i64), StoreError> {
        let owner: Arc<str> = Arc::from(new_owner_id());
        let ttl_ms = u64::try_from(self.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            let revision = self.call("cannot take the lease on", |con| {
                ACQUIRE
                    .key(&self.lease_key)
                    .key(&self.token_key)
                    .arg(&*owner)
                    .arg(ttl_ms)
                    .invoke::<i64>(con)
            })?;
            if revision != -2 {
                return Ok((owner, revision));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::new(
                    StoreErrorKind::LockTimeout,
                    format!(
                        "another process held the lease {} for more than {timeout:?}",
                        self.lease_key
                    ),
                ));
            }
            thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(LEASE_POLL_MAX);
        }
    }

    /// Writes a save that failed earlier, if nobody has saved since it was made.
    fn flush_pending(&self, owner: &str, revision: i64) -> i64 {
        let Some(pending) = self.pending.lock().take() else {
            return revision;
        };
        if pending.base != revision {
            // Another process saved since: its token is the newer one.
            return revision;
        }
        match self.save_fenced(owner, revision, &pending.value) {
            Ok(new) => new,
            Err(e) => {
                if e.kind() == StoreErrorKind::Unavailable {
                    *self.pending.lock() = Some(pending);
                }
                revision
            }
        }
    }
}

impl TokenStore for RedisStore {
    /// Reads `<prefix>token`. `Ok(None)` when the key does not exist.
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::Unavailable`] when Redis cannot be reached, [`StoreErrorKind::Denied`]
    /// when it refuses the credentials or the command, and the [`FileStore::decode`] kinds for a
    /// value that is not a token.
    fn load(&self) -> Result<Option<Token>, StoreError> {
        let inner = &*self.inner;
        let value: Option<Vec<u8>> = inner.call("cannot read the token from", |con| {
            redis::cmd("GET").arg(&inner.token_key).query(con)
        })?;
        let Some(value) = value else {
            return Ok(None);
        };
        let token = FileStore::decode(&value).map_err(|e| {
            StoreError::new(
                e.kind(),
                format!("key {}: {}", inner.token_key, e.message()),
            )
        })?;
        if let Some(held) = inner.held_here() {
            let revision = revision_of(&value);
            if let Some(h) = inner.held.lock().as_mut().filter(|h| h.owner == held.owner) {
                h.revision = revision;
            }
        }
        Ok(Some(token))
    }

    /// Writes `<prefix>token` with the next revision. Inside a [`lock`](TokenStore::lock) held by
    /// this thread, through the fenced save; otherwise the save takes the lease itself first
    /// (waiting up to three lease TTLs), so it never races a refresh in progress elsewhere.
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::LeaseLost`] when the fence refused the save (the newer stored token was
    /// kept), [`StoreErrorKind::LockTimeout`] when the lease could not be taken, and the kinds of
    /// [`load`](TokenStore::load).
    fn save(&self, token: &Token) -> Result<(), StoreError> {
        if let Some(held) = self.inner.held_here() {
            return self.inner.save_in_lease(&held, token);
        }
        let _lease = self.lock(self.inner.lease_ttl * 3)?;
        let held = self
            .inner
            .held_here()
            .expect("the lease just taken is held by this thread");
        self.inner.save_in_lease(&held, token)
    }

    /// Deletes `<prefix>token`, and forgets a save still waiting for Redis. Inside a
    /// [`lock`](TokenStore::lock) held by this thread, fenced like a save; otherwise it takes the
    /// lease itself first (waiting up to three lease TTLs).
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::LeaseLost`] when another process holds the lease this thread's lease
    /// expired into, [`StoreErrorKind::LockTimeout`] when the lease could not be taken, and the
    /// kinds of [`load`](TokenStore::load).
    fn clear(&self) -> Result<(), StoreError> {
        let _lease = match self.inner.held_here() {
            Some(_) => None,
            None => Some(self.lock(self.inner.lease_ttl * 3)?),
        };
        let inner = &self.inner;
        let held = inner.held_here().expect("the lease is held by this thread");
        let outcome = inner.call("cannot remove the token from", |con| {
            CLEAR
                .key(&inner.token_key)
                .key(&inner.lease_key)
                .arg(&*held.owner)
                .invoke::<i64>(con)
        })?;
        if outcome != 1 {
            return Err(StoreError::new(
                StoreErrorKind::LeaseLost,
                format!(
                    "not removed: the lease on {} expired and another process holds it now",
                    inner.lease_key
                ),
            ));
        }
        *inner.pending.lock() = None;
        if let Some(h) = inner.held.lock().as_mut().filter(|h| h.owner == held.owner) {
            h.revision = 0;
        }
        Ok(())
    }

    /// Takes the lease `<prefix>lease` (see [`RedisStore`]), polling at most every 25 ms until
    /// `timeout`, and starts the thread that extends it. A save that failed in an earlier lease
    /// is written first, if no other process has saved since.
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::LockTimeout`] when another process held the lease until `timeout`;
    /// [`StoreErrorKind::Unavailable`] or [`StoreErrorKind::Denied`] when Redis cannot be used.
    fn lock(&self, timeout: Duration) -> Result<StoreLock<'_>, StoreError> {
        let inner = &self.inner;
        let (owner, revision) = inner.acquire(timeout)?;
        let revision = inner.flush_pending(&owner, revision);
        *inner.held.lock() = Some(Held {
            owner: Arc::clone(&owner),
            thread: thread::current().id(),
            revision,
        });
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let extender = {
            let inner = Arc::clone(inner);
            let owner = Arc::clone(&owner);
            thread::Builder::new()
                .name("tokengate-lease".into())
                .spawn(move || extend_until_stopped(&inner, &owner, &stopped))
                .ok()
        };
        Ok(StoreLock::new(Lease {
            inner,
            owner,
            stop: Some(stop),
            extender,
        }))
    }
}

/// Extends the lease every third of its TTL until the [`Lease`] is dropped or the lease is lost.
fn extend_until_stopped(inner: &Inner, owner: &str, stopped: &crossbeam_channel::Receiver<()>) {
    let every = inner.lease_ttl / 3;
    let ttl_ms = u64::try_from(inner.lease_ttl.as_millis()).unwrap_or(u64::MAX);
    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
        let extended = inner.call("cannot extend the lease on", |con| {
            EXTEND
                .key(&inner.lease_key)
                .arg(owner)
                .arg(ttl_ms)
                .invoke::<i64>(con)
        });
        if let Ok(0) = extended {
            // Lost: the fence decides whether this holder's save may still go through.
            return;
        }
        // An error: Redis cannot be reached right now. Nobody else can take the lease from an
        // unreachable Redis either; keep trying.
    }
}

/// A held lease; dropping it stops the extender and releases the lease (compare-and-delete).
struct Lease<'a> {
    inner: &'a Arc<Inner>,
    owner: Arc<str>,
    stop: Option<crossbeam_channel::Sender<()>>,
    extender: Option<JoinHandle<()>>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(extender) = self.extender.take() {
            let _ = extender.join();
        }
        {
            let mut held = self.inner.held.lock();
            if held.as_ref().is_some_and(|h| h.owner == self.owner) {
                *held = None;
            }
        }
        // If Redis cannot be reached, the lease expires by itself.
        let _ = self.inner.call("cannot release the lease on", |con| {
            RELEASE
                .key(&self.inner.lease_key)
                .arg(&*self.owner)
                .invoke::<i64>(con)
        });
    }
}

/// Whether `e` is a TLS failure: a certificate not trusted or not for this host, a client
/// certificate refused or missing, a broken handshake. rustls's error is wrapped in the
/// `io::Error` of the TLS stream, which the redis crate keeps behind an `Arc`.
fn is_tls_failure(e: &RedisError) -> bool {
    type Shared = Arc<dyn std::error::Error + Send + Sync>;
    fn is_tls(c: &(dyn std::error::Error + 'static)) -> bool {
        if c.is::<rustls::Error>() || c.is::<rustls::pki_types::InvalidDnsNameError>() {
            return true;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io.get_ref().is_some_and(|inner| is_tls(inner));
        }
        c.downcast_ref::<Shared>()
            .is_some_and(|shared| is_tls(&**shared))
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if is_tls(c) {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Whether the connection that gave `e` is unusable (and a new one may work).
fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

/// The token as the FileStore JSON with its `revision`.
fn encode(token: &Token, revision: i64) -> String {
    let mut doc: serde_json::Map<String, Value> = serde_json::from_str(&FileStore::encode(token))
        .expect("FileStore::encode writes a JSON object");
    doc.insert("revision".into(), revision.into());
    Value::Object(doc).to_string()
}

/// The `revision` of a stored value (as the scripts read it).
fn revision_of(value: &[u8]) -> i64 {
    match serde_json::from_slice::<Value>(value) {
        Ok(Value::Object(doc)) => doc.get("revision").and_then(Value::as_i64).unwrap_or(0),
        _ => -1,
    }
}

/// A lease owner id: the process id and 128 random bits.
fn new_owner_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = |salt: u64| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u64(COUNTER.fetch_add(1, Relaxed));
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    };
    format!(
        "{}-{:016x}{:016x}",
        std::process::id(),
        random(1),
        random(2)
    )
}

/// `url` with the password (if any) replaced by `***`.
fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let hidden = match rest[..at].split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => rest[..at].to_owned(),
    };
    format!("{}{hidden}@{}", &url[..scheme_end], &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            ("redis://:pw@h:1/2", "redis://:***@h:1/2"),
            ("redis://user:pw@h:1", "redis://user:***@h:1"),
            ("rediss://u:p@ss:w@h/0", "rediss://u:***@h/0"),
            ("redis://user@h", "redis://user@h"),
            (
                "redis+unix:///run/redis.sock",
                "redis+unix:///run/redis.sock",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let store = RedisStore::new("redis://user:hunter2@127.0.0.1:1/0").unwrap();
        assert!(!format!("{store:?}").contains("hunter2"));
        let e = RedisStore::new("http://user:hunter2@127.0.0.1/").unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e}");
    }

    #[test]
    fn the_stored_value_is_the_file_format_with_a_revision() {
        let token = Token::new("A")
            .with_refresh_token("R")
            .with_expires_in(Duration::from_secs(60));
        let value = encode(&token, 7);
        assert_eq!(revision_of(value.as_bytes()), 7);
        let back = FileStore::decode(value.as_bytes()).unwrap();
        assert_eq!(back.access_token().secret(), "A");
        assert_eq!(back.refresh_token().unwrap().secret(), "R");
        assert_eq!(revision_of(b"{ not json"), -1);
        assert_eq!(revision_of(br#"{"version":1,"access_token":"x"}"#), 0);
    }

    #[test]
    fn owner_ids_differ() {
        let a = new_owner_id();
        let b = new_owner_id();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("{}-", std::process::id())));
    }
}
