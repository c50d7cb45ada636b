//! Parse and serialize cost of SIP messages (our own parser, `switchboard_sip::message`).
//!
//! Five messages of a call as they arrive on the wire (an INVITE with SDP from a carrier with
//! two Vias and a Record-Route, 180, 200 with SDP, ACK, BYE). For each: `parse` (bytes →
//! `Message`), `parse+validate` (plus the typed Via/From/To/Call-ID/CSeq/Max-Forwards checks
//! every request gets on arrival) and `serialize` (`Message::to_bytes`). Each figure is the
//! median over 101 rounds of about 2 ms, in µs per message (the minimum in brackets); one
//! thread.
//!
//! `cargo bench -p switchboard-sip --bench message`

use std::hint::black_box;
use std::time::{Duration, Instant};

use switchboard_sip::Message;

const SDP: &str = "v=0\r\no=- 3724394400 3724394400 IN IP4 192.0.2.10\r\ns=-\r\n\
c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
a=ptime:20\r\na=sendrecv\r\n";

fn with_body(head: &str, body: &str) -> Vec<u8> {
    let mut m = head.replace("{len}", &body.len().to_string()).into_bytes();
    m.extend_from_slice(body.as_bytes());
    m
}

fn messages() -> Vec<(&'static str, Vec<u8>)> {
    let invite = "INVITE sip:+15550100001@198.51.100.7:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-proxy-8a2f;rport\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;received=192.0.2.10\r\n\
Record-Route: <sip:192.0.2.1;lr>\r\n\
Max-Forwards: 69\r\n\
From: \"Acme Outreach\" <sip:+14155551234@carrier.example>;tag=1928301774\r\n\
To: <sip:+15550100001@carrier.example>\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:+14155551234@192.0.2.10:5060>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE\r\n\
Supported: timer, replaces\r\n\
Session-Expires: 1800\r\n\
User-Agent: Switchboard\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {len}\r\n\r\n";
    let ringing = "SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;received=192.0.2.10;rport=5060\r\n\
Record-Route: <sip:192.0.2.1;lr>\r\n\
From: \"Acme Outreach\" <sip:+14155551234@carrier.example>;tag=1928301774\r\n\
To: <sip:+15550100001@carrier.example>;tag=a6c85cf\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:+15550100001@198.51.100.7:5060>\r\n\
Content-Length: 0\r\n\r\n";
    let ok = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;received=192.0.2.10;rport=5060\r\n\
Record-Route: <sip:192.0.2.1;lr>\r\n\
From: \"Acme Outreach\" <sip:+14155551234@carrier.example>;tag=1928301774\r\n\
To: <sip:+15550100001@carrier.example>;tag=a6c85cf\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:+15550100001@198.51.100.7:5060>\r\n\
Require: timer\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {len}\r\n\r\n";
    let ack = "ACK sip:+15550100001@198.51.100.7:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnashds9\r\n\
Route: <sip:192.0.2.1;lr>\r\n\
Max-Forwards: 70\r\n\
From: \"Acme Outreach\" <sip:+14155551234@carrier.example>;tag=1928301774\r\n\
To: <sip:+15550100001@carrier.example>;tag=a6c85cf\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 ACK\r\n\
Content-Length: 0\r\n\r\n";
    let bye = "BYE sip:+14155551234@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKbye77;rport\r\n\
Route: <sip:192.0.2.1;lr>\r\n\
Max-Forwards: 70\r\n\
From: <sip:+15550100001@carrier.example>;tag=a6c85cf\r\n\
To: \"Acme Outreach\" <sip:+14155551234@carrier.example>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 231 BYE\r\n\
Content-Length: 0\r\n\r\n";
    vec![
        ("INVITE+SDP", with_body(invite, SDP)),
        ("180", with_body(ringing, "")),
        ("200+SDP", with_body(ok, SDP)),
        ("ACK", with_body(ack, "")),
        ("BYE", with_body(bye, "")),
    ]
}

/// Median and minimum µs per call of `f` over 101 rounds of about 2 ms. Rounds this short
/// are mostly not preempted even on a busy machine, so the median is the cost of the code
/// rather than of the neighbours.
fn measure(mut f: impl FnMut()) -> (f64, f64) {
    // Calibrate the iterations of one round.
    let mut iters = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        if t.elapsed() > Duration::from_millis(2) {
            break;
        }
        iters *= 2;
    }
    let mut per: Vec<f64> = (0..101)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / iters as f64
        })
        .collect();
    per.sort_by(f64::total_cmp);
    (per[per.len() / 2], per[0])
}

fn main() {
    println!(
        "{:<12} {:>6} {:>20} {:>20} {:>20}",
        "message", "bytes", "parse µs", "parse+validate µs", "serialize µs"
    );
    let mut sums = [0.0f64; 3];
    let all = messages();
    for (name, bytes) in &all {
        let parsed = Message::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (p, pmin) = measure(|| {
            black_box(Message::parse(black_box(bytes)).ok());
        });
        let (v, vmin) = measure(|| match Message::parse(black_box(bytes)) {
            Ok(Message::Request(r)) => {
                black_box(r.validate().is_ok());
            }
            Ok(Message::Response(r)) => {
                let h = &r.headers;
                black_box((h.top_via().is_ok(), h.cseq().is_ok(), h.call_id().is_ok()));
                black_box((h.from().is_ok(), h.to().is_ok()));
            }
            Err(_) => {}
        });
        let (s, smin) = measure(|| {
            black_box(black_box(&parsed).to_bytes());
        });
        sums[0] += p;
        sums[1] += v;
        sums[2] += s;
        println!(
            "{name:<12} {:>6} {:>12.2} [{pmin:>5.2}] {:>12.2} [{vmin:>5.2}] {:>12.2} [{smin:>5.2}]",
            bytes.len(),
            p,
            v,
            s
        );
    }
    let n = all.len() as f64;
    println!(
        "{:<12} {:>6} {:>20.2} {:>20.2} {:>20.2}",
        "mean",
        "",
        sums[0] / n,
        sums[1] / n,
        sums[2] / n
    );
}
