//! The carrier simulator seen from a real `Endpoint` caller on 127.0.0.1: every behaviour,
//! the audio both ways (checked with the AMD detector on what arrived over RTP), loss and
//! jitter, digest REGISTER and INVITE authentication.

mod common;

use std::time::Duration;

use common::{lo, wait_for, Caller, WAIT};
use switchboard_media::amd::{AnsweredBy, Detector, Mode, Params};
use switchboard_sim::{Behavior, Carrier, CarrierConfig, EndedBy, Impairment, Plan, SimCall};
use switchboard_sip::dialog::AuthCredentials;
use switchboard_sip::endpoint::{CallEvent, TrunkConfig};
use switchboard_sip::{CallOutcome, RegistrationStatus};
use tokio::time::timeout;

async fn carrier(plan: Plan, tweak: impl FnOnce(&mut CarrierConfig)) -> Carrier {
    let mut config = CarrierConfig::new(lo(), plan);
    config.ring = Duration::from_millis(100);
    tweak(&mut config);
    timeout(WAIT, Carrier::start(config))
        .await
        .expect("start in time")
        .expect("start")
}

/// The carrier's record of its only call, once it has ended.
async fn ended_call(c: &Carrier) -> SimCall {
    assert!(
        wait_for(WAIT, || c.calls().iter().any(|k| k.ended_at.is_some())).await,
        "the carrier records the end"
    );
    let calls = c.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls[0].clone()
}

fn classify(pcm: &[i16], mode: Mode) -> Option<AnsweredBy> {
    let mut d = Detector::new(&Params::default(), mode);
    for (i, frame) in pcm.chunks(160).enumerate() {
        if let Some(v) = d.push(frame, Duration::from_millis(20 * i as u64)) {
            return Some(v.answered_by);
        }
    }
    None
}

#[tokio::test]
async fn human_says_hello_talks_and_hangs_up_after_talk() {
    let talk = Duration::from_millis(1800);
    let c = carrier(Plan::always(Behavior::Human { talk }), |_| {}).await;
    let caller = Caller::new().await;
    let mut p = caller.call(&c.uri("+15550100001")).await;
    let before = p.answered().await;
    assert!(
        before
            .iter()
            .any(|e| matches!(e, CallEvent::Ringing { status: 180 })),
        "180 before the answer: {before:?}"
    );
    let (_, cause) = p.ended().await;
    assert_eq!(cause.outcome, CallOutcome::Completed);
    assert!(cause.by_remote, "the simulated human sent BYE");
    // What arrived over RTP is a greeting the detector calls human.
    let heard = p.heard.samples();
    assert!(p.heard.loud_frames() >= 10, "speech arrived");
    assert_eq!(classify(&heard, Mode::Enable), Some(AnsweredBy::Human));
    let stats = p.stream.stats().await.expect("stream");
    assert_eq!(stats.stats.lost, 0);

    let call = ended_call(&c).await;
    assert_eq!(call.number, "+15550100001");
    assert_eq!(call.behavior, "human");
    assert_eq!(call.final_status, Some(200));
    assert_eq!(call.ended_by, Some(EndedBy::Sim));
    assert_eq!(call.end_reason, Some("sim_bye"));
    let answered = call.answered_at.expect("answered");
    assert!(call.ended_at.expect("ended") >= answered + talk);
    // The caller's speech reached the carrier.
    assert!(call.heard.packets >= 20, "{:?}", call.heard);
    assert!(call.heard.loud_frames >= 5, "{:?}", call.heard);
    assert!(call.rtp_sent >= 20);
    let s = c.stats();
    assert_eq!(
        (s.invites, s.answered, s.ended, s.ended_by_sim),
        (1, 1, 1, 1)
    );
    assert_eq!(s.by_behavior.get("human"), Some(&1));
    c.shutdown().await;
}

#[tokio::test]
async fn machine_greeting_ends_with_a_beep_the_detector_finds() {
    let c = carrier(Plan::always(Behavior::Machine { beep: true }), |_| {}).await;
    let caller = Caller::new().await;
    let mut p = caller.call(&c.uri("+15550100007")).await;
    p.answered().await;
    // Listen until the detector (detect-message-end) decides, then hang up.
    let mut verdict = None;
    let found = wait_for(Duration::from_secs(15), || {
        verdict = classify(&p.heard.samples(), Mode::DetectMessageEnd);
        verdict.is_some()
    })
    .await;
    assert!(found, "a verdict within the greeting and beep");
    assert_eq!(verdict, Some(AnsweredBy::MachineEndBeep));
    p.call.hangup().expect("hangup");
    let (_, cause) = p.ended().await;
    assert!(!cause.by_remote);
    let call = ended_call(&c).await;
    assert_eq!(call.behavior, "machine");
    assert_eq!(call.ended_by, Some(EndedBy::Caller));
    assert_eq!(call.end_reason, Some("caller_bye"));
    assert!(call.heard.loud_frames > 0);
    c.shutdown().await;
}

#[tokio::test]
async fn rejections_busy_unavailable_invalid_and_decline() {
    let talk = Duration::from_secs(1);
    let plan = Plan::new()
        .rule("+15550100001=busy", talk)
        .and_then(|p| p.rule("+15550100002=unavailable", talk))
        .and_then(|p| p.rule("+15550100003=reject:404", talk))
        .and_then(|p| p.rule("*4=603", talk))
        .expect("rules");
    let c = carrier(plan, |_| {}).await;
    let caller = Caller::new().await;
    for (n, number, status, outcome) in [
        (1, "+15550100001", 486, CallOutcome::Busy),
        (2, "+15550100002", 503, CallOutcome::Failed),
        (3, "+15550100003", 404, CallOutcome::InvalidNumber),
        (4, "+15550100004", 603, CallOutcome::Failed),
    ] {
        let mut p = caller.call(&c.uri(number)).await;
        let (events, cause) = p.ended().await;
        assert_eq!(cause.status, Some(status), "{number}");
        assert_eq!(cause.outcome, outcome, "{number}");
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, CallEvent::Answered { .. })),
            "{number}"
        );
        assert!(
            wait_for(WAIT, || c
                .calls()
                .iter()
                .filter(|k| k.ended_at.is_some())
                .count()
                == n)
            .await
        );
        let call = c
            .calls()
            .into_iter()
            .find(|k| k.number == number)
            .expect("recorded");
        assert_eq!(call.final_status, Some(status));
        assert_eq!(call.ended_by, Some(EndedBy::Sim));
        assert_eq!(call.end_reason, Some("rejected"));
        assert_eq!(call.answered_at, None);
    }
    let s = c.stats();
    assert_eq!(s.by_behavior.get("busy"), Some(&1));
    assert_eq!(s.by_behavior.get("unavailable"), Some(&1));
    assert_eq!(s.by_behavior.get("reject"), Some(&2));
    assert_eq!(s.answered, 0);
    c.shutdown().await;
}

#[tokio::test]
async fn no_answer_rings_until_cancel_then_487() {
    let c = carrier(Plan::always(Behavior::NoAnswer), |_| {}).await;
    let caller = Caller::new().await;
    let mut p = caller.call(&c.uri("+15550100009")).await;
    loop {
        match p.next().await {
            CallEvent::Ringing { status } => {
                assert_eq!(status, 180);
                break;
            }
            CallEvent::Trying => {}
            other => panic!("expected ringing, got {other:?}"),
        }
    }
    // Still ringing a while later: nothing else arrives.
    assert!(
        timeout(Duration::from_millis(600), p.call.next_event())
            .await
            .is_err(),
        "no final answer while ringing"
    );
    p.call.cancel().expect("cancel");
    let (_, cause) = p.ended().await;
    assert_eq!(cause.outcome, CallOutcome::Cancelled);
    let call = ended_call(&c).await;
    assert_eq!(call.behavior, "no_answer");
    assert_eq!(call.final_status, Some(487));
    assert_eq!(call.ended_by, Some(EndedBy::Caller));
    assert_eq!(call.end_reason, Some("cancelled"));
    c.shutdown().await;
}

#[tokio::test]
async fn no_answer_gives_up_with_480_after_max_ring() {
    let c = carrier(Plan::always(Behavior::NoAnswer), |c| {
        c.max_ring = Duration::from_millis(300);
    })
    .await;
    let caller = Caller::new().await;
    let mut p = caller.call(&c.uri("+15550100009")).await;
    let (_, cause) = p.ended().await;
    assert_eq!(cause.status, Some(480));
    assert_eq!(cause.outcome, CallOutcome::NoAnswer);
    c.shutdown().await;
}

#[tokio::test]
async fn answer_after_rings_first_then_does_its_behaviour() {
    let ring = Duration::from_millis(700);
    let plan = Plan::new()
        .exact(
            "100",
            Behavior::AnswerAfter {
                ring,
                then: Box::new(Behavior::Human {
                    talk: Duration::from_millis(500),
                }),
            },
        )
        .exact(
            "200",
            Behavior::AnswerAfter {
                ring,
                then: Box::new(Behavior::Busy),
            },
        );
    let c = carrier(plan, |_| {}).await;
    let caller = Caller::new().await;
    let mut p = caller.call(&c.uri("100")).await;
    let before = p.answered().await;
    assert!(before
        .iter()
        .any(|e| matches!(e, CallEvent::Ringing { .. })));
    let (_, cause) = p.ended().await;
    assert!(cause.by_remote);
    let mut p = caller.call(&c.uri("200")).await;
    let (events, cause) = p.ended().await;
    assert_eq!(cause.status, Some(486));
    assert!(events
        .iter()
        .any(|e| matches!(e, CallEvent::Ringing { .. })));
    assert!(wait_for(WAIT, || c.calls().iter().all(|k| k.ended_at.is_some())).await);
    for call in c.calls() {
        // The ring is a lower bound set by the plan (a sleep), not a performance figure.
        let end = call.answered_at.or(call.ended_at).expect("ended");
        assert!(end >= call.invited_at + ring, "{call:?}");
    }
    c.shutdown().await;
}

#[tokio::test]
async fn loss_leaves_gaps_the_caller_counts() {
    let c = carrier(
        Plan::always(Behavior::Human {
            talk: Duration::from_millis(1500),
        }),
        |c| {
            c.impair = Impairment {
                loss: 0.3,
                jitter_ms: 0,
            }
        },
    )
    .await;
    let caller = Caller::new().await;
    let mut p = caller.call(&c.uri("1")).await;
    p.answered().await;
    p.ended().await;
    let s = p.stream.stats().await.expect("stream").stats;
    // About 30 % of ~75 packets.
    assert!(s.lost >= 8, "{s:?}");
    assert!(s.loss_percent() < 60.0, "{s:?}");
    c.shutdown().await;
}

#[tokio::test]
async fn jitter_spreads_arrivals() {
    let talk = Duration::from_millis(1500);
    let mut jitter = Vec::new();
    for jitter_ms in [0, 60] {
        let c = carrier(Plan::always(Behavior::Human { talk }), |c| {
            c.impair = Impairment {
                loss: 0.0,
                jitter_ms,
            }
        })
        .await;
        let caller = Caller::new().await;
        let mut p = caller.call(&c.uri("1")).await;
        p.answered().await;
        p.ended().await;
        let s = p.stream.stats().await.expect("stream").stats;
        assert!(s.packets >= 40, "{s:?}");
        jitter.push(s.mean_jitter_ms);
        // The carrier still hears the caller through the relay.
        let call = ended_call(&c).await;
        assert!(call.heard.loud_frames > 0, "{call:?}");
        c.shutdown().await;
    }
    // Uniform 0-60 ms delays: RFC 3550 jitter around 20 ms; none on loopback.
    assert!(jitter[1] > 8.0, "{jitter:?}");
    assert!(jitter[1] > 3.0 * jitter[0], "{jitter:?}");
}

#[tokio::test]
async fn digest_register_right_password_registers_wrong_one_fails() {
    let c = carrier(Plan::new(), |c| {
        c.register = Some(("alice".into(), "s3cret".into()));
    })
    .await;
    let caller = Caller::new().await;
    let addr = c.sip_addr().to_string();
    let mut ok = caller
        .ep
        .register(TrunkConfig::new(&addr, &addr, "alice", Some("s3cret")))
        .await
        .expect("register");
    let status = timeout(WAIT, ok.settled()).await.expect("in time");
    assert!(
        matches!(status, RegistrationStatus::Registered { expires } if expires > 0),
        "{status:?}"
    );
    let mut bad = caller
        .ep
        .register(TrunkConfig::new(&addr, &addr, "alice", Some("wrong")))
        .await
        .expect("register");
    match timeout(WAIT, bad.settled()).await.expect("in time") {
        RegistrationStatus::Failed(f) => {
            assert_eq!(f.status, Some(401));
            assert!(f.reason.contains("credentials rejected"), "{f:?}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let s = c.stats();
    assert!(s.registrations >= 1);
    assert!(s.auth_refused >= 1);
    assert!(s.challenges >= 2);
    c.shutdown().await;
}

#[tokio::test]
async fn invites_are_challenged_when_asked() {
    let c = carrier(
        Plan::always(Behavior::Human {
            talk: Duration::from_millis(300),
        }),
        |c| {
            c.register = Some(("alice".into(), "s3cret".into()));
            c.auth_invites = true;
        },
    )
    .await;
    let caller = Caller::new().await;
    let mut p = caller
        .call_with(&c.uri("1"), |mut cfg| {
            cfg.auth = Some(AuthCredentials {
                username: "alice".into(),
                password: "s3cret".into(),
            });
            cfg
        })
        .await;
    p.answered().await;
    p.ended().await;
    let mut p = caller.call(&c.uri("2")).await;
    let (_, cause) = p.ended().await;
    assert_eq!(cause.status, Some(407));
    assert_eq!(cause.outcome, CallOutcome::Failed);
    let mut p = caller
        .call_with(&c.uri("3"), |mut cfg| {
            cfg.auth = Some(AuthCredentials {
                username: "alice".into(),
                password: "nope".into(),
            });
            cfg
        })
        .await;
    let (_, cause) = p.ended().await;
    assert_eq!(cause.status, Some(407));
    // Only the authenticated call reached the plan.
    assert_eq!(c.stats().invites, 1);
    c.shutdown().await;
}

#[tokio::test]
async fn shutdown_hangs_up_live_calls() {
    let c = carrier(
        Plan::always(Behavior::Human {
            talk: Duration::from_secs(60),
        }),
        |_| {},
    )
    .await;
    let caller = Caller::new().await;
    let mut p = caller.call(&c.uri("1")).await;
    p.answered().await;
    let mut finished = c.subscribe();
    c.shutdown().await;
    let (_, cause) = p.ended().await;
    assert!(cause.by_remote);
    let call = timeout(WAIT, finished.recv())
        .await
        .expect("in time")
        .expect("a finished call");
    assert_eq!(call.ended_by, Some(EndedBy::Sim));
}

#[tokio::test]
async fn hangup_on_demand_sends_bye() {
    let c = carrier(
        Plan::always(Behavior::Human {
            talk: Duration::from_secs(60),
        }),
        |_| {},
    )
    .await;
    let caller = Caller::new().await;
    let mut p = caller.call(&c.uri("+15550100005")).await;
    p.answered().await;
    assert_eq!(c.hangup("+15550100009"), 0, "no such call");
    assert_eq!(c.hangup("+15550100005"), 1);
    let (_, cause) = p.ended().await;
    assert!(cause.by_remote);
    let call = ended_call(&c).await;
    assert_eq!(call.end_reason, Some("sim_bye"));
    c.shutdown().await;
}
