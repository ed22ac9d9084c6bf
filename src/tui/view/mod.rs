//! Drawing. `draw` reads the App and writes a frame, nothing else.
//!
//! ```text
//! ┌──────────────────────────────────────────────────────────────┐
//! │ nfscope · host · source · refreshed … (took …) · rule counts │ header (2 lines)
//! │ [Rules]   warnings and source errors, in place               │
//! ├──────────────┬───────────────────────────────────────────────┤
//! │ chain tree   │ rules of the selected chain                   │ body
//! │ IPv4         │ num pkts bytes rate hist target prot …        │
//! │  filter      │                                               │
//! │   INPUT …    │                                               │
//! ├──────────────┴───────────────────────────────────────────────┤
//! │ key hints, or the filter being typed                         │ footer (1 line)
//! └──────────────────────────────────────────────────────────────┘
//! ```
//! Popups (help, rule details) are drawn over the body. The Conntrack screen has its own layout
//! under the same header: see `conntrack.rs`.

pub mod changes;
pub mod conntrack;
mod ct_popup;
mod edit_popup;
pub mod flow;
pub mod long;
use crate::format;
pub mod header;
pub mod jump;
mod popup;
pub mod reach;
pub mod rules;
pub mod trace;

pub use format::{human, rate as format_rate, sparkline};
pub use popup::help_max_scroll;

use super::app::{App, Focus, Popup, Screen};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

/// Below this the screen says so instead of drawing a mess.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

/// The regions of the screen.
pub struct Areas {
    pub header: Rect,
    pub tree: Rect,
    pub rules: Rect,
    pub footer: Rect,
}

/// Below this width the chain tree is shown only while it has the focus.
pub const NARROW: u16 = 100;

/// The layout, as a pure function of the terminal size and whether the tree is shown (update uses
/// it too, for scrolling).
pub fn areas(size: (u16, u16), tree_shown: bool) -> Areas {
    let full = Rect::new(0, 0, size.0, size.1);
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(full);
    let tree_w = if tree_shown {
        (size.0 / 4 + 2).clamp(26, 32)
    } else {
        0
    };
    let [tree, rules] =
        Layout::horizontal([Constraint::Length(tree_w), Constraint::Min(20)]).areas(body);
    Areas {
        header,
        tree,
        rules,
        footer,
    }
}

/// How many rule rows fit (inside the border, below the column header).
pub fn rules_viewport_rows(size: (u16, u16)) -> usize {
    areas(size, true).rules.height.saturating_sub(3) as usize
}

/// How many tree rows fit inside its border, under its column header.
pub fn tree_viewport_rows(size: (u16, u16)) -> usize {
    areas(size, true).tree.height.saturating_sub(3) as usize
}

/// A table with a header row and fixed column widths, one space between columns.
fn render_table<'a>(
    frame: &mut Frame,
    rows: Vec<ratatui::widgets::Row<'a>>,
    header: ratatui::widgets::Row<'a>,
    widths: impl IntoIterator<Item = u16>,
    area: Rect,
) {
    let widths: Vec<Constraint> = widths.into_iter().map(Constraint::Length).collect();
    frame.render_widget(
        ratatui::widgets::Table::new(rows, widths)
            .header(header)
            .column_spacing(1),
        area,
    );
}

/// How many rows the Conntrack screen's list shows.
pub fn ct_viewport_rows(app: &App) -> usize {
    conntrack::viewport_rows(app)
}

/// How many step rows the Trace screen's list shows.
pub fn trace_viewport_rows(size: (u16, u16)) -> usize {
    trace::viewport_rows(size)
}

/// Draw the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small: {}x{}, nfscope needs at least {MIN_WIDTH}x{MIN_HEIGHT}",
            area.width, area.height
        );
        let y = area.height / 2;
        let rect = Rect::new(area.x, area.y + y, area.width, 1.min(area.height));
        frame.render_widget(
            Paragraph::new(Line::from(msg))
                .centered()
                .style(app.theme.warning()),
            rect,
        );
        return;
    }
    match app.screen {
        Screen::Rules => {
            let tree_shown = area.width >= NARROW || app.rules.focus == Focus::Tree;
            let a = areas((area.width, area.height), tree_shown);
            header::draw(frame, app, a.header);
            if tree_shown {
                rules::draw_tree(frame, app, a.tree);
            }
            rules::draw_rules(frame, app, a.rules);
            header::draw_footer(frame, app, a.footer);
        }
        Screen::Conntrack => {
            header::draw(frame, app, conntrack::areas(app).header);
            conntrack::draw(frame, app);
        }
        Screen::Trace => trace::draw(frame, app),
        Screen::Flow => flow::draw(frame, app),
        Screen::Changes => changes::draw(frame, app),
    }
    match app.popup {
        Some(Popup::Help { scroll }) => popup::draw_help(frame, app, scroll),
        Some(Popup::Messages { scroll }) => popup::draw_messages(frame, app, scroll),
        Some(Popup::Detail { scroll }) => popup::draw_detail(frame, app, scroll),
        Some(Popup::CtDetail) => ct_popup::draw_detail(frame, app),
        Some(Popup::Confirm(ref c)) => ct_popup::draw_confirm(frame, app, c.as_ref()),
        Some(Popup::Ask(_)) => {
            if app.edit.commit.is_some() {
                edit_popup::draw_commit(frame, app);
            }
            edit_popup::draw_ask(frame, app);
        }
        Some(Popup::Editor(_)) => {
            if app.edit.commit.is_some() {
                edit_popup::draw_commit(frame, app);
            }
            edit_popup::draw_editor(frame, app);
        }
        Some(Popup::Commit) => edit_popup::draw_commit(frame, app),
        Some(Popup::Jump(ref j)) => jump::draw(frame, app, j),
        Some(Popup::Reach(ref v)) => reach::draw(frame, app, v),
        Some(Popup::Countdown) => {
            edit_popup::draw_commit(frame, app);
            edit_popup::draw_countdown(frame, app);
        }
        None => {}
    }
    // Nothing from the data reaches the terminal raw: no bidirectional or zero-width control,
    // no pile of combining marks (the views show such text escaped with `format::visible`).
    for cell in &mut frame.buffer_mut().content {
        if cell.symbol().is_ascii() {
            continue;
        }
        if let Some(safe) = crate::format::cell_safe(cell.symbol()) {
            cell.set_symbol(&safe);
        }
    }
}
