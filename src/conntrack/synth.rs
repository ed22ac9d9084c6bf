//! A synthetic conntrack table at real scale, for benchmarks, tests and the demo: a gateway
//! (public address 203.0.113.1) whose LAN clients (10.0.x.y, 2001:db8::x) talk to servers
//! outside, mostly masqueraded, with a few ports forwarded inward to 10.0.1.x. TCP in every
//! state (mostly ESTABLISHED and TIME_WAIT), UDP (DNS, NTP), ICMP and ICMPv6 pings, GRE and ESP;
//! counters on every entry; a few marks and zones. A handful of clients make most connections,
//! as on a real network, so grouping by source gives top talkers.
//!
//! Deterministic: the same `n` always gives the same entries, every one with a distinct key and
//! a distinct non-zero id.

use super::{Entry, EntryKey, Icmp, Proto, State, Status, TcpState, Tuple};
use crate::ruleset::Family;
use rustc_hash::FxHashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// splitmix64.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The gateway's public address, the source of masqueraded flows.
pub const PUBLIC_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

/// When the synthetic world is "now", in nanoseconds since the epoch (2026-01-01).
pub const NOW_NS: u64 = 1_767_225_600 * 1_000_000_000;

/// Services people reach, with their protocol, weighted by how often.
const SERVICES: &[(Proto, u16, u32)] = &[
    (Proto::TCP, 443, 45),
    (Proto::TCP, 80, 12),
    (Proto::UDP, 53, 14),
    (Proto::TCP, 22, 4),
    (Proto::UDP, 123, 3),
    (Proto::TCP, 5432, 3),
    (Proto::TCP, 993, 2),
    (Proto::UDP, 443, 5),
    (Proto::ICMP, 0, 5),
    (Proto::GRE, 0, 1),
    (Proto(50), 0, 1),
    (Proto::TCP, 8080, 5),
];

/// TCP states with weights, in the proportions of a busy gateway.
const TCP_STATES: &[(TcpState, u32)] = &[
    (TcpState::Established, 60),
    (TcpState::TimeWait, 20),
    (TcpState::SynSent, 5),
    (TcpState::SynRecv, 2),
    (TcpState::FinWait, 3),
    (TcpState::CloseWait, 4),
    (TcpState::LastAck, 2),
    (TcpState::Close, 4),
];

fn pick<T: Copy>(items: &[(T, u32)], r: u64) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = (r % u64::from(total)) as u32;
    for (t, w) in items {
        if x < *w {
            return *t;
        }
        x -= w;
    }
    items[0].0
}

fn client(family: Family, n: u64) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(10, 0, (n / 250) as u8, (n % 250) as u8 + 1)),
        Family::V6 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n as u16 + 1)),
    }
}

fn server(family: Family, n: u64) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(198, 51, 100, (n % 200) as u8 + 1)),
        Family::V6 => IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xffff,
            0,
            0,
            0,
            0,
            n as u16 + 1,
        )),
    }
}

/// `n` distinct entries.
pub fn entries(n: usize) -> Vec<Entry> {
    let mut out = Vec::with_capacity(n);
    let mut seen: FxHashSet<EntryKey> = FxHashSet::default();
    seen.reserve(n);
    let mut i = 0u64;
    while out.len() < n {
        let e = entry(i, out.len() as u32 + 1);
        i += 1;
        if seen.insert(e.key()) {
            out.push(e);
        }
    }
    out
}

/// The `i`th candidate entry, with the given id.
fn entry(i: u64, id: u32) -> Entry {
    let r = [
        mix(i),
        mix(i ^ 0x5555),
        mix(i ^ 0xAAAA_0000),
        mix(i.wrapping_mul(31)),
    ];
    let family = if r[0] % 100 < 15 {
        Family::V6
    } else {
        Family::V4
    };
    let (mut proto, dport, _) = SERVICES[SERVICES
        .iter()
        .scan(0, |acc, s| {
            *acc += s.2;
            Some(*acc)
        })
        .position(|acc| (r[0] >> 8) % 100 < u64::from(acc))
        .unwrap_or(0)];
    if proto == Proto::ICMP && family == Family::V6 {
        proto = Proto::ICMPV6;
    }
    // Clients: a square skews the draw towards the first few, the top talkers.
    let c = (r[1] % 1000) * (r[1] % 1000) / 1000;
    let inbound = proto == Proto::TCP && dport == 8080 && family == Family::V4;
    let sport = 1024 + (r[1] >> 16) as u16 % 64_000;
    let (src, dst) = if inbound {
        // From the Internet to a forwarded port of the gateway.
        (server(family, r[2] >> 8), IpAddr::V4(PUBLIC_V4))
    } else {
        (client(family, c), server(family, r[2] % 997))
    };
    let has_ports = proto.has_ports();
    let icmp_id = (r[1] >> 40) as u16;
    let orig = Tuple {
        src,
        dst,
        sport: has_ports.then_some(sport),
        dport: has_ports.then_some(dport),
        icmp: proto.is_icmp().then_some(Icmp {
            kind: if proto == Proto::ICMP { 8 } else { 128 },
            code: 0,
            id: icmp_id,
        }),
    };
    let mut reply = Tuple {
        src: dst,
        dst: src,
        sport: orig.dport,
        dport: orig.sport,
        icmp: orig.icmp.map(|i| Icmp {
            kind: if proto == Proto::ICMP { 0 } else { 129 },
            ..i
        }),
    };
    let mut status = Status(1 << 3); // CONFIRMED
    if inbound {
        // DNAT to a web server on the LAN.
        reply.src = IpAddr::V4(Ipv4Addr::new(10, 0, 1, (r[2] % 8) as u8 + 10));
        reply.sport = Some(80);
        status.0 |= Status::DST_NAT | (1 << 8);
    } else if family == Family::V4 && r[2] % 10 < 8 {
        // Masqueraded on the way out.
        reply.dst = IpAddr::V4(PUBLIC_V4);
        status.0 |= Status::SRC_NAT | (1 << 7);
    }

    let mut e = Entry::new(family, proto, orig, reply);
    let roll = r[3] % 1000;
    let (replied, assured, timeout, age_s) = match proto {
        Proto::TCP => {
            let st = pick(TCP_STATES, r[3] >> 10);
            e.state = Some(State::Tcp(st));
            let replied = st != TcpState::SynSent;
            let assured = !matches!(st, TcpState::SynSent | TcpState::SynRecv);
            let timeout = match st {
                TcpState::Established => 300 + (r[3] >> 20) % 431_700,
                TcpState::CloseWait => (r[3] >> 20) % 43_200,
                TcpState::SynRecv => (r[3] >> 20) % 60,
                TcpState::LastAck => (r[3] >> 20) % 30,
                TcpState::Close => (r[3] >> 20) % 10,
                _ => (r[3] >> 20) % 120,
            };
            (replied, assured, timeout, 1 + (r[3] >> 30) % 7200)
        }
        Proto::UDP => {
            let replied = roll >= 150;
            let t = if replied { 180 } else { 30 };
            (
                replied,
                replied && roll > 400,
                (r[3] >> 20) % t,
                1 + (r[3] >> 30) % 600,
            )
        }
        p if p.is_icmp() => (roll >= 100, false, (r[3] >> 20) % 30, 1 + (r[3] >> 30) % 30),
        _ => (true, true, (r[3] >> 20) % 600, 1 + (r[3] >> 30) % 86_400),
    };
    if replied {
        e.status = Status(status.0 | Status::SEEN_REPLY);
    } else {
        e.status = status;
    }
    if assured {
        e.status.0 |= Status::ASSURED;
    }
    e.timeout = timeout as u32;
    e.mark = if roll % 20 == 0 { 0x10 } else { 0 };
    e.zone = if roll % 50 == 1 { 1 } else { 0 };
    e.id = id;
    e.use_count = Some(1);
    // Heavy-tailed counters: most flows are small, a few are big.
    let pk = 1 + (mix(r[3]) % 1000).pow(3) / 10_000;
    let size = 60 + mix(r[2]) % 1400;
    e.orig_packets = Some(pk);
    e.orig_bytes = Some(pk * 80);
    e.reply_packets = Some(if replied { pk + pk / 3 } else { 0 });
    e.reply_bytes = Some(if replied { (pk + pk / 3) * size } else { 0 });
    e.start_ns = Some(NOW_NS - age_s * 1_000_000_000);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_distinct_and_varied() {
        let a = entries(5000);
        assert_eq!(a, entries(5000));
        assert_eq!(a.len(), 5000);
        let keys: FxHashSet<_> = a.iter().map(Entry::key).collect();
        let ids: FxHashSet<_> = a.iter().map(|e| e.id).collect();
        assert_eq!((keys.len(), ids.len()), (5000, 5000));
        assert!(a.iter().all(|e| e.id != 0));
        let count = |f: &dyn Fn(&Entry) -> bool| a.iter().filter(|e| f(e)).count();
        assert!(count(&|e| e.family == Family::V6) > 400);
        assert!(count(&|e| e.is_dnat()) > 50);
        assert!(count(&|e| e.is_snat()) > 1000);
        assert!(count(&|e| !e.status.has(Status::SEEN_REPLY)) > 100);
        for p in [
            Proto::TCP,
            Proto::UDP,
            Proto::ICMP,
            Proto::ICMPV6,
            Proto::GRE,
            Proto(50),
        ] {
            assert!(count(&|e| e.proto == p) > 0, "{p:?}");
        }
        for s in ["ESTABLISHED", "TIME_WAIT", "SYN_SENT", "CLOSE"] {
            assert!(count(&|e| e.state_label() == s) > 0, "{s}");
        }
    }
}
