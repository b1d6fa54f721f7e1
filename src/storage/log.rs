//! The open state file: appends, syncs and compactions.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::board::Board;

use super::faults::Faults;
use super::files::{
    FILE_MODE, create_private, ensure_free, identity, lock, make_private, open_private,
    remove_stale, require_dir, sibling, sync_dir,
};
use super::record::{FIXED_PAYLOAD, MAGIC, RECORD_HEADER, encode_remove, encode_set};
use super::replay::{Replayed, replay};
use super::syncer::Syncer;
use super::{Fsync, OpenReport, StorageError, StorageOptions};

/// How often `everysec` forces the log to disk.
const EVERYSEC: Duration = Duration::from_secs(1);

/// The state file grows by this much at a time, in written zeros, so that a
/// record overwrites allocated blocks: its fdatasync then flushes data only,
/// with no size change and no journal commit.
const PREALLOCATE: u64 = 1 << 20;

/// When a commit's records are durable, as its `--fsync` policy defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durable {
    /// Already: answer now.
    Now,
    /// Once [`Log::durable_offset`] reaches this offset.
    At(u64),
}

/// The open state file: appends, syncs and compactions.
#[derive(Debug)]
pub(crate) struct Log {
    path: PathBuf,
    /// Shared with the fsync thread, which syncs the file it is handed.
    file: Arc<File>,
    syncer: Option<Syncer>,
    /// Held for as long as the server runs; a second server cannot take it.
    _lock: File,
    options: StorageOptions,
    /// Bytes of records in the file, known good; zeros follow up to `allocated`.
    len: u64,
    /// Size of the file: records, then preallocated zeros.
    allocated: u64,
    /// Records staged by `stage_set`, written by `commit`.
    pending: Vec<u8>,
    /// Written but not yet forced to disk.
    unsynced: bool,
    last_sync: Instant,
    /// Do not consider compaction below this size (raised after a failed one).
    next_compaction: u64,
    broken: bool,
    /// The file the log writes to, as the file system knows it: if the path
    /// names another file (or none), the log is detached from its path.
    identity: (u64, u64),
    /// Preallocation failed (a nearly full disk): not tried again before the
    /// log reaches this size. Records are appended without it meanwhile.
    preallocate_from: u64,
    /// Faults injected by a test ([`super::faults`]).
    faults: Faults,
}

impl Log {
    /// Opens (or creates) the state file, locks it and replays it into `board`.
    pub(crate) fn open(
        path: &Path,
        options: &StorageOptions,
        board: &mut Board,
    ) -> Result<(Log, OpenReport), StorageError> {
        require_dir(path)?;
        let lock = lock(path)?;
        let mut report = OpenReport::default();
        let aside = sibling(path, ".compact");
        // A compaction that never reached its rename: the log is still whole.
        // A link there is refused, not removed: no compaction ever made one.
        if remove_stale(&aside)? {
            report.warnings.push(format!(
                "removed {} left by an interrupted compaction",
                aside.display()
            ));
        }
        // The file replayed is the file written to: one open, by descriptor.
        let (file, created) = open_private(path)?;
        let mut data = Vec::new();
        (&file)
            .read_to_end(&mut data)
            .map_err(|source| StorageError::Read {
                path: path.to_owned(),
                source,
            })?;
        let good_len = replay(path, &data, options.repair, board, &mut report)?;
        // Only now that it is known to be a state file: a file refused above
        // is left exactly as it was found.
        if let Some(mode) = make_private(path, &file)?
            && !created
        {
            report.warnings.push(format!(
                "{} had mode {mode:04o}; set it to {:04o}, so that no other user reads or writes the board",
                path.display(),
                FILE_MODE
            ));
        }
        let mut log = Log {
            path: path.to_owned(),
            file: Arc::new(file),
            syncer: None,
            _lock: lock,
            options: options.clone(),
            len: 0,
            allocated: data.len() as u64,
            pending: Vec::new(),
            unsynced: false,
            last_sync: Instant::now(),
            next_compaction: options.compact_at,
            broken: false,
            identity: (0, 0),
            preallocate_from: 0,
            faults: Faults::from_env(),
        };
        log.identity = identity(&log.file).map_err(|source| StorageError::Open {
            path: path.to_owned(),
            source,
        })?;
        match good_len {
            Replayed::Whole(len) => log.len = len,
            Replayed::TornAt(len) => {
                log.truncate_to(len)?;
                log.sync()?;
            }
            Replayed::Fresh => {
                // Drop a header torn by a crash at creation, then write it whole.
                log.truncate_to(0)?;
                log.file
                    .write_all_at(MAGIC, 0)
                    .map_err(|source| StorageError::Write {
                        path: path.to_owned(),
                        source,
                    })?;
                log.len = MAGIC.len() as u64;
                log.allocated = log.len;
                log.sync()?;
                sync_dir(path)?;
            }
            Replayed::Repaired => {
                let moved = sibling(path, &format!(".damaged-{}", crate::clock::now_ms()));
                // Renaming onto a name replaces what is there: nothing is.
                ensure_free(&moved)?;
                fs::rename(path, &moved).map_err(|source| StorageError::Write {
                    path: moved.clone(),
                    source,
                })?;
                report.warnings.push(format!(
                    "moved the damaged file to {}; {} kept",
                    moved.display(),
                    crate::board::names(board.len())
                ));
                log.compact(board)?;
            }
        }
        if options.fsync == Fsync::Always {
            let syncer = Syncer::start(Arc::clone(&log.file), log.len).map_err(|source| {
                StorageError::Open {
                    path: path.to_owned(),
                    source,
                }
            })?;
            log.syncer = Some(syncer);
        }
        report.restored = board.len();
        Ok((log, report))
    }

    /// Stages a set record; nothing is written until [`Log::commit`].
    pub(crate) fn stage_set(
        &mut self,
        name: &str,
        status: &str,
        set_at_ms: u64,
    ) -> Result<(), StorageError> {
        encode_set(&mut self.pending, name, status, set_at_ms)
    }

    /// Stages a remove record; nothing is written until [`Log::commit`].
    pub(crate) fn stage_remove(&mut self, name: &str, set_by_ms: u64) -> Result<(), StorageError> {
        encode_remove(&mut self.pending, name, set_by_ms)
    }

    /// Writes every staged record; under `--fsync always` starts forcing them to disk.
    ///
    /// On failure nothing staged counts: the file is cut back to where it was.
    pub(crate) fn commit(&mut self) -> Result<Durable, StorageError> {
        if self.pending.is_empty() {
            return Ok(Durable::Now);
        }
        if self.broken {
            self.pending.clear();
            return Err(StorageError::Broken {
                path: self.path.clone(),
            });
        }
        let staged = self.pending.len() as u64;
        let end = self.len + staged;
        if end > self.allocated && self.len >= self.preallocate_from {
            // An optimisation only: on a nearly full disk the records may still fit.
            if self.preallocate(end).is_err() {
                self.preallocate_from = self.len.saturating_add(PREALLOCATE);
            }
        }
        let written = self
            .file
            .write_all_at(&self.pending, self.len)
            .map_err(|source| StorageError::Write {
                path: self.path.clone(),
                source,
            });
        self.pending.clear();
        if let Err(err) = written {
            // A partial record would read as damage once more records follow it.
            let before = self.len;
            if self.truncate_to(before).is_err() {
                self.broken = true;
            }
            return Err(err);
        }
        self.len = end;
        self.allocated = self.allocated.max(end);
        self.unsynced = true;
        match &self.syncer {
            Some(syncer) => {
                syncer.request(self.len, &self.file);
                Ok(Durable::At(self.len))
            }
            None => Ok(Durable::Now),
        }
    }

    /// Everything before this offset is durable under the log's policy.
    pub(crate) fn durable_offset(&self) -> u64 {
        self.syncer.as_ref().map_or(self.len, Syncer::synced)
    }

    /// A descriptor that becomes readable after each sync (`--fsync always` only).
    pub(crate) fn sync_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.syncer.as_ref().map(|s| s.wake.as_raw_fd())
    }

    /// Takes the wake-ups of finished syncs; after a failed one nothing more is written.
    pub(crate) fn take_wakeups(&mut self) -> Result<(), StorageError> {
        let Some(syncer) = &mut self.syncer else {
            return Ok(());
        };
        syncer.take_wakeups().map_err(|source| {
            // What the kernel did with the unsynced pages is unknown: stop here.
            self.broken = true;
            StorageError::Sync {
                path: self.path.clone(),
                source,
            }
        })
    }

    /// Whether compaction should run once nothing is in flight.
    pub(crate) fn compaction_due(&self, board: &Board) -> bool {
        self.len > self.next_compaction && self.len > 2 * compacted_size(board)
    }

    /// Periodic duties: the `everysec` sync and compaction when due.
    ///
    /// Only when no committed record waits for its sync: those are not on the
    /// board yet, so a compaction would leave them out.
    pub(crate) fn maintain(&mut self, board: &Board) -> Result<(), StorageError> {
        if self.options.fsync == Fsync::EverySec
            && self.unsynced
            && self.last_sync.elapsed() >= EVERYSEC
        {
            self.sync()?;
        }
        if self.compaction_due(board) {
            if let Err(e) = self.compact(board) {
                // Keep appending to the whole log; try again when it has doubled.
                self.next_compaction = self.len.saturating_mul(2);
                return Err(StorageError::Compaction {
                    path: self.path.clone(),
                    source: Box::new(e),
                });
            }
            self.next_compaction = self.options.compact_at;
        }
        Ok(())
    }

    /// Forces everything written so far to disk.
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
        self.file.sync_data().map_err(|source| StorageError::Sync {
            path: self.path.clone(),
            source,
        })?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Rewrites the log as one record per entry: aside, synced, renamed over.
    ///
    /// The rename replaces whatever the path names now, a symbolic link
    /// included: the link itself, never its target.
    ///
    /// A crash before the rename leaves the old log whole (the aside file is
    /// removed on the next start); after it, the new log is whole. The log
    /// writes to the new file from the rename on: its handle is the one the
    /// snapshot was written with, so nothing can fail between the rename and
    /// the switch (only the directory fsync after it, which is reported).
    pub(crate) fn compact(&mut self, board: &Board) -> Result<(), StorageError> {
        let aside = sibling(&self.path, ".compact");
        // A regular file there is one a failed removal left; a link is refused.
        remove_stale(&aside)?;
        let file = write_snapshot(&aside, board)?;
        if let Some(hold) = self.faults.hold_compaction {
            std::thread::sleep(hold);
        }
        fs::rename(&aside, &self.path).map_err(|source| StorageError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.identity = identity(&file).unwrap_or_default();
        self.file = Arc::new(file);
        self.len = compacted_size(board);
        self.allocated = self.len;
        self.preallocate_from = 0;
        if let Some(syncer) = &self.syncer {
            syncer.restart(&self.file, self.len);
        }
        self.unsynced = false;
        if std::mem::take(&mut self.faults.fail_compaction_dir_sync) {
            return Err(StorageError::Sync {
                path: self.path.clone(),
                source: io::Error::other("injected fault: fail-compaction-dir-sync"),
            });
        }
        sync_dir(&self.path)
    }

    /// The state file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the path no longer names the file the log writes to: deleted,
    /// moved or replaced while in use. What is appended then would be lost
    /// at the next start; [`Log::compact`] writes the board to the path again.
    pub(crate) fn detached(&self) -> bool {
        // Not through a link: a link planted at the path is not the file.
        match fs::symlink_metadata(&self.path) {
            Ok(meta) => {
                use std::os::unix::fs::MetadataExt;
                (meta.dev(), meta.ino()) != self.identity
            }
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }

    fn truncate_to(&mut self, len: u64) -> Result<(), StorageError> {
        self.file
            .set_len(len)
            .map_err(|source| StorageError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.len = len;
        self.allocated = len;
        Ok(())
    }

    /// Grows the file with written zeros so that records up to `end` overwrite.
    fn preallocate(&mut self, end: u64) -> Result<(), StorageError> {
        let grown = end.saturating_add(PREALLOCATE);
        let zeros = vec![0; usize::try_from(grown - self.allocated).unwrap_or(0)];
        self.file
            .write_all_at(&zeros, self.allocated)
            .map_err(|source| StorageError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.allocated = grown;
        Ok(())
    }

    /// Forces everything to disk and trims the preallocated zeros: the clean end.
    pub(crate) fn close(&mut self) -> Result<(), StorageError> {
        self.sync()?;
        let len = self.len;
        self.truncate_to(len)?;
        self.sync()
    }
}

/// Size of the log that compaction would write for `board`.
fn compacted_size(board: &Board) -> u64 {
    (MAGIC.len() + board.len() * (RECORD_HEADER + FIXED_PAYLOAD) + board.content_bytes()) as u64
}

/// Writes `board` as a fresh log at `path` and forces it to disk; returns
/// the file, open for the appends that follow.
fn write_snapshot(path: &Path, board: &Board) -> Result<File, StorageError> {
    let mut data = Vec::with_capacity(usize::try_from(compacted_size(board)).unwrap_or(0));
    data.extend_from_slice(MAGIC);
    for entry in board.iter() {
        encode_set(&mut data, entry.name, entry.status, entry.set_at_ms)?;
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
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(repair: bool) -> StorageOptions {
        StorageOptions {
            fsync: Fsync::No,
            compact_at: 0,
            repair,
        }
    }

    #[test]
    fn open_compact_and_reopen_keep_the_board() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.log");
        let mut board = Board::new(10);
        let (mut log, report) = Log::open(&path, &options(false), &mut board).unwrap();
        assert_eq!(report.restored, 0);
        for (name, status) in [("a", ": 1"), ("b", ": 2"), ("a", ": 3")] {
            log.stage_set(name, status, 7).unwrap();
            log.commit().unwrap();
            board.apply_set(name, status, 7);
        }
        log.compact(&board).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), compacted_size(&board));
        log.stage_set("c", ": 4", 8).unwrap();
        log.commit().unwrap();
        drop(log);
        let mut again = Board::new(10);
        let (_log, report) = Log::open(&path, &options(false), &mut again).unwrap();
        assert_eq!(report.restored, 3);
        assert_eq!(again.encoded(), b"- a: 3\n- b: 2\n- c: 4\n");
    }

    #[test]
    fn a_second_open_of_the_same_file_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.log");
        let (_first, _) = Log::open(&path, &options(false), &mut Board::new(1)).unwrap();
        let second = Log::open(&path, &options(false), &mut Board::new(1));
        assert!(matches!(second, Err(StorageError::Locked { .. })));
    }
}
