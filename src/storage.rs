//! The durable board: an append-only log of checksummed records.
//!
//! Every accepted update is appended to the state file before its reply is
//! sent, so a killed server never loses an acknowledged update; `--fsync`
//! decides when the file is also forced to disk. On start the log is replayed
//! into the board. The log is compacted (written aside, synced, renamed over)
//! when it has grown well past the board it describes. `docs/STORAGE.md` has
//! the format and the guarantees.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::board::{Board, BoardError};
use crate::protocol::{self, Field, Limits, Removal};

/// First bytes of every state file: what it is and which format version.
pub const MAGIC: &[u8; 8] = b"SBLOG01\n";

/// Bytes before a record's payload: its length and checksum.
const RECORD_HEADER: usize = 8;

/// Payload bytes before the name: kind, time, name length.
const FIXED_PAYLOAD: usize = 1 + 8 + 2;

/// Record kind: set a status.
const KIND_SET: u8 = 1;

/// Record kind: remove a name if its status was set no later than the record's time.
const KIND_REMOVE: u8 = 2;

/// How often `everysec` forces the log to disk.
const EVERYSEC: Duration = Duration::from_secs(1);

/// The state file grows by this much at a time, in written zeros, so that a
/// record overwrites allocated blocks: its fdatasync then flushes data only,
/// with no size change and no journal commit.
const PREALLOCATE: u64 = 1 << 20;

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

/// Why a record could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The file ends inside the record.
    #[error("record cut short")]
    Truncated,
    /// The length field cannot be right.
    #[error("impossible record length")]
    BadLength,
    /// The checksum does not match the contents.
    #[error("checksum mismatch")]
    BadChecksum,
    /// A record kind this version does not know.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// A checksummed record whose name or status breaks the protocol's rules.
    #[error("invalid name or status")]
    BadContents,
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Set or remove.
    pub kind: RecordKind,
    /// The name set or removed.
    pub name: &'a str,
    /// Its status, including the leading `:`; empty for a removal.
    pub status: &'a str,
    /// Set: when. Remove: only a status set no later than this goes. In
    /// milliseconds since the Unix epoch.
    pub set_at_ms: u64,
}

/// What a record does to the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// Sets a status.
    Set,
    /// Removes a name (`--clear`, or expiry).
    Remove,
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
    /// An earlier write failed and could not be undone; nothing more is written.
    #[error("{} stopped taking updates after a write could not be undone; restart the server", .path.display())]
    Broken {
        /// The file.
        path: PathBuf,
    },
}

/// Appends one set record to `out`.
pub fn encode_set(
    out: &mut Vec<u8>,
    name: &str,
    status: &str,
    set_at_ms: u64,
) -> Result<(), StorageError> {
    encode(out, KIND_SET, name, status, set_at_ms)
}

/// Appends one remove record to `out`: `name` goes if set no later than `set_by_ms`.
pub fn encode_remove(out: &mut Vec<u8>, name: &str, set_by_ms: u64) -> Result<(), StorageError> {
    encode(out, KIND_REMOVE, name, "", set_by_ms)
}

fn encode(
    out: &mut Vec<u8>,
    kind: u8,
    name: &str,
    status: &str,
    set_at_ms: u64,
) -> Result<(), StorageError> {
    let payload_len = FIXED_PAYLOAD + name.len() + status.len();
    let too_large = || StorageError::TooLarge {
        name: name.len(),
        record: payload_len,
    };
    let name_len = u16::try_from(name.len()).map_err(|_| too_large())?;
    let len = u32::try_from(payload_len)
        .map_err(|_| too_large())?
        .to_le_bytes();
    let start = out.len();
    out.reserve(RECORD_HEADER + payload_len);
    out.extend_from_slice(&len);
    out.extend_from_slice(&[0; 4]); // checksum, filled in below
    out.push(kind);
    out.extend_from_slice(&set_at_ms.to_le_bytes());
    out.extend_from_slice(&name_len.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(status.as_bytes());
    let crc = checksum(&len, &out[start + RECORD_HEADER..]);
    out[start + 4..start + RECORD_HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The checksum covers the length too, so a damaged length cannot pass.
fn checksum(len: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(payload);
    hasher.finalize()
}

fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Reads the record at the start of `data`; returns it and its size in bytes.
pub fn decode(data: &[u8]) -> Result<(Record<'_>, usize), DecodeError> {
    if data.len() < RECORD_HEADER {
        return Err(DecodeError::Truncated);
    }
    let len = le_u32(&data[0..4]) as usize;
    if len < FIXED_PAYLOAD {
        return Err(DecodeError::BadLength);
    }
    let end = RECORD_HEADER
        .checked_add(len)
        .ok_or(DecodeError::BadLength)?;
    if data.len() < end {
        return Err(DecodeError::Truncated);
    }
    let payload = &data[RECORD_HEADER..end];
    if checksum(&data[0..4], payload) != le_u32(&data[4..8]) {
        return Err(DecodeError::BadChecksum);
    }
    let kind = match payload[0] {
        KIND_SET => RecordKind::Set,
        KIND_REMOVE => RecordKind::Remove,
        other => return Err(DecodeError::UnknownKind(other)),
    };
    let set_at_ms = le_u64(&payload[1..9]);
    let name_len = le_u16(&payload[9..11]) as usize;
    let rest = &payload[FIXED_PAYLOAD..];
    if name_len > rest.len() {
        return Err(DecodeError::BadLength);
    }
    let (name, status) = rest.split_at(name_len);
    let name = std::str::from_utf8(name).map_err(|_| DecodeError::BadContents)?;
    let status = std::str::from_utf8(status).map_err(|_| DecodeError::BadContents)?;
    let unlimited = Limits {
        max_request: usize::MAX,
        max_name: usize::MAX,
    };
    let valid_status = match kind {
        RecordKind::Set => {
            status.starts_with(':') && protocol::check_line(status, Field::Status).is_ok()
        }
        RecordKind::Remove => status.is_empty(),
    };
    let valid = protocol::check_name(name, &unlimited).is_ok()
        && name != protocol::POLL_NAME
        && valid_status;
    if !valid {
        return Err(DecodeError::BadContents);
    }
    Ok((
        Record {
            kind,
            name,
            status,
            set_at_ms,
        },
        end,
    ))
}

/// The first offset at or after `from` where a valid record starts.
///
/// Names and statuses hold no control characters, and every record header
/// does (its length's high byte is 0), so a record cannot hide in a status.
fn resync(data: &[u8], from: usize) -> Option<usize> {
    (from..data.len()).find(|&offset| decode(&data[offset..]).is_ok())
}

/// What opening the state found, for the start-up message.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// Entries on the restored board.
    pub restored: usize,
    /// Things the user should know: a torn tail dropped, a repair done.
    pub warnings: Vec<String>,
}

/// What the server has written and the sync thread should make durable.
#[derive(Debug)]
struct Wanted {
    /// Sync the file up to here.
    offset: u64,
    /// The file to sync (compaction replaces it, only when nothing is in flight).
    file: Arc<File>,
    stop: bool,
    /// Set by the sync thread when an fsync fails; it then stops.
    error: Option<io::Error>,
}

/// State shared with the sync thread.
#[derive(Debug)]
struct SyncShared {
    wanted: Mutex<Wanted>,
    more: Condvar,
    /// Everything before this offset is on disk.
    synced: AtomicU64,
}

/// Forces the log to disk on a thread of its own (`--fsync always`): group
/// commit by offset, as a database log does. The server writes each batch as
/// soon as it has it; the thread syncs up to the newest offset written each
/// time it is behind, so syncs run back to back and each covers every batch
/// written while the previous one ran.
#[derive(Debug)]
struct Syncer {
    shared: Arc<SyncShared>,
    /// Readable after each sync: the server's poll waits on it.
    wake: io::PipeReader,
    thread: Option<thread::JoinHandle<()>>,
}

impl Syncer {
    fn start(file: Arc<File>, synced: u64) -> io::Result<Syncer> {
        let (wake, mut waker) = io::pipe()?;
        let shared = Arc::new(SyncShared {
            wanted: Mutex::new(Wanted {
                offset: synced,
                file,
                stop: false,
                error: None,
            }),
            more: Condvar::new(),
            synced: AtomicU64::new(synced),
        });
        let state = Arc::clone(&shared);
        let thread = thread::Builder::new().name("fsync".into()).spawn(move || {
            loop {
                let (offset, file) = {
                    let Ok(mut wanted) = state.wanted.lock() else {
                        return;
                    };
                    while wanted.offset <= state.synced.load(Ordering::Acquire) && !wanted.stop {
                        wanted = match state.more.wait(wanted) {
                            Ok(wanted) => wanted,
                            Err(_) => return,
                        };
                    }
                    if wanted.offset <= state.synced.load(Ordering::Acquire) {
                        return; // stopping, and nothing left to sync
                    }
                    (wanted.offset, Arc::clone(&wanted.file))
                };
                match file.sync_data() {
                    Ok(()) => state.synced.store(offset, Ordering::Release),
                    Err(error) => {
                        if let Ok(mut wanted) = state.wanted.lock() {
                            wanted.error = Some(error);
                        }
                        let _ = waker.write_all(&[1]);
                        return;
                    }
                }
                if waker.write_all(&[1]).is_err() {
                    return;
                }
            }
        })?;
        Ok(Syncer {
            shared,
            wake,
            thread: Some(thread),
        })
    }

    /// Asks for everything up to `offset` of `file` to be synced.
    fn request(&self, offset: u64, file: &Arc<File>) {
        if let Ok(mut wanted) = self.shared.wanted.lock() {
            wanted.offset = offset;
            if !Arc::ptr_eq(&wanted.file, file) {
                wanted.file = Arc::clone(file);
            }
        }
        self.shared.more.notify_one();
    }

    fn synced(&self) -> u64 {
        self.shared.synced.load(Ordering::Acquire)
    }

    /// Starts over on a new file whose first `offset` bytes are already synced
    /// (after compaction, when nothing is in flight: offsets restart with it).
    fn restart(&self, file: &Arc<File>, offset: u64) {
        if let Ok(mut wanted) = self.shared.wanted.lock() {
            wanted.file = Arc::clone(file);
            wanted.offset = offset;
            self.shared.synced.store(offset, Ordering::Release);
        }
    }

    /// Consumes the wake-ups that made the pipe readable; returns a failure, if any.
    fn take_wakeups(&mut self) -> io::Result<()> {
        let mut bytes = [0; 64];
        // Only called when poll said readable: a byte is there, or the end of the
        // pipe if the thread is gone.
        if self.wake.read(&mut bytes)? == 0 {
            return Err(io::Error::other("the fsync thread has stopped"));
        }
        match self.shared.wanted.lock() {
            Ok(mut wanted) => wanted.error.take().map_or(Ok(()), Err),
            Err(_) => Err(io::Error::other("the fsync thread panicked")),
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        // The thread syncs what is still wanted, then ends.
        if let Ok(mut wanted) = self.shared.wanted.lock() {
            wanted.stop = true;
        }
        self.shared.more.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// When a commit's records are durable, as its `--fsync` policy defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    /// Already: answer now.
    Now,
    /// Once [`Log::durable_offset`] reaches this offset.
    At(u64),
}

/// The open state file: appends, syncs and compactions.
#[derive(Debug)]
pub struct Log {
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
}

impl Log {
    /// Opens (or creates) the state file, locks it and replays it into `board`.
    pub fn open(
        path: &Path,
        options: &StorageOptions,
        board: &mut Board,
    ) -> Result<(Log, OpenReport), StorageError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let lock = lock(path)?;
        let mut report = OpenReport::default();
        let aside = sibling(path, ".compact");
        if aside.exists() {
            // A compaction that never reached its rename: the log is still whole.
            fs::remove_file(&aside).map_err(|source| StorageError::Write {
                path: aside.clone(),
                source,
            })?;
            report.warnings.push(format!(
                "removed {} left by an interrupted compaction",
                aside.display()
            ));
        }
        let data = match fs::read(path) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(StorageError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let good_len = replay(path, &data, options.repair, board, &mut report)?;
        let mut log = Log {
            path: path.to_owned(),
            file: Arc::new(open_write(path)?),
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
        };
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
                let moved = sibling(path, &format!(".damaged-{}", now_ms()));
                fs::rename(path, &moved).map_err(|source| StorageError::Write {
                    path: moved.clone(),
                    source,
                })?;
                report.warnings.push(format!(
                    "moved the damaged file to {}; {} entries kept",
                    moved.display(),
                    board.len()
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
    pub fn stage_set(
        &mut self,
        name: &str,
        status: &str,
        set_at_ms: u64,
    ) -> Result<(), StorageError> {
        encode_set(&mut self.pending, name, status, set_at_ms)
    }

    /// Stages a remove record; nothing is written until [`Log::commit`].
    pub fn stage_remove(&mut self, name: &str, set_by_ms: u64) -> Result<(), StorageError> {
        encode_remove(&mut self.pending, name, set_by_ms)
    }

    /// Writes every staged record; under `--fsync always` starts forcing them to disk.
    ///
    /// On failure nothing staged counts: the file is cut back to where it was.
    pub fn commit(&mut self) -> Result<Durable, StorageError> {
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
        let written = if end > self.allocated {
            self.preallocate(end)
        } else {
            Ok(())
        }
        .and_then(|()| {
            self.file
                .write_all_at(&self.pending, self.len)
                .map_err(|source| StorageError::Write {
                    path: self.path.clone(),
                    source,
                })
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
    pub fn durable_offset(&self) -> u64 {
        self.syncer.as_ref().map_or(self.len, Syncer::synced)
    }

    /// A descriptor that becomes readable after each sync (`--fsync always` only).
    pub fn sync_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.syncer.as_ref().map(|s| s.wake.as_raw_fd())
    }

    /// Takes the wake-ups of finished syncs; after a failed one nothing more is written.
    pub fn take_wakeups(&mut self) -> Result<(), StorageError> {
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
    fn compaction_due(&self, board: &Board) -> bool {
        self.len > self.next_compaction && self.len > 2 * compacted_size(board)
    }

    /// Periodic duties: the `everysec` sync and compaction when due.
    ///
    /// Only when no committed record waits for its sync: those are not on the
    /// board yet, so a compaction would leave them out.
    pub fn maintain(&mut self, board: &Board) -> Result<(), StorageError> {
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
                return Err(e);
            }
            self.next_compaction = self.options.compact_at;
        }
        Ok(())
    }

    /// Forces everything written so far to disk.
    pub fn sync(&mut self) -> Result<(), StorageError> {
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
    /// A crash before the rename leaves the old log whole (the aside file is
    /// removed on the next start); after it, the new log is whole.
    pub fn compact(&mut self, board: &Board) -> Result<(), StorageError> {
        let aside = sibling(&self.path, ".compact");
        let written = write_snapshot(&aside, board);
        if let Err(e) = written {
            let _ = fs::remove_file(&aside);
            return Err(e);
        }
        fs::rename(&aside, &self.path).map_err(|source| StorageError::Write {
            path: self.path.clone(),
            source,
        })?;
        sync_dir(&self.path)?;
        self.file = Arc::new(open_write(&self.path)?);
        self.len = compacted_size(board);
        self.allocated = self.len;
        if let Some(syncer) = &self.syncer {
            syncer.restart(&self.file, self.len);
        }
        self.unsynced = false;
        Ok(())
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
    pub fn close(&mut self) -> Result<(), StorageError> {
        self.sync()?;
        let len = self.len;
        self.truncate_to(len)?;
        self.sync()
    }
}

/// How replay left the file.
#[derive(Debug)]
enum Replayed {
    /// No file, or an empty one: write the header.
    Fresh,
    /// Every byte was good; this many.
    Whole(u64),
    /// A torn last record: cut the file back to this length.
    TornAt(u64),
    /// Damage was skipped under `--repair`: move the file aside, write the board.
    Repaired,
}

/// Applies every record in `data` to `board`, deciding what the bad bytes are.
fn replay(
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
    let mut offset = MAGIC.len();
    let mut repaired = false;
    while offset < data.len() {
        match decode(&data[offset..]) {
            Ok((record, size)) => {
                match record.kind {
                    RecordKind::Set => {
                        board.restore(record.name, record.status, record.set_at_ms);
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

/// Size of the log that compaction would write for `board`.
fn compacted_size(board: &Board) -> u64 {
    (MAGIC.len() + board.len() * (RECORD_HEADER + FIXED_PAYLOAD) + board.content_bytes()) as u64
}

/// Writes `board` as a fresh log at `path` and forces it to disk.
fn write_snapshot(path: &Path, board: &Board) -> Result<(), StorageError> {
    let mut data = Vec::with_capacity(usize::try_from(compacted_size(board)).unwrap_or(0));
    data.extend_from_slice(MAGIC);
    for (name, status) in board.iter() {
        encode_set(&mut data, name, &status.text, status.set_at_ms)?;
    }
    let write_error = |source| StorageError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = File::create(path).map_err(write_error)?;
    file.write_all(&data).map_err(write_error)?;
    file.sync_all().map_err(|source| StorageError::Sync {
        path: path.to_owned(),
        source,
    })
}

/// Opens the log for positioned writes (records go at its logical end, not its size).
fn open_write(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| StorageError::Open {
            path: path.to_owned(),
            source,
        })
}

/// Takes the lock beside the state file; it stays put when compaction renames the log.
fn lock(path: &Path) -> Result<File, StorageError> {
    let lock_path = sibling(path, ".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StorageError::Open {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StorageError::Locked {
            path: path.to_owned(),
            lock: lock_path,
        }),
        Err(fs::TryLockError::Error(source)) => Err(StorageError::Open {
            path: lock_path,
            source,
        }),
    }
}

/// Makes a rename or a new file in `path`'s directory durable.
fn sync_dir(path: &Path) -> Result<(), StorageError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StorageError::Sync {
            path: dir.to_owned(),
            source,
        })
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The default state file for a server keyed by `key` (its port, usually).
pub fn default_path(key: &str) -> Result<PathBuf, StorageError> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|home| PathBuf::from(home).join(".local/state"))
            .ok_or(StorageError::NoDefaultDir)?,
    };
    Ok(base.join("status-board").join(format!("{key}.log")))
}

/// Why an update was not applied.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The board refused it (full).
    #[error(transparent)]
    Board(#[from] BoardError),
    /// It could not be stored, so it was not applied.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A change staged for the next commit.
#[derive(Debug)]
struct Staged {
    name: String,
    op: Op,
}

/// What a staged change does.
#[derive(Debug)]
enum Op {
    Set {
        status: String,
        set_at_ms: u64,
    },
    /// Removes the name if its status was set no later than `set_by_ms`.
    Remove {
        set_by_ms: u64,
        why: Removal,
        at_ms: u64,
    },
}

/// What [`Store::commit`] did with the staged updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Stored and applied: answer them now.
    Applied,
    /// Written, being forced to disk: answer them when [`Store::finish_syncs`]
    /// counts this batch done.
    Syncing,
    /// Not written yet: compaction is due and waits for the batches in flight.
    Deferred,
}

/// The board and, unless in memory, its log: an update is applied once stored.
///
/// Updates are staged, then committed together: one write for a whole batch
/// of requests. Under `--fsync always` the batch is applied once the sync
/// thread has made it durable; meanwhile the board shows only what is durable,
/// and later batches are written behind it.
#[derive(Debug)]
pub struct Store {
    board: Board,
    log: Option<Log>,
    staged: Vec<Staged>,
    /// Written batches waiting for their sync, each with the offset it ends at.
    in_flight: VecDeque<(u64, Vec<Staged>)>,
    /// Names staged or in flight that are not on the board, so that a batch
    /// cannot overfill it.
    staged_new: HashSet<String>,
    /// Time of the last change: stamps never go back, even if the clock does.
    last_stamp: u64,
    /// How long a status lives without a refresh, in ms (`--ttl`).
    ttl_ms: Option<u64>,
    /// No status expires before this time, so [`Store::expire`] need not look.
    next_expiry: u64,
}

impl Store {
    /// A board that lives and dies with the process.
    pub fn in_memory(max_entries: usize) -> Store {
        Store::with(Board::new(max_entries), None)
    }

    fn with(board: Board, log: Option<Log>) -> Store {
        Store {
            board,
            log,
            staged: Vec::new(),
            in_flight: VecDeque::new(),
            staged_new: HashSet::new(),
            last_stamp: 0,
            ttl_ms: None,
            next_expiry: 0,
        }
    }

    /// Expire statuses not refreshed within `ttl_ms` (see [`Store::expire`]).
    pub fn set_ttl(&mut self, ttl_ms: Option<u64>) {
        self.ttl_ms = ttl_ms;
        self.next_expiry = 0;
    }

    /// Keep the board's changes for the publisher ([`Store::take_changes`]).
    pub fn record_changes(&mut self) {
        self.board.record_changes();
    }

    /// The board's changes since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<crate::board::Changed> {
        self.board.take_changes()
    }

    /// The number of the board's last change.
    pub fn seq(&self) -> u64 {
        self.board.seq()
    }

    /// The snapshot's entry lines for the current board.
    pub fn timed_encoding(&mut self) -> &[u8] {
        self.board.timed_encoding()
    }

    /// Now, in ms since the Unix epoch, never earlier than the last stamp.
    fn stamp(&mut self) -> u64 {
        self.last_stamp = now_ms().max(self.last_stamp);
        self.last_stamp
    }

    /// The board restored from `path`, kept there from now on.
    pub fn open(
        path: &Path,
        options: &StorageOptions,
        max_entries: usize,
    ) -> Result<(Store, OpenReport), StorageError> {
        let mut board = Board::new(max_entries);
        let (log, report) = Log::open(path, options, &mut board)?;
        Ok((Store::with(board, Some(log)), report))
    }

    /// Stages an update for the next [`Store::commit`]; a refused one changes nothing.
    pub fn stage(&mut self, name: &str, status: &str) -> Result<(), UpdateError> {
        let is_new = !self.board.contains(name) && !self.staged_new.contains(name);
        if is_new {
            self.board.check_room(name, self.staged_new.len())?;
        }
        let set_at_ms = self.stamp();
        let op = Op::Set {
            status: status.to_owned(),
            set_at_ms,
        };
        self.stage_op(name, op)?;
        if is_new {
            self.staged_new.insert(name.to_owned());
        }
        Ok(())
    }

    /// Stages the removal of `name` (`--clear`): whatever it holds once the
    /// changes staged before this one are applied.
    pub fn stage_clear(&mut self, name: &str) -> Result<(), StorageError> {
        let at_ms = self.stamp();
        let op = Op::Remove {
            set_by_ms: at_ms,
            why: Removal::Cleared,
            at_ms,
        };
        self.stage_op(name, op)
    }

    /// Stages the removal of every status older than the TTL; returns how many.
    ///
    /// Cheap until the oldest status is due: only then is the board scanned.
    pub fn expire(&mut self) -> Result<usize, StorageError> {
        let Some(ttl_ms) = self.ttl_ms else {
            return Ok(0);
        };
        let now = now_ms();
        if now < self.next_expiry {
            return Ok(0);
        }
        let cutoff = now.saturating_sub(ttl_ms);
        let due = self.board.set_no_later_than(cutoff);
        for (name, set_at_ms) in &due {
            // Only the status seen here: a refresh staged before it survives.
            let op = Op::Remove {
                set_by_ms: *set_at_ms,
                why: Removal::Expired,
                at_ms: now,
            };
            self.stage_op(name, op)?;
        }
        self.next_expiry = self
            .board
            .oldest_after(cutoff)
            .map_or(u64::MAX, |at| at.saturating_add(ttl_ms));
        Ok(due.len())
    }

    fn stage_op(&mut self, name: &str, op: Op) -> Result<(), StorageError> {
        if let Some(log) = &mut self.log {
            match &op {
                Op::Set { status, set_at_ms } => log.stage_set(name, status, *set_at_ms)?,
                Op::Remove { set_by_ms, .. } => log.stage_remove(name, *set_by_ms)?,
            }
        }
        self.staged.push(Staged {
            name: name.to_owned(),
            op,
        });
        Ok(())
    }

    /// Writes the staged updates; applies them now, or once they are durable.
    ///
    /// If writing fails, none is applied.
    pub fn commit(&mut self) -> Result<Committed, StorageError> {
        let Some(log) = &mut self.log else {
            let staged = std::mem::take(&mut self.staged);
            self.apply(&staged);
            return Ok(Committed::Applied);
        };
        if !self.in_flight.is_empty() && log.compaction_due(&self.board) {
            // Compaction writes the board, which lacks what is in flight: let it land.
            return Ok(Committed::Deferred);
        }
        match log.commit() {
            Ok(Durable::Now) => {
                let staged = std::mem::take(&mut self.staged);
                self.apply(&staged);
                Ok(Committed::Applied)
            }
            Ok(Durable::At(offset)) => {
                let staged = std::mem::take(&mut self.staged);
                self.in_flight.push_back((offset, staged));
                Ok(Committed::Syncing)
            }
            Err(err) => {
                self.staged.clear();
                self.recount_staged_new();
                Err(err)
            }
        }
    }

    /// Whether changes are staged for the next [`Store::commit`].
    pub fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Whether committed batches wait for their sync.
    pub fn is_syncing(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Readable after each sync (`--fsync always` only); then call [`Store::finish_syncs`].
    pub fn sync_fd(&self) -> Option<std::os::fd::RawFd> {
        self.log.as_ref().and_then(Log::sync_fd)
    }

    /// Applies the batches that are durable now, oldest first; returns how many.
    ///
    /// If a sync failed, every batch in flight is dropped unapplied and the
    /// error returned: their clients must be told.
    pub fn finish_syncs(&mut self) -> Result<usize, StorageError> {
        let Some(log) = &mut self.log else {
            return Ok(0);
        };
        if let Err(err) = log.take_wakeups() {
            self.in_flight.clear();
            self.recount_staged_new();
            return Err(err);
        }
        let durable = log.durable_offset();
        let mut done = 0;
        while self
            .in_flight
            .front()
            .is_some_and(|(end, _)| *end <= durable)
        {
            if let Some((_, batch)) = self.in_flight.pop_front() {
                self.apply(&batch);
                done += 1;
            }
        }
        Ok(done)
    }

    fn apply(&mut self, updates: &[Staged]) {
        for update in updates {
            match &update.op {
                Op::Set { status, set_at_ms } => {
                    // Room was checked when it was staged.
                    self.board.restore(&update.name, status, *set_at_ms);
                    if let Some(ttl) = self.ttl_ms {
                        self.next_expiry = self.next_expiry.min(set_at_ms.saturating_add(ttl));
                    }
                }
                Op::Remove {
                    set_by_ms,
                    why,
                    at_ms,
                } => {
                    self.board.remove(&update.name, *set_by_ms, *why, *at_ms);
                }
            }
        }
        self.recount_staged_new();
    }

    fn recount_staged_new(&mut self) {
        let board = &self.board;
        self.staged_new = self
            .staged
            .iter()
            .chain(self.in_flight.iter().flat_map(|(_, batch)| batch))
            .filter(|update| matches!(update.op, Op::Set { .. }) && !board.contains(&update.name))
            .map(|update| update.name.clone())
            .collect();
    }

    /// The reply for the current board.
    pub fn encoded(&mut self) -> &[u8] {
        self.board.encoded()
    }

    /// Periodic duties of the log (the `everysec` sync, compaction).
    ///
    /// Not while batches wait for their sync: compaction would leave them out.
    pub fn maintain(&mut self) -> Result<(), StorageError> {
        match &mut self.log {
            Some(log) if self.in_flight.is_empty() => log.maintain(&self.board),
            _ => Ok(()),
        }
    }

    /// Forces everything to disk before the server exits.
    pub fn close(&mut self) -> Result<(), StorageError> {
        match &mut self.log {
            Some(log) => log.close(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(name: &str, status: &str, at: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_set(&mut out, name, status, at).unwrap();
        out
    }

    fn options(repair: bool) -> StorageOptions {
        StorageOptions {
            fsync: Fsync::No,
            compact_at: 0,
            repair,
        }
    }

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
    fn a_record_round_trips() {
        let data = record("alice", ": in a meeting", 1_700_000_000_123);
        let (decoded, size) = decode(&data).unwrap();
        assert_eq!(size, data.len());
        assert_eq!(
            decoded,
            Record {
                kind: RecordKind::Set,
                name: "alice",
                status: ": in a meeting",
                set_at_ms: 1_700_000_000_123
            }
        );
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
        let (result, mut board, _) = replay_bytes(&data, false);
        assert!(result.is_ok());
        assert_eq!(board.encoded(), b"- carol: 4\n");
    }

    #[test]
    fn zeroes_are_not_a_record() {
        assert_eq!(decode(&[0; 64]), Err(DecodeError::BadLength));
    }

    #[test]
    fn a_torn_tail_is_dropped_with_a_warning() {
        let whole = log_file(&[record("a", ": 1", 1), record("b", ": 2", 2)]);
        let torn = &whole[..whole.len() - 3];
        let (result, mut board, report) = replay_bytes(torn, false);
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
        let (result, mut board, report) = replay_bytes(&data, false);
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
        let (result, mut board, report) = replay_bytes(&data, true);
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

    #[test]
    fn open_compact_and_reopen_keep_the_board() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s/state.log");
        let mut board = Board::new(10);
        let (mut log, report) = Log::open(&path, &options(false), &mut board).unwrap();
        assert_eq!(report.restored, 0);
        for (name, status) in [("a", ": 1"), ("b", ": 2"), ("a", ": 3")] {
            log.stage_set(name, status, 7).unwrap();
            log.commit().unwrap();
            board.set(name, status, 7).unwrap();
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

    fn valid_name() -> impl Strategy<Value = String> {
        "[^:\\p{Cc}]{1,12}".prop_filter("not the poll name", |n| n != "_")
    }

    proptest! {
        #[test]
        fn any_record_round_trips(name in valid_name(), text in "[^\\p{Cc}]{0,40}", at in any::<u64>()) {
            let status = format!(":{text}");
            let data = record(&name, &status, at);
            let (decoded, size) = decode(&data).unwrap();
            prop_assert_eq!(size, data.len());
            prop_assert_eq!(decoded, Record { kind: RecordKind::Set, name: &name, status: &status, set_at_ms: at });
        }

        #[test]
        fn any_cut_is_detected(name in valid_name(), text in "[^\\p{Cc}]{0,40}", cut in 0usize..60) {
            let data = record(&name, &format!(":{text}"), 1);
            let cut = cut.min(data.len() - 1);
            prop_assert!(decode(&data[..cut]).is_err());
        }

        #[test]
        fn any_flipped_byte_is_detected(name in valid_name(), text in "[^\\p{Cc}]{0,40}", at in 0usize..60, bit in 0u8..8) {
            let mut data = record(&name, &format!(":{text}"), 1);
            let at = at % data.len();
            data[at] ^= 1 << bit;
            prop_assert!(decode(&data).is_err());
        }
    }
}
