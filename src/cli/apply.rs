//! `nfscope apply`, `nfscope confirm`, `nfscope rollback`, and the hidden `nfscope watchdog`:
//! whole rule sets loaded like iptables-apply does, except that the rollback is done by a
//! watchdog that survives the terminal, the SSH session and nfscope itself (see edit::guard).

use super::SourceArgs;
use crate::edit::commit::{self, Load, Progress, Request, Step, Target, WholeFile};
use crate::edit::guard::{self, Pending};
use crate::edit::tools::Tools;
use crate::edit::{audit, backup};
use crate::ruleset::Family;
use crate::source::local_addrs;
use clap::Args;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// The IPv4 rule set to load, in the iptables-save format (`--file6` gives the IPv6 one).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Seconds to confirm in before the watchdog rolls the change back (1 to 86400).
    #[arg(long, default_value_t = 30, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub confirm_timeout: u64,
    /// Do not ask: leave the watchdog armed, say how to confirm, and exit 0.
    #[arg(long, conflicts_with = "no_confirm")]
    pub yes: bool,
    /// No watchdog and no countdown: the change stays as it is (for scripts).
    #[arg(long)]
    pub no_confirm: bool,
}

#[derive(Debug, Clone, Args)]
pub struct WatchdogArgs {
    /// The pending commit to watch over.
    #[arg(long)]
    pub id: String,
}

/// A line for the user on standard output; what others wrote in it (rule text, tool messages)
/// is shown visibly (`format::visible`).
fn say(msg: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{}", crate::format::visible_lines(msg));
    let _ = out.flush();
}

fn fail(msg: &str) -> i32 {
    eprintln!(
        "{}",
        crate::format::visible_lines(&format!("nfscope: {msg}"))
    );
    1
}

/// Writing to a restore tool that stops early must not kill nfscope half way through a change.
fn ignore_sigpipe() {
    // SAFETY: setting a signal's disposition; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Lines typed on standard input, read by a thread so that the countdown can run meanwhile.
/// `None` once standard input is closed.
struct Lines(mpsc::Receiver<Option<String>>);

impl Lines {
    fn start() -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let stdin = io::stdin();
            loop {
                let mut line = String::new();
                let got = match stdin.lock().read_line(&mut line) {
                    Ok(0) | Err(_) => None,
                    Ok(_) => Some(line.trim().to_string()),
                };
                let end = got.is_none();
                if tx.send(got).is_err() || end {
                    return;
                }
            }
        });
        Lines(rx)
    }

    /// The next line, `Some(None)` at end of input, `None` when `wait` passed first.
    fn next(&self, wait: Duration) -> Option<Option<String>> {
        match self.0.recv_timeout(wait) {
            Ok(l) => Some(l),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(None),
        }
    }
}

/// Prints the commit's steps as the TUI's checklist shows them (` ✓ validate      …`), each
/// once (a run again after the lockout question repeats the first ones), and keeps how it ended.
#[derive(Default)]
struct Steps {
    shown: Vec<(Step, String)>,
    end: Option<End>,
}

/// How one run of the commit pipeline ended, for `nfscope apply`.
enum End {
    Failed(Step),
    Lockout(Vec<String>),
    Armed,
    Finished,
}

impl Steps {
    fn line(mark: &str, step: Step, detail: &str) -> String {
        format!(" {mark} {:<14}{detail}", step.label())
    }

    fn show(&mut self, p: Progress) {
        match p {
            Progress::Running(_) => {}
            Progress::Done(s, d) => {
                if !self.shown.iter().any(|(t, e)| *t == s && *e == d) {
                    say(&Steps::line("✓", s, &d));
                    self.shown.push((s, d));
                }
            }
            Progress::Failed(s, d) => {
                eprintln!("{}", crate::format::visible_lines(&Steps::line("✗", s, &d)));
                self.end = Some(End::Failed(s));
            }
            Progress::Conflicts { lines, .. } => {
                for l in lines {
                    eprintln!("{}", crate::format::visible_lines(&l));
                }
                self.end = Some(End::Failed(Step::Concurrency));
            }
            Progress::Lockout(findings) => {
                let n = findings.len();
                eprintln!(
                    "{}",
                    crate::format::visible_lines(&Steps::line(
                        "!",
                        Step::Lockout,
                        &format!(
                            "{n} danger{} for your SSH session",
                            if n == 1 { "" } else { "s" }
                        )
                    ))
                );
                self.end = Some(End::Lockout(findings));
            }
            Progress::Changes(diff) => {
                if diff.trim().is_empty() {
                    say("Applied: the kernel already held these rules (counters aside).");
                } else {
                    say(&format!("Applied:\n{}", diff.trim_end()));
                }
            }
            Progress::Armed { .. } => self.end = Some(End::Armed),
            Progress::Finished(_) => self.end = Some(End::Finished),
            Progress::Extended { .. }
            | Progress::Confirmed(_)
            | Progress::RolledBack(_)
            | Progress::RollbackFailed(_)
            | Progress::ActionFailed(_) => {}
        }
    }
}

/// `nfscope apply`: the commit pipeline the TUI's commit runs (edit::commit), loading whole
/// files. Returns the exit status: 0 applied (and confirmed, or left to the watchdog with
/// --yes, or kept with --no-confirm), 1 nothing changed or the change was rolled back.
pub fn run(state_dir: Option<&Path>, src: &SourceArgs, args: &ApplyArgs) -> i32 {
    ignore_sigpipe();
    if src.demo {
        return fail("nfscope apply changes the kernel's rule set: --demo has no kernel to change");
    }
    let v4 = match (&args.file, &src.file) {
        (Some(a), Some(b)) if a != b => {
            return fail("two IPv4 files were given (FILE and --file): give one");
        }
        (a, b) => a.clone().or_else(|| b.clone()),
    };
    let paths: Vec<(Family, PathBuf)> = [(Family::V4, v4), (Family::V6, src.file6.clone())]
        .into_iter()
        .filter_map(|(f, p)| p.map(|p| (f, p)))
        .collect();
    if paths.is_empty() {
        return fail(
            "nfscope apply needs a rule set to load: nfscope apply FILE [--file6 FILE6] (files in the iptables-save format)",
        );
    }
    let mut files = Vec::new();
    for (f, p) in &paths {
        match WholeFile::read(p, *f) {
            Ok(w) => files.push(w),
            Err(e) => return fail(&format!("{e}. Nothing was changed.")),
        }
    }
    let tools = Tools {
        backend: src.backend,
    };
    let dir = backup::state_dir(state_dir);
    if let Err(e) = backup::ensure_dir(&dir) {
        return fail(&format!("{e}. Nothing was changed."));
    }
    if let Some(p) = guard::status(&dir) {
        if p.blocks_new_commit() {
            return fail(&format!(
                "{}. Nothing was changed.",
                guard::busy_message(&p)
            ));
        }
        say(&format!(
            "Note: an earlier commit by {} was left pending without a watchdog (it was neither confirmed nor rolled back); this one replaces it.",
            p.started_by
        ));
    }

    let target = Target::Kernel {
        tools,
        dir: dir.clone(),
        timeout: (!args.no_confirm).then(|| Duration::from_secs(args.confirm_timeout)),
        armed: Default::default(),
        committed: Default::default(),
    };
    let mut req = Request {
        load: Load::Files(files),
        ssh: std::env::var("SSH_CONNECTION").ok(),
        // Without the local addresses the lockout check still runs; it only knows less about
        // interfaces.
        locals: local_addrs::read().unwrap_or_default(),
        ..Request::default()
    };
    // One reader of standard input for every question asked.
    let mut lines: Option<Lines> = None;
    let mut steps = Steps::default();
    loop {
        commit::run(&target, &req, &mut |p| steps.show(p));
        match steps.end.take() {
            Some(End::Lockout(findings)) if !req.lockout_confirmed => {
                if let Some(code) = lockout_question(&findings, args, &mut lines) {
                    return code;
                }
                req.lockout_confirmed = true;
            }
            Some(End::Failed(step)) if !step.after_change() => {
                return fail(&format!(
                    "not applied: the {} step refused. Nothing was changed.",
                    step.label()
                ));
            }
            Some(End::Failed(step)) => {
                return fail(&format!(
                    "not applied: the {} step failed after the kernel was changed (what was undone is said above)",
                    step.label()
                ));
            }
            Some(End::Finished) => {
                say("No watchdog (--no-confirm): the change stays.");
                return 0;
            }
            Some(End::Armed) => break,
            Some(End::Lockout(_)) | None => {
                return fail(
                    "the commit stopped without saying why. Look at the rule set (nfscope rules)",
                );
            }
        }
    }
    let id = match &target {
        Target::Kernel { armed, .. } => armed.lock().ok().and_then(|a| a.clone()),
        _ => None,
    };
    let pending = match guard::status(&dir) {
        Some(p) if Some(&p.id) == id.as_ref() => p,
        _ => return ended_elsewhere(&dir, id.as_deref().unwrap_or(""), false),
    };
    let flag = state_dir_hint(state_dir);
    if args.yes {
        say(&format!(
            "The watchdog (pid {}) rolls the change back at {} unless it is confirmed: from a NEW SSH connection (which proves that new connections still get in), run `nfscope confirm{flag}`.",
            pending.watchdog_pid.unwrap_or(0),
            pending.deadline_text()
        ));
        return 0;
    }
    countdown(&target, &dir, &pending, args, &flag, &mut lines)
}

/// ` --state-dir DIR` when the state directory was given on the command line (the confirming
/// command must find the same one).
fn state_dir_hint(flag: Option<&Path>) -> String {
    flag.map_or_else(String::new, |d| format!(" --state-dir {}", d.display()))
}

/// The lockout warning and its explicit confirmation; `Some(status)` to stop.
fn lockout_question(
    findings: &[String],
    args: &ApplyArgs,
    lines: &mut Option<Lines>,
) -> Option<i32> {
    let red = io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for f in findings {
        if red {
            // The colour is nfscope's own; the finding (rule text) is shown visibly.
            eprintln!(
                "\x1b[1;31m{}\x1b[0m",
                crate::format::visible_lines(&format!(
                    "nfscope: this change would cut your SSH session: {f}"
                ))
            );
        } else {
            eprintln!(
                "{}",
                crate::format::visible_lines(&format!(
                    "nfscope: this change would cut your SSH session: {f}"
                ))
            );
        }
    }
    if args.yes || args.no_confirm || !io::stdin().is_terminal() {
        return Some(fail(
            "refused because of the lockout warning above. Nothing was changed: fix the rule set, or run nfscope apply at a terminal (without --yes or --no-confirm) to apply it all the same",
        ));
    }
    let l = lines.get_or_insert_with(Lines::start);
    eprint!("Type `apply anyway` to apply it all the same: ");
    let _ = io::stderr().flush();
    match l.next(Duration::from_secs(3600)) {
        Some(Some(s)) if s == "apply anyway" => None,
        _ => Some(fail("not applied. Nothing was changed.")),
    }
}

/// Whole seconds left, rounded up: `1 s` until the very end.
fn secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).try_into().unwrap_or(u64::MAX)
}

/// Wait for `yes` on standard input within the deadline, the countdown showing.
fn countdown(
    target: &Target,
    dir: &Path,
    pending: &Pending,
    args: &ApplyArgs,
    flag: &str,
    lines: &mut Option<Lines>,
) -> i32 {
    let tty = io::stdout().is_terminal();
    let lines = lines.get_or_insert_with(Lines::start);
    let width = secs(pending.remaining()).to_string().len();
    let prompt = |left: u64, deadline: &str| {
        format!(
            "Keep this change? Type yes within {left:>width$} s (rollback at {deadline}; + for {} s more): ",
            args.confirm_timeout
        )
    };
    let mut out = io::stdout();
    let _ = write!(
        out,
        "{}{}",
        prompt(secs(pending.remaining()), &pending.deadline_text()),
        if tty { "" } else { "\n" }
    );
    let _ = out.flush();
    // Ctrl-C (or SIGTERM) is a no: back at once, rather than at the deadline.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
    }
    let mut current: Pending;
    // The stopped watchdog was said (once, until it runs again).
    let mut warned = false;
    let mut others_said: Option<String> = None;
    let others = {
        let (tx, rx) = mpsc::channel::<Option<String>>();
        let target = target.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                // The countdown ended when nothing listens any more.
                if tx.send(commit::others_changed(&target)).is_err() {
                    return;
                }
            }
        });
        rx
    };
    let mut shown = secs(pending.remaining());
    loop {
        match guard::status(dir) {
            Some(p) if p.id == pending.id && p.rollback_failed.is_none() => current = p,
            _ => return ended_elsewhere(dir, &pending.id, tty),
        }
        match current.stopped_watchdog() {
            Some(why) if !warned => {
                warned = true;
                eprintln!(
                    "{}",
                    crate::format::visible_lines(&format!("\nnfscope: warning: {why}"))
                );
            }
            Some(_) => {}
            None => warned = false,
        }
        // What a rollback would take from others (looked at on a thread of its own, now and
        // then: it reads the changed tables), said once.
        if let Ok(said) = others.try_recv()
            && said.is_some()
            && said != others_said
        {
            if let Some(s) = &said {
                eprintln!("\nnfscope: warning: {}", crate::format::visible_lines(s));
            }
            others_said = said;
        }
        if stop.load(Ordering::Relaxed) {
            if tty {
                say("");
            }
            return roll_back_now(target, "interrupted before a confirmation");
        }
        let left = current.remaining();
        if left.is_zero() {
            break;
        }
        if tty && secs(left) != shown {
            shown = secs(left);
            // Rewrite the prompt in place, leaving what is being typed after it alone.
            let _ = write!(
                out,
                "\x1b7\r{}\x1b8",
                prompt(shown, &current.deadline_text())
            );
            let _ = out.flush();
        }
        let tick = Duration::from_millis(200).min(left);
        match lines.next(tick) {
            None => {}
            Some(Some(answer)) => {
                let a = answer.to_ascii_lowercase();
                if a == "y" || a == "yes" {
                    return confirm_now(target);
                }
                if a == "+" {
                    match guard::extend(dir, Duration::from_secs(args.confirm_timeout)) {
                        Ok(p) => {
                            current = p;
                            if !tty {
                                say(&format!(
                                    "Extended: rollback at {}.",
                                    current.deadline_text()
                                ));
                            }
                        }
                        Err(e) => {
                            eprintln!("{}", crate::format::visible_lines(&format!("nfscope: {e}")))
                        }
                    }
                    if tty {
                        let _ = write!(
                            out,
                            "{}",
                            prompt(secs(current.remaining()), &current.deadline_text())
                        );
                        let _ = out.flush();
                    }
                    continue;
                }
                // Anything else is a no, as in iptables-apply: back at once.
                return roll_back_now(target, "not confirmed");
            }
            Some(None) => {
                if tty {
                    say("");
                }
                return fail(&format!(
                    "standard input is closed, so nothing can confirm here: the watchdog (pid {}) rolls the change back at {} unless `nfscope confirm{flag}` runs before",
                    current.watchdog_pid.unwrap_or(0),
                    current.deadline_text()
                ));
            }
        }
    }
    if tty {
        say("");
    }
    say(&format!(
        "No confirmation by {}: the watchdog is rolling the change back.",
        current.deadline_text()
    ));
    // Wait (bounded) for the watchdog to finish, to say how it went.
    for _ in 0..300 {
        match guard::status(dir) {
            Some(p) if p.id == pending.id && p.rollback_failed.is_none() => {
                std::thread::sleep(Duration::from_millis(100));
            }
            _ => return ended_elsewhere(dir, &pending.id, false),
        }
    }
    fail(
        "the watchdog has not finished the rollback after 30 seconds: look at the rule set (nfscope rules), and run `nfscope rollback` if it is still the new one",
    )
}

/// The pending commit is gone: say what became of it.
fn ended_elsewhere(dir: &Path, id: &str, tty: bool) -> i32 {
    if tty {
        say("");
    }
    match guard::outcome(dir, id) {
        Some(guard::Ended::Confirmed) => {
            say("Confirmed (by another nfscope confirm): the change stays.");
            0
        }
        Some(guard::Ended::RolledBackByWatchdog) => {
            fail("not confirmed in time: the watchdog rolled the change back")
        }
        Some(guard::Ended::RollbackFailed { error }) => fail(&commit::rollback_failed_text(&error)),
        Some(other) => fail(&format!("the change is no longer pending: {other}")),
        None => fail("the change is no longer pending, and nothing says why"),
    }
}

/// `yes` was typed (and its Enter ended the prompt's line): the countdown's confirm, as the
/// TUI's.
fn confirm_now(target: &Target) -> i32 {
    match commit::confirm(target) {
        Progress::Confirmed(_) => {
            say("Confirmed: the change stays.");
            0
        }
        Progress::ActionFailed(e) => fail(&e),
        other => fail(&format!("unexpected answer to a confirmation: {other:?}")),
    }
}

/// A no, or Ctrl-C, in the countdown: the countdown's rollback, as the TUI's `n`.
fn roll_back_now(target: &Target, why: &str) -> i32 {
    match commit::rollback(target) {
        Progress::RolledBack(msg) => fail(&format!("{why}: {msg}")),
        Progress::ActionFailed(msg) => fail(&format!("{why}, and {msg}")),
        other => fail(&format!(
            "{why}: unexpected answer to a rollback: {other:?}"
        )),
    }
}

/// Where root's commits are (its default state directory), for the non-root `confirm` and
/// `rollback` that find nothing in their own.
fn root_state_dir() -> PathBuf {
    std::env::var_os("NFSCOPE_ROOT_STATE_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(backup::ROOT_STATE_DIR), PathBuf::from)
}

/// Run by someone other than root, with nothing pending in their own state directory: a
/// sentence when root's state directory holds a pending commit, or may (it cannot be read
/// without root). `None` for root, or when root's directory holds none.
fn root_commit_pending(dir: &Path, what: &str) -> Option<String> {
    if rustix::process::geteuid().is_root() {
        return None;
    }
    let root = root_state_dir();
    if root == dir {
        return None;
    }
    let pending = root.join("pending.json");
    match std::fs::metadata(&pending) {
        Ok(_) => Some(format!(
            "a commit made as root is pending in {} (nothing is waiting in your own {}): run `sudo nfscope {what}`",
            root.display(),
            dir.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Some(format!(
            "nothing is waiting in your own state directory {}, and root's ({}) cannot be read without root, where a root commit may be pending: run `sudo nfscope {what}`",
            dir.display(),
            root.display()
        )),
        Err(_) => None,
    }
}

/// A sentence when the state directory cannot be looked into (another user's): what looked
/// like "nothing is waiting" would be a lie then.
fn unreadable_state_dir(dir: &Path, what: &str) -> Option<String> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Some(format!(
            "cannot look into the state directory {}: permission denied (it is another user's, root's perhaps): run `sudo nfscope {what}`",
            dir.display()
        )),
        _ => None,
    }
}

/// `nfscope confirm`.
pub fn run_confirm(state_dir: Option<&Path>) -> i32 {
    let dir = backup::state_dir(state_dir);
    if let Some(why) = unreadable_state_dir(&dir, "confirm") {
        return fail(&why);
    }
    if let Err(e) = backup::check_dir(&dir) {
        return fail(&format!("{e}. Nothing was confirmed."));
    }
    if guard::status(&dir).is_none()
        && let Some(why) = root_commit_pending(&dir, "confirm")
    {
        return fail(&why);
    }
    match guard::confirm(&dir) {
        Ok(p) => {
            if let Err(e) = audit::log(&dir, "confirm", &commit::confirm_detail(&p)) {
                eprintln!(
                    "{}",
                    crate::format::visible_lines(&format!("nfscope: warning: {e}"))
                );
            }
            say(&format!(
                "Confirmed: the change by {} stays, and its watchdog stops.",
                p.started_by
            ));
            0
        }
        Err(e) => fail(&format!("{e} (state directory {})", dir.display())),
    }
}

/// `nfscope rollback`: restore the newest backup set now, and disarm any pending watchdog.
pub fn run_rollback(state_dir: Option<&Path>, src: &SourceArgs) -> i32 {
    ignore_sigpipe();
    let dir = backup::state_dir(state_dir);
    if let Some(why) = unreadable_state_dir(&dir, "rollback") {
        return fail(&why);
    }
    // What it holds is loaded into the kernel without a question: trusted only if sound.
    if let Err(e) = backup::check_dir(&dir) {
        return fail(&format!("{e}. Nothing was changed."));
    }
    let pending = guard::status(&dir);
    let backups = match &pending {
        Some(p) if !p.backups.is_empty() => p.backups.clone(),
        _ => backup::latest(&dir),
    };
    if pending.is_none()
        && let Some(why) = root_commit_pending(&dir, "rollback")
    {
        return fail(&why);
    }
    if backups.is_empty() {
        return fail(&format!(
            "there is no backup to roll back to in {}",
            dir.display()
        ));
    }
    let tools = Tools {
        backend: src
            .backend
            .or_else(|| pending.as_ref().and_then(|p| p.backend)),
    };
    // Disarmed first, so that its watchdog does not restore at the same time; put back,
    // marked as failed, should this restore fail too.
    let disarmed = match guard::disarm(&dir, guard::Ended::RolledBackByUser) {
        Ok(p) => p,
        Err(e) => return fail(&format!("cannot disarm the pending commit: {e}")),
    };
    let files: Vec<String> = backups
        .iter()
        .map(|(_, p)| p.display().to_string())
        .collect();
    // A pending commit's rollback puts back only the chains it changed; with none pending, the
    // newest backup is restored whole.
    let touched = disarmed
        .as_ref()
        .map_or_else(Vec::new, |p| p.touched.clone());
    match guard::undo_commit(&tools, &guard::read_backups(&backups), &touched) {
        Ok(diff) => {
            let detail = format!("by hand: restored {}\n{diff}", files.join(", "));
            if let Err(e) = audit::log(&dir, "rollback", detail.trim_end()) {
                eprintln!(
                    "{}",
                    crate::format::visible_lines(&format!("nfscope: warning: {e}"))
                );
            }
            say(&format!("Rolled back to {}.", files.join(" and ")));
            if !diff.is_empty() {
                say(diff.trim_end());
            }
            0
        }
        Err(e) => {
            let _ = audit::log(&dir, "rollback-failed", &format!("by hand: {e}"));
            if let Some(p) = &disarmed
                && let Err(w) = guard::keep_failed(&dir, p, &e)
            {
                eprintln!(
                    "{}",
                    crate::format::visible_lines(&format!(
                        "nfscope: warning: the pending commit could not be kept: {w}"
                    ))
                );
            }
            fail(&format!(
                "{e}. {}",
                if disarmed.is_some() {
                    "The commit stays pending: fix the cause and run `nfscope rollback` again"
                } else {
                    "Fix the cause and run `nfscope rollback` again"
                }
            ))
        }
    }
}

/// `nfscope watchdog --id ID` (hidden; started by `apply` and the UI's commit).
pub fn run_watchdog(state_dir: Option<&Path>, args: &WatchdogArgs) -> i32 {
    guard::watchdog(&backup::state_dir(state_dir), &args.id)
}
