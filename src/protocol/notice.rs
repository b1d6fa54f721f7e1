//! Published changes: `set|del|hb EPOCH SEQ AT …`, one frame each.

use super::{ProtocolError, as_text, split_entry};

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
