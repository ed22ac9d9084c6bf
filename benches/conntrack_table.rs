//! The conntrack table at a busy gateway's scale: 250,000 synthetic entries
//! (`conntrack::synth::entries`). Times parsing them as /proc text (the fallback source),
//! building the table from a dump, applying update events,
//! filtering with a three-term expression, sorting by three columns, and grouping by source;
//! prints the minimum and the median of each. The screen's budget for sort + filter + draw is
//! 50 ms.
//!
//! `cargo bench --bench conntrack_table [-- ENTRIES [ROUNDS]]`; without `--bench` only a small
//! smoke run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::conntrack::CtEvent;
use nfscope::conntrack::filter::Filter;
use nfscope::conntrack::table::{GroupKey, SortKey, Table};
use nfscope::conntrack::{procfs, synth};
use std::hint::black_box;
use std::time::Instant;

/// The binary's allocator (src/main.rs), so the figures are the binary's.
mod support;

use support::stats;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn time<T>(rounds: usize, mut f: impl FnMut() -> T) -> (f64, f64, T) {
    let mut times = Vec::with_capacity(rounds);
    let mut last = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let out = black_box(f());
        times.push(t.elapsed());
        last = Some(out);
    }
    let (min, med) = stats(times);
    (min, med, last.expect("at least one round"))
}

fn main() {
    let (full, n, rounds) = support::scale("conntrack_table", (250_000, 10), (10_000, 1));

    let t = Instant::now();
    let dump = synth::entries(n);
    println!(
        "generated {n} entries in {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    // The /proc fallback: the same table as /proc/net/nf_conntrack prints it.
    let text: String = dump.iter().map(|e| procfs::write_line(e) + "\n").collect();
    let (min, med, parsed) = time(rounds.min(5), || {
        procfs::parse_proc(black_box(&text)).0.len()
    });
    assert_eq!(parsed, n);
    println!(
        "parse {n} lines of /proc/net/nf_conntrack ({:.1} MB): min {min:.1} ms, median {med:.1} ms",
        text.len() as f64 / 1e6
    );
    drop(text);

    let mut builds = Vec::with_capacity(rounds);
    let mut table = Table::new();
    for _ in 0..rounds {
        let copy = dump.clone();
        drop(table);
        let t = Instant::now();
        table = Table::from_dump(black_box(copy));
        builds.push(t.elapsed());
    }
    let (min, med) = stats(builds);
    println!("build table from a dump of {n}: min {min:.1} ms, median {med:.1} ms");
    println!(
        "table memory: {:.1} MB, {} bytes per entry (of which the Entry itself: {} bytes)",
        table.heap_bytes() as f64 / 1e6,
        table.heap_bytes() / n.max(1),
        std::mem::size_of::<nfscope::conntrack::Entry>()
    );

    // Update events: every entry's timeout ticks once, as a refresh storm would.
    let events: Vec<CtEvent> = dump
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.timeout = e.timeout.wrapping_add(1);
            CtEvent::update(e)
        })
        .collect();
    let t = Instant::now();
    for ev in events {
        table.apply(ev);
    }
    let d = t.elapsed();
    println!(
        "apply {n} update events: {:.1} ms, {:.2} M events/s",
        d.as_secs_f64() * 1e3,
        n as f64 / d.as_secs_f64() / 1e6
    );

    let expr = "proto=tcp state=ESTABLISHED src=10.0.0.0/16";
    let filter = Filter::parse(expr).expect("the bench filter parses");
    let (min, med, hits) = time(rounds, || table.matching(&filter).len());
    println!("filter {expr:?} over {n}: min {min:.1} ms, median {med:.1} ms ({hits} match)");

    let mut worst: f64 = 0.0;
    for key in [SortKey::Src, SortKey::Timeout, SortKey::Bytes] {
        let (min, med, v) = time(rounds, || table.sorted(key, false, None).len());
        worst = worst.max(med);
        println!("sort {n} by {key:?}: min {min:.1} ms, median {med:.1} ms ({v} rows)");
    }
    let (min, med, v) = time(rounds, || {
        table.sorted(SortKey::State, true, Some(&filter)).len()
    });
    println!("filter + sort by State (reversed): min {min:.1} ms, median {med:.1} ms ({v} rows)");

    let (min, med, groups) = time(rounds, || table.group_by(GroupKey::Src, None));
    println!(
        "group {n} by Src: min {min:.1} ms, median {med:.1} ms ({} groups, top {} with {})",
        groups.len(),
        groups[0].label,
        groups[0].count
    );
    let (min, med, _) = time(rounds, || table.summary());
    println!("summary (per state and protocol): min {min:.1} ms, median {med:.1} ms");
    if full {
        println!(
            "target: sort under 50 ms: {}",
            if worst <= 50.0 { "met" } else { "MISSED" }
        );
    }
}
