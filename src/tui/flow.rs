//! The Flow screen's state: which built-in chain of the traversal diagram is selected, and for
//! which family. The diagram's shape comes from the tracer's hook and table order
//! ([`Hook::ALL`], [`Hook::tables`]), so the picture and the tracer cannot disagree.

use crate::ruleset::Family;
use crate::trace::{Hook, TableId};

/// The diagram's columns, left to right: the hooks in the order the kernel calls them.
pub const COLUMNS: [Hook; 5] = Hook::ALL;

/// The Flow screen's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowScreen {
    pub family: Family,
    /// The selected box: a column of [`COLUMNS`] and a row of that hook's tables.
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
    /// The selected box's hook and table.
    pub fn selected(&self) -> (Hook, TableId) {
        let hook = COLUMNS[self.col.min(COLUMNS.len() - 1)];
        let tables = hook.tables();
        (hook, tables[self.row.min(tables.len() - 1)])
    }

    /// Move across: to the next hook, onto the same table where it has one, else the nearest row.
    pub fn move_col(&mut self, delta: isize) {
        let (_, table) = self.selected();
        let col = (self.col as isize + delta).clamp(0, COLUMNS.len() as isize - 1) as usize;
        let tables = COLUMNS[col].tables();
        self.row = tables
            .iter()
            .position(|t| *t == table)
            .unwrap_or(self.row.min(tables.len() - 1));
        self.col = col;
        self.message = None;
    }

    /// Move down (positive) or up the selected hook's tables.
    pub fn move_row(&mut self, delta: isize) {
        let n = COLUMNS[self.col].tables().len() as isize;
        self.row = (self.row as isize + delta).clamp(0, n - 1) as usize;
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

    #[test]
    fn moving_across_keeps_the_table_where_it_can() {
        let mut f = FlowScreen::default();
        assert_eq!(f.selected(), (Hook::Input, TableId::Filter));
        f.move_col(1);
        assert_eq!(f.selected(), (Hook::Forward, TableId::Filter));
        f.move_col(1);
        assert_eq!(f.selected(), (Hook::Output, TableId::Filter));
        f.move_col(1);
        // POSTROUTING has no filter: the nearest row stays in range.
        assert_eq!(f.selected().0, Hook::Postrouting);
        f.move_col(5);
        assert_eq!(f.selected().0, Hook::Postrouting);
        f.move_row(-10);
        assert_eq!(f.selected(), (Hook::Postrouting, TableId::Mangle));
        f.move_col(-10);
        assert_eq!(f.selected(), (Hook::Prerouting, TableId::Mangle));
        f.move_row(10);
        assert_eq!(f.selected(), (Hook::Prerouting, TableId::Nat));
    }
}
