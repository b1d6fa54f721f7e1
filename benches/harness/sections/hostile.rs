//! A hostile peer: what its attacks cost the server (tests/hostile.rs checks
//! the bounds; here are the figures).

use std::fmt::Write as _;
use std::thread;
use std::time::{Duration, Instant};

use crate::Settings;
use crate::common;
use crate::load::{REPLY_BOUND, ask, first_reply, req_socket};
use crate::process::resident_kib;
use crate::sections::auth::users_file;
use crate::stats::{micros, percentile};
use crate::targets::ours::ours;

/// What a peer that pipelines updates and polls and never reads costs:
/// the server's RSS before, at its peak, and once the peer has left.
fn unread_replies(board_entries: usize, attack: Duration) -> (usize, u64, u64, u64, u64) {
    let server = ours(&[]);
    let context = zmq::Context::new();
    let socket = req_socket(&context, &server.endpoint);
    let status = "s".repeat(4000);
    let mut board = 0;
    for i in 0..board_entries {
        board = ask(&socket, format!("n{i:04}: {status}").as_bytes()).len();
    }
    let before = resident_kib(&server.child);
    let mut stream = common::zmtp::connect_from("127.0.0.2", server.port()).expect("connect");
    common::zmtp::handshake_null(&mut stream, "DEALER").expect("handshake");
    stream
        .set_write_timeout(Some(Duration::from_millis(100)))
        .expect("write timeout");
    let started = Instant::now();
    let (mut pending, mut offset, mut pairs, mut peak) = (Vec::new(), 0, 0u64, before);
    while started.elapsed() < attack {
        if offset == pending.len() {
            pairs += 1;
            pending = common::zmtp::request(format!("hostile: {pairs}").as_bytes());
            pending.extend(common::zmtp::request(b"_:"));
            offset = 0;
        }
        if let Ok(n) = std::io::Write::write(&mut stream, &pending[offset..]) {
            offset += n;
            if offset == pending.len() {
                // One pair a round: each reply could hold a board of its own.
                thread::sleep(Duration::from_micros(200));
            }
        }
        peak = peak.max(resident_kib(&server.child));
    }
    let reply = common::request(&server.endpoint, b"_:");
    let taken = String::from_utf8_lossy(&reply)
        .lines()
        .find_map(|l| l.strip_prefix("- hostile: ").and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = resident_kib(&server.child);
    while after > before + 4 * 1024 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        after = resident_kib(&server.child);
    }
    (board, before, peak, after, taken)
}

/// Fresh logins and established polls, timed while nobody floods and while
/// one address floods junk logins: (login p50, login max, poll p50, poll p99).
fn logins_under(
    flood: bool,
    logins: usize,
    attack: Duration,
) -> (Duration, Duration, Duration, Duration, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let users = users_file(dir.path(), "");
    let server = ours(&["--auth", users.to_str().expect("UTF-8")]);
    let context = zmq::Context::new();
    let established = context.socket(zmq::REQ).expect("REQ");
    established.set_plain_username(Some("bench")).expect("user");
    established
        .set_plain_password(Some(common::PASSWORD))
        .expect("password");
    established.set_linger(0).expect("LINGER");
    established
        .set_rcvtimeo(REPLY_BOUND.as_millis() as i32)
        .expect("RCVTIMEO");
    established.connect(&server.endpoint).expect("connect");
    let poll = |socket: &zmq::Socket| {
        let started = Instant::now();
        ask(socket, b"_:");
        started.elapsed()
    };
    poll(&established);
    let flooding = flood
        .then(|| common::zmtp::Flood::start(server.port(), attack, common::zmtp::HangUp::AtOnce));
    let login = Some(("bench", common::PASSWORD));
    let mut login_times: Vec<Duration> = (0..logins)
        .map(|_| first_reply(&server.endpoint, login, 1))
        .collect();
    let mut polls = Vec::new();
    let started = Instant::now();
    while flooding
        .as_ref()
        .map_or(started.elapsed() < attack, common::zmtp::Flood::is_on)
    {
        polls.push(poll(&established));
    }
    let sent = flooding.map_or(0, common::zmtp::Flood::finish);
    login_times.sort_unstable();
    polls.sort_unstable();
    (
        login_times[login_times.len() / 2],
        login_times[login_times.len() - 1],
        percentile(&polls, 0.5),
        percentile(&polls, 0.99),
        sent,
    )
}

/// A hostile peer: what its attacks cost the server (tests/hostile.rs checks
/// the bounds; here are the figures).
pub fn hostile(s: &Settings, out: &mut String) {
    writeln!(out, "## A hostile peer\n").ok();
    let attack = if s.smoke {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(15)
    };
    let (board, before, peak, after, taken) = unread_replies(500, attack);
    writeln!(
        out,
        "A peer on 127.0.0.2 pipelines `hostile: N` / `_:` pairs for {} s and never reads \
         its socket; the board is 500 entries of 4 KB statuses ({board} bytes).\n\n\
         | RSS before | RSS at the peak | growth | growth / board | after the peer left | updates taken |\n\
         | --- | --- | --- | --- | --- | --- |\n\
         | {before} KiB | {peak} KiB | {} KiB | {:.1} | {after} KiB | {taken} |\n",
        attack.as_secs(),
        peak.saturating_sub(before),
        (peak.saturating_sub(before) * 1024) as f64 / board.max(1) as f64,
    )
    .ok();
    let flood = Duration::from_secs(3);
    let logins = if s.smoke { 2 } else { 9 };
    writeln!(
        out,
        "Fresh PLAIN logins from 127.0.0.1 (connect to first reply, {logins} in a row) and the \
         polls of a client logged in before, with nobody flooding and while 127.0.0.2 floods \
         junk logins for {} s (connections that send a HELLO and hang up at once).\n\n\
         | | junk logins sent | login p50 | login max | poll p50 | poll p99 |\n\
         | --- | --- | --- | --- | --- | --- |",
        flood.as_secs()
    )
    .ok();
    for (what, flooding) in [("quiet", false), ("flood", true)] {
        let (login_p50, login_max, poll_p50, poll_p99, sent) =
            logins_under(flooding, logins, flood);
        writeln!(
            out,
            "| {what} | {sent} | {} µs | {} µs | {} µs | {} µs |",
            micros(login_p50),
            micros(login_max),
            micros(poll_p50),
            micros(poll_p99)
        )
        .ok();
    }
    writeln!(out).ok();
}
