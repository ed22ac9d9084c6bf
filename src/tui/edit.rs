//! Edit mode in the App: the staging (operations on a base snapshot), the editors that make
//! them, the questions before destructive ones, the Changes screen's cursor and diff, and the
//! commit's checklist and countdown. Pure like the rest of `update`: validation, the state
//! file and the commit itself go out as `Cmd`s and come back as `Msg`s.

use super::app::{App, Popup, Screen};
use super::editor::{Editor, Known, LOCKOUT_WORD, Purpose};
use super::event::{Cmd, Saved};
use super::keymap::Action;
use crate::edit::ChainRef;
use crate::edit::commit::{Progress, Request, Step};
use crate::edit::diff::{self, DiffKind};
use crate::edit::stage::{Op, Staging};
use crate::ruleset::rates::ChainKey;
use crate::ruleset::{Family, Ruleset};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How much `+` adds to the countdown.
pub const EXTEND_BY: Duration = Duration::from_secs(30);

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
    /// `refs`: rules elsewhere that jump to it (yes removes them too).
    DeleteChain {
        at: ChainRef,
        refs: usize,
    },
    Discard {
        ops: usize,
    },
    Commit {
        ops: usize,
        target: String,
    },
    /// A saved staging from an earlier run; `moved`: chains that changed in the kernel since.
    Resume {
        ops: usize,
        saved_at: u64,
        moved: Vec<String>,
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
    pub scroll: u16,
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
            scroll: 0,
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
    pub editor: Option<Editor>,
    pub ask: Option<Ask>,
    /// A saved staging waiting for the first snapshot, then for the answer, and when it was
    /// saved (Unix seconds).
    pub resume: Option<Staging>,
    resume_saved_at: u64,
    /// The Changes screen: the selected operation and the diff's scroll.
    pub cursor: usize,
    pub diff_scroll: u16,
    /// The diff of the staging, per table, kept up to date with it.
    pub diff: Vec<(String, Vec<DiffRow>)>,
    /// Chains the staging edited (result names), and renames, kept up to date with it.
    pub edited: BTreeSet<ChainRef>,
    pub renames: Vec<(ChainRef, String)>,
    /// A line about the last action, and whether it is an error.
    pub message: Option<(String, bool)>,
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
}

impl Default for EditScreen {
    fn default() -> Self {
        EditScreen {
            staging: None,
            editor: None,
            ask: None,
            resume: None,
            resume_saved_at: 0,
            cursor: 0,
            diff_scroll: 0,
            diff: Vec::new(),
            edited: BTreeSet::new(),
            renames: Vec::new(),
            message: None,
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

    fn say(&mut self, text: impl Into<String>, error: bool) {
        self.message = Some((text.into(), error));
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
        let Some(chain) = self.chain_by_key(key) else {
            return Vec::new();
        };
        let n = chain.rules.len();
        if !self.is_edited(key) {
            return vec![false; n];
        }
        let base_name = self
            .edit
            .renames
            .iter()
            .find(|(b, new)| b.family == key.family && b.table == key.table && *new == key.chain)
            .map_or(key.chain.as_str(), |(b, _)| b.chain.as_str());
        let base = self
            .edit
            .staging
            .as_ref()
            .and_then(|s| s.base_for(key.family))
            .and_then(|r| r.table(&key.table))
            .and_then(|t| t.chain(base_name));
        let Some(base) = base else {
            return vec![true; n];
        };
        let old: Vec<&str> = base.rules.iter().map(|r| r.text.as_str()).collect();
        let new: Vec<&str> = chain.rules.iter().map(|r| r.text.as_str()).collect();
        let mut marks = vec![true; n];
        for op in similar::capture_diff_slices(similar::Algorithm::Myers, &old, &new) {
            if let similar::DiffOp::Equal { new_index, len, .. } = op {
                for m in marks.iter_mut().skip(new_index).take(len) {
                    *m = false;
                }
            }
        }
        marks
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
        self.edit.cursor = self.edit.cursor.min(self.edit.count().saturating_sub(1));
        self.rules_changed();
        self.dirty = true;
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
            self.edit.staging = Some(Staging::new(base));
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

    fn open_editor(&mut self, purpose: Purpose, title: String, text: &str, key: &ChainKey) {
        let chains = self.chains_of(key);
        self.edit.editor = Some(Editor::new(purpose, title, text, chains));
        self.popup = Some(Popup::Editor);
    }

    /// The Rules screen's edit keys.
    pub(super) fn on_rules_edit(&mut self, action: Action) -> Vec<Cmd> {
        self.edit.message = None;
        if matches!(action, Action::Undo | Action::Redo) {
            return self.undo_redo(action);
        }
        let Some(key) = self.selected.clone() else {
            self.edit.say("select a chain first", true);
            return Vec::new();
        };
        let Some(chain) = self.chain_by_key(&key).cloned() else {
            return Vec::new();
        };
        let at = cref(&key);
        let sel = self.selected_rule().map(|(i, r)| (i + 1, r.text.clone()));
        let need_rule = |app: &mut App| {
            app.edit.say(
                format!("{at}: select a rule first (the chain has no rules)"),
                true,
            );
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
                    self.edit.ask = Some(Ask::DeleteRule { at, pos, text });
                    self.popup = Some(Popup::Ask);
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
                        .map_or(0, |t| t.references(&key.chain));
                    self.edit.ask = Some(Ask::DeleteChain { at, refs });
                    self.popup = Some(Popup::Ask);
                }
            }
            Action::TogglePolicy => match chain.policy.as_deref() {
                Some(p) => {
                    let policy = if p == "ACCEPT" { "DROP" } else { "ACCEPT" };
                    return self.stage(Op::SetPolicy {
                        at,
                        policy: policy.into(),
                    });
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
                    self.edit.ask = Some(Ask::Flush {
                        at,
                        rules: chain.rules.len(),
                    });
                    self.popup = Some(Popup::Ask);
                }
            }
            Action::ZeroCounters => return self.stage(Op::Zero { at }),
            _ => self.dirty = false,
        }
        Vec::new()
    }

    /// Put the rule cursor on rule `idx` of the chain (when the filter shows it).
    fn follow_rule(&mut self, idx: usize) {
        if let Some(p) = self.visible.iter().position(|&i| i == idx) {
            self.cursor = p;
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
            Action::PageUp => self.edit.diff_scroll = self.edit.diff_scroll.saturating_sub(page),
            Action::PageDown => self.edit.diff_scroll = self.edit.diff_scroll.saturating_add(page),
            Action::Undo | Action::Redo => return self.undo_redo(action),
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
                    self.edit.ask = Some(Ask::Discard { ops: n });
                    self.popup = Some(Popup::Ask);
                }
            }
            Action::Commit => {
                if n == 0 {
                    self.edit.say("nothing is staged to commit", true);
                } else {
                    let target = match self.edit.origin.as_str() {
                        "kernel" => "the kernel".to_string(),
                        "demo" => "the demo world".to_string(),
                        o => o.strip_prefix("file:").unwrap_or(o).to_string(),
                    };
                    self.edit.ask = Some(Ask::Commit { ops: n, target });
                    self.popup = Some(Popup::Ask);
                }
            }
            _ => self.dirty = false,
        }
        Vec::new()
    }

    /// A key the editor's keymap does not take: it types.
    pub(super) fn editor_key(&mut self, ev: ratatui::crossterm::event::KeyEvent) {
        match self.edit.editor.as_mut() {
            Some(e) if e.checking.is_none() => {
                if !e.key(ev) {
                    // Cursor moves change nothing worth keeping but still move the cursor.
                }
            }
            _ => self.dirty = false,
        }
    }

    /// Answers in the edit popups (questions, editors, the checklist, the countdown).
    pub(super) fn on_edit_popup(&mut self, popup: Popup, action: Action) -> Vec<Cmd> {
        if action == Action::Quit {
            self.quit = true;
            return vec![Cmd::Quit];
        }
        match popup {
            Popup::Ask => {
                self.popup = None;
                let ask = self.edit.ask.take();
                if action == Action::Confirm
                    && let Some(a) = ask
                {
                    return self.answered(a);
                }
                // "No" to resuming forgets the saved work.
                if self.edit.resume.take().is_some() {
                    self.edit.say("the saved changes were discarded", false);
                    return if self.edit.persist {
                        vec![Cmd::SaveState(None)]
                    } else {
                        Vec::new()
                    };
                }
                // Back to the checklist when the question came from it.
                if self.edit.commit.is_some() {
                    self.popup = Some(Popup::Commit);
                }
                Vec::new()
            }
            Popup::Editor => match action {
                Action::CancelEdit => {
                    let lockout = self
                        .edit
                        .editor
                        .as_ref()
                        .is_some_and(|e| e.purpose == Purpose::Lockout);
                    self.edit.editor = None;
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
                    if let Some(e) = self.edit.editor.as_mut() {
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
                            c.scroll = if action == Action::Up {
                                c.scroll.saturating_sub(1)
                            } else {
                                c.scroll.saturating_add(1)
                            };
                        }
                    }
                    _ => self.dirty = false,
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
                _ => {
                    self.dirty = false;
                    Vec::new()
                }
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
                remove_references: refs > 0,
            }),
            Ask::Discard { .. } => {
                if let Some(st) = self.edit.staging.as_mut() {
                    st.discard();
                }
                self.edit.staging = None;
                self.edit.say("every staged change was discarded", false);
                self.staging_changed()
            }
            Ask::Commit { .. } => self.start_commit(false),
            Ask::Resume { ops, .. } => {
                self.edit.staging = self.edit.resume.take();
                self.edit.say(
                    format!("resumed {}", plural(ops, "staged change", "staged changes")),
                    false,
                );
                self.staging_changed()
            }
        }
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
            base: st.base().to_vec(),
            staged: st.result().to_vec(),
            ops: st.ops().to_vec(),
            edited: st.edited(),
            renames: st.renames(),
            zeroed: st.zeroed(),
            ssh: self.trace.ssh.clone(),
            locals,
            lockout_confirmed,
            diff,
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
        let Some(ed) = self.edit.editor.as_ref() else {
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
            self.edit.editor = None;
            if text == LOCKOUT_WORD {
                return self.start_commit(true);
            }
            return Vec::new();
        }
        let Some(key) = self.selected.clone() else {
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
            if let Some(ed) = self.edit.editor.as_mut() {
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
            if let Some(ed) = self.edit.editor.as_mut() {
                ed.checking = Some(id);
                ed.refused = None;
            }
            self.edit.pending = Some((id, op));
            return vec![Cmd::Validate { id, staged }];
        }
        self.finish_editor(op)
    }

    fn finish_editor(&mut self, op: Op) -> Vec<Cmd> {
        self.edit.editor = None;
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
        let family_table = self.selected.clone();
        let cmds = self.stage(op);
        if let (Some(name), Some(k)) = (new_chain, family_table) {
            let key = ChainKey {
                family: k.family,
                table: k.table,
                chain: name,
            };
            if self.chain_by_key(&key).is_some() {
                self.back.clear();
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
        self.dirty = true;
        match result {
            Ok(()) => self.finish_editor(op),
            Err(e) => {
                if let Some(ed) = self.edit.editor.as_mut() {
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
        if self.edit.ask.is_some() || self.popup.is_some() {
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
        self.edit.ask = Some(Ask::Resume {
            ops: st.ops().len(),
            saved_at: self.edit.resume_saved_at,
            moved,
        });
        self.popup = Some(Popup::Ask);
        self.dirty = true;
    }

    /// A commit step or a countdown action reported back.
    pub(super) fn on_commit(&mut self, p: Progress) -> Vec<Cmd> {
        self.dirty = true;
        let Some(view) = self.edit.commit.as_mut() else {
            return Vec::new();
        };
        // Answers about the countdown that arrive after it ended (a check crossing the user's
        // own answer) change nothing.
        let about_countdown = matches!(
            p,
            Progress::Extended { .. } | Progress::Confirmed(_) | Progress::RolledBack(_)
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
                    Some(Ok(st)) => {
                        view.rebase = Some(Box::new(st));
                        view.outcome = Some((
                            "refused. Your changes still apply on the kernel's new rule set: r rebases them (then review and commit again)".into(),
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
                self.edit.editor = Some(Editor::new(
                    Purpose::Lockout,
                    "Your SSH session is at risk: type lockout to commit all the same".into(),
                    "",
                    Vec::new(),
                ));
                self.popup = Some(Popup::Editor);
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
                return self.staging_changed();
            }
            Progress::RolledBack(msg) => {
                view.outcome = Some((format!("{msg}. Your changes are still staged."), true));
                self.edit.countdown = None;
                self.popup = Some(Popup::Commit);
            }
            Progress::ActionFailed(msg) => self.edit.say(msg, true),
        }
        Vec::new()
    }

    /// The clock moved: redraw the countdown once a second, and say when the deadline passed.
    pub(super) fn countdown_tick(&mut self, now: SystemTime) -> Vec<Cmd> {
        let Some(deadline) = self.edit.countdown else {
            self.edit.shown_left = None;
            return Vec::new();
        };
        if unix_ms(now) >= deadline {
            if self.edit.expired_sent {
                return Vec::new();
            }
            self.dirty = true;
            self.edit.expired_sent = true;
            return vec![Cmd::Expired];
        }
        let left = self.edit.seconds_left(now);
        if left != self.edit.shown_left {
            self.edit.shown_left = left;
            self.dirty = true;
            return vec![Cmd::CheckPending {
                deadline_ms: deadline,
            }];
        }
        Vec::new()
    }
}

fn op_has_rule(op: &Op) -> bool {
    matches!(
        op,
        Op::Append { .. } | Op::Insert { .. } | Op::Replace { .. }
    )
}
