//! Native nftables tables end to end, as a person would see them (issue 11, points 3, 4 and
//! 9's read-only part): a table made with `nft -f` in a throwaway network namespace (never
//! this machine's rule set), nfscope run there with `ip netns exec` in tmux. The table is in
//! the chain tree with its rules as nft prints them; a ping over the namespace's loopback moves
//! a counter that the screen then shows; a staging key on a native rule says it is read-only
//! and changes nothing in the kernel; the Flow screen shows the native base chain beside
//! iptables' filter INPUT. Skipped (saying why) without root, nft or tmux, unless CI=true.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::tmux::Run;
use nfscope::ruleset::Family;
use nfscope::source::Backend;

const TABLE: &str = "table inet fw {
  chain input {
    type filter hook input priority 0; policy drop;
    icmp type echo-request counter accept
    icmp type echo-reply counter accept
    tcp dport 22 counter accept
  }
}
";

/// The packets column of the rule whose text ends the line `needle` is on.
fn packets_of(screen: &str, needle: &str) -> Option<u64> {
    let line = screen.lines().find(|l| l.contains(needle))?;
    let pane = line.rsplit("││").next()?.trim_start_matches('│');
    pane.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_native_table_its_counters_moved_by_a_ping_and_read_only_keys() {
    let Some(ns) = common::nft_netns("nativetui", TABLE) else {
        return;
    };
    ns.iptables(
        Family::V4,
        Backend::Nft,
        &["-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "ACCEPT"],
    );
    let before = ns.exec_ok(&["nft", "-a", "list", "ruleset"]);
    let launch = format!(
        "env TZ=UTC NFSCOPE_STATE_DIR={{dir}}/state ip netns exec {} {{bin}} --backend nft --interval 0.3",
        ns.name()
    );
    let Some(run) = Run::start("native", (120, 40), &launch) else {
        return;
    };
    let tmux = &run.tmux;
    tmux.wait_for("filter INPUT (IPv4)");
    let screen = tmux.wait_for("nftables (read-only)");
    assert!(screen.contains("inet fw"), "{screen}");
    assert!(
        screen.contains("native nftables chains also filter on input: inet fw input (policy drop)"),
        "{screen}"
    );
    // The tree: its last chain is the native one.
    tmux.keys(&["h"]);
    tmux.keys(&["End"]);
    tmux.keys(&["l"]);
    let screen = tmux.wait_for("inet fw input (nftables) policy drop");
    assert!(
        screen.contains("icmp type echo-request counter accept"),
        "{screen}"
    );
    assert!(screen.contains("tcp dport 22 counter accept"), "{screen}");
    assert_eq!(
        packets_of(&screen, "icmp type echo-request counter accept"),
        Some(0),
        "{screen}"
    );

    // Real traffic: the counter moves, and the screen shows it at the next refresh.
    let out = ns.exec(&["ping", "-c", "4", "-i", "0.2", "-W", "1", "127.0.0.1"]);
    assert!(out.status.success(), "{out:?}");
    let screen = tmux.wait_until("4 echo requests counted", |s| {
        packets_of(s, "icmp type echo-request counter accept") == Some(4)
    });
    assert_eq!(
        packets_of(&screen, "icmp type echo-reply counter accept"),
        Some(4)
    );

    // Staging keys say read-only and do nothing.
    tmux.keys(&["Home"]);
    for k in ["a", "e", "-", "P", "Z"] {
        tmux.keys(&[k]);
        tmux.wait_for("inet fw input: native nftables, read-only in nfscope (use nft)");
    }
    let screen = tmux.screen();
    assert!(!screen.contains("staged"), "{screen}");
    assert!(!screen.contains("rule editor"), "{screen}");
    assert_eq!(
        ns.exec_ok(&["nft", "-a", "list", "ruleset"])
            .lines()
            .filter(|l| !l.contains("counter packets"))
            .collect::<Vec<_>>(),
        before
            .lines()
            .filter(|l| !l.contains("counter packets"))
            .collect::<Vec<_>>(),
        "the kernel's rule set is as it was"
    );

    // The Flow screen: the native chain below iptables' filter INPUT, at the same priority.
    tmux.keys(&["4"]);
    tmux.wait_for("╔ inet fw input");
    tmux.keys(&["Down"]);
    tmux.wait_for(
        "► inet fw input: nftables, read-only · policy drop · priority 0, tied with filter INPUT",
    );

    tmux.keys(&["q"]);
    assert_eq!(run.exit_status(), "0", "nfscope exits 0 on q");
    run.assert_terminal_restored();
}
