//! Runs the real `qbo-sync match` binary on small files, good and bad.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("qbo-sync-match-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn run(qbo: &Path, digit: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qbo-sync"))
        .args(["match", "--qbo"])
        .arg(qbo)
        .arg("--digit")
        .arg(digit)
        .output()
        .expect("run qbo-sync")
}

const QBO: &str = r#"[
  {"Id": "1", "SyncToken": "0", "DisplayName": "Acme Corporation", "Active": true},
  {"Id": "2", "SyncToken": "3", "DisplayName": "John Smith", "Active": true},
  {"Id": "3", "SyncToken": "1", "DisplayName": "John Smith (Dallas)", "Active": true},
  {"Id": "4", "SyncToken": "0", "DisplayName": "Globex", "Active": false}
]"#;

const DIGIT: &str = r#"[
  {"id": "d1", "display_name": "ACME CORP."},
  {"id": "d2", "display_name": "John Smith"},
  {"id": "d3", "display_name": "Globex"},
  {"id": "d4", "display_name": "Initech"}
]"#;

#[test]
fn writes_a_plan_for_good_files() {
    let dir = scratch_dir("good");
    let (qbo, digit) = (dir.join("qbo.json"), dir.join("digit.json"));
    std::fs::write(&qbo, QBO).unwrap();
    std::fs::write(&digit, DIGIT).unwrap();
    let out = run(&qbo, &digit);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(
        plan["normalizer_version"],
        qbo_sync::matching::NORMALIZER_VERSION
    );
    let links = plan["links"].as_array().unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0]["digit_id"].as_str(), links[0]["qbo_id"].as_str()),
        (Some("d1"), Some("1"))
    );
    assert_eq!(links[0]["method"], "AUTO_NORMALIZED");
    let review: Vec<&str> = plan["review"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digit_id"].as_str().unwrap())
        .collect();
    assert_eq!(review, vec!["d2", "d3"], "twins and inactive go to review");
    assert_eq!(plan["review"][1]["candidates"][0]["active"], false);
    assert_eq!(plan["unmatched"], serde_json::json!([{"digit_id": "d4"}]));
}

#[test]
fn bad_json_names_the_file_and_position() {
    let dir = scratch_dir("bad");
    let (qbo, digit) = (dir.join("qbo.json"), dir.join("broken-digit.json"));
    std::fs::write(&qbo, QBO).unwrap();
    std::fs::write(&digit, "[\n  {\"id\": \"d1\", \"display_name\": \"A\"},\n  {\"id\": \"d2\" \"display_name\": \"B\"}\n]").unwrap();
    let out = run(&qbo, &digit);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no partial plan on failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken-digit.json:3:"), "{stderr}");
    let missing = run(&dir.join("nope.json"), &digit);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.json"));
}
