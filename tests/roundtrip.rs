//! Round trips through the real binary: `nfscope rules --format save --file X` must reproduce every
//! line of X (chain lines, rule lines with their counters, `*table` and COMMIT) in the same order
//! within each table, and what it prints must parse back to the same model. Also checks that the
//! test data keeps covering what the acceptance criterion names (all five tables, IPv6, counters
//! above 2^32, quoted comments, negations, `-g`, at least 20 match modules and 15 targets), so
//! the coverage cannot shrink without a test noticing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::ruleset::save::{self, SaveOptions};
use nfscope::ruleset::{Family, Ruleset, TargetKind, parse};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nfscope");

/// Every rule set the round trip covers: the two demo assets and every `tests/data/*.rules`.
fn rule_files() -> Vec<(PathBuf, Family)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![
        (root.join("assets/demo-v4.rules"), Family::V4),
        (root.join("assets/demo-v6.rules"), Family::V6),
    ];
    let mut data: Vec<PathBuf> = std::fs::read_dir(root.join("tests/data"))
        .expect("tests/data exists")
        .map(|e| e.expect("readable tests/data entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    data.sort();
    for p in data {
        files.push((p.clone(), family_of(&p)));
    }
    files
}

/// `*-v6.rules` (or a file saved by ip6tables-save) is IPv6; everything else IPv4.
fn family_of(p: &Path) -> Family {
    let name = p.file_name().unwrap_or_default().to_string_lossy();
    let text = std::fs::read_to_string(p).unwrap_or_default();
    if name.contains("v6") || text.contains("by ip6tables") {
        Family::V6
    } else {
        Family::V4
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// `nfscope rules --format save --file X` (or `--file6 X -6`); stdout, after checking success.
fn save_through_binary(p: &Path, family: Family) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["rules", "--format", "save"]);
    match family {
        Family::V4 => cmd.arg("--file").arg(p),
        Family::V6 => cmd.arg("--file6").arg(p).arg("-6"),
    };
    let out = cmd.output().expect("run nfscope");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "nfscope rules --format save on {} exited with {}: {stderr}",
        p.display(),
        out.status
    );
    assert!(
        stderr.trim().is_empty(),
        "unexpected stderr for {}: {stderr}",
        p.display()
    );
    String::from_utf8(out.stdout).expect("save output is UTF-8")
}

/// The non-comment lines of a save text, grouped per table block (`*table` to COMMIT inclusive).
fn table_blocks(text: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            blocks.push((name.trim().to_string(), Vec::new()));
        }
        let block = blocks
            .last_mut()
            .unwrap_or_else(|| panic!("{line:?} stands outside a table"));
        block.1.push(line.to_string());
    }
    blocks
}

/// Whether `want` appears in `have` in order (other lines may come between); the first line
/// that does not, if any.
fn first_missing<'a>(want: &'a [String], have: &[String]) -> Option<&'a str> {
    let mut it = have.iter();
    want.iter()
        .find(|w| !it.any(|h| h == *w))
        .map(String::as_str)
}

#[test]
fn save_output_reproduces_every_line_of_every_file() {
    let files = rule_files();
    assert!(
        files.len() >= 5,
        "expected at least 5 rule files, found {files:?}"
    );
    for (path, family) in files {
        let input = read(&path);
        let output = save_through_binary(&path, family);
        let name = path.display();

        let want = table_blocks(&input);
        let have = table_blocks(&output);
        assert!(!want.is_empty(), "{name} has no table");
        for (table, lines) in &want {
            let (_, out_lines) = have
                .iter()
                .find(|(t, _)| t == table)
                .unwrap_or_else(|| panic!("{name}: table {table} is missing from the output"));
            if let Some(line) = first_missing(lines, out_lines) {
                panic!(
                    "{name}: table {table}: line {line:?} is missing from the output, or out of order.\noutput:\n{output}"
                );
            }
            assert_eq!(
                lines.len(),
                out_lines.len(),
                "{name}: table {table}: the output has lines the input does not"
            );
        }
        assert_eq!(
            want.iter().map(|b| &b.0).collect::<Vec<_>>(),
            have.iter().map(|b| &b.0).collect::<Vec<_>>(),
            "{name}: tables in a different order"
        );

        let before = parse(&input, family).unwrap_or_else(|e| panic!("{name}: {e}"));
        let after = parse(&output, family)
            .unwrap_or_else(|e| panic!("{name}: the save output does not parse: {e}\n{output}"));
        assert_eq!(
            before, after,
            "{name}: the save output parses to a different model"
        );
    }
}

#[test]
fn write_of_parse_is_byte_identical_for_canonical_files() {
    for (path, family) in rule_files() {
        let input = read(&path);
        let rs = parse(&input, family).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let written = save::write(&rs, SaveOptions::default());
        if written != input {
            let diff: Vec<String> = input
                .lines()
                .zip(written.lines())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .take(5)
                .map(|(i, (a, b))| format!("line {}:\n  in:  {a}\n  out: {b}", i + 1))
                .collect();
            panic!(
                "{}: write(parse(x)) differs from x ({} vs {} lines)\n{}",
                path.display(),
                input.lines().count(),
                written.lines().count(),
                diff.join("\n")
            );
        }
    }
}

/// What the rule sets cover, counted from the parsed models.
#[derive(Default, Debug)]
struct Coverage {
    tables_v4: BTreeSet<String>,
    tables_v6: BTreeSet<String>,
    /// `-m NAME` modules (implicit protocol matches not counted).
    modules: BTreeSet<String>,
    /// Targets that are not user chains: extensions and the standard verdicts.
    targets: BTreeSet<String>,
    big_rule_counter: bool,
    big_policy_counter: bool,
    comment_with_space_and_quote: bool,
    comment_with_backslash: bool,
    negated_basic: BTreeSet<&'static str>,
    negated_option: bool,
    gotos: usize,
    rules_v6: usize,
}

fn cover(cov: &mut Coverage, rs: &Ruleset) {
    const BIG: u64 = 1 << 32;
    for t in &rs.tables {
        match rs.family {
            Family::V4 => cov.tables_v4.insert(t.name.clone()),
            Family::V6 => cov.tables_v6.insert(t.name.clone()),
        };
        for c in &t.chains {
            if c.counters.packets > BIG || c.counters.bytes > BIG {
                cov.big_policy_counter |= c.policy.is_some();
            }
            for r in &c.rules {
                if rs.family == Family::V6 {
                    cov.rules_v6 += 1;
                }
                if r.packets() > BIG || r.bytes() > BIG {
                    cov.big_rule_counter = true;
                }
                let s = &r.spec;
                for m in s.matches.iter().filter(|m| !m.implicit) {
                    cov.modules.insert(m.name.to_string());
                    if m.options.iter().any(|o| o.negated) {
                        cov.negated_option = true;
                    }
                }
                if let Some(tg) = &s.target {
                    if t.chain(&tg.name).is_none_or(|ch| ch.is_builtin()) {
                        cov.targets.insert(tg.name.to_string());
                    }
                    if tg.kind == TargetKind::Goto {
                        cov.gotos += 1;
                    }
                }
                if let Some(text) = s.comment() {
                    if text.contains(' ') && text.contains('"') {
                        cov.comment_with_space_and_quote = true;
                    }
                    if text.contains('\\') {
                        cov.comment_with_backslash = true;
                    }
                }
                for (label, n) in [
                    ("-p", &s.protocol),
                    ("-s", &s.source),
                    ("-d", &s.destination),
                    ("-i", &s.in_interface),
                    ("-o", &s.out_interface),
                ] {
                    if n.as_ref().is_some_and(|n| n.negated) {
                        cov.negated_basic.insert(label);
                    }
                }
            }
        }
    }
}

#[test]
fn test_data_covers_what_the_acceptance_criterion_names() {
    let mut cov = Coverage::default();
    for (path, family) in rule_files() {
        let rs = parse(&read(&path), family).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        cover(&mut cov, &rs);
    }
    let five: BTreeSet<String> = ["raw", "mangle", "nat", "filter", "security"]
        .map(String::from)
        .into();
    assert_eq!(cov.tables_v4, five, "IPv4 tables covered");
    assert_eq!(cov.tables_v6, five, "IPv6 tables covered");
    assert!(cov.rules_v6 >= 30, "only {} IPv6 rules", cov.rules_v6);
    assert!(
        cov.modules.len() >= 20,
        "only {} match modules: {:?}",
        cov.modules.len(),
        cov.modules
    );
    assert!(
        cov.targets.len() >= 15,
        "only {} targets: {:?}",
        cov.targets.len(),
        cov.targets
    );
    assert!(cov.big_rule_counter, "no rule counter above 2^32");
    assert!(cov.big_policy_counter, "no policy counter above 2^32");
    assert!(
        cov.comment_with_space_and_quote,
        "no comment with a space and a double quote"
    );
    assert!(cov.comment_with_backslash, "no comment with a backslash");
    assert_eq!(
        cov.negated_basic,
        ["-p", "-s", "-d", "-i", "-o"].into(),
        "negated basic matches covered"
    );
    assert!(cov.negated_option, "no negated match option (! --dport)");
    assert!(cov.gotos >= 3, "only {} -g rules", cov.gotos);
    println!(
        "coverage: {} modules, {} targets, {} gotos, {} IPv6 rules",
        cov.modules.len(),
        cov.targets.len(),
        cov.gotos,
        cov.rules_v6
    );
}

/// A hand-written restore file (what people feed iptables-restore): `-N`, `-P`, `-I` with and
/// without a position, CRLF endings, blank lines, comments inside a table. The save output has
/// every chain declared first (in the order the input declared or first used them), then the
/// rules grouped by chain, `-I` applied and written as `-A` in their final order.
#[test]
fn hand_written_restore_input_comes_out_canonical() {
    let dir = TempDir::new("roundtrip-hand");
    let p = dir.path().join("hand.rules");
    let input = "# hand written\r\n\
                 *filter\r\n\
                 \r\n\
                 -N SSH\r\n\
                 -P INPUT DROP\r\n\
                 # inner\r\n\
                 -A INPUT -p tcp --dport 22 -j SSH\r\n\
                 -I INPUT -i lo -j ACCEPT\r\n\
                 -I INPUT 2 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\r\n\
                 [5:300] -A SSH -s 10.0.0.0/8 -m comment --comment \"office \\\"lan\\\"\" -j ACCEPT   \r\n\
                 COMMIT\r\n";
    std::fs::write(&p, input).unwrap();
    let out = save_through_binary(&p, Family::V4);
    let want = "# hand written\n\
                *filter\n\
                # inner\n\
                :SSH - [0:0]\n\
                :INPUT DROP [0:0]\n\
                [5:300] -A SSH -s 10.0.0.0/8 -m comment --comment \"office \\\"lan\\\"\" -j ACCEPT\n\
                -A INPUT -i lo -j ACCEPT\n\
                -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
                -A INPUT -p tcp --dport 22 -j SSH\n\
                COMMIT\n";
    assert_eq!(out, want);
    let again = parse(&out, Family::V4).unwrap();
    assert_eq!(again, parse(input, Family::V4).unwrap());
    assert_eq!(save::write(&again, SaveOptions::default()), want);
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let p = std::env::temp_dir().join(format!("nfscope-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
