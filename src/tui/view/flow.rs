//! The Flow screen: the traversal diagram. Hooks across in the order the kernel calls them,
//! the tables each hook calls down in their priority order, one box per built-in chain with
//! its policy, rule count and live packets/s. The three ways through are written above it.

use super::format;
use crate::ruleset::rates::ChainKey;
use crate::tui::app::App;
use crate::tui::flow::COLUMNS;
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

/// What one box shows.
struct BoxInfo {
    policy: Option<String>,
    rules: usize,
    rate: Option<f64>,
}

fn box_info(app: &App, key: &ChainKey) -> BoxInfo {
    let chain = app.chain_by_key(key);
    BoxInfo {
        policy: chain.and_then(|c| c.policy.clone()),
        rules: chain.map_or(0, |c| c.rules.len()),
        rate: app.rates.chain(key).and_then(|s| s.rate),
    }
}

fn draw_body(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let fl = &app.flow;
    let family = match fl.family {
        crate::ruleset::Family::V4 => "IPv4",
        crate::ruleset::Family::V6 => "IPv6",
    };
    let mut y = area.y;
    let bottom = area.y + area.height;
    let line = |frame: &mut Frame, y: u16, l: Line| {
        if y < bottom {
            frame.render_widget(Paragraph::new(l), Rect::new(area.x, y, area.width, 1));
        }
    };
    line(
        frame,
        y,
        Line::from(vec![
            Span::styled(format!(" {family} "), t.title()),
            Span::styled("the ways through netfilter (f: the other family)", t.dim()),
        ]),
    );
    y += 1;
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
    if y < bottom {
        y += 1;
    }
    let col_w = area.width.saturating_sub(GAP * 4) / 5;
    if col_w < 8 {
        return;
    }
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
    y += 1;
    let rows_left = bottom.saturating_sub(y);
    // Four lines a box when five fit, else three (80x24).
    let box_h: u16 = if rows_left >= 20 { 4 } else { 3 };
    let (sel_hook, sel_table) = fl.selected();
    for (c, hook) in COLUMNS.iter().enumerate() {
        for (r, table) in hook.tables().iter().enumerate() {
            let top = y + r as u16 * box_h;
            if top + box_h > bottom {
                break;
            }
            let rect = Rect::new(x_of(c as u16), top, col_w, box_h);
            let key = ChainKey {
                family: fl.family,
                table: table.name().to_string(),
                chain: hook.name().to_string(),
            };
            let info = box_info(app, &key);
            let selected = *hook == sel_hook && *table == sel_table;
            let busy = info.rate.is_some_and(|r| r > 0.0);
            let idle = info.rules == 0 && info.policy.as_deref().is_none_or(|p| p == "ACCEPT");
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
            // A thick border marks the selection without colour too (NO_COLOR).
            let block = Block::bordered()
                .border_type(if selected {
                    BorderType::Thick
                } else {
                    BorderType::Plain
                })
                .border_style(border)
                .title(Span::styled(format!(" {} ", table.name()), title_style));
            let text_style = if idle { t.dim() } else { t.base() };
            let rate_style = if busy { t.hit() } else { text_style };
            let rate = info
                .rate
                .map_or_else(|| "-".to_string(), |r| format!("{}/s", format::rate(r)));
            let lines: Vec<Line> = match &info.policy {
                None => vec![Line::styled("not loaded", t.dim())],
                Some(policy) => {
                    let policy_style = if policy == "ACCEPT" {
                        text_style
                    } else {
                        t.target(policy)
                    };
                    let rules = match info.rules {
                        1 => "1 rule".to_string(),
                        n => format!("{n} rules"),
                    };
                    if box_h >= 4 {
                        vec![
                            Line::from(Span::styled(policy.clone(), policy_style)),
                            Line::from(vec![
                                Span::styled(rules, text_style),
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
    }
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
