//! Inbound call tests in virtual time, wired back to back with our UAC [`crate::Dialog`].

use std::time::{Duration, Instant};

use super::*;
use crate::dialog::{CallConfig, Dialog, DialogEvent, TerminationReason};
use crate::sdp::LocalMedia;

struct SeqIds(&'static str, u32);

impl IdSource for SeqIds {
    fn call_id(&mut self) -> String {
        self.1 += 1;
        format!("{}call{}", self.0, self.1)
    }
    fn tag(&mut self) -> String {
        self.1 += 1;
        format!("{}tag{}", self.0, self.1)
    }
    fn branch(&mut self) -> String {
        self.1 += 1;
        format!("{}br{}", self.0, self.1)
    }
    fn cnonce(&mut self) -> String {
        self.1 += 1;
        format!("{}cn{}", self.0, self.1)
    }
}

fn uac(now: Instant) -> Dialog {
    let config = CallConfig::new(
        "sip:bob@192.0.2.2:5060",
        "sip:alice@192.0.2.1",
        "sip:alice@192.0.2.1:5060",
        "192.0.2.1:5060",
        LocalMedia::new("192.0.2.1", 4000, 1),
    );
    Dialog::invite(now, config, Box::new(SeqIds("a", 0))).expect("valid call")
}

fn inbound_config() -> InboundConfig {
    InboundConfig {
        contact: "sip:bob@192.0.2.2:5060".into(),
        transport: "UDP".into(),
        sent_by: "192.0.2.2:5060".into(),
        timers: TimerConfig::default(),
        reliable: false,
        user_agent: None,
    }
}

fn take_invite(d: &mut Dialog) -> Request {
    match d.poll_transmit() {
        Some(Message::Request(r)) if r.method == Method::Invite => r,
        other => panic!("expected INVITE, got {other:?}"),
    }
}

fn uas(now: Instant, invite: Request) -> InboundCall {
    let mut call = InboundCall::new(now, invite, inbound_config(), Box::new(SeqIds("b", 0)))
        .expect("valid INVITE");
    assert!(matches!(call.poll_transmit(), Some(Message::Response(r)) if r.status == 100));
    call
}

/// Moves every queued message between the two sides until both are quiet; returns how many
/// messages went each way.
fn pump(now: Instant, a: &mut Dialog, b: &mut InboundCall) -> (usize, usize) {
    let (mut ab, mut ba) = (0, 0);
    loop {
        let mut moved = false;
        while let Some(m) = a.poll_transmit() {
            b.handle_message(now, m);
            ab += 1;
            moved = true;
        }
        while let Some(m) = b.poll_transmit() {
            a.handle_message(now, m);
            ba += 1;
            moved = true;
        }
        if !moved {
            return (ab, ba);
        }
    }
}

fn answer(call: &InboundCall) -> Vec<u8> {
    let offer = call.offer().expect("INVITE carries an offer");
    LocalMedia::new("192.0.2.2", 5000, 2)
        .answer(offer, 1)
        .expect("common codec")
        .sdp
        .to_bytes()
}

#[test]
fn accept_ack_then_caller_bye() {
    let t0 = Instant::now();
    let mut a = uac(t0);
    let mut b = uas(t0, take_invite(&mut a));
    b.ring(t0).expect("ring");
    pump(t0, &mut a, &mut b);
    b.accept(t0, answer(&b)).expect("accept");
    pump(t0, &mut a, &mut b);
    let a_events: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(a_events
        .iter()
        .any(|e| matches!(e, DialogEvent::Answered { media, .. } if media.remote_port == 5000)));
    assert_eq!(b.poll_event(), Some(InboundEvent::Confirmed));
    assert_eq!(b.state(), InboundState::Confirmed);
    assert_eq!(
        b.poll_timeout().map(|t| t > t0 + Duration::from_secs(1)),
        Some(true)
    );
    a.hangup(t0).expect("bye");
    pump(t0, &mut a, &mut b);
    assert_eq!(
        b.poll_event(),
        Some(InboundEvent::Terminated {
            reason: InboundEnd::RemoteBye
        })
    );
    assert!(std::iter::from_fn(|| a.poll_event()).any(|e| e
        == DialogEvent::Terminated {
            reason: TerminationReason::LocalBye
        }));
}

#[test]
fn lost_ack_retransmits_2xx_then_gives_up_with_bye() {
    let t0 = Instant::now();
    let mut a = uac(t0);
    let mut b = uas(t0, take_invite(&mut a));
    b.accept(t0, answer(&b)).expect("accept");
    let mut sent_2xx = 0;
    let mut now = t0;
    while b.state() == InboundState::Accepted {
        while let Some(m) = b.poll_transmit() {
            if matches!(m, Message::Response(ref r) if r.status == 200) {
                sent_2xx += 1;
            }
        }
        now = b.poll_timeout().expect("retransmission or give-up timer");
        b.handle_timeout(now);
    }
    assert_eq!(now - t0, Duration::from_secs(32), "64*T1");
    assert!(sent_2xx >= 8, "2xx retransmitted: {sent_2xx}");
    assert_eq!(
        b.poll_event(),
        Some(InboundEvent::Terminated {
            reason: InboundEnd::AckTimeout
        })
    );
    assert!(std::iter::from_fn(|| b.poll_transmit())
        .any(|m| matches!(m, Message::Request(r) if r.method == Method::Bye)));
}

#[test]
fn cancel_before_answer_gets_487() {
    let t0 = Instant::now();
    let mut a = uac(t0);
    let mut b = uas(t0, take_invite(&mut a));
    b.ring(t0).expect("ring");
    pump(t0, &mut a, &mut b);
    a.hangup(t0).expect("cancel");
    pump(t0, &mut a, &mut b);
    assert_eq!(
        b.poll_event(),
        Some(InboundEvent::Terminated {
            reason: InboundEnd::Cancelled
        })
    );
    assert!(std::iter::from_fn(|| a.poll_event()).any(|e| e
        == DialogEvent::Terminated {
            reason: TerminationReason::Cancelled
        }));
}

#[test]
fn reject_busy_and_callee_hangup_after_answer() {
    let t0 = Instant::now();
    let mut a = uac(t0);
    let mut b = uas(t0, take_invite(&mut a));
    b.reject(t0, 486, "Busy Here").expect("reject");
    pump(t0, &mut a, &mut b);
    assert!(std::iter::from_fn(|| a.poll_event()).any(|e| matches!(
        e,
        DialogEvent::Terminated {
            reason: TerminationReason::Rejected { status: 486, .. }
        }
    )));
    assert!(b.is_finished() || b.poll_timeout().is_some());

    let mut a = uac(t0);
    let mut b = uas(t0, take_invite(&mut a));
    b.accept(t0, answer(&b)).expect("accept");
    pump(t0, &mut a, &mut b);
    b.hangup(t0).expect("bye");
    let (_, ba) = pump(t0, &mut a, &mut b);
    assert!(ba >= 1);
    let evs: Vec<_> = std::iter::from_fn(|| b.poll_event()).collect();
    assert_eq!(
        evs.last(),
        Some(&InboundEvent::Terminated {
            reason: InboundEnd::LocalBye
        })
    );
    assert!(std::iter::from_fn(|| a.poll_event()).any(|e| e
        == DialogEvent::Terminated {
            reason: TerminationReason::RemoteBye
        }));
}
