//! The difference staged edits make, table by table: a unified diff of the save text without
//! counters (counters change all the time and are not what the user edited), with each line
//! marked for colouring. Pure.

use crate::ruleset::save::{CounterMode, SaveOptions, write_table};
use crate::ruleset::{Family, Ruleset, Table};
use similar::{ChangeTag, TextDiff};

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
    /// The unified diff, `--- IPv4 filter (base)` / `+++ IPv4 filter (staged)` and its hunks.
    pub hunks_text: String,
    /// `hunks_text` line by line.
    pub lines: Vec<DiffLine>,
}

const BARE: SaveOptions = SaveOptions {
    counters: CounterMode::Without,
    comments: false,
};

fn table_text(t: Option<&Table>) -> String {
    let mut s = String::new();
    if let Some(t) = t {
        write_table(&mut s, t, BARE);
    }
    s
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
            let old = table_text(b.and_then(|rs| rs.table(name)));
            let new = table_text(r.and_then(|rs| rs.table(name)));
            if old != new {
                out.push(table_diff(family, name, &old, &new));
            }
        }
    }
    out
}

fn table_diff(family: Family, table: &str, old: &str, new: &str) -> TableDiff {
    let label = format!("{} {table}", family.label());
    let d = TextDiff::from_lines(old, new);
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
    let mut unified = d.unified_diff();
    unified.context_radius(3);
    for hunk in unified.iter_hunks() {
        lines.push(DiffLine {
            kind: DiffKind::Header,
            text: hunk.header().to_string(),
        });
        for change in hunk.iter_changes() {
            let (kind, sign) = match change.tag() {
                ChangeTag::Equal => (DiffKind::Context, ' '),
                ChangeTag::Insert => (DiffKind::Added, '+'),
                ChangeTag::Delete => (DiffKind::Removed, '-'),
            };
            let value = change.value();
            let value = value.strip_suffix('\n').unwrap_or(value);
            lines.push(DiffLine {
                kind,
                text: format!("{sign}{value}"),
            });
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
