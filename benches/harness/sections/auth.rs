//! Logins: what one costs, and whether logged-in clients go as fast as open ones.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::Settings;
use crate::common;
use crate::load::{REPLY_BOUND, RequestFn, first_reply, load_as, poll_request, update_request};
use crate::stats::{interleaved, median, micros};
use crate::targets::ours::ours;

/// The time until a refused login is reported by the socket monitor. The median of `n`.
fn refusal(endpoint: &str, user: &str, password: &str, n: usize) -> Duration {
    let context = zmq::Context::new();
    let times: Vec<Duration> = (0..n)
        .map(|i| {
            let socket = context.socket(zmq::REQ).expect("REQ");
            socket.set_linger(0).expect("LINGER");
            socket.set_plain_username(Some(user)).expect("user");
            socket.set_plain_password(Some(password)).expect("password");
            let watch = format!("inproc://bench-refusal-{user}-{i}");
            socket
                .monitor(&watch, zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32)
                .expect("monitor");
            let monitor = context.socket(zmq::PAIR).expect("PAIR");
            monitor.connect(&watch).expect("connect the monitor");
            monitor
                .set_rcvtimeo(REPLY_BOUND.as_millis() as i32)
                .expect("RCVTIMEO");
            let started = Instant::now();
            socket.connect(endpoint).expect("connect");
            monitor.recv_multipart(0).expect("the refusal");
            started.elapsed()
        })
        .collect();
    median(times)
}

/// A users file in `dir` with the user `bench` (password [`common::PASSWORD`])
/// and `rest` after the hash (the names it may set).
pub fn users_file(dir: &std::path::Path, rest: &str) -> std::path::PathBuf {
    let users = dir.join("users");
    let hash = status_board::server::auth::hash_password(common::PASSWORD).expect("hash");
    common::write_private(&users, &format!("bench:{hash}{rest}\n"));
    users
}

pub fn auth(s: &Settings, out: &mut String) {
    writeln!(out, "## Logins\n").ok();
    let dir = tempfile::tempdir().expect("temp dir");
    let users = users_file(dir.path(), ":bench-*");
    let open = ours(&[]);
    let authed = ours(&["--auth", users.to_str().expect("UTF-8")]);
    let login = Some(("bench", common::PASSWORD));
    let n = if s.smoke { 3 } else { 30 };
    let (open_first, login_first) = (
        first_reply(&open.endpoint, None, n),
        first_reply(&authed.endpoint, login, n),
    );
    let wrong = refusal(&authed.endpoint, "bench", "wrong", n);
    let unknown = refusal(&authed.endpoint, "nobody", common::PASSWORD, n);
    writeln!(
        out,
        "Connect, handshake and first poll on a fresh socket, median of {n}: open {} µs, \
         PLAIN login {} µs (one argon2id verification, 19 MiB, 2 passes). \
         A refused login, until the client's monitor reports it: wrong password {} µs, \
         unknown user {} µs.\n",
        micros(open_first),
        micros(login_first),
        micros(wrong),
        micros(unknown)
    )
    .ok();
    writeln!(
        out,
        "Requests/s, and latency p50 / p99 / max in µs, of K clients logged in (PLAIN) \
         against K open clients, one server each, interleaved.\n"
    )
    .ok();
    writeln!(
        out,
        "| request | K | open req/s | open µs | logged in req/s | logged in µs | logged in / open |"
    )
    .ok();
    writeln!(out, "|{}", " --- |".repeat(7)).ok();
    for (what, request) in [
        ("poll", poll_request as RequestFn),
        ("update", update_request),
    ] {
        for &clients in &s.clients {
            let samples = interleaved(
                &[
                    &|| load_as(None, &open.endpoint, clients, &request, s),
                    &|| load_as(login, &authed.endpoint, clients, &request, s),
                ],
                s.repeats,
            );
            let (o, a) = (samples[0], samples[1]);
            writeln!(
                out,
                "| {what} | {clients} | {} | {} | {} |",
                o.cells(),
                a.cells(),
                a.ratio(&o, 2)
            )
            .ok();
        }
    }
    writeln!(out).ok();
}
