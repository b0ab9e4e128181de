//! The `tokengate` binary as a process against the real loopback OAuth2 server of
//! `tokengate-testserver` (and, for the stores, a real redis-server and Secret Service), each test
//! in homes of its own. What the server counted is what is asserted.

mod concurrency;
mod everyday;
#[cfg(feature = "keyring")]
mod keyring;
mod login;
#[cfg(feature = "redis")]
mod redis;
mod support;
