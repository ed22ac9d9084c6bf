//! The live conntrack feed behind the Conntrack screen: one thread that reads the whole table
//! once, then follows the kernel's events and hands them over in batches, resynchronising with
//! a fresh dump whenever the kernel reports lost events, and every ten intervals or so while
//! some entries may change without an event (those older than the feed's subscription: see
//! [`Silence`]). Where netlink is refused it polls `/proc/net/nf_conntrack` instead; in the demo
//! it runs the demo world's table.
//!
//! The thread also answers requests (delete one entry, delete every entry matching a filter,
//! read the table again) sent through the [`CtHandle`] that [`spawn`] returns.

use super::conntrack_netlink::{self as ctnl, CtError, CtMessage, SubscribeOptions, Subscription};
use super::conntrack_proc;
use super::ctdemo::CtDemo;
use crate::conntrack::decode::CpuStats;
use crate::conntrack::filter::Filter;
use crate::conntrack::{CtEvent, CtEventKind, Entry};
use rustc_hash::FxHashSet;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

/// Events are handed over at most this often: a burst of 100,000 events is a handful of
/// messages, and the screen redraws at most a few times a second because of them.
pub const BATCH: Duration = Duration::from_millis(150);
/// The table's size in the demo world (a small gateway's `nf_conntrack_max`).
pub const DEMO_MAX: u32 = 4096;

/// Where the conntrack table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtOrigin {
    /// Netlink, or /proc where netlink is refused.
    Auto,
    Netlink,
    Proc,
    Demo,
    /// No conntrack (rule sets read from files): the screen says why.
    Off,
}

/// How the feed read the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtVia {
    Netlink,
    Proc,
    Demo,
}

impl CtVia {
    pub fn label(self) -> &'static str {
        match self {
            CtVia::Netlink => "netlink",
            CtVia::Proc => "/proc/net/nf_conntrack",
            CtVia::Demo => "demo",
        }
    }
}

/// The table's fill and the kernel's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CtFigures {
    /// Entries in the table (`nf_conntrack_count`).
    pub count: u32,
    /// `nf_conntrack_max`, where known.
    pub max: Option<u32>,
    /// The per-CPU statistics added up (netlink only).
    pub cpu: Option<CpuStats>,
    /// `net.netfilter.nf_conntrack_acct`: whether packets and bytes are counted.
    pub acct: Option<bool>,
    /// `net.netfilter.nf_conntrack_timestamp`: whether start times are kept.
    pub timestamps: Option<bool>,
}

/// What the feed sends.
#[derive(Debug)]
pub enum CtFeed {
    /// The whole table: the first read, each /proc poll, and each resync (`resync`: after lost
    /// events, a `Reload`, or to catch up with entries that change without events), to be put in
    /// place of what the screen has.
    Table {
        entries: Vec<Entry>,
        via: CtVia,
        resync: bool,
    },
    /// Events since the last batch, in the order the kernel sent them.
    Events(Vec<CtEvent>),
    /// The kernel dropped events (its buffer for us overflowed): `lost` now, `total` since the
    /// start. A `Table` with `resync` follows.
    Lost { lost: u64, total: u64 },
    /// Fill and counters, once an interval.
    Figures(CtFigures),
    /// A request was carried out: how many entries it deleted. Their destroy events come
    /// before it where the feed sends them itself, or in a later batch where the kernel does.
    Deleted { count: usize },
    /// Something failed, as a sentence to show. The feed keeps trying where that makes sense.
    Error(String),
}

/// What the screen can ask of the feed.
#[derive(Debug, Clone)]
pub enum CtRequest {
    /// Delete this entry.
    Delete(Box<Entry>),
    /// Delete every entry matching the filter (all entries with `None`).
    DeleteMatching(Option<Filter>),
    /// Delete the entries with these keys (those still there).
    DeleteKeys(Vec<crate::conntrack::EntryKey>),
    /// Read the whole table again.
    Reload,
}

/// Where the feed delivers; returns `false` once nobody listens, and the feed then stops.
pub type CtSink = Box<dyn FnMut(CtFeed) -> bool + Send>;

/// The screen's end of the feed.
#[derive(Debug, Clone)]
pub struct CtHandle {
    tx: Sender<CtRequest>,
}

impl CtHandle {
    /// Ask the feed for something; the answer comes back through the sink.
    pub fn request(&self, r: CtRequest) {
        let _ = self.tx.send(r);
    }

    /// A handle whose requests go nowhere (screen tests).
    pub fn detached() -> CtHandle {
        CtHandle {
            tx: mpsc::channel().0,
        }
    }
}

/// Start the feed's thread.
pub fn spawn(origin: CtOrigin, interval: Duration, sink: CtSink) -> std::io::Result<CtHandle> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("nfscope-conntrack".into())
        .spawn(move || run(origin, interval, sink, rx))?;
    Ok(CtHandle { tx })
}

fn run(origin: CtOrigin, interval: Duration, mut sink: CtSink, rx: Receiver<CtRequest>) {
    match origin {
        CtOrigin::Off => {
            sink(CtFeed::Error(
                "no conntrack with --file: the table comes from the kernel (run without --file)"
                    .into(),
            ));
        }
        CtOrigin::Demo => demo(interval, &mut sink, &rx),
        CtOrigin::Proc => proc_poll(interval, &mut sink, &rx),
        CtOrigin::Netlink | CtOrigin::Auto => {
            let err = match netlink(interval, &mut sink, &rx) {
                Stop::Listener => return,
                Stop::Failed(e) => e,
            };
            let fall_back = origin == CtOrigin::Auto && !matches!(err, CtError::PermissionDenied);
            if !sink(CtFeed::Error(if fall_back {
                format!("{err}; reading /proc/net/nf_conntrack instead")
            } else {
                err.to_string()
            })) {
                return;
            }
            if fall_back {
                proc_poll(interval, &mut sink, &rx);
            }
        }
    }
}

/// Why the netlink feed ended.
enum Stop {
    /// Nobody listens any more.
    Listener,
    /// Netlink failed before the first table could be read.
    Failed(CtError),
}

/// Read a sysctl of the calling thread's network namespace.
fn sysctl(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/net/netfilter/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn sysctl_flags(f: &mut CtFigures) {
    f.acct = sysctl("nf_conntrack_acct").map(|v| v != 0);
    f.timestamps = sysctl("nf_conntrack_timestamp").map(|v| v != 0);
}

/// Which entries of the table may change or go without an event. With
/// `net.netfilter.nf_conntrack_events=2` (the kernel's default, "auto") a connection gets the
/// slot that events are sent from only if somebody listened when it was created: the entries
/// already in the table when the feed subscribed never send an update or a destroy (the kernel
/// tests show it). Without care they would stay on the screen for ever, in their old state.
/// So the feed remembers which entries of its last dump it has not heard from, reads the table
/// again every so often while there are any ([`reconcile_after`]), and sends a destroy event
/// itself for such an entry that it deletes.
#[derive(Debug, Default)]
struct Silence {
    /// Ids that sent an event, so have the slot (forgotten when destroyed).
    heard: FxHashSet<u32>,
    /// Ids of the last dump not heard from since.
    silent: FxHashSet<u32>,
}

impl Silence {
    fn dumped(&mut self, entries: &[Entry]) {
        let ids: FxHashSet<u32> = entries.iter().map(|e| e.id).filter(|&id| id != 0).collect();
        // A destroy lost with other events leaves an id behind; the dump says it is gone.
        self.heard.retain(|id| ids.contains(id));
        self.silent = ids
            .into_iter()
            .filter(|id| !self.heard.contains(id))
            .collect();
    }

    fn event(&mut self, ev: &CtEvent) {
        let id = ev.entry.id;
        self.silent.remove(&id);
        match ev.kind {
            CtEventKind::Destroy => self.heard.remove(&id),
            CtEventKind::New | CtEventKind::Update => self.heard.insert(id),
        };
    }

    /// The feed deleted `e`: whether it was silent, so that no destroy event will come for it.
    fn deleted(&mut self, e: &Entry) -> bool {
        self.silent.remove(&e.id)
    }
}

/// The table is read again this long after the last dump: every refresh interval, and at
/// least 50 times what the dump took, so that the kernel's dump work stays near 2% of a core on
/// a large table (250,000 entries take about half a second: a dump every 25 s). The dumps are
/// what keeps timeouts true: the kernel refreshes an established connection's timeout with
/// every packet and says nothing, and entries older than the subscription (or all of them, with
/// events off) send no events at all.
fn reconcile_after(interval: Duration, took: Duration) -> Duration {
    interval.max(took.saturating_mul(50))
}

/// The netlink feed's state between turns.
struct Live {
    interval: Duration,
    sock: ctnl::CtSocket,
    silence: Silence,
    /// Events not handed over yet.
    batch: Vec<CtEvent>,
    /// When to read the table again because of silent entries, if there are any.
    reconcile: Option<Instant>,
}

impl Live {
    /// The whole table, noted by `silence`; the next reconciling dump is planned from it.
    fn dump(&mut self) -> Result<Vec<Entry>, CtError> {
        let start = Instant::now();
        let entries = self.sock.dump(None)?;
        self.silence.dumped(&entries);
        self.reconcile = Some(Instant::now() + reconcile_after(self.interval, start.elapsed()));
        Ok(entries)
    }

    /// Hand over the batched events, if any; `false` once nobody listens.
    fn flush(&mut self, sink: &mut CtSink) -> bool {
        self.batch.is_empty() || sink(CtFeed::Events(std::mem::take(&mut self.batch)))
    }

    /// Read the table anew and send it as a resync; the events batched so far go first, as
    /// what came before the table must not be applied after it. `false` once nobody listens.
    fn resync(&mut self, sink: &mut CtSink) -> bool {
        if !self.flush(sink) {
            return false;
        }
        sink(match self.dump() {
            Ok(entries) => CtFeed::Table {
                entries,
                via: CtVia::Netlink,
                resync: true,
            },
            Err(e) => CtFeed::Error(e.to_string()),
        })
    }
}

fn netlink(interval: Duration, sink: &mut CtSink, rx: &Receiver<CtRequest>) -> Stop {
    // Subscribe before the dump, so that nothing happening during it is missed.
    let opts = SubscribeOptions {
        timeout: Some(Duration::from_millis(50)),
        ..SubscribeOptions::default()
    };
    let mut sub = match Subscription::open(opts) {
        Ok(s) => s,
        Err(e) => return Stop::Failed(e),
    };
    let mut live = match ctnl::CtSocket::open() {
        Ok(sock) => Live {
            interval,
            sock,
            silence: Silence::default(),
            batch: Vec::new(),
            reconcile: None,
        },
        Err(e) => return Stop::Failed(e),
    };
    match live.dump() {
        Ok(entries) => {
            if !sink(CtFeed::Table {
                entries,
                via: CtVia::Netlink,
                resync: false,
            }) {
                return Stop::Listener;
            }
        }
        Err(e) => return Stop::Failed(e),
    }
    let mut batch_start = Instant::now();
    let mut next_figures = Instant::now();
    loop {
        if Instant::now() >= next_figures {
            let mut f = CtFigures::default();
            match live.sock.stats() {
                Ok(s) => {
                    f.cpu = Some(s.total());
                    f.count = s.count;
                    f.max = s
                        .max
                        .or_else(|| sysctl("nf_conntrack_max").map(|v| v as u32));
                }
                Err(e) => {
                    if !sink(CtFeed::Error(e.to_string())) {
                        return Stop::Listener;
                    }
                }
            }
            sysctl_flags(&mut f);
            if !sink(CtFeed::Figures(f)) {
                return Stop::Listener;
            }
            next_figures = Instant::now() + interval;
        }
        if live.reconcile.is_some_and(|t| Instant::now() >= t) && !live.resync(sink) {
            return Stop::Listener;
        }
        loop {
            let gone = match rx.try_recv() {
                Ok(CtRequest::Delete(e)) => live.sock.delete(&e).map(|()| vec![*e]),
                Ok(CtRequest::DeleteMatching(f)) => live
                    .sock
                    .delete_selected(|e| f.as_ref().is_none_or(|f| f.matches(e))),
                Ok(CtRequest::DeleteKeys(keys)) => {
                    let keys: rustc_hash::FxHashSet<_> = keys.into_iter().collect();
                    live.sock.delete_selected(|e| keys.contains(&e.key()))
                }
                Ok(CtRequest::Reload) => {
                    if !live.resync(sink) {
                        return Stop::Listener;
                    }
                    continue;
                }
                Err(TryRecvError::Empty) => break,
                // The screen is gone.
                Err(TryRecvError::Disconnected) => return Stop::Listener,
            };
            let msg = match gone {
                Ok(gone) => {
                    let count = gone.len();
                    // The kernel announces only the deletions of entries that have events.
                    for e in gone {
                        if live.silence.deleted(&e) {
                            live.batch.push(CtEvent::destroy(e));
                        }
                    }
                    if !live.flush(sink) {
                        return Stop::Listener;
                    }
                    CtFeed::Deleted { count }
                }
                Err(e) => CtFeed::Error(e.to_string()),
            };
            if !sink(msg) {
                return Stop::Listener;
            }
        }
        match sub.recv() {
            Ok(Some(CtMessage::Event(ev))) => {
                if live.batch.is_empty() {
                    batch_start = Instant::now();
                }
                live.silence.event(&ev);
                live.batch.push(ev);
            }
            Ok(Some(CtMessage::Lost(lost))) => {
                // What came before the loss still goes first; then the table is read anew.
                let total = sub.lost_total();
                if !live.flush(sink) || !sink(CtFeed::Lost { lost, total }) || !live.resync(sink) {
                    return Stop::Listener;
                }
            }
            Ok(None) => {}
            Err(e) => {
                if !sink(CtFeed::Error(e.to_string())) {
                    return Stop::Listener;
                }
                std::thread::sleep(interval);
            }
        }
        if batch_start.elapsed() >= BATCH && !live.flush(sink) {
            return Stop::Listener;
        }
    }
}

/// Wait up to `d` for a request; `Err(())` once the screen is gone.
fn wait_request(rx: &Receiver<CtRequest>, d: Duration) -> Result<Option<CtRequest>, ()> {
    match rx.recv_timeout(d) {
        Ok(r) => Ok(Some(r)),
        Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
    }
}

fn proc_poll(interval: Duration, sink: &mut CtSink, rx: &Receiver<CtRequest>) {
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next {
            let (msg, bad) = match conntrack_proc::read_lenient(None) {
                Ok((entries, bad)) => (
                    CtFeed::Table {
                        entries,
                        via: CtVia::Proc,
                        resync: false,
                    },
                    bad,
                ),
                Err(e) => (CtFeed::Error(e.to_string()), None),
            };
            if !sink(msg) || bad.is_some_and(|b| !sink(CtFeed::Error(b))) {
                return;
            }
            let mut f = CtFigures {
                count: sysctl("nf_conntrack_count").unwrap_or(0) as u32,
                max: sysctl("nf_conntrack_max").map(|v| v as u32),
                ..CtFigures::default()
            };
            sysctl_flags(&mut f);
            if !sink(CtFeed::Figures(f)) {
                return;
            }
            // Reading /proc costs about as much as the kernel's dump: wait at least twice
            // what it took, as the rule-set source does.
            next = Instant::now() + interval.max(now.elapsed() * 2);
        }
        match wait_request(rx, next.saturating_duration_since(Instant::now())) {
            Ok(Some(CtRequest::Reload)) => next = Instant::now(),
            Ok(Some(_)) => {
                if !sink(CtFeed::Error(
                    "deleting needs conntrack over netlink, and this table is read from /proc/net/nf_conntrack (load nf_conntrack_netlink and run as root)".into(),
                )) {
                    return;
                }
            }
            Ok(None) => {}
            Err(()) => return,
        }
    }
}

fn demo(interval: Duration, sink: &mut CtSink, rx: &Receiver<CtRequest>) {
    // The demo world keeps its own clock; set it to ours so that ages come out right.
    let mut world = CtDemo::new().with_clock(std::time::SystemTime::now());
    if !sink(CtFeed::Table {
        entries: world.entries(),
        via: CtVia::Demo,
        resync: false,
    }) {
        return;
    }
    let figures = |w: &CtDemo| {
        CtFeed::Figures(CtFigures {
            count: w.count() as u32,
            max: Some(DEMO_MAX),
            cpu: None,
            acct: Some(true),
            timestamps: Some(true),
        })
    };
    if !sink(figures(&world)) {
        return;
    }
    let mut last = Instant::now();
    let mut next_figures = Instant::now() + interval;
    loop {
        let req = match wait_request(rx, BATCH.saturating_sub(last.elapsed())) {
            Ok(r) => r,
            Err(()) => return,
        };
        let gone = match req {
            Some(CtRequest::Delete(e)) => Some(world.remove(|x| x.key() == e.key())),
            Some(CtRequest::DeleteMatching(f)) => {
                Some(world.remove(|x| f.as_ref().is_none_or(|f| f.matches(x))))
            }
            Some(CtRequest::DeleteKeys(keys)) => {
                let keys: rustc_hash::FxHashSet<_> = keys.into_iter().collect();
                Some(world.remove(|x| keys.contains(&x.key())))
            }
            Some(CtRequest::Reload) => {
                let table = CtFeed::Table {
                    entries: world.entries(),
                    via: CtVia::Demo,
                    resync: true,
                };
                if !sink(table) {
                    return;
                }
                continue;
            }
            None => None,
        };
        if let Some(gone) = gone {
            let answer = if gone.is_empty() {
                CtFeed::Error(CtError::NotFound.to_string())
            } else {
                CtFeed::Deleted { count: gone.len() }
            };
            // The deleted entries go as destroy events first, as the kernel would send them.
            let events = gone.into_iter().map(CtEvent::destroy).collect::<Vec<_>>();
            if (!events.is_empty() && !sink(CtFeed::Events(events))) || !sink(answer) {
                return;
            }
            continue;
        }
        let dt = last.elapsed();
        last = Instant::now();
        let events = world.step(dt);
        if !events.is_empty() && !sink(CtFeed::Events(events)) {
            return;
        }
        if Instant::now() >= next_figures {
            if !sink(figures(&world)) {
                return;
            }
            next_figures = Instant::now() + interval;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::synth;

    fn with_id(id: u32) -> Entry {
        let mut e = synth::entries(1).remove(0);
        e.id = id;
        e
    }

    #[test]
    fn silence_forgets_entries_once_they_speak_or_go() {
        let mut s = Silence::default();
        s.dumped(&[with_id(1), with_id(2), with_id(3)]);
        assert_eq!(s.silent.len(), 3);
        s.event(&CtEvent::update(with_id(1)));
        s.event(&CtEvent::destroy(with_id(2)));
        assert!(
            s.deleted(&with_id(3)),
            "3 was silent: the feed announces its end"
        );
        assert!(
            !s.deleted(&with_id(1)),
            "1 has events: the kernel announces it"
        );
        assert!(s.silent.is_empty());
        // A new dump: 1 has been heard from, 4 has not; 5 was heard but is gone.
        s.event(&CtEvent::new(with_id(5)));
        s.dumped(&[with_id(1), with_id(4)]);
        assert_eq!(s.silent, FxHashSet::from_iter([4]));
        assert_eq!(s.heard, FxHashSet::from_iter([1]));
    }

    #[test]
    fn reconciling_costs_a_small_share_of_the_time() {
        let second = Duration::from_secs(1);
        assert_eq!(reconcile_after(second, Duration::from_millis(2)), second);
        assert_eq!(
            reconcile_after(second, Duration::from_millis(500)),
            second * 25
        );
    }
}
