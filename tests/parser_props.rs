//! Property tests of the save-format parser and writer:
//!
//! (a) no input makes `ruleset::parse` panic (arbitrary text, arbitrary bytes read lossily, and
//!     line soup built from the format's own pieces: CRLF, quotes, backslashes, brackets, huge
//!     numbers), for both families; an error names a line that exists; whatever parses is written
//!     back as text that parses to the same model, and writing is then a fixed point;
//! (b) generated rule sets (random tables, chains, policies, u64 counters, comments, and rules
//!     made of words with spaces, quotes and backslashes quoted by `words::join`) round-trip:
//!     `parse(write(rs)) == rs`, and `write` is a fixed point;
//! (c) `words::split(words::join(ws))` gives back `ws` for any word list.
//!
//! 256 cases per property by default (set PROPTEST_CASES for more). Failures are not persisted to
//! files: turn a shrunk counter-example into a plain `#[test]` at the bottom instead.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::cli::rules::listing;
use nfscope::ruleset::save::{SaveOptions, write};
use nfscope::ruleset::summary::columns;
use nfscope::ruleset::words::{join, split};
use nfscope::ruleset::{Chain, Counters, Family, Rule, Ruleset, Table, builtin_chains, parse};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select, subsequence};
use proptest::test_runner::TestCaseError;

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

// ---------------------------------------------------------------------------------------------
// (a) Anything at all.

/// Pieces of the save format, right and wrong, for building lines that reach deep into the parser.
const FRAGMENTS: &[&str] = &[
    "*filter",
    "*nat",
    "*raw",
    "*mangle",
    "*security",
    "*weird",
    "*",
    "* ",
    "COMMIT",
    ":INPUT",
    ":OUTPUT",
    ":FORWARD",
    ":PREROUTING",
    ":POSTROUTING",
    ":X",
    ":fw-open",
    ":",
    "ACCEPT",
    "DROP",
    "-",
    "[0:0]",
    "[1:2]",
    "[4294967296:4294967297]",
    "[18446744073709551615:18446744073709551615]",
    "[18446744073709551616:0]",
    "[-1:0]",
    "[+1:2]",
    "[1:2",
    "1:2]",
    "[:]",
    "[]",
    "]",
    "[",
    "-A",
    "-I",
    "-N",
    "-P",
    "-D",
    "--append",
    "--insert",
    "--new-chain",
    "--policy",
    "INPUT",
    "FORWARD",
    "X",
    "0",
    "1",
    "2",
    "3",
    "99999999999999999999999999",
    "-j",
    "-g",
    "-m",
    "comment",
    "--comment",
    "\"",
    "'",
    "\\",
    "\"a b\"",
    "'c d'",
    "\"it\\'s \\\"q\\\" \\\\\"",
    "\\\"",
    "!",
    "-p",
    "tcp",
    "-s",
    "! -s",
    "-f",
    "-c",
    "--set-counters",
    "--dport",
    "22",
    "#",
    "# a comment",
    "\t",
    "\r",
    "\u{3000}",
    "\u{85}",
    "é",
    "\u{0}",
];

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(FRAGMENTS).prop_map(String::from),
        1 => "[ -~]{0,12}",
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => "[0-9]{19,40}",
        1 => any::<String>(),
    ]
}

/// Lines of fragments, joined by blanks or nothing, ended by LF, CRLF, a lone CR or nothing.
fn line_soup() -> impl Strategy<Value = String> {
    let line = (
        vec((fragment(), select(&["", " ", "  ", "\t"][..])), 0..7),
        select(&["\n", "\r\n", "\r", "", "\n\n"][..]),
    )
        .prop_map(|(parts, end)| {
            let mut s: String = parts.into_iter().map(|(f, sep)| f + sep).collect();
            s.push_str(end);
            s
        });
    vec(line, 0..24).prop_map(|lines| lines.concat())
}

/// The bundled and test rule sets, to mutate.
const CANONICAL: &[&str] = &[
    include_str!("../assets/demo-v4.rules"),
    include_str!("../assets/demo-v6.rules"),
    include_str!("data/all-tables-v4.rules"),
    include_str!("data/all-tables-v6.rules"),
    include_str!("data/kube-proxy-sample.rules"),
];

/// One small damage to a valid text: most inputs that fail in real life are nearly right.
#[derive(Debug, Clone)]
enum Mutation {
    InsertLine(Index, String),
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    InsertText(Index, Index, String),
    DeleteText(Index, Index, usize),
    Crlf,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), fragment()).prop_map(|(i, f)| Mutation::InsertLine(i, f)),
        any::<Index>().prop_map(Mutation::DeleteLine),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<Index>(), any::<Index>(), fragment())
            .prop_map(|(l, c, f)| Mutation::InsertText(l, c, f)),
        (any::<Index>(), any::<Index>(), 1usize..6)
            .prop_map(|(l, c, n)| Mutation::DeleteText(l, c, n)),
        Just(Mutation::Crlf),
    ]
}

fn mutate(text: &str, muts: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.split('\n').map(String::from).collect();
    for m in muts {
        let n = lines.len();
        match m {
            Mutation::InsertLine(i, f) => lines.insert(i.index(n + 1), f.clone()),
            Mutation::DeleteLine(i) if n > 0 => {
                lines.remove(i.index(n));
            }
            Mutation::DuplicateLine(i) if n > 0 => {
                let l = lines[i.index(n)].clone();
                lines.insert(i.index(n), l);
            }
            Mutation::SwapLines(a, b) if n > 0 => lines.swap(a.index(n), b.index(n)),
            Mutation::InsertText(l, c, f) if n > 0 => {
                let line = &mut lines[l.index(n)];
                let at: Vec<usize> = line
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain([line.len()])
                    .collect();
                line.insert_str(at[c.index(at.len())], f);
            }
            Mutation::DeleteText(l, c, k) if n > 0 => {
                let line = &mut lines[l.index(n)];
                let chars: Vec<char> = line.chars().collect();
                let from = c.index(chars.len() + 1);
                let to = (from + k).min(chars.len());
                *line = chars[..from].iter().chain(&chars[to..]).collect();
            }
            Mutation::Crlf => {
                for l in &mut lines {
                    l.push('\r');
                }
            }
            _ => {}
        }
    }
    lines.join("\n")
}

fn mutated_text() -> impl Strategy<Value = String> {
    let base = prop_oneof![
        select(CANONICAL).prop_map(String::from),
        ruleset().prop_map(|rs| write(&rs, SaveOptions::default())),
    ];
    (base, vec(mutation(), 0..4)).prop_map(|(b, m)| mutate(&b, &m))
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => any::<String>(),
        1 => vec(any::<u8>(), 0..400).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => line_soup(),
        2 => mutated_text(),
    ]
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// What must hold for any input text.
fn check_any_text(text: &str) -> Result<(), TestCaseError> {
    for family in Family::ALL {
        match parse(text, family) {
            Ok(rs) => {
                let written = write(&rs, SaveOptions::default());
                let again = parse(&written, family).map_err(|e| {
                    fail(format!(
                        "accepted input, but its save output does not parse: {e}\ninput: {text:?}\noutput: {written:?}"
                    ))
                })?;
                prop_assert_eq!(&again, &rs, "output: {:?}", written);
                prop_assert_eq!(write(&again, SaveOptions::default()), written);
                // What the faces do with an accepted rule set must not panic either.
                let _ = listing(&rs, false);
                let _ = listing(&rs, true);
                for r in rs
                    .tables
                    .iter()
                    .flat_map(|t| &t.chains)
                    .flat_map(|c| &c.rules)
                {
                    let _ = columns(r, family);
                }
                serde_json::to_string(&rs).map_err(|e| fail(e.to_string()))?;
            }
            Err(e) => {
                let lines = text.lines().count();
                prop_assert!(
                    (1..=lines).contains(&e.line),
                    "error on line {} of a {}-line text: {}",
                    e.line,
                    lines,
                    e
                );
                let shown = e.to_string();
                let prefix = format!("line {}: ", e.line);
                prop_assert!(shown.starts_with(&prefix), "{}", shown);
                prop_assert!(!e.message.trim().is_empty());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_input_panics_and_errors_name_a_real_line(text in any_text()) {
        check_any_text(&text)?;
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Generated rule sets.

/// Words that mean something to nfscope, and words that need quoting.
const WORDS: &[&str] = &[
    "-p",
    "tcp",
    "udp",
    "!",
    "-s",
    "10.0.0.0/8",
    "-d",
    "2001:db8::/32",
    "-i",
    "eth0",
    "-o",
    "lo+",
    "-f",
    "-m",
    "conntrack",
    "--ctstate",
    "RELATED,ESTABLISHED",
    "multiport",
    "--dports",
    "80,443",
    "--dport",
    "22",
    "comment",
    "--comment",
    "-j",
    "-g",
    "ACCEPT",
    "DROP",
    "RETURN",
    "LOG",
    "--log-prefix",
    "-c",
    "--unknown",
    "",
    " ",
    "two words",
    "say \"hi\"",
    "it's",
    "back\\slash",
    "\\",
    "\"",
    "'",
    "ends with space ",
    " starts with space",
    "tab\there",
    "cr\rhere",
    "#not-a-comment",
    "[1:2]",
    "*filter",
    "COMMIT",
    "-A",
    "ünïcödé",
    "\u{3000}ideographic space",
    "-- ",
];

/// Whole phrases, so that the structured view meets real shapes (inline counters included).
const PHRASES: &[&[&str]] = &[
    &["-c", "10", "20"],
    &["--set-counters", "18446744073709551615", "0"],
    &[
        "-m",
        "comment",
        "--comment",
        "a \"quoted\" comment with \\ and '",
    ],
    &["!", "-s", "192.0.2.0/24"],
    &["-p", "tcp", "!", "--dport", "22"],
    &["-g", "TARGET-CHAIN"],
    &["-j", "LOG", "--log-prefix", "-> in: "],
    &["-j", "DNAT", "--to-destination", "[2001:db8::1]:80"],
];

/// A word with no newline (the format is one rule per line, and iptables-save never prints one).
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(WORDS).prop_map(String::from),
        2 => "[a-zA-Z0-9 \"'\\\\!#:/.,\\[\\]-]{0,12}",
        // Anything but a line break and NUL (refused by design: iptables-restore cuts there).
        1 => "[^\n\u{0}]{0,8}",
    ]
}

fn rule_words() -> impl Strategy<Value = Vec<String>> {
    let phrase = prop_oneof![
        4 => word().prop_map(|w| vec![w]),
        1 => select(PHRASES).prop_map(|p| p.iter().map(|w| w.to_string()).collect::<Vec<_>>()),
    ];
    vec(phrase, 0..10).prop_map(|ps| ps.concat())
}

fn counters() -> impl Strategy<Value = Counters> {
    prop_oneof![
        Just(Counters::default()),
        (any::<u64>(), any::<u64>()).prop_map(|(p, b)| Counters::new(p, b)),
        (0u64..1000, 0u64..100_000).prop_map(|(p, b)| Counters::new(p, b)),
    ]
}

fn rule() -> impl Strategy<Value = Rule> {
    (rule_words(), proptest::option::of(counters())).prop_map(|(words, c)| {
        Rule::from_text(&join(&words), c).expect("joined words always split")
    })
}

/// A `#` line as the parser keeps it (no newline, no trailing blanks).
fn comment() -> impl Strategy<Value = String> {
    prop_oneof![
        "#[ -~]{0,24}",
        "#[^\n\u{0}]{0,12}",
        Just(
            "# Generated by iptables-save v1.8.9 (nf_tables) on Sun Nov 22 05:07:29 2026"
                .to_string()
        ),
    ]
    .prop_map(|c| c.trim_end().to_string())
}

/// A user chain name: 1 to 28 bytes, no blank, not starting with `-`.
fn chain_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_.:#*!\\[\\]\"'\\\\-]{1,28}",
        "[a-zé]{1,9}",
        Just("KUBE-SVC-ERIFXISQEP7F7OF4".to_string()),
        Just("fw-open".to_string()),
    ]
    .prop_filter("chain names do not start with -", |n| !n.starts_with('-'))
}

/// Everything a chain has besides its name: a flag (built-in chains: included? chains of an
/// unknown table: has a policy?), the policy, policy counters and rules.
fn chain_body() -> impl Strategy<Value = (bool, &'static str, Counters, Vec<Rule>)> {
    (
        any::<bool>(),
        select(&["ACCEPT", "DROP"][..]),
        counters(),
        vec(rule(), 0..5),
    )
}

const TABLES: &[&str] = &[
    "raw", "mangle", "nat", "filter", "security", "custom", "x_y",
];

fn table(name: &'static str) -> impl Strategy<Value = Table> {
    let builtins: Vec<&'static str> = builtin_chains(name).to_vec();
    let n = builtins.len();
    (
        Just(builtins).prop_shuffle(),
        vec(chain_body(), n),
        vec((chain_name(), chain_body()), 0..4),
        vec(comment(), 0..3),
        vec(comment(), 0..3),
    )
        .prop_map(move |(order, bodies, users, leading, inner)| {
            let mut t = Table::new(name);
            t.leading_comments = leading;
            t.inner_comments = inner;
            for (chain, (include, policy, counters, rules)) in order.iter().zip(bodies) {
                if include {
                    t.chains.push(Chain {
                        name: chain.to_string(),
                        policy: Some(policy.to_string()),
                        counters,
                        rules,
                    });
                }
            }
            let known = !order.is_empty();
            for (chain, (has_policy, policy, counters, rules)) in users {
                if order.contains(&chain.as_str()) || t.chain(&chain).is_some() {
                    continue;
                }
                let policy = (!known && has_policy).then(|| policy.to_string());
                // User chains have `[0:0]`; only chains with a policy keep counters.
                let counters = if policy.is_some() {
                    counters
                } else {
                    Counters::default()
                };
                t.chains.push(Chain {
                    name: chain,
                    policy,
                    counters,
                    rules,
                });
            }
            t
        })
}

fn ruleset() -> impl Strategy<Value = Ruleset> {
    let tables = subsequence(TABLES.to_vec(), 0..=TABLES.len())
        .prop_shuffle()
        .prop_flat_map(|names| names.into_iter().map(table).collect::<Vec<_>>());
    (select(&Family::ALL[..]), tables, vec(comment(), 0..3)).prop_map(
        |(family, tables, trailing)| Ruleset {
            family,
            tables,
            trailing_comments: trailing,
        },
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn generated_rule_sets_round_trip(rs in ruleset()) {
        let text = write(&rs, SaveOptions::default());
        let parsed = parse(&text, rs.family)
            .map_err(|e| fail(format!("{e}\n--- written text ---\n{text}")))?;
        prop_assert_eq!(&parsed, &rs, "written text:\n{}", text);
        prop_assert_eq!(write(&parsed, SaveOptions::default()), text);
    }

    // (c)
    #[test]
    fn split_undoes_join(ws in vec(any::<String>(), 0..8)) {
        let joined = join(&ws);
        let back: Vec<String> = split(&joined)
            .map_err(|e| fail(format!("{e}: {joined:?}")))?
            .into_iter()
            .map(|w| w.text)
            .collect();
        prop_assert_eq!(back, ws, "joined: {:?}", joined);
    }

    #[test]
    fn split_undoes_join_for_format_words(ws in vec(word(), 0..8)) {
        let joined = join(&ws);
        let back: Vec<String> = split(&joined)
            .map_err(|e| fail(format!("{e}: {joined:?}")))?
            .into_iter()
            .map(|w| w.text)
            .collect();
        prop_assert_eq!(back, ws, "joined: {:?}", joined);
    }
}

// ---------------------------------------------------------------------------------------------
// Counter-examples found by the properties above, kept as plain tests.

/// Found by `generated_rule_sets_round_trip`: a rule with a `[p:b]` prefix and inline `-c`
/// counters came back with the inline counters. Inline counters now win at parse time, as in
/// iptables-restore, so the model and the written line agree.
#[test]
fn prefix_and_inline_counters_round_trip() {
    let rule = Rule::from_text("-c 10 20", Some(Counters::new(8, 9))).unwrap();
    assert_eq!(rule.counters, Some(Counters::new(10, 20)));
    let mut t = Table::new("custom");
    t.chains.push(Chain {
        name: "'".into(),
        policy: None,
        counters: Counters::default(),
        rules: vec![rule],
    });
    let rs = Ruleset {
        family: Family::V4,
        tables: vec![t],
        trailing_comments: Vec::new(),
    };
    let text = write(&rs, SaveOptions::default());
    assert_eq!(text, "*custom\n:' - [0:0]\n-A ' -c 10 20\nCOMMIT\n");
    assert_eq!(parse(&text, Family::V4).unwrap(), rs);
}
