//! The trace cases: packets through the rule sets in tests/data/trace/, each with the verdicts
//! and deciding rules the tracer must name. Shared by tests/trace_cases.rs (the tracer's
//! answers) and tests/trace_kernel.rs (real packets through the kernel, for the cases marked
//! `kernel`).
#![allow(
    dead_code,
    reason = "each test binary uses a different part of these helpers"
)]

use nfscope::ruleset::{Family, Ruleset, parse};
use nfscope::trace::packet::{parse_mac, parse_proto, parse_tcp_flags, parse_u32};
use nfscope::trace::{CtState, LocalAddr, Origin, Packet, TraceOptions};
use std::net::IpAddr;

/// A rule set and the machine it runs on.
pub struct Set {
    pub file: &'static str,
    pub family: Family,
    /// `ADDR/LEN%IF`: this machine's addresses.
    pub local: &'static [&'static str],
}

pub const ARCH: Set = Set {
    file: "arch-host.rules",
    family: Family::V4,
    local: &["198.51.100.1/24%eth0"],
};
pub const DESKTOP: Set = Set {
    file: "blfs-desktop.rules",
    family: Family::V4,
    local: &["192.168.1.20/24%wlan0"],
};
pub const ROUTER: Set = Set {
    file: "blfs-router.rules",
    family: Family::V4,
    local: &["192.168.2.1/24%lan1", "203.0.113.2/24%wan1"],
};
pub const GATEWAY: Set = Set {
    file: "nat-gateway.rules",
    family: Family::V4,
    local: &[
        "192.168.0.1/24%eth0",
        "10.3.0.1/16%eth1",
        "203.0.113.10/24%ppp0",
    ],
};
pub const V6HOST: Set = Set {
    file: "ipv6-host.rules",
    family: Family::V6,
    local: &["2001:db8:1::1/64%eth0", "fe80::1/64%eth0"],
};

impl Set {
    pub fn text(&self) -> String {
        let path = format!(
            "{}/tests/data/trace/{}",
            env!("CARGO_MANIFEST_DIR"),
            self.file
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub fn ruleset(&self) -> Ruleset {
        parse(&self.text(), self.family).unwrap_or_else(|e| panic!("{}: {e}", self.file))
    }

    pub fn locals(&self) -> Vec<LocalAddr> {
        self.local
            .iter()
            .map(|s| LocalAddr::parse(s).expect("a local address"))
            .collect()
    }

    pub fn options(&self) -> TraceOptions {
        TraceOptions {
            local_addrs: self.locals(),
            ..TraceOptions::default()
        }
    }
}

/// One packet and what must become of it.
pub struct Case {
    pub name: &'static str,
    pub set: &'static Set,
    /// `PROTO SRC[:PORT] > DST[:PORT] [in=IF] [out=IF] [local] [state=S] [flags=F] [icmp=T/C]
    /// [mark=N] [ttl=N] [mac=M]`; IPv6 endpoints with a port in brackets.
    pub packet: &'static str,
    /// Every (verdict, deciding step) the paths end with, as `VERDICT TABLE CHAIN RULE` or
    /// `VERDICT TABLE CHAIN policy`, in any order.
    pub expect: &'static [&'static str],
    /// `field=value` the headers hold at the end of every path (`dst=192.168.0.5`).
    pub after: &'static [&'static str],
    /// Also sent through a real kernel by tests/trace_kernel.rs.
    pub kernel: bool,
}

const fn case(
    name: &'static str,
    set: &'static Set,
    packet: &'static str,
    expect: &'static [&'static str],
) -> Case {
    Case {
        name,
        set,
        packet,
        expect,
        after: &[],
        kernel: false,
    }
}

impl Case {
    const fn after(mut self, after: &'static [&'static str]) -> Case {
        self.after = after;
        self
    }

    const fn kernel(mut self) -> Case {
        self.kernel = true;
        self
    }
}

pub static CASES: &[Case] = &[
    // The Arch host: TCP and UDP chains, recent traps (unknown: the lists are not in the rule
    // set), a chain that RETURNs, multiport, policies.
    case(
        "web port: the scan trap may fire, else TCP accepts",
        &ARCH,
        "tcp 198.51.100.9:40000 > 198.51.100.1:80 in=eth0",
        &["REJECT filter TCP 1", "ACCEPT filter TCP 2"],
    )
    .kernel(),
    case(
        "https",
        &ARCH,
        "tcp 198.51.100.9:40000 > 198.51.100.1:443 in=eth0",
        &["REJECT filter TCP 1", "ACCEPT filter TCP 3"],
    ),
    case(
        "multiport range",
        &ARCH,
        "tcp 198.51.100.9:40000 > 198.51.100.1:8005 in=eth0",
        &["REJECT filter TCP 1", "ACCEPT filter TCP 4"],
    )
    .kernel(),
    case(
        "multiport single port",
        &ARCH,
        "tcp 198.51.100.9:40000 > 198.51.100.1:9090 in=eth0",
        &["REJECT filter TCP 1", "ACCEPT filter TCP 4"],
    ),
    case(
        "closed port: off the end of TCP, back to INPUT's trap",
        &ARCH,
        "tcp 198.51.100.9:40000 > 198.51.100.1:25 in=eth0",
        &["REJECT filter TCP 1", "REJECT filter INPUT 9"],
    )
    .kernel(),
    case(
        "an established connection",
        &ARCH,
        "tcp 198.51.100.9:40000 > 198.51.100.1:25 in=eth0 state=ESTABLISHED",
        &["ACCEPT filter INPUT 1"],
    ),
    case(
        "invalid",
        &ARCH,
        "tcp 198.51.100.9:40000 > 198.51.100.1:80 in=eth0 state=INVALID",
        &["DROP filter INPUT 3"],
    ),
    case(
        "ping",
        &ARCH,
        "icmp 198.51.100.9 > 198.51.100.1 in=eth0 icmp=8/0",
        &["ACCEPT filter INPUT 4"],
    )
    .kernel(),
    case(
        "other ICMP is refused",
        &ARCH,
        "icmp 198.51.100.9 > 198.51.100.1 in=eth0 icmp=13/0",
        &["REJECT filter INPUT 10"],
    ),
    case(
        "DNS over UDP",
        &ARCH,
        "udp 198.51.100.9:5353 > 198.51.100.1:53 in=eth0",
        &["REJECT filter UDP 1", "ACCEPT filter UDP 2"],
    )
    .kernel(),
    case(
        "DHCP reply: UDP RETURNs to INPUT, which rejects",
        &ARCH,
        "udp 198.51.100.9:67 > 198.51.100.1:68 in=eth0",
        &["REJECT filter UDP 1", "REJECT filter INPUT 8"],
    )
    .kernel(),
    case(
        "SSH brute-force chain",
        &ARCH,
        "tcp 198.51.100.9:40000 > 198.51.100.1:2200 in=eth0",
        &["DROP filter LOG_AND_DROP 2", "ACCEPT filter IN_SSH 2"],
    )
    .kernel(),
    case(
        "an ACK scan never reaches TCP",
        &ARCH,
        "tcp 198.51.100.9:40000 > 198.51.100.1:80 in=eth0 flags=ACK",
        &["REJECT filter INPUT 9"],
    ),
    case(
        "a local connection comes back in on lo",
        &ARCH,
        "tcp 127.0.0.1:40000 > 127.0.0.1:5432 local",
        &["ACCEPT filter INPUT 2"],
    )
    .kernel(),
    case(
        "sent by the host",
        &ARCH,
        "tcp 198.51.100.1:40000 > 198.51.100.9:443 local out=eth0",
        &["ACCEPT filter OUTPUT policy"],
    )
    .kernel(),
    case(
        "not for this host: FORWARD's policy",
        &ARCH,
        "tcp 198.51.100.9:40000 > 10.1.1.1:80 in=eth0 out=eth0",
        &["DROP filter FORWARD policy"],
    ),
    // The BLFS desktop: addrtype, a rate limit, owner (unknown), an OUTPUT policy of DROP.
    case(
        "a directed broadcast",
        &DESKTOP,
        "udp 192.168.1.7:137 > 192.168.1.255:137 in=wlan0",
        &["DROP filter INPUT 7"],
    ),
    case(
        "mDNS multicast",
        &DESKTOP,
        "udp 192.168.1.7:5353 > 224.0.0.251:5353 in=wlan0",
        &["DROP filter INPUT 7"],
    ),
    case(
        "ident is refused politely",
        &DESKTOP,
        "tcp 192.168.1.7:40000 > 192.168.1.20:113 in=wlan0",
        &["REJECT filter INPUT 4"],
    ),
    case(
        "a private source that cannot be here",
        &DESKTOP,
        "tcp 172.16.5.5:40000 > 192.168.1.20:22 in=wlan0",
        &["DROP filter INPUT 5"],
    ),
    case(
        "a ping within the rate limit, or the policy",
        &DESKTOP,
        "icmp 192.168.1.7 > 192.168.1.20 in=wlan0 icmp=8/0",
        &["ACCEPT filter INPUT 8", "DROP filter INPUT policy"],
    ),
    case(
        "a reply comes back in",
        &DESKTOP,
        "tcp 198.51.100.34:443 > 192.168.1.20:50000 in=wlan0 state=ESTABLISHED",
        &["ACCEPT filter INPUT 2"],
    ),
    case(
        "browsing out",
        &DESKTOP,
        "tcp 192.168.1.20:50000 > 198.51.100.34:443 local out=wlan0",
        &["ACCEPT filter OUTPUT 4"],
    ),
    case(
        "NTP out depends on the process's owner",
        &DESKTOP,
        "udp 192.168.1.20:123 > 192.0.2.123:123 local out=wlan0",
        &["ACCEPT filter OUTPUT 5", "DROP filter OUTPUT policy"],
    ),
    case(
        "ssh out is not allowed",
        &DESKTOP,
        "tcp 192.168.1.20:50000 > 192.0.2.22:22 local out=wlan0",
        &["DROP filter OUTPUT policy"],
    ),
    // The BLFS router: negated interfaces, MASQUERADE.
    case(
        "a LAN client goes out, masqueraded",
        &ROUTER,
        "tcp 192.168.2.50:40000 > 198.51.100.80:443 in=lan1 out=wan1",
        &["ACCEPT filter FORWARD 2"],
    )
    .after(&["src=203.0.113.2", "dst=198.51.100.80"]),
    case(
        "nothing new comes in from outside",
        &ROUTER,
        "tcp 198.51.100.80:40000 > 192.168.2.50:22 in=wan1 out=lan1",
        &["DROP filter FORWARD policy"],
    ),
    case(
        "the LAN may reach the router",
        &ROUTER,
        "tcp 192.168.2.50:40000 > 192.168.2.1:22 in=lan1",
        &["ACCEPT filter INPUT 2"],
    )
    .kernel(),
    case(
        "the outside may not",
        &ROUTER,
        "tcp 198.51.100.80:40000 > 203.0.113.2:22 in=wan1",
        &["DROP filter INPUT policy"],
    )
    .kernel(),
    case(
        "replies reach the router",
        &ROUTER,
        "udp 198.51.100.53:53 > 203.0.113.2:40000 in=wan1 state=ESTABLISHED",
        &["ACCEPT filter INPUT 3"],
    ),
    case(
        "the router's own DNS query",
        &ROUTER,
        "udp 203.0.113.2:40000 > 198.51.100.53:53 local out=wan1",
        &["ACCEPT filter OUTPUT 3"],
    )
    .after(&["src=203.0.113.2"])
    .kernel(),
    case(
        "the router's own HTTPS is not allowed",
        &ROUTER,
        "tcp 203.0.113.2:40000 > 198.51.100.80:443 local out=wan1",
        &["DROP filter OUTPUT policy"],
    ),
    case(
        "without --out only the masquerade is unknown, and it does not matter",
        &ROUTER,
        "tcp 192.168.2.50:40000 > 198.51.100.80:443 in=lan1",
        &["ACCEPT filter FORWARD 2"],
    ),
    // The NAT gateway: DNAT seen by FORWARD, REDIRECT, marks and -g, NOTRACK, mac.
    case(
        "port forward: ssh to the server",
        &GATEWAY,
        "tcp 198.51.100.9:40000 > 203.0.113.10:22 in=ppp0 out=eth0",
        &["ACCEPT filter fw-open 1"],
    )
    .after(&["dst=192.168.0.5", "dport=22"])
    .kernel(),
    case(
        "port forward with a new port",
        &GATEWAY,
        "tcp 198.51.100.9:40000 > 203.0.113.10:8000 in=ppp0 out=eth0",
        &["ACCEPT filter fw-open 2"],
    )
    .after(&["dst=192.168.0.6", "dport=80"])
    .kernel(),
    case(
        "port forward of UDP, checked with ctstate DNAT",
        &GATEWAY,
        "udp 198.51.100.9:40000 > 203.0.113.10:51820 in=ppp0 out=eth0",
        &["ACCEPT filter fw-open 3"],
    )
    .after(&["dst=192.168.0.7", "dport=51820"])
    .kernel(),
    case(
        "not forwarded: the gateway itself refuses",
        &GATEWAY,
        "tcp 198.51.100.9:40000 > 203.0.113.10:23 in=ppp0",
        &["REJECT filter INPUT 9"],
    )
    .kernel(),
    case(
        "new from outside to the LAN without a forward",
        &GATEWAY,
        "tcp 198.51.100.9:40000 > 192.168.0.50:80 in=ppp0 out=eth0",
        &["REJECT filter FORWARD 5"],
    ),
    case(
        "a LAN client goes out, masqueraded",
        &GATEWAY,
        "tcp 192.168.0.50:40000 > 198.51.100.80:443 in=eth0 out=ppp0",
        &["ACCEPT filter fw-interfaces 1"],
    )
    .after(&["src=203.0.113.10"]),
    case(
        "the other LAN",
        &GATEWAY,
        "tcp 10.3.4.5:40000 > 198.51.100.80:443 in=eth1 out=ppp0",
        &["ACCEPT filter fw-interfaces 2"],
    )
    .after(&["src=203.0.113.10"]),
    case(
        "the phone's marked voice goes to VOICE and out",
        &GATEWAY,
        "udp 192.168.0.40:5060 > 198.51.100.70:5060 in=eth0 out=ppp0",
        &["ACCEPT filter VOICE 1"],
    )
    .after(&["mark=0x10"]),
    case(
        "VOICE RETURNs to the caller of FORWARD: the policy",
        &GATEWAY,
        "udp 192.168.0.40:12000 > 10.3.0.9:12000 in=eth0 out=eth1",
        &["DROP filter FORWARD policy"],
    ),
    case(
        "a given mark is seen by FORWARD",
        &GATEWAY,
        "tcp 10.3.4.5:40000 > 198.51.100.80:443 in=eth1 out=eth0 mark=0x10",
        &["DROP filter FORWARD policy"],
    ),
    case(
        "NTP is not tracked: UNTRACKED, and no NAT",
        &GATEWAY,
        "udp 192.168.0.50:123 > 192.168.0.1:123 in=eth0",
        &["ACCEPT filter INPUT 4"],
    )
    .after(&["state=UNTRACKED"])
    .kernel(),
    case(
        "transparent proxy: REDIRECT to the gateway",
        &GATEWAY,
        "tcp 192.168.0.50:40000 > 198.51.100.80:80 in=eth0",
        &["ACCEPT filter INPUT 6"],
    )
    .after(&["dst=192.168.0.1", "dport=3128"])
    .kernel(),
    case(
        "addrtype LOCAL: no proxy for the gateway's own web server",
        &GATEWAY,
        "tcp 192.168.0.50:40000 > 192.168.0.1:80 in=eth0",
        &["REJECT filter INPUT 9"],
    ),
    case(
        "ssh to the gateway from the admin's MAC",
        &GATEWAY,
        "tcp 192.168.0.50:40000 > 192.168.0.1:22 in=eth0 mac=52:54:00:12:34:56",
        &["ACCEPT filter INPUT 5"],
    ),
    case(
        "ssh to the gateway from an unknown MAC",
        &GATEWAY,
        "tcp 192.168.0.50:40000 > 192.168.0.1:22 in=eth0",
        &["ACCEPT filter INPUT 5", "REJECT filter INPUT 9"],
    ),
    case(
        "a LAN broadcast",
        &GATEWAY,
        "udp 192.168.0.50:138 > 192.168.0.255:138 in=eth0",
        &["DROP filter INPUT 7"],
    ),
    case(
        "an established forward is not translated again",
        &GATEWAY,
        "tcp 198.51.100.9:40000 > 192.168.0.5:22 in=ppp0 out=eth0 state=ESTABLISHED flags=ACK",
        &["ACCEPT filter FORWARD 1"],
    )
    .after(&["dst=192.168.0.5"]),
    // IPv6.
    case(
        "IPv6 ssh",
        &V6HOST,
        "tcp [2001:db8:9::5]:40000 > [2001:db8:1::1]:22 in=eth0",
        &["ACCEPT filter TCP 1"],
    )
    .kernel(),
    case(
        "IPv6 https via multiport",
        &V6HOST,
        "tcp [2001:db8:9::5]:40000 > [2001:db8:1::1]:443 in=eth0",
        &["ACCEPT filter TCP 2"],
    ),
    case(
        "IPv6 ping",
        &V6HOST,
        "ipv6-icmp 2001:db8:9::5 > 2001:db8:1::1 in=eth0 icmp=128/0",
        &["ACCEPT filter INPUT 6"],
    )
    .kernel(),
    case(
        "neighbour solicitation from a link-local address",
        &V6HOST,
        "ipv6-icmp fe80::2 > fe80::1 in=eth0 icmp=135/0",
        &["ACCEPT filter INPUT 4"],
    ),
    case(
        "DHCPv6 reply",
        &V6HOST,
        "udp [fe80::99]:547 > [fe80::1]:546 in=eth0",
        &["ACCEPT filter INPUT 5"],
    ),
    case(
        "IPv6 UDP to a closed port: off the end of UDP",
        &V6HOST,
        "udp [2001:db8:9::5]:40000 > [2001:db8:1::1]:161 in=eth0",
        &["REJECT filter INPUT 9"],
    )
    .kernel(),
    case(
        "NAT66 port forward to a container",
        &V6HOST,
        "tcp [2001:db8:9::5]:40000 > [2001:db8:1::1]:8443 in=eth0 out=eth0",
        &["ACCEPT filter FORWARD 1"],
    )
    .after(&["dst=fd00:c::10", "dport=443"]),
    case(
        "IPv6 not for this host",
        &V6HOST,
        "tcp [2001:db8:9::5]:40000 > [2001:db8:2::7]:22 in=eth0 out=eth0",
        &["DROP filter FORWARD policy"],
    ),
];

fn endpoint(s: &str) -> (IpAddr, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[') {
        let (a, p) = rest.split_once("]:").expect("[v6]:port");
        return (
            a.parse().expect("an address"),
            Some(p.parse().expect("a port")),
        );
    }
    if let Ok(a) = s.parse() {
        return (a, None);
    }
    let (a, p) = s.rsplit_once(':').expect("addr:port");
    (
        a.parse().expect("an address"),
        Some(p.parse().expect("a port")),
    )
}

/// The packet a case describes (see `Case::packet`).
pub fn packet(spec: &str) -> Packet {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let [proto, src, ">", dst, rest @ ..] = &words[..] else {
        panic!("a packet is PROTO SRC > DST ...: {spec}");
    };
    let (src, sport) = endpoint(src);
    let (dst, dport) = endpoint(dst);
    let mut p = Packet::new(parse_proto(proto).expect("a protocol"), src, dst);
    p.sport = sport;
    p.dport = dport;
    for w in rest {
        if *w == "local" {
            p.origin = Origin::Local;
            continue;
        }
        let (k, v) = w.split_once('=').expect("key=value");
        match k {
            "in" => p.in_iface = Some(v.into()),
            "out" => p.out_iface = Some(v.into()),
            "state" => p.state = CtState::parse(v).expect("a state"),
            "flags" => p.tcp_flags = Some(parse_tcp_flags(v).expect("flags")),
            "icmp" => {
                let (t, c) = v.split_once('/').expect("type/code");
                p.icmp = Some((t.parse().expect("a type"), c.parse().expect("a code")));
            }
            "mark" => p.mark = parse_u32(v).expect("a mark"),
            "ttl" => p.ttl = Some(v.parse().expect("a ttl")),
            "mac" => p.mac = Some(parse_mac(v).expect("a mac")),
            _ => panic!("unknown key {k} in {spec}"),
        }
    }
    p
}
