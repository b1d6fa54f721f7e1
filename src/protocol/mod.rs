//! The wire protocol of the Python original, shared by server and client.
//!
//! A request is one frame of UTF-8 text, `NAME: STATUS`. The name is the text
//! before the first `:`; the status is the rest *including* that colon, which
//! is what the original stores and prints (`"- " + name + status`). The name
//! `_` is a poll. Every accepted request is answered with the whole board, one
//! `- NAME STATUS\n` line per entry; a rejected one with a single frame that
//! starts with `error: `. `docs/PROTOCOL.md` is the long form.

mod board;
mod name;
mod notice;
mod request;
mod snapshot;
#[cfg(test)]
mod tests;

use std::fmt;

// `pub` for the binaries, the tests and the fuzz targets in `fuzz/`.
pub(crate) use board::format_error;
pub use board::{Entry, Refusal, encode_entry, parse_board};
pub use name::{check_line, check_name, check_stored_name};
pub use notice::{
    Changes, Event, Notice, Removal, encode_notice, encode_revision, encode_stale_heartbeat,
    heartbeat_stale_since, parse_notice,
};
pub use request::{Request, format_clear, format_since, format_update, parse_request};
pub use snapshot::{
    ExtendedReply, Snapshot, SnapshotHeader, encode_snapshot_header, parse_extended_reply,
};
// Only a fuzz target re-encodes a snapshot's entries; the server writes
// them from the board.
#[cfg(any(test, fuzzing))]
pub use snapshot::encode_timed_entry;

/// The name that asks for the board without storing anything.
pub const POLL_NAME: &str = "_";

/// The exact request the original watcher sends.
pub const POLL_REQUEST: &str = "_:";

/// Every error reply starts with this, so a client can tell it from a board.
pub const ERROR_PREFIX: &str = "error: ";

/// Starts every extension request. To the original server it is a poll (the
/// name `_`), so it answers with the plain board and our client can tell.
pub(crate) const EXTENSION_PREFIX: &str = "_:@";

/// Asks for the board with ages, its sequence number and the publisher.
pub const SNAPSHOT_REQUEST: &str = "_:@board";

/// First line of a snapshot reply; a board reply never starts like this.
pub(crate) const SNAPSHOT_MAGIC: &str = "status-board 1\n";

/// A snapshot reply's answer to `_:@since` when nothing changed.
pub const UNCHANGED_PREFIX: &str = "unchanged ";

/// Default largest request, in bytes: a status line, not a document.
pub const DEFAULT_MAX_REQUEST: usize = 4096;

/// Default longest name, in bytes.
pub const DEFAULT_MAX_NAME: usize = 64;

/// Size limits a request must respect; the server chooses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request frame, in bytes.
    pub max_request: usize,
    /// Longest accepted name, in bytes of UTF-8.
    pub max_name: usize,
}

impl Limits {
    /// No size limits: only the rules that hold on every server (a client
    /// checking what it is about to send, a record read back from disk).
    pub const UNLIMITED: Limits = Limits {
        max_request: usize::MAX,
        max_name: usize::MAX,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request: DEFAULT_MAX_REQUEST,
            max_name: DEFAULT_MAX_NAME,
        }
    }
}

/// Why a frame is not a valid request or reply; its text becomes the error reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is longer than the server accepts.
    #[error("request is {size} bytes, the limit is {limit}; send a shorter status")]
    TooLarge {
        /// Bytes received.
        size: usize,
        /// Bytes allowed.
        limit: usize,
    },
    /// The request came in more than one frame.
    #[error("request has {parts} frames; send 'NAME: STATUS' as a single frame")]
    Multipart {
        /// Frames received.
        parts: usize,
    },
    /// The frame is not UTF-8 text.
    #[error("request is not valid UTF-8 (bad byte at offset {offset}); send UTF-8 text")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// There is no `:` between name and status.
    #[error("request has no ':'; expected 'NAME: STATUS', or '_:' to poll")]
    NoColon,
    /// Nothing before the first `:`.
    #[error("name is empty; expected 'NAME: STATUS' with a name before the ':'")]
    EmptyName,
    /// A name with a `:` in it, which would end it on the wire (client side).
    #[error("name contains ':', which ends a name on the wire")]
    ColonInName,
    /// A character that shows nothing (a bidi control, a zero-width or blank one).
    #[error(
        "name contains U+{:04X} at byte {offset}, a character that does not show; a name must look like what it is", u32::from(*.found)
    )]
    InvisibleChar {
        /// The offending character.
        found: char,
        /// Its byte offset within the name.
        offset: usize,
    },
    /// A space at the start or end, so that `alice ` would pass for `alice`.
    #[error("name starts or ends with a space; it would look like another name")]
    EdgeSpace,
    /// The name is longer than the server accepts.
    #[error("name is {len} bytes, the limit is {limit}; use a shorter name")]
    NameTooLong {
        /// Bytes in the name.
        len: usize,
        /// Bytes allowed.
        limit: usize,
    },
    /// A control character (newline, CR, NUL, ...) would break or forge board lines.
    #[error(
        "{field} contains control character {found:?} at byte {offset}; name and status must be one line of printable text"
    )]
    ControlChar {
        /// `name` or `status`.
        field: Field,
        /// The offending character.
        found: char,
        /// Its byte offset within the field.
        offset: usize,
    },
    /// `_:@…` that is not one of the extensions this server knows.
    #[error(
        "unknown extension request {0:?}; expected '_:@board', '_:@since EPOCH SEQ' or '_:@clear NAME'"
    )]
    UnknownExtension(String),
    /// A snapshot reply or a published change that does not parse (client side).
    #[error("malformed {what}: {text:?}")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// The offending line.
        text: String,
    },
    /// A board line that does not start with `- ` or has no `:` (client side).
    #[error("reply line {line} is not '- NAME: STATUS': {text:?}")]
    BadBoardLine {
        /// 1-based line number.
        line: usize,
        /// The line, for the message.
        text: String,
    },
}

impl ProtocolError {
    /// The kind of refusal this error makes of a request.
    pub(crate) fn refusal(&self) -> Refusal {
        match self {
            ProtocolError::TooLarge { .. } | ProtocolError::NameTooLong { .. } => Refusal::TooLong,
            _ => Refusal::Invalid,
        }
    }
}

/// Which part of a request a [`ProtocolError::ControlChar`] was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The text before the first `:`.
    Name,
    /// The text from the first `:` on.
    Status,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Name => "name",
            Field::Status => "status",
        })
    }
}

/// A frame as text, or where it stops being UTF-8.
pub fn as_text(frame: &[u8]) -> Result<&str, ProtocolError> {
    std::str::from_utf8(frame).map_err(|e| ProtocolError::NotUtf8 {
        offset: e.valid_up_to(),
    })
}

/// Splits `NAME: STATUS` at the first `:`; the status keeps its colon, as the
/// original stores it. `None` without a colon.
pub(crate) fn split_entry(text: &str) -> Option<(&str, &str)> {
    text.find(':').map(|colon| text.split_at(colon))
}
