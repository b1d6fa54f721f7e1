//! The two threads beside the serve loop: the writer runs each batch's
//! transactions and checks the quorum when idle; the watcher follows the
//! prefix. Both tell the serve loop through a channel and a socket pair.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::etcd::{Etcd, EtcdError, Header, KeyValue, WatchEvent};
use crate::shutdown::Shutdown;

use super::replica::{Replica, Txn};
use super::{CHECK_EVERY, WATCH_LAG, WRITE_WITHIN};

/// A batch of transactions, answered together.
pub(super) struct Job {
    pub(super) id: u64,
    pub(super) txns: Vec<Txn>,
    /// When the serve loop sent it: its updates are refused if etcd has not
    /// taken them within [`WRITE_WITHIN`] of this.
    pub(super) sent: Instant,
}

/// Most jobs written together (each is one round of the serve loop).
const MAX_JOBS_MERGED: usize = 64;

/// Longest the idle check of the quorum takes: a job that comes meanwhile
/// waits behind it.
const CHECK_WITHIN: Duration = Duration::from_millis(700);

/// What the threads tell the serve loop.
pub(super) enum Feed {
    /// A fresh copy of everything under the prefix.
    Loaded(Header, Vec<KeyValue>),
    /// The changes of one watch answer (one or more revisions).
    Changed(Vec<WatchEvent>),
    /// A batch was committed at this revision, or refused.
    Written(u64, Result<i64, String>),
    /// Whether a majority answers; why not.
    Health(Result<(), String>),
}

/// How a thread tells the serve loop.
pub(super) struct Notify {
    pub(super) feed: mpsc::Sender<Feed>,
    pub(super) wake: Arc<UnixStream>,
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
pub(super) fn write_loop(
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
                // Every job queued meanwhile goes with it: one commit for all
                // (etcd's fsync is the cost, not the size of the transaction).
                let mut batch = vec![job];
                batch.extend(jobs.try_iter().take(MAX_JOBS_MERGED));
                let result = write(&mut etcd, &batch, notify);
                for job in &batch {
                    notify.send(Feed::Written(job.id, result.clone()));
                }
                last_check = Instant::now();
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if last_check.elapsed() >= CHECK_EVERY {
                    // Short: a job that comes meanwhile waits for it.
                    let checked = etcd
                        .check(prefix, Instant::now() + CHECK_WITHIN)
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

/// Writes some jobs' transactions, merged where they can be, within
/// [`WRITE_WITHIN`] of the first job's sending; returns the revision to
/// wait for in the copy (that of the last write that happened: a
/// transaction whose condition failed wrote nothing), or why not.
fn write(etcd: &mut Etcd, batch: &[Job], notify: &Notify) -> Result<i64, String> {
    let Some(first) = batch.first() else {
        return Ok(0);
    };
    let deadline = first.sent + WRITE_WITHIN;
    let txns = Replica::merge(batch.iter().flat_map(|job| job.txns.iter().cloned()));
    let mut revision = 0;
    for txn in &txns {
        match etcd.txn(&txn.compare, &txn.ops, deadline) {
            Ok((header, true)) => revision = header.revision,
            Ok((_, false)) => {}
            Err(err) => {
                if matches!(err, EtcdError::Unavailable { .. }) {
                    notify.send(Feed::Health(Err(crate::error_chain(&err))));
                }
                return Err(crate::error_chain(&err));
            }
        }
    }
    Ok(revision)
}

/// The watcher: follows the prefix from `start`, loading it again when the
/// revisions it needs are gone, moving members when its own goes quiet.
pub(super) fn watch_loop(
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
        let mut last_heard = Instant::now();
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
                    }
                    // An answer without events (a progress notice) does not
                    // move `seen`: etcd 3.4 may send one before the events of
                    // its revision (etcd issue 15220), and a watch started
                    // again past them would never show them. Starting again
                    // too early only brings events the copy skips as old.
                    lagging_since = None;
                    last_heard = Instant::now();
                }
                Ok(None) => {
                    if last_heard.elapsed() >= WATCH_LAG {
                        // Quiet for a while: ask a majority whether anything
                        // was written since (through other gateways, say)
                        // that this member has not shown: it may be paused.
                        last_heard = Instant::now();
                        let behind = etcd
                            .count_written_after(prefix, seen, Instant::now() + WATCH_LAG)
                            .map_or(true, |count| count > 0);
                        if behind {
                            etcd.rotate();
                            next = Some(seen + 1);
                            break;
                        }
                    }
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
