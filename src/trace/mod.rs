//! The packet-path tracer: what a rule set does to one packet, and which rule decides. Pure: no
//! I/O. `Tracer::new` prepares a rule set once (chains resolved to indices, every rule's words
//! read into conditions); `Tracer::trace` walks a `Packet` through the hooks in the kernel's order
//! and returns every step, the verdict of every possible path, and what the paths hinge on.
//!
//! Matches are three-valued. What the description cannot decide (a rate limit, a recent list, an
//! interface that was not given) is Unknown, and the walk forks: one path assumes the rule
//! matched, the other that it did not. The answer is then a set of verdicts with the conditions
//! that separate them, never a false certainty. docs/trace.md has the whole model.

mod compile;
mod eval;
pub mod fields;
pub mod lint;
pub mod nft;
pub mod packet;
pub mod ranges;
pub mod reach;
pub mod stale;
mod walk;

pub use packet::{Binding, CtState, LocalAddr, Origin, Packet, PktType};
pub use walk::{TraceOptions, Tracer};

use crate::ruleset::Family;
use serde::{Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// A chain's name, shared by every step that names it (a deep trace names the same chain
/// thousands of times).
pub type Name = Arc<str>;

/// The netfilter hooks, in the order the kernel calls them for the paths a packet can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    pub const ALL: [Hook; 5] = [
        Hook::Prerouting,
        Hook::Input,
        Hook::Forward,
        Hook::Output,
        Hook::Postrouting,
    ];

    /// The built-in chain's name.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Prerouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::Postrouting => "POSTROUTING",
        }
    }

    /// The tables this hook calls, in the order of their priorities (raw -300, conntrack -200,
    /// mangle -150, nat DNAT -100, filter 0, security 50, nat SNAT 100).
    pub fn tables(self) -> &'static [TableId] {
        use TableId::*;
        match self {
            Hook::Prerouting => &[Raw, Mangle, Nat],
            Hook::Input => &[Mangle, Filter, Security, Nat],
            Hook::Forward => &[Mangle, Filter, Security],
            Hook::Output => &[Raw, Mangle, Nat, Filter, Security],
            Hook::Postrouting => &[Mangle, Nat],
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The five tables a trace knows. Tables of other names are never traversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableId {
    Raw,
    Mangle,
    Nat,
    Filter,
    Security,
}

impl TableId {
    pub const ALL: [TableId; 5] = [
        TableId::Raw,
        TableId::Mangle,
        TableId::Nat,
        TableId::Filter,
        TableId::Security,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TableId::Raw => "raw",
            TableId::Mangle => "mangle",
            TableId::Nat => "nat",
            TableId::Filter => "filter",
            TableId::Security => "security",
        }
    }

    /// The priority the table's built-in chain registers at `hook` with (iptables-nft makes
    /// them the same).
    pub fn priority(self, hook: Hook) -> i32 {
        match self {
            TableId::Raw => -300,
            TableId::Mangle => -150,
            TableId::Nat if matches!(hook, Hook::Prerouting | Hook::Output) => -100,
            TableId::Nat => 100,
            TableId::Filter => 0,
            TableId::Security => 50,
        }
    }

    pub fn from_name(s: &str) -> Option<TableId> {
        TableId::ALL.into_iter().find(|t| t.name() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Three-valued truth: what a match says about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tri {
    Yes,
    No,
    Unknown,
}

impl Tri {
    pub fn from_bool(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }

    /// Flip when `neg` (a `!` in the rule).
    pub fn negate_if(self, neg: bool) -> Tri {
        match (self, neg) {
            (Tri::Yes, true) => Tri::No,
            (Tri::No, true) => Tri::Yes,
            (t, _) => t,
        }
    }

    pub fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
            (Tri::No, Tri::No) => Tri::No,
            _ => Tri::Unknown,
        }
    }

    pub fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tri::Yes => "yes",
            Tri::No => "no",
            Tri::Unknown => "unknown",
        }
    }
}

/// How a path ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Accept,
    Drop,
    Reject,
    /// QUEUE or NFQUEUE: handed to a user-space program, whose answer is not in the rule set.
    Queue,
    /// A target nfscope does not model, or a branch not followed (the fork bound).
    Unknown,
    /// The rule set cannot be walked: a loop between chains, or far too many steps.
    Error,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Accept => "ACCEPT",
            Verdict::Drop => "DROP",
            Verdict::Reject => "REJECT",
            Verdict::Queue => "QUEUE",
            Verdict::Unknown => "UNKNOWN",
            Verdict::Error => "ERROR",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One header field a target changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `src`, `dst`, `sport`, `dport`, `mark`, `ctmark` or `state`.
    pub field: &'static str,
    pub from: String,
    pub to: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} → {}", self.field, self.from, self.to)
    }
}

/// What a matching rule's target did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// `-j CHAIN`: on into the chain; RETURN comes back to the next rule.
    Jump {
        #[serde(serialize_with = "ser_name")]
        chain: Name,
    },
    /// `-g CHAIN`: on into the chain; RETURN goes back to the caller's caller.
    Goto {
        #[serde(serialize_with = "ser_name")]
        chain: Name,
    },
    Return,
    /// ACCEPT ends this table's traversal at this hook (the packet goes on to the next table);
    /// DROP, REJECT and QUEUE end the path.
    Verdict {
        verdict: Verdict,
    },
    /// DNAT, SNAT, MASQUERADE, REDIRECT, NETMAP: rewrite, and end this nat chain (like ACCEPT).
    Nat {
        target: String,
        changes: Vec<Change>,
    },
    /// MARK, CONNMARK, NOTRACK, CT --notrack: set something later rules see, then continue.
    Set {
        target: String,
        changes: Vec<Change>,
    },
    /// LOG, NFLOG, TCPMSS, ...: no effect on the path; the next rule follows.
    Continue {
        target: String,
    },
    /// A target nfscope does not model: the path ends with an unknown verdict.
    Unmodelled {
        target: String,
    },
    /// The jump or goto enters a chain already being walked: the rule set has a loop.
    Loop {
        #[serde(serialize_with = "ser_name")]
        chain: Name,
    },
}

fn ser_name<S: Serializer>(n: &Name, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(n)
}

fn ser_opt_name<S: Serializer>(n: &Option<Name>, s: S) -> Result<S::Ok, S::Error> {
    match n {
        Some(n) => s.serialize_str(n),
        None => s.serialize_none(),
    }
}

fn changes_text(c: &[Change]) -> String {
    if c.is_empty() {
        "no change".into()
    } else {
        c.iter()
            .map(Change::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Jump { chain } => write!(f, "jump to {chain}"),
            Effect::Goto { chain } => write!(f, "goto {chain}"),
            Effect::Return => f.write_str("RETURN"),
            Effect::Verdict { verdict } => f.write_str(verdict.name()),
            Effect::Nat { target, changes } | Effect::Set { target, changes } => {
                write!(f, "{target}: {}", changes_text(changes))
            }
            Effect::Continue { target } => write!(f, "{target}, continue"),
            Effect::Unmodelled { target } => {
                write!(f, "{target}: a target nfscope does not model")
            }
            Effect::Loop { chain } => write!(f, "loop: {chain} is already being walked"),
        }
    }
}

/// Where the routing decision sent the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// To a local process: INPUT.
    Local,
    /// Through this machine: FORWARD, then POSTROUTING.
    Forward,
    /// A locally sent packet leaving by an interface: OUTPUT, then POSTROUTING.
    Out,
    /// A locally sent packet to a local address: OUTPUT, POSTROUTING, then back in on `lo`.
    Loopback,
}

/// What happened at one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// A rule was looked at.
    Rule {
        matched: Tri,
        /// For an unknown match: which way this path assumed it went.
        #[serde(skip_serializing_if = "Option::is_none")]
        assumed: Option<bool>,
        /// The conditions that could not be decided.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        unknown: Vec<String>,
        /// What the target did (matching rules only). Boxed: most steps have none.
        #[serde(skip_serializing_if = "Option::is_none")]
        effect: Option<Box<Effect>>,
    },
    /// The end of a built-in chain (or RETURN from it): its policy applies.
    Policy { verdict: Verdict },
    /// The end of a user chain: back to the rule after the jump.
    ChainEnd,
    /// The routing decision.
    Routing { route: Route, reason: String },
    /// A table the packet does not traverse at this hook, and why.
    Skip { reason: String },
}

/// One step of a path. `table`, `chain` and `rule` locate it in the rule set of `family`, so
/// that a screen can jump to the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub family: Family,
    pub hook: Hook,
    pub table: Option<TableId>,
    /// A native nftables table's family and name (`inet fw`); `table` is then `None`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_name"
    )]
    pub nft_table: Option<Name>,
    #[serde(serialize_with = "ser_opt_name")]
    pub chain: Option<Name>,
    /// 1-based rule number in the chain, as `iptables -L --line-numbers` counts (and as a
    /// native chain's rules are listed).
    pub rule: Option<usize>,
    /// A native rule's handle, as `nft -a` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    #[serde(flatten)]
    pub kind: StepKind,
}

impl Step {
    /// The 0-based index of the rule in its chain's `rules`.
    pub fn rule_index(&self) -> Option<usize> {
        self.rule.map(|n| n - 1)
    }

    /// "rule 3 of chain TCP" (with the table when it is not filter), or "policy of INPUT".
    pub fn place(&self) -> String {
        let chain = self.chain.as_deref().unwrap_or("?");
        if let Some(t) = &self.nft_table {
            return match (self.rule, self.handle) {
                (Some(n), Some(h)) => format!("rule {n} (handle {h}) of {t} {chain}"),
                (Some(n), None) => format!("rule {n} of {t} {chain}"),
                _ => format!("the policy of {t} {chain}"),
            };
        }
        let table = match self.table {
            Some(TableId::Filter) | None => String::new(),
            Some(t) => format!(" in {t}"),
        };
        match self.rule {
            Some(n) => format!("rule {n} of chain {chain}{table}"),
            None => format!("the policy of chain {chain}{table}"),
        }
    }
}

/// An unknown match a path decided one way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assumption {
    /// Index of the step in the path's `steps`.
    pub step: usize,
    /// The undecided conditions, as the rule writes them.
    pub condition: String,
    /// Whether this path assumed the rule matched.
    pub matched: bool,
}

/// Where a path split off from another: it shares `steps[..step]` with path `parent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fork {
    pub parent: usize,
    pub step: usize,
}

/// The headers as they are at the end of a path (after NAT and marks), for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Headers {
    pub src: String,
    pub dst: String,
    pub sport: Option<String>,
    pub dport: Option<String>,
    pub mark: String,
    pub state: String,
}

/// One way the packet can go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Path {
    /// 0-based; path 0 is the one that assumed every unknown match matched.
    pub id: usize,
    pub fork: Option<Fork>,
    pub steps: Vec<Step>,
    pub verdict: Verdict,
    /// The step that decided the verdict (see docs/trace.md for how an ACCEPT's is chosen).
    pub decided_by: Option<usize>,
    /// Where the packet ends up, or why the path stopped.
    pub note: String,
    pub assumptions: Vec<Assumption>,
    pub headers: Headers,
}

impl Path {
    pub fn decider(&self) -> Option<&Step> {
        self.decided_by.and_then(|i| self.steps.get(i))
    }
}

/// An unknown match that a trace forked on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unknown {
    pub table: Option<TableId>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_name"
    )]
    pub nft_table: Option<Name>,
    #[serde(serialize_with = "ser_opt_name")]
    pub chain: Option<Name>,
    pub rule: Option<usize>,
    pub condition: String,
    /// "rule 1 of chain TCP (-m recent --update ...)".
    pub text: String,
}

/// Everything a trace found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trace {
    pub family: Family,
    pub paths: Vec<Path>,
    /// Forks that were not followed because `max_paths` was reached.
    pub unexplored: usize,
    pub max_paths: usize,
}

impl Trace {
    /// The distinct verdicts of all paths, in path order; UNKNOWN too when branches were not
    /// followed.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut v: Vec<Verdict> = Vec::new();
        for p in &self.paths {
            if !v.contains(&p.verdict) {
                v.push(p.verdict);
            }
        }
        if self.unexplored > 0 && !v.contains(&Verdict::Unknown) {
            v.push(Verdict::Unknown);
        }
        v
    }

    /// One verdict for certain: every path agrees and every branch was followed.
    pub fn certain(&self) -> Option<Verdict> {
        match self.verdicts()[..] {
            [v] if v != Verdict::Unknown && v != Verdict::Error => Some(v),
            _ => None,
        }
    }

    /// The verdicts of path `id` and of every path forked from it at or after step `from`.
    fn verdicts_below(&self, id: usize, from: usize) -> Vec<Verdict> {
        let mut out: Vec<Verdict> = Vec::new();
        let mut todo = vec![(id, from)];
        while let Some((id, from)) = todo.pop() {
            for p in &self.paths {
                if p.id == id && !out.contains(&p.verdict) {
                    out.push(p.verdict);
                }
                if let Some(f) = p.fork
                    && f.parent == id
                    && f.step >= from
                {
                    todo.push((p.id, f.step + 1));
                }
            }
        }
        out.sort_by_key(|v| v.name());
        out
    }

    /// The unknown matches the verdict depends on: forks whose two branches can end
    /// differently, in path order. (Each path's `assumptions` has every fork it took.)
    pub fn unknowns(&self) -> Vec<Unknown> {
        let mut out: Vec<Unknown> = Vec::new();
        for p in &self.paths {
            let Some(f) = p.fork else {
                continue;
            };
            let taken = self.verdicts_below(f.parent, f.step + 1);
            let other = self.verdicts_below(p.id, f.step + 1);
            if taken == other {
                continue;
            }
            let (Some(s), Some(a)) = (
                p.steps.get(f.step),
                p.assumptions.iter().find(|a| a.step == f.step),
            ) else {
                continue;
            };
            let dup = out.iter().any(|u| {
                u.table == s.table
                    && u.nft_table == s.nft_table
                    && u.chain == s.chain
                    && u.rule == s.rule
                    && u.condition == a.condition
            });
            if !dup {
                let text = if s.rule.is_some() {
                    format!("{} ({})", s.place(), a.condition)
                } else {
                    a.condition.clone()
                };
                out.push(Unknown {
                    table: s.table,
                    nft_table: s.nft_table.clone(),
                    chain: s.chain.clone(),
                    rule: s.rule,
                    condition: a.condition.clone(),
                    text,
                });
            }
        }
        out
    }

    /// The one-line answer: `ACCEPT`, or `ACCEPT or DROP (unknown: rule 1 of chain TCP (...))`.
    pub fn summary(&self) -> String {
        let verdicts = self.verdicts();
        let names: Vec<&str> = verdicts.iter().map(|v| v.name()).collect();
        let mut out = names.join(" or ");
        let mut why: Vec<String> = Vec::new();
        if verdicts.len() > 1 {
            let unknowns = self.unknowns();
            const SHOWN: usize = 4;
            why.extend(unknowns.iter().take(SHOWN).map(|u| u.text.clone()));
            if unknowns.len() > SHOWN {
                why.push(format!("and {} more", unknowns.len() - SHOWN));
            }
        }
        if self.unexplored > 0 {
            why.push(format!(
                "{} more {} not followed: the bound of {} paths was reached",
                self.unexplored,
                if self.unexplored == 1 {
                    "branch was"
                } else {
                    "branches were"
                },
                self.max_paths
            ));
        }
        if !why.is_empty() {
            out.push_str(" (unknown: ");
            out.push_str(&why.join("; "));
            out.push(')');
        }
        let mut errors: Vec<&str> = Vec::new();
        for p in self.paths.iter().filter(|p| p.verdict == Verdict::Error) {
            if !errors.contains(&p.note.as_str()) {
                errors.push(&p.note);
            }
        }
        if !errors.is_empty() {
            out.push_str(" (error: ");
            out.push_str(&errors.join("; "));
            out.push(')');
        }
        out
    }
}

#[cfg(test)]
mod tests;
