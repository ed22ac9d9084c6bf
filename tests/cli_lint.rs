//! `nfscope lint` as a user meets it: the real binary over --demo and --file (no root), the exit
//! statuses CI relies on (0 clean, 1 a finding at --severity or above, 2 a source or usage
//! error), the JSON document's keys (docs/json.md), and a malformed file named by its line.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{Run, keys};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nfscope");

fn nfscope(args: &[&str]) -> Run {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env("NO_COLOR", "1")
        .output()
        .expect("run nfscope")
        .into()
}

/// A file in a directory of this test run's own.
fn file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nfscope-cli-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const V4: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:UNUSED - [0:0]\n\
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
-A INPUT -s 10.0.0.0/25 -p tcp -m tcp --dport 22 -j ACCEPT\n\
-A INPUT -s 10.0.0.128/25 -p tcp -m tcp --dport 22 -j ACCEPT\n\
-A INPUT -s 10.0.0.0/24 -p tcp -m tcp --dport 22 -j DROP\n\
-A INPUT -p tcp -m tcp --dport 443 -j ACCEPT\n\
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
-A UNUSED -j DROP\nCOMMIT\n";

const V6: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n";

#[test]
fn the_demo_lints_and_says_so() {
    let r = nfscope(&["lint", "--demo"]);
    assert!(r.code == 0 || r.code == 1, "{r:?}");
    assert!(r.stdout.lines().last().is_some(), "{r:?}");
    let r = nfscope(&["lint", "--demo", "--format", "json", "--severity", "info"]);
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(doc["source"], "demo");
}

#[test]
fn exit_status_follows_the_severity() {
    let v4 = file("a.v4", V4);
    let v4 = v4.to_str().unwrap();
    let r = nfscope(&["lint", "--file", v4]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("warning: shadowed: IPv4 filter INPUT rule 4"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("-A INPUT -s 10.0.0.0/24 -p tcp -m tcp --dport 22 -j DROP")
    );
    // The unused chain is info: hidden, and counted, at the default severity.
    assert!(!r.stdout.contains("unused_chain"), "{r:?}");
    assert!(
        r.stdout.contains("below --severity warning not shown"),
        "{r:?}"
    );
    let r = nfscope(&["lint", "--file", v4, "--severity", "info"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("info: unused_chain: IPv4 filter chain UNUSED"),
        "{r:?}"
    );
    let r = nfscope(&["lint", "--file", v4, "--severity", "error"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("no findings of severity error or above"),
        "{r:?}"
    );
    let clean = file("clean.v4", V6.replace("::", "").as_str());
    let r = nfscope(&["lint", "--file", clean.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn json_has_the_documented_keys() {
    let v4 = file("j.v4", V4);
    let v6 = file("j.v6", V6);
    let r = nfscope(&[
        "lint",
        "--file",
        v4.to_str().unwrap(),
        "--file6",
        v6.to_str().unwrap(),
        "--format",
        "json",
        "--severity",
        "info",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(
        keys(&doc),
        ["below", "findings", "severity", "source"]
            .into_iter()
            .collect()
    );
    assert_eq!(doc["severity"], "info");
    let findings = doc["findings"].as_array().unwrap();
    for f in findings {
        assert_eq!(
            keys(f),
            [
                "by", "chain", "family", "kind", "message", "rule", "severity", "table", "text"
            ]
            .into_iter()
            .collect()
        );
        for b in f["by"].as_array().unwrap() {
            assert_eq!(
                keys(b),
                ["chain", "family", "rule", "table", "text"]
                    .into_iter()
                    .collect()
            );
        }
    }
    let kinds: Vec<&str> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for k in ["shadowed", "unused_chain", "parity"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let sh = findings.iter().find(|f| f["kind"] == "shadowed").unwrap();
    assert_eq!(sh["family"], "ipv4");
    assert_eq!(sh["rule"], 4);
    assert_eq!(sh["severity"], "warning");
    let by: Vec<i64> = sh["by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["rule"].as_i64().unwrap())
        .collect();
    assert_eq!(by, [2, 3]);
    let par = findings.iter().find(|f| f["kind"] == "parity").unwrap();
    assert!(
        par["message"].as_str().unwrap().contains("tcp port 443"),
        "{par}"
    );
    assert_eq!(par["by"][0]["family"], "ipv6");
}

#[test]
fn source_and_usage_errors_are_status_2() {
    let bad = file(
        "bad.v4",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A\nCOMMIT\n",
    );
    let r = nfscope(&["lint", "--file", bad.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("line 4"), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    let r = nfscope(&["lint", "--file", "/nonexistent/rules.v4"]);
    assert_eq!(r.code, 2, "{r:?}");
    let v4 = file("u.v4", V4);
    let r = nfscope(&["lint", "--file", v4.to_str().unwrap(), "-6"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no rule set to lint"), "{r:?}");
    let r = nfscope(&["lint", "--demo", "--severity", "loud"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = nfscope(&["lint", "--demo", "-4", "-6"]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn the_json_example_in_the_docs_has_the_keys_the_binary_prints() {
    let doc = std::fs::read_to_string(format!("{}/docs/json.md", env!("CARGO_MANIFEST_DIR")))
        .expect("docs/json.md");
    let section = &doc[doc.find("## Lint findings").expect("a lint section")..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let block = section.split("```json\n").nth(1).expect("an example");
    let example: Value = serde_json::from_str(&block[..block.find("```").unwrap()]).unwrap();
    assert_eq!(
        keys(&example),
        ["below", "findings", "severity", "source"]
            .into_iter()
            .collect()
    );
    let f = &example["findings"][0];
    assert_eq!(
        keys(f),
        [
            "by", "chain", "family", "kind", "message", "rule", "severity", "table", "text"
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(
        keys(&f["by"][0]),
        ["chain", "family", "rule", "table", "text"]
            .into_iter()
            .collect()
    );
}
