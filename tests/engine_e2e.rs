//! The dialing engine end to end, over real UDP on loopback: a campaign dials the carrier
//! simulator (humans, machines, busy, no answer, invalid numbers, a failing carrier), humans
//! are bridged to simulated agent phones, machines get the voicemail drop, retries happen on
//! schedule (a retry "minute" lasts one second here), connected calls are recorded in stereo.
//! Afterwards every lead has the right disposition, counters and call rows agree, and each
//! recording is a valid two-channel WAV of the right length with audio on both channels.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_engine::calls::CallFilter;
use switchboard_engine::campaigns::CampaignInput;
use switchboard_engine::import::ImportOptions;
use switchboard_engine::leads::LeadFilter;
use switchboard_engine::runner::{DialTrunkConfig, Dialer, DialerConfig, StaticTrunks};
use switchboard_engine::tenancy::{NewUser, Role};
use switchboard_engine::{Store, StoreOptions};
use switchboard_media::runtime::{MediaRuntime, RuntimeConfig};
use switchboard_sim::{AgentConfig, AgentPhones, Behavior, Carrier, CarrierConfig, Plan};
use switchboard_sip::endpoint::{Endpoint, EndpointConfig, Transport};

fn lo(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

struct Setup {
    store: Store,
    tenant: String,
    campaign: String,
    _dir: tempdir::Dir,
    recordings: std::path::PathBuf,
}

mod tempdir {
    /// A temporary directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p =
                std::env::temp_dir().join(format!("sb-{tag}-{}", uuid::Uuid::now_v7().simple()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

// Last digit of the number → behaviour.
const PLAN: [(&str, &str); 10] = [
    ("0", "human"),
    ("1", "human"),
    ("2", "machine"),
    ("3", "busy"),
    ("4", "no_answer"),
    ("5", "invalid"),
    ("6", "unavailable"),
    ("7", "human"),
    ("8", "machine"),
    ("9", "human"),
];

async fn setup(agent_endpoints: &[String]) -> Setup {
    let dir = tempdir::Dir::new("e2e");
    let db = format!("sqlite://{}?mode=rwc", dir.0.join("sb.db").display());
    let store = Store::connect(&db, &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let (t, _) = store
        .create_tenant_with_owner(
            "E2E",
            &NewUser {
                email: "owner@e2e.test".into(),
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
                "name": "E2E", "caller_id": "+14155550000", "dial_mode": "progressive",
                "amd_enabled": true, "record_calls": true, "voicemail_message_url": "builtin:voicemail",
                "calling_hours_start": "00:00", "calling_hours_end": "23:59",
                "retry_policy": {"max_attempts": 2, "delay_minutes": 1, "retry_on_no_answer": true, "retry_on_busy": true, "retry_on_voicemail": false}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let zone = switchboard_sim::daytime_zone();
    let mut csv = String::from("phone,first_name,timezone\n");
    for (i, _) in PLAN.iter().enumerate() {
        csv.push_str(&format!("+1212555230{i},Lead{i},{zone}\n"));
    }
    let rep = store
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
    assert_eq!(rep.results.inserted, 10, "{rep:?}");
    for (i, ep) in agent_endpoints.iter().enumerate() {
        store
            .create_agent(
                &t.id,
                serde_json::from_value(json!({"name": format!("Agent {i}"), "endpoint": ep}))
                    .unwrap(),
            )
            .await
            .unwrap();
    }
    let recordings = dir.0.join("recordings");
    Setup {
        store,
        tenant: t.id,
        campaign: c.id,
        recordings,
        _dir: dir,
    }
}

fn plan() -> Plan {
    let mut p = Plan::new();
    for (digit, what) in PLAN {
        let b = match what {
            "human" => Behavior::Human {
                talk: Duration::from_secs(4),
            },
            "machine" => Behavior::Machine { beep: true },
            "busy" => Behavior::Busy,
            "no_answer" => Behavior::NoAnswer,
            "invalid" => Behavior::Reject(404),
            _ => Behavior::Unavailable,
        };
        p = p.suffix(digit, b);
    }
    p
}

fn rms(samples: impl Iterator<Item = i16>) -> f64 {
    let (mut sum, mut n) = (0f64, 0usize);
    for s in samples {
        sum += f64::from(s) * f64::from(s);
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        (sum / n as f64).sqrt()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_dials_the_carrier_and_every_lead_ends_right() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("SWITCHBOARD_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let carrier = Carrier::start(CarrierConfig {
        ring: Duration::from_millis(300),
        ..CarrierConfig::new(lo(0), plan())
    })
    .await
    .unwrap();
    let phones = AgentPhones::start_with(AgentConfig::new(lo(0)))
        .await
        .unwrap();
    let eps = vec![phones.uri("agent1"), phones.uri("agent2")];
    let s = setup(&eps).await;

    let endpoint = Arc::new(Endpoint::bind(EndpointConfig::new(lo(0))).await.unwrap());
    let media = MediaRuntime::start(RuntimeConfig {
        loops: 1,
        bind_ip: "127.0.0.1".parse().unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let trunks = StaticTrunks(vec![DialTrunkConfig {
        id: "sim".into(),
        name: "carrier-sim".into(),
        server: carrier.sip_addr().to_string(),
        domain: carrier.sip_addr().ip().to_string(),
        username: None,
        password: None,
        transport: Transport::Udp,
        max_concurrent: 0,
        max_cps: 0.0,
    }]);
    let mut cfg = DialerConfig::new("127.0.0.1", s.recordings.clone());
    cfg.retry_unit = Duration::from_secs(1);
    cfg.timers.dial_timeout = Duration::from_secs(3);
    cfg.timers.min_ring = Duration::from_secs(2);
    cfg.timers.wrap_up = Duration::from_millis(500);
    cfg.campaign_refresh = Duration::from_millis(300);
    cfg.tick = Duration::from_millis(200);
    cfg.abandon_prompt = switchboard_media::runtime::Clip::from_pcm(&[0; 1600]);
    let events = switchboard_engine::events::EventBus::new(4096);
    let mut bus = events.subscribe();
    let dialer = Dialer::start(
        s.store.clone(),
        events.clone(),
        endpoint.clone(),
        media.clone(),
        Arc::new(trunks),
        cfg,
    )
    .await
    .unwrap();
    let agents = s.store.agents(&s.tenant, None, None).await.unwrap();
    for a in &agents {
        dialer.agent_status(&s.tenant, &a.id, "available").await;
    }
    s.store
        .start_campaign(&s.tenant, &s.campaign)
        .await
        .unwrap();
    // While the campaign runs, a flood of random and mutated datagrams hits the engine's SIP
    // port (loopback, 4,000 datagrams over ~4 s): nothing may crash and the calls complete.
    let flood_to = endpoint.local_addr();
    let flood = tokio::spawn(async move {
        let sock = tokio::net::UdpSocket::bind(lo(0)).await.unwrap();
        let me = sock.local_addr().unwrap();
        let valid = format!(
            "INVITE sip:x@{flood_to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKf\r\nFrom: <sip:f@{me}>;tag=1\r\n\
             To: <sip:x@{flood_to}>\r\nCall-ID: flood@{me}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..4000u32 {
            let mut d = if i % 2 == 0 {
                let mut m = valid.clone();
                for _ in 0..(1 + next() % 8) {
                    let at = (next() as usize) % m.len();
                    m[at] = next() as u8;
                }
                m
            } else {
                (0..(next() % 1400) as usize)
                    .map(|_| next() as u8)
                    .collect()
            };
            if d.is_empty() {
                d.push(0);
            }
            let _ = sock.send_to(&d, flood_to).await;
            if i % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    // Until the campaign completes (bounded).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let c = s.store.campaign(&s.tenant, &s.campaign).await.unwrap();
        if c.status == "completed" {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let (leads, _) = s
                .store
                .leads(
                    &s.tenant,
                    &LeadFilter {
                        campaign_id: s.campaign.clone(),
                        limit: Some(100),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            for l in &leads {
                eprintln!(
                    "lead {} {} {} {:?} next {:?}",
                    l.phone_normalized,
                    l.status,
                    l.call_attempts,
                    l.last_disposition,
                    l.next_call_at
                );
            }
            eprintln!("agents {:?}", dialer.agents(&s.tenant));
            eprintln!("sim {:?}", carrier.stats());
            panic!("campaign did not complete: {c:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    dialer.shutdown().await;
    flood.await.unwrap();
    let st = endpoint.stats();
    assert!(
        st.malformed_dropped() + st.bad_requests_answered() > 0,
        "the flood reached the SIP port"
    );

    // Every lead's end.
    let (leads, _) = s
        .store
        .leads(
            &s.tenant,
            &LeadFilter {
                campaign_id: s.campaign.clone(),
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(leads.len(), 10);
    for l in &leads {
        let digit = &l.phone_normalized[l.phone_normalized.len() - 1..];
        let what = PLAN.iter().find(|(d, _)| *d == digit).unwrap().1;
        let (status, disp, attempts) = match what {
            "human" => ("completed", "answered", 1),
            "machine" => ("failed", "voicemail", 1),
            "busy" => ("failed", "busy", 2),
            "no_answer" => ("failed", "no_answer", 2),
            "invalid" => ("failed", "invalid_number", 1),
            _ => ("failed", "failed", 2),
        };
        assert_eq!(
            (
                l.status.as_str(),
                l.last_disposition.as_deref(),
                l.call_attempts
            ),
            (status, Some(disp), attempts),
            "lead {} ({what})",
            l.phone_normalized
        );
    }

    // Call rows agree with the counters and the simulator.
    let (calls, page) = s
        .store
        .calls(
            &s.tenant,
            &CallFilter {
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let c = s.store.campaign(&s.tenant, &s.campaign).await.unwrap();
    let expected_calls: i64 = leads.iter().map(|l| l.call_attempts).sum();
    assert_eq!(page.total_count, expected_calls);
    assert_eq!(c.calls_made, expected_calls);
    let answered: Vec<_> = calls
        .iter()
        .filter(|c| c.disposition.as_deref() == Some("answered"))
        .collect();
    assert_eq!(answered.len(), 4, "four humans");
    assert_eq!(c.calls_completed, 4);
    assert!(
        calls.iter().all(|c| c.end_time.is_some()),
        "every call closed"
    );
    assert_eq!(
        carrier.stats().invites as i64,
        expected_calls,
        "the carrier saw every attempt"
    );
    let booked: u64 = dialer.stats().dispositions().values().sum();
    assert_eq!(
        booked as i64,
        expected_calls,
        "one result booked per call: {:?}",
        dialer.stats().dispositions()
    );
    assert!(
        calls
            .iter()
            .all(|c| c.outcome.as_deref() != Some("no trunk with room")),
        "no call was re-placed after its end"
    );

    // Retries waited for their delay (1 s here).
    for l in leads.iter().filter(|l| l.call_attempts == 2) {
        let mut starts: Vec<_> = calls
            .iter()
            .filter(|c| c.lead_id.as_deref() == Some(l.id.as_str()))
            .map(|c| c.start_time.unwrap())
            .collect();
        starts.sort();
        assert!(
            starts[1] - starts[0] >= chrono::Duration::milliseconds(1000),
            "retry too soon for {}",
            l.phone_normalized
        );
    }

    // Recordings: stereo, right length, the lead on the left and the agent on the right.
    let mut both_sides = false;
    for call in &answered {
        let row = s.store.call_row(&s.tenant, &call.id).await.unwrap();
        let key = row
            .recording_path
            .as_deref()
            .expect("connected calls are recorded");
        let path = s.recordings.join(key);
        let wav = switchboard_recordings::read_pcm16(Path::new(&path)).unwrap();
        assert_eq!((wav.channels, wav.sample_rate), (2, 8000));
        let secs = wav.samples.len() as f64 / 2.0 / 8000.0;
        let talk = call.talk_time.unwrap() as f64;
        assert!(
            (secs - talk).abs() <= 1.0,
            "recording {secs:.2} s vs talk {talk} s"
        );
        assert!(secs > 0.2, "recording too short: {secs}");
        let left = rms(wav.samples.iter().step_by(2).copied());
        let right = rms(wav.samples.iter().skip(1).step_by(2).copied());
        // The lead talks from the start; the agent's phone talks in bursts with pauses, so
        // only a recording of a few seconds is sure to hold some of it.
        assert!(
            left > 100.0,
            "the lead's audio on the left: {left:.0} ({secs:.2} s)"
        );
        if secs >= 2.5 {
            assert!(
                right > 100.0,
                "the agent's audio on the right: {right:.0} ({secs:.2} s)"
            );
        }
        both_sides |= left > 100.0 && right > 100.0;
    }

    assert!(both_sides, "some recording holds both parties");

    // The agents heard the leads (audio crossed the bridge).
    let agent_calls = phones.calls();
    assert!(
        agent_calls.iter().any(|c| c.heard.loud_frames > 0),
        "{agent_calls:?}"
    );

    // Events: every connected call was announced to its agent.
    let mut pops = 0;
    let mut last_counters = None;
    while let Ok(e) = bus.try_recv() {
        if e.kind == "incoming:call" {
            pops += 1;
        }
        if e.kind == "campaignCounters" {
            last_counters = Some(e.data.clone());
        }
    }
    assert_eq!(pops, 4);
    let counters = last_counters.expect("campaign counters were published");
    assert_eq!(
        counters["calls_made"].as_i64(),
        Some(c.calls_made),
        "{counters}"
    );
    assert_eq!(
        counters["calls_completed"].as_i64(),
        Some(c.calls_completed)
    );
    // Quality per leg on the connected calls: the lead's figures, and the agent leg's.
    let with_quality: Vec<_> = answered.iter().filter_map(|c| c.quality.clone()).collect();
    assert_eq!(
        with_quality.len(),
        answered.len(),
        "every connected call has its quality"
    );
    assert!(with_quality
        .iter()
        .all(|q| q["mos_score"].as_f64().is_some()));
    assert!(
        with_quality
            .iter()
            .any(|q| q["agent_leg"]["mos_score"].as_f64().is_some()),
        "the agent leg's quality is kept too: {with_quality:?}"
    );

    let mut lat = dialer.stats().bridge_latencies();
    lat.sort();
    if !lat.is_empty() {
        let p = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
        eprintln!(
            "human verdict → bridged: n={} p50={:?} p99={:?}",
            lat.len(),
            p(0.5),
            p(0.99)
        );
    }
    carrier.shutdown().await;
    phones.shutdown().await;
    media.shutdown();
}

/// An agent who becomes available is called and kept on the line; when their phone hangs up
/// the engine sets them offline (in memory and in the store) with an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_agent_leg_sets_the_agent_offline() {
    let phones = AgentPhones::start_with(AgentConfig::new(lo(0)))
        .await
        .unwrap();
    let s = setup(&[phones.uri("solo")]).await;
    let endpoint = Arc::new(Endpoint::bind(EndpointConfig::new(lo(0))).await.unwrap());
    let media = MediaRuntime::start(RuntimeConfig {
        loops: 1,
        bind_ip: "127.0.0.1".parse().unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let events = switchboard_engine::events::EventBus::new(1024);
    let mut bus = events.subscribe();
    let dialer = Dialer::start(
        s.store.clone(),
        events,
        endpoint,
        media.clone(),
        Arc::new(StaticTrunks(Vec::new())),
        DialerConfig::new("127.0.0.1", s.recordings.clone()),
    )
    .await
    .unwrap();
    let agent = s
        .store
        .agents(&s.tenant, None, None)
        .await
        .unwrap()
        .remove(0);
    dialer.agent_status(&s.tenant, &agent.id, "available").await;
    let state = |d: &Dialer| d.agents(&s.tenant)[0].state;
    for _ in 0..100 {
        if state(&dialer) == "available" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state(&dialer), "available", "the agent's leg was answered");
    assert_eq!(phones.hangup("solo"), 1, "one live leg to the agent");
    for _ in 0..100 {
        if state(&dialer) == "offline" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state(&dialer), "offline");
    let mut lost = false;
    while let Ok(e) = bus.try_recv() {
        lost |= e.kind == "agent:leg:lost" && e.agent_id.as_deref() == Some(agent.id.as_str());
    }
    assert!(lost, "an agent:leg:lost event was published");
    for _ in 0..50 {
        if s.store.agent(&s.tenant, &agent.id).await.unwrap().status == "offline" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        s.store.agent(&s.tenant, &agent.id).await.unwrap().status,
        "offline"
    );
    dialer.shutdown().await;
    phones.shutdown().await;
    media.shutdown();
}

/// Preview dialing: the agent picks a lead; the engine dials it (no AMD) and bridges it to
/// that agent at once; the lead's attempt is counted, a second dial of the same lead while
/// it is being called is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_dialing_bridges_the_chosen_agent() {
    let carrier = Carrier::start(CarrierConfig {
        ring: Duration::from_millis(200),
        ..CarrierConfig::new(lo(0), plan())
    })
    .await
    .unwrap();
    let phones = AgentPhones::start_with(AgentConfig::new(lo(0)))
        .await
        .unwrap();
    let s = setup(&[phones.uri("p1"), phones.uri("p2")]).await;
    let endpoint = Arc::new(Endpoint::bind(EndpointConfig::new(lo(0))).await.unwrap());
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
    let mut cfg = DialerConfig::new("127.0.0.1", s.recordings.clone());
    cfg.timers.wrap_up = Duration::from_millis(300);
    let dialer = Dialer::start(
        s.store.clone(),
        switchboard_engine::events::EventBus::new(1024),
        endpoint,
        media.clone(),
        Arc::new(trunks),
        cfg,
    )
    .await
    .unwrap();
    let agents = s.store.agents(&s.tenant, None, None).await.unwrap();
    let chosen = agents[1].id.clone();
    for a in &agents {
        dialer.agent_status(&s.tenant, &a.id, "available").await;
    }
    for _ in 0..100 {
        if dialer
            .agents(&s.tenant)
            .iter()
            .all(|a| a.state == "available")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Lead 0 is a human (talks 4 s).
    let (leads, _) = s
        .store
        .leads(
            &s.tenant,
            &LeadFilter {
                campaign_id: s.campaign.clone(),
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let lead = leads
        .iter()
        .find(|l| l.phone_normalized.ends_with('0'))
        .unwrap();
    let call = s
        .store
        .start_call(
            &s.tenant,
            serde_json::from_value(json!({"leadId": lead.id, "agentId": chosen})).unwrap(),
            "US",
            None,
        )
        .await
        .unwrap();
    dialer
        .preview_dial(&s.tenant, &call.id, &chosen)
        .await
        .unwrap();
    let again = s
        .store
        .start_call(
            &s.tenant,
            serde_json::from_value(json!({"leadId": lead.id, "agentId": agents[0].id})).unwrap(),
            "US",
            None,
        )
        .await
        .unwrap();
    assert!(
        dialer
            .preview_dial(&s.tenant, &again.id, &agents[0].id)
            .await
            .is_err(),
        "a lead being called is not dialled again"
    );
    let mut done = None;
    for _ in 0..200 {
        let c = s.store.call(&s.tenant, &call.id).await.unwrap();
        if c.end_time.is_some() && c.disposition.is_some() {
            done = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = done.expect("the preview call ended");
    assert_eq!(c.disposition.as_deref(), Some("answered"));
    assert_eq!(c.agent_id.as_deref(), Some(chosen.as_str()));
    let l = s.store.lead(&s.tenant, &lead.id).await.unwrap();
    assert_eq!((l.status.as_str(), l.call_attempts), ("completed", 1));
    dialer.shutdown().await;
    carrier.shutdown().await;
    phones.shutdown().await;
    media.shutdown();
}

/// A person no agent could take hears the abandon message and presses 9: the number joins
/// the tenant's DNC list and the lead ends as `dnc`. The lead here is our own SIP endpoint
/// answering with a "Hello?" and sending RFC 4733 DTMF while the message plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pressing_nine_during_the_abandon_message_opts_out() {
    use switchboard_media::runtime::{LoopingClip, StreamConfig};
    use switchboard_sip::sdp::LocalMedia;
    let s = setup(&[]).await;
    let mut lead_ep = Endpoint::bind(EndpointConfig::new(lo(0))).await.unwrap();
    let lead_addr = lead_ep.local_addr();
    let media = MediaRuntime::start(RuntimeConfig {
        loops: 1,
        bind_ip: "127.0.0.1".parse().unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap();
    // The engine dials every lead through "the trunk" = our endpoint; answer only lead 0.
    let engine_ep = Arc::new(Endpoint::bind(EndpointConfig::new(lo(0))).await.unwrap());
    let mut cfg = DialerConfig::new("127.0.0.1", s.recordings.clone());
    // Five seconds of a tone: long enough to press 9 while it plays.
    let tone: Vec<i16> = (0..40_000)
        .map(|i| ((i as f64 * 0.3).sin() * 3000.0) as i16)
        .collect();
    cfg.abandon_prompt = switchboard_media::runtime::Clip::from_pcm(&tone);
    cfg.campaign_refresh = Duration::from_millis(200);
    cfg.tick = Duration::from_millis(200);
    let trunks = StaticTrunks(vec![DialTrunkConfig {
        id: "ua".into(),
        name: "ua".into(),
        server: lead_addr.to_string(),
        domain: lead_addr.ip().to_string(),
        username: None,
        password: None,
        transport: Transport::Udp,
        max_concurrent: 1,
        max_cps: 0.0,
    }]);
    // Progressive dialing dials only for a ready agent: one is ready when the campaign
    // starts and goes on a break as soon as the INVITE arrives, so nobody is free at the verdict.
    let phones = AgentPhones::start_with(AgentConfig::new(lo(0)))
        .await
        .unwrap();
    let a = s
        .store
        .create_agent(
            &s.tenant,
            serde_json::from_value(json!({"name": "Only", "endpoint": phones.uri("only")}))
                .unwrap(),
        )
        .await
        .unwrap();
    let dialer = Dialer::start(
        s.store.clone(),
        switchboard_engine::events::EventBus::new(1024),
        engine_ep,
        media.clone(),
        Arc::new(trunks),
        cfg,
    )
    .await
    .unwrap();
    dialer.agent_status(&s.tenant, &a.id, "available").await;
    for _ in 0..100 {
        if dialer.agents(&s.tenant)[0].state == "available" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.store
        .start_campaign(&s.tenant, &s.campaign)
        .await
        .unwrap();
    let incoming = timeout_secs(10, lead_ep.next_incoming())
        .await
        .expect("an INVITE");
    // Nobody free when the person answers: the agent takes a break.
    dialer.agent_status(&s.tenant, &a.id, "break").await;
    let number = switchboard_sim::user_part(&incoming.request_uri).to_owned();
    let lead_stream = media
        .open_stream(StreamConfig {
            source: Some(Box::new(LoopingClip::times(
                switchboard_media::runtime::Clip::from_pcm(&switchboard_sim::audio::hello(5)),
                1,
            ))),
            ..StreamConfig::new(switchboard_media::g711::Law::Mu)
        })
        .unwrap();
    let local = LocalMedia::new("127.0.0.1", lead_stream.local_addr().port(), 9);
    let answer = local.answer(incoming.offer.as_ref().unwrap(), 1).unwrap();
    lead_stream
        .set_remote(SocketAddr::new(
            answer.media.remote_address.parse().unwrap(),
            answer.media.remote_port,
        ))
        .unwrap();
    incoming.accept(&answer.sdp).unwrap();
    // Verdict (~1 s) + 2 s without an agent, then the message: press 9 a few times while it plays.
    tokio::time::sleep(Duration::from_millis(3800)).await;
    for _ in 0..6 {
        lead_stream
            .send_dtmf('9', Duration::from_millis(160))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let mut opted = false;
    for _ in 0..100 {
        if s.store.is_dnc(&s.tenant, &number).await.unwrap() {
            opted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(opted, "{number} joined the DNC list");
    let (leads, _) = s
        .store
        .leads(
            &s.tenant,
            &LeadFilter {
                campaign_id: s.campaign.clone(),
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let lead = leads.iter().find(|l| l.phone_normalized == number).unwrap();
    for _ in 0..50 {
        if s.store.lead(&s.tenant, &lead.id).await.unwrap().status == "dnc" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let l = s.store.lead(&s.tenant, &lead.id).await.unwrap();
    assert_eq!(
        (l.status.as_str(), l.last_disposition.as_deref()),
        ("dnc", Some("dnc"))
    );
    s.store
        .pause_campaign(&s.tenant, &s.campaign)
        .await
        .unwrap();
    dialer.shutdown().await;
    phones.shutdown().await;
    media.shutdown();
}

async fn timeout_secs<T>(secs: u64, f: impl std::future::Future<Output = Option<T>>) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .ok()
        .flatten()
}

/// A campaign's voicemail message given as an http URL is fetched when the campaign starts
/// and played to machines after the beep: the simulated machines hear it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voicemail_message_fetched_by_url_is_left_after_the_beep() {
    // The message: 2 s of a loud tone, as a WAV served over HTTP on loopback.
    let tone: Vec<i16> = (0..16_000)
        .map(|i| ((i as f64 * 0.35).sin() * 8000.0) as i16)
        .collect();
    let mut wav = Vec::new();
    let data = (tone.len() * 2) as u32;
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&16000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data.to_le_bytes());
    for s in &tone {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    let app = axum::Router::new().route(
        "/vm.wav",
        axum::routing::get(move || {
            let body = wav.clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind(lo(0)).await.unwrap();
    let http = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let carrier = Carrier::start(CarrierConfig {
        ring: Duration::from_millis(200),
        machine_hangup: Duration::from_secs(15),
        ..CarrierConfig::new(lo(0), Plan::always(Behavior::Machine { beep: true }))
    })
    .await
    .unwrap();
    let phones = AgentPhones::start_with(AgentConfig::new(lo(0)))
        .await
        .unwrap();
    let s = setup(&[phones.uri("vm")]).await;
    s.store
        .update_campaign(
            &s.tenant,
            &s.campaign,
            serde_json::from_value(
                json!({"voicemail_message_url": format!("http://{http}/vm.wav")}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let endpoint = Arc::new(Endpoint::bind(EndpointConfig::new(lo(0))).await.unwrap());
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
    let mut cfg = DialerConfig::new("127.0.0.1", s.recordings.clone());
    cfg.campaign_refresh = Duration::from_millis(200);
    cfg.tick = Duration::from_millis(200);
    let dialer = Dialer::start(
        s.store.clone(),
        switchboard_engine::events::EventBus::new(1024),
        endpoint,
        media.clone(),
        Arc::new(trunks),
        cfg,
    )
    .await
    .unwrap();
    let agent = s
        .store
        .agents(&s.tenant, None, None)
        .await
        .unwrap()
        .remove(0);
    dialer.agent_status(&s.tenant, &agent.id, "available").await;
    s.store
        .start_campaign(&s.tenant, &s.campaign)
        .await
        .unwrap();
    // Two machine calls are enough.
    let mut done = Vec::new();
    for _ in 0..300 {
        done = carrier
            .calls()
            .into_iter()
            .filter(|c| c.ended_at.is_some())
            .collect();
        if done.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.store
        .pause_campaign(&s.tenant, &s.campaign)
        .await
        .unwrap();
    assert!(done.len() >= 2, "two machine calls ended");
    for c in &done {
        assert_eq!(
            c.ended_by,
            Some(switchboard_sim::EndedBy::Caller),
            "the engine hung up after the message: {c:?}"
        );
        assert!(
            c.heard.loud_frames >= 50,
            "the machine heard the 2 s message: {:?}",
            c.heard
        );
    }
    dialer.shutdown().await;
    carrier.shutdown().await;
    phones.shutdown().await;
    media.shutdown();
}

/// One campaign call to a person who answers and stays silent (our own SIP endpoint as the
/// trunk, AMD off so the verdict comes at the answer), bridged to a simulated agent phone;
/// returns the loud 20 ms frames the agent's phone heard over its whole leg.
async fn agent_hears_with_whisper(whisper: &str) -> u64 {
    use switchboard_media::runtime::{Silence, StreamConfig};
    use switchboard_sip::sdp::LocalMedia;
    let s = setup(&[]).await;
    s.store
        .update_campaign(
            &s.tenant,
            &s.campaign,
            serde_json::from_value(
                json!({"amd_enabled": false, "record_calls": false, "whisper": whisper}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let (leads, _) = s
        .store
        .leads(
            &s.tenant,
            &LeadFilter {
                campaign_id: s.campaign.clone(),
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for l in &leads {
        s.store
            .update_lead(
                &s.tenant,
                &l.id,
                serde_json::from_value(json!({"first_name": "Ada", "last_name": "Lovelace"}))
                    .unwrap(),
            )
            .await
            .unwrap();
    }
    let mut lead_ep = Endpoint::bind(EndpointConfig::new(lo(0))).await.unwrap();
    let lead_addr = lead_ep.local_addr();
    let media = MediaRuntime::start(RuntimeConfig {
        loops: 1,
        bind_ip: "127.0.0.1".parse().unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let engine_ep = Arc::new(Endpoint::bind(EndpointConfig::new(lo(0))).await.unwrap());
    let mut cfg = DialerConfig::new("127.0.0.1", s.recordings.clone());
    cfg.campaign_refresh = Duration::from_millis(200);
    cfg.tick = Duration::from_millis(200);
    cfg.timers.wrap_up = Duration::from_millis(300);
    let trunks = StaticTrunks(vec![DialTrunkConfig {
        id: "ua".into(),
        name: "ua".into(),
        server: lead_addr.to_string(),
        domain: lead_addr.ip().to_string(),
        username: None,
        password: None,
        transport: Transport::Udp,
        max_concurrent: 1,
        max_cps: 0.0,
    }]);
    let phones = AgentPhones::start_with(AgentConfig::new(lo(0)))
        .await
        .unwrap();
    let a = s
        .store
        .create_agent(
            &s.tenant,
            serde_json::from_value(json!({"name": "Only", "endpoint": phones.uri("only")}))
                .unwrap(),
        )
        .await
        .unwrap();
    let dialer = Dialer::start(
        s.store.clone(),
        switchboard_engine::events::EventBus::new(1024),
        engine_ep,
        media.clone(),
        Arc::new(trunks),
        cfg,
    )
    .await
    .unwrap();
    dialer.agent_status(&s.tenant, &a.id, "available").await;
    for _ in 0..100 {
        if dialer.agents(&s.tenant)[0].state == "available" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.store
        .start_campaign(&s.tenant, &s.campaign)
        .await
        .unwrap();
    let mut incoming = timeout_secs(10, lead_ep.next_incoming())
        .await
        .expect("an INVITE");
    // A silent person: only what the engine plays can be loud on the agent's side.
    let lead_stream = media
        .open_stream(StreamConfig {
            source: Some(Box::new(Silence)),
            ..StreamConfig::new(switchboard_media::g711::Law::Mu)
        })
        .unwrap();
    let local = LocalMedia::new("127.0.0.1", lead_stream.local_addr().port(), 9);
    let answer = local.answer(incoming.offer.as_ref().unwrap(), 1).unwrap();
    lead_stream
        .set_remote(SocketAddr::new(
            answer.media.remote_address.parse().unwrap(),
            answer.media.remote_port,
        ))
        .unwrap();
    incoming.accept(&answer.sdp).unwrap();
    s.store
        .pause_campaign(&s.tenant, &s.campaign)
        .await
        .unwrap();
    // Wait for the bridge, then 2 s of conversation and the person hangs up.
    let mut bridged = false;
    for _ in 0..100 {
        if dialer.agents(&s.tenant)[0].state == "busy" {
            bridged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(bridged, "the person was bridged to the agent");
    tokio::time::sleep(Duration::from_secs(2)).await;
    incoming.hangup().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), incoming.ended()).await;
    dialer.shutdown().await;
    let mut heard = None;
    for _ in 0..50 {
        let calls = phones.calls();
        if let Some(c) = calls.first().filter(|c| c.ended_at.is_some()) {
            heard = Some(c.heard);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    phones.shutdown().await;
    media.shutdown();
    heard.expect("the agent leg ended").loud_frames
}

fn espeak_installed() -> bool {
    let ok = std::process::Command::new("espeak-ng")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var("SWITCHBOARD_REQUIRE_AMD_TOOLS").as_deref() == Ok("1") {
        panic!("espeak-ng is not installed but SWITCHBOARD_REQUIRE_AMD_TOOLS=1");
    }
    ok
}

/// The whisper: without it a silent person's call leaves the agent's phone hearing nothing
/// loud; with `tone` it hears the 500 ms zip tone (two 200 ms beeps); with `name` the lead's
/// name spoken (longer than the tone can be) when espeak-ng is installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_hears_the_whisper_before_the_lead_is_bridged() {
    let off = agent_hears_with_whisper("off").await;
    assert!(off <= 2, "no whisper: {off} loud frames");
    let tone = agent_hears_with_whisper("tone").await;
    assert!((15..=25).contains(&tone), "zip tone: {tone} loud frames");
    if espeak_installed() {
        let name = agent_hears_with_whisper("name").await;
        assert!(name > 25, "the spoken name: {name} loud frames");
    } else {
        eprintln!("NOTICE: espeak-ng not installed; the spoken-name whisper is not checked");
    }
}
