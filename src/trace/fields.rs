//! Reading a packet description from text, field by field, as the command line (`nfscope
//! trace`) and the Trace screen's form both do: one parser per field with a sentence for what is
//! wrong, and `PacketFields::packet` for what does not fit together.

use super::CtState;
use super::packet::{
    Origin, Packet, family_of, has_ports, icmp_proto, parse_icmp_type, parse_port, parse_proto,
    parse_tcp_flags, parse_u32, proto_name,
};
use crate::ruleset::Family;
use std::net::IpAddr;

/// The fields of a packet description, for naming the one an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Proto,
    Src,
    Dst,
    Sport,
    Dport,
    TcpFlags,
    Icmp,
    InIface,
    OutIface,
    Local,
    State,
    Mark,
}

pub fn proto(s: &str) -> Result<u8, String> {
    match parse_proto(s.trim()) {
        Some(0) => Err("a packet has one protocol: name it (tcp, udp, icmp ...), not all".into()),
        Some(p) => Ok(p),
        None => Err(format!(
            "{s:?} is not a protocol: use a name such as tcp, udp, icmp or ipv6-icmp, or a number from 1 to 255"
        )),
    }
}

pub fn addr(s: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 or IPv6 address (names are not looked up)"))
}

pub fn port(s: &str) -> Result<u16, String> {
    parse_port(s.trim()).ok_or_else(|| {
        format!("{s:?} is not a port: use a number from 0 to 65535 or a name such as ssh")
    })
}

pub fn tcp_flags(s: &str) -> Result<u8, String> {
    parse_tcp_flags(s.trim()).ok_or_else(|| {
        format!("{s:?} is not a list of TCP flags: use FIN, SYN, RST, PSH, ACK, URG (comma-separated), ALL or NONE")
    })
}

pub fn iface(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() < 16
        && !s.contains(|c: char| c.is_whitespace() || c == '/' || c == '+');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not an interface name (1 to 15 characters, no blanks, / or +)"
        ))
    }
}

pub fn state(s: &str) -> Result<CtState, String> {
    CtState::parse(s).ok_or_else(|| {
        format!(
            "{s:?} is not a conntrack state: use NEW, ESTABLISHED, RELATED, INVALID or UNTRACKED"
        )
    })
}

pub fn mark(s: &str) -> Result<u32, String> {
    parse_u32(s.trim())
        .ok_or_else(|| format!("{s:?} is not a mark: use a number such as 16 or 0x10"))
}

/// A packet description whose fields each parsed; `packet` checks that they fit together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketFields {
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub tcp_flags: Option<u8>,
    /// As written: its meaning depends on the family.
    pub icmp_type: Option<String>,
    pub in_iface: Option<String>,
    pub out_iface: Option<String>,
    pub local: bool,
    pub state: CtState,
    pub mark: Option<u32>,
    pub ttl: Option<u8>,
    pub length: Option<u32>,
}

impl PacketFields {
    /// The packet, or the field at fault and a sentence saying what does not fit together.
    /// `name` says how the user knows each field (`--sport` on the command line, `sport` in the
    /// form).
    pub fn packet(&self, name: impl Fn(Field) -> &'static str) -> Result<Packet, (Field, String)> {
        let family = family_of(self.src);
        if family_of(self.dst) != family {
            return Err((
                Field::Dst,
                format!(
                    "{} {} and {} {} are not of the same family: give two IPv4 or two IPv6 addresses",
                    name(Field::Src),
                    self.src,
                    name(Field::Dst),
                    self.dst
                ),
            ));
        }
        let proto = self.proto;
        let pname = proto_name(proto);
        if (self.sport.is_some() || self.dport.is_some()) && !has_ports(proto) {
            let f = if self.sport.is_some() {
                Field::Sport
            } else {
                Field::Dport
            };
            return Err((
                f,
                format!(
                    "{} and {} apply to tcp, udp, sctp, dccp and udplite, not {pname}",
                    name(Field::Sport),
                    name(Field::Dport)
                ),
            ));
        }
        if self.tcp_flags.is_some() && proto != 6 {
            return Err((
                Field::TcpFlags,
                format!("{} applies to tcp, not {pname}", name(Field::TcpFlags)),
            ));
        }
        let icmp = icmp_proto(family);
        if family == Family::V6 && proto == 1 {
            return Err((
                Field::Proto,
                format!(
                    "for IPv6, ICMP is {p} ipv6-icmp (icmpv6); {p} icmp is the IPv4 protocol",
                    p = name(Field::Proto)
                ),
            ));
        }
        let icmp_type = match (&self.icmp_type, proto == icmp) {
            (Some(_), false) => {
                return Err((
                    Field::Icmp,
                    format!(
                        "{} applies to {} {} packets, not {pname}",
                        name(Field::Icmp),
                        name(Field::Proto),
                        proto_name(icmp)
                    ),
                ));
            }
            (Some(t), true) => {
                let v6 = icmp == 58;
                match parse_icmp_type(t.trim(), v6) {
                    Some(Some((kind, code, _))) => Some((kind, code)),
                    _ => {
                        return Err((
                            Field::Icmp,
                            format!(
                                "{t:?} is not an {} type: use a number, TYPE/CODE or a name such as echo-request",
                                if v6 { "ICMPv6" } else { "ICMP" }
                            ),
                        ));
                    }
                }
            }
            // A ping, unless said otherwise.
            (None, true) => Some((if icmp == 58 { 128 } else { 8 }, 0)),
            (None, false) => None,
        };
        if self.local && self.in_iface.is_some() {
            return Err((
                Field::InIface,
                format!(
                    "{} is the interface a packet arrives on; a {} packet is sent by this machine and arrives on none",
                    name(Field::InIface),
                    name(Field::Local)
                ),
            ));
        }
        let mut p = Packet::new(proto, self.src, self.dst);
        p.origin = if self.local {
            Origin::Local
        } else {
            Origin::Network
        };
        p.in_iface = self.in_iface.clone();
        p.out_iface = self.out_iface.clone();
        p.sport = self.sport;
        p.dport = self.dport;
        p.tcp_flags = self.tcp_flags;
        p.icmp = icmp_type;
        p.state = self.state;
        p.mark = self.mark.unwrap_or(0);
        p.ttl = self.ttl;
        p.length = self.length;
        Ok(p)
    }
}
