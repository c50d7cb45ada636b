//! The endpoint task: sockets in, machines fed, output sent, one deadline heap.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};

use super::ids::RandomIds;
use super::options::{OptionsConfig, OptionsPing, OptionsResult};
use super::{
    CallEvent, Command, EndpointConfig, EndpointStats, Id, IncomingCall, RequestHandler,
    TrunkConfig,
};
use crate::dialog::{self, AuthCredentials, Dialog, DialogEvent};
use crate::headers::HeaderName;
use crate::inbound::{InboundCall, InboundConfig, InboundEvent};
use crate::message::{bad_request_response, Message, Method, Request, Response};
use crate::outcome::EndCause;
use crate::registration::{
    Registration, RegistrationConfig, RegistrationEvent, RegistrationStatus,
};
use crate::transport::{uri_socket_addr, NetEvent, TcpConns, Transport};

/// How long shutdown waits for unregistrations and BYEs.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Most inputs of one kind (datagrams, commands, TCP messages) handled per wake-up: after a
/// readiness the task drains what is queued up to this many before it polls the other sources
/// again, so a burst costs one wake-up, not one per datagram, and no source starves the others.
const BATCH: usize = 64;

enum Machine {
    Reg {
        reg: Registration,
        status: watch::Sender<RegistrationStatus>,
        events: mpsc::UnboundedSender<RegistrationEvent>,
    },
    Call {
        dialog: Dialog,
        events: mpsc::UnboundedSender<CallEvent>,
    },
    Inbound {
        call: InboundCall,
        events: mpsc::UnboundedSender<InboundEvent>,
    },
    Options {
        ping: OptionsPing,
        reply: Option<oneshot::Sender<crate::Result<OptionsResult>>>,
    },
}

struct Entry {
    machine: Machine,
    /// First hop of requests.
    dest: SocketAddr,
    transport: Transport,
    /// Source of the last request received: where responses go (RFC 3581).
    reply_to: SocketAddr,
    reply_transport: Transport,
    scheduled: Option<Instant>,
    /// Index keys to remove with the entry.
    keys: Vec<(String, String)>,
}

pub(super) struct Task {
    config: EndpointConfig,
    local: SocketAddr,
    /// Via sent-by and Contact: the advertised address, else the bound one.
    public: SocketAddr,
    udp: UdpSocket,
    tcp: Option<TcpListener>,
    conns: TcpConns,
    net_rx: mpsc::UnboundedReceiver<NetEvent>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Handed to incoming calls.
    command_tx: mpsc::UnboundedSender<Command>,
    incoming: mpsc::UnboundedSender<IncomingCall>,
    stats: Arc<EndpointStats>,
    next_id: Arc<AtomicU64>,
    ids: RandomIds,
    entries: HashMap<Id, Entry>,
    /// (Call-ID, our tag) → entry.
    by_local: HashMap<(String, String), Id>,
    /// (Call-ID, caller's From tag) → inbound call, for requests without our To tag.
    by_remote: HashMap<(String, String), Id>,
    deadlines: BinaryHeap<Reverse<(Instant, Id)>>,
    shutdown: Option<(Instant, oneshot::Sender<()>)>,
    request_handler: Option<RequestHandler>,
}

impl Task {
    #[allow(clippy::too_many_arguments)] // assembled once by Endpoint::bind
    pub fn new(
        config: EndpointConfig,
        local: SocketAddr,
        udp: UdpSocket,
        tcp: Option<TcpListener>,
        commands: mpsc::UnboundedReceiver<Command>,
        command_tx: mpsc::UnboundedSender<Command>,
        incoming: mpsc::UnboundedSender<IncomingCall>,
        stats: Arc<EndpointStats>,
        next_id: Arc<AtomicU64>,
    ) -> Task {
        let (net_tx, net_rx) = mpsc::unbounded_channel();
        Task {
            ids: RandomIds::new(&local.ip().to_string()),
            public: config.advertised.unwrap_or(local),
            config,
            local,
            udp,
            tcp,
            conns: TcpConns::new(net_tx),
            net_rx,
            commands,
            command_tx,
            incoming,
            stats,
            next_id,
            entries: HashMap::new(),
            by_local: HashMap::new(),
            by_remote: HashMap::new(),
            deadlines: BinaryHeap::new(),
            shutdown: None,
            request_handler: None,
        }
    }

    fn sent_by(&self) -> String {
        self.public.to_string()
    }

    pub async fn run(mut self) {
        let mut buf = vec![0u8; 65_535];
        loop {
            let next = self.deadlines.peek().map(|Reverse((at, _))| *at);
            let shutdown_at = self.shutdown.as_ref().map(|(at, _)| *at);
            let wake = next.into_iter().chain(shutdown_at).min();
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => match r {
                    Ok((n, source)) => {
                        let now = Instant::now();
                        self.on_datagram(now, &buf[..n], source);
                        self.drain_udp(&mut buf);
                    }
                    Err(e) => tracing::debug!(error = %e, "udp recv"),
                },
                accepted = accept(self.tcp.as_ref()) => {
                    if let Ok((stream, peer)) = accepted {
                        self.conns.adopt(stream, peer);
                    }
                }
                Some(ev) = self.net_rx.recv() => {
                    self.on_net_event(ev);
                    for _ in 1..BATCH {
                        match self.net_rx.try_recv() {
                            Ok(ev) => self.on_net_event(ev),
                            Err(_) => break,
                        }
                    }
                }
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => {
                        let now = Instant::now();
                        self.on_command(now, cmd);
                        for _ in 1..BATCH {
                            match self.commands.try_recv() {
                                Ok(cmd) => self.on_command(Instant::now(), cmd),
                                // Closed: the next `recv` returns None and the loop ends.
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                () = sleep => {}
            }
            let now = Instant::now();
            self.run_timers(now);
            if self.finish_shutdown(now) {
                break;
            }
        }
    }

    /// Handles the datagrams already queued on the UDP socket (up to [`BATCH`] - 1 after the
    /// one `recv_from` returned), reusing `buf`; stops at the first `WouldBlock`.
    fn drain_udp(&mut self, buf: &mut [u8]) {
        for _ in 1..BATCH {
            match self.udp.try_recv_from(buf) {
                Ok((n, source)) => self.on_datagram(Instant::now(), &buf[..n], source),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // E.g. ECONNREFUSED from an ICMP port-unreachable: not fatal, go on.
                    tracing::debug!(error = %e, "udp recv");
                }
            }
        }
    }

    fn on_net_event(&mut self, ev: NetEvent) {
        let now = Instant::now();
        match ev {
            NetEvent::Message {
                msg,
                source,
                transport,
            } => self.on_message(now, msg, source, transport),
            NetEvent::Malformed { bytes, source } => {
                self.on_malformed(&bytes, source, Transport::Tcp)
            }
            NetEvent::Closed { peer } => self.conns.closed(peer),
        }
    }

    fn finish_shutdown(&mut self, now: Instant) -> bool {
        let Some((at, _)) = &self.shutdown else {
            return false;
        };
        let busy = self.entries.values().any(|e| match &e.machine {
            Machine::Reg { reg, .. } => {
                !matches!(reg.status(), RegistrationStatus::Unregistered { .. })
            }
            Machine::Call { dialog, .. } => !dialog.is_terminated(),
            Machine::Inbound { call, .. } => {
                call.state() != crate::inbound::InboundState::Terminated
            }
            Machine::Options { .. } => false,
        });
        if busy && now < *at {
            return false;
        }
        if let Some((_, done)) = self.shutdown.take() {
            let _ = done.send(());
        }
        true
    }

    // ------------------------------------------------------------------ input

    fn on_datagram(&mut self, now: Instant, bytes: &[u8], source: SocketAddr) {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return; // keep-alive
        }
        match Message::parse(bytes) {
            Ok(msg) => self.on_message(now, msg, source, Transport::Udp),
            Err(_) => self.on_malformed(bytes, source, Transport::Udp),
        }
    }

    fn on_malformed(&mut self, bytes: &[u8], source: SocketAddr, transport: Transport) {
        let tag = self.ids_tag();
        match bad_request_response(bytes, &tag) {
            Some(resp) => {
                self.stats
                    .bad_requests_answered
                    .fetch_add(1, Ordering::Relaxed);
                self.send(&Message::Response(resp), source, transport);
            }
            None => {
                self.stats.malformed_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn ids_tag(&mut self) -> String {
        dialog::IdSource::tag(&mut self.ids)
    }

    fn on_message(&mut self, now: Instant, msg: Message, source: SocketAddr, transport: Transport) {
        match msg {
            Message::Response(resp) => self.on_response(now, resp),
            Message::Request(mut req) => {
                if req.validate().is_err() {
                    return self.on_malformed(&req.to_bytes(), source, transport);
                }
                stamp_received(&mut req, source);
                self.on_request(now, req, source, transport);
            }
        }
    }

    fn on_response(&mut self, now: Instant, resp: Response) {
        let h = &resp.headers;
        let key = match (h.call_id(), h.from()) {
            (Ok(c), Ok(f)) => f.tag().map(|t| (c.to_owned(), t.to_owned())),
            _ => None,
        };
        let Some(id) = key.and_then(|k| self.by_local.get(&k).copied()) else {
            self.stats.unmatched_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let msg = Message::Response(resp);
        if let Some(e) = self.entries.get_mut(&id) {
            match &mut e.machine {
                Machine::Reg { reg, .. } => reg.handle_message(now, msg),
                Machine::Call { dialog, .. } => dialog.handle_message(now, msg),
                Machine::Inbound { call, .. } => call.handle_message(now, msg),
                Machine::Options { ping, .. } => ping.handle_message(now, msg),
            }
        }
        self.service(id, now);
    }

    fn on_request(&mut self, now: Instant, req: Request, source: SocketAddr, transport: Transport) {
        let h = &req.headers;
        let call_id = h.call_id().unwrap_or_default().to_owned();
        let to_tag = h.to().ok().and_then(|t| t.tag().map(str::to_owned));
        let from_tag = h.from().ok().and_then(|f| f.tag().map(str::to_owned));
        let id = match &to_tag {
            Some(t) => self.by_local.get(&(call_id.clone(), t.clone())).copied(),
            None => from_tag
                .as_ref()
                .and_then(|f| self.by_remote.get(&(call_id.clone(), f.clone())).copied()),
        };
        if let Some(id) = id {
            if let Some(e) = self.entries.get_mut(&id) {
                e.reply_to = source;
                e.reply_transport = transport;
                let msg = Message::Request(req);
                match &mut e.machine {
                    Machine::Reg { .. } | Machine::Options { .. } => {}
                    Machine::Call { dialog, .. } => dialog.handle_message(now, msg),
                    Machine::Inbound { call, .. } => call.handle_message(now, msg),
                }
            }
            return self.service(id, now);
        }
        if req.method != Method::Ack {
            if let Some(resp) = self.request_handler.as_ref().and_then(|h| h(&req, source)) {
                return self.send(&Message::Response(resp), source, transport);
            }
        }
        match (&req.method, &to_tag) {
            (Method::Ack, _) => {
                self.stats.unmatched_dropped.fetch_add(1, Ordering::Relaxed);
            }
            (Method::Invite, None) => self.new_inbound(now, req, source, transport),
            (Method::Options, None) => {
                let mut resp = Response::from_request(&req, 200, "OK");
                let tag = self.ids_tag();
                let _ = resp.set_to_tag(&tag);
                resp.headers.push(
                    HeaderName::new("Allow"),
                    "INVITE, ACK, CANCEL, BYE, OPTIONS",
                );
                resp.headers
                    .push(HeaderName::new("Accept"), "application/sdp");
                self.send(&Message::Response(resp), source, transport);
            }
            (Method::Bye | Method::Cancel | Method::Invite | Method::Options, _)
            | (Method::Info | Method::Update | Method::Notify | Method::Prack, _) => {
                let resp = Response::from_request(&req, 481, "Call/Transaction Does Not Exist");
                self.send(&Message::Response(resp), source, transport);
            }
            _ => {
                let mut resp = Response::from_request(&req, 501, "Not Implemented");
                let tag = self.ids_tag();
                let _ = resp.set_to_tag(&tag);
                self.send(&Message::Response(resp), source, transport);
            }
        }
    }

    fn new_inbound(
        &mut self,
        now: Instant,
        req: Request,
        source: SocketAddr,
        transport: Transport,
    ) {
        let user = crate::transport::uri_host_port(&req.uri)
            .and(req.uri.split_once(':'))
            .and_then(|(_, rest)| rest.split_once('@').map(|(u, _)| u.to_owned()));
        let contact = match user {
            Some(u) => format!("sip:{u}@{}{}", self.public, transport.uri_param()),
            None => format!("sip:{}{}", self.public, transport.uri_param()),
        };
        let config = InboundConfig {
            contact,
            transport: transport.as_str().to_owned(),
            sent_by: self.sent_by(),
            timers: self.config.timers,
            reliable: transport.is_reliable(),
            user_agent: self.config.user_agent.clone(),
        };
        let ids = Box::new(RandomIds::new(&self.local.ip().to_string()));
        let bytes_for_400 = req.to_bytes();
        let call = match InboundCall::new(now, req, config, ids) {
            Ok(c) => c,
            Err(_) => return self.on_malformed(&bytes_for_400, source, transport),
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (events_tx, events) = mpsc::unbounded_channel();
        let req = call.request();
        let incoming = IncomingCall {
            id,
            from: req.headers.get("From").unwrap_or_default().to_owned(),
            to: req.headers.get("To").unwrap_or_default().to_owned(),
            request_uri: req.uri.clone(),
            call_id: call.call_id().to_owned(),
            offer: call.offer().cloned(),
            events,
            commands: self.command_tx.clone(),
        };
        let local_key = (call.call_id().to_owned(), call.local_tag().to_owned());
        let remote_key = call
            .remote_tag()
            .map(|t| (call.call_id().to_owned(), t.to_owned()));
        let dest = source;
        let mut keys = vec![local_key.clone()];
        self.by_local.insert(local_key, id);
        if let Some(k) = remote_key {
            self.by_remote.insert(k.clone(), id);
            keys.push(k);
        }
        let accepted = self.incoming.send(incoming).is_ok();
        self.entries.insert(
            id,
            Entry {
                machine: Machine::Inbound {
                    call,
                    events: events_tx,
                },
                dest,
                transport,
                reply_to: source,
                reply_transport: transport,
                scheduled: None,
                keys,
            },
        );
        if !accepted {
            if let Some(Entry {
                machine: Machine::Inbound { call, .. },
                ..
            }) = self.entries.get_mut(&id)
            {
                let _ = call.reject(now, 480, "Temporarily Unavailable");
            }
        }
        self.service(id, now);
    }

    // ------------------------------------------------------------------ commands

    fn on_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Register {
                id,
                trunk,
                dest,
                status,
                events,
            } => self.start_registration(now, id, trunk, dest, status, events),
            Command::Unregister { id } => {
                if let Some(Entry {
                    machine: Machine::Reg { reg, .. },
                    ..
                }) = self.entries.get_mut(&id)
                {
                    reg.unregister(now);
                }
                self.service(id, now);
            }
            Command::Call {
                id,
                config,
                dest,
                events,
            } => self.start_call(now, id, config, dest, events),
            Command::Hangup { id } => {
                if let Some(e) = self.entries.get_mut(&id) {
                    match &mut e.machine {
                        Machine::Call { dialog, .. } => {
                            let _ = dialog.hangup(now);
                        }
                        Machine::Inbound { call, .. } => {
                            let _ = call.hangup(now);
                        }
                        Machine::Reg { .. } | Machine::Options { .. } => {}
                    }
                }
                self.service(id, now);
            }
            Command::Ring { id } => self.with_inbound(now, id, |call| call.ring(now)),
            Command::Accept { id, sdp } => self.with_inbound(now, id, |call| call.accept(now, sdp)),
            Command::Reject { id, status, reason } => {
                self.with_inbound(now, id, |call| call.reject(now, status, &reason))
            }
            Command::SetRequestHandler { handler } => self.request_handler = handler,
            Command::Options {
                id,
                target,
                route,
                auth,
                transport,
                dest,
                reply,
            } => self.start_options(now, id, target, route, auth, transport, dest, reply),
            Command::Shutdown { done } => {
                let ids: Vec<Id> = self.entries.keys().copied().collect();
                for id in ids {
                    if let Some(e) = self.entries.get_mut(&id) {
                        match &mut e.machine {
                            Machine::Reg { reg, .. } => reg.unregister(now),
                            Machine::Options { .. } => {}
                            Machine::Call { dialog, .. } => {
                                let _ = dialog.hangup(now);
                            }
                            Machine::Inbound { call, .. } => {
                                let _ = call.hangup(now);
                            }
                        }
                    }
                    self.service(id, now);
                }
                self.shutdown = Some((now + SHUTDOWN_GRACE, done));
            }
        }
    }

    fn with_inbound(
        &mut self,
        now: Instant,
        id: Id,
        f: impl FnOnce(&mut InboundCall) -> crate::Result<()>,
    ) {
        if let Some(Entry {
            machine: Machine::Inbound { call, .. },
            ..
        }) = self.entries.get_mut(&id)
        {
            if let Err(e) = f(call) {
                tracing::debug!(error = %e, "inbound call command refused");
            }
        }
        self.service(id, now);
    }

    fn start_registration(
        &mut self,
        now: Instant,
        id: Id,
        trunk: TrunkConfig,
        dest: SocketAddr,
        status: watch::Sender<RegistrationStatus>,
        events: mpsc::UnboundedSender<RegistrationEvent>,
    ) {
        let t = trunk.transport;
        let mut config = RegistrationConfig::new(
            &format!("sip:{}", trunk.domain),
            &format!("sip:{}@{}", trunk.username, trunk.domain),
            &format!("sip:{}@{}{}", trunk.username, self.public, t.uri_param()),
            &self.sent_by(),
        );
        config.transport = t.as_str().to_owned();
        config.reliable = t.is_reliable();
        config.expires = trunk.expires;
        config.timers = self.config.timers;
        config.retry_initial = trunk.retry_initial;
        config.retry_max = trunk.retry_max;
        config.user_agent = self.config.user_agent.clone();
        config.auth = trunk.password.map(|password| AuthCredentials {
            username: trunk.username.clone(),
            password,
        });
        let ids = Box::new(RandomIds::new(&self.local.ip().to_string()));
        let reg = match Registration::new(now, config, ids) {
            Ok(r) => r,
            Err(e) => {
                let failure = crate::RegistrationFailure {
                    status: None,
                    reason: format!("invalid trunk configuration: {e}"),
                };
                let _ = status.send(RegistrationStatus::Failed(failure));
                return;
            }
        };
        let key = (reg.call_id().to_owned(), reg.local_tag().to_owned());
        self.by_local.insert(key.clone(), id);
        self.entries.insert(
            id,
            Entry {
                machine: Machine::Reg {
                    reg,
                    status,
                    events,
                },
                dest,
                transport: t,
                reply_to: dest,
                reply_transport: t,
                scheduled: None,
                keys: vec![key],
            },
        );
        self.service(id, now);
    }

    #[allow(clippy::too_many_arguments)] // the fields of Command::Options
    fn start_options(
        &mut self,
        now: Instant,
        id: Id,
        target: String,
        route: Option<String>,
        auth: Option<AuthCredentials>,
        t: Transport,
        dest: SocketAddr,
        reply: oneshot::Sender<crate::Result<OptionsResult>>,
    ) {
        let from_user = auth
            .as_ref()
            .map_or_else(|| "switchboard".to_owned(), |a| a.username.clone());
        let config = OptionsConfig {
            contact: format!("sip:{from_user}@{}{}", self.public, t.uri_param()),
            from_user,
            target,
            transport: t.as_str().to_owned(),
            sent_by: self.sent_by(),
            route,
            auth,
            timers: self.config.timers,
            reliable: t.is_reliable(),
            user_agent: self.config.user_agent.clone(),
        };
        let ids = Box::new(RandomIds::new(&self.local.ip().to_string()));
        let ping = match OptionsPing::new(now, config, ids) {
            Ok(p) => p,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let key = (ping.call_id().to_owned(), ping.local_tag().to_owned());
        self.by_local.insert(key.clone(), id);
        self.entries.insert(
            id,
            Entry {
                machine: Machine::Options {
                    ping,
                    reply: Some(reply),
                },
                dest,
                transport: t,
                reply_to: dest,
                reply_transport: t,
                scheduled: None,
                keys: vec![key],
            },
        );
        self.service(id, now);
    }

    fn start_call(
        &mut self,
        now: Instant,
        id: Id,
        config: super::CallConfig,
        dest: SocketAddr,
        events: mpsc::UnboundedSender<CallEvent>,
    ) {
        let t = config.transport;
        let user = config
            .from
            .split_once(':')
            .and_then(|(_, r)| r.split_once('@'))
            .map(|(u, _)| u.to_owned());
        let contact = match user {
            Some(u) => format!("sip:{u}@{}{}", self.public, t.uri_param()),
            None => format!("sip:{}{}", self.public, t.uri_param()),
        };
        let mut dc = dialog::CallConfig::new(
            &config.target,
            &config.from,
            &contact,
            &self.sent_by(),
            config.media,
        );
        dc.transport = t.as_str().to_owned();
        dc.reliable = t.is_reliable();
        dc.timers = self.config.timers;
        dc.auth = config.auth;
        dc.session_expires = config.session_expires;
        dc.user_agent = self.config.user_agent.clone();
        if config.proxy.is_some() {
            dc.outbound_proxy = Some(format!("sip:{dest};lr"));
        }
        let ids = Box::new(RandomIds::new(&self.local.ip().to_string()));
        let dialog = match Dialog::invite(now, dc, ids) {
            Ok(d) => d,
            Err(e) => {
                let _ = events.send(CallEvent::Ended(EndCause {
                    outcome: crate::CallOutcome::Failed,
                    status: None,
                    q850_cause: None,
                    reason: format!("invalid call: {e}"),
                    by_remote: false,
                }));
                return;
            }
        };
        let key = (
            dialog.call_id().to_owned(),
            dialog.local_tag().unwrap_or_default().to_owned(),
        );
        self.by_local.insert(key.clone(), id);
        self.entries.insert(
            id,
            Entry {
                machine: Machine::Call { dialog, events },
                dest,
                transport: t,
                reply_to: dest,
                reply_transport: t,
                scheduled: None,
                keys: vec![key],
            },
        );
        self.service(id, now);
    }

    // ------------------------------------------------------------------ output and timers

    fn run_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(e) = self.entries.get_mut(&id) else {
                continue;
            };
            if e.scheduled != Some(at) {
                continue; // superseded
            }
            e.scheduled = None;
            match &mut e.machine {
                Machine::Reg { reg, .. } => reg.handle_timeout(now),
                Machine::Options { ping, .. } => ping.handle_timeout(now),
                Machine::Call { dialog, .. } => dialog.handle_timeout(now),
                Machine::Inbound { call, .. } => call.handle_timeout(now),
            }
            self.service(id, now);
        }
    }

    /// Sends what entry `id` queued, forwards its events, reschedules it, drops it when done.
    fn service(&mut self, id: Id, _now: Instant) {
        let Some(mut e) = self.entries.remove(&id) else {
            return;
        };
        let mut out = Vec::new();
        let finished = match &mut e.machine {
            Machine::Reg {
                reg,
                status,
                events,
            } => {
                while let Some(m) = reg.poll_transmit() {
                    out.push(m);
                }
                while let Some(ev) = reg.poll_event() {
                    tracing::info!(event = ?ev, "registration");
                    let _ = events.send(ev);
                }
                if *status.borrow() != *reg.status() {
                    let _ = status.send(reg.status().clone());
                }
                matches!(reg.status(), RegistrationStatus::Unregistered { .. })
                    && reg.poll_timeout().is_none()
            }
            Machine::Call { dialog, events } => {
                while let Some(m) = dialog.poll_transmit() {
                    out.push(m);
                }
                while let Some(ev) = dialog.poll_event() {
                    let mapped = match ev {
                        DialogEvent::Trying => Some(CallEvent::Trying),
                        DialogEvent::Ringing { status, .. } => Some(CallEvent::Ringing { status }),
                        DialogEvent::EarlyMedia { media } => Some(CallEvent::EarlyMedia(media)),
                        DialogEvent::Answered { sdp, media } => {
                            Some(CallEvent::Answered { sdp, media })
                        }
                        DialogEvent::Terminated { reason } => {
                            Some(CallEvent::Ended(EndCause::from_termination(&reason)))
                        }
                        _ => None,
                    };
                    if let Some(ev) = mapped {
                        let _ = events.send(ev);
                    }
                }
                dialog.is_terminated() && dialog.poll_timeout().is_none()
            }
            Machine::Inbound { call, events } => {
                while let Some(m) = call.poll_transmit() {
                    out.push(m);
                }
                while let Some(ev) = call.poll_event() {
                    let _ = events.send(ev);
                }
                call.is_finished() && call.poll_timeout().is_none()
            }
            Machine::Options { ping, reply } => {
                while let Some(m) = ping.poll_transmit() {
                    out.push(m);
                }
                if let Some(result) = ping.poll_result() {
                    if let Some(reply) = reply.take() {
                        let _ = reply.send(result);
                    }
                }
                ping.is_finished()
            }
        };
        for m in &out {
            let (to, transport) = match m {
                Message::Response(_) => (e.reply_to, e.reply_transport),
                Message::Request(r) => (next_hop(r).unwrap_or(e.dest), e.transport),
            };
            self.send(m, to, transport);
        }
        if finished {
            for k in &e.keys {
                self.by_local.remove(k);
                self.by_remote.remove(k);
            }
            return;
        }
        let next = match &e.machine {
            Machine::Reg { reg, .. } => reg.poll_timeout(),
            Machine::Options { ping, .. } => ping.poll_timeout(),
            Machine::Call { dialog, .. } => dialog.poll_timeout(),
            Machine::Inbound { call, .. } => call.poll_timeout(),
        };
        if next != e.scheduled {
            e.scheduled = next;
            if let Some(at) = next {
                self.deadlines.push(Reverse((at, id)));
            }
        }
        self.entries.insert(id, e);
    }

    fn send(&mut self, msg: &Message, to: SocketAddr, transport: Transport) {
        let bytes = msg.to_bytes();
        match transport {
            Transport::Udp => {
                if let Err(e) = self.udp.try_send_to(&bytes, to) {
                    tracing::debug!(%to, error = %e, "udp send");
                }
            }
            Transport::Tcp => self.conns.send(to, bytes),
        }
    }
}

async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The address a request goes to: its top Route, else its Request-URI, when an IP literal.
fn next_hop(req: &Request) -> Option<SocketAddr> {
    let route = req.headers.route().ok().and_then(|r| r.into_iter().next());
    match route {
        Some(r) => uri_socket_addr(&r.uri, 5060),
        None => uri_socket_addr(&req.uri, 5060),
    }
}

/// RFC 3261 §18.2.1 / RFC 3581 §4: note the source address in the top Via.
fn stamp_received(req: &mut Request, source: SocketAddr) {
    let Ok(mut vias) = req.headers.via() else {
        return;
    };
    let Some(top) = vias.first_mut() else {
        return;
    };
    let ip = source.ip().to_string();
    let wants_rport = top.rport().is_some();
    if !wants_rport && top.host.trim_start_matches('[').trim_end_matches(']') == ip {
        return;
    }
    top.set_received(&ip, source.port());
    req.headers.remove("Via");
    for via in vias.iter().rev() {
        req.headers.push_front(HeaderName::VIA, via.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_and_rport_are_stamped() {
        let mut req = Request::new(Method::Options, "sip:a@127.0.0.1");
        req.headers.push(
            HeaderName::VIA,
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx;rport",
        );
        req.headers
            .push(HeaderName::VIA, "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKy");
        stamp_received(&mut req, "127.0.0.1:40000".parse().expect("addr"));
        let vias = req.headers.via().expect("Via");
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].received(), Some("127.0.0.1"));
        assert_eq!(vias[0].rport(), Some(Some(40000)));
        assert_eq!(vias[1].received(), None);
    }
}
