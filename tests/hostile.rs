//! The real `status_server` against a hostile peer on loopback: raw ZMTP
//! from 127.0.0.2 that never reads what it asked for, floods of logins, and
//! more connections than the server has descriptors for. Each test says what
//! the attack cost before its defence, bounds what it may cost now, and
//! checks that the attack did its work (a defence that was never tested
//! proves nothing).

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::zmtp::{self, ATTACKER, Flood, HangUp};
use common::{PASSWORD, Server, UsersFile, cpu_time, req_socket, rss_kib};

/// Fills a server with `entries` names of `status_len`-byte statuses; the board's size.
fn fill(server: &Server, entries: usize, status_len: usize) -> usize {
    let context = zmq::Context::new();
    let socket = req_socket(&context, &server.endpoint, None);
    let status = "s".repeat(status_len);
    let mut board = 0;
    for i in 0..entries {
        socket
            .send(format!("n{i:04}: {status}").as_bytes(), 0)
            .expect("send");
        board = socket.recv_bytes(0).expect("the board").len();
    }
    board
}

/// The status of `name` on the board at `endpoint`, with a bounded wait.
fn status_of(endpoint: &str, name: &str) -> Option<String> {
    let reply = common::request_parts_within(endpoint, &[b"_:"], Duration::from_secs(10))?;
    let text = String::from_utf8(reply).ok()?;
    let prefix = format!("- {name}: ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
}

#[test]
fn replies_nobody_reads_do_not_pin_copies_of_the_board() {
    // Before: a 2 MB board took the server from 8 MiB to 856 MiB in one
    // second, each unread reply holding its own copy of the board.
    let server = Server::start(&["--quiet"]);
    let board = fill(&server, 500, 4000);
    assert!(board > 1_900_000, "a 2 MB board: {board}");
    let before = rss_kib(&server.child);
    let mut stream = zmtp::connect_from(ATTACKER, server.port()).expect("connect");
    zmtp::handshake_null(&mut stream, "DEALER").expect("handshake");
    stream
        .set_write_timeout(Some(Duration::from_millis(100)))
        .expect("write timeout");
    // Updates that change the board, each followed by a poll whose reply
    // (the whole board) is never read.
    let started = Instant::now();
    let (mut pending, mut offset, mut pairs, mut peak) = (Vec::new(), 0, 0u64, before);
    let mut last_sample = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if offset == pending.len() {
            pairs += 1;
            pending = zmtp::request(format!("hostile: {pairs}").as_bytes());
            pending.extend(zmtp::request(b"_:"));
            offset = 0;
        }
        match stream.write(&pending[offset..]) {
            Ok(n) => {
                offset += n;
                if offset == pending.len() {
                    // One pair a round: each reply then holds a board of its
                    // own (a batch of pairs would share a few), the worst case.
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("the server dropped the attacker after {pairs} pairs: {e}"),
        }
        if last_sample.elapsed() > Duration::from_millis(100) {
            peak = peak.max(rss_kib(&server.child));
            last_sample = Instant::now();
        }
    }
    peak = peak.max(rss_kib(&server.child));
    // The attack did its work: the server took thousands of updates from a
    // peer that read nothing, and others are still answered.
    let reached: u64 = status_of(&server.endpoint, "hostile")
        .expect("the server answers others during the attack")
        .parse()
        .expect("a number");
    assert!(
        reached >= 1_000,
        "the server took only {reached} of {pairs} pipelined updates"
    );
    let bound_kib = (64 * 1024).max(16 * board as u64 / 1024);
    assert!(
        peak - before < bound_kib,
        "RSS grew from {before} KiB to {peak} KiB ({reached} updates, board {board} B)"
    );
    eprintln!(
        "unread replies: RSS {before} KiB before, {peak} KiB at peak, {reached} updates taken"
    );
    // It comes back once the peer leaves.
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut now = rss_kib(&server.child);
    while now > before + 16 * 1024 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        now = rss_kib(&server.child);
    }
    assert!(
        now <= before + 16 * 1024,
        "RSS stayed at {now} KiB after the attacker left ({before} KiB before)"
    );
}

#[test]
fn a_subscriber_that_never_reads_costs_a_bounded_queue() {
    // Before: 50 000 queued changes per subscriber, 200 MB at 4 KB each.
    let server = Server::start(&["--quiet", "--publish", "tcp://127.0.0.1:*"]);
    let publisher = common::snapshot(&server.endpoint).header.publish[0].clone();
    let port = common::port_of(&publisher);
    let mut stream = zmtp::connect_from(ATTACKER, port).expect("connect");
    zmtp::handshake_null(&mut stream, "SUB").expect("handshake");
    // Subscribe to everything, then never read again.
    stream
        .write_all(&zmtp::frame(b"\x01", false))
        .expect("subscribe");
    let before = rss_kib(&server.child);
    let context = zmq::Context::new();
    let socket = req_socket(&context, &server.endpoint, None);
    let status = "p".repeat(4000);
    let mut peak = before;
    for i in 0..20_000 {
        socket
            .send(format!("n{}: {i} {status}", i % 50).as_bytes(), 0)
            .expect("send");
        socket.recv_bytes(0).expect("the board");
        if i % 500 == 0 {
            peak = peak.max(rss_kib(&server.child));
        }
    }
    peak = peak.max(rss_kib(&server.child));
    // The stalled subscriber got some of it: it was subscribed.
    let mut first = [0u8; 64];
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let got = stream
        .read(&mut first)
        .expect("something was published to it");
    assert!(got > 0);
    assert!(
        peak - before < 64 * 1024,
        "RSS grew from {before} KiB to {peak} KiB with a subscriber that never reads"
    );
    eprintln!("stalled subscriber: RSS {before} KiB before, {peak} KiB at peak");
}

/// A REQ socket logged in as `user`, connected to `endpoint` (which may name
/// a source address: `tcp://127.0.0.2:0;127.0.0.1:PORT`).
fn logged_in(context: &zmq::Context, user: &str, endpoint: &str) -> zmq::Socket {
    let socket = req_socket(context, endpoint, Some((user, PASSWORD)));
    common::set_receive_timeout(&socket, Duration::from_secs(30));
    socket
}

/// Sends a poll and waits for the board: how long it took, or `None`.
fn timed_poll(socket: &zmq::Socket) -> Option<Duration> {
    let started = Instant::now();
    socket.send("_:", 0).ok()?;
    socket.recv_bytes(0).ok()?;
    Some(started.elapsed())
}

#[test]
fn a_flood_of_junk_logins_from_one_address_locks_nobody_out() {
    // Before: 9 500 PLAIN HELLOs in 3 s queued 9 500 argon2 verifications,
    // checked one at a time after their connections were gone; no valid login
    // got an answer for over 150 s.
    let users = UsersFile::new(&["alice", "bob"]);
    let server = Server::start(&["--auth", users.path(), "--quiet"]);
    let port = server.port();
    let context = zmq::Context::new();
    let established = logged_in(&context, "alice", &server.endpoint);
    timed_poll(&established).expect("alice logs in before the flood");

    let flood = Flood::start(port, Duration::from_secs(3), HangUp::AtOnce);
    // A fresh valid login from another address, in the middle of the flood.
    let fresh = logged_in(&context, "bob", &server.endpoint);
    let during = timed_poll(&fresh).expect("bob's login is answered during the flood");
    assert!(
        during < Duration::from_secs(5),
        "bob's login took {during:?}"
    );
    // Polls of a client logged in before the flood are not held up.
    let mut polls = Vec::new();
    while flood.is_on() {
        polls.push(timed_poll(&established).expect("alice's poll during the flood"));
    }
    let sent = flood.finish();
    polls.sort();
    let median = polls[polls.len() / 2];
    assert!(
        median < Duration::from_millis(50),
        "median poll {median:?} during the flood ({} polls)",
        polls.len()
    );
    // From the flooding address itself, once the flood is over.
    let flood_ended = Instant::now();
    let same_address = format!("tcp://{ATTACKER}:0;127.0.0.1:{port}");
    let own = logged_in(&context, "bob", &same_address);
    timed_poll(&own).expect("a valid login from the flooding address");
    let after = flood_ended.elapsed();
    assert!(
        after < Duration::from_secs(15),
        "its login took {after:?} after the flood"
    );
    // The log: a few lines, then a summary that shows the flood reached the handler.
    let summary = server.stderr.find("logins in the last 10 s: ");
    let (status, _, rest) = server.stop_with_output(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    let counted: u64 = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u64>().ok())
        .skip(1) // the window's length
        .take(4)
        .sum();
    assert!(
        counted >= 500,
        "the flood of {sent} logins barely reached the handler: {summary}"
    );
    let one_by_one = rest
        .iter()
        .filter(|l| l.contains("refused the login"))
        .count();
    assert!(
        one_by_one <= 10,
        "{one_by_one} lines, one per refusal: {rest:?}"
    );
    eprintln!(
        "{sent} junk logins; a login from elsewhere in {during:?} during the flood, from the \
         flooding address in {after:?} after it; median poll {median:?}; {summary}"
    );
}

#[test]
fn a_client_at_the_flooding_address_gets_in_by_its_retries() {
    // The flood's address is the client's: its logins are turned away
    // unchecked (ZAP 300, after which libzmq holds the connection silent), and
    // the client's retries on a fresh connection get it in once there is room.
    // A dear hash (64 MiB, 3 passes) keeps the checkers far behind the flood.
    let params = argon2::Params::new(65536, 3, 1, None).expect("params");
    let users = UsersFile::hashed(&["bob"], &common::hash_at_cost(PASSWORD, params));
    let server = Server::start(&["--auth", users.path(), "--quiet"]);
    let flood = Flood::start(server.port(), Duration::from_secs(3), HangUp::Stay);
    let endpoint = format!("tcp://{ATTACKER}:0;127.0.0.1:{}", server.port());
    // Tries long enough for the dear checks queued ahead of it on a busy
    // machine (16 of them, two at a time).
    let output = common::run_with_input(
        common::client(&[
            "bob",
            "--endpoint",
            &endpoint,
            "--timeout",
            "10000",
            "--set",
            "made it",
        ])
        .env("STATUS_BOARD_PASSWORD", PASSWORD),
        "",
        Duration::from_secs(40),
    );
    let (code, stdout, stderr) = (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    let sent = flood.finish();
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("- bob: made it"), "{stdout}");
    let summary = server.stderr.find("logins in the last 10 s: ");
    assert!(
        summary.contains("turned away unverified"),
        "the flood of {sent} never crowded the queue: {summary}"
    );
}

#[test]
fn a_server_out_of_descriptors_neither_spins_nor_shuts_out_other_addresses() {
    // Before: under a limit of 1 024, 1 000 idle handshaken peers made the
    // server spin (13.3 s of CPU in 10 s, 4.9 million failed accepts).
    common::raise_own_open_file_limit(4096);
    let server = common::server_with_open_files(1024, Some(1024));
    server.request_text("alice: here");
    let port = server.port();
    // 1 000 idle peers from one address; those past the server's cap are shut
    // down as soon as they are accepted.
    let mut idle = Vec::new();
    for _ in 0..1_000 {
        let Ok(mut stream) = zmtp::connect_from(ATTACKER, port) else {
            continue;
        };
        if zmtp::handshake_null(&mut stream, "DEALER").is_ok() {
            idle.push(stream);
        }
    }
    assert!(idle.len() >= 900, "only {} peers got in", idle.len());
    let warning = server.stderr.find("warning: turned away");
    assert!(warning.contains("from 127.0.0.2"), "{warning}");
    // Full, with the attacker knocking for more 50 times a second (a
    // listener that cannot accept has them waiting), for 10 s: the server
    // stays calm, and a client from another address is served every time.
    let before = cpu_time(&server.child);
    let started = Instant::now();
    let (mut knocks, mut polls) = (0u32, 0);
    while started.elapsed() < Duration::from_secs(10) {
        if zmtp::connect_from(ATTACKER, port).is_ok() {
            knocks += 1;
        }
        // The attack's pace, not a wait for anything.
        std::thread::sleep(Duration::from_millis(20));
        if knocks % 5 == 0 {
            let reply =
                common::request_parts_within(&server.endpoint, &[b"_:"], Duration::from_secs(10))
                    .expect("a client from 127.0.0.1 is served while the server is full");
            assert_eq!(reply, b"- alice: here\n");
            polls += 1;
        }
    }
    let used = cpu_time(&server.child) - before;
    assert!(
        used < Duration::from_secs(2),
        "{used:?} of CPU in 10 s while full ({knocks} knocks, {polls} polls)"
    );
    // Once the peers leave, their address is served again.
    drop(idle);
    let own = format!("tcp://{ATTACKER}:0;127.0.0.1:{port}");
    let reply = common::request_parts_within(&own, &[b"_:"], Duration::from_secs(20))
        .expect("127.0.0.2 is served again once its peers have gone");
    assert_eq!(reply, b"- alice: here\n");
    eprintln!("full for 10 s: {used:?} of CPU, {knocks} knocks, {polls} polls from elsewhere");
}
