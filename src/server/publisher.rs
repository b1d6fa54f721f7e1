//! The publisher: every change to the board, numbered, on a PUB socket, and a
//! heartbeat when nothing changes, so watchers know it is alive.

use crate::server::console::log_err;
use std::time::{Duration, Instant};

use crate::protocol::{self, Event, Notice};
use crate::store::{Change, ChangeKind, Store};

use super::config::{Access, bind_all};
use super::error::{ServerError, socket_error};

/// Most changes queued for one watcher before it misses some (and then
/// catches up from a snapshot): bounds the memory a stalled or hostile
/// watcher costs, at most this many changes of up to `--max-request` bytes
/// (4 MB at the default 4 KB).
const PUBLISH_HWM: i32 = 1_000;

/// LINGER for the publisher: changes in flight at exit are not worth a wait.
const PUBLISH_LINGER_MS: i32 = 100;

/// Largest message a subscriber may send (a subscription): anything larger is
/// dropped by libzmq with the connection, never buffered.
const SUBSCRIPTION_MAX: i64 = 1024;

/// How often the publisher says it is alive when nothing changes.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// A bound PUB socket and the endpoints watchers are told to subscribe to.
pub(super) struct Publisher {
    pub(super) socket: zmq::Socket,
    /// The endpoints as bound (a `*` or `0` port resolved).
    pub(super) endpoints: Vec<String>,
    last_heartbeat: Instant,
    /// Reused for each published message.
    buffer: Vec<u8>,
}

impl Publisher {
    /// Creates the PUB socket that carries every change and binds it.
    pub(super) fn bind(
        context: &zmq::Context,
        endpoints: &[String],
        access: Access,
    ) -> Result<Publisher, ServerError> {
        let mut socket = context
            .socket(zmq::PUB)
            .map_err(socket_error("create a PUB socket"))?;
        socket
            .set_linger(PUBLISH_LINGER_MS)
            .map_err(socket_error("set LINGER"))?;
        socket
            .set_sndhwm(PUBLISH_HWM)
            .map_err(socket_error("set SNDHWM"))?;
        // A peer writes only subscriptions to a PUB socket: a few bytes each.
        socket
            .set_maxmsgsize(SUBSCRIPTION_MAX)
            .map_err(socket_error("set MAXMSGSIZE"))?;
        socket
            .set_handshake_ivl(super::config::HANDSHAKE_MS)
            .map_err(socket_error("set HANDSHAKE_IVL"))?;
        socket
            .set_backlog(super::config::LISTEN_BACKLOG)
            .map_err(socket_error("set BACKLOG"))?;
        access.apply(&mut socket)?;
        let endpoints = bind_all(&socket, endpoints)?;
        Ok(Publisher {
            socket,
            endpoints,
            last_heartbeat: Instant::now(),
            buffer: Vec::new(),
        })
    }

    /// Sends the board's new changes, or a heartbeat when it is time for one.
    pub(super) fn publish(&mut self, epoch: &str, store: &mut Store) {
        let changes = store.take_changes();
        if store.cluster_epoch().is_some() {
            self.publish_revisions(epoch, &changes);
        } else {
            for change in &changes {
                let (event, at_ms) = event_of(change);
                self.send(epoch, change.seq, at_ms, event);
            }
        }
        if !changes.is_empty() {
            // A change says the publisher is alive as well as a heartbeat does.
            self.last_heartbeat = Instant::now();
        } else if self.last_heartbeat.elapsed() >= HEARTBEAT {
            match store.stale_since_ms() {
                // A gateway without an etcd quorum says so in its heartbeats:
                // a watcher then fetches the snapshot that marks the board stale.
                Some(since) => {
                    self.buffer.clear();
                    protocol::encode_stale_heartbeat(
                        &mut self.buffer,
                        epoch,
                        store.seq(),
                        store.now_ms(),
                        since,
                    );
                    self.send_buffer();
                }
                None => self.send(epoch, store.seq(), store.now_ms(), Event::Heartbeat),
            }
            self.last_heartbeat = Instant::now();
        }
    }

    /// A gateway's changes: one `rev` notice per etcd revision, saying the
    /// revision before it, since revisions jump and several changes may
    /// share one.
    fn publish_revisions(&mut self, epoch: &str, changes: &[Change]) {
        for group in changes.chunk_by(|a, b| a.seq == b.seq) {
            let Some(first) = group.first() else {
                continue;
            };
            let events: Vec<(Event<'_>, u64)> = group.iter().map(event_of).collect();
            let at_ms = events.iter().map(|(_, at)| *at).max().unwrap_or(0);
            let events: Vec<Event<'_>> = events.into_iter().map(|(event, _)| event).collect();
            self.buffer.clear();
            protocol::encode_revision(
                &mut self.buffer,
                epoch,
                first.seq,
                at_ms,
                first.prev,
                &events,
            );
            self.send_buffer();
        }
    }

    fn send(&mut self, epoch: &str, seq: u64, at_ms: u64, event: Event<'_>) {
        self.buffer.clear();
        let notice = Notice {
            epoch,
            seq,
            at_ms,
            event,
        };
        protocol::encode_notice(&mut self.buffer, &notice);
        self.send_buffer();
    }

    fn send_buffer(&mut self) {
        // PUB never blocks: a watcher past its high-water mark misses changes,
        // sees the gap in the numbers and fetches a snapshot.
        if let Err(err) = self.socket.send(&self.buffer[..], zmq::DONTWAIT) {
            log_err!("could not publish a change: {err}");
        }
    }
}

/// A change as a notice's event, and when it happened.
fn event_of(change: &Change) -> (Event<'_>, u64) {
    match &change.kind {
        ChangeKind::Set(status) => (
            Event::Set {
                name: &change.name,
                status: &status.text,
            },
            status.set_at_ms,
        ),
        ChangeKind::Removed { why, at_ms } => (
            Event::Removed {
                name: &change.name,
                why: *why,
            },
            *at_ms,
        ),
    }
}
