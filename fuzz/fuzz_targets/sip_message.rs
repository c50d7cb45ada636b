//! SIP message parsing, both framings, and the 400 builder.
//!
//! Properties: nothing panics; a message that parses serializes to bytes that parse again
//! (datagram and stream framing) and whose serialization is a fixed point; stream framing never
//! consumes more than it was given and always makes progress.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_sip::{bad_request_response, Message};

fuzz_target!(|data: &[u8]| {
    // Datagram framing (UDP).
    if let Ok(msg) = Message::parse(data) {
        let bytes = msg.to_bytes();
        let again = Message::parse(&bytes)
            .unwrap_or_else(|e| panic!("serialized message does not parse again: {e:?}"));
        assert_eq!(
            again.to_bytes(),
            bytes,
            "serialization is not a fixed point after one round trip"
        );
        // What we write always carries Content-Length, so it must frame on a stream too.
        match Message::parse_stream(&bytes) {
            Ok(Some((_, n))) => assert_eq!(n, bytes.len(), "stream framing of our own output"),
            other => panic!("serialized message does not parse as a stream: {other:?}"),
        }
        let _ = msg.headers().top_via();
        if let Message::Request(req) = &msg {
            let _ = req.validate();
        }
    }

    // Stream framing (TCP): consume messages from the front of the buffer.
    let mut buf = data;
    for _ in 0..64 {
        match Message::parse_stream(buf) {
            Ok(Some((msg, n))) => {
                assert!(n > 0 && n <= buf.len(), "consumed {n} of {} bytes", buf.len());
                let bytes = msg.to_bytes();
                match Message::parse_stream(&bytes) {
                    Ok(Some((_, m))) => assert_eq!(m, bytes.len()),
                    other => panic!("re-serialized stream message does not parse: {other:?}"),
                }
                buf = &buf[n..];
            }
            Ok(None) | Err(_) => break,
        }
    }

    // The 400 for broken-but-answerable requests goes on the wire: build and serialize it.
    if let Some(resp) = bad_request_response(data, "fuzz-tag") {
        assert_eq!(resp.status, 400);
        let bytes = resp.to_bytes();
        let _ = Message::parse(&bytes);
    }
});
