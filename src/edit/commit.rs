//! The commit orchestrator: the steps that take staged changes into the kernel (or a file, or
//! the demo world), each reported as it starts and ends so the UI can show a checklist, and the
//! commit-confirmed window after it (confirm, extend, roll back). Runs on a worker thread; every
//! piece it calls is in `edit/`: `apply` (validate, read, apply), `plan` (conflicts, the minimal
//! scripts, verify), `lockout`, `backup`, `guard` (the watchdog) and `audit`.
//!
//! Order, for the kernel: validate (`restore --test` of the staged tables) → concurrency (re-read,
//! unless nf_tables is still at the generation the base was read at; refuse when a chain the
//! user edited moved, and hand back the kernel's rule sets so the UI can offer a rebase) →
//! lockout (with `SSH_CONNECTION`; findings stop the commit until the user typed the
//! confirmation word) → backup (both families) → watchdog armed → apply (one `--noflush`
//! transaction per table) → verify (read back). The watchdog is armed before the
//! kernel is touched, not after: if nfscope, its terminal or the SSH session die in the middle
//! of the apply, the rollback still comes.

use super::guard::Pending;
use super::{ChainRef, apply, audit, backup, guard, lockout, plan, stage::Op, tools::Tools};
use crate::ruleset::save::{SaveOptions, write as save_text};
use crate::ruleset::{self, Counters, Family, Ruleset};
use crate::source::demo::SharedDemo;
use crate::trace::LocalAddr;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The steps, in the order they run (for the checklist). Not `apply::Step`: here the watchdog
/// is a step of its own, armed before the kernel is touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Validate,
    Concurrency,
    Lockout,
    Backup,
    Watchdog,
    Apply,
    Verify,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::Validate,
        Step::Concurrency,
        Step::Lockout,
        Step::Backup,
        Step::Watchdog,
        Step::Apply,
        Step::Verify,
    ];

    /// Whether the target may have been changed when this step fails (then the step's
    /// sentence says what was undone); before it, nothing was.
    pub fn after_change(self) -> bool {
        matches!(self, Step::Apply | Step::Verify)
    }

    pub fn label(self) -> &'static str {
        match self {
            Step::Validate => "validate",
            Step::Concurrency => "concurrency",
            Step::Lockout => "lockout check",
            Step::Backup => "backup",
            Step::Watchdog => "watchdog",
            Step::Apply => "apply",
            Step::Verify => "verify",
        }
    }
}

/// What a commit reports, step by step, and what the confirm window's actions report.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Running(Step),
    Done(Step, String),
    Failed(Step, String),
    /// Chains the user edited moved in the kernel: refused. The kernel's rule sets as read, for
    /// a rebase; the changes as lines (`chain: - rule`, `chain: + rule`).
    Conflicts {
        lines: Vec<String>,
        now: Vec<Ruleset>,
    },
    /// The staged change would cut the SSH session: each finding in a sentence. The commit
    /// stops until it is asked again with the confirmation typed.
    Lockout(Vec<String>),
    /// Applied and verified; rolled back at this time unless confirmed.
    Armed {
        deadline_ms: u64,
    },
    /// What the kernel holds now that it did not before (and the reverse), as `guard::diff`
    /// lines: reported after a whole-file load verified (`nfscope apply` prints it).
    Changes(String),
    /// Applied and verified, and nothing to confirm (a file, or a kernel commit without a
    /// watchdog).
    Finished(String),
    Extended {
        deadline_ms: u64,
    },
    Confirmed(String),
    RolledBack(String),
    /// The watchdog's rollback failed: the kernel may still hold the change, which stays
    /// pending for `nfscope rollback`. The sentence says why and how to recover.
    RollbackFailed(String),
    /// A confirm, extend or rollback that did not work, in a sentence.
    ActionFailed(String),
}

/// Where a commit goes.
#[derive(Clone)]
pub enum Target {
    Kernel {
        tools: Tools,
        dir: PathBuf,
        /// The commit-confirmed window; `None`: no watchdog, the change stays as applied
        /// (`nfscope apply --no-confirm`).
        timeout: Option<Duration>,
        /// The id of the commit this UI armed last, to tell at the deadline whether it was
        /// confirmed from elsewhere (`nfscope confirm`) or rolled back.
        armed: std::sync::Arc<std::sync::Mutex<Option<String>>>,
        /// The chains the commit armed last changed, as they were right after it (without
        /// counters): what `others_changed` compares the kernel with during the countdown.
        committed: std::sync::Arc<std::sync::Mutex<Committed>>,
    },
    File {
        v4: Option<PathBuf>,
        v6: Option<PathBuf>,
        dir: PathBuf,
    },
    /// The demo world in memory; the countdown is the UI's own, and the rule sets before the
    /// commit are kept here for the rollback.
    Demo {
        world: SharedDemo,
        before: std::sync::Arc<std::sync::Mutex<Option<Vec<Ruleset>>>>,
        timeout: Duration,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Kernel { dir, .. } => write!(f, "Kernel({})", dir.display()),
            Target::File { v4, v6, .. } => write!(f, "File({v4:?}, {v6:?})"),
            Target::Demo { .. } => write!(f, "Demo"),
        }
    }
}

/// How a commit changes the kernel.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Load {
    /// The edited chains only, by the smallest script per table, one `--noflush` transaction
    /// each (the TUI's staged edits).
    #[default]
    Chains,
    /// Whole files, each replacing the tables it holds, as `iptables-restore FILE` does
    /// (`nfscope apply`). `Request::staged` is then worked out from the kernel as read.
    Files(Vec<WholeFile>),
}

/// One family's rule set file for `Load::Files`, read and parsed once: what is checked is what
/// is loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct WholeFile {
    pub family: Family,
    pub path: PathBuf,
    pub text: String,
    pub rules: Ruleset,
    /// The file carries counters (`[packets:bytes]`): they are loaded too (`-c`).
    pub counters: bool,
}

impl WholeFile {
    /// Read and parse `path` as `family`'s rule set; the sentence names the file (and the line).
    pub fn read(path: &Path, family: Family) -> Result<WholeFile, String> {
        let shown = path.display().to_string();
        let label = family.label();
        let text = crate::source::bounded::read_text(path, crate::source::bounded::RULES_LIMIT)
            .map_err(|e| {
                let e = crate::source::SourceError::Io {
                    path: shown.clone(),
                    message: e.to_string(),
                };
                format!("{label}: {e}")
            })?;
        let rules = ruleset::parse(&text, family).map_err(|e| {
            let e = crate::source::SourceError::Parse {
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
        Ok(WholeFile {
            family,
            path: path.to_path_buf(),
            text,
            rules,
            counters,
        })
    }
}

/// The chains a commit changed, each as its lines (`:NAME POLICY`, `-A NAME ...`) right after it,
/// and when `others_changed` may look at the kernel again.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    pub chains: Vec<(ChainRef, Vec<String>)>,
    /// Reading the changed tables is not free (seconds for a 50,000-rule nat table on
    /// nf_tables): the next look waits ten times as long as the last one took, five seconds
    /// at least.
    next_look: Option<std::time::Instant>,
}

/// A chain's lines, without counters; empty when it does not exist.
fn chain_lines(sets: &[Ruleset], at: &ChainRef) -> Vec<String> {
    let Some(c) = sets
        .iter()
        .find(|r| r.family == at.family)
        .and_then(|r| r.table(&at.table))
        .and_then(|t| t.chain(&at.chain))
    else {
        return Vec::new();
    };
    let mut out = vec![format!(
        ":{} {}",
        c.name,
        c.policy.as_deref().unwrap_or("-")
    )];
    out.extend(c.rules.iter().map(|r| format!("-A {} {}", c.name, r.text)));
    out
}

/// During the countdown: the chains the commit changed that someone else changed since (a
/// rollback puts them back as they were before the commit, and so removes what they added), in
/// a sentence; `None` when there are none, or nothing to compare with.
pub fn others_changed(target: &Target) -> Option<String> {
    let Target::Kernel {
        tools, committed, ..
    } = target
    else {
        return None;
    };
    let after = {
        let c = committed.lock().ok()?;
        if c.chains.is_empty() || c.next_look.is_some_and(|t| std::time::Instant::now() < t) {
            return None;
        }
        c.chains.clone()
    };
    let started = std::time::Instant::now();
    let tables: BTreeSet<(Family, String)> = after
        .iter()
        .map(|(c, _)| (c.family, c.table.clone()))
        .collect();
    let now = apply::read_tables(tools, &tables);
    if let Ok(mut c) = committed.lock() {
        c.next_look =
            Some(std::time::Instant::now() + (started.elapsed() * 10).max(Duration::from_secs(5)));
    }
    let now = now.ok()?;
    let mut said = Vec::new();
    for (at, lines) in &after {
        let cur = chain_lines(&now, at);
        if cur == *lines {
            continue;
        }
        let theirs: Vec<String> = cur
            .iter()
            .filter(|l| !lines.contains(l))
            .map(|l| format!("`{l}`"))
            .collect();
        said.push(if theirs.is_empty() {
            format!("{at} was changed by someone else since the commit")
        } else {
            format!(
                "{at} was changed by someone else since the commit: a rollback removes {}",
                theirs.join(", ")
            )
        });
    }
    (!said.is_empty()).then(|| {
        format!(
            "{} (a rollback puts the chains the commit changed back as they were before it)",
            said.join("; ")
        )
    })
}

/// Everything a commit needs, taken from the staging when the user pressed commit (or, for
/// `nfscope apply`, the files to load).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Request {
    /// How the kernel is changed.
    pub load: Load,
    pub base: Vec<Ruleset>,
    /// iptables-nft: the nf_tables generation at which the save tools printed `base`
    /// (`Staging::base_generation`). When the kernel is still there, `base` is what a re-read
    /// would give, and the commit does not read the kernel again (see `read_kernel`).
    pub base_generation: Option<u32>,
    pub staged: Vec<Ruleset>,
    pub ops: Vec<Op>,
    pub edited: BTreeSet<ChainRef>,
    pub renames: Vec<(ChainRef, String)>,
    pub zeroed: BTreeSet<ChainRef>,
    /// `SSH_CONNECTION`, when set.
    pub ssh: Option<String>,
    /// This machine's addresses, for the lockout check.
    pub locals: Vec<LocalAddr>,
    /// The user typed the confirmation word after a lockout warning.
    pub lockout_confirmed: bool,
    /// The unified diff, for the audit log.
    pub diff: String,
}

impl Request {
    /// A commit of what `st` stages on its base (the generation it was read at included);
    /// the rest (SSH session, addresses, the confirmation, the diff) left to the caller.
    pub fn staged(st: &super::stage::Staging) -> Request {
        Request {
            base: st.base().to_vec(),
            base_generation: st.base_generation(),
            staged: st.result().to_vec(),
            ops: st.ops().to_vec(),
            edited: st.edited(),
            renames: st.renames(),
            zeroed: st.zeroed(),
            ..Request::default()
        }
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn families(rs: &[Ruleset]) -> Vec<Family> {
    Family::ALL
        .into_iter()
        .filter(|f| rs.iter().any(|r| r.family == *f))
        .collect()
}

/// Conflicts as lines a person reads: which chain, what the base had, what the kernel has now.
fn conflict_lines(conflicts: &[plan::Conflict]) -> Vec<String> {
    let mut out = Vec::new();
    for c in conflicts {
        out.push(format!("{} changed since you started editing it:", c.chain));
        for l in &c.base {
            if !c.now.contains(l) {
                out.push(format!("  - {l}"));
            }
        }
        for l in &c.now {
            if !c.base.contains(l) {
                out.push(format!("  + {l}"));
            }
        }
        if c.base.iter().all(|l| c.now.contains(l)) && c.now.iter().all(|l| c.base.contains(l)) {
            out.push("  (the same rules in another order, or another policy)".into());
        }
    }
    out
}

/// The concurrency step's verdict on the rule sets as re-read (`now`): false, after reporting
/// the conflicts, when a chain the user edited moved meanwhile.
fn concurrency_step(
    req: &Request,
    now: &[Ruleset],
    where_: &str,
    report: &mut dyn FnMut(Progress),
) -> bool {
    let conflicts = plan::conflicts(&req.base, now, &req.edited, &req.renames);
    if !conflicts.is_empty() {
        report(Progress::Conflicts {
            lines: conflict_lines(&conflicts),
            now: now.to_vec(),
        });
        return false;
    }
    report(Progress::Done(
        Step::Concurrency,
        format!("the chains you edited are as you found them{where_}"),
    ));
    true
}

/// The kernel's rule sets as the concurrency step has them: one read of both families serves the
/// conflict check, the plan and the backup, and none at all when nf_tables has not moved since
/// the base was read (then the base is the kernel's).
pub struct KernelNow {
    /// Each family's save text, whole, as the save tool prints it: the backup.
    pub texts: Vec<(Family, String)>,
    /// The families the commit works on, parsed (every family read, for a whole-file load).
    pub now: Vec<Ruleset>,
    pub how: HowRead,
}

/// The concurrency step's read of the kernel (`KernelNow`), in this thread's network
/// namespace; `Err` is the step's sentence.
pub fn read_kernel(tools: &Tools, req: &Request) -> Result<KernelNow, String> {
    let whole = matches!(req.load, Load::Files(_));
    let fams: Vec<Family> = match &req.load {
        Load::Files(files) => Family::ALL
            .into_iter()
            .filter(|f| files.iter().any(|w| w.family == *f))
            .collect(),
        Load::Chains => families(&req.staged),
    };
    let why = match base_now(tools, req) {
        BaseNow::Current { generation, sets } => {
            let texts = sets
                .iter()
                .map(|rs| (rs.family, save_text(rs, SaveOptions::default())))
                .collect();
            let now = sets
                .into_iter()
                .filter(|r| fams.contains(&r.family))
                .collect();
            return Ok(KernelNow {
                texts,
                now,
                how: HowRead::Skipped(generation),
            });
        }
        BaseNow::Read(why) => why,
    };
    let mut texts = Vec::new();
    for f in Family::ALL {
        match tools.save_text(f) {
            Ok(t) => texts.push((f, t)),
            // A family whose tools are missing has nothing to restore; one that fails
            // otherwise must not be committed without a backup.
            Err(crate::source::SourceError::ToolMissing { .. }) if !fams.contains(&f) => {}
            Err(e) => return Err(format!("{}: {}", f.label(), guard::tool_error(&e))),
        }
    }
    let mut now = Vec::new();
    // A whole-file load is checked for lockout against both families as they will be.
    for (f, text) in texts.iter().filter(|(f, _)| whole || fams.contains(f)) {
        match crate::ruleset::parse(text, *f) {
            Ok(rs) => now.push(rs),
            Err(e) => {
                return Err(format!(
                    "{}: the rule set read back does not parse: {e}",
                    f.label()
                ));
            }
        }
    }
    Ok(KernelNow {
        texts,
        now,
        how: HowRead::Read(why),
    })
}

/// The backup step's checks of each family's text before the kernel is touched: the watchdog
/// loads a backup without a question, so each must parse as a rule set (`backup_set` then
/// proves the file holds these very bytes) and the restore tool must take it (`--test -c`: a
/// comment holding a line break, for one, is printed by iptables-save but refused by
/// iptables-restore). `Err` is the step's sentence.
pub fn check_backup(tools: &Tools, texts: &[(Family, String)]) -> Result<(), String> {
    for (f, text) in texts {
        // The parse runs on another core while the restore tool reads the text.
        let (parsed, tested) = std::thread::scope(|s| {
            let parsed = s.spawn(|| crate::ruleset::parse(text, *f).map_err(|e| e.to_string()));
            let tested = tools.restore(*f, &["--test", "-c", "--wait=10"], text);
            (parsed.join(), tested)
        });
        let parsed = parsed.unwrap_or_else(|_| Err("the parser stopped".into()));
        if let Err(e) = parsed {
            return Err(format!(
                "{}: the rule set as read does not parse, so a backup of it could not be restored: {e}",
                f.label()
            ));
        }
        if let Err(e) = tested {
            return Err(format!(
                "{}: the restore tool would refuse the backup of the rule set as it is now ({}), so a rollback could not put it back: nothing is changed until the rule set can be saved and restored (see `nfscope rules`)",
                f.label(),
                guard::tool_error(&e)
            ));
        }
    }
    Ok(())
}

/// How the concurrency step had the kernel's rule sets.
enum BaseNow {
    /// nf_tables is still at the generation at which the base was read: the base's rules are
    /// the kernel's. `sets` is the base of both families with the counters read just now.
    Current { generation: u32, sets: Vec<Ruleset> },
    /// The kernel must be read whole; why, for the checklist (empty: no generation was known,
    /// as on legacy, for a resumed staging or a whole-file load).
    Read(String),
}

/// How the kernel's rule sets were had, for the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HowRead {
    /// Not read again: nf_tables was still at this generation, at which the base was read.
    Skipped(u32),
    /// Read whole through the save tools; why, when a generation was known (else empty).
    Read(String),
}

impl HowRead {
    /// Said after "the chains you edited are as you found them".
    pub fn said(&self) -> String {
        match self {
            HowRead::Skipped(g) => format!(
                " (re-read skipped: nf_tables unchanged since generation {g}, when your rule set was read; counters read over netlink)"
            ),
            HowRead::Read(why) if why.is_empty() => String::new(),
            HowRead::Read(why) => format!(" (read again: {why})"),
        }
    }
}

/// Whether the base is still the kernel's rule set: iptables-nft, the base read at an
/// nf_tables generation, both families in it, and the kernel still at that generation. Then a
/// whole re-read (3.9 s through iptables-nft-save at 50,000 rules, docs/performance.md) would
/// print the base again, so the counters alone are read, over netlink
/// (`nft_netlink::read_counters_into`, checked against the rules and the generation), in this
/// thread's network namespace, as the tools run. Any doubt means a whole read.
fn base_now(tools: &Tools, req: &Request) -> BaseNow {
    use crate::source::{Backend, kernel, nft_netlink};
    let Some(g) = req.base_generation else {
        return BaseNow::Read(String::new());
    };
    if !matches!(req.load, Load::Chains)
        || Family::ALL
            .iter()
            .any(|f| req.base.iter().filter(|r| r.family == *f).count() != 1)
    {
        return BaseNow::Read(String::new());
    }
    // The generation is nf_tables': it says nothing of legacy tables.
    let backend = tools.backend.map_or_else(kernel::detect_backend, Ok);
    if backend != Ok(Backend::Nft) {
        return BaseNow::Read(String::new());
    }
    let moved = |now: u32| {
        BaseNow::Read(format!(
            "nf_tables moved since your rule set was read, from generation {g} to {now}"
        ))
    };
    let unread = |e: nft_netlink::NftError| {
        BaseNow::Read(format!(
            "nf_tables could not be read over netlink ({e}), so the rule set may have moved"
        ))
    };
    // One message first: when it moved, the counters are not worth reading.
    match nft_netlink::generation() {
        Ok(now) if now == g => {}
        Ok(now) => return moved(now),
        Err(e) => return unread(e),
    }
    let mut sets: Vec<Ruleset> = Family::ALL
        .iter()
        .filter_map(|f| req.base.iter().find(|r| r.family == *f).cloned())
        .collect();
    match nft_netlink::read_counters_into(&mut sets, g) {
        Ok(true) => {}
        Ok(false) => {
            return BaseNow::Read(format!(
                "nf_tables' counters could not be read at generation {g}: the rule set moved meanwhile, or they do not line up with your rule set's rules"
            ));
        }
        Err(e) => return unread(e),
    }
    BaseNow::Current {
        generation: g,
        sets,
    }
}

/// `IPv4 in /var/lib/nfscope/…, IPv6 in …`.
fn backups_text(b: &[(Family, PathBuf)]) -> String {
    b.iter()
        .map(|(f, p)| format!("{} in {}", f.label(), p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lockout step, shared by every target that is the running system.
/// `native`: how to read the native nftables chains the session also meets (`None`: there are
/// none, as in the demo).
fn lockout_step(
    req: &Request,
    now: &[Ruleset],
    native: Option<&Tools>,
    report: &mut dyn FnMut(Progress),
) -> bool {
    report(Progress::Running(Step::Lockout));
    let Some(ssh) = req.ssh.as_deref() else {
        report(Progress::Done(
            Step::Lockout,
            "not over SSH (no SSH_CONNECTION): nothing to check".into(),
        ));
        return true;
    };
    let Some(session) = lockout::parse_ssh_connection(ssh) else {
        report(Progress::Done(
            Step::Lockout,
            format!("SSH_CONNECTION ({ssh}) cannot be read: not checked"),
        ));
        return true;
    };
    let (native, native_note) = match native {
        None => (crate::trace::nft::Native::default(), ""),
        Some(tools) => {
            let backend = match tools.backend {
                Some(b) => Ok(b),
                None => crate::source::kernel::detect_backend().map_err(|e| e.to_string()),
            };
            match backend.and_then(|b| lockout::native(session.family(), now, b)) {
                Ok(n) if n.is_empty() => (n, ""),
                Ok(n) => (n, ", native nftables chains included"),
                Err(e) => {
                    report(Progress::Failed(
                        Step::Lockout,
                        format!(
                            "the native nftables chains your session also meets could not be read, so the check cannot be trusted: {e}"
                        ),
                    ));
                    return false;
                }
            }
        }
    };
    let findings = lockout::check(&session, now, &req.staged, &req.locals, &native);
    if findings.is_empty() {
        report(Progress::Done(
            Step::Lockout,
            format!("your SSH session and a new connection are still accepted{native_note}"),
        ));
        return true;
    }
    if !req.lockout_confirmed {
        report(Progress::Lockout(
            findings.iter().map(ToString::to_string).collect(),
        ));
        return false;
    }
    report(Progress::Done(
        Step::Lockout,
        format!(
            "{} warning{} overridden: you typed the confirmation",
            findings.len(),
            if findings.len() == 1 { "" } else { "s" }
        ),
    ));
    true
}

/// `iptables-restore --test` of the staged tables, for the rule editor's save: `Err` holds the
/// tool's complaint. The demo has no tools, and a file without root cannot be tested: both
/// pass (nfscope's own parser has read the rule already).
pub fn validate(target: &Target, staged: &[Ruleset]) -> Result<(), String> {
    let tools = match target {
        Target::Kernel { tools, .. } => *tools,
        Target::File { .. } => Tools::default(),
        Target::Demo { .. } => return Ok(()),
    };
    match apply::validate(&tools, staged) {
        Ok(()) => Ok(()),
        // A file without root or tools: nfscope's own checks stand.
        Err(e) if e.untestable() && matches!(target, Target::File { .. }) => {
            unresolvable_hosts(staged).map_or(Ok(()), Err)
        }
        Err(apply::ApplyError::Invalid { tool, message, .. }) => {
            Err(format!("{tool} --test: {message}"))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Run a commit, reporting each step. Stops at the first step that fails or needs the user.
pub fn run(target: &Target, req: &Request, report: &mut dyn FnMut(Progress)) {
    if matches!(req.load, Load::Files(_)) && !matches!(target, Target::Kernel { .. }) {
        report(Progress::Failed(
            Step::Validate,
            "whole rule set files are loaded into the kernel only (nfscope apply)".into(),
        ));
        return;
    }
    match target {
        Target::Kernel {
            tools,
            dir,
            timeout,
            armed,
            committed,
        } => {
            if let Some((id, after)) = run_kernel(tools, dir, *timeout, req, report) {
                if let Ok(mut a) = armed.lock() {
                    *a = Some(id);
                }
                if let Ok(mut c) = committed.lock() {
                    *c = after;
                }
            }
        }
        Target::File { v4, v6, dir } => run_file(v4.as_deref(), v6.as_deref(), dir, req, report),
        Target::Demo {
            world,
            before,
            timeout,
        } => run_demo(world, before, *timeout, req, report),
    }
}

/// The kernel's commit; the pending commit's id once the watchdog is armed and all went well.
/// The same steps for staged chains (the TUI) and whole files (`nfscope apply`).
fn run_kernel(
    tools: &Tools,
    dir: &Path,
    timeout: Option<Duration>,
    req: &Request,
    report: &mut dyn FnMut(Progress),
) -> Option<(String, Committed)> {
    let files: &[WholeFile] = match &req.load {
        Load::Files(f) => f,
        Load::Chains => &[],
    };
    let whole = matches!(req.load, Load::Files(_));
    // Only the tables the commit changes are trial-loaded and read back (docs/performance.md).
    let changed: BTreeSet<(Family, String)> = if whole {
        files
            .iter()
            .flat_map(|w| w.rules.tables.iter().map(|t| (w.family, t.name.clone())))
            .collect()
    } else {
        req.edited
            .iter()
            .chain(&req.zeroed)
            .map(|c| (c.family, c.table.clone()))
            .collect()
    };

    report(Progress::Running(Step::Validate));
    // For whole files: each as the kernel will print it, from the trial load.
    let mut expected: Vec<Option<Ruleset>> = Vec::new();
    let validated = if whole {
        validate_files(tools, files).map(|e| {
            expected = e;
            req.clone()
        })
    } else {
        // From here on the staged rules are spelled as the kernel will print them, so that
        // the plan and the verification compare like with like.
        apply::canonical_tables(tools, &req.staged, &changed)
            .map(|staged| Request {
                staged,
                ..req.clone()
            })
            .map_err(|e| e.to_string())
    };
    let mut req = match validated {
        Ok(r) => r,
        Err(e) => {
            report(Progress::Failed(Step::Validate, e));
            return None;
        }
    };
    report(Progress::Done(
        Step::Validate,
        if whole {
            format!(
                "{} --test and a trial load accept {}",
                tools.restore_tool(files[0].family),
                paths_text(files)
            )
        } else {
            "iptables-restore --test accepts the staged tables".into()
        },
    ));

    report(Progress::Running(Step::Concurrency));
    let KernelNow { texts, now, how } = match read_kernel(tools, &req) {
        Ok(k) => k,
        Err(e) => {
            report(Progress::Failed(Step::Concurrency, e));
            return None;
        }
    };
    // A table the save tool leaves out is neither in the backup nor in what is checked, and a
    // restore of the family would destroy it: no commit to a family that has one.
    let changed_families: BTreeSet<Family> = changed.iter().map(|(f, _)| *f).collect();
    for rs in now.iter().filter(|r| changed_families.contains(&r.family)) {
        let bad = rs.incompatible_tables();
        if !bad.is_empty() {
            report(Progress::Failed(
                Step::Concurrency,
                format!(
                    "{} table {} holds rules iptables cannot show (the save tool calls it or its base chains incompatible), so it could be neither backed up nor checked, and a restore would wipe those rules: change it with nft, or remove its native rules, first",
                    rs.family.label(),
                    bad.join(", ")
                ),
            ));
            return None;
        }
    }
    if whole {
        req.base = now.clone();
        req.staged = now
            .iter()
            .map(|rs| {
                files
                    .iter()
                    .find(|w| w.family == rs.family)
                    .map_or_else(|| rs.clone(), |w| replace_tables(rs, &w.rules))
            })
            .collect();
        report(Progress::Done(
            Step::Concurrency,
            "read the kernel's rule sets: the files replace their tables whole".into(),
        ));
    } else if !concurrency_step(&req, &now, &how.said(), report) {
        return None;
    }

    if !lockout_step(&req, &now, Some(tools), report) {
        return None;
    }
    let touched = touched_chains(&req, files, &now);

    report(Progress::Running(Step::Backup));
    if let Err(e) = check_backup(tools, &texts) {
        report(Progress::Failed(Step::Backup, e));
        return None;
    }
    if let Err(e) = audit::check_writable(dir) {
        report(Progress::Failed(
            Step::Backup,
            format!("{e}: a change that cannot be recorded is not made"),
        ));
        return None;
    }
    let backups = match backup::backup_set(dir, backup::Kind::Kernel, &texts) {
        Ok(b) => b,
        Err(e) => {
            report(Progress::Failed(
                Step::Backup,
                format!("cannot write the backup in {}: {e}", dir.display()),
            ));
            return None;
        }
    };
    report(Progress::Done(
        Step::Backup,
        match how {
            HowRead::Skipped(g) => format!(
                "{} (your rule sets as read at nf_tables generation {g}, which the kernel still holds, with the counters as of now)",
                backups_text(&backups)
            ),
            HowRead::Read(_) => backups_text(&backups),
        },
    ));

    report(Progress::Running(Step::Watchdog));
    let pending = match timeout {
        Some(timeout) => match guard::arm(dir, tools, &backups, &touched, timeout) {
            Ok(p) => {
                let pid = p
                    .watchdog_pid
                    .map_or_else(String::new, |p| format!(" (pid {p})"));
                report(Progress::Done(
                    Step::Watchdog,
                    format!("armed{pid}: it restores the backup unless you confirm"),
                ));
                Some(p)
            }
            Err(e) => {
                report(Progress::Failed(
                    Step::Watchdog,
                    format!("cannot start the watchdog, so nothing was applied: {e}"),
                ));
                return None;
            }
        },
        None => {
            // Without a watchdog of its own, a commit still never runs beside one waiting.
            if let Some(p) = guard::status(dir).filter(Pending::blocks_new_commit) {
                report(Progress::Failed(Step::Watchdog, guard::busy_message(&p)));
                return None;
            }
            if let Some(why) = guard::kernel_busy() {
                report(Progress::Failed(Step::Watchdog, why));
                return None;
            }
            report(Progress::Done(
                Step::Watchdog,
                "none (no confirmation asked): the change stays as applied".into(),
            ));
            None
        }
    };
    // Undo at once after a failure with the kernel touched; the sentence for the step.
    let undo = |why: String| -> String {
        let back = rollback_kernel(
            tools,
            dir,
            &backups,
            &touched,
            guard::Ended::RolledBackAfterFailure,
        )
        .unwrap_or_else(|e| e);
        format!("{why}; {back}")
    };

    report(Progress::Running(Step::Apply));
    if whole {
        for w in files {
            let mut args = vec!["--wait=10"];
            if w.counters {
                args.push("-c");
            }
            if let Err(e) = tools.restore(w.family, &args, &w.text) {
                let said = match &e {
                    crate::source::SourceError::ToolFailed { tool, stderr, .. } => {
                        format!("{tool} said: {}", one_line(stderr))
                    }
                    other => guard::tool_error(other),
                };
                // A restore may have changed the tables before the one it failed in (legacy),
                // or an earlier file: the backups go back whatever happened.
                report(Progress::Failed(
                    Step::Apply,
                    undo(format!(
                        "{}: {} was refused by the kernel ({said})",
                        w.family.label(),
                        w.path.display()
                    )),
                ));
                return None;
            }
        }
        report(Progress::Done(
            Step::Apply,
            format!("loaded {} whole", paths_text(files)),
        ));
    } else {
        let changes = plan::plan(&now, &req.staged, &req.edited, &req.renames, &req.zeroed);
        if let Err(e) = apply::apply_changes(tools, &changes) {
            let msg = e.to_string();
            if e.holds_new_rules() {
                // Some of the change stuck: restore the backup now rather than at the deadline.
                report(Progress::Failed(Step::Apply, undo(msg)));
            } else {
                // Nothing of the change is left in the kernel: the watchdog would only restore
                // what is there.
                if pending.is_some() {
                    let _ = guard::disarm(dir, guard::Ended::RolledBackAfterFailure);
                }
                report(Progress::Failed(Step::Apply, msg));
            }
            return None;
        }
        let tables: Vec<String> = changes
            .iter()
            .map(|c| format!("{} {}", c.family.label(), c.table))
            .collect();
        report(Progress::Done(
            Step::Apply,
            format!("one transaction per table: {}", tables.join(", ")),
        ));
        let _ = audit::log(dir, "commit", &req.diff);
    }

    report(Progress::Running(Step::Verify));
    let verified = if whole {
        verify_files(tools, files, &expected, &now)
    } else {
        apply::read_tables(tools, &changed)
            .map_err(|e| vec![e.to_string()])
            .and_then(|after| verify(&after, &req).map(|()| (String::new(), after)))
    };
    let (changes, after) = match verified {
        Ok(c) => c,
        Err(diffs) => {
            // Not what was staged: roll back now rather than ask the user to confirm it.
            report(Progress::Failed(Step::Verify, undo(diffs.join("; "))));
            return None;
        }
    };
    report(Progress::Done(
        Step::Verify,
        if whole {
            "the kernel holds the files' rules (counters aside)".into()
        } else {
            "the kernel holds exactly the staged chains".into()
        },
    ));
    if whole {
        let mut detail = format!("loaded {}", paths_text(files));
        if let Some(p) = &pending {
            detail.push_str(&format!(
                ", rollback at {} unless confirmed",
                p.deadline_text()
            ));
        }
        detail.push('\n');
        detail.push_str(if changes.is_empty() {
            "(no change to the rules)"
        } else {
            &changes
        });
        let _ = audit::log(dir, "apply", detail.trim_end());
        report(Progress::Changes(changes));
    }
    let committed = Committed {
        chains: touched
            .iter()
            .map(|at| (at.clone(), chain_lines(&after, at)))
            .collect(),
        next_look: None,
    };
    match pending {
        Some(p) => {
            report(Progress::Armed {
                deadline_ms: p.deadline_unix_ms,
            });
            Some((p.id, committed))
        }
        None => {
            report(Progress::Finished(
                "no watchdog: the change stays as applied".into(),
            ));
            None
        }
    }
}

/// The chains a commit changes, for a rollback that puts back only those: the edited and
/// zeroed chains; every chain of a table where a chain is renamed (the references to it
/// change too) or that a whole file replaces.
fn touched_chains(req: &Request, files: &[WholeFile], now: &[Ruleset]) -> Vec<ChainRef> {
    let mut out: BTreeSet<ChainRef> = req.edited.iter().chain(&req.zeroed).cloned().collect();
    let mut whole: BTreeSet<(Family, String)> = files
        .iter()
        .flat_map(|w| w.rules.tables.iter().map(|t| (w.family, t.name.clone())))
        .collect();
    whole.extend(req.renames.iter().map(|(c, _)| (c.family, c.table.clone())));
    for (family, table) in &whole {
        for rs in now
            .iter()
            .chain(&req.staged)
            .filter(|r| r.family == *family)
        {
            for c in rs.table(table).iter().flat_map(|t| &t.chains) {
                out.insert(ChainRef::new(*family, table, &c.name));
            }
        }
    }
    out.into_iter().collect()
}

/// `a.rules and b.rules`.
fn paths_text(files: &[WholeFile]) -> String {
    files
        .iter()
        .map(|w| w.path.display().to_string())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// A tool's complaint on one line, without its `Try --help` advice.
fn one_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Try `"))
        .collect();
    lines.join("; ").trim_end_matches('.').to_string()
}

/// The validate step of a whole-file load: each file as given, `restore --test` and a trial
/// load (`apply::validate_text`); per file, what the trial load read back.
fn validate_files(tools: &Tools, files: &[WholeFile]) -> Result<Vec<Option<Ruleset>>, String> {
    let mut out = Vec::new();
    for w in files {
        let back =
            apply::validate_text(tools, w.family, &w.text, w.counters).map_err(|e| match e {
                apply::ApplyError::Invalid {
                    tool,
                    check,
                    message,
                    ..
                } => format!(
                    "{}: {} was refused by {tool} ({check}): {message}",
                    w.family.label(),
                    w.path.display()
                ),
                other => other.to_string(),
            })?;
        out.push(back);
    }
    Ok(out)
}

/// The kernel's rule set with the file's tables in place of its own: what the kernel holds
/// once a file is restored (a restore leaves the tables it is not given alone).
fn replace_tables(before: &Ruleset, file: &Ruleset) -> Ruleset {
    let mut out = before.clone();
    for t in &file.tables {
        match out.tables.iter_mut().find(|x| x.name == t.name) {
            Some(x) => *x = t.clone(),
            None => out.tables.push(t.clone()),
        }
    }
    out
}

/// The verify step of a whole-file load: each family read back against what the trial load of
/// its file read back (`exact_differences`: every rule's whole text), or, with no trial load,
/// against the file itself (`file_differences`); what changed against `before`, as
/// `guard::diff` lines.
fn verify_files(
    tools: &Tools,
    files: &[WholeFile],
    expected: &[Option<Ruleset>],
    before: &[Ruleset],
) -> Result<(String, Vec<Ruleset>), Vec<String>> {
    let mut changes = String::new();
    let mut read = Vec::new();
    for (i, w) in files.iter().enumerate() {
        let after = tools.read(w.family).map_err(|e| {
            vec![format!(
                "{}: cannot read the rule set back: {}",
                w.family.label(),
                guard::tool_error(&e)
            )]
        })?;
        let wrong = match expected.get(i).and_then(Option::as_ref) {
            Some(exp) => exact_differences(w.family, &w.rules, exp, &after),
            None => file_differences(w.family, &w.rules, &after),
        };
        if !wrong.is_empty() {
            return Err(vec![format!(
                "the kernel does not hold what {} says: {}",
                w.path.display(),
                wrong.join("; ")
            )]);
        }
        if let Some(old) = before.iter().find(|r| r.family == w.family) {
            changes.push_str(&guard::diff(old, &after));
        }
        read.push(after);
    }
    Ok((changes, read))
}

/// Does the kernel now hold, in each table of the file, exactly what the trial load of the
/// file held: the same chains, policies and rules, each rule's whole text as the kernel prints
/// it (counters aside)? The differences, as sentences.
fn exact_differences(
    family: Family,
    file: &Ruleset,
    expected: &Ruleset,
    kernel: &Ruleset,
) -> Vec<String> {
    let label = family.label();
    let mut out = Vec::new();
    let lines = |rs: &Ruleset, table: &str| -> Vec<String> {
        rs.table(table).map_or_else(Vec::new, |t| {
            let mut v: Vec<String> = t
                .chains
                .iter()
                .map(|c| format!(":{} {}", c.name, c.policy.as_deref().unwrap_or("-")))
                .collect();
            v.extend(t.chains.iter().flat_map(|c| {
                c.rules
                    .iter()
                    .map(move |r| format!("-A {} {}", c.name, r.text))
            }));
            v
        })
    };
    for t in &file.tables {
        let (want, got) = (lines(expected, &t.name), lines(kernel, &t.name));
        if want == got {
            continue;
        }
        let missing: Vec<&String> = want.iter().filter(|l| !got.contains(l)).collect();
        let extra: Vec<&String> = got.iter().filter(|l| !want.contains(l)).collect();
        let mut said = format!("{label} table {}:", t.name);
        if let Some(m) = missing.first() {
            said.push_str(&format!(" missing `{m}`"));
        }
        if let Some(x) = extra.first() {
            said.push_str(&format!(" unexpected `{x}`"));
        }
        if missing.is_empty() && extra.is_empty() {
            said.push_str(" the same lines in another order");
        }
        out.push(said);
    }
    out
}

/// Does the kernel now hold the file's rules? Compared per table of the file: the chains, their
/// policies, and per chain the number of rules and each rule's target (the kernel writes a
/// rule's matches in its own canonical form, e.g. `-p tcp -m tcp --dport 22`, so their words
/// may differ from a hand-written file's). Counters are ignored. The differences, as sentences.
fn file_differences(family: Family, file: &Ruleset, kernel: &Ruleset) -> Vec<String> {
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

/// Restore `backups` now and stop the watchdog (if one is armed); a sentence saying what
/// happened, and an audit record either way.
fn rollback_kernel(
    tools: &Tools,
    dir: &Path,
    backups: &[(Family, PathBuf)],
    touched: &[ChainRef],
    why: guard::Ended,
) -> Result<String, String> {
    match guard::undo_commit(tools, &guard::read_backups(backups), touched) {
        Ok(diff) => {
            // Restored: the watchdog has nothing left to do.
            let _ = guard::disarm(dir, why);
            let _ = audit::log(dir, "rollback", &format!("rolled back by nfscope\n{diff}"));
            let emptied: Vec<&str> = diff
                .lines()
                .filter(|l| l.contains("did not exist before the commit"))
                .collect();
            if !touched.is_empty() && !diff.contains("the whole rule sets were restored instead") {
                Ok("rolled back: the chains the commit changed are as they were before it (other chains are left as they are now)".into())
            } else if emptied.is_empty() {
                Ok("rolled back: the kernel holds the rule sets from before the commit".into())
            } else {
                Ok(format!("rolled back, except: {}", emptied.join("; ")))
            }
        }
        Err(e) => {
            let _ = audit::log(dir, "rollback-failed", &e);
            Err(format!(
                "the rollback failed ({e}); {}",
                if guard::status(dir).is_some() {
                    "the watchdog will try again at its deadline"
                } else {
                    "restore the backup with `nfscope rollback`"
                }
            ))
        }
    }
}

/// Restore the pending commit's backups (else the latest) now and stop the watchdog.
fn rollback_pending(tools: &Tools, dir: &Path, why: guard::Ended) -> Result<String, String> {
    let (backups, touched) = match guard::status(dir) {
        Some(p) => (p.backups, p.touched),
        None => (backup::latest(dir), Vec::new()),
    };
    rollback_kernel(tools, dir, &backups, &touched, why)
}

/// The first staged address option (`-s`/`-d`) naming a host that does not resolve, in a
/// sentence: what `iptables-restore` refuses, checked here when the tools cannot run.
fn unresolvable_hosts(staged: &[Ruleset]) -> Option<String> {
    use std::net::ToSocketAddrs;
    for rs in staged {
        for t in &rs.tables {
            for c in &t.chains {
                for r in &c.rules {
                    let Ok(words) = ruleset::words::split(&r.text) else {
                        continue;
                    };
                    for pair in words.windows(2) {
                        let opt = pair[0].text.as_str();
                        if !matches!(opt, "-s" | "--source" | "-d" | "--destination") {
                            continue;
                        }
                        for host in pair[1].text.split(',') {
                            let addr = host.split('/').next().unwrap_or(host);
                            if addr.parse::<std::net::IpAddr>().is_ok() {
                                continue;
                            }
                            if (addr, 0).to_socket_addrs().is_err() {
                                return Some(format!(
                                    "{} {}/{}: the host name {addr:?} in `-A {} {}` does not resolve",
                                    rs.family.label(),
                                    t.name,
                                    c.name,
                                    c.name,
                                    r.text
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

fn read_file(path: &Path, family: Family) -> Result<(String, Ruleset), String> {
    let text = crate::source::bounded::read_text(path, crate::source::bounded::RULES_LIMIT)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let rs = ruleset::parse(&text, family).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((text, rs))
}

fn run_file(
    v4: Option<&Path>,
    v6: Option<&Path>,
    dir: &Path,
    req: &Request,
    report: &mut dyn FnMut(Progress),
) {
    let paths: Vec<(Family, &Path)> = [(Family::V4, v4), (Family::V6, v6)]
        .into_iter()
        .filter_map(|(f, p)| p.map(|p| (f, p)))
        .filter(|(f, _)| req.staged.iter().any(|r| r.family == *f))
        .collect();
    report(Progress::Running(Step::Validate));
    match apply::validate(&Tools::default(), &req.staged) {
        Ok(()) => report(Progress::Done(
            Step::Validate,
            "iptables-restore --test accepts the staged tables".into(),
        )),
        // Without root (or the tools) they cannot test; nfscope's own checks then decide,
        // host names included (the tools would refuse one that does not resolve).
        Err(e) if e.untestable() => {
            if let Some(why) = unresolvable_hosts(&req.staged) {
                report(Progress::Failed(Step::Validate, why));
                return;
            }
            let why = match e {
                apply::ApplyError::Permission { .. } => "it needs root",
                _ => "the iptables tools are not installed",
            };
            report(Progress::Done(
                Step::Validate,
                format!("not checked by iptables-restore --test ({why}); nfscope's parser only"),
            ));
        }
        Err(e) => {
            report(Progress::Failed(Step::Validate, e.to_string()));
            return;
        }
    }

    report(Progress::Running(Step::Concurrency));
    let mut now = Vec::new();
    let mut old_texts = Vec::new();
    for (f, p) in &paths {
        match read_file(p, *f) {
            Ok((text, rs)) => {
                old_texts.push((*f, text));
                now.push(rs);
            }
            Err(e) => {
                report(Progress::Failed(Step::Concurrency, e));
                return;
            }
        }
    }
    if !concurrency_step(req, &now, " in the file", report) {
        return;
    }
    report(Progress::Done(
        Step::Lockout,
        "a file is not the running rule set: nothing to check".into(),
    ));

    report(Progress::Running(Step::Backup));
    match backup::backup_set(dir, backup::Kind::File, &old_texts) {
        Ok(b) => report(Progress::Done(Step::Backup, backups_text(&b))),
        Err(e) => {
            report(Progress::Failed(
                Step::Backup,
                format!("cannot copy the old file to {}: {e}", dir.display()),
            ));
            return;
        }
    }
    report(Progress::Done(
        Step::Watchdog,
        "a file: nothing to roll back automatically".into(),
    ));

    report(Progress::Running(Step::Apply));
    for (f, p) in &paths {
        let Some(rs) = req.staged.iter().find(|r| r.family == *f) else {
            continue;
        };
        // Only the edited chains come from the staging; the rest is the file as it is now.
        let text = save_text(&merge_edited(&now, rs, &req.edited), SaveOptions::default());
        if let Err(e) = backup::replace_file(p, &text) {
            report(Progress::Failed(
                Step::Apply,
                format!("cannot write {}: {e}", p.display()),
            ));
            return;
        }
    }
    report(Progress::Done(
        Step::Apply,
        paths
            .iter()
            .map(|(_, p)| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    ));
    let _ = audit::log(dir, "commit", &req.diff);

    report(Progress::Running(Step::Verify));
    let mut after = Vec::new();
    for (f, p) in &paths {
        match read_file(p, *f) {
            Ok((_, rs)) => after.push(rs),
            Err(e) => {
                report(Progress::Failed(Step::Verify, e));
                return;
            }
        }
    }
    match verify(&after, req) {
        Ok(()) => report(Progress::Done(
            Step::Verify,
            "the file holds exactly the staged chains".into(),
        )),
        Err(d) => {
            report(Progress::Failed(Step::Verify, d.join("; ")));
            return;
        }
    }
    report(Progress::Finished(
        "written; the old file is in the backup".into(),
    ));
}

/// `staged` for the chains the user edited, `now` (the file or the world as re-read) for
/// everything else: what a commit leaves behind when others changed other chains meanwhile.
fn merge_edited(now: &[Ruleset], staged: &Ruleset, edited: &BTreeSet<ChainRef>) -> Ruleset {
    let Some(cur) = now.iter().find(|r| r.family == staged.family) else {
        return staged.clone();
    };
    let mut out = staged.clone();
    for table in &mut out.tables {
        let Some(cur_t) = cur.table(&table.name) else {
            continue;
        };
        for chain in &mut table.chains {
            let key = ChainRef::new(staged.family, &table.name, &chain.name);
            if edited.contains(&key) {
                continue;
            }
            if let Some(c) = cur_t.chain(&chain.name) {
                *chain = c.clone();
            }
        }
    }
    out
}

/// A rule's meaning, for comparing what was typed with what the kernel prints back: iptables
/// rewrites `-p tcp --dport 22` as `-p tcp -m tcp --dport 22`, `-s 192.0.2.1` as
/// `192.0.2.1/32`, and puts the basic options in its own order.
fn meaning(text: &str, family: Family) -> Option<String> {
    let rule = crate::ruleset::Rule::from_text(text, None).ok()?;
    let s = &rule.spec;
    let full = match family {
        Family::V4 => 32,
        Family::V6 => 128,
    };
    let addr = |v: &Option<crate::ruleset::Negatable>| {
        v.as_ref().map(|n| {
            let a = n.value.to_ascii_lowercase().to_string();
            let a = if a.contains('/') {
                a
            } else {
                format!("{a}/{full}")
            };
            format!("{}{a}", if n.negated { "!" } else { "" })
        })
    };
    let plain = |v: &Option<crate::ruleset::Negatable>| {
        v.as_ref().map(|n| {
            format!(
                "{}{}",
                if n.negated { "!" } else { "" },
                n.value.to_ascii_lowercase()
            )
        })
    };
    let mut matches: Vec<String> = s
        .matches
        .iter()
        .map(|m| {
            let opts: Vec<String> = m.options.iter().map(|o| o.to_args()).collect();
            format!("{} {}", m.name.to_ascii_lowercase(), opts.join(" "))
        })
        .collect();
    matches.sort();
    Some(format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{matches:?}|{:?}|{:?}",
        plain(&s.protocol),
        addr(&s.source),
        addr(&s.destination),
        plain(&s.in_interface),
        plain(&s.out_interface),
        s.fragment.map(|f| f.negated),
        s.target.as_ref().map(|t| {
            let opts: Vec<String> = t.options.iter().map(|o| o.to_args()).collect();
            (format!("{:?}", t.kind), t.name.to_string(), opts)
        }),
        s.extra,
    ))
}

/// `plan::verify` compares the text; when it fails, this says whether the difference is only
/// in how the kernel spells the same rules (then the commit did what was staged).
fn same_meaning(after: &[Ruleset], staged: &[Ruleset], edited: &BTreeSet<ChainRef>) -> bool {
    let chain = |sets: &[Ruleset], at: &ChainRef| {
        sets.iter()
            .find(|r| r.family == at.family)
            .and_then(|r| r.table(&at.table))
            .and_then(|t| t.chain(&at.chain))
            .cloned()
    };
    edited
        .iter()
        .all(|at| match (chain(after, at), chain(staged, at)) {
            (None, None) => true,
            (Some(a), Some(s)) => {
                a.policy == s.policy
                    && a.rules.len() == s.rules.len()
                    && a.rules.iter().zip(&s.rules).all(|(x, y)| {
                        x.text == y.text
                            || meaning(&x.text, at.family)
                                .is_some_and(|m| Some(m) == meaning(&y.text, at.family))
                    })
            }
            _ => false,
        })
}

/// The verify step: the kernel (or file, or world) as read back against the staging.
fn verify(after: &[Ruleset], req: &Request) -> Result<(), Vec<String>> {
    match plan::verify(after, &req.staged, &req.edited) {
        Ok(()) => Ok(()),
        Err(_) if same_meaning(after, &req.staged, &req.edited) => Ok(()),
        Err(d) => Err(d),
    }
}

/// Counters for the rules of `next` from `cur` where the same rule (same table, chain and
/// text, counting duplicates in order) is still there; new rules start at zero.
fn keep_counters(cur: &Ruleset, next: &mut Ruleset) {
    for table in &mut next.tables {
        let Some(ct) = cur.table(&table.name) else {
            continue;
        };
        for chain in &mut table.chains {
            let old = ct.chain(&chain.name);
            let mut used = vec![false; old.map_or(0, |c| c.rules.len())];
            for rule in &mut chain.rules {
                let found = old.and_then(|c| {
                    c.rules
                        .iter()
                        .enumerate()
                        .find(|(i, r)| !used[*i] && r.text == rule.text)
                });
                rule.counters = Some(match found {
                    Some((i, r)) => {
                        used[i] = true;
                        r.counters.unwrap_or_default()
                    }
                    None => Counters::default(),
                });
            }
            if let Some(c) = old {
                chain.counters = c.counters;
            }
        }
    }
}

fn run_demo(
    world: &SharedDemo,
    before: &std::sync::Mutex<Option<Vec<Ruleset>>>,
    timeout: Duration,
    req: &Request,
    report: &mut dyn FnMut(Progress),
) {
    report(Progress::Running(Step::Validate));
    report(Progress::Done(
        Step::Validate,
        "the demo has no iptables-restore: nfscope's parser only".into(),
    ));
    report(Progress::Running(Step::Concurrency));
    let now = match world.lock() {
        Ok(w) => w.rulesets(),
        Err(_) => {
            report(Progress::Failed(
                Step::Concurrency,
                "the demo world is gone".into(),
            ));
            return;
        }
    };
    if !concurrency_step(req, &now, "", report) {
        return;
    }
    if !lockout_step(req, &now, None, report) {
        return;
    }
    if let Ok(mut b) = before.lock() {
        *b = Some(now.clone());
    }
    report(Progress::Done(
        Step::Backup,
        "the demo's rule sets, kept in memory".into(),
    ));
    report(Progress::Done(
        Step::Watchdog,
        "the demo's own countdown (no process outlives it)".into(),
    ));
    report(Progress::Running(Step::Apply));
    let after = match world.lock() {
        Ok(mut w) => {
            for staged in &req.staged {
                let Some(cur) = now.iter().find(|r| r.family == staged.family) else {
                    continue;
                };
                let mut next = merge_edited(&now, staged, &req.edited);
                keep_counters(cur, &mut next);
                w.set_ruleset(next);
            }
            w.rulesets()
        }
        Err(_) => {
            report(Progress::Failed(
                Step::Apply,
                "the demo world is gone".into(),
            ));
            return;
        }
    };
    report(Progress::Done(Step::Apply, "the demo world changed".into()));
    report(Progress::Running(Step::Verify));
    match verify(&after, req) {
        Ok(()) => report(Progress::Done(
            Step::Verify,
            "the demo holds exactly the staged chains".into(),
        )),
        Err(d) => {
            report(Progress::Failed(Step::Verify, d.join("; ")));
            return;
        }
    }
    report(Progress::Armed {
        deadline_ms: unix_ms(SystemTime::now() + timeout),
    });
}

/// Keep the change: end the commit-confirmed window.
pub fn confirm(target: &Target) -> Progress {
    match target {
        Target::Kernel { dir, .. } => match guard::confirm(dir) {
            Ok(p) => {
                let _ = audit::log(dir, "confirm", &confirm_detail(&p));
                Progress::Confirmed("confirmed: the watchdog is stopped".into())
            }
            Err(e) => Progress::ActionFailed(e),
        },
        Target::File { .. } => Progress::Confirmed("nothing to confirm".into()),
        Target::Demo { before, .. } => {
            if let Ok(mut b) = before.lock() {
                *b = None;
            }
            Progress::Confirmed("confirmed".into())
        }
    }
}

/// What the audit log says of a confirmation: whose commit was kept.
pub fn confirm_detail(p: &Pending) -> String {
    format!(
        "kept the commit of {} by {}{}",
        p.id,
        p.started_by,
        p.ssh_client
            .as_deref()
            .map_or_else(String::new, |c| format!(" from {c}"))
    )
}

/// Give the user `by` more before the rollback.
pub fn extend(target: &Target, by: Duration, deadline_ms: u64) -> Progress {
    let by_ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
    match target {
        Target::Kernel { dir, .. } => match guard::extend(dir, by) {
            Ok(p) => Progress::Extended {
                deadline_ms: p.deadline_unix_ms,
            },
            Err(e) => Progress::ActionFailed(e),
        },
        _ => Progress::Extended {
            deadline_ms: deadline_ms.saturating_add(by_ms),
        },
    }
}

/// Roll back now (`n` in the countdown, or the demo's deadline).
pub fn rollback(target: &Target) -> Progress {
    match target {
        Target::Kernel { tools, dir, .. } => {
            match rollback_pending(tools, dir, guard::Ended::RolledBackByUser) {
                Ok(msg) => Progress::RolledBack(msg),
                Err(msg) => Progress::ActionFailed(msg),
            }
        }
        Target::File { .. } => Progress::ActionFailed("a file commit has no rollback".into()),
        Target::Demo { world, before, .. } => {
            let saved = before.lock().ok().and_then(|mut b| b.take());
            match (saved, world.lock()) {
                (Some(rs), Ok(mut w)) => {
                    let cur = w.rulesets();
                    for mut r in rs {
                        if let Some(c) = cur.iter().find(|c| c.family == r.family) {
                            keep_counters(c, &mut r);
                        }
                        w.set_ruleset(r);
                    }
                    Progress::RolledBack(
                        "rolled back: the demo holds its rule sets from before the commit".into(),
                    )
                }
                _ => Progress::ActionFailed("nothing to roll back".into()),
            }
        }
    }
}

/// During the countdown, once a second: whether the commit was confirmed, extended or rolled
/// back from elsewhere (`nfscope confirm` from another SSH connection). `None`: as it was.
pub fn check(target: &Target, deadline_ms: u64) -> Option<Progress> {
    let Target::Kernel { dir, armed, .. } = target else {
        return None;
    };
    let id = armed.lock().ok().and_then(|a| a.clone())?;
    match guard::status(dir) {
        Some(p) if p.id == id && p.rollback_failed.is_none() => {
            if let Some(stopped) = p.stopped_watchdog() {
                return Some(Progress::ActionFailed(stopped));
            }
            // It looks at the kernel only now and then (Committed::next_look).
            if let Some(said) = others_changed(target) {
                return Some(Progress::ActionFailed(said));
            }
            (p.deadline_unix_ms != deadline_ms).then_some(Progress::Extended {
                deadline_ms: p.deadline_unix_ms,
            })
        }
        _ => Some(ended_progress(guard::outcome(dir, &id)?)),
    }
}

/// How a commit that is no longer waiting ended, as the countdown reports it.
fn ended_progress(ended: guard::Ended) -> Progress {
    match ended {
        guard::Ended::Confirmed => Progress::Confirmed(
            "confirmed from elsewhere (nfscope confirm): the change stays".into(),
        ),
        guard::Ended::RollbackFailed { error } => {
            Progress::RollbackFailed(rollback_failed_text(&error))
        }
        other => Progress::RolledBack(format!(
            "{other}: the rule sets from before the commit are back"
        )),
    }
}

/// The sentence for a failed rollback: what the kernel may hold, and what to do.
pub fn rollback_failed_text(error: &str) -> String {
    format!(
        "the rollback FAILED ({error}): the kernel may still hold the committed change. It stays pending: look at the rule set, fix the cause, and run `nfscope rollback` to try again (or `nfscope confirm` to keep it)"
    )
}

/// The deadline passed without a confirmation: for the kernel, wait for the watchdog to finish
/// its rollback (a few seconds at most) and say so; for the demo, roll back here.
pub fn expired(target: &Target) -> Progress {
    match target {
        Target::Kernel { dir, armed, .. } => {
            let id = armed.lock().ok().and_then(|a| a.clone());
            let until = std::time::Instant::now() + Duration::from_secs(10);
            while guard::status(dir).is_some_and(|p| {
                p.rollback_failed.is_none() && id.as_ref().is_none_or(|id| *id == p.id)
            }) {
                if std::time::Instant::now() > until {
                    return Progress::ActionFailed(
                        "the deadline passed but the watchdog has not finished; check with `nfscope rollback`".into(),
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            match id.and_then(|id| guard::outcome(dir, &id)) {
                Some(guard::Ended::RolledBackByWatchdog) => Progress::RolledBack(
                    "not confirmed in time: the watchdog restored the rule sets from before the commit"
                        .into(),
                ),
                Some(ended) => ended_progress(ended),
                None => Progress::ActionFailed(
                    "the watchdog ended without saying how: look at the rule set, and run `nfscope rollback` if it still holds the change".into(),
                ),
            }
        }
        _ => rollback(target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(text: &str) -> Ruleset {
        ruleset::parse(text, Family::V4).expect("parses")
    }

    #[test]
    fn a_host_name_that_does_not_resolve_is_named() {
        let staged = [rs(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8,localhost -j ACCEPT\n-A INPUT -d nosuchhost.invalid/32 -j DROP\nCOMMIT\n",
        )];
        let why = unresolvable_hosts(&staged).expect("refused");
        assert!(why.contains("\"nosuchhost.invalid\""), "{why}");
        assert!(
            why.contains("-A INPUT -d nosuchhost.invalid/32 -j DROP"),
            "{why}"
        );
        let fine = [rs(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.0/24 -d ::1 -j ACCEPT\nCOMMIT\n",
        )];
        assert_eq!(unresolvable_hosts(&fine), None);
    }

    #[test]
    fn the_kernels_spelling_of_a_rule_means_the_same() {
        let m = |t| meaning(t, Family::V4);
        assert_eq!(
            m("-p tcp --dport 8080 -j ACCEPT"),
            m("-p tcp -m tcp --dport 8080 -j ACCEPT")
        );
        assert_eq!(
            m("-p tcp -s 192.0.2.1 -j DROP"),
            m("-s 192.0.2.1/32 -p tcp -j DROP")
        );
        assert_ne!(
            m("-p tcp --dport 80 -j ACCEPT"),
            m("-p tcp --dport 81 -j ACCEPT")
        );
        assert_ne!(m("-s 192.0.2.1 -j DROP"), m("! -s 192.0.2.1 -j DROP"));
    }

    #[test]
    fn counters_stay_with_their_rules() {
        let cur = rs(
            "*filter\n:INPUT ACCEPT [5:50]\n[1:10] -A INPUT -j A\n[2:20] -A INPUT -j B\nCOMMIT\n",
        );
        let mut next = rs("*filter\n:INPUT DROP [0:0]\n-A INPUT -j B\n-A INPUT -j C\nCOMMIT\n");
        keep_counters(&cur, &mut next);
        let c = &next.tables[0].chains[0];
        assert_eq!(c.rules[0].counters, Some(Counters::new(2, 20)));
        assert_eq!(c.rules[1].counters, Some(Counters::default()));
        assert_eq!(c.counters, Counters::new(5, 50));
    }

    #[test]
    fn unedited_chains_come_from_now() {
        let now = vec![rs(
            "*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -j X\n-A OUTPUT -j F2B\nCOMMIT\n",
        )];
        let staged =
            rs("*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -j Y\nCOMMIT\n");
        let edited = BTreeSet::from([ChainRef::new(Family::V4, "filter", "INPUT")]);
        let m = merge_edited(&now, &staged, &edited);
        let t = &m.tables[0];
        assert_eq!(t.chain("INPUT").unwrap().rules[0].text, "-j Y");
        assert_eq!(t.chain("OUTPUT").unwrap().rules[0].text, "-j F2B");
    }

    #[test]
    fn verify_ignores_counters_and_canonical_forms() {
        let file = rs("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n");
        let kernel = rs(
            "*filter\n:INPUT DROP [5:6]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n[1:2] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n",
        );
        assert!(file_differences(Family::V4, &file, &kernel).is_empty());
        let other = rs("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
        let wrong = file_differences(Family::V4, &file, &other);
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
            file_differences(Family::V4, &nat, &kernel),
            vec!["IPv4 table nat is not in the kernel".to_string()]
        );
    }

    #[test]
    fn replace_tables_replaces_only_the_files_tables() {
        let kernel =
            rs("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
        let file = rs("*filter\n:INPUT DROP [0:0]\nCOMMIT\n*raw\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n");
        let m = replace_tables(&kernel, &file);
        let names: Vec<&str> = m.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["nat", "filter", "raw"]);
        assert_eq!(
            m.table("filter").unwrap().chains[0].policy.as_deref(),
            Some("DROP")
        );
    }

    #[test]
    fn a_failed_rollback_at_the_deadline_is_reported_as_failed() {
        let dir = backup::test_dir("expired-failed");
        backup::ensure_dir(&dir).expect("dir");
        let p = Pending {
            id: "c1".into(),
            deadline_unix_ms: guard::now_ms().saturating_sub(1000),
            deadline_boot_ms: None,
            backups: vec![(Family::V4, dir.join("x.v4.rules"))],
            backend: None,
            watchdog_pid: None,
            started_by: "root".into(),
            ssh_client: None,
            rollback_failed: None,
            touched: Vec::new(),
        };
        guard::keep_failed(&dir, &p, "the backup x.v4.rules is damaged").expect("kept");
        let target = Target::Kernel {
            tools: Tools::default(),
            dir: dir.clone(),
            timeout: Some(Duration::from_secs(30)),
            armed: std::sync::Arc::new(std::sync::Mutex::new(Some("c1".into()))),
            committed: Default::default(),
        };
        match expired(&target) {
            Progress::RollbackFailed(s) => assert!(s.contains("damaged"), "{s}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check(&target, p.deadline_unix_ms),
            Some(Progress::RollbackFailed(_))
        ));
        // Still pending, for `nfscope rollback`.
        assert!(guard::status(&dir).is_some_and(|p| p.rollback_failed.is_some()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn verify_compares_whole_rules_not_targets_and_counts() {
        let file = rs("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp --dport 9 -j DROP\nCOMMIT\n");
        let trial = rs(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p udp -m udp --dport 9 -j DROP\nCOMMIT\n",
        );
        // What a line cut at a NUL would have loaded: the same target, the same count.
        let cut = rs(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n[3:4] -A INPUT -m comment --comment x -j DROP\nCOMMIT\n",
        );
        assert!(file_differences(Family::V4, &file, &cut).is_empty());
        let said = exact_differences(Family::V4, &file, &trial, &cut);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("missing `-A INPUT -p udp -m udp --dport 9 -j DROP`"));
        // Counters aside, the same rules verify.
        let same = rs(
            "*filter\n:INPUT ACCEPT [7:8]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n[5:6] -A INPUT -p udp -m udp --dport 9 -j DROP\nCOMMIT\n",
        );
        assert!(exact_differences(Family::V4, &file, &trial, &same).is_empty());
    }

    #[test]
    fn a_nul_byte_is_refused_where_rules_are_read() {
        let e = ruleset::parse(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment x\0 -p udp --dport 9 -j DROP\nCOMMIT\n",
            Family::V4,
        )
        .expect_err("refused");
        assert_eq!(e.line, 3);
        assert!(e.to_string().contains("NUL"), "{e}");
        assert!(ruleset::Rule::from_text("-m comment --comment x\0 -j DROP", None).is_err());
    }
}
