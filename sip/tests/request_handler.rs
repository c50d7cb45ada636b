//! `Endpoint::set_request_handler`: out-of-dialog requests are offered to the handler first;
//! its response is sent, and `None` leaves the endpoint's own answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard_sip::endpoint::{Endpoint, EndpointConfig, RequestHandler};
use switchboard_sip::{HeaderName, Message, Method, Response};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

fn request(method: &str, target: SocketAddr, me: SocketAddr, branch: &str) -> String {
    format!(
        "{method} sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{branch};rport\r\n\
         From: <sip:probe@{me}>;tag=p1\r\nTo: <sip:probe@{target}>\r\nCall-ID: {branch}@test\r\n\
         CSeq: 1 {method}\r\nMax-Forwards: 70\r\nContact: <sip:probe@{me}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

async fn exchange(sock: &UdpSocket, to: SocketAddr, bytes: &[u8]) -> Response {
    sock.send_to(bytes, to).await.expect("send");
    let mut buf = vec![0u8; 65535];
    let (n, _) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("reply in time")
        .expect("recv");
    match Message::parse(&buf[..n]).expect("reply parses") {
        Message::Response(r) => r,
        Message::Request(r) => panic!("expected a response, got {}", r.method.as_str()),
    }
}

#[tokio::test]
async fn handler_answers_register_and_passes_the_rest_on() {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let ep = Endpoint::bind(EndpointConfig::new(addr))
        .await
        .expect("bind");
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let me = sock.local_addr().expect("addr");

    // Without a handler REGISTER is not implemented.
    let reg = request("REGISTER", ep.local_addr(), me, "r1");
    let resp = exchange(&sock, ep.local_addr(), reg.as_bytes()).await;
    assert_eq!(resp.status, 501);

    let handler: RequestHandler = Arc::new(move |req, source| {
        (req.method == Method::Register).then(|| {
            let mut resp = Response::from_request(req, 200, "OK");
            let _ = resp.set_to_tag("h1");
            resp.headers
                .push(HeaderName::new("X-Seen-From"), source.to_string());
            resp
        })
    });
    ep.set_request_handler(Some(handler)).expect("set");
    let reg = request("REGISTER", ep.local_addr(), me, "r2");
    let resp = exchange(&sock, ep.local_addr(), reg.as_bytes()).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.headers.get("X-Seen-From"),
        Some(me.to_string().as_str())
    );

    // OPTIONS is left to the endpoint (its 200 carries Allow).
    let options = request("OPTIONS", ep.local_addr(), me, "o1");
    let resp = exchange(&sock, ep.local_addr(), options.as_bytes()).await;
    assert_eq!(resp.status, 200);
    assert!(resp.headers.get("Allow").is_some());
    assert!(resp.headers.get("X-Seen-From").is_none());

    ep.set_request_handler(None).expect("unset");
    let reg = request("REGISTER", ep.local_addr(), me, "r3");
    let resp = exchange(&sock, ep.local_addr(), reg.as_bytes()).await;
    assert_eq!(resp.status, 501);
    ep.shutdown().await;
}
