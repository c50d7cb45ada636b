//! Live views over the calls table: active calls now and today's totals (for
//! `GET /api/calls/metrics/realtime`), and calls by status (for Prometheus).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Call, CallRow, COLS};
use crate::store::{on_pool, Store};
use crate::Result;

/// Statuses of a call still being set up.
pub const CONNECTING: [&str; 3] = ["queued", "initiated", "ringing"];
/// Statuses of a call in conversation.
pub const CONNECTED: [&str; 3] = ["answered", "in-progress", "connected"];

/// A tenant's calls right now.
#[derive(Debug, Clone, Default)]
pub struct LiveCalls {
    pub connecting: i64,
    pub connected: i64,
    pub recording: i64,
    pub total: i64,
    pub today_total: i64,
    pub avg_jitter: f64,
    pub avg_latency: f64,
    pub avg_packet_loss: f64,
    pub avg_mos: f64,
    /// At most 100, newest first.
    pub active: Vec<Call>,
}

impl Store {
    /// Active calls (connecting or connected) and today's (UTC) counts of a tenant.
    pub async fn live_calls(&self, tenant_id: &str, now: DateTime<Utc>) -> Result<LiveCalls> {
        let today = now
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc())
            .unwrap_or(now);
        let list = |xs: &[&str]| {
            xs.iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (connecting, connected) = (list(&CONNECTING), list(&CONNECTED));
        let num = |k: &str| match self.backend() {
            crate::Backend::Sqlite => {
                format!("CAST(json_extract(c.quality, '$.{k}') AS DOUBLE PRECISION)")
            }
            crate::Backend::Postgres => format!("CAST(c.quality->>'{k}' AS DOUBLE PRECISION)"),
        };
        let sql = format!(
            "SELECT \
             CAST(COALESCE(SUM(CASE WHEN c.status IN ({connecting}) THEN 1 ELSE 0 END), 0) AS BIGINT) AS connecting, \
             CAST(COALESCE(SUM(CASE WHEN c.status IN ({connected}) THEN 1 ELSE 0 END), 0) AS BIGINT) AS connected, \
             CAST(COALESCE(SUM(CASE WHEN c.status IN ({connected}) AND k.record_calls THEN 1 ELSE 0 END), 0) AS BIGINT) AS recording, \
             COALESCE(AVG(CASE WHEN c.status IN ({connected}) THEN {jit} END), 0.0) AS jitter, \
             COALESCE(AVG(CASE WHEN c.status IN ({connected}) THEN COALESCE({lat}, {rtt} / 2) END), 0.0) AS latency, \
             COALESCE(AVG(CASE WHEN c.status IN ({connected}) THEN {loss} END), 0.0) AS loss, \
             COALESCE(AVG(CASE WHEN c.status IN ({connected}) THEN {mos} END), 0.0) AS mos \
             FROM calls c LEFT JOIN campaigns k ON k.id = c.campaign_id \
             WHERE c.tenant_id = $1 AND c.deleted_at IS NULL AND c.status IN ({connecting}, {connected})",
            jit = num("jitter"),
            lat = num("latency"),
            rtt = num("rtt"),
            loss = num("packet_loss"),
            mos = num("mos_score"),
        );
        let mut live = on_pool!(self, p => {
            let r = sqlx::query(&sql).bind(tenant_id).fetch_one(p).await?;
            LiveCalls {
                connecting: r.try_get("connecting")?,
                connected: r.try_get("connected")?,
                recording: r.try_get("recording")?,
                avg_jitter: r.try_get("jitter")?,
                avg_latency: r.try_get("latency")?,
                avg_packet_loss: r.try_get("loss")?,
                avg_mos: r.try_get("mos")?,
                ..Default::default()
            }
        });
        let (total, today_total): (i64, i64) = on_pool!(self, p => {
            let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM calls WHERE tenant_id = $1 AND deleted_at IS NULL").bind(tenant_id).fetch_one(p).await?;
            let today_total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM calls WHERE tenant_id = $1 AND deleted_at IS NULL AND start_time >= $2").bind(tenant_id).bind(today).fetch_one(p).await?;
            (total, today_total)
        });
        live.total = total;
        live.today_total = today_total;
        let sql = format!("SELECT {COLS} FROM calls WHERE tenant_id = $1 AND deleted_at IS NULL AND status IN ({connecting}, {connected}) ORDER BY created_at DESC, id DESC LIMIT 100");
        let rows: Vec<CallRow> =
            on_pool!(self, p => sqlx::query_as(&sql).bind(tenant_id).fetch_all(p).await)?;
        live.active = rows.into_iter().map(Call::from).collect();
        Ok(live)
    }

    /// Calls by status across tenants (live calls only), for Prometheus.
    pub async fn calls_by_status(&self) -> Result<Vec<(String, i64)>> {
        let list = CONNECTING
            .iter()
            .chain(CONNECTED.iter())
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT status, COUNT(*) FROM calls WHERE deleted_at IS NULL AND status IN ({list}) GROUP BY status ORDER BY status");
        Ok(on_pool!(self, p => sqlx::query_as(&sql).fetch_all(p).await)?)
    }
}
