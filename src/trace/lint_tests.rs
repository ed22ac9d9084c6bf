//! The lint's findings on small hand-written rule sets, and its soundness against the tracer:
//! no packet of a rule reported shadowed ever matches it in a trace.

use super::*;
use crate::ruleset::parse;
use crate::trace::packet::has_ports;
use crate::trace::{Origin, StepKind, Tri};
use proptest::prelude::*;

fn rs(text: &str, family: Family) -> Ruleset {
    parse(text, family).expect("the test rule set parses")
}

fn v4(body: &str) -> Ruleset {
    rs(
        &format!(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{body}COMMIT\n"
        ),
        Family::V4,
    )
}

fn findings(sets: &[&Ruleset]) -> Vec<Finding> {
    let all = lint(sets, LintOptions::default());
    for s in sets {
        assert_sound(s, 300);
    }
    all
}

/// (kind, chain, rule) of every finding.
fn summary(f: &[Finding]) -> Vec<(&'static str, String, Option<usize>)> {
    f.iter()
        .map(|f| (f.kind.name(), f.chain.clone(), f.rule))
        .collect()
}

fn has(f: &[Finding], kind: Kind, chain: &str, rule: Option<usize>) -> bool {
    f.iter()
        .any(|x| x.kind == kind && x.chain == chain && x.rule == rule)
}

#[test]
fn shadowed_by_one_rule_and_by_a_union() {
    let r = v4(
        "-A INPUT -s 10.0.0.0/25 -p tcp -m tcp --dport 20:30 -j ACCEPT\n\
         -A INPUT -s 10.0.0.128/25 -p tcp -m multiport --dports 1:100 -j DROP\n\
         -A INPUT -s 10.0.0.0/24 -p tcp -m tcp --dport 22 -j REJECT\n\
         -A INPUT -s 10.0.0.0/24 -p tcp -m tcp --dport 25 -j ACCEPT\n\
         -A INPUT -p tcp -m tcp --dport 443 -j ACCEPT\n\
         -A INPUT -p tcp -m tcp --dport 443 -j ACCEPT\n",
    );
    let f = findings(&[&r]);
    let sh: Vec<_> = f.iter().filter(|f| f.kind == Kind::Shadowed).collect();
    // 3: port 22 of the /24 is covered by the two /25 rules together; 4: port 25 too (20:30
    // and 1:100); 6: the same as 5.
    let rules: Vec<Option<usize>> = sh.iter().map(|f| f.rule).collect();
    assert_eq!(rules, [Some(3), Some(4), Some(6)], "{:#?}", summary(&f));
    let by: Vec<Option<usize>> = sh[0].by.iter().map(|b| b.rule).collect();
    assert_eq!(by, [Some(1), Some(2)]);
    assert_eq!(
        sh[0].text.as_deref(),
        Some("-A INPUT -s 10.0.0.0/24 -p tcp -m tcp --dport 22 -j REJECT")
    );
    assert_eq!(sh[0].severity, Severity::Warning);
}

#[test]
fn partial_covers_are_not_shadowing() {
    let r = v4("-A INPUT -s 10.0.0.0/25 -p tcp -j ACCEPT\n\
         -A INPUT -s 10.0.0.0/24 -p tcp -j DROP\n\
         -A INPUT -p tcp --dport 22 -j ACCEPT\n\
         -A INPUT -p udp --dport 22 -j ACCEPT\n\
         -A INPUT -p tcp ! --dport 22 -j DROP\n\
         -A INPUT -p tcp -j ACCEPT\n");
    let f = findings(&[&r]);
    assert!(
        !f.iter().any(|f| f.kind == Kind::Shadowed),
        "{:#?}",
        summary(&f)
    );
}

#[test]
fn any_other_match_on_the_earlier_rule_means_no_cover() {
    for m in [
        "-m limit --limit 5/sec",
        "-m mark --mark 0x1",
        "-m recent --rcheck --name X",
        "-m addrtype --dst-type LOCAL",
        "-m conntrack --ctstate DNAT",
    ] {
        let r = v4(&format!(
            "-A INPUT -p tcp {m} -j ACCEPT\n-A INPUT -p tcp --dport 22 -j DROP\n"
        ));
        let f = findings(&[&r]);
        assert!(!has(&f, Kind::Shadowed, "INPUT", Some(2)), "{m}: {f:#?}");
    }
    // A comment is no condition.
    let r = v4(
        "-A INPUT -p tcp -m comment --comment \"all tcp\" -j ACCEPT\n\
         -A INPUT -p tcp --dport 22 -m limit --limit 1/s -j DROP\n",
    );
    let f = findings(&[&r]);
    assert!(has(&f, Kind::Shadowed, "INPUT", Some(2)), "{f:#?}");
}

#[test]
fn interfaces_states_and_ranges() {
    let r = v4("-A INPUT -i eth+ -j ACCEPT\n\
         -A INPUT -i eth0 -p tcp -j DROP\n\
         -A INPUT -i wan0 -p udp -j DROP\n\
         -A INPUT ! -i lo -m state --state NEW,INVALID -j DROP\n\
         -A INPUT ! -i lo -m conntrack --ctstate NEW -j ACCEPT\n\
         -A INPUT -i lo -j ACCEPT\n\
         -A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n\
         -A INPUT -i lo -s 127.0.0.1 -j DROP\n\
         -A INPUT -m iprange --src-range 10.0.0.0-10.0.0.255 -j DROP\n\
         -A INPUT -s 10.0.0.7 -p udp -j ACCEPT\n");
    let f = findings(&[&r]);
    let sh: Vec<Option<usize>> = f
        .iter()
        .filter(|f| f.kind == Kind::Shadowed)
        .map(|f| f.rule)
        .collect();
    // eth0 ⊂ eth+; wan0 is not; NEW from anything but lo is decided by rule 4; lo by rule 6;
    // 10.0.0.7 lies in the range.
    assert_eq!(
        sh,
        [Some(2), Some(5), Some(8), Some(10)],
        "{:#?}",
        summary(&f)
    );
}

#[test]
fn return_in_a_user_chain_covers_and_notrack_clears() {
    let r = v4(":U - [0:0]\n-A INPUT -j U\n\
         -A U -s 10.0.0.0/8 -j RETURN\n-A U -s 10.1.0.0/16 -j DROP\n");
    let f = findings(&[&r]);
    assert!(has(&f, Kind::Shadowed, "U", Some(2)), "{f:#?}");
    let r = v4(":U - [0:0]\n:N - [0:0]\n-A INPUT -j U\n\
         -A U -m state --state UNTRACKED -j RETURN\n-A U -j N\n-A U -m state --state UNTRACKED -j DROP\n\
         -A N -j MYSTERY_TARGET\n");
    let f = findings(&[&r]);
    assert!(!has(&f, Kind::Shadowed, "U", Some(3)), "{f:#?}");
}

#[test]
fn redundant_rules() {
    let r = v4(":U - [0:0]\n-A INPUT -j U\n\
         -A INPUT -p tcp --dport 80 -m mark --mark 0x1 -j ACCEPT\n\
         -A INPUT -p tcp --dport 80 -m mark --mark 0x1 -j ACCEPT\n\
         -A INPUT -p tcp --dport 22 -j ACCEPT\n\
         -A INPUT -p udp -j DROP\n\
         -A INPUT -p tcp -j ACCEPT\n\
         -A U -s 10.0.0.1 -j RETURN\n");
    let f = findings(&[&r]);
    // 3: the same as 2 (mark is no region, so not shadowed); 4: rule 6 accepts it anyway, and
    // udp's rule 5 does not meet it; 6: the policy accepts; U 1: the chain's end returns.
    assert!(
        has(&f, Kind::Redundant, "INPUT", Some(3)),
        "{:#?}",
        summary(&f)
    );
    assert!(
        has(&f, Kind::Redundant, "INPUT", Some(4)),
        "{:#?}",
        summary(&f)
    );
    assert!(
        has(&f, Kind::Redundant, "INPUT", Some(6)),
        "{:#?}",
        summary(&f)
    );
    assert!(has(&f, Kind::Redundant, "U", Some(1)), "{:#?}", summary(&f));
    assert!(
        !has(&f, Kind::Redundant, "INPUT", Some(5)),
        "{:#?}",
        summary(&f)
    );
    // Something in between that decides otherwise keeps it.
    let r = rs(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n\
         -A INPUT -s 10.0.0.0/8 -j DROP\n-A INPUT -p tcp -j ACCEPT\nCOMMIT\n",
        Family::V4,
    );
    let f = findings(&[&r]);
    assert!(!f.iter().any(|f| f.kind == Kind::Redundant), "{f:#?}");
    // A limited duplicate is not redundant: the second one can still match.
    let r = v4(
        "-A INPUT -m limit --limit 1/s -j LOG\n-A INPUT -m limit --limit 1/s -j DROP\n\
         -A INPUT -m limit --limit 1/s -j DROP\n",
    );
    let f = findings(&[&r]);
    assert!(!has(&f, Kind::Redundant, "INPUT", Some(3)), "{f:#?}");
}

#[test]
fn chains_nothing_uses_and_empty_targets() {
    let r = v4(
        ":A - [0:0]\n:B - [0:0]\n:C - [0:0]\n-A INPUT -j B\n-A INPUT -g C\n\
         -A A -j DROP\n-A C -j ACCEPT\n",
    );
    let f = findings(&[&r]);
    assert!(has(&f, Kind::UnusedChain, "A", None), "{f:#?}");
    assert!(has(&f, Kind::EmptyChainJump, "INPUT", Some(1)));
    assert!(!has(&f, Kind::EmptyChainJump, "INPUT", Some(2)));
    assert!(!has(&f, Kind::UnusedChain, "C", None));
    assert_eq!(Kind::UnusedChain.severity(), Severity::Info);
}

#[test]
fn no_hits_only_with_live_counters() {
    let r = rs(
        "*filter\n:INPUT ACCEPT [0:0]\n[0:0] -A INPUT -p tcp -j ACCEPT\n[5:300] -A INPUT -j DROP\nCOMMIT\n",
        Family::V4,
    );
    assert!(lint(&[&r], LintOptions::default()).is_empty());
    let f = lint(
        &[&r],
        LintOptions {
            counters: true,
            ..LintOptions::default()
        },
    );
    assert_eq!(summary(&f), [("no_hits", "INPUT".to_string(), Some(1))]);
    assert!(f[0].message.contains("since the counters were last zeroed"));
    assert_eq!(f[0].severity, Severity::Info);
}

#[test]
fn drop_policy_without_established_invalid_and_log() {
    let r = rs(
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:LOGDROP - [0:0]\n\
         -A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -s 10.0.0.0/8 -j DROP\n\
         -A INPUT -m state --state INVALID -j ACCEPT\n\
         -A FORWARD -j LOGDROP\n\
         -A LOGDROP -j LOG --log-prefix \"drop \"\n-A LOGDROP -j DROP\n\
         -A OUTPUT -j LOG\nCOMMIT\n",
        Family::V4,
    );
    let f = findings(&[&r]);
    let no_est: Vec<_> = f.iter().filter(|f| f.kind == Kind::NoEstablished).collect();
    assert_eq!(no_est.len(), 2, "{:#?}", summary(&f));
    assert_eq!(
        (no_est[0].chain.as_str(), no_est[0].rule),
        ("INPUT", Some(3))
    );
    assert_eq!(
        (no_est[1].chain.as_str(), no_est[1].rule),
        ("FORWARD", None)
    );
    assert!(has(&f, Kind::AcceptInvalid, "INPUT", Some(4)));
    assert!(has(&f, Kind::LogWithoutLimit, "LOGDROP", Some(1)));
    // OUTPUT's policy is ACCEPT: its LOG is nobody's business.
    assert!(!has(&f, Kind::LogWithoutLimit, "OUTPUT", Some(1)));
    // A host that forwards nothing (FORWARD DROP, no rule accepting anything): no warning.
    let host = rs(
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         -A FORWARD -j LOG --log-prefix \"fwd \"\nCOMMIT\n",
        Family::V4,
    );
    let f = findings(&[&host]);
    assert!(
        !f.iter().any(|f| f.kind == Kind::NoEstablished),
        "{:#?}",
        summary(&f)
    );
    // With the ESTABLISHED accept first (here in a chain jumped to), and a limited LOG: quiet.
    let r = rs(
        "*filter\n:INPUT DROP [0:0]\n:S - [0:0]\n-A INPUT -j S\n\
         -A INPUT -m limit --limit 3/min -j LOG\nCOMMIT\n",
        Family::V4,
    );
    let r = {
        let mut r = r;
        let t = rs(
            "*filter\n:INPUT DROP [0:0]\n:S - [0:0]\n-A INPUT -j S\n\
             -A INPUT -m limit --limit 3/min -j LOG\n\
             -A S -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n",
            Family::V4,
        );
        r.tables = t.tables;
        r
    };
    let f = findings(&[&r]);
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn ports_open_in_one_family_only() {
    let a = rs(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT\n\
         -A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -p tcp --dport 443 -j ACCEPT\n\
         -A INPUT -p udp --dport 53 -m limit --limit 9/s -j ACCEPT\nCOMMIT\n",
        Family::V4,
    );
    let b = rs(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT\n\
         -A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
        Family::V6,
    );
    let f = findings(&[&a, &b]);
    let par: Vec<_> = f.iter().filter(|f| f.kind == Kind::Parity).collect();
    // 443 only; 53 is only maybe accepted (the limit) in IPv4.
    assert_eq!(par.len(), 1, "{f:#?}");
    assert_eq!(par[0].family, Family::V4);
    assert_eq!(par[0].rule, Some(3));
    assert!(
        par[0].message.contains("tcp port 443"),
        "{}",
        par[0].message
    );
    assert_eq!(par[0].by[0].family, Family::V6);
    assert_eq!(par[0].by[0].rule, None);
    // One family alone: no parity.
    assert!(findings(&[&a]).iter().all(|f| f.kind != Kind::Parity));

    // A rule that names this machine's address counts once the address is known.
    let a = rs(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT\n\
         -A INPUT -d 203.0.113.2/32 -p tcp --dport 8443 -j ACCEPT\nCOMMIT\n",
        Family::V4,
    );
    let b = rs(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT\nCOMMIT\n",
        Family::V6,
    );
    let parity = |opts: LintOptions| -> Vec<Finding> {
        lint(&[&a, &b], opts)
            .into_iter()
            .filter(|f| f.kind == Kind::Parity)
            .collect()
    };
    assert!(parity(LintOptions::default()).is_empty());
    let locals = [
        "203.0.113.2/24%wan0",
        "2001:db8:ffff::2/64%wan0",
        "127.0.0.1/8%lo",
    ]
    .iter()
    .map(|l| crate::trace::LocalAddr::parse(l).unwrap())
    .collect();
    let found = parity(LintOptions {
        counters: false,
        locals,
    });
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].message.contains("tcp port 8443"),
        "{}",
        found[0].message
    );
}

#[test]
fn by_rule_index_and_no_panic_on_odd_input() {
    let r = v4(
        "-A INPUT -j ACCEPT\n-A INPUT -s ::1 -j DROP\n-A INPUT -i + -j DROP\n\
         -A INPUT -p all -j DROP\n-A INPUT ! -p all -j DROP\n-A INPUT -s 0.0.0.0/0 -j DROP\n",
    );
    let f = findings(&[&r]);
    let map = findings_by_rule(&f);
    assert!(map.contains_key(&(Family::V4, "filter".into(), "INPUT".into(), 2)));
    let v6 = rs(
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s ::/0 -j ACCEPT\n-A INPUT -d ffff::/16 -j DROP\nCOMMIT\n",
        Family::V6,
    );
    let f = findings(&[&v6]);
    assert!(has(&f, Kind::Shadowed, "INPUT", Some(2)), "{f:#?}");
}

// ---------------------------------------------------------------------------------------------
// Soundness: packets built from a shadowed rule's own region never match it in a trace.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn wide(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }

    /// A value of `s` (its ends more often than not), or `None` for an empty set.
    fn pick(&mut self, s: &Set) -> Option<u128> {
        let r = s.ranges();
        let &(lo, hi) = r.get((self.next() % r.len().max(1) as u64) as usize)?;
        Some(match self.next() % 4 {
            0 => lo,
            1 => hi,
            _ => {
                let span = hi - lo;
                if span == u128::MAX {
                    self.wide()
                } else {
                    lo + self.wide() % (span + 1)
                }
            }
        })
    }
}

fn ip_of(family: Family, n: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(std::net::Ipv4Addr::from(n as u32)),
        Family::V6 => IpAddr::V6(std::net::Ipv6Addr::from(n)),
    }
}

/// Every rule `lint` reports shadowed, traced with `samples` packets from its region: none may
/// match it. Returns how many samples reached the rule's chain (so a test can check it is not
/// vacuous).
fn assert_sound(rs: &Ruleset, samples: usize) -> usize {
    let prep = Prepared::new(rs);
    let tracer = Tracer::new(rs);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut reached = 0;
    for id in TableId::ALL {
        let Some(pt) = prep.tables[id.index()].as_ref() else {
            continue;
        };
        for pc in &pt.chains {
            let shadowed = shadowed_in(rs.family, pt, pc);
            if shadowed.is_empty() {
                continue;
            }
            let shapes = chain_shapes(rs.family, pc);
            let names = iface_names(rs.family, pc);
            for (ri, _) in &shadowed {
                let reg = &shapes[*ri].region.0;
                for _ in 0..samples {
                    let (Some(proto), Some(src), Some(dst)) = (
                        rng.pick(&reg[PROTO]),
                        rng.pick(&reg[SRC]),
                        rng.pick(&reg[DST]),
                    ) else {
                        break;
                    };
                    let (src, dst) = (ip_of(rs.family, src), ip_of(rs.family, dst));
                    let mut p = Packet::new(proto as u8, src, dst);
                    if has_ports(proto as u8) {
                        let ports = Set::range(0, 65535);
                        let sp = reg[SPORT].intersect(&ports);
                        let dp = reg[DPORT].intersect(&ports);
                        let (Some(s), Some(d)) = (rng.pick(&sp), rng.pick(&dp)) else {
                            continue;
                        };
                        p.sport = Some(s as u16);
                        p.dport = Some(d as u16);
                    }
                    let iif = rng.pick(&reg[IIF]).and_then(|i| names[i as usize].clone());
                    let oif = rng.pick(&reg[OIF]).and_then(|i| names[i as usize].clone());
                    let (Some(st), Some(frag)) = (rng.pick(&reg[STATE]), rng.pick(&reg[FRAG]))
                    else {
                        continue;
                    };
                    p.state = CtState::ALL[st as usize];
                    p.fragment = frag == 1;
                    let chain = pc.name.as_ref();
                    let mut opts = TraceOptions::default();
                    if matches!(chain, "OUTPUT" | "POSTROUTING") && iif.is_none() {
                        p.origin = Origin::Local;
                        p.out_iface = oif;
                    } else {
                        // Without a device name there is no network packet to send.
                        let Some(i) = iif else { continue };
                        p.in_iface = Some(i);
                        if chain == "INPUT" || chain == "PREROUTING" {
                            if let Ok(l) = LocalAddr::parse(&dst.to_string()) {
                                opts.local_addrs.push(l);
                            }
                        } else {
                            p.out_iface = oif;
                        }
                    }
                    let t = tracer.trace(&p, &opts);
                    for path in &t.paths {
                        let mut here = false;
                        for s in &path.steps {
                            if s.table != Some(id) || s.chain.as_deref() != Some(chain) {
                                continue;
                            }
                            here = true;
                            if s.rule == Some(ri + 1)
                                && let StepKind::Rule {
                                    matched, assumed, ..
                                } = &s.kind
                            {
                                assert!(
                                    *matched != Tri::Yes && *assumed != Some(true),
                                    "rule {} of {chain} was reported shadowed but matched {p}:\n{}",
                                    ri + 1,
                                    t.summary()
                                );
                            }
                        }
                        if here {
                            reached += 1;
                        }
                    }
                }
            }
        }
    }
    reached
}

#[test]
fn soundness_samples_reach_the_chain() {
    let r = v4("-A FORWARD -s 10.0.0.0/25 -p tcp -j ACCEPT\n\
         -A FORWARD -s 10.0.0.128/25 -p tcp -j DROP\n\
         -A FORWARD -s 10.0.0.0/24 -d 192.168.1.0/24 -p tcp --dport 22 -j ACCEPT\n");
    assert!(
        lint(&[&r], LintOptions::default())
            .iter()
            .any(|f| f.kind == Kind::Shadowed)
    );
    assert!(assert_sound(&r, 200) > 100);
}

const NETS: [&str; 6] = [
    "10.0.0.0/8",
    "10.0.0.0/24",
    "10.0.0.0/25",
    "10.0.0.128/25",
    "10.1.0.0/16",
    "192.168.0.0/16",
];
const PORTS: [u16; 6] = [20, 22, 25, 80, 443, 1000];

fn arb_rule() -> impl Strategy<Value = String> {
    (
        proptest::option::of(0..NETS.len()),
        proptest::option::of(0..NETS.len()),
        proptest::option::of((0..2usize, 0..PORTS.len(), 0..PORTS.len(), any::<bool>())),
        proptest::option::of(prop_oneof![Just("eth0"), Just("eth+"), Just("wan0")]),
        prop_oneof![Just("ACCEPT"), Just("DROP"), Just("REJECT"), Just("LOG")],
    )
        .prop_map(|(s, d, p, i, t)| {
            let mut r = String::from("-A FORWARD");
            if let Some(s) = s {
                r.push_str(&format!(" -s {}", NETS[s]));
            }
            if let Some(d) = d {
                r.push_str(&format!(" -d {}", NETS[d]));
            }
            if let Some(i) = i {
                r.push_str(&format!(" -i {i}"));
            }
            if let Some((proto, a, b, neg)) = p {
                let name = ["tcp", "udp"][proto];
                let (lo, hi) = (PORTS[a].min(PORTS[b]), PORTS[a].max(PORTS[b]));
                let bang = if neg { "! " } else { "" };
                r.push_str(&format!(" -p {name} -m {name} {bang}--dport {lo}:{hi}"));
            }
            r.push_str(&format!(" -j {t}\n"));
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn shadowed_rules_never_match_in_a_trace(rules in proptest::collection::vec(arb_rule(), 2..9)) {
        let r = v4(&rules.concat());
        assert_sound(&r, 60);
    }
}
