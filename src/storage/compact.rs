//! What a compaction writes: the live records the caller gives (the
//! store's board), one per entry, as a fresh log beside the old one.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::StorageError;
use super::files::create_private;
use super::record::{FIXED_PAYLOAD, MAGIC, RECORD_HEADER, Record, encode_record};

/// What a compaction writes: the live records, one per entry, in the order
/// a replay must apply them. The store gives its board; storage knows
/// records only.
pub(crate) trait Live {
    /// How many records.
    fn count(&self) -> usize;
    /// Bytes of their names and statuses together.
    fn text_bytes(&self) -> usize;
    /// The records, in order.
    fn records(&self) -> impl Iterator<Item = Record<'_>>;
}

/// Size of the log that compaction would write for `live`.
pub(super) fn compacted_size(live: &impl Live) -> u64 {
    (MAGIC.len() + live.count() * (RECORD_HEADER + FIXED_PAYLOAD) + live.text_bytes()) as u64
}

/// Writes `live` as a fresh log at `path` and forces it to disk; returns
/// the file, open for the appends that follow, and its length.
pub(super) fn write_snapshot(path: &Path, live: &impl Live) -> Result<(File, u64), StorageError> {
    let mut data = Vec::with_capacity(usize::try_from(compacted_size(live)).unwrap_or(0));
    data.extend_from_slice(MAGIC);
    for record in live.records() {
        encode_record(&mut data, &record)?;
    }
    // O_EXCL: a file or a link planted at `path` is refused, never written.
    let mut file = create_private(path)?;
    let written = file
        .write_all(&data)
        .map_err(|source| StorageError::Write {
            path: path.to_owned(),
            source,
        })
        .and_then(|()| {
            file.sync_all().map_err(|source| StorageError::Sync {
                path: path.to_owned(),
                source,
            })
        });
    if let Err(e) = written {
        // Made by create_private above; a link swapped in since loses only itself.
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok((file, data.len() as u64))
}
