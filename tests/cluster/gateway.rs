//! `status_server --etcd …` gateways as child processes, and watchers of
//! them: a subscriber to a gateway's publisher and a poller of its
//! snapshots, both recording every sequence number they see.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::history::{Seen, parse_published};
use crate::common::{
    Running, Server, endpoint_from_waiting_line, request_parts_within, server_command, spawn_piped,
};

/// Bounds one request to a gateway: longer than its 2 s refusal.
pub const GATEWAY_TIMEOUT: Duration = Duration::from_secs(5);

/// A running gateway, killed on drop.
pub struct Gateway {
    pub server: Server,
    /// Its `--etcd` value.
    pub etcd: String,
    /// Where its publisher is bound.
    pub publish: String,
}

impl Gateway {
    /// A gateway of `etcd` (`--etcd`'s value) on free loopback ports.
    pub fn start(etcd: &str) -> Gateway {
        Gateway::start_at(etcd, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*")
    }

    /// A gateway bound at `bind`, publishing at `publish` (a restart reuses
    /// the endpoints a killed one had).
    pub fn start_at(etcd: &str, bind: &str, publish: &str) -> Gateway {
        Gateway::start_with(etcd, bind, publish, &[])
    }

    /// [`Gateway::start_at`] with `extra` arguments.
    pub fn start_with(etcd: &str, bind: &str, publish: &str, extra: &[&str]) -> Gateway {
        let mut command = server_command();
        command
            .args(["--etcd", etcd, "--bind", bind, "--publish", publish])
            .args(extra)
            .env_remove("STATUS_BOARD_ETCD")
            .stdin(Stdio::null());
        let (child, stdout, stderr) = spawn_piped(&mut command);
        let child = Running(child);
        // It may name etcd before it says where it waits for clients.
        let waiting = stdout.find("Waiting for clients on");
        let endpoint = endpoint_from_waiting_line(&waiting);
        let server = Server {
            child,
            endpoint,
            stdout,
            stderr,
        };
        let snapshot = snapshot_text(&server.endpoint).expect("a snapshot from a new gateway");
        let publish = header(&snapshot, "publish")
            .unwrap_or_else(|| panic!("a gateway started with --publish names it: {snapshot}"))
            .to_owned();
        Gateway {
            server,
            etcd: etcd.to_owned(),
            publish,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.server.endpoint
    }

    /// kill -9; what a restart needs: its `--etcd`, endpoint and publisher.
    pub fn kill(mut self) -> (String, String, String) {
        let _ = self.server.child.kill();
        let _ = self.server.child.wait();
        (
            self.etcd.clone(),
            self.server.endpoint.clone(),
            self.publish.clone(),
        )
    }

    /// The reply to `frame`, or `None` within [`GATEWAY_TIMEOUT`].
    pub fn ask(&self, frame: &str) -> Option<String> {
        ask(self.endpoint(), frame)
    }

    /// `_:`: the plain board, as bytes.
    pub fn poll(&self) -> Vec<u8> {
        request_parts_within(self.endpoint(), &[b"_:"], GATEWAY_TIMEOUT).expect("a poll's reply")
    }

    /// `_:@board`, as text.
    pub fn snapshot(&self) -> String {
        snapshot_text(self.endpoint()).expect("a snapshot")
    }

    /// Polls until the board holds `line`; how long that took. Panics after `bound`.
    pub fn wait_for_line(&self, line: &str, bound: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let board = String::from_utf8(self.poll()).expect("UTF-8 board");
            if board.lines().any(|l| l == line) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < bound,
                "{line:?} not on {} within {bound:?}: {board:?}",
                self.endpoint()
            );
            thread::yield_now();
        }
    }

    /// Waits for a stderr line containing `part`; how long that took.
    pub fn wait_for_log(&self, part: &str, bound: Duration) -> Duration {
        let started = Instant::now();
        self.server.stderr.find_within(part, bound);
        started.elapsed()
    }
}

/// The reply to `frame` at `endpoint` as text, or `None` within [`GATEWAY_TIMEOUT`].
pub fn ask(endpoint: &str, frame: &str) -> Option<String> {
    request_parts_within(endpoint, &[frame.as_bytes()], GATEWAY_TIMEOUT)
        .map(|reply| String::from_utf8(reply).expect("UTF-8 reply"))
}

fn snapshot_text(endpoint: &str) -> Option<String> {
    let text = ask(endpoint, "_:@board")?;
    assert!(
        text.starts_with("status-board 1\n"),
        "not a snapshot: {text:?}"
    );
    Some(text)
}

/// The value of the first header line `KEY value` of a snapshot.
pub fn header<'a>(snapshot: &'a str, key: &str) -> Option<&'a str> {
    snapshot
        .lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
}

/// A snapshot's header as [`Seen`].
pub fn seen_in(snapshot: &str) -> Seen {
    Seen::Snapshot {
        epoch: header(snapshot, "epoch").expect("an epoch").to_owned(),
        seq: header(snapshot, "seq")
            .and_then(|s| s.parse().ok())
            .expect("a seq"),
    }
}

/// What a [`Watch`] has seen so far, and a signal when it sees more.
#[derive(Default)]
struct Record {
    frames: Mutex<Vec<(Instant, Vec<u8>)>>,
    more: Condvar,
}

/// A watcher of one gateway: its publisher's frames, and its snapshots
/// taken one after the other, until [`Watch::finish`].
pub struct Watch {
    stop: Arc<AtomicBool>,
    published: Arc<Record>,
    subscriber: JoinHandle<()>,
    poller: JoinHandle<Vec<Seen>>,
}

impl Watch {
    /// Subscribes to `gateway`'s publisher and returns once the first
    /// heartbeat has come (the subscription has reached it).
    pub fn start(gateway: &Gateway) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let published = Arc::new(Record::default());
        let subscriber = {
            let (stop, published, publish) = (
                Arc::clone(&stop),
                Arc::clone(&published),
                gateway.publish.clone(),
            );
            thread::spawn(move || subscribe(&publish, &stop, &published))
        };
        let poller = {
            let (stop, endpoint) = (Arc::clone(&stop), gateway.endpoint().to_owned());
            thread::spawn(move || poll_snapshots(&endpoint, &stop))
        };
        let watch = Watch {
            stop,
            published,
            subscriber,
            poller,
        };
        watch.wait_for("hb ", Duration::from_secs(10));
        watch
    }

    /// Waits for a published frame containing `part`; when it came.
    pub fn wait_for(&self, part: &str, bound: Duration) -> Instant {
        let deadline = Instant::now() + bound;
        let mut frames = self.published.frames.lock().expect("frames");
        loop {
            if let Some((at, _)) = frames
                .iter()
                .find(|(_, f)| String::from_utf8_lossy(f).contains(part))
            {
                return *at;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no published frame with {part:?} within {bound:?}; the last ones: {:?}",
                frames
                    .iter()
                    .rev()
                    .take(5)
                    .map(|(_, f)| String::from_utf8_lossy(f).into_owned())
                    .collect::<Vec<_>>()
            );
            frames = self
                .published
                .more
                .wait_timeout(frames, left)
                .expect("frames")
                .0;
        }
    }

    /// Stops watching: the publisher's sequence and the snapshots' sequence.
    pub fn finish(self) -> (Vec<Seen>, Vec<Seen>) {
        self.stop.store(true, Ordering::SeqCst);
        self.subscriber.join().expect("the subscriber thread");
        let snapshots = self.poller.join().expect("the poller thread");
        let published = self
            .published
            .frames
            .lock()
            .expect("frames")
            .iter()
            .filter_map(|(_, f)| parse_published(f))
            .collect();
        (published, snapshots)
    }
}

fn subscribe(publish: &str, stop: &AtomicBool, record: &Record) {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::SUB).expect("SUB");
    socket.set_linger(0).expect("LINGER");
    socket.set_subscribe(b"").expect("subscribe");
    socket.set_rcvtimeo(100).expect("RCVTIMEO");
    socket.connect(publish).expect("connect to the publisher");
    while !stop.load(Ordering::SeqCst) {
        match socket.recv_bytes(0) {
            Ok(frame) => {
                record
                    .frames
                    .lock()
                    .expect("frames")
                    .push((Instant::now(), frame));
                record.more.notify_all();
            }
            Err(zmq::Error::EAGAIN) => {}
            Err(e) => panic!("the subscriber failed: {e}"),
        }
    }
}

/// Takes snapshots one after the other (a gateway that is down is asked
/// again) until `stop`; each one's sequence.
fn poll_snapshots(endpoint: &str, stop: &AtomicBool) -> Vec<Seen> {
    let mut seen = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let reply = request_parts_within(endpoint, &[b"_:@board"], Duration::from_millis(500));
        if let Some(reply) = reply {
            seen.push(seen_in(&String::from_utf8(reply).expect("UTF-8 snapshot")));
        }
        // One snapshot every 20 ms is plenty, and leaves the cores to the cluster.
        thread::sleep(Duration::from_millis(20));
    }
    seen
}
