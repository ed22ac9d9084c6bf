//! One kernel refresh at real scale, against the system tools alone, in the same run: a
//! throwaway network namespace gets a 50,000-rule kube-proxy rule set (IPv4), then rounds
//! alternate between (a) `iptables-save -c` + `ip6tables-save -c` run by themselves and (b) one
//! full `KernelReader::read()` (run both, parse both), both through the same `ip netns exec`
//! prefix. Prints the medians and the ratio b/a per backend; the target is b/a <= 1.25.
//!
//! Needs root and network namespaces; prints "skipped" and exits 0 without them. The namespace
//! is always deleted. `cargo bench --bench refresh [-- RULES [ROUNDS]]`; run without `--bench`
//! (as `cargo test --benches` does) it only makes a small smoke run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use nfscope::ruleset::{self, Family};
use nfscope::source::Backend;
use nfscope::source::kernel::{KernelReader, save_tool, time_refresh, tool_command};
use std::time::{Duration, Instant};

/// The binary's allocator (src/main.rs), so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// (a): both save tools, one after the other, output collected, nothing else.
fn tools_alone(ns: &str, backend: Backend) -> (Duration, String) {
    let start = Instant::now();
    let mut v4 = String::new();
    for family in Family::ALL {
        let tool = save_tool(family, Some(backend));
        let out = tool_command(&tool, Some(ns))
            .expect("the tool is installed")
            .arg("-c")
            .output()
            .expect("the tool runs");
        assert!(out.status.success(), "{tool} failed");
        if family == Family::V4 {
            v4 = String::from_utf8(out.stdout).expect("UTF-8");
        }
    }
    (start.elapsed(), v4)
}

fn bench_backend(backend: Backend, rules: usize, rounds: usize, full: bool) {
    let Some(ns) = common::kube_proxy_netns("bench", backend, rules) else {
        return;
    };

    let mut reader = KernelReader::new(Some(backend)).in_netns(ns.name());
    // Warm up both paths; the reader's first read also looks at the other backend.
    let first = reader.read(0);
    assert!(first.errors().is_empty(), "{:?}", first.errors());
    let got = first.v4.ruleset().map_or(0, ruleset::Ruleset::rule_count);
    assert_eq!(got, rules, "the reader sees every rule");
    drop(first);
    let (_, sample) = tools_alone(ns.name(), backend);

    let (mut alone, mut refresh) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        alone.push(tools_alone(ns.name(), backend).0);
        refresh.push(time_refresh(&mut reader));
    }
    let parse_only = {
        let t = Instant::now();
        let rs = ruleset::parse(&sample, Family::V4).expect("parses");
        let d = t.elapsed();
        drop(rs);
        d
    };
    println!(
        "  samples a: {:?}\n  samples b: {:?}",
        alone.iter().map(|d| ms(*d).round()).collect::<Vec<_>>(),
        refresh.iter().map(|d| ms(*d).round()).collect::<Vec<_>>()
    );
    let (a, b) = (median(alone), median(refresh));
    let ratio = b.as_secs_f64() / a.as_secs_f64();
    println!(
        "{}: tools alone {:.1} ms, nfscope refresh {:.1} ms, ratio {:.2} ({}), \
         parse alone {:.1} ms, medians of {rounds}",
        backend.label(),
        ms(a),
        ms(b),
        ratio,
        match (full, ratio <= 1.25) {
            (false, _) => "smoke run, no target",
            (true, true) => "target <= 1.25 met",
            (true, false) => "target <= 1.25 MISSED",
        },
        ms(parse_only),
    );
    oneshot(ns.name(), backend, rounds, full);
    // `ns` is dropped here: the namespace is deleted, on panic too.
}

/// The one-shot CLI: `nfscope rules --format save -4` (the system's default backend detected,
/// and with `--backend`) against `iptables-save -c` alone, both through `ip netns exec`, in
/// alternating rounds. Target: at most 1.15x.
fn oneshot(ns: &str, backend: Backend, rounds: usize, full: bool) {
    let bin = env!("CARGO_BIN_EXE_nfscope");
    let flag = match backend {
        Backend::Nft => "nft",
        Backend::Legacy => "legacy",
    };
    let time = |args: &[&str]| -> Duration {
        let t = Instant::now();
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.elapsed()
    };
    let tool = save_tool(Family::V4, Some(backend));
    let (mut alone, mut cli) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(3) {
        alone.push(time(&[&tool, "-c"]));
        cli.push(time(&[
            bin,
            "--backend",
            flag,
            "rules",
            "--format",
            "save",
            "-4",
        ]));
    }
    let (a, b) = (median(alone), median(cli));
    let ratio = b.as_secs_f64() / a.as_secs_f64();
    println!(
        "{}: one-shot `{tool} -c` {:.1} ms, `nfscope --backend {flag} rules --format save -4` {:.1} ms, ratio {:.2} ({})",
        backend.label(),
        ms(a),
        ms(b),
        ratio,
        match (full, ratio <= 1.15) {
            (false, _) => "smoke run, no target",
            (true, true) => "target <= 1.15 met",
            (true, false) => "target <= 1.15 MISSED",
        },
    );
}

mod support;

fn main() {
    let (full, rules, rounds) = support::scale("refresh", (50_000, 5), (2_000, 1));
    for backend in [Backend::Nft, Backend::Legacy] {
        bench_backend(backend, rules, rounds, full);
    }
}
