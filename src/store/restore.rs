//! The board restored from its state file: the records a replay yields,
//! applied in order; and the board as the live records a compaction writes.

use std::path::Path;

use crate::board::{Board, names};
use crate::protocol::Removal;
use crate::storage::{
    Live, Log, Opening, Record, RecordKind, Replay, StorageError, StorageOptions,
};

/// What opening the state found, for the start-up message.
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenReport {
    /// Entries on the restored board.
    pub(crate) restored: usize,
    /// Things the user should know: a torn tail dropped, a repair done.
    pub(crate) warnings: Vec<String>,
}

/// What a compaction writes: the board, one set record per entry, in order.
impl Live for Board {
    fn count(&self) -> usize {
        self.len()
    }

    fn text_bytes(&self) -> usize {
        self.content_bytes()
    }

    fn records(&self) -> impl Iterator<Item = Record<'_>> {
        self.iter()
            .map(|entry| Record::set(entry.name, entry.status, entry.set_at_ms))
    }
}

/// Applies the records a replay yields to `board`, in order. The board is
/// sized first from the records' length fields: growing its table step by
/// step would read every name again, from all over memory.
pub(crate) fn restore(board: &mut Board, replay: &mut Replay<'_>) {
    let extent = replay.extent();
    // A name's line is shorter than its record: the file's bytes bound the lines'.
    let names = extent.records.min(board.max_entries());
    board.reserve(names, extent.bytes / extent.records.max(1) * names);
    for record in replay {
        match record.kind {
            RecordKind::Set => board.apply_set(record.name, record.status, record.set_at_ms),
            RecordKind::Remove => {
                // Why it went is not kept: nobody is told about a replay.
                board.remove(record.name, record.set_at_ms, Removal::Cleared, 0);
            }
        }
    }
}

/// The board kept at `path`, its log open for appends, and what opening found.
pub(super) fn open(
    path: &Path,
    options: &StorageOptions,
    max_entries: usize,
) -> Result<(Board, Log, OpenReport), StorageError> {
    let mut opening = Opening::start(path, options)?;
    let mut board = Board::new(max_entries);
    let mut replay = opening.replay();
    restore(&mut board, &mut replay);
    let replayed = replay.finish()?;
    let opened = opening.finish(replayed, &board)?;
    let mut warnings = opened.warnings;
    if let Some(moved) = opened.damaged_moved_to {
        warnings.push(format!(
            "moved the damaged file to {}; {} kept",
            moved.display(),
            names(board.len())
        ));
    }
    let report = OpenReport {
        restored: board.len(),
        warnings,
    };
    Ok((board, opened.log, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Fsync, MAGIC, encode_remove, encode_set};

    fn options(repair: bool) -> StorageOptions {
        StorageOptions {
            fsync: Fsync::No,
            compact_at: u64::MAX,
            repair,
        }
    }

    #[test]
    fn replayed_removals_take_only_a_status_set_by_their_cutoff() {
        let mut data = MAGIC.to_vec();
        let set = |data: &mut Vec<u8>, name, status, at| {
            encode_set(data, name, status, at).expect("record");
        };
        set(&mut data, "alice", ": 1", 10);
        set(&mut data, "carol", ": 3", 30);
        // Expired on its status of time 30, but refreshed before that was stored.
        set(&mut data, "carol", ": 4", 40);
        for (name, set_by_ms) in [("carol", 30), ("alice", 10)] {
            encode_remove(&mut data, name, set_by_ms).expect("record");
        }
        let mut board = Board::new(10);
        let mut warnings = Vec::new();
        let mut replay = Replay::new(Path::new("board.log"), &data, false, &mut warnings);
        restore(&mut board, &mut replay);
        assert!(replay.finish().is_ok());
        assert_eq!(board.encoded(), b"- carol: 4\n");
    }

    #[test]
    fn a_repair_says_where_the_damaged_file_went_and_how_many_names_were_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("board.log");
        let mut data = MAGIC.to_vec();
        for (name, status) in [("a", ": 1"), ("b", ": 2"), ("c", ": 3")] {
            encode_set(&mut data, name, status, 1).expect("record");
        }
        let b = data.windows(4).position(|w| w == b"b: 2").expect("b");
        data[b + 3] ^= 1;
        std::fs::write(&path, &data).expect("write");
        let (board, _log, report) = open(&path, &options(true), 10).expect("repaired");
        assert_eq!(board.encoded(), b"- a: 1\n- c: 3\n");
        assert_eq!(report.restored, 2);
        let moved = report.warnings.last().expect("warnings");
        assert!(
            moved.starts_with("moved the damaged file to ") && moved.ends_with("; 2 names kept"),
            "{moved}"
        );
    }
}
