//! The /proc conntrack parser over fixture files of both layouts (tests/data/conntrack/): the
//! modern `/proc/net/nf_conntrack` with and without accounting, and the older
//! `/proc/net/ip_conntrack`. Every line parses, and the entries say what the lines say.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::conntrack::procfs::{parse_proc, parse_proc_at, write_line};
use nfscope::conntrack::synth;
use nfscope::conntrack::{Entry, Proto, State, Status, TcpState};
use nfscope::ruleset::Family;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/data/conntrack/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn all(name: &str) -> Vec<Entry> {
    let text = fixture(name);
    let (entries, errors) = parse_proc(&text);
    assert!(errors.is_empty(), "{name}: {errors:?}");
    assert_eq!(entries.len(), text.lines().count(), "{name}");
    entries
}

fn tcp_states(es: &[Entry]) -> Vec<&str> {
    es.iter()
        .filter(|e| e.proto == Proto::TCP)
        .filter_map(|e| e.state.as_ref().map(State::name))
        .collect()
}

#[test]
fn modern_layout_with_accounting() {
    let es = all("nf_conntrack.txt");
    assert_eq!(es.iter().filter(|e| e.family == Family::V6).count(), 4);
    for s in [
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "TIME_WAIT",
        "CLOSE",
        "FIN_WAIT",
    ] {
        assert!(tcp_states(&es).contains(&s), "{s}");
    }
    assert!(
        es.iter()
            .all(|e| e.orig_bytes.is_some() && e.reply_packets.is_some())
    );
    let dnat = es.iter().filter(|e| e.is_dnat()).count();
    let snat = es.iter().filter(|e| e.is_snat()).count();
    assert_eq!((dnat, snat), (1, 2));
    let protos: Vec<String> = es.iter().map(|e| e.proto.name()).collect();
    for p in ["tcp", "udp", "icmp", "icmpv6", "gre", "sctp", "50"] {
        assert!(protos.iter().any(|n| n == p), "{p}");
    }
    let sctp = es.iter().find(|e| e.proto == Proto::SCTP).unwrap();
    assert_eq!(sctp.state, Some(State::Other("COOKIE_WAIT".into())));
    let ftp = es.iter().find(|e| e.helper().is_some()).unwrap();
    assert_eq!((ftp.helper(), ftp.zone), (Some("ftp"), 5));
    let unreplied = es
        .iter()
        .filter(|e| !e.status.has(Status::SEEN_REPLY))
        .count();
    assert_eq!(unreplied, 6);
    let marked = es.iter().find(|e| e.mark == 16).unwrap();
    assert_eq!(marked.orig.dport, Some(443));
    let ping6 = es.iter().find(|e| e.proto == Proto::ICMPV6).unwrap();
    assert_eq!(ping6.orig.icmp.map(|i| (i.kind, i.id)), Some((128, 9001)));
    assert_eq!(ping6.reply.icmp.map(|i| i.kind), Some(129));
}

#[test]
fn modern_layout_without_accounting_with_timestamps() {
    let text = fixture("nf_conntrack-noacct.txt");
    let now = 1_000_000 * 1_000_000_000;
    let (es, errors) = parse_proc_at(&text, Some(now));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(es.len(), 7);
    assert!(
        es.iter()
            .all(|e| e.orig_packets.is_none() && e.secctx().is_some())
    );
    assert_eq!(es[0].start_ns, Some(now - 125 * 1_000_000_000));
    assert_eq!(es[3].zone, 7, "zone-orig=");
    assert_eq!(es[4].timeout, 0, "offloaded flows print no timeout");
    assert_eq!(es[4].state, Some(State::Tcp(TcpState::Established)));
    assert_eq!(es[5].mark, 255);
}

#[test]
fn old_ip_conntrack_layout() {
    let es = all("ip_conntrack.txt");
    assert!(es.iter().all(|e| e.family == Family::V4));
    assert_eq!(es[0].state, Some(State::Tcp(TcpState::SynSent)));
    assert!(!es[0].status.has(Status::SEEN_REPLY));
    assert_eq!(es[4].state, Some(State::Other("LISTEN".into())));
    assert!(es[5].is_snat() && !es[5].is_dnat());
    assert_eq!(es[5].orig_packets, Some(10));
    let icmp = es.iter().find(|e| e.proto == Proto::ICMP).unwrap();
    assert_eq!(icmp.orig.icmp.map(|i| i.id), Some(33029));
    let gre = es.last().unwrap();
    assert_eq!((gre.proto, gre.timeout), (Proto::GRE, 598));
    assert!(es.iter().all(|e| e.use_count.is_some() && e.id == 0));
}

/// What survives the text layout: everything but the id, labels, times and the status bits the
/// layout does not print.
fn printable(e: &Entry) -> Entry {
    let mut e = e.clone();
    let kept = Status::SEEN_REPLY | Status::ASSURED | (1 << 3);
    e.status = Status(e.status.0 & kept | (1 << 3));
    e.id = 0;
    e.with_extra(|x| {
        x.labels = None;
        x.stop_ns = None;
    });
    e.start_ns = None;
    e.use_count = Some(e.use_count.unwrap_or(1));
    e
}

#[test]
fn written_lines_parse_back_to_the_same_entries() {
    let world = synth::entries(20_000);
    let text: String = world.iter().map(|e| write_line(e) + "\n").collect();
    let (back, errors) = parse_proc(&text);
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
    assert_eq!(back.len(), world.len());
    for (a, b) in world.iter().zip(&back) {
        assert_eq!(printable(a), *b, "{}", write_line(a));
    }
}

#[test]
fn fixture_lines_are_written_back_as_the_kernel_printed_them() {
    let text = fixture("nf_conntrack.txt");
    let (es, _) = parse_proc(&text);
    for (line, e) in text.lines().zip(&es) {
        assert_eq!(write_line(e), line);
    }
}
