//! The UAC dialog of one outbound call (RFC 3261 §12–§15, RFC 4028), sans-IO.
//!
//! A [`Dialog`] owns every transaction of its call: the INVITE client transaction (and the ones
//! of retried, redirected and refreshing INVITEs), BYE and CANCEL client transactions, and the
//! server transactions of requests the peer sends inside the dialog (BYE, re-INVITE, ...).
//! It has the transactions' shape: feed `handle_message(now, msg)` with every message of this
//! call (see [`Dialog::matches`]) and `handle_timeout(now)`, then drain `poll_transmit()`,
//! `poll_event()` and ask `poll_timeout()`. Requests go to the top Route when present, else to
//! the Request-URI; responses to the top Via (RFC 3261 §18.2.2).
//!
//! Randomness (Call-ID, tags, branches, cnonces) comes from the caller's [`IdSource`]; the
//! crate has no RNG and reads no clock.

pub(crate) mod build;
mod session_timer;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use session_timer::{min_se, Refresher, SessionExpires, SessionTimer};

use self::build::{cancel, Leg};
use crate::digest::Challenge;
use crate::error::Result;
use crate::headers::{HeaderName, NameAddr};
use crate::message::{Message, Method, Request, Response};
use crate::sdp::{self, Direction, LocalMedia, Negotiated, SessionDescription};
use crate::timer::TimerConfig;
use crate::transaction::{
    ClientInvite, ClientNonInvite, Event as TxEvent, ServerInvite, ServerInviteState,
    ServerNonInvite,
};

/// The caller's source of unique, unguessable tokens.
pub trait IdSource {
    /// A Call-ID (e.g. a UUID, optionally `@host`).
    fn call_id(&mut self) -> String;
    /// A From/To tag.
    fn tag(&mut self) -> String;
    /// A branch token; the dialog prefixes the `z9hG4bK` magic cookie.
    fn branch(&mut self) -> String;
    /// A digest client nonce.
    fn cnonce(&mut self) -> String;
}

/// Username and password for digest challenges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCredentials {
    pub username: String,
    pub password: String,
}

/// Everything needed to place one call.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// The callee: Request-URI and To of the INVITE.
    pub target: String,
    /// Our address of record: From.
    pub from: String,
    pub from_display: Option<String>,
    /// Our Contact URI (where in-dialog requests reach us).
    pub contact: String,
    /// Via transport (`UDP`, `TCP`) and sent-by (`host:port`).
    pub transport: String,
    pub sent_by: String,
    /// A pre-loaded route (outbound proxy), e.g. `sip:proxy.example;lr`.
    pub outbound_proxy: Option<String>,
    pub auth: Option<AuthCredentials>,
    pub media: LocalMedia,
    /// Session interval to ask for (RFC 4028), `None` to not ask (timers still supported).
    pub session_expires: Option<u32>,
    pub timers: TimerConfig,
    /// Whether the transport is reliable (TCP): no retransmissions.
    pub reliable: bool,
    /// Most 3xx redirections followed (default 3).
    pub max_redirects: u8,
    pub user_agent: Option<String>,
}

impl CallConfig {
    pub fn new(target: &str, from: &str, contact: &str, sent_by: &str, media: LocalMedia) -> Self {
        CallConfig {
            target: target.to_owned(),
            from: from.to_owned(),
            from_display: None,
            contact: contact.to_owned(),
            transport: "UDP".to_owned(),
            sent_by: sent_by.to_owned(),
            outbound_proxy: None,
            auth: None,
            media,
            session_expires: None,
            timers: TimerConfig::default(),
            reliable: false,
            max_redirects: 3,
            user_agent: Some("Switchboard".to_owned()),
        }
    }
}

/// States of the dialog (and of the INVITE that creates it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// INVITE sent, no dialog yet.
    Calling,
    /// A 1xx with a To tag created an early dialog.
    Early,
    /// A 2xx confirmed the dialog.
    Confirmed,
    /// We sent BYE (or CANCEL) and wait for its end.
    Terminating,
    Terminated,
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminationReason {
    /// A final 3xx–6xx to the INVITE, with the Q.850 cause of a Reason header if any.
    Rejected {
        status: u16,
        reason: String,
        q850_cause: Option<u16>,
    },
    /// Our CANCEL ended the INVITE (487), or a 2xx raced it and we sent BYE.
    Cancelled,
    /// We hung up (BYE) and the BYE transaction ended.
    LocalBye,
    /// The peer sent BYE.
    RemoteBye,
    /// No final response (Timer B), or an in-dialog request timed out.
    Timeout,
    TransportError,
    /// The answer had no usable SDP (no common codec); we ACKed and sent BYE.
    MediaNegotiationFailed,
    /// A challenge repeated after we answered it (wrong credentials), or none configured.
    AuthenticationFailed {
        status: u16,
    },
    /// More than `max_redirects` 3xx.
    TooManyRedirects,
    /// The peer did not refresh the session in time (RFC 4028); we sent BYE.
    SessionExpired,
}

/// What the dialog tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogEvent {
    /// The first 100 Trying.
    Trying,
    /// A 180/183 (or other 1xx above 100); `early_media` when it carried SDP.
    Ringing {
        status: u16,
        early_media: bool,
    },
    /// The SDP of a reliable early-media provisional, negotiated against our offer.
    EarlyMedia {
        media: Negotiated,
    },
    /// A 2xx confirmed the call; `sdp` is the peer's answer.
    Answered {
        sdp: SessionDescription,
        media: Negotiated,
    },
    /// A 401/407 was answered with credentials; a new INVITE is on its way.
    Authenticating {
        status: u16,
    },
    /// A 3xx sent us to `target`; a new INVITE is on its way.
    Redirected {
        target: String,
    },
    /// The peer re-INVITEd (hold, unhold, refresh) and we answered.
    MediaUpdated {
        media: Negotiated,
    },
    /// A session refresh completed (ours or the peer's).
    SessionRefreshed,
    Terminated {
        reason: TerminationReason,
    },
}

/// The dialog-level timers (transaction timers live in the transactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialogTimer {
    /// We are the refresher: send a refreshing re-INVITE.
    SessionRefresh,
    /// The peer is the refresher and is late: BYE.
    SessionExpiry,
    /// Our re-INVITE met 491: try again (RFC 3261 §14.1).
    GlareRetry,
    /// Retransmit our 2xx to an inbound re-INVITE until its ACK (RFC 3261 §13.3.1.4).
    Retransmit2xx,
}

const DIALOG_TIMERS: usize = 4;

impl DialogTimer {
    const ALL: [DialogTimer; DIALOG_TIMERS] = [
        DialogTimer::SessionRefresh,
        DialogTimer::SessionExpiry,
        DialogTimer::GlareRetry,
        DialogTimer::Retransmit2xx,
    ];
}

/// Wait after a 491 when we own the Call-ID: the low end of RFC 3261 §14.1's 2.1–4 s.
const GLARE_RETRY: Duration = Duration::from_millis(2100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InviteKind {
    /// The INVITE that creates the dialog (also after auth retry or redirect).
    Initial,
    /// A refreshing re-INVITE of ours.
    Refresh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NonInviteKind {
    Bye,
    Cancel,
}

#[derive(Debug)]
enum ServerTx {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

/// A 2xx to an inbound re-INVITE waiting for its ACK.
#[derive(Debug)]
struct Pending2xx {
    response: Response,
    interval: Duration,
    give_up: Instant,
}

/// The UAC dialog of one outbound INVITE. See the module documentation.
pub struct Dialog {
    config: CallConfig,
    ids: Box<dyn IdSource + Send>,
    state: DialogState,
    leg: Leg,
    /// Current Request-URI of the initial INVITE (changes on redirect).
    target: String,
    invite: Option<(InviteKind, ClientInvite)>,
    /// Replaced INVITE transactions kept until they end (they re-ACK retransmitted finals).
    old_invites: Vec<ClientInvite>,
    non_invites: Vec<(NonInviteKind, ClientNonInvite)>,
    servers: Vec<ServerTx>,
    remote_cseq: Option<u32>,
    offer: SessionDescription,
    sdp_version: u64,
    media: Option<Negotiated>,
    ack: Option<Request>,
    got_provisional: bool,
    trying_seen: bool,
    cancel_requested: bool,
    cancel_sent: bool,
    auth_attempts: u8,
    redirects: u8,
    redirect_targets: VecDeque<String>,
    session: Option<SessionTimer>,
    pending_2xx: Option<Pending2xx>,
    deadlines: [Option<Instant>; DIALOG_TIMERS],
    transmits: VecDeque<Message>,
    events: VecDeque<DialogEvent>,
    end_reason: Option<TerminationReason>,
}

impl std::fmt::Debug for Dialog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialog")
            .field("state", &self.state)
            .field("call_id", &self.leg.call_id)
            .field("remote_tag", &self.leg.remote.tag())
            .finish_non_exhaustive()
    }
}

impl Dialog {
    /// Creates the call and queues its INVITE (with an SDP offer from `config.media`).
    pub fn invite(
        now: Instant,
        config: CallConfig,
        mut ids: Box<dyn IdSource + Send>,
    ) -> Result<Dialog> {
        let mut local = NameAddr::new(config.from.clone());
        local.display = config.from_display.clone();
        local.set_tag(&ids.tag());
        let route_set = match &config.outbound_proxy {
            Some(p) => vec![NameAddr::new(p.clone())],
            None => Vec::new(),
        };
        let leg = Leg {
            call_id: ids.call_id(),
            local,
            remote: NameAddr::new(config.target.clone()),
            local_cseq: 0,
            remote_target: config.target.clone(),
            route_set,
            contact: config.contact.clone(),
            via_transport: config.transport.clone(),
            via_sent_by: config.sent_by.clone(),
            user_agent: config.user_agent.clone(),
        };
        let offer = config.media.offer(1, Direction::SendRecv);
        let mut dialog = Dialog {
            target: config.target.clone(),
            config,
            ids,
            state: DialogState::Calling,
            leg,
            invite: None,
            old_invites: Vec::new(),
            non_invites: Vec::new(),
            servers: Vec::new(),
            remote_cseq: None,
            offer,
            sdp_version: 1,
            media: None,
            ack: None,
            got_provisional: false,
            trying_seen: false,
            cancel_requested: false,
            cancel_sent: false,
            auth_attempts: 0,
            redirects: 0,
            redirect_targets: VecDeque::new(),
            session: None,
            pending_2xx: None,
            deadlines: [None; DIALOG_TIMERS],
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            end_reason: None,
        };
        let invite = dialog.new_invite(Vec::new())?;
        dialog.start_invite(now, InviteKind::Initial, invite)?;
        dialog.drain(now);
        Ok(dialog)
    }

    pub fn state(&self) -> DialogState {
        self.state
    }

    pub fn call_id(&self) -> &str {
        &self.leg.call_id
    }

    pub fn local_tag(&self) -> Option<&str> {
        self.leg.local.tag()
    }

    pub fn remote_tag(&self) -> Option<&str> {
        self.leg.remote.tag()
    }

    /// The peer's Contact: Request-URI of in-dialog requests.
    pub fn remote_target(&self) -> &str {
        &self.leg.remote_target
    }

    /// The route set, in the order Route headers are written.
    pub fn route_set(&self) -> Vec<String> {
        self.leg.route_set.iter().map(|r| r.uri.clone()).collect()
    }

    /// The media agreed on so far (early or final).
    pub fn media(&self) -> Option<&Negotiated> {
        self.media.as_ref()
    }

    pub fn session_timer(&self) -> Option<SessionTimer> {
        self.session
    }

    pub fn is_terminated(&self) -> bool {
        self.state == DialogState::Terminated
    }

    /// True when `msg` belongs to this call: same Call-ID, and for requests our tag in To.
    pub fn matches(&self, msg: &Message) -> bool {
        let h = msg.headers();
        if h.call_id().ok() != Some(self.leg.call_id.as_str()) {
            return false;
        }
        match msg {
            Message::Response(r) => {
                r.headers
                    .from()
                    .ok()
                    .and_then(|f| f.tag().map(str::to_owned))
                    .as_deref()
                    == self.leg.local.tag()
            }
            Message::Request(r) => {
                r.headers
                    .to()
                    .ok()
                    .and_then(|t| t.tag().map(str::to_owned))
                    .as_deref()
                    == self.leg.local.tag()
            }
        }
    }

    /// Ends the call: CANCEL before a final response, BYE once confirmed. A CANCEL before
    /// any provisional is held back until one arrives (RFC 3261 §9.1).
    pub fn hangup(&mut self, now: Instant) -> Result<()> {
        match self.state {
            DialogState::Calling | DialogState::Early => {
                self.cancel_requested = true;
                if self.got_provisional {
                    self.send_cancel(now)?;
                }
                self.state = DialogState::Terminating;
            }
            DialogState::Confirmed => {
                self.send_bye(now)?;
                self.end_reason = Some(TerminationReason::LocalBye);
            }
            DialogState::Terminating | DialogState::Terminated => {}
        }
        self.drain(now);
        Ok(())
    }

    /// Feeds a received message of this call.
    pub fn handle_message(&mut self, now: Instant, msg: Message) {
        match msg {
            Message::Response(resp) => self.on_response(now, resp),
            Message::Request(req) => self.on_request(now, req),
        }
        self.drain(now);
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((_, tx)) = &mut self.invite {
            tx.handle_timeout(now);
        }
        for tx in &mut self.old_invites {
            tx.handle_timeout(now);
        }
        for (_, tx) in &mut self.non_invites {
            tx.handle_timeout(now);
        }
        for s in &mut self.servers {
            match s {
                ServerTx::Invite(tx) => tx.handle_timeout(now),
                ServerTx::NonInvite(tx) => tx.handle_timeout(now),
            }
        }
        self.drain(now);
        for (i, timer) in DialogTimer::ALL.into_iter().enumerate() {
            if self.deadlines[i].is_some_and(|at| at <= now) {
                self.deadlines[i] = None;
                self.on_timer(now, timer);
            }
        }
        self.drain(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<DialogEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline of the dialog and its transactions.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let txs = self
            .invite
            .iter()
            .filter_map(|(_, tx)| tx.poll_timeout())
            .chain(
                self.old_invites
                    .iter()
                    .filter_map(ClientInvite::poll_timeout),
            )
            .chain(
                self.non_invites
                    .iter()
                    .filter_map(|(_, tx)| tx.poll_timeout()),
            )
            .chain(self.servers.iter().filter_map(|s| match s {
                ServerTx::Invite(tx) => tx.poll_timeout(),
                ServerTx::NonInvite(tx) => tx.poll_timeout(),
            }));
        self.deadlines.iter().flatten().copied().chain(txs).min()
    }

    // ------------------------------------------------------------------ plumbing

    fn branch(&mut self) -> String {
        self.ids.branch()
    }

    fn set_timer(&mut self, timer: DialogTimer, at: Option<Instant>) {
        if let Some(i) = DialogTimer::ALL.iter().position(|t| *t == timer) {
            self.deadlines[i] = at;
        }
    }

    fn emit(&mut self, event: DialogEvent) {
        self.events.push_back(event);
    }

    fn terminate(&mut self, reason: TerminationReason) {
        if self.state != DialogState::Terminated {
            self.state = DialogState::Terminated;
            self.deadlines = [None; DIALOG_TIMERS];
            self.emit(DialogEvent::Terminated { reason });
        }
    }

    /// Moves transaction output to our queues and handles transaction events until quiet.
    fn drain(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            if let Some((kind, tx)) = &mut self.invite {
                let kind = *kind;
                while let Some(m) = tx.poll_transmit() {
                    self.transmits.push_back(m);
                }
                let events: Vec<TxEvent> = std::iter::from_fn(|| tx.poll_event()).collect();
                for e in events {
                    progressed = true;
                    self.on_invite_event(now, kind, e);
                }
            }
            for tx in &mut self.old_invites {
                while let Some(m) = tx.poll_transmit() {
                    self.transmits.push_back(m);
                }
                while tx.poll_event().is_some() {}
            }
            let mut events = Vec::new();
            for (kind, tx) in &mut self.non_invites {
                while let Some(m) = tx.poll_transmit() {
                    self.transmits.push_back(m);
                }
                while let Some(e) = tx.poll_event() {
                    events.push((*kind, e));
                }
            }
            for (kind, e) in events {
                progressed = true;
                self.on_non_invite_event(now, kind, e);
            }
            let mut acks = Vec::new();
            for s in &mut self.servers {
                match s {
                    ServerTx::Invite(tx) => {
                        while let Some(m) = tx.poll_transmit() {
                            self.transmits.push_back(m);
                        }
                        while let Some(e) = tx.poll_event() {
                            if let TxEvent::Ack(ack) = e {
                                acks.push(ack);
                            }
                        }
                    }
                    ServerTx::NonInvite(tx) => {
                        while let Some(m) = tx.poll_transmit() {
                            self.transmits.push_back(m);
                        }
                        while tx.poll_event().is_some() {}
                    }
                }
            }
            for ack in acks {
                progressed = true;
                self.on_ack(now, ack);
            }
            if !progressed {
                break;
            }
        }
        self.old_invites.retain(|tx| !tx.is_terminated());
        self.non_invites.retain(|(_, tx)| !tx.is_terminated());
        self.servers.retain(|s| match s {
            ServerTx::Invite(tx) => !tx.is_terminated(),
            ServerTx::NonInvite(tx) => !tx.is_terminated(),
        });
        if matches!(&self.invite, Some((_, tx)) if tx.is_terminated()) {
            self.invite = None;
        }
    }

    /// Builds an INVITE of the initial kind to the current target with our offer.
    fn new_invite(&mut self, extra: Vec<(HeaderName, String)>) -> Result<Request> {
        let branch = self.branch();
        let target = self.target.clone();
        let mut r = self.leg.invite(&target, &branch, self.offer.to_bytes());
        if let Some(se) = self.config.session_expires {
            r.headers
                .push(HeaderName::new("Session-Expires"), se.to_string());
            r.headers.push(HeaderName::new("Min-SE"), "90");
        }
        for (n, v) in extra {
            r.headers.push(n, v);
        }
        Ok(r)
    }

    fn start_invite(&mut self, now: Instant, kind: InviteKind, req: Request) -> Result<()> {
        let tx = ClientInvite::new(now, req, self.config.timers, self.config.reliable)?;
        if let Some((_, old)) = self.invite.replace((kind, tx)) {
            if !old.is_terminated() {
                self.old_invites.push(old);
            }
        }
        Ok(())
    }

    fn start_non_invite(&mut self, now: Instant, kind: NonInviteKind, req: Request) -> Result<()> {
        let tx = ClientNonInvite::new(now, req, self.config.timers, self.config.reliable)?;
        self.non_invites.push((kind, tx));
        Ok(())
    }

    fn send_cancel(&mut self, now: Instant) -> Result<()> {
        if self.cancel_sent {
            return Ok(());
        }
        let Some((InviteKind::Initial, tx)) = &self.invite else {
            return Ok(());
        };
        let req = cancel(tx.request());
        self.cancel_sent = true;
        self.start_non_invite(now, NonInviteKind::Cancel, req)
    }

    fn send_bye(&mut self, now: Instant) -> Result<()> {
        let branch = self.branch();
        let bye = self.leg.in_dialog(Method::Bye, &branch);
        self.state = DialogState::Terminating;
        self.deadlines = [None; DIALOG_TIMERS];
        self.start_non_invite(now, NonInviteKind::Bye, bye)
    }

    /// BYE after a failure we detected ourselves; the BYE's outcome does not change `reason`.
    fn bye_and_end(&mut self, now: Instant, reason: TerminationReason) {
        self.end_reason = Some(reason.clone());
        if self.send_bye(now).is_err() {
            self.terminate(reason);
        }
    }

    // ------------------------------------------------------------------ responses

    fn on_response(&mut self, now: Instant, resp: Response) {
        let is_invite = resp
            .headers
            .cseq()
            .is_ok_and(|c| c.method == Method::Invite);
        if is_invite {
            let msg = Message::Response(resp.clone());
            match &mut self.invite {
                Some((_, tx)) => tx.handle_message(now, msg.clone()),
                None => self.retransmit_ack(&resp),
            }
            for tx in &mut self.old_invites {
                tx.handle_message(now, msg.clone());
            }
        } else {
            for (_, tx) in &mut self.non_invites {
                tx.handle_message(now, Message::Response(resp.clone()));
            }
        }
    }

    /// A 2xx retransmission after the INVITE transaction ended: ACK it again.
    fn retransmit_ack(&mut self, resp: &Response) {
        if !resp.is_success() {
            return;
        }
        if let Some(ack) = &self.ack {
            let same =
                ack.headers.cseq().ok().map(|c| c.seq) == resp.headers.cseq().ok().map(|c| c.seq);
            if same {
                self.transmits.push_back(Message::Request(ack.clone()));
            }
        }
    }

    fn on_invite_event(&mut self, now: Instant, kind: InviteKind, event: TxEvent) {
        match (event, kind) {
            (TxEvent::Response(resp), InviteKind::Initial) => self.on_initial_response(now, resp),
            (TxEvent::Response(resp), InviteKind::Refresh) => self.on_refresh_response(now, resp),
            (TxEvent::Timeout(_), InviteKind::Initial) => {
                self.terminate(TerminationReason::Timeout)
            }
            (TxEvent::TransportError, InviteKind::Initial) => {
                self.terminate(TerminationReason::TransportError)
            }
            (TxEvent::Timeout(_) | TxEvent::TransportError, InviteKind::Refresh) => {
                self.bye_and_end(now, TerminationReason::Timeout)
            }
            _ => {}
        }
    }

    fn on_initial_response(&mut self, now: Instant, resp: Response) {
        match resp.status {
            100 if self.cancel_requested => self.on_provisional(now, resp),
            100 => {
                self.got_provisional = true;
                if !self.trying_seen {
                    self.trying_seen = true;
                    self.emit(DialogEvent::Trying);
                }
            }
            101..=199 => self.on_provisional(now, resp),
            200..=299 => self.on_2xx(now, resp),
            401 | 407 => self.on_challenge(now, resp),
            422 => self.on_interval_too_small(now, resp),
            300..=399 => self.on_redirect(now, resp),
            _ => self.on_failure(now, resp),
        }
    }

    fn on_provisional(&mut self, now: Instant, resp: Response) {
        self.got_provisional = true;
        if self.cancel_requested {
            // A CANCEL that cannot be built leaves Timer B to end the call.
            let _ = self.send_cancel(now);
            return;
        }
        let tagged = resp
            .headers
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned));
        if let Some(tag) = tagged {
            if self.state == DialogState::Calling {
                self.state = DialogState::Early;
                self.leg.remote.set_tag(&tag);
                self.learn_route(&resp);
            }
        }
        let early = (!resp.body.is_empty())
            .then(|| SessionDescription::parse(&resp.body).ok())
            .flatten()
            .and_then(|answer| sdp::negotiate_answer(&self.offer, &answer).ok());
        self.emit(DialogEvent::Ringing {
            status: resp.status,
            early_media: early.is_some(),
        });
        if let Some(media) = early {
            self.media = Some(media.clone());
            self.emit(DialogEvent::EarlyMedia { media });
        }
    }

    /// Route set (Record-Route reversed) and remote target (Contact) from a response.
    fn learn_route(&mut self, resp: &Response) {
        if let Ok(mut rr) = resp.headers.record_route() {
            if !rr.is_empty() || self.config.outbound_proxy.is_none() {
                rr.reverse();
                self.leg.route_set = rr;
            }
        }
        if let Some(c) = resp
            .headers
            .contact()
            .ok()
            .and_then(|c| c.into_iter().next())
        {
            self.leg.remote_target = c.uri;
        }
    }

    fn on_2xx(&mut self, now: Instant, resp: Response) {
        let tag = resp
            .headers
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned));
        if self.ack.is_some() {
            // A retransmission (or a forked 2xx from the same tag): ACK again.
            if tag.as_deref() == self.leg.remote.tag() {
                if let Some(ack) = &self.ack {
                    self.transmits.push_back(Message::Request(ack.clone()));
                }
            }
            return;
        }
        if let Some(tag) = &tag {
            self.leg.remote.set_tag(tag);
        }
        self.learn_route(&resp);
        let seq = resp
            .headers
            .cseq()
            .map(|c| c.seq)
            .unwrap_or(self.leg.local_cseq);
        let branch = self.branch();
        let ack = self.leg.ack(seq, &branch, Vec::new());
        self.transmits.push_back(Message::Request(ack.clone()));
        self.ack = Some(ack);
        if self.cancel_requested {
            // The 2xx raced our CANCEL: the call exists, so end it with BYE.
            self.state = DialogState::Confirmed;
            self.bye_and_end(now, TerminationReason::Cancelled);
            return;
        }
        let answer = SessionDescription::parse(&resp.body).ok();
        let media = answer
            .as_ref()
            .and_then(|a| sdp::negotiate_answer(&self.offer, a).ok());
        let (Some(sdp), Some(media)) = (answer, media) else {
            self.state = DialogState::Confirmed;
            self.bye_and_end(now, TerminationReason::MediaNegotiationFailed);
            return;
        };
        self.state = DialogState::Confirmed;
        self.media = Some(media.clone());
        self.emit(DialogEvent::Answered { sdp, media });
        self.start_session_timer(now, &resp);
    }

    fn start_session_timer(&mut self, now: Instant, resp: &Response) {
        let se = SessionExpires::from_headers(&resp.headers).ok().flatten();
        self.session = se.map(SessionTimer::from_answer);
        self.arm_session(now);
    }

    fn arm_session(&mut self, now: Instant) {
        let (refresh, expiry) = match self.session {
            Some(s) if s.we_refresh => (Some(s.refresh_at(now)), None),
            Some(s) => (None, Some(s.expiry_at(now))),
            None => (None, None),
        };
        self.set_timer(DialogTimer::SessionRefresh, refresh);
        self.set_timer(DialogTimer::SessionExpiry, expiry);
    }

    fn on_challenge(&mut self, now: Instant, resp: Response) {
        let (challenges, header) = if resp.status == 401 {
            (resp.headers.www_authenticate(), HeaderName::AUTHORIZATION)
        } else {
            (
                resp.headers.proxy_authenticate(),
                HeaderName::PROXY_AUTHORIZATION,
            )
        };
        let challenge: Option<Challenge> = challenges.ok().and_then(|c| c.into_iter().next());
        let (Some(challenge), Some(auth)) = (challenge, self.config.auth.clone()) else {
            return self.terminate(TerminationReason::AuthenticationFailed {
                status: resp.status,
            });
        };
        // One answer per challenge; a repeat is a rejection unless the nonce was stale.
        if self.auth_attempts >= 1 && !challenge.stale || self.auth_attempts >= 3 {
            return self.terminate(TerminationReason::AuthenticationFailed {
                status: resp.status,
            });
        }
        self.auth_attempts += 1;
        let cnonce = self.ids.cnonce();
        let retry = self.new_invite(Vec::new()).and_then(|mut req| {
            let creds = challenge.respond(
                &auth.username,
                &auth.password,
                "INVITE",
                &req.uri,
                &req.body,
                &cnonce,
                1,
            );
            req.headers.push(header, creds.to_string());
            self.start_invite(now, InviteKind::Initial, req)
        });
        match retry {
            Ok(()) => self.emit(DialogEvent::Authenticating {
                status: resp.status,
            }),
            Err(_) => self.terminate(TerminationReason::AuthenticationFailed {
                status: resp.status,
            }),
        }
    }

    /// 422 Session Interval Too Small (RFC 4028 §7.4): retry with the peer's Min-SE.
    fn on_interval_too_small(&mut self, now: Instant, resp: Response) {
        let floor = min_se(&resp.headers).ok().flatten();
        match (floor, self.config.session_expires) {
            (Some(floor), Some(asked)) if floor > asked => {
                self.config.session_expires = Some(floor);
                let retry = self
                    .new_invite(Vec::new())
                    .and_then(|req| self.start_invite(now, InviteKind::Initial, req));
                if retry.is_err() {
                    self.on_failure(now, resp);
                }
            }
            _ => self.on_failure(now, resp),
        }
    }

    fn on_redirect(&mut self, now: Instant, resp: Response) {
        let contacts: Vec<String> = resp
            .headers
            .contact()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.uri != "*")
            .map(|c| c.uri)
            .collect();
        for (i, c) in contacts.into_iter().enumerate() {
            self.redirect_targets.insert(i, c);
        }
        if !self.try_next_target(now) {
            self.on_failure(now, resp);
        }
    }

    /// Sends the INVITE to the next redirect target; false when none is left or allowed.
    fn try_next_target(&mut self, now: Instant) -> bool {
        let Some(target) = self.redirect_targets.pop_front() else {
            return false;
        };
        if self.redirects >= self.config.max_redirects {
            self.redirect_targets.clear();
            self.terminate(TerminationReason::TooManyRedirects);
            return true;
        }
        self.redirects += 1;
        self.target = target.clone();
        self.auth_attempts = 0;
        let sent = self
            .new_invite(Vec::new())
            .and_then(|req| self.start_invite(now, InviteKind::Initial, req));
        if sent.is_ok() {
            self.emit(DialogEvent::Redirected { target });
        }
        sent.is_ok()
    }

    fn on_failure(&mut self, now: Instant, resp: Response) {
        if resp.status == 487 && self.cancel_requested {
            return self.terminate(TerminationReason::Cancelled);
        }
        if !self.cancel_requested && self.try_next_target(now) {
            return;
        }
        let q850_cause = q850_cause(&resp);
        self.terminate(TerminationReason::Rejected {
            status: resp.status,
            reason: resp.reason,
            q850_cause,
        });
    }

    fn on_refresh_response(&mut self, now: Instant, resp: Response) {
        match resp.status {
            100..=199 => {}
            200..=299 => {
                let seq = resp
                    .headers
                    .cseq()
                    .map(|c| c.seq)
                    .unwrap_or(self.leg.local_cseq);
                let branch = self.branch();
                let ack = self.leg.ack(seq, &branch, Vec::new());
                self.transmits.push_back(Message::Request(ack.clone()));
                self.ack = Some(ack);
                if let Some(c) = resp
                    .headers
                    .contact()
                    .ok()
                    .and_then(|c| c.into_iter().next())
                {
                    self.leg.remote_target = c.uri;
                }
                let answer = SessionDescription::parse(&resp.body).ok();
                if let Some(media) = answer
                    .as_ref()
                    .and_then(|a| sdp::negotiate_answer(&self.offer, a).ok())
                {
                    self.media = Some(media);
                }
                if let Ok(Some(se)) = SessionExpires::from_headers(&resp.headers) {
                    self.session = Some(SessionTimer::from_answer(se));
                }
                self.arm_session(now);
                self.emit(DialogEvent::SessionRefreshed);
            }
            491 => self.set_timer(DialogTimer::GlareRetry, Some(now + GLARE_RETRY)),
            408 | 481 => self.bye_and_end(now, TerminationReason::SessionExpired),
            // Any other failure leaves the session as it was (RFC 3261 §14.1); try again later.
            _ => self.arm_session(now),
        }
    }

    fn on_non_invite_event(&mut self, _now: Instant, kind: NonInviteKind, event: TxEvent) {
        match (kind, event) {
            (NonInviteKind::Bye, TxEvent::Response(r)) if !r.is_provisional() => {
                let reason = self
                    .end_reason
                    .clone()
                    .unwrap_or(TerminationReason::LocalBye);
                self.terminate(reason);
            }
            (NonInviteKind::Bye, TxEvent::Timeout(_) | TxEvent::TransportError) => {
                let reason = self
                    .end_reason
                    .clone()
                    .unwrap_or(TerminationReason::Timeout);
                self.terminate(reason);
            }
            // CANCEL outcomes matter little: the INVITE's 487 (or Timer B) ends the call.
            _ => {}
        }
    }

    // ------------------------------------------------------------------ requests

    fn on_request(&mut self, now: Instant, req: Request) {
        let msg = Message::Request(req.clone());
        if req.method == Method::Ack {
            for s in &mut self.servers {
                if let ServerTx::Invite(tx) = s {
                    tx.handle_message(now, msg.clone());
                }
            }
            return;
        }
        if req.validate().is_err() {
            return;
        }
        // A retransmission of a request we already handle.
        let key = crate::transaction::TransactionKey::server(&req).ok();
        let known = self.servers.iter_mut().find(|s| match s {
            ServerTx::Invite(tx) => Some(tx.key()) == key.as_ref(),
            ServerTx::NonInvite(tx) => Some(tx.key()) == key.as_ref(),
        });
        if let Some(s) = known {
            match s {
                ServerTx::Invite(tx) => tx.handle_message(now, msg),
                ServerTx::NonInvite(tx) => tx.handle_message(now, msg),
            }
            return;
        }
        let from_tag = req
            .headers
            .from()
            .ok()
            .and_then(|f| f.tag().map(str::to_owned));
        let in_dialog = self.matches(&msg)
            && from_tag.is_some()
            && from_tag.as_deref() == self.leg.remote.tag()
            && matches!(
                self.state,
                DialogState::Early | DialogState::Confirmed | DialogState::Terminating
            );
        let seq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
        if !in_dialog {
            return self.respond_once(now, &req, 481, "Call/Transaction Does Not Exist");
        }
        if self.remote_cseq.is_some_and(|last| seq <= last) {
            return self.respond_once(now, &req, 500, "Server Internal Error");
        }
        self.remote_cseq = Some(seq);
        match req.method {
            Method::Bye => {
                self.respond_once(now, &req, 200, "OK");
                self.terminate(TerminationReason::RemoteBye);
            }
            Method::Invite => self.on_reinvite(now, req),
            Method::Options | Method::Info | Method::Update => {
                self.respond_once(now, &req, 200, "OK")
            }
            _ => self.respond_once(now, &req, 501, "Not Implemented"),
        }
    }

    /// Answers a non-INVITE (or refuses an INVITE) through a new server transaction.
    fn respond_once(&mut self, now: Instant, req: &Request, status: u16, reason: &str) {
        let resp = self.response(req, status, reason);
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

    fn response(&self, req: &Request, status: u16, reason: &str) -> Response {
        let mut resp = Response::from_request(req, status, reason);
        if let Some(tag) = self.leg.local.tag() {
            let _ = resp.set_to_tag(tag);
        }
        resp
    }

    /// An inbound re-INVITE: 491 while ours is pending, else answer its offer (hold/unhold,
    /// refresh) or, with no offer, send ours in the 2xx and take the answer from the ACK.
    fn on_reinvite(&mut self, now: Instant, req: Request) {
        let ours_pending = matches!(&self.invite, Some((InviteKind::Refresh, tx))
            if !matches!(tx.state(), crate::transaction::ClientInviteState::Accepted | crate::transaction::ClientInviteState::Completed | crate::transaction::ClientInviteState::Terminated));
        if ours_pending || self.pending_2xx.is_some() || self.state != DialogState::Confirmed {
            return self.respond_once(now, &req, 491, "Request Pending");
        }
        let body = if req.body.is_empty() {
            self.offer.origin.session_version = self.sdp_version;
            Some((self.offer.to_bytes(), None))
        } else {
            match SessionDescription::parse(&req.body) {
                Ok(offer) => {
                    let version = self.sdp_version + 1;
                    match self.config.media.answer(&offer, version) {
                        Ok(answer) => {
                            self.sdp_version = version;
                            Some((answer.sdp.to_bytes(), Some(answer.media)))
                        }
                        Err(e) => {
                            let status = e.offer_rejection_status();
                            let reason = if status == 488 {
                                "Not Acceptable Here"
                            } else {
                                "Bad Request"
                            };
                            return self.respond_once(now, &req, status, reason);
                        }
                    }
                }
                Err(_) => return self.respond_once(now, &req, 400, "Bad Request"),
            }
        };
        let Some((body, media)) = body else { return };
        if let Some(c) = req
            .headers
            .contact()
            .ok()
            .and_then(|c| c.into_iter().next())
        {
            self.leg.remote_target = c.uri;
        }
        let mut resp = self.response(&req, 200, "OK");
        resp.headers
            .push(HeaderName::CONTACT, format!("<{}>", self.leg.contact));
        resp.headers.push(HeaderName::new("Allow"), build::ALLOW);
        resp.headers.push(HeaderName::new("Supported"), "timer");
        // RFC 4028 §9: a refresh by the peer; echo the interval with the peer as refresher
        // unless we already refresh.
        if let Ok(Some(se)) = SessionExpires::from_headers(&req.headers) {
            let we_refresh =
                self.session.is_some_and(|s| s.we_refresh) && se.refresher != Some(Refresher::Uac);
            let answer = SessionExpires {
                interval: se.interval,
                refresher: Some(if we_refresh {
                    Refresher::Uas
                } else {
                    Refresher::Uac
                }),
            };
            resp.headers
                .push(HeaderName::new("Session-Expires"), answer.to_string());
            resp.headers.push(HeaderName::new("Require"), "timer");
            self.session = Some(SessionTimer {
                interval: Duration::from_secs(u64::from(se.interval)),
                we_refresh,
            });
        }
        resp.headers
            .push(HeaderName::CONTENT_TYPE, "application/sdp");
        resp.body = body;
        let Ok(mut tx) = ServerInvite::new(now, req, self.config.timers, self.config.reliable)
        else {
            return;
        };
        if tx.send_response(now, resp.clone()).is_err() {
            return;
        }
        self.servers.push(ServerTx::Invite(tx));
        if !self.config.reliable {
            self.pending_2xx = Some(Pending2xx {
                response: resp,
                interval: self.config.timers.t1,
                give_up: now + self.config.timers.timeout(),
            });
            self.set_timer(
                DialogTimer::Retransmit2xx,
                Some(now + self.config.timers.t1),
            );
        }
        self.arm_session(now);
        match media {
            Some(media) => {
                self.media = Some(media.clone());
                self.emit(DialogEvent::MediaUpdated { media });
            }
            None => self.emit(DialogEvent::SessionRefreshed),
        }
    }

    /// The ACK of our 2xx to a re-INVITE; with a late offer it carries the answer.
    fn on_ack(&mut self, _now: Instant, ack: Request) {
        self.pending_2xx = None;
        self.set_timer(DialogTimer::Retransmit2xx, None);
        if ack.body.is_empty() {
            return;
        }
        if let Some(media) = SessionDescription::parse(&ack.body)
            .ok()
            .and_then(|a| sdp::negotiate_answer(&self.offer, &a).ok())
        {
            self.media = Some(media.clone());
            self.emit(DialogEvent::MediaUpdated { media });
        }
    }

    // ------------------------------------------------------------------ timers

    fn on_timer(&mut self, now: Instant, timer: DialogTimer) {
        if self.state != DialogState::Confirmed {
            return;
        }
        match timer {
            DialogTimer::SessionRefresh | DialogTimer::GlareRetry => self.send_refresh(now),
            DialogTimer::SessionExpiry => self.bye_and_end(now, TerminationReason::SessionExpired),
            DialogTimer::Retransmit2xx => {
                let Some(p) = &mut self.pending_2xx else {
                    return;
                };
                if now >= p.give_up {
                    // No ACK for our 2xx (RFC 3261 §13.3.1.4): end the dialog.
                    self.pending_2xx = None;
                    return self.bye_and_end(now, TerminationReason::Timeout);
                }
                let resp = p.response.clone();
                p.interval = (p.interval * 2).min(self.config.timers.t2);
                let next = now + p.interval;
                for s in &mut self.servers {
                    if let ServerTx::Invite(tx) = s {
                        if tx.state() == ServerInviteState::Accepted
                            && tx.request().headers.cseq().ok() == resp.headers.cseq().ok()
                        {
                            let _ = tx.send_response(now, resp.clone());
                        }
                    }
                }
                self.set_timer(DialogTimer::Retransmit2xx, Some(next));
            }
        }
    }

    /// A refreshing re-INVITE with our current offer (RFC 4028 §7.4, we refresh).
    fn send_refresh(&mut self, now: Instant) {
        let branch = self.branch();
        let target = self.leg.remote_target.clone();
        self.offer.origin.session_version = self.sdp_version;
        let mut req = self.leg.invite(&target, &branch, self.offer.to_bytes());
        if let Some(s) = self.session {
            let se = SessionExpires {
                interval: u32::try_from(s.interval.as_secs()).unwrap_or(u32::MAX),
                refresher: Some(Refresher::Uac),
            };
            req.headers
                .push(HeaderName::new("Session-Expires"), se.to_string());
        }
        if self.start_invite(now, InviteKind::Refresh, req).is_err() {
            self.bye_and_end(now, TerminationReason::SessionExpired);
        }
    }
}

/// The Q.850 cause of a `Reason: Q.850;cause=17;text="..."` header.
fn q850_cause(resp: &Response) -> Option<u16> {
    resp.headers.values("Reason").find_map(|v| {
        let (proto, params) = v.split_once(';')?;
        if !proto.trim().eq_ignore_ascii_case("Q.850") {
            return None;
        }
        crate::headers::Params::parse(params)
            .ok()?
            .value("cause")?
            .parse()
            .ok()
    })
}
