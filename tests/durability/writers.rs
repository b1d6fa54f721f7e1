//! The load: concurrent writers, each updating its own name until stopped,
//! and the check that every update they were acknowledged survived.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use crate::common::{Server, req_socket, set_receive_timeout};

/// A client that updates `wK` with 0, 1, 2, … until stopped; counts every
/// acknowledgement in `acks[k]`. A late reply (a loaded machine) is waited
/// for until the stop: only then is an unanswered update given up.
pub fn writer(
    endpoint: String,
    k: usize,
    stop: Arc<AtomicBool>,
    acks: Arc<[AtomicU64]>,
) -> Written {
    let context = zmq::Context::new();
    let socket = req_socket(&context, &endpoint, None);
    set_receive_timeout(&socket, Duration::from_secs(1));
    let mut acked = None;
    let mut board = Vec::new();
    for i in 0u64.. {
        if stop.load(Ordering::Relaxed) || socket.send(format!("w{k}: {i}").as_str(), 0).is_err() {
            break;
        }
        let reply = loop {
            match socket.recv_bytes(0) {
                Err(zmq::Error::EAGAIN) if !stop.load(Ordering::Relaxed) => continue,
                other => break other,
            }
        };
        match reply {
            Ok(reply) => {
                assert!(reply.starts_with(b"- "), "a board, not {reply:?}");
                acked = Some(i);
                board = reply;
                acks[k].fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => break,
        }
    }
    (acked, board)
}

/// A writer's last acknowledged value and the last board it was answered with.
pub type Written = (Option<u64>, Vec<u8>);

/// `n` writers (`w0` … `wN-1`) running until [`Writers::finish`].
pub struct Writers {
    stop: Arc<AtomicBool>,
    /// Each writer's acknowledged updates.
    acks: Arc<[AtomicU64]>,
    handles: Vec<thread::JoinHandle<Written>>,
}

impl Writers {
    pub fn start(endpoint: &str, n: usize) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acks: Arc<[AtomicU64]> = (0..n).map(|_| AtomicU64::new(0)).collect();
        let handles = (0..n)
            .map(|k| {
                let (endpoint, stop, acks) =
                    (endpoint.to_owned(), Arc::clone(&stop), Arc::clone(&acks));
                thread::spawn(move || writer(endpoint, k, stop, acks))
            })
            .collect();
        Writers {
            stop,
            acks,
            handles,
        }
    }

    /// Updates acknowledged so far, in all.
    pub fn acks(&self) -> u64 {
        self.acks.iter().map(|a| a.load(Ordering::SeqCst)).sum()
    }

    /// Waits until `n` updates in all have been acknowledged.
    pub fn wait_for_acks(&self, n: u64) {
        wait_until(&format!("{n} acknowledged updates"), || self.acks() >= n);
    }

    /// Waits until every writer has had at least one update acknowledged
    /// (on a loaded machine one may lag far behind the others).
    pub fn wait_for_each_writer(&self) {
        wait_until("an acknowledged update from every writer", || {
            self.acks.iter().all(|a| a.load(Ordering::SeqCst) > 0)
        });
    }

    /// Stops them; each one's last acknowledged value and last board.
    pub fn finish(self) -> Vec<Written> {
        self.stop.store(true, Ordering::Relaxed);
        self.handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect()
    }
}

/// Waits until `done` says so, looking every few milliseconds; panics naming
/// `what` after a generous bound.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never saw {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// The value of `wK` on a parsed board.
pub fn value_of(board: &[(String, u64)], k: usize) -> Option<u64> {
    let name = format!("w{k}");
    board.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Name → value of a `- wK: N` board, in board order.
pub fn values_on(board: &[u8]) -> Vec<(String, u64)> {
    let text = std::str::from_utf8(board).expect("a UTF-8 board");
    status_board::protocol::parse_board(text)
        .unwrap_or_else(|e| panic!("not a board ({e}): {text:?}"))
        .into_iter()
        .map(|entry| {
            let value = entry.status.strip_prefix(": ").and_then(|v| v.parse().ok());
            let value = value.unwrap_or_else(|| panic!("not a number: {entry:?}"));
            (entry.name, value)
        })
        .collect()
}

/// Hammers a server with `writers` clients, kills it -9 once they have had
/// `acks` updates acknowledged (and each writer at least one), restarts it,
/// and checks every acknowledged update survived, in order.
pub fn kill_9_under_load(state: &Path, extra: &[&str], writers: usize, acks: u64) -> Server {
    let server = Server::start_on(state, extra);
    let writers = Writers::start(&server.endpoint, writers);
    writers.wait_for_acks(acks);
    writers.wait_for_each_writer();
    let (status, _) = server.stop(libc::SIGKILL);
    assert_eq!(status.code(), None, "killed by a signal");
    let results = writers.finish();
    let again = Server::start_on(state, extra);
    assert_all_acknowledged_survived(&results, &again);
    again
}

/// Every writer's acknowledged value is on the restarted board (or the one
/// after it, sent but not acknowledged), in the order they first appeared.
pub fn assert_all_acknowledged_survived(results: &[Written], again: &Server) {
    let restored = values_on(&again.request(b"_:"));
    for (k, (acked, _)) in results.iter().enumerate() {
        let Some(acked) = acked else { continue };
        let value = value_of(&restored, k)
            .unwrap_or_else(|| panic!("w{k} acknowledged {acked} but is gone: {restored:?}"));
        assert!(
            value >= *acked,
            "w{k}: acknowledged {acked}, restored {value}"
        );
        assert!(
            value <= acked + 1,
            "w{k}: restored {value}, never sent past {}",
            acked + 1
        );
    }
    // Order: the longest board any writer saw is how the restored board starts.
    let seen = results
        .iter()
        .map(|(_, board)| values_on(board))
        .max_by_key(Vec::len)
        .unwrap_or_default();
    let names = |b: &[(String, u64)]| b.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&restored[..seen.len()]), names(&seen), "order kept");
}

/// After a fault: `more` acknowledged updates, kill -9, a restart, and every
/// acknowledged update there.
pub fn more_then_kill_9_and_check(server: Server, writers: Writers, state: &Path, more: u64) {
    writers.wait_for_acks(writers.acks() + more);
    let (status, _) = server.stop(libc::SIGKILL);
    assert_eq!(status.code(), None, "killed");
    let results = writers.finish();
    let again = Server::start_on(state, &[]);
    assert_all_acknowledged_survived(&results, &again);
}
