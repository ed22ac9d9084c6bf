//! `nfscope reach`: which sources can reach which destinations through one hook's chain, for
//! one protocol and port: the address space cut into classes the rule set treats alike, and
//! the edges between them, `certain` or `possible` (docs/analysis.md).

use super::SourceArgs;
use crate::ruleset::{Family, Ruleset};
use crate::source::{self, FamilyData};
use crate::trace::fields;
use crate::trace::packet::proto_name;
use crate::trace::reach::{IfaceMap, Reach, ReachQuery, reach};
use crate::trace::{CtState, Hook};
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The classes with their ranges, then the edges.
    Text,
    /// One JSON document per family, see docs/json.md.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChainArg {
    #[value(name = "INPUT", alias = "input")]
    Input,
    #[value(name = "FORWARD", alias = "forward")]
    Forward,
    #[value(name = "OUTPUT", alias = "output")]
    Output,
}

/// Who can reach what: the service matrix of one hook's chain for a protocol and port.
#[derive(Debug, Clone, Args)]
pub struct ReachArgs {
    /// The filter table's chain whose answer is asked (and the hook it stands at).
    #[arg(long, value_enum, value_name = "CHAIN")]
    pub chain: ChainArg,
    /// Protocol: tcp, udp, icmp, sctp ... or a number.
    #[arg(short = 'p', long = "proto", value_name = "PROTO", value_parser = fields::proto)]
    pub proto: u8,
    /// Destination port (undecidable, so `possible`, where a rule asks and it is not given).
    #[arg(long, value_name = "N", value_parser = fields::port)]
    pub dport: Option<u16>,
    /// Source port (undecidable where a rule asks and it is not given).
    #[arg(long, value_name = "N", value_parser = fields::port)]
    pub sport: Option<u16>,
    /// The packets' conntrack state (TCP: NEW is a SYN, the others an ACK).
    #[arg(long, value_name = "STATE", default_value = "NEW", value_parser = fields::state)]
    pub state: CtState,
    /// Which sources arrive on an interface: NAME=CIDR[,CIDR...], or NAME=!CIDR[,...] for every
    /// address but those. Repeat for each interface. Without it only lo is known
    /// (127.0.0.0/8, ::1) and other interface matches are undecidable.
    #[arg(long = "iface", value_name = "NAME=CIDR,...", value_parser = IfaceMap::parse)]
    pub ifaces: Vec<IfaceMap>,
    /// Walk raw, mangle, filter and security at the hook in their order (their drops count;
    /// an ACCEPT goes on to the next table), not the filter table alone.
    #[arg(long)]
    pub all_tables: bool,
    /// Walk the nat table first (PREROUTING; OUTPUT for the OUTPUT chain): destinations it
    /// DNATs are judged at their new address and port, so a port forward's public address
    /// answers as a client sees it.
    #[arg(long)]
    pub nat: bool,
    /// IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

impl ReachArgs {
    fn query(&self) -> ReachQuery {
        ReachQuery {
            hook: match self.chain {
                ChainArg::Input => Hook::Input,
                ChainArg::Forward => Hook::Forward,
                ChainArg::Output => Hook::Output,
            },
            proto: self.proto,
            dport: self.dport,
            sport: self.sport,
            state: self.state,
            ifaces: self.ifaces.clone(),
            all_tables: self.all_tables,
            nat: self.nat,
        }
    }
}

#[derive(Serialize)]
struct JsonEdge<'a> {
    from: &'a str,
    to: &'a str,
    certain: bool,
}

#[derive(Serialize)]
struct JsonReach<'a> {
    family: &'static str,
    chain: &'static str,
    proto: String,
    dport: Option<u16>,
    sport: Option<u16>,
    state: &'static str,
    walked: &'a [String],
    classes: &'a [crate::trace::reach::Class],
    edges: Vec<JsonEdge<'a>>,
    hinges: &'a [crate::trace::reach::Hinge],
    native: &'a [String],
    notes: &'a [String],
}

pub fn run(src: &SourceArgs, args: &ReachArgs) -> color_eyre::Result<i32> {
    let cfg = src.config()?;
    let snap = source::load_once(&cfg);
    super::warn_all(&snap.warnings);
    let q = args.query();
    let families: Vec<Family> = match (args.ipv4, args.ipv6) {
        (true, _) => vec![Family::V4],
        (_, true) => vec![Family::V6],
        _ => vec![Family::V4, Family::V6],
    };
    let mut code = 0;
    let mut docs = Vec::new();
    let mut text = String::new();
    let mut answered = 0;
    for family in families {
        let rs: &Ruleset = match snap.family(family) {
            FamilyData::Loaded(rs) => rs,
            FamilyData::Failed(e) => {
                eprintln!(
                    "{}",
                    crate::format::visible_lines(&format!("nfscope: {}: {e}", family.label()))
                );
                code = 1;
                continue;
            }
            FamilyData::Absent => continue,
        };
        let native = super::trace::native_for(&snap, rs).hooked(q.hook);
        let r = reach(rs, &q);
        answered += 1;
        match args.format {
            Format::Text => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text += &render_text(&r, &q, &native);
            }
            Format::Json => docs.push(json(&r, &q, &native)?),
        }
    }
    if answered == 0 && code == 0 {
        eprintln!(
            "nfscope: no rule set of the asked family was loaded (with --file, give --file6 for IPv6)"
        );
        return Ok(2);
    }
    match args.format {
        Format::Text if text.is_empty() => {}
        Format::Text => {
            let out = crate::format::visible_lines(&text);
            print!("{out}");
            if !out.ends_with('\n') {
                println!();
            }
        }
        Format::Json => {
            for d in docs {
                println!("{d}");
            }
        }
    }
    Ok(code)
}

fn proto_text(p: u8) -> String {
    proto_name(p)
}

fn question(r: &Reach, q: &ReachQuery) -> String {
    let mut s = format!("{} {}", r.family.label(), r.walked.join(", "));
    if r.walked.is_empty() {
        s = format!(
            "{} (no {} chain: its policy is ACCEPT)",
            r.family.label(),
            q.hook
        );
    }
    let _ = write!(s, ", {}", proto_text(q.proto));
    if let Some(p) = q.sport {
        let _ = write!(s, " sport {p}");
    }
    if let Some(p) = q.dport {
        let _ = write!(s, " dport {p}");
    }
    let _ = write!(s, ", state {}", q.state.name());
    if q.proto == 6 {
        s += if q.state == CtState::New {
            " (a SYN)"
        } else {
            " (an ACK)"
        };
    }
    s
}

/// The rules named in text as what possible answers hinge on; JSON has them all.
const MAX_HINGES: usize = 20;

pub fn render_text(r: &Reach, q: &ReachQuery, native: &[String]) -> String {
    let certain = r.edges.iter().filter(|e| e.certain).count();
    let mut s = format!(
        "Reachability: {}\n{} class{}, {} edge{} ({certain} certain, {} possible)\n",
        question(r, q),
        r.classes.len(),
        if r.classes.len() == 1 { "" } else { "es" },
        r.edges.len(),
        if r.edges.len() == 1 { "" } else { "s" },
        r.edges.len() - certain
    );
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    let w = r.classes.iter().map(|c| c.name.len()).max().unwrap_or(1);
    s += "\nclasses (addresses the rule set treats alike, as sources and as destinations):\n";
    for c in &r.classes {
        let _ = writeln!(s, "  {:<w$}  {}", c.name, c.ranges.join(", "));
    }
    s += "\nedges (source -> destination):\n";
    if r.edges.is_empty() {
        s += "  none: nothing is accepted\n";
    }
    for e in &r.edges {
        let _ = writeln!(
            s,
            "  {:<w$} -> {:<w$}  {}",
            r.classes[e.from].name,
            r.classes[e.to].name,
            if e.certain { "certain" } else { "possible" }
        );
    }
    s += "\nNo edge: certainly not accepted (dropped or rejected on every way through).\n";
    if !r.hinges.is_empty() {
        s += "possible: it depends on a match the packet cannot decide, in these rules:\n";
        for h in r.hinges.iter().take(MAX_HINGES) {
            let _ = writeln!(s, "  {} {} rule {}: {}", h.table, h.chain, h.rule, h.text);
        }
        if r.hinges.len() > MAX_HINGES {
            let _ = writeln!(
                s,
                "  and {} more rules (all of them with --format json)",
                r.hinges.len() - MAX_HINGES
            );
        }
    }
    if !native.is_empty() {
        let _ = writeln!(
            s,
            "warning: native nftables chains also filter at {}: {} (their verdicts are not in this answer; nfscope trace walks them)",
            q.hook,
            native.join(", ")
        );
    }
    s
}

fn json(r: &Reach, q: &ReachQuery, native: &[String]) -> color_eyre::Result<String> {
    let doc = JsonReach {
        family: match r.family {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        },
        chain: q.hook.name(),
        proto: proto_text(q.proto),
        dport: q.dport,
        sport: q.sport,
        state: q.state.name(),
        walked: &r.walked,
        classes: &r.classes,
        edges: r
            .edges
            .iter()
            .map(|e| JsonEdge {
                from: &r.classes[e.from].name,
                to: &r.classes[e.to].name,
                certain: e.certain,
            })
            .collect(),
        hinges: &r.hinges,
        native,
        notes: &r.notes,
    };
    Ok(serde_json::to_string(&doc)?)
}
