//! The columns of `iptables -L -n -v` for one rule: target, prot, opt, in, out, source,
//! destination, and "the rest" (matches and target options in a short readable form).

use super::rule::{OptionArg, RuleSpec, XMatch};
use super::{Family, Rule};

/// One rule in the shape `iptables -L -n -v` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub target: String,
    pub prot: String,
    pub opt: String,
    pub iface_in: String,
    pub iface_out: String,
    pub source: String,
    pub destination: String,
    pub rest: String,
}

fn neg_or(n: Option<&super::Negatable>, default: &str) -> String {
    n.map_or_else(|| default.to_string(), |n| n.display())
}

/// Compute the listing columns of a rule.
pub fn columns(rule: &Rule, family: Family) -> Columns {
    let s = &rule.spec;
    let target = match &s.target {
        Some(t) if t.kind == super::TargetKind::Goto => format!("{} (goto)", t.name),
        Some(t) => t.name.to_string(),
        None => String::new(),
    };
    let opt = match s.fragment {
        Some(f) if f.negated => "!f",
        Some(_) => "-f",
        None => "--",
    };
    // Others wrote these (comments, LOG prefixes, chain and interface names): shown visibly
    // on every face (`format::visible`).
    let v = |s: String| crate::format::visible(&s).into_owned();
    Columns {
        target: v(target),
        prot: v(neg_or(s.protocol.as_ref(), "all")),
        opt: opt.to_string(),
        iface_in: v(neg_or(s.in_interface.as_ref(), "*")),
        iface_out: v(neg_or(s.out_interface.as_ref(), "*")),
        source: v(neg_or(s.source.as_ref(), family.any_addr())),
        destination: v(neg_or(s.destination.as_ref(), family.any_addr())),
        rest: v(rest(s)),
    }
}

fn join_vals(o: &OptionArg) -> String {
    o.values.join(" ")
}

fn bang(o: &OptionArg) -> &'static str {
    if o.negated { "!" } else { "" }
}

/// A `--limit` rate with its unit as iptables prints it: `5/minute` → `5/min`.
fn limit_rate(r: &str) -> String {
    let Some((n, unit)) = r.split_once('/') else {
        return format!("{r}/sec");
    };
    let unit = match unit.chars().next() {
        Some('s') => "sec",
        Some('m') => "min",
        Some('h') => "hour",
        Some('d') => "day",
        _ => unit,
    };
    format!("{n}/{unit}")
}

/// A short readable form of one match, close to what `iptables -L` prints.
fn match_text(m: &XMatch) -> String {
    let mut parts: Vec<String> = Vec::new();
    let name = m.name.as_str();
    match name {
        "tcp" | "udp" | "udplite" | "sctp" | "dccp" => {
            parts.push(name.to_string());
            for o in &m.options {
                let label = match o.name.as_str() {
                    "--dport" | "--destination-port" => "dpt",
                    "--sport" | "--source-port" => "spt",
                    "--syn" => {
                        parts.push(format!("{}flags:FIN,SYN,RST,ACK/SYN", bang(o)));
                        continue;
                    }
                    "--tcp-flags" => {
                        parts.push(format!("{}flags:{}", bang(o), o.values.join("/")));
                        continue;
                    }
                    other => other.trim_start_matches("--"),
                };
                let v = join_vals(o);
                let label = if v.contains(':') {
                    format!("{label}s")
                } else {
                    label.to_string()
                };
                parts.push(format!("{label}:{}{v}", bang(o)));
            }
        }
        "multiport" => {
            parts.push("multiport".into());
            for o in &m.options {
                let label = o.name.trim_start_matches("--");
                let label = match label {
                    "destination-ports" => "dports",
                    "source-ports" => "sports",
                    l => l,
                };
                parts.push(format!("{}{label} {}", bang(o), join_vals(o)));
            }
        }
        "limit" => {
            // As iptables -L: `limit: avg 5/min burst 5` (3/hour and 5 when not given).
            let rate = m
                .option("--limit")
                .and_then(|o| o.values.first())
                .map_or_else(|| "3/hour".to_string(), |r| limit_rate(r));
            let burst = m
                .option("--limit-burst")
                .and_then(|o| o.values.first())
                .map_or("5", |b| b.as_str());
            parts.push(format!("limit: avg {rate} burst {burst}"));
        }
        "comment" => {
            if let Some(c) = m.option("--comment").and_then(|o| o.values.first()) {
                parts.push(format!("/* {c} */"));
            }
        }
        "conntrack" | "state" => {
            for o in &m.options {
                let label = match o.name.as_str() {
                    "--state" => "state",
                    l => l.trim_start_matches("--"),
                };
                parts.push(format!("{}{label} {}", bang(o), join_vals(o)));
            }
        }
        "icmp" | "icmp6" | "icmpv6" => {
            for o in &m.options {
                parts.push(format!(
                    "{}{}type {}",
                    bang(o),
                    name.trim_end_matches("v6"),
                    join_vals(o)
                ));
            }
        }
        _ => {
            parts.push(name.to_string());
            for o in &m.options {
                let v = join_vals(o);
                let label = o.name.trim_start_matches("--");
                if v.is_empty() {
                    parts.push(format!("{}{label}", bang(o)));
                } else {
                    parts.push(format!("{}{label} {v}", bang(o)));
                }
            }
        }
    }
    parts.join(" ")
}

/// Everything but the basic columns: matches, target options and words nfscope kept as is.
pub fn rest(s: &RuleSpec) -> String {
    let mut parts: Vec<String> = s
        .matches
        .iter()
        .map(match_text)
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(t) = &s.target {
        for o in &t.options {
            let v = join_vals(o);
            let label = o.name.trim_start_matches("--");
            let label = match label {
                "to-destination" | "to-source" | "to" => "to:",
                "to-ports" => "ports:",
                l => l,
            };
            if label.ends_with(':') {
                parts.push(format!("{label}{v}"));
            } else if v.is_empty() {
                parts.push(label.to_string());
            } else if label.contains("prefix") {
                parts.push(format!("{label} \"{v}\""));
            } else {
                parts.push(format!("{label} {v}"));
            }
        }
    }
    parts.extend(s.extra.iter().cloned());
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(text: &str) -> Columns {
        columns(&Rule::from_text(text, None).unwrap(), Family::V4)
    }

    #[test]
    fn listing_columns() {
        let c = cols(
            "-s 10.0.0.0/8 -i lan0 -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m comment --comment \"ssh in\" -j ACCEPT",
        );
        assert_eq!(c.target, "ACCEPT");
        assert_eq!(c.prot, "tcp");
        assert_eq!(c.opt, "--");
        assert_eq!(c.iface_in, "lan0");
        assert_eq!(c.iface_out, "*");
        assert_eq!(c.source, "10.0.0.0/8");
        assert_eq!(c.destination, "0.0.0.0/0");
        assert_eq!(c.rest, "tcp dpt:22 ctstate NEW /* ssh in */");
    }

    /// As `iptables -L -n` prints them (seen from iptables 1.8.9 in a namespace; the kernel
    /// test in tests/cli.rs compares with it live).
    #[test]
    fn limit_as_iptables_lists_it() {
        assert_eq!(
            cols("-m limit --limit 5/min -j ACCEPT").rest,
            "limit: avg 5/min burst 5"
        );
        assert_eq!(
            cols("-m limit --limit 10/sec --limit-burst 20 -j ACCEPT").rest,
            "limit: avg 10/sec burst 20"
        );
        assert_eq!(cols("-m limit -j ACCEPT").rest, "limit: avg 3/hour burst 5");
        assert_eq!(
            cols("-m limit --limit 7/day").rest,
            "limit: avg 7/day burst 5"
        );
        assert_eq!(
            cols("-m limit --limit 2/hour").rest,
            "limit: avg 2/hour burst 5"
        );
        assert_eq!(
            cols("-m limit --limit 4/minute").rest,
            "limit: avg 4/min burst 5"
        );
    }

    #[test]
    fn target_options_and_goto() {
        let c = cols("-p tcp -m tcp --dport 2222 -j DNAT --to-destination 10.0.0.10:22");
        assert_eq!(c.rest, "tcp dpt:2222 to:10.0.0.10:22");
        let c = cols("! -p udp -m multiport --dports 1:1024 -g TRAP");
        assert_eq!(c.target, "TRAP (goto)");
        assert_eq!(c.prot, "!udp");
        assert_eq!(c.rest, "multiport dports 1:1024");
        let c = cols("-j LOG --log-prefix \"IN: \" --log-level 4");
        assert_eq!(c.rest, "log-prefix \"IN: \" log-level 4");
        let c = cols("-p tcp --sport 1000:2000 --syn");
        assert_eq!(c.rest, "tcp spts:1000:2000 flags:FIN,SYN,RST,ACK/SYN");
        assert_eq!(c.target, "");
    }
}
