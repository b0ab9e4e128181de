//! `tokengate_result`: the code every fallible entry point returns, and how a [`tokengate::Error`]
//! maps onto it.
//!
//! The codes are `#define`d constants of a `uint32_t` typedef rather than a C enum: a C89 compiler
//! with `-pedantic` refuses the trailing comma cbindgen writes after an enum's last value, and a
//! typedef of a fixed-size integer keeps the size the same in every compiler.

use tokengate::{Error, LoginErrorKind, RefreshErrorKind};

/// What a call did: `TOKENGATE_RESULT_OK` (0) is success; every other value is a failure, whose
/// details go to the call's `error_out` (when not NULL) and to `tokengate_last_error()`.
///
/// Values are explicit and never reused: a removed code leaves a gap. Codes below 100 are about how
/// the API was called; codes from 100 on come from the client itself. Whether a failure may pass
/// by itself is `tokengate_error_is_transient()`; ffi/README.md has the table.
#[allow(non_camel_case_types)]
pub type tokengate_result = u32;

/// Success.
pub const TOKENGATE_RESULT_OK: tokengate_result = 0;
/// A pointer argument that must not be NULL was NULL (also a data pointer that is NULL with a
/// non-zero length).
pub const TOKENGATE_RESULT_NULL_ARGUMENT: tokengate_result = 1;
/// An argument is not valid: a string that is not UTF-8, an HTTP method that is not upper-case
/// token characters (`"get"`), an enum value this version does not know, a struct size that is
/// too small, a call made in the wrong order.
pub const TOKENGATE_RESULT_INVALID_ARGUMENT: tokengate_result = 2;
/// tokengate panicked inside the call (a bug: please report it). The panic was caught; nothing
/// crossed into C. Any function returning `tokengate_result` may return it.
pub const TOKENGATE_RESULT_PANIC: tokengate_result = 3;
/// What was asked for is not there: a response header of that name, a header index past the
/// last, a token before the first one, the expiry of a token that has none.
pub const TOKENGATE_RESULT_NOT_FOUND: tokengate_result = 4;
/// A tokengate callback tried to register or unregister a callback (of any client).
pub const TOKENGATE_RESULT_IN_CALLBACK: tokengate_result = 5;
/// `tokengate_check_version()`: the library is older than the header the program was compiled
/// against, or of another major version.
pub const TOKENGATE_RESULT_VERSION_MISMATCH: tokengate_result = 6;
/// No usable token without a new login: the refresh was refused permanently (`invalid_grant`), or
/// there is no token and nothing to refresh with. Requests fail fast (no network) until
/// `tokengate_client_set_token()`. Never transient.
pub const TOKENGATE_RESULT_LOGIN_REQUIRED: tokengate_result = 100;
/// A refresh failed for a reason that may pass (network, 5xx, 429, a refresh callback that
/// returned `TOKENGATE_REFRESH_TRANSIENT`); it is retried after a backoff. Transient.
pub const TOKENGATE_RESULT_REFRESH_FAILED: tokengate_result = 101;
/// This request waited its whole refresh budget (`refresh_timeout_ms`) for a token. Transient.
pub const TOKENGATE_RESULT_REFRESH_TIMEOUT: tokengate_result = 102;
/// The refresher (or a refresh callback) panicked; the next call tries again. Transient.
pub const TOKENGATE_RESULT_REFRESHER_PANICKED: tokengate_result = 103;
/// The request itself failed: connect, timeout, protocol error, a broken body stream. Transient.
pub const TOKENGATE_RESULT_TRANSPORT: tokengate_result = 104;
/// A URL (base URL, token URL, proxy URL or request path) is not usable. Not transient.
pub const TOKENGATE_RESULT_INVALID_URL: tokengate_result = 105;
/// A request header name or value is not valid HTTP. Not transient.
pub const TOKENGATE_RESULT_INVALID_HEADER: tokengate_result = 106;
/// The access token cannot be sent in an HTTP header. Not transient.
pub const TOKENGATE_RESULT_INVALID_TOKEN: tokengate_result = 107;
/// The configuration cannot work: a plain-http token URL off loopback, an unreadable CA or client
/// certificate file, a key that does not match its certificate, a token endpoint that refuses the
/// client (`invalid_client`). An operator must fix it; logging in again does not help. Not
/// transient.
pub const TOKENGATE_RESULT_CONFIG: tokengate_result = 108;
/// The token file (`token_file`) cannot be used: empty, garbled or of another format version
/// (left untouched), or reading, writing or locking it failed. The message names the file and
/// the problem, never its contents. Transient for I/O failures only: see
/// `tokengate_error_is_transient()`.
pub const TOKENGATE_RESULT_STORE: tokengate_result = 109;
/// TLS failed, for the API or the token endpoint: a certificate not trusted (add its CA with
/// `tokengate_client_builder_add_root_certificates_file()`), not valid for the host or expired,
/// or the client certificate refused. Not transient.
pub const TOKENGATE_RESULT_TLS: tokengate_result = 110;
/// The request could not get through the proxy. Transient, except when the proxy refused the
/// credentials: see `tokengate_error_is_transient()`.
pub const TOKENGATE_RESULT_PROXY: tokengate_result = 111;
/// The request's own deadline (`tokengate_request_set_timeout_ms()`) passed: while it waited for a
/// token, or before the response arrived. Transient.
pub const TOKENGATE_RESULT_DEADLINE: tokengate_result = 112;
/// The response body is longer than the `max_bytes` given to `tokengate_response_body()`; nothing
/// of it was kept. Not transient.
pub const TOKENGATE_RESULT_BODY_TOO_LARGE: tokengate_result = 113;
/// `tokengate_client_logout()` ended the session here and in the token file, but the
/// authorization server did not confirm the revocation of the refresh token (RFC 7009): it may
/// still honour it until it expires. `tokengate_error_is_transient()` says whether trying again
/// could have helped.
pub const TOKENGATE_RESULT_REVOCATION: tokengate_result = 114;
/// The user refused the login (`access_denied`). Not transient.
pub const TOKENGATE_RESULT_LOGIN_DENIED: tokengate_result = 115;
/// The login's code expired before the user approved it (`expired_token`): start again.
pub const TOKENGATE_RESULT_LOGIN_EXPIRED: tokengate_result = 116;
/// The login was stopped with `tokengate_cancel_cancel()`.
pub const TOKENGATE_RESULT_CANCELLED: tokengate_result = 117;
/// The authorization server refused the login (e.g. an unknown client) or answered something
/// unusable; see the message. `tokengate_error_is_transient()` says whether trying again later
/// could help.
pub const TOKENGATE_RESULT_LOGIN_FAILED: tokengate_result = 118;
/// The browser did not come back with the authorization within the login's timeout.
pub const TOKENGATE_RESULT_LOGIN_TIMEOUT: tokengate_result = 119;
/// A failure of a kind this version of the C ABI has no code for; see the message.
pub const TOKENGATE_RESULT_OTHER: tokengate_result = 199;

/// The code for a client error.
pub(crate) fn of(error: &Error) -> tokengate_result {
    match error {
        Error::LoginRequired(_) => TOKENGATE_RESULT_LOGIN_REQUIRED,
        Error::Refresh(e) if e.is_transient() => TOKENGATE_RESULT_REFRESH_FAILED,
        Error::Refresh(e) if e.kind() == RefreshErrorKind::Tls => TOKENGATE_RESULT_TLS,
        Error::Refresh(e) if e.is_configuration() => TOKENGATE_RESULT_CONFIG,
        Error::Refresh(_) => TOKENGATE_RESULT_REFRESH_FAILED,
        Error::RefreshTimeout(_) => TOKENGATE_RESULT_REFRESH_TIMEOUT,
        Error::RefresherPanicked => TOKENGATE_RESULT_REFRESHER_PANICKED,
        Error::Transport(_) => TOKENGATE_RESULT_TRANSPORT,
        Error::Tls(_) => TOKENGATE_RESULT_TLS,
        Error::Proxy(_) => TOKENGATE_RESULT_PROXY,
        Error::Deadline(_) => TOKENGATE_RESULT_DEADLINE,
        Error::InvalidUrl(_) => TOKENGATE_RESULT_INVALID_URL,
        Error::InvalidHeader(_) => TOKENGATE_RESULT_INVALID_HEADER,
        Error::InvalidToken => TOKENGATE_RESULT_INVALID_TOKEN,
        Error::Config(_) => TOKENGATE_RESULT_CONFIG,
        Error::Store(_) => TOKENGATE_RESULT_STORE,
        Error::Revocation(_) => TOKENGATE_RESULT_REVOCATION,
        Error::Login(e) => match e.kind() {
            LoginErrorKind::AccessDenied => TOKENGATE_RESULT_LOGIN_DENIED,
            LoginErrorKind::ExpiredToken => TOKENGATE_RESULT_LOGIN_EXPIRED,
            LoginErrorKind::Cancelled => TOKENGATE_RESULT_CANCELLED,
            LoginErrorKind::TimedOut => TOKENGATE_RESULT_LOGIN_TIMEOUT,
            LoginErrorKind::Transport => TOKENGATE_RESULT_TRANSPORT,
            LoginErrorKind::Tls => TOKENGATE_RESULT_TLS,
            LoginErrorKind::Proxy => TOKENGATE_RESULT_PROXY,
            LoginErrorKind::Configuration => TOKENGATE_RESULT_CONFIG,
            _ => TOKENGATE_RESULT_LOGIN_FAILED,
        },
        _ => TOKENGATE_RESULT_OTHER,
    }
}
