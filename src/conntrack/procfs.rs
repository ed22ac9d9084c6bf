//! Parser for the conntrack table as text: `/proc/net/nf_conntrack` (the modern layout, each line
//! led by the network family, `ipv4     2 tcp      6 ...`) and the older `/proc/net/ip_conntrack`
//! (no family prefix, `tcp      6 117 SYN_SENT src=...`). Pure: it reads a string.
//!
//! A line is: family name and number (modern only), protocol name and number, the seconds left
//! (absent for offloaded flows), the protocol's state where it has one, the original tuple with
//! its optional `packets= bytes=`, `[UNREPLIED]` when no reply was seen, the reply tuple with its
//! counters, a flag (`[ASSURED]`, `[OFFLOAD]`, `[HW_OFFLOAD]`), then `mark=`, `secctx=`, `zone=`,
//! `delta-time=` and `use=` as the kernel was built. Tuples carry `src= dst=` and `sport= dport=`
//! (TCP, UDP, UDP-Lite, SCTP, DCCP), `type= code= id=` (ICMP, ICMPv6) or `srckey= dstkey=` (GRE,
//! kept in the port fields, where ctnetlink puts them too). `zone-orig=`/`zone-reply=`, `helper=`, `id=`,
//! `labels=` and `timestamp=` are read too, since conntrack-tools and patched kernels print them.
//!
//! One bad line never loses the good ones: [`parse_proc`] returns every entry it could read and
//! one [`ProcError`] per line it could not, naming the line.

use super::{Entry, Icmp, Proto, State, Status, TcpState, Tuple};
use crate::ruleset::Family;
use std::net::IpAddr;
use thiserror::Error;

/// A line that could not be read: where, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {message}")]
pub struct ProcError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// Every entry of a conntrack text dump, and an error for each line that is not one. Blank lines
/// are skipped. `delta-time=` (seconds since the connection started) is dropped, since turning it
/// into a start time needs the clock: see [`parse_proc_at`].
pub fn parse_proc(text: &str) -> (Vec<Entry>, Vec<ProcError>) {
    parse_proc_at(text, None)
}

/// As [`parse_proc`]; with `now_ns` (nanoseconds since the epoch, when the text was read) a
/// `delta-time=` becomes the entry's `start_ns`.
pub fn parse_proc_at(text: &str, now_ns: Option<u64>) -> (Vec<Entry>, Vec<ProcError>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        match parse_line_at(raw, now_ns) {
            Ok(Some(e)) => entries.push(e),
            Ok(None) => {}
            Err(message) => errors.push(ProcError {
                line: i + 1,
                message,
            }),
        }
    }
    (entries, errors)
}

/// One line of either layout: `Ok(None)` for a blank line, `Err` with a sentence saying what is
/// wrong.
pub fn parse_line(line: &str) -> Result<Option<Entry>, String> {
    parse_line_at(line, None)
}

/// Where the fields of one tuple collect while the line is read.
#[derive(Default)]
struct TupleParts {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: Option<u16>,
    dport: Option<u16>,
    kind: Option<u8>,
    code: Option<u8>,
    id: Option<u16>,
    packets: Option<u64>,
    bytes: Option<u64>,
}

impl TupleParts {
    fn finish(&self, proto: Proto, family: Family, which: &str) -> Result<Tuple, String> {
        let addr = |a: Option<IpAddr>, key: &str| {
            let a = a.ok_or_else(|| format!("the {which} tuple has no {key}= address"))?;
            let ok = matches!(
                (family, a),
                (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
            );
            if ok {
                Ok(a)
            } else {
                Err(format!(
                    "the {which} tuple's {key}={a} is not an {} address",
                    family.label()
                ))
            }
        };
        let src = addr(self.src, "src")?;
        let dst = addr(self.dst, "dst")?;
        if proto.has_ports() && (self.sport.is_none() || self.dport.is_none()) {
            return Err(format!(
                "the {which} tuple of a {} entry needs both sport= and dport=",
                proto.name()
            ));
        }
        let icmp = if proto.is_icmp() {
            match (self.kind, self.code, self.id) {
                (Some(kind), Some(code), Some(id)) => Some(Icmp { kind, code, id }),
                _ => {
                    return Err(format!(
                        "the {which} tuple of an {} entry needs type=, code= and id=",
                        proto.name()
                    ));
                }
            }
        } else {
            None
        };
        Ok(Tuple {
            src,
            dst,
            sport: self.sport,
            dport: self.dport,
            icmp,
        })
    }
}

fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| {
        format!(
            "{key}={v} is not a whole number between 0 and {}",
            max_of::<T>()
        )
    })
}

/// The largest value of the integer types parsed here, for error messages.
fn max_of<T>() -> u64 {
    match std::mem::size_of::<T>() {
        1 => u8::MAX.into(),
        2 => u16::MAX.into(),
        4 => u32::MAX.into(),
        _ => u64::MAX,
    }
}

/// A number as the kernel prints it, decimal, or hexadecimal with `0x`.
fn num_or_hex(key: &str, v: &str) -> Result<u32, String> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16)
            .map_err(|_| format!("{key}={v} is not a hexadecimal number of at most 32 bits")),
        None => num(key, v),
    }
}

fn parse_line_at(line: &str, now_ns: Option<u64>) -> Result<Option<Entry>, String> {
    let mut words = line.split_ascii_whitespace().peekable();
    let Some(first) = words.next() else {
        return Ok(None);
    };
    // The modern layout leads with the network family, by name and by number.
    let (family_hint, proto_name) = match first {
        "ipv4" | "ipv6" => {
            let want = if first == "ipv4" { "2" } else { "10" };
            let n = words
                .next()
                .ok_or_else(|| format!("the line ends after {first:?}"))?;
            if n != want {
                return Err(format!(
                    "the family {first} should be followed by its number {want}, found {n:?}"
                ));
            }
            let fam = if first == "ipv4" {
                Family::V4
            } else {
                Family::V6
            };
            let p = words
                .next()
                .ok_or_else(|| "the line ends before the protocol".to_string())?;
            (Some(fam), p)
        }
        w if w.contains('=') => {
            return Err(format!(
                "the line starts with {w:?}; expected a protocol name or a family (ipv4, ipv6)"
            ));
        }
        w => (None, w),
    };
    let pnum = words
        .next()
        .ok_or_else(|| format!("the protocol {proto_name:?} is not followed by its number"))?;
    let proto = Proto(pnum.parse().map_err(|_| {
        format!("the protocol number {pnum:?} is not a whole number between 0 and 255")
    })?);
    if let Some(named) =
        Proto::parse(proto_name).filter(|_| !proto_name.starts_with(char::is_numeric))
        && named != proto
    {
        return Err(format!(
            "the protocol {proto_name} has number {}, but the line says {}",
            named.0, proto.0
        ));
    }

    // The seconds left, absent for flows offloaded to the flow table.
    let mut timeout = 0u32;
    let mut have_timeout = false;
    if let Some(w) = words.peek()
        && w.starts_with(|c: char| c.is_ascii_digit() || c == '-')
    {
        let w = words.next().unwrap_or_default();
        let secs: i64 = w
            .parse()
            .map_err(|_| format!("the timeout {w:?} is not a whole number of seconds"))?;
        timeout = secs.clamp(0, u32::MAX.into()) as u32;
        have_timeout = true;
    }

    // The protocol's state: a bare upper-case word before the first tuple.
    let mut state = None;
    if let Some(w) = words.peek()
        && !w.contains('=')
        && !w.starts_with('[')
    {
        let w = words.next().unwrap_or_default();
        if !w
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
        {
            if !have_timeout {
                return Err(format!(
                    "{w:?} is neither the seconds left (a whole number) nor a connection state"
                ));
            }
            return Err(format!(
                "{w:?} is not a connection state (expected upper-case like ESTABLISHED)"
            ));
        }
        state = Some(match (proto, TcpState::parse(w)) {
            (Proto::TCP, Some(t)) => State::Tcp(t),
            _ => State::Other(w.to_string()),
        });
    }

    let mut tuples = [TupleParts::default(), TupleParts::default()];
    let mut dir = 0usize;
    let mut started = false;
    let mut status = Status(Status::SEEN_REPLY | (1 << 3)); // CONFIRMED: it is in the table
    let mut e_mark = 0u32;
    let mut zone: Option<u16> = None;
    let mut zone_dir: Option<u16> = None;
    let mut use_count = None;
    let mut secctx = None;
    let mut helper = None;
    let mut labels = None;
    let mut id = 0u32;
    let mut start_ns = None;

    for w in words {
        if let Some(flag) = w.strip_prefix('[') {
            let flag = flag
                .strip_suffix(']')
                .ok_or_else(|| format!("{w:?} opens a flag with [ but does not close it"))?;
            match flag {
                "UNREPLIED" => status.0 &= !Status::SEEN_REPLY,
                other => {
                    // ASSURED, OFFLOAD, HW_OFFLOAD, and whatever a later kernel adds.
                    if let Some(bit) = Status::bit(other) {
                        status.0 |= bit;
                    }
                }
            }
            continue;
        }
        let Some((key, v)) = w.split_once('=') else {
            return Err(format!("{w:?} is neither key=value nor a [FLAG]"));
        };
        let t = &mut tuples[dir];
        match key {
            "src" => {
                if started && t.src.is_some() {
                    dir += 1;
                    if dir > 1 {
                        return Err("the line has more than two tuples (a third src=)".into());
                    }
                }
                started = true;
                tuples[dir].src = Some(addr(key, v)?);
            }
            "dst" | "sport" | "dport" | "type" | "code" | "srckey" | "dstkey" if !started => {
                return Err(format!("{key}= comes before the tuple's src="));
            }
            "dst" => t.dst = Some(addr(key, v)?),
            "sport" => t.sport = Some(num(key, v)?),
            "dport" => t.dport = Some(num(key, v)?),
            "type" => t.kind = Some(num(key, v)?),
            "code" => t.code = Some(num(key, v)?),
            // ICMP's id belongs to the tuple; after both tuples it is the entry's (conntrack -o id).
            "id" if proto.is_icmp() && started && t.id.is_none() => t.id = Some(num(key, v)?),
            "id" => id = num(key, v)?,
            // GRE keys (PPTP call ids) live where the ports are, as ctnetlink sends them.
            "srckey" | "dstkey" => {
                let k = u16::try_from(num_or_hex(key, v)?)
                    .map_err(|_| format!("{key}={v} is not a 16-bit GRE key"))?;
                if key == "srckey" {
                    t.sport = Some(k);
                } else {
                    t.dport = Some(k);
                }
            }
            "packets" => t.packets = Some(num(key, v)?),
            "bytes" => t.bytes = Some(num(key, v)?),
            "mark" => e_mark = num_or_hex(key, v)?,
            "zone" => zone = Some(num(key, v)?),
            "zone-orig" | "zone-reply" => zone_dir = Some(num(key, v)?),
            "use" => use_count = Some(num(key, v)?),
            "secctx" => secctx = Some(v.to_string()),
            "helper" => helper = Some(v.to_string()),
            "labels" => labels = Some(v.as_bytes().to_vec()),
            "delta-time" => {
                let d: u64 = num(key, v)?;
                start_ns = now_ns.map(|n| n.saturating_sub(d.saturating_mul(1_000_000_000)));
            }
            "timestamp" => {
                let s: u64 = num(key, v)?;
                start_ns = Some(s.saturating_mul(1_000_000_000));
            }
            // secmark= and whatever a later kernel prints: kept out of the model, not an error.
            _ if key.is_empty() => return Err(format!("{w:?} has no key before the =")),
            _ => {}
        }
    }
    if !started {
        return Err("the line has no tuple (no src=)".into());
    }
    if dir == 0 {
        return Err("the line has only one tuple; the reply tuple is missing".into());
    }
    let family = match family_hint {
        Some(f) => f,
        None => match tuples[0].src {
            Some(IpAddr::V6(_)) => Family::V6,
            _ => Family::V4,
        },
    };
    let orig = tuples[0].finish(proto, family, "original")?;
    let reply = tuples[1].finish(proto, family, "reply")?;
    let mut e = Entry::new(family, proto, orig, reply);
    e.state = state;
    e.timeout = timeout;
    e.status = status;
    e.mark = e_mark;
    e.zone = zone.or(zone_dir).unwrap_or(0);
    e.id = id;
    e.orig_packets = tuples[0].packets;
    e.orig_bytes = tuples[0].bytes;
    e.reply_packets = tuples[1].packets;
    e.reply_bytes = tuples[1].bytes;
    e.use_count = use_count;
    e.with_extra(|x| {
        x.secctx = secctx;
        x.helper = helper;
        x.labels = labels;
    });
    e.start_ns = start_ns;
    Ok(Some(e))
}

/// One entry in the modern layout, as the kernel prints it (IPv6 addresses in full, counters
/// where known, `[UNREPLIED]` after the original tuple's counters), without the line break.
/// `id`, labels, start and stop times and the status bits other than SEEN_REPLY and ASSURED /
/// OFFLOAD / HW_OFFLOAD have no place in the layout. For tests, benchmarks and the demo.
pub fn write_line(e: &Entry) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(200);
    let (fam, num) = match e.family {
        Family::V4 => ("ipv4", 2),
        Family::V6 => ("ipv6", 10),
    };
    let pname = e.proto.known_name().unwrap_or("unknown");
    let _ = write!(s, "{fam:<8} {num} {pname:<8} {} ", e.proto.0);
    let offload = Status::bit("OFFLOAD").unwrap_or(0) | Status::bit("HW_OFFLOAD").unwrap_or(0);
    if e.status.0 & offload == 0 {
        let _ = write!(s, "{} ", e.timeout);
    }
    if let Some(st) = &e.state {
        let _ = write!(s, "{} ", st.name());
    }
    let tuple = |s: &mut String, t: &Tuple, packets: Option<u64>, bytes: Option<u64>| {
        let a = |ip: IpAddr| match ip {
            IpAddr::V4(v) => v.to_string(),
            IpAddr::V6(v) => v
                .segments()
                .iter()
                .map(|g| format!("{g:04x}"))
                .collect::<Vec<_>>()
                .join(":"),
        };
        let _ = write!(s, "src={} dst={} ", a(t.src), a(t.dst));
        match (t.sport, t.dport) {
            (Some(sp), Some(dp)) if e.proto == Proto::GRE => {
                let _ = write!(s, "srckey={sp:#x} dstkey={dp:#x} ");
            }
            (Some(sp), Some(dp)) => {
                let _ = write!(s, "sport={sp} dport={dp} ");
            }
            _ => {}
        }
        if let Some(i) = t.icmp {
            let _ = write!(s, "type={} code={} id={} ", i.kind, i.code, i.id);
        }
        if let (Some(p), Some(b)) = (packets, bytes) {
            let _ = write!(s, "packets={p} bytes={b} ");
        }
    };
    tuple(&mut s, &e.orig, e.orig_packets, e.orig_bytes);
    if !e.status.has(Status::SEEN_REPLY) {
        s.push_str("[UNREPLIED] ");
    }
    tuple(&mut s, &e.reply, e.reply_packets, e.reply_bytes);
    if e.status.has(Status::bit("HW_OFFLOAD").unwrap_or(0)) {
        s.push_str("[HW_OFFLOAD] ");
    } else if e.status.has(Status::bit("OFFLOAD").unwrap_or(0)) {
        s.push_str("[OFFLOAD] ");
    } else if e.status.has(Status::ASSURED) {
        s.push_str("[ASSURED] ");
    }
    let _ = write!(s, "mark={} ", e.mark);
    if let Some(c) = e.secctx() {
        let _ = write!(s, "secctx={c} ");
    }
    if let Some(h) = e.helper() {
        let _ = write!(s, "helper={h} ");
    }
    let _ = write!(s, "zone={} use={}", e.zone, e.use_count.unwrap_or(1));
    s
}

fn addr(key: &str, v: &str) -> Result<IpAddr, String> {
    v.parse()
        .map_err(|_| format!("{key}={v} is not an IPv4 or IPv6 address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn one(line: &str) -> Entry {
        match parse_line(line) {
            Ok(Some(e)) => e,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    #[test]
    fn modern_tcp_with_counters_and_zone() {
        let e = one(
            "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.5 dst=10.0.0.1 sport=40000 \
             dport=22 packets=12 bytes=2048 src=10.0.0.1 dst=10.0.0.5 sport=22 dport=40000 \
             packets=10 bytes=4096 [ASSURED] mark=7 secctx=system_u:object_r:unlabeled_t:s0 \
             zone=3 use=2",
        );
        assert_eq!(e.family, Family::V4);
        assert_eq!(e.proto, Proto::TCP);
        assert_eq!(e.timeout, 431_999);
        assert_eq!(e.state, Some(State::Tcp(TcpState::Established)));
        assert_eq!(e.orig.src, v4([10, 0, 0, 5]));
        assert_eq!(e.orig.dport, Some(22));
        assert_eq!(e.reply.sport, Some(22));
        assert_eq!((e.orig_packets, e.orig_bytes), (Some(12), Some(2048)));
        assert_eq!((e.reply_packets, e.reply_bytes), (Some(10), Some(4096)));
        assert!(e.status.has(Status::ASSURED) && e.status.has(Status::SEEN_REPLY));
        assert_eq!((e.mark, e.zone, e.use_count), (7, 3, Some(2)));
        assert_eq!(e.secctx(), Some("system_u:object_r:unlabeled_t:s0"));
        assert!(!e.is_dnat() && !e.is_snat());
    }

    #[test]
    fn unreplied_after_the_first_tuple_and_its_counters() {
        let e = one(
            "ipv4     2 tcp      6 118 SYN_SENT src=10.0.0.5 dst=192.0.2.9 sport=5000 dport=443 \
             packets=1 bytes=60 [UNREPLIED] src=192.0.2.9 dst=10.0.0.5 sport=443 dport=5000 \
             packets=0 bytes=0 mark=0 zone=0 use=2",
        );
        assert!(!e.status.has(Status::SEEN_REPLY));
        assert!(!e.status.has(Status::ASSURED));
        assert_eq!(e.ctstate(), "NEW");
        assert_eq!(e.reply_packets, Some(0));
    }

    #[test]
    fn old_ip_conntrack_layout() {
        let e = one(
            "tcp      6 117 SYN_SENT src=192.168.1.6 dst=192.168.1.9 sport=32775 dport=22 \
             [UNREPLIED] src=192.168.1.9 dst=192.168.1.6 sport=22 dport=32775 use=2",
        );
        assert_eq!(e.family, Family::V4);
        assert_eq!(e.state, Some(State::Tcp(TcpState::SynSent)));
        assert_eq!(e.orig_packets, None);
        assert_eq!(e.use_count, Some(2));
        let u = one(
            "udp 17 175 src=192.168.1.5 dst=195.22.79.2 sport=1025 dport=53 \
             src=195.22.79.2 dst=192.168.1.5 sport=53 dport=1025 [ASSURED] use=1",
        );
        assert_eq!(u.state, None);
        assert!(u.status.has(Status::ASSURED));
    }

    #[test]
    fn icmp_and_icmpv6_tuples_and_entry_id() {
        let e = one(
            "icmp 1 25 src=192.168.1.6 dst=192.168.1.10 type=8 code=0 id=33029 [UNREPLIED] \
             src=192.168.1.10 dst=192.168.1.6 type=0 code=0 id=33029 use=1",
        );
        assert_eq!(
            e.orig.icmp,
            Some(Icmp {
                kind: 8,
                code: 0,
                id: 33029
            })
        );
        assert_eq!(e.reply.icmp.map(|i| i.kind), Some(0));
        assert_eq!((e.orig.sport, e.id), (None, 0));
        let six = one(
            "ipv6     10 icmpv6   58 29 src=2001:0db8:0000:0000:0000:0000:0000:0001 \
             dst=2001:0db8:0000:0000:0000:0000:0000:0002 type=128 code=0 id=77 \
             src=2001:0db8:0000:0000:0000:0000:0000:0002 \
             dst=2001:0db8:0000:0000:0000:0000:0000:0001 type=129 code=0 id=77 mark=0 zone=0 \
             use=2 id=3735928559",
        );
        assert_eq!(six.family, Family::V6);
        assert_eq!(six.proto, Proto::ICMPV6);
        assert_eq!(
            six.orig.src,
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
        );
        assert_eq!(six.id, 3_735_928_559);
    }

    #[test]
    fn gre_by_number_helper_delta_time_and_offload() {
        let e = one(
            "ipv4     2 gre      47 2999 src=198.51.100.7 dst=203.0.113.1 srckey=0x0 dstkey=0x0 \
             src=203.0.113.1 dst=198.51.100.7 srckey=0x0 dstkey=0x0 [ASSURED] mark=0 \
             helper=pptp zone=0 delta-time=42 use=2",
        );
        assert_eq!(e.proto, Proto::GRE);
        assert_eq!((e.orig.sport, e.helper()), (Some(0), Some("pptp")));
        assert_eq!(e.start_ns, None, "no clock, no start time");
        let (es, errs) = parse_proc_at(
            "ipv4 2 unknown 99 580 src=10.0.0.1 dst=10.0.0.2 src=10.0.0.2 dst=10.0.0.1 \
             delta-time=2 use=1",
            Some(10_000_000_000),
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(es[0].proto, Proto(99));
        assert_eq!(es[0].start_ns, Some(8_000_000_000));
        let off = one(
            "ipv4 2 tcp 6 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 \
             src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [OFFLOAD] mark=0 use=2",
        );
        assert_eq!(off.timeout, 0);
        assert!(off.status.has(Status::bit("OFFLOAD").unwrap()));
    }

    #[test]
    fn dnat_reply_tuple() {
        let e = one(
            "ipv4     2 tcp      6 86398 ESTABLISHED src=198.51.100.20 dst=203.0.113.1 \
             sport=51000 dport=8080 src=10.0.0.10 dst=198.51.100.20 sport=80 dport=51000 \
             [ASSURED] mark=0 use=1",
        );
        assert!(e.is_dnat());
        assert!(!e.is_snat());
    }

    #[test]
    fn bad_lines_name_their_line_and_keep_the_good_ones() {
        let text = "\
tcp 6 117 SYN_SENT src=192.168.1.6 dst=192.168.1.9 sport=32775 dport=22 [UNREPLIED] src=192.168.1.9 dst=192.168.1.6 sport=22 dport=32775 use=2

tcp 6 abc SYN_SENT src=1.2.3.4
udp 17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 use=1
ipv4 2 tcp 17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1
ipv4 2 tcp 6 30 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2
ipv6 10 udp 17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1
ipv4 2 udp 17 30 src=10.0.0.1 dst=10.0.0.2 sport=99999 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1
";
        let (es, errs) = parse_proc(text);
        assert_eq!(es.len(), 2);
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 5, 6, 7, 8]);
        assert_eq!(
            errs[0].to_string(),
            "line 3: \"abc\" is neither the seconds left (a whole number) nor a connection state"
        );
        assert!(errs[1].message.contains("tcp has number 6"), "{}", errs[1]);
        assert!(errs[2].message.contains("reply tuple is missing"));
        assert!(
            errs[3].message.contains("not an IPv6 address"),
            "{}",
            errs[3]
        );
        assert!(errs[4].message.contains("sport=99999"), "{}", errs[4]);
    }
}
