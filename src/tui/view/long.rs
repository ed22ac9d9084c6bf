//! Long lines: a rule of 200 characters, a diff line, a trace step. Each view either shows a
//! window of the line that the user scrolls sideways (`<` `>`), marking what is cut, or wraps
//! it over several rows (`w`).

use crate::format::width;

/// The part of `text` that a window of `cols` columns shows after skipping `skip` columns, with
/// `…` where text is cut on the left or the right.
pub fn window(text: &str, skip: usize, cols: usize) -> String {
    if cols == 0 {
        return String::new();
    }
    let total = width(text);
    if skip == 0 && total <= cols {
        return text.to_string();
    }
    let left = skip > 0;
    let mut out = String::new();
    if left {
        out.push('…');
    }
    let mut at = 0;
    let mut used = usize::from(left);
    let mut cut_right = false;
    for ch in text.chars() {
        let w = width(ch.encode_utf8(&mut [0; 4]));
        if at < skip {
            at += w;
            continue;
        }
        at += w;
        if used + w > cols {
            cut_right = true;
            break;
        }
        used += w;
        out.push(ch);
    }
    if cut_right {
        // Room for the mark: drop characters from the end until it fits.
        while used + 1 > cols {
            match out.pop() {
                Some(c) => used -= width(c.encode_utf8(&mut [0; 4])),
                None => break,
            }
        }
        out.push('…');
    }
    out
}

/// `text` wrapped to `cols` columns: broken after spaces where it can be, inside a word only
/// when the word is longer than a row. Never empty (an empty text is one empty row).
pub fn wrap(text: &str, cols: usize) -> Vec<String> {
    let cols = cols.max(1);
    let mut rows = Vec::new();
    let mut cur = String::new();
    let mut cur_w = 0;
    for word in text.split_inclusive(' ') {
        let ww = width(word);
        let trimmed_w = width(word.trim_end_matches(' '));
        if cur_w + trimmed_w > cols && cur_w > 0 {
            rows.push(std::mem::take(&mut cur));
            cur_w = 0;
        }
        if trimmed_w > cols {
            // A word longer than a row: cut it.
            for ch in word.chars() {
                let w = width(ch.encode_utf8(&mut [0; 4]));
                if cur_w + w > cols && cur_w > 0 {
                    rows.push(std::mem::take(&mut cur));
                    cur_w = 0;
                }
                cur.push(ch);
                cur_w += w;
            }
            continue;
        }
        cur.push_str(word);
        cur_w += ww;
    }
    if !cur.is_empty() || rows.is_empty() {
        rows.push(cur);
    }
    rows.into_iter()
        .map(|r| r.trim_end_matches(' ').to_string())
        .collect()
}

/// The rows a long line shows as: wrapped to `cols` (`wrap`), else the one window of it after
/// `skip` columns.
pub fn rows(text: &str, wrap_it: bool, skip: usize, cols: usize) -> Vec<String> {
    if wrap_it {
        wrap(text, cols)
    } else {
        vec![window(text, skip, cols)]
    }
}

/// How many rows `text` takes wrapped to `cols`.
pub fn wrapped_rows(text: &str, cols: usize) -> usize {
    wrap(text, cols).len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_window_marks_what_is_cut() {
        assert_eq!(window("-p tcp --dport 22", 0, 40), "-p tcp --dport 22");
        assert_eq!(window("-p tcp --dport 22", 0, 8), "-p tcp …");
        assert_eq!(window("-p tcp --dport 22", 3, 8), "…tcp --…");
        assert_eq!(window("-p tcp --dport 22", 10, 20), "…port 22");
    }

    #[test]
    fn wrapping_breaks_after_words() {
        assert_eq!(
            wrap("-m comment --comment abuse -j DROP", 12),
            vec!["-m comment", "--comment", "abuse -j", "DROP"]
        );
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), vec![""]);
    }

    proptest! {
        #[test]
        fn wrapping_keeps_every_character_and_fits(s in "[ -~]{0,300}", cols in 1usize..60) {
            let rows = wrap(&s, cols);
            for r in &rows {
                prop_assert!(width(r) <= cols, "{r:?} wider than {cols}");
            }
            let joined: String = rows.concat();
            let want: String = s.chars().filter(|c| *c != ' ').collect();
            let got: String = joined.chars().filter(|c| *c != ' ').collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn a_window_fits(s in "[ -~]{0,300}", skip in 0usize..400, cols in 0usize..80) {
            prop_assert!(width(&window(&s, skip, cols)) <= cols);
        }
    }
}
