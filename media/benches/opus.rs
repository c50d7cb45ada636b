//! Cost of Opus in the media core, per 20 ms frame at 8 kHz mono, next to G.711.
//!
//! - encode and decode of the Opus wrapper (`codec.rs`, opus-rs underneath) at 16 kb/s for
//!   complexities 0, 5 (the runtime's default) and 10, and decoder concealment of a lost frame;
//! - the receive path as the media loop runs it, without sockets: RTP parse + latching +
//!   RFC 3550 statistics (`RtpSession::handle_rtp`) + decode to 8 kHz, for PCMU and for Opus;
//! - memory of one Opus stream's encoder and decoder.
//!
//! The input is a voice-like signal (harmonics of a gliding pitch), 10 s, looped.
//!
//! `cargo bench -p switchboard-media --bench opus`

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use switchboard_media::codec::{
    Codec, OpusDecoder, OpusEncoder, OpusSettings, MAX_OPUS_PACKET, MAX_OPUS_SAMPLES,
};
use switchboard_media::g711::Law;
use switchboard_media::rtp::RtpBuilder;
use switchboard_media::session::{Incoming, RtpSession, SessionConfig, FRAME_SAMPLES};

fn voice(n: usize) -> Vec<i16> {
    let tau = 2.0 * std::f64::consts::PI;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            phase += tau * (150.0 + 40.0 * (tau * 0.7 * t).sin()) / 8000.0;
            let env = 0.55 + 0.45 * (tau * 3.0 * t).sin();
            let s: f64 = (2..=8)
                .map(|k| (f64::from(k) * phase).sin() / f64::from(k))
                .sum();
            (env * s * 9000.0) as i16
        })
        .collect()
}

/// Runs `f` over the frames for at least `min` and returns µs per call.
fn per_call(min: Duration, frames: usize, mut f: impl FnMut(usize)) -> f64 {
    for i in 0..frames.min(50) {
        f(i);
    }
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < min {
        for i in 0..frames {
            f(i);
        }
        n += frames;
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let pcm = voice(8000 * 10);
    let frames: Vec<[i16; FRAME_SAMPLES]> = pcm
        .chunks_exact(FRAME_SAMPLES)
        .map(|c| c.try_into().expect("frame"))
        .collect();
    let min = Duration::from_secs(2);
    println!("Opus at 8 kHz mono, 20 ms frames, 16 kb/s VBR (µs per frame, one core)");
    println!("| complexity | bytes/frame | encode µs | decode µs | conceal µs |");
    println!("|---:|---:|---:|---:|---:|");
    for complexity in [0u8, 5, 10] {
        let settings = OpusSettings {
            bitrate_bps: 16_000,
            complexity,
        };
        let mut enc = OpusEncoder::new(settings).expect("encoder");
        let mut packets = Vec::with_capacity(frames.len());
        let mut out = [0u8; MAX_OPUS_PACKET];
        for f in &frames {
            let n = enc.encode(f, &mut out).expect("encode");
            packets.push(out[..n].to_vec());
        }
        let bytes = packets.iter().map(Vec::len).sum::<usize>() as f64 / packets.len() as f64;
        let enc_us = per_call(min, frames.len(), |i| {
            black_box(enc.encode(&frames[i], &mut out).expect("encode"));
        });
        let mut dec = OpusDecoder::new().expect("decoder");
        let mut pcm_out = [0i16; MAX_OPUS_SAMPLES];
        let dec_us = per_call(min, packets.len(), |i| {
            black_box(dec.decode(&packets[i], &mut pcm_out).expect("decode"));
        });
        let plc_us = per_call(min / 2, packets.len(), |i| {
            if i % 2 == 0 {
                black_box(dec.conceal(FRAME_SAMPLES, &mut pcm_out).expect("conceal"));
            } else {
                black_box(dec.decode(&packets[i], &mut pcm_out).expect("decode"));
            }
        });
        // Concealment alternates with decoding (a concealment after a concealment fades
        // out differently); subtract the decode half.
        let conceal_us = 2.0 * plc_us - dec_us;
        println!("| {complexity} | {bytes:.1} | {enc_us:.1} | {dec_us:.1} | {conceal_us:.1} |");
    }

    // The receive path of the media loop, sans sockets.
    let from: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    let mut enc = OpusEncoder::new(OpusSettings::default()).expect("encoder");
    let mut rtp_opus = Vec::with_capacity(frames.len());
    let mut rtp_pcmu = Vec::with_capacity(frames.len());
    let mut buf = [0u8; 1600];
    let mut g711 = [0u8; FRAME_SAMPLES];
    for (i, f) in frames.iter().enumerate() {
        let n = enc.encode(f, &mut buf[..MAX_OPUS_PACKET]).expect("encode");
        let payload = buf[..n].to_vec();
        let mut p = [0u8; 1600];
        let m = RtpBuilder::new(111, i as u16, 960 * i as u32, 7)
            .write(&mut p, &payload)
            .expect("rtp");
        rtp_opus.push(p[..m].to_vec());
        Law::Mu.encode(f, &mut g711).expect("g711");
        let m = RtpBuilder::new(0, i as u16, 160 * i as u32, 7)
            .write(&mut p, &g711)
            .expect("rtp");
        rtp_pcmu.push(p[..m].to_vec());
    }
    println!();
    println!(
        "Receive path per packet: RTP parse + latching + RFC 3550 statistics + decode to 8 kHz"
    );
    println!("| codec | µs/packet |");
    println!("|---|---:|");
    for (name, codec, packets) in [
        ("PCMU", Codec::Pcmu, &rtp_pcmu),
        ("Opus", Codec::opus(111), &rtp_opus),
    ] {
        let mut session = RtpSession::new(SessionConfig::new(codec, 1, 0, 0), Duration::ZERO);
        let mut dec = OpusDecoder::new().expect("decoder");
        let mut out = [0i16; MAX_OPUS_SAMPLES];
        let mut round = 0u64;
        let count = packets.len();
        let us = per_call(min, count, |i| {
            if i == 0 {
                round += 1;
            }
            // Arrival times follow the packets (20 ms apart), the sequence continues
            // across rounds through the statistics' wrap handling.
            let now = Duration::from_millis(20 * (round * count as u64 + i as u64));
            if let Incoming::Media { packet, .. } = session.handle_rtp(now, from, &packets[i]) {
                let payload = packet.payload();
                match codec.law() {
                    Some(law) => {
                        black_box(law.decode(payload, &mut out).expect("g711"));
                    }
                    None => {
                        black_box(dec.decode(payload, &mut out).ok());
                    }
                }
            }
        });
        println!("| {name} | {us:.2} |");
    }

    println!();
    let before = rss_kib();
    let mut keep = Vec::new();
    for _ in 0..100 {
        let mut e = OpusEncoder::new(OpusSettings::default()).expect("encoder");
        let mut d = OpusDecoder::new().expect("decoder");
        let mut out = [0u8; MAX_OPUS_PACKET];
        let mut pcm_out = [0i16; MAX_OPUS_SAMPLES];
        let n = e.encode(&frames[0], &mut out).expect("encode");
        d.decode(&out[..n], &mut pcm_out).expect("decode");
        keep.push((e, d));
    }
    println!(
        "Memory of one Opus stream (encoder + decoder, touched): {} KiB",
        (rss_kib() - before) / 100
    );
    drop(keep);
}
