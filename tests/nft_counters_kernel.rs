//! `nft_netlink::read_counters_into`, the counters-only read of a refresh (and of a commit)
//! whose rules have not moved: in a throwaway namespace it gives the very counters the save
//! tool prints, the same as `read` + `put_counters`, and says no (`Ok(false)`) when the rule
//! set it is given is not the kernel's at that generation. Needs root and the nf_tables tools
//! (skipped otherwise, failed under CI=true).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{NetNs, have_tools};
use nfscope::ruleset::{Family, Ruleset, parse};
use nfscope::source::kernel::KernelReader;
use nfscope::source::{Backend, netns, nft_netlink};

const V4: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [7:700]\n:OUTPUT ACCEPT [0:0]\n:EMPTY - [0:0]\n:T - [0:0]\n\
[5:50] -A INPUT -s 10.0.0.1/32 -j ACCEPT\n-A INPUT -i lo -p icmp -j T\n-A INPUT -m comment --comment \"no counter moves\" -j EMPTY\n\
-A OUTPUT -o lo -p icmp -j ACCEPT\n[9:90] -A T -j RETURN\nCOMMIT\n\
*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
-A OUTPUT -p icmp -j RETURN\n-A POSTROUTING -s 10.9.0.0/16 -j MASQUERADE\nCOMMIT\n";
fn setup(tag: &str) -> Option<NetNs> {
    if !have_tools(Backend::Nft) {
        return None;
    }
    let ns = NetNs::for_test(tag)?;
    ns.restore(Family::V4, Backend::Nft, V4);
    // IPv6 uses only OUTPUT: iptables-nft makes no INPUT or FORWARD chain, which the save tool
    // prints all the same.
    ns.exec_ok(&[
        "ip6tables-nft",
        "-A",
        "OUTPUT",
        "-o",
        "lo",
        "-p",
        "ipv6-icmp",
        "-j",
        "ACCEPT",
    ]);
    Some(ns)
}

fn ping(ns: &NetNs) {
    for to in ["127.0.0.1", "::1"] {
        let out = ns.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "1", to]);
        assert!(out.status.success(), "ping {to}: {out:?}");
    }
}

/// Both families as the TUI's source reads them, and the generation it read them at.
fn read_whole(ns: &NetNs) -> (Vec<Ruleset>, u32) {
    let snap = netns::run_in(ns.name(), || KernelReader::new(Some(Backend::Nft)).read(1))
        .expect("enter the namespace");
    let sets = Family::ALL
        .iter()
        .map(|&f| snap.family(f).ruleset().cloned().expect("read"))
        .collect();
    (sets, snap.nft_generation.expect("a generation"))
}

fn counters_read(ns: &NetNs, mut sets: Vec<Ruleset>, g: u32) -> (bool, Vec<Ruleset>) {
    netns::run_in(ns.name(), move || {
        let ok = nft_netlink::read_counters_into(&mut sets, g).expect("nf_tables reads");
        (ok, sets)
    })
    .expect("enter the namespace")
}

#[test]
fn the_counters_read_alone_are_the_save_tools_and_reads() {
    let Some(ns) = setup("nftcounters") else {
        return;
    };
    let (base, g) = read_whole(&ns);
    ping(&ns);
    let (ok, fresh) = counters_read(&ns, base.clone(), g);
    assert!(ok, "the kernel is still at generation {g}");
    // What the save tools print now, counters included, is what was put on the kept rules.
    let saved: Vec<Ruleset> = Family::ALL
        .iter()
        .map(|&f| parse(&ns.save(f, Backend::Nft), f).expect("parses"))
        .collect();
    assert_eq!(uncommented(&fresh), uncommented(&saved));
    assert_ne!(fresh, base, "the pings moved counters");
    // And what `read` + `put_counters` put there.
    let full = netns::run_in(ns.name(), nft_netlink::read)
        .unwrap()
        .expect("nf_tables reads");
    assert_eq!(full.generation, g);
    let mut put = base.clone();
    assert!(
        put.iter_mut()
            .all(|rs| nft_netlink::put_counters(rs, &full))
    );
    assert_eq!(fresh, put);
    let v4 = parse(V4, Family::V4).unwrap();
    assert_eq!(
        fresh[0]
            .table("filter")
            .unwrap()
            .chain("FORWARD")
            .unwrap()
            .counters,
        v4.table("filter")
            .unwrap()
            .chain("FORWARD")
            .unwrap()
            .counters,
        "a policy's counters as loaded"
    );
}

#[test]
fn a_rule_set_that_is_not_the_kernels_is_refused() {
    let Some(ns) = setup("nftcountersno") else {
        return;
    };
    let (base, g) = read_whole(&ns);
    // Another generation.
    assert!(!counters_read(&ns, base.clone(), g.wrapping_add(1)).0);
    // A rule fewer, or one more, than the kernel holds.
    let mut fewer = base.clone();
    let extra = input_of(&mut fewer).rules.pop().unwrap();
    assert!(!counters_read(&ns, fewer.clone(), g).0);
    input_of(&mut fewer).rules.extend([extra.clone(), extra]);
    assert!(!counters_read(&ns, fewer, g).0);
    // A chain the kernel does not have.
    let mut more = base.clone();
    let t = more[0]
        .tables
        .iter_mut()
        .find(|t| t.name == "filter")
        .unwrap();
    let mut ghost = t.chains.iter().find(|c| c.name == "T").unwrap().clone();
    ghost.name = "GHOST".into();
    t.chains.push(ghost);
    assert!(!counters_read(&ns, more, g).0);
    // The kernel moved since: a rule added by another tool.
    ns.iptables(Family::V4, Backend::Nft, common::DOCKER_NAT_RULE);
    assert!(!counters_read(&ns, base, g).0);
}

/// Without the save tool's `# Generated by ... on DATE` lines.
fn uncommented(sets: &[Ruleset]) -> Vec<Ruleset> {
    let mut sets = sets.to_vec();
    for rs in &mut sets {
        rs.trailing_comments.clear();
        for t in &mut rs.tables {
            t.leading_comments.clear();
            t.inner_comments.clear();
        }
    }
    sets
}

fn input_of(sets: &mut [Ruleset]) -> &mut nfscope::ruleset::Chain {
    sets[0]
        .tables
        .iter_mut()
        .find(|t| t.name == "filter")
        .and_then(|t| t.chains.iter_mut().find(|c| c.name == "INPUT"))
        .unwrap()
}
