//! The library as C users get it: `ffi/install.sh` into a temporary prefix (its files, SONAME and
//! exported symbols), the example built through pkg-config (shared and static), and through the
//! CMake and Meson snippets of ffi/README.md; the header compiled as C89 and C++98; and a program
//! built against the current header run unchanged on a newer library (the `abi-probe` build).
//!
//! The programs run against the loopback test server, which counts what they did. A missing tool
//! (cc, pkg-config, cmake, meson, ninja, readelf, nm) skips its test with a note, unless
//! `TOKENGATE_REQUIRE_C_TOOLS` is set, as CI sets it: then it fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tokengate_testserver::TestServer;

/// Upper bound on one build step or program. Reaching it fails the test (the child is killed).
const PATIENCE: Duration = Duration::from_secs(300);

/// The crate's directory.
fn ffi_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>`: the test executable lives in its `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let deps = exe.parent().expect("the test executable is in a directory");
    deps.parent().unwrap_or(deps).to_path_buf()
}

/// A fresh directory under `target/<profile>/c-install`.
fn work_dir(name: &str) -> PathBuf {
    let dir = profile_dir().join("c-install").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("can create the work directory");
    dir
}

/// Runs `command` to its end (at most PATIENCE), returning its output; panics when it fails.
fn run(command: &mut Command, what: &str) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let deadline = Instant::now() + PATIENCE;
    // The pipes are read by threads so a chatty child cannot fill them and stall.
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let err = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("can poll the child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {PATIENCE:?}; killed");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Whether `program` can be run (`--version`). When it cannot, the test skips with a note, unless
/// `TOKENGATE_REQUIRE_C_TOOLS` is set: then it fails.
fn have(program: &str) -> bool {
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

/// One cargo build and copy at a time, across threads and test processes (a test runner may run
/// each test in a process of its own): the ABI probe rebuilds the library in the same target
/// directory.
static CARGO: Mutex<()> = Mutex::new(());

/// Runs `ffi/install.sh --debug` into `prefix` with `args`.
fn install(prefix: &Path, args: &[&str]) {
    let _one = CARGO.lock().unwrap_or_else(|e| e.into_inner());
    let dir = profile_dir().join("c-install");
    fs::create_dir_all(&dir).expect("can create the work directory");
    let lock = fs::File::create(dir.join(".build.lock")).expect("can create the build lock");
    lock.lock().expect("can take the build lock");
    run(
        Command::new("sh")
            .arg(ffi_dir().join("install.sh"))
            .arg("--prefix")
            .arg(prefix)
            .arg("--debug")
            .args(args),
        "ffi/install.sh",
    );
}

/// The prefix the library is installed into, once per test process.
fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let prefix = work_dir(&format!("prefix-{}", std::process::id()));
        install(&prefix, &[]);
        prefix
    })
}

fn version() -> String {
    let (major, minor, patch) = (
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
    );
    format!("{major}.{minor}.{patch}")
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `pkg-config ARGS tokengate` against the installed prefix.
fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = run(
        Command::new("pkg-config")
            .env("PKG_CONFIG_PATH", prefix().join("lib/pkgconfig"))
            .args(args)
            .arg("tokengate"),
        "pkg-config",
    );
    text(&out).split_whitespace().map(str::to_owned).collect()
}

/// Runs the threads example `exe` against a fresh server (2 threads, 2 rounds, 2 requests, 1 s
/// tokens) and checks one refresh per round and every request answered.
fn run_threads_example(exe: &Path, library_path: Option<&Path>) {
    let server = TestServer::builder()
        .token_lifetime(Duration::from_secs(1))
        .start();
    let login = server.issue_token();
    let mut command = Command::new(exe);
    if let Some(dir) = library_path {
        command.env("LD_LIBRARY_PATH", dir);
    }
    command
        .arg(format!("{}/api", server.url()))
        .arg(server.token_url())
        .arg(&login.access_token)
        .arg(&login.refresh_token)
        .args(["1", "2", "2", "2"]);
    let out = text(&run(&mut command, "the threads example"));
    assert!(out.contains(&format!("tokengate {}", version())), "{out}");
    assert!(
        out.contains("RESULT ok=8 failed=0 refreshes=2 "),
        "one refresh per round, every request answered:\n{out}"
    );
    let seen = server.counters();
    assert_eq!((seen.refreshes, seen.api_ok), (2, 8), "{seen:?}");
}

/// The dynamic section of an ELF file, as `readelf -d` prints it.
fn dynamic(file: &Path) -> String {
    text(&run(Command::new("readelf").arg("-d").arg(file), "readelf"))
}

#[test]
fn install_sh_lays_out_the_library_with_its_soname_and_exports_only_tokengate_symbols() {
    if !have("readelf") || !have("nm") {
        return;
    }
    let prefix = prefix();
    let lib = prefix.join("lib");
    let v = version();
    let real = lib.join(format!("libtokengate.so.{v}"));
    assert!(real.is_file(), "{real:?}");
    assert_eq!(
        fs::read_link(lib.join("libtokengate.so.0")).unwrap(),
        Path::new(&format!("libtokengate.so.{v}"))
    );
    assert_eq!(
        fs::read_link(lib.join("libtokengate.so")).unwrap(),
        Path::new("libtokengate.so.0")
    );
    assert!(lib.join("libtokengate.a").is_file());
    assert_eq!(
        fs::read(prefix.join("include/tokengate.h")).unwrap(),
        fs::read(ffi_dir().join("include/tokengate.h")).unwrap()
    );
    let pc = fs::read_to_string(lib.join("pkgconfig/tokengate.pc")).unwrap();
    assert!(pc.contains(&format!("Version: {v}")), "{pc}");
    assert!(pc.contains("Libs.private: -lgcc_s"), "{pc}");

    assert!(
        dynamic(&real).contains("Library soname: [libtokengate.so.0]"),
        "{}",
        dynamic(&real)
    );
    let symbols = text(&run(
        Command::new("nm").args(["-D", "--defined-only"]).arg(&real),
        "nm -D",
    ));
    let names: Vec<&str> = symbols
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(names.len() > 70, "{names:?}");
    let foreign: Vec<&&str> = names
        .iter()
        .filter(|n| !n.starts_with("tokengate_"))
        .collect();
    assert!(
        foreign.is_empty(),
        "exported beyond tokengate_*: {foreign:?}"
    );
    assert!(names.contains(&"tokengate_client_builder_build"));
}

#[test]
fn pkg_config_builds_the_example_against_the_shared_and_the_static_library() {
    if !have("pkg-config") || !have("cc") || !have("readelf") {
        return;
    }
    let dir = work_dir("pkg-config");
    let example = ffi_dir().join("examples/c/threads.c");
    let libdir = prefix().join("lib");

    // Shared: `pkg-config --cflags --libs tokengate`, found at run time through an rpath.
    let shared = dir.join("threads-shared");
    run(
        Command::new("cc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
            .arg(&example)
            .args(pkg_config(&["--cflags", "--libs"]))
            .arg(format!("-Wl,-rpath,{}", libdir.display()))
            .arg("-lpthread")
            .arg("-o")
            .arg(&shared),
        "cc (shared)",
    );
    assert!(
        dynamic(&shared).contains("[libtokengate.so.0]"),
        "linked by SONAME"
    );
    run_threads_example(&shared, None);

    // Static: the archive, and the system libraries of Libs.private (`--static`).
    let libs: Vec<String> = pkg_config(&["--static", "--libs-only-l"])
        .into_iter()
        .filter(|l| l != "-ltokengate")
        .collect();
    assert!(libs.contains(&"-ldl".to_owned()), "{libs:?}");
    let fixed = dir.join("threads-static");
    run(
        Command::new("cc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
            .arg(&example)
            .args(pkg_config(&["--cflags"]))
            .arg(libdir.join("libtokengate.a"))
            .args(&libs)
            .arg("-o")
            .arg(&fixed),
        "cc (static)",
    );
    assert!(
        !dynamic(&fixed).contains("libtokengate"),
        "no shared tokengate"
    );
    run_threads_example(&fixed, None);
}

/// The first fenced block of `language` in ffi/README.md.
fn readme_block(language: &str) -> String {
    let readme = fs::read_to_string(ffi_dir().join("README.md")).unwrap();
    let start = format!("```{language}\n");
    let from = readme
        .find(&start)
        .unwrap_or_else(|| panic!("no {language} block in ffi/README.md"))
        + start.len();
    let len = readme[from..].find("```").unwrap();
    readme[from..from + len].to_owned()
}

#[test]
fn the_cmake_snippet_of_the_readme_builds_the_example() {
    if !have("cmake") || !have("pkg-config") || !have("cc") {
        return;
    }
    let dir = work_dir("cmake");
    let (src, build) = (dir.join("src"), dir.join("build"));
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("CMakeLists.txt"), readme_block("cmake")).unwrap();
    fs::copy(
        ffi_dir().join("examples/c/threads.c"),
        src.join("threads.c"),
    )
    .unwrap();
    let pc = prefix().join("lib/pkgconfig");
    run(
        Command::new("cmake")
            .env("PKG_CONFIG_PATH", &pc)
            .arg("-S")
            .arg(&src)
            .arg("-B")
            .arg(&build),
        "cmake (configure)",
    );
    run(
        Command::new("cmake").arg("--build").arg(&build),
        "cmake --build",
    );
    run_threads_example(&build.join("threads"), Some(&prefix().join("lib")));
}

#[test]
fn the_meson_snippet_of_the_readme_builds_the_example() {
    if !have("meson") || !have("ninja") || !have("pkg-config") || !have("cc") {
        return;
    }
    let dir = work_dir("meson");
    let (src, build) = (dir.join("src"), dir.join("build"));
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("meson.build"), readme_block("meson")).unwrap();
    fs::copy(
        ffi_dir().join("examples/c/threads.c"),
        src.join("threads.c"),
    )
    .unwrap();
    run(
        Command::new("meson")
            .env("PKG_CONFIG_PATH", prefix().join("lib/pkgconfig"))
            .arg("setup")
            .arg(&build)
            .arg(&src),
        "meson setup",
    );
    run(Command::new("ninja").arg("-C").arg(&build), "ninja");
    run_threads_example(&build.join("threads"), Some(&prefix().join("lib")));
}

#[test]
fn the_header_compiles_as_c89_and_as_cxx98_and_the_readme_program_compiles() {
    if !have("gcc") || !have("g++") {
        return;
    }
    let dir = work_dir("c89");
    let source = ffi_dir().join("tests/c/c89.c");
    let include = ffi_dir().join("include");
    run(
        Command::new("gcc")
            .args([
                "-std=c89",
                "-pedantic",
                "-Werror",
                "-Wall",
                "-Wextra",
                "-c",
                "-I",
            ])
            .arg(&include)
            .arg(&source)
            .arg("-o")
            .arg(dir.join("c89.o")),
        "gcc -std=c89 -pedantic",
    );
    run(
        Command::new("g++")
            .args([
                "-std=c++98",
                "-pedantic",
                "-Werror",
                "-Wall",
                "-Wextra",
                "-x",
                "c++",
            ])
            .args(["-c", "-I"])
            .arg(&include)
            .arg(&source)
            .arg("-o")
            .arg(dir.join("cxx.o")),
        "g++ -std=c++98",
    );
    // The README's complete threaded program compiles as it stands.
    let readme_program = dir.join("readme.c");
    fs::write(&readme_program, readme_block("c")).unwrap();
    run(
        Command::new("gcc")
            .args([
                "-std=c11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
                "-I",
            ])
            .arg(&include)
            .arg(&readme_program),
        "gcc (the README's program)",
    );
    let header = fs::read_to_string(include.join("tokengate.h")).unwrap();
    assert!(
        !header
            .lines()
            .any(|l| l.contains("//") && !l.contains("://")),
        "`//` comments in the header"
    );
}

#[test]
fn a_program_built_against_this_header_runs_on_a_newer_library() {
    if !have("cc") {
        return;
    }
    let dir = work_dir(&format!("abi-{}", std::process::id()));
    let old = dir.join("old_program");
    let libdir = prefix().join("lib");
    run(
        Command::new("cc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(prefix().join("include"))
            .arg(ffi_dir().join("tests/c/old_program.c"))
            .arg("-L")
            .arg(&libdir)
            .args(["-ltokengate", "-lpthread", "-o"])
            .arg(&old),
        "cc old_program.c",
    );
    let run_on = |library: &Path| {
        let server = TestServer::start();
        let login = server.issue_token();
        let out = text(&run(
            Command::new(&old)
                .env("LD_LIBRARY_PATH", library)
                .arg(format!("{}/api", server.url()))
                .arg(server.token_url())
                .arg(&login.refresh_token),
            "old_program",
        ));
        let seen = server.counters();
        assert_eq!((seen.refreshes, seen.api_ok), (1, 1), "{seen:?}");
        out
    };
    let same = run_on(&libdir);
    assert!(
        same.contains(&format!(
            "RESULT version={} status=200 refreshes=1 events=1 canary=ok",
            version()
        )),
        "{same}"
    );

    // The next version of the library: one more setter, one more field at the end of the stats
    // and the event, a higher minor version. Only the library is rebuilt.
    let newer = dir.join("newer");
    install(&newer, &["--features", "abi-probe"]);
    let symbols = text(&run(
        Command::new("nm")
            .args(["-D", "--defined-only"])
            .arg(newer.join("lib/libtokengate.so.0")),
        "nm",
    ));
    assert!(
        symbols.contains("tokengate_client_builder_set_abi_probe"),
        "the newer library has the added setter"
    );
    let out = run_on(&newer.join("lib"));
    // Put the regular build back in the target directory.
    install(&dir.join("restored"), &[]);
    assert!(
        out.contains("RESULT version=0.3.0 status=200 refreshes=1 events=1 canary=ok"),
        "the old program on the newer library:\n{out}"
    );
}
