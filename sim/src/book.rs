//! The record of a simulator's calls: one [`SimCall`] per INVITE, live while the call runs
//! (its audio counters read from the media loop's atomics), kept after it ends (the last
//! `keep` of them), and [`CarrierStats`] totals.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, Notify};

use crate::script::{Heard, MeterCounts};

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndedBy {
    /// The caller: BYE after the answer, or CANCEL before it.
    Caller,
    /// The simulated party: its BYE, or its final rejection.
    Sim,
}

impl EndedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Caller => "caller",
            EndedBy::Sim => "sim",
        }
    }
}

/// One call as the simulator saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimCall {
    /// The simulator's own number for the call (1, 2, ...).
    pub id: u64,
    /// The dialled user (the user part of the Request-URI, e.g. `+15550100007`).
    pub number: String,
    pub call_id: String,
    /// The behaviour's name (`human`, `machine`, `busy`, ..., `agent` for agent phones).
    pub behavior: &'static str,
    /// When the INVITE arrived, since the simulator started.
    pub invited_at: Duration,
    pub answered_at: Option<Duration>,
    pub ended_at: Option<Duration>,
    /// The final status the simulator sent (200, 486, 487 after a CANCEL, ...).
    pub final_status: Option<u16>,
    pub ended_by: Option<EndedBy>,
    /// How it ended: `caller_bye`, `sim_bye`, `cancelled`, `rejected`, `no_ack`, `timeout`,
    /// `shutdown`.
    pub end_reason: Option<&'static str>,
    /// RTP audio received from the caller, and its energy.
    pub heard: Heard,
    /// RTP packets the simulator sent (known once the call ended).
    pub rtp_sent: u64,
}

/// Totals of a simulator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CarrierStats {
    /// INVITEs taken (calls created).
    pub invites: u64,
    /// Calls per behaviour name.
    pub by_behavior: BTreeMap<&'static str, u64>,
    pub answered: u64,
    /// Calls not ended yet.
    pub active: u64,
    pub ended: u64,
    pub ended_by_caller: u64,
    pub ended_by_sim: u64,
    /// REGISTERs answered 200.
    pub registrations: u64,
    /// Requests refused for wrong credentials.
    pub auth_refused: u64,
    /// Digest challenges sent.
    pub challenges: u64,
}

struct Live {
    call: SimCall,
    meter: Option<Arc<MeterCounts>>,
    hangup: Arc<Notify>,
}

struct Inner {
    next: u64,
    live: HashMap<u64, Live>,
    done: VecDeque<SimCall>,
    stats: CarrierStats,
}

pub(crate) struct Book {
    start: Instant,
    keep: usize,
    inner: Mutex<Inner>,
    finished: broadcast::Sender<SimCall>,
}

impl Book {
    pub(crate) fn new(keep: usize) -> Book {
        let (finished, _) = broadcast::channel(1024);
        Book {
            start: Instant::now(),
            keep,
            inner: Mutex::new(Inner {
                next: 1,
                live: HashMap::new(),
                done: VecDeque::new(),
                stats: CarrierStats::default(),
            }),
            finished,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn since_start(&self) -> Duration {
        self.start.elapsed()
    }

    /// Records a new call; returns its id and the notifier that asks it to hang up.
    pub(crate) fn open(
        &self,
        number: &str,
        call_id: &str,
        behavior: &'static str,
    ) -> (u64, Arc<Notify>) {
        let at = self.since_start();
        let mut g = self.lock();
        let id = g.next;
        g.next += 1;
        g.stats.invites += 1;
        *g.stats.by_behavior.entry(behavior).or_default() += 1;
        g.stats.active += 1;
        let hangup = Arc::new(Notify::new());
        g.live.insert(
            id,
            Live {
                call: SimCall {
                    id,
                    number: number.to_owned(),
                    call_id: call_id.to_owned(),
                    behavior,
                    invited_at: at,
                    answered_at: None,
                    ended_at: None,
                    final_status: None,
                    ended_by: None,
                    end_reason: None,
                    heard: Heard::default(),
                    rtp_sent: 0,
                },
                meter: None,
                hangup: Arc::clone(&hangup),
            },
        );
        (id, hangup)
    }

    pub(crate) fn answered(&self, id: u64, meter: Arc<MeterCounts>) {
        let at = self.since_start();
        let mut g = self.lock();
        g.stats.answered += 1;
        if let Some(l) = g.live.get_mut(&id) {
            l.call.answered_at = Some(at);
            l.call.final_status = Some(200);
            l.meter = Some(meter);
        }
    }

    pub(crate) fn finish(&self, id: u64, end: End, rtp_sent: u64) {
        let at = self.since_start();
        let call = {
            let mut g = self.lock();
            let Some(mut l) = g.live.remove(&id) else {
                return;
            };
            g.stats.active = g.stats.active.saturating_sub(1);
            g.stats.ended += 1;
            match end.by {
                EndedBy::Caller => g.stats.ended_by_caller += 1,
                EndedBy::Sim => g.stats.ended_by_sim += 1,
            }
            l.call.ended_at = Some(at);
            l.call.ended_by = Some(end.by);
            l.call.end_reason = Some(end.reason);
            if l.call.final_status.is_none() {
                l.call.final_status = end.status;
            }
            if let Some(m) = &l.meter {
                l.call.heard = m.heard();
            }
            l.call.rtp_sent = rtp_sent;
            if self.keep > 0 {
                if g.done.len() >= self.keep {
                    g.done.pop_front();
                }
                g.done.push_back(l.call.clone());
            }
            l.call
        };
        let _ = self.finished.send(call);
    }

    /// Asks every live call to `number` to hang up; returns how many were asked.
    pub(crate) fn hangup(&self, number: &str) -> usize {
        let g = self.lock();
        let mut n = 0;
        for l in g.live.values().filter(|l| l.call.number == number) {
            l.hangup.notify_one();
            n += 1;
        }
        n
    }

    /// Finished calls (oldest first) then live ones (by id).
    pub(crate) fn calls(&self) -> Vec<SimCall> {
        let g = self.lock();
        let mut live: Vec<SimCall> = g
            .live
            .values()
            .map(|l| {
                let mut c = l.call.clone();
                if let Some(m) = &l.meter {
                    c.heard = m.heard();
                }
                c
            })
            .collect();
        live.sort_by_key(|c| c.id);
        g.done.iter().cloned().chain(live).collect()
    }

    pub(crate) fn stats(&self) -> CarrierStats {
        self.lock().stats.clone()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<SimCall> {
        self.finished.subscribe()
    }
}

/// How a call ended (see [`crate::uas::ending`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct End {
    pub by: EndedBy,
    pub reason: &'static str,
    pub status: Option<u16>,
}
