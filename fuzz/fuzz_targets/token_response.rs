//! `TokenResponse::parse` (RFC 6749 §5.1) on arbitrary bytes, then `into_token`: no panic, and a
//! parsed response keeps the documented guarantees.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokengate::{RefreshErrorKind, RefreshToken, TokenResponse};

fuzz_target!(|data: &[u8]| {
    match TokenResponse::parse(data) {
        Ok(response) => {
            assert!(!response.access_token.is_empty());
            assert!(!response.token_type.is_empty());
            if let Some(lifetime) = response.expires_in {
                assert!(lifetime.as_secs_f64() <= 1e15);
            }
            let _ = format!("{response:?}");
            let previous = RefreshToken::new("previous");
            let token = response.into_token(Some(&previous));
            assert!(token.refresh_token().is_some());
            let _ = token.authorization();
            let _ = (token.lifetime(), token.remaining(), token.is_expired());
            let _ = format!("{token:?}");
        }
        Err(e) => {
            assert_eq!(e.kind(), RefreshErrorKind::InvalidResponse);
            assert!(e.is_transient());
            let _ = (e.to_string(), format!("{e:?}"), e.body_excerpt());
        }
    }
});
