//! The real services the store tests (tokengate's and the CLI's) run against, each started by the
//! test on loopback (or a private session bus) with a temporary directory, and stopped when
//! dropped: [`RedisServer`] (`redis-server`) and [`SecretService`] (`gnome-keyring-daemon` in a
//! private `dbus-run-session`). A missing program fails the test with the package to install:
//! these suites only run with their cargo features, which `.ci/run` enables after installing them.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::TestPki;
use crate::support::{PATIENCE, TempDir, temp_dir};

/// Polls `ready` every 10 ms until it holds; panics with `what` after `within`.
fn wait_until(what: &str, within: Duration, ready: impl Fn() -> bool) {
    let until = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A `redis-server` of our own on a free loopback port, without persistence except the snapshot
/// written by a graceful [`stop`](RedisServer::stop); with [`with_tls`](RedisServer::with_tls),
/// TLS only (`--port 0 --tls-port <port>`).
pub struct RedisServer {
    port: u16,
    dir: TempDir,
    extra: Vec<String>,
    /// The arguments that make `redis-cli` reach this server: TLS and its certificates.
    cli_tls: Vec<String>,
    tls: bool,
    child: Option<Child>,
}

/// Whether a TLS Redis wants a certificate from its clients (`--tls-auth-clients`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// Clients must present a certificate from the server's CA.
    Required,
    /// Clients present no certificate.
    Off,
}

impl RedisServer {
    /// Starts a server with the defaults.
    ///
    /// # Panics
    ///
    /// When `redis-server` cannot be started or does not listen within [`PATIENCE`].
    pub fn start() -> RedisServer {
        RedisServer::with_args(&[])
    }

    /// A server started with extra `redis-server` arguments (e.g. `--user ...`).
    pub fn with_args(extra: &[&str]) -> RedisServer {
        let mut server = RedisServer::unstarted(extra);
        server.launch();
        server
    }

    /// A server that speaks TLS only, with the server certificate of `pki` (for `127.0.0.1`),
    /// checking client certificates against `pki`'s CA when `auth` says so. `redis-cli` reaches
    /// it with TLS, trusting that CA, and with a client certificate of its own from `pki`.
    pub fn with_tls(pki: &TestPki, auth: ClientAuth, extra: &[&str]) -> RedisServer {
        let mut server = RedisServer::unstarted(extra);
        let dir = server.dir.path().to_owned();
        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path.to_str().unwrap().to_owned()
        };
        let ca = write("ca.pem", &pki.ca_pem());
        let cert = write("server.pem", &pki.server().cert_pem);
        let key = write("server.key", &pki.server().key_pem);
        let cli = pki.client("redis-cli");
        let cli_cert = write("cli.pem", &cli.cert_pem);
        let cli_key = write("cli.key", &cli.key_pem);
        let auth = match auth {
            ClientAuth::Required => "yes",
            ClientAuth::Off => "no",
        };
        let mut args: Vec<String> = [
            "--tls-port",
            &server.port.to_string(),
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            auth,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.append(&mut server.extra);
        server.extra = args;
        server.cli_tls = [
            "--tls", "--cacert", &ca, "--cert", &cli_cert, "--key", &cli_key,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        server.tls = true;
        server.launch();
        server
    }

    fn unstarted(extra: &[&str]) -> RedisServer {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        RedisServer {
            port,
            dir: temp_dir("redis"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            cli_tls: Vec::new(),
            tls: false,
            child: None,
        }
    }

    fn launch(&mut self) {
        // A TLS server has no plain port: its TLS port is among the extra arguments.
        let plain = if self.tls { 0 } else { self.port };
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &plain.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--loglevel", "warning"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}): install the Debian package redis-server")
        });
        let port = self.port;
        let child = std::cell::RefCell::new(child);
        let hint = if self.tls {
            " (a redis-server built without TLS refuses --tls-port: `redis-server --tls-port 1` \
             says so)"
        } else {
            ""
        };
        wait_until("redis-server to listen", PATIENCE, || {
            if let Some(status) = child.borrow_mut().try_wait().unwrap() {
                panic!("redis-server exited at start ({status}); its log is above{hint}");
            }
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        self.child = Some(child.into_inner());
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/0` (`rediss://` with TLS).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}/0", self.scheme(), self.port)
    }

    /// [`url`](RedisServer::url) with `userinfo@` in front of the host.
    pub fn url_as(&self, userinfo: &str) -> String {
        format!("{}://{userinfo}@127.0.0.1:{}/0", self.scheme(), self.port)
    }

    fn scheme(&self) -> &'static str {
        if self.tls { "rediss" } else { "redis" }
    }

    /// Runs `redis-cli` against this server (as the default user) and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(&self.cli_tls)
            .args(args)
            .output()
            .expect("cannot run redis-cli (Debian package redis-tools)");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    }

    /// Stops the server: `SHUTDOWN SAVE` keeps its data in a snapshot that the next start loads,
    /// `SHUTDOWN NOSAVE` loses it.
    pub fn stop(&mut self, keep_data: bool) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let how = if keep_data { "SAVE" } else { "NOSAVE" };
        // redis-cli reports the dropped connection of a successful shutdown as an error.
        let _ = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(&self.cli_tls)
            .args(["SHUTDOWN", how])
            .output();
        let until = Instant::now() + PATIENCE;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() >= until {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-server did not shut down");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the server again on the same port and directory.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A Secret Service of our own: `gnome-keyring-daemon` on a private session bus started by
/// `dbus-run-session`, with its keyring files in a temporary home and its login keyring created
/// and unlocked from a password on stdin (`--unlock`), so nothing prompts. The session ends (bus
/// and daemon) when this is dropped or the test process dies: the shell waits on its stdin.
pub struct SecretService {
    child: Child,
    stdin: Option<ChildStdin>,
    address: String,
    dir: TempDir,
}

/// Creates and unlocks the login keyring, waits until the Secret Service owns its bus name,
/// prints the bus address and waits for stdin to close; the trap then stops the daemon.
const SESSION_SCRIPT: &str = r#"
printf '%s' "$TOKENGATE_TEST_KEYRING_PASSWORD" |
  gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null' EXIT
for _ in $(seq 400); do
  if dbus-send --session --print-reply --dest=org.freedesktop.DBus / \
      org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
      grep -q 'boolean true'; then
    echo "ADDRESS=$DBUS_SESSION_BUS_ADDRESS"
    cat >/dev/null
    exit 0
  fi
  sleep 0.05
done
echo "NO-SECRET-SERVICE"
exit 1
"#;

impl SecretService {
    /// Starts the session bus and the daemon, and waits until the Secret Service answers.
    ///
    /// # Panics
    ///
    /// When `dbus-run-session` cannot be started or the Secret Service does not come up within
    /// [`PATIENCE`].
    pub fn start() -> SecretService {
        let dir = temp_dir("secret-service");
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let mut child = Command::new("dbus-run-session")
            .args(["--", "bash", "-c", SESSION_SCRIPT])
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_RUNTIME_DIR", &run)
            .env("TOKENGATE_TEST_KEYRING_PASSWORD", "test-login-password")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start dbus-run-session ({e}): install the Debian packages dbus, \
                     gnome-keyring and libsecret-tools"
                )
            });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(PATIENCE)
            .expect("the Secret Service did not start in time");
        let address = line
            .trim_end()
            .strip_prefix("ADDRESS=")
            .unwrap_or_else(|| {
                panic!("gnome-keyring-daemon did not come up on the private bus: {line:?}")
            })
            .to_owned();
        SecretService {
            stdin: child.stdin.take(),
            child,
            address,
            dir,
        }
    }

    /// The private bus, for `DBUS_SESSION_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A directory for lock files (the session's runtime directory).
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Runs `secret-tool` on the private bus and returns its output (stdout and stderr).
    pub fn secret_tool(&self, args: &[&str]) -> String {
        let out = Command::new("secret-tool")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .expect("cannot run secret-tool (Debian package libsecret-tools)");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        text
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let until = Instant::now() + PATIENCE;
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() >= until {
                let _ = self.child.kill();
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.wait();
    }
}
