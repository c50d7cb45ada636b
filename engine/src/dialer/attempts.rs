//! What the dialing engine writes: the start of an attempt (synchronous, before the INVITE
//! leaves, so a crash can never let a lead be dialled beyond `max_attempts` or twice at once),
//! the write-behind batch of call transitions and lead results, and the start-up recovery.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use super::retry::NextStep;
use crate::calls::CallRow;
use crate::campaigns::{Campaign, COLS as CAMPAIGN_COLS};
use crate::leads::Lead;
use crate::store::{now as store_now, on_pool, Store};
use crate::Result;

/// Changes to a call row; `None` leaves a column as it is. The disposition is written only
/// when the row has none: an agent's disposition (`POST /api/calls/:id/end`) wins over the
/// engine's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallPatch {
    pub status: Option<&'static str>,
    pub answer_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub answered_by: Option<String>,
    pub agent_id: Option<String>,
    pub disposition: Option<String>,
    pub outcome: Option<String>,
    pub duration: Option<i64>,
    pub talk_time: Option<i64>,
    pub quality: Option<Value>,
    pub external_call_id: Option<String>,
    pub recording_path: Option<String>,
    pub recording_duration: Option<i64>,
    pub recording_size: Option<i64>,
}

/// One write of the engine's write-behind queue.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineWrite {
    Call {
        tenant_id: String,
        call_id: String,
        patch: CallPatch,
    },
    /// The attempt's result on the lead (its attempt was counted when it started).
    LeadDone {
        tenant_id: String,
        lead_id: String,
        disposition: String,
        step: NextStep,
        at: DateTime<Utc>,
    },
    /// An agent's status as the engine sees it (available, busy, break, offline).
    AgentStatus {
        tenant_id: String,
        agent_id: String,
        status: &'static str,
    },
    /// The lead asked not to be called again: `dnc`, whatever its state.
    LeadDnc { tenant_id: String, lead_id: String },
    /// A call of the campaign connected a person to an agent.
    CampaignCompleted {
        tenant_id: String,
        campaign_id: String,
    },
}

/// What start-up recovery found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Calls left in a non-final state, closed as interrupted.
    pub calls_closed: u64,
    /// Leads put back to `pending`.
    pub leads_requeued: u64,
    /// Leads out of attempts, marked `failed`.
    pub leads_failed: u64,
}

impl Store {
    /// Every active campaign of every tenant (the engine runs them).
    pub async fn active_campaigns(&self) -> Result<Vec<Campaign>> {
        let sql = format!("SELECT {CAMPAIGN_COLS} FROM campaigns WHERE status = 'active'");
        let rows: Vec<crate::campaigns::CampaignRow> =
            on_pool!(self, p => sqlx::query_as(&sql).fetch_all(p).await)?;
        Ok(rows.into_iter().map(Campaign::from).collect())
    }

    /// Starts an attempt on a claimed lead, in one transaction: the lead goes `queued →
    /// calling` with its attempt counted (refused when it is not `queued` any more or has no
    /// attempts left), the call row is inserted and the campaign's `calls_made` grows. Returns
    /// false when the lead was not dialable (nothing written).
    pub async fn begin_attempt(
        &self,
        campaign: &Campaign,
        lead: &Lead,
        call: &CallRow,
    ) -> Result<bool> {
        let now = store_now();
        let insert = format!(
            "INSERT INTO calls ({}) VALUES ({})",
            crate::calls::COLS,
            crate::calls::placeholders()
        );
        let ok = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE leads SET status = 'calling', call_attempts = call_attempts + 1, last_call_at = $1, updated_at = $1 \
                 WHERE tenant_id = $2 AND id = $3 AND status = 'queued' AND call_attempts < $4 AND do_not_call = FALSE",
            )
            .bind(now)
            .bind(&campaign.tenant_id)
            .bind(&lead.id)
            .bind(campaign.retry_policy.max_attempts)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                crate::calls::bind_call(sqlx::query(&insert), call).execute(&mut *tx).await?;
                sqlx::query("UPDATE campaigns SET calls_made = calls_made + 1, updated_at = $1 WHERE tenant_id = $2 AND id = $3")
                    .bind(now)
                    .bind(&campaign.tenant_id)
                    .bind(&campaign.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<bool, sqlx::Error>(true)
            } else {
                tx.rollback().await?;
                Ok(false)
            }
        })?;
        Ok(ok)
    }

    /// Preview dialing: counts an attempt on a lead the agent chose (pending or claimed, with
    /// attempts left) and marks it `calling`; false when it is not dialable now.
    pub async fn begin_preview_attempt(&self, campaign: &Campaign, lead: &Lead) -> Result<bool> {
        let now = store_now();
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE leads SET status = 'calling', call_attempts = call_attempts + 1, last_call_at = $1, updated_at = $1 \
             WHERE tenant_id = $2 AND id = $3 AND status IN ('pending', 'queued') AND call_attempts < $4 AND do_not_call = FALSE",
        )
        .bind(now)
        .bind(&campaign.tenant_id)
        .bind(&lead.id)
        .bind(campaign.retry_policy.max_attempts)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        if n == 1 {
            on_pool!(self, p => sqlx::query("UPDATE campaigns SET calls_made = calls_made + 1, updated_at = $1 WHERE tenant_id = $2 AND id = $3")
                .bind(now)
                .bind(&campaign.tenant_id)
                .bind(&campaign.id)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))?;
        }
        Ok(n == 1)
    }

    /// Applies a batch of engine writes in one transaction, in order.
    pub async fn apply_engine_writes(&self, writes: &[EngineWrite]) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let now = store_now();
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for w in writes {
                match w {
                    EngineWrite::Call { tenant_id, call_id, patch: c } => {
                        sqlx::query(
                            "UPDATE calls SET status = COALESCE($1, status), answer_time = COALESCE($2, answer_time), \
                             end_time = COALESCE($3, end_time), answered_by = COALESCE($4, answered_by), agent_id = COALESCE($5, agent_id), \
                             disposition = COALESCE(disposition, $6), outcome = COALESCE($7, outcome), duration = COALESCE($8, duration), \
                             talk_time = COALESCE($9, talk_time), quality = COALESCE($10, quality), external_call_id = COALESCE($11, external_call_id), \
                             recording_path = COALESCE($12, recording_path), recording_duration = COALESCE($13, recording_duration), \
                             recording_size = COALESCE($14, recording_size), \
                             recording_format = CASE WHEN $12 IS NULL THEN recording_format ELSE 'wav' END, \
                             recording_channels = CASE WHEN $12 IS NULL THEN recording_channels ELSE 2 END, \
                             recording_sample_rate = CASE WHEN $12 IS NULL THEN recording_sample_rate ELSE 8000 END, \
                             updated_at = $15 WHERE tenant_id = $16 AND id = $17",
                        )
                        .bind(c.status)
                        .bind(c.answer_time)
                        .bind(c.end_time)
                        .bind(&c.answered_by)
                        .bind(&c.agent_id)
                        .bind(&c.disposition)
                        .bind(&c.outcome)
                        .bind(c.duration)
                        .bind(c.talk_time)
                        .bind(c.quality.clone().map(Json))
                        .bind(&c.external_call_id)
                        .bind(&c.recording_path)
                        .bind(c.recording_duration)
                        .bind(c.recording_size)
                        .bind(now)
                        .bind(tenant_id)
                        .bind(call_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    EngineWrite::LeadDone { tenant_id, lead_id, disposition, step, at } => {
                        let (status, next) = match step {
                            NextStep::Completed => ("completed", None),
                            NextStep::RetryAt(t) => ("pending", Some(*t)),
                            NextStep::GiveUp => ("failed", None),
                            NextStep::DoNotCall => ("dnc", None),
                        };
                        sqlx::query(
                            "UPDATE leads SET last_call_at = $1, last_disposition = $2, status = $3, next_call_at = $4, \
                             do_not_call = (do_not_call OR $5), updated_at = $6 WHERE tenant_id = $7 AND id = $8 AND status = 'calling'",
                        )
                        .bind(*at)
                        .bind(disposition)
                        .bind(status)
                        .bind(next)
                        .bind(status == "dnc" && disposition == "dnc")
                        .bind(now)
                        .bind(tenant_id)
                        .bind(lead_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    EngineWrite::AgentStatus { tenant_id, agent_id, status } => {
                        sqlx::query("UPDATE agents SET status = $1, updated_at = $2, last_active_at = $2 WHERE tenant_id = $3 AND id = $4")
                            .bind(*status)
                            .bind(now)
                            .bind(tenant_id)
                            .bind(agent_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    EngineWrite::LeadDnc { tenant_id, lead_id } => {
                        sqlx::query(
                            "UPDATE leads SET status = 'dnc', do_not_call = TRUE, last_disposition = 'dnc', next_call_at = NULL, updated_at = $1 \
                             WHERE tenant_id = $2 AND id = $3",
                        )
                        .bind(now)
                        .bind(tenant_id)
                        .bind(lead_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    EngineWrite::CampaignCompleted { tenant_id, campaign_id } => {
                        sqlx::query("UPDATE campaigns SET calls_completed = calls_completed + 1, updated_at = $1 WHERE tenant_id = $2 AND id = $3")
                            .bind(now)
                            .bind(tenant_id)
                            .bind(campaign_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// At start-up, before any dialing: calls the engine left open are closed as interrupted,
    /// their leads (and claimed, undialled ones) go back to `pending` — or `failed` when out of
    /// attempts. Assumes one engine per database.
    pub async fn recover_interrupted(&self) -> Result<Recovery> {
        let now = store_now();
        let r = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let calls_closed = sqlx::query(
                "UPDATE calls SET status = 'failed', outcome = 'interrupted', disposition = COALESCE(disposition, 'failed'), \
                 end_time = COALESCE(end_time, $1), updated_at = $1 \
                 WHERE status IN ('initiated', 'queued', 'ringing', 'answered', 'in-progress') AND campaign_id IS NOT NULL AND direction = 'outbound' AND deleted_at IS NULL",
            )
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let leads_failed = sqlx::query(
                "UPDATE leads SET status = 'failed', last_disposition = COALESCE(last_disposition, 'failed'), updated_at = $1 \
                 WHERE status = 'calling' AND call_attempts >= (SELECT c.max_attempts FROM campaigns c WHERE c.id = leads.campaign_id)",
            )
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let leads_requeued = sqlx::query(
                "UPDATE leads SET status = 'pending', updated_at = $1 WHERE status IN ('calling', 'queued')",
            )
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok::<Recovery, sqlx::Error>(Recovery { calls_closed, leads_requeued, leads_failed })
        })?;
        Ok(r)
    }
}

impl Store {
    /// Agents stored as available (they get their legs called when the engine starts).
    pub async fn available_agent_ids(&self) -> Result<Vec<(String, String)>> {
        Ok(on_pool!(self, p => sqlx::query_as::<_, (String, String)>(
            "SELECT tenant_id, id FROM agents WHERE status = 'available' AND is_active = TRUE",
        )
        .fetch_all(p)
        .await)?)
    }

    /// Claimed leads never dialled go back to `pending` (leads being called are untouched).
    pub async fn release_claimed(&self, tenant_id: &str, campaign_id: &str) -> Result<u64> {
        Ok(on_pool!(self, p => sqlx::query(
            "UPDATE leads SET status = 'pending', updated_at = $1 WHERE tenant_id = $2 AND campaign_id = $3 AND status = 'queued'",
        )
        .bind(store_now())
        .bind(tenant_id)
        .bind(campaign_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// A claimed lead found on the DNC list at dial time: never dialled, marked `dnc`.
    pub async fn mark_lead_dnc(&self, tenant_id: &str, lead_id: &str) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "UPDATE leads SET status = 'dnc', do_not_call = TRUE, last_disposition = 'dnc', updated_at = $1 WHERE tenant_id = $2 AND id = $3 AND status = 'queued'",
        )
        .bind(store_now())
        .bind(tenant_id)
        .bind(lead_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Pending leads of a campaign whose numbers joined the DNC list: marked `dnc` (they will
    /// never be dialled; the hopper skips them).
    pub async fn sweep_dnc_leads(&self, tenant_id: &str, campaign_id: &str) -> Result<u64> {
        Ok(on_pool!(self, p => sqlx::query(
            "UPDATE leads SET status = 'dnc', do_not_call = TRUE, last_disposition = COALESCE(last_disposition, 'dnc'), updated_at = $1 \
             WHERE tenant_id = $2 AND campaign_id = $3 AND status = 'pending' \
             AND (do_not_call = TRUE OR EXISTS (SELECT 1 FROM dnc_numbers d WHERE d.tenant_id = leads.tenant_id AND d.phone = leads.phone_normalized))",
        )
        .bind(store_now())
        .bind(tenant_id)
        .bind(campaign_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// (live answers, abandons) of a campaign's calls since `since`, to seed the rolling
    /// abandon rate when the campaign (re)starts.
    pub async fn abandon_counts(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        since: DateTime<Utc>,
    ) -> Result<(u64, u64)> {
        let (live, ab): (i64, i64) = on_pool!(self, p => sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN disposition IN ('answered', 'abandoned') THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN disposition = 'abandoned' THEN 1 ELSE 0 END), 0) \
             FROM calls WHERE tenant_id = $1 AND campaign_id = $2 AND start_time >= $3",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(since)
        .fetch_one(p)
        .await)?;
        Ok((live.max(0) as u64, ab.max(0) as u64))
    }

    /// Pending leads with no attempts left (set back to pending by hand) can never be dialled:
    /// marked `failed` so the campaign can complete.
    pub async fn sweep_exhausted_leads(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        max_attempts: i64,
    ) -> Result<u64> {
        Ok(on_pool!(self, p => sqlx::query(
            "UPDATE leads SET status = 'failed', updated_at = $1 \
             WHERE tenant_id = $2 AND campaign_id = $3 AND status = 'pending' AND call_attempts >= $4",
        )
        .bind(store_now())
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(max_attempts)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// Leads of a campaign still to be tried (pending, including future retries) or in progress.
    pub async fn leads_left(&self, tenant_id: &str, campaign_id: &str) -> Result<i64> {
        Ok(on_pool!(self, p => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM leads WHERE tenant_id = $1 AND campaign_id = $2 AND status IN ('pending', 'queued', 'calling')",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_one(p)
        .await)?)
    }

    /// An active campaign with nothing left becomes `completed`. True if it changed.
    pub async fn complete_campaign(&self, tenant_id: &str, campaign_id: &str) -> Result<bool> {
        Ok(on_pool!(self, p => sqlx::query(
            "UPDATE campaigns SET status = 'completed', updated_at = $1 WHERE tenant_id = $2 AND id = $3 AND status = 'active'",
        )
        .bind(store_now())
        .bind(tenant_id)
        .bind(campaign_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }
}
