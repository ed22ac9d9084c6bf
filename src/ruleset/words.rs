//! Shell-like word splitting as iptables-restore does it, and the reverse (quoting a word so that
//! iptables-restore reads it back unchanged).
//!
//! iptables-restore splits on blanks; `"` and `'` open a quoted run in which blanks are kept; a
//! backslash takes the next character literally (inside quotes too). iptables-save writes a word
//! that needs it in double quotes with `"`, `'` and `\` escaped (restore rejects single quotes
//! as quoting, but nfscope also reads them, for hand-written files).

/// One word of a rule, with whether any part of it was quoted (a quoted word is always a value,
/// never an option, even when it starts with `-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub quoted: bool,
}

/// Split rule arguments into words. Fails on an unterminated quote or a trailing backslash.
pub fn split(s: &str) -> Result<Vec<Word>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
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
                    out.push(Word {
                        text: std::mem::take(&mut cur),
                        quoted,
                    });
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
}
