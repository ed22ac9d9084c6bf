//! The Conntrack screen: a summary strip (fill gauge, counts, kernel statistics, warnings) over
//! the list of entries or of groups, and the footer (hints, a deletion's outcome, or the filter
//! being typed with its error underlined).
//!
//! ```text
//! ┌──────────────────────────────────────────────────────────────────────┐
//! │ header (2 lines, shared with the Rules screen)                        │
//! │ conntrack ███████░░░ 3900/4096 95% · 12 events/s · lost 0 · via …     │ summary strip
//! │ states  ESTABLISHED 130  TIME_WAIT 40 …                               │ (3 to 7 lines)
//! │ protocols  tcp 200  udp 50 …                                          │
//! │ kernel  insert_failed 0  drop 0 …          (netlink only)             │
//! │ ⚠ warnings: nearly full, accounting off, the feed's error             │
//! ├ Conntrack · 420 entries · sorted by arrival ▼ ─────────────────────────┤
//! │ proto state flags source destination NAT timeout →pkts … age mark zone │ list, or groups
//! ├───────────────────────────────────────────────────────────────────────┤
//! │ key hints, a status message, or the filter being typed                 │ footer (1-2)
//! └──────────────────────────────────────────────────────────────────────┘
//! ```
//! Only the rows on screen are formatted; column widths come from them.

use super::format::human;
use crate::conntrack::table::{GroupKey, SortKey};
use crate::conntrack::{Entry, Status};
use crate::source::ctfeed::CtVia;
use crate::tui::app::{App, InputMode, Popup};
use crate::tui::conntrack::{CtScreen, Slot, group_name, sort_name};
use crate::tui::keymap::{self, Scope};
use crate::tui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Wrap};
use std::net::IpAddr;
use std::time::SystemTime;

/// The sentence that says how to turn accounting on.
pub const ACCT_HINT: &str = "sysctl -w net.netfilter.nf_conntrack_acct=1";
/// And timestamps.
pub const TIMESTAMP_HINT: &str = "sysctl -w net.netfilter.nf_conntrack_timestamp=1";

/// The regions of the Conntrack screen.
pub struct CtAreas {
    pub header: Rect,
    pub strip: Rect,
    pub list: Rect,
    pub footer: Rect,
}

fn footer_height(app: &App) -> u16 {
    if app.mode == InputMode::Filter && app.ct.input_error.is_some() {
        2
    } else {
        1
    }
}

/// The layout, as a pure function of the App (update uses it too, for scrolling).
pub fn areas(app: &App) -> CtAreas {
    let (w, h) = app.size;
    let full = Rect::new(0, 0, w, h);
    let strip_h = if app.ct.log.open {
        log_strip_lines(app).len()
    } else {
        strip_lines(app).len()
    } as u16;
    let [header, strip, list, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(strip_h),
        Constraint::Min(3),
        Constraint::Length(footer_height(app)),
    ])
    .areas(full);
    CtAreas {
        header,
        strip,
        list,
        footer,
    }
}

/// How many list rows fit (inside the border, below the column header).
pub fn viewport_rows(app: &App) -> usize {
    areas(app).list.height.saturating_sub(3) as usize
}

pub fn draw(frame: &mut Frame, app: &App) {
    let a = areas(app);
    if app.ct.log.open {
        frame.render_widget(Paragraph::new(log_strip_lines(app)), a.strip);
        draw_log(frame, app, a.list);
        draw_footer(frame, app, a.footer);
        return;
    }
    frame.render_widget(Paragraph::new(strip_lines(app)), a.strip);
    if app.ct.group.is_some() {
        draw_groups(frame, app, a.list);
    } else {
        draw_list(frame, app, a.list);
    }
    draw_footer(frame, app, a.footer);
}

/// Seconds as a short duration: `42s`, `12m05s`, `5h02m`, `4d23h`.
pub fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Seconds since the entry started, where timestamps are on.
fn age(e: &Entry, now: SystemTime) -> Option<u64> {
    let start = e.start_ns?;
    let now_ns = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    Some((now_ns.saturating_sub(u128::from(start)) / 1_000_000_000) as u64)
}

fn count(app: &App, n: u64) -> String {
    if app.exact { n.to_string() } else { human(n) }
}

/// A count for a cell `w` wide: exact when asked for and it fits, else in human units (a
/// number cut to fit would be a wrong number).
fn count_in(app: &App, n: u64, w: usize) -> String {
    let c = count(app, n);
    if c.len() <= w { c } else { human(n) }
}

/// A duration for a cell `w` wide: `duration`, or whole days where that does not fit
/// (`1234d`), rather than a cut one.
fn duration_in(secs: u64, w: usize) -> String {
    let d = duration(secs);
    if d.len() <= w {
        d
    } else {
        format!("{}d", secs / 86_400)
    }
}

/// `s` with its middle replaced by `…` to fit `w` cells; the end (a host part) is kept over
/// the start.
pub fn elide(s: &str, w: usize) -> String {
    crate::format::elide_middle(s, w)
}

/// `addr:port` (`[v6]:port`), shortened to fit `w` between whole groups
/// ([`crate::format::elide_addr`]: the start and the last group kept, the port whole).
pub fn endpoint(addr: IpAddr, port: Option<u16>, w: usize) -> String {
    let whole = match (addr, port) {
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    };
    crate::format::elide_addr(&whole, w)
}

/// What NAT did to a connection, seen from its reply tuple.
#[derive(Clone, Copy)]
struct Nat {
    /// Who really answers (the reply's source), where DNAT changed it.
    dnat: Option<(IpAddr, Option<u16>)>,
    /// Where replies really go (the reply's destination), where SNAT changed it.
    snat: Option<(IpAddr, Option<u16>)>,
}

fn nat(e: &Entry) -> Nat {
    Nat {
        dnat: e.is_dnat().then_some((e.reply.src, e.reply.sport)),
        snat: e.is_snat().then_some((e.reply.dst, e.reply.dport)),
    }
}

impl Nat {
    fn parts(self) -> Vec<(&'static str, (IpAddr, Option<u16>))> {
        let mut v = Vec::new();
        if let Some(d) = self.dnat {
            v.push(("DNAT", d));
        }
        if let Some(s) = self.snat {
            v.push(("SNAT", s));
        }
        v
    }

    /// With `short_snat`, SNAT's port is left out.
    fn parts_as(self, short_snat: bool) -> Vec<(&'static str, (IpAddr, Option<u16>))> {
        let mut parts = self.parts();
        if short_snat {
            for (k, (_, p)) in &mut parts {
                if *k == "SNAT" {
                    *p = None;
                }
            }
        }
        parts
    }

    /// The cell: each kind in its colour, the addresses elided to fit `w` together.
    fn spans(self, w: usize, short_snat: bool, t: Theme) -> Vec<Span<'static>> {
        let parts = self.parts_as(short_snat);
        let fixed: usize =
            parts.iter().map(|(k, _)| k.len() + 1).sum::<usize>() + parts.len().saturating_sub(1);
        let room = w.saturating_sub(fixed) / parts.len().max(1);
        let mut out = Vec::new();
        for (i, (kind, (a, p))) in parts.into_iter().enumerate() {
            if i > 0 {
                out.push(Span::raw(" "));
            }
            out.push(Span::styled(
                kind,
                t.target(kind).add_modifier(Modifier::BOLD),
            ));
            out.push(Span::raw(format!(" {}", endpoint(a, p, room))));
        }
        out
    }
}

/// Flags worth a column, long and short.
fn flags(e: &Entry) -> (&'static str, &'static str) {
    if e.status.has(Status::DYING) {
        ("DYING", "X")
    } else if !e.status.has(Status::SEEN_REPLY) {
        ("UNREPLIED", "U")
    } else if e.status.has(Status::ASSURED) {
        ("ASSURED", "A")
    } else {
        ("", "")
    }
}

/// One column of the list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Col {
    Proto,
    State,
    Flags,
    Src,
    Dst,
    Nat,
    Timeout,
    OPkts,
    OBytes,
    RPkts,
    RBytes,
    Age,
    Mark,
    Zone,
}

const ORDER: [Col; 14] = [
    Col::Proto,
    Col::State,
    Col::Flags,
    Col::Src,
    Col::Dst,
    Col::Nat,
    Col::Timeout,
    Col::OPkts,
    Col::OBytes,
    Col::RPkts,
    Col::RBytes,
    Col::Age,
    Col::Mark,
    Col::Zone,
];

impl Col {
    fn title(self, ct: &CtScreen, compact_flags: bool) -> String {
        let base = match (self, ct.sort) {
            (Col::Src, SortKey::Sport) => "sport",
            (Col::Dst, SortKey::Dport) => "dport",
            (Col::Proto, _) => "prot",
            (Col::State, _) => "state",
            (Col::Flags, _) if compact_flags => "f",
            (Col::Flags, _) => "flags",
            (Col::Src, _) => "source",
            (Col::Dst, _) => "destination",
            (Col::Nat, _) => "NAT (reply)",
            (Col::Timeout, _) => "timeout",
            (Col::OPkts, _) => "→pkts",
            (Col::OBytes, _) => "→bytes",
            (Col::RPkts, _) => "←pkts",
            (Col::RBytes, _) => "←bytes",
            (Col::Age, _) => "age",
            (Col::Mark, _) => "mark",
            (Col::Zone, _) => "zone",
        };
        base.to_string()
    }

    /// The column's name, whatever the sort.
    fn name(self) -> &'static str {
        match self {
            Col::Proto => "prot",
            Col::State => "state",
            Col::Flags => "flags",
            Col::Src => "source",
            Col::Dst => "destination",
            Col::Nat => "NAT (reply)",
            Col::Timeout => "timeout",
            Col::OPkts => "→pkts",
            Col::OBytes => "→bytes",
            Col::RPkts => "←pkts",
            Col::RBytes => "←bytes",
            Col::Age => "age",
            Col::Mark => "mark",
            Col::Zone => "zone",
        }
    }

    /// The title in a column `w` wide: with the sort's arrow where it fits (the list's title
    /// says the order too, and the sorted column is underlined).
    fn title_in(self, ct: &CtScreen, compact_flags: bool, w: u16) -> String {
        let base = self.title(ct, compact_flags);
        if self.sorted_by(ct.sort) && crate::format::width(&base) < usize::from(w) {
            format!("{base}{}", if ct.reverse { "▼" } else { "▲" })
        } else {
            base
        }
    }

    fn sorted_by(self, k: SortKey) -> bool {
        matches!(
            (self, k),
            (Col::Proto, SortKey::Proto)
                | (Col::State, SortKey::State)
                | (Col::Flags, SortKey::Flags)
                | (Col::Src, SortKey::Src | SortKey::Sport)
                | (Col::Dst, SortKey::Dst | SortKey::Dport)
                | (Col::Nat, SortKey::Reply)
                | (Col::Timeout, SortKey::Timeout)
                | (Col::OPkts | Col::RPkts, SortKey::Packets)
                | (Col::OBytes | Col::RBytes, SortKey::Bytes)
                | (Col::Age, SortKey::Age)
                | (Col::Mark, SortKey::Mark)
                | (Col::Zone, SortKey::Zone)
        )
    }

    fn right(self) -> bool {
        matches!(
            self,
            Col::Timeout
                | Col::OPkts
                | Col::OBytes
                | Col::RPkts
                | Col::RBytes
                | Col::Age
                | Col::Mark
                | Col::Zone
        )
    }
}

/// How the list fits its width: the columns and their widths, and which shorter forms of
/// the cells it uses.
struct Plan {
    cols: Vec<(Col, u16)>,
    /// Flags as one letter (A, U, X).
    compact_flags: bool,
    /// `ESTAB` for `ESTABLISHED`, as `ss` writes it.
    short_state: bool,
    /// SNAT without its port (the masquerade port; the details show it).
    short_snat: bool,
}

/// The state as the list shows it.
fn state_text(e: &Entry, short: bool) -> &str {
    match e.state_label() {
        "ESTABLISHED" if short => "ESTAB",
        s => s,
    }
}

/// The address columns' widths (source, destination, NAT): the least they get, what they
/// get before optional columns take more of the room, and the most they use.
const ADDR_MIN: [u16; 3] = [16, 17, 16];
const ADDR_GOOD: [u16; 3] = [22, 22, 20];
const ADDR_MAX: [u16; 3] = [30, 30, 36];
/// Below this NAT width, SNAT is shown without its port (the details show it).
const NAT_WITH_PORT: u16 = 24;

/// The address columns' widths out of `room`: their least first (shared out in proportion
/// when there is not even that), then one cell each in turn up to [`ADDR_GOOD`], then up to
/// [`ADDR_MAX`].
fn share_addresses(room: u16) -> [u16; 3] {
    let least: u16 = ADDR_MIN.iter().sum();
    if room < least {
        return ADDR_MIN.map(|m| room * m / least);
    }
    let mut w = ADDR_MIN;
    let mut left = room - least;
    for target in [ADDR_GOOD, ADDR_MAX] {
        let mut grew = true;
        while grew && left > 0 {
            grew = false;
            for (wi, ti) in w.iter_mut().zip(target) {
                if left > 0 && *wi < ti {
                    *wi += 1;
                    left -= 1;
                    grew = true;
                }
            }
        }
    }
    w
}

/// The columns and their widths, from the list's width alone (and from what does not change
/// with the rows: whether the kernel counts packets and keeps start times, and exact numbers),
/// never from the entries on screen: columns stay put between sorts, filters and group views
/// and as entries come and go, as htop's do. The required columns come first; then, while the
/// addresses keep [`ADDR_GOOD`], in this order: `ESTABLISHED` in full, bytes, age, the flags
/// in words, packets; then mark and zone while they keep [`ADDR_MAX`]. Each comes only after
/// the one before it (where it exists at all), so a wider terminal never shows less.
fn plan(ct: &CtScreen, width: u16, exact: bool) -> Plan {
    let acct = ct.accounting() != Some(false);
    let stamps = ct.figures.as_ref().and_then(|f| f.timestamps) != Some(false);
    let counter: u16 = if exact { 11 } else { 6 };
    // prot, state, f and timeout, and a separator between each of the seven columns.
    let base: u16 = 6 + 9 + 1 + 7 + 6;
    let mut room = width.saturating_sub(base);
    let mut open = true;
    // Whether the next upgrade (if it applies at all) fits after all the ones before.
    let mut take = |applies: bool, cost: u16, keep: [u16; 3]| -> bool {
        if !applies {
            return false;
        }
        let keep: u16 = keep.iter().sum();
        open = open && room >= cost + keep;
        if open {
            room -= cost;
        }
        open
    };
    let state_full = take(true, 2, ADDR_GOOD);
    let bytes = take(acct, 2 * (counter + 1), ADDR_GOOD);
    let age = take(stamps, 7, ADDR_GOOD);
    let flag_words = take(true, 8, ADDR_GOOD);
    let packets = take(acct, 2 * (counter + 1), ADDR_GOOD);
    let mark = take(true, 11, ADDR_MAX);
    let zone = take(true, 6, ADDR_MAX);
    let [src, dst, nat] = share_addresses(room);
    let mut cols = vec![
        (Col::Proto, 6),
        (Col::State, if state_full { 11 } else { 9 }),
        (Col::Flags, if flag_words { 9 } else { 1 }),
        (Col::Src, src),
        (Col::Dst, dst),
        (Col::Nat, nat),
        (Col::Timeout, 7),
    ];
    let optional = [
        (bytes, Col::OBytes, counter),
        (bytes, Col::RBytes, counter),
        (packets, Col::OPkts, counter),
        (packets, Col::RPkts, counter),
        (age, Col::Age, 6),
        (mark, Col::Mark, 10),
        (zone, Col::Zone, 5),
    ];
    cols.extend(
        optional
            .into_iter()
            .filter(|(on, _, _)| *on)
            .map(|(_, c, w)| (c, w)),
    );
    cols.sort_by_key(|(c, _)| ORDER.iter().position(|o| o == c));
    Plan {
        cols,
        compact_flags: !flag_words,
        short_state: !state_full,
        short_snat: nat < NAT_WITH_PORT,
    }
}

/// The list's columns as they are laid out now: each one's name and width (for tests, and
/// for whatever maps a click to a column).
pub fn list_columns(app: &App) -> Vec<(&'static str, u16)> {
    let width = areas(app).list.width.saturating_sub(2);
    plan(&app.ct, width, app.exact)
        .cols
        .into_iter()
        .map(|(c, w)| (c.name(), w))
        .collect()
}

fn list_title(app: &App) -> Line<'static> {
    let t = app.theme;
    let ct = &app.ct;
    let mut spans = vec![Span::styled(" Conntrack ", t.title())];
    // First: it says what the list is (and it is kept when the title is cut).
    if let Some(label) = ct.stale_label() {
        spans.push(Span::styled(format!("· {label} "), t.error()));
    }
    let total = ct.table.len();
    match ct.group {
        Some(g) => spans.push(Span::styled(
            format!(
                "by {} · {} groups of {} ",
                group_name(g),
                ct.groups.len(),
                super::format::entries(ct.groups.iter().map(|g| g.count).sum::<usize>())
            ),
            t.base(),
        )),
        None => {
            let order = match (ct.sort, ct.reverse) {
                (SortKey::Arrival, true) => "newest first".to_string(),
                (SortKey::Arrival, false) => "oldest first".to_string(),
                (k, rev) => format!("sorted by {} {}", sort_name(k), if rev { "▼" } else { "▲" }),
            };
            spans.push(Span::styled(
                format!("· {} · {order} ", super::format::entries(total)),
                t.dim(),
            ));
        }
    }
    if let Some(f) = &ct.filter {
        spans.push(Span::styled(
            format!("· filter {} ({} of {total}) ", f.source(), ct.shown()),
            t.warning(),
        ));
    }
    Line::from(spans)
}

/// In place of the list when there is nothing to list: why.
fn empty_reason(app: &App) -> Option<Line<'static>> {
    let t = app.theme;
    let ct = &app.ct;
    if ct.via.is_none() {
        return Some(match &ct.feed_error {
            Some((e, _)) => Line::styled(format!("✗ {e}"), t.error()),
            None => Line::styled("Reading the conntrack table…", t.dim()),
        });
    }
    if ct.is_empty() && ct.stale.is_some() {
        return Some(Line::styled(
            "No stale connection among the entries shown (X shows them all).",
            t.dim(),
        ));
    }
    if ct.is_empty() {
        return Some(match &ct.filter {
            Some(f) => Line::styled(
                format!(
                    "No entry matches the filter \"{}\" (Esc clears it).",
                    f.source()
                ),
                t.dim(),
            ),
            None => Line::styled("The conntrack table is empty.", t.dim()),
        });
    }
    None
}

fn draw_list(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let ct = &app.ct;
    let now = app.now;
    let block = Block::bordered()
        .title(list_title(app))
        .border_style(t.border_focused());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(why) = empty_reason(app) {
        frame.render_widget(Paragraph::new(why).wrap(Wrap { trim: false }), inner);
        return;
    }
    let rows_fit = inner.height.saturating_sub(1) as usize;
    let plan = plan(ct, inner.width, app.exact);
    let (cols, compact) = (&plan.cols, plan.compact_flags);

    let header = Row::new(cols.iter().map(|&(c, w)| {
        let title = c.title_in(ct, compact, w);
        let style = if c.sorted_by(ct.sort) {
            t.header().add_modifier(Modifier::UNDERLINED)
        } else {
            t.header()
        };
        let line = Line::styled(title, style);
        Cell::from(if c.right() {
            line.right_aligned()
        } else {
            line
        })
    }));

    let rows: Vec<Row> = (ct.offset..ct.offset + rows_fit)
        .filter_map(|i| ct.slot(i))
        .enumerate()
        .map(|(i, slot)| {
            let e = slot.entry();
            let ghost = matches!(slot, Slot::Ghost(_));
            let fresh = match slot {
                Slot::Live(r) => ct.is_new(r, now),
                Slot::Ghost(_) => false,
            };
            let flash = !ghost && ct.flashing(&e.key(), now);
            let cells = cols.iter().map(|&(c, w)| {
                let w = usize::from(w);
                let right = |text: String| Cell::from(Line::from(text).right_aligned());
                let counter = |v: Option<u64>| v.map_or_else(String::new, |n| count_in(app, n, w));
                match c {
                    Col::Proto => Cell::from(elide(&e.proto.name(), w)),
                    Col::State => {
                        let cell = Cell::from(elide(state_text(e, plan.short_state), w));
                        if flash { cell.style(t.flash()) } else { cell }
                    }
                    Col::Flags => {
                        let (long, short) = flags(e);
                        let style = if long == "ASSURED" {
                            t.ok()
                        } else {
                            t.warning()
                        };
                        Cell::from(Span::styled(if compact { short } else { long }, style))
                    }
                    Col::Src => Cell::from(endpoint(e.orig.src, e.orig.sport, w)),
                    Col::Dst => Cell::from(endpoint(e.orig.dst, e.orig.dport, w)),
                    Col::Nat => Cell::from(Line::from(nat(e).spans(w, plan.short_snat, t))),
                    Col::Timeout => right(match slot {
                        Slot::Ghost(_) => "gone".to_string(),
                        Slot::Live(r) => duration_in(ct.timeout_left(r, now), w),
                    }),
                    Col::OPkts => right(counter(e.orig_packets)),
                    Col::OBytes => right(counter(e.orig_bytes)),
                    Col::RPkts => right(counter(e.reply_packets)),
                    Col::RBytes => right(counter(e.reply_bytes)),
                    Col::Age => right(age(e, now).map_or_else(String::new, |a| duration_in(a, w))),
                    Col::Mark if e.mark == 0 => {
                        Cell::from(Line::styled("0", t.dim()).right_aligned())
                    }
                    Col::Mark => right(format!("{:#x}", e.mark)),
                    Col::Zone if e.zone == 0 => {
                        Cell::from(Line::styled("0", t.dim()).right_aligned())
                    }
                    Col::Zone => right(e.zone.to_string()),
                }
            });
            let row = Row::new(cells.collect::<Vec<_>>());
            let selected = ct.offset + i == ct.cursor;
            let mut style = Style::new();
            if fresh {
                style = style.patch(t.fresh());
            }
            if ghost {
                style = style.patch(t.gone());
            }
            if selected {
                style = style.patch(t.selected());
                if ghost {
                    style = style.add_modifier(Modifier::CROSSED_OUT);
                }
            }
            row.style(style)
        })
        .collect();
    super::render_table(frame, rows, header, cols.iter().map(|(_, w)| *w), inner);
}

fn draw_groups(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let ct = &app.ct;
    let Some(g) = ct.group else {
        return;
    };
    let block = Block::bordered()
        .title(list_title(app))
        .title_bottom(Line::styled(
            " Enter lists a group's entries · v next grouping · Bksp back ",
            t.dim(),
        ))
        .border_style(t.border_focused());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(why) = empty_reason(app) {
        frame.render_widget(Paragraph::new(why).wrap(Wrap { trim: false }), inner);
        return;
    }
    let total: usize = ct.groups.iter().map(|g| g.count).sum::<usize>().max(1);
    let rows_fit = inner.height.saturating_sub(1) as usize;
    let visible = ct.groups.iter().skip(ct.group_offset).take(rows_fit);
    let title = match g {
        GroupKey::State => "state",
        GroupKey::Proto => "protocol",
        GroupKey::Src => "source address",
        GroupKey::Dport => "destination port",
    };
    let acct = ct.accounting() != Some(false);
    let bar_w: u16 = 20;
    // The label takes what the other columns leave, up to 40: from the width alone, the same
    // in every grouping and whatever the groups are.
    let others: u16 = 8 + 6 + bar_w + 3 + if acct { 2 * (8 + 1) } else { 0 };
    let label_w = inner.width.saturating_sub(others + 1).clamp(16, 40);
    let mut cols: Vec<(&str, u16)> =
        vec![(title, label_w), ("entries", 8), ("share", 6), ("", bar_w)];
    if acct {
        cols.push(("packets", 8));
        cols.push(("bytes", 8));
    }
    let header = Row::new(cols.iter().enumerate().map(|(i, (name, _))| {
        let line = Line::from(*name);
        Cell::from(if i == 0 { line } else { line.right_aligned() })
    }))
    .style(t.header());
    let rows: Vec<Row> = visible
        .enumerate()
        .map(|(i, grp)| {
            let share = grp.count as f64 / total as f64;
            let eighths = (share * f64::from(bar_w) * 8.0).round() as usize;
            let mut bar = "█".repeat(eighths / 8);
            if eighths % 8 > 0 {
                bar.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][eighths % 8 - 1]);
            }
            let mut cells = vec![
                Cell::from(crate::format::elide_addr(&grp.label, usize::from(label_w))),
                Cell::from(Line::from(grp.count.to_string()).right_aligned()),
                Cell::from(Line::from(format!("{:.1}%", share * 100.0)).right_aligned()),
                Cell::from(Span::styled(bar, t.ok())),
            ];
            if acct {
                cells.push(Cell::from(
                    Line::from(count(app, grp.packets)).right_aligned(),
                ));
                cells.push(Cell::from(
                    Line::from(count(app, grp.bytes)).right_aligned(),
                ));
            }
            let row = Row::new(cells);
            if ct.group_offset + i == ct.group_cursor {
                row.style(t.selected())
            } else {
                row
            }
        })
        .collect();
    super::render_table(frame, rows, header, cols.iter().map(|(_, w)| *w), inner);
}

/// Label and count pairs, biggest first, as many as the line holds.
fn counts_line(
    t: Theme,
    name: &str,
    groups: &[crate::conntrack::table::Group],
    width: u16,
) -> Line<'static> {
    let mut spans = vec![Span::styled(format!(" {name:<9}"), t.header())];
    let mut used = 10usize;
    for (i, g) in groups.iter().enumerate() {
        let piece = format!(" {} {}", g.label, g.count);
        let more = groups.len() - i - 1;
        // Keep room to say how many more there are.
        let reserve = if more > 0 { 8 } else { 0 };
        if used + crate::format::width(&piece) + reserve > usize::from(width) && i > 0 {
            spans.push(Span::styled(
                format!("  +{} more", groups.len() - i),
                t.dim(),
            ));
            break;
        }
        used += crate::format::width(&piece) + 1;
        spans.push(Span::raw(format!(" {}", g.label)));
        spans.push(Span::styled(format!(" {}", g.count), t.title()));
    }
    Line::from(spans)
}

/// The summary strip: fill, rates and source; counts per state and protocol; the kernel's
/// statistics; then warnings, each on its line.
pub fn strip_lines(app: &App) -> Vec<Line<'static>> {
    let t = app.theme;
    let ct = &app.ct;
    let width = app.size.0;
    let mut lines = Vec::new();
    let mut first = vec![Span::styled(" conntrack ", t.header())];
    let mut warnings: Vec<Line<'static>> = Vec::new();
    let (count_now, max) = ct.fill();
    match max {
        Some(max) if max > 0 => {
            let ratio = count_now as f64 / max as f64;
            let gw = if width >= 100 { 20 } else { 10 };
            let filled = ((ratio.min(1.0) * gw as f64).round() as usize).min(gw);
            let style = t.gauge(ratio);
            first.push(Span::styled("█".repeat(filled), style));
            first.push(Span::styled("░".repeat(gw - filled), t.dim()));
            first.push(Span::styled(
                format!(" {count_now}/{max} {:.0}%", ratio * 100.0),
                style,
            ));
            if ratio >= 0.80 {
                let text = if ratio >= 0.95 {
                    format!(
                        " ⚠ the table is {:.0}% full: when it is full the kernel drops new connections (raise net.netfilter.nf_conntrack_max)",
                        ratio * 100.0
                    )
                } else {
                    format!(
                        " ⚠ the table is {:.0}% full: a full table drops new connections",
                        ratio * 100.0
                    )
                };
                warnings.push(Line::styled(text, style));
            }
        }
        _ => first.push(Span::styled(
            format!("{count_now} entries (maximum unknown)"),
            t.base(),
        )),
    }
    if ct.via.is_some() {
        first.push(Span::styled(
            format!(
                " · {} events/s",
                super::format::rate(ct.events_per_sec(app.now))
            ),
            t.dim(),
        ));
        let lost = format!(" · lost {}", ct.lost_total);
        first.push(if ct.lost_total > 0 {
            Span::styled(lost, t.warning())
        } else {
            Span::styled(lost, t.dim())
        });
    }
    if let Some(via) = ct.via {
        first.push(Span::styled(format!(" · via {}", via.label()), t.dim()));
    }
    lines.push(Line::from(first));
    if ct.via.is_some() {
        lines.push(counts_line(t, "states", &ct.summary.by_state, width));
        lines.push(counts_line(t, "protocols", &ct.summary.by_proto, width));
    }
    if let Some(s) = ct.figures.as_ref().and_then(|f| f.cpu.as_ref()) {
        let mut spans = vec![Span::styled(format!(" {:<9}", "kernel"), t.header())];
        let all = [
            ("insert_failed", s.insert_failed),
            ("drop", s.drop),
            ("early_drop", s.early_drop),
            ("error", s.error),
            ("search_restart", s.search_restart),
            ("clash_resolve", s.clash_resolve),
        ];
        let long: usize = all
            .iter()
            .map(|(n, v)| n.len() + v.to_string().len() + 2)
            .sum();
        // Where they do not all fit, the ones at zero go without saying.
        let fits = 11 + long <= usize::from(width);
        let shown: Vec<_> = all.iter().filter(|(_, v)| fits || *v > 0).collect();
        if shown.len() < all.len() {
            spans.push(Span::styled(" (the others 0)", t.dim()));
        }
        for &&(name, v) in &shown {
            spans.push(Span::styled(format!(" {name}"), t.dim()));
            let bad = v > 0 && matches!(name, "insert_failed" | "drop" | "early_drop");
            spans.push(Span::styled(
                format!(" {v}"),
                if bad { t.warning() } else { t.base() },
            ));
        }
        lines.push(Line::from(spans));
    }
    if ct.accounting() == Some(false) {
        warnings.push(Line::from(vec![
            Span::styled(
                " packets and bytes are not counted; to count them: ",
                t.warning(),
            ),
            Span::styled(ACCT_HINT, t.key()),
        ]));
    }
    if ct.via.is_some()
        && let Some((e, _)) = &ct.feed_error
    {
        warnings.push(Line::styled(format!(" ✗ {e}"), t.error()));
    }
    lines.extend(warnings);
    lines
}

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let ct = &app.ct;
    if app.mode == InputMode::Filter {
        let prefix = " filter: ";
        let mut input = vec![Span::styled(prefix, t.key())];
        let mut lines = Vec::new();
        match &ct.input_error {
            Some(e) => {
                // The bad part, underlined, under and in the expression.
                let chars: Vec<char> = ct.input.chars().collect();
                let start = e.column.saturating_sub(1).min(chars.len());
                let end = (start + e.len.max(1)).min(chars.len());
                let pad = crate::format::width(prefix)
                    + crate::format::width(&chars[..start].iter().collect::<String>());
                lines.push(Line::from(vec![
                    Span::raw(" ".repeat(pad)),
                    Span::styled("^".repeat((end - start).max(1)), t.error()),
                    Span::styled(format!(" {e}"), t.error()),
                ]));
                input.push(Span::raw(chars[..start].iter().collect::<String>()));
                input.push(Span::styled(
                    chars[start..end].iter().collect::<String>(),
                    t.error().add_modifier(Modifier::UNDERLINED),
                ));
                input.push(Span::raw(chars[end..].iter().collect::<String>()));
                input.push(Span::styled("▏", t.key()));
                input.push(Span::styled(
                    "   Enter applies · Esc clears (the filter before stays applied)",
                    t.dim(),
                ));
            }
            None => {
                input.push(Span::raw(ct.input.clone()));
                input.push(Span::styled("▏", t.key()));
                input.push(Span::styled(
                    "   Enter applies · Esc clears · e.g. proto=tcp state=ESTABLISHED dport=22",
                    t.dim(),
                ));
            }
        }
        lines.push(Line::from(input));
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    let width = usize::from(area.width);
    let mut spans = Vec::new();
    let mut used = 0;
    // The newest of the screen's notice (a deletion's outcome, for a few seconds) and the
    // App's message (what was copied or written: `y` and `W` clear the notice).
    let said = match (&ct.notice, &app.edit.message) {
        (Some(n), _) => Some((n.text.as_str(), n.error)),
        (None, Some((m, bad))) => Some((m.as_str(), *bad)),
        (None, None) => None,
    };
    if let Some((text, bad)) = said {
        // A long one keeps its end (a file's name) and gives up the hints.
        let text = crate::format::elide_middle(text, width.saturating_sub(2));
        let text = format!(" {text} ");
        used += crate::format::width(&text);
        spans.push(Span::styled(
            text,
            if bad {
                t.error()
            } else {
                t.ok().add_modifier(Modifier::BOLD)
            },
        ));
    }
    let hints = match app.popup {
        Some(Popup::Confirm(_)) => keymap::hints(&[Scope::Confirm]),
        Some(_) => keymap::hints(&[Scope::Popup]),
        None if ct.log.open => log_hints(),
        None => keymap::hints(&[Scope::Conntrack, Scope::Global]),
    };
    // Whole hints, as many as fit.
    for (k, what) in hints {
        let w = crate::format::width(&k) + crate::format::width(what) + 3;
        if used + w > width {
            break;
        }
        used += w;
        spans.push(Span::styled(format!(" {k}"), t.key()));
        spans.push(Span::styled(format!(" {what} "), t.dim()));
    }
    if app.exact && !ct.log.open && used + 16 <= width {
        spans.push(Span::styled(" [exact numbers]", t.warning()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The first key of an action in the keymap, as the help writes it.
fn key_of(scope: Scope, action: keymap::Action) -> Option<String> {
    keymap::KEYMAP
        .iter()
        .find(|b| b.scope == scope && b.action == action)
        .and_then(|b| b.keys.first())
        .map(keymap::key_label)
}

/// The event log's footer hints, from the keymap.
fn log_hints() -> Vec<(String, &'static str)> {
    use keymap::Action;
    [
        (Scope::Global, Action::EventLog, "table"),
        (Scope::Conntrack, Action::Filter, "filter"),
        (Scope::Conntrack, Action::Yank, "copy"),
        (Scope::Global, Action::WriteView, "write"),
        (Scope::Global, Action::Help, "help"),
        (Scope::Global, Action::Quit, "quit"),
    ]
    .into_iter()
    .filter_map(|(scope, action, what)| key_of(scope, action).map(|k| (k, what)))
    .collect()
}

/// Spans laid out on lines of `width` cells, a span going to the next line where it does
/// not fit (after a space, for the words of a sentence).
fn flow(pieces: Vec<Span<'static>>, width: u16) -> Vec<Line<'static>> {
    let width = usize::from(width);
    let mut lines = Vec::new();
    let mut line: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for p in pieces {
        let w = crate::format::width(&p.content);
        if used + w > width && !line.is_empty() {
            lines.push(Line::from(std::mem::take(&mut line)));
            used = 0;
        }
        used += w;
        line.push(p);
    }
    if !line.is_empty() {
        lines.push(Line::from(line));
    }
    lines
}

/// A sentence as one span a word (each after a space), for [`flow`].
fn words(text: &str, style: Style) -> Vec<Span<'static>> {
    text.split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| Span::styled(format!(" {w}"), style))
        .collect()
}

/// The event log's size, and how it learns of changes.
pub fn log_strip_lines(app: &App) -> Vec<Line<'static>> {
    let t = app.theme;
    let ct = &app.ct;
    let log = &ct.log.log;
    let width = app.size.0;
    let mut first = vec![
        Span::styled(" event log ", t.header()),
        Span::styled(
            format!(" {} kept of at most {}", log.len(), log.cap()),
            t.base(),
        ),
        Span::styled(
            format!(" · {} dropped from the front", log.dropped()),
            if log.dropped() > 0 {
                t.warning()
            } else {
                t.dim()
            },
        ),
    ];
    // The oldest event's time, where it fits on the line.
    if let Some(oldest) = log.iter().next() {
        let piece = format!(" · oldest {}", crate::tui::conntrack::clock_ms(oldest.at));
        let used: usize = first.iter().map(|s| crate::format::width(&s.content)).sum();
        if used + crate::format::width(&piece) <= usize::from(width) {
            first.push(Span::styled(piece, t.dim()));
        }
    }
    let how = match ct.via {
        Some(CtVia::Netlink) => {
            "From the kernel's events (netlink). ~ marks a change found by re-reading the table: entries older than nfscope's subscription send no events."
        }
        Some(CtVia::Proc) => {
            "/proc/net/nf_conntrack has no events: ~ marks the changes found by comparing successive reads of the table (what comes and goes between two reads is not seen)."
        }
        Some(CtVia::Demo) => "The demo's simulated events.",
        None => "No conntrack table read yet.",
    };
    let mut lines = flow(first, width);
    lines.extend(flow(words(how, t.dim()), width));
    if ct.lost_total > 0 {
        let lost = format!(
            "⚠ The kernel dropped {} events; after each loss the table was re-read and what changed is logged with ~.",
            ct.lost_total
        );
        lines.extend(flow(words(&lost, t.warning()), width));
    }
    if let Some((e, _)) = &ct.feed_error {
        lines.extend(flow(words(&format!("✗ {e}"), t.error()), width));
    }
    lines
}

/// The event log's columns: time, event, protocol, state, the original direction, and the
/// rest where there is room. From the width alone.
fn log_plan(width: u16) -> (u16, u16, u16) {
    let state: u16 = if width >= 100 { 11 } else { 9 };
    // time, event, prot, state, each with a separator.
    let fixed = 12 + 8 + 6 + state + 4;
    let left = width.saturating_sub(fixed);
    let mut orig = left.min(22 + 3 + 22);
    let mut rest = left.saturating_sub(orig + 1);
    if rest < 12 {
        orig = left;
        rest = 0;
    } else if rest > 40 {
        let more = (rest - 40).min(16);
        orig += more;
        rest -= more;
    }
    (state, orig, rest)
}

/// What else an event says, short: flags, NAT, the timeout it set, mark and zone.
fn log_rest(e: &Entry, kind: crate::conntrack::CtEventKind) -> String {
    let mut parts: Vec<String> = Vec::new();
    let (flag, _) = flags(e);
    if !flag.is_empty() {
        parts.push(flag.to_string());
    }
    for (k, (a, p)) in nat(e).parts() {
        parts.push(format!("{k} {}", endpoint(a, p, usize::MAX)));
    }
    if kind != crate::conntrack::CtEventKind::Destroy {
        parts.push(format!("timeout {}", duration(u64::from(e.timeout))));
    }
    if e.mark != 0 {
        parts.push(format!("mark {:#x}", e.mark));
    }
    if e.zone != 0 {
        parts.push(format!("zone {}", e.zone));
    }
    parts.join(" ")
}

/// `s` cut at its end to `w` cells, `…` marking the cut.
fn cut_end(s: &str, w: usize) -> String {
    if crate::format::width(s) <= w {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        if crate::format::width(&out) + crate::format::width(&c.to_string()) + 1 > w {
            break;
        }
        out.push(c);
    }
    if w > 0 {
        out.push('…');
    }
    out
}

fn draw_log(frame: &mut Frame, app: &App, area: Rect) {
    use crate::conntrack::CtEventKind;
    use crate::conntrack::log::Seen;
    let t = app.theme;
    let ct = &app.ct;
    let log = &ct.log;
    let mut title = vec![
        Span::styled(" Event log ", t.title()),
        Span::styled(
            format!("· newest first · {} ", count_of(log.log.len(), "event")),
            t.dim(),
        ),
    ];
    if let Some(f) = &log.filter {
        title.push(Span::styled(
            format!(
                "· filter {} ({} of {}) ",
                f.source(),
                log.len(),
                log.log.len()
            ),
            t.warning(),
        ));
    }
    let block = Block::bordered()
        .title(Line::from(title))
        .border_style(t.border_focused());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if log.is_empty() {
        if ct.via.is_none()
            && let Some(why) = empty_reason(app)
        {
            // No table (yet, or at all): the list's own words for it.
            frame.render_widget(Paragraph::new(why).wrap(Wrap { trim: false }), inner);
            return;
        }
        let why = match (&log.filter, ct.via) {
            (_, None) => "Reading the conntrack table…".to_string(),
            (Some(f), _) => format!(
                "No event matches the filter \"{}\" (/ then Esc clears it).",
                f.source()
            ),
            (None, _) => {
                "No event yet: connections that come, change and go appear here.".to_string()
            }
        };
        frame.render_widget(
            Paragraph::new(Line::styled(why, t.dim())).wrap(Wrap { trim: false }),
            inner,
        );
        return;
    }
    let (state_w, orig_w, rest_w) = log_plan(inner.width);
    let mut widths = vec![12, 8, 6, state_w, orig_w];
    let mut titles = vec!["time", "event", "prot", "state", "original"];
    if rest_w > 0 {
        widths.push(rest_w);
        titles.push("flags, NAT, timeout");
    }
    let header = Row::new(
        titles
            .into_iter()
            .map(|x| Cell::from(Line::styled(x, t.header()))),
    );
    let side = usize::from(orig_w).saturating_sub(3) / 2;
    let rows_fit = inner.height.saturating_sub(1) as usize;
    let rows: Vec<Row> = (log.offset..log.offset + rows_fit)
        .filter_map(|i| log.row(i).map(|l| (i, l)))
        .map(|(i, l)| {
            let e = &l.entry;
            let style = match l.kind {
                CtEventKind::New => t.ok(),
                CtEventKind::Update => t.warning(),
                CtEventKind::Destroy => t.error(),
            };
            let mark = match l.seen {
                Seen::Event => "",
                Seen::Reread => "~",
            };
            let orig = format!(
                "{} → {}",
                endpoint(e.orig.src, e.orig.sport, side),
                endpoint(
                    e.orig.dst,
                    e.orig.dport,
                    usize::from(orig_w).saturating_sub(side + 3)
                )
            );
            let mut cells = vec![
                Cell::from(crate::tui::conntrack::clock_ms(l.at)),
                Cell::from(Span::styled(
                    format!("{}{mark}", l.tag()),
                    style.add_modifier(Modifier::BOLD),
                )),
                Cell::from(elide(&e.proto.name(), 6)),
                Cell::from(elide(state_text(e, state_w < 11), usize::from(state_w))),
                Cell::from(orig),
            ];
            if rest_w > 0 {
                cells.push(Cell::from(cut_end(
                    &log_rest(e, l.kind),
                    usize::from(rest_w),
                )));
            }
            let row = Row::new(cells);
            if i == log.cursor {
                row.style(t.selected())
            } else {
                row
            }
        })
        .collect();
    super::render_table(frame, rows, header, widths, inner);
}

/// `1 event`, `12 events`.
fn count_of(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(65), "1m05s");
        assert_eq!(duration(3 * 3600 + 120), "3h02m");
        assert_eq!(duration(432_000), "5d00h");
    }

    #[test]
    fn long_addresses_keep_their_ends() {
        let v6: IpAddr = "2001:db8:0:10::105".parse().unwrap();
        assert_eq!(endpoint(v6, Some(443), 40), "[2001:db8:0:10::105]:443");
        assert_eq!(endpoint(v6, Some(443), 17), "[2001:…::105]:443");
        assert_eq!(endpoint(v6, Some(443), 16), "[…::105]:443");
        assert_eq!(endpoint(v6, None, 11), "2001:…::105");
        let v4: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(endpoint(v4, Some(22), 40), "10.0.0.5:22");
        assert_eq!(elide("abcdef", 0), "");
        assert_eq!(elide("abcdef", 1), "…");
        assert_eq!(elide("abcdef", 4), "a…ef");
    }
}
