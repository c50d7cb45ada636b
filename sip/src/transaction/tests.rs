//! Transaction tests in virtual time: an `Instant` base plus offsets, no sleeping, no clock
//! reads after the base.

use std::time::{Duration, Instant};

use super::*;
use crate::headers::HeaderName;
use crate::message::Method;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn parse_request(wire: &str) -> Request {
    match Message::parse(wire.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("test request must parse: {other:?}"),
    }
}

fn request(method: &str, branch: &str) -> Request {
    parse_request(&format!(
        "{method} sip:bob@192.0.2.2 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch={branch};rport\r\n\
         Route: <sip:proxy.example;lr>\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=ftag\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: call-1@192.0.2.1\r\n\
         CSeq: 7 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

fn invite() -> Request {
    request("INVITE", "z9hG4bKinv1")
}

fn respond(req: &Request, status: u16) -> Response {
    let mut resp = Response::from_request(req, status, "Test");
    if status > 100 {
        resp.set_to_tag("ttag").unwrap();
    }
    resp
}

fn ack_for(req: &Request) -> Request {
    let mut ack = req.clone();
    ack.method = Method::Ack;
    ack.headers.set(HeaderName::CSEQ, "7 ACK");
    ack
}

/// The common surface of the four machines, so one driver loop serves all tests.
trait Machine {
    fn timeout(&self) -> Option<Instant>;
    fn fire(&mut self, now: Instant);
    fn transmit(&mut self) -> Option<Message>;
    fn event(&mut self) -> Option<Event>;
}

macro_rules! machine {
    ($t:ty) => {
        impl Machine for $t {
            fn timeout(&self) -> Option<Instant> {
                self.poll_timeout()
            }
            fn fire(&mut self, now: Instant) {
                self.handle_timeout(now)
            }
            fn transmit(&mut self) -> Option<Message> {
                self.poll_transmit()
            }
            fn event(&mut self) -> Option<Event> {
                self.poll_event()
            }
        }
    };
}
machine!(ClientInvite);
machine!(ClientNonInvite);
machine!(ServerInvite);
machine!(ServerNonInvite);

/// What happened at one virtual instant.
#[derive(Debug, Default)]
struct Log {
    sent: Vec<(Duration, Message)>,
    events: Vec<(Duration, Event)>,
}

/// Drains output produced at offset `at`.
fn drain(m: &mut impl Machine, at: Duration, log: &mut Log) {
    while let Some(msg) = m.transmit() {
        log.sent.push((at, msg));
    }
    while let Some(ev) = m.event() {
        log.events.push((at, ev));
    }
}

/// Runs timers until `until` (an offset from `base`), logging output at each deadline.
fn run(m: &mut impl Machine, base: Instant, until: Duration, log: &mut Log) {
    while let Some(at) = m.timeout() {
        if at > base + until {
            break;
        }
        m.fire(at);
        drain(m, at - base, log);
    }
}

fn times(log: &Log) -> Vec<Duration> {
    log.sent.iter().map(|(t, _)| *t).collect()
}

fn secs_f(v: &[f64]) -> Vec<Duration> {
    v.iter().map(|s| Duration::from_secs_f64(*s)).collect()
}

// ---------------------------------------------------------------- client INVITE

#[test]
fn client_invite_udp_timer_a_doubles_until_timer_b() {
    let base = Instant::now();
    let mut tx = ClientInvite::new(base, invite(), TimerConfig::default(), false).unwrap();
    let mut log = Log::default();
    drain(&mut tx, Duration::ZERO, &mut log);
    run(&mut tx, base, Duration::from_secs(100), &mut log);
    // Timer A: T1, 2T1, 4T1, ... with no cap for INVITE; Timer B = 64*T1 = 32 s.
    assert_eq!(times(&log), secs_f(&[0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]));
    assert!(log
        .sent
        .iter()
        .all(|(_, m)| *m == Message::Request(invite())));
    assert_eq!(
        log.events,
        vec![
            (Duration::from_secs(32), Event::Timeout(Timer::B)),
            (Duration::from_secs(32), Event::Terminated)
        ]
    );
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn client_invite_configurable_t1() {
    let base = Instant::now();
    let config = TimerConfig {
        t1: ms(100),
        ..TimerConfig::default()
    };
    let mut tx = ClientInvite::new(base, invite(), config, false).unwrap();
    let mut log = Log::default();
    drain(&mut tx, Duration::ZERO, &mut log);
    run(&mut tx, base, Duration::from_secs(100), &mut log);
    assert_eq!(times(&log), secs_f(&[0.0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3]));
    assert_eq!(log.events[0], (ms(6400), Event::Timeout(Timer::B)));
}

#[test]
fn client_invite_tcp_never_retransmits() {
    let base = Instant::now();
    let mut tx = ClientInvite::new(base, invite(), TimerConfig::default(), true).unwrap();
    let mut log = Log::default();
    drain(&mut tx, Duration::ZERO, &mut log);
    run(&mut tx, base, Duration::from_secs(100), &mut log);
    assert_eq!(times(&log), vec![Duration::ZERO]);
    assert_eq!(
        log.events[0],
        (Duration::from_secs(32), Event::Timeout(Timer::B))
    );
}

#[test]
fn client_invite_provisional_stops_retransmission_and_timer_b() {
    let base = Instant::now();
    let req = invite();
    let mut tx = ClientInvite::new(base, req.clone(), TimerConfig::default(), false).unwrap();
    let mut log = Log::default();
    drain(&mut tx, Duration::ZERO, &mut log);
    // The first INVITE is lost; Timer A resends it at 500 ms, then 180 arrives at 700 ms.
    run(&mut tx, base, ms(600), &mut log);
    tx.handle_message(base + ms(700), respond(&req, 180).into());
    drain(&mut tx, ms(700), &mut log);
    assert_eq!(tx.state(), ClientInviteState::Proceeding);
    run(&mut tx, base, Duration::from_secs(300), &mut log);
    assert_eq!(times(&log), vec![Duration::ZERO, ms(500)]);
    assert_eq!(log.events.len(), 1);
    assert!(matches!(&log.events[0].1, Event::Response(r) if r.status == 180));
    assert_eq!(tx.poll_timeout(), None);
    assert!(!tx.is_terminated());
}

#[test]
fn client_invite_acks_non_2xx_inside_the_transaction() {
    let base = Instant::now();
    let req = invite();
    let mut tx = ClientInvite::new(base, req.clone(), TimerConfig::default(), false).unwrap();
    let mut log = Log::default();
    drain(&mut tx, Duration::ZERO, &mut log);
    tx.handle_message(base + ms(100), respond(&req, 100).into());
    let busy = respond(&req, 486);
    tx.handle_message(base + ms(200), busy.clone().into());
    drain(&mut tx, ms(200), &mut log);
    assert_eq!(tx.state(), ClientInviteState::Completed);
    let Some((_, Message::Request(ack))) = log.sent.get(1).cloned() else {
        panic!("ACK expected, got {:?}", log.sent)
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, req.uri);
    assert_eq!(
        ack.headers.via().unwrap(),
        vec![req.headers.top_via().unwrap()]
    );
    assert_eq!(ack.headers.to().unwrap().tag(), Some("ttag"));
    assert_eq!(ack.headers.from().unwrap(), req.headers.from().unwrap());
    assert_eq!(ack.headers.call_id().unwrap(), "call-1@192.0.2.1");
    assert_eq!(ack.headers.cseq().unwrap().to_string(), "7 ACK");
    assert_eq!(ack.headers.route().unwrap(), req.headers.route().unwrap());
    assert_eq!(
        log.events
            .iter()
            .map(|(_, e)| e.clone())
            .collect::<Vec<_>>(),
        vec![
            Event::Response(respond(&req, 100)),
            Event::Response(busy.clone())
        ]
    );
    // A retransmitted 486 is ACKed again but not passed up.
    tx.handle_message(base + ms(1200), busy.into());
    drain(&mut tx, ms(1200), &mut log);
    assert_eq!(log.sent.len(), 3);
    assert_eq!(log.sent[2].1, Message::Request(ack.clone()));
    assert_eq!(log.events.len(), 2);
    // Timer D (32 s on UDP) ends it.
    run(&mut tx, base, Duration::from_secs(100), &mut log);
    assert_eq!(log.events.last(), Some(&(ms(32_200), Event::Terminated)));
}

#[test]
fn client_invite_timer_d_is_zero_on_tcp() {
    let base = Instant::now();
    let req = invite();
    let mut tx = ClientInvite::new(base, req.clone(), TimerConfig::default(), true).unwrap();
    tx.handle_message(base + ms(50), respond(&req, 603).into());
    assert!(tx.is_terminated());
    let mut log = Log::default();
    drain(&mut tx, ms(50), &mut log);
    assert_eq!(log.sent.len(), 2, "INVITE and ACK");
    assert_eq!(log.events.last(), Some(&(ms(50), Event::Terminated)));
}

#[test]
fn client_invite_2xx_goes_up_and_accepted_waits_timer_m() {
    let base = Instant::now();
    let req = invite();
    let mut tx = ClientInvite::new(base, req.clone(), TimerConfig::default(), false).unwrap();
    let mut log = Log::default();
    drain(&mut tx, Duration::ZERO, &mut log);
    let ok = respond(&req, 200);
    tx.handle_message(base + ms(300), ok.clone().into());
    drain(&mut tx, ms(300), &mut log);
    assert_eq!(tx.state(), ClientInviteState::Accepted);
    // No ACK from the transaction for a 2xx: the dialog layer sends it.
    assert_eq!(log.sent.len(), 1);
    assert_eq!(log.events, vec![(ms(300), Event::Response(ok.clone()))]);
    // A retransmitted (or forked) 2xx is passed up too (RFC 6026).
    tx.handle_message(base + ms(800), ok.clone().into());
    drain(&mut tx, ms(800), &mut log);
    assert_eq!(log.events.len(), 2);
    // No retransmission of the INVITE, and Timer M = 64*T1 after the first 2xx ends it.
    run(&mut tx, base, Duration::from_secs(100), &mut log);
    assert_eq!(log.sent.len(), 1);
    assert_eq!(log.events.last(), Some(&(ms(32_300), Event::Terminated)));
}

#[test]
fn client_ignores_foreign_responses_and_requests() {
    let base = Instant::now();
    let req = invite();
    let mut tx = ClientInvite::new(base, req.clone(), TimerConfig::default(), false).unwrap();
    let mut other = respond(&req, 200);
    other.headers.set(
        HeaderName::VIA,
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKother",
    );
    tx.handle_message(base, other.into());
    // A response to a CANCEL with the same branch belongs to the CANCEL transaction.
    let mut cancel_resp = respond(&req, 200);
    cancel_resp.headers.set(HeaderName::CSEQ, "7 CANCEL");
    tx.handle_message(base, cancel_resp.into());
    tx.handle_message(base, Message::Request(req.clone()));
    assert_eq!(tx.state(), ClientInviteState::Calling);
    assert_eq!(tx.poll_transmit(), Some(Message::Request(req)));
    assert_eq!(tx.poll_event(), None);
}

#[test]
fn client_transport_error_terminates() {
    let base = Instant::now();
    let mut tx = ClientInvite::new(base, invite(), TimerConfig::default(), true).unwrap();
    tx.handle_transport_error(base);
    assert_eq!(tx.poll_event(), Some(Event::TransportError));
    assert_eq!(tx.poll_event(), Some(Event::Terminated));
    assert!(tx.is_terminated());
}

#[test]
fn constructors_check_method_and_headers() {
    let base = Instant::now();
    let config = TimerConfig::default();
    let bye = request("BYE", "z9hG4bKb");
    assert!(ClientInvite::new(base, bye.clone(), config, false).is_err());
    assert!(ServerInvite::new(base, bye, config, false).is_err());
    assert!(ClientNonInvite::new(base, invite(), config, false).is_err());
    assert!(ServerNonInvite::new(base, ack_for(&invite()), config, false).is_err());
    let legacy = request("INVITE", "1234");
    assert_eq!(
        ClientInvite::new(base, legacy, config, false).err(),
        Some(crate::Error::LegacyBranch)
    );
    let mut no_call_id = invite();
    no_call_id.headers.remove("Call-ID");
    assert!(ClientInvite::new(base, no_call_id, config, false).is_err());
}

// ------------------------------------------------------------ client non-INVITE

#[test]
fn client_non_invite_timer_e_caps_at_t2_until_timer_f() {
    let base = Instant::now();
    let req = request("REGISTER", "z9hG4bKreg");
    let mut tx = ClientNonInvite::new(base, req, TimerConfig::default(), false).unwrap();
    let mut log = Log::default();
    drain(&mut tx, Duration::ZERO, &mut log);
    run(&mut tx, base, Duration::from_secs(100), &mut log);
    assert_eq!(
        times(&log),
        secs_f(&[0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
    );
    assert_eq!(
        log.events,
        vec![
            (Duration::from_secs(32), Event::Timeout(Timer::F)),
            (Duration::from_secs(32), Event::Terminated)
        ]
    );
}

#[test]
fn client_non_invite_proceeding_retransmits_every_t2() {
    let base = Instant::now();
    let req = request("OPTIONS", "z9hG4bKopt");
    let mut tx = ClientNonInvite::new(base, req.clone(), TimerConfig::default(), false).unwrap();
    let mut log = Log::default();
    drain(&mut tx, Duration::ZERO, &mut log);
    tx.handle_message(base + ms(200), respond(&req, 100).into());
    drain(&mut tx, ms(200), &mut log);
    assert_eq!(tx.state(), ClientNonInviteState::Proceeding);
    run(&mut tx, base, Duration::from_secs(10), &mut log);
    // E set at T1 in Trying fires at 0.5 s in Proceeding, then every T2.
    assert_eq!(times(&log), secs_f(&[0.0, 0.5, 4.5, 8.5]));
    let ok = respond(&req, 200);
    tx.handle_message(base + ms(9000), ok.clone().into());
    drain(&mut tx, ms(9000), &mut log);
    assert_eq!(tx.state(), ClientNonInviteState::Completed);
    // Retransmitted final responses are absorbed; Timer K = T4 on UDP.
    tx.handle_message(base + ms(9500), ok.clone().into());
    run(&mut tx, base, Duration::from_secs(100), &mut log);
    assert_eq!(times(&log).len(), 4);
    let events: Vec<_> = log.events.iter().map(|(t, e)| (*t, e.clone())).collect();
    assert_eq!(
        events,
        vec![
            (ms(200), Event::Response(respond(&req, 100))),
            (ms(9000), Event::Response(ok)),
            (ms(14_000), Event::Terminated),
        ]
    );
}

#[test]
fn client_non_invite_timer_k_is_zero_on_tcp() {
    let base = Instant::now();
    let req = request("BYE", "z9hG4bKbye");
    let mut tx = ClientNonInvite::new(base, req.clone(), TimerConfig::default(), true).unwrap();
    let mut log = Log::default();
    drain(&mut tx, Duration::ZERO, &mut log);
    assert_eq!(tx.poll_timeout(), Some(base + Duration::from_secs(32)));
    tx.handle_message(base + ms(40), respond(&req, 200).into());
    drain(&mut tx, ms(40), &mut log);
    assert!(tx.is_terminated());
    assert_eq!(log.sent.len(), 1);
    assert_eq!(log.events.last(), Some(&(ms(40), Event::Terminated)));
}

// ---------------------------------------------------------------- server INVITE

#[test]
fn server_invite_answers_trying_and_retransmits_last_provisional() {
    let base = Instant::now();
    let req = invite();
    let mut tx = ServerInvite::new(base, req.clone(), TimerConfig::default(), false).unwrap();
    let Some(trying) = tx.poll_transmit() else {
        panic!("100 Trying expected")
    };
    assert!(
        matches!(&trying, Message::Response(r) if r.status == 100 && r.headers.to().unwrap().tag().is_none())
    );
    // The UAC lost our 100: its retransmission gets it again.
    tx.handle_message(base + ms(500), req.clone().into());
    assert_eq!(tx.poll_transmit(), Some(trying));
    let ringing = respond(&req, 180);
    tx.send_response(base + ms(600), ringing.clone()).unwrap();
    assert_eq!(tx.poll_transmit(), Some(ringing.clone().into()));
    tx.handle_message(base + ms(1500), req.into());
    assert_eq!(tx.poll_transmit(), Some(ringing.into()));
    assert_eq!(tx.poll_timeout(), None, "no timers while Proceeding");
}

#[test]
fn server_invite_timer_g_until_ack_then_timer_i() {
    let base = Instant::now();
    let req = invite();
    let mut tx = ServerInvite::new(base, req.clone(), TimerConfig::default(), false).unwrap();
    let mut log = Log::default();
    drain(&mut tx, Duration::ZERO, &mut log);
    let busy = respond(&req, 486);
    tx.send_response(base + ms(100), busy.clone()).unwrap();
    drain(&mut tx, ms(100), &mut log);
    assert_eq!(tx.state(), ServerInviteState::Completed);
    // Lost ACKs: Timer G resends the 486 doubling to T2.
    run(&mut tx, base, ms(20_000), &mut log);
    assert_eq!(
        times(&log),
        secs_f(&[0.0, 0.1, 0.6, 1.6, 3.6, 7.6, 11.6, 15.6, 19.6])
    );
    // An INVITE retransmission gets the final response too.
    tx.handle_message(base + ms(19_700), req.clone().into());
    drain(&mut tx, ms(19_700), &mut log);
    assert_eq!(log.sent.last(), Some(&(ms(19_700), busy.clone().into())));
    tx.handle_message(base + ms(19_800), ack_for(&req).into());
    assert_eq!(tx.state(), ServerInviteState::Confirmed);
    let sent = log.sent.len();
    // ACK retransmissions are absorbed; Timer I = T4 ends it, no more 486.
    tx.handle_message(base + ms(20_000), ack_for(&req).into());
    run(&mut tx, base, Duration::from_secs(100), &mut log);
    assert_eq!(log.sent.len(), sent);
    assert_eq!(log.events, vec![(ms(24_800), Event::Terminated)]);
}

#[test]
fn server_invite_timer_h_without_ack() {
    let base = Instant::now();
    let req = invite();
    let mut tx = ServerInvite::new(base, req.clone(), TimerConfig::default(), false).unwrap();
    tx.send_response(base, respond(&req, 404)).unwrap();
    let mut log = Log::default();
    run(&mut tx, base, Duration::from_secs(100), &mut log);
    assert_eq!(
        log.events,
        vec![
            (Duration::from_secs(32), Event::Timeout(Timer::H)),
            (Duration::from_secs(32), Event::Terminated)
        ]
    );
}

#[test]
fn server_invite_tcp_no_timer_g_and_zero_timer_i() {
    let base = Instant::now();
    let req = invite();
    let mut tx = ServerInvite::new(base, req.clone(), TimerConfig::default(), true).unwrap();
    let mut log = Log::default();
    tx.send_response(base, respond(&req, 480)).unwrap();
    drain(&mut tx, Duration::ZERO, &mut log);
    assert_eq!(
        tx.poll_timeout(),
        Some(base + Duration::from_secs(32)),
        "only H"
    );
    tx.handle_message(base + ms(10), ack_for(&req).into());
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_event(), Some(Event::Terminated));
    assert_eq!(log.sent.len(), 2, "100 and 480, no retransmission");
}

#[test]
fn server_invite_accepted_state_rfc6026() {
    let base = Instant::now();
    let req = invite();
    let mut tx = ServerInvite::new(base, req.clone(), TimerConfig::default(), false).unwrap();
    let mut log = Log::default();
    drain(&mut tx, Duration::ZERO, &mut log);
    let ok = respond(&req, 200);
    tx.send_response(base + ms(100), ok.clone()).unwrap();
    assert_eq!(tx.state(), ServerInviteState::Accepted);
    drain(&mut tx, ms(100), &mut log);
    // The 200 is lost; the INVITE retransmission is absorbed (the TU retransmits 2xx itself),
    // and the TU's retransmitted 2xx passes through.
    tx.handle_message(base + ms(600), req.clone().into());
    drain(&mut tx, ms(600), &mut log);
    tx.send_response(base + ms(600), ok.clone()).unwrap();
    drain(&mut tx, ms(600), &mut log);
    assert_eq!(times(&log), vec![Duration::ZERO, ms(100), ms(600)]);
    // A non-2xx after a 2xx is refused.
    assert!(tx
        .send_response(base + ms(700), respond(&req, 500))
        .is_err());
    // A matching ACK goes up to the TU.
    let ack = ack_for(&req);
    tx.handle_message(base + ms(800), ack.clone().into());
    drain(&mut tx, ms(800), &mut log);
    assert_eq!(log.events, vec![(ms(800), Event::Ack(ack))]);
    // Timer L = 64*T1 after the first 2xx.
    run(&mut tx, base, Duration::from_secs(100), &mut log);
    assert_eq!(log.events.last(), Some(&(ms(32_100), Event::Terminated)));
    assert_eq!(log.sent.len(), 3, "no retransmission by the transaction");
}

// ------------------------------------------------------------ server non-INVITE

#[test]
fn server_non_invite_retransmits_last_response_then_timer_j() {
    let base = Instant::now();
    let req = request("BYE", "z9hG4bKbye2");
    let mut tx = ServerNonInvite::new(base, req.clone(), TimerConfig::default(), false).unwrap();
    let mut log = Log::default();
    // Trying: retransmissions are absorbed silently.
    tx.handle_message(base + ms(500), req.clone().into());
    drain(&mut tx, ms(500), &mut log);
    assert!(log.sent.is_empty());
    let trying = respond(&req, 100);
    tx.send_response(base + ms(600), trying.clone()).unwrap();
    tx.handle_message(base + ms(1500), req.clone().into());
    drain(&mut tx, ms(1500), &mut log);
    assert_eq!(log.sent.len(), 2);
    assert_eq!(log.sent[1].1, trying.into());
    let ok = respond(&req, 200);
    tx.send_response(base + ms(2000), ok.clone()).unwrap();
    assert_eq!(tx.state(), ServerNonInviteState::Completed);
    tx.handle_message(base + ms(3500), req.clone().into());
    drain(&mut tx, ms(3500), &mut log);
    assert_eq!(log.sent.last(), Some(&(ms(3500), ok.clone().into())));
    assert!(tx.send_response(base + ms(3600), ok).is_err());
    run(&mut tx, base, Duration::from_secs(100), &mut log);
    assert_eq!(log.events, vec![(ms(34_000), Event::Terminated)]);
}

#[test]
fn server_non_invite_timer_j_is_zero_on_tcp() {
    let base = Instant::now();
    let req = request("OPTIONS", "z9hG4bKo");
    let mut tx = ServerNonInvite::new(base, req.clone(), TimerConfig::default(), true).unwrap();
    tx.send_response(base, respond(&req, 200)).unwrap();
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_timeout(), None);
}

// ------------------------------------------------------------------------ keys

#[test]
fn server_keys_follow_ack_and_cancel_rules() {
    let inv = invite();
    let inv_key = TransactionKey::server(&inv).unwrap();
    assert_eq!(inv_key.sent_by.as_deref(), Some("192.0.2.1:5060"));
    // A non-2xx ACK carries the INVITE's branch and matches its transaction.
    assert_eq!(TransactionKey::server(&ack_for(&inv)).unwrap(), inv_key);
    // A CANCEL has its own transaction but targets the INVITE one.
    let mut cancel = inv.clone();
    cancel.method = Method::Cancel;
    cancel.headers.set(HeaderName::CSEQ, "7 CANCEL");
    assert_ne!(TransactionKey::server(&cancel).unwrap(), inv_key);
    assert_eq!(TransactionKey::cancel_target(&cancel).unwrap(), inv_key);
    // Same branch from another sent-by is another transaction.
    let mut other = inv.clone();
    other.headers.set(
        HeaderName::VIA,
        "SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKinv1",
    );
    assert_ne!(TransactionKey::server(&other).unwrap(), inv_key);
    // Client side: response key = branch + CSeq method.
    let resp = respond(&inv, 180);
    assert_eq!(
        TransactionKey::for_response(&resp).unwrap(),
        TransactionKey::client(&inv).unwrap()
    );
}

#[test]
fn server_ignores_requests_of_other_transactions() {
    let base = Instant::now();
    let req = invite();
    let mut tx = ServerInvite::new(base, req.clone(), TimerConfig::default(), false).unwrap();
    let _ = tx.poll_transmit();
    let mut other = req.clone();
    other.headers.set(
        HeaderName::VIA,
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKzzz",
    );
    tx.handle_message(base, other.into());
    tx.handle_message(base, respond(&req, 200).into());
    assert_eq!(tx.poll_transmit(), None);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Input {
        Response(u16),
        Request,
        Ack,
        Send(u16),
        Advance(u64),
        TransportError,
    }

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            (100u16..700).prop_map(Input::Response),
            Just(Input::Request),
            Just(Input::Ack),
            (100u16..700).prop_map(Input::Send),
            (0u64..40_000).prop_map(Input::Advance),
            Just(Input::TransportError),
        ]
    }

    proptest! {
        /// Any input sequence keeps the machines consistent: deadlines never lie in the past
        /// after handle_timeout, and nothing panics. Finished machines stay finished.
        #[test]
        fn machines_survive_arbitrary_input(
            inputs in proptest::collection::vec(input(), 0..40),
            reliable in any::<bool>(),
        ) {
            let base = Instant::now();
            let config = TimerConfig::default();
            let inv = invite();
            let opt = request("OPTIONS", "z9hG4bKp");
            let mut ci = ClientInvite::new(base, inv.clone(), config, reliable).unwrap();
            let mut cn = ClientNonInvite::new(base, opt.clone(), config, reliable).unwrap();
            let mut si = ServerInvite::new(base, inv.clone(), config, reliable).unwrap();
            let mut sn = ServerNonInvite::new(base, opt.clone(), config, reliable).unwrap();
            let mut now = base;
            for i in inputs {
                match i {
                    Input::Response(s) => {
                        ci.handle_message(now, respond(&inv, s).into());
                        cn.handle_message(now, respond(&opt, s).into());
                    }
                    Input::Request => {
                        si.handle_message(now, inv.clone().into());
                        sn.handle_message(now, opt.clone().into());
                    }
                    Input::Ack => si.handle_message(now, ack_for(&inv).into()),
                    Input::Send(s) => {
                        let _ = si.send_response(now, respond(&inv, s));
                        let _ = sn.send_response(now, respond(&opt, s));
                    }
                    Input::Advance(d) => {
                        now += ms(d);
                        ci.handle_timeout(now);
                        cn.handle_timeout(now);
                        si.handle_timeout(now);
                        sn.handle_timeout(now);
                        for t in [ci.poll_timeout(), cn.poll_timeout(), si.poll_timeout(), sn.poll_timeout()] {
                            prop_assert!(t.is_none_or(|t| t > now));
                        }
                    }
                    Input::TransportError => {
                        ci.handle_transport_error(now);
                        sn.handle_transport_error(now);
                    }
                }
                while ci.poll_transmit().is_some() || cn.poll_transmit().is_some()
                    || si.poll_transmit().is_some() || sn.poll_transmit().is_some() {}
                let mut terminated = 0;
                while let Some(e) = ci.poll_event() {
                    if e == Event::Terminated { terminated += 1; }
                }
                prop_assert!(terminated <= 1);
                while cn.poll_event().is_some() || si.poll_event().is_some() || sn.poll_event().is_some() {}
                prop_assert!(!ci.is_terminated() || ci.poll_timeout().is_none());
            }
            // Left alone long enough, the non-INVITE client always finishes.
            cn.handle_timeout(now + Duration::from_secs(100));
            prop_assert!(cn.is_terminated());
        }
    }
}

#[test]
fn cancel_racing_a_200_on_both_sides() {
    let base = Instant::now();
    let config = TimerConfig::default();
    let inv = invite();
    let mut cancel = inv.clone();
    cancel.method = Method::Cancel;
    cancel.headers.set(HeaderName::CSEQ, "7 CANCEL");

    // UAC: the INVITE and the CANCEL run in separate client transactions with the same branch.
    let mut uac_inv = ClientInvite::new(base, inv.clone(), config, false).unwrap();
    let mut uac_cancel =
        ClientNonInvite::new(base + ms(100), cancel.clone(), config, false).unwrap();
    assert_ne!(uac_inv.key(), uac_cancel.key());

    // UAS: the 200 for the INVITE was sent just before the CANCEL arrived.
    let mut uas_inv = ServerInvite::new(base, inv.clone(), config, false).unwrap();
    let ok = respond(&inv, 200);
    uas_inv.send_response(base + ms(90), ok.clone()).unwrap();
    let mut uas_cancel =
        ServerNonInvite::new(base + ms(110), cancel.clone(), config, false).unwrap();
    assert_eq!(
        &TransactionKey::cancel_target(&cancel).unwrap(),
        uas_inv.key()
    );
    // Too late to cancel: the INVITE transaction refuses a 487 after its 2xx.
    assert!(uas_inv
        .send_response(base + ms(110), respond(&inv, 487))
        .is_err());
    uas_cancel
        .send_response(base + ms(110), respond(&cancel, 200))
        .unwrap();

    // Each response reaches only its own client transaction.
    let cancel_ok = respond(&cancel, 200);
    for tx_resp in [ok.clone(), cancel_ok.clone()] {
        uac_inv.handle_message(base + ms(120), tx_resp.clone().into());
        uac_cancel.handle_message(base + ms(120), tx_resp.into());
    }
    assert_eq!(uac_inv.state(), ClientInviteState::Accepted);
    assert_eq!(uac_cancel.state(), ClientNonInviteState::Completed);
    let _ = uac_inv.poll_transmit();
    assert_eq!(uac_inv.poll_event(), Some(Event::Response(ok)));
    assert_eq!(uac_inv.poll_event(), None);
    let _ = uac_cancel.poll_transmit();
    assert_eq!(uac_cancel.poll_event(), Some(Event::Response(cancel_ok)));
}

#[test]
fn lost_2xx_is_recovered_by_the_user_not_the_transaction() {
    // Server side of a lost 200 OK: INVITE retransmissions in Accepted are absorbed and the
    // client transaction, once the 200 finally arrives, passes it up.
    let base = Instant::now();
    let config = TimerConfig::default();
    let inv = invite();
    let mut uac = ClientInvite::new(base, inv.clone(), config, false).unwrap();
    let mut uas = ServerInvite::new(base, inv.clone(), config, false).unwrap();
    let _ = uac.poll_transmit();
    let _ = uas.poll_transmit(); // 100 Trying, lost
    let ok = respond(&inv, 200);
    uas.send_response(base + ms(100), ok.clone()).unwrap();
    let _ = uas.poll_transmit(); // 200 OK, lost
                                 // Timer A at 500 ms: the INVITE is retransmitted and absorbed by the Accepted server.
    uac.handle_timeout(base + ms(500));
    let Some(Message::Request(again)) = uac.poll_transmit() else {
        panic!("retransmitted INVITE expected")
    };
    uas.handle_message(base + ms(500), again.into());
    assert_eq!(uas.poll_transmit(), None);
    // The TU retransmits its 2xx (its own T1 timer); this one arrives.
    uas.send_response(base + ms(600), ok.clone()).unwrap();
    let Some(Message::Response(resent)) = uas.poll_transmit() else {
        panic!("2xx retransmission expected")
    };
    uac.handle_message(base + ms(600), resent.into());
    assert_eq!(uac.poll_event(), Some(Event::Response(ok)));
    assert_eq!(uac.state(), ClientInviteState::Accepted);
}
