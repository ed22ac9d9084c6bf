//! The Flow screen: the traversal diagram. Hooks across in the order the kernel calls them,
//! down each hook every base chain in priority order, one box each: the iptables tables'
//! built-in chains and native nftables base chains (double border) alike, with policy,
//! priority, rule count and live packets/s; the selected one described in full on the last
//! line. The three ways through are written above it when there is room.

use super::format;
use crate::trace::Hook;
use crate::tui::app::App;
use crate::tui::flow::{self, COLUMNS, Entry, FlowBox};
use crate::tui::keymap::{self, Scope};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph};

/// Columns of arrow between two hooks.
const GAP: u16 = 3;
/// The routes a packet can take, as the kernel walks them (lines above the diagram); the
/// second set where the first does not fit.
const ROUTES_NARROW: [(&str, &str); 3] = [
    (
        "arriving ",
        "in ► PREROUTING ► routing ► INPUT ► local process",
    ),
    (
        "forwarded",
        "in ► PREROUTING ► routing ► FORWARD ► POSTROUTING ► out",
    ),
    (
        "sent     ",
        "local process ► routing ► OUTPUT ► routing ► POSTROUTING ► out",
    ),
];
const ROUTES: [(&str, &str); 3] = [
    (
        "arriving ",
        "in ─► PREROUTING ─► routing: a local address ─► INPUT ─► local process",
    ),
    (
        "forwarded",
        "in ─► PREROUTING ─► routing: another address ─► FORWARD ─► POSTROUTING ─► out",
    ),
    (
        "sent     ",
        "local process ─► routing ─► OUTPUT ─► routing again ─► POSTROUTING ─► out",
    ),
];

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let a = super::areas((area.width, area.height), false);
    super::header::draw(frame, app, a.header);
    draw_body(frame, app, a.rules);
    draw_footer(frame, app, a.footer);
}

fn draw_body(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let fl = &app.flow;
    let lay = flow::layout(app);
    let native = lay
        .columns
        .iter()
        .flatten()
        .any(|e| matches!(e.chain, FlowBox::Native(_)));
    let mut y = area.y;
    let bottom = area.y + area.height;
    let line = |frame: &mut Frame, y: u16, l: Line| {
        if y < bottom {
            frame.render_widget(Paragraph::new(l), Rect::new(area.x, y, area.width, 1));
        }
    };
    let mut head = vec![
        Span::styled(format!(" {} ", fl.family.label()), t.title()),
        Span::styled(
            if lay.routes {
                "the ways through netfilter (f: the other family)"
            } else {
                "(f: the other family)"
            },
            t.dim(),
        ),
    ];
    if native {
        head.push(Span::styled(" · ╔═╗ nftables", t.dim()));
    }
    if lay.unloaded_hidden {
        head.push(Span::styled(" · tables not loaded left out", t.dim()));
    }
    line(frame, y, Line::from(head));
    y += 1;
    if lay.routes {
        let routes = if area.width >= 100 {
            ROUTES
        } else {
            ROUTES_NARROW
        };
        for (name, route) in routes {
            line(
                frame,
                y,
                Line::from(vec![
                    Span::styled(format!("   {name}  "), t.header()),
                    Span::styled(route, t.base()),
                ]),
            );
            y += 1;
        }
    }
    let Some(placed) = place(app, &lay, area) else {
        return;
    };
    let col_w = placed.col_w;
    let x_of = |c: u16| area.x + c * (col_w + GAP);
    // The hooks' names, with arrows between them.
    for (c, hook) in COLUMNS.iter().enumerate() {
        let c = c as u16;
        let name = hook.name();
        let name = if name.len() as u16 > col_w {
            &name[..col_w as usize]
        } else {
            name
        };
        let r = Rect::new(x_of(c), y, col_w, 1);
        if y < bottom {
            frame.render_widget(Paragraph::new(Span::styled(name, t.header())).centered(), r);
            if c < 4 {
                let arrow = Rect::new(x_of(c) + col_w, y, GAP, 1);
                frame.render_widget(Paragraph::new(Span::styled(" ► ", t.dim())), arrow);
            }
        }
    }
    debug_assert_eq!(
        y + 1,
        placed.top,
        "place() and the drawing agree on the rows"
    );
    let sel_col = fl.col.min(COLUMNS.len() - 1);
    for (c, r, rect) in &placed.boxes {
        let sel_row = (*c == sel_col).then(|| fl.row.min(lay.columns[*c].len().saturating_sub(1)));
        draw_box(frame, app, *rect, &lay.columns[*c][*r], sel_row == Some(*r));
    }
    for (rect, text) in placed.markers {
        frame.render_widget(Paragraph::new(Span::styled(text, t.dim())).centered(), rect);
    }
    // The last row says what the selected box is.
    let boxes_bottom = bottom.saturating_sub(1);
    if let Some((hook, entry)) = fl.selected(&lay.columns) {
        line(
            frame,
            boxes_bottom,
            describe(app, hook, entry, &lay.columns[sel_col]),
        );
    }
}

/// Where the boxes go: each box's column, row and rectangle, and the "↑ 3 more" markers of
/// the columns that scroll. One function for drawing and for the mouse, so a click lands on
/// the box that is drawn there.
struct Placed {
    col_w: u16,
    /// The first row of boxes.
    top: u16,
    boxes: Vec<(usize, usize, Rect)>,
    markers: Vec<(Rect, String)>,
}

/// The boxes' places in the body `area`; `None` when the columns are too narrow to draw.
fn place(app: &App, lay: &flow::Layout, area: Rect) -> Option<Placed> {
    let col_w = area.width.saturating_sub(GAP * 4) / 5;
    if col_w < 8 {
        return None;
    }
    // The family's line, the routes, the hooks' names; the last row says what is selected.
    let top = area.y + 1 + if lay.routes { ROUTES.len() as u16 } else { 0 } + 1;
    let boxes_bottom = (area.y + area.height).saturating_sub(1);
    let sel_col = app.flow.col.min(COLUMNS.len() - 1);
    let mut placed = Placed {
        col_w,
        top,
        boxes: Vec::new(),
        markers: Vec::new(),
    };
    for (c, boxes) in lay.columns.iter().enumerate() {
        let sel_row = (c == sel_col).then(|| app.flow.row.min(boxes.len().saturating_sub(1)));
        // A column taller than the room scrolls with its selection, and says what is hidden.
        let (from, shown) = if boxes.len() <= lay.fit {
            (0, boxes.len())
        } else {
            let k = lay.fit.saturating_sub(1);
            let from = sel_row.map_or(0, |r| (r + 1).saturating_sub(k));
            (from, k)
        };
        // What is scrolled off is said above and below (one row each: a box's room).
        let x = area.x + c as u16 * (col_w + GAP);
        let mut marker = |y: u16, text: String| {
            if y < boxes_bottom {
                placed.markers.push((Rect::new(x, y, col_w, 1), text));
            }
        };
        let mut y = top;
        if from > 0 {
            marker(y, format!("↑ {from} more"));
            y += 1;
        }
        for r in (from..boxes.len()).take(shown) {
            if y + lay.box_h > boxes_bottom {
                break;
            }
            placed.boxes.push((c, r, Rect::new(x, y, col_w, lay.box_h)));
            y += lay.box_h;
        }
        let below = boxes.len() - from - shown;
        if below > 0 {
            marker(y, format!("↓ {below} more"));
        }
    }
    Some(placed)
}

/// The box at a screen position, as (column, row) of the layout's columns.
pub fn box_at(app: &App, x: u16, y: u16) -> Option<(usize, usize)> {
    let area = super::areas(app.size, false).rules;
    let lay = flow::layout(app);
    let placed = place(app, &lay, area)?;
    placed
        .boxes
        .into_iter()
        .find(|(_, _, r)| r.contains(ratatui::layout::Position { x, y }))
        .map(|(c, r, _)| (c, r))
}

/// One box: the chain's table (and name, for a native chain) on its border, its policy, its
/// priority where there is room, its rules and its live packets/s.
fn draw_box(frame: &mut Frame, app: &App, rect: Rect, e: &Entry, selected: bool) {
    let t = app.theme;
    let busy = e.rate.is_some_and(|r| r > 0.0);
    let idle = e.idle();
    let wide = rect.height >= 4;
    let border = if selected {
        t.border_focused().add_modifier(Modifier::BOLD)
    } else if idle {
        t.dim()
    } else {
        t.border()
    };
    let title_style = if selected {
        t.selected()
    } else if idle {
        t.dim()
    } else {
        t.title()
    };
    let title = match &e.chain {
        FlowBox::Iptables(table) => format!(" {table} "),
        FlowBox::Native(k) if wide => format!(" {k} "),
        FlowBox::Native(k) => format!(" {} {} ", k.table, k.chain),
    };
    // A thick border marks the selection, a double one a native chain, without colour too
    // (NO_COLOR).
    let block = Block::bordered()
        .border_type(match (&e.chain, selected) {
            (_, true) => BorderType::Thick,
            (FlowBox::Native(_), false) => BorderType::Double,
            (FlowBox::Iptables(_), false) => BorderType::Plain,
        })
        .border_style(border)
        .title(Span::styled(
            crate::format::visible(&title).into_owned(),
            title_style,
        ));
    let text_style = if idle { t.dim() } else { t.base() };
    let rate_style = if busy { t.hit() } else { text_style };
    let rate = e
        .rate
        .map_or_else(|| "-".to_string(), |r| format!("{}/s", format::rate(r)));
    let lines: Vec<Line> = match &e.policy {
        None => vec![Line::styled("not loaded", t.dim())],
        Some(policy) => {
            let policy_style = if policy.eq_ignore_ascii_case("accept") {
                text_style
            } else {
                t.target(&policy.to_uppercase())
            };
            if wide {
                vec![
                    Line::from(vec![
                        Span::styled(policy.clone(), policy_style),
                        Span::styled(format!(" · prio {}", e.priority), t.dim()),
                    ]),
                    Line::from(vec![
                        Span::styled(rules(e.rules), text_style),
                        Span::styled(" · ", t.dim()),
                        Span::styled(rate, rate_style),
                    ]),
                ]
            } else {
                vec![Line::from(vec![
                    Span::styled(policy.clone(), policy_style),
                    Span::raw(" "),
                    Span::styled(rate, rate_style),
                ])]
            }
        }
    };
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    frame.render_widget(Paragraph::new(lines), inner);
}

fn rules(n: usize) -> String {
    match n {
        1 => "1 rule".to_string(),
        n => format!("{n} rules"),
    }
}

/// The selected box in a sentence: which chain, whose, its policy, priority (and the chains
/// of the hook tied with it: the kernel runs those in the order they were registered, which
/// nfscope cannot see), rate, rules and type.
fn describe(app: &App, hook: Hook, e: &Entry, column: &[Entry]) -> Line<'static> {
    let t = app.theme;
    // Most telling first: a narrow screen cuts the end.
    let mut parts = vec![match &e.chain {
        FlowBox::Iptables(_) => format!("iptables ({})", app.flow.family.label()),
        FlowBox::Native(_) => "nftables, read-only".to_string(),
    }];
    let ties: Vec<String> = column
        .iter()
        .filter(|o| o.loaded() && o.priority == e.priority && o.chain != e.chain)
        .map(|o| o.name(hook))
        .collect();
    let priority = if e.loaded() && !ties.is_empty() {
        format!("priority {}, tied with {}", e.priority, ties.join(", "))
    } else {
        format!("priority {}", e.priority)
    };
    match &e.policy {
        None => parts.push(format!("{priority} · not loaded")),
        Some(p) => {
            parts.push(format!("policy {p}"));
            parts.push(priority);
            parts.push(e.rate.map_or_else(
                || "- pkt/s".to_string(),
                |r| format!("{} pkt/s", format::rate(r)),
            ));
            parts.push(rules(e.rules));
        }
    }
    if let Some(k) = &e.kind {
        parts.push(format!("type {k}"));
    }
    Line::from(vec![
        Span::styled(
            format!(" ► {}: ", crate::format::visible(&e.name(hook))),
            t.title(),
        ),
        Span::styled(
            crate::format::visible(&parts.join(" · ")).into_owned(),
            t.dim(),
        ),
    ])
}

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let mut spans = Vec::new();
    if let Some(m) = &app.flow.message {
        spans.push(Span::styled(format!(" {m} "), t.warning()));
    }
    for (k, what) in keymap::hints(&[Scope::Flow, Scope::Global]) {
        spans.push(Span::styled(format!(" {k}"), t.key()));
        spans.push(Span::styled(format!(" {what} "), t.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
