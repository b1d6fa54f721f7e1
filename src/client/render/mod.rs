//! How a client shows a board: the original's text block (here), JSON for
//! scripts (`json.rs`), or a terminal screen redrawn in place (`screen.rs`,
//! which counts terminal cells with `cells.rs`).
//!
//! Names and statuses are whatever a server sent: the original server stores
//! any text, and a foreign server may send anything. Every function here
//! that writes them for a person shows their control characters as escapes
//! ([`visible`]), so a status cannot set the window title, write the
//! clipboard (OSC 52), clear the screen or overwrite a line. JSON escapes
//! them its own way and carries them exactly.

mod cells;
mod json;
mod screen;

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::Duration;

use crate::client::mirror::Mirror;
use crate::visible::visible;

pub use json::write_json;
pub use json::write_mirror_json;
pub use screen::{ScreenSize, Style, write_screen};

/// The status as a person typed it: without the protocol's `:` and the space after it.
pub fn display_status(status: &str) -> &str {
    let text = status.strip_prefix(':').unwrap_or(status);
    text.strip_prefix(' ').unwrap_or(text)
}

/// A board's text (`- NAME: STATUS` lines) as the original prints it, each
/// line [`visible`]: the newlines between lines are kept, every other control
/// character is shown as an escape. Borrowed when there is none, which is
/// almost always.
pub(crate) fn visible_board(board: &str) -> Cow<'_, str> {
    if !board.chars().any(|c| c.is_control() && c != '\n') {
        return Cow::Borrowed(board);
    }
    let lines: Vec<Cow<'_, str>> = board.split('\n').map(visible).collect();
    Cow::Owned(lines.join("\n"))
}

/// Writes a board's text bare, as one-shot mode prints it.
pub(crate) fn write_board(out: &mut impl Write, board: &str) -> io::Result<()> {
    out.write_all(visible_board(board).as_bytes())
}

/// Writes the original client's block: `----------------- N`, the board, a blank line.
pub fn write_block(out: &mut impl Write, count: u64, board: &str) -> io::Result<()> {
    // print("-----------------", count); print(states)
    writeln!(out, "----------------- {count}\n{}", visible_board(board))
}

/// An age as a person reads it: `just now`, `42 s ago`, `3 min ago`, `5 h ago`, `2 days ago`.
pub(crate) fn format_age(age: Duration) -> String {
    let secs = age.as_secs();
    match secs {
        0..5 => "just now".into(),
        5..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        86_400..172_800 => "1 day ago".into(),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// What a watcher says of a board its server marks stale (a gateway that
/// cannot reach its cluster's quorum): since when, by the server's clock in
/// UTC, and how long ago. `None` while the board is current.
pub(crate) fn stale_note(mirror: &Mirror) -> Option<String> {
    let since = mirror.stale_since_ms?;
    let age = Duration::from_millis(mirror.server_now_ms().saturating_sub(since));
    // `2026-11-30T12:03:04.123Z`: the time of day; a time past year 9999
    // (a hostile server's) is said without one.
    let at = json::rfc3339_millis(since)
        .and_then(|text| text.get(11..19).map(|time| format!(" since {time} UTC")))
        .unwrap_or_default();
    Some(format!(
        "stale: the server cannot reach its cluster{at} ({}) — the board may be old",
        format_age(age)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_board_says_since_when_by_the_servers_clock() {
        use crate::protocol::{Snapshot, SnapshotHeader};
        let server_now = 1_795_244_024_000; // 2026-11-21T06:53:44Z
        let mut mirror = Mirror::new(Snapshot {
            header: SnapshotHeader {
                epoch: "c1".into(),
                now_ms: server_now,
                stale_since_ms: Some(server_now - 180_000),
                ..SnapshotHeader::default()
            },
            entries: vec![],
        });
        assert_eq!(
            stale_note(&mirror).as_deref(),
            Some(
                "stale: the server cannot reach its cluster since 06:50:44 UTC (3 min ago) \
                 — the board may be old"
            )
        );
        mirror.stale_since_ms = Some(u64::MAX);
        let far = stale_note(&mirror).expect("still stale");
        assert!(far.starts_with("stale: the server cannot reach its cluster (just now)"));
        mirror.stale_since_ms = None;
        assert_eq!(stale_note(&mirror), None);
    }

    #[test]
    fn display_status_drops_colon_and_one_space() {
        assert_eq!(display_status(": in a meeting"), "in a meeting");
        assert_eq!(display_status(":  two spaces"), " two spaces");
        assert_eq!(display_status(":tight"), "tight");
        assert_eq!(display_status(":"), "");
    }

    #[test]
    fn block_is_the_originals_print_output() {
        let mut out = Vec::new();
        write_block(&mut out, 0, "- Jackson: I'm BAD\n").unwrap();
        assert_eq!(out, b"----------------- 0\n- Jackson: I'm BAD\n\n");
    }

    #[test]
    fn a_board_shows_control_characters_as_escapes_and_keeps_its_lines() {
        let board = "- ev\x1b]0;t\x07il: \x1b[2J \u{9b}2J a\rb\n- bob: fine\n";
        assert_eq!(
            visible_board(board),
            "- ev\\x1b]0;t\\x07il: \\x1b[2J \\u{9b}2J a\\rb\n- bob: fine\n"
        );
        assert!(matches!(visible_board("- a: b\n"), Cow::Borrowed(_)));
        let mut out = Vec::new();
        write_block(&mut out, 3, "- a: \x07\n").unwrap();
        assert_eq!(out, b"----------------- 3\n- a: \\x07\n\n");
    }

    #[test]
    fn ages_read_as_a_person_says_them() {
        let s = Duration::from_secs;
        assert_eq!(format_age(s(0)), "just now");
        assert_eq!(format_age(s(42)), "42 s ago");
        assert_eq!(format_age(s(3 * 60 + 59)), "3 min ago");
        assert_eq!(format_age(s(5 * 3600)), "5 h ago");
        assert_eq!(format_age(s(86_400 + 5)), "1 day ago");
        assert_eq!(format_age(s(3 * 86_400)), "3 days ago");
    }
}
