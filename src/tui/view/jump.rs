//! The jump popup: the name typed, then the chains that match it, best first, the matched
//! characters marked.

use crate::tui::app::App;
use crate::tui::jump::Jump;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

/// The popup's rectangle: most of the width, up to 20 chains high.
pub fn area(size: (u16, u16)) -> Rect {
    let w = (size.0 * 7 / 10).max(50).min(size.0);
    let h = size.1.saturating_sub(6).clamp(5, 24).min(size.1);
    Rect::new((size.0 - w) / 2, (size.1 - h) / 2, w, h)
}

/// How many chains the list shows.
pub fn list_rows(size: (u16, u16)) -> usize {
    usize::from(area(size).height.saturating_sub(3))
}

pub fn draw(frame: &mut Frame, app: &App, j: &Jump) {
    let t = app.theme;
    let r = area((frame.area().width, frame.area().height));
    let bottom = format!(
        " {} of {} chains · Enter opens · Esc cancels ",
        j.matches.len(),
        j.chains.len()
    );
    let block = Block::bordered()
        .title(Line::styled(" Jump to a chain ", t.title()))
        .title_bottom(Line::styled(bottom, t.dim()))
        .border_style(t.border_focused());
    let inner = block.inner(r);
    frame.render_widget(Clear, r);
    frame.render_widget(block, r);
    let rows = usize::from(inner.height.saturating_sub(1));
    let offset = j.cursor.saturating_sub(rows.saturating_sub(1));
    let mut lines = vec![Line::from(vec![
        Span::styled(" › ", t.key()),
        Span::raw(crate::format::visible(&j.query).into_owned()),
        Span::styled("▏", t.key()),
    ])];
    if j.matches.is_empty() {
        lines.push(Line::styled(
            "   no chain matches: Backspace to widen",
            t.dim(),
        ));
    }
    for (n, (i, hits)) in j.matches.iter().enumerate().skip(offset).take(rows) {
        let Some((_, label)) = j.chains.get(*i) else {
            continue;
        };
        let mut spans = vec![Span::raw("   ")];
        for (k, ch) in label.chars().enumerate() {
            let style = if hits.contains(&(k as u32)) {
                t.filter_match()
            } else {
                Style::new()
            };
            spans.push(Span::styled(ch.to_string(), style));
        }
        let pad = usize::from(inner.width).saturating_sub(3 + crate::format::width(label));
        spans.push(Span::raw(" ".repeat(pad)));
        let line = Line::from(spans);
        lines.push(if n == j.cursor {
            line.style(t.selected())
        } else {
            line
        });
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
