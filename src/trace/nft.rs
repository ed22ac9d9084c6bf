//! Native nftables chains in a trace: the base chains of the native tables (ip, ip6 and inet)
//! at each hook, and the evaluation of their rules on the expressions the kernel holds
//! (`source::nft_expr`), three-valued as the iptables conditions are.
//!
//! A rule runs as the kernel runs it: a register machine. Loads (`payload`, `meta`, `ct`,
//! `fib`, `immediate`) put values in registers, `bitwise` and `byteorder` transform them, `cmp`,
//! `range` and `lookup` either let the rule go on or break it, and the verdict register ends
//! it. A register's value may be partly unknown: bytes whose bits are known or not (a mark, a
//! header field the packet description does not fix), an interval (a port not given, an
//! address after NAT to a range), or one of a few candidates (one of this machine's addresses).
//! A comparison that every possible value answers alike is decided; otherwise it is unknown,
//! and the walk forks on the rule as it does for an iptables rule. Expressions nfscope does not
//! model (limit, quota, numgen, socket, osf, exthdr, an unknown name) make their result
//! unknown, never a match.

use super::eval::{AddrVal, Bits, Env, IfVal, Pkt, PortVal};
use super::packet::{CtState, Origin, PktType};
use super::{Hook, Name, TableId, Tri};
use crate::ruleset::Family;
use crate::source::nft_expr::{self as nx, BitOp, CmpOp, Data, Expr, NftSet, SET_EVAL};
use crate::source::nft_netlink::{NftRuleset, TABLE_DORMANT, family_name};
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// The native part of the rule set, prepared for tracing packets of one family.
#[derive(Debug, Clone, Default)]
pub struct Native {
    pub(crate) chains: Vec<NChain>,
    sets: Vec<NSet>,
    /// (table index, chain name) → chain; (table index, set name) → set.
    chain_ix: HashMap<(u32, String), u32>,
    set_ix: HashMap<(u32, String), u32>,
    /// The hooked base chains at each hook (`Hook::index`).
    pub(crate) bases: [Vec<u32>; 5],
    /// When the iptables-nft tables' base chains were made: (table handle, chain handle), for
    /// the order of chains of equal priority.
    pub(crate) ipt_order: HashMap<(TableId, Hook), (u64, u64)>,
    /// Dormant tables, named, for the record.
    pub dormant: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct NChain {
    /// `inet fw`.
    pub table: Name,
    table_ix: u32,
    pub name: Name,
    pub base: Option<NBase>,
    pub rules: Vec<NRule>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct NBase {
    pub hook: Hook,
    pub priority: i32,
    pub nat: bool,
    pub drop: bool,
    /// (table handle, chain handle): which was registered later.
    pub order: (u64, u64),
}

#[derive(Debug, Clone)]
pub(crate) struct NRule {
    pub handle: u64,
    /// As `nft -a list ruleset` prints it, when it was given.
    pub text: Option<Arc<str>>,
    exprs: Vec<Expr>,
}

#[derive(Debug, Clone)]
struct NSet {
    name: String,
    flags: u32,
    /// The key's fields, in bytes (one for a plain set).
    fields: Vec<u32>,
    /// Each element as inclusive intervals per field, and its data (maps).
    elems: Vec<(Vec<nx::Interval>, Option<Data>)>,
    catchall: Option<Option<Data>>,
}

fn hook_of(num: u32) -> Option<Hook> {
    match num {
        0 => Some(Hook::Prerouting),
        1 => Some(Hook::Input),
        2 => Some(Hook::Forward),
        3 => Some(Hook::Output),
        4 => Some(Hook::Postrouting),
        _ => None,
    }
}

/// The nftables families whose chains see packets of `f`.
fn families(f: Family) -> [u8; 2] {
    match f {
        Family::V4 => [2, 1],
        Family::V6 => [10, 1],
    }
}

/// The built-in chain a hook has in an iptables table.
fn ipt_chain(hook: Hook) -> &'static str {
    hook.name()
}

impl Native {
    /// The native base chains hooked at `hook` (`inet fw input`), in priority order.
    pub fn hooked(&self, hook: Hook) -> Vec<String> {
        self.bases[hook.index()]
            .iter()
            .filter_map(|&i| self.chains.get(i as usize))
            .map(|c| format!("{} {}", c.table, c.name))
            .collect()
    }

    /// Prepare the native tables of `nft` (read with `nft_netlink::read_full`) for packets of
    /// `family`: every table of family ip/ip6 or inet but the iptables-nft ones (`iptables`: the
    /// family and name of each table the save tools printed; empty on the legacy backend, where
    /// every nf_tables table is native). `texts`: rule texts by (family, table, chain, handle),
    /// from `source::native::rule_texts`.
    pub fn new(
        nft: &NftRuleset,
        family: Family,
        iptables: &BTreeSet<(Family, String)>,
        texts: &HashMap<(String, String, String, u64), String>,
    ) -> Native {
        let fams = families(family);
        let mut n = Native::default();
        let is_ipt =
            |fam: u8, name: &str| fam != 1 && iptables.contains(&(family, name.to_string()));
        let mut table_ix: HashMap<(u8, &str), u32> = HashMap::new();
        for (i, t) in nft.tables.iter().enumerate() {
            table_ix.insert((t.family, t.name.as_str()), i as u32);
        }
        // The iptables-nft base chains' registration order.
        for c in &nft.chains {
            let (Some(h), true) = (c.hook, c.family == fams[0] && is_ipt(c.family, &c.table))
            else {
                continue;
            };
            let (Some(hook), Some(t)) = (
                hook_of(h.num),
                nft.tables
                    .iter()
                    .find(|t| t.family == c.family && t.name == c.table),
            ) else {
                continue;
            };
            if let Some(tid) = TableId::from_name(&c.table)
                && c.name == ipt_chain(hook)
            {
                n.ipt_order.insert((tid, hook), (t.handle, c.handle));
            }
        }
        for t in &nft.tables {
            if !fams.contains(&t.family) {
                continue;
            }
            // In an iptables-nft table, its built-in chains are the iptables rule set's; any
            // other base chain (one the save tool calls incompatible) is native.
            let label: Name = format!("{} {}", family_name(t.family), t.name).into();
            let dormant = t.flags & TABLE_DORMANT != 0;
            if dormant {
                n.dormant.push(label.to_string());
            }
            let ti = table_ix[&(t.family, t.name.as_str())];
            for c in nft
                .chains
                .iter()
                .filter(|c| c.family == t.family && c.table == t.name)
            {
                let idx = n.chains.len() as u32;
                let base = c.hook.and_then(|h| {
                    Some(NBase {
                        hook: hook_of(h.num)?,
                        priority: h.priority,
                        nat: c.kind.as_deref() == Some("nat"),
                        drop: c.policy == Some(0),
                        order: (t.handle, c.handle),
                    })
                });
                if let Some(b) = base
                    && !dormant
                    && crate::source::native::is_native_chain(c, iptables)
                {
                    n.bases[b.hook as usize].push(idx);
                }
                let rules = nft
                    .rules_of(c)
                    .map(|r| NRule {
                        handle: r.handle,
                        text: texts
                            .get(&(
                                family_name(t.family).to_string(),
                                t.name.clone(),
                                c.name.clone(),
                                r.handle,
                            ))
                            .map(|s| Arc::from(without_counts(s).as_str())),
                        exprs: r.body.clone(),
                    })
                    .collect();
                n.chain_ix.insert((ti, c.name.clone()), idx);
                n.chains.push(NChain {
                    table: label.clone(),
                    table_ix: ti,
                    name: c.name.as_str().into(),
                    base,
                    rules,
                });
            }
            for s in nft
                .sets
                .iter()
                .filter(|s| s.family == t.family && s.table == t.name)
            {
                n.set_ix.insert((ti, s.name.clone()), n.sets.len() as u32);
                n.sets.push(NSet::new(s));
            }
        }
        n
    }

    pub fn is_empty(&self) -> bool {
        self.bases.iter().all(Vec::is_empty)
    }

    /// Whether any rule loads the transport header's first two bytes (a TCP, UDP, SCTP or DCCP
    /// source port): then a connection's source port can change a rule's answer.
    pub fn reads_source_port(&self) -> bool {
        self.chains.iter().flat_map(|c| &c.rules).any(|r| {
            r.exprs
                .iter()
                .any(|e| matches!(e, Expr::Payload { base: 2, offset, .. } if *offset < 2))
        })
    }

    /// The text of rule `handle` of chain `chain` of table `table` (`inet fw`), if known.
    pub fn rule_text(&self, table: &str, chain: &str, handle: u64) -> Option<&str> {
        self.chains
            .iter()
            .find(|c| &*c.table == table && &*c.name == chain)?
            .rules
            .iter()
            .find(|r| r.handle == handle)?
            .text
            .as_deref()
    }

    fn chain(&self, table_ix: u32, name: &str) -> Option<u32> {
        self.chain_ix.get(&(table_ix, name.to_string())).copied()
    }
}

impl NSet {
    fn new(s: &NftSet) -> NSet {
        let (elems, catchall) = s.intervals();
        NSet {
            name: s.name.clone(),
            flags: s.flags,
            fields: s.field_lens(),
            elems,
            catchall,
        }
    }
}

/// A rule's text without its counter's figures (`counter packets 3 bytes 180` → `counter`):
/// the trace shows what the rule does, not how often it did.
fn without_counts(text: &str) -> String {
    let w: Vec<&str> = text.split(' ').collect();
    let mut out: Vec<&str> = Vec::with_capacity(w.len());
    let mut i = 0;
    while i < w.len() {
        out.push(w[i]);
        if w[i] == "counter"
            && w.get(i + 1) == Some(&"packets")
            && w.get(i + 3) == Some(&"bytes")
            && [2, 4]
                .iter()
                .all(|&k| w.get(i + k).is_some_and(|n| n.parse::<u64>().is_ok()))
        {
            i += 5;
        } else {
            i += 1;
        }
    }
    out.join(" ")
}

/// What a register holds, as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Val {
    /// Bytes of which the bits set in `known` are known.
    Bits { v: Vec<u8>, known: Vec<u8> },
    /// Somewhere in an inclusive interval (big-endian order, as `cmp` compares).
    Range(Vec<u8>, Vec<u8>),
    /// One of these.
    OneOf(Vec<Vec<u8>>),
    /// An interface name not given: any but `lo`.
    NotLo(usize),
}

impl Val {
    fn exact(v: Vec<u8>) -> Val {
        let known = vec![0xff; v.len()];
        Val::Bits { v, known }
    }

    fn unknown(len: usize) -> Val {
        Val::Bits {
            v: vec![0; len],
            known: vec![0; len],
        }
    }

    fn len(&self) -> usize {
        match self {
            Val::Bits { v, .. } | Val::Range(v, _) => v.len(),
            Val::OneOf(c) => c.first().map_or(0, Vec::len),
            Val::NotLo(n) => *n,
        }
    }

    fn as_exact(&self) -> Option<&[u8]> {
        match self {
            Val::Bits { v, known } if known.iter().all(|&k| k == 0xff) => Some(v),
            Val::Range(a, b) if a == b => Some(a),
            Val::OneOf(c) if c.len() == 1 => Some(&c[0]),
            _ => None,
        }
    }

    /// The first `n` bytes (a comparison of fewer bytes than the register holds: an interface
    /// name's prefix).
    fn prefix(&self, n: usize) -> Val {
        if n >= self.len() {
            return self.clone();
        }
        match self {
            Val::Bits { v, known } => Val::Bits {
                v: v[..n].to_vec(),
                known: known[..n].to_vec(),
            },
            Val::Range(a, b) => Val::Range(a[..n].to_vec(), b[..n].to_vec()),
            Val::OneOf(c) => Val::OneOf(c.iter().map(|x| x[..n.min(x.len())].to_vec()).collect()),
            Val::NotLo(_) => Val::NotLo(n),
        }
    }

    /// Whether the value lies in `[lo, hi]`.
    fn within(&self, lo: &[u8], hi: &[u8]) -> Tri {
        match self {
            Val::Bits { v, known } => {
                if known.iter().all(|&k| k == 0xff) {
                    return Tri::from_bool(lo <= &v[..] && &v[..] <= hi);
                }
                // The smallest and largest values the known bits allow.
                let min: Vec<u8> = v.iter().zip(known).map(|(v, k)| v & k).collect();
                let max: Vec<u8> = v.iter().zip(known).map(|(v, k)| v | !k).collect();
                if &max[..] < lo || &min[..] > hi {
                    Tri::No
                } else if lo == hi {
                    // Equality: a known bit that differs decides it.
                    let differs = v
                        .iter()
                        .zip(known)
                        .zip(lo)
                        .any(|((v, k), d)| (v ^ d) & k != 0);
                    if differs { Tri::No } else { Tri::Unknown }
                } else if lo <= &min[..] && &max[..] <= hi {
                    Tri::Yes
                } else {
                    Tri::Unknown
                }
            }
            Val::Range(a, b) => {
                if lo <= &a[..] && &b[..] <= hi {
                    Tri::Yes
                } else if &b[..] < lo || &a[..] > hi {
                    Tri::No
                } else {
                    Tri::Unknown
                }
            }
            Val::OneOf(c) => {
                let mut out: Option<Tri> = None;
                for x in c {
                    let t = Tri::from_bool(lo <= &x[..] && &x[..] <= hi);
                    match out {
                        None => out = Some(t),
                        Some(o) if o != t => return Tri::Unknown,
                        _ => {}
                    }
                }
                out.unwrap_or(Tri::Unknown)
            }
            Val::NotLo(_) => {
                let is_lo = |d: &[u8]| d.starts_with(b"lo") && d[2..].iter().all(|&b| b == 0);
                if lo == hi && is_lo(lo) {
                    Tri::No
                } else {
                    Tri::Unknown
                }
            }
        }
    }

    fn cmp(&self, op: CmpOp, d: &[u8]) -> Tri {
        let v = self.prefix(d.len());
        let zero = vec![0u8; d.len()];
        let top = vec![0xffu8; d.len()];
        match op {
            CmpOp::Eq => v.within(d, d),
            CmpOp::Neq => v.within(d, d).negate_if(true),
            CmpOp::Lt => match nx::minus_one(d) {
                Some(x) => v.within(&zero, &x),
                None => Tri::No,
            },
            CmpOp::Lte => v.within(&zero, d),
            CmpOp::Gt => v.within(&zero, d).negate_if(true),
            CmpOp::Gte => match nx::minus_one(d) {
                Some(x) => v.within(&zero, &x).negate_if(true),
                None => v.within(&zero, &top),
            },
        }
    }

    fn bitwise(&self, op: &BitOp, len: usize) -> Val {
        let v = self.prefix(len);
        match (op, v.as_exact()) {
            (BitOp::MaskXor { mask, xor }, _) => {
                let m = |i: usize| mask.get(i).copied().unwrap_or(0);
                let x = |i: usize| xor.get(i).copied().unwrap_or(0);
                match &v {
                    Val::Bits { v, known } => Val::Bits {
                        v: (0..len)
                            .map(|i| (v.get(i).copied().unwrap_or(0) & m(i)) ^ x(i))
                            .collect(),
                        known: (0..len)
                            .map(|i| known.get(i).copied().unwrap_or(0) | !m(i))
                            .collect(),
                    },
                    Val::OneOf(c) => Val::OneOf(
                        c.iter()
                            .map(|c| {
                                (0..len)
                                    .map(|i| (c.get(i).copied().unwrap_or(0) & m(i)) ^ x(i))
                                    .collect()
                            })
                            .collect(),
                    ),
                    // A prefix mask keeps an interval an interval.
                    Val::Range(a, b) if is_prefix_mask(mask) && xor.iter().all(|&b| b == 0) => {
                        let and = |v: &Vec<u8>| {
                            (0..len)
                                .map(|i| v.get(i).copied().unwrap_or(0) & m(i))
                                .collect()
                        };
                        let (a, b) = (and(a), and(b));
                        if a == b {
                            Val::exact(a)
                        } else {
                            Val::Range(a, b)
                        }
                    }
                    _ => Val::unknown(len),
                }
            }
            (BitOp::Lshift(n), Some(e)) => Val::exact(shift_words(e, *n, true)),
            (BitOp::Rshift(n), Some(e)) => Val::exact(shift_words(e, *n, false)),
            _ => Val::unknown(len),
        }
    }
}

fn is_prefix_mask(m: &[u8]) -> bool {
    let bits: Vec<bool> = m
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| b & (1 << i) != 0))
        .collect();
    bits.windows(2).all(|w| w[0] || !w[1])
}

/// The kernel's shifts work on 32-bit host-order words.
fn shift_words(v: &[u8], n: u32, left: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for w in v.chunks(4) {
        let mut b = [0u8; 4];
        b[..w.len()].copy_from_slice(w);
        let x = u32::from_ne_bytes(b);
        let y = if left {
            x.checked_shl(n).unwrap_or(0)
        } else {
            x.checked_shr(n).unwrap_or(0)
        };
        out.extend_from_slice(&y.to_ne_bytes()[..w.len()]);
    }
    out
}

/// How a value reads to a person, for the conditions a trace could not decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Iface,
    Port,
    Addr,
    /// A 32-bit value in host order (marks, states).
    Host32,
    Other,
}

/// What one register holds, from word `word` for `len` bytes, and where it came from.
#[derive(Debug, Clone)]
struct Piece {
    word: u32,
    len: u32,
    val: Val,
    label: Arc<str>,
    kind: Kind,
    /// The same question answers the same way later on this path (not a rate limit).
    stable: bool,
}

/// A register number as the kernel counts 32-bit words (the verdict register is words 0-3).
fn word(reg: u32) -> u32 {
    if reg <= 4 { reg * 4 } else { reg - 8 + 4 }
}

/// A condition a rule could not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unk {
    pub desc: String,
    pub stable: bool,
}

/// The verdict a native rule reached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NVerdict {
    Accept,
    Drop,
    Reject,
    Queue,
    Jump(u32),
    Goto(u32),
    Return,
    /// DNAT or SNAT to an address range (None: the address is not changed) and port range.
    Nat {
        dnat: bool,
        addr: Option<AddrVal>,
        ports: Option<(u16, u16)>,
    },
    Masquerade(Option<(u16, u16)>),
    Redirect(Option<(u16, u16)>),
    /// The rule's verdict cannot be told: why.
    Unknown(String),
}

/// What running one rule gave.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub tri: Tri,
    pub unknown: Vec<Unk>,
    pub verdict: Option<NVerdict>,
    /// Side effects, in apply mode: the new mark and connection mark, notrack, and the names of
    /// what was done that does not change the path (log, counter...).
    pub mark: Option<Bits>,
    pub ctmark: Option<Bits>,
    pub notrack: bool,
    pub did: Vec<String>,
}

/// Where a rule runs: the hook, and whether conntrack has seen the packet yet.
pub(crate) struct Ctx<'a, 'e> {
    pub native: &'a Native,
    pub env: &'a Env<'e>,
    pub origin: Origin,
}

fn be16(v: u16) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn addr_of(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        16 => {
            let a: [u8; 16] = b.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

fn addr_val(a: &AddrVal, env: &Env) -> Val {
    match a {
        AddrVal::Known(a) => Val::exact(addr_bytes(*a)),
        AddrVal::Range(a, b) => Val::Range(addr_bytes(*a), addr_bytes(*b)),
        AddrVal::Local(i) => {
            let c: Vec<Vec<u8>> = env.addrs_of(i.as_deref()).map(addr_bytes).collect();
            if c.is_empty() {
                Val::unknown(match env.family {
                    Family::V4 => 4,
                    Family::V6 => 16,
                })
            } else {
                Val::OneOf(c)
            }
        }
    }
}

fn port_val(p: PortVal) -> Option<Val> {
    match p {
        PortVal::None => None,
        PortVal::Known(n) => Some(Val::exact(be16(n))),
        PortVal::Range(a, b) => Some(Val::Range(be16(a), be16(b))),
    }
}

fn bits_val(b: Bits) -> Val {
    Val::Bits {
        v: b.value.to_ne_bytes().to_vec(),
        known: b.known.to_ne_bytes().to_vec(),
    }
}

fn iface_val(i: &IfVal) -> Val {
    match i {
        IfVal::None => Val::exact(vec![0; 16]),
        IfVal::Known(n) => {
            let mut v = n.as_bytes().to_vec();
            v.resize(16, 0);
            Val::exact(v)
        }
        IfVal::Unknown => Val::NotLo(16),
    }
}

fn ct_state_bit(state: CtState, has_ct: bool, notrack: bool) -> u32 {
    if notrack {
        return 1 << 6;
    }
    if !has_ct {
        return match state {
            CtState::Untracked => 1 << 6,
            _ => 1,
        };
    }
    match state {
        CtState::Established => 1 << 1,
        CtState::Related => 1 << 2,
        CtState::New => 1 << 3,
        CtState::Invalid => 1,
        CtState::Untracked => 1 << 6,
    }
}

/// One rule's evaluation.
struct Vm<'r, 'a, 'e> {
    cx: &'r Ctx<'a, 'e>,
    table: u32,
    pkt: &'r Pkt,
    regs: Vec<Piece>,
    run: Run,
}

/// What a load gives: a value (with its label, kind and stability), or a break (the kernel
/// ends the rule: no connection for a `ct` key, no socket for `meta skuid`).
enum Load {
    Val(Val, String, Kind, bool),
    Break,
}

impl Vm<'_, '_, '_> {
    fn store(&mut self, reg: u32, len: u32, val: Val, label: String, kind: Kind, stable: bool) {
        let w = word(reg);
        let end = w + len.div_ceil(4).max(1);
        self.regs
            .retain(|p| p.word + p.len.div_ceil(4).max(1) <= w || p.word >= end);
        self.regs.push(Piece {
            word: w,
            len,
            val,
            label: label.into(),
            kind,
            stable,
        });
    }

    /// The value at `reg` for `len` bytes: one piece (or its prefix), or several concatenated
    /// (each padded to whole words) when all are exact.
    fn load(&self, reg: u32, len: u32) -> Piece {
        self.load_word(word(reg), len)
    }

    fn load_word(&self, w: u32, len: u32) -> Piece {
        if let Some(p) = self.regs.iter().find(|p| p.word == w)
            && len <= p.len
        {
            let mut p = p.clone();
            p.val = p.val.prefix(len as usize);
            p.len = len;
            return p;
        }
        let mut bytes = Vec::new();
        let mut labels = Vec::new();
        let mut at = w;
        let mut stable = true;
        while (bytes.len() as u32) < len {
            let Some(p) = self.regs.iter().find(|p| p.word == at) else {
                break;
            };
            labels.push(p.label.to_string());
            stable &= p.stable;
            match p.val.as_exact() {
                Some(e) => {
                    let mut e = e.to_vec();
                    e.resize(p.len.div_ceil(4) as usize * 4, 0);
                    bytes.extend(e);
                }
                None => {
                    bytes.clear();
                    break;
                }
            }
            at += p.len.div_ceil(4).max(1);
        }
        let label = if labels.is_empty() {
            "a register nothing set".to_string()
        } else {
            labels.join(" . ")
        };
        let val = if bytes.len() as u32 >= len {
            bytes.truncate(len as usize);
            Val::exact(bytes)
        } else {
            Val::unknown(len as usize)
        };
        Piece {
            word: w,
            len,
            val,
            label: label.into(),
            kind: Kind::Other,
            stable,
        }
    }

    /// The pieces a lookup key of `fields` (lengths) is made of, from `reg` on, each field
    /// starting on a word of its own.
    fn segments(&self, reg: u32, fields: &[u32]) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut w = word(reg);
        for &len in fields {
            out.push(self.load_word(w, len));
            w += len.div_ceil(4).max(1);
        }
        out
    }

    fn unknown(&mut self, p: &Piece, what: String) {
        let desc = if what.is_empty() {
            p.label.to_string()
        } else {
            format!("{} {what}", p.label)
        };
        if !self.run.unknown.iter().any(|u| u.desc == desc) {
            self.run.unknown.push(Unk {
                desc,
                stable: p.stable,
            });
        }
    }

    fn fmt(&self, kind: Kind, d: &[u8]) -> String {
        match kind {
            Kind::Iface => {
                let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
                let name = String::from_utf8_lossy(&d[..end]);
                if end == d.len() {
                    format!("\"{name}*\"")
                } else {
                    format!("\"{name}\"")
                }
            }
            Kind::Port if d.len() == 2 => u16::from_be_bytes([d[0], d[1]]).to_string(),
            Kind::Addr => addr_of(d).map_or_else(|| hex(d), |a| a.to_string()),
            Kind::Host32 if d.len() == 4 => {
                format!("{:#x}", u32::from_ne_bytes([d[0], d[1], d[2], d[3]]))
            }
            _ => hex(d),
        }
    }

    /// Record a comparison's answer; false when the rule breaks.
    fn decide(&mut self, p: &Piece, t: Tri, what: impl FnOnce(&Self) -> String) -> bool {
        match t {
            Tri::Yes => true,
            Tri::No => {
                self.run.tri = Tri::No;
                false
            }
            Tri::Unknown => {
                let w = what(self);
                self.unknown(p, w);
                true
            }
        }
    }

    fn exec(&mut self, e: &Expr) -> bool {
        match e {
            Expr::Payload {
                dreg,
                base,
                offset,
                len,
            } => {
                let (val, label, kind) = self.payload(*base, *offset, *len);
                self.store(*dreg, *len, val, label, kind, true);
            }
            Expr::Meta { dreg, .. } | Expr::Ct { dreg, .. } => {
                let load = match e {
                    Expr::Ct { key, dir, .. } => self.ct(*key, *dir),
                    Expr::Meta { key, .. } => self.meta(*key),
                    _ => Load::Break,
                };
                match load {
                    Load::Val(v, label, kind, stable) => {
                        let len = v.len() as u32;
                        self.store(*dreg, len, v, label, kind, stable)
                    }
                    Load::Break => {
                        self.run.tri = Tri::No;
                        return false;
                    }
                }
            }
            Expr::Fib {
                dreg,
                result,
                flags,
            } => {
                let (v, label) = self.fib(*result, *flags);
                let len = v.len() as u32;
                self.store(*dreg, len, v, label, Kind::Other, true);
            }
            Expr::Immediate { dreg: 0, data } => {
                if let Data::Verdict(v) = data {
                    return self.verdict(v.clone());
                }
            }
            Expr::Immediate {
                dreg,
                data: Data::Value(v),
            } => {
                let len = v.len() as u32;
                self.store(*dreg, len, Val::exact(v.clone()), hex(v), Kind::Other, true);
            }
            Expr::Immediate { .. } => {}
            Expr::Cmp { sreg, op, data } => {
                let p = self.load(*sreg, data.len() as u32);
                let t = p.val.cmp(*op, data);
                let kind = p.kind;
                let d = data.clone();
                return self.decide(&p, t, |vm| format!("{} {}", op_text(*op), vm.fmt(kind, &d)));
            }
            Expr::Range { sreg, eq, from, to } => {
                let p = self.load(*sreg, from.len() as u32);
                let t = p.val.within(from, to).negate_if(!eq);
                let kind = p.kind;
                let (f, tt) = (from.clone(), to.clone());
                return self.decide(&p, t, |vm| {
                    format!(
                        "{}{}-{}",
                        if *eq { "" } else { "!= " },
                        vm.fmt(kind, &f),
                        vm.fmt(kind, &tt)
                    )
                });
            }
            Expr::Bitwise {
                sreg,
                dreg,
                len,
                op,
            } => {
                let p = self.load(*sreg, *len);
                let v = p.val.bitwise(op, *len as usize);
                let kind = if p.kind == Kind::Host32 {
                    Kind::Host32
                } else {
                    Kind::Other
                };
                let label = match op {
                    BitOp::MaskXor { mask, .. } if p.kind == Kind::Addr => {
                        format!("{} & {}", p.label, self.fmt(Kind::Addr, mask))
                    }
                    BitOp::MaskXor { mask, .. } => format!("{} & {}", p.label, hex(mask)),
                    _ => p.label.to_string(),
                };
                let stable = p.stable;
                self.store(*dreg, *len, v, label, kind, stable);
            }
            Expr::Byteorder {
                sreg,
                dreg,
                len,
                size,
                ..
            } => {
                let p = self.load(*sreg, *len);
                let v = match p.val.as_exact() {
                    Some(e) => {
                        let size = (*size as usize).clamp(1, 8);
                        Val::exact(
                            e.chunks(size)
                                .flat_map(|c| c.iter().rev().copied().collect::<Vec<_>>())
                                .collect(),
                        )
                    }
                    None => Val::unknown(*len as usize),
                };
                let (label, stable) = (p.label.to_string(), p.stable);
                self.store(*dreg, *len, v, label, Kind::Other, stable);
            }
            Expr::Lookup {
                set,
                sreg,
                dreg,
                invert,
            } => return self.lookup(set, *sreg, *dreg, *invert),
            Expr::MetaSet { key, sreg } => {
                let p = self.load(*sreg, 4);
                let b = match p.val.as_exact() {
                    Some(e) if e.len() == 4 => {
                        Bits::known(u32::from_ne_bytes([e[0], e[1], e[2], e[3]]))
                    }
                    _ => Bits::UNKNOWN,
                };
                match key {
                    3 => self.run.mark = Some(b),
                    12 => self.run.did.push("meta nftrace set".into()),
                    k => self.run.did.push(format!("meta set (key {k})")),
                }
            }
            Expr::CtSet { key, sreg } => {
                let p = self.load(*sreg, 4);
                let b = match p.val.as_exact() {
                    Some(e) if e.len() == 4 => {
                        Bits::known(u32::from_ne_bytes([e[0], e[1], e[2], e[3]]))
                    }
                    _ => Bits::UNKNOWN,
                };
                if *key == 3 {
                    // Without a connection there is nothing to mark.
                    if self.pkt.ct.view().1 {
                        self.run.ctmark = Some(b);
                    }
                } else {
                    self.run.did.push(format!("ct set (key {key})"));
                }
            }
            Expr::PayloadSet { .. } => self.run.did.push("a header rewritten".into()),
            Expr::Nat {
                dnat,
                addr_min,
                addr_max,
                proto_min,
                proto_max,
                ..
            } => {
                let addr = match addr_min {
                    None => None,
                    Some(r) => {
                        let alen = match self.cx.env.family {
                            Family::V4 => 4,
                            Family::V6 => 16,
                        };
                        let lo = self.load(*r, alen);
                        let hi = addr_max.map(|r| self.load(r, alen));
                        match (
                            lo.val.as_exact().and_then(addr_of),
                            hi.as_ref().map(|h| h.val.as_exact().and_then(addr_of)),
                        ) {
                            (Some(a), None) => Some(AddrVal::Known(a)),
                            (Some(a), Some(Some(b))) if a == b => Some(AddrVal::Known(a)),
                            (Some(a), Some(Some(b))) => Some(AddrVal::Range(a, b)),
                            _ => {
                                return self.set_verdict(NVerdict::Unknown(
                                    "the NAT address comes from a value the packet does not fix"
                                        .into(),
                                ));
                            }
                        }
                    }
                };
                let ports = self.ports(*proto_min, *proto_max);
                return self.set_verdict(NVerdict::Nat {
                    dnat: *dnat,
                    addr,
                    ports,
                });
            }
            Expr::Masq {
                proto_min,
                proto_max,
            } => {
                let p = self.ports(*proto_min, *proto_max);
                return self.set_verdict(NVerdict::Masquerade(p));
            }
            Expr::Redir {
                proto_min,
                proto_max,
            } => {
                let p = self.ports(*proto_min, *proto_max);
                return self.set_verdict(NVerdict::Redirect(p));
            }
            Expr::Reject => return self.set_verdict(NVerdict::Reject),
            Expr::Queue => return self.set_verdict(NVerdict::Queue),
            Expr::Notrack => self.run.notrack = true,
            Expr::Counter { .. } => {}
            Expr::Log => self.run.did.push("log".into()),
            Expr::Dynset => self.run.did.push("a set updated".into()),
            // Quota, limit and connlimit objects decide by their state.
            Expr::Objref(Some(2 | 4 | 5)) | Expr::Objref(None) => {
                let p = self.stateful("a named quota, limit or connlimit object");
                self.unknown(&p, String::new());
            }
            Expr::Objref(_) => {}
            Expr::Other(name) => {
                // Whatever it loads is unknown; whatever it decides too.
                let label = format!("{name} (an expression nfscope does not model)");
                self.regs.clear();
                for reg in 1..=4 {
                    self.store(reg, 16, Val::unknown(16), label.clone(), Kind::Other, false);
                }
                if !matches!(
                    name.as_str(),
                    "numgen" | "hash" | "exthdr" | "rt" | "socket" | "osf" | "xfrm" | "tunnel"
                ) {
                    let p = self.stateful(&label);
                    self.unknown(&p, String::new());
                }
            }
        }
        true
    }

    fn stateful(&self, label: &str) -> Piece {
        Piece {
            word: 0,
            len: 0,
            val: Val::unknown(0),
            label: label.into(),
            kind: Kind::Other,
            stable: false,
        }
    }

    fn ports(&self, min: Option<u32>, max: Option<u32>) -> Option<(u16, u16)> {
        let get = |r: u32| {
            self.load(r, 2)
                .val
                .as_exact()
                .and_then(|e| Some(u16::from_be_bytes([*e.first()?, *e.get(1)?])))
        };
        let lo = get(min?)?;
        let hi = max.and_then(get).unwrap_or(lo);
        Some((lo, hi))
    }

    fn set_verdict(&mut self, v: NVerdict) -> bool {
        self.run.verdict = Some(v);
        false
    }

    fn verdict(&mut self, v: nx::Verdict) -> bool {
        let nv = match v {
            nx::Verdict::Accept => NVerdict::Accept,
            nx::Verdict::Drop => NVerdict::Drop,
            nx::Verdict::Queue => NVerdict::Queue,
            nx::Verdict::Return => NVerdict::Return,
            nx::Verdict::Continue => return true,
            nx::Verdict::Break => {
                self.run.tri = Tri::No;
                return false;
            }
            nx::Verdict::Jump(c) | nx::Verdict::Goto(c)
                if self.cx.native.chain(self.table, &c).is_none() =>
            {
                NVerdict::Unknown(format!("the chain {c} it jumps to was not read"))
            }
            nx::Verdict::Jump(c) => {
                NVerdict::Jump(self.cx.native.chain(self.table, &c).unwrap_or(0))
            }
            nx::Verdict::Goto(c) => {
                NVerdict::Goto(self.cx.native.chain(self.table, &c).unwrap_or(0))
            }
            nx::Verdict::Other(c) => NVerdict::Unknown(format!("verdict code {c}")),
        };
        self.set_verdict(nv)
    }

    fn lookup(&mut self, name: &str, sreg: u32, dreg: Option<u32>, invert: bool) -> bool {
        let Some(set) = self
            .cx
            .native
            .set_ix
            .get(&(self.table, name.to_string()))
            .map(|&i| &self.cx.native.sets[i as usize])
        else {
            let p = self.stateful(&format!("@{name} (a set that was not read)"));
            self.unknown(&p, String::new());
            return true;
        };
        let keys = self.segments(sreg, &set.fields);
        let label: String = keys
            .iter()
            .map(|k| k.label.to_string())
            .collect::<Vec<_>>()
            .join(" . ");
        let stable = keys.iter().all(|k| k.stable) && set.flags & SET_EVAL == 0;
        let mut found: Option<&Option<Data>> = None;
        let mut any = Tri::No;
        let mut candidates = 0;
        for (fields, data) in &set.elems {
            let t = fields
                .iter()
                .zip(&keys)
                .fold(Tri::Yes, |acc, ((lo, hi), k)| acc.and(k.val.within(lo, hi)));
            if t != Tri::No {
                candidates += 1;
                if t == Tri::Yes && found.is_none() {
                    found = Some(data);
                }
            }
            any = any.or(t);
        }
        if any != Tri::Yes
            && let Some(c) = &set.catchall
        {
            if any == Tri::No {
                found = Some(c);
            }
            any = if any == Tri::No {
                Tri::Yes
            } else {
                Tri::Unknown
            };
        }
        // Elements added by rules as packets pass: what is there now may not be then.
        if set.flags & SET_EVAL != 0 && any == Tri::No {
            any = Tri::Unknown;
        }
        let piece = Piece {
            word: 0,
            len: 0,
            val: Val::unknown(0),
            label: label.into(),
            kind: Kind::Other,
            stable,
        };
        match dreg {
            None => {
                let t = any.negate_if(invert);
                let setname = format!("{}@{}", if invert { "!= " } else { "" }, set.name);
                self.decide(&piece, t, |_| setname)
            }
            Some(dreg) => {
                if any == Tri::No {
                    self.run.tri = Tri::No;
                    return false;
                }
                // A map: its data when one element surely matches and no other may.
                let data = match (any, found, candidates) {
                    (Tri::Yes, Some(d), 1) => d.clone(),
                    _ => {
                        if dreg == 0 {
                            return self.set_verdict(NVerdict::Unknown(format!(
                                "which element of the verdict map @{} matches depends on {}",
                                set.name, piece.label
                            )));
                        }
                        self.store(
                            dreg,
                            set_data_len(set),
                            Val::unknown(set_data_len(set) as usize),
                            format!("@{}[{}]", set.name, piece.label),
                            Kind::Other,
                            stable,
                        );
                        return true;
                    }
                };
                match data {
                    Some(Data::Verdict(v)) if dreg == 0 => self.verdict(v),
                    Some(Data::Value(v)) => {
                        let len = v.len() as u32;
                        self.store(
                            dreg,
                            len,
                            Val::exact(v),
                            format!("@{}", set.name),
                            Kind::Other,
                            true,
                        );
                        true
                    }
                    _ => true,
                }
            }
        }
    }

    fn payload(&self, base: u32, offset: u32, len: u32) -> (Val, String, Kind) {
        let p = self.pkt;
        let env = self.cx.env;
        let v6 = env.family == Family::V6;
        // (offset, length, value, label, kind) of each field the description fixes.
        let mut fields: Vec<(u32, u32, Val, &str, Kind)> = Vec::new();
        match base {
            0 => {
                if let Some(mac) = p.mac {
                    fields.push((6, 6, Val::exact(mac.to_vec()), "ether saddr", Kind::Other));
                }
                let et: u16 = if v6 { 0x86dd } else { 0x0800 };
                fields.push((12, 2, Val::exact(be16(et)), "ether type", Kind::Other));
            }
            1 if !v6 => {
                fields.push((0, 1, Val::exact(vec![0x45]), "ip version/ihl", Kind::Other));
                if let Some(l) = p.length {
                    fields.push((2, 2, Val::exact(be16(l as u16)), "ip length", Kind::Other));
                }
                if !p.fragment {
                    // No fragment offset, no more fragments; DF not known.
                    fields.push((
                        6,
                        2,
                        Val::Bits {
                            v: vec![0, 0],
                            known: vec![0x3f, 0xff],
                        },
                        "ip frag-off",
                        Kind::Other,
                    ));
                }
                if let Some(t) = p.ttl {
                    fields.push((8, 1, Val::exact(vec![t]), "ip ttl", Kind::Other));
                }
                fields.push((9, 1, Val::exact(vec![p.proto]), "ip protocol", Kind::Other));
                fields.push((12, 4, addr_val(&p.src, env), "ip saddr", Kind::Addr));
                fields.push((16, 4, addr_val(&p.dst, env), "ip daddr", Kind::Addr));
            }
            1 => {
                if let Some(l) = p.length {
                    let pl = l.saturating_sub(40) as u16;
                    fields.push((
                        4,
                        2,
                        Val::exact(be16(pl)),
                        "ip6 payload length",
                        Kind::Other,
                    ));
                }
                fields.push((6, 1, Val::exact(vec![p.proto]), "ip6 nexthdr", Kind::Other));
                if let Some(t) = p.ttl {
                    fields.push((7, 1, Val::exact(vec![t]), "ip6 hoplimit", Kind::Other));
                }
                fields.push((8, 16, addr_val(&p.src, env), "ip6 saddr", Kind::Addr));
                fields.push((24, 16, addr_val(&p.dst, env), "ip6 daddr", Kind::Addr));
            }
            2 => {
                if let Some(v) = port_val(p.sport) {
                    fields.push((0, 2, v, "sport", Kind::Port));
                }
                if let Some(v) = port_val(p.dport) {
                    fields.push((2, 2, v, "dport", Kind::Port));
                }
                if p.proto == 6 {
                    fields.push((
                        13,
                        1,
                        Val::exact(vec![p.tcp_flags]),
                        "tcp flags",
                        Kind::Other,
                    ));
                }
                if let Some((t, c)) = p.icmp {
                    fields.push((0, 1, Val::exact(vec![t]), "icmp type", Kind::Other));
                    fields.push((1, 1, Val::exact(vec![c]), "icmp code", Kind::Other));
                }
            }
            _ => {}
        }
        let base_name = match base {
            0 => "link layer",
            1 => "network header",
            2 => "transport header",
            _ => "inner header",
        };
        if let Some((_, _, v, label, kind)) =
            fields.iter().find(|(o, l, ..)| *o == offset && *l == len)
        {
            return (v.clone(), label.to_string(), *kind);
        }
        // Several fields at once (nft merges neighbouring loads): known when every byte is.
        let mut bytes = Vec::new();
        let mut known = Vec::new();
        let mut labels: Vec<&str> = Vec::new();
        for b in offset..offset + len {
            let f = fields.iter().find(|(o, l, ..)| *o <= b && b < o + l);
            match f {
                Some((o, _, v, label, _)) => {
                    if !labels.contains(label) {
                        labels.push(label);
                    }
                    let i = (b - o) as usize;
                    match v {
                        Val::Bits { v, known: k } => {
                            bytes.push(v[i]);
                            known.push(k[i]);
                        }
                        other => match other.as_exact() {
                            Some(e) => {
                                bytes.push(e[i]);
                                known.push(0xff);
                            }
                            None => {
                                bytes.push(0);
                                known.push(0);
                            }
                        },
                    }
                }
                None => {
                    bytes.push(0);
                    known.push(0);
                }
            }
        }
        let label = if labels.is_empty() {
            format!("{len} bytes at {base_name} + {offset}")
        } else {
            labels.join(" . ")
        };
        (Val::Bits { v: bytes, known }, label, Kind::Other)
    }

    fn meta(&self, key: u32) -> Load {
        let p = self.pkt;
        let v6 = self.cx.env.family == Family::V6;
        let u8v = |b: u8, l: &str| Load::Val(Val::exact(vec![b]), l.into(), Kind::Other, true);
        let unknown = |len: usize, l: &str, stable: bool| {
            Load::Val(Val::unknown(len), l.into(), Kind::Other, stable)
        };
        match key {
            0 => match p.length {
                Some(l) => Load::Val(
                    Val::exact(l.to_ne_bytes().to_vec()),
                    "meta length".into(),
                    Kind::Host32,
                    true,
                ),
                None => unknown(4, "meta length", true),
            },
            1 => Load::Val(
                Val::exact(be16(if v6 { 0x86dd } else { 0x0800 })),
                "meta protocol".into(),
                Kind::Other,
                true,
            ),
            // A mark set earlier in the rule is what later loads see.
            3 => Load::Val(
                bits_val(self.run.mark.unwrap_or(p.mark)),
                "meta mark".into(),
                Kind::Host32,
                true,
            ),
            4 | 5 => {
                let (i, l) = if key == 4 {
                    (&p.in_if, "iif")
                } else {
                    (&p.out_if, "oif")
                };
                match i {
                    IfVal::Known(n) if n == "lo" => Load::Val(
                        Val::exact(1u32.to_ne_bytes().to_vec()),
                        l.into(),
                        Kind::Other,
                        true,
                    ),
                    // No such device at this hook: the kernel breaks the rule.
                    IfVal::None => Load::Break,
                    _ => unknown(4, &format!("{l} (the interface's index)"), true),
                }
            }
            6 | 7 => {
                let (i, l) = if key == 6 {
                    (&p.in_if, "iifname")
                } else {
                    (&p.out_if, "oifname")
                };
                if *i == IfVal::None {
                    return Load::Break;
                }
                Load::Val(iface_val(i), l.into(), Kind::Iface, true)
            }
            8 | 9 => {
                let i = if key == 8 { &p.in_if } else { &p.out_if };
                match i {
                    IfVal::Known(n) if n == "lo" => Load::Val(
                        Val::exact(772u16.to_ne_bytes().to_vec()),
                        "iiftype".into(),
                        Kind::Other,
                        true,
                    ),
                    IfVal::None => Load::Break,
                    _ => unknown(2, if key == 8 { "iiftype" } else { "oiftype" }, true),
                }
            }
            10 | 11 => {
                if self.cx.origin == Origin::Network {
                    // No local socket owns an arriving packet.
                    Load::Break
                } else {
                    unknown(4, if key == 10 { "skuid" } else { "skgid" }, true)
                }
            }
            12 => u8v(0, "meta nftrace"),
            15 => u8v(if v6 { 10 } else { 2 }, "meta nfproto"),
            16 => u8v(p.proto, "meta l4proto"),
            19 => match p.pkttype {
                Some(PktType::Unicast) | None if self.cx.origin == Origin::Local => {
                    u8v(0, "pkttype")
                }
                Some(PktType::Unicast) => u8v(0, "pkttype"),
                Some(PktType::Broadcast) => u8v(1, "pkttype"),
                Some(PktType::Multicast) => u8v(2, "pkttype"),
                None => unknown(1, "pkttype", true),
            },
            24 => unknown(4, "meta random", false),
            k => unknown(16, &format!("meta key {k}"), true),
        }
    }

    fn ct(&self, key: u32, dir: Option<u8>) -> Load {
        let p = self.pkt;
        let (state, has_ct) = p.ct.view();
        let v6 = self.cx.env.family == Family::V6;
        if key == 0 {
            let bit = ct_state_bit(state, has_ct, p.ct.notrack);
            return Load::Val(
                Val::exact(bit.to_ne_bytes().to_vec()),
                "ct state".into(),
                Kind::Host32,
                true,
            );
        }
        if !has_ct {
            return Load::Break;
        }
        let unknown =
            |len: usize, l: &str| Load::Val(Val::unknown(len), l.into(), Kind::Other, true);
        let orig = dir.is_none_or(|d| d == 0);
        let fresh = matches!(state, CtState::New);
        match key {
            // A new connection's status: not confirmed, no reply seen, not assured, its NAT
            // as this walk did it.
            2 if fresh && !p.ct.confirmed => {
                let v = (if p.ct.snat { 0x10u32 } else { 0 }) | if p.ct.dnat { 0x20 } else { 0 };
                Load::Val(
                    bits_val(Bits {
                        value: v,
                        known: 0x3f,
                    }),
                    "ct status".into(),
                    Kind::Host32,
                    true,
                )
            }
            1 if fresh => Load::Val(
                Val::exact(vec![0]),
                "ct direction".into(),
                Kind::Other,
                true,
            ),
            1 => unknown(1, "ct direction"),
            3 => Load::Val(
                bits_val(self.run.ctmark.unwrap_or(p.ctmark)),
                "ct mark".into(),
                Kind::Host32,
                true,
            ),
            7 => Load::Val(
                Val::exact(vec![if v6 { 10 } else { 2 }]),
                "ct l3proto".into(),
                Kind::Other,
                true,
            ),
            10 => Load::Val(
                Val::exact(vec![p.proto]),
                "ct protocol".into(),
                Kind::Other,
                true,
            ),
            8 | 9 | 19 | 20 | 21 | 22 if orig => {
                let src = matches!(key, 8 | 19 | 21);
                let a = match &p.ct.orig {
                    Some((s, d, _, _)) => {
                        if src {
                            s.clone()
                        } else {
                            d.clone()
                        }
                    }
                    None => {
                        if src {
                            p.src.clone()
                        } else {
                            p.dst.clone()
                        }
                    }
                };
                let l = if src {
                    "ct original saddr"
                } else {
                    "ct original daddr"
                };
                Load::Val(addr_val(&a, self.cx.env), l.into(), Kind::Addr, true)
            }
            11 | 12 if orig => {
                let src = key == 11;
                let port = match &p.ct.orig {
                    Some((_, _, s, d)) => {
                        if src {
                            *s
                        } else {
                            *d
                        }
                    }
                    None => {
                        if src {
                            p.sport
                        } else {
                            p.dport
                        }
                    }
                };
                let l = if src {
                    "ct original proto-src"
                } else {
                    "ct original proto-dst"
                };
                match port_val(port) {
                    Some(v) => Load::Val(v, l.into(), Kind::Port, true),
                    None => Load::Break,
                }
            }
            k => unknown(16, &format!("ct key {k}")),
        }
    }

    fn fib(&self, result: u32, flags: u32) -> (Val, String) {
        let env = self.cx.env;
        let p = self.pkt;
        // Only the address type of an address, not restricted to an interface, is known here.
        if result == 3 && flags & (0x8 | 0x10) == 0 {
            let (a, l) = if flags & 0x1 != 0 {
                (&p.src, "fib saddr type")
            } else {
                (&p.dst, "fib daddr type")
            };
            let rtn = |a: IpAddr| -> u32 {
                if env.is_local(a) {
                    2
                } else if env.is_broadcast(a) {
                    3
                } else if a.is_multicast() {
                    5
                } else {
                    1
                }
            };
            let v = match a {
                AddrVal::Known(a) => Val::exact(rtn(*a).to_ne_bytes().to_vec()),
                AddrVal::Local(_) => Val::exact(2u32.to_ne_bytes().to_vec()),
                AddrVal::Range(..) => Val::unknown(4),
            };
            return (v, l.into());
        }
        let l = match result {
            1 => "fib oif",
            2 => "fib oifname",
            _ => "fib type",
        };
        // The reverse-path check (`fib saddr . iif oif missing drop`, firewalld's and the
        // rpfilter match's): a source on a network of this machine's input interface is
        // routed back through it.
        if matches!(result, 1 | 2)
            && flags & 0x1 != 0
            && let (AddrVal::Known(src), IfVal::Known(iif)) = (&p.src, &p.in_if)
        {
            let via = if src.is_loopback() || env.is_local(*src) {
                Some("lo".to_string()).filter(|_| iif == "lo")
            } else {
                env.connected(*src)
                    .map(|(i, _)| i.to_string())
                    .filter(|i| i == iif.as_str())
            };
            if let Some(i) = via {
                let v = match result {
                    _ if flags & 0x20 != 0 => Val::exact(1u32.to_ne_bytes().to_vec()),
                    // An interface index: not known, but not 0 ("missing").
                    1 => Val::Range(vec![0, 0, 0, 1], vec![0xff; 4]),
                    _ => {
                        let mut name = i.into_bytes();
                        name.resize(16, 0);
                        Val::exact(name)
                    }
                };
                return (v, format!("{l} (the route back to {src})"));
            }
        }
        let len = if result == 2 && flags & 0x20 == 0 {
            16
        } else {
            4
        };
        (
            Val::unknown(len),
            format!("{l} (a route lookup nfscope does not make)"),
        )
    }
}

fn set_data_len(s: &NSet) -> u32 {
    s.elems
        .iter()
        .find_map(|(_, d)| match d {
            Some(Data::Value(v)) => Some(v.len() as u32),
            _ => None,
        })
        .unwrap_or(4)
}

fn op_text(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "==",
        CmpOp::Neq => "!=",
        CmpOp::Lt => "<",
        CmpOp::Lte => "<=",
        CmpOp::Gt => ">",
        CmpOp::Gte => ">=",
    }
}

fn hex(d: &[u8]) -> String {
    let mut s = String::from("0x");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Run rule `rule` of `chain` on `pkt`: whether it matches (Yes, No, or Unknown with the
/// conditions it could not decide, each taken as met to go on), and what it would do: its
/// verdict and side effects, which the walk applies only when it takes the rule as matched.
pub(crate) fn run(cx: &Ctx, chain: u32, rule: &NRule, pkt: &Pkt) -> Run {
    let table = cx.native.chains[chain as usize].table_ix;
    let mut vm = Vm {
        cx,
        table,
        pkt,
        regs: Vec::new(),
        run: Run {
            tri: Tri::Yes,
            unknown: Vec::new(),
            verdict: None,
            mark: None,
            ctmark: None,
            notrack: false,
            did: Vec::new(),
        },
    };
    for e in &rule.exprs {
        if !vm.exec(e) {
            break;
        }
    }
    let mut run = vm.run;
    if run.tri == Tri::Yes && !run.unknown.is_empty() {
        run.tri = Tri::Unknown;
    }
    run
}
