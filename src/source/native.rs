//! Native nftables tables, read-only: every nf_tables table the iptables save tools do not
//! show (firewalld's, Docker's, kube-proxy's nftables mode, an `inet` table from
//! /etc/nftables.conf), which filter the same packets as the iptables rules. Which tables are
//! iptables-nft's is decided as iptables-nft itself decides: the ones its save tool printed
//! (an ip/ip6 table it calls incompatible is native here, and warned about elsewhere).
//!
//! Structure and counters come over netlink (`nft_netlink`); each rule's text is what
//! `nft -a list` prints for its handle (nfscope has no nft-syntax printer of its own).
//! `nfscope rules` lists them; the kernel source reads them with every refresh for the
//! screens (issue 11, points 3 and 4), the texts only when the rule set changed. Read-only
//! everywhere: no staging key and nothing in the commit path touches them.

use super::nft_netlink::{self, NftChain, NftRuleset, family_name, hook_name};
use crate::ruleset::Family;
use crate::trace::{Hook, TableId};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NativeRule {
    pub handle: u64,
    /// As `nft -a list ruleset` prints it, without its `# handle N`.
    pub text: String,
    /// The rule's counter, if it has one.
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NativeChain {
    pub name: String,
    /// Base chains: `filter`, `nat`, `route`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Base chains: the hook, as nft names it (`input`, `prerouting`, `ingress`...).
    pub hook: Option<String>,
    pub priority: Option<i32>,
    /// Base chains: `accept` or `drop`.
    pub policy: Option<String>,
    pub rules: Vec<NativeRule>,
}

/// A set or map of a native table, with its elements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NativeSet {
    pub name: String,
    /// `set`, `map` or `vmap` (a verdict map).
    pub kind: &'static str,
    /// What its keys are (`ipv4_addr`, `inet_service`, `ipv4_addr . inet_service`...).
    pub key: String,
    /// `constant`, `interval`, `timeout`, `dynamic`, `anonymous` (an `{ ... }` in a rule).
    pub flags: Vec<&'static str>,
    /// Each element as nft writes it (`10.0.0.0/8`, `22 : accept`); intervals joined.
    pub elements: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NativeTable {
    /// `ip`, `ip6`, `inet`, `arp`, `bridge`, `netdev`.
    pub family: String,
    pub name: String,
    /// Dormant: its chains are not hooked, it filters nothing.
    pub dormant: bool,
    /// The table's flags: `dormant`, `owner` (held by a program, removed when it exits).
    pub flags: Vec<&'static str>,
    pub chains: Vec<NativeChain>,
    /// Its sets and maps (named and anonymous), when they were read.
    pub sets: Vec<NativeSet>,
}

/// Rule texts by (family, table, chain, handle).
pub type RuleTexts = HashMap<(String, String, String, u64), String>;

/// The text of each rule by (family, table, chain, handle), from `nft -a list ruleset`.
pub fn rule_texts(listing: &str) -> RuleTexts {
    let mut out = HashMap::new();
    let (mut family, mut table, mut chain) = (String::new(), String::new(), String::new());
    for line in listing.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("table ") {
            let mut w = rest.split_whitespace();
            family = w.next().unwrap_or_default().to_string();
            table = w.next().unwrap_or_default().to_string();
            chain.clear();
        } else if let Some(rest) = l.strip_prefix("chain ") {
            chain = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        } else if let Some((text, handle)) = l.rsplit_once(" # handle ")
            && !chain.is_empty()
            && let Ok(h) = handle.trim().parse::<u64>()
        {
            out.insert(
                (family.clone(), table.clone(), chain.clone(), h),
                text.trim().to_string(),
            );
        }
    }
    out
}

/// nft's names of its basic data types (`NFTA_SET_KEY_TYPE`); a concatenation packs them six
/// bits each.
fn type_name(t: u32) -> &'static str {
    match t {
        1 => "verdict",
        5 => "string",
        6 => "ether_addr",
        7 => "ipv4_addr",
        8 => "ipv6_addr",
        9 => "ether_addr",
        12 => "inet_proto",
        13 => "inet_service",
        19 => "mark",
        20 => "ifname",
        41 => "ifname",
        _ => "?",
    }
}

/// One field of an element as nft writes it.
fn field_text(t: u32, b: &[u8]) -> String {
    match (t, b.len()) {
        (7, 4) => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        (8, 16) => {
            let a: [u8; 16] = b.try_into().unwrap_or([0; 16]);
            std::net::Ipv6Addr::from(a).to_string()
        }
        (13, 2) => u16::from_be_bytes([b[0], b[1]]).to_string(),
        (12, 1) => crate::trace::packet::proto_name(b[0]),
        (19, 4) => format!("{:#x}", u32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        (5 | 20 | 41, _) => {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            format!("\"{}\"", String::from_utf8_lossy(&b[..end]))
        }
        _ => {
            let mut s = String::from("0x");
            for x in b {
                s.push_str(&format!("{x:02x}"));
            }
            s
        }
    }
}

/// `lo-hi` as nft writes an interval: a prefix when it is one (`10.0.0.0/8`), else a range.
fn interval_text(t: u32, lo: &[u8], hi: &[u8]) -> String {
    if lo == hi {
        return field_text(t, lo);
    }
    if matches!(t, 7 | 8) {
        let bits = lo.len() * 8;
        let x: Vec<u8> = lo.iter().zip(hi).map(|(a, b)| a ^ b).collect();
        let host = x.iter().map(|b| b.count_ones() as usize).sum::<usize>();
        let tail_ones = x
            .iter()
            .rev()
            .fold((0usize, true), |(n, go), b| {
                if !go {
                    (n, false)
                } else if *b == 0xff {
                    (n + 8, true)
                } else {
                    (n + b.trailing_ones() as usize, false)
                }
            })
            .0;
        let aligned = lo.iter().zip(&x).all(|(a, m)| a & m == 0);
        if host == tail_ones && aligned {
            return format!("{}/{}", field_text(t, lo), bits - host);
        }
    }
    format!("{}-{}", field_text(t, lo), field_text(t, hi))
}

/// Elements of a set as nft writes them.
fn element_texts(s: &super::nft_expr::NftSet) -> Vec<String> {
    use super::nft_expr::{Data, Verdict};
    let types = s.field_types();
    let data_text = |d: &Option<Data>| match d {
        Some(Data::Verdict(v)) => Some(match v {
            Verdict::Accept => "accept".to_string(),
            Verdict::Drop => "drop".into(),
            Verdict::Queue => "queue".into(),
            Verdict::Continue => "continue".into(),
            Verdict::Return => "return".into(),
            Verdict::Jump(c) => format!("jump {c}"),
            Verdict::Goto(c) => format!("goto {c}"),
            Verdict::Break | Verdict::Other(_) => "?".into(),
        }),
        Some(Data::Value(v)) => Some(field_text(s.data_type.unwrap_or(0), v)),
        None => None,
    };
    let with_data = |k: String, d: &Option<Data>| match data_text(d) {
        Some(d) => format!("{k} : {d}"),
        None => k,
    };
    let (elems, catchall) = s.intervals();
    let mut out: Vec<String> = elems
        .iter()
        .map(|(fields, d)| {
            let k: Vec<String> = fields
                .iter()
                .enumerate()
                .map(|(i, (a, b))| interval_text(types.get(i).copied().unwrap_or(0), a, b))
                .collect();
            with_data(k.join(" . "), d)
        })
        .collect();
    if let Some(d) = catchall {
        out.push(with_data("*".into(), &d));
    }
    out
}

fn native_set(s: &super::nft_expr::NftSet) -> NativeSet {
    use super::nft_expr::{SET_ANONYMOUS, SET_EVAL, SET_INTERVAL, SET_MAP, SET_TIMEOUT};
    let key = s
        .field_types()
        .into_iter()
        .map(type_name)
        .collect::<Vec<_>>()
        .join(" . ");
    let mut flags = Vec::new();
    for (bit, name) in [
        (SET_ANONYMOUS, "anonymous"),
        (0x2, "constant"),
        (SET_INTERVAL, "interval"),
        (SET_TIMEOUT, "timeout"),
        (SET_EVAL, "dynamic"),
    ] {
        if s.flags & bit != 0 {
            flags.push(name);
        }
    }
    NativeSet {
        name: s.name.clone(),
        kind: match (s.flags & SET_MAP != 0, s.data_type) {
            (true, Some(0xffff_ff00)) => "vmap",
            (true, _) => "map",
            _ => "set",
        },
        key,
        flags,
        elements: element_texts(s),
    }
}

/// Whether the save tools printed table `name` of nftables family `family`.
fn is_iptables_table(family: u8, name: &str, iptables: &BTreeSet<(Family, String)>) -> bool {
    Family::ALL
        .iter()
        .any(|&f| nft_netlink::nfproto(f) == family && iptables.contains(&(f, name.to_string())))
}

/// Whether chain `c` is native, not iptables': every chain of a table the save tools did not
/// print (`iptables`: the family and name of each table they printed), and in one they did, a
/// base chain that is not one of iptables' built-in chains (its standard name at its hook and
/// priority): the save tool calls such a table's base chains incompatible and leaves them out.
pub fn is_native_chain(c: &NftChain, iptables: &BTreeSet<(Family, String)>) -> bool {
    if !is_iptables_table(c.family, &c.table, iptables) {
        return true;
    }
    let Some(h) = c.hook else {
        return false;
    };
    let hook = match h.num {
        0 => Hook::Prerouting,
        1 => Hook::Input,
        2 => Hook::Forward,
        3 => Hook::Output,
        4 => Hook::Postrouting,
        _ => return true,
    };
    match TableId::from_name(&c.table) {
        Some(t) => !(c.name == hook.name() && h.priority == t.priority(hook)),
        // A table iptables-nft printed under a name it does not know: all its own.
        None => false,
    }
}

/// The native tables of `nft`, with their rules' texts from `listing`: every table but the
/// iptables ones (`iptables`: the family and name of each table the save tools printed), and of
/// those, the base chains iptables cannot show (see `is_native_chain`).
pub fn native_tables(
    nft: &NftRuleset,
    listing: &str,
    iptables: &BTreeSet<(Family, String)>,
) -> Vec<NativeTable> {
    native_tables_with(nft, &rule_texts(listing), iptables)
}

/// `native_tables`, with the rules' texts already read (`rule_texts`): the kernel source keeps
/// them while nf_tables' generation stays, and reads only the counters again.
pub fn native_tables_with(
    nft: &NftRuleset,
    texts: &HashMap<(String, String, String, u64), String>,
    iptables: &BTreeSet<(Family, String)>,
) -> Vec<NativeTable> {
    let mut out = Vec::new();
    for t in &nft.tables {
        let fam = family_name(t.family).to_string();
        let chains: Vec<NativeChain> = nft
            .chains
            .iter()
            .filter(|c| c.family == t.family && c.table == t.name && is_native_chain(c, iptables))
            .map(|c| NativeChain {
                name: c.name.clone(),
                kind: c.kind.clone(),
                hook: c.hook.map(|h| hook_name(c.family, h.num).to_string()),
                priority: c.hook.map(|h| h.priority),
                policy: c
                    .policy
                    .map(|p| if p == 0 { "drop" } else { "accept" }.to_string()),
                rules: nft
                    .rules_of(c)
                    .map(|r| NativeRule {
                        handle: r.handle,
                        text: texts
                            .get(&(fam.clone(), t.name.clone(), c.name.clone(), r.handle))
                            .cloned()
                            .unwrap_or_else(|| format!("({})", r.exprs.join(" "))),
                        packets: r.counter.map(|c| c.0),
                        bytes: r.counter.map(|c| c.1),
                    })
                    .collect(),
            })
            .collect();
        // An iptables table without a native chain is not listed here.
        if is_iptables_table(t.family, &t.name, iptables) && chains.is_empty() {
            continue;
        }
        let mut flags = Vec::new();
        if t.flags & nft_netlink::TABLE_DORMANT != 0 {
            flags.push("dormant");
        }
        if t.flags & 0x2 != 0 {
            flags.push("owner");
        }
        let sets = if is_iptables_table(t.family, &t.name, iptables) {
            Vec::new()
        } else {
            nft.sets
                .iter()
                .filter(|s| s.family == t.family && s.table == t.name)
                .map(native_set)
                .collect()
        };
        out.push(NativeTable {
            family: fam,
            name: t.name.clone(),
            dormant: t.flags & nft_netlink::TABLE_DORMANT != 0,
            flags,
            chains,
            sets,
        });
    }
    out
}

impl NativeTable {
    /// Whether its chains see packets of an iptables family: `ip` IPv4's, `ip6` IPv6's,
    /// `inet` both; `arp`, `bridge` and `netdev` tables neither (they hook elsewhere).
    pub fn sees(&self, family: Family) -> bool {
        matches!(
            (self.family.as_str(), family),
            ("inet", _) | ("ip", Family::V4) | ("ip6", Family::V6)
        )
    }

    pub fn chain(&self, name: &str) -> Option<&NativeChain> {
        self.chains.iter().find(|c| c.name == name)
    }
}

impl NativeChain {
    /// Whether it does something to a packet: a rule, or a drop policy.
    pub fn filters(&self) -> bool {
        !self.rules.is_empty() || self.policy.as_deref() == Some("drop")
    }
}

/// The warning for native base chains that filter packets on the same hooks as the iptables
/// rules of `iptables` (a hook where an iptables built-in chain has rules or a policy other
/// than ACCEPT), in tables that are not dormant: `None` when there are none. Both are shown on
/// the screens; the warning says that both decide.
pub fn warning(native: &[NativeTable], iptables: &[&crate::ruleset::Ruleset]) -> Option<String> {
    let ipt_hooked = |family: Family, hook: &str| {
        iptables.iter().filter(|rs| rs.family == family).any(|rs| {
            rs.tables.iter().flat_map(|t| &t.chains).any(|c| {
                c.is_builtin()
                    && c.name.eq_ignore_ascii_case(hook)
                    && (!c.rules.is_empty() || c.policy.as_deref() != Some("ACCEPT"))
            })
        })
    };
    let mut hooks: Vec<&str> = Vec::new();
    let mut chains: Vec<String> = Vec::new();
    for t in native.iter().filter(|t| !t.dormant) {
        for c in t.chains.iter().filter(|c| c.filters()) {
            let Some(hook) = c.hook.as_deref() else {
                continue;
            };
            if !Family::ALL
                .iter()
                .any(|&f| t.sees(f) && ipt_hooked(f, hook))
            {
                continue;
            }
            if !hooks.contains(&hook) {
                hooks.push(hook);
            }
            let policy = if c.policy.as_deref() == Some("drop") {
                " (policy drop)"
            } else {
                ""
            };
            chains.push(format!("{} {} {}{policy}", t.family, t.name, c.name));
        }
    }
    if chains.is_empty() {
        return None;
    }
    let shown = chains.len().min(4);
    let more = chains.len() - shown;
    Some(format!(
        "native nftables chains also filter on {}: {}{}",
        hooks.join(", "),
        chains[..shown].join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

/// `nft -a list ruleset` in this thread's network namespace (or `netns`'s): each rule's text
/// with its handle.
pub fn listing(netns: Option<&str>) -> Result<String, String> {
    let tool = super::kernel::find_tool("nft")
        .ok_or("native nftables tables are present, but `nft` is not installed to print their rules (apt-get install nftables)")?;
    let mut cmd = match netns {
        Some(n) => {
            let mut c = std::process::Command::new(
                super::kernel::find_tool("ip").unwrap_or_else(|| "ip".into()),
            );
            c.args(["netns", "exec", n]).arg(&tool);
            c
        }
        None => std::process::Command::new(&tool),
    };
    let out = cmd
        .args(["-a", "list", "ruleset"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "nft -a list ruleset failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(crate::ruleset::lossless::decode_owned(out.stdout))
}

/// What the tracer needs of nf_tables in this thread's network namespace: every table, chain
/// and set, the rules (with their expressions) of the native chains (`iptables`: as for
/// `native_tables`; iptables' own rules are not read), and each rule's text. `Ok(None)` when
/// the kernel has no nf_tables.
pub fn for_trace(
    iptables: &BTreeSet<(Family, String)>,
) -> Result<Option<(NftRuleset, RuleTexts)>, String> {
    // A native chain may jump to any chain of its table: all of a table with a native chain.
    let tables: std::cell::OnceCell<BTreeSet<(u8, String)>> = std::cell::OnceCell::new();
    let wanted = |c: &NftChain, all: &[NftChain]| {
        let tables = tables.get_or_init(|| {
            all.iter()
                .filter(|o| is_native_chain(o, iptables))
                .map(|o| (o.family, o.table.clone()))
                .collect()
        });
        tables.contains(&(c.family, c.table.clone()))
    };
    let nft = match nft_netlink::read_full_of(&wanted) {
        Ok(nft) => nft,
        Err(nft_netlink::NftError::NotSupported) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    // Rule texts only make the trace readable: without nft they are left out.
    let texts = if nft.rules.is_empty() {
        HashMap::new()
    } else {
        listing(None).map(|l| rule_texts(&l)).unwrap_or_default()
    };
    Ok(Some((nft, texts)))
}

/// The native chains the tracer walks beside the iptables rule set `rs` read from this
/// thread's network namespace on `backend`: on nf_tables the save tools' tables are iptables'
/// (their built-in chains), on legacy every nf_tables table is native. `Err` in a sentence.
pub fn tracer_native(
    backend: super::Backend,
    rs: &crate::ruleset::Ruleset,
) -> Result<crate::trace::nft::Native, String> {
    let iptables: BTreeSet<(Family, String)> = match backend {
        super::Backend::Nft => rs
            .tables
            .iter()
            .map(|t| (rs.family, t.name.clone()))
            .collect(),
        super::Backend::Legacy => BTreeSet::new(),
    };
    Ok(match for_trace(&iptables)? {
        Some((nft, texts)) => crate::trace::nft::Native::new(&nft, rs.family, &iptables, &texts),
        None => crate::trace::nft::Native::default(),
    })
}

/// Read the native tables of this thread's network namespace (or `netns`'s): netlink for the
/// structure and counters, `nft -a list ruleset` for the rules' texts. `Err` in a sentence when
/// either cannot be had.
pub fn read(
    netns: Option<&str>,
    iptables: &BTreeSet<(Family, String)>,
) -> Result<Vec<NativeTable>, String> {
    let read = match netns {
        Some(n) => super::netns::run_in(n, nft_netlink::read_full).map_err(|e| e.to_string())?,
        None => nft_netlink::read_full(),
    };
    let nft = match read {
        Ok(nft) => nft,
        // No nf_tables in this kernel: no native tables either.
        Err(nft_netlink::NftError::NotSupported) => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    // Only iptables' own tables and chains: nothing to list, and no nft needed.
    let any_native = nft.tables.iter().any(|t| {
        !is_iptables_table(t.family, &t.name, iptables)
            || nft
                .chains
                .iter()
                .any(|c| c.family == t.family && c.table == t.name && is_native_chain(c, iptables))
    });
    if !any_native {
        return Ok(Vec::new());
    }
    let listing = listing(netns)?;
    Ok(native_tables(&nft, &listing, iptables))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_nft_writes_them() {
        let v4 = |s: &str| s.parse::<std::net::Ipv4Addr>().unwrap().octets().to_vec();
        assert_eq!(
            interval_text(7, &v4("10.0.0.0"), &v4("10.255.255.255")),
            "10.0.0.0/8"
        );
        assert_eq!(
            interval_text(7, &v4("10.0.0.1"), &v4("10.0.0.1")),
            "10.0.0.1"
        );
        assert_eq!(
            interval_text(7, &v4("10.0.0.1"), &v4("10.0.0.9")),
            "10.0.0.1-10.0.0.9"
        );
        assert_eq!(
            interval_text(7, &v4("10.0.0.8"), &v4("10.0.0.15")),
            "10.0.0.8/29"
        );
        assert_eq!(interval_text(13, &[0, 80], &[1, 0]), "80-256");
    }

    #[test]
    fn rule_texts_come_by_handle() {
        let listing = "table inet fw { # handle 1\n\tchain input { # handle 1\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 22 counter packets 0 bytes 0 accept # handle 2\n\t}\n}\ntable ip filter { # handle 2\n\tchain INPUT { # handle 1\n\t\ttcp dport 80 accept # handle 2\n\t}\n}\n";
        let t = rule_texts(listing);
        assert_eq!(
            t.get(&("inet".into(), "fw".into(), "input".into(), 2))
                .map(String::as_str),
            Some("tcp dport 22 counter packets 0 bytes 0 accept")
        );
        assert_eq!(t.len(), 2);
    }

    fn table(family: &str, dormant: bool, hook: &str, policy: &str, rules: usize) -> NativeTable {
        NativeTable {
            family: family.into(),
            name: "fw".into(),
            dormant,
            flags: Vec::new(),
            sets: Vec::new(),
            chains: vec![NativeChain {
                name: hook.into(),
                kind: Some("filter".into()),
                hook: Some(hook.into()),
                priority: Some(0),
                policy: Some(policy.into()),
                rules: (0..rules)
                    .map(|h| NativeRule {
                        handle: h as u64,
                        text: "accept".into(),
                        packets: None,
                        bytes: None,
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn the_warning_names_native_chains_on_the_hooks_iptables_filters() {
        let v4 = crate::ruleset::parse(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 80 -j ACCEPT\nCOMMIT\n",
            Family::V4,
        )
        .unwrap();
        let warn = |t: NativeTable| warning(&[t], &[&v4]);
        assert_eq!(
            warn(table("inet", false, "input", "drop", 0)).as_deref(),
            Some("native nftables chains also filter on input: inet fw input (policy drop)")
        );
        // FORWARD's DROP policy is iptables filtering there too.
        assert_eq!(
            warn(table("ip", false, "forward", "accept", 2)).as_deref(),
            Some("native nftables chains also filter on forward: ip fw forward")
        );
        // An empty accepting chain does nothing; iptables does nothing on OUTPUT; ip6 tables
        // see no IPv4 packet; a dormant table filters nothing.
        assert_eq!(warn(table("inet", false, "input", "accept", 0)), None);
        assert_eq!(warn(table("inet", false, "output", "drop", 1)), None);
        assert_eq!(warn(table("ip6", false, "input", "drop", 1)), None);
        assert_eq!(warn(table("inet", true, "input", "drop", 1)), None);
        assert!(table("inet", false, "input", "drop", 0).sees(Family::V6));
        assert!(!table("netdev", false, "ingress", "drop", 0).sees(Family::V4));
    }
}
