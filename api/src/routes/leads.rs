//! `/api/leads`: list, get, update, CSV upload and template.

use std::collections::HashMap;
use std::path::PathBuf;

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json as AxumJson;
use serde::{Deserialize, Serialize};
use switchboard_engine::import::{
    ImportOptions, ImportReport, ImportResults, RowError, TEMPLATE_CSV,
};
use switchboard_engine::leads::{Lead, LeadFilter, LeadUpdate, STATUSES};
use switchboard_engine::tenancy::Role;
use tokio::io::AsyncWriteExt;

use super::{check_id, list_response, one_response};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::AppState;

one_response!(LeadResponse, lead, Lead);
list_response!(LeadList, leads, Lead);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Required.
    pub campaign_id: Option<String>,
    /// pending | queued | calling | completed | failed | dnc
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A campaign's leads in import order.
#[utoipa::path(operation_id = "leads_list", get, path = "/api/leads", tag = "leads", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = LeadList), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    q: Query<ListQuery>,
) -> ApiResult<AxumJson<LeadList>> {
    let Some(cid) = q.campaign_id.as_deref() else {
        return Err(ApiError::field("campaign_id", "is required"));
    };
    if q.status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(ApiError::field(
            "status",
            "must be one of pending, queued, calling, completed, failed, dnc",
        ));
    }
    st.store
        .campaign(&auth.tenant_id, check_id(cid, "campaign")?)
        .await?;
    let f = LeadFilter {
        campaign_id: cid.to_string(),
        status: q.status.clone(),
        limit: q.limit,
        offset: q.offset,
    };
    let (limit, offset) = switchboard_engine::store::page(q.limit, q.offset);
    let (items, total) = st.store.leads(&auth.tenant_id, &f).await?;
    Ok(AxumJson(LeadList::new(items, limit, offset, total)))
}

/// One lead.
#[utoipa::path(operation_id = "leads_get", get, path = "/api/leads/{id}", tag = "leads", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = LeadResponse), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<AxumJson<LeadResponse>> {
    Ok(AxumJson(LeadResponse::new(
        st.store
            .lead(&auth.tenant_id, check_id(&id, "lead")?)
            .await?,
    )))
}

/// Update a lead's fields (`null` clears an optional one).
#[utoipa::path(operation_id = "leads_update", put, path = "/api/leads/{id}", tag = "leads", params(("id" = String, Path)), request_body = LeadUpdate, security(("bearer" = [])),
    responses((status = 200, body = LeadResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<LeadUpdate>,
) -> ApiResult<AxumJson<LeadResponse>> {
    auth.require(Role::Supervisor)?;
    let lead = st
        .store
        .update_lead(&auth.tenant_id, check_id(&id, "lead")?, body)
        .await?;
    Ok(AxumJson(LeadResponse::with_message(
        lead,
        "Lead updated successfully",
    )))
}

/// The dialer spec's upload response, plus `data` with the same report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadResponse {
    pub success: bool,
    pub message: String,
    pub results: ImportResults,
    pub errors: Vec<RowError>,
    pub errors_truncated: bool,
    pub data: ImportReport,
}

/// Multipart form of the upload (for the OpenAPI document).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The CSV file (header line first).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// The campaign to add the leads to.
    campaign_id: String,
    /// JSON object: CSV column → lead field (phone, first_name, last_name, email, country,
    /// timezone, type, priority, notes, or custom_fields.<name>).
    field_mapping: Option<String>,
}

/// Deletes the spooled upload however the request ends.
struct Spool(PathBuf);
impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Import leads from a CSV file into a campaign. Each row is valid, invalid, a duplicate
/// (in the file or already in the campaign) or on the DNC list; only valid rows are
/// inserted, all in one transaction, so uploading the same file again inserts none.
#[utoipa::path(operation_id = "leads_upload", post, path = "/api/leads/upload", tag = "leads", request_body(content = UploadForm, content_type = "multipart/form-data"), security(("bearer" = [])),
    responses((status = 200, body = UploadResponse), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn upload(
    State(st): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<AxumJson<UploadResponse>> {
    auth.require(Role::Supervisor)?;
    let limit = st.config.upload_max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit + 64 * 1024) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut mp =
        mp.map_err(|e| ApiError::BadRequest(format!("expected a multipart/form-data body: {e}")))?;
    let mut campaign_id = None;
    let mut mapping = None;
    let mut spool: Option<Spool> = None;
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    };
    while let Some(mut field) = mp.next_field().await.map_err(bad)? {
        match field.name().unwrap_or_default() {
            "campaign_id" => {
                campaign_id = Some(field.text().await.map_err(bad)?.trim().to_string())
            }
            "field_mapping" => {
                let text = field.text().await.map_err(bad)?;
                if !text.trim().is_empty() {
                    let m: HashMap<String, String> = serde_json::from_str(&text).map_err(|e| {
                        ApiError::field(
                            "field_mapping",
                            format!("must be a JSON object of column name to lead field: {e}"),
                        )
                    })?;
                    mapping = Some(m);
                }
            }
            "file" => {
                tokio::fs::create_dir_all(&st.config.spool_dir)
                    .await
                    .map_err(|e| ApiError::Internal(Box::new(e)))?;
                let path = st
                    .config
                    .spool_dir
                    .join(format!("upload-{}.csv", uuid::Uuid::now_v7()));
                let guard = Spool(path.clone());
                let mut f = tokio::fs::File::create(&path)
                    .await
                    .map_err(|e| ApiError::Internal(Box::new(e)))?;
                let mut written: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    written += chunk.len() as u64;
                    if written > limit {
                        return Err(ApiError::PayloadTooLarge { limit });
                    }
                    f.write_all(&chunk)
                        .await
                        .map_err(|e| ApiError::Internal(Box::new(e)))?;
                }
                f.flush()
                    .await
                    .map_err(|e| ApiError::Internal(Box::new(e)))?;
                spool = Some(guard);
            }
            _ => {}
        }
    }
    let Some(cid) = campaign_id.filter(|c| !c.is_empty()) else {
        return Err(ApiError::field("campaign_id", "is required"));
    };
    let Some(spool) = spool else {
        return Err(ApiError::field(
            "file",
            "is required: attach the CSV as the form field `file`",
        ));
    };
    check_id(&cid, "campaign")?;
    let file = std::fs::File::open(&spool.0).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let opts = ImportOptions {
        default_country: st.config.default_country.clone(),
    };
    let report = st
        .store
        .import_leads(
            &auth.tenant_id,
            &cid,
            mapping,
            std::io::BufReader::with_capacity(64 * 1024, file),
            &opts,
        )
        .await?;
    drop(spool);
    st.store
        .audit(
            &auth.tenant_id,
            Some(&auth.user_id),
            "leads.upload",
            "campaign",
            Some(&cid),
            serde_json::to_value(&report.results).unwrap_or_default(),
        )
        .await?;
    Ok(AxumJson(UploadResponse {
        success: true,
        message: "CSV processed successfully".into(),
        results: report.results.clone(),
        errors: report.errors.clone(),
        errors_truncated: report.errors_truncated,
        data: report,
    }))
}

/// A CSV file with the header the importer understands and one example row.
#[utoipa::path(operation_id = "leads_template", get, path = "/api/leads/template/csv", tag = "leads", security(("bearer" = [])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 401, body = crate::error::ErrorBody)))]
pub async fn template(_auth: Auth) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"leads-template.csv\"",
            ),
        ],
        TEMPLATE_CSV,
    )
}
