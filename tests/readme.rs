//! The README's curl walk-through, run verbatim against the real binary on a free port.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The walk-through and the call lifecycle, run as one script (the second uses $TOKEN).
fn walkthrough() -> String {
    block("walkthrough") + &block("lifecycle")
}

fn block(name: &str) -> String {
    let readme = include_str!("../README.md");
    let start = readme
        .find(&format!("<!-- {name}:start -->"))
        .expect("start marker");
    let end = readme
        .find(&format!("<!-- {name}:end -->"))
        .expect("end marker");
    let block = &readme[start..end];
    let body_start = block.find("```sh\n").expect("sh block") + 6;
    let body_end = block[body_start..].find("```").expect("end of block") + body_start;
    block[body_start..body_end].to_string()
}

#[test]
fn readme_walkthrough_works_verbatim() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("notice: curl not installed; README walk-through test skipped");
        return;
    }
    let dir = std::env::temp_dir().join(format!("sb-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--sip-bind",
            "off",
            "--data-dir",
        ])
        .arg(&dir)
        .env("SWITCHBOARD_LOG", "info")
        .env("SWITCHBOARD_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switchboard");
    // The server logs its bound address in its first lines.
    let stdout = server.stdout.take().unwrap();
    let mut addr = None;
    for line in BufReader::new(stdout).lines().take(50) {
        let line = line.unwrap();
        if let Some(i) = line.find("\"addr\":\"") {
            let rest = &line[i + 8..];
            addr = rest.split('"').next().map(str::to_string);
            break;
        }
    }
    let addr = addr.expect("server printed its address");
    let script = walkthrough().replace("localhost:3000", &addr);
    let out = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(&script)
        .current_dir(&dir)
        .output()
        .expect("run bash");
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "walk-through failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(r#""message":"User registered successfully""#),
        "{stdout}"
    );
    assert!(stdout.contains(r#""inserted":2"#), "{stdout}");
    assert!(
        stdout.contains(r#""error":"Invalid phone number format""#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#""phone_normalized":"+14155552671""#),
        "{stdout}"
    );
    assert!(stdout.contains(r#""total":2"#), "{stdout}");
    assert!(
        stdout.contains(r#""message":"Recording uploaded successfully""#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#""sample_rate":8000"#) && stdout.contains(r#""channels":2"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#""has_recording":true"#) && stdout.contains(r#""has_transcript":true"#),
        "{stdout}"
    );
}
