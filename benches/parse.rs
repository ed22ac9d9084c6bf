//! Parsing and writing at real scale: a 100,000-rule kube-proxy rule set in `iptables-save -c`
//! format, parsed and written back several times; prints the minimum and the median.
//! Target: parsing 100k rules in under 150 ms on a small (2-core) machine.
//!
//! `cargo bench --bench parse [-- RULES [ROUNDS]]`; without `--bench` only a small smoke run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::ruleset::{self, Family, save, synth};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The binary's allocator (src/main.rs), so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[0], v[v.len() / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

mod support;

fn main() {
    let (full, rules, rounds) = support::scale("parse", (100_000, 10), (10_000, 1));

    let start = Instant::now();
    let text = synth::kube_proxy(rules);
    println!(
        "generated {rules} rules ({:.1} MB, {} lines) in {:.0} ms",
        text.len() as f64 / 1e6,
        text.lines().count(),
        ms(start.elapsed())
    );

    let mut parse_times = Vec::new();
    let mut write_times = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let rs = ruleset::parse(black_box(&text), Family::V4).expect("the generated rules parse");
        parse_times.push(t.elapsed());
        assert_eq!(rs.rule_count(), rules);

        let t = Instant::now();
        let out = save::write(black_box(&rs), save::SaveOptions::default());
        write_times.push(t.elapsed());
        assert_eq!(out.len(), text.len());
        // Dropping 100k rules is part of every refresh too, but not of parsing; keep it apart.
        drop(black_box(rs));
    }
    let (pmin, pmed) = stats(parse_times);
    let (wmin, wmed) = stats(write_times);
    let rate = rules as f64 / pmed.as_secs_f64();
    println!(
        "parse {rules} rules: min {:.1} ms, median {:.1} ms, {:.2} M rules/s ({rounds} rounds)",
        ms(pmin),
        ms(pmed),
        rate / 1e6
    );
    println!(
        "write {rules} rules: min {:.1} ms, median {:.1} ms",
        ms(wmin),
        ms(wmed)
    );
    // What the UI thread does with each new snapshot: rates for every rule, and dropping the
    // previous snapshot.
    let rs = ruleset::parse(&text, Family::V4).expect("the generated rules parse");
    let mut tracker = nfscope::ruleset::rates::RateTracker::new();
    let t0 = std::time::SystemTime::UNIX_EPOCH;
    let mut rate_times = Vec::new();
    for i in 0..rounds {
        let t = Instant::now();
        tracker.update(t0 + Duration::from_secs(i as u64), [&rs]);
        rate_times.push(t.elapsed());
    }
    let (rmin, rmed) = stats(rate_times);
    println!(
        "rates for {rules} rules (UI thread, per refresh): min {:.1} ms, median {:.1} ms",
        ms(rmin),
        ms(rmed)
    );
    let t = Instant::now();
    drop(black_box(rs));
    println!("drop {rules} rules: {:.1} ms", ms(t.elapsed()));
    if full {
        let target = 150.0 * rules as f64 / 100_000.0;
        println!(
            "target: parse under {target:.0} ms: {}",
            if ms(pmed) <= target { "met" } else { "MISSED" }
        );
    }
}
