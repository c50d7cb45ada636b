//! The recording columns of a call: set after the object is stored, cleared on delete, and
//! listed for `GET /api/calls/recordings`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Call, CallRow, COLS};
use crate::store::args::{bind_args, Arg, Where};
use crate::store::{now, on_pool, Store};
use crate::Result;

/// What is known of a stored recording.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RecordingMeta {
    /// The storage key (`tenants/{tenant}/calls/{call}.{ext}`).
    pub path: String,
    /// wav | mp3 | ogg | webm | flac
    pub format: String,
    pub duration_secs: i64,
    pub channels: i64,
    pub sample_rate: i64,
    pub bit_rate: Option<i64>,
    pub size: i64,
}

/// A page of calls with recordings.
#[derive(Debug, Clone, Default)]
pub struct RecordingFilter {
    pub format: Option<String>,
    pub uploaded_from: Option<DateTime<Utc>>,
    pub limit: i64,
    pub offset: i64,
}

impl Store {
    /// Records a stored recording on the call (URL pointing at our download route); returns
    /// the call as it was before, for the audit trail and to delete a replaced object.
    pub async fn set_recording(
        &self,
        tenant_id: &str,
        id: &str,
        m: &RecordingMeta,
        url: &str,
        user_id: Option<&str>,
    ) -> Result<(CallRow, Call)> {
        let before = self.call_row(tenant_id, id).await?;
        let mut row = before.clone();
        row.recording_path = Some(m.path.clone());
        row.recording_format = Some(m.format.clone());
        row.recording_duration = Some(m.duration_secs);
        row.recording_channels = Some(m.channels);
        row.recording_sample_rate = Some(m.sample_rate);
        row.recording_bit_rate = m.bit_rate;
        row.recording_size = Some(m.size);
        row.recording_uploaded_at = Some(now());
        row.recording_url = Some(url.to_string());
        let call = self
            .commit_call_change(before.clone(), row, user_id, "call.recording")
            .await?;
        Ok((before, call))
    }

    /// Clears the recording columns; returns the row as it was.
    pub async fn clear_recording(
        &self,
        tenant_id: &str,
        id: &str,
        user_id: Option<&str>,
    ) -> Result<CallRow> {
        let before = self.call_row(tenant_id, id).await?;
        let mut row = before.clone();
        row.recording_path = None;
        row.recording_format = None;
        row.recording_duration = None;
        row.recording_channels = None;
        row.recording_sample_rate = None;
        row.recording_bit_rate = None;
        row.recording_size = None;
        row.recording_uploaded_at = None;
        row.recording_url = None;
        row.recording_sid = None;
        self.commit_call_change(before.clone(), row, user_id, "call.recording_delete")
            .await?;
        Ok(before)
    }

    /// Calls with a stored recording, newest upload first, and the total.
    pub async fn recordings(
        &self,
        tenant_id: &str,
        f: &RecordingFilter,
    ) -> Result<(Vec<CallRow>, i64)> {
        let mut w = Where::new();
        w.and("tenant_id = ?", [Arg::Text(tenant_id.into())])
            .and("deleted_at IS NULL AND recording_path IS NOT NULL", []);
        if let Some(fmt) = &f.format {
            w.and("recording_format = ?", [Arg::Text(fmt.clone())]);
        }
        if let Some(from) = f.uploaded_from {
            w.and("recording_uploaded_at >= ?", [Arg::Time(from)]);
        }
        let count_sql = format!("SELECT COUNT(*) FROM calls{}", w.sql());
        let total: i64 = on_pool!(self, p => bind_args!(sqlx::query_scalar(&count_sql), &w.args).fetch_one(p).await)?;
        let n = w.next();
        let sql = format!("SELECT {COLS} FROM calls{} ORDER BY recording_uploaded_at DESC, id DESC LIMIT ${} OFFSET ${}", w.sql(), n, n + 1);
        w.args.push(Arg::I64(f.limit.clamp(1, 100)));
        w.args.push(Arg::I64(f.offset.max(0)));
        let rows: Vec<CallRow> =
            on_pool!(self, p => bind_args!(sqlx::query_as(&sql), &w.args).fetch_all(p).await)?;
        Ok((rows, total))
    }
}
