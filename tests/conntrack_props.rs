//! Property tests of the conntrack text parser and the filter language:
//!
//! (a) no input makes `procfs::parse_proc` panic (arbitrary text, and line soup built from the
//!     format's own pieces: both layouts' prefixes, tuples, counters, flags, huge and negative
//!     numbers, IPv6 addresses); every error names a line that exists, at most one error per
//!     line, and entries plus errors never outnumber the non-blank lines;
//! (b) no input makes `filter::Filter::parse` panic, and an error's column lies within the
//!     expression (and the message names it);
//! (c) over a synthetic table, the compiled filter obeys its own algebra: `a b` holds exactly
//!     when `a` and `b` do, `key!=v` and `!key=v` exactly when `key=v` does not, `!flag` exactly
//!     when `flag` does not, and `key=v1,v2` exactly when `key=v1` or `key=v2` does.
//!
//! 256 cases per property by default (set PROPTEST_CASES for more). Failures are not persisted to
//! files: turn a shrunk counter-example into a plain `#[test]` at the bottom instead.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::conntrack::filter::Filter;
use nfscope::conntrack::procfs::parse_proc;
use nfscope::conntrack::{Entry, synth};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use std::sync::LazyLock;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 256;
    }
    c
}

/// Pieces of both layouts, right and wrong, for building lines that reach deep into the parser.
const FRAGMENTS: &[&str] = &[
    "ipv4",
    "ipv6",
    "2",
    "10",
    "tcp",
    "6",
    "udp",
    "17",
    "icmp",
    "1",
    "icmpv6",
    "58",
    "gre",
    "47",
    "unknown",
    "132",
    "431999",
    "-5",
    "99999999999999999999",
    "ESTABLISHED",
    "SYN_SENT",
    "TIME_WAIT",
    "LISTEN",
    "established",
    "src=10.0.0.1",
    "dst=10.0.0.2",
    "src=::1",
    "dst=::2",
    "src=2001:0db8:0000:0000:0000:0000:0000:0001",
    "src=",
    "dst=",
    "src=300.1.1.1",
    "sport=22",
    "dport=40000",
    "sport=65536",
    "dport=-1",
    "type=8",
    "code=0",
    "id=1",
    "id=70000",
    "srckey=0x0",
    "dstkey=0xffffffffff",
    "packets=1",
    "bytes=18446744073709551616",
    "[UNREPLIED]",
    "[ASSURED]",
    "[OFFLOAD]",
    "[",
    "]",
    "[ASSURED",
    "mark=0",
    "mark=0x10",
    "mark=x",
    "zone=0",
    "zone=65536",
    "zone-orig=1",
    "use=2",
    "secctx=a",
    "helper=ftp",
    "delta-time=5",
    "timestamp=99999999999999999999",
    "=",
    "=x",
    "é",
    "\t",
    "\r",
    " ",
];

fn soup_line() -> impl Strategy<Value = String> {
    vec(select(FRAGMENTS), 0..30).prop_map(|ws| ws.join(" "))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*(\n\\PC*){0,5}") {
        check(&text);
    }

    #[test]
    fn line_soup_never_panics(lines in vec(soup_line(), 0..12)) {
        check(&lines.join("\n"));
    }
}

/// Pieces of filter expressions, right and wrong.
const FILTER_FRAGMENTS: &[&str] = &[
    "proto",
    "state",
    "ctstate",
    "src",
    "dst",
    "addr",
    "sport",
    "dport",
    "port",
    "mark",
    "zone",
    "family",
    "timeout",
    "packets",
    "helper",
    "assured",
    "unreplied",
    "dnat",
    "prot",
    "!",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "~",
    ",",
    "/",
    "-",
    ":",
    "tcp",
    "ESTABLISHED",
    "INVALID",
    "10.0.0.0",
    "8",
    "33",
    "::1",
    "2001:db8::",
    "22",
    "65535",
    "65536",
    "0x",
    "0xff",
    "99999999999999999999",
    "ipv4",
    "é",
    "ß",
    " ",
    "\t",
];

fn filter_soup() -> impl Strategy<Value = String> {
    vec(select(FILTER_FRAGMENTS), 0..16).prop_map(|ws| ws.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn filter_parsing_never_panics(expr in "\\PC{0,40}") {
        check_filter(&expr);
    }

    #[test]
    fn filter_soup_never_panics(expr in filter_soup()) {
        check_filter(&expr);
    }
}

fn check_filter(expr: &str) {
    match Filter::parse(expr) {
        Ok(f) => assert_eq!(f.source(), expr.trim()),
        Err(e) => {
            let chars = expr.chars().count();
            assert!(
                e.column >= 1 && e.column <= chars,
                "{e}: column {} of {chars}",
                e.column
            );
            assert!(
                e.len >= 1 && e.column + e.len - 1 <= chars,
                "{e}: underline past the end"
            );
            assert!(e.message.contains(&format!("column {}", e.column)), "{e}");
        }
    }
}

/// Valid `key=value` terms (each also negatable and combinable into lists).
const TERMS: &[(&str, &str)] = &[
    ("proto", "tcp"),
    ("proto", "udp"),
    ("proto", "icmp"),
    ("proto", "50"),
    ("state", "ESTABLISHED"),
    ("state", "TIME_WAIT"),
    ("state", "NEW"),
    ("ctstate", "NEW"),
    ("ctstate", "ESTABLISHED"),
    ("src", "10.0.0.0/24"),
    ("src", "10.0.0.1"),
    ("dst", "198.51.100.0/25"),
    ("addr", "203.0.113.1"),
    ("rsrc", "10.0.1.0/24"),
    ("addr", "2001:db8::/32"),
    ("sport", "1024-30000"),
    ("dport", "443"),
    ("dport", "0:1023"),
    ("port", "53"),
    ("mark", "0x10"),
    ("mark", "0/0xf0"),
    ("zone", "1"),
    ("family", "ipv6"),
    ("timeout", "100"),
];
const FLAGS: &[&str] = &[
    "assured",
    "unreplied",
    "seen_reply",
    "dnat",
    "snat",
    "nat",
    "dying",
];
const COMPARISONS: &[&str] = &[
    "timeout<30",
    "timeout>=300",
    "packets>10",
    "bytes<=5000",
    "dport<1024",
    "sport>60000",
    "zone<1",
];

static WORLD: LazyLock<Vec<Entry>> = LazyLock::new(|| synth::entries(600));

fn hits(expr: &str) -> Vec<bool> {
    let f = Filter::parse(expr).unwrap_or_else(|e| panic!("{expr:?}: {e}"));
    WORLD.iter().map(|e| f.matches(e)).collect()
}

fn any_term() -> impl Strategy<Value = String> {
    prop_oneof![
        select(TERMS).prop_map(|(k, v)| format!("{k}={v}")),
        select(FLAGS).prop_map(str::to_string),
        select(COMPARISONS).prop_map(str::to_string),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..config() })]

    #[test]
    fn terms_combine_by_and(a in any_term(), b in any_term()) {
        let (ha, hb, both) = (hits(&a), hits(&b), hits(&format!("{a} {b}")));
        for i in 0..WORLD.len() {
            prop_assert_eq!(both[i], ha[i] && hb[i], "{} {} on entry {}", a, b, i);
        }
    }

    #[test]
    fn negation_is_complement(t in select(TERMS), f in select(FLAGS)) {
        let (k, v) = t;
        let pos = hits(&format!("{k}={v}"));
        let ne = hits(&format!("{k}!={v}"));
        let bang = hits(&format!("!{k}={v}"));
        let (fl, nfl) = (hits(f), hits(&format!("!{f}")));
        for i in 0..WORLD.len() {
            prop_assert_eq!(ne[i], !pos[i]);
            prop_assert_eq!(bang[i], !pos[i]);
            prop_assert_eq!(nfl[i], !fl[i]);
        }
    }

    #[test]
    fn lists_are_any_of((a, b) in select(TERMS).prop_flat_map(|a| {
        let same: Vec<(&str, &str)> = TERMS.iter().copied().filter(|t| t.0 == a.0).collect();
        (Just(a), select(same))
    })) {
        let list = hits(&format!("{}={},{}", a.0, a.1, b.1));
        let (ha, hb) = (hits(&format!("{}={}", a.0, a.1)), hits(&format!("{}={}", b.0, b.1)));
        for i in 0..WORLD.len() {
            prop_assert_eq!(list[i], ha[i] || hb[i]);
        }
    }
}

#[test]
fn the_terms_are_not_vacuous() {
    for (k, v) in TERMS {
        let n = hits(&format!("{k}={v}")).iter().filter(|h| **h).count();
        if *k != "timeout" {
            assert!(n > 0, "{k}={v} matches nothing in the synthetic world");
        }
        assert!(n < WORLD.len(), "{k}={v} matches everything");
    }
}

fn check(text: &str) {
    let (entries, errors) = parse_proc(text);
    let lines = text.lines().count();
    let nonblank = text
        .lines()
        .filter(|l| l.split_ascii_whitespace().next().is_some())
        .count();
    assert!(entries.len() + errors.len() <= nonblank);
    let mut last = 0;
    for e in &errors {
        assert!(e.line >= 1 && e.line <= lines, "{e} of {lines} lines");
        assert!(e.line > last, "one error per line, in order");
        last = e.line;
        assert!(!e.message.is_empty());
    }
}

#[test]
fn a_good_line_among_bad_ones_survives() {
    let text = "tcp 6\n\
                udp 17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 use=1\n\
                [ASSURED";
    let (entries, errors) = parse_proc(text);
    assert_eq!(entries.len(), 1);
    assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 3]);
}
