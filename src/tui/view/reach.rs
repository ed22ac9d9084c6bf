//! The Reach popup: the matrix of address classes, sources down, destinations across, ✓
//! certain, ? possible, · none; the selected cell said in words below, with what possible
//! answers hinge on.
//!
//! ```text
//! ┌ Reach · IPv4 filter INPUT · tcp dport 22 · NEW ───────────────────────────┐
//! │ ✓ certain  ? possible  · none      4 classes · rows: from · columns: to   │
//! │ from ╲ to                            a  b  c  d                           │
//! │ a 0.0.0.0-9.255.255.255 +2           ·  ·  ?  ·                           │
//! │ b 10.0.0.0/8                         ✓  ✓  ✓  ·                           │
//! │ b → c: certainly accepted                                                 │
//! │ b 10.0.0.0/8                                                              │
//! │ c 192.0.2.7                                                               │
//! └ ←↑↓→ move · Enter trace · c chain · f family · y copy · Esc close ────────┘
//! ```

use crate::tui::app::App;
use crate::tui::reach::ReachView;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

/// The popup's rectangle: nearly the whole screen.
pub fn area(size: (u16, u16)) -> Rect {
    let w = size.0.saturating_sub(4).max(20).min(size.0);
    let h = size.1.saturating_sub(2).max(8).min(size.1);
    Rect::new((size.0 - w) / 2, (size.1 - h) / 2, w, h)
}

/// Lines under the matrix: the cell in words, its two classes, the hinges or notes.
const BELOW: u16 = 4;

/// How many source rows the matrix shows.
pub fn rows(size: (u16, u16)) -> usize {
    usize::from(area(size).height.saturating_sub(2 + 2 + BELOW))
}

/// Columns of a cell.
const CELL: usize = 3;

fn label_width(inner: u16) -> usize {
    (usize::from(inner) / 3).clamp(12, 34)
}

/// The first of `cur`'s window of `n` out of `len`.
fn window_start(cur: usize, n: usize) -> usize {
    cur.saturating_sub(n.saturating_sub(1))
}

/// A range as the matrix's label shows it in `room` cells: each end shortened between whole
/// groups (`0.0.0.0-126.….255`), never cut inside a number.
fn range_label(r: &str, room: usize) -> String {
    use crate::format::{elide_addr, width};
    if width(r) <= room {
        return r.to_string();
    }
    match r.split_once('-') {
        Some((a, b)) => {
            let left = elide_addr(a, room.saturating_sub(1) / 2);
            let right = elide_addr(b, room.saturating_sub(1 + width(&left)));
            format!("{left}-{right}")
        }
        None => elide_addr(r, room),
    }
}

pub fn draw(frame: &mut Frame, app: &App, v: &ReachView) {
    let t = app.theme;
    let r = area((frame.area().width, frame.area().height));
    let q = &v.query;
    let mut title = format!(
        " Reach · {} {} · {}",
        v.family.label(),
        v.result.walked.last().map_or("filter", String::as_str),
        crate::trace::packet::proto_name(q.proto)
    );
    if let Some(p) = q.dport {
        title += &format!(" dport {p}");
    }
    title += &format!(" · {} ", q.state.name());
    if q.nat {
        title += "· after nat ";
    }
    if v.staged {
        title += "(staged) ";
    }
    if v.changed {
        title += "· the rules changed: answered again ";
    }
    let bottom = " ←↑↓→ move · Enter trace · c chain · p port · f family · n nat · Esc close ";
    let block = Block::bordered()
        .title(Line::styled(title, t.title()))
        .title_bottom(Line::styled(bottom, t.dim()))
        .border_style(t.border_focused());
    let inner = block.inner(r);
    frame.render_widget(Clear, r);
    frame.render_widget(block, r);

    let classes = &v.result.classes;
    let n = classes.len();
    let lw = label_width(inner.width);
    let ncols = (usize::from(inner.width).saturating_sub(lw + 1) / CELL).max(1);
    let nrows = rows(app.size).max(1);
    let c0 = window_start(v.col, ncols);
    let r0 = window_start(v.row, nrows);
    let cols: Vec<usize> = (c0..n).take(ncols).collect();

    let mut lines: Vec<Line> = Vec::new();
    lines.push(Line::from(vec![
        Span::styled(" ✓", t.ok()),
        Span::styled(" certain  ", t.dim()),
        Span::styled("?", t.warning()),
        Span::styled(" possible  ", t.dim()),
        Span::raw("·"),
        Span::styled(
            format!(
                " none    {n} class{} · rows: from · columns: to{}",
                if n == 1 { "" } else { "es" },
                if c0 > 0 || c0 + ncols < n {
                    format!(" ({}-{} of {n})", c0 + 1, (c0 + ncols).min(n))
                } else {
                    String::new()
                }
            ),
            t.dim(),
        ),
    ]));
    let mut head = vec![Span::styled(format!("{:<lw$} ", " from ╲ to"), t.header())];
    for &c in &cols {
        let style = if c == v.col { t.selected() } else { t.header() };
        head.push(Span::styled(format!("{:>CELL$}", classes[c].name), style));
    }
    lines.push(Line::from(head));
    for (i, class) in classes.iter().enumerate().skip(r0).take(nrows) {
        let first = class.ranges.first().map_or("", String::as_str);
        let more = match class.ranges.len() {
            0 | 1 => String::new(),
            k => format!(" +{}", k - 1),
        };
        let room = lw.saturating_sub(class.name.len() + 2 + more.len());
        let label = format!(" {} {}{more}", class.name, range_label(first, room));
        let style = if i == v.row { t.selected() } else { t.base() };
        let mut spans = vec![Span::styled(format!("{label:<lw$} "), style)];
        for &c in &cols {
            let (mark, mut st) = match v.result.edge(i, c) {
                Some(true) => ("✓", t.ok()),
                Some(false) => ("?", t.warning()),
                None => ("·", t.dim()),
            };
            if i == v.row && c == v.col {
                st = t.selected();
            }
            spans.push(Span::styled(format!("{mark:>CELL$}"), st));
        }
        lines.push(Line::from(spans));
    }
    let matrix_h = inner.height.saturating_sub(BELOW);
    frame.render_widget(
        Paragraph::new(lines),
        Rect::new(inner.x, inner.y, inner.width, matrix_h),
    );

    // Below: the cell in words, its classes whole, why possible.
    let whole = |i: usize| {
        classes.get(i).map_or(String::new(), |c| {
            format!(" {} = {}", c.name, c.ranges.join(", "))
        })
    };
    let mut below = vec![
        Line::styled(format!(" {}", v.describe()), t.header()),
        Line::raw(whole(v.row)),
        Line::raw(if v.col == v.row {
            String::new()
        } else {
            whole(v.col)
        }),
    ];
    let hinges = v.result.hinges.len();
    below.push(if hinges > 0 {
        Line::styled(
            format!(
                " possible answers hinge on {hinges} rule{} with a match the packet cannot decide (y copies them; Enter traces the cell)",
                if hinges == 1 { "" } else { "s" }
            ),
            t.dim(),
        )
    } else if let Some(note) = v.result.notes.first() {
        Line::styled(format!(" note: {note}"), t.warning())
    } else {
        Line::styled(
            " · means no edge: certainly dropped or rejected · Enter traces the cell's packet",
            t.dim(),
        )
    });
    let y = inner.y + matrix_h;
    frame.render_widget(
        Paragraph::new(
            below
                .into_iter()
                .map(|l| {
                    // Classes' ranges can be long: cut at the width (the whole is in y).
                    let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
                    let style = l.spans.first().map(|s| s.style).unwrap_or_default();
                    Line::styled(
                        crate::tui::view::long::window(&text, 0, usize::from(inner.width)),
                        style,
                    )
                })
                .collect::<Vec<_>>(),
        ),
        Rect::new(inner.x, y, inner.width, BELOW.min(inner.height)),
    );
}
