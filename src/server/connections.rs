//! Client connections held against the open-file limit.
//!
//! Every connection is a descriptor, and libzmq has no limit of its own: a
//! peer that opens connections until the limit is reached leaves no room
//! for anyone, and libzmq's listener, failing to accept (EMFILE), tries again
//! at once, for ever (13 s of CPU in 10 s, measured). A thread watches the
//! sockets' monitors: it knows each connection's descriptor and peer from the
//! moment libzmq accepts it, and keeps the number open below the limit less
//! a reserve. Over that cap, it shuts down the newest connection of the peer
//! address holding the most, so that one address filling the server
//! displaces only itself. `shutdown(2)` leaves the descriptor to libzmq,
//! which sees the connection end and closes it as any other.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::monitor::MonitorEvent;
use crate::server::console::log_err;
use crate::shutdown::Shutdown;

use super::config::RESERVED_FDS;
use super::error::{ServerError, socket_error};
use crate::side_thread::SideThread;

/// At most one line this often, however many connections are turned away.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Below the open connections the cap drops to when an accept fails for
/// want of descriptors anyway (libzmq, the state file and the logins hold
/// some too): room for the listener to accept again, and so stop trying.
const EMFILE_MARGIN: usize = 16;

/// How long a cap lowered by a failed accept stays lowered.
const LOWERED_FOR: Duration = Duration::from_secs(60);

/// The watching thread; stopped and joined on drop, before the context ends.
pub(super) struct ConnectionGuard {
    _thread: SideThread,
}

impl ConnectionGuard {
    /// Watches the connections of `sockets`; `limit` is the open-file limit.
    pub(super) fn start(
        context: &zmq::Context,
        sockets: &[&zmq::Socket],
        limit: Option<u64>,
    ) -> Result<ConnectionGuard, ServerError> {
        let events = zmq_sys::ZMQ_EVENT_ACCEPTED
            | zmq_sys::ZMQ_EVENT_DISCONNECTED
            | zmq_sys::ZMQ_EVENT_ACCEPT_FAILED;
        let monitors = sockets
            .iter()
            .enumerate()
            .map(|(i, socket)| {
                let endpoint = format!("inproc://status-server-connections-{i}");
                socket
                    .monitor(&endpoint, events as i32)
                    .map_err(socket_error("monitor the server's connections"))?;
                let monitor = context
                    .socket(zmq::PAIR)
                    .map_err(socket_error("create a connection monitor"))?;
                monitor
                    .set_linger(0)
                    .map_err(socket_error("set LINGER on a connection monitor"))?;
                monitor
                    .connect(&endpoint)
                    .map_err(socket_error("connect a connection monitor"))?;
                Ok(monitor)
            })
            .collect::<Result<Vec<_>, ServerError>>()?;
        let cap = limit.map_or(usize::MAX, |limit| {
            usize::try_from(limit.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX)
        });
        SideThread::spawn("connections", move |stop| {
            watch(&monitors, Tracker::new(cap), limit, stop);
        })
        .map_err(|source| ServerError::Thread {
            name: "connections",
            source,
        })
        .map(|thread| ConnectionGuard { _thread: thread })
    }
}

/// One monitor event that matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Accepted(RawFd),
    Disconnected(RawFd),
    AcceptFailed(i32),
}

impl Event {
    /// The event of a monitor message: the event (u16) and its value (u32),
    /// here a descriptor or an errno.
    fn parse(frames: &[Vec<u8>]) -> Option<Event> {
        let happened = MonitorEvent::parse(frames)?;
        let value = happened.value_i32()?;
        match happened.event {
            zmq_sys::ZMQ_EVENT_ACCEPTED => Some(Event::Accepted(value)),
            zmq_sys::ZMQ_EVENT_DISCONNECTED => Some(Event::Disconnected(value)),
            zmq_sys::ZMQ_EVENT_ACCEPT_FAILED => Some(Event::AcceptFailed(value)),
            _ => None,
        }
    }
}

fn watch(monitors: &[zmq::Socket], mut tracker: Tracker, limit: Option<u64>, stop: &Shutdown) {
    let mut last_said: Option<Instant> = None;
    while !stop.is_triggered() {
        let mut items: Vec<_> = monitors
            .iter()
            .map(|m| m.as_poll_item(zmq::POLLIN))
            .collect();
        match zmq::poll(&mut items, Shutdown::CHECK_EVERY_MS.into()) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(_) => return,
        }
        // Every event waiting first, then the decision: a descriptor accepted,
        // closed and accepted again is judged by what it is now.
        let now = Instant::now();
        for monitor in monitors {
            while let Ok(frames) = monitor.recv_multipart(zmq::DONTWAIT) {
                match Event::parse(&frames) {
                    Some(Event::Accepted(fd)) => tracker.accepted(fd, crate::sys::peer_address(fd)),
                    Some(Event::Disconnected(fd)) => tracker.disconnected(fd),
                    Some(Event::AcceptFailed(libc::EMFILE | libc::ENFILE)) => {
                        tracker.accept_failed(now);
                    }
                    _ => {}
                }
            }
        }
        for fd in tracker.over_cap(now) {
            crate::sys::shut_down_socket(fd);
        }
        if tracker.has_news() && last_said.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            log_err!("{}", tracker.take_news(limit));
            last_said = Some(Instant::now());
        }
    }
}

/// Who a connection comes from: its address, if it has one (`None` for an
/// `ipc://` peer, or one gone before it was asked).
type Peer = Option<IpAddr>;

/// The open connections, by descriptor and by peer, and the cap on them.
#[derive(Debug)]
struct Tracker {
    /// The most connections open at once.
    cap: usize,
    /// `cap` as started; a failed accept lowers it for a while.
    cap_as_set: usize,
    lowered_until: Option<Instant>,
    /// Order of acceptance, to find a peer's newest connection.
    next: u64,
    open: HashMap<RawFd, (Peer, u64)>,
    by_peer: HashMap<Peer, BTreeMap<u64, RawFd>>,
    /// Since the last line: connections shut down, by peer; failed accepts.
    turned_away: HashMap<Peer, u64>,
    accepts_failed: u64,
}

impl Tracker {
    fn new(cap: usize) -> Tracker {
        Tracker {
            cap,
            cap_as_set: cap,
            lowered_until: None,
            next: 0,
            open: HashMap::new(),
            by_peer: HashMap::new(),
            turned_away: HashMap::new(),
            accepts_failed: 0,
        }
    }

    fn accepted(&mut self, fd: RawFd, peer: Peer) {
        // A descriptor still open here missed its disconnection: forget it.
        self.disconnected(fd);
        self.next += 1;
        self.open.insert(fd, (peer, self.next));
        self.by_peer.entry(peer).or_default().insert(self.next, fd);
    }

    fn disconnected(&mut self, fd: RawFd) {
        let Some((peer, order)) = self.open.remove(&fd) else {
            return;
        };
        if let Some(connections) = self.by_peer.get_mut(&peer) {
            connections.remove(&order);
            if connections.is_empty() {
                self.by_peer.remove(&peer);
            }
        }
    }

    /// An accept failed for want of descriptors: the cap is above what the
    /// process can hold. Lower it below the connections open now, for a while.
    fn accept_failed(&mut self, now: Instant) {
        self.accepts_failed += 1;
        if self.lowered_until.is_some_and(|until| now < until) {
            return;
        }
        self.cap = self.open.len().saturating_sub(EMFILE_MARGIN).max(1);
        self.lowered_until = Some(now + LOWERED_FOR);
    }

    /// The connections to shut down to keep within the cap: each time, the
    /// newest of the peer holding the most.
    fn over_cap(&mut self, now: Instant) -> Vec<RawFd> {
        if self.lowered_until.is_some_and(|until| now >= until) {
            self.cap = self.cap_as_set;
            self.lowered_until = None;
        }
        let mut victims = Vec::new();
        while self.open.len() > self.cap {
            let Some(peer) = self
                .by_peer
                .iter()
                .max_by_key(|(_, connections)| connections.len())
                .map(|(peer, _)| *peer)
            else {
                break;
            };
            let Some(fd) = self
                .by_peer
                .get(&peer)
                .and_then(|c| c.last_key_value())
                .map(|(_, fd)| *fd)
            else {
                break;
            };
            self.disconnected(fd);
            *self.turned_away.entry(peer).or_default() += 1;
            victims.push(fd);
        }
        victims
    }

    fn has_news(&self) -> bool {
        !self.turned_away.is_empty() || self.accepts_failed > 0
    }

    /// The line for the log since the last one.
    fn take_news(&mut self, limit: Option<u64>) -> String {
        let total: u64 = self.turned_away.values().sum();
        let worst = self.turned_away.iter().max_by_key(|(_, count)| **count);
        let limit = limit.map_or_else(|| "?".to_owned(), |l| l.to_string());
        let mut line = format!(
            "warning: turned away {total} client connections: {} are open, as many as the \
             open-file limit ({limit}) leaves room for",
            self.open.len()
        );
        if let Some((peer, count)) = worst {
            let peer =
                peer.map_or_else(|| "peers without an address".to_owned(), |p| p.to_string());
            line.push_str(&format!("; {count} of them from {peer}"));
        }
        if self.accepts_failed > 0 {
            line.push_str(&format!(
                "; {} accepts failed for want of descriptors",
                self.accepts_failed
            ));
        }
        line.push_str(
            "; raise the hard limit for more: ulimit -Hn, or LimitNOFILE= in a systemd unit",
        );
        self.turned_away.clear();
        self.accepts_failed = 0;
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Peer {
        Some(text.parse().expect("an address"))
    }

    #[test]
    fn one_address_filling_the_server_displaces_only_itself() {
        let now = Instant::now();
        let mut tracker = Tracker::new(4);
        for fd in 10..14 {
            tracker.accepted(fd, ip("127.0.0.2"));
        }
        assert!(tracker.over_cap(now).is_empty(), "at the cap, not over");
        tracker.accepted(20, ip("127.0.0.1"));
        assert_eq!(tracker.over_cap(now), vec![13], "the flooder's newest goes");
        tracker.accepted(14, ip("127.0.0.2"));
        assert_eq!(tracker.over_cap(now), vec![14], "and again");
        tracker.accepted(21, ip("127.0.0.3"));
        assert_eq!(tracker.over_cap(now), vec![12]);
        assert_eq!(tracker.open.len(), 4);
        let line = tracker.take_news(Some(68));
        assert!(
            line.contains("turned away 3 client connections: 4 are open")
                && line.contains("limit (68)")
                && line.contains("3 of them from 127.0.0.2"),
            "{line}"
        );
        assert!(!tracker.has_news());
    }

    #[test]
    fn a_descriptor_closed_and_reused_is_a_new_connection() {
        let now = Instant::now();
        let mut tracker = Tracker::new(2);
        tracker.accepted(10, ip("10.0.0.1"));
        tracker.disconnected(10);
        tracker.accepted(10, ip("10.0.0.2"));
        tracker.accepted(11, ip("10.0.0.2"));
        assert!(tracker.over_cap(now).is_empty());
        assert_eq!(tracker.by_peer.len(), 1, "10.0.0.1 is gone");
        tracker.disconnected(99);
        assert_eq!(
            tracker.open.len(),
            2,
            "an unknown descriptor changes nothing"
        );
    }

    #[test]
    fn a_failed_accept_lowers_the_cap_for_a_while() {
        let now = Instant::now();
        let mut tracker = Tracker::new(100);
        for fd in 0..40 {
            tracker.accepted(fd, ip("10.0.0.9"));
        }
        tracker.accept_failed(now);
        tracker.accept_failed(now);
        assert_eq!(
            tracker.over_cap(now).len(),
            EMFILE_MARGIN,
            "room to accept again"
        );
        assert_eq!(tracker.accepts_failed, 2);
        let later = now + LOWERED_FOR;
        assert!(tracker.over_cap(later).is_empty());
        assert_eq!(tracker.cap, 100, "back to the cap as set");
    }
}
