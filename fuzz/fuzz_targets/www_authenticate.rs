//! `Challenge::parse_all` / `Challenge::bearer` (`WWW-Authenticate`, RFC 9110 §11.6.1, RFC 6750 §3)
//! on arbitrary header values: no panic, every challenge has a scheme, and `bearer` finds the first
//! `Bearer` challenge that `parse_all` found.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokengate::Challenge;

fuzz_target!(|data: &[u8]| {
    // Header values reach the parser through `HeaderValue::to_str`, so only valid UTF-8 (in fact
    // visible ASCII) arrives there; lossy conversion still lets the fuzzer explore any byte pattern.
    let header = String::from_utf8_lossy(data);
    let all = Challenge::parse_all(&header);
    for c in &all {
        assert!(!c.scheme().is_empty());
        let _ = (c.error(), c.wants_new_token(), c.param("realm"), format!("{c:?}"));
    }
    let first_bearer = all.iter().find(|c| c.scheme().eq_ignore_ascii_case("bearer"));
    assert_eq!(Challenge::bearer(&header).as_ref(), first_bearer);
});
