//! `nfscope lint` against the kernel, in a throwaway network namespace: a rule it reports
//! shadowed really never counts a packet, while the rule that covers it does; and the real
//! binary, run inside the namespace, reports it. Never touches this machine's own rule set.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{NetNs, Run, have_tools};
use nfscope::ruleset::{Family, parse};
use nfscope::source::Backend;

const RULES: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
-A INPUT -s 127.0.0.0/25 -p tcp -m tcp --dport 5000:5010 -j ACCEPT\n\
-A INPUT -s 127.0.0.128/25 -p tcp -m tcp --dport 5000:5010 -j ACCEPT\n\
-A INPUT -s 127.0.0.0/24 -p tcp -m tcp --dport 5005 -j DROP\n\
-A INPUT -i l+ -p udp -m udp --dport 6000 -j ACCEPT\n\
-A INPUT -i lo -p udp -m udp --dport 6000 -j DROP\n\
COMMIT\n";

/// The packet counter of rule `n` (1-based) of INPUT in `iptables-save -c` text.
fn packets(save: &str, n: usize) -> u64 {
    let rs = parse(save, Family::V4).expect("iptables-save output parses");
    let c = rs.table("filter").unwrap().chain("INPUT").unwrap();
    c.rules[n - 1].packets()
}

#[test]
fn a_shadowed_rule_counts_nothing_and_is_reported() {
    let backend = if have_tools(Backend::Nft) {
        Backend::Nft
    } else if have_tools(Backend::Legacy) {
        Backend::Legacy
    } else {
        return;
    };
    let Some(ns) = NetNs::for_test("lint") else {
        return;
    };
    ns.restore(Family::V4, backend, RULES);
    // Real packets on loopback: TCP connects (refused: nothing listens, the SYN still goes
    // through INPUT) and UDP datagrams, from 127.0.0.1 to the shadowed rules' ports.
    for _ in 0..3 {
        ns.exec(&[
            "timeout",
            "3",
            "bash",
            "-c",
            "exec 3<>/dev/tcp/127.0.0.1/5005; true",
        ]);
        ns.exec(&[
            "timeout",
            "3",
            "bash",
            "-c",
            "echo x > /dev/udp/127.0.0.1/6000",
        ]);
    }
    let save = ns.save(Family::V4, backend);
    assert!(packets(&save, 1) >= 3, "{save}");
    assert_eq!(packets(&save, 3), 0, "{save}");
    assert!(packets(&save, 4) >= 3, "{save}");
    assert_eq!(packets(&save, 5), 0, "{save}");
    // The binary, as a user runs it in the namespace.
    let b = match backend {
        Backend::Nft => "nft",
        Backend::Legacy => "legacy",
    };
    let out: Run = ns
        .command(&[])
        .arg(env!("CARGO_BIN_EXE_nfscope"))
        .args(["--backend", b, "lint", "-4", "--format", "json"])
        .output()
        .expect("run nfscope")
        .into();
    assert_eq!(out.code, 1, "{out:?}");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let shadowed: Vec<i64> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "shadowed")
        .map(|f| f["rule"].as_i64().unwrap())
        .collect();
    assert_eq!(shadowed, [3, 5], "{out:?}");
    assert!(
        doc["source"].as_str().unwrap().starts_with("kernel"),
        "{out:?}"
    );
    // Counters are the kernel's: the rules that saw nothing are info findings.
    let out: Run = ns
        .command(&[])
        .arg(env!("CARGO_BIN_EXE_nfscope"))
        .args(["--backend", b, "lint", "-4", "--severity", "info"])
        .output()
        .expect("run nfscope")
        .into();
    assert!(
        out.stdout
            .contains("0 packets since the counters were last zeroed"),
        "{out:?}"
    );
}
