//! `format::elide_addr`, the address shortening of the Conntrack screen's columns, over random
//! IPv4 and IPv6 addresses (with and without ports, with `::` runs, and as a rule writes them:
//! negated and with a prefix length) and every width: never
//! wider than asked, never a group cut, what fits unchanged, the last group kept as long as
//! form 3 of the rule fits.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::format::{elide_addr, width};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

/// An address as the Conntrack screen writes it: bare, `a.b.c.d:port` or `[v6]:port`.
fn address() -> impl Strategy<Value = String> {
    let v4 = (any::<[u8; 4]>(), proptest::option::of(any::<u16>())).prop_map(|(a, port)| {
        let a = Ipv4Addr::from(a).to_string();
        match port {
            Some(p) => format!("{a}:{p}"),
            None => a,
        }
    });
    // Hextets that are often zero, so that `::` runs of every length and place occur.
    let hextet = prop_oneof![Just(0u16), Just(0u16), any::<u16>(), 0u16..16];
    let v6 = (
        proptest::array::uniform8(hextet.clone()),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(h, port)| {
            let a = Ipv6Addr::from(h).to_string();
            match port {
                Some(p) => format!("[{a}]:{p}"),
                None => a,
            }
        });
    // As the Rules screen's source and destination: `!10.1.0.0/16`, `2001:db8::/48`.
    let rule = (
        any::<bool>(),
        prop_oneof![
            any::<[u8; 4]>().prop_map(|a| Ipv4Addr::from(a).to_string()),
            proptest::array::uniform8(hextet).prop_map(|h| Ipv6Addr::from(h).to_string()),
        ],
        0u8..=128,
    )
        .prop_map(|(neg, a, len)| format!("{}{a}/{len}", if neg { "!" } else { "" }));
    prop_oneof![v4, v6, rule]
}

/// The address without its port, brackets, negation or prefix length, and what wraps it.
fn parts(s: &str) -> (&str, &str, &str) {
    if s.starts_with('!') || s.contains('/') {
        let neg = usize::from(s.starts_with('!'));
        let slash = s.find('/').unwrap();
        return (&s[..neg], &s[neg..slash], &s[slash..]);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']').unwrap();
        return ("[", &rest[..close], &rest[close..]);
    }
    match s.split_once(':') {
        Some((a, _)) if a.contains('.') => ("", a, &s[a.len()..]),
        _ => ("", s, ""),
    }
}

fn sep_of(addr: &str) -> char {
    if addr.contains(':') { ':' } else { '.' }
}

/// Form 3 of the rule: `…`, the last group with the separator(s) before it, the port.
fn form3(s: &str) -> String {
    let (pre, addr, post) = parts(s);
    let sep = sep_of(addr);
    let mut t = addr.rfind(sep).unwrap();
    if sep == ':' && t > 0 && addr.as_bytes()[t - 1] == b':' {
        t -= 1;
    }
    format!("{pre}…{}{post}", &addr[t..])
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_wider_never_a_cut_group(s in address(), w in 0usize..50) {
        let out = elide_addr(&s, w);
        prop_assert!(width(&out) <= w, "{out:?} is wider than {w}");
        if width(&s) <= w {
            prop_assert_eq!(&out, &s, "what fits comes back unchanged");
        }
        // What fits is left alone: shortening twice is shortening once.
        prop_assert_eq!(elide_addr(&out, w), out.clone());
        if out == s || out.is_empty() {
            return Ok(());
        }
        let (l, r) = out.split_once('…').expect("an elision is marked");
        prop_assert!(!r.contains('…'), "one mark: {out:?}");
        prop_assert!(s.starts_with(l) && s.ends_with(r), "{out:?} from {s:?}");
        prop_assert!(l.len() + r.len() < s.len(), "something is elided: {out:?}");
        let (_, addr, _) = parts(&s);
        let sep = sep_of(addr);
        // The kept start ends at a boundary: after a separator (or is only the bracket).
        prop_assert!(
            l.is_empty() || l == "[" || l == "!" || l.ends_with(sep),
            "{out:?} cuts a group at the start ({s:?})"
        );
        // The kept end starts at a boundary: a separator, or the bracket or port after it.
        prop_assert!(
            r.is_empty()
                || r.starts_with(sep)
                || r.starts_with(']')
                || r.starts_with(':')
                || r.starts_with('/'),
            "{out:?} cuts a group at the end ({s:?})"
        );
        // The groups that are shown are the address's own, whole.
        let groups: Vec<&str> = addr.split(sep).collect();
        let shown = l.trim_start_matches(['[', '!']);
        for g in shown.split(sep).filter(|g| !g.is_empty()) {
            prop_assert!(groups.contains(&g), "{g:?} is not a group of {s:?}");
        }
        // The last group is kept whenever form 3 fits.
        let f3 = form3(&s);
        if width(&f3) <= w {
            let kept = f3.trim_start_matches(['[', '!']).trim_start_matches('…');
            prop_assert!(out.ends_with(kept), "{out:?} lost the last group of {s:?}");
        }
    }

    #[test]
    fn more_room_never_shows_less(s in address(), w in 0usize..50) {
        let narrow = elide_addr(&s, w);
        let wide = elide_addr(&s, w + 1);
        prop_assert!(width(&wide) >= width(&narrow), "{narrow:?} at {w}, {wide:?} at {}", w + 1);
    }
}
