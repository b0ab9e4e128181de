//! The fast path of every request: obtaining a valid token and its `Authorization` header value.
//!
//! ```text
//! cargo bench -p tokengate-bench --bench fast_path
//! ```
//!
//! The full table (threads, allocations, loopback throughput against bare ureq, refresh storm, short
//! tokens, memory) is printed by `cargo run --release -p tokengate-bench --bin bench`.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tokengate::{Client, Gate, Token};

fn gate() -> Gate {
    Gate::builder()
        .token(Token::new("ACCESS").with_expires_in(Duration::from_secs(3600)))
        .build()
        .expect("a gate with a valid token builds")
}

fn fast_path(c: &mut Criterion) {
    let gate = gate();
    c.bench_function("lease", |b| {
        b.iter(|| black_box(gate.lease().expect("the token is fresh")))
    });
    c.bench_function("lease + header", |b| {
        b.iter(|| {
            let lease = gate.lease().expect("the token is fresh");
            black_box(lease.authorization().clone())
        })
    });
    c.bench_function("lease + header + confirm", |b| {
        b.iter(|| {
            let lease = gate.lease().expect("the token is fresh");
            let header = lease.authorization().clone();
            gate.confirm(&lease);
            black_box(header)
        })
    });
    let client = Client::builder("http://127.0.0.1:1/api")
        .gate(gate.clone())
        .build()
        .expect("the client builds");
    c.bench_function("Instant::now (for scale)", |b| {
        b.iter(|| black_box(std::time::Instant::now()))
    });
    c.bench_function("Client::clone", |b| b.iter(|| black_box(client.clone())));
}

criterion_group!(benches, fast_path);
criterion_main!(benches);
