//! Child processes standing in for other programs (or other machines) sharing a store: this test
//! binary run again with `TOKENGATE_TEST_CHILD` set, filtered to `store::child_process_entry_point`.
//! The parent passes everything in the environment and reads `KEY=value` lines from the child's
//! stdout. Every child is killed if it outlives its bound.

// Some helpers serve only the Redis or keyring tests, which are built with their features.
#![cfg_attr(not(all(feature = "redis", feature = "keyring")), allow(dead_code))]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Selects what a child process does (see `store::child_process_entry_point`).
pub const CHILD_MODE: &str = "TOKENGATE_TEST_CHILD";
pub const CHILD_URL: &str = "TOKENGATE_TEST_URL";
/// The store the child uses: `file:<path>`, `redis:<url> <prefix> <lease ms>` or
/// `keyring:<service> <account> <lock path>`.
pub const CHILD_STORE: &str = "TOKENGATE_TEST_STORE";
pub const CHILD_THREADS: &str = "TOKENGATE_TEST_THREADS";
/// Wall-clock end of the child's run, in Unix milliseconds.
pub const CHILD_UNTIL_MS: &str = "TOKENGATE_TEST_UNTIL_MS";

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A child about to be started: its mode, store and any extra environment.
pub struct ChildSpec {
    command: Command,
}

impl ChildSpec {
    pub fn new(mode: &str, store: &str) -> ChildSpec {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "store::child_process_entry_point",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_MODE, mode)
            .env(CHILD_STORE, store)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        ChildSpec { command }
    }

    /// The server the child calls.
    pub fn url(self, url: &str) -> ChildSpec {
        self.env(CHILD_URL, url)
    }

    /// Worker threads and the wall-clock end of their run.
    pub fn workers(self, threads: usize, until: SystemTime) -> ChildSpec {
        self.env(CHILD_THREADS, threads.to_string())
            .env(CHILD_UNTIL_MS, unix_ms(until).to_string())
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> ChildSpec {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> ChildSpec {
        self.command.env_remove(key);
        self
    }

    pub fn spawn(mut self) -> Child {
        self.command.spawn().expect("cannot start a child process")
    }
}

/// What a child reported: its `KEY=value` fields (from lines starting with `RESULT `).
#[derive(Debug, Default)]
pub struct ChildResult(pub BTreeMap<String, String>);

impl ChildResult {
    /// A numeric field (0 when missing).
    pub fn n(&self, key: &str) -> u64 {
        self.0.get(key).map_or(0, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{key}={v} is not a number"))
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// Waits for `child` until `deadline` (killing it and failing the test after that), requires a
/// successful exit and parses its `RESULT` lines.
pub fn finish(mut child: Child, deadline: Instant) -> ChildResult {
    loop {
        match child.try_wait().unwrap() {
            Some(status) => {
                let mut out = String::new();
                child
                    .stdout
                    .take()
                    .unwrap()
                    .read_to_string(&mut out)
                    .unwrap();
                assert!(status.success(), "child failed ({status}):\n{out}");
                let mut result = ChildResult::default();
                for line in out.lines() {
                    let Some(at) = line.find("RESULT ") else {
                        continue;
                    };
                    for field in line[at + "RESULT ".len()..].split_whitespace() {
                        let (k, v) = field.split_once('=').unwrap();
                        result.0.insert(k.to_owned(), v.to_owned());
                    }
                }
                assert!(!result.0.is_empty(), "no result line in:\n{out}");
                return result;
            }
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("a child process hung; killed it");
            }
            None => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Reads the child's stdout until a line equal to `line` (failing the test after `within`), on a
/// thread of its own so that a silent child cannot hang the test. Gives the stdout back.
pub fn wait_for_line(stdout: ChildStdout, line: &str, within: Duration) -> ChildStdout {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let wanted = line.to_owned();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = String::new();
        loop {
            buf.clear();
            match reader.read_line(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(_) if buf.trim_end().ends_with(&wanted) => {
                    let _ = tx.send(Some(reader.into_inner()));
                    return;
                }
                Ok(_) => {}
            }
        }
    });
    rx.recv_timeout(within)
        .unwrap_or_else(|_| panic!("the child did not print {line:?} in time"))
        .unwrap_or_else(|| panic!("the child ended without printing {line:?}"))
}

/// Kills the child if the test fails before it does.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
