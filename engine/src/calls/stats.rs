//! Call statistics and analytics, all computed by SQL aggregates over the same WHERE clause
//! as the list (never by loading rows).
//!
//! Definitions: answered = status answered / in-progress / connected / completed; missed =
//! status no-answer / busy / canceled / cancelled, or outcome missed; connected (analytics) =
//! answered; converted = outcome or disposition in interested / qualified / converted / sale;
//! quality averages read the `quality` JSON (jitter, packet_loss, mos_score, latency or rtt/2).

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::CallFilter;
use crate::store::args::{bind_args, Arg};
use crate::store::{on_pool, Backend, Store};
use crate::{Error, Result};

/// The call-log spec's `GET /api/calls/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallStats {
    pub total_calls: i64,
    pub answered_calls: i64,
    pub missed_calls: i64,
    /// Seconds.
    pub total_duration: i64,
    /// Seconds, over calls with a duration.
    pub average_duration: f64,
    pub call_outcome_breakdown: BTreeMap<String, i64>,
    pub calls_by_direction: BTreeMap<String, i64>,
    pub calls_by_status: BTreeMap<String, i64>,
}

/// The dialer spec's `GET /api/calls/stats/summary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StatsSummary {
    pub total_calls: i64,
    pub answered_calls: i64,
    pub voicemail_calls: i64,
    pub no_answer_calls: i64,
    pub busy_calls: i64,
    pub failed_calls: i64,
    pub human_answered: i64,
    pub machine_answered: i64,
    pub avg_duration: f64,
    pub avg_talk_time: f64,
    pub total_cost: f64,
}

/// One row of `GET /api/calls/stats/by-disposition`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DispositionCount {
    pub disposition: String,
    pub count: i64,
}

/// The cold-caller spec's `GET /api/calls/analytics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Analytics {
    pub summary: AnalyticsSummary,
    pub outcomes: BTreeMap<String, i64>,
    pub quality: QualityAverages,
    pub trends: Trends,
    pub agents: Vec<GroupRow>,
    pub campaigns: Vec<GroupRow>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsSummary {
    pub total_calls: i64,
    pub connected_calls: i64,
    pub recorded_calls: i64,
    /// HH:MM:SS
    pub average_call_duration: String,
    /// Percent of connected calls that converted.
    pub conversion_rate: f64,
    /// Percent of calls that connected.
    pub connection_rate: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QualityAverages {
    pub average_latency: f64,
    pub average_jitter: f64,
    pub average_packet_loss: f64,
    #[serde(rename = "averageMOS")]
    pub average_mos: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trends {
    pub calls_per_day: f64,
    pub peak_hours: Vec<PeakHour>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PeakHour {
    /// UTC hour 0..=23.
    pub hour: i64,
    pub calls: i64,
}

/// Per-agent or per-campaign aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupRow {
    pub id: String,
    pub total_calls: i64,
    pub connected_calls: i64,
    pub average_duration: f64,
}

const ANSWERED: &str = "status IN ('answered', 'in-progress', 'connected', 'completed')";
const CONVERTED: &str = "(outcome IN ('interested', 'qualified', 'converted', 'sale') OR disposition IN ('interested', 'qualified', 'converted', 'sale'))";

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn hms(secs: f64) -> String {
    let s = secs.round().max(0.0) as i64;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

impl Store {
    async fn group_counts(
        &self,
        col: &str,
        where_sql: &str,
        args: &[Arg],
    ) -> Result<BTreeMap<String, i64>> {
        let sql = format!("SELECT COALESCE({col}, 'unknown') AS k, COUNT(*) AS n FROM calls{where_sql} GROUP BY COALESCE({col}, 'unknown')");
        let rows: Vec<(String, i64)> =
            on_pool!(self, p => bind_args!(sqlx::query_as(&sql), args).fetch_all(p).await)?;
        Ok(rows.into_iter().collect())
    }

    /// `GET /api/calls/stats` over the list filters: one scan grouped by (outcome, direction,
    /// status); every figure is summed from those few groups.
    pub async fn call_stats(&self, tenant_id: &str, f: &CallFilter) -> Result<CallStats> {
        let w = f.where_clause(tenant_id, self.backend())?;
        let sql = format!(
            "SELECT COALESCE(outcome, 'unknown') AS o, direction AS d, status AS s, COUNT(*) AS n, \
             CAST(COALESCE(SUM(duration), 0) AS BIGINT) AS dur, COUNT(duration) AS with_dur \
             FROM calls{} GROUP BY COALESCE(outcome, 'unknown'), direction, status",
            w.sql()
        );
        let groups: Vec<(String, String, String, i64, i64, i64)> =
            on_pool!(self, p => bind_args!(sqlx::query_as(&sql), &w.args).fetch_all(p).await)?;
        let mut st = CallStats::default();
        let mut with_duration = 0i64;
        for (outcome, direction, status, n, dur, with_dur) in groups {
            st.total_calls += n;
            st.total_duration += dur;
            with_duration += with_dur;
            if ["answered", "in-progress", "connected", "completed"].contains(&status.as_str()) {
                st.answered_calls += n;
            }
            if ["no-answer", "busy", "canceled", "cancelled"].contains(&status.as_str())
                || outcome == "missed"
            {
                st.missed_calls += n;
            }
            *st.call_outcome_breakdown.entry(outcome).or_default() += n;
            *st.calls_by_direction.entry(direction).or_default() += n;
            *st.calls_by_status.entry(status).or_default() += n;
        }
        st.average_duration = if with_duration > 0 {
            round2(st.total_duration as f64 / with_duration as f64)
        } else {
            0.0
        };
        Ok(st)
    }

    /// `GET /api/calls/stats/summary` (campaign and date filters).
    pub async fn stats_summary(&self, tenant_id: &str, f: &CallFilter) -> Result<StatsSummary> {
        let w = f.where_clause(tenant_id, self.backend())?;
        let count = |cond: &str| {
            format!("CAST(COALESCE(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END), 0) AS BIGINT)")
        };
        let sql = format!(
            "SELECT COUNT(*) AS total, {} AS answered, {} AS voicemail, {} AS no_answer, {} AS busy, {} AS failed, {} AS human, {} AS machine, \
             COALESCE(AVG(CAST(duration AS DOUBLE PRECISION)), 0.0) AS avg_duration, COALESCE(AVG(CAST(talk_time AS DOUBLE PRECISION)), 0.0) AS avg_talk, \
             COALESCE(SUM(cost), 0.0) AS cost FROM calls{}",
            count("disposition = 'answered'"),
            count("disposition = 'voicemail'"),
            count("(disposition = 'no_answer' OR status = 'no-answer')"),
            count("(disposition = 'busy' OR status = 'busy')"),
            count("(disposition = 'failed' OR status = 'failed')"),
            count("answered_by = 'human'"),
            count("answered_by LIKE 'machine%'"),
            w.sql()
        );
        Ok(on_pool!(self, p => {
            let r = bind_args!(sqlx::query(&sql), &w.args).fetch_one(p).await?;
            StatsSummary {
                total_calls: r.try_get("total")?,
                answered_calls: r.try_get("answered")?,
                voicemail_calls: r.try_get("voicemail")?,
                no_answer_calls: r.try_get("no_answer")?,
                busy_calls: r.try_get("busy")?,
                failed_calls: r.try_get("failed")?,
                human_answered: r.try_get("human")?,
                machine_answered: r.try_get("machine")?,
                avg_duration: round2(r.try_get("avg_duration")?),
                avg_talk_time: round2(r.try_get("avg_talk")?),
                total_cost: round2(r.try_get("cost")?),
            }
        }))
    }

    /// `GET /api/calls/stats/by-disposition`, most frequent first.
    pub async fn stats_by_disposition(
        &self,
        tenant_id: &str,
        f: &CallFilter,
    ) -> Result<Vec<DispositionCount>> {
        let w = f.where_clause(tenant_id, self.backend())?;
        let sql = format!(
            "SELECT disposition AS k, COUNT(*) AS n FROM calls{} AND disposition IS NOT NULL GROUP BY disposition ORDER BY n DESC, disposition",
            w.sql()
        );
        let rows: Vec<(String, i64)> =
            on_pool!(self, p => bind_args!(sqlx::query_as(&sql), &w.args).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(|(disposition, count)| DispositionCount { disposition, count })
            .collect())
    }

    /// `GET /api/calls/analytics`: `period` day | week | month back from `now`.
    pub async fn analytics(
        &self,
        tenant_id: &str,
        period: &str,
        agent_id: Option<String>,
        campaign_id: Option<String>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Analytics> {
        let days = match period {
            "day" => 1,
            "week" => 7,
            "month" => 30,
            _ => return Err(Error::field("period", "must be day, week or month")),
        };
        let f = CallFilter {
            agent_id,
            campaign_id,
            start_date: Some((now - chrono::Duration::days(days)).to_rfc3339()),
            end_date: Some(now.to_rfc3339()),
            ..Default::default()
        };
        let w = f.where_clause(tenant_id, self.backend())?;
        let ws = w.sql();
        let backend = self.backend();
        let num = |k: &str| match backend {
            Backend::Sqlite => format!("CAST(json_extract(quality, '$.{k}') AS DOUBLE PRECISION)"),
            Backend::Postgres => format!("CAST(quality->>'{k}' AS DOUBLE PRECISION)"),
        };
        let hour = match backend {
            Backend::Sqlite => "CAST(strftime('%H', start_time) AS BIGINT)",
            Backend::Postgres => "CAST(EXTRACT(HOUR FROM start_time AT TIME ZONE 'UTC') AS BIGINT)",
        };
        let sql = format!(
            "SELECT COUNT(*) AS total, \
             CAST(COALESCE(SUM(CASE WHEN {ANSWERED} THEN 1 ELSE 0 END), 0) AS BIGINT) AS connected, \
             CAST(COALESCE(SUM(CASE WHEN recording_url IS NOT NULL OR recording_path IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS recorded, \
             CAST(COALESCE(SUM(CASE WHEN {ANSWERED} AND {CONVERTED} THEN 1 ELSE 0 END), 0) AS BIGINT) AS converted, \
             COALESCE(AVG(CAST(duration AS DOUBLE PRECISION)), 0.0) AS avg_duration, \
             COALESCE(AVG(COALESCE({lat}, {rtt} / 2)), 0.0) AS latency, COALESCE(AVG({jit}), 0.0) AS jitter, \
             COALESCE(AVG({loss}), 0.0) AS loss, COALESCE(AVG({mos}), 0.0) AS mos FROM calls{ws}",
            lat = num("latency"),
            rtt = num("rtt"),
            jit = num("jitter"),
            loss = num("packet_loss"),
            mos = num("mos_score"),
        );
        let mut a = Analytics::default();
        let (total, connected, converted) = on_pool!(self, p => {
            let r = bind_args!(sqlx::query(&sql), &w.args).fetch_one(p).await?;
            let total: i64 = r.try_get("total")?;
            let connected: i64 = r.try_get("connected")?;
            a.summary.recorded_calls = r.try_get("recorded")?;
            a.summary.average_call_duration = hms(r.try_get("avg_duration")?);
            a.quality = QualityAverages {
                average_latency: round2(r.try_get("latency")?),
                average_jitter: round2(r.try_get("jitter")?),
                average_packet_loss: round2(r.try_get("loss")?),
                average_mos: round2(r.try_get("mos")?),
            };
            (total, connected, r.try_get::<i64, _>("converted")?)
        });
        a.summary.total_calls = total;
        a.summary.connected_calls = connected;
        a.summary.connection_rate = if total > 0 {
            round2(connected as f64 * 100.0 / total as f64)
        } else {
            0.0
        };
        a.summary.conversion_rate = if connected > 0 {
            round2(converted as f64 * 100.0 / connected as f64)
        } else {
            0.0
        };
        a.outcomes = self.group_counts("outcome", &ws, &w.args).await?;
        a.trends.calls_per_day = round2(total as f64 / days as f64);
        let sql = format!("SELECT {hour} AS h, COUNT(*) AS n FROM calls{ws} AND start_time IS NOT NULL GROUP BY {hour} ORDER BY n DESC, h LIMIT 3");
        let peaks: Vec<(i64, i64)> =
            on_pool!(self, p => bind_args!(sqlx::query_as(&sql), &w.args).fetch_all(p).await)?;
        a.trends.peak_hours = peaks
            .into_iter()
            .map(|(hour, calls)| PeakHour { hour, calls })
            .collect();
        for (col, out) in [
            ("agent_id", &mut a.agents),
            ("campaign_id", &mut a.campaigns),
        ] {
            let sql = format!(
                "SELECT {col} AS id, COUNT(*) AS total, CAST(COALESCE(SUM(CASE WHEN {ANSWERED} THEN 1 ELSE 0 END), 0) AS BIGINT) AS connected, \
                 COALESCE(AVG(CAST(duration AS DOUBLE PRECISION)), 0.0) AS avg FROM calls{ws} AND {col} IS NOT NULL GROUP BY {col} ORDER BY total DESC, id LIMIT 100"
            );
            let rows: Vec<(String, i64, i64, f64)> =
                on_pool!(self, p => bind_args!(sqlx::query_as(&sql), &w.args).fetch_all(p).await)?;
            *out = rows
                .into_iter()
                .map(|(id, total_calls, connected_calls, avg)| GroupRow {
                    id,
                    total_calls,
                    connected_calls,
                    average_duration: round2(avg),
                })
                .collect();
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format() {
        assert_eq!(hms(525.0), "00:08:45");
        assert_eq!(hms(3661.4), "01:01:01");
        assert_eq!(round2(12.345), 12.35);
    }
}
