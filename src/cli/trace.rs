//! `nfscope trace`: what the rule set does to one packet, and which rule decides. Prints every
//! step of every possible path and the verdict last (docs/trace.md), or one JSON document.

use super::SourceArgs;
use crate::ruleset::{Chain, Ruleset};
use crate::source::{self, FamilyData, SourceConfig, local_addrs};
use crate::trace::fields::{self, Field, PacketFields};
use crate::trace::nft::Native;
use crate::trace::packet::{Binding, proto_name, tcp_flags_text};
use crate::trace::{
    Assumption, CtState, Fork, Headers, LocalAddr, Origin, Packet, Path, Step, StepKind, TableId,
    Trace, TraceOptions, Tracer, Tri, Unknown, Verdict,
};
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Every step, then the verdict on the last line.
    Text,
    /// One JSON document, see docs/trace.md.
    Json,
}

/// Trace one packet through the rule set: every rule it meets, and the verdict.
#[derive(Debug, Clone, Args)]
pub struct TraceArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Protocol: tcp, udp, icmp, ipv6-icmp, sctp ... or a number.
    #[arg(short = 'p', long = "proto", value_name = "PROTO", value_parser = proto_arg, required_unless_present = "live")]
    pub proto: Option<u8>,
    /// Source address (IPv4 or IPv6; the family follows from it).
    #[arg(short = 's', long = "src", value_name = "SRC", value_parser = addr_arg, required_unless_present = "live")]
    pub src: Option<IpAddr>,
    /// Destination address.
    #[arg(short = 'd', long = "dst", value_name = "DST", value_parser = addr_arg, required_unless_present = "live")]
    pub dst: Option<IpAddr>,
    /// Source port (tcp, udp, sctp, dccp, udplite). Unknown when not given.
    #[arg(long, value_name = "N", value_parser = port_arg)]
    pub sport: Option<u16>,
    /// Destination port. Unknown when not given.
    #[arg(long, value_name = "N", value_parser = port_arg)]
    pub dport: Option<u16>,
    /// TCP flags, e.g. SYN or ACK,PSH (default: SYN when --state is NEW, else ACK).
    #[arg(long, value_name = "FLAGS", value_parser = flags_arg)]
    pub tcp_flags: Option<u8>,
    /// ICMP or ICMPv6 type: a number, TYPE/CODE or a name (default: echo-request).
    #[arg(long, value_name = "TYPE[/CODE]")]
    pub icmp_type: Option<String>,
    /// The interface the packet arrives on.
    #[arg(long = "in", value_name = "IF", value_parser = iface_arg)]
    pub in_iface: Option<String>,
    /// The interface it leaves by (forwarded or locally sent packets).
    #[arg(long = "out", value_name = "IF", value_parser = iface_arg)]
    pub out_iface: Option<String>,
    /// The packet is sent by a process on this machine (OUTPUT), not received (PREROUTING).
    #[arg(long)]
    pub local: bool,
    /// Conntrack state: NEW (default), ESTABLISHED, RELATED, INVALID or UNTRACKED.
    #[arg(long, value_name = "STATE", value_parser = state_arg, default_value = "NEW")]
    pub state: CtState,
    /// The packet's mark (decimal or 0x hex; default 0).
    #[arg(long, value_name = "N", value_parser = mark_arg)]
    pub mark: Option<u32>,
    /// The IP time to live (IPv4) or hop limit (IPv6), for the ttl and hl matches.
    #[arg(long, value_name = "N", value_parser = ttl_arg)]
    pub ttl: Option<u8>,
    /// The IP packet's length in bytes, for the length match.
    #[arg(long, value_name = "BYTES", value_parser = length_arg)]
    pub length: Option<u32>,
    /// The connection is DNAT'd to ADDR[:PORT] (its conntrack entry's reply source): a packet
    /// of an existing connection (not --state NEW) is rewritten from the binding where nat would
    /// run, before routing, and the nat table is not traversed, as the kernel does.
    #[arg(long, value_name = "ADDR[:PORT]", value_parser = Binding::parse)]
    pub dnat_to: Option<Binding>,
    /// The connection is SNAT'd to ADDR[:PORT] (its conntrack entry's reply destination): the
    /// source is rewritten at POSTROUTING (INPUT for a local one).
    #[arg(long, value_name = "ADDR[:PORT]", value_parser = Binding::parse)]
    pub snat_to: Option<Binding>,
    /// This machine's addresses, ADDR[/LEN][%IF] (default: read from the kernel; for --demo the
    /// demo gateway's; for --file loopback only). Repeat it or list several after it.
    #[arg(long = "local-addr", value_name = "ADDR", num_args = 1.., value_parser = local_addr_arg)]
    pub local_addr: Vec<LocalAddr>,
    /// How many paths to follow at most when unknown matches fork the walk (1 to 4096).
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub max_paths: u16,
    /// Trace real packets instead: adds a table nfscope owns (the kernel removes it when
    /// nfscope exits) that marks the packets -p, -s, -d, --sport and --dport describe (any left
    /// out matches all; -s or -d is needed) for the kernel's trace, and shows each one's path
    /// beside what the tracer predicts for it. nf_tables only (legacy x_tables are not traced).
    #[arg(long)]
    pub live: bool,
    /// With --live: how many packets to show before ending (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000), requires = "live")]
    pub count: u16,
    /// With --live: how many seconds to wait for them at most (1 to 86400).
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=86400), requires = "live")]
    pub wait: u32,
}

fn proto_arg(s: &str) -> Result<u8, String> {
    fields::proto(s)
}

fn addr_arg(s: &str) -> Result<IpAddr, String> {
    fields::addr(s)
}

fn port_arg(s: &str) -> Result<u16, String> {
    fields::port(s)
}

fn flags_arg(s: &str) -> Result<u8, String> {
    fields::tcp_flags(s)
}

fn iface_arg(s: &str) -> Result<String, String> {
    fields::iface(s)
}

fn state_arg(s: &str) -> Result<CtState, String> {
    fields::state(s)
}

fn mark_arg(s: &str) -> Result<u32, String> {
    fields::mark(s)
}

fn ttl_arg(s: &str) -> Result<u8, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a TTL: use a number from 0 to 255"))
}

fn length_arg(s: &str) -> Result<u32, String> {
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|&n| n <= 65535)
        .ok_or_else(|| format!("{s:?} is not a packet length: use a number from 0 to 65535"))
}

pub(super) fn local_addr_arg(s: &str) -> Result<LocalAddr, String> {
    LocalAddr::parse(s).map_err(|e| format!("{e} (write ADDR, ADDR/LEN or ADDR/LEN%IF)"))
}

impl TraceArgs {
    /// The packet the arguments describe, or a sentence saying what does not fit together.
    pub fn packet(&self) -> Result<Packet, String> {
        let (Some(proto), Some(src), Some(dst)) = (self.proto, self.src, self.dst) else {
            return Err("a packet needs -p, -s and -d".into());
        };
        PacketFields {
            proto,
            src,
            dst,
            sport: self.sport,
            dport: self.dport,
            tcp_flags: self.tcp_flags,
            icmp_type: self.icmp_type.clone(),
            in_iface: self.in_iface.clone(),
            out_iface: self.out_iface.clone(),
            local: self.local,
            state: self.state,
            mark: self.mark,
            ttl: self.ttl,
            length: self.length,
        }
        .packet(flag_name)
        .map_err(|(_, e)| e)
        .and_then(|mut p| {
            for (b, flag) in [(self.dnat_to, "--dnat-to"), (self.snat_to, "--snat-to")] {
                if let Some(b) = b {
                    if crate::trace::packet::family_of(b.addr) != p.family() {
                        return Err(format!(
                            "{flag} {b} is not of the packet's family ({})",
                            p.family().label()
                        ));
                    }
                    if b.port.is_some() && !crate::trace::packet::has_ports(p.proto) {
                        return Err(format!("{flag} {b}: a port applies to tcp, udp, sctp, dccp and udplite"));
                    }
                }
            }
            if (self.dnat_to.is_some() || self.snat_to.is_some()) && p.state == CtState::New {
                return Err("--dnat-to and --snat-to describe an existing connection's binding: give --state ESTABLISHED (a NEW packet goes through the nat table instead)".into());
            }
            p.dnat = self.dnat_to;
            p.snat = self.snat_to;
            Ok(p)
        })
    }
}

/// How the command line names a field.
fn flag_name(f: Field) -> &'static str {
    match f {
        Field::Proto => "-p",
        Field::Src => "-s",
        Field::Dst => "-d",
        Field::Sport => "--sport",
        Field::Dport => "--dport",
        Field::TcpFlags => "--tcp-flags",
        Field::Icmp => "--icmp-type",
        Field::InIface => "--in",
        Field::OutIface => "--out",
        Field::Local => "--local",
        Field::State => "--state",
        Field::Mark => "--mark",
    }
}

/// This machine's addresses for the trace, and where they came from (for the output).
pub(super) fn local_addresses(args: &TraceArgs, cfg: &SourceConfig) -> (Vec<LocalAddr>, String) {
    if !args.local_addr.is_empty() {
        return (args.local_addr.clone(), "given with --local-addr".into());
    }
    match cfg {
        SourceConfig::Demo { .. } => (
            local_addrs::demo(),
            "the demo gateway's; change them with --local-addr".into(),
        ),
        SourceConfig::File { .. } => (
            Vec::new(),
            "loopback only: give this machine's with --local-addr".into(),
        ),
        SourceConfig::Kernel { .. } => match local_addrs::read() {
            Ok(a) => (a, "read from the kernel".into()),
            Err(e) => {
                eprintln!(
                    "{}",
                    crate::format::visible_lines(&format!(
                        "nfscope: warning: this machine's addresses could not be read: {e}"
                    ))
                );
                (
                    Vec::new(),
                    "loopback only: they could not be read; give them with --local-addr".into(),
                )
            }
        },
    }
}

/// Run the subcommand; returns the exit status (0 traced, 1 the rule set could not be read or
/// cannot be walked (a loop), 2 the packet or the command line is wrong).
pub fn run(src: &SourceArgs, args: &TraceArgs) -> color_eyre::Result<i32> {
    if args.live {
        return super::trace_live::run(src, args);
    }
    let packet = match args.packet() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}", crate::format::visible_lines(&format!("nfscope: {e}")));
            return Ok(2);
        }
    };
    let cfg = src.config()?;
    let snap = source::load_once(&cfg);
    super::warn_all(&snap.warnings);
    let family = packet.family();
    // With --nft-file alone there is no iptables rule set: an empty one, as the kernel has.
    let empty = crate::ruleset::Ruleset::empty(family);
    let rs = match snap.family(family) {
        FamilyData::Loaded(rs) => rs,
        FamilyData::Absent if src.nft_file.is_some() => &empty,
        FamilyData::Failed(e) => {
            eprintln!(
                "{}",
                crate::format::visible_lines(&format!("nfscope: {}: {e}", family.label()))
            );
            return Ok(1);
        }
        FamilyData::Absent => {
            let flag = match family {
                crate::ruleset::Family::V4 => "--file PATH",
                crate::ruleset::Family::V6 => "--file6 PATH",
            };
            eprintln!(
                "{}",
                crate::format::visible_lines(&format!(
                    "nfscope: the addresses are {} but no {} rule set was loaded: give it with {flag}",
                    family.label(),
                    family.label()
                ))
            );
            return Ok(2);
        }
    };
    let (locals, whence) = local_addresses(args, &cfg);
    let opts = TraceOptions {
        local_addrs: locals,
        max_paths: usize::from(args.max_paths),
        ..TraceOptions::default()
    };
    let native = match &src.nft_file {
        Some(path) => match source::nft_file::load(path) {
            Ok(d) => Native::new(
                &d.nft,
                family,
                &BTreeSet::new(),
                &source::native::rule_texts(&d.listing),
            ),
            Err(e) => {
                eprintln!("{}", crate::format::visible_lines(&format!("nfscope: {e}")));
                return Ok(1);
            }
        },
        None => native_for(&snap, rs),
    };
    let tracer = Tracer::with_native(rs, native);
    let trace = tracer.trace(&packet, &opts);
    let native = tracer.native();
    let out = match args.format {
        // Rule text, comments and chain names are others' words: shown visibly.
        Format::Text => {
            crate::format::visible_lines(&render_text(rs, native, &packet, &opts, &whence, &trace))
                .into_owned()
        }
        Format::Json => render_json(rs, native, &snap.origin.describe(), &packet, &opts, &trace)?,
    };
    print!("{out}");
    let broken = trace.paths.iter().any(|p| p.verdict == Verdict::Error);
    Ok(if broken { 1 } else { 0 })
}

/// The native nftables chains the packet meets besides the iptables rules `rs`: the kernel's
/// (a rule set from a file or the demo has none). A warning, and none, when they cannot be read.
pub(super) fn native_for(snap: &source::RulesetSnapshot, rs: &Ruleset) -> Native {
    let source::Origin::Kernel { backend } = snap.origin else {
        return Native::default();
    };
    match source::native::tracer_native(backend, rs) {
        Ok(n) => n,
        Err(e) => {
            eprintln!(
                "{}",
                crate::format::visible_lines(&format!(
                    "nfscope: warning: native nftables tables could not be read, the trace leaves them out: {e}"
                ))
            );
            Native::default()
        }
    }
}

/// Chains by table and name, to show the rule a step names.
struct RuleIndex<'a> {
    chains: HashMap<(TableId, &'a str), &'a Chain>,
    native: &'a Native,
}

impl<'a> RuleIndex<'a> {
    fn new(rs: &'a Ruleset, native: &'a Native) -> Self {
        let mut chains = HashMap::new();
        for t in &rs.tables {
            if let Some(id) = TableId::from_name(&t.name) {
                for c in &t.chains {
                    chains.insert((id, c.name.as_str()), c);
                }
            }
        }
        RuleIndex { chains, native }
    }

    /// The words of the rule a step looked at.
    fn text(&self, s: &Step) -> Option<&'a str> {
        if let (Some(t), Some(h)) = (&s.nft_table, s.handle) {
            return self.native.rule_text(t, s.chain.as_deref()?, h);
        }
        let chain = self.chains.get(&(s.table?, s.chain.as_deref()?))?;
        Some(chain.rules.get(s.rule_index()?)?.text.as_str())
    }
}

/// `IPv4 tcp 198.51.100.7:40000 → 203.0.113.2:22 SYN, NEW, ...`: the packet's `Display`.
pub fn describe_packet(p: &Packet) -> String {
    p.to_string()
}

fn matched_text(s: &StepKind) -> &'static str {
    match s {
        StepKind::Rule {
            matched: Tri::Yes, ..
        } => "yes",
        StepKind::Rule {
            matched: Tri::No, ..
        } => "no",
        StepKind::Rule {
            assumed: Some(true),
            ..
        } => "unknown → yes",
        StepKind::Rule {
            assumed: Some(false),
            ..
        } => "unknown → no",
        _ => "unknown",
    }
}

/// A long run of rules that did not match is shown by its ends (kube-proxy's KUBE-SERVICES has
/// thousands); `--format json` has them all.
const RUN_SHOWN: usize = 3;
const RUN_FOLDED: usize = 12;

fn is_plain_no(s: &Step) -> bool {
    matches!(
        s.kind,
        StepKind::Rule {
            matched: Tri::No,
            ..
        }
    )
}

/// The steps `from..` of a path, with hook and chain headings where they change.
fn steps_text(out: &mut String, idx: &RuleIndex, steps: &[Step], from: usize) {
    let mut hook = None;
    let mut place: Option<(Option<TableId>, Option<&str>, Option<&str>)> = None;
    let mut i = from;
    while i < steps.len() {
        let s = &steps[i];
        if let StepKind::Routing { reason, .. } = &s.kind {
            let _ = writeln!(out, "routing: {reason}");
            hook = None;
            place = None;
            i += 1;
            continue;
        }
        if hook != Some(s.hook) {
            let _ = writeln!(out, "{}", s.hook);
            hook = Some(s.hook);
            place = None;
        }
        if let StepKind::Skip { reason } = &s.kind {
            let _ = writeln!(out, "  {reason}");
            i += 1;
            continue;
        }
        let here = (s.table, s.nft_table.as_deref(), s.chain.as_deref());
        if place != Some(here) {
            let table = match (&s.nft_table, s.table) {
                (Some(n), _) => format!("{n} (native nftables)"),
                (None, t) => t.map_or("", TableId::name).to_string(),
            };
            let _ = writeln!(out, "  {table} {}", s.chain.as_deref().unwrap_or(""));
            place = Some(here);
        }
        // A long run of rules that did not match: its first and last few.
        let run = steps[i..]
            .iter()
            .take_while(|x| is_plain_no(x) && x.chain == s.chain && x.hook == s.hook)
            .count();
        if run > RUN_FOLDED {
            for x in &steps[i..i + RUN_SHOWN] {
                rule_line(out, idx, x);
            }
            let (a, b) = (&steps[i + RUN_SHOWN], &steps[i + run - RUN_SHOWN - 1]);
            let _ = writeln!(
                out,
                "     ... rules {}-{} did not match either ({} rules)",
                a.rule.unwrap_or(0),
                b.rule.unwrap_or(0),
                run - 2 * RUN_SHOWN
            );
            for x in &steps[i + run - RUN_SHOWN..i + run] {
                rule_line(out, idx, x);
            }
            i += run;
            continue;
        }
        match &s.kind {
            StepKind::Rule { .. } => rule_line(out, idx, s),
            StepKind::Policy { verdict } => {
                let _ = writeln!(out, "     policy {verdict}");
            }
            StepKind::ChainEnd => {
                let _ = writeln!(
                    out,
                    "     end of {}: back to the rule after the jump",
                    s.chain.as_deref().unwrap_or("?")
                );
            }
            StepKind::Routing { .. } | StepKind::Skip { .. } => {}
        }
        i += 1;
    }
}

fn rule_line(out: &mut String, idx: &RuleIndex, s: &Step) {
    let StepKind::Rule {
        unknown, effect, ..
    } = &s.kind
    else {
        return;
    };
    let _ = writeln!(
        out,
        "  {:>4}  {:<13}  {}",
        s.rule.unwrap_or(0),
        matched_text(&s.kind),
        idx.text(s).unwrap_or("?")
    );
    if !unknown.is_empty() {
        let _ = writeln!(
            out,
            "  {:>4}  {:<13}  undecided: {}",
            "",
            "",
            unknown.join("; ")
        );
    }
    if let Some(e) = effect {
        let _ = writeln!(out, "  {:>4}  {:<13}  → {e}", "", "");
    }
}

fn assumption_text(p: &Path, a: &Assumption) -> String {
    let place = p
        .steps
        .get(a.step)
        .filter(|s| s.rule.is_some())
        .map(Step::place);
    match place {
        Some(place) => format!(
            "{place} {} ({})",
            if a.matched {
                "matches"
            } else {
                "does not match"
            },
            a.condition
        ),
        None => format!(
            "{} {}",
            a.condition,
            if a.matched { "(yes)" } else { "(no)" }
        ),
    }
}

fn headers_text(h: &Headers) -> String {
    let end = |a: &str, p: &Option<String>| match p {
        Some(p) if a.contains(':') && !a.starts_with('(') => format!("[{a}]:{p}"),
        Some(p) => format!("{a}:{p}"),
        None => a.to_string(),
    };
    format!(
        "{} → {}, mark {}, state {}",
        end(&h.src, &h.sport),
        end(&h.dst, &h.dport),
        h.mark,
        h.state
    )
}

/// The text format: the packet, every path's steps, each path's end, the verdict last.
pub fn render_text(
    rs: &Ruleset,
    native: &Native,
    packet: &Packet,
    opts: &TraceOptions,
    whence: &str,
    trace: &Trace,
) -> String {
    let idx = RuleIndex::new(rs, native);
    let mut out = String::new();
    let _ = writeln!(out, "packet: {}", describe_packet(packet));
    let family = packet.family();
    let locals: Vec<String> = opts
        .local_addrs
        .iter()
        .filter(|l| crate::trace::packet::family_of(l.addr) == family)
        .map(LocalAddr::to_string)
        .collect();
    let list = if locals.is_empty() {
        "none besides loopback".to_string()
    } else {
        locals.join(", ")
    };
    let _ = writeln!(out, "local addresses: {list} ({whence})");
    let n = trace.paths.len();
    for p in &trace.paths {
        out.push('\n');
        if n > 1 {
            let _ = write!(out, "path {} of {n}", p.id + 1);
            match p.fork {
                Some(Fork { parent, step }) => {
                    let at = match p.steps.get(step) {
                        Some(s) if s.rule.is_some() => s.place(),
                        _ => "the routing decision".into(),
                    };
                    let _ = writeln!(out, ": as path {} until {at}, then", parent + 1);
                }
                None => out.push_str(":\n"),
            }
            for a in &p.assumptions {
                let _ = writeln!(out, "  assuming {}", assumption_text(p, a));
            }
        }
        let from = p.fork.map_or(0, |f| f.step);
        steps_text(&mut out, &idx, &p.steps, from);
        let by = match p.decider() {
            Some(s) if s.rule.is_some() => {
                format!(", decided by {}: {}", s.place(), idx.text(s).unwrap_or("?"))
            }
            Some(s) => format!(", decided by {}", s.place()),
            None => String::new(),
        };
        let _ = writeln!(out, "= {}{by}", p.verdict);
        let _ = writeln!(out, "  {}; {}", p.note, headers_text(&p.headers));
    }
    out.push('\n');
    let _ = writeln!(out, "verdict: {}", trace.summary());
    out
}

#[derive(Serialize)]
struct JsonDoc<'a> {
    source: String,
    packet: JsonPacket,
    local_addresses: Vec<String>,
    verdict: String,
    verdicts: Vec<Verdict>,
    certain: bool,
    unknown: Vec<Unknown>,
    unexplored: usize,
    max_paths: usize,
    paths: Vec<JsonPath<'a>>,
}

#[derive(Serialize)]
struct JsonPacket {
    family: crate::ruleset::Family,
    origin: Origin,
    in_interface: Option<String>,
    out_interface: Option<String>,
    protocol: String,
    protocol_number: u8,
    src: IpAddr,
    dst: IpAddr,
    sport: Option<u16>,
    dport: Option<u16>,
    tcp_flags: Option<String>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    state: CtState,
    mark: u32,
    ttl: Option<u8>,
    length: Option<u32>,
    /// The connection's NAT bindings (`--dnat-to`, `--snat-to`, or a conntrack entry's).
    #[serde(skip_serializing_if = "Option::is_none")]
    dnat_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snat_to: Option<String>,
}

#[derive(Serialize)]
struct JsonPath<'a> {
    id: usize,
    fork: Option<Fork>,
    verdict: Verdict,
    decided_by: Option<usize>,
    note: &'a str,
    assumptions: &'a [Assumption],
    headers: &'a Headers,
    steps: Vec<JsonStep<'a>>,
}

#[derive(Serialize)]
struct JsonStep<'a> {
    #[serde(flatten)]
    step: &'a Step,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// The JSON format (docs/trace.md).
pub fn render_json(
    rs: &Ruleset,
    native: &Native,
    source: &str,
    p: &Packet,
    opts: &TraceOptions,
    trace: &Trace,
) -> color_eyre::Result<String> {
    let idx = RuleIndex::new(rs, native);
    let family = p.family();
    let doc = JsonDoc {
        source: source.to_string(),
        packet: JsonPacket {
            family,
            origin: p.origin,
            in_interface: p.in_iface.clone(),
            out_interface: p.out_iface.clone(),
            protocol: proto_name(p.proto),
            protocol_number: p.proto,
            src: p.src,
            dst: p.dst,
            sport: p.sport,
            dport: p.dport,
            tcp_flags: (p.proto == 6).then(|| tcp_flags_text(p.effective_tcp_flags())),
            icmp_type: p.icmp.map(|i| i.0),
            icmp_code: p.icmp.map(|i| i.1),
            state: p.state,
            mark: p.mark,
            ttl: p.ttl,
            length: p.length,
            dnat_to: p.dnat.map(|b| b.to_string()),
            snat_to: p.snat.map(|b| b.to_string()),
        },
        local_addresses: opts
            .local_addrs
            .iter()
            .filter(|l| crate::trace::packet::family_of(l.addr) == family)
            .map(LocalAddr::to_string)
            .collect(),
        verdict: trace.summary(),
        verdicts: trace.verdicts(),
        certain: trace.certain().is_some(),
        unknown: trace.unknowns(),
        unexplored: trace.unexplored,
        max_paths: trace.max_paths,
        paths: trace
            .paths
            .iter()
            .map(|path| JsonPath {
                id: path.id,
                fork: path.fork,
                verdict: path.verdict,
                decided_by: path.decided_by,
                note: &path.note,
                assumptions: &path.assumptions,
                headers: &path.headers,
                steps: path
                    .steps
                    .iter()
                    .map(|s| JsonStep {
                        step: s,
                        text: idx.text(s),
                    })
                    .collect(),
            })
            .collect(),
    };
    let mut s = serde_json::to_string_pretty(&doc)?;
    s.push('\n');
    Ok(s)
}
