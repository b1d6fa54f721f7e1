//! The board and its log together: an update is applied only once stored.
//!
//! This is the domain logic between the serve loop and the state file:
//! updates and clears are staged, written as one batch, and applied to the
//! board once durable; statuses older than the TTL are expired; every change
//! is stamped with a time that never goes back.
//!
//! The server's one door to the board: what it needs of `board` is
//! re-exported here. The store prints nothing: what it did on its own (an
//! expiry, the state file written again) it returns as [`Event`]s, for the
//! server to print.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::board::Board;
use crate::clock::Clock;
use crate::protocol::Removal;
use crate::storage::{Durable, Log, StorageError, StorageOptions};

mod cluster;
mod gateway;
mod restore;

pub(crate) use cluster::Health;
pub use cluster::{ClusterConfig, ClusterError, Imported};

pub(crate) use crate::board::{BoardError, Change, ChangeKind, names};
pub(crate) use restore::OpenReport;
#[cfg(fuzzing)]
pub(crate) use restore::restore;

/// Why an update was not applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpdateError {
    /// The board refused it (full).
    #[error(transparent)]
    Board(#[from] BoardError),
    /// It could not be stored, so it was not applied.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// How often an idle server looks whether its state file is still there.
const ATTACH_CHECK_EVERY: Duration = Duration::from_secs(1);

/// What the store did on its own, for the server to tell: taken with
/// [`Store::take_events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A status not refreshed within the TTL goes with the next commit.
    Expired {
        /// Whose.
        name: String,
        /// How long ago it was set.
        age: Duration,
    },
    /// The state file was deleted or replaced while in use: the board was
    /// written to its path again.
    Reattached {
        /// The state file.
        path: PathBuf,
        /// Names on the board written there.
        names: usize,
    },
    /// On a gateway: the etcd cluster's quorum was lost or is back, or the
    /// copy was loaded again.
    Cluster(Health),
}

/// How a batch in flight ended (see [`Store::finish_syncs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Synced {
    /// Durable and on the board: answer it with the board.
    Stored,
    /// Not stored (on a gateway: etcd had no quorum); why, for the log.
    Refused(String),
}

/// Writes the whole board to the log's path again, after the file there was
/// deleted or replaced; returns the event that says so.
fn reattach(log: &mut Log, board: &Board) -> Result<Event, StorageError> {
    log.compact(board)?;
    Ok(Event::Reattached {
        path: log.path().to_owned(),
        names: board.len(),
    })
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
pub(crate) enum Committed {
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
pub(crate) struct Store {
    board: Board,
    log: Option<Log>,
    /// On a gateway (`--etcd`): the board lives in etcd, this is its copy.
    cluster: Option<cluster::Cluster>,
    staged: Vec<Staged>,
    /// Written batches waiting for their sync, each with the offset it ends
    /// at (on a gateway: its job number at the etcd writer).
    in_flight: VecDeque<(u64, Vec<Staged>)>,
    /// Names staged or in flight that are not on the board, so that a batch
    /// cannot overfill it.
    staged_new: HashSet<String>,
    /// Where the time comes from (set by hand in unit tests).
    clock: Clock,
    /// Time of the last change: stamps never go back, even if the clock does.
    last_stamp: u64,
    /// When [`Store::maintain`] last looked whether the state file is still there.
    last_attach_check: Instant,
    /// How long a status lives without a refresh, in ms (`--ttl`).
    ttl_ms: Option<u64>,
    /// No status expires before this time, so [`Store::expire`] need not look.
    next_expiry: u64,
    /// What happened since the server last took them.
    events: Vec<Event>,
}

impl Store {
    /// A board that lives and dies with the process.
    pub(crate) fn in_memory(max_entries: usize) -> Store {
        Store::with(Board::new(max_entries), None)
    }

    fn with(board: Board, log: Option<Log>) -> Store {
        Store {
            board,
            log,
            cluster: None,
            staged: Vec::new(),
            in_flight: VecDeque::new(),
            staged_new: HashSet::new(),
            clock: Clock::default(),
            last_stamp: 0,
            last_attach_check: Instant::now(),
            ttl_ms: None,
            next_expiry: 0,
            events: Vec::new(),
        }
    }

    /// Expire statuses not refreshed within `ttl_ms` (see [`Store::expire`]).
    pub(crate) fn set_ttl(&mut self, ttl_ms: Option<u64>) {
        self.ttl_ms = ttl_ms;
        self.next_expiry = 0;
    }

    /// Keep the board's changes for the publisher ([`Store::take_changes`]).
    pub(crate) fn record_changes(&mut self) {
        self.board.record_changes();
    }

    /// What the store did on its own since the last call, oldest first.
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The board's changes since the last call, oldest first.
    pub(crate) fn take_changes(&mut self) -> Vec<Change> {
        self.board.take_changes()
    }

    /// The number of the board's last change.
    pub(crate) fn seq(&self) -> u64 {
        self.board.seq()
    }

    /// Appends the snapshot's entry lines for the current board to `out`.
    pub(crate) fn write_timed(&self, out: &mut Vec<u8>) {
        self.board.write_timed(out);
    }

    /// Now by the store's clock, in ms since the Unix epoch.
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Now, in ms since the Unix epoch, never earlier than the last stamp.
    fn stamp(&mut self) -> u64 {
        self.last_stamp = self.clock.now_ms().max(self.last_stamp);
        self.last_stamp
    }

    /// The board restored from `path`, kept there from now on.
    pub(crate) fn open(
        path: &Path,
        options: &StorageOptions,
        max_entries: usize,
    ) -> Result<(Store, OpenReport), StorageError> {
        let (board, log, report) = restore::open(path, options, max_entries)?;
        Ok((Store::with(board, Some(log)), report))
    }

    /// Stages an update for the next [`Store::commit`]; a refused one changes nothing.
    pub(crate) fn stage(&mut self, name: &str, status: &str) -> Result<(), UpdateError> {
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
    pub(crate) fn stage_clear(&mut self, name: &str) -> Result<(), StorageError> {
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
    pub(crate) fn expire(&mut self) -> Result<usize, StorageError> {
        let Some(ttl_ms) = self.ttl_ms else {
            return Ok(0);
        };
        let now = self.clock.now_ms();
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
            self.events.push(Event::Expired {
                name: name.clone(),
                age: Duration::from_millis(now.saturating_sub(*set_at_ms)),
            });
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
    pub(crate) fn commit(&mut self) -> Result<Committed, StorageError> {
        if self.cluster.is_some() {
            return Ok(self.commit_to_cluster());
        }
        let Some(log) = &mut self.log else {
            let staged = std::mem::take(&mut self.staged);
            self.apply(&staged);
            return Ok(Committed::Applied);
        };
        let detached = log.detached();
        if !self.in_flight.is_empty() && (detached || log.compaction_due(&self.board)) {
            // Both write the board, which lacks what is in flight: let it land.
            return Ok(Committed::Deferred);
        }
        if detached {
            // Appending to a file the path no longer names would lose it all
            // at the next start: put the board back at the path first.
            match reattach(log, &self.board) {
                Ok(event) => self.events.push(event),
                Err(err) => {
                    self.staged.clear();
                    self.recount_staged_new();
                    return Err(err);
                }
            }
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

    /// Whether `name` is on the board.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.board.contains(name)
    }

    /// Names on the board.
    pub(crate) fn len(&self) -> usize {
        self.board.len()
    }

    /// Whether changes are staged for the next [`Store::commit`].
    pub(crate) fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Whether committed batches wait for their sync.
    pub(crate) fn is_syncing(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Readable after each sync (`--fsync always` only); then call [`Store::finish_syncs`].
    pub(crate) fn sync_fd(&self) -> Option<std::os::fd::RawFd> {
        if let Some(cluster) = &self.cluster {
            return Some(cluster.wake_fd());
        }
        self.log.as_ref().and_then(Log::sync_fd)
    }

    /// Applies the batches that are durable now, oldest first; returns how
    /// each ended.
    ///
    /// If a sync failed, every batch in flight is dropped unapplied and the
    /// error returned: their clients must be told. On a gateway a batch is
    /// done once etcd committed it and the watch brought it into the copy,
    /// or once etcd refused it.
    pub(crate) fn finish_syncs(&mut self) -> Result<Vec<Synced>, StorageError> {
        if self.cluster.is_some() {
            return Ok(self.finish_cluster_syncs());
        }
        let Some(log) = &mut self.log else {
            return Ok(Vec::new());
        };
        if let Err(err) = log.take_wakeups() {
            self.in_flight.clear();
            self.recount_staged_new();
            return Err(err);
        }
        let durable = log.durable_offset();
        let mut done = Vec::new();
        while self
            .in_flight
            .front()
            .is_some_and(|(end, _)| *end <= durable)
        {
            if let Some((_, batch)) = self.in_flight.pop_front() {
                self.apply(&batch);
                done.push(Synced::Stored);
            }
        }
        Ok(done)
    }

    fn apply(&mut self, updates: &[Staged]) {
        for update in updates {
            match &update.op {
                Op::Set { status, set_at_ms } => {
                    // Room was checked when it was staged.
                    self.board.apply_set(&update.name, status, *set_at_ms);
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

    /// The reply for the current board (tests read it; the server sends
    /// [`Store::shared_reply`]).
    #[cfg(test)]
    pub(crate) fn encoded(&self) -> &[u8] {
        self.board.encoded()
    }

    /// The reply for the current board, shared, to be sent without a copy.
    pub(crate) fn shared_reply(&self) -> Arc<Vec<u8>> {
        self.board.shared_reply()
    }

    /// Periodic duties of the log (the `everysec` sync, compaction).
    ///
    /// Not while batches wait for their sync: compaction would leave them out.
    pub(crate) fn maintain(&mut self) -> Result<(), StorageError> {
        let Some(log) = &mut self.log else {
            return Ok(());
        };
        if !self.in_flight.is_empty() {
            return Ok(());
        }
        // Once a second with nothing else to do: the board goes back to a
        // deleted path even when no update comes to notice it.
        if self.last_attach_check.elapsed() >= ATTACH_CHECK_EVERY {
            self.last_attach_check = Instant::now();
            if log.detached() {
                self.events.push(reattach(log, &self.board)?);
            }
        }
        log.maintain(&self.board)
    }

    /// Forces everything to disk before the server exits, waiting for the
    /// disk `within` this at most; the board stays, in memory only.
    pub(crate) fn close(&mut self, within: Duration) -> Result<(), StorageError> {
        match self.log.take() {
            Some(log) => log.close(Instant::now() + within),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// An in-memory store whose clock stands at `start_ms` until moved.
    fn store_at(start_ms: u64, ttl_ms: Option<u64>) -> (Store, Arc<AtomicU64>) {
        let mut store = Store::in_memory(10);
        let (clock, hand) = Clock::manual(start_ms);
        store.clock = clock;
        store.set_ttl(ttl_ms);
        (store, hand)
    }

    fn update(store: &mut Store, name: &str, status: &str) {
        store.stage(name, status).expect("staged");
        assert_eq!(store.commit().expect("committed"), Committed::Applied);
    }

    #[test]
    fn a_status_expires_when_its_ttl_has_passed_and_not_before() {
        let (mut store, hand) = store_at(1_000, Some(500));
        update(&mut store, "a", ": 1");
        hand.store(1_499, Ordering::SeqCst);
        assert_eq!(store.expire().expect("expire"), 0);
        hand.store(1_500, Ordering::SeqCst);
        assert_eq!(store.expire().expect("expire"), 1);
        store.commit().expect("committed");
        assert_eq!(store.encoded(), b"");
    }

    #[test]
    fn a_refresh_staged_before_the_expiry_survives_it() {
        let (mut store, hand) = store_at(1_000, Some(500));
        update(&mut store, "a", ": 1");
        hand.store(1_600, Ordering::SeqCst);
        // Staged, not yet applied, when the expiry looks at the board.
        store.stage("a", ": 2").expect("staged");
        assert_eq!(store.expire().expect("expire"), 1);
        store.commit().expect("committed");
        assert_eq!(store.encoded(), b"- a: 2\n");
        assert_eq!(timed(&store), b"1600 a: 2\n");
    }

    #[test]
    fn stamps_never_go_back_when_the_clock_does() {
        let (mut store, hand) = store_at(5_000, None);
        update(&mut store, "a", ": 1");
        hand.store(4_000, Ordering::SeqCst);
        update(&mut store, "b", ": 2");
        assert_eq!(timed(&store), b"5000 a: 1\n5000 b: 2\n");
    }

    #[test]
    fn an_expiry_is_an_event_with_its_age() {
        let (mut store, hand) = store_at(1_000, Some(500));
        update(&mut store, "a", ": 1");
        assert!(store.take_events().is_empty());
        hand.store(2_700, Ordering::SeqCst);
        assert_eq!(store.expire().expect("expire"), 1);
        assert_eq!(
            store.take_events(),
            [Event::Expired {
                name: "a".into(),
                age: Duration::from_millis(1_700)
            }]
        );
        assert!(store.take_events().is_empty(), "taken once");
    }

    fn options(repair: bool) -> StorageOptions {
        StorageOptions {
            fsync: crate::storage::Fsync::No,
            compact_at: u64::MAX,
            repair,
        }
    }

    #[test]
    fn a_state_file_deleted_while_in_use_is_written_again_with_an_event() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("board.log");
        let (mut store, _) = Store::open(&path, &options(false), 10).expect("open");
        update(&mut store, "a", ": 1");
        std::fs::remove_file(&path).expect("rm");
        update(&mut store, "b", ": 2");
        assert_eq!(
            store.take_events(),
            [Event::Reattached {
                path: path.clone(),
                names: 1
            }]
        );
        store.close(Duration::from_secs(30)).expect("closed");
        let (again, report) = Store::open(&path, &options(false), 10).expect("reopen");
        assert_eq!(report.restored, 2);
        assert_eq!(again.encoded(), b"- a: 1\n- b: 2\n");
    }

    fn timed(store: &Store) -> Vec<u8> {
        let mut out = Vec::new();
        store.write_timed(&mut out);
        out
    }
}
