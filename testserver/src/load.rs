//! Load from many threads and what it cost: the callers of outage tests and of the outage table
//! (`examples/outages.rs`), generic over what a call is, so this crate needs no client of its own.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// How one call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// A 2xx answer.
    Ok,
    /// An answer with another status (e.g. a rejection handed back).
    Status,
    /// An error instead of an answer.
    Error,
}

/// What one calling thread saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Calls that ended in [`Call::Ok`].
    pub ok: u64,
    /// Calls that ended in [`Call::Status`].
    pub status: u64,
    /// Calls that ended in [`Call::Error`].
    pub errors: u64,
    /// The longest single call.
    pub longest: Duration,
    /// CPU time (user + system) the thread used, from the kernel's accounting of it.
    pub cpu: Duration,
}

impl Seen {
    /// The sum over threads (`longest`: the longest of all).
    pub fn total(seen: &[Seen]) -> Seen {
        seen.iter().fold(Seen::default(), |a, s| Seen {
            ok: a.ok + s.ok,
            status: a.status + s.status,
            errors: a.errors + s.errors,
            longest: a.longest.max(s.longest),
            cpu: a.cpu + s.cpu,
        })
    }
}

/// Runs `call` without pause on `threads` threads, released together, until `run_for` has passed
/// (each loop also bounded by a million calls), and returns what each thread saw.
///
/// # Panics
///
/// If a thread has not finished 60 s after `run_for` (a hang), or panicked.
pub fn callers(
    threads: usize,
    run_for: Duration,
    call: impl Fn() -> Call + Send + Sync + 'static,
) -> Vec<Seen> {
    let call = Arc::new(call);
    let barrier = Arc::new(Barrier::new(threads));
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..threads {
        let (call, barrier, tx) = (Arc::clone(&call), Arc::clone(&barrier), tx.clone());
        std::thread::spawn(move || {
            barrier.wait();
            let until = Instant::now() + run_for;
            let cpu = thread_cpu();
            let mut seen = Seen::default();
            for _ in 0..1_000_000 {
                let started = Instant::now();
                if started >= until {
                    break;
                }
                match call() {
                    Call::Ok => seen.ok += 1,
                    Call::Status => seen.status += 1,
                    Call::Error => seen.errors += 1,
                }
                seen.longest = seen.longest.max(started.elapsed());
            }
            seen.cpu = thread_cpu().saturating_sub(cpu);
            let _ = tx.send((i, seen));
        });
    }
    let deadline = Instant::now() + run_for + Duration::from_secs(60);
    let mut out = vec![Seen::default(); threads];
    for _ in 0..threads {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, seen) = rx
            .recv_timeout(left)
            .expect("a calling thread hung (or panicked)");
        out[i] = seen;
    }
    out
}

/// CPU time (user + system) the calling thread has used: the kernel's per-thread accounting, the
/// counters `getrusage(RUSAGE_THREAD)` reports, read from `/proc/thread-self/stat` (Linux).
/// Zero where there is no such file.
pub fn thread_cpu() -> Duration {
    cpu_of("/proc/thread-self/stat")
}

/// CPU time (user + system) the whole process has used (`getrusage(RUSAGE_SELF)`'s counters, from
/// `/proc/self/stat`). Zero where there is no such file.
pub fn process_cpu() -> Duration {
    cpu_of("/proc/self/stat")
}

fn cpu_of(path: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return Duration::ZERO;
    };
    // The fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rfind(')').and_then(|i| stat.get(i + 2..)) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the name, in USER_HZ
    // (100 per second on every Linux platform Rust supports).
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
