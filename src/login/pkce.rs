//! PKCE (RFC 7636) and the other random values of a browser login, on ring (already the crypto
//! provider of the TLS stack): `SystemRandom` for the bytes, SHA-256 for the `S256` challenge.

use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::LoginError;
use crate::form::base64url;

/// A PKCE pair: the secret verifier, kept by the client until the code is exchanged, and its
/// `S256` challenge, sent with the authorization request.
pub(crate) struct Pkce {
    pub(crate) verifier: String,
    pub(crate) challenge: String,
}

impl Pkce {
    /// A new pair: 32 random bytes as the verifier (43 base64url characters, RFC 7636 §4.1 and
    /// its recommendation), and `BASE64URL(SHA256(verifier))` as the challenge (§4.2).
    pub(crate) fn new() -> Result<Pkce, LoginError> {
        let verifier = random(32)?;
        Ok(Pkce {
            challenge: challenge(&verifier),
            verifier,
        })
    }
}

/// The `S256` challenge of `verifier` (RFC 7636 §4.2).
pub(crate) fn challenge(verifier: &str) -> String {
    base64url(digest(&SHA256, verifier.as_bytes()).as_ref())
}

/// `bytes` random bytes from the operating system, base64url-encoded: a verifier, or a `state`.
pub(crate) fn random(bytes: usize) -> Result<String, LoginError> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new().fill(&mut buf).map_err(|_| {
        LoginError::configuration("the operating system's random number generator failed")
    })?;
    Ok(base64url(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_43_unreserved_characters_and_differ() {
        let a = Pkce::new().unwrap();
        let b = Pkce::new().unwrap();
        assert_eq!(a.verifier.len(), 43);
        assert!(
            a.verifier
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(a.challenge, challenge(&a.verifier));
        assert_ne!(random(16).unwrap(), random(16).unwrap());
    }
}
