//! Conntrack helpers shared by the kernel tests: a namespace where conntrack tracks both
//! families (with DNAT, a connmark and a zone), traffic on its loopback made from threads inside
//! it, and `conntrack -L -o extended,id` parsed into rows that nfscope's entries are compared with.

use super::{NetNs, have_tools, skip};
use nfscope::conntrack::{Entry, Status};
use nfscope::ruleset::Family;
use nfscope::source::Backend;
use nfscope::source::conntrack_netlink;
use nfscope::source::kernel::find_tool;
use nfscope::source::netns;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

/// Rules that make conntrack track both families in the namespace, with a DNAT for each family
/// (so reply tuples differ), a connmark and a zone.
pub const V4_RULES: &str = "*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 5400 -j CT --zone 5
-A OUTPUT -p udp -m udp --dport 5400 -j CT --zone 5
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -p udp -m udp --dport 5353 -j CONNMARK --set-xmark 0x7/0xffffffff
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -d 127.0.0.2/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 127.0.0.1:80
-A OUTPUT -d 127.0.0.2/32 -p udp -m udp --dport 8053 -j DNAT --to-destination 127.0.0.1:5300
COMMIT
";

pub const V6_RULES: &str = "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -p udp -m udp --dport 5353 -j CONNMARK --set-xmark 0x9/0xffffffff
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -d ::1/128 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [::1]:80
COMMIT
";

/// A namespace with conntrack active in both families and accounting on, or `None` (skipped).
pub fn tracked_ns(test: &str) -> Option<NetNs> {
    if find_tool("conntrack").is_none() {
        return skip("needs the conntrack tool (conntrack-tools)");
    }
    if !have_tools(Backend::Nft) {
        return None;
    }
    let ns = NetNs::for_test(test)?;
    ns.restore(Family::V4, Backend::Nft, V4_RULES);
    ns.restore(Family::V6, Backend::Nft, V6_RULES);
    ns.exec_ok(&["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"]);
    Some(ns)
}

/// Run `f` on a thread inside the namespace.
pub fn in_ns<T: Send + 'static>(ns: &NetNs, f: impl FnOnce() -> T + Send + 'static) -> T {
    netns::run_in(ns.name(), f).expect("enter the test's network namespace")
}

pub fn dump(ns: &NetNs) -> Vec<Entry> {
    in_ns(ns, || conntrack_netlink::dump(None)).expect("nfscope's dump")
}

/// Sockets that keep connections open until dropped.
pub struct Held {
    pub _tcp: Vec<TcpStream>,
    pub _udp: Vec<UdpSocket>,
    pub _listen: Vec<TcpListener>,
}

/// A TCP connection through `to`, accepted by `listener`, with a few bytes each way; the
/// connection is kept (returned) or closed.
pub fn tcp_pair(listener: &TcpListener, to: &str, keep: bool, held: &mut Held) {
    let mut c = TcpStream::connect(to).expect("connect");
    let (mut a, _) = listener.accept().expect("accept");
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    a.read_exact(&mut buf).unwrap();
    a.write_all(b"pong").unwrap();
    c.read_exact(&mut buf).unwrap();
    if keep {
        held._tcp.extend([c, a]);
    }
}

/// TCP (kept open, closed, through DNAT), UDP (unreplied, replied, marked, zoned, through
/// DNAT) on both families' loopback, made from inside the namespace.
pub fn make_traffic(ns: &NetNs) -> Held {
    let held = in_ns(ns, || {
        let mut held = Held {
            _tcp: vec![],
            _udp: vec![],
            _listen: vec![],
        };
        let l4 = TcpListener::bind("127.0.0.1:80").unwrap();
        tcp_pair(&l4, "127.0.0.2:8080", true, &mut held); // DNAT, ESTABLISHED
        tcp_pair(&l4, "127.0.0.1:80", false, &mut held); // closed: TIME_WAIT or so
        let l6 = TcpListener::bind("[::1]:80").unwrap();
        tcp_pair(&l6, "[::1]:8080", true, &mut held); // DNAT in IPv6
        held._listen.extend([l4, l6]);

        let server = UdpSocket::bind("127.0.0.1:5300").unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.send_to(b"q", "127.0.0.1:5300").unwrap();
        let mut buf = [0u8; 8];
        let (_, from) = server.recv_from(&mut buf).unwrap();
        server.send_to(b"a", from).unwrap();
        c.send_to(b"q", "127.0.0.2:8053").unwrap(); // DNAT to the same server
        let (_, from) = server.recv_from(&mut buf).unwrap();
        server.send_to(b"a", from).unwrap();
        for to in [
            "127.0.0.1:5353",
            "127.0.0.1:5400",
            "[::1]:5353",
            "[::1]:5400",
        ] {
            let bind = if to.starts_with('[') {
                "[::1]:0"
            } else {
                "127.0.0.1:0"
            };
            let s = UdpSocket::bind(bind).unwrap();
            s.send_to(b"x", to).unwrap();
            held._udp.push(s);
        }
        held._udp.extend([server, c]);
        held
    });
    ns.exec_ok(&["ping", "-c1", "-q", "127.0.0.1"]);
    ns.exec_ok(&["ping", "-6", "-c1", "-q", "::1"]);
    // Let the last replies and closes be processed: the table settles when two reads in a
    // row agree (timeouts aside, which count down).
    settle(ns);
    held
}

/// One entry as compared: every field `conntrack -L -o extended,id` prints, as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Row {
    pub family: String,
    pub proto: u8,
    pub state: Option<String>,
    pub orig: BTreeMap<String, String>,
    pub reply: BTreeMap<String, String>,
    pub assured: bool,
    pub unreplied: bool,
    pub mark: u32,
    pub zone: u16,
    pub use_count: u32,
    pub id: u32,
}

/// Parse `conntrack -L -o extended,id`: `ipv4 2 tcp 6 431999 ESTABLISHED src=.. dst=..
/// sport=.. dport=.. packets=.. bytes=.. [UNREPLIED] src=.. (reply) ... [ASSURED] mark=0
/// zone=5 use=1 id=123`. The timeout is returned beside the row.
pub fn parse_conntrack(text: &str) -> Vec<(Row, u32)> {
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let t: Vec<&str> = line.split_whitespace().collect();
        assert!(t.len() > 5, "an odd conntrack line: {line}");
        let mut r = Row {
            family: t[0].to_string(),
            proto: t[3].parse().unwrap(),
            ..Row::default()
        };
        let timeout: u32 = t[4].parse().unwrap();
        let mut dir = 0;
        let mut after_use = false;
        for tok in &t[5..] {
            if let Some(flag) = tok.strip_prefix('[') {
                match flag.trim_end_matches(']') {
                    "ASSURED" => r.assured = true,
                    "UNREPLIED" => r.unreplied = true,
                    _ => {}
                }
                continue;
            }
            let Some((k, v)) = tok.split_once('=') else {
                r.state = Some(tok.to_string());
                continue;
            };
            match k {
                "src" => {
                    dir += 1;
                    side(&mut r, dir).insert(k.into(), v.into());
                }
                "mark" => r.mark = v.parse().unwrap(),
                "zone" => r.zone = v.parse().unwrap(),
                "use" => {
                    r.use_count = v.parse().unwrap();
                    after_use = true;
                }
                "id" if after_use => r.id = v.parse().unwrap(),
                _ => {
                    side(&mut r, dir).insert(k.into(), v.into());
                }
            }
        }
        rows.push((r, timeout));
    }
    rows
}

/// A field of a tuple, or "" where it has none (ICMP has no ports).
pub fn at<'a>(t: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    t.get(k).map_or("", String::as_str)
}

pub fn side(r: &mut Row, dir: usize) -> &mut BTreeMap<String, String> {
    if dir <= 1 { &mut r.orig } else { &mut r.reply }
}

/// The same view of an nfscope entry.
pub fn row_of(e: &Entry) -> (Row, u32) {
    let tuple = |t: &nfscope::conntrack::Tuple, packets: Option<u64>, bytes: Option<u64>| {
        let mut m = BTreeMap::new();
        m.insert("src".to_string(), t.src.to_string());
        m.insert("dst".to_string(), t.dst.to_string());
        if let Some(p) = t.sport {
            m.insert("sport".into(), p.to_string());
        }
        if let Some(p) = t.dport {
            m.insert("dport".into(), p.to_string());
        }
        if let Some(i) = t.icmp {
            m.insert("type".into(), i.kind.to_string());
            m.insert("code".into(), i.code.to_string());
            m.insert("id".into(), i.id.to_string());
        }
        if let Some(p) = packets {
            m.insert("packets".into(), p.to_string());
        }
        if let Some(b) = bytes {
            m.insert("bytes".into(), b.to_string());
        }
        m
    };
    let r = Row {
        family: match e.family {
            Family::V4 => "ipv4".into(),
            Family::V6 => "ipv6".into(),
        },
        proto: e.proto.0,
        state: e.state.as_ref().map(|s| s.name().to_string()),
        orig: tuple(&e.orig, e.orig_packets, e.orig_bytes),
        reply: tuple(&e.reply, e.reply_packets, e.reply_bytes),
        assured: e.status.has(Status::ASSURED),
        unreplied: !e.status.has(Status::SEEN_REPLY),
        mark: e.mark,
        zone: e.zone,
        use_count: e.use_count.unwrap_or(0),
        id: e.id,
    };
    (r, e.timeout)
}

/// Both families. Newer conntrack-tools list every family without `-f`, older ones IPv4 only:
/// both are asked, and an entry seen twice (same kernel id) counts once.
pub fn conntrack_list(ns: &NetNs) -> Vec<(Row, u32)> {
    let mut all = parse_conntrack(&ns.exec_ok(&["conntrack", "-L", "-o", "extended,id"]));
    all.extend(parse_conntrack(&ns.exec_ok(&[
        "conntrack",
        "-L",
        "-f",
        "ipv6",
        "-o",
        "extended,id",
    ])));
    let mut seen = BTreeSet::new();
    all.retain(|(r, _)| seen.insert(r.id));
    all
}

/// Rows sorted by id (ids are unique), timeouts beside them.
pub fn by_id(mut rows: Vec<(Row, u32)>) -> Vec<(Row, u32)> {
    rows.sort_by_key(|(r, _)| r.id);
    rows
}

/// A namespace as [`tracked_ns`] makes it, with [`make_traffic`]'s connections held open.
pub fn busy_ns(test: &str) -> Option<(NetNs, Held)> {
    let ns = tracked_ns(test)?;
    let held = make_traffic(&ns);
    Some((ns, held))
}

/// One TCP connection to 127.0.0.1:`port` inside the namespace, a few bytes each way, kept open
/// (with its listener) until the result is dropped.
pub fn tcp_connection(ns: &NetNs, port: u16) -> Held {
    in_ns(ns, move || {
        let mut held = Held {
            _tcp: vec![],
            _udp: vec![],
            _listen: vec![],
        };
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        tcp_pair(&l, &format!("127.0.0.1:{port}"), true, &mut held);
        held._listen.push(l);
        held
    })
}

/// Two listings of the same table are equal row by row (matched by kernel id), timeouts within
/// two seconds of each other (they were read at slightly different times).
pub fn assert_same_rows(ours: Vec<(Row, u32)>, theirs: Vec<(Row, u32)>, what: &str) {
    let (ours, theirs) = (by_id(ours), by_id(theirs));
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{what}: {ours:#?}\nconntrack -L: {theirs:#?}"
    );
    for ((a, ta), (b, tb)) in ours.iter().zip(&theirs) {
        assert_eq!(a, b, "{what} vs conntrack -L");
        assert!(
            ta.abs_diff(*tb) <= 2,
            "timeouts {ta} vs {tb} differ by more than 2 s for {a:?}"
        );
    }
}

/// Wait (up to 3 s) until `conntrack -L` in the namespace reads the same twice in a row,
/// timeouts left out: the kernel has handled the last packets of the world just made.
pub fn settle(ns: &NetNs) {
    let read = || {
        let out = ns.exec(&["conntrack", "-L"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines: Vec<String> = text
            .lines()
            .map(|l| {
                l.split_whitespace()
                    .filter(|w| w.parse::<u64>().is_err())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        lines.sort();
        lines
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut last = read();
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let now = read();
        if now == last {
            return;
        }
        last = now;
    }
}
