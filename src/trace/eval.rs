//! The packet as a walk sees it, and what each condition says about it: yes, no, or unknown.
//! Values may be partly unknown: an address after MASQUERADE is "one of this machine's", a port
//! the user did not give is "any", a mark restored from an unknown connection mark has unknown
//! bits. A condition is decided when every value it could take agrees, unknown otherwise.

use super::Tri;
use super::compile::{
    AddrTypeMatch, CT_DNAT, CT_SNAT, Cond, CtMatch, CtOpt, Dir, PortDir, STATUS_ASSURED,
    STATUS_CONFIRMED, STATUS_EXPECTED, STATUS_SEEN_REPLY, addrtype, ct_bit,
};
use super::packet::{CtState, LocalAddr, PktType, has_ports};
use crate::ruleset::Family;
use compact_str::CompactString;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AddrVal {
    Known(IpAddr),
    /// Somewhere in an inclusive range (a NAT target with a range).
    Range(IpAddr, IpAddr),
    /// One of this machine's addresses (of this interface, when known): MASQUERADE, REDIRECT.
    Local(Option<CompactString>),
}

impl AddrVal {
    pub fn text(&self) -> String {
        match self {
            AddrVal::Known(a) => a.to_string(),
            AddrVal::Range(a, b) => format!("{a}-{b}"),
            AddrVal::Local(Some(i)) => format!("(an address of {i})"),
            AddrVal::Local(None) => "(a local address)".into(),
        }
    }

    /// What a test of every address this could be says: the same answer, or unknown.
    fn each(&self, env: &Env, f: impl Fn(IpAddr) -> Tri) -> Tri {
        match self {
            AddrVal::Known(a) => f(*a),
            AddrVal::Range(a, b) if a == b => f(*a),
            AddrVal::Range(..) => Tri::Unknown,
            AddrVal::Local(iface) => {
                let mut out: Option<Tri> = None;
                for a in env.addrs_of(iface.as_deref()) {
                    let t = f(a);
                    match out {
                        None => out = Some(t),
                        Some(o) if o != t => return Tri::Unknown,
                        _ => {}
                    }
                }
                out.unwrap_or(Tri::Unknown)
            }
        }
    }

    pub fn in_nets(&self, nets: &[IpNet], env: &Env) -> Tri {
        if let AddrVal::Range(lo, hi) = self
            && lo != hi
        {
            return nets.iter().fold(Tri::No, |acc, n| {
                let t = if n.contains(lo) && n.contains(hi) {
                    Tri::Yes
                } else if *hi < n.network() || *lo > n.broadcast() {
                    Tri::No
                } else {
                    Tri::Unknown
                };
                acc.or(t)
            });
        }
        self.each(env, |a| Tri::from_bool(nets.iter().any(|n| n.contains(&a))))
    }

    pub fn in_range(&self, lo: IpAddr, hi: IpAddr, env: &Env) -> Tri {
        if let AddrVal::Range(a, b) = self
            && a != b
        {
            return if lo <= *a && *b <= hi {
                Tri::Yes
            } else if *b < lo || *a > hi {
                Tri::No
            } else {
                Tri::Unknown
            };
        }
        self.each(env, |a| Tri::from_bool(lo <= a && a <= hi))
    }
}

/// A port as far as it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortVal {
    /// The protocol has no ports.
    None,
    Known(u16),
    /// Somewhere in an inclusive range; `0-65535` when the user did not say.
    Range(u16, u16),
}

impl PortVal {
    pub fn in_range(self, lo: u16, hi: u16) -> Tri {
        match self {
            PortVal::None => Tri::No,
            PortVal::Known(p) => Tri::from_bool(lo <= p && p <= hi),
            PortVal::Range(a, b) if lo <= a && b <= hi => Tri::Yes,
            PortVal::Range(a, b) if b < lo || a > hi => Tri::No,
            PortVal::Range(..) => Tri::Unknown,
        }
    }

    pub fn text(self) -> Option<String> {
        match self {
            PortVal::None => None,
            PortVal::Known(p) => Some(p.to_string()),
            PortVal::Range(0, 65535) => Some("any".into()),
            PortVal::Range(a, b) => Some(format!("{a}-{b}")),
        }
    }
}

/// An interface as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IfVal {
    /// The hook has no such device (no input device in OUTPUT, no output device in INPUT).
    None,
    Known(CompactString),
    /// Not given; never `lo` (a walk knows when a packet uses lo).
    Unknown,
}

impl IfVal {
    fn matches(&self, name: &str, wildcard: bool) -> Tri {
        match self {
            // `-i +` matches any name, even the empty one.
            _ if wildcard && name.is_empty() => Tri::Yes,
            IfVal::None => Tri::No,
            IfVal::Known(n) if wildcard => Tri::from_bool(n.starts_with(name)),
            IfVal::Known(n) => Tri::from_bool(n == name),
            // Loopback traffic is always known as such: an interface not given is never lo.
            IfVal::Unknown if !wildcard && name == "lo" => Tri::No,
            IfVal::Unknown => Tri::Unknown,
        }
    }

    pub fn text(&self) -> Option<String> {
        match self {
            IfVal::None => None,
            IfVal::Known(n) => Some(n.to_string()),
            IfVal::Unknown => Some("?".into()),
        }
    }

    pub fn known(&self) -> Option<&str> {
        match self {
            IfVal::Known(n) => Some(n),
            _ => None,
        }
    }
}

/// A 32-bit mark of which some bits may be unknown (`value` is 0 where `known` is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bits {
    pub value: u32,
    pub known: u32,
}

impl Bits {
    pub const UNKNOWN: Bits = Bits { value: 0, known: 0 };

    pub fn known(v: u32) -> Bits {
        Bits {
            value: v,
            known: u32::MAX,
        }
    }

    /// `(mark & mask) == value`, as the mark and connmark matches test.
    pub fn matches(self, value: u32, mask: u32) -> Tri {
        if value & !mask != 0 || (self.value ^ value) & mask & self.known != 0 {
            Tri::No
        } else if mask & !self.known == 0 {
            Tri::Yes
        } else {
            Tri::Unknown
        }
    }

    /// `(self & !clear) ^ xor`.
    pub fn apply(self, clear: u32, xor: u32) -> Bits {
        Bits {
            value: (self.value & !clear) ^ xor,
            known: self.known | clear,
        }
        .normal()
    }

    pub fn and_const(self, c: u32) -> Bits {
        Bits {
            value: self.value & c,
            known: self.known | !c,
        }
    }

    pub fn xor(self, o: Bits) -> Bits {
        Bits {
            value: self.value ^ o.value,
            known: self.known & o.known,
        }
        .normal()
    }

    fn normal(self) -> Bits {
        Bits {
            value: self.value & self.known,
            known: self.known,
        }
    }

    pub fn text(self) -> String {
        match self.known {
            u32::MAX => format!("{:#x}", self.value),
            0 => "unknown".into(),
            k => format!("{:#x} (only bits {k:#x} known)", self.value),
        }
    }
}

/// The connection tracking side of a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ct {
    /// What conntrack decides for the packet (the description's state).
    pub state: CtState,
    /// Conntrack has seen the packet (after raw in PREROUTING and OUTPUT).
    pub attached: bool,
    /// A raw rule said NOTRACK.
    pub notrack: bool,
    pub dnat: bool,
    pub snat: bool,
    /// The connection was confirmed (a locally sent packet back in on lo).
    pub confirmed: bool,
    /// The original direction's tuple, as conntrack recorded it.
    pub orig: Option<(AddrVal, AddrVal, PortVal, PortVal)>,
    pub nat_dst_done: bool,
    pub nat_src_done: bool,
}

impl Ct {
    /// The state matches see, and whether a connection is attached.
    pub fn view(&self) -> (CtState, bool) {
        if self.notrack {
            return (CtState::Untracked, false);
        }
        if !self.attached {
            // In raw, before conntrack has run: no connection yet, which reads as INVALID.
            return (CtState::Invalid, false);
        }
        match self.state {
            s @ (CtState::Untracked | CtState::Invalid) => (s, false),
            s => (s, true),
        }
    }

    /// The connection is new in this walk (NEW or RELATED): its tuples and NAT are known.
    fn fresh(&self) -> bool {
        matches!(self.view(), (CtState::New | CtState::Related, true))
    }
}

/// The packet during a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pkt {
    pub proto: u8,
    pub src: AddrVal,
    pub dst: AddrVal,
    pub sport: PortVal,
    pub dport: PortVal,
    pub tcp_flags: u8,
    pub icmp: Option<(u8, u8)>,
    pub in_if: IfVal,
    pub out_if: IfVal,
    pub mark: Bits,
    pub ctmark: Bits,
    pub ct: Ct,
    pub length: Option<u32>,
    pub ttl: Option<u8>,
    pub mac: Option<[u8; 6]>,
    pub fragment: bool,
    pub pkttype: Option<PktType>,
    /// Came back in on lo after being sent locally (no link-layer header).
    pub looped: bool,
    /// The connection's NAT bindings (an existing connection's packet, original direction).
    pub dnat_to: Option<crate::trace::packet::Binding>,
    pub snat_to: Option<crate::trace::packet::Binding>,
}

/// What a walk knows about the machine.
pub(crate) struct Env<'a> {
    pub family: Family,
    /// This family's local addresses.
    pub locals: &'a [LocalAddr],
}

impl Env<'_> {
    /// Addresses of this machine (of `iface`, when given), loopback included.
    pub fn addrs_of<'s>(&'s self, iface: Option<&'s str>) -> impl Iterator<Item = IpAddr> + 's {
        let lo = match self.family {
            Family::V4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Family::V6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        let has_lo = self.locals.iter().any(|l| l.addr == lo);
        let implicit = (!has_lo && iface.is_none_or(|i| i == "lo")).then_some(lo);
        self.locals
            .iter()
            .filter(move |l| iface.is_none() || l.iface.as_deref() == iface)
            .map(|l| l.addr)
            .chain(implicit)
    }

    /// The interface and network of this machine's address whose network holds `a` (the
    /// longest prefix wins): where the kernel's connected route sends a packet for `a`.
    pub fn connected(&self, a: IpAddr) -> Option<(&str, IpNet)> {
        self.locals
            .iter()
            .filter_map(|l| {
                let net = IpNet::new(l.addr, l.prefix).ok()?.trunc();
                let iface = l.iface.as_deref()?;
                (l.prefix > 0 && l.prefix < net.max_prefix_len() && net.contains(&a))
                    .then_some((iface, net))
            })
            .max_by_key(|(_, n)| n.prefix_len())
    }

    /// This machine's address (loopback ranges included).
    pub fn is_local(&self, a: IpAddr) -> bool {
        a.is_loopback() || self.locals.iter().any(|l| l.addr == a)
    }

    /// The limited broadcast, or a directed broadcast of one of this machine's IPv4 networks.
    pub fn is_broadcast(&self, a: IpAddr) -> bool {
        let IpAddr::V4(v4) = a else {
            return false;
        };
        v4.is_broadcast()
            || self.locals.iter().any(|l| {
                l.prefix < 31 && IpNet::new(l.addr, l.prefix).is_ok_and(|n| n.broadcast() == a)
            })
    }
}

/// The answer of one condition.
pub(crate) fn eval(c: &Cond, p: &Pkt, env: &Env) -> Tri {
    match c {
        Cond::Proto { neg, proto } => Tri::from_bool(p.proto == *proto).negate_if(*neg),
        Cond::Addr { neg, dir, nets } => addr(p, *dir).in_nets(nets, env).negate_if(*neg),
        Cond::Iface {
            neg,
            out,
            name,
            wildcard,
        } => {
            let i = if *out { &p.out_if } else { &p.in_if };
            i.matches(name, *wildcard).negate_if(*neg)
        }
        Cond::Fragment { neg } => Tri::from_bool(p.fragment).negate_if(*neg),
        Cond::NotFragment => Tri::from_bool(!p.fragment),
        Cond::Port { neg, dir, lo, hi } => {
            if !has_ports(p.proto) {
                return Tri::No;
            }
            port(p, *dir).in_range(*lo, *hi).negate_if(*neg)
        }
        Cond::Multiport { neg, dir, ranges } => {
            if !has_ports(p.proto) {
                return Tri::No;
            }
            let any = |v: PortVal| {
                ranges
                    .iter()
                    .fold(Tri::No, |acc, &(lo, hi)| acc.or(v.in_range(lo, hi)))
            };
            let t = match dir {
                PortDir::Src => any(p.sport),
                PortDir::Dst => any(p.dport),
                PortDir::Either => any(p.sport).or(any(p.dport)),
            };
            t.negate_if(*neg)
        }
        Cond::TcpFlags { neg, mask, cmp } => {
            if p.proto != 6 {
                return Tri::No;
            }
            Tri::from_bool(p.tcp_flags & mask == *cmp).negate_if(*neg)
        }
        Cond::Icmp { neg, v6, kind } => {
            if p.proto != if *v6 { 58 } else { 1 } {
                return Tri::No;
            }
            let Some((t, code)) = p.icmp else {
                return Tri::Unknown;
            };
            let m = match kind {
                None => true,
                Some((kt, lo, hi)) => t == *kt && *lo <= code && code <= *hi,
            };
            Tri::from_bool(m).negate_if(*neg)
        }
        Cond::Conntrack(c) => conntrack(c, p, env),
        Cond::State { neg, mask } => {
            let (s, _) = p.ct.view();
            Tri::from_bool(mask & ct_bit(s) != 0).negate_if(*neg)
        }
        Cond::AddrType(a) => addr_type(a, p, env),
        Cond::IpRange { neg, dir, lo, hi } => addr(p, *dir).in_range(*lo, *hi, env).negate_if(*neg),
        Cond::Mark { neg, value, mask } => p.mark.matches(*value, *mask).negate_if(*neg),
        Cond::ConnMark { neg, value, mask } => {
            if !p.ct.view().1 {
                // No connection: the kernel's connmark match says no, negated or not.
                return Tri::No;
            }
            p.ctmark.matches(*value, *mask).negate_if(*neg)
        }
        Cond::Mac { neg, mac } => {
            // No link-layer header: locally sent, or back in on lo.
            if p.looped || p.in_if == IfVal::None {
                return Tri::No;
            }
            match p.mac {
                Some(m) => Tri::from_bool(m == *mac).negate_if(*neg),
                None => Tri::Unknown,
            }
        }
        Cond::Length { neg, lo, hi } => match p.length {
            Some(l) => Tri::from_bool(*lo <= l && l <= *hi).negate_if(*neg),
            None => Tri::Unknown,
        },
        Cond::Ttl { op, value, .. } => match p.ttl {
            Some(t) => Tri::from_bool(match op {
                b'=' => t == *value,
                b'<' => t < *value,
                b'>' => t > *value,
                _ => t != *value,
            }),
            None => Tri::Unknown,
        },
        Cond::PktType { neg, kind } => match p.pkttype {
            Some(k) => Tri::from_bool(k == *kind).negate_if(*neg),
            None => Tri::Unknown,
        },
        Cond::Const(b) => Tri::from_bool(*b),
        Cond::Unknown { .. } => Tri::Unknown,
    }
}

fn addr(p: &Pkt, dir: Dir) -> &AddrVal {
    match dir {
        Dir::Src => &p.src,
        Dir::Dst => &p.dst,
    }
}

fn port(p: &Pkt, dir: Dir) -> PortVal {
    match dir {
        Dir::Src => p.sport,
        Dir::Dst => p.dport,
    }
}

fn conntrack(c: &CtMatch, p: &Pkt, env: &Env) -> Tri {
    let (state, has_ct) = p.ct.view();
    let state_test = c.state.map(|(neg, mask)| {
        let mut t = Tri::from_bool(mask & ct_bit(state) != 0);
        if has_ct {
            // The virtual states: known for a connection this walk created.
            let fresh = p.ct.fresh();
            for (bit, done) in [(CT_DNAT, p.ct.dnat), (CT_SNAT, p.ct.snat)] {
                if mask & bit != 0 {
                    t = t.or(if fresh {
                        Tri::from_bool(done)
                    } else {
                        Tri::Unknown
                    });
                }
            }
        }
        t.negate_if(neg)
    });
    if !has_ct {
        // As the kernel: without a connection only --ctstate can match.
        return state_test.unwrap_or(Tri::No);
    }
    let mut out = state_test.unwrap_or(Tri::Yes);
    for (neg, opt) in &c.opts {
        if out == Tri::No {
            break;
        }
        out = out.and(ct_opt(opt, p, env, state).negate_if(*neg));
    }
    out
}

fn ct_opt(opt: &CtOpt, p: &Pkt, env: &Env, state: CtState) -> Tri {
    let fresh = p.ct.fresh();
    match opt {
        CtOpt::Proto(proto) => Tri::from_bool(p.proto == *proto),
        CtOpt::Addr { orig, dir, nets } => {
            if !fresh {
                return Tri::Unknown;
            }
            let v = match (orig, dir, &p.ct.orig) {
                (true, Dir::Src, Some(o)) => &o.0,
                (true, Dir::Dst, Some(o)) => &o.1,
                // The reply comes from where the packet now goes, to where it now comes from.
                (false, Dir::Src, _) => &p.dst,
                (false, Dir::Dst, _) => &p.src,
                (true, _, None) => return Tri::Unknown,
            };
            v.in_nets(nets, env)
        }
        CtOpt::Port { orig, dir, lo, hi } => {
            if !fresh || !has_ports(p.proto) {
                return Tri::Unknown;
            }
            let v = match (orig, dir, &p.ct.orig) {
                (true, Dir::Src, Some(o)) => o.2,
                (true, Dir::Dst, Some(o)) => o.3,
                (false, Dir::Src, _) => p.dport,
                (false, Dir::Dst, _) => p.sport,
                (true, _, None) => return Tri::Unknown,
            };
            v.in_range(*lo, *hi)
        }
        CtOpt::Status(mask) => {
            let bit = |b: u8| -> Tri {
                match (state, b) {
                    (CtState::New | CtState::Related, STATUS_CONFIRMED) => {
                        Tri::from_bool(p.ct.confirmed)
                    }
                    (CtState::New, _) => Tri::No,
                    (CtState::Related, STATUS_EXPECTED) => Tri::Yes,
                    (CtState::Related, _) => Tri::No,
                    (_, STATUS_SEEN_REPLY | STATUS_CONFIRMED) => Tri::Yes,
                    _ => Tri::Unknown,
                }
            };
            [
                STATUS_EXPECTED,
                STATUS_SEEN_REPLY,
                STATUS_ASSURED,
                STATUS_CONFIRMED,
            ]
            .into_iter()
            .filter(|b| mask & b != 0)
            .fold(Tri::No, |acc, b| acc.or(bit(b)))
        }
        CtOpt::Dir(original) => match state {
            CtState::New => Tri::from_bool(*original),
            _ => Tri::Unknown,
        },
        CtOpt::Unknown => Tri::Unknown,
    }
}

fn addr_type(a: &AddrTypeMatch, p: &Pkt, env: &Env) -> Tri {
    let limit = if a.limit_in {
        Some(&p.in_if)
    } else if a.limit_out {
        Some(&p.out_if)
    } else {
        None
    };
    let mut out = Tri::Yes;
    for (test, v) in [(a.src, &p.src), (a.dst, &p.dst)] {
        let Some((neg, mask)) = test else {
            continue;
        };
        let t = v.each(env, |addr| match addr {
            IpAddr::V4(_) => {
                let types = v4_types(addr, env, limit);
                if types & !mask == 0 {
                    Tri::Yes
                } else if types & mask == 0 {
                    Tri::No
                } else {
                    Tri::Unknown
                }
            }
            IpAddr::V6(v6) => v6_type_match(v6, mask, env, limit),
        });
        out = out.and(t.negate_if(neg));
    }
    out
}

/// Whether `a` is an address of the interface `limit` (`None`: any interface).
fn local_on(a: IpAddr, env: &Env, limit: Option<&IfVal>) -> Tri {
    if !env.is_local(a) {
        return Tri::No;
    }
    let Some(dev) = limit else {
        return Tri::Yes;
    };
    let Some(dev) = dev.known() else {
        return Tri::Unknown;
    };
    if a.is_loopback() {
        return Tri::from_bool(dev == "lo");
    }
    let mut t = Tri::No;
    for l in env.locals.iter().filter(|l| l.addr == a) {
        t = t.or(match &l.iface {
            Some(i) => Tri::from_bool(i == dev),
            None => Tri::Unknown,
        });
    }
    t
}

/// The addrtype types an IPv4 address can have (a set: more than one bit means not sure).
/// The kernel looks the address up in the local routing table only.
fn v4_types(a: IpAddr, env: &Env, limit: Option<&IfVal>) -> u16 {
    let IpAddr::V4(v4) = a else {
        return addrtype::UNICAST;
    };
    if v4.octets()[0] == 0 || env.is_broadcast(a) {
        addrtype::BROADCAST
    } else if v4.is_multicast() {
        addrtype::MULTICAST
    } else {
        match local_on(a, env, limit) {
            Tri::Yes => addrtype::LOCAL,
            Tri::No => addrtype::UNICAST,
            Tri::Unknown => addrtype::LOCAL | addrtype::UNICAST,
        }
    }
}

/// The IPv6 addrtype match, as the kernel's `match_type6` does it: MULTICAST, UNICAST and
/// UNSPEC are properties of the address; LOCAL, ANYCAST and UNREACHABLE come from a route lookup
/// (UNREACHABLE depends on routes nfscope does not know).
fn v6_type_match(a: Ipv6Addr, mask: u16, env: &Env, limit: Option<&IfVal>) -> Tri {
    let mc = a.is_multicast();
    let unspec = a.is_unspecified();
    if (mask & addrtype::MULTICAST != 0 && !mc)
        || (mask & addrtype::UNICAST != 0 && (mc || unspec))
        || (mask & addrtype::UNSPEC != 0 && !unspec)
    {
        return Tri::No;
    }
    if mask & (addrtype::LOCAL | addrtype::ANYCAST | addrtype::UNREACHABLE) == 0 {
        return Tri::Yes;
    }
    let local = local_on(IpAddr::V6(a), env, limit);
    let mut t = Tri::No;
    if mask & addrtype::LOCAL != 0 {
        t = t.or(local);
    }
    if mask & addrtype::ANYCAST != 0 {
        // The subnet-router anycast address of one of this machine's networks.
        let anycast = env.locals.iter().any(|l| {
            l.addr.is_ipv6()
                && l.prefix < 127
                && IpNet::new(l.addr, l.prefix).is_ok_and(|n| n.network() == IpAddr::V6(a))
        });
        t = t.or(Tri::from_bool(anycast));
    }
    if mask & addrtype::UNREACHABLE != 0 {
        t = t.or(if local == Tri::Yes {
            Tri::No
        } else {
            Tri::Unknown
        });
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connected_network_names_the_way_out() {
        let locals: Vec<LocalAddr> = ["10.0.0.1/24%lan0", "10.0.0.129/25%dmz0", "203.0.113.2"]
            .iter()
            .map(|s| LocalAddr::parse(s).unwrap())
            .collect();
        let env = Env {
            family: Family::V4,
            locals: &locals,
        };
        let way = |a: &str| {
            env.connected(a.parse().unwrap())
                .map(|(i, n)| (i, n.to_string()))
        };
        assert_eq!(way("10.0.0.10"), Some(("lan0", "10.0.0.0/24".into())));
        assert_eq!(way("10.0.0.200"), Some(("dmz0", "10.0.0.128/25".into())));
        assert_eq!(way("198.51.100.7"), None, "no default route is modelled");
        assert_eq!(
            way("203.0.113.9"),
            None,
            "an address without a prefix has no network"
        );
    }

    #[test]
    fn bits_know_what_they_know() {
        let m = Bits::known(0x10);
        assert_eq!(m.matches(0x10, 0xff), Tri::Yes);
        assert_eq!(m.matches(0x20, 0xff), Tri::No);
        let half = Bits::UNKNOWN.apply(0xff, 0x10);
        assert_eq!(half.matches(0x10, 0xff), Tri::Yes);
        assert_eq!(half.matches(0x4000, 0x4000), Tri::Unknown);
        assert_eq!(half.matches(0x11, 0xff), Tri::No);
        assert_eq!(half.matches(0x1, 0x0), Tri::No);
        assert_eq!(half.text(), "0x10 (only bits 0xff known)");
        // --save-mark then --restore-mark brings the same value back.
        let ct = Bits::UNKNOWN
            .and_const(!u32::MAX)
            .xor(Bits::known(0x10).and_const(u32::MAX));
        assert_eq!(ct, Bits::known(0x10));
    }

    #[test]
    fn ranges_and_unknown_ports() {
        assert_eq!(PortVal::Range(0, 65535).in_range(22, 22), Tri::Unknown);
        assert_eq!(PortVal::Range(1000, 2000).in_range(0, 65535), Tri::Yes);
        assert_eq!(PortVal::Range(1000, 2000).in_range(22, 80), Tri::No);
        assert_eq!(PortVal::None.in_range(0, 65535), Tri::No);
        let env = Env {
            family: Family::V4,
            locals: &[],
        };
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let r = AddrVal::Range(a("10.0.0.1"), a("10.0.0.9"));
        let net = |s: &str| [s.parse::<IpNet>().unwrap()];
        assert_eq!(r.in_nets(&net("10.0.0.0/24"), &env), Tri::Yes);
        assert_eq!(r.in_nets(&net("10.0.0.8/30"), &env), Tri::Unknown);
        assert_eq!(r.in_nets(&net("10.1.0.0/16"), &env), Tri::No);
        // Only loopback is local here: a MASQUERADEd source is 127.0.0.1.
        assert_eq!(
            AddrVal::Local(None).in_nets(&net("127.0.0.0/8"), &env),
            Tri::Yes
        );
    }

    #[test]
    fn interfaces() {
        let k = IfVal::Known("eth0".into());
        assert_eq!(k.matches("eth", true), Tri::Yes);
        assert_eq!(k.matches("eth", false), Tri::No);
        assert_eq!(IfVal::Unknown.matches("eth0", false), Tri::Unknown);
        assert_eq!(IfVal::Unknown.matches("", true), Tri::Yes);
        assert_eq!(IfVal::None.matches("lo", false), Tri::No);
    }
}
