//! Stale flows at real scale: `conntrack::synth::entries(ENTRIES)` (100,000 by default: a
//! gateway's masqueraded clients, forwarded ports, TCP in every state, UDP, ICMP, GRE, ESP)
//! against the demo rule sets (both families) with the demo gateway's addresses, as
//! `nfscope conntrack --stale --demo` would analyse them. Times, as medians of ROUNDS:
//! - prepare: `source::stale::prepare` (a tracer per family, once per rule set);
//! - analyse: `Stale::analyze` over every entry, a fresh cache each round (what one `--stale`
//!   run or one `X` costs); how many distinct packets were traced;
//! - without the cache, for comparison: one trace per entry, over the first 10,000 entries,
//!   scaled to ENTRIES.
//!
//! No system tool does this work (conntrack-tools does not trace), so the figure is absolute.
//! Pure: no root, no kernel. `cargo bench --bench stale [-- ENTRIES [ROUNDS]]`; without
//! `--bench` only a small smoke run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::conntrack::synth;
use nfscope::source::demo::DemoWorld;
use nfscope::source::{local_addrs, stale};
use std::hint::black_box;
use std::time::Instant;

/// The binary's allocator (src/main.rs), so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;

fn main() {
    let (full, n, rounds) = support::scale("stale", (100_000, 7), (2_000, 2));
    let entries = synth::entries(n);
    let snap = DemoWorld::new().snapshot();

    let mut prep = Vec::new();
    let mut runs = Vec::new();
    let mut last = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let (mut s, _) = stale::prepare(&snap, local_addrs::demo());
        prep.push(t.elapsed());
        let t = Instant::now();
        let r = s.analyze(black_box(&entries));
        runs.push(t.elapsed());
        last = Some(r);
    }
    let r = last.expect("a round");
    let (pmin, pmed) = support::stats(prep);
    let (amin, amed) = support::stats(runs);

    // Without the cache: every entry's packet traced on its own, on a sample.
    let sample = entries.len().min(10_000);
    let (s0, _) = stale::prepare(&snap, local_addrs::demo());
    let t = Instant::now();
    let mut paths = 0usize;
    for e in &entries[..sample] {
        let (Ok(mut p), Some(tracer)) = (s0.packet(e), s0.tracer(e.family)) else {
            continue;
        };
        p.sport = e.orig.sport;
        paths += tracer.trace(black_box(&p), s0.options()).paths.len();
    }
    let uncached = t.elapsed().as_secs_f64() * 1e3 * (entries.len() as f64 / sample as f64);
    black_box(paths);

    println!(
        "{} entries: {} stale, {} maybe, {} accepted, {} skipped; {} distinct packets traced",
        r.total,
        r.stale.len(),
        r.maybe.len(),
        r.accepted,
        r.skipped_total(),
        r.traced
    );
    println!("prepare (both families, once per rule set): min {pmin:.2} ms, median {pmed:.2} ms");
    println!("analyse: min {amin:.1} ms, median {amed:.1} ms ({rounds} rounds)");
    println!(
        "one trace per entry instead (from {sample} entries): ~{uncached:.0} ms, {:.1}x the cached analysis",
        uncached / amed.max(1e-9)
    );
    if full {
        println!(
            "target: --stale over {n} entries in under 1 s: {}",
            if amed + pmed < 1000.0 {
                "met"
            } else {
                "MISSED"
            }
        );
    }
}
