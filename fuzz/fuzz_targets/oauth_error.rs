//! `OAuthError::parse` (RFC 6749 §5.2) on arbitrary bytes: no panic; a parsed error has the `error`
//! string the body carried.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokengate::OAuthError;

fuzz_target!(|data: &[u8]| {
    if let Some(e) = OAuthError::parse(data) {
        let value: serde_json::Value = serde_json::from_slice(data).expect("parsed, so it is JSON");
        assert_eq!(value["error"].as_str(), Some(e.error()));
        let _ = (e.is_permanent(), format!("{e:?}"));
    }
});
