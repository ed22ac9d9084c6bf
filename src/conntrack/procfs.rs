//! The text of `/proc/net/nf_conntrack` (and the older `/proc/net/ip_conntrack`), the fallback
//! where netlink is refused. Two layouts, one entry per line:
//!
//! ```text
//! ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.5 dst=10.0.0.1 sport=40000 dport=22 packets=5 bytes=300 src=10.0.0.1 dst=10.0.0.5 sport=22 dport=40000 packets=4 bytes=250 [ASSURED] mark=0 zone=0 use=2
//! tcp      6 117 SYN_SENT src=192.0.2.6 dst=192.0.2.9 sport=32775 dport=22 [UNREPLIED] src=192.0.2.9 dst=192.0.2.6 sport=22 dport=32775 use=2
//! ```
//!
//! The modern one starts with the family; the old one (IPv4 only) with the protocol. The text
//! has no kernel id (0), and `use=` counts the reader's own reference. Pure; any input fails
//! cleanly, never panics.

use super::{Entry, Icmp, Proto, State, Status, TcpState, Tuple};
use crate::ruleset::Family;
use std::net::IpAddr;

/// A line that could not be read, by number (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ProcError {
    pub line: usize,
    pub message: String,
}

/// Every entry of the file's text; blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<Entry>, ProcError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            parse_line(l).map_err(|message| ProcError {
                line: i + 1,
                message,
            })
        })
        .collect()
}

/// One side of an entry as the text gives it.
#[derive(Default)]
struct Side {
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

impl Side {
    fn tuple(&self, which: &str) -> Result<Tuple, String> {
        let (Some(src), Some(dst)) = (self.src, self.dst) else {
            return Err(format!("the {which} direction has no src= and dst="));
        };
        let icmp = match (self.kind, self.code, self.id) {
            (Some(kind), Some(code), Some(id)) => Some(Icmp { kind, code, id }),
            _ => None,
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
    v.parse()
        .map_err(|_| format!("{key}={v} is not a number nfscope can read"))
}

/// GRE keys are printed in hex (`srckey=0x0`); they take the place of ports.
fn key(k: &str, v: &str) -> Result<u16, String> {
    let hex = v.strip_prefix("0x").unwrap_or(v);
    u16::from_str_radix(hex, 16).map_err(|_| format!("{k}={v} is not a GRE key"))
}

/// One line, either layout.
pub fn parse_line(line: &str) -> Result<Entry, String> {
    let t: Vec<&str> = line.split_whitespace().collect();
    let (family, rest) = match t.first() {
        Some(&"ipv4") => (Some(Family::V4), t.get(2..)),
        Some(&"ipv6") => (Some(Family::V6), t.get(2..)),
        Some(_) => (None, t.get(..)),
        None => return Err("an empty line".into()),
    };
    let Some([_name, number, timeout, kv @ ..]) = rest else {
        return Err("too short: expected protocol, number and timeout".into());
    };
    let proto = Proto(num("protocol", number)?);
    let timeout: u32 = num("timeout", timeout)?;

    let (mut orig, mut reply) = (Side::default(), Side::default());
    let mut dir = 0;
    let mut state = None;
    let mut status = Status::CONFIRMED;
    let mut unreplied = false;
    let (mut mark, mut zone, mut use_count, mut secctx) = (0, 0, None, None);
    for tok in kv {
        if let Some(flag) = tok.strip_prefix('[') {
            match flag.trim_end_matches(']') {
                "UNREPLIED" => unreplied = true,
                other => {
                    if let Some(bit) = Status::bit(other) {
                        status |= bit;
                    }
                }
            }
            continue;
        }
        let Some((k, v)) = tok.split_once('=') else {
            if dir > 0 || state.is_some() {
                return Err(format!("an unexpected word {tok:?}"));
            }
            state = Some(match TcpState::parse(tok) {
                Some(s) if proto == Proto::TCP => State::Tcp(s),
                _ => State::Other(tok.to_string()),
            });
            continue;
        };
        if k == "src" {
            dir += 1;
            if dir > 2 {
                return Err("more than two src= in one entry".into());
            }
        }
        let side = if dir <= 1 { &mut orig } else { &mut reply };
        match k {
            "src" | "dst" => {
                let a: IpAddr = v
                    .parse()
                    .map_err(|_| format!("{k}={v} is not an address"))?;
                if k == "src" {
                    side.src = Some(a);
                } else {
                    side.dst = Some(a);
                }
            }
            "sport" => side.sport = Some(num(k, v)?),
            "dport" => side.dport = Some(num(k, v)?),
            "srckey" => side.sport = Some(key(k, v)?),
            "dstkey" => side.dport = Some(key(k, v)?),
            "type" => side.kind = Some(num(k, v)?),
            "code" => side.code = Some(num(k, v)?),
            "id" => side.id = Some(num(k, v)?),
            "packets" => side.packets = Some(num(k, v)?),
            "bytes" => side.bytes = Some(num(k, v)?),
            "mark" => mark = num(k, v)?,
            "zone" => zone = num(k, v)?,
            "use" => use_count = Some(num(k, v)?),
            "secctx" => secctx = Some(v.to_string()),
            _ => {} // delta-time, secmark, and whatever later kernels add
        }
    }
    if dir < 2 {
        return Err("an entry needs an original and a reply direction".into());
    }
    if !unreplied {
        status |= Status::SEEN_REPLY;
    }
    let (o, r) = (orig.tuple("original")?, reply.tuple("reply")?);
    let family = match (family, o.src) {
        (Some(f), _) => f,
        (None, IpAddr::V4(_)) => Family::V4,
        (None, IpAddr::V6(_)) => Family::V6,
    };
    let mut e = Entry::new(family, proto, o, r);
    e.state = state;
    e.timeout = timeout;
    e.status = Status(status);
    e.mark = mark;
    e.zone = zone;
    e.use_count = use_count;
    e.secctx = secctx;
    (e.orig_packets, e.orig_bytes) = (orig.packets, orig.bytes);
    (e.reply_packets, e.reply_bytes) = (reply.packets, reply.bytes);
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modern_line() {
        let e = parse_line(
            "ipv6     10 udp      17 29 src=0000:0000:0000:0000:0000:0000:0000:0001 dst=::1 \
             sport=50468 dport=5353 packets=1 bytes=50 [UNREPLIED] src=::1 dst=::1 sport=5353 \
             dport=50468 packets=0 bytes=0 mark=9 zone=3 delta-time=0 use=2",
        )
        .unwrap();
        assert_eq!(e.family, Family::V6);
        assert_eq!(e.orig.src.to_string(), "::1");
        assert_eq!((e.mark, e.zone, e.timeout), (9, 3, 29));
        assert!(!e.status.has(Status::SEEN_REPLY));
        assert_eq!(e.orig_packets, Some(1));
        assert_eq!(e.state, None);
    }

    #[test]
    fn old_line() {
        let e = parse_line(
            "tcp 6 117 SYN_SENT src=192.0.2.6 dst=192.0.2.9 sport=32775 dport=22 [UNREPLIED] \
             src=192.0.2.9 dst=192.0.2.6 sport=22 dport=32775 use=2",
        )
        .unwrap();
        assert_eq!(e.family, Family::V4);
        assert_eq!(e.state, Some(State::Tcp(TcpState::SynSent)));
        assert_eq!(e.reply.sport, Some(22));
        assert_eq!(e.use_count, Some(2));
    }

    #[test]
    fn bad_lines_say_why() {
        assert!(parse_line("").is_err());
        assert!(parse_line("ipv4 2 tcp").is_err());
        assert!(parse_line("tcp 6 x src=1.2.3.4").is_err());
        assert!(parse_line("udp 17 5 src=1.2.3.4 dst=1.2.3.5").is_err());
        assert!(parse_line("udp 17 5 src=1.2.3.4 dst=5 src=1.2.3.5 dst=1.2.3.4").is_err());
        let e = parse("\nudp 17 5 src=1.2.3.4 dst=1.2.3.5 sport=99999").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
