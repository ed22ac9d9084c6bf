//! Entries as text, the way `conntrack -L` prints them (and `-o extended`, with the family in
//! front), so that people can read nfscope's output with the habits they have.

use super::{Entry, Proto, Status, Tuple};
use crate::ruleset::Family;
use std::fmt::Write;

fn tuple(out: &mut String, proto: Proto, t: &Tuple) {
    let _ = write!(out, "src={} dst={} ", t.src, t.dst);
    match (t.sport, t.dport) {
        // GRE keys travel in the port fields; conntrack-tools prints them in hex.
        (Some(s), Some(d)) if proto == Proto::GRE => {
            let _ = write!(out, "srckey={s:#x} dstkey={d:#x} ");
        }
        (Some(s), Some(d)) => {
            let _ = write!(out, "sport={s} dport={d} ");
        }
        _ => {}
    }
    if let Some(i) = &t.icmp {
        let _ = write!(out, "type={} code={} id={} ", i.kind, i.code, i.id);
    }
}

fn counters(out: &mut String, packets: Option<u64>, bytes: Option<u64>) {
    if let (Some(p), Some(b)) = (packets, bytes) {
        let _ = write!(out, "packets={p} bytes={b} ");
    }
}

/// Whether to put the family in front (`conntrack -L -o extended`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Plain,
    Extended,
}

/// One entry as one line, without a line break.
pub fn line(e: &Entry, layout: Layout) -> String {
    let mut out = String::with_capacity(200);
    if layout == Layout::Extended {
        let (name, num) = match e.family {
            Family::V4 => ("ipv4", 2),
            Family::V6 => ("ipv6", 10),
        };
        let _ = write!(out, "{name:<8} {num} ");
    }
    let _ = write!(out, "{:<8} {} {} ", e.proto.name(), e.proto.0, e.timeout);
    if let Some(s) = &e.state {
        let _ = write!(out, "{} ", s.name());
    }
    tuple(&mut out, e.proto, &e.orig);
    counters(&mut out, e.orig_packets, e.orig_bytes);
    if !e.status.has(Status::SEEN_REPLY) {
        out.push_str("[UNREPLIED] ");
    }
    tuple(&mut out, e.proto, &e.reply);
    counters(&mut out, e.reply_packets, e.reply_bytes);
    if e.status.has(Status::ASSURED) {
        out.push_str("[ASSURED] ");
    }
    let _ = write!(out, "mark={} ", e.mark);
    if let Some(h) = e.helper() {
        let _ = write!(out, "helper={h} ");
    }
    if e.zone != 0 {
        let _ = write!(out, "zone={} ", e.zone);
    }
    if let Some(u) = e.use_count {
        let _ = write!(out, "use={u} ");
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::{Proto, State, TcpState};
    use std::net::IpAddr;

    fn t(src: &str, sport: u16, dst: &str, dport: u16) -> Tuple {
        Tuple {
            src: src.parse::<IpAddr>().unwrap(),
            dst: dst.parse::<IpAddr>().unwrap(),
            sport: Some(sport),
            dport: Some(dport),
            icmp: None,
        }
    }

    #[test]
    fn like_conntrack_l() {
        let mut e = Entry::new(
            Family::V4,
            Proto::TCP,
            t("10.0.0.5", 40000, "10.0.0.1", 22),
            t("10.0.0.1", 22, "10.0.0.5", 40000),
        );
        e.state = Some(State::Tcp(TcpState::Established));
        e.timeout = 431999;
        e.status = Status(Status::SEEN_REPLY | Status::ASSURED);
        e.use_count = Some(1);
        assert_eq!(
            line(&e, Layout::Plain),
            "tcp      6 431999 ESTABLISHED src=10.0.0.5 dst=10.0.0.1 sport=40000 dport=22 src=10.0.0.1 dst=10.0.0.5 sport=22 dport=40000 [ASSURED] mark=0 use=1"
        );
        e.status = Status(0);
        e.orig_packets = Some(1);
        e.orig_bytes = Some(60);
        e.reply_packets = Some(0);
        e.reply_bytes = Some(0);
        e.zone = 3;
        assert_eq!(
            line(&e, Layout::Extended),
            "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.5 dst=10.0.0.1 sport=40000 dport=22 packets=1 bytes=60 [UNREPLIED] src=10.0.0.1 dst=10.0.0.5 sport=22 dport=40000 packets=0 bytes=0 mark=0 zone=3 use=1"
        );
    }
}
