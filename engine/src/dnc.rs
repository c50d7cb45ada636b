//! The tenant's do-not-call list. Adding a number also marks the tenant's matching leads
//! `dnc`; removing one does not make those leads dialable again (a person re-consents
//! through a lead update, deliberately).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::{impl_from_row, now, on_pool, page, Store};
use crate::{Error, Result};

/// One number on the list.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DncNumber {
    /// E.164.
    pub phone: String,
    pub reason: Option<String>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}
impl_from_row!(DncNumber {
    phone,
    reason,
    created_by,
    created_at
});

impl Store {
    /// Adds an E.164 number; returns it and whether it was new.
    pub async fn add_dnc(
        &self,
        tenant_id: &str,
        e164: &str,
        reason: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<(DncNumber, bool)> {
        let ts = now();
        let inserted = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let r = sqlx::query("INSERT INTO dnc_numbers (tenant_id, phone, reason, created_by, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, phone) DO NOTHING")
                .bind(tenant_id)
                .bind(e164)
                .bind(reason)
                .bind(user_id)
                .bind(ts)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE leads SET status = 'dnc', do_not_call = TRUE, updated_at = $1 WHERE tenant_id = $2 AND phone_normalized = $3")
                .bind(ts)
                .bind(tenant_id)
                .bind(e164)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            r.rows_affected() == 1
        });
        let row = on_pool!(self, p => sqlx::query_as("SELECT phone, reason, created_by, created_at FROM dnc_numbers WHERE tenant_id = $1 AND phone = $2").bind(tenant_id).bind(e164).fetch_one(p).await)?;
        Ok((row, inserted))
    }

    /// Removes a number; not found when it was not on the list.
    pub async fn remove_dnc(&self, tenant_id: &str, e164: &str) -> Result<()> {
        let r = on_pool!(self, p => sqlx::query("DELETE FROM dnc_numbers WHERE tenant_id = $1 AND phone = $2").bind(tenant_id).bind(e164).execute(p).await.map(|r| r.rows_affected()))?;
        if r == 0 {
            return Err(Error::NotFound {
                entity: "dnc number",
            });
        }
        Ok(())
    }

    pub async fn is_dnc(&self, tenant_id: &str, e164: &str) -> Result<bool> {
        let found: Option<String> = on_pool!(self, p => sqlx::query_scalar("SELECT phone FROM dnc_numbers WHERE tenant_id = $1 AND phone = $2").bind(tenant_id).bind(e164).fetch_optional(p).await)?;
        Ok(found.is_some())
    }

    /// Newest first; `search` matches a part of the number.
    pub async fn dnc_numbers(
        &self,
        tenant_id: &str,
        search: Option<&str>,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<(Vec<DncNumber>, i64)> {
        let (limit, offset) = page(limit, offset);
        let pattern = search.map(|s| format!("%{}%", s.replace(['%', '_'], "")));
        let filter = if pattern.is_some() {
            " AND phone LIKE $2"
        } else {
            " AND $2 IS NULL"
        };
        let sql = format!("SELECT phone, reason, created_by, created_at FROM dnc_numbers WHERE tenant_id = $1{filter} ORDER BY created_at DESC, phone LIMIT $3 OFFSET $4");
        let count_sql = format!("SELECT COUNT(*) FROM dnc_numbers WHERE tenant_id = $1{filter}");
        Ok(on_pool!(self, p => {
            let rows = sqlx::query_as(&sql).bind(tenant_id).bind(pattern.as_deref()).bind(limit).bind(offset).fetch_all(p).await?;
            let total: i64 = sqlx::query_scalar(&count_sql).bind(tenant_id).bind(pattern.as_deref()).fetch_one(p).await?;
            (rows, total)
        }))
    }
}
