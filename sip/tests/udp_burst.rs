//! The endpoint's UDP socket under bursts: it asks for large socket buffers (the kernel's
//! ~208 KiB default overflowed at a few hundred concurrent calls), and a burst of datagrams
//! queued on the socket is handled in full by the task's batched reads.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard_sip::endpoint::{Endpoint, EndpointConfig, DEFAULT_UDP_BUFFER};
use switchboard_sip::Message;
use tokio::net::UdpSocket;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

fn proc_value(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

async fn endpoint(udp_buffer: usize) -> Endpoint {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut config = EndpointConfig::new(addr);
    config.tcp = false;
    config.udp_buffer = udp_buffer;
    timeout(WAIT, Endpoint::bind(config))
        .await
        .expect("bind in time")
        .expect("bind")
}

#[tokio::test]
async fn the_udp_socket_gets_the_buffers_it_asks_for_up_to_the_kernel_cap() {
    let ep = endpoint(DEFAULT_UDP_BUFFER).await;
    let (recv, send) = ep.udp_buffer_sizes();
    // Linux grants min(asked, rmem_max) and reports twice that; other kernels at least the cap.
    let rmem_max = proc_value("/proc/sys/net/core/rmem_max").unwrap_or(DEFAULT_UDP_BUFFER);
    let wmem_max = proc_value("/proc/sys/net/core/wmem_max").unwrap_or(DEFAULT_UDP_BUFFER);
    assert!(
        recv >= DEFAULT_UDP_BUFFER.min(rmem_max),
        "SO_RCVBUF {recv} (rmem_max {rmem_max})"
    );
    assert!(
        send >= DEFAULT_UDP_BUFFER.min(wmem_max),
        "SO_SNDBUF {send} (wmem_max {wmem_max})"
    );
    // And 0 leaves the kernel's default alone.
    let plain = endpoint(0).await;
    if let Some(default) = proc_value("/proc/sys/net/core/rmem_default") {
        assert!(
            plain.udp_buffer_sizes().0 <= 2 * default,
            "{:?}",
            plain.udp_buffer_sizes()
        );
    }
}

fn options(i: usize, me: SocketAddr, to: SocketAddr) -> String {
    format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKburst{i}\r\n\
         From: <sip:probe@{me}>;tag=b{i}\r\nTo: <sip:{to}>\r\nCall-ID: burst{i}@test\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_options_is_answered_in_full() {
    let ep = endpoint(DEFAULT_UDP_BUFFER).await;
    let to = ep.local_addr();
    // As many datagrams as the granted buffer holds with room to spare (a small datagram
    // takes about 2 KiB of buffer accounting on loopback), at most 2,000.
    let n = (ep.udp_buffer_sizes().0 / 4096).clamp(50, 2000);
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    // Room for every answer should the reader fall behind.
    socket2::SockRef::from(&sock)
        .set_recv_buffer_size(DEFAULT_UDP_BUFFER)
        .expect("SO_RCVBUF");
    let sock = Arc::new(sock);
    let me = sock.local_addr().expect("addr");
    let reader = {
        let sock = Arc::clone(&sock);
        tokio::spawn(async move {
            let mut seen = HashSet::new();
            let mut buf = vec![0u8; 4096];
            while seen.len() < n {
                let Ok(Ok((len, _))) = timeout(WAIT, sock.recv_from(&mut buf)).await else {
                    break;
                };
                if let Ok(Message::Response(r)) = Message::parse(&buf[..len]) {
                    assert_eq!(r.status, 200);
                    seen.insert(r.headers.call_id().expect("Call-ID").to_owned());
                }
            }
            seen.len()
        })
    };
    // Back to back, without waiting for answers.
    for i in 0..n {
        sock.send_to(options(i, me, to).as_bytes(), to)
            .await
            .expect("send");
    }
    let answered = reader.await.expect("reader");
    assert_eq!(answered, n, "every OPTIONS of the burst answered once");
    assert_eq!(ep.stats().malformed_dropped(), 0);
}
