//! The conntrack filter language (docs/conntrack-filter.md): space-separated terms that must all
//! hold, each `key=value`, `key!=value`, `key<value` (and `<=`, `>`, `>=` for numbers), `flag` or
//! `!flag`; `!key=value` is `key!=value`. A value may be a comma-separated list, any of which
//! matches: `proto=tcp,udp dport=22,80,443 src=10.0.0.0/8 !assured`.
//!
//! An expression is parsed once into a [`Filter`]; [`Filter::matches`] then runs over every entry
//! on every keystroke (250,000 of them on a busy gateway), so it allocates nothing and compares
//! numbers, not text, wherever it can. Errors are sentences naming the term and its column.

use super::{Entry, Proto, Status, Tuple};
use crate::ruleset::Family;
use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use thiserror::Error;

/// A bad expression: the sentence to show, and where the bad part is (1-based column and length
/// in characters, for underlining it).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct FilterError {
    pub column: usize,
    pub len: usize,
    pub message: String,
}

/// A parsed expression. The empty expression matches every entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    source: String,
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq)]
struct Term {
    negate: bool,
    /// Alternatives from a comma list: the term holds when any of them does.
    any: Vec<Pred>,
}

/// Which address or port of an entry a term looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    /// The original tuple's source.
    Src,
    /// The original tuple's destination.
    Dst,
    /// The reply tuple's source.
    ReplySrc,
    /// The reply tuple's destination.
    ReplyDst,
    /// Any of the four.
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds(self, a: u64, b: u64) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumKey {
    Timeout,
    Zone,
    Id,
    Packets,
    Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    /// A status bit is set.
    Bit(u32),
    Unreplied,
    Dnat,
    Snat,
    Nat,
    Accounted,
}

#[derive(Debug, Clone, PartialEq)]
enum Pred {
    Proto(Proto),
    /// The state column: the protocol's own state, or the user-land one where it has none.
    State(Box<str>),
    CtState(&'static str),
    Addr(Which, IpNet),
    /// An inclusive port range.
    Port(Which, u16, u16),
    /// `(mark & mask) == value`, as iptables' connmark match.
    Mark(u32, u32),
    Family(Family),
    Num(NumKey, Cmp, u64),
    Helper(Box<str>),
    Flag(Flag),
}

fn tuple_addr(t: &Tuple, src: bool) -> IpAddr {
    if src { t.src } else { t.dst }
}

impl Pred {
    #[inline]
    fn holds(&self, e: &Entry) -> bool {
        match self {
            Pred::Proto(p) => e.proto == *p,
            Pred::State(s) => e.state_label().eq_ignore_ascii_case(s),
            Pred::CtState(s) => e.ctstate() == *s,
            Pred::Addr(w, net) => match w {
                Which::Src => net.contains(&e.orig.src),
                Which::Dst => net.contains(&e.orig.dst),
                Which::ReplySrc => net.contains(&e.reply.src),
                Which::ReplyDst => net.contains(&e.reply.dst),
                Which::Any => [
                    (&e.orig, true),
                    (&e.orig, false),
                    (&e.reply, true),
                    (&e.reply, false),
                ]
                .iter()
                .any(|(t, s)| net.contains(&tuple_addr(t, *s))),
            },
            Pred::Port(w, lo, hi) => {
                let inr = |p: Option<u16>| p.is_some_and(|p| (*lo..=*hi).contains(&p));
                match w {
                    Which::Src => inr(e.orig.sport),
                    Which::Dst => inr(e.orig.dport),
                    Which::ReplySrc => inr(e.reply.sport),
                    Which::ReplyDst => inr(e.reply.dport),
                    Which::Any => {
                        inr(e.orig.sport)
                            || inr(e.orig.dport)
                            || inr(e.reply.sport)
                            || inr(e.reply.dport)
                    }
                }
            }
            Pred::Mark(v, m) => e.mark & m == *v,
            Pred::Family(f) => e.family == *f,
            Pred::Num(k, c, n) => {
                let v = match k {
                    NumKey::Timeout => Some(u64::from(e.timeout)),
                    NumKey::Zone => Some(u64::from(e.zone)),
                    NumKey::Id => Some(u64::from(e.id)),
                    NumKey::Packets => e.packets(),
                    NumKey::Bytes => e.bytes(),
                };
                v.is_some_and(|v| c.holds(v, *n))
            }
            Pred::Helper(h) => e.helper().is_some_and(|x| x.eq_ignore_ascii_case(h)),
            Pred::Flag(f) => match f {
                Flag::Bit(b) => e.status.has(*b),
                Flag::Unreplied => !e.status.has(Status::SEEN_REPLY),
                Flag::Dnat => e.is_dnat(),
                Flag::Snat => e.is_snat(),
                Flag::Nat => e.is_dnat() || e.is_snat(),
                Flag::Accounted => e.orig_packets.is_some(),
            },
        }
    }
}

/// What kind of value a key takes, which decides its operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Proto,
    State,
    CtState,
    Addr(Which),
    Port(Which),
    Mark,
    Family,
    Num(NumKey),
    Helper,
}

/// Every key, with what it takes.
const KEYS: &[(&str, Kind)] = &[
    ("proto", Kind::Proto),
    ("state", Kind::State),
    ("ctstate", Kind::CtState),
    ("src", Kind::Addr(Which::Src)),
    ("dst", Kind::Addr(Which::Dst)),
    ("rsrc", Kind::Addr(Which::ReplySrc)),
    ("rdst", Kind::Addr(Which::ReplyDst)),
    ("addr", Kind::Addr(Which::Any)),
    ("sport", Kind::Port(Which::Src)),
    ("dport", Kind::Port(Which::Dst)),
    ("rsport", Kind::Port(Which::ReplySrc)),
    ("rdport", Kind::Port(Which::ReplyDst)),
    ("port", Kind::Port(Which::Any)),
    ("mark", Kind::Mark),
    ("family", Kind::Family),
    ("zone", Kind::Num(NumKey::Zone)),
    ("timeout", Kind::Num(NumKey::Timeout)),
    ("id", Kind::Num(NumKey::Id)),
    ("packets", Kind::Num(NumKey::Packets)),
    ("bytes", Kind::Num(NumKey::Bytes)),
    ("helper", Kind::Helper),
];

/// Flags beyond the status bits (which are flags by their lower-case names: `assured`,
/// `seen_reply`, `dying`, `confirmed`, `expected`, `offload`...).
const FLAGS: &[(&str, Flag)] = &[
    ("unreplied", Flag::Unreplied),
    ("dnat", Flag::Dnat),
    ("snat", Flag::Snat),
    ("nat", Flag::Nat),
    ("accounted", Flag::Accounted),
];

/// The states `state=` accepts: TCP's (and the old `LISTEN`), SCTP's, DCCP's, and the user-land
/// ones shown for protocols without a state of their own.
const STATE_NAMES: &[&str] = &[
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
    "LISTEN",
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
    "HEARTBEAT_SENT",
    "HEARTBEAT_ACKED",
    "REQUEST",
    "RESPOND",
    "PARTOPEN",
    "OPEN",
    "CLOSEREQ",
    "CLOSING",
    "TIMEWAIT",
    "IGNORE",
    "NEW",
    "RELATED",
    "UNTRACKED",
];

const CTSTATES: &[&str] = &["NEW", "ESTABLISHED", "RELATED", "UNTRACKED"];

impl Filter {
    /// Parse an expression. Keys, flags, protocol and state names are case-insensitive.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        let mut terms = Vec::new();
        for (start, word) in words(expr) {
            terms.push(parse_term(expr, start, word)?);
        }
        Ok(Filter {
            source: expr.trim().to_string(),
            terms,
        })
    }

    /// Whether the entry passes every term.
    #[inline]
    pub fn matches(&self, e: &Entry) -> bool {
        self.terms
            .iter()
            .all(|t| t.any.iter().any(|p| p.holds(e)) != t.negate)
    }

    /// The expression as given (trimmed).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True for the empty expression, which matches everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether the filter pins down particular connections: some term, not negated, whose
    /// every alternative names an address (not /0), a port, an entry id or a mark. `proto=tcp`
    /// or `state=ESTABLISHED` alone select a large part of the table (an SSH session included),
    /// so deleting by them asks for `--all`.
    pub fn narrows(&self) -> bool {
        self.terms.iter().any(|t| {
            !t.negate
                && !t.any.is_empty()
                && t.any.iter().all(|p| match p {
                    Pred::Addr(_, net) => net.prefix_len() > 0,
                    Pred::Port(..) | Pred::Mark(..) => true,
                    Pred::Num(NumKey::Id, Cmp::Eq, _) => true,
                    _ => false,
                })
        })
    }
}

impl FromStr for Filter {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Filter, FilterError> {
        Filter::parse(s)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The words of an expression with their byte offsets.
fn words(expr: &str) -> impl Iterator<Item = (usize, &str)> {
    expr.split_ascii_whitespace()
        .map(move |w| (w.as_ptr() as usize - expr.as_ptr() as usize, w))
}

/// 1-based column, in characters, of a byte offset.
fn column(expr: &str, byte: usize) -> usize {
    expr[..byte].chars().count() + 1
}

fn fail<T>(expr: &str, byte: usize, part: &str, message: String) -> Result<T, FilterError> {
    Err(FilterError {
        column: column(expr, byte),
        len: part.chars().count().max(1),
        message,
    })
}

fn parse_term(expr: &str, start: usize, word: &str) -> Result<Term, FilterError> {
    let col = column(expr, start);
    let (mut negate, body, body_at) = match word.strip_prefix('!') {
        Some(rest) => (true, rest, start + 1),
        None => (false, word, start),
    };
    let key_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(body.len());
    let (key, rest) = body.split_at(key_len);
    if key.is_empty() {
        return fail(
            expr,
            start,
            word,
            format!("{word:?} at column {col} does not start with a key or a flag name"),
        );
    }
    let lkey = key.to_ascii_lowercase();
    let (op, value) = if rest.is_empty() {
        (None, "")
    } else {
        let ops = ["!=", "<=", ">=", "=", "<", ">"];
        match ops.iter().find(|o| rest.starts_with(**o)) {
            Some(o) => (Some(*o), &rest[o.len()..]),
            None => {
                return fail(
                    expr,
                    body_at + key_len,
                    rest,
                    format!(
                        "{rest:?} after {key:?} at column {} is not an operator (=, !=, <, <=, >, >=)",
                        column(expr, body_at + key_len)
                    ),
                );
            }
        }
    };
    let kind = KEYS.iter().find(|(k, _)| *k == lkey).map(|(_, kind)| *kind);
    let flag = FLAGS
        .iter()
        .find(|(k, _)| *k == lkey)
        .map(|(_, f)| *f)
        .or_else(|| Status::bit(&lkey).map(Flag::Bit));

    let Some(op) = op else {
        if let Some(f) = flag {
            return Ok(Term {
                negate,
                any: vec![Pred::Flag(f)],
            });
        }
        if kind.is_some() {
            return fail(
                expr,
                start,
                word,
                format!(
                    "{key:?} at column {col} needs a value, e.g. {}",
                    example(&lkey)
                ),
            );
        }
        return fail(expr, body_at, key, unknown(key, column(expr, body_at)));
    };
    let Some(kind) = kind else {
        if flag.is_some() {
            return fail(
                expr,
                start,
                word,
                format!(
                    "{key:?} at column {col} is a flag: write {lkey} or !{lkey}, without a value"
                ),
            );
        }
        return fail(expr, body_at, key, unknown(key, column(expr, body_at)));
    };
    let value_at = body_at + key_len + op.len();
    if value.is_empty() {
        return fail(
            expr,
            start,
            word,
            format!(
                "{word:?} at column {col} has no value after {op}, e.g. {}",
                example(&lkey)
            ),
        );
    }
    let cmp = match op {
        "=" => Cmp::Eq,
        "!=" => {
            negate = !negate;
            Cmp::Eq
        }
        "<" => Cmp::Lt,
        "<=" => Cmp::Le,
        ">" => Cmp::Gt,
        _ => Cmp::Ge,
    };
    let ordered = !matches!(kind, Kind::Num(_) | Kind::Port(_));
    if cmp != Cmp::Eq && ordered {
        return fail(
            expr,
            body_at + key_len,
            op,
            format!(
                "{op} at column {} does not go with {key}, which takes = or !=: only numbers \
                 and ports compare",
                column(expr, body_at + key_len)
            ),
        );
    }
    if cmp != Cmp::Eq && value.contains(',') {
        return fail(
            expr,
            value_at,
            value,
            format!(
                "a list of values at column {} needs = or !=, not {op}",
                column(expr, value_at)
            ),
        );
    }
    let mut any = Vec::new();
    let mut at = value_at;
    for v in value.split(',') {
        let vcol = column(expr, at);
        let bad = |why: String| fail(expr, at, v, why);
        if v.is_empty() {
            // Point at the stray comma: the one before, or for a leading comma the one here.
            let comma = if at > value_at { at - 1 } else { at };
            let ccol = column(expr, comma);
            return fail(
                expr,
                comma,
                ",",
                format!("a stray comma at column {ccol} leaves an empty value in the list"),
            );
        }
        any.push(match parse_value(kind, cmp, v, vcol) {
            Ok(p) => p,
            Err(why) => return bad(why),
        });
        at += v.len() + 1;
    }
    Ok(Term { negate, any })
}

fn parse_value(kind: Kind, cmp: Cmp, v: &str, col: usize) -> Result<Pred, String> {
    Ok(match kind {
        Kind::Proto => Pred::Proto(Proto::parse(v).ok_or_else(|| {
            format!(
                "{v:?} at column {col} is not a protocol: use a name (tcp, udp, icmp, icmpv6, \
                 sctp, dccp, gre, udplite) or a number from 0 to 255"
            )
        })?),
        Kind::State => {
            let up = v.to_ascii_uppercase();
            if !STATE_NAMES.contains(&up.as_str()) {
                return Err(format!(
                    "{v:?} at column {col} is not a connection state{}",
                    suggest(&up, STATE_NAMES.iter().copied())
                        .map(|s| format!(" (did you mean {s:?}?)"))
                        .unwrap_or_else(|| " (e.g. ESTABLISHED, TIME_WAIT, SYN_SENT, NEW)".into())
                ));
            }
            Pred::State(up.into_boxed_str())
        }
        Kind::CtState => {
            let up = v.to_ascii_uppercase();
            if up == "INVALID" {
                return Err(format!(
                    "INVALID at column {col} never matches: invalid packets have no entry in the table"
                ));
            }
            let s = CTSTATES.iter().find(|s| **s == up).ok_or_else(|| {
                format!(
                    "{v:?} at column {col} is not a user-land state (NEW, ESTABLISHED, RELATED, UNTRACKED)"
                )
            })?;
            Pred::CtState(s)
        }
        Kind::Addr(w) => {
            let net = if v.contains('/') {
                v.parse::<IpNet>().map_err(|_| {
                    format!(
                        "{v:?} at column {col} is not an address block (like 10.0.0.0/8 or 2001:db8::/32)"
                    )
                })?
            } else {
                IpNet::from(v.parse::<IpAddr>().map_err(|_| {
                    format!(
                        "{v:?} at column {col} is not an IPv4 or IPv6 address (add /len for a block)"
                    )
                })?)
            };
            Pred::Addr(w, net)
        }
        Kind::Port(w) => {
            let port = |s: &str| {
                s.parse::<u16>().map_err(|_| {
                    format!("{s:?} at column {col} is not a port number from 0 to 65535")
                })
            };
            let (lo, hi) = if cmp == Cmp::Eq {
                match v.split_once(['-', ':']) {
                    Some((a, b)) => {
                        let (a, b) = (port(a)?, port(b)?);
                        if a > b {
                            return Err(format!(
                                "the port range {v} at column {col} runs backwards; write {b}-{a}"
                            ));
                        }
                        (a, b)
                    }
                    None => (port(v)?, port(v)?),
                }
            } else {
                let p = port(v)?;
                let empty = || format!("no port is {} {p} (at column {col})", cmp_words(cmp));
                match cmp {
                    Cmp::Lt => (0, p.checked_sub(1).ok_or_else(empty)?),
                    Cmp::Le => (0, p),
                    Cmp::Gt => (p.checked_add(1).ok_or_else(empty)?, u16::MAX),
                    _ => (p, u16::MAX),
                }
            };
            Pred::Port(w, lo, hi)
        }
        Kind::Mark => {
            let (val, mask) = match v.split_once('/') {
                Some((a, m)) => (mark_num(a, col)?, mark_num(m, col)?),
                None => (mark_num(v, col)?, u32::MAX),
            };
            Pred::Mark(val & mask, mask)
        }
        Kind::Family => Pred::Family(match v.to_ascii_lowercase().as_str() {
            "ipv4" | "4" | "inet" => Family::V4,
            "ipv6" | "6" | "inet6" => Family::V6,
            _ => {
                return Err(format!(
                    "{v:?} at column {col} is not a family (ipv4 or ipv6)"
                ));
            }
        }),
        Kind::Num(k) => {
            let n: u64 = parse_u64(v)
                .ok_or_else(|| format!("{v:?} at column {col} is not a whole number"))?;
            if k == NumKey::Zone && n > u64::from(u16::MAX) {
                return Err(format!(
                    "zone {n} at column {col} is above the largest zone, 65535"
                ));
            }
            Pred::Num(k, cmp, n)
        }
        Kind::Helper => Pred::Helper(v.into()),
    })
}

fn cmp_words(c: Cmp) -> &'static str {
    match c {
        Cmp::Lt => "below",
        Cmp::Gt => "above",
        _ => "equal to",
    }
}

fn parse_u64(v: &str) -> Option<u64> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

fn mark_num(v: &str, col: usize) -> Result<u32, String> {
    parse_u64(v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            format!("{v:?} at column {col} is not a mark (a 32-bit number, decimal or 0x hex)")
        })
}

fn example(key: &str) -> &'static str {
    match key {
        "proto" => "proto=tcp",
        "state" => "state=ESTABLISHED",
        "ctstate" => "ctstate=NEW",
        "src" | "dst" | "rsrc" | "rdst" | "addr" => "src=10.0.0.0/8",
        "sport" | "dport" | "rsport" | "rdport" | "port" => "dport=22 or dport=1024-65535",
        "mark" => "mark=0x10/0xff",
        "family" => "family=ipv6",
        "timeout" => "timeout<60",
        "helper" => "helper=ftp",
        _ => "zone=0",
    }
}

fn unknown(key: &str, col: usize) -> String {
    let lkey = key.to_ascii_lowercase();
    let names = KEYS
        .iter()
        .map(|(k, _)| *k)
        .chain(FLAGS.iter().map(|(f, _)| *f))
        .chain(super::STATUS_FLAGS.iter().map(|(_, n)| *n));
    match suggest(&lkey, names) {
        Some(s) => format!(
            "unknown key {key:?} at column {col} (did you mean {:?}?)",
            s.to_ascii_lowercase()
        ),
        None => format!(
            "unknown key {key:?} at column {col}; see docs/conntrack-filter.md for the keys and flags"
        ),
    }
}

/// The closest candidate within a small edit distance, ignoring case.
fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    candidates
        .map(|c| (distance(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= 2.min(c.len() / 2).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn narrowing_filters_name_particular_connections() {
        let n = |e: &str| Filter::parse(e).expect("parses").narrows();
        for yes in [
            "dport=22",
            "src=10.0.0.7",
            "proto=tcp dst=192.0.2.0/24",
            "id=42",
            "mark=1",
        ] {
            assert!(n(yes), "{yes}");
        }
        for no in [
            "",
            "proto=tcp",
            "state=ESTABLISHED",
            "!src=10.0.0.7",
            "src=0.0.0.0/0",
            "!assured",
            "state=ESTABLISHED,TIME_WAIT",
        ] {
            assert!(!n(no), "{no}");
        }
    }

    use super::*;
    use crate::conntrack::tests::t;
    use crate::conntrack::{Icmp, State, TcpState};

    /// An established, assured SSH connection from 10.0.0.5 to 10.0.0.1.
    fn ssh() -> Entry {
        let mut e = Entry::new(
            Family::V4,
            Proto::TCP,
            t([10, 0, 0, 5], 40000, [10, 0, 0, 1], 22),
            t([10, 0, 0, 1], 22, [10, 0, 0, 5], 40000),
        );
        e.state = Some(State::Tcp(TcpState::Established));
        e.status = Status(Status::SEEN_REPLY | Status::ASSURED);
        e.timeout = 431_999;
        e.mark = 0x1234;
        e
    }

    /// A DNATed, unreplied UDP flow: 198.51.100.9 -> 203.0.113.1:53, served by 10.0.0.53.
    fn dns() -> Entry {
        let mut e = Entry::new(
            Family::V4,
            Proto::UDP,
            t([198, 51, 100, 9], 5353, [203, 0, 113, 1], 53),
            t([10, 0, 0, 53], 53, [198, 51, 100, 9], 5353),
        );
        e.timeout = 25;
        e.zone = 4;
        e.orig_packets = Some(3);
        e.orig_bytes = Some(200);
        e.reply_packets = Some(0);
        e.reply_bytes = Some(0);
        e
    }

    fn ping() -> Entry {
        let mut e = Entry::new(
            Family::V4,
            Proto::ICMP,
            t([10, 0, 0, 5], 0, [10, 0, 0, 1], 0),
            t([10, 0, 0, 1], 0, [10, 0, 0, 5], 0),
        );
        for tu in [&mut e.orig, &mut e.reply] {
            tu.sport = None;
            tu.dport = None;
            tu.icmp = Some(Icmp {
                kind: 8,
                code: 0,
                id: 1,
            });
        }
        e.status = Status(Status::SEEN_REPLY);
        e
    }

    fn hits(expr: &str) -> [bool; 3] {
        let f = Filter::parse(expr).unwrap_or_else(|e| panic!("{expr:?}: {e}"));
        [f.matches(&ssh()), f.matches(&dns()), f.matches(&ping())]
    }

    fn error(expr: &str) -> FilterError {
        Filter::parse(expr).expect_err(expr)
    }

    #[test]
    fn the_example_of_the_issue() {
        let f = "proto=tcp state=ESTABLISHED dport=22 src=10.0.0.0/8 !assured";
        assert_eq!(hits(f), [false, false, false]);
        assert_eq!(
            hits(&f.replace(" !assured", " assured")),
            [true, false, false]
        );
        assert_eq!(hits(""), [true, true, true]);
        assert!(Filter::parse("  ").unwrap().is_empty());
    }

    #[test]
    fn protocols_states_and_lists() {
        assert_eq!(hits("proto=tcp,udp"), [true, true, false]);
        assert_eq!(hits("proto!=tcp"), [false, true, true]);
        assert_eq!(hits("PROTO=ICMP"), [false, false, true]);
        assert_eq!(hits("proto=17"), [false, true, false]);
        assert_eq!(
            hits("state=established"),
            [true, false, true],
            "the state column"
        );
        assert_eq!(hits("state=NEW"), [false, true, false]);
        assert_eq!(hits("ctstate=ESTABLISHED"), [true, false, true]);
        assert_eq!(hits("!state=TIME_WAIT,SYN_SENT"), [true, true, true]);
    }

    #[test]
    fn addresses_in_either_tuple() {
        assert_eq!(hits("src=10.0.0.0/8"), [true, false, true]);
        assert_eq!(hits("dst=203.0.113.1"), [false, true, false]);
        assert_eq!(
            hits("addr=10.0.0.53"),
            [false, true, false],
            "the DNAT target"
        );
        assert_eq!(hits("rsrc=10.0.0.53"), [false, true, false]);
        assert_eq!(hits("src!=10.0.0.0/8"), [false, true, false]);
        assert_eq!(hits("src=2001:db8::/32"), [false, false, false]);
        assert_eq!(hits("addr=10.0.0.5,198.51.100.9"), [true, true, true]);
    }

    #[test]
    fn ports_and_ranges() {
        assert_eq!(hits("dport=22"), [true, false, false]);
        assert_eq!(hits("dport=1-1023"), [true, true, false]);
        assert_eq!(hits("sport=1024:65535"), [true, true, false]);
        assert_eq!(hits("dport<1024"), [true, true, false]);
        assert_eq!(hits("dport>=53"), [false, true, false]);
        assert_eq!(
            hits("port=22"),
            [true, false, false],
            "either tuple, either side"
        );
        assert_eq!(
            hits("!dport=22"),
            [false, true, true],
            "no port: not port 22"
        );
        assert_eq!(hits("rdport=5353"), [false, true, false]);
    }

    #[test]
    fn numbers_marks_zones_and_flags() {
        assert_eq!(hits("timeout<60"), [false, true, true]);
        assert_eq!(hits("timeout>=431999"), [true, false, false]);
        assert_eq!(hits("mark=0x1234"), [true, false, false]);
        assert_eq!(hits("mark=0x34/0xff"), [true, false, false]);
        assert_eq!(hits("mark=0"), [false, true, true]);
        assert_eq!(hits("zone=4"), [false, true, false]);
        assert_eq!(hits("packets>2 bytes<=200"), [false, true, false]);
        assert_eq!(hits("family=ipv4"), [true, true, true]);
        assert_eq!(hits("family=6"), [false, false, false]);
        assert_eq!(hits("assured"), [true, false, false]);
        assert_eq!(hits("unreplied"), [false, true, false]);
        assert_eq!(hits("seen_reply"), [true, false, true]);
        assert_eq!(hits("dnat"), [false, true, false]);
        assert_eq!(hits("!snat !dying"), [true, true, true]);
        assert_eq!(hits("accounted"), [false, true, false]);
    }

    #[test]
    fn errors_name_the_term_and_its_column() {
        let e = error("prot=tcp");
        assert_eq!(
            e.message,
            r#"unknown key "prot" at column 1 (did you mean "proto"?)"#
        );
        assert_eq!((e.column, e.len), (1, 4));
        let e = error("proto=tcp  dprt=22");
        assert_eq!(
            e.message,
            r#"unknown key "dprt" at column 12 (did you mean "dport"?)"#
        );
        let e = error("proto=tcp !asured");
        assert_eq!(e.column, 12);
        assert!(e.message.contains(r#"did you mean "assured""#), "{e}");
        let e = error("dport=22,x");
        assert_eq!((e.column, e.len), (10, 1));
        assert_eq!(error("dport=123456").len, 6);
        assert!(e.message.contains("not a port number"), "{e}");
        assert!(
            error("state=ESTABLISH")
                .message
                .contains("did you mean \"ESTABLISHED\"")
        );
        assert!(error("dport=99-1").message.contains("runs backwards"));
        assert!(
            error("src=10.0.0.0/33")
                .message
                .contains("not an address block")
        );
        assert_eq!(
            error("proto<6").message,
            "< at column 6 does not go with proto, which takes = or !=: only numbers and ports compare"
        );
        assert!(error("assured=1").message.contains("is a flag"));
        assert!(error("proto").message.contains("needs a value"));
        assert!(error("proto=").message.contains("has no value"));
        assert!(error("ctstate=INVALID").message.contains("never matches"));
        assert!(
            error("dport>65535")
                .message
                .contains("no port is above 65535")
        );
        assert_eq!(error("dport=22,").column, 9);
        assert_eq!(error("dport=,22").column, 7);
        assert_eq!(error("dport=22,,23").column, 9);
        assert!(error("dport~3").message.contains("not an operator"));
        assert!(error("=3").message.contains("does not start with a key"));
        assert_eq!(
            error("helper=é proto=x").column,
            16,
            "columns count characters"
        );
    }

    /// The examples of docs/conntrack-filter.md parse, and its errors are the ones printed.
    #[test]
    fn the_documentation_is_true() {
        let doc = include_str!("../../docs/conntrack-filter.md");
        let block = |title: &str| -> Vec<String> {
            let start = doc.find(title).expect(title);
            let rest = &doc[start..];
            let open = rest.find("```\n").expect("a block") + 4;
            let close = rest[open..].find("```").expect("its end") + open;
            rest[open..close].lines().map(str::to_string).collect()
        };
        let examples = block("## Examples");
        assert!(examples.len() >= 8);
        for line in examples {
            let expr = line.split('#').next().unwrap_or_default();
            assert!(Filter::parse(expr).is_ok(), "{expr}");
        }
        let errors = block("## Errors");
        let inputs = ["prot=tcp", "state=ESTABLISH", "dport=99-1", "proto<6"];
        assert_eq!(errors.len(), inputs.len());
        for (input, want) in inputs.iter().zip(errors) {
            assert_eq!(error(input).message, want);
        }
        let first = doc.lines().find(|l| l.starts_with("proto=")).unwrap();
        assert!(Filter::parse(first).is_ok());
    }

    /// Every key and flag the parser knows is documented, and every key the document's table
    /// names is one the parser knows.
    #[test]
    fn the_documentation_names_every_key_and_flag() {
        let doc = include_str!("../../docs/conntrack-filter.md");
        let status = crate::conntrack::STATUS_FLAGS
            .iter()
            .map(|(_, n)| n.to_ascii_lowercase());
        let names = KEYS.iter().map(|(k, _)| k.to_string());
        let flags = FLAGS.iter().map(|(f, _)| f.to_string());
        for name in names.chain(flags).chain(status) {
            assert!(
                doc.contains(&format!("`{name}`")),
                "{name} is not documented"
            );
        }
        let table = &doc[doc.find("## Keys").unwrap()..doc.find("## Flags").unwrap()];
        let documented: Vec<&str> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .flat_map(|l| l.split(" |").next().unwrap_or_default().split(", "))
            .map(|k| k.trim().trim_matches('`'))
            .collect();
        assert!(documented.len() >= KEYS.len(), "{documented:?}");
        for k in documented {
            assert!(KEYS.iter().any(|(name, _)| *name == k), "{k} is not a key");
        }
    }
}
