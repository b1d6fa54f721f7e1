//! Published changes: `set|del|hb|rev EPOCH SEQ AT …`, one frame each.

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

    fn parse(word: &str) -> Option<Removal> {
        match word {
            "cleared" => Some(Removal::Cleared),
            "expired" => Some(Removal::Expired),
            _ => None,
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
    /// Every change of one revision of a cluster's store (`rev`): numbers
    /// there jump (other keys share them), and one number may hold several
    /// changes (a batch written in one transaction).
    Revision {
        /// The number of the revision published before this one: a copy at
        /// that number (or past it, but short of this one) is in step.
        prev: u64,
        /// The changes, in order: each a [`Event::Set`] or [`Event::Removed`].
        changes: Changes<'a>,
    },
}

/// The changes of a `rev` notice, checked when parsed: every line is a
/// `set NAME: STATUS` or a `del cleared|expired NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changes<'a>(&'a str);

impl<'a> Changes<'a> {
    /// The lines after a `rev` notice's first, if each is a change.
    fn parse(lines: &'a str) -> Option<Changes<'a>> {
        let changes = Changes(lines);
        changes
            .lines()
            .all(|line| parse_change(line).is_some())
            .then_some(changes)
    }

    fn lines(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        // No lines at all for an empty body, rather than one empty line.
        self.0.split('\n').filter(|_| !self.0.is_empty())
    }

    /// Each change, as a [`Event::Set`] or an [`Event::Removed`].
    pub fn iter(&self) -> impl Iterator<Item = Event<'a>> + use<'a> {
        // Every line was checked in `parse`: none is dropped here.
        self.lines().filter_map(parse_change)
    }

    /// How many changes.
    pub fn len(&self) -> usize {
        self.lines().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One published message: a change or a heartbeat, numbered within a server run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice<'a> {
    /// The server run; a new one means start over from a snapshot.
    pub epoch: &'a str,
    /// The change's number: one more than the previous change's (for a
    /// revision, any number past `prev`). A heartbeat carries the last
    /// change's number.
    pub seq: u64,
    /// When it happened (a heartbeat: when it was sent), by the server's clock.
    pub at_ms: u64,
    /// What happened.
    pub event: Event<'a>,
}

/// Writes a published message: `set|del|hb|rev EPOCH SEQ AT_MS …` on one frame.
///
/// `set E S AT NAME STATUS`, `del E S AT cleared|expired NAME`, `hb E S AT`,
/// `rev E S AT PREV` and a line per change: the name comes last because it
/// may hold spaces.
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
        Event::Revision { prev, changes } => {
            write_revision(out, epoch, *seq, *at_ms, prev, changes.iter());
            Ok(())
        }
    };
}

/// Writes a heartbeat of a gateway without an etcd quorum since `since_ms`:
/// `hb EPOCH SEQ AT_MS stale SINCE_MS`. Readers of the plain heartbeat
/// ignore the words after AT_MS; a watcher that reads them takes a snapshot,
/// which says so too.
pub fn encode_stale_heartbeat(out: &mut Vec<u8>, epoch: &str, seq: u64, at_ms: u64, since_ms: u64) {
    use std::io::Write;
    let _ = write!(out, "hb {epoch} {seq} {at_ms} stale {since_ms}");
}

/// The `stale SINCE_MS` of a heartbeat, if it carries one.
pub fn heartbeat_stale_since(frame: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(frame).ok()?;
    let mut parts = text.strip_prefix("hb ")?.splitn(4, ' ');
    let (_epoch, _seq, _at) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next()?.strip_prefix("stale ")?.parse().ok()
}

/// Writes a cluster's revision as one published message:
///
/// ```text
/// rev EPOCH SEQ AT_MS PREV
/// set NAME: STATUS
/// del cleared|expired NAME
/// ```
///
/// `events` are [`Event::Set`] and [`Event::Removed`]; any other is not a
/// change and is left out. Names and statuses hold no newline (the server
/// takes none), so each change is one line.
pub fn encode_revision(
    out: &mut Vec<u8>,
    epoch: &str,
    seq: u64,
    at_ms: u64,
    prev: u64,
    events: &[Event<'_>],
) {
    write_revision(out, epoch, seq, at_ms, prev, events.iter().copied());
}

fn write_revision<'a>(
    out: &mut Vec<u8>,
    epoch: &str,
    seq: u64,
    at_ms: u64,
    prev: u64,
    events: impl Iterator<Item = Event<'a>>,
) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "rev {epoch} {seq} {at_ms} {prev}");
    for event in events {
        let _ = match event {
            Event::Set { name, status } => write!(out, "\nset {name}{status}"),
            Event::Removed { name, why } => write!(out, "\ndel {} {name}", why.as_str()),
            Event::Heartbeat | Event::Revision { .. } => Ok(()),
        };
    }
}

/// One line of a `rev` notice: `set NAME: STATUS` or `del WHY NAME`.
fn parse_change(line: &str) -> Option<Event<'_>> {
    let (kind, rest) = line.split_once(' ')?;
    match kind {
        "set" => {
            let (name, status) = split_entry(rest)?;
            Some(Event::Set { name, status })
        }
        "del" => {
            let (why, name) = rest.split_once(' ')?;
            Some(Event::Removed {
                name,
                why: Removal::parse(why)?,
            })
        }
        _ => None,
    }
}

/// Parses a published message.
///
/// Work is linear in the frame (a `rev` notice's lines are checked once
/// here and read again by [`Changes::iter`]), and nothing is allocated but
/// an error's text.
pub fn parse_notice(frame: &[u8]) -> Result<Notice<'_>, ProtocolError> {
    let text = as_text(frame)?;
    let malformed = || ProtocolError::Malformed {
        what: "published change",
        text: text.to_owned(),
    };
    // A `rev` notice's first line is its header; the other kinds are one line.
    let (head, body) = match text.strip_prefix("rev ") {
        Some(_) => match text.split_once('\n') {
            Some((head, body)) => (head, Some(body.strip_suffix('\n').unwrap_or(body))),
            None => (text, Some("")),
        },
        None => (text, None),
    };
    let mut parts = head.splitn(5, ' ');
    let mut next = || parts.next().ok_or_else(malformed);
    let (kind, epoch, seq, at_ms) = (next()?, next()?, next()?, next()?);
    let seq = seq.parse().map_err(|_| malformed())?;
    let at_ms = at_ms.parse().map_err(|_| malformed())?;
    let event = match (kind, body) {
        ("hb", None) => Event::Heartbeat,
        ("set", None) => {
            let (name, status) = split_entry(next()?).ok_or_else(malformed)?;
            Event::Set { name, status }
        }
        ("del", None) => {
            let (why, name) = next()?.split_once(' ').ok_or_else(malformed)?;
            let why = Removal::parse(why).ok_or_else(malformed)?;
            Event::Removed { name, why }
        }
        ("rev", Some(body)) => {
            let prev: u64 = next()?.parse().map_err(|_| malformed())?;
            // Numbers only rise: a revision at or before its previous one
            // would take a watcher's copy back.
            if prev >= seq {
                return Err(malformed());
            }
            let changes = Changes::parse(body).ok_or_else(malformed)?;
            Event::Revision { prev, changes }
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

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn a_revision_carries_its_previous_number_and_each_change_in_order() {
        let events = [
            Event::Set {
                name: "alice",
                status: ": in: a meeting",
            },
            Event::Removed {
                name: "bob smith",
                why: Removal::Expired,
            },
            Event::Removed {
                name: "carol",
                why: Removal::Cleared,
            },
            // Not changes: left out.
            Event::Heartbeat,
        ];
        let mut out = Vec::new();
        encode_revision(&mut out, "c1", 42, 1_700, 17, &events);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "rev c1 42 1700 17\nset alice: in: a meeting\ndel expired bob smith\ndel cleared carol"
        );
        let notice = parse_notice(&out).expect("parses");
        assert_eq!((notice.epoch, notice.seq, notice.at_ms), ("c1", 42, 1_700));
        let Event::Revision { prev, changes } = notice.event else {
            panic!("a revision: {notice:?}");
        };
        assert_eq!(prev, 17);
        assert_eq!(changes.len(), 3);
        assert_eq!(changes.iter().collect::<Vec<_>>(), events[..3]);
        // A trailing newline is allowed; a revision with no change parses.
        let trailing = parse_notice(b"rev c1 42 1700 17\nset a: 1\n").expect("trailing newline");
        assert!(matches!(trailing.event, Event::Revision { changes, .. } if changes.len() == 1));
        let bare = parse_notice(b"rev c1 42 1700 17").expect("no changes");
        assert!(matches!(bare.event, Event::Revision { changes, .. } if changes.is_empty()));
    }

    #[test]
    fn a_malformed_revision_is_refused_whole() {
        for frame in [
            "rev c1 42 1700",                          // no previous number
            "rev c1 42 1700 x\nset a: 1",              // not a number
            "rev c1 42 1700 42\nset a: 1",             // not before its own
            "rev c1 42 1700 50\nset a: 1",             // after its own
            "rev c1 42 1700 17\nset a 1",              // a set without a colon
            "rev c1 42 1700 17\nset a: 1\ndel gone a", // an unknown reason
            "rev c1 42 1700 17\nset a: 1\n\nset b: 2", // an empty line between
            "rev c1 42 1700 17\nput a: 1",             // an unknown change
            "rev c1 42 1700 17 9\nset a: 1",           // a word too many
        ] {
            assert!(
                matches!(
                    parse_notice(frame.as_bytes()),
                    Err(ProtocolError::Malformed { .. })
                ),
                "{frame:?}"
            );
        }
    }

    #[test]
    fn a_stale_heartbeat_says_since_when_and_still_reads_as_a_heartbeat() {
        let mut out = Vec::new();
        encode_stale_heartbeat(&mut out, "etcd-1-2", 40, 1_000, 900);
        assert_eq!(out, b"hb etcd-1-2 40 1000 stale 900");
        assert_eq!(heartbeat_stale_since(&out), Some(900));
        let notice = parse_notice(&out).expect("a heartbeat");
        assert_eq!((notice.seq, notice.event), (40, Event::Heartbeat));
        assert_eq!(heartbeat_stale_since(b"hb e 40 1000"), None);
        assert_eq!(heartbeat_stale_since(b"set e 40 1000 stale: 900"), None);
        assert_eq!(heartbeat_stale_since(b"hb e 40 1000 stale x"), None);
    }
}
