//! The commit steps against the kernel (I/O): validate the staged tables with `restore --test`,
//! apply the planned table changes one `restore --noflush` transaction each (undoing those
//! already applied when a later one fails), and re-read the kernel. The tools run in this
//! thread's network namespace (see `source::netns::run_in`).

use super::TableChange;
use super::plan::test_input;
use super::tools::Tools;
use crate::ruleset::{Family, Ruleset};
use crate::source::SourceError;
use std::collections::BTreeSet;
use thiserror::Error;

/// Why a commit step failed, as a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApplyError {
    #[error(
        "the staged {family} rule set was refused by {tool} ({check}), so nothing was changed: {message}"
    )]
    Invalid {
        family: &'static str,
        tool: String,
        /// Which check refused it: `--test`, or the trial load in an empty namespace.
        check: &'static str,
        message: String,
    },
    /// The restore tool is not installed: nothing could be checked or changed.
    #[error(
        "{tool} was not found, so nothing was checked or changed: install the iptables package (e.g. `apt-get install iptables`)"
    )]
    ToolMissing { tool: String },
    /// This process may not change netfilter (no CAP_NET_ADMIN): nothing was changed.
    #[error(
        "{tool} needs root (CAP_NET_ADMIN), so nothing was checked or changed: run nfscope as root (sudo)"
    )]
    Permission { tool: String },
    /// Applying one table failed. The tables applied before it were undone (`undone`), except
    /// those whose undo failed too (`stuck`): those hold the new rules.
    #[error("{}", not_applied_text(.family, .table, .why, .undone, .stuck))]
    NotApplied {
        family: Family,
        table: String,
        why: String,
        undone: Vec<String>,
        stuck: Vec<String>,
    },
    #[error("cannot read the {family} rule set: {message}")]
    Read {
        family: &'static str,
        message: String,
    },
}

impl ApplyError {
    /// Whether some of the change is left in the kernel (a failed apply whose undo failed too):
    /// then the backup must be restored.
    pub fn holds_new_rules(&self) -> bool {
        matches!(self, ApplyError::NotApplied { stuck, .. } if !stuck.is_empty())
    }

    /// Whether the tools could not check at all (missing, or no permission), as opposed to a
    /// check that ran and refused.
    pub fn untestable(&self) -> bool {
        matches!(
            self,
            ApplyError::ToolMissing { .. } | ApplyError::Permission { .. }
        )
    }
}

fn not_applied_text(
    family: &Family,
    table: &str,
    why: &str,
    undone: &[String],
    stuck: &[String],
) -> String {
    let mut what = format!(
        "applying {} {table} failed, so that table is unchanged: {why}",
        family.label()
    );
    if !undone.is_empty() {
        what.push_str(&format!(
            "; the tables applied before it were undone: {}",
            undone.join(", ")
        ));
    }
    if !stuck.is_empty() {
        what.push_str(&format!(
            "; undoing these failed, so they hold the new rules: {} (restore the backup with `nfscope rollback`)",
            stuck.join(", ")
        ));
    }
    what
}

/// The tool's failure as an ApplyError: by its type, never by its words.
fn classify(
    e: SourceError,
    family: Family,
    tool: String,
    check: &'static str,
    input: &str,
) -> ApplyError {
    match e {
        SourceError::ToolMissing { tool } => ApplyError::ToolMissing { tool },
        SourceError::PermissionDenied { tool } => ApplyError::Permission { tool },
        e => ApplyError::Invalid {
            family: family.label(),
            tool,
            check,
            message: explain(&e, input),
        },
    }
}

/// The tool's complaint, with the line it names quoted from the input: the legacy tools say
/// only "line 5 failed".
fn explain(err: &SourceError, input: &str) -> String {
    let stderr = match err {
        SourceError::ToolFailed { stderr, .. } => stderr.as_str(),
        _ => return err.to_string(),
    };
    let line = stderr
        .split("line")
        .skip(1)
        .find_map(|rest| {
            let rest = rest.trim_start_matches([' ', ':']);
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<usize>().ok()
        })
        .and_then(|n| input.lines().nth(n.wrapping_sub(1)).map(|l| (n, l)))
        // `COMMIT` or `*table` says nothing the message does not.
        .filter(|(_, l)| l.starts_with('-'));
    let first = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Try `"))
        .collect::<Vec<_>>()
        .join("; ");
    match line {
        Some((n, l)) => format!("{first} (line {n} is {l:?})"),
        None => first,
    }
}

/// Check each family's staged tables whole: `restore --test`, then a trial load into a
/// network namespace of its own that is thrown away at once. The trial catches what `--test`
/// lets through on nf_tables (iptables 1.8.9 resolves a jump to a missing chain only when it
/// commits); where a namespace cannot be made (no CAP_SYS_ADMIN) `--test` alone decides.
/// Nothing reaches the kernel's rule set in use.
pub fn validate(tools: &Tools, staged: &[Ruleset]) -> Result<(), ApplyError> {
    check(tools, staged).map(|_| ())
}

/// `validate` for one family's rule set file as given (`nfscope apply`): `restore --test` of
/// its very text (with `-c` when it carries counters), then the trial load. What is checked is
/// what is loaded. Returns what the trial load read back, as the kernel prints it (`None`
/// where no namespace could be made): what the kernel must hold afterwards.
pub fn validate_text(
    tools: &Tools,
    family: Family,
    text: &str,
    counters: bool,
) -> Result<Option<Ruleset>, ApplyError> {
    let invalid =
        |check| move |e: SourceError| classify(e, family, tools.restore_tool(family), check, text);
    let mut args = vec!["--test", "-w"];
    if counters {
        args.push("-c");
    }
    tools
        .restore(family, &args, text)
        .map_err(invalid("--test"))?;
    trial_load(*tools, family, text)
        .map_err(invalid("a trial load into an empty network namespace"))
}

/// `validate`, and the staged rule sets as the kernel writes them back: a rule typed as
/// `-p tcp --dport 22 -j ACCEPT` reads back as `-p tcp -m tcp --dport 22 -j ACCEPT`, and a plan
/// and its verification must compare what the kernel will hold. The rule texts come from the
/// trial load's read-back, chain by chain, where the chain read back with as many rules as
/// staged; elsewhere (or with no namespace to try in) the staged text stays as typed.
pub fn canonical(tools: &Tools, staged: &[Ruleset]) -> Result<Vec<Ruleset>, ApplyError> {
    let read = check(tools, staged)?;
    let mut out = staged.to_vec();
    for rs in &mut out {
        let Some(back) = read.iter().find(|b| b.family == rs.family) else {
            continue;
        };
        for table in &mut rs.tables {
            let Some(bt) = back.table(&table.name) else {
                continue;
            };
            for chain in &mut table.chains {
                let Some(bc) = bt.chain(&chain.name) else {
                    continue;
                };
                if bc.rules.len() != chain.rules.len() {
                    continue;
                }
                for (rule, b) in chain.rules.iter_mut().zip(&bc.rules) {
                    if rule.text != b.text {
                        let counters = rule.counters;
                        *rule = b.clone();
                        rule.counters = counters;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `canonical`, checking and trial-loading only `tables` (family and table name) of the
/// staged rule sets: the tables a commit changes. Tables are independent in iptables (no jump
/// crosses from one to another), so the others need no second look, and on a large nat table
/// this saves the whole-set trial load and read-back.
pub fn canonical_tables(
    tools: &Tools,
    staged: &[Ruleset],
    tables: &BTreeSet<(Family, String)>,
) -> Result<Vec<Ruleset>, ApplyError> {
    let canon = canonical(tools, &only_tables(staged, tables))?;
    let mut out = staged.to_vec();
    for rs in &mut out {
        for table in &mut rs.tables {
            if let Some(c) = canon
                .iter()
                .find(|c| c.family == rs.family)
                .and_then(|c| c.table(&table.name))
            {
                *table = c.clone();
            }
        }
    }
    Ok(out)
}

/// The rule sets cut down to `tables` (family and table name); families left with no table
/// are dropped.
pub fn only_tables(rulesets: &[Ruleset], tables: &BTreeSet<(Family, String)>) -> Vec<Ruleset> {
    rulesets
        .iter()
        .map(|rs| {
            let mut part = Ruleset::empty(rs.family);
            part.tables = rs
                .tables
                .iter()
                .filter(|t| tables.contains(&(rs.family, t.name.clone())))
                .cloned()
                .collect();
            part
        })
        .filter(|rs| !rs.tables.is_empty())
        .collect()
}

/// Read only these tables of each family back from the kernel (`Tools::read_tables`: `iptables-save
/// -t`, or on nf_tables `iptables -t TABLE -S`), their rules and policies.
pub fn read_tables(
    tools: &Tools,
    tables: &BTreeSet<(Family, String)>,
) -> Result<Vec<Ruleset>, ApplyError> {
    let mut out = Vec::new();
    for f in Family::ALL {
        let names: Vec<&str> = tables
            .iter()
            .filter(|(tf, _)| *tf == f)
            .map(|(_, t)| t.as_str())
            .collect();
        if names.is_empty() {
            continue;
        }
        out.push(tools.read_tables(f, &names).map_err(|e| ApplyError::Read {
            family: f.label(),
            message: e.to_string(),
        })?);
    }
    Ok(out)
}

/// The checks of `validate`; returns what each trial load read back.
fn check(tools: &Tools, staged: &[Ruleset]) -> Result<Vec<Ruleset>, ApplyError> {
    let mut read = Vec::new();
    for family in Family::ALL {
        let Some(input) = test_input(staged, family) else {
            continue;
        };
        if input.is_empty() {
            continue;
        }
        let text = input.as_str();
        let invalid = |check| {
            move |e: SourceError| classify(e, family, tools.restore_tool(family), check, text)
        };
        tools
            .restore(family, &["--test", "-w"], &input)
            .map_err(invalid("--test"))?;
        let back = trial_load(*tools, family, &input)
            .map_err(invalid("a trial load into an empty network namespace"))?;
        read.extend(back);
    }
    Ok(read)
}

/// Load `input` in a fresh, empty network namespace entered by a thread of its own (the
/// namespace goes when the thread and the tool end), and read it back. `Ok(None)` when no
/// namespace can be made, or the read-back fails (the load itself decides validity).
fn trial_load(tools: Tools, family: Family, input: &str) -> Result<Option<Ruleset>, SourceError> {
    let input = input.to_string();
    std::thread::Builder::new()
        .name("nfscope-trial".into())
        .spawn(move || {
            // SAFETY: unshare with CLONE_NEWNET only moves this thread into a new network
            // namespace; it takes no pointers.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Ok(None);
            }
            tools.restore(family, &["-w"], &input)?;
            Ok(tools.read(family).ok())
        })
        .map_or(Ok(None), |h| h.join().unwrap_or(Ok(None)))
}

fn run_script(tools: &Tools, family: Family, script: &str) -> Result<(), String> {
    tools
        .restore(family, &["--noflush", "-c", "-w"], script)
        .map_err(|e| explain(&e, script))
}

fn name(c: &TableChange) -> String {
    format!("{} {}", c.family.label(), c.table)
}

/// Apply each table change in order, one `restore --noflush` transaction each. When one fails,
/// the tables applied before it are undone (last first) and the error says which table failed
/// and what became of the others.
pub fn apply_changes(tools: &Tools, changes: &[TableChange]) -> Result<(), ApplyError> {
    for (i, change) in changes.iter().enumerate() {
        let Err(why) = run_script(tools, change.family, &change.script) else {
            continue;
        };
        let earlier = &changes[..i];
        let mut undone = Vec::new();
        let mut stuck = Vec::new();
        for prev in earlier.iter().rev() {
            match run_script(tools, prev.family, &prev.undo) {
                Ok(()) => undone.push(name(prev)),
                Err(e) => stuck.push(format!("{} ({e})", name(prev))),
            }
        }
        return Err(ApplyError::NotApplied {
            family: change.family,
            table: change.table.clone(),
            why,
            undone,
            stuck,
        });
    }
    Ok(())
}

/// Read the kernel's rule sets of these families (`iptables-save -c`).
pub fn read_now(tools: &Tools, families: &[Family]) -> Result<Vec<Ruleset>, ApplyError> {
    families
        .iter()
        .map(|&f| {
            tools.read(f).map_err(|e| ApplyError::Read {
                family: f.label(),
                message: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(stderr: &str) -> SourceError {
        SourceError::ToolFailed {
            tool: "iptables-restore".into(),
            status: "1".into(),
            stderr: stderr.into(),
        }
    }

    /// Decisions are made on the kind of failure, never on its words: a tool message that
    /// happens to say "not found" or "hold the new rules" changes nothing.
    #[test]
    fn failures_are_classified_by_type_not_by_words() {
        let input = "*filter\n-A INPUT -s nosuchhost.invalid -j DROP\nCOMMIT\n";
        let e = classify(
            failed("host/network `nosuchhost.invalid' not found\nError occurred at line: 2"),
            Family::V4,
            "iptables-restore".into(),
            "--test",
            input,
        );
        assert!(matches!(e, ApplyError::Invalid { .. }), "{e:?}");
        assert!(!e.untestable());
        let e = classify(
            SourceError::PermissionDenied {
                tool: "iptables-restore".into(),
            },
            Family::V4,
            "iptables-restore".into(),
            "--test",
            input,
        );
        assert!(matches!(e, ApplyError::Permission { .. }) && e.untestable());
        let e = classify(
            SourceError::ToolMissing {
                tool: "iptables-restore".into(),
            },
            Family::V4,
            "iptables-restore".into(),
            "--test",
            input,
        );
        assert!(matches!(e, ApplyError::ToolMissing { .. }) && e.untestable());
        let invalid = ApplyError::Invalid {
            family: "IPv4",
            tool: "iptables-restore".into(),
            check: "--test",
            message: "they hold the new rules".into(),
        };
        assert!(!invalid.holds_new_rules());
        let clean = ApplyError::NotApplied {
            family: Family::V4,
            table: "nat".into(),
            why: "x".into(),
            undone: vec!["IPv4 filter".into()],
            stuck: Vec::new(),
        };
        assert!(!clean.holds_new_rules());
        let stuck = ApplyError::NotApplied {
            family: Family::V4,
            table: "nat".into(),
            why: "x".into(),
            undone: Vec::new(),
            stuck: vec!["IPv4 filter (refused)".into()],
        };
        assert!(stuck.holds_new_rules());
        assert!(
            stuck
                .to_string()
                .contains("hold the new rules: IPv4 filter")
        );
    }

    #[test]
    fn the_failing_line_is_quoted() {
        let err = failed("iptables-restore: line 3 failed");
        let msg = explain(&err, "*filter\n-N A\n-A A -m nosuch\nCOMMIT\n");
        assert_eq!(
            msg,
            "iptables-restore: line 3 failed (line 3 is \"-A A -m nosuch\")"
        );
        let err = failed(
            "iptables-nft-restore v1.8.9 (nf_tables): Chain 'X' does not exist\nError occurred at line: 2\nTry `iptables-restore -h' for more",
        );
        let msg = explain(&err, "*filter\n-A INPUT -j X\nCOMMIT\n");
        assert!(
            msg.contains("Chain 'X' does not exist") && msg.contains("line 2 is \"-A INPUT -j X\""),
            "{msg}"
        );
        assert!(!msg.contains("Try"), "{msg}");
        // No line, or a line beyond the input: the message as it is.
        let err = SourceError::ToolMissing { tool: "x".into() };
        assert!(explain(&err, "").contains("not found"));
        let err = failed("line 0 failed");
        assert_eq!(explain(&err, "a\n"), "line 0 failed");
    }
}
