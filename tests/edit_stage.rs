//! Staging on real dumps (tests/data: every table of both families, and a kube-proxy layout):
//! renaming and deleting every user chain keeps the rule set whole (references renamed or
//! removed, written and read back the same), edited() names exactly what changed, undo gives
//! the base back, the diff shows only the changed lines, and the state file carries it all,
//! including counters above 2^32 and comments with quotes. Also a kube-proxy-sized rule set, to
//! keep staging, undo and the diff from going quadratic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod edit_support;

use nfscope::edit::ChainRef;
use nfscope::edit::diff::{DiffKind, diff};
use nfscope::edit::stage::{Op, Staging};
use nfscope::edit::state::{self, SavedStaging};
use nfscope::ruleset::save::{SaveOptions, write};
use nfscope::ruleset::synth::kube_proxy;
use nfscope::ruleset::{Family, Ruleset, parse};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

fn data(name: &str, family: Family) -> Ruleset {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    parse(&text, family).unwrap()
}

fn dumps() -> Vec<Vec<Ruleset>> {
    vec![
        vec![
            data("all-tables-v4.rules", Family::V4),
            data("all-tables-v6.rules", Family::V6),
        ],
        vec![data("kube-proxy-sample.rules", Family::V4)],
    ]
}

/// Every user chain of a rule set, with how many rules of its table jump or go to it from
/// other chains.
fn user_chains(sets: &[Ruleset]) -> Vec<(ChainRef, usize)> {
    let mut out = Vec::new();
    for rs in sets {
        for t in &rs.tables {
            let mut from_others: HashMap<&str, usize> = HashMap::new();
            for c in &t.chains {
                for r in &c.rules {
                    let target = r.spec.target_name();
                    if target != c.name {
                        *from_others.entry(target).or_default() += 1;
                    }
                }
            }
            for c in t.chains.iter().filter(|c| !c.is_builtin()) {
                let n = from_others.get(c.name.as_str()).copied().unwrap_or(0);
                out.push((ChainRef::new(rs.family, &t.name, &c.name), n));
            }
        }
    }
    out
}

fn targets(sets: &[Ruleset], family: Family, table: &str, name: &str) -> usize {
    sets.iter()
        .filter(|r| r.family == family)
        .filter_map(|r| r.table(table))
        .flat_map(|t| &t.chains)
        .flat_map(|c| &c.rules)
        .filter(|r| r.spec.target_name() == name)
        .count()
}

/// Every table diff, applied to the base table's bare text, gives the result table's.
fn diff_patches(base: &[Ruleset], result: &[Ruleset]) {
    let bare = |sets: &[Ruleset], f: Family, table: &str| {
        edit_support::bare(
            sets.iter()
                .find(|r| r.family == f)
                .and_then(|r| r.table(table)),
        )
    };
    for d in diff(base, result) {
        let old = bare(base, d.family, &d.table);
        let new = bare(result, d.family, &d.table);
        assert_eq!(
            edit_support::patch(&old, &d).as_ref(),
            Ok(&new),
            "{}",
            d.hunks_text
        );
    }
}

fn reads_back(sets: &[Ruleset]) {
    for rs in sets {
        let text = write(rs, SaveOptions::default());
        assert_eq!(&parse(&text, rs.family).unwrap(), rs, "{text}");
    }
}

#[test]
fn renaming_every_user_chain_renames_its_references() {
    for base in dumps() {
        let chains = user_chains(&base);
        assert!(!chains.is_empty());
        let mut s = Staging::new(base.clone());
        for (i, (at, _)) in chains.iter().enumerate() {
            let before = targets(s.result(), at.family, &at.table, &at.chain);
            let to = format!("renamed-{i}");
            s.push(Op::RenameChain {
                at: at.clone(),
                to: to.clone(),
            })
            .unwrap();
            assert_eq!(targets(s.result(), at.family, &at.table, &at.chain), 0);
            assert_eq!(targets(s.result(), at.family, &at.table, &to), before);
        }
        reads_back(s.result());
        diff_patches(s.base(), s.result());
        // Only the renamed chains are edited: the chains that jump to them are not.
        let expect: BTreeSet<ChainRef> = chains
            .iter()
            .enumerate()
            .map(|(i, (at, _))| ChainRef::new(at.family, &at.table, &format!("renamed-{i}")))
            .collect();
        assert_eq!(s.edited(), expect);
        assert_eq!(s.renames().len(), chains.len());
        while s.undo().is_some() {}
        assert_eq!(s.result(), &base[..]);
    }
}

#[test]
fn deleting_every_user_chain_with_its_references() {
    for base in dumps() {
        let chains = user_chains(&base);
        let mut s = Staging::new(base.clone());
        for (at, from_others) in &chains {
            let refused = s.push(Op::DeleteChain {
                at: at.clone(),
                remove_references: false,
            });
            let still = targets(s.result(), at.family, &at.table, &at.chain);
            match refused {
                Ok(()) => assert_eq!(still, 0, "{at} deleted while referenced"),
                Err(e) => {
                    assert!(*from_others > 0, "{at}: {e}");
                    assert!(e.to_string().contains(&at.to_string()), "{e}");
                    s.push(Op::DeleteChain {
                        at: at.clone(),
                        remove_references: true,
                    })
                    .unwrap();
                    assert_eq!(targets(s.result(), at.family, &at.table, &at.chain), 0);
                }
            }
        }
        reads_back(s.result());
        diff_patches(s.base(), s.result());
        for rs in s.result() {
            assert!(
                rs.tables
                    .iter()
                    .flat_map(|t| &t.chains)
                    .all(|c| c.is_builtin())
            );
        }
        let edited = s.edited();
        for (at, _) in &chains {
            assert!(edited.contains(at), "{at}");
        }
        // Every table that lost a chain shows in the diff, and only removals.
        let d = diff(s.base(), s.result());
        assert!(!d.is_empty());
        for t in &d {
            assert!(
                t.lines.iter().all(|l| l.kind != DiffKind::Added),
                "{}",
                t.hunks_text
            );
        }
        while s.undo().is_some() {}
        assert_eq!(s.result(), &base[..]);
        assert!(s.edited().is_empty());
    }
}

#[test]
fn the_diff_shows_only_what_changed() {
    let base = dumps().remove(0);
    let mut s = Staging::new(base);
    let at = ChainRef::new(Family::V6, "filter", "INPUT");
    s.push(Op::Insert {
        above: None,
        at: at.clone(),
        pos: 1,
        rule: "-s 2001:db8::1/128 -j DROP".into(),
    })
    .unwrap();
    s.push(Op::Zero {
        at: ChainRef::new(Family::V4, "mangle", "PREROUTING"),
    })
    .unwrap();
    let d = diff(s.base(), s.result());
    assert_eq!(d.len(), 1, "zeroing alone changes no save text");
    assert_eq!((d[0].family, d[0].table.as_str()), (Family::V6, "filter"));
    let changed: Vec<&str> = d[0]
        .lines
        .iter()
        .filter(|l| matches!(l.kind, DiffKind::Added | DiffKind::Removed))
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(changed, ["+-A INPUT -s 2001:db8::1/128 -j DROP"]);
    // No counters: no rule has a [pkts:bytes] prefix, and every policy shows [0:0].
    for l in d[0].hunks_text.lines().skip(3) {
        let line = &l[1..];
        assert!(!line.starts_with('['), "{l}");
        assert!(!line.starts_with(':') || line.ends_with("[0:0]"), "{l}");
    }
    let edited = s.edited();
    assert!(edited.contains(&at));
    assert!(edited.contains(&ChainRef::new(Family::V4, "mangle", "PREROUTING")));
    assert_eq!(edited.len(), 2);
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_state_file_carries_real_dumps() {
    let dir = TempDir(std::env::temp_dir().join(format!(
        "nfscope-edit-stage-{}-{:?}",
        std::process::id(),
        Instant::now()
    )));
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("staging.json");
    for base in dumps() {
        let mut s = Staging::new(base.clone());
        for (i, (at, _)) in user_chains(&base).iter().enumerate().take(3) {
            s.push(Op::RenameChain {
                at: at.clone(),
                to: format!("n{i}"),
            })
            .unwrap();
        }
        state::save(&path, &SavedStaging::from_staging(&s, "kernel")).unwrap();
        let back = state::load(&path).unwrap().unwrap().to_staging().unwrap();
        assert_eq!(back.base(), s.base());
        assert_eq!(back.result(), s.result());
        assert_eq!(back.edited(), s.edited());
        assert!(state::moved(s.base(), back.base()).is_empty());
    }
    state::clear(&path).unwrap();
    assert_eq!(state::load(&path).unwrap(), None);
}

#[test]
fn a_kube_proxy_sized_rule_set_stays_quick() {
    let base = vec![parse(&kube_proxy(20_000), Family::V4).unwrap()];
    let rules = base[0].rule_count();
    assert!(rules >= 20_000, "{rules}");
    let chains = user_chains(&base);
    let started = Instant::now();
    let mut s = Staging::new(base.clone());
    for (i, (at, _)) in chains.iter().enumerate().take(20) {
        s.push(Op::RenameChain {
            at: at.clone(),
            to: format!("R{i}"),
        })
        .unwrap();
        s.push(Op::Insert {
            above: None,
            at: ChainRef::new(at.family, &at.table, &format!("R{i}")),
            pos: 1,
            rule: "-j RETURN".into(),
        })
        .unwrap();
    }
    assert_eq!(s.edited().len(), 20);
    for _ in 0..5 {
        s.undo();
    }
    // The insert into the first renamed chain goes; the rename it needed stays.
    s.unstage(1).unwrap();
    let d = diff(s.base(), s.result());
    assert!(!d.is_empty());
    // KUBE-MARK-MASQ was renamed: each of its thousands of references is a changed line.
    let changed = d
        .iter()
        .flat_map(|t| &t.lines)
        .filter(|l| l.kind == DiffKind::Added)
        .count();
    assert!(changed > 7000, "{changed}");
    diff_patches(s.base(), s.result());
    // Deleting it instead, with its thousands of references: every chain that lost a rule is
    // edited, and the kernel "moved" in each of them.
    let mut s = Staging::new(base);
    let masq = ChainRef::new(Family::V4, "nat", "KUBE-MARK-MASQ");
    let e = s
        .push(Op::DeleteChain {
            at: masq.clone(),
            remove_references: false,
        })
        .unwrap_err()
        .to_string();
    assert!(e.len() < 400 && e.contains("more"), "{e}");
    s.push(Op::DeleteChain {
        at: masq,
        remove_references: true,
    })
    .unwrap();
    let edited = s.edited();
    assert!(edited.len() > 7000, "{}", edited.len());
    assert_eq!(state::moved(s.base(), s.result()).len(), edited.len());
    diff_patches(s.base(), s.result());
    // Generous for a debug build on a busy machine; quadratic work would take minutes.
    let took = started.elapsed();
    assert!(took.as_secs() < 60, "{took:?}");
}
