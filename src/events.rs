//! Events ([`Event`]) and the gate's subscriber list: crossbeam channels that never block the gate.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use parking_lot::Mutex;

use crate::error::Error;

/// How many undelivered events a subscriber's channel holds. When it is full, new events for that
/// subscriber are dropped (and counted in [`Stats::events_dropped`](crate::Stats::events_dropped)):
/// a slow subscriber never stalls a request.
pub const EVENT_BUFFER: usize = 64;

/// Something that happened to the token. Carries no secrets.
///
/// Subscribe with [`Client::events`](crate::Client::events) or [`Gate::events`](crate::Gate::events).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// A refresh produced a new token.
    Refreshed {
        /// The new token's generation (see [`Lease::generation`](crate::Lease::generation)).
        generation: u64,
        /// Lifetime of the new token, when known.
        expires_in: Option<Duration>,
        /// Whether a rejection (rather than the approaching expiry) triggered the refresh.
        reactive: bool,
        /// How long the refresh took.
        took: Duration,
    },
    /// A refresh failed transiently; the gate backs off.
    RefreshFailed {
        /// What went wrong (shared with the threads that waited for the refresh).
        error: Error,
        /// When the gate will try again at the earliest, if it backs off.
        retry_in: Option<Duration>,
    },
    /// A refresh failed permanently: the user must log in again (see
    /// [`Error::LoginRequired`]).
    LoginRequired {
        /// The error every request now fails with until a new token is set.
        error: Error,
    },
    /// A token was installed with [`Gate::set_token`](crate::Gate::set_token) / [`Client::set_token`](crate::Client::set_token).
    TokenSet {
        /// The token's generation.
        generation: u64,
        /// Lifetime of the token, when known.
        expires_in: Option<Duration>,
    },
    /// Instead of refreshing, the gate took the newer token its [`TokenStore`](crate::TokenStore)
    /// held: another process (or another gate on the same store) had already refreshed.
    Adopted {
        /// The token's generation in this gate.
        generation: u64,
        /// Lifetime of the token, when known.
        expires_in: Option<Duration>,
    },
    /// A refreshed token could not be saved to the [`TokenStore`](crate::TokenStore). The token is
    /// used anyway, but other processes (and the next run) will not see it.
    StoreFailed {
        /// The [`Error::Store`] the save failed with.
        error: Error,
    },
    /// A login's token was installed with [`Gate::login`](crate::Gate::login) /
    /// [`Client::login`](crate::Client::login).
    LoggedIn {
        /// The token's generation.
        generation: u64,
        /// Lifetime of the token, when known.
        expires_in: Option<Duration>,
    },
    /// The session ended with [`Gate::logout`](crate::Gate::logout) /
    /// [`Client::logout`](crate::Client::logout): the token was forgotten here and in the store
    /// (and revoked at the server, when the refresher knows how). Requests fail with
    /// [`Error::LoginRequired`] until the next login.
    LoggedOut {
        /// The generation the gate moved to (a refresh in flight from before is discarded).
        generation: u64,
    },
}

/// A subscription to a gate's [`Event`]s, from [`Client::events`](crate::Client::events) or
/// [`Gate::events`](crate::Gate::events).
///
/// It holds up to [`EVENT_BUFFER`] undelivered events; past that, new events are dropped for this
/// subscriber (never blocking the gate). Iterating blocks for the next event and ends once every
/// client and gate handle is gone and the buffered events are read.
///
/// ```
/// use std::time::Duration;
/// use tokengate::{Event, Gate, Token};
///
/// let gate = Gate::builder().build()?;
/// let events = gate.events();
/// gate.set_token(Token::new("ACCESS"))?;
/// assert!(matches!(events.try_recv(), Some(Event::TokenSet { .. })));
/// assert!(events.recv_timeout(Duration::from_millis(1)).is_none());
/// # Ok::<_, tokengate::Error>(())
/// ```
pub struct Events {
    rx: Receiver<Event>,
    /// Dead once the gate's subscriber list (and with it every sender) is gone.
    gate: Weak<()>,
}

impl Events {
    /// Waits for the next event; `None` once the gate is gone and every buffered event was read.
    pub fn recv(&self) -> Option<Event> {
        self.rx.recv().ok()
    }

    /// Waits at most `timeout` for the next event; `None` on timeout or once the gate is gone.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next buffered event, without waiting.
    pub fn try_recv(&self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// The buffered events, without waiting.
    pub fn try_iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.rx.try_iter()
    }

    /// The channel itself, for `select!` inside the crate.
    pub(crate) fn receiver(&self) -> &Receiver<Event> {
        &self.rx
    }

    /// Whether no more events can come: the gate is gone and every buffered event was read.
    pub fn is_closed(&self) -> bool {
        self.gate.strong_count() == 0 && self.rx.is_empty()
    }

    /// How many events are buffered.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether no event is buffered.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

impl Iterator for Events {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.recv()
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("buffered", &self.len())
            .finish()
    }
}

/// The gate's list of subscribers. Sending is `try_send`: a full channel drops the event for that
/// subscriber, a disconnected one is pruned.
#[derive(Default)]
pub(crate) struct Subscribers {
    senders: Mutex<Vec<Sender<Event>>>,
    alive: Arc<()>,
}

impl Subscribers {
    pub(crate) fn subscribe(&self) -> Events {
        let (tx, rx) = bounded(EVENT_BUFFER);
        self.senders.lock().push(tx);
        Events {
            rx,
            gate: Arc::downgrade(&self.alive),
        }
    }

    /// Delivers `event` to every live subscriber; returns how many could not take it (full).
    pub(crate) fn emit(&self, event: Event) -> u64 {
        let mut senders = self.senders.lock();
        if senders.is_empty() {
            return 0;
        }
        let mut dropped = 0;
        senders.retain(|tx| match tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                dropped += 1;
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        });
        dropped
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.senders.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_subscribers_drop_events_and_dead_ones_are_pruned() {
        let subs = Subscribers::default();
        let slow = subs.subscribe();
        let gone = subs.subscribe();
        drop(gone);
        let ev = || Event::TokenSet {
            generation: 1,
            expires_in: None,
        };
        let mut dropped = 0;
        for _ in 0..EVENT_BUFFER + 10 {
            dropped += subs.emit(ev());
        }
        assert_eq!(
            dropped, 10,
            "the slow subscriber lost only what did not fit"
        );
        assert_eq!(subs.len(), 1, "the dropped receiver was pruned");
        assert_eq!(slow.len(), EVENT_BUFFER);
        assert!(!slow.is_closed());
        drop(subs);
        assert!(!slow.is_closed(), "buffered events are still to be read");
        assert_eq!(slow.try_iter().count(), EVENT_BUFFER);
        assert!(slow.is_closed());
        assert!(slow.recv().is_none());
    }
}
