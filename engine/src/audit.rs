//! The audit log: who did what to which entity, per tenant.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use crate::store::{impl_from_row, new_id, now, on_pool, page, Store};
use crate::Result;

/// One audit entry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub tenant_id: String,
    pub user_id: Option<String>,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: Json<Value>,
    pub created_at: DateTime<Utc>,
}
impl_from_row!(AuditEntry {
    id,
    tenant_id,
    user_id,
    action,
    entity,
    entity_id,
    details,
    created_at
});

impl Store {
    /// Appends an entry; `details` must not carry secrets.
    pub async fn audit(
        &self,
        tenant_id: &str,
        user_id: Option<&str>,
        action: &str,
        entity: &str,
        entity_id: Option<&str>,
        details: Value,
    ) -> Result<()> {
        on_pool!(self, p => sqlx::query(
            "INSERT INTO audit_log (id, tenant_id, user_id, action, entity, entity_id, details, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(tenant_id)
        .bind(user_id)
        .bind(action)
        .bind(entity)
        .bind(entity_id)
        .bind(Json(details))
        .bind(now())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The newest entries first.
    pub async fn audit_entries(
        &self,
        tenant_id: &str,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<(Vec<AuditEntry>, i64)> {
        let (limit, offset) = page(limit, offset);
        let rows = on_pool!(self, p => sqlx::query_as(
            "SELECT id, tenant_id, user_id, action, entity, entity_id, details, created_at FROM audit_log WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(tenant_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
        let total: i64 = on_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE tenant_id = $1").bind(tenant_id).fetch_one(p).await)?;
        Ok((rows, total))
    }
}
