//! Edit mode in the App: the staging (operations on a base snapshot), the editors that make
//! them, the questions before destructive ones, the Changes screen's cursor and diff, and the
//! commit's checklist and countdown. Pure like the rest of `update`: validation, the state
//! file and the commit itself go out as `Cmd`s and come back as `Msg`s.

use super::app::{App, Popup, Screen, Update};
use super::editor::{Editor, Known, LOCKOUT_WORD, Purpose};
use super::event::{Cmd, Saved};
use super::keymap::Action;
use crate::edit::ChainRef;
use crate::edit::commit::{Progress, Request, Step};
use crate::edit::diff::{self, DiffKind};
use crate::edit::stage::{Op, Staging};
use crate::ruleset::rates::ChainKey;
use crate::ruleset::{Chain, Family, Rule, Ruleset};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How much `+` adds to the countdown.
pub const EXTEND_BY: Duration = Duration::from_secs(30);

/// A row of the Rules screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowRef {
    /// Rule `i` (0-based) of the chain as shown.
    Rule(usize),
    /// Rule `j` of the base chain, which the staging deletes.
    Deleted(usize),
}

/// The rows of a chain on the Rules screen, in order.
#[derive(Debug, Clone, Default)]
pub struct ChainRows {
    pub rows: Vec<RowRef>,
    /// Per rule of the shown chain: its index in the base chain when the staging left it as it
    /// was, `None` when it is new or changed.
    pub base_of: Vec<Option<usize>>,
}

/// A question before a destructive or far-reaching action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    DeleteRule {
        at: ChainRef,
        pos: usize,
        text: String,
    },
    Flush {
        at: ChainRef,
        rules: usize,
    },
    /// `refs`: the rules elsewhere that jump or go to it, as `-A CHAIN ...` lines (yes removes
    /// them too).
    DeleteChain {
        at: ChainRef,
        refs: Vec<String>,
    },
    Discard {
        ops: usize,
    },
    Commit {
        ops: usize,
        target: String,
    },
    /// A saved staging from an earlier run; `moved`: chains that changed in the kernel since.
    /// Esc postpones (the saved work stays); discarding it is `d`, which asks again.
    Resume {
        ops: usize,
        saved_at: u64,
        moved: Vec<String>,
    },
    /// Discard the saved staging of an earlier run for good?
    DiscardSaved {
        ops: usize,
    },
    /// Zero these counters now (no commit: counters are not configuration)? `s` stages the
    /// chain's zeroing with the other changes instead.
    Zero(crate::edit::zero::ZeroRequest),
    /// Flip a built-in chain's policy (staged)?
    Policy {
        at: ChainRef,
        from: String,
        to: String,
    },
    /// Quit while staged work would be lost (the demo keeps nothing)?
    QuitLosing {
        ops: usize,
    },
}

/// One line of the Changes screen's diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffRow {
    pub kind: DiffKind,
    pub text: String,
}

/// Where a step of the commit stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    Waiting,
    Running,
    Done(String),
    Failed(String),
    /// Stopped until the user answers (the lockout confirmation).
    NeedsYou(String),
}

/// The commit's checklist.
#[derive(Debug, Clone)]
pub struct CommitView {
    pub steps: Vec<(Step, StepState)>,
    /// The lockout check's findings, each a sentence with the deciding rule.
    pub findings: Vec<String>,
    /// What changed in the kernel under the user's feet.
    pub conflicts: Vec<String>,
    /// The same operations on the kernel's new rule set, when they still apply.
    pub rebase: Option<Box<Staging>>,
    /// Still running (a step in flight).
    pub running: bool,
    /// How it ended, and whether that is bad news.
    pub outcome: Option<(String, bool)>,
    pub scroll: super::scroll::Scroll,
    /// The request, for the second run after the lockout confirmation.
    pub request: Box<Request>,
}

impl CommitView {
    fn new(request: Box<Request>) -> Self {
        CommitView {
            steps: Step::ALL.iter().map(|s| (*s, StepState::Waiting)).collect(),
            findings: Vec::new(),
            conflicts: Vec::new(),
            rebase: None,
            running: true,
            outcome: None,
            scroll: super::scroll::Scroll::TOP,
            request,
        }
    }

    fn set(&mut self, step: Step, state: StepState) {
        if let Some(s) = self.steps.iter_mut().find(|(s, _)| *s == step) {
            s.1 = state;
        }
    }
}

/// Edit mode's state in the App.
pub struct EditScreen {
    /// `None` until the first change; the base is the snapshot of that moment.
    pub staging: Option<Staging>,
    /// A saved staging waiting for the first snapshot, then for the answer, and when it was
    /// saved (Unix seconds).
    pub resume: Option<Staging>,
    resume_saved_at: u64,
    /// The resume question was put off (Esc): it comes back when a change is staged.
    pub resume_postponed: bool,
    /// Why the staged view is stale: resumed on a kernel that moved, and the operations could
    /// not all be re-applied on its current rules. The Rules screen says so.
    pub stale: Option<String>,
    /// The Changes screen: the selected operation and the diff's scroll.
    pub cursor: usize,
    pub diff_scroll: super::scroll::Scroll,
    /// Columns the diff is scrolled sideways (`<` `>`), or whether its lines wrap (`w`).
    pub diff_hscroll: usize,
    pub diff_wrap: bool,
    /// The diff of the staging, per table, kept up to date with it.
    pub diff: Vec<(String, Vec<DiffRow>)>,
    /// Chains the staging edited (result names), and renames, kept up to date with it.
    pub edited: BTreeSet<ChainRef>,
    pub renames: Vec<(ChainRef, String)>,
    /// A line about the last action, and whether it is an error.
    pub message: Option<(String, bool)>,
    /// Every message said so far (the last 200), for the messages popup (`!`): a footer may
    /// cut a long one.
    pub log: Vec<(String, bool)>,
    pub known: Known,
    /// Run `iptables-restore --test` before staging a rule (not in the demo).
    pub validate: bool,
    /// Save to the state file on every change (not in the demo).
    pub persist: bool,
    /// `kernel`, `file:PATH` or `demo`: where the staged work applies.
    pub origin: String,
    pub commit: Option<CommitView>,
    /// The rollback deadline while a commit waits for confirmation (Unix ms).
    pub countdown: Option<u64>,
    /// The seconds left when the countdown was last looked at (its redraw and check are once
    /// a second, whatever else moved the clock meanwhile).
    shown_left: Option<u64>,
    expired_sent: bool,
    /// The rule waiting for `iptables-restore --test`: request id and operation.
    pending: Option<(u64, Op)>,
    next_id: u64,
    /// Changes with every change of the staging (the Trace screen's tracers are keyed by it).
    pub version: u64,
}

impl Default for EditScreen {
    fn default() -> Self {
        EditScreen {
            staging: None,
            resume: None,
            resume_saved_at: 0,
            resume_postponed: false,
            stale: None,
            cursor: 0,
            diff_scroll: super::scroll::Scroll::TOP,
            diff_hscroll: 0,
            diff_wrap: false,
            diff: Vec::new(),
            edited: BTreeSet::new(),
            renames: Vec::new(),
            message: None,
            log: Vec::new(),
            known: Known::fixed(),
            validate: false,
            persist: false,
            origin: "demo".into(),
            commit: None,
            countdown: None,
            shown_left: None,
            expired_sent: false,
            pending: None,
            next_id: 1,
            version: 0,
        }
    }
}

impl EditScreen {
    /// The staging when it holds operations.
    pub fn active(&self) -> Option<&Staging> {
        self.staging.as_ref().filter(|s| !s.is_empty())
    }

    pub fn count(&self) -> usize {
        self.active().map_or(0, |s| s.ops().len())
    }

    /// Seconds left in the countdown (rounded up), at `now`.
    pub fn seconds_left(&self, now: SystemTime) -> Option<u64> {
        let d = self.countdown?;
        Some(d.saturating_sub(unix_ms(now)).div_ceil(1000))
    }

    pub(crate) fn say(&mut self, text: impl Into<String>, error: bool) {
        // Messages quote rule text and tool output: shown visibly.
        let text = crate::format::visible(&text.into()).into_owned();
        self.log.push((text.clone(), error));
        if self.log.len() > 200 {
            self.log.remove(0);
        }
        self.message = Some((text, error));
    }
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn cref(k: &ChainKey) -> ChainRef {
    ChainRef::new(k.family, &k.table, &k.chain)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

impl App {
    /// The rule set the Rules screen shows for a family: the staged result while changes are
    /// staged, else the snapshot's.
    pub fn shown(&self, f: Family) -> Option<&Ruleset> {
        if let Some(st) = self.edit.active()
            && let Some(r) = st.result_for(f)
        {
            return Some(r);
        }
        self.snapshot.as_ref()?.family(f).ruleset()
    }

    /// Whether a chain (by its shown name) has staged changes.
    pub fn is_edited(&self, key: &ChainKey) -> bool {
        !self.edit.edited.is_empty() && self.edit.edited.contains(&cref(key))
    }

    /// For each rule of the shown chain, whether it is new or changed by the staging (not in
    /// the base chain at that place).
    pub fn staged_marks(&self, key: &ChainKey) -> Vec<bool> {
        self.chain_rows(key)
            .base_of
            .iter()
            .map(Option::is_none)
            .collect()
    }

    /// The base chain a shown chain came from (renames followed), while it is edited.
    pub fn base_chain(&self, key: &ChainKey) -> Option<&Chain> {
        let base_name = self
            .edit
            .renames
            .iter()
            .find(|(b, new)| b.family == key.family && b.table == key.table && *new == key.chain)
            .map_or(key.chain.as_str(), |(b, _)| b.chain.as_str());
        self.edit
            .staging
            .as_ref()
            .and_then(|s| s.base_for(key.family))
            .and_then(|r| r.table(&key.table))
            .and_then(|t| t.chain(base_name))
    }

    /// The rows of the Rules screen for a chain: its rules as shown, and while the chain is
    /// edited, the rules the staging deletes, where they stood (struck through, marked `-`).
    pub fn chain_rows(&self, key: &ChainKey) -> ChainRows {
        let Some(chain) = self.chain_by_key(key) else {
            return ChainRows::default();
        };
        let n = chain.rules.len();
        let same = || ChainRows {
            rows: (0..n).map(RowRef::Rule).collect(),
            base_of: (0..n).map(Some).collect(),
        };
        if !self.is_edited(key) {
            return same();
        }
        let Some(base) = self.base_chain(key) else {
            return ChainRows {
                rows: (0..n).map(RowRef::Rule).collect(),
                base_of: vec![None; n],
            };
        };
        let old: Vec<&str> = base.rules.iter().map(|r| r.text.as_str()).collect();
        let new: Vec<&str> = chain.rules.iter().map(|r| r.text.as_str()).collect();
        let mut out = ChainRows {
            rows: Vec::with_capacity(n),
            base_of: vec![None; n],
        };
        for op in similar::capture_diff_slices(similar::Algorithm::Myers, &old, &new) {
            let (o, n) = (op.old_range(), op.new_range());
            if let similar::DiffOp::Equal { .. } = op {
                for (b, r) in o.zip(n) {
                    out.base_of[r] = Some(b);
                    out.rows.push(RowRef::Rule(r));
                }
            } else {
                out.rows.extend(o.map(RowRef::Deleted));
                out.rows.extend(n.map(RowRef::Rule));
            }
        }
        out
    }

    /// The rule a row stands for: a rule of the shown chain, or a base rule staged for deletion.
    pub fn row_rule(&self, key: &ChainKey, row: RowRef) -> Option<&Rule> {
        match row {
            RowRef::Rule(i) => self.chain_by_key(key)?.rules.get(i),
            RowRef::Deleted(j) => self.base_chain(key)?.rules.get(j),
        }
    }

    /// Where base rule `j` of an edited chain is in the kernel's chain now (matched by its
    /// text and which duplicate it is, as staged operations are), for its live counters and
    /// rate. The kernel's chain key comes with it.
    pub fn live_rule(&self, key: &ChainKey, j: usize) -> Option<(ChainKey, usize)> {
        let base = self.base_chain(key)?;
        let text = &base.rules.get(j)?.text;
        let nth = base.rules[..j].iter().filter(|r| r.text == *text).count();
        let kkey = ChainKey {
            family: key.family,
            table: key.table.clone(),
            chain: base.name.clone(),
        };
        let now = self
            .snapshot
            .as_ref()?
            .family(key.family)
            .ruleset()?
            .table(&key.table)?
            .chain(&base.name)?;
        let k = now
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.text == *text)
            .nth(nth)?
            .0;
        Some((kkey, k))
    }

    /// The counters of a row as the kernel has them now, and its rate statistics: for an
    /// unchanged rule of an edited chain, and a rule staged for deletion (still in the kernel
    /// until the commit), the kernel's live rule; for a new or changed rule, none.
    pub fn live_row<'a>(
        &'a self,
        key: &ChainKey,
        rows: &ChainRows,
        row: RowRef,
    ) -> Option<(&'a Rule, Option<&'a crate::ruleset::rates::RuleStat>)> {
        if !self.is_edited(key) {
            let RowRef::Rule(i) = row else {
                return None;
            };
            let rule = self.chain_by_key(key)?.rules.get(i)?;
            return Some((rule, self.rates.chain(key).and_then(|s| s.rules.get(i))));
        }
        let j = match row {
            RowRef::Rule(i) => (*rows.base_of.get(i)?)?,
            RowRef::Deleted(j) => j,
        };
        let (kkey, k) = self.live_rule(key, j)?;
        let rule = self
            .snapshot
            .as_ref()?
            .family(key.family)
            .ruleset()?
            .table(&kkey.table)?
            .chain(&kkey.chain)?
            .rules
            .get(k)?;
        Some((rule, self.rates.chain(&kkey).and_then(|s| s.rules.get(k))))
    }

    /// What is staged on a chain, every kind counted: "2 added, 1 deleted, policy DROP".
    pub fn staged_summary(&self, key: &ChainKey) -> Option<String> {
        let st = self.edit.active()?;
        if !self.is_edited(key) {
            return None;
        }
        let base_name = self
            .base_chain(key)
            .map_or(key.chain.clone(), |c| c.name.clone());
        let mut counts: Vec<(&'static str, usize)> = Vec::new();
        let mut bump = |what: &'static str| match counts.iter_mut().find(|(w, _)| *w == what) {
            Some((_, n)) => *n += 1,
            None => counts.push((what, 1)),
        };
        let mut policy = None;
        let mut extra: Vec<String> = Vec::new();
        for op in st.ops() {
            let at = op.at();
            if at.family != key.family
                || at.table != key.table
                || (at.chain != key.chain && at.chain != base_name)
            {
                continue;
            }
            match op {
                Op::Append { .. } | Op::Insert { .. } => bump("added"),
                Op::Replace { .. } => bump("replaced"),
                Op::Delete { .. } => bump("deleted"),
                Op::Move { .. } => bump("moved"),
                Op::NewChain { .. } => extra.push("new chain".into()),
                Op::RenameChain { to, .. } => extra.push(format!("renamed to {to}")),
                Op::DeleteChain { .. } => extra.push("chain deleted".into()),
                Op::SetPolicy { policy: p, .. } => policy = Some(format!("policy {p}")),
                Op::Flush { .. } => extra.push("flushed".into()),
                Op::Zero { .. } => extra.push("counters zeroed".into()),
            }
        }
        let mut parts: Vec<String> = extra;
        parts.extend(counts.iter().map(|(w, n)| format!("{n} {w}")));
        parts.extend(policy);
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// Everything that follows a change of the staging: the tree, the rows, the diff, the
    /// state file.
    fn staging_changed(&mut self) -> Vec<Cmd> {
        if self
            .edit
            .staging
            .as_ref()
            .is_some_and(|s| s.is_empty() && !s.can_redo())
        {
            self.edit.staging = None;
        }
        if self.edit.staging.is_none() {
            self.edit.stale = None;
        }
        let (diff, edited, renames) = match self.edit.active() {
            Some(st) => (
                diff::diff(st.base(), st.result())
                    .into_iter()
                    .map(|t| {
                        let title = format!("{} {}", t.family.label(), t.table);
                        let rows = t
                            .lines
                            .into_iter()
                            .map(|l| DiffRow {
                                kind: l.kind,
                                text: l.text,
                            })
                            .collect();
                        (title, rows)
                    })
                    .collect(),
                st.edited(),
                st.renames(),
            ),
            None => (Vec::new(), BTreeSet::new(), Vec::new()),
        };
        self.edit.diff = diff;
        self.edit.edited = edited;
        self.edit.renames = renames;
        self.edit.version += 1;
        // A trace shown was of the rule set before this change: trace it again.
        if self.trace.result.is_some() {
            self.run_trace();
        }
        self.edit.cursor = self.edit.cursor.min(self.edit.count().saturating_sub(1));
        self.rules_changed();
        self.save_cmd()
    }

    fn save_cmd(&self) -> Vec<Cmd> {
        if !self.edit.persist {
            return Vec::new();
        }
        let saved = self.edit.active().map(|st| Saved {
            staging: st.clone(),
            origin: self.edit.origin.clone(),
        });
        vec![Cmd::SaveState(saved)]
    }

    /// The staging to add to: the current one, or a new one on the rule sets shown now.
    fn staging_mut(&mut self) -> Option<&mut Staging> {
        if self.edit.staging.as_ref().is_none_or(Staging::is_empty) {
            let base: Vec<Ruleset> = Family::ALL
                .iter()
                .filter_map(|&f| self.snapshot.as_ref()?.family(f).ruleset().cloned())
                .collect();
            if base.is_empty() {
                return None;
            }
            let read_at = self.snapshot.as_ref().and_then(|s| s.nft_generation);
            self.edit.staging = Some(Staging::new(base).read_at(read_at));
        }
        self.edit.staging.as_mut()
    }

    /// Stage one operation; a refusal is said in the footer.
    fn stage(&mut self, op: Op) -> Vec<Cmd> {
        let Some(st) = self.staging_mut() else {
            self.edit.say("there is no rule set to edit", true);
            return Vec::new();
        };
        match st.push(op.clone()) {
            Ok(()) => {
                self.edit.say(format!("staged: {}", op.describe()), false);
                self.staging_changed()
            }
            Err(e) => {
                self.edit.say(e.to_string(), true);
                self.staging_changed()
            }
        }
    }

    fn chains_of(&self, key: &ChainKey) -> Vec<String> {
        self.shown(key.family)
            .and_then(|r| r.table(&key.table))
            .map(|t| t.chains.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default()
    }

    /// The editor, while its popup is open.
    pub fn editor(&self) -> Option<&Editor> {
        match &self.popup {
            Some(Popup::Editor(e)) => Some(e),
            _ => None,
        }
    }

    fn editor_mut(&mut self) -> Option<&mut Editor> {
        match &mut self.popup {
            Some(Popup::Editor(e)) => Some(e),
            _ => None,
        }
    }

    fn open_editor(&mut self, purpose: Purpose, title: String, text: &str, key: &ChainKey) {
        let chains = self.chains_of(key);
        self.popup = Some(Popup::Editor(Box::new(Editor::new(
            purpose, title, text, chains,
        ))));
    }

    /// The Rules screen's edit keys.
    pub(super) fn on_rules_edit(&mut self, action: Action) -> Vec<Cmd> {
        self.edit.message = None;
        // Native nftables chains are shown, never staged: nothing here may reach them.
        if let Some(n) = &self.rules.native
            && !matches!(action, Action::Undo | Action::Redo)
        {
            self.edit.say(
                format!("{n}: native nftables, read-only in nfscope (use nft)"),
                true,
            );
            return Vec::new();
        }
        // Saved work from an earlier run, put off: decide about it before staging anything new
        // (new work would overwrite the state file that holds it).
        if self.edit.resume.is_some() {
            self.edit.resume_postponed = false;
            self.ask_resume();
            return Vec::new();
        }
        if matches!(action, Action::Undo | Action::Redo) {
            return self.undo_redo(action);
        }
        let Some(key) = self.rules.selected.clone() else {
            self.edit.say("select a chain first", true);
            return Vec::new();
        };
        let Some(chain) = self.chain_by_key(&key).cloned() else {
            return Vec::new();
        };
        let at = cref(&key);
        let sel = self.selected_rule().map(|(i, r)| (i + 1, r.text.clone()));
        let need_rule = |app: &mut App| {
            let why = match app.rules.visible.get(app.rules.cursor) {
                Some(RowRef::Deleted(j)) => format!(
                    "{at}: rule {} is staged for deletion (u undoes it; the Changes screen unstages it)",
                    j + 1
                ),
                _ => format!("{at}: select a rule first (the chain has no rules)"),
            };
            app.edit.say(why, true);
        };
        match action {
            Action::AddRule => {
                let title = format!("{at}: append a rule (after rule {})", chain.rules.len());
                self.open_editor(Purpose::Append, title, "", &key);
            }
            Action::InsertRule => {
                let pos = sel.as_ref().map_or(1, |(p, _)| *p);
                let title = format!("{at}: insert a rule at position {pos}");
                self.open_editor(Purpose::Insert { pos }, title, "", &key);
            }
            Action::EditRule => match sel {
                Some((pos, text)) => {
                    let title = format!("{at}: replace rule {pos}");
                    self.open_editor(Purpose::Replace { pos }, title, &text, &key);
                }
                None => need_rule(self),
            },
            Action::DeleteRule => match sel {
                Some((pos, text)) => {
                    self.popup = Some(Popup::Ask(Box::new(Ask::DeleteRule { at, pos, text })));
                }
                None => need_rule(self),
            },
            Action::MoveRuleUp | Action::MoveRuleDown => {
                let Some((pos, _)) = sel else {
                    need_rule(self);
                    return Vec::new();
                };
                let up = action == Action::MoveRuleUp;
                let to = if up { pos - 1 } else { pos + 1 };
                if to == 0 || to > chain.rules.len() {
                    let end = if up { "first" } else { "last" };
                    self.edit
                        .say(format!("rule {pos} is the {end} already"), true);
                    return Vec::new();
                }
                let cmds = self.stage(Op::Move {
                    id: None,
                    above: None,
                    at,
                    from: pos,
                    to,
                });
                self.follow_rule(to - 1);
                return cmds;
            }
            Action::NewChain => {
                let title = format!(
                    "{} {}: name of the new chain",
                    key.family.label(),
                    key.table
                );
                self.open_editor(Purpose::NewChain, title, "", &key);
            }
            Action::RenameChain => {
                if chain.is_builtin() {
                    self.edit.say(
                        format!("{at} is a built-in chain: it cannot be renamed"),
                        true,
                    );
                } else {
                    let title = format!("{at}: rename (references follow)");
                    self.open_editor(Purpose::RenameChain, title, &key.chain, &key);
                }
            }
            Action::DeleteChain => {
                if chain.is_builtin() {
                    self.edit.say(
                        format!("{at} is a built-in chain: it cannot be deleted (F flushes it)"),
                        true,
                    );
                } else {
                    let refs = self
                        .shown(key.family)
                        .and_then(|r| r.table(&key.table))
                        .map(|t| {
                            t.chains
                                .iter()
                                .filter(|c| c.name != key.chain)
                                .flat_map(|c| {
                                    c.rules
                                        .iter()
                                        .filter(|r| r.spec.target_name() == key.chain)
                                        .map(move |r| format!("-A {} {}", c.name, r.text))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    self.popup = Some(Popup::Ask(Box::new(Ask::DeleteChain { at, refs })));
                }
            }
            Action::TogglePolicy => match chain.policy.as_deref() {
                Some(p) => {
                    let policy = if p == "ACCEPT" { "DROP" } else { "ACCEPT" };
                    self.popup = Some(Popup::Ask(Box::new(Ask::Policy {
                        at,
                        from: p.to_string(),
                        to: policy.into(),
                    })));
                }
                None => self.edit.say(
                    format!("{at} is a user chain: only built-in chains have a policy"),
                    true,
                ),
            },
            Action::FlushChain => {
                if chain.rules.is_empty() {
                    self.edit.say(format!("{at} has no rules to flush"), true);
                } else {
                    self.popup = Some(Popup::Ask(Box::new(Ask::Flush {
                        at,
                        rules: chain.rules.len(),
                    })));
                }
            }
            Action::ZeroCounters => {
                // The rule under the cursor when the rules have the focus, else the chain.
                let rule = match (self.rules.focus, sel) {
                    (super::app::Focus::Rules, Some((pos, _))) => Some(pos),
                    _ => None,
                };
                self.popup = Some(Popup::Ask(Box::new(Ask::Zero(
                    crate::edit::zero::ZeroRequest { at, rule },
                ))));
            }
            _ => {}
        }
        Vec::new()
    }

    /// Put the rule cursor on rule `idx` of the chain (when the filter shows it).
    fn follow_rule(&mut self, idx: usize) {
        if let Some(p) = self
            .rules
            .visible
            .iter()
            .position(|&r| r == RowRef::Rule(idx))
        {
            self.rules.cursor = p;
            self.clamp_scroll();
        }
    }

    fn undo_redo(&mut self, action: Action) -> Vec<Cmd> {
        let Some(st) = self.edit.staging.as_mut() else {
            self.edit.say("nothing to undo", true);
            return Vec::new();
        };
        if action == Action::Undo {
            match st.undo() {
                Some(op) => self.edit.say(format!("undone: {}", op.describe()), false),
                None => self.edit.say("nothing to undo", true),
            }
        } else {
            match st.redo() {
                Ok(Some(op)) => self.edit.say(format!("redone: {}", op.describe()), false),
                Ok(None) => self.edit.say("nothing to redo", true),
                Err(e) => self.edit.say(e.to_string(), true),
            }
        }
        self.staging_changed()
    }

    /// The Changes screen's keys.
    pub(super) fn on_changes_action(&mut self, action: Action) -> Vec<Cmd> {
        self.edit.message = None;
        let n = self.edit.count();
        let page = self.size.1.saturating_sub(10).max(1);
        match action {
            Action::Up => self.edit.cursor = self.edit.cursor.saturating_sub(1),
            Action::Down => self.edit.cursor = (self.edit.cursor + 1).min(n.saturating_sub(1)),
            Action::PageUp | Action::PageDown => {
                self.edit.diff_scroll = self.edit.diff_scroll.moved(action, page, u16::MAX);
            }
            Action::Undo | Action::Redo => return self.undo_redo(action),
            Action::ToggleWrap => {
                self.edit.diff_wrap = !self.edit.diff_wrap;
                self.edit.diff_hscroll = 0;
            }
            Action::ScrollLeft => {
                self.edit.diff_hscroll = self
                    .edit
                    .diff_hscroll
                    .saturating_sub(super::app::HSCROLL_STEP);
            }
            Action::ScrollRight if self.edit.diff_wrap => {
                self.edit
                    .say("the diff is wrapped: w shows its lines whole again", false);
            }
            Action::ScrollRight => {
                let widest = self
                    .edit
                    .diff
                    .iter()
                    .flat_map(|(_, rows)| rows)
                    .map(|r| crate::format::width(&r.text))
                    .max()
                    .unwrap_or(0);
                let room = usize::from(self.size.0.saturating_sub(4));
                self.edit.diff_hscroll = (self.edit.diff_hscroll + super::app::HSCROLL_STEP)
                    .min(widest.saturating_sub(room.saturating_sub(2)));
            }
            Action::Yank | Action::WriteView => {
                let text: String = self
                    .edit
                    .diff
                    .iter()
                    .flat_map(|(_, rows)| rows)
                    .map(|r| format!("{}\n", r.text))
                    .collect();
                if text.is_empty() {
                    self.edit.say("no diff: nothing is staged", true);
                    return Vec::new();
                }
                if action == Action::Yank {
                    return self.copy(text);
                }
                return vec![self.write_view("changes", "diff", text, "the staged diff".into())];
            }
            Action::Enter => {
                let Some(op) = self
                    .edit
                    .active()
                    .and_then(|st| st.ops().get(self.edit.cursor))
                else {
                    self.edit.say("nothing is staged", true);
                    return Vec::new();
                };
                let at = op.at().clone();
                let rule = match op {
                    Op::Insert { pos, .. } | Op::Replace { pos, .. } | Op::Delete { pos, .. } => {
                        pos.saturating_sub(1)
                    }
                    Op::Move { to, .. } => to.saturating_sub(1),
                    _ => 0,
                };
                // A chain renamed or deleted later is not there under this name any more.
                let name = match op {
                    Op::RenameChain { to, .. } => to.clone(),
                    _ => at.chain.clone(),
                };
                let key = ChainKey {
                    family: at.family,
                    table: at.table.clone(),
                    chain: name,
                };
                if self.chain_by_key(&key).is_some() {
                    self.open_chain_from(Screen::Changes, key, rule);
                } else {
                    self.edit.say(
                        format!("{at} is not in the staged result (deleted or renamed later)"),
                        true,
                    );
                }
            }
            Action::Unstage => {
                let i = self.edit.cursor;
                let Some(st) = self.edit.staging.as_mut().filter(|_| n > 0) else {
                    self.edit.say("nothing is staged", true);
                    return Vec::new();
                };
                let what = st.ops().get(i).map(Op::describe).unwrap_or_default();
                match st.unstage(i) {
                    Ok(()) => self.edit.say(format!("unstaged: {what}"), false),
                    Err(e) => self.edit.say(e.to_string(), true),
                }
                return self.staging_changed();
            }
            Action::DiscardAll => {
                if n == 0 {
                    self.edit.say("nothing is staged", true);
                } else {
                    self.popup = Some(Popup::Ask(Box::new(Ask::Discard { ops: n })));
                }
            }
            Action::Commit => {
                if n == 0 {
                    self.edit.say("nothing is staged to commit", true);
                } else {
                    let o = self.edit.origin.as_str();
                    let target = if o == "kernel" || o.starts_with("kernel:") {
                        "the kernel".to_string()
                    } else if o == "demo" {
                        "the demo world".to_string()
                    } else {
                        o.strip_prefix("file:").unwrap_or(o).to_string()
                    };
                    self.popup = Some(Popup::Ask(Box::new(Ask::Commit { ops: n, target })));
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// A key the editor's keymap does not take: it types.
    pub(super) fn editor_key(&mut self, ev: ratatui::crossterm::event::KeyEvent) {
        if let Some(e) = self.editor_mut()
            && e.checking.is_none()
        {
            e.key(ev);
        }
    }

    /// Answers in the edit popups (questions, editors, the checklist, the countdown).
    pub(super) fn on_edit_popup(&mut self, popup: Popup, action: Action) -> Vec<Cmd> {
        if action == Action::Quit {
            self.quit = true;
            return vec![Cmd::Quit];
        }
        match popup {
            Popup::Ask(asked) => {
                self.popup = None;
                match (Some(*asked), action) {
                    (Some(a), Action::Confirm) => return self.answered(a),
                    (Some(Ask::Zero(req)), Action::StageInstead) => {
                        if req.rule.is_some() {
                            self.edit.say(
                                "a staged zero covers the whole chain: staged for the chain",
                                false,
                            );
                        }
                        return self.stage(Op::Zero { at: req.at });
                    }
                    // Discarding saved work is its own key, and asks again.
                    (Some(Ask::Resume { ops, .. }), Action::DiscardSaved) => {
                        self.popup = Some(Popup::Ask(Box::new(Ask::DiscardSaved { ops })));
                        return Vec::new();
                    }
                    // Esc (or n) on the resume question puts it off: nothing is lost.
                    (Some(Ask::Resume { ops, .. }), _) => {
                        self.edit.resume_postponed = true;
                        self.edit.say(
                            format!(
                                "{} from an earlier run {}: asked again when you stage a change, and at the next start",
                                plural(ops, "saved change", "saved changes"),
                                if ops == 1 { "waits" } else { "wait" }
                            ),
                            false,
                        );
                        return Vec::new();
                    }
                    // "No" to discarding goes back to the resume question.
                    (Some(Ask::DiscardSaved { .. }), _) => {
                        self.edit.resume_postponed = false;
                        self.ask_resume();
                        return Vec::new();
                    }
                    (Some(a), _) => {
                        // Other keys leave the question open.
                        if action != Action::Cancel {
                            self.popup = Some(Popup::Ask(Box::new(a)));
                            return Vec::new();
                        }
                    }
                    (None, _) => {}
                }
                // Back to the checklist when the question came from it.
                if self.edit.commit.is_some() {
                    self.popup = Some(Popup::Commit);
                }
                Vec::new()
            }
            Popup::Editor(_) => match action {
                Action::CancelEdit => {
                    let lockout = self.editor().is_some_and(|e| e.purpose == Purpose::Lockout);
                    self.edit.pending = None;
                    self.popup = if lockout {
                        if let Some(c) = &mut self.edit.commit {
                            c.outcome =
                                Some(("not committed: the lockout warning stands".into(), true));
                        }
                        Some(Popup::Commit)
                    } else {
                        None
                    };
                    Vec::new()
                }
                Action::Complete => {
                    let known = self.edit.known.clone();
                    if let Some(e) = self.editor_mut() {
                        e.complete(&known);
                    }
                    Vec::new()
                }
                Action::Save => self.save_editor(),
                _ => Vec::new(),
            },
            Popup::Commit => {
                let running = self.edit.commit.as_ref().is_some_and(|c| c.running);
                match action {
                    Action::ClosePopup if !running => {
                        self.popup = None;
                        self.edit.commit = None;
                    }
                    Action::ClosePopup => {
                        self.edit.say("the commit is still running", true);
                    }
                    Action::Rebase => return self.rebase(),
                    Action::Up | Action::Down => {
                        if let Some(c) = &mut self.edit.commit {
                            c.scroll = c.scroll.moved(action, 1, u16::MAX);
                        }
                    }
                    _ => {}
                }
                Vec::new()
            }
            Popup::Countdown => match action {
                Action::KeepChange => vec![Cmd::KeepChange],
                Action::Extend => match self.edit.countdown {
                    Some(d) => vec![Cmd::Extend { deadline_ms: d }],
                    None => Vec::new(),
                },
                Action::RollBack => vec![Cmd::RollBack],
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn answered(&mut self, ask: Ask) -> Vec<Cmd> {
        match ask {
            Ask::DeleteRule { at, pos, .. } => self.stage(Op::Delete { id: None, at, pos }),
            Ask::Flush { at, .. } => self.stage(Op::Flush { at }),
            Ask::DeleteChain { at, refs } => self.stage(Op::DeleteChain {
                at,
                remove_references: !refs.is_empty(),
            }),
            Ask::DiscardSaved { ops } => {
                self.edit.resume = None;
                self.edit.resume_postponed = false;
                self.edit.say(
                    format!(
                        "{} from the earlier run discarded",
                        plural(ops, "saved change", "saved changes")
                    ),
                    false,
                );
                if self.edit.persist {
                    vec![Cmd::SaveState(None)]
                } else {
                    Vec::new()
                }
            }
            Ask::Discard { .. } => {
                if let Some(st) = self.edit.staging.as_mut() {
                    st.discard();
                }
                self.edit.staging = None;
                self.edit.say("every staged change was discarded", false);
                self.staging_changed()
            }
            Ask::Commit { .. } => self.start_commit(false),
            Ask::Zero(req) => vec![Cmd::Zero(req)],
            Ask::Policy { at, to, .. } => self.stage(Op::SetPolicy { at, policy: to }),
            Ask::QuitLosing { .. } => {
                self.quit = true;
                vec![Cmd::Quit]
            }
            Ask::Resume { ops, moved, .. } => self.resume(ops, &moved),
        }
    }

    /// Take the saved staging back. When the kernel moved since it was saved, its operations
    /// are re-applied on the kernel's current rules, each finding its rule by identity; when one
    /// cannot be, the staging is kept on its old base and the view says plainly it is stale.
    fn resume(&mut self, ops: usize, moved: &[String]) -> Vec<Cmd> {
        self.edit.resume_postponed = false;
        let Some(saved) = self.edit.resume.take() else {
            return Vec::new();
        };
        let what = plural(ops, "staged change", "staged changes");
        let now = self.kernel_rulesets();
        if moved.is_empty() || now.is_empty() {
            self.edit.staging = Some(saved);
            self.edit.stale = None;
            self.edit.say(format!("resumed {what}"), false);
            return self.staging_changed();
        }
        match saved.rebase(now) {
            Ok(st) => {
                self.edit.staging = Some(st);
                self.edit.stale = None;
                self.edit.say(
                    format!("resumed {what} on the rule set as it is now: each found its rule"),
                    false,
                );
            }
            Err(e) => {
                self.edit.staging = Some(saved);
                self.edit.stale = Some(e.to_string());
                self.edit.say(
                    format!(
                        "resumed {what} on the rule set as it was when saved, which is stale: {e}"
                    ),
                    true,
                );
            }
        }
        self.staging_changed()
    }

    /// What the kernel (or file, or demo) holds now, one Ruleset per family.
    fn kernel_rulesets(&self) -> Vec<Ruleset> {
        Family::ALL
            .iter()
            .filter_map(|&f| self.snapshot.as_ref()?.family(f).ruleset().cloned())
            .collect()
    }

    fn start_commit(&mut self, lockout_confirmed: bool) -> Vec<Cmd> {
        let Some(st) = self.edit.active() else {
            return Vec::new();
        };
        let diff: String = self
            .edit
            .diff
            .iter()
            .flat_map(|(title, rows)| {
                std::iter::once(format!("# {title}")).chain(rows.iter().map(|r| r.text.clone()))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let locals = self.trace.locals.clone().unwrap_or_else(|| {
            if self.edit.origin == "demo" {
                crate::source::local_addrs::demo()
            } else {
                Vec::new()
            }
        });
        let req = Box::new(Request {
            ssh: self.trace.ssh.clone(),
            locals,
            lockout_confirmed,
            diff,
            ..Request::staged(st)
        });
        self.edit.commit = Some(CommitView::new(req.clone()));
        self.edit.countdown = None;
        self.edit.expired_sent = false;
        self.popup = Some(Popup::Commit);
        vec![Cmd::Commit(req)]
    }

    fn rebase(&mut self) -> Vec<Cmd> {
        let Some(st) = self.edit.commit.as_mut().and_then(|c| c.rebase.take()) else {
            self.edit.say("there is nothing to rebase", true);
            return Vec::new();
        };
        self.edit.staging = Some(*st);
        self.edit.stale = None;
        self.edit.commit = None;
        self.popup = None;
        self.screen = Screen::Changes;
        self.edit.say(
            "rebased on the kernel's rule set: review the diff, then c commits",
            false,
        );
        self.staging_changed()
    }

    fn save_editor(&mut self) -> Vec<Cmd> {
        let Some(ed) = self.editor() else {
            return Vec::new();
        };
        if ed.checking.is_some() {
            return Vec::new();
        }
        if ed.problem.is_some() {
            // The sentence is already under the editor; nothing is staged.
            return Vec::new();
        }
        let text = ed.text().trim().to_string();
        let purpose = ed.purpose.clone();
        if purpose == Purpose::Lockout {
            if text == LOCKOUT_WORD {
                return self.start_commit(true);
            }
            // Anything but the word commits nothing, and says so where it was typed.
            if let Some(ed) = self.editor_mut() {
                ed.refused = Some(format!(
                    "type `{LOCKOUT_WORD}` to commit all the same, or Esc to leave it"
                ));
            }
            return Vec::new();
        }
        let Some(key) = self.rules.selected.clone() else {
            return Vec::new();
        };
        let at = cref(&key);
        let op = match purpose {
            Purpose::Append => Op::Append { at, rule: text },
            Purpose::Insert { pos } => Op::Insert {
                above: None,
                at,
                pos,
                rule: text,
            },
            Purpose::Replace { pos } => Op::Replace {
                id: None,
                at,
                pos,
                rule: text,
            },
            Purpose::NewChain => Op::NewChain {
                at: ChainRef::new(key.family, &key.table, &text),
            },
            Purpose::RenameChain => Op::RenameChain { at, to: text },
            Purpose::Lockout => return Vec::new(),
        };
        // Try it on a copy first: a refusal stays under the editor and stages nothing.
        let Some(st) = self.staging_mut() else {
            return Vec::new();
        };
        let mut trial = st.clone();
        if let Err(e) = trial.push(op.clone()) {
            if let Some(ed) = self.editor_mut() {
                ed.refused = Some(e.to_string());
            }
            return Vec::new();
        }
        if self.edit.validate && op_has_rule(&op) {
            let id = self.edit.next_id;
            self.edit.next_id += 1;
            // The whole staged table the rule goes into, and only it: tables are checked
            // apart by the tools anyway, and the others did not change.
            let table = std::collections::BTreeSet::from([(key.family, op.at().table.clone())]);
            let staged = crate::edit::apply::only_tables(trial.result(), &table);
            if let Some(ed) = self.editor_mut() {
                ed.checking = Some(id);
                ed.refused = None;
            }
            self.edit.pending = Some((id, op));
            return vec![Cmd::Validate { id, staged }];
        }
        self.finish_editor(op)
    }

    fn finish_editor(&mut self, op: Op) -> Vec<Cmd> {
        self.popup = None;
        let follow = match &op {
            Op::Append { .. } => Some(usize::MAX),
            Op::Insert { pos, .. } | Op::Replace { pos, .. } => Some(pos - 1),
            _ => None,
        };
        let new_chain = match &op {
            Op::NewChain { at } => Some(at.chain.clone()),
            Op::RenameChain { to, .. } => Some(to.clone()),
            _ => None,
        };
        let family_table = self.rules.selected.clone();
        let cmds = self.stage(op);
        if let (Some(name), Some(k)) = (new_chain, family_table) {
            let key = ChainKey {
                family: k.family,
                table: k.table,
                chain: name,
            };
            if self.chain_by_key(&key).is_some() {
                self.rules.back.clear();
                self.select_chain(key, 0);
            }
        }
        if let Some(idx) = follow {
            let idx = idx.min(self.chain().map_or(0, |c| c.rules.len().saturating_sub(1)));
            self.follow_rule(idx);
        }
        cmds
    }

    /// `iptables-restore --test` answered.
    pub(super) fn on_validated(&mut self, id: u64, result: Result<(), String>) -> Vec<Cmd> {
        let Some((pid, op)) = self.edit.pending.take() else {
            return Vec::new();
        };
        if pid != id {
            self.edit.pending = Some((pid, op));
            return Vec::new();
        }
        match result {
            Ok(()) => self.finish_editor(op),
            Err(e) => {
                if let Some(ed) = self.editor_mut() {
                    ed.checking = None;
                    ed.refused = Some(e);
                }
                Vec::new()
            }
        }
    }

    /// A saved staging found at start: kept until the first snapshot says whether the kernel
    /// moved, then asked about.
    pub fn offer_resume(&mut self, staging: Staging, saved_at: u64) {
        self.edit.resume = Some(staging);
        self.edit.resume_saved_at = saved_at;
        self.ask_resume();
    }

    /// Ask about the saved staging once there is a snapshot to compare it with.
    pub(super) fn ask_resume(&mut self) {
        if self.popup.is_some() || self.edit.resume_postponed {
            return;
        }
        let (Some(st), Some(snap)) = (self.edit.resume.as_ref(), self.snapshot.as_ref()) else {
            return;
        };
        let now: Vec<Ruleset> = Family::ALL
            .iter()
            .filter_map(|&f| snap.family(f).ruleset().cloned())
            .collect();
        let moved = crate::edit::state::moved(st.base(), &now)
            .iter()
            .map(ToString::to_string)
            .collect();
        self.popup = Some(Popup::Ask(Box::new(Ask::Resume {
            ops: st.ops().len(),
            saved_at: self.edit.resume_saved_at,
            moved,
        })));
    }

    /// A commit step or a countdown action reported back.
    pub(super) fn on_commit(&mut self, p: Progress) -> Vec<Cmd> {
        let Some(view) = self.edit.commit.as_mut() else {
            return Vec::new();
        };
        // Answers about the countdown that arrive after it ended (a check crossing the user's
        // own answer) change nothing.
        let about_countdown = matches!(
            p,
            Progress::Extended { .. }
                | Progress::Confirmed(_)
                | Progress::RolledBack(_)
                | Progress::RollbackFailed(_)
        );
        if about_countdown && self.edit.countdown.is_none() {
            return Vec::new();
        }
        match p {
            Progress::Running(s) => view.set(s, StepState::Running),
            Progress::Done(s, d) => view.set(s, StepState::Done(d)),
            Progress::Failed(s, d) => {
                view.set(s, StepState::Failed(d));
                view.running = false;
                let applied = matches!(s, Step::Verify);
                view.outcome = Some((
                    if applied {
                        "the commit did not verify and was rolled back".into()
                    } else {
                        format!("not committed: the {} step failed", s.label())
                    },
                    true,
                ));
            }
            Progress::Conflicts { lines, now } => {
                let n = lines.iter().filter(|l| !l.starts_with(' ')).count();
                view.set(
                    Step::Concurrency,
                    StepState::Failed(format!(
                        "{} you edited changed in the kernel meanwhile",
                        plural(n, "chain", "chains")
                    )),
                );
                view.conflicts = lines;
                view.running = false;
                let rebased = self.edit.staging.as_ref().map(|st| st.rebase(now));
                match rebased {
                    // Said only when every operation found the rule it was staged on.
                    Some(Ok(st)) => {
                        view.rebase = Some(Box::new(st));
                        view.outcome = Some((
                            "refused. Your changes still apply on the kernel's new rule set, each to the rule you chose: r rebases them (then review and commit again)".into(),
                            true,
                        ));
                    }
                    Some(Err(e)) => {
                        view.outcome = Some((
                            format!("refused, and a rebase would not apply cleanly: {e}"),
                            true,
                        ));
                    }
                    None => view.outcome = Some(("refused".into(), true)),
                }
            }
            Progress::Lockout(findings) => {
                view.set(
                    Step::Lockout,
                    StepState::NeedsYou(format!(
                        "{} for your SSH session",
                        plural(findings.len(), "danger", "dangers")
                    )),
                );
                view.findings = findings;
                view.running = false;
                self.popup = Some(Popup::Editor(Box::new(Editor::new(
                    Purpose::Lockout,
                    "Your SSH session is at risk: type lockout to commit all the same".into(),
                    "",
                    Vec::new(),
                ))));
            }
            Progress::Armed { deadline_ms } => {
                view.running = false;
                self.edit.countdown = Some(deadline_ms);
                self.edit.shown_left = self.edit.seconds_left(self.now);
                self.edit.expired_sent = false;
                self.popup = Some(Popup::Countdown);
            }
            Progress::Finished(msg) => {
                view.running = false;
                view.outcome = Some((format!("committed: {msg}"), false));
                self.edit.staging = None;
                self.stale_check = true;
                return self.staging_changed();
            }
            Progress::Extended { deadline_ms } => {
                self.edit.countdown = Some(deadline_ms);
                self.edit.shown_left = self.edit.seconds_left(self.now);
                self.edit.expired_sent = false;
            }
            Progress::Confirmed(msg) => {
                view.outcome = Some((format!("committed and {msg}"), false));
                self.edit.countdown = None;
                self.edit.staging = None;
                self.popup = Some(Popup::Commit);
                self.edit.say("committed and confirmed", false);
                self.stale_check = true;
                return self.staging_changed();
            }
            Progress::RolledBack(msg) => {
                view.outcome = Some((format!("{msg}. Your changes are still staged."), true));
                self.edit.countdown = None;
                self.popup = Some(Popup::Commit);
            }
            Progress::RollbackFailed(msg) => {
                view.outcome = Some((crate::format::capitalized(&msg), true));
                self.edit.countdown = None;
                self.popup = Some(Popup::Commit);
                self.edit.say(msg, true);
            }
            Progress::ActionFailed(msg) => self.edit.say(msg, true),
            // The diff of a whole-file load: the Changes screen shows the staged one already.
            Progress::Changes(_) => {}
        }
        Vec::new()
    }

    /// The clock moved: redraw the countdown once a second, and say when the deadline passed.
    pub(super) fn countdown_tick(&mut self, now: SystemTime) -> Update {
        let Some(deadline) = self.edit.countdown else {
            self.edit.shown_left = None;
            return Update::default();
        };
        if unix_ms(now) >= deadline {
            if self.edit.expired_sent {
                return Update::default();
            }
            self.edit.expired_sent = true;
            return Update::redraw(vec![Cmd::Expired]);
        }
        let left = self.edit.seconds_left(now);
        if left != self.edit.shown_left {
            self.edit.shown_left = left;
            return Update::redraw(vec![Cmd::CheckPending {
                deadline_ms: deadline,
            }]);
        }
        Update::default()
    }
}

fn op_has_rule(op: &Op) -> bool {
    matches!(
        op,
        Op::Append { .. } | Op::Insert { .. } | Op::Replace { .. }
    )
}
