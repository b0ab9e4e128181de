//! Request bodies streamed from a reader: a one-shot stream is not replayed after a rejection (the
//! gate still learns of it), a seekable one is rewound and replayed; a 50 MiB upload goes through
//! without being buffered (its memory is measured by the bench, not here).

use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::sync::Arc;

use parking_lot::Mutex;
use tokengate::{Client, Token};
use tokengate_testserver::{FNV_START, RawReply, RawServer, TestServer, fnv1a};

use crate::support::*;

/// The size of the large upload.
const LARGE: u64 = 50 * 1024 * 1024;

fn body_len(resp: tokengate::http::Response<tokengate::ureq::Body>) -> u64 {
    let v: serde_json::Value = resp.into_body().read_json().unwrap();
    v["body_len"].as_u64().unwrap()
}

#[test]
fn a_one_shot_stream_is_not_replayed_but_the_gate_learns_of_the_rejection() {
    let server = TestServer::start();
    let client = builder(&server, login(&server)).build().unwrap();
    server.revoke_all();
    let resp = client
        .post("/upload")
        .send_reader(io::repeat(b'a').take(100_000))
        .unwrap();
    assert_eq!(resp.status(), 401, "the rejection is returned");
    assert_eq!(server.counters().api_calls, 1, "not replayed");
    // The gate marked the token dead: the next request refreshes first and is sent once.
    assert_eq!(get_status(&client, "/items"), 200);
    let c = server.counters();
    assert_eq!((c.refreshes, c.api_calls, c.api_rejected), (1, 2, 1));
}

#[test]
fn a_seekable_stream_is_rewound_to_where_it_stood_and_replayed() {
    let server = TestServer::start();
    let client = builder(&server, login(&server)).build().unwrap();
    server.revoke_all();
    let mut cursor = Cursor::new(vec![b'x'; 100_000]);
    cursor.seek(SeekFrom::Start(10)).unwrap();
    let resp = client.put("/upload").send_seekable(cursor).unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(body_len(resp), 99_990);
    let c = server.counters();
    assert_eq!((c.refreshes, c.api_calls, c.api_rejected), (1, 2, 1));
    // A file, the common case.
    let dir = temp_dir("tg-upload");
    let path = dir.path().join("data.bin");
    std::fs::write(&path, vec![7u8; 300_000]).unwrap();
    server.revoke_all();
    let resp = client
        .put("/upload")
        .send_seekable(std::fs::File::open(&path).unwrap())
        .unwrap();
    assert_eq!(body_len(resp), 300_000);
    assert_eq!(server.counters().refreshes, 2);
}

/// Bytes `i % 251`, `len` of them, made as they are read (block copies of one period).
struct Pattern {
    at: u64,
    len: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        const PERIOD: usize = 251;
        static BLOCK: [u8; 2 * PERIOD] = {
            let mut b = [0u8; 2 * PERIOD];
            let mut i = 0;
            while i < 2 * PERIOD {
                b[i] = (i % PERIOD) as u8;
                i += 1;
            }
            b
        };
        let n = buf
            .len()
            .min(usize::try_from(self.len - self.at).unwrap_or(usize::MAX));
        let mut done = 0;
        while done < n {
            let phase = ((self.at + done as u64) % PERIOD as u64) as usize;
            let take = (n - done).min(PERIOD);
            buf[done..done + take].copy_from_slice(&BLOCK[phase..phase + take]);
            done += take;
        }
        self.at += n as u64;
        Ok(n)
    }
}

#[test]
fn a_50_mib_stream_is_uploaded_whole() {
    let sink = RawServer::start(|req| {
        RawReply::json(
            200,
            &format!(
                r#"{{"body_len":{},"fnv":"{:x}","chunked":{}}}"#,
                req.body_len, req.body_fnv, req.chunked
            ),
        )
    });
    let client = Client::builder(sink.url())
        .token(Token::new("t"))
        .build()
        .unwrap();
    let resp = client
        .post("/upload")
        .send_reader(Pattern { at: 0, len: LARGE })
        .unwrap();
    let v: serde_json::Value = resp.into_body().read_json().unwrap();
    let mut want = FNV_START;
    let mut p = Pattern { at: 0, len: LARGE };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = p.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        want = fnv1a(want, &buf[..n]);
    }
    assert_eq!(v["body_len"], LARGE);
    assert_eq!(v["fnv"], format!("{want:x}"));
    assert_eq!(
        v["chunked"], true,
        "streamed, not sent with a length known up front"
    );
}

#[test]
fn a_307_is_followed_with_a_seekable_body_and_returned_with_a_one_shot_one() {
    let seen: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let log = Arc::clone(&seen);
    let api = RawServer::start(move |req| {
        log.lock().push((req.target.clone(), req.body_len));
        match req.target.as_str() {
            "/a" => RawReply::json(307, "{}").header("Location", "/b"),
            _ => RawReply::json(200, "{}"),
        }
    });
    let client = Client::builder(api.url())
        .token(Token::new("t"))
        .build()
        .unwrap();
    let resp = client
        .post("/a")
        .send_reader(io::repeat(b'z').take(5000))
        .unwrap();
    assert_eq!(resp.status(), 307);
    let resp = client
        .post("/a")
        .send_seekable(Cursor::new(vec![b'z'; 5000]))
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        *seen.lock(),
        [
            ("/a".to_owned(), 5000),
            ("/a".to_owned(), 5000),
            ("/b".to_owned(), 5000)
        ]
    );
}
