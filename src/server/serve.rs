//! The serve loop: each round takes the requests already queued, answers
//! polls at once, stores the updates with one write and answers them once
//! durable, expires old statuses and publishes changes. At shutdown, what is
//! in hand is finished and answered.
//!
//! No request can end this loop: bad ones get an `error: ` reply and change
//! nothing. Only a broken socket does.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::ProtocolError;
use crate::storage::StorageError;
use crate::store::{Committed, Store, Synced};

use super::auth::Users;
use super::cmd::{self, Answer, Context, Immediate, Outcome, RunInfo};
use super::config::Config;
use super::console::{self, Change, log_err, log_events};
use super::error::{Rejected, ServerError};
use super::publisher::Publisher;
use super::socket::RequestSocket;

/// Longest a stop waits for updates in hand to become durable.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Most requests taken per round: bounds the wait of the first of them.
const MAX_BATCH: usize = 256;

/// The serve loop's state: the socket, the board, and the requests in hand.
pub(super) struct Serving<'a> {
    pub(super) socket: RequestSocket<'a>,
    pub(super) store: &'a mut Store,
    pub(super) config: &'a Config,
    /// What snapshots say of this run.
    pub(super) run: RunInfo,
    pub(super) publisher: Option<&'a mut Publisher>,
    /// With `--auth`, the users table every write is checked against.
    pub(super) users: Option<Arc<Users>>,
    /// Updates staged, not yet written.
    pub(super) waiting: Vec<Pending>,
    /// Written batches waiting for their sync, oldest first; one per batch in
    /// flight in the store, some of them empty (an expiry nobody waits for).
    pub(super) syncing: VecDeque<Vec<Pending>>,
}

/// A request taken from the socket, waiting for its answer.
pub(super) struct Pending {
    /// The REQ envelope, sent back in front of the reply.
    envelope: Vec<zmq::Message>,
    /// What it gets once its change is durable.
    answer: Answer,
    /// The change, for the console line printed when it is answered (not
    /// with `--quiet`): `received` once stored, `refused` if it could not be.
    change: Option<Change>,
}

impl Serving<'_> {
    /// One round: take what is queued (or wait for it), expire, compact when
    /// due, write the staged changes, publish.
    pub(super) fn round(&mut self) -> Result<(), ServerError> {
        if self.store.is_syncing() || self.store.has_feed() {
            // Wait for a request or the sync thread (a gateway: its etcd
            // threads), whichever comes first.
            let (readable, synced) = self.socket.wait(true, self.store)?;
            if synced || self.store.has_feed() {
                self.finish_syncs();
            }
            if readable {
                self.take_batch(zmq::DONTWAIT)?;
            }
        } else {
            // Only requests to wait for: a blocking receive (RCVTIMEO bounds it)
            // costs one system call fewer per round than poll, then receive.
            self.take_batch(0)?;
        }
        if let Err(err) = self.store.expire() {
            log_err!(
                "warning: cannot expire statuses: {}",
                crate::error_chain(&err)
            );
        }
        log_events(self.store);
        // Before the commit: once the batches in flight have landed, a due
        // compaction runs here, ahead of the next write (it waits for them).
        if let Err(err) = self.store.maintain() {
            log_err!("warning: {}", crate::error_chain(&err));
        }
        log_events(self.store);
        self.commit();
        self.publish();
        Ok(())
    }

    /// After a stop: finishes what is in hand. New requests are not taken any
    /// more, and a sync thread that never answers cannot hold us past the grace.
    pub(super) fn finish(mut self) -> Result<(), ServerError> {
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while (self.store.is_syncing() || !self.waiting.is_empty()) && Instant::now() < deadline {
            if self.store.is_syncing() && self.socket.wait(false, self.store)?.1 {
                self.finish_syncs();
            }
            if self.store.has_feed() {
                self.finish_syncs();
            }
            self.commit();
            self.publish();
        }
        Ok(())
    }

    /// Takes the queued requests (up to [`MAX_BATCH`]): answers polls and bad
    /// requests at once, stages updates into `waiting`.
    fn take_batch(&mut self, first_flags: i32) -> Result<(), ServerError> {
        let mut flags = first_flags;
        for _ in 0..MAX_BATCH {
            let Some(received) = self.socket.receive(flags, self.users.is_some())? else {
                break;
            };
            flags = zmq::DONTWAIT;
            let mut ctx = Context {
                store: self.store,
                users: self.users.as_deref(),
                limits: &self.config.limits,
                quiet: self.config.quiet,
                run: &self.run,
            };
            let outcome = match received.body.as_slice() {
                [] => cmd::handle(&mut ctx, b"", &received.caller, received.peer),
                [frame] => cmd::handle(&mut ctx, frame, &received.caller, received.peer),
                parts => Err(ProtocolError::Multipart { parts: parts.len() }.into()),
            };
            let envelope = received.envelope;
            match outcome {
                Ok(Outcome::Staged(answer, change)) => self.waiting.push(Pending {
                    envelope,
                    answer,
                    change,
                }),
                Ok(Outcome::ReplyNow(Immediate::Board(board))) => {
                    self.socket.send_board(envelope, board);
                }
                Ok(Outcome::ReplyNow(Immediate::Bytes(bytes))) => {
                    self.socket.send_reply(envelope, &bytes);
                }
                Err(err) => self.socket.reject(envelope, &err),
            }
        }
        Ok(())
    }

    /// Writes the staged changes: answers them now, or queues them for their sync.
    fn commit(&mut self) {
        if !self.store.has_staged() {
            return;
        }
        let committed = self.store.commit();
        log_events(self.store);
        match committed {
            Ok(Committed::Applied) => {
                let mut batch = std::mem::take(&mut self.waiting);
                self.answer(&mut batch);
            }
            Ok(Committed::Syncing) => self.syncing.push_back(std::mem::take(&mut self.waiting)),
            Ok(Committed::Deferred) => {}
            Err(err) => {
                let mut batch = std::mem::take(&mut self.waiting);
                self.unstored(&mut batch, &err);
            }
        }
    }

    /// Answers the batches that finished syncs made durable, oldest first.
    fn finish_syncs(&mut self) {
        match self.store.finish_syncs() {
            Ok(done) => {
                for synced in done {
                    let Some(mut batch) = self.syncing.pop_front() else {
                        break;
                    };
                    if let Synced::Refused(why) = synced {
                        console::not_stored_in_cluster(&why);
                        for pending in &mut batch {
                            pending.answer = Answer::Rejected(Rejected::NoQuorum);
                        }
                    }
                    self.answer(&mut batch);
                }
            }
            Err(err) => {
                for mut batch in self.syncing.drain(..).collect::<Vec<_>>() {
                    self.unstored(&mut batch, &err);
                }
            }
        }
    }

    /// Answers a batch whose changes could not be stored.
    fn unstored(&mut self, batch: &mut Vec<Pending>, err: &StorageError) {
        console::not_stored(err);
        for pending in batch.iter_mut() {
            pending.answer = Answer::Rejected(Rejected::Unstored);
        }
        self.answer(batch);
    }

    /// Answers every request of a batch, emptying it.
    fn answer(&mut self, batch: &mut Vec<Pending>) {
        // Built at most once per batch: every clear in it gets the same board.
        let mut snapshot = None;
        for pending in batch.drain(..) {
            if let Some(change) = &pending.change {
                change.print(!matches!(pending.answer, Answer::Rejected(_)));
            }
            match &pending.answer {
                Answer::Board => self
                    .socket
                    .send_board(pending.envelope, self.store.shared_reply()),
                Answer::Snapshot => {
                    let reply =
                        snapshot.get_or_insert_with(|| cmd::encode_snapshot(self.store, &self.run));
                    self.socket.send_reply(pending.envelope, reply);
                }
                Answer::Rejected(err) => self.socket.reject(pending.envelope, err),
            }
        }
    }

    /// Publishes what changed since the last round.
    fn publish(&mut self) {
        if let Some(publisher) = self.publisher.as_deref_mut() {
            publisher.publish(&self.run.epoch, self.store);
        }
    }
}
