//! The netlink conntrack source at real scale, in the same run: a throwaway network namespace's
//! table is filled with ENTRIES real entries (250,000 by default; created over ctnetlink, UDP,
//! distinct source ports), then:
//! - dump: nfscope's `CtSocket::dump` (receive and decode) against `conntrack -L > /dev/null` in
//!   the same namespace, medians of ROUNDS; target ratio <= 0.5;
//! - memory: the process's VmRSS before and after holding the dumped `Vec<Entry>`, per entry;
//!   target <= 300 bytes;
//! - events: a subscription (large receive buffer) is not read while the first EVENTS entries
//!   are created, then drained and decoded, timed; target >= 100,000 events/s.
//!
//! nfscope's socket is always opened on a thread that entered the namespace; the host's table is
//! never touched. `nf_conntrack_max` is global on this kernel (read-only inside a namespace); the
//! bench never changes it and fills at most what it allows.
//!
//! Needs root and network namespaces; prints "skipped" and exits 0 without them. `cargo bench
//! --bench conntrack [-- ENTRIES [ROUNDS]]`; without `--bench` (as `cargo test --benches` runs
//! it) it only makes a small smoke run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::NetNs;
use netlink_packet_core::ParseableParametrized;
use netlink_packet_netfilter::conntrack::ConntrackMessage;
use nfscope::conntrack::decode::DecodeError;
use nfscope::conntrack::{Entry, Proto, Status, Tuple};
use nfscope::ruleset::Family;
use nfscope::source::conntrack_netlink::{
    CtError, CtMessage, CtSocket, SubscribeOptions, Subscription,
};
use nfscope::source::kernel::find_tool;
use nfscope::source::netns;
use std::alloc::{GlobalAlloc, Layout};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The binary's allocator (src/main.rs), so the figures are the binary's, wrapped to count the
/// bytes live on the heap.
#[global_allocator]
static GLOBAL: Counting = Counting;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to mimalloc unchanged; only a counter is kept beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { mimalloc::MiMalloc.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { mimalloc::MiMalloc.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new.wrapping_sub(l.size()), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { mimalloc::MiMalloc.realloc(p, l, new) }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The i-th synthetic flow: 10.1.x.y:port -> 10.2.0.1:53, UDP, replied and assured.
fn flow(i: usize) -> Entry {
    let host = (i / 50_000) as u32;
    let src = IpAddr::V4(Ipv4Addr::from(0x0a01_0000 | (host + 1)));
    let dst = IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1));
    let sport = 10_000 + (i % 50_000) as u16;
    let orig = Tuple {
        src,
        dst,
        sport: Some(sport),
        dport: Some(53),
        icmp: None,
    };
    let reply = Tuple {
        src: dst,
        dst: src,
        sport: Some(53),
        dport: Some(sport),
        icmp: None,
    };
    let mut e = Entry::new(Family::V4, Proto::UDP, orig, reply);
    e.timeout = 3600;
    e.status = Status(Status::SEEN_REPLY | Status::ASSURED);
    e
}

fn in_ns<T: Send + 'static>(ns: &NetNs, f: impl FnOnce() -> T + Send + 'static) -> T {
    netns::run_in(ns.name(), f).expect("enter the bench's namespace")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--bench");
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let (mut entries, rounds) = if full {
        (
            nums.first().copied().unwrap_or(250_000),
            nums.get(1).copied().unwrap_or(3).max(1),
        )
    } else {
        println!("smoke run (use `cargo bench --bench conntrack` for the real one)");
        (2_000, 1)
    };
    if find_tool("conntrack").is_none() {
        println!("skipped: the conntrack tool is not installed");
        return;
    }
    let ns = match NetNs::create("benchct") {
        Ok(ns) => ns,
        Err(why) => {
            println!("skipped: needs root and network namespaces ({why})");
            return;
        }
    };
    let max: usize = ns
        .exec_ok(&["cat", "/proc/sys/net/netfilter/nf_conntrack_max"])
        .trim()
        .parse()
        .unwrap_or(0);
    if max > 0 && entries > max {
        println!(
            "nf_conntrack_max is {max} (global, read-only in a namespace): filling {max} instead of {entries}"
        );
        entries = max;
    }

    // Events: subscribe, create the first batch without reading, then drain it, timed.
    let events_n = entries.min(50_000);
    let mut sub = in_ns(&ns, || {
        Subscription::open(SubscribeOptions {
            rcvbuf: Some(256 << 20),
            timeout: Some(Duration::from_millis(200)),
            new: true,
            update: false,
            destroy: false,
        })
    })
    .expect("subscribe");
    let mut sock = in_ns(&ns, CtSocket::open).expect("open a socket in the namespace");
    // Created in chunks, so the bench's own copy never weighs on the memory figure below.
    let mut create = |range: std::ops::Range<usize>| {
        let mut made = 0;
        let mut at = range.start;
        while at < range.end {
            let end = (at + 10_000).min(range.end);
            let chunk: Vec<Entry> = (at..end).map(flow).collect();
            made += sock.create(&chunk).expect("create entries");
            at = end;
        }
        made
    };
    let start = Instant::now();
    let made = create(0..events_n);
    let t_create_events = start.elapsed();
    let start = Instant::now();
    let (mut got, mut lost) = (0usize, 0u64);
    while let Some(m) = sub.recv().expect("receive events") {
        match m {
            CtMessage::Event(ev) => {
                got += 1;
                std::hint::black_box(ev);
            }
            CtMessage::Lost(n) => lost += n,
        }
        if got == made {
            break;
        }
    }
    let t_events = start.elapsed();
    drop(sub);
    let start = Instant::now();
    let made_rest = create(events_n..entries);
    let t_create = t_create_events + start.elapsed();
    let total = made + made_rest;
    println!(
        "filled {total} entries over ctnetlink in {:.0} ms ({:.0}/s)",
        ms(t_create),
        total as f64 / t_create.as_secs_f64()
    );
    let ev_rate = got as f64 / t_events.as_secs_f64();
    println!(
        "events: {got} received and decoded in {:.1} ms, {lost} lost: {:.0} events/s ({})",
        ms(t_events),
        ev_rate,
        if ev_rate >= 100_000.0 {
            "target >= 100,000/s met"
        } else {
            "target >= 100,000/s MISSED"
        }
    );

    // Memory, first, before any other dump: what holding the dumped table costs.
    let (rss_before, live_before) = (vm_rss_kib(), LIVE.load(Ordering::Relaxed));
    let held = sock.dump(None).expect("dump");
    let (rss_after, live_after) = (vm_rss_kib(), LIVE.load(Ordering::Relaxed));
    let n = held.len().max(1) as f64;
    let per_rss = (rss_after.saturating_sub(rss_before) * 1024) as f64 / n;
    let per_heap = live_after.saturating_sub(live_before) as f64 / n;
    println!(
        "memory: VmRSS {rss_before} KiB -> {rss_after} KiB holding {} entries: {per_rss:.0} \
         bytes/entry resident, {per_heap:.0} bytes/entry on the heap (size_of::<Entry>() = {}; {})",
        held.len(),
        std::mem::size_of::<Entry>(),
        if per_rss <= 300.0 {
            "target <= 300 met"
        } else {
            "target <= 300 MISSED"
        }
    );
    drop(held);

    // Receive alone (no decode), to show the kernel's share of a dump.
    let start = Instant::now();
    let mut raw = 0usize;
    sock.dump_payloads(None, |_| {
        raw += 1;
        Ok(())
    })
    .expect("dump");
    let t_raw = start.elapsed();
    assert_eq!(raw, total);

    // The same dump parsed by netlink-packet-netfilter instead (its attribute tree only: no
    // Entry is built, and what it leaves raw stays raw), for docs/architecture.md's "why not".
    let start = Instant::now();
    let mut parsed = 0usize;
    sock.dump_payloads(None, |p| {
        let m = ConntrackMessage::parse_with_param(p.get(4..).unwrap_or_default(), 0)
            .map_err(|e| CtError::Decode(DecodeError(e.to_string())))?;
        std::hint::black_box(m);
        parsed += 1;
        Ok(())
    })
    .expect("dump parsed by the crate");
    let t_crate = start.elapsed();
    assert_eq!(parsed, total);

    // Dump, against conntrack -L.
    let warm = sock.dump(None).expect("dump");
    assert_eq!(warm.len(), total, "the dump sees every entry");
    drop(warm);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let start = Instant::now();
        let status = ns
            .command(&["conntrack", "-L"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("conntrack runs");
        assert!(status.success());
        theirs.push(start.elapsed());
        let start = Instant::now();
        let v = sock.dump(None).expect("dump");
        ours.push(start.elapsed());
        assert_eq!(v.len(), total);
    }
    let (a, b) = (median(theirs), median(ours));
    let ratio = b.as_secs_f64() / a.as_secs_f64();
    println!(
        "dump of {total}: conntrack -L {:.1} ms, nfscope dump+decode {:.1} ms, ratio {:.2} ({}), medians of {rounds}; \
         the kernel's dump received without decoding took {:.1} ms, and parsed by \
         netlink-packet-netfilter (no Entry built) {:.1} ms",
        ms(a),
        ms(b),
        ratio,
        match (full, ratio <= 0.5) {
            (false, _) => "smoke run, no target",
            (true, true) => "target <= 0.5 met",
            (true, false) => "target <= 0.5 MISSED",
        },
        ms(t_raw),
        ms(t_crate)
    );
    // The kernel's share is the same for both; what is left is each side's own work.
    let ours_user = b.saturating_sub(t_raw);
    let theirs_user = a.saturating_sub(t_raw);
    println!(
        "  beyond the kernel's share: nfscope decode {:.1} ms, conntrack -L formatting {:.1} ms, \
         ratio {:.2}; the kernel's share alone is {:.2} of conntrack -L",
        ms(ours_user),
        ms(theirs_user),
        ours_user.as_secs_f64() / theirs_user.as_secs_f64().max(1e-9),
        t_raw.as_secs_f64() / a.as_secs_f64()
    );

    // `ns` is dropped here: the namespace and its table are deleted, on panic too.
}
