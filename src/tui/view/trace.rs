//! The Trace screen: the packet form on the left, the verdict and the path's steps on the right.
//!
//! ```text
//! ┌ Packet ───────────────┐┌ Trace ──────────────────────────────────────────┐
//! │ proto     tcp         ││ verdict: ACCEPT                                   │
//! │ src       198.51.…    ││ IPv4 tcp 198.51.100.7:any → 203.0.113.2:2222 …   │
//! │ …                     ││ path 1 of 1 · ACCEPT · decided by rule 3 of …    │
//! │                       ││ PREROUTING                                        │
//! │                       ││   nat PREROUTING                                  │
//! │                       ││ ►    1 yes  -A PREROUTING -i wan0 -j PORTFWD      │
//! └───────────────────────┘└───────────────────────────────────────────────────┘
//! ```

use crate::trace::{Step, Verdict};
use crate::tui::app::App;
use crate::tui::keymap::{self, Scope};
use crate::tui::trace::{Basis, FORM, RowKind, TraceFocus};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

/// Below this width the form is shown only while it is edited: the path gets the width.
pub const FORM_ALWAYS: u16 = 100;

/// Header, body (form | result), footer. `form`: whether the form is shown.
fn areas(size: (u16, u16), form: bool) -> (Rect, Rect, Rect, Rect) {
    // The Rules screen's layout without its tree: the whole body.
    let a = super::areas(size, false);
    let form_w = match (form, size.0 >= FORM_ALWAYS) {
        (false, _) => 0,
        (true, true) => 42,
        (true, false) => 32,
    };
    let [form, result] =
        Layout::horizontal([Constraint::Length(form_w), Constraint::Min(20)]).areas(a.rules);
    (a.header, form, result, a.footer)
}

/// Rows above the steps list inside the result pane: the verdict (2), the packet, the path.
const RESULT_HEAD: u16 = 4;

/// How many step rows the result pane shows.
pub fn viewport_rows(size: (u16, u16)) -> usize {
    let (_, _, result, _) = areas(size, true);
    result.height.saturating_sub(2 + RESULT_HEAD) as usize
}

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let (header, form, result, footer) = areas((area.width, area.height), form_shown(app));
    super::header::draw(frame, app, header);
    if form.width > 0 {
        draw_form(frame, app, form);
    }
    draw_result(frame, app, result);
    draw_footer(frame, app, footer);
}

/// Whether the form is on screen: always when wide, else only while it is edited (or no trace
/// has been run yet, to show what there is to fill in).
pub fn form_shown(app: &App) -> bool {
    app.size.0 >= FORM_ALWAYS || app.trace.focus == TraceFocus::Form || app.trace.result.is_none()
}

/// The width of the steps list.
pub fn list_width(app: &App) -> usize {
    let (_, _, result, _) = areas(app.size, form_shown(app));
    usize::from(result.width.saturating_sub(2))
}

fn pane(
    app: &App,
    title: impl Into<std::borrow::Cow<'static, str>>,
    focused: bool,
) -> Block<'static> {
    let t = app.theme;
    Block::bordered()
        .title(Line::styled(title, t.title()))
        .border_style(if focused {
            t.border_focused()
        } else {
            t.border()
        })
}

/// The end of `s` that fits `n` cells (the end of a long address is what tells them apart).
fn tail(s: &str, n: usize) -> String {
    crate::format::tail_to_width(s, n)
}

fn draw_form(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let tr = &app.trace;
    let focused = tr.focus == TraceFocus::Form;
    let block = pane(app, " Packet ", focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let value_w = (inner.width as usize).saturating_sub(13).max(4);
    let mut lines: Vec<Line> = Vec::new();
    for (i, ((field, label), value)) in FORM.iter().zip(&tr.values).enumerate() {
        let here = focused && i == tr.field;
        let bad = tr.error.as_ref().is_some_and(|(f, _)| f == field);
        let mark = if bad {
            "✗"
        } else if here {
            "›"
        } else {
            " "
        };
        let mut spans = vec![
            Span::styled(
                format!("{mark}{label:<10} "),
                if bad { t.error() } else { t.key() },
            ),
            Span::styled(
                tail(value, value_w),
                if here { t.selected() } else { t.base() },
            ),
        ];
        if here {
            spans.push(Span::styled("▏", t.key()));
        }
        lines.push(Line::from(spans));
        if let (true, Some((_, e))) = (bad, &tr.error) {
            lines.push(Line::styled(format!("  {e}"), t.error()));
        }
    }
    if let Some(nat) = &tr.nat {
        lines.push(Line::styled(
            format!(" the entry's NAT: {}", nat.describe()),
            t.warning(),
        ));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(" empty: unknown · Enter traces", t.dim()));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// The style of the verdict line: green for a sure ACCEPT, red for a sure DROP or REJECT,
/// yellow for anything the description leaves open.
fn verdict_style(app: &App, certain: Option<Verdict>) -> Style {
    let t = app.theme;
    let s = match certain {
        Some(Verdict::Accept) => t.ok(),
        Some(Verdict::Drop | Verdict::Reject) => t.error(),
        _ => t.warning(),
    };
    s.add_modifier(Modifier::BOLD)
}

/// The words of the rule a step looked at, from the rule set the trace went through.
fn rule_text<'a>(app: &'a App, s: &Step) -> Option<&'a str> {
    if s.nft_table.is_some() {
        return app.trace.native_text(s);
    }
    let staged = app.trace.result.as_ref().map(|r| r.basis) == Some(Basis::Staged);
    let rs = match app.edit.active() {
        Some(st) if staged => st.result_for(s.family)?,
        _ => app.snapshot.as_ref()?.family(s.family).ruleset()?,
    };
    let chain = rs.table(s.table?.name())?.chain(s.chain.as_deref()?)?;
    Some(chain.rules.get(s.rule_index()?)?.text.as_str())
}

fn draw_result(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let tr = &app.trace;
    // Which rule set: said in the title whenever edits are staged.
    // The basis of the trace shown, or of the next one when none is shown yet.
    let basis = tr.result.as_ref().map_or(
        if tr.kernel_only {
            Basis::Kernel
        } else {
            Basis::Staged
        },
        |r| r.basis,
    );
    let title = match (app.edit.active(), basis) {
        (Some(st), Basis::Staged) => format!(
            " Trace · STAGED rules ({} staged) · K kernel's ",
            st.ops().len()
        ),
        (Some(st), Basis::Kernel) => format!(
            " Trace · kernel's rules ({} staged ignored) · K staged ",
            st.ops().len()
        ),
        (None, _) => " Trace ".to_string(),
    };
    let block = pane(app, title, tr.focus == TraceFocus::Steps);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(res) = &tr.result else {
        let lines = vec![
            Line::styled(
                "Describe a packet in the form and trace it through the rule set: e (or Enter, or /) edits the form, Enter there traces.",
                t.base(),
            ),
            Line::raw(""),
            Line::styled(
                "s traces this SSH session. t on the Conntrack screen traces the selected connection. Esc leaves the form.",
                t.dim(),
            ),
        ];
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        return;
    };
    let trace = &res.trace;
    let [verdict, packet, path_line, list] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    let vstyle = verdict_style(app, trace.certain());
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("verdict: ", t.header()),
            Span::styled(trace.summary(), vstyle),
        ]))
        .wrap(Wrap { trim: false }),
        verdict,
    );
    frame.render_widget(
        Paragraph::new(Line::styled(res.packet.to_string(), t.dim())),
        packet,
    );
    let Some(path) = trace.paths.get(tr.path) else {
        return;
    };
    let n = trace.paths.len();
    let mut head = Vec::new();
    if n > 1 {
        head.push(Span::styled(
            format!("path {} of {n} ([ ]) · ", path.id + 1),
            t.key(),
        ));
    }
    head.push(Span::styled(
        path.verdict.name(),
        verdict_style(app, Some(path.verdict)),
    ));
    let by = match path.decider() {
        Some(s) if !path.note.contains(&s.place()) => {
            format!(" · decided by {} · {}", s.place(), path.note)
        }
        Some(_) => format!(" · {}", path.note),
        None => format!(" · {}", path.note),
    };
    head.push(Span::styled(by, t.dim()));
    frame.render_widget(Paragraph::new(Line::from(head)), path_line);

    let rows = tr.rows();
    let focused = tr.focus == TraceFocus::Steps;
    let w = usize::from(list.width);
    let mut lines: Vec<Line> = Vec::new();
    for (i, r) in rows.iter().enumerate().skip(tr.offset) {
        if lines.len() >= usize::from(list.height) {
            break;
        }
        let (text, style, decider) = row_text(app, path, r);
        let mut style = if decider { vstyle } else { style };
        if i == tr.cursor {
            style = if focused {
                t.selected()
            } else {
                t.selected_unfocused()
            };
        }
        let parts = super::long::rows(&text, tr.wrap, tr.hscroll, w);
        for p in parts {
            lines.push(Line::styled(p, style));
        }
    }
    lines.truncate(usize::from(list.height));
    frame.render_widget(Paragraph::new(lines), list);
}

/// A row of the steps list as text (the decider marked `►`), its style, and whether it is the
/// deciding step.
fn row_text(
    app: &App,
    path: &crate::trace::Path,
    r: &crate::tui::trace::StepRow,
) -> (String, Style, bool) {
    let t = app.theme;
    let step = r.step.and_then(|s| path.steps.get(s));
    let decider = r.step.is_some() && r.step == path.decided_by && r.is_step();
    let indent = "  ".repeat(r.depth);
    let (text, style) = match &r.kind {
        RowKind::Hook(h) => (h.clone(), t.header()),
        RowKind::Chain(c) => (format!("{indent}{c}"), t.key()),
        RowKind::Rule { rule, matched } => {
            let words = step.and_then(|s| rule_text(app, s)).unwrap_or("?");
            let style = if matched.starts_with("yes") {
                t.base()
            } else if matched.starts_with('?') {
                t.warning()
            } else {
                t.dim()
            };
            (format!("{indent}{rule:>3} {matched:<5} {words}"), style)
        }
        RowKind::Effect(e) => (format!("{indent}    → {e}"), t.base()),
        RowKind::Note(n) => (format!("{indent}{n}"), t.dim()),
    };
    let marker = if decider { "►" } else { " " };
    (
        format!("{marker}{}", crate::format::visible(&text)),
        style,
        decider,
    )
}

/// How many screen rows step row `i` of the shown path takes (more than one only wrapped).
pub fn row_height_at(app: &App, i: usize) -> usize {
    let tr = &app.trace;
    if !tr.wrap {
        return 1;
    }
    let Some(path) = tr.result.as_ref().and_then(|r| r.trace.paths.get(tr.path)) else {
        return 1;
    };
    tr.rows().get(i).map_or(1, |r| {
        super::long::wrapped_rows(&row_text(app, path, r).0, list_width(app))
    })
}

/// The widest step row of the shown path, for the sideways scroll's limit.
pub fn widest_row(app: &App) -> usize {
    let tr = &app.trace;
    let Some(path) = tr.result.as_ref().and_then(|r| r.trace.paths.get(tr.path)) else {
        return 0;
    };
    tr.rows()
        .iter()
        .map(|r| crate::format::width(&row_text(app, path, r).0))
        .max()
        .unwrap_or(0)
}

/// The trace shown, as text: the verdict, the packet, the path and its steps, as on screen.
pub fn trace_text(app: &App) -> Option<String> {
    let tr = &app.trace;
    let res = tr.result.as_ref()?;
    let path = res.trace.paths.get(tr.path)?;
    let mut out = format!("verdict: {}\n{}\n", res.trace.summary(), res.packet);
    let n = res.trace.paths.len();
    if n > 1 {
        out.push_str(&format!("path {} of {n}: ", path.id + 1));
    }
    out.push_str(&format!("{} · {}\n", path.verdict.name(), path.note));
    for r in tr.rows() {
        out.push_str(row_text(app, path, &r).0.trim_end());
        out.push('\n');
    }
    Some(out)
}

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let scopes: &[Scope] = match (&app.popup, app.trace.focus) {
        (Some(_), _) => &[Scope::Popup],
        (None, TraceFocus::Form) => &[Scope::TraceForm],
        (None, TraceFocus::Steps) => &[Scope::Trace, Scope::Global],
    };
    let mut spans = Vec::new();
    if let Some(m) = &app.trace.message {
        spans.push(Span::styled(format!(" {m} "), t.warning()));
    } else if let Some((m, bad)) = &app.edit.message {
        spans.push(Span::styled(
            format!(" {m} "),
            if *bad { t.error() } else { t.ok() },
        ));
    }
    for (k, what) in keymap::hints(scopes) {
        spans.push(Span::styled(format!(" {k}"), t.key()));
        spans.push(Span::styled(format!(" {what} "), t.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The steps list's row at a screen position (an index into the shown path's rows).
pub fn step_row_at(app: &App, x: u16, y: u16) -> Option<usize> {
    let tr = &app.trace;
    tr.result.as_ref()?;
    let (_, _, result, _) = areas(app.size, form_shown(app));
    let inner = Block::bordered().inner(result);
    let list_top = inner.y + RESULT_HEAD;
    if !inner.contains(ratatui::layout::Position { x, y }) || y < list_top {
        return None;
    }
    let mut top = list_top;
    let n = tr.rows().len();
    for i in tr.offset..n {
        let h = row_height_at(app, i) as u16;
        if y < top + h {
            return Some(i);
        }
        top += h;
    }
    None
}

/// Whether a screen position is on the packet form.
pub fn form_at(app: &App, x: u16, y: u16) -> bool {
    let (_, form, _, _) = areas(app.size, form_shown(app));
    form.width > 0 && form.contains(ratatui::layout::Position { x, y })
}
