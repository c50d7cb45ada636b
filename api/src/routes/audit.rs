//! `/api/audit-log`: who changed what (owner and admin).

use axum::extract::{Query, State};
use axum::Json as AxumJson;
use switchboard_engine::audit::AuditEntry;
use switchboard_engine::tenancy::Role;

use super::{list_response, PageQuery};
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::AppState;

list_response!(AuditList, entries, AuditEntry);

/// The tenant's audit log, newest first.
#[utoipa::path(operation_id = "audit_list", get, path = "/api/audit-log", tag = "audit", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = AuditList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    q: Query<PageQuery>,
) -> ApiResult<AxumJson<AuditList>> {
    auth.require(Role::Admin)?;
    let (limit, offset) = switchboard_engine::store::page(q.limit, q.offset);
    let (items, total) = st
        .store
        .audit_entries(&auth.tenant_id, q.limit, q.offset)
        .await?;
    Ok(AxumJson(AuditList::new(items, limit, offset, total)))
}
