//! The command line as a user meets it: the real binary, its output, its messages and its exit
//! statuses (docs/cli.md), and the JSON schema (docs/json.md). File-based; the one test that needs
//! the kernel source runs it as an unprivileged user inside a throwaway network namespace.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{Run, keys};
use nfscope::ruleset::{Family, Ruleset, parse};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nfscope");
const DEMO_V4: &str = include_str!("../assets/demo-v4.rules");
const DEMO_V6: &str = include_str!("../assets/demo-v6.rules");

fn command(cmd: &mut Command) -> Run {
    let out = cmd
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env("NO_COLOR", "1")
        .output()
        .expect("run nfscope");
    out.into()
}

fn nfscope<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    command(Command::new(BIN).args(args))
}

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(name)
        .display()
        .to_string()
}

fn demo(family: Family) -> Ruleset {
    match family {
        Family::V4 => parse(DEMO_V4, family).unwrap(),
        Family::V6 => parse(DEMO_V6, family).unwrap(),
    }
}

/// A directory under the system temp dir with a unique name, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let p = std::env::temp_dir().join(format!(
            "nfscope-cli-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write temp file");
        p.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// The text listing.

const HEADER: &str =
    "num   pkts bytes target     prot opt in     out    source             destination";

/// One chain of the listing: its `Chain ...` line and its rule lines.
#[derive(Debug)]
struct Listed {
    family: String,
    table: String,
    title: String,
    rules: Vec<String>,
}

/// Split a text listing into chains, checking its shape on the way.
fn chains_of(listing: &str) -> Vec<Listed> {
    let mut out: Vec<Listed> = Vec::new();
    let mut section = (String::new(), String::new());
    let mut lines = listing.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("# ") {
            let (fam, table) = rest
                .split_once(" table ")
                .unwrap_or_else(|| panic!("odd section line {line:?}"));
            section = (fam.to_string(), table.to_string());
        } else if line.starts_with("Chain ") {
            let header = lines.next().unwrap_or_default();
            // Columns are as wide as what they hold: the header's words, in order.
            assert_eq!(
                header.split_whitespace().collect::<Vec<_>>(),
                HEADER.split_whitespace().collect::<Vec<_>>(),
                "column header after {line:?}"
            );
            let mut rules = Vec::new();
            while let Some(r) = lines.next_if(|l| !l.is_empty()) {
                rules.push(r.to_string());
            }
            out.push(Listed {
                family: section.0.clone(),
                table: section.1.clone(),
                title: line.to_string(),
                rules,
            });
        } else {
            assert!(line.is_empty(), "unexpected line {line:?}");
        }
    }
    out
}

/// What a run said on standard error besides the demo's warning that its native nftables
/// table filters on the same hook as its iptables rules (a fact of the demo world).
fn said(run: &Run) -> String {
    run.stderr
        .lines()
        .filter(|l| !l.starts_with("nfscope: warning: native nftables chains also filter"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn text_listing_looks_like_iptables_list_with_line_numbers() {
    let run = nfscope(&["rules", "--demo"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        "nfscope: warning: native nftables chains also filter on input: inet fw input (policy drop)"
    );
    // The demo's native nftables table comes last, read-only, its rules as nft prints them.
    let (iptables, native) = run
        .stdout
        .split_once("# native nftables table inet fw (read-only")
        .expect("the demo's native table is listed");
    assert!(
        native.contains("Chain input (type filter hook input priority 0, policy drop)"),
        "{native}"
    );
    assert!(
        native.contains(" ct state established,related counter accept\n"),
        "{native}"
    );
    assert!(
        native.contains("# native nftables table ip6 quarantine, dormant"),
        "{native}"
    );
    let listed = chains_of(iptables);

    for family in Family::ALL {
        let rs = demo(family);
        let mine: Vec<&Listed> = listed
            .iter()
            .filter(|l| l.family == family.label())
            .collect();
        // Tables in packet order, chains in save order, every chain listed once.
        let mut tables: Vec<&str> = rs.tables.iter().map(|t| t.name.as_str()).collect();
        tables.sort_by_key(|t| nfscope::ruleset::table_rank(t));
        let expected: Vec<(String, String)> = tables
            .iter()
            .flat_map(|t| {
                rs.table(t)
                    .unwrap()
                    .chains
                    .iter()
                    .map(move |c| (t.to_string(), c.name.clone()))
            })
            .collect();
        let got: Vec<(String, String)> = mine
            .iter()
            .map(|l| {
                let name = l.title["Chain ".len()..].split(' ').next().unwrap();
                (l.table.clone(), name.to_string())
            })
            .collect();
        assert_eq!(got, expected, "{} chains", family.label());

        for l in mine {
            let table = rs.table(&l.table).unwrap();
            let name = l.title["Chain ".len()..].split(' ').next().unwrap();
            let chain = table.chain(name).unwrap();
            match &chain.policy {
                Some(p) => assert!(
                    l.title.starts_with(&format!("Chain {name} (policy {p} "))
                        && l.title.ends_with(" bytes)")
                        && l.title.contains(" packets, "),
                    "{:?}",
                    l.title
                ),
                None => assert_eq!(
                    l.title,
                    format!("Chain {name} ({} references)", table.references(name))
                ),
            }
            assert_eq!(l.rules.len(), chain.rules.len(), "rules of {}", l.title);
            for (i, (line, rule)) in l.rules.iter().zip(&chain.rules).enumerate() {
                let cols: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(cols[0], (i + 1).to_string(), "num column: {line:?}");
                if !rule.spec.target_name().is_empty() {
                    assert_eq!(cols[3], rule.spec.target_name(), "target column: {line:?}");
                }
            }
        }
    }
    // A few lines exactly as iptables prints them.
    assert!(
        run.stdout
            .contains("# IPv4 table filter\nChain INPUT (policy DROP ")
    );
    assert!(run.stdout.contains("Chain FWD_IN (1 references)\n"));
    assert!(run.stdout.contains(
        "1    93811 5162K PORTFWD    all  --  *      *      0.0.0.0/0          203.0.113.2/32     /* public address of gw01 */\n"
    ));
}

#[test]
fn exact_counters_negations_and_gotos_in_the_listing() {
    let file = data("tests/data/all-tables-v4.rules");
    let exact = nfscope(&[
        "rules", "--file", &file, "-x", "-t", "filter", "-c", "INPUT",
    ]);
    assert_eq!(exact.code, 0, "{exact:?}");
    let listed = chains_of(&exact.stdout);
    assert_eq!(listed.len(), 1, "{exact:?}");
    assert_eq!(
        listed[0].title,
        "Chain INPUT (policy DROP 5000000000 packets, 7000000000000 bytes)"
    );
    let first: Vec<&str> = listed[0].rules[0].split_whitespace().collect();
    assert_eq!(&first[..4], ["1", "4294967300", "5497558138880", "ACCEPT"]);
    // `! -s 10.0.0.0/8` and `-g IN_ICMP`.
    let neg = &listed[0].rules[2];
    assert!(neg.contains(" !10.0.0.0/8 "), "{neg:?}");
    assert!(
        listed[0]
            .rules
            .iter()
            .any(|r| r.contains(" IN_ICMP (goto) icmp ")),
        "{exact:?}"
    );

    let units = nfscope(&["rules", "--file", &file, "-t", "filter", "-c", "INPUT"]);
    assert!(
        units
            .stdout
            .contains("Chain INPUT (policy DROP 5000M packets, 7000G bytes)"),
        "{units:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// JSON.

fn set<'a>(ks: &[&'a str]) -> BTreeSet<&'a str> {
    ks.iter().copied().collect()
}

fn check_negatable(v: &Value, what: &str) {
    if v.is_null() {
        return;
    }
    assert_eq!(keys(v), set(&["negated", "value"]), "{what}: {v}");
    assert!(
        v["negated"].is_boolean() && v["value"].is_string(),
        "{what}: {v}"
    );
}

fn check_options(v: &Value, what: &str) {
    for o in v.as_array().unwrap_or_else(|| panic!("{what}: {v}")) {
        assert_eq!(keys(o), set(&["name", "negated", "values"]), "{what}: {o}");
        assert!(o["name"].as_str().unwrap().starts_with('-'), "{what}: {o}");
        assert!(o["negated"].is_boolean(), "{what}: {o}");
        assert!(
            o["values"].as_array().unwrap().iter().all(Value::is_string),
            "{what}: {o}"
        );
    }
}

/// Check a whole `--format json` document against docs/json.md and against the model.
fn check_document(doc: &Value, models: &[Ruleset]) {
    let mut top = keys(doc);
    // The native nftables tables, when the source has any (the demo's `inet fw`).
    if top.remove("native") {
        for t in doc["native"].as_array().unwrap() {
            assert_eq!(
                keys(t),
                set(&["family", "name", "dormant", "flags", "chains", "sets"]),
                "{t}"
            );
        }
    }
    assert_eq!(top, set(&["source", "families"]));
    assert!(doc["source"].is_string());
    let families = doc["families"].as_array().unwrap();
    assert_eq!(families.len(), models.len());
    let rule_keys = set(&[
        "num",
        "packets",
        "bytes",
        "text",
        "line",
        "protocol",
        "source",
        "destination",
        "in_interface",
        "out_interface",
        "fragment",
        "matches",
        "target",
    ]);
    for (fam, rs) in families.iter().zip(models) {
        assert_eq!(keys(fam), set(&["family", "tables"]));
        let label = match rs.family {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        };
        assert_eq!(fam["family"], label);
        let tables = fam["tables"].as_array().unwrap();
        assert_eq!(tables.len(), rs.tables.len());
        let mut last_rank = 0;
        for t in tables {
            assert_eq!(keys(t), set(&["name", "chains"]));
            let name = t["name"].as_str().unwrap();
            let rank = nfscope::ruleset::table_rank(name);
            assert!(rank >= last_rank, "tables out of packet order at {name}");
            last_rank = rank;
            let mt = rs.table(name).unwrap();
            let chains = t["chains"].as_array().unwrap();
            assert_eq!(chains.len(), mt.chains.len());
            for (c, mc) in chains.iter().zip(&mt.chains) {
                assert_eq!(
                    keys(c),
                    set(&["name", "policy", "packets", "bytes", "references", "rules"])
                );
                assert_eq!(c["name"], mc.name.as_str());
                assert_eq!(c["policy"].as_str(), mc.policy.as_deref());
                assert_eq!(c["packets"].as_u64(), Some(mc.counters.packets));
                assert_eq!(c["bytes"].as_u64(), Some(mc.counters.bytes));
                assert_eq!(
                    c["references"].as_u64(),
                    Some(mt.references(&mc.name) as u64)
                );
                let rules = c["rules"].as_array().unwrap();
                assert_eq!(rules.len(), mc.rules.len());
                for (i, (r, mr)) in rules.iter().zip(&mc.rules).enumerate() {
                    let ks = keys(r);
                    let what = format!("{label} {name} {} rule {}", mc.name, i + 1);
                    assert!(ks.is_superset(&rule_keys), "{what}: {r}");
                    let mut allowed = rule_keys.clone();
                    allowed.insert("extra");
                    assert!(ks.is_subset(&allowed), "{what}: unknown keys in {r}");
                    assert_eq!(r["num"].as_u64(), Some(i as u64 + 1), "{what}");
                    assert_eq!(r["packets"].as_u64(), Some(mr.packets()), "{what}");
                    assert_eq!(r["bytes"].as_u64(), Some(mr.bytes()), "{what}");
                    assert_eq!(r["text"], mr.text.as_str(), "{what}");
                    assert_eq!(
                        r["line"],
                        format!("-A {} {}", mc.name, mr.text).trim_end(),
                        "{what}"
                    );
                    for k in [
                        "protocol",
                        "source",
                        "destination",
                        "in_interface",
                        "out_interface",
                    ] {
                        check_negatable(&r[k], &format!("{what} {k}"));
                    }
                    assert!(r["fragment"].is_null() || r["fragment"]["negated"].is_boolean());
                    for m in r["matches"].as_array().unwrap() {
                        let mk = keys(m);
                        assert!(
                            mk == set(&["name", "options"])
                                || mk == set(&["name", "implicit", "options"]),
                            "{what}: {m}"
                        );
                        if mk.contains("implicit") {
                            assert_eq!(m["implicit"], true, "{what}: {m}");
                        }
                        check_options(&m["options"], &what);
                    }
                    let t = &r["target"];
                    if mr.spec.target.is_none() {
                        assert!(t.is_null(), "{what}");
                    } else {
                        assert_eq!(keys(t), set(&["kind", "name", "options"]), "{what}");
                        assert!(t["kind"] == "jump" || t["kind"] == "goto", "{what}: {t}");
                        assert_eq!(t["name"], mr.spec.target_name(), "{what}");
                        check_options(&t["options"], &what);
                    }
                    if let Some(extra) = r.get("extra") {
                        let extra = extra.as_array().unwrap();
                        assert!(!extra.is_empty(), "{what}: extra is left out when empty");
                        assert!(extra.iter().all(Value::is_string), "{what}");
                    }
                }
            }
        }
    }
}

fn json(run: &Run) -> Value {
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON: {e}\n{run:?}"))
}

#[test]
fn json_has_the_documented_shape() {
    let doc = json(&nfscope(&["rules", "--demo", "--format", "json"]));
    assert_eq!(doc["source"], "demo");
    check_document(&doc, &[demo(Family::V4), demo(Family::V6)]);

    // Big counters, negations and gotos, IPv4 and IPv6 from files.
    let (v4, v6) = (
        data("tests/data/all-tables-v4.rules"),
        data("tests/data/all-tables-v6.rules"),
    );
    let doc = json(&nfscope(&[
        "rules", "--file", &v4, "--file6", &v6, "--format", "json",
    ]));
    let models = [
        parse(&std::fs::read_to_string(&v4).unwrap(), Family::V4).unwrap(),
        parse(&std::fs::read_to_string(&v6).unwrap(), Family::V6).unwrap(),
    ];
    check_document(&doc, &models);
    assert_eq!(doc["source"], format!("file · {v4}, {v6}"));
    let rules: Vec<&Value> = doc["families"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["tables"].as_array().unwrap())
        .flat_map(|t| t["chains"].as_array().unwrap())
        .flat_map(|c| c["rules"].as_array().unwrap())
        .collect();
    assert!(
        rules
            .iter()
            .any(|r| r["packets"].as_u64() == Some(4_294_967_300))
    );
    assert!(rules.iter().any(|r| r["target"]["kind"] == "goto"));
    assert!(rules.iter().any(|r| r["source"]["negated"] == true));
    assert!(rules.iter().any(|r| {
        r["matches"].as_array().unwrap().iter().any(|m| {
            m["options"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["negated"] == true)
        })
    }));
}

#[test]
fn docs_json_example_is_what_the_binary_prints() {
    let doc = std::fs::read_to_string(data("docs/json.md")).expect("docs/json.md");
    let start = doc
        .find("```json\n")
        .expect("a ```json block in docs/json.md")
        + "```json\n".len();
    let len = doc[start..].find("```").expect("the block ends");
    let example = &doc[start..start + len];
    let run = nfscope(&[
        "rules",
        "--demo",
        "--format",
        "json",
        "--table",
        "nat",
        "--chain",
        "POSTROUTING",
        "-4",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout, example,
        "the example in docs/json.md is out of date: regenerate it with the command above it"
    );
}

#[test]
fn docs_cli_mentions_every_flag() {
    let doc = std::fs::read_to_string(data("docs/cli.md")).expect("docs/cli.md");
    for args in [
        &["--help"][..],
        &["rules", "--help"][..],
        &["conntrack", "--help"][..],
    ] {
        let help = nfscope(args);
        assert_eq!(help.code, 0, "{help:?}");
        // The option lines of clap's help: "  -t, --table <TABLE>", "      --demo", "  -4".
        let flags = help
            .stdout
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('-') && !l.starts_with("- "))
            .flat_map(|l| {
                l.split_whitespace()
                    .map(|w| w.trim_end_matches(','))
                    .take_while(|w| w.starts_with('-'))
                    .map(String::from)
                    .collect::<Vec<_>>()
            });
        for flag in flags {
            if !matches!(flag.as_str(), "--help" | "-h" | "--version" | "-V") {
                assert!(
                    doc.contains(&format!("`{flag}")),
                    "docs/cli.md does not mention {flag}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Filtering and families.

#[test]
fn table_and_chain_filter() {
    let run = nfscope(&["rules", "--demo", "--table", "nat", "--chain", "PREROUTING"]);
    assert_eq!(run.code, 0, "{run:?}");
    let listed = chains_of(&run.stdout);
    // The demo's IPv6 side has no nat table.
    assert_eq!(listed.len(), 1, "{run:?}");
    assert_eq!(
        (listed[0].family.as_str(), listed[0].table.as_str()),
        ("IPv4", "nat")
    );
    assert!(
        listed[0]
            .title
            .starts_with("Chain PREROUTING (policy ACCEPT ")
    );
    let nat = demo(Family::V4);
    let want = nat.table("nat").unwrap().chain("PREROUTING").unwrap();
    assert_eq!(listed[0].rules.len(), want.rules.len());

    // Short options, same result.
    let short = nfscope(&["rules", "--demo", "-t", "nat", "-c", "PREROUTING"]);
    assert_eq!(short.stdout, run.stdout);

    // A chain in every table that has it.
    let all_inputs = nfscope(&["rules", "--demo", "-4", "-c", "INPUT"]);
    let listed = chains_of(&all_inputs.stdout);
    let want: Vec<&str> = ["mangle", "nat", "filter"].to_vec();
    assert_eq!(
        listed.iter().map(|l| l.table.as_str()).collect::<Vec<_>>(),
        want,
        "{all_inputs:?}"
    );
    assert!(listed.iter().all(|l| l.title.starts_with("Chain INPUT ")));

    let doc = json(&nfscope(&[
        "rules",
        "--demo",
        "--format",
        "json",
        "-t",
        "nat",
        "-c",
        "PREROUTING",
    ]));
    let fams = doc["families"].as_array().unwrap();
    assert_eq!(fams[0]["tables"].as_array().unwrap().len(), 1);
    assert_eq!(fams[0]["tables"][0]["chains"].as_array().unwrap().len(), 1);
    assert_eq!(fams[0]["tables"][0]["chains"][0]["name"], "PREROUTING");
    assert_eq!(fams[1]["tables"].as_array().unwrap().len(), 0);
}

#[test]
fn one_family_with_4_or_6() {
    let v4 = nfscope(&["rules", "--demo", "-4"]);
    assert_eq!(v4.code, 0, "{v4:?}");
    assert!(v4.stdout.contains("# IPv4 table filter"));
    assert!(!v4.stdout.contains("# IPv6"), "{v4:?}");
    let v6 = nfscope(&["rules", "--demo", "-6"]);
    assert_eq!(v6.code, 0, "{v6:?}");
    assert!(v6.stdout.contains("# IPv6 table filter"));
    assert!(!v6.stdout.contains("# IPv4"), "{v6:?}");
    assert!(v6.stdout.contains("::/0"));

    let both = nfscope(&["rules", "--demo", "-4", "-6"]);
    assert_eq!(both.code, 2, "{both:?}");
    assert!(both.stderr.contains("cannot be used with"), "{both:?}");
}

// ---------------------------------------------------------------------------------------------
// The save format.

#[test]
fn save_needs_one_family_when_both_are_loaded() {
    let run = nfscope(&["rules", "--demo", "--format", "save"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    let msg = said(&run);
    assert_eq!(
        msg,
        "nfscope: --format save writes one family at a time: add -4 (for iptables-restore) or -6 (for ip6tables-restore)",
        "a sentence, not an error report"
    );

    let (v4, v6) = (
        data("tests/data/all-tables-v4.rules"),
        data("tests/data/all-tables-v6.rules"),
    );
    let files = nfscope(&["rules", "--file", &v4, "--file6", &v6, "--format", "save"]);
    assert_eq!(files.code, 2, "{files:?}");
    assert!(files.stderr.contains("add -4"), "{files:?}");

    // With -4 or -6, the demo's rule sets come out as the assets they were read from (the demo's
    // counters start at the assets' values).
    for (flag, asset) in [("-4", DEMO_V4), ("-6", DEMO_V6)] {
        let run = nfscope(&["rules", "--demo", "--format", "save", flag]);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.stdout, asset, "rules --demo --format save {flag}");
    }
    // Only --file: no -4 needed.
    let one = nfscope(&["rules", "--file", &v4, "--format", "save"]);
    assert_eq!(one.code, 0, "{one:?}");
    assert_eq!(one.stdout, std::fs::read_to_string(&v4).unwrap());
}

#[test]
fn save_of_one_chain_is_restore_input_for_that_chain() {
    let run = nfscope(&[
        "rules",
        "--demo",
        "-4",
        "--format",
        "save",
        "-t",
        "nat",
        "-c",
        "POSTROUTING",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let body: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(body.first(), Some(&"*nat"));
    assert!(body[1].starts_with(":POSTROUTING ACCEPT ["), "{run:?}");
    assert_eq!(body.last(), Some(&"COMMIT"));
    assert!(
        body[2..body.len() - 1]
            .iter()
            .all(|l| l.contains("-A POSTROUTING "))
    );
    parse(&run.stdout, Family::V4).expect("the output parses");
}

// ---------------------------------------------------------------------------------------------
// Errors.

#[test]
fn a_malformed_file_names_the_line() {
    let dir = TempDir::new("malformed");
    let text = "# written by hand\n\
                *filter\n\
                :INPUT DROP [0:0]\n\
                :FORWARD DROP [0:0]\n\
                :OUTPUT ACCEPT [0:0]\n\
                -A INPUT -i lo -j ACCEPT\n\
                -A INPUT -m comment --comment \"never closed -j ACCEPT\n\
                -A INPUT -j DROP\n\
                COMMIT\n";
    let p = dir.file("bad.rules", text);
    for args in [
        vec!["rules", "--file", &p],
        vec!["rules", "--file6", &p, "-6", "--format", "json"],
    ] {
        let run = nfscope(&args);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(run.stderr.contains("line 7"), "{args:?}: {run:?}");
        assert!(run.stderr.contains(&p), "{args:?}: the path: {run:?}");
        assert!(run.stderr.contains("never closed"), "{args:?}: {run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
    }
}

#[test]
fn a_device_or_fifo_given_as_a_file_is_refused_at_once() {
    let dir = TempDir::new("notregular");
    let fifo = dir.0.join("rules.fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .expect("mkfifo");
    let fifo = fifo.display().to_string();
    for p in ["/dev/zero", fifo.as_str()] {
        let started = std::time::Instant::now();
        let run = nfscope(&["rules", "--file", p]);
        assert_eq!(run.code, 1, "{p}: {run:?}");
        assert!(run.stderr.contains("not a regular file"), "{p}: {run:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{p}"
        );
    }
}

#[test]
fn a_missing_file_says_cannot_read() {
    let dir = TempDir::new("missing");
    let p = dir.0.join("no-such.rules").display().to_string();
    let run = nfscope(&["rules", "--file", &p]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("nfscope: IPv4: cannot read {p}")),
        "{run:?}"
    );

    // The other family is still printed; the status still says something failed.
    let good = data("tests/data/all-tables-v4.rules");
    let run = nfscope(&["rules", "--file", &good, "--file6", &p]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("nfscope: IPv6: cannot read"), "{run:?}");
    assert!(run.stdout.contains("# IPv4 table filter"), "{run:?}");
}

#[test]
fn an_unknown_table_or_chain_exits_2_with_a_sentence() {
    let run = nfscope(&["rules", "--demo", "--table", "nope"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(said(&run), "nfscope: no table nope in the rule set");
    assert!(run.stdout.trim().is_empty(), "{run:?}");

    let run = nfscope(&["rules", "--demo", "-t", "filter", "-c", "NOPE"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        said(&run),
        "nfscope: no chain NOPE in table filter in the rule set"
    );

    let run = nfscope(&["rules", "--demo", "-c", "NOPE", "--format", "save", "-4"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(said(&run), "nfscope: no chain NOPE in the rule set");
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[test]
fn usage_errors_exit_2() {
    for (args, says) in [
        (
            &["rules", "--demo", "--interval", "0"][..],
            "--interval must be between 0.1 and 3600 seconds",
        ),
        (
            &["rules", "--demo", "--interval", "soon"][..],
            "is not a number of seconds",
        ),
        (
            &["rules", "--demo", "--file", "x"][..],
            "cannot be used with",
        ),
        (
            &["rules", "--format", "yaml", "--demo"][..],
            "invalid value",
        ),
    ] {
        let run = nfscope(args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(says), "{args:?}: {run:?}");
        assert!(!run.stderr.contains("Location:"), "{args:?}: {run:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Without root, the kernel source says what to do. Run as nobody inside a throwaway network
// namespace, so that the save tools never look at this machine's own rule set.

fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// A named network namespace, deleted on drop.
struct Netns {
    ip: PathBuf,
    name: String,
}

impl Netns {
    fn new(ip: PathBuf) -> Result<Netns, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("nfscope-cli-{}-{nanos}", std::process::id());
        let out = Command::new(&ip)
            .args(["netns", "add", &name])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Netns { ip, name })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new(&self.ip)
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn without_root_the_kernel_source_says_to_run_as_root_or_use_demo() {
    if !is_root() {
        println!("skipped: needs root, to create a network namespace and drop to nobody in it");
        return;
    }
    let (Some(setpriv), Some(ip)) = (find("setpriv"), find("ip")) else {
        println!("skipped: setpriv or ip (iproute2) is not installed");
        return;
    };
    let ns = match Netns::new(ip.clone()) {
        Ok(ns) => ns,
        Err(e) => {
            println!("skipped: cannot create a network namespace: {e}");
            return;
        }
    };
    // nobody must be able to run the binary wherever the checkout lives.
    let dir = TempDir::new("nonroot");
    let bin = dir.0.join("nfscope");
    std::fs::copy(BIN, &bin).expect("copy the binary");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();

    let run = command(
        Command::new(&ip)
            .args(["netns", "exec", &ns.name])
            .arg(&setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .arg("rules"),
    );
    println!("nfscope rules as nobody in netns {}: {run:?}", ns.name);
    assert_eq!(run.code, 1, "{run:?}");
    if run.stderr.contains("needs root") {
        for family in ["IPv4", "IPv6"] {
            assert!(
                run.stderr.contains(&format!("nfscope: {family}: ")),
                "{run:?}"
            );
        }
        assert!(run.stderr.contains("run nfscope as root"), "{run:?}");
        assert!(run.stderr.contains("--demo"), "{run:?}");
        assert!(run.stderr.contains("--file"), "{run:?}");
    } else if run.stderr.contains("install the iptables package") {
        println!("iptables-save is not installed here: the sentence says to install it");
    } else {
        panic!("neither the root sentence nor the install sentence: {run:?}");
    }
    assert!(!run.stderr.contains("panicked"), "{run:?}");
}

#[test]
fn the_ui_without_a_terminal_says_what_to_use_instead() {
    // `output()` gives the child pipes, not a terminal.
    let r = nfscope(&["--demo"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("needs a terminal"), "{r:?}");
    assert!(r.stderr.contains("nfscope rules"), "{r:?}");
    assert!(
        !r.stderr.contains('\u{1b}'),
        "no colour codes into a pipe: {r:?}"
    );
}

/// `-4` runs only the IPv4 tools and `-6` only the IPv6 ones, and `--backend` runs no detection:
/// every tool is wrapped by a script that records its call, inside a throwaway namespace.
#[test]
fn one_family_runs_only_its_tools_and_backend_skips_detection() {
    use nfscope::source::Backend;
    use std::os::unix::fs::PermissionsExt;
    let Some(ns) = common::NetNs::for_test("families") else {
        return;
    };
    if !common::have_tools(Backend::Nft) {
        return;
    }
    ns.restore(
        Family::V4,
        Backend::Nft,
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.1/32 -j DROP\nCOMMIT\n",
    );
    let dir = std::env::temp_dir().join(format!("nfscope-wrap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("calls");
    for stem in ["iptables", "ip6tables"] {
        for mid in ["", "-nft", "-legacy"] {
            let name = format!("{stem}{mid}-save");
            let Some(real) = nfscope::source::kernel::find_tool(&name) else {
                continue;
            };
            let script = dir.join(&name);
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\necho \"{name} $*\" >> {}\nexec {} \"$@\"\n",
                    log.display(),
                    real.display()
                ),
            )
            .expect("write the wrapper");
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
    }
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| -> (Run, Vec<String>) {
        let _ = std::fs::remove_file(&log);
        let env_path = format!("PATH={path}");
        let mut cmd = vec!["env", env_path.as_str(), BIN];
        cmd.extend_from_slice(args);
        let r: Run = ns.command(&cmd).output().expect("run").into();
        let calls = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        (r, calls)
    };
    let (r, calls) = run(&["rules", "--format", "save", "-4"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("-A INPUT -s 192.0.2.1/32 -j DROP"),
        "{r:?}"
    );
    assert!(!calls.is_empty());
    assert!(
        calls.iter().all(|c| c.starts_with("iptables")),
        "an IPv6 tool ran for -4: {calls:#?}"
    );
    let (r, calls) = run(&["rules", "--format", "save", "-6"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        calls.iter().all(|c| c.starts_with("ip6tables")),
        "an IPv4 tool ran for -6: {calls:#?}"
    );
    // A forced backend is not detected: no `--version` call.
    let (r, calls) = run(&["--backend", "nft", "rules", "--format", "save", "-4"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        calls.iter().all(|c| !c.contains("--version")),
        "detection ran: {calls:#?}"
    );
    assert!(
        calls.iter().all(|c| c.starts_with("iptables-nft-save")),
        "{calls:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An IPv6 rule set given with --file (or an IPv4 one with --file6) is refused with a hint,
/// naming the line; text columns stay aligned for `ipv6-icmp`; `limit` reads as iptables -L
/// prints it.
#[test]
fn a_file_of_the_other_family_is_refused_and_columns_line_up() {
    let dir = std::env::temp_dir().join(format!("nfscope-fam-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let v6 = dir.join("rules.v6");
    std::fs::write(
        &v6,
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m limit --limit 5/min -j ACCEPT\n-A INPUT -p ipv6-icmp -j ACCEPT\n-A INPUT -s fd00::/8 -j DROP\nCOMMIT\n",
    )
    .expect("write");
    let r = nfscope(&["rules", "--file", v6.to_str().expect("path")]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("line 4") && r.stderr.contains("--file6"),
        "{r:?}"
    );
    let v4 = dir.join("rules.v4");
    std::fs::write(
        &v4,
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8 -j DROP\nCOMMIT\n",
    )
    .expect("write");
    let r = nfscope(&["rules", "--file6", v4.to_str().expect("path")]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("line 3") && r.stderr.contains("--file"),
        "{r:?}"
    );

    let r = nfscope(&["rules", "--file6", v6.to_str().expect("path")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("limit: avg 5/min burst 5"), "{r:?}");
    // Every row's source column starts where the header's does.
    let lines: Vec<&str> = r.stdout.lines().collect();
    let header = lines.iter().find(|l| l.starts_with("num")).expect("header");
    let at = header.find("source").expect("source");
    for l in lines.iter().filter(|l| l.starts_with(['1', '2', '3'])) {
        assert!(
            l[at..].starts_with("::/0") || l[at..].starts_with("fd00::/8"),
            "misaligned: {l:?}\n{header:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-t` keeps only the asked-for table: no `# Completed on` line of the table before it.
#[test]
fn one_table_has_no_stray_completed_line() {
    let dir = std::env::temp_dir().join(format!("nfscope-tcomm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let f = dir.join("rules.v4");
    std::fs::write(
        &f,
        "# Generated by iptables-save v1.8.9\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n# Completed on Sat Dec  5 2026\n# Generated by iptables-save v1.8.9\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n# Completed on Sat Dec  5 2026\n",
    )
    .expect("write");
    let r = nfscope(&[
        "rules",
        "--file",
        f.to_str().expect("path"),
        "-t",
        "nat",
        "--format",
        "save",
        "-4",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("# Generated by"), "{r:?}");
    assert_eq!(r.stdout.matches("# Completed on").count(), 1, "{r:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
