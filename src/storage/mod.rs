//! The state file: an append-only log of checksummed records.
//!
//! Every accepted update is appended to the state file before its reply is
//! sent, so a killed server never loses an acknowledged update; `--fsync`
//! decides when the file is also forced to disk. On start the log yields its
//! records, which the caller applies. The log is compacted (written aside,
//! synced, renamed over) when it has grown well past the live records the
//! caller gives it. `docs/STORAGE.md` has the format and the guarantees.
//!
//! Storage knows records only: it imports neither the board nor the store.
//!
//! # Layout
//!
//! - `record`: the record format, its checksum, encoding and decoding.
//! - `open`: opening the file: lock, read, replay, and what replay found.
//! - `replay`: the records read back on start: torn tail, damage, repair.
//! - `log`: the open file: append a batch, commit, compact, close.
//! - `compact`: what a compaction writes, from the live records it is given.
//! - `syncer`: the fsync thread of `--fsync always`, and the bounded wait
//!   for the last fsync at a stop.
//! - `files`: opening by name (no links, mode 0600), the lock, the
//!   directory fsync, the default path (the only directories made).
//! - `faults`: faults a test injects on purpose (`STATUS_BOARD_TEST_FAULTS`).
//!
//! What the board does with a stored update (the TTL, staging, applying once
//! durable, applying the records replayed) is not storage: it lives in
//! `crate::store`.

mod compact;
mod faults;
mod files;
mod log;
mod open;
mod record;
mod replay;
mod syncer;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub(crate) use compact::Live;
pub use faults::FAULTS_ENV;
pub(crate) use files::prepare_default_path;
pub(crate) use log::{Durable, Log};
pub(crate) use open::Opening;
pub use record::{MAGIC, encode_set};
pub(crate) use record::{Record, RecordKind};
pub(crate) use replay::Replay;

pub use record::DecodeError;

// For the fuzz targets' facade (`crate::fuzz_api`), in a fuzzing build only.
#[cfg(any(test, fuzzing))]
pub(crate) use record::encode_remove;
#[cfg(fuzzing)]
pub(crate) use record::{decode, resync};
#[cfg(fuzzing)]
pub(crate) use replay::Replayed;

/// Default log size before compaction is considered, in bytes.
pub const DEFAULT_COMPACT_AT: u64 = 4 << 20;

/// When appended updates are also forced to disk (named as Redis names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Before every reply: an acknowledged update survives a power cut.
    Always,
    /// Once a second: a power cut loses at most about a second of updates.
    EverySec,
    /// When the OS decides: a power cut may lose what it had not written yet.
    No,
}

impl FromStr for Fsync {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "always" => Ok(Fsync::Always),
            "everysec" => Ok(Fsync::EverySec),
            "no" => Ok(Fsync::No),
            other => Err(format!("{other:?} is not one of always, everysec, no")),
        }
    }
}

impl fmt::Display for Fsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::No => "no",
        })
    }
}

/// How a state file is opened and kept.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// When to force appends to disk.
    pub fsync: Fsync,
    /// Log size below which compaction is not considered.
    pub compact_at: u64,
    /// On damage, keep every valid record and move the damaged file aside.
    pub repair: bool,
}

/// Why the state could not be opened, written or kept.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Neither XDG_STATE_HOME nor HOME is set, so there is no default location.
    #[error("no XDG_STATE_HOME or HOME to keep the state in; give --state PATH or --in-memory")]
    NoDefaultDir,
    /// The listen address gives no stable key for a default state path.
    #[error("{0} has no fixed port to name the state file after; give --state PATH or --in-memory")]
    NoStableKey(String),
    /// A state file given by hand whose directory does not exist (a typo,
    /// most likely): refused rather than made.
    #[error(
        "the directory {} does not exist; create it first, or correct --state {}",
        .dir.display(),
        .path.display()
    )]
    NoDirectory {
        /// The state file.
        path: PathBuf,
        /// Its missing directory.
        dir: PathBuf,
    },
    /// The state file's directory could not be created.
    #[error("cannot create the directory {}", .path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// A file could not be created or opened.
    #[error("cannot open {}", .path.display())]
    Open {
        /// What we tried to open.
        path: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// Reading failed.
    #[error("cannot read {}", .path.display())]
    Read {
        /// What we read.
        path: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// Writing, truncating or renaming failed.
    #[error("cannot write {}", .path.display())]
    Write {
        /// What we wrote.
        path: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// Forcing to disk failed: what was written may not be durable.
    #[error("cannot fsync {}", .path.display())]
    Sync {
        /// What we synced.
        path: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// Another server holds the lock on this state file.
    #[error("{} is in use by another status_server (it holds {})", .path.display(), .lock.display())]
    Locked {
        /// The state file.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The file exists but is not ours.
    #[error("{} is not a status-board state file; move it away or choose another --state", .path.display())]
    NotAStateFile {
        /// The file.
        path: PathBuf,
    },
    /// A bad record with valid records after it: not a torn write.
    #[error(
        "{} is damaged at byte offset {offset} ({reason}); valid records follow at offset {next_valid}. \
         Start with --repair to keep every valid record (the damaged file is moved aside)",
        .path.display()
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong with it.
        reason: DecodeError,
        /// Where the next valid record starts.
        next_valid: u64,
    },
    /// A name or status too long for the record format.
    #[error("a name of {name} bytes or a record of {record} bytes does not fit a record")]
    TooLarge {
        /// Name bytes.
        name: usize,
        /// Record payload bytes.
        record: usize,
    },
    /// A symbolic link where the storage layer keeps a file of its own.
    #[error("{} is a symbolic link; refusing to follow it", .path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Something other than a regular file (a FIFO, a directory) where a file of ours belongs.
    #[error("{} is not a regular file; refusing it", .path.display())]
    NotRegular {
        /// What is there.
        path: PathBuf,
    },
    /// A file of ours that another user owns: they could read it whatever its mode.
    #[error(
        "{} belongs to uid {owner}, not to uid {uid} that runs this server; refusing it \
         (chown it, or choose another --state)",
        .path.display()
    )]
    NotOwned {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Who this process runs as.
        uid: u32,
    },
    /// A compaction failed; the log goes on taking updates.
    #[error(
        "cannot compact {} (it stays in use; compaction is tried again when it has doubled)",
        .path.display()
    )]
    Compaction {
        /// The state file.
        path: PathBuf,
        /// Why.
        source: Box<StorageError>,
    },
    /// An earlier write failed and could not be undone; nothing more is written.
    #[error("{} stopped taking updates after a write could not be undone; restart the server", .path.display())]
    Broken {
        /// The file.
        path: PathBuf,
    },
    /// A stop could not force the log to disk in time: the disk does not answer.
    #[error(
        "cannot fsync {} within {:.1} s (the disk does not answer); {}",
        .path.display(),
        .waited.as_secs_f64(),
        at_risk(*.records, *.bytes, *.offset, *.acknowledged)
    )]
    NotSynced {
        /// The file.
        path: PathBuf,
        /// How long the stop waited.
        waited: Duration,
        /// Records written after the last fsync known to be done.
        records: u64,
        /// Their bytes.
        bytes: u64,
        /// Where they start in the file.
        offset: u64,
        /// Whether their clients were told they were stored (not under
        /// `--fsync always`, which answers once they are on disk).
        acknowledged: bool,
    },
}

/// What a stop that could not fsync leaves at risk, in words.
fn at_risk(records: u64, bytes: u64, offset: u64, acknowledged: bool) -> String {
    if records == 0 {
        return "every change written was on disk already; only the file's unused end was not trimmed"
            .to_owned();
    }
    let changes = match records {
        1 => "change".to_owned(),
        n => format!("{n} changes"),
    };
    let told = match acknowledged {
        true => "acknowledged",
        false => "not acknowledged yet",
    };
    format!(
        "the last {changes} written ({told}; {bytes} bytes from byte offset {offset}) may not be on disk"
    )
}
