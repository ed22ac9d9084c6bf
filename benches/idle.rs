//! What nfscope costs while someone just watches: the real binary (release build) runs in tmux,
//! inside a throwaway network namespace holding a kube-proxy-shaped rule set on nf_tables
//! (1,000 rules, then 50,000), at the default 1 s interval. Over a measured window, once the
//! first whole read is done, it reports nfscope's own CPU (user + system), the CPU of the save
//! tools it ran (reaped children), and the bytes it wrote to the terminal per second (what an SSH
//! link carries). The same window also polls `iptables-save -c` + `ip6tables-save -c` alone,
//! once a second start to start (back to back when a poll takes longer), for the ratio. Targets:
//! nfscope's own CPU under 2% at 1,000 rules; nfscope and its children at most 0.25 of the
//! tools alone at 50,000 (issue 11).
//!
//! Needs root, network namespaces and tmux; prints "skipped" and exits 0 without them. The
//! namespace and the tmux server are always removed. `cargo bench --bench idle [-- SECONDS
//! [RULES]]` (both scenarios, 30 s and 20 s, without arguments); run without `--bench` (as
//! `cargo test --benches` does) it only makes a short smoke run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::NetNs;
use nfscope::ruleset::{Family, synth};
use nfscope::source::Backend;
use std::process::Command;
use std::time::{Duration, Instant};

/// (user + system, children's user + system) CPU of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold blanks.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime, stime, cutime, cstime are fields 14-17 of stat, 11-14 after the name and state.
    Some((f.get(11)? + f.get(12)?, f.get(13)? + f.get(14)?))
}

/// A tmux server of our own, killed when dropped.
struct Tmux(String);

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.0)
            .args(args)
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .output();
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let nums: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    // (rules, seconds): `-- SECONDS [RULES]`, else both scenarios (a smoke run: a short one).
    let scenarios: Vec<(usize, u64)> = match nums.as_slice() {
        [secs, rules, ..] => vec![(usize::try_from(*rules).unwrap_or(1_000), *secs)],
        [secs] => vec![(1_000, *secs)],
        [] if full => vec![(1_000, 30), (50_000, 20)],
        [] => vec![(1_000, 3)],
    };
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipped: tmux is not installed");
        return;
    }
    for (rules, secs) in scenarios {
        if !scenario(rules, secs) {
            return;
        }
    }
}

/// The refresh time the header shows (`took 212 ms`, `took 4.1 s`), if any.
fn header_took(screen: &str) -> Option<Duration> {
    let rest = &screen[screen.find("(took ")? + 6..];
    let shown = &rest[..rest.find(')')?];
    let (n, unit) = shown.split_once(' ')?;
    let n: f64 = n.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_secs_f64(n / 1e3)),
        "s" => Some(Duration::from_secs_f64(n)),
        _ => None,
    }
}

/// One run: nfscope idle over `rules` kube-proxy-shaped IPv4 rules for `secs` seconds, and
/// the save tools alone in the same window. False when the machine cannot run it (said).
fn scenario(rules: usize, secs: u64) -> bool {
    let ns = match NetNs::create("idle") {
        Ok(ns) => ns,
        Err(why) => {
            println!("skipped: needs root and network namespaces ({why})");
            return false;
        }
    };
    let backend = Backend::Nft;
    ns.restore(Family::V4, backend, &synth::kube_proxy(rules));

    let tmux = Tmux(format!("nfscope-idle-{}", std::process::id()));
    let log = std::env::temp_dir().join(format!("nfscope-idle-{}.out", std::process::id()));
    let bin = env!("CARGO_BIN_EXE_nfscope");
    let cmd = format!(
        "exec ip netns exec {} {bin} --backend nft --interval 1",
        ns.name()
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "40",
        &cmd,
    ]);
    let pid: u32 = tmux
        .run(&["display", "-p", "-t", "t", "#{pane_pid}"])
        .parse()
        .unwrap_or(0);
    // Let it start and draw its first frames. A big rule set is read whole once (seconds
    // through the save tools), then refreshed by generation; the window starts once the header
    // shows such a refresh (under a second) after the whole read.
    std::thread::sleep(Duration::from_secs(3));
    let settle = Instant::now();
    let mut whole_read: Option<Duration> = None;
    while settle.elapsed() < Duration::from_secs(60) {
        let screen = tmux.run(&["capture-pane", "-p", "-t", "t"]);
        match header_took(&screen) {
            Some(d) if d >= Duration::from_secs(1) => whole_read = Some(d),
            Some(_) if rules < 10_000 || whole_read.is_some() => break,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    tmux.run(&[
        "pipe-pane",
        "-t",
        "t",
        "-o",
        &format!("cat >> {}", log.display()),
    ]);
    let Some(start) = cpu_ticks(pid) else {
        println!("skipped: nfscope did not start (pid {pid})");
        return false;
    };
    let t0 = Instant::now();

    // Meanwhile, the tools alone, once a second (start to start; back to back when a poll
    // takes longer), in the same namespace.
    let mut tools_cpu = Duration::ZERO;
    let mut polls = 0;
    while t0.elapsed() < Duration::from_secs(secs) {
        let tick = Instant::now();
        for family in Family::ALL {
            let tool = common::tool_name(family, backend, "save");
            let before = children_cpu();
            let _ = ns.command(&[&tool, "-c"]).output();
            tools_cpu += children_cpu().saturating_sub(before);
        }
        polls += 1;
        std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
    }
    let wall = t0.elapsed().as_secs_f64();
    let end = cpu_ticks(pid).unwrap_or(start);
    let screen = tmux.run(&["capture-pane", "-p", "-t", "t"]);
    tmux.run(&["pipe-pane", "-t", "t"]);
    let bytes = std::fs::metadata(&log).map_or(0, |m| m.len());
    let _ = std::fs::remove_file(&log);

    let hz = 100.0; // USER_HZ on Linux
    let own = (end.0 - start.0) as f64 / hz / wall * 100.0;
    let children = (end.1 - start.1) as f64 / hz / wall * 100.0;
    let tools = tools_cpu.as_secs_f64() / wall * 100.0;
    println!(
        "idle, {rules} IPv4 rules, interval 1 s, {wall:.1} s window, 120x40 terminal{}:",
        whole_read.map_or(String::new(), |d| format!(
            " (after the first whole read, {:.1} s)",
            d.as_secs_f64()
        ))
    );
    println!("  nfscope itself:          {own:.2}% of one core (target < 2% at 1,000 rules)");
    println!("  its save tools (reaped): {children:.2}% of one core");
    println!("  the save tools alone:    {tools:.2}% of one core, {polls} polls in the window");
    println!(
        "  terminal output:         {:.0} bytes/s",
        bytes as f64 / wall
    );
    println!(
        "  the header at the end:   {}",
        header_took(&screen).map_or("-".into(), |d| format!("took {d:?}"))
    );
    if tools > 0.0 {
        println!(
            "  ratio (nfscope + its tools) / tools alone: {:.3} (target at 50,000 rules: at most 0.25)",
            (own + children) / tools
        );
    }
    true
}

/// CPU time of this process's reaped children so far.
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(13).copied().unwrap_or(0) + f.get(14).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}
