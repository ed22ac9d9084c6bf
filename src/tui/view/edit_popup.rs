//! Edit mode's popups: the one-line editor (with the parser's or iptables-restore's sentence
//! under it), the questions before destructive actions, the commit's checklist and the
//! countdown after a commit.
//!
//! ```text
//! ┌ IPv4 filter/INPUT: append a rule ──────────────────────────┐
//! │ -A INPUT -p tcp --dport 22 -m comment --comment "ssh█       │  the text area
//! │ ✗ a " quote is opened but never closed                      │  the problem, in red
//! │ Enter save · Esc cancel · Tab complete                      │
//! └─────────────────────────────────────────────────────────────┘
//! ```

use crate::edit::commit::Step;
use crate::tui::app::{App, Popup};
use crate::tui::edit::{Ask, StepState};
use crate::tui::editor::Purpose;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

/// A box of width `w_pct` of the screen (at least `min_w`) and of the height its lines need.
fn boxed(area: Rect, w_pct: u16, min_w: u16, lines: &[Line], extra: u16) -> Rect {
    let w = (area.width * w_pct / 100).max(min_w).min(area.width);
    let inner_w = w.saturating_sub(2).max(1);
    let text_h: u16 = lines
        .iter()
        .map(|l| (l.width() as u16).div_ceil(inner_w).max(1))
        .sum();
    let h = (text_h + 2 + extra).min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn keys(app: &App, pairs: &[(&str, &str)]) -> Line<'static> {
    let t = app.theme;
    let mut spans = Vec::new();
    for (i, (k, what)) in pairs.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", t.dim()));
        }
        spans.push(Span::styled(k.to_string(), t.key()));
        spans.push(Span::raw(format!(" {what}")));
    }
    Line::from(spans)
}

pub fn draw_editor(frame: &mut Frame, app: &App) {
    let t = app.theme;
    let Some(ed) = app.editor() else {
        return;
    };
    let mut below: Vec<Line> = Vec::new();
    if let Some(p) = &ed.problem {
        below.push(Line::styled(format!("✗ {p}"), t.error()));
    } else if let Some(r) = &ed.refused {
        below.push(Line::styled(format!("✗ not staged: {r}"), t.error()));
    } else if ed.checking.is_some() {
        below.push(Line::styled(
            "… checking the staged table with iptables-restore --test",
            t.warning(),
        ));
    } else if let Some(n) = &ed.note {
        below.push(Line::styled(format!("note: {n}"), t.warning()));
    } else if ed.purpose.is_rule() {
        below.push(Line::styled("✓ nfscope's parser reads it", t.ok()));
    }
    if !ed.candidates.is_empty() {
        below.push(Line::styled(
            format!("Tab: {}", ed.candidates.join(" ")),
            t.dim(),
        ));
    }
    let hint = match ed.purpose {
        Purpose::Lockout => keys(app, &[("Enter", "commit anyway"), ("Esc", "go back")]),
        _ if ed.purpose.is_rule() => keys(
            app,
            &[
                ("Enter", "save"),
                ("Esc", "cancel"),
                ("Tab", "complete after -j, -g, -m"),
            ],
        ),
        _ => keys(app, &[("Enter", "save"), ("Esc", "cancel")]),
    };
    below.push(hint);
    let area = frame.area();
    let mut r = boxed(area, 90, 60, &below, 1);
    if ed.purpose == Purpose::Lockout {
        // Below the checklist and its findings, which it must not hide.
        r.y = (area.y + area.height)
            .saturating_sub(r.height + 2)
            .max(area.y);
    }
    let block = Block::bordered()
        .title(Line::styled(format!(" {} ", ed.title), t.title()))
        .border_style(t.border_focused());
    let inner = block.inner(r);
    frame.render_widget(Clear, r);
    frame.render_widget(block, r);
    if inner.height == 0 {
        return;
    }
    // The chain's name before the rule, as in a save line.
    let prefix = match (&ed.purpose, &app.rules.selected) {
        (p, Some(k)) if p.is_rule() => format!("-A {} ", k.chain),
        _ => String::new(),
    };
    // Left out when the text needs the room: a scrolled text behind it would misread.
    let room = inner.width as usize;
    let prefix = if crate::format::width(&prefix) + crate::format::width(&ed.text()) + 1 > room {
        String::new()
    } else {
        prefix
    };
    let pw = (crate::format::width(&prefix) as u16).min(inner.width / 3);
    frame.render_widget(
        Paragraph::new(Line::styled(prefix, t.dim())),
        Rect::new(inner.x, inner.y, pw, 1),
    );
    frame.render_widget(
        &ed.area,
        Rect::new(inner.x + pw, inner.y, inner.width.saturating_sub(pw), 1),
    );
    let rest = Rect::new(
        inner.x,
        inner.y + 1,
        inner.width,
        inner.height.saturating_sub(1),
    );
    frame.render_widget(Paragraph::new(below).wrap(Wrap { trim: false }), rest);
}

pub fn draw_ask(frame: &mut Frame, app: &App) {
    let t = app.theme;
    let Some(ask) = app.popup.as_ref().and_then(Popup::question) else {
        return;
    };
    let (title, mut lines, yes) = match ask {
        Ask::DeleteRule { at, pos, text } => (
            " Delete this rule? ",
            vec![
                Line::styled(format!("{at}, rule {pos}:"), t.title()),
                Line::raw(format!("-A {} {text}", at.chain)),
                Line::raw(""),
                Line::raw(
                    "The deletion is staged: nothing changes until you commit (u undoes it).",
                ),
            ],
            "stage the deletion",
        ),
        Ask::Flush { at, rules } => (
            " Flush the chain? ",
            vec![
                Line::styled(format!("Delete all {rules} rules of {at}?"), t.error()),
                Line::raw(""),
                Line::raw("Staged, not applied: nothing changes until you commit (u undoes it)."),
            ],
            "stage the flush",
        ),
        Ask::DeleteChain { at, refs } => {
            let mut l = vec![Line::styled(format!("Delete the chain {at}?"), t.error())];
            if !refs.is_empty() {
                let n = refs.len();
                l.push(Line::raw(format!(
                    "{n} rule{} elsewhere jump{} to it, and {} deleted too:",
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "s" } else { "" },
                    if n == 1 { "it is" } else { "they are" }
                )));
                const SHOWN: usize = 6;
                for r in refs.iter().take(SHOWN) {
                    l.push(Line::styled(format!("  {r}"), t.error()));
                }
                if n > SHOWN {
                    l.push(Line::raw(format!("  and {} more", n - SHOWN)));
                }
            }
            l.push(Line::raw(""));
            l.push(Line::raw(
                "Staged, not applied: nothing changes until you commit.",
            ));
            (" Delete the chain? ", l, "stage the deletion")
        }
        Ask::Discard { ops } => (
            " Discard every staged change? ",
            vec![
                Line::styled(
                    if *ops == 1 {
                        "Forget the staged change?".to_string()
                    } else {
                        format!("Forget all {ops} staged changes?")
                    },
                    t.error(),
                ),
                Line::raw(
                    "The kernel is not touched; the staged work is gone (undo cannot bring it back).",
                ),
            ],
            "discard",
        ),
        Ask::Commit { ops, target } => (
            " Commit? ",
            vec![
                Line::styled(
                    format!(
                        "Commit {ops} staged change{} to {target}?",
                        if *ops == 1 { "" } else { "s" }
                    ),
                    t.title(),
                ),
                Line::raw(""),
                Line::raw(
                    "In order: validate with iptables-restore --test, check nobody changed the chains you edited, check your SSH session survives, back up both families, arm the watchdog, apply one transaction per table, verify. Then you have a countdown to confirm; without it the watchdog restores the backup.",
                ),
            ],
            "commit",
        ),
        Ask::Resume {
            ops,
            moved,
            saved_at,
        } => {
            let when = crate::time::local_datetime(saved_at.saturating_mul(1000));
            let what = if *ops == 1 {
                "the staged change".to_string()
            } else {
                format!("the {ops} staged changes")
            };
            let mut l = vec![Line::styled(
                format!("Resume {what} saved by an earlier nfscope at {when}?"),
                t.title(),
            )];
            if moved.is_empty() {
                l.push(Line::raw("The rule set has not moved since."));
            } else {
                l.push(Line::styled(
                    format!(
                        "The rule set moved since then, in: {}. Resumed, the changes are re-applied on the rules as they are now, each to the rule it was staged on; where one is gone, the view says it is stale.",
                        moved.join(", ")
                    ),
                    t.warning(),
                ));
            }
            (" Resume? ", l, "resume")
        }
        Ask::DiscardSaved { ops } => (
            " Discard the saved changes? ",
            vec![
                Line::styled(
                    if *ops == 1 {
                        "Forget the saved change of the earlier run for good?".to_string()
                    } else {
                        format!("Forget the {ops} saved changes of the earlier run for good?")
                    },
                    t.error(),
                ),
                Line::raw("The kernel is not touched. n goes back to the question."),
            ],
            "discard them",
        ),
        Ask::Zero(req) => (
            " Zero the counters? ",
            vec![
                Line::styled(format!("Zero {} now?", req.describe()), t.title()),
                Line::raw(""),
                Line::raw(
                    "Counters are not configuration: they are zeroed at once, as iptables -Z does, with no commit or countdown, and the audit log records it.",
                ),
                Line::from(vec![
                    Span::styled("s", t.key()),
                    Span::raw(" stages the chain's zeroing with the other changes instead."),
                ]),
            ],
            "zero now",
        ),
        Ask::Policy { at, from, to } => (
            " Flip the policy? ",
            vec![
                Line::styled(
                    format!("Change the policy of {at} from {from} to {to}?"),
                    if to == "DROP" { t.error() } else { t.title() },
                ),
                Line::raw(""),
                Line::raw("Staged, not applied: nothing changes until you commit (u undoes it)."),
            ],
            "stage it",
        ),
        Ask::QuitLosing { ops } => (
            " Quit? ",
            vec![
                Line::styled(
                    format!(
                        "The demo keeps nothing: {} lost.",
                        if *ops == 1 {
                            "the staged change is".to_string()
                        } else {
                            format!("the {ops} staged changes are")
                        }
                    ),
                    t.error(),
                ),
                Line::raw(
                    "(On a kernel or a file, staged work is saved and offered again at the next start.)",
                ),
            ],
            "quit",
        ),
    };
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled("y", t.key()),
        Span::raw(" / "),
        Span::styled("Enter", t.key()),
        Span::raw(format!(" {yes}     ")),
        Span::styled("n", t.key()),
        Span::raw(" / "),
        Span::styled("Esc", t.key()),
        Span::raw(if matches!(ask, Ask::Resume { .. }) {
            " later (nothing is lost)     "
        } else {
            " cancel"
        }),
    ]));
    if matches!(ask, Ask::Resume { .. }) {
        if let Some(last) = lines.last_mut() {
            last.spans.push(Span::styled("d", t.key()));
            last.spans.push(Span::raw(" discard them"));
        }
    }
    let r = boxed(frame.area(), 70, 50, &lines, 0);
    framed(frame, app, title, lines, r, 0);
}

fn step_line(app: &App, step: Step, state: &StepState) -> Line<'static> {
    let t = app.theme;
    let (mark, style, detail): (&str, Style, String) = match state {
        StepState::Waiting => ("·", t.dim(), String::new()),
        StepState::Running => ("…", t.warning(), "running".into()),
        StepState::Done(d) => ("✓", t.ok(), d.clone()),
        StepState::Failed(d) => ("✗", t.error(), d.clone()),
        StepState::NeedsYou(d) => ("!", t.error(), d.clone()),
    };
    Line::from(vec![
        Span::styled(format!(" {mark} "), style),
        Span::styled(format!("{:<14}", step.label()), style),
        Span::raw(detail),
    ])
}

pub fn draw_commit(frame: &mut Frame, app: &App) {
    let t = app.theme;
    let Some(c) = &app.edit.commit else {
        return;
    };
    let mut lines: Vec<Line> = c
        .steps
        .iter()
        .map(|(s, st)| step_line(app, *s, st))
        .collect();
    if !c.findings.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("This change would cut you off:", t.error()));
        for f in &c.findings {
            lines.push(Line::styled(format!("  ✗ {f}"), t.error()));
        }
    }
    if !c.conflicts.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "Changed in the kernel since you started editing:",
            t.error(),
        ));
        for l in &c.conflicts {
            let style = if l.trim_start().starts_with('+') {
                t.added()
            } else if l.trim_start().starts_with('-') {
                t.removed()
            } else {
                t.header()
            };
            lines.push(Line::styled(l.clone(), style));
        }
    }
    if let Some((o, bad)) = &c.outcome {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            o.clone(),
            if *bad { t.error() } else { t.ok() },
        ));
    }
    lines.push(Line::raw(""));
    lines.push(if app.edit.countdown.is_some() {
        Line::styled("waiting for your answer below", t.dim())
    } else if c.running {
        Line::styled("working…", t.dim())
    } else if c.rebase.is_some() {
        keys(app, &[("r", "rebase"), ("Esc", "close")])
    } else {
        keys(app, &[("Esc", "close")])
    });
    // Word wrapping may take a line or two more than the estimate.
    let r = boxed(frame.area(), 85, 60, &lines, 1);
    framed(frame, app, " Commit ", lines, r, c.scroll.0);
}

/// A popup box at `r`: cleared, bordered, titled, its lines wrapped.
fn framed(frame: &mut Frame, app: &App, title: &str, lines: Vec<Line>, r: Rect, scroll: u16) {
    let t = app.theme;
    let block = Block::bordered()
        .title(Line::styled(title.to_string(), t.title()))
        .border_style(t.border_focused());
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        r,
    );
}

pub fn draw_countdown(frame: &mut Frame, app: &App) {
    let t = app.theme;
    let secs = app.edit.seconds_left(app.now).unwrap_or(0);
    let lines = vec![
        Line::styled("Applied and verified.", t.ok()),
        Line::from(vec![
            Span::raw("Rolling back in "),
            Span::styled(format!("{secs} s"), t.error()),
            Span::raw(" unless you confirm that you can still reach this machine."),
        ]),
        Line::raw(""),
        keys(
            app,
            &[
                ("y/Enter", "keep it"),
                ("+", "30 s more"),
                ("n", "roll back now"),
            ],
        ),
    ];
    // Low on the screen, so the checklist above stays readable.
    let area = frame.area();
    let mut r = boxed(area, 60, 50, &lines, 0);
    r.y = (area.y + area.height)
        .saturating_sub(r.height + 2)
        .max(area.y);
    framed(frame, app, " Keep this change? ", lines, r, 0);
}
