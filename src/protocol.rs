//! The wire protocol of the Python original, shared by server and client.
//!
//! A request is one frame of UTF-8 text, `NAME: STATUS`. The name is the text
//! before the first `:`; the status is the rest *including* that colon, which
//! is what the original stores and prints (`"- " + name + status`). The name
//! `_` is a poll. Every accepted request is answered with the whole board, one
//! `- NAME STATUS\n` line per entry; a rejected one with a single frame that
//! starts with `error: `. `docs/PROTOCOL.md` is the long form.

use std::fmt;

/// The name that asks for the board without storing anything.
pub const POLL_NAME: &str = "_";

/// The exact request the original watcher sends.
pub const POLL_REQUEST: &str = "_:";

/// Every error reply starts with this, so a client can tell it from a board.
pub const ERROR_PREFIX: &str = "error: ";

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

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request: DEFAULT_MAX_REQUEST,
            max_name: DEFAULT_MAX_NAME,
        }
    }
}

/// A request the server accepted, borrowing from the received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `_:` (anything after the colon is ignored): answer with the board.
    Poll,
    /// Store `status` (which starts with `:`) under `name`, then answer.
    Update {
        /// The name, never empty, never `_`, without `:` or control characters.
        name: &'a str,
        /// The status including its leading `:`, as the original stores it.
        status: &'a str,
    },
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
    /// A board line that does not start with `- ` or has no `:` (client side).
    #[error("reply line {line} is not '- NAME: STATUS': {text:?}")]
    BadBoardLine {
        /// 1-based line number.
        line: usize,
        /// The line, for the message.
        text: String,
    },
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

/// Parses one request frame, checking every rule before anything is stored.
///
/// ```
/// use status_board::protocol::{Limits, ProtocolError, Request, parse_request};
///
/// let limits = Limits::default();
/// assert_eq!(
///     parse_request(b"Jackson: I'm BAD", &limits),
///     Ok(Request::Update { name: "Jackson", status: ": I'm BAD" })
/// );
/// assert_eq!(parse_request(b"_:", &limits), Ok(Request::Poll));
/// assert_eq!(parse_request(b"no colon", &limits), Err(ProtocolError::NoColon));
/// ```
pub fn parse_request<'a>(frame: &'a [u8], limits: &Limits) -> Result<Request<'a>, ProtocolError> {
    if frame.len() > limits.max_request {
        return Err(ProtocolError::TooLarge {
            size: frame.len(),
            limit: limits.max_request,
        });
    }
    let text = std::str::from_utf8(frame).map_err(|e| ProtocolError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let colon = text.find(':').ok_or(ProtocolError::NoColon)?;
    let (name, status) = text.split_at(colon);
    if name == POLL_NAME {
        return Ok(Request::Poll);
    }
    check_name(name, limits)?;
    check_line(status, Field::Status)?;
    Ok(Request::Update { name, status })
}

/// Checks a name as the server would, so a client can refuse it before sending.
pub fn check_name(name: &str, limits: &Limits) -> Result<(), ProtocolError> {
    if name.is_empty() {
        return Err(ProtocolError::EmptyName);
    }
    if name.len() > limits.max_name {
        return Err(ProtocolError::NameTooLong {
            len: name.len(),
            limit: limits.max_name,
        });
    }
    if name.contains(':') {
        // Unreachable from parse_request; guards clients building a request.
        return Err(ProtocolError::NoColon);
    }
    check_line(name, Field::Name)
}

/// Rejects control characters: a newline in a status would forge a board line.
pub fn check_line(text: &str, field: Field) -> Result<(), ProtocolError> {
    match text.char_indices().find(|(_, c)| c.is_control()) {
        Some((offset, found)) => Err(ProtocolError::ControlChar {
            field,
            found,
            offset,
        }),
        None => Ok(()),
    }
}

/// The TCP endpoint for a host and port, bracketing an IPv6 address.
pub fn tcp_endpoint(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("tcp://[{host}]:{port}")
    } else {
        format!("tcp://{host}:{port}")
    }
}

/// Whether an endpoint names an IPv6 address, which libzmq must be told about.
pub fn is_ipv6_endpoint(endpoint: &str) -> bool {
    endpoint.contains('[')
}

/// Builds the update request the original client sends for a typed line.
pub fn format_update(name: &str, text: &str) -> String {
    format!("{name}: {text}")
}

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
}

/// A reply as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The whole board, in the server's order.
    Board(Vec<Entry>),
    /// The server rejected the request; the text after `error: `.
    Error(String),
}

/// Parses a reply frame: an error, or a board of `- NAME: STATUS` lines.
///
/// ```
/// use status_board::protocol::{Entry, Reply, parse_reply};
///
/// let board = parse_reply(b"- Jackson: I'm BAD\n").unwrap();
/// let entry = Entry { name: "Jackson".into(), status: ": I'm BAD".into() };
/// assert_eq!(board, Reply::Board(vec![entry]));
/// assert_eq!(parse_reply(b"error: name is empty").unwrap(), Reply::Error("name is empty".into()));
/// ```
pub fn parse_reply(frame: &[u8]) -> Result<Reply, ProtocolError> {
    let text = std::str::from_utf8(frame).map_err(|e| ProtocolError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
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
        let colon = rest.find(':').ok_or_else(bad)?;
        let (name, status) = rest.split_at(colon);
        entries.push(Entry {
            name: name.to_owned(),
            status: status.to_owned(),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Request<'_>, ProtocolError> {
        parse_request(text.as_bytes(), &Limits::default())
    }

    #[test]
    fn status_keeps_its_colon_as_the_original_stores_it() {
        assert_eq!(
            parse("Jackson: I'm BAD"),
            Ok(Request::Update {
                name: "Jackson",
                status: ": I'm BAD"
            })
        );
    }

    #[test]
    fn name_ends_at_the_first_colon() {
        assert_eq!(
            parse("ci:build: green"),
            Ok(Request::Update {
                name: "ci",
                status: ":build: green"
            })
        );
    }

    #[test]
    fn empty_status_is_just_the_colon() {
        assert_eq!(
            parse("bob:"),
            Ok(Request::Update {
                name: "bob",
                status: ":"
            })
        );
    }

    #[test]
    fn underscore_is_a_poll_whatever_follows() {
        assert_eq!(parse("_:"), Ok(Request::Poll));
        assert_eq!(parse("_: anything at all"), Ok(Request::Poll));
        assert_eq!(parse("_:\nnot checked"), Ok(Request::Poll));
    }

    #[test]
    fn names_that_only_start_with_underscore_are_names() {
        assert_eq!(
            parse("_x: hi"),
            Ok(Request::Update {
                name: "_x",
                status: ": hi"
            })
        );
    }

    #[test]
    fn no_colon_is_rejected() {
        assert_eq!(parse("Jackson"), Err(ProtocolError::NoColon));
        assert_eq!(parse("_"), Err(ProtocolError::NoColon));
        assert_eq!(parse(""), Err(ProtocolError::NoColon));
    }

    #[test]
    fn empty_name_is_rejected() {
        assert_eq!(parse(": hello"), Err(ProtocolError::EmptyName));
    }

    #[test]
    fn non_utf8_is_rejected_with_its_offset() {
        let err = parse_request(b"bob: \xff\xfe", &Limits::default());
        assert_eq!(err, Err(ProtocolError::NotUtf8 { offset: 5 }));
    }

    #[test]
    fn control_characters_are_rejected_in_status() {
        for (text, found) in [
            ("bob: a\nb", '\n'),
            ("bob: a\rb", '\r'),
            ("bob: a\0b", '\0'),
            ("bob: a\tb", '\t'),
            ("bob: a\x1bb", '\x1b'),
            ("bob: a\x7fb", '\x7f'),
            ("bob: a\u{85}b", '\u{85}'),
        ] {
            assert_eq!(
                parse(text),
                Err(ProtocolError::ControlChar {
                    field: Field::Status,
                    found,
                    offset: 3
                }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn control_characters_are_rejected_in_name() {
        assert_eq!(
            parse("b\nob: hi"),
            Err(ProtocolError::ControlChar {
                field: Field::Name,
                found: '\n',
                offset: 1
            })
        );
    }

    #[test]
    fn a_newline_cannot_forge_a_board_line() {
        assert!(parse("eve: ok\n- boss: eve is fired").is_err());
    }

    #[test]
    fn size_limit_is_checked_before_anything_else() {
        let limits = Limits {
            max_request: 8,
            max_name: 64,
        };
        assert_eq!(
            parse_request(b"bob: 1234", &limits).err(),
            Some(ProtocolError::TooLarge { size: 9, limit: 8 })
        );
        assert!(parse_request(b"bob: 123", &limits).is_ok());
    }

    #[test]
    fn name_limit_counts_bytes() {
        let limits = Limits {
            max_request: 4096,
            max_name: 4,
        };
        assert!(parse_request("abcd: x".as_bytes(), &limits).is_ok());
        assert_eq!(
            parse_request("abcde: x".as_bytes(), &limits),
            Err(ProtocolError::NameTooLong { len: 5, limit: 4 })
        );
        assert_eq!(
            parse_request("ééé: x".as_bytes(), &limits),
            Err(ProtocolError::NameTooLong { len: 6, limit: 4 })
        );
    }

    #[test]
    fn error_replies_start_with_the_prefix_and_say_what_is_expected() {
        let text = format_error(&ProtocolError::NoColon);
        assert!(text.starts_with("error: "));
        assert!(text.contains("NAME: STATUS"), "{text}");
    }

    #[test]
    fn every_error_message_is_one_line() {
        let errors = [
            ProtocolError::TooLarge { size: 9, limit: 8 },
            ProtocolError::Multipart { parts: 2 },
            ProtocolError::NotUtf8 { offset: 0 },
            ProtocolError::NoColon,
            ProtocolError::EmptyName,
            ProtocolError::NameTooLong { len: 9, limit: 8 },
            ProtocolError::ControlChar {
                field: Field::Status,
                found: '\n',
                offset: 0,
            },
        ];
        for err in errors {
            let text = format_error(&err);
            assert!(!text.contains('\n'), "{text:?}");
        }
    }

    #[test]
    fn board_lines_are_dash_name_status() {
        let mut out = Vec::new();
        encode_entry(&mut out, "Jackson", ": I'm BAD");
        encode_entry(&mut out, "Madonna", ": I am a material girl");
        assert_eq!(
            out,
            b"- Jackson: I'm BAD\n- Madonna: I am a material girl\n"
        );
    }

    #[test]
    fn empty_board_parses_as_no_entries() {
        assert_eq!(parse_reply(b""), Ok(Reply::Board(vec![])));
    }

    #[test]
    fn error_reply_parses_as_error() {
        assert_eq!(
            parse_reply(b"error: name is empty"),
            Ok(Reply::Error("name is empty".into()))
        );
    }

    #[test]
    fn malformed_board_line_is_reported() {
        assert!(matches!(
            parse_reply(b"- ok: fine\nnonsense\n"),
            Err(ProtocolError::BadBoardLine { line: 2, .. })
        ));
    }

    /// A name a client may send: no colon, no control characters, not `_`.
    fn valid_name() -> impl Strategy<Value = String> {
        "[^:\\p{Cc}]{1,16}".prop_filter("not the poll name", |n| n != POLL_NAME)
    }

    /// A line a user may type: any printable text, colons included.
    fn valid_text() -> impl Strategy<Value = String> {
        "[^\\p{Cc}]{0,64}"
    }

    proptest! {
        #[test]
        fn any_valid_update_survives_format_then_parse(name in valid_name(), text in valid_text()) {
            let request = format_update(&name, &text);
            let status = format!(": {text}");
            prop_assert_eq!(
                parse(&request),
                Ok(Request::Update { name: &name, status: &status })
            );
        }

        #[test]
        fn any_valid_board_survives_encode_then_parse(
            rows in proptest::collection::vec((valid_name(), valid_text()), 0..8)
        ) {
            let mut out = Vec::new();
            let mut expected = Vec::new();
            for (name, text) in &rows {
                let status = format!(": {text}");
                encode_entry(&mut out, name, &status);
                expected.push(Entry { name: name.clone(), status });
            }
            prop_assert_eq!(parse_reply(&out), Ok(Reply::Board(expected)));
        }

        #[test]
        fn an_accepted_update_is_exactly_its_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            // Never panics, and nothing is lost or invented between frame and entry.
            if let Ok(Request::Update { name, status }) = parse_request(&bytes, &Limits::default()) {
                let rebuilt = format!("{name}{status}");
                prop_assert_eq!(rebuilt.as_bytes(), &bytes[..]);
                prop_assert!(status.starts_with(':'));
            }
        }
    }
}
