//! A fuzz harness on the stable toolchain: every reader of input nfscope does not control, fed
//! arbitrary bytes and structured soup by proptest, must return (an error is fine) without
//! panicking, and within a time bound per input (a guard against inputs that make a reader
//! hang or go quadratic, not a speed measurement: those are in `benches/`).
//!
//! Readers: the save-format parser (`ruleset::parse`, over the lossless decoding of any bytes),
//! the ctnetlink decoder (`conntrack::decode::entry`, `cpu_stats`, `table_stats`), the nf_tables
//! decoder (`source::nft_netlink::decode_any`, `source::nft_expr`), the tracer's register
//! machine over any native rule (`trace::nft`), the
//! /proc/net/nf_conntrack parser, the conntrack filter language, the rule editor's checker, and
//! the state files (`staging.json`, `pending.json`, `outcome.json`, `audit.log`).
//!
//! 256 cases per reader by default (PROPTEST_CASES for more); shrunk failures are kept in
//! `tests/fuzz.proptest-regressions` and replayed first.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::conntrack::{decode, filter::Filter, procfs};
use nfscope::edit::{audit, guard, state};
use nfscope::ruleset::{Family, lossless, parse};
use nfscope::source::nft_expr::{self, BitOp, CmpOp, Data, Expr, NftElem, NftSet, Verdict};
use nfscope::source::nft_netlink::NftRuleset;
use nfscope::trace::nft::Native;
use nfscope::trace::{Packet, TraceOptions, Tracer};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The most one input may take: generous, since the machine may be busy with other tests.
const BOUND: Duration = Duration::from_secs(2);

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    }
}

/// Run `f` on one input and fail when it takes longer than [`BOUND`].
fn within_bound<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    prop_assert!(took < BOUND, "{what} took {took:?} on one input");
    Ok(out)
}

/// Lines built from the save format's own pieces, so that the parser gets past its first line.
fn save_soup() -> impl Strategy<Value = String> {
    let piece = select(vec![
        "*filter",
        "*nat",
        "*mangle",
        "*raw",
        "COMMIT",
        ":INPUT ACCEPT [0:0]",
        ":INPUT DROP [18446744073709551615:1]",
        ":FOO - [0:0]",
        ":\" - [0:0]",
        "-A INPUT -j ACCEPT",
        "-A INPUT -m comment --comment \"open",
        "close\" -j DROP",
        "-A FOO -p tcp --dport 22 -j FOO",
        "[1:2] -A INPUT -s 10.0.0.0/8 -j RETURN",
        "-I INPUT 1 -j DROP",
        "-N BAR",
        "-P INPUT DROP",
        "# Table `filter' is incompatible, use 'nft' tool.",
        "# comment",
        "-A INPUT -m comment --comment x\\ y -j LOG --log-prefix \"a'b\"",
        "\u{10ff41}",
        "",
    ]);
    vec(piece, 0..40).prop_map(|l| l.join("\n"))
}

/// Netlink attributes (length, type, payload), nested now and then, after a 4-byte header.
fn tlv_soup() -> impl Strategy<Value = Vec<u8>> {
    let attr = (0u16..24, any::<bool>(), vec(any::<u8>(), 0..24), 0u8..3).prop_map(
        |(ty, nested, payload, slack)| {
            let mut a = Vec::new();
            let len = u16::try_from(4 + payload.len()).unwrap_or(4) + u16::from(slack);
            a.extend_from_slice(&len.to_ne_bytes());
            a.extend_from_slice(&(ty | if nested { 0x8000 } else { 0 }).to_ne_bytes());
            a.extend_from_slice(&payload);
            while a.len() % 4 != 0 {
                a.push(0);
            }
            a
        },
    );
    (vec(any::<u8>(), 4), vec(attr, 0..16)).prop_map(|(head, attrs)| {
        let mut out = head;
        for a in attrs {
            out.extend(a);
        }
        out
    })
}

/// One expression of any kind, with registers, lengths and data drawn small.
fn expr() -> impl Strategy<Value = Expr> {
    let reg = 0u32..26;
    let data = || vec(any::<u8>(), 0..20);
    prop_oneof![
        (reg.clone(), 0u32..4, 0u32..48, 0u32..20).prop_map(|(dreg, base, offset, len)| {
            Expr::Payload {
                dreg,
                base,
                offset,
                len,
            }
        }),
        (0u32..40, reg.clone()).prop_map(|(key, dreg)| Expr::Meta { key, dreg }),
        (0u32..30, reg.clone(), any::<Option<u8>>()).prop_map(|(key, dreg, dir)| Expr::Ct {
            key,
            dreg,
            dir
        }),
        (reg.clone(), 0u32..6, data()).prop_map(|(sreg, op, data)| Expr::Cmp {
            sreg,
            op: [
                CmpOp::Eq,
                CmpOp::Neq,
                CmpOp::Lt,
                CmpOp::Lte,
                CmpOp::Gt,
                CmpOp::Gte
            ][op as usize],
            data,
        }),
        (reg.clone(), reg.clone(), 0u32..20, data(), data()).prop_map(
            |(sreg, dreg, len, mask, xor)| {
                Expr::Bitwise {
                    sreg,
                    dreg,
                    len,
                    op: BitOp::MaskXor { mask, xor },
                }
            }
        ),
        (reg.clone(), reg.clone(), 0u32..20, 0u32..40).prop_map(|(sreg, dreg, len, n)| {
            Expr::Bitwise {
                sreg,
                dreg,
                len,
                op: BitOp::Rshift(n),
            }
        }),
        (reg.clone(), any::<bool>(), data(), data()).prop_map(|(sreg, eq, from, to)| Expr::Range {
            sreg,
            eq,
            from,
            to
        }),
        (
            reg.clone(),
            proptest::option::of(reg.clone()),
            any::<bool>()
        )
            .prop_map(|(sreg, dreg, invert)| {
                Expr::Lookup {
                    set: "s".into(),
                    sreg,
                    dreg,
                    invert,
                }
            }),
        (reg.clone(), data()).prop_map(|(dreg, v)| Expr::Immediate {
            dreg,
            data: Data::Value(v)
        }),
        (0u32..8).prop_map(|v| Expr::Immediate {
            dreg: 0,
            data: Data::Verdict(match v {
                0 => Verdict::Accept,
                1 => Verdict::Drop,
                2 => Verdict::Jump("c1".into()),
                3 => Verdict::Goto("c0".into()),
                4 => Verdict::Return,
                5 => Verdict::Jump("nowhere".into()),
                6 => Verdict::Break,
                _ => Verdict::Continue,
            }),
        }),
        (
            any::<bool>(),
            proptest::option::of(reg.clone()),
            proptest::option::of(reg.clone())
        )
            .prop_map(|(dnat, a, p)| Expr::Nat {
                dnat,
                family: 2,
                addr_min: a,
                addr_max: None,
                proto_min: p,
                proto_max: None,
                flags: 0,
            }),
        (reg.clone(), 0u32..4, any::<u32>()).prop_map(|(dreg, result, flags)| Expr::Fib {
            dreg,
            result,
            flags
        }),
        (0u32..30, reg.clone()).prop_map(|(key, sreg)| Expr::MetaSet { key, sreg }),
        (0u32..30, reg).prop_map(|(key, sreg)| Expr::CtSet { key, sreg }),
        Just(Expr::Reject),
        Just(Expr::Other("limit".into())),
        Just(Expr::Other("numgen".into())),
    ]
}

/// An inet table `t` whose base chain `c0` (input) holds `rules[0]`, user chains `c1`... the
/// others, and a set `s` with `keys` as its elements.
fn native_ruleset(rules: Vec<Vec<Expr>>, keys: Vec<Vec<u8>>, flags: u32) -> NftRuleset {
    use nfscope::source::nft_netlink::{Hook, NftChain, NftRule, NftTable};
    let mut nft = NftRuleset::default();
    nft.tables.push(NftTable {
        family: 1,
        name: "t".into(),
        flags: 0,
        handle: 1,
    });
    for (i, body) in rules.into_iter().enumerate() {
        let name = format!("c{i}");
        nft.chains.push(NftChain {
            family: 1,
            table: "t".into(),
            name: name.clone(),
            handle: i as u64 + 1,
            hook: (i == 0).then_some(Hook {
                num: 1,
                priority: 0,
            }),
            kind: (i == 0).then(|| "filter".into()),
            policy: (i == 0).then_some(1),
            counters: None,
        });
        nft.rules.push(NftRule {
            family: 1,
            table: "t".into(),
            chain: name,
            handle: 10 + i as u64,
            exprs: Vec::new(),
            counter: None,
            body,
        });
    }
    nft.sets.push(NftSet {
        family: 1,
        table: "t".into(),
        name: "s".into(),
        flags,
        key_type: 7,
        key_len: keys.first().map_or(4, |k| k.len() as u32),
        data_type: None,
        data_len: None,
        fields: Vec::new(),
        elems: keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| NftElem {
                key,
                key_end: None,
                flags: (i % 3) as u32,
                data: (i % 2 == 0).then_some(Data::Verdict(Verdict::Accept)),
            })
            .collect(),
    });
    nft
}

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nfscope-fuzz-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    d
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_save_parser_takes_any_bytes(bytes in vec(any::<u8>(), 0..4096)) {
        let text = lossless::decode(&bytes);
        for f in Family::ALL {
            let r = within_bound("parse", || parse(&text, f))?;
            if let Err(e) = r {
                prop_assert!(e.line >= 1 && e.line <= text.lines().count().max(1), "{e}");
            }
        }
    }

    #[test]
    fn the_save_parser_takes_any_soup(text in save_soup()) {
        let r = within_bound("parse", || parse(&text, Family::V4))?;
        if let Err(e) = r {
            prop_assert!(e.line >= 1 && e.line <= text.lines().count().max(1), "{e}");
            prop_assert!(e.to_string().len() < 2000, "bounded: {e}");
        }
    }

    #[test]
    fn the_netlink_decoder_takes_any_message(bytes in prop_oneof![vec(any::<u8>(), 0..512), tlv_soup()]) {
        within_bound("decode", || {
            let _ = decode::entry(&bytes);
            let _ = decode::cpu_stats(&bytes);
            let _ = decode::table_stats(&bytes);
        })?;
    }

    #[test]
    fn the_nf_tables_decoder_takes_any_message(bytes in prop_oneof![vec(any::<u8>(), 0..512), tlv_soup()]) {
        within_bound("nft_netlink::decode_any", || {
            let _ = nfscope::source::nft_netlink::decode_any(1, &bytes);
        })?;
    }

    #[test]
    fn the_nf_tables_expression_decoder_takes_any_attributes(
        name in select(vec!["payload", "meta", "cmp", "bitwise", "byteorder", "range", "lookup",
            "immediate", "ct", "nat", "masq", "redir", "counter", "fib", "objref", "limit"]),
        bytes in prop_oneof![vec(any::<u8>(), 0..256), tlv_soup()],
    ) {
        within_bound("nft_expr::decode", || {
            let _ = nft_expr::decode(name, &bytes);
            let _ = nft_expr::decode_set(1, &bytes);
            let _ = nft_expr::decode_elems(&bytes);
        })?;
    }

    /// The tracer's register machine on any expressions the kernel could hold (registers out
    /// of range, lengths that do not fit, sets of any shape): an answer, never a panic.
    #[test]
    fn the_tracer_runs_any_native_rule(
        rules in vec(vec(expr(), 0..10), 1..4),
        keys in vec(vec(any::<u8>(), 0..20), 0..6),
        flags in any::<u32>(),
        dport in any::<u16>(),
    ) {
        let nft = native_ruleset(rules, keys, flags);
        let rs = parse("", Family::V4).unwrap();
        let native = Native::new(&nft, Family::V4, &Default::default(), &Default::default());
        let tracer = Tracer::with_native(&rs, native);
        let mut p = Packet::new(6, "192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        p.dport = Some(dport);
        within_bound("Tracer::trace over native rules", || {
            tracer.trace(&p, &TraceOptions::default())
        })?;
    }

    #[test]
    fn the_proc_parser_takes_any_bytes(bytes in vec(any::<u8>(), 0..4096)) {
        let text = String::from_utf8_lossy(&bytes);
        within_bound("parse_proc", || procfs::parse_proc(&text))?;
    }

    #[test]
    fn the_filter_language_takes_any_text(expr in "\\PC{0,200}") {
        let _ = within_bound("Filter::parse", || Filter::parse(&expr))?;
    }

    #[test]
    fn the_editors_checker_takes_any_text(text in "\\PC{0,300}", chain in "\\PC{0,40}") {
        let chains = vec!["INPUT".to_string(), chain.clone()];
        within_bound("rule_problem", || {
            let _ = nfscope::tui::editor::rule_problem(&text, &chains);
            let _ = nfscope::tui::editor::chain_name_problem(&chain);
        })?;
    }

    #[test]
    fn the_state_files_take_any_bytes(bytes in vec(any::<u8>(), 0..2048), json in "\\{\\PC{0,200}\\}") {
        let dir = temp("state");
        for content in [bytes.as_slice(), json.as_bytes()] {
            for name in ["staging.json", "pending.json", "outcome.json", "audit.log"] {
                std::fs::write(dir.join(name), content).unwrap();
            }
            within_bound("state files", || {
                let _ = state::load(&dir.join("staging.json"));
                let _ = state::take_saved(&dir.join("staging.json"), "kernel:net1");
                let _ = guard::read_pending(&dir);
                let _ = guard::status(&dir);
                let _ = guard::last_outcome(&dir);
                let _ = audit::read(&dir);
            })?;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
