//! Snapshots: the board with ages, its sequence number and its publisher
//! (`_:@board`, `_:@since`), and the replies to extension requests.

use super::board::{Reply, parse_reply};
use super::{Entry, ProtocolError, SNAPSHOT_MAGIC, UNCHANGED_PREFIX, as_text, split_entry};

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
    /// Since when (ms since the Unix epoch, the server's clock) a gateway of
    /// a cluster cannot reach a quorum of its store: its board may be old.
    /// `None` while it can, and from a single server.
    pub stale_since_ms: Option<u64>,
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
    if let Some(since) = header.stale_since_ms {
        let _ = writeln!(out, "stale {since}");
    }
    out.push(b'\n');
}

/// Appends one snapshot entry line, `SET_AT_MS NAME STATUS\n`.
#[cfg(any(test, fuzzing))]
pub fn encode_timed_entry(out: &mut Vec<u8>, set_at_ms: u64, name: &str, status: &str) {
    use std::io::Write;
    let _ = writeln!(out, "{set_at_ms} {name}{status}");
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
fn parse_snapshot(text: &str) -> Result<Snapshot, ProtocolError> {
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
            "stale" => header.stale_since_ms = Some(number(line, value)?),
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

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn a_stale_gateways_header_says_since_when_after_its_ttl() {
        let header = SnapshotHeader {
            epoch: "c1".into(),
            seq: 9,
            now_ms: 2_000,
            publish: vec![],
            ttl_ms: Some(60_000),
            stale_since_ms: Some(1_500),
        };
        let mut out = Vec::new();
        encode_snapshot_header(&mut out, &header);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "status-board 1\nepoch c1\nseq 9\nnow 2000\nttl 60000\nstale 1500\n\n"
        );
        let Ok(ExtendedReply::Snapshot(parsed)) = parse_extended_reply(&out) else {
            panic!("a snapshot");
        };
        assert_eq!(parsed.header, header);
        let bad = b"status-board 1\nepoch c1\nseq 9\nstale soon\n\n";
        assert!(parse_extended_reply(bad).is_err(), "not a number");
    }
}
