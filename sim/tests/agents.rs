//! Simulated agent phones on 127.0.0.1: auto-answer, audio both ways, hangup on demand,
//! unknown users refused.

mod common;

use std::time::Duration;

use common::{lo, wait_for, Caller, WAIT};
use switchboard_sim::{AgentConfig, AgentPhones, EndedBy};
use switchboard_sip::CallOutcome;

#[tokio::test]
async fn agents_answer_exchange_audio_and_hang_up_on_demand() {
    let agents = AgentPhones::start(lo()).await.expect("start");
    let caller = Caller::new().await;
    let mut p = caller.call(&agents.uri("agent7")).await;
    p.answered().await;
    // Audio both ways: the agent's talk reaches the caller, the caller's the agent.
    let both = wait_for(Duration::from_secs(10), || {
        let heard_by_agent = agents.calls().first().map_or(0, |c| c.heard.loud_frames);
        p.heard.loud_frames() >= 10 && heard_by_agent >= 10
    })
    .await;
    assert!(both, "audio both ways: {:?}", agents.calls());
    assert_eq!(agents.hangup("agent7"), 1);
    let (_, cause) = p.ended().await;
    assert_eq!(cause.outcome, CallOutcome::Completed);
    assert!(cause.by_remote, "the agent's phone sent BYE");
    assert!(wait_for(WAIT, || agents.calls().iter().all(|c| c.ended_at.is_some())).await);
    let calls = agents.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.number, "agent7");
    assert_eq!(c.behavior, "agent");
    assert_eq!(c.ended_by, Some(EndedBy::Sim));
    assert_eq!(c.end_reason, Some("sim_bye"));
    assert!(c.heard.packets >= 10 && c.rtp_sent >= 10, "{c:?}");
    // Nobody left to hang up.
    assert_eq!(agents.hangup("agent7"), 0);
    agents.shutdown().await;
}

#[tokio::test]
async fn caller_hangup_is_recorded_and_unknown_users_get_404() {
    let mut config = AgentConfig::new(lo());
    config.users = Some(vec!["1001".into()]);
    config.ring = (Duration::from_millis(50), Duration::from_millis(50));
    let agents = AgentPhones::start_with(config).await.expect("start");
    let caller = Caller::new().await;
    let mut p = caller.call(&agents.uri("1001")).await;
    p.answered().await;
    p.call.hangup().expect("hangup");
    p.ended().await;
    let mut p = caller.call(&agents.uri("1002")).await;
    let (_, cause) = p.ended().await;
    assert_eq!(cause.status, Some(404));
    assert!(wait_for(WAIT, || agents.calls().iter().all(|c| c.ended_at.is_some())).await);
    let calls = agents.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].ended_by, Some(EndedBy::Caller));
    assert_eq!(calls[0].end_reason, Some("caller_bye"));
    assert_eq!(calls[1].final_status, Some(404));
    agents.shutdown().await;
}
