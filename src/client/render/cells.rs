//! Text on a terminal measured in cells: how wide it is, cut to fit, padded
//! to line up. The client's own escape sequences take no cells.

/// How many cells `text` takes on a terminal, escape sequences aside.
pub(super) fn cells(text: &str) -> usize {
    let mut used = 0;
    walk(text, |piece| {
        if let Piece::Char(_, width) = piece {
            used += width;
        }
        true
    });
    used
}

/// `text` cut to at most `room` cells (escape sequences kept, taking none),
/// with `…` where it was cut; and the cells it takes.
///
/// The sequences it keeps are the client's own (its colours): a server's
/// text comes here only [`visible`], with no escape character left in it.
pub(super) fn fit(text: &str, room: usize) -> (String, usize) {
    let total = cells(text);
    if total <= room {
        return (text.to_owned(), total);
    }
    if room == 0 {
        return (String::new(), 0);
    }
    // What fits in all but one cell, then the ellipsis in that one.
    let budget = room - 1;
    let (mut out, mut used, mut styled) = (String::new(), 0, false);
    walk(text, |piece| match piece {
        Piece::Escape(sequence) => {
            out.push_str(sequence);
            styled = true;
            true
        }
        Piece::Char(c, width) if used + width <= budget => {
            out.push(c);
            used += width;
            true
        }
        Piece::Char(..) => false,
    });
    out.push('…');
    if styled {
        out.push_str("\x1b[0m");
    }
    (out, used + 1)
}

/// A piece of terminal text: an escape sequence, or a character and its cells.
enum Piece<'a> {
    Escape(&'a str),
    Char(char, usize),
}

/// Calls `each` for every piece of `text` while it says to go on.
fn walk<'a>(text: &'a str, mut each: impl FnMut(Piece<'a>) -> bool) {
    use unicode_width::UnicodeWidthChar;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let piece = match c {
            // CSI: ESC [ parameters final-byte.
            '\u{1b}' if rest[1..].starts_with('[') => {
                let end = rest[2..]
                    .find(|c: char| ('@'..='~').contains(&c))
                    .map_or(rest.len(), |at| 2 + at + 1);
                let (sequence, after) = rest.split_at(end);
                rest = after;
                Piece::Escape(sequence)
            }
            c => {
                rest = &rest[c.len_utf8()..];
                Piece::Char(c, c.width().unwrap_or(0))
            }
        };
        if !each(piece) {
            return;
        }
    }
}

/// `text` padded with spaces to `width` cells.
pub(super) fn pad(text: &str, width: usize) -> String {
    let taken = cells(text);
    format!("{text}{}", " ".repeat(width.saturating_sub(taken)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_counts_cells_and_cuts_with_an_ellipsis() {
        assert_eq!(fit("hello", 10), ("hello".to_owned(), 5));
        assert_eq!(fit("hello world", 8), ("hello w…".to_owned(), 8));
        assert_eq!(cells("日本語"), 6, "wide characters take two cells");
        assert_eq!(fit("日本語です", 7).1, 7);
        assert_eq!(cells("\x1b[1;32mgreen\x1b[0m"), 5, "escapes take no cells");
        let (cut, used) = fit("\x1b[1mbold and long\x1b[0m", 6);
        assert_eq!(used, 6);
        assert!(
            cut.starts_with("\x1b[1m") && cut.ends_with("…\x1b[0m"),
            "{cut:?}"
        );
    }
}
