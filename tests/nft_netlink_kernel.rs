//! nf_tables read over netlink (`source::nft_netlink`) against what `nft -j -a list ruleset`
//! says of the same kernel, in a throwaway network namespace: native tables of two families,
//! base and regular chains with hooks, negative priorities and policies, rules in order with
//! their handles, counters moved by real traffic, and an iptables-nft table beside them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use nfscope::source::nft_netlink::{self, family_name, hook_name};
use nfscope::source::{Backend, netns};
use serde_json::Value;

const SCRIPT: &str = "table inet fw {
  chain input {
    type filter hook input priority 0; policy drop;
    tcp dport 22 counter accept
    icmp type echo-request counter accept
  }
  chain helper {
    counter
  }
}
table ip6 other {
  chain out {
    type filter hook output priority -10; policy accept;
  }
}
";

#[test]
fn what_netlink_reads_is_what_nft_lists() {
    let Some(ns) = common::nft_netns("nftnl", SCRIPT) else {
        return;
    };
    ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
    for rule in [
        &["-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "ACCEPT"][..],
        &["-A", "INPUT", "-p", "icmp", "-j", "ACCEPT"][..],
    ] {
        ns.iptables(nfscope::ruleset::Family::V4, Backend::Nft, rule);
    }
    // Real traffic moves the echo-request rule's counter (the replies are dropped by the
    // policy: ping itself fails, the requests are counted all the same).
    let _ = ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", "127.0.0.1"]);

    let read = netns::run_in(ns.name(), nft_netlink::read)
        .expect("enter the namespace")
        .expect("nf_tables reads");
    let listed: Value =
        serde_json::from_str(&ns.exec_ok(&["nft", "-j", "-a", "list", "ruleset"])).expect("json");
    let objs: Vec<&Value> = listed["nftables"]
        .as_array()
        .expect("a list")
        .iter()
        .collect();
    let of = |kind: &str| -> Vec<&Value> { objs.iter().filter_map(|o| o.get(kind)).collect() };

    let mut tables: Vec<(String, String, u64)> = read
        .tables
        .iter()
        .map(|t| (family_name(t.family).to_string(), t.name.clone(), t.handle))
        .collect();
    let mut want: Vec<(String, String, u64)> = of("table")
        .iter()
        .map(|t| {
            (
                t["family"].as_str().unwrap().to_string(),
                t["name"].as_str().unwrap().to_string(),
                t["handle"].as_u64().unwrap(),
            )
        })
        .collect();
    tables.sort();
    want.sort();
    assert_eq!(tables, want);
    assert!(
        tables.iter().any(|(f, n, _)| f == "ip" && n == "filter"),
        "{tables:?}"
    );

    for c in of("chain") {
        let (family, table, name) = (
            c["family"].as_str().unwrap(),
            c["table"].as_str().unwrap(),
            c["name"].as_str().unwrap(),
        );
        let got = read
            .chains
            .iter()
            .find(|x| family_name(x.family) == family && x.table == table && x.name == name)
            .unwrap_or_else(|| panic!("{family} {table} {name} not read: {:?}", read.chains));
        assert_eq!(Some(got.handle), c["handle"].as_u64(), "{name}");
        match c.get("hook") {
            Some(h) => {
                let hook = got.hook.expect("a base chain");
                assert_eq!(
                    hook_name(got.family, hook.num),
                    h.as_str().unwrap(),
                    "{name}"
                );
                assert_eq!(
                    i64::from(hook.priority),
                    c["prio"].as_i64().unwrap(),
                    "{name}"
                );
                let policy = match got.policy {
                    Some(0) => "drop",
                    Some(1) => "accept",
                    other => panic!("{other:?}"),
                };
                assert_eq!(policy, c["policy"].as_str().unwrap(), "{name}");
                assert_eq!(got.kind.as_deref(), c["type"].as_str(), "{name}");
            }
            None => assert_eq!(got.hook, None, "{name}"),
        }
    }

    let rules = of("rule");
    assert_eq!(read.rules.len(), rules.len(), "{:?}", read.rules);
    for r in rules {
        let (family, table, chain) = (
            r["family"].as_str().unwrap(),
            r["table"].as_str().unwrap(),
            r["chain"].as_str().unwrap(),
        );
        let handle = r["handle"].as_u64().unwrap();
        let got = read
            .rules
            .iter()
            .find(|x| family_name(x.family) == family && x.table == table && x.handle == handle)
            .unwrap_or_else(|| panic!("rule {handle} of {family} {table} not read"));
        assert_eq!(got.chain, chain);
        let counter = r["expr"].as_array().unwrap().iter().find_map(|e| {
            e.get("counter")
                .map(|c| (c["packets"].as_u64().unwrap(), c["bytes"].as_u64().unwrap()))
        });
        assert_eq!(got.counter, counter, "rule {handle}");
    }
    // The rules of a chain come in the chain's order, and traffic was counted.
    let input: Vec<u64> = read
        .rules
        .iter()
        .filter(|r| r.table == "fw" && r.chain == "input")
        .map(|r| r.handle)
        .collect();
    assert!(input.windows(2).all(|w| w[0] < w[1]), "{input:?}");
    let echo = read
        .rules
        .iter()
        .filter(|r| r.table == "fw" && r.chain == "input")
        .nth(1)
        .expect("the echo-request rule");
    assert!(echo.counter.is_some_and(|(p, _)| p >= 3), "{echo:?}");

    // An iptables-nft chain's counters, in rule order, are iptables-save's.
    let saved = nfscope::ruleset::parse(
        &ns.save(nfscope::ruleset::Family::V4, Backend::Nft),
        nfscope::ruleset::Family::V4,
    )
    .expect("parses");
    let want: Vec<(u64, u64)> = saved
        .table("filter")
        .and_then(|t| t.chain("INPUT"))
        .expect("INPUT")
        .rules
        .iter()
        .map(|r| (r.packets(), r.bytes()))
        .collect();
    let got: Vec<(u64, u64)> = read
        .rules
        .iter()
        .filter(|r| family_name(r.family) == "ip" && r.table == "filter" && r.chain == "INPUT")
        .map(|r| r.counter.expect("iptables-nft rules count"))
        .collect();
    assert_eq!(got, want);
    assert!(got[1].0 >= 3, "the icmp rule counted the pings: {got:?}");

    // The generation moves with a change, and a read sees it.
    let before = read.generation;
    ns.exec_ok(&["nft", "add", "rule", "inet", "fw", "helper", "counter"]);
    let after = netns::run_in(ns.name(), nft_netlink::generation)
        .expect("enter the namespace")
        .expect("generation");
    assert!(after > before, "{before} -> {after}");
}

/// A change committed by another program is seen at once through the change events, with the
/// generation it made and the committing process's name.
#[test]
fn a_change_by_another_program_is_seen_with_its_name() {
    let Some(ns) = common::nft_netns("monitor", SCRIPT) else {
        return;
    };
    let nft = nfscope::source::kernel::find_tool("nft").unwrap();
    let (changes, generation) = netns::run_in(ns.name(), move || {
        let mut m = nft_netlink::Monitor::open().expect("subscribe");
        assert!(m.changes().events.is_empty());
        let out = std::process::Command::new(&nft)
            .args(["add", "rule", "inet", "fw", "helper", "counter"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut seen = m.changes();
        while seen.events.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            seen = m.changes();
        }
        (seen, nft_netlink::generation().unwrap())
    })
    .unwrap();
    assert!(!changes.lost);
    let e = changes.events.last().expect("an event");
    assert_eq!(e.generation, generation);
    assert_eq!(e.process.as_deref(), Some("nft"));
    assert!(e.pid.is_some());
}
