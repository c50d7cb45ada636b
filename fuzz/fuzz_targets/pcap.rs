//! pcap / pcapng reading and `switchboard rtp analyze` over arbitrary files.
//!
//! Properties: nothing panics or hangs; the frame iterator ends after its first error; the
//! analysis returns rows whose numbers are finite.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_media::analyze::{analyze_capture, AnalyzeOptions};
use switchboard_media::pcap::{udp_datagram, CaptureReader, LinkType};

fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = CaptureReader::new(data) {
        let mut failed = false;
        for item in reader {
            assert!(!failed, "capture reader yielded an item after an error");
            match item {
                Ok(frame) => {
                    let _ = udp_datagram(frame.link, frame.data);
                    let _ = frame.link.to_u32();
                }
                Err(_) => failed = true,
            }
        }
    }

    // The link-layer decoder alone, on the whole input, for each link type we know.
    if let Some((&lt, frame)) = data.split_first() {
        const KNOWN: [u32; 10] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276];
        let link = LinkType::from_u32(KNOWN[usize::from(lt) % KNOWN.len()]);
        let _ = udp_datagram(link, frame);
    }

    for options in [
        AnalyzeOptions { port: None, clock_rate: None },
        AnalyzeOptions { port: Some(5004), clock_rate: Some(48000) },
    ] {
        if let Ok((rows, _error)) = analyze_capture(data, options) {
            for row in rows {
                for v in [row.max_jitter_ms, row.mean_jitter_ms, row.final_jitter_ms, row.max_delta_ms, row.mos] {
                    assert!(v.is_finite(), "non-finite number in {row:?}");
                }
                let _ = row.to_json();
            }
        }
    }
});
