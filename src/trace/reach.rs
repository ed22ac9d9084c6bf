//! Reachability: for one hook's chain, one protocol and port and one conntrack state, which
//! source addresses can reach which destination addresses. The address space is cut into
//! classes the rule set treats alike, and every pair of classes gets an edge that is
//! `certain` (every way through accepts), `possible` (some way accepts: a match the packet
//! cannot decide stands between) or none (no way accepts: certainly dropped or rejected).
//!
//! How: the rules are the tracer's (`compile.rs`), each condition read as a set of sources or
//! destinations where it is yes, a set where it cannot be decided, no elsewhere; everything
//! else about the packet is fixed by the question. For each elementary range of sources (cut
//! at every boundary a source condition has) the chain is walked once with *sets* of
//! destinations in place of one packet: the set that may still be here, and the sets that
//! some way accepted and some way dropped. Jumps, gotos and returns carry the sets. Then
//! sources with the same answers and destinations with the same answers are grouped into
//! classes. docs/analysis.md states the semantics.

use super::compile::{Action, Cond, CtOpt, NatTo, PChain, PRule, PTable, Policy, Prepared, ct_bit};
use super::packet::{CtState, TCP_ACK, TCP_SYN};
use super::ranges::{RangeSet, net_range, num, range_text};
use super::{Hook, TableId, Tri};
use crate::ruleset::{Family, Ruleset};
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::Serialize;

/// Which source addresses arrive on an interface (`--iface NAME=CIDR,...`), or with `except`
/// every address but those (`NAME=!CIDR,...`). Destinations routed out of it are read the same
/// way for `-o`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceMap {
    pub name: String,
    pub except: bool,
    pub nets: Vec<IpNet>,
}

impl IfaceMap {
    /// As written: `NAME=CIDR,...` or `NAME=!CIDR,...`.
    pub fn spec(&self) -> String {
        let nets: Vec<String> = self.nets.iter().map(ToString::to_string).collect();
        format!(
            "{}={}{}",
            self.name,
            if self.except { "!" } else { "" },
            nets.join(",")
        )
    }

    /// `NAME=CIDR[,CIDR...]` or `NAME=!CIDR[,...]`.
    pub fn parse(s: &str) -> Result<IfaceMap, String> {
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: write NAME=CIDR[,CIDR...] or NAME=!CIDR[,...]"))?;
        let name = name.trim();
        if name.is_empty() || name.ends_with('+') {
            return Err(format!(
                "{s:?}: name one interface (no empty name, no `+` wildcard)"
            ));
        }
        let (except, list) = match rest.trim().strip_prefix('!') {
            Some(l) => (true, l),
            None => (false, rest.trim()),
        };
        let nets = list
            .split(',')
            .map(|n| {
                let n = n.trim();
                n.parse::<IpNet>()
                    .or_else(|_| n.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| format!("{s:?}: {n:?} is not an address or CIDR"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IfaceMap {
            name: name.to_string(),
            except,
            nets,
        })
    }
}

/// The question.
#[derive(Debug, Clone)]
pub struct ReachQuery {
    /// INPUT, FORWARD or OUTPUT.
    pub hook: Hook,
    /// An IP protocol number (6 tcp, 17 udp...).
    pub proto: u8,
    pub dport: Option<u16>,
    pub sport: Option<u16>,
    pub state: CtState,
    pub ifaces: Vec<IfaceMap>,
    /// raw, mangle, filter and security in their order, not the filter table alone.
    pub all_tables: bool,
    /// Walk the nat table's PREROUTING (OUTPUT for the OUTPUT hook) first: a destination it
    /// DNATs is judged at its new address and port, so the answer is for the address a client
    /// uses (a port forward's public one).
    pub nat: bool,
}

/// A set of addresses the rule set treats alike, as a source and as a destination.
#[derive(Debug, Clone, Serialize)]
pub struct Class {
    pub name: String,
    /// `FIRST-LAST`, one address, or a CIDR block.
    pub ranges: Vec<String>,
    #[serde(skip)]
    pub set: RangeSet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub certain: bool,
}

/// A rule that makes some answers `possible`: it has a match the question cannot decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hinge {
    pub table: String,
    pub chain: String,
    /// 1-based, as `--line-numbers`.
    pub rule: usize,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Reach {
    pub family: Family,
    pub classes: Vec<Class>,
    /// Sorted by source, then destination class. No edge: certainly not accepted.
    pub edges: Vec<Edge>,
    /// The rules whose undecidable matches make answers possible (each once, in walk order).
    pub hinges: Vec<Hinge>,
    /// The chains walked: `filter FORWARD`, or every table's.
    pub walked: Vec<String>,
    /// How many elementary source ranges were walked (for the curious and the benchmarks).
    pub source_ranges: usize,
    /// What the reader should know about the question (an interface map with no address of
    /// this family).
    pub notes: Vec<String>,
}

impl Reach {
    /// The class holding an address.
    pub fn class_of(&self, a: std::net::IpAddr) -> Option<usize> {
        let x = num(a);
        self.classes.iter().position(|c| c.set.contains(x))
    }

    /// The answer from one class to another: `None` no edge, `Some(certain)`.
    pub fn edge(&self, from: usize, to: usize) -> Option<bool> {
        self.edges
            .binary_search_by(|e| (e.from, e.to).cmp(&(from, to)))
            .ok()
            .map(|i| self.edges[i].certain)
    }
}

/// What one condition says, over the sources or destinations (`t` yes, `u` undecidable, no
/// elsewhere), or the same for every address.
enum Said {
    Const(Tri),
    Src(RangeSet, RangeSet),
    Dst(RangeSet, RangeSet),
}

/// A rule read for the question.
struct RulePre {
    konst: Tri,
    src_t: RangeSet,
    src_u: RangeSet,
    dst_t: RangeSet,
    /// Where the destination conditions are yes or undecidable.
    dst_tu: RangeSet,
    /// The rule has something undecidable.
    hinge: bool,
}

/// `a AND b` over three-valued sets.
fn and_sets(t: &RangeSet, u: &RangeSet, ct: &RangeSet, cu: &RangeSet) -> (RangeSet, RangeSet) {
    let nt = t.intersect(ct);
    let nu = t.union(u).intersect(&ct.union(cu)).minus(&nt);
    (nt, nu)
}

fn not_sets(t: &RangeSet, u: &RangeSet, all: &RangeSet) -> (RangeSet, RangeSet) {
    (all.minus(t).minus(u), u.clone())
}

struct Reader<'a> {
    q: &'a ReachQuery,
    all: RangeSet,
    v6: bool,
    /// Each mapped interface's addresses.
    mapped: Vec<(String, RangeSet)>,
    /// Whether the packet was DNAT'd, when the nat table was walked (`--ctstate DNAT`).
    dnat: Option<bool>,
}

impl Reader<'_> {
    fn nets(&self, nets: &[IpNet]) -> RangeSet {
        RangeSet::from_ranges(
            nets.iter()
                .filter(|n| matches!(n, IpNet::V6(_)) == self.v6)
                .map(net_range)
                .collect(),
        )
    }

    fn port(&self, v: Option<u16>, lo: u16, hi: u16) -> Tri {
        match v {
            Some(p) => Tri::from_bool(lo <= p && p <= hi),
            None if lo == 0 && hi == u16::MAX => Tri::Yes,
            None => Tri::Unknown,
        }
    }

    fn state(&self, neg: bool, mask: u8) -> Tri {
        use super::compile::{CT_DNAT, CT_SNAT};
        let t = if mask & ct_bit(self.q.state) != 0
            || (mask & CT_DNAT != 0 && self.dnat == Some(true))
        {
            Tri::Yes
        } else if mask & CT_SNAT != 0 || (mask & CT_DNAT != 0 && self.dnat.is_none()) {
            // SNAT comes after the filter table; DNAT is known when the nat table was walked.
            Tri::Unknown
        } else {
            Tri::No
        };
        t.negate_if(neg)
    }

    /// `-i`/`-o NAME[+]`, for the mapped interfaces.
    fn iface(&self, name: &str, wildcard: bool) -> (RangeSet, RangeSet) {
        let matches = |m: &str| {
            if wildcard {
                m.starts_with(name)
            } else {
                m == name
            }
        };
        let mut mine = RangeSet::empty();
        let mut others = RangeSet::empty();
        let mut any_mapped = false;
        for (m, set) in &self.mapped {
            if matches(m) {
                mine = mine.union(set);
                any_mapped = true;
            } else {
                others = others.union(set);
            }
        }
        let unmapped = self.all.minus(&mine).minus(&others);
        let t = mine.minus(&others);
        let mut u = mine.intersect(&others);
        // An address no mapped interface claims arrives on one nfscope was not told about:
        // that may be this one, unless it is a named (not wildcard) mapped interface, which
        // holds only its own addresses.
        if wildcard || !any_mapped {
            u = u.union(&unmapped);
        }
        (t, u)
    }

    fn read(&self, c: &Cond) -> Said {
        use super::compile::Dir;
        let q = self.q;
        let dir_set = |dir: Dir, set: RangeSet, neg: bool| {
            let (t, u) = if neg {
                (self.all.minus(&set), RangeSet::empty())
            } else {
                (set, RangeSet::empty())
            };
            match dir {
                Dir::Src => Said::Src(t, u),
                Dir::Dst => Said::Dst(t, u),
            }
        };
        match c {
            Cond::Proto { neg, proto } => {
                Said::Const(Tri::from_bool(*proto == 0 || *proto == q.proto).negate_if(*neg))
            }
            Cond::Addr { neg, dir, nets } => dir_set(*dir, self.nets(nets), *neg),
            Cond::IpRange { neg, dir, lo, hi } => {
                let same = matches!(lo, std::net::IpAddr::V6(_)) == self.v6;
                let set = if same {
                    RangeSet::range(num(*lo), num(*hi))
                } else {
                    RangeSet::empty()
                };
                dir_set(*dir, set, *neg)
            }
            Cond::Iface {
                neg,
                out,
                name,
                wildcard,
            } => {
                // No way in on OUTPUT, no way out yet on INPUT.
                if (*out && q.hook == Hook::Input) || (!*out && q.hook == Hook::Output) {
                    return Said::Const(Tri::No.negate_if(*neg));
                }
                let (t, u) = self.iface(name, *wildcard);
                let (t, u) = if *neg {
                    not_sets(&t, &u, &self.all)
                } else {
                    (t, u)
                };
                if *out {
                    Said::Dst(t, u)
                } else {
                    Said::Src(t, u)
                }
            }
            Cond::Fragment { neg } => Said::Const(Tri::No.negate_if(*neg)),
            Cond::NotFragment => Said::Const(Tri::Yes),
            Cond::Port { neg, dir, lo, hi } => {
                let v = match dir {
                    Dir::Src => q.sport,
                    Dir::Dst => q.dport,
                };
                Said::Const(self.port(v, *lo, *hi).negate_if(*neg))
            }
            Cond::Multiport { neg, dir, ranges } => {
                use super::compile::PortDir;
                let any = |v: Option<u16>| {
                    ranges
                        .iter()
                        .fold(Tri::No, |acc, &(lo, hi)| acc.or(self.port(v, lo, hi)))
                };
                let t = match dir {
                    PortDir::Src => any(q.sport),
                    PortDir::Dst => any(q.dport),
                    PortDir::Either => any(q.sport).or(any(q.dport)),
                };
                Said::Const(t.negate_if(*neg))
            }
            Cond::TcpFlags { neg, mask, cmp } => {
                let flags = if q.state == CtState::New {
                    TCP_SYN
                } else {
                    TCP_ACK
                };
                Said::Const(Tri::from_bool(flags & mask == *cmp).negate_if(*neg))
            }
            Cond::Icmp { neg, kind, .. } => Said::Const(match kind {
                None => Tri::Yes.negate_if(*neg),
                Some(_) => Tri::Unknown,
            }),
            Cond::State { neg, mask } => Said::Const(self.state(*neg, *mask)),
            Cond::Conntrack(m) => {
                let mut t = match m.state {
                    Some((neg, mask)) => self.state(neg, mask),
                    None => Tri::Yes,
                };
                for (neg, o) in &m.opts {
                    let x = match o {
                        CtOpt::Proto(p) => Tri::from_bool(*p == q.proto),
                        CtOpt::Dir(orig) => Tri::from_bool(*orig),
                        _ => Tri::Unknown,
                    };
                    t = t.and(x.negate_if(*neg));
                }
                Said::Const(t)
            }
            Cond::Const(b) => Said::Const(Tri::from_bool(*b)),
            Cond::Mark { .. }
            | Cond::ConnMark { .. }
            | Cond::Length { .. }
            | Cond::Ttl { .. }
            | Cond::PktType { .. }
            | Cond::Mac { .. }
            | Cond::AddrType(_)
            | Cond::Unknown { .. } => Said::Const(Tri::Unknown),
        }
    }

    fn rule(&self, r: &PRule) -> RulePre {
        let mut konst = Tri::Yes;
        let (mut src_t, mut src_u) = (self.all.clone(), RangeSet::empty());
        let (mut dst_t, mut dst_u) = (self.all.clone(), RangeSet::empty());
        for c in &r.conds {
            match self.read(c) {
                Said::Const(t) => konst = konst.and(t),
                Said::Src(t, u) => (src_t, src_u) = and_sets(&src_t, &src_u, &t, &u),
                Said::Dst(t, u) => (dst_t, dst_u) = and_sets(&dst_t, &dst_u, &t, &u),
            }
            if konst == Tri::No {
                break;
            }
        }
        let hinge = konst == Tri::Unknown || !src_u.is_empty() || !dst_u.is_empty();
        RulePre {
            konst,
            src_t,
            src_u,
            dst_tu: dst_t.union(&dst_u),
            dst_t,
            hinge,
        }
    }
}

/// Where the walk of one source range got to.
#[derive(Default)]
struct Outcome {
    /// Destinations some way accepted, and some way dropped or rejected.
    ap: RangeSet,
    dp: RangeSet,
    /// Rules (chain, index) whose undecidable matches were met with something to decide.
    hinges: Vec<(u32, usize)>,
    /// In the nat table: the destinations each DNAT rule may translate, and to what.
    dnat: Vec<(RangeSet, NatTo)>,
    /// In the nat table: destinations a translation nfscope does not follow may change
    /// (REDIRECT, NETMAP): either answer.
    unsure: RangeSet,
}

/// Deeper than any real rule set (the kernel refuses loops; a file may have one).
const MAX_DEPTH: usize = 64;

struct Walker<'a> {
    table: &'a PTable,
    pre: &'a [Vec<RulePre>],
    x: u128,
    /// The nat table: its DNATs are collected, its ACCEPT means "not translated".
    nat: bool,
}

impl Walker<'_> {
    /// Walk chain `c` with the destinations `here`; what comes back to the caller (a RETURN,
    /// the end of a user chain, a goto's chain coming back).
    fn chain(&self, c: u32, mut here: RangeSet, depth: usize, out: &mut Outcome) -> RangeSet {
        let Some(chain) = self.table.chains.get(c as usize) else {
            return here;
        };
        let pres = &self.pre[c as usize];
        let mut back = RangeSet::empty();
        if depth > MAX_DEPTH {
            // A loop: say both, decide nothing.
            out.ap = out.ap.union(&here);
            out.dp = out.dp.union(&here);
            return RangeSet::empty();
        }
        for (i, (rule, p)) in chain.rules.iter().zip(pres).enumerate() {
            if here.is_empty() {
                break;
            }
            let src = if p.src_t.contains(self.x) {
                Tri::Yes
            } else if p.src_u.contains(self.x) {
                Tri::Unknown
            } else {
                Tri::No
            };
            let t = p.konst.and(src);
            if t == Tri::No {
                continue;
            }
            let all = here.intersect(&p.dst_tu);
            if all.is_empty() {
                continue;
            }
            let sure = if t == Tri::Yes {
                here.intersect(&p.dst_t)
            } else {
                RangeSet::empty()
            };
            // A match that cannot be decided matters only where the rule can decide.
            let decides = !matches!(
                rule.action,
                Action::None
                    | Action::Continue(_)
                    | Action::Mark(..)
                    | Action::ConnMark(_)
                    | Action::NoTrack(_)
            );
            if p.hinge && decides && sure != all {
                out.hinges.push((c, i));
            }
            match &rule.action {
                Action::Accept => {
                    out.ap = out.ap.union(&all);
                    here = here.minus(&sure);
                }
                Action::Drop | Action::Reject => {
                    out.dp = out.dp.union(&all);
                    here = here.minus(&sure);
                }
                Action::Return => {
                    back = back.union(&all);
                    here = here.minus(&sure);
                }
                Action::Jump(j) => {
                    let r = self.chain(*j, all, depth + 1, out);
                    here = here.minus(&sure).union(&r);
                }
                Action::Goto(j) => {
                    let r = self.chain(*j, all, depth + 1, out);
                    back = back.union(&r);
                    here = here.minus(&sure);
                }
                Action::Dnat(to) if self.nat => {
                    out.dnat.push((all, *to));
                    here = here.minus(&sure);
                }
                Action::Redirect(_) | Action::Netmap(_) if self.nat => {
                    out.unsure = out.unsure.union(&all);
                    out.hinges.push((c, i));
                    here = here.minus(&sure);
                }
                Action::Queue | Action::Unmodelled(_) => {
                    // Userspace or a target nfscope does not model decides: either way, and the
                    // packet may go on.
                    out.ap = out.ap.union(&all);
                    out.dp = out.dp.union(&all);
                    out.hinges.push((c, i));
                }
                // Counting, logging, marking: the next rule follows (marks are undecidable
                // anyway).
                _ => {}
            }
        }
        back.union(&here)
    }

    /// A base chain: what falls off or returns meets the policy.
    fn base(&self, c: u32, here: RangeSet, policy: Option<Policy>, out: &mut Outcome) {
        let rest = self.chain(c, here, 0, out);
        match policy {
            Some(Policy::Accept) | None => out.ap = out.ap.union(&rest),
            Some(Policy::Drop) => out.dp = out.dp.union(&rest),
            Some(Policy::Queue | Policy::Other) => {
                out.ap = out.ap.union(&rest);
                out.dp = out.dp.union(&rest);
            }
        }
    }
}

fn chain_policy(ch: &PChain) -> Option<Policy> {
    ch.policy
}

/// Answer `q` over the rule set `rs`.
pub fn reach(rs: &Ruleset, q: &ReachQuery) -> Reach {
    let prep = Prepared::new(rs);
    let v6 = rs.family == Family::V6;
    let all = RangeSet::range(0, if v6 { u128::MAX } else { u128::from(u32::MAX) });
    let mut maps = q.ifaces.clone();
    if !maps.iter().any(|m| m.name == "lo") {
        let lo: IpNet = if v6 {
            "::1/128".parse().unwrap_or_default()
        } else {
            "127.0.0.0/8".parse().unwrap_or_default()
        };
        maps.push(IfaceMap {
            name: "lo".into(),
            except: false,
            nets: vec![lo],
        });
    }
    let mut reader = Reader {
        q,
        all: all.clone(),
        v6,
        mapped: Vec::new(),
        dnat: q.nat.then_some(false),
    };
    let mapped: Vec<(String, RangeSet)> = maps
        .iter()
        .map(|m| {
            let set = reader.nets(&m.nets);
            let set = if m.except { all.minus(&set) } else { set };
            (m.name.clone(), set)
        })
        .collect();
    reader.mapped = mapped;
    let notes: Vec<String> = q
        .ifaces
        .iter()
        .filter(|m| reader.nets(&m.nets).is_empty())
        .map(|m| {
            format!(
                "--iface {} names no {} address: read as {}",
                m.name,
                rs.family.label(),
                if m.except {
                    "every address arrives on it"
                } else {
                    "no address arrives on it"
                }
            )
        })
        .collect();

    // The tables walked, in the hook's order, with their base chain.
    let ids: Vec<TableId> = if q.all_tables {
        q.hook
            .tables()
            .iter()
            .copied()
            .filter(|t| *t != TableId::Nat)
            .collect()
    } else {
        vec![TableId::Filter]
    };
    let walked_tables: Vec<(TableId, &PTable, u32)> = ids
        .iter()
        .filter_map(|id| {
            let t = prep.tables[id.index()].as_ref()?;
            let base = t.base[q.hook.index()]?;
            Some((*id, t, base))
        })
        .collect();
    let read = |reader: &Reader, t: &PTable| -> Vec<Vec<RulePre>> {
        t.chains
            .iter()
            .map(|c| c.rules.iter().map(|r| reader.rule(r)).collect())
            .collect()
    };
    let pres: Vec<Vec<Vec<RulePre>>> = walked_tables
        .iter()
        .map(|(_, t, _)| read(&reader, t))
        .collect();
    // The nat table before them, and the rules read again for each port a DNAT sends to.
    let nat_hook = if q.hook == Hook::Output {
        Hook::Output
    } else {
        Hook::Prerouting
    };
    let nat: Option<(&PTable, u32, Vec<Vec<RulePre>>)> = if q.nat {
        prep.tables[TableId::Nat.index()].as_ref().and_then(|t| {
            let base = t.base[nat_hook.index()]?;
            Some((t, base, read(&reader, t)))
        })
    } else {
        None
    };
    // DNAT'd packets, by the port they go to (the asked one when a DNAT keeps it).
    let mut by_port: FxHashMap<Option<u16>, Vec<Vec<Vec<RulePre>>>> = FxHashMap::default();
    if let Some((t, _, _)) = &nat {
        for r in t.chains.iter().flat_map(|c| &c.rules) {
            if let Action::Dnat(to) = r.action {
                let port = to.ports.map(|(lo, _)| lo).or(q.dport);
                by_port.entry(port).or_insert_with(|| {
                    let q2 = ReachQuery {
                        dport: port,
                        ..q.clone()
                    };
                    let r2 = Reader {
                        q: &q2,
                        all: reader.all.clone(),
                        v6,
                        mapped: reader.mapped.clone(),
                        dnat: Some(true),
                    };
                    walked_tables.iter().map(|(_, t, _)| read(&r2, t)).collect()
                });
            }
        }
    }

    // Elementary source ranges: cut wherever a source condition changes its answer.
    let mut cuts: Vec<u128> = vec![0];
    let every = pres
        .iter()
        .chain(by_port.values().flatten())
        .flatten()
        .flatten()
        .chain(nat.iter().flat_map(|(_, _, p)| p.iter().flatten()));
    for p in every {
        if p.konst == Tri::No {
            continue;
        }
        for s in [&p.src_t, &p.src_u] {
            for &(lo, hi) in s.ranges() {
                cuts.push(lo);
                if hi < u128::MAX {
                    cuts.push(hi + 1);
                }
            }
        }
    }
    let top = all.ranges().first().map_or(0, |r| r.1);
    cuts.retain(|&c| c <= top);
    cuts.sort_unstable();
    cuts.dedup();

    // One walk per source range.
    let mut rows: Vec<(RangeSet, RangeSet)> = Vec::with_capacity(cuts.len());
    let mut hinge_ids: Vec<(TableId, u32, usize)> = Vec::new();
    let mut note = |id: TableId, hs: Vec<(u32, usize)>| {
        for (c, i) in hs {
            if !hinge_ids.contains(&(id, c, i)) {
                hinge_ids.push((id, c, i));
            }
        }
    };
    // The tables in order from `here`: what some way accepts, what some way drops.
    let walk = |pres: &[Vec<Vec<RulePre>>],
                x: u128,
                mut here: RangeSet,
                note: &mut dyn FnMut(TableId, Vec<(u32, usize)>)| {
        let mut dp = RangeSet::empty();
        for (k, (id, t, base)) in walked_tables.iter().enumerate() {
            let w = Walker {
                table: t,
                pre: &pres[k],
                x,
                nat: false,
            };
            let mut out = Outcome::default();
            let policy = t.chains.get(*base as usize).and_then(chain_policy);
            w.base(*base, here, policy, &mut out);
            dp = dp.union(&out.dp);
            // What a table accepts goes on to the next one.
            here = out.ap;
            note(*id, out.hinges);
        }
        (here, dp)
    };
    for &x in &cuts {
        let Some((t, base, nat_pres)) = &nat else {
            rows.push(walk(&pres, x, all.clone(), &mut note));
            continue;
        };
        let w = Walker {
            table: t,
            pre: nat_pres,
            x,
            nat: true,
        };
        let mut out = Outcome::default();
        w.base(*base, all.clone(), Some(Policy::Accept), &mut out);
        note(TableId::Nat, std::mem::take(&mut out.hinges));
        // Not translated: as asked.
        let (mut ap, dp0) = walk(&pres, x, out.ap, &mut note);
        let mut dp = dp0.union(&out.dp);
        for (m, to) in out.dnat {
            let port = to.ports.map(|(lo, _)| lo).or(q.dport);
            let pres2 = by_port.get(&port).unwrap_or(&pres);
            let target = to
                .addr
                .filter(|(a, _)| matches!(a, std::net::IpAddr::V6(_)) == v6)
                .map(|(a, b)| RangeSet::range(num(a), num(b)));
            // A destination translated to itself (the same address, the same port) is not
            // translated at all, as the kernel sees it: no DNAT status.
            let same_port = to
                .ports
                .is_none_or(|(lo, hi)| lo == hi && Some(lo) == q.dport);
            let m = match &target {
                Some(tset) if same_port && !tset.intersect(&m).is_empty() => {
                    let itself = tset.intersect(&m);
                    let single =
                        tset.ranges().len() == 1 && tset.ranges()[0].0 == tset.ranges()[0].1;
                    if single {
                        let (a, d) = walk(&pres, x, itself.clone(), &mut note);
                        ap = ap.union(&a);
                        dp = dp.union(&d);
                    } else {
                        // Which address of the range the kernel picks is not known.
                        ap = ap.union(&itself);
                        dp = dp.union(&itself);
                    }
                    m.minus(&itself)
                }
                _ => m,
            };
            if m.is_empty() {
                continue;
            }
            match target {
                // To one address (or a range): every destination it translates gets the
                // answer of the new address(es).
                Some(tset) => {
                    let (apt, dpt) = walk(pres2, x, tset.clone(), &mut note);
                    let any = !apt.intersect(&tset).is_empty();
                    let every = apt.intersect(&tset) == tset && dpt.intersect(&tset).is_empty();
                    if any {
                        ap = ap.union(&m);
                    }
                    if !every {
                        dp = dp.union(&m);
                    }
                }
                // The port alone: each destination keeps its own answer.
                None => {
                    let (apt, dpt) = walk(pres2, x, m.clone(), &mut note);
                    ap = ap.union(&apt);
                    dp = dp.union(&dpt);
                }
            }
            // A port range: which port is not known.
            if to.ports.is_some_and(|(lo, hi)| lo != hi) {
                ap = ap.union(&m);
                dp = dp.union(&m);
            }
        }
        rows.push((ap.union(&out.unsure), dp.union(&out.unsure)));
    }

    let (classes, edges) = group(&cuts, &rows, top, v6);
    let hinges = hinge_ids
        .into_iter()
        .filter_map(|(id, c, i)| {
            let chain = rs.table(id.name())?.chains.get(c as usize)?;
            let rule = chain.rules.get(i)?;
            Some(Hinge {
                table: id.name().to_string(),
                chain: chain.name.clone(),
                rule: i + 1,
                text: crate::ruleset::save::rule_line(
                    &chain.name,
                    rule,
                    crate::ruleset::save::CounterMode::Without,
                ),
            })
        })
        .collect();
    Reach {
        family: rs.family,
        classes,
        edges,
        hinges,
        walked: nat
            .iter()
            .map(|_| format!("nat {}", nat_hook.name()))
            .chain(
                walked_tables
                    .iter()
                    .map(|(id, _, _)| format!("{} {}", id.name(), q.hook.name())),
            )
            .collect(),
        source_ranges: cuts.len(),
        notes,
    }
}

/// 0 no edge, 1 possible, 2 certain.
fn label(ap: &RangeSet, dp: &RangeSet, d: u128) -> u8 {
    match (ap.contains(d), dp.contains(d)) {
        (false, _) => 0,
        (true, true) => 1,
        (true, false) => 2,
    }
}

/// Sources with the same answers, destinations with the same answers, and the classes that
/// are both (the coarsest partition where every class is one row and one column).
fn group(
    src_cuts: &[u128],
    rows: &[(RangeSet, RangeSet)],
    top: u128,
    v6: bool,
) -> (Vec<Class>, Vec<Edge>) {
    // Rows alike: one row class each.
    let mut row_ids: FxHashMap<&(RangeSet, RangeSet), usize> = FxHashMap::default();
    let mut row_reps: Vec<&(RangeSet, RangeSet)> = Vec::new();
    let row_of: Vec<usize> = rows
        .iter()
        .map(|r| {
            *row_ids.entry(r).or_insert_with(|| {
                row_reps.push(r);
                row_reps.len() - 1
            })
        })
        .collect();
    // Destination ranges: cut wherever some row's answer changes.
    let mut dcuts: Vec<u128> = vec![0];
    for (ap, dp) in &row_reps {
        for s in [ap, dp] {
            for &(lo, hi) in s.ranges() {
                dcuts.push(lo);
                if hi < top {
                    dcuts.push(hi + 1);
                }
            }
        }
    }
    dcuts.retain(|&c| c <= top);
    dcuts.sort_unstable();
    dcuts.dedup();
    let mut col_ids: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
    let mut col_reps: Vec<u128> = Vec::new();
    let col_of: Vec<usize> = dcuts
        .iter()
        .map(|&d| {
            let col: Vec<u8> = row_reps.iter().map(|(ap, dp)| label(ap, dp, d)).collect();
            let n = col_ids.len();
            *col_ids.entry(col).or_insert_with(|| {
                col_reps.push(d);
                n
            })
        })
        .collect();
    // Both at once: cut at both kinds of boundary.
    let mut joint: Vec<u128> = src_cuts.iter().chain(&dcuts).copied().collect();
    joint.sort_unstable();
    joint.dedup();
    let at = |cuts: &[u128], x: u128| cuts.partition_point(|&c| c <= x).saturating_sub(1);
    let mut class_ids: FxHashMap<(usize, usize), usize> = FxHashMap::default();
    let mut members: Vec<Vec<(u128, u128)>> = Vec::new();
    let mut keys: Vec<(usize, usize)> = Vec::new();
    for (k, &lo) in joint.iter().enumerate() {
        let hi = joint.get(k + 1).map_or(top, |n| n - 1);
        let key = (row_of[at(src_cuts, lo)], col_of[at(&dcuts, lo)]);
        let id = *class_ids.entry(key).or_insert_with(|| {
            members.push(Vec::new());
            keys.push(key);
            members.len() - 1
        });
        members[id].push((lo, hi));
    }
    let classes: Vec<Class> = members
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let set = RangeSet::from_ranges(m);
            Class {
                name: class_name(i),
                ranges: set
                    .ranges()
                    .iter()
                    .map(|&(lo, hi)| range_text(lo, hi, v6))
                    .collect(),
                set,
            }
        })
        .collect();
    let mut edges = Vec::new();
    for (a, &(row, _)) in keys.iter().enumerate() {
        let (ap, dp) = row_reps[row];
        for (b, &(_, col)) in keys.iter().enumerate() {
            match label(ap, dp, col_reps[col]) {
                0 => {}
                l => edges.push(Edge {
                    from: a,
                    to: b,
                    certain: l == 2,
                }),
            }
        }
    }
    (classes, edges)
}

/// a, b, ... z, aa, ab, ...
pub fn class_name(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}
