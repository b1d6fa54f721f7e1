//! The open HTTP connections, at most `cap` of them: each descriptor a peer
//! holds is one the gateway cannot use for its server or for a post, and
//! libzmq aborts the process when it cannot get one.
//!
//! At the cap, a new connection takes the place of the one idle the longest
//! (waiting for a request, or writing out the end of a response): a peer that
//! opens connections and sends nothing cannot crowd out one that asks for the
//! board. A connection serving a request or an event stream is never closed
//! for room; when every one is, the new connection waits for one to end.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use status_board::sys::OpenFiles;
use tokio::sync::Notify;

/// Descriptors kept from the connections: the standard streams, the
/// listening socket, the runtime's, libzmq's for the watcher (its context,
/// sockets and connections), and those of `post::POSTS_AT_ONCE` posts.
const RESERVED_FDS: u64 = 128;

/// Connections at most, however high the open-file limit: each may make
/// hyper hold its buffers (`accept.rs`), and a status board has no more
/// viewers than this.
const MAX_CONNECTIONS: u64 = 8192;

/// The open-file limit assumed when it cannot be read: the usual soft one.
const USUAL_LIMIT: u64 = 1024;

/// The connections that may be open at once under `open_files`.
pub(super) fn cap(open_files: Option<&OpenFiles>) -> usize {
    let limit = open_files.map_or(USUAL_LIMIT, |o| o.limit);
    let cap = limit.saturating_sub(RESERVED_FDS).clamp(1, MAX_CONNECTIONS);
    usize::try_from(cap).unwrap_or(1)
}

/// The start-up line: the cap, and where it comes from.
pub(super) fn describe_cap(open_files: Option<&OpenFiles>) -> String {
    let cap = cap(open_files);
    let Some(open_files) = open_files else {
        return format!("up to {cap} connections at once (the open-file limit is unknown)");
    };
    let limit = match open_files.raised() {
        true => format!(
            "the open-file limit, raised from {} to {}",
            open_files.before, open_files.limit
        ),
        false => format!("the open-file limit is {}", open_files.limit),
    };
    let hint = match open_files.raised() || cap as u64 >= MAX_CONNECTIONS {
        true => "",
        false => "; raise the hard limit for more: ulimit -Hn, or LimitNOFILE= in a systemd unit",
    };
    format!("up to {cap} connections at once ({limit}{hint})")
}

/// The registry of open connections, shared by the accept loop and each connection.
pub(super) struct Connections {
    cap: usize,
    inner: Mutex<Inner>,
    /// A slot came free or a connection went idle: the accept loop looks again.
    changed: Notify,
}

#[derive(Default)]
struct Inner {
    /// Open connections, counting those told to close that have not yet.
    open: usize,
    /// Of `open`, those told to close.
    closing: usize,
    next_id: u64,
    /// Orders the idle connections: a connection going idle takes the next tick.
    tick: u64,
    /// The idle connections by the tick they went idle at: the first is the oldest.
    idle: BTreeMap<u64, u64>,
    by_id: HashMap<u64, Entry>,
}

struct Entry {
    /// Requests (and event streams) in progress.
    busy: usize,
    /// The tick it went idle at, while idle.
    idle_since: Option<u64>,
    closing: bool,
    close: Arc<Notify>,
}

impl Connections {
    pub(super) fn new(cap: usize) -> Arc<Connections> {
        Arc::new(Connections {
            cap: cap.max(1),
            inner: Mutex::new(Inner::default()),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The registry stays consistent at every step: a panic elsewhere leaves it usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a connection just accepted: at once below the cap, else
    /// after the connection idle the longest was closed, or one ended.
    pub(super) async fn admit(self: &Arc<Self>) -> Slot {
        loop {
            {
                let mut inner = self.lock();
                if inner.open < self.cap {
                    return Slot(self.register(&mut inner));
                }
                // Close one only if those already closing will not make room.
                if inner.open - inner.closing >= self.cap {
                    inner.close_oldest_idle();
                }
            }
            // One waiter (the accept loop): a notification sent before this
            // point is kept for it, none is lost.
            self.changed.notified().await;
        }
    }

    fn register(self: &Arc<Self>, inner: &mut Inner) -> Connection {
        let id = inner.next_id;
        inner.next_id += 1;
        inner.open += 1;
        let close = Arc::new(Notify::new());
        let tick = inner.next_tick();
        inner.idle.insert(tick, id);
        inner.by_id.insert(
            id,
            Entry {
                busy: 0,
                idle_since: Some(tick),
                closing: false,
                close: Arc::clone(&close),
            },
        );
        Connection {
            connections: Arc::clone(self),
            id,
            close,
        }
    }

    /// How many connections are open.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().open
    }
}

impl Inner {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Tells the connection idle the longest to close; false if none is idle.
    fn close_oldest_idle(&mut self) -> bool {
        let Some((_, id)) = self.idle.pop_first() else {
            return false;
        };
        let Some(entry) = self.by_id.get_mut(&id) else {
            return false;
        };
        entry.idle_since = None;
        entry.closing = true;
        self.closing += 1;
        // Kept for the connection if it is not waiting on it yet.
        entry.close.notify_one();
        true
    }
}

/// One open connection, as its requests see it (a request extension).
#[derive(Clone)]
pub(super) struct Connection {
    connections: Arc<Connections>,
    id: u64,
    close: Arc<Notify>,
}

impl Connection {
    /// Marks the connection busy (not to be closed for room) until the guard is dropped.
    pub(super) fn busy(&self) -> Busy {
        let mut inner = self.connections.lock();
        let inner = &mut *inner;
        if let Some(entry) = inner.by_id.get_mut(&self.id) {
            entry.busy += 1;
            if let Some(tick) = entry.idle_since.take() {
                inner.idle.remove(&tick);
            }
        }
        Busy(self.clone())
    }

    /// Resolves when the connection is to close, to make room for a new one.
    pub(super) async fn closed(&self) {
        self.close.notified().await;
    }
}

/// A request or an event stream in progress on a connection.
pub(super) struct Busy(Connection);

impl Drop for Busy {
    fn drop(&mut self) {
        let connections = &self.0.connections;
        let mut inner = connections.lock();
        let inner = &mut *inner;
        let Some(entry) = inner.by_id.get_mut(&self.0.id) else {
            return;
        };
        entry.busy = entry.busy.saturating_sub(1);
        if entry.busy == 0 && !entry.closing {
            inner.tick += 1;
            entry.idle_since = Some(inner.tick);
            inner.idle.insert(inner.tick, self.0.id);
            connections.changed.notify_one();
        }
    }
}

/// A connection's place under the cap, given back when it is dropped (the
/// connection has closed).
pub(super) struct Slot(Connection);

impl Slot {
    pub(super) fn connection(&self) -> &Connection {
        &self.0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let connections = &self.0.connections;
        let mut inner = connections.lock();
        if let Some(entry) = inner.by_id.remove(&self.0.id) {
            if let Some(tick) = entry.idle_since {
                inner.idle.remove(&tick);
            }
            if entry.closing {
                inner.closing -= 1;
            }
        }
        inner.open -= 1;
        connections.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    }

    /// Whether `connection` has been told to close, without waiting.
    fn told_to_close(connection: &Connection) -> bool {
        runtime().block_on(async {
            tokio::time::timeout(Duration::from_millis(1), connection.closed())
                .await
                .is_ok()
        })
    }

    /// An admission, run while the test blocks on something else.
    fn admit_later(
        rt: &tokio::runtime::Runtime,
        connections: &Arc<Connections>,
    ) -> tokio::task::JoinHandle<Slot> {
        let connections = Arc::clone(connections);
        rt.spawn(async move { connections.admit().await })
    }

    #[test]
    fn at_the_cap_the_connection_idle_the_longest_makes_room() {
        let rt = runtime();
        let connections = Connections::new(3);
        let first = rt.block_on(connections.admit());
        let second = rt.block_on(connections.admit());
        let third = rt.block_on(connections.admit());
        // The first serves a request; the second has been idle longest of the rest.
        let busy = first.connection().busy();
        let admitting = admit_later(&rt, &connections);
        // The admission waits for the second to close.
        let second_connection = second.connection().clone();
        rt.block_on(second_connection.closed());
        assert!(!told_to_close(third.connection()));
        assert!(!told_to_close(first.connection()));
        assert_eq!(connections.open(), 3, "room is made before a fourth");
        drop(second);
        let fourth = rt.block_on(admitting).expect("admitted");
        assert_eq!(connections.open(), 3);

        // The first, done with its request, is now the newest idle: the third goes next.
        drop(busy);
        let admitting = admit_later(&rt, &connections);
        rt.block_on(third.connection().clone().closed());
        drop(third);
        let _fifth = rt.block_on(admitting).expect("admitted");
        assert!(!told_to_close(first.connection()));
        assert!(!told_to_close(fourth.connection()));
    }

    #[test]
    fn when_every_connection_is_busy_a_new_one_waits_for_one_to_end() {
        let rt = runtime();
        let connections = Connections::new(2);
        let first = rt.block_on(connections.admit());
        let second = rt.block_on(connections.admit());
        let _streams = (first.connection().busy(), second.connection().busy());
        let admitting = admit_later(&rt, &connections);
        let waited = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(50), async {
                while !admitting.is_finished() {
                    tokio::task::yield_now().await;
                }
            })
            .await
        });
        assert!(waited.is_err(), "admitted while every connection is busy");
        assert!(!told_to_close(first.connection()));
        assert!(!told_to_close(second.connection()));
        drop(first);
        rt.block_on(admitting).expect("admitted once one ended");
    }
}
