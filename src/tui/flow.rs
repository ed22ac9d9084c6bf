//! The Flow screen's state: which base chain of the traversal diagram is selected, and for
//! which family; and the diagram's columns: at each hook, every base chain that sees the
//! family's packets in the order the kernel calls them (by priority), the iptables tables'
//! built-in chains (either backend) and native nftables base chains alike. The iptables
//! tables of a hook come from the tracer's order ([`Hook::ALL`], [`Hook::tables`]), so the
//! picture and the tracer cannot disagree on them.

use super::app::App;
use crate::ruleset::Family;
use crate::ruleset::rates::{ChainKey, NativeKey};
use crate::trace::{Hook, TableId};

/// The diagram's columns, left to right: the hooks in the order the kernel calls them.
pub const COLUMNS: [Hook; 5] = Hook::ALL;

/// One box of the diagram: a base chain at a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowBox {
    /// An iptables table's built-in chain (named after the hook).
    Iptables(TableId),
    /// A native nftables base chain (read-only).
    Native(NativeKey),
}

/// A box and what it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub chain: FlowBox,
    pub priority: i32,
    /// As the chain's maker writes it: `DROP` for iptables, `drop` for nft. `None`: the
    /// iptables table is not loaded.
    pub policy: Option<String>,
    /// A native chain's type (`filter`, `nat`, `route`).
    pub kind: Option<String>,
    pub rules: usize,
    /// Packets per second through its rules and policy, when known.
    pub rate: Option<f64>,
}

impl Entry {
    /// Loaded: an iptables table the rule set holds, or any native chain.
    pub fn loaded(&self) -> bool {
        self.policy.is_some()
    }

    /// Nothing to see: no rules and a policy that accepts.
    pub fn idle(&self) -> bool {
        self.rules == 0
            && self
                .policy
                .as_deref()
                .is_none_or(|p| p.eq_ignore_ascii_case("accept"))
    }

    /// The chain's name for people: `filter INPUT`, `inet fw input`.
    pub fn name(&self, hook: Hook) -> String {
        match &self.chain {
            FlowBox::Iptables(t) => format!("{t} {}", hook.name()),
            FlowBox::Native(k) => k.to_string(),
        }
    }

    /// The same table, for moving across hooks: an iptables table, or a native one.
    fn same_table(&self, other: &Entry) -> bool {
        match (&self.chain, &other.chain) {
            (FlowBox::Iptables(a), FlowBox::Iptables(b)) => a == b,
            (FlowBox::Native(a), FlowBox::Native(b)) => a.family == b.family && a.table == b.table,
            _ => false,
        }
    }
}

/// The priority an iptables table's built-in chain registers with at a hook (iptables-nft
/// registers its base chains at the same ones): the tracer's, `TableId::priority`.
pub fn iptables_priority(table: TableId, hook: Hook) -> i32 {
    table.priority(hook)
}

/// The hook a native base chain names (`input`), when it is one of the diagram's.
fn hook_of(name: &str) -> Option<Hook> {
    COLUMNS
        .into_iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))
}

/// The diagram's columns for `family`: per hook of [`COLUMNS`], every base chain in priority
/// order; at equal priorities the iptables chain first (the kernel runs them in the order
/// they were registered, which nfscope cannot see). Dormant native tables are left out: their
/// chains are not hooked.
pub fn columns(app: &App, family: Family) -> Vec<Vec<Entry>> {
    COLUMNS
        .iter()
        .map(|&hook| {
            let mut col: Vec<Entry> = hook
                .tables()
                .iter()
                .map(|&table| {
                    let key = ChainKey {
                        family,
                        table: table.name().to_string(),
                        chain: hook.name().to_string(),
                    };
                    let chain = app.chain_by_key(&key);
                    Entry {
                        chain: FlowBox::Iptables(table),
                        priority: iptables_priority(table, hook),
                        policy: chain.and_then(|c| c.policy.clone()),
                        kind: None,
                        rules: chain.map_or(0, |c| c.rules.len()),
                        rate: app.rates.chain(&key).and_then(|s| s.rate),
                    }
                })
                .collect();
            for t in app
                .native_tables()
                .iter()
                .filter(|t| !t.dormant && t.sees(family))
            {
                for c in &t.chains {
                    let (Some(h), Some(priority)) = (c.hook.as_deref(), c.priority) else {
                        continue;
                    };
                    if hook_of(h) != Some(hook) {
                        continue;
                    }
                    let key = NativeKey {
                        family: t.family.clone(),
                        table: t.name.clone(),
                        chain: c.name.clone(),
                    };
                    col.push(Entry {
                        rate: app.native_rates.chain(&key).and_then(|s| s.rate),
                        chain: FlowBox::Native(key),
                        priority,
                        policy: c.policy.clone(),
                        kind: c.kind.clone(),
                        rules: c.rules.len(),
                    });
                }
            }
            // A stable sort: iptables' own order first at equal priorities.
            col.sort_by_key(|e| e.priority);
            col
        })
        .collect()
}

/// What the diagram shows at the App's size: the columns, whether the routes are written
/// above them, and each box's height. Where the boxes do not fit, tables that are not loaded
/// are left out first, then the routes; what still does not fit scrolls with the selection.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub columns: Vec<Vec<Entry>>,
    pub routes: bool,
    pub box_h: u16,
    /// Boxes of tables that are not loaded were left out for room.
    pub unloaded_hidden: bool,
    /// How many boxes a column shows.
    pub fit: usize,
}

/// Rows the body spends on other things than boxes: the family's line, the hooks' names and
/// the selected box's line, and the routes when shown.
fn fixed_rows(routes: bool) -> u16 {
    3 + if routes { 3 } else { 0 }
}

pub fn layout(app: &App) -> Layout {
    let body = super::view::areas(app.size, false).rules.height;
    let mut columns = columns(app, app.flow.family);
    let tallest = |cols: &[Vec<Entry>]| cols.iter().map(Vec::len).max().unwrap_or(0);
    let sized = |routes: bool| {
        let room = body.saturating_sub(fixed_rows(routes));
        let box_h: u16 = if room >= 20 { 4 } else { 3 };
        (box_h, usize::from(room / box_h))
    };
    let (mut box_h, mut fit) = sized(true);
    let mut routes = true;
    let mut unloaded_hidden = false;
    if tallest(&columns) > fit {
        for col in &mut columns {
            col.retain(Entry::loaded);
        }
        unloaded_hidden = true;
    }
    if tallest(&columns) > fit {
        routes = false;
        (box_h, fit) = sized(false);
    }
    Layout {
        columns,
        routes,
        box_h,
        unloaded_hidden,
        fit,
    }
}

/// The Flow screen's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowScreen {
    pub family: Family,
    /// The selected box: a column of [`COLUMNS`] and a row of that column's boxes.
    pub col: usize,
    pub row: usize,
    /// A sentence for the footer (e.g. why Enter did nothing).
    pub message: Option<String>,
}

impl Default for FlowScreen {
    fn default() -> Self {
        FlowScreen {
            family: Family::V4,
            // filter INPUT: where most people look first.
            col: 1,
            row: 1,
            message: None,
        }
    }
}

impl FlowScreen {
    /// The selected box's hook and entry in `columns`.
    pub fn selected<'a>(&self, columns: &'a [Vec<Entry>]) -> Option<(Hook, &'a Entry)> {
        let col = self.col.min(COLUMNS.len() - 1);
        let boxes = columns.get(col)?;
        let entry = boxes.get(self.row.min(boxes.len().checked_sub(1)?))?;
        Some((COLUMNS[col], entry))
    }

    /// Move across: to the next hook, onto the same table where it has one, else the nearest
    /// row.
    pub fn move_col(&mut self, delta: isize, columns: &[Vec<Entry>]) {
        let here = self.selected(columns).map(|(_, e)| e.clone());
        let col = (self.col as isize + delta).clamp(0, COLUMNS.len() as isize - 1) as usize;
        let boxes = columns.get(col).map_or(&[][..], Vec::as_slice);
        self.row = here
            .and_then(|h| boxes.iter().position(|e| e.same_table(&h)))
            .unwrap_or(self.row.min(boxes.len().saturating_sub(1)));
        self.col = col;
        self.message = None;
    }

    /// Move down (positive) or up the selected hook's boxes.
    pub fn move_row(&mut self, delta: isize, columns: &[Vec<Entry>]) {
        let n = columns.get(self.col).map_or(0, Vec::len);
        let cur = self.row.min(n.saturating_sub(1)) as isize;
        self.row = (cur + delta).clamp(0, n.saturating_sub(1) as isize) as usize;
        self.message = None;
    }

    pub fn toggle_family(&mut self) {
        self.family = match self.family {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        };
        self.message = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipt(t: TableId, hook: Hook) -> Entry {
        Entry {
            chain: FlowBox::Iptables(t),
            priority: iptables_priority(t, hook),
            policy: Some("ACCEPT".into()),
            kind: None,
            rules: 0,
            rate: None,
        }
    }

    fn cols() -> Vec<Vec<Entry>> {
        COLUMNS
            .iter()
            .map(|&h| h.tables().iter().map(|&t| ipt(t, h)).collect())
            .collect()
    }

    fn table(f: &FlowScreen, c: &[Vec<Entry>]) -> (Hook, FlowBox) {
        let (h, e) = f.selected(c).expect("a box");
        (h, e.chain.clone())
    }

    #[test]
    fn moving_across_keeps_the_table_where_it_can() {
        let c = cols();
        let mut f = FlowScreen::default();
        let filter = FlowBox::Iptables(TableId::Filter);
        assert_eq!(table(&f, &c), (Hook::Input, filter.clone()));
        f.move_col(1, &c);
        assert_eq!(table(&f, &c), (Hook::Forward, filter.clone()));
        f.move_col(1, &c);
        assert_eq!(table(&f, &c), (Hook::Output, filter));
        f.move_col(1, &c);
        // POSTROUTING has no filter: the nearest row stays in range.
        assert_eq!(table(&f, &c).0, Hook::Postrouting);
        f.move_col(5, &c);
        assert_eq!(table(&f, &c).0, Hook::Postrouting);
        f.move_row(-10, &c);
        assert_eq!(
            table(&f, &c),
            (Hook::Postrouting, FlowBox::Iptables(TableId::Mangle))
        );
        f.move_col(-10, &c);
        assert_eq!(
            table(&f, &c),
            (Hook::Prerouting, FlowBox::Iptables(TableId::Mangle))
        );
        f.move_row(10, &c);
        assert_eq!(
            table(&f, &c),
            (Hook::Prerouting, FlowBox::Iptables(TableId::Nat))
        );
    }

    #[test]
    fn priorities_put_nat_on_both_sides_of_filter() {
        for hook in COLUMNS {
            let p: Vec<i32> = hook
                .tables()
                .iter()
                .map(|&t| iptables_priority(t, hook))
                .collect();
            assert!(p.is_sorted(), "{hook}: {p:?}");
        }
        assert_eq!(hook_of("input"), Some(Hook::Input));
        assert_eq!(hook_of("ingress"), None);
    }
}
