//! The application state and `update`, the one place it changes. No terminal here: tests drive
//! `update` with messages and render with ratatui's TestBackend.

use super::event::{Cmd, Msg};
use super::keymap::{self, Action, Scope};
use super::theme::Theme;
use super::view;
use crate::ruleset::rates::{ChainKey, RateTracker};
use crate::ruleset::{Chain, Family, Rule, TargetKind, table_rank};
use crate::source::RulesetSnapshot;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::time::SystemTime;

/// The screens, in Tab order. More arrive with conntrack, the tracer and edit mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Rules,
}

impl Screen {
    pub const ALL: &'static [Screen] = &[Screen::Rules];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Rules => "Rules",
        }
    }
}

/// Which pane of the Rules screen has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Tree,
    Rules,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Popup {
    Help { scroll: u16 },
    Detail { scroll: u16 },
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
}

/// Everything the screens show.
pub struct App {
    pub snapshot: Option<RulesetSnapshot>,
    pub rates: RateTracker,
    pub tree: Vec<TreeRow>,
    pub selected: Option<ChainKey>,
    pub tree_offset: usize,
    pub focus: Focus,
    /// Index into `visible` of the selected rule.
    pub cursor: usize,
    pub offset: usize,
    /// Indices (into the chain's rules) of the rules that pass the filter.
    pub visible: Vec<usize>,
    /// Where Backspace returns to: the chain and the rule cursor we jumped from.
    pub back: Vec<(ChainKey, usize)>,
    pub filter: String,
    pub mode: InputMode,
    pub popup: Option<Popup>,
    pub exact: bool,
    pub screen: Screen,
    pub now: SystemTime,
    pub host: String,
    pub size: (u16, u16),
    pub theme: Theme,
    pub quit: bool,
    /// Something visible changed since the last draw.
    pub dirty: bool,
}

impl App {
    pub fn new(host: String, theme: Theme, size: (u16, u16), now: SystemTime) -> Self {
        App {
            snapshot: None,
            rates: RateTracker::new(),
            tree: Vec::new(),
            selected: None,
            tree_offset: 0,
            focus: Focus::Rules,
            cursor: 0,
            offset: 0,
            visible: Vec::new(),
            back: Vec::new(),
            filter: String::new(),
            mode: InputMode::Normal,
            popup: None,
            exact: false,
            screen: Screen::Rules,
            now,
            host,
            size,
            theme,
            quit: false,
            dirty: true,
        }
    }

    /// The selected chain, if it exists in the current snapshot.
    pub fn chain(&self) -> Option<&Chain> {
        let key = self.selected.as_ref()?;
        self.chain_by_key(key)
    }

    pub fn chain_by_key(&self, key: &ChainKey) -> Option<&Chain> {
        self.snapshot
            .as_ref()?
            .family(key.family)
            .ruleset()?
            .table(&key.table)?
            .chain(&key.chain)
    }

    /// The selected rule and its index in the chain.
    pub fn selected_rule(&self) -> Option<(usize, &Rule)> {
        let idx = *self.visible.get(self.cursor)?;
        self.chain()?.rules.get(idx).map(|r| (idx, r))
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

    /// Feed one message; returns the side effects it asks for.
    pub fn update(&mut self, msg: Msg) -> Vec<Cmd> {
        match msg {
            Msg::Key(ev) => return self.on_key(ev),
            Msg::Resize(w, h) => {
                self.size = (w, h);
                self.clamp_scroll();
                self.dirty = true;
            }
            Msg::Snapshot(s) => self.on_snapshot(*s),
            Msg::Tick(now) => {
                let before = self.age_label();
                self.now = now;
                if self.age_label() != before {
                    self.dirty = true;
                }
            }
            Msg::Quit => {
                self.quit = true;
                return vec![Cmd::Quit];
            }
        }
        Vec::new()
    }

    fn on_snapshot(&mut self, snap: RulesetSnapshot) {
        let families = Family::ALL.iter().filter_map(|&f| snap.family(f).ruleset());
        self.rates.update(snap.taken_at, families);
        if snap.taken_at > self.now {
            self.now = snap.taken_at;
        }
        self.snapshot = Some(snap);
        self.rebuild_tree();
        if self
            .selected
            .as_ref()
            .is_none_or(|k| self.chain_by_key(k).is_none())
        {
            self.selected = self.first_chain();
            self.cursor = 0;
            self.offset = 0;
        }
        self.refilter();
        self.dirty = true;
    }

    fn first_chain(&self) -> Option<ChainKey> {
        // Start where people look first: the filter table's INPUT chain.
        let chains = || {
            self.tree.iter().filter_map(|r| match r {
                TreeRow::Chain(k) => Some(k),
                _ => None,
            })
        };
        chains()
            .find(|k| k.table == "filter" && k.chain == "INPUT")
            .or_else(|| chains().next())
            .cloned()
    }

    fn rebuild_tree(&mut self) {
        let mut rows = Vec::new();
        if let Some(s) = &self.snapshot {
            for f in Family::ALL {
                let data = s.family(f);
                if matches!(data, crate::source::FamilyData::Absent) {
                    continue;
                }
                rows.push(TreeRow::Family(f));
                let Some(rs) = data.ruleset() else { continue };
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
        }
        self.tree = rows;
    }

    /// Recompute which rules pass the filter, keeping the cursor in range.
    fn refilter(&mut self) {
        let needles: Vec<String> = self
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        self.visible = match self.chain() {
            None => Vec::new(),
            Some(c) if needles.is_empty() => (0..c.rules.len()).collect(),
            Some(c) => c
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    let hay = r.text.to_lowercase();
                    needles.iter().all(|n| hay.contains(n.as_str()))
                })
                .map(|(i, _)| i)
                .collect(),
        };
        self.clamp_scroll();
    }

    fn rule_rows(&self) -> usize {
        view::rules_viewport_rows(self.size)
    }

    fn tree_rows(&self) -> usize {
        view::tree_viewport_rows(self.size)
    }

    fn clamp_scroll(&mut self) {
        let n = self.visible.len();
        self.cursor = self.cursor.min(n.saturating_sub(1));
        let rows = self.rule_rows().max(1);
        if self.cursor < self.offset {
            self.offset = self.cursor;
        } else if self.cursor >= self.offset + rows {
            self.offset = self.cursor + 1 - rows;
        }
        self.offset = self.offset.min(n.saturating_sub(rows));
        // The tree scrolls to keep the selected chain in view.
        if let Some(i) = self.tree_index() {
            let rows = self.tree_rows().max(1);
            if i < self.tree_offset {
                self.tree_offset = i;
            } else if i >= self.tree_offset + rows {
                self.tree_offset = i + 1 - rows;
            }
        }
        self.tree_offset = self
            .tree_offset
            .min(self.tree.len().saturating_sub(self.tree_rows()));
    }

    /// The tree row of the selected chain.
    pub fn tree_index(&self) -> Option<usize> {
        let sel = self.selected.as_ref()?;
        self.tree
            .iter()
            .position(|r| matches!(r, TreeRow::Chain(k) if k == sel))
    }

    fn select_chain(&mut self, key: ChainKey, cursor: usize) {
        self.selected = Some(key);
        self.cursor = cursor;
        self.offset = 0;
        self.filter.clear();
        self.refilter();
        self.offset = self.cursor.saturating_sub(self.rule_rows() / 2);
        self.clamp_scroll();
    }

    /// Move the tree selection by `delta` chains.
    fn move_tree(&mut self, delta: isize) {
        let chains: Vec<&ChainKey> = self
            .tree
            .iter()
            .filter_map(|r| match r {
                TreeRow::Chain(k) => Some(k),
                _ => None,
            })
            .collect();
        if chains.is_empty() {
            return;
        }
        let cur = self
            .selected
            .as_ref()
            .and_then(|s| chains.iter().position(|k| *k == s))
            .unwrap_or(0);
        let next = (cur as isize + delta).clamp(0, chains.len() as isize - 1) as usize;
        if next != cur || self.selected.is_none() {
            let key = chains[next].clone();
            self.back.clear();
            self.select_chain(key, 0);
        }
    }

    fn move_cursor(&mut self, delta: isize) {
        let n = self.visible.len();
        if n == 0 {
            return;
        }
        self.cursor = (self.cursor as isize + delta).clamp(0, n as isize - 1) as usize;
        self.clamp_scroll();
    }

    fn on_key(&mut self, ev: KeyEvent) -> Vec<Cmd> {
        if ev.kind != KeyEventKind::Press {
            return Vec::new();
        }
        self.dirty = true;
        if self.mode == InputMode::Filter {
            return self.on_filter_key(ev);
        }
        let scopes: &[Scope] = if self.popup.is_some() {
            &[Scope::Popup, Scope::Global]
        } else {
            &[Scope::Rules, Scope::Global]
        };
        let Some(action) = keymap::resolve(&ev, scopes) else {
            self.dirty = false;
            return Vec::new();
        };
        if let Some(p) = self.popup {
            return self.on_popup_action(p, action);
        }
        self.on_action(action)
    }

    fn on_filter_key(&mut self, ev: KeyEvent) -> Vec<Cmd> {
        if ev.modifiers.contains(KeyModifiers::CONTROL) && ev.code == KeyCode::Char('c') {
            self.quit = true;
            return vec![Cmd::Quit];
        }
        match ev.code {
            KeyCode::Enter => self.mode = InputMode::Normal,
            KeyCode::Esc => {
                self.mode = InputMode::Normal;
                self.filter.clear();
                self.refilter();
            }
            KeyCode::Backspace => {
                self.filter.pop();
                self.refilter();
            }
            KeyCode::Char(c) if !ev.modifiers.contains(KeyModifiers::CONTROL) => {
                self.filter.push(c);
                self.cursor = 0;
                self.refilter();
            }
            KeyCode::Up | KeyCode::Down => {
                self.move_cursor(if ev.code == KeyCode::Up { -1 } else { 1 });
            }
            _ => self.dirty = false,
        }
        Vec::new()
    }

    fn on_popup_action(&mut self, popup: Popup, action: Action) -> Vec<Cmd> {
        let page = self.size.1.saturating_sub(8).max(1);
        let scrolled = |s: u16, a: Action| match a {
            Action::Up => s.saturating_sub(1),
            Action::Down => s.saturating_add(1),
            Action::PageUp => s.saturating_sub(page),
            Action::PageDown => s.saturating_add(page),
            _ => s,
        };
        match action {
            Action::ClosePopup => self.popup = None,
            Action::Quit => {
                self.quit = true;
                return vec![Cmd::Quit];
            }
            Action::Help => {
                self.popup = if matches!(popup, Popup::Help { .. }) {
                    None
                } else {
                    Some(Popup::Help { scroll: 0 })
                }
            }
            a => {
                self.popup = Some(match popup {
                    Popup::Help { scroll } => Popup::Help {
                        scroll: scrolled(scroll, a),
                    },
                    Popup::Detail { scroll } => Popup::Detail {
                        scroll: scrolled(scroll, a),
                    },
                })
            }
        }
        Vec::new()
    }

    fn on_action(&mut self, action: Action) -> Vec<Cmd> {
        let page = self.rule_rows().max(1) as isize;
        match action {
            Action::Quit => {
                self.quit = true;
                return vec![Cmd::Quit];
            }
            Action::Help => self.popup = Some(Popup::Help { scroll: 0 }),
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
                self.screen = Screen::ALL[next];
            }
            Action::FocusLeft => self.focus = Focus::Tree,
            Action::FocusRight => self.focus = Focus::Rules,
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
                match self.focus {
                    Focus::Tree => self.move_tree(delta),
                    Focus::Rules => self.move_cursor(delta),
                }
            }
            Action::Enter => match self.focus {
                Focus::Tree => self.focus = Focus::Rules,
                Focus::Rules => self.enter_rule(),
            },
            Action::Back => {
                if let Some((key, cursor)) = self.back.pop() {
                    if self.chain_by_key(&key).is_some() {
                        self.select_chain(key, cursor);
                    }
                } else {
                    self.focus = Focus::Tree;
                }
            }
            Action::Details => {
                if self.selected_rule().is_some() {
                    self.popup = Some(Popup::Detail { scroll: 0 });
                }
            }
            Action::Filter => {
                self.mode = InputMode::Filter;
                self.focus = Focus::Rules;
            }
            Action::ClearFilter => {
                if self.filter.is_empty() {
                    self.dirty = false;
                } else {
                    self.filter.clear();
                    self.refilter();
                }
            }
            Action::ExactNumbers => self.exact = !self.exact,
            Action::ClosePopup => {}
        }
        Vec::new()
    }

    /// The chain a rule jumps or goes to, when it is a chain of the same table.
    pub fn jump_target(&self, rule: &Rule) -> Option<ChainKey> {
        let sel = self.selected.as_ref()?;
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

    fn enter_rule(&mut self) {
        let Some((_, rule)) = self.selected_rule() else {
            return;
        };
        match self.jump_target(rule) {
            Some(key) => {
                if let Some(cur) = self.selected.clone() {
                    let idx = self.visible.get(self.cursor).copied().unwrap_or(0);
                    self.back.push((cur, idx));
                }
                self.select_chain(key, 0);
            }
            None => self.popup = Some(Popup::Detail { scroll: 0 }),
        }
    }
}
