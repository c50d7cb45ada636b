//! `switchboard`: the dialer engine's binary — serve the API, run migrations, bootstrap users.

mod config;
mod demo;
mod simulate;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use config::{CommonArgs, ServeArgs, Settings};
use switchboard_api::{ApiConfig, AppState};
use switchboard_engine::tenancy::{NewUser, Role};
use switchboard_engine::{Store, StoreOptions};

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Real-time outbound dialer engine with its own SIP media core"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine and its HTTP API.
    Serve(ServeArgs),
    /// Everything on one machine: engine, carrier simulator, simulated agents, a demo
    /// campaign, the API and the dashboard (SQLite, nothing to install).
    Demo(demo::DemoArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users without HTTP.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// RTP tools.
    Rtp {
        #[command(subcommand)]
        command: RtpCommand,
    },
    /// Answering-machine detection tools.
    Amd {
        #[command(subcommand)]
        command: AmdCommand,
    },
    /// Pacing simulator: each dial mode in a simulated call centre, side by side.
    Simulate(simulate::SimulateArgs),
    /// Carrier simulator: a SIP UAS on loopback answering by a plan (human, machine, busy...).
    CarrierSim(switchboard_sim::cli::CarrierSimArgs),
    /// Test dialer and SIP load driver: place one call or many, summarise.
    Call(switchboard_sim::cli::CallArgs),
}

#[derive(Debug, Subcommand)]
enum AmdCommand {
    /// Classify WAV files: one JSON line per file.
    Classify {
        /// enable | detect-message-end
        #[arg(long, default_value = "detect-message-end")]
        mode: String,
        /// Detector parameters as a JSON object (see the AMD docs); defaults otherwise.
        #[arg(long)]
        params: Option<String>,
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Evaluate a labelled folder (WAV files + labels.csv): confusion matrix, accuracy, errors, timing.
    Eval {
        #[arg(long, default_value = "detect-message-end")]
        mode: String,
        #[arg(long)]
        params: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        dir: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum RtpCommand {
    /// Per-stream loss, jitter and MOS of the RTP in a pcap/pcapng file: one JSON object per line.
    Analyze {
        /// The capture (pcap or pcapng).
        file: std::path::PathBuf,
        /// Only this UDP port, every datagram taken as RTP (default: find RTP on any port).
        #[arg(long)]
        port: Option<u16>,
        /// Clock rate for dynamic payload types (default 8000).
        #[arg(long)]
        clock_rate: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user: a new tenant's owner, or a user of an existing tenant.
    Create {
        #[arg(long)]
        email: String,
        /// The password (or set SWITCHBOARD_USER_PASSWORD to keep it out of the shell history).
        #[arg(long, env = "SWITCHBOARD_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// owner | admin | supervisor | agent | viewer (a new tenant's first user is the owner).
        #[arg(long, default_value = "owner")]
        role: String,
        /// Add to this tenant; without it a new tenant is created.
        #[arg(long)]
        tenant_id: Option<String>,
        /// Name of the new tenant.
        #[arg(long)]
        tenant_name: Option<String>,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
    },
}

fn init_logging(format: &str, default: &str, to_stderr: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| default.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match (format == "json", to_stderr) {
        (true, true) => builder.json().with_writer(std::io::stderr).init(),
        (true, false) => builder.json().init(),
        (false, true) => builder.with_writer(std::io::stderr).init(),
        (false, false) => builder.init(),
    }
}

async fn open_store(settings: &Settings) -> Result<Store> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data dir {}", settings.data_dir.display()))?;
    let store = Store::connect(&settings.database_url, &StoreOptions::default())
        .await
        .with_context(|| {
            format!(
                "opening database {}",
                switchboard_engine::store::redact_url(&settings.database_url)
            )
        })?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let no_serve = ServeArgs::default();
    let serve_args = match &cli.command {
        Command::Serve(a) => a,
        _ => &no_serve,
    };
    if let Command::Rtp {
        command:
            RtpCommand::Analyze {
                file,
                port,
                clock_rate,
            },
    } = &cli.command
    {
        return rtp_analyze(file, *port, *clock_rate);
    }
    if let Command::Amd { command } = &cli.command {
        return amd(command);
    }
    if let Command::Simulate(args) = &cli.command {
        return simulate::run(args);
    }
    match &cli.command {
        Command::CarrierSim(args) => {
            return Ok(switchboard_sim::cli::carrier_sim::run(args.clone()).await?)
        }
        Command::Call(args) => return Ok(switchboard_sim::cli::call::run(args.clone()).await?),
        _ => {}
    }
    let settings = config::resolve(&cli.common, serve_args)?;
    // The demo prints its own live summary: only warnings in the log unless asked.
    let default_log = if matches!(cli.command, Command::Demo(_)) {
        "warn"
    } else {
        "info,sqlx=warn"
    };
    // The demo's stdout is its own output (JSON lines with --json): logs go to stderr.
    init_logging(
        &settings.log_format,
        default_log,
        matches!(cli.command, Command::Demo(_)),
    );
    match cli.command {
        Command::Serve(_) => serve(settings).await,
        Command::Migrate => {
            let store = open_store(&settings).await?;
            println!(
                "database is at schema version {}",
                switchboard_engine::store::MIGRATIONS
                    .last()
                    .map_or(0, |m| m.version)
            );
            store.close().await;
            Ok(())
        }
        Command::Rtp { .. } | Command::Amd { .. } => Ok(()),
        Command::Simulate(_) => Ok(()),
        Command::Demo(args) => demo::run(settings, args, cli.common.data_dir.is_some()).await,
        Command::CarrierSim(_) | Command::Call(_) => Ok(()),
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&switchboard_api::openapi_document())?
            );
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    password,
                    role,
                    tenant_id,
                    tenant_name,
                    first_name,
                    last_name,
                },
        } => {
            let Some(role) = Role::parse(&role) else {
                bail!("role must be one of owner, admin, supervisor, agent, viewer")
            };
            if !switchboard_engine::validate::is_email(&email) {
                bail!("{email:?} is not a valid e-mail address");
            }
            if let Err(why) = switchboard_api::password::check_rules(&password) {
                bail!("password {why}");
            }
            let store = open_store(&settings).await?;
            let hash = switchboard_api::password::hash(&password)
                .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
            let new = NewUser {
                email: email.clone(),
                password_hash: hash,
                role,
                first_name,
                last_name,
                phone: None,
            };
            let user = match tenant_id {
                Some(t) => store.create_user(&t, &new).await?,
                None => {
                    let name = tenant_name.unwrap_or_else(|| {
                        email.rsplit('@').next().unwrap_or("tenant").to_string()
                    });
                    store
                        .create_tenant_with_owner(
                            &name,
                            &NewUser {
                                role: Role::Owner,
                                ..new
                            },
                        )
                        .await?
                        .1
                }
            };
            println!(
                "{}",
                serde_json::json!({"id": user.id, "email": user.email, "role": user.role, "tenant_id": user.tenant_id})
            );
            store.close().await;
            Ok(())
        }
    }
}

fn rtp_analyze(file: &std::path::Path, port: Option<u16>, clock_rate: Option<u32>) -> Result<()> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let opts = switchboard_media::analyze::AnalyzeOptions { port, clock_rate };
    let (rows, partial) = switchboard_media::analyze::analyze_capture(&data, opts)
        .with_context(|| format!("{} is not a readable pcap/pcapng capture", file.display()))?;
    for row in rows {
        println!("{}", serde_json::to_string(&row)?);
    }
    if let Some(e) = partial {
        bail!("capture ends early ({e}); the streams above cover what came before");
    }
    Ok(())
}

fn amd_setup(
    mode: &str,
    params: &Option<String>,
) -> Result<(switchboard_media::amd::Mode, switchboard_media::amd::Params)> {
    let mode: switchboard_media::amd::Mode =
        mode.parse().map_err(|e| anyhow::anyhow!("--mode: {e}"))?;
    let params = match params {
        Some(json) => {
            serde_json::from_str(json).context("--params is not a valid parameter object")?
        }
        None => switchboard_media::amd::Params::default(),
    };
    Ok((mode, params))
}

fn amd(command: &AmdCommand) -> Result<()> {
    match command {
        AmdCommand::Classify {
            mode,
            params,
            files,
        } => {
            let (mode, params) = amd_setup(mode, params)?;
            let mut failed = false;
            for f in files {
                match switchboard_media::amd::cli::classify_file(f, mode, &params) {
                    Ok(row) => println!("{}", serde_json::to_string(&row)?),
                    Err(e) => {
                        failed = true;
                        println!(
                            "{}",
                            serde_json::json!({"file": f.display().to_string(), "error": e.to_string()})
                        );
                    }
                }
            }
            if failed {
                bail!("some files could not be classified");
            }
            Ok(())
        }
        AmdCommand::Eval {
            mode,
            params,
            json,
            dir,
        } => {
            let (mode, params) = amd_setup(mode, params)?;
            let report = switchboard_media::amd::cli::evaluate_dir(dir, mode, &params)
                .with_context(|| format!("evaluating {}", dir.display()))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
    }
}

/// The HTTP surface: the API (with the engine's metrics when one runs), the WebSocket hub
/// and the pages, sharing one event bus.
fn http_app(
    settings: &Settings,
    store: Store,
    events: switchboard_engine::events::EventBus,
    dialer: Option<switchboard_engine::runner::Dialer>,
) -> Result<(axum::Router, AppState)> {
    http_app_with(settings, store, events, dialer, None)
}

/// [`http_app`] with the telephony service behind `/api/sip/*`.
fn http_app_with(
    settings: &Settings,
    store: Store,
    events: switchboard_engine::events::EventBus,
    dialer: Option<switchboard_engine::runner::Dialer>,
    telephony: Option<std::sync::Arc<switchboard_engine::telephony::Telephony>>,
) -> Result<(axum::Router, AppState)> {
    let secret = config::jwt_secret(settings)?;
    let mut api = ApiConfig::new(secret, settings.data_dir.join("spool"));
    api.token_ttl = Duration::from_secs(settings.token_ttl_hours * 3600);
    api.rate_limit_per_user = settings.rate_limit_per_user;
    api.rate_limit_per_ip = settings.rate_limit_per_ip;
    api.login_attempts = settings.login_attempts;
    api.upload_max_bytes = settings.upload_max_bytes;
    api.cors_origins = settings.cors_origins.clone();
    api.default_country = settings.default_country.clone();
    api.allow_signup = settings.allow_signup;
    api.recording_max_bytes = settings.recording_max_bytes;
    let recordings = switchboard_recordings::RecordingStore::new(&settings.recordings)
        .context("opening recording storage")?;
    let mut api_state = AppState::new(store.clone(), api)
        .with_events(events.clone())
        .with_recordings(recordings);
    if let Some(t) = telephony {
        api_state = api_state.with_telephony(t);
    }
    if let Some(d) = &dialer {
        api_state = api_state.with_dialer(d.clone());
    }
    let verifier_state = api_state.clone();
    let verify: switchboard_ws::Verifier = std::sync::Arc::new(move |token: &str| {
        verifier_state
            .principal(token)
            .map(|(user_id, tenant_id, role)| switchboard_ws::Principal {
                user_id,
                tenant_id,
                role,
            })
    });
    let ws_state =
        switchboard_ws::WsState::new(store, events, verify, switchboard_ws::WsConfig::default());
    let ws_stats = ws_state.stats.clone();
    let api_state = api_state.with_extra_metrics(std::sync::Arc::new(move || {
        let mut text = ws_stats.render();
        if let Some(d) = &dialer {
            text.push_str(&d.render_metrics());
        }
        text
    }));
    let metrics = switchboard_ws::spawn_metrics(ws_state.clone(), Duration::from_secs(10));
    // Detached: the metrics task lives as long as the process.
    drop(metrics);
    let app = switchboard_api::router(api_state.clone()).merge(switchboard_ws::router(ws_state));
    Ok((app, api_state))
}

async fn serve(settings: Settings) -> Result<()> {
    let store = open_store(&settings).await?;
    let events = switchboard_engine::events::EventBus::default();
    let telephony = start_telephony(&settings, &store, &events).await?;
    let engine = match &telephony {
        Some(t) => Some(start_engine(&settings, &store, &events, t).await?),
        None => None,
    };
    let dialer = engine.as_ref().map(|(d, _)| d.clone());
    let (app, _state) = http_app_with(&settings, store.clone(), events, dialer, telephony.clone())?;
    let listener = tokio::net::TcpListener::bind(&settings.http)
        .await
        .with_context(|| format!("binding HTTP on {}", settings.http))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        database = %switchboard_engine::store::redact_url(&settings.database_url),
        data_dir = %settings.data_dir.display(),
        "switchboard listening: API docs at http://{addr}/docs"
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("serving HTTP")?;
    if let Some((dialer, media)) = engine {
        tracing::info!("shutting down: no new dials; answered calls get a grace period, then BYE");
        dialer.shutdown().await;
        let _ = tokio::task::spawn_blocking(move || media.shutdown()).await;
    }
    if let Some(t) = telephony {
        tracing::info!("shutting down: unregistering SIP trunks");
        t.shutdown().await;
    }
    tracing::info!("shutting down: closing the database");
    store.close().await;
    Ok(())
}

/// The dialing engine on the telephony service's SIP endpoint: a media runtime (RTP on the
/// SIP address's IP, or the public address in SDP), trunks from the store, recordings under
/// `<data_dir>/recordings`. Active campaigns resume; calls a crash left open are closed first.
async fn start_engine(
    settings: &Settings,
    store: &Store,
    events: &switchboard_engine::events::EventBus,
    telephony: &std::sync::Arc<switchboard_engine::telephony::Telephony>,
) -> Result<(
    switchboard_engine::runner::Dialer,
    switchboard_media::runtime::MediaHandle,
)> {
    use switchboard_engine::runner::{Dialer, DialerConfig, StoreTrunks};
    let bind_ip = telephony.local_addr().ip();
    let sdp_ip = match settings.sip_public_addr {
        Some(a) => a.ip(),
        None if bind_ip.is_unspecified() => {
            tracing::warn!(
                "sip_bind is a wildcard and no sip_public_addr is set: SDP offers 127.0.0.1"
            );
            std::net::IpAddr::from([127, 0, 0, 1])
        }
        None => bind_ip,
    };
    let media = switchboard_media::runtime::MediaRuntime::start(
        switchboard_media::runtime::RuntimeConfig {
            bind_ip,
            port_min: settings.rtp_ports.0,
            port_max: settings.rtp_ports.1,
            ..Default::default()
        },
    )
    .context("starting the media runtime")?;
    let trunks = StoreTrunks {
        store: store.clone(),
        secrets: telephony.secrets().clone(),
        fallback: Vec::new(),
    };
    let cfg = DialerConfig::new(&sdp_ip.to_string(), settings.data_dir.join("recordings"));
    let dialer = Dialer::start(
        store.clone(),
        events.clone(),
        telephony.endpoint(),
        media.clone(),
        std::sync::Arc::new(trunks),
        cfg,
    )
    .await
    .context("starting the dialing engine")?;
    Ok((dialer, media))
}

/// The SIP side: `None` when `sip_bind` is off, or (logged) when the port cannot be bound, so
/// the API still serves (its `/api/sip/*` routes then answer 503). A bad secret key stops
/// the start.
async fn start_telephony(
    settings: &Settings,
    store: &Store,
    events: &switchboard_engine::events::EventBus,
) -> Result<Option<std::sync::Arc<switchboard_engine::telephony::Telephony>>> {
    let Some(endpoint) = config::sip_endpoint(settings) else {
        tracing::info!("sip_bind is off: no SIP telephony");
        return Ok(None);
    };
    let secrets = config::secret_box(settings)?;
    let bind = endpoint.bind;
    match switchboard_engine::telephony::Telephony::start(
        store.clone(),
        events.clone(),
        secrets,
        endpoint,
    )
    .await
    {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            tracing::error!(%bind, error = %e, "SIP telephony not started: /api/sip/* answers 503");
            Ok(None)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
