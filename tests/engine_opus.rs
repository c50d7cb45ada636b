//! The dialing engine with an Opus carrier, over real UDP on loopback: the carrier simulator
//! answers the engine's offer (PCMU, PCMA, opus, telephone-event) with opus, the agent's phone
//! with PCMU. The engine must switch the lead's stream to what SDP negotiated (a preview call:
//! the lead is bridged to the chosen agent at the answer), so the bridge transcodes both ways
//! (each side hears the other), the recording holds the decoded lead, and the call's quality
//! names each leg's codec.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
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
async fn an_opus_lead_is_heard_bridged_and_recorded() {
    let dir = std::env::temp_dir().join(format!("sb-opus-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let carrier = Carrier::start(CarrierConfig {
        ring: Duration::from_millis(200),
        answer_opus: true,
        ..CarrierConfig::new(
            lo(0),
            Plan::new().suffix(
                "0",
                Behavior::Human {
                    talk: Duration::from_secs(5),
                },
            ),
        )
    })
    .await
    .unwrap();
    let phones = AgentPhones::start_with(AgentConfig::new(lo(0)))
        .await
        .unwrap();

    let db = format!("sqlite://{}?mode=rwc", dir.join("sb.db").display());
    let store = Store::connect(&db, &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let (t, _) = store
        .create_tenant_with_owner(
            "Opus",
            &NewUser {
                email: "owner@opus.test".into(),
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
                "name": "Opus", "caller_id": "+14155550000", "dial_mode": "progressive",
                "amd_enabled": true, "record_calls": true,
                "calling_hours_start": "00:00", "calling_hours_end": "23:59"
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let zone = switchboard_sim::daytime_zone();
    let csv = format!("phone,first_name,timezone\n+12125552300,Lead,{zone}\n");
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
    let agent = store
        .create_agent(
            &t.id,
            serde_json::from_value(json!({"name": "Agent", "endpoint": phones.uri("a1")})).unwrap(),
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
    let recordings = dir.join("recordings");
    let mut cfg = DialerConfig::new("127.0.0.1", recordings.clone());
    cfg.timers.wrap_up = Duration::from_millis(300);
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
    dialer.agent_status(&t.id, &agent.id, "available").await;
    for _ in 0..100 {
        if dialer.agents(&t.id).iter().all(|a| a.state == "available") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (leads, _) = store
        .leads(
            &t.id,
            &LeadFilter {
                campaign_id: c.id.clone(),
                limit: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let call = store
        .start_call(
            &t.id,
            serde_json::from_value(json!({"leadId": leads[0].id, "agentId": agent.id})).unwrap(),
            "US",
            None,
        )
        .await
        .unwrap();
    dialer
        .preview_dial(&t.id, &call.id, &agent.id)
        .await
        .unwrap();
    let mut done = None;
    for _ in 0..300 {
        let c = store.call(&t.id, &call.id).await.unwrap();
        if c.end_time.is_some() && c.disposition.is_some() && c.quality.is_some() {
            done = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = done.expect("the call ended");
    assert_eq!(c.disposition.as_deref(), Some("answered"), "{c:?}");
    let q = c.quality.clone().expect("quality");
    assert_eq!(q["codec"], "opus", "{q}");
    assert_eq!(q["agent_leg"]["codec"], "PCMU", "{q}");

    // Each far end heard the other through the transcoding bridge.
    let lead_side = carrier
        .calls()
        .into_iter()
        .find(|k| k.answered_at.is_some())
        .expect("the carrier's call");
    let agent_side = phones.calls().into_iter().next().expect("the agent's call");
    assert!(
        lead_side.heard.loud_frames > 10,
        "the carrier heard the agent: {:?}",
        lead_side.heard
    );
    assert!(
        agent_side.heard.loud_frames > 10,
        "the agent heard the lead: {:?}",
        agent_side.heard
    );

    // The recording: the decoded Opus lead on the left, the agent on the right.
    let row = store.call_row(&t.id, &call.id).await.unwrap();
    let key = row.recording_path.as_deref().expect("recorded");
    let wav = switchboard_recordings::read_pcm16(Path::new(&recordings.join(key))).unwrap();
    assert_eq!((wav.channels, wav.sample_rate), (2, 8000));
    let left = rms(wav.samples.iter().step_by(2).copied());
    assert!(left > 100.0, "the lead on the left: {left:.0}");

    dialer.shutdown().await;
    carrier.shutdown().await;
    phones.shutdown().await;
    media.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
