//! The UAS side of one inbound call (RFC 3261 §12.1.1, §13.3, §15), sans-IO.
//!
//! An [`InboundCall`] is created from a received INVITE (it queues `100 Trying`), then the
//! user rings, accepts with an SDP answer or rejects. It retransmits its 2xx until the ACK
//! (T1 doubling to T2; after 64·T1 without ACK it sends BYE), answers CANCEL before the
//! answer with 200 + 487, BYE in the dialog with 200, other in-dialog requests with 200 (OPTIONS,
//! INFO, UPDATE) or 501, and sends BYE on hangup. Same shape as [`crate::Dialog`]:
//! `handle_message` / `handle_timeout`, then `poll_transmit` / `poll_event` / `poll_timeout`.
//! Responses go to the source of the request they answer (the driver keeps it); BYE goes to
//! the top Route or the caller's Contact.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::dialog::build::Leg;
use crate::dialog::IdSource;
use crate::error::{Error, Result};
use crate::headers::{HeaderName, NameAddr};
use crate::message::{Message, Method, Request, Response};
use crate::sdp::SessionDescription;
use crate::timer::TimerConfig;
use crate::transaction::{
    ClientNonInvite, Event as TxEvent, ServerInvite, ServerInviteState, ServerNonInvite,
    TransactionKey,
};

/// Our side of the call: where we are reached and how we send.
#[derive(Debug, Clone)]
pub struct InboundConfig {
    /// Our Contact URI (the caller sends in-dialog requests there).
    pub contact: String,
    pub transport: String,
    pub sent_by: String,
    pub timers: TimerConfig,
    pub reliable: bool,
    pub user_agent: Option<String>,
}

/// States of the inbound call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundState {
    /// Not answered yet.
    Proceeding,
    /// 2xx sent, waiting for the ACK.
    Accepted,
    /// The ACK arrived.
    Confirmed,
    /// We sent BYE.
    Terminating,
    Terminated,
}

/// Why an inbound call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundEnd {
    /// We answered 3xx–6xx.
    Rejected {
        status: u16,
    },
    /// The caller cancelled before the answer (we sent 487).
    Cancelled,
    RemoteBye,
    LocalBye,
    /// No ACK for our 2xx within 64·T1; we sent BYE.
    AckTimeout,
    /// Our BYE got no answer, or sending failed.
    Timeout,
}

/// What the inbound call tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundEvent {
    /// The ACK for our 2xx arrived: media may flow both ways.
    Confirmed,
    Terminated {
        reason: InboundEnd,
    },
}

#[derive(Debug)]
enum ServerTx {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

#[derive(Debug)]
struct Pending2xx {
    response: Response,
    interval: Duration,
    next: Instant,
    give_up: Instant,
}

/// One inbound call. See the module documentation.
pub struct InboundCall {
    config: InboundConfig,
    ids: Box<dyn IdSource + Send>,
    state: InboundState,
    leg: Leg,
    invite: ServerInvite,
    invite_seq: u32,
    remote_tag: Option<String>,
    offer: Option<SessionDescription>,
    remote_cseq: u32,
    pending_2xx: Option<Pending2xx>,
    bye: Option<ClientNonInvite>,
    servers: Vec<ServerTx>,
    transmits: VecDeque<Message>,
    events: VecDeque<InboundEvent>,
}

impl std::fmt::Debug for InboundCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundCall")
            .field("state", &self.state)
            .field("call_id", &self.leg.call_id)
            .finish_non_exhaustive()
    }
}

impl InboundCall {
    /// Takes a received out-of-dialog INVITE; queues `100 Trying`. An INVITE that does not
    /// validate is refused (the caller answers it 400).
    pub fn new(
        now: Instant,
        invite: Request,
        config: InboundConfig,
        mut ids: Box<dyn IdSource + Send>,
    ) -> Result<InboundCall> {
        let tx = ServerInvite::new(now, invite.clone(), config.timers, config.reliable)?;
        let h = &invite.headers;
        let mut local = h.to()?;
        if local.tag().is_some() {
            return Err(Error::InvalidHeader("To"));
        }
        local.set_tag(&ids.tag());
        let remote = h.from()?;
        let remote_tag = remote.tag().map(str::to_owned);
        let remote_target = h
            .contact()
            .ok()
            .and_then(|c| c.into_iter().next())
            .map_or_else(|| remote.uri.clone(), |c| c.uri);
        let route_set: Vec<NameAddr> = h.record_route().unwrap_or_default();
        let seq = h.cseq()?.seq;
        let offer = if invite.body.is_empty() {
            None
        } else {
            SessionDescription::parse(&invite.body).ok()
        };
        let leg = Leg {
            call_id: h.call_id()?.to_owned(),
            local,
            remote,
            local_cseq: 0,
            remote_target,
            route_set,
            contact: config.contact.clone(),
            via_transport: config.transport.clone(),
            via_sent_by: config.sent_by.clone(),
            user_agent: config.user_agent.clone(),
        };
        let mut call = InboundCall {
            config,
            ids,
            state: InboundState::Proceeding,
            leg,
            invite: tx,
            invite_seq: seq,
            remote_tag,
            offer,
            remote_cseq: seq,
            pending_2xx: None,
            bye: None,
            servers: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        call.drain(now);
        Ok(call)
    }

    pub fn state(&self) -> InboundState {
        self.state
    }

    pub fn call_id(&self) -> &str {
        &self.leg.call_id
    }

    /// Our To tag.
    pub fn local_tag(&self) -> &str {
        self.leg.local.tag().unwrap_or_default()
    }

    /// The caller's From tag.
    pub fn remote_tag(&self) -> Option<&str> {
        self.remote_tag.as_deref()
    }

    /// The INVITE as received.
    pub fn request(&self) -> &Request {
        self.invite.request()
    }

    /// The caller's SDP offer, when the INVITE carried a parseable one.
    pub fn offer(&self) -> Option<&SessionDescription> {
        self.offer.as_ref()
    }

    /// True once the call ended and every transaction is over: the owner may drop it.
    pub fn is_finished(&self) -> bool {
        self.state == InboundState::Terminated
            && matches!(
                self.invite.state(),
                ServerInviteState::Terminated | ServerInviteState::Accepted
            )
            && self.bye.as_ref().is_none_or(ClientNonInvite::is_terminated)
            && self.servers.iter().all(|s| match s {
                ServerTx::Invite(t) => t.is_terminated(),
                ServerTx::NonInvite(t) => t.is_terminated(),
            })
    }

    /// Sends `180 Ringing`.
    pub fn ring(&mut self, now: Instant) -> Result<()> {
        let resp = self.response(self.invite.request(), 180, "Ringing", true);
        self.invite.send_response(now, resp)?;
        self.drain(now);
        Ok(())
    }

    /// Answers `200 OK` with `sdp` (the answer to the offer, or our offer when the INVITE had
    /// none) and retransmits it until the ACK.
    pub fn accept(&mut self, now: Instant, sdp: Vec<u8>) -> Result<()> {
        if self.state != InboundState::Proceeding {
            return Err(Error::InvalidState {
                action: "accept",
                state: "answered",
            });
        }
        let mut resp = self.response(self.invite.request(), 200, "OK", true);
        for rr in self.invite.request().headers.get_all("Record-Route") {
            resp.headers.push(HeaderName::RECORD_ROUTE, rr);
        }
        resp.headers
            .push(HeaderName::CONTENT_TYPE, "application/sdp".to_owned());
        resp.body = sdp;
        self.invite.send_response(now, resp.clone())?;
        let t = self.config.timers;
        self.pending_2xx = Some(Pending2xx {
            response: resp,
            interval: t.t1,
            next: now + t.t1,
            give_up: now + t.timeout(),
        });
        self.state = InboundState::Accepted;
        self.drain(now);
        Ok(())
    }

    /// Refuses the call with a 3xx–6xx status.
    pub fn reject(&mut self, now: Instant, status: u16, reason: &str) -> Result<()> {
        if self.state != InboundState::Proceeding || !(300..=699).contains(&status) {
            return Err(Error::InvalidState {
                action: "reject",
                state: "answered",
            });
        }
        let resp = self.response(self.invite.request(), status, reason, false);
        self.invite.send_response(now, resp)?;
        self.terminate(InboundEnd::Rejected { status });
        self.drain(now);
        Ok(())
    }

    /// Ends the call: 603 Decline before the answer, BYE after it.
    pub fn hangup(&mut self, now: Instant) -> Result<()> {
        match self.state {
            InboundState::Proceeding => self.reject(now, 603, "Decline"),
            InboundState::Accepted | InboundState::Confirmed => {
                self.send_bye(now)?;
                self.drain(now);
                Ok(())
            }
            InboundState::Terminating | InboundState::Terminated => Ok(()),
        }
    }

    /// Feeds a received message of this call (same Call-ID and our tag, or the INVITE's
    /// retransmissions and CANCEL).
    pub fn handle_message(&mut self, now: Instant, msg: Message) {
        match msg {
            Message::Response(resp) => {
                if let Some(bye) = &mut self.bye {
                    bye.handle_message(now, Message::Response(resp));
                }
            }
            Message::Request(req) => self.on_request(now, req),
        }
        self.drain(now);
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.invite.handle_timeout(now);
        if let Some(bye) = &mut self.bye {
            bye.handle_timeout(now);
        }
        for s in &mut self.servers {
            match s {
                ServerTx::Invite(t) => t.handle_timeout(now),
                ServerTx::NonInvite(t) => t.handle_timeout(now),
            }
        }
        let mut give_up = false;
        if let Some(p) = &mut self.pending_2xx {
            if p.give_up <= now {
                give_up = true;
            } else if p.next <= now {
                if !self.config.reliable {
                    self.transmits
                        .push_back(Message::Response(p.response.clone()));
                }
                p.interval = (p.interval * 2).min(self.config.timers.t2);
                p.next = now + p.interval;
            }
        }
        if give_up {
            self.pending_2xx = None;
            // RFC 3261 §13.3.1.4: no ACK, so confirm and tear down.
            if self.send_bye(now).is_ok() {
                self.state = InboundState::Terminating;
            }
            self.terminate(InboundEnd::AckTimeout);
        }
        self.drain(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<InboundEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let pending = self.pending_2xx.as_ref().map(|p| p.next.min(p.give_up));
        let servers = self.servers.iter().filter_map(|s| match s {
            ServerTx::Invite(t) => t.poll_timeout(),
            ServerTx::NonInvite(t) => t.poll_timeout(),
        });
        pending
            .into_iter()
            .chain(self.invite.poll_timeout())
            .chain(self.bye.as_ref().and_then(ClientNonInvite::poll_timeout))
            .chain(servers)
            .min()
    }

    // ------------------------------------------------------------------ internals

    fn response(&self, req: &Request, status: u16, reason: &str, contact: bool) -> Response {
        let mut resp = Response::from_request(req, status, reason);
        if let Some(tag) = self.leg.local.tag() {
            let _ = resp.set_to_tag(tag);
        }
        if contact {
            resp.headers
                .push(HeaderName::CONTACT, format!("<{}>", self.config.contact));
        }
        if let Some(ua) = &self.config.user_agent {
            resp.headers.push(HeaderName::new("Server"), ua.clone());
        }
        resp
    }

    fn terminate(&mut self, reason: InboundEnd) {
        if self.state != InboundState::Terminated {
            self.state = InboundState::Terminated;
            self.events.push_back(InboundEvent::Terminated { reason });
        }
    }

    fn send_bye(&mut self, now: Instant) -> Result<()> {
        let branch = self.ids.branch();
        let req = self.leg.in_dialog(Method::Bye, &branch);
        let tx = ClientNonInvite::new(now, req, self.config.timers, self.config.reliable)?;
        self.bye = Some(tx);
        self.pending_2xx = None;
        self.state = InboundState::Terminating;
        Ok(())
    }

    fn respond(&mut self, now: Instant, req: &Request, status: u16, reason: &str) {
        let resp = self.response(req, status, reason, false);
        if req.method == Method::Invite {
            if let Ok(mut tx) =
                ServerInvite::new(now, req.clone(), self.config.timers, self.config.reliable)
            {
                if tx.send_response(now, resp).is_ok() {
                    self.servers.push(ServerTx::Invite(tx));
                }
            }
        } else if let Ok(mut tx) =
            ServerNonInvite::new(now, req.clone(), self.config.timers, self.config.reliable)
        {
            if tx.send_response(now, resp).is_ok() {
                self.servers.push(ServerTx::NonInvite(tx));
            }
        }
    }

    fn on_request(&mut self, now: Instant, req: Request) {
        let msg = Message::Request(req.clone());
        let key = TransactionKey::server(&req).ok();
        // Retransmissions and the non-2xx ACK belong to the INVITE transaction.
        if key.as_ref() == Some(self.invite.key()) {
            if req.method == Method::Ack {
                self.on_ack(&req);
            }
            self.invite.handle_message(now, msg);
            return;
        }
        if req.method == Method::Ack {
            return self.on_ack(&req);
        }
        if let Some(s) = self.servers.iter_mut().find(|s| match s {
            ServerTx::Invite(t) => Some(t.key()) == key.as_ref(),
            ServerTx::NonInvite(t) => Some(t.key()) == key.as_ref(),
        }) {
            match s {
                ServerTx::Invite(t) => t.handle_message(now, msg),
                ServerTx::NonInvite(t) => t.handle_message(now, msg),
            }
            return;
        }
        if req.method == Method::Cancel {
            let targets_invite =
                TransactionKey::cancel_target(&req).ok().as_ref() == Some(self.invite.key());
            if !targets_invite {
                return self.respond(now, &req, 481, "Call/Transaction Does Not Exist");
            }
            self.respond(now, &req, 200, "OK");
            if self.state == InboundState::Proceeding {
                let resp = self.response(self.invite.request(), 487, "Request Terminated", false);
                if self.invite.send_response(now, resp).is_ok() {
                    self.terminate(InboundEnd::Cancelled);
                }
            }
            return;
        }
        let to_tag = req
            .headers
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned));
        let in_dialog = to_tag.as_deref() == self.leg.local.tag()
            && matches!(
                self.state,
                InboundState::Accepted | InboundState::Confirmed | InboundState::Terminating
            );
        if !in_dialog {
            return self.respond(now, &req, 481, "Call/Transaction Does Not Exist");
        }
        let seq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
        if seq <= self.remote_cseq {
            return self.respond(now, &req, 500, "Server Internal Error");
        }
        self.remote_cseq = seq;
        match req.method {
            Method::Bye => {
                self.respond(now, &req, 200, "OK");
                self.pending_2xx = None;
                self.terminate(InboundEnd::RemoteBye);
            }
            Method::Options | Method::Info | Method::Update => self.respond(now, &req, 200, "OK"),
            Method::Invite => self.respond(now, &req, 488, "Not Acceptable Here"),
            _ => self.respond(now, &req, 501, "Not Implemented"),
        }
    }

    fn on_ack(&mut self, ack: &Request) {
        let seq = ack.headers.cseq().map(|c| c.seq).ok();
        if self.pending_2xx.is_some() && seq == Some(self.invite_seq) {
            self.pending_2xx = None;
            if self.state == InboundState::Accepted {
                self.state = InboundState::Confirmed;
                self.events.push_back(InboundEvent::Confirmed);
            }
        }
    }

    fn drain(&mut self, now: Instant) {
        while let Some(m) = self.invite.poll_transmit() {
            self.transmits.push_back(m);
        }
        while self.invite.poll_event().is_some() {}
        for s in &mut self.servers {
            match s {
                ServerTx::Invite(t) => {
                    while let Some(m) = t.poll_transmit() {
                        self.transmits.push_back(m);
                    }
                    while t.poll_event().is_some() {}
                }
                ServerTx::NonInvite(t) => {
                    while let Some(m) = t.poll_transmit() {
                        self.transmits.push_back(m);
                    }
                    while t.poll_event().is_some() {}
                }
            }
        }
        self.servers.retain(|s| match s {
            ServerTx::Invite(t) => !t.is_terminated(),
            ServerTx::NonInvite(t) => !t.is_terminated(),
        });
        let mut bye_done = false;
        if let Some(bye) = &mut self.bye {
            while let Some(m) = bye.poll_transmit() {
                self.transmits.push_back(m);
            }
            while let Some(ev) = bye.poll_event() {
                match ev {
                    TxEvent::Response(r) if !r.is_provisional() => bye_done = true,
                    TxEvent::Timeout(_) | TxEvent::TransportError => bye_done = true,
                    _ => {}
                }
            }
        }
        if bye_done {
            self.terminate(InboundEnd::LocalBye);
        }
        let _ = now;
    }
}

#[cfg(test)]
mod tests;
