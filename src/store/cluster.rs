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

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::board::Board;
use crate::etcd::{
    Compare, Credentials, Etcd, EtcdError, Header, KeyValue, Op, TlsFiles, Url, WatchEvent,
};
use crate::protocol::Removal;
use crate::shutdown::Shutdown;
use crate::side_thread::SideThread;

/// Longest an update waits for etcd: past it the update is refused as
/// unavailable (the bound is 2 s, with room for the reply).
pub(crate) const WRITE_WITHIN: Duration = Duration::from_millis(1_800);

/// How often an idle gateway checks that a majority answers.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A watch that lags a committed write by this much is moved to another member.
const WATCH_LAG: Duration = Duration::from_millis(1_000);

/// Longest a start waits for the first copy of the board.
const START_WITHIN: Duration = Duration::from_secs(10);

/// Puts per transaction: etcd takes 128 operations at most by default, and a
/// put may come with the delete of its removal marker.
const PUTS_PER_TXN: usize = 60;

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

/// A name's value in etcd.
#[derive(Debug, Serialize, Deserialize)]
struct NameValue {
    status: String,
    set_at_ms: u64,
}

/// A removal marker's value in etcd.
#[derive(Debug, Serialize, Deserialize)]
struct RemovedValue {
    why: String,
    at_ms: u64,
}

/// A write to make: one transaction.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    compare: Vec<Compare>,
    ops: Vec<Op>,
}

/// A batch of transactions, answered together.
struct Job {
    id: u64,
    txns: Vec<Txn>,
}

/// What the threads tell the serve loop.
enum Feed {
    /// A fresh copy of everything under the prefix.
    Loaded(Header, Vec<KeyValue>),
    /// The changes of one watch answer (one or more revisions).
    Changed(Vec<WatchEvent>),
    /// A batch was committed at this revision, or refused.
    Written(u64, Result<i64, String>),
    /// Whether a majority answers; why not.
    Health(Result<(), String>),
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
    names_prefix: Vec<u8>,
    removed_prefix: Vec<u8>,
    /// `etcd-CLUSTER-PREFIXHASH`: the same on every gateway of this board.
    pub(crate) epoch: String,
    jobs: mpsc::Sender<Job>,
    feed: mpsc::Receiver<Feed>,
    wake: UnixStream,
    /// The highest revision a write of ours committed at (the watch must reach it).
    committed: Arc<AtomicI64>,
    /// Each name's last modification, for an expiry's transaction.
    mod_revisions: HashMap<String, i64>,
    /// Names with a removal marker in etcd.
    markers: HashSet<String>,
    /// The revision the copy is current to.
    revision: i64,
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
            .field("revision", &self.revision)
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
            names_prefix: [&prefix[..], b"names/"].concat(),
            removed_prefix: [&prefix[..], b"removed/"].concat(),
            epoch: epoch(header.cluster_id, &prefix),
            jobs,
            feed,
            wake,
            committed,
            mod_revisions: HashMap::new(),
            markers: HashSet::new(),
            revision: 0,
            written: HashMap::new(),
            next_job: 0,
            stale_since_ms: None,
            health: Vec::new(),
            setup,
            _writer: writer,
            _watcher: watcher,
        };
        let mut board = Board::new(max_entries);
        cluster.load(&mut board, header, kvs);
        cluster.health.clear();
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
            let names_prefix = &self.names_prefix;
            let key = |name: &str| [&names_prefix[..], name.as_bytes()].concat();
            let absent = |name: &str| Compare::Absent { key: key(name) };
            let put = |(name, status, at): &(String, String, u64)| Op::Put {
                key: key(name),
                value: serde_json::to_vec(&NameValue {
                    status: status.clone(),
                    set_at_ms: *at,
                })
                .unwrap_or_default(),
            };
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
        while self.revision < last && Instant::now() < until {
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

    /// The key of a name's status.
    fn name_key(&self, name: &str) -> Vec<u8> {
        [&self.names_prefix[..], name.as_bytes()].concat()
    }

    fn removed_key(&self, name: &str) -> Vec<u8> {
        [&self.removed_prefix[..], name.as_bytes()].concat()
    }

    /// A put of `name`'s status (and the delete of its removal marker).
    pub(crate) fn set_ops(&self, name: &str, status: &str, set_at_ms: u64) -> Vec<Op> {
        let value = NameValue {
            status: status.to_owned(),
            set_at_ms,
        };
        let mut ops = vec![Op::Put {
            key: self.name_key(name),
            value: serde_json::to_vec(&value).unwrap_or_default(),
        }];
        if self.markers.contains(name) {
            ops.push(Op::Delete {
                key: self.removed_key(name),
            });
        }
        ops
    }

    /// The transaction that removes `name`: a clear if it is there at all, an
    /// expiry only if nobody changed it since the copy saw it.
    pub(crate) fn removal(&self, name: &str, why: Removal, at_ms: u64) -> Txn {
        let key = self.name_key(name);
        let compare = match (why, self.mod_revisions.get(name)) {
            (Removal::Expired, Some(&revision)) => Compare::ModRevision {
                key: key.clone(),
                revision,
            },
            _ => Compare::Exists { key: key.clone() },
        };
        let marker = RemovedValue {
            why: why.as_str().to_owned(),
            at_ms,
        };
        Txn {
            compare: vec![compare],
            ops: vec![
                Op::Delete { key },
                Op::Put {
                    key: self.removed_key(name),
                    value: serde_json::to_vec(&marker).unwrap_or_default(),
                },
            ],
        }
    }

    /// Sends a batch to the writer; its outcome comes from [`Cluster::take_done`].
    pub(crate) fn send(&mut self, txns: Vec<Txn>) -> u64 {
        let id = self.next_job;
        self.next_job += 1;
        if self.jobs.send(Job { id, txns }).is_err() {
            self.written
                .insert(id, Err("the etcd writer thread has stopped".into()));
        }
        id
    }

    /// The outcome of batch `id` once it is known and, if stored, in the copy.
    pub(crate) fn take_done(&mut self, id: u64) -> Option<Done> {
        match self.written.get(&id)? {
            Ok(revision) if *revision > self.revision => None,
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
                Feed::Loaded(header, kvs) => self.load(board, header, kvs),
                Feed::Changed(events) => self.apply(board, &events),
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

    /// Replaces the copy with what a range found.
    fn load(&mut self, board: &mut Board, header: Header, kvs: Vec<KeyValue>) {
        let recording = board.records_changes();
        let mut fresh = Board::new(board.max_entries());
        self.mod_revisions.clear();
        self.markers.clear();
        for kv in &kvs {
            if let Some(name) = self.name_of(&kv.key, true) {
                if let Some(value) = parse_value::<NameValue>(&kv.value) {
                    fresh.apply_set(&name, &value.status, value.set_at_ms);
                    self.mod_revisions.insert(name, kv.mod_revision);
                }
            } else if let Some(name) = self.name_of(&kv.key, false) {
                self.markers.insert(name);
            }
        }
        let revision = header.revision.max(self.revision);
        fresh.set_seq(u64::try_from(revision).unwrap_or(0));
        if recording {
            fresh.record_changes();
        }
        *board = fresh;
        self.revision = revision;
        self.health.push(Health::Loaded {
            names: board.len(),
            revision,
        });
    }

    /// Applies one watch answer's events, revision by revision.
    fn apply(&mut self, board: &mut Board, events: &[WatchEvent]) {
        let mut i = 0;
        while i < events.len() {
            let revision = events[i].kv.mod_revision;
            let end = events[i..]
                .iter()
                .position(|e| e.kv.mod_revision != revision)
                .map_or(events.len(), |n| i + n);
            let group = &events[i..end];
            i = end;
            if revision <= self.revision {
                continue; // seen already (a watch restarted a little early)
            }
            // The removal markers of this revision first: they say why.
            let mut why: HashMap<String, (Removal, u64)> = HashMap::new();
            for event in group {
                if let Some(name) = self.name_of(&event.kv.key, false) {
                    if event.is_delete() {
                        self.markers.remove(&name);
                    } else {
                        if let Some(value) = parse_value::<RemovedValue>(&event.kv.value) {
                            let removal = match value.why.as_str() {
                                "expired" => Removal::Expired,
                                _ => Removal::Cleared,
                            };
                            why.insert(name.clone(), (removal, value.at_ms));
                        }
                        self.markers.insert(name);
                    }
                }
            }
            board.number_as(u64::try_from(revision).unwrap_or(0));
            for event in group {
                let Some(name) = self.name_of(&event.kv.key, true) else {
                    continue;
                };
                if event.is_delete() {
                    self.mod_revisions.remove(&name);
                    let (removal, at_ms) = why
                        .get(&name)
                        .copied()
                        .unwrap_or((Removal::Cleared, crate::clock::now_ms()));
                    board.remove(&name, u64::MAX, removal, at_ms);
                } else if let Some(value) = parse_value::<NameValue>(&event.kv.value) {
                    // Anything under the prefix may be written by anyone with
                    // etcd's keys: a value that is not a status is skipped.
                    board.apply_set(&name, &value.status, value.set_at_ms);
                    self.mod_revisions.insert(name, revision);
                }
            }
            self.revision = revision;
        }
    }

    /// The name a key is about, if it is a name key (or a marker key), and a
    /// name the board can show.
    fn name_of(&self, key: &[u8], names: bool) -> Option<String> {
        let prefix = if names {
            &self.names_prefix
        } else {
            &self.removed_prefix
        };
        let name = std::str::from_utf8(key.strip_prefix(&prefix[..])?).ok()?;
        crate::protocol::check_stored_name(name)
            .ok()
            .map(|()| name.to_owned())
    }

    /// Transactions for a batch of changes in order: puts together, each
    /// removal its own (it has its own condition), a new transaction where
    /// a name comes again (etcd takes a key once per transaction).
    pub(crate) fn batch(changes: Vec<(String, Vec<Op>, Option<Txn>)>) -> Vec<Txn> {
        let mut txns = Vec::new();
        let mut puts = Txn {
            compare: Vec::new(),
            ops: Vec::new(),
        };
        let mut names = HashSet::new();
        let mut count = 0;
        for (name, ops, removal) in changes {
            let flush = removal.is_some() || names.contains(&name) || count >= PUTS_PER_TXN;
            if flush && !puts.ops.is_empty() {
                txns.push(std::mem::replace(
                    &mut puts,
                    Txn {
                        compare: Vec::new(),
                        ops: Vec::new(),
                    },
                ));
                names.clear();
                count = 0;
            }
            if let Some(removal) = removal {
                txns.push(removal);
                continue;
            }
            names.insert(name);
            count += 1;
            puts.ops.extend(ops);
        }
        txns.push(puts);
        txns.retain(|t| !t.ops.is_empty());
        txns
    }
}

/// Parses a value written under the prefix; `None` if it is not ours.
fn parse_value<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
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

/// How a thread tells the serve loop.
struct Notify {
    feed: mpsc::Sender<Feed>,
    wake: Arc<UnixStream>,
}

impl Notify {
    fn send(&self, feed: Feed) {
        let _ = self.feed.send(feed);
        // A full socket buffer means a wake-up is pending already.
        let _ = (&*self.wake).write(&[1]);
    }
}

/// The writer: each batch's transactions in order, within [`WRITE_WITHIN`];
/// when idle, a check that a majority answers.
fn write_loop(
    mut etcd: Etcd,
    prefix: &[u8],
    jobs: &mpsc::Receiver<Job>,
    notify: &Notify,
    stop: &Shutdown,
) {
    let mut last_check = Instant::now();
    while !stop.is_triggered() {
        match jobs.recv_timeout(Shutdown::CHECK_EVERY) {
            Ok(job) => {
                let deadline = Instant::now() + WRITE_WITHIN;
                // The revision to wait for in the copy: the last write that
                // happened (a transaction whose condition failed wrote nothing).
                let mut result = Ok(0);
                for txn in &job.txns {
                    match etcd.txn(&txn.compare, &txn.ops, deadline) {
                        Ok((header, true)) => result = Ok(header.revision),
                        Ok((_, false)) => {}
                        Err(err) => {
                            if matches!(err, EtcdError::Unavailable { .. }) {
                                notify.send(Feed::Health(Err(crate::error_chain(&err))));
                            }
                            result = Err(crate::error_chain(&err));
                            break;
                        }
                    }
                }
                notify.send(Feed::Written(job.id, result));
                last_check = Instant::now();
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if last_check.elapsed() >= CHECK_EVERY {
                    let checked = etcd
                        .check(prefix, Instant::now() + WRITE_WITHIN)
                        .map(|_| ())
                        .map_err(|err| crate::error_chain(&err));
                    notify.send(Feed::Health(checked));
                    last_check = Instant::now();
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The watcher: follows the prefix from `start`, loading it again when the
/// revisions it needs are gone, moving members when its own goes quiet.
fn watch_loop(
    mut etcd: Etcd,
    prefix: &[u8],
    mut start: i64,
    committed: &AtomicI64,
    notify: &Notify,
    stop: &Shutdown,
) {
    // `None`: the copy must be loaded again first.
    let mut next: Option<i64> = Some(start);
    while !stop.is_triggered() {
        let Some(from) = next else {
            match etcd.range_prefix(prefix, Instant::now() + WRITE_WITHIN) {
                Ok((header, kvs)) => {
                    start = header.revision + 1;
                    next = Some(start);
                    notify.send(Feed::Loaded(header, kvs));
                }
                Err(err) => {
                    notify.send(Feed::Health(Err(crate::error_chain(&err))));
                    stop.sleep(Duration::from_millis(200));
                }
            }
            continue;
        };
        let mut watch = match etcd.watch(prefix, from, Instant::now() + WRITE_WITHIN) {
            Ok(watch) => watch,
            Err(EtcdError::Compacted(_)) => {
                next = None;
                continue;
            }
            Err(err) => {
                notify.send(Feed::Health(Err(crate::error_chain(&err))));
                stop.sleep(Duration::from_millis(200));
                continue;
            }
        };
        // The revision the watch has shown everything up to.
        let mut seen = from - 1;
        let mut lagging_since: Option<Instant> = None;
        loop {
            if stop.is_triggered() {
                return;
            }
            match watch.next(Instant::now() + Shutdown::CHECK_EVERY) {
                Ok(Some(answer)) => {
                    if answer.canceled {
                        next = if answer.compact_revision > 0 {
                            None
                        } else {
                            Some(seen + 1)
                        };
                        break;
                    }
                    if let Some(last) = answer.events.last() {
                        seen = seen.max(last.kv.mod_revision);
                        notify.send(Feed::Changed(answer.events));
                    } else if !answer.created {
                        // A progress notice: nothing of ours up to its revision.
                        seen = seen.max(answer.header.revision);
                    }
                    lagging_since = None;
                }
                Ok(None) => {
                    if committed.load(Ordering::SeqCst) > seen {
                        let since = *lagging_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= WATCH_LAG {
                            // Writes commit elsewhere and this member shows
                            // none of them: it is paused or cut off.
                            etcd.rotate();
                            next = Some(seen + 1);
                            break;
                        }
                    } else {
                        lagging_since = None;
                    }
                }
                Err(_) => {
                    // The member is gone, or the stream broke: the next one.
                    etcd.rotate();
                    next = Some(seen + 1);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(name: &str) -> (String, Vec<Op>, Option<Txn>) {
        let key = format!("/p/names/{name}").into_bytes();
        (
            name.to_owned(),
            vec![Op::Put {
                key,
                value: b"{}".to_vec(),
            }],
            None,
        )
    }

    #[test]
    fn a_batch_puts_together_until_a_name_comes_again_or_a_removal() {
        let removal = Txn {
            compare: vec![Compare::Exists {
                key: b"/p/names/b".to_vec(),
            }],
            ops: vec![Op::Delete {
                key: b"/p/names/b".to_vec(),
            }],
        };
        let txns = Cluster::batch(vec![
            put("a"),
            put("b"),
            put("a"),
            ("b".into(), Vec::new(), Some(removal)),
            put("c"),
        ]);
        let sizes: Vec<(usize, usize)> = txns
            .iter()
            .map(|t| (t.compare.len(), t.ops.len()))
            .collect();
        assert_eq!(sizes, [(0, 2), (0, 1), (1, 1), (0, 1)]);
    }

    #[test]
    fn the_epoch_is_the_same_for_the_same_cluster_and_prefix_only() {
        assert_eq!(epoch(7, b"/status-board/"), epoch(7, b"/status-board/"));
        assert_ne!(epoch(7, b"/status-board/"), epoch(8, b"/status-board/"));
        assert_ne!(epoch(7, b"/status-board/"), epoch(7, b"/other/"));
    }
}
