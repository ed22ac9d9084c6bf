//! The walk's rules, one at a time, on tiny rule sets: table order, ACCEPT per table, jumps,
//! gotos and RETURN, loops, conntrack in raw, NAT, marks, forks and their bound.

use super::*;
use crate::ruleset::{Family, parse};
use std::net::IpAddr;

fn tracer(text: &str) -> Tracer {
    let family = if text.contains("::") {
        Family::V6
    } else {
        Family::V4
    };
    Tracer::new(&parse(text, family).expect("the test rule set parses"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(dst: &str, dport: u16) -> Packet {
    let mut p = Packet::new(6, ip("198.51.100.7"), ip(dst));
    p.sport = Some(40000);
    p.dport = Some(dport);
    p.in_iface = Some("eth0".into());
    p
}

fn local() -> TraceOptions {
    TraceOptions {
        local_addrs: vec![LocalAddr::parse("192.0.2.1/24%eth0").unwrap()],
        ..TraceOptions::default()
    }
}

/// (table, chain, rule) of the one path's decider.
fn decided(t: &Trace) -> (String, String, Option<usize>) {
    assert_eq!(t.paths.len(), 1, "{t:#?}");
    let s = t.paths[0].decider().expect("a decider");
    (
        s.table.map(|t| t.name().to_string()).unwrap_or_default(),
        s.chain.as_deref().unwrap_or("").to_string(),
        s.rule,
    )
}

fn d(table: &str, chain: &str, rule: Option<usize>) -> (String, String, Option<usize>) {
    (table.into(), chain.into(), rule)
}

#[test]
fn accept_ends_one_table_only() {
    let t = tracer(
        "*raw\n-A PREROUTING -j ACCEPT\n-A PREROUTING -j DROP\nCOMMIT\n\
         *mangle\n-A PREROUTING -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n\
         *filter\n-A INPUT -m mark --mark 0x1 -j DROP\nCOMMIT\n",
    );
    let r = t.trace(&tcp("192.0.2.1", 22), &local());
    assert_eq!(r.certain(), Some(Verdict::Drop));
    assert_eq!(decided(&r), d("filter", "INPUT", Some(1)));
    let hooks: Vec<(Hook, Option<TableId>)> =
        r.paths[0].steps.iter().map(|s| (s.hook, s.table)).collect();
    assert_eq!(hooks[0], (Hook::Prerouting, Some(TableId::Raw)));
    assert_eq!(hooks[1], (Hook::Prerouting, Some(TableId::Mangle)));
    assert!(hooks.contains(&(Hook::Input, Some(TableId::Filter))));
}

#[test]
fn goto_returns_to_the_callers_caller() {
    let t = tracer(
        "*filter\n:INPUT DROP [0:0]\n:A - [0:0]\n:B - [0:0]\n\
         -A INPUT -j A\n-A INPUT -j ACCEPT\n\
         -A A -g B\n-A A -j DROP\n-A B -j RETURN\nCOMMIT\n",
    );
    let r = t.trace(&tcp("192.0.2.1", 22), &local());
    assert_eq!(r.certain(), Some(Verdict::Accept));
    assert_eq!(decided(&r), d("filter", "INPUT", Some(2)));
    // From a built-in chain, a goto's RETURN lands on the policy.
    let t = tracer(
        "*filter\n:INPUT DROP [0:0]\n:B - [0:0]\n-A INPUT -g B\n-A INPUT -j ACCEPT\nCOMMIT\n",
    );
    let r = t.trace(&tcp("192.0.2.1", 22), &local());
    assert_eq!(r.certain(), Some(Verdict::Drop));
    assert_eq!(decided(&r), d("filter", "INPUT", None));
    let ends = r.paths[0]
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::ChainEnd);
    assert_eq!(ends.count(), 1);
}

#[test]
fn loops_are_errors_not_overflows() {
    for text in [
        "*filter\n:A - [0:0]\n-A INPUT -j A\n-A A -j A\nCOMMIT\n",
        "*filter\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -j B\n-A B -j A\nCOMMIT\n",
        "*filter\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -g B\n-A B -g A\nCOMMIT\n",
    ] {
        let r = tracer(text).trace(&tcp("192.0.2.1", 22), &local());
        assert_eq!(r.verdicts(), [Verdict::Error], "{text}");
        assert!(r.summary().contains("loop: "), "{}", r.summary());
    }
    // Calling the same chain twice in a row is not a loop.
    let r = tracer("*filter\n:A - [0:0]\n-A INPUT -j A\n-A INPUT -j A\nCOMMIT\n")
        .trace(&tcp("192.0.2.1", 22), &local());
    assert_eq!(r.certain(), Some(Verdict::Accept));
}

#[test]
fn raw_sees_no_connection_yet() {
    let t = tracer(
        "*raw\n-A PREROUTING -m conntrack --ctstate NEW -j DROP\n\
         -A PREROUTING -m conntrack --ctstate INVALID -j MARK --set-xmark 0x7/0xffffffff\nCOMMIT\n\
         *filter\n-A INPUT -m mark --mark 0x7 -m conntrack --ctstate NEW -j REJECT\nCOMMIT\n",
    );
    let r = t.trace(&tcp("192.0.2.1", 22), &local());
    assert_eq!(r.certain(), Some(Verdict::Reject));
}

#[test]
fn dnat_is_seen_by_forward_and_only_new_packets_see_nat() {
    let text = "*nat\n-A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.20:80\nCOMMIT\n\
         *filter\n:FORWARD DROP [0:0]\n\
         -A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT\n\
         -A FORWARD -d 10.0.0.20 -p tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT\nCOMMIT\n";
    let t = tracer(text);
    let r = t.trace(&tcp("192.0.2.1", 8080), &local());
    assert_eq!(r.certain(), Some(Verdict::Accept));
    assert_eq!(decided(&r), d("filter", "FORWARD", Some(2)));
    assert_eq!(r.paths[0].headers.dst, "10.0.0.20");
    assert_eq!(r.paths[0].headers.dport.as_deref(), Some("80"));
    let mut est = tcp("192.0.2.1", 8080);
    est.state = CtState::Established;
    let r = t.trace(&est, &local());
    let skip = r.paths[0]
        .steps
        .iter()
        .any(|s| matches!(s.kind, StepKind::Skip { .. }) && s.table == Some(TableId::Nat));
    assert!(skip);
    // Not translated: 192.0.2.1 is local, so it goes to INPUT (policy ACCEPT).
    assert_eq!(r.paths[0].headers.dst, "192.0.2.1");
    assert_eq!(r.certain(), Some(Verdict::Accept));
}

#[test]
fn unknown_matches_fork_and_say_why() {
    let t = tracer(
        "*filter\n:INPUT DROP [0:0]\n:TCP - [0:0]\n-A INPUT -p tcp -j TCP\n\
         -A TCP -p tcp -m recent --update --seconds 60 --name SCAN --rsource -j REJECT\n\
         -A TCP -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
    );
    let r = t.trace(&tcp("192.0.2.1", 22), &local());
    assert_eq!(r.verdicts(), [Verdict::Reject, Verdict::Accept]);
    assert_eq!(
        r.summary(),
        "REJECT or ACCEPT (unknown: rule 1 of chain TCP (-m recent --update --seconds 60 --name SCAN --rsource))"
    );
    assert_eq!(r.paths[1].fork, Some(Fork { parent: 0, step: 2 }));
    assert_eq!(r.certain(), None);
    // An unknown that both ways leads to one verdict leaves it certain.
    let t = tracer("*filter\n:INPUT DROP [0:0]\n-A INPUT -m limit --limit 1/min -j LOG\nCOMMIT\n");
    let r = t.trace(&tcp("192.0.2.1", 22), &local());
    assert_eq!(r.paths.len(), 2);
    assert_eq!(r.certain(), Some(Verdict::Drop));
    assert_eq!(r.summary(), "DROP");
}

#[test]
fn the_fork_bound_is_said() {
    let mut text = String::from("*filter\n");
    for i in 0..10 {
        text.push_str(&format!(
            "-A INPUT -m statistic --mode random --probability 0.5 -j MARK --set-xmark {i}/0xffffffff\n"
        ));
    }
    text.push_str("-A INPUT -m mark --mark 9 -j DROP\nCOMMIT\n");
    let r = tracer(&text).trace(&tcp("192.0.2.1", 22), &local());
    assert_eq!(r.paths.len(), 64);
    assert!(r.unexplored > 0);
    assert!(r.verdicts().contains(&Verdict::Unknown));
    assert!(
        r.summary().contains("the bound of 64 paths"),
        "{}",
        r.summary()
    );
}

#[test]
fn an_assumed_interface_holds_for_the_rest_of_the_path() {
    let t = tracer(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lan0 -j MARK --set-xmark 0x1/0xffffffff\n\
         -A INPUT ! -i lan0 -j DROP\n-A INPUT -i lan0 -j ACCEPT\nCOMMIT\n",
    );
    let mut p = tcp("192.0.2.1", 22);
    p.in_iface = None;
    let r = t.trace(&p, &local());
    assert_eq!(r.verdicts(), [Verdict::Accept, Verdict::Drop]);
    assert_eq!(
        r.paths.len(),
        2,
        "no path may assume both lan0 and not lan0"
    );
    // An unknown interface is never lo for a packet from the network.
    let t = tracer("*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n");
    assert_eq!(t.trace(&p, &local()).certain(), Some(Verdict::Drop));
}

#[test]
fn local_packets_to_local_addresses_come_back_on_lo() {
    let t = tracer(
        "*nat\n-A OUTPUT -j ACCEPT\n-A PREROUTING -j DNAT --to-destination 10.9.9.9\nCOMMIT\n\
         *filter\n:INPUT DROP [0:0]\n:OUTPUT DROP [0:0]\n-A OUTPUT -o lo -j ACCEPT\n\
         -A INPUT -i lo -m conntrack --ctstate NEW --ctstatus CONFIRMED -j ACCEPT\nCOMMIT\n",
    );
    let mut p = Packet::new(1, ip("192.0.2.1"), ip("192.0.2.1"));
    p.origin = Origin::Local;
    p.icmp = Some((8, 0));
    let r = t.trace(&p, &local());
    assert_eq!(
        r.certain(),
        Some(Verdict::Accept),
        "{:#?}",
        r.paths[0].steps
    );
    assert_eq!(decided(&r), d("filter", "INPUT", Some(1)));
    let hooks: Vec<Hook> = r.paths[0].steps.iter().map(|s| s.hook).collect();
    let order: Vec<Hook> = hooks.iter().fold(Vec::new(), |mut v, h| {
        if v.last() != Some(h) {
            v.push(*h);
        }
        v
    });
    assert_eq!(
        order,
        [
            Hook::Output,
            Hook::Postrouting,
            Hook::Prerouting,
            Hook::Input
        ]
    );
    assert_eq!(r.paths[0].headers.dst, "192.0.2.1", "nat is not seen twice");
}

#[test]
fn notrack_makes_the_packet_untracked() {
    let t = tracer(
        "*raw\n-A PREROUTING -p udp --dport 123 -j CT --notrack\nCOMMIT\n\
         *nat\n-A PREROUTING -j DNAT --to-destination 10.9.9.9\nCOMMIT\n\
         *filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate UNTRACKED -j ACCEPT\nCOMMIT\n",
    );
    let mut p = Packet::new(17, ip("198.51.100.7"), ip("192.0.2.1"));
    p.dport = Some(123);
    let r = t.trace(&p, &local());
    assert_eq!(r.certain(), Some(Verdict::Accept));
    assert_eq!(r.paths[0].headers.state, "UNTRACKED");
    assert_eq!(r.paths[0].headers.dst, "192.0.2.1");
}

#[test]
fn tcp_flags_default_by_state() {
    let t = tracer(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --syn -j ACCEPT\n\
         -A INPUT -p tcp --tcp-flags SYN,ACK ACK -j REJECT\nCOMMIT\n",
    );
    let mut p = tcp("192.0.2.1", 22);
    assert_eq!(t.trace(&p, &local()).certain(), Some(Verdict::Accept));
    p.state = CtState::Established;
    assert_eq!(t.trace(&p, &local()).certain(), Some(Verdict::Reject));
}

#[test]
fn marks_save_and_restore_through_the_connection() {
    let t = tracer(
        "*mangle\n-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff\n\
         -A PREROUTING -m mark --mark 0x10 -j RETURN\n\
         -A PREROUTING -p tcp --dport 5060 -j MARK --set-xmark 0x10/0xffffffff\n\
         -A PREROUTING -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff\nCOMMIT\n\
         *filter\n:INPUT DROP [0:0]\n-A INPUT -m connmark --mark 0x10 -j ACCEPT\nCOMMIT\n",
    );
    let r = t.trace(&tcp("192.0.2.1", 5060), &local());
    assert_eq!(r.certain(), Some(Verdict::Accept));
    assert_eq!(r.paths[0].headers.mark, "0x10");
    // An established connection's mark is unknown: so is the restored packet mark.
    let mut p = tcp("192.0.2.1", 80);
    p.state = CtState::Established;
    let r = t.trace(&p, &local());
    assert_eq!(r.verdicts(), [Verdict::Accept, Verdict::Drop]);
}

#[test]
fn the_other_family_is_an_error() {
    let t = tracer("*filter\n-A INPUT -j ACCEPT\nCOMMIT\n");
    let p = Packet::new(6, ip("2001:db8::1"), ip("2001:db8::2"));
    let r = t.trace(&p, &local());
    assert_eq!(r.verdicts(), [Verdict::Error]);
    assert!(
        r.summary().starts_with("ERROR (error: an IPv6 packet"),
        "{}",
        r.summary()
    );
}

#[test]
fn a_local_packet_dnatted_elsewhere_is_rerouted() {
    let t = tracer(
        "*nat\n-A OUTPUT -d 192.0.2.1 -j DNAT --to-destination 203.0.113.5\nCOMMIT\n\
         *filter\n:OUTPUT DROP [0:0]\n-A OUTPUT -o lo -j ACCEPT\n-A OUTPUT -d 203.0.113.5 -j REJECT\nCOMMIT\n",
    );
    let mut p = Packet::new(17, ip("192.0.2.1"), ip("192.0.2.1"));
    p.origin = Origin::Local;
    p.dport = Some(53);
    let r = t.trace(&p, &local());
    assert_eq!(
        r.certain(),
        Some(Verdict::Reject),
        "{:#?}",
        r.paths[0].steps
    );
    let routes: Vec<Route> = r.paths[0]
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Routing { route, .. } => Some(*route),
            _ => None,
        })
        .collect();
    assert_eq!(routes, [Route::Loopback, Route::Out]);
}

#[test]
fn a_nat_range_partly_local_forks_the_routing() {
    // Arriving: PREROUTING's DNAT picks 192.0.2.1 (local) or 192.0.2.2 (not).
    let t = tracer(
        "*nat\n-A PREROUTING -j DNAT --to-destination 192.0.2.1-192.0.2.2\nCOMMIT\n\
         *filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\nCOMMIT\n",
    );
    let r = t.trace(&tcp("203.0.113.9", 80), &local());
    assert_eq!(r.verdicts(), [Verdict::Accept, Verdict::Drop], "{r:#?}");
    assert_eq!(
        r.unknowns()[0].condition,
        "192.0.2.1-192.0.2.2 is a local address"
    );
    // Sent locally: nat OUTPUT's DNAT makes the reroute undecidable; the clone resumes at
    // that decision, not at the next unknown rule.
    let t = tracer(
        "*nat\n-A OUTPUT -j DNAT --to-destination 192.0.2.1-192.0.2.2\nCOMMIT\n\
         *filter\n:OUTPUT DROP [0:0]\n-A OUTPUT -o lo -j ACCEPT\n\
         -A OUTPUT -m limit --limit 1/s -j LOG\nCOMMIT\n",
    );
    let mut p = Packet::new(17, ip("192.0.2.1"), ip("203.0.113.9"));
    p.origin = Origin::Local;
    p.dport = Some(53);
    let r = t.trace(&p, &local());
    let outcomes: Vec<(Verdict, Option<usize>)> = r
        .paths
        .iter()
        .map(|p| (p.verdict, p.decider().and_then(|s| s.rule)))
        .collect();
    assert_eq!(
        outcomes,
        [
            (Verdict::Accept, Some(1)),
            (Verdict::Drop, None),
            (Verdict::Drop, None)
        ],
        "{r:#?}"
    );
    assert_eq!(
        r.paths[1].assumptions[0].condition,
        "192.0.2.1-192.0.2.2 is a local address"
    );
    assert!(!r.paths[1].assumptions[0].matched);
}

/// An ESTABLISHED packet of a DNAT'd connection (198.51.100.7:55636 → 192.0.2.1:8080, DNAT
/// to 10.0.0.10:80) is rewritten from the binding before routing, so it is forwarded, not
/// delivered: the kernel does so without traversing nat. Without the binding the same
/// packet reaches INPUT.
#[test]
fn an_established_dnat_connection_is_forwarded_by_its_binding() {
    let t = tracer(
        "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.10:80\nCOMMIT\n\
         *filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n\
         -A FORWARD -d 10.0.0.10/32 -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n",
    );
    let mut p = tcp("192.0.2.1", 8080);
    p.sport = Some(55636);
    p.state = CtState::Established;
    let without = t.trace(&p, &local());
    assert_eq!(decided(&without), d("filter", "INPUT", None));
    p.dnat = Some(Binding {
        addr: ip("10.0.0.10"),
        port: Some(80),
    });
    let r = t.trace(&p, &local());
    assert_eq!(r.certain(), Some(Verdict::Accept), "{r:#?}");
    assert_eq!(decided(&r), d("filter", "FORWARD", Some(1)));
    let path = &r.paths[0];
    assert!(path.steps.iter().any(|s| matches!(&s.kind,
        StepKind::Skip { reason } if reason.contains("DNAT binding") && reason.contains("10.0.0.10"))));
    assert_eq!(path.headers.dst, "10.0.0.10");
    // A NEW packet goes through the nat table as ever (the binding is the connection's).
    p.state = CtState::New;
    let r = t.trace(&p, &local());
    assert_eq!(decided(&r), d("filter", "FORWARD", Some(1)));
}

/// An SNAT binding rewrites the source at POSTROUTING.
#[test]
fn an_established_snat_connection_leaves_with_its_new_source() {
    let t = tracer("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n");
    let mut p = tcp("203.0.113.9", 443);
    p.src = ip("192.0.2.50");
    p.out_iface = Some("eth1".into());
    p.state = CtState::Established;
    p.snat = Some(Binding {
        addr: ip("192.0.2.1"),
        port: Some(61000),
    });
    let r = t.trace(&p, &local());
    let path = &r.paths[0];
    assert_eq!(path.headers.src, "192.0.2.1", "{r:#?}");
    assert_eq!(path.headers.sport.as_deref(), Some("61000"));
}

#[test]
fn bindings_read_from_text_and_entries() {
    assert_eq!(
        Binding::parse("10.0.0.10:80"),
        Ok(Binding {
            addr: ip("10.0.0.10"),
            port: Some(80)
        })
    );
    assert_eq!(
        Binding::parse("[fd00::10]:80").map(|b| b.to_string()),
        Ok("[fd00::10]:80".to_string())
    );
    assert_eq!(Binding::parse("fd00::10").map(|b| b.port), Ok(None));
    assert!(
        Binding::parse("nowhere:80")
            .unwrap_err()
            .contains("nowhere")
    );
}
