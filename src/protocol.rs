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

/// Starts every extension request. To the original server it is a poll (the
/// name `_`), so it answers with the plain board and our client can tell.
pub const EXTENSION_PREFIX: &str = "_:@";

/// Asks for the board with ages, its sequence number and the publisher.
pub const SNAPSHOT_REQUEST: &str = "_:@board";

/// First line of a snapshot reply; a board reply never starts like this.
pub const SNAPSHOT_MAGIC: &str = "status-board 1\n";

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
    /// `_:@board`: the board with ages, its sequence number and publisher.
    Snapshot,
    /// `_:@since EPOCH SEQ`: `unchanged SEQ` if the board is still at that
    /// point, the snapshot otherwise.
    Since {
        /// The server run the caller's board came from.
        epoch: &'a str,
        /// The last change the caller has.
        seq: u64,
    },
    /// `_:@clear NAME`: remove `NAME` from the board, answer with the snapshot.
    Clear {
        /// The name to remove.
        name: &'a str,
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
pub fn split_entry(text: &str) -> Option<(&str, &str)> {
    text.find(':').map(|colon| text.split_at(colon))
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
    let text = as_text(frame)?;
    if let Some(extension) = text.strip_prefix(EXTENSION_PREFIX) {
        return parse_extension(extension, limits);
    }
    let (name, status) = split_entry(text).ok_or(ProtocolError::NoColon)?;
    if name == POLL_NAME {
        return Ok(Request::Poll);
    }
    check_name(name, limits)?;
    check_line(status, Field::Status)?;
    Ok(Request::Update { name, status })
}

/// Parses what follows `_:@`.
fn parse_extension<'a>(text: &'a str, limits: &Limits) -> Result<Request<'a>, ProtocolError> {
    let unknown = || ProtocolError::UnknownExtension(format!("{EXTENSION_PREFIX}{text}"));
    let (verb, args) = text.split_once(' ').unwrap_or((text, ""));
    match verb {
        "board" if args.is_empty() => Ok(Request::Snapshot),
        "since" => {
            let (epoch, seq) = args.split_once(' ').ok_or_else(unknown)?;
            let seq = seq.parse().map_err(|_| unknown())?;
            if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(unknown());
            }
            Ok(Request::Since { epoch, seq })
        }
        "clear" => {
            // The rules every stored name keeps, not those of a new name: a
            // name set before the stricter rules can still be cleared.
            check_stored_name(args)?;
            check_name_length(args, limits)?;
            if args == POLL_NAME {
                return Err(unknown());
            }
            Ok(Request::Clear { name: args })
        }
        _ => Err(unknown()),
    }
}

/// Checks a name as the server would, so a client can refuse it before sending.
pub fn check_name(name: &str, limits: &Limits) -> Result<(), ProtocolError> {
    check_name_length(name, limits)?;
    check_stored_name(name)?;
    if let Some((offset, found)) = name.char_indices().find(|&(_, c)| does_not_show(c)) {
        return Err(ProtocolError::InvisibleChar { found, offset });
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(ProtocolError::EdgeSpace);
    }
    Ok(())
}

fn check_name_length(name: &str, limits: &Limits) -> Result<(), ProtocolError> {
    match name.len() > limits.max_name {
        true => Err(ProtocolError::NameTooLong {
            len: name.len(),
            limit: limits.max_name,
        }),
        false => Ok(()),
    }
}

/// The rules every name on a board keeps, whenever it was set: not empty,
/// no `:`, no control character. A state file written before the stricter
/// rules of [`check_name`] still replays whole.
pub fn check_stored_name(name: &str) -> Result<(), ProtocolError> {
    if name.is_empty() {
        return Err(ProtocolError::EmptyName);
    }
    if name.contains(':') {
        // Unreachable from parse_request; guards clients building a request.
        return Err(ProtocolError::ColonInName);
    }
    check_line(name, Field::Name)
}

/// Whether `c` shows nothing by itself, so that a name holding it could pass
/// for another (`\u{202e}ecila` renders as "alice"; U+200B is not there at all):
/// format characters (general category Cf, the bidi controls among them),
/// default-ignorable code points (Hangul fillers, variation selectors, tags),
/// and blanks other than the plain space. Unicode 16.0's tables
/// (DerivedCoreProperties.txt, DerivedGeneralCategory.txt, PropList.txt).
pub fn does_not_show(c: char) -> bool {
    const RANGES: &[(u32, u32)] = &[
        (0x00A0, 0x00A0), // no-break space
        (0x00AD, 0x00AD), // soft hyphen
        (0x034F, 0x034F), // combining grapheme joiner
        (0x0600, 0x0605), // Arabic number signs (Cf)
        (0x061C, 0x061C), // Arabic letter mark
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x115F, 0x1160), // Hangul choseong and jungseong fillers
        (0x1680, 0x1680), // Ogham space mark
        (0x17B4, 0x17B5), // Khmer inherent vowels
        (0x180B, 0x180F), // Mongolian variation selectors and vowel separator
        (0x2000, 0x200F), // en quad .. hair space, zero width space .. right-to-left mark
        (0x2028, 0x202F), // line and paragraph separators, bidi embeddings, narrow nbsp
        (0x205F, 0x206F), // medium math space, word joiner .. bidi isolates, deprecated controls
        (0x2800, 0x2800), // braille pattern blank
        (0x3000, 0x3000), // ideographic space
        (0x3164, 0x3164), // Hangul filler
        (0xFE00, 0xFE0F), // variation selectors
        (0xFEFF, 0xFEFF), // zero width no-break space (BOM)
        (0xFFA0, 0xFFA0), // halfwidth Hangul filler
        (0xFFF0, 0xFFFB), // unassigned specials, interlinear annotation controls
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F), // Egyptian hieroglyph format controls
        (0x1BCA0, 0x1BCA3), // shorthand format controls
        (0x1D173, 0x1D17A), // musical symbol format controls
        (0xE0000, 0xE0FFF), // tags, variation selectors supplement
    ];
    let c = u32::from(c);
    RANGES
        .binary_search_by(|&(low, high)| {
            if high < c {
                std::cmp::Ordering::Less
            } else if low > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
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

/// A host name that resolves to no address: said as such, not as the
/// "connection refused" or "No such device" libzmq would report later.
#[derive(Debug, thiserror::Error)]
#[error("the host name '{host}' does not resolve")]
pub struct ResolveError {
    /// The name as given.
    pub host: String,
    /// What the resolver said.
    #[source]
    pub source: std::io::Error,
}

/// Whether `host` is an address (or `*`), which needs no resolving.
fn is_address(host: &str) -> bool {
    host == "*" || host.parse::<std::net::IpAddr>().is_ok()
}

/// The TCP endpoint for a host and port, with a host name (`localhost`)
/// resolved to an address first: libzmq binds only to addresses and
/// interface names, and connecting to a name may pick an address family the
/// server does not listen on. IPv4 is preferred, as the original uses it.
pub fn resolve_tcp_endpoint(host: &str, port: u16) -> Result<String, ResolveError> {
    use std::net::ToSocketAddrs;
    if is_address(host) {
        return Ok(tcp_endpoint(host, port));
    }
    let unresolved = |source| ResolveError {
        host: host.to_owned(),
        source,
    };
    let addresses: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(unresolved)?
        .collect();
    let chosen = addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addresses.first())
        .ok_or_else(|| unresolved(std::io::Error::other("it has no address")))?;
    Ok(tcp_endpoint(&chosen.ip().to_string(), port))
}

/// The host and port of a `tcp://HOST:PORT` endpoint (a `SOURCE;` prefix
/// left out, an IPv6 address without its brackets); `None` for other
/// transports or a shape libzmq will refuse itself.
pub fn tcp_host_port(endpoint: &str) -> Option<(&str, u16)> {
    let rest = endpoint.strip_prefix("tcp://")?;
    // `tcp://SOURCE;HOST:PORT` connects from SOURCE: only HOST is the server.
    let rest = rest.rsplit_once(';').map_or(rest, |(_, host)| host);
    let (host, port) = rest.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port.parse().ok()?))
}

/// An endpoint to connect to, with its host name resolved as
/// [`resolve_tcp_endpoint`] does (a `tcp://` endpoint with a name; any other
/// is returned as it is). A name that does not resolve is said now, where
/// libzmq would only retry in silence.
pub fn resolve_endpoint(endpoint: &str) -> Result<String, ResolveError> {
    match tcp_host_port(endpoint) {
        Some((host, port)) if !is_address(host) => {
            let resolved = resolve_tcp_endpoint(host, port)?;
            // `tcp://SOURCE;HOST:PORT`: the source stays as given.
            Ok(match endpoint.rsplit_once(';') {
                Some((source, _)) => format!("{source};{}", resolved.trim_start_matches("tcp://")),
                None => resolved,
            })
        }
        _ => Ok(endpoint.to_owned()),
    }
}

/// Why a `tcp://` endpoint that libzmq could not bind names no device: its
/// host is a name that does not resolve (libzmq binds addresses and
/// interface names, and says only "No such device").
pub fn unresolved_bind_host(endpoint: &str) -> Option<ResolveError> {
    let (host, port) = tcp_host_port(endpoint)?;
    if is_address(host) {
        return None;
    }
    resolve_tcp_endpoint(host, port).err()
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

/// Builds `_:@since EPOCH SEQ`: the board only if it moved past `seq`.
pub fn format_since(epoch: &str, seq: u64) -> String {
    format!("{EXTENSION_PREFIX}since {epoch} {seq}")
}

/// Builds `_:@clear NAME`.
pub fn format_clear(name: &str) -> String {
    format!("{EXTENSION_PREFIX}clear {name}")
}

/// What a snapshot reply says about the board before its entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotHeader {
    /// Identifies one server run: sequence numbers restart with it.
    pub epoch: String,
    /// The number of the last change in this snapshot.
    pub seq: u64,
    /// The server's clock when it answered, in ms since the Unix epoch; ages
    /// are computed against it, so client and server clocks need not agree.
    pub now_ms: u64,
    /// Endpoints where the server publishes changes; none if it does not.
    pub publish: Vec<String>,
    /// How long a status lives without a refresh, if the server expires them.
    pub ttl_ms: Option<u64>,
}

/// Writes a snapshot reply's header: the magic line, `key value` lines, a blank line.
pub fn encode_snapshot_header(out: &mut Vec<u8>, header: &SnapshotHeader) {
    use std::io::Write;
    out.extend_from_slice(SNAPSHOT_MAGIC.as_bytes());
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "epoch {}\nseq {}\nnow {}\n",
        header.epoch, header.seq, header.now_ms
    );
    for endpoint in &header.publish {
        let _ = writeln!(out, "publish {endpoint}");
    }
    if let Some(ttl) = header.ttl_ms {
        let _ = writeln!(out, "ttl {ttl}");
    }
    out.push(b'\n');
}

/// Appends one snapshot entry line, `SET_AT_MS NAME STATUS\n`.
pub fn encode_timed_entry(out: &mut Vec<u8>, set_at_ms: u64, name: &str, status: &str) {
    use std::io::Write;
    let _ = writeln!(out, "{set_at_ms} {name}{status}");
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

/// A snapshot reply: the board with ages, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Sequence number, clock, publisher.
    pub header: SnapshotHeader,
    /// The entries in board order, each with its time.
    pub entries: Vec<Entry>,
}

/// The reply to an extension request, as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtendedReply {
    /// Our server's board with ages.
    Snapshot(Snapshot),
    /// Nothing changed since the sequence number asked about.
    Unchanged {
        /// That sequence number.
        seq: u64,
    },
    /// A plain board: the server speaks only the original protocol.
    Board(Vec<Entry>),
    /// The server refused the request; the text after `error: `.
    Error(String),
}

/// Parses the reply to an extension request, from our server or the original.
pub fn parse_extended_reply(frame: &[u8]) -> Result<ExtendedReply, ProtocolError> {
    let text = as_text(frame)?;
    if let Some(seq) = text.strip_prefix(UNCHANGED_PREFIX) {
        let seq = seq
            .trim_end()
            .parse()
            .map_err(|_| ProtocolError::Malformed {
                what: "unchanged reply",
                text: text.to_owned(),
            })?;
        return Ok(ExtendedReply::Unchanged { seq });
    }
    if text.starts_with(SNAPSHOT_MAGIC) {
        return parse_snapshot(text).map(ExtendedReply::Snapshot);
    }
    Ok(match parse_reply(frame)? {
        Reply::Board(entries) => ExtendedReply::Board(entries),
        Reply::Error(message) => ExtendedReply::Error(message),
    })
}

/// Parses a snapshot reply (one that starts with [`SNAPSHOT_MAGIC`]).
pub fn parse_snapshot(text: &str) -> Result<Snapshot, ProtocolError> {
    let malformed = |line: &str| ProtocolError::Malformed {
        what: "snapshot line",
        text: line.to_owned(),
    };
    let number = |line: &str, value: &str| value.parse::<u64>().map_err(|_| malformed(line));
    let mut lines = text.lines();
    lines.next(); // the magic line
    let mut header = SnapshotHeader::default();
    let (mut has_epoch, mut has_seq) = (false, false);
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let (key, value) = line.split_once(' ').ok_or_else(|| malformed(line))?;
        match key {
            "epoch" => (header.epoch, has_epoch) = (value.to_owned(), true),
            "seq" => (header.seq, has_seq) = (number(line, value)?, true),
            "now" => header.now_ms = number(line, value)?,
            "publish" => header.publish.push(value.to_owned()),
            "ttl" => header.ttl_ms = Some(number(line, value)?),
            _ => {} // a later version's addition
        }
    }
    if !has_epoch || !has_seq {
        return Err(malformed("(header without epoch and seq)"));
    }
    let mut entries = Vec::new();
    for line in lines {
        let (at, rest) = line.split_once(' ').ok_or_else(|| malformed(line))?;
        let (name, status) = split_entry(rest).ok_or_else(|| malformed(line))?;
        entries.push(Entry {
            name: name.to_owned(),
            status: status.to_owned(),
            set_at_ms: Some(number(line, at)?),
        });
    }
    Ok(Snapshot { header, entries })
}

/// Why a name left the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Its owner asked (`--clear`).
    Cleared,
    /// It was not refreshed within the server's `--ttl`.
    Expired,
}

impl Removal {
    /// The word on the wire and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            Removal::Cleared => "cleared",
            Removal::Expired => "expired",
        }
    }
}

/// A change to the board, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// `name` now has `status` (a new name goes last).
    Set {
        /// Who.
        name: &'a str,
        /// The status including its leading `:`.
        status: &'a str,
    },
    /// `name` left the board.
    Removed {
        /// Who.
        name: &'a str,
        /// Why.
        why: Removal,
    },
    /// No change: the publisher is alive and at this sequence number.
    Heartbeat,
}

/// One published message: a change or a heartbeat, numbered within a server run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice<'a> {
    /// The server run; a new one means start over from a snapshot.
    pub epoch: &'a str,
    /// The change's number: one more than the previous change's. A heartbeat
    /// carries the last change's number.
    pub seq: u64,
    /// When it happened (a heartbeat: when it was sent), by the server's clock.
    pub at_ms: u64,
    /// What happened.
    pub event: Event<'a>,
}

/// Writes a published message: `set|del|hb EPOCH SEQ AT_MS …` on one frame.
///
/// `set E S AT NAME STATUS`, `del E S AT cleared|expired NAME`, `hb E S AT`:
/// the name comes last because it may hold spaces.
pub fn encode_notice(out: &mut Vec<u8>, notice: &Notice<'_>) {
    use std::io::Write;
    let Notice {
        epoch, seq, at_ms, ..
    } = notice;
    let _ = match notice.event {
        Event::Set { name, status } => write!(out, "set {epoch} {seq} {at_ms} {name}{status}"),
        Event::Removed { name, why } => {
            write!(out, "del {epoch} {seq} {at_ms} {} {name}", why.as_str())
        }
        Event::Heartbeat => write!(out, "hb {epoch} {seq} {at_ms}"),
    };
}

/// Parses a published message.
pub fn parse_notice(frame: &[u8]) -> Result<Notice<'_>, ProtocolError> {
    let text = as_text(frame)?;
    let malformed = || ProtocolError::Malformed {
        what: "published change",
        text: text.to_owned(),
    };
    let mut parts = text.splitn(5, ' ');
    let mut next = || parts.next().ok_or_else(malformed);
    let (kind, epoch, seq, at_ms) = (next()?, next()?, next()?, next()?);
    let seq = seq.parse().map_err(|_| malformed())?;
    let at_ms = at_ms.parse().map_err(|_| malformed())?;
    let event = match kind {
        "hb" => Event::Heartbeat,
        "set" => {
            let (name, status) = split_entry(next()?).ok_or_else(malformed)?;
            Event::Set { name, status }
        }
        "del" => {
            let (why, name) = next()?.split_once(' ').ok_or_else(malformed)?;
            let why = match why {
                "cleared" => Removal::Cleared,
                "expired" => Removal::Expired,
                _ => return Err(malformed()),
            };
            Event::Removed { name, why }
        }
        _ => return Err(malformed()),
    };
    Ok(Notice {
        epoch,
        seq,
        at_ms,
        event,
    })
}

/// A reply to an original request, as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    /// The whole board, in the server's order.
    Board(Vec<Entry>),
    /// The server rejected the request; the text after `error: `.
    Error(String),
}

/// Parses a reply frame: an error, or a board of `- NAME: STATUS` lines.
fn parse_reply(frame: &[u8]) -> Result<Reply, ProtocolError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Request<'_>, ProtocolError> {
        parse_request(text.as_bytes(), &Limits::default())
    }

    #[test]
    fn an_endpoint_host_name_is_resolved_and_one_that_does_not_resolve_is_said() {
        assert_eq!(
            resolve_endpoint("tcp://localhost:2345").expect("localhost resolves"),
            "tcp://127.0.0.1:2345"
        );
        assert_eq!(
            resolve_endpoint("tcp://127.0.0.2;localhost:2345").expect("resolves"),
            "tcp://127.0.0.2;127.0.0.1:2345",
            "the source address stays as given"
        );
        for unchanged in [
            "tcp://127.0.0.1:2345",
            "tcp://[::1]:2345",
            "ipc:///tmp/status.sock",
            "nonsense",
        ] {
            assert_eq!(resolve_endpoint(unchanged).expect(unchanged), unchanged);
        }
        let err = resolve_endpoint("tcp://nonexistent.invalid:2345").expect_err("does not resolve");
        assert_eq!(err.host, "nonexistent.invalid");
        assert!(err.to_string().contains("does not resolve"), "{err}");
        assert_eq!(tcp_host_port("tcp://[::1]:7"), Some(("::1", 7)));
        assert!(unresolved_bind_host("tcp://nosuchhost.invalid:7").is_some());
        assert!(unresolved_bind_host("tcp://127.0.0.1:7").is_none());
        assert!(unresolved_bind_host("tcp://*:7").is_none());
    }

    #[test]
    fn names_that_do_not_show_what_they_hold_are_refused() {
        for name in [
            "\u{202e}ecila",
            "al\u{200b}ice",
            "\u{200b}",
            "\u{2060}",
            "\u{feff}bob",
            "\u{3164}",
            "\u{3164}\u{3164}",
            "a\u{200d}b",
            "\u{2066}bob\u{2069}",
            "bob\u{e0041}",
            "\u{a0}",
            "\u{3000}",
            "\u{2800}",
            "x\u{fe0f}",
        ] {
            let err = parse(&format!("{name}: hi")).expect_err(name);
            assert!(
                matches!(err, ProtocolError::InvisibleChar { .. }),
                "{name:?}: {err}"
            );
            assert!(err.to_string().contains("U+"), "{err}");
        }
        for name in [" alice", "alice ", " "] {
            assert_eq!(parse(&format!("{name}: hi")), Err(ProtocolError::EdgeSpace));
        }
        for name in [
            "王小明",
            "José",
            "Jose\u{301}",
            "Zoë",
            "bob smith",
            "Ölçer-42",
            "العربية",
        ] {
            assert!(
                matches!(parse(&format!("{name}: hi")), Ok(Request::Update { .. })),
                "{name:?}"
            );
            assert_eq!(check_name(name, &Limits::default()), Ok(()), "{name:?}");
        }
        // What a state file holds from before these rules still reads back.
        assert_eq!(check_stored_name("\u{202e}ecila"), Ok(()));
    }

    #[test]
    fn the_table_of_characters_that_do_not_show_is_sorted_and_exact() {
        let hidden: Vec<u32> = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|&c| does_not_show(c))
            .map(u32::from)
            .collect();
        // Spot checks on both sides of every kind of range.
        for inside in [
            0xA0, 0xAD, 0x200B, 0x200F, 0x202E, 0x2060, 0x206F, 0xFEFF, 0xE0FFF,
        ] {
            assert!(hidden.contains(&inside), "U+{inside:04X}");
        }
        for outside in [
            0x20, 0x41, 0xE9, 0x2010, 0x2030, 0x2070, 0x3001, 0xFF21, 0x1F600,
        ] {
            assert!(!hidden.contains(&outside), "U+{outside:04X}");
        }
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
    fn extension_requests_parse() {
        assert_eq!(parse("_:@board"), Ok(Request::Snapshot));
        assert_eq!(
            parse("_:@since a1b2 42"),
            Ok(Request::Since {
                epoch: "a1b2",
                seq: 42
            })
        );
        assert_eq!(
            parse("_:@clear Jan Jansen"),
            Ok(Request::Clear { name: "Jan Jansen" })
        );
        for bad in [
            "_:@",
            "_:@nope",
            "_:@board x",
            "_:@since",
            "_:@since a1",
            "_:@since a1 x",
            "_:@since a-1 3",
            "_:@clear _",
        ] {
            assert!(
                matches!(parse(bad), Err(ProtocolError::UnknownExtension(_))),
                "{bad}"
            );
        }
        assert_eq!(parse("_:@clear "), Err(ProtocolError::EmptyName));
        assert!(matches!(
            parse("_:@clear a\nb"),
            Err(ProtocolError::ControlChar { .. })
        ));
    }

    #[test]
    fn the_originals_own_requests_keep_their_meaning() {
        // What the Python client sends: a poll, and updates, also to odd names.
        assert_eq!(parse("_:"), Ok(Request::Poll));
        assert_eq!(parse("_: @board"), Ok(Request::Poll));
        assert!(matches!(parse("@board: x"), Ok(Request::Update { .. })));
    }

    #[test]
    fn extended_replies_from_either_server() {
        assert_eq!(
            parse_extended_reply(b"unchanged 17"),
            Ok(ExtendedReply::Unchanged { seq: 17 })
        );
        // The original answers every extension with its plain board.
        assert_eq!(
            parse_extended_reply(b"- a: x\n"),
            Ok(ExtendedReply::Board(vec![Entry {
                name: "a".into(),
                status: ": x".into(),
                set_at_ms: None
            }]))
        );
        assert_eq!(parse_extended_reply(b""), Ok(ExtendedReply::Board(vec![])));
        assert_eq!(
            parse_extended_reply(b"error: no"),
            Ok(ExtendedReply::Error("no".into()))
        );
        assert!(parse_extended_reply(b"status-board 1\nseq 1\n\n").is_err());
        assert!(parse_extended_reply(b"status-board 1\nepoch e\nseq 1\n\nbad line\n").is_err());
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

    /// A name a client may send: no colon, no control characters, not `_`,
    /// nothing that does not show, no space at either end.
    fn valid_name() -> impl Strategy<Value = String> {
        "[^:\\p{Cc}]{1,16}".prop_filter("a name that can be set", |n| {
            n != POLL_NAME
                && !n.chars().any(does_not_show)
                && !n.starts_with(' ')
                && !n.ends_with(' ')
        })
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
                expected.push(Entry { name: name.clone(), status, set_at_ms: None });
            }
            prop_assert_eq!(parse_reply(&out), Ok(Reply::Board(expected)));
        }

        #[test]
        fn any_snapshot_survives_encode_then_parse(
            rows in proptest::collection::vec((valid_name(), valid_text(), any::<u64>()), 0..8),
            seq in any::<u64>(),
            ttl in proptest::option::of(any::<u64>()),
        ) {
            let header = SnapshotHeader {
                epoch: "e1".into(),
                seq,
                now_ms: 7,
                publish: vec!["tcp://127.0.0.1:5556".into()],
                ttl_ms: ttl,
            };
            let mut out = Vec::new();
            encode_snapshot_header(&mut out, &header);
            let mut entries = Vec::new();
            for (name, text, at) in &rows {
                let status = format!(": {text}");
                encode_timed_entry(&mut out, *at, name, &status);
                entries.push(Entry { name: name.clone(), status, set_at_ms: Some(*at) });
            }
            prop_assert_eq!(
                parse_extended_reply(&out),
                Ok(ExtendedReply::Snapshot(Snapshot { header, entries }))
            );
        }

        #[test]
        fn any_notice_survives_encode_then_parse(
            name in valid_name(), text in valid_text(), seq in any::<u64>(), at in any::<u64>(), kind in 0u8..4
        ) {
            let status = format!(": {text}");
            let event = match kind {
                0 => Event::Set { name: &name, status: &status },
                1 => Event::Removed { name: &name, why: Removal::Cleared },
                2 => Event::Removed { name: &name, why: Removal::Expired },
                _ => Event::Heartbeat,
            };
            let notice = Notice { epoch: "abc123", seq, at_ms: at, event };
            let mut out = Vec::new();
            encode_notice(&mut out, &notice);
            prop_assert_eq!(parse_notice(&out), Ok(notice));
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
