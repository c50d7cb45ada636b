//! `rtp analyze` against Wireshark: captures with known impairments are generated with the
//! crate's pcap writer, analyzed by [`switchboard_media::analyze`] and by
//! `tshark -q -r FILE -o rtp.heuristic_rtp:TRUE -z rtp,streams`, and the loss and jitter of
//! every stream must agree (loss exactly, max / mean jitter within 0.01 ms).
//!
//! Without tshark on the PATH the test prints a notice and passes, unless
//! `SWITCHBOARD_REQUIRE_TSHARK=1` (CI), where it fails.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use switchboard_media::analyze::{analyze_capture, AnalyzeOptions, StreamRow};
use switchboard_media::pcap::{PcapWriter, WriterLink};
use switchboard_media::rtp::RtpBuilder;

const JITTER_TOLERANCE_MS: f64 = 0.01;
/// 2023-11-14, an arbitrary fixed capture start.
const EPOCH: Duration = Duration::from_secs(1_700_000_000);

/// One packet to put on the wire.
#[derive(Debug, Clone, Copy)]
struct Pkt {
    at_us: u64,
    src: SocketAddr,
    dst: SocketAddr,
    ssrc: u32,
    pt: u8,
    seq: u16,
    ts: u32,
    marker: bool,
}

/// What the case's construction says about its (first) stream.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    lost: Option<i64>,
    duplicates: Option<u64>,
    out_of_order: Option<u64>,
    streams: usize,
}

struct Case {
    name: &'static str,
    link: WriterLink,
    packets: Vec<Pkt>,
    known: Known,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// A 20 ms PCMU stream: packet `i` has sequence `seq0 + i`, timestamp `ts0 + 160 i` and is
/// sent at `start_us + 20 ms * i`.
#[allow(clippy::too_many_arguments)]
fn stream(
    src: &str,
    dst: &str,
    ssrc: u32,
    pt: u8,
    seq0: u16,
    ts0: u32,
    start_us: u64,
    n: u32,
) -> Vec<Pkt> {
    (0..n)
        .map(|i| Pkt {
            at_us: start_us + 20_000 * u64::from(i),
            src: addr(src),
            dst: addr(dst),
            ssrc,
            pt,
            seq: seq0.wrapping_add(i as u16),
            ts: ts0.wrapping_add(160 * i),
            marker: i == 0,
        })
        .collect()
}

const A: &str = "10.1.0.1:40000";
const B: &str = "10.2.0.2:41000";

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    // Clean, both directions.
    let mut p = stream(A, B, 0x1111_1111, 0, 1000, 123_456, 0, 500);
    p.extend(stream(B, A, 0x2222_2222, 8, 7, 99, 5_000, 500));
    out.push(Case {
        name: "clean (2 directions)",
        link: WriterLink::Ethernet,
        packets: p,
        known: Known {
            lost: Some(0),
            duplicates: Some(0),
            out_of_order: Some(0),
            streams: 2,
        },
    });

    // Random loss, 3 %, never the first two or the last packet.
    let mut p = stream(A, B, 0x3333_3333, 0, 20_000, 5, 0, 1000);
    let before = p.len();
    let mut i = 0;
    p.retain(|_| {
        i += 1;
        i <= 2 || i == before || rng.below(100) >= 3
    });
    let lost = (before - p.len()) as i64;
    out.push(Case {
        name: "random loss 3%",
        link: WriterLink::Ethernet,
        packets: p,
        known: Known {
            lost: Some(lost),
            duplicates: Some(0),
            streams: 1,
            ..Known::default()
        },
    });

    // Burst loss: 40 and 10 packets in a row.
    let mut p = stream(A, B, 0x4444_4444, 8, 300, 0, 0, 600);
    p.retain(|k| !(400..440).contains(&k.seq) && !(500..510).contains(&k.seq));
    out.push(Case {
        name: "burst loss 40+10",
        link: WriterLink::RawIpv4,
        packets: p,
        known: Known {
            lost: Some(50),
            streams: 1,
            ..Known::default()
        },
    });

    // Jitter: each packet delayed by 0..40 ms (may arrive out of order, sorted by arrival).
    let mut p = stream(A, B, 0x5555_5555, 0, 42, 1_000_000, 0, 800);
    for k in p.iter_mut().skip(1) {
        k.at_us += rng.below(40_000);
    }
    out.push(Case {
        name: "jitter 0-40 ms",
        link: WriterLink::Ethernet,
        packets: p,
        known: Known {
            streams: 1,
            ..Known::default()
        },
    });

    // Reordering: every 25th packet arrives 30 ms late, after its successor.
    let mut p = stream(A, B, 0x6666_6666, 0, 5000, 777, 0, 500);
    let mut moved = 0;
    for k in p.iter_mut() {
        if k.seq % 25 == 10 && k.seq < 5490 {
            k.at_us += 30_000;
            moved += 1;
        }
    }
    out.push(Case {
        name: "reordering",
        link: WriterLink::Ethernet,
        packets: p,
        known: Known {
            lost: Some(0),
            duplicates: Some(0),
            out_of_order: Some(moved),
            streams: 1,
        },
    });

    // Duplicates: every 37th packet twice, 1 ms apart.
    let mut p = stream(A, B, 0x7777_7777, 8, 60_000, 0, 0, 500);
    let dups: Vec<Pkt> = p
        .iter()
        .filter(|k| k.seq % 37 == 0 && k.seq != 60_000)
        .map(|k| Pkt {
            at_us: k.at_us + 1000,
            ..*k
        })
        .collect();
    let ndup = dups.len() as u64;
    p.extend(dups);
    out.push(Case {
        name: "duplicates",
        link: WriterLink::Ethernet,
        packets: p,
        known: Known {
            lost: Some(-(ndup as i64)),
            duplicates: Some(ndup),
            out_of_order: Some(0),
            streams: 1,
        },
    });

    // Sequence wrap (65400 -> 464), with a few losses around the wrap.
    let mut p = stream(A, B, 0x8888_8888, 0, 65_400, 10, 0, 600);
    p.retain(|k| !matches!(k.seq, 65_530 | 3 | 4));
    out.push(Case {
        name: "sequence wrap",
        link: WriterLink::Ethernet,
        packets: p,
        known: Known {
            lost: Some(3),
            duplicates: Some(0),
            streams: 1,
            ..Known::default()
        },
    });

    // Timestamp wrap, with jitter.
    let mut p = stream(A, B, 0x9999_9999, 0, 100, u32::MAX - 160 * 200, 0, 500);
    for k in p.iter_mut().skip(1) {
        k.at_us += rng.below(8_000);
    }
    out.push(Case {
        name: "timestamp wrap + jitter",
        link: WriterLink::Ethernet,
        packets: p,
        known: Known {
            lost: Some(0),
            streams: 1,
            ..Known::default()
        },
    });

    // SSRC change on the same 5-tuple (new sequence and timestamp bases).
    let mut p = stream(A, B, 0xAAAA_0001, 0, 10, 1000, 0, 250);
    p.extend(stream(
        A,
        B,
        0xAAAA_0002,
        0,
        40_000,
        9_999_999,
        5_000_000,
        250,
    ));
    out.push(Case {
        name: "SSRC change",
        link: WriterLink::Ethernet,
        packets: p,
        known: Known {
            lost: Some(0),
            streams: 2,
            ..Known::default()
        },
    });

    // Long silence: 5 s without packets, timestamps advance, marker on the talkspurt start.
    let mut p = stream(A, B, 0xBBBB_BBBB, 0, 1, 0, 0, 200);
    let mut after = stream(
        A,
        B,
        0xBBBB_BBBB,
        0,
        201,
        160 * 200 + 40_000,
        4_000_000 + 5_000_000,
        200,
    );
    after[0].marker = true;
    p.extend(after);
    out.push(Case {
        name: "long silence + marker",
        link: WriterLink::Ethernet,
        packets: p,
        known: Known {
            lost: Some(0),
            streams: 1,
            ..Known::default()
        },
    });

    // Everything at once, over IPv6: wrap, loss, jitter, duplicates, reordering.
    let mut p = stream(
        "[2001:db8::1]:30000",
        "[2001:db8::2]:30002",
        0xCCCC_CCCC,
        8,
        65_000,
        u32::MAX - 50_000,
        0,
        1500,
    );
    let n = p.len();
    let mut extra = Vec::new();
    let mut keep = vec![true; n];
    for (i, k) in p.iter_mut().enumerate().skip(2) {
        if i + 1 == n {
            break;
        }
        match rng.below(100) {
            0..=1 => keep[i] = false,
            2 => extra.push(Pkt {
                at_us: k.at_us + 500,
                ..*k
            }),
            3 => k.at_us += 25_000,
            _ => k.at_us += rng.below(15_000),
        }
    }
    let mut i = 0;
    p.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    p.extend(extra);
    out.push(Case {
        name: "combined (IPv6)",
        link: WriterLink::Ethernet,
        packets: p,
        known: Known {
            streams: 1,
            ..Known::default()
        },
    });
    out
}

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn write_capture(case: &Case) -> TempFile {
    let path = std::env::temp_dir().join(format!(
        "switchboard-tshark-{}-{}.pcap",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let file = TempFile(path);
    let mut packets = case.packets.clone();
    packets.sort_by_key(|p| p.at_us); // stable: equal times keep their order
    let out = BufWriter::new(File::create(&file.0).expect("create temp capture"));
    let mut w = PcapWriter::new(out, case.link).expect("pcap header");
    let mut buf = [0u8; 512];
    let payload = [0xd5u8; 160];
    for p in &packets {
        let len = RtpBuilder::new(p.pt, p.seq, p.ts, p.ssrc)
            .marker(p.marker)
            .write(&mut buf, &payload)
            .expect("rtp packet");
        w.write_udp(
            EPOCH + Duration::from_micros(p.at_us),
            p.src,
            p.dst,
            &buf[..len],
        )
        .expect("write packet");
    }
    w.finish().expect("flush");
    file
}

/// One row of tshark's `rtp,streams` table.
#[derive(Debug, Clone)]
struct TsharkRow {
    src: SocketAddr,
    dst: SocketAddr,
    ssrc: u32,
    packets: u64,
    lost: i64,
    columns: HashMap<String, f64>,
}

/// Parses the table: the header names the `(ms)` columns; a row is `... src sport dst dport
/// 0xSSRC payload name... pkts lost (pct%) numbers... [X]`.
fn parse_tshark(out: &str) -> Vec<TsharkRow> {
    let mut labels: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in out.lines() {
        if line.contains("SSRC") && line.contains("(ms)") {
            let segs: Vec<&str> = line.split("(ms)").collect();
            labels = segs[..segs.len() - 1]
                .iter()
                .map(|s| {
                    let w: Vec<&str> = s.split_whitespace().collect();
                    w[w.len().saturating_sub(2)..].join(" ")
                })
                .collect();
            continue;
        }
        let t: Vec<&str> = line.split_whitespace().collect();
        let Some(si) = t.iter().position(|w| w.starts_with("0x") && w.len() == 10) else {
            continue;
        };
        let Some(pi) = t
            .iter()
            .position(|w| w.starts_with('(') && w.ends_with("%)"))
        else {
            continue;
        };
        if si < 4 || pi < si + 3 {
            continue;
        }
        let sock = |ip: &str, port: &str| -> Option<SocketAddr> {
            Some(SocketAddr::new(
                ip.parse::<IpAddr>().ok()?,
                port.parse().ok()?,
            ))
        };
        let (Some(src), Some(dst)) = (sock(t[si - 4], t[si - 3]), sock(t[si - 2], t[si - 1]))
        else {
            continue;
        };
        let nums: Vec<f64> = t[pi + 1..].iter().filter_map(|w| w.parse().ok()).collect();
        let columns = labels.iter().cloned().zip(nums).collect();
        rows.push(TsharkRow {
            src,
            dst,
            ssrc: u32::from_str_radix(&t[si][2..], 16).unwrap_or(0),
            packets: t[pi - 2].parse().unwrap_or(0),
            lost: t[pi - 1].parse().unwrap_or(i64::MIN),
            columns,
        });
    }
    rows
}

const TSHARK_ARGS: [&str; 4] = ["-o", "rtp.heuristic_rtp:TRUE", "-z", "rtp,streams"];

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs tshark on `path`: RTP found heuristically on any port, or, with `port`, decoded as
/// RTP on that port (`-d udp.port==N,rtp`).
fn run_tshark(path: &std::path::Path, port: Option<u16>) -> String {
    let mut cmd = Command::new("tshark");
    cmd.arg("-q").arg("-r").arg(path);
    match port {
        None => cmd.args(TSHARK_ARGS),
        Some(p) => cmd.args(["-d", &format!("udp.port=={p},rtp"), "-z", "rtp,streams"]),
    };
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ours(path: &std::path::Path, port: Option<u16>) -> Vec<StreamRow> {
    let data = std::fs::read(path).expect("read capture");
    let options = AnalyzeOptions {
        port,
        clock_rate: None,
    };
    let (rows, err) = analyze_capture(&data, options).expect("analyze");
    assert_eq!(err, None);
    rows
}

/// Our analysis of each generated capture matches what the construction implies (runs
/// without tshark).
#[test]
fn generated_captures_have_known_loss() {
    for case in cases() {
        let file = write_capture(&case);
        let rows = ours(&file.0, None);
        assert_eq!(rows.len(), case.known.streams, "{}: {rows:?}", case.name);
        let r = &rows[0];
        if let Some(lost) = case.known.lost {
            assert_eq!(r.lost, lost, "{}: lost", case.name);
        }
        if let Some(d) = case.known.duplicates {
            assert_eq!(r.duplicates, d, "{}: duplicates", case.name);
        }
        if let Some(o) = case.known.out_of_order {
            assert_eq!(r.out_of_order, o, "{}: out of order", case.name);
        }
        assert!(r.mos >= 1.0 && r.mos <= 4.5);
        for row in &rows {
            let back: StreamRow = serde_json::from_str(&row.to_json()).expect("json");
            assert_eq!(&back, row);
        }
    }
}

#[test]
fn agrees_with_tshark() {
    if !tshark_available() {
        if std::env::var("SWITCHBOARD_REQUIRE_TSHARK").as_deref() == Ok("1") {
            panic!("tshark is not installed but SWITCHBOARD_REQUIRE_TSHARK=1");
        }
        eprintln!("NOTICE: tshark not found; skipping the Wireshark agreement test");
        return;
    }
    let mut failures = Vec::new();
    println!(
        "{:<38} {:>10} {:>11} {:>9} {:>17} {:>17} {:>17}",
        "case", "ssrc", "pkts o/t", "lost o/t", "max jit o/t", "mean jit o/t", "max delta o/t"
    );
    let runs = cases().into_iter().flat_map(|c| {
        let port = c.packets[0].dst.port();
        [
            (None, c.name, c.link, c.packets.clone()),
            (Some(port), c.name, c.link, c.packets),
        ]
    });
    for (port, name, link, packets) in runs {
        let case = Case {
            name,
            link,
            packets,
            known: Known::default(),
        };
        let file = write_capture(&case);
        let ours = ours(&file.0, port);
        let table = run_tshark(&file.0, port);
        let theirs = parse_tshark(&table);
        let label = match port {
            None => case.name.to_string(),
            Some(p) => format!("{} (port {p})", case.name),
        };
        if theirs.len() != ours.len() {
            failures.push(format!(
                "{}: {} streams ours, {} tshark\n{table}",
                label,
                ours.len(),
                theirs.len()
            ));
            continue;
        }
        for o in &ours {
            let Some(t) = theirs.iter().find(|t| {
                format!("0x{:08X}", t.ssrc) == o.ssrc
                    && t.src.to_string() == o.src
                    && t.dst.to_string() == o.dst
            }) else {
                failures.push(format!("{label}: stream {} not in tshark\n{table}", o.ssrc));
                continue;
            };
            let col = |name: &str| t.columns.get(name).copied().unwrap_or(f64::NAN);
            let (max_j, mean_j, max_d) = (col("Max Jitter"), col("Mean Jitter"), col("Max Delta"));
            println!(
                "{:<38} {:>10} {:>5}/{:<5} {:>4}/{:<4} {:>8.3}/{:<8.3} {:>8.3}/{:<8.3} {:>8.3}/{:<8.3}",
                label,
                o.ssrc,
                o.packets,
                t.packets,
                o.lost,
                t.lost,
                o.max_jitter_ms,
                max_j,
                o.mean_jitter_ms,
                mean_j,
                o.max_delta_ms,
                max_d
            );
            if o.lost != t.lost || o.packets != t.packets {
                failures.push(format!(
                    "{label} {}: packets/lost ours {}/{} tshark {}/{}",
                    o.ssrc, o.packets, o.lost, t.packets, t.lost
                ));
            }
            for (what, a, b) in [
                ("max jitter", o.max_jitter_ms, max_j),
                ("mean jitter", o.mean_jitter_ms, mean_j),
                ("max delta", o.max_delta_ms, max_d),
            ] {
                // NaN (column missing) fails the comparison.
                let agree = (a - b).abs() <= JITTER_TOLERANCE_MS;
                if !agree {
                    failures.push(format!("{label} {}: {what} ours {a} tshark {b}", o.ssrc));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "disagreements:\n{}",
        failures.join("\n")
    );
}
