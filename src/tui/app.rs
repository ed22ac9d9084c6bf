//! The application state and `update`, the one place it changes. No terminal here: tests drive
//! `update` with messages and render with ratatui's TestBackend.

use super::conntrack::{Confirm as CtConfirm, CtScreen};
use super::edit::{Ask, EditScreen, RowRef};
use super::editor::Editor;
use super::event::{Cmd, Msg};
use super::flow::{FlowBox, FlowScreen};
use super::keymap::{self, Action, Scope};
use super::scroll::Scroll;
use super::theme::Theme;
use super::trace::{TraceFocus, TraceScreen};
use super::view;
use crate::ruleset::rates::{ChainKey, NativeCount, NativeKey, NativeRates, RateTracker};
use crate::ruleset::{Chain, Family, Rule, Ruleset, TargetKind, table_rank};
use crate::source::RulesetSnapshot;
use crate::source::native::{NativeChain, NativeRule, NativeTable};
use crate::trace::lint::{self, Severity};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::time::SystemTime;

/// The screens, in Tab order (and numbered so in the header). More arrive with the tracer and
/// edit mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Rules,
    Conntrack,
    Trace,
    Flow,
    Changes,
}

impl Screen {
    pub const ALL: &'static [Screen] = &[
        Screen::Rules,
        Screen::Conntrack,
        Screen::Trace,
        Screen::Flow,
        Screen::Changes,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Rules => "Rules",
            Screen::Conntrack => "Conntrack",
            Screen::Trace => "Trace",
            Screen::Flow => "Flow",
            Screen::Changes => "Changes",
        }
    }

    /// Where this screen's keys are in the keymap.
    pub fn scope(self) -> Scope {
        match self {
            Screen::Rules => Scope::Rules,
            Screen::Conntrack => Scope::Conntrack,
            Screen::Trace => Scope::Trace,
            Screen::Flow => Scope::Flow,
            Screen::Changes => Scope::Changes,
        }
    }
}

/// Which pane of the Rules screen has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    Tree,
    #[default]
    Rules,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    Help {
        scroll: Scroll,
    },
    Detail {
        scroll: Scroll,
    },
    /// A conntrack entry's attributes (which one, and the scroll, are in `App::ct`).
    CtDetail,
    /// A conntrack deletion waiting for yes or no, owned here.
    Confirm(Box<CtConfirm>),
    /// Edit mode's question waiting for yes or no, owned here.
    Ask(Box<Ask>),
    /// The rule or chain-name editor, or the lockout word, owned here.
    Editor(Box<Editor>),
    /// The commit's checklist.
    Commit,
    /// The countdown after a commit.
    Countdown,
    /// Every message said so far, whole (a footer may cut one).
    Messages {
        scroll: Scroll,
    },
    /// Jump to a chain by a fuzzy name.
    Jump(Box<super::jump::Jump>),
    /// Who can reach what (`r`).
    Reach(Box<super::reach::ReachView>),
}

impl Popup {
    /// The keymap scopes that see keys while this popup is open.
    pub fn scopes(&self) -> &'static [Scope] {
        match self {
            Popup::Confirm(_) | Popup::Ask(_) => &[Scope::Confirm],
            Popup::Editor(_) => &[Scope::Editor],
            Popup::Commit => &[Scope::Commit],
            Popup::Countdown => &[Scope::Countdown],
            Popup::Jump(_) => &[Scope::Jump],
            Popup::Reach(_) => &[Scope::Reach, Scope::Popup, Scope::Global],
            _ => &[Scope::Popup, Scope::Global],
        }
    }

    /// Edit mode's popups (their keys are edit mode's own).
    pub fn is_edit(&self) -> bool {
        matches!(
            self,
            Popup::Ask(_) | Popup::Editor(_) | Popup::Commit | Popup::Countdown
        )
    }

    /// The question it asks, for a question.
    pub fn question(&self) -> Option<&Ask> {
        match self {
            Popup::Ask(a) => Some(a),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    Normal,
    /// Typing a filter after `/`.
    Filter,
}

/// One row of the chain tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeRow {
    Family(Family),
    Table(Family, String),
    Chain(ChainKey),
    /// The heading over the native nftables tables.
    NativeHeading,
    /// A native table: its family as nft names it (`inet`) and its name.
    NativeTable(String, String),
    NativeChain(NativeKey),
}

/// A chain the Rules screen can show.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChainSel {
    /// An iptables chain: edit mode stages changes to it.
    Iptables(ChainKey),
    /// A native nftables chain: read-only.
    Native(NativeKey),
}

impl ChainSel {
    /// The chain's name.
    pub fn chain(&self) -> &str {
        match self {
            ChainSel::Iptables(k) => &k.chain,
            ChainSel::Native(k) => &k.chain,
        }
    }
}

/// What the footer says while a native chain is shown, and what a staging key says there.
pub const NATIVE_READ_ONLY: &str = "native nftables: read-only in nfscope";

/// The Rules screen's state, as the other screens keep theirs (`CtScreen`, `TraceScreen`...).
#[derive(Debug, Default)]
pub struct RulesScreen {
    pub tree: Vec<TreeRow>,
    /// The iptables chain shown; `None` while a native chain is (`native`).
    pub selected: Option<ChainKey>,
    /// The native nftables chain shown instead, read-only; `None` while an iptables chain is.
    pub native: Option<NativeKey>,
    pub tree_offset: usize,
    pub focus: Focus,
    /// Index into `visible` of the selected rule.
    pub cursor: usize,
    pub offset: usize,
    /// The rows that pass the filter: rules of the chain as shown, and rules a staged edit
    /// deletes (see `edit::RowRef`).
    pub visible: Vec<RowRef>,
    /// Where Backspace returns to: the chain and the rule cursor we jumped from.
    pub back: Vec<(ChainSel, usize)>,
    pub filter: String,
    /// How many rules jump or go to each chain, per family and table of the rule sets shown
    /// (`Table::all_references`), counted when they change: the tree shows a user chain's
    /// count on its row at every frame, and counting one chain alone walks its whole table
    /// (50,000 rules in kube-proxy's nat, docs/performance.md).
    pub refs: Vec<(Family, String, rustc_hash::FxHashMap<String, usize>)>,
    /// Columns the long text (the matches, a native rule, a save line) is scrolled sideways.
    pub hscroll: usize,
    /// Long text wraps over several rows instead (`w`).
    pub wrap: bool,
    /// The chain as `-A CHAIN ...` lines (`S`).
    pub save_form: bool,
}

/// The lint's findings (docs/analysis.md, "Lint") on the snapshot's rules, by rule: computed
/// when the rules' words change, not when only their counters move, and never per frame.
/// `no_hits` is left out: the screens show the counters themselves.
#[derive(Debug, Default)]
pub struct LintMarks {
    fingerprint: Option<u64>,
    by_rule: ByRule,
    /// A lint of a big rule set running on its own thread: its answer, when it comes.
    pending: Option<std::sync::mpsc::Receiver<ByRule>>,
}

type ByRule = std::collections::HashMap<lint::RuleKey, Vec<(Severity, String)>>;

/// Rule sets up to this size are linted at once (a few ms); bigger ones on a thread, so that a
/// busy kube-proxy node's rule changes never stall the screen.
const LINT_INLINE_RULES: usize = 2_000;

fn lint_by_rule(sets: &[&Ruleset], locals: Vec<crate::trace::LocalAddr>) -> ByRule {
    let opts = lint::LintOptions {
        counters: false,
        locals,
    };
    let findings = lint::lint(sets, opts);
    lint::findings_by_rule(&findings)
        .into_iter()
        .map(|(k, v)| {
            let v = v.iter().map(|f| (f.severity, f.message.clone())).collect();
            (k, v)
        })
        .collect()
}

impl LintMarks {
    /// What the rules' words hash to (`None` before the first snapshot): another value means
    /// the rules changed.
    pub fn fingerprint(&self) -> Option<u64> {
        self.fingerprint
    }

    /// Take the answer of a lint running on its thread, if it came: whether the marks changed.
    pub fn poll(&mut self) -> bool {
        let Some(rx) = &self.pending else {
            return false;
        };
        match rx.try_recv() {
            Ok(by_rule) => {
                self.by_rule = by_rule;
                self.pending = None;
                true
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => false,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.pending = None;
                false
            }
        }
    }

    /// Lint the snapshot's rules if they changed; `locals` are this machine's addresses (for
    /// the parity check).
    pub fn update(&mut self, snap: &RulesetSnapshot, locals: Vec<crate::trace::LocalAddr>) {
        self.poll();
        use std::hash::{Hash, Hasher};
        let sets: Vec<&Ruleset> = Family::ALL
            .iter()
            .filter_map(|&f| snap.family(f).ruleset())
            .collect();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for rs in &sets {
            rs.family.hash(&mut h);
            for t in &rs.tables {
                t.name.hash(&mut h);
                for c in &t.chains {
                    c.name.hash(&mut h);
                    c.policy.hash(&mut h);
                    for r in &c.rules {
                        r.text.hash(&mut h);
                    }
                }
            }
        }
        for l in &locals {
            l.addr.hash(&mut h);
        }
        let fp = h.finish();
        if self.fingerprint == Some(fp) {
            return;
        }
        self.fingerprint = Some(fp);
        let rules: usize = sets.iter().map(|rs| rs.rule_count()).sum();
        if rules <= LINT_INLINE_RULES {
            self.pending = None;
            self.by_rule = lint_by_rule(&sets, locals);
            return;
        }
        // The marks of the old rules would point at the wrong ones: none until the answer.
        self.by_rule.clear();
        let owned: Vec<Ruleset> = sets.iter().map(|rs| (*rs).clone()).collect();
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("nfscope-lint".into())
            .spawn(move || {
                let sets: Vec<&Ruleset> = owned.iter().collect();
                // The receiver may be gone (newer rules): nothing to do then.
                let _ = tx.send(lint_by_rule(&sets, locals));
            });
        self.pending = spawned.ok().map(|_| rx);
    }

    /// The findings on rule `index` (0-based, in the snapshot) of the chain `key`.
    pub fn of(&self, key: &ChainKey, index: usize) -> &[(Severity, String)] {
        self.by_rule
            .get(&(key.family, key.table.clone(), key.chain.clone(), index))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether the rule has a finding of severity warning or above.
    pub fn warns(&self, key: &ChainKey, index: usize) -> bool {
        self.of(key, index)
            .iter()
            .any(|(s, _)| *s >= Severity::Warning)
    }
}

/// Everything the screens show.
pub struct App {
    pub snapshot: Option<RulesetSnapshot>,
    pub rates: RateTracker,
    /// The native nftables chains' rates.
    pub native_rates: NativeRates,
    /// The lint's findings on the snapshot's rules, recomputed only when the rules change.
    pub lint: LintMarks,
    /// The Rules screen: the chain tree, the selected chain, its rows, the filter.
    pub rules: RulesScreen,
    pub mode: InputMode,
    pub popup: Option<Popup>,
    pub exact: bool,
    pub screen: Screen,
    /// The Conntrack screen.
    pub ct: CtScreen,
    /// The Trace screen.
    pub trace: TraceScreen,
    /// The Flow screen.
    pub flow: FlowScreen,
    /// Edit mode: the staging, the editors, the Changes screen, the commit.
    pub edit: EditScreen,
    /// The depth of `back` right after a jump from another screen (Trace, Flow), and that
    /// screen: Backspace at that depth returns there.
    pub screen_back: Option<(usize, Screen)>,
    pub now: SystemTime,
    pub host: String,
    pub size: (u16, u16),
    pub theme: Theme,
    pub quit: bool,
    /// Where `W` writes the view.
    pub write_dir: std::path::PathBuf,
    /// nfscope's own audit log as last read (`Msg::Audit`), for the messages popup (`!`).
    /// `None` until read (never in the demo, which writes none).
    pub audit: Option<crate::edit::audit::Tail>,
    /// A commit succeeded: count the stale entries once the rule set is read again.
    pub stale_check: bool,
    /// Which sources arrive on each interface, for the Reach popup (the config's `ifaces`).
    pub reach_ifaces: Vec<crate::trace::reach::IfaceMap>,
}

/// What one message did: the side effects it asks for, and whether what the screen shows
/// changed. The main loop draws only then (and ratatui sends only the cells that differ).
#[derive(Debug, Default, PartialEq)]
pub struct Update {
    pub cmds: Vec<Cmd>,
    pub redraw: bool,
}

impl Update {
    /// The screen changed.
    pub fn redraw(cmds: Vec<Cmd>) -> Update {
        Update { cmds, redraw: true }
    }

    /// Nothing on the screen changed.
    pub fn quiet(cmds: Vec<Cmd>) -> Update {
        Update {
            cmds,
            redraw: false,
        }
    }
}

impl App {
    pub fn new(host: String, theme: Theme, size: (u16, u16), now: SystemTime) -> Self {
        App {
            snapshot: None,
            rates: RateTracker::new(),
            native_rates: NativeRates::default(),
            lint: LintMarks::default(),
            rules: RulesScreen::default(),
            mode: InputMode::Normal,
            popup: None,
            exact: false,
            screen: Screen::Rules,
            ct: CtScreen::new(),
            trace: TraceScreen::new(),
            flow: FlowScreen::default(),
            edit: EditScreen::default(),
            screen_back: None,
            now,
            host,
            size,
            theme,
            quit: false,
            write_dir: std::path::PathBuf::from("."),
            audit: None,
            reach_ifaces: Vec::new(),
            stale_check: false,
        }
    }

    /// The selected chain, if it exists in the current snapshot.
    pub fn chain(&self) -> Option<&Chain> {
        let key = self.rules.selected.as_ref()?;
        self.chain_by_key(key)
    }

    /// A chain as the Rules screen shows it (with the staged changes, if any).
    pub fn chain_by_key(&self, key: &ChainKey) -> Option<&Chain> {
        self.shown(key.family)?.table(&key.table)?.chain(&key.chain)
    }

    /// The native tables of the snapshot.
    pub fn native_tables(&self) -> &[NativeTable] {
        self.snapshot.as_ref().map_or(&[], |s| s.native.as_slice())
    }

    /// A native chain and its table, if it exists in the current snapshot.
    pub fn native_by_key(&self, key: &NativeKey) -> Option<(&NativeTable, &NativeChain)> {
        let t = self
            .native_tables()
            .iter()
            .find(|t| t.family == key.family && t.name == key.table)?;
        Some((t, t.chain(&key.chain)?))
    }

    /// The native chain shown, and its table.
    pub fn native_chain(&self) -> Option<(&NativeTable, &NativeChain)> {
        self.native_by_key(self.rules.native.as_ref()?)
    }

    /// The native rule under the cursor and its index in the chain.
    pub fn selected_native_rule(&self) -> Option<(usize, &NativeRule)> {
        let RowRef::Rule(idx) = *self.rules.visible.get(self.rules.cursor)? else {
            return None;
        };
        self.native_chain()?.1.rules.get(idx).map(|r| (idx, r))
    }

    /// The chain shown on the Rules screen, of either kind.
    pub fn shown_chain(&self) -> Option<ChainSel> {
        match (&self.rules.native, &self.rules.selected) {
            (Some(n), _) => Some(ChainSel::Native(n.clone())),
            (None, Some(k)) => Some(ChainSel::Iptables(k.clone())),
            (None, None) => None,
        }
    }

    /// Whether a chain (of either kind) is in the current snapshot.
    fn exists(&self, sel: &ChainSel) -> bool {
        match sel {
            ChainSel::Iptables(k) => self.chain_by_key(k).is_some(),
            ChainSel::Native(k) => self.native_by_key(k).is_some(),
        }
    }

    /// The selected rule and its index in the chain.
    pub fn selected_rule(&self) -> Option<(usize, &Rule)> {
        let RowRef::Rule(idx) = *self.rules.visible.get(self.rules.cursor)? else {
            return None;
        };
        self.chain()?.rules.get(idx).map(|r| (idx, r))
    }

    /// The rule index under the cursor, for coming back to it (a deleted row: the rule after).
    fn cursor_rule(&self) -> usize {
        self.rules.visible[self.rules.cursor.min(self.rules.visible.len())..]
            .iter()
            .find_map(|r| match r {
                RowRef::Rule(i) => Some(*i),
                RowRef::Deleted(_) => None,
            })
            .unwrap_or(0)
    }

    /// The short "refreshed ... ago" text; a change in it is worth a redraw.
    pub fn age_label(&self) -> String {
        match &self.snapshot {
            None => "waiting for the first read…".to_string(),
            Some(s) => {
                let secs = self
                    .now
                    .duration_since(s.taken_at)
                    .map_or(0, |d| d.as_secs());
                match secs {
                    0 => "now".to_string(),
                    s if s < 60 => format!("{s}s ago"),
                    s if s < 3600 => format!("{}m ago", s / 60),
                    s => format!("{}h ago", s / 3600),
                }
            }
        }
    }

    /// When something is due before the next whole second (events to apply, rows to fade).
    pub fn next_deadline(&self) -> Option<SystemTime> {
        self.ct.next_deadline()
    }

    fn ct_visible(&self) -> bool {
        self.screen == Screen::Conntrack
    }

    /// Tell the Conntrack screen how many rows it has, after anything that may change that.
    fn sync_ct_viewport(&mut self) {
        let rows = view::ct_viewport_rows(self);
        if rows != self.ct.viewport {
            self.ct.resized(rows);
        }
    }

    /// Feed one message; returns the side effects it asks for.
    pub fn update(&mut self, msg: Msg) -> Vec<Cmd> {
        self.step(msg).cmds
    }

    /// Feed one message; the side effects it asks for, and whether the screen changed. A key
    /// that means something redraws (the diff of an unchanged frame sends nothing); what comes
    /// from the sources and the clock redraws only when it changed what is shown.
    pub fn step(&mut self, msg: Msg) -> Update {
        match msg {
            Msg::Key(ev) => {
                if ev.kind != KeyEventKind::Press {
                    return Update::default();
                }
                let u = self.on_key(ev);
                self.sync_ct_viewport();
                u
            }
            Msg::Resize(w, h) => {
                self.size = (w, h);
                self.clamp_scroll();
                let rows = self.trace_rows();
                self.trace.scroll_into_view(rows);
                self.sync_ct_viewport();
                Update::redraw(Vec::new())
            }
            Msg::Snapshot(s) => {
                self.on_snapshot(*s);
                Update::redraw(self.stale_after_commit())
            }
            Msg::Conntrack(feed, at) => {
                if later_than(at, self.now) {
                    self.now = at;
                }
                let visible = self.ct_visible();
                let changed = self.ct.on_feed(*feed, at, visible) && visible;
                self.sync_ct_viewport();
                Update {
                    cmds: Vec::new(),
                    redraw: changed,
                }
            }
            Msg::Tick(now) => {
                let marks = self.lint.poll();
                let before = self.age_label();
                let second = whole_seconds(self.now);
                self.now = now;
                let countdown = self.countdown_tick(now);
                let visible = self.ct_visible();
                let ct_changed = self.ct.on_tick(now, visible) && visible;
                // Timeouts and ages count down once a second.
                let ct_second = visible && whole_seconds(now) != second;
                self.sync_ct_viewport();
                Update {
                    redraw: countdown.redraw
                        || marks
                        || self.age_label() != before
                        || ct_changed
                        || ct_second,
                    cmds: countdown.cmds,
                }
            }
            Msg::Quit => {
                self.quit = true;
                Update::quiet(vec![Cmd::Quit])
            }
            Msg::Known(k) => {
                self.edit.known = k;
                Update::default()
            }
            Msg::Validated { id, result } => Update::redraw(self.on_validated(id, result)),
            Msg::Commit(p) => Update::redraw(self.on_commit(p)),
            Msg::StateError(e) => {
                self.edit.message = Some((e, true));
                Update::redraw(Vec::new())
            }
            Msg::Said(text, bad) => {
                self.edit.say(text, bad);
                Update::redraw(Vec::new())
            }
            Msg::Mouse(ev) => self.on_mouse(ev),
            Msg::Stale {
                found,
                after_commit,
            } => {
                self.on_stale(*found, after_commit);
                Update::redraw(Vec::new())
            }
            Msg::Audit(tail) => {
                self.audit = Some(tail);
                Update {
                    cmds: Vec::new(),
                    redraw: matches!(self.popup, Some(Popup::Messages { .. })),
                }
            }
        }
    }

    fn on_snapshot(&mut self, snap: RulesetSnapshot) {
        let families: Vec<&Ruleset> = Family::ALL
            .iter()
            .filter_map(|&f| snap.family(f).ruleset())
            .collect();
        // At the same nf_tables generation as the last snapshot, the rules are the same: only
        // their counters moved, and the rates are worked out in place.
        let same = snap.nft_generation.is_some()
            && snap.nft_generation == self.snapshot.as_ref().and_then(|s| s.nft_generation);
        if same {
            self.rates.update_counters(snap.taken_at, &families);
        } else {
            self.rates.update(snap.taken_at, families);
        }
        self.native_rates.update(
            snap.taken_at,
            snap.native.iter().flat_map(|t| {
                t.chains.iter().map(|c| {
                    let key = NativeKey {
                        family: t.family.clone(),
                        table: t.name.clone(),
                        chain: c.name.clone(),
                    };
                    let counts = c.rules.iter().map(|r| NativeCount {
                        handle: r.handle,
                        packets: r.packets,
                    });
                    (key, counts)
                })
            }),
        );
        if snap.taken_at > self.now {
            self.now = snap.taken_at;
        }
        let locals = self.trace.local_addrs(&snap);
        let before = self.lint.fingerprint();
        self.lint.update(&snap, locals);
        self.snapshot = Some(snap);
        self.rules_changed();
        // Another tool changed the rules while the Reach popup is open: ask again, and say so.
        if before.is_some() && self.lint.fingerprint() != before {
            self.reach_again();
        }
        if self.edit.resume.is_some() {
            self.ask_resume();
        }
    }

    /// The rule sets shown changed (a snapshot, a staged edit): rebuild the tree, keep the
    /// selected chain if it is still there, and recompute the rows.
    pub(super) fn rules_changed(&mut self) {
        self.rules.refs = Family::ALL
            .iter()
            .filter_map(|&f| Some((f, self.shown(f)?)))
            .flat_map(|(f, rs)| rs.tables.iter().map(move |t| (f, t)))
            .map(|(f, t)| {
                let refs = t.all_references();
                let refs = refs.into_iter().map(|(c, n)| (c.to_string(), n)).collect();
                (f, t.name.clone(), refs)
            })
            .collect();
        self.rebuild_tree();
        if self.shown_chain().is_none_or(|s| !self.exists(&s)) {
            self.rules.native = None;
            self.rules.selected = None;
            match self.first_chain() {
                Some(ChainSel::Iptables(k)) => self.rules.selected = Some(k),
                Some(ChainSel::Native(k)) => self.rules.native = Some(k),
                None => {}
            }
            self.rules.cursor = 0;
            self.rules.offset = 0;
        }
        self.refilter();
    }

    fn first_chain(&self) -> Option<ChainSel> {
        // Start where people look first: the filter table's INPUT chain.
        let chains = || {
            self.rules.tree.iter().filter_map(|r| match r {
                TreeRow::Chain(k) => Some(k),
                _ => None,
            })
        };
        chains()
            .find(|k| k.table == "filter" && k.chain == "INPUT")
            .or_else(|| chains().next())
            .cloned()
            .map(ChainSel::Iptables)
            .or_else(|| self.tree_chains().into_iter().next())
    }

    /// The chains of the tree, in its order, of either kind.
    fn tree_chains(&self) -> Vec<ChainSel> {
        self.rules
            .tree
            .iter()
            .filter_map(|r| match r {
                TreeRow::Chain(k) => Some(ChainSel::Iptables(k.clone())),
                TreeRow::NativeChain(k) => Some(ChainSel::Native(k.clone())),
                _ => None,
            })
            .collect()
    }

    pub(super) fn rebuild_tree(&mut self) {
        let mut rows = Vec::new();
        if let Some(s) = &self.snapshot {
            for f in Family::ALL {
                let data = s.family(f);
                if matches!(data, crate::source::FamilyData::Absent) {
                    continue;
                }
                rows.push(TreeRow::Family(f));
                if data.ruleset().is_none() {
                    continue;
                }
                let Some(rs) = self.shown(f) else { continue };
                let mut tables: Vec<_> = rs.tables.iter().collect();
                tables.sort_by_key(|t| table_rank(&t.name));
                for t in tables {
                    rows.push(TreeRow::Table(f, t.name.clone()));
                    for c in &t.chains {
                        rows.push(TreeRow::Chain(ChainKey {
                            family: f,
                            table: t.name.clone(),
                            chain: c.name.clone(),
                        }));
                    }
                }
            }
            // The native tables, read-only, after the iptables ones: their families (inet,
            // arp, bridge, netdev...) are not iptables'.
            if !s.native.is_empty() {
                rows.push(TreeRow::NativeHeading);
            }
            for t in &s.native {
                rows.push(TreeRow::NativeTable(t.family.clone(), t.name.clone()));
                for c in &t.chains {
                    rows.push(TreeRow::NativeChain(NativeKey {
                        family: t.family.clone(),
                        table: t.name.clone(),
                        chain: c.name.clone(),
                    }));
                }
            }
        }
        self.rules.tree = rows;
    }

    /// The Rules filter's words, lower case: a row passes when its text holds them all.
    pub fn filter_words(&self) -> Vec<String> {
        self.rules
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect()
    }

    /// Recompute which rules pass the filter, keeping the cursor in range.
    pub(super) fn refilter(&mut self) {
        let needles = self.filter_words();
        if let Some((_, chain)) = self.native_chain() {
            let n = chain.rules.len();
            self.rules.visible = (0..n)
                .filter(|&i| {
                    let hay = chain.rules[i].text.to_lowercase();
                    needles.iter().all(|n| hay.contains(n.as_str()))
                })
                .map(RowRef::Rule)
                .collect();
            self.clamp_scroll();
            return;
        }
        let Some(key) = self.rules.selected.clone() else {
            self.rules.visible = Vec::new();
            self.clamp_scroll();
            return;
        };
        let rows = self.chain_rows(&key).rows;
        self.rules.visible = if needles.is_empty() {
            rows
        } else {
            rows.into_iter()
                .filter(|&row| {
                    self.row_rule(&key, row).is_some_and(|r| {
                        let hay = filter_haystack(r, key.family);
                        needles.iter().all(|n| hay.contains(n.as_str()))
                    })
                })
                .collect()
        };
        self.clamp_scroll();
    }

    fn rule_rows(&self) -> usize {
        view::rules_viewport_rows(self.size)
    }

    fn tree_rows(&self) -> usize {
        view::tree_viewport_rows(self.size)
    }

    pub(super) fn clamp_scroll(&mut self) {
        let rows = self.rule_rows();
        keep_in_view(
            &mut self.rules.cursor,
            &mut self.rules.offset,
            self.rules.visible.len(),
            rows,
        );
        // Wrapped rows are taller: the cursor's row must still be on screen, whole.
        if self.rules.wrap {
            self.rules.offset = whole_in_view(self.rules.offset, self.rules.cursor, rows, |i| {
                view::rules::row_height_at(self, i)
            });
        }
        // The tree scrolls to keep the selected chain in view.
        if let Some(i) = self.tree_index() {
            let rows = self.tree_rows().max(1);
            if i < self.rules.tree_offset {
                self.rules.tree_offset = i;
            } else if i >= self.rules.tree_offset + rows {
                self.rules.tree_offset = i + 1 - rows;
            }
        }
        self.rules.tree_offset = self
            .rules
            .tree_offset
            .min(self.rules.tree.len().saturating_sub(self.tree_rows()));
    }

    /// The tree row of the selected chain.
    pub fn tree_index(&self) -> Option<usize> {
        if let Some(n) = &self.rules.native {
            return self
                .rules
                .tree
                .iter()
                .position(|r| matches!(r, TreeRow::NativeChain(k) if k == n));
        }
        let sel = self.rules.selected.as_ref()?;
        self.rules
            .tree
            .iter()
            .position(|r| matches!(r, TreeRow::Chain(k) if k == sel))
    }

    /// Show a chain of either kind with the cursor on its rule `rule`.
    pub(super) fn select(&mut self, sel: ChainSel, rule: usize) {
        match sel {
            ChainSel::Iptables(k) => self.select_chain(k, rule),
            ChainSel::Native(k) => {
                self.rules.native = Some(k);
                self.rules.selected = None;
                self.show_rule(rule);
            }
        }
    }

    /// Show chain `key` with the cursor on its rule `rule` (0-based, as the chain is shown).
    pub(super) fn select_chain(&mut self, key: ChainKey, rule: usize) {
        self.rules.native = None;
        self.rules.selected = Some(key);
        self.show_rule(rule);
    }

    /// The rows of the chain just selected, the cursor on rule `rule`. The filter stays: it is
    /// also the search that `n` and `N` step through, across chains.
    fn show_rule(&mut self, rule: usize) {
        self.rules.offset = 0;
        self.rules.hscroll = 0;
        self.rules.cursor = 0;
        self.refilter();
        self.rules.cursor = self
            .rules
            .visible
            .iter()
            .position(|&r| r == RowRef::Rule(rule))
            .unwrap_or(rule);
        self.rules.offset = self.rules.cursor.saturating_sub(self.rule_rows() / 2);
        self.clamp_scroll();
    }

    /// The rules of a chain (by index) that the filter words match, in order.
    fn hits_in(&self, sel: &ChainSel, needles: &[String]) -> Vec<usize> {
        let all = |hay: &str| needles.iter().all(|n| hay.contains(n.as_str()));
        match sel {
            ChainSel::Native(k) => self.native_by_key(k).map_or_else(Vec::new, |(_, c)| {
                (0..c.rules.len())
                    .filter(|&i| all(&c.rules[i].text.to_lowercase()))
                    .collect()
            }),
            ChainSel::Iptables(k) => self.chain_by_key(k).map_or_else(Vec::new, |c| {
                (0..c.rules.len())
                    .filter(|&i| all(&filter_haystack(&c.rules[i], k.family)))
                    .collect()
            }),
        }
    }

    /// `n` / `N`: the next (previous) rule the filter matches, in this chain, then in the
    /// chains after (before) it in the tree, of both families and the native tables, round
    /// from the end to the start.
    fn search_step(&mut self, dir: isize) {
        let needles = self.filter_words();
        if needles.is_empty() {
            self.edit.say(
                "no search: type one with / (n and N then step through its matches in every chain)",
                true,
            );
            return;
        }
        let n = self.rules.visible.len();
        if dir > 0 && self.rules.cursor + 1 < n {
            self.move_cursor(1);
            return;
        }
        if dir < 0 && self.rules.cursor > 0 && n > 0 {
            self.move_cursor(-1);
            return;
        }
        let chains = self.tree_chains();
        let len = chains.len() as isize;
        let shown = self.shown_chain();
        let cur = shown
            .as_ref()
            .and_then(|s| chains.iter().position(|c| c == s))
            .unwrap_or(0) as isize;
        for step in 1..=len {
            let at = cur + dir * step;
            let wrapped = at < 0 || at >= len;
            let sel = &chains[at.rem_euclid(len) as usize];
            let hits = self.hits_in(sel, &needles);
            let (Some(&first), Some(&last)) = (hits.first(), hits.last()) else {
                continue;
            };
            let sel = sel.clone();
            self.rules.back.clear();
            self.screen_back = None;
            self.select(sel, if dir > 0 { first } else { last });
            let round = match (wrapped, dir > 0) {
                (false, _) => "",
                (true, true) => " (from the top)",
                (true, false) => " (from the end)",
            };
            let plural = if hits.len() == 1 { "" } else { "s" };
            // The title names the chain: the footer says little, to fit at 80 columns.
            self.edit
                .say(format!("{} hit{plural} here{round}", hits.len()), false);
            return;
        }
        self.edit.say(
            format!(
                "no other chain has a rule matching \"{}\"",
                self.rules.filter
            ),
            false,
        );
    }

    /// Move the tree selection by `delta` chains.
    fn move_tree(&mut self, delta: isize) {
        let chains = self.tree_chains();
        if chains.is_empty() {
            return;
        }
        let shown = self.shown_chain();
        let cur = shown
            .as_ref()
            .and_then(|s| chains.iter().position(|k| k == s))
            .unwrap_or(0);
        let next = (cur as isize + delta).clamp(0, chains.len() as isize - 1) as usize;
        if next != cur || shown.is_none() {
            let sel = chains[next].clone();
            self.rules.back.clear();
            self.screen_back = None;
            self.select(sel, 0);
        }
    }

    fn move_cursor(&mut self, delta: isize) {
        let n = self.rules.visible.len();
        if n == 0 {
            return;
        }
        self.rules.cursor = (self.rules.cursor as isize + delta).clamp(0, n as isize - 1) as usize;
        self.clamp_scroll();
    }

    /// Copy `text` to the terminal's clipboard; the footer says what.
    pub(super) fn copy(&mut self, text: String) -> Vec<Cmd> {
        self.edit.say(super::clipboard::described(&text), false);
        vec![Cmd::Clipboard(text)]
    }

    /// Write `text` to a new file named after `stem` in the write directory (`W`).
    pub(super) fn write_view(&self, stem: &str, ext: &str, text: String, what: String) -> Cmd {
        let stamp = jiff::Timestamp::try_from(self.now)
            .map(|t| t.strftime("%Y%m%d-%H%M%S").to_string())
            .unwrap_or_default();
        let safe: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Cmd::WriteFile {
            path: self.write_dir.join(format!("nfscope-{safe}-{stamp}.{ext}")),
            text,
            what,
        }
    }

    /// A click or the wheel: a click selects the row, tree entry or tab under it (on a rule's
    /// jump target, opens the chain), the wheel moves the selection under the pointer.
    fn on_mouse(&mut self, ev: ratatui::crossterm::event::MouseEvent) -> Update {
        use ratatui::crossterm::event::{MouseButton, MouseEventKind};
        let (x, y) = (ev.column, ev.row);
        let wheel = match ev.kind {
            MouseEventKind::ScrollUp => Some(-1),
            MouseEventKind::ScrollDown => Some(1),
            _ => None,
        };
        let click = matches!(ev.kind, MouseEventKind::Down(MouseButton::Left));
        if wheel.is_none() && !click {
            return Update::default();
        }
        if let Some(p) = self.popup.clone() {
            let action = match wheel {
                Some(-1) => Action::Up,
                Some(_) => Action::Down,
                None => return self.on_popup_click(p, x, y),
            };
            // A question or an editor waits for its keys; the wheel scrolls the others.
            if matches!(p, Popup::Confirm(_) | Popup::Ask(_) | Popup::Editor(_)) {
                return Update::default();
            }
            return Update::redraw(self.on_popup_action(p, action));
        }
        if self.mode == InputMode::Filter {
            return Update::default();
        }
        // The tabs, on the header's second line.
        if click && y == 1 {
            return match view::header::tab_at(self, x) {
                Some(s) => {
                    self.show_screen(s);
                    Update::redraw(Vec::new())
                }
                None => Update::default(),
            };
        }
        let step = wheel.unwrap_or(0) * 3;
        match self.screen {
            Screen::Rules => {
                if let Some(i) = view::rules::tree_row_at(self, x, y) {
                    if let Some(w) = wheel {
                        self.move_tree(w);
                    } else if let Some(sel) = match &self.rules.tree[i] {
                        TreeRow::Chain(k) => Some(ChainSel::Iptables(k.clone())),
                        TreeRow::NativeChain(k) => Some(ChainSel::Native(k.clone())),
                        _ => None,
                    } {
                        self.rules.focus = Focus::Tree;
                        if self.shown_chain().as_ref() != Some(&sel) {
                            self.rules.back.clear();
                            self.screen_back = None;
                            self.select(sel, 0);
                        }
                    }
                } else if wheel.is_some() {
                    self.move_cursor(step);
                } else if let Some((i, on_target)) = view::rules::rule_row_at(self, x, y) {
                    self.rules.focus = Focus::Rules;
                    self.rules.cursor = i;
                    self.clamp_scroll();
                    let jumps = self
                        .selected_rule()
                        .is_some_and(|(_, r)| self.jump_target(r).is_some());
                    if on_target && jumps {
                        self.enter_rule();
                    }
                } else {
                    return Update::default();
                }
            }
            Screen::Conntrack => {
                let rows = self.ct.viewport;
                // The row under the pointer, in the list, the group view or the event log
                // (all under a border and a column header).
                let list = view::conntrack::areas(self).list;
                let ct = &mut self.ct;
                let top = list.y + 2;
                let (cursor, offset) = if ct.log.open {
                    (ct.log.cursor, ct.log.offset)
                } else if ct.group.is_some() {
                    (ct.group_cursor, ct.group_offset)
                } else {
                    (ct.cursor, ct.offset)
                };
                let delta = if wheel.is_some() {
                    step
                } else if y < top || y + 1 >= list.y + list.height {
                    return Update::default();
                } else {
                    (offset + usize::from(y - top)) as isize - cursor as isize
                };
                if ct.log.open {
                    ct.log.move_cursor(delta, rows);
                } else {
                    ct.move_cursor(delta);
                }
                self.sync_ct_viewport();
            }
            Screen::Trace => {
                let rows = self.trace_rows();
                if wheel.is_some() {
                    self.trace.move_cursor(step, rows);
                } else if let Some(i) = view::trace::step_row_at(self, x, y) {
                    self.trace.focus = TraceFocus::Steps;
                    let delta = i as isize - self.trace.cursor as isize;
                    self.trace.move_cursor(delta, rows);
                } else if view::trace::form_at(self, x, y) {
                    self.trace.focus = TraceFocus::Form;
                } else {
                    return Update::default();
                }
            }
            Screen::Changes => {
                let n = self.edit.count();
                if let (Some(w), true) = (wheel, view::changes::over_ops(self, x, y)) {
                    // Over the operations, the wheel moves through them.
                    self.edit.cursor = self
                        .edit
                        .cursor
                        .saturating_add_signed(w)
                        .min(n.saturating_sub(1));
                } else if let Some(i) = view::changes::op_at(self, x, y) {
                    self.edit.cursor = i;
                } else if let Some(w) = wheel {
                    let a = if w < 0 {
                        Action::PageUp
                    } else {
                        Action::PageDown
                    };
                    self.edit.diff_scroll = self.edit.diff_scroll.moved(a, 3, u16::MAX);
                } else {
                    return Update::default();
                }
            }
            Screen::Flow => {
                if let Some(w) = wheel {
                    self.on_flow_action(if w < 0 { Action::Up } else { Action::Down });
                } else if let Some((col, row)) = view::flow::box_at(self, x, y) {
                    // A click selects a box; a click on the selected box opens its chain.
                    let columns = super::flow::layout(self).columns;
                    let n = columns.get(col).map_or(0, Vec::len);
                    let again =
                        self.flow.col == col && self.flow.row.min(n.saturating_sub(1)) == row;
                    self.flow.col = col;
                    self.flow.row = row;
                    self.flow.message = None;
                    if again {
                        self.on_flow_action(Action::Enter);
                    }
                } else {
                    return Update::default();
                }
            }
        }
        Update::redraw(Vec::new())
    }

    /// A click in a popup: in the jump popup, on a chain, opens it.
    fn on_popup_click(&mut self, p: Popup, x: u16, y: u16) -> Update {
        let Popup::Jump(j) = &p else {
            return Update::default();
        };
        let area = view::jump::area(self.size);
        let inner = ratatui::widgets::Block::bordered().inner(area);
        // The query line, then the list.
        if !inner.contains(ratatui::layout::Position { x, y }) || y <= inner.y {
            return Update::default();
        }
        let rows = view::jump::list_rows(self.size);
        let offset = j.cursor.saturating_sub(rows.saturating_sub(1));
        let at = offset + usize::from(y - inner.y - 1);
        if at >= j.matches.len() {
            return Update::default();
        }
        let mut j = j.clone();
        j.cursor = at;
        Update::redraw(self.on_popup_action(Popup::Jump(j), Action::Enter))
    }

    /// A key press: redraws unless the key means nothing here.
    fn on_key(&mut self, ev: KeyEvent) -> Update {
        // Ctrl-C quits at once, whatever is open or staged.
        if ev.modifiers.contains(KeyModifiers::CONTROL) && ev.code == KeyCode::Char('c') {
            self.quit = true;
            return Update::quiet(vec![Cmd::Quit]);
        }
        if self.mode == InputMode::Filter {
            return Update::redraw(self.on_filter_key(ev));
        }
        let screen = [self.screen.scope(), Scope::Global];
        let form = self.popup.is_none()
            && self.screen == Screen::Trace
            && self.trace.focus == TraceFocus::Form;
        let scopes: &[Scope] = match &self.popup {
            Some(p) => p.scopes(),
            None if form => &[Scope::TraceForm],
            None => &screen,
        };
        let Some(action) = keymap::resolve(&ev, scopes) else {
            if matches!(self.popup, Some(Popup::Editor(_))) {
                self.editor_key(ev);
                return Update::redraw(Vec::new());
            }
            if let Some(Popup::Jump(j)) = &mut self.popup {
                if let KeyCode::Char(c) = ev.code
                    && !ev.modifiers.contains(KeyModifiers::CONTROL)
                {
                    j.type_char(c);
                    return Update::redraw(Vec::new());
                }
                return Update::default();
            }
            // Typing into the Trace screen's form (Space cycles a fixed-value field).
            if form
                && let KeyCode::Char(c) = ev.code
                && !ev.modifiers.contains(KeyModifiers::CONTROL)
            {
                if c == ' ' {
                    self.trace.space();
                } else {
                    self.trace.type_char(c);
                }
                return Update::redraw(Vec::new());
            }
            return Update::default();
        };
        if let Some(p) = self.popup.clone() {
            return Update::redraw(self.on_popup_action(p, action));
        }
        Update::redraw(self.on_action(action))
    }

    fn on_filter_key(&mut self, ev: KeyEvent) -> Vec<Cmd> {
        if ev.modifiers.contains(KeyModifiers::CONTROL) && ev.code == KeyCode::Char('c') {
            self.quit = true;
            return vec![Cmd::Quit];
        }
        if self.screen == Screen::Conntrack {
            self.on_ct_filter_key(ev);
            return Vec::new();
        }
        match ev.code {
            KeyCode::Enter => self.mode = InputMode::Normal,
            KeyCode::Esc => {
                self.mode = InputMode::Normal;
                self.rules.filter.clear();
                self.refilter();
            }
            KeyCode::Backspace => {
                self.rules.filter.pop();
                self.refilter();
            }
            KeyCode::Char(c) if !ev.modifiers.contains(KeyModifiers::CONTROL) => {
                self.rules.filter.push(c);
                self.rules.cursor = 0;
                self.refilter();
            }
            KeyCode::Up | KeyCode::Down => {
                self.move_cursor(if ev.code == KeyCode::Up { -1 } else { 1 });
            }
            _ => {}
        }
        Vec::new()
    }

    /// Typing a conntrack filter: it applies on Enter; a bad one is refused with the reason
    /// underlined, and the filter before it stays applied.
    fn on_ct_filter_key(&mut self, ev: KeyEvent) {
        let now = self.now;
        let ct = &mut self.ct;
        match ev.code {
            KeyCode::Enter => {
                let expr = ct.input.clone();
                match ct.set_filter(&expr, now) {
                    Ok(()) => {
                        ct.input_error = None;
                        self.mode = InputMode::Normal;
                    }
                    Err(e) => ct.input_error = Some(e),
                }
            }
            KeyCode::Esc => {
                ct.clear_filter(now);
                self.mode = InputMode::Normal;
            }
            KeyCode::Backspace => {
                ct.input.pop();
                ct.input_error = None;
            }
            KeyCode::Char('u') if ev.modifiers.contains(KeyModifiers::CONTROL) => {
                ct.input.clear();
                ct.input_error = None;
            }
            KeyCode::Char(c) if !ev.modifiers.contains(KeyModifiers::CONTROL) => {
                ct.input.push(c);
                ct.input_error = None;
            }
            _ => {}
        }
    }

    fn on_popup_action(&mut self, popup: Popup, action: Action) -> Vec<Cmd> {
        if popup.is_edit() {
            return self.on_edit_popup(popup, action);
        }
        if let Popup::Jump(mut j) = popup {
            match action {
                Action::Enter => {
                    self.popup = None;
                    match j.chosen().cloned() {
                        Some(sel) => {
                            self.push_back();
                            self.screen_back = None;
                            self.rules.focus = Focus::Rules;
                            self.select(sel, 0);
                            self.show_screen(Screen::Rules);
                        }
                        None => self
                            .edit
                            .say(format!("no chain matches \"{}\"", j.query), true),
                    }
                    return Vec::new();
                }
                Action::CancelEdit => {
                    self.popup = None;
                    return Vec::new();
                }
                Action::PrevField | Action::Up => j.move_cursor(-1),
                Action::NextField | Action::Down => j.move_cursor(1),
                Action::Back => j.delete_char(),
                _ => {}
            }
            self.popup = Some(Popup::Jump(j));
            return Vec::new();
        }
        // The Reach popup's own keys; closing, help and quitting as for every popup.
        let popup = match popup {
            Popup::Reach(v)
                if !matches!(action, Action::ClosePopup | Action::Quit | Action::Help) =>
            {
                return self.on_reach_action(v, action);
            }
            p => p,
        };
        if let Popup::Confirm(question) = &popup
            && action != Action::Quit
        {
            self.popup = None;
            if action == Action::Confirm {
                return vec![self.ct.confirmed((**question).clone(), self.now)];
            }
            return Vec::new();
        }
        let page = self.size.1.saturating_sub(8).max(1);
        let help_max = view::help_max_scroll(self);
        match action {
            Action::ClosePopup => {
                self.popup = None;
                self.ct.detail = None;
            }
            Action::Quit => {
                self.quit = true;
                return vec![Cmd::Quit];
            }
            Action::Help => {
                self.popup = if matches!(popup, Popup::Help { .. }) {
                    None
                } else {
                    Some(Popup::Help {
                        scroll: Scroll::TOP,
                    })
                }
            }
            a => {
                self.popup = Some(match popup {
                    // Kept within what can be shown, so Up works at once after End.
                    Popup::Help { scroll } => Popup::Help {
                        scroll: scroll.moved(a, page, help_max),
                    },
                    Popup::Detail { scroll } => Popup::Detail {
                        scroll: scroll.moved(a, page, u16::MAX),
                    },
                    Popup::Messages { scroll } => Popup::Messages {
                        scroll: scroll.moved(a, page, u16::MAX),
                    },
                    Popup::Ask(_)
                    | Popup::Editor(_)
                    | Popup::Commit
                    | Popup::Countdown
                    | Popup::Jump(_)
                    | Popup::Reach(_) => popup,
                    Popup::CtDetail | Popup::Confirm(_) => {
                        if let Some(d) = &mut self.ct.detail {
                            d.scroll = d.scroll.moved(a, page, u16::MAX);
                        }
                        popup
                    }
                })
            }
        }
        Vec::new()
    }

    /// Global actions first, then the current screen's.
    fn on_action(&mut self, action: Action) -> Vec<Cmd> {
        match action {
            // Staged work the demo cannot keep: asked first (elsewhere it is saved and said).
            Action::Quit if self.edit.count() > 0 && !self.edit.persist => {
                self.popup = Some(Popup::Ask(Box::new(super::edit::Ask::QuitLosing {
                    ops: self.edit.count(),
                })));
            }
            Action::Quit => {
                self.quit = true;
                return vec![Cmd::Quit];
            }
            Action::Help => {
                self.popup = Some(Popup::Help {
                    scroll: Scroll::TOP,
                })
            }
            Action::ShowMessages => {
                self.popup = Some(Popup::Messages {
                    scroll: Scroll::TOP,
                })
            }
            Action::NextScreen | Action::PrevScreen => {
                let n = Screen::ALL.len();
                let i = Screen::ALL
                    .iter()
                    .position(|s| *s == self.screen)
                    .unwrap_or(0);
                let next = if action == Action::NextScreen {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.show_screen(Screen::ALL[next]);
            }
            Action::ShowRules => self.show_screen(Screen::Rules),
            Action::ShowConntrack => self.show_screen(Screen::Conntrack),
            Action::ShowTrace => self.show_screen(Screen::Trace),
            Action::ShowFlow => self.show_screen(Screen::Flow),
            Action::ShowChanges => self.show_screen(Screen::Changes),
            Action::JumpChain => {
                let chains = self.tree_chains();
                if chains.is_empty() {
                    self.edit
                        .say("no chain to jump to: no rule set is loaded", true);
                } else {
                    self.popup = Some(Popup::Jump(Box::new(super::jump::Jump::new(chains))));
                }
            }
            Action::EventLog => {
                // From another screen it opens the log; on the Conntrack screen it toggles.
                let open = self.screen != Screen::Conntrack || !self.ct.log.open;
                self.show_screen(Screen::Conntrack);
                self.ct.show_log(open, self.now);
            }
            _ => match self.screen {
                Screen::Rules => return self.on_rules_action(action),
                Screen::Conntrack => return self.on_ct_action(action),
                Screen::Trace => return self.on_trace_action(action),
                Screen::Flow => self.on_flow_action(action),
                Screen::Changes => return self.on_changes_action(action),
            },
        }
        Vec::new()
    }

    fn show_screen(&mut self, screen: Screen) {
        self.screen = screen;
        if screen == Screen::Conntrack {
            self.sync_ct_viewport();
            self.ct.show(self.now);
        }
    }

    /// `X`: look for the stale entries on a worker, or show every entry again.
    fn stale_flows(&mut self) -> Vec<Cmd> {
        let now = self.now;
        let ct = &mut self.ct;
        if ct.stale.is_some() {
            ct.set_stale(None, now);
            ct.say("every entry again".into(), false, now);
            return Vec::new();
        }
        if ct.stale_running {
            ct.say("still looking for stale connections…".into(), false, now);
            return Vec::new();
        }
        let Some(snap) = &self.snapshot else {
            ct.say("no rule set is loaded yet".into(), true, now);
            return Vec::new();
        };
        if ct.log.open {
            ct.show_log(false, now);
        }
        let entries: Vec<crate::conntrack::Entry> =
            ct.table.rows().iter().map(|r| r.entry.clone()).collect();
        ct.stale_running = true;
        ct.say(
            format!(
                "looking for stale connections among {} entries…",
                entries.len()
            ),
            false,
            now,
        );
        vec![Cmd::StaleScan {
            entries,
            snap: Box::new(snap.clone()),
            after_commit: false,
        }]
    }

    /// After a commit, with the rule set read again: count the stale entries on a worker.
    fn stale_after_commit(&mut self) -> Vec<Cmd> {
        if !std::mem::take(&mut self.stale_check) || self.ct.table.is_empty() {
            return Vec::new();
        }
        let Some(snap) = &self.snapshot else {
            return Vec::new();
        };
        let entries = self
            .ct
            .table
            .rows()
            .iter()
            .map(|r| r.entry.clone())
            .collect();
        vec![Cmd::StaleScan {
            entries,
            snap: Box::new(snap.clone()),
            after_commit: true,
        }]
    }

    /// A stale-flow scan answered.
    fn on_stale(&mut self, found: crate::trace::stale::Found, after_commit: bool) {
        let now = self.now;
        let n = found.stale.len();
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        if after_commit {
            if n > 0 {
                self.edit.say(
                    format!(
                        "{} would not be accepted anew: X on the Conntrack screen lists them",
                        plural(n, "live connection", "live connections")
                    ),
                    false,
                );
            }
            return;
        }
        let ct = &mut self.ct;
        ct.stale_running = false;
        let maybe = if found.maybe > 0 {
            format!(" ({} maybe)", found.maybe)
        } else {
            String::new()
        };
        let mut said = if n == 0 {
            format!("no stale connection{maybe} · X: all again")
        } else {
            format!(
                "{}{maybe} · Enter: why · D deletes them · X: all",
                plural(n, "stale connection", "stale connections")
            )
        };
        if let Some(w) = found.warnings.first() {
            said.push_str(&format!("; {w}"));
        }
        ct.set_stale(Some(found), now);
        ct.say(said, false, now);
    }

    fn on_ct_action(&mut self, action: Action) -> Vec<Cmd> {
        if action == Action::StaleFlows {
            return self.stale_flows();
        }
        let now = self.now;
        let page = self.ct.viewport.max(1) as isize;
        let ct = &mut self.ct;
        // Keys that mean the same in the table and in the event log.
        match action {
            Action::Yank if ct.group.is_some() && !ct.log.open => {
                ct.say(
                    "this is a group view: Enter lists the group's entries".into(),
                    true,
                    now,
                );
                return Vec::new();
            }
            Action::Yank => {
                if let Some(text) = ct.yank_text() {
                    // The footer shows the newest of its notice and the App's message.
                    ct.notice = None;
                    return self.copy(text);
                }
                let what = if ct.log.open { "event" } else { "entry" };
                ct.say(format!("no {what} is selected to copy"), true, now);
                return Vec::new();
            }
            Action::WriteView => {
                ct.notice = None;
                let (stem, text, what) = ct.jsonl(now);
                return vec![self.write_view(stem, "jsonl", text, what)];
            }
            Action::Filter => {
                ct.input = ct
                    .active_filter()
                    .map_or_else(String::new, |f| f.source().to_string());
                ct.input_error = None;
                self.mode = InputMode::Filter;
                return Vec::new();
            }
            Action::ExactNumbers => {
                self.exact = !self.exact;
                return Vec::new();
            }
            Action::TraceEntry if ct.group.is_none() || ct.log.open => {
                let entry = ct.selected_entry().cloned();
                match entry {
                    Some(e) => {
                        self.trace.fill_from_entry(&e);
                        self.run_trace();
                        self.show_screen(Screen::Trace);
                    }
                    None => ct.say("no entry is selected to trace".into(), true, now),
                }
                return Vec::new();
            }
            _ => {}
        }
        if ct.log.open {
            let rows = ct.viewport;
            match action {
                Action::Up => ct.log.move_cursor(-1, rows),
                Action::Down => ct.log.move_cursor(1, rows),
                Action::PageUp => ct.log.move_cursor(-page, rows),
                Action::PageDown => ct.log.move_cursor(page, rows),
                Action::Top => ct.log.move_cursor(isize::MIN / 2, rows),
                Action::Bottom => ct.log.move_cursor(isize::MAX / 2, rows),
                Action::ClearFilter | Action::Back => ct.show_log(false, now),
                Action::Enter | Action::Details if ct.open_event_detail() => {
                    self.popup = Some(Popup::CtDetail);
                }
                Action::Enter | Action::Details => {
                    ct.say("no event here to open".into(), true, now);
                }
                _ => ct.say(
                    "that key acts on the table: E or Esc goes back to it".into(),
                    true,
                    now,
                ),
            }
            return Vec::new();
        }
        match action {
            Action::Up => ct.move_cursor(-1),
            Action::Down => ct.move_cursor(1),
            Action::PageUp => ct.move_cursor(-page),
            Action::PageDown => ct.move_cursor(page),
            Action::Top => ct.move_cursor(isize::MIN / 2),
            Action::Bottom => ct.move_cursor(isize::MAX / 2),
            Action::Enter if ct.group.is_some() => ct.open_group(now),
            Action::Details | Action::Delete | Action::TraceEntry if ct.group.is_some() => ct.say(
                "this is a group view: Enter lists the group's entries".into(),
                true,
                now,
            ),
            Action::Enter | Action::Details if ct.open_detail() => {
                self.popup = Some(Popup::CtDetail);
            }
            Action::Back => {
                ct.close_group(now);
            }
            Action::ClearFilter => {
                ct.clear_filter(now);
            }
            Action::SortNext => ct.sort_step(1, now),
            Action::SortPrev => ct.sort_step(-1, now),
            Action::SortReverse => {
                let (key, rev) = (ct.sort, !ct.reverse);
                ct.sort_by(key, rev, now);
            }
            Action::GroupBy => ct.group_step(now),
            Action::Delete => {
                self.popup = ct.ask_delete(now).map(|q| Popup::Confirm(Box::new(q)));
            }
            Action::DeleteMatching => {
                self.popup = ct
                    .ask_delete_matching(now)
                    .map(|q| Popup::Confirm(Box::new(q)));
            }
            _ => {}
        }
        Vec::new()
    }

    fn trace_rows(&self) -> usize {
        view::trace_viewport_rows(self.size)
    }

    /// Trace the form's packet through the rule set the Rules screen shows.
    pub fn run_trace(&mut self) {
        let staged = self
            .edit
            .active()
            .map(|st| (st.result(), self.edit.version));
        self.trace.run(self.snapshot.as_ref(), staged);
        let rows = self.trace_rows();
        self.trace.scroll_into_view(rows);
    }

    fn on_trace_action(&mut self, action: Action) -> Vec<Cmd> {
        match action {
            Action::Yank | Action::WriteView => {
                let Some(text) = view::trace::trace_text(self) else {
                    self.trace.message =
                        Some("no trace yet: e edits the packet, Enter traces".into());
                    return Vec::new();
                };
                if action == Action::Yank {
                    return self.copy(text);
                }
                return vec![self.write_view("trace", "txt", text, "the trace".into())];
            }
            _ => self.trace_step_action(action),
        }
        if self.trace.wrap {
            self.trace_keep_in_view();
        }
        Vec::new()
    }

    fn trace_step_action(&mut self, action: Action) {
        let rows = self.trace_rows();
        let page = rows.max(1) as isize;
        let tr = &mut self.trace;
        match action {
            Action::NextField => tr.move_field(1),
            Action::PrevField => tr.move_field(-1),
            Action::Back => tr.delete_char(),
            Action::RunTrace => self.run_trace(),
            Action::LeaveForm => {
                tr.expand_field();
                tr.focus = TraceFocus::Steps;
            }
            Action::EditForm => tr.focus = TraceFocus::Form,
            // Nothing traced yet: Enter starts on the form.
            Action::Enter if tr.result.is_none() => tr.focus = TraceFocus::Form,
            Action::CycleNext => tr.cycle(1),
            Action::CyclePrev => tr.cycle(-1),
            Action::ToggleWrap => {
                tr.wrap = !tr.wrap;
                tr.hscroll = 0;
                self.trace_keep_in_view();
            }
            Action::ScrollLeft | Action::ScrollRight => {
                if tr.wrap {
                    tr.message = Some("steps are wrapped: w shows them on one row again".into());
                } else if action == Action::ScrollLeft {
                    tr.hscroll = tr.hscroll.saturating_sub(HSCROLL_STEP);
                } else {
                    let limit = view::trace::widest_row(self)
                        .saturating_sub(view::trace::list_width(self).saturating_sub(2));
                    let tr = &mut self.trace;
                    tr.hscroll = (tr.hscroll + HSCROLL_STEP).min(limit);
                }
            }
            Action::SshFill if tr.fill_from_ssh() => self.run_trace(),
            Action::NextPath => {
                tr.switch_path(1);
                self.trace.scroll_into_view(rows);
            }
            Action::PrevPath => {
                tr.switch_path(-1);
                self.trace.scroll_into_view(rows);
            }
            Action::Up => tr.move_cursor(-1, rows),
            Action::Down => tr.move_cursor(1, rows),
            Action::PageUp => tr.move_cursor(-page, rows),
            Action::PageDown => tr.move_cursor(page, rows),
            Action::Top => tr.move_cursor(isize::MIN / 2, rows),
            Action::Bottom => tr.move_cursor(isize::MAX / 2, rows),
            Action::Enter => self.open_step(),
            Action::TraceKernel => {
                if self.edit.active().is_none() {
                    self.trace.message =
                        Some("nothing is staged: the trace is of the kernel's rules".into());
                } else {
                    self.trace.kernel_only = !self.trace.kernel_only;
                    if self.trace.result.is_some() {
                        self.run_trace();
                    }
                }
            }
            _ => {}
        }
    }

    /// Keep the Trace screen's cursor on screen, whole, when steps wrap over several rows.
    fn trace_keep_in_view(&mut self) {
        let rows = self.trace_rows();
        self.trace.scroll_into_view(rows);
        if self.trace.wrap {
            self.trace.offset = whole_in_view(self.trace.offset, self.trace.cursor, rows, |i| {
                view::trace::row_height_at(self, i)
            });
        }
    }

    /// Show the rule (or chain) of the step under the Trace screen's cursor on the Rules
    /// screen; Backspace there comes back.
    fn open_step(&mut self) {
        let Some(step) = self.trace.selected_step() else {
            return;
        };
        let (Some(table), Some(chain)) = (step.table, step.chain.as_deref()) else {
            self.trace.message = Some("this step is not in a chain: no rule to show".into());
            return;
        };
        let key = ChainKey {
            family: step.family,
            table: table.name().to_string(),
            chain: chain.to_string(),
        };
        let rule = step.rule_index().unwrap_or(0);
        let basis = self.trace.result.as_ref().map(|r| r.basis);
        if basis == Some(super::trace::Basis::Kernel) && self.edit.active().is_some() {
            // The kernel's rule, on the Rules screen that shows the staged chain: its row there
            // (a rule the staging left alone, or one it deletes).
            let rows = self.chain_rows(&key);
            let row = rows.rows.iter().copied().find(|&r| {
                let j = match r {
                    RowRef::Rule(i) => rows.base_of.get(i).copied().flatten(),
                    RowRef::Deleted(j) => Some(j),
                };
                j.and_then(|j| self.live_rule(&key, j)).map(|(_, k)| k) == Some(rule)
            });
            match row {
                Some(row) if self.chain_by_key(&key).is_some() => {
                    self.open_chain_row(Screen::Trace, key, row);
                }
                _ => {
                    self.trace.message = Some(format!(
                        "rule {} of the kernel's {chain} is not on the Rules screen, which shows the staged rules (the chain is deleted or renamed there)",
                        rule + 1
                    ));
                }
            }
            return;
        }
        if self.chain_by_key(&key).is_none() {
            self.trace.message = Some(format!("chain {chain} is not in the rule set any more"));
            return;
        }
        self.open_chain_from(Screen::Trace, key, rule);
    }

    /// `open_chain_from`, with the cursor on a row (a rule staged for deletion included).
    fn open_chain_row(&mut self, from: Screen, key: ChainKey, row: RowRef) {
        let start = match row {
            RowRef::Rule(i) => i,
            RowRef::Deleted(_) => 0,
        };
        self.open_chain_from(from, key, start);
        if let Some(p) = self.rules.visible.iter().position(|&r| r == row) {
            self.rules.cursor = p;
            self.clamp_scroll();
        }
    }

    /// Show `key` on the Rules screen with the cursor on `rule`, coming from `from`: Backspace
    /// there goes back to `from`.
    pub(super) fn open_chain_from(&mut self, from: Screen, key: ChainKey, rule: usize) {
        self.open_from(from, ChainSel::Iptables(key), rule);
    }

    /// `open_chain_from`, for a chain of either kind.
    pub(super) fn open_from(&mut self, from: Screen, sel: ChainSel, rule: usize) {
        self.push_back();
        self.screen_back = Some((self.rules.back.len(), from));
        self.rules.focus = Focus::Rules;
        self.select(sel, rule);
        self.screen = Screen::Rules;
    }

    /// Remember the chain shown and its rule under the cursor, for Backspace.
    fn push_back(&mut self) {
        if let Some(cur) = self.shown_chain() {
            let idx = self.cursor_rule();
            self.rules.back.push((cur, idx));
        }
    }

    /// The Flow screen's selected box: its hook and chain.
    pub fn flow_selected(&self) -> Option<(crate::trace::Hook, FlowBox)> {
        let columns = super::flow::layout(self).columns;
        self.flow
            .selected(&columns)
            .map(|(h, e)| (h, e.chain.clone()))
    }

    fn on_flow_action(&mut self, action: Action) {
        let columns = super::flow::layout(self).columns;
        let fl = &mut self.flow;
        match action {
            Action::FocusLeft => fl.move_col(-1, &columns),
            Action::FocusRight => fl.move_col(1, &columns),
            Action::Up => fl.move_row(-1, &columns),
            Action::Down => fl.move_row(1, &columns),
            Action::OtherFamily => fl.toggle_family(),
            Action::Enter => {
                let family = fl.family;
                let Some((hook, entry)) = fl.selected(&columns) else {
                    return;
                };
                match &entry.chain {
                    FlowBox::Native(k) => {
                        self.open_from(Screen::Flow, ChainSel::Native(k.clone()), 0);
                    }
                    FlowBox::Iptables(table) => {
                        let key = ChainKey {
                            family,
                            table: table.name().to_string(),
                            chain: hook.name().to_string(),
                        };
                        if self.chain_by_key(&key).is_none() {
                            self.flow.message = Some(format!(
                                "the {} table is not loaded: {} has no {} chain to open",
                                table.name(),
                                family.label(),
                                hook.name()
                            ));
                            return;
                        }
                        self.open_chain_from(Screen::Flow, key, 0);
                    }
                }
            }
            _ => {}
        }
    }

    /// `r`: the Reach popup for the selected rule's protocol and port, at its chain's hook.
    fn open_reach(&mut self) {
        let Some(ChainSel::Iptables(key)) = self.shown_chain() else {
            self.edit.say(
                "reach answers for the iptables rule sets: select an iptables chain",
                true,
            );
            return;
        };
        let rule = self.selected_rule().map(|(_, r)| r.clone());
        let staged = self.edit.active().is_some();
        match self.shown(key.family) {
            Some(rs) => {
                let hook = super::reach::hook_of(rs, &key.table, &key.chain);
                let mut q = super::reach::query_for(hook, rule.as_ref());
                q.ifaces.clone_from(&self.reach_ifaces);
                let v = super::reach::ReachView::new(rs, q, staged);
                self.popup = Some(Popup::Reach(Box::new(v)));
            }
            None => self.edit.say(
                format!("no {} rule set is loaded", key.family.label()),
                true,
            ),
        }
    }

    /// The rules changed under an open Reach popup: the same question on the new rules.
    fn reach_again(&mut self) {
        let Some(Popup::Reach(v)) = &mut self.popup else {
            return;
        };
        let (family, q) = (v.family, v.query.clone());
        let staged = self.edit.active().is_some();
        let rs = if let Some(st) = self.edit.active()
            && let Some(r) = st.result_for(family)
        {
            Some(r)
        } else {
            self.snapshot
                .as_ref()
                .and_then(|s| s.family(family).ruleset())
        };
        if let (Some(rs), Some(Popup::Reach(v))) = (rs, &mut self.popup) {
            v.ask(rs, q, staged);
            v.changed = true;
        }
    }

    fn on_reach_action(&mut self, mut v: Box<super::reach::ReachView>, action: Action) -> Vec<Cmd> {
        let page = view::reach::rows(self.size).max(1) as isize;
        match action {
            Action::Up => v.move_by(-1, 0),
            Action::Down => v.move_by(1, 0),
            Action::PageUp => v.move_by(-page, 0),
            Action::PageDown => v.move_by(page, 0),
            Action::Top => v.move_by(isize::MIN / 2, 0),
            Action::Bottom => v.move_by(isize::MAX / 2, 0),
            Action::FocusLeft => v.move_by(0, -1),
            Action::FocusRight => v.move_by(0, 1),
            Action::ReachChain
            | Action::OtherFamily
            | Action::ReachNat
            | Action::ReachNextPort
            | Action::ReachPrevPort => {
                let family = match (action, v.family) {
                    (Action::OtherFamily, Family::V4) => Family::V6,
                    (Action::OtherFamily, Family::V6) => Family::V4,
                    (_, f) => f,
                };
                let mut q = v.query.clone();
                if action == Action::ReachChain {
                    q.hook = v.next_hook();
                }
                if action == Action::ReachNat {
                    q.nat = !q.nat;
                }
                if matches!(action, Action::ReachNextPort | Action::ReachPrevPort) {
                    let step = if action == Action::ReachNextPort {
                        1
                    } else {
                        -1
                    };
                    match v.step_port(step) {
                        Some((proto, port)) => {
                            q.proto = proto;
                            q.dport = Some(port);
                        }
                        None => self
                            .edit
                            .say("the filter rules name no port to step through", true),
                    }
                }
                let staged = self.edit.active().is_some();
                match self.shown(family) {
                    Some(rs) => v.ask(rs, q, staged),
                    None => self
                        .edit
                        .say(format!("no {} rule set is loaded", family.label()), true),
                }
            }
            Action::Yank => {
                let text = v.text();
                self.popup = Some(Popup::Reach(v));
                return self.copy(text);
            }
            Action::Enter => {
                let locals: Vec<std::net::IpAddr> = self
                    .snapshot
                    .as_ref()
                    .map(|snap| self.trace.local_addrs(snap))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|l| l.addr)
                    .collect();
                let (src_pref, dst_pref): (&[std::net::IpAddr], &[std::net::IpAddr]) =
                    match v.query.hook {
                        crate::trace::Hook::Input => (&[], &locals),
                        crate::trace::Hook::Output => (&locals, &[]),
                        _ => (&[], &[]),
                    };
                let (Some(src), Some(dst)) =
                    (v.sample_in(v.row, src_pref), v.sample_in(v.col, dst_pref))
                else {
                    self.popup = Some(Popup::Reach(v));
                    return Vec::new();
                };
                self.popup = None;
                self.trace.fill_from_reach(src, dst, &v.query);
                self.run_trace();
                self.show_screen(Screen::Trace);
                return Vec::new();
            }
            _ => {}
        }
        self.popup = Some(Popup::Reach(v));
        Vec::new()
    }

    fn on_rules_action(&mut self, action: Action) -> Vec<Cmd> {
        let page = self.rule_rows().max(1) as isize;
        match action {
            Action::Reach => self.open_reach(),
            Action::FocusLeft => self.rules.focus = Focus::Tree,
            Action::FocusRight => self.rules.focus = Focus::Rules,
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => {
                let delta = match action {
                    Action::Up => -1,
                    Action::Down => 1,
                    Action::PageUp => -page,
                    Action::PageDown => page,
                    Action::Top => isize::MIN / 2,
                    _ => isize::MAX / 2,
                };
                match self.rules.focus {
                    Focus::Tree => self.move_tree(delta),
                    Focus::Rules => self.move_cursor(delta),
                }
            }
            Action::Enter => match self.rules.focus {
                Focus::Tree => self.rules.focus = Focus::Rules,
                Focus::Rules => self.enter_rule(),
            },
            Action::Back => {
                if let Some((n, from)) = self.screen_back
                    && n == self.rules.back.len()
                {
                    self.screen_back = None;
                    self.screen = from;
                }
                if let Some((sel, cursor)) = self.rules.back.pop() {
                    if self.exists(&sel) {
                        self.select(sel, cursor);
                    }
                } else {
                    self.rules.focus = Focus::Tree;
                }
            }
            Action::Details => {
                if self.selected_rule().is_some() || self.selected_native_rule().is_some() {
                    self.popup = Some(Popup::Detail {
                        scroll: Scroll::TOP,
                    });
                }
            }
            Action::Filter => {
                self.mode = InputMode::Filter;
                self.rules.focus = Focus::Rules;
            }
            Action::ClearFilter => {
                if self.rules.filter.is_empty() {
                } else {
                    self.rules.filter.clear();
                    self.refilter();
                }
            }
            Action::ExactNumbers => self.exact = !self.exact,
            Action::SearchNext => self.search_step(1),
            Action::SearchPrev => self.search_step(-1),
            Action::ScrollRight | Action::ScrollLeft => {
                if self.rules.wrap {
                    self.edit.say(
                        "long rules are wrapped: w shows them on one row again",
                        false,
                    );
                } else if action == Action::ScrollLeft {
                    self.rules.hscroll = self.rules.hscroll.saturating_sub(HSCROLL_STEP);
                } else {
                    let limit = view::rules::hscroll_limit(self, self.rule_rows());
                    self.rules.hscroll = (self.rules.hscroll + HSCROLL_STEP).min(limit);
                }
            }
            Action::ToggleWrap => {
                self.rules.wrap = !self.rules.wrap;
                self.rules.hscroll = 0;
                self.clamp_scroll();
            }
            Action::SaveForm => {
                self.rules.save_form = !self.rules.save_form;
                self.rules.hscroll = 0;
                self.clamp_scroll();
            }
            Action::Yank => {
                let line = match (self.selected_rule(), self.selected_native_rule()) {
                    (Some((_, r)), _) => self.rules.selected.as_ref().map(|k| {
                        crate::ruleset::save::rule_line(
                            &k.chain,
                            r,
                            crate::ruleset::save::CounterMode::Without,
                        )
                    }),
                    (None, Some((_, r))) => Some(r.text.clone()),
                    (None, None) => None,
                };
                match line {
                    Some(l) => return self.copy(l),
                    None => self.edit.say("no rule is selected to copy", true),
                }
            }
            Action::WriteView => {
                if let Some((stem, text, what)) = self.chain_text() {
                    return vec![self.write_view(&stem, "rules", text, what)];
                }
                self.edit.say("no chain is shown to write", true);
            }
            a => return self.on_rules_edit(a),
        }
        Vec::new()
    }

    /// The chain shown as text for a file: iptables save lines (`-A CHAIN ...`, with the
    /// chain's declaration and the table's name), or a native chain's rules as nft lists them.
    /// With a file-name stem and what it is, for the footer.
    pub fn chain_text(&self) -> Option<(String, String, String)> {
        use crate::ruleset::save::{CounterMode, chain_decl, rule_line};
        if let Some((t, c)) = self.native_chain() {
            let mut out = format!("table {} {} {{\n\tchain {} {{\n", t.family, t.name, c.name);
            for r in &c.rules {
                out.push_str(&format!("\t\t{}\n", r.text));
            }
            out.push_str("\t}\n}\n");
            let what = format!("native chain {} {} {}", t.family, t.name, c.name);
            return Some((format!("{}-{}-{}", t.family, t.name, c.name), out, what));
        }
        let key = self.rules.selected.as_ref()?;
        let chain = self.chain()?;
        let mut out = format!("*{}\n{}\n", key.table, chain_decl(chain, CounterMode::With));
        for r in &chain.rules {
            out.push_str(&rule_line(&chain.name, r, CounterMode::With));
            out.push('\n');
        }
        out.push_str("COMMIT\n");
        let what = format!(
            "{} {} {} as save text",
            key.family.label(),
            key.table,
            key.chain
        );
        let stem = format!("{}-{}-{}", key.family.label(), key.table, key.chain);
        Some((stem, out, what))
    }

    /// The chain a rule jumps or goes to, when it is a chain of the same table.
    pub fn jump_target(&self, rule: &Rule) -> Option<ChainKey> {
        let sel = self.rules.selected.as_ref()?;
        let t = rule.spec.target.as_ref()?;
        if !matches!(t.kind, TargetKind::Jump | TargetKind::Goto) {
            return None;
        }
        let key = ChainKey {
            family: sel.family,
            table: sel.table.clone(),
            chain: t.name.to_string(),
        };
        self.chain_by_key(&key).map(|_| key)
    }

    /// The chain of the same table a native rule jumps or goes to (`jump NAME`, `goto NAME`).
    pub fn native_jump_target(&self, rule: &NativeRule) -> Option<NativeKey> {
        let shown = self.rules.native.as_ref()?;
        let words: Vec<&str> = rule.text.split_whitespace().collect();
        words.windows(2).find_map(|w| {
            if !matches!(w[0], "jump" | "goto") {
                return None;
            }
            let key = NativeKey {
                family: shown.family.clone(),
                table: shown.table.clone(),
                chain: w[1]
                    .trim_matches(|c| matches!(c, '"' | ',' | '}'))
                    .to_string(),
            };
            self.native_by_key(&key).map(|_| key)
        })
    }

    fn enter_rule(&mut self) {
        let target = match (self.selected_rule(), self.selected_native_rule()) {
            (Some((_, rule)), _) => self.jump_target(rule).map(ChainSel::Iptables),
            (None, Some((_, rule))) => self.native_jump_target(rule).map(ChainSel::Native),
            (None, None) => return,
        };
        match target {
            Some(sel) => {
                self.push_back();
                self.select(sel, 0);
            }
            None => {
                self.popup = Some(Popup::Detail {
                    scroll: Scroll::TOP,
                })
            }
        }
    }
}

/// What the Rules filter looks in: the rule's save text (`--dport 22`) and what the screen shows
/// of it (`dpt:22`, `0.0.0.0/0`, the target), lower case.
pub fn filter_haystack(r: &Rule, family: Family) -> String {
    let c = crate::ruleset::summary::columns(r, family);
    [
        r.text.as_str(),
        &c.target,
        &c.prot,
        &c.iface_in,
        &c.iface_out,
        &c.source,
        &c.destination,
        &c.rest,
    ]
    .join(" \u{1f} ")
    .to_lowercase()
}

/// The first row to show so that the cursor's row, `height(i)` screen rows tall, is on screen
/// whole in `rows` rows, moving the window down from `offset` only as far as needed.
fn whole_in_view(
    mut offset: usize,
    cursor: usize,
    rows: usize,
    height: impl Fn(usize) -> usize,
) -> usize {
    while offset < cursor && (offset..=cursor).map(&height).sum::<usize>() > rows {
        offset += 1;
    }
    offset
}

/// How many columns `<` and `>` scroll long text.
pub const HSCROLL_STEP: usize = 16;

/// Keep a cursor within `n` rows and the window of `rows` rows starting at `offset` around
/// it, the window never past the end.
pub(crate) fn keep_in_view(cursor: &mut usize, offset: &mut usize, n: usize, rows: usize) {
    let rows = rows.max(1);
    *cursor = (*cursor).min(n.saturating_sub(1));
    if *cursor < *offset {
        *offset = *cursor;
    } else if *cursor >= *offset + rows {
        *offset = *cursor + 1 - rows;
    }
    *offset = (*offset).min(n.saturating_sub(rows));
}

fn whole_seconds(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn later_than(a: SystemTime, b: SystemTime) -> bool {
    a.duration_since(b).is_ok_and(|d| !d.is_zero())
}
