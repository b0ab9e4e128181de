//! Connection reuse: how many idle keep-alive connections a client keeps, counted by the server.

use std::io;

use tokengate::Client;
use tokengate_testserver::TestServer;

use crate::support::{builder, login};

/// Holds `n` responses open at once (so `n` connections are in use), then reads each body to its end
/// (which hands its connection back to the client's pool), twice. Returns the connections the server
/// accepted in the first and in the second round.
fn connections_per_round(server: &TestServer, client: &Client, n: usize) -> (u64, u64) {
    let mut rounds = [0; 2];
    for accepted in &mut rounds {
        let before = server.counters().connections;
        let held: Vec<_> = (0..n)
            .map(|_| client.get("/items").call().expect("GET /api/items"))
            .collect();
        for resp in held {
            assert_eq!(resp.status(), 200);
            io::copy(&mut resp.into_body().into_reader(), &mut io::sink()).expect("read the body");
        }
        *accepted = server.counters().connections - before;
    }
    (rounds[0], rounds[1])
}

#[test]
fn by_default_three_idle_connections_are_kept() {
    let server = TestServer::start();
    let client = builder(&server, login(&server)).build().unwrap();
    // Six at once need six connections; three go back to the pool, so the next six open three.
    assert_eq!(connections_per_round(&server, &client, 6), (6, 3));
}

#[test]
fn max_idle_connections_per_host_keeps_that_many() {
    let server = TestServer::start();
    let client = builder(&server, login(&server))
        .max_idle_connections_per_host(6)
        .build()
        .unwrap();
    assert_eq!(connections_per_round(&server, &client, 6), (6, 0));
    assert_eq!(server.counters().api_ok, 12);
}
