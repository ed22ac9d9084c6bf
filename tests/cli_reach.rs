//! `nfscope reach` as a script runs it: on files, on the demo, the JSON's keys, the exit
//! statuses, and a clear sentence for bad input (a malformed file names its line; a bad
//! `--iface`; a family that was not loaded). The kernel source is in tests/reach_kernel.rs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_nfscope");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .expect("run nfscope")
}

fn file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("nfscope-cli-reach-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const V4: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -s 10.0.0.0/8 -j ACCEPT
-A FORWARD -d 192.0.2.7/32 -p tcp -m tcp --dport 22 -j ACCEPT
-A FORWARD -s 198.51.100.0/24 -m limit --limit 1/sec -j ACCEPT
COMMIT
";

#[test]
fn text_and_json_on_a_file() {
    let f = file("v4", V4);
    let out = run(&[
        "reach", "--file", &f, "--chain", "FORWARD", "-p", "tcp", "--dport", "22",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("Reachability: IPv4 filter FORWARD, tcp dport 22, state NEW (a SYN)"),
        "{text}"
    );
    assert!(
        text.contains("\n4 classes, 10 edges (7 certain, 3 possible)\n"),
        "{text}"
    );
    assert!(text.contains("10.0.0.0/8"), "{text}");
    assert!(text.contains("192.0.2.7"), "{text}");
    assert!(text.contains("possible"), "{text}");
    assert!(
        text.contains("filter FORWARD rule 3: -A FORWARD -s 198.51.100.0/24 -m limit"),
        "{text}"
    );

    let out = run(&[
        "reach", "--file", &f, "--chain", "forward", "-p", "tcp", "--dport", "22", "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "family", "chain", "proto", "dport", "sport", "state", "walked", "classes", "edges",
        "hinges", "native", "notes",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    assert_eq!(doc["family"], "ipv4");
    assert_eq!(doc["chain"], "FORWARD");
    let edge = &doc["edges"][0];
    assert!(edge["from"].is_string() && edge["to"].is_string() && edge["certain"].is_boolean());
    assert_eq!(doc["hinges"][0]["rule"], 3);
}

#[test]
fn the_demo_answers_both_families() {
    let out = run(&[
        "reach", "--demo", "--chain", "INPUT", "-p", "tcp", "--dport", "22", "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let docs: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["family"], "ipv4");
    assert_eq!(docs[1]["family"], "ipv6");
}

#[test]
fn bad_input_gets_a_sentence_and_a_status() {
    // A malformed file names its line.
    let bad = file(
        "bad",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s \"unterminated\nCOMMIT\n",
    );
    let out = run(&["reach", "--file", &bad, "--chain", "INPUT", "-p", "tcp"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    assert!(out.stdout.is_empty(), "nothing answered, nothing printed");
    // A bad interface map.
    let f = file("v4b", V4);
    for bad in ["eth0", "eth0=10.0.0.0/33", "eth+=10.0.0.0/8"] {
        let out = run(&[
            "reach", "--file", &f, "--chain", "INPUT", "-p", "tcp", "--iface", bad,
        ]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--iface"), "{err}");
    }
    // IPv6 asked of an IPv4 file.
    let out = run(&["reach", "--file", &f, "--chain", "INPUT", "-p", "tcp", "-6"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--file6"));
    // An unknown chain or protocol.
    let out = run(&["reach", "--file", &f, "--chain", "PREROUTING", "-p", "tcp"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["reach", "--file", &f, "--chain", "INPUT", "-p", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    // An interface map with no address of the family is noted.
    let out = run(&[
        "reach",
        "--file",
        &f,
        "--chain",
        "FORWARD",
        "-p",
        "tcp",
        "--iface",
        "lan0=2001:db8::/32",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("note: --iface lan0 names no IPv4 address")
    );
}

#[test]
fn with_nat_the_demo_port_forward_answers_at_the_public_address() {
    let out = run(&[
        "reach",
        "--demo",
        "-4",
        "--chain",
        "FORWARD",
        "-p",
        "tcp",
        "--dport",
        "8080",
        "--nat",
        "--iface",
        "lan0=10.0.0.0/24",
        "--iface",
        "wan0=!10.0.0.0/24",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["walked"],
        serde_json::json!(["nat PREROUTING", "filter FORWARD"])
    );
    let class = |a: &str| {
        doc["classes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["ranges"].as_array().unwrap().iter().any(|r| r == a))
            .map(|c| c["name"].as_str().unwrap().to_string())
    };
    let public = class("203.0.113.2").expect("the public address is a class of its own");
    let internet = doc["classes"][0]["name"].as_str().unwrap();
    let edge = doc["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == internet && e["to"] == public.as_str())
        .expect("the internet reaches the port forward");
    assert_eq!(edge["certain"], true);
}
