//! `Endpoint::options`: an OPTIONS ping to a real UAS on loopback (our own endpoint, which
//! answers out-of-dialog OPTIONS with 200) over UDP and TCP, and Timer F against a socket
//! that never answers.

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_sip::endpoint::{Endpoint, EndpointConfig};
use switchboard_sip::{Error, TimerConfig};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(15);

async fn endpoint(timers: TimerConfig) -> Endpoint {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut config = EndpointConfig::new(addr);
    config.timers = timers;
    Endpoint::bind(config).await.expect("bind")
}

#[tokio::test]
async fn options_ping_over_udp_and_tcp_gets_200_with_latency() {
    let pinger = endpoint(TimerConfig::default()).await;
    let peer = endpoint(TimerConfig::default()).await;
    let at = peer.local_addr();
    for target in [format!("sip:{at}"), format!("sip:{at};transport=tcp")] {
        let r = timeout(WAIT, pinger.options(&target, None, None))
            .await
            .expect("answered in time")
            .expect("a final response");
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"), "{target}");
        assert!(r.latency > Duration::ZERO, "latency measured: {r:?}");
    }
    // Through a proxy (here the peer itself, which answers the request for its own address).
    let r = timeout(
        WAIT,
        pinger.options(&format!("sip:{at}"), Some(&at.to_string()), None),
    )
    .await
    .expect("in time")
    .expect("answered");
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn options_to_a_silent_peer_times_out_with_timer_f() {
    // T1 = 5 ms: Timer F fires after 64·T1 = 320 ms of retransmissions.
    let timers = TimerConfig {
        t1: Duration::from_millis(5),
        ..TimerConfig::default()
    };
    let pinger = endpoint(timers).await;
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let target = format!("sip:{}", silent.local_addr().expect("addr"));
    let err = timeout(WAIT, pinger.options(&target, None, None))
        .await
        .expect("Timer F in time")
        .expect_err("no answer");
    assert_eq!(err, Error::Timeout("OPTIONS"));
    silent.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 4096];
    let mut received = 0;
    while silent.recv_from(&mut buf).is_ok() {
        received += 1;
    }
    assert!(received > 1, "retransmitted on UDP ({received})");
}

#[tokio::test]
async fn options_with_a_bad_target_is_an_error_not_a_panic() {
    let pinger = endpoint(TimerConfig::default()).await;
    for bad in [
        "not a uri at all",
        "sip:",
        "sip:bad host",
        "sip:127.0.0.1:99999",
    ] {
        let err = pinger.options(bad, None, None).await.expect_err(bad);
        assert_eq!(err, Error::InvalidHeader("Request-URI"), "{bad}");
    }
}

#[tokio::test]
async fn the_incoming_stream_can_be_taken_out_once() {
    let mut ep = endpoint(TimerConfig::default()).await;
    let taken = ep.take_incoming();
    assert!(taken.is_some());
    assert!(ep.take_incoming().is_none(), "only once");
    assert!(
        ep.next_incoming().await.is_none(),
        "next_incoming yields nothing once taken"
    );
    ep.close().await;
}

#[tokio::test]
async fn the_advertised_address_goes_in_via_and_contact() {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut config = EndpointConfig::new(addr);
    config.advertised = Some("127.0.0.9:5999".parse().expect("addr"));
    config.timers = TimerConfig {
        t1: Duration::from_millis(5),
        ..TimerConfig::default()
    };
    let pinger = Endpoint::bind(config).await.expect("bind");
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = format!("sip:{}", sock.local_addr().expect("addr"));
    let ping = tokio::spawn(async move { pinger.options(&target, None, None).await });
    let mut buf = vec![0u8; 65535];
    let (n, _) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("OPTIONS in time")
        .expect("recv");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(text.starts_with("OPTIONS sip:127.0.0.1:"), "{text}");
    assert!(
        text.contains("SIP/2.0/UDP 127.0.0.9:5999;branch="),
        "{text}"
    );
    assert!(text.contains("<sip:switchboard@127.0.0.9:5999>"), "{text}");
    let _ = ping.await;
}
