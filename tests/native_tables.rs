//! Native nftables tables beside the iptables ones (issue 11's reproduction, its listing part):
//! an `inet fw` table whose input chain drops all but tcp/22, beside an iptables-nft rule that
//! accepts tcp/80. `nfscope rules` lists the native table, read-only, in text and JSON, with
//! its base chain's hook, priority and policy, each rule as nft prints it, and its counters.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use nfscope::ruleset::Family;
use nfscope::source::Backend;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_nfscope");

const NATIVE: &str = "table inet fw {
  chain input {
    type filter hook input priority 0; policy drop;
    tcp dport 22 counter accept
  }
}
";

#[test]
fn rules_lists_native_tables_beside_iptables_ones() {
    let Some(ns) = common::nft_netns("native", NATIVE) else {
        return;
    };
    ns.iptables(
        Family::V4,
        Backend::Nft,
        &["-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "ACCEPT"],
    );

    let text = ns.exec(&[BIN, "--backend", "nft", "rules"]);
    assert!(text.status.success(), "{text:?}");
    let out = String::from_utf8(text.stdout).unwrap();
    assert!(out.contains("tcp dpt:80"), "{out}");
    assert!(
        out.contains("# native nftables table inet fw (read-only"),
        "{out}"
    );
    assert!(
        out.contains("Chain input (type filter hook input priority 0, policy drop)"),
        "{out}"
    );
    assert!(
        out.contains("tcp dport 22 counter packets 0 bytes 0 accept"),
        "{out}"
    );
    // The iptables-nft table is not listed twice.
    assert!(!out.contains("native nftables table ip filter"), "{out}");

    let json = ns.exec(&[BIN, "--backend", "nft", "rules", "--format", "json"]);
    let doc: Value = serde_json::from_slice(&json.stdout).expect("json");
    let native = doc["native"].as_array().expect("native tables");
    assert_eq!(native.len(), 1, "{doc}");
    let t = &native[0];
    assert_eq!(
        (t["family"].as_str(), t["name"].as_str()),
        (Some("inet"), Some("fw"))
    );
    let c = &t["chains"][0];
    assert_eq!(c["hook"], "input");
    assert_eq!(c["priority"], 0);
    assert_eq!(c["policy"], "drop");
    assert_eq!(c["type"], "filter");
    let r = &c["rules"][0];
    assert!(r["handle"].as_u64().is_some(), "{r}");
    assert!(
        r["text"].as_str().unwrap().starts_with("tcp dport 22"),
        "{r}"
    );
    assert_eq!(r["packets"], 0);

    // The screens do not show native tables yet, and say so: the header's warning, on a whole
    // read and on a refresh that reads only counters alike.
    let mut reader =
        nfscope::source::kernel::KernelReader::new(Some(Backend::Nft)).in_netns(ns.name());
    for generation in [1, 2] {
        let snap = reader.read(generation);
        assert!(
            snap.warnings
                .iter()
                .any(|w| w.contains("native nftables chains filter packets too")
                    && w.contains("inet fw input (input, policy drop)")),
            "{generation}: {:?}",
            snap.warnings
        );
        assert!(
            !snap.warnings.iter().any(|w| w.contains("ip filter INPUT")),
            "{:?}",
            snap.warnings
        );
    }
    assert!(reader.last_read_counters_only());

    // -6 leaves out ip tables but keeps inet ones; -t picks by name.
    let six = ns.exec(&[BIN, "--backend", "nft", "rules", "-6", "-t", "fw"]);
    let out = String::from_utf8(six.stdout).unwrap();
    assert!(out.contains("table inet fw"), "{out}");
    assert!(!out.contains("dpt:80"), "{out}");
}

/// A base chain iptables cannot show, in a table the save tool prints all the same (`ip nat`
/// with a `pre` chain: "# Table `nat' contains incompatible base-chains"): listed as native,
/// warned about, and traced.
#[test]
fn incompatible_base_chains_in_an_iptables_table_are_native() {
    let script = "table ip nat {\n  chain pre {\n    type nat hook prerouting priority dstnat;\n    tcp dport 8080 counter dnat to 10.9.0.1:80\n  }\n}\n";
    let Some(ns) = common::nft_netns("natpre", script) else {
        return;
    };
    let out = ns.exec(&[BIN, "--backend", "nft", "rules", "-4"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("native nftables table ip nat"), "{text}");
    assert!(
        text.contains("Chain pre (type nat hook prerouting priority -100"),
        "{text}"
    );
    assert!(text.contains("dnat to 10.9.0.1:80"), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("table nat holds rules iptables cannot show"),
        "{err}"
    );
    ns.exec_ok(&[
        "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "p0",
    ]);
    ns.exec_ok(&["ip", "addr", "add", "10.9.0.1/24", "dev", "eth0"]);
    ns.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    let out = ns.exec(&[
        BIN,
        "--backend",
        "nft",
        "trace",
        "-p",
        "tcp",
        "-s",
        "10.9.0.2",
        "-d",
        "10.9.0.1",
        "--dport",
        "8080",
        "--in",
        "eth0",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ip nat (native nftables) pre"), "{text}");
    assert!(text.contains("DNAT: dport 8080 → 80"), "{text}");
}
