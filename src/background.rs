//! The optional background refresher: a thread that renews the token before anybody needs it.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded, select};

use crate::events::Event;
use crate::gate::Gate;

/// The background refresher: one thread per client that sleeps until the token's advisory window
/// opens and refreshes it through the gate. Dropping this handle (when the last clone of its client
/// is dropped) stops the thread and joins it.
pub(crate) struct BackgroundRefresher {
    shutdown: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundRefresher {
    pub(crate) fn start(gate: Gate) -> std::io::Result<BackgroundRefresher> {
        let (shutdown_tx, shutdown_rx) = bounded::<()>(0);
        let events = gate.events();
        let thread = std::thread::Builder::new()
            .name("tokengate-bg".into())
            .spawn(move || run(&gate, &shutdown_rx, events.receiver()))?;
        Ok(BackgroundRefresher {
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }
}

fn run(gate: &Gate, shutdown: &Receiver<()>, events: &Receiver<Event>) {
    loop {
        let wait = gate.background_nap();
        select! {
            recv(shutdown) -> _ => return,
            // Any change of token or failure moves the schedule: look again.
            recv(events) -> ev => if ev.is_err() { return },
            default(wait) => gate.refresh_ahead(),
        }
    }
}

impl Drop for BackgroundRefresher {
    fn drop(&mut self) {
        // Disconnecting the channel wakes the thread; an in-flight refresh finishes first (it is
        // bounded by the refresher's own timeouts).
        drop(self.shutdown.take());
        if let Some(t) = self.thread.take() {
            // A callback running on the background thread may hold the last client clone; a thread
            // cannot join itself, and it is about to return anyway.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}
