//! Tracing at real scale: a 50,000-rule kube-proxy rule set, and a packet to the service whose
//! rule stands last in nat KUBE-SERVICES, so the walk looks at every service rule before it,
//! forks at each `-m statistic` endpoint choice of the KUBE-SVC chain, DNATs in a KUBE-SEP
//! chain and goes on through filter FORWARD and nat POSTROUTING (MASQUERADE). Prints the
//! minimum and the median of a trace, and of preparing the rule set (once per rule set).
//! Target: a trace in under 10 ms.
//!
//! `cargo bench --bench trace [-- RULES [ROUNDS]]`; without `--bench` only a small smoke run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::ruleset::{self, Family, Ruleset, synth};
use nfscope::trace::{LocalAddr, Packet, TraceOptions, Tracer, Verdict};
use std::hint::black_box;
use std::net::IpAddr;
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

/// The cluster IP and port of the service whose nat KUBE-SERVICES rule comes last.
fn deepest_service(rs: &Ruleset) -> (IpAddr, u16, usize) {
    let chain = rs
        .table("nat")
        .and_then(|t| t.chain("KUBE-SERVICES"))
        .expect("kube-proxy rules have nat KUBE-SERVICES");
    let (i, rule) = chain
        .rules
        .iter()
        .enumerate()
        .rev()
        .find(|(_, r)| r.spec.target_name().starts_with("KUBE-SVC-"))
        .expect("a service with endpoints");
    let dst = rule.spec.destination.as_ref().expect("a cluster IP");
    let ip = dst
        .value
        .trim_end_matches("/32")
        .parse()
        .expect("an address");
    let port = rule
        .spec
        .find_match("tcp")
        .and_then(|m| m.option("--dport"))
        .and_then(|o| o.values.first())
        .and_then(|v| v.parse().ok())
        .expect("a port");
    (ip, port, i + 1)
}

mod support;

fn main() {
    let (full, rules, rounds) = support::scale("trace", (50_000, 200), (5_000, 3));

    let text = synth::kube_proxy(rules);
    let rs = ruleset::parse(&text, Family::V4).expect("the generated rules parse");
    let (cluster_ip, port, position) = deepest_service(&rs);

    let mut prepare_times = Vec::new();
    for _ in 0..rounds.clamp(1, 10) {
        let t = Instant::now();
        let tracer = Tracer::new(black_box(&rs));
        prepare_times.push(t.elapsed());
        drop(black_box(tracer));
    }
    let tracer = Tracer::new(&rs);

    let mut packet = Packet::new(6, "192.168.1.10".parse().expect("an address"), cluster_ip);
    packet.sport = Some(40000);
    packet.dport = Some(port);
    packet.in_iface = Some("eth0".into());
    let opts = TraceOptions {
        local_addrs: vec![LocalAddr::parse("192.168.1.2/24%eth0").expect("an address")],
        ..TraceOptions::default()
    };

    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let trace = tracer.trace(black_box(&packet), &opts);
        times.push(t.elapsed());
        last = Some(trace);
    }
    let trace = last.expect("at least one round");
    let steps: usize = trace.paths.iter().map(|p| p.steps.len()).sum();
    let deepest = trace.paths.iter().map(|p| p.steps.len()).max().unwrap_or(0);
    assert!(
        trace.paths.iter().all(|p| p.verdict == Verdict::Accept),
        "{}",
        trace.summary()
    );
    assert!(deepest > position, "the walk passes every service rule");

    let (pmin, pmed) = stats(prepare_times);
    let (tmin, tmed) = stats(times);
    println!(
        "{rules} rules; packet to {cluster_ip}:{port}, rule {position} of nat KUBE-SERVICES: {} paths, {deepest} steps on the longest, {steps} in all",
        trace.paths.len()
    );
    println!(
        "prepare (Tracer::new, once per rule set): min {:.1} ms, median {:.1} ms",
        ms(pmin),
        ms(pmed)
    );
    println!(
        "trace: min {:.2} ms, median {:.2} ms ({rounds} rounds)",
        ms(tmin),
        ms(tmed)
    );
    println!("verdict: {}", trace.summary());
    if full {
        println!(
            "target: a trace through {rules} rules under 10 ms: {}",
            if ms(tmed) < 10.0 { "met" } else { "MISSED" }
        );
    }
}
