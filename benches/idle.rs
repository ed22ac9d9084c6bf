//! What nfscope costs while someone just watches: the real binary (release build) runs in tmux,
//! inside a throwaway network namespace holding a 1,000-rule set, at the default 1 s interval.
//! Over a measured window it reports nfscope's own CPU (user + system), the CPU of the save
//! tools it ran (reaped children), and the bytes it wrote to the terminal per second (what an SSH
//! link carries). The same window also times `iptables-save -c` + `ip6tables-save -c` alone, once
//! a second, for the ratio. Target: nfscope's own CPU under 2%.
//!
//! Needs root, network namespaces and tmux; prints "skipped" and exits 0 without them. The
//! namespace and the tmux server are always removed. `cargo bench --bench idle [-- SECONDS]`;
//! run without `--bench` (as `cargo test --benches` does) it only makes a short smoke run.

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
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if full { 30 } else { 3 });
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipped: tmux is not installed");
        return;
    }
    let ns = match NetNs::create("idle") {
        Ok(ns) => ns,
        Err(why) => {
            println!("skipped: needs root and network namespaces ({why})");
            return;
        }
    };
    let backend = Backend::Nft;
    ns.restore(Family::V4, backend, &synth::kube_proxy(1_000));

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
    // Let it start and draw its first frames, then count what it writes from here on.
    std::thread::sleep(Duration::from_secs(3));
    tmux.run(&[
        "pipe-pane",
        "-t",
        "t",
        "-o",
        &format!("cat >> {}", log.display()),
    ]);
    let Some(start) = cpu_ticks(pid) else {
        println!("skipped: nfscope did not start (pid {pid})");
        return;
    };
    let t0 = Instant::now();

    // Meanwhile, the tools alone, once a second, in the same namespace.
    let mut tools_cpu = Duration::ZERO;
    while t0.elapsed() < Duration::from_secs(secs) {
        let tick = Instant::now();
        for family in Family::ALL {
            let tool = common::tool_name(family, backend, "save");
            let before = children_cpu();
            let _ = ns.command(&[&tool, "-c"]).output();
            tools_cpu += children_cpu().saturating_sub(before);
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
    }
    let wall = t0.elapsed().as_secs_f64();
    let end = cpu_ticks(pid).unwrap_or(start);
    tmux.run(&["pipe-pane", "-t", "t"]);
    let bytes = std::fs::metadata(&log).map_or(0, |m| m.len());
    let _ = std::fs::remove_file(&log);

    let hz = 100.0; // USER_HZ on Linux
    let own = (end.0 - start.0) as f64 / hz / wall * 100.0;
    let children = (end.1 - start.1) as f64 / hz / wall * 100.0;
    let tools = tools_cpu.as_secs_f64() / wall * 100.0;
    println!("idle, 1,000 IPv4 rules, interval 1 s, {wall:.0} s window, 120x40 terminal:");
    println!("  nfscope itself:          {own:.2}% of one core (target < 2%)");
    println!("  its save tools (reaped): {children:.2}% of one core");
    println!("  the save tools alone:    {tools:.2}% of one core, once a second");
    println!(
        "  terminal output:         {:.0} bytes/s",
        bytes as f64 / wall
    );
    if tools > 0.0 {
        println!(
            "  ratio (nfscope + its tools) / tools alone: {:.2}",
            (own + children) / tools
        );
    }
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
