//! Server non-INVITE transaction (RFC 3261 §17.2.2).

use std::time::Instant;

use super::{Core, Event, TransactionKey};
use crate::error::{Error, Result};
use crate::message::{Message, Method, Request, Response};
use crate::timer::{Timer, TimerConfig};

/// States of a server non-INVITE transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    Trying,
    Proceeding,
    /// A final response was sent; request retransmissions get it again until Timer J.
    Completed,
    Terminated,
}

/// A server non-INVITE transaction: absorbs request retransmissions, answering them with the
/// last response sent.
#[derive(Debug)]
pub struct ServerNonInvite {
    core: Core,
    state: ServerNonInviteState,
    key: TransactionKey,
    request: Request,
    last_response: Option<Response>,
}

impl ServerNonInvite {
    /// Creates the transaction for a received non-INVITE request (not ACK).
    pub fn new(
        _now: Instant,
        request: Request,
        config: TimerConfig,
        reliable: bool,
    ) -> Result<ServerNonInvite> {
        if matches!(request.method, Method::Invite | Method::Ack) {
            return Err(Error::InvalidMethod);
        }
        request.validate()?;
        let key = TransactionKey::server(&request)?;
        Ok(ServerNonInvite {
            core: Core::new(config, reliable),
            state: ServerNonInviteState::Trying,
            key,
            request,
            last_response: None,
        })
    }

    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerNonInviteState::Terminated
    }

    /// Feeds a received request; a retransmission gets the last response again.
    pub fn handle_message(&mut self, _now: Instant, msg: Message) {
        let Message::Request(req) = msg else {
            return;
        };
        if TransactionKey::server(&req).as_ref() != Ok(&self.key) {
            return;
        }
        if matches!(
            self.state,
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed
        ) {
            if let Some(resp) = &self.last_response {
                self.core.send(resp.clone());
            }
        }
    }

    /// Sends a response from the transaction user.
    pub fn send_response(&mut self, now: Instant, resp: Response) -> Result<()> {
        use ServerNonInviteState::*;
        match (self.state, resp.is_provisional()) {
            (Trying | Proceeding, true) => self.state = Proceeding,
            (Trying | Proceeding, false) => self.state = Completed,
            (state, _) => {
                return Err(Error::InvalidState {
                    action: "send a response",
                    state: match state {
                        Completed => "Completed",
                        _ => "Terminated",
                    },
                })
            }
        }
        self.core.send(resp.clone());
        self.last_response = Some(resp);
        if self.state == Completed {
            let wait = self.core.config.timeout();
            if self.core.wait_or_terminate(Timer::J, now, wait) {
                self.state = Terminated;
            }
        }
        Ok(())
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.core.timers.pop_expired(now) {
            if timer == Timer::J && self.state == ServerNonInviteState::Completed {
                self.terminate();
            }
        }
    }

    /// The driver could not send a response.
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != ServerNonInviteState::Terminated {
            self.core.emit(Event::TransportError);
            self.terminate();
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.core.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.poll_event()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    fn terminate(&mut self) {
        self.state = ServerNonInviteState::Terminated;
        self.core.terminate();
    }
}
