//! Property tests of the tracer: over generated small rule sets (every table, user chains that
//! jump and go to each other, themselves included, so loops are common; matches of every kind
//! nfscope reads, some it cannot, and some malformed; every kind of target) and generated
//! packets of both families and origins:
//!
//! - nothing panics or overflows the stack, and every trace is well-formed: at least one path,
//!   no more than the bound, deciders and fork points inside their paths, a summary that starts
//!   with a verdict;
//! - a loop the walk reaches is an ERROR that says "loop", never a hang;
//! - the same packet through the same rule set gives the same trace.
//!
//! 256 cases per property by default (set PROPTEST_CASES for more).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::ruleset::{Family, builtin_chains, parse};
use nfscope::trace::{
    CtState, Effect, LocalAddr, Origin, Packet, StepKind, TraceOptions, Tracer, Verdict,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

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

const CHAINS: [&str; 4] = ["C0", "C1", "C2", "C3"];

const MATCHES: &[&str] = &[
    "",
    "-p tcp",
    "-p udp",
    "! -p icmp",
    "-p all",
    "! -p all",
    "-p 999",
    "-p nosuchproto",
    "-s 10.0.0.0/8",
    "! -d 192.0.2.1",
    "-s 10.0.0.0/255.0.0.0",
    "-d 2001:db8::/32",
    "-s notanaddr",
    "-i eth+",
    "! -o lo",
    "-i +",
    "-f",
    "! -f",
    "-p tcp -m tcp --dport 22",
    "-p tcp -m tcp ! --sport 1024:",
    "-p tcp --syn",
    "-p tcp -m tcp --tcp-flags ALL NONE",
    "-p tcp -m tcp --tcp-flags SYN",
    "-p tcp -m tcp --tcp-option 2",
    "-p udp -m multiport --dports 53,1000:2000",
    "-p udp -m multiport ! --ports 1:2,x",
    "-p icmp -m icmp --icmp-type 8",
    "-p icmp -m icmp --icmp-type any",
    "-p ipv6-icmp -m icmp6 --icmpv6-type neighbour-solicitation",
    "-m conntrack --ctstate NEW,DNAT",
    "-m conntrack ! --ctstate RELATED,ESTABLISHED,SNAT",
    "-m conntrack --ctorigdst 10.0.0.0/8 --ctstatus CONFIRMED,NONE --ctdir REPLY",
    "-m conntrack --ctreplsrcport 80 --ctproto tcp --ctexpire 10",
    "-m conntrack --ctstate BOGUS",
    "-m state --state ESTABLISHED,UNTRACKED",
    "-m mark --mark 0x1/0xff",
    "-m mark ! --mark 0x10",
    "-m connmark --mark 0x2",
    "-m addrtype --dst-type LOCAL",
    "-m addrtype --src-type UNICAST --limit-iface-in",
    "-m addrtype ! --dst-type BROADCAST,MULTICAST,UNREACHABLE,ANYCAST,UNSPEC",
    "-m iprange --src-range 10.0.0.1-10.0.0.9",
    "-m iprange --dst-range 9.9.9.9-1.1.1.1",
    "-m recent --rcheck --seconds 60 --name X",
    "-m recent --set --name X",
    "-m limit --limit 1/s",
    "-m length --length 0:100",
    "-m length --length :",
    "-m ttl --ttl-gt 5",
    "-m hl --hl-eq 255",
    "-m pkttype --pkt-type broadcast",
    "-m mac --mac-source 00:11:22:33:44:55",
    "-m mac --mac-source zz",
    "-m comment --comment \"x y\"",
    "-m u32 --u32 0x0&0x1=0x1",
    "-m owner --uid-owner 0",
    "-m",
    "--orphan 1",
    "! -m bogus",
];

const TARGETS: &[&str] = &[
    "",
    "-j ACCEPT",
    "-j DROP",
    "-j RETURN",
    "-j QUEUE",
    "-j REJECT --reject-with tcp-reset",
    "-j NFQUEUE --queue-num 1",
    "-j LOG --log-prefix \"x \"",
    "-j MARK --set-xmark 0x1/0xff",
    "-j MARK --set-mark 7",
    "-j MARK --and-mark 0xf0",
    "-j MARK --or-mark 0x4000",
    "-j MARK --xor-mark 3",
    "-j MARK --bogus",
    "-j HMARK --hmark-tuple src",
    "-j CONNMARK --save-mark --nfmask 0xff --ctmask 0xff",
    "-j CONNMARK --restore-mark --mask 0xf",
    "-j CONNMARK --set-xmark 0x5/0xf",
    "-j CT --notrack",
    "-j NOTRACK",
    "-j CT --zone 1",
    "-j TTL --ttl-set 3",
    "-j DNAT --to-destination 10.0.0.5:80",
    "-j DNAT --to-destination 10.0.0.5-10.0.0.9:80-90",
    "-j DNAT --to-destination [2001:db8::5]:443",
    "-j DNAT --to-destination garbage",
    "-j SNAT --to-source 10.0.0.1-10.0.0.3",
    "-j MASQUERADE --to-ports 1024-2048",
    "-j REDIRECT --to-ports 8080",
    "-j NETMAP --to 10.9.0.0/16",
    "-j SYNPROXY",
    "-j WEIRD",
    "-j",
];

/// A target: one of the fixed ones, or a jump/goto to a user chain (the same chain too).
fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(TARGETS).prop_map(str::to_string),
        2 => (select(&CHAINS[..]), any::<bool>())
            .prop_map(|(c, goto)| format!("{} {c}", if goto { "-g" } else { "-j" })),
    ]
}

fn rule() -> impl Strategy<Value = String> {
    (vec(select(MATCHES), 0..3), target()).prop_map(|(m, t)| {
        let mut words: Vec<&str> = m.into_iter().filter(|s| !s.is_empty()).collect();
        words.push(&t);
        words.join(" ")
    })
}

/// A save text with every table and built-in chain, the four user chains in each, random
/// policies and a few rules per chain.
fn ruleset_text() -> impl Strategy<Value = String> {
    let tables: Vec<(&str, &[&str])> = ["raw", "mangle", "nat", "filter", "security"]
        .into_iter()
        .map(|t| (t, builtin_chains(t)))
        .collect();
    let chains_per_table: Vec<usize> = tables.iter().map(|(_, b)| b.len() + CHAINS.len()).collect();
    let all: usize = chains_per_table.iter().sum();
    (
        vec(vec(rule(), 0..4), all),
        vec(select(&["ACCEPT", "DROP", "QUEUE"][..]), all),
        vec(any::<bool>(), 5),
    )
        .prop_map(move |(rules, policies, present)| {
            let mut out = String::new();
            let mut k = 0;
            for (ti, (name, builtin)) in tables.iter().enumerate() {
                let names: Vec<&str> = builtin.iter().copied().chain(CHAINS).collect();
                let first = k;
                k += names.len();
                if !present[ti] {
                    continue;
                }
                out.push_str(&format!("*{name}\n"));
                for (i, c) in names.iter().enumerate() {
                    let policy = if i < builtin.len() {
                        policies[first + i]
                    } else {
                        "-"
                    };
                    out.push_str(&format!(":{c} {policy} [0:0]\n"));
                }
                for (i, c) in names.iter().enumerate() {
                    for r in &rules[first + i] {
                        out.push_str(&format!("-A {c} {r}\n"));
                    }
                }
                out.push_str("COMMIT\n");
            }
            out
        })
}

fn packet(family: Family) -> impl Strategy<Value = Packet> {
    let addrs: &'static [&'static str] = match family {
        Family::V4 => &[
            "10.0.0.5",
            "192.0.2.1",
            "192.0.2.255",
            "127.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "198.51.100.7",
        ],
        Family::V6 => &[
            "2001:db8::5",
            "2001:db8::1",
            "::1",
            "fe80::1",
            "ff02::1",
            "::",
            "fd00::9",
        ],
    };
    (
        select(&[6u8, 17, 1, 58, 47, 132][..]),
        select(addrs),
        select(addrs),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u8>()),
        select(&CtState::ALL[..]),
        any::<bool>(),
        proptest::option::of(select(&["eth0", "lo", "ppp0", "eth1"][..])),
        proptest::option::of(select(&["eth0", "lo", "ppp0"][..])),
        (
            any::<u32>(),
            proptest::option::of(any::<u32>()),
            any::<bool>(),
        ),
        (
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<(u8, u8)>()),
        ),
    )
        .prop_map(
            |(
                proto,
                src,
                dst,
                sport,
                dport,
                flags,
                state,
                local,
                i,
                o,
                (mark, ctmark, frag),
                (ttl, len, icmp),
            )| {
                let mut p = Packet::new(
                    proto,
                    src.parse().expect("an address"),
                    dst.parse().expect("an address"),
                );
                p.sport = sport;
                p.dport = dport;
                p.tcp_flags = flags;
                p.state = state;
                p.origin = if local {
                    Origin::Local
                } else {
                    Origin::Network
                };
                p.in_iface = i.map(str::to_string);
                p.out_iface = o.map(str::to_string);
                p.mark = mark;
                p.ctmark = ctmark;
                p.fragment = frag;
                p.ttl = ttl;
                p.length = len;
                p.icmp = icmp;
                p
            },
        )
}

fn options(max_paths: usize) -> TraceOptions {
    TraceOptions {
        local_addrs: ["192.0.2.1/24%eth0", "2001:db8::1/64%eth0", "10.0.0.1%ppp0"]
            .iter()
            .map(|s| LocalAddr::parse(s).expect("an address"))
            .collect(),
        max_paths,
        ..TraceOptions::default()
    }
}

fn check(text: &str, family: Family, p: &Packet, max_paths: usize) -> Result<(), TestCaseError> {
    let rs = parse(text, family).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    let tracer = Tracer::new(&rs);
    let opts = options(max_paths);
    let t = tracer.trace(p, &opts);
    prop_assert!(!t.paths.is_empty());
    prop_assert!(t.paths.len() <= max_paths);
    for path in &t.paths {
        if let Some(i) = path.decided_by {
            prop_assert!(i < path.steps.len());
        }
        if let Some(f) = path.fork {
            prop_assert!(f.parent < t.paths.len() && f.step < path.steps.len());
        }
        for a in &path.assumptions {
            prop_assert!(a.step <= path.steps.len());
        }
        let looped = path.steps.iter().any(|s| match &s.kind {
            StepKind::Rule {
                effect: Some(e), ..
            } => matches!(**e, Effect::Loop { .. }),
            _ => false,
        });
        if looped {
            prop_assert_eq!(path.verdict, Verdict::Error);
            prop_assert!(path.note.contains("loop"), "{}", path.note);
        }
    }
    let summary = t.summary();
    prop_assert!(
        t.verdicts().iter().any(|v| summary.starts_with(v.name())),
        "{}",
        summary
    );
    prop_assert_eq!(&tracer.trace(p, &opts), &t);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ipv4_traces_are_well_formed(text in ruleset_text(), p in packet(Family::V4), max in 1usize..80) {
        check(&text, Family::V4, &p, max)?;
    }

    #[test]
    fn ipv6_traces_are_well_formed(text in ruleset_text(), p in packet(Family::V6), max in 1usize..80) {
        check(&text, Family::V6, &p, max)?;
    }

    /// A packet of the other family, or with addresses of two families, is an error, not a panic.
    #[test]
    fn mismatched_families_are_errors(text in ruleset_text(), p in packet(Family::V6)) {
        let rs = parse(&text, Family::V4).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let t = Tracer::new(&rs).trace(&p, &options(64));
        prop_assert_eq!(t.verdicts(), vec![Verdict::Error]);
    }
}

/// Loops of every shape the kernel would refuse, reached from a built-in chain.
#[test]
fn loops_are_reported() {
    let p = {
        let mut p = Packet::new(
            6,
            "198.51.100.7".parse().unwrap(),
            "192.0.2.1".parse().unwrap(),
        );
        p.dport = Some(22);
        p
    };
    for body in [
        "-A INPUT -j C0\n-A C0 -j C0\n",
        "-A INPUT -j C0\n-A C0 -j C1\n-A C1 -j C2\n-A C2 -j C0\n",
        "-A INPUT -g C0\n-A C0 -g C1\n-A C1 -g C0\n",
        "-A INPUT -j C0\n-A C0 -g C1\n-A C1 -j C0\n",
        "-A INPUT -p tcp -j C0\n-A C0 -m limit --limit 1/s -j C1\n-A C0 -j C0\n-A C1 -j RETURN\n",
    ] {
        let text = format!(
            "*filter\n:INPUT ACCEPT [0:0]\n:C0 - [0:0]\n:C1 - [0:0]\n:C2 - [0:0]\n{body}COMMIT\n"
        );
        let t = Tracer::new(&parse(&text, Family::V4).unwrap()).trace(&p, &options(64));
        assert!(
            t.paths
                .iter()
                .all(|p| p.verdict == Verdict::Error && p.note.contains("loop")),
            "{body}: {}",
            t.summary()
        );
    }
}

/// Chains that call each other many times over, without a loop, are walked to the end (or
/// stopped with an error), not followed forever.
#[test]
fn exponential_call_graphs_end() {
    let mut text = String::from("*filter\n:INPUT DROP [0:0]\n");
    for i in 0..24 {
        text.push_str(&format!(":D{i} - [0:0]\n"));
    }
    text.push_str("-A INPUT -j D0\n");
    for i in 0..23 {
        let next = i + 1;
        text.push_str(&format!("-A D{i} -j D{next}\n-A D{i} -j D{next}\n"));
    }
    text.push_str("COMMIT\n");
    let p = Packet::new(
        6,
        "198.51.100.7".parse().unwrap(),
        "192.0.2.1".parse().unwrap(),
    );
    let opts = TraceOptions {
        max_steps: 20_000,
        ..options(64)
    };
    let t = Tracer::new(&parse(&text, Family::V4).unwrap()).trace(&p, &opts);
    assert_eq!(t.verdicts(), [Verdict::Error], "{}", t.summary());
    assert!(
        t.summary().contains("stopped after looking at 20000 rules"),
        "{}",
        t.summary()
    );
}
