//! The demo world: the bundled rule sets (assets/demo-v4.rules, assets/demo-v6.rules) and a
//! small native nftables table beside them (`inet fw`, read-only), with counters that advance
//! plausibly, so every live feature can be seen without root or a kernel. Deterministic: the
//! same steps give the same counters, which keeps screen tests stable.

use super::native::{NativeChain, NativeRule, NativeSet, NativeTable};
use super::{FamilyData, Origin, RulesetSnapshot};
use crate::ruleset::{self, Counters, Family, Ruleset};
use std::time::{Duration, SystemTime};

pub const DEMO_V4: &str = include_str!("../../assets/demo-v4.rules");
pub const DEMO_V6: &str = include_str!("../../assets/demo-v6.rules");

/// A small deterministic pseudo-random generator (xorshift64*); the demo needs no better.
#[derive(Debug, Clone)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A float in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer in [0, n).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// How a rule's counter moves: mean packets per second, mean packet size, and burstiness (the
/// chance, per step, that it sees no traffic at all).
#[derive(Debug, Clone, Copy)]
struct Flow {
    pps: f64,
    size: f64,
    idle: f64,
}

/// Guess a plausible traffic shape from what the rule says.
fn flow_for(text: &str, seed: u64) -> Flow {
    let t = text.to_ascii_uppercase();
    let mut r = Rng(seed | 1);
    let spread = 0.5 + r.unit();
    let (pps, size, idle) =
        if t.contains("RELATED,ESTABLISHED") || t.contains("ESTABLISHED,RELATED") {
            (1800.0, 900.0, 0.0)
        } else if t.contains("-I LO") || t.contains("-O LO") {
            (120.0, 300.0, 0.1)
        } else if t.contains("INVALID") {
            (0.8, 70.0, 0.6)
        } else if t.contains("LOG") || t.contains("RECENT") {
            (0.3, 60.0, 0.7)
        } else if t.contains("REJECT") || t.contains("DROP") {
            (4.0, 64.0, 0.3)
        } else if t.contains("DNAT") || t.contains("MASQUERADE") || t.contains("SNAT") {
            (6.0, 60.0, 0.2)
        } else if t.contains("--DPORT 22") || t.contains("DPORT 2222") {
            (0.5, 60.0, 0.5)
        } else if t.contains("443") || t.contains("80") {
            (25.0, 74.0, 0.1)
        } else if t.contains("ICMP") {
            (1.5, 84.0, 0.3)
        } else if t.contains("53") {
            (12.0, 72.0, 0.1)
        } else {
            (2.0, 120.0, 0.5)
        };
    Flow {
        pps: pps * spread,
        size,
        idle,
    }
}

fn hash(s: &str) -> u64 {
    // FNV-1a: stable across runs and platforms, unlike std's RandomState.
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The demo world shared between its source thread and edit mode's commit (which changes its
/// rule sets in memory, so the demo shows a whole commit without root).
pub type SharedDemo = std::sync::Arc<std::sync::Mutex<DemoWorld>>;

/// The demo's rule sets and the traffic that moves their counters.
pub struct DemoWorld {
    v4: Ruleset,
    v6: Ruleset,
    native: Vec<NativeTable>,
    rng: Rng,
    generation: u64,
    clock: SystemTime,
}

impl Default for DemoWorld {
    fn default() -> Self {
        Self::new()
    }
}

impl DemoWorld {
    pub fn new() -> Self {
        // The assets are part of the binary and covered by tests; a broken one is a build bug, so
        // fall back to an empty set rather than panic at a user.
        let load = |text: &str, f| ruleset::parse(text, f).unwrap_or_else(|_| Ruleset::empty(f));
        DemoWorld {
            v4: load(DEMO_V4, Family::V4),
            v6: load(DEMO_V6, Family::V6),
            native: demo_native(),
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            generation: 0,
            clock: SystemTime::now(),
        }
    }

    /// Fix the clock the snapshots carry (screen tests want a fixed time).
    pub fn with_clock(mut self, t: SystemTime) -> Self {
        self.clock = t;
        self
    }

    /// Let `dt` of traffic pass.
    pub fn advance(&mut self, dt: Duration) {
        let secs = dt.as_secs_f64();
        for rs in [&mut self.v4, &mut self.v6] {
            let v6 = rs.family == Family::V6;
            for table in &mut rs.tables {
                for chain in &mut table.chains {
                    let mut seen = 0u64;
                    for rule in &mut chain.rules {
                        let seed = hash(&rule.text) ^ hash(&chain.name) ^ hash(&table.name);
                        let mut flow = flow_for(&rule.text, seed);
                        if v6 {
                            flow.pps *= 0.35;
                        }
                        let add = step(&mut self.rng, flow, secs);
                        let c = rule.counters.get_or_insert_with(Counters::default);
                        c.packets = c.packets.saturating_add(add.0);
                        c.bytes = c.bytes.saturating_add(add.1);
                        seen += add.0;
                    }
                    if chain.policy.is_some() {
                        // Packets that fall through every rule meet the policy.
                        let flow = Flow {
                            pps: 3.0 + (seen as f64).sqrt() * 0.05,
                            size: 90.0,
                            idle: 0.3,
                        };
                        let add = step(&mut self.rng, flow, secs);
                        chain.counters.packets = chain.counters.packets.saturating_add(add.0);
                        chain.counters.bytes = chain.counters.bytes.saturating_add(add.1);
                    }
                }
            }
        }
        for t in self.native.iter_mut().filter(|t| !t.dormant) {
            for c in &mut t.chains {
                for r in &mut c.rules {
                    let (Some(p), Some(b)) = (&mut r.packets, &mut r.bytes) else {
                        continue;
                    };
                    let seed = hash(&r.text) ^ hash(&c.name) ^ hash(&t.name);
                    let add = step(&mut self.rng, flow_for(&r.text, seed), secs);
                    *p = p.saturating_add(add.0);
                    *b = b.saturating_add(add.1);
                }
            }
        }
        self.clock += dt;
    }

    /// Both rule sets as they are now.
    pub fn rulesets(&self) -> Vec<Ruleset> {
        vec![self.v4.clone(), self.v6.clone()]
    }

    /// Replace one family's rule set (a commit in the demo). Rules without counters start at
    /// zero, so that traffic moves them like the others.
    pub fn set_ruleset(&mut self, mut rs: Ruleset) {
        for rule in rs
            .tables
            .iter_mut()
            .flat_map(|t| &mut t.chains)
            .flat_map(|c| &mut c.rules)
        {
            rule.counters.get_or_insert_with(Counters::default);
        }
        match rs.family {
            Family::V4 => self.v4 = rs,
            Family::V6 => self.v6 = rs,
        }
    }

    /// The world as it is now.
    pub fn snapshot(&mut self) -> RulesetSnapshot {
        self.generation += 1;
        RulesetSnapshot {
            generation: self.generation,
            origin: Origin::Demo,
            taken_at: self.clock,
            took: Duration::from_millis(3),
            v4: FamilyData::Loaded(self.v4.clone()),
            v6: FamilyData::Loaded(self.v6.clone()),
            nft_generation: None,
            warnings: super::native::warning(&self.native, &[&self.v4, &self.v6])
                .into_iter()
                .collect(),
            native: self.native.clone(),
            changed_by: None,
        }
    }
}

/// The demo's native nftables tables: `inet fw`, an input chain with policy drop beside the
/// iptables rules (a rule without a counter, one that looks up a set, a jump to a chain of
/// its own), and a dormant `ip6 quarantine`, as `nft -a -s list table` would print them.
fn demo_native() -> Vec<NativeTable> {
    let rule = |handle, text: &str, counted: bool| NativeRule {
        handle,
        text: text.to_string(),
        packets: counted.then_some(0),
        bytes: counted.then_some(0),
    };
    let base = |name: &str, hook: &str, priority, policy: &str, rules| NativeChain {
        name: name.to_string(),
        kind: Some("filter".into()),
        hook: Some(hook.to_string()),
        priority: Some(priority),
        policy: Some(policy.to_string()),
        rules,
    };
    vec![
        NativeTable {
            family: "inet".into(),
            name: "fw".into(),
            dormant: false,
            flags: Vec::new(),
            sets: vec![NativeSet {
                name: "blocklist".into(),
                kind: "set",
                key: "ipv4_addr".into(),
                flags: vec!["interval"],
                elements: vec!["198.51.100.0/24".into(), "203.0.113.66".into()],
            }],
            chains: vec![
                base(
                    "input",
                    "input",
                    0,
                    "drop",
                    vec![
                        rule(4, "iif \"lo\" accept", false),
                        rule(5, "ct state established,related counter accept", true),
                        rule(6, "ip saddr @blocklist counter drop", true),
                        rule(7, "tcp dport { 22, 443 } counter accept", true),
                        rule(8, "jump icmp_in", false),
                    ],
                ),
                NativeChain {
                    name: "icmp_in".into(),
                    kind: None,
                    hook: None,
                    priority: None,
                    policy: None,
                    rules: vec![
                        rule(
                            9,
                            "icmp type echo-request limit rate 5/second counter accept",
                            true,
                        ),
                        rule(
                            10,
                            "icmpv6 type { nd-neighbor-solicit, nd-router-advert } counter accept",
                            true,
                        ),
                    ],
                },
            ],
        },
        NativeTable {
            family: "ip6".into(),
            name: "quarantine".into(),
            dormant: true,
            flags: vec!["dormant"],
            sets: Vec::new(),
            chains: vec![base("forward", "forward", 0, "drop", Vec::new())],
        },
    ]
}

/// Packets and bytes a flow adds in `secs`.
fn step(rng: &mut Rng, flow: Flow, secs: f64) -> (u64, u64) {
    if rng.unit() < flow.idle {
        return (0, 0);
    }
    let jitter = 0.4 + 1.2 * rng.unit();
    let packets = (flow.pps * secs * jitter).round() as u64;
    let size = flow.size * (0.7 + 0.6 * rng.unit());
    (packets, (packets as f64 * size).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_parse() {
        for (text, f) in [(DEMO_V4, Family::V4), (DEMO_V6, Family::V6)] {
            let rs = ruleset::parse(text, f).unwrap();
            assert!(
                rs.rule_count() > 20,
                "{f:?} demo has {} rules",
                rs.rule_count()
            );
        }
    }

    #[test]
    fn counters_only_grow_and_some_move() {
        let mut w = DemoWorld::new();
        let before = w.snapshot();
        w.advance(Duration::from_secs(1));
        let after = w.snapshot();
        let total = |s: &RulesetSnapshot| -> u64 {
            s.v4.ruleset()
                .unwrap()
                .tables
                .iter()
                .flat_map(|t| &t.chains)
                .flat_map(|c| &c.rules)
                .map(|r| r.packets())
                .sum()
        };
        assert!(total(&after) > total(&before));
        assert_eq!(after.generation, before.generation + 1);
    }

    #[test]
    fn deterministic() {
        let run = || {
            let mut w = DemoWorld::new().with_clock(SystemTime::UNIX_EPOCH);
            w.advance(Duration::from_secs(1));
            w.snapshot()
        };
        assert_eq!(run(), run());
    }
}
