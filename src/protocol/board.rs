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

/// What kind of refusal an error reply is: a stable word right after
/// `error: `, for programs (the web gateway's HTTP codes, scripts); the text
/// after it is for people. To the original client it is plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a request this server takes: malformed, or a name that breaks a rule.
    Invalid,
    /// Over a size limit: the request or the name.
    TooLong,
    /// The board holds as many names as it may; a new one waits.
    Full,
    /// Not the caller's to change: rights, or an anonymous endpoint.
    Forbidden,
    /// The server cannot store updates now (a full disk, no quorum); later may work.
    Unavailable,
}

impl Refusal {
    const WORDS: [(Refusal, &'static str); 5] = [
        (Refusal::Invalid, "invalid"),
        (Refusal::TooLong, "too-long"),
        (Refusal::Full, "full"),
        (Refusal::Forbidden, "forbidden"),
        (Refusal::Unavailable, "unavailable"),
    ];

    /// The word on the wire.
    pub(crate) fn word(self) -> &'static str {
        Refusal::WORDS
            .iter()
            .find_map(|&(refusal, word)| (refusal == self).then_some(word))
            .unwrap_or("invalid")
    }

    /// The refusal an error text starts with (`forbidden: user 'bob' …`), and
    /// the rest; `None` for a server that sends no word (the original, or an
    /// older version of ours).
    pub fn parse(text: &str) -> (Option<Refusal>, &str) {
        let found = text.split_once(": ").and_then(|(word, rest)| {
            Refusal::WORDS
                .iter()
                .find_map(|&(refusal, w)| (w == word).then_some((refusal, rest)))
        });
        match found {
            Some((refusal, rest)) => (Some(refusal), rest),
            None => (None, text),
        }
    }
}

/// Builds the one-frame error reply for a rejected request:
/// `error: WORD: what was wrong and what is expected`.
pub(crate) fn format_error(refusal: Refusal, err: &impl fmt::Display) -> String {
    format!("{ERROR_PREFIX}{}: {err}", refusal.word())
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
