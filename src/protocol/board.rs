//! The board as the original sends it: `- NAME STATUS` lines, or an error.

use std::fmt;

use super::{ERROR_PREFIX, ProtocolError, as_text, split_entry};

/// Appends one board line, `- NAME STATUS\n`, to an encoded board.
pub fn encode_entry(out: &mut Vec<u8>, name: &str, status: &str) {
    out.reserve(name.len() + status.len() + 3);
    out.extend_from_slice(b"- ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(status.as_bytes());
    out.push(b'\n');
}

/// Builds the one-frame error reply for a rejected request.
pub fn format_error(err: &impl fmt::Display) -> String {
    format!("{ERROR_PREFIX}{err}")
}

/// One line of a board as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Who set the status.
    pub name: String,
    /// The status including its leading `:`, exactly as stored.
    pub status: String,
    /// When it was set, by the server's clock (ms since the Unix epoch); only
    /// our server's snapshots carry it.
    pub set_at_ms: Option<u64>,
}

/// A reply to an original request, as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The whole board, in the server's order.
    Board(Vec<Entry>),
    /// The server rejected the request; the text after `error: `.
    Error(String),
}

/// Parses a reply frame: an error, or a board of `- NAME: STATUS` lines.
pub(crate) fn parse_reply(frame: &[u8]) -> Result<Reply, ProtocolError> {
    let text = as_text(frame)?;
    if let Some(message) = text.strip_prefix(ERROR_PREFIX) {
        return Ok(Reply::Error(message.to_owned()));
    }
    parse_board(text).map(Reply::Board)
}

/// Parses a board reply's `- NAME: STATUS` lines (a reply known not to be an error).
pub fn parse_board(text: &str) -> Result<Vec<Entry>, ProtocolError> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let bad = || ProtocolError::BadBoardLine {
            line: index + 1,
            text: line.to_owned(),
        };
        let rest = line.strip_prefix("- ").ok_or_else(bad)?;
        let (name, status) = split_entry(rest).ok_or_else(bad)?;
        entries.push(Entry {
            name: name.to_owned(),
            status: status.to_owned(),
            set_at_ms: None,
        });
    }
    Ok(entries)
}
