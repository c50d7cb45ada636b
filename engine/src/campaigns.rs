//! Campaigns: what to dial, when, how fast, and the status machine that runs them.
//!
//! Status moves: draft → active (start) ⇄ paused (pause/start); start with a future
//! `schedule_start` → scheduled; active / paused / scheduled → completed; anything not yet
//! finished → cancelled. Every other move is a conflict.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use crate::patch::Patch;
use crate::store::{impl_from_row, new_id, now, on_pool, page, Store};
use crate::validate::{format_time_of_day, is_e164, is_time_zone, parse_time_of_day, Issues};
use crate::{Error, Result};

/// Campaign statuses.
pub const STATUSES: [&str; 6] = [
    "draft",
    "scheduled",
    "active",
    "paused",
    "completed",
    "cancelled",
];
/// Dial modes.
pub const DIAL_MODES: [&str; 4] = ["preview", "progressive", "power", "predictive"];
/// Whisper choices of a campaign.
pub const WHISPERS: [&str; 3] = ["off", "tone", "name"];
/// The legal abandon-rate cap (US FCC / UK Ofcom): 3 % of live answers.
pub const LEGAL_MAX_ABANDON_RATE: f64 = 0.03;

/// When and how often a lead is tried again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetryPolicy {
    /// Attempts per lead, 1..=20 (default 3).
    pub max_attempts: i64,
    /// Minutes between attempts, 1..=43200 (default 60).
    pub delay_minutes: i64,
    pub retry_on_no_answer: bool,
    pub retry_on_busy: bool,
    pub retry_on_voicemail: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            delay_minutes: 60,
            retry_on_no_answer: true,
            retry_on_busy: true,
            retry_on_voicemail: false,
        }
    }
}

/// A campaign as stored and as served.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Campaign {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub caller_id: String,
    pub status: String,
    pub schedule_start: Option<DateTime<Utc>>,
    pub schedule_end: Option<DateTime<Utc>>,
    pub timezone: String,
    pub calling_hours_start: String,
    pub calling_hours_end: String,
    pub agent_group_id: Option<String>,
    pub retry_policy: RetryPolicy,
    pub amd_enabled: bool,
    pub voicemail_message_url: Option<String>,
    pub record_calls: bool,
    /// What the agent hears before the lead is bridged in: `off`, `tone` (a zip tone) or
    /// `name` (the lead's name spoken; a tone when no speech synthesizer is installed).
    pub whisper: String,
    pub dial_mode: String,
    pub dial_ratio: f64,
    pub max_abandon_rate: f64,
    pub abandon_window: String,
    pub trunk_ids: Vec<String>,
    pub total_leads: i64,
    pub calls_made: i64,
    pub calls_completed: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The flat row behind `Campaign`.
pub(crate) struct CampaignRow {
    id: String,
    tenant_id: String,
    name: String,
    caller_id: String,
    status: String,
    schedule_start: Option<DateTime<Utc>>,
    schedule_end: Option<DateTime<Utc>>,
    timezone: String,
    calling_hours_start: String,
    calling_hours_end: String,
    agent_group_id: Option<String>,
    max_attempts: i64,
    retry_delay_minutes: i64,
    retry_on_no_answer: bool,
    retry_on_busy: bool,
    retry_on_voicemail: bool,
    amd_enabled: bool,
    voicemail_message_url: Option<String>,
    record_calls: bool,
    whisper: String,
    dial_mode: String,
    dial_ratio: f64,
    max_abandon_rate: f64,
    abandon_window: String,
    trunk_ids: Json<Vec<String>>,
    total_leads: i64,
    calls_made: i64,
    calls_completed: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}
impl_from_row!(CampaignRow {
    id,
    tenant_id,
    name,
    caller_id,
    status,
    schedule_start,
    schedule_end,
    timezone,
    calling_hours_start,
    calling_hours_end,
    agent_group_id,
    max_attempts,
    retry_delay_minutes,
    retry_on_no_answer,
    retry_on_busy,
    retry_on_voicemail,
    amd_enabled,
    voicemail_message_url,
    record_calls,
    whisper,
    dial_mode,
    dial_ratio,
    max_abandon_rate,
    abandon_window,
    trunk_ids,
    total_leads,
    calls_made,
    calls_completed,
    created_at,
    updated_at
});

pub(crate) const COLS: &str = "id, tenant_id, name, caller_id, status, schedule_start, schedule_end, timezone, calling_hours_start, \
    calling_hours_end, agent_group_id, max_attempts, retry_delay_minutes, retry_on_no_answer, retry_on_busy, \
    retry_on_voicemail, amd_enabled, voicemail_message_url, record_calls, dial_mode, dial_ratio, \
    max_abandon_rate, abandon_window, trunk_ids, total_leads, calls_made, calls_completed, created_at, updated_at, whisper";

impl From<CampaignRow> for Campaign {
    fn from(r: CampaignRow) -> Self {
        Campaign {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            caller_id: r.caller_id,
            status: r.status,
            schedule_start: r.schedule_start,
            schedule_end: r.schedule_end,
            timezone: r.timezone,
            calling_hours_start: r.calling_hours_start,
            calling_hours_end: r.calling_hours_end,
            agent_group_id: r.agent_group_id,
            retry_policy: RetryPolicy {
                max_attempts: r.max_attempts,
                delay_minutes: r.retry_delay_minutes,
                retry_on_no_answer: r.retry_on_no_answer,
                retry_on_busy: r.retry_on_busy,
                retry_on_voicemail: r.retry_on_voicemail,
            },
            amd_enabled: r.amd_enabled,
            voicemail_message_url: r.voicemail_message_url,
            record_calls: r.record_calls,
            whisper: r.whisper,
            dial_mode: r.dial_mode,
            dial_ratio: r.dial_ratio,
            max_abandon_rate: r.max_abandon_rate,
            abandon_window: r.abandon_window,
            trunk_ids: r.trunk_ids.0,
            total_leads: r.total_leads,
            calls_made: r.calls_made,
            calls_completed: r.calls_completed,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Retry policy fields of a create/update body; each optional.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicyInput {
    pub max_attempts: Option<i64>,
    pub delay_minutes: Option<i64>,
    pub retry_on_no_answer: Option<bool>,
    pub retry_on_busy: Option<bool>,
    pub retry_on_voicemail: Option<bool>,
}

/// Body of create (name and caller_id required) and update (everything optional).
/// Defaults for create: status draft, timezone UTC, calling hours 09:00:00–20:00:00, retry
/// policy 3 attempts / 60 min / retry on no-answer and busy, AMD on, recording off, dial mode
/// progressive, dial ratio 1.0, max abandon rate 0.03 over 30 days, all trunks.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    pub name: Option<String>,
    pub caller_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub schedule_start: Patch<DateTime<Utc>>,
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub schedule_end: Patch<DateTime<Utc>>,
    /// IANA time zone of the campaign's schedule.
    pub timezone: Option<String>,
    /// `HH:MM` or `HH:MM:SS`, in the lead's own time zone.
    pub calling_hours_start: Option<String>,
    pub calling_hours_end: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub agent_group_id: Patch<String>,
    pub retry_policy: Option<RetryPolicyInput>,
    pub amd_enabled: Option<bool>,
    /// An http(s) URL or an absolute path of a WAV file on the engine's host.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub voicemail_message_url: Patch<String>,
    pub record_calls: Option<bool>,
    /// off | tone | name: what the agent hears before the lead is bridged in.
    pub whisper: Option<String>,
    /// preview | progressive | power | predictive
    pub dial_mode: Option<String>,
    /// Lines per ready agent in power mode; the starting ratio in predictive mode (1.0..=10.0).
    pub dial_ratio: Option<f64>,
    /// Abandoned share of live answers the pacer must stay under (0..=0.03).
    pub max_abandon_rate: Option<f64>,
    /// `30d` (US FCC) or `24h` (UK Ofcom).
    pub abandon_window: Option<String>,
    pub trunk_ids: Option<Vec<String>>,
    /// Only `completed` or `cancelled` here; use start/pause for the rest.
    pub status: Option<String>,
}

/// List filter.
#[derive(Debug, Clone, Default)]
pub struct CampaignFilter {
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

fn default_row(tenant_id: &str) -> CampaignRow {
    let ts = now();
    let rp = RetryPolicy::default();
    CampaignRow {
        id: new_id(),
        tenant_id: tenant_id.to_string(),
        name: String::new(),
        caller_id: String::new(),
        status: "draft".into(),
        schedule_start: None,
        schedule_end: None,
        timezone: "UTC".into(),
        calling_hours_start: "09:00:00".into(),
        calling_hours_end: "20:00:00".into(),
        agent_group_id: None,
        max_attempts: rp.max_attempts,
        retry_delay_minutes: rp.delay_minutes,
        retry_on_no_answer: rp.retry_on_no_answer,
        retry_on_busy: rp.retry_on_busy,
        retry_on_voicemail: rp.retry_on_voicemail,
        amd_enabled: true,
        voicemail_message_url: None,
        record_calls: false,
        whisper: "off".into(),
        dial_mode: "progressive".into(),
        dial_ratio: 1.0,
        max_abandon_rate: LEGAL_MAX_ABANDON_RATE,
        abandon_window: "30d".into(),
        trunk_ids: Json(Vec::new()),
        total_leads: 0,
        calls_made: 0,
        calls_completed: 0,
        created_at: ts,
        updated_at: ts,
    }
}

/// Whether a status move is legal.
pub fn can_move(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("draft" | "paused" | "scheduled", "active")
            | ("draft" | "paused", "scheduled")
            | ("active" | "scheduled", "paused")
            | ("active" | "paused" | "scheduled", "completed")
            | ("draft" | "scheduled" | "active" | "paused", "cancelled")
    )
}

/// Merges `input` into `row` and checks the result; `create` requires name and caller id.
fn apply(row: &mut CampaignRow, input: CampaignInput, create: bool) -> Result<Option<String>> {
    let mut issues = Issues::new();
    match input.name {
        Some(n) if n.trim().is_empty() || n.trim().chars().count() > 200 => {
            issues.add("name", "must be 1 to 200 characters")
        }
        Some(n) => row.name = n.trim().to_string(),
        None if create => issues.add("name", "is required"),
        None => {}
    }
    match input.caller_id {
        Some(c) if !is_e164(c.trim()) => {
            issues.add("caller_id", "must be an E.164 number such as +14155551234")
        }
        Some(c) => row.caller_id = c.trim().to_string(),
        None if create => issues.add("caller_id", "is required"),
        None => {}
    }
    row.schedule_start = input.schedule_start.apply_to(row.schedule_start);
    row.schedule_end = input.schedule_end.apply_to(row.schedule_end);
    if let (Some(s), Some(e)) = (row.schedule_start, row.schedule_end) {
        if e <= s {
            issues.add("schedule_end", "must be after schedule_start");
        }
    }
    if let Some(tz) = input.timezone {
        if is_time_zone(&tz) {
            row.timezone = tz;
        } else {
            issues.add(
                "timezone",
                format!("unknown time zone {tz:?}: use an IANA name such as America/New_York"),
            );
        }
    }
    let mut hours_ok = true;
    for (field, value, slot) in [
        (
            "calling_hours_start",
            input.calling_hours_start,
            &mut row.calling_hours_start,
        ),
        (
            "calling_hours_end",
            input.calling_hours_end,
            &mut row.calling_hours_end,
        ),
    ] {
        if let Some(v) = value {
            match parse_time_of_day(&v) {
                Some(secs) => *slot = format_time_of_day(secs),
                None => {
                    hours_ok = false;
                    issues.add(
                        field,
                        "must be a time of day HH:MM or HH:MM:SS between 00:00 and 23:59:59",
                    );
                }
            }
        }
    }
    if hours_ok && row.calling_hours_end <= row.calling_hours_start {
        issues.add("calling_hours_end", "must be after calling_hours_start");
    }
    row.agent_group_id = input.agent_group_id.apply_to(row.agent_group_id.take());
    if let Some(rp) = input.retry_policy {
        if let Some(n) = rp.max_attempts {
            if (1..=20).contains(&n) {
                row.max_attempts = n;
            } else {
                issues.add("retry_policy.max_attempts", "must be between 1 and 20");
            }
        }
        if let Some(n) = rp.delay_minutes {
            if (1..=43_200).contains(&n) {
                row.retry_delay_minutes = n;
            } else {
                issues.add(
                    "retry_policy.delay_minutes",
                    "must be between 1 and 43200 (30 days)",
                );
            }
        }
        row.retry_on_no_answer = rp.retry_on_no_answer.unwrap_or(row.retry_on_no_answer);
        row.retry_on_busy = rp.retry_on_busy.unwrap_or(row.retry_on_busy);
        row.retry_on_voicemail = rp.retry_on_voicemail.unwrap_or(row.retry_on_voicemail);
    }
    row.amd_enabled = input.amd_enabled.unwrap_or(row.amd_enabled);
    row.record_calls = input.record_calls.unwrap_or(row.record_calls);
    if let Some(w) = input.whisper {
        if WHISPERS.contains(&w.as_str()) {
            row.whisper = w;
        } else {
            issues.add("whisper", "must be one of off, tone, name");
        }
    }
    if let Patch::Value(url) = &input.voicemail_message_url {
        let ok = url.len() <= 2048
            && (url.starts_with("https://")
                || url.starts_with("http://")
                || url.starts_with('/')
                || url == "builtin:voicemail");
        if !ok {
            issues.add(
                "voicemail_message_url",
                "must be an http(s) URL, an absolute file path or builtin:voicemail",
            );
        }
    }
    row.voicemail_message_url = input
        .voicemail_message_url
        .apply_to(row.voicemail_message_url.take());
    if let Some(m) = input.dial_mode {
        if DIAL_MODES.contains(&m.as_str()) {
            row.dial_mode = m;
        } else {
            issues.add(
                "dial_mode",
                "must be one of preview, progressive, power, predictive",
            );
        }
    }
    if let Some(r) = input.dial_ratio {
        if (1.0..=10.0).contains(&r) {
            row.dial_ratio = r;
        } else {
            issues.add("dial_ratio", "must be between 1.0 and 10.0");
        }
    }
    if let Some(r) = input.max_abandon_rate {
        if (0.0..=LEGAL_MAX_ABANDON_RATE).contains(&r) {
            row.max_abandon_rate = r;
        } else {
            issues.add(
                "max_abandon_rate",
                "must be between 0 and 0.03 (the legal cap)",
            );
        }
    }
    if let Some(w) = input.abandon_window {
        if w == "30d" || w == "24h" {
            row.abandon_window = w;
        } else {
            issues.add("abandon_window", "must be 30d (US) or 24h (UK)");
        }
    }
    if let Some(t) = input.trunk_ids {
        if t.len() > 20 || t.iter().any(|s| s.trim().is_empty() || s.len() > 100) {
            issues.add("trunk_ids", "must be at most 20 non-empty trunk ids");
        } else {
            row.trunk_ids = Json(t);
        }
    }
    let status = match input.status {
        Some(s) if s == "completed" || s == "cancelled" => Some(s),
        Some(s) if STATUSES.contains(&s.as_str()) => {
            issues.add(
                "status",
                "only completed or cancelled can be set here; use /start and /pause",
            );
            None
        }
        Some(_) => {
            issues.add(
                "status",
                "must be one of draft, scheduled, active, paused, completed, cancelled",
            );
            None
        }
        None => None,
    };
    issues.finish()?;
    Ok(status)
}

impl Store {
    /// Creates a campaign from a validated body.
    pub async fn create_campaign(&self, tenant_id: &str, input: CampaignInput) -> Result<Campaign> {
        let mut row = default_row(tenant_id);
        if input.status.is_some() {
            return Err(Error::field("status", "a new campaign starts as draft"));
        }
        apply(&mut row, input, true)?;
        self.check_group(tenant_id, row.agent_group_id.as_deref())
            .await?;
        let sql = format!("INSERT INTO campaigns ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)");
        on_pool!(self, p => bind_row(sqlx::query(&sql), &row).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(row.into())
    }

    pub async fn campaign(&self, tenant_id: &str, id: &str) -> Result<Campaign> {
        Ok(self.campaign_row(tenant_id, id).await?.into())
    }

    async fn campaign_row(&self, tenant_id: &str, id: &str) -> Result<CampaignRow> {
        let sql = format!("SELECT {COLS} FROM campaigns WHERE tenant_id = $1 AND id = $2");
        on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).bind(id).fetch_optional(p).await)?
            .ok_or(Error::NotFound { entity: "campaign" })
    }

    /// Lists campaigns, newest first; returns the page and the total matching.
    pub async fn campaigns(
        &self,
        tenant_id: &str,
        f: &CampaignFilter,
    ) -> Result<(Vec<Campaign>, i64)> {
        let (limit, offset) = page(f.limit, f.offset);
        let status_sql = if f.status.is_some() {
            " AND status = $2"
        } else {
            " AND $2 IS NULL"
        };
        let sql = format!("SELECT {COLS} FROM campaigns WHERE tenant_id = $1{status_sql} ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4");
        let count_sql = format!("SELECT COUNT(*) FROM campaigns WHERE tenant_id = $1{status_sql}");
        let (rows, total): (Vec<CampaignRow>, i64) = on_pool!(self, p => {
            let rows = sqlx::query_as(&sql).bind(tenant_id).bind(f.status.as_deref()).bind(limit).bind(offset).fetch_all(p).await?;
            let total = sqlx::query_scalar(&count_sql).bind(tenant_id).bind(f.status.as_deref()).fetch_one(p).await?;
            (rows, total)
        });
        Ok((rows.into_iter().map(Campaign::from).collect(), total))
    }

    /// Applies an update body; a `status` in it must be a legal move.
    pub async fn update_campaign(
        &self,
        tenant_id: &str,
        id: &str,
        input: CampaignInput,
    ) -> Result<Campaign> {
        let mut row = self.campaign_row(tenant_id, id).await?;
        let group_changed = !input.agent_group_id.is_absent();
        if let Some(status) = apply(&mut row, input, false)? {
            if !can_move(&row.status, &status) {
                return Err(Error::conflict(format!(
                    "a {} campaign cannot become {status}",
                    row.status
                )));
            }
            row.status = status;
        }
        if group_changed {
            self.check_group(tenant_id, row.agent_group_id.as_deref())
                .await?;
        }
        row.updated_at = now();
        self.save_campaign(&row).await?;
        Ok(row.into())
    }

    /// Starts (or resumes) a campaign: active now, or scheduled when its start is ahead.
    pub async fn start_campaign(&self, tenant_id: &str, id: &str) -> Result<Campaign> {
        let mut row = self.campaign_row(tenant_id, id).await?;
        let ts = now();
        if row.schedule_end.is_some_and(|e| e <= ts) {
            return Err(Error::conflict("the campaign's schedule has already ended"));
        }
        let to = if row.schedule_start.is_some_and(|s| s > ts) && row.status != "scheduled" {
            "scheduled"
        } else {
            "active"
        };
        if !can_move(&row.status, to) {
            return Err(Error::conflict(format!(
                "a {} campaign cannot be started",
                row.status
            )));
        }
        row.status = to.into();
        row.updated_at = ts;
        self.save_campaign(&row).await?;
        Ok(row.into())
    }

    pub async fn pause_campaign(&self, tenant_id: &str, id: &str) -> Result<Campaign> {
        let mut row = self.campaign_row(tenant_id, id).await?;
        if !can_move(&row.status, "paused") {
            return Err(Error::conflict(format!(
                "a {} campaign cannot be paused",
                row.status
            )));
        }
        row.status = "paused".into();
        row.updated_at = now();
        self.save_campaign(&row).await?;
        Ok(row.into())
    }

    async fn save_campaign(&self, row: &CampaignRow) -> Result<()> {
        let sets: Vec<String> = COLS
            .split(", ")
            .enumerate()
            .skip(2)
            .map(|(i, c)| format!("{} = ${}", c.trim(), i + 1))
            .collect();
        let sql = format!(
            "UPDATE campaigns SET {} WHERE id = $1 AND tenant_id = $2",
            sets.join(", ")
        );
        on_pool!(self, p => bind_row(sqlx::query(&sql), row).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A referenced agent group must belong to the tenant.
    async fn check_group(&self, tenant_id: &str, group: Option<&str>) -> Result<()> {
        if let Some(g) = group {
            let found: Option<String> = on_pool!(self, p => sqlx::query_scalar("SELECT id FROM agent_groups WHERE tenant_id = $1 AND id = $2").bind(tenant_id).bind(g).fetch_optional(p).await)?;
            if found.is_none() {
                return Err(Error::field(
                    "agent_group_id",
                    "no such agent group in this tenant",
                ));
            }
        }
        Ok(())
    }
}

/// Binds every column of `COLS`, in order, as `$1..$30`.
fn bind_row<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    r: &CampaignRow,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<DateTime<Utc>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Json<Vec<String>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.bind(r.id.clone())
        .bind(r.tenant_id.clone())
        .bind(r.name.clone())
        .bind(r.caller_id.clone())
        .bind(r.status.clone())
        .bind(r.schedule_start)
        .bind(r.schedule_end)
        .bind(r.timezone.clone())
        .bind(r.calling_hours_start.clone())
        .bind(r.calling_hours_end.clone())
        .bind(r.agent_group_id.clone())
        .bind(r.max_attempts)
        .bind(r.retry_delay_minutes)
        .bind(r.retry_on_no_answer)
        .bind(r.retry_on_busy)
        .bind(r.retry_on_voicemail)
        .bind(r.amd_enabled)
        .bind(r.voicemail_message_url.clone())
        .bind(r.record_calls)
        .bind(r.dial_mode.clone())
        .bind(r.dial_ratio)
        .bind(r.max_abandon_rate)
        .bind(r.abandon_window.clone())
        .bind(Json(r.trunk_ids.0.clone()))
        .bind(r.total_leads)
        .bind(r.calls_made)
        .bind(r.calls_completed)
        .bind(r.created_at)
        .bind(r.updated_at)
        .bind(r.whisper.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_moves() {
        assert!(can_move("draft", "active"));
        assert!(can_move("active", "paused"));
        assert!(can_move("paused", "active"));
        assert!(!can_move("completed", "active"));
        assert!(!can_move("cancelled", "paused"));
        assert!(!can_move("draft", "paused"));
        assert!(!can_move("active", "active"));
        assert!(!can_move("completed", "cancelled"));
    }

    #[test]
    fn create_needs_name_and_caller_id() {
        let mut row = default_row("t");
        let Err(Error::Validation { issues }) = apply(&mut row, CampaignInput::default(), true)
        else {
            panic!("expected validation error");
        };
        let fields: Vec<_> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["name", "caller_id"]);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let mut row = default_row("t");
        let input: CampaignInput = serde_json::from_value(serde_json::json!({
            "name": "x", "caller_id": "555", "timezone": "Mars/Base", "calling_hours_start": "25:00",
            "schedule_start": "2024-02-01T00:00:00Z", "schedule_end": "2024-01-01T00:00:00Z",
            "retry_policy": {"max_attempts": 0}, "dial_mode": "psychic", "max_abandon_rate": 0.2
        }))
        .unwrap();
        let Err(Error::Validation { issues }) = apply(&mut row, input, true) else {
            panic!("expected validation error");
        };
        let fields: Vec<_> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "caller_id",
                "schedule_end",
                "timezone",
                "calling_hours_start",
                "retry_policy.max_attempts",
                "dial_mode",
                "max_abandon_rate"
            ]
        );
    }

    #[test]
    fn hours_must_be_ordered() {
        let mut row = default_row("t");
        let input: CampaignInput = serde_json::from_value(
            serde_json::json!({"calling_hours_start": "18:00", "calling_hours_end": "09:00"}),
        )
        .unwrap();
        assert!(matches!(
            apply(&mut row, input, false),
            Err(Error::Validation { .. })
        ));
    }
}
