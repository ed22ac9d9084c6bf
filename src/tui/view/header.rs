//! The header (host, source, freshness, screens, problems) and the footer (hints or the filter).

use crate::ruleset::Family;
use crate::source::FamilyData;
use crate::tui::app::{App, InputMode, Screen};
use crate::tui::keymap::{self, Scope};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use std::time::Duration;

fn took(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let mut top = vec![
        Span::styled(" nfscope ", t.title()),
        Span::raw(" "),
        Span::styled(app.host.clone(), t.header()),
    ];
    let mut problems: Vec<Span> = Vec::new();
    if app.screen == Screen::Conntrack {
        if let Some(s) = &app.snapshot {
            top.push(Span::styled(format!("  {}", s.origin.describe()), t.base()));
        }
        let ct = &app.ct;
        let what = match ct.via {
            Some(via) => format!(
                "  conntrack via {} · {}",
                via.label(),
                super::format::entries(ct.table.len())
            ),
            None => "  conntrack: not read yet".to_string(),
        };
        top.push(Span::styled(what, t.dim()));
        if let Some(s) = &app.snapshot {
            for e in s.errors() {
                problems.push(Span::styled(format!("  ✗ {e}"), t.error()));
            }
        }
    } else if let Some(s) = &app.snapshot {
        top.push(Span::styled(format!("  {}", s.origin.describe()), t.base()));
        let n = app.edit.count();
        if n > 0 {
            let what = if n == 1 { "change" } else { "changes" };
            top.push(Span::styled(
                format!("  {n} staged {what}"),
                t.warning().add_modifier(ratatui::style::Modifier::BOLD),
            ));
        }
        top.push(Span::styled(
            format!("  refreshed {} (took {})", app.age_label(), took(s.took)),
            t.dim(),
        ));
        for f in Family::ALL {
            match s.family(f) {
                FamilyData::Loaded(rs) => {
                    top.push(Span::styled(
                        format!("  {} {} rules", f.label(), rs.rule_count()),
                        t.base(),
                    ));
                }
                FamilyData::Failed(_) => {
                    top.push(Span::styled(format!("  {} ✗", f.label()), t.error()))
                }
                FamilyData::Absent => {}
            }
        }
        for e in s.errors() {
            problems.push(Span::styled(
                format!("  ✗ {}", crate::format::visible(&e.to_string())),
                t.error(),
            ));
        }
        for w in &s.warnings {
            problems.push(Span::styled(
                format!("  ⚠ {}", crate::format::visible(w)),
                t.warning(),
            ));
        }
    } else {
        top.push(Span::styled(format!("  {}", app.age_label()), t.dim()));
    }
    let mut second: Vec<Span> = vec![Span::raw(" ")];
    for (i, s) in Screen::ALL.iter().enumerate() {
        let style = if *s == app.screen {
            t.selected()
        } else {
            t.dim()
        };
        second.push(Span::styled(format!(" {} {} ", i + 1, s.title()), style));
        second.push(Span::raw(" "));
    }
    second.extend(problems);
    let lines = vec![Line::from(top), Line::from(second)];
    frame.render_widget(Paragraph::new(lines), area);
}

pub fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let total = app.chain().map_or(0, |c| c.rules.len());
    let line = if app.mode == InputMode::Filter {
        Line::from(vec![
            Span::styled(" filter: ", t.key()),
            Span::raw(app.rules.filter.clone()),
            Span::styled("▏", t.key()),
            Span::styled(
                format!(
                    "   {} of {} rules · Enter keeps · Esc clears",
                    app.rules.visible.len(),
                    total
                ),
                t.dim(),
            ),
        ])
    } else {
        let scopes: &[Scope] = match &app.popup {
            Some(p) if p.is_edit() => p.scopes(),
            Some(_) => &[Scope::Popup],
            None => &[Scope::Rules, Scope::Global],
        };
        let mut spans = Vec::new();
        if !app.rules.filter.is_empty() {
            spans.push(Span::styled(
                format!(
                    " filter \"{}\": {} of {} ",
                    app.rules.filter,
                    app.rules.visible.len(),
                    total
                ),
                t.warning(),
            ));
        }
        if app.exact {
            spans.push(Span::styled(" [exact numbers] ", t.warning()));
        }
        fit_footer(app, spans, scopes, area.width)
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The footer of edit mode's screens: the last action's message, then the keys of `scopes`
/// (or of the popup that has them), fitted to `width`.
pub fn edit_footer(app: &App, scopes: &[Scope], width: u16) -> Line<'static> {
    let scopes = app.popup.as_ref().map_or(scopes, |p| p.scopes());
    fit_footer(app, Vec::new(), scopes, width)
}

/// A footer fitted to `width`: the keys that matter most on the screen (`keymap::PRIMARY`)
/// always, then the last action's message (cut with `… (! whole)` when it does not fit: `!`
/// shows every message whole), then `extra`, then the other keys while there is room.
fn fit_footer(app: &App, extra: Vec<Span<'static>>, scopes: &[Scope], width: u16) -> Line<'static> {
    let t = app.theme;
    let width = usize::from(width);
    let span_w = |sp: &[Span]| {
        sp.iter()
            .map(|s| crate::format::width(&s.content))
            .sum::<usize>()
    };
    let hints = keymap::hints(scopes);
    let hint_spans = |k: &str, what: &str| {
        vec![
            Span::styled(format!(" {k}"), t.key()),
            Span::styled(format!(" {what} "), t.dim()),
        ]
    };
    let primary: Vec<Span> = hints
        .iter()
        .filter(|(_, what)| keymap::PRIMARY.contains(what))
        .flat_map(|(k, w)| hint_spans(k, w))
        .collect();
    let mut used = span_w(&primary) + span_w(&extra);
    let mut out: Vec<Span<'static>> = Vec::new();
    if let Some((m, err)) = &app.edit.message {
        let style = if *err { t.error() } else { t.ok() };
        let whole = format!(" {m} ");
        let room = width.saturating_sub(used);
        if crate::format::width(&whole) <= room {
            used += crate::format::width(&whole);
            out.push(Span::styled(whole, style));
        } else {
            let more = " … (! whole) ";
            let keep = room.saturating_sub(crate::format::width(more) + 1);
            let mut cut = String::from(" ");
            for c in m.chars() {
                if crate::format::width(&cut) + crate::format::width(&c.to_string()) > keep {
                    break;
                }
                cut.push(c);
            }
            used += crate::format::width(&cut) + crate::format::width(more);
            out.push(Span::styled(cut, style));
            out.push(Span::styled(more, t.key()));
        }
    }
    out.extend(extra);
    out.extend(primary);
    for (k, what) in hints.iter().filter(|(_, w)| !keymap::PRIMARY.contains(w)) {
        let sp = hint_spans(k, what);
        let w = span_w(&sp);
        if used + w > width {
            break;
        }
        used += w;
        out.extend(sp);
    }
    Line::from(out)
}
