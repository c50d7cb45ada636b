//! Call records: one row per call, served in the shapes of the dialer spec (`call_sid`,
//! `from_number`, `start_time`...), the call-log spec (`twilio_call_sid`, `caller_phone`,
//! `started_at`...) and the voice-calls spec (see `voice`). Every change is audited with the
//! fields before and after.
//!
//! Numbers: `caller_phone` is the customer's number and `phone_number` the business's; for
//! inbound calls they are `from_number` / `to_number`, for outbound the other way round.

mod filter;
mod live;
mod recording;
mod stats;
pub mod voice;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::types::Json;

pub use filter::{CallFilter, Page};
pub use live::{LiveCalls, CONNECTED, CONNECTING};
pub use recording::{RecordingFilter, RecordingMeta};
pub use stats::{Analytics, CallStats, DispositionCount, StatsSummary};

use crate::store::{impl_from_row, new_id, now, on_pool, Store};
use crate::validate::Issues;
use crate::{phone, Error, Result};

/// Call statuses accepted from clients (the union of the specs' and Twilio's).
pub const STATUSES: [&str; 12] = [
    "queued",
    "initiated",
    "ringing",
    "in-progress",
    "answered",
    "connected",
    "completed",
    "busy",
    "failed",
    "no-answer",
    "canceled",
    "cancelled",
];
/// Statuses that mean the call is over.
pub const FINAL_STATUSES: [&str; 6] = [
    "completed",
    "busy",
    "failed",
    "no-answer",
    "canceled",
    "cancelled",
];

/// The stored row.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRow {
    pub id: String,
    pub tenant_id: String,
    pub campaign_id: Option<String>,
    pub lead_id: Option<String>,
    pub agent_id: Option<String>,
    pub customer_id: Option<String>,
    pub call_sid: Option<String>,
    pub account_sid: Option<String>,
    pub conference_sid: Option<String>,
    pub external_call_id: Option<String>,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub caller_name: Option<String>,
    pub direction: String,
    pub status: String,
    pub answered_by: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub answer_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub duration: Option<i64>,
    pub talk_time: Option<i64>,
    pub disposition: Option<String>,
    pub outcome: Option<String>,
    pub recording_url: Option<String>,
    pub recording_sid: Option<String>,
    pub recording_duration: Option<i64>,
    pub recording_path: Option<String>,
    pub recording_format: Option<String>,
    pub recording_channels: Option<i64>,
    pub recording_sample_rate: Option<i64>,
    pub recording_bit_rate: Option<i64>,
    pub recording_size: Option<i64>,
    pub recording_uploaded_at: Option<DateTime<Utc>>,
    pub cost: Option<f64>,
    pub quality: Option<Json<Value>>,
    pub transcript: Option<Json<Value>>,
    pub transcription_url: Option<String>,
    pub tags: Json<Vec<String>>,
    pub metadata: Json<Map<String, Value>>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}
impl_from_row!(CallRow {
    id,
    tenant_id,
    campaign_id,
    lead_id,
    agent_id,
    customer_id,
    call_sid,
    account_sid,
    conference_sid,
    external_call_id,
    from_number,
    to_number,
    caller_name,
    direction,
    status,
    answered_by,
    start_time,
    answer_time,
    end_time,
    duration,
    talk_time,
    disposition,
    outcome,
    recording_url,
    recording_sid,
    recording_duration,
    recording_path,
    recording_format,
    recording_channels,
    recording_sample_rate,
    recording_bit_rate,
    recording_size,
    recording_uploaded_at,
    cost,
    quality,
    transcript,
    transcription_url,
    tags,
    metadata,
    notes,
    created_at,
    updated_at,
    deleted_at
});

pub(crate) const COLS: &str = "id, tenant_id, campaign_id, lead_id, agent_id, customer_id, call_sid, account_sid, conference_sid, external_call_id, \
    from_number, to_number, caller_name, direction, status, answered_by, start_time, answer_time, end_time, duration, \
    talk_time, disposition, outcome, recording_url, recording_sid, recording_duration, recording_path, recording_format, \
    recording_channels, recording_sample_rate, recording_bit_rate, recording_size, recording_uploaded_at, cost, quality, \
    transcript, transcription_url, tags, metadata, notes, created_at, updated_at, deleted_at";
const NCOLS: usize = 43;

/// A call as served: the dialer spec's and the call-log spec's names side by side.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Call {
    pub id: String,
    pub tenant_id: String,
    /// The call-log spec's name for the tenant.
    pub business_id: String,
    pub campaign_id: Option<String>,
    pub lead_id: Option<String>,
    pub agent_id: Option<String>,
    pub customer_id: Option<String>,
    pub call_sid: Option<String>,
    pub twilio_call_sid: Option<String>,
    pub twilio_account_sid: Option<String>,
    pub conference_sid: Option<String>,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    /// The customer's number.
    pub caller_phone: Option<String>,
    /// The business's number.
    pub phone_number: Option<String>,
    pub caller_name: Option<String>,
    pub direction: String,
    pub status: String,
    pub answered_by: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub answer_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration: Option<i64>,
    pub talk_time: Option<i64>,
    pub disposition: Option<String>,
    pub outcome: Option<String>,
    pub recording_url: Option<String>,
    pub recording_sid: Option<String>,
    pub recording_duration: Option<i64>,
    pub has_recording: bool,
    pub has_transcript: bool,
    pub cost: Option<f64>,
    #[schema(value_type = Option<Object>)]
    pub quality: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub transcript: Option<Value>,
    pub transcription_url: Option<String>,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CallRow {
    /// The customer's number.
    pub fn caller_phone(&self) -> Option<&String> {
        if self.direction == "inbound" {
            self.from_number.as_ref()
        } else {
            self.to_number.as_ref()
        }
    }

    /// The business's number.
    pub fn business_phone(&self) -> Option<&String> {
        if self.direction == "inbound" {
            self.to_number.as_ref()
        } else {
            self.from_number.as_ref()
        }
    }
}

impl From<CallRow> for Call {
    fn from(r: CallRow) -> Self {
        Call {
            business_id: r.tenant_id.clone(),
            caller_phone: r.caller_phone().cloned(),
            phone_number: r.business_phone().cloned(),
            twilio_call_sid: r.call_sid.clone(),
            twilio_account_sid: r.account_sid.clone(),
            started_at: r.start_time,
            ended_at: r.end_time,
            has_recording: r.recording_url.is_some() || r.recording_path.is_some(),
            has_transcript: r.transcript.is_some(),
            id: r.id,
            tenant_id: r.tenant_id,
            campaign_id: r.campaign_id,
            lead_id: r.lead_id,
            agent_id: r.agent_id,
            customer_id: r.customer_id,
            call_sid: r.call_sid,
            conference_sid: r.conference_sid,
            from_number: r.from_number,
            to_number: r.to_number,
            caller_name: r.caller_name,
            direction: r.direction,
            status: r.status,
            answered_by: r.answered_by,
            start_time: r.start_time,
            answer_time: r.answer_time,
            end_time: r.end_time,
            duration: r.duration,
            talk_time: r.talk_time,
            disposition: r.disposition,
            outcome: r.outcome,
            recording_url: r.recording_url,
            recording_sid: r.recording_sid,
            recording_duration: r.recording_duration,
            cost: r.cost,
            quality: r.quality.map(|j| j.0),
            transcript: r.transcript.map(|j| j.0),
            transcription_url: r.transcription_url,
            tags: r.tags.0,
            metadata: r.metadata.0,
            notes: r.notes,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Call quality as clients send it (call-log spec keys; the cold-caller spec's camelCase
/// aliases are accepted).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct QualityInput {
    /// Interarrival jitter, ms.
    pub jitter: Option<f64>,
    /// Packet loss, percent (0..=100).
    #[serde(alias = "packetLoss")]
    pub packet_loss: Option<f64>,
    /// 1..=5.
    #[serde(alias = "mos")]
    pub mos_score: Option<f64>,
    /// Round-trip time, ms.
    pub rtt: Option<f64>,
    /// One-way latency, ms.
    pub latency: Option<f64>,
    pub codec: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub network_info: Option<Value>,
}

/// One transcript segment.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    pub speaker: String,
    /// Seconds from the call's start.
    pub start_time: f64,
    pub end_time: f64,
    pub text: String,
    /// 0..=1.
    pub confidence: Option<f64>,
}

/// A transcript.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Transcript {
    pub segments: Vec<Segment>,
    pub duration: Option<f64>,
    pub language: Option<String>,
    pub provider: Option<String>,
}

/// The call-log spec's metadata: tags and notes get their own columns, the rest is kept.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct MetadataInput {
    pub tags: Option<Vec<String>>,
    pub notes: Option<String>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rest: Map<String, Value>,
}

/// Body of `POST /api/calls` (phone_number, direction, status and started_at required) and
/// of `PUT`/`PATCH /api/calls/{id}` (every field optional; absent fields are kept).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallInput {
    pub customer_id: Option<String>,
    pub caller_phone: Option<String>,
    pub caller_name: Option<String>,
    pub twilio_call_sid: Option<String>,
    pub twilio_account_sid: Option<String>,
    pub conference_sid: Option<String>,
    /// The business's number.
    pub phone_number: Option<String>,
    /// inbound | outbound
    pub direction: Option<String>,
    pub status: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Seconds.
    pub duration: Option<i64>,
    pub talk_time: Option<i64>,
    pub outcome: Option<String>,
    pub disposition: Option<String>,
    /// human | machine_start | machine_end_beep | machine_end_silence | machine_end_other | fax | unknown
    pub answered_by: Option<String>,
    pub cost: Option<f64>,
    pub quality: Option<QualityInput>,
    pub transcript: Option<Transcript>,
    pub metadata: Option<MetadataInput>,
    pub notes: Option<String>,
    pub campaign_id: Option<String>,
    pub lead_id: Option<String>,
    pub agent_id: Option<String>,
}

/// A number of a call record: normalized when the numbering plan knows it; otherwise any
/// syntactically valid E.164 number is kept as given (records log calls that happened, and
/// carriers see numbers newer than any metadata).
pub fn record_number(raw: &str, default_country: &str) -> Result<String, phone::PhoneProblem> {
    match phone::normalize(raw, Some(default_country)) {
        Ok(n) => Ok(n.e164),
        Err(p) => {
            let compact: String = raw
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
                .collect();
            if crate::validate::is_e164(&compact) {
                Ok(compact)
            } else {
                Err(p)
            }
        }
    }
}

const ANSWERED_BY: [&str; 7] = [
    "human",
    "machine_start",
    "machine_end_beep",
    "machine_end_silence",
    "machine_end_other",
    "fax",
    "unknown",
];

/// Checks a transcript: segments ordered by start, end ≥ start ≥ 0, confidence in 0..=1.
pub fn check_transcript(t: &Transcript, issues: &mut Issues) {
    if t.segments.len() > 10_000 {
        issues.add("transcript.segments", "at most 10000 segments");
        return;
    }
    let mut last_start = 0.0_f64;
    for (i, s) in t.segments.iter().enumerate() {
        let f = |k: &str| format!("transcript.segments[{i}].{k}");
        if !s.start_time.is_finite() || s.start_time < 0.0 {
            issues.add(f("start_time"), "must be a number of seconds ≥ 0");
        } else if s.start_time < last_start {
            issues.add(f("start_time"), "segments must be ordered by start_time");
        } else {
            last_start = s.start_time;
        }
        if !s.end_time.is_finite() || s.end_time < s.start_time {
            issues.add(f("end_time"), "must not be before start_time");
        }
        if s.confidence.is_some_and(|c| !(0.0..=1.0).contains(&c)) {
            issues.add(f("confidence"), "must be between 0 and 1");
        }
        if s.text.chars().count() > 10_000 || s.speaker.chars().count() > 100 {
            issues.add(
                f("text"),
                "text at most 10000 and speaker at most 100 characters",
            );
        }
    }
    if t.duration.is_some_and(|d| !d.is_finite() || d < 0.0) {
        issues.add("transcript.duration", "must be ≥ 0");
    }
}

fn check_quality(q: &QualityInput, issues: &mut Issues) {
    let nonneg = |v: Option<f64>| v.is_none_or(|x| x.is_finite() && x >= 0.0);
    if !nonneg(q.jitter) {
        issues.add("quality.jitter", "must be ≥ 0 (ms)");
    }
    if q.packet_loss.is_some_and(|x| !(0.0..=100.0).contains(&x)) {
        issues.add(
            "quality.packet_loss",
            "must be a percentage between 0 and 100",
        );
    }
    if q.mos_score.is_some_and(|x| !(1.0..=5.0).contains(&x)) {
        issues.add("quality.mos_score", "must be between 1 and 5");
    }
    if !nonneg(q.rtt) || !nonneg(q.latency) {
        issues.add("quality.rtt", "rtt and latency must be ≥ 0 (ms)");
    }
}

fn text(field: &str, v: Option<String>, max: usize, issues: &mut Issues) -> Option<String> {
    match v {
        Some(s) if s.chars().count() > max => {
            issues.add(field, format!("must be at most {max} characters"));
            None
        }
        Some(s) => Some(s.trim().to_string()),
        None => None,
    }
}

impl CallRow {
    /// A new outbound call of the tenant in status `initiated`, every optional field empty.
    pub fn blank(tenant_id: &str) -> Self {
        let ts = now();
        CallRow {
            id: new_id(),
            tenant_id: tenant_id.into(),
            campaign_id: None,
            lead_id: None,
            agent_id: None,
            customer_id: None,
            call_sid: None,
            account_sid: None,
            conference_sid: None,
            external_call_id: None,
            from_number: None,
            to_number: None,
            caller_name: None,
            direction: "outbound".into(),
            status: "initiated".into(),
            answered_by: None,
            start_time: None,
            answer_time: None,
            end_time: None,
            duration: None,
            talk_time: None,
            disposition: None,
            outcome: None,
            recording_url: None,
            recording_sid: None,
            recording_duration: None,
            recording_path: None,
            recording_format: None,
            recording_channels: None,
            recording_sample_rate: None,
            recording_bit_rate: None,
            recording_size: None,
            recording_uploaded_at: None,
            cost: None,
            quality: None,
            transcript: None,
            transcription_url: None,
            tags: Json(Vec::new()),
            metadata: Json(Map::new()),
            notes: None,
            created_at: ts,
            updated_at: ts,
            deleted_at: None,
        }
    }

    /// Merges a body into the row and checks the result.
    fn apply(&mut self, c: CallInput, create: bool, default_country: &str) -> Result<()> {
        let mut issues = Issues::new();
        if create {
            for (f, missing) in [
                ("phone_number", c.phone_number.is_none()),
                ("direction", c.direction.is_none()),
                ("status", c.status.is_none()),
                ("started_at", c.started_at.is_none()),
            ] {
                if missing {
                    issues.add(f, "is required");
                }
            }
        }
        if let Some(d) = c.direction {
            if d == "inbound" || d == "outbound" {
                if d != self.direction {
                    std::mem::swap(&mut self.from_number, &mut self.to_number);
                }
                self.direction = d;
            } else {
                issues.add("direction", "must be inbound or outbound");
            }
        }
        if let Some(s) = c.status {
            if STATUSES.contains(&s.as_str()) {
                self.status = s;
            } else {
                issues.add("status", format!("must be one of {}", STATUSES.join(", ")));
            }
        }
        let inbound = self.direction == "inbound";
        let mut number = |field: &str, raw: Option<String>| -> Option<Option<String>> {
            let raw = raw?;
            match record_number(&raw, default_country) {
                Ok(n) => Some(Some(n)),
                Err(p) => {
                    issues.add(field, p.to_string());
                    None
                }
            }
        };
        if let Some(n) = number("caller_phone", c.caller_phone) {
            if inbound {
                self.from_number = n;
            } else {
                self.to_number = n;
            }
        }
        if let Some(n) = number("phone_number", c.phone_number) {
            if inbound {
                self.to_number = n;
            } else {
                self.from_number = n;
            }
        }
        macro_rules! set_text {
            ($field:literal, $src:expr, $dst:expr, $max:expr) => {
                if let Some(v) = text($field, $src, $max, &mut issues) {
                    $dst = Some(v);
                }
            };
        }
        set_text!("customer_id", c.customer_id, self.customer_id, 100);
        set_text!("caller_name", c.caller_name, self.caller_name, 200);
        set_text!("twilio_call_sid", c.twilio_call_sid, self.call_sid, 64);
        set_text!(
            "twilio_account_sid",
            c.twilio_account_sid,
            self.account_sid,
            64
        );
        set_text!("conference_sid", c.conference_sid, self.conference_sid, 64);
        set_text!("outcome", c.outcome, self.outcome, 100);
        set_text!("disposition", c.disposition, self.disposition, 100);
        set_text!("notes", c.notes, self.notes, 10_000);
        if let Some(a) = c.answered_by {
            if ANSWERED_BY.contains(&a.as_str()) {
                self.answered_by = Some(a);
            } else {
                issues.add(
                    "answered_by",
                    format!("must be one of {}", ANSWERED_BY.join(", ")),
                );
            }
        }
        self.start_time = c.started_at.or(self.start_time);
        self.answer_time = c.answered_at.or(self.answer_time);
        self.end_time = c.ended_at.or(self.end_time);
        if let (Some(s), Some(e)) = (self.start_time, self.end_time) {
            if e < s {
                issues.add("ended_at", "must not be before started_at");
            }
        }
        for (field, v, slot) in [
            ("duration", c.duration, &mut self.duration),
            ("talk_time", c.talk_time, &mut self.talk_time),
        ] {
            match v {
                Some(n) if !(0..=30 * 24 * 3600).contains(&n) => {
                    issues.add(field, "must be seconds between 0 and 2592000")
                }
                Some(n) => *slot = Some(n),
                None => {}
            }
        }
        if self.duration.is_none() {
            if let (Some(s), Some(e)) = (self.start_time, self.end_time) {
                self.duration = Some((e - s).num_seconds().max(0));
            }
        }
        if let Some(cost) = c.cost {
            if cost.is_finite() && cost >= 0.0 {
                self.cost = Some(cost);
            } else {
                issues.add("cost", "must be ≥ 0");
            }
        }
        if let Some(q) = c.quality {
            check_quality(&q, &mut issues);
            self.quality = Some(Json(serde_json::to_value(&q)?));
        }
        if let Some(t) = c.transcript {
            check_transcript(&t, &mut issues);
            self.transcript = Some(Json(serde_json::to_value(&t)?));
        }
        if let Some(m) = c.metadata {
            if let Some(tags) = m.tags {
                if tags.len() > 50
                    || tags
                        .iter()
                        .any(|t| t.trim().is_empty() || t.chars().count() > 50 || t.contains(','))
                {
                    issues.add(
                        "metadata.tags",
                        "at most 50 tags of 1 to 50 characters, without commas",
                    );
                } else {
                    self.tags = Json(tags.into_iter().map(|t| t.trim().to_string()).collect());
                }
            }
            if let Some(n) = text("metadata.notes", m.notes, 10_000, &mut issues) {
                self.notes = Some(n);
            }
            for (k, v) in m.rest {
                self.metadata.0.insert(k, v);
            }
        }
        for (field, id) in [
            ("campaign_id", &c.campaign_id),
            ("lead_id", &c.lead_id),
            ("agent_id", &c.agent_id),
        ] {
            if id
                .as_deref()
                .is_some_and(|i| uuid::Uuid::parse_str(i).is_err())
            {
                issues.add(field, "is not an id of this tenant");
            }
        }
        issues.finish()?;
        self.campaign_id = c.campaign_id.or(self.campaign_id.take());
        self.lead_id = c.lead_id.or(self.lead_id.take());
        self.agent_id = c.agent_id.or(self.agent_id.take());
        Ok(())
    }
}

/// The fields that differ between two versions of a call (for the audit trail).
pub fn diff(before: &Call, after: &Call) -> Value {
    let (Ok(Value::Object(b)), Ok(Value::Object(a))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Value::Null;
    };
    let mut changes = Map::new();
    for (k, av) in &a {
        if k == "updated_at" {
            continue;
        }
        let bv = b.get(k).cloned().unwrap_or(Value::Null);
        if &bv != av {
            changes.insert(k.clone(), serde_json::json!({"before": bv, "after": av}));
        }
    }
    Value::Object(changes)
}

pub(crate) fn placeholders() -> String {
    (1..=NCOLS)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    async fn check_call_refs(&self, tenant_id: &str, row: &CallRow) -> Result<()> {
        let mut issues = Issues::new();
        if let Some(c) = &row.campaign_id {
            if self.campaign(tenant_id, c).await.is_err() {
                issues.add("campaign_id", "no such campaign in this tenant");
            }
        }
        if let Some(l) = &row.lead_id {
            if self.lead(tenant_id, l).await.is_err() {
                issues.add("lead_id", "no such lead in this tenant");
            }
        }
        if let Some(a) = &row.agent_id {
            if self.agent(tenant_id, a).await.is_err() {
                issues.add("agent_id", "no such agent in this tenant");
            }
        }
        issues.finish()
    }

    pub(crate) async fn insert_call(&self, row: &CallRow) -> Result<()> {
        let sql = format!("INSERT INTO calls ({COLS}) VALUES ({})", placeholders());
        on_pool!(self, p => bind_call(sqlx::query(&sql), row).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Inserts many rows in one transaction, 500 per statement (the write-behind path: no
    /// validation, no audit; callers build the rows).
    pub async fn insert_calls_batch(&self, rows: &[CallRow]) -> Result<u64> {
        let mut n = 0;
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for chunk in rows.chunks(500) {
                let mut qb = sqlx::QueryBuilder::new(format!("INSERT INTO calls ({COLS}) "));
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.id.clone()).push_bind(r.tenant_id.clone()).push_bind(r.campaign_id.clone()).push_bind(r.lead_id.clone())
                        .push_bind(r.agent_id.clone()).push_bind(r.customer_id.clone()).push_bind(r.call_sid.clone()).push_bind(r.account_sid.clone())
                        .push_bind(r.conference_sid.clone()).push_bind(r.external_call_id.clone()).push_bind(r.from_number.clone()).push_bind(r.to_number.clone())
                        .push_bind(r.caller_name.clone()).push_bind(r.direction.clone()).push_bind(r.status.clone()).push_bind(r.answered_by.clone())
                        .push_bind(r.start_time).push_bind(r.answer_time).push_bind(r.end_time).push_bind(r.duration).push_bind(r.talk_time)
                        .push_bind(r.disposition.clone()).push_bind(r.outcome.clone()).push_bind(r.recording_url.clone()).push_bind(r.recording_sid.clone())
                        .push_bind(r.recording_duration).push_bind(r.recording_path.clone()).push_bind(r.recording_format.clone()).push_bind(r.recording_channels)
                        .push_bind(r.recording_sample_rate).push_bind(r.recording_bit_rate).push_bind(r.recording_size).push_bind(r.recording_uploaded_at)
                        .push_bind(r.cost).push_bind(r.quality.clone()).push_bind(r.transcript.clone()).push_bind(r.transcription_url.clone())
                        .push_bind(Json(r.tags.0.clone())).push_bind(Json(r.metadata.0.clone())).push_bind(r.notes.clone()).push_bind(r.created_at)
                        .push_bind(r.updated_at).push_bind(r.deleted_at);
                });
                n += qb.build().execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
        });
        Ok(n)
    }

    pub(crate) async fn save_call(&self, row: &CallRow) -> Result<()> {
        let sets: Vec<String> = COLS
            .split(',')
            .map(str::trim)
            .enumerate()
            .skip(2)
            .map(|(i, c)| format!("{c} = ${}", i + 1))
            .collect();
        let sql = format!(
            "UPDATE calls SET {} WHERE id = $1 AND tenant_id = $2",
            sets.join(", ")
        );
        on_pool!(self, p => bind_call(sqlx::query(&sql), row).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Creates a call from a call-log body.
    pub async fn create_call(
        &self,
        tenant_id: &str,
        input: CallInput,
        default_country: &str,
        user_id: Option<&str>,
    ) -> Result<Call> {
        let mut row = CallRow::blank(tenant_id);
        row.apply(input, true, default_country)?;
        self.check_call_refs(tenant_id, &row).await?;
        self.insert_call(&row).await?;
        let call = Call::from(row);
        self.audit(
            tenant_id,
            user_id,
            "call.create",
            "call",
            Some(&call.id),
            serde_json::json!({"after": call}),
        )
        .await?;
        Ok(call)
    }

    /// The stored row of a live (not deleted) call.
    pub async fn call_row(&self, tenant_id: &str, id: &str) -> Result<CallRow> {
        let sql = format!(
            "SELECT {COLS} FROM calls WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).bind(id).fetch_optional(p).await)?
            .ok_or(Error::NotFound { entity: "call" })
    }

    pub async fn call(&self, tenant_id: &str, id: &str) -> Result<Call> {
        Ok(self.call_row(tenant_id, id).await?.into())
    }

    /// Saves a changed row and audits the difference.
    pub(crate) async fn commit_call_change(
        &self,
        before: CallRow,
        mut after: CallRow,
        user_id: Option<&str>,
        action: &str,
    ) -> Result<Call> {
        after.updated_at = now();
        self.save_call(&after).await?;
        let (b, a) = (Call::from(before), Call::from(after));
        let changes = diff(&b, &a);
        self.audit(
            &a.tenant_id,
            user_id,
            action,
            "call",
            Some(&a.id),
            serde_json::json!({"changes": changes}),
        )
        .await?;
        Ok(a)
    }

    /// Applies a partial body (PUT and PATCH).
    pub async fn update_call(
        &self,
        tenant_id: &str,
        id: &str,
        input: CallInput,
        default_country: &str,
        user_id: Option<&str>,
    ) -> Result<Call> {
        let before = self.call_row(tenant_id, id).await?;
        let mut row = before.clone();
        row.apply(input, false, default_country)?;
        self.check_call_refs(tenant_id, &row).await?;
        self.commit_call_change(before, row, user_id, "call.update")
            .await
    }

    /// Replaces the transcript (and its source URL).
    pub async fn set_transcript(
        &self,
        tenant_id: &str,
        id: &str,
        t: Transcript,
        url: Option<String>,
        user_id: Option<&str>,
    ) -> Result<Call> {
        let mut issues = Issues::new();
        check_transcript(&t, &mut issues);
        if url.as_deref().is_some_and(|u| {
            u.len() > 2048 || !(u.starts_with("https://") || u.starts_with("http://"))
        }) {
            issues.add("transcription_url", "must be an http(s) URL");
        }
        issues.finish()?;
        let before = self.call_row(tenant_id, id).await?;
        let mut row = before.clone();
        row.transcript = Some(Json(serde_json::to_value(&t)?));
        if url.is_some() {
            row.transcription_url = url;
        }
        self.commit_call_change(before, row, user_id, "call.transcript")
            .await
    }

    /// The audit entries of one call, oldest first.
    pub async fn call_audit(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Vec<crate::audit::AuditEntry>> {
        let exists: Option<String> = on_pool!(self, p => sqlx::query_scalar("SELECT id FROM calls WHERE tenant_id = $1 AND id = $2").bind(tenant_id).bind(id).fetch_optional(p).await)?;
        if exists.is_none() {
            return Err(Error::NotFound { entity: "call" });
        }
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT id, tenant_id, user_id, action, entity, entity_id, details, created_at FROM audit_log \
             WHERE tenant_id = $1 AND entity = 'call' AND entity_id = $2 ORDER BY created_at, id LIMIT 1000",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_all(p)
        .await)?)
    }
}

/// Body of `POST /api/calls/start` (the cold-caller spec; ids may be strings or numbers).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartCall {
    #[schema(value_type = Option<String>)]
    pub lead_id: Option<Value>,
    pub phone_number: Option<String>,
    #[schema(value_type = Option<String>)]
    pub agent_id: Option<Value>,
    #[schema(value_type = Option<String>)]
    pub campaign_id: Option<Value>,
}

/// Body of `PUT /api/calls/{id}/update`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlUpdate {
    pub status: Option<String>,
    pub quality: Option<QualityInput>,
    pub notes: Option<String>,
}

/// Body of `POST /api/calls/{id}/end`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndCall {
    pub outcome: Option<String>,
    pub disposition: Option<String>,
    pub notes: Option<String>,
    pub tags: Option<Vec<String>>,
    pub objections: Option<Vec<String>>,
    pub next_actions: Option<Vec<String>>,
}

fn id_of(v: &Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

impl Store {
    /// Creates the record of a manual / preview call (the engine makes it dial).
    pub async fn start_call(
        &self,
        tenant_id: &str,
        s: StartCall,
        default_country: &str,
        user_id: Option<&str>,
    ) -> Result<Call> {
        let mut row = CallRow::blank(tenant_id);
        row.direction = "outbound".into();
        row.status = "initiated".into();
        row.start_time = Some(now());
        row.lead_id = id_of(&s.lead_id);
        row.agent_id = id_of(&s.agent_id);
        row.campaign_id = id_of(&s.campaign_id);
        let mut issues = Issues::new();
        for (field, id) in [
            ("leadId", &row.lead_id),
            ("agentId", &row.agent_id),
            ("campaignId", &row.campaign_id),
        ] {
            if id
                .as_deref()
                .is_some_and(|i| uuid::Uuid::parse_str(i).is_err())
            {
                issues.add(field, "is not an id of this tenant");
            }
        }
        let lead = match (&row.lead_id, issues.is_empty()) {
            (Some(l), true) => self.lead(tenant_id, l).await.ok(),
            _ => None,
        };
        if row.lead_id.is_some() && lead.is_none() && issues.is_empty() {
            issues.add("leadId", "no such lead in this tenant");
        }
        let raw = s
            .phone_number
            .or_else(|| lead.as_ref().map(|l| l.phone_normalized.clone()));
        match raw.as_deref().map(|r| record_number(r, default_country)) {
            Some(Ok(n)) => row.to_number = Some(n),
            Some(Err(p)) => issues.add("phoneNumber", p.to_string()),
            None => issues.add("phoneNumber", "is required (or give a leadId)"),
        }
        if let Some(l) = &lead {
            row.campaign_id = row.campaign_id.take().or(Some(l.campaign_id.clone()));
            row.caller_name = [l.first_name.as_deref(), l.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
                .into();
            if row.caller_name.as_deref() == Some("") {
                row.caller_name = None;
            }
        }
        issues.finish()?;
        self.check_call_refs(tenant_id, &row).await?;
        if let Some(c) = &row.campaign_id {
            row.from_number = Some(self.campaign(tenant_id, c).await?.caller_id);
        }
        self.insert_call(&row).await?;
        let call = Call::from(row);
        self.audit(
            tenant_id,
            user_id,
            "call.start",
            "call",
            Some(&call.id),
            serde_json::json!({"after": call}),
        )
        .await?;
        Ok(call)
    }

    /// Status / quality / notes during a call.
    pub async fn control_update(
        &self,
        tenant_id: &str,
        id: &str,
        u: ControlUpdate,
        user_id: Option<&str>,
    ) -> Result<Call> {
        let input = CallInput {
            status: u.status,
            quality: u.quality,
            notes: u.notes,
            ..Default::default()
        };
        let before = self.call_row(tenant_id, id).await?;
        let mut row = before.clone();
        row.apply(input, false, "US")?;
        if matches!(
            row.status.as_str(),
            "answered" | "connected" | "in-progress"
        ) && row.answer_time.is_none()
        {
            row.answer_time = Some(now());
        }
        self.commit_call_change(before, row, user_id, "call.update")
            .await
    }

    /// Ends a call with the agent's disposition: status completed (unless already final), end
    /// time and durations filled in, objections and next actions kept in metadata.
    pub async fn end_call(
        &self,
        tenant_id: &str,
        id: &str,
        e: EndCall,
        user_id: Option<&str>,
    ) -> Result<Call> {
        let before = self.call_row(tenant_id, id).await?;
        let mut row = before.clone();
        let input = CallInput {
            outcome: e.outcome,
            disposition: e.disposition,
            notes: e.notes,
            metadata: Some(MetadataInput {
                tags: e.tags,
                notes: None,
                rest: Map::new(),
            }),
            ..Default::default()
        };
        row.apply(input, false, "US")?;
        for (k, v) in [
            ("objections", e.objections),
            ("next_actions", e.next_actions),
        ] {
            if let Some(list) = v {
                row.metadata.0.insert(k.into(), Value::from(list));
            }
        }
        if !FINAL_STATUSES.contains(&row.status.as_str()) {
            row.status = "completed".into();
        }
        let ts = now();
        let end = *row.end_time.get_or_insert(ts);
        if row.duration.is_none() {
            row.duration = row.start_time.map(|s| (end - s).num_seconds().max(0));
        }
        if row.talk_time.is_none() {
            row.talk_time = row.answer_time.map(|a| (end - a).num_seconds().max(0));
        }
        self.commit_call_change(before, row, user_id, "call.end")
            .await
    }
}

pub(crate) fn bind_call<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    r: &CallRow,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<DateTime<Utc>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<Json<Value>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Json<Vec<String>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Json<Map<String, Value>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.bind(r.id.clone())
        .bind(r.tenant_id.clone())
        .bind(r.campaign_id.clone())
        .bind(r.lead_id.clone())
        .bind(r.agent_id.clone())
        .bind(r.customer_id.clone())
        .bind(r.call_sid.clone())
        .bind(r.account_sid.clone())
        .bind(r.conference_sid.clone())
        .bind(r.external_call_id.clone())
        .bind(r.from_number.clone())
        .bind(r.to_number.clone())
        .bind(r.caller_name.clone())
        .bind(r.direction.clone())
        .bind(r.status.clone())
        .bind(r.answered_by.clone())
        .bind(r.start_time)
        .bind(r.answer_time)
        .bind(r.end_time)
        .bind(r.duration)
        .bind(r.talk_time)
        .bind(r.disposition.clone())
        .bind(r.outcome.clone())
        .bind(r.recording_url.clone())
        .bind(r.recording_sid.clone())
        .bind(r.recording_duration)
        .bind(r.recording_path.clone())
        .bind(r.recording_format.clone())
        .bind(r.recording_channels)
        .bind(r.recording_sample_rate)
        .bind(r.recording_bit_rate)
        .bind(r.recording_size)
        .bind(r.recording_uploaded_at)
        .bind(r.cost)
        .bind(r.quality.clone())
        .bind(r.transcript.clone())
        .bind(r.transcription_url.clone())
        .bind(Json(r.tags.0.clone()))
        .bind(Json(r.metadata.0.clone()))
        .bind(r.notes.clone())
        .bind(r.created_at)
        .bind(r.updated_at)
        .bind(r.deleted_at)
}
