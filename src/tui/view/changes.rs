//! The Changes screen: every staged operation, then the unified diff of the save text per table
//! (coloured, and marked with `+`/`-` so it reads without colour too).
//!
//! ```text
//! ┌ Staged changes (2) ─────────────────────────────────────────┐
//! │  1 IPv4 filter/INPUT: insert at 1: -p tcp --dport 22 -j …  │  ops (a third of the body)
//! │› 2 IPv4 filter/INPUT: policy DROP                           │
//! └─────────────────────────────────────────────────────────────┘
//! ┌ Diff ───────────────────────────────────────────────────────┐
//! │ --- IPv4 filter (base)                                      │  header lines bold
//! │ +++ IPv4 filter (staged)                                    │
//! │ @@ -1,4 +1,5 @@                                             │
//! │ +-A INPUT -p tcp --dport 22 -j ACCEPT                       │  + green, - red
//! └─────────────────────────────────────────────────────────────┘
//!  footer: the message of the last action, or the keys
//! ```

use crate::edit::diff::DiffKind;
use crate::tui::app::App;
use crate::tui::keymap::Scope;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

/// Header, the operations, the diff, the footer.
fn areas(size: (u16, u16), ops: usize) -> [Rect; 4] {
    let full = Rect::new(0, 0, size.0, size.1);
    let body = size.1.saturating_sub(3);
    let list_h = (ops as u16 + 2).clamp(3, (body / 3).max(3));
    Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(list_h),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(full)
}

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let n = app.edit.count();
    let [header, list, diff, footer] = areas((area.width, area.height), n);
    super::header::draw(frame, app, header);
    draw_ops(frame, app, list);
    draw_diff(frame, app, diff);
    draw_footer(frame, app, footer);
}

fn draw_ops(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let n = app.edit.count();
    let block = Block::bordered()
        .title(Line::styled(format!(" Staged changes ({n}) "), t.title()))
        .border_style(t.border_focused());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(st) = app.edit.active() else {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "Nothing is staged. On the Rules screen: a adds a rule, e edits one, - deletes, A makes a chain, P flips a policy (? lists every key).",
                t.dim(),
            ))
            .wrap(Wrap { trim: false }),
            inner,
        );
        return;
    };
    let rows = inner.height as usize;
    let cur = app.edit.cursor;
    let offset = cur.saturating_sub(rows.saturating_sub(1));
    let lines: Vec<Line> = st
        .ops()
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows)
        .map(|(i, op)| {
            let text = format!(
                "{}{:>3} {}",
                if i == cur { "›" } else { " " },
                i + 1,
                crate::format::visible(&op.describe())
            );
            if i == cur {
                Line::styled(text, t.selected())
            } else {
                Line::raw(text)
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The staged operation at a screen position (a click selects it), `None` outside the list.
pub fn op_at(app: &App, x: u16, y: u16) -> Option<usize> {
    let [_, list, _, _] = areas(app.size, app.edit.count());
    let inner = Block::bordered().inner(list);
    if !inner.contains(ratatui::layout::Position { x, y }) {
        return None;
    }
    let rows = inner.height as usize;
    let offset = app.edit.cursor.saturating_sub(rows.saturating_sub(1));
    let i = offset + usize::from(y - inner.y);
    (i < app.edit.count()).then_some(i)
}

/// Whether a screen position is over the operations' box (the wheel moves through them there).
pub fn over_ops(app: &App, x: u16, y: u16) -> bool {
    let [_, list, _, _] = areas(app.size, app.edit.count());
    list.contains(ratatui::layout::Position { x, y })
}

fn draw_diff(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let block = Block::bordered()
        .title(Line::styled(
            " Diff (save text, without counters) ",
            t.title(),
        ))
        .border_style(t.border());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines: Vec<Line> = Vec::new();
    for (_, rows) in &app.edit.diff {
        for r in rows {
            let style = match r.kind {
                DiffKind::Header => t.header().add_modifier(Modifier::BOLD),
                DiffKind::Added => t.added(),
                DiffKind::Removed => t.removed(),
                DiffKind::Context => t.base(),
            };
            let text = crate::format::visible(&r.text);
            let w = usize::from(inner.width);
            let parts = super::long::rows(&text, app.edit.diff_wrap, app.edit.diff_hscroll, w);
            lines.extend(
                parts
                    .into_iter()
                    .map(|p| Line::from(Span::styled(p, style))),
            );
        }
    }
    if lines.is_empty() {
        let msg = if app.edit.count() == 0 {
            "No difference: nothing is staged."
        } else {
            "No difference in the save text: the staged changes only zero counters."
        };
        lines.push(Line::styled(msg, t.dim()));
    }
    let max = (lines.len() as u16).saturating_sub(inner.height);
    frame.render_widget(
        Paragraph::new(lines).scroll((app.edit.diff_scroll.offset(max), 0)),
        inner,
    );
}

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    frame.render_widget(
        Paragraph::new(super::header::edit_footer(
            app,
            &[Scope::Changes, Scope::Global],
            area.width,
        )),
        area,
    );
}
