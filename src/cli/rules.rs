//! `nfscope rules`: print the rule sets as a listing, as save text, or as JSON (docs/json.md).

use super::SourceArgs;
use crate::ruleset::save::{self, CounterMode, SaveOptions};
use crate::ruleset::summary;
use crate::ruleset::{Chain, Family, Ruleset, Table, table_rank};
use crate::source::{self, FamilyData, RulesetSnapshot};
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Like `iptables -L -n -v --line-numbers`.
    Text,
    /// iptables-restore input (one family: add -4 or -6 when both are loaded).
    Save,
    /// Machine-readable, see docs/json.md.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Only this table (raw, mangle, nat, filter, security).
    #[arg(long, short = 't')]
    pub table: Option<String>,
    /// Only this chain.
    #[arg(long, short = 'c')]
    pub chain: Option<String>,
    /// Only IPv4.
    #[arg(short = '4', conflicts_with = "v6")]
    pub v4: bool,
    /// Only IPv6.
    #[arg(short = '6')]
    pub v6: bool,
    /// Exact counters instead of K/M/G units (text format).
    #[arg(long, short = 'x')]
    pub exact: bool,
}

impl RulesArgs {
    fn families(&self) -> Vec<Family> {
        match (self.v4, self.v6) {
            (true, _) => vec![Family::V4],
            (_, true) => vec![Family::V6],
            _ => Family::ALL.to_vec(),
        }
    }

    /// The rule set cut down to the asked-for table and chain.
    fn select(&self, rs: &Ruleset) -> Ruleset {
        let mut out = rs.clone();
        if let Some(t) = &self.table {
            out.tables.retain(|x| &x.name == t);
        }
        if let Some(c) = &self.chain {
            for t in &mut out.tables {
                t.chains.retain(|x| &x.name == c);
            }
            out.tables.retain(|t| !t.chains.is_empty());
        }
        if self.table.is_some() || self.chain.is_some() {
            // A table's leading comments include the one closing the table before it
            // (`# Completed on ...`): with that table left out, it goes too.
            let first_kept = out.tables.first().map(|t| t.name.clone());
            let first_all = rs.tables.first().map(|t| t.name.clone());
            if first_kept != first_all
                && let Some(t) = out.tables.first_mut()
            {
                t.leading_comments
                    .retain(|c| !c.trim_start().starts_with("# Completed on"));
            }
        }
        if (self.table.is_some() || self.chain.is_some()) && out.tables.is_empty() {
            // Nothing matched: no stray "# Completed on" line either.
            out.trailing_comments.clear();
        }
        out
    }
}

/// Run the subcommand; returns the exit status (0 fine, 1 a source failed, 2 the table or chain
/// asked for does not exist, or `--format save` was asked for both families at once).
pub fn run(src: &SourceArgs, args: &RulesArgs) -> color_eyre::Result<i32> {
    let cfg = src.config()?;
    // A whole family in the save format from the kernel: the tool's own text, unparsed (the
    // parser is lossless, so the bytes are the same), at the cost of the tool alone.
    if let (Format::Save, None, None, [family], source::SourceConfig::Kernel { backend, .. }) = (
        args.format,
        &args.table,
        &args.chain,
        args.families().as_slice(),
        &cfg,
    ) {
        let (text, warnings) = source::kernel::KernelReader::new(*backend)
            .families(&[*family])
            .save_text(*family);
        for w in &warnings {
            eprintln!(
                "{}",
                crate::format::visible_lines(&format!("nfscope: warning: {w}"))
            );
        }
        return Ok(match text {
            Ok(t) => {
                save_out(&t);
                0
            }
            Err(e) => {
                eprintln!(
                    "{}",
                    crate::format::visible_lines(&format!("nfscope: {}: {e}", family.label()))
                );
                1
            }
        });
    }
    let snap = source::load_once_of(&cfg, &args.families());
    // The native nftables tables beside the iptables ones (read-only): from --nft-file, or as
    // the source read them with the rule sets (the kernel's; the demo's small one).
    let native = match (args.format, &src.nft_file) {
        (Format::Text | Format::Json, Some(path)) => match source::nft_file::load(path) {
            Ok(d) => select_native(
                source::native::native_tables(&d.nft, &d.listing, &Default::default()),
                args,
            ),
            Err(e) => {
                eprintln!("{}", crate::format::visible_lines(&format!("nfscope: {e}")));
                return Ok(1);
            }
        },
        (Format::Text | Format::Json, None) => native_of(&snap, args),
        (Format::Save, _) => Vec::new(),
    };
    let (out, code) = render(&snap, &native, args)?;
    match args.format {
        Format::Save => save_out(&out),
        // JSON escapes control characters itself and keeps the exact string.
        Format::Json => print!("{out}"),
        _ => print!("{}", crate::format::visible_lines(&out)),
    }
    Ok(code)
}

/// Save text to standard output: to a file or a pipe, the very bytes the tool printed
/// (`ruleset::lossless`), since what iptables-restore is given back must be what it wrote; to a
/// terminal, with what must not reach one shown as escapes (`format::visible`), and a line on
/// standard error saying so.
fn save_out(text: &str) {
    use std::io::{IsTerminal, Write};
    let mut out = std::io::stdout().lock();
    if out.is_terminal() {
        let shown = crate::format::visible_lines(text);
        if matches!(shown, std::borrow::Cow::Owned(_)) {
            eprintln!(
                "nfscope: control characters in the rule set are shown escaped (\\e, \\x07, \\u{{202e}}); redirect to a file for the exact bytes"
            );
        }
        let _ = out.write_all(shown.as_bytes());
    } else {
        let _ = out.write_all(&crate::ruleset::lossless::encode(text));
    }
    let _ = out.flush();
}

/// The snapshot's native nftables tables that `args` selects (`-4`: ip and inet, `-6`: ip6 and
/// inet, `-t`, `-c`).
fn native_of(snap: &RulesetSnapshot, args: &RulesArgs) -> Vec<source::native::NativeTable> {
    // When the iptables rule sets could not be read, that is what is said.
    if Family::ALL
        .iter()
        .all(|&f| snap.family(f).ruleset().is_none())
    {
        return Vec::new();
    }
    select_native(snap.native.clone(), args)
}

/// The native tables `args` selects (`-4`: ip and inet, `-6`: ip6 and inet, `-t`, `-c`).
fn select_native(
    mut tables: Vec<source::native::NativeTable>,
    args: &RulesArgs,
) -> Vec<source::native::NativeTable> {
    let fams = args.families();
    tables.retain(|t| match t.family.as_str() {
        "ip" => fams.contains(&Family::V4),
        "ip6" => fams.contains(&Family::V6),
        "inet" => true,
        _ => fams.len() == 2,
    });
    if let Some(name) = &args.table {
        tables.retain(|t| &t.name == name);
    }
    if let Some(name) = &args.chain {
        for t in &mut tables {
            t.chains.retain(|c| &c.name == name);
        }
        tables.retain(|t| !t.chains.is_empty());
    }
    tables
}

/// The text listing of native tables, after the iptables ones.
fn native_listing(tables: &[source::native::NativeTable], exact: bool) -> String {
    let mut out = String::new();
    for t in tables {
        let _ = writeln!(
            out,
            "# native nftables table {} {}{} (read-only: nfscope does not edit native tables)",
            t.family,
            t.name,
            if t.dormant { ", dormant" } else { "" }
        );
        for c in &t.chains {
            match (&c.hook, c.priority) {
                (Some(h), Some(p)) => {
                    let _ = writeln!(
                        out,
                        "Chain {} (type {} hook {h} priority {p}, policy {})",
                        c.name,
                        c.kind.as_deref().unwrap_or("?"),
                        c.policy.as_deref().unwrap_or("?")
                    );
                }
                _ => {
                    let _ = writeln!(out, "Chain {}", c.name);
                }
            }
            let _ = writeln!(out, "{:<4} {:>5} {:>5} rule", "num", "pkts", "bytes");
            for (i, r) in c.rules.iter().enumerate() {
                let n = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| count(v, exact));
                let _ = writeln!(
                    out,
                    "{:<4} {:>5} {:>5} {}",
                    i + 1,
                    n(r.packets),
                    n(r.bytes),
                    r.text
                );
            }
            out.push('\n');
        }
        // Named sets and maps; the anonymous ones are written out in their rules already.
        for set in t.sets.iter().filter(|s| !s.flags.contains(&"anonymous")) {
            let flags = if set.flags.is_empty() {
                String::new()
            } else {
                format!(", {}", set.flags.join(", "))
            };
            let _ = writeln!(
                out,
                "{} {} ({}{flags}): {} element{}",
                match set.kind {
                    "vmap" => "Verdict map",
                    "map" => "Map",
                    _ => "Set",
                },
                set.name,
                set.key,
                set.elements.len(),
                if set.elements.len() == 1 { "" } else { "s" }
            );
            const SHOWN: usize = 20;
            for e in set.elements.iter().take(SHOWN) {
                let _ = writeln!(out, "  {e}");
            }
            if set.elements.len() > SHOWN {
                let _ = writeln!(
                    out,
                    "  ... and {} more (--format json has them all)",
                    set.elements.len() - SHOWN
                );
            }
            out.push('\n');
        }
    }
    out
}

/// Render a snapshot (and the native tables read beside it) as the subcommand prints it; also
/// the exit status. Pure, for tests.
pub fn render(
    snap: &RulesetSnapshot,
    native: &[source::native::NativeTable],
    args: &RulesArgs,
) -> color_eyre::Result<(String, i32)> {
    let mut code = 0;
    let mut sets: Vec<Ruleset> = Vec::new();
    for f in args.families() {
        match snap.family(f) {
            FamilyData::Loaded(rs) => sets.push(args.select(rs)),
            FamilyData::Failed(e) => {
                eprintln!(
                    "{}",
                    crate::format::visible_lines(&format!("nfscope: {}: {e}", f.label()))
                );
                code = 1;
            }
            FamilyData::Absent => {}
        }
    }
    super::warn_all(&snap.warnings);
    if (args.table.is_some() || args.chain.is_some())
        && sets.iter().all(|s| s.tables.is_empty())
        && native.is_empty()
        && code == 0
    {
        let what = match (&args.table, &args.chain) {
            (Some(t), Some(c)) => format!("chain {c} in table {t}"),
            (Some(t), None) => format!("table {t}"),
            (None, Some(c)) => format!("chain {c}"),
            (None, None) => unreachable!("checked above"),
        };
        eprintln!(
            "{}",
            crate::format::visible_lines(&format!("nfscope: no {what} in the rule set"))
        );
        code = 2;
    }
    let out = match args.format {
        Format::Save => {
            if sets.len() > 1 {
                // A usage error, told in a sentence (not an error report with a backtrace), with
                // clap's status for usage errors.
                eprintln!(
                    "{}",
                    crate::format::visible_lines(
                        "nfscope: --format save writes one family at a time: add -4 (for iptables-restore) or -6 (for ip6tables-restore)"
                    )
                );
                return Ok((String::new(), 2));
            }
            sets.iter()
                .map(|rs| {
                    save::write(
                        rs,
                        SaveOptions {
                            counters: CounterMode::With,
                            comments: true,
                        },
                    )
                })
                .collect()
        }
        Format::Text => sets
            .iter()
            .map(|rs| listing(rs, args.exact))
            .chain(std::iter::once(native_listing(native, args.exact)))
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Json => {
            let doc = JsonDoc {
                source: snap.origin.describe(),
                families: sets.iter().map(json_family).collect(),
                native,
            };
            let mut s = serde_json::to_string_pretty(&doc)?;
            s.push('\n');
            s
        }
    };
    Ok((out, code))
}

fn ordered(rs: &Ruleset) -> Vec<&Table> {
    let mut t: Vec<&Table> = rs.tables.iter().collect();
    t.sort_by_key(|t| table_rank(&t.name));
    t
}

fn count(n: u64, exact: bool) -> String {
    if exact {
        n.to_string()
    } else {
        crate::format::human(n)
    }
}

/// The `iptables -L -n -v --line-numbers` listing of one family.
pub fn listing(rs: &Ruleset, exact: bool) -> String {
    let mut out = String::new();
    for table in ordered(rs) {
        let _ = writeln!(out, "# {} table {}", rs.family.label(), table.name);
        for chain in &table.chains {
            chain_listing(&mut out, rs.family, table, chain, exact);
        }
    }
    out
}

fn chain_listing(out: &mut String, family: Family, table: &Table, chain: &Chain, exact: bool) {
    match &chain.policy {
        Some(p) => {
            let _ = writeln!(
                out,
                "Chain {} (policy {} {} packets, {} bytes)",
                chain.name,
                p,
                count(chain.counters.packets, exact),
                count(chain.counters.bytes, exact)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "Chain {} ({} references)",
                chain.name,
                table.references(&chain.name)
            );
        }
    }
    // Columns as wide as what they hold (at least iptables' own widths), so a long protocol
    // name (ipv6-icmp) or address does not push the rest of its row out of line.
    let rows: Vec<(usize, &crate::ruleset::Rule, summary::Columns)> = chain
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| (i + 1, r, summary::columns(r, family)))
        .collect();
    let w = |min: usize, title: &str, f: &dyn Fn(&summary::Columns) -> &str| {
        rows.iter()
            .map(|(_, _, c)| crate::format::width(f(c)))
            .chain([min, title.len()])
            .max()
            .unwrap_or(min)
    };
    let widths = [
        w(10, "target", &|c| &c.target),
        w(4, "prot", &|c| &c.prot),
        w(3, "opt", &|c| &c.opt),
        w(6, "in", &|c| &c.iface_in),
        w(6, "out", &|c| &c.iface_out),
        w(18, "source", &|c| &c.source),
        w(18, "destination", &|c| &c.destination),
    ];
    let pad = |s: &str, n: usize| {
        let mut out = s.to_string();
        out.push_str(&" ".repeat(n.saturating_sub(crate::format::width(s))));
        out
    };
    let line = |num: &str, pkts: &str, bytes: &str, cols: [&str; 7], rest: &str| {
        let mut l = format!("{num:<4} {pkts:>5} {bytes:>5}");
        for (c, n) in cols.iter().zip(widths) {
            l.push(' ');
            l.push_str(&pad(c, n));
        }
        l.push(' ');
        l.push_str(rest);
        l.trim_end().to_string()
    };
    let _ = writeln!(
        out,
        "{}",
        line(
            "num",
            "pkts",
            "bytes",
            [
                "target",
                "prot",
                "opt",
                "in",
                "out",
                "source",
                "destination"
            ],
            ""
        )
    );
    for (n, r, c) in &rows {
        let l = line(
            &n.to_string(),
            &count(r.packets(), exact),
            &count(r.bytes(), exact),
            [
                &c.target,
                &c.prot,
                &c.opt,
                &c.iface_in,
                &c.iface_out,
                &c.source,
                &c.destination,
            ],
            &c.rest,
        );
        let _ = writeln!(out, "{l}");
    }
    out.push('\n');
}

#[derive(Serialize)]
struct JsonDoc<'a> {
    source: String,
    families: Vec<JsonFamily<'a>>,
    /// Native nftables tables (the kernel's only; left out when there are none).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    native: &'a [source::native::NativeTable],
}

#[derive(Serialize)]
struct JsonFamily<'a> {
    family: Family,
    tables: Vec<JsonTable<'a>>,
}

#[derive(Serialize)]
struct JsonTable<'a> {
    name: &'a str,
    chains: Vec<JsonChain<'a>>,
}

#[derive(Serialize)]
struct JsonChain<'a> {
    name: &'a str,
    policy: Option<&'a str>,
    packets: u64,
    bytes: u64,
    references: usize,
    rules: Vec<JsonRule<'a>>,
}

#[derive(Serialize)]
struct JsonRule<'a> {
    num: usize,
    packets: u64,
    bytes: u64,
    /// The rule's arguments exactly as iptables-save printed them.
    text: &'a str,
    /// The save line, as iptables-restore reads it.
    line: String,
    #[serde(flatten)]
    spec: &'a crate::ruleset::RuleSpec,
}

fn json_family(rs: &Ruleset) -> JsonFamily<'_> {
    JsonFamily {
        family: rs.family,
        tables: ordered(rs)
            .into_iter()
            .map(|t| JsonTable {
                name: &t.name,
                chains: t
                    .chains
                    .iter()
                    .map(|c| JsonChain {
                        name: &c.name,
                        policy: c.policy.as_deref(),
                        packets: c.counters.packets,
                        bytes: c.counters.bytes,
                        references: t.references(&c.name),
                        rules: c
                            .rules
                            .iter()
                            .enumerate()
                            .map(|(i, r)| JsonRule {
                                num: i + 1,
                                packets: r.packets(),
                                bytes: r.bytes(),
                                text: &r.text,
                                line: save::rule_line(&c.name, r, CounterMode::Without),
                                spec: &r.spec,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}
