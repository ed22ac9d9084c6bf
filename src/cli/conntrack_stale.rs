//! `nfscope conntrack --stale [--delete [--yes]]`: the live entries whose first packet the rule
//! set as it is now would not accept (docs/analysis.md, "Stale flows"), with the rule that
//! would drop each; `--delete` deletes the stale ones (never the "maybe" ones) after asking.

use super::SourceArgs;
use super::conntrack::{ConntrackArgs, Format, fail, read_table};
use crate::conntrack::filter::Filter;
use crate::conntrack::format::{Layout, line};
use crate::conntrack::{Entry, EntryKey};
use crate::source::conntrack_netlink as ctnl;
use crate::source::ctdemo::CtDemo;
use crate::source::{self, stale as prep};
use crate::trace::Verdict;
use crate::trace::stale::{Finding, Report, Stale};
use rustc_hash::FxHashSet;
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

fn warn(w: &str) {
    eprintln!(
        "{}",
        crate::format::visible_lines(&format!("nfscope: warning: {w}"))
    );
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "would now be dropped by: filter INPUT rule 4: -A INPUT ... -j DROP".
pub fn because(f: &Finding) -> String {
    match &f.rule {
        Some(r) => {
            let how = if r.verdict == Verdict::Reject {
                "rejected"
            } else {
                "dropped"
            };
            format!("would now be {how} by: {r}")
        }
        None => format!("might now be refused: {}", f.summary),
    }
}

/// One entry of the JSON document.
#[derive(Serialize)]
struct Item<'a> {
    entry: &'a Entry,
    #[serde(flatten)]
    finding: &'a Finding,
}

/// The JSON document (docs/json.md, "Stale flows").
#[derive(Serialize)]
struct Doc<'a> {
    entries: usize,
    accepted: usize,
    stale: Vec<Item<'a>>,
    maybe: Vec<Item<'a>>,
    skipped: std::collections::BTreeMap<&'static str, usize>,
    traced: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted: Option<usize>,
}

fn items<'a>(entries: &'a [&'a Entry], found: &'a [(usize, Arc<Finding>)]) -> Vec<Item<'a>> {
    found
        .iter()
        .filter_map(|(i, f)| {
            Some(Item {
                entry: entries.get(*i)?,
                finding: f,
            })
        })
        .collect()
}

/// The text: each stale entry as `conntrack -L -o extended` prints it and the rule under it,
/// then the "maybe" ones with what they hinge on.
pub fn render_text(entries: &[&Entry], r: &Report) -> String {
    let mut out = String::new();
    for (i, f) in r.stale.iter().chain(&r.maybe) {
        let Some(e) = entries.get(*i) else {
            continue;
        };
        out.push_str(&line(e, Layout::Extended));
        out.push_str("\n  ");
        out.push_str(&because(f));
        out.push('\n');
    }
    out
}

/// The closing sentence on standard error.
pub fn summary(r: &Report) -> String {
    let mut s = format!(
        "{} of {} would not be accepted anew",
        plural(r.stale.len(), "entry", "entries"),
        r.total
    );
    if !r.maybe.is_empty() {
        s.push_str(&format!(
            "; {} might not be (an unknown match decides)",
            r.maybe.len()
        ));
    }
    let skipped = r.skipped_total();
    if skipped > 0 {
        let why: Vec<String> = r
            .skipped
            .iter()
            .map(|(k, n)| format!("{n} {}", k.reason()))
            .collect();
        s.push_str(&format!("; {skipped} skipped ({})", why.join(", ")));
    }
    s.push_str(&format!(
        "; {} traced",
        plural(r.traced, "distinct packet", "distinct packets")
    ));
    s
}

enum Answer {
    Yes,
    No,
    NotATerminal,
}

fn ask(n: usize) -> Answer {
    if !std::io::stdin().is_terminal() {
        return Answer::NotATerminal;
    }
    eprint!(
        "Delete {}? [y/N] ",
        plural(n, "stale connection", "stale connections")
    );
    let _ = std::io::stderr().flush();
    let mut l = String::new();
    match std::io::stdin().lock().read_line(&mut l) {
        Ok(_) if matches!(l.trim(), "y" | "Y" | "yes" | "YES" | "Yes") => Answer::Yes,
        _ => Answer::No,
    }
}

/// Run `--stale`; returns the exit status (docs/cli.md).
pub fn run(
    src: &SourceArgs,
    args: &ConntrackArgs,
    filter: Option<&Filter>,
) -> color_eyre::Result<i32> {
    let keep = |e: &Entry| filter.is_none_or(|f| f.matches(e));
    let mut demo = src.demo.then(CtDemo::new);
    let table = match &demo {
        Some(d) => d.entries(),
        None => match read_table(args.source) {
            Ok(t) => t,
            Err(e) => return Ok(fail(e, 1)),
        },
    };
    let cfg = src.config()?;
    let snap = source::load_once(&cfg);
    for w in &snap.warnings {
        warn(w);
    }
    for e in snap.errors() {
        warn(&e);
    }
    let (locals, lw) = if args.local_addr.is_empty() {
        prep::local_addresses(&snap.origin)
    } else {
        (args.local_addr.clone(), None)
    };
    if let Some(w) = lw {
        warn(&w);
    }
    let (mut stale, ws): (Stale, _) = prep::prepare(&snap, locals);
    for w in &ws {
        warn(w);
    }
    let shown: Vec<&Entry> = table.iter().filter(|e| keep(e)).collect();
    let report = stale.analyze(shown.iter().copied());

    let mut deleted = None;
    if args.delete && !report.stale.is_empty() {
        let n = report.stale.len();
        if !args.yes {
            match ask(n) {
                Answer::Yes => {}
                Answer::No => {
                    eprintln!("nfscope: nothing deleted");
                    deleted = Some(0);
                }
                Answer::NotATerminal => {
                    return Ok(fail(
                        format_args!(
                            "--stale --delete would delete {}: standard input is not a terminal to ask on, add --yes",
                            plural(n, "entry", "entries")
                        ),
                        2,
                    ));
                }
            }
        }
        if deleted.is_none() {
            let keys: FxHashSet<EntryKey> = report
                .stale
                .iter()
                .filter_map(|(i, _)| shown.get(*i).map(|e| e.key()))
                .collect();
            let gone = match &mut demo {
                Some(d) => d.remove(|e| keys.contains(&e.key())).len(),
                None => match ctnl::delete_matching(|e| keys.contains(&e.key())) {
                    Ok(n) => n,
                    Err(e) => return Ok(fail(e, 1)),
                },
            };
            deleted = Some(gone);
        }
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => {
            let doc = Doc {
                entries: report.total,
                accepted: report.accepted,
                stale: items(&shown, &report.stale),
                maybe: items(&shown, &report.maybe),
                skipped: report.skipped.iter().map(|(k, n)| (k.key(), *n)).collect(),
                traced: report.traced,
                deleted,
            };
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
            out.flush()?;
        }
        Format::Text => {
            write!(
                out,
                "{}",
                crate::format::visible_lines(&render_text(&shown, &report))
            )?;
            out.flush()?;
            eprintln!("nfscope: {}", summary(&report));
            if let Some(n) = deleted.filter(|_| args.delete) {
                println!("deleted {}", plural(n, "entry", "entries"));
            }
        }
    }
    if demo.is_some() && deleted.is_some_and(|n| n > 0) {
        eprintln!("nfscope: the demo world's table, not the kernel's");
    }
    if args.delete && report.stale.is_empty() && args.format == Format::Text {
        println!("deleted 0 entries: none is stale");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::synth;
    use crate::trace::LocalAddr;
    use crate::trace::nft::Native;

    #[test]
    fn text_names_the_rule_and_the_summary_counts() {
        let rs = crate::ruleset::parse::parse(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
             -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
             -A FORWARD -p tcp --dport 443 -j ACCEPT\n\
             -A FORWARD -p udp --dport 53 -j REJECT\nCOMMIT\n",
            crate::ruleset::Family::V4,
        )
        .unwrap();
        let locals = vec![LocalAddr::parse("10.0.0.1/16%lan0").unwrap()];
        let mut s = Stale::new(vec![(rs, Native::default())], locals);
        let table = synth::entries(200);
        let shown: Vec<&Entry> = table.iter().collect();
        let r = s.analyze(shown.iter().copied());
        assert!(!r.stale.is_empty());
        let text = render_text(&shown, &r);
        assert!(
            text.contains("would now be rejected by: filter FORWARD rule 3: -A FORWARD -p udp --dport 53 -j REJECT"),
            "{text}"
        );
        assert!(
            text.contains("would now be dropped by: filter FORWARD policy DROP"),
            "{text}"
        );
        let sum = summary(&r);
        assert!(sum.contains(" of 200 would not be accepted anew"), "{sum}");
        assert!(sum.contains("skipped"), "{sum}");
    }
}
