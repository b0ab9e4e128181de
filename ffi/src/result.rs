//! `tokengate_result`: the code every fallible entry point returns, and how a [`tokengate::Error`]
//! maps onto it.

use tokengate::Error;

/// What a call did. `TOKENGATE_RESULT_OK` is success; every other value is a failure whose details
/// (`tokengate_last_error()`) are recorded for the calling thread.
///
/// Values are explicit and never reused: a removed code leaves a gap. Codes below 100 are about how
/// the API was called; codes from 100 on come from the client itself.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tokengate_result {
    /// Success.
    Ok = 0,
    /// A pointer argument that must not be NULL was NULL.
    NullArgument = 1,
    /// An argument is not valid: not UTF-8, an unknown HTTP method, malformed JSON configuration,
    /// a body pointer that is NULL with a non-zero length, ...
    InvalidArgument = 2,
    /// tokengate panicked inside the call (a bug). The panic was caught; nothing crossed into C.
    Panic = 3,
    /// The response has no header of that name.
    NotFound = 4,
    /// A tokengate callback tried to register or unregister a callback (of any client).
    InCallback = 5,
    /// No usable token without a new login: the refresh was refused permanently, or there is no
    /// token and nothing to refresh with. Requests fail fast (no network) until
    /// `tokengate_client_set_token()`.
    LoginRequired = 100,
    /// A refresh failed for a reason that may pass (network, 5xx, 429); it is retried after a
    /// backoff.
    RefreshFailed = 101,
    /// This thread waited longer than the refresh timeout for another thread's refresh.
    RefreshTimeout = 102,
    /// The refresher panicked; the next call tries again.
    RefresherPanicked = 103,
    /// The request itself failed: connect, timeout, protocol error, body too large.
    Transport = 104,
    /// A URL (base URL, token URL or request path) is not usable.
    InvalidUrl = 105,
    /// A request header name or value is not valid HTTP.
    InvalidHeader = 106,
    /// The access token cannot be sent in an HTTP header.
    InvalidToken = 107,
    /// The configuration cannot work (e.g. a plain-http token URL off loopback).
    Config = 108,
    /// A failure of a kind this version of the C ABI has no code for; see the message.
    Other = 199,
}

impl tokengate_result {
    /// The code for a client error.
    pub(crate) fn of(error: &Error) -> tokengate_result {
        match error {
            Error::LoginRequired(_) => tokengate_result::LoginRequired,
            Error::Refresh(_) => tokengate_result::RefreshFailed,
            Error::RefreshTimeout(_) => tokengate_result::RefreshTimeout,
            Error::RefresherPanicked => tokengate_result::RefresherPanicked,
            Error::Transport(_) => tokengate_result::Transport,
            Error::InvalidUrl(_) => tokengate_result::InvalidUrl,
            Error::InvalidHeader(_) => tokengate_result::InvalidHeader,
            Error::InvalidToken => tokengate_result::InvalidToken,
            Error::Config(_) => tokengate_result::Config,
            _ => tokengate_result::Other,
        }
    }
}
