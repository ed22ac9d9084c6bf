//! Number formatting shared by both faces, the screens and the CLI: iptables-style human units,
//! rates, sparklines, counts in words, and text made safe to show (`visible`). Face-neutral:
//! nothing here knows a terminal.

use std::borrow::Cow;

/// A counter the way `iptables -L -v` prints it: exact up to 99999, then K, M, G, T (base 1000),
/// never more than five characters.
pub fn human(n: u64) -> String {
    if n <= 99_999 {
        return n.to_string();
    }
    let mut v = n;
    for suffix in ["K", "M", "G", "T", "P", "E"] {
        v = v.saturating_add(500) / 1000;
        if v <= 9_999 {
            return format!("{v}{suffix}");
        }
    }
    // u64::MAX is 18E, so the loop always returns.
    format!("{v}E")
}

/// Packets per second, short: `0`, `7.5`, `120`, `3.4k`, `12k`, `1.2M`.
pub fn rate(r: f64) -> String {
    if r <= 0.0 {
        "0".to_string()
    } else if r < 10.0 {
        let s = format!("{r:.1}");
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    } else if r < 1000.0 {
        format!("{r:.0}")
    } else if r < 10_000.0 {
        format!("{:.1}k", r / 1000.0)
    } else if r < 1_000_000.0 {
        format!("{:.0}k", r / 1000.0)
    } else {
        format!("{:.1}M", r / 1_000_000.0)
    }
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `width` values as a bar per value, scaled to their maximum; zero is a blank.
pub fn sparkline<'a>(
    values: impl DoubleEndedIterator<Item = &'a f64> + ExactSizeIterator,
    width: usize,
) -> String {
    let vals: Vec<f64> = values.rev().take(width).copied().collect();
    let max = vals.iter().copied().fold(0.0f64, f64::max);
    let mut s: String = vals
        .iter()
        .rev()
        .map(|&v| {
            if v <= 0.0 || max <= 0.0 {
                ' '
            } else {
                let i = ((v / max) * (BARS.len() - 1) as f64).round() as usize;
                BARS[i.min(BARS.len() - 1)]
            }
        })
        .collect();
    let pad = width.saturating_sub(vals.len());
    s.insert_str(0, &" ".repeat(pad));
    s
}

/// The sentence with its first letter upper case, for a line that starts with it.
pub fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// "1 entry", "2 entries": a count of conntrack entries in words.
pub fn entries(n: usize) -> String {
    if n == 1 {
        "1 entry".to_string()
    } else {
        format!("{n} entries")
    }
}

/// How many terminal cells `s` takes: a CJK character two, a combining mark none
/// (unicode-width), not how many chars it has.
pub fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

fn char_width(c: char) -> usize {
    unicode_width::UnicodeWidthChar::width(c).unwrap_or(0)
}

/// The end of `s` that fits `w` cells, after a `…` when something was cut.
pub fn tail_to_width(s: &str, w: usize) -> String {
    if width(s) <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut out: Vec<char> = Vec::new();
    let mut used = 1;
    for c in s.chars().rev() {
        let cw = char_width(c);
        if used + cw > w {
            break;
        }
        used += cw;
        out.push(c);
    }
    std::iter::once('…').chain(out.into_iter().rev()).collect()
}

/// `s` with its middle replaced by `…` to fit `w` cells; the end is kept over the start.
pub fn elide_middle(s: &str, w: usize) -> String {
    if width(s) <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let head_w = (w - 1) / 2;
    let tail_w = w - 1 - head_w;
    let mut head = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = char_width(c);
        if used + cw > head_w {
            break;
        }
        used += cw;
        head.push(c);
    }
    let tail = tail_to_width(s, tail_w + 1);
    let tail = tail.strip_prefix('…').unwrap_or(&tail);
    format!("{head}…{tail}")
}

/// How a character that must not reach a terminal as it is is written instead, if it is one:
/// ESC `\e`; other C0 controls, DEL and C1 controls (`\x9b`, a CSI on many terminals) as
/// `\xNN` (`\t`, `\n`, `\r` for the usual ones); bidirectional and other format controls
/// (`\u{202e}`, `\u{200b}`, line and paragraph separators), which reorder or hide what
/// follows; a byte that is not UTF-8 (`ruleset::lossless`) as `\xff`.
fn escape_of(c: char) -> Option<String> {
    if let Some(b) = crate::ruleset::lossless::byte_of(c) {
        return Some(format!("\\x{b:02x}"));
    }
    Some(match c {
        '\u{1b}' => "\\e".to_string(),
        '\t' => "\\t".to_string(),
        '\n' => "\\n".to_string(),
        '\r' => "\\r".to_string(),
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => format!("\\x{:02x}", u32::from(c)),
        '\u{061c}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}' => format!("\\u{{{:x}}}", u32::from(c)),
        _ => return None,
    })
}

/// The most combining marks shown on one character; more are written as `\u{...}` (they pile
/// into one cell and can hide what is under them).
const MAX_MARKS: usize = 2;

/// `s` safe to show on a terminal, every character visible and none ambiguous: what
/// `escape_of` names is written as an escape, combining marks beyond [`MAX_MARKS`] on one
/// character too, and, in a string that needed any of this, a backslash as `\\` (so that
/// `\e` always means ESC there). Text that needs nothing (nearly all) is returned as it is,
/// without a copy. For every face that shows text others wrote: rule comments, LOG prefixes,
/// chain and interface names, conntrack fields, tool messages.
pub fn visible(s: &str) -> Cow<'_, str> {
    let needs = |c: char| escape_of(c).is_some() || is_mark(c);
    // Fast path: printable ASCII, or text without a control or a pile of marks.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) || !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut marks = 0;
    let escaped_any = s.chars().any(|c| escape_of(c).is_some())
        || s.chars()
            .fold((0, false), |(run, seen), c| {
                let run = if is_mark(c) { run + 1 } else { 0 };
                (run, seen || run > MAX_MARKS)
            })
            .1;
    if !escaped_any {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_mark(c) {
            marks += 1;
            if marks > MAX_MARKS {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
                continue;
            }
        } else {
            marks = 0;
        }
        match escape_of(c) {
            Some(e) => out.push_str(&e),
            None if c == '\\' => out.push_str("\\\\"),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `visible`, line by line: for output made of lines (the text formats), whose own line breaks
/// stay line breaks.
pub fn visible_lines(s: &str) -> Cow<'_, str> {
    if !s.split('\n').any(|l| matches!(visible(l), Cow::Owned(_))) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.split('\n').map(visible).collect::<Vec<_>>().join("\n"))
}

/// One terminal cell's symbol made safe, when it is not: what `visible` would escape is taken
/// out (a cell has no room for the escape; `visible` on the text itself is what shows it), and
/// combining marks beyond [`MAX_MARKS`] too; `�` when nothing is left. The last line of
/// defence of the screen: nothing from the data reaches the terminal raw.
pub fn cell_safe(symbol: &str) -> Option<String> {
    let mut marks = 0;
    let mut bad = false;
    let mut out = String::new();
    for c in symbol.chars() {
        if escape_of(c).is_some() {
            bad = true;
            continue;
        }
        if is_mark(c) {
            marks += 1;
            if marks > MAX_MARKS {
                bad = true;
                continue;
            }
        } else {
            marks = 0;
        }
        out.push(c);
    }
    if !bad {
        return None;
    }
    if out.is_empty() || out.chars().all(is_mark) {
        out = "\u{fffd}".to_string();
    }
    Some(out)
}

/// A combining mark (takes no cell of its own, and is not a control or format character).
fn is_mark(c: char) -> bool {
    !c.is_ascii() && escape_of(c).is_none() && unicode_width::UnicodeWidthChar::width(c) == Some(0)
}

/// An address split for [`elide_addr`]: what wraps it (`[`, `]:443`, `:443`), the address
/// itself, and the character between its groups.
struct AddrParts<'a> {
    pre: &'a str,
    addr: &'a str,
    post: &'a str,
    sep: u8,
}

/// An address as [`bare_addr_parts`] reads it, negated (`!`, as iptables writes `! -s`)
/// and with a prefix length or mask (`/24`, `/255.255.0.255`, `/64`) or neither, the
/// negation kept in `pre` and the mask in `post` so that they are shown whole.
fn addr_parts(s: &str) -> Option<AddrParts<'_>> {
    let neg = usize::from(s.starts_with('!'));
    let body = &s[neg..];
    let body = match body.rfind('/') {
        Some(i)
            if i + 1 < body.len()
                && body[i + 1..]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':') =>
        {
            &body[..i]
        }
        Some(_) => return None,
        None => body,
    };
    let p = bare_addr_parts(body)?;
    Some(AddrParts {
        pre: &s[..neg + p.pre.len()],
        addr: p.addr,
        post: &s[neg + body.len() - p.post.len()..],
        sep: p.sep,
    })
}

/// `a.b.c.d`, `a.b.c.d:port`, an IPv6 address, or `[v6]:port`; `None` for anything else.
fn bare_addr_parts(s: &str) -> Option<AddrParts<'_>> {
    let port_ok = |p: &str| p.is_empty() || p.bytes().all(|b| b.is_ascii_digit());
    let v4_ok = |a: &str| a.contains('.') && a.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let v6_ok = |a: &str| {
        a.contains(':')
            && a.bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (a, after) = rest.split_once(']')?;
        let port = match after {
            "" => "",
            p => p.strip_prefix(':')?,
        };
        return (v6_ok(a) && port_ok(port)).then(|| AddrParts {
            pre: "[",
            addr: a,
            post: &rest[a.len()..],
            sep: b':',
        });
    }
    match s.split_once(':') {
        // One colon after a dotted address: IPv4 with a port.
        Some((a, port)) if !port.contains(':') && v4_ok(a) => port_ok(port).then(|| AddrParts {
            pre: "",
            addr: a,
            post: &s[a.len()..],
            sep: b'.',
        }),
        Some(_) => v6_ok(s).then_some(AddrParts {
            pre: "",
            addr: s,
            post: "",
            sep: b':',
        }),
        None => v4_ok(s).then_some(AddrParts {
            pre: "",
            addr: s,
            post: "",
            sep: b'.',
        }),
    }
}

/// An IPv4 or IPv6 address, bare or with a port (`192.0.2.7:443`, `[2001:db8::7]:443`) or
/// a prefix (`2001:db8:aaaa:bbbb::/64`, `!10.1.0.0/16`, the `!` and prefix kept whole like a
/// port), shortened to fit `width` cells without ever cutting a group (an IPv4 octet, an IPv6
/// hextet). The first of these that fits is returned:
///
/// 1. the whole address;
/// 2. its first groups, as many as fit (one at least), then `…` in place of one or more whole
///    groups, then its last group, with the separators on both sides of the `…` kept, and the
///    port whole: `2001:db8:85a3:…:7334`, `192.168.….200`, `[2001:db8:…::105]:443`;
/// 3. `…` and the last group (not even the first group fits): `….200:443`, `[…::105]:443`;
/// 4. `…` and the port: `…:443`, `[…]:443`;
/// 5. `…` alone (nothing at width 0).
///
/// So what is shown is never ambiguous: every group on screen is whole and in its place from
/// the start or from the end, the last group is always kept from a width of form 3 up, and
/// `…` always stands for at least one whole group (and for a `::` run when the run is not
/// shown whole: `2001:db8:85a3:…:7334` for `2001:db8:85a3::8a2e:370:7334`). The result is
/// never wider than `width`, and an address that fits comes back unchanged. Text that is not
/// an address is shortened by [`elide_middle`].
pub fn elide_addr(addr: &str, width: usize) -> String {
    if self::width(addr) <= width {
        return addr.to_string();
    }
    let Some(p) = addr_parts(addr) else {
        return elide_middle(addr, width);
    };
    let b = p.addr.as_bytes();
    let is_sep = |i: usize| b.get(i) == Some(&p.sep);
    // The last group, with the separator before it (both colons of a `::`).
    let tail_at = b.iter().rposition(|&c| c == p.sep).map(|t| {
        if p.sep == b':' && t > 0 && is_sep(t - 1) {
            t - 1
        } else {
            t
        }
    });
    let fits = |s: &String| self::width(s) <= width;
    if let Some(t) = tail_at {
        let tail = &p.addr[t..];
        // Cut points: just after a separator, with a group before (or a leading `::`) and a
        // group left to elide. Between the colons of a `::`, the `…` stands for the `::` too.
        for i in (1..t).rev() {
            let head = &b[..i];
            let elided = &b[i..t];
            if !is_sep(i - 1)
                || !elided.iter().any(|&c| c != p.sep)
                || (head.iter().all(|&c| c == p.sep) && head.len() != 2)
            {
                continue;
            }
            let s = format!("{}{}…{tail}{}", p.pre, &p.addr[..i], p.post);
            if fits(&s) {
                return s;
            }
        }
        if t > 0 {
            let s = format!("{}…{tail}{}", p.pre, p.post);
            if fits(&s) {
                return s;
            }
        }
    }
    let s = format!("{}…{}", p.pre, p.post);
    if fits(&s) {
        return s;
    }
    if width == 0 {
        String::new()
    } else {
        "…".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_others_wrote_is_shown_visibly() {
        assert!(matches!(visible("-A INPUT -j ACCEPT"), Cow::Borrowed(_)));
        assert!(matches!(visible("café ☕ 日本"), Cow::Borrowed(_)));
        assert_eq!(visible("C\u{1b}[2J"), "C\\e[2J");
        assert_eq!(visible("a\u{7}b\u{9b}c"), "a\\x07b\\x9bc");
        assert_eq!(visible("ab\u{202e}cd"), "ab\\u{202e}cd");
        assert_eq!(visible("x\ny\tz"), "x\\ny\\tz");
        // A backslash is doubled where escapes are, so `\e` there always means ESC.
        assert_eq!(visible("\\e\u{1b}"), "\\\\e\\e");
        assert!(matches!(visible("plain \\ backslash"), Cow::Borrowed(_)));
        // Two combining marks stay; a pile is cut.
        assert_eq!(visible("e\u{301}\u{302}"), "e\u{301}\u{302}");
        assert_eq!(visible("e\u{301}\u{302}\u{303}"), "e\u{301}\u{302}\\u{303}");
        let raw = crate::ruleset::lossless::decode(b"x\xffy");
        assert_eq!(visible(&raw), "x\\xffy");
        assert_eq!(visible_lines("ok\nC\u{1b}[8m\n"), "ok\nC\\e[8m\n");
    }

    proptest::proptest! {
        #[test]
        fn nothing_dangerous_gets_through(s in "\\PC{0,40}|[\\x00-\\x{10ffff}]{0,40}") {
            let v = visible(&s);
            for c in v.chars() {
                proptest::prop_assert!(escape_of(c).is_none(), "{c:?} in {v:?}");
            }
            // Text with nothing to escape is unchanged.
            if !s.chars().any(|c| escape_of(c).is_some() || is_mark(c)) {
                proptest::prop_assert_eq!(&*v, &s[..]);
            }
        }
    }

    #[test]
    fn widths_are_cells_not_chars() {
        // Two CJK characters take four cells; a combining accent none.
        assert_eq!(width("防火"), 4);
        assert_eq!("防火".chars().count(), 2);
        assert_eq!(width("e\u{301}"), 1);
        assert_eq!(tail_to_width("ab防火", 4), "…火");
        assert_eq!(width(&tail_to_width("ab防火墙", 5)), 5);
        let e = elide_middle("防火墙防火墙", 7);
        assert!(width(&e) <= 7, "{e}");
        assert!(e.contains('…'));
        assert_eq!(elide_middle("abcdef", 5), "ab…ef");
        assert_eq!(elide_middle("abc", 5), "abc");
    }

    #[test]
    fn human_units_like_iptables() {
        assert_eq!(human(0), "0");
        assert_eq!(human(99_999), "99999");
        assert_eq!(human(100_000), "100K");
        assert_eq!(human(9_999_499), "9999K");
        assert_eq!(human(9_999_500), "10M");
        assert_eq!(human(5_000_000_000), "5000M");
        assert_eq!(human(u64::MAX), "18E");
        for n in [0, 1, 99_999, 123_456_789, u64::MAX / 3, u64::MAX] {
            assert!(human(n).len() <= 5, "{n} -> {}", human(n));
        }
    }

    #[test]
    fn rates() {
        assert_eq!(rate(0.0), "0");
        assert_eq!(rate(7.0), "7");
        assert_eq!(rate(7.45), "7.5");
        assert_eq!(rate(120.4), "120");
        assert_eq!(rate(3456.0), "3.5k");
        assert_eq!(rate(2_500_000.0), "2.5M");
    }

    #[test]
    fn sparklines() {
        let v = [0.0, 1.0, 2.0, 4.0];
        assert_eq!(sparkline(v.iter(), 6), "   ▃▅█");
        assert_eq!(sparkline(v.iter(), 2), "▅█");
        assert_eq!(sparkline([].iter(), 3), "   ");
    }

    #[test]
    fn addresses_are_shortened_between_whole_groups() {
        let v6 = "2001:db8:85a3::8a2e:370:7334";
        assert_eq!(elide_addr(v6, 40), v6);
        assert_eq!(elide_addr(v6, 20), "2001:db8:85a3:…:7334");
        assert_eq!(elide_addr(v6, 12), "2001:…:7334");
        assert_eq!(elide_addr(v6, 7), "…:7334");
        assert_eq!(elide_addr("192.168.100.200", 14), "192.168.….200");
        assert_eq!(elide_addr("192.168.100.200", 12), "192.….200");
        assert_eq!(elide_addr("192.168.100.200:443", 14), "192.….200:443");
        assert_eq!(elide_addr("192.168.100.200:443", 12), "….200:443");
        assert_eq!(elide_addr("192.168.100.200:443", 5), "…:443");
        assert_eq!(elide_addr("192.168.100.200:443", 4), "…");
        assert_eq!(elide_addr("192.168.100.200:443", 0), "");
        // A `::` is never split: whole before the last group, or inside the `…`.
        assert_eq!(
            elide_addr("[2001:db8:0:10::105]:51000", 23),
            "[2001:db8:…::105]:51000"
        );
        assert_eq!(
            elide_addr("[2001:db8:0:10::105]:51000", 22),
            "[2001:…::105]:51000"
        );
        assert_eq!(
            elide_addr("[2001:db8:0:10::105]:51000", 16),
            "[…::105]:51000"
        );
        assert_eq!(elide_addr("2001:db8::1:2", 12), "2001:db8:…:2");
        assert_eq!(elide_addr("::ffff:192.0.2.1", 13), "::…:192.0.2.1");
        // A rule's prefix and negation are kept whole, like a port.
        assert_eq!(
            elide_addr("2001:db8:aaaa:bbbb:cccc::/80", 16),
            "2001:db8:…::/80"
        );
        assert_eq!(elide_addr("!192.168.100.0/24", 16), "!192.168.….0/24");
        assert_eq!(elide_addr("!192.168.100.0/24", 14), "!192.….0/24");
        assert_eq!(elide_addr("10.0.0.0/255.0.255.0", 16), "….0/255.0.255.0");
        assert_eq!(elide_addr("!10.1.2.0/24", 16), "!10.1.2.0/24");
        // Not an address: shortened in the middle.
        assert_eq!(elide_addr("abcdefgh", 5), "ab…gh");
        assert_eq!(elide_addr("1.2.3.4/zz-top", 9), "1.2.…-top");
    }
}
