//! `nfscope reach` against the kernel: in a throwaway network namespace with several local
//! addresses, a rule set is loaded with the real iptables-restore, the real binary answers
//! from the kernel's rule set, and a real TCP connection is tried between every pair of
//! addresses (bound source, on loopback, through INPUT). It succeeds exactly where the answer
//! says certain, and fails where it says no edge.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::NetNs;
use common::ct::in_ns;
use nfscope::ruleset::Family;
use nfscope::source::Backend;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_nfscope");
const PORT: u16 = 8022;

const RULES: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:FROM10 - [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -s 10.0.0.0/8 -j FROM10
-A INPUT -d 192.0.2.1/32 -p tcp -m tcp --dport 8022 -j ACCEPT
-A INPUT -p tcp -j REJECT --reject-with tcp-reset
-A FROM10 -d 10.2.0.1/32 -p tcp -j REJECT --reject-with tcp-reset
-A FROM10 -s 10.1.0.0/16 -p tcp -m tcp --dport 8000:8100 -j ACCEPT
-A FROM10 -s 10.3.0.0/16 -j RETURN
-A FROM10 -p tcp -j REJECT --reject-with tcp-reset
COMMIT
";

const V6_RULES: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -s 2001:db8:1::/48 -d 2001:db8:2::1/128 -p tcp -m tcp --dport 8022 -j ACCEPT
-A INPUT -s ::1/128 -j ACCEPT
-A INPUT -p tcp -j REJECT --reject-with tcp-reset
COMMIT
";

const V4_ADDRS: [&str; 6] = [
    "127.0.0.1",
    "10.1.0.1",
    "10.2.0.1",
    "10.3.0.1",
    "10.4.0.1",
    "192.0.2.1",
];
const V6_ADDRS: [&str; 3] = ["::1", "2001:db8:1::1", "2001:db8:2::1"];

/// Whether a TCP connection from `src` to `dst`:PORT is accepted, inside the namespace.
fn connects(ns: &NetNs, src: IpAddr, dst: IpAddr) -> bool {
    in_ns(ns, move || {
        let listener = TcpListener::bind(SocketAddr::new(dst, PORT)).expect("listen");
        use rustix::net::{AddressFamily, SocketType, bind, connect, socket, sockopt};
        let af = if dst.is_ipv6() {
            AddressFamily::INET6
        } else {
            AddressFamily::INET
        };
        let fd = socket(af, SocketType::STREAM, None).expect("a socket");
        // A refused connection is reset at once; the timeout only bounds a silent drop.
        sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(Duration::from_secs(2)))
            .unwrap();
        bind(&fd, &SocketAddr::new(src, 0)).expect("bind the source");
        let ok = connect(&fd, &SocketAddr::new(dst, PORT)).is_ok();
        drop(listener);
        ok
    })
}

fn answer(doc: &serde_json::Value, from: IpAddr, to: IpAddr) -> Option<bool> {
    let class = |a: IpAddr| -> String {
        let a = a.to_string();
        doc["classes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["ranges"].as_array().unwrap().iter().any(|r| {
                    let r = r.as_str().unwrap();
                    in_range(r, &a)
                })
            })
            .unwrap_or_else(|| panic!("{a} has a class in {doc}"))["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (f, t) = (class(from), class(to));
    doc["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == f.as_str() && e["to"] == t.as_str())
        .map(|e| e["certain"].as_bool().unwrap())
}

/// `a` is in a range as the JSON writes it: one address, a CIDR block or FIRST-LAST.
fn in_range(r: &str, a: &str) -> bool {
    let a: IpAddr = a.parse().unwrap();
    if let Ok(n) = r.parse::<ipnet::IpNet>() {
        return n.contains(&a);
    }
    if let Some((lo, hi)) = r.split_once('-') {
        let (lo, hi): (IpAddr, IpAddr) = (lo.parse().unwrap(), hi.parse().unwrap());
        return lo <= a && a <= hi;
    }
    r.parse::<IpAddr>().unwrap() == a
}

fn check(ns: &NetNs, family: Family, addrs: &[&str]) {
    let flag = match family {
        Family::V4 => "-4",
        Family::V6 => "-6",
    };
    let out = ns
        .command(&[
            BIN, "reach", "--chain", "INPUT", "-p", "tcp", "--dport", "8022", flag, "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["hinges"], serde_json::json!([]), "{doc}");
    let mut certain = 0;
    let mut none = 0;
    for s in addrs {
        for d in addrs {
            let (s, d): (IpAddr, IpAddr) = (s.parse().unwrap(), d.parse().unwrap());
            let said = answer(&doc, s, d);
            let did = connects(ns, s, d);
            match said {
                Some(true) => {
                    certain += 1;
                    assert!(
                        did,
                        "{s} -> {d}: reach says certain, the kernel refused\n{doc}"
                    );
                }
                None => {
                    none += 1;
                    assert!(
                        !did,
                        "{s} -> {d}: reach says no edge, the kernel accepted\n{doc}"
                    );
                }
                Some(false) => {}
            }
        }
    }
    // Both answers were put to the kernel.
    assert!(certain >= 2 && none >= 2, "{certain} certain, {none} none");
}

#[test]
fn real_connections_agree_with_the_matrix() {
    if !common::have_tools(Backend::Nft) {
        return;
    }
    let Some(ns) = NetNs::for_test("reach") else {
        return;
    };
    for a in &V4_ADDRS[1..] {
        ns.exec_ok(&["ip", "addr", "add", &format!("{a}/32"), "dev", "lo"]);
    }
    for a in &V6_ADDRS[1..] {
        ns.exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("{a}/128"),
            "dev",
            "lo",
            "nodad",
        ]);
    }
    ns.restore(Family::V4, Backend::Nft, RULES);
    ns.restore(Family::V6, Backend::Nft, V6_RULES);
    check(&ns, Family::V4, &V4_ADDRS);
    check(&ns, Family::V6, &V6_ADDRS);
}
