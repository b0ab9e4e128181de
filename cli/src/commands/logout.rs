//! `tokengate logout`: revoke the refresh token (RFC 7009) when the server has a revocation
//! endpoint, then clear the store. The profile stays.

use tokengate::TokenStore;

use crate::exit::Failure;
use crate::session::Session;

pub fn run(session: &Session) -> Result<(), Failure> {
    let Some(token_url) = session.profile.token_endpoint.clone() else {
        // Never logged in here: nothing to revoke, and the store is cleared all the same.
        session.open_store()?.clear()?;
        eprintln!("Not logged in: profile `{}`.", session.name);
        return Ok(());
    };
    let client = match session.client(&token_url) {
        Ok(client) => client,
        // A stored session that cannot be read back cannot be revoked either: it is cleared.
        Err(f) if f.exit == crate::exit::Exit::LoginRequired => {
            session.open_store()?.clear()?;
            eprintln!(
                "Logged out: profile `{}` (the stored session could not be read, so the server was not told).",
                session.name
            );
            return Ok(());
        }
        Err(f) => return Err(f),
    };
    let had_session = client.token().is_some();
    let result = client.logout();
    client.close();
    match result {
        Ok(()) if !had_session => eprintln!("Not logged in: profile `{}`.", session.name),
        Ok(()) if session.profile.revocation_endpoint.is_none() => eprintln!(
            "Logged out: profile `{}` (the server has no revocation endpoint: its refresh token stays valid there until it expires).",
            session.name
        ),
        Ok(()) => eprintln!(
            "Logged out: profile `{}`; the server revoked the session.",
            session.name
        ),
        Err(e) => {
            return Err(Failure::from(e).context(format_args!(
                "logged out here (profile `{}`), but the server could not be told",
                session.name
            )));
        }
    }
    Ok(())
}
