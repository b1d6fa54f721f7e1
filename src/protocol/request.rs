//! Requests: `NAME: STATUS`, the poll `_:`, and the extensions `_:@…`.

use super::Field;
use super::name::{check_line, check_name, check_name_length, check_stored_name};
use super::{EXTENSION_PREFIX, Limits, POLL_NAME, ProtocolError, as_text, split_entry};

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

/// Builds the update request the original client sends for a typed line.
pub fn format_update(name: &str, text: &str) -> String {
    format!("{name}: {text}")
}

/// Builds `_:@since EPOCH SEQ`: the board only if it moved past `seq`.
pub fn format_since(epoch: &str, seq: u64) -> String {
    format!("{EXTENSION_PREFIX}since {epoch} {seq}")
}

/// Builds `_:@clear NAME`.
pub fn format_clear(name: &str) -> String {
    format!("{EXTENSION_PREFIX}clear {name}")
}
