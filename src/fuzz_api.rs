//! What the fuzz targets in `fuzz/` call beyond the public API: the parsers
//! of bytes from outside that are private to the crate (state-file records
//! and replay, the users file without its decoy hash, CURVE key files).
//! Built only under `--cfg fuzzing`; `docs/FUZZING.md` says how it is used.
//! Thin wrappers only: the code fuzzed is the code that runs.

use std::collections::HashMap;
use std::path::Path;

use crate::board::Board;
use crate::curve::KeyPair;
use crate::server::auth::{User, Users, UsersError};
use crate::storage::{self, DecodeError, RecordKind, StorageError};

/// A state-file record, as [`decode_record`] read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord<'a> {
    /// A removal rather than a set.
    pub remove: bool,
    /// The name set or removed.
    pub name: &'a str,
    /// The status with its leading `:`; empty for a removal.
    pub status: &'a str,
    /// Set: when. Remove: the latest set time that goes.
    pub at_ms: u64,
}

/// The record at the start of `data`, and its size.
pub fn decode_record(data: &[u8]) -> Result<(StoredRecord<'_>, usize), DecodeError> {
    storage::decode(data).map(|(record, size)| {
        let stored = StoredRecord {
            remove: record.kind == RecordKind::Remove,
            name: record.name,
            status: record.status,
            at_ms: record.set_at_ms,
        };
        (stored, size)
    })
}

/// `record` encoded as the log writes it.
pub fn encode_record(record: &StoredRecord<'_>) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::new();
    match record.remove {
        true => storage::encode_remove(&mut out, record.name, record.at_ms)?,
        false => storage::encode_set(&mut out, record.name, record.status, record.at_ms)?,
    }
    Ok(out)
}

/// Where the next valid record starts, at or after `from`.
pub fn resync(data: &[u8], from: usize) -> Option<usize> {
    storage::resync(data, from)
}

/// How a replay of a whole state file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayEnd {
    /// Empty or a torn header: a new file.
    Fresh,
    /// Every byte good; this many.
    Whole(u64),
    /// A torn last record: the file is cut back to this length.
    TornAt(u64),
    /// Damage skipped under `--repair`.
    Repaired,
}

/// What a replay did: how it ended, the board it left, what it warned.
#[derive(Debug)]
pub struct Replay {
    /// How it ended, or why the file is refused.
    pub end: Result<ReplayEnd, StorageError>,
    /// The board as a reply: one `- NAME STATUS\n` line per entry.
    pub board: Vec<u8>,
    /// Its entries.
    pub entries: usize,
    /// The warnings for the start-up message.
    pub warnings: Vec<String>,
}

/// Replays the bytes of a whole state file onto an empty board of at most
/// `max_entries` names, as the server does on start.
pub fn replay(data: &[u8], repair: bool, max_entries: usize) -> Replay {
    let mut board = Board::new(max_entries);
    let mut warnings = Vec::new();
    let mut records = storage::Replay::new(Path::new("state.log"), data, repair, &mut warnings);
    crate::store::restore(&mut board, &mut records);
    let end = records.finish().map(|replayed| match replayed {
        storage::Replayed::Fresh => ReplayEnd::Fresh,
        storage::Replayed::Whole(len) => ReplayEnd::Whole(len),
        storage::Replayed::TornAt(len) => ReplayEnd::TornAt(len),
        storage::Replayed::Repaired => ReplayEnd::Repaired,
    });
    Replay {
        end,
        board: board.shared_reply().to_vec(),
        entries: board.len(),
        warnings,
    }
}

/// The users of a users file's text, checked line by line, without the
/// decoy hash that makes [`Users::parse`] take a tenth of a second.
pub fn parse_users(text: &str) -> Result<HashMap<String, User>, UsersError> {
    Users::parse_lines(Path::new("users"), text).map(|(users, _cost)| users)
}

/// A CURVE key pair from its file's text.
pub fn parse_key_pair(text: &str) -> Result<KeyPair, String> {
    KeyPair::parse(text)
}

/// A key in Z85, as a key file holds it.
pub fn encode_key(key: &[u8; 32]) -> String {
    KeyPair {
        public: *key,
        secret: [0; 32],
    }
    .public_z85()
}
