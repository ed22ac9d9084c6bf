//! A real trace, opt-in (`nfscope trace --live`): a table nfscope owns sets `nftrace` on the
//! packets that match a filter, and the kernel reports every nf_tables chain and rule each of
//! them meets (`NFT_MSG_TRACE` on the NFNLGRP_NFTRACE group), with the verdicts.
//!
//! The table is made with `NFT_TABLE_F_OWNER`: it belongs to the netlink socket that made it,
//! and the kernel removes it when that socket closes, however nfscope ends (a crash, SIGKILL, a
//! dropped SSH session). It is an `inet` table named `nfscope_trace_PID` with two base chains at
//! priority -350 (before raw): prerouting for packets from the network, output for locally sent
//! ones, each with one rule, the filter then `meta nftrace set 1`. Nothing else is changed.
//! Legacy x_tables are not traced by the kernel.

use super::nfnl::{NLM_F_REQUEST, NLMSG_ERROR, error_code, messages, recv};
use super::nft_expr::{Data, Verdict, data};
use super::nft_netlink::NftError;
use crate::conntrack::decode::{AttrWriter, Attrs};
use crate::ruleset::Family;
use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};
use std::net::IpAddr;
use std::time::{Duration, Instant};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_TRACE: u16 = 17;
const NFNLGRP_NFTRACE: u32 = 9;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NFPROTO_INET: u8 = 1;
const TABLE_OWNER: u32 = 0x2;

/// Which packets to trace: any field left out matches all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub family: Family,
    pub proto: Option<u8>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
}

/// What one trace event says: a rule a packet matched (and its verdict), the end of a chain
/// it returned from, or the policy of a base chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Rule,
    Return,
    Policy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The same for every event of one packet.
    pub id: u32,
    /// `inet`, `ip`...: the table's family.
    pub family: u8,
    pub table: String,
    pub chain: String,
    pub handle: Option<u64>,
    pub kind: EventKind,
    pub verdict: Option<Verdict>,
    /// The policy of a base chain (`NF_DROP` 0, `NF_ACCEPT` 1), for a policy event.
    pub policy: Option<u32>,
    /// The packet's headers as the chain saw them (the first event of a packet has them).
    pub network: Vec<u8>,
    pub transport: Vec<u8>,
    pub iif: Option<u32>,
    pub oif: Option<u32>,
    pub mark: Option<u32>,
}

fn be32(p: &[u8]) -> u32 {
    p.get(..4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn string(p: &[u8]) -> String {
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    String::from_utf8_lossy(&p[..end]).into_owned()
}

/// One `NFT_MSG_TRACE` message's attributes (after the nfgenmsg).
pub fn decode_event(family: u8, attrs: &[u8]) -> Event {
    let mut e = Event {
        id: 0,
        family,
        table: String::new(),
        chain: String::new(),
        handle: None,
        kind: EventKind::Rule,
        verdict: None,
        policy: None,
        network: Vec::new(),
        transport: Vec::new(),
        iif: None,
        oif: None,
        mark: None,
    };
    for (k, p) in Attrs::new(attrs) {
        match k {
            1 => e.table = string(p),
            2 => e.chain = string(p),
            3 => {
                e.handle = p
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
            }
            4 => {
                e.kind = match be32(p) {
                    1 => EventKind::Policy,
                    2 => EventKind::Return,
                    _ => EventKind::Rule,
                }
            }
            // NFTA_TRACE_VERDICT holds the NFTA_VERDICT_* attributes directly.
            5 => {
                let mut w = AttrWriter::default();
                w.put(2, p);
                if let Some(Data::Verdict(v)) = data(&w.buf) {
                    e.verdict = Some(v);
                }
            }
            6 => e.id = be32(p),
            8 => e.network = p.to_vec(),
            9 => e.transport = p.to_vec(),
            10 => e.iif = Some(be32(p)),
            12 => e.oif = Some(be32(p)),
            14 => e.mark = Some(be32(p)),
            16 => e.policy = Some(be32(p)),
            _ => {}
        }
    }
    e
}

/// A running trace: the table (alive while `ctl` is open) and the event socket.
pub struct LiveTrace {
    /// Owns the table: the kernel removes it when this socket closes.
    _ctl: Socket,
    events: Socket,
    buf: Vec<u8>,
    pending: Vec<Event>,
    /// The table's name, to tell its own events apart.
    pub table: String,
}

/// Append one message of a batch: netlink header, nfgenmsg (family, `res_id`), attributes.
fn push(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, res: u16, attrs: &[u8]) {
    let len = 16 + 4 + attrs.len();
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[family, 0]);
    out.extend_from_slice(&res.to_be_bytes());
    out.extend_from_slice(attrs);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

fn nul(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// One expression: its name and its attributes, written by `body`.
fn expr(w: &mut AttrWriter, name: &str, body: impl FnOnce(&mut AttrWriter)) {
    let e = w.begin(1);
    w.put(1, &nul(name));
    let d = w.begin(2);
    body(w);
    w.end(d);
    w.end(e);
}

fn value(w: &mut AttrWriter, kind: u16, v: &[u8]) {
    let d = w.begin(kind);
    w.put(1, v);
    w.end(d);
}

fn load_meta(w: &mut AttrWriter, key: u32) {
    expr(w, "meta", |w| {
        w.put(2, &key.to_be_bytes());
        w.put(1, &1u32.to_be_bytes());
    });
}

fn load_payload(w: &mut AttrWriter, base: u32, offset: u32, len: u32) {
    expr(w, "payload", |w| {
        w.put(1, &1u32.to_be_bytes());
        w.put(2, &base.to_be_bytes());
        w.put(3, &offset.to_be_bytes());
        w.put(4, &len.to_be_bytes());
    });
}

fn cmp_eq(w: &mut AttrWriter, v: &[u8]) {
    expr(w, "cmp", |w| {
        w.put(1, &1u32.to_be_bytes());
        w.put(2, &0u32.to_be_bytes());
        value(w, 3, v);
    });
}

/// The rule's expressions: the filter, then `meta nftrace set 1`.
fn rule_exprs(f: &Filter) -> Vec<u8> {
    let mut w = AttrWriter::default();
    let v6 = f.family == Family::V6;
    load_meta(&mut w, 15);
    cmp_eq(&mut w, &[if v6 { 10 } else { 2 }]);
    if let Some(p) = f.proto {
        load_meta(&mut w, 16);
        cmp_eq(&mut w, &[p]);
    }
    let (src_at, dst_at, alen) = if v6 { (8, 24, 16) } else { (12, 16, 4) };
    for (a, at) in [(f.src, src_at), (f.dst, dst_at)] {
        if let Some(a) = a {
            load_payload(&mut w, 1, at, alen);
            cmp_eq(
                &mut w,
                &match a {
                    IpAddr::V4(a) => a.octets().to_vec(),
                    IpAddr::V6(a) => a.octets().to_vec(),
                },
            );
        }
    }
    for (p, at) in [(f.sport, 0), (f.dport, 2)] {
        if let Some(p) = p {
            load_payload(&mut w, 2, at, 2);
            cmp_eq(&mut w, &p.to_be_bytes());
        }
    }
    expr(&mut w, "immediate", |w| {
        w.put(1, &1u32.to_be_bytes());
        value(w, 2, &[1]);
    });
    expr(&mut w, "meta", |w| {
        w.put(2, &12u32.to_be_bytes());
        w.put(3, &1u32.to_be_bytes());
    });
    w.buf
}

fn io(what: &str, e: &std::io::Error) -> NftError {
    NftError::io(what, e)
}

impl LiveTrace {
    /// Subscribe to trace events, then add the owned table that marks `filter`'s packets.
    pub fn start(filter: &Filter) -> Result<LiveTrace, NftError> {
        let mut events =
            Socket::new(NETLINK_NETFILTER).map_err(|e| io("opening the event socket", &e))?;
        events
            .bind_auto()
            .map_err(|e| io("binding the event socket", &e))?;
        let _ = events.set_rx_buf_sz(1 << 22);
        events
            .add_membership(NFNLGRP_NFTRACE)
            .map_err(|e| io("subscribing to trace events", &e))?;
        let mut ctl = Socket::new(NETLINK_NETFILTER).map_err(|e| io("opening a socket", &e))?;
        ctl.bind_auto().map_err(|e| io("binding a socket", &e))?;
        let table = format!("nfscope_trace_{}", std::process::id());
        let mut batch = Vec::new();
        let res = NFNL_SUBSYS_NFTABLES;
        push(&mut batch, NFNL_MSG_BATCH_BEGIN, 0, 1, 0, res, &[]);
        let mut w = AttrWriter::default();
        w.put(1, &nul(&table));
        w.put(2, &TABLE_OWNER.to_be_bytes());
        let flags = NLM_F_ACK | NLM_F_CREATE;
        let sub = |m: u16| (NFNL_SUBSYS_NFTABLES << 8) | m;
        push(
            &mut batch,
            sub(NFT_MSG_NEWTABLE),
            flags | NLM_F_EXCL,
            2,
            NFPROTO_INET,
            0,
            &w.buf,
        );
        let mut seq = 3;
        for (chain, hook) in [("pre", 0u32), ("out", 3u32)] {
            let mut w = AttrWriter::default();
            w.put(1, &nul(&table));
            w.put(3, &nul(chain));
            let h = w.begin(4);
            w.put(1, &hook.to_be_bytes());
            w.put(2, &(-350i32).to_be_bytes());
            w.end(h);
            w.put(7, &nul("filter"));
            push(
                &mut batch,
                sub(NFT_MSG_NEWCHAIN),
                flags,
                seq,
                NFPROTO_INET,
                0,
                &w.buf,
            );
            seq += 1;
            let mut w = AttrWriter::default();
            w.put(1, &nul(&table));
            w.put(2, &nul(chain));
            let list = w.begin(4);
            w.buf.extend_from_slice(&rule_exprs(filter));
            w.end(list);
            push(
                &mut batch,
                sub(NFT_MSG_NEWRULE),
                flags | NLM_F_APPEND,
                seq,
                NFPROTO_INET,
                0,
                &w.buf,
            );
            seq += 1;
        }
        push(&mut batch, NFNL_MSG_BATCH_END, 0, seq, 0, res, &[]);
        ctl.send(&batch, 0)
            .map_err(|e| io("adding the trace table", &e))?;
        // One acknowledgement per message that asked for one; the first error is the answer.
        let mut buf = vec![0u8; 1 << 16];
        let mut acks = 0;
        let expected = seq - 2;
        let _ = rustix::net::sockopt::set_socket_timeout(
            &ctl,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_secs(5)),
        );
        while acks < expected {
            let n = recv(&ctl, &mut buf).map_err(|e| io("adding the trace table", &e))?;
            for m in messages(&buf[..n]) {
                if m.kind == NLMSG_ERROR {
                    let code = error_code(m.payload);
                    if code != 0 {
                        let e = std::io::Error::from_raw_os_error(code);
                        return Err(io("adding the trace table", &e));
                    }
                    acks += 1;
                }
            }
        }
        Ok(LiveTrace {
            _ctl: ctl,
            events,
            buf: vec![0u8; 1 << 18],
            pending: Vec::new(),
            table,
        })
    }

    /// The next trace event, waiting at most `timeout`; `None` when none came.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Event>, NftError> {
        if !self.pending.is_empty() {
            return Ok(Some(self.pending.remove(0)));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let _ = rustix::net::sockopt::set_socket_timeout(
                &self.events,
                rustix::net::sockopt::Timeout::Recv,
                Some(left.max(Duration::from_millis(1))),
            );
            let n = match recv(&self.events, &mut self.buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(io("reading trace events", &e)),
            };
            for m in messages(&self.buf[..n]) {
                if m.kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE
                    && let Some(h) = m.payload.get(..4)
                {
                    self.pending.push(decode_event(h[0], &m.payload[4..]));
                }
            }
            if !self.pending.is_empty() {
                return Ok(Some(self.pending.remove(0)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_event_decodes_and_garbage_does_not_panic() {
        let mut w = AttrWriter::default();
        w.put(1, b"fw\0");
        w.put(2, b"input\0");
        w.put(4, &1u32.to_be_bytes());
        w.put(6, &7u32.to_be_bytes());
        w.put(16, &0u32.to_be_bytes());
        let e = decode_event(1, &w.buf);
        assert_eq!((e.table.as_str(), e.chain.as_str()), ("fw", "input"));
        assert_eq!((e.kind, e.id, e.policy), (EventKind::Policy, 7, Some(0)));
        let _ = decode_event(1, &[0xff; 13]);
        let f = Filter {
            family: Family::V4,
            proto: Some(6),
            src: None,
            dst: Some("192.0.2.1".parse().unwrap()),
            sport: None,
            dport: Some(22),
        };
        assert!(!rule_exprs(&f).is_empty());
    }
}
