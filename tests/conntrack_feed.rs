//! The live conntrack feed (`source::ctfeed`) against a real kernel, each test in a throwaway
//! network namespace of its own. The feed is spawned from a thread that entered the namespace
//! (`common::ct::in_ns`); the feed's own thread inherits that thread's namespace, so its sockets
//! and its /proc and sysctl reads are the namespace's: the first test proves it by comparing the
//! feed's table with `conntrack -L` there. Needs root (skipped otherwise, failed under CI=true).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::NetNs;
use common::ct::{
    assert_same_rows, busy_ns, conntrack_list, in_ns, make_traffic, row_of, tcp_connection,
    tracked_ns,
};
use nfscope::conntrack::filter::Filter;
use nfscope::conntrack::{CtEvent, CtEventKind, Entry, Proto};
use nfscope::source::conntrack_netlink::CtError;
use nfscope::source::ctfeed::{self, CtFeed, CtHandle, CtOrigin, CtRequest, CtVia};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// The feed's figures come this often.
const INTERVAL: Duration = Duration::from_millis(200);

/// Start a feed of `origin` inside the namespace; its messages arrive on the receiver.
fn feed(ns: &NetNs, origin: CtOrigin) -> (CtHandle, Receiver<CtFeed>) {
    let (tx, rx) = mpsc::channel();
    let handle = in_ns(ns, move || {
        ctfeed::spawn(origin, INTERVAL, Box::new(move |m| tx.send(m).is_ok()))
    })
    .expect("spawn the feed");
    (handle, rx)
}

/// The first message `pick` accepts, within five seconds; the others are passed over.
fn wait_for<T>(rx: &Receiver<CtFeed>, what: &str, mut pick: impl FnMut(CtFeed) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(m) => {
                if let Some(t) = pick(m) {
                    return t;
                }
            }
            Err(e) => panic!("no {what} from the feed: {e}"),
        }
    }
}

/// The feed's first message, which must be the whole table.
fn first_table(rx: &Receiver<CtFeed>, via: CtVia) -> Vec<Entry> {
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(CtFeed::Table {
            entries,
            via: v,
            resync: false,
        }) if v == via => entries,
        other => panic!("the first message is not a {via:?} table: {other:?}"),
    }
}

/// The answer to a request: `Ok(count)` for `Deleted`, `Err(sentence)` for `Error`.
fn answer(rx: &Receiver<CtFeed>) -> Result<usize, String> {
    wait_for(rx, "answer", |m| match m {
        CtFeed::Deleted { count } => Some(Ok(count)),
        CtFeed::Error(e) => Some(Err(e)),
        _ => None,
    })
}

#[test]
fn the_first_message_is_the_table_conntrack_lists() {
    let Some((ns, _held)) = busy_ns("feedtable") else {
        return;
    };
    let (_handle, rx) = feed(&ns, CtOrigin::Netlink);
    let entries = first_table(&rx, CtVia::Netlink);
    assert!(entries.len() >= 10, "the traffic made entries");
    assert_same_rows(
        entries.iter().map(row_of).collect(),
        conntrack_list(&ns),
        "the feed's table",
    );
}

#[test]
fn a_tcp_connection_arrives_as_events_new_to_destroy_in_order() {
    let Some(ns) = tracked_ns("feedevents") else {
        return;
    };
    let (_handle, rx) = feed(&ns, CtOrigin::Netlink);
    // The feed subscribes before its first dump: once the table is here, nothing is missed.
    first_table(&rx, CtVia::Netlink);
    let _held = tcp_connection(&ns, 7000);
    ns.exec_ok(&["conntrack", "-D", "-p", "tcp", "--dport", "7000"]);
    let mut batches: Vec<Vec<CtEvent>> = Vec::new();
    wait_for(&rx, "destroy event", |m| match m {
        CtFeed::Events(evs) => {
            let ours: Vec<CtEvent> = evs
                .into_iter()
                .filter(|e| e.entry.orig.dport == Some(7000))
                .collect();
            let done = ours.iter().any(|e| e.kind == CtEventKind::Destroy);
            if !ours.is_empty() {
                batches.push(ours);
            }
            done.then_some(())
        }
        CtFeed::Lost { .. } => panic!("events lost with the feed's large buffer"),
        _ => None,
    });
    let events: Vec<&CtEvent> = batches.iter().flatten().collect();
    let kinds: Vec<CtEventKind> = events.iter().map(|e| e.kind).collect();
    let states: Vec<&str> = events.iter().map(|e| e.entry.state_label()).collect();
    assert_eq!(
        kinds,
        [
            CtEventKind::New,
            CtEventKind::Update,
            CtEventKind::Update,
            CtEventKind::Destroy
        ],
        "{states:?}"
    );
    assert_eq!(
        states,
        ["SYN_SENT", "SYN_RECV", "ESTABLISHED", "ESTABLISHED"]
    );
    let key = events[0].entry.key();
    assert!(
        events.iter().all(|e| e.entry.key() == key),
        "one connection"
    );
    // The handshake takes microseconds: its three events are one batch, not three.
    assert!(batches[0].len() >= 3, "batches: {batches:?}");
}

#[test]
fn a_delete_request_deletes_one_entry() {
    let Some((ns, _held)) = busy_ns("feeddelete") else {
        return;
    };
    let (handle, rx) = feed(&ns, CtOrigin::Netlink);
    let table = first_table(&rx, CtVia::Netlink);
    let zoned = table
        .iter()
        .find(|e| e.zone == 5)
        .cloned()
        .expect("the zone-5 entry");
    let before = conntrack_list(&ns);
    handle.request(CtRequest::Delete(Box::new(zoned.clone())));
    // The entry is older than the feed's subscription, so the kernel says nothing of its end
    // (nf_conntrack_events=2): the feed sends its destroy itself, before the answer.
    let mut destroyed = false;
    let count = wait_for(&rx, "the answer", |m| match m {
        CtFeed::Events(evs) => {
            destroyed |= evs
                .iter()
                .any(|e| e.kind == CtEventKind::Destroy && e.entry.key() == zoned.key());
            None
        }
        CtFeed::Deleted { count } => Some(count),
        CtFeed::Error(e) => panic!("{e}"),
        _ => None,
    });
    assert_eq!(count, 1);
    assert!(destroyed, "no destroy event before the answer");
    let after = conntrack_list(&ns);
    assert!(!after.iter().any(|(r, _)| r.zone == 5), "{after:#?}");
    assert_eq!(after.len(), before.len() - 1, "only that one");
    // Twice: the sentence says it is gone.
    handle.request(CtRequest::Delete(Box::new(zoned)));
    assert_eq!(answer(&rx), Err(CtError::NotFound.to_string()));
}

#[test]
fn delete_matching_deletes_exactly_the_matching_entries() {
    let Some((ns, _held)) = busy_ns("feedmatching") else {
        return;
    };
    let (handle, rx) = feed(&ns, CtOrigin::Netlink);
    first_table(&rx, CtVia::Netlink);
    let before = conntrack_list(&ns);
    let filter = Filter::parse("proto=udp dport=5353,5400").unwrap();
    let doomed: Vec<u32> = before
        .iter()
        .filter(|(r, _)| {
            r.proto == Proto::UDP.0
                && r.orig
                    .get("dport")
                    .is_some_and(|p| p == "5353" || p == "5400")
        })
        .map(|(r, _)| r.id)
        .collect();
    assert_eq!(doomed.len(), 4, "5353 and 5400 in both families");
    handle.request(CtRequest::DeleteMatching(Some(filter)));
    assert_eq!(answer(&rx), Ok(doomed.len()));
    let left: Vec<u32> = conntrack_list(&ns).iter().map(|(r, _)| r.id).collect();
    let expected: Vec<u32> = before
        .iter()
        .map(|(r, _)| r.id)
        .filter(|id| !doomed.contains(id))
        .collect();
    let sorted = |mut v: Vec<u32>| {
        v.sort_unstable();
        v
    };
    assert_eq!(sorted(left), sorted(expected), "exactly those, no other");
}

#[test]
fn figures_count_and_max_are_the_namespaces() {
    let Some((ns, _held)) = busy_ns("feedfigures") else {
        return;
    };
    let (_handle, rx) = feed(&ns, CtOrigin::Netlink);
    let table = first_table(&rx, CtVia::Netlink);
    let f = wait_for(&rx, "figures", |m| match m {
        CtFeed::Figures(f) => Some(f),
        _ => None,
    });
    let count: u32 = ns.exec_ok(&["conntrack", "-C"]).trim().parse().unwrap();
    let max: u32 = ns
        .exec_ok(&["cat", "/proc/sys/net/netfilter/nf_conntrack_max"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(f.count, count);
    assert_eq!(f.count as usize, table.len());
    assert_eq!(f.max, Some(max));
    assert_eq!(f.acct, Some(true), "tracked_ns turns accounting on");
    let cpu = f.cpu.expect("per-CPU statistics over netlink");
    assert!(
        cpu.found + cpu.insert + cpu.invalid > 0 || count == 0,
        "{cpu:?}"
    );
}

#[test]
fn the_proc_feed_reads_the_namespaces_table_and_refuses_to_delete() {
    let Some((ns, _held)) = busy_ns("feedproc") else {
        return;
    };
    let (handle, rx) = feed(&ns, CtOrigin::Proc);
    let entries = first_table(&rx, CtVia::Proc);
    // /proc has no kernel id, and its `use` counts the reader.
    let strip = |rows: Vec<(common::ct::Row, u32)>| {
        let mut rows: Vec<_> = rows
            .into_iter()
            .map(|(mut r, _)| {
                (r.id, r.use_count) = (0, 0);
                r
            })
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        strip(entries.iter().map(row_of).collect()),
        strip(conntrack_list(&ns)),
        "the /proc feed vs conntrack -L"
    );
    handle.request(CtRequest::DeleteMatching(None));
    let said = answer(&rx).expect_err("/proc cannot delete");
    assert!(said.contains("netlink"), "{said}");
    assert_eq!(conntrack_list(&ns).len(), entries.len(), "nothing deleted");
}

#[test]
fn entries_older_than_the_feed_are_caught_up_by_a_reconciling_dump() {
    let Some((ns, _held)) = busy_ns("feedsilent") else {
        return;
    };
    let (_handle, rx) = feed(&ns, CtOrigin::Netlink);
    let table = first_table(&rx, CtVia::Netlink);
    assert!(table.iter().any(|e| e.zone == 5));
    // Deleted behind the feed's back: no event comes for an entry older than the subscription.
    ns.exec_ok(&["conntrack", "-D", "-w", "5"]);
    let started = Instant::now();
    let entries = wait_for(&rx, "a reconciling table", |m| match m {
        CtFeed::Events(evs) => {
            assert!(evs.iter().all(|e| e.entry.zone != 5), "{evs:?}");
            None
        }
        CtFeed::Table {
            entries,
            resync: true,
            ..
        } => Some(entries),
        _ => None,
    });
    assert!(
        started.elapsed() >= INTERVAL / 2,
        "an interval after the first dump, not at once ({:?})",
        started.elapsed()
    );
    assert_same_rows(
        entries.iter().map(row_of).collect(),
        conntrack_list(&ns),
        "the reconciled table",
    );
}

/// The kernel refreshes an established connection's timeout with every packet and sends no
/// event for it: the feed reads the table again every interval (a small table), so the timeout
/// it reports agrees with `conntrack -L` within a second, however long the connection has been
/// busy.
#[test]
fn timeouts_agree_with_conntrack_list_while_a_connection_is_busy() {
    use std::io::{Read, Write};
    let Some(ns) = tracked_ns("feedtimeout") else {
        return;
    };
    let (_handle, rx) = feed(&ns, CtOrigin::Netlink);
    assert!(first_table(&rx, CtVia::Netlink).is_empty());
    let (mut client, mut server) = in_ns(&ns, || {
        let l = std::net::TcpListener::bind("127.0.0.1:5555").expect("bind");
        let c = std::net::TcpStream::connect("127.0.0.1:5555").expect("connect");
        let (s, _) = l.accept().expect("accept");
        (c, s)
    });
    // Three seconds of traffic, a message every 200 ms: the kernel keeps the timeout fresh.
    let until = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 4];
    while Instant::now() < until {
        client.write_all(b"ping").expect("send");
        server.read_exact(&mut buf).expect("receive");
        server.write_all(b"pong").expect("reply");
        client.read_exact(&mut buf).expect("reply read");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The feed's next reading of the table against conntrack -L.
    let port = client.local_addr().expect("addr").port();
    let ours = wait_for(&rx, "a re-read of the table", |m| match m {
        CtFeed::Table {
            entries,
            resync: true,
            ..
        } => entries
            .into_iter()
            .find(|e| e.orig.sport == Some(port))
            .map(|e| e.timeout),
        _ => None,
    });
    let theirs = conntrack_list(&ns)
        .into_iter()
        .find(|(r, _)| r.orig.get("sport") == Some(&port.to_string()))
        .map(|(_, t)| t)
        .expect("conntrack -L lists the connection");
    assert!(
        ours.abs_diff(theirs) <= 1,
        "the feed says {ours} s, conntrack -L {theirs} s"
    );
    // An established TCP connection that just talked: days, not the countdown of an old read.
    assert!(ours > 400_000, "{ours}");
}

#[test]
fn with_events_off_the_feed_keeps_up_by_dumps() {
    let Some(ns) = tracked_ns("feedeventsoff") else {
        return;
    };
    ns.exec_ok(&["sysctl", "-qw", "net.netfilter.nf_conntrack_events=0"]);
    let (_handle, rx) = feed(&ns, CtOrigin::Netlink);
    assert!(first_table(&rx, CtVia::Netlink).is_empty());
    let _held = make_traffic(&ns);
    let entries = wait_for(&rx, "a table read again", |m| match m {
        CtFeed::Events(evs) => panic!("events while they are off: {evs:?}"),
        CtFeed::Table {
            entries,
            resync: true,
            ..
        } if !entries.is_empty() => Some(entries),
        _ => None,
    });
    assert_same_rows(
        entries.iter().map(row_of).collect(),
        conntrack_list(&ns),
        "the table read again",
    );
}
