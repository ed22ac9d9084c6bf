//! Number formatting shared by both faces, the screens and the CLI: iptables-style human units,
//! rates, sparklines, counts in words. Face-neutral: nothing here knows a terminal.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
