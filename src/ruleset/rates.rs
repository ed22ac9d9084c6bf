//! Packet rates and short histories per rule and per chain, carried from one snapshot to the next.
//!
//! Rules are matched between snapshots by content (table, chain, exact text, and which duplicate
//! it is), not by position, so inserting a rule above another does not scramble their rates. A
//! counter that went down (zeroed, or the rule was replaced) restarts its rate: never negative.

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
}

fn text_hash(text: &str) -> u64 {
    let mut h = FxHasher::default();
    text.hash(&mut h);
    h.finish()
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
        let secs = self
            .last
            .and_then(|l| at.duration_since(l).ok())
            .map(|d| d.as_secs_f64())
            .filter(|s| *s > 0.0);
        let mut memory = FxHashMap::default();
        let mut stats = FxHashMap::default();
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
                    memory.insert(key, mem);
                }
            }
        }
        self.memory = memory;
        self.stats = stats;
        self.last = Some(at);
    }
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
        let (r, delta, mut history) = match prev {
            Some(j) => {
                let p = old.counters[j];
                let history = match old_stat.rules.get_mut(j) {
                    Some(s) if c.packets >= p.packets => std::mem::take(&mut s.history),
                    _ => VecDeque::new(),
                };
                (
                    rate(c.packets, p.packets, secs),
                    c.packets.saturating_sub(p.packets),
                    history,
                )
            }
            None => (None, 0, VecDeque::new()),
        };
        if let Some(r) = r {
            history.push_back(r);
            while history.len() > HISTORY {
                history.pop_front();
            }
            total += r;
            any = true;
        }
        st.rules.push(RuleStat {
            rate: r,
            delta,
            history,
        });
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
}
