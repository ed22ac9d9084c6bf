//! Reachability and lint at real scale: a zoned firewall of about 5,500 rules with hundreds of
//! user chains (`synth::zoned`), a 50,000-rule kube-proxy rule set (`synth::kube_proxy`, with
//! `--all-tables`) and one chain of 5,000 host rules. Prints the minimum and the median of
//! `reach` for a few questions, with the classes, edges and source ranges it found, and of
//! `lint` over the same rule sets. Targets (issue 13): under 2 s for the zoned
//! firewall, under 10 s for kube-proxy. The verified analyser of the Iptables_Semantics work
//! takes minutes on a firewall of the first size (its authors' figures; not run here).
//!
//! `cargo bench --bench reach [-- RULES [ROUNDS]]` (RULES: the zoned firewall's size); without
//! `--bench` only a small smoke run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::ruleset::{self, Family, synth};
use nfscope::trace::lint::{LintOptions, lint};
use nfscope::trace::reach::{ReachQuery, reach};
use nfscope::trace::{CtState, Hook};
use std::hint::black_box;
use std::time::Instant;

/// The binary's allocator (src/main.rs), so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;

fn query(hook: Hook, dport: u16, all_tables: bool) -> ReachQuery {
    ReachQuery {
        hook,
        proto: 6,
        dport: Some(dport),
        sport: None,
        state: CtState::New,
        ifaces: Vec::new(),
        all_tables,
        nat: false,
    }
}

fn run(
    name: &str,
    rs: &ruleset::Ruleset,
    q: &ReachQuery,
    rounds: usize,
    target_ms: f64,
    full: bool,
) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let r = reach(black_box(rs), q);
        times.push(t.elapsed());
        last = Some(r);
    }
    let r = last.expect("a round");
    let (min, med) = support::stats(times);
    let certain = r.edges.iter().filter(|e| e.certain).count();
    println!(
        "{name}: {} tcp dport {}: min {min:.1} ms, median {med:.1} ms ({rounds} rounds); {} classes, {} edges ({certain} certain), {} source ranges walked, {} hinges",
        r.walked.join(" + "),
        q.dport.unwrap_or(0),
        r.classes.len(),
        r.edges.len(),
        r.source_ranges,
        r.hinges.len()
    );
    if full {
        println!(
            "  target under {target_ms:.0} ms: {}",
            if med < target_ms { "met" } else { "MISSED" }
        );
    }
}

fn time_lint(name: &str, rs: &ruleset::Ruleset, rounds: usize) {
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        let f = lint(&[black_box(rs)], LintOptions::default());
        times.push(t.elapsed());
        n = f.len();
    }
    let (min, med) = support::stats(times);
    println!("lint {name}: min {min:.1} ms, median {med:.1} ms ({rounds} rounds); {n} findings");
}

/// One INPUT chain of `n` rules, each accepting one host's SSH (no two alike: nothing to find,
/// every pair compared).
fn host_chain(n: usize) -> String {
    let mut s =
        String::from("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for i in 0..n {
        s += &format!(
            "-A INPUT -s 10.{}.{}.{}/32 -p tcp -m tcp --dport 22 -j ACCEPT\n",
            i / 65_536,
            (i / 256) % 256,
            i % 256
        );
    }
    s + "COMMIT\n"
}

fn main() {
    let (full, rules, rounds) = support::scale("reach", (5_500, 5), (600, 1));
    let text = synth::zoned(rules);
    let rs = ruleset::parse(&text, Family::V4).expect("the generated rules parse");
    let n: usize = rs
        .tables
        .iter()
        .flat_map(|t| &t.chains)
        .map(|c| c.rules.len())
        .sum();
    let chains: usize = rs.tables.iter().map(|t| t.chains.len()).sum();
    println!("zoned firewall: {n} rules in {chains} chains");
    for (hook, port) in [(Hook::Forward, 443), (Hook::Forward, 22), (Hook::Input, 22)] {
        run(
            "zoned",
            &rs,
            &query(hook, port, false),
            rounds,
            2_000.0,
            full,
        );
    }
    time_lint("zoned", &rs, rounds);
    let hosts = if full { 5_000 } else { 300 };
    let chain = ruleset::parse(&host_chain(hosts), Family::V4).expect("the host chain parses");
    time_lint(&format!("one chain of {hosts} host rules"), &chain, rounds);

    let kube_rules = if full { 50_000 } else { 2_000 };
    let text = synth::kube_proxy(kube_rules);
    let rs = ruleset::parse(&text, Family::V4).expect("the generated rules parse");
    println!("kube-proxy: {kube_rules} rules");
    for hook in [Hook::Forward, Hook::Input] {
        run(
            "kube-proxy",
            &rs,
            &query(hook, 80, true),
            rounds,
            10_000.0,
            full,
        );
    }
    time_lint("kube-proxy", &rs, rounds);
}
