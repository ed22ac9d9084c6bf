//! The Rules screen: the chain tree on the left, the selected chain's rules on the right, with
//! the columns of `iptables -L -n -v --line-numbers` plus a rate and a short history. A native
//! nftables chain (read-only) shows its rules as nft prints them, with their handles.

use super::format::{human, rate, sparkline};
use super::long;
use crate::ruleset::Family;
use crate::ruleset::rates::{ChainKey, RuleStat};
use crate::ruleset::summary::{self, Columns};
use crate::source::native::NativeTable;
use crate::tui::app::{App, Focus, TreeRow};
use crate::tui::edit::RowRef;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

fn count(app: &App, n: u64) -> String {
    if app.exact { n.to_string() } else { human(n) }
}

fn pane(app: &App, title: Line<'static>, focused: bool) -> Block<'static> {
    let t = app.theme;
    Block::bordered().title(title).border_style(if focused {
        t.border_focused()
    } else {
        t.border()
    })
}

pub fn draw_tree(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let focused = app.rules.focus == Focus::Tree;
    let block = pane(app, Line::styled(" Chains ", t.title()), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // name | policy or references | rules | pkt/s, under a header naming them; the rule
    // count goes first when narrow.
    let w = inner.width;
    let with_count = w >= 30;
    let fixed = 6 + 4 + 2 + if with_count { 6 } else { 0 };
    let name_w = w.saturating_sub(fixed).max(6);
    let mut widths = vec![Constraint::Length(name_w), Constraint::Length(6)];
    let mut header = vec![Cell::from("chain"), Cell::from("policy")];
    if with_count {
        widths.push(Constraint::Length(5));
        header.push(Cell::from(Line::from("rules").right_aligned()));
    }
    widths.push(Constraint::Length(4));
    header.push(Cell::from(Line::from("pk/s").right_aligned()));
    let header = Row::new(header).style(t.header());

    let sel = app.tree_index();
    let snap = app.snapshot.as_ref();
    // Families and tables are labels across the whole width (`ip6 quarantine (dormant)` is
    // wider than the name column): drawn over an empty row once the table is.
    let label = |text: String, style: Style| (Row::new(vec![Cell::from("")]), Some((text, style)));
    // A chain that went away between the tree and the snapshot: its name alone.
    let missing = |name: &str| {
        let cell = Cell::from(format!(" {}", crate::format::visible(name)));
        (Row::new(vec![cell]), None)
    };
    // A chain: its name, policy or references, rule count (when there is room) and rate.
    let chain_row = |name: String, pol: Span<'static>, rules: usize, pps: Option<f64>, i| {
        let mut cells = vec![
            Cell::from(crate::format::visible(&name).into_owned()),
            Cell::from(pol),
        ];
        if with_count {
            cells.push(Cell::from(Line::from(rule_count(rules)).right_aligned()));
        }
        cells.push(Cell::from(
            Line::from(pps.map_or(String::new(), rate)).right_aligned(),
        ));
        let r = Row::new(cells);
        if Some(i) == sel {
            r.style(cursor(t, focused))
        } else {
            r
        }
    };
    let rows: Vec<(Row, Option<(String, Style)>)> = app
        .rules
        .tree
        .iter()
        .enumerate()
        .skip(app.rules.tree_offset)
        .take(inner.height.saturating_sub(1) as usize)
        .map(|(i, row)| match row {
            TreeRow::Family(f) => {
                let failed = snap.and_then(|s| s.family(*f).error()).is_some();
                // The error itself is in the header and the rules pane.
                let text = if failed {
                    format!("{} ✗", f.label())
                } else {
                    f.label().to_string()
                };
                label(text, if failed { t.error() } else { t.header() })
            }
            TreeRow::Table(_, name) => label(crate::format::visible(name).into_owned(), t.title()),
            TreeRow::NativeHeading => label("nftables (read-only)".into(), t.header()),
            TreeRow::NativeTable(family, name) => {
                let dormant = app
                    .native_tables()
                    .iter()
                    .any(|x| x.family == *family && x.name == *name && x.dormant);
                let text = format!(
                    "{family} {}{}",
                    crate::format::visible(name),
                    if dormant { " (dormant)" } else { "" }
                );
                label(text, if dormant { t.dim() } else { t.title() })
            }
            TreeRow::NativeChain(key) => {
                let Some((table, c)) = app.native_by_key(key) else {
                    return missing(&key.chain);
                };
                let pol = match &c.policy {
                    Some(p) => Span::styled(p.clone(), t.target(&p.to_uppercase())),
                    None => Span::styled(format!("{} ref", native_refs(table, &c.name)), t.dim()),
                };
                let rate = app.native_rates.chain(key).and_then(|s| s.rate);
                let r = chain_row(format!(" {}", key.chain), pol, c.rules.len(), rate, i);
                (
                    if table.dormant && Some(i) != sel {
                        r.style(t.dim())
                    } else {
                        r
                    },
                    None,
                )
            }
            TreeRow::Chain(key) => {
                let Some(c) = app.chain_by_key(key) else {
                    return missing(&key.chain);
                };
                let pol = match &c.policy {
                    Some(p) => Span::styled(p.clone(), t.target(p)),
                    None => Span::styled(format!("{} ref", table_refs(app, key)), t.dim()),
                };
                // A chain with staged changes is marked, so it shows without colour.
                let mark = if app.is_edited(key) { "*" } else { " " };
                let rate = app.rates.chain(key).and_then(|s| s.rate);
                let r = chain_row(format!("{mark}{}", key.chain), pol, c.rules.len(), rate, i);
                (r, None)
            }
        })
        .collect();
    let (rows, labels): (Vec<Row>, Vec<_>) = rows.into_iter().unzip();
    frame.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        inner,
    );
    for (y, (text, style)) in labels
        .into_iter()
        .enumerate()
        .filter_map(|(y, l)| Some((y, l?)))
    {
        let r = Rect::new(inner.x, inner.y + 1 + y as u16, inner.width, 1);
        frame.render_widget(Paragraph::new(Line::styled(text, style)), r);
    }
}

/// A chain's rule count in the tree's narrow column: `9999`, then `12k`.
fn rule_count(n: usize) -> String {
    if n < 10_000 {
        n.to_string()
    } else {
        format!("{}k", n / 1000)
    }
}

/// A rule's packets per second over the last interval, bold when it counted packets since.
fn rate_cell(st: Option<&RuleStat>, t: crate::tui::theme::Theme) -> Cell<'static> {
    let hit = st.is_some_and(|st| st.delta > 0);
    Cell::from(Line::from(st.and_then(|st| st.rate).map_or("-".to_string(), rate)).right_aligned())
        .style(if hit { t.hit() } else { t.dim() })
}

/// A rule's recent rates, as a sparkline.
fn hist_cell(st: Option<&RuleStat>, t: crate::tui::theme::Theme) -> Cell<'static> {
    Cell::from(st.map_or_else(
        || " ".repeat(HIST_W),
        |st| sparkline(st.history.iter(), HIST_W),
    ))
    .style(t.hit())
}

/// The cursor's row style, in the pane with the focus or not.
fn cursor(t: crate::tui::theme::Theme, focused: bool) -> Style {
    if focused {
        t.selected()
    } else {
        t.selected_unfocused()
    }
}

/// The start of a chain pane's title: the chains Backspace goes back through.
fn breadcrumb(app: &App) -> Vec<Span<'static>> {
    let mut title = vec![Span::raw(" ")];
    for (k, _) in &app.rules.back {
        title.push(Span::styled(format!("{} › ", k.chain()), app.theme.dim()));
    }
    title
}

/// A user chain's references, for its title.
fn references(t: crate::tui::theme::Theme, n: usize) -> Span<'static> {
    let plural = if n == 1 { "" } else { "s" };
    Span::styled(format!("{n} reference{plural} "), t.dim())
}

/// A chain pane's border and title; the area inside for its rows, or `None` when there is no
/// row to show, and the pane says why: the chain has no rules (and what then happens to a
/// packet), or none passes the filter.
fn chain_pane(
    frame: &mut Frame,
    app: &App,
    area: Rect,
    title: Vec<Span<'static>>,
    no_rules: bool,
    policy: Option<&str>,
) -> Option<Rect> {
    let block = pane(app, Line::from(title), app.rules.focus == Focus::Rules);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if !app.rules.visible.is_empty() {
        return Some(inner);
    }
    let msg = match (no_rules, policy) {
        (true, Some(p)) => format!("No rules: every packet gets the policy, {p}."),
        (true, None) => "No rules: packets return to the calling chain.".to_string(),
        (false, _) => format!(
            "No rule matches the filter \"{}\" (Esc clears it).",
            app.rules.filter
        ),
    };
    frame.render_widget(Paragraph::new(msg).style(app.theme.dim()), inner);
    None
}

/// How many rules of a native table jump or go to `chain`.
fn native_refs(table: &NativeTable, chain: &str) -> usize {
    table
        .chains
        .iter()
        .flat_map(|c| &c.rules)
        .filter(|r| {
            let w: Vec<&str> = r.text.split_whitespace().collect();
            w.windows(2)
                .any(|p| matches!(p[0], "jump" | "goto") && p[1].trim_matches('"') == chain)
        })
        .count()
}

fn table_refs(app: &App, key: &ChainKey) -> usize {
    app.rules
        .refs
        .iter()
        .find(|(f, t, _)| *f == key.family && *t == key.table)
        .and_then(|(_, _, refs)| refs.get(&key.chain))
        .copied()
        .unwrap_or(0)
}

/// One column of the rules table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Col {
    Num,
    Pkts,
    Bytes,
    Rate,
    Hist,
    Target,
    Prot,
    Opt,
    In,
    Out,
    Source,
    Dest,
    Rest,
}

impl Col {
    fn title(self) -> &'static str {
        match self {
            Col::Num => "num",
            Col::Pkts => "pkts",
            Col::Bytes => "bytes",
            Col::Rate => "pkt/s",
            Col::Hist => "hist",
            Col::Target => "target",
            Col::Prot => "prot",
            Col::Opt => "opt",
            Col::In => "in",
            Col::Out => "out",
            Col::Source => "source",
            Col::Dest => "destination",
            Col::Rest => "",
        }
    }
}

const HIST_W: usize = 6;

/// How a row stands with the staging.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Same,
    /// New or changed by the staging: `+`.
    Staged,
    /// Deleted by the staging, shown struck through where it stood: `-`.
    Deleted,
}

struct Shown<'a> {
    row: RowRef,
    num: usize,
    mark: Mark,
    cols: Columns,
    stat: Option<&'a RuleStat>,
    packets: u64,
    bytes: u64,
    jump: bool,
    /// The lint found something of severity warning or above: `!` before the number.
    lint_warns: bool,
}

pub fn draw_rules(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let focused = app.rules.focus == Focus::Rules;
    if app.rules.native.is_some() {
        draw_native(frame, app, area);
        return;
    }
    let Some(key) = app.rules.selected.clone() else {
        draw_empty(frame, app, area);
        return;
    };
    let Some(chain) = app.chain_by_key(&key) else {
        draw_empty(frame, app, area);
        return;
    };
    // While the chain is edited, rules the staging left alone (and those it deletes, still
    // in the kernel until the commit) show the kernel's live counters and rates; new or
    // changed rules have none of their own yet.
    let edited = app.is_edited(&key);
    let rows = app.chain_rows(&key);
    let live_key = app.base_chain(&key).map_or(key.clone(), |b| ChainKey {
        family: key.family,
        table: key.table.clone(),
        chain: b.name.clone(),
    });
    let stat = app.rates.chain(if edited { &live_key } else { &key });

    // Title: where we are, how we got here, and the chain's numbers.
    let mut title = breadcrumb(app);
    title.push(Span::styled(
        format!("{} {}", key.table, key.chain),
        t.title(),
    ));
    title.push(Span::styled(format!(" ({}) ", key.family.label()), t.dim()));
    // What is staged comes first: it is what a narrow title must not lose.
    if let Some(why) = &app.edit.stale {
        title.push(Span::styled(
            format!("STALE: shown on the rule set as it was when saved ({why}) · "),
            t.error(),
        ));
    }
    if let Some(what) = app.staged_summary(&key) {
        title.push(Span::styled(format!("staged: {what} · "), t.staged()));
    }
    // The policy's counters are the kernel's, live.
    let policy_counters = if edited {
        app.snapshot
            .as_ref()
            .and_then(|s| s.family(key.family).ruleset())
            .and_then(|r| r.table(&key.table))
            .and_then(|t| t.chain(&live_key.chain))
            .map_or(chain.counters, |c| c.counters)
    } else {
        chain.counters
    };
    match &chain.policy {
        Some(p) => {
            title.push(Span::raw("policy "));
            title.push(Span::styled(p.clone(), t.target(p)));
            title.push(Span::styled(
                format!(
                    " {} pkts {} bytes ",
                    count(app, policy_counters.packets),
                    count(app, policy_counters.bytes)
                ),
                t.dim(),
            ));
        }
        None => title.push(references(t, table_refs(app, &key))),
    }
    if let Some(r) = stat.and_then(|s| s.rate) {
        title.push(Span::styled(format!("· {}/s ", rate(r)), t.dim()));
    }
    let Some(inner) = chain_pane(
        frame,
        app,
        area,
        title,
        rows.rows.is_empty(),
        chain.policy.as_deref(),
    ) else {
        return;
    };

    let rows_fit = inner.height.saturating_sub(1) as usize;
    let family: Family = key.family;
    let shown: Vec<Shown> = app
        .rules
        .visible
        .iter()
        .skip(app.rules.offset)
        .take(rows_fit)
        .filter_map(|&row| {
            let rule = app.row_rule(&key, row)?;
            let (num, mark) = match row {
                RowRef::Rule(i) if rows.base_of.get(i).is_some_and(Option::is_none) => {
                    (i + 1, Mark::Staged)
                }
                RowRef::Rule(i) => (i + 1, Mark::Same),
                RowRef::Deleted(j) => (j + 1, Mark::Deleted),
            };
            let live = if edited {
                app.live_row(&key, &rows, row)
            } else {
                None
            };
            let (packets, bytes, stat) = match (edited, live) {
                (true, Some((r, st))) => (r.packets(), r.bytes(), st),
                (true, None) => (rule.packets(), rule.bytes(), None),
                (false, _) => {
                    let st = match row {
                        RowRef::Rule(i) => stat.and_then(|s| s.rules.get(i)),
                        RowRef::Deleted(_) => None,
                    };
                    (rule.packets(), rule.bytes(), st)
                }
            };
            Some(Shown {
                row,
                num,
                mark,
                cols: summary::columns(rule, family),
                stat,
                packets,
                bytes,
                jump: app.jump_target(rule).is_some(),
                // The lint ran on the snapshot: a staged rule has no findings yet.
                lint_warns: match row {
                    RowRef::Rule(i) => rows.base_of.get(i).copied().flatten(),
                    RowRef::Deleted(_) => None,
                }
                .is_some_and(|b| app.lint.warns(&key, b)),
            })
        })
        .collect();

    if app.rules.save_form {
        draw_save_form(frame, app, &key, &shown, inner);
        return;
    }
    let cols = rule_columns(inner.width, app.exact);
    let header = Row::new(cols.iter().map(|(c, _)| {
        let s = match c {
            Col::Rest if app.rules.hscroll > 0 => format!("« +{}", app.rules.hscroll),
            _ => c.title().to_string(),
        };
        if matches!(c, Col::Num | Col::Pkts | Col::Bytes | Col::Rate) {
            Cell::from(Line::from(s).right_aligned())
        } else {
            Cell::from(s)
        }
    }))
    .style(t.header());

    let selected_row = app.rules.visible.get(app.rules.cursor).copied();
    let needles = app.filter_words();
    let mut room = rows_fit;
    let mut rows: Vec<Row> = Vec::new();
    for s in &shown {
        let hit = s.stat.is_some_and(|st| st.delta > 0);
        let height = if app.rules.wrap {
            row_height(&s.cols, s.jump, &cols)
        } else {
            1
        };
        if height > room && !rows.is_empty() {
            break;
        }
        room = room.saturating_sub(height);
        let text_cell = |text: &str, w: u16, hscroll: usize| -> Cell<'static> {
            marked_rows(text, app.rules.wrap, hscroll, usize::from(w), &needles, t)
        };
        let cells = cols.iter().map(|&(c, w)| match c {
            Col::Num => {
                let n = match s.mark {
                    Mark::Staged => format!("+{}", s.num),
                    Mark::Deleted => format!("-{}", s.num),
                    Mark::Same if s.lint_warns => format!("!{}", s.num),
                    Mark::Same => s.num.to_string(),
                };
                Cell::from(Line::from(n).right_aligned())
            }
            Col::Pkts => Cell::from(Line::from(count(app, s.packets)).right_aligned())
                .style(if hit { t.hit() } else { Style::new() }),
            Col::Bytes => Cell::from(Line::from(count(app, s.bytes)).right_aligned()),
            Col::Rate => rate_cell(s.stat, t),
            Col::Hist => hist_cell(s.stat, t),
            Col::Target => {
                let style = t.target(s.cols.target.split(' ').next().unwrap_or(""));
                text_cell(&target_label(&s.cols, s.jump), w, 0).style(style)
            }
            Col::Prot => text_cell(&s.cols.prot, w, 0),
            Col::Opt => Cell::from(s.cols.opt.clone()),
            Col::In => text_cell(&s.cols.iface_in, w, 0),
            Col::Out => text_cell(&s.cols.iface_out, w, 0),
            Col::Source => text_cell(&addr_text(&s.cols.source, w, app.rules.wrap), w, 0),
            Col::Dest if matches_hidden(&cols) && !rest_text(&s.cols, &cols).is_empty() => {
                // No room for the matches (a narrow pane): say there are some, so that an
                // `-i lo` rule does not read as "accept all".
                let d = addr_text(&s.cols.destination, w.saturating_sub(2), app.rules.wrap);
                text_cell(&format!("{d} …"), w, 0)
            }
            Col::Dest => text_cell(&addr_text(&s.cols.destination, w, app.rules.wrap), w, 0),
            Col::Rest => text_cell(&rest_text(&s.cols, &cols), w, app.rules.hscroll),
        });
        let row = Row::new(cells.collect::<Vec<_>>()).height(height as u16);
        let style = match s.mark {
            Mark::Staged => t.staged(),
            Mark::Deleted => t.staged_deleted(),
            Mark::Same => Style::new(),
        };
        rows.push(if Some(s.row) == selected_row {
            // The cursor's colours, but a deleted rule stays struck through.
            row.style(style.patch(cursor(t, focused)))
        } else {
            row.style(style)
        });
    }
    super::render_table(frame, rows, header, cols.iter().map(|(_, w)| *w), inner);
}

/// The rules table's columns at an inner width. They depend on the width (and on exact
/// numbers, `x`) only, never on the chain or its rules, so that no column moves or vanishes
/// under the eye between chains. Where the interface and fragment columns have no room, what
/// they would say is at the head of the matches (`in=lo`), so an `-i lo` rule never reads as
/// "accept all".
pub(crate) fn rule_columns(width: u16, exact: bool) -> Vec<(Col, u16)> {
    let cnt = if exact { 12 } else { 5 };
    let wide = width >= 120;
    let mut cols = vec![(Col::Num, 5), (Col::Pkts, cnt)];
    if width >= 140 {
        cols.push((Col::Bytes, cnt));
    }
    if width >= 100 {
        cols.push((Col::Rate, 6));
        cols.push((Col::Hist, HIST_W as u16));
    }
    cols.push((Col::Target, if wide { 16 } else { 10 }));
    cols.push((Col::Prot, 4));
    if width >= 125 {
        cols.push((Col::Opt, 3));
        cols.push((Col::In, 6));
        cols.push((Col::Out, 6));
    }
    // A narrow pane (the tree has the focus at 80 columns) gives up address width, never the
    // target's: `ACCEP` would read as a cut word.
    let addr = if wide {
        20
    } else if width >= 70 {
        16
    } else {
        (width.saturating_sub(30) / 2).clamp(7, 16)
    };
    cols.push((Col::Source, addr));
    cols.push((Col::Dest, addr));
    let used: u16 = cols.iter().map(|(_, w)| w + 1).sum();
    cols.push((Col::Rest, width.saturating_sub(used)));
    cols
}

/// An address cell's text: whole when rows wrap (`w`), else shortened between whole groups
/// with the prefix length kept (`2001:db8:…::/64`), never cut mid-octet.
/// The matches column has no room at this width.
fn matches_hidden(cols: &[(Col, u16)]) -> bool {
    cols.iter().any(|&(c, w)| c == Col::Rest && w < 2)
}

fn addr_text(addr: &str, w: u16, wrap: bool) -> String {
    if wrap {
        addr.to_string()
    } else {
        crate::format::elide_addr(addr, usize::from(w))
    }
}

/// The target as its cell shows it: a jump's target marked `›` (Enter follows it).
fn target_label(c: &Columns, jump: bool) -> String {
    if jump {
        format!("{} ›", c.target)
    } else {
        c.target.clone()
    }
}

/// The matches column: what the interface and fragment columns would say when they are not
/// shown (and say more than "any"), then the rule's other matches.
pub(crate) fn rest_text(c: &Columns, cols: &[(Col, u16)]) -> String {
    let has = |col: Col| cols.iter().any(|(x, _)| *x == col);
    let mut parts: Vec<String> = Vec::new();
    if !has(Col::In) && c.iface_in != "*" {
        parts.push(format!("in={}", c.iface_in));
    }
    if !has(Col::Out) && c.iface_out != "*" {
        parts.push(format!("out={}", c.iface_out));
    }
    if !has(Col::Opt) && c.opt != "--" {
        parts.push(format!("opt={}", c.opt));
    }
    if !c.rest.is_empty() {
        parts.push(c.rest.clone());
    }
    parts.join(" ")
}

/// How many rows a rule takes when long text wraps (`w`): its tallest cell.
pub(crate) fn row_height(c: &Columns, jump: bool, cols: &[(Col, u16)]) -> usize {
    cols.iter()
        .map(|&(col, w)| {
            let w = usize::from(w);
            match col {
                Col::Target => long::wrapped_rows(&target_label(c, jump), w),
                Col::Prot => long::wrapped_rows(&c.prot, w),
                Col::In => long::wrapped_rows(&c.iface_in, w),
                Col::Out => long::wrapped_rows(&c.iface_out, w),
                Col::Source => long::wrapped_rows(&c.source, w),
                Col::Dest => long::wrapped_rows(&c.destination, w),
                Col::Rest => long::wrapped_rows(&rest_text(c, cols), w),
                _ => 1,
            }
        })
        .max()
        .unwrap_or(1)
}

/// The chain in save form (`S`): its rules as `-A CHAIN ...` lines, full width, as
/// iptables-save writes them (counters left out), scrolled sideways or wrapped like the table.
fn draw_save_form(frame: &mut Frame, app: &App, key: &ChainKey, shown: &[Shown], inner: Rect) {
    let t = app.theme;
    let focused = app.rules.focus == Focus::Rules;
    let selected_row = app.rules.visible.get(app.rules.cursor).copied();
    let needles = app.filter_words();
    let w = usize::from(inner.width);
    let mut lines: Vec<Line> = Vec::new();
    for s in shown {
        let Some(rule) = app.row_rule(key, s.row) else {
            continue;
        };
        let text = crate::format::visible(&crate::ruleset::save::rule_line(
            &key.chain,
            rule,
            crate::ruleset::save::CounterMode::Without,
        ))
        .into_owned();
        let style = match s.mark {
            Mark::Staged => t.staged(),
            Mark::Deleted => t.staged_deleted(),
            Mark::Same => Style::new(),
        };
        let style = if Some(s.row) == selected_row {
            style.patch(cursor(t, focused))
        } else {
            style
        };
        let parts = long::rows(&text, app.rules.wrap, app.rules.hscroll, w);
        for p in parts {
            if lines.len() >= usize::from(inner.height) {
                break;
            }
            let pad = w.saturating_sub(crate::format::width(&p));
            let mut l = marked(&p, &needles, t);
            l.spans.push(Span::raw(" ".repeat(pad)));
            lines.push(l.style(style));
        }
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// A native nftables chain, read-only: its hook, priority, type and policy in the title, then
/// each rule with its handle, counters, rate and history, and its text as nft prints it.
fn draw_native(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let focused = app.rules.focus == Focus::Rules;
    let (Some(key), Some((table, chain))) = (app.rules.native.as_ref(), app.native_chain()) else {
        draw_empty(frame, app, area);
        return;
    };
    let stat = app.native_rates.chain(key);
    let mut title = breadcrumb(app);
    title.push(Span::styled(
        crate::format::visible(&key.to_string()).into_owned(),
        t.title(),
    ));
    title.push(Span::styled(" (nftables) ", t.dim()));
    if table.dormant {
        title.push(Span::styled(
            "dormant: not hooked, filters nothing · ",
            t.warning(),
        ));
    }
    let hooked = match (&chain.hook, chain.priority, &chain.policy) {
        (Some(hook), Some(prio), Some(policy)) => {
            title.push(Span::raw("policy "));
            title.push(Span::styled(
                policy.clone(),
                t.target(&policy.to_uppercase()),
            ));
            title.push(Span::raw(" "));
            Some(format!(
                "· hook {hook} priority {prio} type {} ",
                chain.kind.as_deref().unwrap_or("?")
            ))
        }
        _ => {
            title.push(references(t, native_refs(table, &chain.name)));
            None
        }
    };
    if let Some(r) = stat.and_then(|s| s.rate) {
        title.push(Span::styled(format!("· {}/s ", rate(r)), t.dim()));
    }
    title.extend(hooked.map(|h| Span::styled(h, t.dim())));
    title.push(Span::styled("· read-only ", t.dim()));
    let Some(inner) = chain_pane(
        frame,
        app,
        area,
        title,
        chain.rules.is_empty(),
        chain.policy.as_deref(),
    ) else {
        return;
    };

    let rows_fit = inner.height.saturating_sub(1) as usize;
    let shown: Vec<(usize, &crate::source::native::NativeRule, Option<&RuleStat>)> = app
        .rules
        .visible
        .iter()
        .skip(app.rules.offset)
        .take(rows_fit)
        .filter_map(|&row| {
            let RowRef::Rule(i) = row else { return None };
            let r = chain.rules.get(i)?;
            Some((i, r, stat.and_then(|s| s.rules.get(i))))
        })
        .collect();
    let counted = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |n| count(app, n));
    // Widths from the pane's width only, as in the iptables table.
    let cnt_w: u16 = if app.exact { 12 } else { 5 };
    // The rule's text is all it says: keep more than half the width for it.
    let text_min = (inner.width * 11 / 20).max(20);
    let mut cols: Vec<(&str, u16)> = vec![("num", 5), ("pkts", cnt_w)];
    // The handle before the history and the bytes: it is what `nft` names a rule by.
    for (c, w) in [
        ("pkt/s", 6u16),
        ("handle", 6),
        ("hist", HIST_W as u16),
        ("bytes", cnt_w),
    ] {
        let used: u16 = cols.iter().map(|(_, w)| w + 1).sum();
        if used + w + 1 + text_min <= inner.width {
            cols.push((c, w));
        }
    }
    let order = ["num", "pkts", "bytes", "pkt/s", "hist", "handle"];
    cols.sort_by_key(|(c, _)| order.iter().position(|o| o == c));
    let used: u16 = cols.iter().map(|(_, w)| w + 1).sum();
    let text_w = inner.width.saturating_sub(used);
    cols.push(("rule", text_w));
    if app.rules.save_form {
        // The whole width for the rules' text.
        cols = vec![("rule", inner.width)];
    }
    let header = Row::new(cols.iter().map(|(c, _)| {
        if matches!(*c, "num" | "pkts" | "bytes" | "pkt/s" | "handle") {
            Cell::from(Line::from(*c).right_aligned())
        } else if *c == "rule" && app.rules.hscroll > 0 {
            Cell::from(format!("rule « +{}", app.rules.hscroll))
        } else {
            Cell::from(*c)
        }
    }))
    .style(t.header());
    let selected_row = app.rules.visible.get(app.rules.cursor).copied();
    let needles = app.filter_words();
    let mut room = rows_fit;
    let mut rows: Vec<Row> = Vec::new();
    for &(i, r, st) in &shown {
        let hit = st.is_some_and(|st| st.delta > 0);
        let label = native_label(app, r);
        let text_w = cols.last().map_or(1, |(_, w)| usize::from(*w));
        let height = if app.rules.wrap {
            long::wrapped_rows(&label, text_w)
        } else {
            1
        };
        if height > room && !rows.is_empty() {
            break;
        }
        room = room.saturating_sub(height);
        let cells: Vec<Cell> = cols
            .iter()
            .map(|(c, _)| match *c {
                "num" => Cell::from(Line::from((i + 1).to_string()).right_aligned()),
                "pkts" => Cell::from(Line::from(counted(r.packets)).right_aligned())
                    .style(if hit { t.hit() } else { Style::new() }),
                "bytes" => Cell::from(Line::from(counted(r.bytes)).right_aligned()),
                "pkt/s" => rate_cell(st, t),
                "hist" => hist_cell(st, t),
                "handle" => {
                    Cell::from(Line::from(r.handle.to_string()).right_aligned()).style(t.dim())
                }
                _ => marked_rows(
                    &label,
                    app.rules.wrap,
                    app.rules.hscroll,
                    text_w,
                    &needles,
                    t,
                ),
            })
            .collect();
        let row = Row::new(cells).height(height as u16);
        rows.push(if Some(RowRef::Rule(i)) == selected_row {
            row.style(cursor(t, focused))
        } else {
            row
        });
    }
    super::render_table(frame, rows, header, cols.iter().map(|(_, w)| *w), inner);
}

/// A native rule's text as its cell shows it: visible, a jump marked `›`.
pub(crate) fn native_label(app: &App, r: &crate::source::native::NativeRule) -> String {
    let text = crate::format::visible(&r.text);
    if app.native_jump_target(r).is_some() {
        format!("{text} ›")
    } else {
        text.into_owned()
    }
}

/// A cell of long text: wrapped over several rows or one sideways window of it, the filter's
/// words marked.
fn marked_rows(
    text: &str,
    wrap: bool,
    hscroll: usize,
    cols: usize,
    needles: &[String],
    t: crate::tui::theme::Theme,
) -> Cell<'static> {
    let lines: Vec<Line> = long::rows(text, wrap, hscroll, cols)
        .iter()
        .map(|l| marked(l, needles, t))
        .collect();
    Cell::from(ratatui::text::Text::from(lines))
}

/// `text` with every case-insensitive occurrence of a filter word marked, so a filtered row
/// shows why it matched.
fn marked(text: &str, needles: &[String], t: crate::tui::theme::Theme) -> Line<'static> {
    if needles.is_empty() || text.is_empty() {
        return Line::from(text.to_string());
    }
    let lower = text.to_lowercase();
    // Lowercasing can change byte lengths outside ASCII: mark only when it did not.
    if lower.len() != text.len() {
        return Line::from(text.to_string());
    }
    let mut hit = vec![false; text.len()];
    for n in needles.iter().filter(|n| !n.is_empty()) {
        let mut from = 0;
        while let Some(i) = lower[from..].find(n.as_str()) {
            let at = from + i;
            for h in &mut hit[at..at + n.len()] {
                *h = true;
            }
            from = at + n.len().max(1);
        }
    }
    let style = |h: bool| if h { t.filter_match() } else { Style::new() };
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut cur = String::new();
    let mut cur_hit = false;
    for (i, ch) in text.char_indices() {
        if hit[i] != cur_hit && !cur.is_empty() {
            spans.push(Span::styled(std::mem::take(&mut cur), style(cur_hit)));
        }
        cur_hit = hit[i];
        cur.push(ch);
    }
    if !cur.is_empty() {
        spans.push(Span::styled(cur, style(cur_hit)));
    }
    Line::from(spans)
}

/// No chain to show: say why (still loading, or the source failed).
fn draw_empty(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let block = pane(
        app,
        Line::styled(" Rules ", t.title()),
        app.rules.focus == Focus::Rules,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let lines: Vec<Line> = match &app.snapshot {
        None => vec![Line::styled("Reading the rule sets…", t.dim())],
        Some(s) => {
            let errs = s.errors();
            if errs.is_empty() {
                vec![Line::styled(
                    "The rule sets are empty: no tables are loaded.",
                    t.dim(),
                )]
            } else {
                errs.into_iter()
                    .map(|e| Line::styled(e, t.error()))
                    .collect()
            }
        }
    };
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// The width of the rules pane's inside, as `draw` lays it out now.
pub fn rules_inner_width(app: &App) -> u16 {
    let tree_shown = app.size.0 >= super::NARROW || app.rules.focus == Focus::Tree;
    super::areas(app.size, tree_shown)
        .rules
        .width
        .saturating_sub(2)
}

/// The long text of row `i` of the visible rows (the matches, a native rule, a save line),
/// and the width its column has.
fn long_text(app: &App, i: usize) -> Option<(String, usize)> {
    let row = *app.rules.visible.get(i)?;
    let width = rules_inner_width(app);
    if let Some((_, chain)) = app.native_chain() {
        let RowRef::Rule(j) = row else { return None };
        let label = native_label(app, chain.rules.get(j)?);
        let w = if app.rules.save_form {
            width
        } else {
            // The text column: what the other columns leave (at most their widest set).
            width
                .saturating_sub(5 + 1 + 12 + 1 + 6 + 1 + 6 + 1 + HIST_W as u16 + 1 + 12 + 1)
                .max(width * 11 / 20)
        };
        return Some((label, usize::from(w)));
    }
    let key = app.rules.selected.as_ref()?;
    let rule = app.row_rule(key, row)?;
    if app.rules.save_form {
        let line = crate::ruleset::save::rule_line(
            &key.chain,
            rule,
            crate::ruleset::save::CounterMode::Without,
        );
        return Some((
            crate::format::visible(&line).into_owned(),
            usize::from(width),
        ));
    }
    let cols = rule_columns(width, app.exact);
    let c = summary::columns(rule, key.family);
    let rest_w = cols.last().map_or(0, |(_, w)| usize::from(*w));
    Some((rest_text(&c, &cols), rest_w))
}

/// How many rows visible row `i` takes (more than one only while long text wraps).
pub fn row_height_at(app: &App, i: usize) -> usize {
    if !app.rules.wrap {
        return 1;
    }
    if app.rules.save_form || app.native_chain().is_some() {
        return long_text(app, i).map_or(1, |(t, w)| long::wrapped_rows(&t, w));
    }
    let (Some(key), Some(row)) = (app.rules.selected.as_ref(), app.rules.visible.get(i)) else {
        return 1;
    };
    let Some(rule) = app.row_rule(key, *row) else {
        return 1;
    };
    let cols = rule_columns(rules_inner_width(app), app.exact);
    row_height(
        &summary::columns(rule, key.family),
        app.jump_target(rule).is_some(),
        &cols,
    )
}

/// How far the long text can scroll sideways: until the longest of the rows on screen ends at
/// its column's right edge.
pub fn hscroll_limit(app: &App, rows: usize) -> usize {
    (app.rules.offset..app.rules.offset + rows)
        .filter_map(|i| long_text(app, i))
        .map(|(t, w)| crate::format::width(&t).saturating_sub(w.saturating_sub(2)))
        .max()
        .unwrap_or(0)
}

/// The chain tree's row at a screen position (an index into `app.rules.tree`).
pub fn tree_row_at(app: &App, x: u16, y: u16) -> Option<usize> {
    let tree_shown = app.size.0 >= super::NARROW || app.rules.focus == Focus::Tree;
    if !tree_shown {
        return None;
    }
    let a = super::areas(app.size, true).tree;
    let inner = Block::bordered().inner(a);
    if !inner.contains(ratatui::layout::Position { x, y }) {
        return None;
    }
    // Under the column header.
    let i = app.rules.tree_offset + usize::from(y.checked_sub(inner.y + 1)?);
    (i < app.rules.tree.len()).then_some(i)
}

/// The rules pane's row at a screen position: the index into the visible rows, and whether
/// the position is on the rule's target (a click there follows a jump).
pub fn rule_row_at(app: &App, x: u16, y: u16) -> Option<(usize, bool)> {
    let tree_shown = app.size.0 >= super::NARROW || app.rules.focus == Focus::Tree;
    let area = super::areas(app.size, tree_shown).rules;
    let inner = Block::bordered().inner(area);
    if !inner.contains(ratatui::layout::Position { x, y }) {
        return None;
    }
    // The column header, except in save form.
    let first = inner.y + u16::from(!app.rules.save_form);
    if y < first {
        return None;
    }
    let mut top = first;
    let mut i = app.rules.offset;
    while i < app.rules.visible.len() {
        let h = row_height_at(app, i) as u16;
        if y < top + h {
            let on_target = app.native_chain().is_none() && !app.rules.save_form && {
                let cols = rule_columns(inner.width, app.exact);
                let mut left = inner.x;
                let mut hit = false;
                for (c, w) in &cols {
                    if *c == Col::Target {
                        hit = (left..left + w).contains(&x);
                        break;
                    }
                    left += w + 1;
                }
                hit
            };
            return Some((i, on_target));
        }
        top += h;
        i += 1;
    }
    None
}
