//! Many watchers: 1 000 subscribers on our publisher against a bare PUB
//! socket, and 1 000 watchers polling at rest.

use std::fmt::Write as _;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::Settings;
use crate::common;
use crate::load::{LIVE_SPREAD, REPLY_BOUND, ask, pollers_at_rest, req_socket, spread_pause};
use crate::process::{Spawned, cpu_seconds, resident_kib};
use crate::stats::{millis, percentile};
use crate::targets::floor::SERVE_FLOOR_PUB;
use crate::targets::ours::{ours, ours_on, prefilled_state, publish_endpoint};

/// `n` SUB sockets on `endpoint`, spread over several contexts (an I/O
/// thread each), polled by one thread: for each marker `vI` in order, the
/// time the last of them had it is sent on the channel.
struct Subscribers {
    done: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    arrivals: mpsc::Receiver<(u64, Instant)>,
    /// Said once every one has received anything at all: their subscriptions
    /// have reached the publisher (a PUB drops what it sends before that).
    everyone_heard: mpsc::Receiver<()>,
}

impl Subscribers {
    const CONTEXTS: usize = 4;

    fn start(endpoint: &str, n: usize) -> Subscribers {
        let done = Arc::new(AtomicBool::new(false));
        let (tx, arrivals) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let endpoint = endpoint.to_owned();
        let stop = Arc::clone(&done);
        let (heard_tx, everyone_heard) = mpsc::channel();
        let thread = thread::spawn(move || {
            let contexts: Vec<zmq::Context> =
                (0..Self::CONTEXTS).map(|_| zmq::Context::new()).collect();
            let sockets: Vec<zmq::Socket> = (0..n)
                .map(|k| {
                    let socket = contexts[k % Self::CONTEXTS].socket(zmq::SUB).expect("SUB");
                    socket.set_linger(0).expect("LINGER");
                    socket.set_rcvhwm(100_000).expect("RCVHWM");
                    socket.set_subscribe(b"").expect("subscribe");
                    socket.connect(&endpoint).expect("connect");
                    socket
                })
                .collect();
            let _ = ready_tx.send(());
            let mut next = vec![0u64; n];
            let mut spoke = vec![false; n];
            let mut heard = 0;
            let mut reported = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut items: Vec<zmq::PollItem> = sockets
                    .iter()
                    .map(|s| s.as_poll_item(zmq::POLLIN))
                    .collect();
                if zmq::poll(&mut items, 50).unwrap_or(0) <= 0 {
                    continue;
                }
                let ready: Vec<usize> = (0..n).filter(|&k| items[k].is_readable()).collect();
                drop(items);
                for k in ready {
                    while let Ok(message) = sockets[k].recv_bytes(zmq::DONTWAIT) {
                        if !spoke[k] {
                            spoke[k] = true;
                            heard += 1;
                            if heard == n {
                                let _ = heard_tx.send(());
                            }
                        }
                        let wanted = format!("bench-fan: v{}", next[k]);
                        if message.ends_with(wanted.as_bytes()) {
                            next[k] += 1;
                        }
                    }
                }
                let everyone = next.iter().copied().min().unwrap_or(0);
                let now = Instant::now();
                while reported < everyone {
                    let _ = tx.send((reported, now));
                    reported += 1;
                }
            }
        });
        ready
            .recv_timeout(REPLY_BOUND)
            .expect("the subscribers connect");
        Subscribers {
            done,
            thread: Some(thread),
            arrivals,
            everyone_heard,
        }
    }

    /// Calls `poke` (something that publishes) every 100 ms until every
    /// subscriber has received something.
    fn warm_up(&self, mut poke: impl FnMut()) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            poke();
            match self.everyone_heard.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => return,
                Err(_) => assert!(
                    Instant::now() < deadline,
                    "subscribers never heard the publisher"
                ),
            }
        }
    }

    /// When every subscriber had change `i`.
    fn wait(&self, i: u64) -> Instant {
        loop {
            match self.arrivals.recv_timeout(Duration::from_secs(20)) {
                Ok((n, at)) if n == i => return at,
                Ok(_) => {}
                Err(_) => panic!("change {i} did not reach every subscriber"),
            }
        }
    }
}

impl Drop for Subscribers {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// 1 000 subscribers on the publisher against a bare PUB socket; 1 000
/// watchers polling at rest.
pub fn watchers(s: &Settings, out: &mut String) {
    writeln!(out, "## Many watchers\n").ok();
    let n = if s.smoke { 50 } else { 1_000 };
    let samples = if s.smoke { 5 } else { 200 };
    let server = ours(&["--publish", "tcp://127.0.0.1:*"]);
    let publish = publish_endpoint(&server);
    let rss_before = resident_kib(&server.child);
    let ours_subs = Subscribers::start(&publish, n);

    let floor = Spawned::start(
        Command::new(std::env::current_exe().expect("harness path")).arg(SERVE_FLOOR_PUB),
    );
    let line = floor.lines.next("the bare publisher's endpoints");
    let (floor_pub, floor_control) = line.split_once(' ').expect("two endpoints");
    let floor_subs = Subscribers::start(floor_pub, n);
    // Subscriptions travel to the publishers after the connect: warm both up.
    let context = zmq::Context::new();
    let (to_ours, to_floor) = (
        req_socket(&context, &server.endpoint),
        req_socket(&context, floor_control),
    );
    // The server's heartbeat (every second) reaches every subscriber in time;
    // the bare publisher is asked to send something.
    ours_subs.warm_up(|| {});
    floor_subs.warm_up(|| {
        ask(&to_floor, b"warm");
    });
    let snapshot = common::snapshot(&server.endpoint);
    let mut seq = snapshot.header.seq;
    let (mut ours_times, mut floor_times, mut replies) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=samples as u64 {
        spread_pause(i, LIVE_SPREAD);
        // Ours: from sending the update until the last subscriber has it.
        let sent = Instant::now();
        ask(&to_ours, format!("bench-fan: v{i}").as_bytes());
        let replied = sent.elapsed();
        let last = ours_subs.wait(i);
        seq += 1;
        // The bare PUB: the same bytes, published when its control is answered.
        let notice = format!(
            "set {} {seq} {} bench-fan: v{i}",
            snapshot.header.epoch,
            common::now_ms()
        );
        let floor_sent = Instant::now();
        ask(&to_floor, notice.as_bytes());
        let floor_last = floor_subs.wait(i);
        if i > 0 {
            ours_times.push(last.saturating_duration_since(sent));
            floor_times.push(floor_last.saturating_duration_since(floor_sent));
            replies.push(replied);
        }
    }
    let rss_with = resident_kib(&server.child);
    drop(ours_subs);
    drop(floor_subs);
    drop(floor);
    let p = |times: &mut Vec<Duration>, q: f64| {
        times.sort_unstable();
        percentile(times, q)
    };
    let (o50, o99) = (p(&mut ours_times, 0.5), p(&mut ours_times, 0.99));
    let (f50, f99) = (p(&mut floor_times, 0.5), p(&mut floor_times, 0.99));
    let (r50, r99) = (p(&mut replies, 0.5), p(&mut replies, 0.99));
    writeln!(
        out,
        "{n} SUB sockets in the harness ({} contexts, one polling thread), one update at a \
         time, {samples} samples, alternating: from sending the update to our server (which \
         answers, then publishes) or a request to the bare publisher's control socket (which \
         publishes the same bytes on a bare PUB socket, then answers) until the last \
         subscriber has the change. The update's own round trip: p50 {} ms, p99 {} ms.\n\n\
         | publisher | p50 ms | p99 ms | floor / ours (p50, p99) |\n| --- | --- | --- | --- |\n\
         | bare PUB socket (the floor) | {} | {} | |\n\
         | ours | {} | {} | {:.2}, {:.2} |\n\n\
         The server's resident memory: {rss_before} KiB with no subscriber, {rss_with} KiB with {n} \
         ({:.1} KiB each).\n",
        Subscribers::CONTEXTS,
        millis(r50),
        millis(r99),
        millis(f50),
        millis(f99),
        millis(o50),
        millis(o99),
        f50.as_secs_f64() / o50.as_secs_f64().max(1e-9),
        f99.as_secs_f64() / o99.as_secs_f64().max(1e-9),
        rss_with.saturating_sub(rss_before) as f64 / n as f64,
    )
    .ok();
    drop(server);

    // At rest: 1 000 watchers polling every 2 s; the server's CPU share.
    let period = Duration::from_secs(2);
    let duration = if s.smoke {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let state = prefilled_state(dir.path(), 100);
    writeln!(
        out,
        "{n} watchers each polling every 2 s (one thread, spread evenly) for {} s, a 100-entry \
         board that does not change: the server's CPU time over wall time.\n\n\
         | poll | server CPU |\n| --- | --- |",
        duration.as_secs()
    )
    .ok();
    for (what, since) in [
        ("`_:@since EPOCH SEQ` (our watcher)", true),
        ("`_:` (the original's)", false),
    ] {
        let server = ours_on(&state, &[]);
        let snapshot = common::snapshot(&server.endpoint);
        let request =
            status_board::protocol::format_since(&snapshot.header.epoch, snapshot.header.seq);
        let before = cpu_seconds(&server.child);
        let started = Instant::now();
        pollers_at_rest(&server.endpoint, n, period, duration, &|| match since {
            true => request.clone().into_bytes(),
            false => b"_:".to_vec(),
        });
        let share = (cpu_seconds(&server.child) - before) / started.elapsed().as_secs_f64();
        writeln!(out, "| {what} | {:.1} % |", share * 100.0).ok();
    }
    writeln!(out).ok();
}
