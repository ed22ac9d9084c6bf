//! Popups drawn over the body: the help (generated from the keymap) and a rule's details.

use super::format::{human, rate};
use crate::ruleset::rule::OptionArg;
use crate::ruleset::save::{CounterMode, rule_line};
use crate::tui::app::App;
use crate::tui::keymap::{Scope, bindings, key_label};
use crate::tui::scroll::Scroll;
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

fn centered(area: Rect, w_pct: u16, h_pct: u16, min_w: u16, min_h: u16) -> Rect {
    let w = (area.width * w_pct / 100).max(min_w).min(area.width);
    let h = (area.height * h_pct / 100).max(min_h).min(area.height);
    let [v] = Layout::vertical([Constraint::Length(h)])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::horizontal([Constraint::Length(w)])
        .flex(Flex::Center)
        .areas(v);
    r
}

/// How far a popup's text can scroll: its rows once wrapped to the popup's width (not its
/// lines), less the rows shown, so that the last line can always be brought into view.
fn max_scroll_of(para: &Paragraph, area: Rect) -> u16 {
    let rows = para.line_count(area.width.saturating_sub(2));
    u16::try_from(rows)
        .unwrap_or(u16::MAX)
        .saturating_sub(area.height.saturating_sub(2))
}

/// The help popup's furthest scroll at the App's size, for `update` to keep its scroll within.
pub fn help_max_scroll(app: &App) -> u16 {
    let area = centered(Rect::new(0, 0, app.size.0, app.size.1), 70, 80, 50, 10);
    max_scroll_of(
        &Paragraph::new(help_lines(app)).wrap(Wrap { trim: false }),
        area,
    )
}

pub(super) fn show(
    frame: &mut Frame,
    app: &App,
    title: String,
    lines: Vec<Line<'static>>,
    scroll: Scroll,
    w: u16,
) {
    let t = app.theme;
    let area = centered(frame.area(), w, 80, 50, 10);
    let para = Paragraph::new(lines).wrap(Wrap { trim: false });
    let max_scroll = max_scroll_of(&para, area);
    let block = Block::bordered()
        .title(Line::styled(title, t.title()))
        .title_bottom(Line::styled(" Esc closes · ↑↓ scroll ", t.dim()))
        .border_style(t.border_focused());
    frame.render_widget(Clear, area);
    frame.render_widget(
        para.block(block).scroll((scroll.offset(max_scroll), 0)),
        area,
    );
}

/// What the rule-set source says now (the header may cut it), then every message said so
/// far, newest first, whole, then the last records of the audit log (every commit, apply,
/// confirm and rollback, by whoever made them), newest first.
pub fn draw_messages(frame: &mut Frame, app: &App, scroll: Scroll) {
    let t = app.theme;
    let mut lines: Vec<Line<'static>> = Vec::new();
    if let Some(s) = &app.snapshot {
        for e in s.errors() {
            lines.push(Line::styled(
                format!("✗ {}", crate::format::visible(&e)),
                t.error(),
            ));
        }
        for w in &s.warnings {
            lines.push(Line::styled(
                format!("⚠ {}", crate::format::visible(w)),
                t.warning(),
            ));
        }
    }
    let audit = audit_lines(app);
    if !lines.is_empty() {
        lines.insert(0, Line::styled("The rule sets, now", t.header()));
        lines.push(Line::raw(""));
    }
    if !lines.is_empty() || !audit.is_empty() {
        lines.push(Line::styled("Messages", t.header()));
    }
    if app.edit.log.is_empty() {
        lines.push(Line::styled("Nothing has been said yet.", t.dim()));
    } else {
        lines.extend(
            app.edit
                .log
                .iter()
                .rev()
                .map(|(m, err)| Line::styled(m.clone(), if *err { t.error() } else { t.ok() })),
        );
    }
    if !audit.is_empty() {
        lines.push(Line::raw(""));
        lines.extend(audit);
    }
    show(frame, app, " Messages ".into(), lines, scroll, 80);
}

/// The audit log's section of the messages popup: its last records, newest first, a line
/// each (the time as written, in UTC; who did what from where; the first line of the
/// detail). Nothing before it was read.
fn audit_lines(app: &App) -> Vec<Line<'static>> {
    let t = app.theme;
    let Some(tail) = &app.audit else {
        return Vec::new();
    };
    let path = crate::format::visible(&tail.path.display().to_string()).into_owned();
    let mut lines = Vec::new();
    match &tail.records {
        Err(e) => {
            lines.push(Line::styled(format!("The audit log ({path})"), t.header()));
            lines.push(Line::styled(
                format!("✗ cannot read it: {}", crate::format::visible(e)),
                t.error(),
            ));
        }
        Ok(records) if records.is_empty() => {
            lines.push(Line::styled(format!("The audit log ({path})"), t.header()));
            lines.push(Line::styled(
                "No record yet: commits, applies, confirmations and rollbacks are recorded here.",
                t.dim(),
            ));
        }
        Ok(records) => {
            lines.push(Line::styled(
                format!(
                    "The audit log ({path}): the last {}, newest first",
                    records.len()
                ),
                t.header(),
            ));
            for r in records.iter().rev() {
                let style = if r.action.contains("fail") || r.action.contains("refused") {
                    t.error()
                } else if r.action.starts_with("rollback") {
                    t.warning()
                } else {
                    t.base()
                };
                let text = format!("{} {}", r.time, crate::edit::audit::summary(r));
                lines.push(Line::styled(
                    crate::format::visible(&text).into_owned(),
                    style,
                ));
            }
        }
    }
    lines
}

pub fn draw_help(frame: &mut Frame, app: &App, scroll: Scroll) {
    show(frame, app, " Help ".into(), help_lines(app), scroll, 70);
}

/// The help's lines, from the one keymap table.
fn help_lines(app: &App) -> Vec<Line<'static>> {
    let t = app.theme;
    let mut lines: Vec<Line> = Vec::new();
    // The few keys that work everywhere first, then this screen's (the Rules screen's are many
    // since edit mode).
    let mut scopes = vec![
        Scope::Global,
        app.screen.scope(),
        Scope::Popup,
        Scope::Confirm,
    ];
    for s in [
        Scope::Rules,
        Scope::Conntrack,
        Scope::Trace,
        Scope::TraceForm,
        Scope::Flow,
        Scope::Changes,
        Scope::Editor,
        Scope::Commit,
        Scope::Countdown,
        Scope::Jump,
        Scope::Reach,
    ] {
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    for scope in scopes {
        lines.push(Line::styled(scope.title(), t.header()));
        for b in bindings().iter().filter(|b| b.scope == scope) {
            let keys: Vec<String> = b.keys.iter().map(key_label).collect();
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<16}", keys.join(" ")), t.key()),
                Span::raw(b.help),
            ]));
        }
        lines.push(Line::raw(""));
    }
    lines.push(Line::styled(
        "Rules: rows in bold green counted packets since the last refresh. pkt/s is the rate over the last interval.",
        t.dim(),
    ));
    lines.push(Line::styled(
        "Native nftables tables come after the iptables ones in the chain tree, and on the Flow screen among them in priority order: read-only, nfscope stages nothing on them (use nft).",
        t.dim(),
    ));
    lines.push(Line::styled(
        "Conntrack: bold green rows are new, a highlighted state just changed, struck-out grey rows were just destroyed. Timeouts count down from the kernel's last report; →/← are the original and reply directions. The filter language: docs/conntrack-filter.md.",
        t.dim(),
    ));
    // The conntrack flags' legend (the same as in an entry's details).
    lines.push(Line::raw(""));
    lines.extend(super::ct_popup::legend_lines(t));
    lines
}

fn opt_text(o: &OptionArg) -> String {
    let mut s = String::new();
    if o.negated {
        s.push_str("! ");
    }
    s.push_str(&o.name);
    for v in &o.values {
        s.push(' ');
        s.push_str(&crate::ruleset::words::quote(v));
    }
    s
}

/// A count in full, and in human units when they differ: `123456 (123K)`.
fn both(n: u64) -> String {
    let h = human(n);
    if h == n.to_string() {
        h
    } else {
        format!("{n} ({h})")
    }
}

/// A line of the details: the field's name, then its value (escaped: others wrote it).
fn field(t: crate::tui::theme::Theme, name: &str, value: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{name:<13}"), t.header()),
        Span::raw(crate::format::visible(&value).into_owned()),
    ])
}

/// A native nftables rule's details: where it is, its counters and rate, its text whole.
fn draw_native_detail(frame: &mut Frame, app: &App, scroll: Scroll) {
    let t = app.theme;
    let (Some((idx, rule)), Some(key), Some((table, chain))) = (
        app.selected_native_rule(),
        app.rules.native.as_ref(),
        app.native_chain(),
    ) else {
        return;
    };
    let field = |name: &str, value: String| field(t, name, value);
    let stat = app.native_rates.chain(key).and_then(|s| s.rules.get(idx));
    let mut lines = vec![field(
        "table",
        format!(
            "{} {}{}",
            table.family,
            table.name,
            if table.dormant {
                " (dormant: not hooked, filters nothing)"
            } else {
                ""
            }
        ),
    )];
    match (&chain.hook, chain.priority) {
        (Some(h), Some(p)) => {
            lines.push(field(
                "chain",
                format!(
                    "{} (base chain, type {})",
                    chain.name,
                    chain.kind.as_deref().unwrap_or("?")
                ),
            ));
            lines.push(field("hook", format!("{h}, priority {p}")));
            lines.push(field(
                "policy",
                chain.policy.clone().unwrap_or_else(|| "?".into()),
            ));
        }
        _ => lines.push(field(
            "chain",
            format!("{} (regular: reached by jump or goto)", chain.name),
        )),
    }
    lines.extend([
        field("handle", rule.handle.to_string()),
        field(
            "counters",
            match (rule.packets, rule.bytes) {
                (Some(p), Some(b)) => format!("{} packets, {} bytes", both(p), both(b)),
                _ => "none: the rule has no `counter` statement".into(),
            },
        ),
        field(
            "rate",
            stat.and_then(|st| st.rate).map_or_else(
                || "not known yet".into(),
                |r| format!("{} packets/s", rate(r)),
            ),
        ),
    ]);
    if let Some(k) = app.native_jump_target(rule) {
        lines.push(field("jumps to", format!("{} (Enter opens it)", k.chain)));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("rule, as nft prints it", t.header()));
    lines.push(Line::raw(crate::format::visible(&rule.text).into_owned()));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Read-only: nfscope does not edit native nftables tables (use nft).",
        t.dim(),
    ));
    let title = format!(
        " Rule {} (handle {}) of {} ",
        idx + 1,
        rule.handle,
        crate::format::visible(&key.to_string())
    );
    show(frame, app, title, lines, scroll, 80);
}

pub fn draw_detail(frame: &mut Frame, app: &App, scroll: Scroll) {
    let t = app.theme;
    if app.rules.native.is_some() {
        draw_native_detail(frame, app, scroll);
        return;
    }
    let (Some((idx, rule)), Some(key)) = (app.selected_rule(), app.rules.selected.as_ref()) else {
        return;
    };
    let stat = app.rates.chain(key).and_then(|s| s.rules.get(idx));
    let field = |name: &str, value: String| field(t, name, value);
    let s = &rule.spec;
    let mut lines = vec![
        field(
            "counters",
            format!(
                "{} packets, {} bytes",
                both(rule.packets()),
                both(rule.bytes())
            ),
        ),
        field(
            "rate",
            stat.and_then(|st| st.rate).map_or_else(
                || "not known yet".into(),
                |r| format!("{} packets/s", rate(r)),
            ),
        ),
    ];
    let basics = [
        ("protocol", &s.protocol),
        ("source", &s.source),
        ("destination", &s.destination),
        ("in interface", &s.in_interface),
        ("out interface", &s.out_interface),
    ];
    for (name, v) in basics {
        if let Some(v) = v {
            let neg = if v.negated { "not " } else { "" };
            lines.push(field(name, format!("{neg}{}", v.value)));
        }
    }
    match s.fragment {
        Some(f) if !f.negated => lines.push(field(
            "fragments",
            "only second and further fragments".into(),
        )),
        Some(_) => lines.push(field(
            "fragments",
            "only unfragmented packets and first fragments".into(),
        )),
        None => {}
    }
    for m in &s.matches {
        let how = if m.implicit { " (implicit)" } else { "" };
        lines.push(field("match", format!("{}{how}", m.name)));
        for o in &m.options {
            lines.push(Line::raw(format!("{:13}  {}", "", opt_text(o))));
        }
    }
    match &s.target {
        Some(tg) => {
            let kind = match tg.kind {
                crate::ruleset::TargetKind::Jump => "jump to",
                crate::ruleset::TargetKind::Goto => "go to",
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<13}", "target"), t.header()),
                Span::raw(format!("{kind} ")),
                Span::styled(tg.name.clone(), t.target(&tg.name)),
            ]));
            for o in &tg.options {
                lines.push(Line::raw(format!("{:13}  {}", "", opt_text(o))));
            }
        }
        None => lines.push(field("target", "none: the rule only counts packets".into())),
    }
    if !s.extra.is_empty() {
        lines.push(field("not parsed", s.extra.join(" ")));
    }
    // The lint's findings on the rule as the snapshot has it (not on a staged one).
    let base = app.chain_rows(key).base_of.get(idx).copied().flatten();
    let findings = base.map_or(&[][..], |b| app.lint.of(key, b));
    if !findings.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("lint", t.header()));
        for (sev, msg) in findings {
            lines.push(Line::raw(
                crate::format::visible(&format!("{}: {msg}", sev.name())).into_owned(),
            ));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("save line", t.header()));
    lines.push(Line::raw(
        crate::format::visible(&rule_line(&key.chain, rule, CounterMode::With)).into_owned(),
    ));
    let title = format!(
        " Rule {} of {} {} ({}) ",
        idx + 1,
        key.table,
        key.chain,
        key.family.label()
    );
    show(frame, app, title, lines, scroll, 80);
}
