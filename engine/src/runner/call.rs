//! The driver of one call: SIP events, AMD signals, agent notices and timers in; the
//! [`CallFsm`]'s actions out.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use switchboard_media::amd::{AnsweredBy, Class, Mode, Params};
use switchboard_media::codec::Codec as MediaCodec;
use switchboard_media::g711::Law;
use switchboard_media::runtime::{LoopingClip, Silence, StreamConfig, StreamHandle};
use switchboard_media::session::QualityReport;
use switchboard_sip::dialog::AuthCredentials;
use switchboard_sip::endpoint::{CallConfig, CallEvent, CallHandle};
use switchboard_sip::outcome::{CallOutcome, EndCause};
use switchboard_sip::sdp::{Codec, LocalMedia, Negotiated};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::agents::{AgentNotice, AgentState};
use super::sinks::{LeadSink, MediaSignal};
use super::{acquire_trunk, rand_u64, release_trunk, whisper, CampaignCtx, DialTrunkConfig, Inner};
use crate::campaigns::Campaign;
use crate::dialer::attempts::{CallPatch, EngineWrite};
use crate::dialer::call::{Action, Answerer, CallFsm, CallPlan, Disposition, Input, Phase};
use crate::dialer::retry::{next_step, NextStep};
use crate::events::Channel;
use crate::leads::Lead;

pub(crate) fn auth_of(t: &DialTrunkConfig) -> Option<AuthCredentials> {
    match (&t.username, &t.password) {
        (Some(u), Some(p)) => Some(AuthCredentials {
            username: u.clone(),
            password: p.clone(),
        }),
        _ => None,
    }
}

/// Our offer: PCMU first (what every carrier takes, and no transcoding against G.711
/// agents), then PCMA, opus (111) and telephone-event; the answerer picks.
pub(crate) fn offer_codecs(mut local: LocalMedia) -> LocalMedia {
    local.codecs = vec![
        Codec::pcmu(),
        Codec::pcma(),
        Codec::opus(switchboard_media::codec::DEFAULT_OPUS_PAYLOAD_TYPE),
        Codec::telephone_event(101),
    ];
    local
}

/// Points `stream` at what SDP negotiated: the remote address and the codec (through
/// [`MediaCodec::from_rtpmap`], the one mapping), with its telephone-event payload type.
pub(crate) fn apply_media(stream: &StreamHandle, m: &Negotiated) {
    if let Some(a) = remote_addr(m) {
        let _ = stream.set_remote(a);
    }
    let c = &m.codec;
    if let Some(codec) = MediaCodec::from_rtpmap(&c.name, c.clock_rate, c.payload_type) {
        let te = m.telephone_event.as_ref().map(|t| t.payload_type);
        let _ = stream.set_codec(codec, te);
    }
}

pub(crate) fn remote_addr(m: &Negotiated) -> Option<SocketAddr> {
    let ip = m.remote_address.parse().ok()?;
    if m.remote_port == 0 {
        return None;
    }
    Some(SocketAddr::new(ip, m.remote_port))
}

fn disposition_of(cause: &EndCause) -> Disposition {
    match cause.outcome {
        CallOutcome::Busy => Disposition::Busy,
        CallOutcome::NoAnswer | CallOutcome::Cancelled => Disposition::NoAnswer,
        CallOutcome::InvalidNumber => Disposition::InvalidNumber,
        CallOutcome::Failed => Disposition::Failed,
        CallOutcome::Completed => Disposition::Failed,
    }
}

/// A failure worth trying the next trunk for: 503, or no answer at all from the trunk.
fn failover_worthy(cause: &EndCause) -> bool {
    cause.status == Some(503) || (cause.status.is_none() && cause.reason == "no response")
}

pub(crate) struct CallJob {
    pub inner: Arc<Inner>,
    pub ctx: Arc<CampaignCtx>,
    pub campaign: Campaign,
    pub lead: Lead,
    pub call_id: String,
    pub trunks: Vec<DialTrunkConfig>,
    pub notices_tx: mpsc::UnboundedSender<AgentNotice>,
    pub notices: mpsc::UnboundedReceiver<AgentNotice>,
    pub started_at: chrono::DateTime<Utc>,
    /// The call's clock (the machine's `now` is measured from it).
    pub call_clock: Instant,
    /// Preview dialing: the agent chosen before the dial.
    pub preassigned: Option<super::agents::Reserved>,
    /// The attempt's result was booked (once per call).
    pub booked: AtomicBool,
}

struct Live {
    stream: StreamHandle,
    sip: Option<CallHandle>,
    trunk: Option<usize>,
    provisional: bool,
    agent: Option<(String, Arc<StreamHandle>)>,
    seeking: bool,
    prompt_until: Option<Instant>,
    quality: Option<QualityReport>,
    amd_active: Arc<AtomicBool>,
    in_flight: bool,
    recording: Option<super::recording::Active>,
    sig_tx: mpsc::UnboundedSender<MediaSignal>,
    /// The row's end was written (at the lead's hang-up, before the wrap-up).
    ended: bool,
    /// The lead's name being synthesized for the whisper (campaigns with `whisper: name`).
    whisper_name: Option<tokio::task::JoinHandle<Option<Arc<switchboard_media::runtime::Clip>>>>,
}

impl CallJob {
    fn emit(&self, kind: &'static str, agent: Option<&str>, mut data: Value) {
        if let Value::Object(m) = &mut data {
            m.insert("callId".into(), json!(self.call_id));
            m.insert("id".into(), json!(self.call_id));
            m.insert("campaignId".into(), json!(self.ctx.id));
            m.insert("leadId".into(), json!(self.lead.id));
            m.insert("phoneNumber".into(), json!(self.lead.phone_normalized));
            m.insert("by".into(), json!("engine"));
        }
        self.inner
            .events
            .emit(&self.ctx.tenant_id, Channel::Calls, kind, agent, data);
    }

    fn write(&self, patch: CallPatch) {
        self.inner.writer.push(EngineWrite::Call {
            tenant_id: self.ctx.tenant_id.clone(),
            call_id: self.call_id.clone(),
            patch,
        });
    }

    fn place(&self, live: &mut Live, from_trunk: usize) -> Option<usize> {
        let i = acquire_trunk(&self.inner, &self.trunks, from_trunk)?;
        live.trunk = Some(i);
        Some(i)
    }

    pub(crate) async fn run(mut self) {
        let started = self.call_clock;
        let c = &self.campaign;
        let plan = CallPlan {
            timers: self.inner.cfg.timers,
            amd: c.amd_enabled,
            voicemail: self.ctx.voicemail.is_some(),
            unknown_as_human: self.inner.cfg.unknown_as_human,
        };
        let (sig_tx, mut sig_rx) = mpsc::unbounded_channel::<MediaSignal>();
        let amd_active = Arc::new(AtomicBool::new(false));
        let mode = if plan.voicemail {
            Mode::DetectMessageEnd
        } else {
            Mode::Enable
        };
        let sink = LeadSink::new(
            c.amd_enabled.then(|| (Params::default(), mode)),
            amd_active.clone(),
            sig_tx.clone(),
        );
        let stream = match self.inner.media.open_stream(StreamConfig {
            source: Some(Box::new(Silence)),
            sink: Some(Box::new(sink)),
            colocate_with: self.colocation(),
            ..StreamConfig::new(Law::Mu)
        }) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "no media port for a call");
                self.ctx.in_flight.fetch_sub(1, Ordering::SeqCst);
                self.finish_without_call(Disposition::Failed, &format!("media: {e}"));
                return;
            }
        };
        let mut fsm = CallFsm::new(plan, Duration::ZERO);
        let mut live = Live {
            stream,
            sip: None,
            trunk: None,
            provisional: false,
            agent: None,
            seeking: false,
            prompt_until: None,
            quality: None,
            amd_active,
            in_flight: true,
            recording: None,
            sig_tx: sig_tx.clone(),
            ended: false,
            whisper_name: None,
        };
        // The spoken name is synthesized while the call rings, ready by the verdict.
        if whisper::Kind::of(&self.campaign.whisper) == whisper::Kind::Name {
            live.whisper_name = whisper::name_text(
                self.lead.first_name.as_deref(),
                self.lead.last_name.as_deref(),
            )
            .map(whisper::synthesize);
        }
        let mut next_trunk = 0;
        // An INVITE is due: at the start, and again only on a trunk failover.
        let mut invite_due = true;
        loop {
            // (Re)place the INVITE on the next trunk with room.
            if invite_due {
                invite_due = false;
                let Some(i) = self.place(&mut live, next_trunk) else {
                    self.write(CallPatch {
                        outcome: Some("no trunk with room".into()),
                        ..Default::default()
                    });
                    let _ = fsm.handle(Input::Failed(Disposition::Failed), started.elapsed());
                    self.on_finished(Disposition::Failed, &fsm);
                    break;
                };
                next_trunk = i + 1;
                match self.invite(&live, i).await {
                    Ok(h) => live.sip = Some(h),
                    Err(e) => {
                        release_trunk(&self.inner, &self.trunks[i].id);
                        live.trunk = None;
                        if next_trunk < self.trunks.len() {
                            invite_due = true;
                            continue;
                        }
                        self.write(CallPatch {
                            outcome: Some(e),
                            ..Default::default()
                        });
                        let _ = fsm.handle(Input::Failed(Disposition::Failed), started.elapsed());
                        self.on_finished(Disposition::Failed, &fsm);
                        break;
                    }
                }
            }
            let deadline = [fsm.deadline().map(|d| started + d), live.prompt_until]
                .into_iter()
                .flatten()
                .min();
            let seeking = live.seeking;
            let sip = live.sip.as_mut();
            let actions = tokio::select! {
                ev = async { match sip { Some(h) => h.next_event().await, None => std::future::pending().await } } => {
                    let now = started.elapsed();
                    match ev {
                        Some(CallEvent::Trying) => None,
                        Some(CallEvent::Ringing { .. }) => { live.provisional = true; Some(fsm.handle(Input::Ringing, now)) }
                        Some(CallEvent::EarlyMedia(m)) => {
                            live.provisional = true;
                            apply_media(&live.stream, &m);
                            Some(fsm.handle(Input::Ringing, now))
                        }
                        Some(CallEvent::Answered { media, .. }) => {
                            apply_media(&live.stream, &media);
                            live.amd_active.store(true, Ordering::Relaxed);
                            Some(fsm.handle(Input::Answered, now))
                        }
                        Some(CallEvent::Ended(cause)) => {
                            live.sip = None;
                            if let Some(i) = live.trunk.take() { release_trunk(&self.inner, &self.trunks[i].id); }
                            if fsm.answered_at().is_none() && !live.provisional && failover_worthy(&cause)
                                && next_trunk < self.trunks.len() && fsm.phase() == Phase::Dialing {
                                tracing::info!(call = %self.call_id, trunk = %self.trunks[next_trunk - 1].name, reason = %cause.reason, "trunk failover");
                                invite_due = true;
                                continue;
                            }
                            let d = disposition_of(&cause);
                            self.write(CallPatch { outcome: Some(format!("{}{}", cause.reason, cause.status.map(|s| format!(" ({s})")).unwrap_or_default())), ..Default::default() });
                            let a = if fsm.answered_at().is_none() {
                                fsm.handle(Input::Failed(d), now)
                            } else if cause.by_remote {
                                fsm.handle(Input::RemoteHangup, now)
                            } else {
                                fsm.on_ended(d)
                            };
                            let mut a = a;
                            if fsm.phase() != Phase::Done && fsm.phase() != Phase::WrapUp {
                                a = fsm.on_ended(d);
                            }
                            Some(a)
                        }
                        None => {
                            live.sip = None;
                            Some(fsm.on_ended(Disposition::Failed))
                        }
                    }
                }
                sig = sig_rx.recv() => {
                    let now = started.elapsed();
                    match sig {
                        Some(MediaSignal::MachineEarly) => {
                            self.inner.stats.machine.fetch_add(1, Ordering::Relaxed);
                            self.amd_event(AnsweredBy::MachineStart);
                            Some(fsm.handle(Input::Verdict(Answerer::Machine), now))
                        }
                        Some(MediaSignal::Verdict(v)) => {
                            let who = match v.answered_by.class() {
                                Class::Human => Answerer::Human,
                                Class::Machine | Class::Fax => Answerer::Machine,
                                Class::Unknown => Answerer::Unknown,
                            };
                            if fsm.phase() == Phase::Voicemail {
                                Some(fsm.handle(Input::MessageEnd, now))
                            } else {
                                match who {
                                    Answerer::Human => self.inner.stats.human.fetch_add(1, Ordering::Relaxed),
                                    Answerer::Machine => self.inner.stats.machine.fetch_add(1, Ordering::Relaxed),
                                    Answerer::Unknown => self.inner.stats.unknown.fetch_add(1, Ordering::Relaxed),
                                };
                                self.amd_event(v.answered_by);
                                let mut a = fsm.handle(Input::Verdict(who), now);
                                if who == Answerer::Machine && matches!(v.answered_by, AnsweredBy::MachineEndBeep | AnsweredBy::MachineEndSilence | AnsweredBy::MachineEndOther) && fsm.phase() == Phase::Voicemail {
                                    a = fsm.handle(Input::MessageEnd, now);
                                }
                                Some(a)
                            }
                        }
                        Some(MediaSignal::Dtmf(key)) => {
                            if key == OPT_OUT_KEY && fsm.phase() == Phase::Abandoning {
                                self.opt_out();
                            }
                            None
                        }
                        // Only figures about audio actually received after the answer.
                        Some(MediaSignal::Quality(q)) if fsm.answered_at().is_none() || q.remote_ssrc == 0 || q.interval.received_interval == 0 => None,
                        Some(MediaSignal::Quality(q)) => {
                            live.quality = Some(q);
                            if let Some(s) = live.quality.as_ref() {
                                self.emit("callQualityUpdate", live.agent.as_ref().map(|a| a.0.as_str()), json!({"quality": quality_json(s)}));
                            }
                            None
                        }
                        None => None,
                    }
                }
                n = self.notices.recv() => {
                    let now = started.elapsed();
                    match n {
                        Some(AgentNotice::LegLost) => {
                            live.agent = None;
                            Some(fsm.handle(Input::AgentLost, now))
                        }
                        Some(AgentNotice::Ended) => {
                            if self.inner.stopping.load(Ordering::SeqCst) && fsm.answered_at().is_none() {
                                // Shutdown before the answer: cancel.
                                if let Some(h) = &live.sip { let _ = h.hangup(); }
                                None
                            } else if self.inner.stopping.load(Ordering::SeqCst) && !matches!(fsm.phase(), Phase::Talking | Phase::WrapUp) {
                                if let Some(h) = &live.sip { let _ = h.hangup(); }
                                None
                            } else {
                                Some(fsm.handle(if fsm.phase() == Phase::WrapUp { Input::WrapUpDone } else { Input::AgentEnded }, now))
                            }
                        }
                        None => None,
                    }
                }
                _ = self.inner.agents.ready.notified(), if seeking => {
                    self.try_bridge(&mut live, &mut fsm, started).await
                }
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                    let now = started.elapsed();
                    if live.prompt_until.is_some_and(|p| p <= Instant::now()) {
                        live.prompt_until = None;
                        Some(fsm.handle(Input::PromptDone, now))
                    } else {
                        Some(fsm.on_timeout(now))
                    }
                }
            };
            if let Some(actions) = actions {
                let mut follow = Some(actions);
                while let Some(actions) = follow.take() {
                    for a in actions.iter() {
                        if let Some(more) = self.act(a, &mut live, &mut fsm, started).await {
                            follow = Some(more);
                        }
                    }
                }
            }
            if fsm.phase() == Phase::Done && live.sip.is_none() {
                break;
            }
            if fsm.phase() == Phase::Done {
                // Wait (bounded) for the SIP side to finish the BYE / CANCEL.
                if let Some(mut h) = live.sip.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(3), async {
                        while let Some(ev) = h.next_event().await {
                            if matches!(ev, CallEvent::Ended(_)) {
                                break;
                            }
                        }
                    })
                    .await;
                }
                if let Some(i) = live.trunk.take() {
                    release_trunk(&self.inner, &self.trunks[i].id);
                }
                break;
            }
        }
        if let Some(i) = live.trunk.take() {
            release_trunk(&self.inner, &self.trunks[i].id);
        }
        self.left_flight(&mut live);
        self.close(&mut live, &fsm).await;
    }

    /// Streams of a call must share the media loop of the agent they are bridged to: put the
    /// lead's stream on the loop of an available agent when there is one.
    fn colocation(&self) -> Option<switchboard_media::runtime::StreamId> {
        let pool = self.inner.agents.lock();
        pool.slots
            .values()
            .filter(|s| s.tenant_id == self.ctx.tenant_id && s.state == AgentState::Available)
            .filter_map(|s| s.stream.as_ref().map(|st| st.id()))
            .next()
    }

    fn left_flight(&self, live: &mut Live) {
        if live.in_flight {
            live.in_flight = false;
            self.ctx
                .in_flight
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    async fn invite(&self, live: &Live, i: usize) -> Result<CallHandle, String> {
        let t = &self.trunks[i];
        let local = LocalMedia::new(
            &self.inner.cfg.sdp_address,
            live.stream.local_addr().port(),
            rand_u64(),
        );
        let caller = if self.campaign.caller_id.is_empty() {
            "switchboard".to_owned()
        } else {
            self.campaign.caller_id.clone()
        };
        let mut cfg = CallConfig::new(
            &format!("sip:{}@{}", self.lead.phone_normalized, t.domain),
            &format!("sip:{}@{}", caller, t.domain),
            offer_codecs(local),
        );
        cfg.proxy = Some(t.server.clone());
        cfg.auth = auth_of(t);
        cfg.transport = t.transport;
        self.inner
            .endpoint
            .call(cfg)
            .await
            .map_err(|e| format!("cannot place the call: {e}"))
    }

    /// The lead pressed the opt-out key during the abandon message: the number joins the
    /// tenant's DNC list and the lead ends as `dnc`.
    fn opt_out(&self) {
        let store = self.inner.store.clone();
        let (tenant, phone) = (
            self.ctx.tenant_id.clone(),
            self.lead.phone_normalized.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = store
                .add_dnc(
                    &tenant,
                    &phone,
                    Some("opted out during the abandon message"),
                    None,
                )
                .await
            {
                tracing::warn!(error = %e, "opt-out not recorded");
            }
        });
        self.inner.writer.push(EngineWrite::LeadDnc {
            tenant_id: self.ctx.tenant_id.clone(),
            lead_id: self.lead.id.clone(),
        });
        self.write(CallPatch {
            outcome: Some("opted out (DNC)".into()),
            ..Default::default()
        });
        self.emit("dncOptOut", None, json!({}));
    }

    fn amd_event(&self, by: AnsweredBy) {
        self.emit(
            "amdResult",
            None,
            json!({"answeredBy": by.as_str(), "class": by.class().as_str()}),
        );
        self.write(CallPatch {
            answered_by: Some(by.as_str().to_owned()),
            ..Default::default()
        });
    }

    async fn try_bridge(
        &mut self,
        live: &mut Live,
        fsm: &mut CallFsm,
        started: Instant,
    ) -> Option<crate::dialer::call::Actions> {
        if !live.seeking || live.agent.is_some() {
            return None;
        }
        let reserved = match self.preassigned.take() {
            Some(r) => r,
            None => self.inner.agents.reserve(
                &self.ctx.tenant_id,
                self.campaign.agent_group_id.as_deref(),
                &self.call_id,
                self.notices_tx.clone(),
            )?,
        };
        self.whisper(live, fsm, started, &reserved.stream).await;
        match self
            .inner
            .media
            .bridge(&live.stream, &reserved.stream)
            .await
        {
            Ok(()) => {
                live.seeking = false;
                // What the agent's leg sends once the bridge is undone.
                let _ = reserved.stream.set_source(Some(Box::new(Silence)));
                let now = started.elapsed();
                if let Some(v) = fsm.verdict_at() {
                    self.inner.stats.bridge_latency(now.saturating_sub(v));
                }
                self.inner.stats.bridged.fetch_add(1, Ordering::Relaxed);
                self.inner
                    .agents
                    .set_state(&reserved.id, AgentState::Talking(self.call_id.clone()));
                live.agent = Some((reserved.id.clone(), reserved.stream.clone()));
                self.write(CallPatch {
                    agent_id: Some(reserved.id.clone()),
                    ..Default::default()
                });
                let l = &self.lead;
                self.inner.events.emit(
                    &self.ctx.tenant_id,
                    Channel::Agents,
                    "incoming:call",
                    Some(&reserved.id),
                    json!({"callId": self.call_id, "leadId": l.id, "first_name": l.first_name, "last_name": l.last_name,
                           "phone": l.phone_normalized, "notes": l.notes, "campaign": {"id": self.campaign.id, "name": self.campaign.name},
                           "custom_fields": l.custom_fields.0, "by": "engine"}),
                );
                self.emit(
                    "agentConnected",
                    Some(&reserved.id),
                    json!({"agentId": reserved.id, "status": "in-progress"}),
                );
                Some(fsm.handle(Input::AgentBridged, now))
            }
            Err(e) => {
                tracing::warn!(call = %self.call_id, error = %e, "bridge failed; agent released");
                self.inner.agents.release(&reserved.id, &self.call_id);
                None
            }
        }
    }

    /// Plays the campaign's whisper to the agent's leg alone, within the budget after the
    /// verdict (see [`whisper`]); returns when it is time to bridge.
    async fn whisper(
        &self,
        live: &mut Live,
        fsm: &CallFsm,
        started: Instant,
        agent: &StreamHandle,
    ) {
        let kind = whisper::Kind::of(&self.campaign.whisper);
        if kind == whisper::Kind::Off {
            return;
        }
        let verdict = fsm.verdict_at().unwrap_or_default();
        let mut clip = None;
        if kind == whisper::Kind::Name {
            if let Some(mut h) = live.whisper_name.take() {
                // Not ready yet (a verdict at the answer): wait a little, within the budget.
                match tokio::time::timeout(whisper::SYNTH_GRACE, &mut h).await {
                    Ok(r) => clip = r.ok().flatten(),
                    Err(_) => h.abort(),
                }
            }
        }
        let since_verdict = started.elapsed().saturating_sub(verdict);
        let spoken = clip.is_some();
        let clip = clip.unwrap_or_else(whisper::zip_tone);
        let Some(play) = whisper::play_for(since_verdict, clip_len(clip.frames())) else {
            return;
        };
        if agent
            .set_source(Some(Box::new(LoopingClip::times(clip, 1))))
            .is_err()
        {
            return;
        }
        tracing::debug!(call = %self.call_id, spoken, ms = play.as_millis() as u64, "whisper to the agent");
        tokio::time::sleep(play).await;
    }

    /// Carries out one action; may return the machine's follow-up actions.
    async fn act(
        &mut self,
        a: Action,
        live: &mut Live,
        fsm: &mut CallFsm,
        started: Instant,
    ) -> Option<crate::dialer::call::Actions> {
        match a {
            Action::StartAmd => {
                live.amd_active.store(true, Ordering::Relaxed);
                None
            }
            Action::SeekAgent => {
                live.seeking = true;
                let since_dial = fsm.verdict_at().unwrap_or_default().as_secs_f64();
                self.ctx
                    .pacer
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .on_live(since_dial);
                self.try_bridge(live, fsm, started).await
            }
            Action::StopSeeking => {
                live.seeking = false;
                None
            }
            Action::PlayAbandon => {
                let clip = self.inner.cfg.abandon_prompt.clone();
                live.prompt_until = Some(Instant::now() + clip_len(clip.frames()));
                let _ = live
                    .stream
                    .set_source(Some(Box::new(LoopingClip::times(clip, 1))));
                None
            }
            Action::PlayVoicemail => {
                if let Some(clip) = self.ctx.voicemail.clone() {
                    live.prompt_until = Some(Instant::now() + clip_len(clip.frames()));
                    let _ = live
                        .stream
                        .set_source(Some(Box::new(LoopingClip::times(clip, 1))));
                } else {
                    live.prompt_until = Some(Instant::now());
                }
                None
            }
            Action::StartRecording => {
                if self.campaign.record_calls {
                    if let Some((_, agent_stream)) = &live.agent {
                        live.recording = super::recording::start(
                            &self.inner,
                            &self.ctx.tenant_id,
                            &self.call_id,
                            &live.stream,
                            agent_stream,
                            live.sig_tx.clone(),
                        );
                        if live.recording.is_some() {
                            self.inner.events.emit(
                                &self.ctx.tenant_id,
                                Channel::Recordings,
                                "recordingStarted",
                                live.agent.as_ref().map(|a| a.0.as_str()),
                                json!({"callId": self.call_id, "by": "engine"}),
                            );
                        }
                    }
                }
                None
            }
            Action::Cancel | Action::HangupLead => {
                if let Some(h) = &live.sip {
                    let _ = h.hangup();
                }
                None
            }
            Action::AgentToWrapUp => {
                let _ = self.inner.media.unbridge(&live.stream);
                self.end_now(live, fsm).await;
                if let Some((id, stream)) = &live.agent {
                    let _ = stream.set_source(Some(Box::new(Silence)));
                    self.inner
                        .agents
                        .set_state(id, AgentState::WrapUp(self.call_id.clone()));
                    self.inner.events.emit(
                        &self.ctx.tenant_id,
                        Channel::Agents,
                        "call:ended",
                        Some(id),
                        json!({"callId": self.call_id, "by": "engine"}),
                    );
                }
                None
            }
            Action::ReleaseAgent => {
                let _ = self.inner.media.unbridge(&live.stream);
                if let Some((id, stream)) = live.agent.take() {
                    let _ = stream.set_source(Some(Box::new(Silence)));
                    let _ = stream.set_sink(None);
                    self.inner.agents.release(&id, &self.call_id);
                }
                None
            }
            Action::Phase(p) => {
                // The call stops counting as "may need an agent" for the pacer once it has one,
                // or is a machine, abandoned or over (not at the answer: AMD is still deciding).
                if matches!(
                    p,
                    Phase::Talking
                        | Phase::Voicemail
                        | Phase::Abandoning
                        | Phase::WrapUp
                        | Phase::Done
                ) {
                    self.left_flight(live);
                }
                self.on_phase(p, fsm);
                None
            }
            Action::Finished(d) => {
                self.on_finished(d, fsm);
                None
            }
        }
    }

    fn on_phase(&self, p: Phase, fsm: &CallFsm) {
        let status = p.call_status();
        let mut patch = CallPatch {
            status: Some(status),
            ..Default::default()
        };
        // The answer: Screening with AMD, straight to Connecting without.
        let answered =
            p == Phase::Screening || (p == Phase::Connecting && !self.campaign.amd_enabled);
        if answered {
            patch.answer_time = Some(crate::store::now());
        }
        if matches!(p, Phase::WrapUp | Phase::Done) {
            // The end is written by `end_row` with everything else.
            return;
        }
        self.write(patch);
        if p == Phase::Ringing {
            self.emit("callRinging", None, json!({"status": status}));
        } else if answered {
            self.emit(
                "callConnected",
                None,
                json!({"status": status, "answerTime": Utc::now()}),
            );
        }
        let _ = fsm;
    }

    fn on_finished(&self, d: Disposition, fsm: &CallFsm) {
        if self.booked.swap(true, Ordering::SeqCst) {
            return;
        }
        let now = Utc::now();
        self.inner.stats.count_disposition(d);
        // Abandon-rate bookkeeping: a live answer (or unknown treated as live).
        let live_answer = matches!(fsm.answerer(), Some(Answerer::Human))
            || (fsm.answerer() == Some(Answerer::Unknown) && self.inner.cfg.unknown_as_human);
        {
            let mut w = self.ctx.abandon.lock().unwrap_or_else(|e| e.into_inner());
            if d == Disposition::Abandoned {
                w.record_live(now);
                w.record_abandon(now);
            } else if live_answer && d == Disposition::Answered {
                w.record_live(now);
            }
        }
        {
            let mut p = self.ctx.pacer.lock().unwrap_or_else(|e| e.into_inner());
            if d == Disposition::Abandoned {
                p.on_abandon();
            }
            if !live_answer {
                p.on_not_live();
            }
        }
        let attempts = self.lead.call_attempts + 1;
        let step = match next_step(
            d.attempt_result(),
            attempts,
            &self.campaign.retry_policy,
            now,
        ) {
            // A number that does not exist is not retried, nor put on the DNC list.
            _ if d == Disposition::InvalidNumber => NextStep::GiveUp,
            // Retry delays count in the engine's retry unit (a minute, shorter in tests).
            NextStep::RetryAt(t) => {
                let minutes = (t - now).num_seconds() as f64 / 60.0;
                let unit = self.inner.cfg.retry_unit.as_secs_f64();
                NextStep::RetryAt(
                    now + chrono::Duration::milliseconds((minutes * unit * 1000.0) as i64),
                )
            }
            other => other,
        };
        self.inner.writer.push(EngineWrite::LeadDone {
            tenant_id: self.ctx.tenant_id.clone(),
            lead_id: self.lead.id.clone(),
            disposition: d.as_str().to_owned(),
            step,
            at: crate::store::now(),
        });
        if d == Disposition::Answered {
            self.ctx.completed.fetch_add(1, Ordering::SeqCst);
            self.inner.writer.push(EngineWrite::CampaignCompleted {
                tenant_id: self.ctx.tenant_id.clone(),
                campaign_id: self.ctx.id.clone(),
            });
        }
    }

    fn finish_without_call(&self, d: Disposition, reason: &str) {
        let fsm = CallFsm::new(
            CallPlan {
                timers: self.inner.cfg.timers,
                amd: false,
                voicemail: false,
                unknown_as_human: true,
            },
            Duration::ZERO,
        );
        self.write(CallPatch {
            outcome: Some(reason.to_owned()),
            ..Default::default()
        });
        self.on_finished(d, &fsm);
        self.end_row(d, None, None, None, None);
        self.ctx
            .active
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.inner
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.call_id);
        self.inner.stats.calls_ended.fetch_add(1, Ordering::Relaxed);
    }

    fn end_row(
        &self,
        d: Disposition,
        fsm: Option<&CallFsm>,
        quality: Option<&CallQuality>,
        agent_quality: Option<&CallQuality>,
        rec: Option<super::recording::Finished>,
    ) {
        let now = crate::store::now();
        let start = self.started_at;
        let duration = (now - start).num_seconds().max(0);
        let talk = fsm
            .and_then(|f| f.bridged_at())
            .map(|b| (self.call_clock.elapsed().saturating_sub(b)).as_secs() as i64);
        let mut q = quality.map(CallQuality::json);
        if let (Some(Value::Object(m)), Some(a)) = (q.as_mut(), agent_quality) {
            m.insert("agent_leg".into(), a.json());
        }
        if let Some(m) = quality.map(|q| q.mos) {
            self.inner.stats.mos_sample(m);
        }
        let status = d.call_status();
        let (rp, rd, rs) = match &rec {
            Some(r) => (Some(r.path.clone()), Some(r.duration_secs), Some(r.bytes)),
            None => (None, None, None),
        };
        self.write(CallPatch {
            status: Some(status),
            end_time: Some(now),
            disposition: Some(d.as_str().to_owned()),
            duration: Some(duration),
            talk_time: talk,
            quality: q.clone(),
            recording_path: rp,
            recording_duration: rd,
            recording_size: rs,
            ..Default::default()
        });
        self.emit(
            "callEnded",
            None,
            json!({"status": status, "disposition": d.as_str(), "duration": duration, "quality": q}),
        );
        let rate = self
            .ctx
            .abandon
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rate(Utc::now());
        self.inner.events.emit(
            &self.ctx.tenant_id,
            Channel::Calls,
            "campaignCounters",
            None,
            json!({"campaignId": self.ctx.id, "calls_made": self.ctx.made.load(Ordering::SeqCst),
                   "calls_completed": self.ctx.completed.load(Ordering::SeqCst),
                   "active": self.ctx.active.load(Ordering::SeqCst), "abandon_rate": rate, "by": "engine"}),
        );
        if rec.is_some() {
            self.inner.stats.recordings.fetch_add(1, Ordering::Relaxed);
            self.inner.events.emit(
                &self.ctx.tenant_id,
                Channel::Recordings,
                "recordingStopped",
                None,
                json!({"callId": self.call_id, "duration": rd, "format": "wav", "by": "engine"}),
            );
        }
    }

    /// The lead's side is over: recording finalized, the row's end written, `callEnded`.
    async fn end_now(&self, live: &mut Live, fsm: &CallFsm) {
        if live.ended {
            return;
        }
        live.ended = true;
        let rec = match live.recording.take() {
            Some(r) => r.stop().await,
            None => None,
        };
        let d = fsm.disposition().unwrap_or(Disposition::Failed);
        // Quality per leg: the lead's last 5 s report (or the stream's own, for a short call)
        // and the agent leg's.
        let lead_q = if fsm.answered_at().is_some() {
            live.stream.stats().await.and_then(|r| summary_quality(&r))
        } else {
            None
        };
        let agent_q = match &live.agent {
            Some((_, st)) => st.stats().await.and_then(|r| summary_quality(&r)),
            None => None,
        };
        self.end_row(d, Some(fsm), lead_q.as_ref(), agent_q.as_ref(), rec);
    }

    async fn close(&mut self, live: &mut Live, fsm: &CallFsm) {
        if let Some(b) = fsm.bridged_at() {
            let handled = self.call_clock.elapsed().saturating_sub(b).as_secs_f64();
            self.ctx
                .pacer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .on_handled(handled);
        }
        if fsm.disposition().is_none() {
            self.on_finished(Disposition::Failed, fsm);
        }
        self.end_now(live, fsm).await;
        if let Some((id, stream)) = live.agent.take() {
            let _ = self.inner.media.unbridge(&live.stream);
            let _ = stream.set_sink(None);
            let _ = stream.set_source(Some(Box::new(Silence)));
            self.inner.agents.release(&id, &self.call_id);
        }
        self.ctx
            .active
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.inner
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.call_id);
        self.inner.stats.calls_ended.fetch_add(1, Ordering::Relaxed);
    }
}

/// A leg's quality over the whole call (what the call row keeps).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallQuality {
    jitter_ms: f64,
    loss_percent: f64,
    rtt: Option<Duration>,
    mos: f64,
    codec: MediaCodec,
}

impl CallQuality {
    fn json(&self) -> Value {
        json!({
            "jitter": (self.jitter_ms * 100.0).round() / 100.0,
            "packet_loss": (self.loss_percent * 100.0).round() / 100.0,
            "mos_score": (self.mos * 100.0).round() / 100.0,
            "rtt": self.rtt.map(|r| r.as_millis() as u64),
            "codec": self.codec.name(),
        })
    }
}

/// Whole-call figures from a stream's cumulative statistics: mean jitter (Wireshark's
/// formula), cumulative loss, the last RTT, and the E-model MOS (the codec's values, one-way
/// delay = RTT/2 + one 20 ms frame + twice the jitter — the same approximation as the 5 s
/// reports). `None` when nothing was received.
fn summary_quality(r: &switchboard_media::runtime::StreamReport) -> Option<CallQuality> {
    if r.stats.received == 0 {
        return None;
    }
    let jitter_ms = r.stats.mean_jitter_ms;
    let loss_percent = r.stats.loss_percent();
    let one_way = r.rtt.map_or(0.0, |t| t.as_secs_f64() * 500.0) + 20.0 + 2.0 * jitter_ms;
    let est = switchboard_media::mos::estimate(switchboard_media::mos::QualityInput {
        codec: r.codec.impairment(),
        one_way_delay_ms: one_way,
        loss_percent,
        burst_r: 1.0,
    });
    Some(CallQuality {
        jitter_ms,
        loss_percent,
        rtt: r.rtt,
        mos: est.mos,
        codec: r.codec,
    })
}

/// The key the abandon message offers for opting out.
const OPT_OUT_KEY: char = '9';

fn clip_len(frames: usize) -> Duration {
    Duration::from_millis(frames as u64 * 20 + 200)
}

pub(crate) fn quality_json(q: &QualityReport) -> Value {
    CallQuality {
        jitter_ms: q.jitter_ms,
        loss_percent: q.loss_percent,
        rtt: q.rtt,
        mos: q.mos,
        codec: q.codec,
    }
    .json()
}
