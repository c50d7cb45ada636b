//! Client INVITE transaction (RFC 3261 §17.1.1, Accepted state from RFC 6026 §7.2).

use std::time::{Duration, Instant};

use super::{backoff, Core, Event, TransactionKey};
use crate::error::{Error, Result};
use crate::headers::HeaderName;
use crate::message::{Message, Method, Request, Response};
use crate::timer::{Timer, TimerConfig};

/// States of a client INVITE transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    Calling,
    Proceeding,
    /// A 2xx arrived; further 2xx are passed up until Timer M (RFC 6026).
    Accepted,
    /// A 3xx-6xx arrived and was ACKed; retransmissions are re-ACKed until Timer D.
    Completed,
    Terminated,
}

/// A client INVITE transaction: sends the INVITE, retransmits it on unreliable transports
/// (Timer A), times out (Timer B), ACKs non-2xx finals itself and passes responses up.
#[derive(Debug)]
pub struct ClientInvite {
    core: Core,
    state: ClientInviteState,
    key: TransactionKey,
    request: Request,
    interval: Duration,
    ack: Option<Request>,
}

impl ClientInvite {
    /// Starts the transaction at `now`: the INVITE is queued for sending at once.
    pub fn new(
        now: Instant,
        request: Request,
        config: TimerConfig,
        reliable: bool,
    ) -> Result<ClientInvite> {
        if request.method != Method::Invite {
            return Err(Error::InvalidMethod);
        }
        request.validate()?;
        let key = TransactionKey::client(&request)?;
        let mut core = Core::new(config, reliable);
        core.send(request.clone());
        core.arm(Timer::B, now, config.timeout());
        if !reliable {
            core.arm(Timer::A, now, config.t1);
        }
        Ok(ClientInvite {
            core,
            state: ClientInviteState::Calling,
            key,
            request,
            interval: config.t1,
            ack: None,
        })
    }

    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientInviteState::Terminated
    }

    /// Feeds a received message. Requests and responses of other transactions are ignored.
    pub fn handle_message(&mut self, now: Instant, msg: Message) {
        let Message::Response(resp) = msg else {
            return;
        };
        if TransactionKey::for_response(&resp).as_ref() != Ok(&self.key) {
            return;
        }
        use ClientInviteState::*;
        match (self.state, resp.status) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.core.timers.stop(Timer::A);
                self.core.timers.stop(Timer::B);
                self.core.emit(Event::Response(resp));
            }
            (Calling | Proceeding, 200..=299) => {
                self.state = Accepted;
                self.core.timers.stop(Timer::A);
                self.core.timers.stop(Timer::B);
                self.core.arm(Timer::M, now, self.core.config.timeout());
                self.core.emit(Event::Response(resp));
            }
            (Calling | Proceeding, _) => {
                self.state = Completed;
                self.core.timers.stop(Timer::A);
                self.core.timers.stop(Timer::B);
                let ack = build_ack(&self.request, &resp);
                self.core.send(ack.clone());
                self.ack = Some(ack);
                self.core.emit(Event::Response(resp));
                let wait = self.core.config.timer_d();
                if self.core.wait_or_terminate(Timer::D, now, wait) {
                    self.state = Terminated;
                }
            }
            (Accepted, 200..=299) => self.core.emit(Event::Response(resp)),
            (Completed, 300..=699) => {
                if let Some(ack) = &self.ack {
                    self.core.send(ack.clone());
                }
            }
            _ => {}
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.core.timers.pop_expired(now) {
            match (timer, self.state) {
                (Timer::A, ClientInviteState::Calling) => {
                    self.core.send(self.request.clone());
                    self.interval = backoff(self.interval, None);
                    self.core.arm(Timer::A, now, self.interval);
                }
                (Timer::B, ClientInviteState::Calling) => {
                    self.core.emit(Event::Timeout(Timer::B));
                    self.terminate();
                }
                (Timer::D, ClientInviteState::Completed)
                | (Timer::M, ClientInviteState::Accepted) => self.terminate(),
                _ => {}
            }
        }
    }

    /// The driver could not send one of our messages.
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != ClientInviteState::Terminated {
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
        self.state = ClientInviteState::Terminated;
        self.core.terminate();
    }
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same Request-URI, Call-ID, From,
/// CSeq number and top Via as the INVITE, To from the response, the INVITE's Route set.
pub(crate) fn build_ack(invite: &Request, resp: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    let h = &invite.headers;
    if let Some(via) = h.values("Via").next() {
        ack.headers.push(HeaderName::VIA, via);
    }
    for route in h.get_all("Route") {
        ack.headers.push(HeaderName::ROUTE, route);
    }
    ack.headers.push(HeaderName::MAX_FORWARDS, "70");
    if let Some(from) = h.get("From") {
        ack.headers.push(HeaderName::FROM, from);
    }
    if let Some(to) = resp.headers.get("To").or_else(|| h.get("To")) {
        ack.headers.push(HeaderName::TO, to);
    }
    if let Some(call_id) = h.get("Call-ID") {
        ack.headers.push(HeaderName::CALL_ID, call_id);
    }
    if let Ok(cseq) = h.cseq() {
        ack.headers
            .push(HeaderName::CSEQ, format!("{} {}", cseq.seq, Method::Ack));
    }
    ack
}
