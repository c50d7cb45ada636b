//! Streaming CSV lead import.
//!
//! A blocking thread parses the file with the `csv` crate and sends batches of records over a
//! bounded channel; the async side validates, normalizes, de-duplicates (within the file and
//! against the campaign), drops DNC numbers and inserts, all inside one transaction, so an
//! import is all-or-nothing and re-uploading the same file inserts nothing. Memory stays
//! bounded by the batch size plus one normalized number per accepted row.
//!
//! Every row lands in exactly one bucket: `invalid`, `duplicates`, `dnc` or `valid`, so
//! `total = valid + invalid + duplicates + dnc`; `inserted` counts rows written (equal to
//! `valid`: a row is valid once written). Numbers already in the campaign are found by the
//! insert itself (`ON CONFLICT DO NOTHING RETURNING`), one statement per 500-row batch. A row's
//! number is the line of the file where the record starts (the header is line 1), which is
//! the row a spreadsheet shows unless a cell spans lines.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::types::Json;
use tokio::sync::mpsc;

use crate::leads::{priority_rank, PRIORITIES};
use crate::store::{new_id, now, on_pool, Backend, Store};
use crate::validate::{is_email, is_time_zone, Issues};
use crate::{phone, Error, Result};

/// Rows per insert statement and per channel message.
const BATCH: usize = 500;
/// Row errors reported at most (the counts are always complete).
pub const MAX_REPORTED_ERRORS: usize = 1000;

/// Lead fields a CSV column can map to (besides `custom_fields.<name>`).
pub const FIELDS: [&str; 9] = [
    "phone",
    "first_name",
    "last_name",
    "email",
    "country",
    "timezone",
    "type",
    "priority",
    "notes",
];

/// Counts of an import, in the dialer spec's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportResults {
    pub total: u64,
    pub valid: u64,
    pub invalid: u64,
    pub duplicates: u64,
    pub dnc: u64,
    pub inserted: u64,
}

/// Why one row was not inserted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    pub row: u64,
    pub field: String,
    pub value: String,
    pub error: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub results: ImportResults,
    pub errors: Vec<RowError>,
    /// True when more than `MAX_REPORTED_ERRORS` rows failed and the list was cut.
    pub errors_truncated: bool,
}

impl ImportReport {
    fn error(&mut self, row: u64, field: &str, value: &str, error: impl Into<String>) {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(RowError {
                row,
                field: field.to_string(),
                value: value.chars().take(200).collect(),
                error: error.into(),
            });
        } else {
            self.errors_truncated = true;
        }
    }
}

/// Import settings.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// ISO country for national numbers when neither the row nor the campaign's caller id says.
    pub default_country: String,
}

enum Parsed {
    Header(Vec<String>),
    Rows(Vec<(u64, Result<Vec<String>, String>)>),
    Failed(std::io::Error),
}

/// Where each CSV column goes.
enum Target {
    Field(&'static str),
    Custom(String),
}

fn alias(header: &str) -> Option<&'static str> {
    let h: String = header
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect();
    Some(match h.as_str() {
        "phone" | "phone_number" | "phonenumber" | "mobile" | "telephone" | "number"
        | "phone_no" => "phone",
        "first_name" | "firstname" | "first" | "given_name" => "first_name",
        "last_name" | "lastname" | "last" | "surname" | "family_name" => "last_name",
        "email" | "e_mail" | "email_address" => "email",
        "country" | "country_code" | "countrycode" => "country",
        "timezone" | "time_zone" | "tz" => "timezone",
        "type" | "lead_type" => "type",
        "priority" => "priority",
        "notes" | "note" | "comments" | "comment" => "notes",
        _ => return None,
    })
}

fn column_targets(
    header: &[String],
    mapping: Option<&HashMap<String, String>>,
) -> Result<Vec<Target>> {
    let mut issues = Issues::new();
    if let Some(m) = mapping {
        for (col, target) in m {
            if !header.iter().any(|h| h == col) {
                issues.add(
                    format!("field_mapping.{col}"),
                    "no such column in the CSV header",
                );
            }
            let custom_ok = target
                .strip_prefix("custom_fields.")
                .is_some_and(|k| !k.is_empty());
            if !FIELDS.contains(&target.as_str()) && !custom_ok {
                issues.add(
                    format!("field_mapping.{col}"),
                    format!(
                        "unknown lead field {target:?}: use one of {} or custom_fields.<name>",
                        FIELDS.join(", ")
                    ),
                );
            }
        }
    }
    let mut out = Vec::with_capacity(header.len());
    let mut seen = HashSet::new();
    for h in header {
        let explicit = mapping.and_then(|m| m.get(h)).map(String::as_str);
        let target = match explicit {
            Some(t) => match FIELDS.iter().find(|f| **f == t) {
                Some(f) => Target::Field(f),
                None => Target::Custom(t.strip_prefix("custom_fields.").unwrap_or(t).to_string()),
            },
            None => match alias(h) {
                Some(f) if mapping.is_none_or(|m| !m.values().any(|v| v == f)) => Target::Field(f),
                _ => Target::Custom(h.trim().to_string()),
            },
        };
        if let Target::Field(f) = target {
            if !seen.insert(f) {
                issues.add("file", format!("two columns map to {f}"));
            }
        }
        out.push(target);
    }
    if !seen.contains("phone") {
        issues.add(
            "file",
            "no phone column: name one phone (or map one with field_mapping)",
        );
    }
    issues.finish()?;
    Ok(out)
}

/// One row turned into lead columns.
struct Draft {
    row: u64,
    phone: String,
    e164: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    country: Option<String>,
    timezone: Option<String>,
    lead_type: Option<String>,
    priority: &'static str,
    rank: i64,
    notes: Option<String>,
    custom: Map<String, Value>,
}

/// Validates one row; on the first problem, returns (field, value, message).
fn draft(
    row: u64,
    fields: &[String],
    targets: &[Target],
    campaign_country: Option<&str>,
    default_country: &str,
) -> Result<Draft, (String, String, String)> {
    if fields.len() != targets.len() {
        return Err((
            "row".into(),
            String::new(),
            format!("expected {} fields, found {}", targets.len(), fields.len()),
        ));
    }
    let mut d = Draft {
        row,
        phone: String::new(),
        e164: String::new(),
        first_name: None,
        last_name: None,
        email: None,
        country: None,
        timezone: None,
        lead_type: None,
        priority: "normal",
        rank: 1,
        notes: None,
        custom: Map::new(),
    };
    let err = |f: &str, v: &str, m: &str| Err((f.to_string(), v.to_string(), m.to_string()));
    for (value, target) in fields.iter().zip(targets) {
        let v = value.trim();
        let opt = || (!v.is_empty()).then(|| v.to_string());
        match target {
            Target::Custom(k) => {
                if !v.is_empty() {
                    d.custom.insert(k.clone(), Value::String(v.to_string()));
                }
            }
            Target::Field("phone") => d.phone = v.to_string(),
            Target::Field(f @ ("first_name" | "last_name")) => {
                if v.chars().count() > 100 {
                    return err(f, v, "must be at most 100 characters");
                }
                if *f == "first_name" {
                    d.first_name = opt();
                } else {
                    d.last_name = opt();
                }
            }
            Target::Field("email") => {
                if !v.is_empty() && !is_email(v) {
                    return err("email", v, "Invalid email address");
                }
                d.email = opt();
            }
            Target::Field("country") => {
                if !v.is_empty() {
                    if !phone::is_valid_country(v) {
                        return err(
                            "country",
                            v,
                            "Unknown country code: use ISO 3166 alpha-2 such as US",
                        );
                    }
                    d.country = Some(v.to_uppercase());
                }
            }
            Target::Field("timezone") => {
                if !v.is_empty() && !is_time_zone(v) {
                    return err(
                        "timezone",
                        v,
                        "Unknown time zone: use an IANA name such as America/Chicago",
                    );
                }
                d.timezone = opt();
            }
            Target::Field("type") => d.lead_type = opt(),
            Target::Field("priority") => {
                if !v.is_empty() {
                    match priority_rank(v) {
                        Some(r) => {
                            d.rank = r;
                            d.priority = PRIORITIES[r as usize];
                        }
                        None => {
                            return err("priority", v, "must be one of low, normal, high, urgent")
                        }
                    }
                }
            }
            Target::Field("notes") => {
                if v.chars().count() > 2000 {
                    return err("notes", v, "must be at most 2000 characters");
                }
                d.notes = opt();
            }
            Target::Field(_) => {}
        }
    }
    let hint = d
        .country
        .as_deref()
        .or(campaign_country)
        .unwrap_or(default_country);
    match phone::normalize(&d.phone, Some(hint)) {
        Ok(n) => {
            d.e164 = n.e164;
            if d.country.is_none() {
                d.country = n.country;
            }
            if d.timezone.is_none() {
                d.timezone = n.timezone;
            }
            Ok(d)
        }
        Err(p) => {
            let msg = match p {
                phone::PhoneProblem::Empty => "Phone number is required".to_string(),
                _ => p.to_string(),
            };
            Err(("phone".into(), d.phone.clone(), msg))
        }
    }
}

fn parse_file<R: Read>(reader: R, tx: mpsc::Sender<Parsed>) {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let mut first = true;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let io = match e.into_kind() {
                    csv::ErrorKind::Io(io) => io,
                    other => {
                        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{other:?}"))
                    }
                };
                let _ = tx.blocking_send(Parsed::Failed(io));
                return;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        let fields: Result<Vec<String>, String> = record
            .iter()
            .map(|f| {
                String::from_utf8(f.to_vec()).map_err(|_| "row is not valid UTF-8 text".to_string())
            })
            .collect();
        if first {
            first = false;
            let header = fields
                .unwrap_or_default()
                .into_iter()
                .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
                .collect();
            if tx.blocking_send(Parsed::Header(header)).is_err() {
                return;
            }
            continue;
        }
        if record.len() == 1
            && record
                .get(0)
                .is_some_and(|f| f.iter().all(u8::is_ascii_whitespace))
        {
            continue; // blank line
        }
        batch.push((line, fields));
        if batch.len() == BATCH
            && tx
                .blocking_send(Parsed::Rows(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH),
                )))
                .is_err()
        {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Parsed::Rows(batch));
    }
}

impl Store {
    /// Imports leads from a CSV stream into a campaign of the tenant.
    pub async fn import_leads<R: Read + Send + 'static>(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        mapping: Option<HashMap<String, String>>,
        reader: R,
        opts: &ImportOptions,
    ) -> Result<ImportReport> {
        let campaign = self.campaign(tenant_id, campaign_id).await?;
        let campaign_country = phone::normalize(&campaign.caller_id, None)
            .ok()
            .and_then(|n| n.country);
        let (tx, mut rx) = mpsc::channel(4);
        let parser = tokio::task::spawn_blocking(move || parse_file(reader, tx));
        let mut report = ImportReport::default();
        let mut seen: HashMap<String, u64> = HashMap::new();
        let mut targets: Option<Vec<Target>> = None;
        let dnc_sql = |n: usize| {
            format!(
                "SELECT phone FROM dnc_numbers WHERE tenant_id = $1 AND phone IN ({})",
                placeholders(2, n)
            )
        };
        let backend = self.backend();
        let result: Result<()> = on_pool!(self, p => {
            let mut txn = p.begin().await?;
            if backend == Backend::Postgres {
                // Plan each batch for the table as it is now: a cached generic plan made while
                // the campaign was empty would scan it whole for every later batch.
                sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(&mut *txn).await?;
            }
            while let Some(msg) = rx.recv().await {
                let rows = match msg {
                    Parsed::Failed(e) => return Err(Error::Io(e)),
                    Parsed::Header(h) => {
                        targets = Some(column_targets(&h, mapping.as_ref())?);
                        continue;
                    }
                    Parsed::Rows(rows) => rows,
                };
                let Some(targets) = targets.as_ref() else { continue };
                let mut drafts = Vec::with_capacity(rows.len());
                for (line, fields) in rows {
                    report.results.total += 1;
                    let fields = match fields {
                        Ok(f) => f,
                        Err(msg) => {
                            report.results.invalid += 1;
                            report.error(line, "row", "", msg);
                            continue;
                        }
                    };
                    match draft(line, &fields, targets, campaign_country.as_deref(), &opts.default_country) {
                        Err((field, value, msg)) => {
                            report.results.invalid += 1;
                            report.error(line, &field, &value, msg);
                        }
                        Ok(d) => {
                            if let Some(first) = seen.get(&d.e164) {
                                report.results.duplicates += 1;
                                report.error(line, "phone", &d.phone, format!("Duplicate of row {first}"));
                            } else {
                                seen.insert(d.e164.clone(), line);
                                drafts.push(d);
                            }
                        }
                    }
                }
                if drafts.is_empty() {
                    continue;
                }
                let sql = dnc_sql(drafts.len());
                let mut q = sqlx::query_scalar::<_, String>(&sql).bind(tenant_id);
                for d in &drafts {
                    q = q.bind(d.e164.clone());
                }
                let dnc: HashSet<String> = q.fetch_all(&mut *txn).await?.into_iter().collect();
                let mut keep = Vec::with_capacity(drafts.len());
                for d in drafts {
                    if dnc.contains(&d.e164) {
                        report.results.dnc += 1;
                        report.error(d.row, "phone", &d.phone, "Number is on the do-not-call list");
                    } else {
                        keep.push(d);
                    }
                }
                if keep.is_empty() {
                    continue;
                }
                // Numbers already in the campaign are the ones the insert skips (ON CONFLICT):
                // one statement per batch finds and inserts.
                let offered: Vec<(u64, String, String)> = keep.iter().map(|d| (d.row, d.phone.clone(), d.e164.clone())).collect();
                let ts = now();
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO leads (id, campaign_id, tenant_id, phone, phone_normalized, first_name, last_name, email, country, timezone, \
                     lead_type, priority, priority_rank, custom_fields, notes, status, call_attempts, do_not_call, created_at, updated_at) ",
                );
                qb.push_values(keep, |mut b, d| {
                    b.push_bind(new_id())
                        .push_bind(campaign_id.to_string())
                        .push_bind(tenant_id.to_string())
                        .push_bind(d.phone)
                        .push_bind(d.e164)
                        .push_bind(d.first_name)
                        .push_bind(d.last_name)
                        .push_bind(d.email)
                        .push_bind(d.country)
                        .push_bind(d.timezone)
                        .push_bind(d.lead_type)
                        .push_bind(d.priority)
                        .push_bind(d.rank)
                        .push_bind(Json(d.custom))
                        .push_bind(d.notes)
                        .push_bind("pending")
                        .push_bind(0_i64)
                        .push_bind(false)
                        .push_bind(ts)
                        .push_bind(ts);
                });
                qb.push(" ON CONFLICT (campaign_id, phone_normalized) DO NOTHING RETURNING phone_normalized");
                let inserted: HashSet<String> = qb.build_query_scalar::<String>().fetch_all(&mut *txn).await?.into_iter().collect();
                for (row, phone, e164) in &offered {
                    if !inserted.contains(e164) {
                        report.results.duplicates += 1;
                        report.error(*row, "phone", phone, "Already a lead of this campaign");
                    }
                }
                report.results.valid += inserted.len() as u64;
                report.results.inserted += inserted.len() as u64;
            }
            if targets.is_none() {
                return Err(Error::field("file", "the file is empty: expected a header line and rows"));
            }
            sqlx::query("UPDATE campaigns SET total_leads = total_leads + $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
                .bind(report.results.inserted as i64)
                .bind(now())
                .bind(tenant_id)
                .bind(campaign_id)
                .execute(&mut *txn)
                .await?;
            txn.commit().await?;
            Ok(())
        });
        drop(rx);
        let _ = parser.await;
        result?;
        report.errors.sort_by_key(|e| e.row);
        Ok(report)
    }
}

/// `$start, $start+1, ...` for `n` parameters.
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The CSV template offered for download.
pub const TEMPLATE_CSV: &str =
    "phone,first_name,last_name,email,country,timezone,priority,notes,company\n\
+14155552671,Sara,Ahmed,sara@example.com,US,America/Los_Angeles,normal,VIP customer,ABC Corp\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn h(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn headers_map_by_alias_and_rest_is_custom() {
        let t = column_targets(&h(&["Phone Number", "First Name", "Company"]), None).unwrap();
        assert!(matches!(t[0], Target::Field("phone")));
        assert!(matches!(t[1], Target::Field("first_name")));
        assert!(matches!(&t[2], Target::Custom(k) if k == "Company"));
    }

    #[test]
    fn mapping_must_name_real_columns_and_fields() {
        let m: HashMap<String, String> = [
            ("Tel".to_string(), "phone".to_string()),
            ("X".to_string(), "nope".to_string()),
        ]
        .into();
        let Err(Error::Validation { issues }) = column_targets(&h(&["Tel", "Name"]), Some(&m))
        else {
            panic!("expected validation error")
        };
        assert_eq!(issues.len(), 2, "{issues:?}");
    }

    #[test]
    fn phone_column_is_required() {
        assert!(column_targets(&h(&["name"]), None).is_err());
    }

    #[test]
    fn wrong_field_count_is_a_row_error() {
        let t = column_targets(&h(&["phone", "first_name"]), None).unwrap();
        let e = draft(3, &h(&["+14155552671"]), &t, None, "US")
            .err()
            .unwrap();
        assert_eq!(e.0, "row");
    }
}
