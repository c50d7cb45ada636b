//! Simulated agent phones: a UAS on loopback that auto-answers every INVITE (to any user, or
//! to a given list; others get 404) after a short random ring, talks intermittently, counts
//! the audio it receives per call, and hangs up a user's call on demand. Each agent is
//! reached as `sip:<user>@<addr>`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchboard_media::runtime::MediaHandle;
use switchboard_sip::endpoint::{Endpoint, EndpointConfig, IncomingCall};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

use crate::audio::Voices;
use crate::book::{Book, SimCall};
use crate::carrier::{check_bind, start_media};
use crate::rng::Rng;
use crate::script::{Part, Script};
use crate::uas::{self, MediaPlan};
use crate::{Error, Result};

/// Configuration of [`AgentPhones`].
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// SIP address (a concrete IP; port 0 for any).
    pub bind: SocketAddr,
    /// Only these users answer (others get 404); `None`: every user.
    pub users: Option<Vec<String>>,
    /// Ring before answering, drawn from this range (default 0-200 ms).
    pub ring: (Duration, Duration),
    pub seed: u64,
    /// RTP port range (default 50000-59999).
    pub rtp_ports: (u16, u16),
    /// Media loops (default 1).
    pub media_loops: usize,
}

impl AgentConfig {
    pub fn new(bind: SocketAddr) -> AgentConfig {
        AgentConfig {
            bind,
            users: None,
            ring: (Duration::ZERO, Duration::from_millis(200)),
            seed: 7,
            rtp_ports: (50000, 59999),
            media_loops: 1,
        }
    }
}

struct Shared {
    book: Book,
    media: MediaHandle,
    voices: Voices,
    config: AgentConfig,
    rng: Mutex<Rng>,
}

/// Running agent phones. [`AgentPhones::shutdown`] ends them cleanly.
pub struct AgentPhones {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for AgentPhones {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentPhones")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl AgentPhones {
    /// Agent phones on `bind` answering every user, with the default ring (0-200 ms).
    pub async fn start(bind: SocketAddr) -> Result<AgentPhones> {
        AgentPhones::start_with(AgentConfig::new(bind)).await
    }

    pub async fn start_with(config: AgentConfig) -> Result<AgentPhones> {
        check_bind(config.bind)?;
        let voices = Voices::synthetic(config.seed);
        let media = start_media(config.bind.ip(), config.rtp_ports, config.media_loops)?;
        let mut ep = Endpoint::bind(EndpointConfig::new(config.bind))
            .await
            .map_err(Error::sip("bind SIP endpoint"))?;
        let addr = ep.local_addr();
        let shared = Arc::new(Shared {
            book: Book::new(10_000),
            media,
            voices,
            rng: Mutex::new(Rng::new(config.seed)),
            config,
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
            ep.shutdown().await;
            let drain = async { while calls.join_next().await.is_some() {} };
            if tokio::time::timeout(Duration::from_secs(5), drain)
                .await
                .is_err()
            {
                calls.abort_all();
            }
        });
        Ok(AgentPhones {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }

    /// The SIP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URI of agent `user`: `sip:{user}@{addr}`.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.addr)
    }

    /// Every call (finished ones first); `number` is the agent's user.
    pub fn calls(&self) -> Vec<SimCall> {
        self.shared.book.calls()
    }

    /// Every call as it finishes.
    pub fn subscribe(&self) -> broadcast::Receiver<SimCall> {
        self.shared.book.subscribe()
    }

    /// Hangs up `user`'s live calls (BYE after the answer, 603 before); returns how many.
    pub fn hangup(&self, user: &str) -> usize {
        self.shared.book.hangup(user)
    }

    /// Ends every call and stops.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let media = self.shared.media.clone();
        let _ = tokio::task::spawn_blocking(move || media.shutdown()).await;
    }
}

impl Drop for AgentPhones {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn serve(shared: Arc<Shared>, mut inc: IncomingCall) {
    let user = uas::user_part(&inc.request_uri).to_owned();
    let (id, hangup) = shared.book.open(&user, &inc.call_id, "agent");
    let known = shared
        .config
        .users
        .as_ref()
        .is_none_or(|users| users.contains(&user));
    if !known {
        let end = uas::reject(&mut inc, 404, "Not Found").await;
        shared.book.finish(id, end, 0);
        return;
    }
    let mut rng = shared
        .rng
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .fork();
    let (lo, hi) = shared.config.ring;
    let ring = Duration::from_micros(rng.between(lo.as_micros() as u64, hi.as_micros() as u64));
    // A hangup asked for while ringing declines the call.
    let early = tokio::select! {
        end = uas::ring(&mut inc, ring, true) => end,
        () = hangup.notified() => Some(uas::reject(&mut inc, 603, "Decline").await),
    };
    if let Some(end) = early {
        shared.book.finish(id, end, 0);
        return;
    }
    let script = Script::new(
        vec![
            Part::Quiet(rng.between(5, 20) as u32),
            Part::Talk {
                bank: Arc::clone(&shared.voices.bursts),
                pause_ms: (400, 2000),
            },
        ],
        rng.fork(),
    );
    let plan = MediaPlan {
        media: &shared.media,
        ip: shared.config.bind.ip(),
        jitter: Duration::ZERO,
        rng: rng.fork(),
        prefer_opus: false,
    };
    let (end, sent) = match uas::answer(&inc, plan, Box::new(script)).await {
        Ok(leg) => {
            shared.book.answered(id, Arc::clone(&leg.meter));
            let end = uas::hold(&mut inc, None, &hangup).await;
            (end, leg.sent().await)
        }
        Err((status, reason)) => (uas::reject(&mut inc, status, reason).await, 0),
    };
    shared.book.finish(id, end, sent);
}
