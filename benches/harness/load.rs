//! The load generator: REQ clients in a closed loop, one update at a time
//! for latencies, and background load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::Settings;
use crate::stats::Sample;

/// How long any one reply may take before the harness gives up: it bounds a
/// hang, it measures nothing.
pub const REPLY_BOUND: Duration = Duration::from_secs(10);

/// Our latency samples are this far apart, at most.
pub const LIVE_SPREAD: Duration = Duration::from_millis(10);

/// Makes client K's Nth request.
pub type RequestFn = fn(usize, u64) -> Vec<u8>;

/// [`RequestFn`], or a closure that does the same.
pub type Requests = dyn Fn(usize, u64) -> Vec<u8>;

pub fn poll_request(_: usize, _: u64) -> Vec<u8> {
    b"_:".to_vec()
}

pub fn update_request(k: usize, i: u64) -> Vec<u8> {
    format!("bench-{k}: update {i}").into_bytes()
}

/// A REQ socket connected to `endpoint`, LINGER 0, every receive bounded.
pub fn req_socket(context: &zmq::Context, endpoint: &str) -> zmq::Socket {
    let socket = context.socket(zmq::REQ).expect("REQ socket");
    socket.set_linger(0).expect("LINGER");
    socket
        .set_rcvtimeo(REPLY_BOUND.as_millis() as i32)
        .expect("RCVTIMEO");
    socket.connect(endpoint).expect("connect");
    socket
}

/// Sends `request` on a REQ socket and waits (bounded) for the reply.
pub fn ask(socket: &zmq::Socket, request: &[u8]) -> Vec<u8> {
    socket.send(request, 0).expect("send");
    socket
        .recv_bytes(0)
        .unwrap_or_else(|e| panic!("no reply within {REPLY_BOUND:?}: {e}"))
}

/// Sleeps the `i`th of a series of pauses spread over `0..spread`: steps of
/// the golden ratio cover the spread evenly for any count, in no fixed
/// order, so that samples do not fall in step with heartbeats or polls.
pub fn spread_pause(i: u64, spread: Duration) {
    let fraction = (i as f64 * 0.618_033_988_75).fract();
    thread::sleep(spread.mul_f64(fraction));
}

/// Which of `sockets` have something to read within `timeout_ms`.
fn readable(sockets: &[zmq::Socket], timeout_ms: i64) -> Vec<usize> {
    let mut items: Vec<zmq::PollItem> = sockets
        .iter()
        .map(|s| s.as_poll_item(zmq::POLLIN))
        .collect();
    if zmq::poll(&mut items, timeout_ms).unwrap_or(0) <= 0 {
        return Vec::new();
    }
    (0..sockets.len())
        .filter(|&k| items[k].is_readable())
        .collect()
}

/// `clients` REQ sockets in a closed loop against `endpoint` for the set duration.
///
/// One thread polls every socket, as redis-benchmark does with its connections:
/// on two cores, a thread per client would measure the scheduler.
pub fn load(endpoint: &str, clients: usize, request: &Requests, s: &Settings) -> Sample {
    load_as(None, endpoint, clients, request, s)
}

/// [`load`], every client logged in as `(user, password)` if given.
pub fn load_as(
    login: Option<(&str, &str)>,
    endpoint: &str,
    clients: usize,
    request: &Requests,
    s: &Settings,
) -> Sample {
    let context = zmq::Context::new();
    let sockets: Vec<zmq::Socket> = (0..clients)
        .map(|_| {
            let socket = context.socket(zmq::REQ).expect("REQ socket");
            socket.set_linger(0).expect("LINGER");
            socket
                .set_rcvtimeo(REPLY_BOUND.as_millis() as i32)
                .expect("RCVTIMEO");
            if let Some((user, password)) = login {
                socket.set_plain_username(Some(user)).expect("user");
                socket.set_plain_password(Some(password)).expect("password");
            }
            socket.connect(endpoint).expect("connect");
            socket
        })
        .collect();
    // One poll each before the clock starts: every connection is up, and every
    // login done (they are checked one after the other, ~20 ms each).
    for socket in &sockets {
        ask(socket, b"_:");
    }
    let start = Instant::now();
    let (measure_from, end) = (start + s.warmup, start + s.warmup + s.duration);
    let mut sent_at = vec![start; clients];
    let mut count = vec![0u64; clients];
    for (k, socket) in sockets.iter().enumerate() {
        sent_at[k] = Instant::now();
        socket.send(request(k, 0), 0).expect("send");
    }
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut outstanding = clients;
    while outstanding > 0 {
        let ready = readable(&sockets, REPLY_BOUND.as_millis() as i64);
        assert!(
            !ready.is_empty(),
            "no reply from {endpoint} in {REPLY_BOUND:?}"
        );
        for k in ready {
            sockets[k].recv_msg(0).expect("reply");
            let now = Instant::now();
            if sent_at[k] >= measure_from {
                latencies.push(now - sent_at[k]);
            }
            if now < end {
                count[k] += 1;
                sent_at[k] = now;
                sockets[k].send(request(k, count[k]), 0).expect("send");
            } else {
                outstanding -= 1;
            }
        }
    }
    latencies.sort_unstable();
    // Each client: its first poll, its first request, one more per count.
    let requests = 2 * clients as u64 + count.iter().sum::<u64>();
    Sample::from_sorted(&latencies, s.duration, requests)
}

/// Posts `n` updates to `endpoint`, one at a time, and times each until
/// `arrived(i)` says the watcher has it. Each waits a spread-out part of
/// `spread` first (see [`spread_pause`]).
pub fn update_to_watcher(
    endpoint: &str,
    n: usize,
    spread: Duration,
    mut arrived: impl FnMut(u64),
) -> Vec<Duration> {
    let context = zmq::Context::new();
    let socket = req_socket(&context, endpoint);
    let mut times = Vec::with_capacity(n);
    for i in 0..n as u64 {
        spread_pause(i, spread);
        let started = Instant::now();
        ask(&socket, format!("bench-live: v{i}").as_bytes());
        arrived(i);
        times.push(started.elapsed());
    }
    times
}

/// `clients` REQ sockets polling `endpoint` flat out until `stop` is set;
/// the thread returns how many polls were answered.
pub fn background_polls(
    endpoint: String,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let context = zmq::Context::new();
        let sockets: Vec<zmq::Socket> = (0..clients)
            .map(|_| {
                let socket = req_socket(&context, &endpoint);
                socket.send("_:", 0).expect("send");
                socket
            })
            .collect();
        let mut polls = 0;
        while !stop.load(Ordering::Relaxed) {
            for k in readable(&sockets, 100) {
                sockets[k].recv_msg(0).expect("reply");
                sockets[k].send("_:", 0).expect("send");
                polls += 1;
            }
        }
        polls
    })
}

/// `n` watchers that each poll with `request()` every `period`, spread
/// evenly, for `duration`, from one thread.
pub fn pollers_at_rest(
    endpoint: &str,
    n: usize,
    period: Duration,
    duration: Duration,
    request: &dyn Fn() -> Vec<u8>,
) {
    let context = zmq::Context::new();
    let sockets: Vec<zmq::Socket> = (0..n).map(|_| req_socket(&context, endpoint)).collect();
    let start = Instant::now();
    let mut due: Vec<Instant> = (0..n)
        .map(|k| start + period.mul_f64(k as f64 / n as f64))
        .collect();
    let mut waiting = vec![false; n];
    while start.elapsed() < duration {
        let now = Instant::now();
        for k in 0..n {
            if !waiting[k] && due[k] <= now {
                sockets[k].send(request(), 0).expect("send");
                waiting[k] = true;
                due[k] += period;
            }
        }
        for k in readable(&sockets, 5) {
            sockets[k].recv_bytes(0).expect("reply");
            waiting[k] = false;
        }
    }
}

/// The time from a fresh REQ socket's connect to its first reply, logged in
/// as `login` if given: the handshake (and, with a login, one argon2
/// verification) plus a poll. The median of `n`.
pub fn first_reply(endpoint: &str, login: Option<(&str, &str)>, n: usize) -> Duration {
    let times: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            let reply = crate::common::request_parts_as(login, endpoint, &[b"_:"], REPLY_BOUND);
            assert!(reply.is_some(), "no reply from {endpoint}");
            started.elapsed()
        })
        .collect();
    crate::stats::median(times)
}

/// An update a [`PirateWriter`] had acknowledged: when it was sent, when
/// its acknowledgement came.
#[derive(Debug, Clone, Copy)]
pub struct Acked {
    pub sent: Instant,
    pub acked: Instant,
}

/// What a [`PirateWriter`] has seen so far.
#[derive(Default)]
struct WriterLog {
    acks: Vec<Acked>,
    /// Requests that had no reply within the writer's timeout.
    timeouts: u64,
    /// Replies that were an error (`error: unavailable: …`): not acknowledged.
    refusals: u64,
    /// Which of its endpoints it sends to now.
    endpoint: usize,
}

/// A client posting updates one after another, as a script would, the
/// Lazy Pirate way: a request without a reply within `timeout` is given up,
/// its socket closed, and the next update goes on a fresh socket to the
/// next of its endpoints (the same one if it has one).
pub struct PirateWriter {
    shared: Arc<(Mutex<WriterLog>, Condvar)>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl PirateWriter {
    pub fn start(endpoints: Vec<String>, timeout: Duration) -> PirateWriter {
        let shared = Arc::new((Mutex::new(WriterLog::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            thread::spawn(move || write_pirate(&endpoints, timeout, &shared, &stop))
        };
        PirateWriter {
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// The first acknowledged update sent at or after `since`, waiting for
    /// it `bound` at most.
    pub fn first_ack_sent_after(&self, since: Instant, bound: Duration) -> Option<Acked> {
        let (log, acked) = &*self.shared;
        let deadline = Instant::now() + bound;
        let mut log = log.lock().expect("writer log");
        loop {
            if let Some(ack) = log.acks.iter().rev().take_while(|a| a.sent >= since).last() {
                return Some(*ack);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            log = acked.wait_timeout(log, left).expect("writer log").0;
        }
    }

    /// Which of its endpoints it sends to now.
    pub fn endpoint(&self) -> usize {
        self.shared.0.lock().expect("writer log").endpoint
    }

    /// Its requests that timed out, and its updates refused, so far.
    pub fn failures(&self) -> (u64, u64) {
        let log = self.shared.0.lock().expect("writer log");
        (log.timeouts, log.refusals)
    }
}

impl Drop for PirateWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// [`PirateWriter`]'s loop, until `stop`.
fn write_pirate(
    endpoints: &[String],
    timeout: Duration,
    shared: &(Mutex<WriterLog>, Condvar),
    stop: &AtomicBool,
) {
    let context = zmq::Context::new();
    let open = |at: usize| {
        let socket = req_socket(&context, &endpoints[at]);
        let millis = timeout.as_millis() as i32;
        socket.set_rcvtimeo(millis).expect("RCVTIMEO");
        socket.set_sndtimeo(millis).expect("SNDTIMEO");
        socket
    };
    let (mut at, mut i) = (0, 0u64);
    let mut socket = open(at);
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let reply = socket
            .send(format!("bench-failover: update {i}").as_bytes(), 0)
            .and_then(|()| socket.recv_bytes(0));
        i += 1;
        let acked = Instant::now();
        let mut log = shared.0.lock().expect("writer log");
        match reply {
            Ok(reply) if reply.starts_with(b"error") => {
                log.refusals += 1;
                drop(log);
                // A script would not retry a refusal in a tight loop either;
                // spinning would take a core from the election on two.
                thread::sleep(Duration::from_millis(5));
            }
            Ok(_) => {
                log.acks.push(Acked { sent, acked });
                shared.1.notify_all();
            }
            Err(_) => {
                log.timeouts += 1;
                at = (at + 1) % endpoints.len();
                log.endpoint = at;
                drop(log);
                socket = open(at);
            }
        }
    }
}
