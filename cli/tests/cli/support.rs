//! Running the built `tokengate` binary as a process in a home of its own (a "machine": its own
//! `HOME` and XDG directories), and what the tests share.

// Some helpers serve only the store tests, which are built with the store features.
#![cfg_attr(not(all(feature = "redis", feature = "keyring")), allow(dead_code))]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tokengate::{FileStore, Token, TokenStore};
use tokengate_testserver::TestServer;
pub use tokengate_testserver::support::{PATIENCE, TempDir, on_threads, temp_dir};

/// The binary under test.
pub const TOKENGATE: &str = env!("CARGO_BIN_EXE_tokengate");

/// Proxy variables of the environment the tests run in: never passed on.
const PROXY_VARS: [&str; 8] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// One machine: a temporary home with its own config, data, runtime and cache directories.
pub struct Home {
    dir: TempDir,
    env: Vec<(String, String)>,
}

impl Home {
    pub fn new(tag: &str) -> Home {
        let dir = temp_dir(&format!("cli-{tag}"));
        for sub in ["config", "data", "run", "cache"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.path().join("run"),
                std::fs::Permissions::from_mode(0o700),
            )
            .unwrap();
        }
        Home {
            dir,
            env: Vec::new(),
        }
    }

    /// An environment variable for every command run in this home.
    pub fn env(mut self, name: &str, value: &str) -> Home {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("config/tokengate/config.toml")
    }

    /// Where a profile's token file is by default.
    pub fn token_path(&self, profile: &str) -> PathBuf {
        self.path().join(format!("data/tokengate/{profile}.json"))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    /// Writes the config file, private as `tokengate` keeps it (it would tighten it, with a note
    /// on stderr).
    pub fn write_config(&self, text: &str) {
        let path = self.config_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    pub fn config(&self) -> String {
        std::fs::read_to_string(self.config_path()).unwrap()
    }

    /// `tokengate ARGS` in this home, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(TOKENGATE);
        command
            .args(args)
            .env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .env("XDG_CACHE_HOME", self.path().join("cache"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            // `login --browser` hands the URL to $BROWSER: here a program that does nothing (the
            // tests play the browser themselves).
            .env("BROWSER", "true")
            .current_dir(self.path());
        for var in PROXY_VARS {
            command.env_remove(var);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    /// Runs `tokengate ARGS` to the end (at most [`PATIENCE`]).
    pub fn run(&self, args: &[&str]) -> Run {
        run(self.command(args), args, None)
    }

    /// Runs `tokengate ARGS` with `input` on stdin.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        run(self.command(args), args, Some(input))
    }
}

impl Home {
    /// Starts `tokengate ARGS` in this home; its stderr can be read line by line while it runs.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {TOKENGATE}: {e}"));
        let (line_tx, lines) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let done_err = done_tx.clone();
        thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                all.push_str(&line);
                all.push('\n');
                let _ = line_tx.send(line);
            }
            let _ = done_err.send((true, all));
        });
        let mut stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            let _ = done_tx.send((false, text));
        });
        Running {
            child,
            args: args.iter().map(|a| a.to_string()).collect(),
            lines,
            done,
            started: Instant::now(),
        }
    }
}

/// A `tokengate` process still running.
pub struct Running {
    child: Child,
    args: Vec<String>,
    lines: mpsc::Receiver<String>,
    done: mpsc::Receiver<(bool, String)>,
    started: Instant,
}

impl Running {
    /// The first line on its stderr (from now on) for which `find` gives something.
    pub fn stderr_line<T>(&mut self, mut find: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(found) = find(&line) {
                        return found;
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    panic!("tokengate {:?}: no such line on stderr ({e:?})", self.args);
                }
            }
        }
    }

    /// Waits for the end (at most [`PATIENCE`]).
    pub fn finish(mut self) -> Run {
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let deadline = self.started + PATIENCE;
        for _ in 0..2 {
            match self
                .done
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok((true, text)) => stderr = text,
                Ok((false, text)) => stdout = text,
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("tokengate {:?} hung", self.args);
                }
            }
        }
        let status = self.child.wait().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
            took: self.started.elapsed(),
        }
    }
}

/// Plays the browser: GETs `url` and follows the redirects (to the CLI's loopback listener), as a
/// browser would; returns the status and body of the last page.
pub fn browse(url: &str) -> (u16, String) {
    let agent: tokengate::ureq::Agent = tokengate::ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(PATIENCE))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("the browser's request failed: {e}"));
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

/// What a finished `tokengate` process left.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    /// Asserts the exit code, showing the output when it is not.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }
}

fn run(mut command: Command, args: &[&str], input: Option<&[u8]>) -> Run {
    let started = Instant::now();
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {TOKENGATE}: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
    }
    let (tx, rx) = mpsc::channel();
    let mut readers = Vec::new();
    for (is_err, mut pipe) in [
        (
            false,
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        ),
        (true, Box::new(child.stderr.take().unwrap())),
    ] {
        let tx = tx.clone();
        readers.push(thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).unwrap();
            let _ = tx.send((is_err, text));
        }));
    }
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let deadline = started + PATIENCE;
    for _ in 0..2 {
        // Both pipes close when the process ends.
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((true, text)) => stderr = text,
            Ok((false, text)) => stdout = text,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tokengate {args:?} hung");
            }
        }
    }
    let status = child.wait().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
        took: started.elapsed(),
    }
}

/// A profile for `server`'s token endpoint as its confidential demo client.
pub fn profile(name: &str, server: &TestServer) -> String {
    format!(
        "[profiles.{name}]\ntoken_endpoint = \"{}\"\nclient_id = \"demo-client\"\nclient_secret = \"demo-secret\"\n",
        server.token_url()
    )
}

/// A fresh login: a token pair issued by the server.
pub fn login(server: &TestServer) -> Token {
    let issued = server.issue_token();
    Token::new(issued.access_token)
        .with_expires_in(Duration::from_secs(issued.expires_in))
        .with_refresh_token(issued.refresh_token)
}

/// A login whose access token we hold as expired (its refresh token is valid): the next use
/// refreshes.
pub fn expired_login(server: &TestServer) -> Token {
    let issued = server.issue_token();
    Token::new(issued.access_token)
        .with_expires_at_wall(std::time::SystemTime::now() - Duration::from_secs(1))
        .with_refresh_token(issued.refresh_token)
}

/// Saves `token` as the profile's session in its default token file.
pub fn seed(home: &Home, profile: &str, token: &Token) -> FileStore {
    let store = FileStore::new(home.token_path(profile));
    store.save(token).unwrap();
    store
}

/// The stored token's access and refresh tokens.
pub fn stored(store: &impl TokenStore) -> (String, String) {
    let token = store.load().unwrap().expect("a stored token");
    (
        token.access_token().secret().to_owned(),
        token.refresh_token().unwrap().secret().to_owned(),
    )
}

/// Asserts that no secret appears on the run's stderr.
#[track_caller]
pub fn assert_quiet_about(run: &Run, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !run.stderr.contains(secret),
            "a secret on stderr: {:?}",
            run.stderr
        );
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Asserts that no file under `dir` holds `secret`.
#[track_caller]
pub fn assert_no_file_holds(dir: &Path, secret: &str) {
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds a token",
            file.display()
        );
    }
}
