//! Edit mode end to end, as a person would use it, against a real kernel: nfscope run with
//! `ip netns exec` in a throwaway network namespace (never this machine's rule set), in tmux:
//! add a rule through the editor, review it on the Changes screen, commit, then confirm (the
//! rule is in `iptables-save` and no watchdog is left), roll back with `n`, or quit during the
//! countdown and let the watchdog roll back at the deadline. Both backends, both families, the
//! lockout warning, `nfscope confirm` from elsewhere; and the demo, which needs no root.
//! Skipped (saying why) without root, tools or tmux, unless CI=true.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::tmux::Run;
use common::{NetNs, have_tools, tables_of};
use nfscope::ruleset::Family;
use nfscope::source::Backend;
use std::path::Path;
use std::time::{Duration, Instant};

const BASE: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
";

const RULE: &str = "-p tcp --dport 8080 -j ACCEPT";

fn backend_flag(b: Backend) -> &'static str {
    match b {
        Backend::Nft => "nft",
        Backend::Legacy => "legacy",
    }
}

/// Whether a watchdog for this state directory still runs (its command line names it).
fn watchdog_running(state: &Path) -> bool {
    let needle = state.display().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .any(|c| c.contains(" watchdog ") && c.contains(&needle))
}

fn wait_until(what: &str, timeout: Duration, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Session {
    ns: NetNs,
    run: Run,
    backend: Backend,
}

impl Session {
    fn start(tag: &str, backend: Backend, extra: &str) -> Option<Session> {
        Session::start_with(tag, backend, "-u SSH_CONNECTION", extra)
    }

    /// `env_args`: what `env` gets before the state directory (unset or set SSH_CONNECTION).
    fn start_with(tag: &str, backend: Backend, env_args: &str, extra: &str) -> Option<Session> {
        let ns = NetNs::for_test(tag)?;
        if !have_tools(backend) {
            return None;
        }
        ns.restore(Family::V4, backend, BASE);
        ns.restore(Family::V6, backend, BASE);
        let launch = format!(
            "env {env_args} TZ=UTC NFSCOPE_STATE_DIR={{dir}}/state ip netns exec {} {{bin}} --backend {} {extra}",
            ns.name(),
            backend_flag(backend)
        );
        let run = Run::start(tag, (120, 40), &launch)?;
        Some(Session { ns, run, backend })
    }

    fn state(&self) -> std::path::PathBuf {
        self.run.dir.join("state")
    }

    fn filter_rules(&self) -> Vec<String> {
        self.filter_rules_of(Family::V4)
    }

    fn filter_rules_of(&self, family: Family) -> Vec<String> {
        let save = self.ns.save(family, self.backend);
        tables_of(&save)
            .into_iter()
            .find(|(t, _)| t == "filter")
            .map(|(_, lines)| lines)
            .unwrap_or_default()
            .into_iter()
            .map(|l| l.split_once("] ").map_or(l.clone(), |(_, r)| r.to_string()))
            .filter(|l| l.starts_with("-A "))
            .collect()
    }

    /// Stage the rule in the editor, review it, commit: returns at the countdown.
    /// The screen at the countdown.
    fn stage_review_commit(&self) -> String {
        let tmux = &self.run.tmux;
        tmux.wait_for("filter INPUT (IPv4)");
        tmux.keys(&["a"]);
        tmux.wait_for("append a rule");
        tmux.keys(&["-l", "--", RULE]);
        tmux.wait_for("nfscope's parser reads it");
        tmux.keys(&["Enter"]);
        // iptables-restore --test runs first; then the rule is staged.
        let rules = tmux.wait_for("1 staged change");
        assert!(rules.contains("+3"), "the new row is marked:\n{rules}");

        tmux.keys(&["5"]);
        let changes = tmux.wait_for("+-A INPUT -p tcp --dport 8080 -j ACCEPT");
        assert!(
            changes.contains("IPv4 filter/INPUT: append: -p tcp --dport 8080 -j ACCEPT"),
            "{changes}"
        );
        tmux.keys(&["c"]);
        tmux.wait_for("Commit 1 staged change");
        tmux.keys(&["y"]);
        let countdown = tmux.wait_for("Rolling back in");
        assert!(countdown.contains("✓ verify"), "{countdown}");
        assert!(
            self.state().join("pending.json").exists(),
            "the watchdog's pending file is there"
        );
        assert!(
            self.filter_rules()
                .contains(&"-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT".to_string()),
            "applied during the countdown: {:?}",
            self.filter_rules()
        );
        countdown
    }

    fn quit(&self) {
        let tmux = &self.run.tmux;
        tmux.keys(&["Escape"]);
        tmux.wait_gone("Esc close");
        tmux.keys(&["q"]);
        assert_eq!(self.run.exit_status(), "0", "nfscope exits 0 on q");
        self.run.assert_terminal_restored();
    }
}

fn edit_review_commit_confirm(tag: &str, backend: Backend) {
    let Some(s) = Session::start(tag, backend, "") else {
        return;
    };
    let countdown = s.stage_review_commit();
    // On nf_tables the kernel is still at the generation the staging's base was read at, so
    // the commit did not read it again; legacy has no generation.
    assert_eq!(
        countdown.contains("re-read skipped"),
        backend == Backend::Nft,
        "{countdown}"
    );
    s.run.tmux.keys(&["y"]);
    s.run.tmux.wait_for("committed and confirmed");
    assert_eq!(
        s.filter_rules(),
        vec![
            "-A INPUT -i lo -j ACCEPT",
            "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT",
            "-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT",
        ]
    );
    assert!(!s.state().join("pending.json").exists());
    wait_until("the watchdog to exit", Duration::from_secs(5), || {
        !watchdog_running(&s.state())
    });
    assert!(
        !s.state().join("staging.json").exists(),
        "nothing is staged any more"
    );
    s.quit();
    // The confirmed rule stays after nfscope is gone (no watchdog is left to undo it).
    assert!(!watchdog_running(&s.state()));
    assert_eq!(s.filter_rules().len(), 3);
}

#[test]
fn edit_review_commit_confirm_nft() {
    edit_review_commit_confirm("editnft", Backend::Nft);
}

#[test]
fn edit_review_commit_confirm_legacy() {
    edit_review_commit_confirm("editlegacy", Backend::Legacy);
}

#[test]
fn n_rolls_back_now_and_keeps_the_staging() {
    let Some(s) = Session::start("editroll", Backend::Nft, "") else {
        return;
    };
    s.stage_review_commit();
    s.run.tmux.keys(&["n"]);
    s.run.tmux.wait_for("still staged");
    assert_eq!(s.filter_rules().len(), 2, "back to the base");
    assert!(!s.state().join("pending.json").exists());
    wait_until("the watchdog to exit", Duration::from_secs(5), || {
        !watchdog_running(&s.state())
    });
    assert!(
        s.state().join("staging.json").exists(),
        "the staged work is kept"
    );
    s.quit();
}

#[test]
fn quitting_during_the_countdown_leaves_the_rollback_to_the_watchdog() {
    let Some(s) = Session::start("editquit", Backend::Nft, "--confirm-timeout 5") else {
        return;
    };
    s.stage_review_commit();
    s.run.tmux.keys(&["C-c"]);
    assert_eq!(s.run.exit_status(), "0");
    s.run.assert_terminal_restored();
    // Printed after the terminal is back: when the watchdog rolls back, and how to keep it.
    let shell = s.run.tmux.wait_for("nfscope confirm");
    assert!(shell.contains("not confirmed"), "{shell}");
    assert!(
        shell.contains("rolls it back at") && shell.contains("+00:00"),
        "{shell}"
    );
    assert_eq!(
        s.filter_rules().len(),
        3,
        "still applied right after quitting"
    );
    wait_until("the watchdog's rollback", Duration::from_secs(15), || {
        s.filter_rules().len() == 2
    });
    wait_until("the watchdog to exit", Duration::from_secs(5), || {
        !watchdog_running(&s.state())
    });
    // The next start says how it ended, once.
    let launch = format!(
        "env -u SSH_CONNECTION TZ=UTC NFSCOPE_STATE_DIR={} ip netns exec {} {{bin}} --backend nft",
        s.state().display(),
        s.ns.name()
    );
    let again = Run::start("editquit2", (160, 40), &launch).expect("tmux");
    let screen = again.tmux.wait_for("rolled back by the watchdog");
    assert!(screen.contains("The last commit (by "), "{screen}");
    // The staged change is still saved (the rollback keeps it): the resume question is up too.
    // Esc puts it off; then q quits.
    again.tmux.wait_for("Resume?");
    again.tmux.keys(&["Escape"]);
    again.tmux.wait_gone("Resume?");
    again.tmux.keys(&["q"]);
    assert_eq!(again.exit_status(), "0");
    let third = Run::start("editquit3", (160, 40), &launch).expect("tmux");
    third.tmux.wait_for("Resume?");
    assert!(
        !third.tmux.screen().contains("The last commit"),
        "said once only"
    );
    third.tmux.keys(&["Escape"]);
    third.tmux.wait_gone("Resume?");
    third.tmux.keys(&["q"]);
    assert_eq!(third.exit_status(), "0");
}

#[test]
fn a_change_that_cuts_the_ssh_session_needs_the_word_typed() {
    // A session over loopback; flushing INPUT and setting its policy to DROP cuts it.
    let Some(s) = Session::start_with(
        "editlock",
        Backend::Nft,
        "SSH_CONNECTION='127.0.0.1 50000 127.0.0.1 22'",
        "",
    ) else {
        return;
    };
    let tmux = &s.run.tmux;
    tmux.wait_for("filter INPUT (IPv4)");
    tmux.keys(&["F"]);
    tmux.wait_for("Flush the chain?");
    tmux.keys(&["y"]);
    tmux.wait_for("1 staged change");
    tmux.keys(&["P"]);
    tmux.wait_for("Flip the policy?");
    tmux.keys(&["y"]);
    tmux.wait_for("2 staged changes");
    tmux.keys(&["5"]);
    tmux.wait_for("+:INPUT DROP");
    tmux.keys(&["c"]);
    tmux.wait_for("Commit 2 staged changes");
    tmux.keys(&["y"]);
    let warning = tmux.wait_for("would cut you off");
    assert!(
        warning.contains("the policy of chain INPUT (DROP)"),
        "the deciding rule is named:\n{warning}"
    );
    assert_eq!(s.filter_rules().len(), 2, "nothing applied yet");
    assert!(!s.state().join("pending.json").exists());
    tmux.keys(&["-l", "lockout"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("Rolling back in");
    tmux.keys(&["y"]);
    tmux.wait_for("committed and confirmed");
    assert!(s.filter_rules().is_empty(), "{:?}", s.filter_rules());
    let save = s.ns.save(Family::V4, Backend::Nft);
    assert!(save.contains(":INPUT DROP"), "{save}");
    s.quit();
}

#[test]
fn an_ipv6_rule_is_committed_with_ip6tables() {
    let Some(s) = Session::start("edit6", Backend::Nft, "") else {
        return;
    };
    let tmux = &s.run.tmux;
    tmux.wait_for("filter INPUT (IPv4)");
    // The tree: IPv4 filter INPUT, FORWARD, OUTPUT, then IPv6 filter INPUT.
    tmux.keys(&["Left"]);
    for _ in 0..3 {
        tmux.keys(&["Down"]);
    }
    tmux.keys(&["Right"]);
    tmux.wait_for("filter INPUT (IPv6)");
    tmux.keys(&["a"]);
    tmux.wait_for("IPv6 filter/INPUT: append a rule");
    tmux.keys(&["-l", "--", "-s 2001:db8::1 -j DROP"]);
    tmux.wait_for("nfscope's parser reads it");
    tmux.keys(&["Enter"]);
    tmux.wait_for("1 staged change");
    tmux.keys(&["5"]);
    tmux.wait_for("+-A INPUT -s 2001:db8::1 -j DROP");
    tmux.keys(&["c"]);
    tmux.wait_for("Commit 1 staged change");
    tmux.keys(&["y"]);
    tmux.wait_for("Rolling back in");
    tmux.keys(&["y"]);
    tmux.wait_for("committed and confirmed");
    assert!(
        s.filter_rules_of(Family::V6)
            .contains(&"-A INPUT -s 2001:db8::1/128 -j DROP".to_string()),
        "{:?}",
        s.filter_rules_of(Family::V6)
    );
    assert_eq!(s.filter_rules().len(), 2, "IPv4 untouched");
    assert!(!s.state().join("pending.json").exists());
    s.quit();
}

#[test]
fn nfscope_confirm_from_another_process_keeps_the_change() {
    let Some(s) = Session::start("editconf", Backend::Nft, "--confirm-timeout 60") else {
        return;
    };
    s.stage_review_commit();
    // As from a new SSH connection: `nfscope confirm` with the same state directory.
    let out =
        s.ns.command(&[env!("CARGO_BIN_EXE_nfscope"), "confirm"])
            .env("NFSCOPE_STATE_DIR", s.state())
            .output()
            .expect("nfscope confirm runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The UI looks once a second, so it says so long before the deadline.
    s.run.tmux.wait_for("confirmed from elsewhere");
    assert!(!s.run.tmux.screen().contains("Rolling back in"));
    assert_eq!(s.filter_rules().len(), 3, "the rule stays");
    wait_until("the watchdog to exit", Duration::from_secs(5), || {
        !watchdog_running(&s.state())
    });
    s.quit();
}

/// The same flow on the demo world, which needs neither root nor a namespace.
#[test]
fn the_demo_commits_in_memory() {
    let Some(run) = Run::start("editdemo", (100, 30), "{bin} --demo --confirm-timeout 20") else {
        return;
    };
    let tmux = &run.tmux;
    tmux.wait_for("filter INPUT (IPv4)");
    tmux.keys(&["a"]);
    tmux.wait_for("append a rule");
    tmux.keys(&["-l", "--", RULE]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("1 staged change");
    tmux.keys(&["C"]);
    tmux.wait_for("+-A INPUT -p tcp --dport 8080 -j ACCEPT");
    tmux.keys(&["c"]);
    tmux.wait_for("Commit 1 staged change");
    tmux.keys(&["y"]);
    tmux.wait_for("Rolling back in");
    tmux.keys(&["Enter"]);
    tmux.wait_for("committed and confirmed");
    tmux.keys(&["Escape"]);
    tmux.wait_gone("Esc close");
    tmux.keys(&["1"]);
    // The demo's source now reads the committed rule, counters moving (its matches are cut
    // at 100 columns: the save form shows the whole line).
    let rules = tmux.wait_for("IPv4 52 rules");
    assert!(
        rules
            .lines()
            .any(|l| (l.contains("   13 ") || l.contains("  !13 ")) && l.contains("ACCEPT     tcp")),
        "{rules}"
    );
    tmux.keys(&["S"]);
    tmux.wait_for("-A INPUT -p tcp --dport 8080 -j ACCEPT");
    tmux.keys(&["q"]);
    assert_eq!(run.exit_status(), "0");
    run.assert_terminal_restored();
}
