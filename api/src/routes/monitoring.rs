//! Live views: `GET /api/calls/metrics/realtime` (the cold-caller spec's shape) and
//! `GET /api/health/monitoring` (process and database state, no token needed).

use axum::extract::State;
use axum::Json as AxumJson;
use serde::Serialize;
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RealtimeResponse {
    pub success: bool,
    #[schema(value_type = Object)]
    pub system: Value,
    #[schema(value_type = Object)]
    pub calls: Value,
    #[schema(value_type = Object)]
    pub performance: Value,
    #[schema(value_type = Vec<Object>)]
    #[serde(rename = "activeCalls")]
    pub active_calls: Vec<Value>,
}

/// Quality words of the cold-caller spec from a MOS (0 = unknown).
fn quality_word(mos: f64) -> &'static str {
    match mos {
        m if m <= 0.0 => "unknown",
        m if m >= 4.0 => "excellent",
        m if m >= 3.6 => "good",
        m if m >= 3.1 => "fair",
        _ => "poor",
    }
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |p| p * 4096)
}

/// Active calls with live quality, today's totals, and system state.
#[utoipa::path(get, operation_id = "monitoring_realtime", path = "/api/calls/metrics/realtime", tag = "calls", security(("bearer" = [])),
    responses((status = 200, body = RealtimeResponse), (status = 401, body = crate::error::ErrorBody)))]
pub async fn realtime(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<AxumJson<RealtimeResponse>> {
    let now = chrono::Utc::now();
    let live = st.store.live_calls(&auth.tenant_id, now).await?;
    let active_calls = live
        .active
        .iter()
        .map(|c| {
            let q = c.quality.clone().unwrap_or(Value::Null);
            json!({
                "id": c.id,
                "phoneNumber": c.caller_phone,
                "status": c.status,
                "duration": c.start_time.map(|s| (now - s).num_seconds().max(0)),
                "agentId": c.agent_id,
                "campaignId": c.campaign_id,
                "quality": {"latency": q.get("latency").or(q.get("rtt")), "jitter": q.get("jitter"), "packetLoss": q.get("packet_loss"), "mos": q.get("mos_score")},
                "recording": c.has_recording,
            })
        })
        .collect();
    Ok(AxumJson(RealtimeResponse {
        success: true,
        system: json!({"status": "online", "sipRegistered": st.telephony.as_ref().is_some_and(|t| t.summary().registered > 0), "connectionQuality": quality_word(live.avg_mos), "uptime": st.started.elapsed().as_secs()}),
        calls: json!({"active": live.connecting + live.connected, "total": live.total, "todayTotal": live.today_total, "connecting": live.connecting, "connected": live.connected, "recording": live.recording}),
        performance: json!({"averageLatency": live.avg_latency, "averageJitter": live.avg_jitter, "packetLoss": live.avg_packet_loss, "averageMos": live.avg_mos, "callQuality": quality_word(live.avg_mos), "systemLoad": load_average()}),
        active_calls,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MonitoringResponse {
    pub success: bool,
    #[schema(value_type = Object)]
    pub data: Value,
}

/// Process, database and event-bus state.
#[utoipa::path(get, operation_id = "monitoring_health", path = "/api/health/monitoring", tag = "health", responses((status = 200, body = MonitoringResponse)))]
pub async fn monitoring(State(st): State<AppState>) -> AxumJson<MonitoringResponse> {
    let t = std::time::Instant::now();
    let db_ok = tokio::time::timeout(std::time::Duration::from_secs(2), st.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let db_ms = t.elapsed().as_secs_f64() * 1000.0;
    AxumJson(MonitoringResponse {
        success: true,
        data: json!({
            "status": if db_ok { "ok" } else { "degraded" },
            "uptime": st.started.elapsed().as_secs(),
            "version": env!("CARGO_PKG_VERSION"),
            "memory": {"rss": rss_bytes()},
            "systemLoad": load_average(),
            "database": {"status": if db_ok { "ok" } else { "unreachable" }, "latencyMs": db_ms},
            "events": {"subscribers": st.events.subscribers()},
        }),
    })
}
