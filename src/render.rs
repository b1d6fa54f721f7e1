//! How a client shows a board: the original's text block, or JSON for scripts.

use std::io::{self, Write};

use crate::protocol::Entry;

/// The status as a person typed it: without the protocol's `:` and the space after it.
pub fn display_status(status: &str) -> &str {
    let text = status.strip_prefix(':').unwrap_or(status);
    text.strip_prefix(' ').unwrap_or(text)
}

/// Writes the original client's block: `----------------- N`, the board, a blank line.
pub fn write_block(out: &mut impl Write, count: u64, board: &str) -> io::Result<()> {
    // print("-----------------", count); print(states)
    writeln!(out, "----------------- {count}\n{board}")
}

/// Writes one board as one line of JSON: `{"entries":[{"name":…,"status":…}]}`.
pub fn write_json(out: &mut impl Write, entries: &[Entry]) -> io::Result<()> {
    let entries: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| serde_json::json!({ "name": e.name, "status": display_status(&e.status) }))
        .collect();
    serde_json::to_writer(&mut *out, &serde_json::json!({ "entries": entries }))?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn json_is_one_line_and_escapes() {
        let mut out = Vec::new();
        let entries = vec![Entry {
            name: "a\"b".into(),
            status: ": x\\y".into(),
            set_at_ms: None,
        }];
        write_json(&mut out, &entries).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"entries\":[{\"name\":\"a\\\"b\",\"status\":\"x\\\\y\"}]}\n"
        );
    }
}
