//! Writers posting numbered updates (`wK: n=N`) through gateways on REQ
//! sockets of their own, one name a writer, every operation recorded as
//! [`Op`]: invoked, then acknowledged with its reply, refused, or timed out.
//! A writer that times out sends its next update on a fresh socket (Lazy
//! Pirate), to the next of its endpoints.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::history::{Op, Outcome};

/// A writer's wait for a reply: past the gateway's own 2 s bound on a
/// refusal, with room for a busy machine.
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);

/// Between two writes of one writer: a steady load that leaves the two
/// cores to etcd and the gateways.
const PACE: Duration = Duration::from_millis(15);

#[derive(Default)]
struct Log {
    ops: Mutex<Vec<Op>>,
    more: Condvar,
}

pub struct Writers {
    stop: Arc<AtomicBool>,
    log: Arc<Log>,
    threads: Vec<JoinHandle<()>>,
    pub names: Vec<String>,
}

impl Writers {
    /// One writer a list of endpoints: writer `k` is `wK` and writes to its
    /// list's first endpoint, moving to the next on a timeout.
    pub fn start(endpoints: &[Vec<String>]) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Log::default());
        let names: Vec<String> = (0..endpoints.len()).map(|k| format!("w{k}")).collect();
        let threads = endpoints
            .iter()
            .zip(&names)
            .map(|(endpoints, name)| {
                let (stop, log, endpoints, name) = (
                    Arc::clone(&stop),
                    Arc::clone(&log),
                    endpoints.clone(),
                    name.clone(),
                );
                thread::spawn(move || write(&name, &endpoints, &stop, &log))
            })
            .collect();
        Writers {
            stop,
            log,
            threads,
            names,
        }
    }

    /// Waits until every writer has an acknowledged write invoked at or after
    /// `since`; when the first and the last of those came. Panics after `bound`.
    pub fn wait_all_acknowledged_since(
        &self,
        since: Instant,
        bound: Duration,
    ) -> (Instant, Instant) {
        let all: Vec<usize> = (0..self.names.len()).collect();
        self.wait_acknowledged_since(&all, since, bound)
    }

    /// Waits until every writer has had `count` writes acknowledged from
    /// `since` on: a run long enough to mean something around a fault.
    pub fn wait_all_acknowledged_count(&self, count: usize, since: Instant, bound: Duration) {
        let deadline = Instant::now() + bound;
        let mut ops = self.log.ops.lock().expect("ops");
        loop {
            let counts: Vec<usize> = self
                .names
                .iter()
                .map(|name| {
                    ops.iter()
                        .filter(|op| &op.name == name && op.invoked >= since && op.acknowledged())
                        .count()
                })
                .collect();
            if counts.iter().all(|&c| c >= count) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "not {count} writes acknowledged for every writer within {bound:?}: {counts:?}"
            );
            ops = self.log.more.wait_timeout(ops, left).expect("ops").0;
        }
    }

    /// [`Writers::wait_all_acknowledged_since`] for the writers numbered in `which`.
    pub fn wait_acknowledged_since(
        &self,
        which: &[usize],
        since: Instant,
        bound: Duration,
    ) -> (Instant, Instant) {
        let deadline = Instant::now() + bound;
        let mut ops = self.log.ops.lock().expect("ops");
        loop {
            let firsts: Vec<Option<Instant>> = which
                .iter()
                .map(|&k| {
                    let name = &self.names[k];
                    ops.iter()
                        .filter(|op| &op.name == name && op.invoked >= since && op.acknowledged())
                        .map(|op| op.completed)
                        .min()
                })
                .collect();
            if firsts.iter().all(Option::is_some) {
                let firsts = firsts.into_iter().flatten();
                let first = firsts.clone().min().expect("writers");
                let last = firsts.max().expect("writers");
                return (first, last);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "not every writer had a write acknowledged within {bound:?}: {firsts:?}; \
                 the last operations: {:#?}",
                ops.iter().rev().take(8).collect::<Vec<_>>()
            );
            ops = self.log.more.wait_timeout(ops, left).expect("ops").0;
        }
    }

    /// Stops every writer after its current write; every operation.
    pub fn finish(self) -> Vec<Op> {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().expect("a writer thread");
        }
        std::mem::take(&mut *self.log.ops.lock().expect("ops"))
    }
}

/// Counts of acknowledged, refused and timed-out operations.
pub fn tally(ops: &[Op]) -> (usize, usize, usize) {
    let count = |f: fn(&Outcome) -> bool| ops.iter().filter(|op| f(&op.outcome)).count();
    (
        count(|o| matches!(o, Outcome::Acknowledged(_))),
        count(|o| matches!(o, Outcome::Refused(_))),
        count(|o| matches!(o, Outcome::TimedOut)),
    )
}

fn write(name: &str, endpoints: &[String], stop: &AtomicBool, log: &Log) {
    let context = zmq::Context::new();
    let connect = |endpoint: &str| {
        let socket = context.socket(zmq::REQ).expect("REQ");
        socket.set_linger(0).expect("LINGER");
        socket
            .set_rcvtimeo(i32::try_from(WRITE_TIMEOUT.as_millis()).expect("fits"))
            .expect("RCVTIMEO");
        socket.connect(endpoint).expect("connect");
        socket
    };
    let mut at = 0;
    let mut socket = connect(&endpoints[at]);
    let mut number = 0;
    while !stop.load(Ordering::SeqCst) {
        number += 1;
        let status = format!(": n={number}");
        let invoked = Instant::now();
        socket
            .send(format!("{name}{status}").as_bytes(), 0)
            .expect("send");
        let outcome = match socket.recv_bytes(0) {
            Ok(reply) => {
                let reply = String::from_utf8(reply).expect("UTF-8 reply");
                if reply.starts_with("error: ") {
                    Outcome::Refused(reply)
                } else {
                    Outcome::Acknowledged(reply)
                }
            }
            Err(zmq::Error::EAGAIN) => Outcome::TimedOut,
            Err(e) => panic!("{name}: receive failed: {e}"),
        };
        let timed_out = matches!(outcome, Outcome::TimedOut);
        let op = Op {
            name: name.to_owned(),
            status,
            number,
            endpoint: endpoints[at].clone(),
            invoked,
            completed: Instant::now(),
            outcome,
        };
        log.ops.lock().expect("ops").push(op);
        log.more.notify_all();
        if timed_out {
            at = (at + 1) % endpoints.len();
            socket = connect(&endpoints[at]);
        }
        thread::sleep(PACE);
    }
}

impl Writers {
    /// Waits until writer `k` has had a write refused that it sent at or
    /// after `since`; that refusal. Panics after `bound`.
    pub fn wait_refused(&self, k: usize, since: Instant, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        let name = &self.names[k];
        let mut ops = self.log.ops.lock().expect("ops");
        loop {
            let refused = ops.iter().find_map(|op| match &op.outcome {
                Outcome::Refused(reply) if &op.name == name && op.invoked >= since => {
                    Some(reply.clone())
                }
                _ => None,
            });
            if let Some(reply) = refused {
                return reply;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{name} had no write refused within {bound:?}; its last: {:#?}",
                ops.iter()
                    .rev()
                    .filter(|op| &op.name == name)
                    .take(4)
                    .collect::<Vec<_>>()
            );
            ops = self.log.more.wait_timeout(ops, left).expect("ops").0;
        }
    }
}
