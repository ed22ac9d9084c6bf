//! Text that is mostly UTF-8 but need not be, kept byte for byte. The kernel keeps a rule's
//! comment, a LOG prefix or a chain name as bytes: one `\xff` in a comment made every face refuse
//! the whole family ("not valid UTF-8") while `iptables -L` showed it. Such bytes are held in
//! the `String` as characters of their own, U+10FF00 + the byte (the end of Supplementary
//! Private Use Area B), and turned back into the very bytes wherever text goes back to a tool or
//! a file. The faces show them as `\xff` (`format::visible`). A real character in that range
//! (never seen in a rule set) is held the same way, byte by byte, so that the mapping is exact
//! both ways.

use std::borrow::Cow;

/// The first of the 256 characters that stand for raw bytes.
const BASE: u32 = 0x10_FF00;

/// The raw byte a character stands for, if it stands for one.
pub fn byte_of(c: char) -> Option<u8> {
    let v = u32::from(c);
    (BASE..=BASE + 0xff)
        .contains(&v)
        .then(|| u8::try_from(v - BASE).unwrap_or(0))
}

fn char_of(b: u8) -> char {
    char::from_u32(BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Bytes as text, exactly: borrowed when they are UTF-8 and hold no character of the reserved
/// range (nearly always).
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes)
        && !has_reserved(s)
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if byte_of(c).is_some() {
                let mut buf = [0u8; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    out.push(char_of(b));
                }
            } else {
                out.push(c);
            }
        }
        for &b in chunk.invalid() {
            out.push(char_of(b));
        }
    }
    Cow::Owned(out)
}

/// `decode` of bytes owned already: without a copy when they are UTF-8 and hold no character
/// of the reserved range (a save tool's output, nearly always).
pub fn decode_owned(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) if !has_reserved(&s) => s,
        Ok(s) => decode(s.as_bytes()).into_owned(),
        Err(e) => decode(e.as_bytes()).into_owned(),
    }
}

/// Whether `s` may hold a character of the reserved range: all of them (U+10FF00..U+10FFFF) are
/// written with the lead byte 0xF4, which only plane 16 uses. A byte scan, much faster than
/// looking at every character of a 10 MB save text.
fn has_reserved(s: &str) -> bool {
    s.as_bytes().contains(&0xF4) && s.chars().any(|c| byte_of(c).is_some())
}

/// Text back to the bytes it was decoded from: borrowed when it holds no raw byte.
pub fn encode(s: &str) -> Cow<'_, [u8]> {
    if !has_reserved(s) {
        return Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        match byte_of(c) {
            Some(b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn odd_bytes_are_kept() {
        let raw = b"-A INPUT -m comment --comment \"x\xffy\" -j ACCEPT";
        let text = decode(raw);
        assert!(matches!(text, Cow::Owned(_)));
        assert_eq!(text.chars().filter_map(byte_of).collect::<Vec<_>>(), [0xff]);
        assert_eq!(&*encode(&text), &raw[..]);
        assert!(matches!(decode(b"plain"), Cow::Borrowed("plain")));
        assert!(matches!(encode("plain"), Cow::Borrowed(b"plain")));
    }

    proptest! {
        #[test]
        fn any_bytes_go_round(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = decode(&bytes);
            let back = encode(&text);
            prop_assert_eq!(&*back, &bytes[..]);
            // And the text decoded is what the bytes decode to again.
            let again = decode(&back);
            prop_assert_eq!(&*again, &*text);
        }

        #[test]
        fn text_without_the_reserved_range_is_its_bytes(s in ".{0,60}") {
            prop_assume!(!s.chars().any(|c| byte_of(c).is_some()));
            let bytes = encode(&s);
            prop_assert_eq!(&*bytes, s.as_bytes());
            let text = decode(&bytes);
            prop_assert_eq!(&*text, &s[..]);
        }
    }
}
