//! Stale flows: live conntrack entries whose first packet the rule set as it is now would no
//! longer accept. Such a connection lives on only because its later packets are ESTABLISHED
//! and accepted early; a rule change meant to cut it off did not. Pure: the caller reads the
//! table, the rule sets and this machine's addresses (docs/analysis.md, "Stale flows").
//!
//! For each entry the NEW packet of its original direction is built from the original tuple
//! (what the packet looked like before any DNAT: the nat table is walked by the trace itself),
//! traced with the tracer of the entry's family, and classified: accepted on every path, dropped
//! or rejected on every path (stale, with the deciding rule), or the paths disagree (maybe, with
//! what they hinge on). Each distinct packet is traced once: the source port is left out of the
//! packet, and of the cache key, unless some rule of that family reads a source port.

use super::nft::Native;
use super::packet::has_ports;
use super::{LocalAddr, Origin, Packet, Step, TableId, Trace, TraceOptions, Tracer, Verdict};
use crate::conntrack::{Entry, Status};
use crate::ruleset::{Family, Ruleset};
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// What the rule set as it is now does to an entry's first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Every path accepts it: the connection could start again today.
    Accepted,
    /// Every path drops or rejects it: only the early ESTABLISHED accept keeps it alive.
    Stale,
    /// The paths disagree (an unknown match decides) or end otherwise (QUEUE, a target nfscope
    /// does not model, an error).
    Maybe,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Accepted => "accepted",
            Class::Stale => "stale",
            Class::Maybe => "maybe",
        }
    }
}

/// The rule (or chain policy) that decides a stale entry's first packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decider {
    pub family: Family,
    /// `filter`, or a native table's family and name (`inet fw`).
    pub table: String,
    pub chain: String,
    /// 1-based; `None` for the chain's policy.
    pub rule: Option<usize>,
    /// A native rule's handle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    pub verdict: Verdict,
    /// The rule as iptables-save writes it (`-A INPUT -p tcp --dport 22 -j DROP`) or as
    /// `nft -a list ruleset` prints it; `None` for a policy, or a native rule without text.
    pub text: Option<String>,
}

impl fmt::Display for Decider {
    /// `filter INPUT rule 4: -A INPUT -p tcp -m tcp --dport 22 -j DROP`, or `filter INPUT
    /// policy DROP`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.table, self.chain)?;
        match (self.rule, &self.text) {
            (None, _) => write!(f, "policy {}", self.verdict),
            (Some(n), Some(t)) => write!(f, "rule {n}: {t}"),
            (Some(n), None) => match self.handle {
                Some(h) => write!(f, "rule {n} (handle {h}): {}", self.verdict),
                None => write!(f, "rule {n}: {}", self.verdict),
            },
        }
    }
}

/// One entry's answer (shared by every entry with the same first packet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub class: Class,
    /// For `stale`: the rule that drops it (the first path's, when paths end at different
    /// rules with the same verdict).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<Decider>,
    /// The verdicts of all paths.
    pub verdicts: Vec<Verdict>,
    /// The trace's one-line answer: for `maybe`, the unknown matches it hinges on.
    pub summary: String,
}

/// Why an entry is not analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// A raw NOTRACK exempted it: it never had a NEW packet.
    Untracked,
    /// An expected connection (a helper's data channel): its first packet was RELATED.
    Expected,
    /// Being destroyed.
    Dying,
    /// An ICMP entry without type and code.
    NoIcmpType,
    /// No rule set of its family was loaded.
    NoRuleset,
}

impl Skip {
    /// The key in `nfscope conntrack --stale --format json`'s `skipped` object.
    pub fn key(self) -> &'static str {
        match self {
            Skip::Untracked => "untracked",
            Skip::Expected => "expected",
            Skip::Dying => "dying",
            Skip::NoIcmpType => "no_icmp_type",
            Skip::NoRuleset => "no_ruleset",
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Skip::Untracked => "untracked",
            Skip::Expected => "expected (RELATED) connections",
            Skip::Dying => "being destroyed",
            Skip::NoIcmpType => "ICMP without a type",
            Skip::NoRuleset => "no rule set of their family",
        }
    }
}

/// What an analysis of a table found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Index into the entries given, and the finding, in table order.
    pub stale: Vec<(usize, Arc<Finding>)>,
    pub maybe: Vec<(usize, Arc<Finding>)>,
    pub accepted: usize,
    /// How many entries were skipped, by reason, in the order of [`Skip`].
    pub skipped: Vec<(Skip, usize)>,
    /// Entries looked at.
    pub total: usize,
    /// Distinct packets traced.
    pub traced: usize,
}

impl Report {
    pub fn skipped_total(&self) -> usize {
        self.skipped.iter().map(|(_, n)| n).sum()
    }
}

/// An analysis's answer kept by entry (for a screen that shows a live table): the stale and
/// maybe entries' findings by their keys, and the counts.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub stale: FxHashMap<crate::conntrack::EntryKey, Arc<Finding>>,
    pub maybe: usize,
    /// Entries looked at.
    pub total: usize,
    pub skipped: usize,
    /// What the analysis could not read (native chains, this machine's addresses).
    pub warnings: Vec<String>,
}

impl Found {
    /// Analyse `entries` with `stale`.
    pub fn of(stale: &mut Stale, entries: &[Entry], warnings: Vec<String>) -> Found {
        let r = stale.analyze(entries);
        Found {
            stale: r
                .stale
                .iter()
                .filter_map(|(i, f)| Some((entries.get(*i)?.key(), f.clone())))
                .collect(),
            maybe: r.maybe.len(),
            total: r.total,
            skipped: r.skipped_total(),
            warnings,
        }
    }
}

/// The cache key: what the first packet depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    family: Family,
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    sport: Option<u16>,
    dport: Option<u16>,
    icmp: Option<(u8, u8)>,
    local: bool,
    /// The address the connection is SNAT'd to, when it is one of this machine's with an
    /// interface: the packet leaves by that interface.
    snat_via: Option<IpAddr>,
}

/// A cached answer: the finding, and whether the trace forked on a source-port condition (then
/// the answer for a given source port is traced with it).
#[derive(Debug, Clone)]
struct Cached {
    finding: Arc<Finding>,
    by_sport: bool,
}

struct Prepared {
    family: Family,
    rs: Ruleset,
    tracer: Tracer,
    /// Some rule reads a source port: it is part of the packet and the key.
    sport: bool,
}

/// The analysis, prepared once for a rule set (both families) and this machine's addresses;
/// it remembers each distinct packet's answer.
pub struct Stale {
    sets: Vec<Prepared>,
    opts: TraceOptions,
    cache: FxHashMap<Key, Cached>,
    traced: usize,
}

/// Whether an iptables rule set has a rule that reads a source port.
fn reads_source_port(rs: &Ruleset) -> bool {
    const WORDS: [&str; 5] = [
        "--sport",
        "--source-port",
        "--sports",
        "--source-ports",
        "--ports",
    ];
    rs.tables
        .iter()
        .flat_map(|t| &t.chains)
        .flat_map(|c| &c.rules)
        .any(|r| r.text.split_whitespace().any(|w| WORDS.contains(&w)))
}

impl Stale {
    /// `sets`: the iptables rule set of each family loaded, with the native nftables chains of
    /// that family beside it.
    pub fn new(sets: Vec<(Ruleset, Native)>, local_addrs: Vec<LocalAddr>) -> Stale {
        let sets = sets
            .into_iter()
            .map(|(rs, native)| {
                let sport = reads_source_port(&rs) || native.reads_source_port();
                let tracer = Tracer::with_native(&rs, native);
                Prepared {
                    family: rs.family,
                    rs,
                    tracer,
                    sport,
                }
            })
            .collect();
        Stale {
            sets,
            opts: TraceOptions {
                local_addrs,
                ..TraceOptions::default()
            },
            cache: FxHashMap::default(),
            traced: 0,
        }
    }

    fn set(&self, family: Family) -> Option<&Prepared> {
        self.sets.iter().find(|s| s.family == family)
    }

    /// The tracer of a family (for tests that check an answer against a trace).
    pub fn tracer(&self, family: Family) -> Option<&Tracer> {
        self.set(family).map(|s| &s.tracer)
    }

    pub fn options(&self) -> &TraceOptions {
        &self.opts
    }

    /// The interface a packet from `src` to `dst` arrives on: the one whose network holds the
    /// source (the connected route; the longest prefix wins), else the one that holds the
    /// destination when it is this machine's address. Unknown otherwise.
    fn arrives_on(&self, src: IpAddr, dst: IpAddr) -> Option<String> {
        let locals = &self.opts.local_addrs;
        locals
            .iter()
            .filter_map(|l| {
                let net = IpNet::new(l.addr, l.prefix).ok()?.trunc();
                let iface = l.iface.as_ref()?;
                (l.prefix > 0 && l.prefix < net.max_prefix_len() && net.contains(&src))
                    .then_some((iface, net.prefix_len()))
            })
            .max_by_key(|(_, p)| *p)
            .map(|(i, _)| i.clone())
            .or_else(|| self.iface_of(dst))
    }

    /// The interface of this machine's address `a`.
    fn iface_of(&self, a: IpAddr) -> Option<String> {
        self.opts
            .local_addrs
            .iter()
            .find(|l| l.addr == a)?
            .iface
            .clone()
    }

    fn is_local(&self, a: IpAddr) -> bool {
        a.is_loopback() || self.opts.local_addrs.iter().any(|l| l.addr == a)
    }

    /// The key, the source port left out (see [`Cached::by_sport`]).
    fn key(&self, e: &Entry) -> Result<Key, Skip> {
        if e.status.has(Status::UNTRACKED) {
            return Err(Skip::Untracked);
        }
        if e.status.has(Status::EXPECTED) {
            return Err(Skip::Expected);
        }
        if e.status.has(Status::DYING) {
            return Err(Skip::Dying);
        }
        if self.set(e.family).is_none() {
            return Err(Skip::NoRuleset);
        }
        let proto = e.proto.0;
        let o = &e.orig;
        let icmp = if e.proto.is_icmp() {
            let i = o.icmp.ok_or(Skip::NoIcmpType)?;
            Some((i.kind, i.code))
        } else {
            None
        };
        let ports = has_ports(proto);
        Ok(Key {
            family: e.family,
            proto,
            src: o.src,
            dst: o.dst,
            sport: None,
            dport: o.dport.filter(|_| ports),
            icmp,
            local: self.is_local(o.src),
            snat_via: Some(e.reply.dst).filter(|&a| a != o.src && self.iface_of(a).is_some()),
        })
    }

    fn packet_of(&self, k: &Key) -> Packet {
        let mut p = Packet::new(k.proto, k.src, k.dst);
        p.sport = k.sport;
        p.dport = k.dport;
        p.icmp = k.icmp;
        p.ctmark = Some(0);
        if k.local {
            p.origin = Origin::Local;
        } else {
            p.in_iface = self.arrives_on(k.src, k.dst);
        }
        p.out_iface = k.snat_via.and_then(|a| self.iface_of(a));
        p
    }

    /// The NEW packet of an entry's original direction, as the analysis traces it first (the
    /// source port unknown: see [`Stale::classify`]).
    pub fn packet(&self, e: &Entry) -> Result<Packet, Skip> {
        self.key(e).map(|k| self.packet_of(&k))
    }

    /// The answer for one entry. The packet is traced with the source port unknown; only when
    /// that trace forked on a source-port condition (and some rule of the family reads one)
    /// is it traced again with the entry's own source port.
    pub fn classify(&mut self, e: &Entry) -> Result<Arc<Finding>, Skip> {
        let k = self.key(e)?;
        let first = self.cached(k)?;
        if !first.by_sport {
            return Ok(first.finding);
        }
        let has_ports = has_ports(k.proto);
        let k = Key {
            sport: e.orig.sport.filter(|_| has_ports),
            ..k
        };
        Ok(self.cached(k)?.finding)
    }

    fn cached(&mut self, k: Key) -> Result<Cached, Skip> {
        if let Some(c) = self.cache.get(&k) {
            return Ok(c.clone());
        }
        let set = self.set(k.family).ok_or(Skip::NoRuleset)?;
        let trace = set.tracer.trace(&self.packet_of(&k), &self.opts);
        let by_sport = k.sport.is_none() && set.sport && forks_on_sport(&trace);
        let c = Cached {
            finding: Arc::new(finding(set, &trace)),
            by_sport,
        };
        self.traced += 1;
        self.cache.insert(k, c.clone());
        Ok(c)
    }

    /// Distinct packets traced so far.
    pub fn traced(&self) -> usize {
        self.traced
    }

    /// Classify every entry.
    pub fn analyze<'a>(&mut self, entries: impl IntoIterator<Item = &'a Entry>) -> Report {
        let before = self.traced();
        let mut r = Report::default();
        let mut skipped: FxHashMap<Skip, usize> = FxHashMap::default();
        for (i, e) in entries.into_iter().enumerate() {
            r.total += 1;
            match self.classify(e) {
                Ok(f) => match f.class {
                    Class::Accepted => r.accepted += 1,
                    Class::Stale => r.stale.push((i, f)),
                    Class::Maybe => r.maybe.push((i, f)),
                },
                Err(s) => *skipped.entry(s).or_default() += 1,
            }
        }
        r.skipped = [
            Skip::Untracked,
            Skip::Expected,
            Skip::Dying,
            Skip::NoIcmpType,
            Skip::NoRuleset,
        ]
        .into_iter()
        .filter_map(|s| skipped.get(&s).map(|&n| (s, n)))
        .collect();
        r.traced = self.traced() - before;
        r
    }
}

/// Whether a trace made with the source port unknown may have gone otherwise with a known one:
/// some path assumed a source-port condition, or branches were left unexplored.
fn forks_on_sport(trace: &Trace) -> bool {
    const WORDS: [&str; 3] = ["sport", "source-port", "--ports"];
    trace.unexplored > 0
        || trace.paths.iter().any(|p| {
            p.assumptions
                .iter()
                .any(|a| WORDS.iter().any(|w| a.condition.contains(w)))
        })
}

/// Classify a trace of the first packet.
fn finding(set: &Prepared, trace: &Trace) -> Finding {
    let verdicts = trace.verdicts();
    let all = |ok: fn(Verdict) -> bool| {
        trace.unexplored == 0
            && !trace.paths.is_empty()
            && trace.paths.iter().all(|p| ok(p.verdict))
    };
    let class = if all(|v| v == Verdict::Accept) {
        Class::Accepted
    } else if all(|v| matches!(v, Verdict::Drop | Verdict::Reject)) {
        Class::Stale
    } else {
        Class::Maybe
    };
    let rule = match class {
        Class::Stale => trace.paths.first().and_then(|p| {
            let s = p.decider()?;
            Some(decider(set, s, p.verdict))
        }),
        _ => None,
    };
    // The summary weighs every fork against the others: only a "maybe" needs it.
    let summary = match class {
        Class::Maybe => trace.summary(),
        _ => verdicts
            .iter()
            .map(|v| v.name())
            .collect::<Vec<_>>()
            .join(" or "),
    };
    Finding {
        class,
        rule,
        verdicts,
        summary,
    }
}

fn decider(set: &Prepared, s: &Step, verdict: Verdict) -> Decider {
    let chain = s.chain.as_deref().unwrap_or("?").to_string();
    if let Some(t) = &s.nft_table {
        let text = s
            .handle
            .and_then(|h| set.tracer.native().rule_text(t, &chain, h))
            .map(str::to_string);
        return Decider {
            family: s.family,
            table: t.to_string(),
            chain,
            rule: s.rule,
            handle: s.handle,
            verdict,
            text,
        };
    }
    let table = s.table.unwrap_or(TableId::Filter);
    let text = s.rule_index().and_then(|i| {
        let c = set
            .rs
            .tables
            .iter()
            .find(|t| t.name == table.name())?
            .chains
            .iter()
            .find(|c| c.name == chain)?;
        Some(format!("-A {chain} {}", c.rules.get(i)?.text))
    });
    Decider {
        family: s.family,
        table: table.name().to_string(),
        chain,
        rule: s.rule,
        handle: None,
        verdict,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::{Icmp, Proto, State, TcpState, Tuple};

    fn rs(text: &str) -> Ruleset {
        crate::ruleset::parse::parse(text, Family::V4).unwrap()
    }

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> Entry {
        let orig = Tuple {
            src: v4(src),
            dst: v4(dst),
            sport: Some(sport),
            dport: Some(dport),
            icmp: None,
        };
        let reply = Tuple {
            src: orig.dst,
            dst: orig.src,
            sport: orig.dport,
            dport: orig.sport,
            icmp: None,
        };
        let mut e = Entry::new(Family::V4, Proto::TCP, orig, reply);
        e.state = Some(State::Tcp(TcpState::Established));
        e.status = Status(Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED);
        e
    }

    fn locals() -> Vec<LocalAddr> {
        ["10.0.0.1/24%lan0", "203.0.113.2/24%wan0"]
            .iter()
            .map(|s| LocalAddr::parse(s).unwrap())
            .collect()
    }

    fn stale_for(filter: &str) -> Stale {
        let text = format!("*filter\n{filter}COMMIT\n");
        Stale::new(vec![(rs(&text), Native::default())], locals())
    }

    const BASE: &str = ":INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
        -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n";

    #[test]
    fn accepted_stale_and_maybe() {
        let mut s = stale_for(&format!(
            "{BASE}-A INPUT -p tcp --dport 22 -j ACCEPT\n\
             -A INPUT -p tcp --dport 25 -m limit --limit 1/s -j ACCEPT\n\
             -A INPUT -p tcp --dport 23 -j REJECT\n"
        ));
        let ssh = s.classify(&tcp("10.0.0.5", 40000, "10.0.0.1", 22)).unwrap();
        assert_eq!(ssh.class, Class::Accepted, "{ssh:?}");
        let telnet = s.classify(&tcp("10.0.0.5", 40001, "10.0.0.1", 23)).unwrap();
        assert_eq!(telnet.class, Class::Stale);
        assert_eq!(
            telnet.rule.as_ref().unwrap().to_string(),
            "filter INPUT rule 4: -A INPUT -p tcp --dport 23 -j REJECT"
        );
        let http = s.classify(&tcp("10.0.0.5", 40002, "10.0.0.1", 80)).unwrap();
        assert_eq!(http.class, Class::Stale);
        assert_eq!(
            http.rule.as_ref().unwrap().to_string(),
            "filter INPUT policy DROP"
        );
        let smtp = s.classify(&tcp("10.0.0.5", 40003, "10.0.0.1", 25)).unwrap();
        assert_eq!(smtp.class, Class::Maybe);
        assert!(smtp.summary.contains("limit"), "{}", smtp.summary);
    }

    #[test]
    fn one_trace_per_packet_and_the_source_port_only_when_read() {
        let mut s = stale_for(&format!("{BASE}-A INPUT -p tcp --dport 22 -j ACCEPT\n"));
        let entries: Vec<Entry> = (0..50)
            .map(|i| tcp("10.0.0.5", 40000 + i, "10.0.0.1", 22))
            .collect();
        let r = s.analyze(&entries);
        assert_eq!((r.accepted, r.traced), (50, 1));
        let mut s = stale_for(&format!(
            "{BASE}-A INPUT -p tcp --sport 40007 -j DROP\n-A INPUT -p tcp --dport 22 -j ACCEPT\n"
        ));
        let r = s.analyze(&entries);
        // Traced once with the port unknown (it forks on --sport 40007), then once per port.
        assert_eq!((r.accepted, r.stale.len(), r.traced), (49, 1, 51));
        assert_eq!(r.stale[0].0, 7);
    }

    #[test]
    fn a_dnat_entry_is_traced_before_its_translation() {
        let text = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
            :POSTROUTING ACCEPT [0:0]\n\
            -A PREROUTING -i wan0 -p tcp --dport 2222 -j DNAT --to-destination 10.0.0.10:22\n\
            COMMIT\n*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
            -A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT\n\
            -A FORWARD -d 10.0.0.10 -p tcp --dport 22 -j DROP\n\
            -A FORWARD -d 10.0.0.10 -p tcp --dport 2222 -j ACCEPT\nCOMMIT\n";
        let mut s = Stale::new(vec![(rs(text), Native::default())], locals());
        let mut e = tcp("203.0.113.50", 50000, "203.0.113.2", 2222);
        e.reply.src = v4("10.0.0.10");
        e.reply.sport = Some(22);
        e.status = Status(e.status.0 | Status::DST_NAT);
        let f = s.classify(&e).unwrap();
        assert_eq!(f.class, Class::Stale, "{f:?}");
        assert_eq!(
            f.rule.as_ref().unwrap().to_string(),
            "filter FORWARD rule 2: -A FORWARD -d 10.0.0.10 -p tcp --dport 22 -j DROP"
        );
        let p = s.packet(&e).unwrap();
        assert_eq!((p.dst, p.dport), (v4("203.0.113.2"), Some(2222)));
        assert_eq!(p.in_iface.as_deref(), Some("wan0"));
        assert!(p.dnat.is_none(), "the nat table decides, not the binding");
    }

    #[test]
    fn a_local_entry_goes_through_output() {
        let mut s = stale_for(
            ":INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n\
             -A OUTPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n\
             -A OUTPUT -p tcp --dport 443 -j ACCEPT\n",
        );
        let out = tcp("203.0.113.2", 41000, "198.51.100.9", 443);
        assert_eq!(s.packet(&out).unwrap().origin, Origin::Local);
        assert_eq!(s.classify(&out).unwrap().class, Class::Accepted);
        let smtp = tcp("203.0.113.2", 41001, "198.51.100.9", 25);
        let f = s.classify(&smtp).unwrap();
        assert_eq!(f.class, Class::Stale);
        assert_eq!(
            f.rule.as_ref().unwrap().to_string(),
            "filter OUTPUT policy DROP"
        );
        // Loopback is local whatever the addresses given.
        let lo = tcp("127.0.0.1", 41002, "127.0.0.1", 8080);
        assert_eq!(s.packet(&lo).unwrap().origin, Origin::Local);
    }

    #[test]
    fn icmp_echo_and_skips() {
        let mut s = stale_for(&format!(
            "{BASE}-A INPUT -p icmp --icmp-type echo-request -j DROP\n"
        ));
        let orig = Tuple {
            src: v4("10.0.0.5"),
            dst: v4("10.0.0.1"),
            sport: None,
            dport: None,
            icmp: Some(Icmp {
                kind: 8,
                code: 0,
                id: 7,
            }),
        };
        let reply = Tuple {
            src: orig.dst,
            dst: orig.src,
            icmp: Some(Icmp {
                kind: 0,
                code: 0,
                id: 7,
            }),
            ..orig
        };
        let ping = Entry::new(Family::V4, Proto::ICMP, orig, reply);
        assert_eq!(s.classify(&ping).unwrap().class, Class::Stale);
        let mut untracked = tcp("10.0.0.5", 1, "10.0.0.1", 2);
        untracked.status = Status(Status::UNTRACKED);
        let mut expected = tcp("10.0.0.5", 1, "10.0.0.1", 3);
        expected.status = Status(Status::EXPECTED | Status::SEEN_REPLY);
        let mut v6 = tcp("10.0.0.5", 1, "10.0.0.1", 4);
        v6.family = Family::V6;
        let r = s.analyze([&untracked, &expected, &v6, &ping]);
        assert_eq!(
            r.skipped,
            [
                (Skip::Untracked, 1),
                (Skip::Expected, 1),
                (Skip::NoRuleset, 1)
            ]
        );
        assert_eq!((r.total, r.stale.len()), (4, 1));
    }
}
