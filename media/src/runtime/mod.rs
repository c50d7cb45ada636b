//! The media runtime: the thin tokio driver that serves thousands of RTP streams with a few
//! threads, around the sans-IO [`crate::session::RtpSession`].
//!
//! # Shape
//!
//! - **N media loops** ([`RuntimeConfig::loops`], default one per core), each a thread running
//!   its own current-thread tokio runtime and owning many streams: a stream is a UDP socket
//!   pair (RTP on an even port of the range, RTCP on the next odd one, or one port with
//!   rtcp-mux), its session, its [`FrameSource`] and its [`FrameSink`].
//! - **Pacing**: one 20 ms tokio interval per loop (`MissedTickBehavior::Skip`). Each tick
//!   pulls one frame from every stream's source, packetizes it into a loop-owned buffer and
//!   sends it with `try_send_to`; the same pass runs the sessions' 5 s RTCP/quality timers.
//!   A skipped tick advances the RTP timestamps (the receiver sees a gap, not a time warp) and
//!   is counted as late, as is a tick that starts more than [`RuntimeConfig::late_tick_after`]
//!   after its deadline ([`LoopStats`]).
//! - **Receive**: no task per stream. Each socket's readiness wakes a per-socket waker that
//!   sets a bit in the loop's atomic bitset (see `ready.rs`); the loop drains exactly the
//!   ready sockets with `try_recv_from` into one loop-owned buffer until `WouldBlock`, feeds the
//!   session, decodes into a loop-owned PCM buffer and calls the sink. No lock, channel hop or
//!   allocation per packet; commands from the control handle (open, close, bridge...) are the
//!   only messages and never carry packets.
//! - **Codecs** ([`Codec`]): PCMU, PCMA, or Opus on its negotiated payload type. All audio
//!   inside is 8 kHz PCM: an Opus stream's received packets are decoded to 8 kHz for the sink
//!   (AMD, recording and DTMF see the same frames as with G.711) and its source's 8 kHz
//!   frames ([`FrameSource::next_pcm`]) are encoded; the RTP clock is 48 kHz (RFC 7587). The
//!   Opus encoder and decoder are allocated when the stream gets the codec — at open, or by
//!   [`StreamHandle::set_codec`] once SDP has negotiated — on the caller's thread, never on
//!   the loop. A sequence gap of up to 60 ms on an Opus stream is filled by the decoder
//!   (concealment, or in-band FEC for the frame just before the packet that arrived) and the
//!   concealed frames reach the sink marked [`ReceivedFrame::concealed`]; a longer gap stays
//!   silent, and an Opus packet arriving after later ones were decoded is not decoded.
//! - **Bridging**: [`MediaHandle::bridge`] joins two streams of the same loop. Each packet
//!   received on one is re-sent from the other to that leg's remote with the other leg's own
//!   SSRC, sequence and timestamp (continuity for the far end): the payload is copied as is
//!   when both legs have the same codec (Opus on two payload types included), and transcoded
//!   through 8 kHz PCM otherwise (μ-law ↔ A-law, Opus ↔ G.711; concealed Opus frames are
//!   sent too, and PCM for an Opus leg is cut into 20 ms frames). A bridged leg's own source
//!   is paused. Open the second leg with [`StreamConfig::colocate_with`] to put it on the
//!   first one's loop; bridging streams of two loops is refused.
//!
//! Ports are released when a stream closes (its sockets are dropped); dropping a
//! [`StreamHandle`] closes its stream.

mod media;
mod ports;
mod ready;
mod worker;

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

pub use media::{
    Clip, FrameSink, FrameSource, LoopingClip, NullSink, ReceivedFrame, Silence, SourceFrame,
    TeeSink,
};

pub use crate::codec::{Codec, OpusSettings};
use crate::dtmf::DtmfSender;
use crate::session::{QualityReport, SessionConfig, SessionCounters, PTIME};
use crate::stats::StreamStats;
use crate::{Error, Result};
use ports::PortAllocator;
use worker::{Command, LoopShared, NewStream, OpusState};

/// Configuration of a [`MediaRuntime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Number of media loops (threads); 0 means one per available core.
    pub loops: usize,
    /// Address the stream sockets bind to.
    pub bind_ip: IpAddr,
    /// Lowest port of the RTP/RTCP range.
    pub port_min: u16,
    /// Highest port of the range.
    pub port_max: u16,
    /// RTP and RTCP on one port (RFC 5761) for every stream.
    pub rtcp_mux: bool,
    /// A pacing tick starting later than this after its deadline counts as late.
    pub late_tick_after: Duration,
    /// Opus encoder settings of every Opus stream.
    pub opus: OpusSettings,
}

impl Default for RuntimeConfig {
    /// One loop per core, all interfaces, ports 10000–20000, RTCP on odd ports, late after
    /// 10 ms, Opus at 16 kb/s and complexity 5.
    fn default() -> Self {
        Self {
            loops: 0,
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port_min: 10000,
            port_max: 20000,
            rtcp_mux: false,
            late_tick_after: Duration::from_millis(10),
            opus: OpusSettings::default(),
        }
    }
}

/// Identifies a stream: its loop, its slot there and the slot's generation (so a stale id
/// never reaches a newer stream in a reused slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId {
    loop_index: u16,
    slot: u32,
    generation: u32,
}

impl StreamId {
    /// The media loop serving the stream.
    pub fn loop_index(&self) -> usize {
        usize::from(self.loop_index)
    }
}

/// What to open.
pub struct StreamConfig {
    /// Where to send (from SDP); latching replaces it with the peer's actual source.
    pub remote: Option<SocketAddr>,
    /// Codec (what SDP negotiated; change it later with [`StreamHandle::set_codec`]).
    pub codec: Codec,
    /// Payload type of telephone-event, if negotiated.
    pub dtmf_payload_type: Option<u8>,
    /// What to send every 20 ms (`None`: send nothing until a source is set).
    pub source: Option<Box<dyn FrameSource>>,
    /// Where received audio and events go.
    pub sink: Option<Box<dyn FrameSink>>,
    /// Put the stream on the same loop as this one (required for bridging them).
    pub colocate_with: Option<StreamId>,
}

impl StreamConfig {
    /// A stream with `codec` (a [`Codec`], or a G.711 [`crate::g711::Law`]),
    /// telephone-event on 101, and nothing else.
    pub fn new(codec: impl Into<Codec>) -> Self {
        Self {
            remote: None,
            codec: codec.into(),
            dtmf_payload_type: Some(crate::dtmf::DEFAULT_PAYLOAD_TYPE),
            source: None,
            sink: None,
            colocate_with: None,
        }
    }
}

impl core::fmt::Debug for StreamConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamConfig")
            .field("remote", &self.remote)
            .field("codec", &self.codec)
            .field("dtmf_payload_type", &self.dtmf_payload_type)
            .field("source", &self.source.is_some())
            .field("sink", &self.sink.is_some())
            .field("colocate_with", &self.colocate_with)
            .finish()
    }
}

/// A stream's state, as answered by [`StreamHandle::stats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamReport {
    /// Receive statistics of the current remote SSRC.
    pub stats: StreamStats,
    /// Send, drop and latch counters.
    pub counters: SessionCounters,
    /// Where RTP goes now.
    pub remote: Option<SocketAddr>,
    /// Latched source and SSRC.
    pub latched: Option<(SocketAddr, u32)>,
    /// Last RTT from RTCP.
    pub rtt: Option<Duration>,
    /// Last 5 s quality report.
    pub quality: Option<QualityReport>,
    /// Datagrams that could not be sent (socket buffer full, unreachable).
    pub send_errors: u64,
    /// The stream's codec now.
    pub codec: Codec,
    /// Received packets the codec could not decode (malformed Opus).
    pub decode_errors: u64,
    /// Lost Opus frames the decoder concealed (or rebuilt from in-band FEC).
    pub concealed_frames: u64,
}

/// Counters of one media loop, published once per tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoopStats {
    /// Streams open on the loop.
    pub streams: u64,
    /// Pacing ticks run.
    pub ticks: u64,
    /// Ticks that started late (see [`RuntimeConfig::late_tick_after`]) or were skipped.
    pub late_ticks: u64,
    /// Ticks skipped entirely (the loop was busy for more than 20 ms).
    pub skipped_ticks: u64,
    /// Largest tick lateness seen, µs.
    pub max_lateness_us: u64,
    /// RTP packets sent (media, events, relayed).
    pub packets_sent: u64,
    /// Datagrams received.
    pub packets_received: u64,
    /// Send failures.
    pub send_errors: u64,
}

#[derive(Debug, Default)]
pub(crate) struct LoopCounters {
    streams: AtomicU64,
    ticks: AtomicU64,
    late_ticks: AtomicU64,
    skipped_ticks: AtomicU64,
    max_lateness_us: AtomicU64,
    packets_sent: AtomicU64,
    packets_received: AtomicU64,
    send_errors: AtomicU64,
}

impl LoopCounters {
    pub(crate) fn publish(&self, s: &LoopStats) {
        let r = Ordering::Relaxed;
        self.streams.store(s.streams, r);
        self.ticks.store(s.ticks, r);
        self.late_ticks.store(s.late_ticks, r);
        self.skipped_ticks.store(s.skipped_ticks, r);
        self.max_lateness_us.store(s.max_lateness_us, r);
        self.packets_sent.store(s.packets_sent, r);
        self.packets_received.store(s.packets_received, r);
        self.send_errors.store(s.send_errors, r);
    }

    fn read(&self) -> LoopStats {
        let r = Ordering::Relaxed;
        LoopStats {
            streams: self.streams.load(r),
            ticks: self.ticks.load(r),
            late_ticks: self.late_ticks.load(r),
            skipped_ticks: self.skipped_ticks.load(r),
            max_lateness_us: self.max_lateness_us.load(r),
            packets_sent: self.packets_sent.load(r),
            packets_received: self.packets_received.load(r),
            send_errors: self.send_errors.load(r),
        }
    }
}

struct LoopHandle {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<LoopShared>,
}

struct Inner {
    config: RuntimeConfig,
    loops: Vec<LoopHandle>,
    ports: PortAllocator,
    next_loop: AtomicUsize,
    origin: Instant,
    unix_origin: Duration,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Starts media runtimes.
#[derive(Debug, Clone, Copy)]
pub struct MediaRuntime;

impl MediaRuntime {
    /// Starts the media loops (threads) and returns the control handle. Call it from anywhere:
    /// the loops do not run on the caller's tokio runtime.
    pub fn start(config: RuntimeConfig) -> Result<MediaHandle> {
        let loops = match config.loops {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        if loops > usize::from(u16::MAX) {
            return Err(Error::InvalidRuntimeConfig {
                reason: "too many media loops",
            });
        }
        let ports = PortAllocator::new(config.bind_ip, config.port_min, config.port_max)?;
        let origin = Instant::now();
        let unix_origin = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let mut handles = Vec::with_capacity(loops);
        let mut threads = Vec::with_capacity(loops);
        for index in 0..loops {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
                .map_err(|e| Error::Io { kind: e.kind() })?;
            let (tx, rx) = mpsc::unbounded_channel();
            // Every stream of the range could land on one loop (colocation).
            let shared = Arc::new(LoopShared::new(ports.pairs()));
            let w = worker::Worker::new(
                index as u16,
                origin,
                config.late_tick_after,
                Arc::clone(&shared),
                rx,
            );
            let thread = std::thread::Builder::new()
                .name(format!("sb-media-{index}"))
                .spawn(move || rt.block_on(w.run()))
                .map_err(|e| Error::Io { kind: e.kind() })?;
            handles.push(LoopHandle {
                commands: tx,
                shared,
            });
            threads.push(thread);
        }
        Ok(MediaHandle {
            inner: Arc::new(Inner {
                config,
                loops: handles,
                ports,
                next_loop: AtomicUsize::new(0),
                origin,
                unix_origin,
                threads: Mutex::new(threads),
            }),
        })
    }
}

/// Controls a running media runtime; cheap to clone.
#[derive(Clone)]
pub struct MediaHandle {
    inner: Arc<Inner>,
}

impl core::fmt::Debug for MediaHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MediaHandle")
            .field("config", &self.inner.config)
            .field("loops", &self.inner.loops.len())
            .finish()
    }
}

fn random_u64() -> u64 {
    // SipHash with per-process random keys: fine for SSRC and initial sequence/timestamp
    // (RFC 3550 asks for unpredictable, not cryptographic, values).
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

impl MediaHandle {
    /// Number of media loops.
    pub fn loops(&self) -> usize {
        self.inner.loops.len()
    }

    /// Time since the runtime started (the origin of arrival times and session clocks).
    pub fn elapsed(&self) -> Duration {
        self.inner.origin.elapsed()
    }

    /// Opens a stream: binds its ports, picks a loop (round-robin, or the one of
    /// `colocate_with`) and hands the stream to it. Sending starts at the loop's next tick.
    pub fn open_stream(&self, config: StreamConfig) -> Result<StreamHandle> {
        let inner = &self.inner;
        let loop_index = match config.colocate_with {
            Some(id) => id.loop_index(),
            None => inner.next_loop.fetch_add(1, Ordering::Relaxed) % inner.loops.len(),
        };
        let lp = inner.loops.get(loop_index).ok_or(Error::UnknownStream)?;
        let bound = inner.ports.allocate(inner.config.rtcp_mux)?;
        let local_addr = bound
            .rtp
            .local_addr()
            .map_err(|e| Error::Io { kind: e.kind() })?;
        let rtcp_addr = match &bound.rtcp {
            Some(s) => s.local_addr().map_err(|e| Error::Io { kind: e.kind() })?,
            None => local_addr,
        };
        let (slot, generation) = lp.shared.allocate_slot()?;
        let id = StreamId {
            loop_index: loop_index as u16,
            slot,
            generation,
        };
        let opus = OpusState::for_codec(config.codec, inner.config.opus)?;
        let r = random_u64();
        let mut session = SessionConfig::new(config.codec, r as u32, (r >> 32) as u16, 0);
        session.initial_timestamp = random_u64() as u32;
        session.remote = config.remote;
        session.rtcp_mux = inner.config.rtcp_mux;
        session.dtmf_payload_type = config.dtmf_payload_type;
        session.unix_origin = inner.unix_origin;
        let new = NewStream {
            id,
            rtp: bound.rtp,
            rtcp: bound.rtcp,
            session,
            source: config.source,
            sink: config.sink,
            opus,
        };
        if lp.commands.send(Command::Open(Box::new(new))).is_err() {
            lp.shared.free_slot(slot);
            return Err(Error::RuntimeStopped);
        }
        Ok(StreamHandle {
            id,
            local_addr,
            rtcp_addr,
            commands: lp.commands.clone(),
            opus_settings: inner.config.opus,
            closed: false,
        })
    }

    /// Bridges two streams of the same loop (see the module docs); replaces any previous
    /// bridge of either.
    pub async fn bridge(&self, a: &StreamHandle, b: &StreamHandle) -> Result<()> {
        if a.id.loop_index != b.id.loop_index {
            return Err(Error::BridgeAcrossLoops);
        }
        if a.id == b.id {
            return Err(Error::UnknownStream);
        }
        let (tx, rx) = oneshot::channel();
        a.send(Command::Bridge {
            a: a.id,
            b: b.id,
            reply: tx,
        })?;
        rx.await.map_err(|_| Error::RuntimeStopped)?
    }

    /// Ends the bridge of `a` (and of its peer); their sources resume.
    pub fn unbridge(&self, a: &StreamHandle) -> Result<()> {
        a.send(Command::Unbridge { id: a.id })
    }

    /// Counters of every loop.
    pub fn loop_stats(&self) -> Vec<LoopStats> {
        self.inner
            .loops
            .iter()
            .map(|l| l.shared.counters.read())
            .collect()
    }

    /// Stops every loop (closing all streams) and waits for the threads to end. Do not call
    /// it from a media loop.
    pub fn shutdown(&self) {
        for l in &self.inner.loops {
            let _ = l.commands.send(Command::Shutdown);
        }
        let threads = core::mem::take(
            &mut *self
                .inner
                .threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for t in threads {
            let _ = t.join();
        }
    }
}

/// A stream opened with [`MediaHandle::open_stream`]. Dropping it closes the stream.
pub struct StreamHandle {
    id: StreamId,
    local_addr: SocketAddr,
    rtcp_addr: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
    opus_settings: OpusSettings,
    closed: bool,
}

impl core::fmt::Debug for StreamHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamHandle")
            .field("id", &self.id)
            .field("local_addr", &self.local_addr)
            .field("rtcp_addr", &self.rtcp_addr)
            .finish()
    }
}

impl StreamHandle {
    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// The local RTP address (for SDP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The local RTCP address (the RTP address with rtcp-mux).
    pub fn rtcp_addr(&self) -> SocketAddr {
        self.rtcp_addr
    }

    fn send(&self, c: Command) -> Result<()> {
        self.commands.send(c).map_err(|_| Error::RuntimeStopped)
    }

    /// The stream's statistics and counters now; `None` if the stream is gone.
    pub async fn stats(&self) -> Option<StreamReport> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stats {
            id: self.id,
            reply: tx,
        })
        .ok()?;
        rx.await.ok().flatten()
    }

    /// Sets where to send (e.g. from a re-INVITE); the stream latches again.
    pub fn set_remote(&self, remote: SocketAddr) -> Result<()> {
        self.send(Command::SetRemote {
            id: self.id,
            remote: Some(remote),
        })
    }

    /// Switches the stream to `codec` with telephone events on `dtmf_payload_type` (what SDP
    /// negotiated after the stream was opened for the offer). Switching to Opus allocates
    /// the encoder and decoder here, on the caller's thread. Statistics restart if the RTP
    /// clock changes.
    pub fn set_codec(&self, codec: Codec, dtmf_payload_type: Option<u8>) -> Result<()> {
        let opus = OpusState::for_codec(codec, self.opus_settings)?;
        self.send(Command::SetCodec {
            id: self.id,
            codec,
            dtmf_payload_type,
            opus,
        })
    }

    /// Replaces the source (`None`: send nothing).
    pub fn set_source(&self, source: Option<Box<dyn FrameSource>>) -> Result<()> {
        self.send(Command::SetSource {
            id: self.id,
            source,
        })
    }

    /// Replaces the sink (`None`: drop what is received). The old sink's
    /// [`FrameSink::on_close`] runs on the media loop, then it is dropped there; the new one
    /// gets every packet processed after the loop takes the command.
    pub fn set_sink(&self, sink: Option<Box<dyn FrameSink>>) -> Result<()> {
        self.send(Command::SetSink { id: self.id, sink })
    }

    /// Sends a DTMF digit (RFC 4733) held for `duration`, in place of the source's audio.
    pub fn send_dtmf(&self, digit: char, duration: Duration) -> Result<()> {
        let sender = DtmfSender::new(digit, duration, 10, crate::session::CLOCK_RATE, PTIME)?;
        self.send(Command::SendDtmf {
            id: self.id,
            sender,
        })
    }

    /// Closes the stream and releases its ports.
    pub fn close(mut self) {
        self.closed = true;
        let _ = self.commands.send(Command::Close { id: self.id });
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.commands.send(Command::Close { id: self.id });
        }
    }
}
