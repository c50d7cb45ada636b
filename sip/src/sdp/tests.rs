//! SDP tests with wire bodies shaped like what desk phones, softphones and PBXs send.

use super::*;

/// A Yealink-style desk phone offer: static codecs first, G722, telephone-event, no opus.
const YEALINK_OFFER: &str = "v=0\r\n\
o=- 20063 20063 IN IP4 192.168.1.45\r\n\
s=SDP data\r\n\
c=IN IP4 192.168.1.45\r\n\
t=0 0\r\n\
m=audio 11800 RTP/AVP 9 0 8 18 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n";

/// A linphone/baresip-style softphone offer with opus first, bare LF line ends, rtcp attribute.
const SOFTPHONE_OFFER: &str = "v=0\n\
o=alice 3342 1044 IN IP4 10.0.0.21\n\
s=Talk\n\
c=IN IP4 10.0.0.21\n\
t=0 0\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\n\
m=audio 7078 RTP/AVP 96 97 0 8 101\n\
a=rtpmap:96 opus/48000/2\n\
a=fmtp:96 useinbandfec=1\n\
a=rtpmap:97 speex/16000\n\
a=rtpmap:101 telephone-event/8000\n\
a=rtcp:7079\n\
a=rtcp-fb:* trr-int 1000\n";

/// An Asterisk-style answer (session-level c=, a=maxptime kept as a plain attribute).
const ASTERISK_ANSWER: &str = "v=0\r\n\
o=- 1610439152 1610439153 IN IP4 203.0.113.10\r\n\
s=Asterisk\r\n\
c=IN IP4 203.0.113.10\r\n\
t=0 0\r\n\
m=audio 18342 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=maxptime:150\r\n\
a=sendrecv\r\n";

fn parse(s: &str) -> SessionDescription {
    match SessionDescription::parse(s.as_bytes()) {
        Ok(sdp) => sdp,
        Err(e) => panic!("test SDP must parse: {e}"),
    }
}

fn local() -> LocalMedia {
    LocalMedia::new("198.51.100.7", 40000, 4242)
}

#[test]
fn parses_desk_phone_offer() {
    let sdp = parse(YEALINK_OFFER);
    assert_eq!(sdp.origin.session_id, 20063);
    assert_eq!(sdp.origin.address, "192.168.1.45");
    assert_eq!(sdp.session_name, "SDP data");
    assert_eq!(sdp.timing, (0, 0));
    assert_eq!(
        sdp.connection.as_ref().map(|c| c.address.as_str()),
        Some("192.168.1.45")
    );
    let m = sdp.audio().unwrap();
    assert_eq!(m.port, 11800);
    assert_eq!(m.proto, "RTP/AVP");
    assert_eq!(
        m.payload_types().collect::<Vec<_>>(),
        vec![9, 0, 8, 18, 101]
    );
    assert_eq!(m.rtpmap(18).unwrap().encoding, "G729");
    assert_eq!(m.fmtp(18), Some("annexb=no"));
    assert_eq!(m.fmtp(101), Some("0-15"));
    assert_eq!(m.ptime, Some(20));
    assert_eq!(m.direction, Some(Direction::SendRecv));
    assert!(!sdp.is_hold());
}

#[test]
fn parses_softphone_offer_with_lf_and_rtcp() {
    let sdp = parse(SOFTPHONE_OFFER);
    assert_eq!(sdp.attributes.len(), 1);
    assert_eq!(sdp.attributes[0].name, "rtcp-xr");
    let m = sdp.audio().unwrap();
    assert_eq!(m.rtpmap(96).unwrap().channels, Some(2));
    assert_eq!(m.rtcp.as_ref().map(|r| r.port), Some(7079));
    assert_eq!(m.attributes[0].name, "rtcp-fb");
    assert_eq!(m.attributes[0].value.as_deref(), Some("* trr-int 1000"));
    assert_eq!(sdp.direction_of(m), Direction::SendRecv);
}

#[test]
fn serializes_and_round_trips() {
    for wire in [YEALINK_OFFER, SOFTPHONE_OFFER, ASTERISK_ANSWER] {
        let sdp = parse(wire);
        let again = parse(&sdp.to_string());
        assert_eq!(sdp, again);
        assert!(sdp.to_string().ends_with("\r\n"));
    }
}

#[test]
fn offer_lists_our_codecs_in_order() {
    let offer = local().offer(1, Direction::SendRecv);
    let text = offer.to_string();
    assert_eq!(
        text,
        "v=0\r\n\
o=switchboard 4242 1 IN IP4 198.51.100.7\r\n\
s=-\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 111 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:111 useinbandfec=1\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n"
    );
    let ipv6 = LocalMedia::new("2001:db8::7", 40000, 1).offer(1, Direction::SendRecv);
    assert!(ipv6.to_string().contains("c=IN IP6 2001:db8::7\r\n"));
}

#[test]
fn answer_picks_offerers_first_common_codec() {
    // The phone prefers G722 (we lack it), then PCMU.
    let ans = local().answer(&parse(YEALINK_OFFER), 1).unwrap();
    assert_eq!(ans.media.codec.name, "PCMU");
    assert_eq!(ans.media.codec.payload_type, 0);
    assert_eq!(
        ans.media.telephone_event.as_ref().map(|t| t.payload_type),
        Some(101)
    );
    assert_eq!(ans.media.remote_address, "192.168.1.45");
    assert_eq!(ans.media.remote_port, 11800);
    assert_eq!(ans.media.direction, Direction::SendRecv);
    assert!(!ans.media.remote_hold);
    let m = ans.sdp.audio().unwrap();
    assert_eq!(m.formats, vec!["0", "101"]);
    assert_eq!(m.port, 40000);
    assert_eq!(m.direction, Some(Direction::SendRecv));
    // The answer parses back.
    assert_eq!(parse(&ans.sdp.to_string()), ans.sdp);
}

#[test]
fn answer_keeps_offerers_dynamic_payload_type_for_opus() {
    let ans = local().answer(&parse(SOFTPHONE_OFFER), 1).unwrap();
    assert_eq!(ans.media.codec.name, "opus");
    assert_eq!(ans.media.codec.payload_type, 96);
    assert_eq!(ans.media.remote_rtcp_port, Some(7079));
    let text = ans.sdp.to_string();
    assert!(text.contains("m=audio 40000 RTP/AVP 96 101\r\n"), "{text}");
    assert!(text.contains("a=rtpmap:96 opus/48000/2\r\n"));
}

#[test]
fn answer_without_telephone_event_when_not_offered() {
    let offer = parse(
        "v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n\
m=audio 5004 RTP/AVP 8 0\r\n",
    );
    let ans = local().answer(&offer, 1).unwrap();
    assert_eq!(ans.media.codec.name, "PCMA");
    assert_eq!(ans.media.telephone_event, None);
    assert_eq!(ans.sdp.audio().unwrap().formats, vec!["8"]);
}

fn hold_offer(direction_line: &str, conn: &str) -> SessionDescription {
    parse(&format!(
        "v=0\r\no=- 5 6 IN IP4 10.2.2.2\r\ns=-\r\nc=IN IP4 {conn}\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{direction_line}"
    ))
}

#[test]
fn answer_mirrors_direction_and_detects_hold() {
    let cases = [
        ("a=sendonly\r\n", "10.2.2.2", Direction::RecvOnly, true),
        ("a=inactive\r\n", "10.2.2.2", Direction::Inactive, true),
        ("a=recvonly\r\n", "10.2.2.2", Direction::SendOnly, false),
        ("a=sendrecv\r\n", "10.2.2.2", Direction::SendRecv, false),
        ("", "10.2.2.2", Direction::SendRecv, false),
        // RFC 2543 hold: c=0.0.0.0 with sendrecv means the offerer receives nothing.
        ("", "0.0.0.0", Direction::RecvOnly, true),
        ("a=recvonly\r\n", "0.0.0.0", Direction::Inactive, true),
    ];
    for (line, conn, want, hold) in cases {
        let offer = hold_offer(line, conn);
        assert_eq!(offer.is_hold(), hold, "{line:?} {conn}");
        let ans = local().answer(&offer, 2).unwrap();
        assert_eq!(ans.media.direction, want, "{line:?} {conn}");
        assert_eq!(ans.media.remote_hold, hold, "{line:?} {conn}");
        assert_eq!(ans.sdp.audio().unwrap().direction, Some(want));
    }
    // Session-level direction applies to the stream.
    let offer = parse(
        "v=0\r\no=- 5 6 IN IP4 10.2.2.2\r\ns=-\r\nc=IN IP4 10.2.2.2\r\nt=0 0\r\na=sendonly\r\n\
m=audio 30000 RTP/AVP 0\r\n",
    );
    assert_eq!(offer.direction, Some(Direction::SendOnly));
    assert_eq!(
        local().answer(&offer, 2).unwrap().media.direction,
        Direction::RecvOnly
    );
}

#[test]
fn answer_rejects_other_streams_with_port_zero() {
    let offer = parse(
        "v=0\r\no=- 7 7 IN IP4 10.3.3.3\r\ns=-\r\nc=IN IP4 10.3.3.3\r\nt=0 0\r\n\
m=audio 0 RTP/AVP 0\r\n\
m=video 9000 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n\
m=audio 9002 RTP/AVP 8\r\n\
m=audio 9004 RTP/AVP 0\r\n",
    );
    let ans = local().answer(&offer, 1).unwrap();
    let ports: Vec<u16> = ans.sdp.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, vec![0, 0, 40000, 0]);
    assert_eq!(ans.sdp.media[1].media, "video");
    assert_eq!(ans.sdp.media[1].formats, vec!["97"]);
    assert_eq!(ans.media.remote_port, 9002);
    assert_eq!(ans.media.codec.name, "PCMA");
}

#[test]
fn no_common_codec_is_an_error_for_488() {
    let g729_only = parse(
        "v=0\r\no=- 1 1 IN IP4 10.4.4.4\r\ns=-\r\nc=IN IP4 10.4.4.4\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 18 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    let err = local().answer(&g729_only, 1).unwrap_err();
    assert_eq!(err, Error::NoCommonCodec);
    assert_eq!(err.offer_rejection_status(), 488);
    let all_rejected = parse(
        "v=0\r\no=- 1 1 IN IP4 10.4.4.4\r\ns=-\r\nc=IN IP4 10.4.4.4\r\nt=0 0\r\n\
m=audio 0 RTP/AVP 0\r\nm=image 6002 udptl t38\r\n",
    );
    assert_eq!(local().answer(&all_rejected, 1), Err(Error::NoAudioStream));
    // Opus at the wrong clock rate is not opus.
    let odd = parse(
        "v=0\r\no=- 1 1 IN IP4 10.4.4.4\r\ns=-\r\nc=IN IP4 10.4.4.4\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 96\r\na=rtpmap:96 opus/16000\r\n",
    );
    assert_eq!(local().answer(&odd, 1), Err(Error::NoCommonCodec));
}

#[test]
fn negotiate_answer_to_our_offer() {
    let offer = local().offer(1, Direction::SendRecv);
    let got = negotiate_answer(&offer, &parse(ASTERISK_ANSWER)).unwrap();
    assert_eq!(got.codec.name, "PCMA");
    assert_eq!(got.codec.payload_type, 8);
    assert_eq!(got.telephone_event.map(|t| t.payload_type), Some(101));
    assert_eq!(got.remote_address, "203.0.113.10");
    assert_eq!(got.remote_port, 18342);
    assert_eq!(got.direction, Direction::SendRecv);
    // An answer that holds us (recvonly means they do not send).
    let held = ASTERISK_ANSWER.replace("a=sendrecv", "a=recvonly");
    let got = negotiate_answer(&offer, &parse(&held)).unwrap();
    assert_eq!(got.direction, Direction::SendOnly);
    // Stream rejected, or a codec we never offered.
    let rejected = ASTERISK_ANSWER.replace("m=audio 18342", "m=audio 0");
    assert_eq!(
        negotiate_answer(&offer, &parse(&rejected)),
        Err(Error::NoCommonCodec)
    );
    let foreign = ASTERISK_ANSWER
        .replace("RTP/AVP 8 101", "RTP/AVP 18")
        .replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:18 G729/8000");
    assert_eq!(
        negotiate_answer(&offer, &parse(&foreign)),
        Err(Error::NoCommonCodec)
    );
}

#[test]
fn malformed_sdp_is_an_error() {
    let cases: &[(&[u8], Error)] = &[
        (b"", Error::MissingSdpField("v")),
        (
            b"v=1\r\n",
            Error::InvalidSdp {
                line: 1,
                field: "v",
            },
        ),
        (
            b"o=- 1 1 IN IP4 h\r\n",
            Error::InvalidSdp {
                line: 1,
                field: "line order",
            },
        ),
        (
            b"v=0\r\no=- x 1 IN IP4 h\r\ns=-\r\n",
            Error::InvalidSdp {
                line: 2,
                field: "o",
            },
        ),
        (b"v=0\r\no=- 1 1 IN IP4 h\r\n", Error::MissingSdpField("s")),
        (
            b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP9 h\r\n",
            Error::InvalidSdp {
                line: 4,
                field: "c",
            },
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 70000 RTP/AVP 0\r\n",
            Error::InvalidSdp {
                line: 4,
                field: "m",
            },
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 7000 RTP/AVP 200\r\n",
            Error::InvalidSdp {
                line: 4,
                field: "m",
            },
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 7000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
            Error::InvalidSdp {
                line: 5,
                field: "rtpmap",
            },
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 7000 RTP/AVP 0\r\na=ptime:-20\r\n",
            Error::InvalidSdp {
                line: 5,
                field: "ptime",
            },
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\njunk\r\n",
            Error::InvalidSdp {
                line: 4,
                field: "type=value",
            },
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 \xff\r\ns=-\r\n",
            Error::InvalidSdp {
                line: 0,
                field: "utf-8",
            },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            SessionDescription::parse(input).as_ref().err(),
            Some(want),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    // No connection address anywhere: cannot answer.
    let offer = parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n");
    assert_eq!(local().answer(&offer, 1), Err(Error::MissingSdpField("c")));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(sdp) = SessionDescription::parse(&bytes) {
                let _ = local().answer(&sdp, 1);
                let _ = negotiate_answer(&local().offer(1, Direction::SendRecv), &sdp);
            }
        }

        #[test]
        fn mutated_offers_never_panic_and_reparse(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in any::<usize>(),
        ) {
            let mut bytes = SOFTPHONE_OFFER.as_bytes().to_vec();
            for (at, b) in edits {
                let i = at % bytes.len();
                bytes[i] = b;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            if let Ok(sdp) = SessionDescription::parse(&bytes) {
                if let Ok(ans) = local().answer(&sdp, 1) {
                    prop_assert!(SessionDescription::parse(&ans.sdp.to_bytes()).is_ok());
                }
                let _ = negotiate_answer(&local().offer(1, Direction::SendRecv), &sdp);
                let _ = SessionDescription::parse(&sdp.to_bytes());
            }
        }
    }
}
