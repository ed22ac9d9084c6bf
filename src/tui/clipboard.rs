//! Copying over SSH: the OSC 52 escape sequence asks the terminal (the one on the user's desk,
//! through SSH and tmux with `set-clipboard on`) to put text on its clipboard.

use base64::Engine;

/// The OSC 52 sequence that sets the clipboard to `text`.
pub fn osc52(text: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("\x1b]52;c;{b64}\x07")
}

/// What the footer says of a copy: the first line, cut, and how many more lines there were.
pub fn described(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let more = lines.count();
    let cut: String = first.chars().take(48).collect();
    let ell = if cut.chars().count() < first.chars().count() {
        "…"
    } else {
        ""
    };
    match more {
        0 => format!("copied: {cut}{ell}"),
        n => format!("copied {} lines: {cut}{ell} …", n + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_carries_the_text_in_base64() {
        assert_eq!(
            osc52("-A INPUT -j ACCEPT"),
            "\x1b]52;c;LUEgSU5QVVQgLWogQUNDRVBU\x07"
        );
    }

    #[test]
    fn the_footer_names_what_was_copied() {
        assert_eq!(
            described("-A INPUT -j ACCEPT"),
            "copied: -A INPUT -j ACCEPT"
        );
        assert!(described("a\nb\nc").starts_with("copied 3 lines: a"));
    }
}
