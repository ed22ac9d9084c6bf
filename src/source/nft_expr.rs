//! The expressions of an nf_tables rule and the contents of its sets, decoded from the
//! kernel's netlink attributes (linux/netfilter/nf_tables.h): what the tracer evaluates. Pure:
//! bytes in, values out; anything the decoder does not know becomes `Expr::Other` with its
//! name, which the tracer treats as undecidable, never as a match.

use crate::conntrack::decode::Attrs;

// Expression attributes (each expression numbers its own from 1).
const DREG: u16 = 1;

/// A register's value or a verdict, as `NFTA_DATA_*` carries it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Data {
    Value(Vec<u8>),
    Verdict(Verdict),
}

/// `NF_ACCEPT`, `NF_DROP`, `NFT_JUMP`... with the chain a jump or goto names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Verdict {
    Accept,
    Drop,
    Queue,
    Continue,
    Break,
    Jump(String),
    Goto(String),
    Return,
    Other(i32),
}

/// `NFT_CMP_*` and `NFT_RANGE_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CmpOp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
}

/// What a bitwise expression does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BitOp {
    /// `(reg & mask) ^ xor`.
    MaskXor {
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    Lshift(u32),
    Rshift(u32),
    /// A newer operation nfscope does not know.
    Other(u32),
}

/// One expression of a rule. Registers are the kernel's numbers (0 the verdict, 1-4 the
/// 16-byte ones, 8-23 the 4-byte ones).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Expr {
    /// `payload load LEN @ BASE + OFFSET => DREG` (base 0 link layer, 1 network, 2 transport).
    Payload {
        dreg: u32,
        base: u32,
        offset: u32,
        len: u32,
    },
    /// `payload write`: a header rewritten.
    PayloadSet {
        base: u32,
        offset: u32,
        len: u32,
    },
    Meta {
        key: u32,
        dreg: u32,
    },
    MetaSet {
        key: u32,
        sreg: u32,
    },
    Cmp {
        sreg: u32,
        op: CmpOp,
        data: Vec<u8>,
    },
    Bitwise {
        sreg: u32,
        dreg: u32,
        len: u32,
        op: BitOp,
    },
    /// `byteorder`: host to network order and back.
    Byteorder {
        sreg: u32,
        dreg: u32,
        len: u32,
        size: u32,
        hton: bool,
    },
    Range {
        sreg: u32,
        eq: bool,
        from: Vec<u8>,
        to: Vec<u8>,
    },
    Lookup {
        set: String,
        sreg: u32,
        dreg: Option<u32>,
        invert: bool,
    },
    Immediate {
        dreg: u32,
        data: Data,
    },
    Ct {
        key: u32,
        dreg: u32,
        /// `original` (0) or `reply` (1) for the tuple keys.
        dir: Option<u8>,
    },
    CtSet {
        key: u32,
        sreg: u32,
    },
    Nat {
        dnat: bool,
        family: u32,
        addr_min: Option<u32>,
        addr_max: Option<u32>,
        proto_min: Option<u32>,
        proto_max: Option<u32>,
        flags: u32,
    },
    Masq {
        proto_min: Option<u32>,
        proto_max: Option<u32>,
    },
    Redir {
        proto_min: Option<u32>,
        proto_max: Option<u32>,
    },
    Reject,
    Counter {
        packets: u64,
        bytes: u64,
    },
    Log,
    Notrack,
    Queue,
    Fib {
        dreg: u32,
        result: u32,
        flags: u32,
    },
    /// `update @set { ... }` / `add @set ...`: changes a set, does not decide.
    Dynset,
    /// A named object (`counter name`, `limit name`, `quota name`...): `NFT_OBJECT_*`, when
    /// given by value.
    Objref(Option<u32>),
    /// Anything else (`limit`, `quota`, `numgen`, `socket`, `osf`, `exthdr`, `rt`...), by name.
    Other(String),
}

/// One set or map, with its elements.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct NftSet {
    pub family: u8,
    pub table: String,
    pub name: String,
    /// `NFT_SET_*`: anonymous 0x1, constant 0x2, interval 0x4, map 0x8, timeout 0x10, eval
    /// (dynamic) 0x20, object 0x40, concat 0x80.
    pub flags: u32,
    /// nft's data type of the keys (`NFTA_SET_KEY_TYPE`): 7 ipv4_addr, 8 ipv6_addr, 13
    /// inet_service...; a concatenation's packed six bits each.
    pub key_type: u32,
    pub key_len: u32,
    /// Maps: `0xffffff00` for verdict maps, else the data type.
    pub data_type: Option<u32>,
    pub data_len: Option<u32>,
    /// A concatenation's field lengths (`NFTA_SET_DESC_CONCAT`), in bytes.
    pub fields: Vec<u32>,
    pub elems: Vec<NftElem>,
}

impl NftSet {
    /// The key's fields, in bytes: the kernel's description of a concatenation when it gave
    /// one, else worked out from the packed data types (six bits each), else one field.
    pub fn field_lens(&self) -> Vec<u32> {
        if !self.fields.is_empty() {
            return self.fields.clone();
        }
        let mut types = Vec::new();
        let mut t = self.key_type;
        while t != 0 && types.len() < 8 {
            types.push(t & 0x3f);
            t >>= 6;
        }
        types.reverse();
        let lens: Option<Vec<u32>> = types
            .iter()
            .map(|t| match t {
                7 | 19 => Some(4),
                8 | 20 | 41 => Some(16),
                6 | 9 => Some(6),
                13 => Some(2),
                12 => Some(1),
                _ => None,
            })
            .collect();
        match lens {
            Some(l)
                if l.len() > 1
                    && l.iter().map(|n| n.div_ceil(4) * 4).sum::<u32>() == self.key_len =>
            {
                l
            }
            _ => vec![self.key_len],
        }
    }

    /// The key's data types, one per field (nft's numbers).
    pub fn field_types(&self) -> Vec<u32> {
        let n = self.field_lens().len();
        if n == 1 {
            return vec![self.key_type];
        }
        (0..n as u32)
            .rev()
            .map(|i| (self.key_type >> (6 * i)) & 0x3f)
            .collect()
    }
}

/// An inclusive interval of big-endian byte strings.
pub type Interval = (Vec<u8>, Vec<u8>);

/// A set's elements, each as an inclusive interval per field of its key, with its data (maps).
pub type Elements = Vec<(Vec<Interval>, Option<Data>)>;

/// A big-endian byte string minus one; `None` for all zeros.
pub fn minus_one(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = v.to_vec();
    for b in out.iter_mut().rev() {
        if *b > 0 {
            *b -= 1;
            return Some(out);
        }
        *b = 0xff;
    }
    None
}

impl NftSet {
    /// The elements as intervals (an interval set's start and end elements paired: the end
    /// flagged and one past the last, in any order; a concatenation's per field from `key` to
    /// `key_end`), and the catch-all element's data when there is one.
    pub fn intervals(&self) -> (Elements, Option<Option<Data>>) {
        let fields = self.field_lens();
        let mut elems = Vec::new();
        let mut catchall = None;
        let split = |key: &[u8]| -> Vec<Vec<u8>> {
            let mut out = Vec::new();
            let mut off = 0usize;
            for &len in &fields {
                let len = len as usize;
                out.push(key.get(off..off + len).unwrap_or_default().to_vec());
                off += len.div_ceil(4) * 4;
            }
            out
        };
        if self.flags & SET_INTERVAL != 0
            && fields.len() == 1
            && self.elems.iter().all(|e| e.key_end.is_none())
        {
            let mut all: Vec<&NftElem> = self.elems.iter().collect();
            if let Some(c) = all.iter().find(|e| e.flags & ELEM_CATCHALL != 0) {
                catchall = Some(c.data.clone());
            }
            all.retain(|e| e.flags & ELEM_CATCHALL == 0);
            all.sort_by(|a, b| a.key.cmp(&b.key));
            let mut i = 0;
            while i < all.len() {
                let e = all[i];
                if e.flags & ELEM_INTERVAL_END != 0 {
                    i += 1;
                    continue;
                }
                let len = (fields[0] as usize).min(e.key.len());
                let lo = e.key[..len].to_vec();
                let hi = match all.get(i + 1) {
                    Some(n) if n.flags & ELEM_INTERVAL_END != 0 => {
                        let end = n.key[..len.min(n.key.len())].to_vec();
                        i += 1;
                        // An end of all zeros wrapped around: the interval runs to the top.
                        minus_one(&end).unwrap_or_else(|| vec![0xff; len])
                    }
                    _ => vec![0xff; len],
                };
                elems.push((vec![(lo, hi)], e.data.clone()));
                i += 1;
            }
        } else {
            for e in &self.elems {
                if e.flags & ELEM_CATCHALL != 0 {
                    catchall = Some(e.data.clone());
                    continue;
                }
                if e.flags & ELEM_INTERVAL_END != 0 {
                    continue;
                }
                let lo = split(&e.key);
                let hi = e.key_end.as_deref().map_or_else(|| lo.clone(), split);
                elems.push((lo.into_iter().zip(hi).collect(), e.data.clone()));
            }
        }
        (elems, catchall)
    }
}

pub const SET_ANONYMOUS: u32 = 0x1;
pub const SET_INTERVAL: u32 = 0x4;
pub const SET_MAP: u32 = 0x8;
pub const SET_TIMEOUT: u32 = 0x10;
pub const SET_EVAL: u32 = 0x20;
pub const SET_OBJECT: u32 = 0x40;
pub const SET_CONCAT: u32 = 0x80;

/// `NFT_SET_ELEM_INTERVAL_END`: the element ends an interval (its key is one past the end).
pub const ELEM_INTERVAL_END: u32 = 0x1;
/// `NFT_SET_ELEM_CATCHALL`: the `*` element.
pub const ELEM_CATCHALL: u32 = 0x2;

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct NftElem {
    pub key: Vec<u8>,
    /// A concatenated interval's upper ends (inclusive).
    pub key_end: Option<Vec<u8>>,
    pub flags: u32,
    pub data: Option<Data>,
}

fn be32(p: &[u8]) -> u32 {
    p.get(..4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be64(p: &[u8]) -> u64 {
    p.get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

fn string(p: &[u8]) -> String {
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    String::from_utf8_lossy(&p[..end]).into_owned()
}

/// `NFTA_DATA_VALUE` or `NFTA_DATA_VERDICT`.
pub fn data(p: &[u8]) -> Option<Data> {
    for (k, q) in Attrs::new(p) {
        match k {
            1 => return Some(Data::Value(q.to_vec())),
            2 => {
                let (mut code, mut chain) = (0i32, None);
                for (k, v) in Attrs::new(q) {
                    match k {
                        1 => code = be32(v) as i32,
                        2 => chain = Some(string(v)),
                        _ => {}
                    }
                }
                let v = match code {
                    1 => Verdict::Accept,
                    0 => Verdict::Drop,
                    3 => Verdict::Queue,
                    -1 => Verdict::Continue,
                    -2 => Verdict::Break,
                    -3 => Verdict::Jump(chain.unwrap_or_default()),
                    -4 => Verdict::Goto(chain.unwrap_or_default()),
                    -5 => Verdict::Return,
                    c => Verdict::Other(c),
                };
                return Some(Data::Verdict(v));
            }
            _ => {}
        }
    }
    None
}

fn value(p: &[u8]) -> Vec<u8> {
    match data(p) {
        Some(Data::Value(v)) => v,
        _ => Vec::new(),
    }
}

/// A (type, payload) list of one expression's attributes, for `decode`.
fn attrs(p: &[u8]) -> Vec<(u16, &[u8])> {
    Attrs::new(p).collect()
}

fn get<'a>(a: &[(u16, &'a [u8])], k: u16) -> Option<&'a [u8]> {
    a.iter().find(|(t, _)| *t == k).map(|(_, p)| *p)
}

fn u(a: &[(u16, &[u8])], k: u16) -> u32 {
    get(a, k).map_or(0, be32)
}

fn reg(a: &[(u16, &[u8])], k: u16) -> Option<u32> {
    get(a, k).map(be32)
}

/// One expression from its name and `NFTA_EXPR_DATA`.
pub fn decode(name: &str, p: &[u8]) -> Expr {
    let a = attrs(p);
    match name {
        "payload" => match reg(&a, 5) {
            Some(_) => Expr::PayloadSet {
                base: u(&a, 2),
                offset: u(&a, 3),
                len: u(&a, 4),
            },
            None => Expr::Payload {
                dreg: u(&a, DREG),
                base: u(&a, 2),
                offset: u(&a, 3),
                len: u(&a, 4),
            },
        },
        "meta" => match reg(&a, 3) {
            Some(sreg) => Expr::MetaSet {
                key: u(&a, 2),
                sreg,
            },
            None => Expr::Meta {
                key: u(&a, 2),
                dreg: u(&a, DREG),
            },
        },
        "cmp" => Expr::Cmp {
            sreg: u(&a, 1),
            op: match u(&a, 2) {
                0 => CmpOp::Eq,
                1 => CmpOp::Neq,
                2 => CmpOp::Lt,
                3 => CmpOp::Lte,
                4 => CmpOp::Gt,
                _ => CmpOp::Gte,
            },
            data: get(&a, 3).map(value).unwrap_or_default(),
        },
        "bitwise" => Expr::Bitwise {
            sreg: u(&a, 1),
            dreg: u(&a, 2),
            len: u(&a, 3),
            op: match u(&a, 6) {
                0 => BitOp::MaskXor {
                    mask: get(&a, 4).map(value).unwrap_or_default(),
                    xor: get(&a, 5).map(value).unwrap_or_default(),
                },
                1 => BitOp::Lshift(get(&a, 7).map(value).map_or(0, |v| ne32(&v))),
                2 => BitOp::Rshift(get(&a, 7).map(value).map_or(0, |v| ne32(&v))),
                o => BitOp::Other(o),
            },
        },
        "byteorder" => Expr::Byteorder {
            sreg: u(&a, 1),
            dreg: u(&a, 2),
            hton: u(&a, 3) == 1,
            len: u(&a, 4),
            size: u(&a, 5),
        },
        "range" => Expr::Range {
            sreg: u(&a, 1),
            eq: u(&a, 2) == 0,
            from: get(&a, 3).map(value).unwrap_or_default(),
            to: get(&a, 4).map(value).unwrap_or_default(),
        },
        "lookup" => Expr::Lookup {
            set: get(&a, 1).map(string).unwrap_or_default(),
            sreg: u(&a, 2),
            dreg: reg(&a, 3),
            invert: u(&a, 5) & 1 != 0,
        },
        "immediate" => Expr::Immediate {
            dreg: u(&a, 1),
            data: get(&a, 2).and_then(data).unwrap_or(Data::Value(Vec::new())),
        },
        "ct" => match reg(&a, 4) {
            Some(sreg) => Expr::CtSet {
                key: u(&a, 2),
                sreg,
            },
            None => Expr::Ct {
                key: u(&a, 2),
                dreg: u(&a, 1),
                dir: get(&a, 3).and_then(|p| p.first().copied()),
            },
        },
        "nat" => Expr::Nat {
            dnat: u(&a, 1) == 1,
            family: u(&a, 2),
            addr_min: reg(&a, 3),
            addr_max: reg(&a, 4),
            proto_min: reg(&a, 5),
            proto_max: reg(&a, 6),
            flags: u(&a, 7),
        },
        "masq" => Expr::Masq {
            proto_min: reg(&a, 2),
            proto_max: reg(&a, 3),
        },
        "redir" => Expr::Redir {
            proto_min: reg(&a, 1),
            proto_max: reg(&a, 2),
        },
        "reject" => Expr::Reject,
        "counter" => Expr::Counter {
            packets: get(&a, 2).map_or(0, be64),
            bytes: get(&a, 1).map_or(0, be64),
        },
        "log" => Expr::Log,
        "notrack" => Expr::Notrack,
        "queue" => Expr::Queue,
        "fib" => Expr::Fib {
            dreg: u(&a, 1),
            result: u(&a, 2),
            flags: u(&a, 3),
        },
        "dynset" => Expr::Dynset,
        "objref" => Expr::Objref(reg(&a, 1)),
        other => Expr::Other(other.to_string()),
    }
}

/// A shift amount, sent in host order.
fn ne32(v: &[u8]) -> u32 {
    v.get(..4)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// A set's description (`NFT_MSG_GETSET` attributes), without elements.
pub fn decode_set(family: u8, p: &[u8]) -> NftSet {
    let mut s = NftSet {
        family,
        ..NftSet::default()
    };
    for (k, q) in Attrs::new(p) {
        match k {
            1 => s.table = string(q),
            2 => s.name = string(q),
            3 => s.flags = be32(q),
            4 => s.key_type = be32(q),
            5 => s.key_len = be32(q),
            6 => s.data_type = Some(be32(q)),
            7 => s.data_len = Some(be32(q)),
            // NFTA_SET_DESC: its NFTA_SET_DESC_CONCAT lists NFTA_SET_FIELD_LEN per field.
            9 => {
                for (dk, dq) in Attrs::new(q) {
                    if dk == 2 {
                        for (_, field) in Attrs::new(dq) {
                            for (fk, fq) in Attrs::new(field) {
                                if fk == 1 {
                                    s.fields.push(be32(fq));
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    s
}

/// The elements of one `NFT_MSG_GETSETELEM` message: (table, set, elements).
pub fn decode_elems(p: &[u8]) -> (String, String, Vec<NftElem>) {
    let (mut table, mut set, mut out) = (String::new(), String::new(), Vec::new());
    for (k, q) in Attrs::new(p) {
        match k {
            1 => table = string(q),
            2 => set = string(q),
            3 => {
                for (_, e) in Attrs::new(q) {
                    let mut el = NftElem::default();
                    for (ek, eq) in Attrs::new(e) {
                        match ek {
                            1 => el.key = value(eq),
                            2 => el.data = data(eq),
                            3 => el.flags = be32(eq),
                            10 => el.key_end = Some(value(eq)),
                            _ => {}
                        }
                    }
                    out.push(el);
                }
            }
            _ => {}
        }
    }
    (table, set, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::decode::AttrWriter;

    #[test]
    fn a_verdict_with_a_chain_decodes() {
        let mut w = AttrWriter::default();
        w.put(1, &1u32.to_be_bytes());
        let d = w.begin(2);
        let v = w.begin(2);
        w.put(1, &(-3i32).to_be_bytes());
        w.put(2, b"web\0");
        w.end(v);
        w.end(d);
        assert_eq!(
            decode("immediate", &w.buf),
            Expr::Immediate {
                dreg: 1,
                data: Data::Verdict(Verdict::Jump("web".into()))
            }
        );
        // Garbage decodes to something, never a panic.
        for name in ["payload", "cmp", "lookup", "nat", "bitwise", "zzz"] {
            let _ = decode(name, &[0xff; 9]);
        }
        let _ = decode_set(1, &[9, 0, 9, 0, 1]);
        let _ = decode_elems(&[12, 0, 3, 0, 8, 0, 1, 0, 4, 0, 1, 0]);
    }
}
