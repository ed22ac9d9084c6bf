//! nf_tables over netlink, read-only: the rule set's generation, and the tables, chains and
//! rules of every family (ip, ip6, inet, arp, bridge, netdev) with their handles, hooks,
//! priorities, types, policies, the names of their expressions and their counters.
//!
//! The first part of issue 11 (native nftables): nothing in the faces uses it yet. The rules of
//! each chain are read with a dump of their own (`NFTA_RULE_TABLE` and `NFTA_RULE_CHAIN` in the
//! request): the kernel's whole-rule-set dump walks the rules again for every part it sends
//! (quadratic at 50,000 rules). Every dump message carries the generation's low 16 bits in its
//! header; a read is taken again when the generation moved while it ran. The counter-resetting
//! message types (`*_RESET`) are never sent.

use super::nfnl::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, error_code, messages, push_request, recv,
};
use super::nft_expr::{self, Expr, NftSet};
use crate::conntrack::decode::{AttrWriter, Attrs};
use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};
use thiserror::Error;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFT_MSG_GETGEN: u16 = 16;

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFTA_TABLE_HANDLE: u16 = 4;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_HANDLE: u16 = 2;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_CHAIN_COUNTERS: u16 = 8;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;
const NFTA_GEN_ID: u16 = 1;

/// `NFT_TABLE_F_DORMANT`: the table's chains are not hooked.
pub const TABLE_DORMANT: u32 = 0x1;

/// How many times a read is taken again when the generation moved while it ran.
const ATTEMPTS: usize = 4;

/// A failure reading nf_tables, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NftError {
    #[error("reading nf_tables needs CAP_NET_ADMIN: run as root")]
    PermissionDenied,
    #[error("the kernel does not offer nf_tables over netlink (module nf_tables not loaded?)")]
    NotSupported,
    #[error("nf_tables over netlink: {what} failed: {message}")]
    Io { what: String, message: String },
    #[error("the rule set kept changing while it was read ({0} attempts): try again")]
    Moving(usize),
}

impl NftError {
    pub(crate) fn io(what: &str, e: &std::io::Error) -> NftError {
        match e.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => NftError::PermissionDenied,
            Some(libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT) => NftError::NotSupported,
            _ => NftError::Io {
                what: what.into(),
                message: e.to_string(),
            },
        }
    }
}

/// An nftables family, as nft names it.
pub fn family_name(f: u8) -> &'static str {
    match f {
        1 => "inet",
        2 => "ip",
        3 => "arp",
        5 => "netdev",
        7 => "bridge",
        10 => "ip6",
        _ => "unknown",
    }
}

/// A base chain's hook, as nft names it in its family.
pub fn hook_name(family: u8, hook: u32) -> &'static str {
    match (family, hook) {
        (3, 0) => "input",
        (3, 1) => "output",
        (5, 0) => "ingress",
        (5, 1) => "egress",
        (_, 0) => "prerouting",
        (_, 1) => "input",
        (_, 2) => "forward",
        (_, 3) => "output",
        (_, 4) => "postrouting",
        (_, 5) => "ingress",
        _ => "unknown",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NftTable {
    pub family: u8,
    pub name: String,
    pub flags: u32,
    pub handle: u64,
}

/// Where a base chain is hooked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hook {
    pub num: u32,
    pub priority: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NftChain {
    pub family: u8,
    pub table: String,
    pub name: String,
    pub handle: u64,
    /// Base chains only.
    pub hook: Option<Hook>,
    /// `filter`, `nat`, `route` (base chains).
    pub kind: Option<String>,
    /// `NF_DROP` (0) or `NF_ACCEPT` (1), base chains only.
    pub policy: Option<u32>,
    /// A base chain's own counters (what its policy decided, for iptables-nft), packets and
    /// bytes.
    pub counters: Option<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NftRule {
    pub family: u8,
    pub table: String,
    pub chain: String,
    pub handle: u64,
    /// The names of its expressions, in order (`payload`, `cmp`, `counter`, `immediate`...).
    pub exprs: Vec<String>,
    /// Its counter expression's packets and bytes, if it has one.
    pub counter: Option<(u64, u64)>,
    /// Its expressions decoded, for the tracer: read by `read_full` only (empty otherwise).
    pub body: Vec<Expr>,
}

/// The whole of nf_tables at one generation; the rules of each chain in their order.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct NftRuleset {
    pub generation: u32,
    pub tables: Vec<NftTable>,
    pub chains: Vec<NftChain>,
    pub rules: Vec<NftRule>,
    /// Sets and maps with their elements: read by `read_full` only.
    pub sets: Vec<NftSet>,
}

impl NftRuleset {
    /// The rules of chain `c`, in their order.
    pub fn rules_of<'a>(&'a self, c: &'a NftChain) -> impl Iterator<Item = &'a NftRule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.family == c.family && r.table == c.table && r.chain == c.name)
    }
}

fn string(p: &[u8]) -> String {
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    String::from_utf8_lossy(&p[..end]).into_owned()
}

fn be32(p: &[u8]) -> u32 {
    p.get(..4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be64(p: &[u8]) -> u64 {
    p.get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// A message's nfgenmsg (family, and the generation's low 16 bits) and its attributes.
fn split(payload: &[u8]) -> Option<(u8, u16, &[u8])> {
    let h = payload.get(..4)?;
    Some((h[0], u16::from_be_bytes([h[2], h[3]]), &payload[4..]))
}

/// A counter's packets and bytes (`NFTA_COUNTER_*`).
fn counter(attrs: &[u8]) -> (u64, u64) {
    let (mut packets, mut bytes) = (0, 0);
    for (k, q) in Attrs::new(attrs) {
        match k {
            NFTA_COUNTER_PACKETS => packets = be64(q),
            NFTA_COUNTER_BYTES => bytes = be64(q),
            _ => {}
        }
    }
    (packets, bytes)
}

/// The nftables family number of an iptables family.
pub fn nfproto(f: crate::ruleset::Family) -> u8 {
    match f {
        crate::ruleset::Family::V4 => 2,
        crate::ruleset::Family::V6 => 10,
    }
}

/// Put the counters of `nft` (read at one generation) on the iptables-nft rule set `rs` read at
/// that same generation: each chain's rules in order, each rule's counter expression, and a
/// built-in chain's own counters for its policy. False, and `rs` left as it may be half done,
/// when anything does not line up (a chain with another number of rules, a rule without a
/// counter): then the rule set must be read whole.
pub fn put_counters(rs: &mut crate::ruleset::Ruleset, nft: &NftRuleset) -> bool {
    use std::collections::HashMap;
    let fam = nfproto(rs.family);
    let mut by_chain: HashMap<(&str, &str), Vec<&NftRule>> = HashMap::new();
    for r in nft.rules.iter().filter(|r| r.family == fam) {
        by_chain
            .entry((r.table.as_str(), r.chain.as_str()))
            .or_default()
            .push(r);
    }
    let chains: HashMap<(&str, &str), &NftChain> = nft
        .chains
        .iter()
        .filter(|c| c.family == fam)
        .map(|c| ((c.table.as_str(), c.name.as_str()), c))
        .collect();
    for table in &mut rs.tables {
        for chain in &mut table.chains {
            let key = (table.name.as_str(), chain.name.as_str());
            let rules = by_chain.get(&key).map_or(&[][..], Vec::as_slice);
            if rules.len() != chain.rules.len() {
                return false;
            }
            for (mine, theirs) in chain.rules.iter_mut().zip(rules) {
                let Some((p, b)) = theirs.counter else {
                    return false;
                };
                mine.counters = Some(crate::ruleset::Counters::new(p, b));
            }
            if chain.policy.is_some() {
                match chains.get(&key) {
                    // A base chain made without counters (`iptables -A` on a fresh table) has
                    // none to move: the save tool prints [0:0] for it.
                    Some(c) => {
                        let (p, b) = c.counters.unwrap_or((0, 0));
                        chain.counters = crate::ruleset::Counters::new(p, b);
                    }
                    // A built-in chain iptables-nft has not made yet: the save tool prints it
                    // all the same, empty, with ACCEPT and zero counters; nothing to put.
                    None if chain.rules.is_empty() => {}
                    None => return false,
                }
            }
        }
    }
    true
}

/// The counters alone, put on iptables-nft rule sets that the save tools printed at nf_tables
/// generation `generation` (what `read` then `put_counters` do for them, for a refresh or a
/// commit that keeps their rules): each chain's rules by a filtered dump of their own, and a
/// built-in chain's own counters by asking for that chain. No table or chain dump (while the
/// generation stays, the chains are the ones printed; a chain without rules is not asked
/// about), and nothing is copied or named: only each rule's counter expression is looked at.
/// ~120 ms for 50,000 rules in 18,000 chains, of which the kernel's own work is most, against
/// ~160 ms for `read` (docs/performance.md). `Ok(false)`, and the rule sets left as they may
/// be half done, when the kernel is not at `generation`, moved while it was read, or anything
/// does not line up (a chain with another number of rules, a rule without a counter): then
/// they must be read whole.
pub fn read_counters_into(
    sets: &mut [crate::ruleset::Ruleset],
    generation: u32,
) -> Result<bool, NftError> {
    let mut conn = Conn::open()?;
    if conn.generation()? != generation {
        return Ok(false);
    }
    let lo = u16::try_from(generation & 0xffff).unwrap_or(0);
    for rs in sets.iter_mut() {
        let family = nfproto(rs.family);
        for table in &mut rs.tables {
            for chain in &mut table.chains {
                let (table_name, chain_name) =
                    (nul_terminated(&table.name), nul_terminated(&chain.name));
                if !chain.rules.is_empty() {
                    let mut w = AttrWriter::default();
                    w.put(NFTA_RULE_TABLE, &table_name);
                    w.put(NFTA_RULE_CHAIN, &chain_name);
                    match rule_counters(&mut conn, family, &w.buf, lo)? {
                        Some(c) if c.len() == chain.rules.len() => {
                            for (rule, (p, b)) in chain.rules.iter_mut().zip(c) {
                                rule.counters = Some(crate::ruleset::Counters::new(p, b));
                            }
                        }
                        _ => return Ok(false),
                    }
                }
                if chain.policy.is_some() {
                    let mut w = AttrWriter::default();
                    w.put(NFTA_CHAIN_TABLE, &table_name);
                    w.put(NFTA_CHAIN_NAME, &chain_name);
                    match chain_counters(&mut conn, family, &w.buf, lo)? {
                        Some(Some((p, b))) => chain.counters = crate::ruleset::Counters::new(p, b),
                        // A built-in chain iptables-nft has not made yet: the save tool prints
                        // it all the same, empty, with ACCEPT and zero counters.
                        Some(None) if chain.rules.is_empty() => {}
                        _ => return Ok(false),
                    }
                }
            }
        }
    }
    Ok(conn.generation()? == generation)
}

/// A rule message's counter expression, if it has one.
fn rule_counter(attrs: &[u8]) -> Option<(u64, u64)> {
    Attrs::new(attrs)
        .filter(|(k, _)| *k == NFTA_RULE_EXPRESSIONS)
        .flat_map(|(_, list)| Attrs::new(list))
        .find_map(|(_, elem)| {
            Attrs::new(elem)
                .any(|(k, q)| k == NFTA_EXPR_NAME && q.starts_with(b"counter\0"))
                .then(|| {
                    Attrs::new(elem)
                        .find(|(k, _)| *k == NFTA_EXPR_DATA)
                        .map_or((0, 0), |(_, q)| counter(q))
                })
        })
}

/// The counters of one chain's rules in order (`attrs`: its table and name), by a filtered
/// dump; `None` when a rule has no counter or a message is not of generation `lo` (low bits).
fn rule_counters(
    conn: &mut Conn,
    family: u8,
    attrs: &[u8],
    lo: u16,
) -> Result<Option<Vec<(u64, u64)>>, NftError> {
    let seq = conn.send(NFT_MSG_GETRULE, NLM_F_DUMP, family, attrs)?;
    let mut out = Vec::new();
    let mut ok = true;
    loop {
        let got =
            recv(&conn.sock, &mut conn.buf).map_err(|e| NftError::io("reading a dump", &e))?;
        if got == 0 {
            break;
        }
        for m in messages(&conn.buf[..got]).filter(|m| m.seq == seq) {
            match m.kind {
                NLMSG_DONE => return Ok(ok.then_some(out)),
                NLMSG_ERROR if error_code(m.payload) == 0 => {}
                // No such chain (any more): it does not line up.
                NLMSG_ERROR if error_code(m.payload) == libc::ENOENT => return Ok(None),
                NLMSG_ERROR => {
                    let e = std::io::Error::from_raw_os_error(error_code(m.payload));
                    return Err(NftError::io("a dump", &e));
                }
                _ => match split(m.payload).and_then(|(_, g, a)| (g == lo).then_some(a)) {
                    // Read to the end all the same, so the next request finds the socket clear.
                    Some(a) if m.flags & NLM_F_DUMP_INTR == 0 && ok => match rule_counter(a) {
                        Some(c) => out.push(c),
                        None => ok = false,
                    },
                    _ => ok = false,
                },
            }
        }
    }
    Ok(ok.then_some(out))
}

/// A chain's own counters (`attrs`: its table and name; zero when it has none), asked for
/// alone; `Some(None)` when the kernel has no such chain, `None` when the answer is not of
/// generation `lo`.
fn chain_counters(
    conn: &mut Conn,
    family: u8,
    attrs: &[u8],
    lo: u16,
) -> Result<Option<Option<(u64, u64)>>, NftError> {
    let seq = conn.send(NFT_MSG_GETCHAIN, 0, family, attrs)?;
    let got = recv(&conn.sock, &mut conn.buf).map_err(|e| NftError::io("reading a chain", &e))?;
    let Some(m) = messages(&conn.buf[..got]).find(|m| m.seq == seq) else {
        return Ok(None);
    };
    if m.kind == NLMSG_ERROR {
        return match error_code(m.payload) {
            libc::ENOENT => Ok(Some(None)),
            code => Err(NftError::io(
                "asking for a chain",
                &std::io::Error::from_raw_os_error(code),
            )),
        };
    }
    Ok(split(m.payload)
        .filter(|(_, g, _)| *g == lo)
        .map(|(_, _, attrs)| {
            Some(
                Attrs::new(attrs)
                    .find(|(k, _)| *k == NFTA_CHAIN_COUNTERS)
                    .map_or((0, 0), |(_, q)| counter(q)),
            )
        }))
}

fn decode_table(family: u8, attrs: &[u8]) -> NftTable {
    let mut t = NftTable {
        family,
        name: String::new(),
        flags: 0,
        handle: 0,
    };
    for (kind, p) in Attrs::new(attrs) {
        match kind {
            NFTA_TABLE_NAME => t.name = string(p),
            NFTA_TABLE_FLAGS => t.flags = be32(p),
            NFTA_TABLE_HANDLE => t.handle = be64(p),
            _ => {}
        }
    }
    t
}

fn decode_chain(family: u8, attrs: &[u8]) -> NftChain {
    let mut c = NftChain {
        family,
        table: String::new(),
        name: String::new(),
        handle: 0,
        hook: None,
        kind: None,
        policy: None,
        counters: None,
    };
    for (kind, p) in Attrs::new(attrs) {
        match kind {
            NFTA_CHAIN_COUNTERS => c.counters = Some(counter(p)),
            NFTA_CHAIN_TABLE => c.table = string(p),
            NFTA_CHAIN_NAME => c.name = string(p),
            NFTA_CHAIN_HANDLE => c.handle = be64(p),
            NFTA_CHAIN_POLICY => c.policy = Some(be32(p)),
            NFTA_CHAIN_TYPE => c.kind = Some(string(p)),
            NFTA_CHAIN_HOOK => {
                let mut h = Hook {
                    num: 0,
                    priority: 0,
                };
                for (k, q) in Attrs::new(p) {
                    match k {
                        NFTA_HOOK_HOOKNUM => h.num = be32(q),
                        // A signed priority sent as its two's complement.
                        NFTA_HOOK_PRIORITY => {
                            h.priority = i32::from_be_bytes(be32(q).to_be_bytes())
                        }
                        _ => {}
                    }
                }
                c.hook = Some(h);
            }
            _ => {}
        }
    }
    c
}

fn decode_rule(family: u8, attrs: &[u8], full: bool) -> NftRule {
    let mut r = NftRule {
        family,
        table: String::new(),
        chain: String::new(),
        handle: 0,
        exprs: Vec::new(),
        counter: None,
        body: Vec::new(),
    };
    for (kind, p) in Attrs::new(attrs) {
        match kind {
            NFTA_RULE_TABLE => r.table = string(p),
            NFTA_RULE_CHAIN => r.chain = string(p),
            NFTA_RULE_HANDLE => r.handle = be64(p),
            NFTA_RULE_EXPRESSIONS => {
                for (_, elem) in Attrs::new(p).filter(|(k, _)| *k == NFTA_LIST_ELEM) {
                    let mut name = String::new();
                    let mut data: &[u8] = &[];
                    for (k, q) in Attrs::new(elem) {
                        match k {
                            NFTA_EXPR_NAME => name = string(q),
                            NFTA_EXPR_DATA => data = q,
                            _ => {}
                        }
                    }
                    if name == "counter" {
                        r.counter = Some(counter(data));
                    }
                    if full {
                        r.body.push(nft_expr::decode(&name, data));
                    }
                    r.exprs.push(name);
                }
            }
            _ => {}
        }
    }
    r
}

/// Decode one message's attributes as a table, a chain and a rule (what `read` does with the
/// kernel's answers): for the fuzz harness, which feeds it anything.
pub fn decode_any(family: u8, attrs: &[u8]) -> (NftTable, NftChain, NftRule) {
    (
        decode_table(family, attrs),
        decode_chain(family, attrs),
        decode_rule(family, attrs, true),
    )
}

/// A socket to nf_tables.
struct Conn {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// What a dump gave: each message's family and attributes, and whether the generation moved
/// (the kernel marked the dump interrupted, or the messages carried different generations).
struct Dumped {
    msgs: Vec<(u8, Vec<u8>)>,
    gens: Vec<u16>,
    interrupted: bool,
}

impl Conn {
    fn open() -> Result<Conn, NftError> {
        let mut sock =
            Socket::new(NETLINK_NETFILTER).map_err(|e| NftError::io("opening the socket", &e))?;
        sock.bind_auto()
            .map_err(|e| NftError::io("binding the socket", &e))?;
        Ok(Conn {
            sock,
            seq: 0,
            buf: vec![0; 1 << 18],
        })
    }

    fn send(&mut self, msg: u16, flags: u16, family: u8, attrs: &[u8]) -> Result<u32, NftError> {
        self.seq = self.seq.wrapping_add(1);
        let mut req = Vec::new();
        push_request(
            &mut req,
            (NFNL_SUBSYS_NFTABLES << 8) | msg,
            flags,
            self.seq,
            family,
            attrs,
        );
        self.sock
            .send(&req, 0)
            .map_err(|e| NftError::io("sending a request", &e))?;
        Ok(self.seq)
    }

    /// Send one dump request and read its answer to the end.
    fn dump(&mut self, msg: u16, family: u8, attrs: &[u8]) -> Result<Dumped, NftError> {
        let seq = self.send(msg, NLM_F_DUMP, family, attrs)?;
        let mut out = Dumped {
            msgs: Vec::new(),
            gens: Vec::new(),
            interrupted: false,
        };
        loop {
            let n =
                recv(&self.sock, &mut self.buf).map_err(|e| NftError::io("reading a dump", &e))?;
            if n == 0 {
                return Ok(out);
            }
            for m in messages(&self.buf[..n]) {
                if m.seq != seq {
                    continue;
                }
                match m.kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = error_code(m.payload);
                        if code == 0 {
                            continue;
                        }
                        let e = std::io::Error::from_raw_os_error(code);
                        return Err(NftError::io("a dump", &e));
                    }
                    _ => {}
                }
                if m.flags & NLM_F_DUMP_INTR != 0 {
                    out.interrupted = true;
                }
                if let Some((family, gen_lo, attrs)) = split(m.payload) {
                    out.gens.push(gen_lo);
                    out.msgs.push((family, attrs.to_vec()));
                }
            }
        }
    }

    /// The rule set's generation (`NFT_MSG_GETGEN`).
    fn generation(&mut self) -> Result<u32, NftError> {
        let seq = self.send(NFT_MSG_GETGEN, 0, 0, &[])?;
        loop {
            let n = recv(&self.sock, &mut self.buf)
                .map_err(|e| NftError::io("reading the generation", &e))?;
            for m in messages(&self.buf[..n]) {
                if m.seq != seq {
                    continue;
                }
                if m.kind == NLMSG_ERROR {
                    let code = error_code(m.payload);
                    if code != 0 {
                        let e = std::io::Error::from_raw_os_error(code);
                        return Err(NftError::io("asking for the generation", &e));
                    }
                    continue;
                }
                if let Some((_, _, attrs)) = split(m.payload)
                    && let Some((_, p)) = Attrs::new(attrs).find(|(k, _)| *k == NFTA_GEN_ID)
                {
                    return Ok(be32(p));
                }
            }
        }
    }
}

/// The rule set's generation: it moves with every change committed to nf_tables.
pub fn generation() -> Result<u32, NftError> {
    Conn::open()?.generation()
}

/// Read the whole of nf_tables at one generation (taken again, up to a few times, when it moved
/// while it was read).
pub fn read() -> Result<NftRuleset, NftError> {
    read_with(false, false, &|_, _| true)
}

/// `read`, and also every rule's expressions decoded and every set with its elements: what the
/// tracer needs.
pub fn read_full() -> Result<NftRuleset, NftError> {
    read_with(true, true, &|_, _| true)
}

/// Which chains' rules to read: given each chain and all of them.
pub type Wanted<'a> = &'a dyn Fn(&NftChain, &[NftChain]) -> bool;

/// `read`, but the rules only of the chains `wanted` picks (every table and chain is still
/// listed): the native tables' counters without iptables' 50,000 rules.
pub fn read_of(wanted: Wanted) -> Result<NftRuleset, NftError> {
    read_with(false, false, wanted)
}

/// `read`, and every set and map with its elements (not the rules' expressions): what the
/// screens list.
pub fn read_with_sets() -> Result<NftRuleset, NftError> {
    read_with(false, true, &|_, _| true)
}

/// `read_full`, but the rules only of the chains `wanted` picks (every table and chain is still
/// listed): the native chains beside 50,000 iptables rules are read in a blink.
pub fn read_full_of(wanted: Wanted) -> Result<NftRuleset, NftError> {
    read_with(true, true, wanted)
}

/// `full`: every rule's expressions decoded; `sets`: the sets and their elements read too.
fn read_with(full: bool, sets: bool, wanted: Wanted) -> Result<NftRuleset, NftError> {
    let mut conn = Conn::open()?;
    for _ in 0..ATTEMPTS {
        if let Some(rs) = read_once(&mut conn, full, sets, wanted)? {
            return Ok(rs);
        }
    }
    Err(NftError::Moving(ATTEMPTS))
}

/// One attempt; `None` when the generation moved meanwhile.
fn read_once(
    conn: &mut Conn,
    full: bool,
    with_sets: bool,
    wanted: Wanted,
) -> Result<Option<NftRuleset>, NftError> {
    let generation = conn.generation()?;
    let lo = u16::try_from(generation & 0xffff).unwrap_or(0);
    let same = |d: &Dumped| !d.interrupted && d.gens.iter().all(|g| *g == lo);
    let tables = conn.dump(NFT_MSG_GETTABLE, 0, &[])?;
    let chains = conn.dump(NFT_MSG_GETCHAIN, 0, &[])?;
    if !same(&tables) || !same(&chains) {
        return Ok(None);
    }
    let mut rs = NftRuleset {
        generation,
        tables: tables
            .msgs
            .iter()
            .map(|(f, a)| decode_table(*f, a))
            .collect(),
        chains: chains
            .msgs
            .iter()
            .map(|(f, a)| decode_chain(*f, a))
            .collect(),
        rules: Vec::new(),
        sets: Vec::new(),
    };
    // The rules chain by chain: one filtered dump each.
    for c in rs.chains.iter().filter(|c| wanted(c, &rs.chains)) {
        let mut w = AttrWriter::default();
        w.put(NFTA_RULE_TABLE, &nul_terminated(&c.table));
        w.put(NFTA_RULE_CHAIN, &nul_terminated(&c.name));
        let rules = conn.dump(NFT_MSG_GETRULE, c.family, &w.buf)?;
        if !same(&rules) {
            return Ok(None);
        }
        rs.rules
            .extend(rules.msgs.iter().map(|(f, a)| decode_rule(*f, a, full)));
    }
    if with_sets {
        let sets = conn.dump(NFT_MSG_GETSET, 0, &[])?;
        if !same(&sets) {
            return Ok(None);
        }
        for (f, a) in &sets.msgs {
            let mut set = nft_expr::decode_set(*f, a);
            let mut w = AttrWriter::default();
            w.put(NFTA_SET_ELEM_LIST_TABLE, &nul_terminated(&set.table));
            w.put(NFTA_SET_ELEM_LIST_SET, &nul_terminated(&set.name));
            let elems = conn.dump(NFT_MSG_GETSETELEM, *f, &w.buf)?;
            if !same(&elems) {
                return Ok(None);
            }
            for (_, a) in &elems.msgs {
                set.elems.extend(nft_expr::decode_elems(a).2);
            }
            rs.sets.push(set);
        }
    }
    if conn.generation()? != generation {
        return Ok(None);
    }
    Ok(Some(rs))
}

const NFT_MSG_NEWGEN: u16 = 15;
const NFTA_GEN_PROC_PID: u16 = 2;
const NFTA_GEN_PROC_NAME: u16 = 3;
const NFNLGRP_NFTABLES: u32 = 7;

/// A transaction another program (or nfscope) committed to nf_tables: the generation it made,
/// and the committing process, as the kernel names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenEvent {
    pub generation: u32,
    pub pid: Option<u32>,
    /// The committing process's name (`nft`, `iptables-nft-re`, `firewalld`...).
    pub process: Option<String>,
}

/// What a look at the change events found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    pub events: Vec<GenEvent>,
    /// The kernel dropped events (the socket's buffer was full): something changed, who is
    /// not known.
    pub lost: bool,
}

/// Decode a `NFT_MSG_NEWGEN` event's attributes.
pub fn decode_gen(attrs: &[u8]) -> GenEvent {
    let mut e = GenEvent {
        generation: 0,
        pid: None,
        process: None,
    };
    for (k, p) in Attrs::new(attrs) {
        match k {
            NFTA_GEN_ID => e.generation = be32(p),
            NFTA_GEN_PROC_PID => e.pid = Some(be32(p)),
            NFTA_GEN_PROC_NAME => e.process = Some(string(p)),
            _ => {}
        }
    }
    e
}

/// A subscription to nf_tables' change events (the NFNLGRP_NFTABLES group, as `nft monitor`
/// listens): every committed transaction sends a new generation with the committing process.
/// Reading it never blocks.
pub struct Monitor {
    sock: Socket,
    buf: Vec<u8>,
}

impl Monitor {
    /// Subscribe, in this thread's network namespace.
    pub fn open() -> Result<Monitor, NftError> {
        let mut sock =
            Socket::new(NETLINK_NETFILTER).map_err(|e| NftError::io("opening the socket", &e))?;
        sock.bind_auto()
            .map_err(|e| NftError::io("binding the socket", &e))?;
        sock.add_membership(NFNLGRP_NFTABLES)
            .map_err(|e| NftError::io("subscribing to nf_tables' changes", &e))?;
        sock.set_non_blocking(true)
            .map_err(|e| NftError::io("setting the socket non-blocking", &e))?;
        Ok(Monitor {
            sock,
            buf: vec![0; 1 << 16],
        })
    }

    /// Every change event received since the last call.
    pub fn changes(&mut self) -> Changes {
        let mut out = Changes::default();
        loop {
            let n = match recv(&self.sock, &mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    out.lost = true;
                    continue;
                }
                Err(_) => break,
            };
            for m in messages(&self.buf[..n]) {
                if m.kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN
                    && let Some((_, _, attrs)) = split(m.payload)
                {
                    out.events.push(decode_gen(attrs));
                }
            }
        }
        out
    }
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_with_a_counter_decodes() {
        let mut w = AttrWriter::default();
        w.put(NFTA_RULE_TABLE, b"fw\0");
        w.put(NFTA_RULE_CHAIN, b"input\0");
        w.put(NFTA_RULE_HANDLE, &7u64.to_be_bytes());
        let list = w.begin(NFTA_RULE_EXPRESSIONS);
        for (name, counter) in [("payload", None), ("counter", Some((3u64, 180u64)))] {
            let elem = w.begin(NFTA_LIST_ELEM);
            w.put(NFTA_EXPR_NAME, &nul_terminated(name));
            if let Some((p, b)) = counter {
                let data = w.begin(NFTA_EXPR_DATA);
                w.put(NFTA_COUNTER_BYTES, &b.to_be_bytes());
                w.put(NFTA_COUNTER_PACKETS, &p.to_be_bytes());
                w.end(data);
            }
            w.end(elem);
        }
        w.end(list);
        let r = decode_rule(1, &w.buf, false);
        assert_eq!(
            (r.table.as_str(), r.chain.as_str(), r.handle),
            ("fw", "input", 7)
        );
        assert_eq!(r.exprs, ["payload", "counter"]);
        assert_eq!(r.counter, Some((3, 180)));
        // Garbage decodes to something, never a panic.
        let _ = decode_rule(1, &[0xff; 7], true);
        let _ = decode_chain(1, &[4, 0, 4, 0, 1]);
        assert_eq!(family_name(1), "inet");
        assert_eq!(hook_name(2, 1), "input");
    }

    #[test]
    fn a_generation_event_names_its_process() {
        let mut w = AttrWriter::default();
        w.put(NFTA_GEN_ID, &42u32.to_be_bytes());
        w.put(NFTA_GEN_PROC_PID, &7u32.to_be_bytes());
        w.put(NFTA_GEN_PROC_NAME, b"firewalld\0");
        assert_eq!(
            decode_gen(&w.buf),
            GenEvent {
                generation: 42,
                pid: Some(7),
                process: Some("firewalld".into())
            }
        );
        let _ = decode_gen(&[0xff; 5]);
    }

    #[test]
    fn a_negative_priority_is_read_as_such() {
        let mut w = AttrWriter::default();
        w.put(NFTA_CHAIN_NAME, b"pre\0");
        let hook = w.begin(NFTA_CHAIN_HOOK);
        w.put(NFTA_HOOK_HOOKNUM, &0u32.to_be_bytes());
        w.put(NFTA_HOOK_PRIORITY, &(-100i32).to_be_bytes());
        w.end(hook);
        let c = decode_chain(2, &w.buf);
        assert_eq!(
            c.hook,
            Some(Hook {
                num: 0,
                priority: -100
            })
        );
    }
}
