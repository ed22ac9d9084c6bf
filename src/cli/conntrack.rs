//! `nfscope conntrack`: print the conntrack table once, follow its events, or delete entries.
//! Exit statuses follow `nfscope rules` (docs/cli.md): 0 done, 1 the source failed, 2 the
//! command line is wrong (a bad `--filter` included).

use super::SourceArgs;
use crate::conntrack::filter::Filter;
use crate::conntrack::format::{Layout, line};
use crate::conntrack::{CtEvent, CtEventKind, Entry};
use crate::source::conntrack_netlink::{self as ctnl, CtError, CtMessage, SubscribeOptions};
use crate::source::conntrack_proc;
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
    /// Netlink, and /proc/net/nf_conntrack where netlink is missing (not where it is refused).
    Auto,
    /// Only ctnetlink (needed by --watch and --delete).
    Netlink,
    /// Only /proc/net/nf_conntrack (read-only: no --watch, no --delete).
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
    /// Where the table is read from.
    #[arg(long, value_enum, default_value_t = CtSource::Auto)]
    pub source: CtSource,
    /// Follow the events (new, update, destroy) until interrupted or --count events.
    #[arg(long, conflicts_with_all = ["delete", "stale"])]
    pub watch: bool,
    /// With --watch: stop after this many events (at least 1).
    #[arg(long, value_name = "N", requires = "watch", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Delete every entry matching --filter (required, not empty) and say how many; with
    /// --stale, the stale entries (asks first).
    #[arg(long)]
    pub delete: bool,
    /// With --delete: allow a filter that names no address, port, id or mark (such as
    /// `proto=tcp`), which deletes a large part of the table, your SSH session's entry included.
    #[arg(long, requires = "delete", conflicts_with = "stale")]
    pub all: bool,
    /// List the entries whose first packet the rule set as it is now would not accept (they
    /// live on only because ESTABLISHED is accepted early), with the rule that would drop them
    /// (docs/analysis.md). --filter narrows the entries looked at.
    #[arg(long)]
    pub stale: bool,
    /// With --stale --delete: do not ask (needed when standard input is not a terminal).
    #[arg(long, requires = "delete")]
    pub yes: bool,
    /// With --stale: this machine's addresses, ADDR[/LEN][%IF] (default: read from the kernel;
    /// for --demo the demo gateway's; for --file loopback only).
    #[arg(long = "local-addr", value_name = "ADDR", num_args = 1.., requires = "stale", value_parser = super::trace::local_addr_arg)]
    pub local_addr: Vec<crate::trace::LocalAddr>,
}

/// A failure of the subcommand, as a sentence and an exit status.
pub(super) fn fail(msg: impl std::fmt::Display, code: i32) -> i32 {
    eprintln!(
        "{}",
        crate::format::visible_lines(&format!("nfscope: {msg}"))
    );
    code
}

/// Read the whole table from the chosen source. `Auto` falls back to /proc only where netlink
/// is missing: where it is refused (no CAP_NET_ADMIN), /proc is refused too, and the netlink
/// sentence says what to do.
pub(super) fn read_table(src: CtSource) -> Result<Vec<Entry>, CtError> {
    let from_proc = || {
        let (entries, bad) = conntrack_proc::read_lenient(None)?;
        if let Some(b) = bad {
            eprintln!(
                "{}",
                crate::format::visible_lines(&format!("nfscope: warning: {b}"))
            );
        }
        Ok(entries)
    };
    match src {
        CtSource::Proc => from_proc(),
        CtSource::Netlink => ctnl::dump(None),
        CtSource::Auto => match ctnl::dump(None) {
            Ok(v) => Ok(v),
            Err(e @ CtError::PermissionDenied) => Err(e),
            Err(e) => {
                eprintln!(
                    "{}",
                    crate::format::visible_lines(&format!(
                        "nfscope: warning: {e}; reading /proc/net/nf_conntrack instead"
                    ))
                );
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
            writeln!(
                out,
                "{tag:>9} {}",
                crate::format::visible(&line(&ev.entry, Layout::Extended))
            )
        }
    }
}

/// The notice --watch writes to standard error when the kernel dropped events: one JSON object
/// per line with `--format json` (so a consumer may parse both streams the same way), else a
/// warning sentence. Standard output only ever carries events.
fn loss_notice(lost: u64, total: u64, format: Format) -> String {
    let message = format!(
        "the kernel dropped {lost} conntrack event{} ({total} since the start): its buffer for \
         nfscope was full, so the events printed are incomplete; run `nfscope conntrack` for \
         the table as it is now",
        if lost == 1 { "" } else { "s" }
    );
    /// Fields in this order: what it is first.
    #[derive(serde::Serialize)]
    struct Notice<'a> {
        notice: &'static str,
        lost: u64,
        total: u64,
        message: &'a str,
    }
    match format {
        Format::Json => serde_json::to_string(&Notice {
            notice: "lost",
            lost,
            total,
            message: &message,
        })
        .unwrap_or_default(),
        Format::Text => format!("nfscope: warning: {message}"),
    }
}

/// `--watch`: print the events `next` yields that `keep` selects, until `count` were printed
/// or `next` returns `None` (it then failed, and said so). Losses go to `err` as notices.
fn watch(
    out: &mut impl Write,
    err: &mut impl Write,
    mut next: impl FnMut() -> Option<Vec<CtMessage>>,
    keep: &dyn Fn(&Entry) -> bool,
    format: Format,
    count: Option<u64>,
) -> std::io::Result<()> {
    let mut seen = 0u64;
    let mut lost_total = 0u64;
    while let Some(batch) = next() {
        for m in batch {
            match m {
                CtMessage::Event(ev) => {
                    if !keep(&ev.entry) {
                        continue;
                    }
                    print_event(out, &ev, format)?;
                    seen += 1;
                    if count.is_some_and(|c| seen >= c) {
                        return out.flush();
                    }
                }
                CtMessage::Lost(n) => {
                    lost_total += n;
                    // What was printed before the loss goes out first.
                    out.flush()?;
                    writeln!(err, "{}", loss_notice(n, lost_total, format))?;
                    err.flush()?;
                }
            }
        }
        out.flush()?;
    }
    out.flush()
}

/// Run the subcommand; returns the exit status.
pub fn run(src: &SourceArgs, args: &ConntrackArgs) -> color_eyre::Result<i32> {
    let filter = match args.filter.as_deref().map(Filter::parse).transpose() {
        Ok(f) => f,
        Err(e) => {
            let expr = args.filter.as_deref().unwrap_or_default();
            return Ok(fail(format_args!("--filter {expr:?}: {e}"), 2));
        }
    };
    if args.yes && !args.stale {
        return Ok(fail(
            "--yes answers the question --stale --delete asks; plain --delete does not ask",
            2,
        ));
    }
    if args.stale {
        if args.source == CtSource::Proc && args.delete {
            return Ok(fail(
                "--delete needs netlink; /proc/net/nf_conntrack is read-only",
                2,
            ));
        }
        return super::conntrack_stale::run(src, args, filter.as_ref());
    }
    if args.delete && filter.as_ref().is_none_or(Filter::is_empty) {
        return Ok(fail(
            "--delete needs a --filter that names what to delete; an empty one would delete the \
             whole table (flush it with `conntrack -F` if that is what you mean)",
            2,
        ));
    }
    if args.delete && !args.all && filter.as_ref().is_some_and(|f| !f.narrows()) {
        return Ok(fail(
            "--delete with a filter that names no address, port, id or mark would delete a large \
             part of the table (your own SSH connection's entry too): narrow the filter, or add \
             --all if that is what you mean",
            2,
        ));
    }
    if args.source == CtSource::Proc && (args.delete || args.watch) {
        let what = if args.delete {
            "--delete needs netlink; /proc/net/nf_conntrack is read-only"
        } else {
            "--watch needs netlink events; /proc/net/nf_conntrack has none"
        };
        return Ok(fail(what, 2));
    }
    let keep = |e: &Entry| filter.as_ref().is_none_or(|f| f.matches(e));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut err = std::io::stderr();

    if src.demo {
        let mut demo = CtDemo::new();
        if args.delete {
            let n = demo.remove(keep).len();
            println!(
                "{}",
                crate::format::visible_lines(&format!(
                    "deleted {n} entr{}",
                    if n == 1 { "y" } else { "ies" }
                ))
            );
            eprintln!(
                "{}",
                crate::format::visible_lines("nfscope: the demo world's table, not the kernel's")
            );
            return Ok(0);
        }
        if args.watch {
            let step = Duration::from_millis(250);
            let mut first = true;
            let next = || {
                if !std::mem::take(&mut first) {
                    std::thread::sleep(step);
                }
                Some(demo.step(step).into_iter().map(CtMessage::Event).collect())
            };
            watch(&mut out, &mut err, next, &keep, args.format, args.count)?;
            return Ok(0);
        }
        return print_table(&mut out, demo.entries(), &keep, args.format);
    }

    if args.delete {
        return Ok(match ctnl::delete_matching(keep) {
            Ok(n) => {
                println!(
                    "{}",
                    crate::format::visible_lines(&format!(
                        "deleted {n} entr{}",
                        if n == 1 { "y" } else { "ies" }
                    ))
                );
                0
            }
            Err(e) => fail(e, 1),
        });
    }

    if args.watch {
        let mut sub = match ctnl::Subscription::open(SubscribeOptions::default()) {
            Ok(s) => s,
            Err(e) => return Ok(fail(e, 1)),
        };
        let events = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_events");
        if events.is_ok_and(|v| v.trim() == "0") {
            eprintln!(
                "nfscope: warning: the kernel sends no conntrack events here \
                 (net.netfilter.nf_conntrack_events=0), so --watch will print nothing"
            );
        }
        let mut failed = None;
        let next = || match sub.recv() {
            Ok(Some(m)) => Some(vec![m]),
            Ok(None) => Some(Vec::new()),
            Err(e) => {
                failed = Some(e);
                None
            }
        };
        watch(&mut out, &mut err, next, &keep, args.format, args.count)?;
        return Ok(failed.map_or(0, |e| fail(e, 1)));
    }

    match read_table(args.source) {
        Ok(entries) => print_table(&mut out, entries, &keep, args.format),
        Err(e) => Ok(fail(e, 1)),
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
                writeln!(
                    out,
                    "{}",
                    crate::format::visible(&line(e, Layout::Extended))
                )?;
            }
            out.flush()?;
            eprintln!(
                "{}",
                crate::format::visible_lines(&format!(
                    "nfscope: {} flow entr{} shown ({} in the table)",
                    shown.len(),
                    if shown.len() == 1 { "y" } else { "ies" },
                    entries.len()
                ))
            );
        }
    }
    out.flush()?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::synth;

    fn run_watch(msgs: Vec<CtMessage>, format: Format, count: Option<u64>) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut batches = msgs.into_iter().map(|m| vec![m]);
        watch(
            &mut out,
            &mut err,
            || batches.next(),
            &|_| true,
            format,
            count,
        )
        .unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn watch_json_is_one_event_per_line_and_losses_go_to_stderr_as_json() {
        let e = synth::entries(1).remove(0);
        let msgs = vec![
            CtMessage::Event(CtEvent::new(e.clone())),
            CtMessage::Lost(3),
            CtMessage::Event(CtEvent::destroy(e.clone())),
            CtMessage::Lost(1),
            CtMessage::Event(CtEvent::update(e)),
        ];
        let (out, err) = run_watch(msgs, Format::Json, Some(2));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "--count 2 stops after two events: {out}");
        for (l, kind) in lines.iter().zip(["new", "destroy"]) {
            assert!(l.starts_with(r#"{"event":""#), "event first: {l}");
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["event"], kind);
            assert!(v["entry"].is_object());
        }
        let notices: Vec<serde_json::Value> = err
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(notices.len(), 1, "{err}");
        assert!(
            err.starts_with(r#"{"notice":"lost","lost":3,"total":3,"message":"#),
            "{err}"
        );
        assert_eq!(
            (notices[0]["lost"].as_u64(), notices[0]["total"].as_u64()),
            (Some(3), Some(3))
        );
    }

    #[test]
    fn watch_text_warns_in_a_sentence() {
        let (out, err) = run_watch(vec![CtMessage::Lost(2)], Format::Text, None);
        assert!(out.is_empty());
        assert!(
            err.starts_with("nfscope: warning: the kernel dropped 2 conntrack events"),
            "{err}"
        );
    }
}
