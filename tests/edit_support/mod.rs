//! Helpers shared by the edit-mode tests: a table's bare save text, and applying a unified
//! diff to it, to check that a TableDiff really turns the base table into the staged one.

use nfscope::edit::diff::{DiffKind, TableDiff};
use nfscope::ruleset::Table;
use nfscope::ruleset::save::{CounterMode, SaveOptions, write_table};

/// A table's save text without counters or comments ("" for no table): what the diff is of.
pub fn bare(t: Option<&Table>) -> String {
    let mut s = String::new();
    if let Some(t) = t {
        let opts = SaveOptions {
            counters: CounterMode::Without,
            comments: false,
        };
        write_table(&mut s, t, opts);
    }
    s
}

/// `(start, len)` of one side of a hunk header range such as `3,5` or `7` (length 1).
fn range(s: &str) -> Option<(usize, usize)> {
    match s.split_once(',') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => Some((s.parse().ok()?, 1)),
    }
}

/// Apply `d` to the lines of `old`; the new lines, or what did not fit.
pub fn patch(old: &str, d: &TableDiff) -> Result<String, String> {
    let old: Vec<&str> = old.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut at = 0; // next old line to copy
    let mut lines = d.lines.iter().skip(2).peekable();
    while let Some(h) = lines.next() {
        if h.kind != DiffKind::Header {
            return Err(format!("expected a hunk header, found {:?}", h.text));
        }
        let inner = h
            .text
            .strip_prefix("@@ -")
            .and_then(|s| s.strip_suffix(" @@"))
            .ok_or_else(|| format!("bad header {:?}", h.text))?;
        let (o, n) = inner.split_once(" +").ok_or("bad header")?;
        let ((o_start, o_len), (n_start, n_len)) = (range(o).ok_or("bad")?, range(n).ok_or("bad")?);
        // An empty range names the line before it.
        let o_first = if o_len == 0 { o_start } else { o_start - 1 };
        if o_first < at {
            return Err(format!("hunk {:?} goes backwards", h.text));
        }
        out.extend(
            old.get(at..o_first)
                .ok_or("hunk past the end")?
                .iter()
                .map(|s| s.to_string()),
        );
        if out.len() != if n_len == 0 { n_start } else { n_start - 1 } {
            return Err(format!("hunk {:?} starts at the wrong new line", h.text));
        }
        at = o_first;
        let (mut seen_old, mut seen_new) = (0, 0);
        while let Some(l) = lines.next_if(|l| l.kind != DiffKind::Header) {
            let text = l.text.get(1..).unwrap_or("");
            match l.kind {
                DiffKind::Context | DiffKind::Removed => {
                    if old.get(at) != Some(&text) {
                        return Err(format!("{:?} is not old line {}", l.text, at + 1));
                    }
                    at += 1;
                    seen_old += 1;
                    if l.kind == DiffKind::Context {
                        out.push(text.to_string());
                        seen_new += 1;
                    }
                }
                DiffKind::Added => {
                    out.push(text.to_string());
                    seen_new += 1;
                }
                DiffKind::Header => unreachable!(),
            }
        }
        if (seen_old, seen_new) != (o_len, n_len) {
            return Err(format!(
                "hunk {:?} holds {seen_old},{seen_new} lines",
                h.text
            ));
        }
    }
    out.extend(old[at..].iter().map(|s| s.to_string()));
    let mut s = out.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    Ok(s)
}
