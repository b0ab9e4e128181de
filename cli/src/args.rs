//! The command line: global options (accepted before or after the subcommand) and the commands.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// What every `--help` ends with.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  `request` got an HTTP status of 400 or more (as `curl --fail`)
  2  usage or configuration error (a bad option or profile, an untrusted certificate, a client the
     authorization server refuses: invalid_client)
  3  login required: no session, or the authorization server ended it (invalid_grant); run
     `tokengate login`
  4  transient failure: network, token endpoint or store down, timeout; trying again later may work

Files:
  profiles  $XDG_CONFIG_HOME/tokengate/config.toml (else ~/.config/tokengate/config.toml), mode 0600
  tokens    $XDG_DATA_HOME/tokengate/<profile>.json (else ~/.local/share/tokengate/), mode 0600,
            unless the profile's store is elsewhere

Nothing secret is ever written to stderr; only `tokengate token` prints a token (on stdout).";

/// A credential helper for any OAuth2 API: keeps one session per profile, prints a fresh access
/// token for scripts, and makes curl-like requests with it. Any number of concurrent invocations
/// share the session and make one refresh per expiry.
#[derive(Debug, Parser)]
#[command(name = "tokengate", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, before or after its name. Given to `login`, they are recorded in
/// the profile; given to another command, they override the profile for that one invocation.
#[derive(Debug, Args)]
pub struct Global {
    /// The profile to use (a table in the config file). [default: default]
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "NAME"
    )]
    pub profile: Option<String>,

    /// Where the profile's token lives: a file path, `keyring` (the OS credential store), or
    /// `redis://[user:password@]host:port[/db]` (`rediss://` for TLS), shared by every machine with
    /// the same profile. [default: $XDG_DATA_HOME/tokengate/<profile>.json]
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "PATH|keyring|redis://…"
    )]
    pub store: Option<String>,

    /// Trust the CA certificates in this PEM file (beside the system's) for the authorization
    /// server and the API.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub cacert: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS; needs --key.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE",
        requires = "key"
    )]
    pub cert: Option<PathBuf>,

    /// Private key (PEM) of --cert.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE",
        requires = "cert"
    )]
    pub key: Option<PathBuf>,

    /// Proxy for every connection: http://, https://, socks5:// (credentials may be in the URL).
    /// [default: from HTTPS_PROXY, ALL_PROXY, NO_PROXY and friends, as curl reads them]
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "URL"
    )]
    pub proxy: Option<String>,

    /// Give up after this many seconds: waiting for a token, for `request` the whole request, for
    /// `login --browser` the browser's return. [default: 10 for a token; a request may take 10 s
    /// to connect and 60 s to answer; a browser login 5 min]
    #[arg(long, global = true, help_heading = "Global options", value_name = "SECONDS", value_parser = seconds)]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in, creating or updating the profile.
    ///
    /// With --issuer, the endpoints come from the issuer's metadata (RFC 8414, OpenID Connect
    /// discovery). --device (RFC 8628) shows a code and a URL to open on any device; --browser
    /// opens the authorization page (authorization code with PKCE, redirected to a one-shot
    /// listener on 127.0.0.1). The code and URLs go to stderr. The options given, the global ones
    /// included, are recorded in the profile for the commands that follow. The client secret is
    /// recorded too: the config file is kept private (mode 0600).
    #[command(after_help = EXIT_CODES)]
    Login(LoginArgs),

    /// Print a fresh access token on stdout, and nothing else.
    ///
    /// The token is refreshed first when it is about to expire; with rotating refresh tokens,
    /// concurrent invocations (of this or any other command) make one refresh between them. Use it
    /// as `curl -H "Authorization: Bearer $(tokengate token)" …`.
    #[command(after_help = EXIT_CODES)]
    Token,

    /// Send an HTTP request with the access token, like curl.
    ///
    /// The response body goes to stdout, the status line to stderr. A rejected token (401) is
    /// refreshed and the request sent once more. Exits 1 for a status of 400 or more.
    #[command(after_help = EXIT_CODES)]
    Request(RequestArgs),

    /// Show the profile and its session, never the token.
    ///
    /// Issuer, client, store, state, expiry, who (from a JWT access token's claims) and scopes.
    /// Reads the store without refreshing and without calling the authorization server. Exits 3
    /// when there is no session.
    #[command(after_help = EXIT_CODES)]
    Status,

    /// Log out: revoke the session at the server and clear the store.
    ///
    /// The refresh token is revoked at the server's revocation endpoint (RFC 7009) when it has
    /// one; the store is cleared either way, for every invocation and machine that shares it. The
    /// profile stays, so `tokengate login` alone logs in again.
    #[command(after_help = EXIT_CODES)]
    Logout,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Use the device flow: a code to enter at a URL, on any device. [default: the profile's
    /// flow, else device when the server offers it]
    #[arg(long, conflicts_with = "browser")]
    pub device: bool,

    /// Use the browser flow: the authorization page in this machine's browser ($BROWSER).
    #[arg(long)]
    pub browser: bool,

    /// The authorization server (its metadata gives the endpoints). Plain http only on loopback.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,

    /// The OAuth2 client id registered for this CLI.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,

    /// The client secret of a confidential client. Recorded in the config file (mode 0600);
    /// visible to other users in the process list while this runs.
    #[arg(long, value_name = "SECRET")]
    pub client_secret: Option<String>,

    /// A scope to ask for; repeatable (or space-separated). Replaces the profile's scopes.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// GET, POST, PUT, PATCH, DELETE, HEAD or any other method.
    pub method: String,

    /// An absolute http(s) URL; the token is sent to its origin only (plain http only on
    /// loopback).
    pub url: String,

    /// Request body: the text itself, `@FILE` for a file's contents, `@-` for stdin. Without a
    /// Content-Type header, it is sent as application/x-www-form-urlencoded (as curl does).
    #[arg(short = 'd', long = "data", value_name = "BODY")]
    pub data: Option<String>,

    /// Extra request header, `Name: value`; repeatable. Authorization is set by tokengate.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
}

/// A positive number of seconds (fractions allowed).
fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("`{s}`: give a positive number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let before =
            Cli::try_parse_from(["tokengate", "--profile", "p", "--timeout", "2", "token"])
                .unwrap();
        let after = Cli::try_parse_from(["tokengate", "token", "--profile", "p", "--timeout", "2"])
            .unwrap();
        for cli in [before, after] {
            assert_eq!(cli.global.profile.as_deref(), Some("p"));
            assert_eq!(cli.global.timeout, Some(Duration::from_secs(2)));
        }
    }

    #[test]
    fn cert_needs_key() {
        let e = Cli::try_parse_from(["tokengate", "token", "--cert", "c.pem"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn timeouts_are_positive_seconds() {
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        for bad in ["0", "-1", "NaN", "inf", "soon", "1e400"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }
}
