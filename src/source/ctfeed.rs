//! The live conntrack feed behind the Conntrack screen: one thread that reads the whole table
//! once, then follows the kernel's events and hands them over in batches, resynchronising with
//! a fresh dump whenever the kernel reports lost events. Where netlink is refused it polls
//! `/proc/net/nf_conntrack` instead; in the demo it runs the demo world's table.
//!
//! The thread also answers requests (delete one entry, delete every entry matching a filter,
//! read the table again) sent through the [`CtHandle`] that [`spawn`] returns.

use super::conntrack_netlink::{self as ctnl, CtError, CtMessage, SubscribeOptions, Subscription};
use super::conntrack_proc;
use super::ctdemo::CtDemo;
use crate::conntrack::decode::CpuStats;
use crate::conntrack::filter::Filter;
use crate::conntrack::{CtEvent, Entry};
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
    /// The whole table: the first read, each /proc poll, and each resync after lost events
    /// (`resync`), to be put in place of what the screen has.
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
    /// A request was carried out: how many entries it deleted.
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
    let mut sock = match ctnl::CtSocket::open() {
        Ok(s) => s,
        Err(e) => return Stop::Failed(e),
    };
    match sock.dump(None) {
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
    let mut batch = Vec::new();
    let mut batch_start = Instant::now();
    let mut next_figures = Instant::now();
    loop {
        if Instant::now() >= next_figures {
            let mut f = CtFigures::default();
            match sock.stats() {
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
        loop {
            match rx.try_recv() {
                Ok(r) => {
                    let answer = match r {
                        CtRequest::Delete(e) => sock.delete(&e).map(|()| 1),
                        CtRequest::DeleteMatching(f) => {
                            sock.delete_matching(|e| f.as_ref().is_none_or(|f| f.matches(e)))
                        }
                        CtRequest::Reload => match sock.dump(None) {
                            Ok(entries) => {
                                if !sink(CtFeed::Table {
                                    entries,
                                    via: CtVia::Netlink,
                                    resync: true,
                                }) {
                                    return Stop::Listener;
                                }
                                continue;
                            }
                            Err(e) => Err(e),
                        },
                    };
                    let msg = match answer {
                        Ok(count) => CtFeed::Deleted { count },
                        Err(e) => CtFeed::Error(e.to_string()),
                    };
                    if !sink(msg) {
                        return Stop::Listener;
                    }
                }
                Err(TryRecvError::Empty) => break,
                // The screen is gone.
                Err(TryRecvError::Disconnected) => return Stop::Listener,
            }
        }
        match sub.recv() {
            Ok(Some(CtMessage::Event(ev))) => {
                if batch.is_empty() {
                    batch_start = Instant::now();
                }
                batch.push(ev);
            }
            Ok(Some(CtMessage::Lost(lost))) => {
                // What came before the loss still goes first; then the table is read anew.
                if !batch.is_empty() && !sink(CtFeed::Events(std::mem::take(&mut batch))) {
                    return Stop::Listener;
                }
                if !sink(CtFeed::Lost {
                    lost,
                    total: sub.lost_total(),
                }) {
                    return Stop::Listener;
                }
                let msg = match sock.dump(None) {
                    Ok(entries) => CtFeed::Table {
                        entries,
                        via: CtVia::Netlink,
                        resync: true,
                    },
                    Err(e) => CtFeed::Error(e.to_string()),
                };
                if !sink(msg) {
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
        if !batch.is_empty()
            && batch_start.elapsed() >= BATCH
            && !sink(CtFeed::Events(std::mem::take(&mut batch)))
        {
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
            let msg = match conntrack_proc::read(None) {
                Ok(entries) => CtFeed::Table {
                    entries,
                    via: CtVia::Proc,
                    resync: false,
                },
                Err(e) => CtFeed::Error(e.to_string()),
            };
            if !sink(msg) {
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
