//! `tokengate token`: a fresh access token on stdout, and nothing else.

use std::io::Write;

use crate::exit::Failure;
use crate::session::Session;

pub fn run(session: &Session) -> Result<(), Failure> {
    // The client's API origin is never called: `token` only takes a lease on the gate.
    let client = session.client(session.token_endpoint()?)?;
    let lease = client.gate().lease();
    // Before anything else can fail or the process end: a refresh started ahead of expiry on
    // another thread must be saved, or a rotated refresh token would be lost.
    client.close();
    let lease = lease?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", lease.token().access_token().secret())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::transient(format!("cannot write the token to stdout: {e}")))
}
