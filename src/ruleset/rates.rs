//! Packet rates and short histories per rule and per chain, carried from one snapshot to the next.
//!
//! Rules are matched between snapshots by content (table, chain, exact text, and which duplicate
//! it is), not by position, so inserting a rule above another does not scramble their rates. A
//! counter that went down (zeroed, or the rule was replaced) restarts its rate: never negative.
//!
//! Native nftables chains (read-only) have rates too (`NativeRates`): their rules are matched
//! by handle, which nf_tables keeps for a rule's whole life.

use super::{Counters, Family, Ruleset};
use rustc_hash::{FxHashMap, FxHasher};
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::time::SystemTime;

/// How many past rates a rule remembers for its sparkline.
pub const HISTORY: usize = 16;

/// What nfscope knows about one rule's traffic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleStat {
    /// Packets per second over the last interval; `None` for a rule first seen, or restarted.
    pub rate: Option<f64>,
    /// Packets counted since the previous snapshot (0 when unknown).
    pub delta: u64,
    /// Past rates, oldest first.
    pub history: VecDeque<f64>,
}

/// One chain's rule stats, aligned with its rules, plus the policy's rate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainStat {
    pub rules: Vec<RuleStat>,
    pub policy_rate: Option<f64>,
    /// Sum of the rule rates and the policy rate: how busy the chain is.
    pub rate: Option<f64>,
}

/// Identifies a chain across snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainKey {
    pub family: Family,
    pub table: String,
    pub chain: String,
}

/// What we remember of a chain between snapshots: each rule's identity and counters, aligned
/// with the stats (which own the histories).
#[derive(Debug, Clone, Default)]
struct ChainMemory {
    ids: Vec<(u64, u32)>,
    counters: Vec<Counters>,
    policy: Counters,
}

/// Keeps the previous snapshot's counters and turns each new snapshot into rates.
#[derive(Debug, Default)]
pub struct RateTracker {
    memory: FxHashMap<ChainKey, ChainMemory>,
    last: Option<SystemTime>,
    stats: FxHashMap<ChainKey, ChainStat>,
    /// The chains of the last update in their order, with their rule counts: what
    /// `update_counters` checks the rule sets it is given against.
    shape: Vec<(ChainKey, usize)>,
}

fn text_hash(text: &str) -> u64 {
    let mut h = FxHasher::default();
    text.hash(&mut h);
    h.finish()
}

/// The seconds from the last snapshot to `at`, when there was one and time moved forward.
fn seconds_since(last: Option<SystemTime>, at: SystemTime) -> Option<f64> {
    last.and_then(|l| at.duration_since(l).ok())
        .map(|d| d.as_secs_f64())
        .filter(|s| *s > 0.0)
}

fn rate(now: u64, before: u64, secs: Option<f64>) -> Option<f64> {
    match secs {
        Some(dt) if now >= before => Some((now - before) as f64 / dt),
        _ => None,
    }
}

impl RateTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The stats computed from the latest snapshot.
    pub fn chain(&self, key: &ChainKey) -> Option<&ChainStat> {
        self.stats.get(key)
    }

    /// Take a new snapshot of the given families, taken at `at`. Runs on the UI thread for
    /// every refresh, so it moves histories instead of copying them, and looks a rule up by
    /// content only when it is not where it was (most refreshes move nothing).
    pub fn update<'a>(&mut self, at: SystemTime, rulesets: impl IntoIterator<Item = &'a Ruleset>) {
        let secs = seconds_since(self.last, at);
        let mut memory = FxHashMap::default();
        let mut stats = FxHashMap::default();
        let mut shape = Vec::with_capacity(self.shape.len());
        for rs in rulesets {
            for table in &rs.tables {
                for chain in &table.chains {
                    let key = ChainKey {
                        family: rs.family,
                        table: table.name.clone(),
                        chain: chain.name.clone(),
                    };
                    let old = self.memory.remove(&key).unwrap_or_default();
                    let mut old_stat = self.stats.remove(&key).unwrap_or_default();
                    let (mem, st) =
                        track_chain(chain, &old, &mut old_stat, secs, self.last.is_some());
                    stats.insert(key.clone(), st);
                    memory.insert(key.clone(), mem);
                    shape.push((key, chain.rules.len()));
                }
            }
        }
        self.memory = memory;
        self.stats = stats;
        self.shape = shape;
        self.last = Some(at);
    }

    /// `update`, for rule sets that hold the very rules of the last update in the same order,
    /// only their counters moved: what a refresh that found nf_tables at the same generation
    /// reads. Each rule's stat is then updated where it is, without matching rules by content
    /// or building anything (~24 ms for 50,000 rules in 18,000 chains go to a few,
    /// docs/performance.md). The caller vouches for the rules' texts; chains that are not the
    /// last update's (by name, order and number of rules) go through `update` all the same.
    pub fn update_counters(&mut self, at: SystemTime, rulesets: &[&Ruleset]) {
        let chains = || {
            rulesets.iter().flat_map(|rs| {
                rs.tables
                    .iter()
                    .flat_map(move |t| t.chains.iter().map(move |c| (rs.family, t, c)))
            })
        };
        let same = chains().count() == self.shape.len()
            && chains().zip(&self.shape).all(|((f, t, c), (k, n))| {
                k.family == f && k.table == t.name && k.chain == c.name && *n == c.rules.len()
            });
        if !same {
            return self.update(at, rulesets.iter().copied());
        }
        let secs = self
            .last
            .and_then(|l| at.duration_since(l).ok())
            .map(|d| d.as_secs_f64())
            .filter(|s| *s > 0.0);
        let seen_before = self.last.is_some();
        for ((_, _, chain), (key, _)) in chains().zip(&self.shape) {
            let (Some(mem), Some(st)) = (self.memory.get_mut(key), self.stats.get_mut(key)) else {
                continue;
            };
            count_in_place(chain, mem, st, secs, seen_before);
        }
        self.last = Some(at);
    }
}

/// `track_chain` for a chain whose rules are those of its memory, in the same order: each
/// rule's stat and counters updated where they are.
fn count_in_place(
    chain: &super::Chain,
    mem: &mut ChainMemory,
    st: &mut ChainStat,
    secs: Option<f64>,
    seen_before: bool,
) {
    let mut total = 0.0;
    let mut any = false;
    for ((rule, p), s) in chain
        .rules
        .iter()
        .zip(mem.counters.iter_mut())
        .zip(st.rules.iter_mut())
    {
        let c = rule.counters.unwrap_or_default();
        // A counter that went down is another rule's, or zeroed: its history starts again.
        if c.packets < p.packets {
            s.history.clear();
        }
        s.rate = rate(c.packets, p.packets, secs);
        s.delta = c.packets.saturating_sub(p.packets);
        if let Some(r) = s.rate {
            s.history.push_back(r);
            while s.history.len() > HISTORY {
                s.history.pop_front();
            }
            total += r;
            any = true;
        }
        *p = c;
    }
    st.policy_rate = None;
    if chain.policy.is_some() && seen_before {
        st.policy_rate = rate(chain.counters.packets, mem.policy.packets, secs);
        if let Some(p) = st.policy_rate {
            total += p;
            any = true;
        }
    }
    mem.policy = chain.counters;
    st.rate = any.then_some(total);
}

/// One chain's new memory and stats from its old ones.
fn track_chain(
    chain: &super::Chain,
    old: &ChainMemory,
    old_stat: &mut ChainStat,
    secs: Option<f64>,
    seen_before: bool,
) -> (ChainMemory, ChainStat) {
    let n = chain.rules.len();
    let mut mem = ChainMemory {
        ids: Vec::with_capacity(n),
        counters: Vec::with_capacity(n),
        policy: chain.counters,
    };
    let mut st = ChainStat {
        rules: Vec::with_capacity(n),
        ..Default::default()
    };
    let mut occurrences: FxHashMap<u64, u32> = FxHashMap::default();
    // Built only when a rule is not at its old position.
    let mut by_id: Option<FxHashMap<(u64, u32), usize>> = None;
    let mut total = 0.0;
    let mut any = false;
    for (i, rule) in chain.rules.iter().enumerate() {
        let h = text_hash(&rule.text);
        let occ = occurrences.entry(h).or_insert(0);
        let id = (h, *occ);
        *occ += 1;
        let c = rule.counters.unwrap_or_default();
        let prev = if old.ids.get(i) == Some(&id) {
            Some(i)
        } else {
            by_id
                .get_or_insert_with(|| old.ids.iter().enumerate().map(|(j, id)| (*id, j)).collect())
                .get(&id)
                .copied()
        };
        let before = prev.map(|j| (old.counters[j].packets, old_stat.rules.get_mut(j)));
        let s = rule_stat(c.packets, before, secs);
        if let Some(r) = s.rate {
            total += r;
            any = true;
        }
        st.rules.push(s);
        mem.ids.push(id);
        mem.counters.push(c);
    }
    if chain.policy.is_some() && seen_before {
        st.policy_rate = rate(chain.counters.packets, old.policy.packets, secs);
        if let Some(p) = st.policy_rate {
            total += p;
            any = true;
        }
    }
    st.rate = any.then_some(total);
    (mem, st)
}

/// One rule's stat from its packets now and, when it was seen before, its packets then and its
/// old stat, whose history it takes over (unless the counter went down: zeroed, or another
/// rule).
fn rule_stat(
    now: u64,
    before: Option<(u64, Option<&mut RuleStat>)>,
    secs: Option<f64>,
) -> RuleStat {
    let (rate, delta, mut history) = match before {
        Some((then, old)) => {
            let history = match old {
                Some(s) if now >= then => std::mem::take(&mut s.history),
                _ => VecDeque::new(),
            };
            (rate(now, then, secs), now.saturating_sub(then), history)
        }
        None => (None, 0, VecDeque::new()),
    };
    if let Some(r) = rate {
        history.push_back(r);
        while history.len() > HISTORY {
            history.pop_front();
        }
    }
    RuleStat {
        rate,
        delta,
        history,
    }
}

/// Identifies a native nftables chain across snapshots: its family as nft names it (`inet`,
/// `ip`, `ip6`, `arp`, `bridge`, `netdev`), its table and its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NativeKey {
    pub family: String,
    pub table: String,
    pub chain: String,
}

impl std::fmt::Display for NativeKey {
    /// `inet fw input`, as nft names a chain.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.family, self.table, self.chain)
    }
}

/// One rule of a native chain as the tracker needs it: its handle and its counter's packets
/// (`None`: the rule has no counter, so no rate either).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeCount {
    pub handle: u64,
    pub packets: Option<u64>,
}

/// Rates of native nftables chains, snapshot to snapshot, like `RateTracker`'s of iptables
/// chains; a rule is the same rule while its handle is.
#[derive(Debug, Default)]
pub struct NativeRates {
    /// Per chain: each counted rule's handle, its packets and its place in the chain's stats.
    memory: FxHashMap<NativeKey, FxHashMap<u64, (u64, usize)>>,
    stats: FxHashMap<NativeKey, ChainStat>,
    last: Option<SystemTime>,
}

impl NativeRates {
    /// The stats computed from the latest snapshot, aligned with the chain's rules.
    pub fn chain(&self, key: &NativeKey) -> Option<&ChainStat> {
        self.stats.get(key)
    }

    /// Take a new snapshot of every native chain (each with its rules in order), taken at `at`.
    pub fn update<R>(&mut self, at: SystemTime, chains: impl IntoIterator<Item = (NativeKey, R)>)
    where
        R: IntoIterator<Item = NativeCount>,
    {
        let secs = seconds_since(self.last, at);
        let mut memory = FxHashMap::default();
        let mut stats = FxHashMap::default();
        for (key, rules) in chains {
            let old = self.memory.remove(&key).unwrap_or_default();
            let mut old_stat = self.stats.remove(&key).unwrap_or_default();
            let mut mem = FxHashMap::default();
            let mut st = ChainStat::default();
            let (mut total, mut any) = (0.0, false);
            for r in rules {
                // A rule without a counter has no rate.
                let s = match r.packets {
                    Some(now) => {
                        mem.insert(r.handle, (now, st.rules.len()));
                        let before = old
                            .get(&r.handle)
                            .map(|&(then, j)| (then, old_stat.rules.get_mut(j)));
                        rule_stat(now, before, secs)
                    }
                    None => RuleStat::default(),
                };
                if let Some(x) = s.rate {
                    total += x;
                    any = true;
                }
                st.rules.push(s);
            }
            st.rate = any.then_some(total);
            memory.insert(key.clone(), mem);
            stats.insert(key, st);
        }
        self.memory = memory;
        self.stats = stats;
        self.last = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::parse;
    use std::time::Duration;

    fn rs(body: &str) -> Ruleset {
        parse(
            &format!("*filter\n:INPUT ACCEPT [0:0]\n{body}COMMIT\n"),
            Family::V4,
        )
        .unwrap()
    }

    fn key() -> ChainKey {
        ChainKey {
            family: Family::V4,
            table: "filter".into(),
            chain: "INPUT".into(),
        }
    }

    fn rates(t: &RateTracker) -> Vec<Option<f64>> {
        t.chain(&key())
            .unwrap()
            .rules
            .iter()
            .map(|r| r.rate)
            .collect()
    }

    #[test]
    fn rates_follow_content_not_position() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut t = RateTracker::new();
        t.update(
            t0,
            [&rs(
                "[10:0] -A INPUT -p tcp -j ACCEPT\n[100:0] -A INPUT -p udp -j ACCEPT\n",
            )],
        );
        assert_eq!(rates(&t), [None, None]);
        // A new rule is inserted at the top; the old ones keep their identity.
        t.update(
            t0 + Duration::from_secs(2),
            [&rs("[5:0] -A INPUT -p icmp -j ACCEPT\n[30:0] -A INPUT -p tcp -j ACCEPT\n[100:0] -A INPUT -p udp -j ACCEPT\n")],
        );
        assert_eq!(rates(&t), [None, Some(10.0), Some(0.0)]);
        let st = t.chain(&key()).unwrap();
        assert_eq!(st.rules[1].delta, 20);
        assert_eq!(st.rules[1].history.len(), 1);
        assert_eq!(st.rate, Some(10.0));
    }

    #[test]
    fn zeroed_counter_restarts_and_is_never_negative() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut t = RateTracker::new();
        t.update(t0, [&rs("[10:0] -A INPUT -j ACCEPT\n")]);
        t.update(
            t0 + Duration::from_secs(1),
            [&rs("[20:0] -A INPUT -j ACCEPT\n")],
        );
        assert_eq!(rates(&t), [Some(10.0)]);
        t.update(
            t0 + Duration::from_secs(2),
            [&rs("[3:0] -A INPUT -j ACCEPT\n")],
        );
        assert_eq!(rates(&t), [None]);
        assert!(t.chain(&key()).unwrap().rules[0].history.is_empty());
        t.update(
            t0 + Duration::from_secs(3),
            [&rs("[7:0] -A INPUT -j ACCEPT\n")],
        );
        assert_eq!(rates(&t), [Some(4.0)]);
    }

    #[test]
    fn counters_in_place_agree_with_matching_by_content() {
        let t0 = SystemTime::UNIX_EPOCH;
        let set = |a: u64, b: u64, p: u64| {
            let mut r = parse(
                &format!(
                    "*filter\n:INPUT DROP [{p}:0]\n:T - [0:0]\n[{a}:0] -A INPUT -j T\n[{a}:0] -A INPUT -j T\n[{b}:0] -A T -j RETURN\nCOMMIT\n*nat\n:OUTPUT ACCEPT [0:0]\n[{b}:0] -A OUTPUT -j RETURN\nCOMMIT\n"
                ),
                Family::V4,
            )
            .unwrap();
            r.tables[0].chains[0].rules[1].counters = Some(Counters::new(a * 2, 0));
            r
        };
        let (mut by_content, mut in_place) = (RateTracker::new(), RateTracker::new());
        // Counters that go up, stand still, go down (zeroed), and time that stands still.
        for (i, (a, b, p, s)) in [
            (1, 5, 0, 0),
            (4, 9, 3, 2),
            (4, 9, 3, 3),
            (2, 20, 1, 4),
            (3, 20, 9, 4),
            (30, 25, 10, 7),
        ]
        .into_iter()
        .enumerate()
        {
            let rs = set(a, b, p);
            let at = t0 + Duration::from_secs(s);
            by_content.update(at, [&rs]);
            in_place.update_counters(at, &[&rs]);
            for chain in ["INPUT", "T"] {
                let k = ChainKey {
                    chain: chain.into(),
                    ..key()
                };
                assert_eq!(by_content.chain(&k), in_place.chain(&k), "step {i} {chain}");
            }
            let k = ChainKey {
                table: "nat".into(),
                chain: "OUTPUT".into(),
                ..key()
            };
            assert_eq!(by_content.chain(&k), in_place.chain(&k), "step {i} nat");
        }
        assert_eq!(
            in_place.chain(&key()).unwrap().rules[1].history.len(),
            1,
            "started again when the counter went down, then one rate"
        );
        // Another shape (a rule more) is matched by content, as `update` does.
        let other = rs("[9:0] -A INPUT -j ACCEPT\n");
        let at = t0 + Duration::from_secs(9);
        by_content.update(at, [&other]);
        in_place.update_counters(at, &[&other]);
        assert_eq!(by_content.chain(&key()), in_place.chain(&key()));
    }

    #[test]
    fn duplicates_are_told_apart() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut t = RateTracker::new();
        t.update(
            t0,
            [&rs("[1:0] -A INPUT -j ACCEPT\n[50:0] -A INPUT -j ACCEPT\n")],
        );
        t.update(
            t0 + Duration::from_secs(1),
            [&rs("[2:0] -A INPUT -j ACCEPT\n[60:0] -A INPUT -j ACCEPT\n")],
        );
        assert_eq!(rates(&t), [Some(1.0), Some(10.0)]);
    }

    #[test]
    fn native_rules_keep_their_rates_by_handle() {
        let t0 = SystemTime::UNIX_EPOCH;
        let key = NativeKey {
            family: "inet".into(),
            table: "fw".into(),
            chain: "input".into(),
        };
        let c = |handle, packets| NativeCount { handle, packets };
        let mut t = NativeRates::default();
        t.update(t0, [(key.clone(), vec![c(4, Some(10)), c(5, None)])]);
        assert_eq!(t.chain(&key).unwrap().rules[0].rate, None);
        // A rule inserted above (handle 9); handle 4 keeps its rate, the rule without a
        // counter has none.
        t.update(
            t0 + Duration::from_secs(2),
            [(key.clone(), vec![c(9, Some(1)), c(4, Some(30)), c(5, None)])],
        );
        let st = t.chain(&key).unwrap();
        let rates: Vec<_> = st.rules.iter().map(|r| r.rate).collect();
        assert_eq!(rates, [None, Some(10.0), None]);
        assert_eq!(st.rules[1].delta, 20);
        assert_eq!(st.rate, Some(10.0));
        // Reset (nft reset counters): the rate restarts, never negative.
        t.update(
            t0 + Duration::from_secs(3),
            [(key.clone(), vec![c(9, Some(1)), c(4, Some(2)), c(5, None)])],
        );
        let st = t.chain(&key).unwrap();
        assert_eq!(st.rules[1].rate, None);
        assert!(st.rules[1].history.is_empty());
        assert_eq!(st.rules[0].rate, Some(0.0));
        assert_eq!(key.to_string(), "inet fw input");
    }
}
