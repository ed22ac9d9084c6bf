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

/// Header, body (form | result), footer.
fn areas(size: (u16, u16)) -> (Rect, Rect, Rect, Rect) {
    // The Rules screen's layout without its tree: the whole body.
    let a = super::areas(size, false);
    let form_w = if size.0 >= 100 { 42 } else { 32 };
    let [form, result] =
        Layout::horizontal([Constraint::Length(form_w), Constraint::Min(20)]).areas(a.rules);
    (a.header, form, result, a.footer)
}

/// Rows above the steps list inside the result pane: the verdict (2), the packet, the path.
const RESULT_HEAD: u16 = 4;

/// How many step rows the result pane shows.
pub fn viewport_rows(size: (u16, u16)) -> usize {
    let (_, _, result, _) = areas(size);
    result.height.saturating_sub(2 + RESULT_HEAD) as usize
}

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let (header, form, result, footer) = areas((area.width, area.height));
    super::header::draw(frame, app, header);
    draw_form(frame, app, form);
    draw_result(frame, app, result);
    draw_footer(frame, app, footer);
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
                "Describe a packet in the form and press Enter to trace it through the rule set.",
                t.base(),
            ),
            Line::raw(""),
            Line::styled(
                "Esc leaves the form; then s traces this SSH session. t on the Conntrack screen traces the selected connection.",
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
    let lines: Vec<Line> = rows
        .iter()
        .enumerate()
        .skip(tr.offset)
        .take(list.height as usize)
        .map(|(i, r)| {
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
            let mut style = if decider { vstyle } else { style };
            if i == tr.cursor {
                style = if focused {
                    t.selected()
                } else {
                    t.selected_unfocused()
                };
            }
            Line::styled(format!("{marker}{}", crate::format::visible(&text)), style)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list);
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
    }
    for (k, what) in keymap::hints(scopes) {
        spans.push(Span::styled(format!(" {k}"), t.key()));
        spans.push(Span::styled(format!(" {what} "), t.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
