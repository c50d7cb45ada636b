//! `switchboard amd classify`: one JSON line per file; a file that is not audio gets an
//! error line and a non-zero exit.

use std::process::Command;

/// 8 kHz mono 16-bit WAV: 0.6 s of a voice-like two-tone burst, then 4 s of silence (a
/// short human "hello?").
fn hello_wav() -> Vec<u8> {
    let rate = 8000u32;
    let mut pcm: Vec<i16> = Vec::new();
    for i in 0..(rate as usize * 6 / 10) {
        let t = i as f64 / f64::from(rate);
        let env = (std::f64::consts::PI * t / 0.6).sin();
        pcm.push(
            (env * 6000.0
                * ((2.0 * std::f64::consts::PI * 180.0 * t).sin()
                    + 0.5 * (2.0 * std::f64::consts::PI * 720.0 * t).sin())) as i16,
        );
    }
    pcm.extend(std::iter::repeat_n(0i16, rate as usize * 4));
    let data_len = (pcm.len() * 2) as u32;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * 2).to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

#[test]
fn classify_prints_json_lines_and_fails_on_non_audio() {
    let dir = std::env::temp_dir().join(format!("sb-amd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("hello.wav");
    std::fs::write(&wav, hello_wav()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["amd", "classify", "--mode", "enable"])
        .arg(&wav)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    for key in [
        "file",
        "answered_by",
        "cause",
        "decision_ms",
        "greeting_end_ms",
        "beep_hz",
        "beep_ms",
    ] {
        assert!(row.get(key).is_some(), "missing {key}: {row}");
    }
    assert_eq!(row["answered_by"], "human", "{row}");

    let text = dir.join("notes.wav");
    std::fs::write(&text, "not audio at all").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["amd", "classify"])
        .arg(&wav)
        .arg(&text)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[1]["error"].as_str().unwrap().contains("WAV"),
        "{}",
        lines[1]
    );
    let bad_mode = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["amd", "classify", "--mode", "guess"])
        .arg(&wav)
        .output()
        .unwrap();
    assert!(!bad_mode.status.success());
    std::fs::remove_dir_all(&dir).ok();
}
