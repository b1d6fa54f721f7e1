//! A whole state file's bytes replayed as the server does on start, with and
//! without `--repair`. Whatever the bytes, replay ends with a decision that
//! holds for them: a fresh file only for a torn header, the clean end only
//! before zeros, a torn tail or damage within the data, a board of valid
//! lines; and `--repair` changes only what a refusal would have refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use status_board::fuzz_api::{ReplayEnd, replay};
use status_board::protocol::{check_stored_name, parse_board};
use status_board::storage::{MAGIC, StorageError};

const MAX_ENTRIES: usize = 1000;

fuzz_target!(|data: &[u8]| {
    let plain = replay(data, false, MAX_ENTRIES);
    let repaired = replay(data, true, MAX_ENTRIES);
    for run in [&plain, &repaired] {
        let board = std::str::from_utf8(&run.board).expect("a board is UTF-8");
        let entries = parse_board(board).expect("a replayed board parses");
        assert_eq!(entries.len(), run.entries);
        for entry in &entries {
            assert!(check_stored_name(&entry.name).is_ok() && entry.name != "_");
        }
        match &run.end {
            Ok(ReplayEnd::Fresh) => assert!(data.len() < MAGIC.len() && MAGIC.starts_with(data)),
            Ok(ReplayEnd::Whole(len)) => {
                let len = *len as usize;
                assert!(len >= MAGIC.len() && len <= data.len());
                assert!(
                    data[len..].iter().all(|&b| b == 0),
                    "only zeros after the end"
                );
                assert!(run.warnings.is_empty());
            }
            Ok(ReplayEnd::TornAt(len)) => {
                let len = *len as usize;
                assert!(len >= MAGIC.len() && len < data.len());
                assert_eq!(run.warnings.len(), 1);
            }
            Ok(ReplayEnd::Repaired) => assert!(!run.warnings.is_empty()),
            Err(StorageError::NotAStateFile { .. }) => assert!(!data.starts_with(MAGIC)),
            Err(StorageError::Damaged {
                offset, next_valid, ..
            }) => {
                assert!(*offset as usize >= MAGIC.len() && offset < next_valid);
                assert!((*next_valid as usize) < data.len());
            }
            Err(other) => panic!("replay of bytes failed otherwise: {other}"),
        }
    }
    match &plain.end {
        Err(StorageError::Damaged { .. }) => {
            assert!(matches!(repaired.end, Ok(ReplayEnd::Repaired)))
        }
        Ok(ReplayEnd::Repaired) => panic!("repaired without --repair"),
        Ok(end) => {
            assert_eq!(
                repaired.end.as_ref().ok(),
                Some(end),
                "--repair changes nothing here"
            );
            assert_eq!(repaired.board, plain.board);
        }
        Err(_) => assert!(repaired.end.is_err()),
    }
});
