//! `nfscope conntrack`: print the conntrack table once, follow its events, or delete entries.

use super::SourceArgs;
use crate::conntrack::filter::Filter;
use crate::conntrack::format::{Layout, line};
use crate::conntrack::procfs;
use crate::conntrack::{CtEvent, CtEventKind, Entry};
use crate::source::conntrack_netlink::{self as ctnl, CtError, CtMessage, SubscribeOptions};
use crate::source::ctdemo::CtDemo;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per entry, as `conntrack -L -o extended` prints it.
    Text,
    /// JSON (docs/json.md); with --watch, one object per line per event.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CtSource {
    /// Netlink, and /proc/net/nf_conntrack where netlink is refused.
    Auto,
    Netlink,
    Proc,
}

#[derive(Debug, Clone, Args)]
pub struct ConntrackArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Only entries matching this expression (docs/conntrack-filter.md), e.g.
    /// "proto=tcp state=ESTABLISHED dport=22 src=10.0.0.0/8 !assured".
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    #[arg(long, value_enum, default_value_t = CtSource::Auto)]
    pub source: CtSource,
    /// Follow the events (new, update, destroy) until interrupted or --count events.
    #[arg(long, conflicts_with = "delete")]
    pub watch: bool,
    /// With --watch: stop after this many events.
    #[arg(long, value_name = "N", requires = "watch")]
    pub count: Option<u64>,
    /// Delete every entry matching --filter (required) and say how many.
    #[arg(long, requires = "filter")]
    pub delete: bool,
}

/// A failure of the subcommand, as a sentence and an exit status.
fn fail(msg: impl std::fmt::Display, code: i32) -> i32 {
    eprintln!("nfscope: {msg}");
    code
}

/// Read the whole table from the chosen source.
fn read_table(src: CtSource) -> Result<Vec<Entry>, String> {
    let from_proc = || -> Result<Vec<Entry>, String> {
        let path = "/proc/net/nf_conntrack";
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!("cannot read {path}: {e} (is nf_conntrack loaded? reading it needs root)")
        })?;
        let (entries, errors) = procfs::parse_proc(&text);
        for e in &errors {
            eprintln!("nfscope: warning: {path}: {e}");
        }
        Ok(entries)
    };
    match src {
        CtSource::Proc => from_proc(),
        CtSource::Netlink => ctnl::dump(None).map_err(|e| e.to_string()),
        CtSource::Auto => match ctnl::dump(None) {
            Ok(v) => Ok(v),
            Err(e @ CtError::PermissionDenied) => Err(e.to_string()),
            Err(e) => {
                eprintln!("nfscope: warning: {e}; reading /proc/net/nf_conntrack instead");
                from_proc()
            }
        },
    }
}

fn print_event(out: &mut impl Write, ev: &CtEvent, format: Format) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer(&mut *out, ev)?;
            writeln!(out)
        }
        Format::Text => {
            let tag = match ev.kind {
                CtEventKind::New => "[NEW]",
                CtEventKind::Update => "[UPDATE]",
                CtEventKind::Destroy => "[DESTROY]",
            };
            writeln!(out, "{tag:>9} {}", line(&ev.entry, Layout::Extended))
        }
    }
}

/// Run the subcommand; returns the exit status.
pub fn run(src: &SourceArgs, args: &ConntrackArgs) -> color_eyre::Result<i32> {
    let filter = match args.filter.as_deref().map(Filter::parse).transpose() {
        Ok(f) => f,
        Err(e) => return Ok(fail(format_args!("--filter: {e}"), 2)),
    };
    let keep = |e: &Entry| filter.as_ref().is_none_or(|f| f.matches(e));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());

    if src.demo {
        let mut demo = CtDemo::new();
        if args.delete {
            let n = demo.entries().iter().filter(|e| keep(e)).count();
            println!("demo: {n} entries match; the demo deletes nothing from any kernel");
            return Ok(0);
        }
        if args.watch {
            let mut seen = 0u64;
            loop {
                for ev in demo.step(Duration::from_millis(250)) {
                    if !keep(&ev.entry) {
                        continue;
                    }
                    print_event(&mut out, &ev, args.format)?;
                    seen += 1;
                    if args.count.is_some_and(|c| seen >= c) {
                        out.flush()?;
                        return Ok(0);
                    }
                }
                out.flush()?;
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        return print_table(&mut out, demo.entries(), &keep, args.format);
    }

    if args.delete {
        if args.source == CtSource::Proc {
            return Ok(fail(
                "--delete needs netlink; /proc/net/nf_conntrack is read-only",
                2,
            ));
        }
        return Ok(match ctnl::delete_matching(|e| keep(e)) {
            Ok(n) => {
                println!("deleted {n} entr{}", if n == 1 { "y" } else { "ies" });
                0
            }
            Err(e) => fail(e, 1),
        });
    }

    if args.watch {
        if args.source == CtSource::Proc {
            return Ok(fail(
                "--watch needs netlink events; /proc/net/nf_conntrack has none",
                2,
            ));
        }
        let mut sub = match ctnl::Subscription::open(SubscribeOptions::default()) {
            Ok(s) => s,
            Err(e) => return Ok(fail(e, 1)),
        };
        let mut seen = 0u64;
        loop {
            match sub.recv() {
                Ok(Some(CtMessage::Event(ev))) => {
                    if !keep(&ev.entry) {
                        continue;
                    }
                    print_event(&mut out, &ev, args.format)?;
                    out.flush()?;
                    seen += 1;
                    if args.count.is_some_and(|c| seen >= c) {
                        return Ok(0);
                    }
                }
                Ok(Some(CtMessage::Lost(n))) => {
                    eprintln!(
                        "nfscope: warning: the kernel dropped {n} events (receive buffer full)"
                    );
                }
                Ok(None) => {}
                Err(e) => return Ok(fail(e, 1)),
            }
        }
    }

    match read_table(args.source) {
        Ok(entries) => print_table(&mut out, entries, &keep, args.format),
        Err(msg) => Ok(fail(msg, 1)),
    }
}

fn print_table(
    out: &mut impl Write,
    entries: Vec<Entry>,
    keep: &dyn Fn(&Entry) -> bool,
    format: Format,
) -> color_eyre::Result<i32> {
    let shown: Vec<&Entry> = entries.iter().filter(|e| keep(e)).collect();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &shown)?;
            writeln!(out)?;
        }
        Format::Text => {
            for e in &shown {
                writeln!(out, "{}", line(e, Layout::Extended))?;
            }
            out.flush()?;
            eprintln!(
                "nfscope: {} flow entr{} shown ({} in the table)",
                shown.len(),
                if shown.len() == 1 { "y" } else { "ies" },
                entries.len()
            );
        }
    }
    out.flush()?;
    Ok(0)
}
