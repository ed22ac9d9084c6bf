//! Commit-confirmed: the watchdog that rolls a change back unless someone confirms it in time,
//! and that outlives the UI, the terminal and the SSH session.
//!
//! A pending commit is `DIR/pending.json` (always replaced atomically). [`arm`] writes it and
//! starts `nfscope watchdog --state-dir DIR --id ID` detached: a grandchild (the intermediate
//! process exits at once, so nobody waits on it and it never becomes anyone's zombie) in a
//! session of its own, SIGHUP ignored, standard input and output on /dev/null, working
//! directory `/`. It inherits the network namespace it was started in. [`watchdog`] polls every
//! 100 ms: the pending file gone or naming another commit → it exits; past the deadline → it
//! restores every backup of the set (whole rule sets, both families, with `restore -c`),
//! writes the audit log and removes the pending file. Decisions (confirm, extend, roll back)
//! are taken under an exclusive lock on `DIR/lock`, so a confirmation and a rollback at the
//! deadline never both happen.

use super::audit;
use super::backup::{self, StateDir};
use super::diff::DiffKind;
use super::tools::Tools;
use crate::ruleset::{self, Family, Ruleset, builtin_chains};
use crate::source::{Backend, SourceError};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The furthest a deadline can be (`--confirm-timeout` takes at most as much, and `+` never
/// moves it further): a change is not left unconfirmed and unguarded for days.
pub const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// How often the watchdog looks at the pending file.
pub const POLL: Duration = Duration::from_millis(100);

/// Restore options: wait for the xtables lock (the legacy tools share one across namespaces).
const WAIT: &str = "--wait=10";

/// A commit that waits for its confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    /// When the watchdog rolls back, in milliseconds since the epoch: for people, and for a
    /// pending file written before `deadline_boot_ms` existed.
    pub deadline_unix_ms: u64,
    /// The same deadline on the clock that counts from boot (CLOCK_BOOTTIME, suspend
    /// included), which no one can step: what the watchdog goes by. A wall clock stepped back
    /// an hour no longer delays the rollback by an hour.
    #[serde(default)]
    pub deadline_boot_ms: Option<u64>,
    /// The backup set to restore, one file per family.
    pub backups: Vec<(Family, PathBuf)>,
    /// The tools the change was made with; the rollback uses the same.
    pub backend: Option<Backend>,
    /// Written by the watchdog itself once it runs.
    pub watchdog_pid: Option<u32>,
    pub started_by: String,
    pub ssh_client: Option<String>,
    /// The watchdog's rollback failed (the sentence): the kernel may still hold the change, so
    /// the commit stays pending, for `nfscope rollback` to try again, and no new commit starts.
    #[serde(default)]
    pub rollback_failed: Option<String>,
    /// The chains the commit changes: a rollback puts back only these (from the backup), so
    /// what others changed elsewhere meanwhile (fail2ban, Docker) stays. Empty: the whole
    /// rule sets (a pending file from before this existed).
    #[serde(default)]
    pub touched: Vec<super::ChainRef>,
}

impl Pending {
    /// Whether a new commit must wait: this one's watchdog runs, or its rollback failed.
    pub fn blocks_new_commit(&self) -> bool {
        self.rollback_failed.is_some() || self.watchdog() != WatchdogState::Gone
    }

    /// Time left until the deadline (zero once it passed).
    pub fn remaining(&self) -> Duration {
        match self.deadline_boot_ms {
            Some(b) => Duration::from_millis(b.saturating_sub(boot_ms())),
            None => Duration::from_millis(self.deadline_unix_ms.saturating_sub(now_ms())),
        }
    }

    /// Local, with its offset: `19:58:03 +01:00`.
    pub fn deadline_text(&self) -> String {
        crate::time::local_time(self.deadline_unix_ms)
    }

    /// Whether its watchdog process is still running (not stopped, not gone).
    pub fn watchdog_alive(&self) -> bool {
        self.watchdog() == WatchdogState::Running
    }

    /// What became of its watchdog.
    pub fn watchdog(&self) -> WatchdogState {
        self.watchdog_pid
            .map_or(WatchdogState::Gone, |pid| watchdog_state(pid, &self.id))
    }

    /// Its watchdog is stopped: a sentence saying that nothing rolls back, and what to do.
    pub fn stopped_watchdog(&self) -> Option<String> {
        (self.watchdog() == WatchdogState::Stopped).then(|| {
            let pid = self.watchdog_pid.unwrap_or(0);
            format!(
                "its watchdog (pid {pid}) is stopped (SIGSTOP?), so nothing rolls the change back at the deadline: continue it (`kill -CONT {pid}`), or confirm or roll back the change"
            )
        })
    }
}

/// Milliseconds since boot (CLOCK_BOOTTIME): never stepped, counts suspend.
pub fn boot_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    u64::try_from(t.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1000)
        .saturating_add(u64::try_from(t.tv_nsec / 1_000_000).unwrap_or(0))
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

const PENDING: &str = "pending.json";
const OUTCOME: &str = "outcome.json";

/// The state directory `dir`, checked and opened (`backup::StateDir`): `None` when it does not
/// exist; refused in a sentence when it cannot be looked into or is not sound, which is never
/// "nothing is waiting".
fn open_dir(dir: &Path) -> Result<Option<StateDir>, String> {
    match StateDir::open_existing(dir) {
        Ok(d) => Ok(d),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied && fs::read_dir(dir).is_err() => {
            Err(format!(
                "cannot look for a pending commit in {}: permission denied (it is another user's, root's perhaps: run with sudo)",
                dir.display()
            ))
        }
        Err(e) => Err(format!(
            "cannot look for a pending commit in {}: {e}",
            dir.display()
        )),
    }
}

/// Whether a commit is pending in the opened state directory.
fn pending_present(sd: &StateDir) -> Result<bool, String> {
    sd.exists(PENDING).map_err(|e| {
        format!(
            "cannot look for a pending commit in {}: {e}",
            sd.path().display()
        )
    })
}

/// Whether `pid` is a running (not dead, not a zombie) `nfscope watchdog` for commit `id`.
pub fn is_watchdog(pid: u32, id: &str) -> bool {
    watchdog_state(pid, id) == WatchdogState::Running
}

/// What became of a watchdog process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchdogState {
    Running,
    /// Stopped (SIGSTOP, a debugger): it rolls nothing back until it is continued.
    Stopped,
    /// Gone, a zombie, or another program now has its pid.
    Gone,
}

/// The state of process `pid`, if it is the watchdog of commit `id`.
pub fn watchdog_state(pid: u32, id: &str) -> WatchdogState {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return WatchdogState::Gone;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    if !(args.contains(&&b"watchdog"[..]) && args.contains(&id.as_bytes())) {
        return WatchdogState::Gone;
    }
    let state = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next().map(str::to_string))
        });
    match state.as_deref() {
        Some("T" | "t") => WatchdogState::Stopped,
        Some("Z" | "X" | "x") | None => WatchdogState::Gone,
        Some(_) => WatchdogState::Running,
    }
}

/// The pending commit, `None` when there is none. A file that does not parse is an error.
pub fn read_pending(dir: &Path) -> io::Result<Option<Pending>> {
    match StateDir::open_existing(dir)? {
        Some(sd) => read_pending_at(&sd),
        None => Ok(None),
    }
}

fn read_pending_at(sd: &StateDir) -> io::Result<Option<Pending>> {
    match sd.read_text(PENDING, crate::source::bounded::SMALL_LIMIT) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is damaged ({e}): remove it, then run `nfscope rollback` if the rule set must go back",
                    sd.path().join(PENDING).display()
                ),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn write_pending(sd: &StateDir, p: &Pending) -> io::Result<()> {
    let text = serde_json::to_string_pretty(p).map_err(io::Error::other)?;
    sd.write_atomic(PENDING, &text)
}

fn remove_pending(sd: &StateDir) -> io::Result<()> {
    sd.remove(PENDING)
}

/// The pending commit, if there is one and its file reads.
pub fn status(dir: &Path) -> Option<Pending> {
    let mut p = read_pending(dir).ok().flatten()?;
    // The wall clock was stepped since the deadline was set: say the deadline as it now
    // reads on the wall (the watchdog goes by the boot clock).
    if p.deadline_boot_ms.is_some() && p.rollback_failed.is_none() {
        let wall = now_ms().saturating_add(u64::try_from(p.remaining().as_millis()).unwrap_or(0));
        if wall.abs_diff(p.deadline_unix_ms) > 2000 {
            p.deadline_unix_ms = wall;
        }
    }
    Some(p)
}

/// An exclusive lock on `DIR/lock`, released on drop.
struct Lock(File);

fn lock(sd: &StateDir) -> io::Result<Lock> {
    let f = sd.open_lock("lock")?;
    loop {
        match rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive) {
            Ok(()) => return Ok(Lock(f)),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Closing the descriptor would release it too; this says so at once.
        let _ = rustix::fs::flock(&self.0, rustix::fs::FlockOperation::Unlock);
    }
}

/// How a commit that is no longer pending ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum Ended {
    Confirmed,
    /// The deadline passed without a confirmation.
    RolledBackByWatchdog,
    /// The watchdog was told to stop (SIGTERM, a logout) before a confirmation.
    RolledBackOnStop,
    /// The user rolled it back (`n` in the countdown, `nfscope rollback`).
    RolledBackByUser,
    /// The apply or its verification failed, and nfscope restored the backup at once (or
    /// nothing of the change was left to restore).
    RolledBackAfterFailure,
    RollbackFailed {
        error: String,
    },
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Confirmed => write!(f, "confirmed"),
            Ended::RolledBackByWatchdog => {
                write!(f, "rolled back by the watchdog (no confirmation in time)")
            }
            Ended::RolledBackOnStop => write!(
                f,
                "rolled back by the watchdog, stopped (SIGTERM) before a confirmation"
            ),
            Ended::RolledBackByUser => write!(f, "rolled back by the user"),
            Ended::RolledBackAfterFailure => {
                write!(f, "not kept: the commit failed and was undone at once")
            }
            Ended::RollbackFailed { error } => write!(f, "the rollback failed: {error}"),
        }
    }
}

/// The outcome of a commit once it is no longer pending, in `DIR/outcome.json`, so that the
/// process that armed it can say what happened, and the next start can tell the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub id: String,
    pub ended: Ended,
    /// When it ended (Unix ms).
    pub at_ms: u64,
    /// Who started the commit.
    #[serde(default)]
    pub started_by: String,
    /// The next start of nfscope has said it already.
    #[serde(default)]
    pub told: bool,
}

impl Outcome {
    /// `The last commit (by root) was rolled back by the watchdog (...) at 14:02:31 +01:00.`
    pub fn sentence(&self) -> String {
        let by = if self.started_by.is_empty() {
            String::new()
        } else {
            format!(" (by {})", self.started_by)
        };
        let at = crate::time::local_datetime(self.at_ms);
        match &self.ended {
            Ended::RollbackFailed { error } => {
                format!("the rollback of the last commit{by} failed at {at}: {error}")
            }
            ended => format!("the last commit{by} was {ended} at {at}"),
        }
    }
}

fn write_outcome(sd: &StateDir, o: &Outcome) {
    if let Ok(text) = serde_json::to_string(o) {
        let _ = sd.write_atomic(OUTCOME, &text);
    }
}

fn set_outcome(sd: &StateDir, p: &Pending, ended: Ended) {
    write_outcome(
        sd,
        &Outcome {
            id: p.id.clone(),
            ended,
            at_ms: now_ms(),
            started_by: p.started_by.clone(),
            told: false,
        },
    );
}

/// The last commit's outcome, whatever its id (an unreadable or older file: none).
pub fn last_outcome(dir: &Path) -> Option<Outcome> {
    last_outcome_at(&StateDir::open(dir).ok()?)
}

fn last_outcome_at(sd: &StateDir) -> Option<Outcome> {
    let text = sd
        .read_text(OUTCOME, crate::source::bounded::SMALL_LIMIT)
        .ok()?;
    serde_json::from_str(&text).ok()
}

/// The last outcome, once, for the start of nfscope: it is marked as told.
pub fn untold_outcome(dir: &Path) -> Option<Outcome> {
    let sd = StateDir::open(dir).ok()?;
    let mut o = last_outcome_at(&sd).filter(|o| !o.told)?;
    o.told = true;
    write_outcome(&sd, &o);
    o.told = false;
    Some(o)
}

/// What became of commit `id`, once it is no longer pending.
pub fn outcome(dir: &Path, id: &str) -> Option<Ended> {
    last_outcome(dir).filter(|o| o.id == id).map(|o| o.ended)
}

/// Arm the watchdog: write the pending commit and start the watchdog, which rolls `backups`
/// back with `tools` unless the commit is confirmed within `timeout`. Returns once the
/// watchdog runs (it writes its pid into the pending file). Refused while another commit
/// waits with a live watchdog; one whose watchdog is gone is replaced.
pub fn arm(
    dir: &Path,
    tools: &Tools,
    backups: &[(Family, PathBuf)],
    touched: &[super::ChainRef],
    timeout: Duration,
) -> io::Result<Pending> {
    backup::ensure_dir(dir)?;
    let sd = StateDir::open(dir)?;
    let id = format!(
        "{}-{}",
        backup::stamp(SystemTime::now()),
        std::process::id()
    );
    {
        let _l = lock(&sd)?;
        if let Some(p) = read_pending_at(&sd)?
            && p.blocks_new_commit()
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                busy_message(&p),
            ));
        }
        if let Some(why) = kernel_busy() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, why));
        }
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let p = Pending {
            id: id.clone(),
            deadline_unix_ms: now_ms().saturating_add(ms),
            deadline_boot_ms: Some(boot_ms().saturating_add(ms)),
            backups: backups.to_vec(),
            backend: tools.backend,
            watchdog_pid: None,
            started_by: audit::user(),
            ssh_client: audit::ssh_client(),
            rollback_failed: None,
            touched: touched.to_vec(),
        };
        write_pending(&sd, &p)?;
    }
    let started = spawn_watchdog(dir, &id);
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        if let Err(e) = &started {
            let _ = disarm_id(dir, &id);
            return Err(io::Error::new(
                e.kind(),
                format!("cannot start the rollback watchdog: {e}"),
            ));
        }
        match read_pending_at(&sd)? {
            Some(p) if p.id == id && p.watchdog_pid.is_some() => return Ok(p),
            Some(p) if p.id == id => {}
            _ => {
                return Err(io::Error::other(
                    "the pending commit vanished while the watchdog started",
                ));
            }
        }
        if Instant::now() > give_up {
            let _ = disarm_id(dir, &id);
            return Err(io::Error::other(
                "the rollback watchdog did not start within 5 seconds",
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The lock of one pending commit per kernel: an abstract unix socket, which lives in the
/// network namespace it was bound in (whatever the state directory) and goes with the process
/// that holds it, the watchdog.
const KERNEL_LOCK: &[u8] = b"nfscope-watchdog";

/// Take the kernel's lock (the watchdog keeps it for its life); an error when another
/// watchdog of this network namespace holds it.
pub fn hold_kernel_lock() -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(KERNEL_LOCK)?;
    std::os::unix::net::UnixListener::bind_addr(&addr)
}

/// A sentence when a commit of another state directory waits for confirmation in this
/// network namespace (its watchdog holds the kernel's lock).
pub fn kernel_busy() -> Option<String> {
    // A watchdog whose commit just ended (confirmed, rolled back) notices within its poll
    // interval and lets the lock go: wait for that before calling the kernel busy.
    let give_up = Instant::now() + POLL * 15;
    let mut held = hold_kernel_lock();
    while matches!(&held, Err(e) if e.kind() == io::ErrorKind::AddrInUse)
        && Instant::now() < give_up
    {
        std::thread::sleep(POLL / 2);
        held = hold_kernel_lock();
    }
    match held {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Some(
            "a commit is waiting for confirmation in this network namespace, made with another state directory (its watchdog holds the lock): confirm or roll it back there first (`nfscope confirm --state-dir DIR` or `nfscope rollback --state-dir DIR`)".into(),
        ),
        _ => None,
    }
}

/// The sentence for a commit that is already waiting.
pub fn busy_message(p: &Pending) -> String {
    let from = p
        .ssh_client
        .as_deref()
        .map_or_else(String::new, |c| format!(" from {c}"));
    if let Some(stopped) = p.stopped_watchdog() {
        return format!(
            "a commit by {}{from} is waiting for confirmation, and {stopped}, first",
            p.started_by
        );
    }
    if let Some(why) = &p.rollback_failed {
        return format!(
            "the rollback of the commit by {}{from} failed ({why}), so the kernel may still hold that change: look at the rule set, then run `nfscope rollback` to try again (or `nfscope confirm` to keep the change) first",
            p.started_by
        );
    }
    format!(
        "a commit by {}{from} is waiting for confirmation until {}: confirm it (`nfscope confirm`) or undo it (`nfscope rollback`) first",
        p.started_by,
        p.deadline_text()
    )
}

/// Start `current_exe() watchdog --state-dir DIR --id ID`, fully detached.
fn spawn_watchdog(dir: &Path, id: &str) -> io::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = std::path::absolute(dir)?;
    let mut cmd = Command::new(exe);
    cmd.arg("watchdog")
        .arg("--state-dir")
        .arg(&dir)
        .arg("--id")
        .arg(id)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec the closure calls only async-signal-safe functions
    // (setsid, signal, the close_range system call, fork, _exit) and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            // Descriptors inherited from whoever started nfscope (an SSH channel, a pipe)
            // would keep them open for as long as the watchdog lives: closed at exec. Older
            // kernels lack the call; the standard streams are replaced all the same.
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            match libc::fork() {
                -1 => Err(io::Error::last_os_error()),
                // The grandchild goes on to exec the watchdog.
                0 => Ok(()),
                // The intermediate leaves at once: the grandchild is nobody's child to wait on.
                _ => libc::_exit(0),
            }
        });
    }
    let mut child = cmd.spawn()?;
    // Reap the intermediate, which has exited or is about to.
    child.wait()?;
    Ok(())
}

/// Remove the pending commit `id` (if it is still the pending one).
fn disarm_id(dir: &Path, id: &str) -> io::Result<()> {
    let sd = StateDir::open(dir)?;
    let _l = lock(&sd)?;
    match read_pending_at(&sd)? {
        Some(p) if p.id == id => remove_pending(&sd),
        _ => Ok(()),
    }
}

/// Remove whatever commit is pending (its watchdog then exits) and return it; `ended` says
/// why, for the outcome.
pub fn disarm(dir: &Path, ended: Ended) -> io::Result<Option<Pending>> {
    let Some(sd) = open_dir(dir).map_err(io::Error::other)? else {
        return Ok(None);
    };
    if !pending_present(&sd).map_err(io::Error::other)? {
        return Ok(None);
    }
    let _l = lock(&sd)?;
    let p = read_pending_at(&sd).ok().flatten();
    remove_pending(&sd)?;
    if let Some(p) = &p {
        set_outcome(&sd, p, ended);
    }
    Ok(p)
}

/// Move the deadline `by` later.
pub fn extend(dir: &Path, by: Duration) -> Result<Pending, String> {
    let Some(sd) = open_dir(dir)? else {
        return Err(nothing_pending());
    };
    if !pending_present(&sd)? {
        return Err(nothing_pending());
    }
    let _l = lock(&sd).map_err(|e| format!("cannot lock {}: {e}", dir.display()))?;
    let mut p = read_pending_at(&sd)
        .map_err(|e| e.to_string())?
        .ok_or_else(nothing_pending)?;
    if p.remaining().is_zero() {
        return Err("the deadline has passed: the watchdog is rolling the change back".into());
    }
    if p.remaining().saturating_add(by) > MAX_WAIT {
        return Err(format!(
            "the deadline can be at most {} hours away; it is at {}",
            MAX_WAIT.as_secs() / 3600,
            p.deadline_text()
        ));
    }
    let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
    p.deadline_unix_ms = p.deadline_unix_ms.saturating_add(ms);
    p.deadline_boot_ms = p.deadline_boot_ms.map(|b| b.saturating_add(ms));
    write_pending(&sd, &p).map_err(|e| e.to_string())?;
    Ok(p)
}

fn nothing_pending() -> String {
    "no commit is waiting for confirmation".to_string()
}

/// Confirm the pending commit: it stays, and its watchdog exits. Refused once the deadline has
/// passed and the watchdog is rolling back; a commit whose watchdog is gone (so nothing was
/// rolled back) is confirmed.
pub fn confirm(dir: &Path) -> Result<Pending, String> {
    let Some(sd) = open_dir(dir)? else {
        return Err(nothing_pending());
    };
    if !pending_present(&sd)? {
        return Err(nothing_pending());
    }
    let _l = lock(&sd).map_err(|e| format!("cannot lock {}: {e}", dir.display()))?;
    let p = read_pending_at(&sd)
        .map_err(|e| e.to_string())?
        .ok_or_else(nothing_pending)?;
    if p.remaining().is_zero() && p.watchdog_alive() {
        return Err(format!(
            "too late: the deadline passed at {} and the watchdog is rolling the change back",
            p.deadline_text()
        ));
    }
    remove_pending(&sd).map_err(|e| e.to_string())?;
    set_outcome(&sd, &p, Ended::Confirmed);
    Ok(p)
}

/// A tool's failure as a sentence for a command that changes the rule set: missing root and
/// missing tools say what to do (SourceError's own words point at --demo, which changes
/// nothing); the rest as SourceError says it.
pub fn tool_error(e: &SourceError) -> String {
    match e {
        SourceError::PermissionDenied { tool } => format!(
            "{tool} needs root (CAP_NET_ADMIN) to change the rule set: run nfscope as root (sudo)"
        ),
        SourceError::ToolMissing { tool } => format!(
            "{tool} was not found: install the iptables package (e.g. `apt-get install iptables`)"
        ),
        other => other.to_string(),
    }
}

/// What changed between two readings of one family, as the Changes screen shows it: the
/// unified diff (save text without counters) of each table that differs, its headers saying
/// `(before)` and `(after)`; empty when none differs.
pub fn diff(before: &Ruleset, after: &Ruleset) -> String {
    let mut out = String::new();
    for d in super::diff::diff(std::slice::from_ref(before), std::slice::from_ref(after)) {
        for l in &d.lines {
            let text = match l.kind {
                DiffKind::Header if l.text.starts_with("--- ") => {
                    format!("--- {} {} (before)", d.family.label(), d.table)
                }
                DiffKind::Header if l.text.starts_with("+++ ") => {
                    format!("+++ {} {} (after)", d.family.label(), d.table)
                }
                _ => l.text.clone(),
            };
            out.push_str(&text);
            out.push('\n');
        }
    }
    out
}

/// Restore a backup set: each family's whole rule set, counters included. A table the kernel
/// holds now but the backup does not is emptied (built-in chains ACCEPT, no rules, no user
/// chains), since a restore leaves the tables it is not given alone. Returns the diff of what
/// it changed (counters ignored).
pub fn restore_backups(tools: &Tools, backups: &[(Family, PathBuf)]) -> Result<String, String> {
    restore_loaded(tools, &read_backups(backups))
}

/// A backup set read into memory: each file's family, path, and text (or why it could not be
/// read). The watchdog reads its set once, when it starts, and restores that: a file changed
/// or swapped later is not what it loads.
pub type Loaded = Vec<(Family, PathBuf, Result<String, String>)>;

/// Read a backup set into memory.
pub fn read_backups(backups: &[(Family, PathBuf)]) -> Loaded {
    backups
        .iter()
        .map(|(family, path)| {
            let text =
                crate::source::bounded::read_state_text(path, crate::source::bounded::RULES_LIMIT)
                    .map_err(|e| format!("cannot read the backup {}: {e}", path.display()));
            (*family, path.clone(), text)
        })
        .collect()
}

/// Put back the chains a commit touched, as the backup has them, and leave every other chain
/// as it is now: the inverse plan, made against the kernel as it is at the moment of the
/// rollback (what others changed in other chains meanwhile stays). With no chain named, or when
/// the plan cannot be made or applied, the whole rule sets are restored instead, and the
/// sentence says so. Returns the diff of what changed.
pub fn undo_commit(
    tools: &Tools,
    loaded: &Loaded,
    touched: &[super::ChainRef],
) -> Result<String, String> {
    if touched.is_empty() {
        return restore_loaded(tools, loaded);
    }
    match undo_chains(tools, loaded, touched) {
        Ok(d) => Ok(d),
        Err(why) => restore_loaded(tools, loaded).map(|d| {
            format!("only the changed chains could not be put back ({why}); the whole rule sets were restored instead\n{d}")
        }),
    }
}

fn undo_chains(
    tools: &Tools,
    loaded: &Loaded,
    touched: &[super::ChainRef],
) -> Result<String, String> {
    let touched: std::collections::BTreeSet<super::ChainRef> = touched.iter().cloned().collect();
    let mut now_all = Vec::new();
    let mut target_all = Vec::new();
    for family in Family::ALL {
        if !touched.iter().any(|c| c.family == family) {
            continue;
        }
        let text = loaded
            .iter()
            .find(|(f, _, _)| *f == family)
            .and_then(|(_, _, t)| t.as_ref().ok())
            .ok_or_else(|| format!("no readable {} backup", family.label()))?;
        let before = ruleset::parse(text, family).map_err(|e| e.to_string())?;
        let now = tools.read(family).map_err(|e| tool_error(&e))?;
        // The kernel now, with each touched chain as it was before (or gone, if it was not).
        let mut target = now.clone();
        for at in touched.iter().filter(|c| c.family == family) {
            let old = before.table(&at.table).and_then(|t| t.chain(&at.chain));
            if target.table(&at.table).is_none() {
                target.tables.push(crate::ruleset::Table::new(&at.table));
            }
            let Some(t) = target.table_mut(&at.table) else {
                continue;
            };
            match (t.chains.iter().position(|c| c.name == at.chain), old) {
                (Some(i), Some(c)) => t.chains[i] = c.clone(),
                (Some(i), None) => {
                    t.chains.remove(i);
                }
                (None, Some(c)) => t.chains.push(c.clone()),
                (None, None) => {}
            }
        }
        now_all.push(now);
        target_all.push(target);
    }
    let changes = super::plan::plan(
        &now_all,
        &target_all,
        &touched,
        &[],
        &std::collections::BTreeSet::new(),
    );
    super::apply::apply_changes(tools, &changes).map_err(|e| e.to_string())?;
    let mut diffs = String::new();
    for now in &now_all {
        if let Ok(after) = tools.read(now.family) {
            diffs.push_str(&diff(now, &after));
        }
    }
    Ok(diffs)
}

/// `read_backups` for the watchdog: each backup read relative to the state directory's
/// handle, and only from it (a pending file naming a backup elsewhere is not trusted).
fn read_backups_in(sd: &StateDir, backups: &[(Family, PathBuf)]) -> Loaded {
    backups
        .iter()
        .map(|(family, path)| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .filter(|_| path.parent() == Some(sd.path()));
            let text = match name {
                Some(n) => sd
                    .read_text(n, crate::source::bounded::RULES_LIMIT)
                    .map_err(|e| format!("cannot read the backup {}: {e}", path.display())),
                None => Err(format!(
                    "the backup {} is not in the state directory {}: not loaded",
                    path.display(),
                    sd.path().display()
                )),
            };
            (*family, path.clone(), text)
        })
        .collect()
}

/// `restore_backups` of a set read already.
pub fn restore_loaded(tools: &Tools, loaded: &Loaded) -> Result<String, String> {
    let mut diffs = String::new();
    let mut failures = Vec::new();
    for (family, path, text) in loaded {
        let text = match text {
            Ok(t) => t.clone(),
            Err(e) => {
                failures.push(e.clone());
                continue;
            }
        };
        let saved = match ruleset::parse(&text, *family) {
            Ok(rs) => rs,
            Err(e) => {
                failures.push(format!("the backup {} is damaged: {e}", path.display()));
                continue;
            }
        };
        let now = tools.read(*family).ok();
        let mut input = text.clone();
        // Tables made since the backup cannot be removed by iptables: they are emptied, and the
        // sentence says so rather than "restored".
        let mut made = Vec::new();
        if let Some(now) = &now {
            for t in &now.tables {
                if saved.table(&t.name).is_none() {
                    input.push_str(&empty_table(&t.name));
                    made.push(t.name.clone());
                }
            }
        }
        let mut last = Ok(());
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(500));
            }
            last = tools.restore(*family, &[WAIT, "-c"], &input);
            if last.is_ok() {
                break;
            }
        }
        match last {
            Ok(()) => {
                if let Some(now) = &now {
                    if let Ok(after) = tools.read(*family) {
                        diffs.push_str(&diff(now, &after));
                    }
                }
                if !made.is_empty() {
                    diffs.push_str(&format!(
                        "{}: table {} did not exist before the commit; iptables cannot remove a table, so it is left empty with ACCEPT policies\n",
                        family.label(),
                        made.join(", ")
                    ));
                }
            }
            Err(e) => failures.push(format!(
                "{}: the backup {} was not restored: {}",
                family.label(),
                path.display(),
                tool_error(&e)
            )),
        }
    }
    if failures.is_empty() {
        Ok(diffs)
    } else {
        Err(failures.join("; "))
    }
}

/// A table with its built-in chains, ACCEPT policies and nothing else.
fn empty_table(name: &str) -> String {
    let mut s = format!("*{name}\n");
    for c in builtin_chains(name) {
        s.push_str(&format!(":{c} ACCEPT [0:0]\n"));
    }
    s.push_str("COMMIT\n");
    s
}

/// The watchdog's life (`nfscope watchdog --id ID`): see the module documentation. Returns the
/// exit status: 0 when it had nothing to do or rolled back, 1 when the rollback failed.
pub fn watchdog(dir: &Path, id: &str) -> i32 {
    // A restore tool that exits early must not take the watchdog with it.
    // SAFETY: setting signal dispositions; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    // Told to stop (SIGTERM: a logout that kills the session's processes, a shutdown): the
    // safe way out is the rollback, now, rather than none at all.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let _ = signal_hook::flag::register(sig, std::sync::Arc::clone(&stop));
    }
    // Root restores what this directory names: nothing in it is trusted unless it is sound.
    // (Refusing here leaves `arm` without a watchdog, so the commit is not made.)
    // The directory is opened once, and everything in it is reached from that handle from
    // now on: what its path leads to may change, what this process reads may not.
    let sd = match StateDir::open(dir) {
        Ok(sd) => sd,
        Err(e) => {
            audit::to_syslog(&audit::record("watchdog-refused", &e.to_string()));
            return 1;
        }
    };
    // One pending commit per kernel: held until this process ends.
    let Ok(_kernel_lock) = hold_kernel_lock() else {
        let _ = audit::log_at(
            &sd,
            "watchdog-refused",
            "another watchdog of this network namespace holds the lock",
        );
        return 1;
    };
    let (mut known, loaded) = {
        let Ok(_l) = lock(&sd) else { return 0 };
        match read_pending_at(&sd) {
            Ok(Some(mut p)) if p.id == id => {
                // The backups, once, now: what a rollback loads whatever happens to the files.
                let loaded = read_backups_in(&sd, &p.backups);
                p.watchdog_pid = Some(std::process::id());
                if write_pending(&sd, &p).is_err() {
                    return 0;
                }
                (p, loaded)
            }
            _ => return 0,
        }
    };
    loop {
        std::thread::sleep(POLL);
        match read_pending_at(&sd) {
            Ok(None) => return 0,
            Ok(Some(p)) if p.id != id => return 0,
            Ok(Some(p)) => known = p,
            // A damaged file: keep to the last good reading (and its deadline).
            Err(_) => {}
        }
        let stopped = stop.load(std::sync::atomic::Ordering::Relaxed);
        if !stopped && !known.remaining().is_zero() {
            continue;
        }
        let Ok(_l) = lock(&sd) else {
            // The directory is gone: so is the pending commit.
            return 0;
        };
        match read_pending_at(&sd) {
            Ok(None) => return 0,
            Ok(Some(p)) if p.id != id => return 0,
            Ok(Some(p)) if !stopped && !p.remaining().is_zero() => {
                known = p;
                continue;
            }
            _ => {}
        }
        return roll_back(&sd, &known, stopped, &loaded);
    }
}

/// The deadline passed (or the watchdog was told to stop): restore, log, clear. Called with
/// the lock held.
fn roll_back(sd: &StateDir, p: &Pending, stopped: bool, loaded: &Loaded) -> i32 {
    let why = if stopped {
        "the watchdog was stopped (SIGTERM) before a confirmation".to_string()
    } else {
        // The audit log keeps UTC.
        format!(
            "no confirmation by {}",
            crate::time::utc_iso(UNIX_EPOCH + Duration::from_millis(p.deadline_unix_ms))
        )
    };
    let tools = Tools { backend: p.backend };
    let files: Vec<String> = p
        .backups
        .iter()
        .map(|(_, path)| path.display().to_string())
        .collect();
    let (code, action, ended, detail) = match undo_commit(&tools, loaded, &p.touched) {
        Ok(d) => (
            0,
            "rollback",
            if stopped {
                Ended::RolledBackOnStop
            } else {
                Ended::RolledBackByWatchdog
            },
            format!("{why}: restored {}\n{d}", files.join(", ")),
        ),
        Err(e) => (
            1,
            "rollback-failed",
            Ended::RollbackFailed {
                error: e.to_string(),
            },
            format!("{why}: {e}"),
        ),
    };
    let _ = audit::log_at(sd, action, detail.trim_end());
    match ended {
        Ended::RollbackFailed { error } => {
            // The change may still be in the kernel: it stays pending, for `nfscope rollback`.
            let _ = keep_failed_at(sd, p, &error);
        }
        ended => {
            set_outcome(sd, p, ended);
            let _ = remove_pending(sd);
        }
    }
    code
}

/// A rollback of `p` failed with `error`: it stays pending, marked so (no watchdog watches
/// it any more), and the outcome says so, for whoever waits on it.
pub fn keep_failed(dir: &Path, p: &Pending, error: &str) -> io::Result<()> {
    keep_failed_at(&StateDir::open(dir)?, p, error)
}

fn keep_failed_at(sd: &StateDir, p: &Pending, error: &str) -> io::Result<()> {
    let mut kept = p.clone();
    kept.rollback_failed = Some(error.to_string());
    kept.watchdog_pid = None;
    set_outcome(
        sd,
        p,
        Ended::RollbackFailed {
            error: error.to_string(),
        },
    );
    write_pending(sd, &kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let p = backup::test_dir(tag);
        backup::ensure_dir(&p).unwrap();
        p
    }

    fn pending(id: &str, in_ms: u64) -> Pending {
        Pending {
            id: id.into(),
            deadline_unix_ms: now_ms() + in_ms,
            deadline_boot_ms: Some(boot_ms() + in_ms),
            backups: vec![(Family::V4, "/nowhere/x.v4.rules".into())],
            backend: Some(Backend::Legacy),
            watchdog_pid: None,
            started_by: "root".into(),
            ssh_client: None,
            rollback_failed: None,
            touched: Vec::new(),
        }
    }

    #[test]
    fn the_deadline_goes_by_the_boot_clock_not_the_wall() {
        let dir = temp("clockstep");
        // The wall clock was stepped back an hour since the commit was armed: by the wall the
        // deadline is an hour away; by the boot clock, half a second.
        let mut p = pending("step", 500);
        p.deadline_unix_ms = now_ms() + 3_600_000;
        assert!(p.remaining() <= Duration::from_millis(500));
        write_pending(&StateDir::open(&dir).unwrap(), &p).unwrap();
        let seen = status(&dir).unwrap();
        assert!(
            seen.deadline_unix_ms <= now_ms() + 1000,
            "the deadline as the wall now reads it: {}",
            seen.deadline_unix_ms
        );
        // A pending file from before the boot clock goes by the wall.
        p.deadline_boot_ms = None;
        assert!(p.remaining() > Duration::from_secs(3000));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn confirm_extend_and_disarm() {
        let dir = temp("confirm");
        assert_eq!(confirm(&dir).unwrap_err(), nothing_pending());
        assert!(extend(&dir, Duration::from_secs(1)).is_err());
        let p = pending("a", 10_000);
        write_pending(&StateDir::open(&dir).unwrap(), &p).unwrap();
        assert_eq!(status(&dir), Some(p.clone()));
        let e = extend(&dir, Duration::from_secs(5)).unwrap();
        assert_eq!(e.deadline_unix_ms, p.deadline_unix_ms + 5000);
        // Never further than MAX_WAIT away.
        let far = extend(&dir, MAX_WAIT).unwrap_err();
        assert!(far.contains("at most 24 hours"), "{far}");
        assert_eq!(status(&dir).unwrap().deadline_unix_ms, e.deadline_unix_ms);
        assert_eq!(confirm(&dir).unwrap().id, "a");
        assert_eq!(status(&dir), None);
        assert_eq!(outcome(&dir, "a"), Some(Ended::Confirmed));
        // Told once at the next start, then not again.
        let told = untold_outcome(&dir).expect("an outcome");
        assert!(
            told.sentence()
                .starts_with("the last commit (by root) was confirmed at ")
        );
        assert_eq!(untold_outcome(&dir), None);
        assert_eq!(outcome(&dir, "b"), None);

        write_pending(&StateDir::open(&dir).unwrap(), &pending("b", 0)).unwrap();
        assert!(extend(&dir, Duration::from_secs(5)).is_err());
        // Past the deadline, but no watchdog ran: nothing was rolled back, so it is confirmed.
        assert!(confirm(&dir).is_ok());
        write_pending(&StateDir::open(&dir).unwrap(), &pending("c", 1000)).unwrap();
        assert_eq!(
            disarm(&dir, Ended::RolledBackByUser)
                .unwrap()
                .map(|p| p.id)
                .as_deref(),
            Some("c")
        );
        assert_eq!(outcome(&dir, "c"), Some(Ended::RolledBackByUser));
        assert_eq!(disarm(&dir, Ended::RolledBackByUser).unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_pending_file_is_an_error_with_a_sentence() {
        let dir = temp("damaged");
        fs::write(dir.join(PENDING), "{ not json").unwrap();
        let e = read_pending(&dir).unwrap_err().to_string();
        assert!(
            e.contains("is damaged") && e.contains("nfscope rollback"),
            "{e}"
        );
        assert!(status(&dir).is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_watchdog_whose_commit_is_gone_exits_at_once() {
        let dir = temp("gone");
        assert_eq!(watchdog(&dir, "nope"), 0);
        write_pending(&StateDir::open(&dir).unwrap(), &pending("other", 60_000)).unwrap();
        assert_eq!(watchdog(&dir, "nope"), 0);
        assert_eq!(status(&dir).unwrap().watchdog_pid, None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn this_process_is_no_watchdog() {
        assert!(!is_watchdog(std::process::id(), "x"));
        assert!(!is_watchdog(u32::MAX, "x"));
    }

    #[test]
    fn empty_tables_keep_their_builtin_chains() {
        assert_eq!(
            empty_table("raw"),
            "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
        );
    }

    #[test]
    fn diffs_are_per_table_and_empty_for_equal_rule_sets() {
        let a = ruleset::parse("*filter\n:INPUT ACCEPT [1:2]\nCOMMIT\n", Family::V4).unwrap();
        let b = ruleset::parse("*filter\n:INPUT DROP [0:0]\nCOMMIT\n", Family::V4).unwrap();
        let counters_only =
            ruleset::parse("*filter\n:INPUT ACCEPT [9:9]\nCOMMIT\n", Family::V4).unwrap();
        assert_eq!(diff(&a, &counters_only), "");
        let d = diff(&a, &b);
        assert!(
            d.contains("-:INPUT ACCEPT") && d.contains("+:INPUT DROP"),
            "{d}"
        );
        assert!(
            d.starts_with("--- IPv4 filter (before)\n+++ IPv4 filter (after)\n@@"),
            "{d}"
        );
    }
}
