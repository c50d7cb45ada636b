//! Call recordings: upload (multipart, checked by magic bytes, metadata read from the file,
//! Twilio sids verified), metadata and download with HTTP Range, time-limited signed links
//! for players that cannot send a token, the list, and delete.
//!
//! An upload is spooled to disk, stored, and only then recorded on the call; if recording it
//! fails the stored object is deleted, so an interrupted upload leaves neither a partial
//! object nor a dangling row.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as AxumJson;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use switchboard_engine::calls::{CallRow, Page, RecordingFilter, RecordingMeta};
use switchboard_engine::tenancy::Role;
use switchboard_recordings::{sniff, AudioFormat, ByteRange, Key, RecordingStore, SNIFF_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::check_id;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

fn storage(st: &AppState) -> ApiResult<&RecordingStore> {
    st.recordings.as_ref().ok_or(ApiError::Unavailable)
}

fn internal<E: std::error::Error + Send + Sync + 'static>(e: E) -> ApiError {
    ApiError::Internal(Box::new(e))
}

fn rec_err(e: switchboard_recordings::Error) -> ApiError {
    match e {
        switchboard_recordings::Error::NotFound { .. } => ApiError::NotFound {
            entity: "recording",
        },
        switchboard_recordings::Error::UnsupportedFormat => {
            ApiError::UnsupportedMediaType("not an audio file: upload WAV, MP3, OGG, WebM or FLAC")
        }
        other => internal(other),
    }
}

/// What the upload reports of the file.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FileMetadata {
    /// Seconds.
    pub duration: f64,
    pub channels: u16,
    pub sample_rate: u32,
    /// Bits per second.
    pub bit_rate: Option<u32>,
    pub format: String,
    pub mime_type: String,
    /// Bytes.
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UploadData {
    pub call_id: String,
    pub recording_url: String,
    pub recording_path: String,
    pub file_metadata: FileMetadata,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadRecordingResponse {
    pub success: bool,
    pub message: String,
    pub data: UploadData,
}

/// The multipart form (for the OpenAPI document).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RecordingForm {
    /// WAV, MP3, OGG, WebM or FLAC.
    #[schema(value_type = String, format = Binary)]
    recording: Vec<u8>,
    /// Must equal the call's stored call sid (stored when the call has none).
    call_sid: String,
    /// Must equal the call's stored account sid (stored when the call has none).
    account_sid: String,
    /// Informational; the file's own metadata wins.
    duration: Option<String>,
    channels: Option<String>,
    sample_rate: Option<String>,
    audio_format: Option<String>,
}

struct Spool(PathBuf);
impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn download_url(id: &str) -> String {
    format!("/api/calls/{id}/recording?download=true")
}

/// Upload a call's recording.
#[utoipa::path(post, operation_id = "recordings_upload", path = "/api/calls/{id}/recording", tag = "recordings", params(("id" = String, Path)),
    request_body(content = RecordingForm, content_type = "multipart/form-data"), security(("bearer" = [])),
    responses((status = 200, body = UploadRecordingResponse), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody),
        (status = 415, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn upload(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<AxumJson<UploadRecordingResponse>> {
    auth.require(Role::Agent)?;
    let store = storage(&st)?.clone();
    let call = st
        .store
        .call_row(&auth.tenant_id, check_id(&id, "call")?)
        .await?;
    let limit = st.config.recording_max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit + 64 * 1024) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut mp =
        mp.map_err(|e| ApiError::BadRequest(format!("expected a multipart/form-data body: {e}")))?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    };
    let (mut call_sid, mut account_sid, mut spool) = (None, None, None);
    while let Some(mut field) = mp.next_field().await.map_err(bad)? {
        match field.name().unwrap_or_default() {
            "call_sid" => call_sid = Some(field.text().await.map_err(bad)?.trim().to_string()),
            "account_sid" => {
                account_sid = Some(field.text().await.map_err(bad)?.trim().to_string())
            }
            "recording" => {
                tokio::fs::create_dir_all(&st.config.spool_dir)
                    .await
                    .map_err(internal)?;
                let path = st
                    .config
                    .spool_dir
                    .join(format!("recording-{}.part", uuid::Uuid::now_v7()));
                let guard = Spool(path.clone());
                let mut f = tokio::fs::File::create(&path).await.map_err(internal)?;
                let mut written = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    written += chunk.len() as u64;
                    if written > limit {
                        return Err(ApiError::PayloadTooLarge { limit });
                    }
                    f.write_all(&chunk).await.map_err(internal)?;
                }
                f.flush().await.map_err(internal)?;
                spool = Some((guard, written));
            }
            _ => {}
        }
    }
    let Some((spool, size)) = spool else {
        return Err(ApiError::field(
            "recording",
            "is required: attach the audio file as the form field `recording`",
        ));
    };
    let mut issues = switchboard_engine::validate::Issues::new();
    for (field, given, stored) in [
        ("call_sid", &call_sid, &call.call_sid),
        ("account_sid", &account_sid, &call.account_sid),
    ] {
        match (given.as_deref().filter(|s| !s.is_empty()), stored) {
            (None, _) => issues.add(
                field,
                "is required to verify the recording belongs to this call",
            ),
            (Some(g), Some(s)) if g != s => {
                issues.add(field, "does not match the call's stored sid")
            }
            _ => {}
        }
    }
    issues.finish()?;
    let mut head = [0u8; SNIFF_LEN];
    let n = tokio::fs::File::open(&spool.0)
        .await
        .map_err(internal)?
        .read(&mut head)
        .await
        .map_err(internal)?;
    let format = sniff(&head[..n]).ok_or(ApiError::UnsupportedMediaType(
        "not an audio file: upload WAV, MP3, OGG, WebM or FLAC",
    ))?;
    let info = switchboard_recordings::probe_file(spool.0.clone())
        .await
        .map_err(|e| {
            ApiError::field(
                "recording",
                format!("the {} file cannot be read: {e}", format.ext()),
            )
        })?;
    if call.call_sid.is_none() || call.account_sid.is_none() {
        let fill = switchboard_engine::calls::CallInput {
            twilio_call_sid: call_sid.clone(),
            twilio_account_sid: account_sid.clone(),
            ..Default::default()
        };
        st.store
            .update_call(
                &auth.tenant_id,
                &call.id,
                fill,
                &st.config.default_country,
                Some(&auth.user_id),
            )
            .await?;
    }
    let key = Key::for_call(&auth.tenant_id, &call.id, format.ext()).map_err(internal)?;
    store.put_file(&key, &spool.0).await.map_err(rec_err)?;
    drop(spool);
    let meta = RecordingMeta {
        path: key.as_str().to_string(),
        format: format.ext().to_string(),
        duration_secs: info.duration_secs.round() as i64,
        channels: i64::from(info.channels),
        sample_rate: i64::from(info.sample_rate),
        bit_rate: info.bit_rate.map(i64::from),
        size: size as i64,
    };
    let url = download_url(&call.id);
    let (before, _) = match st
        .store
        .set_recording(&auth.tenant_id, &call.id, &meta, &url, Some(&auth.user_id))
        .await
    {
        Ok(v) => v,
        Err(e) => {
            let _ = store.delete(&key).await;
            return Err(e.into());
        }
    };
    if let Some(old) = before.recording_path.filter(|p| p != key.as_str()) {
        if let Ok(old) = Key::parse(&old) {
            let _ = store.delete(&old).await;
        }
    }
    st.events.emit(&auth.tenant_id, switchboard_engine::events::Channel::Recordings, "recordingStopped", call.agent_id.as_deref(), serde_json::json!({"callId": call.id, "duration": info.duration_secs, "format": format.ext()}));
    Ok(AxumJson(UploadRecordingResponse {
        success: true,
        message: "Recording uploaded successfully".into(),
        data: UploadData {
            call_id: call.id,
            recording_url: url,
            recording_path: key.as_str().to_string(),
            file_metadata: FileMetadata {
                duration: info.duration_secs,
                channels: info.channels,
                sample_rate: info.sample_rate,
                bit_rate: info.bit_rate,
                format: format.ext().into(),
                mime_type: format.mime().into(),
                size,
            },
        },
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RecordingQuery {
    /// true: stream the file (Range supported) instead of the metadata.
    pub download: Option<bool>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordingInfo {
    pub call_id: String,
    pub has_recording: bool,
    pub recording_url: Option<String>,
    /// Seconds.
    pub duration: Option<i64>,
    pub uploaded_at: Option<DateTime<Utc>>,
    pub format: Option<String>,
    pub channels: Option<i64>,
    pub sample_rate: Option<i64>,
    pub bit_rate: Option<i64>,
    pub size: Option<i64>,
    /// A link that works without a token until `signed_url_expires_at`.
    pub signed_url: Option<String>,
    pub signed_url_expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordingInfoResponse {
    pub success: bool,
    pub data: RecordingInfo,
}

fn info_of(st: &AppState, r: &CallRow) -> RecordingInfo {
    let has = r.recording_path.is_some();
    let expires = Utc::now()
        + chrono::Duration::from_std(st.config.signed_url_ttl)
            .unwrap_or(chrono::Duration::minutes(15));
    let signed = has.then(|| {
        let sig = switchboard_recordings::sign(
            &st.config.jwt_secret,
            &format!("{}/{}", r.tenant_id, r.id),
            expires.timestamp(),
        );
        format!(
            "/api/recordings/{}/download?tenant={}&expires={}&sig={sig}",
            r.id,
            r.tenant_id,
            expires.timestamp()
        )
    });
    RecordingInfo {
        call_id: r.id.clone(),
        has_recording: has || r.recording_url.is_some(),
        recording_url: r.recording_url.clone(),
        duration: r.recording_duration,
        uploaded_at: r.recording_uploaded_at,
        format: r.recording_format.clone(),
        channels: r.recording_channels,
        sample_rate: r.recording_sample_rate,
        bit_rate: r.recording_bit_rate,
        size: r.recording_size,
        signed_url_expires_at: signed.as_ref().map(|_| expires),
        signed_url: signed,
    }
}

/// Parses a single `Range: bytes=...` (anything else is ignored: the whole file is sent).
fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
    let v = headers
        .get(header::RANGE)?
        .to_str()
        .ok()?
        .trim()
        .strip_prefix("bytes=")?;
    if v.contains(',') {
        return None;
    }
    let (a, b) = v.split_once('-')?;
    match (a.trim(), b.trim()) {
        ("", n) => n.parse().ok().map(ByteRange::Suffix),
        (a, "") => a.parse().ok().map(ByteRange::From),
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
            (b >= a).then(|| ByteRange::Bounded(a..b.saturating_add(1)))
        }
    }
}

async fn stream(st: &AppState, r: &CallRow, headers: &HeaderMap) -> ApiResult<Response> {
    let Some(path) = r.recording_path.as_deref() else {
        return Err(ApiError::NotFound {
            entity: "recording",
        });
    };
    let key = Key::parse(path).map_err(internal)?;
    let range = parse_range(headers);
    let partial = range.is_some();
    let dl = match storage(st)?.get(&key, range).await {
        Ok(d) => d,
        Err(switchboard_recordings::Error::RangeNotSatisfiable { size }) => {
            let mut resp = (StatusCode::RANGE_NOT_SATISFIABLE, "").into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(resp);
        }
        Err(e) => return Err(rec_err(e)),
    };
    let fmt = key.format();
    let len = dl.range.end - dl.range.start;
    let body = Body::from_stream(dl.stream.map(|c| c.map_err(std::io::Error::other)));
    let mut resp = Response::new(body);
    *resp.status_mut() = if partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(fmt.mime()));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"call-{}.{}\"",
        r.id,
        fmt.ext()
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if partial {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            dl.range.start,
            dl.range.end.saturating_sub(1),
            dl.info.size
        )) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

/// The recording's metadata, or with `download=true` the file itself (Range supported;
/// viewers may not download).
#[utoipa::path(get, operation_id = "recordings_get", path = "/api/calls/{id}/recording", tag = "recordings", params(("id" = String, Path), RecordingQuery), security(("bearer" = [])),
    responses((status = 200, body = RecordingInfoResponse), (status = 206, description = "Part of the file"), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 416, description = "Range not satisfiable")))]
pub async fn get(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    q: Query<RecordingQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let r = st
        .store
        .call_row(&auth.tenant_id, check_id(&id, "call")?)
        .await?;
    if q.download == Some(true) {
        auth.require(Role::Agent)?;
        return stream(&st, &r, &headers).await;
    }
    Ok(AxumJson(RecordingInfoResponse {
        success: true,
        data: info_of(&st, &r),
    })
    .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SignedQuery {
    pub tenant: String,
    pub expires: i64,
    pub sig: String,
}

/// Download with a signed link from the metadata (no token; expires).
#[utoipa::path(get, operation_id = "recordings_signed_download", path = "/api/recordings/{id}/download", tag = "recordings", params(("id" = String, Path), SignedQuery),
    responses((status = 200, description = "The file"), (status = 206, description = "Part of the file"), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn signed_download(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: Query<SignedQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let ok = switchboard_recordings::verify(
        &st.config.jwt_secret,
        &format!("{}/{}", q.tenant, id),
        q.expires,
        &q.sig,
        Utc::now().timestamp(),
    );
    if !ok {
        return Err(ApiError::Forbidden("the link is invalid or has expired"));
    }
    let r = st.store.call_row(&q.tenant, check_id(&id, "call")?).await?;
    stream(&st, &r, &headers).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub page: Option<i64>,
    /// 1..=100, default 10.
    pub limit: Option<i64>,
    /// wav | mp3 | ogg | webm | flac
    pub format: Option<String>,
    /// Uploaded on or after this day (YYYY-MM-DD, UTC) or instant.
    pub date_from: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordingPage {
    pub recordings: Vec<RecordingInfo>,
    pub pagination: Page,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordingListResponse {
    pub success: bool,
    pub data: RecordingPage,
}

/// Calls with recordings, newest upload first.
#[utoipa::path(get, operation_id = "recordings_list", path = "/api/calls/recordings", tag = "recordings", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = RecordingListResponse), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    q: Query<ListQuery>,
) -> ApiResult<AxumJson<RecordingListResponse>> {
    if q.format
        .as_deref()
        .is_some_and(|f| AudioFormat::from_ext(f).is_none())
    {
        return Err(ApiError::field(
            "format",
            "must be wav, mp3, ogg, webm or flac",
        ));
    }
    let from = match q.date_from.as_deref() {
        None => None,
        Some(v) => Some(
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
                })
                .map_err(|_| {
                    ApiError::field("dateFrom", "must be YYYY-MM-DD or an RFC 3339 time")
                })?,
        ),
    };
    let limit = q.limit.unwrap_or(10).clamp(1, 100);
    let offset = (q.page.unwrap_or(1).max(1) - 1) * limit;
    let (rows, total) = st
        .store
        .recordings(
            &auth.tenant_id,
            &RecordingFilter {
                format: q.format.clone(),
                uploaded_from: from,
                limit,
                offset,
            },
        )
        .await?;
    let recordings = rows.iter().map(|r| info_of(&st, r)).collect();
    Ok(AxumJson(RecordingListResponse {
        success: true,
        data: RecordingPage {
            recordings,
            pagination: Page::new(offset, limit, total),
        },
    }))
}

/// Delete a call's recording (supervisor and up).
#[utoipa::path(delete, operation_id = "recordings_delete", path = "/api/calls/{id}/recording", tag = "recordings", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = super::MessageResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<AxumJson<super::MessageResponse>> {
    auth.require(Role::Supervisor)?;
    let r = st
        .store
        .call_row(&auth.tenant_id, check_id(&id, "call")?)
        .await?;
    let Some(path) = r.recording_path.clone() else {
        return Err(ApiError::NotFound {
            entity: "recording",
        });
    };
    st.store
        .clear_recording(&auth.tenant_id, &r.id, Some(&auth.user_id))
        .await?;
    if let Ok(key) = Key::parse(&path) {
        if let Err(e) = storage(&st)?.delete(&key).await {
            tracing::warn!(error = %e, "recording object left behind after its row was cleared");
        }
    }
    Ok(AxumJson(super::MessageResponse {
        success: true,
        message: "Recording deleted".into(),
    }))
}
