//! SIP transactions (RFC 3261 §17 with the RFC 6026 fixes), sans-IO.
//!
//! Four machines share one shape, borrowed from quinn-proto: feed input with
//! `handle_message(now, msg)` / `handle_timeout(now)` (and `send_response` on the server side),
//! then drain `poll_transmit()` (messages to put on the wire, in order), `poll_event()` (what the
//! transaction user must learn) and ask `poll_timeout()` when to call back. Nothing here reads a
//! clock or touches a socket; the driver owns both. The driver also chooses the destination:
//! client transactions send to the resolved next hop, server ones to the response address of
//! the top Via (RFC 3261 §18.2.2 / RFC 3581).
//!
//! Retransmissions (Timers A, E, G) run only when the transport is unreliable (`reliable ==
//! false`); the wait timers D, I, J, K are zero on reliable transports, so those machines
//! terminate at once.

mod client_invite;
mod client_non_invite;
mod key;
mod server_invite;
mod server_non_invite;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use client_invite::{ClientInvite, ClientInviteState};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use key::{TransactionKey, MAGIC_COOKIE};
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};

use crate::message::{Message, Request, Response};
use crate::timer::{Timer, TimerConfig, TimerTable};

/// What a transaction tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Client transactions: a response for the user (each provisional, the first final one,
    /// and on an INVITE every 2xx while Accepted, RFC 6026 §7.2).
    Response(Response),
    /// Server INVITE: an ACK matching the transaction while Accepted, passed up (RFC 6026 §7.1).
    Ack(Request),
    /// The transaction gave up: Timer B or F (no final response) or H (no ACK for our final).
    Timeout(Timer),
    /// The driver reported that sending failed (`handle_transport_error`).
    TransportError,
    /// The transaction is over; the owner may drop it.
    Terminated,
}

/// The plumbing every machine shares: timers, output queues and termination.
#[derive(Debug)]
struct Core {
    config: TimerConfig,
    reliable: bool,
    timers: TimerTable,
    transmits: VecDeque<Message>,
    events: VecDeque<Event>,
    terminated: bool,
}

impl Core {
    fn new(config: TimerConfig, reliable: bool) -> Core {
        Core {
            config,
            reliable,
            timers: TimerTable::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            terminated: false,
        }
    }

    fn send(&mut self, msg: impl Into<Message>) {
        self.transmits.push_back(msg.into());
    }

    fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    fn arm(&mut self, timer: Timer, now: Instant, after: Duration) {
        self.timers.set(timer, now + after);
    }

    /// Arms a wait timer on unreliable transports; on reliable ones its value is zero, so the
    /// transaction terminates right away. Returns true when terminated.
    fn wait_or_terminate(&mut self, timer: Timer, now: Instant, after: Duration) -> bool {
        if self.reliable {
            self.terminate();
            true
        } else {
            self.arm(timer, now, after);
            false
        }
    }

    fn terminate(&mut self) {
        if !self.terminated {
            self.terminated = true;
            self.timers.clear();
            self.events.push_back(Event::Terminated);
        }
    }

    fn poll_transmit(&mut self) -> Option<Message> {
        self.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.terminated {
            None
        } else {
            self.timers.next_deadline()
        }
    }
}

/// Doubles a retransmission interval, capped at `cap` when given.
fn backoff(interval: Duration, cap: Option<Duration>) -> Duration {
    let doubled = interval.saturating_mul(2);
    match cap {
        Some(cap) => doubled.min(cap),
        None => doubled,
    }
}
