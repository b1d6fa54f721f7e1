//! Replay on start: the file's records in order, for the caller to apply,
//! and a decision about any bytes that are not a record (preallocated zeros,
//! a torn tail, damage).
//!
//! An iterator over the file's bytes, as fjall's journal reader is: storage
//! knows records only, and the store applies them to its board. Unlike
//! fjall's, a refused file is not an item: [`Replay::finish`] returns the
//! refusal with the decision about the file, which the log needs to go on,
//! so no caller can take a refused file for a whole one.

use std::path::Path;

use super::StorageError;
use super::record::{MAGIC, RECORD_HEADER, Record, decode, resync};

/// How replay left the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// What a file holds at most, read from its records' length fields alone:
/// enough to size a table before any record is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    /// Records, at most (damage skipped under `--repair` may hide a few more).
    pub(crate) records: usize,
    /// Bytes of the file.
    pub(crate) bytes: usize,
}

/// The records of a state file's bytes, in order; then [`Replay::finish`].
#[derive(Debug)]
pub(crate) struct Replay<'a> {
    path: &'a Path,
    data: &'a [u8],
    repair: bool,
    /// Where the next record starts.
    offset: usize,
    /// Damage was skipped (`--repair`).
    repaired: bool,
    /// Things the user should know: a torn tail dropped, damage skipped.
    warnings: &'a mut Vec<String>,
    /// Set once the records have ended: how, or why the file is refused.
    end: Option<Result<Replayed, StorageError>>,
}

impl<'a> Replay<'a> {
    /// The records of `data`, the bytes of the file at `path`; under
    /// `repair`, damage is skipped rather than refused. Warnings go to
    /// `warnings`.
    pub(crate) fn new(
        path: &'a Path,
        data: &'a [u8],
        repair: bool,
        warnings: &'a mut Vec<String>,
    ) -> Replay<'a> {
        let end = if data.len() < MAGIC.len() && MAGIC.starts_with(data) {
            // Empty, or a crash while the header itself was being written.
            Some(Ok(Replayed::Fresh))
        } else if !data.starts_with(MAGIC) {
            Some(Err(StorageError::NotAStateFile {
                path: path.to_owned(),
            }))
        } else {
            None
        };
        Replay {
            path,
            data,
            repair,
            offset: MAGIC.len(),
            repaired: false,
            warnings,
            end,
        }
    }

    /// How many records the file holds at most, walking their length fields
    /// only: a caller sizes its table with it before applying any, so that
    /// it does not grow step by step.
    pub(crate) fn extent(&self) -> Extent {
        let mut records = 0usize;
        if self.end.is_none() {
            let mut offset = MAGIC.len();
            while let Some(len) = self.data.get(offset..offset + 4) {
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                if len == 0 {
                    break; // preallocated zeros
                }
                records += 1;
                offset = offset.saturating_add(RECORD_HEADER + len);
            }
        }
        Extent {
            records,
            bytes: self.data.len(),
        }
    }

    /// How the file ended, or why it is refused (not a state file; damage
    /// without `--repair`). Records not taken yet are read past first: the
    /// decision is about the whole file.
    pub(crate) fn finish(mut self) -> Result<Replayed, StorageError> {
        loop {
            if let Some(end) = self.end.take() {
                return end;
            }
            let _ = self.next();
        }
    }

    /// Where [`Replay::next`] found no record: the end, or bytes that are
    /// not a record (preallocated zeros, a torn tail, damage to skip or refuse).
    #[cold]
    fn past_a_record(&mut self) -> Option<Record<'a>> {
        if self.end.is_some() {
            return None;
        }
        let data = self.data;
        while self.offset < data.len() {
            let offset = self.offset;
            match decode(&data[offset..]) {
                Ok((record, size)) => {
                    self.offset += size;
                    return Some(record);
                }
                // Preallocated zeros after the last record: the clean end of the log.
                Err(_) if data[offset..].iter().all(|&b| b == 0) => break,
                Err(reason) => match resync(data, offset + 1) {
                    None => {
                        self.warnings.push(format!(
                            "dropped a torn last record at byte offset {offset} of {} ({} bytes, {reason}): \
                             the server stopped in the middle of writing it, before acknowledging it",
                            self.path.display(),
                            data.len() - offset
                        ));
                        return self.ended(Ok(match self.repaired {
                            true => Replayed::Repaired,
                            false => Replayed::TornAt(offset as u64),
                        }));
                    }
                    Some(next) if self.repair => {
                        self.warnings.push(format!(
                            "skipped damaged bytes {offset}..{next} of {} ({reason})",
                            self.path.display()
                        ));
                        self.repaired = true;
                        self.offset = next;
                    }
                    Some(next) => {
                        return self.ended(Err(StorageError::Damaged {
                            path: self.path.to_owned(),
                            offset: offset as u64,
                            reason,
                            next_valid: next as u64,
                        }));
                    }
                },
            }
        }
        let end = match self.repaired {
            true => Replayed::Repaired,
            false => Replayed::Whole(self.offset as u64),
        };
        self.ended(Ok(end))
    }

    /// Records have ended: how.
    fn ended(&mut self, end: Result<Replayed, StorageError>) -> Option<Record<'a>> {
        self.end = Some(end);
        None
    }
}

impl<'a> Iterator for Replay<'a> {
    type Item = Record<'a>;

    /// The next record; small enough to inline into the caller's loop,
    /// which a replay of a million records spends its time in.
    #[inline]
    fn next(&mut self) -> Option<Record<'a>> {
        if self.end.is_none()
            && let Some(rest) = self.data.get(self.offset..)
            && let Ok((record, size)) = decode(rest)
        {
            self.offset += size;
            return Some(record);
        }
        self.past_a_record()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::record::tests::{bytes_hashed, record};
    use crate::storage::record::{RecordKind, encode_remove};

    fn log_file(records: &[Vec<u8>]) -> Vec<u8> {
        let mut data = MAGIC.to_vec();
        for r in records {
            data.extend_from_slice(r);
        }
        data
    }

    fn removal(name: &str, set_by_ms: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_remove(&mut out, name, set_by_ms).unwrap();
        out
    }

    /// What replay yields for `data`: its records as `NAME STATUS @AT` or
    /// `-NAME @AT`, how it ended, and its warnings.
    fn replay_bytes(
        data: &[u8],
        repair: bool,
    ) -> (Vec<String>, Result<Replayed, StorageError>, Vec<String>) {
        let mut warnings = Vec::new();
        let mut replay = Replay::new(Path::new("state.log"), data, repair, &mut warnings);
        let records = replay
            .by_ref()
            .map(|r| match r.kind {
                RecordKind::Set => format!("{}{} @{}", r.name, r.status, r.set_at_ms),
                RecordKind::Remove => format!("-{} @{}", r.name, r.set_at_ms),
            })
            .collect();
        let end = replay.finish();
        (records, end, warnings)
    }

    #[test]
    fn records_come_in_file_order_with_their_kind_and_time() {
        let data = log_file(&[
            record("alice", ": 1", 10),
            removal("bob", 20),
            record("carol", ": 3", 30),
        ]);
        let (records, end, warnings) = replay_bytes(&data, false);
        assert_eq!(records, ["alice: 1 @10", "-bob @20", "carol: 3 @30"]);
        assert!(matches!(end, Ok(Replayed::Whole(len)) if len == data.len() as u64));
        assert!(warnings.is_empty());
    }

    #[test]
    fn the_extent_counts_records_by_their_length_fields() {
        let mut data = log_file(&[record("a", ": 1", 1), removal("a", 1)]);
        data.extend_from_slice(&[0; 4096]);
        let mut warnings = Vec::new();
        let replay = Replay::new(Path::new("state.log"), &data, false, &mut warnings);
        assert_eq!(
            replay.extent(),
            Extent {
                records: 2,
                bytes: data.len()
            }
        );
    }

    #[test]
    fn finish_reads_past_records_not_taken() {
        let (data, _) = damaged_in_the_middle();
        let mut warnings = Vec::new();
        let replay = Replay::new(Path::new("state.log"), &data, false, &mut warnings);
        assert!(matches!(replay.finish(), Err(StorageError::Damaged { .. })));
    }

    #[test]
    fn a_torn_tail_is_dropped_with_a_warning() {
        let whole = log_file(&[record("a", ": 1", 1), record("b", ": 2", 2)]);
        let torn = &whole[..whole.len() - 3];
        let (records, end, warnings) = replay_bytes(torn, false);
        let cut = (MAGIC.len() + record("a", ": 1", 1).len()) as u64;
        assert!(matches!(end, Ok(Replayed::TornAt(len)) if len == cut));
        assert_eq!(records, ["a: 1 @1"]);
        assert!(warnings[0].contains("torn"), "{warnings:?}");
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
        let (records, result, warnings) = replay_bytes(&data, false);
        assert!(matches!(result, Ok(Replayed::Whole(len)) if len == end));
        assert_eq!(records, ["a: 1 @1"]);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_torn_record_before_the_zeros_is_still_torn() {
        let mut data = log_file(&[record("a", ": 1", 1)]);
        let end = data.len() as u64;
        data.extend_from_slice(&record("b", ": 2", 2)[..10]);
        data.extend_from_slice(&[0; 4096]);
        let (_, result, warnings) = replay_bytes(&data, false);
        assert!(matches!(result, Ok(Replayed::TornAt(len)) if len == end));
        assert!(warnings[0].contains("torn"));
    }

    #[test]
    fn damage_before_valid_records_is_refused_with_its_offset() {
        let (data, second) = damaged_in_the_middle();
        let (_, result, _) = replay_bytes(&data, false);
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
        let (records, result, warnings) = replay_bytes(&data, true);
        assert!(matches!(result, Ok(Replayed::Repaired)));
        assert_eq!(records, ["a: 1 @1", "c: 3 @3"]);
        assert!(warnings[0].contains("skipped damaged bytes"));
    }

    /// A valid record, 4 MiB crafted so that one offset in four claims a
    /// length of 1 MiB that fits (`00 00 10 00` repeated), a valid record.
    fn crafted_to_claim_long_records() -> (Vec<u8>, usize, usize) {
        let mut data = log_file(&[record("a", ": 1", 1)]);
        let damage = data.len();
        data.extend_from_slice(&[0, 0, 0x10, 0].repeat(1 << 20));
        let next = data.len();
        data.extend_from_slice(&record("b", ": 2", 2));
        (data, damage, next)
    }

    #[test]
    fn crafted_damage_is_refused_after_hashing_little_more_than_the_records() {
        let (data, damage, next) = crafted_to_claim_long_records();
        let mut result = None;
        let hashed = bytes_hashed(|| result = Some(replay_bytes(&data, false).1));
        match result {
            Some(Err(StorageError::Damaged {
                offset, next_valid, ..
            })) => assert_eq!((offset, next_valid), (damage as u64, next as u64)),
            other => panic!("expected Damaged, got {other:?}"),
        }
        // Before resync checked the cheap fields first, this was about
        // 2^20 offsets times up to 1 MiB each.
        assert!(hashed < 1024, "{hashed} bytes hashed for {}", data.len());
    }

    #[test]
    fn crafted_damage_is_repaired_after_hashing_little_more_than_the_records() {
        let (data, damage, next) = crafted_to_claim_long_records();
        let mut replayed = None;
        let hashed = bytes_hashed(|| replayed = Some(replay_bytes(&data, true)));
        let (records, result, warnings) = replayed.expect("replayed");
        assert!(matches!(result, Ok(Replayed::Repaired)), "{result:?}");
        assert_eq!(records, ["a: 1 @1", "b: 2 @2"]);
        assert!(
            warnings[0].contains(&format!("skipped damaged bytes {damage}..{next}")),
            "{warnings:?}"
        );
        assert!(hashed < 1024, "{hashed} bytes hashed for {}", data.len());
    }

    #[test]
    fn a_foreign_file_is_refused_before_any_record() {
        let (records, result, _) = replay_bytes(b"hello, this is my diary\n", false);
        assert!(records.is_empty());
        assert!(matches!(result, Err(StorageError::NotAStateFile { .. })));
    }

    #[test]
    fn a_torn_header_starts_fresh() {
        let (_, result, _) = replay_bytes(&MAGIC[..3], false);
        assert!(matches!(result, Ok(Replayed::Fresh)));
    }
}
