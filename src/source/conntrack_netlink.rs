//! Conntrack straight from the kernel over ctnetlink (NETLINK_NETFILTER, subsystem
//! NFNL_SUBSYS_CTNETLINK): a dump, the event groups, statistics, and deletion. The socket is
//! opened in the calling thread's network namespace and stays bound to it; to work on another
//! namespace, open it on a thread that entered that namespace first (see [`super::netns`]).
//! Decoding of what the kernel sends is in [`crate::conntrack::decode`].

use super::nfnl::{
    self, NLM_F_DUMP, NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, error_code, messages, recv,
};
use crate::conntrack::decode::{
    self, AttrWriter, CTA_ID, CTA_TIMEOUT, CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_ZONE, CpuStats,
    DecodeError, IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_GET_STATS,
    IPCTNL_MSG_CT_GET_STATS_CPU, IPCTNL_MSG_CT_NEW, NFNL_SUBSYS_CTNETLINK,
};
use crate::conntrack::{CtEvent, CtEventKind, Entry};
use crate::ruleset::Family;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;
use thiserror::Error;

const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

/// The event groups (enum nfnetlink_groups).
const NFNLGRP_CONNTRACK_NEW: u32 = 1;
const NFNLGRP_CONNTRACK_UPDATE: u32 = 2;
const NFNLGRP_CONNTRACK_DESTROY: u32 = 3;

const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
/// getsockopt(SOL_SOCKET, SO_MEMINFO) returns SK_MEMINFO_VARS u32s; the last is the drop count.
const SO_MEMINFO: libc::c_int = 55;
const SK_MEMINFO_DROPS: usize = 8;
const SK_MEMINFO_VARS: usize = 9;

/// How many times a dump the kernel marked interrupted (NLM_F_DUMP_INTR) is started again.
const DUMP_ATTEMPTS: usize = 4;
/// Requests sent in one datagram when deleting or creating many entries.
const BATCH: usize = 256;
/// The receive buffer of command sockets: room for a batch of acknowledgements.
const COMMAND_RCVBUF: usize = 4 << 20;

/// A failure talking to the kernel's conntrack, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CtError {
    #[error("reading conntrack needs CAP_NET_ADMIN: run as root, or try `nfscope --demo`")]
    PermissionDenied,
    #[error(
        "the kernel does not offer conntrack over netlink: load it with `modprobe nf_conntrack_netlink` (as root), or read /proc/net/nf_conntrack"
    )]
    NotSupported,
    #[error("that conntrack entry is gone (it expired or was deleted already)")]
    NotFound,
    #[error("conntrack over netlink: {what} failed: {message}")]
    Io {
        what: String,
        errno: Option<i32>,
        message: String,
    },
    #[error("cannot read {path}: {message}")]
    Proc { path: String, message: String },
    #[error("the kernel sent a conntrack message nfscope cannot read: {0}")]
    Decode(#[from] DecodeError),
}

impl CtError {
    fn from_errno(what: &str, errno: i32) -> CtError {
        match errno {
            libc::EPERM | libc::EACCES => CtError::PermissionDenied,
            libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT => CtError::NotSupported,
            libc::ENOENT => CtError::NotFound,
            _ => CtError::Io {
                what: what.to_string(),
                errno: Some(errno),
                message: io::Error::from_raw_os_error(errno).to_string(),
            },
        }
    }

    fn io(what: &str, e: &io::Error) -> CtError {
        match e.raw_os_error() {
            Some(n) => CtError::from_errno(what, n),
            None => CtError::Io {
                what: what.to_string(),
                errno: None,
                message: e.to_string(),
            },
        }
    }
}

fn ct_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_CTNETLINK << 8) | msg
}

/// Append one ctnetlink request (netlink header, nfgenmsg, attributes) to `out`.
fn push_request(out: &mut Vec<u8>, msg: u16, flags: u16, seq: u32, family: u8, attrs: &[u8]) {
    nfnl::push_request(out, ct_type(msg), flags, seq, family, attrs);
}

fn setsockopt_int(
    sock: &Socket,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid descriptor and a pointer to an int that lives for the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            (&raw const v).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ask for a receive buffer of `bytes`: SO_RCVBUFFORCE (root may exceed rmem_max), else SO_RCVBUF.
fn set_rcvbuf(sock: &Socket, bytes: usize) -> io::Result<()> {
    use rustix::net::sockopt;
    sockopt::set_socket_recv_buffer_size_force(sock, bytes)
        .or_else(|_| sockopt::set_socket_recv_buffer_size(sock, bytes))
        .map_err(io::Error::from)
}

/// How long a receive waits before it fails with EAGAIN.
fn set_recv_timeout(sock: &Socket, t: Duration) -> io::Result<()> {
    rustix::net::sockopt::set_socket_timeout(sock, rustix::net::sockopt::Timeout::Recv, Some(t))
        .map_err(io::Error::from)
}

/// How many datagrams the kernel dropped for this socket so far (SO_MEMINFO's drop counter):
/// with the event groups, one dropped datagram is one lost event.
fn drops(sock: &Socket) -> Option<u32> {
    let mut info = [0u32; SK_MEMINFO_VARS];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: a valid descriptor, and a buffer and length that match.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    (rc == 0 && len as usize >= (SK_MEMINFO_DROPS + 1) * 4).then_some(info[SK_MEMINFO_DROPS])
}

fn open_socket() -> Result<Socket, CtError> {
    let mut sock =
        Socket::new(NETLINK_NETFILTER).map_err(|e| CtError::io("opening the socket", &e))?;
    sock.bind_auto()
        .map_err(|e| CtError::io("binding the socket", &e))?;
    Ok(sock)
}

/// Per-CPU statistics and the table's fill.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CtStats {
    pub cpus: Vec<CpuStats>,
    /// Entries in the table (`nf_conntrack_count`).
    pub count: u32,
    /// The table's maximum (`nf_conntrack_max`), where the kernel says.
    pub max: Option<u32>,
}

impl CtStats {
    /// The per-CPU counters added up.
    pub fn total(&self) -> CpuStats {
        self.cpus.iter().fold(CpuStats::default(), |mut t, c| {
            t.found += c.found;
            t.invalid += c.invalid;
            t.insert += c.insert;
            t.insert_failed += c.insert_failed;
            t.drop += c.drop;
            t.early_drop += c.early_drop;
            t.error += c.error;
            t.search_restart += c.search_restart;
            t.clash_resolve += c.clash_resolve;
            t.chaintoolong += c.chaintoolong;
            t
        })
    }
}

/// A request/response socket: dumps, statistics, deletion, creation.
pub struct CtSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl CtSocket {
    /// Open a socket in the calling thread's network namespace.
    pub fn open() -> Result<CtSocket, CtError> {
        let sock = open_socket()?;
        // Best effort: short acknowledgements, and room for a batch of them.
        let _ = setsockopt_int(&sock, SOL_NETLINK, NETLINK_CAP_ACK, 1);
        let _ = set_rcvbuf(&sock, COMMAND_RCVBUF);
        Ok(CtSocket {
            sock,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&self, what: &str, req: &[u8]) -> Result<(), CtError> {
        let kernel = SocketAddr::new(0, 0);
        self.sock
            .send_to(req, &kernel, 0)
            .map_err(|e| CtError::io(what, &e))?;
        Ok(())
    }

    /// Send one dump request and hand each answer's payload to `each`. Returns whether the
    /// kernel marked the dump interrupted.
    fn dump_raw(
        &mut self,
        what: &str,
        msg: u16,
        family: u8,
        mut each: impl FnMut(&[u8]) -> Result<(), CtError>,
    ) -> Result<bool, CtError> {
        let seq = self.next_seq();
        let mut req = Vec::with_capacity(32);
        push_request(&mut req, msg, NLM_F_DUMP, seq, family, &[]);
        self.send(what, &req)?;
        let mut interrupted = false;
        let mut buf = std::mem::take(&mut self.buf);
        let result = (|| loop {
            let n = recv(&self.sock, &mut buf).map_err(|e| CtError::io(what, &e))?;
            for m in messages(&buf[..n]) {
                if m.seq != seq {
                    continue;
                }
                interrupted |= m.flags & NLM_F_DUMP_INTR != 0;
                match m.kind {
                    NLMSG_DONE => {
                        let code = error_code(m.payload);
                        return if code > 0 {
                            Err(CtError::from_errno(what, code))
                        } else {
                            Ok(interrupted)
                        };
                    }
                    NLMSG_ERROR => {
                        let code = error_code(m.payload);
                        if code != 0 {
                            return Err(CtError::from_errno(what, code));
                        }
                    }
                    _ => each(m.payload)?,
                }
            }
        })();
        self.buf = buf;
        result
    }

    /// The raw payload (nfgenmsg and attributes) of every entry of a dump, undecoded, for
    /// callers that decode lazily or measure; returns whether the kernel marked the dump
    /// interrupted (NLM_F_DUMP_INTR). Decode each with [`decode::entry`].
    pub fn dump_payloads(
        &mut self,
        family: Option<Family>,
        each: impl FnMut(&[u8]) -> Result<(), CtError>,
    ) -> Result<bool, CtError> {
        let af = family.map_or(0, decode::af);
        self.dump_raw("dumping the table", IPCTNL_MSG_CT_GET, af, each)
    }

    /// Every entry of the table, of one family or (`None`) both. A dump the kernel marks
    /// interrupted is started again, a few times; the last attempt is returned regardless.
    pub fn dump(&mut self, family: Option<Family>) -> Result<Vec<Entry>, CtError> {
        let af = family.map_or(0, decode::af);
        // Sized from the table's count (one cheap request): no regrowth and copying of a
        // large Vec while the dump streams in, and no slack left behind.
        let hint = self.table_stats().map_or(0, |(count, _)| count as usize);
        let mut entries = Vec::with_capacity(hint + hint / 32 + 16);
        for _ in 0..DUMP_ATTEMPTS {
            entries.clear();
            let interrupted = self.dump_raw("dumping the table", IPCTNL_MSG_CT_GET, af, |p| {
                entries.push(decode::entry(p)?);
                Ok(())
            })?;
            if !interrupted {
                break;
            }
        }
        entries.shrink_to_fit();
        Ok(entries)
    }

    /// Per-CPU statistics, and the table's count and maximum.
    pub fn stats(&mut self) -> Result<CtStats, CtError> {
        let mut cpus = Vec::new();
        self.dump_raw("reading statistics", IPCTNL_MSG_CT_GET_STATS_CPU, 0, |p| {
            cpus.push(decode::cpu_stats(p)?);
            Ok(())
        })?;
        let (count, max) = self.table_stats()?;
        Ok(CtStats { cpus, count, max })
    }

    /// IPCTNL_MSG_CT_GET_STATS: one answer with the count and the maximum.
    fn table_stats(&mut self) -> Result<(u32, Option<u32>), CtError> {
        let what = "reading the table's fill";
        let seq = self.next_seq();
        let mut req = Vec::with_capacity(32);
        push_request(&mut req, IPCTNL_MSG_CT_GET_STATS, 0, seq, 0, &[]);
        self.send(what, &req)?;
        loop {
            let n = recv(&self.sock, &mut self.buf).map_err(|e| CtError::io(what, &e))?;
            for m in messages(&self.buf[..n]) {
                if m.seq != seq {
                    continue;
                }
                if m.kind == NLMSG_ERROR {
                    return Err(CtError::from_errno(what, error_code(m.payload).max(1)));
                }
                let (count, max) = decode::table_stats(m.payload)?;
                let max = max.or_else(|| {
                    std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_max")
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                });
                return Ok((count, max));
            }
        }
    }

    /// Send requests in datagrams of [`BATCH`], each asking for an acknowledgement, and return
    /// each request's errno (0: done) in order.
    fn batch(
        &mut self,
        what: &str,
        requests: &[(u16, u16, u8, Vec<u8>)],
    ) -> Result<Vec<i32>, CtError> {
        let mut results = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(BATCH) {
            let first = self.seq.wrapping_add(1);
            let mut out = Vec::with_capacity(chunk.len() * 128);
            for (msg, flags, family, attrs) in chunk {
                let seq = self.next_seq();
                push_request(&mut out, *msg, flags | NLM_F_ACK, seq, *family, attrs);
            }
            self.send(what, &out)?;
            let mut codes = vec![None; chunk.len()];
            let mut pending = chunk.len();
            while pending > 0 {
                let n = recv(&self.sock, &mut self.buf).map_err(|e| CtError::io(what, &e))?;
                for m in messages(&self.buf[..n]) {
                    let i = m.seq.wrapping_sub(first) as usize;
                    if m.kind == NLMSG_ERROR
                        && let Some(slot @ None) = codes.get_mut(i)
                    {
                        *slot = Some(error_code(m.payload));
                        pending -= 1;
                    }
                }
            }
            results.extend(codes.into_iter().map(|c| c.unwrap_or(0)));
        }
        Ok(results)
    }

    /// Delete one entry, by its original tuple and zone (and the kernel's id when known).
    pub fn delete(&mut self, e: &Entry) -> Result<(), CtError> {
        match self.batch("deleting an entry", &[delete_request(e)])?[0] {
            0 => Ok(()),
            n => Err(CtError::from_errno("deleting an entry", n)),
        }
    }

    /// Delete every entry `select` picks (a dump, then one request each, batched). Entries that
    /// went away meanwhile are not counted; returns how many this call deleted.
    pub fn delete_matching(
        &mut self,
        select: impl FnMut(&Entry) -> bool,
    ) -> Result<usize, CtError> {
        self.delete_selected(select).map(|gone| gone.len())
    }

    /// As [`CtSocket::delete_matching`], returning the entries this call deleted (as the dump
    /// before the deletion saw them), for a caller that keeps a table of its own.
    pub fn delete_selected(
        &mut self,
        mut select: impl FnMut(&Entry) -> bool,
    ) -> Result<Vec<Entry>, CtError> {
        let mut chosen = self.dump(None)?;
        chosen.retain(|e| select(e));
        let requests: Vec<_> = chosen.iter().map(delete_request).collect();
        let codes = self.batch("deleting entries", &requests)?;
        if let Some(&n) = codes.iter().find(|&&c| c != 0 && c != libc::ENOENT) {
            return Err(CtError::from_errno("deleting entries", n));
        }
        let mut codes = codes.into_iter();
        chosen.retain(|_| codes.next() == Some(0));
        Ok(chosen)
    }

    /// Create entries (IPCTNL_MSG_CT_NEW), e.g. to fill a test namespace's table quickly.
    /// Each needs its tuples and a timeout; mark and zone are passed on, the status is not
    /// (the kernel answers EBUSY to status bits it owns). Returns how many the kernel accepted.
    pub fn create(&mut self, entries: &[Entry]) -> Result<usize, CtError> {
        let requests: Vec<_> = entries.iter().map(create_request).collect();
        let codes = self.batch("creating entries", &requests)?;
        if let Some(&n) = codes.iter().find(|&&c| c != 0 && c != libc::EEXIST) {
            return Err(CtError::from_errno("creating entries", n));
        }
        Ok(codes.iter().filter(|&&c| c == 0).count())
    }
}

fn delete_request(e: &Entry) -> (u16, u16, u8, Vec<u8>) {
    let mut w = AttrWriter::default();
    w.tuple(CTA_TUPLE_ORIG, &e.orig, e.proto);
    if e.zone != 0 {
        w.put(CTA_ZONE, &e.zone.to_be_bytes());
    }
    if e.id != 0 {
        w.put(CTA_ID, &e.id.to_be_bytes());
    }
    (IPCTNL_MSG_CT_DELETE, 0, decode::af(e.family), w.buf)
}

fn create_request(e: &Entry) -> (u16, u16, u8, Vec<u8>) {
    let mut w = AttrWriter::default();
    w.tuple(CTA_TUPLE_ORIG, &e.orig, e.proto);
    w.tuple(CTA_TUPLE_REPLY, &e.reply, e.proto);
    w.put(CTA_TIMEOUT, &e.timeout.max(1).to_be_bytes());
    if e.mark != 0 {
        w.put(decode::CTA_MARK, &e.mark.to_be_bytes());
    }
    if e.zone != 0 {
        w.put(CTA_ZONE, &e.zone.to_be_bytes());
    }
    (
        IPCTNL_MSG_CT_NEW,
        NLM_F_CREATE | NLM_F_EXCL,
        decode::af(e.family),
        w.buf,
    )
}

/// Dump the table of this thread's network namespace.
pub fn dump(family: Option<Family>) -> Result<Vec<Entry>, CtError> {
    CtSocket::open()?.dump(family)
}

/// Statistics of this thread's network namespace.
pub fn stats() -> Result<CtStats, CtError> {
    CtSocket::open()?.stats()
}

/// Delete one entry in this thread's network namespace.
pub fn delete(e: &Entry) -> Result<(), CtError> {
    CtSocket::open()?.delete(e)
}

/// Delete every entry `select` picks in this thread's network namespace; returns how many.
pub fn delete_matching(select: impl FnMut(&Entry) -> bool) -> Result<usize, CtError> {
    CtSocket::open()?.delete_matching(select)
}

/// What a subscription yields: an event, or word that events were lost (the receive buffer
/// overflowed) and the caller's table must be resynchronised with a fresh dump.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "events are the common case; boxing would cost an allocation each"
)]
pub enum CtMessage {
    Event(CtEvent),
    /// How many events the kernel dropped since the last report (at least 1).
    Lost(u64),
}

/// How to subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// The socket's receive buffer in bytes; `None` keeps the system default. Large values
    /// make loss rarer on busy hosts; tests make it tiny to force loss.
    pub rcvbuf: Option<usize>,
    /// How long `recv` waits before returning `None`; `None` waits for ever.
    pub timeout: Option<Duration>,
    pub new: bool,
    pub update: bool,
    pub destroy: bool,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            rcvbuf: Some(8 << 20),
            timeout: None,
            new: true,
            update: true,
            destroy: true,
        }
    }
}

/// A subscription to the conntrack event groups of the namespace it was opened in.
pub struct Subscription {
    sock: Socket,
    buf: Vec<u8>,
    pending: VecDeque<CtMessage>,
    drops: u32,
    lost_total: u64,
}

impl Subscription {
    pub fn open(opts: SubscribeOptions) -> Result<Subscription, CtError> {
        let sock = open_socket()?;
        if let Some(n) = opts.rcvbuf {
            set_rcvbuf(&sock, n).map_err(|e| CtError::io("sizing the receive buffer", &e))?;
        }
        if let Some(t) = opts.timeout {
            set_recv_timeout(&sock, t)
                .map_err(|e| CtError::io("setting the receive timeout", &e))?;
        }
        let groups = [
            (opts.new, NFNLGRP_CONNTRACK_NEW),
            (opts.update, NFNLGRP_CONNTRACK_UPDATE),
            (opts.destroy, NFNLGRP_CONNTRACK_DESTROY),
        ];
        for (_, g) in groups.iter().filter(|(on, _)| *on) {
            sock.add_membership(*g)
                .map_err(|e| CtError::io("subscribing to conntrack events", &e))?;
        }
        let drops = drops(&sock).unwrap_or(0);
        Ok(Subscription {
            sock,
            buf: vec![0; 64 * 1024],
            pending: VecDeque::new(),
            drops,
            lost_total: 0,
        })
    }

    /// Every event lost since the subscription began.
    pub fn lost_total(&self) -> u64 {
        self.lost_total
    }

    /// The next event or loss report, in the order the kernel sent them; `None` when the
    /// timeout passed with nothing.
    pub fn recv(&mut self) -> Result<Option<CtMessage>, CtError> {
        loop {
            if let Some(m) = self.pending.pop_front() {
                return Ok(Some(m));
            }
            match recv(&self.sock, &mut self.buf) {
                Ok(n) => self.take(n)?,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    let now = drops(&self.sock).unwrap_or(self.drops);
                    let lost = u64::from(now.wrapping_sub(self.drops)).max(1);
                    self.drops = now;
                    self.lost_total += lost;
                    return Ok(Some(CtMessage::Lost(lost)));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(CtError::io("receiving conntrack events", &e)),
            }
        }
    }

    fn take(&mut self, n: usize) -> Result<(), CtError> {
        for m in messages(&self.buf[..n]) {
            if m.kind >> 8 != NFNL_SUBSYS_CTNETLINK {
                continue;
            }
            let kind = match m.kind & 0xff {
                IPCTNL_MSG_CT_DELETE => CtEventKind::Destroy,
                IPCTNL_MSG_CT_NEW if m.flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 => CtEventKind::New,
                IPCTNL_MSG_CT_NEW => CtEventKind::Update,
                _ => continue,
            };
            let entry = decode::entry(m.payload)?;
            self.pending
                .push_back(CtMessage::Event(CtEvent { kind, entry }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::nfnl::NLM_F_REQUEST;

    #[test]
    fn requests_walk_back_as_messages() {
        let mut out = Vec::new();
        push_request(&mut out, IPCTNL_MSG_CT_GET, NLM_F_DUMP, 7, 2, &[]);
        push_request(&mut out, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, 8, 10, &[1, 2, 3]);
        let ms: Vec<_> = messages(&out).collect();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].kind, 0x101);
        assert_eq!(ms[0].flags, NLM_F_DUMP | NLM_F_REQUEST);
        assert_eq!((ms[1].seq, ms[1].payload.len()), (8, 7));
        assert_eq!(ms[1].payload[0], 10);
        assert!(messages(&out[..10]).next().is_none());
    }

    #[test]
    fn events_serialize_as_the_watch_schema() {
        let e = crate::conntrack::decode::entry(&{
            let mut w = AttrWriter::default();
            w.buf.extend_from_slice(&[2, 0, 0, 0]);
            let t = crate::conntrack::Tuple {
                src: "10.0.0.1".parse().unwrap(),
                dst: "10.0.0.2".parse().unwrap(),
                sport: Some(1),
                dport: Some(2),
                icmp: None,
            };
            w.tuple(CTA_TUPLE_ORIG, &t, crate::conntrack::Proto::UDP);
            w.buf
        })
        .unwrap();
        let v = serde_json::to_value(CtEvent {
            kind: CtEventKind::Destroy,
            entry: e,
        })
        .unwrap();
        assert_eq!(v["event"], "destroy");
        assert_eq!(v["entry"]["proto"], "udp");
    }

    /// The requests nfscope writes by hand, read back by netlink-packet-netfilter (the crate the
    /// issue names): the headers, the tuples and the attributes it models; zone and id, which it
    /// leaves raw, by their bytes.
    #[test]
    fn netlink_packet_netfilter_reads_our_requests() {
        use netlink_packet_core::{NetlinkMessage, NetlinkPayload, Nla};
        use netlink_packet_netfilter::conntrack::{
            ConntrackAttribute as A, ConntrackMessage as M, IPTuple, ProtoTuple, Protocol,
            Tuple as T,
        };
        use netlink_packet_netfilter::{
            NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
        };

        let read = |msg: u16, flags: u16, family: u8, attrs: &[u8]| {
            let mut out = Vec::new();
            push_request(&mut out, msg, flags, 9, family, attrs);
            let m = NetlinkMessage::<NetfilterMessage>::deserialize(&out).unwrap();
            assert_eq!(
                (m.header.sequence_number, m.header.length as usize),
                (9, out.len())
            );
            assert_eq!(m.header.flags, flags | NLM_F_REQUEST);
            let NetlinkPayload::InnerMessage(nf) = m.payload else {
                panic!("not a netfilter message")
            };
            (nf.header.family, nf.inner)
        };

        let (family, inner) = read(IPCTNL_MSG_CT_GET, NLM_F_DUMP, 0, &[]);
        assert_eq!(family, NetfilterProtoFamily::Unspec);
        assert_eq!(inner, NetfilterMessageInner::Conntrack(M::Get(vec![])));

        let t = crate::conntrack::Tuple {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            sport: Some(40000),
            dport: Some(53),
            icmp: None,
        };
        let r = crate::conntrack::Tuple {
            src: t.dst,
            dst: t.src,
            sport: t.dport,
            dport: t.sport,
            icmp: None,
        };
        let mut e = Entry::new(Family::V4, crate::conntrack::Proto::UDP, t, r);
        (e.zone, e.id, e.mark, e.timeout) = (5, 0xdead_beef, 7, 30);
        let tuple = |x: &crate::conntrack::Tuple| {
            vec![
                T::Ip(vec![
                    IPTuple::SourceAddress(x.src),
                    IPTuple::DestinationAddress(x.dst),
                ]),
                T::Proto(vec![
                    ProtoTuple::Protocol(Protocol::Udp),
                    ProtoTuple::SourcePort(x.sport.unwrap()),
                    ProtoTuple::DestinationPort(x.dport.unwrap()),
                ]),
            ]
        };
        let raw = |a: &A| {
            let A::Other(nla) = a else { return None };
            let mut v = vec![0; nla.value_len()];
            nla.emit_value(&mut v);
            Some((nla.kind() & 0x3fff, v))
        };

        let (msg, flags, af, attrs) = delete_request(&e);
        let (family, inner) = read(msg, flags | NLM_F_ACK, af, &attrs);
        assert_eq!(family, NetfilterProtoFamily::IPv4);
        let NetfilterMessageInner::Conntrack(M::Delete(a)) = inner else {
            panic!("not a delete: {inner:?}")
        };
        assert_eq!(a[0], A::CtaTupleOrig(tuple(&t)));
        assert_eq!(raw(&a[1]), Some((CTA_ZONE, 5u16.to_be_bytes().to_vec())));
        assert_eq!(
            raw(&a[2]),
            Some((CTA_ID, 0xdead_beef_u32.to_be_bytes().to_vec()))
        );
        assert_eq!(a.len(), 3);

        let (msg, flags, af, attrs) = create_request(&e);
        let (_, inner) = read(msg, flags, af, &attrs);
        let NetfilterMessageInner::Conntrack(M::New(a)) = inner else {
            panic!("not a new: {inner:?}")
        };
        assert_eq!(
            a[..4],
            [
                A::CtaTupleOrig(tuple(&t)),
                A::CtaTupleReply(tuple(&r)),
                A::CtaTimeout(30),
                A::CtaMark(7),
            ]
        );
        assert_eq!(raw(&a[4]), Some((CTA_ZONE, 5u16.to_be_bytes().to_vec())));
    }

    #[test]
    fn permission_errors_say_what_to_do() {
        let e = CtError::from_errno("dumping", libc::EPERM);
        assert_eq!(
            e.to_string(),
            "reading conntrack needs CAP_NET_ADMIN: run as root, or try `nfscope --demo`"
        );
        assert_eq!(CtError::from_errno("x", libc::ENOENT), CtError::NotFound);
    }
}
