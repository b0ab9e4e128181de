//! Integration tests: tokengate against the real loopback OAuth2 + API server of `tokengate-testserver`.
//!
//! One binary (faster to link on CI's two cores); each module covers one area of behaviour.

mod ahead;
mod challenges;
mod concurrency;
mod connections;
mod failures;
mod faults;
mod middleware;
mod outages;
mod refreshers;
mod security;
mod store;
mod support;
