//! `nfscope trace` as a user meets it: the real binary over --demo and --file (no root), the
//! verdict on the last line, the JSON document, and a sentence with status 2 for bad input
//! (docs/trace.md).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use serde_json::Value;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nfscope");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn nfscope(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env("NO_COLOR", "1")
        .output()
        .expect("run nfscope");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `nfscope trace` with `words` split on blanks, after `first` (paths, which may hold blanks).
fn trace_with(first: &[&str], words: &str) -> Run {
    let mut all = vec!["trace"];
    all.extend_from_slice(first);
    all.extend(words.split_whitespace());
    nfscope(&all)
}

fn trace(words: &str) -> Run {
    trace_with(&[], words)
}

fn last_line(r: &Run) -> &str {
    r.stdout.lines().last().unwrap_or("")
}

#[test]
fn demo_port_forward_is_accepted_by_the_forward_rule() {
    let r = trace(
        "--demo -p tcp -s 198.51.100.7 -d 203.0.113.2 --sport 40000 --dport 2222 --in wan0 --out lan0",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(last_line(&r), "verdict: ACCEPT", "{r:?}");
    assert!(
        r.stdout
            .contains("DNAT: dst 203.0.113.2 → 10.0.0.10, dport 2222 → 22"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("= ACCEPT, decided by rule 1 of chain FWD_IN: -d 10.0.0.10/32"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .starts_with("packet: IPv4 tcp 198.51.100.7:40000 → 203.0.113.2:2222 SYN, NEW"),
        "{r:?}"
    );
    // The demo world's native nftables table filters on input beside its iptables rules, and
    // the source says so.
    assert_eq!(
        r.stderr.trim(),
        "nfscope: warning: native nftables chains also filter on input: inet fw input (policy drop)",
        "{r:?}"
    );
}

#[test]
fn unknown_matches_give_every_verdict_and_what_they_hang_on() {
    let r = trace("--demo -p tcp -s 198.51.100.7 -d 203.0.113.2 --dport 443 --in wan0");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        last_line(&r),
        "verdict: REJECT or ACCEPT (unknown: rule 1 of chain TCP (-m recent --update --seconds 60 --name TCP-PORTSCAN --mask 255.255.255.255 --rsource))",
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("path 2 of 2: as path 1 until rule 1 of chain TCP, then"),
        "{r:?}"
    );
    assert!(r.stdout.contains("unknown → yes"), "{r:?}");
    assert!(r.stdout.contains("unknown → no"), "{r:?}");
}

#[test]
fn the_demo_ipv6_world_and_a_local_packet() {
    let r = trace(
        "--demo -p tcp -s 2001:db8:77::9 -d 2001:db8:10::20 --dport 443 --in wan0 --out lan0",
    );
    assert_eq!(r.code, 0, "{r:?}");
    // The demo's IPv6 mangle table checks the reverse path, which a description cannot decide.
    assert_eq!(
        last_line(&r),
        "verdict: DROP or ACCEPT (unknown: rule 1 of chain PREROUTING in mangle (-m rpfilter --invert))",
        "{r:?}"
    );
    assert!(
        r.stdout.contains("decided by rule 2 of chain FWD_IN"),
        "{r:?}"
    );
    let r =
        trace("--demo -p udp -s 10.0.0.1 -d 10.0.0.5 --sport 123 --dport 123 --local --out lan0");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(last_line(&r), "verdict: ACCEPT", "{r:?}");
    assert!(r.stdout.contains("state NEW → UNTRACKED"), "{r:?}");
    assert!(
        r.stdout
            .contains("nat is not traversed: the packet is UNTRACKED"),
        "{r:?}"
    );
}

#[test]
fn files_and_local_addresses() {
    let arch = data("trace/arch-host.rules");
    let file = ["--file", arch.as_str()];
    let ack = "-p tcp -s 198.51.100.9 -d 198.51.100.1 --dport 80 --tcp-flags ACK --in eth0";
    // Without --local-addr only loopback is local: the packet is forwarded.
    let r = trace_with(&file, ack);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(
            "local addresses: none besides loopback (loopback only: give this machine's with --local-addr)"
        ),
        "{r:?}"
    );
    assert_eq!(last_line(&r), "verdict: DROP", "{r:?}");
    let r = trace_with(&file, &format!("{ack} --local-addr 198.51.100.1/24%eth0"));
    assert_eq!(last_line(&r), "verdict: REJECT", "{r:?}");
    assert!(
        r.stdout.contains("decided by rule 9 of chain INPUT"),
        "{r:?}"
    );
    let v6 = data("trace/ipv6-host.rules");
    let r = trace_with(
        &["--file6", &v6],
        "-p ipv6-icmp -s 2001:db8:9::5 -d 2001:db8:1::1 --local-addr 2001:db8:1::1/64%eth0 --in eth0",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("type 128/0"), "a ping by default: {r:?}");
    assert_eq!(last_line(&r), "verdict: ACCEPT", "{r:?}");
}

#[test]
fn json_is_one_document_with_every_step() {
    let kube = data("kube-proxy-sample.rules");
    let r = trace_with(
        &["--file", &kube],
        "--format json -p udp -s 192.168.1.10 -d 10.96.0.10 --dport 53 --in eth0 --out eth0",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["packet"]["protocol"], "udp");
    assert_eq!(v["packet"]["family"], "ipv4");
    assert_eq!(v["packet"]["dport"], 53);
    assert!(v["source"].as_str().unwrap().starts_with("file · "));
    let paths = v["paths"].as_array().expect("paths");
    assert!(paths.len() >= 2, "statistic forks: {}", paths.len());
    assert_eq!(v["verdicts"], serde_json::json!(["ACCEPT"]));
    assert_eq!(v["certain"], true);
    assert_eq!(v["verdict"], "ACCEPT");
    for p in paths {
        let steps = p["steps"].as_array().expect("steps");
        let dnat = steps
            .iter()
            .find(|s| s["effect"]["type"] == "nat")
            .expect("a DNAT");
        assert_eq!(dnat["effect"]["target"], "DNAT");
        assert!(dnat["text"].as_str().unwrap().contains("--to-destination"));
        let by = p["decided_by"].as_u64().expect("a decider") as usize;
        assert_eq!(steps[by]["kind"], "rule");
        for s in steps {
            assert_eq!(s["family"], "ipv4");
            assert!(s["hook"].is_string() && s["kind"].is_string());
        }
    }
    let forked: Vec<&Value> = paths.iter().filter(|p| !p["fork"].is_null()).collect();
    assert!(
        forked
            .iter()
            .all(|p| p["assumptions"].as_array().is_some_and(|a| !a.is_empty()))
    );
}

#[test]
fn a_loop_is_an_error_with_status_1() {
    let dir = std::env::temp_dir().join(format!("nfscope-trace-loop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("loop.rules");
    std::fs::write(
        &file,
        "*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -j B\n-A B -g A\nCOMMIT\n",
    )
    .unwrap();
    let r = trace_with(
        &["--file", file.to_str().unwrap()],
        "-p udp -s 192.0.2.9 -d 192.0.2.1 --local-addr 192.0.2.1",
    );
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        last_line(&r),
        "verdict: ERROR (error: loop: INPUT → A → B → A (the kernel refuses a rule set whose chains loop))",
        "{r:?}"
    );
}

#[test]
fn bad_input_is_a_sentence_and_status_2() {
    let tcp = "-p tcp -s 10.0.0.3 -d 10.0.0.1";
    let cases: &[(&[&str], String, &str)] = &[
        (
            &[],
            "-p tcp -s 10.0.0.300 -d 10.0.0.1".into(),
            "\"10.0.0.300\" is not an IPv4 or IPv6 address",
        ),
        (
            &[],
            format!("{tcp} --dport 65536"),
            "\"65536\" is not a port",
        ),
        (
            &[],
            format!("{tcp} --state OPEN"),
            "\"OPEN\" is not a conntrack state: use NEW, ESTABLISHED, RELATED, INVALID or UNTRACKED",
        ),
        (
            &[],
            "-p tcp -s 10.0.0.3 -d 2001:db8::1".into(),
            "are not of the same family",
        ),
        (
            &[],
            "-p icmp -s 10.0.0.3 -d 10.0.0.1 --dport 1".into(),
            "--sport and --dport apply to tcp",
        ),
        (
            &[],
            "-p udp -s 10.0.0.3 -d 10.0.0.1 --tcp-flags SYN".into(),
            "--tcp-flags applies to tcp, not udp",
        ),
        (
            &[],
            format!("{tcp} --tcp-flags SYN,BOGUS"),
            "is not a list of TCP flags",
        ),
        (
            &[],
            "-p icmp -s 10.0.0.3 -d 10.0.0.1 --icmp-type nope".into(),
            "\"nope\" is not an ICMP type",
        ),
        (
            &[],
            format!("{tcp} --icmp-type 8"),
            "--icmp-type applies to -p icmp packets, not tcp",
        ),
        (
            &[],
            "-p icmp -s 2001:db8::3 -d 2001:db8::1".into(),
            "for IPv6, ICMP is -p ipv6-icmp",
        ),
        (
            &[],
            "-p gopher -s 10.0.0.3 -d 10.0.0.1".into(),
            "\"gopher\" is not a protocol",
        ),
        (
            &[],
            format!("{tcp} --local --in eth0"),
            "a --local packet is sent by this machine",
        ),
        (&[], format!("{tcp} --mark lots"), "\"lots\" is not a mark"),
        (
            &[],
            format!("{tcp} --local-addr 10.0.0.1/40"),
            "is not a prefix length between 0 and 32",
        ),
        (&["--in", "eth 0"], tcp.into(), "is not an interface name"),
        (&[], "-s 10.0.0.3 -d 10.0.0.1".into(), "--proto <PROTO>"),
    ];
    for (first, words, want) in cases {
        let mut all = vec!["--demo"];
        all.extend_from_slice(first);
        let r = trace_with(&all, words);
        assert_eq!(r.code, 2, "{words}: {r:?}");
        assert!(r.stderr.contains(want), "{words}: want {want:?} in {r:?}");
        assert!(r.stdout.is_empty(), "{words}: {r:?}");
        assert!(
            !r.stderr.contains("panicked") && !r.stderr.contains("Location:"),
            "{r:?}"
        );
    }
}

#[test]
fn a_family_without_a_rule_set_or_a_file_that_fails() {
    let arch = data("trace/arch-host.rules");
    let r = trace_with(&["--file", &arch], "-p tcp -s 2001:db8::3 -d 2001:db8::1");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(
            "the addresses are IPv6 but no IPv6 rule set was loaded: give it with --file6 PATH"
        ),
        "{r:?}"
    );
    let r = trace("--file /nonexistent/rules.v4 -p tcp -s 10.0.0.3 -d 10.0.0.1");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("nfscope: IPv4: cannot read /nonexistent/rules.v4"),
        "{r:?}"
    );
}

#[test]
fn long_runs_of_rules_that_did_not_match_are_folded() {
    let text = nfscope::ruleset::synth::kube_proxy(3_000);
    let dir = std::env::temp_dir().join(format!("nfscope-trace-kube-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kube.rules");
    std::fs::write(&file, text).unwrap();
    // Service 200 stands far down nat KUBE-SERVICES.
    let r = trace_with(
        &["--file", file.to_str().unwrap()],
        "-p tcp -s 192.168.1.10 -d 10.96.0.200 --in eth0 --out eth0",
    );
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("did not match either"), "{r:?}");
    assert!(
        r.stdout.lines().count() < 400,
        "folded: {} lines",
        r.stdout.lines().count()
    );
}

/// `--dnat-to`: an ESTABLISHED packet of a DNAT'd connection is rewritten from the binding
/// and forwarded (not traced into INPUT); the binding needs an existing connection and an
/// address of the packet's family.
#[test]
fn dnat_to_traces_an_established_connection_as_forwarded() {
    let words = "--demo -p tcp -s 198.51.100.7 -d 203.0.113.2 --sport 55636 --dport 8080 --in wan0 --state ESTABLISHED";
    let r = trace(&format!("{words} --dnat-to 10.0.0.10:80"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("DNAT'd to 10.0.0.10:80"), "{r:?}");
    assert!(
        r.stdout
            .contains("the connection's DNAT binding rewrites it: dst 203.0.113.2 → 10.0.0.10, dport 8080 → 80"),
        "{r:?}"
    );
    assert!(r.stdout.contains("forwarded, out on lan0"), "{r:?}");
    assert!(!r.stdout.contains("\nINPUT\n"), "{r:?}");
    // JSON says the binding too.
    let j = trace(&format!("{words} --dnat-to 10.0.0.10:80 --format json"));
    let v: Value = serde_json::from_str(&j.stdout).expect("JSON");
    assert_eq!(v["packet"]["dnat_to"], "10.0.0.10:80");
    // SNAT at POSTROUTING: the headers leave with the new source.
    let s = trace(
        "--demo -p tcp -s 10.0.0.50 -d 198.51.100.9 --sport 40000 --dport 443 --in lan0 --out wan0 --state ESTABLISHED --snat-to 203.0.113.2:61000 --format json",
    );
    let v: Value = serde_json::from_str(&s.stdout).expect("JSON");
    assert_eq!(v["paths"][0]["headers"]["src"], "203.0.113.2", "{s:?}");
    // Refused: a NEW packet, another family, a host name.
    let r = trace(
        "--demo -p tcp -s 198.51.100.7 -d 203.0.113.2 --dport 8080 --in wan0 --dnat-to 10.0.0.10:80",
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--state ESTABLISHED"), "{r:?}");
    let r = trace(&format!("{words} --dnat-to [fd00::10]:80"));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not of the packet's family"), "{r:?}");
    let r = trace(&format!("{words} --dnat-to nas:80"));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("\"nas:80\""), "{r:?}");
}
