//! Integration tests: tokengate against the real loopback OAuth2 + API server of `tokengate-testserver`.
//!
//! One binary (faster to link on CI's two cores); each module covers one area of behaviour.

mod ahead;
mod challenges;
mod children;
mod concurrency;
mod connections;
mod deadlines;
mod failures;
mod faults;
mod file_store;
#[cfg(feature = "keyring")]
mod keyring_store;
mod login;
mod middleware;
mod network;
mod outages;
mod redirects;
#[cfg(feature = "redis")]
mod redis_store;
mod refreshers;
mod security;
mod sessions;
mod store;
mod streaming;
mod support;
