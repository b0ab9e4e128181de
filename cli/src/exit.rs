//! Exit codes and the one error type every command returns: what to print on stderr (never a
//! secret) and which code to exit with.

use std::fmt;
use std::process::ExitCode;

/// The documented exit codes (see `tokengate --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `request` got an HTTP status of 400 or more.
    HttpError = 1,
    /// Usage or configuration error, `invalid_client` included.
    Config = 2,
    /// No session, or the authorization server ended it.
    LoginRequired = 3,
    /// Network, token endpoint or store down, timeout.
    Transient = 4,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// Why a command failed: a message for stderr (free of secrets) and its exit code.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn config(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Config,
            message: message.into(),
        }
    }

    pub fn transient(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Transient,
            message: message.into(),
        }
    }

    pub fn login_required(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::LoginRequired,
            message: message.into(),
        }
    }

    /// The same failure with `context` in front of its message.
    pub fn context(mut self, context: impl fmt::Display) -> Failure {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exit code of a library error.
pub fn classify(e: &tokengate::Error) -> Exit {
    use tokengate::Error as E;
    if e.is_login_required() {
        return Exit::LoginRequired;
    }
    // A stored session that cannot be read back (truncated, garbled, another format version) is
    // gone: logging in again replaces it (the unusable file is kept aside).
    if e.store_error()
        .is_some_and(tokengate::StoreError::is_corrupt)
    {
        return Exit::LoginRequired;
    }
    // A store that refuses us (a wrong Redis password, a locked keyring) is fixed by its owner,
    // not by waiting.
    if e.is_configuration()
        || e.store_error()
            .is_some_and(|s| s.kind() == tokengate::StoreErrorKind::Denied)
    {
        return Exit::Config;
    }
    if e.is_transient() {
        return Exit::Transient;
    }
    match e {
        E::InvalidUrl(_) | E::InvalidHeader(_) | E::Config(_) | E::Json(_) => Exit::Config,
        _ => Exit::Transient,
    }
}

/// An error and its causes on one line, `outer: cause: cause`. The library's errors never hold a
/// token or secret, and a cause is in `source()`, never also in `Display`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

impl From<tokengate::Error> for Failure {
    fn from(e: tokengate::Error) -> Failure {
        let exit = classify(&e);
        let mut message = chain(&e);
        if exit == Exit::LoginRequired {
            message.push_str("; run `tokengate login`");
        }
        Failure { exit, message }
    }
}

impl From<tokengate::StoreError> for Failure {
    fn from(e: tokengate::StoreError) -> Failure {
        Failure::from(tokengate::Error::from(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokengate::{RefreshError, StoreError, StoreErrorKind};

    #[test]
    fn library_errors_map_to_the_documented_codes() {
        use tokengate::Error as E;
        let cases = [
            (E::LoginRequired(None), Exit::LoginRequired),
            (
                E::LoginRequired(Some(RefreshError::permanent("invalid_grant"))),
                Exit::LoginRequired,
            ),
            (
                E::Refresh(RefreshError::configuration("invalid_client")),
                Exit::Config,
            ),
            (E::Refresh(RefreshError::transient("503")), Exit::Transient),
            (
                E::RefreshTimeout(std::time::Duration::from_secs(1)),
                Exit::Transient,
            ),
            (
                StoreError::new(StoreErrorKind::Malformed, "garbled").into(),
                Exit::LoginRequired,
            ),
            (
                StoreError::new(StoreErrorKind::Unavailable, "redis down").into(),
                Exit::Transient,
            ),
            (
                StoreError::new(StoreErrorKind::ReadOnly, "read-only dir").into(),
                Exit::Config,
            ),
            (
                StoreError::new(StoreErrorKind::Denied, "WRONGPASS").into(),
                Exit::Config,
            ),
            (E::InvalidUrl("x".into()), Exit::Config),
        ];
        for (e, exit) in cases {
            assert_eq!(classify(&e), exit, "{e}");
        }
    }

    #[test]
    fn a_cause_is_shown_once() {
        let e = StoreError::new(StoreErrorKind::Io, "cannot read /t.json")
            .with_source(std::io::Error::other("disk on fire"));
        assert_eq!(
            Failure::from(e).message,
            "token store: cannot read /t.json: disk on fire"
        );
    }
}
