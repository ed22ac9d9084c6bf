//! The tracer over native nftables tables (and iptables rules beside them), against the kernel.
//! Every case builds two throwaway network namespaces: B, the machine the rules are for (an
//! nft script loaded with `nft -f`, and iptables rules with iptables-nft or -legacy), and A,
//! the rest of the world, joined by a veth pair (`a-eth0` in A, `eth0` in B). A real packet
//! goes from A to B (a TCP connect to a port B listens on, or a ping), or from B to A for a
//! locally sent one. What happened to it is the kernel's verdict: connected (ACCEPT), refused
//! (REJECT), nothing within the timeout or EPERM for a local sender (DROP). `nfscope trace
//! --format json`, run inside B as a user would, must offer that verdict (and only it when it
//! says it is certain), and on a path with that verdict every native rule it says matched must
//! have had its counter moved by the packet.
//!
//! Needs root, nft and the iptables tools (skipped otherwise, failed under CI=true).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{NetNs, have_tools, skip};
use nfscope::source::netns;
use nfscope::source::{Backend, nft_netlink};
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

const B4: &str = "10.9.0.1";
const A4: &str = "10.9.0.2";
const B6: &str = "2001:db8:9::1";
const A6: &str = "2001:db8:9::2";
/// Ports B (or A, for a locally sent packet) listens on.
const PORTS: [u16; 6] = [22, 23, 80, 443, 8080, 9000];

#[derive(Clone, Copy)]
enum Send {
    /// A TCP connect from A to B's address (v4 or v6) and port.
    Tcp(bool, u16),
    /// A ping from A to B.
    Ping,
    /// A TCP connect from B to A's port.
    LocalTcp(u16),
}

struct Case {
    /// The nft script loaded in B (after the iptables rules).
    nft: &'static str,
    /// iptables rules for B, one command's arguments per line (`-A INPUT ...`), IPv4.
    ipt: &'static [&'static str],
    backend: Backend,
    send: Send,
    /// What the tracer must say, verdict names joined by " or " in the tracer's order.
    expect: &'static str,
}

/// (family, table, chain, handle) → packets, of every native rule with a counter in B.
type Counters = BTreeMap<(String, String, String, u64), u64>;

fn counters(b: &NetNs) -> Counters {
    let nft = netns::run_in(b.name(), nft_netlink::read)
        .expect("enter B")
        .expect("read nf_tables in B");
    nft.rules
        .iter()
        .filter_map(|r| {
            let (p, _) = r.counter?;
            Some((
                (
                    nft_netlink::family_name(r.family).to_string(),
                    r.table.clone(),
                    r.chain.clone(),
                    r.handle,
                ),
                p,
            ))
        })
        .collect()
}

fn wire(a: &NetNs, b: &NetNs) {
    let bname = b.name().to_string();
    a.exec_ok(&[
        "ip", "link", "add", "a-eth0", "type", "veth", "peer", "name", "eth0", "netns", &bname,
    ]);
    for ns in [a, b] {
        for k in ["all", "default"] {
            ns.exec_ok(&["sysctl", "-qw", &format!("net.ipv6.conf.{k}.accept_dad=0")]);
        }
    }
    a.exec_ok(&["ip", "addr", "add", &format!("{A4}/24"), "dev", "a-eth0"]);
    a.exec_ok(&[
        "ip",
        "addr",
        "add",
        &format!("{A6}/64"),
        "dev",
        "a-eth0",
        "nodad",
    ]);
    b.exec_ok(&["ip", "addr", "add", &format!("{B4}/24"), "dev", "eth0"]);
    b.exec_ok(&[
        "ip",
        "addr",
        "add",
        &format!("{B6}/64"),
        "dev",
        "eth0",
        "nodad",
    ]);
    a.exec_ok(&["ip", "link", "set", "a-eth0", "up"]);
    b.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    // Fixed neighbours: neighbour discovery must not be the packet the rules see first.
    let mac = |ns: &NetNs, i: &str| {
        let out = ns.exec_ok(&["ip", "-j", "link", "show", "dev", i]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0]["address"].as_str().unwrap().to_string()
    };
    let (am, bm) = (mac(a, "a-eth0"), mac(b, "eth0"));
    for (ns, addr, m, dev) in [
        (a, B4, &bm, "a-eth0"),
        (a, B6, &bm, "a-eth0"),
        (b, A4, &am, "eth0"),
        (b, A6, &am, "eth0"),
    ] {
        ns.exec_ok(&[
            "ip",
            "neigh",
            "replace",
            addr,
            "lladdr",
            m,
            "dev",
            dev,
            "nud",
            "permanent",
        ]);
    }
}

fn listen(ns: &NetNs) -> Vec<TcpListener> {
    // `[::]` takes IPv4 too (a new namespace has net.ipv6.bindv6only=0).
    netns::run_in(ns.name(), || {
        PORTS
            .iter()
            .map(|p| TcpListener::bind(("::", *p)).expect("listen"))
            .collect()
    })
    .expect("enter the namespace")
}

/// What the kernel did with the packet, as a verdict name.
fn send(a: &NetNs, b: &NetNs, how: Send) -> &'static str {
    let connect = |ns: &NetNs, dst: SocketAddr| {
        netns::run_in(ns.name(), move || {
            match TcpStream::connect_timeout(&dst, Duration::from_millis(700)) {
                Ok(_) => "ACCEPT",
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => "REJECT",
                Err(e) if e.raw_os_error() == Some(libc::EHOSTUNREACH) => "REJECT",
                Err(e) if e.raw_os_error() == Some(libc::EACCES) => "REJECT",
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => "DROP",
                Err(e) if e.kind() == ErrorKind::TimedOut => "DROP",
                Err(e) => panic!("connect to {dst}: {e}"),
            }
        })
        .expect("enter the namespace")
    };
    match how {
        Send::Tcp(v6, port) => {
            let dst: IpAddr = if v6 { B6 } else { B4 }.parse().unwrap();
            connect(a, SocketAddr::new(dst, port))
        }
        Send::LocalTcp(port) => connect(b, SocketAddr::new(A4.parse().unwrap(), port)),
        Send::Ping => {
            let ok = a
                .exec(&["ping", "-4", "-c", "1", "-W", "1", B4])
                .status
                .success();
            if ok { "ACCEPT" } else { "DROP" }
        }
    }
}

fn trace_args(how: Send) -> Vec<String> {
    let v: Vec<&str> = match how {
        Send::Tcp(false, p) => {
            return ["-p", "tcp", "-s", A4, "-d", B4, "--in", "eth0", "--dport"]
                .iter()
                .map(ToString::to_string)
                .chain([p.to_string()])
                .collect();
        }
        Send::Tcp(true, p) => {
            return ["-p", "tcp", "-s", A6, "-d", B6, "--in", "eth0", "--dport"]
                .iter()
                .map(ToString::to_string)
                .chain([p.to_string()])
                .collect();
        }
        Send::LocalTcp(p) => {
            return ["-p", "tcp", "-s", B4, "-d", A4, "--local", "--dport"]
                .iter()
                .map(ToString::to_string)
                .chain([p.to_string()])
                .collect();
        }
        Send::Ping => vec!["-p", "icmp", "-s", A4, "-d", B4, "--in", "eth0"],
    };
    v.into_iter().map(String::from).collect()
}

fn run(name: &str, c: &Case) {
    if !have_tools(c.backend) {
        return;
    }
    if nfscope::source::kernel::find_tool("nft").is_none() {
        skip::<()>("needs nft (apt-get install nftables)");
        return;
    }
    let Some(a) = NetNs::for_test("ntr-a") else {
        return;
    };
    let Some(b) = NetNs::for_test("ntr-b") else {
        return;
    };
    wire(&a, &b);
    let tool = match c.backend {
        Backend::Nft => "iptables-nft",
        Backend::Legacy => "iptables-legacy",
    };
    for line in c.ipt {
        let mut args = vec![tool, "-w"];
        args.extend(line.split_whitespace());
        b.exec_ok(&args);
    }
    if !c.nft.is_empty() {
        // Written on one line for reading here; nft wants each closing brace on a line.
        let script = c.nft.replace("; }", "\n}").replace(" }", "\n}");
        let out = b.exec_with_input(&["nft", "-f", "-"], &script);
        assert!(out.status.success(), "{name}: nft -f: {out:?}");
    }
    let _held_b = listen(&b);
    let _held_a = listen(&a);
    // The tracer, as a user runs it inside B.
    let backend = match c.backend {
        Backend::Nft => "nft",
        Backend::Legacy => "legacy",
    };
    let mut args = vec![
        "ip".to_string(),
        "netns".into(),
        "exec".into(),
        b.name().into(),
        env!("CARGO_BIN_EXE_nfscope").into(),
        "--backend".into(),
        backend.into(),
        "trace".into(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(trace_args(c.send));
    let out = std::process::Command::new(&args[0])
        .args(&args[1..])
        .output()
        .expect("run nfscope");
    assert!(out.status.success(), "{name}: {out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let summary = doc["verdict"].as_str().unwrap_or_default().to_string();
    let verdicts: Vec<String> = doc["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        verdicts.join(" or "),
        c.expect,
        "{name}: the tracer said {summary}"
    );
    let before = counters(&b);
    let kernel = send(&a, &b, c.send);
    std::thread::sleep(Duration::from_millis(50));
    let after = counters(&b);
    assert!(
        verdicts.iter().any(|v| v == kernel),
        "{name}: the kernel's verdict {kernel} is not among the tracer's: {summary}"
    );
    // A path with the kernel's verdict whose native matched rules all moved.
    let moved = |k: &(String, String, String, u64)| after.get(k) > before.get(k);
    let mut ok_path = false;
    for p in doc["paths"].as_array().unwrap() {
        if p["verdict"] != kernel {
            continue;
        }
        let all_moved = p["steps"].as_array().unwrap().iter().all(|s| {
            let matched = s["matched"] == "yes" || s["assumed"] == true;
            let (Some(t), Some(h)) = (s["nft_table"].as_str(), s["handle"].as_u64()) else {
                return true;
            };
            if !matched {
                return true;
            }
            let (fam, table) = t.split_once(' ').unwrap();
            let key = (
                fam.to_string(),
                table.to_string(),
                s["chain"].as_str().unwrap().to_string(),
                h,
            );
            // Rules without a counter cannot be checked.
            !before.contains_key(&key) || moved(&key)
        });
        ok_path |= all_moved;
    }
    assert!(
        ok_path,
        "{name}: no path with the kernel's verdict {kernel} has all its matched native rules' counters moved\n  tracer: {summary}\n  before: {before:?}\n  after:  {after:?}"
    );
    eprintln!("{name}: kernel {kernel}, tracer {summary}");
}

macro_rules! cases {
    ($($name:ident: $case:expr;)*) => {
        $(
            #[test]
            fn $name() {
                run(stringify!($name), &$case);
            }
        )*
        /// How many cases there are.
        #[allow(dead_code)]
        const COUNT: usize = [$(stringify!($name)),*].len();
    };
}

/// A firewalld-shaped zone layout (firewalld 1.x, nftables backend): SSH allowed in public.
const FIREWALLD: &str = "table inet firewalld {
            chain filter_IN_public_allow { tcp dport 22 ct state { new, untracked } counter accept; }
            chain filter_IN_public { jump filter_IN_public_allow; meta l4proto { icmp, ipv6-icmp } accept; }
            chain filter_INPUT_ZONES { iifname \"eth0\" goto filter_IN_public; goto filter_IN_public; }
            chain filter_INPUT { type filter hook input priority filter + 10; policy accept;
              ct state { established, related } accept; ct status dnat accept; iifname \"lo\" accept;
              ct state invalid drop; jump filter_INPUT_ZONES; counter reject with icmpx admin-prohibited; } }";

const FW: &str = "table inet fw {
  chain input { type filter hook input priority filter; policy drop;
    tcp dport 22 counter accept
  }
}";

cases! {
    // The reproduction: a native input chain with policy drop beside an iptables rule.
    repro_native_policy_drops_what_iptables_accepts: Case {
        nft: FW, ipt: &["-A INPUT -p tcp --dport 80 -j ACCEPT"], backend: Backend::Nft,
        send: Send::Tcp(false, 80), expect: "DROP",
    };
    repro_native_accepts_ssh: Case {
        nft: FW, ipt: &["-A INPUT -p tcp --dport 80 -j ACCEPT"], backend: Backend::Nft,
        send: Send::Tcp(false, 22), expect: "ACCEPT",
    };
    native_accept_then_iptables_drop: Case {
        nft: "table inet fw { chain input { type filter hook input priority -10; policy accept;
            tcp dport 80 counter accept; } }",
        ipt: &["-A INPUT -p tcp --dport 80 -j DROP"], backend: Backend::Nft,
        send: Send::Tcp(false, 80), expect: "DROP",
    };
    iptables_accept_then_native_drop: Case {
        nft: "table inet fw { chain input { type filter hook input priority 10; policy accept;
            tcp dport 80 counter drop; } }",
        ipt: &["-A INPUT -p tcp --dport 80 -j ACCEPT"], backend: Backend::Nft,
        send: Send::Tcp(false, 80), expect: "DROP",
    };
    early_native_accept_later_native_drop: Case {
        nft: "table inet a { chain i { type filter hook input priority -5; tcp dport 80 counter accept; } }
              table ip b { chain i { type filter hook input priority 5; tcp dport 80 counter drop; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "DROP",
    };
    early_native_drop_wins: Case {
        nft: "table inet a { chain i { type filter hook input priority -5; tcp dport 80 counter drop; } }
              table ip b { chain i { type filter hook input priority 5; tcp dport 80 counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "DROP",
    };
    equal_priority_later_table_first: Case {
        nft: "table inet a { chain i { type filter hook input priority 0; tcp dport 80 counter accept; } }
              table inet b { chain i { type filter hook input priority 0; tcp dport 80 counter reject with tcp reset; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "REJECT",
    };
    named_set_holds_the_source: Case {
        nft: "table inet fw { set ok { type ipv4_addr; elements = { 10.9.0.2, 192.0.2.1 } }
            chain input { type filter hook input priority 0; policy drop;
              ip saddr @ok tcp dport 80 counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "ACCEPT",
    };
    named_set_lacks_the_source: Case {
        nft: "table inet fw { set ok { type ipv4_addr; elements = { 10.9.0.3, 192.0.2.1 } }
            chain input { type filter hook input priority 0; policy drop;
              ip saddr @ok tcp dport 80 counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "DROP",
    };
    interval_set_holds_the_network: Case {
        nft: "table ip fw { set nets { type ipv4_addr; flags interval; elements = { 10.9.0.0/24, 172.16.0.0/12 } }
            chain input { type filter hook input priority 0; policy drop;
              ip saddr @nets counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 443), expect: "ACCEPT",
    };
    interval_set_excludes_the_network: Case {
        nft: "table ip fw { set nets { type ipv4_addr; flags interval; elements = { 10.8.0.0/16, 10.9.1.0/24 } }
            chain input { type filter hook input priority 0; policy drop;
              ip saddr @nets counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 443), expect: "DROP",
    };
    verdict_map_drops: Case {
        nft: "table inet fw { chain input { type filter hook input priority 0; policy accept;
            tcp dport vmap { 22 : accept, 80 : drop }; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "DROP",
    };
    verdict_map_accepts: Case {
        nft: "table inet fw { chain input { type filter hook input priority 0; policy drop;
            tcp dport vmap { 22 : accept, 80 : drop }; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 22), expect: "ACCEPT",
    };
    verdict_map_jumps_to_a_chain: Case {
        nft: "table inet fw {
            chain web { ip saddr 10.9.0.2 counter accept; counter reject }
            chain input { type filter hook input priority 0; policy drop;
              tcp dport vmap { 443 : jump web }; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 443), expect: "ACCEPT",
    };
    concatenation_matches: Case {
        nft: "table inet fw { chain input { type filter hook input priority 0; policy drop;
            ip saddr . tcp dport { 10.9.0.2 . 443, 10.9.0.7 . 80 } counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 443), expect: "ACCEPT",
    };
    concatenation_misses: Case {
        nft: "table inet fw { chain input { type filter hook input priority 0; policy drop;
            ip saddr . tcp dport { 10.9.0.2 . 443, 10.9.0.7 . 80 } counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "DROP",
    };
    dnat_in_nft_then_input_accepts_the_new_port: Case {
        nft: "table ip nat { chain pre { type nat hook prerouting priority dstnat;
                tcp dport 8080 counter dnat to 10.9.0.1:80; } }
              table inet fw { chain input { type filter hook input priority 0; policy drop;
                tcp dport 80 counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 8080), expect: "ACCEPT",
    };
    dnat_in_nft_then_input_drops_the_old_port: Case {
        nft: "table ip nat { chain pre { type nat hook prerouting priority dstnat;
                tcp dport 8080 counter dnat to 10.9.0.1:80; } }
              table inet fw { chain input { type filter hook input priority 0; policy drop;
                tcp dport 8080 counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 8080), expect: "DROP",
    };
    inet_table_ipv6_drop: Case {
        nft: FW, ipt: &[], backend: Backend::Nft, send: Send::Tcp(true, 80), expect: "DROP",
    };
    inet_table_ipv6_accept: Case {
        nft: FW, ipt: &[], backend: Backend::Nft, send: Send::Tcp(true, 22), expect: "ACCEPT",
    };
    ip6_saddr_prefix: Case {
        nft: "table ip6 fw { chain input { type filter hook input priority 0; policy drop;
            ip6 saddr 2001:db8:9::/64 tcp dport 443 counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(true, 443), expect: "ACCEPT",
    };
    reject_with_tcp_reset: Case {
        nft: "table inet fw { chain input { type filter hook input priority 0;
            tcp dport 23 counter reject with tcp reset; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 23), expect: "REJECT",
    };
    conntrack_state_new: Case {
        nft: "table inet fw { chain input { type filter hook input priority 0; policy drop;
            ct state established,related counter accept
            ct state new tcp dport 80 counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "ACCEPT",
    };
    rate_limit_is_undecidable: Case {
        nft: "table inet fw { chain input { type filter hook input priority 0; policy drop;
            tcp dport 80 limit rate 1/minute counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "ACCEPT or DROP",
    };
    ping_accepted_by_l4proto: Case {
        nft: "table inet fw { chain input { type filter hook input priority 0; policy drop;
            meta l4proto icmp counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Ping, expect: "ACCEPT",
    };
    ping_dropped_by_icmp_type: Case {
        nft: "table inet fw { chain input { type filter hook input priority 0;
            icmp type echo-request counter drop; } }",
        ipt: &["-A INPUT -p icmp -j ACCEPT"], backend: Backend::Nft, send: Send::Ping, expect: "DROP",
    };
    mark_set_early_matched_later: Case {
        nft: "table inet fw {
            chain pre { type filter hook prerouting priority -150; tcp dport 80 counter meta mark set 0x2; }
            chain input { type filter hook input priority 0; meta mark 0x2 counter drop; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "DROP",
    };
    input_interface_name: Case {
        nft: "table inet fw { chain input { type filter hook input priority 0;
            iifname \"eth0\" tcp dport 443 counter drop; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 443), expect: "DROP",
    };
    jump_and_return: Case {
        nft: "table inet fw {
            chain check { ip saddr 10.9.0.0/24 counter return; counter drop; }
            chain input { type filter hook input priority 0; policy drop;
              jump check; tcp dport 80 counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "ACCEPT",
    };
    fib_daddr_type_local: Case {
        nft: "table inet fw { chain input { type filter hook input priority 0; policy drop;
            fib daddr type local tcp dport 80 counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "ACCEPT",
    };
    dormant_table_filters_nothing: Case {
        nft: "table inet fw { flags dormant; chain input { type filter hook input priority 0; policy drop; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "ACCEPT",
    };
    locally_sent_dropped_in_output: Case {
        nft: "table inet fw { chain output { type filter hook output priority 0;
            tcp dport 9000 counter drop; } }",
        ipt: &[], backend: Backend::Nft, send: Send::LocalTcp(9000), expect: "DROP",
    };
    reverse_path_check_passes_on_the_connected_network: Case {
        nft: "table inet fw {
            chain pre { type filter hook prerouting priority -10; fib saddr . iif oif missing counter drop; }
            chain input { type filter hook input priority 0; policy drop; tcp dport 80 counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 80), expect: "ACCEPT",
    };
    conntrack_status_dnat_after_nft_dnat: Case {
        nft: "table ip nat { chain pre { type nat hook prerouting priority dstnat;
                tcp dport 8080 counter dnat to 10.9.0.1:80; } }
              table inet fw { chain input { type filter hook input priority 0; policy drop;
                ct status dnat counter accept; } }",
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 8080), expect: "ACCEPT",
    };
    firewalld_shaped_zone_goto: Case {
        nft: FIREWALLD,
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 443), expect: "REJECT",
    };
    firewalld_shaped_zone_allows_ssh: Case {
        nft: FIREWALLD,
        ipt: &[], backend: Backend::Nft, send: Send::Tcp(false, 22), expect: "ACCEPT",
    };
    legacy_iptables_accept_native_drop: Case {
        nft: FW, ipt: &["-A INPUT -p tcp --dport 80 -j ACCEPT"], backend: Backend::Legacy,
        send: Send::Tcp(false, 80), expect: "DROP",
    };
}

// Issue 11: at least 25 cases against the kernel.
const _: () = assert!(COUNT >= 25);
