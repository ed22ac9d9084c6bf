//! The tracer against the case table in tests/common/trace_cases.rs: for every packet, the
//! verdicts and the deciding rule of every path (table, chain, rule number, or the policy), and
//! the headers after NAT and marks. The rule sets are in tests/data/trace/.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

#[path = "common/trace_cases.rs"]
mod cases;

use cases::{CASES, Case, packet};
use nfscope::ruleset::Ruleset;
use nfscope::trace::{Path, Step, StepKind, Trace, Tracer};
use std::collections::BTreeSet;

/// `filter TCP 1` or `filter INPUT policy`.
fn place(s: &Step) -> String {
    let rule = s.rule.map_or("policy".to_string(), |n| n.to_string());
    format!(
        "{} {} {rule}",
        s.table.map_or("-", |t| t.name()),
        s.chain.as_deref().unwrap_or("-")
    )
}

fn outcome(p: &Path) -> String {
    match p.decider() {
        Some(s) => format!("{} {}", p.verdict, place(s)),
        None => format!("{} (no decider)", p.verdict),
    }
}

fn header(p: &Path, field: &str) -> String {
    let h = &p.headers;
    match field {
        "src" => h.src.clone(),
        "dst" => h.dst.clone(),
        "sport" => h.sport.clone().unwrap_or_default(),
        "dport" => h.dport.clone().unwrap_or_default(),
        "mark" => h.mark.clone(),
        "state" => h.state.clone(),
        _ => panic!("no header {field}"),
    }
}

fn run(c: &Case, rs: &Ruleset) -> Trace {
    Tracer::new(rs).trace(&packet(c.packet), &c.set.options())
}

/// What is wrong with a case's trace, if anything.
fn check(c: &Case, t: &Trace) -> Option<String> {
    let got: BTreeSet<String> = t.paths.iter().map(outcome).collect();
    let want: BTreeSet<String> = c.expect.iter().map(|s| s.to_string()).collect();
    let mut wrong = Vec::new();
    if got != want {
        wrong.push(format!("got {got:?}, want {want:?}"));
    }
    if t.unexplored != 0 {
        wrong.push(format!("{} branches not followed", t.unexplored));
    }
    for a in c.after {
        let (field, value) = a.split_once('=').expect("field=value");
        for p in &t.paths {
            let v = header(p, field);
            if v != value {
                wrong.push(format!("path {}: {field} is {v}, want {value}", p.id + 1));
            }
        }
    }
    (!wrong.is_empty()).then(|| {
        format!(
            "{} ({}: {}): {}\n  summary: {}",
            c.name,
            c.set.file,
            c.packet,
            wrong.join("; "),
            t.summary()
        )
    })
}

#[test]
fn every_case_has_its_verdicts_and_deciding_rules() {
    assert!(CASES.len() >= 40, "only {} cases", CASES.len());
    let mut rulesets: Vec<(&str, Ruleset)> = Vec::new();
    let mut failures = Vec::new();
    for c in CASES {
        if !rulesets.iter().any(|(f, _)| *f == c.set.file) {
            rulesets.push((c.set.file, c.set.ruleset()));
        }
        let rs = &rulesets
            .iter()
            .find(|(f, _)| *f == c.set.file)
            .expect("loaded")
            .1;
        if let Some(f) = check(c, &run(c, rs)) {
            failures.push(f);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn the_cases_cover_what_the_issue_lists() {
    let with = |f: &dyn Fn(&Case) -> bool| CASES.iter().filter(|c| f(c)).count();
    assert!(with(&|c| c.expect.len() > 1) >= 5, "unknown matches");
    assert!(with(&|c| c.set.file.contains("ipv6")) >= 5, "IPv6");
    assert!(
        with(&|c| c.after.iter().any(|a| a.starts_with("dst="))) >= 4,
        "DNAT"
    );
    assert!(with(&|c| c.packet.contains(" local")) >= 5, "local packets");
    assert!(with(&|c| c.kernel) >= 8, "kernel cases");
    for set in [
        "arch-host",
        "blfs-desktop",
        "blfs-router",
        "nat-gateway",
        "ipv6-host",
    ] {
        assert!(with(&|c| c.set.file.starts_with(set)) >= 5, "{set}");
    }
}

/// The summary names the match the answer hangs on, in the rule's words.
#[test]
fn an_unknown_match_is_named_in_the_verdict() {
    let c = &CASES[0];
    let t = run(c, &c.set.ruleset());
    assert_eq!(
        t.summary(),
        "REJECT or ACCEPT (unknown: rule 1 of chain TCP (-m recent --update --seconds 60 --name TCP-PORTSCAN --mask 255.255.255.255 --rsource))"
    );
    assert_eq!(t.certain(), None);
}

/// Every step names a place in the rule set that exists, so a screen can jump to it.
#[test]
fn every_step_points_into_the_rule_set() {
    for c in CASES {
        let rs = c.set.ruleset();
        for p in &run(c, &rs).paths {
            for s in &p.steps {
                assert_eq!(s.family, c.set.family);
                let (Some(t), Some(chain)) = (s.table, s.chain.as_deref()) else {
                    assert!(
                        matches!(s.kind, StepKind::Routing { .. } | StepKind::Skip { .. }),
                        "{}: {s:?}",
                        c.name
                    );
                    continue;
                };
                let ch = rs
                    .table(t.name())
                    .and_then(|tb| tb.chain(chain))
                    .unwrap_or_else(|| panic!("{}: no chain {t} {chain}", c.name));
                if let Some(i) = s.rule_index() {
                    assert!(i < ch.rules.len(), "{}: {s:?}", c.name);
                }
            }
        }
    }
}
