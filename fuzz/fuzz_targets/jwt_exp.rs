//! The `exp` claim of a JWT access token (its base64url payload decoded by hand) on arbitrary text
//! and clocks: no panic, no overflow, and a lifetime is never zero nor more than the ten years a
//! token holds, and only a three-part (compact JWS) token has one.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;

/// Ten years, the longest lifetime a token holds.
const MAX_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fuzz_target!(|input: (u64, &str)| {
    let (secs, token) = input;
    // Any clock up to the year 9999.
    let now = UNIX_EPOCH + Duration::from_secs(secs % 253_402_300_800);
    if let Some(left) = tokengate::__fuzz::jwt_lifetime(token, now) {
        assert!(!left.is_zero() && left <= MAX_LIFETIME, "{left:?}");
        assert_eq!(token.split('.').count(), 3);
    }
});
