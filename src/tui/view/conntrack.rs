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
    let strip_h = strip_lines(app).len() as u16;
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

/// `s` with its middle replaced by `…` to fit `w` cells; the end (a host part) is kept over
/// the start.
pub fn elide(s: &str, w: usize) -> String {
    crate::format::elide_middle(s, w)
}

/// `addr:port` (`[v6]:port`), the address elided to fit `w`.
pub fn endpoint(addr: IpAddr, port: Option<u16>, w: usize) -> String {
    let a = addr.to_string();
    let (pre, post) = match (addr, port) {
        (IpAddr::V6(_), Some(p)) => ("[", format!("]:{p}")),
        (IpAddr::V4(_), Some(p)) => ("", format!(":{p}")),
        (_, None) => ("", String::new()),
    };
    let fixed = pre.len() + post.len();
    if fixed + a.len() <= w {
        return format!("{pre}{a}{post}");
    }
    if w < fixed + 4 {
        return elide(&format!("{pre}{a}{post}"), w);
    }
    format!("{pre}{}{post}", elide(&a, w - fixed))
}

fn endpoint_len(addr: IpAddr, port: Option<u16>) -> usize {
    endpoint(addr, port, usize::MAX).len()
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
    fn is_some(self) -> bool {
        self.dnat.is_some() || self.snat.is_some()
    }

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

    fn len(self, short_snat: bool) -> usize {
        let parts = self.parts_as(short_snat);
        parts
            .iter()
            .map(|(k, (a, p))| k.len() + 1 + endpoint_len(*a, *p))
            .sum::<usize>()
            + parts.len().saturating_sub(1)
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
            out.push(Span::raw(format!(" {}", endpoint(a, p, room.max(4)))));
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
        if self.sorted_by(ct.sort) {
            format!("{base}{}", if ct.reverse { "▼" } else { "▲" })
        } else {
            base.to_string()
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

/// One visible row, formatted.
struct Shown<'a> {
    slot: Slot<'a>,
    nat: Nat,
    timeout: String,
    counters: [Option<String>; 4],
    age: Option<String>,
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

/// Column widths: what the rows on screen need, with optional columns (counters, age, mark,
/// zone) as room allows. Every combination of the shorter forms is tried; the winner elides
/// the fewest characters of the required columns to fit, then shows the most of what matters,
/// in this order: bytes, age, the flags in words, packets, mark, zone, whole IPv6 addresses,
/// the SNAT port, `ESTABLISHED` in full.
fn plan(shown: &[Shown], ct: &CtScreen, width: u16) -> Plan {
    fn e<'a>(s: &Shown<'a>) -> &'a Entry {
        s.slot.entry()
    }
    let title = |c: Col, compact: bool| crate::format::width(&c.title(ct, compact));
    let w = |c: Col, compact: bool, f: &dyn Fn(&Shown) -> usize| -> u16 {
        let t = title(c, compact);
        shown.iter().map(f).chain([t]).max().unwrap_or(t) as u16
    };
    let has = |f: &dyn Fn(&Shown) -> bool| shown.iter().any(f);
    let proto = w(Col::Proto, false, &|s| e(s).proto.name().len());
    let timeout = w(Col::Timeout, false, &|s| s.timeout.len());
    let any_nat = has(&|s| s.nat.is_some()) || ct.sort == SortKey::Reply;
    let counter =
        |c: Col, i: usize| w(c, false, &|s| s.counters[i].as_ref().map_or(0, String::len));
    // (what it is worth, columns), most important first.
    let mut optional: Vec<(u16, Vec<(Col, u16)>)> = Vec::new();
    if has(&|s| s.counters[1].is_some()) {
        optional.push((
            1 << 8,
            vec![
                (Col::OBytes, counter(Col::OBytes, 1)),
                (Col::RBytes, counter(Col::RBytes, 3)),
            ],
        ));
    }
    if has(&|s| s.age.is_some()) {
        let aw = w(Col::Age, false, &|s| s.age.as_ref().map_or(0, String::len));
        optional.push((1 << 7, vec![(Col::Age, aw)]));
    }
    if has(&|s| s.counters[0].is_some()) {
        optional.push((
            1 << 5,
            vec![
                (Col::OPkts, counter(Col::OPkts, 0)),
                (Col::RPkts, counter(Col::RPkts, 2)),
            ],
        ));
    }
    if has(&|s| e(s).mark != 0) || ct.sort == SortKey::Mark {
        let mw = w(Col::Mark, false, &|s| format!("{:#x}", e(s).mark).len());
        optional.push((1 << 4, vec![(Col::Mark, mw)]));
    }
    if has(&|s| e(s).zone != 0) || ct.sort == SortKey::Zone {
        let zw = w(Col::Zone, false, &|s| e(s).zone.to_string().len());
        optional.push((1 << 3, vec![(Col::Zone, zw)]));
    }
    let used = |cols: &[(Col, u16)]| cols.iter().map(|(_, w)| w + 1).sum::<u16>();

    // Bit 0: compact flags; 1: short states; 2: SNAT without port; 3: addresses capped.
    let attempt = |forms: u8| -> ((std::cmp::Reverse<u16>, u16), Plan) {
        let on = |bit: u8| forms & (1 << bit) != 0;
        let (compact, short_state, short_snat, capped) = (on(0), on(1), on(2), on(3));
        let cap = |w: u16, to: u16| if capped { w.min(to) } else { w };
        let flags_w = if compact {
            w(Col::Flags, true, &|_| 1)
        } else {
            w(Col::Flags, false, &|s| flags(e(s)).0.len())
        };
        let state = w(Col::State, false, &|s| state_text(e(s), short_state).len()).min(13);
        let src = w(Col::Src, false, &|s| {
            endpoint_len(e(s).orig.src, e(s).orig.sport)
        });
        let dst = w(Col::Dst, false, &|s| {
            endpoint_len(e(s).orig.dst, e(s).orig.dport)
        });
        let nat = w(Col::Nat, false, &|s| s.nat.len(short_snat));
        let mut cols = vec![
            (Col::Proto, proto),
            (Col::State, state),
            (Col::Flags, flags_w),
            (Col::Src, cap(src.min(30), 22)),
            (Col::Dst, cap(dst.min(30), 22)),
        ];
        if any_nat {
            cols.push((Col::Nat, cap(nat.min(48), 24)));
        }
        cols.push((Col::Timeout, timeout));
        // Narrow the address columns (they elide), a character at a time where it elides
        // the fewest rows, then the state, until the required columns fit.
        let lens = |c: Col| -> Vec<usize> {
            shown
                .iter()
                .map(|s| match c {
                    Col::Src => endpoint_len(e(s).orig.src, e(s).orig.sport),
                    Col::Dst => endpoint_len(e(s).orig.dst, e(s).orig.dport),
                    _ => s.nat.len(short_snat),
                })
                .collect()
        };
        let lens = [lens(Col::Src), lens(Col::Dst), lens(Col::Nat)];
        let mut over = used(&cols).saturating_sub(width + 1);
        let mut cut = 0;
        while over > 0 {
            let cheapest = cols
                .iter_mut()
                .filter(|(c, w)| matches!(c, Col::Src | Col::Dst | Col::Nat) && *w > 13)
                .map(|(c, w)| {
                    let i = match c {
                        Col::Src => 0,
                        Col::Dst => 1,
                        _ => 2,
                    };
                    let hurt = lens[i].iter().filter(|&&l| l >= usize::from(*w)).count();
                    (hurt, std::cmp::Reverse(*w), w)
                })
                .min_by_key(|(hurt, wide, _)| (*hurt, *wide));
            let Some((_, _, w)) = cheapest else { break };
            *w -= 1;
            over -= 1;
            cut += 1;
        }
        if let Some((_, w)) = cols.iter_mut().find(|(c, _)| *c == Col::State) {
            let c = over.min(w.saturating_sub(8));
            *w -= c;
            cut += c;
        }
        // The long forms are worth something too, between the optional columns.
        let mut value: u16 = u16::from(!compact) << 6
            | u16::from(!capped) << 2
            | u16::from(!short_snat) << 1
            | u16::from(!short_state);
        for (v, group) in &optional {
            let extra: u16 = group.iter().map(|(_, w)| w + 1).sum();
            if used(&cols) + extra <= width + 1 {
                cols.extend(group.iter().copied());
                value |= v;
            }
        }
        let score = (std::cmp::Reverse(cut), value);
        let plan = Plan {
            cols,
            compact_flags: compact,
            short_state,
            short_snat,
        };
        (score, plan)
    };
    let mut best: Option<((std::cmp::Reverse<u16>, u16), Plan)> = None;
    for forms in 0..16u8 {
        let (score, plan) = attempt(forms);
        if best.as_ref().is_none_or(|(b, _)| score > *b) {
            best = Some((score, plan));
        }
    }
    let mut plan = best.map(|(_, p)| p).unwrap_or(Plan {
        cols: Vec::new(),
        compact_flags: false,
        short_state: false,
        short_snat: false,
    });
    plan.cols
        .sort_by_key(|(c, _)| ORDER.iter().position(|o| o == c));
    plan
}

fn list_title(app: &App) -> Line<'static> {
    let t = app.theme;
    let ct = &app.ct;
    let mut spans = vec![Span::styled(" Conntrack ", t.title())];
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
    let shown: Vec<Shown> = (ct.offset..ct.offset + rows_fit)
        .filter_map(|i| ct.slot(i))
        .map(|slot| {
            let e = slot.entry();
            let timeout = match slot {
                Slot::Ghost(_) => "gone".to_string(),
                Slot::Live(r) => duration(ct.timeout_left(r, now)),
            };
            let c = |v: Option<u64>| v.map(|n| count(app, n));
            Shown {
                slot,
                nat: nat(e),
                timeout,
                counters: [
                    c(e.orig_packets),
                    c(e.orig_bytes),
                    c(e.reply_packets),
                    c(e.reply_bytes),
                ],
                age: age(e, now).map(duration),
            }
        })
        .collect();
    let plan = plan(&shown, ct, inner.width);
    let (cols, compact) = (&plan.cols, plan.compact_flags);

    let header = Row::new(cols.iter().map(|(c, _)| {
        let title = c.title(ct, compact);
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

    let rows: Vec<Row> = shown
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let e = s.slot.entry();
            let ghost = matches!(s.slot, Slot::Ghost(_));
            let fresh = match s.slot {
                Slot::Live(r) => ct.is_new(r, now),
                Slot::Ghost(_) => false,
            };
            let flash = !ghost && ct.flashing(&e.key(), now);
            let cells = cols.iter().map(|&(c, w)| {
                let w = usize::from(w);
                let right = |text: String| Cell::from(Line::from(text).right_aligned());
                match c {
                    Col::Proto => Cell::from(e.proto.name()),
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
                    Col::Nat => Cell::from(Line::from(s.nat.spans(w, plan.short_snat, t))),
                    Col::Timeout => right(s.timeout.clone()),
                    Col::OPkts => right(s.counters[0].clone().unwrap_or_default()),
                    Col::OBytes => right(s.counters[1].clone().unwrap_or_default()),
                    Col::RPkts => right(s.counters[2].clone().unwrap_or_default()),
                    Col::RBytes => right(s.counters[3].clone().unwrap_or_default()),
                    Col::Age => right(s.age.clone().unwrap_or_default()),
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
    let label_w = visible
        .clone()
        .map(|g| crate::format::width(&g.label))
        .chain([title.len()])
        .max()
        .unwrap_or(8)
        .min(40) as u16;
    let acct = ct.accounting() != Some(false);
    let bar_w: u16 = 20;
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
                Cell::from(elide(&grp.label, usize::from(label_w))),
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
    let mut spans = Vec::new();
    if let Some(n) = &ct.notice {
        spans.push(Span::styled(
            format!(" {} ", n.text),
            if n.error {
                t.error()
            } else {
                t.ok().add_modifier(Modifier::BOLD)
            },
        ));
    }
    let scopes: &[Scope] = match app.popup {
        Some(Popup::Confirm(_)) => &[Scope::Confirm],
        Some(_) => &[Scope::Popup],
        None => &[Scope::Conntrack, Scope::Global],
    };
    for (k, what) in keymap::hints(scopes) {
        spans.push(Span::styled(format!(" {k}"), t.key()));
        spans.push(Span::styled(format!(" {what} "), t.dim()));
    }
    if app.exact {
        spans.push(Span::styled(" [exact numbers]", t.warning()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
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
        assert_eq!(endpoint(v6, Some(443), 16), "[2001…::105]:443");
        assert_eq!(endpoint(v6, None, 10), "2001…::105");
        let v4: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(endpoint(v4, Some(22), 40), "10.0.0.5:22");
        assert_eq!(elide("abcdef", 0), "");
        assert_eq!(elide("abcdef", 1), "…");
        assert_eq!(elide("abcdef", 4), "a…ef");
    }
}
