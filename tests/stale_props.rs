//! Property test of the stale-flow analysis (trace::stale): over generated small rule sets
//! (ESTABLISHED accepted first or not, port, address, interface, source-port and undecidable
//! matches, DNAT, every verdict, a user chain) and generated entries (TCP, UDP and ICMP, from
//! the network or from this machine, some DNAT'd), an entry the analysis calls `stale` traces
//! (with the Tracer, NEW, its own source port given) to DROP or REJECT on every path, one
//! called `accepted` to ACCEPT on every path; and the cache (the source port left out unless a
//! trace forks on it) never changes an answer: a fresh analysis of the entry alone agrees.
//!
//! 256 cases by default (set PROPTEST_CASES for more).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::conntrack::{Entry, Icmp, Proto, Status, Tuple};
use nfscope::ruleset::{Family, parse};
use nfscope::trace::nft::Native;
use nfscope::trace::stale::{Class, Stale};
use nfscope::trace::{LocalAddr, Verdict};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use std::net::IpAddr;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 256;
    }
    c
}

const MATCHES: &[&str] = &[
    "",
    "-p tcp",
    "-p udp",
    "-p icmp",
    "-p tcp -m tcp --dport 22",
    "-p tcp -m tcp --dport 80",
    "-p udp -m udp --dport 53",
    "-p tcp -m tcp --sport 40001",
    "-p udp -m udp --sport 40000:40002",
    "-p tcp -m multiport --ports 22,40003",
    "-s 10.0.0.0/24",
    "-d 203.0.113.2",
    "-i wan0",
    "-i lan0",
    "-o wan0",
    "-m limit --limit 1/s",
    "-m conntrack --ctstate NEW",
    "-p icmp -m icmp --icmp-type 8",
];

const TARGETS: &[&str] = &["ACCEPT", "DROP", "REJECT", "RETURN", "U", "LOG"];

const ADDRS: &[&str] = &[
    "10.0.0.5",
    "10.0.0.1",
    "203.0.113.2",
    "198.51.100.7",
    "127.0.0.1",
];

fn rule(chain: &'static str) -> impl Strategy<Value = String> {
    (select(MATCHES), select(TARGETS)).prop_map(move |(m, t)| {
        let t = if chain == "U" && t == "U" { "DROP" } else { t };
        format!("-A {chain} {m} -j {t}")
    })
}

fn ruleset() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        select(&["ACCEPT", "DROP"][..]),
        vec(rule("INPUT"), 0..5),
        vec(rule("FORWARD"), 0..4),
        vec(rule("OUTPUT"), 0..3),
        vec(rule("U"), 0..3),
        any::<bool>(),
    )
        .prop_map(|(est, policy, input, forward, output, user, dnat)| {
            let mut s = String::from(
                "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
            );
            if dnat {
                s.push_str("-A PREROUTING -p tcp -m tcp --dport 2222 -j DNAT --to-destination 10.0.0.10:22\n");
            }
            s.push_str("COMMIT\n*filter\n");
            s.push_str(&format!(
                ":INPUT {policy} [0:0]\n:FORWARD {policy} [0:0]\n:OUTPUT ACCEPT [0:0]\n:U - [0:0]\n"
            ));
            if est {
                for c in ["INPUT", "FORWARD", "OUTPUT"] {
                    s.push_str(&format!(
                        "-A {c} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
                    ));
                }
            }
            for r in input.iter().chain(&forward).chain(&output).chain(&user) {
                s.push_str(r);
                s.push('\n');
            }
            s.push_str("COMMIT\n");
            s
        })
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        select(&[6u8, 17, 1][..]),
        select(ADDRS),
        select(ADDRS),
        40000u16..40005,
        select(&[22u16, 53, 80, 2222, 9999][..]),
        any::<bool>(),
    )
        .prop_filter("distinct ends", |(_, s, d, ..)| s != d)
        .prop_map(|(proto, src, dst, sport, dport, dnat)| {
            let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            let icmp = (proto == 1).then_some(Icmp {
                kind: 8,
                code: 0,
                id: sport,
            });
            let ports = proto != 1;
            let orig = Tuple {
                src,
                dst,
                sport: ports.then_some(sport),
                dport: ports.then_some(dport),
                icmp,
            };
            let mut reply = Tuple {
                src: dst,
                dst: src,
                sport: orig.dport,
                dport: orig.sport,
                icmp: icmp.map(|i| Icmp { kind: 0, ..i }),
            };
            if dnat && ports {
                reply.src = "10.0.0.10".parse().unwrap();
                reply.sport = Some(22);
            }
            let mut e = Entry::new(Family::V4, Proto(proto), orig, reply);
            e.status = Status(Status::SEEN_REPLY | Status::CONFIRMED);
            e
        })
}

fn locals() -> Vec<LocalAddr> {
    ["10.0.0.1/24%lan0", "203.0.113.2/24%wan0"]
        .iter()
        .map(|s| LocalAddr::parse(s).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn stale_means_refused_and_accepted_means_accepted(text in ruleset(), entries in vec(entry(), 1..12)) {
        let rs = parse::parse(&text, Family::V4).unwrap();
        let mut stale = Stale::new(vec![(rs.clone(), Native::default())], locals());
        let report = stale.analyze(&entries);
        prop_assert_eq!(report.total, entries.len());
        prop_assert_eq!(
            report.accepted + report.stale.len() + report.maybe.len() + report.skipped_total(),
            entries.len()
        );
        for (i, e) in entries.iter().enumerate() {
            let f = stale.classify(e).unwrap();
            // Traced afresh, the entry's own source port given.
            let mut p = stale.packet(e).unwrap();
            p.sport = e.orig.sport;
            let trace = stale.tracer(Family::V4).unwrap().trace(&p, stale.options());
            let all = |ok: fn(Verdict) -> bool| trace.unexplored == 0 && trace.paths.iter().all(|p| ok(p.verdict));
            match f.class {
                Class::Stale => {
                    prop_assert!(all(|v| matches!(v, Verdict::Drop | Verdict::Reject)),
                        "entry {} called stale, but the trace says {}\n{}", i, trace.summary(), text);
                    prop_assert!(f.rule.is_some());
                }
                Class::Accepted => prop_assert!(all(|v| v == Verdict::Accept),
                    "entry {} called accepted, but the trace says {}\n{}", i, trace.summary(), text),
                Class::Maybe => {}
            }
            // The cache changes nothing: the entry alone, in a fresh analysis.
            let mut alone = Stale::new(vec![(rs.clone(), Native::default())], locals());
            prop_assert_eq!(alone.classify(e).unwrap().class, f.class);
        }
    }
}
