//! The kernel source against a real kernel, on both backends and both families, each test in a
//! throwaway network namespace of its own: load rules with the system's restore tools, read
//! them through nfscope's KernelReader, and check the result against what the system's save
//! tool prints in the same namespace; then make traffic on the namespace's loopback and watch
//! the counters move. Needs root (skipped otherwise, failed under CI=true).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{NetNs, have_tools, tables_of};
use nfscope::ruleset::rates::{ChainKey, RateTracker};
use nfscope::ruleset::{self, Family, Ruleset, save, synth};
use nfscope::source::kernel::KernelReader;
use nfscope::source::{Backend, FamilyData, Origin, RulesetSnapshot, SourceError};

/// Every table, user chains, -g, negations, comments with blanks and both kinds of quotes,
/// counters, a policy other than ACCEPT, and rules that the probe traffic below will hit.
const V4_RULES: &str = r#"*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
[1:2] -A PREROUTING -i lo -p udp -m udp --dport 6000 -j CT --notrack
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
[3:4] -A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
-A OUTPUT -m mark ! --mark 0x1/0xff -j MARK --set-xmark 0x10/0xff
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 127.0.0.1:80
-A OUTPUT -p tcp -m tcp --dport 9 -m comment --comment "nat sees the first packet"
-A POSTROUTING ! -o lo -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [5:6]
:OUTPUT ACCEPT [0:0]
:ALPHA - [0:0]
:TCPIN - [0:0]
:ZLOGDROP - [0:0]
-A INPUT -i lo -p tcp -m tcp --dport 9 -m comment --comment "probe port \"nine\" it's" -j TCPIN
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT ! -s 10.0.0.0/8 -p udp -m multiport --dports 53,123 -j ACCEPT
-A INPUT -p icmp -m icmp --icmp-type 8 -m limit --limit 5/sec -j ACCEPT
-A INPUT ! -i lo -g ZLOGDROP
-A INPUT -m comment --comment plain -j ALPHA
-A TCPIN -p tcp -m tcp --dport 9 -m statistic --mode random --probability 0.33333 -j REJECT --reject-with tcp-reset
-A TCPIN -j RETURN
-A ZLOGDROP -m limit --limit 1/min -j LOG --log-prefix "nfscope drop: " --log-level 4
-A ZLOGDROP -j DROP
COMMIT
*security
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp
COMMIT
"#;

/// The same shape for IPv6 (icmp6, the rt match, bracketed DNAT addresses).
const V6_RULES: &str = r#"*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
[1:2] -A PREROUTING -i lo -p udp -m udp --dport 6000 -j CT --notrack
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m rt --rt-type 0 -j DROP
[3:4] -A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
-A OUTPUT -m mark ! --mark 0x1/0xff -j MARK --set-xmark 0x10/0xff
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d fd00::1/128 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [::1]:80
-A OUTPUT -p tcp -m tcp --dport 9 -m comment --comment "nat sees the first packet"
-A POSTROUTING ! -o lo -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [5:6]
:OUTPUT ACCEPT [0:0]
:ALPHA - [0:0]
:TCPIN - [0:0]
:ZLOGDROP - [0:0]
-A INPUT -i lo -p tcp -m tcp --dport 9 -m comment --comment "probe port \"nine\" it's" -j TCPIN
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT ! -s fd00::/8 -p udp -m multiport --dports 53,123 -j ACCEPT
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -m limit --limit 5/sec -j ACCEPT
-A INPUT ! -i lo -g ZLOGDROP
-A INPUT -m comment --comment plain -j ALPHA
-A TCPIN -p tcp -m tcp --dport 9 -m statistic --mode random --probability 0.33333 -j REJECT --reject-with tcp-reset
-A TCPIN -j RETURN
-A ZLOGDROP -m limit --limit 1/min -j LOG --log-prefix "nfscope drop: " --log-level 4
-A ZLOGDROP -j DROP
COMMIT
*security
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp
COMMIT
"#;

fn rules_for(family: Family) -> &'static str {
    match family {
        Family::V4 => V4_RULES,
        Family::V6 => V6_RULES,
    }
}

/// Extra rule sets shared with other tests (tests/data/all-tables-v{4,6}.rules), when present.
fn shared_rules(family: Family) -> Option<String> {
    let name = match family {
        Family::V4 => "all-tables-v4.rules",
        Family::V6 => "all-tables-v6.rules",
    };
    std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).ok()
}

fn reader(ns: &NetNs, backend: Backend) -> KernelReader {
    KernelReader::new(Some(backend)).in_netns(ns.name())
}

fn loaded(snap: &RulesetSnapshot, family: Family) -> &Ruleset {
    match snap.family(family) {
        FamilyData::Loaded(rs) => rs,
        other => panic!("{} did not load: {other:?}", family.label()),
    }
}

/// Tables sorted by name and without their `#` lines (they carry the time of the save), so that
/// two reads can be compared whatever order the backend lists tables in.
fn by_name(rs: &Ruleset) -> Vec<ruleset::Table> {
    let mut t = rs.tables.clone();
    for table in &mut t {
        table.leading_comments.clear();
        table.inner_comments.clear();
    }
    t.sort_by(|a, b| a.name.cmp(&b.name));
    t
}

/// nfscope's read equals the tool's own output: as models, and as text line by line.
fn assert_matches_tool(ns: &NetNs, backend: Backend, family: Family, ours: &Ruleset) {
    let text = ns.save(family, backend);
    let theirs = ruleset::parse(&text, family).expect("the tool's output parses");
    assert_eq!(
        by_name(ours),
        by_name(&theirs),
        "{} {family:?}: models differ",
        backend.label()
    );
    let written = save::write(ours, save::SaveOptions::default());
    let (a, b) = (tables_of(&written), tables_of(&text));
    for ((ta, la), (tb, lb)) in a.iter().zip(&b) {
        assert_eq!(ta, tb);
        for (x, y) in la.iter().zip(lb) {
            assert_eq!(x, y, "{} {family:?} table {ta}", backend.label());
        }
        assert_eq!(
            la.len(),
            lb.len(),
            "{} {family:?} table {ta}",
            backend.label()
        );
    }
    assert_eq!(a.len(), b.len());
}

fn reads_what_the_tool_prints(backend: Backend) {
    if !have_tools(backend) {
        return;
    }
    let Some(ns) = NetNs::for_test(&format!("read{}", backend.label())) else {
        return;
    };
    for family in Family::ALL {
        ns.restore(family, backend, rules_for(family));
    }
    let snap = reader(&ns, backend).read(7);
    assert_eq!(snap.generation, 7);
    assert_eq!(snap.origin, Origin::Kernel { backend });
    assert!(snap.errors().is_empty(), "{:?}", snap.errors());
    for family in Family::ALL {
        let rs = loaded(&snap, family);
        let expected = ruleset::parse(rules_for(family), family).unwrap();
        assert_eq!(rs.rule_count(), expected.rule_count(), "{family:?}");
        let mut names: Vec<_> = rs.tables.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["filter", "mangle", "nat", "raw", "security"]);
        let filter = rs.table("filter").unwrap();
        assert_eq!(
            filter.chain("FORWARD").unwrap().policy.as_deref(),
            Some("DROP")
        );
        // Quotes and blanks in comments survive the round trip through the kernel.
        let probe = &filter.chain("INPUT").unwrap().rules[0];
        assert_eq!(probe.spec.comment(), Some("probe port \"nine\" it's"));
        assert_eq!(
            filter.chain("INPUT").unwrap().rules[4].spec.target_name(),
            "ZLOGDROP"
        );
        assert_matches_tool(&ns, backend, family, rs);
    }
}

#[test]
fn reads_what_iptables_save_prints_nft() {
    reads_what_the_tool_prints(Backend::Nft);
}

#[test]
fn reads_what_iptables_save_prints_legacy() {
    reads_what_the_tool_prints(Backend::Legacy);
}

fn reads_shared_rule_sets(backend: Backend) {
    let sets: Vec<(Family, String)> = Family::ALL
        .iter()
        .filter_map(|&f| shared_rules(f).map(|t| (f, t)))
        .collect();
    if sets.is_empty() || !have_tools(backend) {
        return;
    }
    let Some(ns) = NetNs::for_test(&format!("shared{}", backend.label())) else {
        return;
    };
    for (family, text) in &sets {
        ns.restore(*family, backend, text);
    }
    let snap = reader(&ns, backend).read(1);
    for (family, _) in &sets {
        assert_matches_tool(&ns, backend, *family, loaded(&snap, *family));
    }
}

#[test]
fn reads_the_shared_rule_sets_nft() {
    reads_shared_rule_sets(Backend::Nft);
}

#[test]
fn reads_the_shared_rule_sets_legacy() {
    reads_shared_rule_sets(Backend::Legacy);
}

/// The packet counter of the first rule of `chain` in `table` whose text contains `needle`.
fn packets(rs: &Ruleset, table: &str, chain: &str, needle: &str) -> u64 {
    rs.table(table)
        .and_then(|t| t.chain(chain))
        .and_then(|c| c.rules.iter().find(|r| r.text.contains(needle)))
        .unwrap_or_else(|| panic!("no rule {needle:?} in {table}/{chain}"))
        .packets()
}

fn policy_packets(rs: &Ruleset, table: &str, chain: &str) -> u64 {
    rs.table(table)
        .unwrap()
        .chain(chain)
        .unwrap()
        .counters
        .packets
}

/// Send traffic on the namespace's loopback: TCP connects to a closed port (SYN, then RST) and
/// a UDP datagram, for each family.
fn make_traffic(ns: &NetNs) {
    for addr in ["127.0.0.1", "::1"] {
        for _ in 0..3 {
            let script = format!("exec 3<>/dev/tcp/{addr}/9; exec 3>&-; true",);
            let _ = ns.exec(&["bash", "-c", &script]);
        }
        let _ = ns.exec(&["bash", "-c", &format!("echo probe >/dev/udp/{addr}/6000")]);
    }
}

fn counters_move_with_traffic(backend: Backend) {
    if !have_tools(backend) {
        return;
    }
    let Some(ns) = NetNs::for_test(&format!("count{}", backend.label())) else {
        return;
    };
    for family in Family::ALL {
        ns.restore(family, backend, rules_for(family));
    }
    let mut reader = reader(&ns, backend);
    let before = reader.read(1);
    make_traffic(&ns);
    let after = reader.read(2);
    // On nf_tables, nothing but counters moved: the refresh read only those, over netlink (and
    // what it read still equals the save tool's output, counters included, below).
    assert_eq!(
        reader.last_read_counters_only(),
        backend == Backend::Nft,
        "{}",
        backend.label()
    );
    for family in Family::ALL {
        let (b, a) = (loaded(&before, family), loaded(&after, family));
        let label = format!("{} {}", backend.label(), family.label());
        let probe = |rs| packets(rs, "filter", "INPUT", "probe port");
        assert!(
            probe(a) >= probe(b) + 3,
            "{label}: the probe rule saw {} then {}",
            probe(b),
            probe(a)
        );
        // Only the first packet of a connection sees the nat table: one per connect.
        let nat = |rs| packets(rs, "nat", "OUTPUT", "first packet");
        assert!(
            nat(a) >= nat(b) + 3,
            "{label}: nat {} -> {}",
            nat(b),
            nat(a)
        );
        let notrack = |rs| packets(rs, "raw", "PREROUTING", "--notrack");
        assert!(notrack(a) > notrack(b), "{label}: raw notrack did not move");
        assert!(
            policy_packets(a, "filter", "OUTPUT") > policy_packets(b, "filter", "OUTPUT"),
            "{label}: OUTPUT policy counters did not move"
        );
        // What was not hit stays put.
        let dnat = |rs| packets(rs, "nat", "PREROUTING", "DNAT");
        assert_eq!(dnat(a), dnat(b), "{label}");
        // And the read still equals the tool's output (nothing moves between the two).
        assert_matches_tool(&ns, backend, family, a);
    }
    // The rates the Rules screen shows: the probe rule moved, the DNAT rule did not.
    let mut rates = RateTracker::new();
    rates.update(
        before.taken_at,
        Family::ALL.iter().map(|&f| loaded(&before, f)),
    );
    rates.update(
        after.taken_at,
        Family::ALL.iter().map(|&f| loaded(&after, f)),
    );
    for family in Family::ALL {
        let label = format!("{} {}", backend.label(), family.label());
        let key = |table: &str, chain: &str| ChainKey {
            family,
            table: table.into(),
            chain: chain.into(),
        };
        let rs = loaded(&after, family);
        let index = |table: &str, chain: &str, needle: &str| {
            rs.table(table)
                .and_then(|t| t.chain(chain))
                .and_then(|c| c.rules.iter().position(|r| r.text.contains(needle)))
                .expect("rule present")
        };
        let input = rates.chain(&key("filter", "INPUT")).expect("INPUT stats");
        let probe = &input.rules[index("filter", "INPUT", "probe port")];
        assert!(
            probe.rate.is_some_and(|r| r > 0.0),
            "{label}: probe rate {:?}",
            probe.rate
        );
        assert!(probe.delta >= 3, "{label}: probe delta {}", probe.delta);
        assert!(
            input.rate.is_some_and(|r| r > 0.0),
            "{label}: INPUT chain rate"
        );
        let pre = rates
            .chain(&key("nat", "PREROUTING"))
            .expect("PREROUTING stats");
        assert_eq!(
            pre.rules[index("nat", "PREROUTING", "DNAT")].rate,
            Some(0.0),
            "{label}"
        );
    }
    // A change by another tool moves the generation: the next refresh reads the rules again.
    ns.iptables(
        Family::V4,
        backend,
        &["-I", "INPUT", "1", "-s", "192.0.2.66", "-j", "DROP"],
    );
    let changed = reader.read(3);
    assert!(!reader.last_read_counters_only(), "{}", backend.label());
    let input = &loaded(&changed, Family::V4)
        .table("filter")
        .and_then(|t| t.chain("INPUT"))
        .expect("INPUT")
        .rules;
    assert!(input[0].text.contains("192.0.2.66"), "{input:?}");
    assert_matches_tool(&ns, backend, Family::V4, loaded(&changed, Family::V4));
}

#[test]
fn counters_move_with_real_traffic_nft() {
    counters_move_with_traffic(Backend::Nft);
}

#[test]
fn counters_move_with_real_traffic_legacy() {
    counters_move_with_traffic(Backend::Legacy);
}

#[test]
fn rules_in_the_legacy_backend_are_warned_about_when_nft_is_shown() {
    if !have_tools(Backend::Nft) || !have_tools(Backend::Legacy) {
        return;
    }
    let Some(ns) = NetNs::for_test("mixnft") else {
        return;
    };
    ns.iptables(Family::V4, Backend::Nft, &["-A", "INPUT", "-j", "ACCEPT"]);
    let mut r = reader(&ns, Backend::Nft);
    let first = r.read(1);
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    // A rule appears in the legacy backend: the very next read says so (the tools hint at it).
    ns.iptables(Family::V4, Backend::Legacy, &["-A", "OUTPUT", "-j", "DROP"]);
    let second = r.read(2);
    assert!(
        second
            .warnings
            .iter()
            .any(|w| w.contains("legacy") && w.contains("IPv4")),
        "{:?}",
        second.warnings
    );
    // A fresh reader says it on its first read.
    let fresh = reader(&ns, Backend::Nft).read(1);
    assert!(
        fresh.warnings.iter().any(|w| w.contains("legacy")),
        "{:?}",
        fresh.warnings
    );
    // The nft rule set itself is unaffected.
    assert_eq!(loaded(&fresh, Family::V4).rule_count(), 1);
}

#[test]
fn rules_in_the_nft_backend_are_warned_about_when_legacy_is_shown() {
    if !have_tools(Backend::Nft) || !have_tools(Backend::Legacy) {
        return;
    }
    let Some(ns) = NetNs::for_test("mixlegacy") else {
        return;
    };
    ns.iptables(Family::V6, Backend::Nft, &["-A", "INPUT", "-j", "DROP"]);
    let snap = reader(&ns, Backend::Legacy).read(1);
    assert!(
        snap.warnings
            .iter()
            .any(|w| w.contains("nf_tables") && w.contains("IPv6")),
        "{:?}",
        snap.warnings
    );
}

#[test]
fn empty_tables_in_the_other_backend_are_not_warned_about() {
    if !have_tools(Backend::Nft) || !have_tools(Backend::Legacy) {
        return;
    }
    let Some(ns) = NetNs::for_test("emptylegacy") else {
        return;
    };
    // Listing creates the legacy filter table, with no rule in it.
    ns.iptables(Family::V4, Backend::Legacy, &["-L", "-n"]);
    let snap = reader(&ns, Backend::Nft).read(1);
    assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
}

#[test]
fn an_empty_namespace_reads_as_empty_rule_sets() {
    if !have_tools(Backend::Nft) {
        return;
    }
    let Some(ns) = NetNs::for_test("empty") else {
        return;
    };
    let snap = reader(&ns, Backend::Nft).read(1);
    for family in Family::ALL {
        assert!(loaded(&snap, family).tables.is_empty());
    }
    assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
}

#[test]
fn the_system_default_backend_is_detected_inside_the_namespace() {
    if !have_tools(Backend::Nft) {
        return;
    }
    let Some(ns) = NetNs::for_test("detect") else {
        return;
    };
    let version = ns.exec_ok(&["iptables-save", "--version"]);
    let expected = nfscope::source::kernel::backend_from_version(&version);
    let snap = KernelReader::new(None).in_netns(ns.name()).read(1);
    assert_eq!(snap.origin, Origin::Kernel { backend: expected });
    assert!(snap.errors().is_empty(), "{:?}", snap.errors());
}

#[test]
fn a_missing_namespace_is_an_error_sentence() {
    if NetNs::for_test("probe").is_none() {
        return;
    }
    let name = format!("nfs-never-made-{}", std::process::id());
    let snap = KernelReader::new(Some(Backend::Nft))
        .in_netns(&name)
        .read(1);
    for family in Family::ALL {
        match snap.family(family) {
            FamilyData::Failed(e @ SourceError::ToolFailed { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&name), "{msg}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}

/// The generated kube-proxy rule set (what the benchmarks use) is exactly what the tools print
/// back after loading it, on both backends: the benchmarks measure real output.
fn generated_rules_round_trip(backend: Backend) {
    if !have_tools(backend) {
        return;
    }
    let Some(ns) = NetNs::for_test(&format!("kube{}", backend.label())) else {
        return;
    };
    let text = synth::kube_proxy(3_000);
    ns.restore(Family::V4, backend, &text);
    let snap = reader(&ns, backend).read(1);
    let ours = loaded(&snap, Family::V4);
    let generated = ruleset::parse(&text, Family::V4).unwrap();
    assert_eq!(ours.rule_count(), 3_000);
    assert_eq!(by_name(ours), by_name(&generated));
    assert_matches_tool(&ns, backend, Family::V4, ours);
}

#[test]
fn generated_kube_rules_round_trip_nft() {
    generated_rules_round_trip(Backend::Nft);
}

#[test]
fn generated_kube_rules_round_trip_legacy() {
    generated_rules_round_trip(Backend::Legacy);
}

#[test]
fn every_test_namespace_is_deleted() {
    let name = {
        let Some(ns) = NetNs::for_test("guard") else {
            return;
        };
        ns.name().to_string()
    };
    let listed = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        !listed
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&name)),
        "{name} is still there"
    );
    // Also on panic.
    let name = std::panic::catch_unwind(|| {
        let ns = NetNs::for_test("guardpanic").expect("made once, makes twice");
        panic!("{}", ns.name());
    })
    .err()
    .and_then(|p| p.downcast_ref::<String>().cloned())
    .expect("the closure panics with the name");
    assert!(!std::path::Path::new(&format!("/run/netns/{name}")).exists());
}
