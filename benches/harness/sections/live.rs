//! The live board: how soon a watcher has a change, and what an unchanged
//! poll costs on the wire.

use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Settings;
use crate::common;
use crate::load::{LIVE_SPREAD, REPLY_BOUND, ask, background_polls, req_socket, update_to_watcher};
use crate::process::{Spawned, wait_for};
use crate::stats::latency_cells;
use crate::targets::ours::{ours_on, ours_publishing, prefilled_state, publish_endpoint};
use crate::targets::python::Python;

/// Wire bytes per request of `request`, after the connection is set up.
fn wire_bytes_per_request(port: u16, request: &[u8], n: u64) -> f64 {
    let proxy = common::CountingProxy::start(port);
    let context = zmq::Context::new();
    let socket = req_socket(&context, &proxy.endpoint);
    ask(&socket, request); // the handshake and a first answer are not counted
    let before = proxy.total();
    for _ in 0..n {
        ask(&socket, request);
    }
    (proxy.total() - before) as f64 / n as f64
}

/// Update-to-watcher latency through our real watcher (`--json`), `samples` times.
fn ours_to_watcher(server: &common::Server, samples: usize) -> Vec<Duration> {
    let watcher = Spawned::start(Command::new(env!("CARGO_BIN_EXE_status_client")).args([
        "_",
        "--endpoint",
        &server.endpoint,
        "--json",
        "--interval",
        "3600",
    ]));
    watcher.lines.next("the watcher's first board");
    // The watcher subscribes, then takes a snapshot; a change published before
    // its subscription reaches the publisher is lost to it until the next
    // heartbeat (every second) shows the gap. Once it shows a change made now,
    // it has heard the publisher: the samples that follow are pushed to it.
    ask(
        &req_socket(&zmq::Context::new(), &server.endpoint),
        b"bench-live: warm",
    );
    wait_for(&watcher.lines, "\"status\":\"warm\"");
    update_to_watcher(&server.endpoint, samples, LIVE_SPREAD, |i| {
        wait_for(&watcher.lines, &format!("\"status\":\"v{i}\""))
    })
}

/// A SUB socket on `publish` that has heard the publisher (a heartbeat comes
/// every second): its subscription has reached it, which drops what it sends
/// before. Every receive bounded.
fn subscribed(context: &zmq::Context, publish: &str) -> zmq::Socket {
    let sub = context.socket(zmq::SUB).expect("SUB");
    sub.set_linger(0).expect("LINGER");
    sub.set_subscribe(b"").expect("subscribe");
    sub.set_rcvtimeo(REPLY_BOUND.as_millis() as i32)
        .expect("RCVTIMEO");
    sub.connect(publish).expect("connect");
    sub.recv_bytes(0)
        .unwrap_or_else(|e| panic!("no heartbeat from {publish} within {REPLY_BOUND:?}: {e}"));
    sub
}

pub fn live(s: &Settings, out: &mut String) {
    writeln!(out, "## Live board\n").ok();
    let samples = if s.smoke { 30 } else { 1_000 };
    let python_samples = if s.smoke { 2 } else { 20 };
    // The default durability: every update written to the state file before
    // it is answered (and published), forced to disk once a second.
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ours_publishing(&dir.path().join("live-everysec.log"), &[]);
    let idle = ours_to_watcher(&server, samples);

    // The same while 16 clients poll as fast as they can.
    let stop = Arc::new(AtomicBool::new(false));
    let load = background_polls(server.endpoint.clone(), 16, Arc::clone(&stop));
    let started = Instant::now();
    let busy = ours_to_watcher(&server, samples);
    stop.store(true, Ordering::Relaxed);
    let background_rate = load.join().expect("the load") as f64 / started.elapsed().as_secs_f64();

    // Under `--fsync always` a change is published once it is durable.
    let durable = ours_publishing(&dir.path().join("live-always.log"), &["--fsync", "always"]);
    let always = ours_to_watcher(&durable, samples);
    drop(durable);

    // The publisher alone: a SUB socket in this process, no watcher program.
    let context = zmq::Context::new();
    let sub = subscribed(&context, &publish_endpoint(&server));
    let raw_times = update_to_watcher(&server.endpoint, samples, LIVE_SPREAD, |i| {
        let wanted = format!(" bench-live: v{i}");
        let deadline = Instant::now() + REPLY_BOUND;
        while !String::from_utf8_lossy(&sub.recv_bytes(0).expect("a change")).ends_with(&wanted) {
            assert!(Instant::now() < deadline, "change v{i} was not published");
        }
    });

    writeln!(
        out,
        "Update-to-watcher latency on loopback: from sending `bench-live: vN` until the \
         watcher has it, one update at a time, 0-10 ms apart (0-2 s for the original, whose \
         watcher polls every 2 s).\n\n\
         | watcher | samples | p50 ms | p99 ms | max ms |\n| --- | --- | --- | --- | --- |\n\
         | ours: `status_client _ --json`, changes pushed (`--publish`), default `--fsync everysec` | {} |\n\
         | the same while 16 clients poll flat out ({background_rate:.0} polls/s) | {} |\n\
         | the same, `--fsync always` (published once durable) | {} |\n\
         | (the publisher alone: a SUB socket in the harness, `--fsync everysec`) | {} |",
        latency_cells(idle),
        latency_cells(busy),
        latency_cells(always),
        latency_cells(raw_times)
    )
    .ok();
    match Python::start() {
        Some(python) => {
            // The original's watcher polls every 2 s and prints the whole board.
            let watcher = Spawned::start(
                Command::new("python3")
                    .arg("-u")
                    .arg(&python.reference.client)
                    .args(["_", &python.server.port.to_string(), "127.0.0.1"]),
            );
            watcher.lines.next("the original watcher's first line");
            // Spread over a whole poll period: an update lands anywhere in it.
            let period = Duration::from_secs(2);
            let times = update_to_watcher(&python.server.endpoint, python_samples, period, |i| {
                wait_for(&watcher.lines, &format!("- bench-live: v{i}"))
            });
            writeln!(
                out,
                "| the original: `status_client.py _` against `status_server.py` (polls every 2 s) | {} |\n",
                latency_cells(times)
            )
            .ok();
        }
        None => {
            writeln!(out, "| the original | n/a (no python3 with pyzmq) |\n").ok();
        }
    }
    unchanged_polls(s, dir.path(), out);
}

/// Bytes per unchanged poll at 10 000 entries, counted on the wire.
fn unchanged_polls(s: &Settings, dir: &std::path::Path, out: &mut String) {
    let state = prefilled_state(dir, 10_000);
    let big = ours_on(&state, &[]);
    let snapshot = common::snapshot(&big.endpoint);
    let since = status_board::protocol::format_since(&snapshot.header.epoch, snapshot.header.seq);
    let n = if s.smoke { 20 } else { 200 };
    let since_bytes = wire_bytes_per_request(big.port(), since.as_bytes(), n);
    let full_bytes = wire_bytes_per_request(big.port(), b"_:", n.min(50));
    let reply = big.request(since.as_bytes());
    // Our real watcher: 41 boards cost the first snapshot plus 40 unchanged polls.
    let per_watcher_poll = (common::polling_watcher_bytes(big.port(), 41) as f64
        - common::polling_watcher_bytes(big.port(), 1) as f64)
        / 40.0;
    writeln!(
        out,
        "Bytes per poll of a 10 000-entry board that has not changed, counted by a TCP proxy \
         (both directions, ZeroMQ framing included; TCP/IP headers not included).\n\n\
         | poll | request | reply | wire bytes per poll |\n| --- | --- | --- | --- |\n\
         | `{since}` (ours) | {} B | `{}` ({} B) | {since_bytes:.0} |\n\
         | our watcher polling (no `--publish`), 40 polls after its first snapshot | | | {per_watcher_poll:.0} |\n\
         | `_:` (the original's poll; the Python server's reply is the same bytes) | 2 B | the board ({} B) | {full_bytes:.0} |\n",
        since.len(),
        String::from_utf8_lossy(&reply),
        reply.len(),
        big.request(b"_:").len(),
    )
    .ok();
}
