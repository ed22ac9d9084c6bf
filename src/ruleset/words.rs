//! Shell-like word splitting as iptables-restore does it, and the reverse (quoting a word so that
//! iptables-restore reads it back unchanged).
//!
//! iptables-restore splits on blanks; `"` and `'` open a quoted run in which blanks are kept; a
//! backslash takes the next character literally (inside quotes too). iptables-save writes a word
//! that needs it in double quotes with `"`, `'` and `\` escaped (restore rejects single quotes
//! as quoting, but nfscope also reads them, for hand-written files).

use std::borrow::Cow;

/// One word of a rule, with whether any part of it was quoted (a quoted word is always a value,
/// never an option, even when it starts with `-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub quoted: bool,
}

/// A word that borrows from the text where it can (no quotes, no escapes: most words), so that
/// parsing a rule does not copy every word before deciding what to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordRef<'a> {
    pub text: Cow<'a, str>,
    pub quoted: bool,
}

impl WordRef<'_> {
    pub fn to_word(&self) -> Word {
        Word {
            text: self.text.to_string(),
            quoted: self.quoted,
        }
    }
}

impl<'a> From<&'a Word> for WordRef<'a> {
    fn from(w: &'a Word) -> Self {
        WordRef {
            text: Cow::Borrowed(&w.text),
            quoted: w.quoted,
        }
    }
}

/// Split rule arguments into words. Fails on an unterminated quote or a trailing backslash.
pub fn split(s: &str) -> Result<Vec<Word>, String> {
    Ok(split_ref(s)?.iter().map(WordRef::to_word).collect())
}

/// Where the word at the start of `s` stops: at a blank, a quote or a backslash. Bytes first
/// (nearly every word is ASCII); a non-ASCII byte falls back to Unicode's idea of a blank.
fn plain_word_end(s: &str) -> usize {
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if b >= 0x80 {
            return i + s[i..]
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
                .unwrap_or(s.len() - i);
        }
        if b.is_ascii_whitespace() || b == 0x0b || matches!(b, b'"' | b'\'' | b'\\') {
            return i;
        }
    }
    s.len()
}

/// Whether `s` ends inside a quote (`split` would say it is never closed): a rule whose comment
/// holds a line break, as iptables-save prints it, goes on on the next line.
pub fn ends_inside_quote(s: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' | '\'' if quote.is_none() => quote = Some(c),
            c if Some(c) == quote => quote = None,
            _ => {}
        }
    }
    quote.is_some()
}

/// `split`, borrowing plain words from `s` instead of copying them.
pub fn split_ref(s: &str) -> Result<Vec<WordRef<'_>>, String> {
    // Sized for the common case (one blank between words) so the vector never grows.
    let mut out = Vec::with_capacity(s.bytes().filter(|&b| b == b' ').count() + 1);
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(out);
        }
        // Fast path: a plain word (no quote, no backslash) is copied in one piece. Most words are.
        let end = plain_word_end(rest);
        let stop = rest[end..].chars().next();
        if stop.is_none_or(char::is_whitespace) {
            out.push(WordRef {
                text: Cow::Borrowed(&rest[..end]),
                quoted: false,
            });
            rest = &rest[end..];
            continue;
        }
        let (word, after) = split_quoted(rest)?;
        out.push(word);
        rest = after;
    }
}

/// Read one word that has quotes or backslashes in it; returns it and what follows.
fn split_quoted(s: &str) -> Result<(WordRef<'static>, &str), String> {
    let mut cur = String::with_capacity(s.len().min(64));
    let mut quoted = false;
    let mut quote: Option<char> = None;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, n)) => cur.push(n),
                None => return Err("the line ends with a lone backslash".into()),
            },
            '"' | '\'' if quote.is_none() => {
                quote = Some(c);
                quoted = true;
            }
            c if Some(c) == quote => quote = None,
            c if quote.is_none() && c.is_whitespace() => {
                let text = Cow::Owned(cur);
                return Ok((WordRef { text, quoted }, &s[i..]));
            }
            c => cur.push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!("a {q} quote is opened but never closed"));
    }
    let text = Cow::Owned(cur);
    Ok((WordRef { text, quoted }, ""))
}

/// Whether a word must be quoted to survive `split`.
fn needs_quotes(w: &str) -> bool {
    w.is_empty()
        || w.chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
}

/// Quote one word the way iptables-save does, only when it has to.
pub fn quote(w: &str) -> String {
    if !needs_quotes(w) {
        return w.to_string();
    }
    let mut s = String::with_capacity(w.len() + 2);
    s.push('"');
    for c in w.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// Join words into argument text that `split` turns back into the same words.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        split(s).unwrap().into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn splits_on_blanks_and_keeps_quoted_runs() {
        assert_eq!(
            texts(r#"-m comment --comment "allow ssh from office" -j ACCEPT"#),
            [
                "-m",
                "comment",
                "--comment",
                "allow ssh from office",
                "-j",
                "ACCEPT"
            ]
        );
        assert_eq!(texts("  -j\tACCEPT  "), ["-j", "ACCEPT"]);
        assert_eq!(texts(r#"--comment 'it"s'"#), ["--comment", "it\"s"]);
    }

    #[test]
    fn escapes_round_trip() {
        assert_eq!(texts(r#""say \"hi\" \\o/""#), [r#"say "hi" \o/"#]);
        for w in ["plain", "two words", r#"q"uote"#, r"back\slash", "", "it's"] {
            assert_eq!(texts(&quote(w)), [w], "word {w:?}");
        }
    }

    #[test]
    fn quoted_flag_marks_values() {
        let w = split(r#"--log-prefix "-> in" --x"#).unwrap();
        assert!(w[1].quoted);
        assert!(!w[2].quoted);
    }

    #[test]
    fn errors_are_sentences() {
        assert!(
            split(r#"--comment "open"#)
                .unwrap_err()
                .contains("never closed")
        );
        assert!(split("abc \\").unwrap_err().contains("backslash"));
    }

    /// The first, character-by-character splitter: the fast one must agree with it exactly.
    fn reference_split(s: &str) -> Result<Vec<Word>, String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let (mut in_word, mut quoted) = (false, false);
        let mut quote: Option<char> = None;
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(n) => {
                        cur.push(n);
                        in_word = true;
                    }
                    None => return Err("the line ends with a lone backslash".into()),
                },
                '"' | '\'' if quote.is_none() => {
                    quote = Some(c);
                    quoted = true;
                    in_word = true;
                }
                c if Some(c) == quote => quote = None,
                c if quote.is_none() && c.is_whitespace() => {
                    if in_word {
                        let text = std::mem::take(&mut cur);
                        out.push(Word { text, quoted });
                        in_word = false;
                        quoted = false;
                    }
                }
                c => {
                    cur.push(c);
                    in_word = true;
                }
            }
        }
        if let Some(q) = quote {
            return Err(format!("a {q} quote is opened but never closed"));
        }
        if in_word {
            out.push(Word { text: cur, quoted });
        }
        Ok(out)
    }

    proptest::proptest! {
        #[test]
        fn fast_split_agrees_with_the_reference(s in "[a-c\\- \t\"'\\\\é]{0,24}") {
            proptest::prop_assert_eq!(split(&s), reference_split(&s));
        }
    }
}
