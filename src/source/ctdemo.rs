//! The demo world's conntrack table: connections that open, move through TCP's states, close,
//! time out and die, consistent with the demo rule set (a gateway gw01 between lan0 10.0.0.0/24
//! and wan0 203.0.113.2: LAN clients masqueraded to the internet, port forwards 2222 -> 10.0.0.10:22
//! and 8080 -> 10.0.0.20:80, DNS and NTP on the gateway, pings, some IPv6). Deterministic: the
//! same steps give the same events, which keeps screen tests stable.

use crate::conntrack::{CtEvent, CtEventKind, Entry, Icmp, Proto, State, Status, TcpState, Tuple};
use crate::ruleset::Family;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::demo::Rng;

/// What a connection does next.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Waiting for the reply (SYN_SENT, or UDP/ICMP unreplied).
    Opening { secs_left: f64 },
    /// Carrying traffic for a while.
    Open { secs_left: f64, pps: f64 },
    /// Closing down (FIN_WAIT, LAST_ACK...).
    Closing { secs_left: f64 },
    /// TIME_WAIT or an idle UDP flow: only the timeout runs.
    Expiring,
}

#[derive(Debug, Clone)]
struct Conn {
    entry: Entry,
    phase: Phase,
    /// Fractional seconds of timeout left (the entry shows whole seconds).
    timeout: f64,
    /// Typical packets per second of this kind of connection.
    rate: f64,
}

/// The gateway's addresses.
const WAN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
const LAN_GW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The LAN's IPv6 network, as the demo's rules and addresses have it: 2001:db8:10::/64.
const V6_PREFIX: [u16; 4] = [0x2001, 0x0db8, 0x10, 0];

pub struct CtDemo {
    conns: Vec<Conn>,
    rng: Rng,
    next_id: u32,
    next_port: u16,
    /// Seconds since the demo began, for timestamps.
    now_ns: u64,
}

impl Default for CtDemo {
    fn default() -> Self {
        Self::new()
    }
}

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn tuple(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Tuple {
    Tuple {
        src,
        dst,
        sport: Some(sport),
        dport: Some(dport),
        icmp: None,
    }
}

impl CtDemo {
    /// A world already busy: a few hundred connections in every state.
    pub fn new() -> Self {
        let mut d = CtDemo {
            conns: Vec::new(),
            rng: Rng(0x5DEE_CE66_D1CE_4E5B),
            next_id: 3_000_000_000,
            next_port: 33000,
            now_ns: 1_790_000_000_000_000_000,
        };
        for _ in 0..420 {
            d.spawn();
            // Spread them over their lives.
            let age = d.rng.below(150);
            if let Some(i) = d.conns.len().checked_sub(1) {
                for _ in 0..age {
                    d.age_conn(i, 1.0);
                }
                // It started as long ago as it has lived.
                let started = d.now_ns - age * 1_000_000_000;
                d.conns[i].entry.start_ns = Some(started);
            }
        }
        d.conns.retain(|c| c.timeout > 0.0);
        d
    }

    /// The same world, its clock set to `now`: start and stop times move with it, so that ages
    /// measured against the wall clock come out right.
    pub fn with_clock(mut self, now: SystemTime) -> Self {
        let to = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let shift = |t: u64| {
            if to >= self.now_ns {
                t.saturating_add(to - self.now_ns)
            } else {
                t.saturating_sub(self.now_ns - to)
            }
        };
        for c in &mut self.conns {
            c.entry.start_ns = c.entry.start_ns.map(shift);
        }
        self.now_ns = to;
        self
    }

    /// Every entry as a dump would show it.
    pub fn entries(&self) -> Vec<Entry> {
        self.conns.iter().map(|c| c.entry.clone()).collect()
    }

    pub fn count(&self) -> usize {
        self.conns.len()
    }

    /// Delete the entries `pick` chooses, as `conntrack -D` would; returns them.
    pub fn remove(&mut self, mut pick: impl FnMut(&Entry) -> bool) -> Vec<Entry> {
        let mut gone = Vec::new();
        self.conns.retain(|c| {
            let keep = !pick(&c.entry);
            if !keep {
                gone.push(c.entry.clone());
            }
            keep
        });
        gone
    }

    fn port(&mut self) -> u16 {
        self.next_port = if self.next_port >= 60999 {
            32768
        } else {
            self.next_port + 1
        };
        self.next_port
    }

    fn lan_host(&mut self) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, 50 + self.rng.below(60) as u8)
    }

    fn internet_host(&mut self) -> Ipv4Addr {
        let pool = [
            [93, 184, 216, 34],
            [151, 101, 1, 69],
            [140, 82, 121, 4],
            [104, 16, 132, 229],
            [172, 217, 16, 142],
            [185, 199, 108, 153],
            [198, 51, 100, 23],
            [192, 0, 2, 77],
        ];
        Ipv4Addr::from(pool[self.rng.below(pool.len() as u64) as usize])
    }

    /// Start one new connection of a plausible kind.
    fn spawn(&mut self) {
        self.next_id = self.next_id.wrapping_add(1 + self.rng.below(7) as u32);
        let id = self.next_id;
        let roll = self.rng.below(100);
        let sport = self.port();
        let (family, proto, orig, reply, pps) = match roll {
            // LAN client to the web, masqueraded.
            0..=39 => {
                let c = v4(self.lan_host());
                let s = v4(self.internet_host());
                let dport = if self.rng.chance(0.8) { 443 } else { 80 };
                let nat_port = self.port();
                (
                    Family::V4,
                    Proto::TCP,
                    tuple(c, sport, s, dport),
                    tuple(s, dport, v4(WAN), nat_port),
                    5.0 + self.rng.below(200) as f64,
                )
            }
            // DNS from the LAN to the gateway.
            40..=59 => {
                let c = v4(self.lan_host());
                (
                    Family::V4,
                    Proto::UDP,
                    tuple(c, sport, v4(LAN_GW), 53),
                    tuple(v4(LAN_GW), 53, c, sport),
                    0.5,
                )
            }
            // Someone from the internet on the ssh port forward (DNAT).
            60..=64 => {
                let r = v4(self.internet_host());
                let inner = v4(Ipv4Addr::new(10, 0, 0, 10));
                (
                    Family::V4,
                    Proto::TCP,
                    tuple(r, sport, v4(WAN), 2222),
                    tuple(inner, 22, r, sport),
                    2.0,
                )
            }
            // The web port forward (DNAT).
            65..=72 => {
                let r = v4(self.internet_host());
                let inner = v4(Ipv4Addr::new(10, 0, 0, 20));
                (
                    Family::V4,
                    Proto::TCP,
                    tuple(r, sport, v4(WAN), 8080),
                    tuple(inner, 80, r, sport),
                    15.0,
                )
            }
            // NTP, masqueraded.
            73..=77 => {
                let c = v4(self.lan_host());
                let s = v4(self.internet_host());
                let nat_port = self.port();
                (
                    Family::V4,
                    Proto::UDP,
                    tuple(c, 123, s, 123),
                    tuple(s, 123, v4(WAN), nat_port),
                    0.1,
                )
            }
            // Pings.
            78..=84 => {
                let c = v4(self.lan_host());
                let s = v4(self.internet_host());
                let icmp_id = sport;
                let orig = Tuple {
                    src: c,
                    dst: s,
                    sport: None,
                    dport: None,
                    icmp: Some(Icmp {
                        kind: 8,
                        code: 0,
                        id: icmp_id,
                    }),
                };
                let reply = Tuple {
                    src: s,
                    dst: v4(WAN),
                    sport: None,
                    dport: None,
                    icmp: Some(Icmp {
                        kind: 0,
                        code: 0,
                        id: icmp_id,
                    }),
                };
                (Family::V4, Proto::ICMP, orig, reply, 1.0)
            }
            // IPv6 clients, routed (no NAT).
            _ => {
                let host = 0x100 + self.rng.below(40) as u16;
                let c = IpAddr::V6(Ipv6Addr::new(
                    V6_PREFIX[0],
                    V6_PREFIX[1],
                    V6_PREFIX[2],
                    V6_PREFIX[3],
                    0,
                    0,
                    0,
                    host,
                ));
                let s = IpAddr::V6(Ipv6Addr::new(0x2606, 0x4700, 0, 0, 0, 0, 0x6810, 0x84e5));
                let dport = if self.rng.chance(0.7) { 443 } else { 22 };
                (
                    Family::V6,
                    Proto::TCP,
                    tuple(c, sport, s, dport),
                    tuple(s, dport, c, sport),
                    20.0,
                )
            }
        };
        let mut entry = Entry::new(family, proto, orig, reply);
        entry.id = id;
        entry.status = Status(1 << 3); // CONFIRMED
        if reply.src != orig.dst || reply.sport != orig.dport {
            entry.status.0 |= Status::DST_NAT;
        }
        if reply.dst != orig.src || reply.dport != orig.sport {
            entry.status.0 |= Status::SRC_NAT;
        }
        entry.use_count = Some(1);
        entry.orig_packets = Some(1);
        entry.orig_bytes = Some(60);
        entry.reply_packets = Some(0);
        entry.reply_bytes = Some(0);
        entry.start_ns = Some(self.now_ns);
        if orig.dport == Some(5060) || orig.src == v4(Ipv4Addr::new(10, 0, 0, 40)) {
            entry.mark = 0x10;
        }
        let timeout = if proto == Proto::TCP {
            entry.state = Some(State::Tcp(TcpState::SynSent));
            120.0
        } else {
            30.0
        };
        entry.timeout = timeout as u32;
        let opening = 0.05 + self.rng.below(400) as f64 / 1000.0;
        // A few never hear back: scans, dead servers.
        let opening = if self.rng.chance(0.05) { 1e9 } else { opening };
        self.conns.push(Conn {
            entry,
            phase: Phase::Opening { secs_left: opening },
            timeout,
            rate: pps,
        });
    }

    /// Advance one connection by `secs`, returning whether something visible changed.
    fn age_conn(&mut self, i: usize, secs: f64) -> bool {
        let mut changed = false;
        let rng_pps = self.conns[i].rate * (0.5 + self.rng.below(100) as f64 / 100.0);
        let tcp = self.conns[i].entry.proto == Proto::TCP;
        // TCP sessions last a while; a DNS query or a ping is over in a moment.
        let life = if tcp {
            2.0 + self.rng.below(90) as f64
        } else {
            self.rng.below(4) as f64
        };
        let c = &mut self.conns[i];
        c.timeout -= secs;
        match c.phase {
            Phase::Opening { secs_left } if secs >= secs_left => {
                c.entry.status.0 |= Status::SEEN_REPLY;
                c.entry.reply_packets = Some(1);
                c.entry.reply_bytes = Some(60);
                if tcp {
                    c.entry.state = Some(State::Tcp(TcpState::Established));
                    c.entry.status.0 |= Status::ASSURED;
                    c.timeout = 432_000.0;
                } else {
                    // Until a flow is assured, the kernel gives UDP and ICMP 30 seconds.
                    c.timeout = 30.0;
                }
                c.phase = Phase::Open {
                    secs_left: life,
                    pps: rng_pps,
                };
                changed = true;
            }
            Phase::Opening { secs_left } => {
                c.phase = Phase::Opening {
                    secs_left: secs_left - secs,
                };
            }
            Phase::Open { secs_left, pps } => {
                let pkts = (pps * secs).round() as u64;
                if pkts > 0 {
                    let add = |v: &mut Option<u64>, n: u64| *v = Some(v.unwrap_or(0) + n);
                    add(&mut c.entry.orig_packets, pkts);
                    add(&mut c.entry.orig_bytes, pkts * 80);
                    add(&mut c.entry.reply_packets, pkts);
                    add(&mut c.entry.reply_bytes, pkts * 1100);
                    if tcp {
                        c.timeout = 432_000.0;
                    } else {
                        c.timeout = 120.0;
                        if !c.entry.status.has(Status::ASSURED) {
                            c.entry.status.0 |= Status::ASSURED;
                            changed = true;
                        }
                    }
                }
                if secs >= secs_left {
                    if tcp {
                        c.entry.state = Some(State::Tcp(TcpState::FinWait));
                        c.timeout = 120.0;
                        c.phase = Phase::Closing { secs_left: 0.2 };
                    } else {
                        c.phase = Phase::Expiring;
                    }
                    changed = true;
                } else {
                    c.phase = Phase::Open {
                        secs_left: secs_left - secs,
                        pps,
                    };
                }
            }
            Phase::Closing { secs_left } if secs >= secs_left => {
                c.entry.state = Some(State::Tcp(TcpState::TimeWait));
                c.timeout = 120.0;
                c.phase = Phase::Expiring;
                changed = true;
            }
            Phase::Closing { secs_left } => {
                c.phase = Phase::Closing {
                    secs_left: secs_left - secs,
                };
            }
            Phase::Expiring => {}
        }
        let shown = c.timeout.max(0.0).ceil() as u32;
        if shown != c.entry.timeout {
            c.entry.timeout = shown;
        }
        changed
    }

    /// Let `dt` pass: new connections, state changes, deaths. Returns the events in order.
    /// Timeouts count down without events, as in the kernel (a dump shows them).
    pub fn step(&mut self, dt: Duration) -> Vec<CtEvent> {
        let secs = dt.as_secs_f64();
        self.now_ns += dt.as_nanos() as u64;
        let mut events = Vec::new();
        for i in 0..self.conns.len() {
            if self.age_conn(i, secs) {
                events.push(CtEvent {
                    kind: CtEventKind::Update,
                    entry: self.conns[i].entry.clone(),
                });
            }
        }
        let now = self.now_ns;
        self.conns.retain_mut(|c| {
            if c.timeout > 0.0 {
                true
            } else {
                c.entry.with_extra(|x| x.stop_ns = Some(now));
                events.push(CtEvent {
                    kind: CtEventKind::Destroy,
                    entry: c.entry.clone(),
                });
                false
            }
        });
        // About four new connections a second, keeping the table around its starting size.
        let target = 420usize;
        let base = 4.0 * secs * if self.conns.len() < target { 1.3 } else { 0.8 };
        let n = base.floor() as usize + usize::from(self.rng.chance(base.fract()));
        for _ in 0..n {
            self.spawn();
            if let Some(c) = self.conns.last() {
                events.push(CtEvent {
                    kind: CtEventKind::New,
                    entry: c.entry.clone(),
                });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_lives() {
        let mut d = CtDemo::new();
        let start = d.count();
        assert!(start > 200, "{start}");
        let states = |d: &CtDemo| {
            let mut s: Vec<String> = d
                .entries()
                .iter()
                .filter_map(|e| e.state.as_ref().map(|s| s.name().to_string()))
                .collect();
            s.sort();
            s.dedup();
            s
        };
        let s = states(&d);
        for want in ["ESTABLISHED", "TIME_WAIT", "SYN_SENT"] {
            assert!(s.iter().any(|x| x == want), "no {want} in {s:?}");
        }
        let mut news = 0;
        let mut destroys = 0;
        let mut updates = 0;
        for _ in 0..60 {
            for e in d.step(Duration::from_secs(1)) {
                match e.kind {
                    CtEventKind::New => news += 1,
                    CtEventKind::Update => updates += 1,
                    CtEventKind::Destroy => destroys += 1,
                }
            }
        }
        assert!(
            news > 150 && destroys > 100 && updates > 150,
            "{news} {updates} {destroys}"
        );
        let n = d.count();
        assert!(n > 200 && n < 2000, "the table stays around its size: {n}");
        assert!(d.entries().iter().any(|e| e.is_dnat()));
        assert!(d.entries().iter().any(|e| e.is_snat()));
        assert!(d.entries().iter().any(|e| e.family == Family::V6));
    }

    #[test]
    fn start_times_follow_the_clock() {
        let now = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let d = CtDemo::new().with_clock(now);
        let now_ns = 2_000_000_000 * 1_000_000_000u64;
        let ages: Vec<u64> = d
            .entries()
            .iter()
            .map(|e| now_ns - e.start_ns.expect("the demo keeps timestamps"))
            .collect();
        assert!(ages.iter().all(|&a| a < 150 * 1_000_000_000));
        assert!(
            ages.iter().any(|&a| a > 60 * 1_000_000_000),
            "spread over their lives"
        );
    }

    #[test]
    fn deterministic() {
        let run = || {
            let mut d = CtDemo::new();
            d.step(Duration::from_secs(3));
            d.entries()
        };
        assert_eq!(run(), run());
    }
}
