//! The Trace screen end to end: `nfscope --demo` in tmux, as a person would use it: switch to
//! the screen, type a packet (an internet host to the gateway's WAN port 2222, which the demo
//! forwards to the NAS), trace it, read the verdict, open the deciding rule on the Rules screen,
//! come back, quit; then check the terminal was restored. Skipped (saying why) where tmux is
//! missing, unless CI=true.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::tmux::{Run, Tmux};

/// Type into the form's field after pressing Tab `tabs` times.
fn field(tmux: &Tmux, tabs: usize, text: &str) {
    for _ in 0..tabs {
        tmux.keys(&["Tab"]);
    }
    tmux.keys(&["-l", text]);
}

fn trace_then_open_the_deciding_rule(tag: &str, size: (u16, u16)) {
    let Some(run) = Run::start(tag, size, "{bin} --demo") else {
        return;
    };
    let tmux = &run.tmux;
    tmux.wait_for("filter INPUT");
    tmux.keys(&["3"]);
    // The global keys work on entry; e starts editing the form.
    tmux.wait_for("e edit");
    tmux.keys(&["e"]);
    tmux.wait_for("Esc leave form");
    // proto is tcp already; src, dst, dport, in, out.
    field(tmux, 1, "198.51.100.7");
    field(tmux, 1, "203.0.113.2");
    field(tmux, 2, "2222");
    field(tmux, 3, "wan0");
    field(tmux, 1, "lan0");
    tmux.keys(&["Enter"]);
    let traced = tmux.wait_until("the trace drawn", |s| {
        s.contains("verdict: ACCEPT") && s.contains("►") && s.contains("goto FWD_IN")
    });
    assert!(
        traced.contains("decided by rule 1 of chain FWD_IN"),
        "{traced}"
    );
    // The NAT rewrite is on the way, above the deciding rule (scrolled off on a small screen).
    if size.1 >= 40 {
        assert!(
            traced.contains("DNAT: dst 203.0.113.2 → 10.0.0.10"),
            "{traced}"
        );
    }
    assert!(
        traced.contains("►"),
        "the deciding rule is marked:\n{traced}"
    );

    // The cursor is on the deciding step: Enter shows it on the Rules screen.
    tmux.keys(&["Enter"]);
    // Wait for the whole frame: a capture can land between the header and the footer.
    tmux.wait_until("the rule on the Rules screen", |s| {
        s.contains("filter FWD_IN (IPv4)") && s.contains("Bksp back")
    });
    tmux.keys(&["i"]);
    let detail = tmux.wait_for("-d 10.0.0.10/32");
    assert!(
        detail.contains("--dport 22"),
        "the selected rule is FWD_IN's first:\n{detail}"
    );
    tmux.keys(&["Escape"]);
    tmux.wait_gone("-d 10.0.0.10/32 -p tcp");

    // Backspace returns to the trace.
    tmux.keys(&["BSpace"]);
    tmux.wait_until("the trace again", |s| {
        s.contains("verdict: ACCEPT") && s.contains("►")
    });

    tmux.keys(&["q"]);
    assert_eq!(run.exit_status(), "0", "nfscope exits 0 on q");
    run.assert_terminal_restored();
}

#[test]
fn trace_a_forwarded_packet_and_open_its_deciding_rule_120x40() {
    trace_then_open_the_deciding_rule("trace", (120, 40));
}

#[test]
fn trace_a_forwarded_packet_and_open_its_deciding_rule_80x24() {
    trace_then_open_the_deciding_rule("trace80", (80, 24));
}

/// The Trace screen walks native nftables chains too (the kernel's, in a throwaway namespace):
/// issue 11's reproduction, tcp/80 dropped by the policy of `inet fw input` beside an
/// iptables-nft rule that accepts it.
#[test]
fn the_trace_screen_walks_native_chains() {
    let script = "table inet fw {\n  chain input {\n    type filter hook input priority 0; policy drop;\n    tcp dport 22 counter accept\n  }\n}\n";
    let Some(ns) = common::nft_netns("tracenative", script) else {
        return;
    };
    ns.exec_ok(&[
        "iptables-nft",
        "-w",
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        "80",
        "-j",
        "ACCEPT",
    ]);
    ns.exec_ok(&[
        "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "p0",
    ]);
    ns.exec_ok(&["ip", "addr", "add", "10.9.0.1/24", "dev", "eth0"]);
    ns.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    let launch = format!("ip netns exec {} {{bin}} --backend nft", ns.name());
    let Some(run) = Run::start("tracenative", (120, 40), &launch) else {
        return;
    };
    let tmux = &run.tmux;
    tmux.wait_for("filter INPUT");
    tmux.keys(&["3"]);
    // The global keys work on entry; e starts editing the form.
    tmux.wait_for("e edit");
    tmux.keys(&["e"]);
    tmux.wait_for("Esc leave form");
    field(tmux, 1, "10.9.0.2");
    field(tmux, 1, "10.9.0.1");
    field(tmux, 2, "80");
    field(tmux, 3, "eth0");
    tmux.keys(&["Enter"]);
    let traced = tmux.wait_until("the trace drawn", |s| s.contains("verdict: DROP"));
    assert!(traced.contains("inet fw (nftables) input"), "{traced}");
    assert!(traced.contains("policy of inet fw input"), "{traced}");
    tmux.keys(&["q"]);
}
