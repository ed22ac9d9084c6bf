//! What the benches share: how big a run is, and the minimum and median of the rounds. Each
//! bench includes it with `mod support;` and may use only part of it.
#![allow(dead_code)]

use std::time::Duration;

/// How big a run is: `cargo bench` passes `--bench`, then `-- N ROUNDS` may follow; without
/// `--bench` (`cargo test --benches`) it is a quick smoke run of `smoke` items and
/// `smoke_rounds` rounds. Returns whether it is a full run, the size and the rounds.
pub fn scale(name: &str, full: (usize, usize), smoke: (usize, usize)) -> (bool, usize, usize) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if args.iter().any(|a| a == "--bench") {
        (
            true,
            nums.first().copied().unwrap_or(full.0),
            nums.get(1).copied().unwrap_or(full.1).max(1),
        )
    } else {
        println!("smoke run (use `cargo bench --bench {name}` for the real one)");
        (false, smoke.0, smoke.1)
    }
}

/// The minimum and the median, in milliseconds.
pub fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(v[0]), ms(v[v.len() / 2]))
}
