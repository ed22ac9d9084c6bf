//! The /proc conntrack parser over fixture files of both layouts (tests/data/README.md says
//! where they come from), and properties: no input makes it panic, and an error names a line
//! that exists.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::conntrack::Entry;
use nfscope::conntrack::procfs::{ProcError, parse_proc};

/// The whole text, or the first line that is not an entry.
fn parse(text: &str) -> Result<Vec<Entry>, ProcError> {
    let (entries, mut errors) = parse_proc(text);
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors.swap_remove(0))
    }
}

/// One line that must be an entry (not blank).
fn parse_line(line: &str) -> Result<Entry, String> {
    nfscope::conntrack::procfs::parse_line(line)?.ok_or_else(|| "blank".to_string())
}
use nfscope::conntrack::{Proto, State, Status, TcpState};
use nfscope::ruleset::Family;
use proptest::prelude::*;

const MODERN: &str = include_str!("data/nf_conntrack.txt");
const OLD: &str = include_str!("data/ip_conntrack.txt");

#[test]
fn modern_layout_fixture() {
    let all = parse(MODERN).expect("the fixture parses");
    assert_eq!(all.len(), MODERN.lines().count());
    assert_eq!(all.iter().filter(|e| e.family == Family::V6).count(), 3);
    // IPv4 DNAT: 127.0.0.2:8080 answered by 127.0.0.1:80.
    let dnat = all
        .iter()
        .find(|e| e.family == Family::V4 && e.orig.dport == Some(8080))
        .unwrap();
    assert_eq!(dnat.state, Some(State::Tcp(TcpState::Established)));
    assert_eq!(dnat.reply.src.to_string(), "127.0.0.1");
    assert_eq!(dnat.reply.sport, Some(80));
    assert!(dnat.is_dnat());
    assert!(dnat.status.has(Status::ASSURED) && dnat.status.has(Status::SEEN_REPLY));
    assert_eq!((dnat.orig_packets, dnat.reply_bytes), (Some(3), Some(112)));
    // IPv6 in full form reads as the usual address.
    let v6 = all
        .iter()
        .find(|e| e.family == Family::V6 && e.proto == Proto::UDP)
        .unwrap();
    assert_eq!(v6.orig.src.to_string(), "::1");
    assert_eq!(v6.mark, 9);
    assert!(!v6.status.has(Status::SEEN_REPLY));
    assert!(all.iter().any(|e| e.zone == 5));
    let ping6 = all.iter().find(|e| e.proto == Proto::ICMPV6).unwrap();
    let (o, r) = (ping6.orig.icmp.unwrap(), ping6.reply.icmp.unwrap());
    assert_eq!((o.kind, r.kind, o.id), (128, 129, r.id));
    assert!(all.iter().all(|e| e.use_count == Some(2) && e.id == 0));
}

#[test]
fn old_layout_fixture() {
    let all = parse(OLD).expect("the fixture parses");
    assert_eq!(all.len(), 8);
    assert!(all.iter().all(|e| e.family == Family::V4));
    let states: Vec<_> = all
        .iter()
        .filter_map(|e| e.state.as_ref().map(State::name))
        .collect();
    assert_eq!(states, ["SYN_SENT", "SYN_RECV", "ESTABLISHED", "TIME_WAIT"]);
    assert!(!all[0].status.has(Status::SEEN_REPLY));
    assert!(all[2].status.has(Status::ASSURED));
    assert_eq!(all[3].mark, 3);
    assert!(all[3].is_dnat());
    assert!(all[6].orig.icmp.is_some() && all[6].orig.sport.is_none());
    assert_eq!(all[0].orig_packets, None);
}

#[test]
fn other_protocols_keep_their_state_and_keys() {
    let sctp = parse_line(
        "ipv4     2 sctp     132 3 ESTABLISHED src=192.0.2.1 dst=192.0.2.2 sport=5000 dport=5001 \
         src=192.0.2.2 dst=192.0.2.1 sport=5001 dport=5000 [ASSURED] mark=0 zone=0 use=2",
    )
    .unwrap();
    assert_eq!(sctp.state, Some(State::Other("ESTABLISHED".into())));
    let gre = parse_line(
        "ipv4     2 gre      47 179 src=192.0.2.1 dst=192.0.2.2 srckey=0x0 dstkey=0x1a \
         src=192.0.2.2 dst=192.0.2.1 srckey=0x1a dstkey=0x0 [ASSURED] mark=0 zone=0 use=2",
    )
    .unwrap();
    assert_eq!((gre.orig.sport, gre.orig.dport), (Some(0), Some(0x1a)));
    let unknown = parse_line(
        "ipv4     2 unknown  2 579 src=192.0.2.1 dst=224.0.0.1 [UNREPLIED] src=224.0.0.1 \
         dst=192.0.2.1 mark=0 zone=0 use=2",
    )
    .unwrap();
    assert_eq!(unknown.proto, Proto(2));
}

/// Words the format is made of, to build near-miss lines from.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ipv4".to_string()),
        Just("ipv6".to_string()),
        Just("2".to_string()),
        Just("tcp".to_string()),
        Just("6".to_string()),
        Just("[UNREPLIED]".to_string()),
        Just("[ASSURED]".to_string()),
        Just("ESTABLISHED".to_string()),
        Just("src=".to_string()),
        Just("src=::1".to_string()),
        Just("dst=10.0.0.1".to_string()),
        Just("sport=99999".to_string()),
        Just("dport=80".to_string()),
        Just("id=-1".to_string()),
        Just("packets=18446744073709551616".to_string()),
        Just("srckey=0xzz".to_string()),
        Just("=".to_string()),
        "[a-z=0-9.:\\[\\]]{0,12}".prop_map(|s| s),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("regressions"))), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        if let Err(e) = parse(&text) {
            prop_assert!(e.line >= 1 && e.line <= text.lines().count());
        }
    }

    #[test]
    fn line_soup_never_panics(lines in prop::collection::vec(prop::collection::vec(piece(), 0..16), 0..8)) {
        let text: String = lines.iter().map(|l| l.join(" ") + "\n").collect();
        if let Err(e) = parse(&text) {
            prop_assert!(e.line >= 1 && e.line <= text.lines().count());
        }
    }

    #[test]
    fn cut_fixture_lines_never_panic(line in 0usize..10, cut in 0usize..400, old in any::<bool>()) {
        let src = if old { OLD } else { MODERN };
        let lines: Vec<&str> = src.lines().collect();
        let l = lines[line % lines.len()];
        let mut at = cut.min(l.len());
        while !l.is_char_boundary(at) {
            at -= 1;
        }
        let _ = parse_line(&l[..at]);
    }
}
