//! `switchboard demo`: the whole product on one machine with nothing to install — SQLite, the
//! carrier simulator, simulated agent phones, a demo campaign, the API, the WebSocket hub and
//! the dashboard — with a live one-line summary and a JSON summary at the end.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use switchboard_engine::campaigns::CampaignInput;
use switchboard_engine::events::EventBus;
use switchboard_engine::import::ImportOptions;
use switchboard_engine::runner::{DialTrunkConfig, Dialer, DialerConfig, StaticTrunks};
use switchboard_engine::tenancy::{NewUser, Role};
use switchboard_media::runtime::{MediaRuntime, RuntimeConfig};
use switchboard_sim::{AgentConfig, AgentPhones, Behavior, Carrier, CarrierConfig, Plan};
use switchboard_sip::endpoint::{Endpoint, EndpointConfig, Transport};

use crate::config::Settings;

/// Flags of `demo` (`--data-dir` is the global flag; without it the demo uses a fresh
/// folder under the system's temporary directory).
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Leads in the demo campaign.
    #[arg(long, default_value_t = 60)]
    pub leads: usize,
    /// Simulated agents (softphones that answer and talk).
    #[arg(long, default_value_t = 4)]
    pub agents: usize,
    /// Stop after this many seconds (0: when the campaign is done).
    #[arg(long, default_value_t = 0)]
    pub duration: u64,
    /// HTTP address of the API and dashboard.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub http: String,
    /// Print `{"demo": ...}` at start and `{"summary": ...}` at the end as JSON (live lines go
    /// to stderr).
    #[arg(long)]
    pub json: bool,
    /// Seed of the simulated carrier.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

fn demo_plan() -> Plan {
    let talk = Duration::from_secs(12);
    Plan::new()
        .weighted(Behavior::Human { talk }, 45)
        .weighted(Behavior::Machine { beep: true }, 20)
        .weighted(Behavior::Busy, 10)
        .weighted(
            Behavior::AnswerAfter {
                ring: Duration::from_secs(3),
                then: Box::new(Behavior::Human { talk }),
            },
            5,
        )
        .weighted(Behavior::NoAnswer, 10)
        .weighted(Behavior::Unavailable, 5)
        .weighted(Behavior::Reject(404), 5)
}

fn password() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let letters: String = (0..10)
        .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
        .collect();
    format!("{letters}{}", rng.gen_range(10..99))
}

struct Counts {
    dialed: u64,
    human: u64,
    machine: u64,
    bridged: u64,
    abandoned: u64,
    busy: u64,
    no_answer: u64,
    failed: u64,
    rejected: u64,
    recordings: u64,
    voicemail: u64,
}

fn counts(d: &Dialer) -> Counts {
    let s = d.stats();
    let disp = s.dispositions();
    let get = |k: &str| disp.get(k).copied().unwrap_or(0);
    Counts {
        dialed: s.calls_started.load(Ordering::Relaxed),
        human: s.human.load(Ordering::Relaxed),
        machine: s.machine.load(Ordering::Relaxed),
        bridged: s.bridged.load(Ordering::Relaxed),
        abandoned: get("abandoned"),
        busy: get("busy"),
        no_answer: get("no_answer"),
        failed: get("failed"),
        rejected: get("invalid_number"),
        recordings: s.recordings.load(Ordering::Relaxed),
        voicemail: get("voicemail"),
    }
}

fn abandon_rate(c: &Counts) -> f64 {
    let live = c.bridged + c.abandoned;
    if live == 0 {
        0.0
    } else {
        c.abandoned as f64 / live as f64
    }
}

/// Runs the demo until the duration passes, the campaign completes or ctrl-c.
pub async fn run(mut settings: Settings, args: DemoArgs, data_dir_given: bool) -> Result<()> {
    if !data_dir_given {
        let dir = std::env::temp_dir().join(format!("switchboard-demo-{}", uuid_like()));
        settings.database_url = format!("sqlite://{}/switchboard.db", dir.display());
        settings.recordings = switchboard_recordings::StorageConfig::local_default(&dir);
        settings.data_dir = dir;
    }
    settings.http = args.http.clone();
    let store = crate::open_store(&settings).await?;
    let lo: SocketAddr = "127.0.0.1:0".parse()?;

    // The far ends.
    let carrier = Carrier::start(CarrierConfig {
        seed: args.seed,
        ring: Duration::from_millis(1500),
        ..CarrierConfig::new(lo, demo_plan())
    })
    .await
    .context("starting the carrier simulator")?;
    let phones = AgentPhones::start_with(AgentConfig::new(lo))
        .await
        .context("starting the agent phones")?;

    // The tenant, its owner, a campaign, leads and agents.
    let email = "demo@switchboard.test".to_owned();
    let pw = password();
    let hash = switchboard_api::password::hash(&pw).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let (tenant, user) = store
        .create_tenant_with_owner(
            "Switchboard demo",
            &NewUser {
                email: email.clone(),
                password_hash: hash,
                role: Role::Owner,
                first_name: Some("Demo".into()),
                last_name: Some("Owner".into()),
                phone: None,
            },
        )
        .await
        .context("creating the demo tenant (use a fresh --data-dir)")?;
    let campaign = store
        .create_campaign(
            &tenant.id,
            serde_json::from_value::<CampaignInput>(json!({
                "name": "Demo campaign", "caller_id": "+14155550100", "dial_mode": "predictive",
                "amd_enabled": true, "record_calls": true, "voicemail_message_url": "builtin:voicemail",
                "calling_hours_start": "08:00", "calling_hours_end": "21:00",
                "retry_policy": {"max_attempts": 2, "delay_minutes": 1, "retry_on_no_answer": true, "retry_on_busy": true, "retry_on_voicemail": false}
            }))?,
        )
        .await?;
    let zone = switchboard_sim::daytime_zone();
    let first = [
        "Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Dennis",
    ];
    let last = [
        "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Ritchie",
    ];
    let mut csv = String::from("phone,first_name,last_name,timezone,notes\n");
    for i in 0..args.leads {
        csv.push_str(&format!(
            "+1212555{:04},{},{},{zone},Demo lead {i}\n",
            2000 + i % 8000,
            first[i % first.len()],
            last[(i / first.len()) % last.len()]
        ));
    }
    store
        .import_leads(
            &tenant.id,
            &campaign.id,
            None,
            std::io::Cursor::new(csv.into_bytes()),
            &ImportOptions {
                default_country: "US".into(),
            },
        )
        .await
        .context("importing demo leads")?;
    let mut agent_ids = Vec::new();
    for i in 0..args.agents {
        let a = store
            .create_agent(
                &tenant.id,
                serde_json::from_value(json!({
                    "name": format!("Agent {}", i + 1),
                    "endpoint": phones.uri(&format!("agent{}", i + 1)),
                }))?,
            )
            .await?;
        agent_ids.push(a.id);
    }

    // The engine.
    let endpoint = Arc::new(
        Endpoint::bind(EndpointConfig::new(lo))
            .await
            .context("binding SIP")?,
    );
    let media = MediaRuntime::start(RuntimeConfig {
        loops: 1,
        bind_ip: "127.0.0.1".parse()?,
        ..RuntimeConfig::default()
    })
    .context("starting the media runtime")?;
    let trunks = StaticTrunks(vec![DialTrunkConfig {
        id: "carrier-sim".into(),
        name: "carrier simulator".into(),
        server: carrier.sip_addr().to_string(),
        domain: carrier.sip_addr().ip().to_string(),
        username: None,
        password: None,
        transport: Transport::Udp,
        max_concurrent: 50,
        max_cps: 10.0,
    }]);
    let mut cfg = DialerConfig::new("127.0.0.1", recordings_dir(&settings));
    cfg.retry_unit = Duration::from_secs(5);
    cfg.timers.dial_timeout = Duration::from_secs(15);
    cfg.timers.wrap_up = Duration::from_secs(3);
    cfg.shutdown_grace = Duration::from_secs(3);
    let events = EventBus::default();
    let dialer = Dialer::start(
        store.clone(),
        events.clone(),
        endpoint.clone(),
        media.clone(),
        Arc::new(trunks),
        cfg,
    )
    .await?;

    // HTTP: API, WebSocket, dashboard.
    let (app, server_state) = crate::http_app(
        &settings,
        store.clone(),
        events.clone(),
        Some(dialer.clone()),
    )?;
    let listener = tokio::net::TcpListener::bind(&settings.http)
        .await
        .with_context(|| {
            format!(
                "binding HTTP on {} (pick another with --http)",
                settings.http
            )
        })?;
    let addr = listener.local_addr()?;
    let (stop_http, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stop_rx.await;
        })
        .await;
    });
    let token = switchboard_api::auth::issue(&server_state, &user);
    if args.json {
        println!(
            "{}",
            json!({"demo": {"http": format!("http://{addr}"), "email": email, "password": pw, "token": token,
                             "data_dir": settings.data_dir, "campaign_id": campaign.id}})
        );
    } else {
        println!("Switchboard demo: dashboard and API at http://{addr}/  (API docs at /docs)");
        println!("  log in as {email} / {pw}");
        println!("  data in {}", settings.data_dir.display());
        println!(
            "  {} leads, {} simulated agents, a simulated carrier on {}",
            args.leads,
            args.agents,
            carrier.sip_addr()
        );
    }

    for id in &agent_ids {
        store.set_agent_status(&tenant.id, id, "available").await?;
        dialer.agent_status(&tenant.id, id, "available").await;
    }
    store.start_campaign(&tenant.id, &campaign.id).await?;

    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(3));
    tick.tick().await;
    // Ctrl-C or SIGTERM end the demo cleanly (summary printed, recordings finalized).
    let stop = crate::shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => break,
        }
        let c = counts(&dialer);
        let talking = dialer
            .agents(&tenant.id)
            .iter()
            .filter(|a| a.state == "busy")
            .count();
        let line = format!(
            "demo {:>4}s  dialed {}  human {}  machine {}  busy {}  no-answer {}  failed {}  · bridged {}  abandoned {} ({:.1}%)  · agents talking {}/{}  · recordings {}",
            started.elapsed().as_secs(), c.dialed, c.human, c.machine, c.busy, c.no_answer, c.failed + c.rejected,
            c.bridged, c.abandoned, abandon_rate(&c) * 100.0, talking, args.agents, c.recordings
        );
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        if args.duration > 0 && started.elapsed() >= Duration::from_secs(args.duration) {
            break;
        }
        let status = store
            .campaign(&tenant.id, &campaign.id)
            .await
            .map(|c| c.status);
        if matches!(status.as_deref(), Ok("completed")) && dialer.active_calls() == 0 {
            break;
        }
    }

    dialer.shutdown().await;
    let _ = stop_http.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    let c = counts(&dialer);
    let mut lat: Vec<f64> = dialer
        .stats()
        .bridge_latencies()
        .iter()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        lat.get(((lat.len().max(1) - 1) as f64 * q).round() as usize)
            .map(|v| (v * 10.0).round() / 10.0)
    };
    let summary = json!({"summary": {
        "leads": args.leads, "dialed": c.dialed, "human": c.human, "machine": c.machine, "busy": c.busy,
        "no_answer": c.no_answer, "failed": c.failed, "rejected": c.rejected, "voicemail": c.voicemail,
        "bridged": c.bridged, "abandoned": c.abandoned, "abandon_rate": (abandon_rate(&c) * 10000.0).round() / 10000.0,
        "recordings": c.recordings, "bridge_ms_p50": pct(0.5), "bridge_ms_p99": pct(0.99),
    }});
    println!("{summary}");
    carrier.shutdown().await;
    phones.shutdown().await;
    media.shutdown();
    store.close().await;
    Ok(())
}

/// Where recordings go when stored locally.
pub fn recordings_dir(settings: &Settings) -> PathBuf {
    settings.data_dir.join("recordings")
}

fn uuid_like() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}
