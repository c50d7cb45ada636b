//! The engine against third-party peers: Kamailio (Debian) as the trunk proxy/registrar, a
//! baresip (Debian) registered through it as the lead — it answers and says "Hello?" then
//! stays silent — and a second baresip as the agent's softphone, also reached through
//! Kamailio. One campaign call: AMD says human, the lead is bridged to the agent, the call is
//! recorded, and audio crosses the bridge both ways (each baresip records what it hears).
//!
//! Skips with a notice when kamailio or baresip is missing, unless
//! SWITCHBOARD_REQUIRE_INTEROP=1 (CI), then it fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_engine::calls::CallFilter;
use switchboard_engine::campaigns::CampaignInput;
use switchboard_engine::import::ImportOptions;
use switchboard_engine::runner::{DialTrunkConfig, Dialer, DialerConfig, StaticTrunks};
use switchboard_engine::tenancy::{NewUser, Role};
use switchboard_engine::{Store, StoreOptions};
use switchboard_media::runtime::{MediaRuntime, RuntimeConfig};
use switchboard_sip::endpoint::{Endpoint, EndpointConfig, Transport};
use tokio::time::timeout;

const PASSWORD: &str = "s3cret-interop";
const LEAD: &str = "+12125552300";

fn installed(cmd: &str) -> bool {
    let ok = Command::new("which")
        .arg(cmd)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("SWITCHBOARD_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("{cmd} is not installed but SWITCHBOARD_REQUIRE_INTEROP=1");
        }
        eprintln!("NOTICE: {cmd} not installed; skipping the engine interop test");
    }
    ok
}

fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A child process stopped with SIGTERM (then SIGKILL) on drop, its folder removed.
struct Proc {
    child: Child,
    dir: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..30 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sb-interop-{tag}-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Registrar with digest (fixed password) and a record-routing proxy to registered users.
fn kamailio_cfg(port: u16) -> String {
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=1
auto_aliases=no
listen=udp:127.0.0.1:{port}
alias="127.0.0.1:{port}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {{ sl_send_reply("200", "Keepalive"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("REGISTER")) {{
        if (!pv_www_authenticate("$td", "{PASSWORD}", "0")) {{ www_challenge("$td", "0"); exit; }}
        consume_credentials();
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    remove_hf("Route");
    if (is_method("INVITE")) {{ record_route(); }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"#
    )
}

async fn options_ready(addr: SocketAddr, user: &str) -> bool {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let mut buf = vec![0u8; 4096];
    for i in 1..=100 {
        let probe = format!(
            "OPTIONS sip:{user}{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKready{i}\r\n\
             From: <sip:probe@{me}>;tag=r\r\nTo: <sip:{user}{addr}>\r\nCall-ID: ready{i}@test\r\n\
             CSeq: {i} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let _ = sock.send_to(probe.as_bytes(), addr).await;
        if let Ok(Ok(_)) = timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await {
            return true;
        }
    }
    false
}

fn wav_bytes(samples: &[i16]) -> Vec<u8> {
    let data = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// A baresip registered at `kamailio` as `user`, auto-answering, playing `play` (it hangs up
/// when the file ends) and recording what it hears to `heard.wav`.
async fn baresip(tag: &str, user: &str, kamailio: SocketAddr, play: &[i16]) -> Proc {
    let dir = tmp(tag);
    let port = free_port();
    let play_path = dir.join("play.wav");
    std::fs::write(&play_path, wav_bytes(play)).unwrap();
    let config = format!(
        "poll_method\t\tepoll\nsip_listen\t\t127.0.0.1:{port}\nnet_interface\t\t127.0.0.1\n\
         audio_player\t\taufile,{dir}/heard.wav\naudio_source\t\taufile,{play}\naudio_alert\t\taufile,{play}\n\
         module_path\t\t/usr/lib/baresip/modules\nmodule\t\t\tg711.so\nmodule\t\t\taufile.so\nmodule\t\t\tsndfile.so\n\
         module_tmp\t\taccount.so\nmodule_app\t\tmenu.so\nsnd_path\t\t{dir}\n",
        dir = dir.display(),
        play = play_path.display()
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!("<sip:{user}@{kamailio}>;auth_pass={PASSWORD};answermode=auto;regint=300\n"),
    )
    .unwrap();
    std::fs::write(dir.join("contacts"), "").unwrap();
    let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
    let child = Command::new("baresip")
        .arg("-f")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn baresip");
    Proc { child, dir }
}

fn rms(s: &[i16]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    (s.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / s.len() as f64).sqrt()
}

/// What a baresip heard: its `sndfile` module dumps the decoded audio to `dump-*-dec.wav`.
fn heard(dir: &Path) -> Vec<i16> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("dump-") && name.ends_with("-dec.wav") {
            if let Ok(w) = switchboard_media::wav::read_file(&e.path()) {
                return w.samples.iter().map(|&v| v as i16).collect();
            }
        }
    }
    Vec::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_call_through_kamailio_to_baresip_is_bridged_to_a_baresip_agent() {
    if !installed("kamailio") || !installed("baresip") {
        return;
    }
    // Kamailio.
    let kdir = tmp("kamailio");
    let kport = free_port();
    std::fs::write(kdir.join("kamailio.cfg"), kamailio_cfg(kport)).unwrap();
    let log = std::fs::File::create(kdir.join("kamailio.log")).unwrap();
    let child = Command::new("kamailio")
        .args(["-DD", "-E", "-f"])
        .arg(kdir.join("kamailio.cfg"))
        .args(["-w", &kdir.to_string_lossy()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn kamailio");
    let _kamailio = Proc { child, dir: kdir };
    let kaddr: SocketAddr = ([127, 0, 0, 1], kport).into();
    assert!(options_ready(kaddr, "").await, "kamailio did not start");

    // The lead says "Hello?" then is silent for 12 s (then baresip hangs up); the agent talks.
    let mut lead_audio = switchboard_sim::audio::hello(3);
    lead_audio.extend(std::iter::repeat_n(0i16, 8000 * 10));
    let mut agent_audio = Vec::new();
    for i in 0..8 {
        agent_audio.extend(switchboard_sim::audio::burst(100 + i));
        agent_audio.extend(std::iter::repeat_n(0i16, 1600));
    }
    while agent_audio.len() < 8000 * 30 {
        let more = agent_audio.clone();
        agent_audio.extend(more);
    }
    let lead = baresip("lead", LEAD, kaddr, &lead_audio).await;
    let agent = baresip("agent", "agent1", kaddr, &agent_audio).await;
    // Wait until both registered (Kamailio routes to them).
    let registered = |dir: &Path| {
        std::fs::read_to_string(dir.join("baresip.log"))
            .unwrap_or_default()
            .contains("200 OK")
    };
    for _ in 0..100 {
        if registered(&lead.dir) && registered(&agent.dir) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        registered(&lead.dir) && registered(&agent.dir),
        "baresip registration failed"
    );

    // Store: one campaign, one lead, one agent whose endpoint is the agent baresip's AOR.
    let dir = tmp("engine");
    let db = format!("sqlite://{}?mode=rwc", dir.join("sb.db").display());
    let store = Store::connect(&db, &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let (t, _) = store
        .create_tenant_with_owner(
            "Interop",
            &NewUser {
                email: "o@interop.test".into(),
                password_hash: "x".into(),
                role: Role::Owner,
                first_name: None,
                last_name: None,
                phone: None,
            },
        )
        .await
        .unwrap();
    let c = store
        .create_campaign(
            &t.id,
            serde_json::from_value::<CampaignInput>(json!({
                "name": "Interop", "caller_id": "+14155550000", "dial_mode": "progressive",
                "amd_enabled": true, "record_calls": true,
                "retry_policy": {"max_attempts": 1, "delay_minutes": 1, "retry_on_no_answer": false, "retry_on_busy": false, "retry_on_voicemail": false}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let csv = format!(
        "phone,timezone\n{LEAD},{}\n",
        switchboard_sim::daytime_zone()
    );
    store
        .import_leads(
            &t.id,
            &c.id,
            None,
            std::io::Cursor::new(csv.into_bytes()),
            &ImportOptions {
                default_country: "US".into(),
            },
        )
        .await
        .unwrap();
    let a = store
        .create_agent(
            &t.id,
            serde_json::from_value(
                json!({"name": "Agent", "endpoint": format!("sip:agent1@{kaddr}")}),
            )
            .unwrap(),
        )
        .await
        .unwrap();

    // The engine, with Kamailio as its trunk.
    let endpoint = Arc::new(
        Endpoint::bind(EndpointConfig::new("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap(),
    );
    let media = MediaRuntime::start(RuntimeConfig {
        loops: 1,
        bind_ip: "127.0.0.1".parse().unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let trunks = StaticTrunks(vec![DialTrunkConfig {
        id: "kamailio".into(),
        name: "kamailio".into(),
        server: kaddr.to_string(),
        domain: kaddr.to_string(),
        username: None,
        password: None,
        transport: Transport::Udp,
        max_concurrent: 0,
        max_cps: 0.0,
    }]);
    let mut cfg = DialerConfig::new("127.0.0.1", dir.join("recordings"));
    cfg.campaign_refresh = Duration::from_millis(300);
    cfg.tick = Duration::from_millis(300);
    cfg.timers.wrap_up = Duration::from_millis(500);
    let dialer = Dialer::start(
        store.clone(),
        switchboard_engine::events::EventBus::new(1024),
        endpoint,
        media.clone(),
        Arc::new(trunks),
        cfg,
    )
    .await
    .unwrap();
    dialer.agent_status(&t.id, &a.id, "available").await;
    store.start_campaign(&t.id, &c.id).await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if store.campaign(&t.id, &c.id).await.unwrap().status == "completed" {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(lead.dir.join("baresip.log")).unwrap_or_default();
            panic!("the call did not complete; lead baresip log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    dialer.shutdown().await;
    media.shutdown();

    let (calls, _) = store.calls(&t.id, &CallFilter::default()).await.unwrap();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.disposition.as_deref(), Some("answered"), "{call:?}");
    assert_eq!(call.agent_id.as_deref(), Some(a.id.as_str()));
    let row = store.call_row(&t.id, &call.id).await.unwrap();
    assert_eq!(row.answered_by.as_deref(), Some("human"));
    let rec = switchboard_recordings::read_pcm16(
        &dir.join("recordings").join(row.recording_path.unwrap()),
    )
    .unwrap();
    assert_eq!(rec.channels, 2);
    let left: Vec<i16> = rec.samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = rec.samples.iter().skip(1).step_by(2).copied().collect();
    assert!(
        rms(&right) > 100.0,
        "the agent's audio is on the right channel"
    );
    assert!(left.len() > 8000 * 3, "at least 3 s recorded");
    // Audio crossed the bridge: the lead heard the agent (baresip records what it hears).
    let lead_heard = heard(&lead.dir);
    if lead_heard.is_empty() {
        let files: Vec<_> = std::fs::read_dir(&lead.dir)
            .unwrap()
            .flatten()
            .map(|e| (e.file_name(), e.metadata().map(|m| m.len()).unwrap_or(0)))
            .collect();
        let log = std::fs::read_to_string(lead.dir.join("baresip.log")).unwrap_or_default();
        eprintln!("lead dir: {files:?}\n{log}");
    }
    assert!(
        rms(&lead_heard) > 100.0,
        "the lead heard the agent: rms {:.0} over {} samples",
        rms(&lead_heard),
        lead_heard.len()
    );
    drop(lead);
    drop(agent);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An agent logs in with a softphone: baresip registers with the engine's own registrar
/// (digest, the login set through the telephony service), the agent is set available, the
/// engine calls the phone at the contact it registered, and a campaign call to a human on
/// the carrier simulator is bridged to it — baresip hears the lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_softphone_registered_with_the_engine_is_called_and_bridged() {
    use switchboard_engine::telephony::{AgentSipInput, SecretBox, Telephony};
    use switchboard_sim::{Behavior, Carrier, CarrierConfig, Plan};
    if !installed("baresip") {
        return;
    }
    let dir = tmp("softphone");
    let db = format!("sqlite://{}?mode=rwc", dir.join("sb.db").display());
    let store = Store::connect(&db, &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let (t, _) = store
        .create_tenant_with_owner(
            "Softphone",
            &NewUser {
                email: "o@softphone.test".into(),
                password_hash: "x".into(),
                role: Role::Owner,
                first_name: None,
                last_name: None,
                phone: None,
            },
        )
        .await
        .unwrap();
    let c = store
        .create_campaign(
            &t.id,
            serde_json::from_value::<CampaignInput>(json!({
                "name": "Softphone", "caller_id": "+14155550000", "dial_mode": "progressive",
                "amd_enabled": true, "record_calls": false,
                "retry_policy": {"max_attempts": 1, "delay_minutes": 1, "retry_on_no_answer": false, "retry_on_busy": false, "retry_on_voicemail": false}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let csv = format!(
        "phone,timezone\n{LEAD},{}\n",
        switchboard_sim::daytime_zone()
    );
    store
        .import_leads(
            &t.id,
            &c.id,
            None,
            std::io::Cursor::new(csv.into_bytes()),
            &ImportOptions {
                default_country: "US".into(),
            },
        )
        .await
        .unwrap();
    // No endpoint, no phone: the softphone login is the agent's only way to be reached.
    let a = store
        .create_agent(
            &t.id,
            serde_json::from_value(json!({"name": "Softphone agent"})).unwrap(),
        )
        .await
        .unwrap();

    let events = switchboard_engine::events::EventBus::new(1024);
    let telephony = Telephony::start(
        store.clone(),
        events.clone(),
        SecretBox::new(SecretBox::generate_key()),
        switchboard_engine::telephony::EndpointConfig::new("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let engine_addr = telephony.local_addr();
    let login = telephony
        .set_agent_sip(
            &t.id,
            &a.id,
            &AgentSipInput {
                username: "agent7".into(),
                password: PASSWORD.into(),
            },
        )
        .await
        .unwrap();
    assert!(!login.registered);
    assert_eq!(login.registrar, format!("sip:{engine_addr}"));

    // Before the phone registers, making the agent available loses the leg with a reason.
    let carrier = Carrier::start(CarrierConfig {
        ring: Duration::from_millis(200),
        ..CarrierConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            Plan::new().suffix(
                "0",
                Behavior::Human {
                    talk: Duration::from_secs(6),
                },
            ),
        )
    })
    .await
    .unwrap();
    let media = MediaRuntime::start(RuntimeConfig {
        loops: 1,
        bind_ip: "127.0.0.1".parse().unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let trunks = StaticTrunks(vec![DialTrunkConfig {
        id: "sim".into(),
        name: "sim".into(),
        server: carrier.sip_addr().to_string(),
        domain: carrier.sip_addr().ip().to_string(),
        username: None,
        password: None,
        transport: Transport::Udp,
        max_concurrent: 0,
        max_cps: 0.0,
    }]);
    let mut cfg = DialerConfig::new("127.0.0.1", dir.join("recordings"));
    cfg.campaign_refresh = Duration::from_millis(300);
    cfg.tick = Duration::from_millis(300);
    cfg.timers.wrap_up = Duration::from_millis(500);
    let dialer = Dialer::start(
        store.clone(),
        events.clone(),
        telephony.endpoint(),
        media.clone(),
        Arc::new(trunks),
        cfg,
    )
    .await
    .unwrap();
    let mut bus = events.subscribe();
    dialer.agent_status(&t.id, &a.id, "available").await;
    let lost = timeout(Duration::from_secs(10), async {
        loop {
            let ev = bus.recv().await.unwrap();
            if ev.kind == "agent:leg:lost" {
                return ev;
            }
        }
    })
    .await
    .expect("agent:leg:lost while the phone is not registered");
    assert!(
        lost.data["reason"]
            .as_str()
            .unwrap()
            .contains("agent7) is not registered"),
        "{:?}",
        lost.data
    );

    // The phone registers with the engine (digest, realm "switchboard").
    let mut lead_audio = Vec::new();
    while lead_audio.len() < 8000 * 30 {
        lead_audio.extend(std::iter::repeat_n(0i16, 800));
    }
    let phone = baresip("softphone", "agent7", engine_addr, &lead_audio).await;
    let mut registered = None;
    for _ in 0..100 {
        let s = telephony.agent_sip(&t.id, &a.id).await.unwrap();
        if s.registered {
            registered = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = registered.unwrap_or_else(|| {
        let log = std::fs::read_to_string(phone.dir.join("baresip.log")).unwrap_or_default();
        panic!("the softphone did not register with the engine:\n{log}")
    });
    assert!(s.contact.as_deref().unwrap().contains("127.0.0.1"), "{s:?}");

    dialer.agent_status(&t.id, &a.id, "available").await;
    for _ in 0..100 {
        if dialer.agents(&t.id)[0].state == "available" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dialer.agents(&t.id)[0].state, "available");
    store.start_campaign(&t.id, &c.id).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while store.campaign(&t.id, &c.id).await.unwrap().status != "completed" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the campaign did not complete"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (calls, _) = store.calls(&t.id, &CallFilter::default()).await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].disposition.as_deref(), Some("answered"));
    assert_eq!(calls[0].agent_id.as_deref(), Some(a.id.as_str()));
    dialer.shutdown().await;
    media.shutdown();
    telephony.shutdown().await;
    carrier.shutdown().await;
    // The phone heard the lead (the simulated person talks after the bridge).
    let got = heard(&phone.dir);
    assert!(
        rms(&got) > 100.0,
        "the softphone heard the lead: rms {:.0} over {} samples",
        rms(&got),
        got.len()
    );
    drop(phone);
    let _ = std::fs::remove_dir_all(&dir);
}
