//! `Retry-After` parsing (RFC 9110 §10.2.3) on arbitrary text and clocks: no panic, no overflow
//! (an HTTP-date with an absurd year once overflowed), delay-seconds read exactly, and a date never
//! further away than the end of year 9999.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;

/// 9999-12-31T23:59:60Z, in seconds since the Unix epoch: no IMF-fixdate is later.
const END_OF_9999: u64 = 253_402_300_800;

fuzz_target!(|input: (u64, &str)| {
    let (secs, value) = input;
    let now = UNIX_EPOCH + Duration::from_secs(secs % END_OF_9999);
    let Some(delay) = tokengate::__fuzz::retry_after(value, now) else {
        return;
    };
    match value.trim().parse::<u64>() {
        Ok(n) => assert_eq!(delay, Duration::from_secs(n)),
        Err(_) => assert!(delay.as_secs() <= END_OF_9999),
    }
});
