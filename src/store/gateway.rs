//! The store of a gateway (`--etcd`): the same `Store`, its board a copy of
//! the one in etcd (`cluster/`), its batches written there instead of to a
//! state file.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::storage::{StorageError, StorageOptions};

use super::cluster::{self, ClusterConfig, ClusterError, Imported};
use super::{Committed, Event, Op, Store, Synced, restore};

impl Store {
    /// The board of a cluster (`--etcd`): loaded from etcd, followed by a
    /// watch, written through etcd.
    pub(crate) fn cluster(
        config: &ClusterConfig,
        max_entries: usize,
    ) -> Result<Store, ClusterError> {
        let (cluster, board) = cluster::Cluster::start(config, max_entries)?;
        let mut store = Store::with(board, None);
        store.cluster = Some(cluster);
        Ok(store)
    }

    /// On a gateway: loads a single server's state file into the cluster's
    /// board (`--import`), leaving the names it has already alone.
    pub(crate) fn import(&mut self, path: &Path) -> Result<Imported, ClusterError> {
        let unreadable = |source| ClusterError::Import {
            path: path.to_owned(),
            source,
        };
        // Never a path we would create or follow: an existing file only.
        let is_file = std::fs::symlink_metadata(path).map(|m| m.is_file());
        if !matches!(is_file, Ok(true)) {
            let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
            return Err(unreadable(StorageError::Open {
                path: path.to_owned(),
                source,
            }));
        }
        let options = StorageOptions {
            fsync: crate::storage::Fsync::No,
            compact_at: u64::MAX,
            repair: false,
        };
        let (board, log, _) = restore::open(path, &options, usize::MAX).map_err(unreadable)?;
        log.close(Instant::now() + Duration::from_secs(5))
            .map_err(unreadable)?;
        let entries: Vec<(String, String, u64)> = board
            .iter()
            .map(|e| (e.name.to_owned(), e.status.to_owned(), e.set_at_ms))
            .collect();
        match &mut self.cluster {
            Some(cluster) => cluster.import(&mut self.board, &entries),
            None => Ok(Imported { added: 0, kept: 0 }),
        }
    }

    /// On a gateway: the epoch every gateway of this board shares.
    pub(crate) fn cluster_epoch(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.epoch.as_str())
    }

    /// On a gateway: since when (ms) it cannot reach a majority of etcd.
    pub(crate) fn stale_since_ms(&self) -> Option<u64> {
        self.cluster
            .as_ref()
            .and_then(cluster::Cluster::stale_since_ms)
    }

    /// Whether news may come without a request (a gateway's watch): the
    /// serve loop then polls [`Store::sync_fd`] in every round.
    pub(crate) fn has_feed(&self) -> bool {
        self.cluster.is_some()
    }

    /// Hands the staged changes to the etcd writer as one job.
    pub(super) fn commit_to_cluster(&mut self) -> Committed {
        let Some(cluster) = &mut self.cluster else {
            return Committed::Applied;
        };
        let staged = std::mem::take(&mut self.staged);
        let changes = staged
            .iter()
            .map(|update| match &update.op {
                Op::Set { status, set_at_ms } => (
                    update.name.clone(),
                    cluster.set_ops(&update.name, status, *set_at_ms),
                    None,
                ),
                Op::Remove { why, at_ms, .. } => (
                    update.name.clone(),
                    Vec::new(),
                    Some(cluster.removal(&update.name, *why, *at_ms)),
                ),
            })
            .collect();
        let job = cluster.send(cluster::Cluster::batch(changes));
        self.in_flight.push_back((job, staged));
        Committed::Syncing
    }

    /// Takes what the etcd threads said; returns how the batches in flight
    /// ended, oldest first, as far as known.
    pub(super) fn finish_cluster_syncs(&mut self) -> Vec<Synced> {
        let Some(cluster) = &mut self.cluster else {
            return Vec::new();
        };
        let seq = self.board.seq();
        cluster.receive(&mut self.board);
        let mut done = Vec::new();
        while let Some((job, _)) = self.in_flight.front() {
            match cluster.take_done(*job) {
                Some(cluster::Done::Stored) => done.push(Synced::Stored),
                Some(cluster::Done::Refused(why)) => {
                    // An expiry refused now is tried again at the next look.
                    self.next_expiry = 0;
                    done.push(Synced::Refused(why));
                }
                None => break,
            }
            self.in_flight.pop_front();
        }
        self.events
            .extend(cluster.take_health().into_iter().map(Event::Cluster));
        if self.board.seq() != seq {
            // Statuses came from other gateways, with their own times.
            self.next_expiry = 0;
            self.recount_staged_new();
        }
        done
    }
}
