//! End to end, as a person would: the real binary in tmux (its own server socket, a fixed size),
//! keys sent with send-keys, the screen read with capture-pane until the expected text appears
//! (no fixed sleeps), and the terminal checked after quitting.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::tmux::Run;
use std::process::Command;

#[test]
fn demo_navigate_help_quit_and_terminal_restored() {
    let Some(run) = Run::start("nav", (100, 30), "{bin} --demo") else {
        return;
    };
    let tmux = &run.tmux;
    tmux.wait_for("filter INPUT (IPv4)");
    // Walk down to the first rule that jumps to a user chain (marked with ›) and open it.
    // The rules pane is the last box on each line; its first word is the rule number.
    let num: usize = tmux
        .screen()
        .lines()
        .filter(|l| l.contains(" › "))
        .find_map(|l| {
            let pane = l.rsplit("││").next()?.trim_start_matches('│');
            pane.split_whitespace().next()?.parse().ok()
        })
        .expect("the demo INPUT chain shows a jump");
    for _ in 1..num {
        tmux.keys(&["Down"]);
    }
    tmux.keys(&["Enter"]);
    let opened = tmux.wait_for("INPUT › filter ");
    assert!(
        !opened.contains("Rule "),
        "Enter on a jump opens the chain, not the details"
    );

    tmux.keys(&["BSpace"]);
    tmux.wait_for("┌ filter INPUT (IPv4)");

    tmux.keys(&["?"]);
    tmux.wait_for("Help");
    tmux.wait_for("this help");
    tmux.keys(&["Escape"]);
    // An Escape and a letter read together are Alt+letter: let the Escape land first.
    tmux.wait_gone("this help");

    tmux.keys(&["q"]);
    assert_eq!(run.exit_status(), "0", "nfscope exits 0 on q");
    run.assert_terminal_restored();
}

#[test]
fn sigterm_and_too_small_terminal() {
    // The inner shell execs nfscope, so its pid is nfscope's.
    let launch = "sh -c 'echo $$ > {dir}/pid; exec {bin} --demo'";
    let Some(run) = Run::start("small", (50, 12), launch) else {
        return;
    };
    let tmux = &run.tmux;
    tmux.wait_for("terminal too small");
    tmux.cmd(&["resize-window", "-t", "t", "-x", "90", "-y", "26"]);
    tmux.wait_for("filter INPUT (IPv4)");
    let pid = std::fs::read_to_string(run.dir.join("pid")).expect("pid");
    Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .expect("kill");
    assert_eq!(run.exit_status(), "0", "SIGTERM is a clean quit");
    run.assert_terminal_restored();
}
