//! A tiny curl-like tool whose token lives in a `FileStore`, so every invocation (and every copy
//! running at the same time) shares one login and one refresh per expiry.
//!
//! ```text
//! cargo run --example cli -- GET /api/me                # embedded server, one-off (see below)
//! cargo run --example cli -- serve                      # terminal 1: a loopback server, 10 minutes
//! cargo run --example cli -- --base http://127.0.0.1:PORT GET /api/me   # terminal 2, again and again
//! cargo run --example cli -- --base http://127.0.0.1:PORT POST /api/notes '{"text":"hi"}'
//! ```
//!
//! Options (or environment variables):
//!
//! - `--base URL` (`TOKENGATE_CLI_BASE`): a running `tokengate-testserver`, e.g. from `cli serve`.
//!   Without it the tool starts the embedded loopback test server for this one invocation, so it
//!   never touches the network; a token saved by an earlier invocation then belongs to a server
//!   that is gone: the tool sees the rejection, the refresh fails with `invalid_grant`, and it logs
//!   in again. With `--base` the saved token is simply reused.
//! - `--store PATH` (`TOKENGATE_CLI_STORE`): the token file. Defaults to
//!   `<temp dir>/tokengate-cli/token.json`.
//!
//! "Logging in" is the test server's password grant (any non-empty user name and password), done
//! once when the store holds no usable token. The response status goes to stderr, the body to
//! stdout; the exit code is 0 for a 2xx answer.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tokengate::http::Method;
use tokengate::{Client, Error, FileStore, OAuth2, Token, TokenResponse, TokenStore};
use tokengate_testserver::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, TestServer};

/// How long `cli serve` keeps its server up.
const SERVE_FOR: Duration = Duration::from_secs(600);

struct Args {
    base: Option<String>,
    store: PathBuf,
    command: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        base: std::env::var("TOKENGATE_CLI_BASE").ok(),
        store: std::env::var_os("TOKENGATE_CLI_STORE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::temp_dir()
                    .join("tokengate-cli")
                    .join("token.json")
            }),
        command: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--base" => args.base = Some(it.next().ok_or("--base needs a URL")?),
            "--store" => args.store = it.next().ok_or("--store needs a path")?.into(),
            _ => args.command.push(arg),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args = parse_args()?;
    if args.command.first().map(String::as_str) == Some("serve") {
        let server = TestServer::start();
        println!("loopback OAuth2 + API server on {}", server.url());
        println!(
            "try: cargo run --example cli -- --base {} GET /api/me",
            server.url()
        );
        std::thread::sleep(SERVE_FOR);
        return Ok(ExitCode::SUCCESS);
    }
    let [method, path, body @ ..] = args.command.as_slice() else {
        return Err("usage: cli [--base URL] [--store PATH] METHOD PATH [BODY] | cli serve".into());
    };
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())?;
    let body = body.first().cloned();

    // Without a base URL, an embedded loopback server for this invocation only.
    let embedded;
    let base = match &args.base {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => {
            embedded = TestServer::start();
            embedded.url()
        }
    };

    let store = FileStore::new(&args.store);
    let client = match build(&base, store.clone()) {
        Err(Error::Store(e)) if e.is_corrupt() => {
            eprintln!("{e}; logging in again (the unusable file is kept aside)");
            store.save(&login(&base)?)?;
            build(&base, store.clone())?
        }
        other => other?,
    };
    if client.token().is_none() {
        eprintln!("no saved token in {}: logging in", args.store.display());
        client.set_token(login(&base)?)?;
    } else {
        eprintln!("using the token saved in {}", args.store.display());
    }

    let send = || {
        let request = client.request(method.clone(), path);
        match &body {
            Some(b) => request
                .header("content-type", "application/json")
                .send(b.as_bytes()),
            None => request.call(),
        }
    };
    let mut response = match send() {
        Err(e) if e.is_login_required() => {
            eprintln!("{e}: logging in again");
            client.set_token(login(&base)?)?;
            send()?
        }
        other => other?,
    };
    let status = response.status();
    eprintln!(
        "HTTP {status} (refreshes this run: {})",
        client.stats().refreshes
    );
    let bytes = response.body_mut().read_to_vec()?;
    std::io::stdout().write_all(&bytes)?;
    println!();
    // The exit rule: a refresh started ahead of expiry may still be in flight. Returning (which
    // drops the client) waits for it and saves the rotated refresh token; `close` does the same
    // explicitly, as a program ending with `std::process::exit` must.
    client.close();
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A client whose token lives in `store`; it starts from the saved token, if any.
fn build(base: &str, store: FileStore) -> Result<Client, Error> {
    Client::builder(base)
        .store(store)
        .refresher(
            OAuth2::refresh_token(format!("{base}/oauth/token"))
                .client_id(DEMO_CLIENT_ID)
                .client_secret(DEMO_CLIENT_SECRET),
        )
        .build()
}

/// "Logs in" with the test server's password grant. A real tool would run a device-code or
/// browser flow here.
fn login(base: &str) -> Result<Token, Box<dyn std::error::Error>> {
    let agent: tokengate::ureq::Agent = tokengate::ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut response = agent.post(format!("{base}/oauth/token")).send_form([
        ("grant_type", "password"),
        ("username", "demo"),
        ("password", "demo"),
        ("client_id", DEMO_CLIENT_ID),
        ("client_secret", DEMO_CLIENT_SECRET),
    ])?;
    let body = response.body_mut().read_to_vec()?;
    Ok(TokenResponse::parse(&body)?.into_token(None))
}
