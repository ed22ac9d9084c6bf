//! `nfscope apply`, `confirm` and `rollback` against the real kernel, on both backends and both
//! families: every case runs the real binary with `ip netns exec` inside a throwaway network
//! namespace of its own, with a state directory of its own (`NFSCOPE_STATE_DIR`). The watchdog
//! must roll back at the deadline whatever happens to the nfscope that armed it (SIGKILL,
//! SIGHUP, standard input closed), and keep the change once `nfscope confirm` ran. Needs root
//! (skipped otherwise, failed under CI=true). No watchdog outlives a case: its pid, from
//! pending.json, is killed when the case is dropped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::tmux::Run as Tty;
use common::{NetNs, Run, have_tools, tables_of};
use nfscope::ruleset::Family;
use nfscope::source::Backend;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nfscope");

/// The rules each case starts from, in both families.
const BASE: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
[7:420] -A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
";

/// Hand-written, as people write them: short forms the kernel lists in its own way, a new
/// table (mangle) and a user chain. NETWORK is the family's documentation prefix.
const NEW: &str = "# the new rules
*mangle
:PREROUTING ACCEPT [0:0]
-A PREROUTING -p udp --dport 53 -j MARK --set-mark 1
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:LOGDROP - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p tcp --dport 22 -j ACCEPT
-A INPUT -s NETWORK -j LOGDROP
-A LOGDROP -j DROP
COMMIT
";

fn base(_: Family) -> &'static str {
    BASE
}

fn new_rules(f: Family) -> String {
    NEW.replace(
        "NETWORK",
        match f {
            Family::V4 => "192.0.2.0/24",
            Family::V6 => "2001:db8::/32",
        },
    )
}

fn flag(b: Backend) -> &'static str {
    match b {
        Backend::Nft => "nft",
        Backend::Legacy => "legacy",
    }
}

/// The rules of a save text, counters and `#` lines left out; a table that holds nothing
/// (built-in chains ACCEPT, no rules: what a rollback leaves of a table the backup did not
/// have) counts as absent.
fn rules_of(text: &str) -> Vec<(String, Vec<String>)> {
    tables_of(text)
        .into_iter()
        .map(|(name, lines)| {
            let lines = lines
                .into_iter()
                .map(|l| {
                    let l = match l.strip_prefix('[') {
                        Some(rest) => rest.split_once("] ").map_or(l.clone(), |(_, r)| r.into()),
                        None => l,
                    };
                    match l.rsplit_once(" [") {
                        Some((decl, _)) if l.starts_with(':') => decl.to_string(),
                        _ => l,
                    }
                })
                .collect::<Vec<_>>();
            (name, lines)
        })
        .filter(|(_, lines)| {
            lines
                .iter()
                .any(|l| l.starts_with("-A ") || (l.starts_with(':') && !l.ends_with(" ACCEPT")))
        })
        .collect()
}

/// The lines of a save text that are not `#` comments (counters included).
fn non_comment(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// Wait for `cond`, at most `limit`.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pid_alive(pid: i32) -> bool {
    // A zombie is dead for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next().map(|x| x != "Z"))
            .unwrap_or(false)
    })
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: sending a signal to a process this test started.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// One case: a namespace holding the base rules of both families, a state directory, and the
/// nfscope processes it started. Drop kills them and the watchdog, then removes the directory
/// (the namespace's own guard deletes it afterwards).
struct Case {
    ns: NetNs,
    backend: Backend,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Case {
    fn new(test: &str, backend: Backend) -> Option<Case> {
        if !have_tools(backend) {
            return None;
        }
        let ns = NetNs::for_test(&format!("{test}{}", flag(backend)))?;
        let dir = std::env::temp_dir().join(format!("nfscope-state-{}", ns.name()));
        let _ = std::fs::remove_dir_all(&dir);
        for f in Family::ALL {
            ns.restore(f, backend, base(f));
        }
        Some(Case {
            ns,
            backend,
            dir,
            children: Vec::new(),
        })
    }

    /// Back to the base rules, the mangle table emptied.
    fn reset(&self) {
        let mangle = "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n";
        for f in Family::ALL {
            self.ns
                .restore(f, self.backend, &format!("{}{mangle}", base(f)));
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut all = vec![BIN, "--backend", flag(self.backend)];
        all.extend_from_slice(args);
        let mut c = self.ns.command(&all);
        c.env("NFSCOPE_STATE_DIR", &self.dir)
            .env("NFSCOPE_NO_SYSLOG", "1")
            .env("NO_COLOR", "1")
            .env_remove("SSH_CONNECTION")
            .env_remove("RUST_BACKTRACE");
        c
    }

    /// Run nfscope to the end, standard input closed.
    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// `run`, with more environment.
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.command(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run nfscope")
            .into()
    }

    /// A file in the state directory's sibling (not in the directory itself).
    fn file(&self, name: &str, text: &str) -> String {
        let p = std::env::temp_dir().join(format!("{}-{name}", self.ns.name()));
        std::fs::write(&p, text).expect("write a rules file");
        p.display().to_string()
    }

    fn files(&self) -> (String, String) {
        (
            self.file("new.v4", &new_rules(Family::V4)),
            self.file("new.v6", &new_rules(Family::V6)),
        )
    }

    fn save(&self, f: Family) -> String {
        self.ns.save(f, self.backend)
    }

    fn rules(&self, f: Family) -> Vec<(String, Vec<String>)> {
        rules_of(&self.save(f))
    }

    fn holds_base(&self, f: Family) -> bool {
        self.rules(f) == rules_of(base(f))
    }

    /// Whether the kernel holds the new rules: the LOGDROP chain and the DROP policy.
    fn holds_new(&self, f: Family) -> bool {
        let s = self.save(f);
        s.contains(":INPUT DROP") && s.contains("-j LOGDROP") && s.contains("--set-xmark 0x1")
    }

    fn pending(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.join("pending.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn watchdog_pid(&self) -> Option<i32> {
        self.pending()?["watchdog_pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
    }

    fn audit_actions(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("audit lines are JSON");
                assert_eq!(v["user"], "root", "{l}");
                assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
                v["action"].as_str().unwrap_or("").to_string()
            })
            .collect()
    }

    /// `nfscope apply --yes` of the new rules of both families: the watchdog's pid.
    fn apply_yes(&self, timeout: &str) -> i32 {
        let (v4, v6) = self.files();
        let run = self.run(&[
            "apply",
            &v4,
            "--file6",
            &v6,
            "--confirm-timeout",
            timeout,
            "--yes",
        ]);
        assert_eq!(run.code, 0, "{:?}: {run:?}", self.backend);
        assert!(run.stdout.contains("from a NEW SSH connection"), "{run:?}");
        assert!(run.stdout.contains("`nfscope confirm`"), "{run:?}");
        let pid = self.watchdog_pid().expect("a watchdog pid in pending.json");
        assert!(pid_alive(pid), "the watchdog runs");
        pid
    }

    /// The new rules are in; the watchdog puts the base back (within 10 s) and logs it.
    fn expect_rollback_by_the_watchdog(&self, what: &str) {
        for f in Family::ALL {
            assert!(self.holds_new(f), "{what} {f:?} before the deadline");
        }
        assert!(
            wait_for(Duration::from_secs(10), || Family::ALL
                .iter()
                .all(|&f| self.holds_base(f))),
            "{what}: not rolled back: {}",
            self.save(Family::V4)
        );
        assert!(wait_for(Duration::from_secs(2), || self
            .pending()
            .is_none()));
        assert_eq!(self.audit_actions(), ["apply", "rollback"]);
    }

    /// Start `nfscope apply` with standard input and output piped, and wait until it asks.
    fn apply_asking(&mut self, args: &[&str]) -> (i32, std::process::ChildStdin) {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nfscope apply");
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let pid = i32::try_from(child.id()).expect("a pid");
        self.children.push(child);
        let end = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains("Keep this change?") => return (pid, stdin),
                Ok(l) => seen.push(l),
                Err(_) => panic!("nfscope apply never asked; it printed {seen:?}"),
            }
        }
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(pid) = self.watchdog_pid() {
            let mine = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c).contains(&self.dir.display().to_string())
            });
            if mine {
                signal(pid, libc::SIGKILL);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // The rules files written by `file`, and other directories a case made.
        let prefix = format!("{}-", self.ns.name());
        if let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let p = e.path();
                    let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir_all(&p));
                }
            }
        }
    }
}

const BACKENDS: [Backend; 2] = [Backend::Nft, Backend::Legacy];

/// Run `case` once per backend, each time in a fresh Case (skipped, as a whole, without root
/// or the tools).
fn for_each_backend(test: &str, case: impl Fn(Case)) {
    for backend in BACKENDS {
        let Some(c) = Case::new(test, backend) else {
            return;
        };
        case(c);
    }
}

#[test]
fn confirm_from_another_process_keeps_the_change() {
    for_each_backend("confirm", |c| {
        let backend = c.backend;
        let pid = c.apply_yes("3");
        for f in Family::ALL {
            assert!(c.holds_new(f), "{backend:?} {f:?}: {}", c.save(f));
        }

        // One commit waits at a time: the next apply is refused, and changes nothing.
        let (v4, v6) = c.files();
        let busy = c.run(&["apply", &v4, "--file6", &v6, "--no-confirm"]);
        assert_eq!(busy.code, 1, "{busy:?}");
        assert!(
            busy.stderr.contains("is waiting for confirmation until")
                && busy.stderr.contains("Nothing was changed"),
            "{busy:?}"
        );
        // A time for people: local, with its offset (here +05:30).
        let busy = c.run_env(
            &["apply", &v4, "--file6", &v6, "--no-confirm"],
            &[("TZ", "IST-5:30")],
        );
        assert!(busy.stderr.contains(" +05:30:"), "{busy:?}");
        assert_eq!(c.watchdog_pid(), Some(pid));

        let ok = c.run(&["confirm"]);
        assert_eq!(ok.code, 0, "{ok:?}");
        assert!(ok.stdout.contains("Confirmed"), "{ok:?}");
        assert!(c.pending().is_none());
        assert!(
            wait_for(Duration::from_secs(2), || !pid_alive(pid)),
            "the watchdog stops once confirmed"
        );
        // Past the deadline (3 s after the apply) nothing went back: no watchdog is left to
        // act, so this waits for the clock, not for a process.
        std::thread::sleep(Duration::from_millis(3500));
        for f in Family::ALL {
            assert!(c.holds_new(f), "{backend:?} {f:?} after the deadline");
        }
        let again = c.run(&["confirm"]);
        assert_eq!(again.code, 1, "{again:?}");
        assert!(
            again
                .stderr
                .contains("no commit is waiting for confirmation"),
            "{again:?}"
        );
        assert_eq!(c.audit_actions(), ["apply", "confirm"]);
    });
}

#[test]
fn without_confirmation_the_change_goes_back_at_the_deadline() {
    for_each_backend("deadline", |c| {
        let backend = c.backend;
        let (v4, v6) = c.files();
        let started = Instant::now();
        // No terminal: standard input is closed, so nothing can confirm.
        let run = c.run(&["apply", &v4, "--file6", &v6, "--confirm-timeout", "2"]);
        assert_eq!(run.code, 1, "{backend:?}: {run:?}");
        assert!(
            run.stderr.contains("standard input is closed")
                && run.stderr.contains("rolls the change back at"),
            "{run:?}"
        );
        c.expect_rollback_by_the_watchdog(&format!("{backend:?}"));
        assert!(started.elapsed() >= Duration::from_millis(1900));
    });
}

/// Kill the nfscope that armed the watchdog with `sig` during the countdown: the watchdog
/// still rolls back at the deadline.
fn dies_during_the_countdown(test: &str, sig: i32) {
    for_each_backend(test, |mut c| {
        let backend = c.backend;
        let (v4, v6) = c.files();
        let (pid, _stdin) =
            c.apply_asking(&["apply", &v4, "--file6", &v6, "--confirm-timeout", "3"]);
        let watchdog = c.watchdog_pid().expect("a watchdog");
        signal(pid, sig);
        if sig == libc::SIGHUP {
            // A hang-up reaches the watchdog too when it shares the terminal's session; it
            // ignores it.
            signal(watchdog, libc::SIGHUP);
        }
        let child = c.children.last_mut().expect("the apply");
        let status = child.wait().expect("apply ends");
        assert!(!status.success(), "{backend:?}: {status:?}");
        assert!(
            pid_alive(watchdog),
            "{backend:?}: the watchdog outlived nfscope"
        );
        c.expect_rollback_by_the_watchdog(&format!("{backend:?} after signal {sig}"));
        assert!(wait_for(Duration::from_secs(2), || !pid_alive(watchdog)));
    });
}

#[test]
fn killed_with_sigkill_during_the_countdown_still_rolled_back() {
    dies_during_the_countdown("sigkill", libc::SIGKILL);
}

#[test]
fn a_hang_up_during_the_countdown_still_rolled_back() {
    dies_during_the_countdown("sighup", libc::SIGHUP);
}

#[test]
fn ctrl_c_or_sigterm_to_the_watchdog_rolls_back_at_once() {
    for_each_backend("stop", |mut c| {
        let backend = c.backend;
        let (v4, v6) = c.files();
        // Ctrl-C during the countdown is a no.
        let (pid, _stdin) =
            c.apply_asking(&["apply", &v4, "--file6", &v6, "--confirm-timeout", "60"]);
        assert!(Family::ALL.iter().all(|&f| c.holds_new(f)));
        signal(pid, libc::SIGINT);
        let status = c.children.last_mut().expect("apply").wait().expect("ends");
        assert_eq!(status.code(), Some(1), "{backend:?}: {status:?}");
        for f in Family::ALL {
            assert!(c.holds_base(f), "{backend:?} {f:?} after Ctrl-C");
        }
        assert!(c.pending().is_none());

        // A watchdog told to stop (a logout that kills the session's processes) rolls back
        // on its way out instead of leaving the change unguarded.
        c.reset();
        let watchdog = c.apply_yes("60");
        signal(watchdog, libc::SIGTERM);
        assert!(
            wait_for(Duration::from_secs(5), || Family::ALL
                .iter()
                .all(|&f| c.holds_base(f))),
            "{backend:?}: not rolled back on SIGTERM"
        );
        assert!(wait_for(Duration::from_secs(2), || !pid_alive(watchdog)));
        assert!(c.pending().is_none());
        assert_eq!(
            c.audit_actions(),
            ["apply", "rollback", "apply", "rollback"]
        );
    });
}

#[test]
fn typing_yes_confirms_and_anything_else_rolls_back_at_once() {
    for_each_backend("typing", |mut c| {
        let backend = c.backend;
        let (v4, v6) = c.files();
        let (_, mut stdin) =
            c.apply_asking(&["apply", &v4, "--file6", &v6, "--confirm-timeout", "20"]);
        // `+` moves the deadline 20 s later.
        let deadline = |c: &Case| c.pending().and_then(|p| p["deadline_unix_ms"].as_u64());
        let first = deadline(&c).expect("a deadline");
        stdin.write_all(b"+\n").expect("answer");
        assert!(
            wait_for(Duration::from_secs(5), || deadline(&c)
                == Some(first + 20_000)),
            "{backend:?}: not extended"
        );
        stdin.write_all(b"yes\n").expect("answer");
        let status = c.children.last_mut().expect("apply").wait().expect("ends");
        assert!(status.success(), "{backend:?}: {status:?}");
        assert!(c.pending().is_none());
        for f in Family::ALL {
            assert!(c.holds_new(f), "{backend:?} {f:?} confirmed");
        }

        // A no: back at once, long before the deadline.
        c.reset();
        let started = Instant::now();
        let (_, mut stdin) =
            c.apply_asking(&["apply", &v4, "--file6", &v6, "--confirm-timeout", "20"]);
        stdin.write_all(b"no\n").expect("answer");
        let status = c.children.last_mut().expect("apply").wait().expect("ends");
        assert!(!status.success(), "{backend:?}: {status:?}");
        for f in Family::ALL {
            assert!(c.holds_base(f), "{backend:?} {f:?} rolled back");
        }
        assert!(started.elapsed() < Duration::from_secs(15));
        assert!(c.pending().is_none());
        assert_eq!(c.audit_actions(), ["apply", "confirm", "apply", "rollback"]);
    });
}

#[test]
fn rollback_restores_the_latest_backup_and_disarms_the_watchdog() {
    for_each_backend("rollback", |c| {
        let backend = c.backend;
        let none = c.run(&["rollback"]);
        assert_eq!(none.code, 1, "{none:?}");
        assert!(none.stderr.contains("there is no backup"), "{none:?}");

        let (v4, v6) = c.files();
        let run = c.run(&["apply", &v4, "--file6", &v6, "--no-confirm"]);
        assert_eq!(run.code, 0, "{backend:?}: {run:?}");
        assert!(Family::ALL.iter().all(|&f| c.holds_new(f)));
        let back = c.run(&["rollback"]);
        assert_eq!(back.code, 0, "{back:?}");
        for f in Family::ALL {
            assert!(c.holds_base(f), "{backend:?} {f:?}: {}", c.save(f));
        }

        // With a watchdog waiting: it is disarmed, and the rule sets go back now.
        let pid = c.apply_yes("30");
        let back = c.run(&["rollback"]);
        assert_eq!(back.code, 0, "{back:?}");
        assert!(c.pending().is_none());
        assert!(wait_for(Duration::from_secs(2), || !pid_alive(pid)));
        for f in Family::ALL {
            assert!(c.holds_base(f), "{backend:?} {f:?}");
        }
        assert_eq!(
            c.audit_actions(),
            ["apply", "rollback", "apply", "rollback"]
        );
    });
}

/// `nfscope apply` of `text` as each family's file is refused, saying each of `says`, and the
/// kernel's rule sets stay byte for byte what they were (`#` lines aside).
fn refused_and_unchanged(c: &Case, tag: &str, text: &str, says: &[&str]) {
    let before: Vec<String> = Family::ALL.iter().map(|&f| c.save(f)).collect();
    for family in Family::ALL {
        let path = c.file(&format!("{tag}.{family:?}"), text);
        let args = match family {
            Family::V4 => vec!["apply", &path],
            Family::V6 => vec!["apply", "--file6", &path],
        };
        let run = c.run(&args);
        let what = format!("{:?} {family:?}", c.backend);
        assert_eq!(run.code, 1, "{what}: {run:?}");
        for s in says.iter().chain(&[family.label(), "Nothing was changed"]) {
            assert!(run.stderr.contains(s), "{what}: no {s:?} in {run:?}");
        }
        assert!(!run.stderr.contains("panicked"), "{run:?}");
    }
    for (i, &f) in Family::ALL.iter().enumerate() {
        assert_eq!(non_comment(&c.save(f)), non_comment(&before[i]), "{f:?}");
    }
    assert!(c.pending().is_none());
    assert!(c.audit_actions().is_empty());
}

#[test]
fn a_malformed_file_names_its_line_and_changes_nothing() {
    for_each_backend("malformed", |c| {
        let bad = "# by hand\n*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -m comment --comment \"never closed -j ACCEPT\nCOMMIT\n";
        refused_and_unchanged(&c, "bad", bad, &["line 7", "never closed"]);
    });
}

#[test]
fn a_nul_byte_is_refused_since_the_tool_would_cut_the_line_there() {
    for_each_backend("nul", |c| {
        let nul = "*filter\n:INPUT DROP [0:0]\n-A INPUT -m comment --comment x\0 -p udp --dport 9 -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n";
        refused_and_unchanged(&c, "nul", nul, &["line 3", "NUL"]);
    });
}

#[test]
fn an_invalid_rule_never_reaches_the_kernel() {
    for_each_backend("invalid", |c| {
        let backend = c.backend;
        // Parses, but the tools refuse it: a port out of range.
        let invalid =
            "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n";
        refused_and_unchanged(&c, "invalid", invalid, &["--test"]);

        // What --test may let through (iptables-nft-restore --test does not look for the
        // chains a rule jumps to; the legacy one does) and the kernel then refuses: the
        // backups go straight back.
        let late =
            "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 80 -j NOSUCHCHAIN\nCOMMIT\n";
        let v4 = c.file("late.v4", late);
        let run = c.run(&["apply", &v4]);
        assert_eq!(run.code, 1, "{backend:?}: {run:?}");
        assert!(
            run.stderr.contains("NOSUCHCHAIN")
                && (run
                    .stderr
                    .contains("rolled back: the kernel holds the rule sets from before")
                    || run.stderr.contains("Nothing was changed")),
            "{run:?}"
        );
        for f in Family::ALL {
            assert!(c.holds_base(f), "{backend:?} {f:?}: {}", c.save(f));
        }
        assert!(c.pending().is_none());
    });
}

#[test]
fn no_confirm_applies_one_family_without_a_watchdog() {
    for_each_backend("noconfirm", |c| {
        let backend = c.backend;
        let v6 = c.file("new.v6", &new_rules(Family::V6));
        let v4_before = c.save(Family::V4);
        let run = c.run(&["apply", "--file6", &v6, "--no-confirm"]);
        assert_eq!(run.code, 0, "{backend:?}: {run:?}");
        assert!(run.stdout.contains("No watchdog"), "{run:?}");
        // The same steps as the TUI's commit checklist, in its order, each passed.
        let mut at = 0;
        for step in nfscope::edit::commit::Step::ALL {
            let line = format!(" ✓ {:<14}", step.label());
            let found = run.stdout[at..].find(&line);
            assert!(found.is_some(), "{line:?} after byte {at}: {run:?}");
            at += found.unwrap_or(0) + line.len();
        }
        assert!(c.pending().is_none());
        assert!(c.holds_new(Family::V6));
        assert_eq!(non_comment(&c.save(Family::V4)), non_comment(&v4_before));
        // Both families were backed up all the same.
        let backups = std::fs::read_dir(&c.dir)
            .expect("state dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".rules"))
            .count();
        assert_eq!(backups, 2);
        assert_eq!(c.audit_actions(), ["apply"]);
    });
}

#[test]
fn backups_are_private_and_the_last_twenty_are_kept() {
    for_each_backend("backups", |c| {
        let backend = c.backend;
        let v4 = c.file("new.v4", &new_rules(Family::V4));
        for _ in 0..22 {
            let run = c.run(&["apply", &v4, "--no-confirm"]);
            assert_eq!(run.code, 0, "{backend:?}: {run:?}");
        }
        let mode = std::fs::metadata(&c.dir).expect("dir").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mut per_family = [0, 0];
        let mut first_v4 = None;
        for e in std::fs::read_dir(&c.dir).expect("dir").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let mode = e.metadata().expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
            if name.ends_with(".v4.rules") {
                per_family[0] += 1;
                if first_v4.as_ref().is_none_or(|f: &String| name < *f) {
                    first_v4 = Some(name);
                }
            } else if name.ends_with(".v6.rules") {
                per_family[1] += 1;
            }
        }
        assert_eq!(per_family, [20, 20]);
        // The oldest kept is already a backup of the new rules (the first two were pruned).
        let oldest =
            std::fs::read_to_string(c.dir.join(first_v4.expect("a v4 backup"))).expect("read");
        assert!(oldest.contains("LOGDROP"), "{oldest}");
        assert_eq!(c.audit_actions().len(), 22);
    });
}

#[test]
fn a_change_that_cuts_the_ssh_session_is_refused_unless_asked_at_a_terminal() {
    for_each_backend("lockout", |c| {
        let backend = c.backend;
        let cut = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j DROP\nCOMMIT\n";
        for (family, ssh) in [
            (Family::V4, "127.0.0.1 50000 127.0.0.1 22"),
            (Family::V6, "::1 50000 ::1 22"),
        ] {
            let path = c.file(&format!("cut.{family:?}"), cut);
            let file_args = match family {
                Family::V4 => vec![path.as_str()],
                Family::V6 => vec!["--file6", path.as_str()],
            };
            for extra in [&["--yes"][..], &["--no-confirm"][..], &[][..]] {
                let mut args = vec!["apply"];
                args.extend(&file_args);
                args.extend(extra);
                let run = c.run_env(&args, &[("SSH_CONNECTION", ssh)]);
                assert_eq!(run.code, 1, "{backend:?} {args:?}: {run:?}");
                for says in [
                    "would cut your SSH session",
                    "port 22",
                    "decided by",
                    "Nothing was changed",
                ] {
                    assert!(run.stderr.contains(says), "{says:?}: {run:?}");
                }
            }
            let (v4, v6) = c.files();
            let harmless = match family {
                Family::V4 => vec!["apply", v4.as_str(), "--no-confirm"],
                Family::V6 => vec!["apply", "--file6", v6.as_str(), "--no-confirm"],
            };
            // A harmless change (the new rules accept lo and ESTABLISHED) goes through.
            let run = c.run_env(&harmless, &[("SSH_CONNECTION", ssh)]);
            assert_eq!(run.code, 0, "{backend:?} {family:?}: {run:?}");
            assert!(!run.stderr.contains("SSH session"), "{run:?}");
            assert!(c.holds_new(family));
        }
        // The refusals changed nothing and left no record; the two applies did.
        assert_eq!(c.audit_actions(), ["apply", "apply"]);
    });
}

#[test]
fn without_root_apply_says_to_run_as_root_and_changes_nothing() {
    let Some(setpriv) = nfscope::source::kernel::find_tool("setpriv") else {
        let _ = common::skip::<()>("needs setpriv (util-linux)");
        return;
    };
    for_each_backend("nonroot", |c| {
        let v4 = c.file("new.v4", &new_rules(Family::V4));
        let before = c.save(Family::V4);
        // nobody's own state directory, so that only the missing root can stop it.
        let state = std::env::temp_dir().join(format!("{}-nobody", c.ns.name()));
        let mut all = vec![setpriv.to_str().expect("a UTF-8 path")];
        all.extend([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "--backend",
            flag(c.backend),
            "--state-dir",
            state.to_str().expect("a UTF-8 path"),
            "apply",
            &v4,
        ]);
        let run: Run =
            c.ns.command(&all)
                .env("NFSCOPE_NO_SYSLOG", "1")
                .stdin(Stdio::null())
                .output()
                .expect("run nfscope as nobody")
                .into();
        assert_eq!(run.code, 1, "{run:?}");
        for says in ["needs root", "run nfscope as root", "Nothing was changed"] {
            assert!(run.stderr.contains(says), "{says:?}: {run:?}");
        }
        assert!(!run.stderr.contains("--demo"), "{run:?}");
        assert_eq!(non_comment(&c.save(Family::V4)), non_comment(&before));
    });
}

#[test]
fn at_a_terminal_apply_anyway_passes_the_lockout_and_the_countdown_ticks() {
    for_each_backend("tty", |c| {
        let cut = c.file(
            "cut.v4",
            "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j DROP\nCOMMIT\n",
        );
        let ip = nfscope::source::kernel::find_tool("ip").expect("ip, since the namespace exists");
        let launch = format!(
            "NFSCOPE_STATE_DIR={} NFSCOPE_NO_SYSLOG=1 SSH_CONNECTION='127.0.0.1 50000 127.0.0.1 22' {} netns exec {} {{bin}} --backend {} apply {cut} --confirm-timeout 30",
            c.dir.display(),
            ip.display(),
            c.ns.name(),
            flag(c.backend)
        );
        let Some(run) = Tty::start(&format!("apply{}", flag(c.backend)), (150, 30), &launch) else {
            return;
        };
        run.tmux.wait_for("would cut your SSH session");
        run.tmux
            .wait_for("Type `apply anyway` to apply it all the same:");
        run.tmux.keys(&["apply anyway", "Enter"]);
        run.tmux.wait_for("Keep this change? Type yes within");
        // The countdown is redrawn in place, a second at a time.
        run.tmux.wait_for("within 28 s");
        run.tmux.keys(&["yes", "Enter"]);
        run.tmux.wait_for("Confirmed: the change stays.");
        assert_eq!(run.exit_status(), "0", "{}", run.tmux.screen());
        run.assert_terminal_restored();
        assert!(c.save(Family::V4).contains("--dport 22 -j DROP"));
        assert!(c.pending().is_none());
        assert_eq!(c.audit_actions(), ["apply", "confirm"]);
    });
}

// ---------------------------------------------------------------------------------------------
// Without a kernel: the sentences.

fn plain_run(dir: &Path, args: &[&str]) -> Run {
    Command::new(BIN)
        .args(args)
        .env("NFSCOPE_STATE_DIR", dir)
        .env("NFSCOPE_NO_SYSLOG", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run nfscope")
        .into()
}

#[test]
fn sentences_without_anything_to_do() {
    let dir = std::env::temp_dir().join(format!("nfscope-apply-none-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = plain_run(&dir, &["confirm"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("nfscope: no commit is waiting for confirmation"),
        "{run:?}"
    );
    let run = plain_run(&dir, &["rollback"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("there is no backup to roll back to"),
        "{run:?}"
    );
    let run = plain_run(&dir, &["apply"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("nfscope apply FILE [--file6 FILE6]"),
        "{run:?}"
    );
    let run = plain_run(&dir, &["apply", "/no/such/file"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("cannot read /no/such/file")
            && run.stderr.contains("Nothing was changed"),
        "{run:?}"
    );
    let run = plain_run(&dir, &["apply", "x", "--yes", "--no-confirm"]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = plain_run(&dir, &["apply", "x", "--confirm-timeout", "0"]);
    assert_eq!(run.code, 2, "{run:?}");
    // --backend goes with --file6 for apply only.
    let run = plain_run(&dir, &["rules", "--backend", "nft", "--file6", "x"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("cannot be used with"), "{run:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// As nobody, with nothing pending in nobody's own state directory but a commit pending in
/// root's (0700, so nobody cannot even look), `confirm` and `rollback` say a root commit may be
/// pending and to use sudo, never "no commit is waiting".
#[test]
fn without_root_confirm_and_rollback_point_at_roots_pending_commit() {
    let Some(setpriv) = nfscope::source::kernel::find_tool("setpriv") else {
        let _ = common::skip::<()>("needs setpriv (util-linux)");
        return;
    };
    if !rustix::process::geteuid().is_root() {
        let _ = common::skip::<()>("needs root to make root's state directory");
        return;
    }
    let base = std::env::temp_dir().join(format!("nfscope-rootpending-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root_dir = base.join("root-state");
    std::fs::create_dir_all(&root_dir).expect("dir");
    std::fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    std::fs::set_permissions(
        &root_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    std::fs::write(root_dir.join("pending.json"), "{}").expect("pending");
    let home = base.join("nobody-home");
    std::fs::create_dir_all(&home).expect("home");
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).expect("chown");
    // nfscope as nobody, with `args`, its home its own and root's state directory known.
    let as_nobody = |args: &[&std::ffi::OsStr]| -> Command {
        let mut c = Command::new(&setpriv);
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .args(args)
            .env("HOME", &home)
            .env_remove("NFSCOPE_STATE_DIR")
            .env_remove("XDG_STATE_HOME")
            .env("NFSCOPE_ROOT_STATE_DIR", &root_dir)
            .env("NFSCOPE_NO_SYSLOG", "1")
            .stdin(Stdio::null());
        c
    };
    let run_as_nobody = |args: &[&std::ffi::OsStr]| -> Run {
        as_nobody(args)
            .output()
            .expect("run nfscope as nobody")
            .into()
    };
    for what in ["confirm", "rollback"] {
        let run = run_as_nobody(&[what.as_ref()]);
        assert_ne!(run.code, 0, "{run:?}");
        assert!(!run.stderr.contains("no commit is waiting"), "{run:?}");
        assert!(
            run.stderr.contains(&format!("sudo nfscope {what}")),
            "{run:?}"
        );
        assert!(run.stderr.contains("root"), "{run:?}");
        // Given root's directory itself: permission denied, never "nothing waits".
        let run = run_as_nobody(&["--state-dir".as_ref(), root_dir.as_os_str(), what.as_ref()]);
        assert_ne!(run.code, 0, "{run:?}");
        assert!(!run.stderr.contains("no commit is waiting"), "{run:?}");
        assert!(!run.stderr.contains("there is no backup"), "{run:?}");
        assert!(run.stderr.contains("permission denied"), "{run:?}");
        assert!(run.stderr.contains("sudo"), "{run:?}");
    }
    // With root's directory empty, nobody is told plainly that nothing waits.
    std::fs::remove_file(root_dir.join("pending.json")).expect("rm");
    std::fs::set_permissions(
        &root_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let run = run_as_nobody(&["confirm".as_ref()]);
    assert!(run.stderr.contains("no commit is waiting"), "{run:?}");
    let _ = std::fs::remove_dir_all(&base);
}

/// `apply --help` is true to what apply takes: it refuses --interval and --demo (before
/// anything is loaded) and says so in its help.
#[test]
fn apply_refuses_what_its_help_says_it_refuses() {
    let Some(ns) = NetNs::for_test("applyhelp") else {
        return;
    };
    let help: Run = ns
        .command(&[BIN, "apply", "--help"])
        .output()
        .expect("help")
        .into();
    assert_eq!(help.code, 0, "{help:?}");
    assert!(help.stdout.contains("`apply` refuses it"), "{help:?}");
    let file = std::env::temp_dir().join(format!("nfscope-applyhelp-{}.v4", std::process::id()));
    std::fs::write(
        &file,
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.9/32 -j DROP\nCOMMIT\n",
    )
    .expect("write");
    let path = file.to_str().expect("path");
    for extra in [["--interval", "5"], ["--demo", "--yes"]] {
        let mut args = vec![BIN, "apply", path];
        args.extend(extra);
        let r: Run = ns
            .command(&args)
            .env(
                "NFSCOPE_STATE_DIR",
                std::env::temp_dir().join(format!("nfscope-ah-{}", std::process::id())),
            )
            .stdin(Stdio::null())
            .output()
            .expect("run")
            .into();
        assert_ne!(r.code, 0, "{r:?}");
        assert!(
            r.stderr.contains("takes no --interval") || r.stderr.contains("--demo"),
            "{r:?}"
        );
    }
    let after = ns.exec_ok(&["iptables-save"]);
    assert!(!after.contains("192.0.2.9"), "nothing was loaded: {after}");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_failed_rollback_is_said_and_stays_pending_for_nfscope_rollback() {
    for_each_backend("rbfail", |mut c| {
        let backend = c.backend;
        let first = c.apply_yes("3600");
        let backups: Vec<PathBuf> = c.pending().expect("pending")["backups"]
            .as_array()
            .expect("backups")
            .iter()
            .filter_map(|b| b[1].as_str().map(PathBuf::from))
            .collect();
        assert_eq!(backups.len(), 2, "{:?}", c.pending());
        // The backups are damaged before the deadline: the watchdog cannot load them.
        let kept: Vec<String> = backups
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("backup"))
            .collect();
        for p in &backups {
            std::fs::write(p, "*filter\n-A INPUT -m comment --comment \"cut\n").expect("damage");
        }
        // The watchdog reads its backups when it starts, so a damaged file no longer stops it:
        // a watchdog started now, on the damaged files, stands for one whose backups were
        // damaged from the start (a full disk, before backups were written whole).
        signal(first, libc::SIGKILL);
        assert!(wait_for(Duration::from_secs(2), || !pid_alive(first)));
        let id = c.pending().expect("pending")["id"]
            .as_str()
            .expect("id")
            .to_string();
        let child = c
            .command(&["watchdog", "--id", &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a watchdog");
        c.children.push(child);
        assert!(wait_for(Duration::from_secs(5), || c
            .watchdog_pid()
            .is_some_and(|p| p != first)));
        let pid = c.watchdog_pid().expect("the new watchdog's pid");
        // Its deadline passed (on the boot clock).
        let mut p = c.pending().expect("pending");
        p["deadline_boot_ms"] = serde_json::json!(0);
        let tmp = c.dir.join("pending.json.test");
        std::fs::write(&tmp, p.to_string()).expect("write");
        std::fs::rename(&tmp, c.dir.join("pending.json")).expect("rename");
        assert!(
            wait_for(Duration::from_secs(15), || !pid_alive(pid)),
            "{backend:?}: the watchdog ended"
        );
        // Said as a failure, not as a rollback; the change is still there, and still pending.
        let pending = c.pending().expect("the commit stays pending");
        assert!(
            pending["rollback_failed"]
                .as_str()
                .is_some_and(|e| e.contains("damaged")),
            "{pending}"
        );
        for f in Family::ALL {
            assert!(c.holds_new(f), "{backend:?} {f:?}");
        }
        assert_eq!(c.audit_actions(), ["apply", "rollback-failed"]);
        // No new commit starts over it.
        let (v4, _) = c.files();
        let again = c.run(&["apply", &v4, "--no-confirm"]);
        assert_eq!(again.code, 1, "{again:?}");
        assert!(
            again.stderr.contains("failed") && again.stderr.contains("nfscope rollback"),
            "{again:?}"
        );
        // `nfscope rollback` fails too while the backups are damaged, and keeps it pending...
        let back = c.run(&["rollback"]);
        assert_eq!(back.code, 1, "{back:?}");
        assert!(back.stderr.contains("stays pending"), "{back:?}");
        assert!(c.pending().is_some());
        // ...and once they are repaired, restores them and ends it.
        for (p, text) in backups.iter().zip(&kept) {
            std::fs::write(p, text).expect("repair");
        }
        let back = c.run(&["rollback"]);
        assert_eq!(back.code, 0, "{back:?}");
        for f in Family::ALL {
            assert!(c.holds_base(f), "{backend:?} {f:?}: {}", c.save(f));
        }
        assert!(c.pending().is_none());
    });
}

/// A table iptables cannot represent (one native nftables expression in it): the save tool
/// prints only a comment for it and exits 0. nfscope says so, and commits nothing to that family.
#[test]
fn a_table_iptables_cannot_show_is_said_and_never_committed_over() {
    let Some(c) = Case::new("incompat", Backend::Nft) else {
        return;
    };
    if nfscope::source::kernel::find_tool("nft").is_none() {
        let _ = common::skip::<()>("needs nft");
        return;
    }
    c.ns.exec_ok(&[
        "nft", "add", "rule", "ip", "filter", "INPUT", "ct", "count", "over", "5", "drop",
    ]);
    let listed = || c.ns.exec_ok(&["nft", "list", "table", "ip", "filter"]);
    assert!(listed().contains("ct count over 5"), "{}", listed());
    assert!(
        c.save(Family::V4).contains("is incompatible"),
        "{}",
        c.save(Family::V4)
    );
    // Shown as a warning, not as nothing.
    let rules = c.run(&["rules", "-4"]);
    assert!(
        rules
            .stderr
            .contains("IPv4 table filter holds rules iptables cannot show"),
        "{rules:?}"
    );
    let save = c.run(&["rules", "-4", "--format", "save"]);
    assert!(
        save.stderr
            .contains("IPv4 table filter holds rules iptables cannot show"),
        "{save:?}"
    );
    // apply refuses before anything is backed up or loaded, and the native rule stays.
    let (v4, v6) = c.files();
    for extra in [&["--no-confirm"][..], &["--yes"][..]] {
        let mut args = vec!["apply", v4.as_str()];
        args.extend(extra);
        let run = c.run(&args);
        assert_eq!(run.code, 1, "{run:?}");
        for says in [
            "IPv4 table filter holds rules iptables cannot show",
            "Nothing was changed",
        ] {
            assert!(run.stderr.contains(says), "{says:?}: {run:?}");
        }
    }
    assert!(listed().contains("ct count over 5"), "{}", listed());
    assert!(c.pending().is_none());
    assert!(c.audit_actions().is_empty());
    // The other family is unaffected.
    let run = c.run(&["apply", "--file6", &v6, "--no-confirm"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(c.holds_new(Family::V6));
    assert!(listed().contains("ct count over 5"), "{}", listed());
}

/// A base chain iptables cannot show in a table it prints all the same (a native `pre` chain
/// in `ip nat`: "# Table `nat' contains incompatible base-chains"): a restore of nat would
/// flush that chain's rules, so apply refuses, and the chain keeps its rule.
#[test]
fn a_table_with_incompatible_base_chains_is_never_committed_over() {
    let Some(c) = Case::new("incompatbase", Backend::Nft) else {
        return;
    };
    if nfscope::source::kernel::find_tool("nft").is_none() {
        let _ = common::skip::<()>("needs nft");
        return;
    }
    let out = c.ns.exec_with_input(
        &["nft", "-f", "-"],
        "table ip nat {\n  chain pre {\n    type nat hook prerouting priority dstnat;\n    tcp dport 8080 dnat to 10.0.0.5:80\n  }\n}\n",
    );
    assert!(out.status.success(), "{out:?}");
    let listed = || c.ns.exec_ok(&["nft", "list", "chain", "ip", "nat", "pre"]);
    assert!(
        c.save(Family::V4)
            .contains("contains incompatible base-chains")
    );
    let (v4, _) = c.files();
    let run = c.run(&["apply", v4.as_str(), "--no-confirm"]);
    assert_eq!(run.code, 1, "{run:?}");
    for says in [
        "IPv4 table nat holds rules iptables cannot show",
        "Nothing was changed",
    ] {
        assert!(run.stderr.contains(says), "{says:?}: {run:?}");
    }
    assert!(listed().contains("dnat to 10.0.0.5:80"), "{}", listed());
}

#[test]
fn an_audit_log_that_cannot_be_written_stops_the_apply_before_the_kernel() {
    use std::os::unix::fs::PermissionsExt;
    for_each_backend("auditfail", |c| {
        std::fs::create_dir_all(c.dir.join("audit.log")).expect("dirs");
        std::fs::set_permissions(&c.dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let (v4, _) = c.files();
        let run = c.run(&["apply", &v4, "--no-confirm"]);
        assert_eq!(run.code, 1, "{run:?}");
        for says in ["cannot write the audit log", "Nothing was changed"] {
            assert!(run.stderr.contains(says), "{says:?}: {run:?}");
        }
        for f in Family::ALL {
            assert!(c.holds_base(f), "{:?} {f:?}", c.backend);
        }
    });
}

/// The watchdog goes by the boot clock: with the wall-clock deadline an hour away but the
/// boot-clock one passed (what a wall clock stepped back an hour looks like), it rolls back now.
#[test]
fn the_watchdog_goes_by_the_boot_clock() {
    for_each_backend("bootclock", |c| {
        let pid = c.apply_yes("3600");
        let mut p = c.pending().expect("pending");
        assert!(p["deadline_boot_ms"].as_u64().is_some(), "{p}");
        p["deadline_boot_ms"] = serde_json::json!(0);
        let tmp = c.dir.join("pending.json.test");
        std::fs::write(&tmp, p.to_string()).expect("write");
        std::fs::rename(&tmp, c.dir.join("pending.json")).expect("rename");
        assert!(
            wait_for(Duration::from_secs(10), || !pid_alive(pid)),
            "{:?}: the watchdog rolled back",
            c.backend
        );
        for f in Family::ALL {
            assert!(c.holds_base(f), "{:?} {f:?}", c.backend);
        }
        assert_eq!(c.audit_actions(), ["apply", "rollback"]);
    });
}

/// A stopped watchdog (SIGSTOP) rolls nothing back: no new commit goes over its commit as if
/// it were gone, and the refusal says how to get it going.
#[test]
fn a_stopped_watchdog_is_said_and_blocks_the_next_commit() {
    for_each_backend("stopped", |c| {
        let pid = c.apply_yes("30");
        signal(pid, libc::SIGSTOP);
        let (v4, _) = c.files();
        let run = c.run(&["apply", &v4, "--no-confirm"]);
        assert_eq!(run.code, 1, "{run:?}");
        for says in [
            "is stopped",
            &format!("kill -CONT {pid}"),
            "Nothing was changed",
        ] {
            assert!(run.stderr.contains(says), "{says:?}: {run:?}");
        }
        signal(pid, libc::SIGCONT);
        let ok = c.run(&["confirm"]);
        assert_eq!(ok.code, 0, "{ok:?}");
        assert!(wait_for(Duration::from_secs(2), || !pid_alive(pid)));
    });
}

/// The state directory is trusted only when no one else can change what its path leads to: a
/// symbolic link an unprivileged user planted in a world-writable directory (which they could
/// swap for a link to a forged pending commit), a directory under a world-writable one, or a
/// world-writable state directory holding a planted pending commit are all refused, by apply,
/// rollback and confirm, before anything is read from them or changed.
#[test]
fn a_state_directory_others_could_swap_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let Some(c) = Case::new("swapdir", Backend::Nft) else {
        return;
    };
    let base = std::env::temp_dir().join(format!("{}-swap", c.ns.name()));
    let _ = std::fs::remove_dir_all(&base);
    let public = base.join("pub");
    let roots = base.join("root-owned");
    std::fs::create_dir_all(&public).expect("dirs");
    std::fs::create_dir_all(&roots).expect("dirs");
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::fs::set_permissions(&roots, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    // Another user's link to root's directory, in a world-writable sticky one (as /tmp is).
    let sticky = base.join("tmp");
    std::fs::create_dir_all(&sticky).expect("dirs");
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let link = sticky.join("try-state");
    // Made by an unprivileged user (nobody), as in the attack.
    match nfscope::source::kernel::find_tool("setpriv") {
        Some(setpriv) => {
            let made = Command::new(setpriv)
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "ln",
                    "-s",
                ])
                .arg(&roots)
                .arg(&link)
                .output()
                .expect("setpriv ln");
            assert!(made.status.success(), "{made:?}");
        }
        None => {
            std::os::unix::fs::symlink(&roots, &link).expect("symlink");
            let _ = std::os::unix::fs::lchown(&link, Some(65534), Some(65534));
        }
    }
    // A directory of root's under the world-writable one: its name could be swapped.
    let under = public.join("real-state");
    std::fs::create_dir_all(&under).expect("dir");
    std::fs::set_permissions(&under, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    // A world-writable state directory with a pending commit someone planted.
    let open = base.join("open-state");
    std::fs::create_dir_all(&open).expect("dir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::fs::write(
        open.join("pending.json"),
        format!(
            "{{\"id\":\"x\",\"deadline_unix_ms\":0,\"backups\":[[\"V4\",\"{}\"]],\"backend\":null,\"watchdog_pid\":null,\"started_by\":\"root\",\"ssh_client\":null}}",
            open.join("evil.v4.rules").display()
        ),
    )
    .expect("plant");
    std::fs::write(
        open.join("evil.v4.rules"),
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 198.51.100.66/32 -j ACCEPT\nCOMMIT\n",
    )
    .expect("plant");

    let (v4, _) = c.files();
    let before = c.save(Family::V4);
    let s = |p: &Path| p.display().to_string();
    for (dir, says) in [
        (s(&link), "symbolic link"),
        (s(&under), "can be written by others and is not sticky"),
        (s(&open), "can be written by another user"),
    ] {
        for args in [
            vec!["--state-dir", &dir, "apply", &v4, "--no-confirm"],
            vec!["--state-dir", &dir, "rollback"],
            vec!["--state-dir", &dir, "confirm"],
        ] {
            let run = c.run(&args);
            assert_eq!(run.code, 1, "{args:?}: {run:?}");
            assert!(run.stderr.contains(says), "{says:?} {args:?}: {run:?}");
        }
    }
    assert_eq!(non_comment(&c.save(Family::V4)), non_comment(&before));
    assert!(!c.save(Family::V4).contains("198.51.100.66"));
    // Nothing was written through the link into root's directory.
    assert_eq!(std::fs::read_dir(&roots).expect("ls").count(), 0);
    let _ = std::fs::remove_dir_all(&base);
}

/// A byte that is not UTF-8 in a comment, and a comment holding a line break (as
/// `iptables -m comment --comment` allows), once made every face refuse the whole family. Now
/// they are shown, saved byte for byte, backed up and restored as they were.
#[test]
fn odd_bytes_and_line_breaks_in_comments_are_kept_byte_for_byte() {
    use std::os::unix::ffi::OsStrExt;
    for_each_backend("oddbytes", |c| {
        let backend = c.backend;
        let tool = common::tool_name(Family::V4, backend, "");
        let add = |comment: &[u8]| {
            let out =
                c.ns.command(&[&tool, "-A", "INPUT", "-m", "comment", "--comment"])
                    .arg(std::ffi::OsStr::from_bytes(comment))
                    .args(["-j", "ACCEPT"])
                    .output()
                    .expect("iptables");
            assert!(out.status.success(), "{out:?}");
        };
        add(b"x\xffy");
        let saved = || {
            c.ns.command(&[&common::tool_name(Family::V4, backend, "save"), "-c"])
                .output()
                .expect("save")
                .stdout
        };
        let kernel = saved();
        assert!(kernel.windows(5).any(|w| w == b"x\xffy\" "), "{kernel:?}");
        // Shown, not refused.
        let rules = c.run(&["rules", "-4"]);
        assert_eq!(rules.code, 0, "{backend:?}: {rules:?}");
        // The save format gives the very bytes back (comment lines aside).
        let out = c
            .command(&["rules", "-4", "--format", "save"])
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert!(out.status.success(), "{out:?}");
        // Comment lines aside, and counters (they move) cut off.
        let body = |b: &[u8]| -> Vec<Vec<u8>> {
            b.split(|&x| x == b'\n')
                .filter(|l| !l.starts_with(b"#"))
                .map(|l| match (l.first(), l.iter().position(|&x| x == b']')) {
                    (Some(b'['), Some(i)) => l[i + 1..].to_vec(),
                    _ => l.to_vec(),
                })
                .collect()
        };
        assert_eq!(body(&out.stdout), body(&kernel), "{backend:?}");
        // A change of the other family backs this one up; the rollback puts it back as it was.
        let (_, v6) = c.files();
        let run = c.run(&["apply", "--file6", &v6, "--yes", "--confirm-timeout", "60"]);
        assert_eq!(run.code, 0, "{backend:?}: {run:?}");
        let back = c.run(&["rollback"]);
        assert_eq!(back.code, 0, "{backend:?}: {back:?}");
        assert_eq!(body(&saved()), body(&kernel), "{backend:?}");
        // A comment with a line break is shown too; but iptables-restore refuses what
        // iptables-save prints for it, so no backup of that family could be restored: nothing
        // is changed until it is gone.
        add(b"two\nlines");
        let rules = c.run(&["rules", "-4"]);
        assert_eq!(rules.code, 0, "{backend:?}: {rules:?}");
        let before = saved();
        let run = c.run(&["apply", "--file6", &v6, "--no-confirm"]);
        assert_eq!(run.code, 1, "{backend:?}: {run:?}");
        for says in ["would refuse the backup", "Nothing was changed"] {
            assert!(run.stderr.contains(says), "{says:?}: {run:?}");
        }
        assert_eq!(body(&saved()), body(&before));
        assert!(c.holds_base(Family::V6));
    });
}

/// The watchdog's rollback puts back what the apply changed and nothing else: a NAT rule that
/// Docker added during the countdown, in a table the file did not name, is still there after.
#[test]
fn the_watchdogs_rollback_leaves_what_others_changed_elsewhere() {
    for_each_backend("othersstay", |c| {
        let backend = c.backend;
        let (v4, _) = c.files();
        let run = c.run(&["apply", &v4, "--yes", "--confirm-timeout", "2"]);
        assert_eq!(run.code, 0, "{backend:?}: {run:?}");
        c.ns.iptables(Family::V4, backend, common::DOCKER_NAT_RULE);
        assert!(
            wait_for(Duration::from_secs(10), || c.holds_base(Family::V4)
                || !c.save(Family::V4).contains("LOGDROP")),
            "{backend:?}: not rolled back: {}",
            c.save(Family::V4)
        );
        assert!(wait_for(Duration::from_secs(2), || c.pending().is_none()));
        let now = c.save(Family::V4);
        assert!(
            !now.contains("LOGDROP") && !now.contains(":INPUT DROP"),
            "{now}"
        );
        assert!(
            now.contains("MASQUERADE"),
            "{backend:?}: Docker's rule went: {now}"
        );
        assert_eq!(c.audit_actions(), ["apply", "rollback"]);
    });
}

/// During the countdown, a chain the apply changed that someone else changes too is named,
/// with what a rollback would take from them.
#[test]
fn the_countdown_says_what_a_rollback_would_take_from_others() {
    for_each_backend("otherswarn", |mut c| {
        let backend = c.backend;
        let (v4, _) = c.files();
        let (_pid, mut stdin) = c.apply_asking(&["apply", &v4, "--confirm-timeout", "60"]);
        let stderr = c
            .children
            .last_mut()
            .and_then(|ch| ch.stderr.take())
            .expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        c.ns.iptables(
            Family::V4,
            backend,
            &["-I", "INPUT", "1", "-s", "192.0.2.66", "-j", "DROP"],
        );
        let end = Instant::now() + Duration::from_secs(15);
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(l) if l.contains("changed by someone else") => {
                    assert!(l.contains("IPv4 filter/INPUT"), "{l}");
                    assert!(l.contains("-A INPUT -s 192.0.2.66/32 -j DROP"), "{l}");
                    break;
                }
                Ok(l) => seen.push(l),
                Err(_) => panic!("{backend:?}: no warning; stderr said {seen:?}"),
            }
        }
        writeln!(stdin, "yes").expect("answer");
    });
}

/// One commit waits at a time per kernel (network namespace), whatever the state directory.
#[test]
fn one_pending_commit_per_kernel_whatever_the_state_directory() {
    for_each_backend("perkernel", |c| {
        let backend = c.backend;
        let pid = c.apply_yes("60");
        let other = std::env::temp_dir().join(format!("{}-other-state", c.ns.name()));
        let _ = std::fs::remove_dir_all(&other);
        let other_s = other.display().to_string();
        let (v4, _) = c.files();
        for extra in ["--yes", "--no-confirm"] {
            let run = c.run(&["--state-dir", &other_s, "apply", &v4, extra]);
            assert_eq!(run.code, 1, "{backend:?} {extra}: {run:?}");
            assert!(
                run.stderr.contains("in this network namespace")
                    && run.stderr.contains("Nothing was changed"),
                "{backend:?} {extra}: {run:?}"
            );
        }
        let ok = c.run(&["confirm"]);
        assert_eq!(ok.code, 0, "{ok:?}");
        assert!(wait_for(Duration::from_secs(2), || !pid_alive(pid)));
        let run = c.run(&["--state-dir", &other_s, "apply", &v4, "--no-confirm"]);
        assert_eq!(run.code, 0, "{backend:?}: {run:?}");
        let _ = std::fs::remove_dir_all(&other);
    });
}

/// The watchdog opened its state directory once and reads only through that handle: when the
/// directory's path is made to lead elsewhere while it waits (renamed away, a new one put in
/// its place with a forged pending commit whose deadline has passed and whose backup is an
/// attacker's rule set), it goes on watching the real commit and loads nothing forged.
#[test]
fn the_watchdog_keeps_to_the_directory_it_opened() {
    for_each_backend("keepdir", |c| {
        let backend = c.backend;
        let pid = c.apply_yes("60");
        let mut forged = c.pending().expect("pending");
        let moved = c.dir.with_file_name(format!(
            "{}-moved",
            c.dir.file_name().and_then(|n| n.to_str()).expect("name")
        ));
        let _ = std::fs::remove_dir_all(&moved);
        std::fs::rename(&c.dir, &moved).expect("move the directory away");
        std::fs::create_dir(&c.dir).expect("a new one in its place");
        let evil = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 198.51.100.66/32 -j ACCEPT\nCOMMIT\n";
        for (i, fam) in ["v4", "v6"].iter().enumerate() {
            let p = c.dir.join(format!("evil.{fam}.rules"));
            let text = if i == 0 {
                evil.to_string()
            } else {
                evil.replace("198.51.100.66/32", "2001:db8::66/128")
            };
            std::fs::write(&p, text).expect("plant");
            forged["backups"][i][1] = serde_json::json!(p.display().to_string());
        }
        forged["deadline_unix_ms"] = serde_json::json!(0);
        forged["deadline_boot_ms"] = serde_json::json!(0);
        std::fs::write(c.dir.join("pending.json"), forged.to_string()).expect("plant");
        // Well past a poll or two: nothing forged is loaded, the watchdog still waits.
        std::thread::sleep(Duration::from_millis(800));
        assert!(!c.save(Family::V4).contains("198.51.100.66"), "{backend:?}");
        assert!(
            pid_alive(pid),
            "{backend:?}: the watchdog still watches the real commit"
        );
        for f in Family::ALL {
            assert!(c.holds_new(f), "{backend:?} {f:?}");
        }
        // The real commit, where it now is, is confirmed as usual.
        let ok = c.run(&["--state-dir", &moved.display().to_string(), "confirm"]);
        assert_eq!(ok.code, 0, "{backend:?}: {ok:?}");
        assert!(wait_for(Duration::from_secs(2), || !pid_alive(pid)));
        assert!(!c.save(Family::V4).contains("198.51.100.66"));
        let _ = std::fs::remove_dir_all(&moved);
    });
}
