//! Property tests of edit-mode staging (`edit::stage`, `edit::diff`, `edit::state`), on random
//! operation sequences over a small two-family rule set, with chain names, positions, rule texts
//! and policies drawn from pools that hold both good and bad values:
//!
//! - pushing never panics, and a refused operation changes nothing;
//! - the result always writes and parses back to the same model;
//! - the diff lists exactly the tables whose bare save text differs, and each one, applied as a
//!   patch to the base table's text, gives the result table's text;
//! - a chain that `edited()` leaves out holds in the result what it held in the base (jumps to a
//!   renamed chain aside), and every base chain gone from the result is edited or renamed;
//! - undoing everything gives back the base, and redoing everything the same result again;
//! - unstage and rebase never panic, and agree with replaying the operations from scratch;
//! - a saved staging comes back as the same staging.
//!
//! 256 cases per property by default (set PROPTEST_CASES for more). Failures are not persisted
//! to files: turn a shrunk counter-example into a plain `#[test]` at the bottom instead.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod edit_support;

use edit_support::bare;
use nfscope::edit::ChainRef;
use nfscope::edit::diff::diff;
use nfscope::edit::stage::{Op, Staging};
use nfscope::edit::state::SavedStaging;
use nfscope::ruleset::save::{SaveOptions, write};
use nfscope::ruleset::{Family, Ruleset, parse};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use std::collections::BTreeSet;

/// 256 cases unless PROPTEST_CASES says otherwise (the default config reads it).
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    }
}

const V4: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n[9:900] -A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n*filter\n:INPUT DROP [5:500]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:T - [0:0]\n:U - [0:0]\n[1:10] -A INPUT -i lo -j ACCEPT\n[2:20] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n[3:30] -A INPUT -p tcp -j T\n[4:40] -A T -s 10.0.0.0/8 -g U\n[5:50] -A U -j RETURN\n[6:60] -A FORWARD -j T\nCOMMIT\n";
const V6: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:T - [0:0]\n[7:70] -A INPUT -p ipv6-icmp -j ACCEPT\n-A INPUT -j T\n-A T -c 3 4 -j RETURN\nCOMMIT\n";

fn base() -> Vec<Ruleset> {
    vec![
        parse(V4, Family::V4).unwrap(),
        parse(V6, Family::V6).unwrap(),
    ]
}

/// Another base, as if the kernel moved: a rule added to FORWARD, one gone from INPUT.
fn moved_base() -> Vec<Ruleset> {
    let v4 = V4
        .replace("[2:20] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n", "")
        .replace(
            "[6:60] -A FORWARD -j T\n",
            "-A FORWARD -j T\n-A FORWARD -j DROP\n",
        );
    vec![
        parse(&v4, Family::V4).unwrap(),
        parse(V6, Family::V6).unwrap(),
    ]
}

const CHAINS: &[&str] = &[
    "INPUT",
    "FORWARD",
    "OUTPUT",
    "POSTROUTING",
    "T",
    "U",
    "X",
    "Y",
    "",
    "-bad",
    "ACCEPT",
];
/// Rule texts that stage, and (BAD_RULES) ones that must be refused.
const RULES: &[&str] = &[
    "-j ACCEPT",
    "-p tcp --dport 22 -j ACCEPT",
    "-s 10.0.0.1 -j DROP",
    "-j T",
    "-g U",
    "-j X",
    "-j Y",
    "-m comment --comment \"a b\" -j T",
    "-m comment --comment '-j T' -j U",
    "",
];
const BAD_RULES: &[&str] = &[
    "-m comment --comment \"open",
    "-c 1 2 -j ACCEPT",
    "-j ACCEPT\n-A INPUT -j DROP",
    "trailing \\",
];

/// Mostly chains that exist (so that most ops apply and the next ones build on them), some
/// that do not, and some names that are not names at all.
fn chain_ref() -> impl Strategy<Value = ChainRef> {
    let v4 = select(&["INPUT", "FORWARD", "T", "U", "X", "Y"][..])
        .prop_map(|c| ChainRef::new(Family::V4, "filter", c));
    let v6 = select(&["INPUT", "OUTPUT", "T", "X"][..])
        .prop_map(|c| ChainRef::new(Family::V6, "filter", c));
    let any = (
        select(&[Family::V4, Family::V6][..]),
        select(&["filter", "nat", "raw", "bogus"][..]),
        select(CHAINS),
    )
        .prop_map(|(f, t, c)| ChainRef::new(f, t, c));
    prop_oneof![6 => v4, 2 => v6, 2 => any]
}

fn op() -> impl Strategy<Value = Op> {
    let rule = || prop_oneof![5 => select(RULES), 1 => select(BAD_RULES)].prop_map(str::to_string);
    let pos = || prop_oneof![5 => 1usize..4, 1 => 0usize..8];
    let name = prop_oneof![
        4 => select(&["X", "Y", "V", "T", "U"][..]),
        1 => select(CHAINS),
    ];
    prop_oneof![
        (chain_ref(), rule()).prop_map(|(at, rule)| Op::Append { at, rule }),
        (chain_ref(), pos(), rule()).prop_map(|(at, pos, rule)| Op::Insert {
            above: None,
            at,
            pos,
            rule
        }),
        (chain_ref(), pos(), rule()).prop_map(|(at, pos, rule)| Op::Replace {
            id: None,
            at,
            pos,
            rule
        }),
        (chain_ref(), pos()).prop_map(|(at, pos)| Op::Delete { id: None, at, pos }),
        (chain_ref(), pos(), pos()).prop_map(|(at, from, to)| Op::Move {
            id: None,
            above: None,
            at,
            from,
            to
        }),
        chain_ref().prop_map(|at| Op::NewChain { at }),
        (chain_ref(), name).prop_map(|(at, to)| Op::RenameChain {
            at,
            to: to.to_string()
        }),
        (chain_ref(), any::<bool>()).prop_map(|(at, remove_references)| Op::DeleteChain {
            at,
            remove_references
        }),
        (chain_ref(), select(&["ACCEPT", "DROP", "REJECT", ""][..])).prop_map(|(at, p)| {
            Op::SetPolicy {
                at,
                policy: p.to_string(),
            }
        }),
        chain_ref().prop_map(|at| Op::Flush { at }),
        chain_ref().prop_map(|at| Op::Zero { at }),
    ]
}

/// Push every op; returns the staging and how many were accepted. Checks that a refused op
/// changes nothing.
fn stage(base: Vec<Ruleset>, ops: &[Op]) -> Result<Staging, TestCaseError> {
    let mut s = Staging::new(base);
    for op in ops {
        let before = s.result().to_vec();
        let n = s.ops().len();
        match s.push(op.clone()) {
            Ok(()) => prop_assert_eq!(s.ops().len(), n + 1),
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                prop_assert_eq!(s.ops().len(), n);
                prop_assert_eq!(
                    s.result(),
                    &before[..],
                    "refused {:?} changed the result",
                    op
                );
            }
        }
    }
    Ok(s)
}

/// A chain's policy and its rules as (text, target).
type ChainView = (Option<String>, Vec<(String, String)>);

fn chain_rules(rs: &[Ruleset], at: &ChainRef) -> Option<ChainView> {
    let c = rs
        .iter()
        .find(|r| r.family == at.family)?
        .table(&at.table)?
        .chain(&at.chain)?;
    let rules = c
        .rules
        .iter()
        .map(|r| (r.text.clone(), r.spec.target_name().to_string()))
        .collect();
    Some((c.policy.clone(), rules))
}

fn all_chains(rs: &[Ruleset]) -> Vec<ChainRef> {
    rs.iter()
        .flat_map(|r| {
            r.tables.iter().flat_map(move |t| {
                t.chains
                    .iter()
                    .map(move |c| ChainRef::new(r.family, &t.name, &c.name))
            })
        })
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn staged_results_write_and_read_back(ops in vec(op(), 0..24)) {
        let s = stage(base(), &ops)?;
        for rs in s.result() {
            let text = write(rs, SaveOptions::default());
            let back = parse(&text, rs.family);
            prop_assert!(back.is_ok(), "{:?} in\n{}", back, text);
            prop_assert_eq!(&back.unwrap(), rs, "{}", text);
        }
        for op in s.ops() {
            prop_assert!(!op.describe().contains('\n'));
        }
    }

    #[test]
    fn the_diff_patches_base_into_result(ops in vec(op(), 0..24)) {
        let s = stage(base(), &ops)?;
        let d = diff(s.base(), s.result());
        let mut expected = Vec::new();
        for family in Family::ALL {
            let b = s.base_for(family);
            let r = s.result_for(family);
            let mut names: Vec<String> = Vec::new();
            for t in r.iter().chain(b.iter()).flat_map(|rs| &rs.tables) {
                if !names.contains(&t.name) {
                    names.push(t.name.clone());
                }
            }
            for name in names {
                let old = bare(b.and_then(|rs| rs.table(&name)));
                let new = bare(r.and_then(|rs| rs.table(&name)));
                if old != new {
                    expected.push((family, name, old, new));
                }
            }
        }
        prop_assert_eq!(d.len(), expected.len());
        for (t, (family, name, old, new)) in d.iter().zip(&expected) {
            prop_assert_eq!((t.family, &t.table), (*family, name));
            let patched = edit_support::patch(old, t);
            prop_assert_eq!(patched.as_ref(), Ok(new), "{}", t.hunks_text);
            let joined: String = t.lines.iter().map(|l| format!("{}\n", l.text)).collect();
            prop_assert_eq!(&joined, &t.hunks_text);
        }
    }

    #[test]
    fn edited_covers_every_change(ops in vec(op(), 0..24)) {
        let s = stage(base(), &ops)?;
        let edited = s.edited();
        let renamed_from: BTreeSet<ChainRef> = s.renames().into_iter().map(|(b, _)| b).collect();
        prop_assert!(s.zeroed().is_subset(&edited));
        for (b, to) in s.renames() {
            let now = ChainRef::new(b.family, &b.table, &to);
            prop_assert!(edited.contains(&now), "renamed {} to {} but not edited", b, to);
        }
        let renamed_old: BTreeSet<(Family, String, String)> = s
            .renames()
            .into_iter()
            .map(|(b, _)| (b.family, b.table, b.chain))
            .collect();
        for at in all_chains(s.result()) {
            if edited.contains(&at) {
                continue;
            }
            let now = chain_rules(s.result(), &at);
            let then = chain_rules(s.base(), &at);
            prop_assert!(then.is_some(), "{} is new but not edited", at);
            let ((p1, r1), (p0, r0)) = (now.unwrap(), then.unwrap());
            prop_assert_eq!(p1, p0, "{} changed policy but is not edited", at);
            prop_assert_eq!(r1.len(), r0.len(), "{} changed rules but is not edited", at);
            for ((t1, _), (t0, target0)) in r1.iter().zip(&r0) {
                let jumps_to_renamed =
                    renamed_old.contains(&(at.family, at.table.clone(), target0.clone()));
                prop_assert!(t1 == t0 || jumps_to_renamed, "{}: {:?} became {:?}", at, t0, t1);
            }
        }
        for at in all_chains(s.base()) {
            if chain_rules(s.result(), &at).is_none() {
                prop_assert!(
                    edited.contains(&at) || renamed_from.contains(&at),
                    "{} is gone but neither edited nor renamed", at
                );
            }
        }
    }

    #[test]
    fn undo_everything_gives_the_base_and_redo_the_result(ops in vec(op(), 0..24)) {
        let mut s = stage(base(), &ops)?;
        let result = s.result().to_vec();
        let staged = s.ops().to_vec();
        let mut undone = 0;
        while s.undo().is_some() {
            undone += 1;
        }
        prop_assert_eq!(undone, staged.len());
        prop_assert_eq!(s.result(), s.base());
        prop_assert!(s.edited().is_empty());
        prop_assert!(s.renames().is_empty());
        prop_assert!(s.zeroed().is_empty());
        while s.can_redo() {
            let r = s.redo();
            prop_assert!(matches!(r, Ok(Some(_))), "{:?}", r);
        }
        prop_assert_eq!(s.result(), &result[..]);
        prop_assert_eq!(s.ops(), &staged[..]);
    }

    #[test]
    fn unstage_agrees_with_replaying(ops in vec(op(), 1..16), pick in any::<proptest::sample::Index>()) {
        let mut s = stage(base(), &ops)?;
        if s.is_empty() {
            prop_assert!(s.unstage(0).is_err());
            return Ok(());
        }
        let i = pick.index(s.ops().len());
        let before = s.clone();
        let mut rest = s.ops().to_vec();
        rest.remove(i);
        match s.unstage(i) {
            Ok(()) => {
                let again = stage(base(), &rest)?;
                prop_assert_eq!(again.ops().len(), rest.len());
                prop_assert_eq!(s.result(), again.result());
                prop_assert_eq!(s.edited(), again.edited());
                prop_assert_eq!(s.renames(), again.renames());
            }
            Err(e) => {
                prop_assert!(e.to_string().contains("no longer applies"), "{}", e);
                prop_assert_eq!(s.ops(), before.ops());
                prop_assert_eq!(s.result(), before.result());
            }
        }
        prop_assert!(s.unstage(s.ops().len()).is_err());
    }

    #[test]
    fn rebase_never_panics_and_agrees_with_replaying(ops in vec(op(), 0..16)) {
        let s = stage(base(), &ops)?;
        let same = s.rebase(base());
        prop_assert!(same.is_ok(), "{:?}", same.err());
        let same = same.unwrap();
        prop_assert_eq!(same.result(), s.result());
        match s.rebase(moved_base()) {
            Ok(r) => {
                prop_assert_eq!(r.base(), &moved_base()[..]);
                let replayed = stage(moved_base(), s.ops())?;
                prop_assert_eq!(r.result(), replayed.result());
            }
            Err(e) => prop_assert!(e.to_string().contains("no longer applies"), "{}", e),
        }
        // On nothing at all: ops may apply (known tables are created) or not, never a panic.
        if let Err(e) = s.rebase(Vec::new()) {
            prop_assert!(e.to_string().contains("no longer applies"), "{}", e);
        }
    }

    #[test]
    fn saved_staging_comes_back(ops in vec(op(), 0..16)) {
        let s = stage(base(), &ops)?;
        let saved = SavedStaging::from_staging(&s, "kernel");
        let json = serde_json::to_string(&saved).unwrap();
        let back: SavedStaging = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &saved);
        let again = back.to_staging();
        prop_assert!(again.is_ok(), "{:?}", again.err());
        let again = again.unwrap();
        prop_assert_eq!(again.result(), s.result());
        prop_assert_eq!(again.edited(), s.edited());
        prop_assert_eq!(again.zeroed(), s.zeroed());
    }
}
