//! Committing staged edits to a real kernel, on both backends and both families, each test in
//! a throwaway network namespace of its own (`NetNs`, deleted even on panic): plan + apply turn
//! the kernel into exactly the staged result while rules that stay keep their counters; a
//! rule another program adds meanwhile is kept, or refuses the commit when it lands in an
//! edited chain; an invalid rule never reaches the kernel; a failing later table undoes the
//! earlier ones. The commit code runs on a thread that entered the namespace
//! (`netns::run_in`), so the tools it starts act there and never on this machine's rule set.
//! Needs root (skipped otherwise, failed under CI=true).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{NetNs, have_tools, host as addr, icmp, skip};
use nfscope::edit::apply::{ApplyError, apply_changes, read_now, read_tables, validate};
use nfscope::edit::plan::{chain_lines, changed_chains, conflicts, plan, verify};
use nfscope::edit::tools::Tools;
use nfscope::edit::{ChainRef, TableChange};
use nfscope::ruleset::{Chain, Counters, Family, Rule, Ruleset};
use nfscope::source::kernel::find_tool;
use nfscope::source::{Backend, netns};
use std::collections::{BTreeMap, BTreeSet};

/// The base: rules with counters given on load (loaded as 0 by ip6tables-nft-restore 1.8.9),
/// and rules that the pings below make count on every backend.
fn base_text(f: Family) -> String {
    let a = |n| addr(f, n);
    let icmp = icmp(f);
    format!(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:T - [0:0]\n:U - [0:0]\n:Z - [0:0]\n\
[1:10] -A INPUT -s {} -j ACCEPT\n[2:20] -A INPUT -s {} -j ACCEPT\n[3:30] -A INPUT -s {} -j T\n\
[4:40] -A INPUT -s {} -j U\n-A INPUT -i lo -p {icmp} -m comment --comment moves\n-A INPUT -i lo -p {icmp} -j Z\n\
[6:60] -A FORWARD -j DROP\n[7:70] -A FORWARD -j ACCEPT\n-A OUTPUT -o lo -p {icmp} -j ACCEPT\n\
[8:80] -A T -j RETURN\n[9:90] -A U -j RETURN\n-A Z -j RETURN\nCOMMIT\n\
*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
[11:110] -A OUTPUT -s {} -j ACCEPT\nCOMMIT\n",
        a(1),
        a(2),
        a(3),
        a(4),
        a(11)
    )
}

fn tools(backend: Backend) -> Tools {
    Tools {
        backend: Some(backend),
    }
}

/// Run `f` on a thread inside the namespace.
fn inside<T: Send + 'static>(ns: &NetNs, f: impl FnOnce() -> T + Send + 'static) -> T {
    netns::run_in(ns.name(), f).expect("a thread can enter the test namespace")
}

fn read(ns: &NetNs, backend: Backend, family: Family) -> Ruleset {
    inside(ns, move || read_now(&tools(backend), &[family]))
        .expect("the rule set reads")
        .remove(0)
}

/// Pings on the namespace's loopback: the ICMP rules count, whatever the backend.
fn ping(ns: &NetNs, family: Family) {
    let to = match family {
        Family::V4 => "127.0.0.1",
        Family::V6 => "::1",
    };
    let out = ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", to]);
    assert!(
        out.status.success(),
        "ping {to}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A namespace with the base loaded and some traffic counted, or `None` (skipped).
fn setup(test: &str, backend: Backend) -> Option<NetNs> {
    if !have_tools(backend) {
        return None;
    }
    if find_tool("ping").is_none() {
        return skip("needs ping (iputils-ping)");
    }
    let ns = NetNs::for_test(&format!("{test}{}", backend.label()))?;
    for f in Family::ALL {
        ns.restore(f, backend, &base_text(f));
        ping(&ns, f);
    }
    Some(ns)
}

fn chain_mut<'a>(rs: &'a mut Ruleset, table: &str, chain: &str) -> &'a mut Chain {
    rs.table_mut(table)
        .and_then(|t| t.chains.iter_mut().find(|c| c.name == chain))
        .unwrap_or_else(|| panic!("no chain {table}/{chain}"))
}

fn chain<'a>(rs: &'a Ruleset, table: &str, chain: &str) -> &'a Chain {
    rs.table(table)
        .and_then(|t| t.chain(chain))
        .unwrap_or_else(|| panic!("no chain {table}/{chain}"))
}

fn new_rule(text: &str) -> Rule {
    Rule::from_text(text, None).expect("a test rule parses")
}

/// A staged result, as the staging module would describe it.
struct Staged {
    result: Ruleset,
    /// Result names.
    edited: BTreeSet<ChainRef>,
    renames: Vec<(ChainRef, String)>,
    zeroed: BTreeSet<ChainRef>,
}

/// Every kind of staged operation on the base, as the staging module would leave it: insert
/// at 1, move rule 5 to the top, replace rule 2, delete the jump to U and chain U, append a jump to a
/// new chain, rename T to T2 (its reference follows), policy and flush of FORWARD, zero Z.
/// Returns the result, the edited chains (result names), the renames and the zeroed chains.
fn stage_every_op(base: &Ruleset) -> Staged {
    let f = base.family;
    let mut s = base.clone();
    let input = chain_mut(&mut s, "filter", "INPUT");
    let moved = input.rules.remove(4);
    input.rules.remove(3); // the jump to U
    input.rules[1] = new_rule(&format!("-s {} -j ACCEPT", addr(f, 9)));
    input
        .rules
        .insert(0, new_rule("-p tcp -m tcp --dport 22 -j ACCEPT"));
    input.rules.insert(0, moved);
    input.rules.push(new_rule("-j NEW"));
    // The jump to T now names T2.
    let r = input
        .rules
        .iter_mut()
        .find(|r| r.text.ends_with("-j T"))
        .expect("the jump to T");
    *r = Rule {
        counters: r.counters,
        ..new_rule(&r.text.replace("-j T", "-j T2"))
    };
    let fwd = chain_mut(&mut s, "filter", "FORWARD");
    fwd.rules.clear();
    fwd.policy = Some("DROP".into());
    chain_mut(&mut s, "filter", "T").name = "T2".into();
    for r in &mut chain_mut(&mut s, "filter", "Z").rules {
        r.counters = Some(Counters::default());
    }
    let t = s.table_mut("filter").expect("filter");
    t.chains.retain(|c| c.name != "U");
    t.chains.push(Chain {
        name: "NEW".into(),
        policy: None,
        counters: Counters::default(),
        rules: vec![new_rule("-j RETURN")],
    });
    let at = |c: &str| ChainRef::new(f, "filter", c);
    let edited = ["INPUT", "FORWARD", "NEW", "T2", "U", "Z"].map(at).into();
    Staged {
        result: s,
        edited,
        renames: vec![(at("T"), "T2".into())],
        zeroed: [at("Z")].into(),
    }
}

/// Each chain's lines (`:NAME POLICY`, then its rules), without counters, by table and chain:
/// what "the same rule set" means whatever order a backend lists chains in.
fn shape(rs: &Ruleset) -> BTreeMap<(String, String), Vec<String>> {
    rs.tables
        .iter()
        .flat_map(|t| {
            t.chains
                .iter()
                .map(|c| ((t.name.clone(), c.name.clone()), chain_lines(Some(c))))
        })
        .collect()
}

fn counters_of(rs: &Ruleset, table: &str, ch: &str, needle: &str) -> Counters {
    chain(rs, table, ch)
        .rules
        .iter()
        .find(|r| r.text.contains(needle))
        .and_then(|r| r.counters)
        .unwrap_or_else(|| panic!("no rule {needle:?} with counters in {table}/{ch}"))
}

/// Plan and apply on a thread inside the namespace.
fn commit(ns: &NetNs, backend: Backend, changes: Vec<TableChange>) -> Result<(), ApplyError> {
    inside(ns, move || apply_changes(&tools(backend), &changes))
}

/// A plan of every kind of op from what the kernel holds now, after `meanwhile` ran (another
/// program's change) between the read of the base and the re-read: no conflict expected.
struct Planned {
    staged: Staged,
    now: Ruleset,
    changes: Vec<TableChange>,
}

fn plan_every_op(ns: &NetNs, backend: Backend, f: Family, meanwhile: impl FnOnce()) -> Planned {
    let base = read(ns, backend, f);
    let staged = stage_every_op(&base);
    meanwhile();
    let now = read(ns, backend, f);
    let now_all = std::slice::from_ref(&now);
    let base_all = std::slice::from_ref(&base);
    assert!(conflicts(base_all, now_all, &staged.edited, &staged.renames).is_empty());
    let result = std::slice::from_ref(&staged.result);
    let changes = plan(
        now_all,
        result,
        &staged.edited,
        &staged.renames,
        &staged.zeroed,
    );
    Planned {
        staged,
        now,
        changes,
    }
}

fn every_op_commits_the_staged_result(backend: Backend) {
    let Some(ns) = setup("everyop", backend) else {
        return;
    };
    for f in Family::ALL {
        let label = format!("{} {}", backend.label(), f.label());
        let Planned {
            staged,
            now,
            changes,
        } = plan_every_op(&ns, backend, f, || {});
        let result = vec![staged.result.clone()];
        let t = tools(backend);
        let st = result.clone();
        inside(&ns, move || validate(&t, &st)).expect("the staged result is valid");
        assert_eq!(changes.len(), 1, "{label}: only filter changes");
        commit(&ns, backend, changes.clone())
            .unwrap_or_else(|e| panic!("{label}: {e}\n{}", changes[0].script));
        let after = read(&ns, backend, f);
        assert_eq!(shape(&after), shape(&result[0]), "{label}");
        let after_all = std::slice::from_ref(&after);
        assert_eq!(verify(after_all, &result, &staged.edited), Ok(()));
        // Rules that stayed kept their counters: those loaded, and those the pings moved.
        let now = &now;
        for (table, ch, needle) in [
            ("filter", "INPUT", addr(f, 1)),
            ("filter", "INPUT", "-j Z".to_string()),
            ("filter", "INPUT", "-j T2".to_string()),
            ("filter", "T2", "RETURN".to_string()),
            ("filter", "OUTPUT", "-o lo".to_string()),
            ("mangle", "OUTPUT", addr(f, 11)),
        ] {
            let was = counters_of(
                now,
                table,
                if ch == "T2" { "T" } else { ch },
                &needle.replace("-j T2", "-j T"),
            );
            assert_eq!(
                counters_of(&after, table, ch, &needle),
                was,
                "{label}: {table}/{ch} {needle}"
            );
        }
        let pinged = counters_of(now, "filter", "INPUT", "-j Z");
        assert!(pinged.packets >= 3, "{label}: the pings were counted");
        // The rule that moved (the pings made it count) was re-inserted with its counters,
        // except where the tool drops them: ip6tables-nft 1.8.9 ignores `-c`.
        let moved = counters_of(&after, "filter", "INPUT", "moves");
        let expected = counters_of(now, "filter", "INPUT", "moves");
        assert!(expected.packets >= 3, "{label}: the pings were counted");
        if (backend, f) == (Backend::Nft, Family::V6) {
            assert_eq!(moved, Counters::default(), "{label}: is -c honoured now?");
        } else {
            assert_eq!(moved, expected, "{label}: moved rule");
        }
        // The zeroed chain counts from zero.
        assert_eq!(
            counters_of(&after, "filter", "Z", "RETURN"),
            Counters::default()
        );
    }
}

#[test]
fn every_kind_of_op_commits_exactly_the_staged_result_nft() {
    every_op_commits_the_staged_result(Backend::Nft);
}

#[test]
fn every_kind_of_op_commits_exactly_the_staged_result_legacy() {
    every_op_commits_the_staged_result(Backend::Legacy);
}

fn concurrent_changes(backend: Backend) {
    let Some(ns) = setup("concurrent", backend) else {
        return;
    };
    for f in Family::ALL {
        let label = format!("{} {}", backend.label(), f.label());
        // Another program adds a rule to a chain the user did not edit: the commit keeps it.
        let other = addr(f, 77);
        let Planned {
            staged, changes, ..
        } = plan_every_op(&ns, backend, f, || {
            ns.iptables(f, backend, &["-A", "OUTPUT", "-s", &other, "-j", "ACCEPT"]);
        });
        let staged = staged.result;
        commit(&ns, backend, changes).unwrap_or_else(|e| panic!("{label}: {e}"));
        let after = read(&ns, backend, f);
        let mut expected = staged.clone();
        chain_mut(&mut expected, "filter", "OUTPUT")
            .rules
            .push(new_rule(&format!("-s {other} -j ACCEPT")));
        assert_eq!(shape(&after), shape(&expected), "{label}");
        // Another change staged on that, while someone adds to INPUT, which it edits: the
        // commit is refused, and says which chain.
        let base = after;
        let mut staged2 = base.clone();
        chain_mut(&mut staged2, "filter", "INPUT").policy = Some("DROP".into());
        let edited2 = changed_chains(std::slice::from_ref(&base), &[staged2]);
        assert_eq!(edited2, [ChainRef::new(f, "filter", "INPUT")].into());
        ns.iptables(
            f,
            backend,
            &["-I", "INPUT", "-s", &addr(f, 78), "-j", "DROP"],
        );
        let now = vec![read(&ns, backend, f)];
        let found = conflicts(&[base], &now, &edited2, &[]);
        assert_eq!(found.len(), 1, "{label}: {found:?}");
        let msg = found[0].describe();
        assert!(
            msg.contains(&format!("{} filter/INPUT changed", f.label())) && msg.contains("refused"),
            "{label}: {msg}"
        );
        assert!(found[0].now.iter().any(|l| l.contains(&addr(f, 78))));
    }
}

#[test]
fn changes_made_meanwhile_are_kept_or_refuse_the_commit_nft() {
    concurrent_changes(Backend::Nft);
}

#[test]
fn changes_made_meanwhile_are_kept_or_refuse_the_commit_legacy() {
    concurrent_changes(Backend::Legacy);
}

/// The save text without its `#` lines (they carry the time).
fn save_text(ns: &NetNs, backend: Backend, f: Family) -> String {
    ns.save(f, backend)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn invalid_rules(backend: Backend) {
    let Some(ns) = setup("invalid", backend) else {
        return;
    };
    for f in Family::ALL {
        for bad in ["-m nosuchmodule --foo 1 -j ACCEPT", "-j NOSUCHCHAIN"] {
            let label = format!("{} {} {bad}", backend.label(), f.label());
            let before: Vec<String> = Family::ALL
                .iter()
                .map(|&g| save_text(&ns, backend, g))
                .collect();
            let base = read(&ns, backend, f);
            let mut staged = base.clone();
            chain_mut(&mut staged, "filter", "INPUT")
                .rules
                .insert(1, new_rule(bad));
            let t = tools(backend);
            let st = vec![staged];
            let err = inside(&ns, move || validate(&t, &st)).expect_err(&label);
            let msg = err.to_string();
            assert!(
                msg.contains(f.label()) && msg.contains("refused") && msg.contains("line"),
                "{label}: {msg}"
            );
            assert!(
                msg.contains("nosuchmodule") || msg.contains("NOSUCHCHAIN"),
                "{label}: the message quotes the rule: {msg}"
            );
            let after: Vec<String> = Family::ALL
                .iter()
                .map(|&g| save_text(&ns, backend, g))
                .collect();
            assert_eq!(after, before, "{label}: the kernel moved");
        }
    }
}

#[test]
fn an_invalid_rule_never_reaches_the_kernel_nft() {
    invalid_rules(Backend::Nft);
}

#[test]
fn an_invalid_rule_never_reaches_the_kernel_legacy() {
    invalid_rules(Backend::Legacy);
}

fn failing_later_table(backend: Backend) {
    let Some(ns) = setup("undo", backend) else {
        return;
    };
    let before: Vec<Ruleset> = Family::ALL.iter().map(|&f| read(&ns, backend, f)).collect();
    // IPv4 filter and mangle, then IPv6 filter, change; IPv6 mangle then fails.
    let mut changes = Vec::new();
    for (f, rs) in Family::ALL.iter().zip(&before) {
        let Staged {
            result: mut staged,
            mut edited,
            renames,
            zeroed,
        } = stage_every_op(rs);
        if *f == Family::V4 {
            chain_mut(&mut staged, "mangle", "OUTPUT").rules.clear();
            edited.insert(ChainRef::new(*f, "mangle", "OUTPUT"));
        }
        changes.extend(plan(
            std::slice::from_ref(rs),
            &[staged],
            &edited,
            &renames,
            &zeroed,
        ));
    }
    assert_eq!(changes.len(), 3);
    changes.push(TableChange {
        family: Family::V6,
        table: "mangle".into(),
        chains: vec!["OUTPUT".into()],
        script: "*mangle\n-D OUTPUT 99\nCOMMIT\n".into(),
        undo: "*mangle\nCOMMIT\n".into(),
    });
    let msg = commit(&ns, backend, changes)
        .expect_err("the last table fails")
        .to_string();
    for part in [
        "applying IPv6 mangle failed",
        "-D OUTPUT 99",
        "undone: IPv6 filter, IPv4 filter, IPv4 mangle",
    ] {
        assert!(
            msg.contains(part),
            "{}: {part:?} not in {msg}",
            backend.label()
        );
    }
    for (f, was) in Family::ALL.iter().zip(&before) {
        let label = format!("{} {}", backend.label(), f.label());
        let after = read(&ns, backend, *f);
        assert_eq!(shape(&after), shape(was), "{label}: not undone");
        // Untouched rules kept their counters through commit and undo; deleted rules came
        // back with theirs (where the tool honours -c).
        let c = |rs: &Ruleset, needle: &str| counters_of(rs, "filter", "INPUT", needle);
        assert_eq!(c(&after, &addr(*f, 1)), c(was, &addr(*f, 1)), "{label}");
        assert_eq!(c(&after, "-j Z"), c(was, "-j Z"), "{label}");
        if (backend, *f) != (Backend::Nft, Family::V6) {
            assert_eq!(c(&after, &addr(*f, 4)), Counters::new(4, 40), "{label}");
            assert_eq!(
                counters_of(&after, "filter", "U", "RETURN"),
                Counters::new(9, 90),
                "{label}"
            );
        }
    }
}

#[test]
fn a_failing_later_table_undoes_the_earlier_ones_nft() {
    failing_later_table(Backend::Nft);
}

#[test]
fn a_failing_later_table_undoes_the_earlier_ones_legacy() {
    failing_later_table(Backend::Legacy);
}

/// Renames that reuse a name freed in the same commit: the legacy tools take a chain of renames
/// (`A→B`, `B→C`); the nf_tables tools refuse it, and both refuse a swap. A refusal changes
/// nothing and says which table and line.
fn renames_reusing_a_name(backend: Backend) {
    if !have_tools(backend) {
        return;
    }
    let Some(ns) = NetNs::for_test(&format!("rename{}", backend.label())) else {
        return;
    };
    let f = Family::V4;
    let text = "*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n[1:1] -A INPUT -j A\n[2:2] -A A -j B\n[3:3] -A B -j RETURN\nCOMMIT\n";
    let at = |c: &str| ChainRef::new(f, "filter", c);
    let cases = [
        (vec![("A", "B"), ("B", "C")], backend == Backend::Legacy),
        (vec![("A", "B"), ("B", "A")], false),
    ];
    for (renames, takes) in cases {
        ns.restore(f, backend, text);
        let label = format!("{} {renames:?}", backend.label());
        let base = read(&ns, backend, f);
        let mut staged = base.clone();
        let map: BTreeMap<&str, &str> = renames.iter().copied().collect();
        let t = staged.table_mut("filter").expect("filter");
        for c in &mut t.chains {
            if let Some(to) = map.get(c.name.as_str()) {
                c.name = to.to_string();
            }
            for r in &mut c.rules {
                let target = r.spec.target.as_ref().map(|t| t.name.to_string());
                if let Some((from, to)) = target.and_then(|n| map.get(n.as_str()).map(|to| (n, to)))
                {
                    let text = r.text.replace(&format!("-j {from}"), &format!("-j {to}"));
                    *r = Rule {
                        counters: r.counters,
                        ..new_rule(&text)
                    };
                }
            }
        }
        let renames: Vec<(ChainRef, String)> = renames
            .iter()
            .map(|(a, b)| (at(a), b.to_string()))
            .collect();
        let edited: BTreeSet<ChainRef> = renames.iter().map(|(_, b)| at(b)).collect();
        let before = save_text(&ns, backend, f);
        let changes = plan(
            std::slice::from_ref(&base),
            std::slice::from_ref(&staged),
            &edited,
            &renames,
            &BTreeSet::new(),
        );
        let result = commit(&ns, backend, changes);
        if takes {
            result.unwrap_or_else(|e| panic!("{label}: {e}"));
            let after = read(&ns, backend, f);
            assert_eq!(shape(&after), shape(&staged), "{label}");
            assert_eq!(
                counters_of(&after, "filter", "B", "-j C"),
                Counters::new(2, 2)
            );
        } else {
            let msg = result.expect_err(&label).to_string();
            assert!(
                msg.contains("applying IPv4 filter failed") && msg.contains("-E "),
                "{label}: {msg}"
            );
            assert_eq!(
                save_text(&ns, backend, f),
                before,
                "{label}: the kernel moved"
            );
        }
    }
}

#[test]
fn renames_that_reuse_a_name_commit_or_change_nothing_nft() {
    renames_reusing_a_name(Backend::Nft);
}

#[test]
fn renames_that_reuse_a_name_commit_or_change_nothing_legacy() {
    renames_reusing_a_name(Backend::Legacy);
}

/// Rules typed the short way (`--dport` without `-m tcp`, an address without its mask) are
/// staged as the kernel writes them back, so that the plan and its verification compare like
/// with like: after the commit, `verify` finds exactly the staged result.
fn typed_rules_commit_as_the_kernel_writes_them(backend: Backend) {
    let Some(ns) = setup("canon", backend) else {
        return;
    };
    for f in Family::ALL {
        let base = read(&ns, backend, f);
        let mut staged = base.clone();
        let host = match f {
            Family::V4 => "10.9.9.9",
            Family::V6 => "fd00::99",
        };
        let typed = [
            "-p tcp --dport 2222 -j ACCEPT".to_string(),
            format!("-s {host} -p udp --sport 53 -j DROP"),
        ];
        for t in &typed {
            chain_mut(&mut staged, "filter", "OUTPUT")
                .rules
                .push(new_rule(t));
        }
        let edited: BTreeSet<ChainRef> = [ChainRef::new(f, "filter", "OUTPUT")].into();
        let all = std::slice::from_ref(&staged);
        let canon = inside(&ns, {
            let all = all.to_vec();
            move || nfscope::edit::apply::canonical(&tools(backend), &all)
        })
        .expect("the typed rules are valid");
        let out = chain(&canon[0], "filter", "OUTPUT");
        let texts: Vec<&str> = out.rules.iter().map(|r| r.text.as_str()).collect();
        assert!(
            texts.iter().any(|t| t.contains("-m tcp --dport 2222")),
            "{texts:?}"
        );
        assert!(texts.iter().any(|t| t.contains("/")), "{texts:?}");
        let now = std::slice::from_ref(&base);
        let changes = plan(now, &canon, &edited, &[], &BTreeSet::new());
        commit(&ns, backend, changes).expect("the commit applies");
        let after = read(&ns, backend, f);
        assert_eq!(
            verify(std::slice::from_ref(&after), &canon, &edited),
            Ok(()),
            "{f:?}"
        );
    }
}

#[test]
fn typed_rules_commit_as_the_kernel_writes_them_nft() {
    typed_rules_commit_as_the_kernel_writes_them(Backend::Nft);
}

#[test]
fn typed_rules_commit_as_the_kernel_writes_them_legacy() {
    typed_rules_commit_as_the_kernel_writes_them(Backend::Legacy);
}

/// What the verify step reads back (`apply::read_tables`; on nf_tables by listing,
/// `iptables -t TABLE -S`, which is ~20 times faster than `iptables-nft-save -t` beside a
/// big nat table) is what the save tool prints, counters aside: every kind of rule text.
fn read_back_reads_like_the_save_tool(backend: Backend) {
    let Some(ns) = setup("readback", backend) else {
        return;
    };
    for f in Family::ALL {
        let nasty: [&[&str]; 5] = [
            &["-N", "a.b_c-D@1"],
            &[
                "-A",
                "INPUT",
                "-m",
                "comment",
                "--comment",
                "say \"hi\" \\ \u{e9}t\u{e9} 'x'",
                "-j",
                "a.b_c-D@1",
            ],
            &[
                "-A",
                "INPUT",
                "-m",
                "comment",
                "--comment",
                "two\nlines",
                "-j",
                "ACCEPT",
            ],
            &[
                "-A",
                "a.b_c-D@1",
                "-p",
                "tcp",
                "-m",
                "multiport",
                "--dports",
                "1,2:9",
                "-m",
                "conntrack",
                "--ctstate",
                "NEW,ESTABLISHED",
                "-j",
                "LOG",
                "--log-prefix",
                "x y ",
            ],
            &["-t", "mangle", "-P", "FORWARD", "DROP"],
        ];
        for args in nasty {
            ns.iptables(f, backend, args);
        }
        let tables: BTreeSet<(Family, String)> =
            [(f, "filter".to_string()), (f, "mangle".to_string())].into();
        let listed = inside(&ns, move || read_tables(&tools(backend), &tables))
            .expect("the tables read back")
            .remove(0);
        let saved = read(&ns, backend, f);
        let bare = |rs: &Ruleset, table: &str| {
            let t = rs.table(table).expect("the table is there");
            let mut out = String::new();
            nfscope::ruleset::save::write_table(
                &mut out,
                t,
                nfscope::ruleset::save::SaveOptions {
                    counters: nfscope::ruleset::save::CounterMode::Without,
                    comments: false,
                },
            );
            out
        };
        assert_eq!(listed.tables.len(), 2, "{f:?}");
        for table in ["filter", "mangle"] {
            let (l, s) = (bare(&listed, table), bare(&saved, table));
            assert_eq!(l, s, "{f:?} {table} on {backend:?}");
        }
        let filter = bare(&listed, "filter");
        assert!(
            filter.contains("two\nlines") && filter.contains(":a.b_c-D@1 -"),
            "{filter}"
        );
        assert!(bare(&listed, "mangle").contains(":FORWARD DROP"));
    }
}

#[test]
fn read_back_reads_like_the_save_tool_nft() {
    read_back_reads_like_the_save_tool(Backend::Nft);
}

#[test]
fn read_back_reads_like_the_save_tool_legacy() {
    read_back_reads_like_the_save_tool(Backend::Legacy);
}
