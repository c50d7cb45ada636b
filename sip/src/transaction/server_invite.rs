//! Server INVITE transaction (RFC 3261 §17.2.1, Accepted state from RFC 6026 §7.1).

use std::time::{Duration, Instant};

use super::{backoff, Core, Event, TransactionKey};
use crate::error::{Error, Result};
use crate::message::{Message, Method, Request, Response};
use crate::timer::{Timer, TimerConfig};

/// States of a server INVITE transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    Proceeding,
    /// A 2xx was sent; the user retransmits it, matching ACKs go up, until Timer L (RFC 6026).
    Accepted,
    /// A 3xx-6xx was sent; it is retransmitted (Timer G) until the ACK or Timer H.
    Completed,
    /// The ACK arrived; ACK retransmissions are absorbed until Timer I.
    Confirmed,
    Terminated,
}

/// A server INVITE transaction. It answers `100 Trying` at once, retransmits the last
/// provisional response on INVITE retransmissions, and runs the non-2xx final response
/// retransmission and ACK wait itself.
#[derive(Debug)]
pub struct ServerInvite {
    core: Core,
    state: ServerInviteState,
    key: TransactionKey,
    request: Request,
    last_response: Response,
    interval: Duration,
}

impl ServerInvite {
    /// Creates the transaction for a received INVITE and queues `100 Trying`.
    pub fn new(
        _now: Instant,
        request: Request,
        config: TimerConfig,
        reliable: bool,
    ) -> Result<ServerInvite> {
        if request.method != Method::Invite {
            return Err(Error::InvalidMethod);
        }
        request.validate()?;
        let key = TransactionKey::server(&request)?;
        let mut core = Core::new(config, reliable);
        let trying = Response::from_request(&request, 100, "Trying");
        core.send(trying.clone());
        Ok(ServerInvite {
            core,
            state: ServerInviteState::Proceeding,
            key,
            request,
            last_response: trying,
            interval: config.t1,
        })
    }

    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerInviteState::Terminated
    }

    /// Feeds a received request: an INVITE retransmission or an ACK. Others are ignored.
    pub fn handle_message(&mut self, now: Instant, msg: Message) {
        let Message::Request(req) = msg else {
            return;
        };
        if TransactionKey::server(&req).as_ref() != Ok(&self.key) {
            return;
        }
        use ServerInviteState::*;
        match (&req.method, self.state) {
            (Method::Invite, Proceeding | Completed) => {
                self.core.send(self.last_response.clone());
            }
            (Method::Ack, Completed) => {
                self.state = Confirmed;
                self.core.timers.stop(Timer::G);
                self.core.timers.stop(Timer::H);
                let t4 = self.core.config.t4;
                if self.core.wait_or_terminate(Timer::I, now, t4) {
                    self.state = Terminated;
                }
            }
            (Method::Ack, Accepted) => self.core.emit(Event::Ack(req)),
            _ => {}
        }
    }

    /// Sends a response from the transaction user.
    pub fn send_response(&mut self, now: Instant, resp: Response) -> Result<()> {
        use ServerInviteState::*;
        let config = self.core.config;
        match (self.state, resp.status) {
            (Proceeding, 100..=199) => {}
            (Proceeding, 200..=299) => {
                self.state = Accepted;
                self.core.arm(Timer::L, now, config.timeout());
            }
            (Proceeding, 300..=699) => {
                self.state = Completed;
                self.core.arm(Timer::H, now, config.timeout());
                if !self.core.reliable {
                    self.core.arm(Timer::G, now, config.t1);
                }
            }
            // RFC 6026: 2xx retransmissions from the user pass through while Accepted.
            (Accepted, 200..=299) => {}
            (state, _) => {
                return Err(Error::InvalidState {
                    action: "send this response",
                    state: state_name(state),
                })
            }
        }
        self.core.send(resp.clone());
        self.last_response = resp;
        Ok(())
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ServerInviteState::*;
        while let Some(timer) = self.core.timers.pop_expired(now) {
            match (timer, self.state) {
                (Timer::G, Completed) => {
                    self.core.send(self.last_response.clone());
                    self.interval = backoff(self.interval, Some(self.core.config.t2));
                    self.core.arm(Timer::G, now, self.interval);
                }
                (Timer::H, Completed) => {
                    self.core.emit(Event::Timeout(Timer::H));
                    self.terminate();
                }
                (Timer::I, Confirmed) | (Timer::L, Accepted) => self.terminate(),
                _ => {}
            }
        }
    }

    /// The driver could not send a response.
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != ServerInviteState::Terminated {
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
        self.state = ServerInviteState::Terminated;
        self.core.terminate();
    }
}

fn state_name(state: ServerInviteState) -> &'static str {
    match state {
        ServerInviteState::Proceeding => "Proceeding",
        ServerInviteState::Accepted => "Accepted",
        ServerInviteState::Completed => "Completed",
        ServerInviteState::Confirmed => "Confirmed",
        ServerInviteState::Terminated => "Terminated",
    }
}
