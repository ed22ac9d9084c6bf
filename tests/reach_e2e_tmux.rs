//! The Reach popup as a user meets it, on the kernel's rule set: nfscope runs in tmux inside a
//! throwaway network namespace at 80x24 and 120x40; `r` on a rule shows the matrix for its port,
//! Enter traces a cell's packet, q quits and the terminal is restored.

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

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

const RULES: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -s 10.1.0.0/16 -p tcp -m tcp --dport 8022 -j ACCEPT
-A INPUT -p tcp -j REJECT --reject-with tcp-reset
COMMIT
";

#[test]
fn r_shows_who_can_reach_a_rules_port_on_the_kernels_rules() {
    if !have_tools(Backend::Nft) {
        return;
    }
    for (w, h) in SIZES {
        let tag = format!("reach{w}");
        let Some(ns) = NetNs::for_test(&tag) else {
            return;
        };
        ns.exec_ok(&["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"]);
        ns.restore(Family::V4, Backend::Nft, RULES);
        let launch = format!(
            "env NFSCOPE_NO_SYSLOG=1 NFSCOPE_STATE_DIR={{dir}}/state ip netns exec {} {{bin}} --backend nft",
            ns.name()
        );
        let Some(run) = Run::start(&tag, (w, h), &launch) else {
            return;
        };
        let tmux = &run.tmux;
        tmux.wait_for("filter INPUT");
        // Rule 2: the port 8022 accept.
        tmux.keys(&["j", "r"]);
        let screen = tmux.wait_for("Reach · IPv4 filter INPUT · tcp dport 8022");
        assert!(screen.contains("10.1.0.0/16"), "{screen}");
        assert!(screen.contains("✓"), "{screen}");
        // The 10.1/16 row: a certain edge; Enter traces it.
        let row = screen
            .lines()
            .find(|l| l.contains("10.1.0.0/16") && !l.contains(" = "))
            .expect("the 10.1/16 row");
        assert!(row.contains('✓'), "{row}");
        tmux.keys(&["j"]);
        let screen = tmux.wait_for("certainly accepted");
        assert!(screen.contains("b → a: certainly accepted"), "{screen}");
        tmux.keys(&["Enter"]);
        let screen = tmux.wait_for("verdict:");
        assert!(screen.contains("ACCEPT"), "{screen}");
        assert!(screen.contains("10.1.0.0"), "{screen}");
        tmux.keys(&["q"]);
        assert_eq!(run.exit_status(), "0");
        run.assert_terminal_restored();
    }
}
