//! Client non-INVITE transaction (RFC 3261 §17.1.2).

use std::time::{Duration, Instant};

use super::{backoff, Core, Event, TransactionKey};
use crate::error::{Error, Result};
use crate::message::{Message, Method, Request};
use crate::timer::{Timer, TimerConfig};

/// States of a client non-INVITE transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    Trying,
    Proceeding,
    /// A final response arrived; retransmissions are absorbed until Timer K.
    Completed,
    Terminated,
}

/// A client non-INVITE transaction (REGISTER, OPTIONS, BYE, CANCEL, ...): retransmits on
/// unreliable transports (Timer E, doubling up to T2), times out with Timer F.
#[derive(Debug)]
pub struct ClientNonInvite {
    core: Core,
    state: ClientNonInviteState,
    key: TransactionKey,
    request: Request,
    interval: Duration,
}

impl ClientNonInvite {
    /// Starts the transaction at `now`: the request is queued for sending at once.
    /// INVITE and ACK are refused (ACK has no transaction).
    pub fn new(
        now: Instant,
        request: Request,
        config: TimerConfig,
        reliable: bool,
    ) -> Result<ClientNonInvite> {
        if matches!(request.method, Method::Invite | Method::Ack) {
            return Err(Error::InvalidMethod);
        }
        request.validate()?;
        let key = TransactionKey::client(&request)?;
        let mut core = Core::new(config, reliable);
        core.send(request.clone());
        core.arm(Timer::F, now, config.timeout());
        if !reliable {
            core.arm(Timer::E, now, config.t1);
        }
        Ok(ClientNonInvite {
            core,
            state: ClientNonInviteState::Trying,
            key,
            request,
            interval: config.t1,
        })
    }

    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientNonInviteState::Terminated
    }

    /// Feeds a received message. Requests and responses of other transactions are ignored.
    pub fn handle_message(&mut self, now: Instant, msg: Message) {
        let Message::Response(resp) = msg else {
            return;
        };
        if TransactionKey::for_response(&resp).as_ref() != Ok(&self.key) {
            return;
        }
        use ClientNonInviteState::*;
        match (self.state, resp.is_provisional()) {
            (Trying | Proceeding, true) => {
                self.state = Proceeding;
                self.core.emit(Event::Response(resp));
            }
            (Trying | Proceeding, false) => {
                self.state = Completed;
                self.core.timers.stop(Timer::E);
                self.core.timers.stop(Timer::F);
                self.core.emit(Event::Response(resp));
                let t4 = self.core.config.t4;
                if self.core.wait_or_terminate(Timer::K, now, t4) {
                    self.state = Terminated;
                }
            }
            _ => {}
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ClientNonInviteState::*;
        while let Some(timer) = self.core.timers.pop_expired(now) {
            match (timer, self.state) {
                (Timer::E, Trying) => {
                    self.core.send(self.request.clone());
                    self.interval = backoff(self.interval, Some(self.core.config.t2));
                    self.core.arm(Timer::E, now, self.interval);
                }
                (Timer::E, Proceeding) => {
                    self.core.send(self.request.clone());
                    let t2 = self.core.config.t2;
                    self.core.arm(Timer::E, now, t2);
                }
                (Timer::F, Trying | Proceeding) => {
                    self.core.emit(Event::Timeout(Timer::F));
                    self.terminate();
                }
                (Timer::K, Completed) => self.terminate(),
                _ => {}
            }
        }
    }

    /// The driver could not send the request.
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != ClientNonInviteState::Terminated {
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
        self.state = ClientNonInviteState::Terminated;
        self.core.terminate();
    }
}
