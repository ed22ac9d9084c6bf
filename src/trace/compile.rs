//! A rule set read once for tracing: every chain's name resolved to an index (jumps and gotos
//! too), every rule's matches parsed into conditions (addresses, port ranges, masks) and its
//! target into an action. A trace then never parses, hashes or allocates per rule. What nfscope
//! cannot read becomes an `Unknown` condition with the rule's own words, never a silent pass.

use super::packet::{
    CtState, PktType, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, parse_icmp_type, parse_mac,
    parse_mark_mask, parse_port_range, parse_proto, parse_tcp_flags, parse_u32,
};
use super::{Hook, Name, TableId};
use crate::ruleset::{Family, Negatable, OptionArg, RuleSpec, Ruleset, TargetKind, XMatch};
use compact_str::CompactString;
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use std::net::IpAddr;

/// The rule set of one family, ready to trace.
pub(crate) struct Prepared {
    pub family: Family,
    /// Indexed by `TableId`.
    pub tables: [Option<PTable>; 5],
}

pub(crate) struct PTable {
    pub chains: Vec<PChain>,
    /// The built-in chain of each hook (indexed by `Hook`), when the table has it.
    pub base: [Option<u32>; 5],
}

pub(crate) struct PChain {
    pub name: Name,
    /// Built-in chains only.
    pub policy: Option<Policy>,
    pub rules: Vec<PRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    Accept,
    Drop,
    Queue,
    /// A policy nfscope does not know (only a hand-written file can have one).
    Other,
}

pub(crate) struct PRule {
    pub conds: Vec<Cond>,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Src,
    Dst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortDir {
    Src,
    Dst,
    Either,
}

/// One condition of a rule. A rule matches when all of them do.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    /// `-p`; 0 is `all`.
    Proto {
        neg: bool,
        proto: u8,
    },
    /// `-s` / `-d` (a comma list matches any of its networks).
    Addr {
        neg: bool,
        dir: Dir,
        nets: Box<[IpNet]>,
    },
    /// `-i` / `-o`; `wildcard` when the name ended in `+` (a prefix).
    Iface {
        neg: bool,
        out: bool,
        name: CompactString,
        wildcard: bool,
    },
    /// `-f`: second and later fragments.
    Fragment {
        neg: bool,
    },
    /// tcp, udp, multiport, icmp: never a later fragment (they need the transport header).
    NotFragment,
    Port {
        neg: bool,
        dir: Dir,
        lo: u16,
        hi: u16,
    },
    Multiport {
        neg: bool,
        dir: PortDir,
        ranges: Box<[(u16, u16)]>,
    },
    TcpFlags {
        neg: bool,
        mask: u8,
        cmp: u8,
    },
    /// `kind` `None` is `any`.
    Icmp {
        neg: bool,
        v6: bool,
        kind: Option<(u8, u8, u8)>,
    },
    Conntrack(Box<CtMatch>),
    /// The state match: a mask of `ct_bit`s.
    State {
        neg: bool,
        mask: u8,
    },
    AddrType(Box<AddrTypeMatch>),
    IpRange {
        neg: bool,
        dir: Dir,
        lo: IpAddr,
        hi: IpAddr,
    },
    Mark {
        neg: bool,
        value: u32,
        mask: u32,
    },
    ConnMark {
        neg: bool,
        value: u32,
        mask: u32,
    },
    Mac {
        neg: bool,
        mac: [u8; 6],
    },
    Length {
        neg: bool,
        lo: u32,
        hi: u32,
    },
    /// ttl or hl: `--ttl-eq` etc.; `op` is `=`, `<`, `>` or `!`.
    Ttl {
        op: u8,
        value: u8,
        v6: bool,
    },
    PktType {
        neg: bool,
        kind: PktType,
    },
    /// Always true (or, negated, never): `recent --set`, `nfacct`.
    Const(bool),
    /// What cannot be decided from the packet description, in the rule's own words.
    /// `volatile`: the same words can answer differently each time (rates, lists, chance).
    Unknown {
        desc: Box<str>,
        volatile: bool,
    },
}

/// Bits of a state mask (the state and conntrack matches).
pub(crate) fn ct_bit(s: CtState) -> u8 {
    match s {
        CtState::New => 1,
        CtState::Established => 2,
        CtState::Related => 4,
        CtState::Invalid => 8,
        CtState::Untracked => 16,
    }
}
pub(crate) const CT_SNAT: u8 = 32;
pub(crate) const CT_DNAT: u8 = 64;

fn state_mask(list: &str, virtual_states: bool) -> Option<u8> {
    let mut m = 0;
    for s in list.split(',') {
        m |= match CtState::parse(s) {
            Some(c) => ct_bit(c),
            None if virtual_states && s.eq_ignore_ascii_case("SNAT") => CT_SNAT,
            None if virtual_states && s.eq_ignore_ascii_case("DNAT") => CT_DNAT,
            None => return None,
        };
    }
    Some(m)
}

pub(crate) const STATUS_EXPECTED: u8 = 1;
pub(crate) const STATUS_SEEN_REPLY: u8 = 2;
pub(crate) const STATUS_ASSURED: u8 = 4;
pub(crate) const STATUS_CONFIRMED: u8 = 8;

/// `-m conntrack`: its options are judged together (with no connection, only `--ctstate` can
/// match, as in the kernel).
#[derive(Debug, Clone)]
pub(crate) struct CtMatch {
    pub state: Option<(bool, u8)>,
    pub opts: Vec<(bool, CtOpt)>,
    pub desc: Box<str>,
}

#[derive(Debug, Clone)]
pub(crate) enum CtOpt {
    Proto(u8),
    /// `--ctorigsrc` ...: (original?, source?, networks).
    Addr {
        orig: bool,
        dir: Dir,
        nets: Box<[IpNet]>,
    },
    Port {
        orig: bool,
        dir: Dir,
        lo: u16,
        hi: u16,
    },
    /// A mask of `STATUS_*`.
    Status(u8),
    /// `--ctdir ORIGINAL` (true) or `REPLY`.
    Dir(bool),
    /// An option nfscope cannot decide (the whole match is described).
    Unknown,
}

/// addrtype's type bits, as the kernel numbers them.
pub(crate) mod addrtype {
    pub const UNSPEC: u16 = 1 << 0;
    pub const UNICAST: u16 = 1 << 1;
    pub const LOCAL: u16 = 1 << 2;
    pub const BROADCAST: u16 = 1 << 3;
    pub const ANYCAST: u16 = 1 << 4;
    pub const MULTICAST: u16 = 1 << 5;
    pub const BLACKHOLE: u16 = 1 << 6;
    pub const UNREACHABLE: u16 = 1 << 7;
    pub const PROHIBIT: u16 = 1 << 8;
    pub const THROW: u16 = 1 << 9;
    pub const NAT: u16 = 1 << 10;
    pub const XRESOLVE: u16 = 1 << 11;
    pub const NAMES: [(&str, u16); 12] = [
        ("UNSPEC", UNSPEC),
        ("UNICAST", UNICAST),
        ("LOCAL", LOCAL),
        ("BROADCAST", BROADCAST),
        ("ANYCAST", ANYCAST),
        ("MULTICAST", MULTICAST),
        ("BLACKHOLE", BLACKHOLE),
        ("UNREACHABLE", UNREACHABLE),
        ("PROHIBIT", PROHIBIT),
        ("THROW", THROW),
        ("NAT", NAT),
        ("XRESOLVE", XRESOLVE),
    ];
}

#[derive(Debug, Clone)]
pub(crate) struct AddrTypeMatch {
    /// (negated, type mask) for the source and the destination.
    pub src: Option<(bool, u16)>,
    pub dst: Option<(bool, u16)>,
    /// `--limit-iface-in` / `--limit-iface-out`: only addresses of that interface are LOCAL.
    pub limit_in: bool,
    pub limit_out: bool,
    pub desc: Box<str>,
}

/// `VALUE/MASK` arithmetic on a mark: `mark = (mark & !clear) ^ xor`. Every MARK and CONNMARK
/// form (--set-mark, --set-xmark, --and/--or/--xor-mark) is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MarkOp {
    pub clear: u32,
    pub xor: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnMarkOp {
    /// Change the connection's mark.
    Set(MarkOp),
    /// `--save-mark`: ctmark = (ctmark & !ctmask) ^ (mark & nfmask).
    Save { nfmask: u32, ctmask: u32 },
    /// `--restore-mark`: mark = (mark & !nfmask) ^ (ctmark & ctmask).
    Restore { nfmask: u32, ctmask: u32 },
}

/// A NAT target's `--to-destination`/`--to-source`/`--to-ports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NatTo {
    pub addr: Option<(IpAddr, IpAddr)>,
    pub ports: Option<(u16, u16)>,
}

#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// No target: the rule only counts.
    None,
    Accept,
    Drop,
    Reject,
    Queue,
    Return,
    Jump(u32),
    Goto(u32),
    Dnat(NatTo),
    Snat(NatTo),
    Masquerade(Option<(u16, u16)>),
    Redirect(Option<(u16, u16)>),
    /// NETMAP: the network part replaced (destination in PREROUTING/OUTPUT, source otherwise).
    Netmap(IpNet),
    /// MARK (`None`: set to something nfscope cannot compute, e.g. HMARK).
    Mark(CompactString, Option<MarkOp>),
    ConnMark(ConnMarkOp),
    NoTrack(CompactString),
    Continue(CompactString),
    /// A target nfscope does not model, or one whose options it cannot read.
    Unmodelled(CompactString),
}

/// Targets that do something nfscope need not follow (logging, accounting, header tweaks the
/// matches do not look at): the next rule follows.
const CONTINUE_TARGETS: [&str; 24] = [
    "LOG",
    "NFLOG",
    "ULOG",
    "TRACE",
    "TCPMSS",
    "CHECKSUM",
    "DSCP",
    "TOS",
    "TTL",
    "HL",
    "ECN",
    "CLASSIFY",
    "SECMARK",
    "CONNSECMARK",
    "SET",
    "AUDIT",
    "IDLETIMER",
    "LED",
    "TEE",
    "RATEEST",
    "CLUSTERIP",
    "TCPOPTSTRIP",
    "NFACCT",
    "CT",
];

/// Matches whose answer can differ for the same packet from one moment to the next: an
/// assumption about one says nothing about the next time the same words appear.
const VOLATILE_MATCHES: [&str; 9] = [
    "recent",
    "limit",
    "hashlimit",
    "statistic",
    "connlimit",
    "quota",
    "connbytes",
    "rateest",
    "nth",
];

/// One option of a match, in the rule's words, for a message about it.
fn option_desc(m: &XMatch, o: &OptionArg) -> Box<str> {
    if m.implicit {
        o.to_args().into()
    } else {
        format!("-m {} {}", m.name, o.to_args()).into()
    }
}

fn unknown(desc: impl Into<Box<str>>, volatile: bool) -> Cond {
    Cond::Unknown {
        desc: desc.into(),
        volatile,
    }
}

fn first(o: &OptionArg) -> &str {
    o.values.first().map_or("", |v| v.as_str())
}

/// `-s`/`-d` values: `ADDR`, `ADDR/LEN`, `ADDR/NETMASK`, comma lists. `None` for a host name
/// or an address of the other family.
pub(crate) fn parse_nets(s: &str, family: Family) -> Option<Box<[IpNet]>> {
    s.split(',').map(|p| parse_net(p, family)).collect()
}

fn parse_net(s: &str, family: Family) -> Option<IpNet> {
    let s = s.trim();
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().ok()?;
    if super::packet::family_of(addr) != family {
        return None;
    }
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(p) => p,
            Err(_) => netmask_len(l.parse().ok()?)?,
        },
    };
    IpNet::new(addr, prefix).ok()
}

/// A dotted netmask (`255.255.0.0`) as a prefix length, if its ones are contiguous.
fn netmask_len(m: IpAddr) -> Option<u8> {
    let (bits, width) = match m {
        IpAddr::V4(v) => (u128::from(u32::from(v)) << 96, 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    };
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0 && ones <= width).then_some(ones as u8)
}

fn parse_addr_range(s: &str, family: Family) -> Option<(IpAddr, IpAddr)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: IpAddr = a.trim().parse().ok()?;
    let b: IpAddr = b.trim().parse().ok()?;
    let ok = super::packet::family_of(a) == family && super::packet::family_of(b) == family;
    (ok && a <= b).then_some((a, b))
}

fn parse_port_list(s: &str) -> Option<Box<[(u16, u16)]>> {
    s.split(',').map(parse_port_range).collect()
}

impl Prepared {
    pub fn new(rs: &Ruleset) -> Prepared {
        let mut tables: [Option<PTable>; 5] = Default::default();
        for t in &rs.tables {
            if let Some(id) = TableId::from_name(&t.name) {
                tables[id.index()] = Some(prepare_table(t, rs.family));
            }
        }
        Prepared {
            family: rs.family,
            tables,
        }
    }
}

fn prepare_table(t: &crate::ruleset::Table, family: Family) -> PTable {
    let index: FxHashMap<&str, u32> = t
        .chains
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i as u32))
        .collect();
    let mut base = [None; 5];
    for h in Hook::ALL {
        base[h.index()] = index
            .get(h.name())
            .copied()
            .filter(|&i| t.chains[i as usize].policy.is_some());
    }
    let chains = t
        .chains
        .iter()
        .map(|c| PChain {
            name: Name::from(c.name.as_str()),
            policy: c.policy.as_deref().map(|p| match p {
                "ACCEPT" => Policy::Accept,
                "DROP" => Policy::Drop,
                "QUEUE" => Policy::Queue,
                _ => Policy::Other,
            }),
            rules: c
                .rules
                .iter()
                .map(|r| prepare_rule(&r.spec, family, &index))
                .collect(),
        })
        .collect();
    PTable { chains, base }
}

fn prepare_rule(spec: &RuleSpec, family: Family, index: &FxHashMap<&str, u32>) -> PRule {
    let mut conds = Vec::with_capacity(spec.matches.len() + 3);
    basic(spec, family, &mut conds);
    for m in &spec.matches {
        module(m, family, &mut conds);
    }
    if !spec.extra.is_empty() {
        conds.push(unknown(
            format!(
                "words nfscope does not understand: {}",
                spec.extra.join(" ")
            ),
            false,
        ));
    }
    PRule {
        conds,
        action: action(spec, family, index),
    }
}

fn basic(spec: &RuleSpec, family: Family, conds: &mut Vec<Cond>) {
    if let Some(p) = &spec.protocol {
        match parse_proto(&p.value) {
            // `-p all` matches every packet; `! -p all` none.
            Some(0) => {
                if p.negated {
                    conds.push(Cond::Const(false));
                }
            }
            Some(proto) => conds.push(Cond::Proto {
                neg: p.negated,
                proto,
            }),
            None => conds.push(unknown(
                format!("-p {} (a protocol name nfscope does not know)", p.display()),
                false,
            )),
        }
    }
    for (n, dir, flag) in [
        (&spec.source, Dir::Src, "-s"),
        (&spec.destination, Dir::Dst, "-d"),
    ] {
        if let Some(n) = n {
            conds.push(match parse_nets(&n.value, family) {
                Some(nets) => Cond::Addr {
                    neg: n.negated,
                    dir,
                    nets,
                },
                None => unknown(
                    format!("{flag} {} (not an {} address)", n.display(), family.label()),
                    false,
                ),
            });
        }
    }
    for (n, out) in [(&spec.in_interface, false), (&spec.out_interface, true)] {
        if let Some(n) = n {
            conds.push(iface(n, out));
        }
    }
    if let Some(f) = spec.fragment {
        conds.push(Cond::Fragment { neg: f.negated });
    }
}

fn iface(n: &Negatable, out: bool) -> Cond {
    let (name, wildcard) = match n.value.strip_suffix('+') {
        Some(prefix) => (CompactString::from(prefix), true),
        None => (n.value.clone(), false),
    };
    Cond::Iface {
        neg: n.negated,
        out,
        name,
        wildcard,
    }
}

fn module(m: &XMatch, family: Family, conds: &mut Vec<Cond>) {
    let name = m.name.as_str();
    // An implicit match is named after the protocol as written (`-p 6 --dport 22`).
    let proto_module = match parse_proto(name) {
        Some(6) => Some("tcp"),
        Some(17) => Some("udp"),
        Some(132) => Some("sctp"),
        Some(33) => Some("dccp"),
        Some(136) => Some("udplite"),
        Some(1) => Some("icmp"),
        Some(58) => Some("icmp6"),
        _ => None,
    };
    let name = proto_module.unwrap_or(name);
    match name {
        "tcp" | "udp" | "sctp" | "dccp" | "udplite" => l4(m, name == "tcp", conds),
        "multiport" => multiport(m, conds),
        "icmp" | "icmp6" => icmp(m, name == "icmp6", conds),
        "conntrack" => conds.push(conntrack(m, family)),
        "state" => conds.push(state(m)),
        "comment" => {}
        "addrtype" => conds.push(addrtype(m)),
        "iprange" => iprange(m, family, conds),
        "mark" | "connmark" => mark(m, name == "connmark", conds),
        "mac" => mac(m, conds),
        "length" => length(m, conds),
        "ttl" | "hl" => ttl(m, name == "hl", conds),
        "pkttype" => pkttype(m, conds),
        "recent" => recent(m, conds),
        "nfacct" => {}
        _ => conds.push(unknown(m.to_args(), VOLATILE_MATCHES.contains(&name))),
    }
}

fn l4(m: &XMatch, tcp: bool, conds: &mut Vec<Cond>) {
    conds.push(Cond::NotFragment);
    for o in &m.options {
        let neg = o.negated;
        let c = match o.name.as_str() {
            "--sport" | "--source-port" | "--dport" | "--destination-port" => {
                let dir = if o.name.starts_with("--s") {
                    Dir::Src
                } else {
                    Dir::Dst
                };
                match parse_port_range(first(o)) {
                    Some((lo, hi)) => Cond::Port { neg, dir, lo, hi },
                    None => unknown(option_desc(m, o), false),
                }
            }
            "--tcp-flags" if tcp => {
                let mask = o.values.first().and_then(|v| parse_tcp_flags(v));
                let cmp = o.values.get(1).and_then(|v| parse_tcp_flags(v));
                match (mask, cmp, o.values.len()) {
                    (Some(mask), Some(cmp), 2) => Cond::TcpFlags { neg, mask, cmp },
                    _ => unknown(option_desc(m, o), false),
                }
            }
            "--syn" if tcp && o.values.is_empty() => Cond::TcpFlags {
                neg,
                mask: TCP_FIN | TCP_SYN | TCP_RST | TCP_ACK,
                cmp: TCP_SYN,
            },
            _ => unknown(option_desc(m, o), false),
        };
        conds.push(c);
    }
}

fn multiport(m: &XMatch, conds: &mut Vec<Cond>) {
    conds.push(Cond::NotFragment);
    for o in &m.options {
        let dir = match o.name.as_str() {
            "--sports" | "--source-ports" => Some(PortDir::Src),
            "--dports" | "--destination-ports" => Some(PortDir::Dst),
            "--ports" => Some(PortDir::Either),
            _ => None,
        };
        conds.push(match (dir, parse_port_list(first(o))) {
            (Some(dir), Some(ranges)) => Cond::Multiport {
                neg: o.negated,
                dir,
                ranges,
            },
            _ => unknown(option_desc(m, o), false),
        });
    }
}

fn icmp(m: &XMatch, v6: bool, conds: &mut Vec<Cond>) {
    conds.push(Cond::NotFragment);
    for o in &m.options {
        let ok_name = if v6 {
            o.name == "--icmpv6-type"
        } else {
            o.name == "--icmp-type"
        };
        conds.push(match parse_icmp_type(first(o), v6) {
            Some(kind) if ok_name => Cond::Icmp {
                neg: o.negated,
                v6,
                kind,
            },
            _ => unknown(option_desc(m, o), false),
        });
    }
}

fn conntrack(m: &XMatch, family: Family) -> Cond {
    let mut c = CtMatch {
        state: None,
        opts: Vec::new(),
        desc: m.to_args().into(),
    };
    for o in &m.options {
        let v = first(o);
        let opt = match o.name.as_str() {
            "--ctstate" => match state_mask(v, true) {
                Some(mask) => {
                    c.state = Some((o.negated, mask));
                    continue;
                }
                None => CtOpt::Unknown,
            },
            "--ctproto" => match parse_proto(v) {
                Some(p) => CtOpt::Proto(p),
                None => CtOpt::Unknown,
            },
            n @ ("--ctorigsrc" | "--ctorigdst" | "--ctreplsrc" | "--ctrepldst") => {
                let (orig, dir) = ct_side(n);
                match parse_nets(v, family) {
                    Some(nets) => CtOpt::Addr { orig, dir, nets },
                    None => CtOpt::Unknown,
                }
            }
            n @ ("--ctorigsrcport" | "--ctorigdstport" | "--ctreplsrcport" | "--ctrepldstport") => {
                let (orig, dir) = ct_side(n);
                match parse_port_range(v) {
                    Some((lo, hi)) => CtOpt::Port { orig, dir, lo, hi },
                    None => CtOpt::Unknown,
                }
            }
            "--ctstatus" => {
                let mut mask = Some(0u8);
                for s in v.split(',') {
                    mask = mask.and_then(|m| {
                        Some(
                            m | match s.to_ascii_uppercase().as_str() {
                                "NONE" => 0,
                                "EXPECTED" => STATUS_EXPECTED,
                                "SEEN_REPLY" => STATUS_SEEN_REPLY,
                                "ASSURED" => STATUS_ASSURED,
                                "CONFIRMED" => STATUS_CONFIRMED,
                                _ => return None,
                            },
                        )
                    });
                }
                match mask {
                    Some(m) => CtOpt::Status(m),
                    None => CtOpt::Unknown,
                }
            }
            "--ctdir" => match v.to_ascii_uppercase().as_str() {
                "ORIGINAL" => CtOpt::Dir(true),
                "REPLY" => CtOpt::Dir(false),
                _ => CtOpt::Unknown,
            },
            _ => CtOpt::Unknown,
        };
        c.opts.push((o.negated, opt));
    }
    Cond::Conntrack(Box::new(c))
}

/// `--ctorigsrc`, `--ctrepldstport` ...: the original direction's tuple?, and which end.
fn ct_side(option: &str) -> (bool, Dir) {
    let dir = if option.contains("src") {
        Dir::Src
    } else {
        Dir::Dst
    };
    (option.starts_with("--ctorig"), dir)
}

fn state(m: &XMatch) -> Cond {
    let mut out = None;
    for o in &m.options {
        match (o.name.as_str(), state_mask(first(o), false)) {
            ("--state", Some(mask)) if out.is_none() => {
                out = Some(Cond::State {
                    neg: o.negated,
                    mask,
                })
            }
            _ => return unknown(option_desc(m, o), false),
        }
    }
    out.unwrap_or_else(|| unknown(m.to_args(), false))
}

fn addrtype(m: &XMatch) -> Cond {
    let mut a = AddrTypeMatch {
        src: None,
        dst: None,
        limit_in: false,
        limit_out: false,
        desc: m.to_args().into(),
    };
    for o in &m.options {
        let types = || {
            let mut mask = 0u16;
            for t in first(o).split(',') {
                mask |= addrtype::NAMES
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(t.trim()))?
                    .1;
            }
            Some(mask)
        };
        match o.name.as_str() {
            "--src-type" | "--dst-type" => match types() {
                Some(mask) if o.name == "--src-type" => a.src = Some((o.negated, mask)),
                Some(mask) => a.dst = Some((o.negated, mask)),
                None => return unknown(option_desc(m, o), false),
            },
            "--limit-iface-in" => a.limit_in = true,
            "--limit-iface-out" => a.limit_out = true,
            _ => return unknown(option_desc(m, o), false),
        }
    }
    Cond::AddrType(Box::new(a))
}

fn iprange(m: &XMatch, family: Family, conds: &mut Vec<Cond>) {
    for o in &m.options {
        let dir = match o.name.as_str() {
            "--src-range" => Some(Dir::Src),
            "--dst-range" => Some(Dir::Dst),
            _ => None,
        };
        conds.push(match (dir, parse_addr_range(first(o), family)) {
            (Some(dir), Some((lo, hi))) => Cond::IpRange {
                neg: o.negated,
                dir,
                lo,
                hi,
            },
            _ => unknown(option_desc(m, o), false),
        });
    }
}

fn mark(m: &XMatch, conn: bool, conds: &mut Vec<Cond>) {
    for o in &m.options {
        conds.push(match (o.name.as_str(), parse_mark_mask(first(o))) {
            ("--mark", Some((value, mask))) if conn => Cond::ConnMark {
                neg: o.negated,
                value,
                mask,
            },
            ("--mark", Some((value, mask))) => Cond::Mark {
                neg: o.negated,
                value,
                mask,
            },
            _ => unknown(option_desc(m, o), false),
        });
    }
}

fn mac(m: &XMatch, conds: &mut Vec<Cond>) {
    for o in &m.options {
        conds.push(match (o.name.as_str(), parse_mac(first(o))) {
            ("--mac-source", Some(mac)) => Cond::Mac {
                neg: o.negated,
                mac,
            },
            _ => unknown(option_desc(m, o), false),
        });
    }
}

fn length(m: &XMatch, conds: &mut Vec<Cond>) {
    for o in &m.options {
        let v = first(o);
        let range = match v.split_once(':') {
            Some((a, b)) => {
                let lo = if a.is_empty() {
                    Some(0)
                } else {
                    a.parse().ok()
                };
                let hi = if b.is_empty() {
                    Some(u32::from(u16::MAX))
                } else {
                    b.parse().ok()
                };
                lo.zip(hi)
            }
            None => v.parse().ok().map(|n| (n, n)),
        };
        conds.push(match range {
            Some((lo, hi)) if o.name == "--length" => Cond::Length {
                neg: o.negated,
                lo,
                hi,
            },
            _ => unknown(option_desc(m, o), false),
        });
    }
}

fn ttl(m: &XMatch, v6: bool, conds: &mut Vec<Cond>) {
    let stem = if v6 { "--hl-" } else { "--ttl-" };
    for o in &m.options {
        let op = match o.name.strip_prefix(stem) {
            Some("eq") if o.negated => Some(b'!'),
            Some("eq") => Some(b'='),
            Some("lt") if !o.negated => Some(b'<'),
            Some("gt") if !o.negated => Some(b'>'),
            Some("ne") if !o.negated => Some(b'!'),
            _ => None,
        };
        conds.push(match (op, first(o).parse::<u8>()) {
            (Some(op), Ok(value)) => Cond::Ttl { op, value, v6 },
            _ => unknown(option_desc(m, o), false),
        });
    }
}

fn pkttype(m: &XMatch, conds: &mut Vec<Cond>) {
    for o in &m.options {
        conds.push(match (o.name.as_str(), PktType::parse(first(o))) {
            ("--pkt-type", Some(kind)) => Cond::PktType {
                neg: o.negated,
                kind,
            },
            _ => unknown(option_desc(m, o), false),
        });
    }
}

/// `--set` always matches (it adds the address to the list and says yes); `--rcheck`,
/// `--update` and `--remove` depend on the list, which a packet description does not hold.
fn recent(m: &XMatch, conds: &mut Vec<Cond>) {
    match m.options.iter().find(|o| o.name == "--set") {
        Some(set) => conds.push(Cond::Const(!set.negated)),
        None => conds.push(unknown(m.to_args(), true)),
    }
}

fn target_opt<'a>(options: &'a [OptionArg], names: &[&str]) -> Option<&'a str> {
    options
        .iter()
        .find(|o| names.contains(&o.name.as_str()))
        .map(first)
}

/// `ADDR[-ADDR][:PORT[-PORT]]`; IPv6 addresses in brackets when a port follows.
fn parse_nat_to(s: &str, family: Family) -> Option<NatTo> {
    let s = s.trim();
    let (addrs, ports) = if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        let ports = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (inner.replace("]-[", "-"), ports)
    } else if family == Family::V6 {
        (s.to_string(), None)
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    let addr = if addrs.is_empty() {
        None
    } else {
        Some(parse_addr_range(&addrs, family)?)
    };
    let ports = match ports {
        Some(p) => Some(parse_port_range(p)?),
        None => None,
    };
    Some(NatTo { addr, ports })
}

fn mark_op(options: &[OptionArg]) -> Option<MarkOp> {
    let o = options.first()?;
    let v = first(o);
    Some(match o.name.as_str() {
        "--set-xmark" => {
            let (xor, clear) = parse_mark_mask(v)?;
            MarkOp { clear, xor }
        }
        "--set-mark" => {
            let (value, mask) = parse_mark_mask(v)?;
            MarkOp {
                clear: mask | value,
                xor: value,
            }
        }
        "--and-mark" => MarkOp {
            clear: !parse_u32(v)?,
            xor: 0,
        },
        "--or-mark" => {
            let x = parse_u32(v)?;
            MarkOp { clear: x, xor: x }
        }
        "--xor-mark" => MarkOp {
            clear: 0,
            xor: parse_u32(v)?,
        },
        _ => return None,
    })
}

fn connmark_op(options: &[OptionArg]) -> Option<ConnMarkOp> {
    let masks = |default: u32| {
        let get = |n: &str| match target_opt(options, &[n]) {
            Some(v) => parse_u32(v),
            None => Some(default),
        };
        Some((get("--nfmask")?, get("--ctmask")?))
    };
    let has = |n: &str| options.iter().any(|o| o.name == n);
    if has("--save-mark") {
        let (nfmask, ctmask) = match target_opt(options, &["--mask"]) {
            Some(m) => (parse_u32(m)?, parse_u32(m)?),
            None => masks(u32::MAX)?,
        };
        Some(ConnMarkOp::Save { nfmask, ctmask })
    } else if has("--restore-mark") {
        let (nfmask, ctmask) = match target_opt(options, &["--mask"]) {
            Some(m) => (parse_u32(m)?, parse_u32(m)?),
            None => masks(u32::MAX)?,
        };
        Some(ConnMarkOp::Restore { nfmask, ctmask })
    } else {
        mark_op(options).map(ConnMarkOp::Set)
    }
}

fn action(spec: &RuleSpec, family: Family, index: &FxHashMap<&str, u32>) -> Action {
    let Some(t) = &spec.target else {
        return Action::None;
    };
    let name = t.name.as_str();
    let goto = t.kind == TargetKind::Goto;
    match name {
        "ACCEPT" => return Action::Accept,
        "DROP" => return Action::Drop,
        "RETURN" => return Action::Return,
        "QUEUE" => return Action::Queue,
        _ => {}
    }
    if let Some(&i) = index.get(name) {
        return if goto {
            Action::Goto(i)
        } else {
            Action::Jump(i)
        };
    }
    let bad = || Action::Unmodelled(t.name.clone());
    let o = &t.options;
    match name {
        "REJECT" => Action::Reject,
        "NFQUEUE" => Action::Queue,
        "DNAT" | "SNAT" => {
            let names: &[&str] = if name == "DNAT" {
                &["--to-destination", "--to"]
            } else {
                &["--to-source", "--to"]
            };
            match target_opt(o, names).and_then(|v| parse_nat_to(v, family)) {
                Some(to) if name == "DNAT" => Action::Dnat(to),
                Some(to) => Action::Snat(to),
                None => bad(),
            }
        }
        "MASQUERADE" | "REDIRECT" => {
            let ports = match target_opt(o, &["--to-ports", "--to-port"]) {
                Some(p) => match parse_port_range(p) {
                    Some(r) => Some(r),
                    None => return bad(),
                },
                None => None,
            };
            if name == "MASQUERADE" {
                Action::Masquerade(ports)
            } else {
                Action::Redirect(ports)
            }
        }
        "NETMAP" => match target_opt(o, &["--to"]).and_then(|v| parse_net(v, family)) {
            Some(net) => Action::Netmap(net),
            None => bad(),
        },
        "MARK" => match mark_op(o) {
            Some(op) => Action::Mark(t.name.clone(), Some(op)),
            None => bad(),
        },
        "HMARK" => Action::Mark(t.name.clone(), None),
        "CONNMARK" => match connmark_op(o) {
            Some(op) => Action::ConnMark(op),
            None => bad(),
        },
        "NOTRACK" => Action::NoTrack(t.name.clone()),
        "CT" if o.iter().any(|x| x.name == "--notrack") => Action::NoTrack(t.name.clone()),
        _ if CONTINUE_TARGETS.contains(&name) => Action::Continue(t.name.clone()),
        _ => bad(),
    }
}

impl Cond {
    /// The condition in the rule's words, for a message about it.
    pub fn describe(&self) -> String {
        let bang = |neg: bool| if neg { "! " } else { "" };
        let nets = |n: &[IpNet]| n.iter().map(IpNet::to_string).collect::<Vec<_>>().join(",");
        let range = |lo: u16, hi: u16| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}:{hi}")
            }
        };
        match self {
            Cond::Proto { neg, proto } => {
                format!("{}-p {}", bang(*neg), super::packet::proto_name(*proto))
            }
            Cond::Addr { neg, dir, nets: n } => {
                let f = if *dir == Dir::Src { "-s" } else { "-d" };
                format!("{}{f} {}", bang(*neg), nets(n))
            }
            Cond::Iface {
                neg,
                out,
                name,
                wildcard,
            } => format!(
                "{}{} {name}{}",
                bang(*neg),
                if *out { "-o" } else { "-i" },
                if *wildcard { "+" } else { "" }
            ),
            Cond::Fragment { neg } => format!("{}-f", bang(*neg)),
            Cond::NotFragment => "(not a later fragment)".into(),
            Cond::Port { neg, dir, lo, hi } => format!(
                "{}{} {}",
                bang(*neg),
                if *dir == Dir::Src {
                    "--sport"
                } else {
                    "--dport"
                },
                range(*lo, *hi)
            ),
            Cond::Multiport { neg, dir, ranges } => format!(
                "-m multiport {}{} {}",
                bang(*neg),
                match dir {
                    PortDir::Src => "--sports",
                    PortDir::Dst => "--dports",
                    PortDir::Either => "--ports",
                },
                ranges
                    .iter()
                    .map(|&(a, b)| range(a, b))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Cond::TcpFlags { neg, mask, cmp } => format!(
                "{}--tcp-flags {} {}",
                bang(*neg),
                super::packet::tcp_flags_text(*mask),
                super::packet::tcp_flags_text(*cmp)
            ),
            Cond::Icmp { neg, v6, kind } => {
                let k = match kind {
                    None => "any".to_string(),
                    Some((t, 0, 255)) => t.to_string(),
                    Some((t, c, _)) => format!("{t}/{c}"),
                };
                let opt = if *v6 { "--icmpv6-type" } else { "--icmp-type" };
                format!("{}{opt} {k}", bang(*neg))
            }
            Cond::Conntrack(c) => c.desc.to_string(),
            Cond::State { neg, mask } => {
                let names: Vec<&str> = CtState::ALL
                    .into_iter()
                    .filter(|s| mask & ct_bit(*s) != 0)
                    .map(CtState::name)
                    .collect();
                format!("-m state {}--state {}", bang(*neg), names.join(","))
            }
            Cond::AddrType(a) => a.desc.to_string(),
            Cond::IpRange { neg, dir, lo, hi } => format!(
                "-m iprange {}{} {lo}-{hi}",
                bang(*neg),
                if *dir == Dir::Src {
                    "--src-range"
                } else {
                    "--dst-range"
                }
            ),
            Cond::Mark { neg, value, mask } => {
                format!("-m mark {}--mark {value:#x}/{mask:#x}", bang(*neg))
            }
            Cond::ConnMark { neg, value, mask } => {
                format!("-m connmark {}--mark {value:#x}/{mask:#x}", bang(*neg))
            }
            Cond::Mac { neg, mac } => format!(
                "-m mac {}--mac-source {}",
                bang(*neg),
                mac.iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<Vec<_>>()
                    .join(":")
            ),
            Cond::Length { neg, lo, hi } => {
                format!("-m length {}--length {lo}:{hi}", bang(*neg))
            }
            Cond::Ttl { op, value, v6 } => {
                let (m, stem) = if *v6 {
                    ("hl", "--hl-")
                } else {
                    ("ttl", "--ttl-")
                };
                let o = match op {
                    b'=' => "eq",
                    b'<' => "lt",
                    b'>' => "gt",
                    _ => "ne",
                };
                format!("-m {m} {stem}{o} {value}")
            }
            Cond::PktType { neg, kind } => format!(
                "-m pkttype {}--pkt-type {}",
                bang(*neg),
                match kind {
                    PktType::Unicast => "unicast",
                    PktType::Broadcast => "broadcast",
                    PktType::Multicast => "multicast",
                }
            ),
            Cond::Const(b) => if *b { "(always)" } else { "(never)" }.into(),
            Cond::Unknown { desc, .. } => desc.to_string(),
        }
    }

    /// Whether an assumption about this condition holds for the rest of the path.
    pub fn is_stable(&self) -> bool {
        !matches!(self, Cond::Unknown { volatile: true, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::parse;

    fn rule(text: &str) -> PRule {
        let rs = parse(
            &format!("*filter\n:INPUT ACCEPT [0:0]\n:T - [0:0]\n-A INPUT {text}\nCOMMIT\n"),
            Family::V4,
        )
        .unwrap();
        let mut p = Prepared::new(&rs);
        let mut t = p.tables[TableId::Filter.index()].take().unwrap();
        t.chains[0].rules.remove(0)
    }

    #[test]
    fn reads_matches_into_conditions() {
        let r = rule("-s 10.0.0.0/255.0.0.0 -p tcp -m tcp --dport 1024:2048 --syn -j T");
        assert!(matches!(r.action, Action::Jump(1)));
        assert!(matches!(&r.conds[0], Cond::Proto { proto: 6, .. }));
        match &r.conds[1] {
            Cond::Addr { nets, .. } => assert_eq!(nets[0].to_string(), "10.0.0.0/8"),
            c => panic!("{c:?}"),
        }
        assert!(matches!(
            r.conds[3],
            Cond::Port {
                lo: 1024,
                hi: 2048,
                ..
            }
        ));
        assert!(matches!(
            r.conds[4],
            Cond::TcpFlags {
                mask: 0x17,
                cmp: 2,
                ..
            }
        ));
    }

    #[test]
    fn what_it_cannot_read_is_unknown_in_the_rules_words() {
        let r = rule(
            "-m limit --limit 5/sec -m recent --rcheck --name X -m tcp --tcp-option 2 -j ACCEPT",
        );
        let d: Vec<String> = r.conds.iter().map(Cond::describe).collect();
        assert_eq!(d[0], "-m limit --limit 5/sec");
        assert_eq!(d[1], "-m recent --rcheck --name X");
        assert_eq!(d[3], "-m tcp --tcp-option 2");
        assert!(!r.conds[0].is_stable());
        assert!(r.conds[3].is_stable());
        let r = rule("-m recent --set --name X -j ACCEPT");
        assert!(matches!(r.conds[0], Cond::Const(true)));
        let r = rule("-s example.com -j ACCEPT");
        assert!(matches!(r.conds[0], Cond::Unknown { .. }));
        let r = rule("-j NOPE_TARGET");
        assert!(matches!(r.action, Action::Unmodelled(_)));
    }

    #[test]
    fn targets() {
        let to = |s: &str, f| parse_nat_to(s, f).unwrap();
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            to("10.0.0.1-10.0.0.9:80-90", Family::V4),
            NatTo {
                addr: Some((v4("10.0.0.1"), v4("10.0.0.9"))),
                ports: Some((80, 90))
            }
        );
        assert_eq!(to("[::1]:80", Family::V6).ports, Some((80, 80)));
        assert_eq!(to("fd00::5", Family::V6).ports, None);
        assert_eq!(to(":8080", Family::V4).addr, None);
        assert!(parse_nat_to("[::1", Family::V6).is_none());
        let op = |s: &str| {
            let o: Vec<OptionArg> = vec![OptionArg {
                name: s.split(' ').next().unwrap().into(),
                negated: false,
                values: vec![s.split(' ').nth(1).unwrap().into()],
            }];
            mark_op(&o).unwrap()
        };
        assert_eq!(
            op("--set-xmark 0x10/0xff"),
            MarkOp {
                clear: 0xff,
                xor: 0x10
            }
        );
        assert_eq!(
            op("--set-mark 0x10"),
            MarkOp {
                clear: u32::MAX,
                xor: 0x10
            }
        );
        assert_eq!(
            op("--or-mark 0x4000"),
            MarkOp {
                clear: 0x4000,
                xor: 0x4000
            }
        );
        assert_eq!(netmask_len("255.255.240.0".parse().unwrap()), Some(20));
        assert_eq!(netmask_len("255.0.255.0".parse().unwrap()), None);
    }
}
