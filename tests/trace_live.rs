//! `nfscope trace --live` against the kernel: two throwaway namespaces joined by a veth pair, B
//! holding an iptables-nft rule and a native table, nfscope tracing in B while A connects. The
//! kernel's trace must be shown beside the prediction, agreeing; the table nfscope adds must be
//! gone when it ends, even by SIGKILL (the kernel removes an owned table with its socket).
//!
//! Needs root, nft and the iptables-nft tools (skipped otherwise, failed under CI=true).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{NetNs, have_tools, skip};
use nfscope::source::Backend;
use nfscope::source::netns;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FW: &str = "table inet fw {\n  chain input {\n    type filter hook input priority 0; policy drop;\n    tcp dport 22 counter accept\n  }\n}\n";

struct World {
    a: NetNs,
    b: NetNs,
}

fn world() -> Option<World> {
    if !have_tools(Backend::Nft) {
        return None;
    }
    if nfscope::source::kernel::find_tool("nft").is_none() {
        return skip("needs nft (apt-get install nftables)");
    }
    let a = NetNs::for_test("live-a")?;
    let b = NetNs::for_test("live-b")?;
    let bname = b.name().to_string();
    a.exec_ok(&[
        "ip", "link", "add", "a-eth0", "type", "veth", "peer", "name", "eth0", "netns", &bname,
    ]);
    a.exec_ok(&["ip", "addr", "add", "10.9.0.2/24", "dev", "a-eth0"]);
    b.exec_ok(&["ip", "addr", "add", "10.9.0.1/24", "dev", "eth0"]);
    a.exec_ok(&["ip", "link", "set", "a-eth0", "up"]);
    b.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    b.exec_ok(&[
        "iptables-nft",
        "-w",
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        "80",
        "-j",
        "ACCEPT",
    ]);
    let out = b.exec_with_input(&["nft", "-f", "-"], FW);
    assert!(out.status.success(), "{out:?}");
    Some(World { a, b })
}

fn live(b: &NetNs, port: &str, wait: &str) -> Child {
    Command::new("ip")
        .args(["netns", "exec", b.name(), env!("CARGO_BIN_EXE_nfscope")])
        .args([
            "trace", "--live", "-p", "tcp", "-d", "10.9.0.1", "--dport", port,
        ])
        .args(["--count", "1", "--wait", wait])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn trace_table(b: &NetNs) -> bool {
    b.exec_ok(&["nft", "list", "tables"])
        .contains("nfscope_trace_")
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn connect(a: &NetNs, port: u16) {
    let dst = SocketAddr::new("10.9.0.1".parse().unwrap(), port);
    netns::run_in(a.name(), move || {
        let _ = TcpStream::connect_timeout(&dst, Duration::from_millis(500));
    })
    .unwrap();
}

#[test]
fn a_real_packet_is_traced_beside_the_prediction_and_they_agree() {
    let Some(w) = world() else { return };
    for (port, expect) in [
        (80u16, "inet fw input: policy → DROP"),
        (
            22,
            "inet fw input: rule (handle 2) tcp dport 22 counter accept → ACCEPT",
        ),
    ] {
        let child = live(&w.b, &port.to_string(), "20");
        wait_for("the trace table", || trace_table(&w.b));
        connect(&w.a, port);
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}\n{err}");
        assert!(err.contains("added the table inet nfscope_trace_"), "{err}");
        assert!(
            text.contains("the kernel's path from PREROUTING on"),
            "{text}"
        );
        assert!(text.contains(expect), "{text}");
        assert!(text.contains("= the same"), "{text}");
        assert!(!trace_table(&w.b), "the trace table outlived nfscope");
    }
}

#[test]
fn the_trace_table_goes_with_nfscope_even_when_killed() {
    let Some(w) = world() else { return };
    let mut child = live(&w.b, "80", "60");
    wait_for("the trace table", || trace_table(&w.b));
    child.kill().unwrap();
    let _ = child.wait();
    wait_for("the trace table to go", || !trace_table(&w.b));
}

#[test]
fn live_refuses_files_and_needs_an_address() {
    let out = Command::new(env!("CARGO_BIN_EXE_nfscope"))
        .args(["--file", "/dev/null", "trace", "--live", "-d", "10.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--live traces the running kernel"));
    let out = Command::new(env!("CARGO_BIN_EXE_nfscope"))
        .args(["trace", "--live", "-p", "tcp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--live needs -s or -d"));
}
