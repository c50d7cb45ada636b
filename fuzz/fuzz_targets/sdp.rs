//! SDP parsing and the offer/answer model on a peer's (untrusted) SDP.
//!
//! Properties: nothing panics; SDP that parses re-serializes to SDP that parses; answering a
//! parsed offer with our default LocalMedia yields SDP that parses; reading the input as the
//! answer to our own offer does not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_sip::sdp::{negotiate_answer, Direction, LocalMedia, SessionDescription};

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = SessionDescription::parse(data) else {
        return;
    };
    let bytes = sdp.to_bytes();
    if let Err(e) = SessionDescription::parse(&bytes) {
        panic!("re-serialized SDP does not parse: {e:?}");
    }
    let _ = sdp.audio();
    let _ = sdp.is_hold();
    for m in &sdp.media {
        let _ = sdp.connection_for(m);
        let _ = sdp.direction_of(m);
        for pt in m.payload_types() {
            let _ = m.codec(pt);
        }
    }

    // As a remote offer (inbound call, re-INVITE).
    let local = LocalMedia::new("192.0.2.10", 40000, 1);
    if let Ok(answer) = local.answer(&sdp, 2) {
        let out = answer.sdp.to_bytes();
        if let Err(e) = SessionDescription::parse(&out) {
            panic!("our answer does not parse: {e:?}");
        }
    }

    // As the remote answer to our offer (outbound call).
    let offer = local.offer(1, Direction::SendRecv);
    let _ = negotiate_answer(&offer, &sdp);
});
