//! The open state file: appends, syncs, compactions and the clean end.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::compact::{Live, compacted_size, write_snapshot};
use super::faults::{self, Faults};
use super::files::{identity, remove_stale, sibling, sync_dir};
use super::record::{MAGIC, encode_remove, encode_set};
use super::syncer::{Syncer, until};
use super::{Fsync, StorageError, StorageOptions};

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
    /// What is known to be on disk, and how many records are written, so
    /// that a stop the disk does not let finish can say what may be lost.
    counts: Counts,
    /// Faults injected by a test ([`super::faults`]).
    faults: Faults,
}

/// Records written, and which of them are known to be on disk.
#[derive(Debug, Default)]
struct Counts {
    /// Records staged for the next commit.
    pending: u64,
    /// Records written since the log was opened.
    written: u64,
    /// Of those, the ones known to be on disk.
    synced: u64,
    /// Bytes of the file known to be on disk, by this thread's own fsyncs.
    synced_len: u64,
    /// Under `--fsync always`: each commit's end offset and `written` after
    /// it, until the fsync thread has passed it.
    in_flight: VecDeque<(u64, u64)>,
}

impl Log {
    /// The log on `file`, locked by `lock`, whose first `len` bytes are whole
    /// records and whose size is `allocated`. The fsync thread starts, and
    /// a test's faults apply, from [`Log::serve`] on.
    pub(super) fn new(
        path: &Path,
        file: File,
        lock: File,
        options: &StorageOptions,
        len: u64,
        allocated: u64,
    ) -> Result<Log, StorageError> {
        let identity = identity(&file).map_err(|source| StorageError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(Log {
            path: path.to_owned(),
            file: Arc::new(file),
            syncer: None,
            _lock: lock,
            options: options.clone(),
            len,
            allocated,
            pending: Vec::new(),
            unsynced: false,
            last_sync: Instant::now(),
            next_compaction: options.compact_at,
            broken: false,
            identity,
            preallocate_from: 0,
            counts: Counts {
                synced_len: len,
                ..Counts::default()
            },
            faults: Faults::default(),
        })
    }

    /// From now on the log takes updates: a test's `faults` apply, and under
    /// `--fsync always` the fsync thread starts.
    pub(super) fn serve(mut self, faults: Faults) -> Result<Log, StorageError> {
        if self.options.fsync == Fsync::Always {
            let syncer = Syncer::start(Arc::clone(&self.file), self.len, faults.hang_fsync)
                .map_err(|source| StorageError::Open {
                    path: self.path.clone(),
                    source,
                })?;
            self.syncer = Some(syncer);
        }
        self.faults = faults;
        Ok(self)
    }

    /// Writes the header of a new log over whatever a crash at its creation left.
    pub(super) fn write_header(&mut self) -> Result<(), StorageError> {
        self.truncate_to(0)?;
        self.file
            .write_all_at(MAGIC, 0)
            .map_err(|source| StorageError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.len = MAGIC.len() as u64;
        self.allocated = self.len;
        self.sync()?;
        sync_dir(&self.path)
    }

    /// Stages a set record; nothing is written until [`Log::commit`].
    pub(crate) fn stage_set(
        &mut self,
        name: &str,
        status: &str,
        set_at_ms: u64,
    ) -> Result<(), StorageError> {
        encode_set(&mut self.pending, name, status, set_at_ms)?;
        self.counts.pending += 1;
        Ok(())
    }

    /// Stages a remove record; nothing is written until [`Log::commit`].
    pub(crate) fn stage_remove(&mut self, name: &str, set_by_ms: u64) -> Result<(), StorageError> {
        encode_remove(&mut self.pending, name, set_by_ms)?;
        self.counts.pending += 1;
        Ok(())
    }

    /// Writes every staged record; under `--fsync always` starts forcing them to disk.
    ///
    /// On failure nothing staged counts: the file is cut back to where it was.
    pub(crate) fn commit(&mut self) -> Result<Durable, StorageError> {
        if self.pending.is_empty() {
            return Ok(Durable::Now);
        }
        let records = std::mem::take(&mut self.counts.pending);
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
        self.counts.written += records;
        match &self.syncer {
            Some(syncer) => {
                syncer.request(self.len, &self.file);
                self.counts.in_flight.push_back((end, self.counts.written));
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
        })?;
        self.synced_offset();
        Ok(())
    }

    /// How far the file is known to be on disk; counts the records up to there.
    fn synced_offset(&mut self) -> u64 {
        let counts = &mut self.counts;
        let synced = self
            .syncer
            .as_ref()
            .map_or(counts.synced_len, |s| s.synced().max(counts.synced_len));
        while let Some(&(end, written)) = counts.in_flight.front()
            && end <= synced
        {
            counts.synced = written;
            counts.in_flight.pop_front();
        }
        synced
    }

    /// Whether compaction should run once nothing is in flight.
    pub(crate) fn compaction_due(&self, live: &impl Live) -> bool {
        self.len > self.next_compaction && self.len > 2 * compacted_size(live)
    }

    /// Periodic duties: the `everysec` sync and compaction when due.
    ///
    /// Only when no committed record waits for its sync: those are not on the
    /// board yet, so a compaction would leave them out.
    pub(crate) fn maintain(&mut self, live: &impl Live) -> Result<(), StorageError> {
        if self.options.fsync == Fsync::EverySec
            && self.unsynced
            && self.last_sync.elapsed() >= EVERYSEC
        {
            self.sync()?;
        }
        if self.compaction_due(live) {
            if let Err(e) = self.compact(live) {
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
        faults::sync_data(&self.file, self.faults.hang_fsync).map_err(|source| {
            StorageError::Sync {
                path: self.path.clone(),
                source,
            }
        })?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        self.all_synced();
        Ok(())
    }

    /// Every record written is on disk.
    fn all_synced(&mut self) {
        self.counts.synced = self.counts.written;
        self.counts.synced_len = self.len;
        self.counts.in_flight.clear();
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
    pub(crate) fn compact(&mut self, live: &impl Live) -> Result<(), StorageError> {
        let aside = sibling(&self.path, ".compact");
        // A regular file there is one a failed removal left; a link is refused.
        remove_stale(&aside)?;
        let (file, len) = write_snapshot(&aside, live)?;
        // Known before the rename, or no rename: a log that could not tell
        // its new file would take it for a replaced one, and write the board
        // again at every commit and every idle second.
        let new_identity = match self.identity_of(&file) {
            Ok(known) => known,
            Err(source) => {
                // Made by write_snapshot above; a link swapped in since loses only itself.
                let _ = fs::remove_file(&aside);
                return Err(StorageError::Read {
                    path: aside,
                    source,
                });
            }
        };
        if let Some(hold) = self.faults.hold_compaction {
            std::thread::sleep(hold);
        }
        fs::rename(&aside, &self.path).map_err(|source| StorageError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.identity = new_identity;
        self.file = Arc::new(file);
        self.len = len;
        self.allocated = self.len;
        self.preallocate_from = 0;
        if let Some(syncer) = &self.syncer {
            syncer.restart(&self.file, self.len);
        }
        self.unsynced = false;
        self.all_synced();
        if std::mem::take(&mut self.faults.fail_compaction_dir_sync) {
            return Err(StorageError::Sync {
                path: self.path.clone(),
                source: io::Error::other("injected fault: fail-compaction-dir-sync"),
            });
        }
        sync_dir(&self.path)
    }

    /// Which file `file` is (device, inode); fails once under `fail-compaction-identity`.
    fn identity_of(&mut self, file: &File) -> io::Result<(u64, u64)> {
        if std::mem::take(&mut self.faults.fail_compaction_identity) {
            return Err(io::Error::other("injected fault: fail-compaction-identity"));
        }
        identity(file)
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

    pub(super) fn truncate_to(&mut self, len: u64) -> Result<(), StorageError> {
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

    /// Forces everything to disk and trims the preallocated zeros: the clean
    /// end. Waits for the disk until `deadline` at most: a disk that does
    /// not answer must not hold a stop for ever. If it has not finished by
    /// then, the error says what may not be on disk, and the fsync is left
    /// to finish, or not, on its own thread.
    pub(crate) fn close(mut self, deadline: Instant) -> Result<(), StorageError> {
        let started = Instant::now();
        // The fsync thread first: it syncs what is still wanted, then ends.
        let stopped = self
            .syncer
            .as_mut()
            .is_none_or(|syncer| syncer.stop(deadline));
        let finished = match stopped {
            true => {
                let (file, path, len) = (Arc::clone(&self.file), self.path.clone(), self.len);
                let hang = self.faults.hang_fsync;
                until(deadline, move || {
                    let sync = |file: &File| {
                        faults::sync_data(file, hang).map_err(|source| StorageError::Sync {
                            path: path.clone(),
                            source,
                        })
                    };
                    sync(&file)?;
                    file.set_len(len).map_err(|source| StorageError::Write {
                        path: path.clone(),
                        source,
                    })?;
                    sync(&file)
                })
            }
            false => None,
        };
        finished.unwrap_or_else(|| {
            let offset = self.synced_offset();
            Err(StorageError::NotSynced {
                path: self.path.clone(),
                waited: started.elapsed(),
                records: self.counts.written - self.counts.synced,
                bytes: self.len.saturating_sub(offset),
                offset,
                acknowledged: self.syncer.is_none(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::files::{lock, open_private};
    use super::super::open::Opening;
    use super::super::record::Record;
    use super::*;

    fn options(fsync: Fsync) -> StorageOptions {
        StorageOptions {
            fsync,
            compact_at: 0,
            repair: false,
        }
    }

    /// Live records for a compaction: (name, status, set at), in order.
    struct Entries(Vec<(&'static str, &'static str, u64)>);

    impl Live for Entries {
        fn count(&self) -> usize {
            self.0.len()
        }

        fn text_bytes(&self) -> usize {
            self.0.iter().map(|(n, s, _)| n.len() + s.len()).sum()
        }

        fn records(&self) -> impl Iterator<Item = Record<'_>> {
            self.0.iter().map(|&(n, s, at)| Record::set(n, s, at))
        }
    }

    /// Opens the log at `path` as the server does; returns it and its
    /// records, as `NAME STATUS @AT`.
    fn open(path: &Path) -> Result<(Log, Vec<String>), StorageError> {
        let mut opening = Opening::start(path, &options(Fsync::No))?;
        let mut replay = opening.replay();
        let records = replay
            .by_ref()
            .map(|r| format!("{}{} @{}", r.name, r.status, r.set_at_ms))
            .collect();
        let replayed = replay.finish()?;
        let opened = opening.finish(replayed, &Entries(Vec::new()))?;
        Ok((opened.log, records))
    }

    /// A new log in a new directory, with `faults`; and its path.
    fn new_log(fsync: Fsync, faults: Faults) -> (tempfile::TempDir, PathBuf, Log) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.log");
        let lock = lock(&path).unwrap();
        let (file, _) = open_private(&path).unwrap();
        let mut log = Log::new(&path, file, lock, &options(fsync), 0, 0).unwrap();
        log.write_header().unwrap();
        (dir, path, log.serve(faults).unwrap())
    }

    fn append(log: &mut Log, name: &str, status: &str, at: u64) {
        log.stage_set(name, status, at).unwrap();
        log.commit().unwrap();
    }

    #[test]
    fn open_compact_and_reopen_keep_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.log");
        let (mut log, records) = open(&path).unwrap();
        assert!(records.is_empty());
        for (name, status) in [("a", ": 1"), ("b", ": 2"), ("a", ": 3")] {
            append(&mut log, name, status, 7);
        }
        let live = Entries(vec![("a", ": 3", 7), ("b", ": 2", 7)]);
        log.compact(&live).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), compacted_size(&live));
        append(&mut log, "c", ": 4", 8);
        drop(log);
        let (_log, records) = open(&path).unwrap();
        assert_eq!(records, ["a: 3 @7", "b: 2 @7", "c: 4 @8"]);
    }

    #[test]
    fn a_second_open_of_the_same_file_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.log");
        let _first = open(&path).unwrap();
        assert!(matches!(open(&path), Err(StorageError::Locked { .. })));
    }

    #[test]
    fn a_compaction_that_cannot_tell_its_new_file_fails_before_the_rename_and_stays_attached() {
        // Were the new file taken for an unknown one, the log would think its
        // path replaced, and write the board again at every commit and every
        // idle second.
        let faults = Faults {
            fail_compaction_identity: true,
            ..Faults::default()
        };
        let (dir, path, mut log) = new_log(Fsync::No, faults);
        append(&mut log, "a", ": 1", 1);
        append(&mut log, "a", ": 2", 2);
        let before = fs::read(&path).unwrap();
        let failed = log.compact(&Entries(vec![("a", ": 2", 2)]));
        assert!(
            matches!(&failed, Err(StorageError::Read { path: p, .. }) if p.ends_with("state.log.compact")),
            "{failed:?}"
        );
        assert!(!log.detached(), "the log still knows its file");
        assert_eq!(fs::read(&path).unwrap(), before, "the old log is whole");
        assert!(!dir.path().join("state.log.compact").exists());
        append(&mut log, "b", ": 3", 3);
        assert!(!log.detached());
        log.compact(&Entries(vec![("a", ": 2", 2), ("b", ": 3", 3)]))
            .unwrap();
        assert!(!log.detached(), "the next compaction is whole");
    }

    #[test]
    fn a_close_the_disk_does_not_answer_ends_in_time_and_says_what_may_be_lost() {
        for (fsync, acknowledged) in [(Fsync::No, true), (Fsync::Always, false)] {
            let faults = Faults {
                hang_fsync: true,
                ..Faults::default()
            };
            let (_dir, _path, mut log) = new_log(fsync, faults);
            append(&mut log, "a", ": 1", 1);
            append(&mut log, "b", ": 2", 2);
            let len = log.len;
            let started = Instant::now();
            let closed = log.close(started + Duration::from_millis(300));
            assert!(started.elapsed() < Duration::from_secs(5), "{fsync}");
            match closed {
                Err(StorageError::NotSynced {
                    records,
                    bytes,
                    offset,
                    acknowledged: told,
                    ..
                }) => {
                    assert_eq!(records, 2, "{fsync}");
                    assert_eq!(offset, MAGIC.len() as u64, "{fsync}");
                    assert_eq!(bytes, len - offset, "{fsync}");
                    assert_eq!(told, acknowledged, "{fsync}");
                }
                other => panic!("{fsync}: expected NotSynced, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_close_counts_only_what_was_written_after_the_last_sync() {
        let (_dir, _path, mut log) = new_log(Fsync::EverySec, Faults::default());
        append(&mut log, "a", ": 1", 1);
        log.sync().unwrap();
        let synced = log.len;
        log.faults.hang_fsync = true;
        append(&mut log, "b", ": 2", 2);
        let record = log.len - synced;
        let error = log
            .close(Instant::now() + Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!(
                "the last change written (acknowledged; {record} bytes from byte offset {synced}) may not be on disk"
            )),
            "{error}"
        );
    }

    #[test]
    fn a_close_trims_the_preallocated_zeros() {
        let (_dir, path, mut log) = new_log(Fsync::Always, Faults::default());
        append(&mut log, "a", ": 1", 1);
        let len = log.len;
        assert!(fs::metadata(&path).unwrap().len() > len, "preallocated");
        log.close(Instant::now() + Duration::from_secs(30)).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), len);
    }
}
