//! `nfscope trace --live`: real packets, traced by the kernel (nf_tables' `nftrace`), each shown
//! beside what the tracer predicts for the same packet, and whether the two agree.
//!
//! The comparison is on what decided each base chain a packet met: the rule (by its handle) or
//! the policy, and the verdict (reject and NAT read as the kernel reports them, drop and
//! accept). Only chains the kernel traces are compared: nf_tables ones (native, and iptables-nft
//! tables' built-in chains that exist), at the hooks the kernel's events cover.

use super::SourceArgs;
use super::trace::{local_addresses, native_for};
use crate::ruleset::{Family, Ruleset};
use crate::source::nft_expr::Verdict as NftVerdict;
use crate::source::nft_netlink::{self, NftRuleset, family_name};
use crate::source::nft_trace::{Event, EventKind, Filter, LiveTrace};
use crate::source::{self, FamilyData, SourceConfig};
use crate::trace::packet::family_of;
use crate::trace::{
    CtState, Effect, Origin, Packet, Path, StepKind, TableId, TraceOptions, Tracer, Verdict,
};
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// How long after a packet's last event its trace counts as complete.
const QUIET: Duration = Duration::from_millis(300);

/// What decided one base chain (or the user chain it jumped to): where, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exit {
    table: String,
    chain: String,
    /// The rule's handle; `None` for the policy.
    handle: Option<u64>,
    verdict: &'static str,
}

impl Exit {
    fn text(&self, rule_text: Option<&str>) -> String {
        let what = match (self.handle, rule_text) {
            (Some(h), Some(t)) => format!("rule (handle {h}) {t}"),
            (Some(h), None) => format!("rule (handle {h})"),
            (None, _) => "policy".into(),
        };
        format!("{} {}: {what} → {}", self.table, self.chain, self.verdict)
    }
}

fn say(msg: &str) {
    eprintln!(
        "{}",
        crate::format::visible_lines(&format!("nfscope: {msg}"))
    );
}

pub fn run(src: &SourceArgs, args: &super::trace::TraceArgs) -> color_eyre::Result<i32> {
    let cfg = src.config()?;
    if !matches!(cfg, SourceConfig::Kernel { .. }) {
        say(
            "--live traces the running kernel's packets: it takes no --file, --file6, --nft-file or --demo",
        );
        return Ok(2);
    }
    let Some(family) = args.src.or(args.dst).map(family_of) else {
        say("--live needs -s or -d (or both): the address family, and which packets to trace");
        return Ok(2);
    };
    if let (Some(s), Some(d)) = (args.src, args.dst)
        && family_of(s) != family_of(d)
    {
        say(&format!(
            "the source {s} and the destination {d} are not of the same family"
        ));
        return Ok(2);
    }
    let filter = Filter {
        family,
        proto: args.proto,
        src: args.src,
        dst: args.dst,
        sport: args.sport,
        dport: args.dport,
    };
    // The rules the prediction uses, read before nfscope's own table exists.
    let snap = source::load_once(&cfg);
    let empty = Ruleset::empty(family);
    let rs = match snap.family(family) {
        FamilyData::Loaded(rs) => rs,
        FamilyData::Failed(e) => {
            say(&format!("{}: {e}", family.label()));
            return Ok(1);
        }
        FamilyData::Absent => &empty,
    };
    let legacy = matches!(
        snap.origin,
        source::Origin::Kernel {
            backend: source::Backend::Legacy
        }
    );
    let nft = match nft_netlink::read() {
        Ok(n) => n,
        Err(e) => {
            say(&format!("--live needs nf_tables: {e}"));
            return Ok(1);
        }
    };
    let tracer = Tracer::with_native(rs, native_for(&snap, rs));
    let (locals, _) = local_addresses(args, &cfg);
    let opts = TraceOptions {
        local_addrs: locals,
        max_paths: usize::from(args.max_paths),
        ..TraceOptions::default()
    };
    let mut live = match LiveTrace::start(&filter) {
        Ok(l) => l,
        Err(e) => {
            say(&format!("the trace table could not be added: {e}"));
            return Ok(1);
        }
    };
    say(&format!(
        "added the table inet {} while this runs (owned by nfscope: the kernel removes it when nfscope ends); it marks {} for the kernel's trace{}. Waiting up to {} s for {} packet{}.",
        live.table,
        filter_text(&filter),
        if legacy {
            "; the legacy iptables rules are not traced by the kernel, so only native chains are compared"
        } else {
            ""
        },
        args.wait,
        args.count,
        if args.count == 1 { "" } else { "s" }
    ));
    let deadline = Instant::now() + Duration::from_secs(u64::from(args.wait));
    let mut open: Vec<(u32, Instant, Vec<Event>)> = Vec::new();
    let (mut shown, mut differ) = (0usize, 0usize);
    let want = usize::from(args.count);
    let own = live.table.clone();
    let cx = Cx {
        rs,
        nft: &nft,
        tracer: &tracer,
        opts: &opts,
        legacy,
        own: &own,
    };
    let mut out = String::new();
    while shown < want {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let ev = match live.next(QUIET.min(deadline - now)) {
            Ok(e) => e,
            Err(e) => {
                say(&format!("reading the kernel's trace events: {e}"));
                return Ok(1);
            }
        };
        if let Some(e) = ev {
            match open.iter_mut().find(|(id, ..)| *id == e.id) {
                Some((_, last, evs)) => {
                    *last = Instant::now();
                    evs.push(e);
                }
                None => open.push((e.id, Instant::now(), vec![e])),
            }
        }
        // Packets whose events stopped coming are complete.
        while let Some(i) = open.iter().position(|(_, last, _)| last.elapsed() >= QUIET) {
            let (_, _, evs) = open.remove(i);
            if shown < want
                && let Some(agree) = cx.show(&mut out, shown + 1, &evs)
            {
                shown += 1;
                differ += usize::from(!agree);
                print!("{}", crate::format::visible_lines(&out));
                out.clear();
            }
        }
    }
    for (_, _, evs) in std::mem::take(&mut open) {
        if shown < want
            && let Some(agree) = cx.show(&mut out, shown + 1, &evs)
        {
            shown += 1;
            differ += usize::from(!agree);
        }
    }
    print!("{}", crate::format::visible_lines(&out));
    drop(live);
    if shown == 0 {
        say(&format!(
            "no packet matching {} was seen in {} s",
            filter_text(&filter),
            args.wait
        ));
        return Ok(1);
    }
    if differ > 0 {
        say(&format!(
            "the prediction differed from the kernel for {differ} of {shown} packet{}",
            if shown == 1 { "" } else { "s" }
        ));
        return Ok(1);
    }
    Ok(0)
}

fn filter_text(f: &Filter) -> String {
    let mut parts = vec![match f.proto {
        Some(p) => format!(
            "{} {} packets",
            f.family.label(),
            crate::trace::packet::proto_name(p)
        ),
        None => format!("{} packets", f.family.label()),
    }];
    if let Some(s) = f.src {
        parts.push(format!("from {s}"));
    }
    if let Some(s) = f.sport {
        parts.push(format!("source port {s}"));
    }
    if let Some(d) = f.dst {
        parts.push(format!("to {d}"));
    }
    if let Some(d) = f.dport {
        parts.push(format!("port {d}"));
    }
    parts.join(" ")
}

struct Cx<'a> {
    rs: &'a Ruleset,
    nft: &'a NftRuleset,
    tracer: &'a Tracer,
    opts: &'a TraceOptions,
    legacy: bool,
    own: &'a str,
}

/// An interface's name from its index.
fn if_name(index: u32) -> Option<String> {
    let mut buf = [0u8; 16 + 1];
    // SAFETY: if_indextoname writes at most IF_NAMESIZE (16) bytes and a NUL into `buf`.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The packet a trace event's headers describe.
fn packet_of(e: &Event, family: Family, local: bool) -> Option<Packet> {
    let n = &e.network;
    let (proto, src, dst, hl) = match family {
        Family::V4 if n.len() >= 20 => (
            n[9],
            IpAddr::V4(Ipv4Addr::new(n[12], n[13], n[14], n[15])),
            IpAddr::V4(Ipv4Addr::new(n[16], n[17], n[18], n[19])),
            usize::from(n[0] & 0xf) * 4,
        ),
        Family::V6 if n.len() >= 40 => {
            let a = |o: usize| -> Option<IpAddr> {
                let b: [u8; 16] = n.get(o..o + 16)?.try_into().ok()?;
                Some(IpAddr::V6(Ipv6Addr::from(b)))
            };
            (n[6], a(8)?, a(24)?, 40)
        }
        _ => return None,
    };
    let _ = hl;
    let mut p = Packet::new(proto, src, dst);
    let t = &e.transport;
    if crate::trace::packet::has_ports(proto) && t.len() >= 4 {
        p.sport = Some(u16::from_be_bytes([t[0], t[1]]));
        p.dport = Some(u16::from_be_bytes([t[2], t[3]]));
    }
    if proto == 6 && t.len() >= 14 {
        p.tcp_flags = Some(t[13]);
    }
    if (proto == 1 || proto == 58) && t.len() >= 2 {
        p.icmp = Some((t[0], t[1]));
    }
    // A real packet's state is conntrack's: a TCP SYN starts a connection, anything else of
    // TCP belongs to one; other protocols are taken as new.
    p.state = match (proto, p.tcp_flags) {
        (6, Some(f)) if f & 0x02 != 0 && f & 0x10 == 0 => CtState::New,
        (6, _) => CtState::Established,
        _ => CtState::New,
    };
    p.mark = e.mark.unwrap_or(0);
    if local {
        p.origin = Origin::Local;
        p.out_iface = e.oif.and_then(if_name);
    } else {
        p.in_iface = e.iif.and_then(if_name);
    }
    Some(p)
}

impl Cx<'_> {
    /// The chain's hook, when it is a base chain.
    fn hook_of(&self, family: u8, table: &str, chain: &str) -> Option<u32> {
        self.nft
            .chains
            .iter()
            .find(|c| c.family == family && c.table == table && c.name == chain)?
            .hook
            .map(|h| h.num)
    }

    /// The kernel's exits, and the hooks its events covered.
    fn kernel_exits(&self, evs: &[&Event]) -> (Vec<Exit>, Vec<u32>) {
        let mut exits = Vec::new();
        let mut hooks = Vec::new();
        for e in evs {
            if let Some(h) = self.hook_of(e.family, &e.table, &e.chain)
                && !hooks.contains(&h)
            {
                hooks.push(h);
            }
            let verdict = match (&e.kind, &e.verdict, e.policy) {
                (EventKind::Policy, _, Some(p)) => Some(if p == 0 { "DROP" } else { "ACCEPT" }),
                (EventKind::Rule, Some(NftVerdict::Accept), _) => Some("ACCEPT"),
                (EventKind::Rule, Some(NftVerdict::Drop), _) => Some("DROP"),
                (EventKind::Rule, Some(NftVerdict::Queue), _) => Some("QUEUE"),
                _ => None,
            };
            if let Some(v) = verdict {
                exits.push(Exit {
                    table: format!("{} {}", family_name(e.family), e.table),
                    chain: e.chain.clone(),
                    handle: if e.kind == EventKind::Policy {
                        None
                    } else {
                        e.handle
                    },
                    verdict: v,
                });
            }
        }
        (exits, hooks)
    }

    /// The handle of rule `n` (1-based) of an iptables-nft chain.
    fn ipt_handle(&self, table: &str, chain: &str, n: usize) -> Option<u64> {
        let fam = nft_netlink::nfproto(self.rs.family);
        self.nft
            .rules
            .iter()
            .filter(|r| r.family == fam && r.table == table && r.chain == chain)
            .nth(n.checked_sub(1)?)
            .map(|r| r.handle)
    }

    /// A predicted path's exits at the hooks in `hooks`, on chains the kernel traces.
    fn predicted_exits(&self, p: &Path, hooks: &[u32]) -> Vec<Exit> {
        let fam = nft_netlink::nfproto(self.rs.family);
        let mut out = Vec::new();
        for s in &p.steps {
            let hook = s.hook as u32;
            if !hooks.contains(&hook) {
                continue;
            }
            let verdict = match &s.kind {
                StepKind::Policy { verdict } => *verdict,
                StepKind::Rule {
                    effect: Some(e), ..
                } => match **e {
                    Effect::Verdict { verdict } => verdict,
                    Effect::Nat { .. } => Verdict::Accept,
                    _ => continue,
                },
                _ => continue,
            };
            let v = match verdict {
                Verdict::Accept => "ACCEPT",
                Verdict::Drop | Verdict::Reject => "DROP",
                Verdict::Queue => "QUEUE",
                _ => "UNKNOWN",
            };
            let Some(chain) = s.chain.as_deref() else {
                continue;
            };
            let exit = match (&s.nft_table, s.table) {
                (Some(t), _) => Exit {
                    table: t.to_string(),
                    chain: chain.into(),
                    handle: s.handle,
                    verdict: v,
                },
                (None, Some(t)) if !self.legacy => {
                    // A built-in chain the save tool prints but nf_tables does not have is
                    // not traced: no packet meets it.
                    if self.hook_of(fam, t.name(), chain).is_none()
                        && !self
                            .nft
                            .chains
                            .iter()
                            .any(|c| c.family == fam && c.table == t.name() && c.name == chain)
                    {
                        continue;
                    }
                    Exit {
                        table: format!("{} {}", family_name(fam), t.name()),
                        chain: chain.into(),
                        handle: s.rule.and_then(|n| self.ipt_handle(t.name(), chain, n)),
                        verdict: v,
                    }
                }
                _ => continue,
            };
            out.push(exit);
        }
        out
    }

    fn rule_text(&self, x: &Exit) -> Option<String> {
        let h = x.handle?;
        if let Some(t) = self.tracer.native().rule_text(&x.table, &x.chain, h) {
            return Some(t.to_string());
        }
        // An iptables-nft rule: its position in the chain, then its words.
        let (_, table) = x.table.split_once(' ')?;
        let fam = nft_netlink::nfproto(self.rs.family);
        let pos = self
            .nft
            .rules
            .iter()
            .filter(|r| r.family == fam && r.table == table && r.chain == x.chain)
            .position(|r| r.handle == h)?;
        let _ = TableId::from_name(table)?;
        let rule = self.rs.table(table)?.chain(&x.chain)?.rules.get(pos)?;
        Some(rule.text.to_string())
    }

    /// Show one packet's kernel path and the prediction; `Some(agree)`, or `None` for events
    /// that are only nfscope's own table's or carry no headers.
    fn show(&self, out: &mut String, n: usize, evs: &[Event]) -> Option<bool> {
        let first = evs.iter().find(|e| !e.network.is_empty())?;
        let local = first.table == self.own && first.chain == "out";
        let theirs: Vec<&Event> = evs.iter().filter(|e| e.table != self.own).collect();
        let packet = packet_of(first, self.rs.family, local)?;
        let (kernel, hooks) = self.kernel_exits(&theirs);
        let trace = self.tracer.trace(&packet, self.opts);
        let _ = writeln!(out, "packet {n}: {packet}");
        let from = if local { "OUTPUT" } else { "PREROUTING" };
        let _ = writeln!(out, "  the kernel's path from {from} on (nf_tables trace):");
        if kernel.is_empty() {
            let _ = writeln!(out, "    no nf_tables chain decided anything for it");
        }
        for x in &kernel {
            let _ = writeln!(out, "    {}", x.text(self.rule_text(x).as_deref()));
        }
        let paths: Vec<(&Path, Vec<Exit>)> = trace
            .paths
            .iter()
            .map(|p| (p, self.predicted_exits(p, &hooks)))
            .collect();
        let agreeing = paths.iter().find(|(_, x)| *x == kernel);
        let _ = writeln!(
            out,
            "  nfscope's prediction for the whole path: {}",
            trace.summary()
        );
        let (shown_path, exits) = match agreeing {
            Some((p, x)) => (*p, x),
            None => match paths.first() {
                Some((p, x)) => (*p, x),
                None => return Some(false),
            },
        };
        if trace.paths.len() > 1 {
            let _ = writeln!(
                out,
                "    path {} of {}:",
                shown_path.id + 1,
                trace.paths.len()
            );
        }
        for x in exits {
            let _ = writeln!(out, "    {}", x.text(self.rule_text(x).as_deref()));
        }
        let agree = agreeing.is_some();
        let _ = writeln!(
            out,
            "  = {}\n",
            if agree {
                "the same"
            } else {
                "DIFFERENT: the kernel decided otherwise than nfscope predicted"
            }
        );
        Some(agree)
    }
}
