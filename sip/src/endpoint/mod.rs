//! The tokio driver: one [`Endpoint`] task owns the sockets, the table of registrations,
//! calls and inbound calls (the sans-IO machines of this crate), and one deadline heap.
//!
//! Handles talk to the task over channels: [`Endpoint::register`] returns a
//! [`RegistrationHandle`] (a `watch` of the status plus the event stream),
//! [`Endpoint::call`] a [`CallHandle`] streaming [`CallEvent`]s with `hangup()` / `cancel()`,
//! and [`Endpoint::next_incoming`] yields [`IncomingCall`]s to accept or reject (or
//! [`Endpoint::take_incoming`] hands the stream out, so the endpoint itself can be shared in
//! an `Arc`). [`Endpoint::options`] pings a peer with OPTIONS. The task
//! answers out-of-dialog OPTIONS with 200, requests it cannot match with 481 (or 501), and
//! malformed requests with 400 when they can be answered; everything else malformed is
//! dropped and counted in [`EndpointStats`].

mod ids;
mod options;
mod registrar;
mod task;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};

use crate::dialog::AuthCredentials;
use crate::error::{Error, Result};
use crate::inbound::{InboundEnd, InboundEvent};
use crate::message::{Request, Response};
use crate::outcome::EndCause;
use crate::registration::{RegistrationEvent, RegistrationStatus};
use crate::sdp::{LocalMedia, Negotiated, SessionDescription};
use crate::timer::TimerConfig;
pub use crate::transport::Transport;
pub use options::OptionsResult;
pub use registrar::{PasswordLookup, Registrar, RegistrarConfig, MAX_NONCES, NONCE_LIFETIME};

/// Where and how the endpoint listens.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// UDP and TCP are bound on this address (port 0: any free port, the same for both).
    pub bind: SocketAddr,
    /// Also listen on TCP (default true).
    pub tcp: bool,
    pub timers: TimerConfig,
    pub user_agent: Option<String>,
    /// The address written in Via sent-by and Contact when it differs from the bound one
    /// (a wildcard bind such as `0.0.0.0:5060`, or NAT); default: the bound address.
    pub advertised: Option<SocketAddr>,
    /// SO_RCVBUF and SO_SNDBUF asked for the UDP socket (default [`DEFAULT_UDP_BUFFER`]).
    /// The kernel caps it at `net.core.rmem_max` / `wmem_max`; see
    /// [`Endpoint::udp_buffer_sizes`] for what it granted.
    pub udp_buffer: usize,
}

/// The UDP socket buffers asked for by default: 4 MiB. The kernel's default (~208 KiB)
/// holds about 250 INVITEs; a burst of setups and teardowns at a few hundred concurrent
/// calls overflowed it (datagrams dropped, Timer A retransmitting).
pub const DEFAULT_UDP_BUFFER: usize = 4 * 1024 * 1024;

impl EndpointConfig {
    pub fn new(bind: SocketAddr) -> EndpointConfig {
        EndpointConfig {
            bind,
            tcp: true,
            timers: TimerConfig::default(),
            user_agent: Some("Switchboard".to_owned()),
            advertised: None,
            udp_buffer: DEFAULT_UDP_BUFFER,
        }
    }
}

/// One trunk to register with.
#[derive(Debug, Clone)]
pub struct TrunkConfig {
    /// Registrar / proxy address (`host:port`; resolved at `register`).
    pub server: String,
    /// The SIP domain: Request-URI `sip:{domain}` and AOR `sip:{username}@{domain}`.
    pub domain: String,
    pub username: String,
    pub password: Option<String>,
    pub expires: u32,
    pub transport: Transport,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl TrunkConfig {
    pub fn new(server: &str, domain: &str, username: &str, password: Option<&str>) -> Self {
        TrunkConfig {
            server: server.to_owned(),
            domain: domain.to_owned(),
            username: username.to_owned(),
            password: password.map(str::to_owned),
            expires: 3600,
            transport: Transport::Udp,
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
        }
    }
}

/// One outbound call.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// Request-URI and To, e.g. `sip:+15551234567@carrier.example`.
    pub target: String,
    /// From, e.g. `sip:dialer@carrier.example`.
    pub from: String,
    /// Send through this proxy (`host:port`); else to the host of `target`.
    pub proxy: Option<String>,
    pub auth: Option<AuthCredentials>,
    pub media: LocalMedia,
    pub transport: Transport,
    pub session_expires: Option<u32>,
}

impl CallConfig {
    pub fn new(target: &str, from: &str, media: LocalMedia) -> CallConfig {
        CallConfig {
            target: target.to_owned(),
            from: from.to_owned(),
            proxy: None,
            auth: None,
            media,
            transport: Transport::Udp,
            session_expires: None,
        }
    }
}

/// Answers out-of-dialog requests before the endpoint does: a registrar's REGISTER, or an
/// INVITE to challenge. Called on the endpoint task with the request and its source; a `Some`
/// response is sent as is (statelessly), `None` lets the endpoint go on as usual. ACKs are
/// never offered. It runs on the endpoint task, so it must be quick and must not block.
pub type RequestHandler = Arc<dyn Fn(&Request, SocketAddr) -> Option<Response> + Send + Sync>;

/// What a call handle streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    Trying,
    Ringing {
        status: u16,
    },
    /// Early media negotiated from a 18x with SDP.
    EarlyMedia(Negotiated),
    Answered {
        sdp: SessionDescription,
        media: Negotiated,
    },
    Ended(EndCause),
}

/// Counters of the endpoint task.
#[derive(Debug, Default)]
pub struct EndpointStats {
    /// Input that did not parse and could not be answered.
    pub malformed_dropped: AtomicU64,
    /// Malformed requests answered 400.
    pub bad_requests_answered: AtomicU64,
    /// Responses and ACKs matching nothing (dropped).
    pub unmatched_dropped: AtomicU64,
}

impl EndpointStats {
    pub fn malformed_dropped(&self) -> u64 {
        self.malformed_dropped.load(Ordering::Relaxed)
    }
    pub fn bad_requests_answered(&self) -> u64 {
        self.bad_requests_answered.load(Ordering::Relaxed)
    }
    pub fn unmatched_dropped(&self) -> u64 {
        self.unmatched_dropped.load(Ordering::Relaxed)
    }
}

pub(crate) type Id = u64;

pub(crate) enum Command {
    Register {
        id: Id,
        trunk: TrunkConfig,
        dest: SocketAddr,
        status: watch::Sender<RegistrationStatus>,
        events: mpsc::UnboundedSender<RegistrationEvent>,
    },
    Unregister {
        id: Id,
    },
    Call {
        id: Id,
        config: CallConfig,
        dest: SocketAddr,
        events: mpsc::UnboundedSender<CallEvent>,
    },
    Hangup {
        id: Id,
    },
    Ring {
        id: Id,
    },
    Accept {
        id: Id,
        sdp: Vec<u8>,
    },
    Reject {
        id: Id,
        status: u16,
        reason: String,
    },
    Options {
        id: Id,
        target: String,
        route: Option<String>,
        auth: Option<AuthCredentials>,
        transport: Transport,
        dest: SocketAddr,
        reply: oneshot::Sender<Result<OptionsResult>>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
    SetRequestHandler {
        handler: Option<RequestHandler>,
    },
}

/// The running endpoint. Dropping it (and every handle) stops the task.
#[derive(Debug)]
pub struct Endpoint {
    commands: mpsc::UnboundedSender<Command>,
    local_addr: SocketAddr,
    /// `None` once handed out by [`Endpoint::take_incoming`].
    incoming: Option<mpsc::UnboundedReceiver<IncomingCall>>,
    stats: Arc<EndpointStats>,
    next_id: Arc<AtomicU64>,
    /// Set by [`Endpoint::enable_registrar`].
    registrar: std::sync::OnceLock<Arc<Registrar>>,
    /// SO_RCVBUF and SO_SNDBUF of the UDP socket as the kernel reports them after bind.
    udp_buffers: (usize, usize),
}

impl Endpoint {
    /// Binds UDP (and TCP on the same port) and starts the task.
    pub async fn bind(config: EndpointConfig) -> Result<Endpoint> {
        let io = |op| move |e: std::io::Error| Error::Io { op, kind: e.kind() };
        let (udp, tcp) = if config.tcp && config.bind.port() == 0 {
            // Find a port free for both.
            let mut attempt = 0;
            loop {
                let udp = UdpSocket::bind(config.bind).await.map_err(io("bind udp"))?;
                let addr = udp.local_addr().map_err(io("bind udp"))?;
                match TcpListener::bind(addr).await {
                    Ok(l) => break (udp, Some(l)),
                    Err(e) if attempt >= 8 => return Err(io("bind tcp")(e)),
                    Err(_) => attempt += 1,
                }
            }
        } else {
            let udp = UdpSocket::bind(config.bind).await.map_err(io("bind udp"))?;
            let tcp = if config.tcp {
                Some(
                    TcpListener::bind(config.bind)
                        .await
                        .map_err(io("bind tcp"))?,
                )
            } else {
                None
            };
            (udp, tcp)
        };
        let local_addr = udp.local_addr().map_err(io("bind udp"))?;
        let udp_buffers = set_udp_buffers(&udp, config.udp_buffer);
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let stats = Arc::new(EndpointStats::default());
        let next_id = Arc::new(AtomicU64::new(1));
        let task = task::Task::new(
            config,
            local_addr,
            udp,
            tcp,
            command_rx,
            commands.clone(),
            incoming_tx,
            stats.clone(),
            next_id.clone(),
        );
        tokio::spawn(task.run());
        Ok(Endpoint {
            commands,
            local_addr,
            incoming: Some(incoming),
            stats,
            next_id,
            registrar: std::sync::OnceLock::new(),
            udp_buffers,
        })
    }

    /// The UDP socket's receive and send buffer sizes in bytes as the kernel reports them
    /// (Linux reports twice what it grants for payload, for its bookkeeping).
    pub fn udp_buffer_sizes(&self) -> (usize, usize) {
        self.udp_buffers
    }

    /// The bound address (Via sent-by and Contact use it).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    fn id(&self) -> Id {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn send(&self, cmd: Command) -> Result<()> {
        self.commands.send(cmd).map_err(|_| Error::EndpointClosed)
    }

    /// Starts registering `trunk` (and keeps the binding refreshed).
    pub async fn register(&self, trunk: TrunkConfig) -> Result<RegistrationHandle> {
        let dest = resolve(&trunk.server).await?;
        let id = self.id();
        let (status_tx, status) = watch::channel(RegistrationStatus::Registering);
        let (events_tx, events) = mpsc::unbounded_channel();
        self.send(Command::Register {
            id,
            trunk,
            dest,
            status: status_tx,
            events: events_tx,
        })?;
        Ok(RegistrationHandle {
            id,
            status,
            events,
            commands: self.commands.clone(),
        })
    }

    /// Places a call.
    pub async fn call(&self, config: CallConfig) -> Result<CallHandle> {
        let dest = match &config.proxy {
            Some(p) => resolve(p).await?,
            None => target_addr(&config.target).await?,
        };
        let id = self.id();
        let (events_tx, events) = mpsc::unbounded_channel();
        self.send(Command::Call {
            id,
            config,
            dest,
            events: events_tx,
        })?;
        Ok(CallHandle {
            id,
            events,
            commands: self.commands.clone(),
        })
    }

    /// Makes this endpoint the registrar of agent softphones (see [`Registrar`]): their
    /// REGISTERs are answered by `registrar` (installed as the [`RequestHandler`], replacing
    /// any other), and [`Endpoint::lookup_binding`] finds their contacts. Once per endpoint.
    pub fn enable_registrar(&self, registrar: Arc<Registrar>) -> Result<()> {
        if self.registrar.set(registrar.clone()).is_err() {
            return Err(Error::InvalidState {
                action: "enable a second registrar",
                state: "registrar enabled",
            });
        }
        let handler: RequestHandler =
            Arc::new(move |req, _source| registrar.handle(req, std::time::Instant::now()));
        self.set_request_handler(Some(handler))
    }

    /// The contact URI `user` registered with this endpoint's registrar, while it lasts
    /// (`None` without a registrar).
    pub fn lookup_binding(&self, user: &str) -> Option<String> {
        self.registrar
            .get()?
            .lookup(user, std::time::Instant::now())
    }

    /// Installs (or with `None` removes) the [`RequestHandler`] offered each out-of-dialog
    /// request before the endpoint's own handling. Requests already received are not offered.
    pub fn set_request_handler(&self, handler: Option<RequestHandler>) -> Result<()> {
        self.send(Command::SetRequestHandler { handler })
    }

    /// The next inbound INVITE (`None` once the task stopped, or after
    /// [`Endpoint::take_incoming`]).
    pub async fn next_incoming(&mut self) -> Option<IncomingCall> {
        match &mut self.incoming {
            Some(rx) => rx.recv().await,
            None => None,
        }
    }

    /// Hands out the stream of inbound INVITEs (once; `None` after that), so the endpoint
    /// can be shared in an `Arc` while one owner takes the calls. Dropping the stream makes
    /// the endpoint refuse further INVITEs with 480.
    pub fn take_incoming(&mut self) -> Option<IncomingCalls> {
        self.incoming.take().map(|rx| IncomingCalls { rx })
    }

    /// Pings `target_uri` (e.g. `sip:carrier.example:5060`, `;transport=tcp` for TCP) with
    /// an out-of-dialog OPTIONS, through `proxy` (`host:port`, sent as a loose Route) when
    /// given, answering one digest challenge with `auth`. Any final response is a result
    /// (the peer is reachable); no response within Timer F (64·T1) is
    /// [`Error::Timeout`], an unusable target [`Error::InvalidHeader`].
    pub async fn options(
        &self,
        target_uri: &str,
        proxy: Option<&str>,
        auth: Option<AuthCredentials>,
    ) -> Result<OptionsResult> {
        let transport = uri_transport(target_uri);
        let dest = match proxy {
            Some(p) => resolve(p).await?,
            None => target_addr(target_uri).await?,
        };
        let route = proxy.map(|_| format!("sip:{dest};lr"));
        let (reply, result) = oneshot::channel();
        self.send(Command::Options {
            id: self.id(),
            target: target_uri.to_owned(),
            route,
            auth,
            transport,
            dest,
            reply,
        })?;
        result.await.map_err(|_| Error::EndpointClosed)?
    }

    /// Unregisters every trunk and ends every call (BYE / CANCEL), waiting at most a few
    /// seconds for the answers, then stops the task.
    pub async fn shutdown(self) {
        self.close().await;
    }

    /// [`Endpoint::shutdown`] through a shared reference (for an endpoint in an `Arc`):
    /// handles and calls on it fail with [`Error::EndpointClosed`] afterwards.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.send(Command::Shutdown { done }).is_ok() {
            let _ = wait.await;
        }
    }
}

/// The inbound INVITEs of an endpoint, taken out with [`Endpoint::take_incoming`].
#[derive(Debug)]
pub struct IncomingCalls {
    rx: mpsc::UnboundedReceiver<IncomingCall>,
}

impl IncomingCalls {
    /// The next inbound INVITE (`None` once the endpoint stopped).
    pub async fn next(&mut self) -> Option<IncomingCall> {
        self.rx.recv().await
    }
}

/// The transport a URI asks for with `;transport=` (UDP unless it says TCP).
/// Asks for `bytes` of receive and send buffer on `udp` (capped by the kernel; a refusal only
/// logs) and returns the sizes in effect.
fn set_udp_buffers(udp: &UdpSocket, bytes: usize) -> (usize, usize) {
    let sock = socket2::SockRef::from(udp);
    if bytes > 0 {
        if let Err(e) = sock.set_recv_buffer_size(bytes) {
            tracing::debug!(error = %e, bytes, "SO_RCVBUF refused");
        }
        if let Err(e) = sock.set_send_buffer_size(bytes) {
            tracing::debug!(error = %e, bytes, "SO_SNDBUF refused");
        }
    }
    (
        sock.recv_buffer_size().unwrap_or(0),
        sock.send_buffer_size().unwrap_or(0),
    )
}

fn uri_transport(uri: &str) -> Transport {
    let params = uri.split('?').next().unwrap_or(uri);
    let tcp = params.split(';').skip(1).any(|p| {
        p.split_once('=').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transport") && v.trim().eq_ignore_ascii_case("tcp")
        })
    });
    if tcp {
        Transport::Tcp
    } else {
        Transport::Udp
    }
}

/// Where a request to `uri` goes without a proxy: its host and port (5060 by default).
async fn target_addr(uri: &str) -> Result<SocketAddr> {
    match crate::transport::uri_socket_addr(uri, 5060) {
        Some(a) => Ok(a),
        None => {
            let (host, port) =
                crate::transport::uri_host_port(uri).ok_or(Error::InvalidHeader("Request-URI"))?;
            let plausible = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
            if !plausible {
                return Err(Error::InvalidHeader("Request-URI"));
            }
            resolve(&format!("{host}:{}", port.unwrap_or(5060))).await
        }
    }
}

async fn resolve(server: &str) -> Result<SocketAddr> {
    if let Ok(a) = server.parse() {
        return Ok(a);
    }
    let hostport = if server.contains(':') {
        server.to_owned()
    } else {
        format!("{server}:5060")
    };
    tokio::net::lookup_host(hostport)
        .await
        .map_err(|e| Error::Io {
            op: "resolve",
            kind: e.kind(),
        })?
        .next()
        .ok_or(Error::Io {
            op: "resolve",
            kind: std::io::ErrorKind::NotFound,
        })
}

/// A trunk registration.
#[derive(Debug)]
pub struct RegistrationHandle {
    id: Id,
    status: watch::Receiver<RegistrationStatus>,
    events: mpsc::UnboundedReceiver<RegistrationEvent>,
    commands: mpsc::UnboundedSender<Command>,
}

impl RegistrationHandle {
    pub fn status(&self) -> RegistrationStatus {
        self.status.borrow().clone()
    }

    /// A receiver of the status, for watching changes.
    pub fn watch(&self) -> watch::Receiver<RegistrationStatus> {
        self.status.clone()
    }

    /// The next event (sipRegistered / sipRegistrationFailed / sipUnregistered).
    pub async fn next_event(&mut self) -> Option<RegistrationEvent> {
        self.events.recv().await
    }

    /// An event already received, without waiting.
    pub fn try_next_event(&mut self) -> Option<RegistrationEvent> {
        self.events.try_recv().ok()
    }

    /// Waits until the status is no longer `Registering` and returns it.
    pub async fn settled(&mut self) -> RegistrationStatus {
        let result = self
            .status
            .wait_for(|s| !matches!(s, RegistrationStatus::Registering))
            .await
            .map(|s| s.clone());
        result.unwrap_or_else(|_| self.status())
    }

    /// Sends `Expires: 0` and waits for the Unregistered status.
    pub async fn unregister(&mut self) -> RegistrationStatus {
        if self
            .commands
            .send(Command::Unregister { id: self.id })
            .is_err()
        {
            return self.status();
        }
        let result = self
            .status
            .wait_for(|s| matches!(s, RegistrationStatus::Unregistered { .. }))
            .await
            .map(|s| s.clone());
        result.unwrap_or_else(|_| self.status())
    }
}

/// An outbound call.
#[derive(Debug)]
pub struct CallHandle {
    id: Id,
    events: mpsc::UnboundedReceiver<CallEvent>,
    commands: mpsc::UnboundedSender<Command>,
}

impl CallHandle {
    /// The next event; `None` after `Ended`.
    pub async fn next_event(&mut self) -> Option<CallEvent> {
        self.events.recv().await
    }

    /// Ends the call: BYE when answered, else CANCEL.
    pub fn hangup(&self) -> Result<()> {
        self.commands
            .send(Command::Hangup { id: self.id })
            .map_err(|_| Error::EndpointClosed)
    }

    /// Cancels a call not answered yet (same as `hangup`, named for intent).
    pub fn cancel(&self) -> Result<()> {
        self.hangup()
    }
}

/// An inbound INVITE waiting for `accept` or `reject`.
#[derive(Debug)]
pub struct IncomingCall {
    id: Id,
    /// From and To as received.
    pub from: String,
    pub to: String,
    pub request_uri: String,
    pub call_id: String,
    /// The caller's SDP offer, when parseable.
    pub offer: Option<SessionDescription>,
    events: mpsc::UnboundedReceiver<InboundEvent>,
    commands: mpsc::UnboundedSender<Command>,
}

impl IncomingCall {
    fn send(&self, cmd: Command) -> Result<()> {
        self.commands.send(cmd).map_err(|_| Error::EndpointClosed)
    }

    /// Sends 180 Ringing.
    pub fn ring(&self) -> Result<()> {
        self.send(Command::Ring { id: self.id })
    }

    /// Answers 200 OK with `sdp`.
    pub fn accept(&self, sdp: &SessionDescription) -> Result<()> {
        self.send(Command::Accept {
            id: self.id,
            sdp: sdp.to_bytes(),
        })
    }

    /// Refuses with `status` (3xx–6xx).
    pub fn reject(&self, status: u16, reason: &str) -> Result<()> {
        self.send(Command::Reject {
            id: self.id,
            status,
            reason: reason.to_owned(),
        })
    }

    /// BYE after the answer, 603 before.
    pub fn hangup(&self) -> Result<()> {
        self.send(Command::Hangup { id: self.id })
    }

    /// The next event (Confirmed, Terminated); `None` after the end.
    pub async fn next_event(&mut self) -> Option<InboundEvent> {
        self.events.recv().await
    }

    /// Waits for the end of the call.
    pub async fn ended(&mut self) -> Option<InboundEnd> {
        while let Some(ev) = self.events.recv().await {
            if let InboundEvent::Terminated { reason } = ev {
                return Some(reason);
            }
        }
        None
    }
}
