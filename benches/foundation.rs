//! Foundation benchmarks: CSV import throughput and `GET /api/leads` latency on a big campaign.
//!
//! ```text
//! SWITCHBOARD_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench foundation
//! ```
//!
//! 1. Import: a generated 100,000-row CSV (distinct, valid US numbers) through
//!    `Store::import_leads` into a fresh campaign, then the same file again (the
//!    all-duplicates path, which must insert nothing).
//! 2. Listing: the campaign is filled to `SWITCHBOARD_BENCH_LEADS` leads (default 1,000,000)
//!    with more 100k-row imports, then `GET /api/leads` goes through the real router (tower
//!    `oneshot`, in-process, real bearer token) at shallow offsets, at a deep offset (half the
//!    leads) and with `status=pending`. The page SELECT and the COUNT the handler also runs are
//!    then timed on their own with sqlx, with their query plans, to show where the time goes.
//!
//! SQLite always (a WAL file in a temp dir); PostgreSQL when `SWITCHBOARD_TEST_PG_URL` is set
//! (a fresh schema, dropped afterwards). Results: a table at the end, and one JSON line per
//! measurement (`{"bench": ...}`) on stdout as they are taken; progress goes to stderr.
//!
//! Knobs: `SWITCHBOARD_BENCH_LEADS` (leads in the listed campaign), `SWITCHBOARD_BENCH_REQUESTS`
//! (requests per listing scenario, default 2000), `SWITCHBOARD_BENCH_BUDGET_SECS` (time cap per
//! listing scenario, default 40; the request count actually run is reported).
#![allow(clippy::type_complexity)] // scenario tables in a bench; clarity over aliases

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use switchboard_api::{router, ApiConfig, AppState};
use switchboard_engine::import::ImportOptions;
use switchboard_engine::{Store, StoreOptions};
use tower::ServiceExt;

/// Rows of the import file (and of each bulk-load chunk).
const IMPORT_ROWS: u64 = 100_000;
const WARMUP: usize = 100;
const WARMUP_BUDGET: Duration = Duration::from_secs(10);
/// Timed runs of each statement in the direct-SQL breakdown (time-capped too).
const SQL_RUNS: usize = 30;
const SQL_BUDGET: Duration = Duration::from_secs(15);

/// Area codes and exchanges that libphonenumber accepts as US numbers.
const AREA_CODES: [u32; 5] = [212, 312, 415, 646, 718];

fn exchanges() -> Vec<u32> {
    // NXX 200..=999 without the N11 service codes and without 555.
    (200..1000).filter(|x| x % 100 != 11 && *x != 555).collect()
}

/// The `i`-th bench number, formatted as `+1 415 2xx xxxx`; distinct for distinct `i`.
fn phone(i: u64, exch: &[u32]) -> String {
    let sub = i % 10_000;
    let j = i / 10_000;
    let area = AREA_CODES[(j % AREA_CODES.len() as u64) as usize];
    let x = exch[((j / AREA_CODES.len() as u64) % exch.len() as u64) as usize];
    format!("+1 {area} {x} {sub:04}")
}

/// Writes rows `start..start + n` as a CSV with columns phone,first_name,last_name,email,company.
fn write_csv(path: &Path, start: u64, n: u64) -> anyhow::Result<()> {
    let exch = exchanges();
    assert!((start + n) / 10_000 < (AREA_CODES.len() * exch.len()) as u64);
    let mut w = BufWriter::new(File::create(path)?);
    writeln!(w, "phone,first_name,last_name,email,company")?;
    for i in start..start + n {
        writeln!(
            w,
            "{},First{i},Last{i},lead{i}@example.com,Company {}",
            phone(i, &exch),
            i % 997
        )?;
    }
    w.flush()?;
    Ok(())
}

fn env_u64(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// One row of the final table.
enum Row {
    Import {
        backend: &'static str,
        phase: &'static str,
        rows: u64,
        inserted: u64,
        secs: f64,
    },
    Latency {
        backend: &'static str,
        what: String,
        leads: u64,
        stats: Stats,
    },
}

struct Stats {
    n: usize,
    p50: f64,
    p99: f64,
    mean: f64,
    max: f64,
}

impl Stats {
    fn of(mut ms: Vec<f64>) -> Stats {
        assert!(!ms.is_empty());
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        // Nearest-rank percentiles.
        let pct = |p: f64| ms[(((p / 100.0) * n as f64).ceil() as usize).clamp(1, n) - 1];
        Stats {
            n,
            p50: pct(50.0),
            p99: pct(99.0),
            mean: ms.iter().sum::<f64>() / n as f64,
            max: ms[n - 1],
        }
    }
}

struct Bench {
    rows: Vec<Row>,
    plans: Vec<(String, Vec<String>)>,
    requests: usize,
    budget: Duration,
}

impl Bench {
    fn import(
        &mut self,
        backend: &'static str,
        phase: &'static str,
        rows: u64,
        inserted: u64,
        secs: f64,
    ) {
        println!(
            "{}",
            json!({"bench": "import", "backend": backend, "phase": phase, "rows": rows,
                   "inserted": inserted, "secs": secs, "rows_per_sec": rows as f64 / secs})
        );
        self.rows.push(Row::Import {
            backend,
            phase,
            rows,
            inserted,
            secs,
        });
    }

    fn latency(
        &mut self,
        backend: &'static str,
        bench: &str,
        what: String,
        leads: u64,
        ms: Vec<f64>,
    ) {
        let stats = Stats::of(ms);
        println!(
            "{}",
            json!({"bench": bench, "backend": backend, "scenario": what, "leads": leads,
                   "n": stats.n, "p50_ms": stats.p50, "p99_ms": stats.p99,
                   "mean_ms": stats.mean, "max_ms": stats.max})
        );
        self.rows.push(Row::Latency {
            backend,
            what,
            leads,
            stats,
        });
    }

    fn print_table(&self) {
        println!();
        println!("CSV import through Store::import_leads");
        println!(
            "{:<9} {:<22} {:>9} {:>9} {:>9} {:>11}",
            "backend", "phase", "rows", "inserted", "wall s", "rows/s"
        );
        for r in &self.rows {
            if let Row::Import {
                backend,
                phase,
                rows,
                inserted,
                secs,
            } = r
            {
                println!(
                    "{backend:<9} {phase:<22} {rows:>9} {inserted:>9} {secs:>9.2} {:>11.0}",
                    *rows as f64 / secs
                );
            }
        }
        println!();
        println!("Latency (ms)");
        println!(
            "{:<9} {:<58} {:>8} {:>6} {:>9} {:>9} {:>9} {:>9}",
            "backend", "what", "leads", "n", "p50", "p99", "mean", "max"
        );
        for r in &self.rows {
            if let Row::Latency {
                backend,
                what,
                leads,
                stats: s,
            } = r
            {
                println!(
                    "{backend:<9} {what:<58} {leads:>8} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                    s.n, s.p50, s.p99, s.mean, s.max
                );
            }
        }
        for (title, plan) in &self.plans {
            println!();
            println!("{title}");
            for line in plan {
                println!("    {line}");
            }
        }
    }
}

/// The API in-process, with one registered owner.
struct Api {
    router: axum::Router,
    token: String,
    tenant: String,
}

async fn send(router: &axum::Router, req: Request<Body>) -> anyhow::Result<(StatusCode, Vec<u8>)> {
    let resp = router.clone().oneshot(req).await?;
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
    Ok((status, bytes.to_vec()))
}

impl Api {
    async fn new(store: Store, spool: PathBuf) -> anyhow::Result<Api> {
        let mut cfg = ApiConfig::new(b"bench-secret-bench-secret-bench-secret!".to_vec(), spool);
        cfg.rate_limit_per_ip = 0;
        cfg.rate_limit_per_user = 0;
        let router = router(AppState::new(store, cfg));
        let mut api = Api {
            router,
            token: String::new(),
            tenant: String::new(),
        };
        let (status, body) = api
            .json(
                Method::POST,
                "/api/auth/register",
                Some(json!({"email": "bench@switchboard.test", "password": "securePassword123", "first_name": "Bench"})),
            )
            .await?;
        ensure!(status == StatusCode::CREATED, "register: {status} {body}");
        api.token = body["token"].as_str().context("no token")?.to_string();
        api.tenant = body["user"]["tenant_id"]
            .as_str()
            .context("no tenant_id")?
            .to_string();
        Ok(api)
    }

    fn request(&self, method: Method, uri: &str, body: Option<&Value>) -> Request<Body> {
        let mut b = Request::builder().method(method).uri(uri);
        if !self.token.is_empty() {
            b = b.header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        }
        match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("valid request")
    }

    async fn json(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let (status, bytes) = send(&self.router, self.request(method, uri, body.as_ref())).await?;
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, v))
    }

    async fn campaign(&self, name: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .json(
                Method::POST,
                "/api/campaigns",
                Some(json!({"name": name, "caller_id": "+14155551234"})),
            )
            .await?;
        ensure!(
            status == StatusCode::CREATED,
            "create campaign: {status} {body}"
        );
        Ok(body["campaign"]["id"]
            .as_str()
            .context("no campaign id")?
            .to_string())
    }
}

async fn import_file(
    store: &Store,
    tenant: &str,
    campaign: &str,
    path: &Path,
) -> anyhow::Result<(switchboard_engine::import::ImportResults, f64)> {
    let file = File::open(path)?;
    let opts = ImportOptions {
        default_country: "US".into(),
    };
    let t = Instant::now();
    let report = store
        .import_leads(tenant, campaign, None, file, &opts)
        .await?;
    let secs = t.elapsed().as_secs_f64();
    if report.results.invalid > 0 {
        bail!(
            "{} invalid rows, first errors: {:?}",
            report.results.invalid,
            &report.errors[..report.errors.len().min(5)]
        );
    }
    Ok((report.results, secs))
}

/// Where the direct-SQL breakdown connects.
enum Direct {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

const LIST_COLS: &str = "id, campaign_id, tenant_id, phone, phone_normalized, first_name, last_name, email, country, timezone, \
    lead_type, priority, priority_rank, custom_fields, notes, status, call_attempts, last_call_at, next_call_at, \
    do_not_call, last_disposition, created_at, updated_at";

/// The two statements `Store::leads` runs per request (copied from engine/src/leads.rs).
fn list_sql(status: bool) -> (String, String) {
    let status_sql = if status {
        " AND status = $3"
    } else {
        " AND $3 IS NULL"
    };
    (
        format!("SELECT {LIST_COLS} FROM leads WHERE tenant_id = $1 AND campaign_id = $2{status_sql} ORDER BY created_at, id LIMIT $4 OFFSET $5"),
        format!("SELECT COUNT(*) FROM leads WHERE tenant_id = $1 AND campaign_id = $2{status_sql}"),
    )
}

impl Direct {
    /// Runs the page SELECT (`Some((limit, offset))`) or the COUNT (`None`) once.
    async fn run(
        &self,
        sql: &str,
        tenant: &str,
        campaign: &str,
        status: Option<&str>,
        page: Option<(i64, i64)>,
    ) -> anyhow::Result<()> {
        macro_rules! go {
            ($p:expr) => {{
                if let Some((limit, offset)) = page {
                    let rows = sqlx::query(sql)
                        .bind(tenant)
                        .bind(campaign)
                        .bind(status)
                        .bind(limit)
                        .bind(offset)
                        .fetch_all($p)
                        .await?;
                    ensure!(rows.len() as i64 == limit, "short page: {}", rows.len());
                } else {
                    let n: i64 = sqlx::query_scalar(sql)
                        .bind(tenant)
                        .bind(campaign)
                        .bind(status)
                        .fetch_one($p)
                        .await?;
                    ensure!(n > 0);
                }
            }};
        }
        match self {
            Direct::Sqlite(p) => go!(p),
            Direct::Postgres(p) => go!(p),
        }
        Ok(())
    }

    async fn plan(
        &self,
        sql: &str,
        tenant: &str,
        campaign: &str,
        status: Option<&str>,
        offset: i64,
    ) -> anyhow::Result<Vec<String>> {
        use sqlx::Row;
        // Values inlined (ids are UUIDs we created), so EXPLAIN needs no parameters.
        let lit = |s: Option<&str>| s.map_or("NULL".to_string(), |s| format!("'{s}'"));
        let sql = sql
            .replace("$1", &lit(Some(tenant)))
            .replace("$2", &lit(Some(campaign)))
            .replace("$3", &lit(status))
            .replace("$4", "50")
            .replace("$5", &offset.to_string());
        Ok(match self {
            Direct::Sqlite(p) => sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>("detail"))
                .collect::<Result<_, _>>()?,
            Direct::Postgres(p) => sqlx::query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<_, _>>()?,
        })
    }

    async fn analyze(&self) -> anyhow::Result<()> {
        if let Direct::Postgres(p) = self {
            let t = Instant::now();
            sqlx::query("ANALYZE leads").execute(p).await?;
            eprintln!(
                "[postgres] ANALYZE leads took {:.2}s",
                t.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    async fn close(&self) {
        match self {
            Direct::Sqlite(p) => p.close().await,
            Direct::Postgres(p) => p.close().await,
        }
    }
}

/// Everything for one backend.
async fn bench_backend(
    b: &mut Bench,
    backend: &'static str,
    store: Store,
    direct: Direct,
    dir: &Path,
    leads_target: u64,
) -> anyhow::Result<()> {
    store.migrate().await?;
    let api = Api::new(store.clone(), dir.join("spool")).await?;
    let campaign = api.campaign("Bench import").await?;

    // 1. Import throughput: fresh, then the same file again.
    let csv = dir.join("leads-0.csv");
    write_csv(&csv, 0, IMPORT_ROWS)?;
    eprintln!("[{backend}] importing {IMPORT_ROWS} rows ...");
    let (r, secs) = import_file(&store, &api.tenant, &campaign, &csv).await?;
    ensure!(
        r.total == IMPORT_ROWS && r.inserted == IMPORT_ROWS && r.invalid == 0,
        "fresh import: {r:?}"
    );
    b.import(backend, "fresh (all inserted)", r.total, r.inserted, secs);
    eprintln!("[{backend}] re-importing the same file ...");
    let (r, secs) = import_file(&store, &api.tenant, &campaign, &csv).await?;
    ensure!(
        r.inserted == 0 && r.duplicates == IMPORT_ROWS,
        "re-import: {r:?}"
    );
    b.import(backend, "re-import (all dups)", r.total, r.inserted, secs);
    std::fs::remove_file(&csv)?;

    // 2. Fill the same campaign to the target with more 100k imports.
    let mut loaded = IMPORT_ROWS;
    let fill = Instant::now();
    while loaded < leads_target {
        let n = IMPORT_ROWS.min(leads_target - loaded);
        let csv = dir.join(format!("leads-{loaded}.csv"));
        write_csv(&csv, loaded, n)?;
        let (r, secs) = import_file(&store, &api.tenant, &campaign, &csv).await?;
        std::fs::remove_file(&csv)?;
        ensure!(r.inserted == n, "bulk load chunk: {r:?}");
        loaded += n;
        eprintln!(
            "[{backend}] loaded {loaded}/{leads_target} leads ({:.0} rows/s this chunk)",
            n as f64 / secs
        );
    }
    if loaded > IMPORT_ROWS {
        let secs = fill.elapsed().as_secs_f64();
        let phase = "bulk fill (chunks)";
        b.import(
            backend,
            phase,
            loaded - IMPORT_ROWS,
            loaded - IMPORT_ROWS,
            secs,
        );
    }
    let leads = loaded;

    // Sanity: the list's total is the number of leads.
    let (status, body) = api
        .json(
            Method::GET,
            &format!("/api/leads?campaign_id={campaign}&limit=50"),
            None,
        )
        .await?;
    ensure!(status == StatusCode::OK, "list: {status} {body}");
    ensure!(
        body["total"] == json!(leads),
        "total {} != {leads}",
        body["total"]
    );
    ensure!(body["leads"].as_array().map(Vec::len) == Some(50));

    // PostgreSQL: refresh planner statistics, as autovacuum does on its own within about a
    // minute of a big import. Without it the planner still believes the table is nearly
    // empty and sorts the whole campaign (external merge on disk) for every page.
    direct.analyze().await?;

    // GET /api/leads through the router.
    let deep = leads / 2;
    let scenarios: [(String, Box<dyn Fn(usize) -> String>); 3] = [
        (
            "GET /api/leads offset 0..1000".into(),
            Box::new(|i| {
                format!(
                    "/api/leads?campaign_id={campaign}&limit=50&offset={}",
                    (i * 37) % 1001
                )
            }),
        ),
        (
            format!("GET /api/leads offset {deep}..+1000 (deep)"),
            Box::new(|i| {
                format!(
                    "/api/leads?campaign_id={campaign}&limit=50&offset={}",
                    deep + ((i * 37) % 1001) as u64
                )
            }),
        ),
        (
            "GET /api/leads &status=pending offset 0..1000".into(),
            Box::new(|i| {
                format!(
                    "/api/leads?campaign_id={campaign}&limit=50&offset={}&status=pending",
                    (i * 37) % 1001
                )
            }),
        ),
    ];
    for (what, uri) in &scenarios {
        eprintln!("[{backend}] {what} ...");
        let start = Instant::now();
        for i in 0..WARMUP {
            if start.elapsed() > WARMUP_BUDGET {
                break;
            }
            let (status, _) = send(&api.router, api.request(Method::GET, &uri(i), None)).await?;
            ensure!(status == StatusCode::OK);
        }
        let mut ms = Vec::with_capacity(b.requests);
        let start = Instant::now();
        for i in 0..b.requests {
            if start.elapsed() > b.budget {
                break;
            }
            let req = api.request(Method::GET, &uri(i + WARMUP), None);
            let t = Instant::now();
            let (status, bytes) = send(&api.router, req).await?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            ensure!(
                status == StatusCode::OK,
                "{status} {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        b.latency(backend, "get_leads", what.clone(), leads, ms);
    }

    // Where the time goes: the handler's two statements, on their own.
    eprintln!("[{backend}] direct SQL breakdown ...");
    let (page_sql, count_sql) = list_sql(false);
    let (page_status_sql, count_status_sql) = list_sql(true);
    let cases: [(&str, &str, Option<&str>, Option<(i64, i64)>); 5] = [
        ("SQL page SELECT offset 0", &page_sql, None, Some((50, 0))),
        (
            "SQL page SELECT deep offset",
            &page_sql,
            None,
            Some((50, deep as i64)),
        ),
        (
            "SQL page SELECT status=pending offset 0",
            &page_status_sql,
            Some("pending"),
            Some((50, 0)),
        ),
        ("SQL COUNT(*) campaign", &count_sql, None, None),
        (
            "SQL COUNT(*) campaign status=pending",
            &count_status_sql,
            Some("pending"),
            None,
        ),
    ];
    for (what, sql, status, page) in cases {
        direct
            .run(sql, &api.tenant, &campaign, status, page)
            .await?; // warm
        let mut ms = Vec::new();
        let start = Instant::now();
        while ms.len() < SQL_RUNS && start.elapsed() < SQL_BUDGET {
            let t = Instant::now();
            direct
                .run(sql, &api.tenant, &campaign, status, page)
                .await?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let what = match page {
            Some((_, o)) if o > 0 => format!("{what} {o}"),
            _ => what.to_string(),
        };
        b.latency(backend, "sql", what, leads, ms);
    }
    for (title, sql, status, offset) in [
        ("COUNT(*)", &count_sql, None, 0),
        ("page SELECT deep offset", &page_sql, None, deep as i64),
    ] {
        let plan = direct
            .plan(sql, &api.tenant, &campaign, status, offset)
            .await?;
        b.plans
            .push((format!("[{backend}] plan of {title} ({leads} leads)"), plan));
    }
    direct.close().await;
    Ok(())
}

async fn run() -> anyhow::Result<()> {
    let leads_target = env_u64("SWITCHBOARD_BENCH_LEADS", 1_000_000)?;
    let mut b = Bench {
        rows: Vec::new(),
        plans: Vec::new(),
        requests: env_u64("SWITCHBOARD_BENCH_REQUESTS", 2000)? as usize,
        budget: Duration::from_secs(env_u64("SWITCHBOARD_BENCH_BUDGET_SECS", 40)?),
    };
    let dir = std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    let sqlite = async {
        let url = format!("sqlite://{}/bench.db", dir.display());
        let store = Store::connect(&url, &StoreOptions::default()).await?;
        let direct = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(sqlx::sqlite::SqliteConnectOptions::from_str(&url)?.read_only(true))
            .await;
        // The file exists once the store has connected.
        let direct = Direct::Sqlite(direct?);
        let r = bench_backend(&mut b, "sqlite", store.clone(), direct, &dir, leads_target).await;
        store.close().await;
        r
    }
    .await;

    let pg = match std::env::var("SWITCHBOARD_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
            let opts = StoreOptions {
                pg_schema: Some(schema.clone()),
                ..StoreOptions::default()
            };
            match Store::connect(&url, &opts).await {
                Ok(store) => {
                    let r = async {
                        let direct = sqlx::postgres::PgPoolOptions::new()
                            .max_connections(1)
                            .connect_with(
                                sqlx::postgres::PgConnectOptions::from_str(&url)?
                                    .options([("search_path", schema.as_str())]),
                            )
                            .await?;
                        bench_backend(
                            &mut b,
                            "postgres",
                            store.clone(),
                            Direct::Postgres(direct),
                            &dir,
                            leads_target,
                        )
                        .await
                    }
                    .await;
                    let dropped = store.drop_schema(&schema).await;
                    store.close().await;
                    r.and(dropped.map_err(anyhow::Error::from))
                }
                Err(e) => Err(anyhow!(e)),
            }
        }
        _ => {
            eprintln!("SWITCHBOARD_TEST_PG_URL not set: PostgreSQL skipped");
            Ok(())
        }
    };

    let _ = std::fs::remove_dir_all(&dir);
    b.print_table();
    sqlite.context("sqlite bench")?;
    pg.context("postgres bench")?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing to parse.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
