//! `tokengate`: a credential helper for any OAuth2 API, on the tokengate library.
//!
//! One session per profile, kept in a store (a 0600 file, the OS credential store, or Redis)
//! that every invocation shares: `tokengate token` prints a fresh access token for scripts, and
//! any number of concurrent invocations make one refresh per expiry, never an `invalid_grant`
//! (the library's lock → re-read → adopt protocol). See `cli/README.md` and `tokengate --help`.
//!
//! Rooms: `args` (the command line), `config` (the profile file), `session` (profile + options →
//! a tokengate client), `store` (the three stores behind one type), `exit` (errors → exit codes),
//! `commands/` (one file per command).

mod args;
mod commands;
mod config;
mod exit;
mod session;
mod store;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::exit::Failure;
use crate::session::Session;

fn main() -> ExitCode {
    // Usage errors exit 2 (clap's own code); `--help` and `--version` exit 0.
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("tokengate: {failure}");
            failure.exit.into()
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, Failure> {
    let mut session = Session::new(&cli.global)?;
    match &cli.command {
        Command::Login(args) => {
            commands::login::run(&mut session, args).map(|()| ExitCode::SUCCESS)
        }
        Command::Logout => commands::logout::run(&session).map(|()| ExitCode::SUCCESS),
        Command::Token => commands::token::run(&session).map(|()| ExitCode::SUCCESS),
        Command::Request(args) => commands::request::run(&session, args).map(ExitCode::from),
        Command::Status => commands::status::run(&session).map(|()| ExitCode::SUCCESS),
    }
}
