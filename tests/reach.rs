//! Reachability (`trace::reach`) on hand-made rule sets, and against the tracer: on random rule
//! sets, every packet between two classes with a certain edge traces to ACCEPT on every path,
//! and every packet between two classes with no edge traces to no ACCEPT at all.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::ruleset::{Family, parse};
use nfscope::trace::reach::{IfaceMap, Reach, ReachQuery, reach};
use nfscope::trace::{CtState, Hook, LocalAddr, Packet, TraceOptions, Tracer, Verdict};
use proptest::prelude::*;
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn query(hook: Hook, dport: u16) -> ReachQuery {
    ReachQuery {
        hook,
        proto: 6,
        dport: Some(dport),
        sport: None,
        state: CtState::New,
        ifaces: Vec::new(),
        all_tables: false,
        nat: false,
    }
}

/// The answer from one address to another: None, Some(false) possible, Some(true) certain.
fn answer(r: &Reach, from: &str, to: &str) -> Option<bool> {
    let a = r.class_of(ip(from)).expect("every address has a class");
    let b = r.class_of(ip(to)).expect("every address has a class");
    r.edge(a, b)
}

const GATEWAY: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:LAN - [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -s 10.0.0.0/8 -j LAN
-A FORWARD -d 192.0.2.7/32 -p tcp -m tcp --dport 22 -j ACCEPT
-A FORWARD -s 198.51.100.0/24 -m limit --limit 5/min -j ACCEPT
-A LAN -d 10.1.0.0/16 -j DROP
-A LAN -j ACCEPT
COMMIT
";

#[test]
fn a_gateway_answers_certain_possible_and_none() {
    let rs = parse(GATEWAY, Family::V4).unwrap();
    let r = reach(&rs, &query(Hook::Forward, 22));
    // The LAN reaches everything but 10.1/16.
    assert_eq!(answer(&r, "10.9.9.9", "203.0.113.5"), Some(true));
    assert_eq!(answer(&r, "10.9.9.9", "10.1.2.3"), None);
    // Anyone reaches the SSH host, the LAN too (the LAN chain accepts it first).
    assert_eq!(answer(&r, "203.0.113.5", "192.0.2.7"), Some(true));
    assert_eq!(answer(&r, "10.9.9.9", "192.0.2.7"), Some(true));
    // Through a rate limit: possible.
    assert_eq!(answer(&r, "198.51.100.9", "203.0.113.5"), Some(false));
    // Nobody else.
    assert_eq!(answer(&r, "203.0.113.5", "203.0.113.6"), None);
    // The limit rule is named as what the possible answers hinge on.
    assert_eq!(r.hinges.len(), 1, "{:?}", r.hinges);
    assert_eq!(r.hinges[0].rule, 4);
    assert!(r.hinges[0].text.contains("limit"), "{:?}", r.hinges);
    // The classes cover the whole space once, and their names run a, b, c...
    let total: u128 = r
        .classes
        .iter()
        .flat_map(|c| c.set.ranges())
        .map(|(lo, hi)| hi - lo + 1)
        .sum();
    assert_eq!(total, 1u128 << 32);
    assert_eq!(r.classes[0].name, "a");
    // Another port: only the LAN.
    let r = reach(&rs, &query(Hook::Forward, 80));
    assert_eq!(answer(&r, "203.0.113.5", "192.0.2.7"), None);
    assert_eq!(answer(&r, "10.0.0.1", "192.0.2.7"), Some(true));
    // ESTABLISHED: everything.
    let mut q = query(Hook::Forward, 80);
    q.state = CtState::Established;
    let r = reach(&rs, &q);
    assert_eq!(r.classes.len(), 1);
    assert_eq!(r.edge(0, 0), Some(true));
}

#[test]
fn interfaces_constrain_sources_when_mapped() {
    let text = "*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -i lan0 -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -i wan0 -j DROP
COMMIT
";
    let rs = parse(text, Family::V4).unwrap();
    // Unmapped: lan0 is unknown, so SSH is possible from anywhere but loopback (certain).
    let r = reach(&rs, &query(Hook::Input, 22));
    assert_eq!(answer(&r, "127.0.0.1", "192.0.2.1"), Some(true));
    assert_eq!(answer(&r, "10.0.0.5", "192.0.2.1"), Some(false));
    // Mapped: the LAN's addresses arrive on lan0, everything else on wan0.
    let mut q = query(Hook::Input, 22);
    q.ifaces = vec![
        IfaceMap::parse("lan0=10.0.0.0/8,172.16.0.0/12").unwrap(),
        IfaceMap::parse("wan0=!10.0.0.0/8,172.16.0.0/12,127.0.0.0/8").unwrap(),
    ];
    let r = reach(&rs, &q);
    assert_eq!(answer(&r, "10.0.0.5", "192.0.2.1"), Some(true));
    assert_eq!(answer(&r, "172.16.0.5", "192.0.2.1"), Some(true));
    assert_eq!(answer(&r, "203.0.113.5", "192.0.2.1"), None);
    assert_eq!(answer(&r, "127.0.0.1", "192.0.2.1"), Some(true));
    assert!(r.hinges.is_empty(), "{:?}", r.hinges);
    // Bad maps are refused with a sentence.
    assert!(IfaceMap::parse("eth0").is_err());
    assert!(IfaceMap::parse("eth+=10.0.0.0/8").is_err());
    assert!(IfaceMap::parse("eth0=10.0.0.0/33").is_err());
}

#[test]
fn gotos_returns_and_ipv6() {
    let text = "*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:A - [0:0]
:B - [0:0]
-A FORWARD -s 2001:db8:1::/48 -g A
-A FORWARD -d 2001:db8:ff::/48 -j ACCEPT
-A A -d 2001:db8:2::/48 -j B
-A A -j REJECT
-A B -d 2001:db8:2::1/128 -j RETURN
-A B -j ACCEPT
COMMIT
";
    let rs = parse(text, Family::V6).unwrap();
    let r = reach(&rs, &query(Hook::Forward, 443));
    // From the /48: to 2::/48 accepted by B, but 2::1 returns to A and is rejected.
    assert_eq!(answer(&r, "2001:db8:1::5", "2001:db8:2::9"), Some(true));
    assert_eq!(answer(&r, "2001:db8:1::5", "2001:db8:2::1"), None);
    // The goto does not come back to FORWARD: the ff::/48 accept is never met from 1::/48.
    assert_eq!(answer(&r, "2001:db8:1::5", "2001:db8:ff::1"), None);
    assert_eq!(answer(&r, "2001:db8:9::5", "2001:db8:ff::1"), Some(true));
    assert_eq!(answer(&r, "2001:db8:9::5", "2001:db8:2::1"), None);
    assert!(
        r.classes
            .iter()
            .any(|c| c.ranges.contains(&"2001:db8:2::1".to_string()))
    );
}

// ---- against the tracer ----

const NETS: [&str; 6] = [
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "192.0.2.0/25",
    "192.0.2.128/25",
    "198.51.100.7/32",
];

#[derive(Debug, Clone)]
struct R {
    src: Option<(bool, usize)>,
    dst: Option<(bool, usize)>,
    proto: Option<&'static str>,
    dport: Option<(u16, u16)>,
    state: Option<&'static str>,
    limit: bool,
    target: &'static str,
}

fn rule() -> impl Strategy<Value = R> {
    (
        proptest::option::of((any::<bool>(), 0..NETS.len())),
        proptest::option::of((any::<bool>(), 0..NETS.len())),
        proptest::option::of(prop_oneof![Just("tcp"), Just("udp")]),
        proptest::option::of((20u16..30, 0u16..5)),
        proptest::option::of(prop_oneof![
            Just("NEW"),
            Just("ESTABLISHED"),
            Just("INVALID"),
            Just("NEW,DNAT"),
            Just("DNAT")
        ]),
        proptest::bool::weighted(0.15),
        prop_oneof![
            Just("ACCEPT"),
            Just("DROP"),
            Just("REJECT"),
            Just("RETURN"),
            Just("U1"),
            Just("U2"),
            Just("LOG"),
        ],
    )
        .prop_map(|(src, dst, proto, dport, state, limit, target)| R {
            src,
            dst,
            proto,
            dport: dport.map(|(lo, w)| (lo, lo + w)),
            state,
            limit,
            target,
        })
}

fn line(chain: &str, r: &R, allow_jump_to: &[&str]) -> String {
    let mut s = format!("-A {chain}");
    if let Some((neg, i)) = r.src {
        s += &format!("{} -s {}", if neg { " !" } else { "" }, NETS[i]);
    }
    if let Some((neg, i)) = r.dst {
        s += &format!("{} -d {}", if neg { " !" } else { "" }, NETS[i]);
    }
    let proto = r.proto.or(r.dport.map(|_| "tcp"));
    if let Some(p) = proto {
        s += &format!(" -p {p}");
        if let Some((lo, hi)) = r.dport {
            s += &format!(" -m {p} --dport {lo}:{hi}");
        }
    }
    if let Some(st) = r.state {
        s += &format!(" -m conntrack --ctstate {st}");
    }
    if r.limit {
        s += " -m limit --limit 3/sec";
    }
    let target = match r.target {
        t @ ("U1" | "U2") if !allow_jump_to.contains(&t) => "ACCEPT",
        "RETURN" if !chain.starts_with('U') => "DROP",
        "LOG" => "LOG --log-prefix x",
        t => t,
    };
    s += &format!(" -j {target}\n");
    s
}

fn ruleset(base: &str, fw: &[R], u1: &[R], u2: &[R], policy_drop: bool) -> String {
    let mut s = String::from("*filter\n");
    for c in ["INPUT", "FORWARD", "OUTPUT"] {
        let p = if c == base && policy_drop {
            "DROP"
        } else {
            "ACCEPT"
        };
        s += &format!(":{c} {p} [0:0]\n");
    }
    s += ":U1 - [0:0]\n:U2 - [0:0]\n";
    for r in fw {
        s += &line(base, r, &["U1", "U2"]);
    }
    for r in u1 {
        s += &line("U1", r, &["U2"]);
    }
    for r in u2 {
        s += &line("U2", r, &[]);
    }
    s + "COMMIT\n"
}

/// Addresses to try: every network's first, last and middle address, and some outside (not
/// 0.0.0.0 or the limited broadcast: the kernel forwards neither, and the tracer knows it).
fn probes() -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = vec![ip("1.0.0.1"), ip("8.8.8.8"), ip("223.255.255.254")];
    for n in NETS {
        let n: ipnet::IpNet = n.parse().unwrap();
        v.push(n.network());
        v.push(n.broadcast());
        if let (IpAddr::V4(a), IpAddr::V4(b)) = (n.network(), n.broadcast()) {
            let mid = (u32::from(a) / 2 + u32::from(b) / 2).max(u32::from(a));
            v.push(IpAddr::V4(mid.into()));
            v.push(IpAddr::V4(u32::from(a).saturating_sub(1).into()));
            v.push(IpAddr::V4(u32::from(b).saturating_add(1).into()));
        }
    }
    v.sort();
    v.dedup();
    v
}

/// The matrix's answer from `s` to `d` agrees with the trace of a packet between them: a
/// certain edge traces to ACCEPT on every path, no edge to no ACCEPT.
fn agrees(
    r: &Reach,
    s: IpAddr,
    d: IpAddr,
    t: &nfscope::trace::Trace,
    text: &str,
) -> Result<(), TestCaseError> {
    let verdicts: Vec<Verdict> = t.paths.iter().map(|p| p.verdict).collect();
    let (a, b) = (r.class_of(s).unwrap(), r.class_of(d).unwrap());
    match r.edge(a, b) {
        Some(true) => prop_assert!(
            verdicts.iter().all(|v| *v == Verdict::Accept),
            "{s} -> {d} certain, traced {verdicts:?}\n{text}"
        ),
        None => prop_assert!(
            !verdicts.contains(&Verdict::Accept),
            "{s} -> {d} no edge, traced {verdicts:?}\n{text}"
        ),
        Some(false) => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_matrix_agrees_with_tracing_packets(
        fw in proptest::collection::vec(rule(), 0..7),
        u1 in proptest::collection::vec(rule(), 0..4),
        u2 in proptest::collection::vec(rule(), 0..3),
        policy_drop in any::<bool>(),
        dport in 19u16..36,
        hook_input in any::<bool>(),
        established in proptest::bool::weighted(0.2),
    ) {
        let hook = if hook_input { Hook::Input } else { Hook::Forward };
        let text = ruleset(hook.name(), &fw, &u1, &u2, policy_drop);
        let rs = parse(&text, Family::V4).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let mut q = query(hook, dport);
        if established {
            q.state = CtState::Established;
        }
        let r = reach(&rs, &q);
        // An answer is only ever possible because of a rule that says why.
        if r.hinges.is_empty() {
            prop_assert!(r.edges.iter().all(|e| e.certain), "{:?}\n{text}", r.edges);
        }
        let tracer = Tracer::new(&rs);
        let addrs = probes();
        for &s in &addrs {
            for &d in &addrs {
                let mut p = Packet::new(6, s, d);
                p.sport = Some(40000);
                p.dport = Some(dport);
                p.state = q.state;
                let mut opts = TraceOptions::default();
                if hook == Hook::Input {
                    // Delivered here: the destination is this machine's.
                    opts.local_addrs = vec![LocalAddr::parse(&format!("{d}/32")).unwrap()];
                }
                let t = tracer.trace(&p, &opts);
                agrees(&r, s, d, &t, &text)?;
            }
        }
    }
}

// ---- NAT (--nat) ----

const PORT_FORWARD: &str = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 203.0.113.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:8080
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -d 10.0.0.5/32 -p tcp -m tcp --dport 8080 -j ACCEPT
COMMIT
";

#[test]
fn with_nat_a_port_forward_answers_at_its_public_address() {
    let rs = parse(PORT_FORWARD, Family::V4).unwrap();
    // Without --nat: the filter table's view, port 80 reaches nothing.
    let r = reach(&rs, &query(Hook::Forward, 80));
    assert_eq!(answer(&r, "198.51.100.7", "203.0.113.2"), None);
    assert_eq!(r.walked, ["filter FORWARD"]);
    // With it: the public address reaches the server (DNAT to 8080, accepted); the server
    // itself is not reached on port 80.
    let mut q = query(Hook::Forward, 80);
    q.nat = true;
    let r = reach(&rs, &q);
    assert_eq!(r.walked, ["nat PREROUTING", "filter FORWARD"]);
    assert_eq!(answer(&r, "198.51.100.7", "203.0.113.2"), Some(true));
    assert_eq!(answer(&r, "198.51.100.7", "10.0.0.5"), None);
    assert_eq!(answer(&r, "198.51.100.7", "203.0.113.3"), None);
    // Another port is not forwarded.
    let mut q = query(Hook::Forward, 443);
    q.nat = true;
    assert_eq!(answer(&reach(&rs, &q), "198.51.100.7", "203.0.113.2"), None);
}

#[derive(Debug, Clone)]
struct Fwd {
    src: Option<usize>,
    dst: usize,
    dport: u16,
    to: usize,
    to_port: Option<u16>,
    limit: bool,
}

fn fwd() -> impl Strategy<Value = Fwd> {
    (
        proptest::option::of(0..NETS.len()),
        0..NETS.len(),
        20u16..26,
        0..NETS.len(),
        proptest::option::of(20u16..26),
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(src, dst, dport, to, to_port, limit)| Fwd {
            src,
            dst,
            dport,
            to,
            to_port,
            limit,
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn with_nat_the_matrix_agrees_with_tracing_packets(
        fwds in proptest::collection::vec(fwd(), 0..4),
        fw in proptest::collection::vec(rule(), 0..6),
        policy_drop in any::<bool>(),
        dport in 19u16..27,
    ) {
        let mut text = String::from(
            "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
        );
        for f in &fwds {
            let net: ipnet::IpNet = NETS[f.to].parse().unwrap();
            let to = match f.to_port {
                Some(p) => format!("{}:{p}", net.network()),
                None => net.network().to_string(),
            };
            text += &format!(
                "-A PREROUTING{} -d {} -p tcp -m tcp --dport {}{} -j DNAT --to-destination {to}\n",
                f.src.map_or(String::new(), |s| format!(" -s {}", NETS[s])),
                NETS[f.dst],
                f.dport,
                if f.limit { " -m limit --limit 3/sec" } else { "" },
            );
        }
        text += "COMMIT\n";
        text += &ruleset("FORWARD", &fw, &[], &[], policy_drop);
        let rs = parse(&text, Family::V4).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let mut q = query(Hook::Forward, dport);
        q.nat = true;
        let r = reach(&rs, &q);
        let tracer = Tracer::new(&rs);
        let addrs = probes();
        for &s in &addrs {
            for &d in &addrs {
                let mut p = Packet::new(6, s, d);
                p.sport = Some(40000);
                p.dport = Some(dport);
                let t = tracer.trace(&p, &TraceOptions::default());
                agrees(&r, s, d, &t, &text)?;
            }
        }
    }
}
