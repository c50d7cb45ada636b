//! The hopper: leads of a campaign that may be dialled now, best first (priority, then age),
//! claimed atomically (`pending` → `queued`) so several engine instances on one PostgreSQL
//! never dial the same lead twice. Eligible: pending, due (`next_call_at` ≤ now), attempts
//! left, not flagged do-not-call, not on the tenant's DNC list (checked again at dial time
//! by the caller), inside the campaign's schedule, and inside calling hours in the lead's
//! own time zone (the campaign's zone when the lead has none).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::hours::CallingWindow;
use super::retry::NextStep;
use crate::campaigns::Campaign;
use crate::leads::{Lead, COLS};
use crate::store::{now as store_now, on_pool, Store};
use crate::Result;

/// The zone calling hours are checked in for a lead.
pub fn lead_zone(lead: &Lead, campaign: &Campaign) -> Tz {
    lead.timezone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .or_else(|| campaign.timezone.parse().ok())
        .unwrap_or(Tz::UTC)
}

impl Store {
    /// Claims up to `n` dialable leads of `campaign` at `now`.
    pub async fn claim_leads(
        &self,
        campaign: &Campaign,
        now: DateTime<Utc>,
        n: usize,
    ) -> Result<Vec<Lead>> {
        if n == 0
            || campaign.schedule_start.is_some_and(|s| now < s)
            || campaign.schedule_end.is_some_and(|e| now >= e)
        {
            return Ok(Vec::new());
        }
        let window =
            CallingWindow::from_strings(&campaign.calling_hours_start, &campaign.calling_hours_end);
        let page = (n * 4).clamp(50, 500) as i64;
        let sql = format!(
            "SELECT {COLS} FROM leads l WHERE l.tenant_id = $1 AND l.campaign_id = $2 AND l.status = 'pending' AND l.do_not_call = FALSE \
             AND (l.next_call_at IS NULL OR l.next_call_at <= $3) AND l.call_attempts < $4 \
             AND NOT EXISTS (SELECT 1 FROM dnc_numbers d WHERE d.tenant_id = l.tenant_id AND d.phone = l.phone_normalized) \
             ORDER BY l.priority_rank DESC, l.created_at, l.id LIMIT $5 OFFSET $6"
        );
        let mut claimed = Vec::with_capacity(n);
        for round in 0..10i64 {
            let rows: Vec<Lead> = on_pool!(self, p => sqlx::query_as(&sql)
                .bind(&campaign.tenant_id)
                .bind(&campaign.id)
                .bind(now)
                .bind(campaign.retry_policy.max_attempts)
                .bind(page)
                .bind(round * page)
                .fetch_all(p)
                .await)?;
            let exhausted = (rows.len() as i64) < page;
            for lead in rows {
                if claimed.len() == n {
                    break;
                }
                if !window.allows(now, lead_zone(&lead, campaign)) {
                    continue;
                }
                let ok = on_pool!(self, p => sqlx::query("UPDATE leads SET status = 'queued', updated_at = $1 WHERE id = $2 AND status = 'pending'")
                    .bind(store_now())
                    .bind(&lead.id)
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected()))?;
                if ok == 1 {
                    claimed.push(Lead {
                        status: "queued".into(),
                        ..lead
                    });
                }
            }
            if claimed.len() == n || exhausted {
                break;
            }
        }
        Ok(claimed)
    }

    /// Records an attempt's end on the lead: attempts + 1, last call time and disposition, and
    /// the next status from `next_step`.
    pub async fn finish_attempt(
        &self,
        tenant_id: &str,
        lead_id: &str,
        disposition: &str,
        step: NextStep,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let (status, next) = match step {
            NextStep::Completed => ("completed", None),
            NextStep::RetryAt(t) => ("pending", Some(t)),
            NextStep::GiveUp => ("failed", None),
            NextStep::DoNotCall => ("dnc", None),
        };
        on_pool!(self, p => sqlx::query(
            "UPDATE leads SET call_attempts = call_attempts + 1, last_call_at = $1, last_disposition = $2, status = $3, next_call_at = $4, \
             do_not_call = (do_not_call OR $5), updated_at = $6 WHERE tenant_id = $7 AND id = $8",
        )
        .bind(at)
        .bind(disposition)
        .bind(status)
        .bind(next)
        .bind(status == "dnc")
        .bind(store_now())
        .bind(tenant_id)
        .bind(lead_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Puts claimed but undialled leads back (a paused campaign). Leads being called stay
    /// `calling`: freeing one would let it be dialled again while its call is up.
    pub async fn release_queued(&self, tenant_id: &str, campaign_id: &str) -> Result<u64> {
        Ok(
            on_pool!(self, p => sqlx::query("UPDATE leads SET status = 'pending', updated_at = $1 WHERE tenant_id = $2 AND campaign_id = $3 AND status = 'queued'")
            .bind(store_now())
            .bind(tenant_id)
            .bind(campaign_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?,
        )
    }
}
