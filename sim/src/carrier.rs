//! The carrier simulator: a SIP UAS on loopback answering each INVITE by its [`Plan`].
//!
//! One [`Endpoint`] takes the INVITEs (and, through its request handler, REGISTERs and INVITE
//! digest challenges: see `registrar.rs`); each call runs as a small tokio task that rings,
//! answers or rejects, and plays its [`Script`] on one shared [`MediaHandle`]. Audio is
//! synthetic ([`Voices`]) unless WAV files replace it.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchboard_media::runtime::{FrameSource, MediaHandle, MediaRuntime, RuntimeConfig};
use switchboard_sip::endpoint::{Endpoint, EndpointConfig, IncomingCall, RequestHandler};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::audio::{AudioFiles, Voices};
use crate::book::{Book, CarrierStats, End, EndedBy, SimCall};
use crate::plan::{Behavior, Plan};
use crate::registrar::Registrar;
use crate::rng::Rng;
use crate::script::{Lossy, Part, Script};
use crate::uas::{self, MediaPlan};
use crate::{Error, Result};

/// Network impairment of the RTP the simulator sends.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// Share of audio packets lost, 0..1 (sequence numbers are used up: the caller sees gaps).
    pub loss: f64,
    /// Each packet is delayed by a random 0..=`jitter_ms` (through a relay; see `relay.rs`).
    pub jitter_ms: u32,
}

/// Configuration of a [`Carrier`].
#[derive(Debug, Clone)]
pub struct CarrierConfig {
    /// SIP (UDP and TCP) address; a concrete IP (RTP binds there too), port 0 for any.
    pub bind: SocketAddr,
    pub plan: Plan,
    /// Ring before answering when the behaviour does not say (default 500 ms).
    pub ring: Duration,
    /// Demand digest REGISTER with this user and password (else any REGISTER gets 200).
    pub register: Option<(String, String)>,
    /// Also challenge INVITEs (407) for the `register` credentials.
    pub auth_invites: bool,
    /// Digest realm (default `switchboard-sim`).
    pub realm: String,
    pub impair: Impairment,
    /// WAV files in place of the synthetic audio.
    pub audio: AudioFiles,
    /// Seed of every random choice (mix draws, voices, talk cadence, loss, jitter).
    pub seed: u64,
    /// A machine hangs up this long after answering (default 30 s).
    pub machine_hangup: Duration,
    /// `NoAnswer` gives up with 480 after ringing this long (default 120 s).
    pub max_ring: Duration,
    /// RTP port range (default 40000-49999).
    pub rtp_ports: (u16, u16),
    /// Media loops (threads; default 1).
    pub media_loops: usize,
    /// Finished calls kept for [`Carrier::calls`] (default 10 000).
    pub keep_finished: usize,
    /// Answer with opus whenever the offer has it, whatever its place there (an Opus carrier;
    /// default false: the offerer's first codec, as RFC 3264 prefers).
    pub answer_opus: bool,
}

impl CarrierConfig {
    pub fn new(bind: SocketAddr, plan: Plan) -> CarrierConfig {
        CarrierConfig {
            bind,
            plan,
            ring: Duration::from_millis(500),
            register: None,
            auth_invites: false,
            realm: "switchboard-sim".to_owned(),
            impair: Impairment::default(),
            audio: AudioFiles::default(),
            seed: 1,
            machine_hangup: Duration::from_secs(30),
            max_ring: Duration::from_secs(120),
            rtp_ports: (40000, 49999),
            media_loops: 1,
            keep_finished: 10_000,
            answer_opus: false,
        }
    }
}

struct Shared {
    book: Book,
    media: MediaHandle,
    voices: Voices,
    ip: IpAddr,
    ring: Duration,
    impair: Impairment,
    machine_hangup: Duration,
    max_ring: Duration,
    plan: Plan,
    rng: Mutex<Rng>,
    registrar: Arc<Registrar>,
    answer_opus: bool,
}

/// A running carrier simulator. Call [`Carrier::shutdown`] to end it cleanly (dropping it
/// stops it too, without waiting).
pub struct Carrier {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Carrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Carrier")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

pub(crate) fn check_bind(bind: SocketAddr) -> Result<()> {
    if bind.ip().is_unspecified() {
        return Err(Error::InvalidArgument {
            flag: "bind",
            reason: format!("{bind} is a wildcard; bind to a concrete address such as 127.0.0.1"),
        });
    }
    Ok(())
}

pub(crate) fn start_media(ip: IpAddr, ports: (u16, u16), loops: usize) -> Result<MediaHandle> {
    MediaRuntime::start(RuntimeConfig {
        loops: loops.max(1),
        bind_ip: ip,
        port_min: ports.0,
        port_max: ports.1,
        ..RuntimeConfig::default()
    })
    .map_err(Error::media("start media runtime"))
}

impl Carrier {
    /// Binds the SIP endpoint and the media runtime and starts answering.
    pub async fn start(config: CarrierConfig) -> Result<Carrier> {
        check_bind(config.bind)?;
        let voices = Voices::with_files(config.seed, &config.audio)?;
        let media = start_media(config.bind.ip(), config.rtp_ports, config.media_loops)?;
        let mut ep = Endpoint::bind(EndpointConfig::new(config.bind))
            .await
            .map_err(Error::sip("bind SIP endpoint"))?;
        let registrar = Arc::new(Registrar::new(
            &config.realm,
            config.register.clone(),
            config.auth_invites,
            config.seed,
        ));
        let r = Arc::clone(&registrar);
        let handler: RequestHandler = Arc::new(move |req, source| r.handle(req, source));
        ep.set_request_handler(Some(handler))
            .map_err(Error::sip("install registrar"))?;
        let addr = ep.local_addr();
        let shared = Arc::new(Shared {
            book: Book::new(config.keep_finished),
            media,
            voices,
            ip: config.bind.ip(),
            ring: config.ring,
            impair: config.impair,
            machine_hangup: config.machine_hangup,
            max_ring: config.max_ring,
            plan: config.plan,
            rng: Mutex::new(Rng::new(config.seed)),
            registrar,
            answer_opus: config.answer_opus,
        });
        let (stop, mut stopped) = watch::channel(false);
        let s = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let mut calls = JoinSet::new();
            loop {
                tokio::select! {
                    inc = ep.next_incoming() => match inc {
                        Some(inc) => {
                            calls.spawn(serve(Arc::clone(&s), inc));
                        }
                        None => break,
                    },
                    Some(_) = calls.join_next(), if !calls.is_empty() => {}
                    _ = stopped.changed() => break,
                }
            }
            // BYE / CANCEL-answer every call, then let the call tasks record their ends.
            ep.shutdown().await;
            let drain = async { while calls.join_next().await.is_some() {} };
            if tokio::time::timeout(Duration::from_secs(5), drain)
                .await
                .is_err()
            {
                calls.abort_all();
            }
        });
        tracing::info!(%addr, "carrier simulator listening");
        Ok(Carrier {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }

    /// The SIP address (UDP and TCP).
    pub fn sip_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A SIP URI dialling `number` here: `sip:{number}@{addr}`.
    pub fn uri(&self, number: &str) -> String {
        format!("sip:{number}@{}", self.addr)
    }

    pub fn stats(&self) -> CarrierStats {
        let mut s = self.shared.book.stats();
        let c = &self.shared.registrar.counts;
        let r = std::sync::atomic::Ordering::Relaxed;
        s.registrations = c.registered.load(r);
        s.auth_refused = c.refused.load(r);
        s.challenges = c.challenges.load(r);
        s
    }

    /// Finished calls (the last `keep_finished`, oldest first), then the live ones.
    pub fn calls(&self) -> Vec<SimCall> {
        self.shared.book.calls()
    }

    /// Hangs up the answered calls to `number` now (BYE), as if the person hung up; returns
    /// how many live calls were asked. A call still ringing hangs up as soon as it answers.
    pub fn hangup(&self, number: &str) -> usize {
        self.shared.book.hangup(number)
    }

    /// Every call as it finishes (a lagging receiver skips calls).
    pub fn subscribe(&self) -> broadcast::Receiver<SimCall> {
        self.shared.book.subscribe()
    }

    /// Ends every call (BYE, or 603 before the answer), stops listening and stops the media.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let media = self.shared.media.clone();
        let _ = tokio::task::spawn_blocking(move || media.shutdown()).await;
    }
}

impl Drop for Carrier {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Strips `AnswerAfter` layers: the ring to use (explicit or default) and the final behaviour.
fn unwrap_ring(b: &Behavior) -> (Option<Duration>, &Behavior) {
    match b {
        Behavior::AnswerAfter { ring, then } => {
            let (inner, leaf) = unwrap_ring(then);
            (Some(inner.unwrap_or(Duration::ZERO) + *ring), leaf)
        }
        other => (None, other),
    }
}

async fn serve(shared: Arc<Shared>, mut inc: IncomingCall) {
    let number = uas::user_part(&inc.request_uri).to_owned();
    let (behavior, mut rng) = {
        let mut rng = shared.rng.lock().unwrap_or_else(PoisonError::into_inner);
        (shared.plan.choose(&number, &mut rng), rng.fork())
    };
    let (id, hangup) = shared.book.open(&number, &inc.call_id, behavior.name());
    let (ring, leaf) = unwrap_ring(&behavior);
    let mut sent = 0;
    let end = match leaf {
        Behavior::Busy | Behavior::Unavailable | Behavior::Reject(_) => {
            let status = match leaf {
                Behavior::Busy => 486,
                Behavior::Unavailable => 503,
                Behavior::Reject(s) => *s,
                _ => 500,
            };
            match ring {
                Some(r) => match uas::ring(&mut inc, r, true).await {
                    Some(end) => end,
                    None => uas::reject(&mut inc, status, uas::reason_phrase(status)).await,
                },
                None => uas::reject(&mut inc, status, uas::reason_phrase(status)).await,
            }
        }
        Behavior::NoAnswer => {
            let r = ring.map_or(shared.max_ring, |r| r.max(shared.max_ring));
            match uas::ring(&mut inc, r, true).await {
                Some(end) => end,
                None => uas::reject(&mut inc, 480, "Temporarily Unavailable").await,
            }
        }
        Behavior::Human { .. } | Behavior::Machine { .. } => {
            match uas::ring(&mut inc, ring.unwrap_or(shared.ring), true).await {
                Some(end) => end,
                None => {
                    let (source, hold_for) = script_for(&shared, leaf, &mut rng);
                    let plan = MediaPlan {
                        media: &shared.media,
                        ip: shared.ip,
                        jitter: Duration::from_millis(u64::from(shared.impair.jitter_ms)),
                        rng: rng.fork(),
                        prefer_opus: shared.answer_opus,
                    };
                    match uas::answer(&inc, plan, source).await {
                        Ok(leg) => {
                            shared.book.answered(id, Arc::clone(&leg.meter));
                            let until = Instant::now() + hold_for;
                            let end = uas::hold(&mut inc, Some(until), &hangup).await;
                            sent = leg.sent().await;
                            end
                        }
                        Err((status, reason)) => uas::reject(&mut inc, status, reason).await,
                    }
                }
            }
        }
        // Unwrapped above.
        Behavior::AnswerAfter { .. } => End {
            by: EndedBy::Sim,
            reason: "rejected",
            status: None,
        },
    };
    shared.book.finish(id, end, sent);
}

/// The audio of an answering behaviour and how long it stays on the line.
fn script_for(shared: &Shared, b: &Behavior, rng: &mut Rng) -> (Box<dyn FrameSource>, Duration) {
    let v = &shared.voices;
    let pick = |rng: &mut Rng, n: usize| rng.between(0, n.saturating_sub(1) as u64) as usize;
    let (parts, hold) = match b {
        Behavior::Human { talk } => {
            let mut parts = Vec::new();
            if let Some(hello) = v.hello.get(pick(rng, v.hello.len())) {
                parts.push(Part::Play(Arc::clone(hello)));
            }
            parts.push(Part::Talk {
                bank: Arc::clone(&v.bursts),
                pause_ms: (600, 2500),
            });
            (parts, *talk)
        }
        Behavior::Machine { beep } => {
            let mut parts = Vec::new();
            if let Some(greeting) = v.machine.get(pick(rng, v.machine.len())) {
                parts.push(Part::Play(Arc::clone(greeting)));
            }
            if *beep {
                parts.push(Part::Quiet(rng.between(15, 35) as u32));
                parts.push(Part::Play(Arc::clone(&v.beep)));
            }
            (parts, shared.machine_hangup)
        }
        _ => (Vec::new(), Duration::ZERO),
    };
    let script = Script::new(parts, rng.fork());
    let source: Box<dyn FrameSource> = if shared.impair.loss > 0.0 {
        Box::new(Lossy::new(script, shared.impair.loss, rng.fork()))
    } else {
        Box::new(script)
    };
    (source, hold)
}
