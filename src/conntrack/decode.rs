//! Decoding ctnetlink messages (the payload after the netlink header: an nfgenmsg and nested
//! attributes, values big-endian) into [`Entry`] and statistics, and encoding the few
//! attributes a request needs. Pure: bytes in, values out; any input fails cleanly.

use super::{Entry, Icmp, Proto, State, Status, TcpState, Tuple};
use crate::ruleset::Family;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// nfnetlink subsystem of conntrack, and its message types (`(subsys << 8) | msg`).
pub const NFNL_SUBSYS_CTNETLINK: u16 = 1;
pub const IPCTNL_MSG_CT_NEW: u16 = 0;
pub const IPCTNL_MSG_CT_GET: u16 = 1;
pub const IPCTNL_MSG_CT_DELETE: u16 = 2;
pub const IPCTNL_MSG_CT_GET_STATS_CPU: u16 = 4;
pub const IPCTNL_MSG_CT_GET_STATS: u16 = 5;

pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

// enum ctattr_type
pub const CTA_TUPLE_ORIG: u16 = 1;
pub const CTA_TUPLE_REPLY: u16 = 2;
pub const CTA_STATUS: u16 = 3;
pub const CTA_PROTOINFO: u16 = 4;
pub const CTA_HELP: u16 = 5;
pub const CTA_TIMEOUT: u16 = 7;
pub const CTA_MARK: u16 = 8;
pub const CTA_COUNTERS_ORIG: u16 = 9;
pub const CTA_COUNTERS_REPLY: u16 = 10;
pub const CTA_USE: u16 = 11;
pub const CTA_ID: u16 = 12;
pub const CTA_ZONE: u16 = 18;
pub const CTA_SECCTX: u16 = 19;
pub const CTA_TIMESTAMP: u16 = 20;
pub const CTA_LABELS: u16 = 22;

// enum ctattr_tuple / ctattr_ip / ctattr_l4proto
pub const CTA_TUPLE_IP: u16 = 1;
pub const CTA_TUPLE_PROTO: u16 = 2;
pub const CTA_IP_V4_SRC: u16 = 1;
pub const CTA_IP_V4_DST: u16 = 2;
pub const CTA_IP_V6_SRC: u16 = 3;
pub const CTA_IP_V6_DST: u16 = 4;
pub const CTA_PROTO_NUM: u16 = 1;
pub const CTA_PROTO_SRC_PORT: u16 = 2;
pub const CTA_PROTO_DST_PORT: u16 = 3;
pub const CTA_PROTO_ICMP_ID: u16 = 4;
pub const CTA_PROTO_ICMP_TYPE: u16 = 5;
pub const CTA_PROTO_ICMP_CODE: u16 = 6;
pub const CTA_PROTO_ICMPV6_ID: u16 = 7;
pub const CTA_PROTO_ICMPV6_TYPE: u16 = 8;
pub const CTA_PROTO_ICMPV6_CODE: u16 = 9;

// protoinfo
const CTA_PROTOINFO_TCP: u16 = 1;
const CTA_PROTOINFO_DCCP: u16 = 2;
const CTA_PROTOINFO_SCTP: u16 = 3;
const CTA_PROTOINFO_STATE: u16 = 1; // same number for TCP, DCCP and SCTP

// counters, timestamps, helper, secctx
const CTA_COUNTERS_PACKETS: u16 = 1;
const CTA_COUNTERS_BYTES: u16 = 2;
const CTA_COUNTERS32_PACKETS: u16 = 3;
const CTA_COUNTERS32_BYTES: u16 = 4;
const CTA_TIMESTAMP_START: u16 = 1;
const CTA_TIMESTAMP_STOP: u16 = 2;
const CTA_HELP_NAME: u16 = 1;
const CTA_SECCTX_NAME: u16 = 1;

/// Attribute flags carried in the type field.
pub const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

/// Walks a run of netlink attributes: yields (type without flags, payload). Stops at the first
/// malformed header (a truncated tail is ignored, as the kernel's own parser does).
pub struct Attrs<'a> {
    buf: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Attrs { buf }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([self.buf[0], self.buf[1]]) as usize;
        let kind = u16::from_ne_bytes([self.buf[2], self.buf[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > self.buf.len() {
            self.buf = &[];
            return None;
        }
        let payload = &self.buf[4..len];
        let aligned = (len + 3) & !3;
        self.buf = self.buf.get(aligned..).unwrap_or(&[]);
        Some((kind, payload))
    }
}

fn be16(p: &[u8]) -> Result<u16, DecodeError> {
    match p {
        [a, b, ..] => Ok(u16::from_be_bytes([*a, *b])),
        _ => err("a 16-bit attribute is too short"),
    }
}

fn be32(p: &[u8]) -> Result<u32, DecodeError> {
    match p.get(..4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => err("a 32-bit attribute is too short"),
    }
}

fn be64(p: &[u8]) -> Result<u64, DecodeError> {
    match p.get(..8) {
        Some(b) => Ok(u64::from_be_bytes(b.try_into().unwrap_or([0; 8]))),
        None => err("a 64-bit attribute is too short"),
    }
}

fn u8_of(p: &[u8]) -> Result<u8, DecodeError> {
    p.first()
        .copied()
        .ok_or_else(|| DecodeError("an empty 8-bit attribute".into()))
}

fn addr(p: &[u8]) -> Result<IpAddr, DecodeError> {
    match p.len() {
        4 => Ok(IpAddr::V4(Ipv4Addr::new(p[0], p[1], p[2], p[3]))),
        16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(p);
            Ok(IpAddr::V6(Ipv6Addr::from(b)))
        }
        n => err(format!("an address of {n} bytes")),
    }
}

/// A tuple and the protocol it names.
fn tuple(buf: &[u8]) -> Result<(Tuple, Proto), DecodeError> {
    let (mut src, mut dst) = (None, None);
    let mut proto = None;
    let (mut sport, mut dport) = (None, None);
    let (mut id, mut kind, mut code) = (None, None, None);
    for (t, p) in Attrs::new(buf) {
        match t {
            CTA_TUPLE_IP => {
                for (t, p) in Attrs::new(p) {
                    match t {
                        CTA_IP_V4_SRC | CTA_IP_V6_SRC => src = Some(addr(p)?),
                        CTA_IP_V4_DST | CTA_IP_V6_DST => dst = Some(addr(p)?),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for (t, p) in Attrs::new(p) {
                    match t {
                        CTA_PROTO_NUM => proto = Some(Proto(u8_of(p)?)),
                        CTA_PROTO_SRC_PORT => sport = Some(be16(p)?),
                        CTA_PROTO_DST_PORT => dport = Some(be16(p)?),
                        CTA_PROTO_ICMP_ID | CTA_PROTO_ICMPV6_ID => id = Some(be16(p)?),
                        CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE => kind = Some(u8_of(p)?),
                        CTA_PROTO_ICMP_CODE | CTA_PROTO_ICMPV6_CODE => code = Some(u8_of(p)?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let (Some(src), Some(dst), Some(proto)) = (src, dst, proto) else {
        return err("a tuple without addresses or protocol");
    };
    let icmp = match (kind, code, id) {
        (Some(kind), Some(code), Some(id)) => Some(Icmp { kind, code, id }),
        _ => None,
    };
    Ok((
        Tuple {
            src,
            dst,
            sport,
            dport,
            icmp,
        },
        proto,
    ))
}

/// SCTP's states as conntrack-tools names them (nf_conntrack_sctp.h).
const SCTP_STATES: [&str; 10] = [
    "NONE",
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTABLISHED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
    "HEARTBEAT_SENT",
    "HEARTBEAT_ACKED",
];

/// DCCP's states as conntrack-tools names them.
const DCCP_STATES: [&str; 10] = [
    "NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT", "IGNORE",
    "INVALID",
];

fn protoinfo(buf: &[u8]) -> Result<Option<State>, DecodeError> {
    for (t, p) in Attrs::new(buf) {
        let state = Attrs::new(p).find(|(t, _)| *t == CTA_PROTOINFO_STATE);
        let Some((_, s)) = state else { continue };
        let n = u8_of(s)?;
        let named = |names: &[&str]| {
            State::Other(
                names
                    .get(n as usize)
                    .map_or_else(|| n.to_string(), |s| s.to_string()),
            )
        };
        return Ok(Some(match t {
            CTA_PROTOINFO_TCP => match TcpState::from_kernel(n) {
                Some(s) => State::Tcp(s),
                None => State::Other(n.to_string()),
            },
            CTA_PROTOINFO_SCTP => named(&SCTP_STATES),
            CTA_PROTOINFO_DCCP => named(&DCCP_STATES),
            _ => continue,
        }));
    }
    Ok(None)
}

fn counters(buf: &[u8]) -> Result<(Option<u64>, Option<u64>), DecodeError> {
    let (mut packets, mut bytes) = (None, None);
    for (t, p) in Attrs::new(buf) {
        match t {
            CTA_COUNTERS_PACKETS => packets = Some(be64(p)?),
            CTA_COUNTERS_BYTES => bytes = Some(be64(p)?),
            CTA_COUNTERS32_PACKETS => packets = Some(u64::from(be32(p)?)),
            CTA_COUNTERS32_BYTES => bytes = Some(u64::from(be32(p)?)),
            _ => {}
        }
    }
    Ok((packets, bytes))
}

fn nul_string(p: &[u8]) -> String {
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    String::from_utf8_lossy(&p[..end]).into_owned()
}

fn family_of(f: u8) -> Result<Family, DecodeError> {
    match f {
        AF_INET => Ok(Family::V4),
        AF_INET6 => Ok(Family::V6),
        n => err(format!("address family {n}")),
    }
}

/// Decode one conntrack message's payload: the 4-byte nfgenmsg, then the attributes.
pub fn entry(payload: &[u8]) -> Result<Entry, DecodeError> {
    let Some((head, attrs)) = payload.split_at_checked(4) else {
        return err("a conntrack message shorter than its header");
    };
    let family = family_of(head[0])?;
    let (mut orig, mut reply) = (None, None);
    let mut e_state = None;
    let mut rest = Rest::default();
    for (t, p) in Attrs::new(attrs) {
        match t {
            CTA_TUPLE_ORIG => orig = Some(tuple(p)?),
            CTA_TUPLE_REPLY => reply = Some(tuple(p)?),
            CTA_STATUS => rest.status = be32(p)?,
            CTA_PROTOINFO => e_state = protoinfo(p)?,
            CTA_TIMEOUT => rest.timeout = be32(p)?,
            CTA_MARK => rest.mark = be32(p)?,
            CTA_ZONE => rest.zone = be16(p)?,
            CTA_ID => rest.id = be32(p)?,
            CTA_USE => rest.use_count = Some(be32(p)?),
            CTA_COUNTERS_ORIG => rest.orig_counters = counters(p)?,
            CTA_COUNTERS_REPLY => rest.reply_counters = counters(p)?,
            CTA_TIMESTAMP => {
                for (t, p) in Attrs::new(p) {
                    match t {
                        CTA_TIMESTAMP_START => rest.start_ns = Some(be64(p)?),
                        CTA_TIMESTAMP_STOP => rest.stop_ns = Some(be64(p)?),
                        _ => {}
                    }
                }
            }
            CTA_HELP => {
                if let Some((_, name)) = Attrs::new(p).find(|(t, _)| *t == CTA_HELP_NAME) {
                    rest.helper = Some(nul_string(name));
                }
            }
            CTA_SECCTX => {
                if let Some((_, name)) = Attrs::new(p).find(|(t, _)| *t == CTA_SECCTX_NAME) {
                    rest.secctx = Some(nul_string(name));
                }
            }
            CTA_LABELS if p.iter().any(|&b| b != 0) => rest.labels = Some(p.to_vec()),
            _ => {}
        }
    }
    let Some((orig, proto)) = orig else {
        return err("a conntrack entry without its original tuple");
    };
    // A destroy event may carry only the original tuple; the reply then mirrors it.
    let reply = reply.map_or_else(
        || Tuple {
            src: orig.dst,
            dst: orig.src,
            sport: orig.dport,
            dport: orig.sport,
            icmp: orig.icmp,
        },
        |(t, _)| t,
    );
    let mut e = Entry::new(family, proto, orig, reply);
    e.state = e_state;
    e.status = Status(rest.status);
    e.timeout = rest.timeout;
    e.mark = rest.mark;
    e.zone = rest.zone;
    e.id = rest.id;
    (e.orig_packets, e.orig_bytes) = rest.orig_counters;
    (e.reply_packets, e.reply_bytes) = rest.reply_counters;
    e.use_count = rest.use_count;
    e.start_ns = rest.start_ns;
    e.with_extra(|x| {
        x.stop_ns = rest.stop_ns;
        x.helper = rest.helper;
        x.labels = rest.labels;
        x.secctx = rest.secctx;
    });
    Ok(e)
}

#[derive(Default)]
struct Rest {
    status: u32,
    timeout: u32,
    mark: u32,
    zone: u16,
    id: u32,
    use_count: Option<u32>,
    orig_counters: (Option<u64>, Option<u64>),
    reply_counters: (Option<u64>, Option<u64>),
    start_ns: Option<u64>,
    stop_ns: Option<u64>,
    helper: Option<String>,
    labels: Option<Vec<u8>>,
    secctx: Option<String>,
}

/// One CPU's conntrack statistics (IPCTNL_MSG_CT_GET_STATS_CPU), as `conntrack -S` prints them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CpuStats {
    pub cpu: u16,
    pub found: u32,
    pub invalid: u32,
    pub insert: u32,
    pub insert_failed: u32,
    pub drop: u32,
    pub early_drop: u32,
    pub error: u32,
    pub search_restart: u32,
    pub clash_resolve: u32,
    pub chaintoolong: u32,
}

/// Decode one per-CPU statistics message; the CPU's number is the nfgenmsg's res_id.
pub fn cpu_stats(payload: &[u8]) -> Result<CpuStats, DecodeError> {
    let Some((head, attrs)) = payload.split_at_checked(4) else {
        return err("a statistics message shorter than its header");
    };
    let mut s = CpuStats {
        cpu: u16::from_be_bytes([head[2], head[3]]),
        ..CpuStats::default()
    };
    for (t, p) in Attrs::new(attrs) {
        let v = be32(p)?;
        match t {
            2 => s.found = v,
            4 => s.invalid = v,
            8 => s.insert = v,
            9 => s.insert_failed = v,
            10 => s.drop = v,
            11 => s.early_drop = v,
            12 => s.error = v,
            13 => s.search_restart = v,
            14 => s.clash_resolve = v,
            15 => s.chaintoolong = v,
            _ => {}
        }
    }
    Ok(s)
}

/// The table's fill (IPCTNL_MSG_CT_GET_STATS): entries and the maximum.
pub fn table_stats(payload: &[u8]) -> Result<(u32, Option<u32>), DecodeError> {
    let Some(attrs) = payload.get(4..) else {
        return err("a statistics message shorter than its header");
    };
    let (mut count, mut max) = (None, None);
    for (t, p) in Attrs::new(attrs) {
        match t {
            1 => count = Some(be32(p)?),
            2 => max = Some(be32(p)?),
            _ => {}
        }
    }
    match count {
        Some(c) => Ok((c, max)),
        None => err("table statistics without the entry count"),
    }
}

/// Appends netlink attributes to a buffer, nesting by start/end.
#[derive(Debug, Default)]
pub struct AttrWriter {
    pub buf: Vec<u8>,
}

impl AttrWriter {
    pub fn put(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    /// Start a nested attribute; returns where to `end` it.
    pub fn begin(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        at
    }

    pub fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// A tuple (CTA_TUPLE_ORIG or CTA_TUPLE_REPLY) as the kernel expects it.
    pub fn tuple(&mut self, kind: u16, t: &Tuple, proto: Proto) {
        let outer = self.begin(kind);
        let ip = self.begin(CTA_TUPLE_IP);
        match (t.src, t.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.put(CTA_IP_V4_SRC, &s.octets());
                self.put(CTA_IP_V4_DST, &d.octets());
            }
            (s, d) => {
                self.put(CTA_IP_V6_SRC, &v6(s).octets());
                self.put(CTA_IP_V6_DST, &v6(d).octets());
            }
        }
        self.end(ip);
        let p = self.begin(CTA_TUPLE_PROTO);
        self.put(CTA_PROTO_NUM, &[proto.0]);
        if let Some(i) = t.icmp.filter(|_| proto.is_icmp()) {
            let v6 = proto == Proto::ICMPV6;
            let (id, kind, code) = if v6 {
                (
                    CTA_PROTO_ICMPV6_ID,
                    CTA_PROTO_ICMPV6_TYPE,
                    CTA_PROTO_ICMPV6_CODE,
                )
            } else {
                (CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE)
            };
            self.put(id, &i.id.to_be_bytes());
            self.put(kind, &[i.kind]);
            self.put(code, &[i.code]);
        } else {
            if let Some(s) = t.sport {
                self.put(CTA_PROTO_SRC_PORT, &s.to_be_bytes());
            }
            if let Some(d) = t.dport {
                self.put(CTA_PROTO_DST_PORT, &d.to_be_bytes());
            }
        }
        self.end(p);
        self.end(outer);
    }
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

/// The nfgenmsg address family of a model family.
pub fn af(f: Family) -> u8 {
    match f {
        Family::V4 => AF_INET,
        Family::V6 => AF_INET6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(with_reply: bool) -> Vec<u8> {
        let orig = Tuple {
            src: "10.0.0.5".parse().unwrap(),
            dst: "10.0.0.1".parse().unwrap(),
            sport: Some(40000),
            dport: Some(22),
            icmp: None,
        };
        let reply = Tuple {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.5".parse().unwrap(),
            sport: Some(22),
            dport: Some(40000),
            icmp: None,
        };
        let mut w = AttrWriter::default();
        w.buf.extend_from_slice(&[AF_INET, 0, 0, 0]);
        w.tuple(CTA_TUPLE_ORIG, &orig, Proto::TCP);
        if with_reply {
            w.tuple(CTA_TUPLE_REPLY, &reply, Proto::TCP);
        }
        w.put(CTA_STATUS, &0xeu32.to_be_bytes());
        w.put(CTA_TIMEOUT, &431_999u32.to_be_bytes());
        w.put(CTA_MARK, &7u32.to_be_bytes());
        w.put(CTA_ID, &0xdead_beefu32.to_be_bytes());
        w.put(CTA_ZONE, &3u16.to_be_bytes());
        let c = w.begin(CTA_COUNTERS_ORIG);
        w.put(CTA_COUNTERS_PACKETS, &5u64.to_be_bytes());
        w.put(CTA_COUNTERS_BYTES, &300u64.to_be_bytes());
        w.end(c);
        let pi = w.begin(CTA_PROTOINFO);
        let tcp = w.begin(CTA_PROTOINFO_TCP);
        w.put(CTA_PROTOINFO_STATE, &[3]);
        w.end(tcp);
        w.end(pi);
        let h = w.begin(CTA_HELP);
        w.put(CTA_HELP_NAME, b"ftp\0");
        w.end(h);
        w.buf
    }

    #[test]
    fn decodes_every_field_it_encodes() {
        let e = entry(&sample(true)).unwrap();
        assert_eq!(e.family, Family::V4);
        assert_eq!(e.proto, Proto::TCP);
        assert_eq!(e.orig.sport, Some(40000));
        assert_eq!(e.reply.dst.to_string(), "10.0.0.5");
        assert_eq!(e.state, Some(State::Tcp(TcpState::Established)));
        assert_eq!(e.status, Status(0xe));
        assert_eq!(
            (e.timeout, e.mark, e.zone, e.id),
            (431_999, 7, 3, 0xdead_beef)
        );
        assert_eq!((e.orig_packets, e.orig_bytes), (Some(5), Some(300)));
        assert_eq!(e.reply_packets, None);
        assert_eq!(e.helper(), Some("ftp"));
    }

    #[test]
    fn a_missing_reply_mirrors_the_original() {
        let e = entry(&sample(false)).unwrap();
        assert_eq!(e.reply.src, e.orig.dst);
        assert_eq!(e.reply.dport, e.orig.sport);
    }

    #[test]
    fn any_truncation_fails_cleanly_or_decodes() {
        let full = sample(true);
        for n in 0..full.len() {
            let _ = entry(&full[..n]);
            let mut garbled = full.clone();
            garbled[n] ^= 0xff;
            let _ = entry(&garbled);
        }
        assert!(entry(&[]).is_err());
        assert!(entry(&[7, 0, 0, 0]).is_err());
    }

    #[test]
    fn statistics() {
        let mut w = AttrWriter::default();
        w.buf.extend_from_slice(&[AF_INET, 0, 0, 1]);
        w.put(2, &9u32.to_be_bytes());
        w.put(9, &2u32.to_be_bytes());
        let s = cpu_stats(&w.buf).unwrap();
        assert_eq!((s.cpu, s.found, s.insert_failed), (1, 9, 2));
        let mut w = AttrWriter::default();
        w.buf.extend_from_slice(&[0; 4]);
        w.put(1, &42u32.to_be_bytes());
        w.put(2, &262_144u32.to_be_bytes());
        assert_eq!(table_stats(&w.buf).unwrap(), (42, Some(262_144)));
    }
}
