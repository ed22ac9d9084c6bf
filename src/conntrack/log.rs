//! The conntrack event log: the last events (new, update, destroy), each with the time it
//! arrived and how it was learnt, in a ring of bounded length: when it is full the oldest go,
//! and how many went is counted. Pure: the screen puts events in as the feed delivers them.
//!
//! Events are numbered in arrival order (`seq`), so that a view can hold numbers that stay
//! valid while the oldest events leave the front.

use super::{CtEventKind, Entry};
use serde::Serialize;
use std::collections::VecDeque;
use std::time::SystemTime;

/// How many events the log keeps unless told otherwise (2.7 MB when full: 272 bytes an
/// event, the entry inline).
pub const DEFAULT_CAP: usize = 10_000;

/// How an event was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Seen {
    /// The kernel announced it (ctnetlink's event groups), or nfscope did what it says (a
    /// deletion of an entry the kernel would not announce).
    Event,
    /// Found by comparing two reads of the whole table: where there are no events (the table
    /// is read from /proc), and for entries that change without one. A change between two
    /// reads that is undone before the second is not seen.
    Reread,
}

/// One event of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// Its number, in arrival order.
    pub seq: u64,
    /// When nfscope received it (events come in batches of at most 150 ms), or read the table
    /// that showed it.
    pub at: SystemTime,
    pub kind: CtEventKind,
    pub seen: Seen,
    /// The entry as the event carried it (a destroy: as it was last known).
    pub entry: Entry,
}

/// One event as a line of JSON: `--watch --format json`'s object with the time and how it was
/// learnt in front.
#[derive(Serialize)]
struct LoggedJson<'a> {
    time: String,
    event: CtEventKind,
    seen: Seen,
    entry: &'a Entry,
}

impl Logged {
    /// `{"time":"2026-12-04T19:57:25.123Z","event":"new","seen":"event","entry":{...}}`
    pub fn json(&self) -> String {
        let j = LoggedJson {
            time: crate::time::utc_iso(self.at),
            event: self.kind,
            seen: self.seen,
            entry: &self.entry,
        };
        // An entry always serializes (no map with non-string keys, no failing Serialize).
        serde_json::to_string(&j).unwrap_or_default()
    }

    /// The event's tag as conntrack -E prints it: `NEW`, `UPDATE`, `DESTROY`.
    pub fn tag(&self) -> &'static str {
        kind_tag(self.kind)
    }
}

/// `NEW`, `UPDATE`, `DESTROY`.
pub fn kind_tag(kind: CtEventKind) -> &'static str {
    match kind {
        CtEventKind::New => "NEW",
        CtEventKind::Update => "UPDATE",
        CtEventKind::Destroy => "DESTROY",
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct EventLog {
    events: VecDeque<Logged>,
    cap: usize,
    /// The number the next event gets.
    next: u64,
    /// Events that left the front since the start.
    dropped: u64,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog::new(DEFAULT_CAP)
    }
}

impl EventLog {
    /// A log keeping at most `cap` events (at least one).
    pub fn new(cap: usize) -> EventLog {
        EventLog {
            events: VecDeque::new(),
            cap: cap.max(1),
            next: 0,
            dropped: 0,
        }
    }

    /// Add an event; the oldest goes when the log is full. Returns its number.
    pub fn push(&mut self, at: SystemTime, kind: CtEventKind, seen: Seen, entry: Entry) -> u64 {
        if self.events.len() == self.cap {
            self.events.pop_front();
            self.dropped += 1;
        } else if self.events.len() == self.events.capacity() {
            // Grow by doubling, but never past the cap: a full log holds `cap` slots, not the
            // next power of two.
            let want = (self.events.len() * 2).max(64).min(self.cap);
            self.events.reserve_exact(want - self.events.len());
        }
        let seq = self.next;
        self.next += 1;
        self.events.push_back(Logged {
            seq,
            at,
            kind,
            seen,
            entry,
        });
        seq
    }

    /// Events kept.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The most kept.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Events that left the front (the log was full) since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The number of the oldest event kept (of the next one, when empty).
    pub fn first_seq(&self) -> u64 {
        self.next - self.events.len() as u64
    }

    /// The event with this number, while it is kept.
    pub fn get(&self, seq: u64) -> Option<&Logged> {
        let i = seq.checked_sub(self.first_seq())?;
        self.events.get(usize::try_from(i).ok()?)
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Logged> + ExactSizeIterator {
        self.events.iter()
    }

    /// Roughly how many bytes the log holds on the heap (its ring and the entries' own
    /// strings), for the memory figure.
    pub fn heap_bytes(&self) -> usize {
        let strings: usize = self.events.iter().map(|l| l.entry.heap_bytes()).sum();
        self.events.capacity() * std::mem::size_of::<Logged>() + strings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::synth;
    use std::time::Duration;

    fn t(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(ms)
    }

    #[test]
    fn the_oldest_go_and_are_counted() {
        let es = synth::entries(5);
        let mut log = EventLog::new(3);
        for (i, e) in es.into_iter().enumerate() {
            log.push(t(i as u64), CtEventKind::New, Seen::Event, e);
        }
        assert_eq!(log.len(), 3);
        assert_eq!(log.dropped(), 2);
        assert_eq!(log.first_seq(), 2);
        assert!(log.get(1).is_none());
        assert_eq!(log.get(4).map(|l| l.at), Some(t(4)));
        assert!(log.get(5).is_none());
        let seqs: Vec<u64> = log.iter().map(|l| l.seq).collect();
        assert_eq!(seqs, [2, 3, 4]);
    }

    #[test]
    fn json_lines_carry_the_time_and_how_it_was_seen() {
        let mut log = EventLog::new(2);
        let e = synth::entries(1).remove(0);
        log.push(t(123), CtEventKind::Destroy, Seen::Reread, e.clone());
        let line = log.iter().next().map(Logged::json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "destroy");
        assert_eq!(v["seen"], "reread");
        assert_eq!(v["time"], "2027-01-15T08:00:00.123Z");
        assert_eq!(v["entry"], serde_json::to_value(&e).unwrap());
        assert!(!line.contains('\n'));
    }

    #[test]
    fn ten_thousand_events_stay_small() {
        let es = synth::entries(1000);
        let mut log = EventLog::default();
        for i in 0..30_000u64 {
            let e = es[(i % 1000) as usize].clone();
            log.push(t(i), CtEventKind::Update, Seen::Event, e);
        }
        assert_eq!(log.len(), DEFAULT_CAP);
        assert_eq!(log.dropped(), 20_000);
        let bytes = log.heap_bytes();
        assert!(bytes < 3 << 20, "{bytes} bytes for {} events", log.len());
    }
}
