//! The whole edit path against a real kernel, as the Changes screen drives it: operations of
//! every kind pushed on a `Staging` over what the kernel holds (both families at once), the
//! staged rules spelt as the kernel prints them (`apply::canonical`), the minimal plan applied,
//! and `iptables-save` then shows exactly the staged result, while rules that stayed kept their
//! counters. Both backends; each in a throwaway network namespace of its own (deleted even on
//! panic), the tools run by a thread inside it. Needs root (skipped otherwise, failed on CI).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{NetNs, have_tools, host, icmp, skip};
use nfscope::edit::ChainRef;
use nfscope::edit::apply::{apply_changes, canonical, canonical_tables, read_now, read_tables};
use nfscope::edit::plan::{chain_lines, conflicts, plan, verify};
use nfscope::edit::stage::{Op, Staging};
use nfscope::edit::tools::Tools;
use nfscope::ruleset::{Counters, Family, Ruleset};
use nfscope::source::kernel::find_tool;
use nfscope::source::{Backend, netns};

fn base_text(f: Family) -> String {
    let icmp = icmp(f);
    format!(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:T - [0:0]\n:U - [0:0]\n:Z - [0:0]\n\
-A INPUT -s {a1} -j ACCEPT\n-A INPUT -s {a2} -j T\n-A INPUT -s {a3} -j U\n\
-A INPUT -i lo -p {icmp} -m comment --comment stays\n-A INPUT -i lo -p {icmp} -j Z\n-A INPUT -s {a4} -j ACCEPT\n\
-A FORWARD -j ACCEPT\n-A OUTPUT -o lo -p {icmp} -j ACCEPT\n-A T -j RETURN\n-A U -j RETURN\n-A Z -j RETURN\nCOMMIT\n",
        a1 = host(f, 1),
        a2 = host(f, 2),
        a3 = host(f, 3),
        a4 = host(f, 4),
    )
}

/// Every kind of operation, as the keys of the Rules screen stage them. Rules are typed the
/// short way (no `-m tcp`, an address without its mask), as people type them.
fn ops(f: Family) -> Vec<Op> {
    let at = |chain: &str| ChainRef::new(f, "filter", chain);
    let bare = match f {
        Family::V4 => "10.0.0.9",
        Family::V6 => "fd00::9",
    };
    vec![
        Op::Insert {
            above: None,
            at: at("INPUT"),
            pos: 1,
            rule: "-p tcp --dport 2222 -j ACCEPT".into(),
        },
        Op::Move {
            id: None,
            above: None,
            at: at("INPUT"),
            from: 3,
            to: 1,
        },
        Op::Replace {
            id: None,
            at: at("INPUT"),
            pos: 3,
            rule: format!("-s {bare} -j DROP"),
        },
        Op::Delete {
            id: None,
            at: at("INPUT"),
            pos: 7,
        },
        Op::NewChain { at: at("NEWC") },
        Op::Append {
            at: at("NEWC"),
            rule: "-j RETURN".into(),
        },
        Op::Append {
            at: at("INPUT"),
            rule: "-j NEWC".into(),
        },
        Op::RenameChain {
            at: at("T"),
            to: "T2".into(),
        },
        Op::DeleteChain {
            at: at("U"),
            remove_references: true,
        },
        Op::SetPolicy {
            at: at("FORWARD"),
            policy: "DROP".into(),
        },
        Op::Flush { at: at("FORWARD") },
        Op::Zero { at: at("Z") },
    ]
}

/// Every chain of every table as `chain_lines` writes it (no counters).
fn shape(rs: &Ruleset) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = rs
        .tables
        .iter()
        .flat_map(|t| {
            t.chains
                .iter()
                .map(move |c| (format!("{}/{}", t.name, c.name), chain_lines(Some(c))))
        })
        .collect();
    out.sort();
    out
}

fn counters(rs: &Ruleset, chain: &str, needle: &str) -> Counters {
    rs.table("filter")
        .and_then(|t| t.chain(chain))
        .and_then(|c| c.rules.iter().find(|r| r.text.contains(needle)))
        .and_then(|r| r.counters)
        .unwrap_or_else(|| panic!("no rule {needle:?} with counters in {chain}"))
}

fn every_op_through_staging(backend: Backend) {
    if !have_tools(backend) {
        return;
    }
    if find_tool("ping").is_none() {
        skip::<()>("needs ping (iputils-ping)");
        return;
    }
    let Some(ns) = NetNs::for_test(&format!("stagek{}", backend.label())) else {
        return;
    };
    for f in Family::ALL {
        ns.restore(f, backend, &base_text(f));
        let to = if f == Family::V4 { "127.0.0.1" } else { "::1" };
        let out = ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", to]);
        assert!(out.status.success(), "ping {to}");
    }
    let tools = Tools {
        backend: Some(backend),
    };
    let name = ns.name().to_string();
    let inside = move |f: Box<dyn FnOnce() -> Result<(), String> + Send>| {
        netns::run_in(&name, f).expect("a thread can enter the test namespace")
    };

    let result = inside(Box::new(move || {
        let base = read_now(&tools, &Family::ALL).map_err(|e| e.to_string())?;
        let mut staging = Staging::new(base.clone());
        for f in Family::ALL {
            for op in ops(f) {
                let what = op.describe();
                staging
                    .push(op)
                    .map_err(|e| format!("staging {what}: {e}"))?;
            }
        }
        let edited = staging.edited();
        let renames = staging.renames();
        let staged = canonical(&tools, staging.result()).map_err(|e| e.to_string())?;
        let now = read_now(&tools, &Family::ALL).map_err(|e| e.to_string())?;
        let refused = conflicts(&base, &now, &edited, &renames);
        if !refused.is_empty() {
            return Err(format!("unexpected conflicts: {}", refused.len()));
        }
        let changes = plan(&now, &staged, &edited, &renames, &staging.zeroed());
        apply_changes(&tools, &changes).map_err(|e| e.to_string())?;
        let after = read_now(&tools, &Family::ALL).map_err(|e| e.to_string())?;
        verify(&after, &staged, &edited).map_err(|d| d.join("\n"))?;
        // What edit::commit does: only the changed tables checked and read back, to the same
        // answer.
        let changed: std::collections::BTreeSet<(Family, String)> =
            edited.iter().map(|c| (c.family, c.table.clone())).collect();
        let part = read_tables(&tools, &changed).map_err(|e| e.to_string())?;
        assert!(
            part.iter()
                .all(|rs| rs.tables.len() == 1 && rs.tables[0].name == "filter")
        );
        verify(&part, &staged, &edited).map_err(|d| d.join("\n"))?;
        let by_table =
            canonical_tables(&tools, staging.result(), &changed).map_err(|e| e.to_string())?;
        assert_eq!(by_table, staged, "canonical_tables agrees with canonical");
        for f in Family::ALL {
            let pick = |rs: &[Ruleset]| rs.iter().find(|r| r.family == f).cloned().unwrap();
            let (before, staged, after) = (pick(&base), pick(&staged), pick(&after));
            // Exactly the staged result, every table and chain.
            assert_eq!(shape(&after), shape(&staged), "{f:?} on {backend:?}");
            let input: Vec<String> =
                chain_lines(after.table("filter").and_then(|t| t.chain("INPUT")));
            assert!(
                input.iter().any(|l| l.contains("-m tcp --dport 2222")),
                "{input:#?}"
            );
            assert!(input.iter().any(|l| l.contains("-j T2")), "{input:#?}");
            // The rule that stayed in an edited chain, and one in a chain nobody edited, kept
            // their counters (pings made them move); the zeroed chain reads 0.
            for (chain, needle) in [("INPUT", "stays"), ("OUTPUT", "-o lo")] {
                let was = counters(&before, chain, needle);
                assert!(was.packets > 0, "{f:?} {chain}: the pings did not count");
                assert_eq!(
                    counters(&after, chain, needle),
                    was,
                    "{f:?} {chain} {needle}"
                );
            }
            assert_eq!(
                counters(&after, "Z", "RETURN"),
                Counters::new(0, 0),
                "{f:?}"
            );
        }
        Ok(())
    }));
    if let Err(e) = result {
        panic!("{backend:?}: {e}");
    }
}

#[test]
fn every_kind_of_staged_op_commits_exactly_nft() {
    every_op_through_staging(Backend::Nft);
}

#[test]
fn every_kind_of_staged_op_commits_exactly_legacy() {
    every_op_through_staging(Backend::Legacy);
}
