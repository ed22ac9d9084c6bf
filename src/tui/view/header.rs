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

fn spans_width(spans: &[Span]) -> usize {
    spans.iter().map(|s| crate::format::width(&s.content)).sum()
}

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
        let refreshed = top.len();
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
        if !s.native.is_empty() {
            let n: usize = s
                .native
                .iter()
                .flat_map(|t| &t.chains)
                .map(|c| c.rules.len())
                .sum();
            top.push(Span::styled(format!("  nft {n} rules"), t.base()));
        }
        // Who last changed nf_tables (another program, or a commit), when there is room.
        // It says more than how long the refresh took, which goes first to make room.
        if let Some(c) = &s.changed_by {
            let span = Span::styled(format!("  {c}"), t.dim());
            if spans_width(&top) + span.width() > usize::from(area.width) {
                top[refreshed] = Span::styled(format!("  refreshed {}", app.age_label()), t.dim());
            }
            if spans_width(&top) + span.width() <= usize::from(area.width) {
                top.push(span);
            }
        }
        // Narrow: the counts matter more than how long the refresh took.
        if spans_width(&top) > usize::from(area.width) {
            top[refreshed] = Span::styled(format!("  refreshed {}", app.age_label()), t.dim());
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
    let width = usize::from(area.width);
    let tabs = |compact: bool| {
        let mut tabs: Vec<Span> = vec![Span::raw(" ")];
        for (i, s) in Screen::ALL.iter().enumerate() {
            let style = if *s == app.screen {
                t.selected()
            } else {
                t.dim()
            };
            // Compact: the other screens by number only, to leave the problems room.
            let label = if compact && *s != app.screen {
                format!(" {} ", i + 1)
            } else {
                format!(" {} {} ", i + 1, s.title())
            };
            tabs.push(Span::styled(label, style));
            if !compact {
                tabs.push(Span::raw(" "));
            }
        }
        tabs
    };
    let mut second = tabs(false);
    if !problems.is_empty() && spans_width(&second) + spans_width(&problems) > width {
        second = tabs(true);
    }
    // What does not fit is cut, and `!` shows it whole.
    let room = width.saturating_sub(spans_width(&second));
    if spans_width(&problems) > room {
        let more = " … (! whole)";
        let mut keep = room.saturating_sub(crate::format::width(more));
        let mut cut: Vec<Span> = Vec::new();
        for sp in problems {
            let w = crate::format::width(&sp.content);
            if w <= keep {
                keep -= w;
                cut.push(sp);
                continue;
            }
            let mut text = String::new();
            for c in sp.content.chars() {
                let cw = crate::format::width(&c.to_string());
                if cw > keep {
                    break;
                }
                keep -= cw;
                text.push(c);
            }
            cut.push(Span::styled(text, sp.style));
            break;
        }
        cut.push(Span::styled(more, t.key()));
        problems = cut;
    }
    second.extend(problems);
    let lines = vec![Line::from(top), Line::from(second)];
    frame.render_widget(Paragraph::new(lines), area);
}

pub fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let total = match app.native_chain() {
        Some((_, c)) => c.rules.len(),
        None => app.chain().map_or(0, |c| c.rules.len()),
    };
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
            Some(p)
                if p.is_edit()
                    || matches!(
                        p,
                        crate::tui::app::Popup::Jump(_) | crate::tui::app::Popup::Reach(_)
                    ) =>
            {
                p.scopes()
            }
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
        // A native chain: nothing to stage, and the footer says why instead of offering to
        // (unless the last message, a refused staging key, says so already).
        if app.rules.native.is_some() && app.popup.is_none() {
            if app.edit.message.is_none() {
                spans.insert(
                    0,
                    Span::styled(
                        format!(" {} ", crate::tui::app::NATIVE_READ_ONLY),
                        t.warning(),
                    ),
                );
            }
            return frame.render_widget(
                Paragraph::new(fit_footer_with(app, spans, scopes, area.width, false)),
                area,
            );
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
    fit_footer_with(app, extra, scopes, width, true)
}

/// `fit_footer`; `staging`: whether edit mode's staging keys are offered (not on a native
/// chain, which is read-only).
fn fit_footer_with(
    app: &App,
    extra: Vec<Span<'static>>,
    scopes: &[Scope],
    width: u16,
    staging: bool,
) -> Line<'static> {
    let t = app.theme;
    let width = usize::from(width);
    let span_w = |sp: &[Span]| {
        sp.iter()
            .map(|s| crate::format::width(&s.content))
            .sum::<usize>()
    };
    let hints: Vec<(String, &str)> = keymap::hints(scopes)
        .into_iter()
        .filter(|(_, what)| staging || !keymap::STAGING_HINTS.contains(what))
        .collect();
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

/// The screen whose tab is at column `x` of the header's second line, as `draw` lays the tabs
/// out (by number only when the problems beside them need the room).
pub fn tab_at(app: &App, x: u16) -> Option<Screen> {
    let width = usize::from(app.size.0);
    let problems: usize = app.snapshot.as_ref().map_or(0, |s| {
        s.errors()
            .iter()
            .map(|e| 4 + crate::format::width(&crate::format::visible(&e.to_string())))
            .chain(
                s.warnings
                    .iter()
                    .map(|w| 4 + crate::format::width(&crate::format::visible(w))),
            )
            .sum()
    });
    let full = |i: usize, s: Screen| crate::format::width(&format!(" {} {} ", i + 1, s.title()));
    let full_w: usize = 1 + Screen::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| full(i, *s) + 1)
        .sum::<usize>();
    let compact = problems > 0 && full_w + problems > width;
    let mut at = 1usize;
    for (i, s) in Screen::ALL.iter().enumerate() {
        let w = if compact && *s != app.screen {
            3
        } else {
            full(i, *s)
        };
        if (at..at + w).contains(&usize::from(x)) {
            return Some(*s);
        }
        at += w + usize::from(!compact);
    }
    None
}
