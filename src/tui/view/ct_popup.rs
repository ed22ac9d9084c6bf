//! The Conntrack screen's popups: every attribute of one entry, and the question before a
//! deletion.

use super::conntrack::{ACCT_HINT, TIMESTAMP_HINT, duration, endpoint};
use super::popup::show;
use crate::conntrack::format::{Layout, line};
use crate::conntrack::{Entry, Tuple};
use crate::ruleset::Family;
use crate::tui::app::App;
use crate::tui::conntrack::Confirm;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use std::time::SystemTime;

/// A time in nanoseconds since the epoch, local with its offset: `2026-09-21 14:00:03 +02:00`.
pub fn when(ns: u64) -> String {
    crate::time::local_datetime_ns(ns)
}

fn ns_of(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The Conntrack list's flags column: its letter (the `f` column), its word (the `flags`
/// column, where the list is wide enough), and what it means. An entry shows the first that
/// applies, in this order; none of them shows nothing (replies seen, not assured yet).
pub fn help_legend() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        (
            "X",
            "DYING",
            "the kernel is destroying the entry (it is going away)",
        ),
        (
            "U",
            "UNREPLIED",
            "no packet seen in the reply direction yet (conntrack -L prints [UNREPLIED])",
        ),
        (
            "A",
            "ASSURED",
            "enough traffic seen both ways for the kernel to call it established (TCP: the handshake completed); a full table drops only entries that are not assured to make room (conntrack -L prints [ASSURED])",
        ),
        (" ", "", "replies seen, not assured yet"),
    ]
}

/// The legend as lines: a title, then a letter and its meaning a line.
pub fn legend_lines(t: crate::tui::theme::Theme) -> Vec<Line<'static>> {
    let mut lines = vec![Line::styled(
        "Conntrack flags (the f column; the flags column at wider widths): the first that applies",
        t.header(),
    )];
    for (letter, word, meaning) in help_legend() {
        let name = if letter.trim().is_empty() {
            format!("  {:<13}", "(blank)")
        } else {
            format!("  {letter} {word:<11}")
        };
        lines.push(Line::from(vec![
            Span::styled(name, t.key()),
            Span::raw(format!(" {meaning}")),
        ]));
    }
    lines.push(Line::styled(
        "The flags, the event log and the filter language: docs/conntrack-filter.md.",
        t.dim(),
    ));
    lines
}

/// The letter of the flags column for an entry, from the legend's order.
fn flag_letter(e: &Entry) -> &'static str {
    use crate::conntrack::Status;
    if e.status.has(Status::DYING) {
        "X (DYING)"
    } else if !e.status.has(Status::SEEN_REPLY) {
        "U (UNREPLIED)"
    } else if e.status.has(Status::ASSURED) {
        "A (ASSURED)"
    } else {
        "blank (replied, not assured)"
    }
}

/// One direction: `10.0.0.5:40000 → 93.184.216.34:443`, with ICMP's type, code and id.
fn tuple(t: &Tuple) -> String {
    let mut s = format!(
        "{} → {}",
        endpoint(t.src, t.sport, usize::MAX),
        endpoint(t.dst, t.dport, usize::MAX)
    );
    if let Some(i) = t.icmp {
        s.push_str(&format!("  type {} code {} id {}", i.kind, i.code, i.id));
    }
    s
}

/// What NAT did, in words.
fn nat_words(e: &Entry) -> String {
    let d = e.is_dnat();
    let s = e.is_snat();
    let answers = endpoint(e.reply.src, e.reply.sport, usize::MAX);
    let back_to = endpoint(e.reply.dst, e.reply.dport, usize::MAX);
    match (d, s) {
        (true, true) => format!(
            "DNAT and SNAT: sent to {}, answered by {answers}; replies go to {back_to}",
            endpoint(e.orig.dst, e.orig.dport, usize::MAX)
        ),
        (true, false) => format!(
            "DNAT: sent to {}, answered by {answers}",
            endpoint(e.orig.dst, e.orig.dport, usize::MAX)
        ),
        (false, true) => format!("SNAT: the other end sees (and answers) {back_to}"),
        (false, false) => "none".to_string(),
    }
}

/// "the rules would now drop its first packet: filter INPUT rule 4: -A INPUT ... -j DROP".
fn stale_because(f: &crate::trace::stale::Finding) -> String {
    match &f.rule {
        Some(r) => {
            let how = if r.verdict == crate::trace::Verdict::Reject {
                "reject"
            } else {
                "drop"
            };
            format!("the rules would now {how} its first packet: {r}")
        }
        None => format!("the rules might now refuse its first packet: {}", f.summary),
    }
}

pub fn draw_detail(frame: &mut Frame, app: &App) {
    let t = app.theme;
    let ct = &app.ct;
    let Some(d) = &ct.detail else {
        return;
    };
    let e = &d.entry;
    let now = app.now;
    let field = |name: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{name:<10} "), t.header()),
            Span::raw(value),
        ])
    };
    let mut lines = Vec::new();
    if let Some(gone) = d.gone {
        let ago = now.duration_since(gone).map_or(0, |x| x.as_secs());
        lines.push(Line::styled(
            format!("This entry was destroyed {} ago.", duration(ago)),
            t.error(),
        ));
    }
    if let Some(f) = ct.stale_finding(&d.key) {
        lines.push(Line::styled(
            crate::format::visible(&format!("Stale: {}", stale_because(f))).into_owned(),
            t.error(),
        ));
    }
    lines.push(field(
        "original",
        format!("{} {}", e.proto.name(), tuple(&e.orig)),
    ));
    lines.push(field("reply", tuple(&e.reply)));
    lines.push(field("NAT", nat_words(e)));
    lines.push(field(
        "family",
        match e.family {
            Family::V4 => "IPv4".into(),
            Family::V6 => "IPv6".into(),
        },
    ));
    let state = match &e.state {
        Some(s) => format!("{} (as --ctstate: {})", s.name(), e.ctstate()),
        None => format!("{} (as --ctstate; the protocol has no state)", e.ctstate()),
    };
    lines.push(field("state", state));
    let names = e.status.names();
    lines.push(field(
        "status",
        if names.is_empty() {
            "no flags".into()
        } else {
            names.join(" ")
        },
    ));
    lines.push(field("f column", flag_letter(e).to_string()));
    let live = ct.table.position(&d.key).and_then(|p| ct.table.get(p));
    let timeout = match (d.gone, live) {
        (None, Some(r)) => {
            let left = ct.timeout_left(r, now);
            format!(
                "{left} s left ({}; the kernel said {} s at its last report)",
                duration(left),
                r.entry.timeout
            )
        }
        _ => "expired or deleted".into(),
    };
    lines.push(field("timeout", timeout));
    lines.push(field("mark", format!("{:#x} ({})", e.mark, e.mark)));
    lines.push(field("zone", e.zone.to_string()));
    lines.push(field(
        "id",
        if e.id == 0 {
            "not known (read from /proc)".into()
        } else {
            e.id.to_string()
        },
    ));
    lines.push(field(
        "use",
        e.use_count
            .map_or_else(|| "not known".into(), |u| u.to_string()),
    ));
    match (e.orig_counters(), e.reply_counters()) {
        (Some(o), r) => {
            let r = r.unwrap_or_default();
            lines.push(field(
                "packets",
                format!("→ {} original   ← {} reply", o.packets, r.packets),
            ));
            lines.push(field(
                "bytes",
                format!("→ {} original   ← {} reply", o.bytes, r.bytes),
            ));
        }
        (None, _) => lines.push(field("counters", format!("not counted: {ACCT_HINT}"))),
    }
    match e.start_ns {
        Some(s) => {
            let ago = ns_of(now).saturating_sub(s) / 1_000_000_000;
            lines.push(field(
                "started",
                format!("{} ({} ago)", when(s), duration(ago)),
            ));
        }
        None => lines.push(field("started", format!("not recorded: {TIMESTAMP_HINT}"))),
    }
    if let Some(s) = e.stop_ns() {
        lines.push(field("stopped", when(s)));
    }
    lines.push(field("helper", e.helper().unwrap_or("none").to_string()));
    lines.push(field("secctx", e.secctx().unwrap_or("none").to_string()));
    let labels = e.labels().map(|b| {
        let bits: Vec<String> = b
            .iter()
            .enumerate()
            .flat_map(|(i, byte)| {
                (0..8)
                    .filter(move |k| byte & (1 << k) != 0)
                    .map(move |k| (i * 8 + k).to_string())
            })
            .collect();
        if bits.is_empty() {
            "none set".to_string()
        } else {
            format!("bits {}", bits.join(" "))
        }
    });
    lines.push(field("labels", labels.unwrap_or_else(|| "none".into())));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "as conntrack -L -o extended prints it",
        t.header(),
    ));
    lines.push(Line::raw(line(e, Layout::Extended)));
    lines.push(Line::raw(""));
    lines.extend(legend_lines(t));
    let title = format!(" Conntrack entry: {} {} ", e.proto.name(), e.state_label());
    show(frame, app, title, lines, d.scroll, 80);
}

/// The entry in one line, for the question.
fn one_line(e: &Entry) -> String {
    let mut s = format!(
        "{} {} {} → {}",
        e.proto.name(),
        e.state_label(),
        endpoint(e.orig.src, e.orig.sport, usize::MAX),
        endpoint(e.orig.dst, e.orig.dport, usize::MAX)
    );
    if e.is_dnat() {
        s.push_str(&format!(
            "  DNAT {}",
            endpoint(e.reply.src, e.reply.sport, usize::MAX)
        ));
    }
    if e.is_snat() {
        s.push_str(&format!(
            "  SNAT {}",
            endpoint(e.reply.dst, e.reply.dport, usize::MAX)
        ));
    }
    s
}

pub fn draw_confirm(frame: &mut Frame, app: &App, c: &Confirm) {
    let t = app.theme;
    let (title, mut lines) = match c {
        Confirm::One(e) => (
            " Delete this conntrack entry? ",
            vec![
                Line::styled(one_line(e), t.title()),
                Line::raw(""),
                Line::raw(
                    "The kernel forgets the connection; its next packet is tracked anew (NAT may be chosen again, and rules that accept only ESTABLISHED traffic may drop it).",
                ),
            ],
        ),
        Confirm::Matching { filter, count } => {
            let question = match filter {
                Some(f) => {
                    let plural = if *count == 1 { "entry" } else { "entries" };
                    format!("Delete {count} {plural} matching '{}'?", f.source())
                }
                None => format!(
                    "Delete ALL {count} entries? No filter is set: this empties the conntrack table."
                ),
            };
            (
                " Delete entries? ",
                vec![
                    Line::styled(question, t.error()),
                    Line::raw(""),
                    Line::raw(
                        "The kernel forgets these connections; their next packets are tracked anew (NAT may be chosen again, and rules that accept only ESTABLISHED traffic may drop them). Entries that match by the time the kernel gets the request count too.",
                    ),
                ],
            )
        }
        Confirm::Stale { keys } => (
            " Delete stale connections? ",
            vec![
                Line::styled(
                    format!(
                        "Delete {} stale connection{}?",
                        keys.len(),
                        if keys.len() == 1 { "" } else { "s" }
                    ),
                    t.error(),
                ),
                Line::raw(""),
                Line::raw(
                    "The rule set as it is now would not accept their first packet; only the early ESTABLISHED accept keeps them alive. Deleted, their next packets are NEW and meet the rules that refuse them.",
                ),
            ],
        ),
    };
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled("y", t.key()),
        Span::raw(" / "),
        Span::styled("Enter", t.key()),
        Span::raw(" delete     "),
        Span::styled("n", t.key()),
        Span::raw(" / "),
        Span::styled("Esc", t.key()),
        Span::raw(" cancel"),
    ]));
    let area = frame.area();
    let w = (area.width * 7 / 10).max(50).min(area.width);
    let inner_w = w.saturating_sub(2).max(1);
    let text_h: u16 = lines
        .iter()
        .map(|l| (l.width() as u16).div_ceil(inner_w).max(1))
        .sum();
    let h = (text_h + 2).min(area.height);
    let box_area = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let block = Block::bordered()
        .title(Line::styled(title, t.error()))
        .border_style(t.error());
    frame.render_widget(Clear, box_area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        box_area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_dates_with_their_offset() {
        crate::time::use_utc();
        assert_eq!(when(0), "1970-01-01 00:00:00 +00:00");
        assert_eq!(
            when(1_767_225_600 * 1_000_000_000),
            "2026-01-01 00:00:00 +00:00"
        );
        assert_eq!(
            when(951_782_400 * 1_000_000_000 + 3661 * 1_000_000_000),
            "2000-02-29 01:01:01 +00:00"
        );
    }
}
