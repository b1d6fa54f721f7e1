//! Opening the state file: the lock, a compaction a crash left behind, the
//! read, the replay (whose records the caller applies, one by one), and what
//! the replay found: a torn tail cut off, a fresh header written, a damaged
//! file moved aside and the live records written in its place.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::compact::Live;
use super::faults::Faults;
use super::files::{
    FILE_MODE, ensure_free, lock, make_private, open_private, remove_stale, require_dir, sibling,
};
use super::log::Log;
use super::replay::{Replay, Replayed};
use super::{StorageError, StorageOptions};

/// A state file opened, locked and read, not yet replayed: take its records
/// from [`Opening::replay`], then [`Opening::finish`].
#[derive(Debug)]
pub(crate) struct Opening {
    path: PathBuf,
    options: StorageOptions,
    lock: File,
    /// The file replayed is the file written to: one open, by descriptor.
    file: File,
    created: bool,
    data: Vec<u8>,
    warnings: Vec<String>,
}

/// A state file open and in use, and what the user should know about it.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The log, taking updates.
    pub(crate) log: Log,
    /// A torn tail dropped, damage skipped, a mode set, a stale file removed.
    pub(crate) warnings: Vec<String>,
    /// Where the damaged file went (`--repair`): the live records it held
    /// are in a new file at the path.
    pub(crate) damaged_moved_to: Option<PathBuf>,
}

impl Opening {
    /// Opens (or creates) the state file, locks it and reads it whole.
    pub(crate) fn start(path: &Path, options: &StorageOptions) -> Result<Opening, StorageError> {
        require_dir(path)?;
        let lock = lock(path)?;
        let mut warnings = Vec::new();
        let aside = sibling(path, ".compact");
        // A compaction that never reached its rename: the log is still whole.
        // A link there is refused, not removed: no compaction ever made one.
        if remove_stale(&aside)? {
            warnings.push(format!(
                "removed {} left by an interrupted compaction",
                aside.display()
            ));
        }
        let (file, created) = open_private(path)?;
        let mut data = Vec::new();
        (&file)
            .read_to_end(&mut data)
            .map_err(|source| StorageError::Read {
                path: path.to_owned(),
                source,
            })?;
        Ok(Opening {
            path: path.to_owned(),
            options: options.clone(),
            lock,
            file,
            created,
            data,
            warnings,
        })
    }

    /// The file's records in order, for the caller to apply; then
    /// [`Replay::finish`] says how the file ended.
    pub(crate) fn replay(&mut self) -> Replay<'_> {
        Replay::new(
            &self.path,
            &self.data,
            self.options.repair,
            &mut self.warnings,
        )
    }

    /// Leaves the file as `replayed` found it, ready for appends: a torn
    /// tail cut off, a header written, or under `--repair` the damaged file
    /// moved aside and `live` (what the caller made of its records) written
    /// at the path.
    pub(crate) fn finish(
        self,
        replayed: Replayed,
        live: &impl Live,
    ) -> Result<Opened, StorageError> {
        let Opening {
            path,
            options,
            lock,
            file,
            created,
            data,
            mut warnings,
        } = self;
        // Only now that it is known to be a state file: a file refused by
        // the replay is left exactly as it was found.
        if let Some(mode) = make_private(&path, &file)?
            && !created
        {
            warnings.push(format!(
                "{} had mode {mode:04o}; set it to {:04o}, so that no other user reads or writes the board",
                path.display(),
                FILE_MODE
            ));
        }
        let len = match replayed {
            Replayed::Whole(len) => len,
            _ => 0,
        };
        let mut log = Log::new(&path, file, lock, &options, len, data.len() as u64)?;
        let mut damaged_moved_to = None;
        match replayed {
            Replayed::Whole(_) => {}
            Replayed::TornAt(len) => {
                log.truncate_to(len)?;
                log.sync()?;
            }
            // Drop a header torn by a crash at creation, then write it whole.
            Replayed::Fresh => log.write_header()?,
            Replayed::Repaired => {
                let moved = sibling(&path, &format!(".damaged-{}", crate::clock::now_ms()));
                // Renaming onto a name replaces what is there: nothing is.
                ensure_free(&moved)?;
                fs::rename(&path, &moved).map_err(|source| StorageError::Write {
                    path: moved.clone(),
                    source,
                })?;
                log.compact(live)?;
                damaged_moved_to = Some(moved);
            }
        }
        Ok(Opened {
            log: log.serve(Faults::from_env())?,
            warnings,
            damaged_moved_to,
        })
    }
}
