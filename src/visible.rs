//! Text from elsewhere (a server's reply, a peer's login name) made safe to
//! print on a terminal: every control character is shown as an escape, so
//! no byte a peer chose can move the cursor, set the window title, write the
//! clipboard (OSC 52) or clear the screen.
//!
//! One home for it: the client's renderings, error texts and the servers'
//! logs all go through [`visible`].

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character shown as an escape: C0 controls as
/// `\x1b` (tab, CR and newline as `\t`, `\r`, `\n`), DEL as `\x7f`, C1
/// controls (U+0080–U+009F, which some terminals obey like ESC sequences)
/// as `\u{9b}`. Everything else, non-ASCII text included, is kept. Borrows
/// when there is nothing to escape, which is almost always.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x80 && c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Bytes that should be UTF-8 text, made [`visible`]: a byte that is not
/// UTF-8 shows as U+FFFD.
pub(crate) fn visible_bytes(bytes: &[u8]) -> Cow<'_, str> {
    match String::from_utf8_lossy(bytes) {
        Cow::Borrowed(text) => visible(text),
        Cow::Owned(text) => Cow::Owned(visible(&text).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_show_as_escapes_and_text_stays() {
        for (raw, shown) in [
            ("in a meeting", "in a meeting"),
            ("Zoë 王小明 José", "Zoë 王小明 José"),
            ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
            ("\x1b]52;c;aGk=\x07", "\\x1b]52;c;aGk=\\x07"),
            ("\x1b[2J", "\\x1b[2J"),
            ("over\rwrite", "over\\rwrite"),
            ("a\tb\nc", "a\\tb\\nc"),
            ("\x7f", "\\x7f"),
            ("\u{9b}2J", "\\u{9b}2J"),
            ("\u{85}", "\\u{85}"),
            ("\0", "\\x00"),
        ] {
            assert_eq!(visible(raw), shown, "{raw:?}");
        }
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn bytes_that_are_not_utf8_show_as_replacement() {
        assert_eq!(visible_bytes(b"caf\xe9 \x1b[31m"), "caf\u{fffd} \\x1b[31m");
        assert_eq!(visible_bytes(b"\xc2\x9b"), "\\u{9b}");
    }

    #[test]
    fn nothing_shown_holds_a_control_character() {
        let all: String = (0u32..0x200).filter_map(char::from_u32).collect();
        assert!(!visible(&all).chars().any(char::is_control));
    }
}
