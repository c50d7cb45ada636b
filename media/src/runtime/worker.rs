//! One media loop: its streams, its pacing tick, its receive path.

use core::future::poll_fn;
use core::net::SocketAddr;
use core::task::{Context, Waker};
use core::time::Duration;
use std::io::ErrorKind;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use super::media::{FrameSink, FrameSource, ReceivedFrame, SourceFrame};
use super::ready::{ReadySet, SocketWaker};
use super::{LoopCounters, LoopStats, StreamId, StreamReport};
use crate::codec::{Codec, OpusDecoder, OpusEncoder, OpusSettings};
use crate::dtmf::DtmfSender;
use crate::rtp::RtpPacket;
use crate::session::{Incoming, RtpSession, SessionConfig, FRAME_SAMPLES, MAX_RTCP_LEN, PTIME};
use crate::stats::SeqStatus;
use crate::{Error, Result};

/// Largest datagram read; longer ones are truncated by the kernel and fail to parse.
const RECV_BUF: usize = 2048;
/// Datagrams read from one socket before moving to the next ready one (fairness).
const RECV_BATCH: usize = 32;
/// The longest Opus loss the decoder conceals, in 8 kHz samples (60 ms); a longer gap is
/// left silent.
const MAX_CONCEAL: usize = 480;
/// PCM pieces one received packet can yield: concealed frames (at least 2.5 ms each, at most
/// 60 ms in all, but never more than 3 are concealed) and the packet itself.
const MAX_PIECES: usize = 4;
/// 48 kHz RTP ticks per 8 kHz sample.
const OPUS_TICKS_PER_SAMPLE: u32 = 6;

/// The Opus side of a stream: allocated when the stream gets the codec (on the control
/// side), used on the loop without allocating.
pub(crate) struct OpusState {
    enc: OpusEncoder,
    dec: OpusDecoder,
    /// PCM waiting to fill a 20 ms frame (audio transcoded into this leg).
    pending: [i16; FRAME_SAMPLES],
    pending_len: usize,
    /// The last decoded packet: SSRC, sequence number, 8 kHz samples.
    last: Option<(u32, u16, usize)>,
}

impl OpusState {
    /// The state `codec` needs: `Some` for Opus.
    pub(crate) fn for_codec(codec: Codec, settings: OpusSettings) -> Result<Option<Box<Self>>> {
        if !codec.is_opus() {
            return Ok(None);
        }
        Ok(Some(Box::new(Self {
            enc: OpusEncoder::new(settings)?,
            dec: OpusDecoder::new()?,
            pending: [0; FRAME_SAMPLES],
            pending_len: 0,
            last: None,
        })))
    }

    /// Decodes a received packet into `pcm`, after concealing what was lost just before it;
    /// records the pieces (start, length, concealed) in `pieces`; returns how many.
    fn receive(
        &mut self,
        packet: &RtpPacket<'_>,
        status: SeqStatus,
        pcm: &mut [i16],
        pieces: &mut [Piece; MAX_PIECES],
        errors: &mut u64,
        concealed: &mut u64,
    ) -> usize {
        let (ssrc, seq) = (packet.ssrc(), packet.sequence_number());
        if matches!(status, SeqStatus::OutOfOrder { .. }) {
            // Older than what the decoder has seen (and concealed): decoding it now would
            // put it out of place and disturb the decoder's history.
            return 0;
        }
        let mut count = 0;
        let mut at = 0;
        if let (Some((last_ssrc, last_seq, last_len)), SeqStatus::InOrder) = (self.last, status) {
            let lost = usize::from(seq.wrapping_sub(last_seq).wrapping_sub(1));
            if last_ssrc == ssrc && lost >= 1 && lost * last_len <= MAX_CONCEAL && lost < MAX_PIECES
            {
                for i in 0..lost {
                    let out = &mut pcm[at..at + last_len];
                    // The frame just before this packet may be in its in-band FEC.
                    let r = if i + 1 == lost {
                        self.dec.decode_fec(packet.payload(), last_len, out)
                    } else {
                        self.dec.conceal(last_len, out)
                    };
                    let Ok(n) = r else { break };
                    let back = (lost - i) as u32;
                    pieces[count] = Piece {
                        start: at,
                        len: n,
                        concealed: true,
                        sequence: seq.wrapping_sub(back as u16),
                        timestamp: packet
                            .timestamp()
                            .wrapping_sub(back * last_len as u32 * OPUS_TICKS_PER_SAMPLE),
                    };
                    count += 1;
                    at += n;
                    *concealed += 1;
                }
            }
        }
        match self.dec.decode(packet.payload(), &mut pcm[at..]) {
            Ok(n) => {
                pieces[count] = Piece {
                    start: at,
                    len: n,
                    concealed: false,
                    sequence: seq,
                    timestamp: packet.timestamp(),
                };
                count += 1;
                self.last = Some((ssrc, seq, n));
            }
            Err(_) => {
                *errors += 1;
                self.last = None;
            }
        }
        count
    }

    /// Adds `pcm` to the frame being filled; calls `emit` with each complete 20 ms frame
    /// encoded.
    fn push(&mut self, mut pcm: &[i16], out: &mut [u8], mut emit: impl FnMut(&[u8])) {
        while !pcm.is_empty() {
            let take = (FRAME_SAMPLES - self.pending_len).min(pcm.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&pcm[..take]);
            self.pending_len += take;
            pcm = &pcm[take..];
            if self.pending_len == FRAME_SAMPLES {
                self.pending_len = 0;
                if let Ok(n) = self.enc.encode(&self.pending, out) {
                    emit(&out[..n]);
                }
            }
        }
    }
}

/// A run of decoded PCM from one received packet.
#[derive(Debug, Clone, Copy, Default)]
struct Piece {
    start: usize,
    len: usize,
    concealed: bool,
    sequence: u16,
    timestamp: u32,
}

pub(crate) enum Command {
    Open(Box<NewStream>),
    Close {
        id: StreamId,
    },
    SetRemote {
        id: StreamId,
        remote: Option<SocketAddr>,
    },
    SetSource {
        id: StreamId,
        source: Option<Box<dyn FrameSource>>,
    },
    SetSink {
        id: StreamId,
        sink: Option<Box<dyn FrameSink>>,
    },
    SetCodec {
        id: StreamId,
        codec: Codec,
        dtmf_payload_type: Option<u8>,
        opus: Option<Box<OpusState>>,
    },
    SendDtmf {
        id: StreamId,
        sender: DtmfSender,
    },
    Stats {
        id: StreamId,
        reply: oneshot::Sender<Option<StreamReport>>,
    },
    Bridge {
        a: StreamId,
        b: StreamId,
        reply: oneshot::Sender<Result<()>>,
    },
    Unbridge {
        id: StreamId,
    },
    Shutdown,
}

pub(crate) struct NewStream {
    pub(crate) id: StreamId,
    pub(crate) rtp: std::net::UdpSocket,
    pub(crate) rtcp: Option<std::net::UdpSocket>,
    pub(crate) session: SessionConfig,
    pub(crate) source: Option<Box<dyn FrameSource>>,
    pub(crate) sink: Option<Box<dyn FrameSink>>,
    pub(crate) opus: Option<Box<OpusState>>,
}

/// Slot bookkeeping shared by the control handle (allocates) and the loop (frees).
#[derive(Debug)]
struct Slots {
    free: Vec<u32>,
    generations: Vec<u32>,
    capacity: usize,
}

/// State of a loop shared with the control handle; touched on open/close and once per tick,
/// never per packet.
#[derive(Debug)]
pub(crate) struct LoopShared {
    slots: Mutex<Slots>,
    pub(crate) counters: LoopCounters,
    pub(crate) ready: Arc<ReadySet>,
}

impl LoopShared {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(Slots {
                free: Vec::new(),
                generations: Vec::new(),
                capacity,
            }),
            counters: LoopCounters::default(),
            // Two sockets (bits) per slot.
            ready: ReadySet::new(2 * capacity),
        }
    }

    pub(crate) fn allocate_slot(&self) -> Result<(u32, u32)> {
        let mut s = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = s.free.pop() {
            let generation = s.generations[slot as usize];
            return Ok((slot, generation));
        }
        if s.generations.len() >= s.capacity {
            return Err(Error::TooManyStreams {
                max: s.capacity as u64,
            });
        }
        s.generations.push(0);
        Ok(((s.generations.len() - 1) as u32, 0))
    }

    pub(crate) fn free_slot(&self, slot: u32) {
        let mut s = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(g) = s.generations.get_mut(slot as usize) {
            *g = g.wrapping_add(1);
            s.free.push(slot);
        }
    }
}

struct Stream {
    id: StreamId,
    /// The RTP socket registered with the reactor, for receiving.
    rtp: UdpSocket,
    /// The same socket (a duplicated descriptor), for sending. Sending through tokio would
    /// consult its cached write readiness, which is empty until the reactor has seen the new
    /// socket, and drop the first packets of a stream as `WouldBlock`; a UDP socket is
    /// practically always writable, so sends go straight to the kernel.
    tx: std::net::UdpSocket,
    rtcp: Option<UdpSocket>,
    rtp_waker: Waker,
    rtcp_waker: Waker,
    session: RtpSession,
    source: Option<Box<dyn FrameSource>>,
    sink: Option<Box<dyn FrameSink>>,
    dtmf: Option<DtmfSender>,
    /// Slot of the stream this one is bridged to.
    bridge: Option<u32>,
    /// Encoder and decoder when the codec is Opus.
    opus: Option<Box<OpusState>>,
    send_errors: u64,
    decode_errors: u64,
    concealed_frames: u64,
}

/// Loop-owned buffers: every packet is read, decoded and built in these.
struct Buffers {
    rx: Box<[u8; RECV_BUF]>,
    tx: Box<[u8; RECV_BUF + 64]>,
    pcm: Box<[i16; RECV_BUF]>,
    frame: Box<[u8; RECV_BUF]>,
}

pub(crate) struct Worker {
    index: u16,
    origin: Instant,
    late_after: Duration,
    shared: Arc<LoopShared>,
    commands: mpsc::UnboundedReceiver<Command>,
    streams: Vec<Option<Stream>>,
    open: usize,
    bufs: Buffers,
    stats: LoopStats,
    last_tick: Option<tokio::time::Instant>,
}

impl Worker {
    pub(crate) fn new(
        index: u16,
        origin: Instant,
        late_after: Duration,
        shared: Arc<LoopShared>,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Self {
        Self {
            index,
            origin,
            late_after,
            shared,
            commands,
            streams: Vec::new(),
            open: 0,
            bufs: Buffers {
                rx: Box::new([0; RECV_BUF]),
                tx: Box::new([0; RECV_BUF + 64]),
                pcm: Box::new([0; RECV_BUF]),
                frame: Box::new([0; RECV_BUF]),
            },
            stats: LoopStats::default(),
            last_tick: None,
        }
    }

    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(PTIME);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let ready = Arc::clone(&self.shared.ready);
        loop {
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown) | None => break,
                    Some(c) => self.command(c),
                },
                at = tick.tick() => self.tick(at),
                () = poll_fn(|cx: &mut Context<'_>| ready.poll_pending(cx)) => self.drain(),
            }
        }
        // Sockets close (ports are released) as the streams drop.
        for sink in self
            .streams
            .iter_mut()
            .flatten()
            .filter_map(|s| s.sink.as_mut())
        {
            sink.on_close();
        }
        self.streams.clear();
        self.stats.streams = 0;
        self.shared.counters.publish(&self.stats);
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn get(&mut self, id: StreamId) -> Option<&mut Stream> {
        self.streams
            .get_mut(id.slot as usize)
            .and_then(Option::as_mut)
            .filter(|s| s.id == id)
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Open(n) => self.open(*n),
            Command::Close { id } => self.close(id),
            Command::SetRemote { id, remote } => {
                if let Some(s) = self.get(id) {
                    s.session.set_remote(remote);
                }
            }
            Command::SetSource { id, source } => {
                if let Some(s) = self.get(id) {
                    s.source = source;
                }
            }
            Command::SetSink { id, sink } => {
                if let Some(s) = self.get(id) {
                    if let Some(mut old) = core::mem::replace(&mut s.sink, sink) {
                        old.on_close();
                    }
                }
            }
            Command::SetCodec {
                id,
                codec,
                dtmf_payload_type,
                opus,
            } => {
                if let Some(s) = self.get(id) {
                    // The same codec again (early media, then the answer): keep the decoder's
                    // history; the new state is dropped.
                    let same = s.session.codec() == codec && s.opus.is_some() == opus.is_some();
                    s.session.set_codec(codec, dtmf_payload_type);
                    if !same {
                        s.opus = opus;
                    }
                }
            }
            Command::SendDtmf { id, sender } => {
                if let Some(s) = self.get(id) {
                    s.dtmf = Some(sender);
                }
            }
            Command::Stats { id, reply } => {
                let report = self.get(id).map(|s| StreamReport {
                    stats: s.session.stats().snapshot(),
                    counters: s.session.counters(),
                    remote: s.session.remote(),
                    latched: s.session.latched(),
                    rtt: s.session.rtt(),
                    quality: s.session.last_quality(),
                    send_errors: s.send_errors,
                    codec: s.session.codec(),
                    decode_errors: s.decode_errors,
                    concealed_frames: s.concealed_frames,
                });
                let _ = reply.send(report);
            }
            Command::Bridge { a, b, reply } => {
                let _ = reply.send(self.bridge(a, b));
            }
            Command::Unbridge { id } => {
                let peer = self.get(id).and_then(|s| s.bridge.take());
                if let Some(p) = peer {
                    self.unlink(p);
                }
            }
            Command::Shutdown => {}
        }
    }

    fn open(&mut self, n: NewStream) {
        let slot = n.id.slot as usize;
        let Ok(tx) = n.rtp.try_clone() else {
            self.shared.free_slot(n.id.slot);
            return;
        };
        let rtp = UdpSocket::from_std(n.rtp);
        let rtcp = n.rtcp.map(UdpSocket::from_std).transpose();
        let (Ok(rtp), Ok(rtcp)) = (rtp, rtcp) else {
            // Registration with the reactor failed: the stream never starts; its handle's
            // stats() answers None.
            self.shared.free_slot(n.id.slot);
            return;
        };
        let ready = &self.shared.ready;
        let stream = Stream {
            id: n.id,
            rtp,
            tx,
            rtcp,
            rtp_waker: SocketWaker::waker(ready, 2 * slot),
            rtcp_waker: SocketWaker::waker(ready, 2 * slot + 1),
            session: RtpSession::new(n.session, self.now()),
            source: n.source,
            sink: n.sink,
            dtmf: None,
            bridge: None,
            opus: n.opus,
            send_errors: 0,
            decode_errors: 0,
            concealed_frames: 0,
        };
        if self.streams.len() <= slot {
            self.streams.resize_with(slot + 1, || None);
        }
        self.streams[slot] = Some(stream);
        self.open += 1;
        // Arm both sockets: the first drain registers their wakers with the reactor.
        ready.mark(2 * slot);
        ready.mark(2 * slot + 1);
    }

    fn close(&mut self, id: StreamId) {
        let Some(s) = self.get(id) else {
            return;
        };
        let peer = s.bridge.take();
        if let Some(sink) = s.sink.as_mut() {
            sink.on_close();
        }
        self.streams[id.slot as usize] = None;
        self.open -= 1;
        if let Some(p) = peer {
            self.unlink(p);
        }
        self.shared.free_slot(id.slot);
    }

    fn unlink(&mut self, slot: u32) {
        if let Some(Some(s)) = self.streams.get_mut(slot as usize) {
            s.bridge = None;
            if let Some(o) = s.opus.as_mut() {
                o.pending_len = 0;
            }
        }
    }

    fn bridge(&mut self, a: StreamId, b: StreamId) -> Result<()> {
        if a.loop_index != self.index || self.get(a).is_none() || self.get(b).is_none() {
            return Err(Error::UnknownStream);
        }
        for id in [a, b] {
            let old = self.get(id).and_then(|s| s.bridge.take());
            if let Some(p) = old {
                self.unlink(p);
            }
        }
        if let Some(s) = self.get(a) {
            s.bridge = Some(b.slot);
        }
        if let Some(s) = self.get(b) {
            s.bridge = Some(a.slot);
        }
        Ok(())
    }

    /// Drains every socket whose bit is set.
    fn drain(&mut self) {
        let words = (2 * self.streams.len()).div_ceil(64);
        let ready = Arc::clone(&self.shared.ready);
        ready.take_each(words, |bit| self.service(bit));
    }

    fn service(&mut self, bit: usize) {
        let slot = bit / 2;
        let is_rtcp = bit % 2 == 1;
        for _ in 0..RECV_BATCH {
            let Some(Some(stream)) = self.streams.get_mut(slot) else {
                return;
            };
            let (socket, waker) = if is_rtcp {
                match &stream.rtcp {
                    Some(s) => (s, &stream.rtcp_waker),
                    None => return,
                }
            } else {
                (&stream.rtp, &stream.rtp_waker)
            };
            match socket.try_recv_from(&mut self.bufs.rx[..]) {
                Ok((n, from)) => {
                    self.stats.packets_received += 1;
                    let now = self.origin.elapsed();
                    if is_rtcp {
                        let _ = stream.session.handle_rtcp(now, from, &self.bufs.rx[..n]);
                        deliver_events(stream);
                    } else {
                        self.on_rtp(slot, now, from, n);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // Readiness was cleared: re-register this socket's waker. If data
                    // arrived meanwhile, poll_recv_ready is Ready: go round again.
                    let mut cx = Context::from_waker(waker);
                    if socket.poll_recv_ready(&mut cx).is_pending() {
                        return;
                    }
                }
                // ICMP errors reported on the socket and the like: nothing to read; try on.
                Err(_) => {}
            }
        }
        // Batch used up: come back after the other ready sockets.
        self.shared.ready.mark(bit);
    }

    fn on_rtp(&mut self, slot: usize, now: Duration, from: SocketAddr, n: usize) {
        let Worker {
            streams,
            bufs,
            stats,
            ..
        } = self;
        let Some(Some(stream)) = streams.get_mut(slot) else {
            return;
        };
        let datagram = &bufs.rx[..n];
        let incoming = stream.session.handle_rtp(now, from, datagram);
        let Incoming::Media { packet, status } = incoming else {
            deliver_events(stream);
            return;
        };
        let codec = stream.session.codec();
        let payload = packet.payload();
        // Decode into the loop's PCM buffer, in pieces (Opus: concealed frames, then the
        // packet).
        let mut pieces = [Piece::default(); MAX_PIECES];
        let count = match (codec.law(), stream.opus.as_deref_mut()) {
            (Some(law), _) => {
                let len = payload.len().min(bufs.pcm.len());
                // Same lengths by construction: decoding cannot fail.
                let _ = law.decode(&payload[..len], &mut bufs.pcm[..len]);
                pieces[0] = Piece {
                    start: 0,
                    len,
                    concealed: false,
                    sequence: packet.sequence_number(),
                    timestamp: packet.timestamp(),
                };
                1
            }
            (None, Some(opus)) => opus.receive(
                &packet,
                status,
                &mut bufs.pcm[..],
                &mut pieces,
                &mut stream.decode_errors,
                &mut stream.concealed_frames,
            ),
            (None, None) => 0,
        };
        let pieces = &pieces[..count];
        if let Some(sink) = stream.sink.as_mut() {
            for p in pieces {
                sink.on_frame(&ReceivedFrame {
                    pcm: &bufs.pcm[p.start..p.start + p.len],
                    payload: if p.concealed { &[] } else { payload },
                    codec,
                    concealed: p.concealed,
                    sequence: p.sequence,
                    timestamp: p.timestamp,
                    marker: packet.marker() && !p.concealed,
                    ssrc: packet.ssrc(),
                    status,
                    arrival: now,
                    stats: stream.session.stats(),
                });
            }
        }
        deliver_events(stream);
        let Some(peer_slot) = stream.bridge else {
            return;
        };
        // Relay to the bridged leg, from its socket, with its sequence and timestamp.
        let Some(Some(peer)) = streams.get_mut(peer_slot as usize) else {
            return;
        };
        let Some(dest) = peer.session.remote() else {
            return;
        };
        let peer_codec = peer.session.codec();
        let Stream {
            session,
            tx,
            send_errors,
            opus,
            ..
        } = peer;
        let mut relay = |marker: bool, payload: &[u8], out: &mut [u8]| {
            if let Ok(len) = session.write_relayed(now, marker, payload, out) {
                send(tx, &out[..len], dest, send_errors, stats);
            }
        };
        if peer_codec.same_encoding(codec) {
            relay(packet.marker(), payload, &mut bufs.tx[..]);
            return;
        }
        // Transcode through 8 kHz PCM.
        let mut marker = packet.marker();
        for p in pieces {
            let pcm = &bufs.pcm[p.start..p.start + p.len];
            match (peer_codec.law(), opus.as_deref_mut()) {
                (Some(law), _) => {
                    let out = &mut bufs.frame[..pcm.len()];
                    let _ = law.encode(pcm, out);
                    relay(marker, out, &mut bufs.tx[..]);
                }
                (None, Some(o)) => {
                    o.push(pcm, &mut bufs.frame[..], |frame| {
                        relay(marker, frame, &mut bufs.tx[..]);
                        marker = false;
                    });
                }
                (None, None) => {}
            }
            marker = false;
        }
    }

    fn tick(&mut self, at: tokio::time::Instant) {
        let started = tokio::time::Instant::now();
        let lateness = started.saturating_duration_since(at);
        let missed = match self.last_tick {
            Some(prev) => {
                let gap = at.saturating_duration_since(prev).as_micros();
                let frames = (gap + PTIME.as_micros() / 2) / PTIME.as_micros();
                frames.saturating_sub(1) as u32
            }
            None => 0,
        };
        self.last_tick = Some(at);
        let s = &mut self.stats;
        s.ticks += 1;
        s.skipped_ticks += u64::from(missed);
        if missed > 0 || lateness > self.late_after {
            s.late_ticks += 1 + u64::from(missed);
        }
        s.max_lateness_us = s.max_lateness_us.max(lateness.as_micros() as u64);

        let now = self.now();
        let Worker {
            streams,
            bufs,
            stats,
            ..
        } = self;
        for stream in streams.iter_mut().flatten() {
            // Timers: RTCP and quality every 5 s.
            if stream.session.poll_timeout() <= now {
                stream.session.handle_timeout(now);
                let mut rtcp = [0u8; MAX_RTCP_LEN];
                if let Some(Ok((n, dest))) = stream.session.poll_transmit(&mut rtcp) {
                    match &stream.rtcp {
                        Some(sock) => {
                            let r = sock.try_send_to(&rtcp[..n], dest).map(drop);
                            count_send(r, &mut stream.send_errors, stats);
                        }
                        None => send(&stream.tx, &rtcp[..n], dest, &mut stream.send_errors, stats),
                    }
                }
                deliver_events(stream);
            }
            if missed > 0 {
                stream.session.silence(missed);
            }
            // A bridged leg carries the other leg's audio instead of its own.
            if stream.bridge.is_some() {
                continue;
            }
            let Some(dest) = stream.session.remote() else {
                continue;
            };
            if let Some(d) = stream.dtmf.as_mut() {
                match stream.session.write_dtmf(now, d, &mut bufs.tx[..]) {
                    Some(Ok(n)) => {
                        send(
                            &stream.tx,
                            &bufs.tx[..n],
                            dest,
                            &mut stream.send_errors,
                            stats,
                        );
                        continue;
                    }
                    _ => stream.dtmf = None,
                }
            }
            let Some(source) = stream.source.as_mut() else {
                continue;
            };
            // The next frame, encoded into `bufs.frame`.
            let (kind, len) = match (stream.session.codec().law(), stream.opus.as_deref_mut()) {
                (Some(law), _) => {
                    let frame: &mut [u8; FRAME_SAMPLES] =
                        match (&mut bufs.frame[..FRAME_SAMPLES]).try_into() {
                            Ok(f) => f,
                            Err(_) => continue,
                        };
                    (source.next_frame(law, frame), FRAME_SAMPLES)
                }
                (None, Some(opus)) => {
                    let pcm: &mut [i16; FRAME_SAMPLES] =
                        match (&mut bufs.pcm[..FRAME_SAMPLES]).try_into() {
                            Ok(f) => f,
                            Err(_) => continue,
                        };
                    let kind = source.next_pcm(pcm);
                    let len = match kind {
                        SourceFrame::Audio | SourceFrame::Lost => {
                            match opus.enc.encode(pcm, &mut bufs.frame[..]) {
                                Ok(n) => n,
                                Err(_) => {
                                    stream.session.silence(1);
                                    continue;
                                }
                            }
                        }
                        _ => 0,
                    };
                    (kind, len)
                }
                (None, None) => continue,
            };
            let frame = &bufs.frame[..len];
            match kind {
                SourceFrame::Audio => {
                    if let Ok(n) = stream.session.write_frame(now, frame, &mut bufs.tx[..]) {
                        send(
                            &stream.tx,
                            &bufs.tx[..n],
                            dest,
                            &mut stream.send_errors,
                            stats,
                        );
                    }
                }
                SourceFrame::Lost => {
                    // Packetize (sequence and timestamp advance) but do not send.
                    let _ = stream.session.write_frame(now, frame, &mut bufs.tx[..]);
                }
                SourceFrame::Silence => stream.session.silence(1),
                SourceFrame::End => {
                    stream.source = None;
                    stream.session.silence(1);
                }
            }
        }
        self.stats.streams = self.open as u64;
        self.shared.counters.publish(&self.stats);
    }
}

fn deliver_events(stream: &mut Stream) {
    while let Some(ev) = stream.session.poll_event() {
        if let Some(sink) = stream.sink.as_mut() {
            sink.on_event(&ev);
        }
    }
}

fn send(
    sock: &std::net::UdpSocket,
    bytes: &[u8],
    dest: SocketAddr,
    errors: &mut u64,
    stats: &mut LoopStats,
) {
    count_send(sock.send_to(bytes, dest).map(drop), errors, stats);
}

fn count_send(r: std::io::Result<()>, errors: &mut u64, stats: &mut LoopStats) {
    match r {
        Ok(()) => stats.packets_sent += 1,
        Err(_) => {
            *errors += 1;
            stats.send_errors += 1;
        }
    }
}
