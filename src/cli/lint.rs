//! `nfscope lint`: shadowed and redundant rules, unused chains, risky habits and IPv4/IPv6
//! differences, as text or JSON (docs/analysis.md has what is detected, docs/json.md the
//! schema). The exit status says whether a finding of at least `--severity` exists, for CI.

use super::SourceArgs;
use crate::ruleset::{Family, Ruleset};
use crate::source::{self, FamilyData};
use crate::trace::lint::{self, Finding, LintOptions, Severity};
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One finding per paragraph, then a summary line.
    Text,
    /// One JSON document, see docs/json.md.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    fn severity(self) -> Severity {
        match self {
            Level::Info => Severity::Info,
            Level::Warning => Severity::Warning,
            Level::Error => Severity::Error,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct LintArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Report findings of this severity and above; the exit status is 1 when there is one.
    #[arg(long, value_enum, default_value_t = Level::Warning, value_name = "LEVEL")]
    pub severity: Level,
    /// Only IPv4.
    #[arg(short = '4', conflicts_with = "v6")]
    pub v4: bool,
    /// Only IPv6.
    #[arg(short = '6')]
    pub v6: bool,
}

impl LintArgs {
    fn families(&self) -> Vec<Family> {
        match (self.v4, self.v6) {
            (true, _) => vec![Family::V4],
            (_, true) => vec![Family::V6],
            _ => Family::ALL.to_vec(),
        }
    }
}

#[derive(Serialize)]
struct Doc<'a> {
    source: String,
    severity: Severity,
    findings: Vec<&'a Finding>,
    /// Findings below `severity`, left out.
    below: usize,
}

/// Run the subcommand; returns the exit status: 0 no finding of at least `--severity`, 1 at
/// least one, 2 a rule set could not be read or the command line is wrong.
pub fn run(src: &SourceArgs, args: &LintArgs) -> color_eyre::Result<i32> {
    let cfg = src.config()?;
    let snap = source::load_once_of(&cfg, &args.families());
    for w in &snap.warnings {
        eprintln!(
            "{}",
            crate::format::visible_lines(&format!("nfscope: warning: {w}"))
        );
    }
    let mut sets: Vec<&Ruleset> = Vec::new();
    let mut failed = false;
    for f in args.families() {
        match snap.family(f) {
            FamilyData::Loaded(rs) => sets.push(rs),
            FamilyData::Failed(e) => {
                eprintln!(
                    "{}",
                    crate::format::visible_lines(&format!("nfscope: {}: {e}", f.label()))
                );
                failed = true;
            }
            FamilyData::Absent => {}
        }
    }
    if failed {
        return Ok(2);
    }
    if sets.is_empty() {
        eprintln!("nfscope: no rule set to lint: give --file or --file6 (or -4/-6 to match them)");
        return Ok(2);
    }
    // This machine's addresses, for the parity check: the kernel's, or the demo gateway's.
    let locals = match snap.origin {
        source::Origin::Kernel { .. } => source::local_addrs::read().unwrap_or_default(),
        source::Origin::Demo => source::local_addrs::demo(),
        _ => Vec::new(),
    };
    let opts = LintOptions {
        counters: matches!(snap.origin, source::Origin::Kernel { .. }),
        locals,
    };
    let all = lint::lint(&sets, opts);
    let level = args.severity.severity();
    let (shown, below): (Vec<&Finding>, Vec<&Finding>) =
        all.iter().partition(|f| f.severity >= level);
    let out = match args.format {
        Format::Text => {
            crate::format::visible_lines(&render_text(&shown, below.len(), level)).into_owned()
        }
        Format::Json => {
            let doc = Doc {
                source: snap.origin.describe(),
                severity: level,
                findings: shown.clone(),
                below: below.len(),
            };
            let mut s = serde_json::to_string_pretty(&doc)?;
            s.push('\n');
            s
        }
    };
    print!("{out}");
    Ok(if shown.is_empty() { 0 } else { 1 })
}

fn render_text(shown: &[&Finding], below: usize, level: Severity) -> String {
    let mut out = String::new();
    for f in shown {
        let _ = writeln!(
            out,
            "{}: {}: {}",
            f.severity.name(),
            f.kind.name(),
            f.place()
        );
        if let Some(t) = &f.text {
            let _ = writeln!(out, "  {t}");
        }
        let _ = writeln!(out, "  {}", f.message);
        for b in &f.by {
            let fam = if b.family == f.family {
                String::new()
            } else {
                format!("{} ", b.family.label())
            };
            match (b.rule, &b.text) {
                (Some(n), Some(t)) => {
                    let _ = writeln!(out, "    {fam}{} rule {n}: {t}", b.chain);
                }
                _ => {
                    let _ = writeln!(out, "    {fam}{} {}: the chain's policy", b.table, b.chain);
                }
            }
        }
        out.push('\n');
    }
    let count = |s: Severity| shown.iter().filter(|f| f.severity == s).count();
    let plural = |n: usize, w: &str| {
        if n == 1 {
            format!("{n} {w}")
        } else {
            format!("{n} {w}s")
        }
    };
    let mut parts = Vec::new();
    for (s, w) in [
        (Severity::Error, "error"),
        (Severity::Warning, "warning"),
        (Severity::Info, "info finding"),
    ] {
        let n = count(s);
        if n > 0 {
            parts.push(plural(n, w));
        }
    }
    if parts.is_empty() {
        let _ = write!(out, "no findings of severity {} or above", level.name());
    } else {
        out.push_str(&parts.join(", "));
    }
    if below > 0 {
        let _ = write!(
            out,
            " ({} below --severity {} not shown)",
            plural(below, "finding"),
            level.name()
        );
    }
    out.push('\n');
    out
}
