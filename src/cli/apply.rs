//! `nfscope apply`, `nfscope confirm`, `nfscope rollback`, and the hidden `nfscope watchdog`:
//! whole rule sets loaded like iptables-apply does, except that the rollback is done by a
//! watchdog that survives the terminal, the SSH session and nfscope itself (see edit::guard).

use super::SourceArgs;
use crate::edit::guard::{self, Pending};
use crate::edit::tools::Tools;
use crate::edit::{audit, backup, lockout};
use crate::ruleset::{self, Family, Ruleset};
use crate::source::{SourceError, local_addrs};
use clap::Args;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Restore options: wait for the xtables lock rather than fail at once.
const WAIT: &str = "--wait=10";

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

fn say(msg: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{msg}");
    let _ = out.flush();
}

fn fail(msg: &str) -> i32 {
    eprintln!("nfscope: {msg}");
    1
}

/// Writing to a restore tool that stops early must not kill nfscope half way through a change.
fn ignore_sigpipe() {
    // SAFETY: setting a signal's disposition; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// One family's file to load.
struct Input {
    family: Family,
    path: PathBuf,
    text: String,
    rules: Ruleset,
    counters: bool,
}

/// Read and parse one file, once: what is checked is what is loaded. The messages are the
/// file source's (`cannot read PATH: ...`, `PATH: line 7: ...`).
fn read_input(path: &Path, family: Family) -> Result<Input, String> {
    let shown = path.display().to_string();
    let label = family.label();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let e = SourceError::Io {
            path: shown.clone(),
            message: e.to_string(),
        };
        format!("{label}: {e}")
    })?;
    let rules = ruleset::parse(&text, family).map_err(|e| {
        let e = SourceError::Parse {
            what: shown.clone(),
            message: e.to_string(),
        };
        format!("{label}: {e}")
    })?;
    let counters = rules
        .tables
        .iter()
        .flat_map(|t| &t.chains)
        .any(|c| c.rules.iter().any(|r| r.counters.is_some()));
    Ok(Input {
        family,
        path: path.to_path_buf(),
        text,
        rules,
        counters,
    })
}

/// A restore tool's complaint on one line, without its `Try --help` advice.
fn clean(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Try `"))
        .collect();
    lines.join("; ").trim_end_matches('.').to_string()
}

/// The kernel's rule set with the file's tables in place of its own: what the kernel holds
/// once a file is restored (a restore leaves the tables it is not given alone).
fn merged(before: &Ruleset, file: &Ruleset) -> Ruleset {
    let mut out = before.clone();
    for t in &file.tables {
        match out.tables.iter_mut().find(|x| x.name == t.name) {
            Some(x) => *x = t.clone(),
            None => out.tables.push(t.clone()),
        }
    }
    out
}

/// Does the kernel now hold the file's rules? Compared per table of the file: the chains, their
/// policies, and per chain the number of rules and each rule's target (the kernel writes a
/// rule's matches in its own canonical form, e.g. `-p tcp -m tcp --dport 22`, so their words
/// may differ from a hand-written file's). Counters are ignored. The differences, as sentences.
fn verify(family: Family, file: &Ruleset, kernel: &Ruleset) -> Vec<String> {
    let mut out = Vec::new();
    let label = family.label();
    for t in &file.tables {
        let Some(k) = kernel.table(&t.name) else {
            out.push(format!("{label} table {} is not in the kernel", t.name));
            continue;
        };
        for c in &t.chains {
            let Some(kc) = k.chain(&c.name) else {
                out.push(format!(
                    "{label} {}/{} is not in the kernel",
                    t.name, c.name
                ));
                continue;
            };
            if c.policy.is_some() && c.policy != kc.policy {
                out.push(format!(
                    "{label} {}/{} has policy {} instead of {}",
                    t.name,
                    c.name,
                    kc.policy.as_deref().unwrap_or("-"),
                    c.policy.as_deref().unwrap_or("-")
                ));
            }
            let targets = |ch: &ruleset::Chain| -> Vec<Option<String>> {
                ch.rules
                    .iter()
                    .map(|r| r.spec.target.as_ref().map(|x| x.name.to_string()))
                    .collect()
            };
            if c.rules.len() != kc.rules.len() {
                out.push(format!(
                    "{label} {}/{} holds {} rules instead of {}",
                    t.name,
                    c.name,
                    kc.rules.len(),
                    c.rules.len()
                ));
            } else if targets(c) != targets(kc) {
                out.push(format!(
                    "{label} {}/{}: the rules' targets differ from the file's",
                    t.name, c.name
                ));
            }
        }
        for kc in &k.chains {
            if t.chain(&kc.name).is_none() && (!kc.is_builtin() || !kc.rules.is_empty()) {
                out.push(format!(
                    "{label} {}/{} is in the kernel but not in the file",
                    t.name, kc.name
                ));
            }
        }
    }
    out
}

/// The lockout check: with `SSH_CONNECTION` set, would the rule sets after the change still
/// carry this SSH session (edit::lockout)? One line per flow that would be cut. Without
/// `SSH_CONNECTION` (not over SSH) there is nothing to check.
fn lockout_findings(before: &[Ruleset], after: &[Ruleset]) -> Vec<String> {
    let Some(session) = std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|s| lockout::parse_ssh_connection(&s))
    else {
        return Vec::new();
    };
    // Without the local addresses the check still runs; it only knows less about interfaces.
    let local = local_addrs::read().unwrap_or_default();
    lockout::check(&session, before, after, &local)
        .iter()
        .map(ToString::to_string)
        .collect()
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

/// `nfscope apply`. Returns the exit status: 0 applied (and confirmed, or left to the watchdog
/// with --yes, or kept with --no-confirm), 1 nothing changed or the change was rolled back.
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
    let mut inputs = Vec::new();
    for (f, p) in &paths {
        match read_input(p, *f) {
            Ok(i) => inputs.push(i),
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
        if p.watchdog_alive() {
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

    // 1. Validate every file before anything changes.
    for i in &inputs {
        let mut a = vec![WAIT, "--test"];
        if i.counters {
            a.push("-c");
        }
        if let Err(e) = tools.restore(i.family, &a, &i.text) {
            let why = match &e {
                SourceError::ToolFailed { tool, stderr, .. } => {
                    format!(
                        "{}: {} was refused by `{tool} --test`: {}",
                        i.family.label(),
                        i.path.display(),
                        clean(stderr)
                    )
                }
                other => format!("{}: {}", i.family.label(), guard::tool_error(other)),
            };
            return fail(&format!("{why}. Nothing was changed."));
        }
    }

    // 2. Read the kernel now: what to back up and to compare with.
    let mut before: Vec<(Family, String, Ruleset)> = Vec::new();
    for f in Family::ALL {
        let wanted = inputs.iter().any(|i| i.family == f);
        let read = tools.save_text(f).and_then(|text| {
            ruleset::parse(&text, f)
                .map(|rs| (text, rs))
                .map_err(|e| SourceError::Parse {
                    what: tools.save_tool(f),
                    message: e.to_string(),
                })
        });
        match read {
            Ok((text, rs)) => before.push((f, text, rs)),
            Err(e) if wanted => {
                return fail(&format!(
                    "{}: {}. Nothing was changed.",
                    f.label(),
                    guard::tool_error(&e)
                ));
            }
            Err(e) => say(&format!(
                "Note: {}: {}; that family is not backed up and not rolled back.",
                f.label(),
                guard::tool_error(&e)
            )),
        }
    }
    let base: Vec<Ruleset> = before.iter().map(|(_, _, rs)| rs.clone()).collect();
    let staged: Vec<Ruleset> = base
        .iter()
        .map(|rs| {
            inputs
                .iter()
                .find(|i| i.family == rs.family)
                .map_or_else(|| rs.clone(), |i| merged(rs, &i.rules))
        })
        .collect();

    // 3. The lockout check.
    // One reader of standard input for every question asked.
    let mut lines: Option<Lines> = None;
    let findings = lockout_findings(&base, &staged);
    if !findings.is_empty()
        && let Some(code) = lockout_question(&findings, args, &mut lines)
    {
        return code;
    }

    // 4. Back up both families.
    let texts: Vec<(Family, String)> = before.iter().map(|(f, t, _)| (*f, t.clone())).collect();
    let backups = match backup::backup_set(&dir, &texts) {
        Ok(b) => b,
        Err(e) => return fail(&format!("{e}. Nothing was changed.")),
    };

    // 5. Arm the watchdog before the kernel changes: from here on, nfscope may die at any
    // moment and the change still goes back.
    let pending = if args.no_confirm {
        None
    } else {
        match guard::arm(
            &dir,
            &tools,
            &backups,
            Duration::from_secs(args.confirm_timeout),
        ) {
            Ok(p) => Some(p),
            Err(e) => return fail(&format!("{e}. Nothing was changed.")),
        }
    };

    // 6. Load each file whole.
    for i in &inputs {
        let mut a = vec![WAIT];
        if i.counters {
            a.push("-c");
        }
        if let Err(e) = tools.restore(i.family, &a, &i.text) {
            let said = match &e {
                SourceError::ToolFailed { tool, stderr, .. } => {
                    format!("{tool} said: {}", clean(stderr))
                }
                other => guard::tool_error(other),
            };
            let why = format!(
                "{}: {} was refused by the kernel ({said})",
                i.family.label(),
                i.path.display(),
            );
            return undo_now(&dir, &tools, &backups, &why);
        }
    }

    // 7. Read back and verify.
    let mut diffs = String::new();
    for i in &inputs {
        let after = match tools.read(i.family) {
            Ok(rs) => rs,
            Err(e) => {
                let why = format!(
                    "{}: cannot read the rule set back: {}",
                    i.family.label(),
                    guard::tool_error(&e)
                );
                return undo_now(&dir, &tools, &backups, &why);
            }
        };
        let wrong = verify(i.family, &i.rules, &after);
        if !wrong.is_empty() {
            let why = format!(
                "the kernel does not hold what {} says: {}",
                i.path.display(),
                wrong.join("; ")
            );
            return undo_now(&dir, &tools, &backups, &why);
        }
        if let Some((_, _, old)) = before.iter().find(|(f, _, _)| *f == i.family) {
            diffs.push_str(&guard::diff(old, &after));
        }
    }
    let files: Vec<String> = inputs
        .iter()
        .map(|i| i.path.display().to_string())
        .collect();
    let mut detail = format!("loaded {}", files.join(" and "));
    if let Some(p) = &pending {
        detail.push_str(&format!(
            ", rollback at {} unless confirmed",
            p.deadline_text()
        ));
    }
    detail.push('\n');
    detail.push_str(if diffs.is_empty() {
        "(no change to the rules)"
    } else {
        &diffs
    });
    if let Err(e) = audit::log(&dir, "apply", detail.trim_end()) {
        eprintln!("nfscope: warning: {e}");
    }
    if diffs.is_empty() {
        say("Applied: the kernel already held these rules (counters aside).");
    } else {
        say(&format!("Applied:\n{}", diffs.trim_end()));
    }

    let Some(pending) = pending else {
        say("No watchdog (--no-confirm): the change stays.");
        return 0;
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
    countdown(&dir, &tools, &pending, args, &flag, &mut lines)
}

/// ` --state-dir DIR` when the state directory was given on the command line (the confirming
/// command must find the same one).
fn state_dir_hint(flag: Option<&Path>) -> String {
    flag.map_or_else(String::new, |d| format!(" --state-dir {}", d.display()))
}

/// Roll back at once, after a failure half way; returns the exit status.
fn undo_now(dir: &Path, tools: &Tools, backups: &[(Family, PathBuf)], why: &str) -> i32 {
    let _ = guard::disarm(dir, guard::Ended::RolledBackAfterFailure);
    let result = guard::restore_backups(tools, backups);
    let (action, said) = match &result {
        Ok(_) => (
            "rollback",
            format!("{why}. The previous rule sets were restored."),
        ),
        Err(e) => (
            "rollback-failed",
            format!("{why}. Restoring the previous rule sets failed too: {e}"),
        ),
    };
    let _ = audit::log(dir, action, &said);
    fail(&said)
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
            eprintln!("\x1b[1;31mnfscope: this change would cut your SSH session: {f}\x1b[0m");
        } else {
            eprintln!("nfscope: this change would cut your SSH session: {f}");
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
    dir: &Path,
    tools: &Tools,
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
    let mut shown = secs(pending.remaining());
    loop {
        match guard::status(dir) {
            Some(p) if p.id == pending.id => current = p,
            _ => return ended_elsewhere(dir, &pending.id, tty),
        }
        if stop.load(Ordering::Relaxed) {
            if tty {
                say("");
            }
            let backups = current.backups.clone();
            return undo_now(dir, tools, &backups, "interrupted before a confirmation");
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
                    return confirm_now(dir);
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
                        Err(e) => eprintln!("nfscope: {e}"),
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
                let backups = current.backups.clone();
                return undo_now(dir, tools, &backups, "not confirmed");
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
            Some(p) if p.id == pending.id => std::thread::sleep(Duration::from_millis(100)),
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
        Some(other) => fail(&format!("the change is no longer pending: {other}")),
        None => fail("the change is no longer pending, and nothing says why"),
    }
}

/// `yes` was typed (and its Enter ended the prompt's line).
fn confirm_now(dir: &Path) -> i32 {
    match guard::confirm(dir) {
        Ok(p) => {
            log_confirm(dir, &p);
            say("Confirmed: the change stays.");
            0
        }
        Err(e) => fail(&e),
    }
}

fn log_confirm(dir: &Path, p: &Pending) {
    let detail = format!(
        "kept the commit of {} by {}{}",
        p.id,
        p.started_by,
        p.ssh_client
            .as_deref()
            .map_or_else(String::new, |c| format!(" from {c}"))
    );
    if let Err(e) = audit::log(dir, "confirm", &detail) {
        eprintln!("nfscope: warning: {e}");
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

/// `nfscope confirm`.
pub fn run_confirm(state_dir: Option<&Path>) -> i32 {
    let dir = backup::state_dir(state_dir);
    if guard::status(&dir).is_none()
        && let Some(why) = root_commit_pending(&dir, "confirm")
    {
        return fail(&why);
    }
    match guard::confirm(&dir) {
        Ok(p) => {
            log_confirm(&dir, &p);
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
    if let Err(e) = guard::disarm(&dir, guard::Ended::RolledBackByUser) {
        return fail(&format!("cannot disarm the pending commit: {e}"));
    }
    let files: Vec<String> = backups
        .iter()
        .map(|(_, p)| p.display().to_string())
        .collect();
    match guard::restore_backups(&tools, &backups) {
        Ok(diff) => {
            let detail = format!("by hand: restored {}\n{diff}", files.join(", "));
            if let Err(e) = audit::log(&dir, "rollback", detail.trim_end()) {
                eprintln!("nfscope: warning: {e}");
            }
            say(&format!("Rolled back to {}.", files.join(" and ")));
            if !diff.is_empty() {
                say(diff.trim_end());
            }
            0
        }
        Err(e) => {
            let _ = audit::log(&dir, "rollback-failed", &format!("by hand: {e}"));
            fail(&e)
        }
    }
}

/// `nfscope watchdog --id ID` (hidden; started by `apply` and the UI's commit).
pub fn run_watchdog(state_dir: Option<&Path>, args: &WatchdogArgs) -> i32 {
    guard::watchdog(&backup::state_dir(state_dir), &args.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(text: &str) -> Ruleset {
        ruleset::parse(text, Family::V4).unwrap()
    }

    #[test]
    fn verify_ignores_counters_and_canonical_forms() {
        let file = rs("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n");
        let kernel = rs(
            "*filter\n:INPUT DROP [5:6]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n[1:2] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n",
        );
        assert!(verify(Family::V4, &file, &kernel).is_empty());
        let other = rs("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
        let wrong = verify(Family::V4, &file, &other);
        assert!(
            wrong
                .iter()
                .any(|w| w.contains("policy ACCEPT instead of DROP")),
            "{wrong:?}"
        );
        assert!(
            wrong
                .iter()
                .any(|w| w.contains("holds 0 rules instead of 1")),
            "{wrong:?}"
        );
        let nat = rs("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n");
        assert_eq!(
            verify(Family::V4, &nat, &kernel),
            vec!["IPv4 table nat is not in the kernel".to_string()]
        );
    }

    #[test]
    fn merged_replaces_only_the_files_tables() {
        let kernel =
            rs("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
        let file = rs("*filter\n:INPUT DROP [0:0]\nCOMMIT\n*raw\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n");
        let m = merged(&kernel, &file);
        let names: Vec<&str> = m.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["nat", "filter", "raw"]);
        assert_eq!(
            m.table("filter").unwrap().chains[0].policy.as_deref(),
            Some("DROP")
        );
    }
}
