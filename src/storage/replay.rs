//! Replay on start: every record applied to the board, and a decision about
//! any bytes that are not a record (preallocated zeros, a torn tail, damage).

use std::path::Path;

use crate::board::Board;
use crate::protocol::Removal;

use super::record::{MAGIC, RECORD_HEADER, RecordKind, decode, resync};
use super::{OpenReport, StorageError};

/// How replay left the file.
#[derive(Debug)]
pub(crate) enum Replayed {
    /// No file, or an empty one: write the header.
    Fresh,
    /// Every byte was good; this many.
    Whole(u64),
    /// A torn last record: cut the file back to this length.
    TornAt(u64),
    /// Damage was skipped under `--repair`: move the file aside, write the board.
    Repaired,
}

/// Sizes `board` for the records in `data`: their number (walking the
/// length fields only) bounds the names, and their bytes the board's lines
/// (a line is shorter than its record).
fn reserve_for(data: &[u8], board: &mut Board) {
    let mut records = 0usize;
    let mut offset = MAGIC.len();
    while let Some(len) = data.get(offset..offset + 4) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len == 0 {
            break; // preallocated zeros
        }
        records += 1;
        offset = offset.saturating_add(RECORD_HEADER + len);
    }
    let names = records.min(board.max_entries());
    let bytes = data.len() / records.max(1) * names;
    board.reserve(names, bytes);
}

/// Applies every record in `data` to `board`, deciding what the bad bytes are.
pub(crate) fn replay(
    path: &Path,
    data: &[u8],
    repair: bool,
    board: &mut Board,
    report: &mut OpenReport,
) -> Result<Replayed, StorageError> {
    if data.len() < MAGIC.len() && MAGIC.starts_with(data) {
        // Empty, or a crash while the header itself was being written.
        return Ok(Replayed::Fresh);
    }
    if !data.starts_with(MAGIC) {
        return Err(StorageError::NotAStateFile {
            path: path.to_owned(),
        });
    }
    reserve_for(data, board);
    let mut offset = MAGIC.len();
    let mut repaired = false;
    while offset < data.len() {
        match decode(&data[offset..]) {
            Ok((record, size)) => {
                match record.kind {
                    RecordKind::Set => {
                        board.apply_set(record.name, record.status, record.set_at_ms);
                    }
                    RecordKind::Remove => {
                        // Why it went is not kept: nobody is told about a replay.
                        board.remove(record.name, record.set_at_ms, Removal::Cleared, 0);
                    }
                }
                offset += size;
            }
            // Preallocated zeros after the last record: the clean end of the log.
            Err(_) if data[offset..].iter().all(|&b| b == 0) => break,
            Err(reason) => match resync(data, offset + 1) {
                None => {
                    report.warnings.push(format!(
                        "dropped a torn last record at byte offset {offset} of {} ({} bytes, {reason}): \
                         the server stopped in the middle of writing it, before acknowledging it",
                        path.display(),
                        data.len() - offset
                    ));
                    if repaired {
                        return Ok(Replayed::Repaired);
                    }
                    return Ok(Replayed::TornAt(offset as u64));
                }
                Some(next) if repair => {
                    report.warnings.push(format!(
                        "skipped damaged bytes {offset}..{next} of {} ({reason})",
                        path.display()
                    ));
                    repaired = true;
                    offset = next;
                }
                Some(next) => {
                    return Err(StorageError::Damaged {
                        path: path.to_owned(),
                        offset: offset as u64,
                        reason,
                        next_valid: next as u64,
                    });
                }
            },
        }
    }
    Ok(if repaired {
        Replayed::Repaired
    } else {
        Replayed::Whole(offset as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::record::encode_remove;
    use crate::storage::record::tests::record;

    fn log_file(records: &[Vec<u8>]) -> Vec<u8> {
        let mut data = MAGIC.to_vec();
        for r in records {
            data.extend_from_slice(r);
        }
        data
    }

    fn replay_bytes(
        data: &[u8],
        repair: bool,
    ) -> (Result<Replayed, StorageError>, Board, OpenReport) {
        let mut board = Board::new(100);
        let mut report = OpenReport::default();
        let result = replay(
            Path::new("state.log"),
            data,
            repair,
            &mut board,
            &mut report,
        );
        (result, board, report)
    }

    #[test]
    fn remove_records_replay_in_order_with_their_cutoff() {
        let mut removal = Vec::new();
        encode_remove(&mut removal, "bob", 20).unwrap();
        let (decoded, _) = decode(&removal).unwrap();
        assert_eq!(decoded.kind, RecordKind::Remove);
        let data = log_file(&[
            record("alice", ": 1", 10),
            record("bob", ": 2", 20),
            record("carol", ": 3", 30),
            removal,
            // Expired on its status of time 30, but refreshed before that was stored.
            record("carol", ": 4", 40),
            {
                let mut out = Vec::new();
                encode_remove(&mut out, "carol", 30).unwrap();
                out
            },
            {
                let mut out = Vec::new();
                encode_remove(&mut out, "alice", 10).unwrap();
                out
            },
        ]);
        let (result, board, _) = replay_bytes(&data, false);
        assert!(result.is_ok());
        assert_eq!(board.encoded(), b"- carol: 4\n");
    }

    #[test]
    fn a_torn_tail_is_dropped_with_a_warning() {
        let whole = log_file(&[record("a", ": 1", 1), record("b", ": 2", 2)]);
        let torn = &whole[..whole.len() - 3];
        let (result, board, report) = replay_bytes(torn, false);
        let cut = (MAGIC.len() + record("a", ": 1", 1).len()) as u64;
        assert!(matches!(result, Ok(Replayed::TornAt(len)) if len == cut));
        assert_eq!(board.encoded(), b"- a: 1\n");
        assert!(report.warnings[0].contains("torn"), "{:?}", report.warnings);
    }

    /// Three records, the second with a flipped bit; and where the second starts.
    fn damaged_in_the_middle() -> (Vec<u8>, usize) {
        let mut data = log_file(&[
            record("a", ": 1", 1),
            record("b", ": 2", 2),
            record("c", ": 3", 3),
        ]);
        let second = MAGIC.len() + record("a", ": 1", 1).len();
        data[second + 12] ^= 0x40;
        (data, second)
    }

    #[test]
    fn preallocated_zeros_end_the_log_without_a_warning() {
        let mut data = log_file(&[record("a", ": 1", 1)]);
        let end = data.len() as u64;
        data.extend_from_slice(&[0; 4096]);
        let (result, board, report) = replay_bytes(&data, false);
        assert!(matches!(result, Ok(Replayed::Whole(len)) if len == end));
        assert_eq!(board.encoded(), b"- a: 1\n");
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }

    #[test]
    fn a_torn_record_before_the_zeros_is_still_torn() {
        let mut data = log_file(&[record("a", ": 1", 1)]);
        let end = data.len() as u64;
        data.extend_from_slice(&record("b", ": 2", 2)[..10]);
        data.extend_from_slice(&[0; 4096]);
        let (result, _, report) = replay_bytes(&data, false);
        assert!(matches!(result, Ok(Replayed::TornAt(len)) if len == end));
        assert!(report.warnings[0].contains("torn"));
    }

    #[test]
    fn damage_before_valid_records_is_refused_with_its_offset() {
        let (data, second) = damaged_in_the_middle();
        let (result, _, _) = replay_bytes(&data, false);
        match result {
            Err(StorageError::Damaged {
                offset, next_valid, ..
            }) => {
                assert_eq!(offset, second as u64);
                assert_eq!(next_valid as usize, second + record("b", ": 2", 2).len());
            }
            other => panic!("expected Damaged, got {other:?}"),
        }
    }

    #[test]
    fn repair_keeps_every_valid_record() {
        let (data, _) = damaged_in_the_middle();
        let (result, board, report) = replay_bytes(&data, true);
        assert!(matches!(result, Ok(Replayed::Repaired)));
        assert_eq!(board.encoded(), b"- a: 1\n- c: 3\n");
        assert!(report.warnings[0].contains("skipped damaged bytes"));
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let (result, _, _) = replay_bytes(b"hello, this is my diary\n", false);
        assert!(matches!(result, Err(StorageError::NotAStateFile { .. })));
    }

    #[test]
    fn a_torn_header_starts_fresh() {
        let (result, _, _) = replay_bytes(&MAGIC[..3], false);
        assert!(matches!(result, Ok(Replayed::Fresh)));
    }
}
