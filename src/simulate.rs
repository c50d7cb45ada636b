//! `switchboard simulate`: the pacing simulator's command line. Runs the engine's simulated
//! call centre (`switchboard_engine::dialer::simulate`) for each agent count and dial mode
//! with one seed, and prints a Markdown table (or JSON) side by side.

use std::io::Write;

use anyhow::{bail, Result};
use clap::Args;
use switchboard_engine::dialer::abandon::Window;
use switchboard_engine::dialer::pacer::DialMode;
use switchboard_engine::dialer::simulate::{simulate, Dist, Population, SimConfig, SimReport};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Agent counts to simulate, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,50,200")]
    agents: Vec<usize>,
    /// Dial modes, comma-separated: preview, progressive, power, predictive.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "preview,progressive,power,predictive"
    )]
    modes: Vec<String>,
    /// Share of dials answered at all (by a person or a machine).
    #[arg(long, default_value_t = 0.3)]
    answer_rate: f64,
    /// Share of answers that are a person.
    #[arg(long, default_value_t = 0.75)]
    live_share: f64,
    /// AMD error: share of people judged machines.
    #[arg(long, default_value_t = 0.02)]
    amd_human_as_machine: f64,
    /// AMD error: share of machines judged people.
    #[arg(long, default_value_t = 0.05)]
    amd_machine_as_human: f64,
    /// Mean talk time in seconds (log-normal, at least 10 s).
    #[arg(long, default_value_t = 150.0)]
    talk_mean: f64,
    /// Mean wrap-up time in seconds (3 s plus an exponential).
    #[arg(long, default_value_t = 15.0)]
    wrap_mean: f64,
    /// Lines per ready agent in power mode.
    #[arg(long, default_value_t = 2.0)]
    dial_ratio: f64,
    /// The abandon-rate cap predictive pacing holds.
    #[arg(long, default_value_t = 0.03)]
    max_abandon_rate: f64,
    /// The abandon-rate window: 30d or 24h.
    #[arg(long, default_value = "30d")]
    window: String,
    /// Virtual hours per run.
    #[arg(long, default_value_t = 8.0)]
    hours: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the reports as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn configs(a: &SimulateArgs) -> Result<Vec<SimConfig>> {
    let mut modes = Vec::new();
    for m in &a.modes {
        match DialMode::parse(m.trim()) {
            Some(mode) => modes.push(mode),
            None => bail!("--modes: {m:?} is not one of preview, progressive, power, predictive"),
        }
    }
    let window = match a.window.as_str() {
        "30d" => Window::Days30,
        "24h" => Window::Hours24,
        w => bail!("--window: {w:?} is not 30d or 24h"),
    };
    if a.agents.is_empty() || modes.is_empty() {
        bail!("give at least one agent count and one mode");
    }
    let mut out = Vec::new();
    for &agents in &a.agents {
        let population = Population {
            agents,
            answer_rate: a.answer_rate,
            live_share: a.live_share,
            amd_human_as_machine: a.amd_human_as_machine,
            amd_machine_as_human: a.amd_machine_as_human,
            talk: Dist::LogNormal {
                mean: a.talk_mean,
                sigma: 0.7,
                min: 10.0f64.min(a.talk_mean),
            },
            wrap_up: Dist::Exponential {
                mean: a.wrap_mean,
                min: 3.0f64.min(a.wrap_mean),
            },
            ..Population::default()
        };
        for &mode in &modes {
            let mut cfg = SimConfig::new(population.clone(), mode);
            cfg.dial_ratio = a.dial_ratio;
            cfg.max_abandon_rate = a.max_abandon_rate;
            cfg.window = window;
            cfg.hours = a.hours;
            cfg.seed = a.seed;
            out.push(cfg);
        }
    }
    Ok(out)
}

fn run_one(cfg: &SimConfig) -> Result<SimReport> {
    simulate(cfg).map_err(|e| match e {
        switchboard_engine::Error::Validation { issues } => {
            let why: Vec<String> = issues
                .iter()
                .map(|i| format!("{}: {}", i.field.replace('_', "-"), i.message))
                .collect();
            anyhow::anyhow!("invalid simulation setting: {}", why.join("; "))
        }
        e => e.into(),
    })
}

pub fn run(a: &SimulateArgs) -> Result<()> {
    let configs = configs(a)?;
    let mut reports = Vec::with_capacity(configs.len());
    for cfg in &configs {
        reports.push(run_one(cfg)?);
    }
    let text = if a.json {
        // The population is the same for every run but for its agent count.
        let mut population = serde_json::to_value(configs.first().map(|c| &c.population))?;
        if let Some(p) = population.as_object_mut() {
            p.remove("agents");
        }
        let doc = serde_json::json!({
            "simulate": {
                "seed": a.seed,
                "hours": a.hours,
                "max_abandon_rate": a.max_abandon_rate,
                "window": a.window,
                "dial_ratio": a.dial_ratio,
                "agents": a.agents,
                "population": population,
                "runs": reports,
            }
        });
        format!("{}\n", serde_json::to_string_pretty(&doc)?)
    } else {
        table(a, &reports)
    };
    // A closed pipe (`| head`) is an error, not a panic.
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

fn table(a: &SimulateArgs, reports: &[SimReport]) -> String {
    let mut s = format!(
        "Pacing simulation: {} h virtual, seed {}, answer rate {:.0} %, {:.0} % of answers people, \
         talk {:.0} s, wrap-up {:.0} s (means), cap {:.1} %, power ratio {}\n\n",
        a.hours,
        a.seed,
        a.answer_rate * 100.0,
        a.live_share * 100.0,
        a.talk_mean,
        a.wrap_mean,
        a.max_abandon_rate * 100.0,
        a.dial_ratio,
    );
    s.push_str(
        "| agents | mode | talk min / agent-h | abandon % | peak window % | calls / agent-h \
         | connect p50 s | connect p95 s | utilization % | dials |\n",
    );
    s.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in reports {
        s.push_str(&format!(
            "| {} | {} | {:.1} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {:.1} | {} |\n",
            r.agents,
            r.mode,
            r.talk_minutes_per_agent_hour,
            r.abandon_rate * 100.0,
            r.peak_window_abandon_rate * 100.0,
            r.calls_per_agent_hour,
            r.time_to_connect_p50,
            r.time_to_connect_p95,
            r.utilization * 100.0,
            r.dials,
        ));
    }
    s
}
