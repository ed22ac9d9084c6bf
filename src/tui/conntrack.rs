//! The Conntrack screen's state and its pure updates: the live table the conntrack feed keeps
//! current, the sorted and filtered view of it (cached, and recomputed only when the table, the
//! sort or the filter changed, at most a few times a second under an event storm), destroyed
//! entries fading out, new entries and state changes standing out for a moment, the group-by
//! view, deletions waiting for a yes, and the event log (`E`): the last events the feed
//! delivered, and the changes found by comparing reads of the table where there are no events.
//! No terminal and no clock: times come with messages.
//!
//! The view holds table positions, which are valid for one table generation only; so events are
//! applied to the table only right before the view is recomputed, and the selection is kept as
//! an [`EntryKey`] and found again after every change.

use super::app::keep_in_view;
use super::event::Cmd;
use crate::conntrack::filter::{Filter, FilterError};
use crate::conntrack::log::{EventLog, Logged, Seen};
use crate::conntrack::table::{self, Applied, Group, GroupKey, Row, SortKey, Summary, Table};
use crate::conntrack::{CtEvent, CtEventKind, Entry, EntryKey, State, Status};
use crate::source::ctfeed::{CtFeed, CtFigures, CtVia};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// Events are applied (and the view sorted again) at most this often.
pub const FLUSH_EVERY: Duration = Duration::from_millis(300);
/// How long a destroyed entry stays on screen, greyed and struck out.
pub const FADE: Duration = Duration::from_secs(2);
/// How long a new entry or a state change stands out.
pub const HIGHLIGHT: Duration = Duration::from_secs(2);
/// How long a status message (a deletion's outcome) stays in the footer.
pub const NOTICE_FOR: Duration = Duration::from_secs(8);
/// The per-state and per-protocol counts are counted again at most this often.
const SUMMARY_EVERY: Duration = Duration::from_secs(1);
/// Events per second are averaged over this long.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// At most this many destroyed entries fade at once (an event storm destroys thousands).
const GHOST_CAP: usize = 2_000;
/// At most this many state changes flash at once.
const FLASH_CAP: usize = 10_000;
/// Marks a view slot as a fading entry (an index into `ghosts`) rather than a table position.
const GHOST: u32 = 1 << 31;

/// The sort columns in the order `s` steps through them (the list's columns, left to right).
pub const SORT_ORDER: [SortKey; 15] = SortKey::ALL;

/// How a sort key is named in the list's title.
pub fn sort_name(k: SortKey) -> &'static str {
    match k {
        SortKey::Proto => "protocol",
        SortKey::State => "state",
        SortKey::Src => "source",
        SortKey::Sport => "source port",
        SortKey::Dst => "destination",
        SortKey::Dport => "destination port",
        SortKey::Reply => "reply source (NAT)",
        SortKey::Timeout => "timeout",
        SortKey::Flags => "flags",
        SortKey::Mark => "mark",
        SortKey::Zone => "zone",
        SortKey::Packets => "packets",
        SortKey::Bytes => "bytes",
        SortKey::Age => "age",
        SortKey::Arrival => "arrival",
    }
}

/// The group-by views in the order `v` steps through them.
pub const GROUP_ORDER: [Option<GroupKey>; 5] = [
    None,
    Some(GroupKey::State),
    Some(GroupKey::Proto),
    Some(GroupKey::Src),
    Some(GroupKey::Dport),
];

pub fn group_name(g: GroupKey) -> &'static str {
    match g {
        GroupKey::State => "state",
        GroupKey::Proto => "protocol",
        GroupKey::Src => "source address",
        GroupKey::Dport => "destination port",
    }
}

/// The filter term that selects one group's entries.
pub fn group_filter(g: GroupKey, label: &str) -> String {
    match g {
        GroupKey::State => format!("state={label}"),
        GroupKey::Proto => format!("proto={label}"),
        GroupKey::Src => format!("src={label}"),
        GroupKey::Dport => match label.split_once('/') {
            Some((port, proto)) => format!("proto={proto} dport={port}"),
            None => format!("proto={label}"),
        },
    }
}

/// A destroyed entry, shown greyed and struck out for [`FADE`].
#[derive(Debug, Clone)]
pub struct Ghost {
    pub row: Row,
    pub died: SystemTime,
}

/// One row of the view: an entry of the table, or one fading out.
#[derive(Debug, Clone, Copy)]
pub enum Slot<'a> {
    Live(&'a Row),
    Ghost(&'a Ghost),
}

impl<'a> Slot<'a> {
    pub fn row(self) -> &'a Row {
        match self {
            Slot::Live(r) => r,
            Slot::Ghost(g) => &g.row,
        }
    }

    pub fn entry(self) -> &'a Entry {
        &self.row().entry
    }
}

/// A destructive request waiting for a yes.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    One(Box<Entry>),
    /// Every entry the filter shows (all with `None`); `count` as the screen shows them now.
    Matching {
        filter: Option<Filter>,
        count: usize,
    },
    /// The stale entries the list shows (`X`, then `D`).
    Stale {
        keys: Vec<EntryKey>,
    },
}

/// The stale-flow view (`X`): the analysis's answer, shown as a filter on the list.
#[derive(Debug, Clone)]
pub struct StaleView {
    pub found: crate::trace::stale::Found,
    pub at: SystemTime,
}

/// A line for the footer, for a few seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    pub at: SystemTime,
}

/// The entry the detail popup shows, pinned when it opened; kept after the entry is gone.
#[derive(Debug, Clone)]
pub struct Detail {
    pub key: EntryKey,
    pub entry: Entry,
    /// When it was destroyed, once it was.
    pub gone: Option<SystemTime>,
    pub scroll: crate::tui::scroll::Scroll,
}

/// The event log's view (`E`): the log, its filter, and the cursor. Rows are newest first; the
/// cursor and the offset count rows from the top (the newest).
#[derive(Debug, Default)]
pub struct LogScreen {
    /// Shown in place of the table.
    pub open: bool,
    pub log: EventLog,
    pub filter: Option<Filter>,
    pub cursor: usize,
    pub offset: usize,
    /// Numbers of the events passing the filter, oldest first (some may have left the log:
    /// [`LogScreen::trim`] drops them).
    view: VecDeque<u64>,
    /// The selected event's number.
    selected: Option<u64>,
}

impl LogScreen {
    /// Log an event; it shows at once if it passes the filter.
    pub fn record(&mut self, at: SystemTime, kind: CtEventKind, seen: Seen, entry: Entry) {
        let pass = self.filter.as_ref().is_none_or(|f| f.matches(&entry));
        let seq = self.log.push(at, kind, seen, entry);
        if pass {
            self.view.push_back(seq);
        }
        self.trim();
    }

    /// Forget the numbers of events that left the log.
    fn trim(&mut self) {
        let first = self.log.first_seq();
        while self.view.front().is_some_and(|&s| s < first) {
            self.view.pop_front();
        }
    }

    /// Rows (events passing the filter).
    pub fn len(&self) -> usize {
        self.view.len()
    }

    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    /// The event on row `i` (0: the newest).
    pub fn row(&self, i: usize) -> Option<&Logged> {
        let at = self.view.len().checked_sub(i + 1)?;
        self.log.get(*self.view.get(at)?)
    }

    pub fn selected(&self) -> Option<&Logged> {
        self.row(self.cursor)
    }

    /// The events passing the filter, oldest first.
    pub fn shown(&self) -> impl Iterator<Item = &Logged> {
        self.view.iter().filter_map(|&s| self.log.get(s))
    }

    /// After events came: the selection stays on its event, on the same line; on the top row
    /// it follows the newest, as `tail -f` does.
    fn settle(&mut self, rows: usize) {
        let line = self.cursor.saturating_sub(self.offset);
        let at_top = self.offset == 0;
        let follow = self.cursor == 0 && at_top;
        let n = self.view.len();
        let found = self
            .selected
            .filter(|_| !follow)
            .and_then(|s| self.view.binary_search(&s).ok());
        self.cursor = match found {
            Some(i) => n - 1 - i,
            None if follow => 0,
            None => self.cursor.min(n.saturating_sub(1)),
        };
        self.offset = if at_top {
            0
        } else {
            self.cursor.saturating_sub(line)
        };
        keep_in_view(&mut self.cursor, &mut self.offset, n, rows);
        self.selected = self.row(self.cursor).map(|l| l.seq);
    }

    pub fn move_cursor(&mut self, delta: isize, rows: usize) {
        let n = self.view.len();
        self.cursor = if n == 0 {
            0
        } else {
            self.cursor.saturating_add_signed(delta).min(n - 1)
        };
        keep_in_view(&mut self.cursor, &mut self.offset, n, rows);
        self.selected = self.row(self.cursor).map(|l| l.seq);
    }

    /// Filter the log (`None`: everything); the view starts again from the newest.
    pub fn set_filter(&mut self, filter: Option<Filter>, rows: usize) {
        self.filter = filter;
        self.view = self
            .log
            .iter()
            .filter(|l| self.filter.as_ref().is_none_or(|f| f.matches(&l.entry)))
            .map(|l| l.seq)
            .collect();
        self.cursor = 0;
        self.offset = 0;
        self.settle(rows);
    }
}

/// What the Conntrack screen shows, and how.
#[derive(Debug)]
pub struct CtScreen {
    pub table: Table,
    /// How the feed reads the table; `None` before the first read.
    pub via: Option<CtVia>,
    pub figures: Option<CtFigures>,
    /// Events the kernel dropped since the start.
    pub lost_total: u64,
    /// The feed's last error (not a deletion's), and when it came.
    pub feed_error: Option<(String, SystemTime)>,
    pub sort: SortKey,
    pub reverse: bool,
    pub filter: Option<Filter>,
    /// The filter being typed after `/`, and why Enter refused it.
    pub input: String,
    pub input_error: Option<FilterError>,
    pub group: Option<GroupKey>,
    pub groups: Vec<Group>,
    pub group_cursor: usize,
    pub group_offset: usize,
    /// Index into the view of the selected row, and the first row on screen.
    pub cursor: usize,
    pub offset: usize,
    /// Rows that fit on screen (set by the App from the layout).
    pub viewport: usize,
    pub ghosts: Vec<Ghost>,
    pub summary: Summary,
    pub notice: Option<Notice>,
    pub detail: Option<Detail>,
    /// The event log (`E`).
    pub log: LogScreen,
    /// Only the stale entries (`X`), and whether a scan for them is running.
    pub stale: Option<StaleView>,
    pub stale_running: bool,
    /// Table positions of the entries passing the filter, in order.
    live: Vec<u32>,
    /// `live` with the fading entries merged in: what the list shows.
    view: Vec<u32>,
    /// What `live` was computed for: the table's generation; `None` when the sort or the
    /// filter changed since.
    live_gen: Option<u64>,
    /// `view` matches `live` and `ghosts`.
    merged: bool,
    /// What `groups` was computed for.
    groups_for: Option<(u64, GroupKey)>,
    selected: Option<EntryKey>,
    /// Event batches not yet applied, with their arrival times.
    pending: Vec<(SystemTime, Vec<CtEvent>)>,
    last_flush: Option<SystemTime>,
    /// When each applied batch's changes happened: `(first generation, time)`, in order. A
    /// row's `born` and `changed` generations find their times here (timeouts count down from
    /// the last change; new rows stand out).
    times: Vec<(u64, SystemTime)>,
    times_kept: usize,
    /// Rows born up to this generation came with the first read: not new.
    baseline: u64,
    /// Entries whose state or flags just changed.
    flashes: FxHashMap<EntryKey, SystemTime>,
    summary_for: Option<(u64, SystemTime)>,
    /// Arrivals of event batches: when, and how many events.
    arrivals: VecDeque<(SystemTime, usize)>,
    started: Option<SystemTime>,
    /// Deletions asked of the feed and not yet answered.
    in_flight: usize,
}

impl Default for CtScreen {
    fn default() -> Self {
        Self::new()
    }
}

/// What makes a change worth flashing: the state and the reply/assured flags.
fn fingerprint(e: &Entry) -> (Option<State>, u32) {
    (
        e.state.clone(),
        e.status.0 & (Status::SEEN_REPLY | Status::ASSURED),
    )
}

fn later(a: SystemTime, b: SystemTime) -> bool {
    a.duration_since(b).is_ok_and(|d| d > Duration::ZERO)
}

/// `b - a`, zero when `b` is earlier.
fn since(a: SystemTime, b: SystemTime) -> Duration {
    b.duration_since(a).unwrap_or(Duration::ZERO)
}

impl CtScreen {
    pub fn new() -> Self {
        CtScreen {
            table: Table::new(),
            via: None,
            figures: None,
            lost_total: 0,
            feed_error: None,
            // Newest first: what just happened is what people come to see.
            sort: SortKey::Arrival,
            reverse: true,
            filter: None,
            input: String::new(),
            input_error: None,
            group: None,
            groups: Vec::new(),
            group_cursor: 0,
            group_offset: 0,
            cursor: 0,
            offset: 0,
            viewport: 1,
            ghosts: Vec::new(),
            summary: Summary::default(),
            notice: None,
            detail: None,
            log: LogScreen::default(),
            stale: None,
            stale_running: false,
            live: Vec::new(),
            view: Vec::new(),
            live_gen: None,
            merged: false,
            groups_for: None,
            selected: None,
            pending: Vec::new(),
            last_flush: None,
            times: Vec::new(),
            times_kept: 0,
            baseline: 0,
            flashes: FxHashMap::default(),
            summary_for: None,
            arrivals: VecDeque::new(),
            started: None,
            in_flight: 0,
        }
    }

    /// Rows in the list (fading ones included).
    pub fn len(&self) -> usize {
        self.view.len()
    }

    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    /// Entries passing the filter, fading ones not counted.
    pub fn shown(&self) -> usize {
        self.live.len()
    }

    /// The row at a view index.
    pub fn slot(&self, i: usize) -> Option<Slot<'_>> {
        if self.live_gen != Some(self.table.generation()) || !self.merged {
            return None;
        }
        let v = *self.view.get(i)?;
        if v & GHOST != 0 {
            self.ghosts.get((v & !GHOST) as usize).map(Slot::Ghost)
        } else {
            self.table.get(v).map(Slot::Live)
        }
    }

    pub fn selected_slot(&self) -> Option<Slot<'_>> {
        self.slot(self.cursor)
    }

    /// The view's order, as entry keys (tests).
    pub fn keys(&self) -> Vec<EntryKey> {
        (0..self.len())
            .filter_map(|i| self.slot(i).map(|s| s.entry().key()))
            .collect()
    }

    pub fn selected_key(&self) -> Option<EntryKey> {
        self.selected
    }

    /// When the batch that made generation `generation` arrived.
    fn time_of(&self, generation: u64) -> Option<SystemTime> {
        let i = self.times.partition_point(|(g, _)| *g <= generation);
        self.times.get(i.checked_sub(1)?).map(|(_, t)| *t)
    }

    /// Seconds left before the entry expires: the kernel's figure at its last change, counted
    /// down since.
    pub fn timeout_left(&self, row: &Row, now: SystemTime) -> u64 {
        let t = u64::from(row.entry.timeout);
        match self.time_of(row.changed) {
            Some(at) => t.saturating_sub(since(at, now).as_secs()),
            None => t,
        }
    }

    /// Whether the row appeared less than [`HIGHLIGHT`] ago (not with the first read).
    pub fn is_new(&self, row: &Row, now: SystemTime) -> bool {
        row.born > self.baseline
            && self
                .time_of(row.born)
                .is_some_and(|t| since(t, now) < HIGHLIGHT)
    }

    /// Whether the entry's state or flags changed less than [`HIGHLIGHT`] ago.
    pub fn flashing(&self, key: &EntryKey, now: SystemTime) -> bool {
        self.flashes
            .get(key)
            .is_some_and(|t| since(*t, now) < HIGHLIGHT)
    }

    /// Events per second over the last few seconds.
    pub fn events_per_sec(&self, now: SystemTime) -> f64 {
        let Some(start) = self.started else {
            return 0.0;
        };
        let n: usize = self
            .arrivals
            .iter()
            .filter(|(t, _)| since(*t, now) <= RATE_WINDOW)
            .map(|(_, n)| n)
            .sum();
        let span = since(start, now).min(RATE_WINDOW).as_secs_f64().max(1.0);
        n as f64 / span
    }

    /// The table's fill: entries and the maximum, from the kernel's figures where known.
    pub fn fill(&self) -> (u64, Option<u64>) {
        match &self.figures {
            Some(f) => (u64::from(f.count), f.max.map(u64::from)),
            None => (self.table.len() as u64, None),
        }
    }

    /// Whether entries carry counters: the sysctl where known, else the entries themselves.
    pub fn accounting(&self) -> Option<bool> {
        self.figures.as_ref().and_then(|f| f.acct)
    }

    /// When something is due: events to apply, fading rows to drop.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        let after_flush = |t: SystemTime| match self.last_flush {
            Some(l) => t.max(l + FLUSH_EVERY),
            None => t,
        };
        let flush = self.pending.first().map(|(t, _)| after_flush(*t));
        let fade = self.ghosts.first().map(|g| after_flush(g.died + FADE));
        let notice = self.notice.as_ref().map(|n| n.at + NOTICE_FOR);
        [flush, fade, notice].into_iter().flatten().min()
    }

    fn flush_due(&self, now: SystemTime) -> bool {
        self.last_flush
            .is_none_or(|l| since(l, now) >= FLUSH_EVERY || later(l, now))
    }

    /// Take what the feed sent. Returns whether the screen changed.
    pub fn on_feed(&mut self, feed: CtFeed, at: SystemTime, visible: bool) -> bool {
        match feed {
            CtFeed::Table { entries, via, .. } => {
                // The events before the dump are in the log already: applied first, so that
                // comparing the dump with the table finds only what they did not say (entries
                // that changed without an event, or every change where there are none).
                for (_, events) in std::mem::take(&mut self.pending) {
                    for ev in events {
                        self.table.apply(ev);
                    }
                }
                let before = self.table.generation();
                if self.via.is_none() {
                    // The first read is where the log starts: nothing happened before it.
                    self.table.replace_all(entries);
                } else {
                    let log = &mut self.log;
                    self.table.replace_all_noting(entries, &mut |kind, e| {
                        log.record(at, kind, Seen::Reread, e.clone());
                    });
                }
                let rows = self.viewport;
                self.log.settle(rows);
                self.times.push((before + 1, at));
                if self.via.is_none() {
                    self.baseline = self.table.generation();
                    self.started = Some(at);
                }
                self.via = Some(via);
                self.ghosts.clear();
                self.flashes.clear();
                self.last_flush = Some(at);
                self.summary_for = None;
                self.changed(at, visible);
                true
            }
            CtFeed::Events(events) => {
                for ev in &events {
                    self.log.record(at, ev.kind, Seen::Event, ev.entry.clone());
                }
                let rows = self.viewport;
                self.log.settle(rows);
                self.arrivals.push_back((at, events.len()));
                while self
                    .arrivals
                    .front()
                    .is_some_and(|(t, _)| since(*t, at) > RATE_WINDOW)
                {
                    self.arrivals.pop_front();
                }
                // The open event log shows each batch as it comes.
                let logged = self.log.open && !events.is_empty();
                self.pending.push((at, events));
                let flushed = self.flush_due(at) && self.flush(at, visible);
                flushed || logged
            }
            CtFeed::Lost { total, .. } => {
                self.lost_total = total;
                true
            }
            CtFeed::Figures(f) => {
                let changed = self.figures.as_ref() != Some(&f);
                self.figures = Some(f);
                changed
            }
            CtFeed::Deleted { count } => {
                self.in_flight = self.in_flight.saturating_sub(1);
                let text = match count {
                    1 => "deleted 1 entry".to_string(),
                    n => format!("deleted {n} entries"),
                };
                self.notice = Some(Notice {
                    text,
                    error: false,
                    at,
                });
                // Show the deleted entries going now, not after the next batch.
                self.flush(at, visible);
                true
            }
            CtFeed::Error(e) => {
                if self.in_flight > 0 {
                    self.in_flight -= 1;
                    self.notice = Some(Notice {
                        text: format!("not deleted: {e}"),
                        error: true,
                        at,
                    });
                } else {
                    self.feed_error = Some((e, at));
                }
                true
            }
        }
    }

    /// The clock moved: apply what is due, let faded rows go. Returns whether the screen
    /// changed.
    pub fn on_tick(&mut self, now: SystemTime, visible: bool) -> bool {
        let mut changed = false;
        if !self.pending.is_empty() && self.flush_due(now) {
            changed |= self.flush(now, visible);
        }
        if self
            .ghosts
            .first()
            .is_some_and(|g| since(g.died, now) >= FADE)
            && self.flush_due(now)
        {
            self.ghosts.retain(|g| since(g.died, now) < FADE);
            self.merged = false;
            self.last_flush = Some(now);
            self.changed(now, visible);
            changed = true;
        }
        self.flashes.retain(|_, t| since(*t, now) < HIGHLIGHT);
        if self
            .notice
            .as_ref()
            .is_some_and(|n| since(n.at, now) >= NOTICE_FOR)
        {
            self.notice = None;
            changed = true;
        }
        if visible && self.refresh_summary(now) {
            changed = true;
        }
        changed
    }

    /// Apply the pending events, then recompute what is shown.
    fn flush(&mut self, now: SystemTime, visible: bool) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        let before = self.table.generation();
        let ghosts_before = self.ghosts.len();
        for (at, events) in std::mem::take(&mut self.pending) {
            let first = self.table.generation() + 1;
            for ev in events {
                self.apply(ev, at);
            }
            if self.table.generation() >= first {
                self.times.push((first, at));
            }
        }
        self.last_flush = Some(now);
        // Faded entries go, and one that came back under the same key is no longer fading.
        let with_new = self.ghosts.len();
        let table = &self.table;
        self.ghosts
            .retain(|g| since(g.died, now) < FADE && table.position(&g.row.entry.key()).is_none());
        let ghosts_changed = with_new != ghosts_before || self.ghosts.len() != with_new;
        if self.table.generation() == before && !ghosts_changed {
            return false;
        }
        if self.ghosts.len() > GHOST_CAP {
            let extra = self.ghosts.len() - GHOST_CAP;
            self.ghosts.drain(..extra);
        }
        self.merged = false;
        self.prune_times(now);
        self.changed(now, visible);
        true
    }

    fn apply(&mut self, ev: CtEvent, at: SystemTime) {
        let e = &ev.entry;
        let old = self
            .table
            .position_of_id(e.id)
            .or_else(|| self.table.position(&e.key()));
        match ev.kind {
            CtEventKind::Destroy => {
                let Some(row) = old.and_then(|p| self.table.get(p)).cloned() else {
                    return;
                };
                let stop = e.stop_ns();
                if self.table.apply(ev) == Applied::Removed {
                    let mut row = row;
                    if let Some(stop) = stop {
                        row.entry.with_extra(|x| x.stop_ns = Some(stop));
                    }
                    self.ghosts.push(Ghost { row, died: at });
                }
            }
            CtEventKind::New | CtEventKind::Update => {
                let was = old
                    .and_then(|p| self.table.get(p))
                    .map(|r| fingerprint(&r.entry));
                let now = fingerprint(e);
                let key = e.key();
                let applied = self.table.apply(ev);
                if applied == Applied::Updated
                    && was.is_some_and(|w| w != now)
                    && self.flashes.len() < FLASH_CAP
                {
                    self.flashes.insert(key, at);
                }
            }
        }
    }

    /// Forget the times no row needs any more (each row needs the time of its last change).
    fn prune_times(&mut self, now: SystemTime) {
        if self.times.len() < self.times_kept * 2 + 64 {
            return;
        }
        let mut keep = vec![false; self.times.len()];
        for r in self.table.rows() {
            let i = self.times.partition_point(|(g, _)| *g <= r.changed);
            if let Some(k) = i.checked_sub(1).and_then(|i| keep.get_mut(i)) {
                *k = true;
            }
        }
        let mut i = 0;
        self.times.retain(|(_, t)| {
            let k = keep[i] || since(*t, now) < HIGHLIGHT * 2;
            i += 1;
            k
        });
        self.times_kept = self.times.len();
    }

    /// Something the view depends on changed: recompute it now if it is on screen, else when
    /// it comes back ([`CtScreen::show`]).
    fn changed(&mut self, now: SystemTime, visible: bool) {
        if visible {
            self.show(now);
        }
    }

    /// Bring the view up to date (the screen is being shown).
    pub fn show(&mut self, now: SystemTime) {
        let keep_line = self.cursor.saturating_sub(self.offset);
        let at_top = self.offset == 0;
        // Newest first with the cursor on the top row: follow the newest, as `tail -f` does.
        let follow = self.cursor == 0 && at_top && self.newest_first();
        let generation = self.table.generation();
        if self.live_gen != Some(generation) {
            self.live = self
                .table
                .sorted(self.sort, self.reverse, self.filter.as_ref());
            if let Some(s) = &self.stale {
                let table = &self.table;
                self.live.retain(|&p| {
                    table
                        .get(p)
                        .is_some_and(|r| s.found.stale.contains_key(&r.entry.key()))
                });
            }
            self.live_gen = Some(generation);
            self.merged = false;
        }
        if !self.merged {
            self.merge_ghosts();
            self.merged = true;
        }
        if let Some(g) = self.group
            && self.groups_for != Some((generation, g))
        {
            self.groups = self.table.group_by(g, self.filter.as_ref());
            self.groups_for = Some((generation, g));
            self.group_cursor = self.group_cursor.min(self.groups.len().saturating_sub(1));
        }
        self.refresh_summary(now);
        self.refresh_detail(now);
        if follow {
            self.selected = self.slot(0).map(|s| s.entry().key());
        }
        self.reselect(keep_line, at_top);
    }

    /// Whether the newest entries come first (arrival order reversed, the default, or by age).
    pub fn newest_first(&self) -> bool {
        matches!(
            (self.sort, self.reverse),
            (SortKey::Arrival, true) | (SortKey::Age, false)
        )
    }

    fn refresh_summary(&mut self, now: SystemTime) -> bool {
        let generation = self.table.generation();
        let due = match self.summary_for {
            None => true,
            Some((g, t)) => g != generation && since(t, now) >= SUMMARY_EVERY,
        };
        if due {
            self.summary = self.table.summary();
            self.summary_for = Some((generation, now));
        }
        due
    }

    fn refresh_detail(&mut self, now: SystemTime) {
        let Some(d) = &self.detail else {
            return;
        };
        let key = d.key;
        let live = self
            .table
            .position(&key)
            .and_then(|p| self.table.get(p))
            .map(|r| r.entry.clone());
        let ghost = || {
            self.ghosts
                .iter()
                .find(|g| g.row.entry.key() == key)
                .map(|g| (g.row.entry.clone(), g.died))
        };
        let (entry, gone) = match (live, ghost()) {
            (Some(e), _) => (Some(e), None),
            (None, Some((e, died))) => (Some(e), Some(died)),
            (None, None) => (None, Some(now)),
        };
        if let Some(d) = &mut self.detail {
            if let Some(e) = entry {
                d.entry = e;
            }
            d.gone = match (d.gone, gone) {
                (Some(was), Some(_)) => Some(was),
                (_, g) => g,
            };
        }
    }

    /// Merge the fading entries that pass the filter into the sorted live positions.
    fn merge_ghosts(&mut self) {
        let mut gi: Vec<usize> = (0..self.ghosts.len())
            .filter(|&i| {
                let e = &self.ghosts[i].row.entry;
                // In the stale view, only the stale ones fade there.
                self.filter.as_ref().is_none_or(|f| f.matches(e))
                    && self
                        .stale
                        .as_ref()
                        .is_none_or(|s| s.found.stale.contains_key(&e.key()))
            })
            .collect();
        if gi.is_empty() {
            self.view.clone_from(&self.live);
            return;
        }
        let (key, rev) = (self.sort, self.reverse);
        let ghosts = &self.ghosts;
        gi.sort_by(|&a, &b| table::compare_sorted(&ghosts[a].row, &ghosts[b].row, key, rev));
        let mut out = Vec::with_capacity(self.live.len() + gi.len());
        let mut from = 0;
        for g in gi {
            let ghost = &ghosts[g].row;
            let rest = &self.live[from..];
            let at = rest.partition_point(|&p| {
                self.table
                    .get(p)
                    .is_some_and(|r| table::compare_sorted(r, ghost, key, rev).is_lt())
            });
            out.extend_from_slice(&rest[..at]);
            out.push(GHOST | g as u32);
            from += at;
        }
        out.extend_from_slice(&self.live[from..]);
        self.view = out;
    }

    /// Where the view holds this entry (live or fading).
    fn index_of(&self, key: &EntryKey) -> Option<usize> {
        let want = match self.table.position(key) {
            Some(p) => p,
            None => {
                let g = self.ghosts.iter().position(|g| g.row.entry.key() == *key)?;
                GHOST | g as u32
            }
        };
        self.view.iter().position(|&v| v == want)
    }

    /// After the rows moved: the cursor goes where the selected entry went, and the screen
    /// follows it, keeping it on the same line (or keeping the top in view, when it was).
    fn reselect(&mut self, line: usize, at_top: bool) {
        let n = self.view.len();
        match self.selected.as_ref().and_then(|k| self.index_of(k)) {
            Some(i) => self.cursor = i,
            None => self.cursor = self.cursor.min(n.saturating_sub(1)),
        }
        self.selected = self.slot(self.cursor).map(|s| s.entry().key());
        self.offset = if at_top {
            0
        } else {
            self.cursor.saturating_sub(line)
        };
        self.clamp();
    }

    fn clamp(&mut self) {
        let rows = self.viewport;
        keep_in_view(&mut self.cursor, &mut self.offset, self.view.len(), rows);
        let n = self.groups.len();
        keep_in_view(&mut self.group_cursor, &mut self.group_offset, n, rows);
    }

    /// The screen's size changed.
    pub fn resized(&mut self, viewport: usize) {
        self.viewport = viewport;
        self.clamp();
        let log = &mut self.log;
        keep_in_view(&mut log.cursor, &mut log.offset, log.view.len(), viewport);
    }

    /// Move the cursor (of the list, or of the groups in a group view).
    pub fn move_cursor(&mut self, delta: isize) {
        let step = |c: usize, n: usize| {
            if n == 0 {
                0
            } else {
                c.saturating_add_signed(delta).min(n - 1)
            }
        };
        if self.group.is_some() {
            self.group_cursor = step(self.group_cursor, self.groups.len());
        } else {
            self.cursor = step(self.cursor, self.view.len());
            self.selected = self.slot(self.cursor).map(|s| s.entry().key());
        }
        self.clamp();
    }

    /// Sort by a column, in one direction.
    pub fn sort_by(&mut self, key: SortKey, reverse: bool, now: SystemTime) {
        self.sort = key;
        self.reverse = reverse;
        self.live_gen = None;
        self.show(now);
    }

    /// Sort and filter at once, recomputing the view once (benchmarks, tests).
    pub fn set_view(
        &mut self,
        key: SortKey,
        reverse: bool,
        filter: Option<Filter>,
        now: SystemTime,
    ) {
        self.sort = key;
        self.reverse = reverse;
        self.filter = filter.filter(|f| !f.is_empty());
        self.live_gen = None;
        self.groups_for = None;
        self.show(now);
    }

    /// `s` / `S`: sort by the column `step` columns on.
    pub fn sort_step(&mut self, step: isize, now: SystemTime) {
        let n = SORT_ORDER.len() as isize;
        let i = SORT_ORDER.iter().position(|k| *k == self.sort).unwrap_or(0) as isize;
        let key = SORT_ORDER[(i + step).rem_euclid(n) as usize];
        // Counters read best biggest first; everything else from the smallest.
        let reverse = matches!(key, SortKey::Packets | SortKey::Bytes | SortKey::Arrival);
        self.sort_by(key, reverse, now);
    }

    /// Apply a filter expression (empty: none) to what is shown: the event log when it is
    /// open, else the table. A bad one leaves the current filter in place.
    pub fn set_filter(&mut self, expr: &str, now: SystemTime) -> Result<(), FilterError> {
        let f = Filter::parse(expr)?;
        let f = (!f.is_empty()).then_some(f);
        if self.log.open {
            let rows = self.viewport;
            self.log.set_filter(f, rows);
            return Ok(());
        }
        self.filter = f;
        self.live_gen = None;
        self.groups_for = None;
        // Where the selected entry no longer shows, start from the top.
        self.cursor = 0;
        self.offset = 0;
        self.group_cursor = 0;
        self.group_offset = 0;
        self.show(now);
        Ok(())
    }

    pub fn clear_filter(&mut self, now: SystemTime) -> bool {
        self.input.clear();
        self.input_error = None;
        if self.active_filter().is_none() {
            return false;
        }
        let _ = self.set_filter("", now);
        true
    }

    /// The filter of what is shown: the event log's when it is open, else the table's.
    pub fn active_filter(&self) -> Option<&Filter> {
        if self.log.open {
            self.log.filter.as_ref()
        } else {
            self.filter.as_ref()
        }
    }

    /// `E`: show the event log (`true`) or the table.
    pub fn show_log(&mut self, open: bool, now: SystemTime) {
        self.log.open = open;
        if open {
            let rows = self.viewport;
            self.log.settle(rows);
        } else {
            self.show(now);
        }
    }

    /// The entry a key acts on: the selected event's in the event log, else the selected row's.
    pub fn selected_entry(&self) -> Option<&Entry> {
        if self.log.open {
            self.log.selected().map(|l| &l.entry)
        } else {
            self.selected_slot().map(Slot::entry)
        }
    }

    /// `y`: the selected entry as `conntrack -L` prints it, or the selected event as a line:
    /// its time, `[NEW]` as `conntrack -E` tags it, the entry; `None` when nothing is selected.
    pub fn yank_text(&self) -> Option<String> {
        use crate::conntrack::format::{Layout, line};
        if !self.log.open {
            return self.selected_slot().map(|s| line(s.entry(), Layout::Plain));
        }
        let l = self.log.selected()?;
        let how = match l.seen {
            Seen::Event => "",
            Seen::Reread => " (found by re-reading the table)",
        };
        Some(format!(
            "{} [{}] {}{how}",
            clock_ms(l.at),
            l.tag(),
            line(&l.entry, Layout::Plain)
        ))
    }

    /// `W`: what is shown, as JSON lines, with a file-name stem and what it is (for the
    /// footer): the entries the filter shows in the list's order (not the fading ones: they
    /// are gone), each the object `nfscope conntrack --format json` prints; or the events the event
    /// log's filter shows, oldest first.
    pub fn jsonl(&mut self, now: SystemTime) -> (&'static str, String, String) {
        let filtered = |f: Option<&Filter>| {
            f.map_or_else(String::new, |f| format!(" matching '{}'", f.source()))
        };
        if self.log.open {
            let mut text = String::new();
            let mut n = 0;
            for l in self.log.shown() {
                text.push_str(&l.json());
                text.push('\n');
                n += 1;
            }
            let what = format!(
                "{n} conntrack event{}{} as JSON lines",
                if n == 1 { "" } else { "s" },
                filtered(self.log.filter.as_ref())
            );
            return ("conntrack-events", text, what);
        }
        // The list's positions are those of the table as it is now.
        self.show(now);
        let mut text = String::new();
        for &p in &self.live {
            if let Some(r) = self.table.get(p) {
                text.push_str(&serde_json::to_string(&r.entry).unwrap_or_default());
                text.push('\n');
            }
        }
        let n = self.live.len();
        let what = format!(
            "{n} conntrack entr{}{} as JSON lines",
            if n == 1 { "y" } else { "ies" },
            filtered(self.filter.as_ref())
        );
        ("conntrack", text, what)
    }

    /// `v`: the next group-by view.
    pub fn group_step(&mut self, now: SystemTime) {
        let i = GROUP_ORDER
            .iter()
            .position(|g| *g == self.group)
            .unwrap_or(0);
        self.group = GROUP_ORDER[(i + 1) % GROUP_ORDER.len()];
        self.group_cursor = 0;
        self.group_offset = 0;
        self.show(now);
    }

    /// Enter on a group: filter to its entries and go back to the list.
    pub fn open_group(&mut self, now: SystemTime) {
        let (Some(g), Some(group)) = (self.group, self.groups.get(self.group_cursor)) else {
            return;
        };
        let term = group_filter(g, &group.label);
        let expr = match &self.filter {
            Some(f) => format!("{} {term}", f.source()),
            None => term,
        };
        self.group = None;
        if let Err(e) = self.set_filter(&expr, now) {
            // A label the language cannot say (it should not happen): say so, keep going.
            self.notice = Some(Notice {
                text: format!("cannot filter to that group: {e}"),
                error: true,
                at: now,
            });
            self.show(now);
        }
        self.input = expr;
    }

    /// Leave the group view.
    pub fn close_group(&mut self, now: SystemTime) -> bool {
        if self.group.is_none() {
            return false;
        }
        self.group = None;
        self.show(now);
        true
    }

    /// `X`: show only the stale entries the scan found (`Some`), or every entry again.
    pub fn set_stale(&mut self, found: Option<crate::trace::stale::Found>, now: SystemTime) {
        self.stale = found.map(|found| StaleView { found, at: now });
        self.live_gen = None;
        self.groups_for = None;
        self.cursor = 0;
        self.offset = 0;
        self.show(now);
    }

    /// The stale entry's finding (the rule that would now drop it), in the stale view.
    pub fn stale_finding(&self, key: &EntryKey) -> Option<&crate::trace::stale::Finding> {
        self.stale.as_ref()?.found.stale.get(key).map(|f| &**f)
    }

    /// `stale: 3 of 120 (would now be refused)`, in the stale view: the stale entries the list
    /// shows, of the entries in the table.
    pub fn stale_label(&self) -> Option<String> {
        self.stale.as_ref()?;
        Some(format!(
            "stale: {} of {} (would now be refused)",
            self.live.len(),
            self.table.len()
        ))
    }

    /// `d`: what to ask before deleting the selected entry; `None` after saying why there is
    /// nothing to delete.
    pub fn ask_delete(&mut self, now: SystemTime) -> Option<Confirm> {
        let why = match self.selected_slot() {
            Some(Slot::Live(r)) if self.deletable() => {
                return Some(Confirm::One(Box::new(r.entry.clone())));
            }
            _ if !self.deletable() => self.not_deletable(),
            Some(Slot::Ghost(_)) => "that entry is already gone".to_string(),
            _ => "no entry is selected".to_string(),
        };
        self.say(why, true, now);
        None
    }

    /// `D`: what to ask before deleting every entry the filter shows; `None` after saying why
    /// there is nothing to delete.
    pub fn ask_delete_matching(&mut self, now: SystemTime) -> Option<Confirm> {
        if !self.deletable() {
            let why = self.not_deletable();
            self.say(why, true, now);
            return None;
        }
        if self.stale.is_some() {
            self.show(now);
            let keys: Vec<EntryKey> = self
                .live
                .iter()
                .filter_map(|&p| self.table.get(p).map(|r| r.entry.key()))
                .collect();
            if keys.is_empty() {
                self.say("no stale entry to delete".into(), true, now);
                return None;
            }
            return Some(Confirm::Stale { keys });
        }
        let count = self.shown();
        if count == 0 {
            self.say("no entry to delete".into(), true, now);
            return None;
        }
        Some(Confirm::Matching {
            filter: self.filter.clone(),
            count,
        })
    }

    fn deletable(&self) -> bool {
        self.via.is_some()
    }

    fn not_deletable(&self) -> String {
        match &self.feed_error {
            Some((e, _)) => format!("no conntrack table to delete from: {e}"),
            None => "no conntrack table to delete from yet".to_string(),
        }
    }

    /// The user said yes to `question`: the request to send.
    pub fn confirmed(&mut self, question: Confirm, now: SystemTime) -> Cmd {
        let cmd = match question {
            Confirm::One(e) => Cmd::CtDelete(e),
            Confirm::Matching { filter, .. } => Cmd::CtDeleteMatching(filter),
            Confirm::Stale { keys } => Cmd::CtDeleteKeys(keys),
        };
        self.in_flight += 1;
        self.say("deleting…".into(), false, now);
        cmd
    }

    pub fn say(&mut self, text: String, error: bool, at: SystemTime) {
        self.notice = Some(Notice { text, error, at });
    }

    /// Open the detail popup on the entry of the event selected in the event log: the entry
    /// as it is now while it lives, as the event carried it once it is gone (a destroy event:
    /// gone since then).
    pub fn open_event_detail(&mut self) -> bool {
        let Some(l) = self.log.selected() else {
            return false;
        };
        let gone = (l.kind == crate::conntrack::CtEventKind::Destroy).then_some(l.at);
        self.detail = Some(Detail {
            key: l.entry.key(),
            entry: l.entry.clone(),
            gone,
            scroll: crate::tui::scroll::Scroll::TOP,
        });
        true
    }

    /// Open the detail popup on the selected entry.
    pub fn open_detail(&mut self) -> bool {
        let Some(slot) = self.selected_slot() else {
            return false;
        };
        let gone = match slot {
            Slot::Ghost(g) => Some(g.died),
            Slot::Live(_) => None,
        };
        self.detail = Some(Detail {
            key: slot.entry().key(),
            entry: slot.entry().clone(),
            gone,
            scroll: crate::tui::scroll::Scroll::TOP,
        });
        true
    }
}

/// The local time of day with milliseconds, as the event log shows it: `14:02:31.123`.
pub fn clock_ms(t: SystemTime) -> String {
    let ms = crate::time::unix_ms(t);
    let hms = crate::time::local_time(ms);
    format!("{}.{:03}", hms.get(..8).unwrap_or(&hms), ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::synth;

    fn t(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(ms)
    }

    fn loaded(n: usize) -> (CtScreen, Vec<Entry>) {
        let es = synth::entries(n);
        let mut ct = CtScreen::new();
        ct.viewport = 20;
        ct.on_feed(
            CtFeed::Table {
                entries: es.clone(),
                via: CtVia::Demo,
                resync: false,
            },
            t(0),
            true,
        );
        (ct, es)
    }

    #[test]
    fn events_wait_for_the_next_flush_and_the_view_stays_consistent() {
        let (mut ct, es) = loaded(100);
        assert_eq!(ct.len(), 100);
        // Within FLUSH_EVERY of the last flush: held back.
        let changed = ct.on_feed(
            CtFeed::Events(vec![CtEvent::destroy(es[0].clone())]),
            t(100),
            true,
        );
        assert!(!changed);
        assert_eq!(ct.table.len(), 100);
        assert_eq!(ct.next_deadline(), Some(t(300)));
        assert!(ct.on_tick(t(300), true));
        assert_eq!(ct.table.len(), 99);
        assert_eq!(ct.len(), 100, "the destroyed entry fades");
        assert_eq!(ct.ghosts.len(), 1);
        assert!(ct.on_tick(t(2400), true));
        assert_eq!(ct.len(), 99);
        assert!(ct.keys().iter().all(|k| ct.table.position(k).is_some()));
    }

    #[test]
    fn destroyed_entries_fade_under_a_steady_stream_of_events() {
        let (mut ct, es) = loaded(100);
        ct.on_feed(
            CtFeed::Events(vec![CtEvent::destroy(es[0].clone())]),
            t(400),
            true,
        );
        assert_eq!(ct.ghosts.len(), 1);
        // Batches every 150 ms, a tick after each, as the loop does.
        for i in 0..30u64 {
            let now = t(550 + i * 150);
            let mut e = es[1].clone();
            e.timeout = i as u32;
            ct.on_feed(CtFeed::Events(vec![CtEvent::update(e)]), now, true);
            ct.on_tick(now, true);
        }
        assert!(ct.ghosts.is_empty(), "faded after {FADE:?}");
        assert_eq!(ct.len(), 99);
    }

    #[test]
    fn timeouts_count_down_from_the_last_change() {
        let (mut ct, es) = loaded(10);
        let row = |ct: &CtScreen| {
            let p = ct.table.position(&es[3].key()).unwrap();
            ct.table.get(p).unwrap().clone()
        };
        let t0 = u64::from(es[3].timeout);
        assert_eq!(ct.timeout_left(&row(&ct), t(5_500)), t0 - 5);
        let mut up = es[3].clone();
        up.timeout = 100;
        ct.on_feed(CtFeed::Events(vec![CtEvent::update(up)]), t(10_000), true);
        assert_eq!(ct.timeout_left(&row(&ct), t(12_000)), 98);
        assert!(ct.flashes.is_empty(), "a timeout alone does not flash");
    }

    #[test]
    fn the_time_log_stays_small() {
        let (mut ct, es) = loaded(50);
        for i in 0..2_000u64 {
            let mut e = es[(i % 50) as usize].clone();
            e.timeout = i as u32;
            ct.on_feed(CtFeed::Events(vec![CtEvent::update(e)]), t(i * 400), false);
        }
        assert!(ct.times.len() < 300, "{}", ct.times.len());
        ct.show(t(800_000));
        let p = ct.table.position(&es[49].key()).unwrap();
        let row = ct.table.get(p).unwrap();
        assert_eq!(
            ct.timeout_left(row, t(1_999 * 400 + 3_000)),
            u64::from(row.entry.timeout) - 3
        );
    }
}
