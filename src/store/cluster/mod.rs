//! The board kept in etcd (`status_server --etcd`): a copy fed by a watch,
//! and writes through a thread that waits for etcd to commit them.
//!
//! Keys, under the prefix (`--etcd-prefix`):
//! - `names/NAME` → `{"status":": text","set_at_ms":N}`, one per name on the
//!   board; etcd's `create_revision` orders them (first seen first);
//! - `removed/NAME` → `{"why":"cleared"|"expired","at_ms":N}`, written in the
//!   same transaction that deletes `names/NAME`, so that every gateway's
//!   watchers can tell a clear from an expiry; deleted when the name is set
//!   again, so there is at most one per name.
//!
//! Two threads work for the serve loop, which never waits on the network:
//! - the watcher loads the prefix (a range) and then follows it (a watch),
//!   moving to another member when its own goes quiet while writes commit
//!   elsewhere, and loading again when the revisions it needs are compacted;
//! - the writer runs each batch's transactions within [`WRITE_WITHIN`], and
//!   when idle asks a majority for the cluster's revision once a second, so
//!   that a lost quorum is noticed without an update.
//!
//! Both hand what they learn to the serve loop through a channel and wake it
//! through a socket pair it polls beside its requests.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::board::Board;
use crate::etcd::{Compare, Credentials, Etcd, EtcdError, Op, TlsFiles, Url};
use crate::protocol::Removal;
use crate::side_thread::SideThread;

mod replica;
mod threads;

pub(crate) use replica::Txn;
use replica::{PUTS_PER_TXN, Replica};
use threads::{Feed, Job, Notify, watch_loop, write_loop};

/// Longest an update waits for etcd: past it the update is refused as
/// unavailable (the bound is 2 s, with room for the reply).
pub(crate) const WRITE_WITHIN: Duration = Duration::from_millis(1_800);

/// How often an idle gateway checks that a majority answers.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A watch that lags a committed write by this much is moved to another member.
const WATCH_LAG: Duration = Duration::from_millis(1_000);

/// Longest a start waits for the first copy of the board.
const START_WITHIN: Duration = Duration::from_secs(10);

/// Why the gateway could not start on etcd.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// An `--etcd` URL cannot be used.
    #[error("bad --etcd URL {0}")]
    Url(String),
    /// etcd did not give the board within the start's bound.
    #[error("cannot load the board from etcd at {members}")]
    Load {
        /// The members tried.
        members: String,
        #[source]
        source: EtcdStartError,
    },
    /// `--import`: the state file cannot be read.
    #[error("cannot import {path}")]
    Import {
        /// The state file.
        path: std::path::PathBuf,
        #[source]
        source: crate::storage::StorageError,
    },
    /// `--import`: etcd did not take the board.
    #[error("cannot import into etcd")]
    ImportWrite(#[source] EtcdStartError),
    /// TLS to etcd cannot be set up.
    #[error("TLS to etcd: {0}")]
    Tls(String),
    /// The watcher or writer thread could not start.
    #[error("cannot start the etcd {0} thread")]
    Thread(&'static str, #[source] std::io::Error),
}

/// What etcd said when the gateway started (a wrapper keeps `etcd` private).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct EtcdStartError(EtcdError);

/// What `--etcd` says: where the cluster is and where on it the board lives.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The members' client URLs, `http://HOST:PORT`.
    pub urls: Vec<String>,
    /// The prefix every key of this board starts with.
    pub prefix: String,
    /// etcd's user and password, if it wants logins.
    pub credentials: Option<Credentials>,
    /// TLS to etcd (`https://` URLs): the CA, and a client certificate.
    pub tls: Option<TlsFiles>,
}

/// What happened to the quorum, for the server to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    /// No majority answers: updates are refused, polls served from the copy.
    Lost(String),
    /// A majority answers again.
    Back,
    /// The copy was loaded again (a compaction, or the first load).
    Loaded { names: usize, revision: i64 },
}

/// The gateway's side of the cluster: the channel from its threads.
pub(crate) struct Cluster {
    /// The copy's etcd facts: keys, revisions, markers.
    replica: Replica,
    /// `etcd-CLUSTER-PREFIXHASH`: the same on every gateway of this board.
    pub(crate) epoch: String,
    jobs: mpsc::Sender<Job>,
    feed: mpsc::Receiver<Feed>,
    wake: UnixStream,
    /// The highest revision a write of ours committed at (the watch must reach it).
    committed: Arc<AtomicI64>,
    /// Batches done: their revision, or why they were refused.
    written: HashMap<u64, Result<i64, String>>,
    next_job: u64,
    /// Since when (ms since the Unix epoch) no majority answers.
    stale_since_ms: Option<u64>,
    health: Vec<Health>,
    /// For `--import`, at start.
    setup: Etcd,
    _writer: SideThread,
    _watcher: SideThread,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("epoch", &self.epoch)
            .field("revision", &self.replica.revision)
            .finish_non_exhaustive()
    }
}

/// What `--import` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Names added to the cluster's board.
    pub added: usize,
    /// Names the cluster's board had already: their status there stays.
    pub kept: usize,
}

/// The outcome of a batch, once known and in the copy.
pub(crate) enum Done {
    Stored,
    Refused(String),
}

impl Cluster {
    /// Connects, loads the board (within [`START_WITHIN`]) and starts the threads.
    pub(crate) fn start(
        config: &ClusterConfig,
        max_entries: usize,
    ) -> Result<(Cluster, Board), ClusterError> {
        let urls = config
            .urls
            .iter()
            .map(|u| Url::parse(u).map_err(ClusterError::Url))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match &config.tls {
            Some(files) => Some(crate::etcd::load_tls(files).map_err(ClusterError::Tls)?),
            None => None,
        };
        match (urls.iter().any(|u| u.tls), urls.iter().all(|u| u.tls), &tls) {
            (true, true, Some(_)) | (false, _, None) => {}
            (true, true, None) => {
                return Err(ClusterError::Tls("https:// URLs need --etcd-ca".into()));
            }
            _ => {
                return Err(ClusterError::Tls(
                    "give every --etcd URL as https:// (with --etcd-ca), or none".into(),
                ));
            }
        }
        let prefix = config.prefix.as_bytes().to_vec();
        let new_client = || Etcd::new(urls.clone(), config.credentials.clone(), tls.clone());
        let setup = new_client();
        let mut etcd = new_client();
        let (header, kvs) = etcd
            .range_prefix(&prefix, Instant::now() + START_WITHIN)
            .map_err(|err| ClusterError::Load {
                members: config.urls.join(","),
                source: EtcdStartError(err),
            })?;
        let (wake_tx, wake) = UnixStream::pair().map_err(|e| ClusterError::Thread("wake", e))?;
        wake.set_nonblocking(true)
            .map_err(|e| ClusterError::Thread("wake", e))?;
        wake_tx
            .set_nonblocking(true)
            .map_err(|e| ClusterError::Thread("wake", e))?;
        let wake_tx = Arc::new(wake_tx);
        let (feed_tx, feed) = mpsc::channel();
        let (jobs, jobs_rx) = mpsc::channel();
        let committed = Arc::new(AtomicI64::new(0));
        let writer = {
            let etcd = new_client();
            let notify = Notify {
                feed: feed_tx.clone(),
                wake: wake_tx.clone(),
            };
            let prefix = prefix.clone();
            SideThread::spawn("etcd writer", move |stop| {
                write_loop(etcd, &prefix, &jobs_rx, &notify, stop);
            })
            .map_err(|e| ClusterError::Thread("writer", e))?
        };
        let watcher = {
            let notify = Notify {
                feed: feed_tx,
                wake: wake_tx,
            };
            let prefix = prefix.clone();
            let committed = committed.clone();
            let start = header.revision + 1;
            SideThread::spawn("etcd watcher", move |stop| {
                watch_loop(etcd, &prefix, start, &committed, &notify, stop);
            })
            .map_err(|e| ClusterError::Thread("watcher", e))?
        };
        let mut cluster = Cluster {
            replica: Replica::new(&prefix),
            epoch: epoch(header.cluster_id, &prefix),
            jobs,
            feed,
            wake,
            committed,
            written: HashMap::new(),
            next_job: 0,
            stale_since_ms: None,
            health: Vec::new(),
            setup,
            _writer: writer,
            _watcher: watcher,
        };
        let mut board = Board::new(max_entries);
        cluster.replica.load(&mut board, header, kvs);
        Ok((cluster, board))
    }

    /// Adds the entries whose names are not on the board yet, in their
    /// order, each with its time; waits (10 s at most) for the copy to show them.
    pub(crate) fn import(
        &mut self,
        board: &mut Board,
        entries: &[(String, String, u64)],
    ) -> Result<Imported, ClusterError> {
        let mut imported = Imported { added: 0, kept: 0 };
        let mut last = 0;
        let failed = |err| ClusterError::ImportWrite(EtcdStartError(err));
        for chunk in entries.chunks(PUTS_PER_TXN) {
            let deadline = Instant::now() + START_WITHIN;
            let replica = &self.replica;
            let absent = |name: &str| Compare::Absent {
                key: replica.name_key(name),
            };
            let put = |(name, status, at): &(String, String, u64)| replica.put(name, status, *at);
            let compare: Vec<Compare> = chunk.iter().map(|(name, ..)| absent(name)).collect();
            let ops: Vec<Op> = chunk.iter().map(put).collect();
            let setup = &mut self.setup;
            let (header, all) = setup.txn(&compare, &ops, deadline).map_err(failed)?;
            if all {
                imported.added += chunk.len();
                last = header.revision;
                continue;
            }
            // Some are there already: one at a time, so that those stay.
            for entry in chunk {
                let (header, added) = setup
                    .txn(&[absent(&entry.0)], &[put(entry)], deadline)
                    .map_err(failed)?;
                if added {
                    imported.added += 1;
                    last = header.revision;
                } else {
                    imported.kept += 1;
                }
            }
        }
        let until = Instant::now() + START_WITHIN;
        while self.replica.revision < last && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
            self.receive(board);
        }
        self.health.clear();
        Ok(imported)
    }

    /// Readable when the threads have news: poll it beside the requests.
    pub(crate) fn wake_fd(&self) -> std::os::fd::RawFd {
        self.wake.as_raw_fd()
    }

    /// Since when no majority answers, if none does now.
    pub(crate) fn stale_since_ms(&self) -> Option<u64> {
        self.stale_since_ms
    }

    /// What happened to the quorum since the last call.
    pub(crate) fn take_health(&mut self) -> Vec<Health> {
        std::mem::take(&mut self.health)
    }

    /// A put of `name`'s status (and the delete of its removal marker).
    pub(crate) fn set_ops(&self, name: &str, status: &str, set_at_ms: u64) -> Vec<Op> {
        self.replica.set_ops(name, status, set_at_ms)
    }

    /// The transaction that removes `name` (see [`Replica::removal`]).
    pub(crate) fn removal(&self, name: &str, why: Removal, at_ms: u64) -> Txn {
        self.replica.removal(name, why, at_ms)
    }

    /// The transactions of a batch of changes (see [`Replica::batch`]).
    pub(crate) fn batch(changes: Vec<(String, Vec<Op>, Option<Txn>)>) -> Vec<Txn> {
        Replica::batch(changes)
    }

    /// Sends a batch to the writer; its outcome comes from [`Cluster::take_done`].
    pub(crate) fn send(&mut self, txns: Vec<Txn>) -> u64 {
        let id = self.next_job;
        self.next_job += 1;
        let job = Job {
            id,
            txns,
            sent: Instant::now(),
        };
        if self.jobs.send(job).is_err() {
            self.written
                .insert(id, Err("the etcd writer thread has stopped".into()));
        }
        id
    }

    /// The outcome of batch `id` once it is known and, if stored, in the copy.
    pub(crate) fn take_done(&mut self, id: u64) -> Option<Done> {
        match self.written.get(&id)? {
            Ok(revision) if *revision > self.replica.revision => None,
            Ok(_) => {
                self.written.remove(&id);
                Some(Done::Stored)
            }
            Err(_) => match self.written.remove(&id) {
                Some(Err(why)) => Some(Done::Refused(why)),
                _ => None,
            },
        }
    }

    /// Takes what the threads said, applying the watch's changes to `board`.
    pub(crate) fn receive(&mut self, board: &mut Board) {
        let mut byte = [0u8; 256];
        while matches!(self.wake.read(&mut byte), Ok(n) if n > 0) {}
        while let Ok(feed) = self.feed.try_recv() {
            match feed {
                Feed::Loaded(header, kvs) => {
                    let loaded = self.replica.load(board, header, kvs);
                    self.health.push(loaded);
                }
                Feed::Changed(events) => self.replica.apply(board, &events),
                Feed::Written(id, result) => {
                    if let Ok(revision) = result {
                        self.committed.fetch_max(revision, Ordering::SeqCst);
                        self.healthy();
                    }
                    self.written.insert(id, result);
                }
                Feed::Health(Ok(())) => self.healthy(),
                Feed::Health(Err(why)) => {
                    if self.stale_since_ms.is_none() {
                        self.stale_since_ms = Some(crate::clock::now_ms());
                        self.health.push(Health::Lost(why));
                    }
                }
            }
        }
    }

    fn healthy(&mut self) {
        if self.stale_since_ms.take().is_some() {
            self.health.push(Health::Back);
        }
    }
}

/// The epoch of a board on a cluster: the same for every gateway of it.
fn epoch(cluster_id: u64, prefix: &[u8]) -> String {
    // FNV-1a: stable across processes and versions (RandomState is not).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in prefix {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100_0000_01b3);
    }
    format!("etcd-{cluster_id:016x}-{:08x}", hash as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_is_the_same_for_the_same_cluster_and_prefix_only() {
        assert_eq!(epoch(7, b"/status-board/"), epoch(7, b"/status-board/"));
        assert_ne!(epoch(7, b"/status-board/"), epoch(8, b"/status-board/"));
        assert_ne!(epoch(7, b"/status-board/"), epoch(7, b"/other/"));
    }
}
