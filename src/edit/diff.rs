//! The difference staged edits make, table by table: a unified diff of the save text without
//! counters (counters change all the time and are not what the user edited), with each line
//! marked for colouring. Pure.
//!
//! The save text of a table is its declarations, then each chain's rules, every rule line
//! starting with `-A CHAIN`. A plain line diff of a kube-proxy table where one much-used chain
//! was renamed (thousands of changed lines) takes seconds; so the diff follows the structure:
//! the declarations are diffed as lines, the chains are lined up by name, and only the rules of
//! chains present on both sides are diffed line by line (lines of chains with different names
//! can never be equal). The result is the same kind of unified diff, built in a few
//! milliseconds, and a deadline keeps even a pathological chain from hanging the screen.

use crate::ruleset::save::{CounterMode, chain_decl, rule_line};
use crate::ruleset::{Family, Ruleset, Table};
use similar::udiff::UnifiedHunkHeader;
use similar::{Algorithm, DiffOp, DiffTag, capture_diff_slices_deadline, group_diff_ops};
use std::ops::Range;
use std::time::{Duration, Instant};

/// What a diff line is, for colouring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffKind {
    /// `--- `, `+++ ` and `@@ ... @@` lines.
    Header,
    Context,
    Added,
    Removed,
}

/// One line of a unified diff, as in `hunks_text` (with its ` `, `+` or `-` sign, no newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    pub kind: DiffKind,
    pub text: String,
}

/// The difference in one table of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDiff {
    pub family: Family,
    pub table: String,
    /// The unified diff, `--- IPv4 filter (base)` / `+++ IPv4 filter (staged)` and its hunks
    /// (three lines of context).
    pub hunks_text: String,
    /// `hunks_text` line by line.
    pub lines: Vec<DiffLine>,
}

/// How long one table may take before the rest of it is shown as replaced whole.
const TABLE_DEADLINE: Duration = Duration::from_secs(1);
const CONTEXT: usize = 3;

/// A table's save text without counters or comments, as lines, with where each chain's rules
/// are. Exactly what `save::write_table` writes without counters or comments.
struct Lines {
    lines: Vec<String>,
    /// Declaration lines: `1..1 + chains`.
    decls: Range<usize>,
    /// Chain names and the lines of their rules.
    chains: Vec<(String, Range<usize>)>,
}

impl Lines {
    fn of(t: Option<&Table>) -> Lines {
        let Some(t) = t else {
            return Lines {
                lines: Vec::new(),
                decls: 0..0,
                chains: Vec::new(),
            };
        };
        let mut lines = vec![format!("*{}", t.name)];
        lines.extend(t.chains.iter().map(|c| chain_decl(c, CounterMode::Without)));
        let decls = 1..lines.len();
        let mut chains = Vec::with_capacity(t.chains.len());
        for c in &t.chains {
            let start = lines.len();
            lines.extend(
                c.rules
                    .iter()
                    .map(|r| rule_line(&c.name, r, CounterMode::Without)),
            );
            chains.push((c.name.clone(), start..lines.len()));
        }
        lines.push("COMMIT".to_string());
        Lines {
            lines,
            decls,
            chains,
        }
    }
}

fn find(sets: &[Ruleset], f: Family) -> Option<&Ruleset> {
    sets.iter().find(|r| r.family == f)
}

/// The tables of `base` and `result` that differ, IPv4 first, each family's tables in the order
/// of the result (then those only the base has). A table or family missing on one side counts
/// as empty there.
pub fn diff(base: &[Ruleset], result: &[Ruleset]) -> Vec<TableDiff> {
    let mut out = Vec::new();
    for family in Family::ALL {
        let b = find(base, family);
        let r = find(result, family);
        let mut names: Vec<&str> = Vec::new();
        for t in r.iter().chain(b.iter()).flat_map(|rs| &rs.tables) {
            if !names.contains(&t.name.as_str()) {
                names.push(&t.name);
            }
        }
        for name in names {
            let old = Lines::of(b.and_then(|rs| rs.table(name)));
            let new = Lines::of(r.and_then(|rs| rs.table(name)));
            if old.lines != new.lines {
                out.push(table_diff(family, name, &old, &new));
            }
        }
    }
    out
}

/// An op from its ranges.
fn op_of(tag: DiffTag, old: Range<usize>, new: Range<usize>) -> DiffOp {
    match tag {
        DiffTag::Equal => DiffOp::Equal {
            old_index: old.start,
            new_index: new.start,
            len: old.len(),
        },
        _ if old.is_empty() => DiffOp::Insert {
            old_index: old.start,
            new_index: new.start,
            new_len: new.len(),
        },
        _ if new.is_empty() => DiffOp::Delete {
            old_index: old.start,
            old_len: old.len(),
            new_index: new.start,
        },
        _ => DiffOp::Replace {
            old_index: old.start,
            old_len: old.len(),
            new_index: new.start,
            new_len: new.len(),
        },
    }
}

/// The ops of a whole table, built piece by piece; neighbours of one kind are merged, so that
/// the hunks come out as a plain line diff would give them.
struct Ops(Vec<DiffOp>);

impl Ops {
    fn push(&mut self, tag: DiffTag, old: Range<usize>, new: Range<usize>) {
        if old.is_empty() && new.is_empty() {
            return;
        }
        let tag = if tag == DiffTag::Equal {
            DiffTag::Equal
        } else {
            DiffTag::Replace
        };
        if let Some(last) = self.0.pop() {
            let (ltag, lold, lnew) = last.as_tag_tuple();
            let same = (ltag == DiffTag::Equal) == (tag == DiffTag::Equal);
            if same && lold.end == old.start && lnew.end == new.start {
                self.0
                    .push(op_of(tag, lold.start..old.end, lnew.start..new.end));
                return;
            }
            self.0.push(last);
        }
        self.0.push(op_of(tag, old, new));
    }

    /// Diff `old.lines[o]` against `new.lines[n]` line by line.
    fn lines(&mut self, old: &Lines, o: Range<usize>, new: &Lines, n: Range<usize>, by: Instant) {
        let (Some(a), Some(b)) = (old.lines.get(o.clone()), new.lines.get(n.clone())) else {
            self.push(DiffTag::Replace, o, n);
            return;
        };
        for op in capture_diff_slices_deadline(Algorithm::Myers, a, b, Some(by)) {
            let (tag, x, y) = op.as_tag_tuple();
            self.push(
                tag,
                x.start + o.start..x.end + o.start,
                y.start + n.start..y.end + n.start,
            );
        }
    }
}

/// The lines from the first to the last of some chains' rules.
fn span(chains: &[(String, Range<usize>)], which: Range<usize>, at: usize) -> Range<usize> {
    match chains.get(which) {
        Some([first, .., last]) => first.1.start..last.1.end,
        Some([only]) => only.1.clone(),
        _ => at..at,
    }
}

fn table_ops(old: &Lines, new: &Lines) -> Vec<DiffOp> {
    let by = Instant::now() + TABLE_DEADLINE;
    let mut ops = Ops(Vec::new());
    if old.lines.is_empty() || new.lines.is_empty() {
        ops.push(DiffTag::Replace, 0..old.lines.len(), 0..new.lines.len());
        return ops.0;
    }
    ops.push(DiffTag::Equal, 0..1, 0..1);
    ops.lines(old, old.decls.clone(), new, new.decls.clone(), by);
    let a: Vec<&str> = old.chains.iter().map(|(n, _)| n.as_str()).collect();
    let b: Vec<&str> = new.chains.iter().map(|(n, _)| n.as_str()).collect();
    // Where the rules start, for chains with none on one side.
    let (mut o_at, mut n_at) = (old.decls.end, new.decls.end);
    for op in capture_diff_slices_deadline(Algorithm::Myers, &a, &b, Some(by)) {
        let (tag, x, y) = op.as_tag_tuple();
        if tag == DiffTag::Equal {
            for (i, j) in x.zip(y) {
                let (Some((_, o)), Some((_, n))) = (old.chains.get(i), new.chains.get(j)) else {
                    continue;
                };
                ops.lines(old, o.clone(), new, n.clone(), by);
                (o_at, n_at) = (o.end, n.end);
            }
        } else {
            let o = span(&old.chains, x, o_at);
            let n = span(&new.chains, y, n_at);
            (o_at, n_at) = (o.end, n.end);
            ops.push(DiffTag::Replace, o, n);
        }
    }
    let (o_end, n_end) = (old.lines.len(), new.lines.len());
    ops.push(DiffTag::Equal, o_end - 1..o_end, n_end - 1..n_end);
    ops.0
}

fn table_diff(family: Family, table: &str, old: &Lines, new: &Lines) -> TableDiff {
    let label = format!("{} {table}", family.label());
    let mut lines = vec![
        DiffLine {
            kind: DiffKind::Header,
            text: format!("--- {label} (base)"),
        },
        DiffLine {
            kind: DiffKind::Header,
            text: format!("+++ {label} (staged)"),
        },
    ];
    fn emit(out: &mut Vec<DiffLine>, kind: DiffKind, sign: char, from: &Lines, r: Range<usize>) {
        for line in from.lines.get(r).unwrap_or_default() {
            out.push(DiffLine {
                kind,
                text: format!("{sign}{line}"),
            });
        }
    }
    for hunk in group_diff_ops(table_ops(old, new), CONTEXT) {
        if hunk.is_empty() {
            continue;
        }
        lines.push(DiffLine {
            kind: DiffKind::Header,
            text: UnifiedHunkHeader::new(&hunk).to_string(),
        });
        for op in &hunk {
            let (tag, o, n) = op.as_tag_tuple();
            let out = &mut lines;
            match tag {
                DiffTag::Equal => emit(out, DiffKind::Context, ' ', old, o),
                DiffTag::Delete => emit(out, DiffKind::Removed, '-', old, o),
                DiffTag::Insert => emit(out, DiffKind::Added, '+', new, n),
                DiffTag::Replace => {
                    emit(out, DiffKind::Removed, '-', old, o);
                    emit(out, DiffKind::Added, '+', new, n);
                }
            }
        }
    }
    let mut hunks_text = String::new();
    for l in &lines {
        hunks_text.push_str(&l.text);
        hunks_text.push('\n');
    }
    TableDiff {
        family,
        table: table.to_string(),
        hunks_text,
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::ChainRef;
    use crate::edit::stage::{Op, Staging};
    use crate::ruleset::parse;
    use crate::ruleset::save::SaveOptions;

    const BARE: SaveOptions = SaveOptions {
        counters: CounterMode::Without,
        comments: false,
    };

    const V4: &str = "*nat\n:PREROUTING ACCEPT [9:9]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT ACCEPT [1:1]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n[1:60] -A INPUT -i lo -j ACCEPT\n[2:80] -A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n";
    const V6: &str =
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";

    fn base() -> Vec<Ruleset> {
        vec![
            parse(V4, Family::V4).unwrap(),
            parse(V6, Family::V6).unwrap(),
        ]
    }

    #[test]
    fn only_tables_that_differ_in_family_order() {
        let mut s = Staging::new(base());
        assert!(diff(s.base(), s.result()).is_empty());
        s.push(Op::SetPolicy {
            at: ChainRef::new(Family::V6, "filter", "INPUT"),
            policy: "DROP".into(),
        })
        .unwrap();
        s.push(Op::Insert {
            above: None,
            at: ChainRef::new(Family::V4, "filter", "INPUT"),
            pos: 2,
            rule: "-s 10.0.0.1 -j DROP".into(),
        })
        .unwrap();
        let d = diff(s.base(), s.result());
        let which: Vec<_> = d.iter().map(|t| (t.family, t.table.as_str())).collect();
        assert_eq!(which, [(Family::V4, "filter"), (Family::V6, "filter")]);
        assert_eq!(
            d[0].hunks_text,
            "--- IPv4 filter (base)\n+++ IPv4 filter (staged)\n@@ -3,5 +3,6 @@\n :FORWARD ACCEPT [0:0]\n :OUTPUT ACCEPT [0:0]\n -A INPUT -i lo -j ACCEPT\n+-A INPUT -s 10.0.0.1 -j DROP\n -A INPUT -p tcp --dport 22 -j ACCEPT\n COMMIT\n"
        );
        let kinds: Vec<_> = d[0].lines.iter().map(|l| l.kind).collect();
        use DiffKind::*;
        assert_eq!(
            kinds,
            [
                Header, Header, Header, Context, Context, Context, Added, Context, Context
            ]
        );
        let removed: Vec<_> = d[1]
            .lines
            .iter()
            .filter(|l| l.kind != Context)
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(
            removed,
            [
                "--- IPv6 filter (base)",
                "+++ IPv6 filter (staged)",
                "@@ -1,5 +1,5 @@",
                "-:INPUT ACCEPT [0:0]",
                "+:INPUT DROP [0:0]"
            ]
        );
        let joined: String = d[1].lines.iter().map(|l| format!("{}\n", l.text)).collect();
        assert_eq!(joined, d[1].hunks_text);
    }

    #[test]
    fn lines_are_what_the_writer_writes() {
        let text = "# c\n*filter\n# inner\n:INPUT DROP [1:2]\n:E - [0:0]\n:T - [3:4]\n[5:6] -A INPUT -m comment --comment \"a \\\"b\\\"\" -j T\n-A INPUT -c 7 8 -j ACCEPT\n-A T\nCOMMIT\n";
        let rs = parse(text, Family::V4).unwrap();
        let t = &rs.tables[0];
        let mut written = String::new();
        crate::ruleset::save::write_table(&mut written, t, BARE);
        let lines = Lines::of(Some(t));
        assert_eq!(format!("{}\n", lines.lines.join("\n")), written);
        assert_eq!(lines.decls, 1..4);
        let spans: Vec<_> = lines
            .chains
            .iter()
            .map(|(n, r)| (n.as_str(), r.clone()))
            .collect();
        assert_eq!(spans, [("INPUT", 4..6), ("E", 6..6), ("T", 6..7)]);
    }

    #[test]
    fn counters_alone_are_no_difference() {
        let mut s = Staging::new(base());
        s.push(Op::Zero {
            at: ChainRef::new(Family::V4, "filter", "INPUT"),
        })
        .unwrap();
        assert!(diff(s.base(), s.result()).is_empty());
    }

    #[test]
    fn a_table_or_family_on_one_side_only() {
        let v4 = vec![parse(V4, Family::V4).unwrap()];
        let mut s = Staging::new(v4.clone());
        s.push(Op::Append {
            at: ChainRef::new(Family::V6, "raw", "OUTPUT"),
            rule: "-j NOTRACK".into(),
        })
        .unwrap();
        let d = diff(s.base(), s.result());
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].family, d[0].table.as_str()), (Family::V6, "raw"));
        assert!(d[0].lines.iter().skip(3).all(|l| l.kind == DiffKind::Added));
        // The other way round: what the base had and the result lacks is all removed.
        let back = diff(s.result(), s.base());
        assert!(
            back[0]
                .lines
                .iter()
                .skip(3)
                .all(|l| l.kind == DiffKind::Removed)
        );
        assert!(diff(&[], &[]).is_empty());
        assert_eq!(diff(&v4, &[]).len(), 2);
    }
}
