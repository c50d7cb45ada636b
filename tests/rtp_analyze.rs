//! `switchboard rtp analyze` on a capture written with our pcap writer: one JSON line per
//! stream with the loss we put in; a file that is not a capture fails with a clear error.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use switchboard_media::pcap::{PcapWriter, WriterLink};
use switchboard_media::rtp::RtpBuilder;

#[test]
fn analyze_prints_one_json_line_per_stream() {
    let dir = std::env::temp_dir().join(format!("sb-rtp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("call.pcap");
    let mut w =
        PcapWriter::new(std::fs::File::create(&path).unwrap(), WriterLink::Ethernet).unwrap();
    let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let dst: SocketAddr = "127.0.0.1:40002".parse().unwrap();
    let mut buf = [0u8; 200];
    for i in 0u16..250 {
        if i % 50 == 7 {
            continue; // five packets lost
        }
        let n = RtpBuilder::new(0, 1000 + i, 160 * u32::from(i), 0x1234_5678)
            .write(&mut buf, &[0xFF; 160])
            .unwrap();
        w.write_udp(
            Duration::from_millis(20 * u64::from(i)),
            src,
            dst,
            &buf[..n],
        )
        .unwrap();
    }
    w.finish().unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["rtp", "analyze"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let row: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(row["ssrc"], "0x12345678");
    assert_eq!(row["src"], "127.0.0.1:40000");
    assert_eq!(row["packets"], 245);
    assert_eq!(row["lost"], 5);
    assert_eq!(row["max_jitter_ms"], 0.0);

    let junk = dir.join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["rtp", "analyze"])
        .arg(&junk)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a readable pcap"));
    std::fs::remove_dir_all(&dir).ok();
}
