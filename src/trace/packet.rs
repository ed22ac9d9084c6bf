//! The packet a trace follows, and the names iptables uses for its parts: protocols, TCP flags,
//! ICMP and ICMPv6 types, conntrack states, well-known ports. The same readers serve the rule
//! compiler (what a rule says) and the command line (what the user says), so both agree.

use crate::ruleset::Family;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

/// Where a packet comes from: off the wire through an interface, or from a local process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Arrives on an interface: PREROUTING, then INPUT or FORWARD.
    Network,
    /// Sent by a process on this machine: OUTPUT, then POSTROUTING.
    Local,
}

/// The conntrack state a packet has once conntrack has seen it (after the raw table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CtState {
    New,
    Established,
    Related,
    Invalid,
    Untracked,
}

impl CtState {
    pub const ALL: [CtState; 5] = [
        CtState::New,
        CtState::Established,
        CtState::Related,
        CtState::Invalid,
        CtState::Untracked,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CtState::New => "NEW",
            CtState::Established => "ESTABLISHED",
            CtState::Related => "RELATED",
            CtState::Invalid => "INVALID",
            CtState::Untracked => "UNTRACKED",
        }
    }

    /// Case-insensitive, as iptables reads them.
    pub fn parse(s: &str) -> Option<CtState> {
        CtState::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for CtState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the pkttype match calls the link-layer destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PktType {
    Unicast,
    Broadcast,
    Multicast,
}

impl PktType {
    pub fn parse(s: &str) -> Option<PktType> {
        match s.to_ascii_lowercase().as_str() {
            "unicast" | "host" => Some(PktType::Unicast),
            "broadcast" => Some(PktType::Broadcast),
            "multicast" => Some(PktType::Multicast),
            _ => None,
        }
    }
}

/// Where a connection's NAT binding rewrites a packet of its original direction: to this
/// address and port (the conntrack entry's reply tuple says it: a DNAT'd entry replies from the
/// new destination, an SNAT'd one to the new source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Binding {
    pub addr: IpAddr,
    pub port: Option<u16>,
}

impl std::fmt::Display for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.addr, self.port) {
            (IpAddr::V6(a), Some(p)) => write!(f, "[{a}]:{p}"),
            (a, Some(p)) => write!(f, "{a}:{p}"),
            (a, None) => write!(f, "{a}"),
        }
    }
}

impl Binding {
    /// `ADDR`, `ADDR:PORT` or `[V6]:PORT`, as the command line's `--dnat-to` takes it.
    pub fn parse(s: &str) -> Result<Binding, String> {
        let s = s.trim();
        let bad = || {
            format!(
                "{s:?} is not an address with an optional port (10.0.0.10, 10.0.0.10:80, [fd00::10]:80)"
            )
        };
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Binding { addr, port: None });
        }
        if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
            return Ok(Binding {
                addr: sa.ip(),
                port: Some(sa.port()),
            });
        }
        Err(bad())
    }

    /// The bindings of a conntrack entry for its original direction: (DNAT, SNAT), each only
    /// when the reply tuple shows a translation.
    pub fn of_entry(e: &crate::conntrack::Entry) -> (Option<Binding>, Option<Binding>) {
        let (o, r) = (&e.orig, &e.reply);
        let dnat = (r.src != o.dst || r.sport != o.dport).then_some(Binding {
            addr: r.src,
            port: r.sport,
        });
        let snat = (r.dst != o.src || r.dport != o.sport).then_some(Binding {
            addr: r.dst,
            port: r.dport,
        });
        (dnat, snat)
    }
}

/// One packet, described as far as the user knows it. Anything left `None` is unknown, and a
/// rule that looks at it is "unknown" too (the trace then follows both outcomes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Packet {
    pub origin: Origin,
    /// The interface it arrives on (`Origin::Network`).
    pub in_iface: Option<String>,
    /// The interface it leaves by, after any DNAT (forwarded or locally sent packets).
    pub out_iface: Option<String>,
    /// IP protocol number (6 tcp, 17 udp, 1 icmp, 58 ipv6-icmp ...).
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// The TCP flags byte; `None`: SYN when the state is NEW, ACK otherwise.
    pub tcp_flags: Option<u8>,
    /// ICMP or ICMPv6 type and code.
    pub icmp: Option<(u8, u8)>,
    pub state: CtState,
    pub mark: u32,
    /// The connection's mark; `None` is unknown (0 for a NEW connection).
    pub ctmark: Option<u32>,
    /// Length of the IP packet in bytes (the length match).
    pub length: Option<u32>,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: Option<u8>,
    /// Source MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<[u8; 6]>,
    /// A second or later fragment (what `-f` matches).
    pub fragment: bool,
    /// Link-layer destination; `None`: derived from the destination address.
    pub pkttype: Option<PktType>,
    /// The connection's NAT bindings, for a packet of an existing connection in its original
    /// direction: the kernel rewrites it from the binding, and the nat table is not traversed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dnat: Option<Binding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snat: Option<Binding>,
}

fn endpoint(a: IpAddr, port: Option<u16>, has_ports: bool) -> String {
    let addr = match a {
        IpAddr::V6(_) if has_ports => format!("[{a}]"),
        _ => a.to_string(),
    };
    match (has_ports, port) {
        (false, _) => addr,
        (true, Some(p)) => format!("{addr}:{p}"),
        (true, None) => format!("{addr}:any"),
    }
}

/// `IPv4 tcp 198.51.100.7:40000 → 203.0.113.2:22 SYN, NEW, mark 0x0, from the network on
/// wan0`: how both faces describe a packet.
impl std::fmt::Display for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self;
        let ports = has_ports(p.proto);
        write!(
            f,
            "{} {} {} → {}",
            p.family().label(),
            proto_name(p.proto),
            endpoint(p.src, p.sport, ports),
            endpoint(p.dst, p.dport, ports)
        )?;
        if p.proto == 6 {
            write!(f, " {}", tcp_flags_text(p.effective_tcp_flags()))?;
        }
        if let Some((t, c)) = p.icmp {
            write!(f, " type {t}/{c}")?;
        }
        write!(f, ", {}, mark {:#x}", p.state, p.mark)?;
        if let Some(t) = p.ttl {
            write!(f, ", ttl {t}")?;
        }
        if let Some(l) = p.length {
            write!(f, ", {l} bytes")?;
        }
        match (p.origin, &p.in_iface) {
            (Origin::Local, _) => write!(f, ", sent by this machine")?,
            (Origin::Network, Some(i)) => write!(f, ", from the network on {i}")?,
            (Origin::Network, None) => write!(f, ", from the network (interface not given)")?,
        }
        if let Some(o) = &p.out_iface {
            write!(f, ", leaving by {o}")?;
        }
        if let Some(b) = p.dnat {
            write!(f, ", its connection DNAT'd to {b}")?;
        }
        if let Some(b) = p.snat {
            write!(f, ", its connection SNAT'd to {b}")?;
        }
        Ok(())
    }
}

impl Packet {
    /// A NEW packet from the network with everything else unknown or zero.
    pub fn new(proto: u8, src: IpAddr, dst: IpAddr) -> Packet {
        Packet {
            origin: Origin::Network,
            in_iface: None,
            out_iface: None,
            proto,
            src,
            dst,
            sport: None,
            dport: None,
            tcp_flags: None,
            icmp: None,
            state: CtState::New,
            mark: 0,
            ctmark: None,
            length: None,
            ttl: None,
            mac: None,
            fragment: false,
            pkttype: None,
            dnat: None,
            snat: None,
        }
    }

    /// The family of the source address (a trace checks that the destination agrees).
    pub fn family(&self) -> Family {
        family_of(self.src)
    }

    /// The TCP flags the trace uses: as given, else SYN for NEW and ACK for any other state.
    pub fn effective_tcp_flags(&self) -> u8 {
        self.tcp_flags.unwrap_or(match self.state {
            CtState::New => TCP_SYN,
            _ => TCP_ACK,
        })
    }
}

pub fn family_of(a: IpAddr) -> Family {
    match a {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

/// One address of this machine, with its prefix length (so that directed broadcasts are known)
/// and, when known, its interface (MASQUERADE and REDIRECT pick an interface's address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalAddr {
    pub addr: IpAddr,
    pub prefix: u8,
    pub iface: Option<String>,
}

impl LocalAddr {
    /// `ADDR`, `ADDR/LEN`, `ADDR%IFACE` or `ADDR/LEN%IFACE`. Without a length, the address alone.
    pub fn parse(s: &str) -> Result<LocalAddr, String> {
        let s = s.trim();
        let (rest, iface) = match s.split_once('%') {
            Some((a, i)) if !i.is_empty() => (a, Some(i.to_string())),
            Some(_) => return Err(format!("{s:?} has an empty interface name after %")),
            None => (s, None),
        };
        let (a, len) = match rest.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (rest, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match len {
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{l:?} is not a prefix length between 0 and {max}"))?,
            None => max,
        };
        Ok(LocalAddr {
            addr,
            prefix,
            iface,
        })
    }
}

impl fmt::Display for LocalAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)?;
        if let Some(i) = &self.iface {
            write!(f, "%{i}")?;
        }
        Ok(())
    }
}

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;
pub const TCP_URG: u8 = 0x20;
const TCP_FLAG_NAMES: [(&str, u8); 8] = [
    ("FIN", TCP_FIN),
    ("SYN", TCP_SYN),
    ("RST", TCP_RST),
    ("PSH", TCP_PSH),
    ("ACK", TCP_ACK),
    ("URG", TCP_URG),
    ("ECE", 0x40),
    ("CWR", 0x80),
];

/// `SYN,ACK`, `ALL`, `NONE` (iptables' names, case-insensitive; `,` or `|` between them).
pub fn parse_tcp_flags(s: &str) -> Option<u8> {
    let mut v = 0u8;
    for part in s.split([',', '|']) {
        let p = part.trim().to_ascii_uppercase();
        v |= match p.as_str() {
            "ALL" => 0x3f,
            "NONE" => 0,
            _ => TCP_FLAG_NAMES.iter().find(|(n, _)| *n == p)?.1,
        };
    }
    Some(v)
}

pub fn tcp_flags_text(v: u8) -> String {
    if v == 0 {
        return "NONE".into();
    }
    TCP_FLAG_NAMES
        .iter()
        .filter(|(_, b)| v & b != 0)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

const PROTOCOLS: [(&str, u8); 22] = [
    ("all", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ipencap", 4),
    ("ipip", 4),
    ("tcp", 6),
    ("egp", 8),
    ("udp", 17),
    ("ipv6", 41),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmpv6", 58),
    ("ipv6-icmp", 58),
    ("icmp6", 58),
    ("ospf", 89),
    ("pim", 103),
    ("vrrp", 112),
    ("sctp", 132),
    ("mobility-header", 135),
    ("udplite", 136),
    ("dccp", 33),
];

/// A protocol by name (as /etc/protocols and iptables spell it) or number; `all` is 0.
pub fn parse_proto(s: &str) -> Option<u8> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u8>() {
        return Some(n);
    }
    let lower = s.to_ascii_lowercase();
    PROTOCOLS.iter().find(|(n, _)| *n == lower).map(|(_, v)| *v)
}

/// The usual name of a protocol number, or the number.
pub fn proto_name(p: u8) -> String {
    match p {
        58 => "ipv6-icmp".into(),
        4 => "ipencap".into(),
        _ => PROTOCOLS
            .iter()
            .find(|(_, v)| *v == p)
            .map_or_else(|| p.to_string(), |(n, _)| n.to_string()),
    }
}

/// Whether a protocol carries ports the tcp/udp/sctp/dccp/udplite matches read.
pub fn has_ports(p: u8) -> bool {
    matches!(p, 6 | 17 | 33 | 132 | 136)
}

const SERVICES: [(&str, u16); 30] = [
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("bootps", 67),
    ("bootpc", 68),
    ("tftp", 69),
    ("http", 80),
    ("www", 80),
    ("kerberos", 88),
    ("pop3", 110),
    ("auth", 113),
    ("ident", 113),
    ("ntp", 123),
    ("imap", 143),
    ("imap2", 143),
    ("snmp", 161),
    ("ldap", 389),
    ("https", 443),
    ("submission", 587),
    ("ldaps", 636),
    ("imaps", 993),
    ("pop3s", 995),
    ("openvpn", 1194),
    ("mysql", 3306),
    ("postgresql", 5432),
    ("dhcpv6-client", 546),
    ("dhcpv6-server", 547),
];

/// A port number, or one of the common service names iptables would look up.
pub fn parse_port(s: &str) -> Option<u16> {
    let s = s.trim();
    s.parse::<u16>().ok().or_else(|| {
        let lower = s.to_ascii_lowercase();
        SERVICES.iter().find(|(n, _)| *n == lower).map(|(_, v)| *v)
    })
}

/// `N`, `N:M`, `:M`, `N:` (iptables' port ranges); `-` is accepted as well as `:`.
pub fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let s = s.trim();
    match s.split_once([':', '-']) {
        Some((a, b)) => {
            let lo = if a.is_empty() { 0 } else { parse_port(a)? };
            let hi = if b.is_empty() { 65535 } else { parse_port(b)? };
            (lo <= hi).then_some((lo, hi))
        }
        None => parse_port(s).map(|p| (p, p)),
    }
}

/// ICMP type names with their type and, for the specific ones, their code.
const ICMP_NAMES: [(&str, u8, Option<u8>); 36] = [
    ("echo-reply", 0, None),
    ("pong", 0, None),
    ("destination-unreachable", 3, None),
    ("network-unreachable", 3, Some(0)),
    ("host-unreachable", 3, Some(1)),
    ("protocol-unreachable", 3, Some(2)),
    ("port-unreachable", 3, Some(3)),
    ("fragmentation-needed", 3, Some(4)),
    ("source-route-failed", 3, Some(5)),
    ("network-unknown", 3, Some(6)),
    ("host-unknown", 3, Some(7)),
    ("network-prohibited", 3, Some(9)),
    ("host-prohibited", 3, Some(10)),
    ("TOS-network-unreachable", 3, Some(11)),
    ("TOS-host-unreachable", 3, Some(12)),
    ("communication-prohibited", 3, Some(13)),
    ("host-precedence-violation", 3, Some(14)),
    ("precedence-cutoff", 3, Some(15)),
    ("source-quench", 4, None),
    ("redirect", 5, None),
    ("network-redirect", 5, Some(0)),
    ("host-redirect", 5, Some(1)),
    ("TOS-network-redirect", 5, Some(2)),
    ("TOS-host-redirect", 5, Some(3)),
    ("echo-request", 8, None),
    ("ping", 8, None),
    ("router-advertisement", 9, None),
    ("router-solicitation", 10, None),
    ("time-exceeded", 11, None),
    ("ttl-exceeded", 11, None),
    ("ttl-zero-during-transit", 11, Some(0)),
    ("ttl-zero-during-reassembly", 11, Some(1)),
    ("parameter-problem", 12, None),
    ("ip-header-bad", 12, Some(0)),
    ("required-option-missing", 12, Some(1)),
    ("timestamp-request", 13, None),
];

const ICMP6_NAMES: [(&str, u8, Option<u8>); 27] = [
    ("destination-unreachable", 1, None),
    ("no-route", 1, Some(0)),
    ("communication-prohibited", 1, Some(1)),
    ("beyond-scope", 1, Some(2)),
    ("address-unreachable", 1, Some(3)),
    ("port-unreachable", 1, Some(4)),
    ("failed-policy", 1, Some(5)),
    ("reject-route", 1, Some(6)),
    ("packet-too-big", 2, None),
    ("time-exceeded", 3, None),
    ("ttl-exceeded", 3, None),
    ("ttl-zero-during-transit", 3, Some(0)),
    ("ttl-zero-during-reassembly", 3, Some(1)),
    ("parameter-problem", 4, None),
    ("bad-header", 4, Some(0)),
    ("unknown-header-type", 4, Some(1)),
    ("unknown-option", 4, Some(2)),
    ("echo-request", 128, None),
    ("ping", 128, None),
    ("echo-reply", 129, None),
    ("pong", 129, None),
    ("router-solicitation", 133, None),
    ("router-advertisement", 134, None),
    ("neighbour-solicitation", 135, None),
    ("neighbor-solicitation", 135, None),
    ("neighbour-advertisement", 136, None),
    ("neighbor-advertisement", 136, None),
];

/// An ICMP type as the icmp/icmp6 matches take it: `TYPE`, `TYPE/CODE` or a name. Returns the type
/// and the code range; `any` is `None` (every type).
pub fn parse_icmp_type(s: &str, v6: bool) -> Option<Option<(u8, u8, u8)>> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("any") {
        return Some(None);
    }
    if let Some((t, c)) = s.split_once('/') {
        let t = t.parse::<u8>().ok()?;
        let c = c.parse::<u8>().ok()?;
        return Some(Some((t, c, c)));
    }
    if let Ok(t) = s.parse::<u8>() {
        return Some(Some((t, 0, 255)));
    }
    let table: &[(&str, u8, Option<u8>)] = if v6 { &ICMP6_NAMES } else { &ICMP_NAMES };
    let extra: &[(&str, u8, Option<u8>)] = if v6 {
        &[]
    } else {
        &[
            ("timestamp-reply", 14, None),
            ("address-mask-request", 17, None),
            ("address-mask-reply", 18, None),
        ]
    };
    table
        .iter()
        .chain(extra)
        .find(|(n, _, _)| n.eq_ignore_ascii_case(s))
        .map(|&(_, t, c)| Some(c.map_or((t, 0, 255), |c| (t, c, c))))
}

/// ICMP error messages: they belong to the connection of the packet they quote.
pub fn is_icmp_error(v6: bool, kind: u8) -> bool {
    if v6 {
        matches!(kind, 1..=4)
    } else {
        matches!(kind, 3 | 4 | 5 | 11 | 12)
    }
}

/// The protocol number of ICMP in a family (1, or 58 for ICMPv6).
pub fn icmp_proto(family: Family) -> u8 {
    match family {
        Family::V4 => 1,
        Family::V6 => 58,
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut n = 0;
    for part in s.trim().split(':') {
        if n == 6 || part.is_empty() || part.len() > 2 {
            return None;
        }
        out[n] = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 6).then_some(out)
}

/// A number in decimal or `0x` hexadecimal (marks, masks).
pub fn parse_u32(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `VALUE[/MASK]` as the mark and connmark matches and targets write it.
pub fn parse_mark_mask(s: &str) -> Option<(u32, u32)> {
    match s.split_once('/') {
        Some((v, m)) => Some((parse_u32(v)?, parse_u32(m)?)),
        None => Some((parse_u32(s)?, u32::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_proto("TCP"), Some(6));
        assert_eq!(parse_proto("ipv6-icmp"), Some(58));
        assert_eq!(parse_proto("132"), Some(132));
        assert_eq!(parse_proto("nope"), None);
        assert_eq!(proto_name(58), "ipv6-icmp");
        assert_eq!(parse_tcp_flags("FIN,SYN,RST,ACK"), Some(0x17));
        assert_eq!(parse_tcp_flags("ALL"), Some(0x3f));
        assert_eq!(parse_tcp_flags("SYN,BOGUS"), None);
        assert_eq!(tcp_flags_text(0x12), "SYN,ACK");
        assert_eq!(parse_port_range("1024:"), Some((1024, 65535)));
        assert_eq!(parse_port_range("ssh"), Some((22, 22)));
        assert_eq!(parse_port_range("9:3"), None);
        assert_eq!(parse_icmp_type("8", false), Some(Some((8, 0, 255))));
        assert_eq!(parse_icmp_type("3/3", false), Some(Some((3, 3, 3))));
        assert_eq!(
            parse_icmp_type("port-unreachable", false),
            Some(Some((3, 3, 3)))
        );
        assert_eq!(
            parse_icmp_type("neighbour-solicitation", true),
            Some(Some((135, 0, 255)))
        );
        assert_eq!(parse_icmp_type("any", false), Some(None));
        assert_eq!(
            parse_mac("00:11:22:aa:BB:cc"),
            Some([0, 0x11, 0x22, 0xaa, 0xbb, 0xcc])
        );
        assert_eq!(parse_mac("00:11:22"), None);
        assert_eq!(parse_mark_mask("0x10/0xff"), Some((0x10, 0xff)));
        assert_eq!(parse_mark_mask("16"), Some((16, u32::MAX)));
        assert_eq!(CtState::parse("established"), Some(CtState::Established));
    }

    #[test]
    fn local_addresses() {
        let a = LocalAddr::parse("10.0.0.1/24%lan0").unwrap();
        assert_eq!(a.prefix, 24);
        assert_eq!(a.iface.as_deref(), Some("lan0"));
        assert_eq!(a.to_string(), "10.0.0.1/24%lan0");
        assert_eq!(LocalAddr::parse("2001:db8::1").unwrap().prefix, 128);
        assert!(LocalAddr::parse("10.0.0.1/33").is_err());
        assert!(LocalAddr::parse("nope").is_err());
    }
}
