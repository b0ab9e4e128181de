//! The examples in `ffi/examples/`, run against the loopback test server.
//!
//! `c/threads.c` is compiled with the system C compiler against the static library cargo built for
//! this test; the server must see exactly one refresh per expiry and every request answered. The
//! same program then runs under valgrind's memcheck with its default leak check, as a C user's CI
//! would, and so does `tests/c/refresh_fails.c` (a refresh that cannot connect). Without valgrind
//! (or python3) those runs are skipped with a note, unless `TOKENGATE_REQUIRE_C_TOOLS` is set, as
//! CI sets it: then a missing tool fails the test. `python/smoke.py` loads the shared library with
//! ctypes.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tokengate_testserver::TestServer;

/// Upper bound on the compiler and the program. Reaching it fails the test (the child is killed).
const PATIENCE: Duration = Duration::from_secs(120);

/// The system libraries Rust's standard library needs when linked statically on Linux, from
/// `cargo rustc -p tokengate-ffi --crate-type staticlib -- --print native-static-libs`.
const NATIVE_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// `target/<profile>`: the test executable lives in its `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let deps = exe.parent().expect("the test executable is in a directory");
    deps.parent().unwrap_or(deps).to_path_buf()
}

/// The newest `file` (e.g. `libtokengate_ffi.a`) cargo built for this profile: it builds every
/// crate type of the library, staticlib and cdylib included, before it runs this test.
fn library(file: &str) -> PathBuf {
    let dir = profile_dir();
    [dir.join("deps"), dir.clone()]
        .into_iter()
        .map(|d| d.join(file))
        .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("no {file} under {}", dir.display()))
}

/// Waits for `child` at most PATIENCE, killing it when it takes longer.
fn wait_bounded(mut child: std::process::Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("can poll the child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {PATIENCE:?}; killed");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Compiles `source` (relative to the crate) against the static library into `name`.
fn compile(source: &str, name: &str) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = profile_dir().join("c-example");
    fs::create_dir_all(&out_dir).expect("can create the output directory");
    // Test processes may compile at the same time (nextest): each writes its own file and
    // renames it into place.
    let tmp = out_dir.join(format!("{name}.{}", std::process::id()));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let child = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1", "-I"])
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join(source))
        .arg(library("libtokengate_ffi.a"))
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&tmp)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}"));
    assert!(
        wait_bounded(child, "the C compiler").success(),
        "{source} does not compile"
    );
    let exe = out_dir.join(name);
    fs::rename(&tmp, &exe).expect("can move the executable into place");
    exe
}

/// Compiles the example once per test process and returns the executable.
fn example() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| compile("examples/c/threads.c", "threads"))
}

/// valgrind's memcheck with its default leak check (definite and possible leaks are errors), as
/// a C user's CI runs it.
const MEMCHECK: &[&str] = &[
    "valgrind",
    "--tool=memcheck",
    "--leak-check=full",
    "--error-exitcode=99",
];

/// Checks a memcheck report: no errors, and nothing definitely or possibly lost.
fn assert_memcheck_clean(stderr: &str) {
    for line in stderr
        .lines()
        .filter(|l| l.contains("SUMMARY") || l.contains("lost:"))
    {
        eprintln!("{line}");
    }
    assert!(
        stderr.contains("ERROR SUMMARY: 0 errors"),
        "memcheck found errors:\n{stderr}"
    );
    let lost = |kind: &str| stderr.contains(&format!("{kind} lost: 0 bytes"));
    assert!(
        stderr.contains("All heap blocks were freed") || (lost("definitely") && lost("possibly")),
        "memcheck found leaks:\n{stderr}"
    );
}

/// One run's parameters and what the program and the server reported.
struct Run {
    threads: u64,
    rounds: u64,
    requests: u64,
    lifetime_secs: u64,
}

impl Run {
    /// Runs the example (under `wrapper`, e.g. valgrind, when given) against a fresh server and
    /// checks one refresh per round and every request answered. Returns the program's stderr.
    fn check(&self, wrapper: &[&str], name: &str) -> String {
        // The program sleeps out `lifetime_secs` before each round, so refreshed tokens must live
        // that long for the next round to find them expired. With one round nothing follows: an
        // hour's token keeps the new token's refresh windows shut however slowly the round runs.
        let issued_lifetime = if self.rounds == 1 {
            3600
        } else {
            self.lifetime_secs
        };
        let server = TestServer::builder()
            .token_lifetime(Duration::from_secs(issued_lifetime))
            .start();
        let login = server.issue_token();
        let logs = profile_dir().join("c-example");
        let (out_path, err_path) = (
            logs.join(format!("{name}.{}.out", std::process::id())),
            logs.join(format!("{name}.{}.err", std::process::id())),
        );
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(example());
                c
            }
            None => Command::new(example()),
        };
        let child = command
            .arg(format!("{}/api", server.url()))
            .arg(server.token_url())
            .arg(&login.access_token)
            .arg(&login.refresh_token)
            .arg(self.lifetime_secs.to_string())
            .arg(self.threads.to_string())
            .arg(self.rounds.to_string())
            .arg(self.requests.to_string())
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).expect("can create the stdout file"))
            .stderr(File::create(&err_path).expect("can create the stderr file"))
            .spawn()
            .expect("can start the C example");
        let status = wait_bounded(child, "the C example");
        let stdout = fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = fs::read_to_string(&err_path).unwrap_or_default();
        let _ = (fs::remove_file(&out_path), fs::remove_file(&err_path));
        assert!(
            status.success(),
            "the C example failed ({status}):\n{stdout}\n{stderr}"
        );

        let total = self.threads * self.rounds * self.requests;
        let result = stdout
            .lines()
            .find(|l| l.starts_with("RESULT "))
            .unwrap_or_else(|| panic!("no RESULT line in:\n{stdout}\n{stderr}"));
        let expected = format!(
            "RESULT ok={total} failed=0 refreshes={} waits=",
            self.rounds
        );
        assert!(
            result.starts_with(&expected),
            "{result}\n(expected {expected}...)\n{stderr}"
        );
        assert!(result.ends_with(" login_required=0"), "{result}");

        let seen = server.counters();
        assert_eq!(
            seen.refreshes, self.rounds,
            "one refresh per expiry: {seen:?}"
        );
        assert_eq!(seen.refresh_attempts, self.rounds, "{seen:?}");
        assert_eq!(seen.max_concurrent_refreshes, 1, "{seen:?}");
        assert_eq!(
            (seen.invalid_grant, seen.reuse_detected),
            (0, 0),
            "{seen:?}"
        );
        assert_eq!(seen.api_ok, total, "every request answered: {seen:?}");
        assert_eq!(seen.api_calls, total, "no request sent twice: {seen:?}");
        assert_eq!(seen.api_without_auth, 0, "{seen:?}");
        stderr
    }
}

#[test]
fn c_threads_share_one_client_with_one_refresh_per_expiry() {
    Run {
        threads: 8,
        rounds: 3,
        requests: 4,
        lifetime_secs: 1,
    }
    .check(&[], "plain");
}

#[test]
fn c_example_is_clean_under_valgrind() {
    if !installed("valgrind") {
        return;
    }
    // Few threads, one round: memcheck runs the program some 20-50 times slower.
    let stderr = Run {
        threads: 3,
        rounds: 1,
        requests: 2,
        lifetime_secs: 2,
    }
    .check(MEMCHECK, "valgrind");
    assert_memcheck_clean(&stderr);
}

#[test]
fn a_refresh_that_cannot_connect_leaves_nothing_behind_under_valgrind() {
    if !installed("valgrind") {
        return;
    }
    let exe = compile("tests/c/refresh_fails.c", "refresh_fails");
    let server = TestServer::start();
    let logs = profile_dir().join("c-example");
    let err_path = logs.join(format!("refresh_fails.{}.err", std::process::id()));
    let child = Command::new(MEMCHECK[0])
        .args(&MEMCHECK[1..])
        .arg(&exe)
        .arg(format!("{}/api", server.url()))
        .arg(tokengate_testserver::closed_port_url())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&err_path).expect("can create the stderr file"))
        .spawn()
        .expect("can start valgrind");
    let status = wait_bounded(child, "refresh_fails under valgrind");
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    let _ = fs::remove_file(&err_path);
    assert!(
        status.success(),
        "refresh_fails failed ({status}):\n{stderr}"
    );
    assert_memcheck_clean(&stderr);
    let seen = server.counters();
    assert_eq!(
        (seen.api_calls, seen.api_rejected),
        (1, 1),
        "the stale token was sent once and rejected: {seen:?}"
    );
}

/// Whether `program --version` runs. When it does not, the caller skips its test with a note,
/// unless `TOKENGATE_REQUIRE_C_TOOLS` is set (CI): then the test fails.
fn installed(program: &str) -> bool {
    let there = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !there {
        assert!(
            std::env::var_os("TOKENGATE_REQUIRE_C_TOOLS").is_none(),
            "{program} is not installed, and TOKENGATE_REQUIRE_C_TOOLS is set"
        );
        eprintln!("note: {program} is not installed; skipping");
    }
    there
}

#[test]
fn python_ctypes_smoke_starts_from_a_refresh_token_and_a_raising_callback_is_transient() {
    if !installed("python3") {
        return;
    }
    let server = TestServer::start();
    let login = server.issue_token();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/smoke.py");
    let logs = profile_dir().join("c-example");
    fs::create_dir_all(&logs).expect("can create the log directory");
    let out_path = logs.join(format!("python.{}.out", std::process::id()));
    let child = Command::new("python3")
        .arg(script)
        .arg(library(&format!(
            "{}tokengate_ffi{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        )))
        .arg(format!("{}/api", server.url()))
        .arg(server.token_url())
        .arg(&login.refresh_token)
        .arg("/py")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("can create the stdout file"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("can start python3");
    let status = wait_bounded(child, "the Python example");
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let _ = fs::remove_file(&out_path);
    assert!(
        status.success(),
        "the Python example failed ({status}):\n{stdout}"
    );
    for line in [
        "bad base URL: 105 invalid URL",
        "lower-case method: 2 method \"get\" is not an HTTP method in upper case",
        "raising callback: 101 transient=1",
        "status=200",
        r#""path":"/api/py""#,
        r#""body_len":17"#,
    ] {
        assert!(stdout.contains(line), "{line:?} not in:\n{stdout}");
    }
    assert!(
        !stdout.contains(&login.refresh_token),
        "a secret was printed"
    );

    // The raising callback's client never reached the API (no token: it failed transiently);
    // the OAuth2 client started from the refresh token alone: one refresh, nothing rejected.
    let seen = server.counters();
    assert_eq!(
        (
            seen.refreshes,
            seen.api_rejected,
            seen.api_ok,
            seen.api_calls
        ),
        (1, 0, 1, 1),
        "{seen:?}"
    );
}
