//! `tokengate-testserver`: the loopback OAuth2 token endpoint and bearer-protected API of the
//! `tokengate-testserver` library as a program, for tests written in Python, C or anything else that
//! can start a process.
//!
//! It starts on an ephemeral port of `127.0.0.1` and prints one JSON line on stdout: the URLs, the
//! demo client's credentials and a first token (a fresh login). Then it reads commands from stdin,
//! one per line, and answers each with one JSON line (`{"ok":true,...}` or
//! `{"ok":false,"error":"..."}`): `counters` reports what the server saw, other commands switch
//! failure modes at run time. It stops at `quit` or at the end of stdin (so it never outlives a
//! test harness that holds its stdin), or, with `--no-control`, only when it is killed.
//!
//! Run `tokengate-testserver --help` for the flags and commands.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};
use tokengate_testserver::support::{TempDir, temp_dir};
use tokengate_testserver::{
    ClientCerts, Counters, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PUBLIC_CLIENT_ID, Failure,
    HttpProxy, Issued, RedirectFault, ServerBuilder, TestPki, TestServer, TlsFront,
};

const HELP: &str = "\
tokengate-testserver: a loopback OAuth2 token endpoint and bearer-protected API for tests.

Prints one JSON line on stdout when it is listening:
  {\"url\", \"api_url\", \"token_url\", \"custom_refresh_url\", \"issuer\",
   \"device_authorization_url\", \"authorization_url\", \"revocation_url\", \"client_id\",
   \"client_secret\", \"public_client_id\", \"access_token\", \"refresh_token\", \"expires_in\"}
(the issuer's metadata is at /.well-known/oauth-authorization-server and
/.well-known/openid-configuration)
With --tls or --mtls the URLs are https (the server itself stays on \"http_url\") and the line
also has \"ca_file\" (the test CA's certificate, PEM); with --mtls also \"client_cert_file\" and
\"client_key_file\" (a client certificate from that CA and its key). With --proxy it has
\"proxy_url\". The files live in a temp directory removed when the program exits.
then reads commands on stdin (one per line, one JSON line answered per command) until `quit` or
the end of stdin.

Flags (DUR is 250ms, 1.5s, 2m or plain seconds):
  --token-lifetime DUR          lifetime of issued access tokens (default 3600s)
  --token-latency DUR           the token endpoint waits this long before answering (default 0)
  --token-latency-jitter DUR    up to this much extra latency, random per answer (default 0)
  --no-rotation                 refresh tokens stay valid and are not rotated (default: rotated,
                                single-use; reusing one revokes its family)
  --body-mode                   rejected API calls get 200 {\"ret\":401,...} instead of a 401
  --failure MODE                the token endpoint's failure mode (default none; see below)
  --transient-failure-rate P    probability of an injected 503 per refresh (default 0)
  --reject-all                  the API rejects every token, even fresh ones
  --omit-expires-in             token responses leave out expires_in
  --jwt                         access tokens are JWTs carrying exp
  --device-auto-approve         device logins are approved as soon as they start
  --device-interval DUR         the interval of device logins (default 1s; fractions are sent as
                                such, and tokengate honours them from loopback)
  --client ID:SECRET            register another confidential client (repeatable)
  --public-client ID            register another public client (repeatable)
  --workers N                   connection threads kept warm (default 32)
  --tls                         serve over HTTPS, with a private CA made at start
  --mtls                        as --tls, and require a client certificate from that CA
  --proxy                       also start an HTTP proxy (CONNECT tunnels and plain requests)
                                that counts what it carries
  --no-control                  do not read stdin: serve until killed
  -h, --help                    this text

Failure modes (MODE):
  none | status500 | unavailable[:SECS] | too-many-requests[:SECS] | html | garbage-json |
  invalid-grant | invalid-client | hang:DUR | big-body:BYTES | reset-mid-response |
  empty-access-token | expires-in:JSON

Commands on stdin:
  counters                      {\"ok\":true,\"counters\":{...}} (what the server saw; with
                                --tls/--mtls also tls_handshakes, tls_failed_handshakes; with
                                --proxy also proxy_tunnels, proxy_plain_requests)
  reset-counters                zero every counter
  issue                         {\"ok\":true,\"token\":{access_token, refresh_token, expires_in}}
  failure MODE                  set the token endpoint's failure mode
  token-latency DUR | token-latency-jitter DUR | token-lifetime DUR | transient-failure-rate P
  reject-all on|off | api-reset on|off | omit-expires-in on|off | date-skew SECS
  revoke-all                    reject every access token issued so far
  revoke-refresh-tokens         invalidate every refresh token issued so far
  valid TOKEN                   {\"ok\":true,\"valid\":bool}: would the API accept this access token
  in-flight                     {\"ok\":true,\"in_flight\":N}: token requests being answered now
  approve USER_CODE | deny USER_CODE   decide a pending device login ({\"ok\":false} if none)
  device-auto-approve on|off | device-interval DUR | device-expires-in DUR
  device-pending N | device-slow-down N   answer the next N device polls so
  device-polls USER_CODE        {\"ok\":true,\"polls_ms\":[...]}: when each poll came, from the start
  redirect-fault none|wrong-state|wrong-iss|no-iss|error:CODE   how authorization redirects go wrong
  revocation-unavailable on|off the revocation endpoint answers 503
  jwt on|off                    access tokens issued from now on are JWTs carrying exp
  refresh-valid TOKEN           {\"ok\":true,\"valid\":bool}: would a refresh with it be accepted
  quit                          stop the server and exit
";

/// What the command line asked for.
struct Args {
    builder: ServerBuilder,
    failure: Failure,
    reject_all: bool,
    omit_expires_in: bool,
    jwt: bool,
    device_auto_approve: bool,
    device_interval: Option<Duration>,
    control: bool,
    tls: Option<ClientCerts>,
    proxy: bool,
}

/// The network fixtures in front of the server, when the flags asked for them.
struct Fronts {
    tls: Option<TlsFront>,
    proxy: Option<HttpProxy>,
    /// Holds the PEM files named in the hello line; removed when the program exits.
    _files: Option<TempDir>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tokengate-testserver: {e} (see --help)");
            return ExitCode::from(2);
        }
    };
    let server = match args.builder.try_start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tokengate-testserver: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    server.set_failure(args.failure);
    server.set_reject_all(args.reject_all);
    server.set_omit_expires_in(args.omit_expires_in);
    server.set_jwt_access_tokens(args.jwt);
    server.set_device_auto_approve(args.device_auto_approve);
    if let Some(d) = args.device_interval {
        server.set_device_interval(d);
    }

    let mut fronts = Fronts {
        tls: None,
        proxy: None,
        _files: None,
    };
    let mut base = server.url();
    let mut extra = serde_json::Map::new();
    if let Some(client_certs) = args.tls {
        match tls_files(client_certs, &mut extra) {
            Ok((pki, dir)) => {
                let front = TlsFront::start(&pki, server.addr(), client_certs);
                base = front.url();
                fronts.tls = Some(front);
                fronts._files = Some(dir);
            }
            Err(e) => {
                eprintln!("tokengate-testserver: cannot write the certificates: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if args.proxy {
        let proxy = HttpProxy::start();
        extra.insert("proxy_url".to_owned(), json!(proxy.url()));
        fronts.proxy = Some(proxy);
    }
    server.set_public_url(&base);
    let rebase = |url: String| url.replacen(&server.url(), &base, 1);
    let mut hello = json!({
        "url": base,
        "http_url": server.url(),
        "api_url": format!("{base}/api"),
        "token_url": rebase(server.token_url()),
        "custom_refresh_url": rebase(server.custom_refresh_url()),
        "issuer": server.issuer(),
        "device_authorization_url": rebase(server.device_authorization_url()),
        "authorization_url": rebase(server.authorization_url()),
        "revocation_url": rebase(server.revocation_url()),
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "public_client_id": DEMO_PUBLIC_CLIENT_ID,
    });
    if let Value::Object(map) = &mut hello {
        map.extend(extra);
    }
    if let (Value::Object(map), Value::Object(token)) = (&mut hello, issued(&server.issue_token()))
    {
        map.extend(token);
    }
    if say(&hello).is_err() {
        return ExitCode::FAILURE;
    }

    if !args.control {
        // Serve until killed: the server's threads do the work.
        loop {
            std::thread::park();
        }
    }
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "quit" {
            let _ = say(&json!({"ok": true}));
            break;
        }
        let answer =
            command(&server, &fronts, line).unwrap_or_else(|e| json!({"ok": false, "error": e}));
        if say(&answer).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// A new test CA, with its certificate (and for mutual TLS a client certificate and key) written
/// to a temp directory whose paths go into `hello`.
fn tls_files(
    client_certs: ClientCerts,
    hello: &mut serde_json::Map<String, Value>,
) -> io::Result<(TestPki, TempDir)> {
    let pki = TestPki::new("tokengate-testserver CA");
    let dir = temp_dir("testserver-pki");
    let mut write = |key: &str, name: &str, pem: &str| -> io::Result<()> {
        let path = dir.path().join(name);
        std::fs::write(&path, pem)?;
        hello.insert(key.to_owned(), json!(path.to_string_lossy()));
        Ok(())
    };
    write("ca_file", "ca.pem", &pki.ca_pem())?;
    if client_certs == ClientCerts::Required {
        let client = pki.client("tokengate test client");
        write("client_cert_file", "client.crt", &client.cert_pem)?;
        write("client_key_file", "client.key", &client.key_pem)?;
    }
    Ok((pki, dir))
}

/// Writes one JSON line on stdout and flushes it (the reader is waiting for it).
fn say(value: &Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{value}")?;
    out.flush()
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args {
        builder: TestServer::builder(),
        failure: Failure::None,
        reject_all: false,
        omit_expires_in: false,
        jwt: false,
        device_auto_approve: false,
        device_interval: None,
        control: true,
        tls: None,
        proxy: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .map(String::as_str)
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let b = std::mem::take(&mut parsed.builder);
        parsed.builder = match flag.as_str() {
            "--token-lifetime" => b.token_lifetime(duration(value()?)?),
            "--token-latency" => b.token_latency(duration(value()?)?),
            "--token-latency-jitter" => b.token_latency_jitter(duration(value()?)?),
            "--no-rotation" => b.rotate_refresh_tokens(false),
            "--body-mode" => b.body_mode(true),
            "--transient-failure-rate" => b.transient_failure_rate(probability(value()?)?),
            "--client" => {
                let v = value()?;
                let (id, secret) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--client wants ID:SECRET, not {v:?}"))?;
                b.client(id, secret)
            }
            "--public-client" => b.public_client(value()?),
            "--workers" => {
                let v = value()?;
                b.workers(
                    v.parse()
                        .map_err(|_| format!("--workers: not a count: {v:?}"))?,
                )
            }
            "--failure" => {
                parsed.failure = failure(value()?)?;
                b
            }
            "--reject-all" => {
                parsed.reject_all = true;
                b
            }
            "--omit-expires-in" => {
                parsed.omit_expires_in = true;
                b
            }
            "--jwt" => {
                parsed.jwt = true;
                b
            }
            "--device-auto-approve" => {
                parsed.device_auto_approve = true;
                b
            }
            "--device-interval" => {
                parsed.device_interval = Some(duration(value()?)?);
                b
            }
            "--no-control" => {
                parsed.control = false;
                b
            }
            "--tls" => {
                parsed.tls.get_or_insert(ClientCerts::Ignored);
                b
            }
            "--mtls" => {
                parsed.tls = Some(ClientCerts::Required);
                b
            }
            "--proxy" => {
                parsed.proxy = true;
                b
            }
            other => return Err(format!("unknown flag {other:?}")),
        };
    }
    Ok(parsed)
}

/// Runs one stdin command; the answer to print, or what was wrong with the command.
fn command(server: &TestServer, fronts: &Fronts, line: &str) -> Result<Value, String> {
    let (name, arg) = match line.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (line, ""),
    };
    let arg_or = |what: &str| {
        if arg.is_empty() {
            Err(format!("{name} needs {what}"))
        } else {
            Ok(arg)
        }
    };
    match name {
        "counters" => {
            let mut all = counters(&server.counters());
            if let Value::Object(map) = &mut all {
                if let Some(tls) = &fronts.tls {
                    map.insert("tls_handshakes".to_owned(), json!(tls.handshakes()));
                    map.insert(
                        "tls_failed_handshakes".to_owned(),
                        json!(tls.failed_handshakes()),
                    );
                }
                if let Some(proxy) = &fronts.proxy {
                    map.insert("proxy_tunnels".to_owned(), json!(proxy.tunnels()));
                    map.insert(
                        "proxy_plain_requests".to_owned(),
                        json!(proxy.plain_requests()),
                    );
                }
            }
            return Ok(json!({"ok": true, "counters": all}));
        }
        "issue" => return Ok(json!({"ok": true, "token": issued(&server.issue_token())})),
        "valid" => {
            let valid = server.is_access_token_valid(arg_or("an access token")?);
            return Ok(json!({"ok": true, "valid": valid}));
        }
        "in-flight" => {
            return Ok(json!({"ok": true, "in_flight": server.token_requests_in_flight()}));
        }
        "reset-counters" => server.reset_counters(),
        "failure" => server.set_failure(failure(arg_or("a mode")?)?),
        "token-latency" => server.set_token_latency(duration(arg_or("a duration")?)?),
        "token-latency-jitter" => server.set_token_latency_jitter(duration(arg_or("a duration")?)?),
        "token-lifetime" => server.set_token_lifetime(duration(arg_or("a duration")?)?),
        "transient-failure-rate" => {
            server.set_transient_failure_rate(probability(arg_or("a probability")?)?);
        }
        "reject-all" => server.set_reject_all(on_off(arg)?),
        "api-reset" => server.set_api_reset(on_off(arg)?),
        "omit-expires-in" => server.set_omit_expires_in(on_off(arg)?),
        "date-skew" => {
            let secs = arg_or("seconds")?;
            server.set_date_skew(secs.parse().map_err(|_| format!("not seconds: {secs:?}"))?);
        }
        "approve" | "deny" => {
            let code = arg_or("a user code")?;
            let found = if name == "approve" {
                server.approve_device(code)
            } else {
                server.deny_device(code)
            };
            if !found {
                return Err(format!("no pending device login with user code {code:?}"));
            }
        }
        "device-auto-approve" => server.set_device_auto_approve(on_off(arg)?),
        "device-interval" => server.set_device_interval(duration(arg_or("a duration")?)?),
        "device-expires-in" => server.set_device_expires_in(duration(arg_or("a duration")?)?),
        "device-pending" | "device-slow-down" => {
            let n = arg_or("a count")?;
            let n: u32 = n.parse().map_err(|_| format!("not a count: {n:?}"))?;
            if name == "device-pending" {
                server.inject_device_pending(n);
            } else {
                server.inject_device_slow_down(n);
            }
        }
        "device-polls" => {
            let polls: Vec<u128> = server
                .device_polls(arg_or("a user code")?)
                .iter()
                .map(Duration::as_millis)
                .collect();
            return Ok(json!({"ok": true, "polls_ms": polls}));
        }
        "redirect-fault" => server.set_redirect_fault(redirect_fault(arg_or("a fault")?)?),
        "revocation-unavailable" => server.set_revocation_unavailable(on_off(arg)?),
        "jwt" => server.set_jwt_access_tokens(on_off(arg)?),
        "refresh-valid" => {
            let valid = server.is_refresh_token_valid(arg_or("a refresh token")?);
            return Ok(json!({"ok": true, "valid": valid}));
        }
        "revoke-all" => server.revoke_all(),
        "revoke-refresh-tokens" => server.revoke_refresh_tokens(),
        other => return Err(format!("unknown command {other:?}")),
    }
    Ok(json!({"ok": true}))
}

fn issued(token: &Issued) -> Value {
    json!({
        "access_token": token.access_token,
        "refresh_token": token.refresh_token,
        "expires_in": token.expires_in,
    })
}

/// Every counter by its field name (the `Serialize` derive lists them all).
fn counters(c: &Counters) -> Value {
    serde_json::to_value(c).unwrap_or_default()
}

/// `none`, `wrong-state`, `wrong-iss`, `no-iss` or `error:CODE`.
fn redirect_fault(text: &str) -> Result<RedirectFault, String> {
    Ok(match text {
        "none" => RedirectFault::None,
        "wrong-state" => RedirectFault::WrongState,
        "wrong-iss" => RedirectFault::WrongIss,
        "no-iss" => RedirectFault::NoIss,
        _ => match text.strip_prefix("error:") {
            Some(code) if !code.is_empty() => RedirectFault::Error(code.to_owned()),
            _ => return Err(format!("not a redirect fault: {text:?}")),
        },
    })
}

/// `250ms`, `1.5s`, `2m` or plain seconds (`0.2`).
fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("not a duration: {text:?} (try 250ms, 1.5s, 2m)");
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let number: f64 = number.trim().parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("not a probability between 0 and 1: {text:?}")),
    }
}

fn on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(format!("want on or off, not {text:?}")),
    }
}

/// A failure mode by name; see `HELP`.
fn failure(text: &str) -> Result<Failure, String> {
    let (name, arg) = match text.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (text, None),
    };
    let secs = |default: u64| -> Result<u64, String> {
        arg.map_or(Ok(default), |a| {
            a.parse()
                .map_err(|_| format!("{name}: not whole seconds: {a:?}"))
        })
    };
    let needed = || arg.ok_or_else(|| format!("failure {name} needs :VALUE"));
    Ok(match name {
        "none" => Failure::None,
        "status500" => Failure::Status500,
        "unavailable" => Failure::Unavailable {
            retry_after_secs: secs(1)?,
        },
        "too-many-requests" => Failure::TooManyRequests {
            retry_after_secs: secs(1)?,
        },
        "html" => Failure::Html,
        "garbage-json" => Failure::GarbageJson,
        "invalid-grant" => Failure::InvalidGrant,
        "invalid-client" => Failure::InvalidClient,
        "hang" => Failure::Hang(duration(needed()?)?),
        "big-body" => {
            let a = needed()?;
            Failure::BigBody(
                a.parse()
                    .map_err(|_| format!("big-body: not bytes: {a:?}"))?,
            )
        }
        "reset-mid-response" => Failure::ResetMidResponse,
        "empty-access-token" => Failure::EmptyAccessToken,
        "expires-in" => {
            let a = needed()?;
            Failure::ExpiresIn(serde_json::from_str(a).map_err(|e| format!("expires-in: {e}"))?)
        }
        other => return Err(format!("unknown failure mode {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("soon").is_err());
        assert!(duration("-1").is_err());
        assert!(duration("3h").is_err());
    }

    #[test]
    fn failure_modes() {
        assert_eq!(
            failure("unavailable:7"),
            Ok(Failure::Unavailable {
                retry_after_secs: 7
            })
        );
        assert_eq!(
            failure("too-many-requests"),
            Ok(Failure::TooManyRequests {
                retry_after_secs: 1
            })
        );
        assert_eq!(
            failure("hang:2s"),
            Ok(Failure::Hang(Duration::from_secs(2)))
        );
        assert_eq!(failure("expires-in:-5"), Ok(Failure::ExpiresIn(json!(-5))));
        assert!(failure("hang").is_err());
        assert!(failure("explode").is_err());
    }

    #[test]
    fn flags() {
        let args: Vec<String> = [
            "--token-lifetime",
            "1s",
            "--no-rotation",
            "--failure",
            "html",
            "--mtls",
            "--tls",
            "--proxy",
        ]
        .map(String::from)
        .into();
        let parsed = parse_args(&args).unwrap();
        assert_eq!(parsed.failure, Failure::Html);
        assert_eq!(
            parsed.tls,
            Some(ClientCerts::Required),
            "--tls does not undo --mtls"
        );
        assert!(parsed.proxy);
        assert!(parse_args(&["--token-lifetime".to_owned()]).is_err());
        assert!(parse_args(&["--bogus".to_owned()]).is_err());
    }
}
