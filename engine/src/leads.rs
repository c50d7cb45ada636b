//! Leads: the people a campaign calls.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::types::Json;

use crate::patch::Patch;
use crate::store::{impl_from_row, now, on_pool, page, Store};
use crate::validate::{is_email, is_time_zone, Issues};
use crate::{phone, Error, Result};

/// Lead statuses. `queued` and `calling` belong to the engine.
pub const STATUSES: [&str; 6] = ["pending", "queued", "calling", "completed", "failed", "dnc"];
/// Lead priorities, lowest first; the hopper dials higher ranks first.
pub const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];

/// The rank of a priority name (case-insensitive), used to order the hopper.
pub fn priority_rank(p: &str) -> Option<i64> {
    PRIORITIES
        .iter()
        .position(|x| x.eq_ignore_ascii_case(p))
        .map(|i| i as i64)
}

/// A lead as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Lead {
    pub id: String,
    pub campaign_id: String,
    pub tenant_id: String,
    /// As imported.
    pub phone: String,
    /// E.164.
    pub phone_normalized: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    /// IANA zone used for calling hours.
    pub timezone: Option<String>,
    #[serde(rename = "type")]
    pub lead_type: Option<String>,
    pub priority: String,
    #[serde(skip)]
    #[schema(ignore)]
    pub priority_rank: i64,
    #[schema(value_type = Object)]
    pub custom_fields: Json<Map<String, Value>>,
    pub notes: Option<String>,
    pub status: String,
    pub call_attempts: i64,
    pub last_call_at: Option<DateTime<Utc>>,
    pub next_call_at: Option<DateTime<Utc>>,
    pub do_not_call: bool,
    pub last_disposition: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
impl_from_row!(Lead {
    id,
    campaign_id,
    tenant_id,
    phone,
    phone_normalized,
    first_name,
    last_name,
    email,
    country,
    timezone,
    lead_type,
    priority,
    priority_rank,
    custom_fields,
    notes,
    status,
    call_attempts,
    last_call_at,
    next_call_at,
    do_not_call,
    last_disposition,
    created_at,
    updated_at
});

pub(crate) const COLS: &str = "id, campaign_id, tenant_id, phone, phone_normalized, first_name, last_name, email, country, timezone, \
    lead_type, priority, priority_rank, custom_fields, notes, status, call_attempts, last_call_at, next_call_at, \
    do_not_call, last_disposition, created_at, updated_at";

/// List filter; `campaign_id` is required by the API.
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    pub campaign_id: String,
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Body of `PUT /api/leads/:id`; every field optional, `null` clears.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadUpdate {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub first_name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub last_name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub email: Patch<String>,
    /// A new number, normalized like an import (the lead's country is the hint).
    pub phone: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub timezone: Patch<String>,
    #[serde(default, rename = "type")]
    #[schema(value_type = Option<String>)]
    pub lead_type: Patch<String>,
    /// low | normal | high | urgent
    pub priority: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub notes: Patch<String>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Map<String, Value>>,
    /// pending | completed | failed | dnc (queued and calling belong to the engine)
    pub status: Option<String>,
    pub do_not_call: Option<bool>,
}

impl Store {
    pub async fn lead(&self, tenant_id: &str, id: &str) -> Result<Lead> {
        let sql = format!("SELECT {COLS} FROM leads WHERE tenant_id = $1 AND id = $2");
        on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).bind(id).fetch_optional(p).await)?
            .ok_or(Error::NotFound { entity: "lead" })
    }

    /// A campaign's leads in import order, with the total matching the filter.
    pub async fn leads(&self, tenant_id: &str, f: &LeadFilter) -> Result<(Vec<Lead>, i64)> {
        let (limit, offset) = page(f.limit, f.offset);
        let status_sql = if f.status.is_some() {
            " AND status = $3"
        } else {
            " AND $3 IS NULL"
        };
        let sql = format!("SELECT {COLS} FROM leads WHERE tenant_id = $1 AND campaign_id = $2{status_sql} ORDER BY created_at, id LIMIT $4 OFFSET $5");
        let rows = on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).bind(&f.campaign_id).bind(f.status.as_deref()).bind(limit).bind(offset).fetch_all(p).await)?;
        // Unfiltered, the campaign's maintained lead count answers at once (leads are added
        // only by imports, which update it in the same transaction, and never deleted);
        // filtered by status, the (tenant, campaign, status) index counts.
        let total: i64 = match f.status.as_deref() {
            None => on_pool!(self, p => sqlx::query_scalar("SELECT total_leads FROM campaigns WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id).bind(&f.campaign_id).fetch_optional(p).await)?
                .unwrap_or(0),
            Some(status) => on_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM leads WHERE tenant_id = $1 AND campaign_id = $2 AND status = $3")
                .bind(tenant_id).bind(&f.campaign_id).bind(status).fetch_one(p).await)?,
        };
        Ok((rows, total))
    }

    /// Applies an update body to a lead.
    pub async fn update_lead(&self, tenant_id: &str, id: &str, u: LeadUpdate) -> Result<Lead> {
        let mut lead = self.lead(tenant_id, id).await?;
        let mut issues = Issues::new();
        for (field, patch, slot, max) in [
            ("first_name", u.first_name, &mut lead.first_name, 100),
            ("last_name", u.last_name, &mut lead.last_name, 100),
            ("notes", u.notes, &mut lead.notes, 2000),
            ("type", u.lead_type, &mut lead.lead_type, 50),
        ] {
            if patch.value().is_some_and(|v| v.chars().count() > max) {
                issues.add(field, format!("must be at most {max} characters"));
            } else {
                *slot = patch.apply_to(slot.take());
            }
        }
        if u.email.value().is_some_and(|e| !is_email(e)) {
            issues.add("email", "is not a valid e-mail address");
        } else {
            lead.email = u.email.apply_to(lead.email.take());
        }
        let timezone_given = !u.timezone.is_absent();
        if u.timezone.value().is_some_and(|t| !is_time_zone(t)) {
            issues.add(
                "timezone",
                "unknown time zone: use an IANA name such as Europe/London",
            );
        } else {
            lead.timezone = u.timezone.apply_to(lead.timezone.take());
        }
        if let Some(p) = u.priority {
            match priority_rank(&p) {
                Some(rank) => {
                    lead.priority = PRIORITIES[rank as usize].to_string();
                    lead.priority_rank = rank;
                }
                None => issues.add("priority", "must be one of low, normal, high, urgent"),
            }
        }
        if let Some(cf) = u.custom_fields {
            lead.custom_fields = Json(cf);
        }
        // Only what the body changes is written: the status belongs to the engine while it
        // dials the lead, and a stale copy must never undo its `queued` / `calling`.
        let status_given = u.status.is_some();
        let flag_given = u.do_not_call;
        if let Some(s) = u.status {
            if ["pending", "completed", "failed", "dnc"].contains(&s.as_str()) {
                lead.status = s;
            } else {
                issues.add("status", "must be one of pending, completed, failed, dnc");
            }
        }
        if let Some(d) = u.do_not_call {
            lead.do_not_call = d;
            if d {
                lead.status = "dnc".into();
            }
        }
        if let Some(raw) = u.phone {
            match phone::normalize(&raw, lead.country.as_deref()) {
                Ok(n) => {
                    lead.phone = raw.trim().to_string();
                    lead.phone_normalized = n.e164;
                    if !timezone_given {
                        lead.timezone = n.timezone.or(lead.timezone.take());
                    }
                }
                Err(problem) => issues.add("phone", problem.to_string()),
            }
        }
        issues.finish()?;
        lead.updated_at = now();
        let res = on_pool!(self, p => sqlx::query(
            "UPDATE leads SET phone = $3, phone_normalized = $4, first_name = $5, last_name = $6, email = $7, timezone = $8, \
             lead_type = $9, priority = $10, priority_rank = $11, custom_fields = $12, notes = $13, \
             status = CASE WHEN $17 THEN $14 ELSE status END, do_not_call = CASE WHEN $18 THEN $15 ELSE do_not_call END, updated_at = $16 \
             WHERE tenant_id = $1 AND id = $2 AND ($19 = FALSE OR (status NOT IN ('queued', 'calling') AND NOT EXISTS ( \
             SELECT 1 FROM calls c WHERE c.tenant_id = leads.tenant_id AND c.lead_id = leads.id AND c.deleted_at IS NULL \
             AND c.status IN ('initiated', 'queued', 'ringing', 'answered', 'in-progress'))))",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(&lead.phone)
        .bind(&lead.phone_normalized)
        .bind(&lead.first_name)
        .bind(&lead.last_name)
        .bind(&lead.email)
        .bind(&lead.timezone)
        .bind(&lead.lead_type)
        .bind(&lead.priority)
        .bind(lead.priority_rank)
        .bind(&lead.custom_fields)
        .bind(&lead.notes)
        .bind(&lead.status)
        .bind(lead.do_not_call)
        .bind(lead.updated_at)
        .bind(status_given || flag_given == Some(true))
        .bind(flag_given.is_some())
        .bind(status_given)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        match res {
            Ok(0) => Err(Error::conflict(
                "the lead is being dialled: change its status when the call has ended",
            )),
            Ok(_) => self.lead(tenant_id, id).await,
            Err(e) if crate::tenancy::is_unique_violation(&e) => Err(Error::conflict(
                "another lead of this campaign has this phone number",
            )),
            Err(e) => Err(e.into()),
        }
    }
}
