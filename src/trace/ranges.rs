//! Sets of addresses as sorted, disjoint, non-adjacent inclusive ranges of `u128` (an IPv4
//! address is its 32 bits, an IPv6 address its 128): what reachability carries through a
//! chain in place of one packet. Union, intersection and difference walk both lists once.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RangeSet {
    /// Sorted, disjoint and never adjacent (`a.1 + 1 < b.0`), so equal sets are equal lists.
    ranges: Vec<(u128, u128)>,
}

impl RangeSet {
    pub fn empty() -> RangeSet {
        RangeSet::default()
    }

    /// `lo..=hi`.
    pub fn range(lo: u128, hi: u128) -> RangeSet {
        if lo > hi {
            return RangeSet::empty();
        }
        RangeSet {
            ranges: vec![(lo, hi)],
        }
    }

    /// Any ranges, in any order, overlapping or not.
    pub fn from_ranges(mut v: Vec<(u128, u128)>) -> RangeSet {
        v.retain(|(a, b)| a <= b);
        v.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        RangeSet { ranges: out }
    }

    pub fn ranges(&self) -> &[(u128, u128)] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether the two sets have a member in common (without building the intersection).
    pub fn intersects(&self, o: &RangeSet) -> bool {
        let (mut i, mut j) = (0, 0);
        while let (Some(&(a, b)), Some(&(c, d))) = (self.ranges.get(i), o.ranges.get(j)) {
            if a.max(c) <= b.min(d) {
                return true;
            }
            if b < d {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }

    pub fn contains(&self, x: u128) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < x);
        self.ranges.get(i).is_some_and(|r| r.0 <= x)
    }

    pub fn union(&self, o: &RangeSet) -> RangeSet {
        if o.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return o.clone();
        }
        let mut v = Vec::with_capacity(self.ranges.len() + o.ranges.len());
        v.extend_from_slice(&self.ranges);
        v.extend_from_slice(&o.ranges);
        RangeSet::from_ranges(v)
    }

    pub fn intersect(&self, o: &RangeSet) -> RangeSet {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.ranges.len() && j < o.ranges.len() {
            let (a, b) = self.ranges[i];
            let (c, d) = o.ranges[j];
            let lo = a.max(c);
            let hi = b.min(d);
            if lo <= hi {
                out.push((lo, hi));
            }
            if b < d {
                i += 1;
            } else {
                j += 1;
            }
        }
        RangeSet { ranges: out }
    }

    /// What is in `self` and not in `o`.
    pub fn minus(&self, o: &RangeSet) -> RangeSet {
        if o.is_empty() || self.is_empty() {
            return self.clone();
        }
        let mut out = Vec::new();
        let mut j = 0;
        for &(a, b) in &self.ranges {
            let mut lo = a;
            let mut open = true;
            while j < o.ranges.len() && o.ranges[j].1 < lo {
                j += 1;
            }
            let mut k = j;
            while k < o.ranges.len() && o.ranges[k].0 <= b {
                let (c, d) = o.ranges[k];
                if c > lo {
                    out.push((lo, c - 1));
                }
                if d >= b {
                    open = false;
                    break;
                }
                lo = d + 1;
                k += 1;
            }
            if open {
                out.push((lo, b));
            }
        }
        RangeSet { ranges: out }
    }

    /// Everything in `universe` not in `self`.
    pub fn complement(&self, universe: &RangeSet) -> RangeSet {
        universe.minus(self)
    }
}

/// The number of an address.
pub fn num(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The address of a number, in the family of `v6`.
pub fn addr(n: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        IpAddr::V4(Ipv4Addr::from(n.min(u128::from(u32::MAX)) as u32))
    }
}

/// A network's first and last address.
pub fn net_range(n: &IpNet) -> (u128, u128) {
    (num(n.network()), num(n.broadcast()))
}

/// `lo..=hi` as it reads best: one address alone, a CIDR block when it is exactly one, else
/// `FIRST-LAST`.
pub fn range_text(lo: u128, hi: u128, v6: bool) -> String {
    if lo == hi {
        return addr(lo, v6).to_string();
    }
    let bits: u32 = if v6 { 128 } else { 32 };
    let size = hi.wrapping_sub(lo).wrapping_add(1);
    // A whole space: 2^bits addresses (wraps to 0 for IPv6).
    let whole = if v6 { size == 0 } else { size == 1u128 << 32 };
    if whole && lo == 0 {
        return format!("{}/0", addr(0, v6));
    }
    if size.is_power_of_two() && lo % size == 0 {
        let prefix = bits - size.trailing_zeros();
        return format!("{}/{prefix}", addr(lo, v6));
    }
    format!("{}-{}", addr(lo, v6), addr(hi, v6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bits(s: &RangeSet) -> Vec<bool> {
        (0..64u128).map(|x| s.contains(x)).collect()
    }

    fn set() -> impl Strategy<Value = RangeSet> {
        proptest::collection::vec((0u128..64, 0u128..8), 0..6).prop_map(|v| {
            RangeSet::from_ranges(v.into_iter().map(|(a, l)| (a, (a + l).min(63))).collect())
        })
    }

    proptest! {
        #[test]
        fn operations_agree_with_bit_sets(a in set(), b in set()) {
            let (x, y) = (bits(&a), bits(&b));
            let u = bits(&a.union(&b));
            let i = bits(&a.intersect(&b));
            let m = bits(&a.minus(&b));
            prop_assert_eq!(a.intersects(&b), (0..64).any(|k| x[k] && y[k]));
            for k in 0..64 {
                prop_assert_eq!(u[k], x[k] || y[k]);
                prop_assert_eq!(i[k], x[k] && y[k]);
                prop_assert_eq!(m[k], x[k] && !y[k]);
            }
            // The canonical form: equal sets, equal lists.
            for s in [a.union(&b), a.intersect(&b), a.minus(&b)] {
                for w in s.ranges().windows(2) {
                    prop_assert!(w[0].1 + 1 < w[1].0, "{:?}", s);
                }
            }
        }
    }

    #[test]
    fn ranges_read_as_addresses_blocks_or_spans() {
        let n = |s: &str| num(s.parse().unwrap());
        assert_eq!(
            range_text(n("10.0.0.0"), n("10.0.0.255"), false),
            "10.0.0.0/24"
        );
        assert_eq!(
            range_text(n("192.0.2.7"), n("192.0.2.7"), false),
            "192.0.2.7"
        );
        assert_eq!(
            range_text(n("10.0.0.1"), n("10.0.0.9"), false),
            "10.0.0.1-10.0.0.9"
        );
        assert_eq!(range_text(0, u128::from(u32::MAX), false), "0.0.0.0/0");
        assert_eq!(range_text(0, u128::MAX, true), "::/0");
        assert_eq!(
            range_text(n("2001:db8::"), n("2001:db8::ffff"), true),
            "2001:db8::/112"
        );
    }
}
