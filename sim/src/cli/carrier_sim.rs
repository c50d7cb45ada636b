//! `switchboard carrier-sim`: the carrier simulator from the command line; runs until ctrl-c.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::audio::AudioFiles;
use crate::book::SimCall;
use crate::carrier::{Carrier, CarrierConfig, Impairment};
use crate::plan::Plan;
use crate::{Error, Result};

/// Flags of `switchboard carrier-sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct CarrierSimArgs {
    /// SIP address, UDP and TCP (a concrete IP; RTP binds there too; port 0: any).
    #[arg(long, default_value = "127.0.0.1:5070")]
    pub bind: SocketAddr,
    /// Weighted mix of behaviours for numbers no rule matches: human, machine,
    /// machine_nobeep, busy, no_answer, unavailable, reject:CODE, ring:MS:BEHAVIOUR.
    #[arg(
        long,
        default_value = "human=60,machine=20,busy=5,no_answer=10,unavailable=5"
    )]
    pub mix: String,
    /// A rule NUMBER=BEHAVIOUR or *SUFFIX=BEHAVIOUR (repeatable; exact numbers first, then
    /// the longest suffix), e.g. '*7=machine' or '+15550100001=busy'.
    #[arg(long = "rule")]
    pub rules: Vec<String>,
    /// Ring before answering (ms).
    #[arg(long, default_value_t = 1000)]
    pub ring_ms: u64,
    /// A human hangs up this long after answering (s).
    #[arg(long, default_value_t = 20.0)]
    pub talk_secs: f64,
    /// A machine hangs up this long after answering (s).
    #[arg(long, default_value_t = 30.0)]
    pub machine_hangup_secs: f64,
    /// Demand digest REGISTER with this user (and --register-password).
    #[arg(long, requires = "register_password")]
    pub register_user: Option<String>,
    /// The password for --register-user.
    #[arg(
        long,
        env = "SWITCHBOARD_SIM_PASSWORD",
        hide_env_values = true,
        requires = "register_user"
    )]
    pub register_password: Option<String>,
    /// Also challenge INVITEs (407) for the register credentials.
    #[arg(long, requires = "register_user")]
    pub auth_invites: bool,
    /// Percent of the RTP packets sent that are lost (0-100).
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Each RTP packet sent is delayed by a random 0..=N ms.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u32,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// WAV file in place of the synthetic human greeting.
    #[arg(long)]
    pub human_wav: Option<PathBuf>,
    /// WAV file in place of the synthetic machine greeting.
    #[arg(long)]
    pub machine_wav: Option<PathBuf>,
    /// WAV file in place of the synthetic talk bursts.
    #[arg(long)]
    pub talk_wav: Option<PathBuf>,
    /// RTP port range MIN-MAX.
    #[arg(long, default_value = "40000-49999")]
    pub rtp_ports: String,
    /// Media loops (threads).
    #[arg(long, default_value_t = 1)]
    pub media_loops: usize,
    /// Answer with opus whenever the offer has it (an Opus carrier), not the offer's first codec.
    #[arg(long)]
    pub answer_opus: bool,
    /// Print one JSON line per finished call (and a first line with the address).
    #[arg(long)]
    pub json: bool,
}

fn secs(flag: &'static str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| Error::InvalidArgument {
        flag,
        reason: format!("{v} is not a duration in seconds"),
    })
}

/// Parses `MIN-MAX`.
pub(crate) fn port_range(flag: &'static str, s: &str) -> Result<(u16, u16)> {
    let bad = || Error::InvalidArgument {
        flag,
        reason: format!("{s:?} is not a port range MIN-MAX"),
    };
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
    if lo == 0 || hi <= lo {
        return Err(bad());
    }
    Ok((lo, hi))
}

impl CarrierSimArgs {
    /// The library configuration these flags describe.
    pub fn config(&self) -> Result<CarrierConfig> {
        let talk = secs("talk-secs", self.talk_secs)?;
        let mut plan = Plan::new().mix(&self.mix, talk)?;
        for r in &self.rules {
            plan = plan.rule(r, talk)?;
        }
        if !(0.0..=100.0).contains(&self.loss) {
            return Err(Error::InvalidArgument {
                flag: "loss",
                reason: format!("{} is not a percentage (0-100)", self.loss),
            });
        }
        let mut c = CarrierConfig::new(self.bind, plan);
        c.ring = Duration::from_millis(self.ring_ms);
        c.machine_hangup = secs("machine-hangup-secs", self.machine_hangup_secs)?;
        c.register = match (&self.register_user, &self.register_password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            _ => None,
        };
        c.auth_invites = self.auth_invites;
        c.impair = Impairment {
            loss: self.loss / 100.0,
            jitter_ms: self.jitter_ms,
        };
        c.seed = self.seed;
        c.audio = AudioFiles {
            human_greeting: self.human_wav.clone(),
            machine_greeting: self.machine_wav.clone(),
            talk: self.talk_wav.clone(),
        };
        c.rtp_ports = port_range("rtp-ports", &self.rtp_ports)?;
        c.media_loops = self.media_loops;
        c.answer_opus = self.answer_opus;
        Ok(c)
    }
}

/// One finished call as a JSON object.
pub fn call_json(c: &SimCall) -> serde_json::Value {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    serde_json::json!({
        "id": c.id,
        "number": c.number,
        "call_id": c.call_id,
        "behavior": c.behavior,
        "final_status": c.final_status,
        "ended_by": c.ended_by.map(|b| b.as_str()),
        "end_reason": c.end_reason,
        "ring_ms": c.answered_at.map(|a| ms(a.saturating_sub(c.invited_at))),
        "duration_ms": match (c.answered_at, c.ended_at) {
            (Some(a), Some(e)) => Some(ms(e.saturating_sub(a))),
            _ => None,
        },
        "rtp_received": c.heard.packets,
        "rtp_received_loud": c.heard.loud_frames,
        "rtp_received_mean_abs": (c.heard.mean_abs * 10.0).round() / 10.0,
        "rtp_sent": c.rtp_sent,
    })
}

/// Runs the simulator until ctrl-c (or SIGTERM).
pub async fn run(args: CarrierSimArgs) -> Result<()> {
    let config = args.config()?;
    let carrier = Carrier::start(config).await?;
    let mut finished = carrier.subscribe();
    {
        let mut out = std::io::stdout().lock();
        let addr = carrier.sip_addr();
        let _ = if args.json {
            writeln!(
                out,
                "{}",
                serde_json::json!({ "listening": addr.to_string() })
            )
        } else {
            writeln!(
                out,
                "carrier-sim listening on {addr} (UDP and TCP); ctrl-c stops it"
            )
        };
        let _ = out.flush();
    }
    let stop = crate::cli::shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            call = finished.recv() => match call {
                Ok(c) if args.json => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{}", call_json(&c));
                    let _ = out.flush();
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
        }
    }
    let stats = carrier.stats();
    carrier.shutdown().await;
    let summary = serde_json::json!({"stats": {
        "invites": stats.invites,
        "by_behavior": stats.by_behavior,
        "answered": stats.answered,
        "ended": stats.ended,
        "ended_by_caller": stats.ended_by_caller,
        "ended_by_sim": stats.ended_by_sim,
        "registrations": stats.registrations,
        "auth_refused": stats.auth_refused,
    }});
    if args.json {
        println!("{summary}");
    } else {
        eprintln!("carrier-sim stopped: {summary}");
    }
    Ok(())
}
