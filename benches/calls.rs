//! Calls benchmark: `GET /api/calls` with three filters and `GET /api/calls/stats` through the
//! real router at 1M calls, on SQLite and (with `SWITCHBOARD_TEST_PG_URL`) PostgreSQL; plus
//! the batched insert rate (the engine's write-behind path).
//!
//! ```text
//! SWITCHBOARD_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench calls
//! ```
//! `SWITCHBOARD_BENCH_CALLS` overrides the row count (default 1,000,000).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use switchboard_api::{router, ApiConfig, AppState};
use switchboard_engine::calls::CallRow;
use switchboard_engine::{Store, StoreOptions};
use tower::ServiceExt;

const REQUESTS: usize = 300;

async fn send(
    app: &axum::Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> anyhow::Result<(StatusCode, serde_json::Value)> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))?,
        None => b.body(Body::empty())?,
    };
    let resp = app.clone().oneshot(req).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    ))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(
    app: &axum::Router,
    token: &str,
    label: &str,
    uri: &str,
    backend: &str,
) -> anyhow::Result<()> {
    let (status, body) = send(app, Method::GET, uri, Some(token), None).await?;
    anyhow::ensure!(status == StatusCode::OK, "{uri}: {status} {body}");
    let mut ms = Vec::with_capacity(REQUESTS);
    let budget = Instant::now();
    for _ in 0..REQUESTS {
        let t = Instant::now();
        let (status, _) = send(app, Method::GET, uri, Some(token), None).await?;
        anyhow::ensure!(status == StatusCode::OK);
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if budget.elapsed() > Duration::from_secs(60) && ms.len() >= 20 {
            break;
        }
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    println!(
        "{backend:<8} {label:<34} n={:<4} p50={:>8.2} ms  p99={:>8.2} ms  mean={:>8.2} ms",
        ms.len(),
        pct(&ms, 0.5),
        pct(&ms, 0.99),
        mean
    );
    println!(
        "{}",
        serde_json::json!({"bench": "calls", "backend": backend, "case": label, "n": ms.len(), "p50_ms": pct(&ms, 0.5), "p99_ms": pct(&ms, 0.99), "mean_ms": mean})
    );
    Ok(())
}

async fn bench(store: Store, backend: &str, n: usize) -> anyhow::Result<()> {
    store.migrate().await?;
    let mut cfg = ApiConfig::new(
        b"bench-secret-bench-secret-bench-secret".to_vec(),
        std::env::temp_dir().join("sb-bench-calls"),
    );
    cfg.rate_limit_per_ip = 0;
    cfg.rate_limit_per_user = 0;
    let app = router(AppState::new(store.clone(), cfg));
    let (_, reg) = send(&app, Method::POST, "/api/auth/register", None, Some(serde_json::json!({"email": format!("bench-{}@example.com", uuid::Uuid::now_v7().simple()), "password": "benchPassword1"}))).await?;
    let token = reg["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("register failed: {reg}"))?
        .to_string();
    let tenant = reg["user"]["tenant_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // 1M calls over 2024: 60 % outbound, statuses and outcomes in realistic shares.
    let base: chrono::DateTime<chrono::Utc> = "2024-01-01T00:00:00Z".parse()?;
    let statuses = [
        "completed",
        "completed",
        "completed",
        "no-answer",
        "no-answer",
        "busy",
        "failed",
        "completed",
        "canceled",
        "completed",
    ];
    let t0 = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    let mut inserted = 0u64;
    for i in 0..n {
        let mut r = CallRow::blank(&tenant);
        r.direction = if i % 5 < 3 {
            "outbound".into()
        } else {
            "inbound".into()
        };
        r.status = statuses[i % statuses.len()].into();
        r.outcome = Some(if r.status == "completed" {
            "completed".into()
        } else {
            "missed".into()
        });
        r.start_time = Some(base + chrono::Duration::seconds((i as i64 * 31_536_000) / n as i64));
        r.duration = Some((i % 900) as i64);
        r.from_number = Some(format!("+1415555{:04}", i % 10_000));
        r.to_number = Some(format!("+1212555{:04}", (i * 7) % 10_000));
        batch.push(r);
        if batch.len() == 10_000 {
            inserted += store.insert_calls_batch(&batch).await?;
            batch.clear();
        }
    }
    inserted += store.insert_calls_batch(&batch).await?;
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{backend:<8} inserted {inserted} calls in {secs:.1} s = {:.0} rows/s (batched insert)",
        inserted as f64 / secs
    );
    println!(
        "{}",
        serde_json::json!({"bench": "calls", "backend": backend, "case": "batch insert", "rows": inserted, "rows_per_s": inserted as f64 / secs})
    );

    measure(&app, &token, "list: direction+status+month", "/api/calls?direction=outbound&status=completed&start_date=2024-03-01&end_date=2024-03-31&limit=20", backend).await?;
    measure(&app, &token, "list: same, page 50", "/api/calls?direction=outbound&status=completed&start_date=2024-03-01&end_date=2024-03-31&limit=20&page=50", backend).await?;
    measure(
        &app,
        &token,
        "stats: whole tenant",
        "/api/calls/stats",
        backend,
    )
    .await?;
    measure(
        &app,
        &token,
        "stats: one month",
        "/api/calls/stats?start_date=2024-03-01&end_date=2024-03-31",
        backend,
    )
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("SWITCHBOARD_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "calls bench: {n} calls, {REQUESTS} requests per case, in-process router (tower oneshot)"
    );
    let dir = std::env::temp_dir().join(format!("sb-bench-calls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = Store::connect(
        &format!("sqlite://{}/calls.db", dir.display()),
        &StoreOptions::default(),
    )
    .await?;
    bench(sqlite.clone(), "sqlite", n).await?;
    sqlite.close().await;
    std::fs::remove_dir_all(&dir).ok();
    if let Ok(url) = std::env::var("SWITCHBOARD_TEST_PG_URL") {
        let schema = format!("bench_calls_{}", uuid::Uuid::now_v7().simple());
        let pg = Store::connect(
            &url,
            &StoreOptions {
                pg_schema: Some(schema.clone()),
                max_connections: 8,
            },
        )
        .await?;
        let r = bench(pg.clone(), "postgres", n).await;
        pg.drop_schema(&schema).await?;
        pg.close().await;
        r?;
    }
    Ok(())
}
