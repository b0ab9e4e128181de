//! Store unit tests: the file format (no files; the file itself is tested against the real server in
//! `tests/integration/store.rs`) and the memory store's lock.

use std::path::Path;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::bounded;
use serde_json::Value;

use tokengate_testserver::support::PATIENCE;

use super::file::MAX_FILE;
use super::*;

fn decode_err(text: &str) -> StoreError {
    FileStore::decode(text.as_bytes()).expect_err(text)
}

#[test]
fn format_round_trips_every_field() {
    let token = Token::new("sekrit-access")
        .with_token_type("MAC")
        .with_expires_in(Duration::from_secs(3600))
        .with_refresh_token("sekrit-refresh")
        .with_scope("read write");
    let text = FileStore::encode(&token);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["lifetime_ms"], 3_600_000);
    let wall_ms = token
        .expires_at_wall()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert_eq!(doc["expires_at_unix_ms"], wall_ms);

    let back = FileStore::decode(text.as_bytes()).unwrap();
    assert_eq!(back.access_token().secret(), "sekrit-access");
    assert_eq!(back.token_type(), "MAC");
    assert_eq!(back.refresh_token().unwrap().secret(), "sekrit-refresh");
    assert_eq!(back.scope(), Some("read write"));
    assert_eq!(back.lifetime(), Some(Duration::from_secs(3600)));
    let left = back.remaining().unwrap();
    assert!(left > Duration::from_secs(3590) && left <= Duration::from_secs(3600));
}

#[test]
fn minimal_document_and_nulls_are_accepted() {
    let t = FileStore::decode(br#"{"version":1,"access_token":"a","refresh_token":null}"#).unwrap();
    assert_eq!(t.token_type(), "Bearer");
    assert!(t.expires_at().is_none() && t.refresh_token().is_none());
    // Unknown fields (from a later minor revision) are ignored.
    assert!(FileStore::decode(br#"{"version":1,"access_token":"a","new_field":[1]}"#).is_ok());
}

#[test]
fn token_that_expired_while_nobody_ran_is_expired() {
    let past = SystemTime::now() - Duration::from_secs(60);
    let ms = past.duration_since(UNIX_EPOCH).unwrap().as_millis();
    let text = format!(r#"{{"version":1,"access_token":"a","expires_at_unix_ms":{ms}}}"#);
    assert!(FileStore::decode(text.as_bytes()).unwrap().is_expired());
}

#[test]
fn bad_input_gets_a_kind_and_a_message_without_the_contents() {
    use StoreErrorKind::*;
    let cases: &[(&str, StoreErrorKind, &str)] = &[
        ("", Empty, "empty"),
        (" \n\t", Empty, "empty"),
        (
            r#"{"version":1,"access_token":"sekrit-trunc"#,
            Malformed,
            "cut short",
        ),
        ("sekrit garbage", Malformed, "not valid JSON"),
        ("[\"sekrit\"]", Malformed, "not a JSON object"),
        (r#"{"access_token":"sekrit"}"#, Malformed, "`version`"),
        (
            r#"{"version":"sekrit","access_token":"a"}"#,
            Malformed,
            "`version`",
        ),
        (
            r#"{"version":2,"access_token":"sekrit"}"#,
            UnsupportedVersion,
            "version 2",
        ),
        (r#"{"version":1}"#, Malformed, "`access_token`"),
        (
            r#"{"version":1,"access_token":""}"#,
            Malformed,
            "`access_token`",
        ),
        (
            r#"{"version":1,"access_token":7}"#,
            Malformed,
            "`access_token`",
        ),
        (
            r#"{"version":1,"access_token":"a","expires_at_unix_ms":"sekrit"}"#,
            Malformed,
            "`expires_at_unix_ms`",
        ),
        (
            r#"{"version":1,"access_token":"a","expires_at_unix_ms":-5}"#,
            Malformed,
            "`expires_at_unix_ms`",
        ),
        (
            r#"{"version":1,"access_token":"a","refresh_token":["sekrit"]}"#,
            Malformed,
            "`refresh_token`",
        ),
        (
            "{\"version\":1,\"access_token\":\"sekrit\\nx\"}",
            Malformed,
            "HTTP header",
        ),
    ];
    for (text, kind, says) in cases {
        let e = decode_err(text);
        assert_eq!(e.kind(), *kind, "{text}: {e}");
        let shown = format!("{e} {e:?}");
        assert!(shown.contains(says), "{text}: {shown}");
        assert!(!shown.contains("sekrit"), "{text}: {shown}");
        assert!(e.is_corrupt(), "{text}: bad content is corrupt, not I/O");
    }
    let e = FileStore::decode(&[0xff, 0xfe, 0x00, 0x01]).unwrap_err();
    assert_eq!(e.kind(), Malformed);
    let huge = vec![b' '; MAX_FILE as usize + 1];
    assert!(
        decode_err(std::str::from_utf8(&huge).unwrap())
            .to_string()
            .contains("larger")
    );
}

#[test]
fn file_store_debug_shows_only_the_path() {
    let s = FileStore::new("/tmp/x/token.json");
    assert_eq!(
        format!("{s:?}"),
        r#"FileStore { path: "/tmp/x/token.json" }"#
    );
    assert_eq!(s.lock_path(), Path::new("/tmp/x/token.json.lock"));
}

#[test]
fn memory_store_lock_is_exclusive_and_bounded() {
    let store = MemoryStore::new();
    let held = store.lock(PATIENCE).unwrap();
    let e = store.lock(Duration::from_millis(20)).unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::LockTimeout);
    let (tx, rx) = bounded(1);
    let other = store.clone();
    thread::spawn(move || {
        let got = other.lock(PATIENCE).map(drop);
        tx.send(got).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "entered while held"
    );
    drop(held);
    rx.recv_timeout(PATIENCE)
        .expect("the waiter was not woken")
        .unwrap();
}

fn fresh(name: &str) -> Token {
    Token::new(name)
        .with_refresh_token(format!("{name}-r"))
        .with_expires_in(Duration::from_secs(3600))
}

#[test]
fn clearing_a_memory_store_empties_it_and_old_stores_refuse() {
    let store = MemoryStore::new();
    store.save(&fresh("mine")).unwrap();
    store.clear().unwrap();
    assert!(store.load().unwrap().is_none());
    store.clear().unwrap();

    /// A store written before `clear` existed.
    struct Old;
    impl TokenStore for Old {
        fn load(&self) -> Result<Option<Token>, StoreError> {
            Ok(None)
        }
        fn save(&self, _: &Token) -> Result<(), StoreError> {
            Ok(())
        }
    }
    let e = Old.clear().unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Unsupported);
    assert!(e.is_configuration());
}
