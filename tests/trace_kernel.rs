//! The tracer against the kernel. For every case of tests/common/trace_cases.rs marked
//! `kernel`: two throwaway network namespaces, B (the machine the rule set is for, loaded with
//! iptables-restore) and A (the rest of the world), joined by veth pairs named as the rule set
//! expects on B's side (eth0, ppp0, ...) and created from inside A, so this machine's own
//! namespace never sees an interface, a rule or a packet. A real packet is sent (a TCP connect
//! with a short timeout, a UDP datagram, a ping) from A, or from B for a locally sent one; the
//! rules whose counters moved (`iptables-save -c` in B, before and after) must be the path the
//! tracer names: its deciding rule moved, every rule it says matched moved, and the deciding
//! rule of no other path it offers moved.
//!
//! Each case gets fresh namespaces: a `recent --set` of one case must not decide the next.
//! Needs root (skipped otherwise, failed under CI=true).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

#[path = "common/trace_cases.rs"]
mod cases;
mod common;

use cases::{CASES, Case, Set, packet};
use common::{NetNs, have_tools};
use nfscope::ruleset::{Family, parse};
use nfscope::source::Backend;
use nfscope::source::netns;
use nfscope::trace::{Origin, Packet, Path, StepKind, TableId, Tracer, Tri};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// A rule (`Some(number)`) or a chain's policy (`None`).
type Key = (String, String, Option<usize>);

fn key(table: TableId, chain: &str, rule: Option<usize>) -> Key {
    (table.name().to_string(), chain.to_string(), rule)
}

/// Packet counters of every rule and policy in B.
fn counters(b: &NetNs, family: Family) -> BTreeMap<Key, u64> {
    let text = b.save(family, Backend::Nft);
    let rs = parse(&text, family).expect("iptables-save output parses");
    let mut out = BTreeMap::new();
    for t in &rs.tables {
        let Some(id) = TableId::from_name(&t.name) else {
            continue;
        };
        for c in &t.chains {
            if c.policy.is_some() {
                out.insert(key(id, &c.name, None), c.counters.packets);
            }
            for (i, r) in c.rules.iter().enumerate() {
                out.insert(key(id, &c.name, Some(i + 1)), r.packets());
            }
        }
    }
    out
}

fn host(a: IpAddr) -> String {
    match a {
        IpAddr::V4(_) => format!("{a}/32"),
        IpAddr::V6(_) => format!("{a}/128"),
    }
}

/// Both namespaces, wired for one case.
struct World {
    a: NetNs,
    b: NetNs,
}

impl World {
    fn new(c: &Case, p: &Packet) -> Option<World> {
        let a = NetNs::for_test("trace-a")?;
        let b = NetNs::for_test("trace-b")?;
        for ns in [&a, &b] {
            // Addresses usable at once (no duplicate address detection), so that neighbour
            // discovery speaks from link-local addresses as it normally does.
            for k in ["all", "default"] {
                ns.exec_ok(&["sysctl", "-qw", &format!("net.ipv6.conf.{k}.accept_dad=0")]);
            }
        }
        b.exec_ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        b.exec_ok(&["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"]);
        let w = World { a, b };
        // B's interfaces: where the packet comes in, and where it leaves when forwarded or sent.
        let mut ifaces: Vec<&str> = Vec::new();
        for i in [p.in_iface.as_deref(), p.out_iface.as_deref()]
            .into_iter()
            .flatten()
        {
            if i != "lo" && !ifaces.contains(&i) {
                ifaces.push(i);
            }
        }
        for i in &ifaces {
            w.wire(c.set, i);
        }
        // A is the other end: the source of an arriving packet, the destination of a sent one.
        let (peer_addr, peer_if, b_if) = match p.origin {
            Origin::Network => (p.src, format!("a-{}", ifaces[0]), ifaces[0]),
            Origin::Local if p.dst.is_loopback() => return Some(w),
            Origin::Local => (p.dst, format!("a-{}", ifaces[0]), ifaces[0]),
        };
        let peer = host(peer_addr);
        w.a.exec_ok(&["ip", "addr", "add", &peer, "dev", &peer_if, "nodad"]);
        // One route each way on the veth, whatever the subnets; an arriving packet for an
        // address that is not B's goes to B as the gateway.
        let far = match p.origin {
            Origin::Network => p.dst,
            Origin::Local => p.src,
        };
        let locals = c.set.locals();
        let gateway = locals
            .iter()
            .find(|l| l.iface.as_deref() == Some(b_if) && l.addr.is_ipv4() == far.is_ipv4())
            .map(|l| l.addr)
            .expect("B has an address on the interface");
        let next_hop = if locals.iter().any(|l| l.addr == far) {
            w.a.exec_ok(&["ip", "route", "replace", &host(far), "dev", &peer_if]);
            far
        } else {
            let via = gateway.to_string();
            w.a.exec_ok(&[
                "ip",
                "route",
                "replace",
                &host(far),
                "via",
                &via,
                "dev",
                &peer_if,
                "onlink",
            ]);
            gateway
        };
        w.b.exec_ok(&["ip", "route", "replace", &peer, "dev", b_if]);
        if far.is_ipv6() {
            // Neighbour discovery is ICMPv6 and goes through B's INPUT like anything else; the
            // Arch-shaped rules accept it from link-local sources only, while a host resolving
            // a global neighbour asks from its global address. Fixed entries keep the probe
            // itself the only packet that matters.
            let (a_mac, b_mac) = (w.a.mac(&peer_if), w.b.mac(b_if));
            w.a.exec_ok(&[
                "ip",
                "-6",
                "neigh",
                "replace",
                &next_hop.to_string(),
                "lladdr",
                &b_mac,
                "dev",
                &peer_if,
                "nud",
                "permanent",
            ]);
            w.b.exec_ok(&[
                "ip",
                "-6",
                "neigh",
                "replace",
                &peer_addr.to_string(),
                "lladdr",
                &a_mac,
                "dev",
                b_if,
                "nud",
                "permanent",
            ]);
        }
        Some(w)
    }

    /// A veth pair from A (`a-NAME`) to B (`NAME`), up, with B's addresses of that interface.
    fn wire(&self, set: &Set, name: &str) {
        let peer = format!("a-{name}");
        let bname = self.b.name().to_string();
        self.a.exec_ok(&[
            "ip", "link", "add", &peer, "type", "veth", "peer", "name", name, "netns", &bname,
        ]);
        for l in set
            .locals()
            .iter()
            .filter(|l| l.iface.as_deref() == Some(name))
        {
            let addr = format!("{}/{}", l.addr, l.prefix);
            let mut args = vec!["ip", "addr", "add", &addr, "dev", name];
            if l.addr.is_ipv6() {
                args.push("nodad");
            }
            self.b.exec_ok(&args);
        }
        self.a.exec_ok(&["ip", "link", "set", &peer, "up"]);
        self.b.exec_ok(&["ip", "link", "set", name, "up"]);
    }

    /// Send the packet: from A when it arrives from the network, from B when B sends it.
    fn send(&self, p: &Packet) {
        let ns = match p.origin {
            Origin::Network => &self.a,
            Origin::Local => &self.b,
        };
        match p.proto {
            1 | 58 => {
                let dst = p.dst.to_string();
                let v = if p.proto == 58 { "-6" } else { "-4" };
                // The verdict may be a drop: no reply is fine.
                let _ = ns.exec(&["ping", v, "-c", "1", "-W", "1", &dst]);
            }
            6 => {
                let dst = SocketAddr::new(p.dst, p.dport.expect("a port"));
                netns::run_in(ns.name(), move || {
                    // Refused, reset, timed out: all fine; the SYN went.
                    let _ = TcpStream::connect_timeout(&dst, Duration::from_millis(400));
                })
                .expect("enter the namespace");
            }
            17 => {
                let (src, dst) = (
                    SocketAddr::new(p.src, p.sport.unwrap_or(0)),
                    SocketAddr::new(p.dst, p.dport.expect("a port")),
                );
                netns::run_in(ns.name(), move || {
                    let s = UdpSocket::bind(src).expect("bind the source address and port");
                    s.send_to(b"nfscope", dst).expect("send a datagram");
                })
                .expect("enter the namespace");
            }
            other => panic!("no way to send protocol {other}"),
        }
    }
}

trait Mac {
    fn mac(&self, iface: &str) -> String;
}

impl Mac for NetNs {
    /// An interface's link-layer address.
    fn mac(&self, iface: &str) -> String {
        let out = self.exec_ok(&["ip", "-j", "link", "show", "dev", iface]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j prints JSON");
        v[0]["address"]
            .as_str()
            .expect("an interface has an address")
            .to_string()
    }
}

/// The deciding step of a path as a counter key.
fn decider(p: &Path) -> Option<Key> {
    let s = p.decider()?;
    Some(key(s.table?, s.chain.as_deref()?, s.rule))
}

/// The rules a path says the packet matched (decided or assumed).
fn matched(p: &Path) -> Vec<Key> {
    p.steps
        .iter()
        .filter(|s| match &s.kind {
            StepKind::Rule {
                matched, assumed, ..
            } => *matched == Tri::Yes || *assumed == Some(true),
            _ => false,
        })
        .filter_map(|s| Some(key(s.table?, s.chain.as_deref()?, s.rule)))
        .collect()
}

/// Run one case through the kernel; what disagrees with the tracer, if anything.
fn cross_check(c: &Case) -> Option<Result<(), String>> {
    let p = packet(c.packet);
    let w = World::new(c, &p)?;
    w.b.restore(c.set.family, Backend::Nft, &c.set.text());
    let rs = parse(&c.set.text(), c.set.family).expect("the rule set parses");
    let trace = Tracer::new(&rs).trace(&p, &c.set.options());
    let before = counters(&w.b, c.set.family);
    w.send(&p);
    // The peer's side of a veth handles the packet in a softirq: wait until the counters have
    // moved and then stayed put for two reads in a row (every packet meets some chain).
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut after = counters(&w.b, c.set.family);
    loop {
        std::thread::sleep(Duration::from_millis(25));
        let next = counters(&w.b, c.set.family);
        if (next == after && after != before) || std::time::Instant::now() > deadline {
            break;
        }
        after = next;
    }
    let moved: BTreeSet<&Key> = after
        .iter()
        .filter(|(k, n)| before.get(*k).is_some_and(|b| *n > b))
        .map(|(k, _)| k)
        .collect();
    let deciders: BTreeSet<Key> = trace.paths.iter().filter_map(decider).collect();
    let kernel_paths: Vec<&Path> = trace
        .paths
        .iter()
        .filter(|path| {
            decider(path).is_some_and(|d| moved.contains(&d))
                && matched(path).iter().all(|k| moved.contains(k))
        })
        .collect();
    let moved_deciders: Vec<&Key> = deciders.iter().filter(|d| moved.contains(d)).collect();
    let ok = !kernel_paths.is_empty() && moved_deciders.len() == 1;
    Some(if ok {
        eprintln!(
            "{}: the kernel took path {} ({} {:?})",
            c.name,
            kernel_paths[0].id + 1,
            kernel_paths[0].verdict,
            moved_deciders[0]
        );
        Ok(())
    } else {
        Err(format!(
            "{} ({}: {}):\n  tracer: {}\n  deciders offered: {deciders:?}\n  moved in the kernel: {moved:?}\n  matched on each path: {:?}",
            c.name,
            c.set.file,
            c.packet,
            trace.summary(),
            trace.paths.iter().map(matched).collect::<Vec<_>>()
        ))
    })
}

fn run_cases(file: &str) {
    if !have_tools(Backend::Nft) {
        return;
    }
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| c.kernel && c.set.file == file)
        .collect();
    assert!(!cases.is_empty(), "no kernel cases for {file}");
    let mut failures = Vec::new();
    for c in cases {
        match cross_check(c) {
            None => return,
            Some(Ok(())) => {}
            Some(Err(e)) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn arch_host_cases_agree_with_the_kernel() {
    run_cases(cases::ARCH.file);
}

#[test]
fn router_cases_agree_with_the_kernel() {
    run_cases(cases::ROUTER.file);
}

#[test]
fn nat_gateway_cases_agree_with_the_kernel() {
    run_cases(cases::GATEWAY.file);
}

#[test]
fn ipv6_host_cases_agree_with_the_kernel() {
    run_cases(cases::V6HOST.file);
}

#[test]
fn at_least_eight_cases_are_checked_against_the_kernel() {
    assert!(CASES.iter().filter(|c| c.kernel).count() >= 8);
}
