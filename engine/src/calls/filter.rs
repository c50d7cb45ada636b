//! `GET /api/calls` filters, sorting and pagination, as one WHERE clause shared by the list,
//! its count and the stats.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{Call, CallRow, COLS};
use crate::store::args::{bind_args, Arg, Where};
use crate::store::{on_pool, Backend, Store};
use crate::validate::Issues;
use crate::Result;

/// Every filter the specs name. Dates accept `YYYY-MM-DD` (a whole UTC day; `end_date` is
/// inclusive) or an RFC 3339 instant.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallFilter {
    pub customer_id: Option<String>,
    pub campaign_id: Option<String>,
    pub agent_id: Option<String>,
    pub lead_id: Option<String>,
    /// inbound | outbound
    pub direction: Option<String>,
    pub status: Option<String>,
    pub outcome: Option<String>,
    pub disposition: Option<String>,
    pub answered_by: Option<String>,
    pub twilio_call_sid: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    /// Alias of start_date (dialer spec).
    pub date_from: Option<String>,
    /// Alias of end_date (dialer spec).
    pub date_to: Option<String>,
    /// Seconds.
    pub min_duration: Option<i64>,
    pub max_duration: Option<i64>,
    /// Part of a phone number or of the caller's name.
    pub search: Option<String>,
    pub has_recording: Option<bool>,
    pub has_transcript: Option<bool>,
    /// Comma-separated; every tag must be on the call.
    pub tags: Option<String>,
    /// 1-based page (default 1).
    pub page: Option<i64>,
    /// Items per page, 1..=100 (default 10; 50 when `offset` is used).
    pub limit: Option<i64>,
    /// Instead of `page`.
    pub offset: Option<i64>,
    /// started_at | duration | created_at (default started_at).
    pub sort_by: Option<String>,
    /// asc | desc (default desc).
    pub sort_order: Option<String>,
}

/// The call-log spec's page-based pagination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Page {
    pub current_page: i64,
    pub total_pages: i64,
    pub total_count: i64,
    pub per_page: i64,
    pub has_next: bool,
    pub has_prev: bool,
    pub offset: i64,
}

impl Page {
    /// The arithmetic of a page: `offset` items skipped, `per_page` each, `total` matching.
    pub fn new(offset: i64, per_page: i64, total: i64) -> Self {
        let total_pages = if total == 0 {
            0
        } else {
            (total + per_page - 1) / per_page
        };
        let current_page = offset / per_page + 1;
        Page {
            current_page,
            total_pages,
            total_count: total,
            per_page,
            has_next: offset + per_page < total,
            has_prev: offset > 0,
            offset,
        }
    }
}

fn parse_bound(field: &str, v: &str, end: bool, issues: &mut Issues) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        Ok(d) => {
            let d = if end { d.succ_opt()? } else { d };
            Some(d.and_hms_opt(0, 0, 0)?.and_utc())
        }
        Err(_) => {
            issues.add(field, "must be a date YYYY-MM-DD or an RFC 3339 time");
            None
        }
    }
}

impl CallFilter {
    /// Builds the WHERE clause (tenant and not-deleted included) and checks values.
    pub(crate) fn where_clause(&self, tenant_id: &str, backend: Backend) -> Result<Where> {
        let mut issues = Issues::new();
        let mut w = Where::new();
        w.and("tenant_id = ?", [Arg::Text(tenant_id.into())])
            .and("deleted_at IS NULL", []);
        for (col, v) in [
            ("customer_id", &self.customer_id),
            ("campaign_id", &self.campaign_id),
            ("agent_id", &self.agent_id),
            ("lead_id", &self.lead_id),
            ("direction", &self.direction),
            ("status", &self.status),
            ("outcome", &self.outcome),
            ("disposition", &self.disposition),
            ("answered_by", &self.answered_by),
            ("call_sid", &self.twilio_call_sid),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                w.and(&format!("{col} = ?"), [Arg::Text(v.to_string())]);
            }
        }
        if let Some(d) = self.direction.as_deref() {
            if d != "inbound" && d != "outbound" {
                issues.add("direction", "must be inbound or outbound");
            }
        }
        let from = self.start_date.as_deref().or(self.date_from.as_deref());
        let to = self.end_date.as_deref().or(self.date_to.as_deref());
        let from = from.and_then(|v| parse_bound("start_date", v, false, &mut issues));
        let to_exclusive_day = to.is_some_and(|v| !v.contains('T'));
        let to = to.and_then(|v| parse_bound("end_date", v, true, &mut issues));
        if let Some(f) = from {
            w.and("start_time >= ?", [Arg::Time(f)]);
        }
        if let Some(t) = to {
            w.and(
                if to_exclusive_day {
                    "start_time < ?"
                } else {
                    "start_time <= ?"
                },
                [Arg::Time(t)],
            );
        }
        if let (Some(f), Some(t)) = (from, to) {
            if t < f {
                issues.add("end_date", "must not be before start_date");
            }
        }
        for (field, v, op) in [
            ("min_duration", self.min_duration, ">="),
            ("max_duration", self.max_duration, "<="),
        ] {
            if let Some(n) = v {
                if n < 0 {
                    issues.add(field, "must be ≥ 0");
                }
                w.and(&format!("duration {op} ?"), [Arg::I64(n)]);
            }
        }
        if let Some(s) = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let like = match backend {
                Backend::Sqlite => "LIKE",
                Backend::Postgres => "ILIKE",
            };
            let pat = format!("%{}%", s.replace(['%', '_', '\\'], ""));
            w.and(
                &format!("(from_number {like} ? OR to_number {like} ? OR caller_name {like} ?)"),
                [
                    Arg::Text(pat.clone()),
                    Arg::Text(pat.clone()),
                    Arg::Text(pat),
                ],
            );
        }
        match self.has_recording {
            Some(true) => {
                w.and(
                    "(recording_url IS NOT NULL OR recording_path IS NOT NULL)",
                    [],
                );
            }
            Some(false) => {
                w.and("recording_url IS NULL AND recording_path IS NULL", []);
            }
            None => {}
        }
        match self.has_transcript {
            Some(true) => {
                w.and("transcript IS NOT NULL", []);
            }
            Some(false) => {
                w.and("transcript IS NULL", []);
            }
            None => {}
        }
        if let Some(tags) = self.tags.as_deref() {
            for tag in tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .take(20)
            {
                match backend {
                    Backend::Sqlite => w.and(
                        "EXISTS (SELECT 1 FROM json_each(calls.tags) WHERE json_each.value = ?)",
                        [Arg::Text(tag.into())],
                    ),
                    Backend::Postgres => w.and(
                        "tags @> jsonb_build_array(CAST(? AS TEXT))",
                        [Arg::Text(tag.into())],
                    ),
                };
            }
        }
        issues.finish()?;
        Ok(w)
    }

    /// (limit, offset) from page/limit or limit/offset.
    pub fn window(&self) -> (i64, i64) {
        match (self.offset, self.page) {
            (Some(off), _) => (self.limit.unwrap_or(50).clamp(1, 100), off.max(0)),
            (None, page) => {
                let limit = self.limit.unwrap_or(10).clamp(1, 100);
                (limit, (page.unwrap_or(1).max(1) - 1).saturating_mul(limit))
            }
        }
    }

    fn order(&self) -> Result<String> {
        let mut issues = Issues::new();
        let col = match self.sort_by.as_deref().unwrap_or("started_at") {
            "started_at" | "start_time" => "start_time",
            "duration" => "duration",
            "created_at" => "created_at",
            _ => {
                issues.add("sort_by", "must be started_at, duration or created_at");
                "start_time"
            }
        };
        let dir = match self.sort_order.as_deref().unwrap_or("desc") {
            "asc" => "ASC",
            "desc" => "DESC",
            _ => {
                issues.add("sort_order", "must be asc or desc");
                "DESC"
            }
        };
        issues.finish()?;
        // NULLs last either way; id breaks ties so pages never overlap.
        Ok(format!(" ORDER BY {col} IS NULL, {col} {dir}, id {dir}"))
    }
}

impl Store {
    /// One page of calls and the pagination arithmetic.
    pub async fn calls(&self, tenant_id: &str, f: &CallFilter) -> Result<(Vec<Call>, Page)> {
        let mut w = f.where_clause(tenant_id, self.backend())?;
        let order = f.order()?;
        let (limit, offset) = f.window();
        let count_sql = format!("SELECT COUNT(*) FROM calls{}", w.sql());
        let n = w.next();
        let sql = format!(
            "SELECT {COLS} FROM calls{}{order} LIMIT ${} OFFSET ${}",
            w.sql(),
            n,
            n + 1
        );
        let total: i64 = on_pool!(self, p => bind_args!(sqlx::query_scalar(&count_sql), &w.args).fetch_one(p).await)?;
        w.args.push(Arg::I64(limit));
        w.args.push(Arg::I64(offset));
        let rows: Vec<CallRow> =
            on_pool!(self, p => bind_args!(sqlx::query_as(&sql), &w.args).fetch_all(p).await)?;
        Ok((
            rows.into_iter().map(Call::from).collect(),
            Page::new(offset, limit, total),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_arithmetic() {
        assert_eq!(
            Page::new(0, 20, 95),
            Page {
                current_page: 1,
                total_pages: 5,
                total_count: 95,
                per_page: 20,
                has_next: true,
                has_prev: false,
                offset: 0
            }
        );
        let last = Page::new(80, 20, 95);
        assert_eq!(
            (last.current_page, last.has_next, last.has_prev),
            (5, false, true)
        );
        assert_eq!(Page::new(0, 10, 0).total_pages, 0);
        assert!(!Page::new(0, 10, 10).has_next);
        assert_eq!(Page::new(0, 10, 11).total_pages, 2);
    }

    #[test]
    fn window_from_page_or_offset() {
        let f = CallFilter {
            page: Some(3),
            limit: Some(20),
            ..Default::default()
        };
        assert_eq!(f.window(), (20, 40));
        let f = CallFilter {
            offset: Some(7),
            limit: Some(500),
            ..Default::default()
        };
        assert_eq!(f.window(), (100, 7));
        assert_eq!(CallFilter::default().window(), (10, 0));
        let f = CallFilter {
            page: Some(-4),
            ..Default::default()
        };
        assert_eq!(f.window(), (10, 0));
    }

    #[test]
    fn bad_values_are_named() {
        let f = CallFilter {
            sort_by: Some("name".into()),
            sort_order: Some("up".into()),
            ..Default::default()
        };
        assert!(f.order().is_err());
        let f = CallFilter {
            start_date: Some("yesterday".into()),
            direction: Some("sideways".into()),
            ..Default::default()
        };
        let Err(crate::Error::Validation { issues }) = f.where_clause("t", Backend::Sqlite) else {
            panic!()
        };
        let fields: Vec<_> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["direction", "start_date"]);
    }
}
