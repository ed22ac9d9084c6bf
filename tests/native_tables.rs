//! Native nftables tables beside the iptables ones (issue 11's reproduction): an `inet fw`
//! table whose input chain drops all but tcp/22, beside an iptables-nft rule that accepts
//! tcp/80. `nfscope rules` lists the native table, read-only, in text and JSON, with its base
//! chain's hook, priority and policy, each rule as nft prints it, and its counters. The kernel
//! source gives the screens the same tables with every refresh: counters moved by real
//! traffic on the namespace's loopback, a rule another tool adds read once the generation
//! moves, on either backend.

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
    // As `nft -a -s` prints it: the counter's values are in the pkts and bytes columns.
    assert!(out.contains(" tcp dport 22 counter accept\n"), "{out}");
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

    // The kernel source hands the native tables to the screens, and the header says that
    // they filter on the same hook as the iptables rules: on a whole read and on a refresh
    // that reads only counters alike.
    let mut reader =
        nfscope::source::kernel::KernelReader::new(Some(Backend::Nft)).in_netns(ns.name());
    for generation in [1, 2] {
        let snap = reader.read(generation);
        assert_eq!(
            snap.warnings
                .iter()
                .filter(|w| w.contains("native nftables"))
                .collect::<Vec<_>>(),
            ["native nftables chains also filter on input: inet fw input (policy drop)"],
            "{generation}"
        );
        assert_eq!(snap.native.len(), 1, "{:?}", snap.native);
        let input = &snap.native[0].chains[0];
        // The text as `nft -a -s` prints it: no counter values to go stale.
        assert_eq!(input.rules[0].text, "tcp dport 22 counter accept");
        assert_eq!(input.rules[0].packets, Some(0));
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

const PINGABLE: &str = "table inet fw {
  chain input {
    type filter hook input priority 0; policy drop;
    icmp type echo-request counter accept
    icmp type echo-reply counter accept
    tcp dport 22 counter accept
  }
}
";

/// Ping the namespace's own loopback `n` times.
fn ping(ns: &common::NetNs, n: u32) {
    let out = ns.exec(&[
        "ping",
        "-c",
        &n.to_string(),
        "-i",
        "0.2",
        "-W",
        "1",
        "127.0.0.1",
    ]);
    assert!(out.status.success(), "{out:?}");
}

fn echo_requests(snap: &nfscope::source::RulesetSnapshot) -> Option<u64> {
    snap.native
        .iter()
        .find(|t| t.family == "inet" && t.name == "fw")?
        .chain("input")?
        .rules
        .iter()
        .find(|r| r.text == "icmp type echo-request counter accept")?
        .packets
}

#[test]
fn the_kernel_source_reads_native_counters_every_refresh_and_texts_when_the_rules_change() {
    for backend in [Backend::Nft, Backend::Legacy] {
        if !common::have_tools(backend) {
            continue;
        }
        let Some(ns) = common::nft_netns("nativeread", PINGABLE) else {
            return;
        };
        ns.iptables(
            Family::V4,
            backend,
            &["-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "ACCEPT"],
        );
        let mut reader =
            nfscope::source::kernel::KernelReader::new(Some(backend)).in_netns(ns.name());
        let first = reader.read(1);
        assert_eq!(
            echo_requests(&first),
            Some(0),
            "{backend:?}: {:?}",
            first.native
        );
        assert!(
            first
                .warnings
                .iter()
                .any(|w| w
                    == "native nftables chains also filter on input: inet fw input (policy drop)"),
            "{backend:?}: {:?}",
            first.warnings
        );
        // Real traffic moves the counter; on nf_tables the rule set did not change, so only
        // counters were read.
        ping(&ns, 3);
        let second = reader.read(2);
        assert_eq!(echo_requests(&second), Some(3), "{backend:?}");
        if backend == Backend::Nft {
            assert!(reader.last_read_counters_only());
        }
        // Another tool adds a rule: its text is read with the next refresh.
        ns.exec_ok(&[
            "nft", "add", "rule", "inet", "fw", "input", "udp", "dport", "53", "counter", "accept",
        ]);
        let third = reader.read(3);
        // Who did it is named, from the kernel's change events.
        assert!(
            third
                .changed_by
                .as_deref()
                .is_some_and(|c| c.starts_with("changed by nft at ")),
            "{backend:?}: {:?}",
            third.changed_by
        );
        let input = third.native[0].chain("input").expect("input");
        assert_eq!(
            input.rules.last().map(|r| r.text.as_str()),
            Some("udp dport 53 counter accept"),
            "{backend:?}"
        );
        assert_eq!(echo_requests(&third), Some(3), "{backend:?}");
        // Dormant: still listed, said so, and no longer warned about.
        ns.exec_ok(&["nft", "add", "table", "inet", "fw", "{ flags dormant; }"]);
        let fourth = reader.read(4);
        assert!(fourth.native[0].dormant, "{backend:?}");
        assert!(
            !fourth
                .warnings
                .iter()
                .any(|w| w.contains("native nftables")),
            "{backend:?}: {:?}",
            fourth.warnings
        );
    }
}
