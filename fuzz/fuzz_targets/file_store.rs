//! The `FileStore` loader (`FileStore::decode`, which `FileStore::load` runs on the file's bytes) on
//! arbitrary bytes: no panic; a token it accepts can be sent in a header and survives an
//! `encode` / `decode` round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokengate::FileStore;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = FileStore::decode(data) else {
        return;
    };
    assert!(token.authorization().is_some());
    let _ = (token.lifetime(), token.remaining(), token.is_expired(), format!("{token:?}"));
    let text = FileStore::encode(&token);
    let again = FileStore::decode(text.as_bytes()).expect("what encode writes, decode reads");
    assert_eq!(again.access_token().secret(), token.access_token().secret());
    assert_eq!(again.token_type(), token.token_type());
    assert_eq!(
        again.refresh_token().map(|r| r.secret().to_owned()),
        token.refresh_token().map(|r| r.secret().to_owned())
    );
    assert_eq!(again.scope(), token.scope());
    assert_eq!(again.expires_at_wall().is_some(), token.expires_at_wall().is_some());
});
