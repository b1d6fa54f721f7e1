//! The web board: how soon a change is in a browser, and what 1 000 viewers cost.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::Settings;
use crate::common;
use crate::load::{LIVE_SPREAD, ask, req_socket, spread_pause};
use crate::process::{Spawned, resident_kib, wait_for};
use crate::stats::latency_cells;
use crate::targets::gateway::{browser_missing, connections_to, markers, open_events, start_web};
use crate::targets::ours::{ours_publishing, publish_endpoint, publish_port};

/// The times of [`web_chain`]'s steps: the reply, the SUB, the raw reader,
/// and the DOM (or why there is no browser).
struct Chain {
    replies: Vec<Duration>,
    subs: Vec<Duration>,
    sses: Vec<Duration>,
    doms: Result<Vec<Duration>, String>,
}

/// Each change's way to a browser, step by step: from sending an update
/// until its reply, a SUB socket on the server's publisher, a raw `/events`
/// reader, and the page's DOM in headless Chromium have it.
fn web_chain(server: &common::Server, address: &str, samples: usize) -> Chain {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};
    // Raised when done: the observers' threads end within their timeouts.
    let done = Arc::new(AtomicBool::new(false));
    let (sub_tx, sub_rx) = mpsc::channel::<(u64, Instant)>();
    let publish = publish_endpoint(server);
    let stop = Arc::clone(&done);
    // Said once the SUB has heard anything (a heartbeat, every second): its
    // subscription has reached the publisher, which drops what it sends before.
    let (heard_tx, heard) = mpsc::channel::<()>();
    let sub_thread = thread::spawn(move || {
        let context = zmq::Context::new();
        let sub = context.socket(zmq::SUB).expect("SUB");
        sub.set_linger(0).expect("LINGER");
        sub.set_subscribe(b"").expect("subscribe");
        sub.set_rcvtimeo(100).expect("RCVTIMEO");
        sub.connect(&publish).expect("connect");
        while !stop.load(Ordering::Relaxed) {
            let Ok(frame) = sub.recv_bytes(0) else {
                continue; // a timeout: look at the flag
            };
            let _ = heard_tx.send(());
            let text = String::from_utf8_lossy(&frame);
            if let Some(n) = text
                .rsplit_once("bench-dom v")
                .and_then(|(_, n)| n.parse().ok())
            {
                let _ = sub_tx.send((n, Instant::now()));
            }
        }
    });
    let (sse_tx, sse_rx) = mpsc::channel::<(u64, Instant)>();
    let mut events = open_events(address);
    let stop = Arc::clone(&done);
    let sse_thread = thread::spawn(move || {
        let mut buffer = [0u8; 65536];
        // Heartbeats come every second: a read returns at least that often.
        while let Ok(n @ 1..) = events.read(&mut buffer) {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let now = Instant::now();
            for marker in markers(&String::from_utf8_lossy(&buffer[..n]), "bench-dom v") {
                if sse_tx.send((marker, now)).is_err() {
                    return;
                }
            }
        }
    });
    let page = match browser_missing() {
        Some(why) => Err(why),
        None => {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/bench/dom-latency.mjs");
            let node = Spawned::start(
                Command::new("node")
                    .arg(script)
                    .arg(format!("http://{address}/"))
                    .stdin(Stdio::piped()),
            );
            wait_for(&node.lines, "ready");
            Ok(node)
        }
    };
    heard
        .recv_timeout(Duration::from_secs(10))
        .expect("the SUB hears the publisher's heartbeat");
    let context = zmq::Context::new();
    let req = req_socket(&context, &server.endpoint);
    let wait = |rx: &mpsc::Receiver<(u64, Instant)>, i: u64| loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok((n, at)) if n == i => return at,
            Ok(_) => {}
            Err(_) => panic!("change {i} never arrived"),
        }
    };
    let (mut replies, mut subs, mut sses, mut doms) = (vec![], vec![], vec![], vec![]);
    for i in 0..samples as u64 {
        spread_pause(i, LIVE_SPREAD);
        let sent_epoch = std::time::SystemTime::now();
        let started = Instant::now();
        ask(&req, format!("bench: bench-dom v{i}").as_bytes());
        replies.push(started.elapsed());
        subs.push(wait(&sub_rx, i) - started);
        sses.push(wait(&sse_rx, i) - started);
        if let Ok(node) = &page {
            let wanted = format!("seen {i} ");
            let line = node.lines.find(&wanted);
            let at: f64 = line[wanted.len()..].trim().parse().expect("a time");
            let sent = sent_epoch
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64() * 1e3)
                .unwrap_or_default();
            doms.push(Duration::from_secs_f64(((at - sent) / 1e3).max(0.0)));
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = (sub_thread.join(), sse_thread.join());
    Chain {
        replies,
        subs,
        sses,
        doms: page.map(|_| doms),
    }
}

/// `viewers` raw `/events` readers on one thread (poll(2)): for each update,
/// the time from sending it until the last viewer has it. The first update
/// only warms up. Also the gateway's RSS once they are all connected.
fn web_fanout(
    server: &common::Server,
    address: &str,
    gateway: &Child,
    viewers: usize,
    samples: usize,
    publish_port: u16,
) -> (Vec<Duration>, u64, usize) {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::sync::mpsc;
    let streams: Vec<std::net::TcpStream> = (0..viewers).map(|_| open_events(address)).collect();
    for stream in &streams {
        stream.set_nonblocking(true).expect("nonblocking");
    }
    let (tx, rx) = mpsc::channel::<(u64, Instant)>();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = std::sync::Arc::clone(&stop);
    let poller = thread::spawn(move || {
        let mut streams = streams;
        let mut fds: Vec<libc::pollfd> = streams
            .iter()
            .map(|s| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // Per viewer: the next marker it has not seen, and the end of its last read.
        let mut next = vec![0u64; streams.len()];
        let mut tails = vec![String::new(); streams.len()];
        let mut reported = 0u64;
        let mut buffer = vec![0u8; 65536];
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            // SAFETY: `fds` is a valid array of pollfd for the streams we own.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
            if ready <= 0 {
                continue;
            }
            for (k, fd) in fds.iter_mut().enumerate() {
                if fd.revents == 0 {
                    continue;
                }
                fd.revents = 0;
                while let Ok(n) = streams[k].read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    let text = format!("{}{}", tails[k], String::from_utf8_lossy(&buffer[..n]));
                    for marker in markers(&text, "bench-fan v") {
                        if marker == next[k] {
                            next[k] += 1;
                        }
                    }
                    let cut = text.len().saturating_sub(40);
                    let cut = (cut..text.len())
                        .find(|&c| text.is_char_boundary(c))
                        .unwrap_or(text.len());
                    tails[k] = text[cut..].to_owned();
                }
            }
            let everyone = next.iter().copied().min().unwrap_or(0);
            let now = Instant::now();
            while reported < everyone {
                if tx.send((reported, now)).is_err() {
                    return;
                }
                reported += 1;
            }
        }
    });
    let context = zmq::Context::new();
    let req = req_socket(&context, &server.endpoint);
    let mut times = Vec::with_capacity(samples);
    let (mut rss, mut subscribers) = (0, 0);
    for i in 0..=samples as u64 {
        spread_pause(i, LIVE_SPREAD);
        let started = Instant::now();
        ask(&req, format!("bench: bench-fan v{i}").as_bytes());
        let last = loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok((n, at)) if n == i => break at,
                Ok(_) => {}
                Err(_) => panic!("change {i} did not reach every viewer"),
            }
        };
        match i {
            0 => (rss, subscribers) = (resident_kib(gateway), connections_to(publish_port)),
            _ => times.push(last - started),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    poller.join().expect("the poller");
    (times, rss, subscribers)
}

/// status_web: how soon a change is in a browser, and what 1 000 viewers cost.
pub fn web(s: &Settings, out: &mut String) {
    writeln!(out, "## The web board\n").ok();
    let samples = if s.smoke { 10 } else { 300 };
    let viewers = if s.smoke { 50 } else { 1_000 };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ours_publishing(&dir.path().join("web.log"), &[]);
    let (address, gateway) = start_web(&server.endpoint);
    let idle_rss = resident_kib(&gateway.child);
    let Chain {
        replies,
        subs,
        sses,
        doms,
    } = web_chain(&server, &address, samples);
    let dom_row = match doms {
        Ok(times) => latency_cells(times),
        Err(why) => format!("n/a ({why}) | | |"),
    };
    writeln!(
        out,
        "A change on its way to a browser: from sending `bench: bench-dom vN` (one update at a \
         time, 0-10 ms apart; the server on its default `--fsync everysec`, publishing) until \
         each step has it. One `status_web`, one page.\n\n\
         | step | samples | p50 ms | p99 ms | max ms |\n| --- | --- | --- | --- | --- |\n\
         | the update's reply (REQ) | {} |\n\
         | a SUB socket on the server's publisher | {} |\n\
         | a raw reader of `status_web`'s `/events` | {} |\n\
         | the page's DOM in headless Chromium (a MutationObserver) | {dom_row} |\n",
        latency_cells(replies),
        latency_cells(subs),
        latency_cells(sses),
    )
    .ok();
    let publish_port = publish_port(&server);
    let one = web_fanout(
        &server,
        &address,
        &gateway.child,
        1,
        samples / 3,
        publish_port,
    );
    let many = web_fanout(
        &server,
        &address,
        &gateway.child,
        viewers,
        samples / 3,
        publish_port,
    );
    writeln!(
        out,
        "Viewers: raw `/events` readers in the harness, on one thread (poll(2)). From sending \
         an update until the last viewer has it; the gateway's resident memory with them \
         connected (idle, before any viewer: {idle_rss} KiB), and the subscribers on the \
         server's publisher (established connections to its port).\n\n\
         | viewers | samples | p50 ms | p99 ms | max ms | gateway RSS KiB | subscribers |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n\
         | 1 | {} | {} | {} |\n\
         | {viewers} | {} | {} | {} |\n",
        latency_cells(one.0),
        one.1,
        one.2,
        latency_cells(many.0),
        many.1,
        many.2,
    )
    .ok();
}
