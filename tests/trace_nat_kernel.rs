//! NAT-aware tracing against the kernel: three throwaway network namespaces, a client C, a
//! router R and a server S, joined by veth pairs (C ↔ R's wan0, R's lan0 ↔ S). R DNATs tcp
//! 8080 on wan0 to S's port 80. A real connection is made from C to R:8080 and held open; its
//! conntrack entry is read in R with nfscope's own netlink dump, and an ESTABLISHED packet of it
//! is traced through R's rule set with the entry's binding: the tracer must say FORWARD (it said
//! "delivered to a local process" by INPUT before). The kernel agrees when more data flows: R's
//! FORWARD rule for established traffic counts, its INPUT rule does not. Nothing here touches
//! this machine's own namespace. Needs root (skipped otherwise, failed under CI=true).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{NetNs, have_tools};
use nfscope::conntrack::Entry;
use nfscope::edit::apply::read_now;
use nfscope::edit::tools::Tools;
use nfscope::ruleset::Family;
use nfscope::source::{Backend, netns};
use nfscope::trace::{
    Binding, CtState, Hook, LocalAddr, Packet, TableId, TraceOptions, Tracer, Verdict,
};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

const RULES: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
-A PREROUTING -i wan0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.10:80\nCOMMIT\n\
*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
-A FORWARD -d 10.0.0.10/32 -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

/// Packets counted by rule 1 of INPUT and of FORWARD in R.
fn established_counts(r: &NetNs) -> (u64, u64) {
    let text = r.save(Family::V4, Backend::Nft);
    let rs = nfscope::ruleset::parse(&text, Family::V4).expect("parses");
    let first = |chain: &str| {
        rs.table("filter")
            .and_then(|t| t.chain(chain))
            .and_then(|c| c.rules.first())
            .map_or(0, |r| r.packets())
    };
    (first("INPUT"), first("FORWARD"))
}

#[test]
fn an_established_dnat_connection_is_traced_forwarded_as_the_kernel_forwards_it() {
    if !have_tools(Backend::Nft) {
        return;
    }
    let (Some(c), Some(r), Some(s)) = (
        NetNs::for_test("natc"),
        NetNs::for_test("natr"),
        NetNs::for_test("nats"),
    ) else {
        return;
    };
    // C ↔ R (wan0) and R (lan0) ↔ S, made from inside C and S.
    c.exec_ok(&[
        "ip",
        "link",
        "add",
        "c0",
        "type",
        "veth",
        "peer",
        "name",
        "wan0",
        "netns",
        r.name(),
    ]);
    s.exec_ok(&[
        "ip",
        "link",
        "add",
        "s0",
        "type",
        "veth",
        "peer",
        "name",
        "lan0",
        "netns",
        r.name(),
    ]);
    c.exec_ok(&["ip", "addr", "add", "192.0.2.7/24", "dev", "c0"]);
    r.exec_ok(&["ip", "addr", "add", "192.0.2.1/24", "dev", "wan0"]);
    r.exec_ok(&["ip", "addr", "add", "10.0.0.1/24", "dev", "lan0"]);
    s.exec_ok(&["ip", "addr", "add", "10.0.0.10/24", "dev", "s0"]);
    for (ns, dev) in [(&c, "c0"), (&r, "wan0"), (&r, "lan0"), (&s, "s0")] {
        ns.exec_ok(&["ip", "link", "set", dev, "up"]);
    }
    c.exec_ok(&["ip", "route", "add", "default", "via", "192.0.2.1"]);
    s.exec_ok(&["ip", "route", "add", "default", "via", "10.0.0.1"]);
    r.exec_ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    r.restore(Family::V4, Backend::Nft, RULES);

    // S serves port 80: it echoes what it reads until the client closes.
    let listener = netns::run_in(s.name(), || TcpListener::bind("10.0.0.10:80"))
        .expect("enter S")
        .expect("bind 10.0.0.10:80");
    let server = std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 64];
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 || conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    });
    // C connects to R's 8080 and exchanges one message: the connection is ESTABLISHED.
    let mut client = netns::run_in(c.name(), || {
        TcpStream::connect_timeout(
            &SocketAddr::new(ip("192.0.2.1"), 8080),
            Duration::from_secs(3),
        )
    })
    .expect("enter C")
    .expect("connect through the DNAT");
    client
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let echo = |client: &mut TcpStream| {
        client.write_all(b"nfscope").expect("send");
        let mut buf = [0u8; 7];
        client.read_exact(&mut buf).expect("the echo comes back");
    };
    echo(&mut client);
    let sport = client.local_addr().expect("local address").port();

    // R's conntrack entry of it, through nfscope's netlink dump in R.
    let entries: Vec<Entry> = netns::run_in(r.name(), || {
        nfscope::source::conntrack_netlink::dump(Some(Family::V4))
    })
    .expect("enter R")
    .expect("dump R's conntrack table");
    let entry = entries
        .iter()
        .find(|e| e.orig.sport == Some(sport) && e.orig.dport == Some(8080))
        .unwrap_or_else(|| panic!("no entry for port {sport}: {entries:#?}"));
    let (dnat, snat) = Binding::of_entry(entry);
    assert_eq!(
        dnat,
        Some(Binding {
            addr: ip("10.0.0.10"),
            port: Some(80)
        })
    );
    assert_eq!(snat, None);

    // Trace an ESTABLISHED packet of it through R's rule set, R's addresses local.
    let rs = netns::run_in(r.name(), || {
        read_now(
            &Tools {
                backend: Some(Backend::Nft),
            },
            &[Family::V4],
        )
    })
    .expect("enter R")
    .expect("read R's rules")
    .remove(0);
    let tracer = Tracer::new(&rs);
    let mut p = Packet::new(6, ip("192.0.2.7"), ip("192.0.2.1"));
    p.sport = Some(sport);
    p.dport = Some(8080);
    p.in_iface = Some("wan0".into());
    p.state = CtState::Established;
    let opts = TraceOptions {
        local_addrs: ["192.0.2.1/24%wan0", "10.0.0.1/24%lan0"]
            .iter()
            .map(|l| LocalAddr::parse(l).expect("addr"))
            .collect(),
        ..TraceOptions::default()
    };
    // Without the binding the tracer would deliver it to R (the old answer).
    let blind = tracer.trace(&p, &opts);
    assert!(
        blind.paths[0].steps.iter().any(|s| s.hook == Hook::Input),
        "without a binding the packet stays local"
    );
    p.dnat = dnat;
    let t = tracer.trace(&p, &opts);
    assert_eq!(t.certain(), Some(Verdict::Accept), "{t:#?}");
    let path = &t.paths[0];
    assert!(
        !path.steps.iter().any(|s| s.hook == Hook::Input),
        "{path:#?}"
    );
    let decider = path.decider().expect("a decider");
    assert_eq!(
        (
            decider.hook,
            decider.table,
            decider.chain.as_deref(),
            decider.rule
        ),
        (
            Hook::Forward,
            Some(TableId::Filter),
            Some("FORWARD"),
            Some(1)
        )
    );

    // The kernel: more data on the connection moves FORWARD's rule 1, not INPUT's.
    let (in0, fwd0) = established_counts(&r);
    echo(&mut client);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (in1, fwd1) = established_counts(&r);
        if fwd1 > fwd0 {
            assert_eq!(in1, in0, "INPUT counted the forwarded connection");
            break;
        }
        assert!(Instant::now() < deadline, "FORWARD rule 1 did not count");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(client);
    let _ = server.join();
}
