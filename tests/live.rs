//! The live board: pushed changes, unchanged polls, ages, expiry and clear,
//! with the real binaries (and the Python original for the fallbacks).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{EXIT_TIMEOUT, Server, Watcher, client, free_port, run_client, run_with_input};
use serde_json::{Value, json};
use status_board::protocol::{self, Event, ExtendedReply, Removal, Snapshot};

/// Our server, publishing on a free loopback port.
fn publishing(extra: &[&str]) -> Server {
    let mut args = vec!["--publish", "tcp://127.0.0.1:*", "--quiet"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Runs the client to completion: exit code, stdout, stderr.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    run_client(args, "")
}

/// `[{name, status}]` of a JSON board, without the times.
fn plain(doc: &Value) -> Value {
    let entries = doc["entries"].as_array().expect("entries");
    entries
        .iter()
        .map(|e| json!({"name": e["name"], "status": e["status"]}))
        .collect()
}

/// Stops `server` cleanly and starts a new one on the same state file.
fn restarted(server: Server, state: &str) -> Server {
    let (status, _) = server.stop(libc::SIGTERM);
    assert!(status.success(), "{status}");
    Server::start(&["--state", state, "--quiet"])
}

fn snapshot(server: &Server) -> Snapshot {
    common::snapshot(&server.endpoint)
}

/// A SUB socket on the server's publisher, subscribed to everything.
fn subscriber(server: &Server) -> (zmq::Context, zmq::Socket) {
    let publish = snapshot(server).header.publish;
    let context = zmq::Context::new();
    let socket = context.socket(zmq::SUB).expect("SUB");
    socket.set_linger(0).expect("LINGER");
    socket.set_subscribe(b"").expect("subscribe");
    socket.connect(&publish[0]).expect("connect");
    // The subscription travels to the publisher on its own; a heartbeat says it has.
    socket.set_rcvtimeo(3000).expect("RCVTIMEO");
    socket.recv_bytes(0).expect("a heartbeat within 3 s");
    (context, socket)
}

#[test]
fn a_watcher_sees_an_update_pushed_without_polling() {
    let server = publishing(&[]);
    // An hour between polls: anything that arrives sooner was pushed.
    let watcher = Watcher::start(&server.endpoint, &["--interval", "3600"]);
    let first = watcher.next("the first board");
    assert_eq!(first, json!({"seq": 0, "entries": []}));
    // Beside the watcher: the change itself is on the publisher.
    let (_context, sub) = subscriber(&server);

    let started = Instant::now();
    let (code, _, _) = run(&[
        "alice",
        "--endpoint",
        &server.endpoint,
        "--set",
        "in a meeting",
    ]);
    assert_eq!(code, Some(0));
    let pushed = watcher.next("the pushed board");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(pushed["seq"], 1);
    assert_eq!(
        plain(&pushed),
        json!([{"name": "alice", "status": "in a meeting"}])
    );
    let age = pushed["entries"][0]["age_s"].as_u64().expect("age_s");
    assert!(age < 5, "{pushed}");
    // The first change after the heartbeats: alice's, numbered 1.
    let published = loop {
        let frame = sub.recv_bytes(0).expect("the change, published");
        if !frame.starts_with(b"hb ") {
            break frame;
        }
    };
    let notice = protocol::parse_notice(&published).expect("a published change");
    let set = Event::Set {
        name: "alice",
        status: ": in a meeting",
    };
    assert_eq!((notice.seq, notice.event), (1, set));
    watcher.stop();
}

#[test]
fn no_gap_or_duplicate_across_10_000_rapid_updates() {
    const UPDATES: u64 = 10_000;
    const NAMES: u64 = 10;
    let server = publishing(&[]);
    let watcher = Watcher::start(&server.endpoint, &["--interval", "3600"]);
    watcher.next("the first board");
    // An hour between polls: once a change shows up, the subscription is live,
    // and the run below is all pushed.
    server.request_text("w0: ready");
    let ready = watcher.next("the first pushed change");
    assert_eq!(plain(&ready), json!([{"name": "w0", "status": "ready"}]));
    let base = ready["seq"].as_u64().expect("seq");

    let endpoint = server.endpoint.clone();
    let writer = std::thread::spawn(move || {
        let context = zmq::Context::new();
        let socket = context.socket(zmq::REQ).expect("REQ");
        socket.set_linger(0).expect("LINGER");
        socket.set_rcvtimeo(10_000).expect("RCVTIMEO");
        socket.connect(&endpoint).expect("connect");
        for i in 0..UPDATES {
            socket
                .send(format!("w{}: {i}", i % NAMES).as_bytes(), 0)
                .expect("send");
            socket.recv_bytes(0).expect("a reply");
        }
    });

    // One board per change, numbered one after the other, each holding exactly
    // that change: nothing skipped, nothing twice, nothing out of order.
    let mut last = Value::Null;
    for k in 1..=UPDATES {
        let doc = watcher.next("the next change");
        assert_eq!(doc["seq"].as_u64(), Some(base + k), "{doc}");
        let i = k - 1;
        let name = format!("w{}", i % NAMES);
        let entry = doc["entries"]
            .as_array()
            .and_then(|entries| entries.iter().find(|e| e["name"] == name.as_str()))
            .unwrap_or_else(|| panic!("{name} missing from {doc}"));
        assert_eq!(entry["status"], i.to_string(), "{doc}");
        last = doc;
    }
    writer.join().expect("the writer finished");
    let snapshot = snapshot(&server);
    assert_eq!(snapshot.header.seq, base + UPDATES);
    let expected: Value = snapshot
        .entries
        .iter()
        .map(|e| json!({"name": e.name, "status": e.status.trim_start_matches(": ")}))
        .collect();
    assert_eq!(plain(&last), expected);
    watcher.stop();
}

#[test]
fn a_publisher_restart_is_survived_with_a_fresh_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("board.log");
    let (port, publish) = (free_port(), free_port());
    let publish = format!("tcp://127.0.0.1:{publish}");
    let args = [
        &port.to_string(),
        "--state",
        state.to_str().expect("UTF-8 path"),
        "--publish",
        &publish,
        "--quiet",
    ];
    let first = Server::start_raw(&args);
    first.request_text("a: before");
    let watcher = Watcher::start(
        &first.endpoint,
        &["--interval", "3600", "--timeout", "300", "--retries", "2"],
    );
    let doc = watcher.next("the first board");
    assert_eq!(plain(&doc), json!([{"name": "a", "status": "before"}]));

    let (status, _) = first.stop(libc::SIGTERM);
    assert!(status.success());
    let second = Server::start_raw(&args);
    second.request_text("a: after");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the watcher never saw 'after'");
        let doc = watcher.next("a board from the restarted server");
        if plain(&doc) == json!([{"name": "a", "status": "after"}]) {
            // Numbered by the new run: the watcher took its snapshot.
            assert_eq!(doc["seq"].as_u64(), Some(snapshot(&second).header.seq));
            break;
        }
    }
    // Still live: the next change is pushed from the new run.
    second.request_text("b: pushed");
    let doc = watcher.next("a change from the new publisher");
    assert_eq!(
        plain(&doc),
        json!([{"name": "a", "status": "after"}, {"name": "b", "status": "pushed"}])
    );
    watcher.stop();
}

#[test]
fn expiry_removes_publishes_and_persists() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("board.log");
    let state = state.to_str().expect("UTF-8 path");
    let server = publishing(&["--state", state, "--ttl", "1s"]);
    let (_context, sub) = subscriber(&server);
    server.request_text("old: going");
    // `fresh` is refreshed well within the TTL the whole time, until `old`'s
    // removal is published. The wait for a published message paces the refreshes.
    sub.set_rcvtimeo(200).expect("RCVTIMEO");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut removals = Vec::new();
    while removals.is_empty() {
        assert!(Instant::now() < deadline, "old never expired");
        server.request_text("fresh: here");
        while let Ok(frame) = sub.recv_bytes(0) {
            let notice = protocol::parse_notice(&frame).expect("a published change");
            if let Event::Removed { name, why } = notice.event {
                removals.push((name.to_owned(), why));
            }
        }
    }
    assert_eq!(removals, [("old".to_owned(), Removal::Expired)]);
    assert_eq!(server.request_text("_:"), "- fresh: here\n");

    // The removal is in the state file: gone after a restart too.
    let again = restarted(server, state);
    assert_eq!(again.request_text("_:"), "- fresh: here\n");
}

#[test]
fn clear_removes_ones_own_entry_durably() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("board.log");
    let state = state.to_str().expect("UTF-8 path");
    let server = Server::start(&["--state", state, "--quiet"]);
    server.request_text("alice: here");
    server.request_text("bob: x");

    let (code, stdout, stderr) = run(&["alice", "--endpoint", &server.endpoint, "--clear"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "- bob: x\n");
    assert_eq!(server.request_text("_:"), "- bob: x\n");
    // Clearing what is not there is not an error, as with rm -f.
    let (code, _, _) = run(&["alice", "--endpoint", &server.endpoint, "--clear", "-q"]);
    assert_eq!(code, Some(0));
    let (code, _, stderr) = run(&["_", "--endpoint", &server.endpoint, "--clear"]);
    assert_eq!(code, Some(2), "{stderr}");

    let again = restarted(server, state);
    assert_eq!(again.request_text("_:"), "- bob: x\n");
}

#[test]
fn an_unchanged_poll_is_a_few_bytes_even_at_10_000_entries() {
    let server = Server::start(&["--quiet"]);
    let context = zmq::Context::new();
    let socket = context.socket(zmq::REQ).expect("REQ");
    socket.set_linger(0).expect("LINGER");
    socket.set_rcvtimeo(10_000).expect("RCVTIMEO");
    socket.connect(&server.endpoint).expect("connect");
    let ask = |request: &str| {
        socket.send(request, 0).expect("send");
        socket.recv_bytes(0).expect("reply")
    };
    for i in 0..10_000 {
        ask(&format!("user{i:05}: status number {i}"));
    }
    let full = ask("_:");
    assert!(full.len() > 300_000, "{} bytes", full.len());
    let snapshot = match protocol::parse_extended_reply(&ask("_:@board")) {
        Ok(ExtendedReply::Snapshot(snapshot)) => snapshot,
        other => panic!("not a snapshot: {other:?}"),
    };
    assert_eq!(snapshot.entries.len(), 10_000);
    let since = protocol::format_since(&snapshot.header.epoch, snapshot.header.seq);
    let reply = ask(&since);
    assert_eq!(
        reply,
        format!("unchanged {}", snapshot.header.seq).as_bytes()
    );
    assert!(since.len() + reply.len() < 64);

    // Once something changes, the same request brings the whole new snapshot.
    ask("user00007: moved on");
    match protocol::parse_extended_reply(&ask(&since)) {
        Ok(ExtendedReply::Snapshot(fresh)) => {
            assert_eq!(fresh.header.seq, snapshot.header.seq + 1);
            assert_eq!(fresh.entries[7].status, ": moved on");
        }
        other => panic!("not a snapshot: {other:?}"),
    }
    // The original's own poll still gets the plain board.
    assert!(ask("_:").starts_with(b"- user00000: status number 0\n"));
}

#[test]
fn a_polling_watcher_shows_a_board_per_interval() {
    // No publisher: the watcher polls with `_:@since`, and still prints a board
    // every interval, as the original does.
    let server = Server::start(&["--quiet"]);
    server.request_text("a: 1");
    let (code, stdout, stderr) = run(&[
        "_",
        "--endpoint",
        &server.endpoint,
        "--json",
        "--interval",
        "0.05",
        "--count",
        "3",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let docs: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(docs.len(), 3);
    for doc in &docs {
        assert_eq!(plain(doc), json!([{"name": "a", "status": "1"}]));
        assert_eq!(doc["seq"], 1);
    }
}

#[test]
fn a_polling_watcher_moves_a_few_bytes_per_unchanged_poll() {
    // 1 000 entries: a board or a snapshot per poll would be ~38 KB.
    let server = Server::start(&["--quiet"]);
    for i in 0..1_000 {
        server.request_text(&format!("user{i:04}: status number {i}"));
    }
    // Counted on the wire, between the real watcher and the server: 21
    // boards are its first snapshot and 20 polls, 1 board the snapshot alone.
    let bytes = |count| common::polling_watcher_bytes(server.port(), count);
    let per_poll = (bytes(21) as f64 - bytes(1) as f64) / 20.0;
    assert!(per_poll < 64.0, "{per_poll} bytes per unchanged poll");
}

#[test]
fn ages_are_kept_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("board.log");
    // A state file whose one status was set an hour ago: no waiting for an age.
    let hour_ago = common::now_ms() - 3_600_000;
    let mut data = status_board::storage::MAGIC.to_vec();
    status_board::storage::encode_set(&mut data, "a", ": 1", hour_ago).expect("a record");
    std::fs::write(&state, data).expect("write the state file");
    let state = state.to_str().expect("UTF-8 path");

    let server = Server::start(&["--state", state, "--quiet"]);
    assert_eq!(snapshot(&server).entries[0].set_at_ms, Some(hour_ago));
    server.request_text("b: 2");
    let again = restarted(server, state);
    let entries = snapshot(&again).entries;
    assert_eq!(
        entries[0].set_at_ms,
        Some(hour_ago),
        "the age survives a restart"
    );
    assert!(entries[1].set_at_ms > Some(hour_ago));
    let (code, stdout, _) = run(&["_", "--endpoint", &again.endpoint, "--json", "--count", "1"]);
    assert_eq!(code, Some(0));
    let doc: Value = serde_json::from_str(stdout.trim()).expect("JSON");
    let age = doc["entries"][0]["age_s"].as_u64().expect("age_s");
    assert!((3600..3660).contains(&age), "{doc}");
    let age = doc["entries"][1]["age_s"].as_u64().expect("age_s");
    assert!(age < 60, "{doc}");
}

#[test]
fn a_bad_ttl_or_publish_endpoint_is_refused_at_start() {
    for (args, wanted) in [
        (vec!["--ttl", "soon"], "--ttl"),
        (vec!["--ttl", "0s"], "at least 1s"),
        (vec!["--publish", "nonsense"], "cannot bind nonsense"),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_status_server"));
        command.args(["--in-memory", "0"]).args(&args);
        let output = run_with_input(&mut command, "", EXIT_TIMEOUT);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
    }
}

/// The watcher on a pseudo-terminal, as a person runs it.
fn on_a_terminal(server: &Server, no_color: bool) -> rexpect::session::PtySession {
    let mut command = client(&["_", "--endpoint", &server.endpoint]);
    if no_color {
        command.env("NO_COLOR", "1");
    } else {
        command.env_remove("NO_COLOR");
    }
    common::on_a_terminal(command, "xterm")
}

#[test]
fn a_terminal_watcher_redraws_in_place_marks_changes_and_respects_no_color() {
    for no_color in [false, true] {
        let server = publishing(&[]);
        server.request_text("alice: in a meeting");
        let mut session = on_a_terminal(&server, no_color);
        let mut seen = session.exp_string("live").expect("the title says live");
        seen += &session.exp_string("just now").expect("an age");
        server.request_text("bob: lunch");
        seen += &session.exp_string("* bob").expect("bob, marked as changed");
        seen += &session.exp_string("lunch").expect("bob's status");
        // Redrawn from the top each time, never scrolled.
        assert!(seen.matches("\x1b[H").count() >= 2, "{seen:?}");
        assert!(!seen.contains("-----------------"), "{seen:?}");
        let colored = seen.contains("\x1b[1;32m");
        assert_eq!(colored, !no_color, "NO_COLOR={no_color}: {seen:?}");
        session.send_control('c').expect("Ctrl-C");
        session.exp_eof().expect("exits");
        match session.process().wait().expect("status") {
            rexpect::process::WaitStatus::Exited(_, code) => assert_eq!(code, 0),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_terminal_watcher_says_stale_while_the_server_is_away_and_live_once_it_is_back() {
    let (port, publish) = (free_port().to_string(), free_port());
    let publish = format!("tcp://127.0.0.1:{publish}");
    let args = [
        port.as_str(),
        "--in-memory",
        "--publish",
        &publish,
        "--quiet",
    ];
    let first = Server::start_raw(&args);
    first.request_text("alice: here");
    let mut command = client(&["_", &port, "--timeout", "300"]);
    command.env("NO_COLOR", "1");
    let mut session = common::on_a_terminal(command, "xterm");
    session.exp_string("live").expect("the title says live");
    // A change pushed and shown: the watcher has heard its publisher.
    first.request_text("bob: pushed");
    session.exp_string("pushed").expect("the pushed change");
    drop(first);
    session
        .exp_string("stale: no contact for")
        .expect("the title says stale within the publisher's silence and a try");
    let seen = session
        .exp_string("pushed")
        .expect("the last board is kept");
    assert!(!seen.contains("live"), "{seen:?}");
    let _second = Server::start_raw(&args);
    session
        .exp_string("live")
        .expect("live again once the server is back");
    session.send_control('c').expect("Ctrl-C");
    session.exp_eof().expect("exits");
}

#[test]
fn a_terminal_watcher_started_against_a_dead_server_says_no_contact_yet_until_it_has() {
    let port = free_port().to_string();
    let mut command = client(&["_", &port, "--timeout", "300"]);
    command.env("NO_COLOR", "1");
    let mut session = common::on_a_terminal(command, "xterm");
    let screen = next_screen_with(&mut session, "no contact yet (trying for");
    assert!(
        screen.contains("(no contact yet: the board is not known)"),
        "not an empty board: {screen}"
    );
    assert!(
        !screen.contains("board is empty") && !screen.contains("stale"),
        "{screen}"
    );
    let _server = Server::start_raw(&[&port, "--in-memory", "--quiet"]);
    let screen = next_screen_with(&mut session, "(the board is empty)");
    assert!(!screen.contains("no contact"), "{screen}");
    stop(session);
}

#[test]
fn scrolled_and_json_watchers_print_no_board_before_the_first_contact_and_say_so() {
    let dead = format!("tcp://127.0.0.1:{}", free_port());
    for json in [true, false] {
        let mut args = vec!["_", "--endpoint", &dead, "--timeout", "300"];
        if json {
            args.push("--json");
        }
        let (mut child, out, err) = common::spawn_piped(&mut client(&args));
        let said = err.find("no contact yet");
        assert!(
            said.contains(&format!("no contact yet with {dead}: no board is shown")),
            "{said}"
        );
        common::send_signal(&child, libc::SIGINT);
        let status = common::wait_timeout(&mut child, common::EXIT_TIMEOUT).expect("exits");
        assert_eq!(status.code(), Some(0));
        let printed = out.rest();
        let greeting = usize::from(!json);
        assert_eq!(
            printed.len(),
            greeting,
            "no board, json={json}: {printed:?}"
        );
    }
}

#[test]
fn a_board_taller_and_wider_than_the_terminal_fits_it_without_scrolling() {
    let server = publishing(&[]);
    for i in 0..18 {
        server.request_text(&format!("user{i:02}: status {i}"));
    }
    server.request_text(&format!("wide: {}", "w".repeat(120)));
    let mut command = client(&["_", "--endpoint", &server.endpoint]);
    command
        .env("NO_COLOR", "1")
        .env("LINES", "12")
        .env("COLUMNS", "80");
    let mut session = common::on_a_terminal(command, "xterm");
    let screen = next_screen_with(&mut session, "and 11 more");
    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        lines.len() <= 12,
        "{} lines on a 12-line terminal: {screen}",
        lines.len()
    );
    for line in &lines {
        assert!(line.chars().count() < 80, "wider than 80 cells: {line:?}");
    }
    // The youngest first: `wide` was set last.
    assert!(screen.contains("wwww"), "{screen}");
    assert!(
        !screen.contains(&"w".repeat(100)),
        "the wide status is cut: {screen}"
    );
    let names = (0..18)
        .filter(|i| screen.contains(&format!("user{i:02}")))
        .count();
    assert_eq!(names, 7, "only what fits: {screen}");
    session.send_control('c').expect("Ctrl-C");
    session.exp_eof().expect("exits");
}

#[test]
fn a_resized_terminal_is_redrawn_to_fit() {
    use std::os::fd::AsRawFd;
    let server = publishing(&[]);
    for i in 0..18 {
        server.request_text(&format!("user{i:02}: status {i}"));
    }
    let mut command = client(&["_", "--endpoint", &server.endpoint]);
    command
        .env("NO_COLOR", "1")
        .env_remove("LINES")
        .env_remove("COLUMNS");
    let mut session = common::on_a_terminal(command, "xterm");
    let set_size = |session: &rexpect::session::PtySession, rows: u16, cols: u16| {
        let master = session.process().get_file_handle().expect("the pty");
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads the winsize it is given; the kernel then
        // sends SIGWINCH to the program on the terminal.
        let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(rc, 0, "TIOCSWINSZ");
    };
    set_size(&session, 40, 80);
    session.exp_string("user17").expect("40 rows: every name");
    // Too narrow for two columns.
    set_size(&session, 12, 50);
    session
        .exp_string("and 10 more")
        .expect("12 rows: as many as fit, and the count of the rest");
    session.send_control('c').expect("Ctrl-C");
    session.exp_eof().expect("exits");
}

/// Ctrl-C, as a person stops the watcher, and its end.
fn stop(mut session: rexpect::session::PtySession) {
    session.send_control('c').expect("Ctrl-C");
    session.exp_eof().expect("exits");
}

/// The pty's text as the terminal shows it: read as Latin-1 (one char a
/// byte), so decoded again as UTF-8, without the escape sequences.
fn shown(raw: &str) -> String {
    let bytes: Vec<u8> = raw
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    let text = String::from_utf8_lossy(&bytes);
    let mut plain = String::new();
    let mut rest = text.as_ref();
    while let Some(at) = rest.find('\u{1b}') {
        plain.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        // CSI: ESC [ parameters final-byte.
        let end = after
            .strip_prefix('[')
            .and_then(|r| r.find(|c: char| ('@'..='~').contains(&c)).map(|e| e + 2))
            .unwrap_or(0);
        rest = &after[end..];
    }
    plain.push_str(rest);
    plain.replace('\r', "")
}

/// The next whole screen the watcher draws that contains `wanted`, as
/// shown (each screen starts at the top, `ESC [H`, and ends clearing the
/// rest, `ESC [J`). Screens come at least every second: the ages move.
fn next_screen_with(session: &mut rexpect::session::PtySession, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "no screen with {wanted:?} in 30 s"
        );
        let drawn = session.exp_string("\u{1b}[J").expect("a screen");
        let screen = shown(drawn.rsplit("\u{1b}[H").next().unwrap_or_default());
        if screen.contains(wanted) {
            return screen;
        }
    }
}

/// The watcher on a pty of `columns` × `lines`, without colours.
fn on_a_terminal_of(server: &Server, columns: u16, lines: u16) -> rexpect::session::PtySession {
    let mut command = client(&["_", "--endpoint", &server.endpoint]);
    command
        .env("NO_COLOR", "1")
        .env("LINES", lines.to_string())
        .env("COLUMNS", columns.to_string());
    common::on_a_terminal(command, "xterm")
}

#[test]
fn a_wide_terminal_shows_a_long_status_whole() {
    let server = publishing(&[]);
    let long = "back at desk, reviewing PR #1234 for the storage layer rewrite, then lunch at noon";
    server.request_text("bob: here");
    server.request_text(&format!("alice: {long}"));
    let mut session = on_a_terminal_of(&server, 220, 24);
    let screen = next_screen_with(&mut session, "alice");
    let line = screen
        .lines()
        .find(|l| l.contains("alice"))
        .expect("alice's line");
    assert!(line.contains(long), "cut on 220 columns: {line:?}");
    assert!(screen.lines().all(|l| l.chars().count() < 220), "{screen}");
    // Ages line up after the longest status.
    let ages: Vec<usize> = screen
        .lines()
        .filter_map(|l| l.find("just now").map(|at| l[..at].chars().count()))
        .collect();
    assert_eq!(ages.len(), 2, "{screen}");
    assert_eq!(ages[0], ages[1], "{screen}");
    stop(session);
}

#[test]
fn a_wide_terminal_shows_more_names_than_lines_in_columns() {
    let server = publishing(&[]);
    for i in 0..60 {
        server.request_text(&format!("user{i:02}: working on item {i}"));
    }
    let mut session = on_a_terminal_of(&server, 220, 24);
    let screen = next_screen_with(&mut session, "60 names");
    assert!(!screen.contains("more"), "every name fits: {screen}");
    for i in 0..60 {
        assert!(
            screen.contains(&format!("user{i:02}  working on item {i} ")),
            "user{i:02}: {screen}"
        );
    }
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines.len() <= 24, "{screen}");
    assert!(lines.iter().all(|l| l.chars().count() < 220), "{screen}");
    // Columns: the first name line holds three names.
    assert_eq!(lines[2].matches("user").count(), 3, "{screen}");
    stop(session);
}

#[test]
fn a_change_to_a_name_that_did_not_fit_brings_it_on_screen_and_it_stays() {
    let server = publishing(&[]);
    for i in 0..30 {
        server.request_text(&format!("user{i:02}: status {i}"));
    }
    let mut session = on_a_terminal_of(&server, 80, 12);
    let before = next_screen_with(&mut session, "more");
    let more = |screen: &str| {
        screen
            .lines()
            .find_map(|l| l.split("… and ").nth(1).map(str::to_owned))
            .unwrap_or_else(|| panic!("no count of the rest: {screen}"))
    };
    let hidden = (0..30)
        .map(|i| format!("user{i:02}"))
        .find(|name| !before.contains(name.as_str()))
        .expect("a name that does not fit");
    server.request_text(&format!("{hidden}: back at my desk"));
    let after = next_screen_with(&mut session, "back at my desk");
    assert!(
        after.contains(&format!("* {hidden}  back at my desk")),
        "marked as changed: {after}"
    );
    assert_eq!(more(&after), more(&before), "as many rows: {after}");
    // The mark goes after 10 s; the row stays (a minute).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "still marked after 30 s");
        let screen = next_screen_with(&mut session, "status board");
        assert!(
            screen.contains(&format!("{hidden}  back at my desk")),
            "{screen}"
        );
        if !screen.contains(&format!("* {hidden}")) {
            break;
        }
    }
    stop(session);
}

#[test]
fn an_expired_name_is_shown_as_expired_where_it_was_pushed_or_polled() {
    for publish in [true, false] {
        let server = match publish {
            true => publishing(&["--ttl", "1s"]),
            false => Server::start(&["--ttl", "1s", "--quiet"]),
        };
        let mut command = client(&["_", "--endpoint", &server.endpoint, "--interval", "0.2"]);
        command.env("NO_COLOR", "1");
        let mut session = common::on_a_terminal(command, "xterm");
        next_screen_with(&mut session, "(the board is empty)");
        server.request_text("erin: on a call");
        next_screen_with(&mut session, "on a call");
        let screen = next_screen_with(&mut session, "expired");
        assert!(
            screen.contains("- erin  expired"),
            "publish={publish}: {screen}"
        );
        assert!(screen.contains("0 names"), "{screen}");
        stop(session);
    }
}

#[test]
fn count_with_a_publishing_server_prints_a_board_per_interval_and_returns() {
    let server = publishing(&[]);
    server.request_text("alice: here");
    // JSON: three boards, one per interval, though nothing changes.
    let started = Instant::now();
    let (code, stdout, stderr) = run(&[
        "_",
        "--endpoint",
        &server.endpoint,
        "--json",
        "--count",
        "3",
        "--interval",
        "0.5",
    ]);
    let took = started.elapsed();
    assert_eq!(code, Some(0), "{stderr}");
    let docs: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(docs.len(), 3, "{stdout}");
    assert!(docs.iter().all(|d| d["seq"] == 1), "{stdout}");
    assert!(
        took >= Duration::from_millis(1000),
        "one per interval: {took:?}"
    );

    // On a terminal: two boards, then it returns by itself.
    let mut command = client(&[
        "_",
        "--endpoint",
        &server.endpoint,
        "--count",
        "2",
        "--interval",
        "0.5",
    ]);
    command.env("NO_COLOR", "1");
    let started = Instant::now();
    let mut session = common::on_a_terminal(command, "xterm");
    session.exp_string("alice").expect("the board");
    session.exp_eof().expect("returns after two boards");
    assert!(started.elapsed() >= Duration::from_millis(500));
    match session.process().wait().expect("status") {
        rexpect::process::WaitStatus::Exited(_, code) => assert_eq!(code, 0),
        other => panic!("unexpected {other:?}"),
    }
}
