//! The tokio endpoint on loopback: two endpoints call each other over UDP and TCP, OPTIONS is
//! answered, malformed input is answered 400 or dropped and counted.

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_sip::endpoint::{
    CallConfig, CallEvent, Endpoint, EndpointConfig, IncomingCall, Transport,
};
use switchboard_sip::sdp::LocalMedia;
use switchboard_sip::{CallOutcome, InboundEnd, InboundEvent, Message};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn endpoint() -> Endpoint {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    timeout(WAIT, Endpoint::bind(EndpointConfig::new(addr)))
        .await
        .expect("bind in time")
        .expect("bind")
}

async fn incoming(ep: &mut Endpoint) -> IncomingCall {
    timeout(WAIT, ep.next_incoming())
        .await
        .expect("INVITE in time")
        .expect("endpoint running")
}

async fn next(call: &mut switchboard_sip::endpoint::CallHandle) -> CallEvent {
    timeout(WAIT, call.next_event())
        .await
        .expect("event in time")
        .expect("event")
}

async fn answered_call(transport: Transport) {
    let a = endpoint().await;
    let mut b = endpoint().await;
    let target = format!("sip:bob@{}", b.local_addr());
    let mut config = CallConfig::new(
        &target,
        "sip:alice@127.0.0.1",
        LocalMedia::new("127.0.0.1", 40000, 1),
    );
    config.transport = transport;
    let mut call = a.call(config).await.expect("call");
    let mut inbound = incoming(&mut b).await;
    assert!(inbound.from.contains("alice"));
    let offer = inbound.offer.clone().expect("offer");
    inbound.ring().expect("ring");
    let answer = LocalMedia::new("127.0.0.1", 40002, 2)
        .answer(&offer, 1)
        .expect("codec");
    inbound.accept(&answer.sdp).expect("accept");
    loop {
        match next(&mut call).await {
            CallEvent::Trying | CallEvent::Ringing { .. } | CallEvent::EarlyMedia(_) => {}
            CallEvent::Answered { media, .. } => {
                assert_eq!(media.remote_port, 40002);
                break;
            }
            CallEvent::Ended(cause) => panic!("ended early: {cause:?}"),
        }
    }
    let confirmed = timeout(WAIT, inbound.next_event()).await.expect("in time");
    assert_eq!(confirmed, Some(InboundEvent::Confirmed));
    call.hangup().expect("hangup");
    match next(&mut call).await {
        CallEvent::Ended(cause) => {
            assert_eq!(cause.outcome, CallOutcome::Completed);
            assert!(!cause.by_remote);
        }
        other => panic!("expected Ended, got {other:?}"),
    }
    let end = timeout(WAIT, inbound.ended()).await.expect("in time");
    assert_eq!(end, Some(InboundEnd::RemoteBye));
}

#[tokio::test]
async fn call_answered_and_hung_up_over_udp() {
    answered_call(Transport::Udp).await;
}

#[tokio::test]
async fn call_answered_and_hung_up_over_tcp() {
    answered_call(Transport::Tcp).await;
}

#[tokio::test]
async fn busy_keeps_q850_free_outcome_and_cancel_while_ringing() {
    let a = endpoint().await;
    let mut b = endpoint().await;
    let target = format!("sip:bob@{}", b.local_addr());
    let media = LocalMedia::new("127.0.0.1", 40000, 1);
    let mut call = a
        .call(CallConfig::new(
            &target,
            "sip:alice@127.0.0.1",
            media.clone(),
        ))
        .await
        .expect("call");
    let inbound = incoming(&mut b).await;
    inbound.reject(486, "Busy Here").expect("reject");
    loop {
        if let CallEvent::Ended(cause) = next(&mut call).await {
            assert_eq!(cause.outcome, CallOutcome::Busy);
            assert_eq!(cause.status, Some(486));
            break;
        }
    }
    let mut call = a
        .call(CallConfig::new(&target, "sip:alice@127.0.0.1", media))
        .await
        .expect("call");
    let mut inbound = incoming(&mut b).await;
    inbound.ring().expect("ring");
    loop {
        if let CallEvent::Ringing { .. } = next(&mut call).await {
            break;
        }
    }
    call.cancel().expect("cancel");
    loop {
        if let CallEvent::Ended(cause) = next(&mut call).await {
            assert_eq!(cause.outcome, CallOutcome::Cancelled);
            break;
        }
    }
    let end = timeout(WAIT, inbound.ended()).await.expect("in time");
    assert_eq!(end, Some(InboundEnd::Cancelled));
}

async fn exchange(sock: &UdpSocket, to: SocketAddr, bytes: &[u8]) -> Message {
    sock.send_to(bytes, to).await.expect("send");
    let mut buf = vec![0u8; 65535];
    let (n, _) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("reply in time")
        .expect("recv");
    Message::parse(&buf[..n]).expect("reply parses")
}

#[tokio::test]
async fn options_answered_malformed_answered_400_or_dropped() {
    let ep = endpoint().await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let me = sock.local_addr().expect("addr");
    let options = format!(
        "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKopt1;rport\r\n\
         From: <sip:probe@{me}>;tag=p1\r\nTo: <sip:{0}>\r\nCall-ID: opt1@test\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        ep.local_addr()
    );
    let Message::Response(resp) = exchange(&sock, ep.local_addr(), options.as_bytes()).await else {
        panic!("expected a response");
    };
    assert_eq!(resp.status, 200);
    let via = resp.headers.top_via().expect("Via");
    assert_eq!(via.rport(), Some(Some(me.port())), "RFC 3581 rport filled");
    assert_eq!(via.received(), Some("127.0.0.1"));

    let bad = format!(
        "INVITE sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKbad1\r\n\
         From: <sip:probe@{me}>;tag=p1\r\nTo: <sip:{0}>\r\nCall-ID: bad1@test\r\n\
         CSeq: one INVITE\r\nContent-Length: 0\r\n\r\n",
        ep.local_addr()
    );
    let Message::Response(resp) = exchange(&sock, ep.local_addr(), bad.as_bytes()).await else {
        panic!("expected a response");
    };
    assert_eq!(resp.status, 400);
    assert!(ep.stats().bad_requests_answered() >= 1);

    sock.send_to(b"\x00\x01garbage that is not SIP", ep.local_addr())
        .await
        .expect("send");
    // The endpoint still answers after the garbage; by then it has counted the drop.
    let again = options.replace("z9hG4bKopt1", "z9hG4bKopt2");
    let Message::Response(resp) = exchange(&sock, ep.local_addr(), again.as_bytes()).await else {
        panic!("expected a response");
    };
    assert_eq!(resp.status, 200);
    assert_eq!(ep.stats().malformed_dropped(), 1);
}
