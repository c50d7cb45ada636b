//! `switchboard call`: an operator's test dialer and the SIP load driver.
//!
//! One [`Endpoint`] and one media loop; each call opens an RTP stream (sending the `--play`
//! file once, then silence), offers the `--codec` (PCMU, PCMA or opus), and hangs up
//! `--duration` after the answer.
//! `--count N --rate CPS --concurrent C` starts N calls at most CPS per second with at most C
//! at once. With `--json` every event is a JSON line, then a summary; exit status 0 only when
//! every call was answered.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchboard_media::codec::{Codec as MediaCodec, DEFAULT_OPUS_PAYLOAD_TYPE};
use switchboard_media::runtime::{Clip, FrameSink, FrameSource, MediaHandle, StreamConfig};
use switchboard_sip::endpoint::{
    CallConfig, CallEvent, Endpoint, EndpointConfig, Transport, TrunkConfig,
};
use switchboard_sip::sdp::{Codec, LocalMedia};
use switchboard_sip::{AuthCredentials, CallOutcome, RegistrationFailure, RegistrationStatus};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::carrier::start_media;
use crate::cli::carrier_sim::port_range;
use crate::record::{RecordSink, RecordSource};
use crate::rng::Rng;
use crate::script::{Meter, Part, Script};
use crate::{Error, Result};

/// Flags of `switchboard call`.
#[derive(Debug, Clone, clap::Args)]
pub struct CallArgs {
    /// Whom to call (Request-URI and To), e.g. sip:+15550100001@127.0.0.1:5070.
    #[arg(long)]
    pub to: String,
    /// Send through this proxy (host:port or a sip: URI); else to the host of --to.
    #[arg(long)]
    pub proxy: Option<String>,
    /// Digest user (for --register and for challenged INVITEs).
    #[arg(long)]
    pub username: Option<String>,
    /// Digest password.
    #[arg(long, env = "SWITCHBOARD_SIP_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// From URI (default sip:USERNAME@DOMAIN-of---to, or sip:switchboard@...).
    #[arg(long)]
    pub from: Option<String>,
    /// Local SIP address (RTP binds on its IP).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: SocketAddr,
    /// Register with the proxy (or the --to host) first; a refusal exits non-zero.
    #[arg(long)]
    pub register: bool,
    /// Stay on the line this long after the answer, then hang up (s).
    #[arg(long, default_value_t = 0.0)]
    pub duration: f64,
    /// Play this WAV file once after the answer (any rate; the first channel).
    #[arg(long)]
    pub play: Option<PathBuf>,
    /// Write received (left) and sent (right) audio to this WAV file (one call only).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Number of calls.
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// Calls started per second at most (default: as fast as --concurrent allows).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Calls in progress at most.
    #[arg(long, default_value_t = 1)]
    pub concurrent: usize,
    /// Cancel a call not answered within this many seconds.
    #[arg(long, default_value_t = 60.0)]
    pub ring_timeout: f64,
    /// Codec offered: pcmu, pcma or opus.
    #[arg(long, default_value = "pcmu")]
    pub codec: String,
    /// Use TCP instead of UDP for SIP.
    #[arg(long)]
    pub tcp: bool,
    /// RTP port range MIN-MAX.
    #[arg(long, default_value = "20000-29999")]
    pub rtp_ports: String,
    /// One JSON object per line: events, then {"summary": ...}.
    #[arg(long)]
    pub json: bool,
}

/// How a call ended, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Answered,
    Busy,
    NoAnswer,
    Failed,
}

struct Outcome {
    class: Class,
    setup_ms: Option<f64>,
}

struct Ctx {
    ep: Endpoint,
    media: MediaHandle,
    ip: IpAddr,
    to: String,
    from: String,
    proxy: Option<String>,
    auth: Option<AuthCredentials>,
    transport: Transport,
    codec: MediaCodec,
    play: Option<Arc<Clip>>,
    duration: Duration,
    ring_timeout: Duration,
    record: Option<PathBuf>,
    json: bool,
    verbose: bool,
}

fn secs(flag: &'static str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| Error::InvalidArgument {
        flag,
        reason: format!("{v} is not a duration in seconds"),
    })
}

fn emit(json: bool, value: serde_json::Value, text: impl FnOnce() -> String) {
    let mut out = std::io::stdout().lock();
    let _ = if json {
        writeln!(out, "{value}")
    } else {
        writeln!(out, "{}", text())
    };
}

/// `host:port` of a proxy given as `host:port` or `sip:host:port;lr`.
fn proxy_hostport(p: &str) -> String {
    let p = p.trim().trim_start_matches('<').trim_end_matches('>');
    let p = p
        .strip_prefix("sips:")
        .or_else(|| p.strip_prefix("sip:"))
        .unwrap_or(p);
    let p = p.rsplit_once('@').map_or(p, |(_, h)| h);
    p.split(';').next().unwrap_or(p).to_owned()
}

impl CallArgs {
    fn validate(&self) -> Result<()> {
        let bad = |flag, reason: &str| {
            Err(Error::InvalidArgument {
                flag,
                reason: reason.to_owned(),
            })
        };
        let lower = self.to.trim().to_ascii_lowercase();
        let is_uri = (lower.starts_with("sip:") || lower.starts_with("sips:"))
            && !self.to.trim().contains(char::is_whitespace)
            && switchboard_sip::transport::uri_host_port(&self.to)
                .is_some_and(|(h, _)| !h.is_empty());
        if !is_uri {
            return bad(
                "to",
                "expected a SIP URI such as sip:+15550100001@127.0.0.1:5070",
            );
        }
        if self.count == 0 {
            return bad("count", "must be at least 1");
        }
        if self.concurrent == 0 {
            return bad("concurrent", "must be at least 1");
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                return bad("rate", "must be a positive number of calls per second");
            }
        }
        if self.record.is_some() && self.count > 1 {
            return bad("record", "records one call; drop --count or set it to 1");
        }
        if self.register && (self.username.is_none() || self.password.is_none()) {
            return bad("register", "needs --username and --password");
        }
        if self.password.is_some() && self.username.is_none() {
            return bad("password", "needs --username");
        }
        Ok(())
    }
}

/// Places the calls; `Err(NotAllAnswered)` when any call was not answered.
pub async fn run(args: CallArgs) -> Result<()> {
    args.validate()?;
    crate::carrier::check_bind(args.bind)?;
    let codec = match args.codec.to_ascii_lowercase().as_str() {
        "pcmu" | "ulaw" => MediaCodec::Pcmu,
        "pcma" | "alaw" => MediaCodec::Pcma,
        "opus" => MediaCodec::opus(DEFAULT_OPUS_PAYLOAD_TYPE),
        other => {
            return Err(Error::InvalidArgument {
                flag: "codec",
                reason: format!("{other:?}: pcmu, pcma or opus"),
            })
        }
    };
    let duration = secs("duration", args.duration)?;
    let ring_timeout = secs("ring-timeout", args.ring_timeout)?;
    let play = match &args.play {
        Some(p) => Some(Clip::from_pcm(&crate::audio::read_wav(p)?)),
        None => None,
    };
    let (host, port) =
        switchboard_sip::transport::uri_host_port(&args.to).ok_or(Error::InvalidArgument {
            flag: "to",
            reason: "no host".to_owned(),
        })?;
    let domain = match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let user = args.username.clone();
    let from = args
        .from
        .clone()
        .unwrap_or_else(|| format!("sip:{}@{domain}", user.as_deref().unwrap_or("switchboard")));
    let proxy = args.proxy.as_deref().map(proxy_hostport);
    let transport = if args.tcp {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    let media = start_media(args.bind.ip(), port_range("rtp-ports", &args.rtp_ports)?, 1)?;
    let ep = Endpoint::bind(EndpointConfig::new(args.bind))
        .await
        .map_err(Error::sip("bind SIP endpoint"))?;
    let auth = match (&args.username, &args.password) {
        (Some(u), Some(p)) => Some(AuthCredentials {
            username: u.clone(),
            password: p.clone(),
        }),
        _ => None,
    };

    let mut registration = None;
    if args.register {
        let server = proxy.clone().unwrap_or_else(|| domain.clone());
        let mut trunk = TrunkConfig::new(
            &server,
            &domain,
            user.as_deref().unwrap_or_default(),
            args.password.as_deref(),
        );
        trunk.transport = transport;
        let mut reg = ep.register(trunk).await.map_err(Error::sip("register"))?;
        let status = tokio::time::timeout(Duration::from_secs(40), reg.settled()).await;
        match status {
            Ok(RegistrationStatus::Registered { expires }) => emit(
                args.json,
                serde_json::json!({"event": "registered", "expires": expires}),
                || format!("registered for {expires} s"),
            ),
            other => {
                let failure = match other {
                    Ok(RegistrationStatus::Failed(f)) => f,
                    _ => RegistrationFailure {
                        status: None,
                        reason: "no answer from the registrar".to_owned(),
                    },
                };
                emit(
                    args.json,
                    serde_json::json!({"event": "registration_failed",
                        "status": failure.status, "reason": failure.reason}),
                    String::new,
                );
                ep.shutdown().await;
                let _ = tokio::task::spawn_blocking(move || media.shutdown()).await;
                return Err(Error::RegistrationFailed { failure });
            }
        }
        registration = Some(reg);
    }

    let ctx = Arc::new(Ctx {
        ep,
        media,
        ip: args.bind.ip(),
        to: args.to.clone(),
        from,
        proxy,
        auth,
        transport,
        codec,
        play,
        duration,
        ring_timeout,
        record: args.record.clone(),
        json: args.json,
        verbose: args.count == 1,
    });

    let permits = Arc::new(Semaphore::new(args.concurrent));
    let start = Instant::now();
    let mut calls = JoinSet::new();
    let mut outcomes = Vec::with_capacity(args.count.min(1 << 20) as usize);
    for i in 0..args.count {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        if let Some(rate) = args.rate {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        }
        let ctx = Arc::clone(&ctx);
        calls.spawn(async move {
            let o = one_call(&ctx, i + 1).await;
            drop(permit);
            o
        });
        while let Some(done) = calls.try_join_next() {
            outcomes.extend(done.ok());
        }
    }
    while let Some(done) = calls.join_next().await {
        outcomes.extend(done.ok());
    }
    let wall = start.elapsed().as_secs_f64();

    let count = |c| outcomes.iter().filter(|o| o.class == c).count() as u64;
    let attempted = args.count;
    let answered = count(Class::Answered);
    let mut setup: Vec<f64> = outcomes.iter().filter_map(|o| o.setup_ms).collect();
    setup.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        (!setup.is_empty()).then(|| {
            let i = ((setup.len() as f64 * p).ceil() as usize).clamp(1, setup.len()) - 1;
            (setup[i] * 100.0).round() / 100.0
        })
    };
    let round = |v: f64| (v * 100.0).round() / 100.0;
    let summary = serde_json::json!({"summary": {
        "attempted": attempted,
        "answered": answered,
        "failed": attempted - answered - count(Class::Busy) - count(Class::NoAnswer),
        "busy": count(Class::Busy),
        "no_answer": count(Class::NoAnswer),
        "cps": if wall > 0.0 { round(attempted as f64 / wall) } else { 0.0 },
        "setup_ms_p50": pct(0.5),
        "setup_ms_p99": pct(0.99),
        "wall_s": (wall * 1000.0).round() / 1000.0,
    }});
    emit(args.json, summary.clone(), || summary.to_string());
    let _ = std::io::stdout().flush();

    if let Some(mut reg) = registration {
        let _ = tokio::time::timeout(Duration::from_secs(5), reg.unregister()).await;
    }
    if let Some(ctx) = Arc::into_inner(ctx) {
        ctx.ep.shutdown().await;
        let media = ctx.media;
        let _ = tokio::task::spawn_blocking(move || media.shutdown()).await;
    }
    if answered == attempted {
        Ok(())
    } else {
        Err(Error::NotAllAnswered {
            attempted,
            answered,
        })
    }
}

/// Where a recording's samples arrive when its stream closes.
type Recorded = tokio::sync::oneshot::Receiver<Vec<i16>>;

/// The stream of one call: its source and sink (recording ones for `--record`).
struct Media {
    stream: switchboard_media::runtime::StreamHandle,
    recorded: Option<(Recorded, Recorded)>,
}

fn open_media(ctx: &Ctx, index: u64) -> Result<Media> {
    let parts = ctx.play.iter().map(|c| Part::Play(Arc::clone(c))).collect();
    let script = Script::new(parts, Rng::new(index));
    let (source, sink, recorded): (Box<dyn FrameSource>, Box<dyn FrameSink>, _) =
        if ctx.record.is_some() {
            let max = ctx.duration + ctx.ring_timeout + Duration::from_secs(10);
            let max = max.min(Duration::from_secs(3600));
            let (sink, rx_left) = RecordSink::new(ctx.media.elapsed(), max);
            let (source, rx_right) = RecordSource::new(script, std::time::Instant::now(), max);
            (Box::new(source), Box::new(sink), Some((rx_left, rx_right)))
        } else {
            (Box::new(script), Box::new(Meter::default()), None)
        };
    let stream = ctx
        .media
        .open_stream(StreamConfig {
            remote: None,
            codec: ctx.codec,
            dtmf_payload_type: Some(101),
            source: Some(source),
            sink: Some(sink),
            colocate_with: None,
        })
        .map_err(Error::media("open RTP stream"))?;
    Ok(Media { stream, recorded })
}

async fn one_call(ctx: &Ctx, index: u64) -> Outcome {
    let failed = Outcome {
        class: Class::Failed,
        setup_ms: None,
    };
    let media = match open_media(ctx, index) {
        Ok(m) => m,
        Err(e) => {
            emit(
                ctx.json,
                serde_json::json!({"event": "error", "call": index, "reason": e.to_string()}),
                || format!("call {index}: {e}"),
            );
            return failed;
        }
    };
    let mut local = LocalMedia::new(&ctx.ip.to_string(), media.stream.local_addr().port(), index);
    local.codecs = vec![
        match ctx.codec {
            MediaCodec::Pcmu => Codec::pcmu(),
            MediaCodec::Pcma => Codec::pcma(),
            MediaCodec::Opus { payload_type } => Codec::opus(payload_type),
        },
        Codec::telephone_event(101),
    ];
    let mut config = CallConfig::new(&ctx.to, &ctx.from, local);
    config.proxy = ctx.proxy.clone();
    config.auth = ctx.auth.clone();
    config.transport = ctx.transport;
    let started = Instant::now();
    let mut call = match ctx.ep.call(config).await {
        Ok(c) => c,
        Err(e) => {
            emit(
                ctx.json,
                serde_json::json!({"event": "error", "call": index, "reason": e.to_string()}),
                || format!("call {index}: {e}"),
            );
            return failed;
        }
    };
    let mut deadline = started + ctx.ring_timeout;
    let mut setup_ms = None;
    let mut rang = false;
    let mut ending = false;
    let cause = loop {
        tokio::select! {
            ev = call.next_event() => match ev {
                Some(CallEvent::Ringing { status }) if !rang => {
                    rang = true;
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    if ctx.json {
                        emit(true, serde_json::json!({"event": "ringing", "call": index,
                            "status": status, "ms": (ms * 100.0).round() / 100.0}), String::new);
                    } else if ctx.verbose {
                        emit(false, serde_json::Value::Null, || format!("ringing ({status})"));
                    }
                }
                Some(CallEvent::Answered { media: negotiated, .. }) => {
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    setup_ms = Some(ms);
                    let remote = negotiated
                        .remote_address
                        .parse::<IpAddr>()
                        .ok()
                        .map(|ip| SocketAddr::new(ip, negotiated.remote_port));
                    if let Some(r) = remote {
                        let _ = media.stream.set_remote(r);
                    }
                    let c = &negotiated.codec;
                    match MediaCodec::from_rtpmap(&c.name, c.clock_rate, c.payload_type) {
                        // An answer may name our codec on another payload type.
                        Some(codec) if codec != ctx.codec => {
                            let te = negotiated.telephone_event.as_ref().map(|t| t.payload_type);
                            let _ = media.stream.set_codec(codec, te);
                        }
                        _ => {}
                    }
                    if ctx.json {
                        emit(true, serde_json::json!({"event": "answered", "call": index,
                            "setup_ms": (ms * 100.0).round() / 100.0,
                            "codec": negotiated.codec.name}), String::new);
                    } else if ctx.verbose {
                        emit(false, serde_json::Value::Null, || {
                            format!("answered after {ms:.1} ms ({})", negotiated.codec.name)
                        });
                    }
                    deadline = Instant::now() + ctx.duration;
                }
                Some(CallEvent::Ended(cause)) => break Some(cause),
                Some(_) => {}
                None => break None,
            },
            () = tokio::time::sleep_until(deadline), if !ending => {
                // Unanswered: CANCEL; answered: BYE. Then wait for the end.
                let _ = call.hangup();
                ending = true;
            }
        }
    };
    let class = match &cause {
        _ if setup_ms.is_some() => Class::Answered,
        Some(c) => match c.outcome {
            CallOutcome::Busy => Class::Busy,
            CallOutcome::NoAnswer | CallOutcome::Cancelled => Class::NoAnswer,
            _ => Class::Failed,
        },
        None => Class::Failed,
    };
    let Media { stream, recorded } = media;
    let received = if ctx.json || ctx.verbose {
        stream.stats().await.map(|r| r.stats.packets)
    } else {
        None
    };
    stream.close();
    let (outcome, status, reason, by_remote) = match &cause {
        Some(c) => (
            outcome_name(c.outcome),
            c.status,
            c.reason.clone(),
            c.by_remote,
        ),
        None => ("failed", None, "endpoint stopped".to_owned(), false),
    };
    if ctx.json {
        emit(
            true,
            serde_json::json!({"event": "ended", "call": index, "outcome": outcome,
                "status": status, "reason": reason, "by_remote": by_remote,
                "rtp_received": received}),
            String::new,
        );
    } else if ctx.verbose {
        emit(false, serde_json::Value::Null, || {
            let status = status.map(|s| format!("{s} ")).unwrap_or_default();
            format!("ended: {outcome} ({status}{reason})")
        });
    }
    if let (Some(path), Some((left, right))) = (&ctx.record, recorded) {
        let wait = Duration::from_secs(5);
        let left = tokio::time::timeout(wait, left)
            .await
            .ok()
            .and_then(|r| r.ok());
        let right = tokio::time::timeout(wait, right)
            .await
            .ok()
            .and_then(|r| r.ok());
        let (left, right) = (left.unwrap_or_default(), right.unwrap_or_default());
        if let Err(e) = crate::wavout::write_stereo(path, &left, &right) {
            emit(
                ctx.json,
                serde_json::json!({"event": "error", "call": index, "reason": e.to_string()}),
                || format!("recording: {e}"),
            );
        } else if ctx.json {
            emit(
                true,
                serde_json::json!({"event": "recorded", "call": index,
                    "file": path.display().to_string(), "seconds": left.len().max(right.len()) as f64 / 8000.0}),
                String::new,
            );
        }
    }
    Outcome { class, setup_ms }
}

fn outcome_name(o: CallOutcome) -> &'static str {
    match o {
        CallOutcome::Completed => "completed",
        CallOutcome::Busy => "busy",
        CallOutcome::NoAnswer => "no_answer",
        CallOutcome::InvalidNumber => "invalid_number",
        CallOutcome::Cancelled => "cancelled",
        CallOutcome::Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_parse() {
        assert_eq!(proxy_hostport("127.0.0.1:5060"), "127.0.0.1:5060");
        assert_eq!(proxy_hostport("sip:127.0.0.1:5070;lr"), "127.0.0.1:5070");
        assert_eq!(proxy_hostport("<sip:p@10.0.0.1:5060>"), "10.0.0.1:5060");
    }
}
