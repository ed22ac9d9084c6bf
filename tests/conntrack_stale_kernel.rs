//! `nfscope conntrack --stale` against a real kernel, in a throwaway network namespace of its
//! own (tests/common): a connection opened while its port was allowed, then the rules changed so
//! that a NEW packet to that port is dropped while ESTABLISHED is still accepted first. The real
//! binary must list exactly that connection with the DROP rule, and `--stale --delete --yes`
//! must delete it and nothing else, as the real `conntrack -L` shows. The host's rule set and
//! table are never touched. Needs root (skipped otherwise, failed under CI=true).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::ct::{conntrack_list, settle, tcp_connection, tracked_ns};
use common::{NetNs, Run};
use nfscope::ruleset::Family;
use nfscope::source::Backend;
use serde_json::Value;
use std::process::Stdio;

const BIN: &str = env!("CARGO_BIN_EXE_nfscope");

fn inside(ns: &NetNs, args: &[&str]) -> Run {
    let mut all = vec![BIN];
    all.extend_from_slice(args);
    ns.command(&all)
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .expect("run nfscope in the namespace")
        .into()
}

const OPEN: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 7777 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 7778 -j ACCEPT
COMMIT
";

const CLOSED: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 7777 -j DROP
-A INPUT -p tcp -m tcp --dport 7778 -j ACCEPT
COMMIT
";

fn dports(ns: &NetNs) -> Vec<String> {
    let mut v: Vec<String> = conntrack_list(ns)
        .into_iter()
        .filter_map(|(r, _)| r.orig.get("dport").cloned())
        .collect();
    v.sort();
    v
}

#[test]
fn stale_lists_the_connection_new_rules_refuse_and_deletes_only_it() {
    let Some(ns) = tracked_ns("ctstale") else {
        return;
    };
    ns.restore(Family::V4, Backend::Nft, OPEN);
    let _cut = tcp_connection(&ns, 7777);
    let _kept = tcp_connection(&ns, 7778);
    settle(&ns);
    ns.restore(Family::V4, Backend::Nft, CLOSED);
    assert_eq!(dports(&ns), ["7777", "7778"], "the two connections live");

    let run = inside(&ns, &["conntrack", "--stale", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let v: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let stale = v["stale"].as_array().expect("stale");
    assert_eq!(stale.len(), 1, "{v:#}");
    assert_eq!(stale[0]["entry"]["orig"]["dport"], 7777);
    assert_eq!(stale[0]["entry"]["orig"]["src"], "127.0.0.1");
    let rule = &stale[0]["rule"];
    assert_eq!(
        (
            &rule["table"],
            &rule["chain"],
            &rule["rule"],
            &rule["verdict"]
        ),
        (
            &Value::from("filter"),
            &Value::from("INPUT"),
            &Value::from(2),
            &Value::from("DROP")
        ),
        "{v:#}"
    );
    assert_eq!(rule["text"], "-A INPUT -p tcp -m tcp --dport 7777 -j DROP");
    assert_eq!(v["maybe"].as_array().map(Vec::len), Some(0), "{v:#}");
    assert_eq!(v["accepted"], 1, "the connection to 7778: {v:#}");

    let run = inside(&ns, &["conntrack", "--stale"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert!(lines[0].contains("dport=7777"), "{run:?}");
    assert_eq!(
        lines[1],
        "  would now be dropped by: filter INPUT rule 2: -A INPUT -p tcp -m tcp --dport 7777 -j DROP"
    );
    assert!(
        run.stderr
            .contains("nfscope: 1 entry of 2 would not be accepted anew"),
        "{run:?}"
    );

    // Not a terminal, no --yes: refused, nothing deleted.
    let run = inside(&ns, &["conntrack", "--stale", "--delete"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("add --yes"), "{run:?}");
    assert_eq!(dports(&ns), ["7777", "7778"]);

    let run = inside(&ns, &["conntrack", "--stale", "--delete", "--yes"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.ends_with("deleted 1 entry\n"), "{run:?}");
    assert_eq!(dports(&ns), ["7778"], "only the stale one went");
}
