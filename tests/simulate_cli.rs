//! `switchboard simulate`: the pacing simulator's table and JSON, and clear errors for bad
//! flags.

use std::process::Command;

fn simulate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("simulate")
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running switchboard")
}

#[test]
fn json_has_one_run_per_agent_count_and_mode() {
    let out = simulate(&[
        "--agents",
        "4,8",
        "--modes",
        "progressive,predictive",
        "--hours",
        "0.5",
        "--seed",
        "3",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = doc["simulate"]["runs"].as_array().unwrap();
    let keys: Vec<(u64, &str)> = runs
        .iter()
        .map(|r| (r["agents"].as_u64().unwrap(), r["mode"].as_str().unwrap()))
        .collect();
    assert_eq!(
        keys,
        [
            (4, "progressive"),
            (4, "predictive"),
            (8, "progressive"),
            (8, "predictive")
        ]
    );
    for r in runs {
        assert!(r["dials"].as_u64().unwrap() > 0);
        assert!(r["abandon_rate"].as_f64().unwrap() <= 0.03);
        assert!(r["talk_minutes_per_agent_hour"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(doc["simulate"]["population"]["answer_rate"], 0.3);
}

#[test]
fn the_table_has_a_row_per_run() {
    let out = simulate(&["--agents", "5", "--hours", "0.25"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("| agents | mode | talk min / agent-h | abandon %"));
    for mode in ["preview", "progressive", "power", "predictive"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("| 5 | {mode} |"))),
            "{mode} row missing:\n{text}"
        );
    }
}

#[test]
fn bad_flags_are_clear_errors() {
    for (args, says) in [
        (&["--modes", "turbo"][..], "--modes"),
        (&["--answer-rate", "1.5"][..], "answer-rate"),
        (&["--agents", "0"][..], "agents"),
        (&["--window", "7d"][..], "--window"),
        (&["--hours=0"][..], "hours"),
    ] {
        let out = simulate(args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
