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

use super::nft_netlink::{self, NftRuleset, family_name, hook_name};
use crate::ruleset::Family;
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NativeTable {
    /// `ip`, `ip6`, `inet`, `arp`, `bridge`, `netdev`.
    pub family: String,
    pub name: String,
    /// Dormant: its chains are not hooked, it filters nothing.
    pub dormant: bool,
    pub chains: Vec<NativeChain>,
}

/// The text of each rule by (family, table, chain, handle), from `nft -a list ruleset`.
pub fn rule_texts(listing: &str) -> HashMap<(String, String, String, u64), String> {
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

/// The native tables of `nft`, with their rules' texts from `listing`: every table but the
/// iptables ones (`iptables`: the family and name of each table the save tools printed).
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
    let is_iptables = |family: u8, name: &str| {
        Family::ALL.iter().any(|&f| {
            nft_netlink::nfproto(f) == family && iptables.contains(&(f, name.to_string()))
        })
    };
    let mut out = Vec::new();
    for t in nft
        .tables
        .iter()
        .filter(|t| !is_iptables(t.family, &t.name))
    {
        let fam = family_name(t.family).to_string();
        let chains = nft
            .chains
            .iter()
            .filter(|c| c.family == t.family && c.table == t.name)
            .map(|c| NativeChain {
                name: c.name.clone(),
                kind: c.kind.clone(),
                hook: c.hook.map(|h| hook_name(c.family, h.num).to_string()),
                priority: c.hook.map(|h| h.priority),
                policy: c
                    .policy
                    .map(|p| if p == 0 { "drop" } else { "accept" }.to_string()),
                rules: nft
                    .rules
                    .iter()
                    .filter(|r| r.family == t.family && r.table == t.name && r.chain == c.name)
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
        out.push(NativeTable {
            family: fam,
            name: t.name.clone(),
            dormant: t.flags & nft_netlink::TABLE_DORMANT != 0,
            chains,
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

/// Read the native tables of this thread's network namespace (or `netns`'s): netlink for the
/// structure and counters, `nft -a list ruleset` for the rules' texts. `Err` in a sentence when
/// either cannot be had.
pub fn read(
    netns: Option<&str>,
    iptables: &BTreeSet<(Family, String)>,
) -> Result<Vec<NativeTable>, String> {
    let read = match netns {
        Some(n) => super::netns::run_in(n, nft_netlink::read).map_err(|e| e.to_string())?,
        None => nft_netlink::read(),
    };
    let nft = match read {
        Ok(nft) => nft,
        // No nf_tables in this kernel: no native tables either.
        Err(nft_netlink::NftError::NotSupported) => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    if nft.tables.iter().all(|t| {
        Family::ALL.iter().any(|&f| {
            nft_netlink::nfproto(f) == t.family && iptables.contains(&(f, t.name.clone()))
        })
    }) {
        return Ok(Vec::new());
    }
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
    let listing = crate::ruleset::lossless::decode_owned(out.stdout);
    Ok(native_tables(&nft, &listing, iptables))
}

#[cfg(test)]
mod tests {
    use super::*;

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
