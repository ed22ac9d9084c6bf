//! Committing one staged change at real scale, against the system tool doing the same work the
//! plain way, in the same run. A throwaway network namespace per backend gets a 50,000-rule
//! kube-proxy rule set (IPv4); then each round
//!
//! (a) commits one rule inserted at the top of filter INPUT the way nfscope does (the kernel
//!     steps of `edit::commit`): stage it on a base read as the TUI's source reads it
//!     (`KernelReader`, which on nf_tables knows the generation it read at; outside the timing,
//!     it is the source thread's work), `apply::canonical_tables` (`restore --test` and the
//!     trial load in an empty namespace, of the changed table only), `commit::read_kernel`
//!     (on nf_tables still at the base's generation: the counters over netlink, no re-read;
//!     else a re-read of both families) and `plan::conflicts`, `commit::check_backup`,
//!     `plan::plan`, `apply::apply_changes`, read back the changed table and `plan::verify`;
//! (b) loads the whole rule set with that rule added through `iptables-restore` (what
//!     iptables-apply does).
//!
//! The rule is deleted again after each, so every round starts from the same rules (at a new
//! generation: each round reads its base again, untimed). Writing the backup files, the
//! lockout check and the watchdog are left out (they are files and a process, not the
//! kernel's work). Every tool runs on a thread that entered the namespace (`source::netns::run_in`),
//! never on the host's rule set.
//!
//! Needs root and network namespaces; prints "skipped" and exits 0 without them. The namespace
//! is always deleted. `cargo bench --bench commit [-- RULES [ROUNDS]]`; run without `--bench`
//! (as `cargo test --benches` does) it only makes a small smoke run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use nfscope::edit::commit::{self, HowRead, Request};
use nfscope::edit::stage::{Op, Staging};
use nfscope::edit::tools::Tools;
use nfscope::edit::{ChainRef, apply, plan};
use nfscope::ruleset::{Family, Ruleset};
use nfscope::source::kernel::KernelReader;
use nfscope::source::{Backend, netns};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The binary's allocator (src/main.rs), so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The staged change, as a user would type it (canonical spells it as the kernel prints it).
const RULE: &str = "-s 192.0.2.1/32 -p tcp --dport 22 -j ACCEPT";

/// The phases of (a), then (a) whole, (b), and `restore --test` alone (the first half of
/// validate, timed apart), in the order of the table.
const ROWS: [&str; 10] = [
    "stage (Staging::push)",
    "validate (canonical: --test + trial load)",
    "kernel now (read_kernel) + conflicts",
    "backup check (check_backup, both families)",
    "plan",
    "apply (restore --noflush)",
    "read back + verify",
    "nfscope commit, all of it",
    "iptables-restore of the whole set",
    "restore --test of the whole set, apart",
];

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

/// Take the rule back out: one `--noflush` transaction, outside any timing.
fn undo(tools: &Tools) {
    tools
        .restore(
            Family::V4,
            &["--noflush", "-w"],
            "*filter\n-D INPUT 1\nCOMMIT\n",
        )
        .expect("the rule is deleted again");
}

/// The base as the TUI's source reads it, and the generation it was read at (nf_tables).
fn base_now(backend: Backend) -> (Vec<Ruleset>, Option<u32>) {
    let snap = KernelReader::new(Some(backend)).read(1);
    let base = Family::ALL
        .iter()
        .filter_map(|&f| snap.family(f).ruleset().cloned())
        .collect();
    (base, snap.nft_generation)
}

/// One round of (a): the phases' times, and how the kernel was had.
fn nfscope_commit(
    tools: &Tools,
    (base, generation): (Vec<Ruleset>, Option<u32>),
    at: &ChainRef,
) -> ([Duration; 7], HowRead) {
    let edited = BTreeSet::from([at.clone()]);
    let mut staging = Staging::new(base).read_at(generation);
    let op = Op::Insert {
        above: None,
        at: at.clone(),
        pos: 1,
        rule: RULE.into(),
    };
    let ((), stage) = timed(|| staging.push(op).expect("the insert stages"));
    // As edit::commit does: only the changed table is trial-loaded and read back.
    let changed = BTreeSet::from([(at.family, at.table.clone())]);
    let (staged, validate) = timed(|| {
        apply::canonical_tables(tools, staging.result(), &changed).expect("the staged set is valid")
    });
    let req = Request {
        base: staging.base().to_vec(),
        base_generation: staging.base_generation(),
        staged: staged.clone(),
        edited: edited.clone(),
        ..Request::default()
    };
    let (kernel, reread) = timed(|| {
        let kernel = commit::read_kernel(tools, &req).expect("the kernel reads");
        let c = plan::conflicts(staging.base(), &kernel.now, &edited, &[]);
        assert!(c.is_empty(), "every round starts from the base: {c:?}");
        kernel
    });
    // The backup step's checks that a rollback could load the backup: each family's text
    // parses, and `restore --test -c` takes it.
    let ((), checked) = timed(|| {
        commit::check_backup(tools, &kernel.texts).expect("the backup would load");
    });
    let now = kernel.now;
    let (changes, planned) = timed(|| plan::plan(&now, &staged, &edited, &[], &BTreeSet::new()));
    assert_eq!(changes.len(), 1, "one table changes");
    let ((), applied) =
        timed(|| apply::apply_changes(tools, &changes).expect("the change applies"));
    let ((), verified) = timed(|| {
        let after = apply::read_tables(tools, &changed).expect("the kernel reads");
        plan::verify(&after, &staged, &edited).expect("the kernel holds the staged chain");
    });
    (
        [stage, validate, reread, checked, planned, applied, verified],
        kernel.how,
    )
}

/// Every round of (a) and (b) in the namespace; the samples per row of `ROWS`.
fn rounds_in_ns(backend: Backend, rounds: usize) -> (Vec<Vec<Duration>>, Vec<HowRead>) {
    let tools = Tools {
        backend: Some(backend),
    };
    let at = ChainRef::new(Family::V4, "filter", "INPUT");
    let base = apply::read_now(&tools, &[Family::V4]).expect("the kernel reads");
    let mut how = Vec::new();
    // (b)'s input: the whole set with the rule added, without counters, as iptables-apply
    // would be given it. Made once, outside the timing.
    let mut staging = Staging::new(base.clone());
    staging
        .push(Op::Insert {
            above: None,
            at: at.clone(),
            pos: 1,
            rule: RULE.into(),
        })
        .expect("the insert stages");
    let whole = plan::test_input(staging.result(), Family::V4).expect("an IPv4 set");

    let mut rows = vec![Vec::new(); ROWS.len()];
    for _ in 0..rounds {
        let (phases, read) = nfscope_commit(&tools, base_now(backend), &at);
        how.push(read);
        undo(&tools);
        for (row, d) in rows.iter_mut().zip(phases) {
            row.push(d);
        }
        rows[7].push(phases.iter().sum());
        let (r, d) = timed(|| tools.restore(Family::V4, &["-w"], &whole));
        r.expect("iptables-restore loads the whole set");
        undo(&tools);
        rows[8].push(d);
        let (r, d) = timed(|| tools.restore(Family::V4, &["--test", "-w"], &whole));
        r.expect("restore --test accepts the whole set");
        rows[9].push(d);
    }
    (rows, how)
}

fn bench_backend(backend: Backend, rules: usize, rounds: usize) {
    let Some(ns) = common::kube_proxy_netns("commit", backend, rules) else {
        return;
    };
    let (rows, how) = netns::run_in(ns.name(), move || rounds_in_ns(backend, rounds))
        .expect("enter the bench's namespace");
    for h in how {
        println!("  the kernel, each round: {h:?}");
    }
    let stats: Vec<(f64, f64)> = rows.into_iter().map(support::stats).collect();
    println!("  {:<44} {:>10} {:>10}", "what", "min ms", "median ms");
    for (what, (min, med)) in ROWS.iter().zip(&stats) {
        println!("  {what:<44} {min:>10.1} {med:>10.1}");
    }
    let (commit, restore, apply) = (stats[7].1, stats[8].1, stats[5].1);
    println!(
        "{}: nfscope commit / iptables-restore {:.2}, apply alone / iptables-restore {:.4} \
         (1/{:.0}), medians of {rounds}",
        backend.label(),
        commit / restore,
        apply / restore,
        restore / apply
    );
    // `ns` is dropped here: the namespace is deleted, on panic too.
}

fn main() {
    let (_, rules, rounds) = support::scale("commit", (50_000, 3), (2_000, 1));
    for backend in [Backend::Nft, Backend::Legacy] {
        bench_backend(backend, rules, rounds);
    }
}
