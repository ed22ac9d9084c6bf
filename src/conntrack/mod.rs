//! The conntrack model: one entry per tracked connection, with its original and reply tuples,
//! protocol state, status flags, timeout, mark, zone and optional counters and timestamps. Pure
//! data, no I/O: the sources read sockets and files and hand the bytes or text to the decoders
//! here.
//!
//! - `decode`: ctnetlink messages (binary) to entries and statistics;
//! - `procfs`: the `/proc/net/nf_conntrack` and older `/proc/net/ip_conntrack` text;
//! - `filter`: the filter expression language (docs/conntrack-filter.md);
//! - `table`: the live table that dumps and events ([`CtEvent`]) keep current, with
//!   sorting, grouping and the summary counts;
//! - `log`: the event log, the last events with their times, bounded;
//! - `synth`: a deterministic synthetic table for benchmarks, tests and the demo.

pub mod decode;
pub mod filter;
pub mod format;
pub mod log;
pub mod procfs;
pub mod synth;
pub mod table;

use crate::ruleset::{Counters, Family};
use serde::Serialize;
use std::net::IpAddr;

/// What happened to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CtEventKind {
    New,
    Update,
    Destroy,
}

/// One change, as the kernel announced it (ctnetlink's new, update and destroy event groups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CtEvent {
    /// Serialized as `event`, the key `nfscope conntrack --watch` prints.
    #[serde(rename = "event")]
    pub kind: CtEventKind,
    pub entry: Entry,
}

impl CtEvent {
    pub fn new(entry: Entry) -> CtEvent {
        CtEvent {
            kind: CtEventKind::New,
            entry,
        }
    }

    pub fn update(entry: Entry) -> CtEvent {
        CtEvent {
            kind: CtEventKind::Update,
            entry,
        }
    }

    pub fn destroy(entry: Entry) -> CtEvent {
        CtEvent {
            kind: CtEventKind::Destroy,
            entry,
        }
    }
}

/// The layer-4 protocol, by number, named the way conntrack-tools prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Proto(pub u8);

impl Proto {
    pub const ICMP: Proto = Proto(1);
    pub const TCP: Proto = Proto(6);
    pub const UDP: Proto = Proto(17);
    pub const DCCP: Proto = Proto(33);
    pub const GRE: Proto = Proto(47);
    pub const ICMPV6: Proto = Proto(58);
    pub const SCTP: Proto = Proto(132);
    pub const UDPLITE: Proto = Proto(136);

    /// conntrack-tools' name, or `None` for a protocol it prints by number.
    pub fn known_name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "icmp",
            6 => "tcp",
            17 => "udp",
            33 => "dccp",
            47 => "gre",
            58 => "icmpv6",
            132 => "sctp",
            136 => "udplite",
            _ => return None,
        })
    }

    /// The name, or the number as text.
    pub fn name(self) -> String {
        self.known_name()
            .map_or_else(|| self.0.to_string(), str::to_string)
    }

    /// A protocol name or number as people type it (`tcp`, `6`, `icmp6`).
    pub fn parse(s: &str) -> Option<Proto> {
        let l = s.to_ascii_lowercase();
        let p = match l.as_str() {
            "icmp" => 1,
            "tcp" => 6,
            "udp" => 17,
            "dccp" => 33,
            "gre" => 47,
            "icmpv6" | "icmp6" | "ipv6-icmp" => 58,
            "sctp" => 132,
            "udplite" => 136,
            n => return n.parse().ok().map(Proto),
        };
        Some(Proto(p))
    }

    /// Whether tuples of this protocol carry ports.
    pub fn has_ports(self) -> bool {
        matches!(self.0, 6 | 17 | 33 | 132 | 136)
    }

    pub fn is_icmp(self) -> bool {
        matches!(self.0, 1 | 58)
    }
}

impl Serialize for Proto {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// ICMP's part of a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Icmp {
    #[serde(rename = "type")]
    pub kind: u8,
    pub code: u8,
    pub id: u16,
}

/// One direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Ports, for protocols that have them.
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub icmp: Option<Icmp>,
}

impl Serialize for Tuple {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("src", &self.src.to_string())?;
        m.serialize_entry("dst", &self.dst.to_string())?;
        m.serialize_entry("sport", &self.sport)?;
        m.serialize_entry("dport", &self.dport)?;
        if let Some(i) = &self.icmp {
            m.serialize_entry("type", &i.kind)?;
            m.serialize_entry("code", &i.code)?;
            m.serialize_entry("id", &i.id)?;
        }
        m.end()
    }
}

/// TCP's internal states, as the kernel keeps them (nf_conntrack_proto_tcp.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcpState {
    None,
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
    SynSent2,
}

impl TcpState {
    /// From the kernel's number (CTA_PROTOINFO_TCP_STATE).
    pub fn from_kernel(n: u8) -> Option<TcpState> {
        use TcpState::*;
        Some(match n {
            0 => None,
            1 => SynSent,
            2 => SynRecv,
            3 => Established,
            4 => FinWait,
            5 => CloseWait,
            6 => LastAck,
            7 => TimeWait,
            8 => Close,
            9 => SynSent2,
            _ => return Option::None,
        })
    }

    /// The name conntrack-tools prints.
    pub fn name(self) -> &'static str {
        use TcpState::*;
        match self {
            None => "NONE",
            SynSent => "SYN_SENT",
            SynRecv => "SYN_RECV",
            Established => "ESTABLISHED",
            FinWait => "FIN_WAIT",
            CloseWait => "CLOSE_WAIT",
            LastAck => "LAST_ACK",
            TimeWait => "TIME_WAIT",
            Close => "CLOSE",
            SynSent2 => "SYN_SENT2",
        }
    }

    pub fn parse(s: &str) -> Option<TcpState> {
        (0..=9)
            .filter_map(TcpState::from_kernel)
            .find(|t| t.name().eq_ignore_ascii_case(s))
    }
}

/// A protocol's state: TCP's typed; others (SCTP, DCCP) by the name conntrack-tools prints.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Tcp(TcpState),
    Other(String),
}

impl State {
    pub fn name(&self) -> &str {
        match self {
            State::Tcp(t) => t.name(),
            State::Other(s) => s,
        }
    }
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The connection's status bits (enum ip_conntrack_status), with conntrack-tools' names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Status(pub u32);

/// Bit number and name of each status flag nfscope shows.
pub const STATUS_FLAGS: [(u32, &str); 16] = [
    (0, "EXPECTED"),
    (1, "SEEN_REPLY"),
    (2, "ASSURED"),
    (3, "CONFIRMED"),
    (4, "SRC_NAT"),
    (5, "DST_NAT"),
    (6, "SEQ_ADJUST"),
    (7, "SRC_NAT_DONE"),
    (8, "DST_NAT_DONE"),
    (9, "DYING"),
    (10, "FIXED_TIMEOUT"),
    (11, "TEMPLATE"),
    (12, "UNTRACKED"),
    (13, "HELPER"),
    (14, "OFFLOAD"),
    (15, "HW_OFFLOAD"),
];

impl Status {
    pub const EXPECTED: u32 = 1;
    pub const SEEN_REPLY: u32 = 1 << 1;
    pub const ASSURED: u32 = 1 << 2;
    pub const CONFIRMED: u32 = 1 << 3;
    pub const SRC_NAT: u32 = 1 << 4;
    pub const DST_NAT: u32 = 1 << 5;
    pub const DYING: u32 = 1 << 9;
    pub const UNTRACKED: u32 = 1 << 12;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    /// Names of the set flags, lowest bit first.
    pub fn names(self) -> Vec<&'static str> {
        STATUS_FLAGS
            .iter()
            .filter(|(b, _)| self.0 & (1 << b) != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    /// The bit of a flag name (`ASSURED`, `seen_reply`), or `UNREPLIED` as "not SEEN_REPLY".
    pub fn bit(name: &str) -> Option<u32> {
        STATUS_FLAGS
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(b, _)| 1 << b)
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

/// One tracked connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub family: Family,
    pub proto: Proto,
    pub orig: Tuple,
    pub reply: Tuple,
    /// The protocol's state; `None` where the protocol has none (UDP, ICMP...).
    pub state: Option<State>,
    /// Seconds left before the entry expires.
    pub timeout: u32,
    pub status: Status,
    pub mark: u32,
    pub zone: u16,
    /// The kernel's id of the entry (0 where unknown, e.g. read from /proc).
    pub id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orig_packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orig_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_bytes: Option<u64>,
    /// Reference count (`use=`), where known.
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_count: Option<u32>,
    /// When the connection started and stopped, in nanoseconds since the epoch (with
    /// `net.netfilter.nf_conntrack_timestamp=1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_ns: Option<u64>,
    /// What few entries have (a helper, labels, a security context, a stop time), boxed so
    /// that the common entry stays small: a busy gateway holds a million of them.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Box<Extra>>,
}

/// The rare attributes of an [`Entry`]; see [`Entry::extra`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Extra {
    /// When the connection ended (destroy events, with timestamps on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helper: Option<String>,
    /// Connection labels as a bit string, where set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secctx: Option<String>,
}

impl Extra {
    fn is_empty(&self) -> bool {
        *self == Extra::default()
    }
}

impl Entry {
    /// A fresh entry for a tuple; everything else empty.
    pub fn new(family: Family, proto: Proto, orig: Tuple, reply: Tuple) -> Entry {
        Entry {
            family,
            proto,
            orig,
            reply,
            state: None,
            timeout: 0,
            status: Status::default(),
            mark: 0,
            zone: 0,
            id: 0,
            orig_packets: None,
            orig_bytes: None,
            reply_packets: None,
            reply_bytes: None,
            use_count: None,
            start_ns: None,
            extra: None,
        }
    }

    pub fn helper(&self) -> Option<&str> {
        self.extra.as_ref()?.helper.as_deref()
    }

    pub fn secctx(&self) -> Option<&str> {
        self.extra.as_ref()?.secctx.as_deref()
    }

    pub fn labels(&self) -> Option<&[u8]> {
        self.extra.as_ref()?.labels.as_deref()
    }

    pub fn stop_ns(&self) -> Option<u64> {
        self.extra.as_ref()?.stop_ns
    }

    /// Bytes the entry holds on the heap beyond itself: a state's name where the protocol is
    /// not TCP, and the rare attributes. For the memory figures.
    pub fn heap_bytes(&self) -> usize {
        let state = match &self.state {
            Some(State::Other(s)) => s.capacity(),
            _ => 0,
        };
        state
            + self.extra.as_ref().map_or(0, |x| {
                std::mem::size_of::<Extra>()
                    + x.helper.as_ref().map_or(0, String::capacity)
                    + x.secctx.as_ref().map_or(0, String::capacity)
                    + x.labels.as_ref().map_or(0, Vec::capacity)
            })
    }

    /// Change the rare attributes; the box goes away again when they are all empty.
    pub fn with_extra(&mut self, f: impl FnOnce(&mut Extra)) {
        let mut x = self.extra.take().unwrap_or_default();
        f(&mut x);
        if !x.is_empty() {
            self.extra = Some(x);
        }
    }

    /// What identifies a connection while it lives: the kernel's id is unique, and where it is
    /// not known the original tuple and zone are.
    pub fn key(&self) -> EntryKey {
        EntryKey {
            family: self.family,
            proto: self.proto,
            orig: self.orig,
            zone: self.zone,
        }
    }

    /// The original orig/reply counters as one pair, when accounting is on.
    pub fn orig_counters(&self) -> Option<Counters> {
        Some(Counters::new(self.orig_packets?, self.orig_bytes?))
    }

    pub fn reply_counters(&self) -> Option<Counters> {
        Some(Counters::new(self.reply_packets?, self.reply_bytes?))
    }

    /// Destination NAT: the reply does not come from where the original went.
    pub fn is_dnat(&self) -> bool {
        self.status.has(Status::DST_NAT)
            || self.reply.src != self.orig.dst
            || self.reply.sport != self.orig.dport
    }

    /// Source NAT: the reply does not go back to where the original came from.
    pub fn is_snat(&self) -> bool {
        self.status.has(Status::SRC_NAT)
            || self.reply.dst != self.orig.src
            || self.reply.dport != self.orig.sport
    }

    /// The user-land state a `-m conntrack --ctstate` match would see for the next packet of
    /// the original direction, as far as the entry tells.
    /// An untracked template is UNTRACKED; an expected connection (a helper's data channel) is
    /// RELATED until it sees a reply.
    pub fn ctstate(&self) -> &'static str {
        if self.status.has(Status::UNTRACKED) {
            "UNTRACKED"
        } else if self.status.has(Status::SEEN_REPLY) {
            "ESTABLISHED"
        } else if self.status.has(Status::EXPECTED) {
            "RELATED"
        } else {
            "NEW"
        }
    }

    /// The state shown in a row: the protocol's own where it has one (TCP's `TIME_WAIT`), else
    /// the user-land one ([`Entry::ctstate`]).
    pub fn state_label(&self) -> &str {
        match &self.state {
            Some(s) => s.name(),
            None => self.ctstate(),
        }
    }

    /// Packets in both directions, when accounting is on.
    pub fn packets(&self) -> Option<u64> {
        Some(
            self.orig_packets?
                .saturating_add(self.reply_packets.unwrap_or(0)),
        )
    }

    /// Bytes in both directions, when accounting is on.
    pub fn bytes(&self) -> Option<u64> {
        Some(
            self.orig_bytes?
                .saturating_add(self.reply_bytes.unwrap_or(0)),
        )
    }
}

/// See [`Entry::key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryKey {
    pub family: Family,
    pub proto: Proto,
    pub orig: Tuple,
    pub zone: u16,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// An IPv4 tuple with ports, for the conntrack modules' tests.
    pub(crate) fn t(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Tuple {
        Tuple {
            src: IpAddr::V4(Ipv4Addr::from(src)),
            dst: IpAddr::V4(Ipv4Addr::from(dst)),
            sport: Some(sport),
            dport: Some(dport),
            icmp: None,
        }
    }

    #[test]
    fn names_like_conntrack_tools() {
        assert_eq!(Proto::TCP.name(), "tcp");
        assert_eq!(Proto(99).name(), "99");
        assert_eq!(Proto::parse("icmp6"), Some(Proto::ICMPV6));
        assert_eq!(
            TcpState::from_kernel(7).map(TcpState::name),
            Some("TIME_WAIT")
        );
        assert_eq!(TcpState::parse("established"), Some(TcpState::Established));
        assert_eq!(
            Status(0b1110).names(),
            ["SEEN_REPLY", "ASSURED", "CONFIRMED"]
        );
        assert_eq!(Status::bit("assured"), Some(Status::ASSURED));
    }

    #[test]
    fn nat_is_seen_from_the_tuples() {
        let orig = t([10, 0, 0, 5], 40000, [203, 0, 113, 2], 2222);
        let reply = t([10, 0, 0, 10], 22, [10, 0, 0, 5], 40000);
        let e = Entry::new(Family::V4, Proto::TCP, orig, reply);
        assert!(e.is_dnat());
        assert!(!e.is_snat());
    }

    #[test]
    fn json_shape() {
        let orig = t([10, 0, 0, 5], 40000, [10, 0, 0, 1], 22);
        let reply = t([10, 0, 0, 1], 22, [10, 0, 0, 5], 40000);
        let mut e = Entry::new(Family::V4, Proto::TCP, orig, reply);
        e.state = Some(State::Tcp(TcpState::Established));
        e.status = Status(Status::SEEN_REPLY | Status::ASSURED);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["family"], "ipv4");
        assert_eq!(v["proto"], "tcp");
        assert_eq!(v["state"], "ESTABLISHED");
        assert_eq!(v["orig"]["dport"], 22);
        assert_eq!(v["status"][1], "ASSURED");
    }
}
