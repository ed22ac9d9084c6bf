//! The issue's reproduction, as a user meets it: the real binary in tmux, on the real kernel of a
//! throwaway network namespace. Rule 4 of INPUT (`--dport 22 -j ACCEPT`) is deleted with Del;
//! meanwhile another tool inserts a rule at the top (as fail2ban does); the commit is refused,
//! `r` rebases, the commit goes through and is confirmed. The kernel then holds the ICMP rule,
//! the other tool's rule, and no `--dport 22` rule. Needs root (skipped otherwise, failed
//! under CI=true).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::tmux::Run;
use common::{NetNs, have_tools};
use nfscope::ruleset::Family;
use nfscope::source::Backend;

const FW: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
-A INPUT -p icmp -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n\
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n";

fn input_rules(ns: &NetNs) -> Vec<String> {
    ns.save(Family::V4, Backend::Nft)
        .lines()
        .filter_map(|l| {
            let l = l.split_once("] ").map_or(l, |(_, r)| r);
            l.strip_prefix("-A INPUT ").map(str::to_string)
        })
        .collect()
}

#[test]
fn a_staged_delete_survives_another_tools_insert_through_the_tui() {
    if !have_tools(Backend::Nft) {
        return;
    }
    let Some(ns) = NetNs::for_test("rebasee2e") else {
        return;
    };
    ns.restore(Family::V4, Backend::Nft, FW);
    ns.restore(
        Family::V6,
        Backend::Nft,
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
    );
    let launch = format!(
        "env -u SSH_CONNECTION NFSCOPE_STATE_DIR={{dir}}/state ip netns exec {} {{bin}} --backend nft --confirm-timeout 60",
        ns.name()
    );
    let Some(run) = Run::start("rebasee2e", (120, 40), &launch) else {
        return;
    };
    let tmux = &run.tmux;
    tmux.wait_for("filter INPUT (IPv4)");
    // Rule 4 is the --dport 22 rule: three rows down from the first.
    tmux.keys(&["Down", "Down", "Down"]);
    tmux.keys(&["Delete"]);
    let ask = tmux.wait_for("Delete this rule?");
    assert!(ask.contains("--dport 22"), "{ask}");
    tmux.keys(&["y"]);
    tmux.wait_for("1 staged change");

    // fail2ban's insert at the top, by another process.
    ns.iptables(
        Family::V4,
        Backend::Nft,
        &["-I", "INPUT", "1", "-s", "192.0.2.66", "-j", "DROP"],
    );

    tmux.keys(&["5"]);
    tmux.wait_for("delete rule 4");
    tmux.keys(&["c"]);
    tmux.wait_for("Commit 1 staged change");
    tmux.keys(&["y"]);
    let refused = tmux.wait_for("still apply");
    assert!(refused.contains("192.0.2.66"), "{refused}");
    tmux.keys(&["r"]);
    // The rebased operation names its rule at its new place.
    tmux.wait_for("delete rule 5");
    tmux.keys(&["c"]);
    tmux.wait_for("Commit 1 staged change");
    tmux.keys(&["y"]);
    tmux.wait_for("Rolling back in");
    tmux.keys(&["y"]);
    tmux.wait_for("committed and confirmed");

    let rules = input_rules(&ns);
    assert_eq!(
        rules,
        [
            "-s 192.0.2.66/32 -j DROP",
            "-i lo -j ACCEPT",
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-p icmp -j ACCEPT",
            "-p tcp -m tcp --dport 80 -j ACCEPT",
        ]
    );
    tmux.keys(&["Escape"]);
    tmux.keys(&["q"]);
    assert_eq!(run.exit_status(), "0");
    run.assert_terminal_restored();
}
