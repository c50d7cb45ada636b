//! The voice-calls spec: the same call rows under `/api/voice-calls/:companyId/...`, in that
//! spec's own shapes (no envelope), with its eight statuses and a soft delete.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{CallRow, COLS};
use crate::store::{now, on_pool, Store};
use crate::validate::{is_e164, Issues};
use crate::{Error, Result};

/// The statuses this spec accepts.
pub const STATUSES: [&str; 8] = [
    "initiated",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "failed",
    "no-answer",
    "cancelled",
];

/// `call_data`: direction and E.164 numbers, plus anything else.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CallData {
    pub direction: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub custom_params: Option<Value>,
}

/// Body of create and update.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoiceCallInput {
    /// The voice platform's call id.
    #[serde(rename = "callId")]
    pub call_id: Option<String>,
    /// The carrier's call sid.
    pub callsid: Option<String>,
    pub leadid: Option<String>,
    pub call_status: Option<String>,
    /// Seconds.
    pub call_duration: Option<i64>,
    pub recording_url: Option<String>,
    pub call_data: Option<CallData>,
}

/// A voice call as this spec shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VoiceCall {
    pub id: String,
    pub company_id: String,
    pub campaign_id: Option<String>,
    pub lead_id: Option<String>,
    pub call_id: Option<String>,
    pub call_sid: Option<String>,
    pub call_status: String,
    pub call_duration: i64,
    pub recording_url: Option<String>,
    #[schema(value_type = Object)]
    pub call_data: Value,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<CallRow> for VoiceCall {
    fn from(r: CallRow) -> Self {
        let mut data = Map::new();
        data.insert("direction".into(), Value::from(r.direction.clone()));
        data.insert(
            "from".into(),
            r.from_number.clone().map_or(Value::Null, Value::from),
        );
        data.insert(
            "to".into(),
            r.to_number.clone().map_or(Value::Null, Value::from),
        );
        data.insert(
            "custom_params".into(),
            r.metadata
                .0
                .get("custom_params")
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new())),
        );
        VoiceCall {
            id: r.id,
            company_id: r.tenant_id,
            campaign_id: r.campaign_id,
            lead_id: r.lead_id,
            call_id: r.external_call_id,
            call_sid: r.call_sid,
            call_status: r.status,
            call_duration: r.duration.unwrap_or(0),
            recording_url: r.recording_url,
            call_data: Value::Object(data),
            is_active: r.deleted_at.is_none(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl VoiceCallInput {
    fn apply(self, row: &mut CallRow) -> Result<()> {
        let mut issues = Issues::new();
        if let Some(s) = self.call_status {
            if STATUSES.contains(&s.as_str()) {
                row.status = s;
            } else {
                issues.add(
                    "call_status",
                    format!("must be one of {}", STATUSES.join(", ")),
                );
            }
        }
        if let Some(d) = self.call_duration {
            if (0..=2_592_000).contains(&d) {
                row.duration = Some(d);
            } else {
                issues.add("call_duration", "must be seconds ≥ 0");
            }
        }
        for (field, v, max) in [
            ("callId", &self.call_id, 128),
            ("callsid", &self.callsid, 64),
            ("recording_url", &self.recording_url, 2048),
        ] {
            if v.as_deref().is_some_and(|s| s.chars().count() > max) {
                issues.add(field, format!("must be at most {max} characters"));
            }
        }
        if let Some(d) = self.call_data {
            match d.direction.as_deref() {
                None => {}
                Some(dir @ ("inbound" | "outbound")) => row.direction = dir.into(),
                Some(_) => issues.add("call_data.direction", "must be inbound or outbound"),
            }
            for (field, v, slot) in [
                ("call_data.from", d.from, &mut row.from_number),
                ("call_data.to", d.to, &mut row.to_number),
            ] {
                match v {
                    Some(n) if is_e164(&n) => *slot = Some(n),
                    Some(_) => issues.add(field, "must be an E.164 number such as +14155551234"),
                    None => {}
                }
            }
            if let Some(c) = d.custom_params {
                row.metadata.0.insert("custom_params".into(), c);
            }
        }
        if self
            .leadid
            .as_deref()
            .is_some_and(|l| uuid::Uuid::parse_str(l).is_err())
        {
            issues.add("leadid", "is not a lead of this company");
        }
        issues.finish()?;
        row.external_call_id = self.call_id.or(row.external_call_id.take());
        row.call_sid = self.callsid.or(row.call_sid.take());
        row.recording_url = self.recording_url.or(row.recording_url.take());
        row.lead_id = self.leadid.or(row.lead_id.take());
        Ok(())
    }
}

impl Store {
    /// Creates a voice call of a campaign; returns its id.
    pub async fn voice_call_create(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        input: VoiceCallInput,
        user_id: Option<&str>,
    ) -> Result<String> {
        self.campaign(tenant_id, campaign_id).await?;
        let mut row = CallRow::blank(tenant_id);
        row.campaign_id = Some(campaign_id.into());
        row.start_time = Some(row.created_at);
        input.apply(&mut row)?;
        self.check_call_refs(tenant_id, &row).await?;
        self.insert_call(&row).await?;
        self.audit(
            tenant_id,
            user_id,
            "call.create",
            "call",
            Some(&row.id),
            serde_json::json!({"source": "voice-calls"}),
        )
        .await?;
        Ok(row.id)
    }

    pub async fn voice_call(&self, tenant_id: &str, id: &str) -> Result<VoiceCall> {
        Ok(self.call_row(tenant_id, id).await?.into())
    }

    /// A campaign's live voice calls, newest first.
    pub async fn voice_calls_of_campaign(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        page: i64,
        limit: i64,
    ) -> Result<Vec<VoiceCall>> {
        self.campaign(tenant_id, campaign_id).await?;
        let limit = limit.clamp(1, 100);
        let offset = (page.max(1) - 1).saturating_mul(limit);
        let sql = format!("SELECT {COLS} FROM calls WHERE tenant_id = $1 AND campaign_id = $2 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4");
        let rows: Vec<CallRow> = on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).bind(campaign_id).bind(limit).bind(offset).fetch_all(p).await)?;
        Ok(rows.into_iter().map(VoiceCall::from).collect())
    }

    /// A lead's live voice calls, newest first (at most 1000).
    pub async fn voice_calls_of_lead(
        &self,
        tenant_id: &str,
        lead_id: &str,
    ) -> Result<Vec<VoiceCall>> {
        self.lead(tenant_id, lead_id).await?;
        let sql = format!("SELECT {COLS} FROM calls WHERE tenant_id = $1 AND lead_id = $2 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1000");
        let rows: Vec<CallRow> = on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).bind(lead_id).fetch_all(p).await)?;
        Ok(rows.into_iter().map(VoiceCall::from).collect())
    }

    pub async fn voice_call_update(
        &self,
        tenant_id: &str,
        id: &str,
        input: VoiceCallInput,
        user_id: Option<&str>,
    ) -> Result<VoiceCall> {
        let before = self.call_row(tenant_id, id).await?;
        let mut row = before.clone();
        input.apply(&mut row)?;
        self.check_call_refs(tenant_id, &row).await?;
        let call = self
            .commit_call_change(before, row, user_id, "call.update")
            .await?;
        self.voice_call(tenant_id, &call.id).await
    }

    /// Soft delete: the call disappears from lists and gets; the row and its audit remain.
    pub async fn voice_call_delete(
        &self,
        tenant_id: &str,
        id: &str,
        user_id: Option<&str>,
    ) -> Result<()> {
        let ts = now();
        let n = on_pool!(self, p => sqlx::query("UPDATE calls SET deleted_at = $1, updated_at = $1 WHERE tenant_id = $2 AND id = $3 AND deleted_at IS NULL")
            .bind(ts).bind(tenant_id).bind(id).execute(p).await.map(|r| r.rows_affected()))?;
        if n == 0 {
            return Err(Error::NotFound { entity: "call" });
        }
        self.audit(
            tenant_id,
            user_id,
            "call.delete",
            "call",
            Some(id),
            serde_json::json!({"changes": {"is_active": {"before": true, "after": false}}}),
        )
        .await?;
        Ok(())
    }
}
