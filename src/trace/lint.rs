//! `nfscope lint`: what is wrong or suspicious in a rule set, found for all packets at once on
//! the tracer's compiled model (docs/analysis.md, "Lint", has the exact semantics).
//!
//! Shadowing and redundancy are decided on regions: a rule's conditions over the address,
//! port, protocol, interface, conntrack state and fragment dimensions are a union of boxes,
//! each dimension a set of integer intervals (interfaces become the finitely many classes of
//! names the chain's patterns can tell apart). A rule whose every condition is one of those is
//! exact; any other condition (a rate limit, a mark, a recent list...) makes it inexact: its
//! region then over-approximates what it matches. A rule is reported shadowed only when its
//! over-approximation lies inside the union of exact regions of earlier rules with a final
//! verdict, so the report is never a guess.

use super::compile::{Action, CT_DNAT, CT_SNAT, Cond, Dir, PChain, PTable, Policy, PortDir};
use super::compile::{Prepared, ct_bit};
use super::packet::{CtState, LocalAddr, Packet};
use super::{Step, TableId, TraceOptions, Tracer, Verdict};
use crate::ruleset::{Family, Rule, Ruleset, Table};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// How much a finding matters. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a finding is about. The JSON names (snake case) are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Earlier rules with a final verdict decide every packet the rule could match.
    Shadowed,
    /// Removing the rule changes no verdict.
    Redundant,
    /// A user chain nothing jumps or goes to.
    UnusedChain,
    /// A jump or goto to a user chain with no rules.
    EmptyChainJump,
    /// A rule whose packet counter is 0 (kernel counters only).
    NoHits,
    /// A DROP-policy filter INPUT/FORWARD chain drops before accepting ESTABLISHED packets.
    NoEstablished,
    /// A rule accepts packets in the INVALID conntrack state.
    AcceptInvalid,
    /// LOG without a limit right before a DROP, a REJECT or a DROP policy.
    LogWithoutLimit,
    /// A port accepted for new connections in one family and dropped in the other.
    Parity,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Shadowed => "shadowed",
            Kind::Redundant => "redundant",
            Kind::UnusedChain => "unused_chain",
            Kind::EmptyChainJump => "empty_chain_jump",
            Kind::NoHits => "no_hits",
            Kind::NoEstablished => "no_established",
            Kind::AcceptInvalid => "accept_invalid",
            Kind::LogWithoutLimit => "log_without_limit",
            Kind::Parity => "parity",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Kind::Shadowed | Kind::NoEstablished | Kind::AcceptInvalid | Kind::Parity => {
                Severity::Warning
            }
            Kind::Redundant
            | Kind::UnusedChain
            | Kind::EmptyChainJump
            | Kind::NoHits
            | Kind::LogWithoutLimit => Severity::Info,
        }
    }
}

/// Another rule a finding names (the rules that shadow one, the family a port is open in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub family: Family,
    pub table: String,
    pub chain: String,
    /// 1-based; `None` for a chain's policy.
    pub rule: Option<usize>,
    /// The save line (`-A CHAIN ...`); `None` for a policy.
    pub text: Option<String>,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    pub family: Family,
    pub table: String,
    pub chain: String,
    /// 1-based rule number; `None` when the finding is about the chain (or its policy).
    pub rule: Option<usize>,
    /// The rule's save line (`-A CHAIN ...`).
    pub text: Option<String>,
    pub by: Vec<RuleRef>,
    pub message: String,
}

impl Finding {
    /// "IPv4 filter INPUT rule 5" or "IPv4 filter chain LOGDROP".
    pub fn place(&self) -> String {
        match self.rule {
            Some(n) => format!(
                "{} {} {} rule {n}",
                self.family.label(),
                self.table,
                self.chain
            ),
            None => format!(
                "{} {} chain {}",
                self.family.label(),
                self.table,
                self.chain
            ),
        }
    }
}

/// What the lint may look at besides the rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LintOptions {
    /// The counters are the kernel's (live): rules with 0 packets are reported (`no_hits`).
    pub counters: bool,
    /// This machine's addresses, when known: the parity check's packets go to the first one of
    /// each family that is not loopback (else to a documentation address).
    pub locals: Vec<LocalAddr>,
}

/// Every finding in these rule sets (one per family), in family, table, chain, rule order.
pub fn lint(rulesets: &[&Ruleset], opts: LintOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    for rs in rulesets {
        lint_family(rs, &opts, &mut out);
    }
    let v4 = rulesets.iter().find(|r| r.family == Family::V4);
    let v6 = rulesets.iter().find(|r| r.family == Family::V6);
    if let (Some(v4), Some(v6)) = (v4, v6) {
        parity(v4, v6, &opts.locals, &mut out);
    }
    out
}

/// Where a rule is: (family, table, chain, 0-based index).
pub type RuleKey = (Family, String, String, usize);

/// The findings about each rule (the rule they are on, not the rules they name in `by`).
pub fn findings_by_rule(findings: &[Finding]) -> HashMap<RuleKey, Vec<&Finding>> {
    let mut map: HashMap<RuleKey, Vec<&Finding>> = HashMap::new();
    for f in findings {
        if let Some(n) = f.rule.filter(|&n| n > 0) {
            map.entry((f.family, f.table.clone(), f.chain.clone(), n - 1))
                .or_default()
                .push(f);
        }
    }
    map
}

fn save_line(chain: &str, r: &Rule) -> String {
    format!("-A {chain} {}", r.text)
}

struct Ctx<'a> {
    family: Family,
    table: &'a Table,
    out: &'a mut Vec<Finding>,
}

impl Ctx<'_> {
    fn rule_ref(&self, chain: usize, rule: Option<usize>) -> RuleRef {
        let c = &self.table.chains[chain];
        RuleRef {
            family: self.family,
            table: self.table.name.clone(),
            chain: c.name.clone(),
            rule: rule.map(|i| i + 1),
            text: rule
                .and_then(|i| c.rules.get(i))
                .map(|r| save_line(&c.name, r)),
        }
    }

    fn push(
        &mut self,
        kind: Kind,
        chain: usize,
        rule: Option<usize>,
        by: Vec<RuleRef>,
        message: String,
    ) {
        let r = self.rule_ref(chain, rule);
        self.out.push(Finding {
            kind,
            severity: kind.severity(),
            family: self.family,
            table: r.table,
            chain: r.chain,
            rule: r.rule,
            text: r.text,
            by,
            message,
        });
    }
}

fn lint_family(rs: &Ruleset, opts: &LintOptions, out: &mut Vec<Finding>) {
    let prep = Prepared::new(rs);
    for table in &rs.tables {
        let Some(id) = TableId::from_name(&table.name) else {
            continue;
        };
        let Some(pt) = prep.tables[id.index()].as_ref() else {
            continue;
        };
        let mut cx = Ctx {
            family: rs.family,
            table,
            out,
        };
        chains_used(&mut cx, pt);
        for (ci, pc) in pt.chains.iter().enumerate() {
            let start = cx.out.len();
            regions_of_chain(&mut cx, pt, ci, pc);
            hygiene(&mut cx, id, pt, ci, pc);
            if opts.counters {
                for (ri, r) in table.chains[ci].rules.iter().enumerate() {
                    if r.counters.is_some_and(|c| c.packets == 0) {
                        cx.push(
                            Kind::NoHits,
                            ci,
                            Some(ri),
                            Vec::new(),
                            "0 packets since the counters were last zeroed (or the rule was added)"
                                .into(),
                        );
                    }
                }
            }
            cx.out[start..].sort_by_key(|f| f.rule);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Chains nothing uses, jumps to empty chains.

fn chains_used(cx: &mut Ctx, pt: &PTable) {
    let mut refs = vec![0usize; pt.chains.len()];
    for c in &pt.chains {
        for r in &c.rules {
            if let Action::Jump(i) | Action::Goto(i) = r.action
                && let Some(n) = refs.get_mut(i as usize)
            {
                *n += 1;
            }
        }
    }
    for (ci, c) in pt.chains.iter().enumerate() {
        if c.policy.is_none() && refs[ci] == 0 {
            let n = c.rules.len();
            cx.push(
                Kind::UnusedChain,
                ci,
                None,
                Vec::new(),
                format!(
                    "no rule jumps or goes to the user chain {} ({n} {}): its rules never run",
                    c.name,
                    if n == 1 { "rule" } else { "rules" }
                ),
            );
        }
    }
    for (ci, c) in pt.chains.iter().enumerate() {
        for (ri, r) in c.rules.iter().enumerate() {
            let (Action::Jump(t) | Action::Goto(t)) = r.action else {
                continue;
            };
            let Some(target) = pt.chains.get(t as usize) else {
                continue;
            };
            if target.policy.is_none() && target.rules.is_empty() {
                let what = if matches!(r.action, Action::Goto(_)) {
                    "goes to"
                } else {
                    "jumps to"
                };
                let next = if matches!(r.action, Action::Goto(_)) {
                    "the packet returns to the chain that called this one"
                } else {
                    "the next rule follows, as if the rule were not there"
                };
                cx.push(
                    Kind::EmptyChainJump,
                    ci,
                    Some(ri),
                    Vec::new(),
                    format!("{what} the empty user chain {}: {next}", target.name),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hygiene: ESTABLISHED before drops, INVALID accepted, LOG without a limit.

fn state_mask_of(c: &Cond) -> Option<(bool, u8)> {
    match c {
        Cond::State { neg, mask } => Some((*neg, *mask)),
        Cond::Conntrack(m) if m.opts.is_empty() => m.state,
        _ => None,
    }
}

/// The set of real states (bits of `ct_bit`) a state condition admits.
fn admitted(neg: bool, mask: u8) -> u8 {
    let all: u8 = CtState::ALL
        .iter()
        .map(|&s| ct_bit(s))
        .fold(0, |a, b| a | b);
    if neg { all & !mask } else { mask & all }
}

/// A rule that accepts every ESTABLISHED packet it sees: ACCEPT (or a jump to a chain with
/// such a rule) with no condition but states that include ESTABLISHED.
fn rule_accepts_established(pt: &PTable, r: &super::compile::PRule, depth: usize) -> bool {
    if depth > 8 {
        return false;
    }
    let only_state = r.conds.iter().all(|c| {
        matches!(c, Cond::Const(true))
            || state_mask_of(c)
                .is_some_and(|(n, m)| admitted(n, m) & ct_bit(CtState::Established) != 0)
    });
    match r.action {
        Action::Accept => only_state,
        Action::Jump(t) | Action::Goto(t) => {
            only_state
                && pt.chains.get(t as usize).is_some_and(|t| {
                    t.rules
                        .iter()
                        .any(|r| rule_accepts_established(pt, r, depth + 1))
                })
        }
        _ => false,
    }
}

fn is_drop(a: &Action) -> bool {
    matches!(a, Action::Drop | Action::Reject)
}

fn hygiene(cx: &mut Ctx, id: TableId, pt: &PTable, ci: usize, pc: &PChain) {
    let rules = &cx.table.chains[ci].rules;
    // DROP policy in filter INPUT / FORWARD without an ESTABLISHED accept first.
    // A FORWARD chain that accepts nothing forwards nothing: no replies to lose (a host that
    // is no router). INPUT always matters: replies to this machine's own connections.
    let forwards = pc.rules.iter().any(|r| {
        matches!(
            r.action,
            Action::Accept | Action::Jump(_) | Action::Goto(_) | Action::Queue
        )
    });
    if id == TableId::Filter
        && (pc.name.as_ref() == "INPUT" || (pc.name.as_ref() == "FORWARD" && forwards))
        && pc.policy == Some(Policy::Drop)
    {
        let mut at: Option<Option<usize>> = Some(None);
        for (ri, r) in pc.rules.iter().enumerate() {
            if rule_accepts_established(pt, r, 0) {
                at = None;
                break;
            }
            if is_drop(&r.action) && r.conds.iter().all(|c| state_mask_of(c).is_none()) {
                at = Some(Some(ri));
                break;
            }
        }
        let whose = if pc.name.as_ref() == "FORWARD" {
            "forwarded"
        } else {
            "this machine's own"
        };
        if let Some(at) = at {
            let msg = match at {
                Some(ri) => format!(
                    "the chain's policy is DROP and no rule accepts ESTABLISHED,RELATED packets before rule {} drops: replies to {whose} connections may be dropped",
                    ri + 1
                ),
                None => format!(
                    "the chain's policy is DROP and no rule accepts ESTABLISHED,RELATED packets: replies to {whose} connections are dropped unless a rule accepts each of them"
                ),
            };
            cx.push(Kind::NoEstablished, ci, at, Vec::new(), msg);
        }
    }
    for (ri, r) in pc.rules.iter().enumerate() {
        if matches!(r.action, Action::Accept)
            && r.conds.iter().any(|c| {
                matches!(c, Cond::State { neg: false, .. } | Cond::Conntrack(_))
                    && state_mask_of(c)
                        .is_some_and(|(n, m)| !n && m & ct_bit(CtState::Invalid) != 0)
            })
        {
            cx.push(
                Kind::AcceptInvalid,
                ci,
                Some(ri),
                Vec::new(),
                "accepts packets in the INVALID conntrack state (malformed, out of window, or belonging to no connection); they are usually dropped".into(),
            );
        }
        let is_log = matches!(&r.action, Action::Continue(n) if n.as_str() == "LOG");
        if !is_log {
            continue;
        }
        let limited = rules.get(ri).is_some_and(|rule| {
            rule.spec
                .matches
                .iter()
                .any(|m| matches!(m.name.as_str(), "limit" | "hashlimit"))
        });
        if limited {
            continue;
        }
        let next = match pc.rules.get(ri + 1) {
            Some(n) if is_drop(&n.action) => Some(format!("rule {}", ri + 2)),
            None if pc.policy == Some(Policy::Drop) => Some("the chain's DROP policy".into()),
            _ => None,
        };
        if let Some(next) = next {
            cx.push(
                Kind::LogWithoutLimit,
                ci,
                Some(ri),
                Vec::new(),
                format!("logs every packet {next} then drops, with no limit match: a flood of dropped packets floods the log"),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Regions: sets of integer intervals per dimension, and boxes of them.

const PROTO: usize = 0;
const SRC: usize = 1;
const DST: usize = 2;
const SPORT: usize = 3;
const DPORT: usize = 4;
const IIF: usize = 5;
const OIF: usize = 6;
const STATE: usize = 7;
const FRAG: usize = 8;
const DIMS: usize = 9;

/// The port value of a packet without ports (a protocol other than tcp, udp, sctp, dccp,
/// udplite): port matches never match it, negated or not.
const NO_PORT: u128 = 65536;

/// A set of integers (sorted, disjoint intervals): the shared one reach uses too.
pub(crate) use super::ranges::RangeSet as Set;

/// A box: a set per dimension. The packets in it are the product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Region(pub(crate) [Set; DIMS]);

impl Region {
    fn is_empty(&self) -> bool {
        self.0.iter().any(Set::is_empty)
    }

    fn intersects(&self, o: &Region) -> bool {
        self.0.iter().zip(&o.0).all(|(a, b)| a.intersects(b))
    }

    /// `self` minus `o`, as disjoint boxes.
    fn subtract(&self, o: &Region) -> Vec<Region> {
        if !self.intersects(o) {
            return vec![self.clone()];
        }
        let mut out = Vec::new();
        let mut cur = self.clone();
        for d in 0..DIMS {
            let diff = cur.0[d].minus(&o.0[d]);
            if !diff.is_empty() {
                let mut piece = cur.clone();
                piece.0[d] = diff;
                out.push(piece);
            }
            cur.0[d] = cur.0[d].intersect(&o.0[d]);
        }
        out
    }
}

/// How many boxes a difference may grow to before the question is given up (not shadowed).
const MAX_PIECES: usize = 4096;

/// Whether `r` lies inside the union of `covers`; `None` when the computation gave up.
fn covered(r: &Region, covers: &[&Region]) -> Option<bool> {
    let mut left = vec![r.clone()];
    for c in covers {
        let mut next = Vec::new();
        for piece in &left {
            next.extend(piece.subtract(c));
            if next.len() > MAX_PIECES {
                return None;
            }
        }
        left = next;
        if left.is_empty() {
            return Some(true);
        }
    }
    Some(left.is_empty())
}

/// An interface as a packet has it: no device at this hook, or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Witness {
    NoDev,
    Name(String),
}

impl Witness {
    /// As the evaluator (and the kernel) match `-i NAME[+]`.
    fn matches(&self, name: &str, wildcard: bool) -> bool {
        match self {
            _ if wildcard && name.is_empty() => true,
            Witness::NoDev => false,
            Witness::Name(n) if wildcard => n.starts_with(name),
            Witness::Name(n) => n == name,
        }
    }
}

/// One name of every class of interface names the patterns can tell apart (plus "no device"):
/// every exact name, and for each prefix (and the empty one) the prefix followed by a character
/// no pattern continues it with. A name that is no exact pattern matches exactly the prefixes
/// its longest matching prefix pattern starts with, and so does that prefix's witness.
fn iface_witnesses(patterns: &BTreeSet<(String, bool)>) -> Vec<Witness> {
    let mut out = vec![Witness::NoDev];
    let mut prefixes: BTreeSet<&str> = BTreeSet::new();
    prefixes.insert("");
    for (name, wildcard) in patterns {
        if *wildcard {
            prefixes.insert(name);
        } else {
            out.push(Witness::Name(name.clone()));
        }
    }
    for p in prefixes {
        let fresh = (1u32..)
            .filter_map(char::from_u32)
            .find(|c| {
                let w = format!("{p}{c}");
                !patterns.iter().any(|(n, _)| n.starts_with(&w))
            })
            .unwrap_or('\u{1}');
        out.push(Witness::Name(format!("{p}{fresh}")));
    }
    out
}

/// A chain's universe: the interface classes, and the family's address width.
struct Universe {
    ifaces: Vec<Witness>,
    addr_max: u128,
}

fn state_set(bits: u8) -> Set {
    Set::from_ranges(
        CtState::ALL
            .iter()
            .enumerate()
            .filter(|(_, s)| bits & ct_bit(**s) != 0)
            .map(|(i, _)| (i as u128, i as u128))
            .collect(),
    )
}

/// A rule's region (an over-approximation of what it matches), and whether it is exact.
pub(crate) struct Shape {
    pub(crate) region: Region,
    pub(crate) exact: bool,
}

impl Universe {
    fn full(&self) -> Region {
        let max = [
            255,
            self.addr_max,
            self.addr_max,
            NO_PORT,
            NO_PORT,
            self.ifaces.len().saturating_sub(1) as u128,
            self.ifaces.len().saturating_sub(1) as u128,
            CtState::ALL.len() as u128 - 1,
            1,
        ];
        Region(max.map(|m| Set::range(0, m)))
    }

    fn shape(&self, conds: &[Cond]) -> Shape {
        let mut region = self.full();
        let mut exact = true;
        let full = self.full();
        let mut restrict = |d: usize, s: Set, neg: bool| {
            let s = if neg { full.0[d].minus(&s) } else { s };
            region.0[d] = region.0[d].intersect(&s);
        };
        for c in conds {
            match c {
                Cond::Proto { neg, proto } => restrict(
                    PROTO,
                    Set::range(u128::from(*proto), u128::from(*proto)),
                    *neg,
                ),
                Cond::Addr { neg, dir, nets } => {
                    let s = Set::from_ranges(
                        nets.iter()
                            .map(|n| {
                                (
                                    super::ranges::num(n.network()),
                                    super::ranges::num(n.broadcast()),
                                )
                            })
                            .collect(),
                    );
                    restrict(if *dir == Dir::Src { SRC } else { DST }, s, *neg)
                }
                Cond::IpRange { neg, dir, lo, hi } => restrict(
                    if *dir == Dir::Src { SRC } else { DST },
                    Set::range(super::ranges::num(*lo), super::ranges::num(*hi)),
                    *neg,
                ),
                Cond::Iface {
                    neg,
                    out,
                    name,
                    wildcard,
                } => {
                    let s = Set::from_ranges(
                        self.ifaces
                            .iter()
                            .enumerate()
                            .filter(|(_, w)| w.matches(name, *wildcard))
                            .map(|(i, _)| (i as u128, i as u128))
                            .collect(),
                    );
                    restrict(if *out { OIF } else { IIF }, s, *neg)
                }
                Cond::Fragment { neg } => restrict(FRAG, Set::range(1, 1), *neg),
                Cond::NotFragment => restrict(FRAG, Set::range(0, 0), false),
                Cond::Port { neg, dir, lo, hi } => {
                    let d = if *dir == Dir::Src { SPORT } else { DPORT };
                    // A packet without ports never matches, negated or not.
                    restrict(d, Set::range(0, 65535), false);
                    restrict(d, Set::range(u128::from(*lo), u128::from(*hi)), *neg);
                }
                Cond::Multiport { neg, dir, ranges } => {
                    let d = match dir {
                        PortDir::Src => SPORT,
                        PortDir::Dst => DPORT,
                        PortDir::Either => {
                            exact = false;
                            continue;
                        }
                    };
                    restrict(d, Set::range(0, 65535), false);
                    let s = Set::from_ranges(
                        ranges
                            .iter()
                            .map(|&(a, b)| (u128::from(a), u128::from(b)))
                            .collect(),
                    );
                    restrict(d, s, *neg);
                }
                Cond::State { neg, mask } => {
                    restrict(STATE, state_set(admitted(*neg, *mask)), false)
                }
                Cond::Conntrack(m)
                    if m.opts.is_empty()
                        && m.state
                            .is_some_and(|(_, mask)| mask & (CT_SNAT | CT_DNAT) == 0) =>
                {
                    if let Some((neg, mask)) = m.state {
                        restrict(STATE, state_set(admitted(neg, mask)), false)
                    }
                }
                Cond::Const(true) => {}
                Cond::Const(false) => restrict(PROTO, Set::empty(), false),
                _ => exact = false,
            }
        }
        Shape { region, exact }
    }
}

/// The universe of one chain: its interface patterns, its family.
fn universe(family: Family, pc: &PChain) -> Universe {
    let mut patterns = BTreeSet::new();
    for r in &pc.rules {
        for c in &r.conds {
            if let Cond::Iface { name, wildcard, .. } = c {
                patterns.insert((name.to_string(), *wildcard));
            }
        }
    }
    Universe {
        ifaces: iface_witnesses(&patterns),
        addr_max: match family {
            Family::V4 => u128::from(u32::MAX),
            Family::V6 => u128::MAX,
        },
    }
}

/// Whether a target ends the chain for the packets it gets (they never reach a later rule).
fn is_final(a: &Action) -> bool {
    matches!(
        a,
        Action::Accept | Action::Drop | Action::Reject | Action::Return | Action::Goto(_)
    )
}

/// Whether a rule's target can change what a later rule's regions look at (the conntrack
/// state, addresses, ports) for a packet that goes on in this chain: NOTRACK, a target nfscope
/// does not model, or a jump to a chain that could.
fn may_modify(pt: &PTable, a: &Action, seen: &mut Vec<bool>) -> bool {
    match a {
        Action::NoTrack(_) | Action::Unmodelled(_) => true,
        Action::Jump(t) | Action::Goto(t) => {
            let t = *t as usize;
            match seen.get(t) {
                Some(true) => false,
                Some(false) => {
                    seen[t] = true;
                    pt.chains[t]
                        .rules
                        .iter()
                        .any(|r| may_modify(pt, &r.action, seen))
                }
                None => true,
            }
        }
        _ => false,
    }
}

/// The interface names of a chain's classes (`None`: no device), for the soundness tests.
#[cfg(test)]
pub(crate) fn iface_names(family: Family, pc: &PChain) -> Vec<Option<String>> {
    universe(family, pc)
        .ifaces
        .into_iter()
        .map(|w| match w {
            Witness::NoDev => None,
            Witness::Name(n) => Some(n),
        })
        .collect()
}

/// The compiled shape of a chain's rules, for the shadowing and the soundness tests.
pub(crate) fn chain_shapes(family: Family, pc: &PChain) -> Vec<Shape> {
    let u = universe(family, pc);
    pc.rules.iter().map(|r| u.shape(&r.conds)).collect()
}

/// The rules of a chain that can never match, each with the earlier rules that decide its
/// packets first (0-based indices).
#[cfg(test)]
pub(crate) fn shadowed_in(family: Family, pt: &PTable, pc: &PChain) -> Vec<(usize, Vec<usize>)> {
    shadowed_with(&chain_shapes(family, pc), pt, pc)
}

fn shadowed_with(shapes: &[Shape], pt: &PTable, pc: &PChain) -> Vec<(usize, Vec<usize>)> {
    let mut covers: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for (ri, (r, s)) in pc.rules.iter().zip(shapes).enumerate() {
        if !s.region.is_empty() {
            let by: Vec<usize> = covers
                .iter()
                .copied()
                .filter(|&c| shapes[c].region.intersects(&s.region))
                .collect();
            if !by.is_empty() {
                let regions: Vec<&Region> = by.iter().map(|&c| &shapes[c].region).collect();
                if covered(&s.region, &regions) == Some(true) {
                    out.push((ri, minimal(&s.region, by, shapes)));
                    continue;
                }
            }
        }
        if s.exact && is_final(&r.action) && !s.region.is_empty() {
            covers.push(ri);
        }
        let mut seen = vec![false; pt.chains.len()];
        if may_modify(pt, &r.action, &mut seen) {
            covers.clear();
        }
    }
    out
}

/// The covering rules without those the others make unnecessary (for the message only).
fn minimal(r: &Region, mut by: Vec<usize>, shapes: &[Shape]) -> Vec<usize> {
    if by.len() > 32 {
        return by;
    }
    let mut i = 0;
    while i < by.len() && by.len() > 1 {
        let rest: Vec<&Region> = by
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, &c)| &shapes[c].region)
            .collect();
        if covered(r, &rest) == Some(true) {
            by.remove(i);
        } else {
            i += 1;
        }
    }
    by
}

fn regions_of_chain(cx: &mut Ctx, pt: &PTable, ci: usize, pc: &PChain) {
    let shapes = chain_shapes(cx.family, pc);
    let shadowed = shadowed_with(&shapes, pt, pc);
    let mut is_shadowed = vec![false; pc.rules.len()];
    for (ri, by) in &shadowed {
        is_shadowed[*ri] = true;
        let refs: Vec<RuleRef> = by.iter().map(|&b| cx.rule_ref(ci, Some(b))).collect();
        let nums: Vec<String> = by.iter().map(|b| (b + 1).to_string()).collect();
        let msg = if by.len() == 1 {
            format!(
                "never matches: rule {} decides every packet it could match first",
                nums[0]
            )
        } else {
            format!(
                "never matches: rules {} together decide every packet it could match first",
                nums.join(", ")
            )
        };
        cx.push(Kind::Shadowed, ci, Some(*ri), refs, msg);
    }
    redundant(cx, ci, pc, &shapes, &is_shadowed);
}

/// Whether two rules' targets give the same verdict (the same words: REJECT's options too).
fn same_verdict(cx: &Ctx, ci: usize, a: usize, b: usize) -> bool {
    let rules = &cx.table.chains[ci].rules;
    match (rules.get(a), rules.get(b)) {
        (Some(x), Some(y)) => x.spec.target == y.spec.target,
        _ => false,
    }
}

fn redundant(cx: &mut Ctx, ci: usize, pc: &PChain, shapes: &[Shape], shadowed: &[bool]) {
    let volatile = |ri: usize| pc.rules[ri].conds.iter().any(|c| !c.is_stable());
    // Each rule's words, comments aside, once (comparing pairs would be quadratic in clones).
    let keys: Vec<String> = cx.table.chains[ci].rules.iter().map(spec_key).collect();
    let mut same_words: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        same_words.entry(k.as_str()).or_default().push(i);
    }
    // For each rule, the last rule before it that may change what follows (a jump, a mark...).
    let mut loud_before: Vec<Option<usize>> = Vec::with_capacity(pc.rules.len());
    let mut last = None;
    for r in &pc.rules {
        loud_before.push(last);
        let quiet = matches!(
            r.action,
            Action::None
                | Action::Accept
                | Action::Drop
                | Action::Reject
                | Action::Return
                | Action::Goto(_)
        ) || matches!(&r.action, Action::Continue(n) if n != "SET");
        if !quiet {
            last = Some(loud_before.len() - 1);
        }
    }
    for (ri, r) in pc.rules.iter().enumerate() {
        if shadowed[ri]
            || !matches!(
                r.action,
                Action::Accept | Action::Drop | Action::Reject | Action::Return
            )
            || shapes[ri].region.is_empty()
        {
            continue;
        }
        let me = &shapes[ri].region;
        // An identical earlier rule with nothing in between that changes anything: the
        // latest rule of the same words at or after the last one that is not quiet.
        let mut dup = None;
        if !volatile(ri) {
            let from = loud_before[ri];
            dup = same_words
                .get(keys[ri].as_str())
                .into_iter()
                .flat_map(|v| v.iter().rev())
                .copied()
                .filter(|&j| j < ri && from.is_none_or(|b| j >= b))
                .find(|&j| !shadowed[j]);
        }
        if let Some(j) = dup {
            let msg = format!(
                "the same rule as rule {}, which decides every packet this one could match first",
                j + 1
            );
            let by = vec![cx.rule_ref(ci, Some(j))];
            cx.push(Kind::Redundant, ci, Some(ri), by, msg);
            continue;
        }
        // A later rule (or the policy) gives the same verdict to every packet this one matches,
        // and nothing in between decides otherwise.
        let mut verdict_by: Option<Option<usize>> = None;
        let mut k = ri + 1;
        while k < pc.rules.len() {
            let s = &shapes[k];
            if !s.region.intersects(me) {
                k += 1;
                continue;
            }
            let same = is_final(&pc.rules[k].action) && same_verdict(cx, ci, ri, k);
            if !same {
                break;
            }
            // A shadowed rule matches nothing now, but might once this one is gone.
            if s.exact && !shadowed[k] && covered(me, &[&s.region]) == Some(true) {
                verdict_by = Some(Some(k));
                break;
            }
            k += 1;
        }
        if k == pc.rules.len() {
            let policy_same = match (&r.action, pc.policy) {
                (Action::Accept, Some(Policy::Accept)) | (Action::Drop, Some(Policy::Drop)) => true,
                // The end of a chain returns: a user chain's to its caller, a built-in one's
                // to its policy, as RETURN does.
                (Action::Return, _) => true,
                _ => false,
            };
            if policy_same {
                verdict_by = Some(None);
            }
        }
        let (by, msg) = match verdict_by {
            Some(Some(k)) => (
                cx.rule_ref(ci, Some(k)),
                format!(
                    "removing it changes no verdict: rule {} gives the same verdict to every packet it matches, and no rule in between matches them",
                    k + 1
                ),
            ),
            Some(None) => {
                let what = if matches!(r.action, Action::Return) {
                    "the end of the chain returns as well"
                } else {
                    "the chain's policy gives the same verdict"
                };
                (
                    cx.rule_ref(ci, None),
                    format!(
                        "removing it changes no verdict: no later rule matches its packets, and {what}"
                    ),
                )
            }
            None => continue,
        };
        cx.push(Kind::Redundant, ci, Some(ri), vec![by], msg);
    }
}

/// A rule's words, comments and counters aside: two rules with the same key are the same
/// rule.
fn spec_key(r: &Rule) -> String {
    let mut s = r.spec.clone();
    s.matches.retain(|m| m.name != "comment");
    s.inline_counters = None;
    format!("{s:?}")
}

// ---------------------------------------------------------------------------------------------
// IPv4/IPv6 parity.

/// The destination ports the filter tables of `rss` name (tcp/udp port and multiport
/// conditions), at most `cap`, plus one no rule names.
fn ports_named(rss: &[&Ruleset], cap: usize) -> Vec<u16> {
    let mut ports = BTreeSet::new();
    for rs in rss {
        let prep = Prepared::new(rs);
        let Some(pt) = prep.tables[TableId::Filter.index()].as_ref() else {
            continue;
        };
        for c in &pt.chains {
            for r in &c.rules {
                for cond in &r.conds {
                    match cond {
                        Cond::Port {
                            dir: Dir::Dst,
                            lo,
                            hi,
                            ..
                        } => {
                            ports.insert(*lo);
                            ports.insert(*hi);
                        }
                        Cond::Multiport {
                            dir: PortDir::Dst | PortDir::Either,
                            ranges,
                            ..
                        } => {
                            for &(a, b) in ranges.iter() {
                                ports.insert(a);
                                ports.insert(b);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let mut v: Vec<u16> = ports.into_iter().filter(|&p| p != 0).take(cap).collect();
    if let Some(other) = (40000u16..=65535).find(|p| !v.contains(p)) {
        v.push(other);
    }
    v
}

/// What the filter INPUT chain does to a NEW packet to `port` from a couple of remote
/// sources: `Some((verdict, deciding step))` when every path of every source agrees.
fn new_verdict(
    tracer: &Tracer,
    family: Family,
    proto: u8,
    port: u16,
    locals: &[LocalAddr],
) -> Option<(Verdict, Step)> {
    let (dst, local, srcs): (&str, &str, [&str; 2]) = match family {
        Family::V4 => ("192.0.2.1", "192.0.2.1/24", ["198.51.100.7", "203.0.113.9"]),
        Family::V6 => (
            "2001:db8::1",
            "2001:db8::1/64",
            ["2001:db8:1::7", "2001:db8:2::9"],
        ),
    };
    // This machine's own address of the family, when known: rules that name it (`-d
    // 203.0.113.2`) then count.
    let own = locals
        .iter()
        .find(|l| super::packet::family_of(l.addr) == family && !l.addr.is_loopback());
    let (d, opts) = match own {
        Some(l) => (
            l.addr,
            TraceOptions {
                local_addrs: locals.to_vec(),
                max_paths: 16,
                max_steps: 200_000,
            },
        ),
        None => (
            dst.parse::<IpAddr>().ok()?,
            TraceOptions {
                local_addrs: LocalAddr::parse(local).ok().into_iter().collect(),
                max_paths: 16,
                max_steps: 200_000,
            },
        ),
    };
    let mut result: Option<(Verdict, Step)> = None;
    for src in srcs {
        let Ok(s) = src.parse::<IpAddr>() else {
            return None;
        };
        let mut p = Packet::new(proto, s, d);
        p.dport = Some(port);
        let t = tracer.trace(&p, &opts);
        let v = t.certain()?;
        let step = t.paths.first()?.decider()?.clone();
        match &result {
            Some((rv, _)) if *rv != v => return None,
            Some(_) => {}
            None => result = Some((v, step)),
        }
    }
    result
}

fn step_ref(rss: &[&Ruleset], family: Family, s: &Step) -> RuleRef {
    let table = s.table.map_or("", |t| t.name()).to_string();
    let chain = s.chain.as_deref().unwrap_or("").to_string();
    let text = s.rule_index().and_then(|i| {
        let rs = rss.iter().find(|r| r.family == family)?;
        let c = rs.table(&table)?.chain(&chain)?;
        c.rules.get(i).map(|r| save_line(&chain, r))
    });
    RuleRef {
        family,
        table,
        chain,
        rule: s.rule,
        text,
    }
}

fn parity(v4: &Ruleset, v6: &Ruleset, locals: &[LocalAddr], out: &mut Vec<Finding>) {
    let rss = [v4, v6];
    let ports = ports_named(&rss, 512);
    let t4 = Tracer::new(v4);
    let t6 = Tracer::new(v6);
    let mut found: BTreeMap<(u8, u16), Finding> = BTreeMap::new();
    for (proto, pname) in [(6u8, "tcp"), (17u8, "udp")] {
        for &port in &ports {
            let (Some((a, sa)), Some((b, sb))) = (
                new_verdict(&t4, Family::V4, proto, port, locals),
                new_verdict(&t6, Family::V6, proto, port, locals),
            ) else {
                continue;
            };
            let dropped = |v: Verdict| matches!(v, Verdict::Drop | Verdict::Reject);
            let (open, closed, so, sc) = if a == Verdict::Accept && dropped(b) {
                (Family::V4, Family::V6, sa, sb)
            } else if b == Verdict::Accept && dropped(a) {
                (Family::V6, Family::V4, sb, sa)
            } else {
                continue;
            };
            let r = step_ref(&rss, open, &so);
            let by = step_ref(&rss, closed, &sc);
            let closed_where = match by.rule {
                Some(n) => format!("rule {n} of {}", by.chain),
                None => format!("the policy of {}", by.chain),
            };
            let message = format!(
                "{pname} port {port} is accepted for new connections in {} but dropped in {} ({closed_where}): a rule forgotten in {}?",
                open.label(),
                closed.label(),
                closed.tool_stem()
            );
            found.entry((proto, port)).or_insert(Finding {
                kind: Kind::Parity,
                severity: Kind::Parity.severity(),
                family: open,
                table: if r.table.is_empty() {
                    "filter".into()
                } else {
                    r.table.clone()
                },
                chain: r.chain.clone(),
                rule: r.rule,
                text: r.text.clone(),
                by: vec![by],
                message,
            });
        }
    }
    out.extend(found.into_values());
}

#[cfg(test)]
#[path = "lint_tests.rs"]
mod tests;
