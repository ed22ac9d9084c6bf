//! `nfscope conntrack` as a user meets it: the real binary, its output, messages and exit
//! statuses (docs/cli.md) and its JSON (docs/json.md).
//!
//! The kernel tests run the binary as `ip netns exec NS nfscope conntrack ...` in a throwaway
//! namespace of their own (tests/common), with traffic made on that namespace's loopback, and
//! compare with `conntrack -L` run the same way: the host's table is never read or changed. They
//! need root (skipped otherwise, failed under CI=true). The demo tests need nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::ct::{
    Row, assert_same_rows, busy_ns, conntrack_list, make_traffic, tcp_connection, tracked_ns,
};
use common::{NetNs, Run, keys};
use nfscope::conntrack::Proto;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nfscope");

/// `nfscope ARGS` on this host (demo and usage errors only: nothing that reads the kernel).
fn here(args: &[&str]) -> Run {
    Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .expect("run nfscope")
        .into()
}

/// `ip netns exec NS nfscope ARGS`.
fn inside(ns: &NetNs, args: &[&str]) -> Run {
    let mut all = vec![BIN];
    all.extend_from_slice(args);
    ns.command(&all)
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .expect("run nfscope in the namespace")
        .into()
}

/// `nfscope conntrack --format json ARGS` inside the namespace, which must succeed.
fn json_inside(ns: &NetNs, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["conntrack", "--format", "json"];
    all.extend_from_slice(args);
    json(&inside(ns, &all))
}

fn json(run: &Run) -> Vec<Value> {
    assert_eq!(run.code, 0, "{run:?}");
    let v: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON: {e}\n{run:?}"));
    v.as_array().expect("a JSON array of entries").clone()
}

fn is_uint(v: &Value) -> bool {
    v.as_u64().is_some()
}

/// One tuple: `src`, `dst`, `sport`, `dport` always; ports numbers where the protocol has them
/// and null where it has none; ICMP's `type`, `code`, `id` beside them.
fn check_tuple(t: &Value, proto: &str, what: &str) {
    for k in ["src", "dst"] {
        let a = t[k].as_str().unwrap_or_else(|| panic!("{what}.{k}: {t}"));
        assert!(a.parse::<std::net::IpAddr>().is_ok(), "{what}.{k}: {t}");
    }
    let ported = Proto::parse(proto).is_some_and(Proto::has_ports);
    for k in ["sport", "dport"] {
        assert!(t.get(k).is_some(), "{what}.{k} missing: {t}");
        assert_eq!(t[k].is_null(), !ported, "{what}.{k} for {proto}: {t}");
        if ported {
            assert!(t[k].as_u64().is_some_and(|p| p <= 65535), "{what}.{k}: {t}");
        }
    }
    let icmp = matches!(proto, "icmp" | "icmpv6");
    let mut want: BTreeSet<&str> = ["src", "dst", "sport", "dport"].into();
    if icmp {
        want.extend(["type", "code", "id"]);
        assert!(is_uint(&t["type"]) && is_uint(&t["code"]) && is_uint(&t["id"]));
    }
    assert_eq!(keys(t), want, "{what} of a {proto} entry");
}

/// The keys every entry has (the issue's list).
const REQUIRED: [&str; 10] = [
    "family", "proto", "state", "timeout", "orig", "reply", "status", "mark", "zone", "id",
];

/// Numeric keys an entry has where known (counters with accounting on, timestamps...).
const OPTIONAL_NUMBERS: [&str; 7] = [
    "orig_packets",
    "orig_bytes",
    "reply_packets",
    "reply_bytes",
    "use",
    "start_ns",
    "stop_ns",
];

/// The keys the issue names, each with its type and null-ness; optional keys typed where there.
fn check_entry(e: &Value) {
    for k in REQUIRED {
        assert!(e.get(k).is_some(), "{k} missing: {e}");
    }
    assert!(matches!(e["family"].as_str(), Some("ipv4" | "ipv6")), "{e}");
    let proto = e["proto"].as_str().expect("proto is a string");
    let stateful = matches!(proto, "tcp" | "sctp" | "dccp");
    assert_eq!(e["state"].is_string(), stateful, "state of {proto}: {e}");
    assert_eq!(e["state"].is_null(), !stateful, "state of {proto}: {e}");
    check_tuple(&e["orig"], proto, "orig");
    check_tuple(&e["reply"], proto, "reply");
    assert!(
        e["status"]
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string)),
        "{e}"
    );
    for k in ["timeout", "mark", "zone", "id"] {
        assert!(is_uint(&e[k]), "{k}: {e}");
    }
    for k in OPTIONAL_NUMBERS {
        assert!(e.get(k).is_none_or(is_uint), "{k}: {e}");
    }
    let known: BTreeSet<&str> = REQUIRED
        .into_iter()
        .chain(OPTIONAL_NUMBERS)
        .chain(["helper", "labels", "secctx"])
        .collect();
    assert!(keys(e).is_subset(&known), "undocumented keys: {e}");
}

/// The row `conntrack -L -o extended,id` would print for a JSON entry (see common::ct::Row).
fn row_of_json(e: &Value) -> (Row, u32) {
    let tuple = |t: &Value, dir: &str| {
        let mut m = BTreeMap::new();
        for k in ["src", "dst", "sport", "dport", "type", "code", "id"] {
            match &t[k] {
                Value::String(s) => {
                    m.insert(k.to_string(), s.clone());
                }
                Value::Number(n) => {
                    m.insert(k.to_string(), n.to_string());
                }
                _ => {}
            }
        }
        for k in ["packets", "bytes"] {
            if let Some(n) = e[format!("{dir}_{k}")].as_u64() {
                m.insert(k.to_string(), n.to_string());
            }
        }
        m
    };
    let status: Vec<&str> = e["status"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let num = |k: &str| e[k].as_u64().unwrap_or(0);
    let row = Row {
        family: e["family"].as_str().unwrap().to_string(),
        proto: Proto::parse(e["proto"].as_str().unwrap()).unwrap().0,
        state: e["state"].as_str().map(str::to_string),
        orig: tuple(&e["orig"], "orig"),
        reply: tuple(&e["reply"], "reply"),
        assured: status.contains(&"ASSURED"),
        unreplied: !status.contains(&"SEEN_REPLY"),
        mark: num("mark") as u32,
        zone: num("zone") as u16,
        use_count: num("use") as u32,
        id: num("id") as u32,
    };
    (row, num("timeout") as u32)
}

// ---------------------------------------------------------------------------------------------
// The real kernel, in throwaway namespaces.

#[test]
fn json_snapshot_has_every_key_and_equals_conntrack_list() {
    let Some((ns, _held)) = busy_ns("clijson") else {
        return;
    };
    let run = inside(&ns, &["conntrack", "--format", "json"]);
    let entries = json(&run);
    for e in &entries {
        check_entry(e);
    }
    // Every shape the traffic made: TCP, UDP and ICMP in both families, DNAT, counters.
    let has = |f: &dyn Fn(&Value) -> bool| entries.iter().any(f);
    for (family, proto) in [
        ("ipv4", "tcp"),
        ("ipv6", "tcp"),
        ("ipv4", "udp"),
        ("ipv6", "udp"),
        ("ipv4", "icmp"),
        ("ipv6", "icmpv6"),
    ] {
        assert!(
            has(&|e| e["family"] == family && e["proto"] == proto),
            "no {family} {proto} entry: {run:?}"
        );
    }
    assert!(has(
        &|e| e["orig"]["dport"] == 8080 && e["reply"]["sport"] == 80
    ));
    assert!(has(&|e| e["orig_packets"].is_u64()), "counters are on");

    let ours = entries.iter().map(row_of_json).collect();
    assert_same_rows(ours, conntrack_list(&ns), "nfscope --format json");
}

#[test]
fn filter_proto_udp_prints_only_udp() {
    let Some((ns, _held)) = busy_ns("cliudp") else {
        return;
    };
    let entries = json_inside(&ns, &["--filter", "proto=udp"]);
    let udp_listed = conntrack_list(&ns)
        .iter()
        .filter(|(r, _)| r.proto == 17)
        .count();
    assert!(udp_listed >= 5, "the traffic made UDP entries");
    assert_eq!(entries.len(), udp_listed);
    assert!(entries.iter().all(|e| e["proto"] == "udp"));

    // The text format too: one line per entry, the count on stderr.
    let run = inside(&ns, &["conntrack", "--filter", "proto=udp"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), udp_listed, "{run:?}");
    assert!(
        run.stdout
            .lines()
            .all(|l| l.split_whitespace().nth(2) == Some("udp")),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains(&format!("{udp_listed} flow entries shown")),
        "{run:?}"
    );
}

#[test]
fn delete_says_how_many_and_conntrack_no_longer_lists_them() {
    let Some((ns, _held)) = busy_ns("clidelete") else {
        return;
    };
    let before = conntrack_list(&ns);
    let doomed = before
        .iter()
        .filter(|(r, _)| r.orig.get("dport").is_some_and(|p| p == "5353"))
        .count();
    assert_eq!(doomed, 2, "one UDP entry to 5353 per family");
    let run = inside(&ns, &["conntrack", "--delete", "--filter", "dport=5353"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "deleted 2 entries\n", "{run:?}");
    let after = conntrack_list(&ns);
    assert!(
        !after
            .iter()
            .any(|(r, _)| r.orig.get("dport").is_some_and(|p| p == "5353")),
        "still listed: {after:#?}"
    );
    assert_eq!(after.len(), before.len() - 2, "deleted only those");

    // Nothing left to match: zero, and still a success.
    let run = inside(&ns, &["conntrack", "--delete", "--filter", "dport=5353"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "deleted 0 entries\n"),
        "{run:?}"
    );
}

/// The inode of a namespace's file, as `/proc/PID/ns/net` names it (`net:[INODE]`).
fn ns_link(ns: &NetNs) -> String {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(Path::new("/var/run/netns").join(ns.name()))
        .expect("the namespace's file")
        .ino();
    format!("net:[{ino}]")
}

/// Whether process `pid` is inside `ns` and holds a netlink socket subscribed to the three
/// conntrack event groups (NETLINK_NETFILTER is protocol 12 in /proc/PID/net/netlink).
fn subscribed(pid: u32, ns_link: &str) -> bool {
    let inside = std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .is_ok_and(|l| l.to_string_lossy() == ns_link);
    inside
        && std::fs::read_to_string(format!("/proc/{pid}/net/netlink")).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(1) == Some(&"12")
                    && f.get(3)
                        .and_then(|g| u32::from_str_radix(g, 16).ok())
                        .is_some_and(|g| g & 0b111 == 0b111)
            })
        })
}

/// Start `ip netns exec NS PROGRAM ARGS...` with its output piped, for [`finish`].
fn start_inside(ns: &NetNs, argv: &[&str]) -> std::process::Child {
    ns.command(argv)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"))
}

/// Wait for a child, killing it after `limit`; returns its exit status and output.
fn finish(mut child: std::process::Child, limit: Duration) -> Run {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().expect("wait").is_none() {
        let _ = child.kill();
    }
    child.wait_with_output().expect("the child's output").into()
}

#[test]
fn watch_sees_new_update_destroy_of_a_real_tcp_connection() {
    let Some(ns) = tracked_ns("cliwatch") else {
        return;
    };
    // The handshake's middle step (SYN_RECV) is filtered out, so that three events are the
    // connection's new (SYN_SENT), update (ESTABLISHED) and destroy.
    let mut all = vec![BIN];
    all.extend([
        "conntrack",
        "--watch",
        "--count",
        "3",
        "--format",
        "json",
        "--filter",
        "dport=7000 state=SYN_SENT,ESTABLISHED",
    ]);
    let child = start_inside(&ns, &all);
    let link = ns_link(&ns);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !subscribed(child.id(), &link) {
        assert!(Instant::now() < deadline, "the watch never subscribed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _held = tcp_connection(&ns, 7000);
    ns.exec_ok(&["conntrack", "-D", "-p", "tcp", "--dport", "7000"]);
    let run = finish(child, Duration::from_secs(10));
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{run:?}");
    let events: Vec<Value> = lines
        .iter()
        .map(|l| {
            assert!(l.starts_with(r#"{"event":"#), "event before entry: {l}");
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))
        })
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|v| v["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["new", "update", "destroy"], "{run:?}");
    let states: Vec<&str> = events
        .iter()
        .map(|v| v["entry"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["SYN_SENT", "ESTABLISHED", "ESTABLISHED"]);
    for v in &events {
        assert_eq!(keys(v), BTreeSet::from(["event", "entry"]));
        check_entry(&v["entry"]);
        assert_eq!(
            v["entry"]["orig"], events[0]["entry"]["orig"],
            "one connection"
        );
    }
    assert!(!run.stderr.contains("dropped"), "{run:?}");
}

#[test]
fn watch_warns_when_the_kernel_sends_no_events() {
    let Some(ns) = tracked_ns("clieventsoff") else {
        return;
    };
    ns.exec_ok(&["sysctl", "-qw", "net.netfilter.nf_conntrack_events=0"]);
    let child = start_inside(&ns, &[BIN, "conntrack", "--watch"]);
    let run = finish(child, Duration::from_secs(1));
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr
            .contains("(net.netfilter.nf_conntrack_events=0), so --watch will print nothing"),
        "{run:?}"
    );
}

/// An entry without what /proc cannot say (the kernel's id, `use`, which counts the reader) or
/// says differently (the timeout, a second later; status bits it does not print).
fn comparable(mut e: Value) -> String {
    let o = e.as_object_mut().unwrap();
    for k in ["id", "use", "timeout", "start_ns", "status"] {
        o.remove(k);
    }
    e.to_string()
}

#[test]
fn source_proc_prints_the_entries_netlink_does() {
    let Some((ns, _held)) = busy_ns("cliproc") else {
        return;
    };
    let net = json_inside(&ns, &["--source", "netlink"]);
    let proc = json_inside(&ns, &["--source", "proc"]);
    assert!(net.len() >= 10);
    for e in &proc {
        check_entry(e);
    }
    // ASSURED and UNREPLIED are what /proc prints; they must agree.
    let flags = |v: &[Value]| -> BTreeSet<String> {
        v.iter()
            .map(|e| {
                let s = e["status"].as_array().unwrap();
                let has = |f: &str| s.iter().any(|x| x == f);
                format!(
                    "{} assured={} replied={}",
                    comparable(e.clone()),
                    has("ASSURED"),
                    has("SEEN_REPLY")
                )
            })
            .collect()
    };
    assert_eq!(net.len(), proc.len());
    assert_eq!(flags(&net), flags(&proc), "netlink vs /proc, as sets");
}

#[test]
fn a_bad_filter_exits_2_naming_the_column() {
    let Some(ns) = tracked_ns("clibadfilter") else {
        return;
    };
    for args in [
        &["conntrack", "--filter", "proto=tcp dprt=22"][..],
        &["conntrack", "--watch", "--filter", "proto=tcp dprt=22"][..],
        &["conntrack", "--delete", "--filter", "proto=tcp dprt=22"][..],
    ] {
        let run = inside(&ns, args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
        assert_eq!(
            run.stderr.trim(),
            r#"nfscope: --filter "proto=tcp dprt=22": unknown key "dprt" at column 11 (did you mean "dport"?)"#
        );
    }
}

/// A copy of the binary that an unprivileged user may run, wherever the checkout lives;
/// removed on drop.
struct PublicCopy(PathBuf);

impl PublicCopy {
    fn new() -> PublicCopy {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("nfscope-ct-nonroot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let bin = dir.join("nfscope");
        std::fs::copy(BIN, &bin).expect("copy the binary");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        PublicCopy(dir)
    }
}

impl Drop for PublicCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn without_root_every_mode_says_to_run_as_root() {
    let Some(ns) = tracked_ns("clinoroot") else {
        return;
    };
    if nfscope::source::kernel::find_tool("setpriv").is_none() {
        common::skip::<()>("needs setpriv (util-linux)");
        return;
    }
    let copy = PublicCopy::new();
    let bin = copy.0.join("nfscope");
    let bin = bin.to_str().unwrap();
    let _held = make_traffic(&ns);
    let before = conntrack_list(&ns).len();
    for args in [
        &["conntrack"][..],
        &["conntrack", "--format", "json", "--source", "netlink"][..],
        &["conntrack", "--source", "proc"][..],
        &["conntrack", "--watch", "--count", "1"][..],
        &["conntrack", "--delete", "--all", "--filter", "proto=udp"][..],
    ] {
        let mut all = vec![
            "setpriv",
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            bin,
        ];
        all.extend_from_slice(args);
        let child = start_inside(&ns, &all);
        // A watch that wrongly succeeded would wait for events for ever.
        let run = finish(child, Duration::from_secs(5));
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
        let sink = run.stderr;
        assert!(sink.contains("run as root"), "{args:?}: {sink}");
        assert!(sink.starts_with("nfscope: "), "{args:?}: {sink}");
        assert!(!sink.contains("panicked"), "{args:?}: {sink}");
    }
    assert_eq!(conntrack_list(&ns).len(), before, "nobody deleted nothing");
}

// ---------------------------------------------------------------------------------------------
// The demo world: no root, no kernel.

#[test]
fn demo_json_has_every_key() {
    let entries = json(&here(&["conntrack", "--demo", "--format", "json"]));
    assert!(entries.len() > 100);
    for e in &entries {
        check_entry(e);
    }
    for proto in ["tcp", "udp", "icmp"] {
        assert!(entries.iter().any(|e| e["proto"] == proto), "no {proto}");
    }
}

#[test]
fn demo_watch_count_5_prints_five_events_and_ends() {
    let start = Instant::now();
    let run = here(&[
        "conntrack",
        "--demo",
        "--watch",
        "--count",
        "5",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(start.elapsed() < Duration::from_secs(20));
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{run:?}");
    for l in lines {
        assert!(l.starts_with(r#"{"event":"#), "{l}");
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(keys(&v), BTreeSet::from(["event", "entry"]));
        assert!(matches!(
            v["event"].as_str(),
            Some("new" | "update" | "destroy")
        ));
        check_entry(&v["entry"]);
    }
}

#[test]
fn demo_delete_deletes_and_says_how_many() {
    let udp = json(&here(&[
        "conntrack",
        "--demo",
        "--format",
        "json",
        "--filter",
        "proto=udp",
    ]));
    assert!(!udp.is_empty());
    let run = here(&[
        "conntrack",
        "--demo",
        "--delete",
        "--all",
        "--filter",
        "proto=udp",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, format!("deleted {} entries\n", udp.len()));
    assert!(run.stderr.contains("demo"), "{run:?}");
}

#[test]
fn usage_errors_exit_2_with_a_sentence() {
    for (args, says) in [
        (
            &["conntrack", "--demo", "--filter", "dport=99-1"][..],
            "the port range 99-1 at column 7 runs backwards; write 1-99",
        ),
        (&["conntrack", "--demo", "--delete"][..], "--filter"),
        (
            &["conntrack", "--demo", "--delete", "--filter", " "][..],
            "an empty one would delete the whole table",
        ),
        (
            &["conntrack", "--demo", "--watch", "--count", "0"][..],
            "0 is not in 1..",
        ),
        (&["conntrack", "--demo", "--count", "3"][..], "--watch"),
        (
            &[
                "conntrack",
                "--demo",
                "--watch",
                "--delete",
                "--filter",
                "udp",
            ][..],
            "cannot be used with",
        ),
        (
            &["conntrack", "--source", "proc", "--watch"][..],
            "--watch needs netlink events",
        ),
        (
            &[
                "conntrack",
                "--source",
                "proc",
                "--delete",
                "--filter",
                "dport=53",
            ][..],
            "--delete needs netlink",
        ),
        (
            &["conntrack", "--demo", "--delete", "--filter", "proto=tcp"][..],
            "add --all if that is what you mean",
        ),
        (&["conntrack", "--demo", "--all"][..], "--delete"),
        (&["conntrack", "--format", "yaml"][..], "invalid value"),
    ] {
        let run = here(args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(says), "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
        assert!(!run.stderr.contains("Location:"), "{args:?}: {run:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// docs/json.md says what the binary prints.

/// The ```json blocks of docs/json.md's conntrack section, in order.
fn documented_json() -> Vec<Value> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md"))
        .expect("docs/json.md");
    let section = &doc[doc
        .find("## Conntrack entries")
        .expect("a conntrack section in docs/json.md")..];
    section
        .split("```json\n")
        .skip(1)
        .map(|b| {
            let block = &b[..b.find("```").expect("the block ends")];
            serde_json::from_str(block).unwrap_or_else(|e| panic!("{e}: {block}"))
        })
        .collect()
}

/// An object's keys, and its tuples' keys.
fn shape(e: &Value) -> (BTreeSet<&str>, BTreeSet<&str>, BTreeSet<&str>) {
    (keys(e), keys(&e["orig"]), keys(&e["reply"]))
}

#[test]
fn docs_json_examples_have_the_keys_the_binary_prints() {
    let blocks = documented_json();
    assert_eq!(
        blocks.len(),
        2,
        "an example entry and an example --watch line"
    );
    let (entry, event) = (&blocks[0], &blocks[1]);
    check_entry(entry);
    // The command the doc names above the example.
    let real = json(&here(&[
        "conntrack",
        "--demo",
        "--format",
        "json",
        "--filter",
        "proto=tcp dnat state=ESTABLISHED",
    ]));
    assert_eq!(
        shape(entry),
        shape(&real[0]),
        "docs/json.md's example entry"
    );

    assert_eq!(keys(event), BTreeSet::from(["event", "entry"]));
    check_entry(&event["entry"]);
    // A destroy of a UDP entry, as documented: the first one the demo world makes.
    assert_eq!(
        (&event["event"], &event["entry"]["proto"]),
        (&"destroy".into(), &"udp".into())
    );
    let run = here(&[
        "conntrack",
        "--demo",
        "--watch",
        "--count",
        "1",
        "--format",
        "json",
        "--filter",
        "proto=udp timeout=0",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let real: Value = serde_json::from_str(run.stdout.trim()).expect("one JSON line");
    assert_eq!(real["event"], "destroy", "{run:?}");
    assert_eq!(keys(event), keys(&real));
    assert_eq!(
        shape(&event["entry"]),
        shape(&real["entry"]),
        "docs/json.md's --watch line"
    );
}
