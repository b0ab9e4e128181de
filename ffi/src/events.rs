//! `tokengate_event`: what happened to a client's token, as the event callback sees it, and the
//! thread that delivers the client's events to it.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokengate::{Event, Events};

use crate::boundary::Failure;
use crate::callbacks::Callbacks;
use crate::error::tokengate_error;

/// The kind of a `tokengate_event`: one of the `TOKENGATE_EVENT_*` values. New kinds may be added;
/// ignore the ones you do not know.
#[allow(non_camel_case_types)]
pub type tokengate_event_kind = u32;

/// A refresh produced a new token (`generation` is its generation, `expires_in_ms` its lifetime).
pub const TOKENGATE_EVENT_REFRESHED: tokengate_event_kind = 1;
/// A refresh failed transiently; the client backs off (`retry_in_ms`: when it tries again at the
/// earliest, -1 when unknown; `error`: what went wrong).
pub const TOKENGATE_EVENT_REFRESH_FAILED: tokengate_event_kind = 2;
/// A refresh failed permanently: the user must log in again (`error` says why).
pub const TOKENGATE_EVENT_LOGIN_REQUIRED: tokengate_event_kind = 3;
/// A token was installed with `tokengate_client_set_token()`.
pub const TOKENGATE_EVENT_TOKEN_SET: tokengate_event_kind = 4;
/// Instead of refreshing, the client took the newer token in the token file: another client or
/// process had already refreshed.
pub const TOKENGATE_EVENT_ADOPTED: tokengate_event_kind = 5;
/// A refreshed token could not be written to the token file (`error` says why); it is used anyway.
pub const TOKENGATE_EVENT_STORE_FAILED: tokengate_event_kind = 6;
/// A token was installed with `tokengate_client_login()` (`generation` is its generation).
pub const TOKENGATE_EVENT_LOGGED_IN: tokengate_event_kind = 7;
/// `tokengate_client_logout()` ended the session here and in the token file (`generation` is the
/// generation the client moved to: a refresh in flight from before is discarded).
pub const TOKENGATE_EVENT_LOGGED_OUT: tokengate_event_kind = 8;
/// An event this version of the C ABI has no kind for.
pub const TOKENGATE_EVENT_OTHER: tokengate_event_kind = 99;

/// Something that happened to the client's token, shown to the event callback. It carries no
/// secrets.
///
/// The library allocates it and lends it to the callback for the duration of the call. Fields are
/// only ever added at the end, so a program built against an older header reads the fields it
/// knows; do not keep the pointer.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct tokengate_event {
    /// What happened: a `TOKENGATE_EVENT_*` value.
    pub kind: tokengate_event_kind,
    /// The generation of the token the event is about (counts the tokens the client has held:
    /// 1, 2, ...); 0 for events about a failure.
    pub generation: u64,
    /// `TOKENGATE_EVENT_REFRESH_FAILED`: milliseconds until the next attempt at the earliest; -1
    /// when none is planned or for other kinds.
    pub retry_in_ms: i64,
    /// The lifetime of the token the event is about, in milliseconds; -1 when unknown or for
    /// events about a failure.
    pub expires_in_ms: i64,
    /// What went wrong (`REFRESH_FAILED`, `LOGIN_REQUIRED`, `STORE_FAILED`), borrowed for the
    /// call; NULL for other kinds.
    pub error: *const tokengate_error,
}

fn ms(d: Option<Duration>) -> i64 {
    d.map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What the callback is handed: the event as this build lays it out.
#[cfg(not(feature = "abi-probe"))]
type Wire = tokengate_event;
#[cfg(feature = "abi-probe")]
type Wire = crate::abi_probe::EventNext;

#[cfg(not(feature = "abi-probe"))]
fn wire(event: tokengate_event) -> Wire {
    event
}
#[cfg(feature = "abi-probe")]
fn wire(event: tokengate_event) -> Wire {
    crate::abi_probe::EventNext::new(event)
}

/// A `tokengate_event` with the error it points to.
pub(crate) struct EventView {
    event: Wire,
    _error: Option<Box<tokengate_error>>,
}

impl EventView {
    pub(crate) fn new(event: &Event) -> EventView {
        let error =
            |e: &tokengate::Error| Some(Box::new(tokengate_error::from(Failure::from(e.clone()))));
        let (kind, generation, retry_in, expires_in, error) = match event {
            Event::Refreshed {
                generation,
                expires_in,
                ..
            } => (
                TOKENGATE_EVENT_REFRESHED,
                *generation,
                None,
                *expires_in,
                None,
            ),
            Event::RefreshFailed { error: e, retry_in } => {
                (TOKENGATE_EVENT_REFRESH_FAILED, 0, *retry_in, None, error(e))
            }
            Event::LoginRequired { error: e } => {
                (TOKENGATE_EVENT_LOGIN_REQUIRED, 0, None, None, error(e))
            }
            Event::TokenSet {
                generation,
                expires_in,
            } => (
                TOKENGATE_EVENT_TOKEN_SET,
                *generation,
                None,
                *expires_in,
                None,
            ),
            Event::Adopted {
                generation,
                expires_in,
            } => (
                TOKENGATE_EVENT_ADOPTED,
                *generation,
                None,
                *expires_in,
                None,
            ),
            Event::StoreFailed { error: e } => {
                (TOKENGATE_EVENT_STORE_FAILED, 0, None, None, error(e))
            }
            Event::LoggedIn {
                generation,
                expires_in,
            } => (
                TOKENGATE_EVENT_LOGGED_IN,
                *generation,
                None,
                *expires_in,
                None,
            ),
            Event::LoggedOut { generation } => {
                (TOKENGATE_EVENT_LOGGED_OUT, *generation, None, None, None)
            }
            _ => (TOKENGATE_EVENT_OTHER, 0, None, None, None),
        };
        EventView {
            event: wire(tokengate_event {
                kind,
                generation,
                retry_in_ms: ms(retry_in),
                expires_in_ms: ms(expires_in),
                error: error
                    .as_deref()
                    .map_or(std::ptr::null(), std::ptr::from_ref),
            }),
            _error: error,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const tokengate_event {
        std::ptr::from_ref(&self.event).cast()
    }
}

/// The thread that hands a client's events to its event callback, in order. It ends when the
/// client's token state is gone (every tokengate thread of the client has finished), and is
/// joined by `tokengate_client_free()`.
pub(crate) struct Dispatcher {
    thread: Option<JoinHandle<()>>,
}

impl Dispatcher {
    pub(crate) fn start(events: Events, callbacks: Arc<Callbacks>) -> std::io::Result<Dispatcher> {
        let thread = std::thread::Builder::new()
            .name("tokengate-events".into())
            .spawn(move || {
                for event in events {
                    callbacks.event(&event);
                }
            })?;
        Ok(Dispatcher {
            thread: Some(thread),
        })
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
