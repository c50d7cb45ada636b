//! The dialing engine: the tokio driver around the sans-IO dialer core.
//!
//! - A supervisor task follows the store: every active campaign gets a campaign task (pacing
//!   tick every second: load → [`Pacer`] → hopper claim → attempt start → call task), and a
//!   campaign that stops being active stops dialing (its calls in flight finish).
//! - A call task per call drives a [`CallFsm`] with SIP events (the engine's one
//!   [`Endpoint`]), AMD verdicts from the lead's RTP stream (the media runtime) and timers, and
//!   acts: bridge to the longest-idle agent, abandon message, voicemail drop, hang-up.
//! - Agents: presence and routing in memory (`agents.rs`), each available agent's audio leg
//!   kept up between calls.
//! - Every transition is persisted through the write-behind queue (`writer.rs`) and emitted
//!   on the event bus. Only the start of an attempt is written synchronously (before the
//!   INVITE), which is what makes `kill -9` safe: see [`Store::recover_interrupted`].

mod agents;
mod call;
mod recording;
mod sinks;
mod whisper;
mod writer;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use switchboard_media::runtime::{Clip, MediaHandle, Silence, StreamConfig};
use switchboard_sip::endpoint::{CallConfig, CallEvent, Endpoint, Transport};
use switchboard_sip::sdp::LocalMedia;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use agents::{AgentState, AgentView};
pub use writer::WriterStats;

use crate::calls::CallRow;
use crate::campaigns::Campaign;
use crate::dialer::abandon::{AbandonWindow, Window};
use crate::dialer::call::{CallTimers, Disposition};
use crate::dialer::pacer::{DialMode, Load, Pacer, PacerConfig};
use crate::events::{Channel, EventBus};
use crate::leads::Lead;
use crate::store::{new_id, now as store_now};
use crate::{Result, Store};
use agents::{AgentNotice, Agents, Slot};
use writer::WriteBehind;

#[cfg(doc)]
use crate::dialer::call::CallFsm;

/// A trunk to dial through.
#[derive(Debug, Clone, PartialEq)]
pub struct DialTrunkConfig {
    pub id: String,
    pub name: String,
    /// `host:port` of the proxy / registrar.
    pub server: String,
    /// Request-URI host: `sip:{number}@{domain}`.
    pub domain: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub transport: Transport,
    /// 0 = unlimited.
    pub max_concurrent: u32,
    /// 0 = unlimited.
    pub max_cps: f64,
}

/// Where the engine finds a tenant's trunks (the store's trunk table through the telephony
/// service, or a fixed list).
pub trait TrunkProvider: Send + Sync + 'static {
    /// Enabled trunks in failover order; `ids` (the campaign's choice) may be empty for all.
    fn trunks<'a>(
        &'a self,
        tenant_id: &'a str,
        ids: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<DialTrunkConfig>>> + Send + 'a>>;
}

/// A fixed list of trunks for every tenant (the demo, tests, a single-trunk deployment).
#[derive(Debug, Clone)]
pub struct StaticTrunks(pub Vec<DialTrunkConfig>);

impl TrunkProvider for StaticTrunks {
    fn trunks<'a>(
        &'a self,
        _tenant_id: &'a str,
        _ids: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<DialTrunkConfig>>> + Send + 'a>> {
        let v = self.0.clone();
        Box::pin(async move { Ok(v) })
    }
}

/// The tenant's trunks from the store (`/api/sip/configure`), passwords opened with the
/// engine's secret box; a fixed fallback list serves tenants with none.
#[derive(Clone)]
pub struct StoreTrunks {
    pub store: Store,
    pub secrets: crate::telephony::SecretBox,
    pub fallback: Vec<DialTrunkConfig>,
}

impl std::fmt::Debug for StoreTrunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTrunks")
            .field("fallback", &self.fallback)
            .finish()
    }
}

impl TrunkProvider for StoreTrunks {
    fn trunks<'a>(
        &'a self,
        tenant_id: &'a str,
        ids: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<DialTrunkConfig>>> + Send + 'a>> {
        Box::pin(async move {
            let rows = self
                .store
                .dial_trunks(tenant_id, ids, &self.secrets)
                .await?;
            if rows.is_empty() {
                return Ok(self.fallback.clone());
            }
            Ok(rows
                .into_iter()
                .map(|d| {
                    let t = &d.trunk;
                    DialTrunkConfig {
                        id: t.id.clone(),
                        name: t.name.clone(),
                        server: t.server_addr(),
                        domain: t.sip_domain(),
                        username: t.username.clone(),
                        password: d.password.clone(),
                        transport: t.sip_transport(),
                        max_concurrent: t.max_concurrent_calls.max(0) as u32,
                        max_cps: t.max_calls_per_second.max(0.0),
                    }
                })
                .collect())
        })
    }
}

/// Engine settings.
#[derive(Clone)]
pub struct DialerConfig {
    /// The address put in SDP for our RTP (the media runtime's bind address when specific).
    pub sdp_address: String,
    /// Where recordings are written.
    pub recordings_dir: PathBuf,
    pub timers: CallTimers,
    /// AMD's `unknown` goes to an agent (true, default) or is hung up on.
    pub unknown_as_human: bool,
    /// Pacing tick.
    pub tick: Duration,
    /// The abandon message (caller identity and opt-out).
    pub abandon_prompt: Arc<Clip>,
    /// The voicemail message used when a campaign asks for `builtin:voicemail`.
    pub default_voicemail: Arc<Clip>,
    /// On shutdown, answered calls get this long before BYE.
    pub shutdown_grace: Duration,
    /// Re-read campaign settings this often.
    pub campaign_refresh: Duration,
    /// What one minute of a retry policy's `delay_minutes` lasts (a minute; tests shorten it).
    pub retry_unit: Duration,
}

impl std::fmt::Debug for DialerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialerConfig")
            .field("sdp_address", &self.sdp_address)
            .field("recordings_dir", &self.recordings_dir)
            .field("timers", &self.timers)
            .field("tick", &self.tick)
            .finish()
    }
}

/// The built-in prompts (8 kHz WAVs generated with espeak-ng, embedded).
pub mod prompts {
    use std::sync::Arc;
    use switchboard_media::runtime::Clip;

    const ABANDON: &[u8] = include_bytes!("../../assets/prompts/abandon.wav");
    const VOICEMAIL: &[u8] = include_bytes!("../../assets/prompts/voicemail.wav");

    /// The abandon message.
    pub fn abandon() -> Arc<Clip> {
        switchboard_media::playback::decode_clip(ABANDON, None)
            .unwrap_or_else(|_| Clip::from_pcm(&[0; 160]))
    }

    /// The demo voicemail message.
    pub fn voicemail() -> Arc<Clip> {
        switchboard_media::playback::decode_clip(VOICEMAIL, None)
            .unwrap_or_else(|_| Clip::from_pcm(&[0; 160]))
    }
}

impl DialerConfig {
    pub fn new(sdp_address: &str, recordings_dir: PathBuf) -> Self {
        Self {
            sdp_address: sdp_address.to_owned(),
            recordings_dir,
            timers: CallTimers::default(),
            unknown_as_human: true,
            tick: Duration::from_secs(1),
            abandon_prompt: prompts::abandon(),
            default_voicemail: prompts::voicemail(),
            shutdown_grace: Duration::from_secs(10),
            campaign_refresh: Duration::from_secs(2),
            retry_unit: Duration::from_secs(60),
        }
    }
}

/// Engine counters (for `/metrics` and the demo summary).
#[derive(Debug, Default)]
pub struct DialerStats {
    pub calls_started: AtomicU64,
    pub calls_ended: AtomicU64,
    pub human: AtomicU64,
    pub machine: AtomicU64,
    pub unknown: AtomicU64,
    pub bridged: AtomicU64,
    pub recordings: AtomicU64,
    by_disposition: Mutex<HashMap<&'static str, u64>>,
    /// Human verdict → audio bridged, microseconds (bounded sample).
    bridge_us: Mutex<Vec<u64>>,
    mos_buckets: [AtomicU64; MOS_BUCKETS.len()],
    mos_sum_milli: AtomicU64,
    mos_count: AtomicU64,
    bridge_buckets: [AtomicU64; BRIDGE_BUCKETS.len()],
    bridge_sum_us: AtomicU64,
    bridge_count: AtomicU64,
}

/// Upper bounds of the MOS histogram.
const MOS_BUCKETS: [f64; 7] = [1.0, 2.0, 3.0, 3.5, 4.0, 4.3, 5.0];
/// Upper bounds (seconds) of the verdict → bridge histogram.
const BRIDGE_BUCKETS: [f64; 7] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0];

impl DialerStats {
    fn count_disposition(&self, d: Disposition) {
        *self
            .by_disposition
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(d.as_str())
            .or_default() += 1;
    }

    fn bridge_latency(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, b) in BRIDGE_BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.bridge_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.bridge_sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.bridge_count.fetch_add(1, Ordering::Relaxed);
        let mut v = self.bridge_us.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < 100_000 {
            v.push(d.as_micros() as u64);
        }
    }

    fn mos_sample(&self, m: f64) {
        for (i, b) in MOS_BUCKETS.iter().enumerate() {
            if m <= *b {
                self.mos_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.mos_sum_milli
            .fetch_add((m * 1000.0) as u64, Ordering::Relaxed);
        self.mos_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls ended, by disposition.
    pub fn dispositions(&self) -> HashMap<&'static str, u64> {
        self.by_disposition
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Human verdict → bridged latencies seen.
    pub fn bridge_latencies(&self) -> Vec<Duration> {
        self.bridge_us
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|&us| Duration::from_micros(us))
            .collect()
    }
}

/// A running campaign.
pub(crate) struct CampaignCtx {
    pub id: String,
    pub tenant_id: String,
    pub campaign: Mutex<Campaign>,
    pub pacer: Mutex<Pacer>,
    pub abandon: Mutex<AbandonWindow>,
    /// Calls that may still need an agent: dialing, ringing, or answered and not yet decided.
    pub in_flight: AtomicU32,
    /// Calls not finished (any phase).
    pub active: AtomicU32,
    pub stop: AtomicBool,
    pub voicemail: Option<Arc<Clip>>,
    /// The campaign's counters (`calls_made`, `calls_completed`), kept in step with the store.
    pub made: std::sync::atomic::AtomicI64,
    pub completed: std::sync::atomic::AtomicI64,
}

impl CampaignCtx {
    fn new(
        c: Campaign,
        mode: DialMode,
        window: AbandonWindow,
        voicemail: Option<Arc<Clip>>,
        stopped: bool,
    ) -> Self {
        Self {
            id: c.id.clone(),
            tenant_id: c.tenant_id.clone(),
            pacer: Mutex::new(Pacer::new(PacerConfig::new(
                mode,
                c.dial_ratio,
                c.max_abandon_rate,
            ))),
            abandon: Mutex::new(window),
            in_flight: AtomicU32::new(0),
            active: AtomicU32::new(0),
            stop: AtomicBool::new(stopped),
            voicemail,
            made: std::sync::atomic::AtomicI64::new(c.calls_made),
            completed: std::sync::atomic::AtomicI64::new(c.calls_completed),
            campaign: Mutex::new(c),
        }
    }

    pub(crate) fn campaign(&self) -> Campaign {
        self.campaign
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

struct CampaignRun {
    ctx: Arc<CampaignCtx>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct TrunkUse {
    active: u32,
    second: Option<Instant>,
    in_second: u32,
}

pub(crate) struct Inner {
    pub store: Store,
    pub events: EventBus,
    pub endpoint: Arc<Endpoint>,
    pub media: MediaHandle,
    pub cfg: DialerConfig,
    pub agents: Agents,
    pub writer: Arc<WriteBehind>,
    pub stats: DialerStats,
    trunks: Arc<dyn TrunkProvider>,
    trunk_use: Mutex<HashMap<String, TrunkUse>>,
    /// Decoded voicemail messages by name.
    prompts: switchboard_media::playback::PromptCache,
    campaigns: Mutex<HashMap<String, CampaignRun>>,
    /// Call tasks by call id: how the API reaches a call.
    pub calls: Mutex<HashMap<String, mpsc::UnboundedSender<AgentNotice>>>,
    pub stopping: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    call_tasks: tokio::sync::Mutex<tokio::task::JoinSet<()>>,
}

/// The engine handle; cheap to clone.
#[derive(Clone)]
pub struct Dialer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("cfg", &self.inner.cfg)
            .finish()
    }
}

impl Dialer {
    /// Recovers what a previous run left (calls closed as interrupted, leads re-queued), then
    /// starts the supervisor: active campaigns resume, agents marked available are called.
    pub async fn start(
        store: Store,
        events: EventBus,
        endpoint: Arc<Endpoint>,
        media: MediaHandle,
        trunks: Arc<dyn TrunkProvider>,
        cfg: DialerConfig,
    ) -> Result<Dialer> {
        // Recordings a crash left with stale WAV headers are repaired before anything records.
        let dir = cfg.recordings_dir.clone();
        match tokio::task::spawn_blocking(move || switchboard_recordings::repair_dir(&dir)).await {
            Ok(Ok(r)) => {
                if !r.repaired.is_empty() || !r.failed.is_empty() {
                    tracing::warn!(
                        repaired = r.repaired.len(),
                        failed = r.failed.len(),
                        "recordings repaired after an unclean stop"
                    );
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "recording repair pass failed"),
            Err(e) => tracing::warn!(error = %e, "recording repair pass panicked"),
        }
        let rec = store.recover_interrupted().await?;
        if rec != Default::default() {
            tracing::warn!(
                calls_closed = rec.calls_closed,
                leads_requeued = rec.leads_requeued,
                leads_failed = rec.leads_failed,
                "recovered from an unclean stop"
            );
        }
        let writer = Arc::new(WriteBehind::start(
            store.clone(),
            256,
            Duration::from_millis(50),
        ));
        let inner = Arc::new(Inner {
            agents: Agents::new(events.clone(), Some(writer.clone())),
            store,
            events,
            endpoint,
            media,
            cfg,
            writer,
            stats: DialerStats::default(),
            trunks,
            trunk_use: Mutex::new(HashMap::new()),
            prompts: switchboard_media::playback::PromptCache::new(64 << 20),
            campaigns: Mutex::new(HashMap::new()),
            calls: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            call_tasks: tokio::sync::Mutex::new(tokio::task::JoinSet::new()),
        });
        let d = Dialer { inner };
        let sup = tokio::spawn(supervise(d.inner.clone()));
        let bus = tokio::spawn(listen(d.inner.clone()));
        d.inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([sup, bus]);
        // Agents who were available before the restart.
        if let Ok(ids) = d.inner.store.available_agent_ids().await {
            for (tenant, id) in ids {
                d.agent_status(&tenant, &id, "available").await;
            }
        }
        Ok(d)
    }

    /// Counters.
    pub fn stats(&self) -> &DialerStats {
        &self.inner.stats
    }

    /// The write-behind queue's counters.
    pub fn writer_stats(&self) -> Arc<WriterStats> {
        self.inner.writer.stats.clone()
    }

    /// Agents of a tenant as the engine sees them.
    pub fn agents(&self, tenant_id: &str) -> Vec<AgentView> {
        self.inner.agents.views(tenant_id)
    }

    /// Rolling abandon rate of a running campaign.
    pub fn abandon_rate(&self, campaign_id: &str) -> Option<f64> {
        let runs = self
            .inner
            .campaigns
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let run = runs.get(campaign_id)?;
        let rate = run
            .ctx
            .abandon
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rate(Utc::now());
        Some(rate)
    }

    /// Prometheus text: engine calls, dispositions, RTP packets, MOS and bridge-latency
    /// histograms, abandon rate per campaign, agents by state, write-behind queue.
    pub fn render_metrics(&self) -> String {
        use std::fmt::Write;
        let inner = &self.inner;
        let st = &inner.stats;
        let mut o = String::new();
        let head = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(
            &mut o,
            "switchboard_engine_calls_started_total",
            "counter",
            "Dial attempts started (rate() gives calls per second).",
        );
        let _ = writeln!(
            o,
            "switchboard_engine_calls_started_total {}",
            st.calls_started.load(Ordering::Relaxed)
        );
        head(
            &mut o,
            "switchboard_engine_calls_active",
            "gauge",
            "Engine calls not finished.",
        );
        let _ = writeln!(o, "switchboard_engine_calls_active {}", self.active_calls());
        head(
            &mut o,
            "switchboard_engine_calls_ended_total",
            "counter",
            "Finished calls by disposition.",
        );
        let mut d: Vec<_> = st.dispositions().into_iter().collect();
        d.sort();
        for (k, v) in d {
            let _ = writeln!(
                o,
                "switchboard_engine_calls_ended_total{{disposition=\"{k}\"}} {v}"
            );
        }
        head(
            &mut o,
            "switchboard_amd_results_total",
            "counter",
            "AMD verdicts by class.",
        );
        for (k, v) in [
            ("human", &st.human),
            ("machine", &st.machine),
            ("unknown", &st.unknown),
        ] {
            let _ = writeln!(
                o,
                "switchboard_amd_results_total{{class=\"{k}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let loops = inner.media.loop_stats();
        let (rx, tx, late): (u64, u64, u64) = loops.iter().fold((0, 0, 0), |a, l| {
            (
                a.0 + l.packets_received,
                a.1 + l.packets_sent,
                a.2 + l.late_ticks,
            )
        });
        head(
            &mut o,
            "switchboard_rtp_packets_received_total",
            "counter",
            "RTP/RTCP datagrams received by the media loops (rate() gives packets per second).",
        );
        let _ = writeln!(o, "switchboard_rtp_packets_received_total {rx}");
        head(
            &mut o,
            "switchboard_rtp_packets_sent_total",
            "counter",
            "RTP packets sent by the media loops.",
        );
        let _ = writeln!(o, "switchboard_rtp_packets_sent_total {tx}");
        head(
            &mut o,
            "switchboard_media_late_ticks_total",
            "counter",
            "20 ms pacing ticks that ran late or were skipped.",
        );
        let _ = writeln!(o, "switchboard_media_late_ticks_total {late}");
        head(
            &mut o,
            "switchboard_call_mos",
            "histogram",
            "MOS of finished calls (E-model).",
        );
        for (i, b) in MOS_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "switchboard_call_mos_bucket{{le=\"{b}\"}} {}",
                st.mos_buckets[i].load(Ordering::Relaxed)
            );
        }
        let n = st.mos_count.load(Ordering::Relaxed);
        let _ = writeln!(o, "switchboard_call_mos_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(
            o,
            "switchboard_call_mos_sum {}",
            st.mos_sum_milli.load(Ordering::Relaxed) as f64 / 1000.0
        );
        let _ = writeln!(o, "switchboard_call_mos_count {n}");
        head(
            &mut o,
            "switchboard_bridge_latency_seconds",
            "histogram",
            "Time from a human verdict to the audio bridged with an agent.",
        );
        for (i, b) in BRIDGE_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "switchboard_bridge_latency_seconds_bucket{{le=\"{b}\"}} {}",
                st.bridge_buckets[i].load(Ordering::Relaxed)
            );
        }
        let n = st.bridge_count.load(Ordering::Relaxed);
        let _ = writeln!(
            o,
            "switchboard_bridge_latency_seconds_bucket{{le=\"+Inf\"}} {n}"
        );
        let _ = writeln!(
            o,
            "switchboard_bridge_latency_seconds_sum {}",
            st.bridge_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(o, "switchboard_bridge_latency_seconds_count {n}");
        head(&mut o, "switchboard_campaign_abandon_rate", "gauge", "Rolling abandon rate of each running campaign (live answers not connected within 2 s).");
        let rates: Vec<(String, f64)> = {
            let runs = inner.campaigns.lock().unwrap_or_else(|e| e.into_inner());
            runs.values()
                .map(|r| {
                    (
                        r.ctx.id.clone(),
                        r.ctx
                            .abandon
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .rate(Utc::now()),
                    )
                })
                .collect()
        };
        for (id, r) in rates {
            let _ = writeln!(
                o,
                "switchboard_campaign_abandon_rate{{campaign=\"{id}\"}} {r}"
            );
        }
        head(
            &mut o,
            "switchboard_agents",
            "gauge",
            "Agents known to the engine by state.",
        );
        let mut by: HashMap<&'static str, u64> = HashMap::new();
        for s in inner.agents.lock().slots.values() {
            *by.entry(s.state.as_str()).or_default() += 1;
        }
        for state in [
            "offline",
            "connecting",
            "available",
            "busy",
            "wrap-up",
            "break",
        ] {
            let _ = writeln!(
                o,
                "switchboard_agents{{state=\"{state}\"}} {}",
                by.get(state).copied().unwrap_or(0)
            );
        }
        let w = &inner.writer.stats;
        head(
            &mut o,
            "switchboard_writebehind_depth",
            "gauge",
            "Engine writes queued, not yet committed.",
        );
        let _ = writeln!(
            o,
            "switchboard_writebehind_depth {}",
            w.depth.load(Ordering::Relaxed)
        );
        head(
            &mut o,
            "switchboard_writebehind_committed_total",
            "counter",
            "Engine writes committed.",
        );
        let _ = writeln!(
            o,
            "switchboard_writebehind_committed_total {}",
            w.committed.load(Ordering::Relaxed)
        );
        head(
            &mut o,
            "switchboard_writebehind_failures_total",
            "counter",
            "Write-behind batches that failed (and were retried).",
        );
        let _ = writeln!(
            o,
            "switchboard_writebehind_failures_total {}",
            w.failures.load(Ordering::Relaxed)
        );
        o
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.inner
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// An agent's status changed through the API or WebSocket.
    pub async fn agent_status(&self, tenant_id: &str, agent_id: &str, status: &str) {
        agent_status(&self.inner, tenant_id, agent_id, status).await;
    }

    /// Preview dialing (`POST /api/calls/start`): places the call recorded as `call_id` for
    /// its lead, with the agent already chosen — they must be available with their audio leg
    /// up. No AMD (the agent listens); the lead's attempt is counted like any other.
    pub async fn preview_dial(&self, tenant_id: &str, call_id: &str, agent_id: &str) -> Result<()> {
        let inner = &self.inner;
        if inner.stopping.load(Ordering::SeqCst) {
            return Err(crate::Error::conflict("the engine is shutting down"));
        }
        let row = inner.store.call_row(tenant_id, call_id).await?;
        let Some(lead_id) = row.lead_id.clone() else {
            return Err(crate::Error::field(
                "leadId",
                "preview dialing needs a lead",
            ));
        };
        let lead = inner.store.lead(tenant_id, &lead_id).await?;
        let campaign = inner.store.campaign(tenant_id, &lead.campaign_id).await?;
        let now = Utc::now();
        let window = crate::dialer::hours::CallingWindow::from_strings(
            &campaign.calling_hours_start,
            &campaign.calling_hours_end,
        );
        if !window.allows(now, crate::dialer::hopper::lead_zone(&lead, &campaign)) {
            return Err(crate::Error::conflict(
                "outside calling hours in the lead's time zone",
            ));
        }
        if let Some(due) = lead.next_call_at.filter(|t| *t > now) {
            return Err(crate::Error::conflict(format!(
                "the lead may not be called again before {}",
                due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )));
        }
        if inner
            .store
            .is_dnc(tenant_id, &lead.phone_normalized)
            .await?
            || lead.do_not_call
        {
            return Err(crate::Error::conflict(
                "the lead's number is on the do-not-call list",
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let reserved = inner
            .agents
            .reserve_agent(tenant_id, agent_id, call_id, tx.clone())
            .ok_or_else(|| {
                crate::Error::conflict("the agent is not available (their audio leg must be up)")
            })?;
        if !inner.store.begin_preview_attempt(&campaign, &lead).await? {
            inner.agents.release(agent_id, call_id);
            return Err(crate::Error::conflict(
                "the lead is being called, finished, or out of attempts",
            ));
        }
        let trunks = inner.trunks.trunks(tenant_id, &campaign.trunk_ids).await?;
        if trunks.is_empty() {
            inner.agents.release(agent_id, call_id);
            return Err(crate::Error::conflict("no trunk to dial through"));
        }
        // The campaign's running context, or one for this call alone.
        let ctx = {
            let runs = inner.campaigns.lock().unwrap_or_else(|e| e.into_inner());
            runs.get(&campaign.id).map(|r| r.ctx.clone())
        };
        let ctx = ctx.unwrap_or_else(|| {
            // Not a running campaign: a context for this call alone (its pacer is unused).
            let window = AbandonWindow::new(Window::parse(&campaign.abandon_window));
            Arc::new(CampaignCtx::new(
                campaign.clone(),
                DialMode::Preview,
                window,
                None,
                true,
            ))
        });
        inner.stats.calls_started.fetch_add(1, Ordering::Relaxed);
        ctx.made.fetch_add(1, Ordering::SeqCst);
        ctx.in_flight.fetch_add(1, Ordering::SeqCst);
        ctx.active.fetch_add(1, Ordering::SeqCst);
        inner
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(call_id.to_owned(), tx.clone());
        let mut campaign = campaign;
        campaign.amd_enabled = false;
        let job = call::CallJob {
            inner: inner.clone(),
            ctx,
            campaign,
            lead,
            call_id: call_id.to_owned(),
            trunks,
            notices_tx: tx,
            notices: rx,
            started_at: row.start_time.unwrap_or_else(store_now),
            call_clock: tokio::time::Instant::now(),
            preassigned: Some(reserved),
            booked: AtomicBool::new(false),
        };
        inner.call_tasks.lock().await.spawn(job.run());
        Ok(())
    }

    /// The agent ended a call (`POST /api/calls/:id/end`): hangs up a call still talking, or
    /// ends the wrap-up.
    pub fn call_ended_by_agent(&self, call_id: &str) {
        let calls = self.inner.calls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = calls.get(call_id) {
            let _ = tx.send(AgentNotice::Ended);
        }
    }

    /// Graceful stop: no new dials, answered calls get the grace period, then BYE; the
    /// write-behind queue is drained. Agents' legs are hung up.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.stopping.store(true, Ordering::SeqCst);
        for run in inner
            .campaigns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            run.ctx.stop.store(true, Ordering::SeqCst);
        }
        let deadline = tokio::time::Instant::now() + inner.cfg.shutdown_grace;
        {
            let mut set = inner.call_tasks.lock().await;
            loop {
                tokio::select! {
                    next = set.join_next() => if next.is_none() { break },
                    _ = tokio::time::sleep_until(deadline) => {
                        // Calls still up get BYE / CANCEL from their tasks.
                        let calls: Vec<_> = inner.calls.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
                        for c in calls { let _ = c.send(AgentNotice::Ended); }
                        let _ = tokio::time::timeout(Duration::from_secs(5), async { while set.join_next().await.is_some() {} }).await;
                        set.abort_all();
                        break;
                    }
                }
            }
        }
        let legs: Vec<_> = inner
            .agents
            .lock()
            .slots
            .values_mut()
            .filter_map(|s| s.hangup.take())
            .collect();
        for h in legs {
            let _ = h.send(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        for t in inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
        inner.writer.drain().await;
        // Anything still open (a call that did not end within the grace period, an attempt
        // begun as the shutdown started) is closed now as interrupted, as a restart would.
        match inner.store.recover_interrupted().await {
            Ok(r) if r != Default::default() => {
                tracing::warn!(
                    calls_closed = r.calls_closed,
                    leads_requeued = r.leads_requeued,
                    "closed calls left open at shutdown"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "closing calls at shutdown failed"),
        }
    }
}

/// Follows the store: starts a task per active campaign, stops those no longer active.
async fn supervise(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(inner.cfg.campaign_refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if inner.stopping.load(Ordering::SeqCst) {
            return;
        }
        let active = match inner.store.active_campaigns().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read campaigns");
                continue;
            }
        };
        let fresh: Vec<Campaign> = {
            let mut runs = inner.campaigns.lock().unwrap_or_else(|e| e.into_inner());
            runs.retain(|id, run| {
                let keep = active.iter().any(|c| &c.id == id) && !run.task.is_finished();
                if !keep {
                    run.ctx.stop.store(true, Ordering::SeqCst);
                }
                keep || run.ctx.active.load(Ordering::SeqCst) > 0 && !run.task.is_finished()
            });
            let mut fresh = Vec::new();
            for c in active {
                match runs.get(&c.id) {
                    Some(run) => *run.ctx.campaign.lock().unwrap_or_else(|e| e.into_inner()) = c,
                    None => fresh.push(c),
                }
            }
            fresh
        };
        for c in fresh {
            // The rolling abandon rate starts from the stored calls of its window.
            let mut window = AbandonWindow::new(Window::parse(&c.abandon_window));
            let now = Utc::now();
            let since = now - window.window().length();
            if let Ok((live, ab)) = inner.store.abandon_counts(&c.tenant_id, &c.id, since).await {
                window.seed(live, ab, now);
            }
            let mode = DialMode::parse(&c.dial_mode).unwrap_or(DialMode::Progressive);
            let voicemail = voicemail_for(&inner, &c).await;
            let ctx = Arc::new(CampaignCtx::new(c.clone(), mode, window, voicemail, false));
            inner.events.emit(
                &c.tenant_id,
                Channel::Calls,
                "campaignStarted",
                None,
                json!({"campaignId": c.id, "name": c.name, "dialMode": c.dial_mode}),
            );
            let task = tokio::spawn(run_campaign(inner.clone(), ctx.clone()));
            inner
                .campaigns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(c.id.clone(), CampaignRun { ctx, task });
        }
    }
}

/// The voicemail message of a campaign: `builtin:voicemail` (the built-in demo message), a
/// local WAV path, or an http(s) URL fetched (10 s, 16 MB at most) when the campaign starts;
/// decoded once into an 8 kHz clip and cached by name.
async fn voicemail_for(inner: &Inner, c: &Campaign) -> Option<Arc<Clip>> {
    let url = c.voicemail_message_url.as_deref()?.trim().to_owned();
    if url.is_empty() {
        return None;
    }
    if url == "builtin:voicemail" {
        return Some(inner.cfg.default_voicemail.clone());
    }
    if let Some(clip) = inner.prompts.get(&url) {
        return Some(clip);
    }
    let bytes = if url.starts_with("http://") || url.starts_with("https://") {
        match fetch(&url).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(campaign = %c.id, url, error = %e, "voicemail message not fetched; machines will be hung up on");
                return None;
            }
        }
    } else {
        let path = url.strip_prefix("file://").unwrap_or(&url).to_owned();
        match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(campaign = %c.id, path, error = %e, "voicemail message not found; machines will be hung up on");
                return None;
            }
        }
    };
    match inner.prompts.get_or_load_with(&url, || {
        switchboard_media::playback::decode_clip(&bytes, None)
    }) {
        Ok(clip) => Some(clip),
        Err(e) => {
            tracing::warn!(campaign = %c.id, error = %e, "voicemail message unreadable; machines will be hung up on");
            None
        }
    }
}

async fn fetch(url: &str) -> std::result::Result<Vec<u8>, String> {
    const MAX: usize = 16 << 20;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let mut resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX {
            return Err("larger than 16 MB".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The pacing loop of one campaign.
async fn run_campaign(inner: Arc<Inner>, ctx: Arc<CampaignCtx>) {
    let mut tick = tokio::time::interval(inner.cfg.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut idle_ticks = 0u32;
    loop {
        tick.tick().await;
        if ctx.stop.load(Ordering::SeqCst) || inner.stopping.load(Ordering::SeqCst) {
            break;
        }
        let c = ctx.campaign();
        let now = Utc::now();
        let (ready, busy) = inner
            .agents
            .load(&ctx.tenant_id, c.agent_group_id.as_deref());
        let load = Load {
            ready_agents: ready,
            busy_agents: busy,
            in_flight: ctx.in_flight.load(Ordering::SeqCst),
        };
        let rate = ctx
            .abandon
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rate(now);
        let want = ctx
            .pacer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tick(now, load, rate);
        tracing::trace!(campaign = %ctx.id, ready, busy, in_flight = load.in_flight, want, "pacing tick");
        if want == 0 {
            idle_ticks += 1;
            if idle_ticks % 10 == 0 {
                maybe_complete(&inner, &ctx).await;
            }
            continue;
        }
        let trunks = match inner.trunks.trunks(&ctx.tenant_id, &c.trunk_ids).await {
            Ok(t) if !t.is_empty() => t,
            Ok(_) => {
                tracing::warn!(campaign = %ctx.id, "no trunk to dial through");
                continue;
            }
            Err(e) => {
                tracing::warn!(campaign = %ctx.id, error = %e, "cannot read trunks");
                continue;
            }
        };
        let room = trunk_room(&inner, &trunks);
        let n = want.min(room) as usize;
        if n == 0 {
            continue;
        }
        let leads = match inner.store.claim_leads(&c, now, n).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(campaign = %ctx.id, error = %e, "hopper failed");
                continue;
            }
        };
        if leads.is_empty() {
            idle_ticks += 1;
            if idle_ticks % 10 == 0 {
                maybe_complete(&inner, &ctx).await;
            }
            continue;
        }
        idle_ticks = 0;
        for lead in leads {
            start_attempt(&inner, &ctx, &c, lead, trunks.clone()).await;
        }
    }
    // Claimed but never dialled (a pause between claim and dial): back to pending.
    let _ = inner.store.release_claimed(&ctx.tenant_id, &ctx.id).await;
}

/// A campaign with nothing left to dial and nothing in progress is completed.
async fn maybe_complete(inner: &Inner, ctx: &CampaignCtx) {
    if ctx.active.load(Ordering::SeqCst) > 0 {
        return;
    }
    let _ = inner.store.sweep_dnc_leads(&ctx.tenant_id, &ctx.id).await;
    let max = ctx.campaign().retry_policy.max_attempts;
    let _ = inner
        .store
        .sweep_exhausted_leads(&ctx.tenant_id, &ctx.id, max)
        .await;
    if let Ok(0) = inner.store.leads_left(&ctx.tenant_id, &ctx.id).await {
        if inner
            .store
            .complete_campaign(&ctx.tenant_id, &ctx.id)
            .await
            .unwrap_or(false)
        {
            ctx.stop.store(true, Ordering::SeqCst);
            inner.events.emit(
                &ctx.tenant_id,
                Channel::Calls,
                "campaignCompleted",
                None,
                json!({"campaignId": ctx.id}),
            );
        }
    }
}

/// How many new calls the trunks take now (concurrency and calls-per-second limits).
fn trunk_room(inner: &Inner, trunks: &[DialTrunkConfig]) -> u32 {
    let uses = inner.trunk_use.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let mut room = 0u32;
    for t in trunks {
        let u = uses.get(&t.id);
        let conc = if t.max_concurrent == 0 {
            u32::MAX / 4
        } else {
            t.max_concurrent.saturating_sub(u.map_or(0, |u| u.active))
        };
        let cps = if t.max_cps <= 0.0 {
            u32::MAX / 4
        } else {
            let used = u
                .filter(|u| {
                    u.second
                        .is_some_and(|s| now.duration_since(s) < Duration::from_secs(1))
                })
                .map_or(0, |u| u.in_second);
            (t.max_cps.ceil() as u32).saturating_sub(used)
        };
        room = room.saturating_add(conc.min(cps));
    }
    room
}

/// Takes a place on the first trunk (in order) with room; `None` when all are full.
pub(crate) fn acquire_trunk(
    inner: &Inner,
    trunks: &[DialTrunkConfig],
    skip: usize,
) -> Option<usize> {
    let mut uses = inner.trunk_use.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    for (i, t) in trunks.iter().enumerate().skip(skip) {
        let u = uses.entry(t.id.clone()).or_default();
        if u.second
            .is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1))
        {
            u.second = Some(now);
            u.in_second = 0;
        }
        let conc_ok = t.max_concurrent == 0 || u.active < t.max_concurrent;
        let cps_ok = t.max_cps <= 0.0 || f64::from(u.in_second) < t.max_cps.ceil();
        if conc_ok && cps_ok {
            u.active += 1;
            u.in_second += 1;
            return Some(i);
        }
    }
    None
}

pub(crate) fn release_trunk(inner: &Inner, trunk_id: &str) {
    let mut uses = inner.trunk_use.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(u) = uses.get_mut(trunk_id) {
        u.active = u.active.saturating_sub(1);
    }
}

/// DNC check at dial time, the synchronous attempt start, then the call task.
async fn start_attempt(
    inner: &Arc<Inner>,
    ctx: &Arc<CampaignCtx>,
    c: &Campaign,
    lead: Lead,
    trunks: Vec<DialTrunkConfig>,
) {
    match inner
        .store
        .is_dnc(&ctx.tenant_id, &lead.phone_normalized)
        .await
    {
        Ok(false) => {}
        Ok(true) => {
            let _ = inner.store.mark_lead_dnc(&ctx.tenant_id, &lead.id).await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "DNC check failed; not dialling");
            let _ = inner.store.release_claimed(&ctx.tenant_id, &ctx.id).await;
            return;
        }
    }
    let mut row = CallRow::blank(&ctx.tenant_id);
    row.id = new_id();
    row.campaign_id = Some(ctx.id.clone());
    row.lead_id = Some(lead.id.clone());
    row.direction = "outbound".into();
    row.status = "initiated".into();
    row.from_number = Some(c.caller_id.clone());
    row.to_number = Some(lead.phone_normalized.clone());
    let name = [lead.first_name.as_deref(), lead.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    row.caller_name = (!name.is_empty()).then_some(name);
    row.start_time = Some(store_now());
    if inner.stopping.load(Ordering::SeqCst) {
        let _ = inner.store.release_claimed(&ctx.tenant_id, &ctx.id).await;
        return;
    }
    match inner.store.begin_attempt(c, &lead, &row).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start an attempt");
            return;
        }
    }
    inner.stats.calls_started.fetch_add(1, Ordering::Relaxed);
    ctx.made.fetch_add(1, Ordering::SeqCst);
    ctx.in_flight.fetch_add(1, Ordering::SeqCst);
    ctx.active.fetch_add(1, Ordering::SeqCst);
    inner.events.emit(
        &ctx.tenant_id,
        Channel::Calls,
        "callInitiated",
        None,
        json!({"id": row.id, "callId": row.id, "campaignId": ctx.id, "leadId": lead.id, "phoneNumber": lead.phone_normalized,
               "status": "initiated", "direction": "outbound", "startTime": row.start_time}),
    );
    let (tx, rx) = mpsc::unbounded_channel();
    inner
        .calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(row.id.clone(), tx.clone());
    let job = call::CallJob {
        inner: inner.clone(),
        ctx: ctx.clone(),
        campaign: c.clone(),
        lead,
        call_id: row.id,
        trunks,
        notices_tx: tx,
        notices: rx,
        started_at: row.start_time.unwrap_or_else(store_now),
        call_clock: tokio::time::Instant::now(),
        preassigned: None,
        booked: AtomicBool::new(false),
    };
    inner.call_tasks.lock().await.spawn(job.run());
}

/// Listens on the bus for what the API and WebSocket hub do that the engine must follow.
async fn listen(inner: Arc<Inner>) {
    let mut rx = inner.events.subscribe();
    loop {
        match rx.recv().await {
            Ok(e) => {
                if e.data.get("by").and_then(|b| b.as_str()) == Some("engine") {
                    continue;
                }
                let Some(tenant) = e.tenant_id.as_deref() else {
                    continue;
                };
                match e.kind {
                    "agent:status:updated" => {
                        let id = e.data.get("agentId").and_then(|v| v.as_str());
                        let st = e.data.get("status").and_then(|v| v.as_str());
                        if let (Some(id), Some(st)) = (id, st) {
                            agent_status(&inner, tenant, id, st).await;
                        }
                    }
                    "callEnded" => {
                        if let Some(id) = e.data.get("callId").and_then(|v| v.as_str()) {
                            let calls = inner.calls.lock().unwrap_or_else(|e| e.into_inner());
                            if let Some(tx) = calls.get(id) {
                                let _ = tx.send(AgentNotice::Ended);
                            }
                        }
                    }
                    _ => {}
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "engine lagged on the event bus");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn agent_status(inner: &Arc<Inner>, tenant_id: &str, agent_id: &str, status: &str) {
    if inner.stopping.load(Ordering::SeqCst) {
        return;
    }
    let known = inner.agents.lock().slots.contains_key(agent_id);
    if !known {
        let Ok(a) = inner.store.agent(tenant_id, agent_id).await else {
            return;
        };
        let now = Instant::now();
        inner
            .agents
            .lock()
            .slots
            .entry(a.id.clone())
            .or_insert(Slot {
                tenant_id: a.tenant_id.clone(),
                id: a.id.clone(),
                name: a.name.clone(),
                group: a.agent_group_id.clone(),
                endpoint: a.endpoint.clone().or(a.phone.clone()),
                state: AgentState::Offline,
                since: now,
                idle_since: now,
                stream: None,
                hangup: None,
                call: None,
                after_call: None,
                calls_handled: 0,
            });
    }
    let mut dial_leg = false;
    {
        let mut pool = inner.agents.lock();
        let Some(slot) = pool.slots.get_mut(agent_id) else {
            return;
        };
        if slot.tenant_id != tenant_id {
            return;
        }
        let on_call = matches!(
            slot.state,
            AgentState::Reserved(_) | AgentState::Talking(_) | AgentState::WrapUp(_)
        );
        match status {
            "available" => {
                if on_call {
                    slot.after_call = None;
                } else if slot.stream.is_some() {
                    if slot.state != AgentState::Available {
                        slot.state = AgentState::Available;
                        slot.idle_since = Instant::now();
                        slot.since = slot.idle_since;
                        inner.agents.emit_state(slot);
                    }
                } else if slot.state != AgentState::Connecting {
                    slot.state = AgentState::Connecting;
                    slot.since = Instant::now();
                    inner.agents.emit_state(slot);
                    dial_leg = true;
                }
            }
            "break" | "busy" => {
                if on_call {
                    slot.after_call = Some("break");
                } else if slot.state == AgentState::Available {
                    slot.state = AgentState::Break;
                    slot.since = Instant::now();
                    inner.agents.emit_state(slot);
                }
            }
            "offline" => {
                if on_call {
                    slot.after_call = Some("offline");
                } else {
                    if let Some(h) = slot.hangup.take() {
                        let _ = h.send(());
                    }
                    slot.state = AgentState::Offline;
                    slot.since = Instant::now();
                    inner.agents.emit_state(slot);
                }
            }
            _ => {}
        }
    }
    if dial_leg {
        let inner2 = inner.clone();
        let id = agent_id.to_owned();
        let tenant = tenant_id.to_owned();
        let t = tokio::spawn(async move { agent_leg(inner2, tenant, id).await });
        inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(t);
        inner.agents.ready.notify_waiters();
    } else {
        inner.agents.ready.notify_waiters();
    }
}

/// Calls an agent's endpoint and keeps the leg up until it drops or the agent goes offline.
async fn agent_leg(inner: Arc<Inner>, tenant_id: String, agent_id: String) {
    let endpoint = inner
        .agents
        .lock()
        .slots
        .get(&agent_id)
        .and_then(|s| s.endpoint.clone());
    let lost = |reason: &str| {
        let mut pool = inner.agents.lock();
        if let Some(slot) = pool.slots.get_mut(&agent_id) {
            slot.stream = None;
            slot.hangup = None;
            if let Some(tx) = slot.call.take() {
                let _ = tx.send(AgentNotice::LegLost);
            }
            slot.state = AgentState::Offline;
            slot.since = Instant::now();
            inner.agents.emit_state(slot);
        }
        drop(pool);
        inner.events.emit(
            &tenant_id,
            Channel::Agents,
            "agent:leg:lost",
            Some(&agent_id),
            json!({"agentId": agent_id, "reason": reason, "by": "engine"}),
        );
    };
    // A softphone login wins: the agent is called where the phone registered.
    let softphone = inner
        .store
        .agent_sip_username(&tenant_id, &agent_id)
        .await
        .ok()
        .flatten();
    let endpoint = match softphone {
        Some(user) => match inner.endpoint.lookup_binding(&user) {
            Some(contact) => Some(contact),
            None => {
                lost(&format!(
                    "the agent's softphone ({user}) is not registered with the engine"
                ));
                return;
            }
        },
        None => endpoint,
    };
    let Some(endpoint) = endpoint else {
        lost("the agent has no audio endpoint (set `endpoint` to a SIP URI or a number, or give the agent a softphone login)");
        return;
    };
    let (target, proxy, auth) = if endpoint.starts_with("sip:") || endpoint.starts_with("sips:") {
        (endpoint.clone(), None, None)
    } else {
        match inner.trunks.trunks(&tenant_id, &[]).await {
            Ok(t) if !t.is_empty() => {
                let t = &t[0];
                (
                    format!("sip:{}@{}", endpoint, t.domain),
                    Some(t.server.clone()),
                    call::auth_of(t),
                )
            }
            _ => {
                lost("no trunk to reach the agent's number");
                return;
            }
        }
    };
    let stream = match inner.media.open_stream(StreamConfig {
        source: Some(Box::new(Silence)),
        ..StreamConfig::new(switchboard_media::g711::Law::Mu)
    }) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            lost(&format!("no media port: {e}"));
            return;
        }
    };
    let local = LocalMedia::new(
        &inner.cfg.sdp_address,
        stream.local_addr().port(),
        rand_u64(),
    );
    let from = format!("sip:switchboard@{}", inner.endpoint.local_addr());
    let mut cfg = CallConfig::new(&target, &from, call::offer_codecs(local));
    cfg.proxy = proxy;
    cfg.auth = auth;
    let mut handle = match inner.endpoint.call(cfg).await {
        Ok(h) => h,
        Err(e) => {
            lost(&format!("cannot call the agent: {e}"));
            return;
        }
    };
    let (hang_tx, mut hang_rx) = mpsc::unbounded_channel::<()>();
    loop {
        tokio::select! {
            ev = handle.next_event() => match ev {
                Some(CallEvent::Answered { media, .. }) => {
                    call::apply_media(&stream, &media);
                    let mut pool = inner.agents.lock();
                    if let Some(slot) = pool.slots.get_mut(&agent_id) {
                        slot.stream = Some(stream.clone());
                        slot.hangup = Some(hang_tx.clone());
                        if slot.state == AgentState::Connecting {
                            slot.state = AgentState::Available;
                            let now = Instant::now();
                            slot.idle_since = now;
                            slot.since = now;
                            inner.agents.emit_state(slot);
                        }
                    }
                    drop(pool);
                    inner.agents.ready.notify_waiters();
                }
                Some(CallEvent::Ended(cause)) => {
                    lost(&format!("agent leg ended: {}", cause.reason));
                    return;
                }
                Some(_) => {}
                None => {
                    lost("agent leg ended");
                    return;
                }
            },
            _ = hang_rx.recv() => {
                let _ = handle.hangup();
                // Wait for the end (bounded).
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Some(ev) = handle.next_event().await {
                        if matches!(ev, CallEvent::Ended(_)) { break; }
                    }
                }).await;
                let mut pool = inner.agents.lock();
                if let Some(slot) = pool.slots.get_mut(&agent_id) {
                    slot.stream = None;
                    if slot.state != AgentState::Offline {
                        slot.state = AgentState::Offline;
                        slot.since = Instant::now();
                        inner.agents.emit_state(slot);
                    }
                }
                return;
            }
        }
    }
}

pub(crate) fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}
